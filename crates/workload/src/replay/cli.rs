//! `lmm replay strace FILE [--check] [--maps PID] [--smaps PID] [--stat PID]
//! [--env K=V]... [--path-map FROM=TO]... [--cwd DIR] [--touch T]...`: the
//! command line's side of replay, written against any [`ReplayTarget`] so it
//! can be tested with a fake.

use std::io::Write;
use std::path::{Path, PathBuf};

use machine::MachineConfig;
use mm::VirtAddr;

use super::{
    normalize_lexically, replay_with, Access, Capture, ExecRequest, ProcessReport, ReplayOptions,
    ReplayTarget, Spawn, TargetError, Touch,
};
use crate::strace::parse_file;

/// The arguments of `lmm replay strace`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CliArgs {
    /// The trace file.
    pub file: PathBuf,
    /// `--check`: stop at the first result that differs from the trace.
    pub check: bool,
    /// `--maps PID`: print this process's maps at its exit_group.
    pub maps: Option<u32>,
    /// `--smaps PID`: print this process's smaps at its exit_group.
    pub smaps: Option<u32>,
    /// `--stat PID`: print this process's /proc/PID/stat at its exit_group.
    pub stat: Option<u32>,
    /// `--env K=V`, repeated: the environment when the trace has no envp.
    pub env: Vec<String>,
    /// `--path-map FROM=TO`, repeated: host path prefixes to rewrite (a
    /// relative TO is taken from the current directory).
    pub path_map: Vec<String>,
    /// `--cwd DIR`: where relative execve paths are resolved (default: the
    /// current directory).
    pub cwd: Option<PathBuf>,
    /// `--warm-cache`: start with every host file the trace uses in the
    /// page cache (see [`ReplayOptions::warm_cache`]).
    pub warm_cache: bool,
    /// `--touch [LINE:PID:]ADDR[,LEN][:r|w|x]` (or the older
    /// `LINE:PID:ADDR:LEN`, a write), repeated: user accesses the trace does
    /// not show (see [`parse_touch`]).
    pub touch: Vec<String>,
}

/// A number as strace and C write it: `0x` hex or decimal.
fn number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Parses `--touch`:
/// - `[LINE:PID:]ADDR[,LEN][:r|w|x]`: a load (`r`, the default), store
///   (`w`) or instruction fetch (`x`) of every page of `[ADDR, ADDR+LEN)`
///   (LEN 1 if omitted), by PID right after trace line LINE; without
///   `LINE:PID:`, by the trace's first process right before its exit_group;
/// - `LINE:PID:ADDR:LEN` (the earlier form): a store.
///
/// Numbers are decimal or hex with `0x`.
pub fn parse_touch(s: &str) -> Result<Touch, String> {
    let bad = || {
        format!(
            "--touch {s:?}: expected [LINE:PID:]ADDR[,LEN][:r|w|x] or LINE:PID:ADDR:LEN \
             (numbers, hex with 0x)"
        )
    };
    let mut parts: Vec<&str> = s.split(':').collect();
    let access = match parts.last().copied() {
        Some("r") => Some(Access::Read),
        Some("w") => Some(Access::Write),
        Some("x") => Some(Access::Exec),
        _ => None,
    };
    if access.is_some() {
        parts.pop();
    }
    let (at, range, access) = match parts.as_slice() {
        [range] => (None, *range, access.unwrap_or(Access::Read)),
        [line, pid, range] => (Some((*line, *pid)), *range, access.unwrap_or(Access::Read)),
        [line, pid, addr, len] => {
            let (Some(a), Some(l)) = (number(addr), number(len)) else {
                return Err(bad());
            };
            let t = parse_touch(&format!("{line}:{pid}:{a},{l}"))?;
            return Ok(Touch {
                access: access.unwrap_or(Access::Write),
                ..t
            });
        }
        _ => return Err(bad()),
    };
    let (addr, len) = match range.split_once(',') {
        Some((a, l)) => (number(a), number(l)),
        None => (number(range), Some(1)),
    };
    let (Some(addr), Some(len)) = (addr, len) else {
        return Err(bad());
    };
    let (after_line, pid) = match at {
        None => (None, None),
        Some((line, pid)) => {
            let (Some(line), Some(pid)) = (number(line), number(pid)) else {
                return Err(bad());
            };
            (
                Some(usize::try_from(line).map_err(|_| bad())?),
                Some(u32::try_from(pid).map_err(|_| bad())?),
            )
        }
    };
    Ok(Touch {
        after_line,
        pid,
        addr: VirtAddr(addr),
        len,
        access,
    })
}

fn pair(s: &str, what: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((a, b)) if !a.is_empty() => Ok((a.to_string(), b.to_string())),
        _ => Err(format!("{what} {s:?}: expected {}", what_form(what))),
    }
}

fn what_form(what: &str) -> &'static str {
    if what == "--env" {
        "K=V"
    } else {
        "FROM=TO"
    }
}

fn header(p: &ProcessReport) -> String {
    if let Some(s) = &p.skipped {
        let origin = match (p.spawn, p.created_at) {
            (Spawn::Fork { parent } | Spawn::SharedVm { parent }, Some(at)) => {
                format!(" (created by pid {parent} at line {at})")
            }
            _ => String::new(),
        };
        return format!(
            "=== pid {}{origin}: not replayed, lines {} skipped: {} ===",
            p.pid,
            s.ranges(),
            s.reason
        );
    }
    let when = match p.maps.as_ref().map(|m| (&m.at, m.line)) {
        Some((Capture::ExitGroup, Some(l))) => format!("at exit_group, line {l}"),
        Some((Capture::Exited, Some(l))) => format!("at exit, line {l}"),
        Some((Capture::Killed(sig), Some(l))) => format!("when killed by {sig}, line {l}"),
        _ => "at the end of the trace".to_string(),
    };
    format!("=== pid {}: maps {when} ===", p.pid)
}

/// The trace's lines and the replay's options from the command line's
/// arguments (paths made absolute, `--touch` parsed): what `lmm replay
/// strace` and `lmm top replay strace` replay.
pub fn prepare(args: &CliArgs) -> Result<(Vec<crate::strace::Line>, ReplayOptions), String> {
    let here = std::env::current_dir().map_err(|e| format!("current directory: {e}"))?;
    // A relative directory (`--path-map /work/wt-record=.`) is taken from
    // the current directory, so the target gets absolute paths.
    let absolute = |p: &str| -> String {
        let p = Path::new(p);
        if p.is_absolute() {
            p.display().to_string()
        } else {
            normalize_lexically(&here.join(p)).display().to_string()
        }
    };
    let mut path_map = Vec::new();
    for s in &args.path_map {
        let (from, to) = pair(s, "--path-map")?;
        path_map.push((from, absolute(&to)));
    }
    for e in &args.env {
        pair(e, "--env")?;
    }
    let cwd = match &args.cwd {
        Some(c) => PathBuf::from(absolute(&c.to_string_lossy())),
        None => here.clone(),
    };
    let lines = parse_file(&args.file).map_err(|e| e.to_string())?;
    let opts = ReplayOptions {
        file: args.file.display().to_string(),
        check: args.check,
        env: args.env.clone(),
        path_map,
        cwd: Some(cwd),
        touches: args
            .touch
            .iter()
            .map(|t| parse_touch(t))
            .collect::<Result<_, _>>()?,
        warm_cache: args.warm_cache,
    };
    Ok((lines, opts))
}

/// Runs `lmm replay strace` on `target`, printing to `out` (stdout) and
/// `err` (stderr). Without `--maps`: each process's maps, headed by a line
/// naming the pid (and, for a process the target could not create, a line
/// saying which lines were skipped). With `--maps PID`: exactly that
/// process's maps text on `out`. Notes and the summary go to `err`. Any
/// failure (unreadable or malformed trace, `--check` divergence, a call the
/// target cannot do) is returned as the message to print; the caller exits
/// non-zero.
pub fn run_cli(
    args: &CliArgs,
    target: &mut dyn ReplayTarget,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), String> {
    run_cli_with(args, target, out, err, &mut |_, _| {})
}

/// [`run_cli`] with `on_line(done, total)` called after each trace line
/// (see [`super::replay_with`]), before anything is printed.
pub fn run_cli_with(
    args: &CliArgs,
    target: &mut dyn ReplayTarget,
    out: &mut dyn Write,
    err: &mut dyn Write,
    on_line: &mut dyn FnMut(u64, u64),
) -> Result<(), String> {
    let (lines, opts) = prepare(args)?;
    let report = replay_with(&lines, target, &opts, on_line).map_err(|e| e.to_string())?;
    let io = |e: std::io::Error| format!("writing the output: {e}");

    for n in &report.notes {
        writeln!(err, "note: {n}").map_err(io)?;
    }
    for t in &report.touches {
        let what = match t.touch.access {
            Access::Read => "read",
            Access::Write => "write",
            Access::Exec => "fetch",
        };
        let result = match &t.outcome {
            Some(o) => {
                let mut r = format!("{} minor, {} major fault(s)", o.minor, o.major);
                if let Some(sig) = &o.signal {
                    r.push_str(&format!(", {sig}"));
                }
                r
            }
            None => "not made (the process was not live)".to_string(),
        };
        writeln!(
            err,
            "touch: line {} pid {} {what} {:#x}..{:#x}: {result}",
            t.line,
            t.pid,
            t.touch.addr.0,
            t.touch.addr.0.saturating_add(t.touch.len.max(1))
        )
        .map_err(io)?;
    }
    let wanted: Vec<(&str, u32)> = [
        ("maps", args.maps),
        ("smaps", args.smaps),
        ("stat", args.stat),
    ]
    .into_iter()
    .filter_map(|(f, p)| Some((f, p?)))
    .collect();
    if !wanted.is_empty() {
        for &(file, pid) in &wanted {
            let p = report
                .process(pid)
                .ok_or_else(|| format!("{}: pid {pid} is not in the trace", opts.file))?;
            if p.skipped.is_some() {
                return Err(format!(
                    "{}: {}",
                    opts.file,
                    header(p).trim_matches('=').trim()
                ));
            }
            let snap = p.maps.as_ref();
            let text = match file {
                "maps" => snap.map(|m| m.text.clone()),
                "smaps" => snap.and_then(|m| m.smaps.clone()),
                _ => snap.and_then(|m| m.stat.clone()),
            }
            .ok_or_else(|| format!("{}: the target has no /proc/PID/{file}", opts.file))?;
            if wanted.len() > 1 {
                writeln!(out, "==> /proc/{pid}/{file} <==").map_err(io)?;
            }
            out.write_all(text.as_bytes()).map_err(io)?;
        }
        for p in report.processes.iter().filter(|p| p.skipped.is_some()) {
            writeln!(err, "{}", header(p)).map_err(io)?;
        }
    } else {
        for p in &report.processes {
            writeln!(out, "{}", header(p)).map_err(io)?;
            if let Some(m) = &p.maps {
                out.write_all(m.text.as_bytes()).map_err(io)?;
                if !m.text.is_empty() && !m.text.ends_with('\n') {
                    writeln!(out).map_err(io)?;
                }
            }
        }
    }
    if let Some(first) = report.mismatches.first() {
        writeln!(
            err,
            "{} call(s) returned other results than the trace; the first: {first}",
            report.mismatches.len()
        )
        .map_err(io)?;
    }
    let skipped = report.skipped_lines().len();
    writeln!(
        err,
        "-- {}: {} process(es), {} calls replayed, {} results {}, {} line(s) skipped, {} other calls ignored",
        opts.file,
        report.processes.len(),
        report.calls,
        report.checked,
        if args.check { "checked" } else { "compared" },
        skipped,
        report.ignored
    )
    .map_err(io)?;
    Ok(())
}

/// A target for a machine whose process side is not there yet: every call
/// fails with [`TargetError::Unsupported`], so `lmm replay` says so plainly.
#[derive(Clone, Debug)]
pub struct UnavailableTarget {
    /// The message every call returns.
    pub reason: String,
}

impl UnavailableTarget {
    fn no<T>(&self) -> Result<T, TargetError> {
        Err(TargetError::Unsupported(self.reason.clone()))
    }
}

impl ReplayTarget for UnavailableTarget {
    fn spawn(&mut self, _: u32, _: Spawn) -> Result<(), TargetError> {
        self.no()
    }
    fn execve(&mut self, _: u32, _: &ExecRequest) -> Result<(), TargetError> {
        self.no()
    }
    fn mmap(
        &mut self,
        _: u32,
        _: VirtAddr,
        _: u64,
        _: u64,
        _: u64,
        _: Option<&str>,
        _: u64,
    ) -> Result<VirtAddr, TargetError> {
        self.no()
    }
    fn munmap(&mut self, _: u32, _: VirtAddr, _: u64) -> Result<(), TargetError> {
        self.no()
    }
    fn mprotect(&mut self, _: u32, _: VirtAddr, _: u64, _: u64) -> Result<(), TargetError> {
        self.no()
    }
    fn mremap(
        &mut self,
        _: u32,
        _: VirtAddr,
        _: u64,
        _: u64,
        _: u64,
        _: VirtAddr,
    ) -> Result<VirtAddr, TargetError> {
        self.no()
    }
    fn brk(&mut self, _: u32, _: VirtAddr) -> Result<VirtAddr, TargetError> {
        self.no()
    }
    fn madvise(&mut self, _: u32, _: VirtAddr, _: u64, _: u64) -> Result<(), TargetError> {
        self.no()
    }
    fn msync(&mut self, _: u32, _: VirtAddr, _: u64, _: u64) -> Result<(), TargetError> {
        self.no()
    }
    fn exit(&mut self, _: u32) {}
    fn maps(&mut self, _: u32) -> String {
        String::new()
    }
}

/// The replay target for a machine booted with `config`: a
/// [`super::MachineTarget`], or, if the machine cannot boot with that
/// configuration, an [`UnavailableTarget`] that says why at the first line.
pub fn machine_target(config: MachineConfig) -> Box<dyn ReplayTarget> {
    match super::MachineTarget::boot(config) {
        Ok(t) => Box::new(t),
        Err(reason) => Box::new(UnavailableTarget { reason }),
    }
}
