//! A scenario can neither hang lmm nor break it. Each class of bad input
//! found by trying it as a careless user has a test here: scripts that run
//! forever or grow without bound stop with an error naming the limit, and
//! calls that would be a kernel BUG (or silent corruption) in Linux are
//! refused with an error naming the call, before they reach the machine.

use machine::{Machine, MachineConfig};
use mm::types::{Pfn, PhysAddr};
use workload::scenario::{run, run_with_limits, Limits};

fn small() -> MachineConfig {
    MachineConfig {
        ram: 256 << 20,
        ..Default::default()
    }
}

/// The error of a script that must fail.
fn fail_with(script: &str, limits: &Limits) -> String {
    match run_with_limits("t.rhai", script, small(), limits) {
        Ok(_) => panic!("should have failed: {script}"),
        Err(e) => e.to_string(),
    }
}

fn fail(script: &str) -> String {
    fail_with(script, &Limits::default())
}

fn ok(script: &str) {
    if let Err(e) = run("t.rhai", script, small()) {
        panic!("{e}");
    }
}

// ---------------------------------------------------------------------------
// Limits: every one stops the script with an error that names it.

#[test]
fn the_defaults_bound_every_limit() {
    let l = Limits::default();
    assert!(l.max_operations > 0 && l.max_call_levels > 0);
    assert!(l.max_string_size > 0 && l.max_array_size > 0 && l.max_map_size > 0);
    assert!(l.max_boots > 0 && l.max_boot_ram > 0);
}

#[test]
fn an_infinite_loop_stops_at_the_operation_limit() {
    let e = fail("let x = 0;\nloop { }");
    assert!(e.starts_with("t.rhai:2:"), "{e}");
    let want = format!(
        "stopped after {} operations",
        Limits::default().max_operations
    );
    assert!(e.contains(&want) && e.contains("--max-operations"), "{e}");
    let l = Limits {
        max_operations: 1000,
        ..Limits::default()
    };
    let e = fail_with("let x = 0;\nwhile true { x += 1; }", &l);
    assert!(e.contains("stopped after 1000 operations"), "{e}");
}

#[test]
fn a_doubled_string_stops_at_the_string_limit() {
    let e = fail("let s = \"ab\";\nloop { s += s; }");
    assert!(e.starts_with("t.rhai:2:"), "{e}");
    assert!(
        e.contains("a string over 16777216 bytes") && e.contains("--max-string-size"),
        "{e}"
    );
    // One call asking for a huge string at once is refused the same way
    // (rather than aborting lmm on a failed allocation).
    let e = fail("let s = \"\"; s.pad(1 << 40, \"x\");");
    assert!(e.contains("--max-string-size"), "{e}");
}

#[test]
fn deep_recursion_stops_at_the_call_depth_limit() {
    let e = fail("fn f(n) { f(n + 1) }\nf(0);");
    assert!(
        e.contains("stopped at 64 nested function calls") && e.contains("--max-call-levels"),
        "{e}"
    );
    let l = Limits {
        max_call_levels: 8,
        ..Limits::default()
    };
    let e = fail_with("fn f(n) { f(n + 1) }\nf(0);", &l);
    assert!(e.contains("stopped at 8 nested"), "{e}");
}

#[test]
fn growing_arrays_and_maps_stop_at_their_limits() {
    let l = Limits {
        max_array_size: 1000,
        max_map_size: 1000,
        ..Limits::default()
    };
    let e = fail_with("let a = [];\nloop { a.push(1); }", &l);
    assert!(
        e.starts_with("t.rhai:2:") && e.contains("an array over 1000 elements"),
        "{e}"
    );
    assert!(e.contains("--max-array-size"), "{e}");
    let e = fail_with("let a = [1];\nloop { a += a; }", &l);
    assert!(e.contains("--max-array-size"), "{e}");
    let e = fail("let a = []; a.pad(1 << 40, 0);");
    assert!(e.contains("--max-array-size"), "{e}");
    let e = fail_with(
        "let m = #{};\nlet i = 0;\nloop { let k = #{}; k[\"k\" + i] = i; m += k; i += 1; }",
        &l,
    );
    assert!(
        e.contains("an object map over 1000 entries") && e.contains("--max-map-size"),
        "{e}"
    );
}

#[test]
fn booting_huge_machines_again_and_again_stops_quickly() {
    // `boot 4T` fifty times: the RAM booted by one script is bounded
    // (4 TiB by default; one such machine boots in about a second).
    assert_eq!(Limits::default().max_boot_ram, 4 << 40);
    let l = Limits {
        max_boot_ram: 2 << 40,
        ..Limits::default()
    };
    let t = std::time::Instant::now();
    let e = fail_with("for i in 0..50 {\n boot(#{ram: \"4T\"});\n}", &l);
    assert!(
        e.starts_with("t.rhai:2:") && e.contains("--max-boot-ram"),
        "{e}"
    );
    assert!(t.elapsed().as_secs() < 5, "refused before booting");
    // And the number of machines.
    let l = Limits {
        max_boots: 5,
        ..Limits::default()
    };
    let e = fail_with("for i in 0..50 { boot(#{ram: \"16M\"}); }", &l);
    assert!(
        e.contains("a script may boot 5 machines") && e.contains("--max-boots"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------
// Refusals: each names the call; the machine is never touched.

#[test]
fn sysctl_values_outside_linuxs_ranges_are_einval() {
    // proc_dointvec_minmax: min_free_kbytes 0..=INT_MAX, watermark_scale_factor
    // 1..=3000 (mm/page_alloc.c's sysctl table); anything else is EINVAL.
    for (name, v) in [
        ("vm.min_free_kbytes", -1i64),
        ("vm.min_free_kbytes", 1 << 31),
        ("vm.watermark_scale_factor", 0),
        ("vm.watermark_scale_factor", 3001),
        ("vm.watermark_scale_factor", -5),
        ("vm.legacy_va_layout", -1),
    ] {
        let e = fail(&format!("sysctl(\"{name}\", {v});"));
        assert!(
            e.starts_with(&format!("t.rhai:1:1: sysctl({name}, {v}): EINVAL")),
            "{e}"
        );
    }
    // The extremes of the ranges are taken: INT_MAX lifts every watermark
    // above the zone, so allocations fail, and nothing panics.
    ok(r#"
sysctl("vm.min_free_kbytes", 2147483647);
expect_eq(alloc_pages("GFP_KERNEL|__GFP_NOWARN", 0), -1, "below min everywhere");
sysctl("vm.min_free_kbytes", 0);
sysctl("vm.watermark_scale_factor", 1);
sysctl("vm.watermark_scale_factor", 3000);
let p = alloc_pages("GFP_KERNEL", 0);
expect(p >= 0, "allocations work again");
free_pages(p, 0);
check();
"#);
}

#[test]
fn free_pages_refuses_what_the_script_does_not_hold() {
    let e = fail("let p = alloc_pages(\"GFP_KERNEL\", 0);\nfree_pages(p, 0);\nfree_pages(p, 0);");
    assert!(
        e.starts_with("t.rhai:3:1: free_pages(") && e.contains("already freed"),
        "double free: {e}"
    );
    let e = fail("let p = alloc_pages(\"GFP_KERNEL\", 0);\nfree_pages(p, 3);");
    assert!(
        e.contains("the block was allocated with order 0"),
        "larger order: {e}"
    );
    let e = fail("let p = alloc_pages(\"GFP_KERNEL\", 2);\nfree_pages(p, 1);");
    assert!(
        e.contains("the block was allocated with order 2"),
        "smaller order: {e}"
    );
    let e = fail("let p = alloc_pages(\"GFP_KERNEL\", 2);\nfree_pages(p + 1, 0);");
    assert!(e.contains("not an allocated block"), "inside a block: {e}");
    // Pages the kernel holds: a large kmalloc comes from the page allocator,
    // a process's pages from its faults; neither is the script's to free.
    let e = fail("let o = kmalloc(20000, \"GFP_KERNEL\");\nfree_pages(o / 4096, 3);");
    assert!(e.contains("not an allocated block"), "kmalloc's block: {e}");
    let e = fail("free_pages(1, 0);");
    assert!(
        e.contains("not an allocated block"),
        "a firmware-reserved frame: {e}"
    );
    for pfn in ["-1", "0x7fffffffffff", "12345"] {
        let e = fail(&format!("free_pages({pfn}, 0);"));
        assert!(e.contains("not an allocated block"), "{pfn}: {e}");
    }
    // After a reboot, the old machine's blocks are gone with it.
    let e = fail("let p = alloc_pages(\"GFP_KERNEL\", 0);\nboot(#{});\nfree_pages(p, 0);");
    assert!(e.starts_with("t.rhai:3:1:"), "{e}");
    // What the script does hold, it frees, on any CPU.
    ok(r#"
let p = alloc_pages("GFP_KERNEL", 3);
free_pages_on(1, p, 3);
check();
"#);
}

/// The physical address of the struct page of the first managed frame of
/// a machine booted like `small()` (boot is deterministic).
fn memmap_phys() -> u64 {
    let m = Machine::boot(small()).unwrap();
    let dm = m.pa().direct_map();
    let base = dm.ptr(PhysAddr(0)) as usize;
    let pfn = (0..1 << 16)
        .map(Pfn)
        .find(|&p| m.pa().page(p).is_some())
        .unwrap();
    let page = m.pa().page(pfn).unwrap() as *const _ as usize;
    let pa = (page - base) as u64;
    assert!(dm.contains(PhysAddr(pa), 64), "the memmap lives in RAM");
    pa
}

#[test]
fn writes_into_frames_the_script_does_not_hold_are_refused() {
    let memmap = memmap_phys();
    // The memmap itself, by physical address and through the direct map.
    let e = fail(&format!(
        "write_phys({memmap}, \"garbage over struct page\");"
    ));
    assert!(
        e.starts_with("t.rhai:1:1: write_phys: ") && e.contains("not inside"),
        "{e}"
    );
    let e = fail(&format!(
        "let v = page_address({});\nkernel_write(v + {}, \"garbage\");",
        memmap >> 12,
        memmap & 0xfff
    ));
    assert!(
        e.starts_with("t.rhai:2:1: kernel_write(") && e.contains("does not hold"),
        "{e}"
    );
    // Past the end of a held block, into a freed block, past an object.
    let e = fail(
        "let p = alloc_pages(\"GFP_KERNEL\", 0);\nwrite_phys(pfn_phys(p) + 4090, \"0123456789\");",
    );
    assert!(e.starts_with("t.rhai:2:1: write_phys"), "{e}");
    let e = fail("let p = alloc_pages(\"GFP_KERNEL\", 0);\nfree_pages(p, 0);\nwrite_phys(pfn_phys(p), \"x\");");
    assert!(e.starts_with("t.rhai:3:1: write_phys"), "{e}");
    let e = fail("let o = kmalloc(8, \"GFP_KERNEL\");\nwrite_phys(o, \"nine bytes\");");
    assert!(e.starts_with("t.rhai:2:1: write_phys"), "{e}");
    let e = fail("let o = kmalloc(8, \"GFP_KERNEL\");\nkfree(o);\nwrite_phys(o, \"x\");");
    assert!(e.starts_with("t.rhai:3:1: write_phys"), "{e}");
    // What the script holds, it writes: whole blocks, objects up to ksize,
    // vmalloc areas, kmapped pages.
    ok(r#"
let p = alloc_pages("GFP_KERNEL", 1);
write_phys(pfn_phys(p) + 8190, "ok");
let o = kmalloc(100, "GFP_KERNEL");
let s = "x";
s.pad(ksize(o), "x");
write_phys(o, s);
let v = vmalloc(8192);
expect_eq(kernel_write(v + 4000, "across the page"), 0, "vmalloc area");
expect_eq(kernel_write(page_address(p), "direct map"), 0, "a held page");
kfree(o);
vfree(v);
free_pages(p, 1);
check();
"#);
}

#[test]
fn pfns_outside_the_memmap_and_absent_cpus_are_refused() {
    for call in [
        "kmap(0x7fffffffffff)",
        "kunmap(-1)",
        "page_address(1 << 40)",
        "kmap_atomic(0, 1 << 40)",
        "vmap([1 << 40])",
    ] {
        for arch in ["x86_64", "x86-pae"] {
            let cfg = MachineConfig {
                arch: mm::arch::Arch::parse(arch).unwrap(),
                ..small()
            };
            let e = match run("t.rhai", &format!("{call};"), cfg) {
                Ok(_) => panic!("{call} on {arch} should fail"),
                Err(e) => e.to_string(),
            };
            let name = call.split('(').next().unwrap();
            assert!(
                e.starts_with(&format!("t.rhai:1:1: {name}: pfn "))
                    && e.contains("outside the memmap"),
                "{call} on {arch}: {e}"
            );
        }
    }
    for call in [
        "kmap_atomic(99, 1)",
        "kmap_atomic(-1, 1)",
        "kunmap_atomic(7, 0)",
    ] {
        let e = fail(&format!("{call};"));
        assert!(e.contains(": no CPU "), "{call}: {e}");
    }
}

#[test]
fn the_kernels_own_slab_caches_cannot_be_destroyed() {
    let e = fail("kmem_cache_destroy(0);");
    assert!(
        e.starts_with("t.rhai:1:1: kmem_cache_destroy(0): ") && e.contains("the kernel's cache"),
        "{e}"
    );
    // The script's own: destroyed once, then gone.
    ok(r#"
let c = kmem_cache_create("mine", 100, 0, "SLAB_NO_MERGE");
expect_eq(kmem_cache_destroy(c), 0, "destroyed");
expect_errno(kmem_cache_destroy(c), "EINVAL", "and gone");
"#);
}
