//! exec of arbitrary bytes: written to a file (mode 0755) and exec'd on a
//! spawned process of a fresh small machine (a fresh page cache: the file
//! is rewritten for every input, and lmm's cache assumes host files do
//! not change), then the process exits and the machine's invariant checks
//! must pass after each step. Inputs starting with `#!` are scripts (their
//! interpreter paths are whatever the bytes say).
#![no_main]

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use machine::{Machine, MachineConfig};

fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("lmm-fuzz-elf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir.join("prog")
    })
}

fuzz_target!(|data: &[u8]| {
    let path = path();
    std::fs::write(path, data).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut m = Machine::boot(MachineConfig {
        ram: 64 << 20,
        ..MachineConfig::default()
    })
    .expect("boot");
    let pid = m.spawn("fuzz").expect("spawn");
    let p = path.to_str().expect("utf-8 path");
    let _ = m.exec(pid, p, &["prog".to_string()], &[]);
    if let Err(e) = m.check() {
        panic!("invariants broken after exec: {e}");
    }
    m.exit(pid).expect("exit");
    if let Err(e) = m.check() {
        panic!("invariants broken after exit: {e}");
    }
});
