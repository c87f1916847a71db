//! arm64 made whole: the boot log in arm64's shape, vmalloc and the linear
//! map under TTBR1, processes under TTBR0, and exec of aarch64 ELF files
//! placed by arm64's rules (TASK_SIZE 2^48, ELF_ET_DYN_BASE, mmap_base,
//! STACK_TOP, the vDSO), checked against real Debian arm64 binaries when
//! they are present (see [`debian_arm64_true_is_placed_by_arm64_rules`]).

use std::path::{Path, PathBuf};

use machine::{Machine, MachineConfig};
use mm::arch::arm64;
use mm::arch::layout::{
    ARM64_PAGE_OFFSET, ARM64_TASK_SIZE, ARM64_VMALLOC_END, ARM64_VMALLOC_START,
};
use mm::arch::pte::PagingMode;
use mm::arch::Arch;
use mm::errno::Errno;
use mm::types::{PhysAddr, VirtAddr, PAGE_SIZE};

fn boot(arch: Arch) -> Machine {
    Machine::boot(MachineConfig {
        arch,
        ram: 1 << 30,
        ..Default::default()
    })
    .unwrap()
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn boot_log_has_arm64_shape() {
    let d = boot(Arch::Arm64).dmesg();
    // A QEMU virt guest booted from a device tree (firecracker issue
    // #1146's arm64 log: "Machine model: linux,dummy-virt", "NUMA: No NUMA
    // configuration found", "NUMA: Faking a node at [mem ...]"; raspberrypi
    // /linux issue #6821's arm64 6.x log: "NODE_DATA(0) allocated [mem ...]"
    // then "Zone ranges:").
    for line in [
        "Machine model: linux,dummy-virt",
        "efi: UEFI not found.",
        "NUMA: No NUMA configuration found",
        "NUMA: Faking a node at [mem 0x0000000040000000-0x000000007fffffff]",
        "Zone ranges:",
        "  DMA      [mem 0x0000000040000000-0x000000007fffffff]",
        "  DMA32    empty",
        "  node   0: [mem 0x0000000040000000-0x000000007fffffff]",
    ] {
        assert!(d.contains(line), "missing {line:?} in\n{d}");
    }
    let order: Vec<usize> = [
        "Machine model",
        "NUMA: Faking",
        "NODE_DATA(0)",
        "Zone ranges",
    ]
    .iter()
    .map(|l| d.find(l).unwrap())
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{d}");
    // Nothing of x86's e820 path.
    for x86 in ["BIOS-e820", "BIOS-provided", "max_arch_pfn", "e820:"] {
        assert!(!d.contains(x86), "{x86} on arm64:\n{d}");
    }
    // x86 keeps its own shape.
    let x = boot(Arch::X86_64).dmesg();
    assert!(x.contains("BIOS-e820") && x.contains("max_arch_pfn") && !x.contains("Machine model"));
}

#[test]
fn vmalloc_and_the_linear_map_live_under_ttbr1() {
    let mut m = boot(Arch::Arm64);
    let pt = m.kernel_pt().unwrap();
    assert_eq!(pt.mode(), PagingMode::Arm64L4);
    // The linear map: PAGE_OFFSET is the start of DRAM (1 GiB), with 1 GiB
    // blocks where aligned.
    let (e, level) = pt.lookup(VirtAddr(ARM64_PAGE_OFFSET + 0x1234)).unwrap();
    assert_eq!(level, 3, "a 1 GiB block descriptor");
    assert!(e.global() && e.nx() && !e.user());
    assert_eq!(
        pt.translate(VirtAddr(ARM64_PAGE_OFFSET + 0x1234)),
        Some(PhysAddr(0x4000_1234))
    );
    let a = m.vmalloc(3 * PAGE_SIZE, true, "arm64_test").unwrap();
    assert!(a.0 >= ARM64_VMALLOC_START && a.0 + 3 * PAGE_SIZE <= ARM64_VMALLOC_END);
    m.kernel_write(VirtAddr(a.0 + 4000), b"across a page boundary")
        .unwrap();
    let mut back = [0u8; 22];
    m.kernel_read(VirtAddr(a.0 + 4000), &mut back).unwrap();
    assert_eq!(&back, b"across a page boundary");
    // VmallocTotal = (VMALLOC_END - VMALLOC_START) >> 10: the value real
    // 48-bit arm64 kernels print in /proc/meminfo.
    let meminfo = m.proc("meminfo").unwrap();
    assert!(
        meminfo.contains("VmallocTotal:   133141626880 kB"),
        "{meminfo}"
    );
    let info = m.proc("vmallocinfo").unwrap();
    assert!(info.contains("arm64_test"), "{info}");
    // The PTE in RAM is an ARMv8-A page descriptor: valid page, AF, global
    // (nG clear), PXN|UXN, hardware-dirty writable (DBM, no RDONLY).
    let pt = m.kernel_pt().unwrap();
    let (pte, level) = pt.lookup(a).unwrap();
    assert_eq!(level, 1);
    let raw = arm64::encode(pte);
    assert_eq!(raw & 3, 3);
    assert_eq!(
        raw & (arm64::AF | arm64::NG | arm64::PXN | arm64::UXN | arm64::DBM | arm64::RDONLY),
        arm64::AF | arm64::PXN | arm64::UXN | arm64::DBM
    );
    m.vfree(a).unwrap();
    assert!(!m.proc("vmallocinfo").unwrap().contains("arm64_test"));
    // A process's tables (TTBR0) never reach the kernel's.
    let pid = m.spawn("p").unwrap();
    let maps = m.proc_pid(pid, "maps").unwrap();
    assert!(!maps.contains("vsyscall"), "{maps}");
}

/// A minimal static ELF64 for `e_machine`: one R+X PT_LOAD of the file's
/// 512 bytes at 0x400000 (64 KiB aligned, as arm64 binaries are).
/// A fresh arm64 kernel's vmallocinfo (machine::qemu_virt, kobjects):
/// - one IRQ stack per possible CPU, vmalloc'd by `init_IRQ` (VMAP_STACK's
///   `init_irq_stacks`): IRQ_STACK_SIZE 16 KiB + guard = 20480, 4 pages,
///   flag vmalloc, named after init_IRQ's caller `start_kernel` (the return
///   address `__vmalloc_node` records); not in KernelStack;
/// - an idle stack per secondary CPU (`fork_idle`), in KernelStack;
/// - the ioremaps of QEMU virt's devices, each named `__ioremap_prot`
///   (generic_ioremap_prot records its caller, arm64's ioremap_prot), with
///   the page-aligned phys= and the size plus a guard page: GICv2
///   distributor and CPU interface (64 KiB), GICv2m frame, PL011, the two
///   virtio-mmio transports with a device (both in page 0x0a003000) and
///   the 256 MiB high PCIe ECAM.
///
/// The offsets are those of Debian's arm64 6.12.100 kernel (kobjects).
#[test]
fn a_fresh_arm64_kernel_has_irq_stacks_and_device_ioremaps() {
    let cpus = 3;
    let m = Machine::boot(MachineConfig {
        arch: Arch::Arm64,
        ram: 1 << 30,
        cpus,
        ..Default::default()
    })
    .unwrap();
    let info = m.proc("vmallocinfo").unwrap();
    let mut lines: Vec<&str> = info
        .lines()
        .map(|l| {
            l.split_once(' ')
                .expect("address range, then the rest")
                .1
                .trim_start()
        })
        .collect();
    lines.sort();
    let mut want = vec![];
    for _ in 0..cpus {
        want.push("20480 start_kernel+0x348/0x7e8 pages=4 vmalloc N0=4".to_string());
    }
    for _ in 1..cpus {
        want.push("20480 fork_idle+0x98/0x128 pages=4 vmalloc N0=4".to_string());
    }
    for (size, phys) in [
        (69632, 0x0800_0000u64),
        (69632, 0x0801_0000),
        (8192, 0x0802_0000),
        (8192, 0x0900_0000),
        (8192, 0x0a00_3000),
        (8192, 0x0a00_3000),
        (268439552, 0x40_1000_0000),
    ] {
        want.push(format!(
            "{size} __ioremap_prot+0x70/0xb8 phys={phys:#018x} ioremap"
        ));
    }
    want.sort();
    assert_eq!(lines, want, "{info}");
    // IRQ stacks are THREAD_ALIGN (2 * THREAD_SIZE) aligned, as task stacks.
    for a in m
        .vmap_areas()
        .areas()
        .filter(|a| a.caller.starts_with("start_kernel+"))
    {
        assert_eq!(a.addr.0 % (32 << 10), 0, "{:#x}", a.addr.0);
    }
    // Only the idle stacks count as task stacks; all the vmalloc'd stacks
    // count in VmallocUsed.
    let meminfo = m.proc("meminfo").unwrap();
    let kb = |key: &str| -> u64 {
        let l = meminfo.lines().find(|l| l.starts_with(key)).unwrap();
        l.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    assert_eq!(kb("KernelStack:"), 16 * (cpus as u64 - 1));
    assert_eq!(kb("VmallocUsed:"), 16 * (2 * cpus as u64 - 1));
    // The device mappings are device memory (MT_DEVICE_nGnRE) in RAM's
    // tables: the UART's page translates to its registers.
    let uart = m
        .vmap_areas()
        .areas()
        .find(|a| a.phys_addr == Some(PhysAddr(0x0900_0000)))
        .unwrap();
    let pt = m.kernel_pt().unwrap();
    assert_eq!(pt.translate(uart.addr), Some(PhysAddr(0x0900_0000)));
    let (pte, _) = pt.lookup(uart.addr).unwrap();
    let raw = arm64::encode(pte);
    assert_eq!(
        (raw & arm64::ATTRINDX_MASK) >> arm64::ATTRINDX_SHIFT,
        arm64::MT_DEVICE_NGNRE
    );
    // The 256 MiB ECAM window is aligned to its size (arm64's
    // IOREMAP_MAX_ORDER is PUD_SHIFT) and mapped by 2 MiB blocks, as
    // ioremap_page_range does with huge vmap: 128 entries of one table,
    // not 128 tables of 4 KiB entries.
    let ecam = m
        .vmap_areas()
        .areas()
        .find(|a| a.phys_addr == Some(PhysAddr(0x40_1000_0000)))
        .unwrap();
    assert_eq!(ecam.addr.0 % (256 << 20), 0);
    for off in [0u64, 2 << 20, (256 << 20) - 1] {
        let (_, level) = pt.lookup(ecam.addr + off).unwrap();
        assert_eq!(level, 2, "+{off:#x}");
        assert_eq!(
            pt.translate(ecam.addr + off),
            Some(PhysAddr(0x40_1000_0000 + off))
        );
    }
    mm::debug::check_page_alloc(m.pa()).unwrap();
}

fn tiny_elf(e_machine: u16) -> Vec<u8> {
    let mut b = vec![0u8; 512];
    b[..4].copy_from_slice(b"\x7fELF");
    (b[4], b[5], b[6]) = (2, 1, 1);
    let put16 = |b: &mut Vec<u8>, o: usize, v: u16| b[o..o + 2].copy_from_slice(&v.to_le_bytes());
    let put32 = |b: &mut Vec<u8>, o: usize, v: u32| b[o..o + 4].copy_from_slice(&v.to_le_bytes());
    let put64 = |b: &mut Vec<u8>, o: usize, v: u64| b[o..o + 8].copy_from_slice(&v.to_le_bytes());
    put16(&mut b, 16, 2); // ET_EXEC
    put16(&mut b, 18, e_machine);
    put32(&mut b, 20, 1);
    put64(&mut b, 24, 0x40_0078);
    put64(&mut b, 32, 64);
    put16(&mut b, 52, 64);
    put16(&mut b, 54, 56);
    put16(&mut b, 56, 1);
    put16(&mut b, 58, 64);
    put32(&mut b, 64, 1); // PT_LOAD
    put32(&mut b, 68, 5); // R|X
    put64(&mut b, 80, 0x40_0000);
    put64(&mut b, 88, 0x40_0000);
    put64(&mut b, 96, 512);
    put64(&mut b, 104, 512);
    put64(&mut b, 112, 0x1_0000);
    b
}

/// Writes `bytes` as an executable file in a directory of this test run.
fn write_exe(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn scratch(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("lmm{tag}{}", std::process::id()))
}

#[test]
fn exec_accepts_only_the_machine_s_own_elf_machine() {
    let dir = scratch("tiny");
    let a64 = write_exe(&dir, "a64", &tiny_elf(183));
    let x64 = write_exe(&dir, "x64", &tiny_elf(62));
    let (a64, x64) = (a64.to_str().unwrap(), x64.to_str().unwrap());
    // elf_check_arch: EM_AARCH64 on arm64, EM_X86_64 on x86-64.
    let mut arm = boot(Arch::Arm64);
    let pid = arm.spawn("t").unwrap();
    assert_eq!(
        arm.exec(pid, x64, &strs(&["x64"]), &[]).err(),
        Some(Errno::ENOEXEC)
    );
    let r = arm.exec(pid, a64, &strs(&["a64"]), &[]).unwrap();
    assert_eq!(r.entry, VirtAddr(0x40_0078));
    // brk right after the segment (ASLR off).
    assert_eq!(r.layout.start_brk, VirtAddr(0x40_1000));
    let maps = arm.proc_pid(pid, "maps").unwrap();
    let lines: Vec<&str> = maps.lines().collect();
    assert!(
        lines[0].starts_with("00400000-00401000 r-xp 00000000 "),
        "{maps}"
    );
    // STACK_TOP = TASK_SIZE = 2^48, the stack's last line; [vvar] (3 pages)
    // and [vdso] (2 pages) together, top-down below mmap_base = 2^48 -
    // 128 MiB (the 8 MiB stack rlimit + guard gap raised to MIN_GAP).
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with("fffffffdf000-1000000000000 rw-p "),
        "{maps}"
    );
    assert!(lines.last().unwrap().ends_with("[stack]"));
    let mmap_base = ARM64_TASK_SIZE - (128 << 20);
    let vdso_end = format!("{mmap_base:x}");
    assert!(
        maps.contains(&format!("fffff7ffe000-{vdso_end} r-xp 00000000 00:00 0")),
        "{maps}"
    );
    assert!(
        maps.contains("fffff7ffb000-fffff7ffe000 r--p 00000000 00:00 0"),
        "{maps}"
    );
    assert!(
        !maps.contains("vsyscall") && !maps.contains("vvar_vclock"),
        "{maps}"
    );
    let mut x = boot(Arch::X86_64);
    let pid = x.spawn("t").unwrap();
    assert_eq!(
        x.exec(pid, a64, &strs(&["a64"]), &[]).err(),
        Some(Errno::ENOEXEC)
    );
    assert!(x.exec(pid, x64, &strs(&["x64"]), &[]).is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Debian 12's arm64 coreutils 9.1-1 `/bin/true` and libc6 2.36-9+deb12u14
/// `ld-linux-aarch64.so.1`, unpacked with `dpkg-deb -x` (not installed, not
/// run: qemu-user is not used) under `$LMM_ARM64_ROOT` (default
/// /tmp/arm64debs/root): (path under the root, sha256).
const DEBIAN_FILES: [(&str, &str); 2] = [
    (
        "bin/true",
        "dfd1b0241759344063bd5052622d90910c53084234a26f19527d150da3e43d4b",
    ),
    (
        "lib/aarch64-linux-gnu/ld-linux-aarch64.so.1",
        "17538b8f9889a470c061f69a8fea8124da89627311cd16546c133a89f09056df",
    ),
];

/// The file's bytes if they are the recorded ones.
fn debian_file(root: &Path, rel: &str, sha: &str) -> Result<Vec<u8>, String> {
    use sha2::{Digest, Sha256};
    let p = root.join(rel);
    let bytes = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    let have: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if have == sha {
        Ok(bytes)
    } else {
        Err(format!("{} has other bytes", p.display()))
    }
}

/// (p_type, p_offset, p_vaddr, p_filesz, p_memsz, p_align) of each program
/// header of an ELF64 file.
fn phdrs(b: &[u8]) -> Vec<(u32, u64, u64, u64, u64, u64)> {
    let u16_at = |o: usize| u16::from_le_bytes(b[o..o + 2].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    let (off, size, n) = (u64_at(32) as usize, u16_at(54), u16_at(56));
    (0..n)
        .map(|i| {
            let o = off + i * size;
            let t = u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
            (
                t,
                u64_at(o + 8),
                u64_at(o + 16),
                u64_at(o + 32),
                u64_at(o + 40),
                u64_at(o + 48),
            )
        })
        .collect()
}

/// Real arm64 binaries placed by arm64's rules, the expectation computed
/// from the files' own program headers: the PIE at ELF_ET_DYN_BASE
/// (2/3 of 2^48) rounded down to its 64 KiB alignment; ld.so mapped
/// top-down from mmap_base (2^48 - 128 MiB); the stack ending at
/// STACK_TOP = 2^48; brk at the page after the PIE's bss. Skips, saying
/// so, when the Debian files are not there.
#[test]
fn debian_arm64_true_is_placed_by_arm64_rules() {
    let root = PathBuf::from(
        std::env::var("LMM_ARM64_ROOT").unwrap_or_else(|_| "/tmp/arm64debs/root".into()),
    );
    let files: Result<Vec<Vec<u8>>, String> = DEBIAN_FILES
        .iter()
        .map(|(rel, sha)| debian_file(&root, rel, sha))
        .collect();
    let [prog, ldso] = match files {
        Ok(v) => <[Vec<u8>; 2]>::try_from(v).unwrap(),
        Err(why) => {
            println!("SKIPPED debian_arm64_true_is_placed_by_arm64_rules: {why}");
            eprintln!("SKIPPED debian_arm64_true_is_placed_by_arm64_rules: {why}");
            return;
        }
    };
    // PT_INTERP names /lib/ld-linux-aarch64.so.1, absent on this host: a
    // copy names a scratch ld.so instead (same length, NUL padded).
    let dir = scratch("d");
    let ld = write_exe(&dir, "ld", &ldso);
    let ld = ld.to_str().unwrap().to_string();
    let mut patched = prog.clone();
    let ph = phdrs(&prog);
    let &(_, ioff, _, isz, _, _) = ph.iter().find(|p| p.0 == 3).expect("PT_INTERP");
    assert_eq!(
        &prog[ioff as usize..(ioff + isz) as usize],
        b"/lib/ld-linux-aarch64.so.1\0"
    );
    assert!(ld.len() < isz as usize, "scratch path {ld} too long");
    let field = &mut patched[ioff as usize..(ioff + isz) as usize];
    field.fill(0);
    field[..ld.len()].copy_from_slice(ld.as_bytes());
    let exe = write_exe(&dir, "true", &patched);

    let mut m = boot(Arch::Arm64);
    let pid = m.spawn("true").unwrap();
    let r = m
        .exec(pid, exe.to_str().unwrap(), &strs(&["true"]), &[])
        .unwrap();

    let loads = |ph: &[(u32, u64, u64, u64, u64, u64)]| {
        ph.iter().filter(|p| p.0 == 1).copied().collect::<Vec<_>>()
    };
    let page_down = |x: u64| x & !(PAGE_SIZE - 1);
    let page_up = |x: u64| (x + PAGE_SIZE - 1) & !(PAGE_SIZE - 1);
    // The PIE: load_bias = ELF_ET_DYN_BASE & ~(max p_align - 1).
    let pl = loads(&ph);
    let align = pl.iter().map(|p| p.5).max().unwrap();
    assert_eq!(align, 0x1_0000, "Debian arm64 binaries are 64 KiB aligned");
    let bias = (2 * ARM64_TASK_SIZE / 3) & !(align - 1);
    assert_eq!(bias, 0xaaaa_aaaa_0000);
    let first = pl[0];
    let pie_end = pl.iter().map(|p| p.2 + p.4).max().unwrap();
    assert_eq!(r.layout.start_brk, VirtAddr(page_up(bias + pie_end)));
    // ld.so: one mapping of its whole image, top-down below mmap_base.
    let il = loads(&phdrs(&ldso));
    let isize = page_up(il.iter().map(|p| p.2 + p.4).max().unwrap()) - page_down(il[0].2);
    let mmap_base = ARM64_TASK_SIZE - (128 << 20);
    let ibase = mmap_base - isize;
    assert_eq!(r.interp_base, Some(VirtAddr(ibase)));

    let maps = m.proc_pid(pid, "maps").unwrap();
    let starts: Vec<(u64, u64, String)> = maps
        .lines()
        .map(|l| {
            let (range, rest) = l.split_once(' ').unwrap();
            let (s, e) = range.split_once('-').unwrap();
            let name = rest.split_whitespace().nth(4).unwrap_or("").to_string();
            (
                u64::from_str_radix(s, 16).unwrap(),
                u64::from_str_radix(e, 16).unwrap(),
                name,
            )
        })
        .collect();
    let of = |name: &str| -> Vec<(u64, u64)> {
        starts
            .iter()
            .filter(|(_, _, n)| n.ends_with(name))
            .map(|&(s, e, _)| (s, e))
            .collect()
    };
    let prog_maps = of("/true");
    assert_eq!(prog_maps[0].0, bias + page_down(first.2), "{maps}");
    let ld_maps = of("/ld");
    assert_eq!(ld_maps[0].0, ibase, "{maps}");
    assert_eq!(ld_maps.last().unwrap().1, mmap_base, "{maps}");
    // [vvar] + [vdso] take the highest hole below mmap_base that fits
    // (here inside ld.so's 64 KiB-aligned gap), [vvar] first.
    let (vvar, vdso) = (of("[vvar]")[0], of("[vdso]")[0]);
    assert_eq!(vvar.1, vdso.0);
    assert_eq!(
        (vvar.1 - vvar.0, vdso.1 - vdso.0),
        (3 * PAGE_SIZE, 2 * PAGE_SIZE)
    );
    assert!(ld_maps.iter().any(|&(s, _)| s == vdso.1), "{maps}");
    assert_eq!(r.layout.vdso, VirtAddr(vdso.0));
    // The stack ends at STACK_TOP = TASK_SIZE = 2^48.
    assert_eq!(of("[stack]")[0].1, ARM64_TASK_SIZE);
    assert!(r.start_stack.0 < ARM64_TASK_SIZE && r.start_stack.0 > ARM64_TASK_SIZE - (1 << 20));
    let _ = std::fs::remove_dir_all(&dir);
}
