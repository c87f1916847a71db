//! Boot hand-over from memblock to the buddy allocator: size nodes and
//! zones, place each node's memmap in its own memory, initialise struct
//! pages, release free memory to the zones and size the watermarks.
//! Mirrors mm/mm_init.c (`free_area_init`, `memmap_init`, `memblock_free_all`).

use alloc::vec::Vec;

use crate::arch::Arch;
use crate::direct_map::DirectMap;
use crate::memblock::{Memblock, MEMBLOCK_ALLOC_ANYWHERE};
use crate::memmap::{memmap_bytes, Memmap, Page, PageFlags};
use crate::mmap::PMD_SIZE;
use crate::mmzone::{Node, Zone};
use crate::mmzone::{ZoneType, MAX_PAGE_ORDER};
use crate::page_alloc::PageAlloc;
use crate::percpu::{setup_per_cpu_areas, PercpuConfig};
use crate::printk::Printk;
use crate::types::{pages_to_kib, Pfn, PhysAddr, PAGE_SHIFT, PAGE_SIZE};
use crate::vmstat::VmEvent;

/// Pages of a node's highest zone initialised at boot; beyond this, whole
/// max-order blocks are left for deferred initialisation (Linux initialises
/// at least 2 GiB of the highest zone before deferring, `defer_init`).
pub const DEFER_AFTER_PAGES: u64 = (2 << 30) >> PAGE_SHIFT;

/// What boot needs to know about the machine besides memblock.
#[derive(Clone, Debug)]
pub struct BootParams {
    /// Architecture.
    pub arch: Arch,
    /// Number of NUMA nodes (node ids 0..nr_nodes).
    pub nr_nodes: u32,
    /// Node of each CPU.
    pub cpu_node: Vec<u32>,
    /// Node distance table.
    pub distance: Vec<Vec<u32>>,
    /// The per-CPU first chunk to set up once the memmap is placed (x86's
    /// `setup_per_cpu_areas`), if any.
    pub percpu: Option<PercpuConfig>,
    /// Hash tables allocated from memblock before the hand-over
    /// (`vfs_caches_init_early`: the dentry and inode caches).
    pub system_hashes: Vec<SystemHash>,
    /// The trace buffer the machine's tracepoints write to.
    pub trace: alloc::sync::Arc<crate::trace::Trace>,
    /// Who watches memmap_init's progress (a huge machine's boot), if
    /// anyone.
    pub progress: BootProgress,
}

/// Watches the longest part of boot, memmap_init (the struct pages of
/// every reserved page and of the free pages not deferred): a progress
/// bar's hook. Not in Linux, which prints nothing until it is done.
pub trait BootObserver: Send + Sync {
    /// `pages` struct pages are initialised so far.
    fn pages_initialised(&self, pages: u64);
    /// memmap_init is done.
    fn done(&self);
}

/// The [`BootObserver`] of a boot, if any. It is told every
/// [`BootProgress::CHUNK`] pages, so with none the cost is one test per
/// chunk. Two are equal when they are the same observer (or both none).
#[derive(Clone, Default)]
pub struct BootProgress(pub Option<alloc::sync::Arc<dyn BootObserver>>);

impl BootProgress {
    /// Pages between two reports (256 MiB of 4 KiB pages).
    pub const CHUNK: u64 = 1 << 16;

    /// Initialises the struct pages of `[a, b)` with `init`, reporting
    /// every [`Self::CHUNK`] pages; `done` counts the pages so far.
    fn init_range(&self, a: u64, b: u64, done: &mut u64, init: &mut dyn FnMut(u64)) {
        let mut s = a;
        while s < b {
            let e = b.min(s.saturating_add(Self::CHUNK));
            for pfn in s..e {
                init(pfn);
            }
            *done += e - s;
            if let Some(o) = &self.0 {
                o.pages_initialised(*done);
            }
            s = e;
        }
    }
}

impl core::fmt::Debug for BootProgress {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(if self.0.is_some() {
            "BootProgress(watched)"
        } else {
            "BootProgress(none)"
        })
    }
}

impl PartialEq for BootProgress {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => alloc::sync::Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl Eq for BootProgress {}

/// A boot-time hash table (`alloc_large_system_hash` with HASH_EARLY).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SystemHash {
    /// Name as logged ("Dentry cache").
    pub name: &'static str,
    /// Bytes per bucket.
    pub bucketsize: u64,
    /// Entries asked for on the command line (`dhash_entries=`), 0 to size
    /// by memory.
    pub entries: u64,
    /// One bucket per 2^scale bytes of low memory.
    pub scale: u32,
}

impl SystemHash {
    /// `dcache_init_early`: one `hlist_bl_head` per 8 KiB of low memory.
    pub const fn dentry(entries: u64) -> SystemHash {
        SystemHash {
            name: "Dentry cache",
            bucketsize: 8,
            entries,
            scale: 13,
        }
    }
    /// `inode_init_early`: one `hlist_head` per 16 KiB of low memory.
    pub const fn inode(entries: u64) -> SystemHash {
        SystemHash {
            name: "Inode-cache",
            bucketsize: 8,
            entries,
            scale: 14,
        }
    }

    /// log2 of the entries `alloc_large_system_hash` settles on, given the
    /// free low pages (`nr_kernel_pages`) and all free pages
    /// (`nr_all_pages`) memblock has when it runs: by default one bucket per
    /// 2^scale bytes of low memory (counted in whole MiB), at least a page
    /// of buckets; a power of two; at most 1/16 of memory.
    pub fn log2_entries(&self, nr_kernel_pages: u64, nr_all_pages: u64) -> u32 {
        let mut n = self.entries;
        if n == 0 {
            n = nr_kernel_pages.next_multiple_of((1 << 20) / PAGE_SIZE);
            n = if self.scale > PAGE_SHIFT {
                n >> (self.scale - PAGE_SHIFT)
            } else {
                n << (PAGE_SHIFT - self.scale)
            };
            if n * self.bucketsize < PAGE_SIZE {
                n = PAGE_SIZE / self.bucketsize;
            }
        }
        let max = (((nr_all_pages << PAGE_SHIFT) >> 4) / self.bucketsize).min(0x8000_0000);
        let n = n.max(1).checked_next_power_of_two().unwrap_or(max);
        n.min(max).max(1).ilog2()
    }
}

/// `alloc_large_system_hash` for the early tables: sizes each from the free
/// memory memblock has now, allocates it (halving on failure) and logs
/// "<name> hash table entries: N (order: k, B bytes, linear)".
fn alloc_system_hashes(mb: &mut Memblock, hashes: &[SystemHash], log: &Printk) {
    // calc_nr_kernel_pages: the free memblock ranges, low memory only on
    // 32-bit (below the highmem boundary).
    let (mut nr_all, mut nr_kernel) = (0, 0);
    let low_limit = mb.current_limit().0;
    for r in mb.free_ranges(None) {
        let (s, e) = (r.start.0.div_ceil(PAGE_SIZE), r.end.0 >> PAGE_SHIFT);
        if s < e {
            nr_all += e - s;
            let ke = if low_limit == 0 {
                e
            } else {
                e.min(low_limit >> PAGE_SHIFT)
            };
            nr_kernel += ke.saturating_sub(s);
        }
    }
    for h in hashes {
        let mut log2 = h.log2_entries(nr_kernel, nr_all);
        loop {
            let size = h.bucketsize << log2;
            if mb.alloc(size, 64).is_some() {
                let order = size.div_ceil(PAGE_SIZE).next_power_of_two().ilog2();
                crate::printk!(
                    log,
                    "{} hash table entries: {} (order: {}, {} bytes, linear)",
                    h.name,
                    1u64 << log2,
                    order,
                    size
                );
                break;
            }
            if size <= PAGE_SIZE || log2 == 0 {
                break;
            }
            log2 -= 1;
        }
    }
}

/// The kernel image's sections, where boot places them: `.text` at
/// `start`, `.rodata` and `.data` each on the next `align` boundary (the
/// large pages x86-64 maps the image with), the init sections from the
/// next page, `after_init` bytes the image keeps between them and `.bss`,
/// then `.bss`. memblock reserves `[start, end())`; the init sections and
/// the two alignment gaps go back to the buddy allocator at the end of
/// boot ([`free_initmem`]). Sizes are byte-exact, as the "Memory:" line and
/// /proc/iomem print them.
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelImage {
    /// Where the image starts (`_text`).
    pub start: PhysAddr,
    /// Text bytes (`_etext - _stext`).
    pub code: u64,
    /// Read-write data bytes (`_edata - _sdata`).
    pub rwdata: u64,
    /// Read-only data bytes (`__end_rodata - __start_rodata`).
    pub rodata: u64,
    /// Init section bytes (`__init_end - __init_begin`).
    pub init: u64,
    /// Bytes between the init sections and `.bss` that stay reserved.
    pub after_init: u64,
    /// BSS bytes.
    pub bss: u64,
    /// Alignment of `.rodata` and `.data` (a page when 0).
    pub align: u64,
}

impl KernelImage {
    fn align(&self) -> u64 {
        self.align.max(PAGE_SIZE)
    }
    /// `[_stext, _etext)`.
    pub fn text(&self) -> (u64, u64) {
        (self.start.0, self.start.0 + self.code)
    }
    /// `[__start_rodata, __end_rodata)`.
    pub fn rodata_range(&self) -> (u64, u64) {
        let s = self.text().1.next_multiple_of(self.align());
        (s, s + self.rodata)
    }
    /// `[_sdata, _edata)`.
    pub fn data(&self) -> (u64, u64) {
        let s = self.rodata_range().1.next_multiple_of(self.align());
        (s, s + self.rwdata)
    }
    /// `[__init_begin, __init_end)`.
    pub fn init_range(&self) -> (u64, u64) {
        let s = self.data().1.next_multiple_of(PAGE_SIZE);
        (s, s + self.init)
    }
    /// `[__bss_start, __bss_stop)`.
    pub fn bss_range(&self) -> (u64, u64) {
        let s = (self.init_range().1 + self.after_init).next_multiple_of(PAGE_SIZE);
        (s, s + self.bss)
    }
    /// Bytes memblock reserves for the image (`_end - _text`, page aligned).
    pub fn size(&self) -> u64 {
        self.bss_range().1.next_multiple_of(PAGE_SIZE) - self.start.0
    }
    /// What boot frees of the image once it runs (`free_initmem`, then
    /// `mark_rodata_ro`): the init sections, the gap between text and
    /// read-only data, and the gap between read-only data and data.
    pub fn freed_at_boot(&self) -> [(&'static str, u64, u64); 3] {
        let page = |x: u64| x.next_multiple_of(PAGE_SIZE);
        [
            (
                "unused kernel image (initmem)",
                self.init_range().0,
                page(self.init_range().1),
            ),
            (
                "unused kernel image (text/rodata gap)",
                page(self.text().1),
                self.rodata_range().0,
            ),
            (
                "unused kernel image (rodata/data gap)",
                page(self.rodata_range().1),
                self.data().0,
            ),
        ]
    }
}

/// Gives the image's init sections and alignment gaps back
/// (`free_reserved_area` for each of [`KernelImage::freed_at_boot`]),
/// logging "Freeing ... memory: NK" for each that is not empty.
/// Watermarks stay as they were: Linux computes them in initcalls that run
/// before `free_initmem`. Simplified: the pages go straight to the buddy
/// lists, where Linux frees them one by one through the per-CPU lists.
pub fn free_initmem(pa: &PageAlloc, image: &KernelImage) {
    for (what, start, end) in image.freed_at_boot() {
        let (lo, hi) = (start >> PAGE_SHIFT, end >> PAGE_SHIFT);
        if hi <= lo {
            continue;
        }
        let mut pfn = lo;
        while pfn < hi {
            let Some(z) = pa.zone_of(Pfn(pfn)) else {
                pfn += 1;
                continue;
            };
            let run_end = hi.min(z.end_pfn().0);
            for p in pfn..run_end {
                z.page(Pfn(p)).clear(PageFlags::RESERVED);
            }
            z.free_range_core(Pfn(pfn), Pfn(run_end));
            // free_reserved_area frees page by page, each counted in PGFREE.
            pa.events.count(VmEvent::Pgfree, run_end - pfn);
            pfn = run_end;
        }
        crate::printk!(
            pa.log,
            "Freeing {} memory: {}K",
            what,
            (hi - lo) << (PAGE_SHIFT - 10)
        );
    }
}

/// Why boot failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootError {
    /// memblock could not place a node's memmap.
    NoMemmap {
        /// The node.
        nid: u32,
        /// Bytes needed.
        bytes: u64,
    },
    /// No usable memory at all.
    NoMemory,
    /// memblock could not supply the per-CPU first chunk.
    NoPercpu,
}

impl core::fmt::Display for BootError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BootError::NoMemmap { nid, bytes } => {
                write!(f, "cannot allocate {bytes} bytes of memmap for node {nid}")
            }
            BootError::NoMemory => write!(f, "no usable memory in the firmware map"),
            BootError::NoPercpu => write!(f, "cannot allocate the per-CPU areas"),
        }
    }
}

/// Memory pages present in `[start, end)` according to memblock.
fn present_in(ranges: &[(Pfn, Pfn, u32)], start: u64, end: u64) -> u64 {
    ranges
        .iter()
        .map(|&(s, e, _)| e.0.min(end).saturating_sub(s.0.max(start)))
        .sum()
}

/// The holes `memmap_init` initialises as reserved: gaps before each memory
/// range (and after the last, up to its memory section's end), counting
/// only pageblocks whose memory section has a memmap (`pfn_valid`), each
/// reported against the zone of the range that follows it
/// (`init_unavailable_range`). Returns (zone index, pages) per report.
fn unavailable_ranges(arch: Arch, ranges: &[(Pfn, Pfn, u32)], zones: &[Zone]) -> Vec<(usize, u64)> {
    let section = 1u64 << (arch.section_size_bits() - PAGE_SHIFT);
    let valid = |pfn: u64| {
        let s = pfn & !(section - 1);
        ranges.iter().any(|&(a, b, _)| a.0 < s + section && b.0 > s)
    };
    let count = |from: u64, to: u64| {
        let mut n = 0;
        let mut pfn = from;
        while pfn < to {
            let block_end = (pfn | (crate::mmzone::PAGEBLOCK_NR_PAGES - 1)) + 1;
            if valid(pfn & !(crate::mmzone::PAGEBLOCK_NR_PAGES - 1)) {
                n += block_end.min(to) - pfn;
            }
            pfn = block_end;
        }
        n
    };
    let mut out = Vec::new();
    let mut hole = 0u64;
    let mut last_zone = 0;
    for &(start, end, _) in ranges {
        for z in zones.iter().filter(|z| z.spanned > 0) {
            let s = start.0.clamp(z.start_pfn.0, z.end_pfn().0);
            let e = end.0.clamp(z.start_pfn.0, z.end_pfn().0);
            if s >= e {
                continue;
            }
            if hole < s {
                let n = count(hole, s);
                if n > 0 {
                    out.push((z.idx, n));
                }
            }
            hole = e;
            last_zone = z.idx;
        }
    }
    let end = hole.next_multiple_of(section);
    if hole < end {
        let n = count(hole, end);
        if n > 0 {
            out.push((last_zone, n));
        }
    }
    out
}

/// Tells the RAM that boot is about to initialise the struct pages of
/// `[a, b)` in `z`'s memmap ([`DirectMap::prepare`]). The range lies in one
/// memblock range, whose sections have consecutive memmap slots.
fn prepare_memmap(dm: &DirectMap, z: &Zone, a: u64, b: u64) {
    if b > a {
        let first = z.page(Pfn(a)) as *const Page as *const u8;
        let last = z.page(Pfn(b - 1)) as *const Page as *const u8;
        let pa = dm.phys_of(first);
        dm.prepare(pa, dm.phys_of(last).0 + size_of::<Page>() as u64 - pa.0);
    }
}

/// Hands memory over from memblock to the buddy allocator and returns it.
/// memblock keeps its final state (for the debugfs-like dump); nothing may
/// allocate from it afterwards.
pub fn free_area_init(
    mb: &mut Memblock,
    dm: DirectMap,
    p: &BootParams,
    log: Printk,
) -> Result<PageAlloc, BootError> {
    let all = mb.pfn_ranges(None);
    let (Some(first), Some(last)) = (all.first(), all.last()) else {
        return Err(BootError::NoMemory);
    };
    let (min_pfn, max_pfn) = (first.0, last.1);
    let ends = p.arch.zone_end_pfns(min_pfn, max_pfn);
    let zones = p.arch.zones();
    let ncpus = p.cpu_node.len();

    crate::printk!(log, "Zone ranges:");
    let mut lo = min_pfn.0;
    for (i, z) in zones.iter().enumerate() {
        if *z == ZoneType::Movable {
            continue;
        }
        let hi = if *z == ZoneType::Device {
            lo
        } else {
            ends[i].0.max(lo)
        };
        if hi > lo {
            crate::printk!(
                log,
                "  {:<8} [mem {:#018x}-{:#018x}]",
                z.name(),
                lo << PAGE_SHIFT,
                (hi << PAGE_SHIFT) - 1
            );
        } else {
            crate::printk!(log, "  {:<8} empty", z.name());
        }
        lo = hi;
    }
    crate::printk!(log, "Movable zone start for each node");
    crate::printk!(log, "Early memory node ranges");
    for &(s, e, nid) in &all {
        crate::printk!(
            log,
            "  node {:>3}: [mem {:#018x}-{:#018x}]",
            nid,
            s.0 << PAGE_SHIFT,
            (e.0 << PAGE_SHIFT) - 1
        );
    }

    // The memmap of each node comes from that node's memory, top-down.
    mb.set_current_limit(match p.arch {
        a if a.is_32bit() => Pfn(crate::arch::X86_32_MAXMEM_PFN.min(max_pfn.0)).phys(),
        _ => MEMBLOCK_ALLOC_ANYWHERE,
    });
    let mut spans = Vec::new();
    for nid in 0..p.nr_nodes {
        let r = mb.pfn_ranges(Some(nid));
        let span = match (r.first(), r.last()) {
            (Some(f), Some(l)) => (f.0, l.1),
            _ => (Pfn(0), Pfn(0)),
        };
        let memmap = if span.1 .0 > span.0 .0 && p.arch.is_32bit() {
            // FLATMEM: one array over the span, holes included.
            let bytes = memmap_bytes(span.1 .0 - span.0 .0).next_multiple_of(PAGE_SIZE);
            let pa = mb
                .alloc_try_nid(bytes, PAGE_SIZE, PhysAddr(0), MEMBLOCK_ALLOC_ANYWHERE, nid)
                .ok_or(BootError::NoMemmap { nid, bytes })?;
            // SAFETY: memblock reserved `bytes` of RAM for it; RAM starts
            // zeroed and outlives the allocator (the machine owns both).
            unsafe { Memmap::new(dm.ptr(pa) as *const Page, span.0, span.1 .0 - span.0 .0) }
        } else if span.1 .0 > span.0 .0 {
            // SPARSEMEM_VMEMMAP (`sparse_init_nid`): one buffer of
            // `section_map_size()` (the memmap of a whole section, PMD
            // aligned) per section holding RAM, from above MAX_DMA_ADDRESS
            // where possible.
            let shift = p.arch.section_size_bits() - PAGE_SHIFT;
            let first = span.0 .0 >> shift;
            let present: Vec<bool> = (first..=(span.1 .0 - 1) >> shift)
                .map(|sec| {
                    let (lo, hi) = (sec << shift, (sec + 1) << shift);
                    r.iter().any(|&(a, b, _)| a.0 < hi && b.0 > lo)
                })
                .collect();
            let map_size = memmap_bytes(1 << shift).next_multiple_of(PMD_SIZE);
            let bytes = map_size * present.iter().filter(|&&p| p).count() as u64;
            let min = PhysAddr(p.arch.max_dma_address());
            let pa = mb
                .alloc_exact_nid(bytes, map_size, min, MEMBLOCK_ALLOC_ANYWHERE, nid)
                .ok_or(BootError::NoMemmap { nid, bytes })?;
            // SAFETY: memblock reserved a slot of RAM per present section;
            // RAM starts zeroed and outlives the allocator.
            unsafe {
                Memmap::new_sparse(
                    dm.ptr(pa) as *const Page,
                    span.0,
                    span.1 .0 - span.0 .0,
                    shift,
                    &present,
                )
            }
        } else {
            // SAFETY: an empty memmap is never dereferenced.
            unsafe { Memmap::new(core::ptr::NonNull::<Page>::dangling().as_ptr(), Pfn(0), 0) }
        };
        spans.push((span, r, memmap));
    }

    let mut nodes = Vec::new();
    for (nid, (span, ranges, memmap)) in spans.into_iter().enumerate() {
        let nid = nid as u32;
        if span.1 .0 > span.0 .0 {
            crate::printk!(
                log,
                "Initmem setup node {} [mem {:#018x}-{:#018x}]",
                nid,
                span.0.phys().0,
                span.1.phys().0 - 1
            );
        }
        let mut zone_vec = Vec::new();
        let mut zlo = 0u64;
        for (i, &zt) in zones.iter().enumerate() {
            let zhi = ends[i].0;
            let start = span.0 .0.clamp(zlo, zhi.max(zlo));
            let end = span.1 .0.clamp(zlo, zhi.max(zlo));
            let (start, end) = if matches!(zt, ZoneType::Movable | ZoneType::Device) || end <= start
            {
                (0, 0)
            } else {
                (start, end)
            };
            let present = present_in(&ranges, start, end);
            zone_vec.push(Zone::new(
                zt,
                i,
                nid,
                Pfn(start),
                end - start,
                present,
                memmap.clone(),
                ncpus,
                p.trace.clone(),
                dm.clone(),
            ));
            zlo = zhi.max(zlo);
        }
        for (zone_idx, pages) in unavailable_ranges(p.arch, &ranges, &zone_vec) {
            crate::printk!(
                log,
                "On node {}, zone {}: {} pages in unavailable ranges",
                nid,
                zone_vec[zone_idx].ztype.name(),
                pages
            );
        }
        let present = zone_vec.iter().map(|z| z.present).sum();
        nodes.push(Node {
            nid,
            start_pfn: span.0,
            spanned: span.1 .0 - span.0 .0,
            present,
            zones: zone_vec,
            stats: Default::default(),
            lruvec: Default::default(),
            kswapd: Default::default(),
        });
    }

    // start_kernel, before mm_core_init: the per-CPU areas, then the early
    // hash tables, both from memblock.
    let mut percpu_units = Vec::new();
    if let Some(cfg) = &p.percpu {
        let min = PhysAddr(p.arch.max_dma_address());
        percpu_units = setup_per_cpu_areas(mb, cfg, &p.cpu_node, p.nr_nodes, min, &log)
            .ok_or(BootError::NoPercpu)?;
    }
    alloc_system_hashes(mb, &p.system_hashes, &log);

    // memmap_init and memblock_free_all: initialise the struct pages of RAM,
    // mark what memblock reserved, free the rest (deferring whole max-order
    // blocks high in each node's top zone).
    let reserved: Vec<(u64, u64)> = mb
        .reserved()
        .iter()
        .map(|r| {
            (
                r.base.0 >> PAGE_SHIFT,
                (r.base.0 + r.size).div_ceil(PAGE_SIZE),
            )
        })
        .collect();
    let mut initialised = 0u64;
    let pa_dm = dm.clone();
    for node in &nodes {
        let Some(top) = node.zones.iter().rev().find(|z| z.present > 0) else {
            continue;
        };
        let defer_from =
            (top.start_pfn.0 + DEFER_AFTER_PAGES).next_multiple_of(1 << MAX_PAGE_ORDER);
        let node_ranges = mb.pfn_ranges(Some(node.nid));
        for z in node.zones.iter().filter(|z| z.present > 0) {
            // Reserved pages inside the zone: initialised and PG_reserved.
            for &(rs, re) in &reserved {
                for &(ms, me, _) in &node_ranges {
                    let s = rs.max(ms.0).max(z.start_pfn.0);
                    let e = re.min(me.0).min(z.end_pfn().0);
                    prepare_memmap(&pa_dm, z, s, e);
                    p.progress
                        .init_range(s, e.max(s), &mut initialised, &mut |pfn| {
                            let pg = z.page(Pfn(pfn));
                            pg.init(z.idx, node.nid);
                            pg.set(PageFlags::RESERVED);
                        });
                }
            }
            for fr in mb.free_ranges(Some(node.nid)) {
                let s = (fr.start.0.div_ceil(PAGE_SIZE)).max(z.start_pfn.0);
                let e = (fr.end.0 >> PAGE_SHIFT).min(z.end_pfn().0);
                if e <= s {
                    continue;
                }
                let (ds, de) = if z.idx == top.idx {
                    let ds = s.max(defer_from).next_multiple_of(1 << MAX_PAGE_ORDER);
                    let de = e & !((1 << MAX_PAGE_ORDER) - 1);
                    if de > ds {
                        (ds, de)
                    } else {
                        (e, e)
                    }
                } else {
                    (e, e)
                };
                for (a, b) in [(s, ds), (de, e)] {
                    if b > a {
                        prepare_memmap(&pa_dm, z, a, b);
                        p.progress.init_range(a, b, &mut initialised, &mut |pfn| {
                            z.page(Pfn(pfn)).init(z.idx, node.nid)
                        });
                        z.free_range_core(Pfn(a), Pfn(b));
                    }
                }
                if de > ds {
                    z.add_deferred(Pfn(ds), Pfn(de));
                }
            }
        }
    }

    if let Some(o) = &p.progress.0 {
        o.done();
    }

    let mut pa = PageAlloc::new(
        p.arch,
        nodes,
        p.cpu_node.clone(),
        p.distance.clone(),
        dm,
        log,
        p.trace.clone(),
    );
    pa.percpu_units = percpu_units;
    // memblock_free_all hands every page through `__free_pages_core`, whose
    // free counts in PGFREE as any other (vmstat's pgfree on a fresh
    // kernel is already millions); deferred blocks count when they are
    // freed, here at once with the rest, as they are already counted free.
    let freed: u64 = pa
        .nodes
        .iter()
        .flat_map(|n| &n.zones)
        .map(Zone::free_pages)
        .sum();
    pa.events.count(VmEvent::Pgfree, freed);
    pa.init_watermarks();
    let total_present: u64 = pa.nodes.iter().map(|n| n.present).sum();
    for nid in 0..p.nr_nodes {
        // build_zonelists: the node order, each node once.
        let mut order: Vec<u32> = Vec::new();
        for &(n, _) in pa.zonelist(nid) {
            if !order.contains(&n) {
                order.push(n);
            }
        }
        let list: alloc::string::String = order.iter().map(|n| alloc::format!("{n} ")).collect();
        crate::printk!(pa.log, "Fallback order for Node {}: {}", nid, list);
    }
    crate::printk!(
        pa.log,
        "Built {} zonelists, mobility grouping on.  Total pages: {}",
        p.nr_nodes,
        total_present
    );
    // The policy zone is the highest populated zone other than Movable
    // (`check_highest_zone`).
    let policy = pa
        .zones()
        .filter(|z| z.is_populated() && z.ztype != ZoneType::Movable)
        .map(|z| z.ztype)
        .max()
        .unwrap_or(ZoneType::Normal);
    crate::printk!(pa.log, "Policy zone: {}", policy.name());
    // report_meminit: this machine's kernel zeroes every stack variable
    // (CONFIG_INIT_STACK_ALL_ZERO=y in /proc/config.gz) and leaves the heap
    // alone (init_on_alloc/init_on_free off by default).
    crate::printk!(
        pa.log,
        "mem auto-init: stack:all(zero), heap alloc:off, heap free:off"
    );
    Ok(pa)
}

/// `mem_init_print_info`: the "Memory:" line, once the slab allocator is
/// up: free and present memory, the image's sections, and what stayed
/// reserved (memmap, page tables, per-CPU areas, hash tables, the image).
pub fn mem_init_print_info(pa: &PageAlloc, image: &KernelImage) {
    let total_present: u64 = pa.nodes.iter().map(|n| n.present).sum();
    crate::printk!(
        pa.log,
        "Memory: {}K/{}K available ({}K kernel code, {}K rwdata, {}K rodata, {}K init, {}K bss, {}K reserved, 0K cma-reserved)",
        pages_to_kib(pa.nr_free_pages()),
        pages_to_kib(total_present),
        image.code >> 10,
        image.rwdata >> 10,
        image.rodata >> 10,
        image.init >> 10,
        image.bss >> 10,
        pages_to_kib(total_present - pa.totalram_pages())
    );
}

/// Small machines booted straight from mm, for unit tests of mm alone.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::direct_map::HeapRam;

    /// A booted test machine: RAM, memblock's final state and the allocator.
    pub struct TestMachine {
        pub pa: PageAlloc,
        pub mb: Memblock,
    }

    /// Boots `ram` bytes of RAM at the arch's DRAM base with `ncpus` CPUs on
    /// one node; x86 reserves its first MiB, the kernel image takes 2 MiB.
    pub fn boot(arch: Arch, ram: u64, ncpus: usize) -> TestMachine {
        let base = arch.dram_base();
        let host = HeapRam::direct_map(base + ram);
        let mut mb = Memblock::new();
        mb.add_node(PhysAddr(base), ram, 0).unwrap();
        let kernel = if base == 0 {
            mb.reserve(PhysAddr(0), 1 << 20).unwrap();
            PhysAddr(1 << 20)
        } else {
            PhysAddr(base)
        };
        mb.reserve(kernel, 2 << 20).unwrap();
        let params = BootParams {
            arch,
            nr_nodes: 1,
            cpu_node: alloc::vec![0; ncpus],
            distance: alloc::vec![alloc::vec![10]],
            percpu: None,
            system_hashes: Vec::new(),
            trace: Default::default(),
            progress: Default::default(),
        };
        let image = KernelImage {
            start: kernel,
            code: 1 << 20,
            rwdata: 256 << 10,
            rodata: 512 << 10,
            init: 128 << 10,
            bss: 128 << 10,
            ..Default::default()
        };
        let pa = free_area_init(&mut mb, host, &params, Printk::new()).unwrap();
        mem_init_print_info(&pa, &image);
        TestMachine { pa, mb }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::boot;

    #[test]
    fn hash_sizes_follow_alloc_large_system_hash() {
        // 24 GiB, ~6.17M free low pages: one dentry bucket per 8 KiB is
        // 3.08M, rounded up to 2^22 (32 MiB), as this machine's boot log
        // says; inodes one per 16 KiB, 2^21. A command-line size is
        // rounded up to a power of two and capped at 1/16 of memory, even
        // an absurd one.
        let (kernel, all) = (6_170_000, 6_170_000);
        assert_eq!(SystemHash::dentry(0).log2_entries(kernel, all), 22);
        assert_eq!(SystemHash::inode(0).log2_entries(kernel, all), 21);
        assert_eq!(SystemHash::dentry(100_000).log2_entries(kernel, all), 17);
        let cap = (((all << PAGE_SHIFT) >> 4) / 8).ilog2();
        assert_eq!(SystemHash::dentry(u64::MAX).log2_entries(kernel, all), cap);
        // A tiny machine still gets a page of buckets.
        assert_eq!(SystemHash::inode(0).log2_entries(100, 100), 9);
    }
    use super::*;
    use crate::debug::check_page_alloc;

    #[test]
    fn x86_64_64m_has_dma_and_dma32_with_reserved_pages_unmanaged() {
        let m = boot(Arch::X86_64, 64 << 20, 2);
        let z = &m.pa.nodes[0].zones;
        assert_eq!(z[0].ztype, ZoneType::Dma);
        // Zone DMA starts at the first memory PFN and ends at 16 MiB.
        assert_eq!((z[0].start_pfn, z[0].end_pfn()), (Pfn(0), Pfn(4096)));
        assert_eq!(z[1].end_pfn(), Pfn(16384));
        assert_eq!(z[2].spanned, 0);
        // managed = present - reserved (first MiB, kernel, memmap); the
        // memmap is a whole 128 MiB section's (SPARSEMEM_VMEMMAP).
        let memmap_pages = memmap_bytes(32768).div_ceil(PAGE_SIZE);
        assert_eq!(m.pa.totalram_pages(), 16384 - 256 - 512 - memmap_pages);
        // memblock's final state keeps the memmap reserved next to the rest.
        assert_eq!(m.mb.reserved_size(), (256 + 512 + memmap_pages) * PAGE_SIZE);
        check_page_alloc(&m.pa).unwrap();
        let log = m.pa.log.messages().join("\n");
        assert!(
            log.contains("  DMA      [mem 0x0000000000000000-0x0000000000ffffff]"),
            "{log}"
        );
        assert!(log.contains("  Normal   empty"), "{log}");
        assert!(log.contains("Memory: "), "{log}");
    }

    #[test]
    fn mem_auto_init_line_follows_the_kernel_config() {
        // This machine's 6.18 prints "mem auto-init: stack:all(zero), heap
        // alloc:off, heap free:off" (dmesg; CONFIG_INIT_STACK_ALL_ZERO=y,
        // CONFIG_INIT_ON_ALLOC/FREE_DEFAULT_ON unset in /proc/config.gz),
        // right after "Policy zone:".
        let m = boot(Arch::X86_64, 256 << 20, 1);
        let log = m.pa.log.messages();
        let i = log
            .iter()
            .position(|l| l.starts_with("Policy zone: "))
            .unwrap();
        assert_eq!(
            log[i + 1],
            "mem auto-init: stack:all(zero), heap alloc:off, heap free:off"
        );
    }

    #[test]
    fn boot_frees_count_in_pgfree() {
        // memblock_free_all frees through `__free_pages_core`, which counts
        // PGFREE (mm/page_alloc.c), so a fresh kernel's vmstat already has
        // pgfree in the millions. tests/host/vmstat.txt shows it: pgfree
        // 1499481 - pgalloc_normal 618420 = 881061, about its nr_free_pages
        // 877261: frees outrun allocations by the memory freed at boot.
        let m = boot(Arch::X86_64, 8 << 30, 1);
        let free: u64 = m.pa.nodes[0].zones.iter().map(Zone::free_pages).sum();
        assert!(free > 0);
        assert_eq!(m.pa.events.get(VmEvent::Pgfree), free);
    }

    #[test]
    fn large_top_zone_is_deferred_but_counted_free() {
        let m = boot(Arch::X86_64, 8 << 30, 1);
        let normal = &m.pa.nodes[0].zones[2];
        let deferred: u64 = normal.lock_area().deferred().map(|(s, e)| e.0 - s.0).sum();
        assert!(deferred > 0, "nothing deferred");
        assert_eq!(normal.free_pages(), normal.managed());
        check_page_alloc(&m.pa).unwrap();
    }
}
