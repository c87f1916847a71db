//! Page reclaim: kswapd wakes when a zone falls below its low watermark
//! and stops once a zone is above high; direct reclaim frees memory for an
//! allocation that would otherwise fail; clean file pages are dropped and
//! leave shadow entries that make their refaults count; MADV_COLD and
//! MADV_PAGEOUT act on the pages of one range. `mm::debug` runs after
//! every step.

mod common;

use common::check;
use machine::fs::O_RDONLY;
use machine::{Machine, MachineConfig};
use mm::gfp::Gfp;
use mm::madvise::{MADV_COLD, MADV_PAGEOUT};
use mm::mm_types::RssKind;
use mm::mmap::{MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE};
use mm::mmzone::Wmark;
use mm::page_alloc::CpuId;
use mm::types::{Order, Pfn, PAGE_SIZE};
use mm::vmstat::{NodeStat, VmEvent, ZoneEvent};

/// A host file of `pages` pages, each starting with its index.
fn data_file(name: &str, pages: u64) -> String {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let mut v = vec![0u8; (pages * PAGE_SIZE) as usize];
    for i in 0..pages {
        v[(i * PAGE_SIZE) as usize..][..8].copy_from_slice(&i.to_le_bytes());
    }
    std::fs::write(&path, v).unwrap();
    path.display().to_string()
}

fn boot(ram_mib: u64) -> Machine {
    Machine::boot(MachineConfig {
        ram: ram_mib << 20,
        cpus: 2,
        ..Default::default()
    })
    .unwrap()
}

/// Reads every page of the file through the page cache, checking each.
fn read_all(m: &mut Machine, pid: u32, fd: i32, pages: u64) {
    for i in 0..pages {
        let b = m.file_read(pid, fd, Some(i * PAGE_SIZE), 8).unwrap();
        assert_eq!(b, i.to_le_bytes(), "page {i} of the file");
    }
}

fn ev(m: &Machine, e: VmEvent) -> u64 {
    m.pa().events.get(e)
}

/// The eligible zones of node 0 for a movable user allocation.
fn movable_zones(m: &Machine) -> Vec<&mm::mmzone::Zone> {
    let hi = m.pa().highest_zoneidx(Gfp::HIGHUSER_MOVABLE).unwrap();
    m.pa().nodes[0].zones[..=hi]
        .iter()
        .filter(|z| z.managed() > 0)
        .collect()
}

#[test]
fn kswapd_wakes_below_low_and_stops_above_high() {
    let mut m = boot(64);
    let pid = m.spawn("reader").unwrap();
    // Twice the RAM of clean file cache: it can only be read through if
    // reclaim drops what was read before.
    let pages = 2 * m.pa().totalram_pages();
    let fd = m
        .sys_open(pid, &data_file("kswapd.dat", pages), O_RDONLY)
        .unwrap();
    read_all(&mut m, pid, fd, pages);
    check(&m);
    assert!(ev(&m, VmEvent::Pageoutrun) > 0, "kswapd never ran");
    assert!(ev(&m, VmEvent::PgstealKswapd) > 0);
    assert_eq!(
        ev(&m, VmEvent::PgstealDirect),
        0,
        "kswapd kept ahead of the reader"
    );
    assert!(m.pa().nodes[0].stats.get(NodeStat::NrFilePages) < m.pa().totalram_pages() as i64);
    // After its last run, kswapd left some eligible zone balanced at high
    // (pgdat_balanced), and did not go much further than a batch beyond.
    let zones = movable_zones(&m);
    assert!(
        zones.iter().any(|z| z.free_pages() >= z.wmark(Wmark::High)),
        "no zone above high after kswapd"
    );
    // Take memory below low again: the allocator wakes kswapd (and nothing
    // runs it until the machine schedules it).
    let mut held: Vec<Pfn> = Vec::new();
    let woken = |m: &Machine| {
        m.pa().nodes[0]
            .kswapd
            .woken
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    assert!(!woken(&m));
    while !woken(&m) {
        // Until the fast path fails at the low watermark, nothing wakes it.
        let above_low = movable_zones(&m)
            .iter()
            .any(|z| z.free_pages() > z.wmark(Wmark::Low) + 1);
        held.push(
            m.pa()
                .alloc_pages(CpuId(0), Gfp::HIGHUSER_MOVABLE, Order(0))
                .unwrap(),
        );
        if woken(&m) {
            assert!(!above_low || m.pa().nr_pcp_pages() > 0, "woken above low");
        }
    }
    // The allocation that woke it was still served, from below low.
    assert_eq!(ev(&m, VmEvent::PgstealDirect), 0);
    let runs = ev(&m, VmEvent::Pageoutrun);
    let freed = m.run_kswapd();
    assert!(freed > 0);
    assert_eq!(ev(&m, VmEvent::Pageoutrun), runs + 1);
    assert!(movable_zones(&m)
        .iter()
        .any(|z| z.free_pages() >= z.wmark(Wmark::High)));
    // Balanced: a second run finds nothing to do and is not even woken.
    assert_eq!(m.run_kswapd(), 0);
    for p in held {
        m.pa().free_pages(CpuId(0), p, Order(0));
    }
    check(&m);
}

#[test]
fn direct_reclaim_frees_cache_for_an_allocation_that_would_fail() {
    let mut m = boot(64);
    let pid = m.spawn("reader").unwrap();
    let pages = m.pa().totalram_pages() / 2;
    let fd = m
        .sys_open(pid, &data_file("direct.dat", pages), O_RDONLY)
        .unwrap();
    read_all(&mut m, pid, fd, pages);
    let cached = m.pa().nodes[0].stats.get(NodeStat::NrFilePages) as u64;
    assert!(cached > pages / 2);
    // Take every free page, never letting kswapd run: the allocations past
    // the min watermark succeed only through direct reclaim.
    let mut held = Vec::new();
    for _ in 0..m.pa().totalram_pages() {
        match m.pa().alloc_pages(CpuId(0), Gfp::KERNEL, Order(0)) {
            Some(p) => held.push(p),
            None => break,
        }
    }
    assert!(ev(&m, VmEvent::PgstealDirect) > 0);
    assert!(
        m.pa().events.get_zone(ZoneEvent::AllocStall, 1)
            + m.pa().events.get_zone(ZoneEvent::AllocStall, 2)
            > 0
    );
    // What direct reclaim took was the clean cache.
    let left = m.pa().nodes[0].stats.get(NodeStat::NrFilePages) as u64;
    assert!(
        held.len() as u64 > m.pa().totalram_pages() - cached,
        "only {} pages",
        held.len()
    );
    assert!(left < cached / 4, "{left} of {cached} cache pages left");
    for p in held {
        m.pa().free_pages(CpuId(0), p, Order(0));
    }
    check(&m);
    // The file still reads right (refaults), and its refaults are counted.
    read_all(&mut m, pid, fd, pages);
    assert!(m.pa().nodes[0].stats.get(NodeStat::WorkingsetRefaultFile) > 0);
    check(&m);
}

#[test]
fn drop_caches_frees_clean_unmapped_cache_only() {
    let mut m = boot(64);
    let pid = m.spawn("reader").unwrap();
    let fd = m
        .sys_open(pid, &data_file("drop.dat", 256), O_RDONLY)
        .unwrap();
    read_all(&mut m, pid, fd, 256);
    let cached = m.pa().nodes[0].stats.get(NodeStat::NrFilePages);
    assert!(cached >= 256);
    let freed = m.drop_caches();
    assert_eq!(freed as i64, cached);
    assert_eq!(m.pa().nodes[0].stats.get(NodeStat::NrFilePages), 0);
    assert_eq!(ev(&m, VmEvent::DropPagecache), 1);
    check(&m);
}

#[test]
fn madv_cold_deactivates_and_madv_pageout_swaps_out_the_range() {
    let mut m = Machine::boot(MachineConfig {
        ram: 128 << 20,
        cpus: 2,
        swap: Some(machine::swapfile::SwapSpec::Make(64 << 20)),
        ..Default::default()
    })
    .unwrap();
    let pid = m.spawn("p").unwrap();
    let n = 64;
    let a = m
        .sys_mmap(
            pid,
            0,
            n * PAGE_SIZE,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS,
            None,
            0,
        )
        .unwrap();
    for i in 0..n {
        m.store(pid, a + i * PAGE_SIZE, &i.to_le_bytes()).unwrap();
    }
    mm::swap::lru_add_drain_all(m.pa());
    let inactive = m.pa().nodes[0].stats.get(NodeStat::NrInactiveAnon);
    // Activate them: a page that is used stays, and goes active on the
    // next scan; here MADV_COLD's job is tested on pages made active.
    for i in 0..n {
        let pfn = m
            .process(pid)
            .unwrap()
            .pt
            .translate(mm::VirtAddr(a + i * PAGE_SIZE))
            .unwrap()
            .0
            >> 12;
        mm::swap::folio_activate(m.pa(), CpuId(0), Pfn(pfn));
    }
    assert_eq!(
        m.pa().nodes[0].stats.get(NodeStat::NrInactiveAnon),
        inactive - n as i64
    );
    m.sys_madvise(pid, a, n * PAGE_SIZE, MADV_COLD).unwrap();
    assert_eq!(
        m.pa().nodes[0].stats.get(NodeStat::NrInactiveAnon),
        inactive
    );
    check(&m);
    let out = ev(&m, VmEvent::Pswpout);
    m.sys_madvise(pid, a, n * PAGE_SIZE, MADV_PAGEOUT).unwrap();
    assert_eq!(ev(&m, VmEvent::Pswpout), out + n);
    let p = m.process(pid).unwrap();
    assert_eq!(p.mm.rss.get(RssKind::Swap), n);
    assert_eq!(p.mm.rss.get(RssKind::Anon), 0);
    check(&m);
    for i in 0..n {
        assert_eq!(m.load(pid, a + i * PAGE_SIZE, 8).unwrap(), i.to_le_bytes());
    }
    assert_eq!(m.process(pid).unwrap().mm.rss.get(RssKind::Swap), 0);
    check(&m);
}

#[test]
fn mlocked_pages_are_unevictable_and_stay_resident_under_pressure() {
    let mut m = Machine::boot(MachineConfig {
        ram: 64 << 20,
        cpus: 2,
        swap: Some(machine::swapfile::SwapSpec::Make(128 << 20)),
        ..Default::default()
    })
    .unwrap();
    let pid = m.spawn("locker").unwrap();
    let n = 256;
    let rw = PROT_READ | PROT_WRITE;
    let anon = MAP_PRIVATE | MAP_ANONYMOUS;
    let a = m
        .sys_mmap(pid, 0, n * PAGE_SIZE, rw, anon, None, 0)
        .unwrap();
    for i in 0..n / 2 {
        m.store(pid, a + i * PAGE_SIZE, &i.to_le_bytes()).unwrap();
    }
    // mlock locks the pages there and faults in (and locks) the rest.
    m.sys_mlock(pid, a, n * PAGE_SIZE).unwrap();
    mm::swap::lru_add_drain_all(m.pa());
    let meminfo = |m: &Machine, key: &str| -> u64 {
        let t = m.proc("meminfo").unwrap();
        let l = t.lines().find(|l| l.starts_with(key)).unwrap();
        l.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    assert_eq!(meminfo(&m, "Mlocked:"), n * 4);
    assert_eq!(meminfo(&m, "Unevictable:"), n * 4);
    assert_eq!(ev(&m, VmEvent::UnevictablePgsMlocked), n);
    check(&m);
    // Pressure: another process uses twice the RAM; the locked pages stay.
    let other = m.spawn("hog").unwrap();
    let big = 2 * m.pa().totalram_pages();
    let b = m
        .sys_mmap(other, 0, big * PAGE_SIZE, rw, anon, None, 0)
        .unwrap();
    for i in 0..big {
        m.store(other, b + i * PAGE_SIZE, &[1]).unwrap();
    }
    assert!(ev(&m, VmEvent::Pswpout) > 0);
    let p = m.process(pid).unwrap();
    assert_eq!(
        (p.mm.rss.get(RssKind::Anon), p.mm.rss.get(RssKind::Swap)),
        (n, 0)
    );
    check(&m);
    m.exit(other).unwrap();
    m.sys_munlock(pid, a, n * PAGE_SIZE).unwrap();
    assert_eq!(meminfo(&m, "Mlocked:"), 0);
    assert_eq!(meminfo(&m, "Unevictable:"), 0);
    check(&m);
    for i in 0..n / 2 {
        assert_eq!(m.load(pid, a + i * PAGE_SIZE, 8).unwrap(), i.to_le_bytes());
    }
}
