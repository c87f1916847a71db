//! Nodes and zones: `pg_data_t` and `struct zone`, zone types and migrate
//! types. Mirrors include/linux/mmzone.h.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};

use crate::memmap::{Memmap, PageFlags, PageList};
use crate::page_alloc::{pcp_allowed_order, CpuId};
use crate::types::{Order, Pfn};
use crate::vmstat::{NodeStats, ZoneStat, ZoneStats, MAX_ZONES};

/// MAX_PAGE_ORDER: the largest buddy order (4 MiB blocks with 4 KiB pages).
pub const MAX_PAGE_ORDER: u8 = 10;
/// NR_PAGE_ORDERS: number of buddy orders, 0..=MAX_PAGE_ORDER.
pub const NR_PAGE_ORDERS: usize = MAX_PAGE_ORDER as usize + 1;
/// pageblock_order on x86-64 (= HUGETLB_PAGE_ORDER, 2 MiB).
pub const PAGEBLOCK_ORDER: u8 = 9;
/// Pages in a pageblock.
pub const PAGEBLOCK_NR_PAGES: u64 = 1 << PAGEBLOCK_ORDER;
/// PAGE_ALLOC_COSTLY_ORDER: above this, allocations are "costly".
pub const PAGE_ALLOC_COSTLY_ORDER: u8 = 3;

/// Zone types in Linux's zone-index order.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ZoneType {
    Dma,
    Dma32,
    Normal,
    HighMem,
    Movable,
    /// ZONE_DEVICE: for device memory; never populated here, but present in
    /// the x86-64 reference config, so zoneinfo lists it.
    Device,
}

impl ZoneType {
    /// The name /proc prints (mm/page_alloc.c `zone_names`).
    pub fn name(self) -> &'static str {
        match self {
            ZoneType::Dma => "DMA",
            ZoneType::Dma32 => "DMA32",
            ZoneType::Normal => "Normal",
            ZoneType::HighMem => "HighMem",
            ZoneType::Movable => "Movable",
            ZoneType::Device => "Device",
        }
    }
}

/// Migrate types of free pages and pageblocks (include/linux/mmzone.h).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum MigrateType {
    Unmovable = 0,
    Movable = 1,
    Reclaimable = 2,
    HighAtomic = 3,
    Isolate = 4,
}

/// Migrate types that have per-CPU lists (MIGRATE_PCPTYPES).
pub const MIGRATE_PCPTYPES: usize = 3;
/// Number of migrate types (no CMA: CONFIG_CMA is off in our reference).
pub const MIGRATE_TYPES: usize = 5;

impl MigrateType {
    /// All migrate types in index order.
    pub const ALL: [MigrateType; MIGRATE_TYPES] = [
        MigrateType::Unmovable,
        MigrateType::Movable,
        MigrateType::Reclaimable,
        MigrateType::HighAtomic,
        MigrateType::Isolate,
    ];

    /// The name /proc/pagetypeinfo prints (`migratetype_names`).
    pub fn name(self) -> &'static str {
        match self {
            MigrateType::Unmovable => "Unmovable",
            MigrateType::Movable => "Movable",
            MigrateType::Reclaimable => "Reclaimable",
            MigrateType::HighAtomic => "HighAtomic",
            MigrateType::Isolate => "Isolate",
        }
    }

    /// The index into per-type arrays.
    pub fn idx(self) -> usize {
        self as usize
    }

    /// From an index; `None` when out of range. A match, which compiles
    /// to a range check (the per-CPU free path decodes a pageblock's type
    /// with it).
    #[inline]
    pub fn from_idx(i: usize) -> Option<MigrateType> {
        use MigrateType::*;
        match i {
            0 => Some(Unmovable),
            1 => Some(Movable),
            2 => Some(Reclaimable),
            3 => Some(HighAtomic),
            4 => Some(Isolate),
            _ => None,
        }
    }

    /// Linux's fallback order when this type's free lists are empty
    /// (mm/page_alloc.c `fallbacks[]`): the other two PCP types.
    pub fn fallbacks(self) -> &'static [MigrateType] {
        use MigrateType::*;
        match self {
            Unmovable => &[Reclaimable, Movable],
            Movable => &[Reclaimable, Unmovable],
            Reclaimable => &[Unmovable, Movable],
            HighAtomic | Isolate => &[],
        }
    }
}

/// Watermark levels (`enum zone_watermarks`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Wmark {
    Min = 0,
    Low = 1,
    High = 2,
    Promo = 3,
}

/// Per-CPU list count: three PCP migrate types for each order up to
/// PAGE_ALLOC_COSTLY_ORDER, plus one list for pageblock-order (THP) pages.
pub const NR_PCP_LISTS: usize = MIGRATE_PCPTYPES * (PAGE_ALLOC_COSTLY_ORDER as usize + 1) + 1;

/// One CPU's cache of free pages for one zone (`struct per_cpu_pages`).
#[derive(Default)]
pub struct PerCpuPages {
    /// Pages on the lists.
    pub count: u64,
    /// Drain back to the buddy lists at this many pages. Starts at 0 and is
    /// raised to `high_min` when the lists are first used, allocating or
    /// freeing (Linux then tunes it between `high_min` and `high_max` and
    /// decays it back every second; we keep it at `high_min`: a simplification).
    pub high: u64,
    /// Lower bound of `high`.
    pub high_min: u64,
    /// Upper bound of `high`.
    pub high_max: u64,
    /// Pages moved to or from the buddy lists at a time.
    pub batch: u64,
    pub(crate) lists: [PageList; NR_PCP_LISTS],
}

/// A zone's free lists (`struct free_area[NR_PAGE_ORDERS]`), under the zone lock.
///
/// Deferred struct-page initialisation: the max-order blocks of the
/// `deferred` ranges are free and counted, but their struct pages stay
/// untouched until the allocator first needs them, the way
/// DEFERRED_STRUCT_PAGE_INIT spares boot from walking a huge memmap. They are
/// taken, lowest address first, after the linked Movable max-order blocks.
pub struct FreeArea {
    pub(crate) lists: [[PageList; MIGRATE_TYPES]; NR_PAGE_ORDERS],
    pub(crate) nr_free: [[u64; MIGRATE_TYPES]; NR_PAGE_ORDERS],
    /// Deferred PFN ranges `(start, end)`, highest first (taken from the back).
    pub(crate) deferred: Vec<(u64, u64)>,
}

impl FreeArea {
    pub(crate) fn new() -> Self {
        Self {
            lists: [[PageList::new(); MIGRATE_TYPES]; NR_PAGE_ORDERS],
            nr_free: [[0; MIGRATE_TYPES]; NR_PAGE_ORDERS],
            deferred: Vec::new(),
        }
    }
    /// Free blocks of `order` and migrate type `mt`.
    pub fn nr_free(&self, order: usize, mt: MigrateType) -> u64 {
        self.nr_free[order][mt.idx()]
    }
    /// Free blocks of `order`, all types (`free_area[order].nr_free`).
    pub fn nr_free_order(&self, order: usize) -> u64 {
        self.nr_free[order].iter().sum()
    }
    /// The list of free blocks of `order` and `mt`.
    pub fn list(&self, order: usize, mt: MigrateType) -> &PageList {
        &self.lists[order][mt.idx()]
    }
    /// Deferred (not yet initialised) max-order blocks, as PFN ranges.
    pub fn deferred(&self) -> impl Iterator<Item = (Pfn, Pfn)> + '_ {
        self.deferred.iter().rev().map(|&(s, e)| (Pfn(s), Pfn(e)))
    }
}

/// A memory zone (`struct zone`).
pub struct Zone {
    /// What kind of zone.
    pub ztype: ZoneType,
    /// Index of the zone in its node (and in the arch's zone list).
    pub idx: usize,
    /// Node the zone belongs to.
    pub nid: u32,
    /// First PFN spanned.
    pub start_pfn: Pfn,
    /// PFNs spanned, holes included.
    pub spanned: u64,
    /// PFNs of RAM in the span.
    pub present: u64,
    pub(crate) managed: AtomicU64,
    pub(crate) wmark: [AtomicU64; 4],
    pub(crate) lowmem_reserve: [AtomicU64; MAX_ZONES],
    pub(crate) area: spin::Mutex<FreeArea>,
    pub(crate) pcp: Box<[spin::Mutex<PerCpuPages>]>,
    pub(crate) memmap: Memmap,
    pub(crate) pageblock_base: u64,
    pub(crate) pageblock_mt: Box<[AtomicU8]>,
    /// The zone's counters; their per-CPU part also counts the pages
    /// handed out and not yet freed (the CPU that allocated adds, the one
    /// that frees subtracts), for the conservation check.
    pub stats: ZoneStats,
    /// Per-CPU lists bypassed (`zone_pcp_disable`, as memory hotplug does).
    pub(crate) pcp_disabled: AtomicBool,
    /// Free blocks per order of the PCP migrate types, and of HighAtomic:
    /// what the watermark check reads without taking the zone lock.
    pub(crate) free_blocks: [AtomicU64; NR_PAGE_ORDERS],
    pub(crate) free_highatomic: [AtomicU64; NR_PAGE_ORDERS],
    pub(crate) trace: alloc::sync::Arc<crate::trace::Trace>,
    /// The RAM, told of each max-order block the zone starts handing out
    /// ([`crate::direct_map::DirectMap::prepare`]).
    pub(crate) ram: crate::direct_map::DirectMap,
}

impl Zone {
    /// Builds an empty zone spanning `[start, start+spanned)` whose struct
    /// pages are in `memmap`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        ztype: ZoneType,
        idx: usize,
        nid: u32,
        start: Pfn,
        spanned: u64,
        present: u64,
        memmap: Memmap,
        ncpus: usize,
        trace: alloc::sync::Arc<crate::trace::Trace>,
        ram: crate::direct_map::DirectMap,
    ) -> Zone {
        let pageblock_base = start.0 & !(PAGEBLOCK_NR_PAGES - 1);
        let blocks = if spanned == 0 {
            0
        } else {
            (start.0 + spanned - pageblock_base).div_ceil(PAGEBLOCK_NR_PAGES)
        };
        Zone {
            ztype,
            idx,
            nid,
            start_pfn: start,
            spanned,
            present,
            managed: AtomicU64::new(0),
            wmark: Default::default(),
            lowmem_reserve: Default::default(),
            area: spin::Mutex::new(FreeArea::new()),
            pcp: (0..ncpus)
                .map(|_| spin::Mutex::new(PerCpuPages::default()))
                .collect(),
            memmap: memmap.with_window(start, Pfn(start.0 + spanned)),
            pageblock_base,
            pageblock_mt: (0..blocks)
                .map(|_| AtomicU8::new(MigrateType::Movable as u8))
                .collect(),
            stats: ZoneStats::new(ncpus),
            pcp_disabled: AtomicBool::new(false),
            free_blocks: Default::default(),
            free_highatomic: Default::default(),
            trace,
            ram,
        }
    }

    /// Lock-free free-block summary of one order: (PCP types, HighAtomic).
    pub(crate) fn free_block_summary(&self, order: usize) -> (u64, u64) {
        (
            self.free_blocks[order].load(Relaxed),
            self.free_highatomic[order].load(Relaxed),
        )
    }

    /// True if small blocks of `order` go through the per-CPU lists here.
    #[inline]
    pub(crate) fn uses_pcp(&self, order: Order) -> bool {
        pcp_allowed_order(order) && !self.pcp_disabled.load(Relaxed)
    }

    /// Pages allocated from this zone and not yet freed.
    pub fn allocated(&self) -> u64 {
        self.stats.allocated()
    }

    /// One past the last PFN spanned.
    pub fn end_pfn(&self) -> Pfn {
        Pfn(self.start_pfn.0 + self.spanned)
    }
    /// True if `pfn` is inside the zone's span.
    #[inline]
    pub fn spans(&self, pfn: Pfn) -> bool {
        pfn.0 >= self.start_pfn.0 && pfn.0 < self.start_pfn.0 + self.spanned
    }
    /// Pages handed to the buddy allocator (`zone_managed_pages`).
    #[inline]
    pub fn managed(&self) -> u64 {
        self.managed.load(Relaxed)
    }
    /// True if the zone has pages to give (`populated_zone`).
    pub fn is_populated(&self) -> bool {
        self.present > 0
    }
    /// True for ZONE_HIGHMEM (`is_highmem`).
    pub fn is_highmem(&self) -> bool {
        self.ztype == ZoneType::HighMem
    }
    /// A watermark, in pages.
    #[inline]
    pub fn wmark(&self, w: Wmark) -> u64 {
        self.wmark[w as usize].load(Relaxed)
    }
    /// `lowmem_reserve[j]`: pages kept back from allocations that could have
    /// used zone `j`.
    #[inline]
    pub fn lowmem_reserve(&self, j: usize) -> u64 {
        self.lowmem_reserve[j].load(Relaxed)
    }
    /// Free pages in the buddy lists (NR_FREE_PAGES).
    #[inline]
    pub fn free_pages(&self) -> u64 {
        self.stats.get(ZoneStat::NrFreePages).max(0) as u64
    }
    /// The struct page of a frame in this zone's node.
    #[inline]
    pub fn page(&self, pfn: Pfn) -> &crate::memmap::Page {
        self.memmap.page(pfn)
    }
    /// The memmap of the zone's node.
    pub fn memmap(&self) -> &Memmap {
        &self.memmap
    }
    /// Locks the free area (the zone lock).
    pub fn lock_area(&self) -> spin::MutexGuard<'_, FreeArea> {
        self.area.lock()
    }
    /// Locks one CPU's page lists for this zone.
    pub fn lock_pcp(&self, cpu: CpuId) -> spin::MutexGuard<'_, PerCpuPages> {
        self.pcp[cpu.0].lock()
    }
    /// Number of CPUs with page lists.
    pub fn nr_cpus(&self) -> usize {
        self.pcp.len()
    }
    /// Migrate type of the pageblock holding `pfn` (`get_pageblock_migratetype`).
    #[inline]
    pub fn pageblock_mt(&self, pfn: Pfn) -> MigrateType {
        let i = ((pfn.0 - self.pageblock_base) / PAGEBLOCK_NR_PAGES) as usize;
        MigrateType::from_idx(self.pageblock_mt[i].load(Relaxed) as usize)
            .unwrap_or(MigrateType::Movable)
    }
    pub(crate) fn set_pageblock_mt(&self, pfn: Pfn, mt: MigrateType) {
        let i = ((pfn.0 - self.pageblock_base) / PAGEBLOCK_NR_PAGES) as usize;
        self.pageblock_mt[i].store(mt as u8, Relaxed);
    }
    /// Pageblocks of each migrate type in the zone (pagetypeinfo): stepping
    /// a pageblock at a time from the zone's first PFN and counting blocks
    /// whose first page is RAM, as `pagetypeinfo_showblockitertypes` does.
    pub fn pageblock_counts(&self) -> [u64; MIGRATE_TYPES] {
        let mut c = [0; MIGRATE_TYPES];
        let area = self.area.lock();
        let deferred = |p: u64| area.deferred.iter().any(|&(s, e)| p >= s && p < e);
        let mut pfn = self.start_pfn.0;
        while pfn < self.end_pfn().0 {
            if self.memmap.contains(Pfn(pfn))
                && (self.page(Pfn(pfn)).test(PageFlags::INIT) || deferred(pfn))
            {
                c[self.pageblock_mt(Pfn(pfn)).idx()] += 1;
            }
            pfn += PAGEBLOCK_NR_PAGES;
        }
        c
    }
}

/// A node (`pg_data_t`).
pub struct Node {
    /// Node id.
    pub nid: u32,
    /// First PFN of the node.
    pub start_pfn: Pfn,
    /// PFNs spanned.
    pub spanned: u64,
    /// PFNs present.
    pub present: u64,
    /// The node's zones, in the arch's zone order.
    pub zones: Vec<Zone>,
    /// The node's counters.
    pub stats: NodeStats,
    /// The node's LRU lists under its `lru_lock` (`pgdat->__lruvec`).
    pub lruvec: spin::Mutex<crate::swap::Lruvec>,
    /// The node's kswapd: whether it was woken and for what.
    pub kswapd: crate::vmscan::KswapdState,
}
