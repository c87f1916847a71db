//! strace replay against a fake target: every recorded trace issues exactly
//! its memory calls, in order, with its arguments; `--check` passes when the
//! target returns the recorded results and names the one line that differs;
//! fork children, unfinished/resumed pairs, bad input and the CLI output.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use mm::errno::Errno;
use mm::VirtAddr;
use workload::replay::{
    format_call, normalize_maps, replay, run_cli, stdout_checkpoints, Access, Capture, CliArgs,
    ExecRequest, ExitStatus, FdCall, ReplayError, ReplayOptions, ReplayReport, ReplayTarget, Spawn,
    TargetError, Touch, TouchOutcome, UnavailableTarget, MAPS_NAME_COLUMN, MEMORY_CALLS,
    UNPREFIXED_PID,
};
use workload::strace::{parse_file, parse_str, Event, Line, Ret};

// ---------------------------------------------------------------------------
// The fake.

/// One call the engine made, with its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Call {
    Spawn(u32, Spawn),
    Execve(u32, ExecRequest),
    Mmap(u32, u64, u64, u64, u64, Option<String>, u64),
    Munmap(u32, u64, u64),
    Mprotect(u32, u64, u64, u64),
    Mremap(u32, u64, u64, u64, u64, u64),
    Brk(u32, u64),
    Madvise(u32, u64, u64, u64),
    Msync(u32, u64, u64, u64),
    Mincore(u32, u64, u64),
    Exit(u32),
    // With `files`: the file calls, as the target saw them.
    Open(u32, String, u64),
    Memfd(u32, String),
    Fd(u32, String),
    Unlink(u32, String),
    MmapFd(u32, u64, u64, i32),
    // With `waits`.
    Wait(u32, i64, bool),
    Touch(u32, u64, u64, Access),
}

impl Call {
    fn is_process(&self) -> bool {
        matches!(self, Call::Spawn(..) | Call::Exit(..))
    }
}

/// Records every call; answers execve and memory calls from a queue (then
/// `Ok(0)`); creates children only if `fork` is set. With `files`, file
/// calls are made (descriptors 100, 101, ...; paths under /proc are not
/// modelled); with `waits`, wait4 reaps what exit_with ended.
#[derive(Default)]
struct FakeTarget {
    calls: Vec<Call>,
    answers: VecDeque<Result<u64, TargetError>>,
    fork: bool,
    /// Fork fails with this errno (as on a machine out of memory).
    fork_errno: Option<Errno>,
    files: bool,
    waits: bool,
    next_fd: i32,
    exited: Vec<(u32, ExitStatus)>,
}

impl FakeTarget {
    fn answer(&mut self, c: Call) -> Result<u64, TargetError> {
        self.calls.push(c);
        self.answers.pop_front().unwrap_or(Ok(0))
    }
    fn memory_calls(&self) -> Vec<Call> {
        self.calls
            .iter()
            .filter(|c| !c.is_process())
            .cloned()
            .collect()
    }
}

impl ReplayTarget for FakeTarget {
    fn spawn(&mut self, pid: u32, how: Spawn) -> Result<(), TargetError> {
        self.calls.push(Call::Spawn(pid, how));
        if let (Some(e), false) = (self.fork_errno, how == Spawn::Initial) {
            return Err(e.into());
        }
        if how == Spawn::Initial || self.fork {
            Ok(())
        } else {
            Err(TargetError::Unsupported("fork is not implemented".into()))
        }
    }
    fn execve(&mut self, pid: u32, exec: &ExecRequest) -> Result<(), TargetError> {
        self.answer(Call::Execve(pid, exec.clone())).map(|_| ())
    }
    fn mmap(
        &mut self,
        pid: u32,
        addr: VirtAddr,
        len: u64,
        prot: u64,
        flags: u64,
        file: Option<&str>,
        offset: u64,
    ) -> Result<VirtAddr, TargetError> {
        let c = Call::Mmap(
            pid,
            addr.0,
            len,
            prot,
            flags,
            file.map(String::from),
            offset,
        );
        self.answer(c).map(VirtAddr)
    }
    fn munmap(&mut self, pid: u32, addr: VirtAddr, len: u64) -> Result<(), TargetError> {
        self.answer(Call::Munmap(pid, addr.0, len)).map(|_| ())
    }
    fn mprotect(
        &mut self,
        pid: u32,
        addr: VirtAddr,
        len: u64,
        prot: u64,
    ) -> Result<(), TargetError> {
        self.answer(Call::Mprotect(pid, addr.0, len, prot))
            .map(|_| ())
    }
    fn mremap(
        &mut self,
        pid: u32,
        old: VirtAddr,
        old_len: u64,
        new_len: u64,
        flags: u64,
        new_addr: VirtAddr,
    ) -> Result<VirtAddr, TargetError> {
        let c = Call::Mremap(pid, old.0, old_len, new_len, flags, new_addr.0);
        self.answer(c).map(VirtAddr)
    }
    fn brk(&mut self, pid: u32, addr: VirtAddr) -> Result<VirtAddr, TargetError> {
        self.answer(Call::Brk(pid, addr.0)).map(VirtAddr)
    }
    fn madvise(&mut self, pid: u32, addr: VirtAddr, len: u64, adv: u64) -> Result<(), TargetError> {
        self.answer(Call::Madvise(pid, addr.0, len, adv))
            .map(|_| ())
    }
    fn msync(&mut self, pid: u32, addr: VirtAddr, len: u64, flags: u64) -> Result<(), TargetError> {
        self.answer(Call::Msync(pid, addr.0, len, flags))
            .map(|_| ())
    }
    fn mincore(&mut self, pid: u32, addr: VirtAddr, len: u64) -> Result<Vec<u8>, TargetError> {
        self.answer(Call::Mincore(pid, addr.0, len))
            .map(|_| vec![0; len.div_ceil(4096) as usize])
    }
    fn exit(&mut self, pid: u32) {
        self.calls.push(Call::Exit(pid));
    }
    fn exit_with(&mut self, pid: u32, status: &ExitStatus) {
        self.calls.push(Call::Exit(pid));
        self.exited.push((pid, status.clone()));
    }
    fn wait(
        &mut self,
        pid: u32,
        who: i64,
        nohang: bool,
    ) -> Result<Option<(u32, ExitStatus)>, TargetError> {
        if !self.waits {
            return Err(TargetError::Unsupported("no wait".into()));
        }
        self.calls.push(Call::Wait(pid, who, nohang));
        let i = self
            .exited
            .iter()
            .position(|(p, _)| who <= 0 || i64::from(*p) == who);
        match i {
            Some(i) => Ok(Some(self.exited.remove(i))),
            None => Err(Errno::ECHILD.into()),
        }
    }
    fn touch(
        &mut self,
        pid: u32,
        addr: VirtAddr,
        len: u64,
        access: Access,
    ) -> Result<TouchOutcome, TargetError> {
        self.calls.push(Call::Touch(pid, addr.0, len, access));
        Ok(TouchOutcome {
            minor: len.div_ceil(4096),
            major: 0,
            signal: None,
        })
    }
    fn maps(&mut self, pid: u32) -> String {
        format!(
            "00400000-00401000 r--p 00000000 00:00 0 \npid {pid} after {} calls\n",
            self.calls.len()
        )
    }
    fn proc_file(&mut self, pid: u32, name: &str) -> Option<String> {
        Some(format!("{name} of {pid}\n"))
    }
    fn open(&mut self, pid: u32, path: &str, flags: u64) -> Result<Option<i32>, TargetError> {
        if !self.files {
            return Err(TargetError::Unsupported("no files".into()));
        }
        self.calls.push(Call::Open(pid, path.into(), flags));
        if path.starts_with("/proc/") {
            return Ok(None);
        }
        if path.ends_with("/missing") {
            return Err(Errno::ENOENT.into());
        }
        self.next_fd = self.next_fd.max(100) + 1;
        Ok(Some(self.next_fd - 1))
    }
    fn memfd_create(&mut self, pid: u32, name: &str) -> Result<i32, TargetError> {
        self.calls.push(Call::Memfd(pid, name.into()));
        self.next_fd = self.next_fd.max(100) + 1;
        Ok(self.next_fd - 1)
    }
    fn fd_call(&mut self, pid: u32, call: FdCall<'_>) -> Result<u64, TargetError> {
        self.calls.push(Call::Fd(pid, format!("{call:?}")));
        Ok(match call {
            FdCall::Dup(_) => {
                self.next_fd += 1;
                (self.next_fd - 1) as u64
            }
            FdCall::Write { data, .. } => data.len() as u64,
            FdCall::Read { len, .. } => len,
            _ => 0,
        })
    }
    fn unlink(&mut self, pid: u32, path: &str) -> Result<(), TargetError> {
        self.calls.push(Call::Unlink(pid, path.into()));
        Ok(())
    }
    fn mmap_fd(
        &mut self,
        pid: u32,
        addr: VirtAddr,
        len: u64,
        _prot: u64,
        _flags: u64,
        fd: i32,
        _offset: u64,
    ) -> Result<VirtAddr, TargetError> {
        self.answer(Call::MmapFd(pid, addr.0, len, fd))
            .map(VirtAddr)
    }
}

// ---------------------------------------------------------------------------
// What the trace says, computed independently of the engine.

const RECORD: &str = "/work/wt-record";
const REPO: &str = "/repo";

fn traces() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/traces");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/fixtures/traces")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "strace"))
        .collect();
    v.sort();
    assert!(v.len() >= 14, "{v:?}");
    v
}

fn trace(name: &str) -> PathBuf {
    traces()
        .into_iter()
        .find(|p| p.file_stem().is_some_and(|s| s == name))
        .unwrap()
}

fn opts(file: &Path, check: bool) -> ReplayOptions {
    ReplayOptions {
        file: file.display().to_string(),
        check,
        env: Vec::new(),
        path_map: vec![(RECORD.into(), REPO.into())],
        cwd: Some(PathBuf::from(RECORD)),
        touches: Vec::new(),
        warm_cache: false,
    }
}

fn remap(p: &str) -> String {
    match p.strip_prefix(RECORD) {
        Some(rest) => format!("{REPO}{rest}"),
        None => p.to_string(),
    }
}

fn pid(l: &Line) -> u32 {
    l.pid.unwrap_or(UNPREFIXED_PID)
}

/// The calls the engine must issue for `lines` (children's calls left out
/// if `fork` is false), each with the recorded result; and every line
/// of the children it must skip.
#[allow(clippy::type_complexity)]
fn expected(
    lines: &[Line],
    fork: bool,
) -> (Vec<(usize, Call, Result<u64, TargetError>)>, Vec<usize>) {
    let mut out = Vec::new();
    let mut children = Vec::new();
    let mut skipped = Vec::new();
    for l in lines {
        let p = pid(l);
        if !fork && children.contains(&p) {
            skipped.push(l.line_no);
            continue;
        }
        let Event::Syscall(s) = &l.event else {
            continue;
        };
        if s.name == "clone" {
            children.push(s.ret.value().unwrap() as u32);
        }
        let call = match s.name.as_str() {
            "execve" => {
                let e = s.as_execve().unwrap();
                let host = if e.path.starts_with('/') {
                    remap(&e.path)
                } else {
                    format!("{REPO}/{}", e.path.trim_start_matches("./"))
                };
                Call::Execve(
                    p,
                    ExecRequest {
                        filename: e.path,
                        host_path: host.into(),
                        argv: e.argv.unwrap(),
                        envp: e.envp.unwrap(),
                    },
                )
            }
            "mmap" => {
                let m = s.as_mmap().unwrap();
                let file = if m.flags & 0x20 != 0 {
                    None
                } else {
                    m.path.as_deref().map(remap)
                };
                Call::Mmap(p, m.addr.0, m.len, m.prot, m.flags, file, m.offset)
            }
            "munmap" => {
                let m = s.as_munmap().unwrap();
                Call::Munmap(p, m.addr.0, m.len)
            }
            "mprotect" => {
                let m = s.as_mprotect().unwrap();
                Call::Mprotect(p, m.addr.0, m.len, m.prot)
            }
            "mremap" => {
                let m = s.as_mremap().unwrap();
                let new = m.new_addr.map_or(0, |a| a.0);
                Call::Mremap(p, m.old_addr.0, m.old_len, m.new_len, m.flags, new)
            }
            "brk" => Call::Brk(p, s.as_brk().unwrap().addr.0),
            "madvise" => {
                let m = s.as_madvise().unwrap();
                Call::Madvise(p, m.addr.0, m.len, m.advice)
            }
            "msync" => {
                let m = s.as_msync().unwrap();
                Call::Msync(p, m.addr.0, m.len, m.flags)
            }
            "mincore" => Call::Mincore(p, s.args[0].as_u64().unwrap(), s.args[1].as_u64().unwrap()),
            _ => continue,
        };
        out.push((l.line_no, call, recorded(&s.ret)));
    }
    (out, skipped)
}

fn recorded(r: &Ret) -> Result<u64, TargetError> {
    match r {
        Ret::Value(v) => Ok(*v),
        Ret::Error { errno, .. } => Err(Errno::from_name(errno).expect(errno).into()),
        Ret::Unknown => Ok(0),
    }
}

/// The raw lines of `text` that are replayed calls, as `(line, pid, call
/// text without the result)`.
fn raw_calls(text: &str) -> Vec<(usize, u32, String)> {
    let mut v = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let (pid, rest) = raw.split_once("  ").unwrap();
        let name = rest.split('(').next().unwrap();
        if name == "execve" || MEMORY_CALLS.contains(&name) {
            let call = rest.rsplit_once(" = ").unwrap().0.trim_end();
            v.push((i + 1, pid.parse().unwrap(), call.to_string()));
        }
    }
    v
}

fn fake_answering(exp: &[(usize, Call, Result<u64, TargetError>)], fork: bool) -> FakeTarget {
    FakeTarget {
        answers: exp.iter().map(|(_, _, r)| r.clone()).collect(),
        fork,
        ..Default::default()
    }
}

fn run(path: &Path, fake: &mut FakeTarget, check: bool) -> Result<ReplayReport, ReplayError> {
    let lines = parse_file(path).unwrap();
    replay(&lines, fake, &opts(path, check))
}

// ---------------------------------------------------------------------------
// Every recorded trace.

/// With fork available: the engine issues every execve and memory call of
/// the trace, in order, with the trace's arguments (paths remapped), and
/// with the recorded results `--check` passes; each process's maps are
/// taken at its exit_group, or when it was killed.
#[test]
fn every_trace_replays_its_calls_in_order_and_checks_clean() {
    for path in traces() {
        let name = path.display().to_string();
        let lines = parse_file(&path).unwrap();
        let (exp, skipped) = expected(&lines, true);
        assert!(skipped.is_empty());
        let mut fake = fake_answering(&exp, true);
        let report =
            replay(&lines, &mut fake, &opts(&path, true)).unwrap_or_else(|e| panic!("{e}"));

        let want: Vec<Call> = exp.iter().map(|(_, c, _)| c.clone()).collect();
        let got = fake.memory_calls();
        assert_eq!(got.len(), want.len(), "{name}");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "{name}: call {i} (line {})", exp[i].0);
        }

        // The count, independently, from the raw text.
        let text = std::fs::read_to_string(&path).unwrap();
        let raw = raw_calls(&text);
        assert_eq!(raw.len(), got.len(), "{name}");
        assert_eq!(report.calls, got.len(), "{name}");
        let with_result = exp.iter().filter(|(l, _, _)| {
            lines.iter().any(|x| {
                x.line_no == *l && matches!(&x.event, Event::Syscall(s) if s.ret != Ret::Unknown)
            })
        });
        assert_eq!(report.checked, with_result.count(), "{name}");
        assert!(report.mismatches.is_empty(), "{name}");
        assert!(report.notes.is_empty(), "{name}: {:?}", report.notes);
        assert!(report.skipped_lines().is_empty(), "{name}");

        // Processes: the root is spawned first, children from their parent.
        let spawns: Vec<&Call> = fake
            .calls
            .iter()
            .filter(|c| matches!(c, Call::Spawn(..)))
            .collect();
        let root = pid(&lines[0]);
        assert_eq!(spawns[0], &Call::Spawn(root, Spawn::Initial), "{name}");
        for s in &spawns[1..] {
            assert!(
                matches!(s, Call::Spawn(_, Spawn::Fork { parent }) if *parent == root),
                "{name}: {s:?}"
            );
        }
        assert_eq!(report.processes.len(), spawns.len(), "{name}");

        // Maps: at exit_group (or kill), before the exit.
        for p in &report.processes {
            let m = p.maps.as_ref().expect("maps");
            let end = lines
                .iter()
                .find(|l| {
                    pid(l) == p.pid
                        && matches!(&l.event, Event::Syscall(s) if s.name == "exit_group")
                })
                .map(|l| (Capture::ExitGroup, l.line_no))
                .unwrap_or_else(|| {
                    let l = lines
                        .iter()
                        .find(|l| pid(l) == p.pid && matches!(l.event, Event::Killed { .. }))
                        .unwrap();
                    (Capture::Killed("SIGSEGV".into()), l.line_no)
                });
            assert_eq!((m.at.clone(), m.line), (end.0, Some(end.1)), "{name}");
            assert!(m.text.contains(&format!("pid {} after", p.pid)));
        }
        let exits = fake
            .calls
            .iter()
            .filter(|c| matches!(c, Call::Exit(_)))
            .count();
        assert_eq!(exits, report.processes.len(), "{name}");
    }
}

/// The call text in messages is the trace's own text, for every replayed
/// line of every trace.
#[test]
fn call_text_is_the_traces_own() {
    for path in traces() {
        let text = std::fs::read_to_string(&path).unwrap();
        let lines = parse_file(&path).unwrap();
        for (line, _, call) in raw_calls(&text) {
            let l = lines.iter().find(|l| l.line_no == line).unwrap();
            let Event::Syscall(s) = &l.event else {
                panic!("{line}")
            };
            assert_eq!(format_call(s), call, "{}:{line}", path.display());
        }
    }
}

/// Without fork, the children's lines are skipped and listed; the rest of
/// the trace still checks clean.
#[test]
fn fork_children_are_skipped_and_listed_when_the_target_cannot_fork() {
    let mut n = 0;
    for path in traces() {
        let lines = parse_file(&path).unwrap();
        let (exp, skipped) = expected(&lines, false);
        let mut fake = fake_answering(&exp, false);
        let report = run(&path, &mut fake, true).unwrap_or_else(|e| panic!("{e}"));
        let want: Vec<Call> = exp.iter().map(|(_, c, _)| c.clone()).collect();
        assert_eq!(fake.memory_calls(), want, "{}", path.display());
        assert_eq!(report.skipped_lines(), skipped, "{}", path.display());
        n += usize::from(!skipped.is_empty());
    }
    assert_eq!(n, 4, "the four mmap_basic traces fork");

    let path = trace("mmap_basic-pie");
    let mut fake = fake_answering(&expected(&parse_file(&path).unwrap(), false).0, false);
    let report = run(&path, &mut fake, true).unwrap();
    let kids: Vec<_> = report
        .processes
        .iter()
        .filter_map(|p| Some((p.pid, p.skipped.as_ref()?.ranges(), p.maps.is_none())))
        .collect();
    assert_eq!(
        kids,
        [
            (6412, "59-62".to_string(), true),
            (6413, "67-68".to_string(), true)
        ]
    );
    // The CLI says it plainly.
    let (out, _) = cli(&path, None, false).unwrap();
    assert!(
        out.contains("=== pid 6412 (created by pid 6411 at line 57): not replayed, lines 59-62 skipped: the target cannot create it: fork is not implemented ==="),
        "{out}"
    );
}

// ---------------------------------------------------------------------------
// --check divergences.

fn divergence(r: Result<ReplayReport, ReplayError>) -> workload::replay::Divergence {
    match r {
        Err(ReplayError::Divergence(d)) => d,
        other => panic!("expected a divergence, got {other:?}"),
    }
}

/// One wrong result: exactly that line is reported, with both values, and
/// nothing after it is replayed; without --check it is collected instead.
#[test]
fn one_wrong_value_is_reported_with_its_line_and_both_values() {
    let path = trace("mmap_basic-pie");
    let file = path.display().to_string();
    let lines = parse_file(&path).unwrap();
    let (exp, _) = expected(&lines, true);
    let text = std::fs::read_to_string(&path).unwrap();
    let raw = raw_calls(&text);

    // An address: the first anonymous 2 MiB mmap comes back elsewhere.
    let k = exp
        .iter()
        .position(|(_, c, _)| matches!(c, Call::Mmap(_, 0, 2097152, ..)))
        .unwrap();
    let mut fake = fake_answering(&exp, true);
    fake.answers[k] = Ok(0x7fff_f7bf_f000);
    let d = divergence(run(&path, &mut fake, true));
    assert_eq!(d.line, exp[k].0);
    assert_eq!(d.call, raw[k].2);
    assert_eq!(
        (d.expected.as_str(), d.got.as_str()),
        ("0x7ffff7a00000", "0x7ffff7bff000")
    );
    assert_eq!(
        d.to_string(),
        format!(
            "{file}:{}: mmap(NULL, 2097152, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) returned 0x7ffff7bff000 but the trace has 0x7ffff7a00000",
            exp[k].0
        )
    );
    assert_eq!(fake.memory_calls().len(), k + 1, "stops at the divergence");

    // Without --check: collected, and the replay goes on.
    let mut fake = fake_answering(&exp, true);
    fake.answers[k] = Ok(0x7fff_f7bf_f000);
    let report = run(&path, &mut fake, false).unwrap();
    assert_eq!(report.mismatches.len(), 1);
    assert_eq!(report.mismatches[0], d);
    assert_eq!(fake.memory_calls().len(), exp.len());

    // An errno: EINVAL recorded, ENOMEM returned.
    let k = exp
        .iter()
        .position(|(_, _, r)| *r == Err(Errno::EINVAL.into()))
        .unwrap();
    let mut fake = fake_answering(&exp, true);
    fake.answers[k] = Err(Errno::ENOMEM.into());
    let d = divergence(run(&path, &mut fake, true));
    assert_eq!((d.line, d.call.as_str()), (exp[k].0, raw[k].2.as_str()));
    assert_eq!(
        (d.expected.as_str(), d.got.as_str()),
        ("-1 EINVAL", "-1 ENOMEM")
    );

    // Success where the trace failed, and failure where it succeeded.
    let mut fake = fake_answering(&exp, true);
    fake.answers[k] = Ok(0);
    let d = divergence(run(&path, &mut fake, true));
    assert_eq!((d.line, d.got.as_str()), (exp[k].0, "0"));
    let k = exp
        .iter()
        .position(|(_, c, _)| matches!(c, Call::Munmap(..)))
        .unwrap();
    let mut fake = fake_answering(&exp, true);
    fake.answers[k] = Err(Errno::EINVAL.into());
    let d = divergence(run(&path, &mut fake, true));
    assert_eq!(
        d.to_string(),
        format!(
            "{file}:{}: {} returned -1 EINVAL but the trace has 0",
            exp[k].0, raw[k].2
        )
    );
}

/// A target that cannot do a call stops the replay with a message naming
/// the line; an unavailable target (a machine that cannot boot) says why at
/// the first line.
#[test]
fn unsupported_calls_and_the_placeholder_machine_target() {
    let path = trace("true");
    let lines = parse_file(&path).unwrap();
    let (exp, _) = expected(&lines, true);
    let mut fake = fake_answering(&exp, true);
    fake.answers[2] = Err(TargetError::Unsupported("no file mappings yet".into()));
    match run(&path, &mut fake, false) {
        Err(e @ ReplayError::Unsupported { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.starts_with(&format!("{}:{}: ", path.display(), exp[2].0)),
                "{msg}"
            );
            assert!(
                msg.ends_with("the target cannot do this: no file mappings yet"),
                "{msg}"
            );
        }
        other => panic!("{other:?}"),
    }

    let mut target: Box<dyn ReplayTarget> = Box::new(UnavailableTarget {
        reason: "not yet available: no machine".into(),
    });
    let args = CliArgs {
        file: path.clone(),
        ..Default::default()
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let msg = run_cli(&args, target.as_mut(), &mut out, &mut err).unwrap_err();
    assert!(
        msg.starts_with(&format!("{}:1: start pid", path.display())),
        "{msg}"
    );
    assert!(msg.contains("not yet available"), "{msg}");
    assert!(out.is_empty());
}

// ---------------------------------------------------------------------------
// Synthetic traces: ordering, unfinished/resumed, vfork, env.

/// The child's first lines come before its parent's clone returns; the
/// parent's mmap is split by the child's lines. Calls are issued in
/// completion order, the child is spawned before its first call, and a
/// divergence in the joined call names the line where it starts.
#[test]
fn unfinished_resumed_pairs_and_a_child_that_runs_first() {
    let t = "\
100  execve(\"./bin/x\", [\"./bin/x\"], [\"A=1\"]) = 0
100  clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f0000000a10 <unfinished ...>
101  munmap(0x20000000, 4096) = 0
100  <... clone resumed>) = 101
100  mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0 <unfinished ...>
101  mprotect(0x30000000, 4096, PROT_READ) = 0
101  exit_group(0) = ?
101  +++ exited with 0 +++
100  <... mmap resumed>) = 0x7f0000000000
100  --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=101, si_uid=0, si_status=0, si_utime=0, si_stime=0} ---
100  exit_group(0) = ?
100  +++ exited with 0 +++
";
    let lines = parse_str("t.strace", t).unwrap();
    let o = ReplayOptions {
        file: "t.strace".into(),
        check: true,
        cwd: Some("/src".into()),
        ..Default::default()
    };
    let mut fake = FakeTarget {
        answers: [Ok(0), Ok(0), Ok(0), Ok(0x7f00_0000_0000)].into(),
        fork: true,
        ..Default::default()
    };
    let report = replay(&lines, &mut fake, &o).unwrap();
    let exec = ExecRequest {
        filename: "./bin/x".into(),
        host_path: "/src/bin/x".into(),
        argv: vec!["./bin/x".into()],
        envp: vec!["A=1".into()],
    };
    assert_eq!(
        fake.calls,
        [
            Call::Spawn(100, Spawn::Initial),
            Call::Execve(100, exec),
            Call::Spawn(101, Spawn::Fork { parent: 100 }),
            Call::Munmap(101, 0x2000_0000, 4096),
            Call::Mprotect(101, 0x3000_0000, 4096, 1),
            Call::Exit(101),
            Call::Mmap(100, 0, 4096, 1, 0x22, None, 0),
            Call::Exit(100),
        ]
    );
    let child = report.process(101).unwrap();
    assert_eq!(child.created_at, Some(2));
    let m = child.maps.as_ref().unwrap();
    assert_eq!((m.at.clone(), m.line), (Capture::ExitGroup, Some(7)));
    assert_eq!(report.processes.len(), 2);
    assert_eq!(report.ignored, 0);

    let mut fake = FakeTarget {
        answers: [Ok(0), Ok(0), Ok(0), Ok(0x7f00_0000_1000)].into(),
        fork: true,
        ..Default::default()
    };
    let d = divergence(replay(&lines, &mut fake, &o));
    assert_eq!(
        d.to_string(),
        "t.strace:5: mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) returned 0x7f0000001000 but the trace has 0x7f0000000000"
    );
}

/// vfork and CLONE_VM children share the parent's address space; a child
/// of a skipped child is skipped too; a process alive at the end of the
/// trace has its maps taken there; other calls are passed over.
#[test]
fn vfork_threads_grandchildren_and_the_end_of_the_trace() {
    let t = "\
7  execve(\"/bin/sh\", [\"sh\"], [\"A=1\"]) = 0
7  arch_prctl(ARCH_SET_FS, 0x7f0000000740) = 0
7  vfork() = 8
8  execve(\"/bin/true\", [\"true\"], [\"A=1\"]) = 0
8  clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f0000000a10) = 9
9  munmap(0x20000000, 4096) = 0
7  clone(child_stack=0x7f0000100000, flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, parent_tid=[10], tls=0x7f0000100640, child_tidptr=0x7f0000100910) = 10
10  brk(NULL) = 0x555555559000
";
    let lines = parse_str("v.strace", t).unwrap();
    // Only shared-VM children can be created.
    struct OnlyShared(FakeTarget);
    impl ReplayTarget for OnlyShared {
        fn spawn(&mut self, pid: u32, how: Spawn) -> Result<(), TargetError> {
            self.0.calls.push(Call::Spawn(pid, how));
            match how {
                Spawn::Fork { .. } => Err(TargetError::Unsupported("no fork".into())),
                _ => Ok(()),
            }
        }
        fn execve(&mut self, pid: u32, e: &ExecRequest) -> Result<(), TargetError> {
            self.0.execve(pid, e)
        }
        fn mmap(
            &mut self,
            pid: u32,
            a: VirtAddr,
            l: u64,
            p: u64,
            f: u64,
            file: Option<&str>,
            o: u64,
        ) -> Result<VirtAddr, TargetError> {
            self.0.mmap(pid, a, l, p, f, file, o)
        }
        fn munmap(&mut self, pid: u32, a: VirtAddr, l: u64) -> Result<(), TargetError> {
            self.0.munmap(pid, a, l)
        }
        fn mprotect(&mut self, pid: u32, a: VirtAddr, l: u64, p: u64) -> Result<(), TargetError> {
            self.0.mprotect(pid, a, l, p)
        }
        fn mremap(
            &mut self,
            pid: u32,
            a: VirtAddr,
            ol: u64,
            nl: u64,
            f: u64,
            n: VirtAddr,
        ) -> Result<VirtAddr, TargetError> {
            self.0.mremap(pid, a, ol, nl, f, n)
        }
        fn brk(&mut self, pid: u32, a: VirtAddr) -> Result<VirtAddr, TargetError> {
            self.0.brk(pid, a)
        }
        fn madvise(&mut self, pid: u32, a: VirtAddr, l: u64, v: u64) -> Result<(), TargetError> {
            self.0.madvise(pid, a, l, v)
        }
        fn msync(&mut self, pid: u32, a: VirtAddr, l: u64, f: u64) -> Result<(), TargetError> {
            self.0.msync(pid, a, l, f)
        }
        fn exit(&mut self, pid: u32) {
            self.0.exit(pid)
        }
        fn maps(&mut self, pid: u32) -> String {
            self.0.maps(pid)
        }
    }
    let mut t = OnlyShared(FakeTarget {
        answers: [Ok(0), Ok(0), Ok(0x5555_5555_9000)].into(),
        ..Default::default()
    });
    let report = replay(&lines, &mut t, &ReplayOptions::default()).unwrap();
    let spawns: Vec<&Call> =
        t.0.calls
            .iter()
            .filter(|c| matches!(c, Call::Spawn(..)))
            .collect();
    assert_eq!(
        spawns,
        [
            &Call::Spawn(7, Spawn::Initial),
            &Call::Spawn(8, Spawn::SharedVm { parent: 7 }),
            &Call::Spawn(9, Spawn::Fork { parent: 8 }),
            &Call::Spawn(10, Spawn::SharedVm { parent: 7 }),
        ]
    );
    assert_eq!(t.0.memory_calls().len(), 3, "execve 7, execve 8, brk 10");
    assert_eq!(report.skipped_lines(), [6]);
    assert_eq!(report.ignored, 1, "arch_prctl");
    for pid in [7, 8, 10] {
        let m = report.process(pid).unwrap().maps.as_ref().unwrap();
        assert_eq!((m.at.clone(), m.line), (Capture::EndOfTrace, None));
    }
}

/// Without `strace -v`, envp comes from the options (and a note says so if
/// there is none); absolute paths are remapped; a trace without pids is one
/// process.
#[test]
fn env_from_options_path_map_and_unprefixed_traces() {
    let t = "execve(\"/work/wt-record/bin/x\", [\"x\", \"-v\"], 0x7ffe4b0c3a38 /* 3 vars */) = 0\n\
             mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, 3</work/wt-record/bin/x>, 0x1000) = 0x7ffff7fc0000\n\
             mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, 99, 0) = -1 EBADF (Bad file descriptor)\n\
             exit_group(0) = ?\n\
             +++ exited with 0 +++\n";
    let lines = parse_str("e.strace", t).unwrap();
    let mut o = ReplayOptions {
        file: "e.strace".into(),
        check: true,
        env: vec!["PATH=/bin".into(), "HOME=/".into()],
        path_map: vec![("/work/wt-record/".into(), "/r".into())],
        cwd: None,
        touches: Vec::new(),
        warm_cache: false,
    };
    let mut fake = FakeTarget {
        answers: [Ok(0), Ok(0x7fff_f7fc_0000), Err(Errno::EBADF.into())].into(),
        ..Default::default()
    };
    let report = replay(&lines, &mut fake, &o).unwrap();
    assert_eq!(
        fake.memory_calls(),
        [
            Call::Execve(
                UNPREFIXED_PID,
                ExecRequest {
                    filename: "/work/wt-record/bin/x".into(),
                    host_path: "/r/bin/x".into(),
                    argv: vec!["x".into(), "-v".into()],
                    envp: vec!["PATH=/bin".into(), "HOME=/".into()],
                }
            ),
            Call::Mmap(
                UNPREFIXED_PID,
                0,
                8192,
                1,
                2,
                Some("/r/bin/x".into()),
                0x1000
            ),
            Call::Mmap(UNPREFIXED_PID, 0, 4096, 1, 2, None, 0),
        ]
    );
    assert!(report.notes.is_empty(), "{:?}", report.notes);
    assert_eq!(
        report.maps_of(UNPREFIXED_PID).map(|m| m.lines().count()),
        Some(2)
    );

    o.env.clear();
    let mut fake = FakeTarget {
        answers: [Ok(0), Ok(0x7fff_f7fc_0000), Err(Errno::EBADF.into())].into(),
        ..Default::default()
    };
    let report = replay(&lines, &mut fake, &o).unwrap();
    assert_eq!(report.notes.len(), 1);
    assert!(
        report.notes[0].starts_with("e.strace:1: the trace has no envp"),
        "{:?}",
        report.notes
    );
}

// ---------------------------------------------------------------------------
// Bad input.

fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lmm-replay-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A garbage line is an error naming the file and line; so is a memory call
/// whose arguments cannot be read.
#[test]
fn garbage_lines_are_errors_naming_file_and_line() {
    let p = temp_file(
        "garbage.strace",
        "5  execve(\"/bin/true\", [\"true\"], []) = 0\n5  brk(NULL) = 0x1000\nthis is not strace\n",
    );
    let args = CliArgs {
        file: p.clone(),
        ..Default::default()
    };
    let mut fake = FakeTarget::default();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let msg = run_cli(&args, &mut fake, &mut out, &mut err).unwrap_err();
    assert!(
        msg.starts_with(&format!("{}:3: expected", p.display())),
        "{msg}"
    );
    assert!(fake.calls.is_empty() && out.is_empty());

    let lines = parse_str(
        "bad.strace",
        "5  execve(\"/bin/true\", [\"true\"], []) = 0\n5  mmap(NULL, 4096, PROT_READ, MAP_BOGUS, -1, 0) = 0x1000\n",
    )
    .unwrap();
    let e = replay(
        &lines,
        &mut FakeTarget::default(),
        &ReplayOptions {
            file: "bad.strace".into(),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(matches!(e, ReplayError::BadCall { line: 2, .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("bad.strace:2: expected mmap arguments"),
        "{e}"
    );

    let args = CliArgs {
        file: p.clone(),
        path_map: vec!["no-equals-sign".into()],
        ..Default::default()
    };
    let msg = run_cli(&args, &mut FakeTarget::default(), &mut out, &mut err).unwrap_err();
    assert!(msg.contains("expected FROM=TO"), "{msg}");
    std::fs::remove_file(p).unwrap();
}

// ---------------------------------------------------------------------------
// The CLI.

fn cli(path: &Path, maps: Option<u32>, fork: bool) -> Result<(String, String), String> {
    let lines = parse_file(path).unwrap();
    let mut fake = fake_answering(&expected(&lines, fork).0, fork);
    let args = CliArgs {
        file: path.to_path_buf(),
        check: true,
        maps,
        path_map: vec![format!("{RECORD}={REPO}")],
        cwd: Some(RECORD.into()),
        ..Default::default()
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    run_cli(&args, &mut fake, &mut out, &mut err)?;
    Ok((
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    ))
}

/// `--maps PID` prints that process's maps and nothing else; without it,
/// every process's maps under a header naming the pid.
#[test]
fn maps_flag_prints_only_the_maps() {
    let path = trace("mmap_basic-pie");
    let lines = parse_file(&path).unwrap();
    let mut fake = fake_answering(&expected(&lines, true).0, true);
    let report = replay(&lines, &mut fake, &opts(&path, true)).unwrap();

    let (out, err) = cli(&path, Some(6411), true).unwrap();
    assert_eq!(out, report.maps_of(6411).unwrap());
    assert!(out.starts_with("00400000-00401000 r--p"), "{out}");
    assert!(err.contains("-- "), "{err}");
    let (out, _) = cli(&path, Some(6412), true).unwrap();
    assert_eq!(out, report.maps_of(6412).unwrap());

    let (out, _) = cli(&path, None, true).unwrap();
    let headers: Vec<&str> = out.lines().filter(|l| l.starts_with("===")).collect();
    let exit_line = |pid: u32| {
        lines
            .iter()
            .find(|l| {
                pid == l.pid.unwrap()
                    && matches!(&l.event, Event::Syscall(s) if s.name == "exit_group")
            })
            .unwrap()
            .line_no
    };
    assert_eq!(
        headers,
        [
            format!(
                "=== pid 6411: maps at exit_group, line {} ===",
                exit_line(6411)
            ),
            format!(
                "=== pid 6412: maps at exit_group, line {} ===",
                exit_line(6412)
            ),
            "=== pid 6413: maps when killed by SIGSEGV, line 68 ===".to_string(),
        ]
    );

    let e = cli(&path, Some(4242), true).unwrap_err();
    assert!(e.ends_with("pid 4242 is not in the trace"), "{e}");
    let e = cli(&path, Some(6412), false).unwrap_err();
    assert!(
        e.contains("pid 6412 (created by pid 6411 at line 57): not replayed"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------
// Maps helpers on the recorded output.

/// Re-rendering leaves every recorded maps line as Linux printed it; with
/// the checkout's path map, the fixture paths move and their device and
/// inode are masked, and only those.
#[test]
fn normalize_maps_on_the_recorded_checkpoints() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/traces");
    let unrelated = vec![("/nowhere".to_string(), "/elsewhere".to_string())];
    let map = vec![(RECORD.to_string(), REPO.to_string())];
    let (mut n, mut files) = (0, 0);
    for path in traces() {
        let out =
            std::fs::read_to_string(dir.join(path.with_extension("stdout").file_name().unwrap()))
                .unwrap();
        let cps = stdout_checkpoints(&out);
        // true and ls print no checkpoints.
        assert_eq!(
            cps.is_empty(),
            !out.contains("=== checkpoint"),
            "{}",
            path.display()
        );
        files += usize::from(!cps.is_empty());
        for c in &cps {
            assert!(
                c.maps.contains("[stack]"),
                "{}: {}",
                path.display(),
                c.label
            );
            assert_eq!(normalize_maps(&c.maps, &unrelated), c.maps);
            let norm = normalize_maps(&c.maps, &map);
            assert_eq!(norm.lines().count(), c.maps.lines().count());
            for (a, b) in c.maps.lines().zip(norm.lines()) {
                if a.contains(RECORD) {
                    assert!(
                        b.contains(" 00:00 0 ") && b.contains(REPO) && !b.contains(RECORD),
                        "{b}"
                    );
                    assert_eq!(b.find('/'), Some(MAPS_NAME_COLUMN), "{b}");
                    n += 1;
                } else {
                    assert_eq!(a, b);
                }
            }
        }
    }
    assert!(n > 0);
    assert_eq!(files, 12);
}

/// Calls strace cut short or never finished are noted, not guessed.
#[test]
fn truncated_strings_and_half_calls_are_noted() {
    let t = "3  execve(\"./a-very-long-name\"..., [\"./a\"...], [\"A=1\", ...]) = 0\n\
             3  mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0 <unfinished ...>\n\
             4  <... munmap resumed>) = 0\n\
             4  +++ exited with 0 +++\n\
             3  +++ killed by SIGKILL +++\n";
    let lines = parse_str("n.strace", t).unwrap();
    let mut fake = FakeTarget::default();
    let report = replay(
        &lines,
        &mut fake,
        &ReplayOptions {
            file: "n.strace".into(),
            check: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(report.calls, 1, "only the execve");
    assert_eq!(report.notes.len(), 3, "{:?}", report.notes);
    assert!(report.notes[0].starts_with("n.strace:1: execve strings were cut short"));
    assert!(report.notes[1].starts_with("n.strace:2: mmap by pid 3 is only half in the trace"));
    assert!(report.notes[2].starts_with("n.strace:3: munmap by pid 4 is only half in the trace"));
    let m = report.process(3).unwrap().maps.as_ref().unwrap();
    assert_eq!(
        (m.at.clone(), m.line),
        (Capture::Killed("SIGKILL".into()), Some(5))
    );
}

/// A relative `--path-map` target and `--cwd` become absolute paths.
#[test]
fn cli_makes_relative_directories_absolute() {
    let p = temp_file(
        "rel.strace",
        "5  execve(\"./bin/x\", [\"x\"], [\"A=1\"]) = 0\n\
         5  mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, 3</work/wt-record/bin/x>, 0) = 0x1000\n",
    );
    let args = CliArgs {
        file: p.clone(),
        path_map: vec!["/work/wt-record=sub/./dir".into()],
        cwd: Some("other".into()),
        ..Default::default()
    };
    let mut fake = FakeTarget::default();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    run_cli(&args, &mut fake, &mut out, &mut err).unwrap();
    let here = std::env::current_dir().unwrap();
    let calls = fake.memory_calls();
    assert!(
        matches!(&calls[0], Call::Execve(5, e) if e.host_path == here.join("other/bin/x")),
        "{calls:?}"
    );
    let want = here.join("sub/dir/bin/x").display().to_string();
    assert!(
        matches!(&calls[1], Call::Mmap(5, _, _, _, _, Some(f), _) if *f == want),
        "{calls:?}"
    );
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.starts_with("=== pid 5: maps at the end of the trace ===\n"),
        "{out}"
    );
    std::fs::remove_file(p).unwrap();
}

// ---------------------------------------------------------------------------
// Whole programs: file calls, wait4, touches, --smaps/--stat.

/// A trace with its file calls: descriptors map to the target's (open,
/// dup2 over a number, close, copies at fork, O_CLOEXEC at execve), mmap of
/// a tracked descriptor is `mmap_fd`, untracked ones (/proc) are passed
/// over, unlink reaches the target only for files the replay created, a
/// successful open compares as success (its number is not compared), a
/// failed one by errno.
#[test]
fn file_calls_map_descriptors_to_the_targets() {
    let t = "\
1  execve(\"/bin/x\", [\"x\"], []) = 0
1  openat(AT_FDCWD</d>, \"f\", O_RDWR|O_CREAT|O_CLOEXEC, 0600) = 3</d/f>
1  ftruncate(3</d/f>, 8192) = 0
1  pwrite64(3</d/f>, \"abc\", 3, 4096) = 3
1  mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_SHARED, 3</d/f>, 0) = 0x7f0000000000
1  dup2(3</d/f>, 7) = 7</d/f>
1  close(3</d/f>) = 0
1  openat(AT_FDCWD</d>, \"/proc/self/maps\", O_RDONLY) = 3</proc/1/maps>
1  read(3</proc/1/maps>, \"abc\", 1024) = 3
1  openat(AT_FDCWD</d>, \"missing\", O_RDONLY) = -1 ENOENT (No such file or directory)
1  memfd_create(\"m\", MFD_CLOEXEC) = 4</memfd:m>(deleted)
1  write(1</dev/pts/0>, \"hello\\n\", 6) = 6
1  clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f0000000a10) = 2
2  mmap(NULL, 4096, PROT_READ, MAP_SHARED, 7</d/f>, 0) = 0x7f0000002000
2  execve(\"/bin/y\", [\"y\"], []) = 0
2  mmap(NULL, 4096, PROT_READ, MAP_SHARED, 4</memfd:m>(deleted), 0) = -1 EBADF (Bad file descriptor)
2  exit_group(0) = ?
2  +++ exited with 0 +++
1  unlink(\"/d/f\") = 0
1  unlink(\"/d/g\") = 0
1  wait4(2, [{WIFEXITED(s) && WEXITSTATUS(s) == 0}], 0, NULL) = 2
1  exit_group(0) = ?
1  +++ exited with 0 +++
";
    let lines = parse_str("f.strace", t).unwrap();
    let mut fake = FakeTarget {
        files: true,
        fork: true,
        waits: true,
        answers: [
            Ok(0),
            Ok(0x7f00_0000_0000),
            Ok(0x7f00_0000_2000),
            Ok(0),
            Err(Errno::EBADF.into()),
        ]
        .into(),
        ..Default::default()
    };
    let o = ReplayOptions {
        file: "f.strace".into(),
        check: true,
        ..Default::default()
    };
    let report = replay(&lines, &mut fake, &o).unwrap_or_else(|e| panic!("{e}"));
    let calls: Vec<&Call> = fake
        .calls
        .iter()
        .filter(|c| !matches!(c, Call::Spawn(..) | Call::Execve(..) | Call::Exit(..)))
        .collect();
    let fd = |p: u32, s: &str| Call::Fd(p, s.to_string());
    assert_eq!(
        calls,
        [
            &Call::Open(1, "/d/f".into(), 0o2 | 0o100 | 0o2000000),
            &fd(1, "Ftruncate(100, 8192)"),
            &fd(1, "Write { fd: 100, off: Some(4096), data: [97, 98, 99] }"),
            &Call::MmapFd(1, 0, 8192, 100),
            &fd(1, "Dup(100)"),
            &fd(1, "Close(100)"),
            &Call::Open(1, "/proc/self/maps".into(), 0),
            &Call::Open(1, "/d/missing".into(), 0),
            &Call::Memfd(1, "m".into()),
            // The child's copy of the table: 7 is the target's 101.
            &Call::MmapFd(2, 0, 4096, 101),
            // execve closes the memfd (MFD_CLOEXEC), not the dup2'd 7.
            &fd(2, "Close(102)"),
            &Call::Mmap(2, 0, 4096, 1, 1, Some("/memfd:m (deleted)".into()), 0),
            &Call::Unlink(1, "/d/f".into()),
            &Call::Wait(1, 2, false),
        ]
    );
    // open, ftruncate, pwrite, mmap, dup2, close, open (ENOENT), memfd,
    // mmap, execve x2, mmap, unlink, wait4 are compared; read of /proc,
    // write to the terminal and unlink of a file it did not create are not.
    assert_eq!(report.checked, report.calls);
    assert!(report.mismatches.is_empty());
    assert_eq!(report.ignored, 4, "read, write(1), /proc open, unlink /d/g");
}

/// wait4 reaps on the target: the trace pid and the status it returns are
/// compared with the trace's; a different status is a divergence naming
/// both.
#[test]
fn wait4_compares_the_child_and_its_status() {
    let trace = |status: u32| {
        format!(
            "1  execve(\"/bin/x\", [\"x\"], []) = 0\n\
             1  vfork() = 2\n\
             2  exit_group(3) = ?\n\
             2  +++ exited with 3 +++\n\
             1  wait4(-1, [{{WIFEXITED(s) && WEXITSTATUS(s) == {status}}}], 0, NULL) = 2\n\
             1  wait4(-1, 0x7ffc, WNOHANG, NULL) = -1 ECHILD (No child processes)\n\
             1  exit_group(0) = ?\n"
        )
    };
    let o = ReplayOptions {
        file: "w.strace".into(),
        check: true,
        ..Default::default()
    };
    let mut fake = FakeTarget {
        fork: true,
        waits: true,
        ..Default::default()
    };
    let lines = parse_str("w.strace", &trace(3)).unwrap();
    let r = replay(&lines, &mut fake, &o).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((r.calls, r.checked), (3, 3), "execve and two wait4");
    assert!(fake
        .calls
        .contains(&Call::Spawn(2, Spawn::SharedVm { parent: 1 })));
    assert_eq!(
        fake.calls
            .iter()
            .filter(|c| matches!(c, Call::Wait(..)))
            .collect::<Vec<_>>(),
        [&Call::Wait(1, -1, false), &Call::Wait(1, -1, true)]
    );

    let mut fake = FakeTarget {
        fork: true,
        waits: true,
        ..Default::default()
    };
    let lines = parse_str("w.strace", &trace(4)).unwrap();
    let d = divergence(replay(&lines, &mut fake, &o));
    assert_eq!(d.line, 5);
    assert_eq!(
        (d.expected.as_str(), d.got.as_str()),
        (
            "2 with status {WIFEXITED(s) && WEXITSTATUS(s) == 4}",
            "2 with status {WIFEXITED(s) && WEXITSTATUS(s) == 3}"
        )
    );
    assert_eq!(
        ExitStatus::from_strace("{WIFSIGNALED(s) && WTERMSIG(s) == SIGSEGV && WCOREDUMP(s)}"),
        Some(ExitStatus::Killed("SIGSEGV".into()))
    );
}

/// Touches are made after their line (or, without one, right before the
/// first process's exit_group) by live processes only, reported with their
/// faults; the CLI prints them and --smaps/--stat print those files.
#[test]
fn touches_and_the_proc_files_at_exit() {
    let p = temp_file(
        "touch.strace",
        "5  execve(\"/bin/x\", [\"x\"], [\"A=1\"]) = 0\n\
         5  mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000000000\n\
         5  exit_group(0) = ?\n\
         5  +++ exited with 0 +++\n",
    );
    let args = CliArgs {
        file: p.clone(),
        smaps: Some(5),
        stat: Some(5),
        touch: vec![
            "2:5:0x7f0000000000,8192:w".into(),
            "0x7f0000001000".into(),
            "4:5:0x7f0000000000".into(),
        ],
        ..Default::default()
    };
    let mut fake = FakeTarget {
        answers: [Ok(0), Ok(0x7f00_0000_0000)].into(),
        ..Default::default()
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    run_cli(&args, &mut fake, &mut out, &mut err).unwrap();
    let touches: Vec<&Call> = fake
        .calls
        .iter()
        .filter(|c| matches!(c, Call::Touch(..)))
        .collect();
    assert_eq!(
        touches,
        [
            &Call::Touch(5, 0x7f00_0000_0000, 8192, Access::Write),
            &Call::Touch(5, 0x7f00_0000_1000, 1, Access::Read),
        ]
    );
    let out = String::from_utf8(out).unwrap();
    assert_eq!(
        out,
        "==> /proc/5/smaps <==\nsmaps of 5\n==> /proc/5/stat <==\nstat of 5\n"
    );
    let err = String::from_utf8(err).unwrap();
    assert!(
        err.contains(
            "touch: line 2 pid 5 write 0x7f0000000000..0x7f0000002000: 2 minor, 0 major fault(s)"
        ),
        "{err}"
    );
    assert!(
        err.contains("touch: line 3 pid 5 read 0x7f0000001000..0x7f0000001001: 1 minor"),
        "{err}"
    );
    assert!(
        err.contains("touch: line 4 pid 5 read 0x7f0000000000..0x7f0000000001: not made"),
        "{err}"
    );

    let lines = parse_file(&p).unwrap();
    let mut fake = FakeTarget {
        answers: [Ok(0), Ok(0x7f00_0000_0000)].into(),
        ..Default::default()
    };
    let o = ReplayOptions {
        touches: vec![Touch {
            after_line: None,
            pid: None,
            addr: VirtAddr(0x7f00_0000_0000),
            len: 4096,
            access: Access::Exec,
        }],
        ..Default::default()
    };
    let r = replay(&lines, &mut fake, &o).unwrap();
    assert_eq!(r.touches.len(), 1);
    assert_eq!((r.touches[0].line, r.touches[0].pid), (3, 5));
    // Taken after the touch, at exit_group.
    let snap = r.process(5).unwrap().maps.as_ref().unwrap();
    assert_eq!(snap.smaps.as_deref(), Some("smaps of 5\n"));
    assert!(snap.text.contains("after 4 calls"), "{}", snap.text);
    std::fs::remove_file(p).unwrap();
}

/// A fork the target refuses with an errno where the trace's succeeded is
/// a divergence with --check (at the clone's line), and without it the
/// child's lines are skipped, with the reason.
#[test]
fn a_failed_fork_is_a_divergence() {
    let t = "1  execve(\"/bin/x\", [\"x\"], []) = 0\n\
             1  clone(child_stack=NULL, flags=SIGCHLD) = 2\n\
             2  exit_group(0) = ?\n";
    let lines = parse_str("c.strace", t).unwrap();
    let mut o = ReplayOptions {
        file: "c.strace".into(),
        check: true,
        ..Default::default()
    };
    let mut fake = FakeTarget {
        fork_errno: Some(Errno::ENOMEM),
        ..Default::default()
    };
    let d = divergence(replay(&lines, &mut fake, &o));
    assert_eq!(
        d.to_string(),
        "c.strace:2: the clone that created pid 2 returned -1 ENOMEM but the trace has 2"
    );
    o.check = false;
    let mut fake = FakeTarget {
        fork_errno: Some(Errno::ENOMEM),
        ..Default::default()
    };
    let r = replay(&lines, &mut fake, &o).unwrap();
    assert_eq!(r.skipped_lines(), [3]);
}
