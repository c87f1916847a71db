//! Nodes and zones: `pg_data_t` and `struct zone`, zone types and migrate
//! types. Mirrors include/linux/mmzone.h.

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

    /// From an index; `None` when out of range.
    pub fn from_idx(i: usize) -> Option<MigrateType> {
        Self::ALL.get(i).copied()
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
