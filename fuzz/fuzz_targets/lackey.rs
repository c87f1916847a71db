//! The lackey parser and replay engine on arbitrary bytes: every line
//! through `parse_line`, the whole input through `replay` on a process of
//! a small machine (at most 256 accesses, going on after failures), then
//! the machine's invariant checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use machine::MachineConfig;
use workload::lackey::{parse_line, replay, MachineLackey, Options};

fuzz_target!(|data: &[u8]| {
    for line in data.split(|&b| b == b'\n') {
        let _ = parse_line(line);
    }
    let config = MachineConfig {
        ram: 64 << 20,
        ..MachineConfig::default()
    };
    let mut target = MachineLackey::boot(config).expect("boot");
    let opts = Options {
        keep_going: true,
        limit: Some(256),
    };
    let _ = replay(data, "fuzz.lackey", &mut target, &opts);
    if let Err(e) = target.machine().check() {
        panic!("invariants broken after replay: {e}");
    }
});
