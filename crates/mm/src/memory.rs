//! The page-table side of a process's address space: the page-fault
//! handler (demand-zero, file faults through the page cache with
//! fault-around, copy-on-write, shared write faults), fork's page-table
//! copy, zap, change protection, move, discard and report pages. Mirrors
//! mm/memory.c (`handle_mm_fault`, `do_anonymous_page`, `do_read_fault`,
//! `do_cow_fault`, `do_shared_fault`, `do_wp_page`, `do_fault_around`,
//! `copy_page_range`, `zap_pte_range`, `vm_normal_page`), arch/x86/mm/fault.c
//! (`do_user_addr_fault`, `access_error`) and the pte parts of
//! mm/mprotect.c, mm/mremap.c, mm/madvise.c and fs/proc/task_mmu.c.
//!
//! [`UserPageTables`] implements the VMA layer's [`PageTableOps`] over a
//! process's [`PageTable`] in RAM, the [`PageAlloc`], the page cache, the
//! CPU doing the work and a [`TlbShootdown`] that the machine implements
//! over all CPUs' TLBs. Every page it maps holds real bytes.
//!
//! References: an anonymous page has one reference and one mapcount per
//! pte that maps it; a page-cache page has one more reference, the
//! cache's. The shared zero page is never counted.
//!
//! Every new page goes on the LRU (`folio_add_lru`); a swap pte is
//! faulted back through the swap cache (`do_swap_page`); fork duplicates
//! swap entries and zap frees them (`free_swap_and_cache`).
//!
//! Simplifications: no mlock accounting of pages (PG_mlocked/Unevictable), no huge pages
//! (4 KiB ptes only); special mappings (`[vdso]`, `[vvar]`) are never
//! faulted in; a write fault on a shared file page marks it dirty at once
//! (Linux's `page_mkwrite` and `folio_mark_dirty` in one step); RSS deltas
//! of the mm being worked on are applied by [`UserPageTables::commit`].

use alloc::vec::Vec;

use crate::arch::pte::{PagingMode, Pte, PteFlags};
use crate::errno::Errno;
use crate::filemap::{Found, PageCache, Readahead};
use crate::gfp::Gfp;
use crate::memmap::{Page, PageFlags};
use crate::mm_types::{MmStruct, PageInfo, PageTableOps, RssKind, VmFlags, Vma};
use crate::page_alloc::{CpuId, PageAlloc};
use crate::pgalloc::PgtableFrames;
use crate::pgtable::PageTable;
use crate::rmap::{PageMapping, PAGE_MAPPING_ANON};
use crate::swap::folio_add_lru;
use crate::swap_state::SwapState;
use crate::types::{Order, Pfn, VirtAddr, PAGE_SIZE};
use crate::vmstat::{NodeStat, VmEvent};

/// x86 `_PAGE_SOFT_DIRTY` (`_PAGE_BIT_SOFTW3`, bit 11): ignored by the
/// hardware, set by software on every write fault and new mapping.
pub const PTE_SOFT_DIRTY: u64 = 1 << 11;

/// `fault_around_bytes`: 64 KiB, the default (/sys/kernel/debug/fault_around_bytes).
pub const FAULT_AROUND_PAGES: u64 = 16;

/// TLB invalidation across every CPU that may cache an address space's
/// translations (`flush_tlb_mm_range` / `flush_tlb_mm` with their IPIs).
/// The machine implements it over its CPUs' MMUs.
pub trait TlbShootdown {
    /// Drops the translations of `[start, end)` tagged `asid`.
    fn flush_range(&mut self, asid: u16, start: VirtAddr, end: VirtAddr);
    /// Drops every non-global translation tagged `asid`.
    fn flush_asid(&mut self, asid: u16);
}

/// A [`TlbShootdown`] that does nothing (tables no CPU has loaded).
pub struct NoTlb;

impl TlbShootdown for NoTlb {
    fn flush_range(&mut self, _asid: u16, _start: VirtAddr, _end: VirtAddr) {}
    fn flush_asid(&mut self, _asid: u16) {}
}

/// What a page mapped by a user pte is, from its `struct page`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The shared zero page (`is_zero_pfn`): not counted anywhere.
    Zero,
    /// PageAnon.
    Anon,
    /// A shmem/tmpfs page-cache page (!PageAnon && PageSwapBacked).
    Shmem,
    /// A file page-cache page.
    File,
}

impl Kind {
    fn rss(self) -> Option<RssKind> {
        match self {
            Kind::Zero => None,
            Kind::Anon => Some(RssKind::Anon),
            Kind::Shmem => Some(RssKind::Shmem),
            Kind::File => Some(RssKind::File),
        }
    }
}

/// The kind of access that faulted (the hardware error code's W and I bits).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FaultAccess {
    /// A data read.
    Read,
    /// A data write.
    Write,
    /// An instruction fetch.
    Exec,
}

/// `si_code` of a SIGSEGV.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SegvCode {
    /// SEGV_MAPERR: no VMA maps the address.
    MapErr,
    /// SEGV_ACCERR: the VMA forbids the access.
    AccErr,
}

/// A fault the handler could not resolve: the signal the task gets, or
/// the OOM condition (`VM_FAULT_OOM`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FaultError {
    /// SIGSEGV with its code.
    Segv(SegvCode),
    /// SIGBUS (BUS_ADRERR): past the end of a file, or an I/O error.
    Bus,
    /// No memory for the page or its tables.
    Oom,
}

/// A resolved fault: was it major (I/O was needed)?
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultDone {
    /// VM_FAULT_MAJOR.
    pub major: bool,
}

/// `do_user_addr_fault` + `handle_mm_fault`: resolves a user fault at
/// `addr` in `mm`. Finds the VMA (growing a VM_GROWSDOWN stack within
/// RLIMIT_STACK and the guard gap), checks the access against its flags
/// (`access_error`), then faults the page in. Counts `pgfault` (and
/// `pgmajfault`), as Linux's `mm_account_fault` does; the caller counts
/// the task's min_flt/maj_flt from the result.
pub fn handle_mm_fault(
    mm: &mut MmStruct,
    ops: &mut UserPageTables<'_>,
    addr: VirtAddr,
    access: FaultAccess,
) -> Result<FaultDone, FaultError> {
    let vma = match mm.find_vma(addr) {
        None => return Err(FaultError::Segv(SegvCode::MapErr)),
        Some(v) if v.start <= addr => v,
        Some(v) if v.flags.contains(VmFlags::GROWSDOWN) => {
            let _ = v;
            crate::mmap::expand_stack(mm, addr).map_err(|_| FaultError::Segv(SegvCode::MapErr))?;
            mm.vma_lookup(addr)
                .ok_or(FaultError::Segv(SegvCode::MapErr))?
        }
        Some(_) => return Err(FaultError::Segv(SegvCode::MapErr)),
    };
    let f = vma.flags;
    let denied = match access {
        FaultAccess::Write => !f.contains(VmFlags::WRITE),
        FaultAccess::Exec => !f.contains(VmFlags::EXEC),
        FaultAccess::Read => !f.intersects(VmFlags::ACCESS_FLAGS),
    };
    if denied {
        return Err(FaultError::Segv(SegvCode::AccErr));
    }
    let key = vma.start;
    let write = access == FaultAccess::Write;
    // vmf_anon_prepare: a private write fault, or any fault that will
    // place an anonymous page, needs the VMA's anon_vma.
    if write && !f.contains(VmFlags::MAYSHARE) {
        mm.anon_vma_prepare(key);
    }
    let vma = mm
        .vma_lookup(key)
        .ok_or(FaultError::Segv(SegvCode::MapErr))?
        .clone();
    ops.fault_counted(&vma, addr.page_down(), write)
}

/// `put_page` / `folio_put`: drops a reference; the last one takes the
/// page off its LRU list (`__page_cache_release`), clears its identity and
/// frees it.
pub fn put_page(pa: &PageAlloc, cpu: CpuId, pfn: Pfn) {
    let Some(page) = pa.page(pfn) else { return };
    if page.refcount() == 1 {
        if page.test(PageFlags::LRU) {
            crate::swap::lru_del(pa, pfn);
        }
        if page.test(PageFlags::MLOCKED) {
            // The page leaves with its lock (`__folio_put` → mlock drain:
            // `unevictable_pgs_cleared`).
            if let Some(z) = pa.zone_of(pfn) {
                z.stats.add(crate::vmstat::ZoneStat::NrMlock, -1);
            }
            pa.events.count_on(cpu.0, VmEvent::UnevictablePgsCleared, 1);
        }
        page.set_mapping(0);
        page.set_index(0);
        page.clear(
            PageFlags::SWAPBACKED
                | PageFlags::DIRTY
                | PageFlags::UPTODATE
                | PageFlags::REFERENCED
                | PageFlags::ACTIVE
                | PageFlags::WORKINGSET
                | PageFlags::UNEVICTABLE
                | PageFlags::MLOCKED,
        );
    }
    pa.free_pages(cpu, pfn, Order(0));
}

/// The kind of the page `pfn` mapped by a user pte.
pub fn page_kind(zero_pfn: Option<Pfn>, pfn: Pfn, page: &Page) -> Kind {
    if Some(pfn) == zero_pfn {
        Kind::Zero
    } else if page.mapping() & PAGE_MAPPING_ANON != 0 {
        Kind::Anon
    } else if page.test(PageFlags::SWAPBACKED) {
        Kind::Shmem
    } else {
        Kind::File
    }
}

/// The pte protection bits for a VMA's `vm_flags` (`vm_get_page_prot`, the
/// x86 `protection_map`), with the write bit given by `writable` (Linux
/// maps private writable memory read-only until a write fault makes the
/// page exclusive, then `maybe_mkwrite`s it). PROT_NONE gives PAGE_NONE.
pub fn pte_flags_for(vm_flags: VmFlags, writable: bool) -> PteFlags {
    let prot = (vm_flags.bits() & VmFlags::ACCESS_FLAGS.bits()) as u32;
    let base = PteFlags::from_prot(prot, false);
    if writable && vm_flags.contains(VmFlags::WRITE) {
        base.union(PteFlags::WRITE)
    } else {
        base
    }
}

/// True if the pages of a shared mapping may be mapped writable before a
/// write fault (`!vma_wants_writenotify`): shmem has no dirty tracking;
/// a file with a backing store is write-protected so the first write is
/// seen and the page dirtied.
fn shared_writable_at_once(vma: &Vma) -> bool {
    vma.flags.contains(VmFlags::SHARED) && vma.file.as_ref().is_none_or(|f| f.is_shmem())
}

/// A process's page tables as the VMA layer sees them ([`PageTableOps`]):
/// the tables, the allocator their pages and frames come from, the page
/// cache, the CPU doing the work, the address-space id and the TLB
/// shootdown.
pub struct UserPageTables<'a> {
    /// The process's tables.
    pub pt: &'a mut PageTable,
    /// The page allocator.
    pub pa: &'a PageAlloc,
    /// The page cache file pages come from.
    pub cache: &'a PageCache,
    /// Swap and the swap cache.
    pub swap: &'a SwapState,
    /// The CPU doing the work (its per-CPU lists are used).
    pub cpu: CpuId,
    /// The address-space id the TLBs tag this mm's entries with.
    pub asid: u16,
    /// Flushes every CPU's TLB.
    pub tlb: &'a mut dyn TlbShootdown,
    /// The shared zero page, if the machine has one: read faults on private
    /// anonymous memory map it (`do_anonymous_page` without FAULT_FLAG_WRITE).
    pub zero_pfn: Option<Pfn>,
    /// RSS changes not yet applied to the mm ([`UserPageTables::commit`]).
    rss: [i64; 4],
    /// Faults resolved through these tables so far: (minor, major), what
    /// the faulting task's `min_flt` and `maj_flt` grow by.
    pub faults: (u64, u64),
    /// Frames handed out ahead of anonymous write faults to come, by the
    /// page they are for (`lmm native`'s fault-ahead, which maps them in
    /// the host before the program touches them): the write fault at such
    /// a page takes its frame, as it stands (the program's data may be in
    /// it already), instead of allocating and zeroing one. Empty unless
    /// the caller fills it.
    pub ahead: alloc::collections::BTreeMap<VirtAddr, Pfn>,
}

impl<'a> UserPageTables<'a> {
    /// Page-table operations for one system call.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        pt: &'a mut PageTable,
        pa: &'a PageAlloc,
        cache: &'a PageCache,
        swap: &'a SwapState,
        cpu: CpuId,
        asid: u16,
        tlb: &'a mut dyn TlbShootdown,
        zero_pfn: Option<Pfn>,
    ) -> Self {
        UserPageTables {
            pt,
            pa,
            cache,
            swap,
            cpu,
            asid,
            tlb,
            zero_pfn,
            rss: [0; 4],
            faults: (0, 0),
            ahead: alloc::collections::BTreeMap::new(),
        }
    }

    /// Applies the RSS changes made so far to `mm` (`add_mm_counter`) and
    /// sets `mm->pgtables_bytes` from the tables the mm owns below its PGD
    /// (Linux counts PTE, PMD and PUD tables, not the PGD itself).
    pub fn commit(&mut self, mm: &mut MmStruct) {
        if self.rss[0] | self.rss[1] | self.rss[2] | self.rss[3] != 0 {
            for (i, kind) in [RssKind::File, RssKind::Anon, RssKind::Swap, RssKind::Shmem]
                .into_iter()
                .enumerate()
            {
                if self.rss[i] != 0 {
                    mm.rss.add(kind, self.rss[i]);
                }
            }
            self.rss = [0; 4];
        }
        mm.pgtables_bytes = self.pt.count_tables().saturating_sub(1) * PAGE_SIZE;
    }

    /// RSS changes not yet committed, indexed by [`RssKind`].
    pub fn pending_rss(&self) -> [i64; 4] {
        self.rss
    }

    fn mode(&self) -> PagingMode {
        self.pt.mode()
    }

    fn kind_of(&self, pfn: Pfn, page: &Page) -> Kind {
        page_kind(self.zero_pfn, pfn, page)
    }

    fn stat(&self, page: &Page, item: NodeStat, d: i64) {
        self.pa.nodes[page.nid() as usize].stats.add(item, d);
    }

    /// Allocates a zeroed user page (GFP_HIGHUSER_MOVABLE).
    fn alloc_user_page(&self) -> Result<Pfn, FaultError> {
        let pfn = self
            .pa
            .alloc_pages(self.cpu, Gfp::HIGHUSER_MOVABLE, Order(0))
            .ok_or(FaultError::Oom)?;
        self.pa.direct_map().zero_pages(pfn, 1);
        Ok(pfn)
    }

    /// Counts one more pte mapping `pfn` (`folio_add_new_anon_rmap` for a
    /// new anonymous page, `folio_add_file_rmap_pte` for a cache page, or
    /// fork's duplication of either).
    fn add_rmap(&mut self, pfn: Pfn, kind: Kind) {
        let Some(page) = self.pa.page(pfn) else {
            return;
        };
        if kind == Kind::Zero {
            return;
        }
        if page.add_mapcount(1) == 1 {
            match kind {
                Kind::Anon => self.stat(page, NodeStat::NrAnonPages, 1),
                _ => self.stat(page, NodeStat::NrMapped, 1),
            }
        }
        if let Some(r) = kind.rss() {
            self.rss[r as usize] += 1;
        }
    }

    /// Gives a fresh anonymous page its identity (`__folio_set_anon`).
    fn set_anon(&self, pfn: Pfn, vma: &Vma, va: VirtAddr) {
        if let Some(page) = self.pa.page(pfn) {
            let av = vma.anon_vma.map_or(PageMapping::None, PageMapping::Anon);
            page.set_mapping(av.encode() | PAGE_MAPPING_ANON);
            page.set_index(vma.pgoff_at(va));
            page.set(PageFlags::SWAPBACKED | PageFlags::UPTODATE);
        }
    }

    /// Drops one mapping of `pfn` (`zap_present_ptes` + `folio_remove_rmap_pte`):
    /// a dirty pte dirties a cache page; the reference goes into `freed`
    /// to be put after the TLB flush.
    fn drop_mapping(&mut self, pfn: Pfn, pte: Pte, freed: &mut Vec<Pfn>) {
        let Some(page) = self.pa.page(pfn) else {
            return;
        };
        let kind = self.kind_of(pfn, page);
        if kind == Kind::Zero {
            return;
        }
        if let Some(r) = kind.rss() {
            self.rss[r as usize] -= 1;
        }
        if kind != Kind::Anon && pte.dirty() {
            self.cache.set_dirty(self.pa, pfn);
        }
        if page.add_mapcount(-1) == 0 {
            match kind {
                Kind::Anon => self.stat(page, NodeStat::NrAnonPages, -1),
                _ => self.stat(page, NodeStat::NrMapped, -1),
            }
        }
        freed.push(pfn);
    }

    /// Puts the references gathered by a zap, after the TLB flush (as
    /// `tlb_finish_mmu` frees only once no CPU can reach the pages), having
    /// drained this CPU's LRU batch first so its references do not keep
    /// the pages alive, and freeing the swap cache of pages no longer
    /// mapped (`free_pages_and_swap_cache`).
    fn release(&mut self, freed: Vec<Pfn>) {
        if !freed.is_empty() {
            crate::swap::lru_add_drain_cpu(self.pa, self.cpu);
        }
        for pfn in freed {
            // free_swap_cache: a swap-cache page no pte maps any more
            // leaves the cache, and its slot is freed if nothing else
            // refers to it.
            if self
                .pa
                .page(pfn)
                .is_some_and(|p| p.test(PageFlags::SWAPCACHE) && p.mapcount() == 0)
            {
                self.swap.folio_free_swap(self.pa, self.cpu, pfn);
            }
            put_page(self.pa, self.cpu, pfn);
        }
    }

    fn frames(&self) -> PgtableFrames<'a> {
        PgtableFrames {
            pa: self.pa,
            cpu: self.cpu,
        }
    }

    /// Installs `pte` for `pfn` at `va` (`set_pte_at`). On failure (no
    /// memory for a table) the caller still holds its reference.
    fn install(&mut self, va: VirtAddr, pfn: Pfn, flags: PteFlags) -> Result<Pte, FaultError> {
        let mut frames = self.frames();
        let pte = Pte::new(self.mode(), pfn, flags).set_bits(PTE_SOFT_DIRTY);
        self.pt
            .set_pte(&mut frames, va, pte)
            .map_err(|_| FaultError::Oom)
    }

    /// One fault as `handle_mm_fault` accounts it: `pgfault`, then
    /// `pgmajfault` and the task's counters by the result
    /// (`mm_account_fault`; failed faults count only `pgfault`).
    pub fn fault_counted(
        &mut self,
        vma: &Vma,
        va: VirtAddr,
        write: bool,
    ) -> Result<FaultDone, FaultError> {
        self.pa.events.count_on(self.cpu.0, VmEvent::Pgfault, 1);
        let done = self.fault_page(vma, va, write, true)?;
        if vma.flags.contains(VmFlags::LOCKED) {
            // mlock_new_folio / mlock_vma_folio: pages faulted into a
            // locked VMA are locked.
            self.mlock_range(va, va + PAGE_SIZE, true);
        }
        if done.major {
            self.pa.events.count_on(self.cpu.0, VmEvent::Pgmajfault, 1);
            self.faults.1 += 1;
        } else {
            self.faults.0 += 1;
        }
        Ok(done)
    }

    /// `handle_pte_fault` for one page of `vma`: a missing pte is faulted
    /// in (`do_anonymous_page` / `do_fault`), a write to a write-protected
    /// one is resolved (`do_wp_page`), anything else is a spurious fault
    /// that only marks the pte young (and dirty for a write). With
    /// `around`, a read fault on a file maps the cached pages around it.
    pub fn fault_page(
        &mut self,
        vma: &Vma,
        va: VirtAddr,
        write: bool,
        around: bool,
    ) -> Result<FaultDone, FaultError> {
        if vma.special.is_some() || vma.flags.intersects(VmFlags::IO | VmFlags::PFNMAP) {
            return Ok(FaultDone::default());
        }
        match self.pt.lookup(va) {
            Some((pte, 1)) if pte.present() => {
                if write && !pte.writable() {
                    self.do_wp_page(vma, va, pte)?;
                } else {
                    self.pt.update(va, &|p| {
                        let p = p.mkyoung();
                        if write {
                            p.mkdirty()
                        } else {
                            p
                        }
                    });
                }
                Ok(FaultDone::default())
            }
            Some((pte, 1)) if pte.is_swap() => self.do_swap_page(vma, va, pte, write),
            Some((pte, _)) if !pte.is_none() => Ok(FaultDone::default()),
            _ => {
                if vma.file.is_none() {
                    self.do_anonymous_page(vma, va, write)
                } else if !write && around {
                    self.do_read_fault(vma, va)
                } else if !write {
                    self.do_file_fault(vma, va, false)
                } else if vma.flags.contains(VmFlags::SHARED) {
                    self.do_file_fault(vma, va, true)
                } else {
                    self.do_cow_fault(vma, va)
                }
            }
        }
    }

    /// `do_anonymous_page`: a read maps the shared zero page, a write a
    /// new zeroed page.
    fn do_anonymous_page(
        &mut self,
        vma: &Vma,
        va: VirtAddr,
        write: bool,
    ) -> Result<FaultDone, FaultError> {
        if !write {
            if let Some(z) = self.zero_pfn {
                self.install(va, z, pte_flags_for(vma.flags, false))?;
                return Ok(FaultDone::default());
            }
        }
        let pfn = match write.then(|| self.ahead.remove(&va.page_down())) {
            Some(Some(pfn)) => pfn,
            _ => self.alloc_user_page()?,
        };
        let flags = pte_flags_for(vma.flags, true);
        let flags = if write {
            flags.union(PteFlags::DIRTY)
        } else {
            flags
        };
        if let Err(e) = self.install(va, pfn, flags.union(PteFlags::ACCESSED)) {
            put_page(self.pa, self.cpu, pfn);
            return Err(e);
        }
        self.set_anon(pfn, vma, va);
        self.add_rmap(pfn, Kind::Anon);
        folio_add_lru(self.pa, self.cpu, pfn);
        Ok(FaultDone::default())
    }

    /// The page-cache page behind page `va` of a file VMA (`__do_fault` →
    /// `filemap_fault` / `shmem_fault`), with a reference for the caller.
    /// SIGBUS past EOF or on an I/O error.
    fn file_page(&mut self, vma: &Vma, va: VirtAddr) -> Result<(Pfn, bool), FaultError> {
        let file = vma.file.as_ref().ok_or(FaultError::Bus)?;
        let index = vma.pgoff_at(va);
        if index >= file.size().div_ceil(PAGE_SIZE) {
            return Err(FaultError::Bus);
        }
        let ra = if vma.flags.contains(VmFlags::RAND_READ) {
            Readahead::None
        } else if vma.flags.contains(VmFlags::SEQ_READ) {
            Readahead::Forward
        } else {
            Readahead::Around
        };
        let (pfn, found) = self
            .cache
            .get_page(self.pa, self.cpu, file, index, ra)
            .map_err(|e| match e {
                Errno::ENOMEM => FaultError::Oom,
                _ => FaultError::Bus,
            })?;
        Ok((pfn, found == Found::Read))
    }

    /// Maps a cache page at `va` for a file VMA (`finish_fault` /
    /// `set_pte_range`), consuming the caller's reference.
    fn map_file_page(
        &mut self,
        vma: &Vma,
        va: VirtAddr,
        pfn: Pfn,
        write: bool,
    ) -> Result<(), FaultError> {
        let kind = self
            .pa
            .page(pfn)
            .map_or(Kind::File, |p| self.kind_of(pfn, p));
        let writable = write || shared_writable_at_once(vma);
        let mut flags = pte_flags_for(vma.flags, writable && vma.flags.contains(VmFlags::SHARED));
        flags = flags.union(PteFlags::ACCESSED);
        if write {
            flags = flags.union(PteFlags::DIRTY);
            self.cache.set_dirty(self.pa, pfn);
        }
        if let Err(e) = self.install(va, pfn, flags) {
            put_page(self.pa, self.cpu, pfn);
            return Err(e);
        }
        self.add_rmap(pfn, kind);
        Ok(())
    }

    /// `do_read_fault`: first map what the cache already holds around the
    /// address (`do_fault_around`); if that covered the address, it was a
    /// minor fault; otherwise read the page (with readahead) and map it.
    fn do_read_fault(&mut self, vma: &Vma, va: VirtAddr) -> Result<FaultDone, FaultError> {
        self.fault_around(vma, va);
        if self.pt.lookup(va).is_some_and(|(p, _)| p.present()) {
            return Ok(FaultDone::default());
        }
        self.do_file_fault(vma, va, false)
    }

    /// `__do_fault` + `finish_fault` for a read, or a write to a shared
    /// mapping (`do_shared_fault`).
    fn do_file_fault(
        &mut self,
        vma: &Vma,
        va: VirtAddr,
        write: bool,
    ) -> Result<FaultDone, FaultError> {
        let (pfn, major) = self.file_page(vma, va)?;
        self.map_file_page(vma, va, pfn, write)?;
        Ok(FaultDone { major })
    }

    /// `do_fault_around` + `filemap_map_pages`: maps the cached, uptodate
    /// pages of the `fault_around_bytes` window holding `va` (aligned, and
    /// clipped to the VMA, the page table and EOF) whose ptes are empty.
    fn fault_around(&mut self, vma: &Vma, va: VirtAddr) {
        let Some(file) = vma.file.clone() else { return };
        let win = FAULT_AROUND_PAGES * PAGE_SIZE;
        let pmd = self.mode().span(2);
        let start = (va.0 & !(win - 1)).max(vma.start.0).max(va.0 & !(pmd - 1));
        let end = ((va.0 & !(win - 1)) + win)
            .min(vma.end.0)
            .min((va.0 & !(pmd - 1)) + pmd);
        let eof = file.size().div_ceil(PAGE_SIZE);
        let m = self.cache.mapping_of(&file);
        let mut at = start;
        while at < end {
            let v = VirtAddr(at);
            at += PAGE_SIZE;
            let index = vma.pgoff_at(v);
            if index >= eof || self.pt.lookup(v).is_some_and(|(p, _)| !p.is_none()) {
                continue;
            }
            let Some(pfn) = self.cache.find(m, index) else {
                continue;
            };
            if let Some(p) = self.pa.page(pfn) {
                p.get();
            }
            // x86 has no `arch_wants_old_prefaulted_pte`: prefaulted ptes
            // are mapped young, like the faulting one.
            let _ = self.map_file_page(vma, v, pfn, false);
        }
    }

    /// `do_cow_fault`: a write to a private file mapping with no pte:
    /// copy the file page into a new anonymous page.
    fn do_cow_fault(&mut self, vma: &Vma, va: VirtAddr) -> Result<FaultDone, FaultError> {
        let (src, major) = self.file_page(vma, va)?;
        let new = match self.alloc_user_page() {
            Ok(p) => p,
            Err(e) => {
                put_page(self.pa, self.cpu, src);
                return Err(e);
            }
        };
        self.pa.direct_map().copy_page(new, src);
        put_page(self.pa, self.cpu, src);
        let flags = pte_flags_for(vma.flags, true)
            .union(PteFlags::DIRTY)
            .union(PteFlags::ACCESSED);
        if let Err(e) = self.install(va, new, flags) {
            put_page(self.pa, self.cpu, new);
            return Err(e);
        }
        self.set_anon(new, vma, va);
        self.add_rmap(new, Kind::Anon);
        folio_add_lru(self.pa, self.cpu, new);
        Ok(FaultDone { major })
    }

    /// `do_swap_page`: the pte holds a swap entry. The page comes from the
    /// swap cache or is read with readahead (a major fault); this pte's
    /// reference to the slot is dropped. If no other pte refers to the
    /// slot or maps the page, the page is exclusive: a write maps it
    /// writable and frees the slot (the copy on swap is stale from then
    /// on), as does a full swap (`should_try_to_free_swap`); otherwise it
    /// is mapped read-only and shared, for copy-on-write.
    fn do_swap_page(
        &mut self,
        vma: &Vma,
        va: VirtAddr,
        pte: Pte,
        write: bool,
    ) -> Result<FaultDone, FaultError> {
        let e = pte.swap_entry(self.mode()).ok_or(FaultError::Bus)?;
        let (pfn, major) = self
            .swap
            .swapin(self.pa, self.cpu, e)
            .map_err(|err| match err {
                Errno::ENOMEM => FaultError::Oom,
                _ => FaultError::Bus,
            })?;
        // pte_same: another path may have resolved it meanwhile.
        if self.pt.lookup(va).map(|(p, _)| p) != Some(pte) {
            put_page(self.pa, self.cpu, pfn);
            return Ok(FaultDone { major });
        }
        let page = self.pa.page(pfn).ok_or(FaultError::Bus)?;
        let _ = self.swap.table.swap_free(e);
        let exclusive = self.swap.table.swap_count(e) == 0 && page.mapcount() == 0;
        if exclusive && (write || self.swap.vm_swap_full()) {
            self.swap.folio_free_swap(self.pa, self.cpu, pfn);
        }
        if page.mapping() == 0 {
            // A page read fresh from swap: exclusive to this VMA's
            // anon_vma, or shared through the root of its chain.
            let root = if exclusive {
                vma.anon_vma
            } else {
                vma.anon_chain().last()
            };
            let av = root.map_or(PageMapping::None, PageMapping::Anon);
            page.set_mapping(av.encode() | PAGE_MAPPING_ANON);
            page.set_index(vma.pgoff_at(va));
        }
        let writable = write && exclusive;
        let mut flags = pte_flags_for(vma.flags, writable).union(PteFlags::ACCESSED);
        if writable {
            flags = flags.union(PteFlags::DIRTY);
            page.set(PageFlags::DIRTY);
        }
        if let Err(err) = self.install(va, pfn, flags) {
            put_page(self.pa, self.cpu, pfn);
            return Err(err);
        }
        self.rss[RssKind::Swap as usize] -= 1;
        self.add_rmap(pfn, Kind::Anon);
        Ok(FaultDone { major })
    }

    /// `do_wp_page`: a write to a present, write-protected pte of a
    /// writable VMA. Shared mappings make the page writable and dirty
    /// (`wp_page_shared`); a private exclusive anonymous page is reused
    /// (`wp_can_reuse_anon_folio`: only this pte holds it); anything else
    /// is copied (`wp_page_copy`), the zero page by zeroing.
    fn do_wp_page(&mut self, vma: &Vma, va: VirtAddr, pte: Pte) -> Result<(), FaultError> {
        let old = pte.pfn();
        let page = self.pa.page(old);
        let kind = page.map_or(Kind::Zero, |p| self.kind_of(old, p));
        if vma.flags.contains(VmFlags::SHARED) && kind != Kind::Anon && kind != Kind::Zero {
            self.cache.set_dirty(self.pa, old);
            self.pt.update(va, &|p| {
                p.mkwrite().mkdirty().mkyoung().set_bits(PTE_SOFT_DIRTY)
            });
            self.tlb.flush_range(self.asid, va, va + PAGE_SIZE);
            return Ok(());
        }
        if kind == Kind::Anon && page.is_some_and(|p| p.mapcount() == 1) {
            // wp_can_reuse_anon_folio: a page still in this CPU's LRU batch
            // is drained so the batch's reference does not count.
            if page.is_some_and(|p| !p.test(PageFlags::LRU)) {
                crate::swap::lru_add_drain_cpu(self.pa, self.cpu);
            }
            // A swap-cache page: a swap-cache page whose slot no other
            // pte refers to leaves the cache first.
            self.swap.folio_free_swap(self.pa, self.cpu, old);
        }
        if kind == Kind::Anon && page.is_some_and(|p| p.refcount() == 1 && p.mapcount() == 1) {
            self.pa.events.count_on(self.cpu.0, VmEvent::Pgreuse, 1);
            self.pt.update(va, &|p| {
                p.mkwrite().mkdirty().mkyoung().set_bits(PTE_SOFT_DIRTY)
            });
            self.tlb.flush_range(self.asid, va, va + PAGE_SIZE);
            return Ok(());
        }
        // wp_page_copy: the old page is held while the copy is allocated
        // (direct reclaim may run meanwhile), and the pte re-checked after
        // (`pte_same`): if reclaim took the page away, the fault is retried.
        let held = kind != Kind::Zero && page.is_some();
        if let Some(p) = page.filter(|_| held) {
            p.get();
        }
        let unhold = |this: &mut Self| {
            if held {
                put_page(this.pa, this.cpu, old);
            }
        };
        let new = match self.alloc_user_page() {
            Ok(n) => n,
            Err(e) => {
                unhold(self);
                return Err(e);
            }
        };
        if self.pt.lookup(va).map(|(p, _)| p.pfn()) != Some(old)
            || !self.pt.lookup(va).is_some_and(|(p, _)| p.present())
        {
            put_page(self.pa, self.cpu, new);
            unhold(self);
            return Ok(());
        }
        if kind != Kind::Zero {
            self.pa.direct_map().copy_page(new, old);
        }
        unhold(self);
        let flags = pte_flags_for(vma.flags, true)
            .union(PteFlags::DIRTY)
            .union(PteFlags::ACCESSED);
        let prev = match self.install(va, new, flags) {
            Ok(p) => p,
            Err(e) => {
                put_page(self.pa, self.cpu, new);
                return Err(e);
            }
        };
        self.tlb.flush_range(self.asid, va, va + PAGE_SIZE);
        self.set_anon(new, vma, va);
        self.add_rmap(new, Kind::Anon);
        folio_add_lru(self.pa, self.cpu, new);
        let mut freed = Vec::new();
        self.drop_mapping(old, prev, &mut freed);
        self.release(freed);
        Ok(())
    }

    /// `copy_page_range` for one VMA at fork: every pte of `vma` in `self`
    /// (the parent) is duplicated into `child`. Each mapped page gains a
    /// reference and a mapcount; private writable mappings are
    /// write-protected in both so the first write copies
    /// (`copy_present_pte`); the child's ptes are old, and clean in shared
    /// mappings. ENOMEM if the child's tables cannot be allocated.
    pub fn copy_page_range(
        &mut self,
        child: &mut UserPageTables<'_>,
        vma: &Vma,
    ) -> Result<(), Errno> {
        let cow = vma.flags.0 & (VmFlags::SHARED.0 | VmFlags::MAYWRITE.0) == VmFlags::MAYWRITE.0;
        let shared = vma.flags.contains(VmFlags::SHARED);
        let (pa, zero, swap, pte_mode) = (self.pa, self.zero_pfn, self.swap, self.mode());
        let mut frames = child.frames();
        let mut protected = false;
        let mut added = [0i64; 4];
        let r = child
            .pt
            .copy_range(&mut frames, self.pt, vma.start, vma.end, &mut |_, pte| {
                if pte.is_swap() {
                    // copy_nonpresent_pte: the child refers to the slot too.
                    let e = pte.swap_entry(pte_mode)?;
                    swap.swap_duplicate(e).ok()?;
                    added[RssKind::Swap as usize] += 1;
                    return Some((pte, pte));
                }
                if !pte.maps_page() {
                    return None;
                }
                let pfn = pte.pfn();
                let page = pa.page(pfn)?;
                let kind = page_kind(zero, pfn, page);
                let mut cpte = pte.mkold();
                let mut ppte = pte;
                if cow && pte.writable() {
                    ppte = pte.wrprotect();
                    cpte = cpte.wrprotect();
                    protected = true;
                }
                if shared {
                    cpte = cpte.mkclean();
                }
                if kind != Kind::Zero {
                    // folio_try_dup_anon_rmap / folio_dup_file_rmap: one more
                    // reference and mapping of a page mapped already, so
                    // the node counters do not change.
                    page.get();
                    page.add_mapcount(1);
                    if let Some(r) = kind.rss() {
                        added[r as usize] += 1;
                    }
                }
                Some((cpte, ppte))
            });
        for (i, n) in added.iter().enumerate() {
            child.rss[i] += n;
        }
        if protected {
            self.tlb.flush_range(self.asid, vma.start, vma.end);
        }
        r
    }

    /// `msync`'s and `fsync`'s part for the ptes of `[start, end)` of a
    /// shared file VMA: moves pte dirty bits to the pages
    /// (`folio_mkclean`, write-protecting where dirty tracking needs the
    /// next write to fault), then writes the file's dirty pages back.
    pub fn sync_range(&mut self, vma: &Vma, start: VirtAddr, end: VirtAddr) -> Result<(), Errno> {
        let Some(file) = vma.file.clone() else {
            return Ok(());
        };
        let mut dirty: Vec<(VirtAddr, Pfn)> = Vec::new();
        self.pt.walk(start, end, &mut |va, pte, _| {
            if pte.present() && pte.dirty() {
                dirty.push((va, pte.pfn()));
            }
        });
        let track = !shared_writable_at_once(vma);
        for &(va, pfn) in &dirty {
            self.pt.update(va, &|p| {
                let p = p.mkclean();
                if track {
                    p.wrprotect()
                } else {
                    p
                }
            });
            self.cache.set_dirty(self.pa, pfn);
        }
        if !dirty.is_empty() {
            self.tlb.flush_range(self.asid, start, end);
        }
        let first = vma.pgoff_at(start);
        let last = vma.pgoff_at(VirtAddr(end.0 - PAGE_SIZE));
        self.cache
            .writeback(self.pa, &file, first, last)
            .map(|_| ())
    }
}

impl PageTableOps for UserPageTables<'_> {
    fn unmap_range(&mut self, start: VirtAddr, end: VirtAddr) {
        let mut frames = self.frames();
        let mut entries: Vec<Pte> = Vec::new();
        let tables = self
            .pt
            .zap_range(&mut frames, start, end, &mut |_, old| entries.push(old));
        // The mmu_gather flushes only what it gathered: with no entry
        // cleared and no table freed (a range never touched) there is
        // nothing cached to flush (`tlb_flush_mmu_tlbonly` on an empty range).
        if entries.is_empty() && tables == 0 {
            return;
        }
        let mut freed = Vec::with_capacity(entries.len());
        let mut swapped = Vec::new();
        for e in entries {
            if e.maps_page() {
                self.drop_mapping(e.pfn(), e, &mut freed);
            } else if let Some(se) = e.swap_entry(self.mode()) {
                self.rss[RssKind::Swap as usize] -= 1;
                swapped.push(se);
            }
        }
        self.tlb.flush_range(self.asid, start, end);
        self.release(freed);
        for se in swapped {
            self.swap.free_swap_and_cache(self.pa, self.cpu, se);
        }
    }

    fn change_protection(&mut self, start: VirtAddr, end: VirtAddr, vm_flags: VmFlags) {
        let mode = self.mode();
        let pa = self.pa;
        let zero = self.zero_pfn;
        let shared = vm_flags.contains(VmFlags::SHARED);
        let f = |pte: Pte| {
            // Writable only where no write fault is needed first: shared
            // shmem pages, shared file pages already dirty, and exclusive
            // anonymous pages that were dirtied (`can_change_pte_writable`).
            let pfn = pte.pfn();
            let writable = Some(pfn) != zero
                && pa.page(pfn).is_some_and(|p| {
                    if shared {
                        p.test(PageFlags::SWAPBACKED) || pte.dirty()
                    } else {
                        // PageAnonExclusive, approximated by the only
                        // mapping (no GUP pins exist here to rule out).
                        p.mapping() & PAGE_MAPPING_ANON != 0 && p.mapcount() == 1 && pte.dirty()
                    }
                });
            let soft = pte.raw() & PTE_SOFT_DIRTY;
            pte.modify(mode, pte_flags_for(vm_flags, writable))
                .set_bits(soft)
        };
        self.pt.change_protection(start, end, &f);
        self.tlb.flush_range(self.asid, start, end);
    }

    fn move_range(&mut self, old: VirtAddr, new: VirtAddr, len: u64) -> Result<(), Errno> {
        let mut frames = self.frames();
        if let Err(e) = self.pt.move_range(&mut frames, old, new, len) {
            // Nothing moved: free the empty destination tables the
            // attempt allocated and leave the source as it was.
            self.pt
                .zap_range(&mut frames, new, new + len, &mut |_, _| {});
            return Err(e);
        }
        // Free the source tables the move emptied (no entries are left).
        self.pt
            .zap_range(&mut frames, old, old + len, &mut |_, _| {});
        self.tlb.flush_range(self.asid, old, old + len);
        self.tlb.flush_range(self.asid, new, new + len);
        Ok(())
    }

    fn populate(
        &mut self,
        vma: &Vma,
        start: VirtAddr,
        end: VirtAddr,
        write: bool,
    ) -> Result<(), Errno> {
        let mut va = start;
        while va < end {
            // follow_page: a pte that already allows the access needs no fault.
            let ok = self
                .pt
                .lookup(va)
                .is_some_and(|(p, l)| l == 1 && p.present() && (!write || p.writable()));
            if !ok {
                self.fault_counted(vma, va, write).map_err(|e| match e {
                    FaultError::Oom => Errno::ENOMEM,
                    _ => Errno::EFAULT,
                })?;
            }
            va += PAGE_SIZE;
        }
        Ok(())
    }

    fn discard(&mut self, start: VirtAddr, end: VirtAddr, free: bool) {
        if !free {
            self.unmap_range(start, end);
            return;
        }
        // MADV_FREE (`madvise_free_pte_range`): exclusive anonymous pages
        // become clean, old and lazily freeable (`folio_mark_lazyfree`
        // moves them to the inactive file list); a swapped-out page is
        // simply dropped with its slot.
        let mut pages: Vec<VirtAddr> = Vec::new();
        let mut swapped: Vec<VirtAddr> = Vec::new();
        self.pt.walk(start, end, &mut |va, pte, level| {
            if pte.present() {
                pages.push(va);
            } else if level == 1 && pte.is_swap() {
                swapped.push(va);
            }
        });
        for va in swapped {
            let mode = self.mode();
            if let Some(old) = self
                .pt
                .update(va, &|p| if p.is_swap() { Pte::NONE } else { p })
            {
                if let Some(e) = old.swap_entry(mode) {
                    self.rss[RssKind::Swap as usize] -= 1;
                    self.swap.free_swap_and_cache(self.pa, self.cpu, e);
                }
            }
        }
        for va in pages {
            let Some((pte, _)) = self.pt.lookup(va) else {
                continue;
            };
            let pfn = pte.pfn();
            let Some(page) = self.pa.page(pfn) else {
                continue;
            };
            if self.kind_of(pfn, page) != Kind::Anon || page.mapcount() != 1 {
                continue;
            }
            // A swap-cache page must leave the cache first (its slot has
            // no other user), or it is skipped.
            if page.test(PageFlags::SWAPCACHE) && !self.swap.folio_free_swap(self.pa, self.cpu, pfn)
            {
                continue;
            }
            self.pt.update(va, &|p| p.mkold().mkclean());
            crate::swap::folio_mark_lazyfree(self.pa, self.cpu, pfn);
        }
        self.tlb.flush_range(self.asid, start, end);
    }

    /// `mlock_vma_pages_range` / munlock: the pages mapped in the range
    /// are locked (unevictable) or unlocked.
    fn mlock_range(&mut self, start: VirtAddr, end: VirtAddr, lock: bool) {
        let mut pages: Vec<Pfn> = Vec::new();
        self.pt.walk(start, end, &mut |_, pte, level| {
            if level == 1 && pte.maps_page() {
                pages.push(pte.pfn());
            }
        });
        for pfn in pages {
            let Some(page) = self.pa.page(pfn) else {
                continue;
            };
            if self.kind_of(pfn, page) == Kind::Zero {
                continue;
            }
            if lock {
                crate::swap::mlock_folio(self.pa, self.cpu, pfn);
            } else {
                crate::swap::munlock_folio(self.pa, self.cpu, pfn);
            }
        }
    }

    /// `madvise_cold_or_pageout_pte_range`: the pages of the range that
    /// only this mm maps lose their young bits; MADV_COLD deactivates
    /// them, MADV_PAGEOUT reclaims them (`reclaim_pages`).
    fn cold(&mut self, start: VirtAddr, end: VirtAddr, pageout: bool) {
        let Some(r) = self.pa.reclaimer() else { return };
        let mut pages: Vec<(VirtAddr, Pfn)> = Vec::new();
        self.pt.walk(start, end, &mut |va, pte, level| {
            if level == 1 && pte.present() {
                pages.push((va, pte.pfn()));
            }
        });
        let mut chosen = Vec::new();
        for (va, pfn) in pages {
            let Some(page) = self.pa.page(pfn) else {
                continue;
            };
            if self.kind_of(pfn, page) == Kind::Zero || page.mapcount() != 1 {
                continue;
            }
            self.pt.update(va, &|p| p.mkold());
            if pageout {
                chosen.push(pfn);
            } else {
                r.deactivate(self.pa, self.cpu, pfn);
            }
        }
        self.tlb.flush_range(self.asid, start, end);
        if !chosen.is_empty() {
            // The RSS deltas of this mm are applied before the pages leave.
            r.reclaim_pages(self.pa, self.cpu, &chosen);
        }
    }

    fn cached(&self, vma: &Vma, va: VirtAddr) -> bool {
        vma.file.as_ref().is_some_and(|f| {
            self.cache
                .find(self.cache.mapping_of(f), vma.pgoff_at(va))
                .is_some()
        })
    }

    fn page_info(&self, va: VirtAddr) -> Option<PageInfo> {
        let (pte, _) = self.pt.lookup(va.page_down())?;
        if pte.is_swap() {
            let e = pte.swap_entry(self.mode())?;
            return Some(PageInfo {
                swap: Some((e.ty, e.offset)),
                ..PageInfo::default()
            });
        }
        let pfn = pte.pfn();
        let page = self.pa.page(pfn)?;
        let kind = self.kind_of(pfn, page);
        let mapcount = if kind == Kind::Zero {
            0
        } else {
            page.mapcount().max(0) as u32
        };
        Some(PageInfo {
            present: true,
            pfn: pfn.0,
            writable: pte.writable(),
            dirty: pte.dirty() || page.test(PageFlags::DIRTY),
            young: pte.accessed() || page.test(PageFlags::REFERENCED),
            anon: kind == Kind::Anon,
            mapcount,
            swap: None,
            soft_dirty: pte.raw() & PTE_SOFT_DIRTY != 0,
            exclusive: mapcount == 1,
            lazyfree: kind == Kind::Anon && !page.test(PageFlags::SWAPBACKED),
        })
    }

    fn clear_refs(&mut self, start: VirtAddr, end: VirtAddr, soft_dirty: bool) {
        let mut pages: Vec<(VirtAddr, Pfn)> = Vec::new();
        self.pt.walk(start, end, &mut |va, pte, _| {
            if pte.maps_page() {
                pages.push((va, pte.pfn()));
            }
        });
        for (va, pfn) in pages {
            if soft_dirty {
                self.pt
                    .update(va, &|p| p.clear_bits(PTE_SOFT_DIRTY).wrprotect());
            } else {
                self.pt.update(va, &|p| p.mkold());
                if let Some(page) = self.pa.page(pfn) {
                    page.clear(PageFlags::REFERENCED);
                }
            }
        }
        self.tlb.flush_range(self.asid, start, end);
    }
}

/// Accounts one pte cleared in another mm by an rmap-side operation
/// (truncation, `try_to_unmap`): the mm's RSS, the page's mapcount and
/// mapped/anon counters, the dirty bit moved to a cache page. Returns the
/// page whose reference the caller puts after flushing the TLB.
fn account_zapped(
    pa: &PageAlloc,
    cache: &PageCache,
    zero_pfn: Option<Pfn>,
    rss: &crate::rmap::RssStat,
    old: Pte,
) -> Option<Pfn> {
    let pfn = old.pfn();
    let page = pa.page(pfn)?;
    let kind = page_kind(zero_pfn, pfn, page);
    if kind == Kind::Zero {
        return None;
    }
    if let Some(r) = kind.rss() {
        rss.add(r, -1);
    }
    if kind != Kind::Anon && old.dirty() {
        cache.set_dirty(pa, pfn);
    }
    if page.add_mapcount(-1) == 0 {
        let item = if kind == Kind::Anon {
            NodeStat::NrAnonPages
        } else {
            NodeStat::NrMapped
        };
        pa.nodes[page.nid() as usize].stats.add(item, -1);
    }
    Some(pfn)
}

/// The machine-wide services an rmap-side operation needs: the
/// allocator, the CPU it runs on, the rmap, the page cache, the zero page
/// and the TLB shootdown.
pub struct RmapCtx<'a> {
    /// The page allocator.
    pub pa: &'a PageAlloc,
    /// The CPU doing the work.
    pub cpu: CpuId,
    /// The reverse map.
    pub rmap: &'a crate::rmap::Rmap,
    /// The page cache.
    pub cache: &'a PageCache,
    /// Swap and the swap cache.
    pub swap: &'a SwapState,
    /// The shared zero page.
    pub zero_pfn: Option<Pfn>,
    /// Flushes every CPU's TLB.
    pub tlb: &'a mut dyn TlbShootdown,
}

impl RmapCtx<'_> {
    /// `unmap_mapping_range(mapping, first, 0, even_cows)` as truncation
    /// uses it: in every VMA of every mm that maps file `m`, clears the
    /// ptes of the pages from index `first` on, file pages and private
    /// copies alike, accounting each mm, flushing each mm's TLB entries,
    /// then dropping the references. The tables stay.
    pub fn unmap_mapping_range(&mut self, m: crate::rmap::MappingId, first: u64) {
        let dm = self.pa.direct_map();
        let mut freed = Vec::new();
        for (_, e, start, end, pgoff) in self.rmap.file_vmas(m) {
            let from = start + (first.max(pgoff) - pgoff) * PAGE_SIZE;
            if from >= end {
                continue;
            }
            let view = PageTable::view(dm, e.root, e.mode);
            // The pages mapped, found by walking only the tables present.
            let mut mapped = Vec::new();
            view.walk(VirtAddr(from), VirtAddr(end), &mut |va, p, l| {
                if l == 1 && p.maps_page() {
                    mapped.push(va);
                }
            });
            for &va in &mapped {
                if let Some(old) = view.update(va, &|_| Pte::NONE) {
                    freed.extend(account_zapped(
                        self.pa,
                        self.cache,
                        self.zero_pfn,
                        &e.rss,
                        old,
                    ));
                }
            }
            // As the mmu_gather does: flush the range of the entries
            // cleared, and nothing if none was.
            if let (Some(&first), Some(&last)) = (mapped.first(), mapped.last()) {
                self.tlb.flush_range(e.asid, first, last + PAGE_SIZE);
            }
        }
        for pfn in freed {
            put_page(self.pa, self.cpu, pfn);
        }
    }

    /// MADV_FREE's check in `try_to_unmap_one`: true if any pte mapping the
    /// lazily freed page `pfn` was written since (it must be kept).
    pub fn lazyfree_redirtied(&self, pfn: Pfn) -> bool {
        let Some(page) = self.pa.page(pfn) else {
            return false;
        };
        page.test(PageFlags::DIRTY)
            || self
                .rmap
                .mapped_ptes(
                    self.pa.direct_map(),
                    PageMapping::decode(page.mapping()),
                    page.index(),
                    pfn,
                )
                .iter()
                .any(|(_, p)| p.dirty())
    }

    /// `folio_referenced`: the number of ptes mapping `pfn` that were
    /// young, clearing them (and flushing those translations) so the next
    /// access sets them again.
    pub fn page_referenced(&mut self, pfn: Pfn) -> usize {
        let Some(page) = self.pa.page(pfn) else {
            return 0;
        };
        let mapping = PageMapping::decode(page.mapping());
        let hits = self
            .rmap
            .referenced(self.pa.direct_map(), mapping, page.index(), pfn);
        for h in &hits {
            self.tlb.flush_range(h.entry.asid, h.va, h.va + PAGE_SIZE);
        }
        hits.len()
    }

    /// `try_to_unmap`: clears every pte that maps `pfn` in every mm (found
    /// through the rmap), accounting and flushing each; returns how many
    /// were cleared. The page keeps the caller's reference.
    pub fn try_to_unmap(&mut self, pfn: Pfn) -> usize {
        self.try_to_unmap_to(pfn, None)
    }

    /// `try_to_unmap` as reclaim uses it: with a swap entry (a swap-cache
    /// page), every pte becomes that entry, taking a reference to the slot
    /// (`swap_duplicate`) and moving the mm's count from anon to swap;
    /// without, the ptes are cleared. A dirty pte dirties the page.
    pub fn try_to_unmap_to(
        &mut self,
        pfn: Pfn,
        entry: Option<crate::arch::pte::SwapEntry>,
    ) -> usize {
        let Some(page) = self.pa.page(pfn) else {
            return 0;
        };
        let mapping = PageMapping::decode(page.mapping());
        let swap = self.swap;
        let hits = self
            .rmap
            .unmap_all(
                self.pa.direct_map(),
                mapping,
                page.index(),
                pfn,
                &|mode| match entry {
                    Some(e) if swap.swap_duplicate(e).is_ok() => Pte::swap(mode, e),
                    _ => Pte::NONE,
                },
            );
        let mut freed = Vec::new();
        for (h, old) in &hits {
            self.tlb.flush_range(h.entry.asid, h.va, h.va + PAGE_SIZE);
            if old.dirty() {
                page.set(PageFlags::DIRTY);
            }
            let now = PageTable::view(self.pa.direct_map(), h.entry.root, h.entry.mode)
                .lookup(h.va)
                .map(|(p, _)| p);
            if now.is_some_and(|p| p.is_swap()) {
                h.entry.rss.add(RssKind::Swap, 1);
            }
            freed.extend(account_zapped(
                self.pa,
                self.cache,
                self.zero_pfn,
                &h.entry.rss,
                *old,
            ));
        }
        for pfn in freed {
            put_page(self.pa, self.cpu, pfn);
        }
        hits.len()
    }
}

/// Tears down a whole address space (`exit_mmap`): zaps every VMA's pages,
/// frees the tables and flushes the mm's TLB entries everywhere. The mm is
/// left with no VMAs.
pub fn exit_mmap(mm: &mut MmStruct, ops: &mut UserPageTables<'_>) {
    // The VMAs leave the rmap before their tables are freed, so no walk
    // can reach a table being freed (`free_pgtables` after unlinking).
    let ranges: Vec<(VirtAddr, VirtAddr)> = mm.iter().map(|v| (v.start, v.end)).collect();
    for &(s, _) in &ranges {
        mm.unlink_vma(s);
    }
    // One zap over the whole span, as `unmap_vmas` then one
    // `free_pgtables` do: per VMA, each call would look again for tables
    // left empty (thousands of VMAs share a few tables). Nothing lies
    // between the VMAs.
    if let (Some(&(start, _)), Some(&(_, end))) = (ranges.first(), ranges.last()) {
        ops.unmap_range(start, end);
    }
    ops.tlb.flush_asid(ops.asid);
    ops.commit(mm);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;
    use crate::debug::check_page_alloc;
    use crate::mm_init::testing::boot;
    use crate::mmap::{
        mmap, munmap, MAP_ANONYMOUS, MAP_POPULATE, MAP_PRIVATE, PROT_READ, PROT_WRITE,
    };
    use crate::types::PhysAddr;

    #[test]
    fn populate_zap_protect_and_account() {
        let m = boot(Arch::X86_64, 64 << 20, 1);
        let pa = &m.pa;
        let mut frames = PgtableFrames { pa, cpu: CpuId(0) };
        let kernel = PageTable::new_kernel(
            pa.direct_map(),
            &mut frames,
            PagingMode::X86_64L4,
            PhysAddr(64 << 20),
        )
        .unwrap();
        let mut pt = PageTable::new_user(&kernel, &mut frames).unwrap();
        let free0 = pa.nr_free_pages() + pa.nr_pcp_pages();
        let mut mm = MmStruct::for_x86_64_default();
        let mut tlb = NoTlb;
        let cache = PageCache::new();
        let swap = crate::swap_state::SwapState::new();
        let mut ops = UserPageTables::new(&mut pt, pa, &cache, &swap, CpuId(0), 1, &mut tlb, None);
        let a = mmap(
            &mut mm,
            &mut ops,
            VirtAddr(0),
            8 * PAGE_SIZE,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
            None,
            0,
        )
        .unwrap();
        ops.commit(&mut mm);
        assert_eq!(mm.rss.get(RssKind::Anon), 8);
        assert_eq!(pa.nodes[0].stats.get(NodeStat::NrAnonPages), 8);
        let info = ops.page_info(a).unwrap();
        assert!(info.present && info.anon && info.writable && info.dirty && info.soft_dirty);
        assert_eq!(info.mapcount, 1);
        let page = pa.page(Pfn(info.pfn)).unwrap();
        assert_eq!(page.index(), a.0 >> crate::types::PAGE_SHIFT);
        assert_eq!(page.mapping() & PAGE_MAPPING_ANON, 1);
        // Real zeroed bytes.
        let mut buf = [0xffu8; 64];
        pa.direct_map().read(Pfn(info.pfn).phys(), &mut buf);
        assert_eq!(buf, [0; 64]);
        // Read-only, then back: exclusive dirty anon pages are writable again.
        ops.change_protection(a, a + 8 * PAGE_SIZE, VmFlags::READ | VmFlags::MAYREAD);
        assert!(!ops.page_info(a).unwrap().writable);
        ops.change_protection(a, a + 8 * PAGE_SIZE, VmFlags::READ | VmFlags::WRITE);
        assert!(ops.page_info(a).unwrap().writable);
        // MADV_FREE marks lazyfree, clean.
        ops.discard(a, a + PAGE_SIZE, true);
        let i = ops.page_info(a).unwrap();
        assert!(i.lazyfree && !i.dirty && !i.young);
        munmap(&mut mm, &mut ops, a, 8 * PAGE_SIZE).unwrap();
        ops.commit(&mut mm);
        assert_eq!(mm.rss.all(), [0; 4]);
        assert_eq!(mm.pgtables_bytes, 0);
        assert_eq!(pa.nodes[0].stats.get(NodeStat::NrAnonPages), 0);
        assert_eq!(pa.nr_free_pages() + pa.nr_pcp_pages(), free0);
        check_page_alloc(pa).unwrap();
        pt.destroy(&mut frames);
        kernel.destroy(&mut frames);
        check_page_alloc(pa).unwrap();
    }
}
