//! /proc/vmstat: zone, NUMA and node counters summed over the machine, the
//! dirty thresholds, memmap sizes, then the event counters, then the
//! deprecated `nr_unstable 0`.
//! Mirrors mm/vmstat.c `vmstat_start` / `vmstat_show` and the order of
//! `vmstat_text`; the dirty limits follow mm/page-writeback.c
//! `global_dirty_limits`.

use alloc::string::String;
use core::fmt::Write;

use crate::mmzone::Wmark;
use crate::mmzone::ZoneType;
use crate::page_alloc::PageAlloc;
use crate::proc::zoneinfo::node_stat_value;
use crate::proc::{clamp, totalreserve_pages};
use crate::types::PAGE_SIZE;
use crate::vmstat::{NodeStat, NumaStat, VmEvent, ZoneEvent, ZoneStat};

/// vm.dirty_ratio default: percent of dirtyable memory.
pub const DIRTY_RATIO: u64 = 20;
/// vm.dirty_background_ratio default.
pub const DIRTY_BACKGROUND_RATIO: u64 = 10;

/// Number of events before the per-zone groups (pgpgin..pswpout).
const EVENTS_BEFORE_ZONE_GROUPS: usize = VmEvent::Pgfree as usize;

/// The suffix of per-zone event names (`TEXTS_FOR_ZONES`): `dma`, `dma32`,
/// `normal`, `high`, `movable`, `device`.
pub fn zone_suffix(z: ZoneType) -> &'static str {
    match z {
        ZoneType::Dma => "dma",
        ZoneType::Dma32 => "dma32",
        ZoneType::Normal => "normal",
        ZoneType::HighMem => "high",
        ZoneType::Movable => "movable",
        ZoneType::Device => "device",
    }
}

/// Memory the dirty limits are a share of (mm/page-writeback.c
/// `global_dirtyable_memory`): free pages above `totalreserve_pages` plus
/// the file LRU pages, less highmem (vm.highmem_is_dirtyable is 0), plus 1.
pub fn global_dirtyable_memory(pa: &PageAlloc) -> u64 {
    let free = pa.nr_free_pages();
    let mut x = free - free.min(totalreserve_pages(pa));
    let file = |s: NodeStat| pa.nodes.iter().map(|n| clamp(n.stats.get(s))).sum::<u64>();
    x += file(NodeStat::NrInactiveFile) + file(NodeStat::NrActiveFile);
    // highmem_dirtyable_memory
    let high: u64 = pa
        .zones()
        .filter(|z| z.is_highmem())
        .map(|z| {
            let f = z.free_pages();
            f - f.min(z.wmark(Wmark::High))
                + clamp(z.stats.get(ZoneStat::NrZoneInactiveFile))
                + clamp(z.stats.get(ZoneStat::NrZoneActiveFile))
        })
        .sum();
    x -= high.min(x);
    x + 1
}

/// `(background, dirty)` thresholds in pages, for a non-realtime reader
/// (mm/page-writeback.c `domain_dirty_limits` with the default ratios and
/// no dirty_bytes: `ratio * PAGE_SIZE / 100 * available / PAGE_SIZE`, and
/// background at most half of the limit).
pub fn global_dirty_limits(pa: &PageAlloc) -> (u64, u64) {
    let avail = global_dirtyable_memory(pa);
    let thresh = (DIRTY_RATIO * PAGE_SIZE / 100) * avail / PAGE_SIZE;
    let mut bg = (DIRTY_BACKGROUND_RATIO * PAGE_SIZE / 100) * avail / PAGE_SIZE;
    if bg >= thresh {
        bg = thresh / 2;
    }
    (bg, thresh)
}

/// Pages of memmap allocated at boot (NR_MEMMAP_BOOT_PAGES): each node's
/// `struct page` slots (see [`crate::memmap::Memmap`]: per memory section
/// holding RAM on 64-bit, the whole span on 32-bit).
pub fn memmap_boot_pages(pa: &PageAlloc) -> u64 {
    pa.nodes
        .iter()
        .map(|n| n.zones[0].memmap().boot_pages())
        .sum()
}

/// Renders /proc/vmstat: `name value` lines. Zone and NUMA counters are
/// summed over zones, node counters over nodes (THP items in huge pages),
/// `nr_memmap_pages` is 0 (no memory hotplug), the per-zone event groups
/// list every zone type of the arch.
pub fn render(pa: &PageAlloc) -> String {
    let mut s = String::new();
    for (item, name) in ZoneStat::ALL.iter().zip(ZoneStat::NAMES) {
        let v: i64 = pa.zones().map(|z| z.stats.get(*item)).sum();
        let _ = writeln!(s, "{name} {}", clamp(v));
    }
    for (item, name) in NumaStat::ALL.iter().zip(NumaStat::NAMES) {
        let v: u64 = pa.zones().map(|z| z.stats.numa(*item)).sum();
        let _ = writeln!(s, "{name} {v}");
    }
    for (i, name) in NodeStat::NAMES.iter().enumerate() {
        let v: u64 = pa.nodes.iter().map(|n| node_stat_value(n, i)).sum();
        let _ = writeln!(s, "{name} {v}");
    }
    let (bg, thresh) = global_dirty_limits(pa);
    let _ = writeln!(s, "nr_dirty_threshold {thresh}");
    let _ = writeln!(s, "nr_dirty_background_threshold {bg}");
    let _ = writeln!(s, "nr_memmap_pages 0");
    let _ = writeln!(s, "nr_memmap_boot_pages {}", memmap_boot_pages(pa));
    let ev = &pa.events;
    for (i, name) in VmEvent::NAMES[..EVENTS_BEFORE_ZONE_GROUPS]
        .iter()
        .enumerate()
    {
        let _ = writeln!(s, "{name} {}", ev.get(event(i)));
    }
    for group in ZoneEvent::ALL {
        for (zi, &zt) in pa.arch.zones().iter().enumerate() {
            let v = ev.get_zone(group, zi);
            let _ = writeln!(s, "{}_{} {v}", group.prefix(), zone_suffix(zt));
        }
    }
    for (i, name) in VmEvent::NAMES
        .iter()
        .enumerate()
        .skip(EVENTS_BEFORE_ZONE_GROUPS)
    {
        let _ = writeln!(s, "{name} {}", ev.get(event(i)));
    }
    s.push_str("nr_unstable 0\n");
    s
}

/// The [`VmEvent`] with index `i`, found by name order.
fn event(i: usize) -> VmEvent {
    VmEvent::ALL[i]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;
    use crate::gfp::Gfp;
    use crate::mm_init::testing::boot;
    use crate::page_alloc::CpuId;
    use crate::proc::testing::host;
    use crate::types::Order;
    use alloc::vec::Vec;

    #[test]
    fn event_table_is_dense() {
        for (i, e) in VmEvent::ALL.iter().enumerate() {
            assert_eq!(*e as usize, i);
        }
    }

    #[test]
    fn golden_x86_64_64m() {
        // mm/vmstat.c vmstat_start/vmstat_show, order of vmstat_text.
        // Checked by eye: dirtyable = 15351 free - (47+242 + 878) reserve + 1
        // = 14185; thresholds 819*14185/4096 = 2836 and 409*14185/4096 = 1416;
        // memmap 16384 pages * 64 B / 4 KiB = 256; pgalloc/pgfree in pages,
        // pgfree with the boot's frees: 15104 free after boot, then the 4
        // freed here.
        let m = boot(Arch::X86_64, 64 << 20, 2);
        let p = m.pa.alloc_pages(CpuId(0), Gfp::KERNEL, Order(2)).unwrap();
        m.pa.alloc_pages(CpuId(0), Gfp::GFP_DMA, Order(0)).unwrap();
        m.pa.free_pages(CpuId(0), p, Order(2));
        let got = render(&m.pa);
        assert_eq!(got, GOLDEN_64M);
    }

    const GOLDEN_64M: &str = r#"nr_free_pages 15095
nr_free_pages_blocks 13824
nr_zone_inactive_anon 0
nr_zone_active_anon 0
nr_zone_inactive_file 0
nr_zone_active_file 0
nr_zone_unevictable 0
nr_zone_write_pending 0
nr_mlock 0
nr_zspages 0
nr_free_cma 0
numa_hit 2
numa_miss 0
numa_foreign 0
numa_interleave 0
numa_local 2
numa_other 0
nr_inactive_anon 0
nr_active_anon 0
nr_inactive_file 0
nr_active_file 0
nr_unevictable 0
nr_slab_reclaimable 0
nr_slab_unreclaimable 0
nr_isolated_anon 0
nr_isolated_file 0
workingset_nodes 0
workingset_refault_anon 0
workingset_refault_file 0
workingset_activate_anon 0
workingset_activate_file 0
workingset_restore_anon 0
workingset_restore_file 0
workingset_nodereclaim 0
nr_anon_pages 0
nr_mapped 0
nr_file_pages 0
nr_dirty 0
nr_writeback 0
nr_shmem 0
nr_shmem_hugepages 0
nr_shmem_pmdmapped 0
nr_file_hugepages 0
nr_file_pmdmapped 0
nr_anon_transparent_hugepages 0
nr_vmscan_write 0
nr_vmscan_immediate_reclaim 0
nr_dirtied 0
nr_written 0
nr_throttled_written 0
nr_kernel_misc_reclaimable 0
nr_foll_pin_acquired 0
nr_foll_pin_released 0
nr_kernel_stack 0
nr_page_table_pages 0
nr_sec_page_table_pages 0
nr_iommu_pages 0
nr_swapcached 0
pgpromote_success 0
pgpromote_candidate 0
pgpromote_candidate_nrl 0
pgdemote_kswapd 0
pgdemote_direct 0
pgdemote_khugepaged 0
pgdemote_proactive 0
nr_hugetlb 0
nr_balloon_pages 0
nr_kernel_file_pages 0
nr_dirty_threshold 2788
nr_dirty_background_threshold 1392
nr_memmap_pages 0
nr_memmap_boot_pages 512
pgpgin 0
pgpgout 0
pswpin 0
pswpout 0
pgalloc_dma 1
pgalloc_dma32 4
pgalloc_normal 0
pgalloc_movable 0
pgalloc_device 0
allocstall_dma 0
allocstall_dma32 0
allocstall_normal 0
allocstall_movable 0
allocstall_device 0
pgskip_dma 0
pgskip_dma32 0
pgskip_normal 0
pgskip_movable 0
pgskip_device 0
pgfree 15108
pgactivate 0
pgdeactivate 0
pglazyfree 0
pgfault 0
pgmajfault 0
pglazyfreed 0
pgrefill 0
pgreuse 0
pgsteal_kswapd 0
pgsteal_direct 0
pgsteal_khugepaged 0
pgsteal_proactive 0
pgscan_kswapd 0
pgscan_direct 0
pgscan_khugepaged 0
pgscan_proactive 0
pgscan_direct_throttle 0
pgscan_anon 0
pgscan_file 0
pgsteal_anon 0
pgsteal_file 0
zone_reclaim_success 0
zone_reclaim_failed 0
pginodesteal 0
slabs_scanned 0
kswapd_inodesteal 0
kswapd_low_wmark_hit_quickly 0
kswapd_high_wmark_hit_quickly 0
pageoutrun 0
pgrotated 0
drop_pagecache 0
drop_slab 0
oom_kill 0
numa_pte_updates 0
numa_huge_pte_updates 0
numa_hint_faults 0
numa_hint_faults_local 0
numa_pages_migrated 0
pgmigrate_success 0
pgmigrate_fail 0
thp_migration_success 0
thp_migration_fail 0
thp_migration_split 0
compact_migrate_scanned 0
compact_free_scanned 0
compact_isolated 0
compact_stall 0
compact_fail 0
compact_success 0
compact_daemon_wake 0
compact_daemon_migrate_scanned 0
compact_daemon_free_scanned 0
htlb_buddy_alloc_success 0
htlb_buddy_alloc_fail 0
unevictable_pgs_culled 0
unevictable_pgs_scanned 0
unevictable_pgs_rescued 0
unevictable_pgs_mlocked 0
unevictable_pgs_munlocked 0
unevictable_pgs_cleared 0
unevictable_pgs_stranded 0
thp_fault_alloc 0
thp_fault_fallback 0
thp_fault_fallback_charge 0
thp_collapse_alloc 0
thp_collapse_alloc_failed 0
thp_file_alloc 0
thp_file_fallback 0
thp_file_fallback_charge 0
thp_file_mapped 0
thp_split_page 0
thp_split_page_failed 0
thp_deferred_split_page 0
thp_underused_split_page 0
thp_split_pmd 0
thp_scan_exceed_none_pte 0
thp_scan_exceed_swap_pte 0
thp_scan_exceed_share_pte 0
thp_split_pud 0
thp_zero_page_alloc 0
thp_zero_page_alloc_failed 0
thp_swpout 0
thp_swpout_fallback 0
balloon_inflate 0
balloon_deflate 0
balloon_migrate 0
swap_ra 0
swap_ra_hit 0
swpin_zero 0
swpout_zero 0
ksm_swpin_copy 0
cow_ksm 0
zswpin 0
zswpout 0
zswpwb 0
direct_map_level2_splits 0
direct_map_level3_splits 0
direct_map_level2_collapses 0
direct_map_level3_collapses 0
nr_unstable 0
"#;

    #[test]
    fn names_match_host_x86_64() {
        let m = boot(Arch::X86_64, 64 << 20, 1);
        let ours = render(&m.pa);
        let name = |l: &str| String::from(l.split(' ').next().unwrap());
        let ours: Vec<_> = ours.lines().map(name).collect();
        let hostf: Vec<_> = host("vmstat.txt").lines().map(name).collect();
        assert_eq!(ours, hostf);
    }

    #[test]
    fn golden_64m_values_follow_linux_formulas() {
        // The numbers of GOLDEN_64M that a formula gives, against Linux
        // 6.18's rules evaluated from first principles
        // (proc::testing::linux_64m); the counters are state.
        let want = crate::proc::testing::linux_64m::derive();
        let v = |name: &str| -> u64 {
            GOLDEN_64M
                .lines()
                .find_map(|l| crate::proc::testing::field(l, name))
                .unwrap_or_else(|| panic!("no {name}"))
                .parse()
                .unwrap()
        };
        // global_dirtyable_memory (mm/page-writeback.c): NR_FREE_PAGES less
        // totalreserve_pages, plus the file LRU pages (none), plus 1.
        let avail = v("nr_free_pages") - want.totalreserve
            + v("nr_active_file")
            + v("nr_inactive_file")
            + 1;
        // domain_dirty_limits: ratios converted per PAGE_SIZE (20% -> 819,
        // 10% -> 409), thresh = ratio * available / PAGE_SIZE.
        assert_eq!(v("nr_dirty_threshold"), (20 * 4096 / 100) * avail / 4096);
        assert_eq!(
            v("nr_dirty_background_threshold"),
            (10 * 4096 / 100) * avail / 4096
        );
        // The boot memmap: 16384 struct pages of 64 bytes.
        assert_eq!(v("nr_memmap_boot_pages"), want.memmap_pages);
        assert_eq!(v("nr_memmap_pages"), 0);
        // pgalloc_* count pages (1 << order per allocation): an order-2
        // Normal-or-lower kernel allocation lands in DMA32 (the highest
        // populated zone of GFP_KERNEL's zonelist), the GFP_DMA one in DMA.
        assert_eq!((v("pgalloc_dma"), v("pgalloc_dma32")), (1, 4));
    }

    #[test]
    fn dirty_limits_follow_linux_formula() {
        // mm/page-writeback.c: available = free - totalreserve + file + 1;
        // thresh = (20 * 4096 / 100) * available / 4096; bg likewise with 10.
        let m = boot(Arch::X86_64, 64 << 20, 1);
        let avail = m.pa.nr_free_pages() - totalreserve_pages(&m.pa) + 1;
        assert_eq!(global_dirtyable_memory(&m.pa), avail);
        assert_eq!(
            global_dirty_limits(&m.pa),
            (409 * avail / 4096, 819 * avail / 4096)
        );
    }

    #[test]
    fn highmem_arch_names_pgalloc_high() {
        let m = boot(Arch::X86, 1 << 30, 1);
        let v = render(&m.pa);
        assert!(v.contains("pgalloc_dma 0\npgalloc_normal "), "{v}");
        assert!(v.contains("\npgalloc_high "), "{v}");
        assert!(v.contains("\npgskip_movable 0\npgfree "), "{v}");
        assert!(!v.contains("dma32"), "{v}");
    }
}
