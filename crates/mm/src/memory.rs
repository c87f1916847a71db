//! The page-table side of a process's address space: populate (the fault
//! path that MAP_POPULATE, mlock and exec use), zap, change protection, move,
//! discard and report pages. Mirrors mm/memory.c (`zap_pte_range`,
//! `do_anonymous_page`, `do_read_fault`/`do_cow_fault`/`do_shared_fault`,
//! `vm_normal_page`) and the pte parts of mm/mprotect.c, mm/mremap.c,
//! mm/madvise.c and fs/proc/task_mmu.c.
//!
//! [`UserPageTables`] implements the VMA layer's [`PageTableOps`] over a
//! process's [`PageTable`] in RAM, the [`PageAlloc`], the CPU doing the work
//! and a [`TlbShootdown`] that the machine implements over all CPUs' TLBs.
//! Every page it maps holds real bytes in simulated RAM.
//!
//! Simplifications, until the subsystems they need exist:
//! - no page cache: a file page is read from the file into a newly
//!   allocated page for each mapping that faults it (so two mappings of one
//!   file do not share frames); it still counts as a file page
//!   (NR_FILE_PAGES, NR_MAPPED, MM_FILEPAGES) and is freed when unmapped;
//! - shared anonymous memory (shmem) gets a zeroed page per mapping, counted
//!   as shmem (NR_SHMEM, MM_SHMEMPAGES), for the same reason;
//! - no LRU lists, no mlock accounting of pages (PG_mlocked/Unevictable),
//!   no huge pages: populate maps 4 KiB pages only;
//! - special mappings (`[vdso]`, `[vvar]`) are never populated;
//! - RSS deltas are collected and applied to the `mm_struct` by
//!   [`UserPageTables::commit`] (Linux updates the counters as it goes;
//!   the VMA layer holds the `MmStruct` borrow while it calls us).

use alloc::vec::Vec;

use crate::arch::pte::{PagingMode, Pte, PteFlags};
use crate::errno::Errno;
use crate::gfp::Gfp;
use crate::memmap::{Page, PageFlags};
use crate::mm_types::{MmStruct, PageInfo, PageTableOps, RssKind, VmFlags, Vma};
use crate::page_alloc::{CpuId, PageAlloc};
use crate::pgalloc::PgtableFrames;
use crate::pgtable::PageTable;
use crate::types::{Order, Pfn, VirtAddr, PAGE_SHIFT, PAGE_SIZE};
use crate::vmstat::NodeStat;

/// x86 `_PAGE_SOFT_DIRTY` (`_PAGE_BIT_SOFTW3`, bit 11): ignored by the
/// hardware, set by software on every write fault and new mapping.
pub const PTE_SOFT_DIRTY: u64 = 1 << 11;

/// `PAGE_MAPPING_ANON`: the low bit of `page->mapping` marks an anon_vma.
pub const PAGE_MAPPING_ANON: u64 = 1;

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
enum Kind {
    /// The shared zero page (`is_zero_pfn`): not counted anywhere.
    Zero,
    /// PageAnon.
    Anon,
    /// Shared anonymous memory (!PageAnon && PageSwapBacked).
    Shmem,
    /// A file page.
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

/// A process's page tables as the VMA layer sees them ([`PageTableOps`]):
/// the tables, the allocator their pages and frames come from, the CPU
/// doing the work, the address-space id and the TLB shootdown.
pub struct UserPageTables<'a> {
    /// The process's tables.
    pub pt: &'a mut PageTable,
    /// The page allocator.
    pub pa: &'a PageAlloc,
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
}

impl<'a> UserPageTables<'a> {
    /// Page-table operations for one system call.
    pub fn new(
        pt: &'a mut PageTable,
        pa: &'a PageAlloc,
        cpu: CpuId,
        asid: u16,
        tlb: &'a mut dyn TlbShootdown,
        zero_pfn: Option<Pfn>,
    ) -> Self {
        UserPageTables {
            pt,
            pa,
            cpu,
            asid,
            tlb,
            zero_pfn,
            rss: [0; 4],
        }
    }

    /// Applies the RSS changes made so far to `mm` (`add_mm_counter`) and
    /// sets `mm->pgtables_bytes` from the tables the mm owns below its PGD
    /// (Linux counts PTE, PMD and PUD tables, not the PGD itself).
    pub fn commit(&mut self, mm: &mut MmStruct) {
        for (i, kind) in [RssKind::File, RssKind::Anon, RssKind::Swap, RssKind::Shmem]
            .into_iter()
            .enumerate()
        {
            if self.rss[i] != 0 {
                mm.add_rss(kind, self.rss[i]);
            }
        }
        self.rss = [0; 4];
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
        if Some(pfn) == self.zero_pfn {
            Kind::Zero
        } else if page.mapping() & PAGE_MAPPING_ANON != 0 {
            Kind::Anon
        } else if page.test(PageFlags::SWAPBACKED) {
            Kind::Shmem
        } else {
            Kind::File
        }
    }

    fn stat(&self, page: &Page, item: NodeStat, d: i64) {
        self.pa.nodes[page.nid() as usize].stats.add(item, d);
    }

    /// Allocates a zeroed user page (GFP_HIGHUSER_MOVABLE).
    fn alloc_user_page(&self) -> Result<Pfn, Errno> {
        let pfn = self
            .pa
            .alloc_pages(self.cpu, Gfp::HIGHUSER_MOVABLE, Order(0))
            .ok_or(Errno::ENOMEM)?;
        self.pa.direct_map().zero_pages(pfn, 1);
        Ok(pfn)
    }

    /// Reads page `pgoff` of `vma`'s file into `pfn`, zero beyond EOF.
    fn fill_from_file(&self, vma: &Vma, pgoff: u64, pfn: Pfn) {
        let Some(f) = &vma.file else { return };
        let mut buf = [0u8; PAGE_SIZE as usize];
        let _ = f.read_at(pgoff << PAGE_SHIFT, &mut buf);
        self.pa.direct_map().write(pfn.phys(), &buf);
    }

    /// Gives a fresh page its identity and counts it mapped once
    /// (`folio_add_new_anon_rmap` / `folio_add_file_rmap_pte`).
    fn account_new(&mut self, pfn: Pfn, kind: Kind, vma: &Vma, va: VirtAddr, dirty: bool) {
        let Some(page) = self.pa.page(pfn) else {
            return;
        };
        page.add_mapcount(1);
        page.set(PageFlags::UPTODATE);
        match kind {
            Kind::Anon => {
                let av = vma.anon_vma.map_or(0, |a| a.0);
                page.set_mapping((av << 2) | PAGE_MAPPING_ANON);
                page.set_index(vma.pgoff_at(va));
                page.set(PageFlags::SWAPBACKED);
                self.stat(page, NodeStat::NrAnonPages, 1);
            }
            Kind::Shmem | Kind::File => {
                let id = vma
                    .file
                    .as_ref()
                    .map_or(0, |f| (f.ino() ^ ((f.dev().0 as u64) << 40)) << 2);
                page.set_mapping(id.max(4));
                page.set_index(vma.pgoff_at(va));
                self.stat(page, NodeStat::NrFilePages, 1);
                self.stat(page, NodeStat::NrMapped, 1);
                if kind == Kind::Shmem {
                    page.set(PageFlags::SWAPBACKED);
                    self.stat(page, NodeStat::NrShmem, 1);
                }
                if dirty {
                    page.set(PageFlags::DIRTY);
                }
            }
            Kind::Zero => {}
        }
        if let Some(r) = kind.rss() {
            self.rss[r as usize] += 1;
        }
    }

    /// Drops one mapping of `pfn` (`zap_present_ptes` + `folio_remove_rmap_pte`)
    /// and, if that was the last reference, releases the page into `freed`.
    fn drop_mapping(&mut self, pfn: Pfn, freed: &mut Vec<Pfn>) {
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
        if page.add_mapcount(-1) == 0 {
            match kind {
                Kind::Anon => self.stat(page, NodeStat::NrAnonPages, -1),
                _ => self.stat(page, NodeStat::NrMapped, -1),
            }
        }
        freed.push(pfn);
    }

    /// Puts the references gathered by a zap, after the TLB flush (as
    /// `tlb_finish_mmu` frees only once no CPU can reach the pages).
    fn release(&mut self, freed: Vec<Pfn>) {
        for pfn in freed {
            let Some(page) = self.pa.page(pfn) else {
                continue;
            };
            if page.refcount() == 1 {
                // The last reference: the page leaves its mapping.
                let kind = self.kind_of(pfn, page);
                if kind != Kind::Anon {
                    self.stat(page, NodeStat::NrFilePages, -1);
                }
                if kind == Kind::Shmem {
                    self.stat(page, NodeStat::NrShmem, -1);
                }
                page.set_mapping(0);
                page.set_index(0);
                page.clear(
                    PageFlags::SWAPBACKED
                        | PageFlags::DIRTY
                        | PageFlags::UPTODATE
                        | PageFlags::REFERENCED,
                );
            }
            self.pa.free_pages(self.cpu, pfn, Order(0));
        }
    }

    fn frames(&self) -> PgtableFrames<'a> {
        PgtableFrames {
            pa: self.pa,
            cpu: self.cpu,
        }
    }

    /// Installs `pte` at `va`, freeing the page on failure.
    fn install(&mut self, va: VirtAddr, pfn: Pfn, flags: PteFlags) -> Result<(), Errno> {
        let mut frames = self.frames();
        let pte = Pte::new(self.mode(), pfn, flags).set_bits(PTE_SOFT_DIRTY);
        match self.pt.set_pte(&mut frames, va, pte) {
            Ok(_) => Ok(()),
            Err(e) => {
                if Some(pfn) != self.zero_pfn {
                    self.pa.free_pages(self.cpu, pfn, Order(0));
                }
                Err(e)
            }
        }
    }

    /// Faults in one page that has no pte.
    fn fault_new(&mut self, vma: &Vma, va: VirtAddr, write: bool) -> Result<(), Errno> {
        let shared = vma.flags.contains(VmFlags::MAYSHARE);
        let pgoff = vma.pgoff_at(va);
        let (pfn, kind, writable) = if vma.file.is_some() {
            if shared {
                let pfn = self.alloc_user_page()?;
                let kind = if vma.shmem {
                    Kind::Shmem
                } else {
                    self.fill_from_file(vma, pgoff, pfn);
                    Kind::File
                };
                (pfn, kind, vma.flags.contains(VmFlags::SHARED))
            } else {
                // do_read_fault maps the file page read-only; do_cow_fault
                // copies it into a new anonymous page.
                let pfn = self.alloc_user_page()?;
                self.fill_from_file(vma, pgoff, pfn);
                if write {
                    (pfn, Kind::Anon, true)
                } else {
                    (pfn, Kind::File, false)
                }
            }
        } else if write {
            (self.alloc_user_page()?, Kind::Anon, true)
        } else if let Some(z) = self.zero_pfn {
            (z, Kind::Zero, false)
        } else {
            (self.alloc_user_page()?, Kind::Anon, false)
        };
        let mut flags = pte_flags_for(vma.flags, writable);
        if write && writable {
            flags = flags.union(PteFlags::DIRTY);
        }
        self.install(va, pfn, flags)?;
        self.account_new(pfn, kind, vma, va, write);
        Ok(())
    }

    /// A write to a present page of a private mapping that is not an
    /// exclusive anonymous page: copy it (`wp_page_copy`), or make an
    /// exclusive anonymous page writable again (`wp_page_reuse`).
    fn break_cow(&mut self, vma: &Vma, va: VirtAddr, pte: Pte) -> Result<(), Errno> {
        let old = pte.pfn();
        let Some(page) = self.pa.page(old) else {
            return Ok(());
        };
        let kind = self.kind_of(old, page);
        if kind == Kind::Anon && page.mapcount() == 1 {
            if !pte.writable() && vma.flags.contains(VmFlags::WRITE) {
                self.pt
                    .update(va, &|p| p.mkwrite().mkdirty().set_bits(PTE_SOFT_DIRTY));
                self.tlb.flush_range(self.asid, va, va + PAGE_SIZE);
            }
            return Ok(());
        }
        let new = self.alloc_user_page()?;
        if kind != Kind::Zero {
            self.pa.direct_map().copy_page(new, old);
        }
        let flags = pte_flags_for(vma.flags, true).union(PteFlags::DIRTY);
        self.install(va, new, flags)?;
        self.tlb.flush_range(self.asid, va, va + PAGE_SIZE);
        let mut freed = Vec::new();
        self.drop_mapping(old, &mut freed);
        self.release(freed);
        self.account_new(new, Kind::Anon, vma, va, true);
        Ok(())
    }
}

impl PageTableOps for UserPageTables<'_> {
    fn unmap_range(&mut self, start: VirtAddr, end: VirtAddr) {
        let mut frames = self.frames();
        let mut entries: Vec<Pte> = Vec::new();
        self.pt
            .zap_range(&mut frames, start, end, &mut |_, old| entries.push(old));
        let mut freed = Vec::with_capacity(entries.len());
        for e in entries {
            if e.maps_page() {
                self.drop_mapping(e.pfn(), &mut freed);
            } else if e.is_swap() {
                self.rss[RssKind::Swap as usize] -= 1;
            }
        }
        self.tlb.flush_range(self.asid, start, end);
        self.release(freed);
    }

    fn change_protection(&mut self, start: VirtAddr, end: VirtAddr, vm_flags: VmFlags) {
        let mode = self.mode();
        let pa = self.pa;
        let zero = self.zero_pfn;
        let shared = vm_flags.contains(VmFlags::SHARED);
        let f = |pte: Pte| {
            // Writable only where no write fault is needed first: shared
            // mappings, and exclusive anonymous pages that were dirtied
            // (`can_change_pte_writable`).
            let pfn = pte.pfn();
            let writable = Some(pfn) != zero
                && (shared
                    || pa.page(pfn).is_some_and(|p| {
                        p.mapping() & PAGE_MAPPING_ANON != 0 && p.mapcount() == 1 && pte.dirty()
                    }));
            let soft = pte.raw() & PTE_SOFT_DIRTY;
            pte.modify(mode, pte_flags_for(vm_flags, writable))
                .set_bits(soft)
        };
        self.pt.change_protection(start, end, &f);
        self.tlb.flush_range(self.asid, start, end);
    }

    fn move_range(&mut self, old: VirtAddr, new: VirtAddr, len: u64) {
        let mut frames = self.frames();
        if self.pt.move_range(&mut frames, old, new, len).is_err() {
            // Out of table memory: the pages are dropped rather than left
            // behind a VMA that no longer covers them.
            self.unmap_range(old, old + len);
        }
        // Free the source tables the move emptied (no entries are left).
        self.pt
            .zap_range(&mut frames, old, old + len, &mut |_, _| {});
        self.tlb.flush_range(self.asid, old, old + len);
        self.tlb.flush_range(self.asid, new, new + len);
    }

    fn populate(
        &mut self,
        vma: &Vma,
        start: VirtAddr,
        end: VirtAddr,
        write: bool,
    ) -> Result<(), Errno> {
        if vma.special.is_some() || vma.flags.intersects(VmFlags::IO | VmFlags::PFNMAP) {
            return Ok(());
        }
        let private = !vma.flags.contains(VmFlags::MAYSHARE);
        let mut va = start;
        while va < end {
            match self.pt.lookup(va) {
                None => self.fault_new(vma, va, write)?,
                Some((pte, 1)) if pte.maps_page() && write && private => {
                    self.break_cow(vma, va, pte)?
                }
                Some((pte, 1))
                    if pte.maps_page()
                        && write
                        && vma.flags.contains(VmFlags::WRITE)
                        && !pte.writable() =>
                {
                    self.pt
                        .update(va, &|p| p.mkwrite().mkdirty().set_bits(PTE_SOFT_DIRTY));
                    self.tlb.flush_range(self.asid, va, va + PAGE_SIZE);
                }
                _ => {}
            }
            va = va + PAGE_SIZE;
        }
        Ok(())
    }

    fn discard(&mut self, start: VirtAddr, end: VirtAddr, free: bool) {
        if !free {
            self.unmap_range(start, end);
            return;
        }
        // MADV_FREE (`madvise_free_pte_range`): exclusive anonymous pages
        // become clean, old and lazily freeable.
        let mut pages: Vec<VirtAddr> = Vec::new();
        self.pt.walk(start, end, &mut |va, pte, _| {
            if pte.present() {
                pages.push(va);
            }
        });
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
            self.pt.update(va, &|p| p.mkold().mkclean());
            page.clear(PageFlags::SWAPBACKED | PageFlags::DIRTY | PageFlags::REFERENCED);
        }
        self.tlb.flush_range(self.asid, start, end);
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

/// Tears down a whole address space (`exit_mmap`): zaps every VMA's pages,
/// frees the tables and flushes the mm's TLB entries everywhere. The mm is
/// left with no VMAs.
pub fn exit_mmap(mm: &mut MmStruct, ops: &mut UserPageTables<'_>) {
    let ranges: Vec<(VirtAddr, VirtAddr)> = mm.iter().map(|v| (v.start, v.end)).collect();
    for (s, e) in ranges {
        ops.unmap_range(s, e);
    }
    let keys: Vec<u64> = mm.iter().map(|v| v.start.0).collect();
    for k in keys {
        mm.unlink_vma(k);
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
        let mut ops = UserPageTables::new(&mut pt, pa, CpuId(0), 1, &mut tlb, None);
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
        assert_eq!(mm.rss[RssKind::Anon as usize], 8);
        assert_eq!(pa.nodes[0].stats.get(NodeStat::NrAnonPages), 8);
        let info = ops.page_info(a).unwrap();
        assert!(info.present && info.anon && info.writable && info.dirty && info.soft_dirty);
        assert_eq!(info.mapcount, 1);
        let page = pa.page(Pfn(info.pfn)).unwrap();
        assert_eq!(page.index(), a.0 >> PAGE_SHIFT);
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
        assert_eq!(mm.rss, [0; 4]);
        assert_eq!(mm.pgtables_bytes, 0);
        assert_eq!(pa.nodes[0].stats.get(NodeStat::NrAnonPages), 0);
        assert_eq!(pa.nr_free_pages() + pa.nr_pcp_pages(), free0);
        check_page_alloc(pa).unwrap();
        pt.destroy(&mut frames);
        kernel.destroy(&mut frames);
        check_page_alloc(pa).unwrap();
    }
}
