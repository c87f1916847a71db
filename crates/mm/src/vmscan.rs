//! Page reclaim: shrinking a node's LRU lists to free pages, by kswapd
//! (woken when a zone falls below its low watermark, working until every
//! zone is above high) and by direct reclaim in the allocator's slow path.
//! Mirrors mm/vmscan.c: `get_scan_count` (swappiness, the anon/file cost
//! balance), `shrink_lruvec`, `shrink_active_list` (deactivation when the
//! inactive list is low by `inactive_is_low`'s ratio), `shrink_inactive_list`
//! and `shrink_folio_list` (second chance through `folio_check_references`,
//! swap-out of anonymous pages, writeback of dirty file pages, unmapping
//! through the rmap, `__remove_mapping` with a shadow entry), `balance_pgdat`
//! and `try_to_free_pages`; and fs/drop_caches.c.
//!
//! Reclaim reaches every address space through the machine-wide rmap and
//! [`crate::pgtable::PageTableView`], never through an `MmStruct`, so it can
//! run from inside an allocation made on behalf of any process, as Linux's
//! direct reclaim does. A page some other path holds a reference to (a
//! fault in progress) is never freed: `__remove_mapping` requires exactly
//! the references of the cache and of reclaim's isolation.
//!
//! Simplifications: one lruvec per node (no memcg); kswapd runs when the
//! machine schedules it (after the operation that woke it), not on its own
//! CPU; no proportional scan adjustment in `shrink_lruvec` (it stops once
//! enough is reclaimed); dirty file pages are written back synchronously
//! by reclaim itself (Linux's kswapd leaves most of it to the flusher
//! threads); no slab shrinkers; no watermark boosting (nothing fragments
//! enough to trigger it without compaction); mlocked pages are not yet
//! moved to the unevictable list by reclaim.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, AtomicUsize, Ordering::Relaxed};

use crate::filemap::PageCache;
use crate::gfp::Gfp;
use crate::memmap::PageFlags;
use crate::memory::{RmapCtx, TlbShootdown};
use crate::mmzone::{Node, Wmark};
use crate::page_alloc::{int_sqrt, CpuId, PageAlloc};
use crate::rmap::Rmap;
use crate::swap::{lru_add_drain_cpu, Lru, Lruvec};
use crate::swap_state::SwapState;
use crate::trace::{Event, ShrinkStat};
use crate::types::{Order, Pfn, VirtAddr};
use crate::vmstat::{NodeStat, VmEvent, ZoneEvent};

/// SWAP_CLUSTER_MAX: the reclaim batch.
pub const SWAP_CLUSTER_MAX: u64 = 32;
/// DEF_PRIORITY: the first pass scans 1/4096 of each list.
pub const DEF_PRIORITY: i32 = 12;
/// MAX_RECLAIM_RETRIES: kswapd gives a node up after this many runs that
/// reclaimed nothing (`pgdat->kswapd_failures`).
pub const MAX_RECLAIM_RETRIES: u32 = 16;
/// vm.swappiness default.
pub const DEFAULT_SWAPPINESS: u32 = 60;

/// A node's kswapd: woken by the allocator, run by the machine.
#[derive(Debug, Default)]
pub struct KswapdState {
    /// Woken and not yet run (`pgdat->kswapd_wait` has a waiter to wake).
    pub woken: AtomicBool,
    /// The largest order a waker wanted (`kswapd_order`).
    pub order: AtomicU8,
    /// The highest zone a waker could use (`kswapd_highest_zoneidx`).
    pub highest_zoneidx: AtomicUsize,
    /// Consecutive runs that reclaimed nothing (`kswapd_failures`).
    pub failures: AtomicU32,
}

/// Direct reclaim as the allocator sees it (`try_to_free_pages`), plugged
/// in by the machine once the rmap, page cache and swap exist.
pub trait DirectReclaim: Send + Sync {
    /// Reclaims for an allocation that failed at the min watermark;
    /// returns the pages freed.
    fn try_to_free_pages(
        &self,
        pa: &PageAlloc,
        cpu: CpuId,
        gfp: Gfp,
        order: Order,
        highest: usize,
    ) -> u64;
    /// The machine's reclaimer itself (for MADV_COLD/MADV_PAGEOUT).
    fn as_reclaimer(&self) -> &Reclaimer;
}

/// A TLB shootdown reclaim can issue without owning the CPUs: the machine
/// queues it, and every CPU applies it before its next translation, which
/// is before anyone can reach a page reclaim freed.
pub trait Shootdown: Send + Sync {
    /// Drops the translations of `[start, end)` tagged `asid` everywhere.
    fn flush(&self, asid: u16, start: VirtAddr, end: VirtAddr);
}

struct Shot<'a>(&'a dyn Shootdown);

impl TlbShootdown for Shot<'_> {
    fn flush_range(&mut self, asid: u16, start: VirtAddr, end: VirtAddr) {
        self.0.flush(asid, start, end);
    }
    fn flush_asid(&mut self, asid: u16) {
        self.0.flush(asid, VirtAddr(0), VirtAddr(u64::MAX));
    }
}

/// `struct scan_control`.
#[derive(Clone, Debug)]
pub struct ScanControl {
    /// Pages to reclaim before stopping.
    pub nr_to_reclaim: u64,
    /// The allocation's flags.
    pub gfp: Gfp,
    /// The allocation's order.
    pub order: Order,
    /// Scan 1/2^priority of each list.
    pub priority: i32,
    /// Pages from zones above this are skipped.
    pub reclaim_idx: usize,
    /// Dirty pages may be written.
    pub may_writepage: bool,
    /// Mapped pages may be unmapped.
    pub may_unmap: bool,
    /// Anonymous pages may go to swap.
    pub may_swap: bool,
    /// Reclaim by kswapd (else direct).
    pub kswapd: bool,
    /// Skip the second chance (MADV_PAGEOUT's `reclaim_pages`).
    pub ignore_references: bool,
    /// Pages scanned.
    pub nr_scanned: u64,
    /// Pages freed.
    pub nr_reclaimed: u64,
}

impl ScanControl {
    /// A scan that may do everything.
    pub fn new(
        nr_to_reclaim: u64,
        gfp: Gfp,
        order: Order,
        reclaim_idx: usize,
        kswapd: bool,
    ) -> Self {
        ScanControl {
            nr_to_reclaim,
            gfp,
            order,
            priority: DEF_PRIORITY,
            reclaim_idx,
            may_writepage: true,
            may_unmap: true,
            may_swap: true,
            kswapd,
            ignore_references: false,
            nr_scanned: 0,
            nr_reclaimed: 0,
        }
    }
}

/// `get_scan_count`'s choice.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ScanBalance {
    /// Both types by their size alone (priority 0).
    Equal,
    /// By the swappiness-weighted cost fraction.
    Fract,
    /// Anon only.
    Anon,
    /// File only (no swap, swappiness 0, or a large inactive cache).
    File,
}

/// `inactive_is_low`: the inactive list is smaller than the active one
/// divided by the ratio `int_sqrt(10 * size_in_GiB)` (1 below 1 GiB).
pub fn inactive_is_low(inactive: u64, active: u64) -> bool {
    let gb = (inactive + active) >> (30 - crate::types::PAGE_SHIFT);
    let ratio = if gb > 0 { int_sqrt(10 * gb) } else { 1 };
    inactive.saturating_mul(ratio) < active
}

/// What `folio_check_references` decided.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Refs {
    Activate,
    Keep,
    Reclaim,
}

/// The machine's reclaimer: the rmap, the page cache and swap it works
/// through, and the sysctls that steer it.
pub struct Reclaimer {
    /// The reverse map.
    pub rmap: Arc<Rmap>,
    /// The page cache.
    pub cache: Arc<PageCache>,
    /// Swap devices and the swap cache.
    pub swap: Arc<SwapState>,
    /// The CPUs' TLBs.
    pub tlb: Arc<dyn Shootdown>,
    /// vm.swappiness (0..=200).
    pub swappiness: AtomicU32,
    /// PF_MEMALLOC: reclaim in progress; an allocation it makes does not
    /// recurse into reclaim.
    busy: AtomicBool,
}

impl Reclaimer {
    /// A reclaimer over the machine's shared state.
    pub fn new(
        rmap: Arc<Rmap>,
        cache: Arc<PageCache>,
        swap: Arc<SwapState>,
        tlb: Arc<dyn Shootdown>,
    ) -> Reclaimer {
        Reclaimer {
            rmap,
            cache,
            swap,
            tlb,
            swappiness: AtomicU32::new(DEFAULT_SWAPPINESS),
            busy: AtomicBool::new(false),
        }
    }

    fn ctx<'a>(&'a self, pa: &'a PageAlloc, cpu: CpuId, tlb: &'a mut Shot<'a>) -> RmapCtx<'a> {
        RmapCtx {
            pa,
            cpu,
            rmap: &self.rmap,
            cache: &self.cache,
            swap: &self.swap,
            zero_pfn: None,
            tlb,
        }
    }

    /// `get_scan_count`: how many pages of each evictable list to scan at
    /// `sc.priority`, balancing anon against file by swappiness and the
    /// lists' recent reclaim cost.
    pub fn get_scan_count(
        &self,
        pa: &PageAlloc,
        vec: &Lruvec,
        sc: &ScanControl,
    ) -> ([u64; 4], ScanBalance) {
        let swappiness = self.swappiness.load(Relaxed) as u64;
        let can_swap = sc.may_swap && self.swap.nr_swap_pages() > 0;
        let _ = pa;
        let file_inactive = vec.size(Lru::InactiveFile);
        let balance = if !can_swap
            || (swappiness == 0 && vec.size(Lru::InactiveFile) + vec.size(Lru::ActiveFile) > 0)
        {
            ScanBalance::File
        } else if sc.priority == 0 && swappiness > 0 {
            ScanBalance::Equal
        } else if file_inactive >> sc.priority > 0
            && !inactive_is_low(file_inactive, vec.size(Lru::ActiveFile))
        {
            // cache_trim_mode: plenty of inactive cache that is not
            // refaulting: trim it before touching anon.
            ScanBalance::File
        } else {
            ScanBalance::Fract
        };
        let total = vec.anon_cost + vec.file_cost;
        let anon_cost = total + vec.anon_cost;
        let file_cost = total + vec.file_cost;
        let total = anon_cost + file_cost;
        let ap = swappiness * (total + 1) / (anon_cost + 1);
        let fp = (200 - swappiness.min(200)) * (total + 1) / (file_cost + 1);
        let mut nr = [0u64; 4];
        for lru in Lru::EVICTABLE {
            let size = vec.size(lru);
            let scan = size >> sc.priority;
            let scan = if scan == 0 && size > 0 && sc.priority < DEF_PRIORITY {
                // Small lists are still scanned once the priority drops
                // (`if (!scan && !mem_cgroup_online) scan = min(lruvec_size, SWAP_CLUSTER_MAX)`).
                size.min(SWAP_CLUSTER_MAX)
            } else {
                scan
            };
            nr[lru as usize] = match (balance, lru.is_file()) {
                (ScanBalance::Equal, _) => scan,
                (ScanBalance::File, true) | (ScanBalance::Anon, false) => scan,
                (ScanBalance::File, false) | (ScanBalance::Anon, true) => 0,
                (ScanBalance::Fract, file) => {
                    let f = if file { fp } else { ap };
                    (scan * f).div_ceil((ap + fp).max(1))
                }
            };
        }
        (nr, balance)
    }

    /// `shrink_node` → `shrink_lruvec`: scans the node's lists per
    /// `get_scan_count`, SWAP_CLUSTER_MAX at a time, until the counts are
    /// used up or enough was reclaimed; then ages the anon lists if the
    /// inactive one is low.
    pub fn shrink_node(&self, pa: &PageAlloc, cpu: CpuId, node: &Node, sc: &mut ScanControl) {
        let (mut nr, _) = {
            let vec = node.lruvec.lock();
            self.get_scan_count(pa, &vec, sc)
        };
        let start = sc.nr_reclaimed;
        while nr[Lru::InactiveAnon as usize] > 0
            || nr[Lru::ActiveFile as usize] > 0
            || nr[Lru::InactiveFile as usize] > 0
        {
            for lru in Lru::EVICTABLE {
                let n = nr[lru as usize].min(SWAP_CLUSTER_MAX);
                if n == 0 {
                    continue;
                }
                nr[lru as usize] -= n;
                self.shrink_list(pa, cpu, node, lru, n, sc);
            }
            if sc.nr_reclaimed - start >= sc.nr_to_reclaim {
                break;
            }
        }
        let can_age_anon = sc.may_swap && self.swap.nr_swap_pages() > 0;
        let low = {
            let vec = node.lruvec.lock();
            inactive_is_low(vec.size(Lru::InactiveAnon), vec.size(Lru::ActiveAnon))
        };
        if can_age_anon && low {
            self.shrink_active_list(pa, cpu, node, Lru::ActiveAnon, SWAP_CLUSTER_MAX, sc);
        }
    }

    fn shrink_list(
        &self,
        pa: &PageAlloc,
        cpu: CpuId,
        node: &Node,
        lru: Lru,
        n: u64,
        sc: &mut ScanControl,
    ) {
        if lru.is_active() {
            let low = {
                let vec = node.lruvec.lock();
                inactive_is_low(vec.size(lru.flip()), vec.size(lru))
            };
            if low {
                self.shrink_active_list(pa, cpu, node, lru, n, sc);
            }
            return;
        }
        self.shrink_inactive_list(pa, cpu, node, lru, n, sc);
    }

    /// `isolate_lru_folios`: takes up to `n` pages from the tail of `lru`,
    /// each with a reference, off the list (counted NR_ISOLATED_*); pages
    /// of zones above `reclaim_idx` are skipped back to the head
    /// (`pgskip_*`). Returns the pages and how many were scanned.
    fn isolate(
        &self,
        pa: &PageAlloc,
        cpu: CpuId,
        node: &Node,
        lru: Lru,
        n: u64,
        sc: &ScanControl,
    ) -> (Vec<Pfn>, u64) {
        let mut vec = node.lruvec.lock();
        let mut taken = Vec::new();
        let mut skipped = Vec::new();
        let mut scanned = 0;
        while scanned < n {
            let Some(pfn) = node.lru_tail(&vec, lru) else {
                break;
            };
            let page = node.zones[0].memmap().page(pfn);
            node.lru_del_locked(&mut vec, pfn);
            if page.zone_idx() > sc.reclaim_idx {
                pa.events
                    .count_zone_on(cpu.0, ZoneEvent::PgSkip, page.zone_idx(), 1);
                skipped.push(pfn);
                continue;
            }
            scanned += 1;
            page.get();
            taken.push(pfn);
        }
        for pfn in skipped {
            node.lru_add_locked(&mut vec, pfn, false);
        }
        let item = if lru.is_file() {
            NodeStat::NrIsolatedFile
        } else {
            NodeStat::NrIsolatedAnon
        };
        node.stats.add(item, taken.len() as i64);
        (taken, scanned)
    }

    /// Puts isolated pages back on the lists their flags now name and drops
    /// the isolation reference (`move_folios_to_lru`).
    fn putback(&self, pa: &PageAlloc, cpu: CpuId, node: &Node, file: bool, pages: &[Pfn]) {
        {
            let mut vec = node.lruvec.lock();
            for &pfn in pages {
                node.lru_add_locked(&mut vec, pfn, false);
            }
        }
        let item = if file {
            NodeStat::NrIsolatedFile
        } else {
            NodeStat::NrIsolatedAnon
        };
        node.stats.add(item, -(pages.len() as i64));
        for &pfn in pages {
            crate::memory::put_page(pa, cpu, pfn);
        }
    }

    /// `shrink_active_list`: moves pages from the tail of an active list to
    /// the head of the inactive one (`pgdeactivate`), giving them
    /// PG_workingset, clearing their young bits on the way (`pgrefill`
    /// counts them all).
    pub fn shrink_active_list(
        &self,
        pa: &PageAlloc,
        cpu: CpuId,
        node: &Node,
        lru: Lru,
        n: u64,
        sc: &mut ScanControl,
    ) {
        lru_add_drain_cpu(pa, cpu);
        let (pages, scanned) = self.isolate(pa, cpu, node, lru, n, sc);
        pa.events.count_on(cpu.0, VmEvent::Pgrefill, scanned);
        let mut tlb = Shot(&*self.tlb);
        let mut ctx = self.ctx(pa, cpu, &mut tlb);
        for &pfn in &pages {
            let page = node.zones[0].memmap().page(pfn);
            // folio_referenced: clears the young bits; Linux keeps only
            // young executable file pages active, which the rmap here
            // cannot tell (VMA flags are not indexed), so every page moves.
            if page.mapcount() > 0 {
                ctx.page_referenced(pfn);
            }
            page.clear(PageFlags::ACTIVE);
            page.set(PageFlags::WORKINGSET);
        }
        pa.events
            .count_on(cpu.0, VmEvent::Pgdeactivate, pages.len() as u64);
        self.putback(pa, cpu, node, lru.is_file(), &pages);
    }

    /// `shrink_inactive_list`: isolates a batch from the tail, tries to
    /// free each page, puts the survivors back, and notes the cost of the
    /// list (`lru_note_cost`: I/O weighs SWAP_CLUSTER_MAX, a rotation 1).
    pub fn shrink_inactive_list(
        &self,
        pa: &PageAlloc,
        cpu: CpuId,
        node: &Node,
        lru: Lru,
        n: u64,
        sc: &mut ScanControl,
    ) -> u64 {
        lru_add_drain_cpu(pa, cpu);
        let (pages, scanned) = self.isolate(pa, cpu, node, lru, n, sc);
        sc.nr_scanned += scanned;
        let file = lru.is_file();
        let count = |evs: [VmEvent; 4], n: u64| {
            pa.events.count_on(cpu.0, evs[usize::from(!sc.kswapd)], n);
            pa.events.count_on(cpu.0, evs[2 + usize::from(!file)], n);
        };
        use VmEvent::*;
        count(
            [PgscanKswapd, PgscanDirect, PgscanFile, PgscanAnon],
            scanned,
        );
        let (kept, freed, pageout) = self.shrink_folio_list(pa, cpu, node, &pages, sc);
        pa.trace.emit(cpu, || {
            let active = kept
                .iter()
                .filter(|&&p| node.zones[0].memmap().page(p).test(PageFlags::ACTIVE))
                .count() as u64;
            Event::MmVmscanLruShrinkInactive(ShrinkStat {
                nid: node.nid,
                nr_scanned: scanned,
                nr_reclaimed: freed.len() as u64,
                nr_dirty: pageout,
                nr_activate_anon: if file { 0 } else { active },
                nr_activate_file: if file { active } else { 0 },
                priority: sc.priority,
                file,
            })
        });
        self.putback(pa, cpu, node, file, &kept);
        let item = if file {
            NodeStat::NrIsolatedFile
        } else {
            NodeStat::NrIsolatedAnon
        };
        node.stats.add(item, -(freed.len() as i64));
        for &pfn in &freed {
            crate::memory::put_page(pa, cpu, pfn);
        }
        let reclaimed = freed.len() as u64;
        sc.nr_reclaimed += reclaimed;
        count(
            [PgstealKswapd, PgstealDirect, PgstealFile, PgstealAnon],
            reclaimed,
        );
        let mut vec = node.lruvec.lock();
        lru_note_cost(&mut vec, file, pageout, scanned - reclaimed);
        reclaimed
    }

    /// `folio_check_references`: young ptes (cleared on the way) and
    /// PG_referenced decide. A mapped anon page that was used is activated;
    /// a file page used by more than one pte, or used again after it was
    /// referenced, is activated; used once, it gets PG_referenced and a
    /// second trip round the inactive list.
    fn check_references(&self, ctx: &mut RmapCtx<'_>, pfn: Pfn) -> Refs {
        let page = ctx.pa.page(pfn).expect("isolated page has a struct page");
        let ptes = if page.mapcount() > 0 {
            ctx.page_referenced(pfn)
        } else {
            0
        };
        let was_referenced = page.test(PageFlags::REFERENCED);
        page.clear(PageFlags::REFERENCED);
        if ptes > 0 {
            if page.test(PageFlags::SWAPBACKED) {
                return Refs::Activate;
            }
            page.set(PageFlags::REFERENCED);
            if was_referenced || ptes > 1 {
                return Refs::Activate;
            }
            return Refs::Keep;
        }
        Refs::Reclaim
    }

    /// `shrink_folio_list`: for each isolated page, second chance, then
    /// swap allocation for anon, unmapping from every pte, writeback of a
    /// dirty page, and removal from its cache (leaving a shadow entry).
    /// Returns (pages to put back, pages freed but for the isolation
    /// reference, pages written).
    fn shrink_folio_list(
        &self,
        pa: &PageAlloc,
        cpu: CpuId,
        node: &Node,
        pages: &[Pfn],
        sc: &ScanControl,
    ) -> (Vec<Pfn>, Vec<Pfn>, u64) {
        let mut tlb = Shot(&*self.tlb);
        let mut ctx = self.ctx(pa, cpu, &mut tlb);
        let mut kept = Vec::new();
        let mut freed = Vec::new();
        let mut pageout = 0;
        for &pfn in pages {
            let page = node.zones[0].memmap().page(pfn);
            let activate = |kept: &mut Vec<Pfn>| {
                if !page.test(PageFlags::UNEVICTABLE) {
                    page.set(PageFlags::ACTIVE);
                    pa.events.count_on(cpu.0, VmEvent::Pgactivate, 1);
                }
                kept.push(pfn);
            };
            if page.test(PageFlags::UNEVICTABLE) || page.test(PageFlags::MLOCKED) {
                kept.push(pfn);
                continue;
            }
            let refs = if sc.ignore_references {
                Refs::Reclaim
            } else {
                self.check_references(&mut ctx, pfn)
            };
            match refs {
                Refs::Activate => {
                    activate(&mut kept);
                    continue;
                }
                Refs::Keep => {
                    kept.push(pfn);
                    continue;
                }
                Refs::Reclaim => {}
            }
            let anon = page.mapping() & crate::rmap::PAGE_MAPPING_ANON != 0;
            let swapbacked = page.test(PageFlags::SWAPBACKED);
            if anon
                && swapbacked
                && !page.test(PageFlags::SWAPCACHE)
                && (!sc.may_swap || self.swap.add_to_swap(pa, cpu, pfn).is_none())
            {
                activate(&mut kept);
                continue;
            }
            // A shmem page sits in its file's cache; a swap-cache page no
            // pte mapped yet (read ahead) has no anon_vma but is no shmem.
            let shmem = !anon && swapbacked && !page.test(PageFlags::SWAPCACHE);
            if shmem && (!sc.may_swap || self.swap.nr_swap_pages() == 0) {
                activate(&mut kept);
                continue;
            }
            if page.mapcount() > 0 {
                if !sc.may_unmap {
                    kept.push(pfn);
                    continue;
                }
                let entry = page
                    .test(PageFlags::SWAPCACHE)
                    .then(|| self.swap.entry_of(page));
                if anon && !swapbacked {
                    // MADV_FREE: a page written since is swap-backed again.
                    if ctx.lazyfree_redirtied(pfn) {
                        page.set(PageFlags::SWAPBACKED);
                        activate(&mut kept);
                        continue;
                    }
                }
                ctx.try_to_unmap_to(pfn, entry);
                if page.mapcount() > 0 {
                    activate(&mut kept);
                    continue;
                }
            }
            if shmem {
                // shmem_writeout: to swap whether dirty or not (the page
                // is its only copy), leaving the entry in the mapping.
                if page.refcount() != 2 || !self.cache.shmem_writeout(pa, cpu, pfn) {
                    activate(&mut kept);
                    continue;
                }
                pageout += 1;
                pa.trace
                    .emit(cpu, || Event::MmVmscanWriteFolio { pfn, file: false });
                freed.push(pfn);
                continue;
            }
            if page.test(PageFlags::DIRTY) {
                if !sc.may_writepage {
                    kept.push(pfn);
                    continue;
                }
                let ok = if page.test(PageFlags::SWAPCACHE) {
                    self.swap.swap_writepage(pa, cpu, pfn).is_ok()
                } else {
                    self.cache.writepage(pa, pfn).is_ok()
                };
                if !ok {
                    activate(&mut kept);
                    continue;
                }
                node.stats.add(NodeStat::NrVmscanWrite, 1);
                pageout += 1;
                let file = !page.test(PageFlags::SWAPBACKED);
                pa.trace
                    .emit(cpu, || Event::MmVmscanWriteFolio { pfn, file });
            }
            // __remove_mapping: only the cache's and our references may be left.
            let expected =
                1 + i32::from(page.test(PageFlags::SWAPCACHE) || (!anon && page.mapping() != 0));
            if page.refcount() != expected {
                kept.push(pfn);
                continue;
            }
            if anon && !swapbacked {
                pa.events.count_on(cpu.0, VmEvent::Pglazyfreed, 1);
            } else {
                let shadow = {
                    let mut vec = node.lruvec.lock();
                    crate::workingset::workingset_eviction(&mut vec, page)
                };
                if page.test(PageFlags::SWAPCACHE) {
                    self.swap.delete_from_swap_cache(pa, cpu, pfn, Some(shadow));
                } else {
                    self.cache.remove_for_reclaim(pa, cpu, pfn, shadow);
                }
            }
            freed.push(pfn);
        }
        (kept, freed, pageout)
    }

    /// `balance_pgdat`: kswapd's work on a node, raising the priority until
    /// every zone up to `highest_zoneidx` is above its high watermark (for
    /// `order`) or a pass reclaims nothing at priority 0. Returns the pages
    /// reclaimed.
    pub fn balance_pgdat(
        &self,
        pa: &PageAlloc,
        cpu: CpuId,
        node: &Node,
        order: Order,
        highest: usize,
    ) -> u64 {
        pa.events.count_on(cpu.0, VmEvent::Pageoutrun, 1);
        let mut sc = ScanControl::new(0, Gfp::KERNEL, order, highest, true);
        while sc.priority >= 0 {
            if pgdat_balanced(node, order, highest) {
                break;
            }
            // kswapd_shrink_node: reclaim the high-watermark gap of the
            // eligible zones, at least a batch.
            sc.nr_to_reclaim = node.zones[..=highest.min(node.zones.len() - 1)]
                .iter()
                .filter(|z| z.managed() > 0)
                .map(|z| z.wmark(Wmark::High).max(SWAP_CLUSTER_MAX))
                .sum();
            let before = sc.nr_reclaimed;
            self.shrink_node(pa, cpu, node, &mut sc);
            // Raise the priority (scan more) only when a pass fell short.
            if sc.nr_reclaimed - before < sc.nr_to_reclaim {
                sc.priority -= 1;
            }
        }
        if sc.nr_reclaimed == 0 {
            node.kswapd.failures.fetch_add(1, Relaxed);
        } else {
            node.kswapd.failures.store(0, Relaxed);
        }
        sc.nr_reclaimed
    }

    /// Runs every woken kswapd (`kswapd` → `balance_pgdat`), as the machine
    /// does when the task that woke them leaves the CPU. Returns the pages
    /// reclaimed.
    #[inline]
    pub fn run_kswapd(&self, pa: &PageAlloc, cpu: CpuId) -> u64 {
        // Most calls find no kswapd woken: plain loads answer that without
        // the locked instructions of the swaps below.
        if !pa.nodes.iter().any(|n| n.kswapd.woken.load(Relaxed)) {
            return 0;
        }
        self.run_woken_kswapd(pa, cpu)
    }

    #[cold]
    #[inline(never)]
    fn run_woken_kswapd(&self, pa: &PageAlloc, cpu: CpuId) -> u64 {
        if self.busy.swap(true, Relaxed) {
            return 0;
        }
        let mut total = 0;
        for node in &pa.nodes {
            if !node.kswapd.woken.swap(false, Relaxed) {
                continue;
            }
            let order = Order(node.kswapd.order.swap(0, Relaxed));
            let highest = node.kswapd.highest_zoneidx.swap(0, Relaxed);
            if node.kswapd.failures.load(Relaxed) >= MAX_RECLAIM_RETRIES {
                continue;
            }
            // kswapd runs as its own task, woken for the order and zone
            // the waker wanted and asleep again once the node is balanced.
            let comm = alloc::format!("kswapd{}", node.nid);
            let prev = pa.trace.switch_to(cpu, 0, &comm);
            let (nid, zid) = (node.nid, highest as u32);
            pa.trace.emit(cpu, || Event::MmVmscanKswapdWake {
                nid,
                zid,
                order: order.0,
            });
            total += self.balance_pgdat(pa, cpu, node, order, highest);
            pa.trace.emit(cpu, || Event::MmVmscanKswapdSleep { nid });
            pa.trace.switch_back(cpu, prev);
        }
        self.busy.store(false, Relaxed);
        total
    }

    /// `drop_caches` 1: frees every clean, unmapped page-cache page
    /// (`invalidate_mapping_pages` over every inode), counting
    /// `drop_pagecache`. Returns the pages freed.
    pub fn drop_pagecache(&self, pa: &PageAlloc, cpu: CpuId) -> u64 {
        crate::swap::lru_add_drain_all(pa);
        pa.events.count_on(cpu.0, VmEvent::DropPagecache, 1);
        self.cache.invalidate_clean(pa, cpu)
    }
}

/// `lru_note_cost`: I/O costs SWAP_CLUSTER_MAX per page, a rotation 1; the
/// costs decay by half once they exceed a quarter of the lists' size.
pub fn lru_note_cost(vec: &mut Lruvec, file: bool, nr_io: u64, nr_rotated: u64) {
    let cost = nr_io * SWAP_CLUSTER_MAX + nr_rotated;
    if file {
        vec.file_cost += cost;
    } else {
        vec.anon_cost += cost;
    }
    let size: u64 = Lru::EVICTABLE.iter().map(|&l| vec.size(l)).sum();
    if vec.anon_cost + vec.file_cost > size / 4 {
        vec.anon_cost /= 2;
        vec.file_cost /= 2;
    }
}

/// `pgdat_balanced`: some eligible zone (Linux: any populated zone up to
/// `highest_zoneidx`) is above its high watermark for `order`.
pub fn pgdat_balanced(node: &Node, order: Order, highest: usize) -> bool {
    let mut any = false;
    for z in node.zones.iter().take(highest + 1) {
        if z.managed() == 0 {
            continue;
        }
        any = true;
        if z.zone_watermark_ok(order, z.wmark(Wmark::High), highest) {
            return true;
        }
    }
    !any
}

/// `wakeup_kswapd`: called by the allocator's slow path for a zone that
/// fell below its low watermark; records the order and zone the waker
/// wanted and marks the node's kswapd runnable, unless the node is
/// balanced already (at the high watermark) or kswapd gave up on it.
pub fn wakeup_kswapd(pa: &PageAlloc, nid: u32, order: Order, highest: usize) {
    let node = &pa.nodes[nid as usize];
    let k = &node.kswapd;
    if k.failures.load(Relaxed) >= MAX_RECLAIM_RETRIES || pgdat_balanced(node, order, highest) {
        return;
    }
    k.order.fetch_max(order.0, Relaxed);
    k.highest_zoneidx.fetch_max(highest, Relaxed);
    k.woken.store(true, Relaxed);
}

impl Reclaimer {
    /// `reclaim_pages` (MADV_PAGEOUT): tries to free exactly these pages,
    /// without a second chance; those that cannot go back on their lists.
    /// Returns the pages freed.
    pub fn reclaim_pages(&self, pa: &PageAlloc, cpu: CpuId, pages: &[Pfn]) -> u64 {
        lru_add_drain_cpu(pa, cpu);
        let mut sc = ScanControl::new(pages.len() as u64, Gfp::KERNEL, Order(0), usize::MAX, false);
        sc.ignore_references = true;
        let mut total = 0;
        for node in &pa.nodes {
            let mine: Vec<Pfn> = pages
                .iter()
                .copied()
                .filter(|&p| pa.page(p).is_some_and(|pg| pg.nid() == node.nid))
                .filter(|&p| {
                    let page = node.zones[0].memmap().page(p);
                    // folio_isolate_lru: a reference, off the list.
                    let taken = crate::swap::lru_del(pa, p);
                    if taken {
                        page.get();
                    }
                    taken
                })
                .collect();
            // Split by type before any page is freed (a freed page loses
            // the flags that say its type).
            let (files, anons): (Vec<Pfn>, Vec<Pfn>) = mine
                .iter()
                .partition(|&&p| crate::swap::is_file_lru(node.zones[0].memmap().page(p)));
            for (file, batch) in [(false, anons), (true, files)] {
                if batch.is_empty() {
                    continue;
                }
                let item = if file {
                    NodeStat::NrIsolatedFile
                } else {
                    NodeStat::NrIsolatedAnon
                };
                node.stats.add(item, batch.len() as i64);
                let (kept, freed, _) = self.shrink_folio_list(pa, cpu, node, &batch, &sc);
                self.putback(pa, cpu, node, file, &kept);
                node.stats.add(item, -(freed.len() as i64));
                for &pfn in &freed {
                    crate::memory::put_page(pa, cpu, pfn);
                }
                total += freed.len() as u64;
            }
        }
        total
    }

    /// `folio_deactivate` (MADV_COLD): an active page moves to the head of
    /// its inactive list, its referenced bit cleared (`pgdeactivate`).
    pub fn deactivate(&self, pa: &PageAlloc, cpu: CpuId, pfn: Pfn) {
        let done = crate::swap::relist(pa, pfn, |page, _| {
            page.clear(PageFlags::REFERENCED);
            if !page.test(PageFlags::ACTIVE) || page.test(PageFlags::UNEVICTABLE) {
                return false;
            }
            page.clear(PageFlags::ACTIVE);
            true
        });
        if done {
            pa.events.count_on(cpu.0, VmEvent::Pgdeactivate, 1);
        }
    }
}

impl DirectReclaim for Reclaimer {
    fn as_reclaimer(&self) -> &Reclaimer {
        self
    }

    /// `try_to_free_pages` → `do_try_to_free_pages`: shrinks the preferred
    /// node at rising priority until SWAP_CLUSTER_MAX pages are free or
    /// priority 0 is done; counts `allocstall`.
    fn try_to_free_pages(
        &self,
        pa: &PageAlloc,
        cpu: CpuId,
        gfp: Gfp,
        order: Order,
        highest: usize,
    ) -> u64 {
        if self.busy.swap(true, Relaxed) {
            return 0;
        }
        let nid = pa.cpu_node[cpu.0];
        pa.trace.emit(cpu, || Event::MmVmscanDirectReclaimBegin {
            order: order.0,
            gfp,
        });
        pa.events
            .count_zone_on(cpu.0, ZoneEvent::AllocStall, highest, 1);
        let mut sc = ScanControl::new(SWAP_CLUSTER_MAX, gfp, order, highest, false);
        // GFP_NOIO/NOFS callers may not start I/O (`may_writepage`, swap).
        sc.may_writepage = gfp.contains(Gfp::IO);
        sc.may_swap = gfp.contains(Gfp::IO);
        let mut nodes: Vec<u32> = Vec::new();
        for &(n, _) in pa.zonelist(nid) {
            if !nodes.contains(&n) {
                nodes.push(n);
            }
        }
        while sc.priority >= 0 && sc.nr_reclaimed < sc.nr_to_reclaim {
            for &n in &nodes {
                let node = &pa.nodes[n as usize];
                if sc.nr_reclaimed >= sc.nr_to_reclaim {
                    break;
                }
                self.shrink_node(pa, cpu, node, &mut sc);
            }
            sc.priority -= 1;
        }
        self.busy.store(false, Relaxed);
        let nr_reclaimed = sc.nr_reclaimed;
        pa.trace
            .emit(cpu, || Event::MmVmscanDirectReclaimEnd { nr_reclaimed });
        nr_reclaimed
    }
}
