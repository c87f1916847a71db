//! The strace parser on arbitrary text: parse, then every typed view of
//! every call. Any panic or abort (stack overflow) is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use workload::strace::{parse_str, Event};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(lines) = parse_str("fuzz.strace", &text) {
        for l in &lines {
            if let Event::Syscall(c) = &l.event {
                let _ = c.as_mmap();
                let _ = c.as_munmap();
                let _ = c.as_mprotect();
                let _ = c.as_mremap();
                let _ = c.as_brk();
                let _ = c.as_madvise();
                let _ = c.as_msync();
                let _ = c.as_execve();
                let _ = c.ret.value();
                let _ = c.ret.errno();
                for a in &c.args {
                    let _ = a.as_u64();
                    let _ = a.as_i64();
                    let _ = a.as_str();
                }
            }
        }
    }
});
