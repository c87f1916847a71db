//! Tests of the buddy allocator; each rule cites where Linux states it.

use super::*;
use crate::debug::{check_page_alloc, free_area_snapshot};
use crate::mm_init::testing::boot;
use crate::mmzone::NR_PAGE_ORDERS;
use crate::types::PhysAddr;
use alloc::string::String;
use alloc::vec;
use proptest::prelude::*;

const CPU0: CpuId = CpuId(0);

#[test]
fn watermarks_match_this_machines_zoneinfo() {
    // tests/host/zoneinfo.txt, min_free_kbytes 67584, scale factor 10:
    // managed DMA 3840, DMA32 772917, Normal 196608, Movable 0, Device 0.
    let lowmem = 3840 + 772917 + 196608;
    assert_eq!(
        watermarks(67584, 10, lowmem, 3840, false),
        [66, 82, 98, 114]
    );
    assert_eq!(
        watermarks(67584, 10, lowmem, 772917, false),
        [13416, 16770, 20124, 23478]
    );
    assert_eq!(
        watermarks(67584, 10, lowmem, 196608, false),
        [3412, 4265, 5118, 5971]
    );
    // Movable is capped like highmem: clamp(managed/1024, 32, 128).
    assert_eq!(watermarks(67584, 10, lowmem, 0, true), [32, 32, 32, 32]);
    assert_eq!(watermarks(67584, 10, lowmem, 0, false), [0, 0, 0, 0]);
}

#[test]
fn linux_facts_worked_watermark_example() {
    // linux-facts 6.7: one zone of 262144 managed pages (1 GiB lowmem ->
    // min_free_kbytes 4096) gives min 1024, low 1286, high 1548, promo 1810.
    assert_eq!(int_sqrt(262144 * 4 * 16), 4096);
    assert_eq!(
        watermarks(4096, 10, 262144, 262144, false),
        [1024, 1286, 1548, 1810]
    );
}

#[test]
fn lowmem_reserve_matches_this_machines_protection_lines() {
    // zoneinfo "protection: (0, 3019, 3787, 3787, 3787)" and "(0, 0, 768, 768, 768)".
    let r = lowmem_reserve(&[3840, 772917, 196608, 0, 0], &[256, 256, 32, 0, 0]);
    assert_eq!(r[0], [0, 3019, 3787, 3787, 3787]);
    assert_eq!(r[1], [0, 0, 768, 768, 768]);
    assert_eq!(r[2], [0; 5]);
}

#[test]
fn pcp_sizes_and_thresholds_match_this_machine() {
    // zoneinfo pagesets on 2 CPUs: DMA batch 1 high_min 41 high_max 240,
    // DMA32 63/8385/48307, Normal 63/2132/12288; thresholds 4, 24, 16.
    assert_eq!(pcp_sizes(3840, 82, 2), (1, 41, 240));
    assert_eq!(pcp_sizes(772917, 16770, 2), (63, 8385, 48307));
    assert_eq!(pcp_sizes(196608, 4265, 2), (63, 2132, 12288));
    assert_eq!(stat_threshold(3840, 2), 4);
    assert_eq!(stat_threshold(772917, 2), 24);
    assert_eq!(stat_threshold(196608, 2), 16);
}

#[test]
fn thp_recommended_min_free_kbytes_for_three_zones() {
    // set_recommended_min_free_kbytes: 512*3*2 + 512*3*9 pages = 67584 kB,
    // the value this machine reports with three populated lowmem zones.
    let m = boot(Arch::X86_64, 6 << 30, 2);
    assert_eq!(m.pa.sysctl().min_free_kbytes, 67584);
}

#[test]
fn pcp_round_trip_restores_buddy_state() {
    let m = boot(Arch::X86_64, 64 << 20, 2);
    let before = free_area_snapshot(&m.pa);
    let free0 = m.pa.nr_free_pages();
    // Boot's frees are in pgfree already: count from here.
    let pgfree0 = m.pa.events.get(VmEvent::Pgfree);
    let p = m.pa.alloc_pages(CPU0, Gfp::KERNEL, Order(0)).unwrap();
    // The refill took a whole batch off the buddy lists.
    let batch = m.pa.zone_of(p).unwrap().lock_pcp(CPU0).batch;
    assert_eq!(m.pa.nr_free_pages(), free0 - batch);
    assert_eq!(m.pa.page(p).unwrap().refcount(), 1);
    check_page_alloc(&m.pa).unwrap();
    m.pa.free_pages(CPU0, p, Order(0));
    check_page_alloc(&m.pa).unwrap();
    assert_eq!(m.pa.nr_pcp_pages(), batch);
    m.pa.drain_all_pages();
    assert_eq!(free_area_snapshot(&m.pa), before);
    assert_eq!(m.pa.events.get(VmEvent::Pgfree) - pgfree0, 1);
}

#[test]
fn allocation_takes_lowest_block_and_splits_upper_halves() {
    // __rmqueue_smallest: the block keeps its lower half; each upper half goes
    // to the next lower order's list.
    let m = boot(Arch::X86_64, 64 << 20, 1);
    let p =
        m.pa.alloc_pages(CPU0, Gfp::KERNEL | Gfp::DMA, Order(4))
            .unwrap();
    assert!(p.is_aligned(Order(4)));
    let z = m.pa.zone_of(p).unwrap();
    assert_eq!(z.ztype, ZoneType::Dma);
    check_page_alloc(&m.pa).unwrap();
    m.pa.free_pages(CPU0, p, Order(4));
    check_page_alloc(&m.pa).unwrap();
}

#[test]
fn gfp_zone_modifiers_pick_zones() {
    let m = boot(Arch::X86_64, 6 << 30, 1);
    let zt = |g: Gfp| {
        let p = m.pa.alloc_pages(CPU0, g, Order(5)).unwrap();
        let t = m.pa.zone_of(p).unwrap().ztype;
        m.pa.free_pages(CPU0, p, Order(5));
        t
    };
    assert_eq!(zt(Gfp::KERNEL), ZoneType::Normal);
    assert_eq!(zt(Gfp::KERNEL | Gfp::DMA32), ZoneType::Dma32);
    assert_eq!(zt(Gfp::KERNEL | Gfp::DMA), ZoneType::Dma);
    // No HighMem on x86-64: __GFP_HIGHMEM means Normal.
    assert_eq!(zt(Gfp::HIGHUSER_MOVABLE), ZoneType::Normal);
    check_page_alloc(&m.pa).unwrap();
}

#[test]
fn highmem_allocations_prefer_highmem_on_x86_32() {
    let m = boot(Arch::X86, 2 << 30, 1);
    let p = m.pa.alloc_pages(CPU0, Gfp::HIGHUSER, Order(0)).unwrap();
    assert_eq!(m.pa.zone_of(p).unwrap().ztype, ZoneType::HighMem);
    let k = m.pa.alloc_pages(CPU0, Gfp::KERNEL, Order(0)).unwrap();
    assert_eq!(m.pa.zone_of(k).unwrap().ztype, ZoneType::Normal);
}

#[test]
fn zero_flag_clears_real_bytes() {
    let m = boot(Arch::X86_64, 64 << 20, 1);
    let dm = m.pa.direct_map();
    let p = m.pa.alloc_pages(CPU0, Gfp::KERNEL, Order(1)).unwrap();
    dm.write(p.phys() + 100, b"dirty");
    m.pa.free_pages(CPU0, p, Order(1));
    m.pa.drain_all_pages();
    let q =
        m.pa.alloc_pages(CPU0, Gfp::KERNEL | Gfp::ZERO, Order(1))
            .unwrap();
    let mut buf = vec![0xffu8; 8192];
    dm.read(q.phys(), &mut buf);
    assert!(buf.iter().all(|&b| b == 0));
}

#[test]
fn atomic_goes_below_min_and_failure_is_logged() {
    let m = boot(Arch::X86_64, 64 << 20, 1);
    let mut held = vec![];
    while let Some(p) = m.pa.alloc_pages(CPU0, Gfp::KERNEL | Gfp::NOWARN, Order(0)) {
        held.push(p);
    }
    assert!(m
        .pa
        .log
        .messages()
        .iter()
        .all(|l| !l.contains("page allocation failure")));
    // GFP_KERNEL stops at the min watermark; GFP_ATOMIC (__GFP_HIGH, cannot
    // block) may take half of min and a quarter of the rest.
    let z = m.pa.zone(0, 1);
    assert!(
        z.free_pages() + 1 >= z.wmark(Wmark::Min),
        "kernel allocations dipped below min"
    );
    let mut atomic = 0;
    while let Some(p) = m.pa.alloc_pages(CPU0, Gfp::ATOMIC, Order(0)) {
        held.push(p);
        atomic += 1;
    }
    assert!(atomic > 0, "GFP_ATOMIC got nothing below min");
    let last = m.pa.log.messages().pop().unwrap();
    assert_eq!(
        last,
        "lmm: page allocation failure: order:0, mode:0x820(GFP_ATOMIC), nodemask=(null)"
    );
    check_page_alloc(&m.pa).unwrap();
    for p in held {
        m.pa.free_pages(CPU0, p, Order(0));
    }
    check_page_alloc(&m.pa).unwrap();
}

#[test]
fn unmovable_fallback_claims_a_movable_pageblock() {
    // All pageblocks start MOVABLE; the first unmovable allocation falls back
    // and claims a whole block (fallbacks[UNMOVABLE] = RECLAIMABLE, MOVABLE).
    let m = boot(Arch::X86_64, 64 << 20, 1);
    let z = m.pa.zone(0, 1);
    assert_eq!(z.pageblock_counts()[MigrateType::Unmovable.idx()], 0);
    let p = m.pa.alloc_pages(CPU0, Gfp::KERNEL, Order(0)).unwrap();
    assert_eq!(
        m.pa.zone_of(p).unwrap().pageblock_mt(p),
        MigrateType::Unmovable
    );
    assert!(z.pageblock_counts()[MigrateType::Unmovable.idx()] >= 1);
    check_page_alloc(&m.pa).unwrap();
}

#[test]
fn deferred_blocks_are_initialised_on_demand() {
    let m = boot(Arch::X86_64, 8 << 30, 1);
    let z = m.pa.zone(0, 2);
    let deferred = |z: &Zone| -> u64 { z.lock_area().deferred().map(|(s, e)| e.0 - s.0).sum() };
    let d0 = deferred(z);
    let mut got = vec![];
    while deferred(z) == d0 {
        got.push(
            m.pa.alloc_pages(CPU0, Gfp::HIGHUSER_MOVABLE, Order(10))
                .unwrap(),
        );
    }
    let last = *got.last().unwrap();
    assert_eq!(m.pa.page(last).unwrap().zone_idx(), 2);
    check_page_alloc(&m.pa).unwrap();
    for p in got {
        m.pa.free_pages(CPU0, p, Order(10));
    }
    check_page_alloc(&m.pa).unwrap();
}

/// Three nodes of 64 MiB, one CPU each; node 0 is closer to node 2 than
/// to node 1.
fn three_nodes() -> PageAlloc {
    use crate::direct_map::HeapRam;
    use crate::memblock::Memblock;
    use crate::mm_init::{free_area_init, BootParams};
    let ram = HeapRam::direct_map(3 << 26);
    let mut mb = Memblock::new();
    for n in 0..3u64 {
        mb.add_node(PhysAddr(n << 26), 1 << 26, n as u32).unwrap();
    }
    mb.reserve(PhysAddr(0), 1 << 20).unwrap();
    let params = BootParams {
        arch: Arch::X86_64,
        nr_nodes: 3,
        cpu_node: vec![0, 1, 2],
        distance: vec![vec![10, 30, 20], vec![30, 10, 20], vec![20, 20, 10]],
        percpu: None,
        system_hashes: Vec::new(),
        trace: Default::default(),
        progress: Default::default(),
    };
    free_area_init(&mut mb, ram, &params, Printk::new()).unwrap()
}

#[test]
fn numa_fallback_follows_distance() {
    let pa = three_nodes();
    let nodes: Vec<u32> = pa.zonelist(0).iter().map(|&(n, _)| n).collect();
    assert_eq!(nodes.first(), Some(&0));
    let first_other = nodes.iter().find(|&&n| n != 0).unwrap();
    assert_eq!(*first_other, 2);
    // Exhaust node 0, then allocations come from node 2 and count numa_miss.
    let mut held = vec![];
    loop {
        let p = pa
            .alloc_pages(CPU0, Gfp::KERNEL | Gfp::NOWARN, Order(0))
            .unwrap();
        held.push(p);
        let z = pa.zone_of(p).unwrap();
        if z.nid != 0 {
            assert_eq!(z.nid, 2);
            assert!(z.stats.numa(NumaStat::NumaMiss) >= 1);
            break;
        }
    }
    check_page_alloc(&pa).unwrap();
}

#[test]
fn zone_statistics_count_hit_and_local_then_miss_foreign_and_other() {
    // mm/page_alloc.c zone_statistics: a block from the preferred node is
    // NUMA_HIT, else NUMA_MISS there and NUMA_FOREIGN on the preferred
    // zone; NUMA_LOCAL when the block is on the allocating CPU's node,
    // else NUMA_OTHER. CPU 0 (node 0) allocates through its held lists
    // until node 0 is exhausted and one block comes from node 2.
    let pa = three_nodes();
    let sum = |nid: u32, item: NumaStat| -> u64 {
        pa.nodes[nid as usize]
            .zones
            .iter()
            .map(|z| z.stats.numa(item))
            .sum()
    };
    let before: Vec<u64> = [NumaStat::NumaHit, NumaStat::NumaLocal]
        .iter()
        .map(|&i| sum(0, i))
        .collect();
    let mut cpu = pa.lock_cpu(CPU0);
    let mut blocks = vec![];
    let remote = loop {
        let p = cpu
            .alloc_pages(Gfp::KERNEL | Gfp::NOWARN, Order(0))
            .unwrap();
        blocks.push(p);
        let z = pa.zone_of(p).unwrap();
        if z.nid != 0 {
            break z;
        }
    };
    let local = blocks.len() as u64 - 1;
    assert_eq!(remote.nid, 2);
    assert_eq!(sum(0, NumaStat::NumaHit) - before[0], local);
    assert_eq!(sum(0, NumaStat::NumaLocal) - before[1], local);
    assert_eq!(remote.stats.numa(NumaStat::NumaMiss), 1);
    assert_eq!(remote.stats.numa(NumaStat::NumaOther), 1);
    assert_eq!(remote.stats.numa(NumaStat::NumaHit), 0);
    assert_eq!(remote.stats.numa(NumaStat::NumaLocal), 0);
    // NUMA_FOREIGN lands on the preferred zone: node 0's first zone that
    // GFP_KERNEL may use.
    let (pn, pz) = pa.zonelist(0)[0];
    assert_eq!(pn, 0);
    assert_eq!(pa.zone(pn, pz).stats.numa(NumaStat::NumaForeign), 1);
    assert_eq!(
        sum(1, NumaStat::NumaForeign) + sum(2, NumaStat::NumaForeign),
        0
    );
    for p in blocks {
        cpu.free_pages(p, Order(0));
    }
    drop(cpu);
    check_page_alloc(&pa).unwrap();
}

#[derive(Debug, Clone)]
enum Op {
    Alloc(u8, u8),
    Free(usize),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            3 => (0u8..=10, 0u8..5).prop_map(|(o, g)| Op::Alloc(o, g)),
            2 => any::<usize>().prop_map(Op::Free),
        ],
        1..120,
    )
}

/// A model of the free pages, frame by frame: free at the start of the
/// test and not held by it since. It says when an allocation must succeed,
/// by Linux's rules (`get_page_from_freelist`, `__zone_watermark_ok`), so
/// the property test cannot pass with an allocator that fails every call.
struct FreeModel {
    /// Per zone: its index and whether each frame of its span is free.
    zones: Vec<(usize, Pfn, Vec<bool>)>,
}

impl FreeModel {
    /// The free lists (and deferred ranges) of every populated zone of node 0.
    fn new(pa: &PageAlloc) -> Self {
        let zones = pa
            .zones()
            .filter(|z| z.nid == 0 && z.managed() > 0)
            .map(|z| {
                let mut free = vec![false; z.spanned as usize];
                let mut mark = |pfn: Pfn, n: u64| {
                    for i in 0..n {
                        free[(pfn.0 + i - z.start_pfn.0) as usize] = true;
                    }
                };
                let area = z.lock_area();
                for order in 0..NR_PAGE_ORDERS {
                    for mt in MigrateType::ALL {
                        for pfn in area.list(order, mt).iter(z.memmap()) {
                            mark(pfn, 1 << order);
                        }
                    }
                }
                for (s, e) in area.deferred() {
                    mark(s, e.0 - s.0);
                }
                (z.idx, z.start_pfn, free)
            })
            .collect();
        Self { zones }
    }

    fn set(&mut self, p: Pfn, o: Order, free: bool) {
        for (_, start, f) in &mut self.zones {
            if p.0 >= start.0 && p.0 < start.0 + f.len() as u64 {
                for i in 0..o.pages() {
                    f[(p.0 + i - start.0) as usize] = free;
                }
                return;
            }
        }
        panic!("{p:?} in no zone of the model");
    }

    /// Why `alloc_pages(gfp, order)` must succeed, if it must: some zone
    /// the GFP allows passes the high watermark with its lowmem reserve
    /// even after the request (so the low and min ones the allocator checks
    /// too) and holds a free, aligned 2^order range off the per-CPU lists
    /// and outside HighAtomic pageblocks, which the buddy invariant merges
    /// into a free block of at least that order.
    fn must_succeed(&self, pa: &PageAlloc, gfp: Gfp, order: Order) -> Option<String> {
        let hz = pa.highest_zoneidx(gfp)?;
        for (idx, start, free) in &self.zones {
            if *idx > hz {
                continue;
            }
            let z = pa.zone(0, *idx);
            let mut buddy = free.clone();
            for c in 0..z.nr_cpus() {
                let (lists, _) = z.pcp_lists(CpuId(c));
                for l in lists.iter() {
                    for pfn in l.iter(z.memmap()) {
                        let n = 1u64 << z.page(pfn).private();
                        for i in 0..n {
                            buddy[(pfn.0 + i - start.0) as usize] = false;
                        }
                    }
                }
            }
            let highatomic = |pfn: u64| z.pageblock_mt(Pfn(pfn)) == MigrateType::HighAtomic;
            let reserved: u64 = (0..free.len() as u64)
                .step_by(PAGEBLOCK_NR_PAGES as usize)
                .filter(|&i| highatomic(start.0 + i))
                .count() as u64
                * PAGEBLOCK_NR_PAGES;
            let nr_free = buddy.iter().filter(|&&f| f).count() as u64;
            let need = z.wmark(Wmark::High) + z.lowmem_reserve(hz) + reserved + order.pages();
            if nr_free <= need {
                continue;
            }
            let n = order.pages();
            let first = start.0.next_multiple_of(n);
            let block = (first..start.0 + free.len() as u64)
                .step_by(n as usize)
                .find(|&b| {
                    b + n <= start.0 + free.len() as u64
                        && (b..b + n).all(|p| buddy[(p - start.0) as usize] && !highatomic(p))
                });
            if let Some(b) = block {
                return Some(alloc::format!(
                    "zone {idx}: {nr_free} pages free in the buddy lists > {need} (high watermark, lowmem reserve, HighAtomic reserve, request), and [{b:#x}, +{n}) is free"
                ));
            }
        }
        None
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random alloc/free against a model: an allocation succeeds wherever
    /// the model of free pages says it must; blocks never overlap, are
    /// aligned, sit in a zone the GFP allows, free pages are conserved, and
    /// freeing everything (then draining) restores the initial free lists.
    #[test]
    fn buddy_matches_model(ops in ops(), cpus in 1usize..3) {
        let m = boot(Arch::X86_64, 48 << 20, cpus);
        let pa = &m.pa;
        let initial = free_area_snapshot(pa);
        let managed = pa.totalram_pages();
        let mut model = FreeModel::new(pa);
        let gfps = [Gfp::KERNEL, Gfp::KERNEL | Gfp::DMA, Gfp::KERNEL | Gfp::DMA32, Gfp::HIGHUSER_MOVABLE, Gfp::ATOMIC | Gfp::RECLAIMABLE];
        let mut held: Vec<(Pfn, Order, CpuId)> = vec![];
        let mut required = 0;
        for (i, op) in ops.iter().enumerate() {
            let cpu = CpuId(i % cpus);
            match *op {
                Op::Alloc(o, g) => {
                    let gfp = gfps[g as usize] | Gfp::NOWARN;
                    let must = model.must_succeed(pa, gfp, Order(o));
                    match pa.alloc_pages(cpu, gfp, Order(o)) {
                        Some(p) => {
                            prop_assert!(p.is_aligned(Order(o)));
                            let z = pa.zone_of(p).unwrap();
                            prop_assert!(z.idx <= pa.highest_zoneidx(gfp).unwrap());
                            prop_assert!(z.spans(p + (Order(o).pages() - 1)));
                            for &(q, qo, _) in &held {
                                prop_assert!(p.0 + Order(o).pages() <= q.0 || q.0 + qo.pages() <= p.0, "overlap");
                            }
                            held.push((p, Order(o), cpu));
                            model.set(p, Order(o), false);
                            required += u32::from(must.is_some());
                        }
                        None => prop_assert!(
                            must.is_none(),
                            "step {}: order-{} {:?} failed but must succeed: {}", i, o, gfp, must.unwrap_or_default()
                        ),
                    }
                }
                Op::Free(k) if !held.is_empty() => {
                    let (p, o, _) = held.swap_remove(k % held.len());
                    pa.free_pages(cpu, p, o);
                    model.set(p, o, true);
                }
                Op::Free(_) => {}
            }
            check_page_alloc(pa).map_err(|e| TestCaseError::fail(e.0))?;
            let held_pages: u64 = held.iter().map(|h| h.1.pages()).sum();
            prop_assert_eq!(pa.nr_free_pages() + pa.nr_pcp_pages() + held_pages, managed);
        }
        // The first allocation always finds the machine empty.
        if ops.iter().any(|o| matches!(o, Op::Alloc(..))) {
            prop_assert!(required > 0, "no allocation was required to succeed");
        }
        for (p, o, cpu) in held {
            pa.free_pages(cpu, p, o);
        }
        pa.drain_all_pages();
        check_page_alloc(pa).map_err(|e| TestCaseError::fail(e.0))?;
        prop_assert_eq!(pa.nr_free_pages(), managed);
        // Pageblocks may have changed type, so compare per-order totals.
        prop_assert_eq!(free_area_snapshot(pa), initial);
    }
}

#[test]
fn pcp_disable_sends_frees_straight_to_buddy() {
    let m = boot(Arch::X86_64, 64 << 20, 1);
    m.pa.set_pcp_disabled(true);
    let free0 = m.pa.nr_free_pages();
    let p = m.pa.alloc_pages(CPU0, Gfp::KERNEL, Order(0)).unwrap();
    assert_eq!(m.pa.nr_free_pages(), free0 - 1);
    m.pa.free_pages(CPU0, p, Order(0));
    assert_eq!((m.pa.nr_free_pages(), m.pa.nr_pcp_pages()), (free0, 0));
    check_page_alloc(&m.pa).unwrap();
}

#[test]
fn get_zeroed_page_and_page_address_use_the_direct_map() {
    // x86-64: page_address(page) = PAGE_OFFSET + phys (0xffff888000000000).
    let m = boot(Arch::X86_64, 64 << 20, 1);
    let va = m.pa.get_zeroed_page(CPU0, Gfp::KERNEL).unwrap();
    assert!(va.0 >= 0xffff_8880_0000_0000);
    let pfn = PhysAddr(va.0 - 0xffff_8880_0000_0000).pfn();
    assert_eq!(m.pa.page_address(pfn), Some(va));
    assert_eq!(m.pa.page(pfn).unwrap().refcount(), 1);
    m.pa.free_pages_addr(CPU0, va, Order(0));
    assert_eq!(m.pa.page(pfn).unwrap().refcount(), 0);
    check_page_alloc(&m.pa).unwrap();
    // x86-32: highmem pages have no address until kmapped.
    let m = boot(Arch::X86, 2 << 30, 1);
    let hi = m.pa.alloc_page(CPU0, Gfp::HIGHUSER).unwrap();
    assert_eq!(m.pa.page_address(hi), None);
    let lo = m.pa.get_free_pages(CPU0, Gfp::HIGHUSER, Order(1)).unwrap();
    assert!(lo.0 >= 0xc000_0000 && lo.0 < 0xc000_0000 + (896 << 20));
}

#[test]
fn min_free_kbytes_sysctl_takes_an_int() {
    // min_free_kbytes is an int sysctl with minimum 0: larger is EINVAL.
    let m = boot(Arch::X86_64, 64 << 20, 1);
    assert_eq!(
        m.pa.set_min_free_kbytes(u64::MAX),
        Err(crate::errno::Errno::EINVAL)
    );
    assert_eq!(m.pa.set_min_free_kbytes(i32::MAX as u64), Ok(()));
    // Every zone is then below its min watermark: only reserves remain.
    let z = m.pa.zone(0, 1);
    assert!(z.wmark(Wmark::Min) >= z.managed());
    assert_eq!(
        m.pa.alloc_pages(CPU0, Gfp::KERNEL | Gfp::NOWARN, Order(0)),
        None
    );
    assert_eq!(
        m.pa.set_watermark_scale_factor(0),
        Err(crate::errno::Errno::EINVAL)
    );
}

#[test]
fn any_min_free_kbytes_in_the_sysctl_range_is_taken_without_a_panic() {
    // vm.min_free_kbytes takes 0..=INT_MAX (proc_dointvec_minmax, extra1 =
    // SYSCTL_ZERO). INT_MAX lifts the low watermark far above an eighth of
    // the zone, so a pcp's high_min passes its high_max: Linux's clamp()
    // then gives high_max; Ord::clamp would panic.
    assert_eq!(linux_clamp(5, 10, 3), 3);
    assert_eq!(linux_clamp(2, 1, 3), 2);
    let m = boot(Arch::X86_64, 64 << 20, 2);
    let p = m.pa.alloc_pages(CPU0, Gfp::KERNEL, Order(0)).unwrap();
    assert_eq!(
        m.pa.set_min_free_kbytes(i32::MAX as u64 + 1),
        Err(crate::errno::Errno::EINVAL)
    );
    m.pa.set_min_free_kbytes(i32::MAX as u64).unwrap();
    assert_eq!(
        m.pa.alloc_pages(CPU0, Gfp::KERNEL | Gfp::NOWARN, Order(1)),
        None,
        "every zone is below its min watermark"
    );
    m.pa.free_pages(CPU0, p, Order(0));
    check_page_alloc(&m.pa).unwrap();
    m.pa.set_min_free_kbytes(1024).unwrap();
    let q = m.pa.alloc_pages(CPU0, Gfp::KERNEL, Order(1)).unwrap();
    m.pa.free_pages(CPU0, q, Order(1));
    check_page_alloc(&m.pa).unwrap();
}

#[test]
fn a_held_cpu_allocates_and_frees_as_the_per_call_path_does() {
    // Two identical machines, one driven through `lock_cpu`: the same blocks
    // in the same order down to exhaustion (where the slow path lets go of
    // the held lists and drains them), and the same state after freeing.
    let a = boot(Arch::X86_64, 64 << 20, 2);
    let b = boot(Arch::X86_64, 64 << 20, 2);
    let gfp = Gfp::KERNEL | Gfp::NOWARN;
    let orders = [0u8, 0, 3, 1, 0, 9, 2];
    let mut held = b.pa.lock_cpu(CPU0);
    let mut blocks = Vec::new();
    for i in 0.. {
        let o = Order(orders[i % orders.len()]);
        let x = a.pa.alloc_pages(CPU0, gfp, o);
        assert_eq!(
            held.alloc_pages(gfp, o),
            x,
            "allocation {i} of order {}",
            o.0
        );
        match x {
            Some(p) => blocks.push((p, o)),
            None if o.0 == 0 => break,
            None => {}
        }
    }
    assert!(blocks.len() > 100, "{} blocks", blocks.len());
    for &(p, o) in blocks.iter().rev() {
        a.pa.free_pages(CPU0, p, o);
        held.free_pages(p, o);
    }
    drop(held);
    for m in [&a, &b] {
        check_page_alloc(&m.pa).unwrap();
    }
    assert_eq!(a.pa.nr_pcp_pages(), b.pa.nr_pcp_pages());
    assert_eq!(a.pa.nr_free_pages(), b.pa.nr_free_pages());
    assert_eq!(free_area_snapshot(&a.pa), free_area_snapshot(&b.pa));
    assert_eq!(
        a.pa.events.get(VmEvent::Pgfree),
        b.pa.events.get(VmEvent::Pgfree)
    );
}

#[test]
fn zonelists_hold_only_populated_zones() {
    // build_zonerefs_node adds a zone only if populated_zone(): on 64 MiB
    // every page is in DMA and DMA32, so Normal and Movable are absent.
    let m = boot(Arch::X86_64, 64 << 20, 1);
    let names: Vec<&str> =
        m.pa.zonelist(0)
            .iter()
            .map(|&(n, z)| m.pa.zone(n, z).ztype.name())
            .collect();
    assert_eq!(names, ["DMA32", "DMA"]);
    assert!(m
        .pa
        .zonelist(0)
        .iter()
        .all(|&(n, z)| m.pa.zone(n, z).is_populated()));
}
