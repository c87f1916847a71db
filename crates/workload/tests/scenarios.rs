//! Every example scenario runs clean; broken scripts fail with file:line:column.

use machine::MachineConfig;
use workload::scenario::{run, DEFAULT_SCENARIO};

fn small() -> MachineConfig {
    MachineConfig {
        ram: 512 << 20,
        ..Default::default()
    }
}

/// The architectures lmm boots; a scenario names those it runs on in a
/// `// arches: ...` line.
const ARCHES: [&str; 4] = ["x86_64", "x86", "x86-pae", "arm64"];

/// Runs every example scenario with `slab` on each architecture: it passes
/// its expectations (and leaves the allocator consistent) on those its
/// `// arches:` line lists, and on the others fails with an error naming
/// the file, never a panic. A scenario that starts passing on an
/// architecture it does not list must be given it.
fn every_scenario_on_every_arch(slab: mm::slab_common::SlabKind) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scenarios");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rhai"))
        .collect();
    files.sort();
    assert!(files.len() >= 6, "{files:?}");
    let mut runs = 0;
    for p in &files {
        let name = p.display().to_string();
        let text = std::fs::read_to_string(p).unwrap();
        let listed: Vec<&str> = text
            .lines()
            .find_map(|l| l.strip_prefix("// arches:"))
            .unwrap_or_else(|| panic!("{name} has no `// arches:` line"))
            .split_whitespace()
            .collect();
        assert!(
            listed.iter().all(|a| ARCHES.contains(a)) && listed.contains(&"x86_64"),
            "{name}: {listed:?}"
        );
        for arch in ARCHES {
            let config = MachineConfig {
                arch: mm::arch::Arch::parse(arch).unwrap(),
                slab,
                ..small()
            };
            match run(&name, &text, config) {
                Ok((out, m)) => {
                    assert!(
                        listed.contains(&arch),
                        "{name} now passes on {arch}: add it to its `// arches:` line"
                    );
                    assert!(out.checks > 0, "{name} checks nothing");
                    mm::debug::check_page_alloc(m.pa())
                        .unwrap_or_else(|e| panic!("{name} on {arch}, {slab:?}: {}", e.0));
                    runs += 1;
                }
                Err(e) => {
                    assert!(
                        !listed.contains(&arch),
                        "{name} on {arch} with {slab:?}: {e}"
                    );
                    assert!(e.to_string().starts_with(&name), "{e}");
                }
            }
        }
    }
    assert!(runs >= 2 * files.len(), "{runs} runs");
}

#[test]
fn every_scenario_on_every_arch_it_lists_with_slub() {
    every_scenario_on_every_arch(mm::slab_common::SlabKind::Slub);
}

#[test]
fn every_scenario_on_every_arch_it_lists_with_slab() {
    every_scenario_on_every_arch(mm::slab_common::SlabKind::Slab);
}

#[test]
fn default_scenario_returns_every_page() {
    use mm::vmstat::NodeStat;
    let (out, m) = run("default", DEFAULT_SCENARIO, small()).unwrap();
    assert_eq!(out.failures, 0);
    // The scenario ends on the small machine it booted for reclaim, whose
    // process exited and whose swap is off: every page is free again but
    // for the kernel's own page tables (built at boot) and the slabs the
    // caches keep and the kernel stacks each CPU keeps for its next task
    // (VMAP_STACK, at most NR_CACHED_STACKS = 2 per CPU) and the idle tasks
    // of the secondary CPUs keep (fork_idle, 16 KiB each), with nothing left
    // on swap or in the swap cache.
    assert!(m.processes().is_empty());
    assert_eq!(m.swap().table.total_swap_pages(), 0);
    assert_eq!(m.swap().nr_cached(), 0);
    assert!(m.pa().events.get(mm::vmstat::VmEvent::Pswpout) > 0);
    let stat = |s: NodeStat| m.pa().nodes[0].stats.get(s) as u64;
    let tables = stat(NodeStat::NrPageTablePages);
    let slab = stat(NodeStat::NrSlabReclaimable) + stat(NodeStat::NrSlabUnreclaimable);
    // The page cache keeps what exec read, as Linux's does.
    let cache = stat(NodeStat::NrFilePages);
    assert!(tables > 0);
    let idle_stack_pages = 4 * (m.config().cpus as u64 - 1);
    assert_eq!(stat(NodeStat::NrKernelStack), 4 * idle_stack_pages);
    assert!(m.cached_stack_pages() <= 2 * 4 * m.config().cpus as u64);
    assert_eq!(
        m.pa().nr_free_pages()
            + m.pa().nr_pcp_pages()
            + tables
            + slab
            + cache
            + m.cached_stack_pages()
            + idle_stack_pages
            + m.tasks().zero_pfn.map_or(0, |_| 1),
        m.pa().totalram_pages()
    );
    assert!(out.output.contains("Node 0, zone      DMA "));
}

fn fail(file: &str, script: &str) -> String {
    match run(file, script, small()) {
        Ok(_) => panic!("{file} should have failed"),
        Err(e) => e.to_string(),
    }
}

/// Bad input to the reclaim functions is an error naming the call (or the
/// errno the system call would give), never a panic, and the machine
/// stays intact.
#[test]
fn reclaim_functions_refuse_bad_input() {
    let e = fail("s.rhai", "swapon(\"12Q\");");
    assert!(e.starts_with("s.rhai:1:1: swapon(\"12Q\"): "), "{e}");
    let e = fail("s.rhai", "swapon(\"4K\");");
    assert!(e.starts_with("s.rhai:1:1: swapon(\"4K\"): "), "{e}");
    let e = fail("s.rhai", "swapoff(300);");
    assert!(
        e.starts_with("s.rhai:1:1: swapoff(300): no such swap type"),
        "{e}"
    );
    let e = fail("s.rhai", "sysctl(\"vm.swappiness\", 201);");
    assert!(e.contains("EINVAL: the range is 0..=200"), "{e}");
    let e = fail("s.rhai", "sysctl(\"vm.drop_caches\", 0);");
    assert!(e.contains("EINVAL: the range is 1..=4"), "{e}");
    let e = fail("s.rhai", "swap_rss(999);");
    assert!(e.contains("swap_rss(999): no such process"), "{e}");
    // swapoff of a type that is not on is the syscall's EINVAL, and a
    // valid run afterwards still checks clean.
    let (out, _) = run(
        "ok.rhai",
        "expect_eq(swapoff(3), errno(\"EINVAL\"), \"no device 3\");\nlet t = swapon(\"1M\");\nexpect_eq(swapoff(t), 0, \"off\");\ncheck();",
        small(),
    )
    .unwrap();
    assert_eq!(out.failures, 0);
}

#[test]
fn errors_name_file_line_and_column() {
    let e = fail("bad.rhai", "let x = 1;\nexpect(x == 2, \"x is two\");\n");
    assert_eq!(e, "bad.rhai:2:1: expectation failed: x is two");
    let e = fail("syntax.rhai", "let = ;");
    assert!(e.starts_with("syntax.rhai:1:5: syntax error"), "{e}");
    let e = fail("gfp.rhai", "\n\nalloc_pages(\"GFP_BOGUS\", 0);");
    assert!(
        e.starts_with("gfp.rhai:3:1:") && e.contains("unknown GFP flags"),
        "{e}"
    );
    let e = fail("free.rhai", "free_pages(12345, 0);");
    assert!(e.contains("not an allocated block"), "{e}");
    let e = fail("boot.rhai", "boot(#{ram: \"1X\"});");
    assert!(e.contains("bad size"), "{e}");
}

#[test]
fn boot_la57_gives_five_level_processes() {
    let script = r#"
boot(#{ram: "256M", la57: true});
let pid = spawn("hi");
let a = mmap(pid, 0x7f000000000000, 4096, "PROT_READ|PROT_WRITE",
             "MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED|MAP_POPULATE");
expect(a == 0x7f000000000000, "MAP_FIXED above 128 TiB");
let b = mmap(pid, 0, 4096, "PROT_READ", "MAP_PRIVATE|MAP_ANONYMOUS");
expect(b < 0x7ffffffff000, "no hint: below DEFAULT_MAP_WINDOW");
"#;
    let (out, m) = run("la57.rhai", script, small()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.failures, 0);
    assert!(m.config().la57);
    assert_eq!(
        m.kernel_pt().unwrap().mode(),
        mm::arch::pte::PagingMode::X86_64L5
    );
    let e = fail("la57.rhai", "boot(#{la57: 1});");
    assert!(e.starts_with("la57.rhai:1:"), "{e}");
}

#[test]
fn same_inputs_print_the_same_bytes() {
    // DESIGN principle 3: a run is deterministic, kernel log included.
    let a = run("default", DEFAULT_SCENARIO, small()).unwrap();
    let b = run("default", DEFAULT_SCENARIO, small()).unwrap();
    assert_eq!(a.0.output, b.0.output);
    assert_eq!(a.1.dmesg(), b.1.dmesg());
    assert_eq!(a.1.proc("zoneinfo"), b.1.proc("zoneinfo"));
}

/// Every tracepoint lmm has (`mm::trace::EVENTS`: the issue's kmem, exceptions,
/// filemap, vmscan, oom, tlb events and lmm's own buddy, swap ones) fires
/// in the scenarios lmm ships: reclaim.rhai (kswapd, the LRU, writeback,
/// swap, the page cache, per-CPU lists, buddy split and merge), oom.rhai
/// (direct reclaim, the OOM victim) and slab.rhai (kmalloc, kfree).
#[test]
fn every_tracepoint_fires_in_the_shipped_scenarios() {
    use mm::trace::{EventMask, EVENTS};
    use std::collections::BTreeSet;
    let mut seen = BTreeSet::new();
    for file in ["reclaim.rhai", "oom.rhai", "slab.rhai"] {
        let config = MachineConfig::default();
        config.trace.0.enable(EventMask::ALL);
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scenarios/").to_string() + file;
        let text = std::fs::read_to_string(&path).unwrap();
        run(&path, &text, config.clone()).unwrap();
        seen.extend(config.trace.0.take().records.iter().map(|r| r.event.id()));
    }
    let missing: Vec<&str> = EVENTS
        .iter()
        .filter(|(id, ..)| !seen.contains(id))
        .map(|&(_, _, name)| name)
        .collect();
    assert!(missing.is_empty(), "never fired: {missing:?}");
}
