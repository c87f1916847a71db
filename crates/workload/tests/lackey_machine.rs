//! `lmm replay lackey` on lmm's own machine: the fault handler, not a
//! fake, serves every access of a recorded valgrind lackey trace. The
//! expected counts come from a model computed here from the raw trace:
//! each page faults once when first touched (a read maps the shared zero
//! page, a write a page of its own), once more when a page first read is
//! later written (copy-on-write of the zero page), and only written pages
//! are resident.

use std::collections::BTreeMap;

use machine::MachineConfig;
use workload::lackey::{run_cli, MachineLackey};

const TRACE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/lackey/touch.lk"
);

#[test]
fn lackey_replay_on_the_machine_matches_a_page_model() {
    let text = std::fs::read_to_string(TRACE).unwrap();
    // page -> (first access was a write, written at some point)
    let mut pages: BTreeMap<u64, (bool, bool)> = BTreeMap::new();
    for line in text.lines() {
        let t = line.trim_start();
        let Some((kind, rest)) = t.split_once(char::is_whitespace) else {
            continue;
        };
        if !matches!(kind, "I" | "L" | "S" | "M") {
            continue;
        }
        let (addr, size) = rest.trim().split_once(',').unwrap();
        let addr = u64::from_str_radix(addr, 16).unwrap();
        let size: u64 = size.parse().unwrap();
        let write = matches!(kind, "S" | "M");
        let first_write = kind == "S";
        for page in (addr >> 12)..=((addr + size.max(1) - 1) >> 12) {
            let e = pages.entry(page).or_insert((first_write, false));
            e.1 |= write;
        }
    }
    let distinct = pages.len() as u64;
    let written = pages.values().filter(|p| p.1).count() as u64;
    let cow = pages.values().filter(|p| !p.0 && p.1).count() as u64;

    let mut target = MachineLackey::boot(MachineConfig {
        ram: 64 << 20,
        ..Default::default()
    })
    .unwrap();
    let mut out = Vec::new();
    let s = run_cli(&[TRACE.to_string()], &mut target, &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains(&format!("pages touched: {distinct} ")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "faults: {} (minor {}, major 0)",
            distinct + cow,
            distinct + cow
        )),
        "expected {distinct} first-touch faults and {cow} copy-on-write faults:\n{out}"
    );
    assert!(out.contains(&format!("RSS: {written} pages")), "{out}");
    assert!(s.accesses.iter().sum::<u64>() > 0);
    target.machine().check().unwrap();
}
