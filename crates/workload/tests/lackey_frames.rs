//! Page-replacement experiments on the machine: a process limited to N
//! resident pages, with the victims really swapped out and faulted back.
//! With `fifo`, `lru` and `opt` the fault counts equal the textbook's for
//! the reference string (Silberschatz, Galvin, Gagne, "Operating System
//! Concepts", 10th ed., §10.4: the string 7,0,1,2,0,3,0,4,2,3,0,3,2,1,2,0,1,7,0,1
//! with 3 frames gives FIFO 15, LRU 12, OPT 9 page faults; Belady's anomaly
//! string 1,2,3,4,1,2,5,1,2,3,4,5 gives FIFO 9 faults with 3 frames and 10
//! with 4), every policy agrees with its plain simulation (the run fails
//! otherwise) and every page comes back from swap with its bytes.

use machine::MachineConfig;
use workload::lackey::frames::run_on_machine;

fn config() -> MachineConfig {
    MachineConfig {
        ram: 64 << 20,
        cpus: 1,
        ..Default::default()
    }
}

#[test]
fn textbook_counts_on_the_machine() {
    let s: Vec<u64> = [7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2, 1, 2, 0, 1, 7, 0, 1].to_vec();
    for (policy, faults) in [("fifo", 15), ("lru", 12), ("opt", 9)] {
        let r = run_on_machine(&s, policy, 3, &config()).unwrap();
        assert_eq!(r.faults, faults, "{policy}");
        // Cold misses are 6 (pages 7, 0, 1, 2, 3, 4); every other fault
        // brings a page back from swap, and the machine saw each fault.
        assert_eq!(r.swap_ins, faults - 6, "{policy}");
        assert_eq!(r.machine_faults.0, faults, "{policy}");
        assert_eq!(r.mismatches, 0);
    }
    let b: Vec<u64> = [1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5].to_vec();
    assert_eq!(run_on_machine(&b, "fifo", 3, &config()).unwrap().faults, 9);
    assert_eq!(run_on_machine(&b, "fifo", 4, &config()).unwrap().faults, 10);
}

#[test]
fn every_policy_on_the_machine_agrees_with_its_simulation_on_a_real_trace() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/lackey/touch.lk"
    );
    let input = workload::lackey::open(std::path::Path::new(path)).unwrap();
    let refs = workload::lackey::reference_string(input, path, None).unwrap();
    for p in mm::replacement::POLICIES {
        let r = run_on_machine(&refs, p, 8, &config()).unwrap();
        assert!(r.swap_outs > 0 && r.swap_ins > 0, "{p}: {r:?}");
        assert_eq!(r.mismatches, 0, "{p}");
        assert_eq!(
            r.pswp.1, r.swap_outs,
            "{p}: every eviction of a written page is written"
        );
    }
}
