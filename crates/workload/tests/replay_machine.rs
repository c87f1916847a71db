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

mod replay_common;

use std::io::Write;
use std::path::PathBuf;

use machine::MachineConfig;
use mm::VirtAddr;
use replay_common::{host_ok, mask_ids};
use workload::replay::{
    normalize_maps, renumber_shmem_inodes, replay, stdout_checkpoints, Access, Capture, Hint,
    MachineTarget, ReplayError, ReplayOptions, ReplayReport, Touch, SHARED_WRITE_HINT,
};
use workload::strace::{parse_file, parse_str, Event, Line};

/// The checkout the fixtures were recorded in.
const RECORD: &str = "/work/wt-record";

fn root() -> PathBuf {
    replay_common::root()
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
        warm_cache: false,
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
            after_line: Some(after_line),
            pid: Some(pid),
            addr: VirtAddr(addr),
            len,
            access: Access::Write,
        }
    })
    .collect()
}

/// None (and a visible SKIP line) if a host file the trace `name` needs
/// differs from the recording host's; else which files were renumbered
/// (same bytes, other inode: their maps numbers are masked).
fn host_check(name: &str) -> Option<Vec<String>> {
    let lines = parse_file(&traces().join(format!("{name}.strace"))).expect("parse");
    host_ok(name, &lines, &[RECORD]).map(|c| c.renumbered)
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
fn check_fixture(name: &str) -> Option<ReplayReport> {
    let renumbered = host_check(name)?;
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
        return Some(report);
    };
    assert_eq!(
        comparable(&snap.text, &renumbered),
        comparable(&last.maps, &renumbered),
        "{name}: maps at exit_group differ from checkpoint {} ({})",
        last.number,
        last.label
    );
    Some(report)
}

/// Maps text as it is compared: fixture paths mapped and masked, shared
/// anonymous inodes renumbered, renumbered host files masked.
fn comparable(maps: &str, renumbered: &[String]) -> String {
    let map = path_map();
    mask_ids(
        &renumber_shmem_inodes(&normalize_maps(maps, &map)),
        renumbered,
        false,
    )
}

/// mmap_basic forks two children: the first munmaps and mprotects, prints
/// its maps (checkpoint "child after munmap/mprotect") and exits 3; the
/// second is killed by SIGSEGV. Both are replayed (fork on the machine),
/// the first child's maps at its exit_group are its checkpoint, and the
/// parent's wait4 calls reap them with the recorded statuses.
#[test]
fn mmap_basic_all_variants() {
    for v in ["pie", "nopie", "static", "static-pie"] {
        let name = format!("mmap_basic-{v}");
        let Some(report) = check_fixture(&name) else {
            continue;
        };
        assert_eq!(report.processes.len(), 3, "{name}");
        assert!(report.skipped_lines().is_empty(), "{name}");
        let child = &report.processes[1];
        let snap = child.maps.as_ref().expect("child maps");
        assert_eq!(snap.at, Capture::ExitGroup, "{name}");
        let stdout = std::fs::read_to_string(traces().join(format!("{name}.stdout"))).unwrap();
        let cp = stdout_checkpoints(&stdout)
            .into_iter()
            .find(|c| c.label == "child after munmap/mprotect")
            .expect("the child's checkpoint");
        let renumbered = host_check(&name).unwrap_or_default();
        assert_eq!(
            comparable(&snap.text, &renumbered),
            comparable(&cp.maps, &renumbered),
            "{name}: the fork child's maps at exit_group"
        );
        let killed = &report.processes[2];
        assert_eq!(
            killed.maps.as_ref().map(|m| m.at.clone()),
            Some(Capture::Killed("SIGSEGV".into())),
            "{name}"
        );
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
    if host_check(name).is_none() {
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
#[test]
fn every_fixture_trace_is_covered() {
    let names = trace_names();
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
    use workload::replay::parse_touch;
    let t = parse_touch("25:6435:0x40000000:32768").unwrap();
    assert_eq!(
        t,
        Touch {
            after_line: Some(25),
            pid: Some(6435),
            addr: VirtAddr(0x4000_0000),
            len: 0x8000,
            access: Access::Write,
        }
    );
    assert_eq!(parse_touch("25:6435:0x40000000,32768:w").unwrap(), t);
    assert_eq!(
        parse_touch("0x7fffffefe000").unwrap(),
        Touch {
            after_line: None,
            pid: None,
            addr: VirtAddr(0x7fff_ffef_e000),
            len: 1,
            access: Access::Read,
        }
    );
    let t = parse_touch("0x1000,8192:x").unwrap();
    assert_eq!((t.len, t.access), (8192, Access::Exec));
    assert_eq!(parse_touch("7:8:4096:w").unwrap().access, Access::Write);
    for bad in ["25:6435", "a:1:2:3", "0x10,", "1:2:3:4:5", "", "0x10:q"] {
        assert!(parse_touch(bad).is_err(), "{bad}");
    }
}

/// A vfork child uses its parent's address space until its execve: its
/// mmap and its touch land in the parent's maps and RSS, its execve gives
/// it a space of its own, and the parent's wait4 reaps it.
#[test]
fn a_vfork_child_shares_its_parents_address_space_until_execve() {
    let with_child_mmap = |mmap: bool| {
        let child_mmap = if mmap {
            "10 mmap(0x50000000, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x50000000\n"
        } else {
            ""
        };
        format!(
            "9 execve(\"./tests/fixtures/bin/filemap-static\", [\"x\"], [\"HOME=/root\"]) = 0\n\
             9 vfork() = 10\n\
             {child_mmap}\
             10 execve(\"/bin/true\", [\"true\"], []) = 0\n\
             10 exit_group(0) = ?\n\
             10 +++ exited with 0 +++\n\
             9 wait4(-1, [{{WIFEXITED(s) && WEXITSTATUS(s) == 0}}], 0, NULL) = 10\n\
             9 exit_group(0) = ?\n"
        )
    };
    let t = with_child_mmap(true);
    let lines = parse_str("v.strace", &t).unwrap();
    let mut o = opts("v", Vec::new());
    o.touches = vec![Touch {
        after_line: Some(3),
        pid: Some(10),
        addr: VirtAddr(0x5000_0000),
        len: 8192,
        access: Access::Write,
    }];
    let mut target = target();
    let r = replay(&lines, &mut target, &o).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.checked, r.calls, "execve, mmap, execve, wait4");
    assert_eq!(r.calls, 4);
    let parent = r.maps_of(9).unwrap();
    assert!(parent.contains("50000000-50002000 rw-p"), "{parent}");
    let child = r.maps_of(10).unwrap();
    assert!(child.contains("/usr/bin/true"), "{child}");
    assert!(!child.contains("50000000-"), "{child}");
    let o2 = r.touches[0].outcome.clone().unwrap();
    assert_eq!((o2.minor, o2.major, o2.signal), (2, 0, None));
    target.machine.check().unwrap();
    assert!(
        target.machine.processes().is_empty(),
        "every process reaped"
    );

    // Without the child's mmap, the parent has no such VMA.
    let lines = parse_str("v.strace", &with_child_mmap(false)).unwrap();
    let mut target2 = self::target();
    let r = replay(&lines, &mut target2, &opts("v", Vec::new())).unwrap();
    assert!(!r.maps_of(9).unwrap().contains("50000000-"));
}

/// The recorded traces, by name, sorted.
fn trace_names() -> Vec<String> {
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

/// How many recorded traces this host can compare (the others need a host
/// file with other bytes): printed straight to stderr for `.ci/run`. It
/// never fails on differing files; it fails if the guard misjudges what a
/// trace needs (`true` and the static traces need no ls; static ones need
/// no host file at all).
#[test]
fn host_file_guard_summary() {
    let names = trace_names();
    let mut skipped = 0;
    for n in &names {
        let lines = parse_file(&traces().join(format!("{n}.strace"))).unwrap();
        let files = replay_common::trace_host_files(&lines, &[RECORD]);
        if n.ends_with("-static") || n.ends_with("-static-pie") {
            assert!(files.is_empty(), "{n} is static but needs {files:?}");
        }
        if n == "true" || n.starts_with("mmap_basic") {
            assert!(!files.iter().any(|f| f.ends_with("/ls")), "{n}: {files:?}");
        }
        if !replay_common::check_host(&files).differ.is_empty() {
            skipped += 1;
        }
    }
    let _ = writeln!(
        std::io::stderr(),
        "host-file guard: {skipped} of {} traces skipped (a host file they need has other bytes here)",
        names.len()
    );
}
