//! memblock: the boot-time physical memory manager, which records what RAM exists
//! (`memory`) and what is taken (`reserved`) as sorted, merged region arrays and
//! hands out early allocations from the difference. Mirrors Linux mm/memblock.c.
//!
//! Behaviour follows Linux 6.18: arrays start empty with `cnt == 0` (v6.11+),
//! ranges that overflow the physical address space are clipped
//! (`memblock_cap_size`), allocations search top-down by default, never return
//! the first page, prefer the requested node and reserve what they return with
//! the `MEMBLOCK_RSRV_KERN` flag (v6.16+).
//!
//! Simplifications, each also noted where it applies:
//! - The region arrays are `Vec`s, so instead of `memblock_double_array` there
//!   is a configurable cap ([`Memblock::set_max_regions`]); going over it is
//!   [`MemblockError::TooManyRegions`], the way a failed doubling is `-ENOMEM`.
//! - "No node" is [`MAX_NUMNODES`] everywhere; Linux uses both `MAX_NUMNODES`
//!   and `NUMA_NO_NODE` (-1), which differ only in that regions carrying the
//!   two values never merge.
//! - `movable_node` (skipping hotpluggable memory), `physmem`, KHO scratch,
//!   driver-managed memory and kmemleak/accept_memory hooks are not modelled.
#![deny(missing_docs)]

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write};

use crate::types::{Pfn, PhysAddr, PAGE_SHIFT, PAGE_SIZE};

/// Number of NUMA nodes a node id may name (`1 << CONFIG_NODES_SHIFT`, 10 on
/// the distribution x86-64 configs). Used as the "no node" id, as Linux's
/// `memblock_add` and `memblock_reserve` do.
pub const MAX_NUMNODES: u32 = 1 << 10;

/// The largest physical address (`PHYS_ADDR_MAX`).
pub const PHYS_ADDR_MAX: u64 = u64::MAX;

/// Upper bound meaning "no limit" (`MEMBLOCK_ALLOC_ANYWHERE`, `~0`).
pub const MEMBLOCK_ALLOC_ANYWHERE: PhysAddr = PhysAddr(PHYS_ADDR_MAX);

/// Upper bound meaning "up to the current limit" (`MEMBLOCK_ALLOC_ACCESSIBLE`, 0).
pub const MEMBLOCK_ALLOC_ACCESSIBLE: PhysAddr = PhysAddr(0);

/// Lower bound of the default allocation range (`MEMBLOCK_LOW_LIMIT`).
pub const MEMBLOCK_LOW_LIMIT: PhysAddr = PhysAddr(0);

/// Alignment used when a caller passes 0 (`SMP_CACHE_BYTES` on x86-64).
pub const SMP_CACHE_BYTES: u64 = 64;

/// Initial size of Linux's static region arrays (`INIT_MEMBLOCK_REGIONS`).
pub const INIT_MEMBLOCK_REGIONS: usize = 128;

/// Default cap on regions per array. Linux doubles its arrays without a fixed
/// bound until memory runs out; we stop at this many.
pub const DEFAULT_MAX_REGIONS: usize = 1 << 16;

/// Names debugfs prints for each flag bit, by bit index (mm/memblock.c `flagname`).
const FLAG_NAMES: [&str; 7] = [
    "HOTPLUG",
    "MIRROR",
    "NOMAP",
    "DRV_MNG",
    "RSV_NIT",
    "RSV_KERN",
    "KHO_SCRATCH",
];

/// Attributes of a memblock region (`enum memblock_flags`), a small bit set
/// with Linux's bit values.
#[derive(Copy, Clone, Default, PartialEq, Eq, Hash)]
pub struct RegionFlags(u32);

bitflags::bitflags! {
    /// `MEMBLOCK_*` bits. Unknown bits are kept (`_ = !0`): they print as
    /// `UNKNOWN` in the dumps if no known bit is set.
    impl RegionFlags: u32 {
        /// No special attribute (`MEMBLOCK_NONE`).
        const NONE = 0x0;
        /// Hot-pluggable memory (`MEMBLOCK_HOTPLUG`).
        const HOTPLUG = 0x1;
        /// Mirrored memory (`MEMBLOCK_MIRROR`).
        const MIRROR = 0x2;
        /// Not to be added to the direct map (`MEMBLOCK_NOMAP`).
        const NOMAP = 0x4;
        /// Reserved for kernel use; every memblock allocation carries it
        /// (`MEMBLOCK_RSRV_KERN`, v6.16+).
        const RSRV_KERN = 0x20;
        const _ = !0;
    }
}

impl RegionFlags {
    /// The name debugfs prints: the lowest set bit's name, `NONE` when empty,
    /// `UNKNOWN` when no known bit is set.
    pub fn name(self) -> &'static str {
        if self.0 == 0 {
            return "NONE";
        }
        FLAG_NAMES
            .iter()
            .enumerate()
            .find(|(bit, _)| self.0 & (1 << bit) != 0)
            .map_or("UNKNOWN", |(_, name)| name)
    }
}

impl fmt::Debug for RegionFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RegionFlags({:#x})", self.0)
    }
}

/// One range of physical memory (`struct memblock_region`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Region {
    /// First byte of the region.
    pub base: PhysAddr,
    /// Length in bytes, never 0 inside an array.
    pub size: u64,
    /// NUMA node, or [`MAX_NUMNODES`] for none.
    pub nid: u32,
    /// Attributes.
    pub flags: RegionFlags,
}

impl Region {
    /// One past the last byte (`base + size`).
    pub fn end(&self) -> PhysAddr {
        PhysAddr(self.base.0 + self.size)
    }
    /// True if the node id names a real node (`numa_valid_node`).
    pub fn has_node(&self) -> bool {
        self.nid < MAX_NUMNODES
    }
}

/// Errors of memblock operations.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MemblockError {
    /// The array would need more regions than its cap (Linux: doubling the
    /// array failed, `-ENOMEM`). Nothing was changed.
    TooManyRegions {
        /// Which array: `"memory"` or `"reserved"`.
        array: &'static str,
        /// The cap in force.
        max: usize,
    },
    /// A node id above [`MAX_NUMNODES`] (which itself means "no node").
    InvalidNode(u32),
    /// An array broke an invariant (found by [`Memblock::check`]).
    Corrupt {
        /// Which array.
        array: &'static str,
        /// Index of the offending region.
        index: usize,
        /// What is wrong.
        what: &'static str,
    },
}

impl fmt::Display for MemblockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MemblockError::TooManyRegions { array, max } => {
                write!(f, "memblock: {array} array is full ({max} regions)")
            }
            MemblockError::InvalidNode(nid) => {
                write!(
                    f,
                    "memblock: invalid node id {nid} (MAX_NUMNODES is {MAX_NUMNODES})"
                )
            }
            MemblockError::Corrupt { array, index, what } => {
                write!(f, "memblock: {array}[{index}]: {what}")
            }
        }
    }
}

/// Clips `size` so that `base + size` does not overflow (`memblock_cap_size`).
fn cap_size(base: u64, size: u64) -> u64 {
    size.min(PHYS_ADDR_MAX - base)
}

/// A sorted, non-overlapping, merged array of regions (`struct memblock_type`).
#[derive(Clone)]
pub struct RegionArray {
    regions: Vec<Region>,
    total_size: u64,
    max: usize,
    name: &'static str,
}

impl RegionArray {
    fn new(name: &'static str) -> RegionArray {
        RegionArray {
            regions: Vec::new(),
            total_size: 0,
            max: DEFAULT_MAX_REGIONS,
            name,
        }
    }

    /// The regions, sorted by base.
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }
    /// Number of regions (`cnt`); 0 when empty (v6.11+).
    pub fn cnt(&self) -> usize {
        self.regions.len()
    }
    /// Sum of region sizes (`total_size`).
    pub fn total_size(&self) -> u64 {
        self.total_size
    }
    /// The array's name, as debugfs names the file.
    pub fn name(&self) -> &'static str {
        self.name
    }
    /// Cap on the number of regions (Linux: `max`, but fixed here).
    pub fn max(&self) -> usize {
        self.max
    }

    fn full(&self) -> MemblockError {
        MemblockError::TooManyRegions {
            array: self.name,
            max: self.max,
        }
    }

    /// Index of the region holding `addr` (`memblock_search`).
    fn search(&self, addr: u64) -> Option<usize> {
        let i = self.regions.partition_point(|r| r.end().0 <= addr);
        (i < self.regions.len() && self.regions[i].base.0 <= addr).then_some(i)
    }

    /// True if any region intersects `[base, base + size)`
    /// (`memblock_overlaps_region`).
    fn overlaps(&self, base: u64, size: u64) -> bool {
        let end = base + cap_size(base, size);
        let i = self.regions.partition_point(|r| r.end().0 <= base);
        i < self.regions.len() && self.regions[i].base.0 < end
    }

    /// Merges every pair of touching regions with equal node and flags
    /// (`memblock_merge_regions`). The array is kept minimal, so a pass over
    /// `[from, to]` finds only the pairs the last change created.
    fn merge(&mut self, from: usize, to: usize) {
        let mut i = from.saturating_sub(1);
        let mut last = to.min(self.regions.len().saturating_sub(1));
        while i < last {
            let (a, b) = (self.regions[i], self.regions[i + 1]);
            debug_assert!(a.end() <= b.base, "memblock regions overlap");
            if a.end() == b.base && a.nid == b.nid && a.flags == b.flags {
                self.regions[i].size += b.size;
                self.regions.remove(i + 1);
                last -= 1;
            } else {
                i += 1;
            }
        }
    }

    /// Adds `[base, base + size)`; parts already covered keep their node and
    /// flags, the rest is inserted with `nid` and `flags`, then neighbours are
    /// merged (`memblock_add_range`).
    fn add_range(
        &mut self,
        base: u64,
        size: u64,
        nid: u32,
        flags: RegionFlags,
    ) -> Result<(), MemblockError> {
        let size = cap_size(base, size);
        if size == 0 {
            return Ok(());
        }
        let end = base + size;
        // First pass: the pieces of the new range no region covers yet.
        let first = self.regions.partition_point(|r| r.end().0 <= base);
        let mut pieces: Vec<(usize, u64, u64)> = Vec::new();
        let mut cur = base;
        let mut idx = first;
        while idx < self.regions.len() && self.regions[idx].base.0 < end {
            let r = self.regions[idx];
            if r.base.0 > cur {
                pieces.push((idx, cur, r.base.0));
            }
            cur = r.end().0.min(end);
            idx += 1;
        }
        if cur < end {
            pieces.push((idx, cur, end));
        }
        if pieces.is_empty() {
            return Ok(());
        }
        if self.regions.len() + pieces.len() > self.max {
            return Err(self.full());
        }
        // Second pass: insert back to front so earlier indices stay valid.
        for &(at, s, e) in pieces.iter().rev() {
            self.regions.insert(
                at,
                Region {
                    base: PhysAddr(s),
                    size: e - s,
                    nid,
                    flags,
                },
            );
            self.total_size += e - s;
        }
        let lo = pieces[0].0;
        let hi = pieces[pieces.len() - 1].0 + pieces.len();
        self.merge(lo, hi);
        Ok(())
    }

    /// Splits regions crossing the edges of `[base, base + size)` and returns
    /// the index range of the regions inside it (`memblock_isolate_range`).
    fn isolate_range(&mut self, base: u64, size: u64) -> Result<(usize, usize), MemblockError> {
        let size = cap_size(base, size);
        if size == 0 {
            return Ok((0, 0));
        }
        let end = base + size;
        let crosses = |regions: &[Region], at: u64| {
            let i = regions.partition_point(|r| r.end().0 <= at);
            (i < regions.len() && regions[i].base.0 < at).then_some(i)
        };
        let split_lo = crosses(&self.regions, base);
        let split_hi = crosses(&self.regions, end);
        let needed = usize::from(split_lo.is_some()) + usize::from(split_hi.is_some());
        if self.regions.len() + needed > self.max {
            return Err(self.full());
        }
        for at in [base, end] {
            if let Some(i) = crosses(&self.regions, at) {
                let r = self.regions[i];
                let head = at - r.base.0;
                self.regions[i].size = head;
                self.regions.insert(
                    i + 1,
                    Region {
                        base: PhysAddr(at),
                        size: r.size - head,
                        ..r
                    },
                );
            }
        }
        let start = self.regions.partition_point(|r| r.base.0 < base);
        let stop = self.regions.partition_point(|r| r.base.0 < end);
        Ok((start, stop))
    }

    /// Removes `[base, base + size)` from the array (`memblock_remove_range`).
    fn remove_range(&mut self, base: u64, size: u64) -> Result<(), MemblockError> {
        let (start, stop) = self.isolate_range(base, size)?;
        let gone: u64 = self.regions.drain(start..stop).map(|r| r.size).sum();
        self.total_size -= gone;
        Ok(())
    }

    /// Applies `f` to the regions inside `[base, base + size)`, splitting and
    /// re-merging as needed (`memblock_setclr_flag`, `memblock_set_node`).
    fn update_range(
        &mut self,
        base: u64,
        size: u64,
        f: impl Fn(&mut Region),
    ) -> Result<(), MemblockError> {
        let (start, stop) = self.isolate_range(base, size)?;
        self.regions[start..stop].iter_mut().for_each(f);
        self.merge(start, stop);
        Ok(())
    }

    /// Checks that the array is sorted, non-overlapping, merged, has no empty
    /// region and that `total_size` is the sum of sizes.
    pub fn check(&self) -> Result<(), MemblockError> {
        let corrupt = |index, what| MemblockError::Corrupt {
            array: self.name,
            index,
            what,
        };
        let mut sum = 0u64;
        for (i, r) in self.regions.iter().enumerate() {
            if r.size == 0 {
                return Err(corrupt(i, "empty region"));
            }
            if r.base.0.checked_add(r.size).is_none() {
                return Err(corrupt(i, "region wraps the address space"));
            }
            if let Some(next) = self.regions.get(i + 1) {
                if r.end() > next.base {
                    return Err(corrupt(
                        i,
                        "overlaps or is out of order with the next region",
                    ));
                }
                if r.end() == next.base && r.nid == next.nid && r.flags == next.flags {
                    return Err(corrupt(i, "not merged with a compatible neighbour"));
                }
            }
            sum += r.size;
        }
        if sum != self.total_size {
            return Err(corrupt(
                self.regions.len(),
                "total_size is not the sum of sizes",
            ));
        }
        Ok(())
    }

    /// The debugfs rendering of this array (`memblock_debug_show`).
    fn dump(&self) -> String {
        let mut s = String::new();
        for (i, r) in self.regions.iter().enumerate() {
            // The end printed is inclusive, as Linux prints it.
            let last = r.base.0 + r.size - 1;
            let _ = write!(s, "{i:4}: 0x{:016x}..0x{last:016x} ", r.base.0);
            if r.has_node() {
                let _ = write!(s, "{:4} ", r.nid);
            } else {
                let _ = write!(s, "{:>4} ", 'x');
            }
            let _ = writeln!(s, "{}", r.flags.name());
        }
        s
    }
}

impl fmt::Debug for RegionArray {
    /// Like Linux's `memblock_dump` (`memblock=debug`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, " {}.cnt  = {:#x}", self.name, self.regions.len())?;
        for (i, r) in self.regions.iter().enumerate() {
            let node = if r.has_node() {
                alloc::format!(" on node {}", r.nid)
            } else {
                String::new()
            };
            writeln!(
                f,
                " {}[{:#x}]\t[0x{:016x}-0x{:016x}], 0x{:016x} bytes{} flags: {:#x}",
                self.name,
                i,
                r.base.0,
                r.base.0 + r.size - 1,
                r.size,
                node,
                r.flags.bits()
            )?;
        }
        Ok(())
    }
}

/// A free range (memory minus reserved) or a memory range: `[start, end)` on `nid`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MemRange {
    /// First byte.
    pub start: PhysAddr,
    /// One past the last byte.
    pub end: PhysAddr,
    /// Node of the memory region it lies in ([`MAX_NUMNODES`] for none).
    pub nid: u32,
}

/// The boot-time memory manager (`struct memblock`).
#[derive(Clone)]
pub struct Memblock {
    /// Physical memory the kernel may use (`memblock.memory`).
    pub memory: RegionArray,
    /// Ranges taken: kernel image, firmware tables, early allocations
    /// (`memblock.reserved`).
    pub reserved: RegionArray,
    bottom_up: bool,
    current_limit: PhysAddr,
    has_mirror: bool,
}

impl Default for Memblock {
    fn default() -> Self {
        Memblock::new()
    }
}

fn check_nid(nid: u32) -> Result<(), MemblockError> {
    if nid > MAX_NUMNODES {
        Err(MemblockError::InvalidNode(nid))
    } else {
        Ok(())
    }
}

impl Memblock {
    /// An empty memblock: no memory, nothing reserved, top-down, no limit.
    pub fn new() -> Memblock {
        Memblock {
            memory: RegionArray::new("memory"),
            reserved: RegionArray::new("reserved"),
            bottom_up: false,
            current_limit: MEMBLOCK_ALLOC_ANYWHERE,
            has_mirror: false,
        }
    }

    /// Caps both arrays at `max` regions (simplification standing for
    /// `memblock_double_array` running out of memory).
    pub fn set_max_regions(&mut self, max: usize) {
        self.memory.max = max;
        self.reserved.max = max;
    }

    // ----- building the memory map -------------------------------------

    /// Adds RAM with no node (`memblock_add`).
    pub fn add(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.memory
            .add_range(base.0, size, MAX_NUMNODES, RegionFlags::NONE)
    }

    /// Adds RAM on node `nid` (`memblock_add_node` with no flags).
    pub fn add_node(&mut self, base: PhysAddr, size: u64, nid: u32) -> Result<(), MemblockError> {
        self.add_node_flags(base, size, nid, RegionFlags::NONE)
    }

    /// Adds RAM on node `nid` with `flags` (`memblock_add_node`).
    pub fn add_node_flags(
        &mut self,
        base: PhysAddr,
        size: u64,
        nid: u32,
        flags: RegionFlags,
    ) -> Result<(), MemblockError> {
        check_nid(nid)?;
        self.memory.add_range(base.0, size, nid, flags)
    }

    /// Removes RAM (`memblock_remove`), splitting regions as needed.
    pub fn remove(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.memory.remove_range(base.0, size)
    }

    /// Reserves a range with no node and no flags (`memblock_reserve`).
    pub fn reserve(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.reserved
            .add_range(base.0, size, MAX_NUMNODES, RegionFlags::NONE)
    }

    /// Reserves a range for kernel use (`memblock_reserve_kern`): flag
    /// `RSRV_KERN`, no node.
    pub fn reserve_kern(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.reserved
            .add_range(base.0, size, MAX_NUMNODES, RegionFlags::RSRV_KERN)
    }

    /// Un-reserves a range (`memblock_phys_free`), splitting regions as needed.
    pub fn free(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.reserved.remove_range(base.0, size)
    }

    /// Sets the node of the memory in a range (`memblock_set_node` on
    /// `memblock.memory`); regions crossing its edges are split.
    pub fn set_node(&mut self, base: PhysAddr, size: u64, nid: u32) -> Result<(), MemblockError> {
        check_nid(nid)?;
        self.memory.update_range(base.0, size, |r| r.nid = nid)
    }

    /// Sets the node of the reserved regions in a range (`memblock_set_node`
    /// on `memblock.reserved`, as `memmap_init_reserved_pages` does).
    pub fn set_reserved_node(
        &mut self,
        base: PhysAddr,
        size: u64,
        nid: u32,
    ) -> Result<(), MemblockError> {
        check_nid(nid)?;
        self.reserved.update_range(base.0, size, |r| r.nid = nid)
    }

    fn set_flag(
        &mut self,
        base: PhysAddr,
        size: u64,
        flag: RegionFlags,
        set: bool,
    ) -> Result<(), MemblockError> {
        self.memory.update_range(base.0, size, |r| {
            r.flags = if set {
                r.flags.union(flag)
            } else {
                r.flags.difference(flag)
            }
        })
    }

    /// Marks memory hot-pluggable (`memblock_mark_hotplug`).
    pub fn mark_hotplug(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.set_flag(base, size, RegionFlags::HOTPLUG, true)
    }

    /// Clears the hot-pluggable mark (`memblock_clear_hotplug`).
    pub fn clear_hotplug(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.set_flag(base, size, RegionFlags::HOTPLUG, false)
    }

    /// Marks memory mirrored (`memblock_mark_mirror`). From then on
    /// allocations prefer mirrored memory and fall back to any. Simplified:
    /// Linux ignores the call unless booted with `kernelcore=mirror`; here
    /// calling it is that choice.
    pub fn mark_mirror(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.has_mirror = true;
        self.set_flag(base, size, RegionFlags::MIRROR, true)
    }

    /// Marks memory as not to be direct-mapped (`memblock_mark_nomap`); the
    /// allocator and the free ranges skip it.
    pub fn mark_nomap(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.set_flag(base, size, RegionFlags::NOMAP, true)
    }

    /// Clears the no-map mark (`memblock_clear_nomap`).
    pub fn clear_nomap(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.set_flag(base, size, RegionFlags::NOMAP, false)
    }

    // ----- allocation policy --------------------------------------------

    /// Chooses bottom-up (`true`) or the default top-down search
    /// (`memblock_set_bottom_up`).
    pub fn set_bottom_up(&mut self, enable: bool) {
        self.bottom_up = enable;
    }

    /// True if allocations search bottom-up (`memblock_bottom_up`).
    pub fn bottom_up(&self) -> bool {
        self.bottom_up
    }

    /// Sets the highest address allocations may reach
    /// (`memblock_set_current_limit`); [`MEMBLOCK_ALLOC_ACCESSIBLE`] means it.
    pub fn set_current_limit(&mut self, limit: PhysAddr) {
        self.current_limit = limit;
    }

    /// The current allocation limit (`memblock_get_current_limit`).
    pub fn current_limit(&self) -> PhysAddr {
        self.current_limit
    }

    /// Would a memory region be skipped by a search for `nid` with `flags`
    /// (`should_skip_region`; `movable_node` is not modelled).
    fn skip_memory(r: &Region, nid: u32, flags: RegionFlags) -> bool {
        (nid < MAX_NUMNODES && r.nid != nid)
            || (flags.contains(RegionFlags::MIRROR) && !r.flags.contains(RegionFlags::MIRROR))
            || (!flags.contains(RegionFlags::NOMAP) && r.flags.contains(RegionFlags::NOMAP))
    }

    /// Free ranges (memory minus reserved) of the memory regions that a
    /// search for `nid`/`flags` considers, ascending (`__next_mem_range`).
    /// Ranges in different memory regions are reported separately.
    fn free_ranges_flags(&self, nid: u32, flags: RegionFlags) -> Vec<MemRange> {
        let res = self.reserved.regions();
        let mut out = Vec::new();
        let mut j = 0;
        for m in self.memory.regions() {
            if Self::skip_memory(m, nid, flags) {
                continue;
            }
            let (m_start, m_end) = (m.base.0, m.end().0);
            while j < res.len() && res[j].end().0 <= m_start {
                j += 1;
            }
            let mut cur = m_start;
            let mut k = j;
            while k < res.len() && res[k].base.0 < m_end {
                if res[k].base.0 > cur {
                    out.push(MemRange {
                        start: PhysAddr(cur),
                        end: res[k].base,
                        nid: m.nid,
                    });
                }
                cur = cur.max(res[k].end().0);
                k += 1;
            }
            if cur < m_end {
                out.push(MemRange {
                    start: PhysAddr(cur),
                    end: PhysAddr(m_end),
                    nid: m.nid,
                });
            }
        }
        out
    }

    /// Finds (does not reserve) `size` bytes aligned to `align` in
    /// `[start, end)` (`memblock_find_in_range_node`). The first page is
    /// never returned.
    fn find_in_range_node(
        &self,
        size: u64,
        align: u64,
        start: u64,
        end: u64,
        nid: u32,
        flags: RegionFlags,
    ) -> Option<u64> {
        let end = if end == MEMBLOCK_ALLOC_ACCESSIBLE.0 {
            self.current_limit.0
        } else {
            end
        };
        let start = start.max(PAGE_SIZE);
        let end = end.max(start);
        let ranges = self.free_ranges_flags(nid, flags);
        let clamp = |r: &MemRange| (r.start.0.clamp(start, end), r.end.0.clamp(start, end));
        if self.bottom_up {
            ranges.iter().find_map(|r| {
                let (lo, hi) = clamp(r);
                let cand = lo.checked_add(align - 1)? & !(align - 1);
                (cand < hi && hi - cand >= size).then_some(cand)
            })
        } else {
            ranges.iter().rev().find_map(|r| {
                let (lo, hi) = clamp(r);
                let cand = hi.checked_sub(size)? & !(align - 1);
                (cand >= lo).then_some(cand)
            })
        }
    }

    /// Allocates and reserves `size` bytes aligned to `align` (0 means
    /// [`SMP_CACHE_BYTES`]) within `[start, end)`, following
    /// `memblock_alloc_range_nid`: search top-down (or bottom-up) the free
    /// ranges of node `nid` ([`MAX_NUMNODES`] for any), then, unless
    /// `exact_nid`, of any node; with mirrored memory present, mirrored
    /// memory first. `end` of [`MEMBLOCK_ALLOC_ACCESSIBLE`] means the current
    /// limit; simplification: any `end` above the current limit is lowered
    /// to it (Linux does that only in `memblock_alloc_internal`). The block
    /// is reserved with `RSRV_KERN` and `nid` (no node after a fallback).
    /// Returns `None` if nothing fits, if `size` is 0 or `align` is not a
    /// power of two (Linux returns 0 or misbehaves there).
    pub fn alloc_range_nid(
        &mut self,
        size: u64,
        align: u64,
        start: PhysAddr,
        end: PhysAddr,
        nid: u32,
        exact_nid: bool,
    ) -> Option<PhysAddr> {
        let align = if align == 0 { SMP_CACHE_BYTES } else { align };
        if size == 0 || !align.is_power_of_two() || nid > MAX_NUMNODES {
            return None;
        }
        let end = if end == MEMBLOCK_ALLOC_ACCESSIBLE {
            self.current_limit
        } else {
            end.min(self.current_limit)
        };
        let mut flags = if self.has_mirror {
            RegionFlags::MIRROR
        } else {
            RegionFlags::NONE
        };
        loop {
            if let Some(found) = self.find_in_range_node(size, align, start.0, end.0, nid, flags) {
                if self
                    .reserved
                    .add_range(found, size, nid, RegionFlags::RSRV_KERN)
                    .is_ok()
                {
                    return Some(PhysAddr(found));
                }
            }
            if nid < MAX_NUMNODES && !exact_nid {
                if let Some(found) =
                    self.find_in_range_node(size, align, start.0, end.0, MAX_NUMNODES, flags)
                {
                    if self.reserve_kern(PhysAddr(found), size).is_ok() {
                        return Some(PhysAddr(found));
                    }
                }
            }
            if flags.contains(RegionFlags::MIRROR) {
                flags = flags.difference(RegionFlags::MIRROR);
                continue;
            }
            return None;
        }
    }

    /// `memblock_alloc_internal`: lowers `max_addr` to the current limit,
    /// tries `[min_addr, max_addr)` and, failing that, `[0, max_addr)`.
    fn alloc_internal(
        &mut self,
        size: u64,
        align: u64,
        min_addr: PhysAddr,
        max_addr: PhysAddr,
        nid: u32,
        exact_nid: bool,
    ) -> Option<PhysAddr> {
        let max_addr = max_addr.min(self.current_limit);
        self.alloc_range_nid(size, align, min_addr, max_addr, nid, exact_nid)
            .or_else(|| {
                if min_addr.0 != 0 {
                    self.alloc_range_nid(size, align, PhysAddr(0), max_addr, nid, exact_nid)
                } else {
                    None
                }
            })
    }

    /// Allocates anywhere below the current limit, any node (`memblock_alloc`,
    /// `memblock_phys_alloc`).
    pub fn alloc(&mut self, size: u64, align: u64) -> Option<PhysAddr> {
        self.alloc_try_nid(
            size,
            align,
            MEMBLOCK_LOW_LIMIT,
            MEMBLOCK_ALLOC_ACCESSIBLE,
            MAX_NUMNODES,
        )
    }

    /// Allocates preferring node `nid` and `[min_addr, max_addr)`, falling
    /// back to any node and then to memory below `min_addr`
    /// (`memblock_alloc_try_nid`).
    pub fn alloc_try_nid(
        &mut self,
        size: u64,
        align: u64,
        min_addr: PhysAddr,
        max_addr: PhysAddr,
        nid: u32,
    ) -> Option<PhysAddr> {
        self.alloc_internal(size, align, min_addr, max_addr, nid, false)
    }

    /// Like [`Memblock::alloc_try_nid`] but only on node `nid`
    /// (`memblock_alloc_exact_nid_raw`).
    pub fn alloc_exact_nid(
        &mut self,
        size: u64,
        align: u64,
        min_addr: PhysAddr,
        max_addr: PhysAddr,
        nid: u32,
    ) -> Option<PhysAddr> {
        self.alloc_internal(size, align, min_addr, max_addr, nid, true)
    }

    // ----- queries ------------------------------------------------------

    /// Total bytes of memory (`memblock_phys_mem_size`).
    pub fn phys_mem_size(&self) -> u64 {
        self.memory.total_size
    }

    /// Total bytes reserved (`memblock_reserved_size`).
    pub fn reserved_size(&self) -> u64 {
        self.reserved.total_size
    }

    /// Lowest memory address (`memblock_start_of_DRAM`); 0 with no memory.
    pub fn start_of_dram(&self) -> PhysAddr {
        self.memory.regions.first().map_or(PhysAddr(0), |r| r.base)
    }

    /// One past the highest memory address (`memblock_end_of_DRAM`); 0 with
    /// no memory.
    pub fn end_of_dram(&self) -> PhysAddr {
        self.memory.regions.last().map_or(PhysAddr(0), |r| r.end())
    }

    /// True if `addr` is memory (`memblock_is_memory`).
    pub fn is_memory(&self, addr: PhysAddr) -> bool {
        self.memory.search(addr.0).is_some()
    }

    /// True if `addr` is memory not marked NOMAP (`memblock_is_map_memory`).
    pub fn is_map_memory(&self, addr: PhysAddr) -> bool {
        self.memory
            .search(addr.0)
            .is_some_and(|i| !self.memory.regions[i].flags.contains(RegionFlags::NOMAP))
    }

    /// True if `addr` is reserved (`memblock_is_reserved`).
    pub fn is_reserved(&self, addr: PhysAddr) -> bool {
        self.reserved.search(addr.0).is_some()
    }

    /// True if `[base, base + size)` lies inside one memory region
    /// (`memblock_is_region_memory`).
    pub fn is_region_memory(&self, base: PhysAddr, size: u64) -> bool {
        let end = base.0 + cap_size(base.0, size);
        self.memory
            .search(base.0)
            .is_some_and(|i| self.memory.regions[i].end().0 >= end)
    }

    /// True if `[base, base + size)` intersects a reserved region
    /// (`memblock_is_region_reserved`).
    pub fn is_region_reserved(&self, base: PhysAddr, size: u64) -> bool {
        self.reserved.overlaps(base.0, size)
    }

    /// The memory regions (`for_each_mem_region`).
    pub fn memory(&self) -> &[Region] {
        self.memory.regions()
    }

    /// The reserved regions (`for_each_reserved_mem_region`).
    pub fn reserved(&self) -> &[Region] {
        self.reserved.regions()
    }

    /// Free ranges, memory minus reserved, ascending, of node `nid` or of
    /// all nodes (`for_each_free_mem_range` with `MEMBLOCK_NONE`, so NOMAP
    /// memory is left out). A range never spans two memory regions.
    pub fn free_ranges(&self, nid: Option<u32>) -> Vec<MemRange> {
        self.free_ranges_flags(nid.unwrap_or(MAX_NUMNODES), RegionFlags::NONE)
    }

    /// Page frame ranges of memory, per region, of node `nid` or of all
    /// nodes (`for_each_mem_pfn_range`): start rounded up, end rounded down,
    /// regions holding no whole page skipped. NOMAP memory is included.
    pub fn pfn_ranges(&self, nid: Option<u32>) -> Vec<(Pfn, Pfn, u32)> {
        self.memory
            .regions()
            .iter()
            .filter(|r| nid.is_none_or(|n| n >= MAX_NUMNODES || r.nid == n))
            .filter_map(|r| {
                let start = r.base.0.div_ceil(PAGE_SIZE);
                let end = r.end().0 >> PAGE_SHIFT;
                (start < end).then_some((Pfn(start), Pfn(end), r.nid))
            })
            .collect()
    }

    /// Checks both arrays' invariants (for `mm::debug`).
    pub fn check(&self) -> Result<(), MemblockError> {
        self.memory.check()?;
        self.reserved.check()
    }

    /// `/sys/kernel/debug/memblock/memory` as Linux 6.18 prints it.
    pub fn dump_memory(&self) -> String {
        self.memory.dump()
    }

    /// `/sys/kernel/debug/memblock/reserved` as Linux 6.18 prints it.
    pub fn dump_reserved(&self) -> String {
        self.reserved.dump()
    }
}

impl fmt::Debug for Memblock {
    /// Like Linux's `__memblock_dump_all` (`memblock=debug` boot output).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "MEMBLOCK configuration:")?;
        writeln!(
            f,
            " memory size = 0x{:016x} reserved size = 0x{:016x}",
            self.memory.total_size, self.reserved.total_size
        )?;
        write!(f, "{:?}{:?}", self.memory, self.reserved)
    }
}

#[cfg(test)]
mod tests {
    //! Modelled on Linux tools/testing/memblock/tests/{basic_api,alloc_api,
    //! alloc_nid_api}.c; each test names the rule it checks.
    use super::*;
    use alloc::vec;
    use proptest::prelude::*;

    const SZ_4K: u64 = 4 << 10;
    const SZ_1M: u64 = 1 << 20;
    const SZ_2M: u64 = 2 << 20;
    const SZ_16M: u64 = 16 << 20;
    const SZ_256M: u64 = 256 << 20;
    const SZ_512M: u64 = 512 << 20;
    const SZ_1G: u64 = 1 << 30;
    const NO_NODE: u32 = MAX_NUMNODES;

    fn p(x: u64) -> PhysAddr {
        PhysAddr(x)
    }

    /// (base, size) of each region.
    fn spans(regions: &[Region]) -> Vec<(u64, u64)> {
        regions.iter().map(|r| (r.base.0, r.size)).collect()
    }

    fn ranges(v: &[MemRange]) -> Vec<(u64, u64, u32)> {
        v.iter().map(|r| (r.start.0, r.end.0, r.nid)).collect()
    }

    // ----- basic_api.c ------------------------------------------------------

    #[test]
    fn empty_arrays_have_cnt_zero() {
        // v6.11 (721f4a6526da): no dummy entry, empty arrays have cnt == 0.
        let mb = Memblock::new();
        assert_eq!(mb.memory.cnt(), 0);
        assert_eq!(mb.reserved.cnt(), 0);
        assert_eq!(mb.phys_mem_size(), 0);
        assert_eq!(mb.reserved_size(), 0);
        assert_eq!(mb.dump_memory(), "");
        assert!(!mb.bottom_up());
        assert_eq!(mb.current_limit(), MEMBLOCK_ALLOC_ANYWHERE);
        mb.check().unwrap();
    }

    #[test]
    fn add_simple_and_node() {
        // memblock_add: one region, no node (MAX_NUMNODES), no flags;
        // memblock_add_node records the node.
        let mut mb = Memblock::new();
        mb.add(p(SZ_1G), SZ_256M).unwrap();
        assert_eq!(spans(mb.memory()), vec![(SZ_1G, SZ_256M)]);
        assert_eq!(mb.memory()[0].nid, NO_NODE);
        assert_eq!(mb.memory()[0].flags, RegionFlags::NONE);
        assert_eq!(mb.phys_mem_size(), SZ_256M);
        mb.add_node(p(SZ_16M), SZ_16M, 1).unwrap();
        assert_eq!(mb.memory()[0].nid, 1);
        assert_eq!(mb.memory.cnt(), 2);
        assert_eq!(
            mb.add_node(p(0), SZ_1M, MAX_NUMNODES + 1),
            Err(MemblockError::InvalidNode(MAX_NUMNODES + 1))
        );
    }

    #[test]
    fn add_disjoint_is_sorted() {
        // memblock_add_disjoint_check: two separate regions, sorted by base.
        let mut mb = Memblock::new();
        mb.add(p(SZ_1G), SZ_16M).unwrap();
        mb.add(p(SZ_256M), SZ_2M).unwrap();
        assert_eq!(spans(mb.memory()), vec![(SZ_256M, SZ_2M), (SZ_1G, SZ_16M)]);
        assert_eq!(mb.phys_mem_size(), SZ_16M + SZ_2M);
    }

    #[test]
    fn add_overlapping_merges() {
        // memblock_add_overlap_{top,bottom}_check, memblock_add_within_check,
        // memblock_add_twice_check: overlaps merge into one region and are
        // counted once in total_size.
        let mut mb = Memblock::new();
        mb.add(p(SZ_512M), SZ_1G).unwrap();
        mb.add(p(SZ_256M), SZ_512M).unwrap();
        assert_eq!(
            spans(mb.memory()),
            vec![(SZ_256M, SZ_512M + SZ_1G - SZ_256M)]
        );

        let mut mb = Memblock::new();
        mb.add(p(128 << 20), SZ_512M).unwrap();
        mb.add(p(SZ_256M), SZ_1G).unwrap();
        assert_eq!(
            spans(mb.memory()),
            vec![(128 << 20, SZ_256M + SZ_1G - (128 << 20))]
        );

        let mut mb = Memblock::new();
        mb.add(p(8 << 20), 32 << 20).unwrap();
        mb.add(p(SZ_16M), SZ_1M).unwrap();
        mb.add(p(8 << 20), 32 << 20).unwrap();
        assert_eq!(spans(mb.memory()), vec![(8 << 20, 32 << 20)]);
        assert_eq!(mb.phys_mem_size(), 32 << 20);
    }

    #[test]
    fn add_adjacent_merges_only_compatible() {
        // memblock_merge_regions: touching regions merge only with the same
        // node and flags; filling a gap joins both neighbours.
        let mut mb = Memblock::new();
        mb.add_node(p(0), SZ_1M, 0).unwrap();
        mb.add_node(p(SZ_1M), SZ_1M, 1).unwrap();
        assert_eq!(mb.memory.cnt(), 2);
        mb.add_node(p(SZ_2M), SZ_1M, 1).unwrap();
        assert_eq!(spans(mb.memory()), vec![(0, SZ_1M), (SZ_1M, SZ_2M)]);

        let mut mb = Memblock::new();
        mb.add(p(SZ_1M), SZ_1M).unwrap();
        mb.add(p(3 * SZ_1M), SZ_1M).unwrap();
        mb.add(p(SZ_2M), SZ_1M).unwrap();
        assert_eq!(spans(mb.memory()), vec![(SZ_1M, 3 * SZ_1M)]);
    }

    #[test]
    fn add_overlap_keeps_existing_attributes() {
        // memblock_add_range: "overlaps don't affect already existing
        // regions"; only the uncovered parts get the new node.
        let mut mb = Memblock::new();
        mb.add_node(p(SZ_1M), SZ_2M, 0).unwrap();
        mb.add(p(0), 4 * SZ_1M).unwrap();
        let got: Vec<_> = mb
            .memory()
            .iter()
            .map(|r| (r.base.0, r.size, r.nid))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, SZ_1M, NO_NODE),
                (SZ_1M, SZ_2M, 0),
                (3 * SZ_1M, SZ_1M, NO_NODE)
            ]
        );
        assert_eq!(mb.phys_mem_size(), 4 * SZ_1M);
    }

    #[test]
    fn overflowing_ranges_are_clipped_and_zero_size_is_noop() {
        // memblock_cap_size / memblock_add_near_max_check: size is clipped to
        // PHYS_ADDR_MAX - base. Size 0 changes nothing.
        let mut mb = Memblock::new();
        let base = PHYS_ADDR_MAX - SZ_1M;
        mb.add(p(base), SZ_2M).unwrap();
        assert_eq!(spans(mb.memory()), vec![(base, PHYS_ADDR_MAX - base)]);
        mb.reserve(p(base), u64::MAX).unwrap();
        assert_eq!(mb.reserved_size(), SZ_1M);
        mb.free(p(base + SZ_4K), u64::MAX).unwrap();
        assert_eq!(spans(mb.reserved()), vec![(base, SZ_4K)]);
        assert!(mb.is_region_memory(p(base), u64::MAX));

        let mut mb = Memblock::new();
        mb.add(p(SZ_1M), 0).unwrap();
        mb.reserve(p(SZ_1M), 0).unwrap();
        mb.remove(p(0), 0).unwrap();
        mb.set_node(p(0), 0, 1).unwrap();
        assert_eq!(mb.memory.cnt(), 0);
        assert_eq!(mb.reserved.cnt(), 0);
    }

    #[test]
    fn reserve_merges_like_add() {
        // memblock_reserve_{overlap_top,between}_check: reserved is a region
        // array like memory; reserving the gap joins three into one.
        let mut mb = Memblock::new();
        mb.reserve(p(SZ_16M), SZ_1M).unwrap();
        mb.reserve(p(SZ_16M + SZ_2M), SZ_1M).unwrap();
        assert_eq!(mb.reserved.cnt(), 2);
        mb.reserve(p(SZ_16M + SZ_1M / 2), SZ_2M).unwrap();
        assert_eq!(spans(mb.reserved()), vec![(SZ_16M, 3 * SZ_1M)]);
        assert_eq!(mb.reserved_size(), 3 * SZ_1M);
        assert_eq!(mb.reserved()[0].nid, NO_NODE);
    }

    #[test]
    fn remove_splits_and_trims() {
        // memblock_remove_{simple,absent,overlap_top,overlap_bottom,within}_check.
        let base = SZ_16M;
        let size = 32 * SZ_1M;
        let fresh = || {
            let mut mb = Memblock::new();
            mb.add(p(base), size).unwrap();
            mb
        };
        // Absent: nothing changes.
        let mut mb = fresh();
        mb.remove(p(SZ_1G), SZ_1M).unwrap();
        assert_eq!(spans(mb.memory()), vec![(base, size)]);
        // Overlapping the start trims it.
        let mut mb = fresh();
        mb.remove(p(8 * SZ_1M), SZ_16M).unwrap();
        assert_eq!(spans(mb.memory()), vec![(24 * SZ_1M, 24 * SZ_1M)]);
        // Overlapping the end trims it.
        let mut mb = fresh();
        mb.remove(p(40 * SZ_1M), SZ_16M).unwrap();
        assert_eq!(spans(mb.memory()), vec![(base, 24 * SZ_1M)]);
        // Inside: the region splits in two.
        let mut mb = fresh();
        mb.remove(p(24 * SZ_1M), 8 * SZ_1M).unwrap();
        assert_eq!(
            spans(mb.memory()),
            vec![(base, 8 * SZ_1M), (32 * SZ_1M, SZ_16M)]
        );
        assert_eq!(mb.phys_mem_size(), 24 * SZ_1M);
        // Spanning several regions removes the middle and trims the edges.
        mb.add(p(64 * SZ_1M), SZ_16M).unwrap();
        mb.remove(p(20 * SZ_1M), 50 * SZ_1M).unwrap();
        assert_eq!(
            spans(mb.memory()),
            vec![(base, 4 * SZ_1M), (70 * SZ_1M, 10 * SZ_1M)]
        );
        // Removing everything leaves cnt == 0 (v6.11).
        mb.remove(p(0), PHYS_ADDR_MAX).unwrap();
        assert_eq!(mb.memory.cnt(), 0);
        assert_eq!(mb.phys_mem_size(), 0);
        mb.check().unwrap();
    }

    #[test]
    fn free_unreserves_and_splits() {
        // memblock_free_{simple,overlap_top,within}_check: memblock_phys_free
        // removes the range from reserved only.
        let mut mb = Memblock::new();
        mb.add(p(0), SZ_1G).unwrap();
        mb.reserve(p(SZ_16M), SZ_16M).unwrap();
        mb.free(p(SZ_16M + SZ_4K), SZ_4K).unwrap();
        assert_eq!(
            spans(mb.reserved()),
            vec![(SZ_16M, SZ_4K), (SZ_16M + 2 * SZ_4K, SZ_16M - 2 * SZ_4K)]
        );
        assert_eq!(mb.phys_mem_size(), SZ_1G);
        mb.free(p(0), 2 * SZ_16M).unwrap();
        assert_eq!(mb.reserved.cnt(), 0);
        assert_eq!(mb.reserved_size(), 0);
    }

    #[test]
    fn set_node_splits_and_remerges() {
        // memblock_set_node: isolate the range (splitting regions at its
        // edges), set the node, then merge compatible neighbours.
        let mut mb = Memblock::new();
        mb.add(p(0), 4 * SZ_1G).unwrap();
        mb.set_node(p(SZ_1G), SZ_1G, 1).unwrap();
        let got: Vec<_> = mb
            .memory()
            .iter()
            .map(|r| (r.base.0, r.size, r.nid))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, SZ_1G, NO_NODE),
                (SZ_1G, SZ_1G, 1),
                (2 * SZ_1G, 2 * SZ_1G, NO_NODE)
            ]
        );
        mb.set_node(p(0), 4 * SZ_1G, 0).unwrap();
        assert_eq!(mb.memory.cnt(), 1);
        assert_eq!(mb.memory()[0].nid, 0);
        // memmap_init_reserved_pages sets nodes on reserved regions too.
        mb.reserve(p(SZ_1M), SZ_1M).unwrap();
        mb.set_reserved_node(p(0), 4 * SZ_1G, 0).unwrap();
        assert_eq!(mb.reserved()[0].nid, 0);
        mb.check().unwrap();
    }

    #[test]
    fn nomap_splits_is_skipped_and_clears() {
        // memblock_mark_nomap: memory stays memory but is not map memory and
        // free-range walks skip it (should_skip_region); clearing re-merges.
        let mut mb = Memblock::new();
        mb.add(p(SZ_16M), SZ_16M).unwrap();
        mb.mark_nomap(p(28 * SZ_1M), 4 * SZ_1M).unwrap();
        assert_eq!(mb.memory.cnt(), 2);
        assert_eq!(mb.memory()[1].flags, RegionFlags::NOMAP);
        assert!(mb.is_memory(p(30 * SZ_1M)));
        assert!(!mb.is_map_memory(p(30 * SZ_1M)));
        assert!(mb.is_map_memory(p(20 * SZ_1M)));
        assert_eq!(
            ranges(&mb.free_ranges(None)),
            vec![(SZ_16M, 28 * SZ_1M, NO_NODE)]
        );
        // The allocator does not use NOMAP memory.
        assert_eq!(mb.alloc(SZ_4K, SZ_4K), Some(p(28 * SZ_1M - SZ_4K)));
        mb.clear_nomap(p(0), SZ_1G).unwrap();
        assert_eq!(spans(mb.memory()), vec![(SZ_16M, SZ_16M)]);
        mb.mark_hotplug(p(SZ_16M), SZ_1M).unwrap();
        assert_eq!(mb.memory()[0].flags, RegionFlags::HOTPLUG);
        mb.clear_hotplug(p(SZ_16M), SZ_1M).unwrap();
        assert_eq!(mb.memory.cnt(), 1);
    }

    #[test]
    fn too_many_regions_fails_without_change() {
        // memblock_double_array failing makes memblock_add_range and
        // memblock_isolate_range return -ENOMEM; here the cap plays that role.
        let mut mb = Memblock::new();
        mb.set_max_regions(2);
        mb.add(p(0), SZ_1M).unwrap();
        mb.add(p(SZ_2M), SZ_1M).unwrap();
        let before = mb.clone();
        let err = MemblockError::TooManyRegions {
            array: "memory",
            max: 2,
        };
        assert_eq!(mb.add(p(SZ_16M), SZ_1M), Err(err));
        assert_eq!(mb.remove(p(SZ_4K), SZ_4K), Err(err));
        assert_eq!(mb.mark_nomap(p(SZ_4K), SZ_4K), Err(err));
        assert_eq!(spans(mb.memory()), spans(before.memory()));
        assert_eq!(mb.phys_mem_size(), before.phys_mem_size());
        // Adding what is already covered needs no new slot.
        mb.add(p(0), SZ_1M).unwrap();
        // Removing a whole region needs no split.
        mb.remove(p(0), SZ_1M).unwrap();
        assert_eq!(
            alloc::format!("{err}"),
            "memblock: memory array is full (2 regions)"
        );
    }

    #[test]
    fn point_and_region_queries() {
        // memblock_is_memory/is_reserved (memblock_search),
        // memblock_is_region_memory (subset of one region),
        // memblock_is_region_reserved (any intersection).
        let mut mb = Memblock::new();
        mb.add(p(SZ_16M), SZ_16M).unwrap();
        mb.add_node(p(32 * SZ_1M), SZ_16M, 1).unwrap();
        mb.reserve(p(20 * SZ_1M), SZ_1M).unwrap();
        assert!(mb.is_memory(p(SZ_16M)));
        assert!(!mb.is_memory(p(SZ_16M - 1)));
        assert!(mb.is_memory(p(48 * SZ_1M - 1)));
        assert!(!mb.is_memory(p(48 * SZ_1M)));
        assert!(mb.is_reserved(p(20 * SZ_1M)));
        assert!(!mb.is_reserved(p(21 * SZ_1M)));
        assert!(mb.is_region_memory(p(SZ_16M), SZ_16M));
        assert!(!mb.is_region_memory(p(SZ_16M), SZ_16M + 1));
        assert!(!mb.is_region_memory(p(SZ_1M), SZ_1M));
        assert!(mb.is_region_reserved(p(19 * SZ_1M), SZ_1M + 1));
        assert!(!mb.is_region_reserved(p(19 * SZ_1M), SZ_1M));
        assert_eq!(mb.start_of_dram(), p(SZ_16M));
        assert_eq!(mb.end_of_dram(), p(48 * SZ_1M));
        assert_eq!(Memblock::new().end_of_dram(), p(0));
    }

    // ----- alloc_api.c ------------------------------------------------------

    #[test]
    fn top_down_returns_highest_fit() {
        // alloc_top_down_simple_check: top-down places the block at the end
        // of memory; it is reserved with RSRV_KERN (v6.16+) and no node.
        let mut mb = Memblock::new();
        mb.add(p(SZ_16M), SZ_256M).unwrap();
        let end = SZ_16M + SZ_256M;
        let a = mb.alloc(2048, SMP_CACHE_BYTES).unwrap();
        assert_eq!(a, p(end - 2048));
        assert_eq!(spans(mb.reserved()), vec![(end - 2048, 2048)]);
        assert_eq!(mb.reserved()[0].flags, RegionFlags::RSRV_KERN);
        assert_eq!(mb.reserved()[0].nid, NO_NODE);
        // A second allocation sits just below and merges with the first.
        let b = mb.alloc(2048, SMP_CACHE_BYTES).unwrap();
        assert_eq!(b, p(end - 4096));
        assert_eq!(spans(mb.reserved()), vec![(end - 4096, 4096)]);
    }

    #[test]
    fn top_down_skips_reserved_and_small_gaps() {
        // alloc_top_down_before_check / alloc_top_down_second_fit_check: the
        // block goes below a reservation and skips a gap that is too small.
        let mut mb = Memblock::new();
        mb.add(p(SZ_16M), SZ_16M).unwrap();
        mb.reserve(p(31 * SZ_1M), SZ_1M).unwrap();
        let a = mb.alloc(SZ_4K, SZ_4K).unwrap();
        assert_eq!(a, p(31 * SZ_1M - SZ_4K));
        // memblock_reserve (no flag) and an allocation (RSRV_KERN) touch
        // but do not merge: flags differ.
        assert_eq!(mb.reserved.cnt(), 2);
        // A 1 MiB gap at [24M, 25M) is too small for 2 MiB.
        mb.reserve(p(25 * SZ_1M), 6 * SZ_1M - SZ_4K).unwrap();
        mb.reserve(p(23 * SZ_1M), SZ_1M).unwrap();
        assert_eq!(mb.alloc(SZ_2M, SZ_4K), Some(p(21 * SZ_1M)));
        // reserve_kern regions do merge with allocations.
        let mut mb = Memblock::new();
        mb.add(p(SZ_16M), SZ_16M).unwrap();
        mb.reserve_kern(p(31 * SZ_1M), SZ_1M).unwrap();
        mb.alloc(SZ_4K, SZ_4K).unwrap();
        assert_eq!(
            spans(mb.reserved()),
            vec![(31 * SZ_1M - SZ_4K, SZ_1M + SZ_4K)]
        );
    }

    #[test]
    fn bottom_up_returns_lowest_fit() {
        // alloc_bottom_up_simple_check: bottom-up places the block at the
        // start of memory.
        let mut mb = Memblock::new();
        mb.set_bottom_up(true);
        assert!(mb.bottom_up());
        mb.add(p(SZ_16M), SZ_16M).unwrap();
        mb.reserve(p(SZ_16M), SZ_4K).unwrap();
        assert_eq!(mb.alloc(SZ_4K, SZ_4K), Some(p(SZ_16M + SZ_4K)));
        assert_eq!(mb.alloc(SZ_4K, SZ_4K), Some(p(SZ_16M + 2 * SZ_4K)));
    }

    #[test]
    fn never_returns_the_first_page() {
        // memblock_find_in_range_node: start = max(start, PAGE_SIZE), so 0 is
        // never returned (0 means failure in Linux).
        let mut mb = Memblock::new();
        mb.set_bottom_up(true);
        mb.add(p(0), SZ_1M).unwrap();
        assert_eq!(mb.alloc(SZ_4K, SZ_4K), Some(p(SZ_4K)));
        let mut mb = Memblock::new();
        mb.add(p(0), 2 * SZ_4K).unwrap();
        assert_eq!(mb.alloc(2 * SZ_4K, SZ_4K), None);
        assert_eq!(mb.alloc(SZ_4K, SZ_4K), Some(p(SZ_4K)));
        assert_eq!(mb.alloc(SZ_4K, SZ_4K), None);
    }

    #[test]
    fn alignment_is_honoured() {
        // __memblock_find_range_top_down rounds (end - size) down to align;
        // the bottom-up search rounds start up. align 0 means SMP_CACHE_BYTES.
        let mut mb = Memblock::new();
        mb.add(p(SZ_16M), SZ_16M).unwrap();
        assert_eq!(mb.alloc(100, SZ_1M), Some(p(31 * SZ_1M)));
        // The block above 31M leaves [31M + 100, 32M): room at its top.
        assert_eq!(mb.alloc(100, 0), Some(p(32 * SZ_1M - 128)));
        assert_eq!(mb.alloc(100, 3), None);
        mb.set_bottom_up(true);
        mb.reserve(p(SZ_16M), SZ_4K).unwrap();
        assert_eq!(mb.alloc(SZ_4K, SZ_1M), Some(p(17 * SZ_1M)));
        assert_eq!(mb.alloc(10, 0), Some(p(SZ_16M + SZ_4K)));
        assert_eq!(mb.alloc(10, 0), Some(p(SZ_16M + SZ_4K + 64)));
    }

    #[test]
    fn failures_reserve_nothing() {
        // alloc_no_memory_generic_check / alloc_too_large_generic_check:
        // no memory or no fit returns 0 (None) and reserves nothing.
        let mut mb = Memblock::new();
        assert_eq!(mb.alloc(SZ_4K, SZ_4K), None);
        mb.add(p(SZ_16M), SZ_16M).unwrap();
        assert_eq!(mb.alloc(SZ_16M + 1, SZ_4K), None);
        assert_eq!(mb.alloc(0, SZ_4K), None);
        assert_eq!(mb.reserved.cnt(), 0);
    }

    #[test]
    fn exact_fit_merges_and_free_unreserves() {
        // alloc_exact_fit / alloc then memblock_phys_free: the block fills the
        // only gap and merges with both RSRV_KERN neighbours; freeing it
        // splits the reservation again.
        let mut mb = Memblock::new();
        mb.add(p(SZ_16M), SZ_16M).unwrap();
        mb.reserve_kern(p(SZ_16M), 4 * SZ_1M).unwrap();
        mb.reserve_kern(p(21 * SZ_1M), 11 * SZ_1M).unwrap();
        assert_eq!(mb.alloc(SZ_1M, SZ_4K), Some(p(20 * SZ_1M)));
        assert_eq!(spans(mb.reserved()), vec![(SZ_16M, SZ_16M)]);
        assert!(mb.free_ranges(None).is_empty());
        assert_eq!(mb.alloc(SZ_4K, SZ_4K), None);
        mb.free(p(20 * SZ_1M), SZ_1M).unwrap();
        assert_eq!(mb.reserved.cnt(), 2);
        mb.free(p(0), SZ_1G).unwrap();
        assert_eq!(mb.reserved.cnt(), 0);
    }

    // ----- alloc_nid_api.c --------------------------------------------------

    #[test]
    fn range_limits() {
        // alloc_nid_top_down_simple_check / bottom_up: the block lies in
        // [min_addr, max_addr), at its top (top-down) or bottom (bottom-up).
        let mut mb = Memblock::new();
        mb.add(p(SZ_16M), SZ_256M).unwrap();
        let (lo, hi) = (p(20 * SZ_1M), p(24 * SZ_1M));
        assert_eq!(
            mb.alloc_range_nid(SZ_4K, SZ_4K, lo, hi, NO_NODE, false),
            Some(p(24 * SZ_1M - SZ_4K))
        );
        mb.set_bottom_up(true);
        assert_eq!(
            mb.alloc_range_nid(SZ_4K, SZ_4K, lo, hi, NO_NODE, false),
            Some(lo)
        );
        // Too large for the range.
        assert_eq!(
            mb.alloc_range_nid(4 * SZ_1M, SZ_4K, lo, hi, NO_NODE, false),
            None
        );
        // current_limit caps MEMBLOCK_ALLOC_ACCESSIBLE and larger ends.
        mb.set_bottom_up(false);
        mb.set_current_limit(p(64 * SZ_1M));
        assert_eq!(mb.alloc(SZ_4K, SZ_4K), Some(p(64 * SZ_1M - SZ_4K)));
        assert_eq!(
            mb.alloc_try_nid(SZ_4K, SZ_4K, p(0), MEMBLOCK_ALLOC_ANYWHERE, NO_NODE),
            Some(p(64 * SZ_1M - 2 * SZ_4K))
        );
    }

    #[test]
    fn try_nid_drops_min_addr() {
        // memblock_alloc_internal: "The min_addr limit is dropped if it can
        // not be satisfied" (alloc_nid_top_down_cap_min_check family).
        let mut mb = Memblock::new();
        mb.add(p(SZ_16M), SZ_16M).unwrap();
        mb.reserve(p(24 * SZ_1M), 8 * SZ_1M).unwrap();
        let (lo, hi) = (p(24 * SZ_1M), p(32 * SZ_1M));
        assert_eq!(
            mb.alloc_range_nid(SZ_4K, SZ_4K, lo, hi, NO_NODE, false),
            None
        );
        assert_eq!(
            mb.alloc_try_nid(SZ_4K, SZ_4K, lo, hi, NO_NODE),
            Some(p(24 * SZ_1M - SZ_4K))
        );
    }

    fn two_nodes() -> Memblock {
        let mut mb = Memblock::new();
        mb.add_node(p(SZ_16M), SZ_16M, 0).unwrap();
        mb.add_node(p(32 * SZ_1M), SZ_16M, 1).unwrap();
        mb
    }

    #[test]
    fn node_preference_and_fallback() {
        // memblock_alloc_range_nid: search the requested node first (here
        // node 0 although node 1 is higher), reserve with that node; if it
        // cannot hold the block and !exact_nid, fall back to any node and
        // reserve with no node (alloc_nid_top_down_numa_* checks).
        let mut mb = two_nodes();
        let a = mb
            .alloc_try_nid(SZ_4K, SZ_4K, p(0), MEMBLOCK_ALLOC_ACCESSIBLE, 0)
            .unwrap();
        assert_eq!(a, p(32 * SZ_1M - SZ_4K));
        assert_eq!(mb.reserved()[0].nid, 0);
        assert_eq!(
            mb.dump_reserved()
                .lines()
                .next()
                .unwrap()
                .split_whitespace()
                .nth(2),
            Some("0")
        );
        // Fill node 1, then ask for node 1: falls back to node 0's top.
        mb.reserve(p(32 * SZ_1M), SZ_16M).unwrap();
        let b = mb
            .alloc_try_nid(SZ_4K, SZ_4K, p(0), MEMBLOCK_ALLOC_ACCESSIBLE, 1)
            .unwrap();
        assert_eq!(b, p(32 * SZ_1M - 2 * SZ_4K));
        assert_eq!(mb.reserved()[0].nid, NO_NODE);
        // exact_nid: no fallback, nothing reserved.
        let before = mb.reserved_size();
        assert_eq!(
            mb.alloc_exact_nid(SZ_4K, SZ_4K, p(0), MEMBLOCK_ALLOC_ACCESSIBLE, 1),
            None
        );
        assert_eq!(
            mb.alloc_range_nid(SZ_4K, SZ_4K, p(0), MEMBLOCK_ALLOC_ANYWHERE, 1, true),
            None
        );
        assert_eq!(mb.reserved_size(), before);
    }

    #[test]
    fn node_outside_range_falls_back() {
        // alloc_nid_top_down_numa_no_overlap_split_check: the requested node
        // has no memory in [min, max); the block comes from another node.
        let mut mb = two_nodes();
        let (lo, hi) = (p(SZ_16M), p(32 * SZ_1M));
        assert_eq!(mb.alloc_range_nid(SZ_4K, SZ_4K, lo, hi, 1, true), None);
        assert_eq!(
            mb.alloc_range_nid(SZ_4K, SZ_4K, lo, hi, 1, false),
            Some(p(32 * SZ_1M - SZ_4K))
        );
        // Bottom-up on node 1 starts at node 1's base.
        mb.set_bottom_up(true);
        assert_eq!(
            mb.alloc_range_nid(SZ_4K, SZ_4K, p(0), MEMBLOCK_ALLOC_ANYWHERE, 1, true),
            Some(p(32 * SZ_1M))
        );
    }

    #[test]
    fn mirror_is_preferred_then_dropped() {
        // choose_memblock_flags / memblock_alloc_range_nid: with mirrored
        // memory present allocations try MEMBLOCK_MIRROR first, then retry
        // without it.
        let mut mb = Memblock::new();
        mb.add(p(SZ_16M), 32 * SZ_1M).unwrap();
        mb.mark_mirror(p(SZ_16M), SZ_1M).unwrap();
        assert_eq!(mb.alloc(SZ_4K, SZ_4K), Some(p(17 * SZ_1M - SZ_4K)));
        assert_eq!(mb.alloc(SZ_2M, SZ_4K), Some(p(48 * SZ_1M - SZ_2M)));
    }

    // ----- iterators, dumps -------------------------------------------------

    #[test]
    fn free_ranges_per_node() {
        // for_each_free_mem_range (__next_mem_range): memory minus reserved,
        // ascending, one range per memory region piece, tagged with the
        // memory region's node; a node filter skips other nodes.
        let mut mb = two_nodes();
        mb.reserve(p(20 * SZ_1M), 4 * SZ_1M).unwrap();
        mb.reserve(p(30 * SZ_1M), 4 * SZ_1M).unwrap();
        mb.reserve(p(100 * SZ_1M), SZ_1M).unwrap();
        assert_eq!(
            ranges(&mb.free_ranges(None)),
            vec![
                (SZ_16M, 20 * SZ_1M, 0),
                (24 * SZ_1M, 30 * SZ_1M, 0),
                (34 * SZ_1M, 48 * SZ_1M, 1)
            ]
        );
        assert_eq!(
            ranges(&mb.free_ranges(Some(1))),
            vec![(34 * SZ_1M, 48 * SZ_1M, 1)]
        );
    }

    #[test]
    fn pfn_ranges_round_inwards() {
        // __next_mem_pfn_range: PFN_UP(base)..PFN_DOWN(end), regions holding
        // no whole page are skipped, nid filters unless it is not a node.
        let mut mb = Memblock::new();
        mb.add_node(p(0x1800), 0x4000, 0).unwrap();
        mb.add_node(p(0x10100), 0xe00, 0).unwrap();
        mb.add_node(p(0x20000), 0x2000, 1).unwrap();
        mb.mark_nomap(p(0x20000), 0x1000).unwrap();
        assert_eq!(
            mb.pfn_ranges(None),
            vec![
                (Pfn(2), Pfn(5), 0),
                (Pfn(0x20), Pfn(0x21), 1),
                (Pfn(0x21), Pfn(0x22), 1)
            ]
        );
        assert_eq!(mb.pfn_ranges(Some(0)), vec![(Pfn(2), Pfn(5), 0)]);
        assert_eq!(mb.pfn_ranges(Some(MAX_NUMNODES)).len(), 3);
    }

    #[test]
    fn debugfs_dump_format() {
        // memblock_debug_show (6.18): "%4d: ", "%pa..%pa " with an inclusive
        // end, node as "%4d " or "%4c " 'x', then the lowest flag's name or NONE.
        let mut mb = Memblock::new();
        mb.add_node(p(0x1000), 0x9e000, 0).unwrap();
        mb.add_node(p(0x100000), 0x7fedf000, 0).unwrap();
        mb.mark_nomap(p(0x1000), 0x1000).unwrap();
        mb.reserve(p(0), 0x1000).unwrap();
        mb.alloc(SZ_4K, SZ_4K).unwrap();
        assert_eq!(
            mb.dump_memory(),
            "   0: 0x0000000000001000..0x0000000000001fff    0 NOMAP\n\
             \x20  1: 0x0000000000002000..0x000000000009efff    0 NONE\n\
             \x20  2: 0x0000000000100000..0x000000007ffdefff    0 NONE\n"
        );
        assert_eq!(
            mb.dump_reserved(),
            "   0: 0x0000000000000000..0x0000000000000fff    x NONE\n\
             \x20  1: 0x000000007ffde000..0x000000007ffdefff    x RSV_KERN\n"
        );
        assert_eq!(
            (RegionFlags::HOTPLUG | RegionFlags::MIRROR).name(),
            "HOTPLUG"
        );
        assert_eq!(RegionFlags::from_bits_retain(0x100).name(), "UNKNOWN");
        let dbg = alloc::format!("{mb:?}");
        assert!(dbg.starts_with("MEMBLOCK configuration:\n"));
        assert!(dbg.contains(" memory.cnt  = 0x3\n"));
        assert!(dbg.contains(" reserved[0x1]\t[0x000000007ffde000-0x000000007ffdefff], 0x0000000000001000 bytes flags: 0x20\n"));
    }

    #[test]
    fn check_catches_broken_arrays() {
        // Invariants memblock relies on (memblock_merge_regions BUG_ON):
        // sorted, non-overlapping, merged, total_size consistent.
        let mut mb = Memblock::new();
        mb.add(p(0), SZ_2M).unwrap();
        mb.check().unwrap();
        mb.memory.regions.push(Region {
            base: p(SZ_1M),
            size: SZ_2M,
            nid: NO_NODE,
            flags: RegionFlags::NONE,
        });
        assert!(matches!(
            mb.check(),
            Err(MemblockError::Corrupt { index: 0, .. })
        ));
    }

    // ----- property test ----------------------------------------------------

    const PAGES: u64 = 64;

    #[derive(Clone, Debug)]
    enum Op {
        Add(u64, u64),
        Remove(u64, u64),
        Reserve(u64, u64),
        Free(u64, u64),
        Alloc(u64, bool),
    }

    fn op() -> impl Strategy<Value = Op> {
        let range = (0..PAGES).prop_flat_map(|s| (Just(s), 0..=PAGES - s));
        prop_oneof![
            range.clone().prop_map(|(s, n)| Op::Add(s, n)),
            range.clone().prop_map(|(s, n)| Op::Remove(s, n)),
            range.clone().prop_map(|(s, n)| Op::Reserve(s, n)),
            range.prop_map(|(s, n)| Op::Free(s, n)),
            (1..8u64, any::<bool>()).prop_map(|(n, up)| Op::Alloc(n, up)),
        ]
    }

    /// Lowest or highest page p >= 1 (first page skipped) with pages
    /// p..p+n all memory and not reserved.
    fn model_alloc(mem: &[bool], res: &[bool], n: u64, bottom_up: bool) -> Option<u64> {
        let fits = |s: &u64| (*s..*s + n).all(|i| mem[i as usize] && !res[i as usize]);
        let mut starts = 1..=PAGES.saturating_sub(n);
        if bottom_up {
            starts.find(fits)
        } else {
            starts.rev().find(fits)
        }
    }

    proptest! {
        #[test]
        fn matches_page_bitmap_model(ops in proptest::collection::vec(op(), 1..40)) {
            // Region arrays must describe exactly the bytes a bitmap model
            // holds, stay sorted and merged, and allocate where a brute-force
            // search of the model says (top-down highest, bottom-up lowest).
            let mut mb = Memblock::new();
            let mut mem = vec![false; PAGES as usize];
            let mut res = vec![false; PAGES as usize];
            for op in ops {
                match op {
                    Op::Add(s, n) => {
                        mb.add(p(s * PAGE_SIZE), n * PAGE_SIZE).unwrap();
                        mem[s as usize..(s + n) as usize].fill(true);
                    }
                    Op::Remove(s, n) => {
                        mb.remove(p(s * PAGE_SIZE), n * PAGE_SIZE).unwrap();
                        mem[s as usize..(s + n) as usize].fill(false);
                    }
                    Op::Reserve(s, n) => {
                        mb.reserve(p(s * PAGE_SIZE), n * PAGE_SIZE).unwrap();
                        res[s as usize..(s + n) as usize].fill(true);
                    }
                    Op::Free(s, n) => {
                        mb.free(p(s * PAGE_SIZE), n * PAGE_SIZE).unwrap();
                        res[s as usize..(s + n) as usize].fill(false);
                    }
                    Op::Alloc(n, up) => {
                        mb.set_bottom_up(up);
                        let want = model_alloc(&mem, &res, n, up);
                        let got = mb.alloc(n * PAGE_SIZE, PAGE_SIZE);
                        prop_assert_eq!(got, want.map(|s| p(s * PAGE_SIZE)));
                        if let Some(s) = want {
                            res[s as usize..(s + n) as usize].fill(true);
                        }
                    }
                }
                prop_assert_eq!(mb.check(), Ok(()));
                let count = |v: &[bool]| v.iter().filter(|&&b| b).count() as u64 * PAGE_SIZE;
                prop_assert_eq!(mb.phys_mem_size(), count(&mem));
                prop_assert_eq!(mb.reserved_size(), count(&res));
                let mut free = vec![false; PAGES as usize];
                for r in mb.free_ranges(None) {
                    prop_assert!(r.start < r.end);
                    for pg in r.start.0 / PAGE_SIZE..r.end.0 / PAGE_SIZE {
                        free[pg as usize] = true;
                    }
                }
                for i in 0..PAGES as usize {
                    let a = p(i as u64 * PAGE_SIZE);
                    prop_assert_eq!(mb.is_memory(a), mem[i]);
                    prop_assert_eq!(mb.is_memory(a + (PAGE_SIZE - 1)), mem[i]);
                    prop_assert_eq!(mb.is_reserved(a), res[i]);
                    prop_assert_eq!(free[i], mem[i] && !res[i]);
                }
            }
        }
    }
}
