//! The MMU and TLB of one simulated CPU: translate virtual addresses by
//! walking mm's page tables in RAM, set accessed/dirty bits like hardware,
//! raise page faults with x86 error codes. Mirrors arch/x86/mm/tlb.c and arch/x86/mm/fault.c (error codes).
//!
//! The TLB caches leaf translations only (no paging-structure caches), per
//! page size, tagged by an address-space id like x86 PCIDs; global entries
//! match every id. A cached entry carries the permissions of the whole
//! walk (AND of RW and US, OR of NX over the levels) and whether the leaf
//! was dirty; a write through a clean entry walks again to set D.
//!
//! Simplifications: CR0.WP is always on; SMEP/SMAP and protection keys
//! are not modelled; a cached entry that forbids an access is dropped and
//! the tables walked again, so increasing permissions never needs a flush
//! (Linux tolerates the spurious fault real CPUs may take instead); as on
//! x86, a fault leaves no entry for the faulting address. PAE
//! PDPT entries are read from RAM on every walk, not loaded with CR3.
//!
//! arm64 (mode [`PagingMode::Arm64L4`]): the entries in RAM are ARMv8-A
//! descriptors, decoded by [`PagingMode::read_entry`]; an address with
//! bits 63..48 set is walked from TTBR1 (the kernel's `swapper_pg_dir`,
//! [`Mmu::set_ttbr1`]), one with them clear from TTBR0 (the root passed to
//! [`Mmu::translate`]). The access flag and hardware dirty state are set as
//! FEAT_HAFDBS does (AF, then RDONLY cleared under DBM). ASIDs: user pages
//! are nG, so their TLB entries carry the mm's ASID and a switch between
//! mms needs no flush; kernel pages are global and match every ASID, as
//! x86 PCIDs and global pages are modelled. Error codes stay x86's
//! (ESR_EL1 syndromes are not modelled: the fault handler only needs
//! present/write/user/exec, which both carry).

use mm::arch::pte::{PagingMode, Pte};
use mm::direct_map::DirectMap;
use mm::types::{Pfn, PhysAddr, VirtAddr, PAGE_SIZE};

/// The kind of memory access.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// Data read.
    Read,
    /// Data write.
    Write,
    /// Instruction fetch.
    Exec,
}

/// Page-fault error-code bit: the page was present (a protection fault).
pub const PF_PROT: u32 = 1 << 0;
/// Page-fault error-code bit: the access was a write.
pub const PF_WRITE: u32 = 1 << 1;
/// Page-fault error-code bit: the access came from user mode.
pub const PF_USER: u32 = 1 << 2;
/// Page-fault error-code bit: a reserved bit was set in an entry.
pub const PF_RSVD: u32 = 1 << 3;
/// Page-fault error-code bit: the access was an instruction fetch.
pub const PF_INSTR: u32 = 1 << 4;
/// Not an x86 error-code bit: the address was not canonical, which on
/// hardware is a general-protection fault rather than a page fault.
pub const PF_NONCANONICAL: u32 = 1 << 31;

/// A page fault (#PF): the faulting address (CR2) and the error code
/// (`enum x86_pf_error_code` in arch/x86/include/asm/trap_pf.h).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PageFault {
    /// The virtual address that faulted.
    pub addr: VirtAddr,
    /// Bits [`PF_PROT`], [`PF_WRITE`], [`PF_USER`], [`PF_RSVD`], [`PF_INSTR`].
    pub error_code: u32,
}

/// TLB counters.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct TlbStats {
    /// Translations served from the TLB.
    pub hits: u64,
    /// Lookups that found no usable entry.
    pub misses: u64,
    /// Page-table walks (misses plus walks to set a dirty bit).
    pub walks: u64,
    /// Flush operations requested (page, range, asid, all, kernel range).
    pub flushes: u64,
}

const V: u8 = 1 << 0;
const W: u8 = 1 << 1;
const U: u8 = 1 << 2;
const NX: u8 = 1 << 3;
const DIRTY: u8 = 1 << 4;
const GLOBAL: u8 = 1 << 5;

/// One cached translation.
#[derive(Copy, Clone, Debug, Default)]
struct Entry {
    /// Virtual page number at this array's page size.
    vpn: u64,
    /// Physical address of the page.
    pa: u64,
    asid: u16,
    perm: u8,
}

/// A set-associative array of entries for one page size.
#[derive(Clone, Debug)]
struct Array<const SETS: usize, const WAYS: usize> {
    sets: [[Entry; WAYS]; SETS],
    next: [u8; SETS],
}

impl<const SETS: usize, const WAYS: usize> Array<SETS, WAYS> {
    fn new() -> Self {
        Array {
            sets: [[Entry::default(); WAYS]; SETS],
            next: [0; SETS],
        }
    }

    #[inline]
    fn set_of(vpn: u64) -> usize {
        (vpn as usize) & (SETS - 1)
    }

    #[inline]
    fn find(&self, vpn: u64, asid: u16) -> Option<usize> {
        let set = &self.sets[Self::set_of(vpn)];
        (0..WAYS).find(|&w| {
            let e = &set[w];
            e.perm & V != 0 && e.vpn == vpn && (e.asid == asid || e.perm & GLOBAL != 0)
        })
    }

    fn insert(&mut self, e: Entry) {
        let s = Self::set_of(e.vpn);
        let set = &mut self.sets[s];
        // Replace a matching or invalid way first, else round-robin.
        let way = (0..WAYS)
            .find(|&w| set[w].perm & V != 0 && set[w].vpn == e.vpn && set[w].asid == e.asid)
            .or_else(|| (0..WAYS).find(|&w| set[w].perm & V == 0))
            .unwrap_or_else(|| {
                let w = self.next[s] as usize % WAYS;
                self.next[s] = ((w + 1) % WAYS) as u8;
                w
            });
        set[way] = e;
    }

    /// Drops entries for `vpn` that match `asid` (or any asid if `None`),
    /// global ones included.
    fn invalidate_vpn(&mut self, vpn: u64, asid: Option<u16>) {
        for e in self.sets[Self::set_of(vpn)].iter_mut() {
            if e.vpn == vpn && (asid.is_none_or(|a| a == e.asid) || e.perm & GLOBAL != 0) {
                e.perm = 0;
            }
        }
    }

    fn invalidate_where(&mut self, f: impl Fn(&Entry) -> bool) {
        for set in self.sets.iter_mut() {
            for e in set.iter_mut() {
                if e.perm & V != 0 && f(e) {
                    e.perm = 0;
                }
            }
        }
    }

    fn valid_count(&self) -> usize {
        self.sets
            .iter()
            .flatten()
            .filter(|e| e.perm & V != 0)
            .count()
    }
}

/// A CPU's TLB: 512 4 KiB entries (128 sets x 4 ways), 32 entries for
/// 2/4 MiB pages (8 x 4) and 4 for 1 GiB pages, tagged by address-space id.
/// Fixed arrays: a lookup probes at most 12 entries and touches no heap.
#[derive(Clone, Debug)]
pub struct Tlb {
    small: Array<128, 4>,
    large: Array<8, 4>,
    giant: Array<1, 4>,
    stats: TlbStats,
}

/// Longest range, in pages, that [`Tlb::flush_range`] flushes page by
/// page; longer ones flush the whole address space
/// (`tlb_single_page_flush_ceiling` in arch/x86/mm/tlb.c).
pub const TLB_SINGLE_PAGE_FLUSH_CEILING: u64 = 33;

impl Default for Tlb {
    fn default() -> Self {
        Self::new()
    }
}

impl Tlb {
    /// An empty TLB.
    pub fn new() -> Self {
        Tlb {
            small: Array::new(),
            large: Array::new(),
            giant: Array::new(),
            stats: TlbStats::default(),
        }
    }

    /// The counters.
    pub fn stats(&self) -> TlbStats {
        self.stats
    }

    /// Number of valid entries (for tests and /proc-like views).
    pub fn len(&self) -> usize {
        self.small.valid_count() + self.large.valid_count() + self.giant.valid_count()
    }

    /// True if no entry is valid.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cached entry for `va`: (entry, page shift).
    #[inline]
    fn probe(&self, mode: PagingMode, asid: u16, va: u64) -> Option<(Entry, u32)> {
        let s = mode.shift(1);
        if let Some(w) = self.small.find(va >> s, asid) {
            return Some((self.small.sets[Array::<128, 4>::set_of(va >> s)][w], s));
        }
        let s = mode.shift(2);
        if let Some(w) = self.large.find(va >> s, asid) {
            return Some((self.large.sets[Array::<8, 4>::set_of(va >> s)][w], s));
        }
        if mode.huge_ok(3) {
            let s = mode.shift(3);
            if let Some(w) = self.giant.find(va >> s, asid) {
                return Some((self.giant.sets[0][w], s));
            }
        }
        None
    }

    fn drop_entry(&mut self, mode: PagingMode, asid: u16, va: u64, shift: u32) {
        let vpn = va >> shift;
        if shift == mode.shift(1) {
            self.small.invalidate_vpn(vpn, Some(asid));
        } else if shift == mode.shift(2) {
            self.large.invalidate_vpn(vpn, Some(asid));
        } else {
            self.giant.invalidate_vpn(vpn, Some(asid));
        }
    }

    fn fill(&mut self, asid: u16, va: u64, level: u8, shift: u32, pa: u64, perm: u8) {
        let e = Entry {
            vpn: va >> shift,
            pa,
            asid,
            perm,
        };
        match level {
            1 => self.small.insert(e),
            2 => self.large.insert(e),
            _ => self.giant.insert(e),
        }
    }

    fn invalidate_page(&mut self, asid: Option<u16>, va: VirtAddr) {
        // Shifts of every mode: 12 for 4 KiB, 21/22 for large, 30 for 1 GiB.
        self.small.invalidate_vpn(va.0 >> 12, asid);
        self.large.invalidate_vpn(va.0 >> 21, asid);
        self.large.invalidate_vpn(va.0 >> 22, asid);
        self.giant.invalidate_vpn(va.0 >> 30, asid);
    }

    /// Drops the translation of the page holding `va` in `asid` (and a
    /// global one for it): INVLPG / `flush_tlb_one_user`.
    pub fn flush_page(&mut self, asid: u16, va: VirtAddr) {
        self.stats.flushes += 1;
        self.invalidate_page(Some(asid), va);
    }

    /// Drops the translations of `[start, end)` in `asid`, page by page up
    /// to [`TLB_SINGLE_PAGE_FLUSH_CEILING`] pages, else the whole asid
    /// (`flush_tlb_mm_range`).
    pub fn flush_range(&mut self, asid: u16, start: VirtAddr, end: VirtAddr) {
        if end <= start {
            return;
        }
        let pages = (end.0 - start.0).div_ceil(PAGE_SIZE);
        if pages > TLB_SINGLE_PAGE_FLUSH_CEILING {
            self.flush_asid(asid);
            return;
        }
        self.stats.flushes += 1;
        for i in 0..pages {
            self.invalidate_page(
                Some(asid),
                VirtAddr(start.page_down().0.wrapping_add(i * PAGE_SIZE)),
            );
        }
    }

    /// Drops every non-global translation of `asid` (a CR3 write without
    /// the no-flush bit, or INVPCID single-context).
    pub fn flush_asid(&mut self, asid: u16) {
        self.stats.flushes += 1;
        let f = |e: &Entry| e.asid == asid && e.perm & GLOBAL == 0;
        self.small.invalidate_where(f);
        self.large.invalidate_where(f);
        self.giant.invalidate_where(f);
    }

    /// Drops every non-global entry of every asid.
    pub fn flush_user(&mut self) {
        self.stats.flushes += 1;
        let f = |e: &Entry| e.perm & GLOBAL == 0;
        self.small.invalidate_where(f);
        self.large.invalidate_where(f);
        self.giant.invalidate_where(f);
    }

    /// Drops everything, global entries included (`flush_tlb_all`).
    pub fn flush_all(&mut self) {
        self.stats.flushes += 1;
        self.small.invalidate_where(|_| true);
        self.large.invalidate_where(|_| true);
        self.giant.invalidate_where(|_| true);
    }

    /// Drops the translations of kernel range `[start, end)` in every asid,
    /// global ones included, or everything if the range is longer than the
    /// ceiling (`flush_tlb_kernel_range`).
    pub fn flush_kernel_range(&mut self, start: VirtAddr, end: VirtAddr) {
        if end <= start {
            return;
        }
        let pages = (end.0 - start.0).div_ceil(PAGE_SIZE);
        if pages > TLB_SINGLE_PAGE_FLUSH_CEILING {
            self.flush_all();
            return;
        }
        self.stats.flushes += 1;
        for i in 0..pages {
            self.invalidate_page(
                None,
                VirtAddr(start.page_down().0.wrapping_add(i * PAGE_SIZE)),
            );
        }
    }
}

/// The memory-management unit of one CPU.
#[derive(Clone, Debug, Default)]
pub struct Mmu {
    /// This CPU's TLB.
    pub tlb: Tlb,
    /// Set by a shootdown issued where the CPUs cannot be reached (reclaim
    /// inside an allocation): the CPU drops its user translations before
    /// its next one, as an IPI would have made it do.
    pub shootdown: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// TTBR1_EL1 on arm64: the root of the kernel's half (`None` on x86,
    /// whose processes share the kernel half in their own PGD).
    ttbr1: Option<Pfn>,
}

/// The shootdown reclaim issues: every CPU's flag is raised, and each CPU
/// flushes its non-global entries before it translates again (so before
/// any access can reach a page reclaim freed).
pub struct DeferredShootdown(pub Vec<std::sync::Arc<std::sync::atomic::AtomicBool>>);

impl mm::vmscan::Shootdown for DeferredShootdown {
    fn flush(&self, _asid: u16, _start: VirtAddr, _end: VirtAddr) {
        for f in &self.0 {
            f.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

impl Mmu {
    /// An MMU with an empty TLB.
    pub fn new() -> Self {
        Mmu::default()
    }

    /// Loads TTBR1 (arm64): kernel addresses are walked from `root`.
    pub fn set_ttbr1(&mut self, root: Pfn) {
        self.ttbr1 = Some(root);
    }

    /// Translates `va` for an `access` from user (`user`) or kernel mode,
    /// with page tables rooted at `pt_root` in `mode`, for address space
    /// `asid`. On a TLB hit the cached permissions are checked; on a miss
    /// (or a write through an entry cached clean) the tables in RAM are
    /// walked: present, user, write (CR0.WP: supervisor writes to
    /// read-only pages fault too) and NX checked at every level, the
    /// accessed bit set on each entry used and the dirty bit on the leaf
    /// for a write (atomic OR, like hardware), then the TLB is filled.
    /// A table pointer outside RAM faults with [`PF_PROT`] | [`PF_RSVD`] (a
    /// machine check on hardware); a non-canonical address with
    /// [`PF_NONCANONICAL`]. `asid` must name the address space rooted at
    /// `pt_root`: before reusing an asid for another mm, flush it (as
    /// Linux does when it recycles a PCID).
    ///
    /// The hit path probes fixed arrays only: no heap, no hashing.
    #[allow(clippy::too_many_arguments)]
    pub fn translate(
        &mut self,
        dm: &DirectMap,
        pt_root: Pfn,
        mode: PagingMode,
        asid: u16,
        va: VirtAddr,
        access: Access,
        user: bool,
    ) -> Result<PhysAddr, PageFault> {
        let base_code = (if user { PF_USER } else { 0 })
            | match access {
                Access::Read => 0,
                Access::Write => PF_WRITE,
                // I/D is reported only with NX (or SMEP, not modelled).
                Access::Exec if mode.has_nx() => PF_INSTR,
                Access::Exec => 0,
            };
        if !mode.is_canonical(va) {
            return Err(PageFault {
                addr: va,
                error_code: base_code | PF_NONCANONICAL,
            });
        }
        if self.shootdown.load(std::sync::atomic::Ordering::Relaxed) {
            self.shootdown
                .store(false, std::sync::atomic::Ordering::Relaxed);
            self.tlb.flush_user();
        }
        // TLB tags use the canonical address, the one flushes name.
        let addr = va.0;
        if let Some((e, shift)) = self.tlb.probe(mode, asid, addr) {
            if allowed(e.perm, access, user) && (access != Access::Write || e.perm & DIRTY != 0) {
                self.tlb.stats.hits += 1;
                return Ok(PhysAddr(e.pa | (addr & ((1 << shift) - 1))));
            }
            // Stale-looking or clean: forget it and walk.
            self.tlb.drop_entry(mode, asid, addr, shift);
        }
        self.tlb.stats.misses += 1;
        let root = if mode.split_roots() && addr >> 63 == 1 {
            match self.ttbr1 {
                Some(r) => r,
                None => {
                    return Err(PageFault {
                        addr: va,
                        error_code: base_code,
                    })
                }
            }
        } else {
            pt_root
        };
        self.walk(dm, root, mode, asid, va, addr, access, user, base_code)
    }

    #[allow(clippy::too_many_arguments)]
    fn walk(
        &mut self,
        dm: &DirectMap,
        pt_root: Pfn,
        mode: PagingMode,
        asid: u16,
        va: VirtAddr,
        addr: u64,
        access: Access,
        user: bool,
        code: u32,
    ) -> Result<PhysAddr, PageFault> {
        self.tlb.stats.walks += 1;
        let fault = |extra: u32| PageFault {
            addr: va,
            error_code: code | extra,
        };
        let mut perm = V | W | U;
        let mut table = pt_root;
        let mut level = mode.levels();
        // Entries used, to set A on once the access is known to be allowed.
        let mut used: [PhysAddr; 5] = [PhysAddr(0); 5];
        let mut nused = 0;
        let (leaf_pa, leaf) = loop {
            let pa = mode.entry_pa(table, mode.index(VirtAddr(addr), level));
            if !dm.contains(pa, mode.entry_size()) {
                return Err(fault(PF_PROT | PF_RSVD));
            }
            let e = mode.read_entry(dm, pa);
            if !e.present() {
                return Err(fault(0));
            }
            let pdpte = mode == PagingMode::X86Pae && level == mode.levels();
            if reserved_bits(mode, e, level, pdpte) {
                return Err(fault(PF_PROT | PF_RSVD));
            }
            if !pdpte {
                if !e.writable() {
                    perm &= !W;
                }
                if !e.user() {
                    perm &= !U;
                }
                if e.nx() {
                    perm |= NX;
                }
                used[nused] = pa;
                nused += 1;
            }
            if level == 1 || (e.huge() && mode.huge_ok(level)) {
                break (pa, e);
            }
            table = e.pfn();
            level -= 1;
        };
        if !allowed(perm, access, user) {
            return Err(fault(PF_PROT));
        }
        for &pa in &used[..nused.saturating_sub(1)] {
            mode.or_entry(dm, pa, Pte::A);
        }
        let mut bits = Pte::A;
        if access == Access::Write {
            bits |= Pte::D;
        }
        let now = mode.or_entry(dm, leaf_pa, bits).set_bits(bits);
        if now.dirty() {
            perm |= DIRTY;
        }
        if leaf.global() {
            perm |= GLOBAL;
        }
        let shift = mode.shift(level);
        let page_pa = now.phys().0 & !((1u64 << shift) - 1);
        self.tlb.fill(asid, addr, level, shift, page_pa, perm);
        Ok(PhysAddr(page_pa | (addr & ((1 << shift) - 1))))
    }

    /// [`Tlb::flush_page`].
    pub fn flush_page(&mut self, asid: u16, va: VirtAddr) {
        self.tlb.flush_page(asid, va)
    }
    /// [`Tlb::flush_range`].
    pub fn flush_range(&mut self, asid: u16, start: VirtAddr, end: VirtAddr) {
        self.tlb.flush_range(asid, start, end)
    }
    /// [`Tlb::flush_asid`].
    pub fn flush_asid(&mut self, asid: u16) {
        self.tlb.flush_asid(asid)
    }
    /// [`Tlb::flush_all`].
    pub fn flush_all(&mut self) {
        self.tlb.flush_all()
    }
    /// [`Tlb::flush_kernel_range`].
    pub fn flush_kernel_range(&mut self, start: VirtAddr, end: VirtAddr) {
        self.tlb.flush_kernel_range(start, end)
    }
}

/// True if `perm` allows `access` in the given mode (CR0.WP always set).
#[inline]
fn allowed(perm: u8, access: Access, user: bool) -> bool {
    if user && perm & U == 0 {
        return false;
    }
    match access {
        Access::Read => true,
        Access::Write => perm & W != 0,
        Access::Exec => perm & NX == 0,
    }
}

/// Reserved bits the hardware checks: PS in a PGD/P4D entry (and in the
/// PUD on PAE-less modes, where no level-3 exists), NX without NX support,
/// and everything but P/PWT/PCD and the address in a PAE PDPT entry.
fn reserved_bits(mode: PagingMode, e: Pte, level: u8, pdpte: bool) -> bool {
    if pdpte {
        return e.raw() & !(mode.pfn_mask() | Pte::P | Pte::PWT | Pte::PCD | 0xe00) != 0;
    }
    (e.huge() && level > 1 && !mode.huge_ok(level)) || (e.nx() && !mode.has_nx())
}

/// Number of usable address-space ids: x86 PCIDs are 12 bits and 0 is
/// the kernel's.
pub const NR_ASIDS: u16 = 4095;

/// Hands out address-space ids to live address spaces, each unique while
/// its mm lives (arch/x86/mm/tlb.c keeps a few per CPU with generations;
/// one machine-wide pool is the simpler equivalent). An id that was used
/// before must have its stale translations flushed on every CPU before
/// reuse: [`AsidAllocator::alloc`] says when.
#[derive(Clone, Debug)]
pub struct AsidAllocator {
    in_use: Vec<u64>,
    ever: Vec<u64>,
    next: u16,
}

impl Default for AsidAllocator {
    fn default() -> Self {
        let words = (NR_ASIDS as usize + 1).div_ceil(64);
        AsidAllocator {
            in_use: vec![0; words],
            ever: vec![0; words],
            next: 1,
        }
    }
}

impl AsidAllocator {
    fn bit(v: &[u64], a: u16) -> bool {
        v[a as usize / 64] & (1 << (a % 64)) != 0
    }
    /// A free id, next-fit from the last one given, and whether it was used
    /// before (so the caller must flush it everywhere). `None` when all
    /// [`NR_ASIDS`] are live.
    pub fn alloc(&mut self) -> Option<(u16, bool)> {
        for i in 0..NR_ASIDS {
            let a = (self.next - 1 + i) % NR_ASIDS + 1;
            if !Self::bit(&self.in_use, a) {
                let reused = Self::bit(&self.ever, a);
                self.in_use[a as usize / 64] |= 1 << (a % 64);
                self.ever[a as usize / 64] |= 1 << (a % 64);
                self.next = a % NR_ASIDS + 1;
                return Some((a, reused));
            }
        }
        None
    }
    /// Gives an id back.
    pub fn free(&mut self, a: u16) {
        if a > 0 && a <= NR_ASIDS {
            self.in_use[a as usize / 64] &= !(1 << (a % 64));
        }
    }
    /// Number of live ids.
    pub fn live(&self) -> usize {
        self.in_use.iter().map(|w| w.count_ones() as usize).sum()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn asids_are_unique_while_live_and_flagged_on_reuse() {
        let mut a = super::AsidAllocator::default();
        let mut live = std::collections::BTreeSet::new();
        for _ in 0..super::NR_ASIDS {
            let (id, reused) = a.alloc().unwrap();
            assert!(!reused && (1..=super::NR_ASIDS).contains(&id));
            assert!(live.insert(id), "asid {id} handed out twice");
        }
        assert_eq!(a.alloc(), None, "all ids live");
        a.free(4095);
        a.free(1);
        let (x, reused) = a.alloc().unwrap();
        assert!(reused && (x == 1 || x == 4095));
        assert_eq!(a.live(), super::NR_ASIDS as usize - 1);
    }

    use super::*;
    use mm::arch::layout::AddressSpaceLayout;
    use mm::arch::pte::PteFlags;
    use mm::direct_map::HeapRam;
    use mm::pgtable::{PageTable, PgtableAlloc};

    /// Hands out frames from the top of RAM down.
    struct Frames(Vec<Pfn>);
    impl PgtableAlloc for Frames {
        fn alloc_table(&mut self) -> Option<Pfn> {
            self.0.pop()
        }
        fn free_table(&mut self, pfn: Pfn) {
            self.0.push(pfn)
        }
    }

    const RAM: u64 = 16 << 20;

    /// The x86 modes: the tests below check x86 error codes and raw entry
    /// bits; arm64 has its own test ([`arm64_ttbr_split_access_flag_and_dbm`]).
    const X86_MODES: [PagingMode; 4] = [
        PagingMode::X86_64L4,
        PagingMode::X86_64L5,
        PagingMode::X86_32,
        PagingMode::X86Pae,
    ];

    #[test]
    fn arm64_ttbr_split_access_flag_and_dbm() {
        use mm::arch::arm64;
        let mode = PagingMode::Arm64L4;
        let dm = HeapRam::direct_map(RAM);
        let mut frames = Frames(
            ((RAM / 2 / PAGE_SIZE)..(RAM / PAGE_SIZE))
                .map(Pfn)
                .collect(),
        );
        // swapper_pg_dir without a linear map (the test RAM is at physical
        // 0, below the arm64 DRAM base), one vmalloc-area page in it.
        let mut kernel =
            PageTable::new_kernel_ranges(&dm, &mut frames, mode, PhysAddr(RAM), &[]).unwrap();
        let kva = VirtAddr(0xffff_8000_8000_0000);
        kernel
            .map(&mut frames, kva, Pfn(9), PteFlags::KERNEL)
            .unwrap();
        let mut user = PageTable::new_user(&kernel, &mut frames).unwrap();
        // A private writable page after its CoW: DBM set, RDONLY set
        // (clean), AF clear (not accessed yet), nG.
        let flags = PteFlags::from_prot(3, true).difference(PteFlags::ACCESSED);
        user.map(&mut frames, UVA, Pfn(7), flags).unwrap();
        let leaf = |pt: &PageTable, va: VirtAddr| {
            let mut table = pt.root();
            for l in (2..=4).rev() {
                let e = mode.read_entry(&dm, mode.entry_pa(table, mode.index(va, l)));
                table = e.pfn();
            }
            mode.entry_pa(table, mode.index(va, 1))
        };
        let upa = leaf(&user, UVA);
        let raw = |pa| mode.read_raw(&dm, pa).unwrap();
        assert_eq!(
            raw(upa) & (arm64::AF | arm64::RDONLY | arm64::DBM | arm64::NG),
            arm64::RDONLY | arm64::DBM | arm64::NG
        );
        let mut mmu = Mmu::new();
        // Without TTBR1 a kernel address has no table to walk.
        assert!(mmu
            .translate(&dm, user.root(), mode, 1, kva, Access::Read, false)
            .is_err());
        mmu.set_ttbr1(kernel.root());
        assert_eq!(
            mmu.translate(&dm, user.root(), mode, 1, kva, Access::Read, false),
            Ok(PhysAddr(9 << 12))
        );
        // EL0 may not touch the kernel page (no AP[1]).
        assert!(mmu
            .translate(&dm, user.root(), mode, 1, kva, Access::Read, true)
            .is_err());
        // A read sets AF only; the write clears RDONLY (FEAT_HAFDBS hardware
        // dirty), leaving DBM and the software dirty bit alone.
        mmu.translate(&dm, user.root(), mode, 1, UVA, Access::Read, true)
            .unwrap();
        assert_eq!(
            raw(upa) & (arm64::AF | arm64::RDONLY),
            arm64::AF | arm64::RDONLY
        );
        mmu.translate(&dm, user.root(), mode, 1, UVA, Access::Write, true)
            .unwrap();
        assert_eq!(raw(upa) & (arm64::RDONLY | arm64::SW_DIRTY), 0);
        assert!(arm64::hw_dirty(raw(upa)));
        assert!(user.lookup(UVA).unwrap().0.dirty());
        // ASIDs: a second mm with its own ASID maps UVA elsewhere; both
        // stay cached side by side (no flush on the switch), while the
        // global kernel entry serves either.
        let mut other = PageTable::new_user(&kernel, &mut frames).unwrap();
        other
            .map(&mut frames, UVA, Pfn(8), PteFlags::from_prot(3, true))
            .unwrap();
        // (The refused EL0 access dropped the kernel entry: cache it again.)
        mmu.translate(&dm, user.root(), mode, 1, kva, Access::Read, false)
            .unwrap();
        let walks = mmu.tlb.stats().walks;
        assert_eq!(
            mmu.translate(&dm, other.root(), mode, 2, UVA, Access::Read, true),
            Ok(PhysAddr((8 << 12) | (UVA.0 & 0xfff)))
        );
        assert_eq!(
            mmu.translate(&dm, user.root(), mode, 1, UVA, Access::Read, true),
            Ok(PhysAddr((7 << 12) | (UVA.0 & 0xfff)))
        );
        mmu.translate(&dm, other.root(), mode, 2, kva, Access::Read, false)
            .unwrap();
        assert_eq!(
            mmu.tlb.stats().walks,
            walks + 1,
            "only ASID 2's first access walks"
        );
        // A non-canonical address (bits 63..48 mixed) faults before any walk.
        assert!(mmu
            .translate(
                &dm,
                user.root(),
                mode,
                1,
                VirtAddr(0x00ff_0000_0000_0000),
                Access::Read,
                true
            )
            .is_err());
    }

    struct Sys {
        dm: DirectMap,
        frames: Frames,
        kernel: PageTable,
        user: PageTable,
        mode: PagingMode,
    }

    fn sys(mode: PagingMode) -> Sys {
        let dm = HeapRam::direct_map(RAM);
        // Table frames from the upper 8 MiB; data frames below.
        let mut frames = Frames(
            ((RAM / 2 / PAGE_SIZE)..(RAM / PAGE_SIZE))
                .map(Pfn)
                .collect(),
        );
        let kernel = PageTable::new_kernel(&dm, &mut frames, mode, PhysAddr(RAM)).unwrap();
        let user = PageTable::new_user(&kernel, &mut frames).unwrap();
        Sys {
            dm,
            frames,
            kernel,
            user,
            mode,
        }
    }

    const UVA: VirtAddr = VirtAddr(0x4020_3000);

    fn user_rw() -> PteFlags {
        PteFlags::PRESENT | PteFlags::USER | PteFlags::WRITE | PteFlags::NX
    }

    fn entry_addrs(s: &Sys, root: Pfn, va: VirtAddr) -> Vec<(u8, PhysAddr)> {
        let m = s.mode;
        let mut out = Vec::new();
        let mut table = root;
        for l in (1..=m.levels()).rev() {
            let pa = m.entry_pa(table, m.index(va, l));
            out.push((l, pa));
            let e = m.read_entry(&s.dm, pa);
            if l == 1 || (e.huge() && m.huge_ok(l)) {
                break;
            }
            table = e.pfn();
        }
        out
    }

    #[test]
    fn walk_sets_accessed_on_every_level_and_dirty_on_write() {
        for mode in X86_MODES {
            let mut s = sys(mode);
            s.user
                .map(&mut s.frames, UVA, Pfn(0x123), user_rw())
                .unwrap();
            let path = entry_addrs(&s, s.user.root(), UVA);
            for &(_, pa) in &path {
                let e = mode.read_entry(&s.dm, pa);
                mode.write_entry(&s.dm, pa, e.clear_bits(Pte::A | Pte::D));
            }
            let mut mmu = Mmu::new();
            let pa = mmu
                .translate(
                    &s.dm,
                    s.user.root(),
                    mode,
                    1,
                    UVA + 0x10,
                    Access::Read,
                    true,
                )
                .unwrap();
            assert_eq!(pa, PhysAddr(0x123_010));
            for &(l, pa) in &path {
                let e = mode.read_entry(&s.dm, pa);
                if mode == PagingMode::X86Pae && l == 3 {
                    assert_eq!(e.raw() & 0xfff, 0x1, "PDPT entries have no A bit");
                } else {
                    assert!(e.accessed(), "{mode:?} level {l}");
                    assert!(!e.dirty(), "{mode:?} level {l}");
                }
            }
            // The cached entry is clean: a write must walk to set D.
            let walks = mmu.tlb.stats().walks;
            mmu.translate(&s.dm, s.user.root(), mode, 1, UVA, Access::Write, true)
                .unwrap();
            assert_eq!(mmu.tlb.stats().walks, walks + 1);
            let leaf = mode.read_entry(&s.dm, path.last().unwrap().1);
            assert!(leaf.dirty() && leaf.accessed());
            // Now dirty in the TLB: writes hit.
            mmu.translate(&s.dm, s.user.root(), mode, 1, UVA, Access::Write, true)
                .unwrap();
            assert_eq!(mmu.tlb.stats().walks, walks + 1);
            assert_eq!(mmu.tlb.stats().hits, 1);
            // Software cleaning D (page_mkclean) + flush makes the next write set it again.
            s.user.update(UVA, &|p| p.mkclean());
            mmu.flush_page(1, UVA);
            mmu.translate(&s.dm, s.user.root(), mode, 1, UVA, Access::Write, true)
                .unwrap();
            assert!(s.user.lookup(UVA).unwrap().0.dirty());
        }
    }

    #[test]
    fn fault_error_codes() {
        for mode in X86_MODES {
            let mut s = sys(mode);
            let ro = PteFlags::PRESENT | PteFlags::USER | PteFlags::NX;
            s.user.map(&mut s.frames, UVA, Pfn(0x200), ro).unwrap();
            let kva = VirtAddr(0x5000_0000);
            s.user
                .map(
                    &mut s.frames,
                    kva,
                    Pfn(0x201),
                    PteFlags::PRESENT | PteFlags::WRITE,
                )
                .unwrap();
            let mut m = Mmu::new();
            let root = s.user.root();
            let mut code = |va: VirtAddr, acc: Access, user: bool| {
                m.translate(&s.dm, root, mode, 7, va, acc, user)
                    .map_err(|f| {
                        assert_eq!(f.addr, va);
                        f.error_code
                    })
            };
            // Not present: P clear.
            assert_eq!(code(UVA + PAGE_SIZE, Access::Read, true), Err(PF_USER));
            assert_eq!(
                code(VirtAddr(0x10_0000), Access::Write, false),
                Err(PF_WRITE)
            );
            // Write to a read-only page, from user and (CR0.WP) kernel.
            assert_eq!(
                code(UVA, Access::Write, true),
                Err(PF_PROT | PF_WRITE | PF_USER)
            );
            assert_eq!(code(UVA, Access::Write, false), Err(PF_PROT | PF_WRITE));
            assert!(code(UVA, Access::Read, true).is_ok());
            // User access to a supervisor page.
            assert_eq!(code(kva, Access::Read, true), Err(PF_PROT | PF_USER));
            assert!(code(kva, Access::Write, false).is_ok());
            // Exec of an NX page (2-level x86 has no NX).
            if mode.has_nx() {
                assert_eq!(
                    code(UVA, Access::Exec, true),
                    Err(PF_PROT | PF_INSTR | PF_USER)
                );
            } else {
                assert!(code(UVA, Access::Exec, true).is_ok());
            }
            // PROT_NONE: a mapped page the hardware sees as not present.
            let pn = VirtAddr(0x6000_0000);
            s.user
                .map(&mut s.frames, pn, Pfn(0x202), PteFlags::from_prot(0, false))
                .unwrap();
            assert!(s.user.lookup(pn).unwrap().0.protnone());
            let mut code = |va: VirtAddr, acc: Access, user: bool| {
                m.translate(&s.dm, root, mode, 7, va, acc, user)
                    .map_err(|f| f.error_code)
            };
            assert_eq!(code(pn, Access::Read, true), Err(PF_USER));
            assert_eq!(code(pn, Access::Read, false), Err(0));
            // Non-canonical / beyond 4 GiB.
            let bad = if mode.va_bits() == 32 {
                VirtAddr(1 << 32)
            } else {
                VirtAddr(1 << 63)
            };
            assert_eq!(
                code(bad, Access::Read, true),
                Err(PF_USER | PF_NONCANONICAL)
            );
            // Kernel addresses from user mode.
            let l = AddressSpaceLayout::new(mode, RAM);
            assert_eq!(
                code(VirtAddr(l.page_offset), Access::Read, true),
                Err(PF_PROT | PF_USER)
            );
        }
    }

    #[test]
    fn reserved_bit_faults() {
        let mut s = sys(PagingMode::X86_64L4);
        s.user
            .map(&mut s.frames, UVA, Pfn(0x200), user_rw())
            .unwrap();
        let pgd = entry_addrs(&s, s.user.root(), UVA)[0].1;
        let e = s.mode.read_entry(&s.dm, pgd);
        s.mode.write_entry(&s.dm, pgd, e.set_bits(Pte::PS));
        let mut m = Mmu::new();
        let f = m
            .translate(&s.dm, s.user.root(), s.mode, 1, UVA, Access::Read, true)
            .unwrap_err();
        assert_eq!(f.error_code, PF_PROT | PF_RSVD | PF_USER);
        // A table pointer beyond RAM faults instead of panicking.
        s.mode
            .write_entry(&s.dm, pgd, Pte(0xff_ffff_f000 | Pte::TABLE_USER));
        let f = m
            .translate(&s.dm, s.user.root(), s.mode, 1, UVA, Access::Read, true)
            .unwrap_err();
        assert_eq!(f.error_code, PF_PROT | PF_RSVD | PF_USER);
    }

    #[test]
    fn stale_tlb_entries_never_outlive_their_flush() {
        for mode in X86_MODES {
            let mut s = sys(mode);
            let asid = 3;
            s.user
                .map(&mut s.frames, UVA, Pfn(0x300), user_rw())
                .unwrap();
            let mut cpus = [Mmu::new(), Mmu::new()];
            for cpu in cpus.iter_mut() {
                let pa = cpu.translate(
                    &s.dm,
                    s.user.root(),
                    mode,
                    asid,
                    UVA + 8,
                    Access::Write,
                    true,
                );
                assert_eq!(pa, Ok(PhysAddr(0x300_008)));
                // Cached and dirty: the next write is a hit.
                cpu.translate(
                    &s.dm,
                    s.user.root(),
                    mode,
                    asid,
                    UVA + 8,
                    Access::Write,
                    true,
                )
                .unwrap();
                assert_eq!(cpu.tlb.stats().hits, 1);
            }
            // mprotect(PROT_READ) + flush on both CPUs.
            let n = s
                .user
                .change_protection(UVA, UVA + PAGE_SIZE, &|p| p.wrprotect());
            assert_eq!(n, 1);
            for cpu in cpus.iter_mut() {
                cpu.flush_range(asid, UVA, UVA + PAGE_SIZE);
                let f = cpu
                    .translate(&s.dm, s.user.root(), mode, asid, UVA, Access::Write, true)
                    .unwrap_err();
                assert_eq!(f.error_code, PF_PROT | PF_WRITE | PF_USER);
                assert!(cpu
                    .translate(&s.dm, s.user.root(), mode, asid, UVA, Access::Read, true)
                    .is_ok());
            }
            // munmap + flush.
            assert!(s.user.unmap(UVA).is_some());
            for cpu in cpus.iter_mut() {
                cpu.flush_range(asid, UVA, UVA + PAGE_SIZE);
                for acc in [Access::Read, Access::Write] {
                    let f = cpu
                        .translate(&s.dm, s.user.root(), mode, asid, UVA, acc, true)
                        .unwrap_err();
                    assert_eq!(f.error_code & PF_PROT, 0);
                }
            }
        }
    }

    #[test]
    fn without_a_flush_the_stale_entry_is_used_like_hardware() {
        let mut s = sys(PagingMode::X86_64L4);
        s.user
            .map(&mut s.frames, UVA, Pfn(0x300), user_rw())
            .unwrap();
        let mut m = Mmu::new();
        m.translate(&s.dm, s.user.root(), s.mode, 1, UVA, Access::Read, true)
            .unwrap();
        s.user.unmap(UVA);
        assert!(m
            .translate(&s.dm, s.user.root(), s.mode, 1, UVA, Access::Read, true)
            .is_ok());
        // Another asid does not see it.
        assert!(m
            .translate(&s.dm, s.user.root(), s.mode, 2, UVA, Access::Read, true)
            .is_err());
        m.flush_page(1, UVA);
        assert!(m
            .translate(&s.dm, s.user.root(), s.mode, 1, UVA, Access::Read, true)
            .is_err());
    }

    #[test]
    fn direct_map_translates_with_large_global_entries() {
        for mode in X86_MODES {
            let s = sys(mode);
            let l = AddressSpaceLayout::new(mode, RAM);
            let mut m = Mmu::new();
            for x in [0u64, 0x1234, 0x20_0000, 0x40_0abc, RAM - 8] {
                let va = VirtAddr(l.page_offset + x);
                assert_eq!(
                    m.translate(&s.dm, s.user.root(), mode, 1, va, Access::Write, false),
                    Ok(PhysAddr(x))
                );
            }
            // Large entries: nearby addresses hit; global: other asids hit too.
            let hits = m.tlb.stats().hits;
            let va = VirtAddr(l.page_offset + 0x1_5000);
            assert_eq!(
                m.translate(&s.dm, s.kernel.root(), mode, 9, va, Access::Read, false),
                Ok(PhysAddr(0x1_5000))
            );
            assert_eq!(m.tlb.stats().hits, hits + 1);
            // The direct map is NX.
            if mode.has_nx() {
                let f = m
                    .translate(&s.dm, s.kernel.root(), mode, 9, va, Access::Exec, false)
                    .unwrap_err();
                assert_eq!(f.error_code, PF_PROT | PF_INSTR);
                // A fault drops the entry for that address, as on x86.
                let misses = m.tlb.stats().misses;
                m.translate(&s.dm, s.kernel.root(), mode, 9, va, Access::Read, false)
                    .unwrap();
                assert_eq!(m.tlb.stats().misses, misses + 1);
            }
            // Global entries survive an asid flush but not a kernel-range flush.
            let hits = m.tlb.stats().hits;
            m.flush_asid(9);
            m.translate(&s.dm, s.kernel.root(), mode, 9, va, Access::Read, false)
                .unwrap();
            assert_eq!(m.tlb.stats().hits, hits + 1);
            m.flush_kernel_range(va, va + PAGE_SIZE);
            m.translate(&s.dm, s.kernel.root(), mode, 1, va, Access::Read, false)
                .unwrap();
            assert_eq!(m.tlb.stats().hits, hits + 1);
        }
    }

    #[test]
    fn long_range_flush_falls_back_to_the_asid() {
        let mut s = sys(PagingMode::X86_64L4);
        let mut m = Mmu::new();
        for i in 0..40u64 {
            s.user
                .map(
                    &mut s.frames,
                    UVA + i * PAGE_SIZE,
                    Pfn(0x400 + i),
                    user_rw(),
                )
                .unwrap();
            m.translate(
                &s.dm,
                s.user.root(),
                s.mode,
                1,
                UVA + i * PAGE_SIZE,
                Access::Read,
                true,
            )
            .unwrap();
            m.translate(
                &s.dm,
                s.user.root(),
                s.mode,
                2,
                UVA + i * PAGE_SIZE,
                Access::Read,
                true,
            )
            .unwrap();
        }
        let before = m.tlb.len();
        m.flush_range(1, UVA, UVA + 2 * PAGE_SIZE);
        assert_eq!(m.tlb.len(), before - 2);
        m.flush_range(1, UVA, UVA + 34 * PAGE_SIZE);
        // Every asid-1 entry is gone, asid 2 untouched.
        assert_eq!(m.tlb.len(), 40);
        m.flush_all();
        assert!(m.tlb.is_empty());
        assert_eq!(m.tlb.stats().flushes, 3);
    }

    #[test]
    fn tlb_capacity_evicts_without_losing_correctness() {
        let mut s = sys(PagingMode::X86_64L4);
        let mut m = Mmu::new();
        let n = 1200u64;
        for i in 0..n {
            s.user
                .map(
                    &mut s.frames,
                    VirtAddr(i * PAGE_SIZE),
                    Pfn(0x100 + i),
                    user_rw(),
                )
                .unwrap();
        }
        for round in 0..2 {
            for i in 0..n {
                let pa = m.translate(
                    &s.dm,
                    s.user.root(),
                    s.mode,
                    1,
                    VirtAddr(i * PAGE_SIZE + 1),
                    Access::Read,
                    true,
                );
                assert_eq!(
                    pa,
                    Ok(PhysAddr((0x100 + i) * PAGE_SIZE + 1)),
                    "round {round}"
                );
            }
        }
        assert!(m.tlb.len() <= 512);
        assert_eq!(m.tlb.stats().misses, 2 * n);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Map(u64, u64, bool, bool),
        Unmap(u64),
        Protect(u64, bool),
        Clean(u64),
        Access(usize, u64, bool, bool),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        let page = 0..24u64;
        prop_oneof![
            1 => (page.clone(), 1..0x800u64, any::<bool>(), any::<bool>()).prop_map(|(v, p, w, u)| Op::Map(v, p, w, u)),
            1 => page.clone().prop_map(Op::Unmap),
            1 => (page.clone(), any::<bool>()).prop_map(|(v, w)| Op::Protect(v, w)),
            1 => page.clone().prop_map(Op::Clean),
            4 => (0..2usize, page, any::<bool>(), any::<bool>()).prop_map(|(c, v, w, u)| Op::Access(c, v, w, u)),
        ]
    }

    fn check_against_tables(mode: PagingMode, ops: Vec<Op>) {
        let mut s = sys(mode);
        let mut cpus = [Mmu::new(), Mmu::new()];
        let asid = 5;
        // Pages straddle a PTE-table boundary.
        let va = |v: u64| VirtAddr(mode.span(2) - 12 * PAGE_SIZE + v * PAGE_SIZE);
        for op in ops {
            let changed = match op {
                Op::Map(v, p, w, u) => {
                    let mut f = PteFlags::PRESENT;
                    if w {
                        f |= PteFlags::WRITE;
                    }
                    if u {
                        f |= PteFlags::USER;
                    }
                    s.user.map(&mut s.frames, va(v), Pfn(p), f).unwrap();
                    Some(v)
                }
                Op::Unmap(v) => s.user.unmap(va(v)).map(|_| v),
                Op::Protect(v, w) => s
                    .user
                    .update(va(v), &|p| if w { p.mkwrite() } else { p.wrprotect() })
                    .map(|_| v),
                Op::Clean(v) => s.user.update(va(v), &|p| p.mkclean()).map(|_| v),
                Op::Access(c, v, write, user) => {
                    let acc = if write { Access::Write } else { Access::Read };
                    let got =
                        cpus[c].translate(&s.dm, s.user.root(), mode, asid, va(v) + 8, acc, user);
                    let pte = s.user.lookup(va(v)).map(|x| x.0);
                    let code =
                        (if write { PF_WRITE } else { 0 }) | (if user { PF_USER } else { 0 });
                    let want = match pte {
                        None => Err(code),
                        Some(p) if user && !p.user() => Err(code | PF_PROT),
                        Some(p) if write && !p.writable() => Err(code | PF_PROT),
                        Some(p) => Ok(PhysAddr(p.phys().0 + 8)),
                    };
                    assert_eq!(got.map_err(|f| f.error_code), want);
                    if let (Ok(_), true) = (want, write) {
                        assert!(s.user.lookup(va(v)).unwrap().0.dirty());
                    }
                    None
                }
            };
            if let Some(v) = changed {
                // What Linux does after changing a PTE that may be cached.
                for cpu in cpus.iter_mut() {
                    cpu.flush_range(asid, va(v), va(v) + PAGE_SIZE);
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn translations_agree_with_the_tables_after_each_flush(
            mode in proptest::sample::select(X86_MODES.to_vec()),
            ops in proptest::collection::vec(op(), 1..120),
        ) {
            check_against_tables(mode, ops);
        }
    }
}
