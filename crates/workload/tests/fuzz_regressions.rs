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
