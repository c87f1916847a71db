//! The exec rules that the differential test (`exec_differential.rs`)
//! found lmm getting wrong, one file each, on a real machine process. Each
//! expected result is what Linux 6.18 answered for the same bytes (run
//! `tools/record/progs/exec_errno.c` on the files this test writes, kept
//! with `LMM_KEEP_EXEC_RULES=DIR`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use machine::exec;
use machine::{Machine, MachineConfig};
use mm::errno::Errno;

fn base() -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/bin/mmap_basic-nopie");
    std::fs::read(p).expect("fixture binary")
}

fn le32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}
fn le64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}
fn rd32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}
fn rd64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

/// Offsets of the program headers of type `t`.
fn phdrs(b: &[u8], t: u32) -> Vec<usize> {
    let phoff = rd64(b, 32) as usize;
    let phnum = u16::from_le_bytes([b[56], b[57]]) as usize;
    (0..phnum)
        .map(|i| phoff + i * 56)
        .filter(|&o| rd32(b, o) == t)
        .collect()
}

fn dir() -> PathBuf {
    match std::env::var("LMM_KEEP_EXEC_RULES") {
        Ok(d) => PathBuf::from(d),
        Err(_) => std::env::temp_dir().join(format!("lmm-exec-rules-{}", std::process::id())),
    }
}

/// Writes `bytes` as an executable `name` and execs it on a new process.
fn exec_bytes(m: &mut Machine, name: &str, bytes: &[u8]) -> (Result<(), Errno>, bool) {
    let d = dir();
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join(name);
    std::fs::write(&p, bytes).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = p.to_str().unwrap();
    let argv = [name.to_string()];
    let pid = m.spawn("rules").unwrap();
    let r = m.exec(pid, path, &argv, &[]).map(|_| ());
    m.exit(pid).unwrap();
    let fatal = r.is_err()
        && exec::exec_until_point_of_no_return(path, path, &argv, &[], &Default::default()).is_ok();
    (r, fatal)
}

#[test]
fn exec_follows_the_kernel_rules_found_by_the_differential_test() {
    let mut m = Machine::boot(MachineConfig::default()).unwrap();
    let orig = base();
    let loads = phdrs(&orig, 1);
    let interp = phdrs(&orig, 3)[0];
    let mut case = |name: &str, f: &dyn Fn(&mut Vec<u8>), want: Result<(), Errno>, fatal: bool| {
        let mut b = orig.clone();
        f(&mut b);
        let got = exec_bytes(&mut m, name, &b);
        assert_eq!(got, (want, fatal), "{name}");
    };
    case("intact", &|_| {}, Ok(()), false);
    // elf_check_arch (arch/x86/include/asm/elf.h) looks at e_machine only:
    // the 64-bit loader reads any EI_CLASS as ELF64.
    case("class32", &|b| b[4] = 1, Ok(()), false);
    // vm_mmap (mm/util.c): `offset + PAGE_ALIGN(len) < offset` is EINVAL.
    // A p_filesz of almost 2^64 makes the file range wrap.
    let rw = *loads.last().unwrap();
    case(
        "filesz-wraps",
        &|b| le64(b, rw + 32, u64::MAX - 0x2000),
        Err(Errno::EINVAL),
        true,
    );
    // elf_load calls vm_brk_flags(zero_start, zero_end - zero_start) even
    // when p_memsz wraps: the "negative" length is > TASK_SIZE, and
    // check_brk_limits → get_unmapped_area gives ENOMEM (before the
    // p_filesz > p_memsz test could give EINVAL).
    case(
        "memsz-wraps",
        &|b| le64(b, rw + 40, u64::MAX - 0x2000),
        Err(Errno::ENOMEM),
        true,
    );
    // An empty PT_INTERP name: getname_kernel accepts "", the walk ends
    // at the working directory, may_open refuses to execute it: EACCES.
    case(
        "interp-empty",
        &|b| {
            let off = rd64(b, interp + 8) as usize;
            b[off] = 0;
        },
        Err(Errno::EACCES),
        false,
    );
    // A PT_INTERP offset that is negative as a loff_t: kernel_read's
    // rw_verify_area says EINVAL (not the EIO of a short read).
    case(
        "interp-offset-negative",
        &|b| le64(b, interp + 8, 0x9200_0000_0000_0318),
        Err(Errno::EINVAL),
        false,
    );
    // A PT_INTERP past the end of the file is a short read: EIO.
    case(
        "interp-offset-past-eof",
        &|b| le64(b, interp + 8, 1 << 40),
        Err(Errno::EIO),
        false,
    );
    // A later PT_LOAD (read-only data, one page) is mapped MAP_FIXED over the
    // top page of the stack: create_elf_tables' copy_to_user of the
    // platform string there fails (no FOLL_FORCE after copy_strings):
    // EFAULT, after the point of no return.
    case(
        "over-stack-top",
        &|b| le64(b, loads[2] + 16, 0x7fff_ffff_e000),
        Err(Errno::EFAULT),
        true,
    );
    // The first PT_LOAD of an ET_EXEC is MAP_FIXED_NOREPLACE: over the
    // stack it is EEXIST.
    case(
        "first-over-stack",
        &|b| le64(b, loads[0] + 16, 0x7fff_ffff_e000),
        Err(Errno::EEXIST),
        true,
    );
    // A writable segment whose .bss starts in a page past the end of the
    // file: padzero's clear_user faults (SIGBUS) → EFAULT.
    case(
        "bss-past-eof",
        &|b| {
            let off = rd64(b, rw + 8) as usize;
            b.truncate(off & !0xfff);
        },
        Err(Errno::EFAULT),
        true,
    );
    // The same for a read-only segment: elf_load ignores padzero's
    // failure unless the segment is writable, and the file loads.
    case(
        "ro-bss-past-eof",
        &|b| {
            let off = rd64(b, rw + 8) as usize;
            le32(b, rw + 4, 4);
            b.truncate(off & !0xfff);
        },
        Ok(()),
        false,
    );
    m.check().unwrap();
    if std::env::var("LMM_KEEP_EXEC_RULES").is_err() {
        let _ = std::fs::remove_dir_all(dir());
    }
}

#[test]
fn an_empty_script_interpreter_is_the_working_directory() {
    // binfmt_script: "#!" followed by a NUL names the interpreter "";
    // open_exec("") opens the working directory: EACCES (recorded).
    let mut m = Machine::boot(MachineConfig::default()).unwrap();
    let got = exec_bytes(&mut m, "script-empty", b"#!\0-x\necho\n");
    assert_eq!(got, (Err(Errno::EACCES), false));
    // "#!" and a newline has no interpreter at all: ENOEXEC.
    let got = exec_bytes(&mut m, "script-none", b"#!\n");
    assert_eq!(got, (Err(Errno::ENOEXEC), false));
}
