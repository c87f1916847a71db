//! Processes on 32-bit x86 machines (2-level and PAE page tables): the 3G/1G
//! layout, user memory through the 32-bit MMU walk, and /proc/PID/maps as
//! a 32-bit kernel prints it.

mod common;

use common::check;
use machine::hostfs::HostFile;
use machine::{Machine, MachineConfig};
use mm::arch::Arch;
use mm::mmap::{MAP_ANONYMOUS, MAP_POPULATE, MAP_PRIVATE, PROT_READ, PROT_WRITE};
use mm::types::PAGE_SIZE;

fn run(arch: Arch) {
    let mut m = Machine::boot(MachineConfig {
        arch,
        ram: 1 << 30,
        ..Default::default()
    })
    .unwrap();
    let pid = m.spawn("t").unwrap();
    // arch/x86/mm/mmap.c on a 3 GiB TASK_SIZE: gap = max(8 MiB stack + 1 MiB
    // guard, 128 MiB), so mmap_base = 0xC0000000 - 128 MiB = 0xB8000000.
    let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE;
    let a = m
        .sys_mmap(
            pid,
            0,
            2 * PAGE_SIZE,
            PROT_READ | PROT_WRITE,
            flags,
            None,
            0,
        )
        .unwrap();
    assert_eq!(a, 0xb7ffe000);
    m.write_user(pid, a + 4090, b"across pages").unwrap();
    assert_eq!(m.read_user(pid, a + 4090, 12).unwrap(), b"across pages");
    let f = HostFile::open("/usr/bin/true").unwrap();
    let b = m
        .sys_mmap(
            pid,
            0,
            PAGE_SIZE,
            PROT_READ,
            MAP_PRIVATE,
            Some(f.clone()),
            0,
        )
        .unwrap();
    assert_eq!(b, 0xb7ffd000);
    // fs/proc/task_mmu.c: 8-digit addresses; a 32-bit kernel pads names to
    // column 48 (25 + 4 * 6 - 1) and has no [vsyscall] gate.
    let maps = m.proc_pid(pid, "maps").unwrap();
    let (maj, min) = f.dev();
    let prefix = format!(
        "b7ffd000-b7ffe000 r--p 00000000 {maj:02x}:{min:02x} {} ",
        f.ino()
    );
    let want = format!(
        "{prefix}{}{}\nb7ffe000-b8000000 rw-p 00000000 00:00 0 \n",
        " ".repeat(49 - prefix.len()),
        f.path()
    );
    assert_eq!(maps, want);
    // Above TASK_SIZE is out of reach.
    assert!(m
        .sys_mmap(
            pid,
            0xc000_0000,
            PAGE_SIZE,
            PROT_READ,
            flags | mm::mmap::MAP_FIXED,
            None,
            0
        )
        .is_err());
    check(&m);
    m.exit(pid).unwrap();
    check(&m);
}

#[test]
fn two_level_x86_process() {
    run(Arch::X86);
}

#[test]
fn pae_x86_process() {
    run(Arch::X86Pae);
}

#[test]
fn exec_on_a_32_bit_machine_is_enoexec() {
    // An x86-64 ELF fails elf_check_arch on a 32-bit kernel.
    let mut m = Machine::boot(MachineConfig {
        arch: Arch::X86,
        ram: 1 << 30,
        ..Default::default()
    })
    .unwrap();
    let pid = m.spawn("t").unwrap();
    assert_eq!(
        m.exec(pid, "/usr/bin/true", &["true".into()], &[])
            .unwrap_err(),
        mm::errno::Errno::ENOEXEC
    );
    check(&m);
}
