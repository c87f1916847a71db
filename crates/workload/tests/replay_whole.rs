//! Whole multi-process programs replayed from their first instruction on a
//! real machine (x86-64, 4 GiB), children included, against what the real
//! kernel recorded (tests/fixtures/whole, see its README section and
//! tools/record/whole.sh):
//!
//! - every trace replays with `--check` through every exit: each execve,
//!   memory, file and process call (clone/fork/vfork/clone3, exit_group,
//!   wait4 with the child's status) returns what the trace has, and
//!   `mm::debug` finds nothing wrong after any call;
//! - each process's maps at its exit equal the real kernel's at that
//!   moment (`NAME.exit`, taken at PTRACE_EVENT_EXIT), byte for byte after
//!   the fixture paths are mapped and the tmpfs/memfd numbers masked;
//! - the programs announce every access they make to memory they mapped
//!   (`tools/record/progs/touch.h`): the replay makes each one through the
//!   MMU and the fault handler, and its minor and major faults equal the
//!   ones getrusage counted on the real kernel, access by access (demand
//!   zero, copy-on-write after fork, reuse after the child exits, shmem
//!   faults with fault-around, MREMAP_DONTUNMAP, MAP_GROWSDOWN and main
//!   stack growth, a SIGSEGV on PROT_NONE memory);
//! - the smaps of every VMA such an access lands in (the stack excepted)
//!   equal the real kernel's at exit: Rss, Pss, Shared/Private
//!   Clean/Dirty, Referenced, Anonymous and the rest.
//!
//! What differs from the real kernel, and why, is in
//! tests/fixtures/README.md ("Whole programs"): the whole-process fault
//! counts and the RSS of VMAs the programs access without announcing it
//! (code, libc's data, the stack), which strace cannot show.

mod replay_common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use machine::MachineConfig;
use mm::VirtAddr;
use replay_common::{
    check_host_against, host_files, host_ok, mask_ids, root, sha256_hex, trace_host_files,
};
use workload::replay::{
    normalize_maps, renumber_shmem_inodes, replay, Access, Capture, MachineTarget, ReplayOptions,
    ReplayReport, Touch,
};
use workload::strace::{parse_file, Arg, Event, Line};

/// The checkout the whole-program fixtures were recorded in.
const RECORD: &str = "/work/wt-replay";

/// Files the programs create on tmpfs: device and inode are the machine's.
const TMPFS_FILES: &[&str] = &["/dev/shm/lmm-sharedfile", "/memfd:lmm"];

fn dir() -> PathBuf {
    root().join("tests/fixtures/whole")
}

fn path_map() -> Vec<(String, String)> {
    vec![(RECORD.into(), root().display().to_string())]
}

/// What a program announced it did: where and what the real kernel counted.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Announced {
    touch: Touch,
    /// (minflt, majflt) on the real kernel, or None for an access that
    /// kills the process.
    faults: Option<(u64, u64)>,
}

fn number(s: &str) -> u64 {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).expect("hex"),
        None => s.parse().expect("number"),
    }
}

/// The accesses announced in `write(1, "touch ADDR LEN r|w: ...")` lines,
/// each made right after its line by its pid.
fn announced(lines: &[Line]) -> Vec<Announced> {
    let mut out = Vec::new();
    for l in lines {
        let Event::Syscall(s) = &l.event else {
            continue;
        };
        if s.name != "write" || s.args.first().and_then(Arg::as_i64) != Some(1) {
            continue;
        }
        let Some(text) = s.args.get(1).and_then(Arg::as_str) else {
            continue;
        };
        let Some(rest) = text.strip_prefix("touch ") else {
            continue;
        };
        let (what, result) = rest.trim_end().split_once(": ").expect("touch line");
        let f: Vec<&str> = what.split(' ').collect();
        let access = if f[2] == "w" {
            Access::Write
        } else {
            Access::Read
        };
        let faults = if result == "SIGSEGV" {
            None
        } else {
            let r: Vec<&str> = result.split(' ').collect();
            Some((number(r[1]), number(r[3])))
        };
        out.push(Announced {
            touch: Touch {
                after_line: Some(l.line_no),
                pid: l.pid,
                addr: VirtAddr(number(f[0])),
                len: number(f[1]),
                access,
            },
            faults,
        });
    }
    out
}

/// One process of a `NAME.exit` recording.
#[derive(Debug, Default)]
struct ExitRecord {
    parent: i64,
    status: String,
    maps: String,
    smaps: String,
    stat: String,
}

/// The `.exit` recording of a fixture (`sh-pipe-stderr` is `sh-pipe`
/// traced to stderr: same program, same recording).
fn exit_records(name: &str) -> Vec<ExitRecord> {
    let base = name.trim_end_matches("-stderr");
    let text = std::fs::read_to_string(dir().join(format!("{base}.exit"))).expect("exit file");
    let mut out: Vec<ExitRecord> = Vec::new();
    let mut section = "";
    for line in text.split_inclusive('\n') {
        if let Some(h) = line.strip_prefix("=== process ") {
            let h = h.trim_end().trim_end_matches(" ===");
            let (_, rest) = h.split_once(": parent ").expect("header");
            let (parent, status) = rest.split_once(", exit ").expect("header");
            out.push(ExitRecord {
                parent: parent.parse().expect("parent"),
                status: status.to_string(),
                ..Default::default()
            });
            continue;
        }
        if let Some(s) = line.strip_prefix("--- ") {
            section = match s.trim_end() {
                "maps ---" => "maps",
                "smaps ---" => "smaps",
                "stat ---" => "stat",
                other => panic!("{name}.exit: section {other}"),
            };
            continue;
        }
        let r = out.last_mut().expect("a process first");
        match section {
            "maps" => r.maps.push_str(line),
            "smaps" => r.smaps.push_str(line),
            _ => r.stat.push_str(line),
        }
    }
    out
}

/// smaps split into VMAs: the header line and its field lines.
fn smaps_entries(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines() {
        let first = line.split(' ').next().unwrap_or("");
        if first.contains('-') && first.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            out.push((line.to_string(), Vec::new()));
        } else if let Some(e) = out.last_mut() {
            e.1.push(line.to_string());
        }
    }
    out
}

fn vma_range(header: &str) -> (u64, u64) {
    let r = header.split(' ').next().unwrap();
    let (a, b) = r.split_once('-').unwrap();
    (
        u64::from_str_radix(a, 16).unwrap(),
        u64::from_str_radix(b, 16).unwrap(),
    )
}

/// The smaps fields compared: all of them (lmm prints `ProtectionKey` as a
/// kernel does on a CPU with protection keys, and no `sd`, since the
/// recording kernel is not built with soft-dirty).
fn smaps_fields(fields: &[String]) -> Vec<String> {
    fields.to_vec()
}

/// minflt and majflt of a /proc/PID/stat line (fields 10 and 12).
fn stat_faults(stat: &str) -> (u64, u64) {
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    (f[7].parse().unwrap(), f[9].parse().unwrap())
}

/// Maps text as compared: fixture paths mapped and masked, shared anonymous
/// inodes renumbered, tmpfs files (and renumbered host files) masked.
fn comparable(maps: &str, renumbered: &[String]) -> String {
    let mut masked: Vec<String> = TMPFS_FILES.iter().map(|s| s.to_string()).collect();
    masked.extend(renumbered.iter().cloned());
    mask_ids(
        &renumber_shmem_inodes(&normalize_maps(maps, &path_map())),
        &masked,
        false,
    )
}

struct Replayed {
    report: ReplayReport,
    announced: Vec<Announced>,
    /// Report indexes in creation order (the `.exit` order).
    created: Vec<usize>,
    renumbered: Vec<String>,
}

fn replay_whole(name: &str) -> Option<Replayed> {
    replay_cache(name, true)
}

/// [`replay_whole`] with a warm page cache (as on the recording host) or a
/// cold one (as after boot).
fn replay_cache(name: &str, warm_cache: bool) -> Option<Replayed> {
    let path = dir().join(format!("{name}.strace"));
    let lines = parse_file(&path).expect("parse");
    let renumbered = host_ok(name, &lines, &[RECORD])?.renumbered;
    let announced = announced(&lines);
    let opts = ReplayOptions {
        file: format!("{name}.strace"),
        check: true,
        env: Vec::new(),
        path_map: path_map(),
        cwd: Some(root()),
        touches: announced.iter().map(|a| a.touch.clone()).collect(),
        warm_cache,
    };
    let mut target = MachineTarget::boot(MachineConfig {
        ram: 4 << 30,
        ..MachineConfig::default()
    })
    .expect("boot");
    target.check_each_call = true;
    let report = match replay(&lines, &mut target, &opts) {
        Ok(r) => r,
        Err(e) => panic!("{name}: {e}"),
    };
    if let Some(f) = &target.check_failure {
        panic!("{name}: mm::debug: {f}");
    }
    target
        .machine
        .check()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut created: Vec<usize> = (0..report.processes.len()).collect();
    created.sort_by_key(|&i| report.processes[i].created_at.unwrap_or(0));
    Some(Replayed {
        report,
        announced,
        created,
        renumbered,
    })
}

const FIXTURES: &[&str] = &[
    "procs-pie",
    "procs-static",
    "sharedfile-pie",
    "sharedfile-static",
    "sh-pipe",
    "sh-pipe-stderr",
];

/// Every process is replayed with no divergence and ends as on the real
/// kernel, and its maps at exit are the real kernel's.
#[test]
fn every_process_runs_to_its_exit_with_the_real_maps() {
    for name in FIXTURES {
        let Some(r) = replay_whole(name) else {
            continue;
        };
        let rep = &r.report;
        assert!(rep.mismatches.is_empty(), "{name}");
        assert!(rep.skipped_lines().is_empty(), "{name}");
        assert_eq!(rep.checked, rep.calls, "{name}: every call is checked");
        let recs = exit_records(name);
        assert_eq!(recs.len(), rep.processes.len(), "{name}: processes");
        for (k, &i) in r.created.iter().enumerate() {
            let p = &rep.processes[i];
            let snap = p.maps.as_ref().expect("maps");
            let rec = &recs[k];
            let want_at = if rec.status.starts_with("killed") {
                matches!(snap.at, Capture::Killed(_))
            } else {
                snap.at == Capture::ExitGroup
            };
            assert!(
                want_at,
                "{name}: process {k} (pid {}): {:?}",
                p.pid, snap.at
            );
            assert_eq!(
                comparable(&snap.text, &r.renumbered),
                comparable(&rec.maps, &r.renumbered),
                "{name}: process {k} (pid {}): maps at exit",
                p.pid
            );
            let parent = p.created_at.map(|_| match p.spawn {
                workload::replay::Spawn::Fork { parent }
                | workload::replay::Spawn::SharedVm { parent } => parent,
                _ => 0,
            });
            let want_parent =
                (rec.parent >= 0).then(|| rep.processes[r.created[rec.parent as usize]].pid);
            assert_eq!(parent, want_parent, "{name}: process {k}: its parent");
        }
    }
}

/// Each announced access takes, on lmm, exactly the faults getrusage
/// counted for it on the real kernel (or raises SIGSEGV where it killed).
#[test]
fn announced_accesses_fault_as_on_the_real_kernel() {
    let mut n = 0;
    for name in FIXTURES {
        let Some(r) = replay_whole(name) else {
            continue;
        };
        assert_eq!(r.report.touches.len(), r.announced.len(), "{name}");
        for (t, a) in r.report.touches.iter().zip(&r.announced) {
            let o = t.outcome.as_ref().expect("made");
            let what = format!(
                "{name}:{}: pid {} {:?} {:#x}+{:#x}",
                t.line, t.pid, a.touch.access, a.touch.addr.0, a.touch.len
            );
            match a.faults {
                Some(f) => {
                    assert_eq!(o.signal, None, "{what}");
                    assert_eq!((o.minor, o.major), f, "{what}: (minor, major)");
                }
                None => assert!(
                    o.signal
                        .as_deref()
                        .is_some_and(|s| s.starts_with("SIGSEGV")),
                    "{what}: {o:?}"
                ),
            }
            n += 1;
        }
    }
    assert!(n >= 20 || n == 0, "{n} accesses");
}

/// The smaps of every VMA an announced access lands in (the stack
/// excepted: the program's frames use it unannounced) are the real
/// kernel's at exit.
#[test]
fn smaps_of_the_touched_vmas_are_the_real_kernels() {
    for name in FIXTURES {
        let Some(r) = replay_whole(name) else {
            continue;
        };
        let recs = exit_records(name);
        for (k, &i) in r.created.iter().enumerate() {
            let p = &r.report.processes[i];
            let ours = smaps_entries(
                p.maps
                    .as_ref()
                    .and_then(|m| m.smaps.as_deref())
                    .expect("smaps"),
            );
            let real = smaps_entries(&recs[k].smaps);
            let touched: Vec<u64> = r
                .report
                .touches
                .iter()
                .filter(|t| t.pid == p.pid || !r.report.processes.iter().any(|q| q.pid == t.pid))
                .map(|t| t.touch.addr.0)
                .collect();
            for (h, fields) in &real {
                let (lo, hi) = vma_range(h);
                if h.ends_with("[stack]") || !touched.iter().any(|&a| lo <= a && a < hi) {
                    continue;
                }
                let mine = ours
                    .iter()
                    .find(|(oh, _)| vma_range(oh) == (lo, hi))
                    .unwrap_or_else(|| panic!("{name}: process {k}: no VMA {h}"));
                assert_eq!(
                    comparable(&format!("{}\n", mine.0), &r.renumbered),
                    comparable(&format!("{h}\n"), &r.renumbered),
                    "{name}: process {k}"
                );
                assert_eq!(
                    smaps_fields(&mine.1),
                    smaps_fields(fields),
                    "{name}: process {k}: smaps of {h}"
                );
            }
        }
    }
}

/// The whole-process numbers, lmm against the real kernel, printed for the
/// record (tests/fixtures/README.md gives them and why they differ):
/// faults and RSS at exit. With a warm page cache, as the recording host
/// had, lmm takes no major fault, as the real kernel took none; with a cold
/// one, the first fault on each file page is major. lmm's faults are
/// exec's own plus the announced accesses', never more than the real
/// kernel's, whose programs also fetch code, relocate, initialise libc and
/// use their stack without announcing it.
#[test]
fn whole_process_numbers_for_the_record() {
    let rss = |s: &str| -> u64 {
        s.lines()
            .filter_map(|l| l.strip_prefix("Rss:"))
            .map(|v| v.trim().trim_end_matches(" kB").parse::<u64>().unwrap())
            .sum()
    };
    for name in FIXTURES {
        let (Some(warm), Some(cold)) = (replay_cache(name, true), replay_cache(name, false)) else {
            continue;
        };
        let recs = exit_records(name);
        let mut cold_majors = 0;
        for (k, &i) in warm.created.iter().enumerate() {
            let p = &warm.report.processes[i];
            let snap = p.maps.as_ref().unwrap();
            let ours = stat_faults(snap.stat.as_deref().unwrap());
            let cold_snap = cold.report.processes[i].maps.as_ref().unwrap();
            let cold_faults = stat_faults(cold_snap.stat.as_deref().unwrap());
            let real = stat_faults(&recs[k].stat);
            let announced: u64 = warm
                .report
                .touches
                .iter()
                .filter(|t| t.pid == p.pid)
                .filter_map(|t| t.outcome.as_ref())
                .map(|o| o.minor + o.major)
                .sum();
            let (mine_rss, real_rss) = (rss(snap.smaps.as_deref().unwrap()), rss(&recs[k].smaps));
            println!(
                "{name} process {k}: faults real {}+{}, lmm warm {}+{} ({announced} announced), \
                 cold {}+{}; Rss real {real_rss} kB, lmm {mine_rss} kB",
                real.0, real.1, ours.0, ours.1, cold_faults.0, cold_faults.1
            );
            assert_eq!(
                ours.1, real.1,
                "{name}: process {k}: major faults, warm cache"
            );
            assert_eq!(
                ours.0 + ours.1,
                cold_faults.0 + cold_faults.1,
                "{name}: process {k}: the cache changes only which faults are major"
            );
            assert!(ours.0 + ours.1 <= real.0 + real.1, "{name}: process {k}");
            assert!(mine_rss <= real_rss, "{name}: process {k}");
            cold_majors += cold_faults.1;
        }
        assert!(cold_majors > 0, "{name}: a cold cache reads the programs");
    }
}

/// The guard: SHA-256 is right (FIPS 180-4 test vectors), every host file
/// a fixture trace needs is listed, and a listed file whose bytes differ
/// makes its trace skip while one that only moved (another inode) does
/// not.
#[test]
fn the_host_file_guard() {
    assert_eq!(
        sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        sha256_hex(b""),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        sha256_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
    );
    let listed = host_files();
    for name in FIXTURES {
        let lines = parse_file(&dir().join(format!("{name}.strace"))).unwrap();
        let files = trace_host_files(&lines, &[RECORD]);
        // A static program that runs nothing else needs none.
        assert_eq!(
            files.is_empty(),
            *name == "sharedfile-static",
            "{name}: {files:?}"
        );
        for f in &files {
            assert!(
                listed.contains_key(f),
                "{name}: {f} is not in host-files.txt"
            );
        }
    }
    let lines = parse_file(&dir().join("sh-pipe.strace")).unwrap();
    let files = trace_host_files(&lines, &[RECORD]);
    assert!(files.iter().any(|f| f.ends_with("/dash")), "{files:?}");
    assert!(
        files.iter().any(|f| f.ends_with("/ld-linux-x86-64.so.2")),
        "{files:?}"
    );
    let mut wrong: BTreeMap<String, replay_common::HostFile> = listed.clone();
    let libc = files.iter().find(|f| f.ends_with("/libc.so.6")).unwrap();
    wrong.get_mut(libc).unwrap().sha256 = "0".repeat(64);
    let dash = files.iter().find(|f| f.ends_with("/dash")).unwrap();
    wrong.get_mut(dash).unwrap().ino += 1;
    let c = check_host_against(&wrong, &files);
    if c.differ.is_empty() && !check_host_against(&listed, &files).differ.is_empty() {
        return; // this host's files differ anyway
    }
    assert_eq!(c.differ, [format!("{libc} has other bytes")]);
    assert!(c.renumbered.contains(dash), "{c:?}");
}
