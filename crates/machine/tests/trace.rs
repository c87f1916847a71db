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
    // The Trace Event Format (the JSON Object Format): displayTimeUnit is
    // "ms" or "ns"; every event has a string name, a phase and an integer
    // pid; instants a timestamp, a tid and a scope of g, p or t; counters
    // a timestamp and numeric args only (each arg is a series); metadata
    // is process_name (args.name) or thread_name (with its tid).
    assert!(["ms", "ns"].contains(&j["displayTimeUnit"].as_str().unwrap()));
    for e in ev {
        assert!(e["name"].is_string() && e["pid"].is_u64(), "{e}");
        match e["ph"].as_str().unwrap() {
            "i" => {
                assert!(e["ts"].as_f64().unwrap() >= 0.0, "{e}");
                assert!(e["tid"].is_u64(), "{e}");
                assert!(["g", "p", "t"].contains(&e["s"].as_str().unwrap()), "{e}");
                assert!(e["args"].is_object(), "{e}");
            }
            "C" => {
                assert!(e["ts"].as_f64().unwrap() >= 0.0, "{e}");
                let args = e["args"].as_object().unwrap();
                assert!(
                    !args.is_empty() && args.values().all(|v| v.is_number()),
                    "{e}"
                );
            }
            "M" => {
                assert!(e["args"]["name"].is_string(), "{e}");
                match e["name"].as_str().unwrap() {
                    "process_name" => {}
                    "thread_name" => assert!(e["tid"].is_u64(), "{e}"),
                    other => panic!("metadata {other}: {e}"),
                }
            }
            other => panic!("phase {other}: {e}"),
        }
    }
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

/// The ftrace text read back and held against the machine: every
/// `mm_page_alloc` is matched by its `mm_page_free` or its block is still
/// allocated at the end (not on a free list, referenced), the pages
/// allocated and not freed are the pages that left the free lists and the
/// per-CPU lists, and there is one `page_fault_user` per fault vmstat's
/// pgfault counted.
#[test]
fn the_trace_read_back_agrees_with_the_counters() {
    use std::collections::BTreeMap;
    let mut m = machine("kmem:mm_page_alloc,kmem:mm_page_free,exceptions:page_fault_user");
    let vm = |m: &Machine, name: &str| -> u64 {
        m.proc("vmstat")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap()
    };
    let _ = m.trace().take();
    let free0 = m.pa().nr_free_pages() + m.pa().nr_pcp_pages();
    let faults0 = vm(&m, "pgfault");
    // Kernel blocks, two of them kept; a process that writes 64 pages,
    // unmaps 16, forks (copy-on-write) and whose child writes 8.
    let mut kept = Vec::new();
    for order in [0u8, 2, 0, 4] {
        let pfn = m
            .pa()
            .alloc_pages(CpuId(0), Gfp::KERNEL, Order(order))
            .unwrap();
        kept.push((pfn, order));
    }
    for (pfn, order) in kept.drain(..2) {
        m.pa().free_pages(CpuId(0), pfn, Order(order));
    }
    let pid = m.spawn("tracee").unwrap();
    let a = m
        .sys_mmap(
            pid,
            0,
            64 << 12,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS,
            None,
            0,
        )
        .unwrap();
    for i in 0..64 {
        m.store(pid, a + (i << 12), b"x").unwrap();
    }
    m.sys_munmap(pid, a + (48 << 12), 16 << 12).unwrap();
    let child = m.fork(pid).unwrap();
    for i in 0..8 {
        m.store(child, a + (i << 12), b"y").unwrap();
    }
    let text = m.trace().take().ftrace();
    let free1 = m.pa().nr_free_pages() + m.pa().nr_pcp_pages();
    let faults1 = vm(&m, "pgfault");

    let field = |fields: &str, key: &str| -> u64 {
        let v = fields
            .split_whitespace()
            .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("no {key} in {fields}"));
        match v.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16).unwrap(),
            None => v.parse().unwrap(),
        }
    };
    // pfn -> order of the blocks allocated and not yet freed.
    let mut live: BTreeMap<u64, u64> = BTreeMap::new();
    let (mut allocs, mut frees, mut faults) = (0, 0, 0);
    for l in text.lines().skip(1) {
        let rest = l.split_once("]").unwrap().1;
        let (event, fields) = rest.split_once(": ").unwrap().1.split_once(':').unwrap();
        match event {
            "mm_page_alloc" => {
                allocs += 1;
                let (pfn, order) = (field(fields, "pfn"), field(fields, "order"));
                assert_eq!(live.insert(pfn, order), None, "allocated twice: {l}");
            }
            "mm_page_free" => {
                frees += 1;
                let (pfn, order) = (field(fields, "pfn"), field(fields, "order"));
                assert_eq!(live.remove(&pfn), Some(order), "freed unallocated: {l}");
            }
            "page_fault_user" => faults += 1,
            other => panic!("event {other} was not asked for: {l}"),
        }
    }
    assert!(
        allocs > 64 && frees > 16,
        "{allocs} allocations, {frees} frees"
    );
    // What is still allocated is allocated: off the free lists, referenced.
    for &pfn in live.keys() {
        let page = m.pa().page(mm::types::Pfn(pfn)).unwrap();
        assert!(!page.test(mm::memmap::PageFlags::BUDDY), "pfn {pfn:#x}");
        assert!(page.refcount() > 0, "pfn {pfn:#x}");
    }
    // The two kept blocks are among them, and the pages not freed are
    // exactly the pages the free and per-CPU lists lost.
    for (pfn, order) in &kept {
        assert_eq!(live.get(&pfn.0), Some(&u64::from(*order)));
    }
    let unfreed: u64 = live.values().map(|o| 1 << o).sum();
    assert_eq!(unfreed, free0 - free1);
    // One page_fault_user per fault counted.
    assert_eq!(faults, faults1 - faults0);
    assert!(faults >= 64 + 8, "{faults}");
}
