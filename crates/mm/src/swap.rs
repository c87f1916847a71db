//! The LRU lists: each node's lruvec of inactive/active × anon/file plus
//! unevictable, the per-CPU folio batches that feed them, and the
//! use-tracking that moves pages between them (`folio_mark_accessed`,
//! `folio_activate`). Mirrors mm/swap.c and include/linux/mm_inline.h
//! (`folio_lru_list`, `lruvec_add_folio`, `lruvec_del_folio`).
//!
//! Lists link pages by PFN through `struct page`'s `lru` links, exactly as
//! the buddy lists do; a page is on a list iff it has PG_lru. A page in a
//! per-CPU batch holds a reference and is on no list yet, as in Linux.
//!
//! Simplifications: one lruvec per node (no memory cgroups); only the
//! `lru_add` batch is batched (activation and deactivation move the page
//! at once under the lruvec lock, which Linux defers through the
//! `activate`/`lru_deactivate` batches to save lock round trips).

use crate::memmap::{Page, PageFlags, PageList};
use crate::mmzone::Node;
use crate::page_alloc::{CpuId, PageAlloc};
use crate::types::Pfn;
use crate::vmstat::{NodeStat, VmEvent, ZoneStat};

/// `enum lru_list`, in Linux's order.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lru {
    /// LRU_INACTIVE_ANON.
    InactiveAnon = 0,
    /// LRU_ACTIVE_ANON.
    ActiveAnon = 1,
    /// LRU_INACTIVE_FILE.
    InactiveFile = 2,
    /// LRU_ACTIVE_FILE.
    ActiveFile = 3,
    /// LRU_UNEVICTABLE.
    Unevictable = 4,
}

/// NR_LRU_LISTS.
pub const NR_LRU_LISTS: usize = 5;

impl Lru {
    /// Every list, in index order.
    pub const ALL: [Lru; NR_LRU_LISTS] = [
        Lru::InactiveAnon,
        Lru::ActiveAnon,
        Lru::InactiveFile,
        Lru::ActiveFile,
        Lru::Unevictable,
    ];
    /// The evictable lists (`for_each_evictable_lru`).
    pub const EVICTABLE: [Lru; 4] = [
        Lru::InactiveAnon,
        Lru::ActiveAnon,
        Lru::InactiveFile,
        Lru::ActiveFile,
    ];
    /// `is_file_lru`.
    pub fn is_file(self) -> bool {
        matches!(self, Lru::InactiveFile | Lru::ActiveFile)
    }
    /// `is_active_lru`.
    pub fn is_active(self) -> bool {
        matches!(self, Lru::ActiveAnon | Lru::ActiveFile)
    }
    /// The list of the same type with the other activity.
    pub fn flip(self) -> Lru {
        match self {
            Lru::InactiveAnon => Lru::ActiveAnon,
            Lru::ActiveAnon => Lru::InactiveAnon,
            Lru::InactiveFile => Lru::ActiveFile,
            Lru::ActiveFile => Lru::InactiveFile,
            Lru::Unevictable => Lru::Unevictable,
        }
    }
    /// The inactive (`active == false`) or active list of a type.
    pub fn of(file: bool, active: bool) -> Lru {
        match (file, active) {
            (false, false) => Lru::InactiveAnon,
            (false, true) => Lru::ActiveAnon,
            (true, false) => Lru::InactiveFile,
            (true, true) => Lru::ActiveFile,
        }
    }
    /// The zone counter of the list (NR_ZONE_INACTIVE_ANON + lru).
    pub fn zone_stat(self) -> ZoneStat {
        match self {
            Lru::InactiveAnon => ZoneStat::NrZoneInactiveAnon,
            Lru::ActiveAnon => ZoneStat::NrZoneActiveAnon,
            Lru::InactiveFile => ZoneStat::NrZoneInactiveFile,
            Lru::ActiveFile => ZoneStat::NrZoneActiveFile,
            Lru::Unevictable => ZoneStat::NrZoneUnevictable,
        }
    }
    /// The node counter of the list (NR_INACTIVE_ANON + lru).
    pub fn stat(self) -> NodeStat {
        match self {
            Lru::InactiveAnon => NodeStat::NrInactiveAnon,
            Lru::ActiveAnon => NodeStat::NrActiveAnon,
            Lru::InactiveFile => NodeStat::NrInactiveFile,
            Lru::ActiveFile => NodeStat::NrActiveFile,
            Lru::Unevictable => NodeStat::NrUnevictable,
        }
    }
}

/// `folio_is_file_lru`: pages without PG_swapbacked (file cache, and
/// MADV_FREE'd anonymous pages) live on the file lists.
pub fn is_file_lru(page: &Page) -> bool {
    !page.test(PageFlags::SWAPBACKED)
}

/// `folio_lru_list`: the list a page belongs on by its flags.
pub fn folio_lru_list(page: &Page) -> Lru {
    if page.test(PageFlags::UNEVICTABLE) {
        return Lru::Unevictable;
    }
    Lru::of(is_file_lru(page), page.test(PageFlags::ACTIVE))
}

/// A node's LRU lists (`struct lruvec`), under the node's lru_lock.
#[derive(Debug, Default)]
pub struct Lruvec {
    lists: [PageList; NR_LRU_LISTS],
    nr: [u64; NR_LRU_LISTS],
    /// Reclaim cost of the anon lists (`lruvec->anon_cost`): pages written
    /// to swap or refaulted, weighed against `file_cost` by `get_scan_count`.
    pub anon_cost: u64,
    /// Reclaim cost of the file lists.
    pub file_cost: u64,
    /// `lruvec->nonresident_age`: evictions and activations so far, the
    /// clock refault distances are measured on (mm/workingset.c).
    pub nonresident_age: u64,
}

impl Lruvec {
    /// Pages on list `lru` (`lruvec_page_state(NR_LRU_BASE + lru)`).
    pub fn size(&self, lru: Lru) -> u64 {
        self.nr[lru as usize]
    }
    /// The list itself (for walks and tests).
    pub fn list(&self, lru: Lru) -> &PageList {
        &self.lists[lru as usize]
    }
}

impl Node {
    /// The memmap of this node's frames.
    fn lru_memmap(&self) -> &crate::memmap::Memmap {
        self.zones[0].memmap()
    }

    /// `lruvec_add_folio` (head) or `lruvec_add_folio_tail`, with PG_lru set.
    pub fn lru_add_locked(&self, vec: &mut Lruvec, pfn: Pfn, tail: bool) {
        let mm = self.lru_memmap();
        let page = mm.page(pfn);
        let lru = folio_lru_list(page);
        if tail {
            vec.lists[lru as usize].push_back(mm, pfn);
        } else {
            vec.lists[lru as usize].push_front(mm, pfn);
        }
        vec.nr[lru as usize] += 1;
        page.set(PageFlags::LRU);
        self.stats.add(lru.stat(), 1);
        if let Some(z) = self.zones.get(page.zone_idx()) {
            z.stats.add(lru.zone_stat(), 1);
        }
    }

    /// `lruvec_del_folio` with PG_lru cleared.
    pub fn lru_del_locked(&self, vec: &mut Lruvec, pfn: Pfn) {
        let mm = self.lru_memmap();
        let page = mm.page(pfn);
        let lru = folio_lru_list(page);
        vec.lists[lru as usize].remove(mm, pfn);
        vec.nr[lru as usize] -= 1;
        page.clear(PageFlags::LRU);
        self.stats.add(lru.stat(), -1);
        if let Some(z) = self.zones.get(page.zone_idx()) {
            z.stats.add(lru.zone_stat(), -1);
        }
    }

    /// The page at the tail (the oldest end) of `lru`.
    pub fn lru_tail(&self, vec: &Lruvec, lru: Lru) -> Option<Pfn> {
        vec.lists[lru as usize].last()
    }
}

/// PAGEVEC_SIZE / FOLIO_BATCH_SIZE: pages a per-CPU batch holds.
pub const FOLIO_BATCH_SIZE: usize = 31;

/// A CPU's `cpu_fbatches.lru_add`: pages waiting to go on the LRU, each
/// holding a reference.
#[derive(Debug)]
pub struct FolioBatch {
    pfns: [Pfn; FOLIO_BATCH_SIZE],
    nr: usize,
}

impl Default for FolioBatch {
    fn default() -> Self {
        FolioBatch {
            pfns: [Pfn(0); FOLIO_BATCH_SIZE],
            nr: 0,
        }
    }
}

impl FolioBatch {
    /// Pages waiting.
    pub fn len(&self) -> usize {
        self.nr
    }
    /// True if no page waits.
    pub fn is_empty(&self) -> bool {
        self.nr == 0
    }
    /// The pages waiting.
    pub fn pfns(&self) -> &[Pfn] {
        &self.pfns[..self.nr]
    }
}

/// `folio_add_lru`: queues a new page for the LRU on `cpu`'s batch (taking
/// a reference); a full batch goes onto the lists at once.
pub fn folio_add_lru(pa: &PageAlloc, cpu: CpuId, pfn: Pfn) {
    let Some(page) = pa.page(pfn) else { return };
    if page.test(PageFlags::LRU) {
        return;
    }
    page.get();
    let full = {
        let mut b = pa.fbatches[cpu.0].lock();
        let n = b.nr;
        b.pfns[n] = pfn;
        b.nr += 1;
        b.nr == FOLIO_BATCH_SIZE
    };
    if full {
        lru_add_drain_cpu(pa, cpu);
    }
}

/// `lru_add_drain_cpu`: puts the pages of `cpu`'s batch on their lists
/// (`lru_add`), then drops the batch's references.
pub fn lru_add_drain_cpu(pa: &PageAlloc, cpu: CpuId) {
    let batch = core::mem::take(&mut *pa.fbatches[cpu.0].lock());
    for &pfn in batch.pfns() {
        let Some(page) = pa.page(pfn) else { continue };
        let node = &pa.nodes[page.nid() as usize];
        // A page whose last user left while it waited is only freed here;
        // a page already isolated or listed stays where it is.
        if page.refcount() > 1 && !page.test(PageFlags::LRU) {
            let mut vec = node.lruvec.lock();
            node.lru_add_locked(&mut vec, pfn, false);
        }
        crate::memory::put_page(pa, cpu, pfn);
    }
}

/// `lru_add_drain_all`: drains every CPU's batch (before reclaim walks
/// the lists, at swapoff and drop_caches).
pub fn lru_add_drain_all(pa: &PageAlloc) {
    for cpu in 0..pa.nr_cpus() {
        lru_add_drain_cpu(pa, CpuId(cpu));
    }
}

/// Takes a page off its LRU list if it is on one (`folio_isolate_lru`
/// without the reference: the caller holds one). Returns true if it was.
pub fn lru_del(pa: &PageAlloc, pfn: Pfn) -> bool {
    let Some(page) = pa.page(pfn) else {
        return false;
    };
    let node = &pa.nodes[page.nid() as usize];
    let mut vec = node.lruvec.lock();
    if !page.test(PageFlags::LRU) {
        return false;
    }
    node.lru_del_locked(&mut vec, pfn);
    true
}

/// `folio_putback_lru`: back on the list its flags name, at the head.
pub fn lru_putback(pa: &PageAlloc, pfn: Pfn) {
    let Some(page) = pa.page(pfn) else { return };
    let node = &pa.nodes[page.nid() as usize];
    let mut vec = node.lruvec.lock();
    if !page.test(PageFlags::LRU) {
        node.lru_add_locked(&mut vec, pfn, false);
    }
}

/// Changes flags of a page that decide its list (`f`), under the node's
/// lru_lock, moving the page to the head of its new list if it is on one.
/// `f` returns false if it changed nothing. Returns `f`'s answer.
pub fn relist(pa: &PageAlloc, pfn: Pfn, f: impl FnOnce(&Page, &mut Lruvec) -> bool) -> bool {
    let Some(page) = pa.page(pfn) else {
        return false;
    };
    let node = &pa.nodes[page.nid() as usize];
    let mut vec = node.lruvec.lock();
    let listed = page.test(PageFlags::LRU);
    if listed {
        node.lru_del_locked(&mut vec, pfn);
    }
    let changed = f(page, &mut vec);
    if listed {
        node.lru_add_locked(&mut vec, pfn, false);
    }
    changed
}

/// `folio_activate`: an inactive page on the LRU moves to the head of its
/// active list (`pgactivate`); a page still in a batch is marked active so
/// that `lru_add` files it there. Ages the node's nonresident clock, as
/// `workingset_activation` does.
pub fn folio_activate(pa: &PageAlloc, cpu: CpuId, pfn: Pfn) {
    let done = relist(pa, pfn, |page, vec| {
        if page.test(PageFlags::ACTIVE) || page.test(PageFlags::UNEVICTABLE) {
            return false;
        }
        page.set(PageFlags::ACTIVE);
        vec.nonresident_age += 1;
        true
    });
    if done {
        pa.events.count_on(cpu.0, VmEvent::Pgactivate, 1);
    }
}

/// `folio_mark_lazyfree` (MADV_FREE): a clean anonymous page loses
/// PG_swapbacked (so reclaim may drop it without swap) and moves to the
/// head of the inactive file list (`lru_lazyfree`, `pglazyfree`).
pub fn folio_mark_lazyfree(pa: &PageAlloc, cpu: CpuId, pfn: Pfn) {
    let done = relist(pa, pfn, |page, _| {
        if !page.test(PageFlags::SWAPBACKED) || page.test(PageFlags::UNEVICTABLE) {
            return false;
        }
        page.clear(
            PageFlags::SWAPBACKED | PageFlags::DIRTY | PageFlags::REFERENCED | PageFlags::ACTIVE,
        );
        true
    });
    if done {
        pa.events.count_on(cpu.0, VmEvent::Pglazyfree, 1);
    }
}

/// `folio_mark_accessed` (read()/write() use of a cache page): the first
/// use sets PG_referenced, a second one activates an inactive page.
pub fn folio_mark_accessed(pa: &PageAlloc, cpu: CpuId, pfn: Pfn) {
    let Some(page) = pa.page(pfn) else { return };
    if !page.test(PageFlags::REFERENCED) {
        page.set(PageFlags::REFERENCED);
    } else if !page.test(PageFlags::ACTIVE) && !page.test(PageFlags::UNEVICTABLE) {
        folio_activate(pa, cpu, pfn);
        page.clear(PageFlags::REFERENCED);
    }
}

/// What `mm::debug` checks of a node's lists: every listed page has
/// PG_lru and sits on the list its flags name; the counts match the lists
/// and the node counters.
pub fn check_lruvec(node: &Node) -> Result<u64, alloc::string::String> {
    use alloc::format;
    let vec = node.lruvec.lock();
    let mm = node.zones[0].memmap();
    let mut total = 0;
    for lru in Lru::ALL {
        let mut n = 0u64;
        for pfn in vec.lists[lru as usize].iter(mm) {
            let page = mm.page(pfn);
            if !page.test(PageFlags::LRU) {
                return Err(format!("{pfn:?} on {lru:?} without PG_lru"));
            }
            if folio_lru_list(page) != lru {
                return Err(format!(
                    "{pfn:?} on {lru:?} but its flags say {:?}",
                    folio_lru_list(page)
                ));
            }
            if page.refcount() < 1 {
                return Err(format!(
                    "{pfn:?} on {lru:?} with refcount {}",
                    page.refcount()
                ));
            }
            n += 1;
        }
        if n != vec.nr[lru as usize] || node.stats.get(lru.stat()) != n as i64 {
            return Err(format!(
                "node {} {lru:?}: {n} listed, {} counted, {} in vmstat",
                node.nid,
                vec.nr[lru as usize],
                node.stats.get(lru.stat())
            ));
        }
        total += n;
    }
    Ok(total)
}

/// `mlock_folio`: an mlocked page becomes unevictable (PG_mlocked,
/// PG_unevictable, NR_MLOCK, `unevictable_pgs_mlocked`) and moves to the
/// unevictable list. Simplification: no per-page mlock count (Linux keeps
/// one so that a page locked by two VMAs stays locked until both unlock).
pub fn mlock_folio(pa: &PageAlloc, cpu: CpuId, pfn: Pfn) {
    set_mlocked(pa, cpu, pfn, true);
}

/// PG_mlocked and PG_unevictable set or cleared, the page moved between
/// the unevictable list and its evictable one, NR_MLOCK and the event
/// counted.
fn set_mlocked(pa: &PageAlloc, cpu: CpuId, pfn: Pfn, lock: bool) {
    let done = relist(pa, pfn, |page, _| {
        if page.test(PageFlags::MLOCKED) == lock {
            return false;
        }
        if lock {
            page.set(PageFlags::MLOCKED | PageFlags::UNEVICTABLE);
            page.clear(PageFlags::ACTIVE);
        } else {
            page.clear(PageFlags::MLOCKED | PageFlags::UNEVICTABLE);
        }
        true
    });
    if !done {
        return;
    }
    if let Some(z) = pa.zone_of(pfn) {
        z.stats.add(ZoneStat::NrMlock, if lock { 1 } else { -1 });
    }
    let ev = if lock {
        VmEvent::UnevictablePgsMlocked
    } else {
        VmEvent::UnevictablePgsMunlocked
    };
    pa.events.count_on(cpu.0, ev, 1);
}

/// `munlock_folio`: the page is evictable again and goes back to the
/// inactive list of its type (`unevictable_pgs_munlocked`).
pub fn munlock_folio(pa: &PageAlloc, cpu: CpuId, pfn: Pfn) {
    set_mlocked(pa, cpu, pfn, false);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;
    use crate::gfp::Gfp;
    use crate::mm_init::testing::boot;
    use crate::types::Order;
    use alloc::vec::Vec;

    fn sizes(pa: &PageAlloc) -> [u64; NR_LRU_LISTS] {
        let v = pa.nodes[0].lruvec.lock();
        Lru::ALL.map(|l| v.size(l))
    }

    #[test]
    fn every_list_move_keeps_lists_flags_and_counters_in_step() {
        let t = boot(Arch::X86_64, 64 << 20, 2);
        let pa = &t.pa;
        let cpu = CpuId(0);
        let pfn = pa
            .alloc_pages(cpu, Gfp::HIGHUSER_MOVABLE, Order(0))
            .unwrap();
        let page = pa.page(pfn).unwrap();
        page.set(PageFlags::SWAPBACKED);
        // folio_add_lru: into the batch (a reference), on no list yet.
        folio_add_lru(pa, cpu, pfn);
        assert_eq!((page.refcount(), sizes(pa)), (2, [0; 5]));
        assert_eq!(pa.fbatches[0].lock().len(), 1);
        // The drain files it inactive (anon since 5.9) and drops the ref.
        lru_add_drain_cpu(pa, cpu);
        assert_eq!((page.refcount(), sizes(pa)), (1, [1, 0, 0, 0, 0]));
        assert!(page.test(PageFlags::LRU));
        check_lruvec(&pa.nodes[0]).unwrap();
        // Two uses activate it (`folio_mark_accessed`).
        folio_mark_accessed(pa, cpu, pfn);
        assert_eq!(sizes(pa), [1, 0, 0, 0, 0]);
        assert!(page.test(PageFlags::REFERENCED));
        folio_mark_accessed(pa, cpu, pfn);
        assert_eq!(sizes(pa), [0, 1, 0, 0, 0]);
        assert_eq!(pa.events.get(VmEvent::Pgactivate), 1);
        check_lruvec(&pa.nodes[0]).unwrap();
        // mlock: unevictable; munlock: back to inactive.
        mlock_folio(pa, cpu, pfn);
        assert_eq!(sizes(pa), [0, 0, 0, 0, 1]);
        munlock_folio(pa, cpu, pfn);
        assert_eq!(sizes(pa), [1, 0, 0, 0, 0]);
        check_lruvec(&pa.nodes[0]).unwrap();
        // MADV_FREE'd (not swap-backed): a file-list page.
        lru_del(pa, pfn);
        page.clear(PageFlags::SWAPBACKED);
        lru_putback(pa, pfn);
        assert_eq!(sizes(pa), [0, 0, 1, 0, 0]);
        check_lruvec(&pa.nodes[0]).unwrap();
        // The last put takes it off its list and frees it.
        let free = pa.nr_free_pages() + pa.nr_pcp_pages();
        crate::memory::put_page(pa, cpu, pfn);
        assert_eq!(sizes(pa), [0; 5]);
        assert_eq!(pa.nr_free_pages() + pa.nr_pcp_pages(), free + 1);
        check_lruvec(&pa.nodes[0]).unwrap();
    }

    #[test]
    fn a_full_batch_goes_onto_the_lists_at_once() {
        let t = boot(Arch::X86_64, 64 << 20, 2);
        let pa = &t.pa;
        let cpu = CpuId(1);
        let pages: Vec<Pfn> = (0..FOLIO_BATCH_SIZE)
            .map(|_| {
                pa.alloc_pages(cpu, Gfp::HIGHUSER_MOVABLE, Order(0))
                    .unwrap()
            })
            .collect();
        for (i, &p) in pages.iter().enumerate() {
            folio_add_lru(pa, cpu, p);
            let want = if i + 1 == FOLIO_BATCH_SIZE {
                FOLIO_BATCH_SIZE as u64
            } else {
                0
            };
            assert_eq!(sizes(pa)[Lru::InactiveFile as usize], want);
        }
        assert!(pa.fbatches[1].lock().is_empty());
        check_lruvec(&pa.nodes[0]).unwrap();
        for p in pages {
            crate::memory::put_page(pa, cpu, p);
        }
        assert_eq!(sizes(pa), [0; 5]);
    }
}
