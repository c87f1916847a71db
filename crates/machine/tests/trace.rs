//! Tracepoints on a whole machine (`mm::trace`): the values events carry,
//! the same bytes for the same inputs, ftrace-style filters, the Perfetto
//! trace and its counter tracks.

use machine::{Machine, MachineConfig, TraceSink};
use mm::gfp::Gfp;
use mm::mmap::{MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE};
use mm::page_alloc::CpuId;
use mm::trace::EventMask;
use mm::types::Order;

/// A small machine tracing `events` from boot on, with its own buffer.
fn machine(events: &str) -> Machine {
    let config = MachineConfig {
        ram: 128 << 20,
        trace: TraceSink::default(),
        ..Default::default()
    };
    config.trace.0.enable(EventMask::parse(events).unwrap());
    Machine::boot(config).unwrap()
}

/// Allocations, a process that maps and writes memory, frees: the ftrace
/// text of what the machine traced after boot.
fn workload(m: &mut Machine) -> (String, Vec<(u64, u8)>, u64) {
    let _ = m.trace().take();
    let mut blocks = Vec::new();
    for order in [0u8, 3, 0, 5] {
        let pfn = m
            .pa()
            .alloc_pages(CpuId(0), Gfp::KERNEL, Order(order))
            .unwrap();
        blocks.push((pfn.0, order));
    }
    let pid = m.spawn("tracee").unwrap();
    let a = m
        .sys_mmap(
            pid,
            0,
            4 << 12,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS,
            None,
            0,
        )
        .unwrap();
    m.store(pid, a + 4096, b"hello").unwrap();
    // Unmapping a page that was touched flushes it from every TLB.
    m.sys_munmap(pid, a, 4 << 12).unwrap();
    for &(pfn, order) in &blocks {
        m.pa()
            .free_pages(CpuId(0), mm::types::Pfn(pfn), Order(order));
    }
    (m.trace().take().ftrace(), blocks, a + 4096)
}

#[test]
fn page_allocations_print_their_pfn_and_order() {
    let mut m = machine("kmem:mm_page_alloc,kmem:mm_page_free");
    let (t, blocks, _) = workload(&mut m);
    assert!(t.starts_with("cpus=2\n"), "{t}");
    for (pfn, order) in blocks {
        let alloc = format!(
            " mm_page_alloc:        page={:#x} pfn={pfn:#x} order={order} migratetype=0 gfp_flags=GFP_KERNEL\n",
            0xffff_ea00_0000_0000u64 + pfn * 64
        );
        assert!(t.contains(&alloc), "no `{alloc}` in\n{t}");
        let free = format!(
            " mm_page_free:         page={:#x} pfn={pfn:#x} order={order}\n",
            0xffff_ea00_0000_0000u64 + pfn * 64
        );
        assert!(t.contains(&free), "no `{free}` in\n{t}");
    }
    // The scenario's own allocations run as <idle>-0 on CPU 0.
    assert!(
        t.lines()
            .nth(1)
            .unwrap()
            .starts_with("          <idle>-0     [000]     0."),
        "{t}"
    );
}

#[test]
fn the_same_inputs_give_the_same_bytes() {
    let a = workload(&mut machine("*")).0;
    let b = workload(&mut machine("*")).0;
    assert!(a.lines().count() > 50, "{a}");
    assert!(a.contains(": page_fault_user:"), "{a}");
    assert_eq!(a, b);
}

#[test]
fn a_filter_keeps_exactly_the_matching_lines_of_the_full_trace() {
    let full = workload(&mut machine("*")).0;
    let kmem = workload(&mut machine("kmem:mm_page_*,tlb")).0;
    let want: Vec<&str> = full
        .lines()
        .filter(|l| {
            l.starts_with("cpus=") || l.contains(": mm_page_") || l.contains(": tlb_flush:")
        })
        .collect();
    let got: Vec<&str> = kmem.lines().collect();
    assert!(got.iter().any(|l| l.contains(": tlb_flush:")), "{kmem}");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w);
    }
    assert_eq!(got.len(), want.len());
}

#[test]
fn a_user_fault_prints_address_and_error_code_as_linux() {
    let mut m = machine("exceptions:page_fault_user");
    let (t, _, written) = workload(&mut m);
    // A write to a page not present, from user mode: PF_USER | PF_WRITE.
    let l = t.lines().find(|l| l.contains("page_fault_user")).expect(&t);
    assert_eq!(
        l[l.find(']').unwrap()..].split_once(": ").unwrap().1,
        format!("page_fault_user:      address={written:#x} ip=0x0 error_code=0x6")
    );
    assert!(l.starts_with("          tracee-1     [000] "), "{l}");
}

#[test]
fn the_perfetto_trace_parses_and_has_the_counter_tracks() {
    let mut m = machine("*");
    let _ = workload(&mut m);
    // Events after a system call: the counters are sampled after it.
    let pid = m.spawn("second").unwrap();
    m.sys_mmap(
        pid,
        0,
        1 << 12,
        PROT_READ,
        MAP_PRIVATE | MAP_ANONYMOUS,
        None,
        0,
    )
    .unwrap();
    let log = m.trace().take();
    let j: serde_json::Value = serde_json::from_str(&log.perfetto()).unwrap();
    let ev = j["traceEvents"].as_array().unwrap();
    assert_eq!(
        ev.iter().filter(|e| e["ph"] == "i").count(),
        log.records.len()
    );
    let counter = |name: &str| ev.iter().find(|e| e["ph"] == "C" && e["name"] == name);
    let free = counter("free blocks node0 DMA32").expect("free blocks track");
    assert!(free["args"]["order0"].is_u64() && free["args"]["order10"].is_u64());
    let lru = counter("LRU pages node0").expect("LRU track");
    assert!(lru["args"]["active_anon"].is_u64());
    assert!(counter("swap used pages").is_some());
    let rss = ev
        .iter()
        .find(|e| e["ph"] == "C" && e["name"] == "RSS pages" && e["pid"] == 2)
        .expect("RSS track of pid 2");
    assert!(rss["args"]["anon"].is_u64());
    assert!(ev
        .iter()
        .any(|e| e["ph"] == "M" && e["args"]["name"] == "tracee"));
}

/// The mmu_gather flushes only what it gathered (`tlb_finish_mmu` flushes
/// when entries were cleared or tables freed): munmap of memory never
/// touched flushes nothing; once a page was written, munmap flushes it.
#[test]
fn munmap_flushes_the_tlb_only_where_entries_were_cleared() {
    let mut m = machine("tlb");
    let pid = m.spawn("tracee").unwrap();
    let map = |m: &mut Machine| {
        m.sys_mmap(
            pid,
            0,
            4 << 12,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS,
            None,
            0,
        )
        .unwrap()
    };
    let flushes = |t: &str| t.lines().filter(|l| l.contains(": tlb_flush:")).count();
    let a = map(&mut m);
    let _ = m.trace().take();
    m.sys_munmap(pid, a, 4 << 12).unwrap();
    let untouched = m.trace().take().ftrace();
    assert_eq!(flushes(&untouched), 0, "{untouched}");
    let a = map(&mut m);
    m.store(pid, a + 4096, b"x").unwrap();
    let _ = m.trace().take();
    m.sys_munmap(pid, a, 4 << 12).unwrap();
    let touched = m.trace().take().ftrace();
    assert!(flushes(&touched) >= 1, "{touched}");
}
