//! Inputs that fuzzing (`fuzz/`, see the README's "Long runs") found to
//! crash or hang lmm, kept as regression tests: each must now give a
//! result or an error, and leave the machine's invariants intact.

use machine::MachineConfig;

fn small() -> MachineConfig {
    MachineConfig {
        ram: 64 << 20,
        ..MachineConfig::default()
    }
}

/// fuzz/artifacts/scenario/crash-5efe1727 (minimised): a min_free_kbytes
/// of INT_MAX, which the sysctl accepts (0..INT_MAX), put the low
/// watermark, and so the per-CPU lists' high_min, above high_max: the pcp
/// update's `clamp(high_min, high_max)` panicked once a list had been
/// used. Linux's min()/max() let high_min win.
#[test]
fn huge_min_free_kbytes_after_the_pcp_lists_are_used() {
    let script = r#"
        let p = spawn("f");
        exec(p, "/bin/ls", []);
        sysctl("vm.min_free_kbytes", 0x7fffffff);
        let q = alloc_pages("GFP_ATOMIC", 0);
        if q >= 0 { free_pages(q, 0); }
        check();
    "#;
    let (_, m) = workload::scenario::run("crash-5efe1727.rhai", script, small()).unwrap();
    m.check().unwrap();
}

/// fuzz/artifacts/scenario/crash-049e00bb and crash-3e701399: a user
/// access in the last page of the address space (`-4096`, i.e.
/// 0xfffffffffffff000) overflowed computing the end of its page in the MMU
/// loop. Such an address is not canonical: SIGSEGV, as for any other.
#[test]
fn user_access_in_the_last_page_of_the_address_space() {
    let script = r#"
        let p = spawn("f");
        let r = write_user(p, -4096, "x");
        expect(r < 0, "write_user at -4096 fails: " + r);
        expect(store(p, -4096, "x").starts_with("SIGSEGV"), "store");
        expect(type_of(load(p, -4096, 1)) == "string", "load");
        expect(touch(p, -4096, 4096, "w").starts_with("SIGSEGV"), "touch");
        expect(touch(p, -1, 1, "r").starts_with("SIGSEGV"), "touch the last byte");
        check();
    "#;
    let (_, m) = workload::scenario::run("crash-049e00bb.rhai", script, small()).unwrap();
    m.check().unwrap();
}

/// Every scenario input the fuzzer crashed on, as the script it generated
/// (`LMM_FUZZ_PRINT=1` on the artifact): each must run to a result or an
/// error without panicking, and leave the machine intact.
#[test]
fn every_scenario_crash_reproducer_runs() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rhai"))
        .collect();
    names.sort();
    assert!(names.len() >= 5, "reproducers in {}", dir.display());
    for p in names {
        let script = std::fs::read_to_string(&p).unwrap();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        // Every generated call is inside `try`: the script as a whole runs.
        let (_, m) = workload::scenario::run(&name, &script, small())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        m.check().unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
