//! Counters: per-zone and per-node statistics and the global event
//! counters, with the names and order /proc/vmstat and /proc/zoneinfo print
//! (Linux 6.18 mm/vmstat.c `vmstat_text`). Only counters lmm models change;
//! the others stay 0 but are printed, so the files have Linux's shape.

use alloc::boxed::Box;
use core::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// Per-zone counters (`enum zone_stat_item`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(usize)]
#[allow(missing_docs)]
pub enum ZoneStat {
    NrFreePages,
    NrFreePagesBlocks,
    NrZoneInactiveAnon,
    NrZoneActiveAnon,
    NrZoneInactiveFile,
    NrZoneActiveFile,
    NrZoneUnevictable,
    NrZoneWritePending,
    NrMlock,
    NrZspages,
    NrFreeCma,
}

impl ZoneStat {
    /// Every item, in /proc order (the discriminants are 0..COUNT).
    pub const ALL: [ZoneStat; 11] = [
        ZoneStat::NrFreePages,
        ZoneStat::NrFreePagesBlocks,
        ZoneStat::NrZoneInactiveAnon,
        ZoneStat::NrZoneActiveAnon,
        ZoneStat::NrZoneInactiveFile,
        ZoneStat::NrZoneActiveFile,
        ZoneStat::NrZoneUnevictable,
        ZoneStat::NrZoneWritePending,
        ZoneStat::NrMlock,
        ZoneStat::NrZspages,
        ZoneStat::NrFreeCma,
    ];
    /// Number of items.
    pub const COUNT: usize = 11;
    /// Names in /proc order.
    pub const NAMES: [&'static str; 11] = [
        "nr_free_pages",
        "nr_free_pages_blocks",
        "nr_zone_inactive_anon",
        "nr_zone_active_anon",
        "nr_zone_inactive_file",
        "nr_zone_active_file",
        "nr_zone_unevictable",
        "nr_zone_write_pending",
        "nr_mlock",
        "nr_zspages",
        "nr_free_cma",
    ];
}

/// Per-zone NUMA allocation events (`enum numa_stat_item`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(usize)]
#[allow(missing_docs)]
pub enum NumaStat {
    NumaHit,
    NumaMiss,
    NumaForeign,
    NumaInterleave,
    NumaLocal,
    NumaOther,
}

impl NumaStat {
    /// Every item, in /proc order (the discriminants are 0..COUNT).
    pub const ALL: [NumaStat; 6] = [
        NumaStat::NumaHit,
        NumaStat::NumaMiss,
        NumaStat::NumaForeign,
        NumaStat::NumaInterleave,
        NumaStat::NumaLocal,
        NumaStat::NumaOther,
    ];
    /// Number of items.
    pub const COUNT: usize = 6;
    /// Names in /proc order.
    pub const NAMES: [&'static str; 6] = [
        "numa_hit",
        "numa_miss",
        "numa_foreign",
        "numa_interleave",
        "numa_local",
        "numa_other",
    ];
}

/// Per-node counters (`enum node_stat_item`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(usize)]
#[allow(missing_docs)]
pub enum NodeStat {
    NrInactiveAnon,
    NrActiveAnon,
    NrInactiveFile,
    NrActiveFile,
    NrUnevictable,
    NrSlabReclaimable,
    NrSlabUnreclaimable,
    NrIsolatedAnon,
    NrIsolatedFile,
    WorkingsetNodes,
    WorkingsetRefaultAnon,
    WorkingsetRefaultFile,
    WorkingsetActivateAnon,
    WorkingsetActivateFile,
    WorkingsetRestoreAnon,
    WorkingsetRestoreFile,
    WorkingsetNodereclaim,
    NrAnonPages,
    NrMapped,
    NrFilePages,
    NrDirty,
    NrWriteback,
    NrShmem,
    NrShmemHugepages,
    NrShmemPmdmapped,
    NrFileHugepages,
    NrFilePmdmapped,
    NrAnonTransparentHugepages,
    NrVmscanWrite,
    NrVmscanImmediateReclaim,
    NrDirtied,
    NrWritten,
    NrThrottledWritten,
    NrKernelMiscReclaimable,
    NrFollPinAcquired,
    NrFollPinReleased,
    NrKernelStack,
    NrPageTablePages,
    NrSecPageTablePages,
    NrIommuPages,
    NrSwapcached,
    PgpromoteSuccess,
    PgpromoteCandidate,
    PgpromoteCandidateNrl,
    PgdemoteKswapd,
    PgdemoteDirect,
    PgdemoteKhugepaged,
    PgdemoteProactive,
    NrHugetlb,
    NrBalloonPages,
    NrKernelFilePages,
}

impl NodeStat {
    /// Every item, in /proc order (the discriminants are 0..COUNT).
    pub const ALL: [NodeStat; 51] = [
        NodeStat::NrInactiveAnon,
        NodeStat::NrActiveAnon,
        NodeStat::NrInactiveFile,
        NodeStat::NrActiveFile,
        NodeStat::NrUnevictable,
        NodeStat::NrSlabReclaimable,
        NodeStat::NrSlabUnreclaimable,
        NodeStat::NrIsolatedAnon,
        NodeStat::NrIsolatedFile,
        NodeStat::WorkingsetNodes,
        NodeStat::WorkingsetRefaultAnon,
        NodeStat::WorkingsetRefaultFile,
        NodeStat::WorkingsetActivateAnon,
        NodeStat::WorkingsetActivateFile,
        NodeStat::WorkingsetRestoreAnon,
        NodeStat::WorkingsetRestoreFile,
        NodeStat::WorkingsetNodereclaim,
        NodeStat::NrAnonPages,
        NodeStat::NrMapped,
        NodeStat::NrFilePages,
        NodeStat::NrDirty,
        NodeStat::NrWriteback,
        NodeStat::NrShmem,
        NodeStat::NrShmemHugepages,
        NodeStat::NrShmemPmdmapped,
        NodeStat::NrFileHugepages,
        NodeStat::NrFilePmdmapped,
        NodeStat::NrAnonTransparentHugepages,
        NodeStat::NrVmscanWrite,
        NodeStat::NrVmscanImmediateReclaim,
        NodeStat::NrDirtied,
        NodeStat::NrWritten,
        NodeStat::NrThrottledWritten,
        NodeStat::NrKernelMiscReclaimable,
        NodeStat::NrFollPinAcquired,
        NodeStat::NrFollPinReleased,
        NodeStat::NrKernelStack,
        NodeStat::NrPageTablePages,
        NodeStat::NrSecPageTablePages,
        NodeStat::NrIommuPages,
        NodeStat::NrSwapcached,
        NodeStat::PgpromoteSuccess,
        NodeStat::PgpromoteCandidate,
        NodeStat::PgpromoteCandidateNrl,
        NodeStat::PgdemoteKswapd,
        NodeStat::PgdemoteDirect,
        NodeStat::PgdemoteKhugepaged,
        NodeStat::PgdemoteProactive,
        NodeStat::NrHugetlb,
        NodeStat::NrBalloonPages,
        NodeStat::NrKernelFilePages,
    ];
    /// Number of items.
    pub const COUNT: usize = 51;
    /// Names in /proc order.
    pub const NAMES: [&'static str; 51] = [
        "nr_inactive_anon",
        "nr_active_anon",
        "nr_inactive_file",
        "nr_active_file",
        "nr_unevictable",
        "nr_slab_reclaimable",
        "nr_slab_unreclaimable",
        "nr_isolated_anon",
        "nr_isolated_file",
        "workingset_nodes",
        "workingset_refault_anon",
        "workingset_refault_file",
        "workingset_activate_anon",
        "workingset_activate_file",
        "workingset_restore_anon",
        "workingset_restore_file",
        "workingset_nodereclaim",
        "nr_anon_pages",
        "nr_mapped",
        "nr_file_pages",
        "nr_dirty",
        "nr_writeback",
        "nr_shmem",
        "nr_shmem_hugepages",
        "nr_shmem_pmdmapped",
        "nr_file_hugepages",
        "nr_file_pmdmapped",
        "nr_anon_transparent_hugepages",
        "nr_vmscan_write",
        "nr_vmscan_immediate_reclaim",
        "nr_dirtied",
        "nr_written",
        "nr_throttled_written",
        "nr_kernel_misc_reclaimable",
        "nr_foll_pin_acquired",
        "nr_foll_pin_released",
        "nr_kernel_stack",
        "nr_page_table_pages",
        "nr_sec_page_table_pages",
        "nr_iommu_pages",
        "nr_swapcached",
        "pgpromote_success",
        "pgpromote_candidate",
        "pgpromote_candidate_nrl",
        "pgdemote_kswapd",
        "pgdemote_direct",
        "pgdemote_khugepaged",
        "pgdemote_proactive",
        "nr_hugetlb",
        "nr_balloon_pages",
        "nr_kernel_file_pages",
    ];
}

/// Global events (`enum vm_event_item`), without the per-zone groups pgalloc_*, allocstall_* and pgskip_*, which [`ZoneEvent`] holds.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(usize)]
#[allow(missing_docs)]
pub enum VmEvent {
    Pgpgin,
    Pgpgout,
    Pswpin,
    Pswpout,
    Pgfree,
    Pgactivate,
    Pgdeactivate,
    Pglazyfree,
    Pgfault,
    Pgmajfault,
    Pglazyfreed,
    Pgrefill,
    Pgreuse,
    PgstealKswapd,
    PgstealDirect,
    PgstealKhugepaged,
    PgstealProactive,
    PgscanKswapd,
    PgscanDirect,
    PgscanKhugepaged,
    PgscanProactive,
    PgscanDirectThrottle,
    PgscanAnon,
    PgscanFile,
    PgstealAnon,
    PgstealFile,
    ZoneReclaimSuccess,
    ZoneReclaimFailed,
    Pginodesteal,
    SlabsScanned,
    KswapdInodesteal,
    KswapdLowWmarkHitQuickly,
    KswapdHighWmarkHitQuickly,
    Pageoutrun,
    Pgrotated,
    DropPagecache,
    DropSlab,
    OomKill,
    NumaPteUpdates,
    NumaHugePteUpdates,
    NumaHintFaults,
    NumaHintFaultsLocal,
    NumaPagesMigrated,
    PgmigrateSuccess,
    PgmigrateFail,
    ThpMigrationSuccess,
    ThpMigrationFail,
    ThpMigrationSplit,
    CompactMigrateScanned,
    CompactFreeScanned,
    CompactIsolated,
    CompactStall,
    CompactFail,
    CompactSuccess,
    CompactDaemonWake,
    CompactDaemonMigrateScanned,
    CompactDaemonFreeScanned,
    HtlbBuddyAllocSuccess,
    HtlbBuddyAllocFail,
    UnevictablePgsCulled,
    UnevictablePgsScanned,
    UnevictablePgsRescued,
    UnevictablePgsMlocked,
    UnevictablePgsMunlocked,
    UnevictablePgsCleared,
    UnevictablePgsStranded,
    ThpFaultAlloc,
    ThpFaultFallback,
    ThpFaultFallbackCharge,
    ThpCollapseAlloc,
    ThpCollapseAllocFailed,
    ThpFileAlloc,
    ThpFileFallback,
    ThpFileFallbackCharge,
    ThpFileMapped,
    ThpSplitPage,
    ThpSplitPageFailed,
    ThpDeferredSplitPage,
    ThpUnderusedSplitPage,
    ThpSplitPmd,
    ThpScanExceedNonePte,
    ThpScanExceedSwapPte,
    ThpScanExceedSharePte,
    ThpSplitPud,
    ThpZeroPageAlloc,
    ThpZeroPageAllocFailed,
    ThpSwpout,
    ThpSwpoutFallback,
    BalloonInflate,
    BalloonDeflate,
    BalloonMigrate,
    SwapRa,
    SwapRaHit,
    SwpinZero,
    SwpoutZero,
    KsmSwpinCopy,
    CowKsm,
    Zswpin,
    Zswpout,
    Zswpwb,
    DirectMapLevel2Splits,
    DirectMapLevel3Splits,
    DirectMapLevel2Collapses,
    DirectMapLevel3Collapses,
}

impl VmEvent {
    /// Every item, in /proc order (the discriminants are 0..COUNT).
    pub const ALL: [VmEvent; 104] = [
        VmEvent::Pgpgin,
        VmEvent::Pgpgout,
        VmEvent::Pswpin,
        VmEvent::Pswpout,
        VmEvent::Pgfree,
        VmEvent::Pgactivate,
        VmEvent::Pgdeactivate,
        VmEvent::Pglazyfree,
        VmEvent::Pgfault,
        VmEvent::Pgmajfault,
        VmEvent::Pglazyfreed,
        VmEvent::Pgrefill,
        VmEvent::Pgreuse,
        VmEvent::PgstealKswapd,
        VmEvent::PgstealDirect,
        VmEvent::PgstealKhugepaged,
        VmEvent::PgstealProactive,
        VmEvent::PgscanKswapd,
        VmEvent::PgscanDirect,
        VmEvent::PgscanKhugepaged,
        VmEvent::PgscanProactive,
        VmEvent::PgscanDirectThrottle,
        VmEvent::PgscanAnon,
        VmEvent::PgscanFile,
        VmEvent::PgstealAnon,
        VmEvent::PgstealFile,
        VmEvent::ZoneReclaimSuccess,
        VmEvent::ZoneReclaimFailed,
        VmEvent::Pginodesteal,
        VmEvent::SlabsScanned,
        VmEvent::KswapdInodesteal,
        VmEvent::KswapdLowWmarkHitQuickly,
        VmEvent::KswapdHighWmarkHitQuickly,
        VmEvent::Pageoutrun,
        VmEvent::Pgrotated,
        VmEvent::DropPagecache,
        VmEvent::DropSlab,
        VmEvent::OomKill,
        VmEvent::NumaPteUpdates,
        VmEvent::NumaHugePteUpdates,
        VmEvent::NumaHintFaults,
        VmEvent::NumaHintFaultsLocal,
        VmEvent::NumaPagesMigrated,
        VmEvent::PgmigrateSuccess,
        VmEvent::PgmigrateFail,
        VmEvent::ThpMigrationSuccess,
        VmEvent::ThpMigrationFail,
        VmEvent::ThpMigrationSplit,
        VmEvent::CompactMigrateScanned,
        VmEvent::CompactFreeScanned,
        VmEvent::CompactIsolated,
        VmEvent::CompactStall,
        VmEvent::CompactFail,
        VmEvent::CompactSuccess,
        VmEvent::CompactDaemonWake,
        VmEvent::CompactDaemonMigrateScanned,
        VmEvent::CompactDaemonFreeScanned,
        VmEvent::HtlbBuddyAllocSuccess,
        VmEvent::HtlbBuddyAllocFail,
        VmEvent::UnevictablePgsCulled,
        VmEvent::UnevictablePgsScanned,
        VmEvent::UnevictablePgsRescued,
        VmEvent::UnevictablePgsMlocked,
        VmEvent::UnevictablePgsMunlocked,
        VmEvent::UnevictablePgsCleared,
        VmEvent::UnevictablePgsStranded,
        VmEvent::ThpFaultAlloc,
        VmEvent::ThpFaultFallback,
        VmEvent::ThpFaultFallbackCharge,
        VmEvent::ThpCollapseAlloc,
        VmEvent::ThpCollapseAllocFailed,
        VmEvent::ThpFileAlloc,
        VmEvent::ThpFileFallback,
        VmEvent::ThpFileFallbackCharge,
        VmEvent::ThpFileMapped,
        VmEvent::ThpSplitPage,
        VmEvent::ThpSplitPageFailed,
        VmEvent::ThpDeferredSplitPage,
        VmEvent::ThpUnderusedSplitPage,
        VmEvent::ThpSplitPmd,
        VmEvent::ThpScanExceedNonePte,
        VmEvent::ThpScanExceedSwapPte,
        VmEvent::ThpScanExceedSharePte,
        VmEvent::ThpSplitPud,
        VmEvent::ThpZeroPageAlloc,
        VmEvent::ThpZeroPageAllocFailed,
        VmEvent::ThpSwpout,
        VmEvent::ThpSwpoutFallback,
        VmEvent::BalloonInflate,
        VmEvent::BalloonDeflate,
        VmEvent::BalloonMigrate,
        VmEvent::SwapRa,
        VmEvent::SwapRaHit,
        VmEvent::SwpinZero,
        VmEvent::SwpoutZero,
        VmEvent::KsmSwpinCopy,
        VmEvent::CowKsm,
        VmEvent::Zswpin,
        VmEvent::Zswpout,
        VmEvent::Zswpwb,
        VmEvent::DirectMapLevel2Splits,
        VmEvent::DirectMapLevel3Splits,
        VmEvent::DirectMapLevel2Collapses,
        VmEvent::DirectMapLevel3Collapses,
    ];
    /// Number of items.
    pub const COUNT: usize = 104;
    /// Names in /proc order.
    pub const NAMES: [&'static str; 104] = [
        "pgpgin",
        "pgpgout",
        "pswpin",
        "pswpout",
        "pgfree",
        "pgactivate",
        "pgdeactivate",
        "pglazyfree",
        "pgfault",
        "pgmajfault",
        "pglazyfreed",
        "pgrefill",
        "pgreuse",
        "pgsteal_kswapd",
        "pgsteal_direct",
        "pgsteal_khugepaged",
        "pgsteal_proactive",
        "pgscan_kswapd",
        "pgscan_direct",
        "pgscan_khugepaged",
        "pgscan_proactive",
        "pgscan_direct_throttle",
        "pgscan_anon",
        "pgscan_file",
        "pgsteal_anon",
        "pgsteal_file",
        "zone_reclaim_success",
        "zone_reclaim_failed",
        "pginodesteal",
        "slabs_scanned",
        "kswapd_inodesteal",
        "kswapd_low_wmark_hit_quickly",
        "kswapd_high_wmark_hit_quickly",
        "pageoutrun",
        "pgrotated",
        "drop_pagecache",
        "drop_slab",
        "oom_kill",
        "numa_pte_updates",
        "numa_huge_pte_updates",
        "numa_hint_faults",
        "numa_hint_faults_local",
        "numa_pages_migrated",
        "pgmigrate_success",
        "pgmigrate_fail",
        "thp_migration_success",
        "thp_migration_fail",
        "thp_migration_split",
        "compact_migrate_scanned",
        "compact_free_scanned",
        "compact_isolated",
        "compact_stall",
        "compact_fail",
        "compact_success",
        "compact_daemon_wake",
        "compact_daemon_migrate_scanned",
        "compact_daemon_free_scanned",
        "htlb_buddy_alloc_success",
        "htlb_buddy_alloc_fail",
        "unevictable_pgs_culled",
        "unevictable_pgs_scanned",
        "unevictable_pgs_rescued",
        "unevictable_pgs_mlocked",
        "unevictable_pgs_munlocked",
        "unevictable_pgs_cleared",
        "unevictable_pgs_stranded",
        "thp_fault_alloc",
        "thp_fault_fallback",
        "thp_fault_fallback_charge",
        "thp_collapse_alloc",
        "thp_collapse_alloc_failed",
        "thp_file_alloc",
        "thp_file_fallback",
        "thp_file_fallback_charge",
        "thp_file_mapped",
        "thp_split_page",
        "thp_split_page_failed",
        "thp_deferred_split_page",
        "thp_underused_split_page",
        "thp_split_pmd",
        "thp_scan_exceed_none_pte",
        "thp_scan_exceed_swap_pte",
        "thp_scan_exceed_share_pte",
        "thp_split_pud",
        "thp_zero_page_alloc",
        "thp_zero_page_alloc_failed",
        "thp_swpout",
        "thp_swpout_fallback",
        "balloon_inflate",
        "balloon_deflate",
        "balloon_migrate",
        "swap_ra",
        "swap_ra_hit",
        "swpin_zero",
        "swpout_zero",
        "ksm_swpin_copy",
        "cow_ksm",
        "zswpin",
        "zswpout",
        "zswpwb",
        "direct_map_level2_splits",
        "direct_map_level3_splits",
        "direct_map_level2_collapses",
        "direct_map_level3_collapses",
    ];
}

/// Per-zone event groups printed once per zone type (`pgalloc_dma`, ...).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ZoneEvent {
    /// Pages allocated from the zone.
    PgAlloc,
    /// Direct-reclaim stalls for the zone.
    AllocStall,
    /// Pages skipped by reclaim because of their zone.
    PgSkip,
}

impl ZoneEvent {
    /// All groups in /proc/vmstat order.
    pub const ALL: [ZoneEvent; 3] = [ZoneEvent::PgAlloc, ZoneEvent::AllocStall, ZoneEvent::PgSkip];
    /// The name prefix.
    pub fn prefix(self) -> &'static str {
        match self {
            ZoneEvent::PgAlloc => "pgalloc",
            ZoneEvent::AllocStall => "allocstall",
            ZoneEvent::PgSkip => "pgskip",
        }
    }
}

/// `this_cpu_add`: a plain read-modify-write of a counter that only its CPU
/// writes (Linux disables preemption around it; here one host thread drives
/// a simulated CPU at a time), so the hot paths take no locked instruction.
#[inline]
pub fn this_cpu_add(c: &AtomicU64, n: u64) {
    c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
}

/// Counters of one zone. NUMA events are kept per CPU and summed on read,
/// as Linux's `vm_numa_event` per-CPU diffs are.
pub struct ZoneStats {
    stat: [AtomicI64; ZoneStat::COUNT],
    cpus: Box<[ZoneCpuStats]>,
}

/// One CPU's counters of a zone (`struct per_cpu_zonestat`), found once
/// per allocation or free: its NUMA events, and lmm's count of the pages
/// it took from the zone minus those it gave back (the conservation
/// check's `allocated`; Linux has no such counter). Written only by its
/// CPU ([`this_cpu_add`]).
#[derive(Default)]
pub struct ZoneCpuStats {
    numa: [AtomicU64; NumaStat::COUNT],
    allocated: AtomicU64,
}

impl ZoneCpuStats {
    /// Counts a NUMA event (`__count_numa_event`).
    #[inline]
    pub fn numa_inc(&self, item: NumaStat) {
        this_cpu_add(&self.numa[item as usize], 1);
    }
    /// Counts two NUMA events (`zone_statistics`: NUMA_HIT and NUMA_LOCAL,
    /// or NUMA_MISS and NUMA_OTHER).
    #[inline]
    pub fn numa_inc2(&self, a: NumaStat, b: NumaStat) {
        self.numa_inc(a);
        self.numa_inc(b);
    }
    /// Counts `n` pages taken from the zone.
    #[inline]
    pub fn charge(&self, n: u64) {
        this_cpu_add(&self.allocated, n);
    }
    /// Counts `n` pages given back to the zone.
    #[inline]
    pub fn uncharge(&self, n: u64) {
        this_cpu_add(&self.allocated, n.wrapping_neg());
    }
}

impl Default for ZoneStats {
    fn default() -> Self {
        Self::new(1)
    }
}

impl ZoneStats {
    /// Counters for a zone on a machine with `ncpus` CPUs.
    pub fn new(ncpus: usize) -> Self {
        Self {
            stat: core::array::from_fn(|_| AtomicI64::new(0)),
            cpus: (0..ncpus.max(1)).map(|_| ZoneCpuStats::default()).collect(),
        }
    }
    /// Adds `d` to a counter (`__mod_zone_page_state`).
    pub fn add(&self, item: ZoneStat, d: i64) {
        self.stat[item as usize].fetch_add(d, Relaxed);
    }
    /// Adds `d` with a plain read-modify-write, for counters whose writers
    /// all hold the same lock (NR_FREE_PAGES under the zone lock).
    #[inline]
    pub fn add_locked(&self, item: ZoneStat, d: i64) {
        let c = &self.stat[item as usize];
        c.store(c.load(Relaxed).wrapping_add(d), Relaxed);
    }
    /// Reads a counter (`zone_page_state`).
    #[inline]
    pub fn get(&self, item: ZoneStat) -> i64 {
        self.stat[item as usize].load(Relaxed)
    }
    /// `cpu`'s own counters of the zone (`this_cpu_ptr(zone->per_cpu_zonestats)`).
    #[inline]
    pub fn on(&self, cpu: usize) -> &ZoneCpuStats {
        &self.cpus[cpu]
    }
    /// Reads a NUMA event counter, summed over CPUs.
    pub fn numa(&self, item: NumaStat) -> u64 {
        self.cpus
            .iter()
            .map(|c| c.numa[item as usize].load(Relaxed))
            .sum()
    }
    /// Pages taken from the zone and not given back, summed over CPUs.
    pub fn allocated(&self) -> u64 {
        self.cpus
            .iter()
            .fold(0u64, |a, c| a.wrapping_add(c.allocated.load(Relaxed)))
    }
}

/// Counters of one node.
pub struct NodeStats {
    stat: [AtomicI64; NodeStat::COUNT],
}

impl Default for NodeStats {
    fn default() -> Self {
        Self {
            stat: core::array::from_fn(|_| AtomicI64::new(0)),
        }
    }
}

impl NodeStats {
    /// Adds `d` to a counter (`mod_node_page_state`).
    pub fn add(&self, item: NodeStat, d: i64) {
        self.stat[item as usize].fetch_add(d, Relaxed);
    }
    /// Reads a counter (`node_page_state`).
    pub fn get(&self, item: NodeStat) -> i64 {
        self.stat[item as usize].load(Relaxed)
    }
}

/// Maximum zones per node we keep per-zone event counters for.
pub const MAX_ZONES: usize = 5;

/// One CPU's event counters (its `vm_event_states`), written only by it.
pub struct CpuEvents {
    ev: [AtomicU64; VmEvent::COUNT],
    zone_ev: [[AtomicU64; MAX_ZONES]; 3],
}

impl CpuEvents {
    fn new() -> Self {
        Self {
            ev: core::array::from_fn(|_| AtomicU64::new(0)),
            zone_ev: core::array::from_fn(|_| core::array::from_fn(|_| AtomicU64::new(0))),
        }
    }
    /// `__count_vm_events` on this CPU.
    #[inline]
    pub fn count(&self, e: VmEvent, n: u64) {
        this_cpu_add(&self.ev[e as usize], n);
    }
    /// A per-zone-type event on this CPU (`__count_zid_vm_events`).
    #[inline]
    pub fn count_zone(&self, e: ZoneEvent, zone_idx: usize, n: u64) {
        this_cpu_add(&self.zone_ev[e as usize][zone_idx], n);
    }
}

/// Event counters (`vm_event_states`): one set per CPU, summed on read.
pub struct VmEvents {
    cpus: Box<[CpuEvents]>,
}

impl Default for VmEvents {
    fn default() -> Self {
        Self::new(1)
    }
}

impl VmEvents {
    /// Counters for `ncpus` CPUs.
    pub fn new(ncpus: usize) -> Self {
        Self {
            cpus: (0..ncpus.max(1)).map(|_| CpuEvents::new()).collect(),
        }
    }
    /// `count_vm_events` from any context.
    pub fn count(&self, e: VmEvent, n: u64) {
        self.cpus[0].ev[e as usize].fetch_add(n, Relaxed);
    }
    /// `__count_vm_events` on `cpu`'s own counters.
    #[inline]
    pub fn count_on(&self, cpu: usize, e: VmEvent, n: u64) {
        self.on(cpu).count(e, n);
    }
    /// `cpu`'s own counters (`this_cpu_ptr(&vm_event_states)`).
    #[inline]
    pub fn on(&self, cpu: usize) -> &CpuEvents {
        &self.cpus[cpu]
    }
    /// Reads an event counter, summed over CPUs.
    pub fn get(&self, e: VmEvent) -> u64 {
        self.cpus
            .iter()
            .map(|c| c.ev[e as usize].load(Relaxed))
            .sum()
    }
    /// `__count_zid_vm_events` from any context: a per-zone-type event.
    pub fn count_zone(&self, e: ZoneEvent, zone_idx: usize, n: u64) {
        self.cpus[0].zone_ev[e as usize][zone_idx].fetch_add(n, Relaxed);
    }
    /// A per-zone-type event on `cpu`'s own counters.
    #[inline]
    pub fn count_zone_on(&self, cpu: usize, e: ZoneEvent, zone_idx: usize, n: u64) {
        self.on(cpu).count_zone(e, zone_idx, n);
    }
    /// Reads a per-zone-type event counter, summed over CPUs.
    pub fn get_zone(&self, e: ZoneEvent, zone_idx: usize) -> u64 {
        self.cpus
            .iter()
            .map(|c| c.zone_ev[e as usize][zone_idx].load(Relaxed))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_linux_order() {
        // mm/vmstat.c vmstat_text: zone items start with nr_free_pages, node
        // items with nr_inactive_anon, events with pgpgin.
        assert_eq!(
            ZoneStat::NAMES[ZoneStat::NrFreePages as usize],
            "nr_free_pages"
        );
        assert_eq!(
            NodeStat::NAMES[NodeStat::NrInactiveAnon as usize],
            "nr_inactive_anon"
        );
        assert_eq!(
            NodeStat::NAMES[NodeStat::NrKernelStack as usize],
            "nr_kernel_stack"
        );
        assert_eq!(VmEvent::NAMES[0], "pgpgin");
        assert_eq!(VmEvent::NAMES[VmEvent::Pgfault as usize], "pgfault");
    }

    #[test]
    fn counters_add_up() {
        let z = ZoneStats::default();
        z.add(ZoneStat::NrFreePages, 10);
        z.add(ZoneStat::NrFreePages, -3);
        assert_eq!(z.get(ZoneStat::NrFreePages), 7);
        let e = VmEvents::default();
        e.count_zone(ZoneEvent::PgAlloc, 2, 8);
        e.count(VmEvent::Pgfree, 4);
        assert_eq!(e.get_zone(ZoneEvent::PgAlloc, 2), 8);
        assert_eq!(e.get(VmEvent::Pgfree), 4);
    }
}
