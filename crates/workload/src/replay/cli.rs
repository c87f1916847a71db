//! `lmm replay strace FILE [--check] [--maps PID] [--env K=V]...
//! [--path-map FROM=TO]... [--cwd DIR]`: the command line's side of replay,
//! written against any [`ReplayTarget`] so it can be tested with a fake.

use std::io::Write;
use std::path::{Path, PathBuf};

use machine::MachineConfig;
use mm::VirtAddr;

use super::{
    normalize_lexically, replay, Capture, ExecRequest, ProcessReport, ReplayOptions, ReplayTarget,
    Spawn, TargetError, Touch,
};
use crate::strace::parse_file;

/// The arguments of `lmm replay strace`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CliArgs {
    /// The trace file.
    pub file: PathBuf,
    /// `--check`: stop at the first result that differs from the trace.
    pub check: bool,
    /// `--maps PID`: print only this process's maps, nothing else on stdout.
    pub maps: Option<u32>,
    /// `--env K=V`, repeated: the environment when the trace has no envp.
    pub env: Vec<String>,
    /// `--path-map FROM=TO`, repeated: host path prefixes to rewrite (a
    /// relative TO is taken from the current directory).
    pub path_map: Vec<String>,
    /// `--cwd DIR`: where relative execve paths are resolved (default: the
    /// current directory).
    pub cwd: Option<PathBuf>,
    /// `--touch LINE:PID:ADDR:LEN`, repeated: memory writes the trace does
    /// not show (see [`super::Touch`]).
    pub touch: Vec<String>,
}

/// A number as strace and C write it: `0x` hex or decimal.
fn number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Parses `--touch LINE:PID:ADDR:LEN`.
pub fn parse_touch(s: &str) -> Result<Touch, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let bad = || format!("--touch {s:?}: expected LINE:PID:ADDR:LEN (numbers, hex with 0x)");
    let [line, pid, addr, len] = parts.as_slice() else {
        return Err(bad());
    };
    let (Some(line), Some(pid), Some(addr), Some(len)) =
        (number(line), number(pid), number(addr), number(len))
    else {
        return Err(bad());
    };
    Ok(Touch {
        after_line: usize::try_from(line).map_err(|_| bad())?,
        pid: u32::try_from(pid).map_err(|_| bad())?,
        addr: VirtAddr(addr),
        len,
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
    };
    let report = replay(&lines, target, &opts).map_err(|e| e.to_string())?;
    let io = |e: std::io::Error| format!("writing the output: {e}");

    for n in &report.notes {
        writeln!(err, "note: {n}").map_err(io)?;
    }
    if let Some(pid) = args.maps {
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
        let text = p.maps.as_ref().map(|m| m.text.as_str()).unwrap_or("");
        out.write_all(text.as_bytes()).map_err(io)?;
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
