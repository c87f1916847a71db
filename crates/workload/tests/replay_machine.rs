//! strace replay on a real machine (x86-64, 4 GiB): every recorded trace in
//! tests/fixtures/traces replays with `--check` without a divergence through
//! exit_group, and the address space at exit_group equals, byte for byte
//! after [`normalize_maps`], the program's last checkpoint (the real
//! kernel's /proc/self/maps printed after the last memory call). A trace
//! edited to hold a wrong result is reported at that line with both values.
//!
//! Why the last checkpoint: the trace (`%memory,%process`) does not show the
//! program's `write(1, ...)` calls, so intermediate checkpoints cannot be
//! placed on trace lines; every fixture program prints its last checkpoint
//! after its last memory call, so the maps at exit_group must equal it.
//! `mmap_basic`'s last checkpoint comes after it unmaps everything it mapped,
//! so its final maps are the start-up ones; its fork children are skipped
//! (no fork yet) and only the parent is compared.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use machine::MachineConfig;
use mm::VirtAddr;
use workload::replay::{
    normalize_maps, renumber_shmem_inodes, replay, stdout_checkpoints, Capture, Hint,
    MachineTarget, ReplayError, ReplayOptions, ReplayReport, Touch, SHARED_WRITE_HINT,
};
use workload::strace::{parse_file, parse_str, Event, Line};

/// The checkout the fixtures were recorded in.
const RECORD: &str = "/work/wt-record";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

fn traces() -> PathBuf {
    root().join("tests/fixtures/traces")
}

fn path_map() -> Vec<(String, String)> {
    vec![(RECORD.into(), root().display().to_string())]
}

fn opts(name: &str, touches: Vec<Touch>) -> ReplayOptions {
    ReplayOptions {
        file: format!("{name}.strace"),
        check: true,
        env: Vec::new(),
        path_map: path_map(),
        cwd: Some(root()),
        touches,
    }
}

fn target() -> MachineTarget {
    MachineTarget::boot(MachineConfig {
        ram: 4 << 30,
        ..MachineConfig::default()
    })
    .expect("boot")
}

/// The line of the first call whose text (after the pid) starts with
/// `prefix`, and its pid.
fn line_of(lines: &[Line], text: &str, prefix: &str) -> (usize, u32) {
    let l = text
        .lines()
        .enumerate()
        .find(|(_, l)| {
            l.split_once(char::is_whitespace)
                .is_some_and(|(_, rest)| rest.trim_start().starts_with(prefix))
        })
        .map(|(i, _)| i + 1)
        .unwrap_or_else(|| panic!("no line starting with {prefix:?}"));
    let pid = lines
        .iter()
        .find(|x| x.line_no == l)
        .and_then(|x| x.pid)
        .expect("pid");
    (l, pid)
}

/// The writes of `tools/record/progs/mremap_brk.c` that decide its final
/// maps and that strace does not show: `fill(A, 8 * PAGE, 20)` right after
/// `mmap(A, 8 pages)` (A keeps pgoff 0x40000 through its three moves, so
/// its DONTUNMAP copy does not merge with ld.so's anonymous page above it),
/// and `fill(D, 2 * PAGE, 60)` right after `mmap(D, 2 pages)` (D keeps its
/// pgoff when moved to 0x4300c000 and stays a VMA of its own next to the
/// merged 0x43000000 one). Other programs need none.
fn touches(name: &str, lines: &[Line], text: &str) -> Vec<Touch> {
    if !name.starts_with("mremap_brk") {
        return Vec::new();
    }
    [
        ("mmap(0x40000000, 32768,", 0x4000_0000, 0x8000),
        ("mmap(0x42000000, 8192,", 0x4200_0000, 0x2000),
    ]
    .into_iter()
    .map(|(prefix, addr, len)| {
        let (after_line, pid) = line_of(lines, text, prefix);
        Touch {
            after_line,
            pid,
            addr: VirtAddr(addr),
            len,
        }
    })
    .collect()
}

/// The host files the dynamically linked traces load (ld.so, libc, ls, ...)
/// as recorded in tests/fixtures/host-files.txt: path -> sha256.
fn recorded_host_files() -> BTreeMap<String, String> {
    let list = traces().join("../host-files.txt");
    let text = std::fs::read_to_string(&list).expect("host-files.txt");
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let [path, _ino, _size, sha] = f[..] else {
                panic!("host-files.txt: expected `PATH INODE SIZE SHA256`, found {l:?}");
            };
            assert!(
                sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
                "{l}"
            );
            (path.to_string(), sha.to_string())
        })
        .collect()
}

/// The sha256 of a host file, or None if it cannot be read.
fn sha256_of(path: &str) -> Option<String> {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(path).ok()?;
    Some(
        Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    )
}

/// The recorded host files that differ on this machine (each hashed once).
fn differing_host_files() -> &'static BTreeSet<String> {
    static DIFF: OnceLock<BTreeSet<String>> = OnceLock::new();
    DIFF.get_or_init(|| {
        recorded_host_files()
            .into_iter()
            .filter(|(path, sha)| sha256_of(path).as_deref() != Some(sha.as_str()))
            .map(|(path, _)| path)
            .collect()
    })
}

/// The ELF interpreter (PT_INTERP) of an x86-64 executable, if it has one.
fn elf_interpreter(path: &Path) -> Option<String> {
    let b = std::fs::read(path).ok()?;
    let u16_at = |o: usize| Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?));
    if b.get(..5)? != b"\x7fELF\x02" {
        return None;
    }
    let (phoff, phentsize, phnum) = (u64_at(0x20)? as usize, u16_at(0x36)?, u16_at(0x38)?);
    (0..phnum as usize).find_map(|i| {
        let ph = phoff + i * phentsize as usize;
        if u32_at(ph)? != 3 {
            return None; // not PT_INTERP
        }
        let (off, len) = (u64_at(ph + 8)? as usize, u64_at(ph + 32)? as usize);
        let s = b.get(off..off + len)?;
        Some(String::from_utf8_lossy(s.split(|&c| c == 0).next()?).into_owned())
    })
}

/// The recorded host files that replaying trace `name` needs: its
/// executable, the files it maps (strace's `fd<path>`) and the executable's
/// ELF interpreter, each as the recording host resolved it. The fixture
/// binaries in this repository are not host files.
fn needed_host_files(name: &str) -> BTreeSet<String> {
    let recorded = recorded_host_files();
    let text = std::fs::read_to_string(traces().join(format!("{name}.strace"))).expect("trace");
    let lines = parse_str(name, &text).expect("parse");
    let exe = lines
        .iter()
        .find_map(|l| match &l.event {
            Event::Syscall(s) => s.as_execve().map(|e| e.path),
            _ => None,
        })
        .expect("an execve");
    let exe = if exe.starts_with('/') {
        PathBuf::from(exe)
    } else {
        root().join(exe)
    };
    let mut paths: Vec<String> = vec![exe.display().to_string()];
    paths.extend(elf_interpreter(&exe));
    let mut rest = text.as_str();
    while let Some(i) = rest.find("</") {
        let p = &rest[i + 1..];
        let end = p.find('>').unwrap_or(p.len());
        paths.push(p[..end].to_string());
        rest = &p[end..];
    }
    paths
        .into_iter()
        .filter_map(|p| {
            // Resolved here as the recording host resolved it (merged /usr:
            // /bin/ls is /usr/bin/ls); a file missing here is found by name.
            let real = std::fs::canonicalize(&p).map(|r| r.display().to_string());
            let name = Path::new(&p).file_name()?.to_owned();
            recorded.keys().find(|k| {
                real.as_ref().is_ok_and(|r| r == *k)
                    || *k == &p
                    || (real.is_err() && Path::new(k).file_name() == Some(&name))
            })
        })
        .cloned()
        .collect()
}

/// Why trace `name` cannot be compared on this machine: it needs a host
/// file whose bytes differ from the recording host's (placement would
/// legitimately differ). Only the traces that need such a file are skipped.
fn skip_reason(name: &str) -> Option<String> {
    let diff: Vec<String> = needed_host_files(name)
        .intersection(differing_host_files())
        .cloned()
        .collect();
    (!diff.is_empty()).then(|| {
        format!(
            "{} differ(s) from the recording host's (sha256 in tests/fixtures/host-files.txt; re-record with tools/record/record.sh)",
            diff.join(", ")
        )
    })
}

/// True, and says so where `cargo test` shows it, if trace `name` is
/// skipped. The line goes to stderr directly: libtest captures `eprintln!`
/// of passing tests, not writes to the stream itself.
fn host_changed(name: &str) -> bool {
    let Some(why) = skip_reason(name) else {
        return false;
    };
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIP replay_machine {name}: {why}"
    );
    true
}

/// The host-file guard's count, printed on every run (`.ci/run` shows it):
/// how many traces are skipped on this machine and why. It never fails for
/// a machine whose files differ; it checks that the guard skips only what
/// it must: a statically linked trace needs no host file, `true` and the
/// mmap_basic programs do not need ls or its libraries.
#[test]
fn host_file_guard_summary() {
    let names = fixture_names();
    let skipped: Vec<&String> = names.iter().filter(|n| skip_reason(n).is_some()).collect();
    let diff = differing_host_files();
    let _ = writeln!(
        std::io::stderr().lock(),
        "host-file guard: {} of {} traces skipped; {} of {} recorded host files differ{}",
        skipped.len(),
        names.len(),
        diff.len(),
        recorded_host_files().len(),
        if diff.is_empty() {
            String::new()
        } else {
            format!(" ({})", diff.iter().cloned().collect::<Vec<_>>().join(", "))
        }
    );
    for n in &names {
        let need = needed_host_files(n);
        if n.contains("static") {
            assert!(need.is_empty(), "{n}: {need:?}");
        } else {
            for f in [
                "/etc/ld.so.cache",
                "/usr/lib/x86_64-linux-gnu/libc.so.6",
                "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            ] {
                assert!(need.contains(f), "{n} needs {f}: {need:?}");
            }
        }
        if n != "ls-root" {
            assert!(!need.contains("/usr/bin/ls"), "{n}: {need:?}");
            assert!(
                !need
                    .iter()
                    .any(|f| f.contains("libselinux") || f.contains("libpcre2")),
                "{n}: {need:?}"
            );
        }
    }
    let ls: Vec<String> = recorded_host_files()
        .into_keys()
        .filter(|f| f != "/usr/bin/true")
        .collect();
    assert_eq!(
        needed_host_files("ls-root").into_iter().collect::<Vec<_>>(),
        ls
    );
    assert!(needed_host_files("true").contains("/usr/bin/true"));
}

fn replay_fixture(name: &str) -> (ReplayReport, String) {
    let path = traces().join(format!("{name}.strace"));
    let text = std::fs::read_to_string(&path).expect("trace");
    let lines = parse_file(&path).expect("parse");
    let o = opts(name, touches(name, &lines, &text));
    let mut t = target();
    let report = match replay(&lines, &mut t, &o) {
        Ok(r) => r,
        Err(e) => panic!("{name}: {e}"),
    };
    assert!(
        report.mismatches.is_empty(),
        "{name}: {:?}",
        report.mismatches
    );
    assert_eq!(
        report.checked, report.calls,
        "{name}: every call is checked"
    );
    (report, text)
}

/// Replays `name` and compares its first process's maps at exit_group with
/// the last checkpoint of `name.stdout` (if the program prints any).
fn check_fixture(name: &str) {
    if host_changed(name) {
        return;
    }
    let (report, text) = replay_fixture(name);
    let first = &report.processes[0];
    assert!(first.skipped.is_none(), "{name}");
    let snap = first.maps.as_ref().expect("maps");
    assert_eq!(snap.at, Capture::ExitGroup, "{name}");
    let pid = first.pid.to_string();
    let exit_line = text
        .lines()
        .position(|l| l.starts_with(&format!("{pid} ")) && l.contains("exit_group("))
        .map(|i| i + 1);
    assert_eq!(snap.line, exit_line, "{name}: captured at its exit_group");

    let stdout = std::fs::read_to_string(traces().join(format!("{name}.stdout"))).unwrap();
    let Some(last) = stdout_checkpoints(&stdout).pop() else {
        return;
    };
    let map = path_map();
    let want = renumber_shmem_inodes(&normalize_maps(&last.maps, &map));
    let got = renumber_shmem_inodes(&normalize_maps(&snap.text, &map));
    assert_eq!(
        got, want,
        "{name}: maps at exit_group differ from checkpoint {} ({})",
        last.number, last.label
    );
}

#[test]
fn mmap_basic_all_variants() {
    for v in ["pie", "nopie", "static", "static-pie"] {
        let name = format!("mmap_basic-{v}");
        if host_changed(&name) {
            continue;
        }
        check_fixture(&name);
        // The fork children are skipped, and said so; the parent is clean.
        let (report, _) = replay_fixture(&name);
        let skipped: Vec<_> = report
            .processes
            .iter()
            .filter(|p| p.skipped.is_some())
            .collect();
        assert_eq!(skipped.len(), 2, "{name}");
        assert!(skipped[0]
            .skipped
            .as_ref()
            .unwrap()
            .reason
            .contains("fork is not implemented"));
    }
}

#[test]
fn mremap_brk_all_variants() {
    for v in ["pie", "nopie", "static", "static-pie"] {
        check_fixture(&format!("mremap_brk-{v}"));
    }
}

#[test]
fn filemap_all_variants() {
    for v in ["pie", "nopie", "static", "static-pie"] {
        check_fixture(&format!("filemap-{v}"));
    }
}

#[test]
fn system_programs_true_and_ls() {
    check_fixture("true");
    check_fixture("ls-root");
}

/// Without the writes, mremap_brk still replays without a divergence (no
/// result depends on them) but its final maps merge two VMA pairs Linux
/// keeps apart: the replay cannot see page faults.
#[test]
fn without_the_writes_mremap_brk_merges_what_linux_keeps_apart() {
    let name = "mremap_brk-static";
    let path = traces().join(format!("{name}.strace"));
    let lines = parse_file(&path).unwrap();
    let mut t = target();
    let r = replay(&lines, &mut t, &opts(name, Vec::new())).unwrap();
    let maps = r.processes[0].maps.as_ref().unwrap().text.clone();
    assert!(maps.contains("43000000-4300e000 rw-p"), "{maps}");
}

/// One mmap result edited in memory: the replay stops at that line and
/// names both values.
#[test]
fn a_corrupted_result_is_reported_at_its_line() {
    let name = "mremap_brk-nopie";
    if host_changed(name) {
        return;
    }
    let path = traces().join(format!("{name}.strace"));
    let text = std::fs::read_to_string(&path).unwrap();
    // The first top-down anonymous mmap: a placement lmm computes.
    let (n, _) = line_of(
        &parse_str("x", &text).unwrap(),
        &text,
        "mmap(NULL, 12288, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)",
    );
    let original = text.lines().nth(n - 1).unwrap();
    let (call, real) = original.rsplit_once(" = ").unwrap();
    let edited: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i + 1 == n {
                format!("{call} = 0x7ffff7dd1000\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let lines = parse_str("corrupt.strace", &edited).unwrap();
    let mut t = target();
    let mut o = opts(name, Vec::new());
    o.file = "corrupt.strace".into();
    match replay(&lines, &mut t, &o) {
        Err(ReplayError::Divergence(d)) => {
            assert_eq!(d.line, n);
            assert_eq!(d.expected, "0x7ffff7dd1000");
            assert_eq!(d.got, real.trim());
            assert_eq!(d.hint, None);
            let msg = d.to_string();
            assert!(
                msg.starts_with(&format!("corrupt.strace:{n}: mmap(NULL, 12288, ")),
                "{msg}"
            );
            assert!(
                msg.ends_with(&format!(
                    "returned {} but the trace has 0x7ffff7dd1000",
                    real.trim()
                )),
                "{msg}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Without --check the replay goes on and collects it.
    let mut t = target();
    o.check = false;
    let r = replay(&lines, &mut t, &o).unwrap();
    assert_eq!(r.mismatches.len(), 1);
    assert_eq!(r.mismatches[0].line, n);
}

/// A shared writable mapping of a file opened O_RDWR cannot be reproduced
/// (files are mapped read-only): the divergence says so.
#[test]
fn a_shared_writable_file_mapping_is_reported_with_its_cause() {
    let bin = format!("{RECORD}/tests/fixtures/bin/filemap-static");
    let t = format!(
        "7 execve(\"./tests/fixtures/bin/filemap-static\", [\"./tests/fixtures/bin/filemap-static\"], [\"HOME=/root\"]) = 0\n\
         7 mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_SHARED, 3<{bin}>, 0) = 0x7ffff7ff3000\n\
         7 exit_group(0) = ?\n\
         7 +++ exited with 0 +++\n"
    );
    let lines = parse_str("rdwr.strace", &t).unwrap();
    let mut target = target();
    match replay(&lines, &mut target, &opts("rdwr", Vec::new())) {
        Err(ReplayError::Divergence(d)) => {
            assert_eq!(d.line, 2);
            assert_eq!(d.got, "-1 EACCES");
            assert_eq!(d.hint, Some(Hint::SharedWritableFile));
            assert_eq!(Hint::SharedWritableFile.text(), SHARED_WRITE_HINT);
            assert!(d.to_string().contains("opened O_RDWR"), "{d}");
        }
        other => panic!("{other:?}"),
    }
}

/// Every fixture's events are of kinds the engine knows (a guard that the
/// fixtures above cover the whole directory).
/// The traces in tests/fixtures/traces, by name, sorted.
fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(traces())
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            if p.extension()? != "strace" {
                return None;
            }
            Some(p.file_stem()?.to_string_lossy().into_owned())
        })
        .collect();
    names.sort();
    names
}

#[test]
fn every_fixture_trace_is_covered() {
    let names = fixture_names();
    let mut covered: Vec<String> = ["mmap_basic", "mremap_brk", "filemap"]
        .iter()
        .flat_map(|p| {
            ["nopie", "pie", "static", "static-pie"]
                .iter()
                .map(move |v| format!("{p}-{v}"))
        })
        .chain(["true".to_string(), "ls-root".to_string()])
        .collect();
    covered.sort();
    assert_eq!(names, covered);
    // Each has an exit_group line.
    for n in &names {
        let lines = parse_file(&traces().join(format!("{n}.strace"))).unwrap();
        assert!(lines
            .iter()
            .any(|l| matches!(&l.event, Event::Syscall(s) if s.name == "exit_group")));
    }
}

/// execve loads the host file the path map names but keeps the name the
/// program passed: the `AT_EXECFN` string at the top of the stack is the
/// relative `./tests/fixtures/bin/...` of the trace (fs/exec.c copies
/// `bprm->filename` first, just below `STACK_TOP - sizeof(void *)`).
#[test]
fn execve_keeps_the_relative_name_as_at_execfn() {
    let t = "9 execve(\"./tests/fixtures/bin/filemap-static\", [\"x\"], [\"HOME=/root\"]) = 0\n";
    let lines = parse_str("e.strace", t).unwrap();
    let mut target = target();
    let r = replay(&lines, &mut target, &opts("e", Vec::new())).unwrap();
    assert_eq!(r.checked, 1);
    let m = target.machine_pid(9).expect("live");
    let name = b"./tests/fixtures/bin/filemap-static\0";
    let top = machine::exec::STACK_TOP - 8;
    let at = top - name.len() as u64;
    let bytes = target.machine.read_user(m, at, name.len()).expect("stack");
    assert_eq!(bytes, name);
}

#[test]
fn touch_arguments_parse() {
    let t = workload::replay::parse_touch("25:6435:0x40000000:32768").unwrap();
    assert_eq!(
        t,
        Touch {
            after_line: 25,
            pid: 6435,
            addr: VirtAddr(0x4000_0000),
            len: 0x8000
        }
    );
    assert!(workload::replay::parse_touch("25:6435:0x40000000").is_err());
    assert!(workload::replay::parse_touch("a:1:2:3").is_err());
}
