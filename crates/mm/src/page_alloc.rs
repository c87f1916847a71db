//! The buddy page allocator: per-zone free lists by order and migrate type,
//! per-CPU page lists, zonelists with zone and node fallback, watermarks and
//! GFP semantics. Mirrors mm/page_alloc.c (and the parts of mm/mm_init.c that
//! size watermarks, lowmem reserves and per-CPU batches).
//!
//! Locking follows Linux: each zone's free area sits behind its zone lock,
//! each CPU's page lists behind their own lock, and `struct page` fields are
//! atomics changed under those locks. The current CPU is passed explicitly
//! (`CpuId`) where Linux reads `smp_processor_id()`.
//!
//! Lock order (outermost first), as in Linux 6.18:
//! 1. a CPU's page lists for a zone (`pcp->lock`, which Linux takes with a
//!    trylock and, failing that, goes to the zone itself);
//! 2. that zone's lock (`zone->lock`), taken with the lists held when a
//!    refill (`rmqueue_bulk`) or a drain (`free_pcppages_bulk`) moves pages
//!    between them; nothing else is taken inside it, and no two zone locks
//!    are held at once;
//! 3. node locks are never nested with either: a node's lruvec lock
//!    (`lru_lock`) is taken after the LRU's per-CPU batches and is not held
//!    across an allocation, and kswapd's state is atomics. Direct reclaim
//!    and the OOM killer run with no page-allocator lock held.

use alloc::vec::Vec;
use core::ops::DerefMut;
use core::sync::atomic::Ordering::Relaxed;

use crate::arch::Arch;
use crate::direct_map::DirectMap;
use crate::gfp::Gfp;
use crate::memmap::{Page, PageFlags, PageList};
use crate::mmzone::{
    FreeArea, MigrateType, Node, PerCpuPages, Wmark, Zone, ZoneType, MAX_PAGE_ORDER,
    MIGRATE_PCPTYPES, NR_PCP_LISTS, PAGEBLOCK_NR_PAGES, PAGEBLOCK_ORDER, PAGE_ALLOC_COSTLY_ORDER,
};
use crate::printk::Printk;
use crate::types::{Order, Pfn, PAGE_SHIFT};
use crate::vmstat::{
    CpuEvents, NumaStat, VmEvent, VmEvents, ZoneCpuStats, ZoneEvent, ZoneStat, MAX_ZONES,
};

/// A simulated CPU, where Linux would read `smp_processor_id()`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct CpuId(pub usize);

/// SWAP_CLUSTER_MAX, the floor of highmem watermarks.
const SWAP_CLUSTER_MAX: u64 = 32;

/// True if blocks of `order` go through the per-CPU lists (`pcp_allowed_order`).
pub fn pcp_allowed_order(order: Order) -> bool {
    order.0 <= PAGE_ALLOC_COSTLY_ORDER || order.0 == PAGEBLOCK_ORDER
}

fn pcp_index(order: Order, mt: MigrateType) -> usize {
    if order.0 <= PAGE_ALLOC_COSTLY_ORDER {
        MIGRATE_PCPTYPES * order.idx() + mt.idx()
    } else {
        NR_PCP_LISTS - 1
    }
}

impl Zone {
    // ----- the buddy lists, all called with the zone lock held -----

    /// Counts a block entering (`d` = 1) or leaving (-1) the free lists.
    /// Called under the zone lock, so plain read-modify-writes suffice.
    fn account_free(&self, order: Order, mt: MigrateType, d: i64) {
        let pages = order.pages() as i64 * d;
        self.stats.add_locked(ZoneStat::NrFreePages, pages);
        if order.0 >= PAGEBLOCK_ORDER {
            self.stats.add_locked(ZoneStat::NrFreePagesBlocks, pages);
        }
        let slot = match mt.idx() {
            i if i < MIGRATE_PCPTYPES => Some(&self.free_blocks[order.idx()]),
            _ if mt == MigrateType::HighAtomic => Some(&self.free_highatomic[order.idx()]),
            _ => None,
        };
        if let Some(c) = slot {
            c.store(c.load(Relaxed).wrapping_add(d as u64), Relaxed);
        }
    }

    fn add_to_free_list(
        &self,
        area: &mut FreeArea,
        pfn: Pfn,
        order: Order,
        mt: MigrateType,
        tail: bool,
    ) {
        let page = self.page(pfn);
        page.set_private(order.0 as u64);
        page.set_locked(PageFlags::BUDDY);
        let list = &mut area.lists[order.idx()][mt.idx()];
        if tail {
            list.push_back(&self.memmap, pfn);
        } else {
            list.push_front(&self.memmap, pfn);
        }
        area.nr_free[order.idx()][mt.idx()] += 1;
        self.account_free(order, mt, 1);
    }

    fn del_from_free_list(&self, area: &mut FreeArea, pfn: Pfn, order: Order, mt: MigrateType) {
        area.lists[order.idx()][mt.idx()].remove(&self.memmap, pfn);
        let page = self.page(pfn);
        page.clear_locked(PageFlags::BUDDY);
        page.set_private(0);
        area.nr_free[order.idx()][mt.idx()] -= 1;
        self.account_free(order, mt, -1);
    }

    /// Takes the first free block of `order` and `mt`, off its list or out
    /// of the deferred range.
    /// A max-order block taken, and the one after it, are announced to the
    /// RAM ([`DirectMap::prepare`]): what the zone hands out next.
    fn take_first(&self, area: &mut FreeArea, order: Order, mt: MigrateType) -> Option<Pfn> {
        let pfn = self.take_first_block(area, order, mt)?;
        if order.0 == MAX_PAGE_ORDER {
            let len = order.pages() << PAGE_SHIFT;
            self.ram.prepare(pfn.phys(), len);
            let next = area.lists[order.idx()][mt.idx()]
                .first()
                .or_else(|| area.deferred.last().map(|&(s, _)| Pfn(s)));
            if let Some(next) = next {
                self.ram.prepare(next.phys(), len);
            }
        }
        Some(pfn)
    }

    /// [`Zone::take_first`] itself.
    fn take_first_block(&self, area: &mut FreeArea, order: Order, mt: MigrateType) -> Option<Pfn> {
        if let Some(pfn) = area.lists[order.idx()][mt.idx()].first() {
            self.del_from_free_list(area, pfn, order, mt);
            return Some(pfn);
        }
        if order.0 == MAX_PAGE_ORDER && mt == MigrateType::Movable && !area.deferred.is_empty() {
            let last = area.deferred.len() - 1;
            let (start, end) = area.deferred[last];
            let pfn = Pfn(start);
            if start + order.pages() >= end {
                area.deferred.pop();
            } else {
                area.deferred[last].0 += order.pages();
            }
            for i in 0..order.pages() {
                self.page(pfn + i).init(self.idx, self.nid);
            }
            area.nr_free[order.idx()][mt.idx()] -= 1;
            self.account_free(order, mt, -1);
            return Some(pfn);
        }
        None
    }

    /// Adds max-order-aligned blocks `[start, end)` as deferred free memory.
    /// Ranges must be added in ascending order.
    pub(crate) fn add_deferred(&self, start: Pfn, end: Pfn) {
        let mut area = self.area.lock();
        area.deferred.insert(0, (start.0, end.0));
        let blocks = (end.0 - start.0) >> MAX_PAGE_ORDER;
        area.nr_free[MAX_PAGE_ORDER as usize][MigrateType::Movable.idx()] += blocks;
        self.account_free(Order(MAX_PAGE_ORDER), MigrateType::Movable, blocks as i64);
        self.managed.fetch_add(end.0 - start.0, Relaxed);
    }

    /// True if `pfn` heads a free block of exactly `order` in this zone
    /// (`page_is_buddy`).
    fn is_free_buddy(&self, pfn: Pfn, order: Order) -> bool {
        if !self.spans(pfn) || !self.memmap.contains(pfn) {
            return false;
        }
        let p = self.page(pfn);
        p.test(PageFlags::BUDDY) && p.private() == order.0 as u64 && p.zone_idx() == self.idx
    }

    /// Splits a block of `high` down to `low`, putting each upper half on the
    /// free lists of `mt` (`expand`).
    fn expand(&self, area: &mut FreeArea, pfn: Pfn, low: Order, high: Order, mt: MigrateType) {
        let mut h = high.0;
        while h > low.0 {
            h -= 1;
            self.trace.buddy_split(pfn, h + 1, mt);
            let half = pfn + (1u64 << h);
            self.add_to_free_list(area, half, Order(h), mt, false);
        }
    }

    /// `__rmqueue_smallest`: the first block of `mt` at the smallest order
    /// that satisfies `order`, split down.
    fn rmqueue_smallest(&self, area: &mut FreeArea, order: Order, mt: MigrateType) -> Option<Pfn> {
        for cur in order.0..=MAX_PAGE_ORDER {
            if let Some(pfn) = self.take_first(area, Order(cur), mt) {
                self.expand(area, pfn, order, Order(cur), mt);
                return Some(pfn);
            }
        }
        None
    }

    /// Moves every free block inside the pageblock(s) at `pfn` to `mt`'s
    /// lists and sets the pageblock type (`move_freepages_block`). Returns
    /// the free pages moved.
    fn claim_pageblocks(
        &self,
        area: &mut FreeArea,
        pfn: Pfn,
        nr_blocks: u64,
        mt: MigrateType,
    ) -> u64 {
        let start = Pfn(pfn.0 & !(PAGEBLOCK_NR_PAGES - 1));
        let end = start.0 + nr_blocks * PAGEBLOCK_NR_PAGES;
        let mut moved = 0;
        let mut p = start.0;
        while p < end {
            let pfn = Pfn(p);
            if self.spans(pfn) && self.memmap.contains(pfn) && self.page(pfn).test(PageFlags::BUDDY)
            {
                let order = Order(self.page(pfn).private() as u8);
                let old = self.pageblock_mt(pfn);
                if old != mt {
                    self.del_from_free_list(area, pfn, order, old);
                    self.add_to_free_list(area, pfn, order, mt, true);
                }
                moved += order.pages();
                p += order.pages();
            } else {
                p += 1;
            }
        }
        let mut b = start.0;
        while b < end {
            if self.spans(Pfn(b)) {
                self.set_pageblock_mt(Pfn(b), mt);
            }
            b += PAGEBLOCK_NR_PAGES;
        }
        moved
    }

    /// `__rmqueue_claim` then `__rmqueue_steal`: fall back to other migrate
    /// types. Claiming starts from the largest order and takes over whole
    /// pageblocks when the block is big enough (or the request is
    /// unmovable/reclaimable and half the pageblock is free); stealing takes
    /// the smallest block without changing its pageblock's type.
    fn rmqueue_fallback(
        &self,
        area: &mut FreeArea,
        order: Order,
        start_mt: MigrateType,
    ) -> Option<Pfn> {
        let min_claim = if start_mt == MigrateType::Movable {
            PAGEBLOCK_ORDER / 2
        } else {
            order.0
        };
        for cur in (order.0.max(min_claim)..=MAX_PAGE_ORDER).rev() {
            for &ft in start_mt.fallbacks() {
                if area.nr_free[cur as usize][ft.idx()] == 0 {
                    continue;
                }
                let pfn = self.take_first(area, Order(cur), ft)?;
                let claim = if cur >= PAGEBLOCK_ORDER {
                    let blocks = Order(cur).pages() / PAGEBLOCK_NR_PAGES;
                    let mut b = 0;
                    while b < blocks {
                        self.set_pageblock_mt(pfn + b * PAGEBLOCK_NR_PAGES, start_mt);
                        b += 1;
                    }
                    true
                } else {
                    // The rest of the pageblock decides: free pages plus the
                    // block we took must reach half of it.
                    let free = self.claim_count(pfn, cur);
                    if free >= PAGEBLOCK_NR_PAGES / 2 {
                        self.claim_pageblocks(area, pfn, 1, start_mt);
                        true
                    } else {
                        false
                    }
                };
                self.trace
                    .mm_page_alloc_extfrag(pfn, order.0, cur, start_mt, ft, claim);
                let list_mt = if claim { start_mt } else { ft };
                self.expand(area, pfn, order, Order(cur), list_mt);
                return Some(pfn);
            }
        }
        for cur in order.0..=MAX_PAGE_ORDER {
            for &ft in start_mt.fallbacks() {
                if area.nr_free[cur as usize][ft.idx()] > 0 {
                    let pfn = self.take_first(area, Order(cur), ft)?;
                    self.trace
                        .mm_page_alloc_extfrag(pfn, order.0, cur, start_mt, ft, false);
                    self.expand(area, pfn, order, Order(cur), ft);
                    return Some(pfn);
                }
            }
        }
        None
    }

    /// Free pages in the pageblock of `pfn`, counting the block of order
    /// `taken` that starts at `pfn` and has just left the lists.
    fn claim_count(&self, pfn: Pfn, taken: u8) -> u64 {
        let start = pfn.0 & !(PAGEBLOCK_NR_PAGES - 1);
        let mut free = Order(taken).pages();
        let mut p = start;
        while p < start + PAGEBLOCK_NR_PAGES {
            let q = Pfn(p);
            if p == pfn.0 {
                p += Order(taken).pages();
            } else if self.spans(q)
                && self.memmap.contains(q)
                && self.page(q).test(PageFlags::BUDDY)
            {
                let o = Order(self.page(q).private() as u8);
                free += o.pages();
                p += o.pages();
            } else {
                p += 1;
            }
        }
        free
    }

    /// `__rmqueue`: own type first, then fallback.
    fn rmqueue(&self, area: &mut FreeArea, order: Order, mt: MigrateType) -> Option<Pfn> {
        self.rmqueue_smallest(area, order, mt)
            .or_else(|| self.rmqueue_fallback(area, order, mt))
            .inspect(|&p| self.trace.mm_page_alloc_zone_locked(p, order.0, mt))
    }

    /// `__free_one_page`: merges with free buddies up to MAX_PAGE_ORDER and
    /// puts the result on the list of its pageblock's type; at the tail when
    /// the next merge looks likely (`buddy_merge_likely`) or when asked.
    fn free_one_page(&self, area: &mut FreeArea, mut pfn: Pfn, mut order: Order, to_tail: bool) {
        let mt = self.pageblock_mt(pfn);
        while order.0 < MAX_PAGE_ORDER {
            let buddy = Pfn(pfn.0 ^ order.pages());
            if !self.is_free_buddy(buddy, order) {
                break;
            }
            let buddy_mt = self.pageblock_mt(buddy);
            if order.0 >= PAGEBLOCK_ORDER
                && buddy_mt != mt
                && (buddy_mt.idx() >= MIGRATE_PCPTYPES || mt.idx() >= MIGRATE_PCPTYPES)
            {
                break;
            }
            self.del_from_free_list(area, buddy, order, buddy_mt);
            self.trace.buddy_merge(pfn, buddy, order.0);
            if buddy_mt != mt {
                // Match buddy type (6.10+ `__free_one_page`): the merged
                // block is all of the freed page's type, so a later
                // expand() puts its halves on the lists of their blocks.
                let blocks = (order.pages() / PAGEBLOCK_NR_PAGES).max(1);
                for b in 0..blocks {
                    self.set_pageblock_mt(buddy + b * PAGEBLOCK_NR_PAGES, mt);
                }
            }
            pfn = Pfn(pfn.0 & buddy.0);
            order = Order(order.0 + 1);
        }
        let tail = to_tail || self.buddy_merge_likely(pfn, order);
        self.add_to_free_list(area, pfn, order, mt, tail);
    }

    fn buddy_merge_likely(&self, pfn: Pfn, order: Order) -> bool {
        if order.0 >= MAX_PAGE_ORDER - 1 {
            return false;
        }
        let higher = Pfn(pfn.0 & !order.pages());
        let higher_buddy = Pfn(higher.0 ^ Order(order.0 + 1).pages());
        self.is_free_buddy(higher_buddy, Order(order.0 + 1))
    }

    /// Frees a block straight into the buddy lists (boot, drains, large orders).
    pub(crate) fn free_to_buddy(&self, pfn: Pfn, order: Order, to_tail: bool) {
        let mut area = self.area.lock();
        self.free_one_page(&mut area, pfn, order, to_tail);
    }

    /// Frees `[start, end)` (pages already initialised) to the buddy lists in
    /// the largest aligned blocks, at the tail (`__free_pages_core` with
    /// FPI_TO_TAIL), and counts them as managed.
    pub(crate) fn free_range_core(&self, start: Pfn, end: Pfn) {
        let mut area = self.area.lock();
        let mut p = start.0;
        while p < end.0 {
            let mut order = MAX_PAGE_ORDER;
            while order > 0 && (p & ((1 << order) - 1) != 0 || p + (1 << order) > end.0) {
                order -= 1;
            }
            self.free_one_page(&mut area, Pfn(p), Order(order), true);
            p += 1 << order;
        }
        self.managed.fetch_add(end.0 - start.0, Relaxed);
    }

    /// `zone_watermark_ok` for an allocation of `order` that may use zones
    /// up to `highest_zoneidx`, with no reserve access.
    pub fn zone_watermark_ok(&self, order: Order, mark: u64, highest_zoneidx: usize) -> bool {
        self.watermark_ok(order, mark, highest_zoneidx, AllocFlags::default())
    }

    /// Checks the zone's watermark for an allocation (`__zone_watermark_ok`).
    #[inline]
    fn watermark_ok(
        &self,
        order: Order,
        mark: u64,
        highest_zoneidx: usize,
        flags: AllocFlags,
    ) -> bool {
        let mut min = mark as i64;
        if flags.reserves {
            min -= min / 2;
            if flags.non_block {
                min -= min / 4;
            }
        }
        let free = self.free_pages() as i64 - (order.pages() as i64 - 1);
        if free <= min + self.lowmem_reserve(highest_zoneidx) as i64 {
            return false;
        }
        if order.0 == 0 {
            return true;
        }
        // Read without the zone lock, as Linux reads free_area[].nr_free.
        (order.0..=MAX_PAGE_ORDER).any(|o| {
            self.free_blocks[o as usize].load(Relaxed) > 0
                || (flags.reserves && self.free_highatomic[o as usize].load(Relaxed) > 0)
        })
    }

    /// Takes a block for the CPU of `lists`, through its page lists for
    /// small orders (`rmqueue`); returns it with its head's page struct and
    /// the CPU's counters of the zone.
    #[inline(always)]
    fn rmqueue_for<'a>(
        &'a self,
        lists: &mut impl PcpLists<'a>,
        order: Order,
        mt: MigrateType,
    ) -> Option<(Pfn, &'a Page, &'a ZoneCpuStats)> {
        if !self.uses_pcp(order) {
            let mut area = self.area.lock();
            return self
                .rmqueue(&mut area, order, mt)
                .map(|pfn| (pfn, self.page(pfn), self.stats.on(lists.cpu().0)));
        }
        let (mut pcp, stats) = lists.lists(self);
        self.rmqueue_pcplist(&mut pcp, order, mt)
            .map(|(pfn, page)| (pfn, page, stats))
    }

    /// Takes a block off a CPU's lists, refilling a batch from the buddy
    /// lists when the list is empty (`rmqueue_pcplist`).
    #[inline(always)]
    fn rmqueue_pcplist(
        &self,
        pcp: &mut PerCpuPages,
        order: Order,
        mt: MigrateType,
    ) -> Option<(Pfn, &Page)> {
        let pi = pcp_index(order, mt);
        if pcp.lists[pi].is_empty() {
            self.rmqueue_bulk(pcp, pi, order, mt);
        }
        let (pfn, page) = pcp.lists[pi].pop_front_page(&self.memmap)?;
        pcp.count -= order.pages();
        page.clear_locked(PageFlags::PCP);
        page.set_private(0);
        Some((pfn, page))
    }

    /// Refills the CPU's list `pi` with a batch of blocks from the buddy
    /// lists, scaled down for higher orders (`rmqueue_bulk`). Kept out of
    /// line so the list-hit path that inlines its caller stays small. An
    /// allocation's first use of the lists always comes here (they fill
    /// only here or by a free), so `high` is raised to `high_min` here.
    #[inline(never)]
    fn rmqueue_bulk(&self, pcp: &mut PerCpuPages, pi: usize, order: Order, mt: MigrateType) {
        if pcp.high < pcp.high_min {
            pcp.high = pcp.high_min;
        }
        let n = if order.0 == 0 {
            pcp.batch.max(1)
        } else {
            (pcp.batch >> order.0).max(2)
        };
        let mut area = self.area.lock();
        for _ in 0..n {
            let Some(pfn) = self.rmqueue(&mut area, order, mt) else {
                break;
            };
            let page = self.page(pfn);
            page.set_locked(PageFlags::PCP);
            page.set_private(order.0 as u64);
            pcp.lists[pi].push_back(&self.memmap, pfn);
            pcp.count += order.pages();
        }
    }

    /// Frees a block through the lists of the CPU of `lists`, draining a
    /// batch when they pass `high` (`free_frozen_page_commit`); false if
    /// its pageblock is isolated, for the caller to free it to the buddy
    /// lists instead.
    #[inline(always)]
    fn free_pcp<'a>(
        &'a self,
        lists: &mut impl PcpLists<'a>,
        pfn: Pfn,
        page: &Page,
        order: Order,
    ) -> bool {
        let mut mt = self.pageblock_mt(pfn);
        if mt.idx() >= MIGRATE_PCPTYPES {
            if mt == MigrateType::Isolate {
                return false;
            }
            mt = MigrateType::Movable;
        }
        let (mut pcp, stats) = lists.lists(self);
        stats.uncharge(order.pages());
        pcp.lists[pcp_index(order, mt)].push_front_page(&self.memmap, pfn, page);
        page.set_locked(PageFlags::PCP);
        page.set_private(order.0 as u64);
        pcp.count += order.pages();
        if pcp.high < pcp.high_min {
            pcp.high = pcp.high_min;
        }
        if pcp.count >= pcp.high {
            let batch = pcp.batch.max(1);
            self.free_pcppages_bulk(&mut pcp, batch);
        }
        true
    }

    /// Returns at least `count` pages from a CPU's lists to the buddy lists,
    /// coldest (tail) first, visiting the lists round-robin
    /// (`free_pcppages_bulk`).
    fn free_pcppages_bulk(&self, pcp: &mut PerCpuPages, count: u64) {
        let mut area = self.area.lock();
        let mut freed = 0;
        let mut pi = 0;
        while freed < count && pcp.count > 0 {
            if let Some(pfn) = pcp.lists[pi].pop_back(&self.memmap) {
                let page = self.page(pfn);
                let order = Order(page.private() as u8);
                self.trace
                    .mm_page_pcpu_drain(pfn, order.0, || self.pageblock_mt(pfn));
                page.clear_locked(PageFlags::PCP);
                page.set_private(0);
                pcp.count -= order.pages();
                freed += order.pages();
                self.free_one_page(&mut area, pfn, order, false);
            }
            pi = (pi + 1) % NR_PCP_LISTS;
        }
    }

    /// Empties one CPU's lists (`drain_pages_zone`).
    pub fn drain_pcp(&self, cpu: CpuId) {
        let mut pcp = self.pcp[cpu.0].lock();
        let all = pcp.count;
        self.free_pcppages_bulk(&mut pcp, all);
    }

    /// Per-CPU list occupancy by list, for the debug checks.
    pub(crate) fn pcp_lists(&self, cpu: CpuId) -> ([PageList; NR_PCP_LISTS], u64) {
        let pcp = self.pcp[cpu.0].lock();
        (pcp.lists, pcp.count)
    }
}

/// What one allocation may use (`struct alloc_context`): built once by
/// `prepare_alloc_pages` and read by the fast path, the slow path and each
/// retry instead of loose arguments. Simplified: no `nodemask` (there is no
/// mempolicy or cpuset, so every node is allowed; `__GFP_THISNODE` is checked
/// against `preferred_nid`) and no `spread_dirty_pages` (no dirty limits per
/// node to spread `__GFP_WRITE` allocations over).
struct AllocContext<'a> {
    /// The preferred node's zonelist (`ac->zonelist`).
    zonelist: &'a [(u32, usize)],
    /// The node the allocation prefers (the local node of the CPU).
    preferred_nid: u32,
    /// The highest zone the allocation may use (`ac->highest_zoneidx`).
    highest_zoneidx: usize,
    /// The free lists to take from (`ac->migratetype`).
    migratetype: MigrateType,
}

impl AllocContext<'_> {
    /// The first zonelist entry at or below `highest_zoneidx`, as (node,
    /// zone index) (`ac->preferred_zoneref`, `first_zones_zonelist`):
    /// NUMA_FOREIGN is counted on it when the allocation lands on another
    /// node. Linux stores it in the context; only a NUMA miss reads it, so
    /// here it is found then, keeping it off the fast path.
    fn preferred_zoneref(&self) -> (u32, usize) {
        self.zonelist
            .iter()
            .copied()
            .find(|&(_, z)| z <= self.highest_zoneidx)
            .unwrap_or((self.preferred_nid, 0))
    }
}

/// How hard an allocation may dig (`ALLOC_*` flags, the ones we model).
#[derive(Copy, Clone, Debug, Default)]
struct AllocFlags {
    wmark: Option<Wmark>,
    /// ALLOC_MIN_RESERVE / ALLOC_HIGH: may go below min by half.
    reserves: bool,
    /// ALLOC_NON_BLOCK: may go a further quarter below.
    non_block: bool,
}

/// How the fast paths reach a CPU's per-CPU state (Linux's `this_cpu_*`):
/// found for each call, or once by [`PageAlloc::lock_cpu`], which holds
/// the CPU's page lists across calls.
trait PcpLists<'a> {
    /// The CPU whose lists these are.
    fn cpu(&self) -> CpuId;
    /// The CPU's node (`numa_node_id`) and that node's zonelist.
    fn node(&self) -> (u32, &'a [(u32, usize)]);
    /// The CPU's event counters.
    fn events(&self) -> &'a CpuEvents;
    /// The CPU's lists of `zone`, locked for as long as the result lives
    /// (or held already), and the CPU's counters of the zone.
    fn lists(&mut self, zone: &'a Zone) -> (impl DerefMut<Target = PerCpuPages>, &'a ZoneCpuStats);
    /// Lets go of any list held, before a path (reclaim, draining) that
    /// takes them itself.
    fn release(&mut self);
}

/// The lists locked for the call (`pcp_spin_trylock`, here a spin).
struct LockPerCall<'a> {
    pa: &'a PageAlloc,
    cpu: CpuId,
}

impl<'a> PcpLists<'a> for LockPerCall<'a> {
    #[inline]
    fn cpu(&self) -> CpuId {
        self.cpu
    }
    #[inline]
    fn node(&self) -> (u32, &'a [(u32, usize)]) {
        let nid = self.pa.cpu_node[self.cpu.0];
        (nid, self.pa.zonelist(nid))
    }
    #[inline]
    fn events(&self) -> &'a CpuEvents {
        self.pa.events.on(self.cpu.0)
    }
    #[inline]
    fn lists(&mut self, zone: &'a Zone) -> (impl DerefMut<Target = PerCpuPages>, &'a ZoneCpuStats) {
        (zone.pcp[self.cpu.0].lock(), zone.stats.on(self.cpu.0))
    }
    #[inline]
    fn release(&mut self) {}
}

/// One CPU's page lists held by one thread ([`PageAlloc::lock_cpu`]): the
/// order-0 (and other per-CPU order) alloc and free fast paths then take no
/// lock, as the slab's [`crate::slab_common::Kmem::lock_cpu`] does, and find
/// the CPU's node, zonelist and counters where the guard keeps them, as
/// Linux's `this_cpu` accesses find them at a fixed per-CPU offset.
///
/// Linux 6.18 takes a zone's per-CPU lists with `pcp_spin_trylock` (one
/// locked instruction; on failure it goes to the buddy lists under the
/// zone lock). A simulated CPU driven by one host thread for a run of
/// calls can instead keep the lock: each zone's lists are locked the first
/// time they are used and held until the guard is dropped. The
/// simplification: while held, other threads wanting this CPU's lists
/// (draining them, /proc/zoneinfo) wait instead of racing a trylock. The
/// slow path (below the low watermark: kswapd, direct reclaim, draining)
/// lets go of every held list first, since it takes them itself. Calling
/// [`PageAlloc`]'s own alloc/free on this CPU, or a slab that needs a new
/// page, from the same thread while holding it deadlocks.
pub struct PagesCpu<'a> {
    pa: &'a PageAlloc,
    cpu: CpuId,
    /// The CPU's node and its zonelist, found once.
    node: (u32, &'a [(u32, usize)]),
    /// The CPU's event counters, found once.
    events: &'a CpuEvents,
    /// Each zone's lists once taken, with the CPU's counters of the zone,
    /// by `nid * MAX_ZONES + zone index`.
    held: Vec<Option<Held<'a>>>,
}

/// A zone's lists held by [`PagesCpu`], and the CPU's counters of the zone.
type Held<'a> = (spin::MutexGuard<'a, PerCpuPages>, &'a ZoneCpuStats);

impl<'a> PcpLists<'a> for PagesCpu<'a> {
    #[inline]
    fn cpu(&self) -> CpuId {
        self.cpu
    }
    #[inline]
    fn node(&self) -> (u32, &'a [(u32, usize)]) {
        self.node
    }
    #[inline]
    fn events(&self) -> &'a CpuEvents {
        self.events
    }
    #[inline(always)]
    fn lists(&mut self, zone: &'a Zone) -> (impl DerefMut<Target = PerCpuPages>, &'a ZoneCpuStats) {
        let cpu = self.cpu;
        let (lists, stats) = self.held[zone.nid as usize * MAX_ZONES + zone.idx]
            .get_or_insert_with(|| take(zone, cpu));
        (&mut **lists, *stats)
    }
    fn release(&mut self) {
        self.held.iter_mut().for_each(|h| *h = None);
    }
}

/// Locks `zone`'s lists of `cpu` for [`PagesCpu`], on their first use: out
/// of line, off the path of every later call.
#[cold]
#[inline(never)]
fn take(zone: &Zone, cpu: CpuId) -> Held<'_> {
    (zone.pcp[cpu.0].lock(), zone.stats.on(cpu.0))
}

impl PagesCpu<'_> {
    /// `alloc_pages(gfp, order)` on the held CPU.
    #[inline]
    pub fn alloc_pages(&mut self, gfp: Gfp, order: Order) -> Option<Pfn> {
        let pa = self.pa;
        pa.alloc_pages_with(self, gfp, order)
    }
    /// `__free_pages` on the held CPU.
    #[inline]
    pub fn free_pages(&mut self, pfn: Pfn, order: Order) {
        let pa = self.pa;
        pa.free_pages_with(self, pfn, order)
    }
}

/// Tunables of /proc/sys/vm that shape the allocator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmSysctl {
    /// vm.min_free_kbytes.
    pub min_free_kbytes: u64,
    /// True once the user set min_free_kbytes (a larger computed value is then ignored).
    pub user_min_free_kbytes: bool,
    /// vm.watermark_scale_factor (1..=3000, default 10).
    pub watermark_scale_factor: u64,
    /// vm.lowmem_reserve_ratio per zone.
    pub lowmem_reserve_ratio: Vec<u64>,
}

/// The physical page allocator of a machine: all nodes and zones.
pub struct PageAlloc {
    /// The architecture.
    pub arch: Arch,
    /// Nodes, by id.
    pub nodes: Vec<Node>,
    /// Node of each CPU.
    pub cpu_node: Vec<u32>,
    /// Node distances (`node_distance`), row per node.
    pub distance: Vec<Vec<u32>>,
    zonelists: Vec<Vec<(u32, usize)>>,
    /// Each node's memmap, for `pfn_to_page` by PFN alone: the copy of its
    /// highest populated zone, the one zonelists try first, so that its
    /// lookup window (see [`crate::memmap::Memmap`]) covers the pages most
    /// often freed.
    memmaps: Vec<crate::memmap::Memmap>,
    /// `gfp_zone` mapped onto this arch's zones, by zone-modifier bits (GFP_ZONE_TABLE).
    gfp_zone_idx: [Option<usize>; 16],
    dm: DirectMap,
    sysctl: spin::Mutex<VmSysctl>,
    /// Global event counters.
    pub events: VmEvents,
    /// The kernel log.
    pub log: Printk,
    /// Each CPU's batch of pages on their way to the LRU (`cpu_fbatches`).
    pub fbatches: Vec<spin::Mutex<crate::swap::FolioBatch>>,
    /// Direct reclaim, once the machine has plugged it in.
    reclaim: spin::Once<alloc::sync::Arc<dyn crate::vmscan::DirectReclaim>>,
    /// The trace buffer (shared with the zones), off unless enabled.
    pub trace: alloc::sync::Arc<crate::trace::Trace>,
    /// The physical start of each CPU's unit of the first percpu chunk
    /// (`__per_cpu_offset`); empty on a machine booted without percpu areas.
    pub percpu_units: Vec<crate::types::PhysAddr>,
}

/// Default lowmem_reserve_ratio for a zone type (mm/page_alloc.c: DMA 256,
/// DMA32 256, Normal 32, HighMem 0, Movable 0).
pub fn default_lowmem_reserve_ratio(z: ZoneType) -> u64 {
    match z {
        ZoneType::Dma | ZoneType::Dma32 => 256,
        ZoneType::Normal => 32,
        _ => 0,
    }
}

/// `int_sqrt`: floor of the square root.
pub fn int_sqrt(x: u64) -> u64 {
    if x < 2 {
        return x;
    }
    // Bitwise method, as lib/math/int_sqrt.c computes it.
    let mut m = 1u64 << ((63 - x.leading_zeros()) & !1);
    let mut y = 0u64;
    let mut x = x;
    while m != 0 {
        let b = y + m;
        y >>= 1;
        if x >= b {
            x -= b;
            y += m;
        }
        m >>= 2;
    }
    y
}

/// Position of the most significant set bit, 1-based (`fls`).
fn fls(x: u64) -> u64 {
    64 - x.leading_zeros() as u64
}

impl PageAlloc {
    /// Assembles the allocator from nodes whose zones are built but hold no
    /// free pages yet; `mm_init` fills them and then calls [`Self::init_watermarks`].
    pub fn new(
        arch: Arch,
        nodes: Vec<Node>,
        cpu_node: Vec<u32>,
        distance: Vec<Vec<u32>>,
        dm: DirectMap,
        log: Printk,
        trace: alloc::sync::Arc<crate::trace::Trace>,
    ) -> Self {
        let zonelists = build_zonelists(&nodes, &distance);
        let memmaps = nodes
            .iter()
            .filter_map(|n| {
                n.zones
                    .iter()
                    .rev()
                    .find(|z| z.present > 0)
                    .or(n.zones.first())
            })
            .map(|z| z.memmap.clone())
            .collect();
        let ncpus = cpu_node.len();
        let ratios = arch
            .zones()
            .iter()
            .map(|&z| default_lowmem_reserve_ratio(z))
            .collect();
        PageAlloc {
            arch,
            nodes,
            cpu_node,
            distance,
            zonelists,
            memmaps,
            gfp_zone_idx: core::array::from_fn(|bits| {
                Self::compute_highest_zoneidx(arch, Gfp(bits as u32))
            }),
            dm,
            sysctl: spin::Mutex::new(VmSysctl {
                min_free_kbytes: 0,
                user_min_free_kbytes: false,
                watermark_scale_factor: 10,
                lowmem_reserve_ratio: ratios,
            }),
            events: VmEvents::new(ncpus),
            log,
            fbatches: (0..ncpus).map(|_| Default::default()).collect(),
            reclaim: spin::Once::new(),
            trace,
            percpu_units: Vec::new(),
        }
    }

    /// The reclaimer plugged in by the machine, if any.
    pub fn reclaimer(&self) -> Option<&crate::vmscan::Reclaimer> {
        self.reclaim.get().map(|r| r.as_reclaimer())
    }

    /// Plugs in direct reclaim (once; later calls are ignored).
    pub fn set_reclaim(&self, r: alloc::sync::Arc<dyn crate::vmscan::DirectReclaim>) {
        self.reclaim.call_once(|| r);
    }

    /// The direct map of RAM.
    pub fn direct_map(&self) -> &DirectMap {
        &self.dm
    }
    /// Number of CPUs.
    pub fn nr_cpus(&self) -> usize {
        self.cpu_node.len()
    }
    /// Current sysctl values.
    pub fn sysctl(&self) -> VmSysctl {
        self.sysctl.lock().clone()
    }
    /// The zonelist of a node: (node, zone index), preferred first (`build_zonelists`).
    pub fn zonelist(&self, nid: u32) -> &[(u32, usize)] {
        &self.zonelists[nid as usize]
    }
    /// All zones of all nodes.
    pub fn zones(&self) -> impl Iterator<Item = &Zone> {
        self.nodes.iter().flat_map(|n| n.zones.iter())
    }
    /// A zone by node and index.
    pub fn zone(&self, nid: u32, idx: usize) -> &Zone {
        &self.nodes[nid as usize].zones[idx]
    }
    /// The zone that holds `pfn`, if any (`page_zone`).
    #[inline(always)]
    pub fn zone_of(&self, pfn: Pfn) -> Option<&Zone> {
        match self.page(pfn) {
            Some(page) => self.zone_of_page(pfn, page),
            None => self.zone_spanning(pfn),
        }
    }
    /// The zone of `pfn` whose struct page is `page`: the one its flags
    /// name once initialised (`page_zone`; every initialisation names the
    /// zone spanning the frame), else the one spanning it.
    #[inline]
    fn zone_of_page(&self, pfn: Pfn, page: &Page) -> Option<&Zone> {
        let f = page.flags();
        if f.contains(PageFlags::INIT) {
            let z = &self.nodes[f.nid() as usize].zones[f.zone_idx()];
            debug_assert!(z.spans(pfn), "{pfn:?}'s flags name a zone not spanning it");
            return Some(z);
        }
        self.zone_spanning(pfn)
    }
    /// The zone whose span holds `pfn`, searched (`zone_of` without a
    /// struct page to name it).
    #[cold]
    fn zone_spanning(&self, pfn: Pfn) -> Option<&Zone> {
        self.zones().find(|z| z.spans(pfn))
    }
    /// The struct page of `pfn` (`pfn_to_page`), if the frame has one:
    /// each node's memmap asked in turn.
    #[inline]
    pub fn page(&self, pfn: Pfn) -> Option<&Page> {
        for m in &self.memmaps {
            if let Some(p) = m.get(pfn) {
                return Some(p);
            }
        }
        None
    }
    /// Free pages in the buddy lists of every zone (global NR_FREE_PAGES).
    pub fn nr_free_pages(&self) -> u64 {
        self.zones().map(|z| z.free_pages()).sum()
    }
    /// Pages managed by the allocator (totalram_pages).
    pub fn totalram_pages(&self) -> u64 {
        self.zones().map(|z| z.managed()).sum()
    }
    /// Pages on per-CPU lists, all zones and CPUs.
    pub fn nr_pcp_pages(&self) -> u64 {
        self.zones()
            .map(|z| {
                (0..z.nr_cpus())
                    .map(|c| z.lock_pcp(CpuId(c)).count)
                    .sum::<u64>()
            })
            .sum()
    }

    /// The zone index an allocation may go up to on this architecture
    /// (`gfp_zone` mapped onto the zones the arch is built with: no DMA32
    /// means Normal, no HighMem means Normal).
    #[inline]
    pub fn highest_zoneidx(&self, gfp: Gfp) -> Option<usize> {
        self.gfp_zone_idx[(gfp.0 & Gfp::ZONEMASK.0) as usize]
    }

    fn compute_highest_zoneidx(arch: Arch, gfp: Gfp) -> Option<usize> {
        let want = gfp.zone()?;
        let zones = arch.zones();
        let pick = |z: ZoneType| zones.iter().position(|&x| x == z);
        Some(match want {
            ZoneType::Dma32 => pick(ZoneType::Dma32).or_else(|| pick(ZoneType::Normal))?,
            ZoneType::HighMem => pick(ZoneType::HighMem).or_else(|| pick(ZoneType::Normal))?,
            ZoneType::Movable => pick(ZoneType::Movable)?,
            z => pick(z)?,
        })
    }

    /// `alloc_pages(gfp, order)` on `cpu`: a block of `2^order` pages with a
    /// reference count of 1, or `None`. The fast path allocates above the low
    /// watermark; the slow path goes down to min (further for ATOMIC and
    /// __GFP_HIGH), drains per-CPU lists if it may block, and fails with a
    /// "page allocation failure" line in the log (unless __GFP_NOWARN).
    pub fn alloc_pages(&self, cpu: CpuId, gfp: Gfp, order: Order) -> Option<Pfn> {
        self.alloc_pages_with(&mut LockPerCall { pa: self, cpu }, gfp, order)
    }

    /// `split_page`: makes each page of an allocated block of `order` (not
    /// a compound page) a page of its own with one reference, so that each
    /// can be used and freed alone, with order 0.
    pub fn split_page(&self, pfn: Pfn, order: Order) {
        for i in 1..order.pages() {
            if let Some(p) = self.page(Pfn(pfn.0 + i)) {
                p.set_refcount(1);
            }
        }
    }

    /// Holds `cpu`'s page lists for a run of allocations and frees (see
    /// [`PagesCpu`]).
    pub fn lock_cpu(&self, cpu: CpuId) -> PagesCpu<'_> {
        let per_call = LockPerCall { pa: self, cpu };
        PagesCpu {
            pa: self,
            cpu,
            node: per_call.node(),
            events: per_call.events(),
            held: (0..self.nodes.len() * MAX_ZONES).map(|_| None).collect(),
        }
    }

    /// `alloc_pages` on the CPU of `lists`.
    #[inline]
    fn alloc_pages_with<'a>(
        &'a self,
        lists: &mut impl PcpLists<'a>,
        gfp: Gfp,
        order: Order,
    ) -> Option<Pfn> {
        let cpu = lists.cpu();
        if order.0 > MAX_PAGE_ORDER {
            self.trace.mm_page_alloc(cpu, None, order.0, gfp);
            self.warn_alloc(gfp, order);
            return None;
        }
        let Some(highest) = self.highest_zoneidx(gfp) else {
            self.trace.mm_page_alloc(cpu, None, order.0, gfp);
            self.warn_alloc(gfp, order);
            return None;
        };
        let ac = self.prepare_alloc_pages(lists.node(), gfp, highest);
        let fast = AllocFlags {
            wmark: Some(Wmark::Low),
            ..Default::default()
        };
        if let Some(pfn) = self.get_page_from_freelist(lists, gfp, order, fast, &ac) {
            return Some(pfn);
        }
        lists.release();
        self.alloc_slowpath(cpu, gfp, order, &ac)
    }

    /// `prepare_alloc_pages`: the allocation's context on the node `nid`
    /// whose zonelist is `zonelist`, built once and read by the fast path,
    /// the slow path and every retry.
    #[inline]
    fn prepare_alloc_pages<'z>(
        &self,
        (nid, zonelist): (u32, &'z [(u32, usize)]),
        gfp: Gfp,
        highest_zoneidx: usize,
    ) -> AllocContext<'z> {
        AllocContext {
            zonelist,
            preferred_nid: nid,
            highest_zoneidx,
            migratetype: gfp.migratetype(),
        }
    }

    fn alloc_slowpath(
        &self,
        cpu: CpuId,
        gfp: Gfp,
        order: Order,
        ac: &AllocContext<'_>,
    ) -> Option<Pfn> {
        // gfp_to_alloc_flags: min watermark; __GFP_HIGH digs into reserves;
        // a caller that cannot block (GFP_ATOMIC) digs further.
        let mut flags = AllocFlags {
            wmark: Some(Wmark::Min),
            ..Default::default()
        };
        if gfp.contains(Gfp::HIGH) {
            flags.reserves = true;
            if !gfp.allows_blocking() {
                flags.non_block = true;
            }
        }
        let highest = ac.highest_zoneidx;
        if gfp.contains(Gfp::KSWAPD_RECLAIM) {
            crate::vmscan::wakeup_kswapd(self, ac.preferred_nid, order, highest);
        }
        let retry = |flags| {
            self.get_page_from_freelist(&mut LockPerCall { pa: self, cpu }, gfp, order, flags, ac)
        };
        if let Some(pfn) = retry(flags) {
            return Some(pfn);
        }
        if gfp.allows_blocking() {
            // __alloc_pages_direct_reclaim, retried while it makes progress
            // (`should_reclaim_retry`, at most MAX_RECLAIM_RETRIES rounds).
            if let Some(r) = self.reclaim.get() {
                for _ in 0..crate::vmscan::MAX_RECLAIM_RETRIES {
                    if r.try_to_free_pages(self, cpu, gfp, order, highest) == 0 {
                        break;
                    }
                    if let Some(pfn) = retry(flags) {
                        return Some(pfn);
                    }
                }
            }
            // Pages pinned on per-CPU lists are recovered last, as Linux
            // does after a failed direct reclaim.
            self.drain_all_pages();
            if let Some(pfn) = retry(flags) {
                return Some(pfn);
            }
        }
        if gfp.contains(Gfp::NOFAIL) {
            // __GFP_NOFAIL gets access to the min reserves before giving up;
            // Linux would then loop forever, which a simulator must not.
            let nofail = AllocFlags {
                wmark: Some(Wmark::Min),
                reserves: true,
                non_block: false,
            };
            if let Some(pfn) = retry(nofail) {
                return Some(pfn);
            }
        }
        self.trace.mm_page_alloc(cpu, None, order.0, gfp);
        self.warn_alloc(gfp, order);
        None
    }

    /// `get_page_from_freelist`: walks the context's zonelist up to its
    /// highest zone and takes a block from the first zone whose watermark
    /// (per `flags`) allows it. The first eligible zone usually has the
    /// block, so trying it is written out here and the rest of the walk
    /// ([`Self::get_page_from_later_zones`]) is out of line: the same
    /// checks in the same order, with a small fast path.
    #[inline(always)]
    fn get_page_from_freelist<'a>(
        &'a self,
        lists: &mut impl PcpLists<'a>,
        gfp: Gfp,
        order: Order,
        flags: AllocFlags,
        ac: &AllocContext<'_>,
    ) -> Option<Pfn> {
        let (k, zone) = self.next_zone(gfp, order, flags, ac, 0)?;
        if let Some(pfn) = self.take_from_zone(lists, zone, gfp, order, ac) {
            return Some(pfn);
        }
        self.get_page_from_later_zones(lists, gfp, order, flags, ac, k + 1)
    }

    /// The zonelist walk of [`Self::get_page_from_freelist`] from entry
    /// `from` on, once an earlier zone passed its watermark but had no block.
    #[inline(never)]
    fn get_page_from_later_zones<'a>(
        &'a self,
        lists: &mut impl PcpLists<'a>,
        gfp: Gfp,
        order: Order,
        flags: AllocFlags,
        ac: &AllocContext<'_>,
        mut from: usize,
    ) -> Option<Pfn> {
        loop {
            let (k, zone) = self.next_zone(gfp, order, flags, ac, from)?;
            if let Some(pfn) = self.take_from_zone(lists, zone, gfp, order, ac) {
                return Some(pfn);
            }
            from = k + 1;
        }
    }

    /// The first zonelist entry from `from` on that the allocation may use
    /// (at or below its highest zone, on its node if `__GFP_THISNODE`, with
    /// managed pages) and whose watermark per `flags` allows it: its
    /// position and zone.
    #[inline(always)]
    fn next_zone(
        &self,
        gfp: Gfp,
        order: Order,
        flags: AllocFlags,
        ac: &AllocContext<'_>,
        from: usize,
    ) -> Option<(usize, &Zone)> {
        let highest = ac.highest_zoneidx;
        for (k, &(nid, zidx)) in ac.zonelist.iter().enumerate().skip(from) {
            if zidx > highest || (gfp.contains(Gfp::THISNODE) && nid != ac.preferred_nid) {
                continue;
            }
            let zone = self.zone(nid, zidx);
            if zone.managed() == 0 {
                continue;
            }
            if let Some(w) = flags.wmark {
                if !zone.watermark_ok(order, zone.wmark(w), highest, flags) {
                    continue;
                }
            }
            return Some((k, zone));
        }
        None
    }

    /// Takes a block from `zone` for the CPU of `lists` and prepares it
    /// (`rmqueue`, `prep_new_page`, `zone_statistics`).
    #[inline(always)]
    fn take_from_zone<'a>(
        &'a self,
        lists: &mut impl PcpLists<'a>,
        zone: &'a Zone,
        gfp: Gfp,
        order: Order,
        ac: &AllocContext<'_>,
    ) -> Option<Pfn> {
        let cpu = lists.cpu();
        let (pfn, head, stats) = zone.rmqueue_for(lists, order, ac.migratetype)?;
        self.prep_new_page(cpu, lists.events(), zone, stats, pfn, head, order, gfp);
        self.zone_statistics(cpu, zone, stats, ac);
        Some(pfn)
    }

    /// `zone_statistics` on `stats`, the CPU's counters of `zone`:
    /// NUMA_HIT and NUMA_LOCAL when the block comes from the preferred node;
    /// else NUMA_MISS here, NUMA_FOREIGN on the preferred zone and
    /// NUMA_OTHER. Linux counts LOCAL/OTHER against the CPU's node: here
    /// that is always the preferred node (no mempolicy).
    #[inline(always)]
    fn zone_statistics(
        &self,
        cpu: CpuId,
        zone: &Zone,
        stats: &ZoneCpuStats,
        ac: &AllocContext<'_>,
    ) {
        debug_assert_eq!(ac.preferred_nid, self.cpu_node[cpu.0]);
        if zone.nid == ac.preferred_nid {
            stats.numa_inc2(NumaStat::NumaHit, NumaStat::NumaLocal);
        } else {
            self.zone_statistics_remote(cpu, stats, ac);
        }
    }

    /// [`Self::zone_statistics`] for a block off the preferred node.
    #[cold]
    fn zone_statistics_remote(&self, cpu: CpuId, stats: &ZoneCpuStats, ac: &AllocContext<'_>) {
        stats.numa_inc2(NumaStat::NumaMiss, NumaStat::NumaOther);
        let (pn, pz) = ac.preferred_zoneref();
        self.zone(pn, pz)
            .stats
            .on(cpu.0)
            .numa_inc(NumaStat::NumaForeign);
    }

    /// `prep_new_page` for the block at `pfn` whose head's page struct is
    /// `head`: its reference, the alloc tracepoint and counters (the CPU's
    /// `events` and its `stats` of `zone`), zeroing.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn prep_new_page(
        &self,
        cpu: CpuId,
        events: &CpuEvents,
        zone: &Zone,
        stats: &ZoneCpuStats,
        pfn: Pfn,
        head: &Page,
        order: Order,
        gfp: Gfp,
    ) {
        // Only a block's head carries the buddy/PCP tags (they were cleared
        // when it left its list), so the tail pages need no work here.
        debug_assert!(head.refcount() == 0, "allocating a page in use: {pfn:?}");
        debug_assert!(!head.test(PageFlags::BUDDY | PageFlags::PCP));
        head.set_refcount(1);
        self.trace.mm_page_alloc(cpu, Some(pfn), order.0, gfp);
        stats.charge(order.pages());
        if gfp.contains(Gfp::ZERO) {
            self.dm.zero_pages(pfn, order.pages());
        }
        events.count_zone(ZoneEvent::PgAlloc, zone.idx, order.pages());
    }

    fn warn_alloc(&self, gfp: Gfp, order: Order) {
        if gfp.contains(Gfp::NOWARN) {
            return;
        }
        crate::printk!(
            self.log,
            "lmm: page allocation failure: order:{}, mode:{:#x}({}), nodemask=(null)",
            order.0,
            gfp.0,
            gfp.describe()
        );
    }

    /// `alloc_page(gfp)`: one page.
    pub fn alloc_page(&self, cpu: CpuId, gfp: Gfp) -> Option<Pfn> {
        self.alloc_pages(cpu, gfp, Order(0))
    }

    /// Where the kernel's direct map starts (PAGE_OFFSET): x86-64 4-level,
    /// x86-32 with the 3G/1G split; arm64's linear map at the 48-bit
    /// `PAGE_OFFSET` (0xffff000000000000 in 6.18) with RAM at its DRAM base.
    pub fn page_offset(&self) -> u64 {
        match self.arch {
            Arch::X86_64 => crate::arch::layout::X86_64_PAGE_OFFSET_L4,
            Arch::X86 | Arch::X86Pae => crate::arch::layout::X86_32_PAGE_OFFSET,
            Arch::Arm64 => 0xffff_0000_0000_0000,
        }
    }

    /// `page_address`: the kernel virtual address of a frame in the direct
    /// map, or `None` for a HighMem frame (it has none until kmapped).
    pub fn page_address(&self, pfn: Pfn) -> Option<crate::types::VirtAddr> {
        let zone = self.zone_of(pfn)?;
        if zone.is_highmem() {
            return None;
        }
        let phys = pfn.phys().0
            - if self.arch == Arch::Arm64 {
                self.arch.dram_base()
            } else {
                0
            };
        Some(crate::types::VirtAddr(self.page_offset() + phys))
    }

    /// `__get_free_pages(gfp, order)`: a lowmem block, by its direct-map
    /// address. HighMem may not be asked for (Linux warns and masks it off).
    pub fn get_free_pages(
        &self,
        cpu: CpuId,
        gfp: Gfp,
        order: Order,
    ) -> Option<crate::types::VirtAddr> {
        let gfp = Gfp(gfp.0 & !Gfp::HIGHMEM.0);
        let pfn = self.alloc_pages(cpu, gfp, order)?;
        self.page_address(pfn)
    }

    /// `get_zeroed_page(gfp)`: one zeroed lowmem page, by address.
    pub fn get_zeroed_page(&self, cpu: CpuId, gfp: Gfp) -> Option<crate::types::VirtAddr> {
        self.get_free_pages(cpu, gfp | Gfp::ZERO, Order(0))
    }

    /// `free_pages(addr, order)`: frees a block given by its direct-map address.
    pub fn free_pages_addr(&self, cpu: CpuId, addr: crate::types::VirtAddr, order: Order) {
        let base = if self.arch == Arch::Arm64 {
            self.arch.dram_base()
        } else {
            0
        };
        let pfn = crate::types::PhysAddr(addr.0 - self.page_offset() + base).pfn();
        self.free_pages(cpu, pfn, order);
    }

    /// `__free_pages`: drops the reference held on a block and frees it when
    /// the count reaches zero: through `cpu`'s lists for small orders,
    /// straight to the buddy lists otherwise.
    pub fn free_pages(&self, cpu: CpuId, pfn: Pfn, order: Order) {
        self.free_pages_with(&mut LockPerCall { pa: self, cpu }, pfn, order)
    }

    /// `__free_pages` on the CPU of `lists`.
    #[inline]
    fn free_pages_with<'a>(&'a self, lists: &mut impl PcpLists<'a>, pfn: Pfn, order: Order) {
        let cpu = lists.cpu();
        let head = self
            .page(pfn)
            .expect("free_pages: frame outside every zone");
        let zone = self
            .zone_of_page(pfn, head)
            .expect("free_pages: frame outside every zone");
        let left = head.put();
        assert!(left >= 0, "free_pages: bad refcount on {pfn:?}");
        if left > 0 {
            return;
        }
        self.trace.mm_page_free(cpu, pfn, order.0);
        lists.events().count(VmEvent::Pgfree, order.pages());
        if !(zone.uses_pcp(order) && zone.free_pcp(lists, pfn, head, order)) {
            zone.stats.on(cpu.0).uncharge(order.pages());
            zone.free_to_buddy(pfn, order, false);
        }
    }

    /// Drains and bypasses (or, with `false`, re-enables) the per-CPU lists
    /// of every zone (`zone_pcp_disable` / `zone_pcp_enable`).
    pub fn set_pcp_disabled(&self, disabled: bool) {
        for z in self.zones() {
            z.pcp_disabled.store(disabled, Relaxed);
        }
        if disabled {
            self.drain_all_pages();
        }
    }

    /// Empties every CPU's lists in every zone (`drain_all_pages`).
    pub fn drain_all_pages(&self) {
        for z in self.zones() {
            for c in 0..z.nr_cpus() {
                z.drain_pcp(CpuId(c));
            }
        }
    }

    // ----- watermarks, reserves, per-CPU sizes -----

    /// `nr_free_buffer_pages`: managed pages above the high watermark in the
    /// zones GFP_USER may use.
    pub fn nr_free_buffer_pages(&self) -> u64 {
        let top = self.highest_zoneidx(Gfp::USER).unwrap_or(0);
        self.zones()
            .filter(|z| z.idx <= top)
            .map(|z| z.managed().saturating_sub(z.wmark(Wmark::High)))
            .sum()
    }

    /// Boot-time sizing (`init_per_zone_wmark_min`, then khugepaged's
    /// `set_recommended_min_free_kbytes` when the arch has THP).
    pub fn init_watermarks(&self) {
        let lowmem_kbytes = self.nr_free_buffer_pages() * (crate::PAGE_SIZE >> 10);
        let computed = int_sqrt(lowmem_kbytes * 16).clamp(128, 262144);
        {
            let mut s = self.sysctl.lock();
            if !s.user_min_free_kbytes || computed > s.min_free_kbytes {
                s.min_free_kbytes = computed;
            }
        }
        self.setup_per_zone_wmarks();
        self.setup_per_zone_lowmem_reserve();
        if self.arch_has_thp() {
            self.set_recommended_min_free_kbytes();
        }
    }

    fn arch_has_thp(&self) -> bool {
        matches!(self.arch, Arch::X86_64 | Arch::Arm64)
    }

    /// `set_recommended_min_free_kbytes` (mm/khugepaged.c): room for two free
    /// pageblocks per zone plus fallback headroom per migrate-type pair,
    /// capped at 5% of lowmem.
    fn set_recommended_min_free_kbytes(&self) {
        let top = self.highest_zoneidx(Gfp::USER).unwrap_or(0);
        let nr_zones = self
            .zones()
            .filter(|z| z.is_populated() && z.idx <= top)
            .count() as u64;
        let mut rec = PAGEBLOCK_NR_PAGES * nr_zones * 2;
        rec += PAGEBLOCK_NR_PAGES * nr_zones * (MIGRATE_PCPTYPES * MIGRATE_PCPTYPES) as u64;
        rec = rec.min(self.nr_free_buffer_pages() / 20);
        let rec_kb = rec << (PAGE_SHIFT - 10);
        let mut s = self.sysctl.lock();
        if rec_kb > s.min_free_kbytes {
            s.min_free_kbytes = rec_kb;
            drop(s);
            self.setup_per_zone_wmarks();
        }
    }

    /// `__setup_per_zone_wmarks` and the per-CPU list sizes that follow from
    /// the low watermark (`zone_pcp_update`).
    pub fn setup_per_zone_wmarks(&self) {
        let s = self.sysctl();
        let zones: Vec<(u64, bool)> = self
            .zones()
            .map(|z| (z.managed(), z.is_highmem() || z.ztype == ZoneType::Movable))
            .collect();
        let lowmem: u64 = self
            .zones()
            .filter(|z| !z.is_highmem())
            .map(|z| z.managed())
            .sum();
        for (z, &(managed, capped)) in self.zones().zip(&zones) {
            let w = watermarks(
                s.min_free_kbytes,
                s.watermark_scale_factor,
                lowmem,
                managed,
                capped,
            );
            for (i, v) in w.iter().enumerate() {
                z.wmark[i].store(*v, Relaxed);
            }
            let node_cpus = self.cpu_node.iter().filter(|&&n| n == z.nid).count() as u64;
            let (batch, high_min, high_max) = pcp_sizes(managed, w[Wmark::Low as usize], node_cpus);
            for c in 0..z.nr_cpus() {
                let mut pcp = z.lock_pcp(CpuId(c));
                pcp.batch = batch;
                pcp.high_min = high_min;
                pcp.high_max = high_max;
                if pcp.high != 0 {
                    pcp.high = linux_clamp(pcp.high, high_min, high_max);
                }
            }
        }
    }

    /// `setup_per_zone_lowmem_reserve`, node by node.
    pub fn setup_per_zone_lowmem_reserve(&self) {
        let ratios = self.sysctl().lowmem_reserve_ratio;
        for node in &self.nodes {
            let managed: Vec<u64> = node.zones.iter().map(|z| z.managed()).collect();
            for (z, row) in node.zones.iter().zip(lowmem_reserve(&managed, &ratios)) {
                for (j, v) in row.iter().enumerate() {
                    z.lowmem_reserve[j].store(*v, Relaxed);
                }
            }
        }
    }

    /// The per-CPU counter threshold of a zone (`calculate_normal_threshold`).
    pub fn stat_threshold(&self, z: &Zone) -> u64 {
        stat_threshold(z.managed(), self.nr_cpus() as u64)
    }

    /// Sets vm.min_free_kbytes (`min_free_kbytes_sysctl_handler`): an int
    /// of at least 0, so values above INT_MAX are EINVAL.
    pub fn set_min_free_kbytes(&self, kb: u64) -> Result<(), crate::errno::Errno> {
        if kb > i32::MAX as u64 {
            return Err(crate::errno::Errno::EINVAL);
        }
        {
            let mut s = self.sysctl.lock();
            s.min_free_kbytes = kb;
            s.user_min_free_kbytes = true;
        }
        self.setup_per_zone_wmarks();
        Ok(())
    }

    /// Sets vm.watermark_scale_factor (1..=3000, else EINVAL).
    pub fn set_watermark_scale_factor(&self, v: u64) -> Result<(), crate::errno::Errno> {
        if !(1..=3000).contains(&v) {
            return Err(crate::errno::Errno::EINVAL);
        }
        self.sysctl.lock().watermark_scale_factor = v;
        self.setup_per_zone_wmarks();
        Ok(())
    }

    /// Sets vm.lowmem_reserve_ratio (one value per zone, as Linux's array).
    pub fn set_lowmem_reserve_ratio(&self, ratios: &[u64]) -> Result<(), crate::errno::Errno> {
        if ratios.len() != self.arch.zones().len() {
            return Err(crate::errno::Errno::EINVAL);
        }
        self.sysctl.lock().lowmem_reserve_ratio = ratios.to_vec();
        self.setup_per_zone_lowmem_reserve();
        Ok(())
    }
}

/// Watermarks [min, low, high, promo] of a zone with `managed` pages
/// (`__setup_per_zone_wmarks`): min is the zone's share of min_free_kbytes
/// among lowmem zones (highmem and movable zones get managed/1024 clamped to
/// [32, 128] instead); each further step is the larger of a quarter of that
/// share and managed × watermark_scale_factor / 10000.
pub fn watermarks(
    min_free_kbytes: u64,
    scale_factor: u64,
    lowmem_pages: u64,
    managed: u64,
    capped: bool,
) -> [u64; 4] {
    let pages_min = min_free_kbytes >> (PAGE_SHIFT - 10);
    // 64-bit division of a product that may not fit in 64 bits.
    let share = (pages_min as u128 * managed as u128)
        .checked_div(lowmem_pages as u128)
        .map_or(0, |v| v.min(u64::MAX as u128) as u64);
    let min = if capped {
        (managed / 1024).clamp(SWAP_CLUSTER_MAX, 128)
    } else {
        share
    };
    let step = (share >> 2).max(managed * scale_factor / 10000);
    [min, min + step, min + 2 * step, min + 3 * step]
}

/// lowmem_reserve rows for the zones of one node (`setup_per_zone_lowmem_reserve`):
/// for a lower zone i and a higher zone j, the managed pages of zones
/// i+1..=j divided by zone i's ratio; 0 when the ratio is 0 or zone i has no
/// managed pages.
pub fn lowmem_reserve(managed: &[u64], ratios: &[u64]) -> Vec<[u64; MAX_ZONES]> {
    (0..managed.len())
        .map(|i| {
            let ratio = ratios.get(i).copied().unwrap_or(0);
            let clear = ratio == 0 || managed[i] == 0;
            let mut row = [0; MAX_ZONES];
            let mut sum = 0;
            for j in i + 1..managed.len().min(MAX_ZONES) {
                sum += managed[j];
                row[j] = if clear { 0 } else { sum / ratio };
            }
            row
        })
        .collect()
}

/// `zone_batchsize`: about a quarter of 1 MiB of pages, at most 1/4096 of
/// the zone, clamped to 2^n - 1, and at least 1.
pub fn zone_batchsize(managed: u64) -> u64 {
    let batch = ((managed >> 10).min((1 << 20) >> PAGE_SHIFT) / 4).max(1);
    let b = batch + batch / 2;
    ((1u64 << (63 - b.leading_zeros())) - 1).max(1)
}

/// `clamp(val, lo, hi)` as include/linux/minmax.h computes it at run time
/// (`val >= hi ? hi : val <= lo ? lo : val`): unlike [`Ord::clamp`] it does
/// not panic when `lo > hi`, which happens to a pcp's `high_min` and
/// `high_max` when a large vm.min_free_kbytes lifts the low watermark above
/// an eighth of the zone (`nr_pcp_high` clamps them so).
pub fn linux_clamp(val: u64, lo: u64, hi: u64) -> u64 {
    if val >= hi {
        hi
    } else if val <= lo {
        lo
    } else {
        val
    }
}

/// Per-CPU list sizes (batch, high_min, high_max) of a zone (`zone_pcp_update`):
/// high_min splits the low watermark across the node's CPUs, high_max an
/// eighth of the zone; both at least four batches.
pub fn pcp_sizes(managed: u64, low_wmark: u64, node_cpus: u64) -> (u64, u64, u64) {
    let batch = zone_batchsize(managed);
    let cpus = node_cpus.max(1);
    (
        batch,
        (low_wmark / cpus).max(batch << 2),
        (managed / 8 / cpus).max(batch << 2),
    )
}

/// `calculate_normal_threshold`: 2 × fls(online CPUs) × (1 + fls(managed in
/// 128 MiB units)), at most 125.
pub fn stat_threshold(managed: u64, online_cpus: u64) -> u64 {
    let mem = managed >> (27 - PAGE_SHIFT);
    (2 * fls(online_cpus) * (1 + fls(mem))).min(125)
}

/// `build_zonelists`: for each node, nodes in order of distance (ties by
/// id), and within each node its populated zones from highest to lowest
/// (`build_zonerefs_node` skips a zone with no present pages, so the fast
/// path never visits an empty Normal or Movable zone).
fn build_zonelists(nodes: &[Node], distance: &[Vec<u32>]) -> Vec<Vec<(u32, usize)>> {
    nodes
        .iter()
        .map(|n| {
            let mut order: Vec<u32> = nodes.iter().map(|m| m.nid).collect();
            order.sort_by_key(|&m| {
                (
                    distance[n.nid as usize][m as usize],
                    if m == n.nid { 0 } else { 1 },
                    m,
                )
            });
            order
                .into_iter()
                .flat_map(|m| {
                    let zones = &nodes[m as usize].zones;
                    (0..zones.len())
                        .rev()
                        .filter(|&z| zones[z].is_populated())
                        .map(move |z| (m, z))
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
#[path = "page_alloc_tests.rs"]
mod tests;
