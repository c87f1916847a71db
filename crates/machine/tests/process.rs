//! Processes on a booted machine: exec of real binaries through the real
//! mmap layer and page tables (maps and initial stack equal the real
//! kernel's recordings), system calls that move real bytes, TLB coherence
//! across CPUs, and teardown that returns every page.

mod common;

use std::path::{Path, PathBuf};

use common::{check, free_pages, STACK_TOP};

use machine::{Machine, MachineConfig};
use mm::arch::Arch;
use mm::errno::Errno;
use mm::mm_types::RssKind;
use mm::mmap::{MAP_ANONYMOUS, MAP_POPULATE, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE};
use mm::types::PAGE_SIZE;

fn boot(cpus: usize) -> Machine {
    Machine::boot(MachineConfig {
        arch: Arch::X86_64,
        ram: 256 << 20,
        cpus,
        ..Default::default()
    })
    .unwrap()
}

/// A machine with an `init` process (pid 1), so that the zero page exists
/// and the free-page counts that tests take before spawning their process
/// are restored exactly by its exit.
fn boot_with_init(cpus: usize) -> Machine {
    let mut m = boot(cpus);
    assert_eq!(m.spawn("init"), Ok(1));
    m
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/starti")
        .join(name)
}

/// True if the recorded files still have the recorded inodes.
fn recording_matches_host(maps: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    maps.lines().all(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() == 6 && f[5].starts_with('/') {
            let ok = std::fs::metadata(f[5]).is_ok_and(|m| m.ino().to_string() == f[4]);
            if !ok {
                eprintln!("skipping: {} changed since the recording", f[5]);
            }
            return ok;
        }
        true
    })
}

/// Execs `path` on a fresh machine and compares maps and the initial stack
/// with a recording; then exits and checks that every page came back.
fn exec_matches(maps_file: &Path, stack_file: &Path, path: &str, argv: &[String], envp: &[String]) {
    let maps = std::fs::read_to_string(maps_file).unwrap();
    if !recording_matches_host(&maps) {
        return;
    }
    let mut m = boot_with_init(2);
    let free0 = free_pages(&m);
    let pid = m.spawn("sh").unwrap();
    let r = m.exec(pid, path, argv, envp).unwrap();
    check(&m);
    assert_eq!(m.proc_pid(pid, "maps").unwrap(), maps, "maps of {path}");
    let real = std::fs::read(stack_file).unwrap();
    let rsp = r.start_stack.0;
    assert_eq!(real.len() as u64, STACK_TOP - rsp);
    let mut sim = m.read_user(pid, rsp, real.len()).unwrap();
    let at_random = r.auxv.iter().find(|e| e.0 == 25).unwrap().1;
    let off = (at_random - rsp) as usize;
    sim[off..off + 16].copy_from_slice(&real[off..off + 16]);
    assert_eq!(sim, real, "stack of {path}");
    // exec populated only what it wrote: the stack pages and the bss
    // partial page(s), all anonymous.
    let p = m.process(pid).unwrap();
    let stack_pages = (STACK_TOP - (rsp & !(PAGE_SIZE - 1))) / PAGE_SIZE;
    assert!(p.mm.rss.get(RssKind::Anon) >= stack_pages);
    assert_eq!(p.mm.rss.get(RssKind::File), 0);
    let smaps = m.proc_pid(pid, "smaps").unwrap();
    assert!(smaps.contains("[stack]"));
    m.exit(pid).unwrap();
    check(&m);
    assert_eq!(free_pages(&m), free0, "exit returns every page");
}

#[test]
fn exec_ls_matches_the_kernel_maps_and_stack() {
    exec_matches(
        &data("ls.starti.maps"),
        &data("ls.starti.stack"),
        "/usr/bin/ls",
        &strs(&["/usr/bin/ls"]),
        &strs(&["A=1", "PATH=/usr/bin:/bin"]),
    );
}

#[test]
fn exec_true_matches_the_kernel_maps_and_stack() {
    exec_matches(
        &data("true.starti.maps"),
        &data("true.starti.stack"),
        "/usr/bin/true",
        &strs(&["/usr/bin/true", "hello", "world"]),
        &strs(&["A=1", "PATH=/usr/bin:/bin"]),
    );
}

/// The `ls` fixture recorded by tools/record (argv and envp in ls.env).
/// The other fixtures run `./tests/fixtures/bin/...` from the recording
/// checkout, whose inodes and paths only match on the recording host.
#[test]
fn exec_fixture_ls_matches_the_kernel() {
    let env = std::fs::read_to_string(fixture("ls.env")).unwrap();
    let mut argv = Vec::new();
    let mut envp = Vec::new();
    for l in env.lines() {
        if let Some(a) = l.strip_prefix("argv ") {
            argv.push(a.to_string());
        } else if let Some(e) = l.strip_prefix("envp ") {
            envp.push(e.to_string());
        }
    }
    let path = argv[0].clone();
    exec_matches(
        &fixture("ls.maps"),
        &fixture("ls.stack"),
        &path,
        &argv,
        &envp,
    );
}

#[test]
fn populate_maps_zeroed_pages_and_the_mmu_writes_real_bytes() {
    let mut m = boot_with_init(2);
    let free0 = free_pages(&m);
    let pid = m.spawn("t").unwrap();
    let len = 16 * PAGE_SIZE;
    let a = m
        .sys_mmap(
            pid,
            0,
            len,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
            None,
            0,
        )
        .unwrap();
    check(&m);
    assert_eq!(m.process(pid).unwrap().mm.rss.get(RssKind::Anon), 16);
    // Zeroed.
    assert_eq!(
        m.read_user(pid, a, len as usize).unwrap(),
        vec![0; len as usize]
    );
    // Write through the MMU, read back via the direct map.
    let msg = b"hello, real bytes across a page boundary";
    let va = a + PAGE_SIZE - 7;
    m.write_user(pid, va, msg).unwrap();
    let p = m.process(pid).unwrap();
    let dm = m.pa().direct_map();
    let mut got = vec![0u8; msg.len()];
    for (i, b) in got.iter_mut().enumerate() {
        let pa = p.pt.translate(mm::VirtAddr(va + i as u64)).unwrap();
        let mut one = [0u8];
        dm.read(pa, &mut one);
        *b = one[0];
    }
    assert_eq!(&got, msg);
    // Dirty and referenced in smaps; pagemap shows present exclusive pages.
    let smaps = m.proc_pid(pid, "smaps").unwrap();
    assert!(smaps.contains("Rss:                  64 kB"), "{smaps}");
    assert!(smaps.contains("Pss:                  64 kB"), "{smaps}");
    assert!(smaps.contains("Private_Dirty:        64 kB"), "{smaps}");
    assert!(smaps.contains("Anonymous:            64 kB"), "{smaps}");
    let rollup = m.proc_pid(pid, "smaps_rollup").unwrap();
    assert!(rollup.contains("Rss:                  64 kB"), "{rollup}");
    let status = m.proc_pid(pid, "status").unwrap();
    assert!(status.contains("RssAnon:\t      64 kB"), "{status}");
    let pagemap = m.proc_pid(pid, "pagemap").unwrap();
    assert_eq!(pagemap.lines().count(), 16);
    // statm: 16 resident anonymous pages, none shared; size is VmSize.
    let statm: Vec<u64> = m
        .proc_pid(pid, "statm")
        .unwrap()
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(statm.len(), 7);
    assert_eq!((statm[1], statm[2], statm[4], statm[6]), (16, 0, 0, 0));
    assert!(
        status.contains(&format!("VmSize:\t{:>8} kB", statm[0] * 4)),
        "{status}\n{statm:?}"
    );
    // The binary pagemap: the mapping's 16 entries at 8 bytes per page
    // from address 0, present.
    let bin = m.pagemap_binary(pid).unwrap();
    let (off, bytes) = bin.iter().find(|(o, _)| *o == (a >> 12) * 8).unwrap();
    assert_eq!((*off, bytes.len()), ((a >> 12) * 8, 16 * 8));
    for e in bytes.chunks(8) {
        let e = u64::from_le_bytes(e.try_into().unwrap());
        assert_eq!(e >> 63, 1, "{e:#x}");
    }
    // An unpopulated mapping is faulted in on access: a read maps the
    // shared zero page.
    let b = m
        .sys_mmap(
            pid,
            0,
            PAGE_SIZE,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS,
            None,
            0,
        )
        .unwrap();
    assert_eq!(m.read_user(pid, b, 1), Ok(vec![0]));
    assert_eq!(m.process(pid).unwrap().mm.rss.get(RssKind::Anon), 16);
    // munmap frees exactly those pages.
    let before = free_pages(&m);
    m.sys_munmap(pid, a, len).unwrap();
    check(&m);
    assert!(free_pages(&m) >= before + 16);
    assert_eq!(m.process(pid).unwrap().mm.rss.get(RssKind::Anon), 0);
    m.exit(pid).unwrap();
    check(&m);
    assert_eq!(free_pages(&m), free0);
}

#[test]
fn mprotect_read_only_faults_on_every_cpu() {
    let mut m = boot(4);
    let pid = m.spawn("t").unwrap();
    let a = m
        .sys_mmap(
            pid,
            0,
            4 * PAGE_SIZE,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
            None,
            0,
        )
        .unwrap();
    // Every CPU caches a writable, dirty translation.
    for cpu in 0..4 {
        m.write_user_on(pid, cpu, a + 8, &[cpu as u8 + 1]).unwrap();
    }
    m.sys_mprotect(pid, a, 4 * PAGE_SIZE, PROT_READ).unwrap();
    check(&m);
    for cpu in 0..4 {
        assert_eq!(
            m.write_user_on(pid, cpu, a + 8, b"x"),
            Err(Errno::EFAULT),
            "cpu {cpu}"
        );
        assert_eq!(m.read_user_on(pid, cpu, a + 8, 1).unwrap(), vec![4]);
    }
    // Back to read-write: the exclusive dirty anonymous pages are writable
    // again without a fault.
    m.sys_mprotect(pid, a, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE)
        .unwrap();
    for cpu in 0..4 {
        m.write_user_on(pid, cpu, a + 8, b"y").unwrap();
    }
    // munmap: no CPU may still reach the freed pages.
    for cpu in 0..4 {
        m.read_user_on(pid, cpu, a, 1).unwrap();
    }
    m.sys_munmap(pid, a, 4 * PAGE_SIZE).unwrap();
    for cpu in 0..4 {
        assert_eq!(m.read_user_on(pid, cpu, a, 1), Err(Errno::EFAULT));
    }
    // PROT_NONE too.
    let b = m
        .sys_mmap(
            pid,
            0,
            PAGE_SIZE,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
            None,
            0,
        )
        .unwrap();
    for cpu in 0..4 {
        m.read_user_on(pid, cpu, b, 1).unwrap();
    }
    m.sys_mprotect(pid, b, PAGE_SIZE, 0).unwrap();
    for cpu in 0..4 {
        assert_eq!(m.read_user_on(pid, cpu, b, 1), Err(Errno::EFAULT));
    }
    check(&m);
    m.exit(pid).unwrap();
    check(&m);
}

#[test]
fn mremap_moves_the_data() {
    let mut m = boot_with_init(2);
    let free0 = free_pages(&m);
    let pid = m.spawn("t").unwrap();
    let a = m
        .sys_mmap(
            pid,
            0,
            2 * PAGE_SIZE,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
            None,
            0,
        )
        .unwrap();
    m.write_user(pid, a + 100, b"moved data").unwrap();
    m.write_user(pid, a + PAGE_SIZE, b"page two").unwrap();
    // Block growth in place.
    m.sys_mmap(
        pid,
        a + 2 * PAGE_SIZE,
        PAGE_SIZE,
        PROT_READ,
        MAP_PRIVATE | MAP_ANONYMOUS | mm::mmap::MAP_FIXED,
        None,
        0,
    )
    .unwrap();
    let b = m
        .sys_mremap(
            pid,
            a,
            2 * PAGE_SIZE,
            8 * PAGE_SIZE,
            mm::mremap::MREMAP_MAYMOVE,
            0,
        )
        .unwrap();
    assert_ne!(a, b);
    check(&m);
    assert_eq!(m.read_user(pid, b + 100, 10).unwrap(), b"moved data");
    assert_eq!(m.read_user(pid, b + PAGE_SIZE, 8).unwrap(), b"page two");
    assert_eq!(m.read_user(pid, a, 1), Err(Errno::EFAULT));
    // DONTNEED drops the pages: nothing mapped any more, and the next
    // read maps the zero page.
    m.sys_madvise(pid, b, 2 * PAGE_SIZE, mm::madvise::MADV_DONTNEED)
        .unwrap();
    assert_eq!(m.sys_mincore(pid, b, 2 * PAGE_SIZE).unwrap(), vec![0, 0]);
    assert_eq!(m.read_user(pid, b + 100, 1), Ok(vec![0]));
    check(&m);
    m.exit(pid).unwrap();
    check(&m);
    assert_eq!(free_pages(&m), free0);
}

#[test]
fn brk_mlock_shared_and_file_mappings() {
    let mut m = boot_with_init(2);
    let free0 = free_pages(&m);
    let pid = m.spawn("t").unwrap();
    let r = m
        .exec(pid, "/bin/true", &strs(&["true"]), &strs(&["A=1"]))
        .unwrap();
    let brk0 = r.layout.brk.0;
    assert_eq!(m.sys_brk(pid, 0).unwrap(), brk0);
    assert_eq!(
        m.sys_brk(pid, brk0 + 3 * PAGE_SIZE).unwrap(),
        brk0 + 3 * PAGE_SIZE
    );
    // mlock populates; the heap becomes reachable.
    m.sys_mlock(pid, brk0, 3 * PAGE_SIZE).unwrap();
    m.write_user(pid, brk0, b"heap").unwrap();
    assert_eq!(m.read_user(pid, brk0, 4).unwrap(), b"heap");
    assert!(m.proc_pid(pid, "maps").unwrap().contains("[heap]"));
    check(&m);
    // Shared anonymous memory: shmem pages.
    let s = m
        .sys_mmap(
            pid,
            0,
            2 * PAGE_SIZE,
            PROT_READ | PROT_WRITE,
            MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE,
            None,
            0,
        )
        .unwrap();
    m.write_user(pid, s, b"shared").unwrap();
    assert_eq!(m.process(pid).unwrap().mm.rss.get(RssKind::Shmem), 2);
    check(&m);
    // A private file mapping holds the file's bytes, read-only.
    let f = machine::hostfs::HostFile::open("/bin/true").unwrap();
    let fm = m
        .sys_mmap(
            pid,
            0,
            PAGE_SIZE,
            PROT_READ,
            MAP_PRIVATE | MAP_POPULATE,
            Some(f),
            0,
        )
        .unwrap();
    assert_eq!(m.read_user(pid, fm, 4).unwrap(), b"\x7fELF");
    assert_eq!(m.write_user(pid, fm, b"x"), Err(Errno::EFAULT));
    assert_eq!(m.process(pid).unwrap().mm.rss.get(RssKind::File), 1);
    check(&m);
    // Shrinking brk frees the heap pages.
    assert_eq!(m.sys_brk(pid, brk0).unwrap(), brk0);
    check(&m);
    m.exit(pid).unwrap();
    check(&m);
    assert_eq!(free_pages(&m), free0);
    assert_eq!(m.exit(pid), Err(Errno::ESRCH));
}

/// smaps prints `ProtectionKey:` only on a CPU with protection keys
/// (task_mmu.c shows it when arch_pkeys_enabled()): `set_pkeys(false)`,
/// which `lmm native` uses on a host without OSPKE, leaves it out.
#[test]
fn smaps_shows_protection_keys_only_on_a_cpu_with_them() {
    use mm::mmap::{MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE};
    for pkeys in [true, false] {
        let mut m = Machine::boot(MachineConfig {
            ram: 256 << 20,
            ..Default::default()
        })
        .unwrap();
        m.set_pkeys(pkeys);
        let pid = m.spawn("t").unwrap();
        m.sys_mmap(
            pid,
            0,
            4096,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS,
            None,
            0,
        )
        .unwrap();
        let smaps = m.proc_pid(pid, "smaps").unwrap();
        assert!(smaps.contains("Size:"), "{smaps}");
        assert_eq!(smaps.contains("ProtectionKey:"), pkeys, "{smaps}");
    }
}
