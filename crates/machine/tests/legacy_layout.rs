//! vm.legacy_va_layout: the bottom-up mmap layout from TASK_SIZE/3.

mod common;

use common::check;
use machine::{Machine, MachineConfig};

#[test]
fn legacy_layout_places_the_interpreter_and_vdso_bottom_up() {
    let mut m = Machine::boot(MachineConfig {
        ram: 512 << 20,
        ..Default::default()
    })
    .unwrap();
    m.set_legacy_va_layout(true);
    let pid = m.spawn("t").unwrap();
    m.exec(pid, "/usr/bin/true", &["true".into()], &[]).unwrap();
    let maps = m.proc_pid(pid, "maps").unwrap();
    let lines: Vec<&str> = maps.lines().collect();
    // linux-facts 6.1: mmap_legacy_base = PAGE_ALIGN(TASK_SIZE / 3) =
    // 0x2aaaaaaab000; ld.so is mapped first, then [vvar], [vvar_vclock] and
    // [vdso] above it (as `setarch -L -R` shows on this machine).
    assert!(lines[0].starts_with("2aaaaaaab000-"), "{maps}");
    assert!(lines[0].ends_with("ld-linux-x86-64.so.2"), "{maps}");
    let ld_end = lines
        .iter()
        .rev()
        .find(|l| l.ends_with("ld-linux-x86-64.so.2"))
        .unwrap()[13..25]
        .to_string();
    let vvar = lines.iter().find(|l| l.ends_with("[vvar]")).unwrap();
    assert_eq!(&vvar[..12], ld_end, "[vvar] right above ld.so:\n{maps}");
    // A plain mmap goes above them, bottom-up.
    let a = m.sys_mmap(pid, 0, 4096, 3, 0x22, None, 0).unwrap();
    let vdso_end = u64::from_str_radix(
        &lines.iter().find(|l| l.ends_with("[vdso]")).unwrap()[13..25],
        16,
    )
    .unwrap();
    assert_eq!(a, vdso_end);
    check(&m);
}
