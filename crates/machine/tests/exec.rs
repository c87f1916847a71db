//! exec against the real kernel: the mappings, auxv and initial stack that
//! Linux 6.18 x86-64 builds with ASLR off (recorded with gdb `starti` by
//! tests/data/record.sh), reproduced through a fake memory manager, and
//! hostile ELF files that must give errors, never panics.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use machine::exec::{
    self, ExecLayout, ExecMm, ExecParams, MAP_FIXED, MAP_FIXED_NOREPLACE, PROT_EXEC, PROT_READ,
    PROT_WRITE, STACK_TOP, TASK_SIZE,
};
use mm::errno::Errno;
use mm::file::{same_inode, FileRef};
use mm::types::{VirtAddr, PAGE_SIZE};

/// `vm_start_gap` guard below a growsdown VMA (stack_guard_gap).
const STACK_GUARD_GAP: u64 = 256 * PAGE_SIZE;
/// `mmap_min_addr` as on Debian/Ubuntu.
const MMAP_MIN_ADDR: u64 = 65536;

#[derive(Clone)]
struct Vma {
    start: u64,
    end: u64,
    prot: u32,
    file: Option<FileRef>,
    /// File offset in bytes (anonymous: the address, as vm_pgoff).
    off: u64,
    name: Option<&'static str>,
    stack: bool,
}

impl Vma {
    fn can_merge(&self, next: &Vma) -> bool {
        self.end == next.start
            && self.prot == next.prot
            && self.name.is_none()
            && next.name.is_none()
            && !self.stack
            && !next.stack
            && match (&self.file, &next.file) {
                (None, None) => true,
                (Some(a), Some(b)) => {
                    same_inode(a, b) && self.off + (self.end - self.start) == next.off
                }
                _ => false,
            }
    }
}

/// A memory manager model: sorted VMAs, top-down placement below
/// mmap_base, stored user bytes.
#[derive(Default)]
struct FakeMm {
    vmas: Vec<Vma>,
    mmap_base: u64,
    pages: BTreeMap<u64, Box<[u8; 4096]>>,
    layout: Option<ExecLayout>,
}

impl FakeMm {
    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.vmas.iter().any(|v| v.start < end && start < v.end)
    }

    fn remove_range(&mut self, start: u64, end: u64) {
        let mut out = Vec::new();
        for v in self.vmas.drain(..) {
            if v.end <= start || v.start >= end {
                out.push(v);
                continue;
            }
            if v.start < start {
                let mut l = v.clone();
                l.end = start;
                out.push(l);
            }
            if v.end > end {
                let mut r = v.clone();
                r.off += end - v.start;
                r.start = end;
                out.push(r);
            }
        }
        self.vmas = out;
    }

    fn insert(&mut self, v: Vma) {
        self.remove_range(v.start, v.end);
        self.vmas.push(v);
        self.vmas.sort_by_key(|v| v.start);
        let mut merged: Vec<Vma> = Vec::new();
        for v in self.vmas.drain(..) {
            if let Some(last) = merged.last_mut() {
                if last.can_merge(&v) {
                    last.end = v.end;
                    continue;
                }
            }
            merged.push(v);
        }
        self.vmas = merged;
    }

    fn gap_start(v: &Vma) -> u64 {
        if v.stack {
            v.start.saturating_sub(STACK_GUARD_GAP)
        } else {
            v.start
        }
    }

    /// Top-down `vm_unmapped_area`: the highest fitting address below
    /// mmap_base.
    fn topdown(&self, len: u64) -> Result<u64, Errno> {
        let mut high = self.mmap_base;
        for v in self.vmas.iter().rev() {
            if v.start >= high {
                high = high.min(Self::gap_start(v));
                continue;
            }
            if v.end <= high && high - v.end >= len {
                return Ok(high - len);
            }
            high = high.min(Self::gap_start(v));
        }
        if high >= PAGE_SIZE + len {
            Ok(high - len)
        } else {
            Err(Errno::ENOMEM)
        }
    }

    fn covered(&self, start: u64, end: u64) -> bool {
        let mut at = start;
        for v in &self.vmas {
            if v.end <= at {
                continue;
            }
            if v.start > at {
                return false;
            }
            at = v.end;
            if at >= end {
                return true;
            }
        }
        at >= end
    }

    fn read(&self, va: u64, len: usize) -> Vec<u8> {
        (0..len as u64)
            .map(|i| {
                let a = va + i;
                self.pages
                    .get(&(a & !0xfff))
                    .map_or(0, |p| p[(a & 0xfff) as usize])
            })
            .collect()
    }

    /// /proc/PID/maps as Linux prints it (task_mmu.c), with the
    /// [vsyscall] gate line.
    fn maps(&self) -> String {
        let l = self.layout.clone().unwrap_or_default();
        let mut s = String::new();
        for v in &self.vmas {
            let perms = format!(
                "{}{}{}p",
                if v.prot & PROT_READ != 0 { 'r' } else { '-' },
                if v.prot & PROT_WRITE != 0 { 'w' } else { '-' },
                if v.prot & PROT_EXEC != 0 { 'x' } else { '-' },
            );
            let (off, dev, ino) = match &v.file {
                Some(f) => (v.off, f.dev(), f.ino()),
                None => (0, (0, 0), 0),
            };
            let mut line = format!(
                "{:08x}-{:08x} {} {:08x} {:02x}:{:02x} {} ",
                v.start, v.end, perms, off, dev.0, dev.1, ino
            );
            let name = if let Some(f) = &v.file {
                Some(f.path().to_string())
            } else if let Some(n) = v.name {
                Some(n.to_string())
            } else if v.start < l.brk.0 && v.end > l.start_brk.0 {
                Some("[heap]".into())
            } else if v.start <= l.start_stack.0 && v.end >= l.start_stack.0 {
                Some("[stack]".into())
            } else {
                None
            };
            if let Some(n) = name {
                while line.len() < 73 {
                    line.push(' ');
                }
                line.push_str(&n);
            }
            s.push_str(&line);
            s.push('\n');
        }
        s.push_str(
            "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n",
        );
        s
    }
}

impl ExecMm for FakeMm {
    fn pick_mmap_layout(&mut self, rlim_stack: u64) {
        // arch/x86/mm/mmap.c mmap_base, no randomization.
        let gap_min = 128 << 20;
        let gap_max = TASK_SIZE / 6 * 5;
        let gap = rlim_stack
            .saturating_add(STACK_GUARD_GAP)
            .clamp(gap_min, gap_max);
        self.mmap_base = (TASK_SIZE - gap) & !0xfff;
    }
    fn mmap_base(&self) -> VirtAddr {
        VirtAddr(self.mmap_base)
    }
    fn mmap(
        &mut self,
        addr: VirtAddr,
        len: u64,
        prot: u32,
        flags: u32,
        file: Option<FileRef>,
        offset: u64,
    ) -> Result<VirtAddr, Errno> {
        assert!(len > 0 && len & 0xfff == 0 && offset & 0xfff == 0);
        let addr = addr.0;
        let start = if flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0 {
            if addr & 0xfff != 0 {
                return Err(Errno::EINVAL);
            }
            let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
            if end > TASK_SIZE {
                return Err(Errno::ENOMEM);
            }
            if addr < MMAP_MIN_ADDR {
                return Err(Errno::EPERM);
            }
            if flags & MAP_FIXED_NOREPLACE != 0 && self.overlaps(addr, end) {
                return Err(Errno::EEXIST);
            }
            addr
        } else {
            let hint = addr & !0xfff;
            match hint.checked_add(len) {
                Some(end)
                    if hint >= MMAP_MIN_ADDR && end <= TASK_SIZE && !self.overlaps(hint, end) =>
                {
                    hint
                }
                _ => self.topdown(len)?,
            }
        };
        let off = if file.is_some() { offset } else { start };
        self.insert(Vma {
            start,
            end: start + len,
            prot,
            file,
            off,
            name: None,
            stack: false,
        });
        Ok(VirtAddr(start))
    }
    fn munmap(&mut self, addr: VirtAddr, len: u64) -> Result<(), Errno> {
        let end = addr.0.checked_add(len).ok_or(Errno::EINVAL)?;
        self.remove_range(addr.0, end);
        Ok(())
    }
    fn vm_brk_flags(&mut self, addr: VirtAddr, len: u64, exec: bool) -> Result<(), Errno> {
        let end = addr.0.checked_add(len).ok_or(Errno::ENOMEM)?;
        if end > TASK_SIZE {
            return Err(Errno::ENOMEM);
        }
        let prot = PROT_READ | PROT_WRITE | if exec { PROT_EXEC } else { 0 };
        self.insert(Vma {
            start: addr.0,
            end,
            prot,
            file: None,
            off: addr.0,
            name: None,
            stack: false,
        });
        Ok(())
    }
    fn get_unmapped_area(&mut self, len: u64) -> Result<VirtAddr, Errno> {
        self.topdown(len).map(VirtAddr)
    }
    fn install_special_mapping(
        &mut self,
        addr: VirtAddr,
        len: u64,
        prot: u32,
        name: &'static str,
    ) -> Result<(), Errno> {
        self.insert(Vma {
            start: addr.0,
            end: addr.0 + len,
            prot,
            file: None,
            off: 0,
            name: Some(name),
            stack: false,
        });
        Ok(())
    }
    fn insert_stack_vma(
        &mut self,
        start: VirtAddr,
        end: VirtAddr,
        exec: bool,
    ) -> Result<(), Errno> {
        let prot = PROT_READ | PROT_WRITE | if exec { PROT_EXEC } else { 0 };
        self.insert(Vma {
            start: start.0,
            end: end.0,
            prot,
            file: None,
            off: 0,
            name: None,
            stack: true,
        });
        Ok(())
    }
    fn write_user(&mut self, va: VirtAddr, bytes: &[u8]) -> Result<(), Errno> {
        let end = va.0.checked_add(bytes.len() as u64).ok_or(Errno::EFAULT)?;
        if !self.covered(va.0, end) {
            return Err(Errno::EFAULT);
        }
        for (i, &b) in bytes.iter().enumerate() {
            let a = va.0 + i as u64;
            self.pages
                .entry(a & !0xfff)
                .or_insert_with(|| Box::new([0; 4096]))[(a & 0xfff) as usize] = b;
        }
        Ok(())
    }
    fn clear_user(&mut self, va: VirtAddr, len: u64) -> Result<(), Errno> {
        self.write_user(va, &vec![0; len as usize])
    }
    fn set_layout(&mut self, layout: &ExecLayout) {
        self.layout = Some(layout.clone());
    }
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The environment record.sh gives the program.
fn env() -> Vec<String> {
    strs(&["A=1", "PATH=/usr/bin:/bin"])
}

/// True if the files named in a recorded maps still have the recorded
/// inodes (else the host's binaries changed since the recording).
fn recording_matches_host(maps: &str) -> bool {
    for line in maps.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() == 6 && f[5].starts_with('/') {
            match std::fs::metadata(f[5]) {
                Ok(m) if m.ino().to_string() == f[4] => {}
                _ => {
                    eprintln!(
                        "skipping: {} changed since the recording (re-run record.sh)",
                        f[5]
                    );
                    return false;
                }
            }
        }
    }
    true
}

fn stat_fields(stat: &str) -> Vec<u64> {
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    rest.split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect()
}

fn regs(s: &str) -> (u64, u64) {
    let mut r = (0, 0);
    for l in s.lines() {
        let (k, v) = l.split_once(' ').unwrap();
        let v = u64::from_str_radix(v.trim_start_matches("0x"), 16).unwrap();
        match k {
            "rsp" => r.0 = v,
            "rip" => r.1 = v,
            _ => {}
        }
    }
    r
}

/// Exec `path` and compare everything against the recording `name`.
fn check_against_recording(name: &str, path: &str, argv: &[&str]) {
    let maps = std::fs::read_to_string(data(&format!("{name}.starti.maps"))).unwrap();
    if !recording_matches_host(&maps) {
        return;
    }
    let mut mm = FakeMm::default();
    let r = exec::exec(&mut mm, path, &strs(argv), &env(), &ExecParams::default()).unwrap();
    assert_eq!(mm.maps(), maps, "maps of {path}");

    let (rsp, rip) = regs(&std::fs::read_to_string(data(&format!("{name}.starti.regs"))).unwrap());
    assert_eq!(r.start_stack.0, rsp);
    assert_eq!(r.entry.0, rip);

    // /proc/PID/auxv: every entry, AT_HWCAP & co. being the defaults of
    // ExecParams, which are this machine's.
    let raw = std::fs::read(data(&format!("{name}.starti.auxv"))).unwrap();
    let real: Vec<(u64, u64)> = raw
        .chunks_exact(16)
        .map(|c| {
            (
                u64::from_le_bytes(c[..8].try_into().unwrap()),
                u64::from_le_bytes(c[8..].try_into().unwrap()),
            )
        })
        .collect();
    assert_eq!(r.auxv, real);

    // The stack from rsp to the top, byte for byte except AT_RANDOM.
    let real = std::fs::read(data(&format!("{name}.starti.stack"))).unwrap();
    let mut sim = mm.read(rsp, (STACK_TOP - rsp) as usize);
    let at_random = r.auxv.iter().find(|e| e.0 == 25).unwrap().1;
    let off = (at_random - rsp) as usize;
    sim[off..off + 16].copy_from_slice(&real[off..off + 16]);
    assert_eq!(sim, real, "stack of {path}");

    // mm fields from /proc/PID/stat: start_data end_data start_brk
    // arg_start arg_end env_start env_end.
    let stat = std::fs::read_to_string(data(&format!("{name}.starti.stat"))).unwrap();
    let f = stat_fields(&stat);
    let l = r.layout;
    let want = &f[42..49];
    let got = [
        l.start_data.0,
        l.end_data.0,
        l.start_brk.0,
        l.arg_start.0,
        l.arg_end.0,
        l.env_start.0,
        l.env_end.0,
    ];
    assert_eq!(got, want, "stat fields of {path}");
    // startcode endcode startstack (fields 26 27 28).
    assert_eq!([l.start_code.0, l.end_code.0, l.start_stack.0], f[23..26]);
}

#[test]
fn bin_ls_matches_the_kernel() {
    check_against_recording("ls", "/usr/bin/ls", &["/usr/bin/ls"]);
}

#[test]
fn bin_true_stack_auxv_and_maps_match_the_kernel() {
    check_against_recording(
        "true",
        "/usr/bin/true",
        &["/usr/bin/true", "hello", "world"],
    );
}

#[test]
fn ls_layout_details() {
    // The ld.so base depends on ld.so's and ls's sizes: compare only where
    // both are the recording host's (sha256 in tests/fixtures/host-files.txt),
    // and say so visibly otherwise.
    for f in [
        "/usr/bin/ls",
        "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
    ] {
        if let Err(why) = host_file_as_recorded(f) {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "SKIP ls_layout_details: {why}");
            return;
        }
    }
    let mut mm = FakeMm::default();
    let r = exec::exec(
        &mut mm,
        "/bin/ls",
        &strs(&["ls"]),
        &[],
        &ExecParams::default(),
    )
    .expect("exec of the recording host's /bin/ls");
    assert_eq!(mm.mmap_base, 0x7fff_f7ff_f000);
    let l = &r.layout;
    assert_eq!(
        l.stack_vma,
        (VirtAddr(0x7fff_fffd_e000), VirtAddr(STACK_TOP))
    );
    assert!(!l.exec_stack);
    assert_eq!(l.start_brk, l.brk);
    assert_eq!(r.interp_base, Some(VirtAddr(0x7fff_f7fc_a000)));
    assert_eq!(r.exe_path, "/usr/bin/ls");
    assert_eq!(r.argv, strs(&["ls"]));
    // AT_EXECFN is the name as given to execve.
    let execfn = r.auxv.iter().find(|e| e.0 == 31).unwrap().1;
    assert_eq!(mm.read(execfn, 8), b"/bin/ls\0");
    assert_eq!(execfn + 8 + 8, STACK_TOP);
}

/// Ok if host file `path` has the bytes it had on the recording host
/// (its sha256 in tests/fixtures/host-files.txt), else why not.
fn host_file_as_recorded(path: &str) -> Result<(), String> {
    use sha2::{Digest, Sha256};
    let list = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/host-files.txt");
    let text = std::fs::read_to_string(&list).expect("tests/fixtures/host-files.txt");
    let want = text
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&path)).then(|| f.last().unwrap_or(&"").to_string())
        })
        .unwrap_or_else(|| panic!("{path} is not listed in host-files.txt"));
    let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let have: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if have == want {
        Ok(())
    } else {
        Err(format!("{path} has other bytes than on the recording host"))
    }
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lmm-exec-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write_exec(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn run(path: &Path, argv: &[&str]) -> (FakeMm, Result<exec::ExecResult, Errno>) {
    let mut mm = FakeMm::default();
    let r = exec::exec(
        &mut mm,
        path.to_str().unwrap(),
        &strs(argv),
        &env(),
        &ExecParams::default(),
    );
    (mm, r)
}

#[test]
fn scripts_rewrite_argv_and_nest_at_most_five_deep() {
    let d = tmpdir("script");
    let s1 = d.join("s1");
    write_exec(&s1, b"#!/bin/true  -x  -y \nignored\n");
    let (mm, r) = run(&s1, &["me", "a1", "a2"]);
    let r = r.unwrap();
    assert_eq!(
        r.argv,
        strs(&["/bin/true", "-x  -y", s1.to_str().unwrap(), "a1", "a2"])
    );
    assert!(r.exe_path.ends_with("/true"));
    // AT_EXECFN stays the script's name.
    let execfn = r.auxv.iter().find(|e| e.0 == 31).unwrap().1;
    let name = s1.to_str().unwrap();
    assert_eq!(
        mm.read(execfn, name.len() + 1),
        format!("{name}\0").as_bytes()
    );

    // A chain of n scripts, each running the previous one, ending in true.
    let mut prev = "/bin/true".to_string();
    let mut chain = Vec::new();
    for i in 0..7 {
        let p = d.join(format!("c{i}"));
        write_exec(&p, format!("#!{prev}\n").as_bytes());
        prev = p.to_str().unwrap().to_string();
        chain.push(p);
    }
    // Linux (exec_binprm: depth > 5 → ELOOP) runs 5 nested scripts but
    // not 6.
    assert!(run(&chain[4], &["x"]).1.is_ok());
    assert_eq!(run(&chain[5], &["x"]).1.err(), Some(Errno::ELOOP));

    // Unknown format, missing interpreter, no permission, directory.
    let text = d.join("text");
    write_exec(&text, b"hello world\n");
    assert_eq!(run(&text, &["x"]).1.err(), Some(Errno::ENOEXEC));
    let bad = d.join("bad");
    write_exec(&bad, b"#!/nonexistent/sh\n");
    assert_eq!(run(&bad, &["x"]).1.err(), Some(Errno::ENOENT));
    let noexec = d.join("noexec");
    std::fs::write(&noexec, b"#!/bin/true\n").unwrap();
    std::fs::set_permissions(&noexec, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(run(&noexec, &["x"]).1.err(), Some(Errno::EACCES));
    assert_eq!(run(&d, &["x"]).1.err(), Some(Errno::EACCES));
    assert_eq!(run(&d.join("missing"), &["x"]).1.err(), Some(Errno::ENOENT));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn empty_argv_gets_an_empty_argv0_and_e2big() {
    let mut mm = FakeMm::default();
    let r = exec::exec(&mut mm, "/bin/true", &[], &[], &ExecParams::default()).unwrap();
    assert_eq!(r.argv, strs(&[""]));
    let huge = vec!["x".repeat(100_000); 30];
    let mut mm = FakeMm::default();
    assert_eq!(
        exec::exec(&mut mm, "/bin/true", &huge, &[], &ExecParams::default()).err(),
        Some(Errno::E2BIG)
    );
    // Nothing was mapped: E2BIG comes before the point of no return.
    assert!(mm.vmas.is_empty());
}

// ---- hostile ELF files -------------------------------------------------

fn le16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
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

/// Offset of the first program header of type `t`.
fn phdr_of(b: &[u8], t: u32) -> usize {
    let phoff = u64::from_le_bytes(b[32..40].try_into().unwrap()) as usize;
    let phnum = u16::from_le_bytes(b[56..58].try_into().unwrap()) as usize;
    (0..phnum)
        .map(|i| phoff + i * 56)
        .find(|&o| rd32(b, o) == t)
        .unwrap()
}

#[test]
fn hostile_elf_headers_give_linux_errnos() {
    let Ok(orig) = std::fs::read("/usr/bin/true") else {
        return;
    };
    let d = tmpdir("hostile");
    let p = d.join("t");
    let ni_path = d.join("notelf");
    write_exec(&ni_path, "#!/bin/sh\n".repeat(10).as_bytes());
    let short_path = d.join("short");
    write_exec(&short_path, b"#!/bin/sh\n");
    let short = short_path.to_str().unwrap().to_string();
    let ni = ni_path.to_str().unwrap().to_string();
    let case = |name: &str, f: &dyn Fn(&mut Vec<u8>), want: Option<Errno>| {
        let mut b = orig.clone();
        f(&mut b);
        write_exec(&p, &b);
        let got = run(&p, &["t"]).1.err();
        assert_eq!(got, want, "{name}");
    };
    case("intact", &|_| {}, None);
    case("empty", &|b| b.clear(), Some(Errno::ENOEXEC));
    case("magic only", &|b| b.truncate(4), Some(Errno::ENOEXEC));
    case("bad magic", &|b| b[1] = b'F', Some(Errno::ENOEXEC));
    // The 64-bit loader checks only e_machine (elf_check_arch): a header
    // claiming ELFCLASS32 or big-endian data loads (recorded: "ok").
    case("ELFCLASS32", &|b| b[4] = 1, None);
    case("ELFDATA2MSB", &|b| b[5] = 2, None);
    case("EM_386", &|b| le16(b, 18, 3), Some(Errno::ENOEXEC));
    case("ET_REL", &|b| le16(b, 16, 1), Some(Errno::ENOEXEC));
    case("ET_CORE", &|b| le16(b, 16, 4), Some(Errno::ENOEXEC));
    case("phentsize", &|b| le16(b, 54, 32), Some(Errno::ENOEXEC));
    case("no phdrs", &|b| le16(b, 56, 0), Some(Errno::ENOEXEC));
    // load_elf_phdrs allows 64 KiB of headers (1170); more is ENOEXEC,
    // and so is a table running past the end of the file.
    case(
        "too many phdrs",
        &|b| le16(b, 56, 1171),
        Some(Errno::ENOEXEC),
    );
    case(
        "phdrs past EOF",
        &|b| le16(b, 56, 1170),
        Some(Errno::ENOEXEC),
    );
    // 74 headers (more than a page) are read: the 61 after the real ones
    // are the file's bytes, which the kernel rejects with ENOMEM after
    // the point of no return (recorded on 6.18).
    case("74 phdrs", &|b| le16(b, 56, 74), Some(Errno::ENOMEM));
    case(
        "phoff past EOF",
        &|b| le64(b, 32, 1 << 40),
        Some(Errno::ENOEXEC),
    );
    case(
        "truncated phdrs",
        &|b| b.truncate(100),
        Some(Errno::ENOEXEC),
    );
    let interp = phdr_of(&orig, 3);
    case(
        "interp missing",
        &|b| {
            let off = u64::from_le_bytes(b[interp + 8..interp + 16].try_into().unwrap()) as usize;
            b[off + 1] = b'X';
        },
        Some(Errno::ENOENT),
    );
    case(
        "interp not NUL terminated",
        &|b| {
            let off = u64::from_le_bytes(b[interp + 8..interp + 16].try_into().unwrap()) as usize;
            let len = u64::from_le_bytes(b[interp + 32..interp + 40].try_into().unwrap()) as usize;
            b[off + len - 1] = b'x';
        },
        Some(Errno::ENOEXEC),
    );
    case(
        "interp too short",
        &|b| le64(b, interp + 32, 1),
        Some(Errno::ENOEXEC),
    );
    case(
        "interp too long",
        &|b| le64(b, interp + 32, 4097),
        Some(Errno::ENOEXEC),
    );
    case(
        "interp past EOF",
        &|b| le64(b, interp + 8, 1 << 40),
        Some(Errno::EIO),
    );
    case(
        "interp not ELF",
        &|b| {
            // Point PT_INTERP at a path appended to the file: an executable
            // text file.
            let off = b.len();
            b.extend_from_slice(ni.as_bytes());
            b.push(0);
            le64(b, interp + 8, off as u64);
            le64(b, interp + 32, ni.len() as u64 + 1);
        },
        Some(Errno::ELIBBAD),
    );
    case(
        "interp shorter than an ELF header",
        &|b| {
            let off = b.len();
            b.extend_from_slice(short.as_bytes());
            b.push(0);
            le64(b, interp + 8, off as u64);
            le64(b, interp + 32, short.len() as u64 + 1);
        },
        Some(Errno::EIO),
    );
    case(
        "interp is a directory",
        &|b| {
            let off = b.len();
            b.extend_from_slice(b"/tmp\0");
            le64(b, interp + 8, off as u64);
            le64(b, interp + 32, 5);
        },
        Some(Errno::EACCES),
    );
    let load = phdr_of(&orig, 1);
    case(
        "filesz > memsz",
        &|b| {
            let memsz = u64::from_le_bytes(b[load + 40..load + 48].try_into().unwrap());
            le64(b, load + 32, memsz + 1);
        },
        Some(Errno::EINVAL),
    );
    case(
        "offset not congruent to vaddr",
        &|b| {
            le64(b, load + 8, 0x10);
        },
        Some(Errno::EINVAL),
    );
    case(
        "memsz huge",
        &|b| le64(b, load + 40, 1 << 62),
        Some(Errno::ENOMEM),
    );
    // The PIE load bias wraps the address back into range, so the mapping
    // succeeds and the p_vaddr check after it fails (BAD_ADDR → EINVAL).
    case(
        "vaddr wraps",
        &|b| le64(b, load + 16, u64::MAX - 0xfff),
        Some(Errno::EINVAL),
    );
    // An ET_EXEC segment above TASK_SIZE cannot be mapped (do_mmap: ENOMEM).
    case(
        "ET_EXEC above TASK_SIZE",
        &|b| {
            le16(b, 16, 2);
            le64(b, load + 16, TASK_SIZE);
        },
        Some(Errno::ENOMEM),
    );
    // No PT_LOAD at all: Linux maps nothing of the program and goes on
    // (the interpreter is still loaded); the task would crash at once.
    case(
        "no PT_LOAD",
        &|b| {
            let phnum = u16::from_le_bytes(b[56..58].try_into().unwrap()) as usize;
            let phoff = u64::from_le_bytes(b[32..40].try_into().unwrap()) as usize;
            for i in 0..phnum {
                if rd32(b, phoff + i * 56) == 1 {
                    le32(b, phoff + i * 56, 0x6fff_0000);
                }
            }
        },
        None,
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn overlapping_segments_are_accepted_like_linux() {
    // Later PT_LOADs are MAP_FIXED over earlier ones; Linux does not check.
    let Ok(orig) = std::fs::read("/usr/bin/true") else {
        return;
    };
    let d = tmpdir("overlap");
    let p = d.join("t");
    let mut b = orig.clone();
    let phoff = u64::from_le_bytes(b[32..40].try_into().unwrap()) as usize;
    let phnum = u16::from_le_bytes(b[56..58].try_into().unwrap()) as usize;
    let loads: Vec<usize> = (0..phnum)
        .map(|i| phoff + i * 56)
        .filter(|&o| rd32(&b, o) == 1)
        .collect();
    // Make the second PT_LOAD start at the first one's address.
    let off2 = u64::from_le_bytes(b[loads[1] + 8..loads[1] + 16].try_into().unwrap());
    le64(&mut b, loads[1] + 16, off2 & 0xfff);
    write_exec(&p, &b);
    assert!(run(&p, &["t"]).1.is_ok());
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn truncated_or_corrupted_elf_never_panics() {
    let Ok(orig) = std::fs::read("/usr/bin/true") else {
        return;
    };
    let d = tmpdir("fuzz");
    let p = d.join("t");
    // Truncations: every length through the headers, then sparser. Up to
    // the end of the PT_INTERP string exec must fail (ENOEXEC, or EIO for
    // the interpreter path); beyond it Linux loads the file anyway, since
    // mapping past the end of a file is legal (access would SIGBUS).
    let interp = phdr_of(&orig, 3);
    let interp_end = u64::from_le_bytes(orig[interp + 8..interp + 16].try_into().unwrap())
        + u64::from_le_bytes(orig[interp + 32..interp + 40].try_into().unwrap());
    let mut lens: Vec<usize> = (0..1200).collect();
    lens.extend((1200..orig.len()).step_by(997));
    for len in lens {
        write_exec(&p, &orig[..len]);
        let r = run(&p, &["t"]).1;
        if (len as u64) < interp_end {
            assert!(
                matches!(r, Err(Errno::ENOEXEC) | Err(Errno::EIO)),
                "truncated at {len}: {r:?}"
            );
        } else {
            assert!(r.is_ok(), "truncated at {len}: {r:?}");
        }
    }
    // Corruptions of every header byte with a few values; a simple LCG
    // for deterministic multi-byte damage.
    let mut seed = 0x1234_5678_u64;
    for off in 0..(64 + 56 * 13) {
        for v in [0x00u8, 0xff, 0x80, 0x01] {
            let mut b = orig.clone();
            b[off] = v;
            write_exec(&p, &b);
            let _ = run(&p, &["t"]).1;
        }
    }
    for _ in 0..300 {
        let mut b = orig.clone();
        for _ in 0..8 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let off = (seed >> 33) as usize % (64 + 56 * 13);
            b[off] = (seed >> 13) as u8;
        }
        write_exec(&p, &b);
        let _ = run(&p, &["t"]).1;
    }
    let _ = std::fs::remove_dir_all(&d);
}

// ---- live oracle: compile, record with gdb, compare ---------------------

fn have(tool: &str) -> bool {
    std::process::Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Records `prog` with record.sh into `dir` under `name`; false if it fails.
fn record(dir: &Path, name: &str, prog: &str) -> bool {
    std::process::Command::new("sh")
        .arg(data("record.sh"))
        .args([name, prog])
        .current_dir(dir)
        .status()
        .is_ok_and(|s| s.success())
        && dir.join(format!("{name}.starti.maps")).exists()
}

#[test]
fn static_static_pie_and_ldso_match_the_live_kernel() {
    // Every machine of this kind has gdb and gcc (.ci/run checks): a
    // missing one is a failure, not a silent skip.
    assert!(
        have("gdb") && have("gcc"),
        "this test needs gdb and gcc (apt-get install gdb gcc)"
    );
    let randomize =
        std::fs::read_to_string("/proc/sys/kernel/randomize_va_space").unwrap_or_default();
    let d = tmpdir("live");
    let src = d.join("p.c");
    std::fs::write(&src, "int big[5000]; int main(void) { return big[1]; }\n").unwrap();
    let mut progs = vec![];
    // Static, static PIE, and with 2 MiB p_align (maximum_alignment: the
    // PIE base is aligned down to it; a static PIE is mapped once to find
    // a place, unmapped, and mapped again aligned).
    let variants: [(&str, &[&str]); 5] = [
        ("static", &["-static"]),
        ("spie", &["-static-pie"]),
        ("spie2m", &["-static-pie", "-Wl,-z,max-page-size=0x200000"]),
        ("pie", &["-pie"]),
        ("pie2m", &["-pie", "-Wl,-z,max-page-size=0x200000"]),
    ];
    for (name, flags) in variants {
        let out = d.join(name);
        let ok = std::process::Command::new("gcc")
            .args(flags)
            .arg("-o")
            .arg(&out)
            .arg(&src)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "gcc {flags:?} failed: this test needs gcc and libc6-dev"
        );
        progs.push((name.to_string(), out.to_str().unwrap().to_string()));
    }
    if let Ok(ld) = std::fs::canonicalize("/lib64/ld-linux-x86-64.so.2") {
        progs.push(("ldso".into(), ld.to_str().unwrap().to_string()));
    }
    for (name, prog) in progs {
        assert!(
            record(&d, &name, &prog),
            "{name}: gdb could not record its first instruction (is ptrace allowed?)"
        );
        let real = std::fs::read_to_string(d.join(format!("{name}.starti.maps"))).unwrap();
        let mut mm = FakeMm::default();
        let r = exec::exec(
            &mut mm,
            &prog,
            &strs(&[&prog]),
            &env(),
            &ExecParams::default(),
        )
        .unwrap();
        assert_eq!(
            mm.maps(),
            real,
            "maps of {prog} (randomize_va_space {randomize})"
        );
        let stat = std::fs::read_to_string(d.join(format!("{name}.starti.stat"))).unwrap();
        let f = stat_fields(&stat);
        assert_eq!(r.layout.start_brk.0, f[44], "start_brk of {prog}");
        let (rsp, rip) =
            regs(&std::fs::read_to_string(d.join(format!("{name}.starti.regs"))).unwrap());
        assert_eq!((r.start_stack.0, r.entry.0), (rsp, rip), "{prog}");
    }
    let _ = std::fs::remove_dir_all(&d);
}
