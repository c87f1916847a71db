//! exec of every program in `tests/fixtures/bin` (and `/bin/ls`) on a booted
//! machine, compared with the real kernel's state at its first instruction
//! (gdb `starti`, recorded by `tools/record/starti.py` into
//! `tests/fixtures/starti/`; formats in `tests/fixtures/README.md`):
//!
//! - `NAME.maps`: /proc/PID/maps, byte for byte once the recording
//!   checkout's path is mapped to this one and the fixture binary's device
//!   and inode are masked (a host file's are masked only when this host's
//!   copy has other numbers than the recorded ones);
//! - `NAME.stack`: every byte from `$rsp` to the top of `[stack]` except
//!   the 16 `AT_RANDOM` bytes;
//! - `NAME.auxv`: /proc/PID/auxv, every pair (the CPU-dependent values
//!   AT_HWCAP, AT_HWCAP2, AT_MINSIGSTKSZ and the `x86_64` platform string
//!   are [`machine::exec::ExecParams::default`]'s, which are the recording
//!   CPU's);
//! - `NAME.rsp`: `$rsp`, the end of `[stack]` and the stack's length;
//! - `NAME.env`: argv and envp, which exec is given and which lmm's
//!   `arg_start..arg_end` and `env_start..env_end` must hold again (what
//!   /proc/PID/cmdline and environ print).
//!
//! What the kernel randomizes with ASLR off: only the 16 AT_RANDOM bytes
//! (`create_elf_tables` fills them with `get_random_bytes` on every exec;
//! `arch_align_stack` and the mmap/brk/stack bases take no random offset
//! under ADDR_NO_RANDOMIZE). Three gdb recordings of `mmap_basic-static` in
//! a row on one host differ in exactly those 16 bytes; a recording on
//! another CPU differs further only in AT_HWCAP and AT_MINSIGSTKSZ (in
//! auxv and in their copy on the stack), which are hardware, not chance.
//!
//! The static and static-PIE programs load no host file: they are compared
//! on every machine. The dynamically linked ones (and `ls`) also load
//! ld.so (and `ls` itself), whose sizes decide the layout: they are
//! compared only where each such file has the sha256 recorded in
//! `tests/fixtures/host-files.txt`, else the test says `SKIP` on stderr.

mod common;

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use machine::exec::stack::{AT_EXECFN, AT_NULL, AT_RANDOM};
use machine::exec::{ExecResult, STACK_TOP};
use machine::{Machine, MachineConfig};
use mm::arch::Arch;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

fn starti(file: &str) -> PathBuf {
    root().join("tests/fixtures/starti").join(file)
}

/// The fixture's file `NAME.ext`, read in full.
fn read(name: &str, ext: &str) -> Vec<u8> {
    let p = starti(&format!("{name}.{ext}"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn text(name: &str, ext: &str) -> String {
    String::from_utf8(read(name, ext)).expect("UTF-8")
}

/// Writes `SKIP what: why` straight to the test's stderr, which `cargo
/// test` shows (libtest captures `eprintln!`, not the file descriptor), in
/// one write so that it does not interleave with libtest's lines.
fn skip(what: &str, why: &str) {
    let line = format!("SKIP {what}: {why}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// `NAME.env`: argv and envp.
fn env_of(name: &str) -> (Vec<String>, Vec<String>) {
    let mut argv = Vec::new();
    let mut envp = Vec::new();
    for l in text(name, "env").lines() {
        if let Some(a) = l.strip_prefix("argv ") {
            argv.push(a.to_string());
        } else if let Some(e) = l.strip_prefix("envp ") {
            envp.push(e.to_string());
        } else {
            panic!("{name}.env: unexpected line {l:?}");
        }
    }
    (argv, envp)
}

/// `NAME.rsp`: (rsp, stack_end, bytes).
fn rsp_of(name: &str) -> (u64, u64, u64) {
    let mut r = [None; 3];
    for l in text(name, "rsp").lines() {
        let (k, v) = l.split_once(' ').expect("KEY VALUE");
        let hex = |v: &str| u64::from_str_radix(v.trim_start_matches("0x"), 16).unwrap();
        match k {
            "rsp" => r[0] = Some(hex(v)),
            "stack_end" => r[1] = Some(hex(v)),
            "bytes" => r[2] = Some(v.parse().unwrap()),
            _ => panic!("{name}.rsp: unexpected line {l:?}"),
        }
    }
    (
        r[0].expect("rsp"),
        r[1].expect("stack_end"),
        r[2].expect("bytes"),
    )
}

/// `NAME.auxv`: the (key, value) pairs through AT_NULL.
fn auxv_of(name: &str) -> Vec<(u64, u64)> {
    let raw = read(name, "auxv");
    assert_eq!(raw.len() % 16, 0, "{name}.auxv: not u64 pairs");
    let v: Vec<(u64, u64)> = raw
        .chunks_exact(16)
        .map(|c| {
            (
                u64::from_le_bytes(c[..8].try_into().unwrap()),
                u64::from_le_bytes(c[8..].try_into().unwrap()),
            )
        })
        .collect();
    assert_eq!(
        v.last(),
        Some(&(AT_NULL, 0)),
        "{name}.auxv ends with AT_NULL"
    );
    v
}

/// One line of /proc/PID/maps.
#[derive(Clone, Debug, PartialEq, Eq)]
struct MapsLine {
    range: String,
    perms: String,
    offset: String,
    dev: String,
    ino: String,
    name: Option<String>,
}

fn parse_maps(maps: &str) -> Vec<MapsLine> {
    maps.lines()
        .map(|l| {
            let mut f = l.splitn(6, ' ');
            let mut next = || f.next().unwrap_or_else(|| panic!("maps line {l:?}"));
            let (range, perms, offset, dev, ino) = (next(), next(), next(), next(), next());
            let name = f.next().map(|s| s.trim_start().to_string());
            MapsLine {
                range: range.into(),
                perms: perms.into(),
                offset: offset.into(),
                dev: dev.into(),
                ino: ino.into(),
                name: name.filter(|n| !n.is_empty()),
            }
        })
        .collect()
}

/// Renders maps lines as task_mmu.c does (`show_vma_header_prefix`, the
/// name padded to column 73 on 64-bit).
fn render_maps(lines: &[MapsLine]) -> String {
    let mut s = String::new();
    for l in lines {
        let mut line = format!("{} {} {} {} {} ", l.range, l.perms, l.offset, l.dev, l.ino);
        if let Some(n) = &l.name {
            while line.len() < 73 {
                line.push(' ');
            }
            line.push_str(n);
        }
        s.push_str(&line);
        s.push('\n');
    }
    s
}

/// The sha256 `tests/fixtures/host-files.txt` records for `path`.
fn recorded_sha256(path: &str) -> String {
    let list = root().join("tests/fixtures/host-files.txt");
    let text = std::fs::read_to_string(&list).expect("tests/fixtures/host-files.txt");
    text.lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 4 && f[0] == path).then(|| f[3].to_string())
        })
        .unwrap_or_else(|| {
            panic!("{path} is not listed in tests/fixtures/host-files.txt (tools/record/whole.sh)")
        })
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The host files the recorded exec loaded: every absolute path in the
/// maps other than the fixture binary `own` (`ls` and ld.so).
fn host_files_of(maps: &[MapsLine], own: Option<&str>) -> Vec<String> {
    let mut v: Vec<String> = maps
        .iter()
        .filter_map(|l| l.name.clone())
        .filter(|n| n.starts_with('/') && Some(n.as_str()) != own)
        .collect();
    v.dedup();
    v
}

/// Why this host's copies of `files` cannot reproduce the recording (one
/// has other bytes than host-files.txt records, or is missing), or `None`.
fn host_mismatch(files: &[String]) -> Option<String> {
    for f in files {
        let want = recorded_sha256(f);
        match std::fs::read(f) {
            Ok(b) if sha256_hex(&b) == want => {}
            Ok(_) => return Some(format!("{f} has other bytes than on the recording host")),
            Err(e) => return Some(format!("{f}: {e}")),
        }
    }
    None
}

/// Where the program the recording ran is in this checkout: a fixture
/// binary recorded as `/ANY/CHECKOUT/tests/fixtures/bin/NAME` is this
/// repository's `tests/fixtures/bin/NAME`; anything else is a host file.
fn host_path_of(argv0: &str) -> (String, bool) {
    match argv0.split_once("/tests/fixtures/bin/") {
        Some((_, bin)) => (
            root()
                .join("tests/fixtures/bin")
                .join(bin)
                .display()
                .to_string(),
            true,
        ),
        None => (argv0.to_string(), false),
    }
}

/// Execs the program of fixture `name` on a booted machine with the
/// recorded argv and envp, and compares maps, stack, auxv, rsp and the
/// argument and environment areas with the recording. `static_binary`:
/// the recording loaded no host file (asserted), so the comparison runs
/// on every machine.
fn compare(name: &str, static_binary: bool) {
    // Every file of the fixture is read first, whatever happens next.
    let maps_text = text(name, "maps");
    let real_stack = read(name, "stack");
    let real_auxv = auxv_of(name);
    let (rsp, stack_end, bytes) = rsp_of(name);
    let (argv, envp) = env_of(name);

    let real_maps = parse_maps(&maps_text);
    assert_eq!(render_maps(&real_maps), maps_text, "{name}.maps round trip");
    let argv0 = argv[0].clone();
    let (host_path, own_binary) = host_path_of(&argv0);
    let own = own_binary.then_some(argv0.as_str());
    let needs = host_files_of(&real_maps, own);
    if static_binary {
        assert!(
            needs.is_empty() && own_binary,
            "{name} is listed as static but its recording loaded {needs:?}"
        );
    }
    if let Some(why) = host_mismatch(&needs) {
        return skip(name, &why);
    }

    let mut m = Machine::boot(MachineConfig {
        arch: Arch::X86_64,
        ram: 256 << 20,
        cpus: 2,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(m.spawn("init"), Ok(1));
    let free0 = common::free_pages(&m);
    let pid = m.spawn("gdb").unwrap();
    // gdb execs the absolute path, which is argv[0] and AT_EXECFN.
    let r: ExecResult = m
        .exec_as(pid, &host_path, &argv0, &argv, &envp)
        .unwrap_or_else(|e| panic!("exec {host_path} as {argv0}: {e:?}"));
    common::check(&m);

    // rsp and the stack VMA.
    assert_eq!(r.start_stack.0, rsp, "{name}: rsp");
    assert_eq!(stack_end, STACK_TOP, "{name}: recorded stack_end");
    assert_eq!(r.layout.stack_vma.1 .0, stack_end, "{name}: end of [stack]");
    assert_eq!(bytes, stack_end - rsp, "{name}.rsp: bytes");
    assert_eq!(real_stack.len() as u64, bytes, "{name}.stack: length");

    // auxv: every pair, AT_RANDOM's address included.
    assert_eq!(r.auxv, real_auxv, "{name}: auxv");
    let lmm_auxv: Vec<u8> = r
        .auxv
        .iter()
        .flat_map(|&(k, v)| k.to_le_bytes().into_iter().chain(v.to_le_bytes()))
        .collect();
    assert_eq!(lmm_auxv, read(name, "auxv"), "{name}: auxv bytes");

    // The stack, byte for byte except the 16 AT_RANDOM bytes.
    let mut sim = m.read_user(pid, rsp, bytes as usize).unwrap();
    let at_random = real_auxv.iter().find(|e| e.0 == AT_RANDOM).unwrap().1;
    let off = (at_random - rsp) as usize;
    assert!(off + 16 <= sim.len());
    sim[off..off + 16].copy_from_slice(&real_stack[off..off + 16]);
    if sim != real_stack {
        let first = sim.iter().zip(&real_stack).position(|(a, b)| a != b);
        panic!(
            "{name}: stack differs, first at rsp+{first:?} (0x{:x})",
            rsp + first.unwrap_or(0) as u64
        );
    }
    // AT_EXECFN points at the name exec was given, at the top.
    let execfn = real_auxv.iter().find(|e| e.0 == AT_EXECFN).unwrap().1;
    assert_eq!(execfn + argv0.len() as u64 + 1 + 8, STACK_TOP, "{name}");

    // What /proc/PID/cmdline and environ would print: NAME.env again.
    let area = |m: &mut Machine, a: u64, b: u64| -> Vec<String> {
        let raw = m.read_user(pid, a, (b - a) as usize).unwrap();
        let mut v: Vec<String> = raw
            .split(|&c| c == 0)
            .map(|s| String::from_utf8(s.to_vec()).unwrap())
            .collect();
        assert_eq!(v.pop().as_deref(), Some(""), "NUL-terminated");
        v
    };
    let l = r.layout.clone();
    assert_eq!(
        area(&mut m, l.arg_start.0, l.arg_end.0),
        argv,
        "{name}: cmdline"
    );
    assert_eq!(
        area(&mut m, l.env_start.0, l.env_end.0),
        envp,
        "{name}: environ"
    );

    // maps: the checkout's path is the recording's; the fixture binary's
    // device and inode are this checkout's, so masked; a host file's are
    // compared where this host's copy has the recorded numbers.
    let mut lmm_maps = parse_maps(&m.proc_pid(pid, "maps").unwrap());
    let mut real_maps = real_maps;
    let canon = std::fs::canonicalize(&host_path)
        .unwrap()
        .display()
        .to_string();
    for l in lmm_maps.iter_mut() {
        if own_binary && l.name.as_deref() == Some(canon.as_str()) {
            l.name = Some(argv0.clone());
        }
    }
    for (a, b) in lmm_maps.iter_mut().zip(real_maps.iter_mut()) {
        let Some(n) = b.name.clone().filter(|n| n.starts_with('/')) else {
            continue;
        };
        let same_numbers = Some(n.as_str()) != own
            && std::fs::metadata(&n).is_ok_and(|md| {
                md.ino().to_string() == b.ino
                    && format!("{:02x}:{:02x}", major(md.dev()), minor(md.dev())) == b.dev
            });
        if !same_numbers && a.name == b.name {
            for l in [a, b] {
                l.dev = "00:00".into();
                l.ino = "0".into();
            }
        }
    }
    assert_eq!(
        render_maps(&lmm_maps),
        render_maps(&real_maps),
        "{name}: maps"
    );

    m.exit(pid).unwrap();
    common::check(&m);
    assert_eq!(
        common::free_pages(&m),
        free0,
        "{name}: exit returns every page"
    );
}

/// `MAJOR(dev)` of a Linux `st_dev` (new_decode_dev).
fn major(dev: u64) -> u64 {
    ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0xfff)
}

/// `MINOR(dev)` of a Linux `st_dev`.
fn minor(dev: u64) -> u64 {
    ((dev >> 12) & 0xffff_ff00) | (dev & 0xff)
}

/// Fixture name, whether its recording loaded no host file, and the test.
macro_rules! fixtures {
    ($($test:ident => $name:literal, $static:literal;)*) => {
        /// Every fixture this file compares.
        const FIXTURES: &[(&str, bool)] = &[$(($name, $static)),*];
        $(
            #[test]
            fn $test() {
                compare($name, $static);
            }
        )*
    };
}

fixtures! {
    mmap_basic_static => "mmap_basic-static", true;
    mmap_basic_static_pie => "mmap_basic-static-pie", true;
    mmap_basic_pie => "mmap_basic-pie", false;
    mmap_basic_nopie => "mmap_basic-nopie", false;
    mremap_brk_static => "mremap_brk-static", true;
    mremap_brk_static_pie => "mremap_brk-static-pie", true;
    mremap_brk_pie => "mremap_brk-pie", false;
    mremap_brk_nopie => "mremap_brk-nopie", false;
    filemap_static => "filemap-static", true;
    filemap_static_pie => "filemap-static-pie", true;
    filemap_pie => "filemap-pie", false;
    filemap_nopie => "filemap-nopie", false;
    bin_ls => "ls", false;
}

/// The five files `tools/record/starti.py` writes per program, all of
/// which [`compare`] reads.
const EXTENSIONS: &[&str] = &["maps", "stack", "auxv", "rsp", "env"];

#[test]
fn every_starti_fixture_file_is_compared() {
    let mut listed: Vec<String> = std::fs::read_dir(root().join("tests/fixtures/starti"))
        .expect("tests/fixtures/starti")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    listed.sort();
    let mut covered: Vec<String> = FIXTURES
        .iter()
        .flat_map(|(n, _)| EXTENSIONS.iter().map(move |e| format!("{n}.{e}")))
        .collect();
    covered.sort();
    let missing: Vec<&String> = listed.iter().filter(|f| !covered.contains(f)).collect();
    assert!(
        missing.is_empty(),
        "tests/fixtures/starti files no test compares: {missing:?} (add them to FIXTURES)"
    );
    let absent: Vec<&String> = covered.iter().filter(|f| !listed.contains(f)).collect();
    assert!(
        absent.is_empty(),
        "fixtures expected but absent: {absent:?}"
    );
    // Every program in tests/fixtures/bin that has a recording is compared,
    // and every static one unconditionally.
    for (n, st) in FIXTURES {
        assert_eq!(
            *st,
            n.ends_with("-static") || n.ends_with("-static-pie"),
            "{n}"
        );
    }
}

/// How many fixtures [`compare`] skips on this host, as one line that
/// `.ci/run` repeats (a differing host file never fails CI, but is seen).
#[test]
fn starti_host_file_guard_summary() {
    let mut skipped = 0;
    for (n, _) in FIXTURES {
        let maps = parse_maps(&text(n, "maps"));
        let (argv, _) = env_of(n);
        let (_, own_binary) = host_path_of(&argv[0]);
        let needs = host_files_of(&maps, own_binary.then_some(argv[0].as_str()));
        if host_mismatch(&needs).is_some() {
            skipped += 1;
        }
    }
    let line = format!(
        "starti guard: {skipped} of {} fixtures skipped (a host file they load has other bytes here)\n",
        FIXTURES.len()
    );
    let _ = std::io::stderr().write_all(line.as_bytes());
}
