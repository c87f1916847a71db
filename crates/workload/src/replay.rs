//! Replay of an strace trace on a machine: each process's `execve`, its
//! memory system calls (mmap, munmap, mprotect, mremap, brk, madvise, msync,
//! mincore), its file calls when the trace has them (open, close, dup,
//! ftruncate, read, write, memfd_create, ...; see the `files` module), and
//! the process calls (clone/fork/vfork/clone3, exit_group, wait4), in the
//! order they completed, with optional checking of every result against the
//! recorded one.
//!
//! The engine ([`replay`]) drives a [`ReplayTarget`], the machine side: a
//! trait so that the engine can be tested with a fake. Processes created by
//! `clone`/`fork`/`vfork` are spawned from their parent (a copy of its
//! address space, or for vfork and `CLONE_VM` the parent's address space
//! itself until the child execs); if the target cannot do that, their lines
//! are skipped and listed in the report. A process ends at its
//! `exit_group` (Linux releases the address space there, before strace's
//! `+++ exited` line) or when killed, and `wait4` reaps it on the target:
//! the trace pid the target returns, and the child's status, are compared
//! with the trace. Each process's `/proc/PID/maps` (and, if the target has
//! them, `smaps` and `stat`) is captured at its `exit_group` (or when it
//! dies, or when the trace ends).
//!
//! Paths: a relative path is resolved against the directory strace printed
//! for `AT_FDCWD` or [`ReplayOptions::cwd`], and every host path
//! (executables, opened files and the `fd<path>` of file mappings) goes
//! through [`ReplayOptions::path_map`], so a trace recorded in one checkout
//! replays in another; [`normalize_maps`] rewrites the real kernel's maps
//! the same way for comparisons.
//!
//! What a trace cannot show: a trace without file calls (`%memory,%process`)
//! has no `open`, so file mappings are made from the path alone, opened
//! read-only (a program that mapped an `O_RDWR` file shared and writable
//! diverges, and the divergence carries [`Hint::SharedWritableFile`]). The
//! program's memory accesses are not in any trace: `mincore`'s residency
//! vector is not compared (only its result), and the accesses that decide
//! faults, RSS, stack growth and later VMA merges must be given as
//! [`ReplayOptions::touches`]; each one is made through the target's MMU
//! and fault handler and its faults are reported. The real machine target
//! is [`MachineTarget`].

mod cli;
mod files;
mod machine_target;
mod maps;

pub use cli::{
    machine_target, parse_touch, prepare, run_cli, run_cli_with, CliArgs, UnavailableTarget,
};
pub use machine_target::MachineTarget;
pub use maps::{
    apply_path_map, normalize_maps, renumber_shmem_inodes, stdout_checkpoints, Checkpoint,
    MAPS_NAME_COLUMN, SHMEM_ZERO_NAME,
};

use std::collections::HashMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use mm::errno::Errno;
use mm::VirtAddr;

use crate::strace::{Arg, Event, Line, Ret, Syscall};

/// The pid given to the events of a trace recorded without `strace -f`
/// (lines with no pid prefix: a single process).
pub const UNPREFIXED_PID: u32 = 1;

/// `MAP_ANONYMOUS` on x86-64.
const MAP_ANONYMOUS: u64 = 0x20;

// ---------------------------------------------------------------------------
// The machine side.

/// Why a target call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetError {
    /// The call failed as a Linux system call fails, with this errno; the
    /// engine compares it with the trace.
    Errno(Errno),
    /// The target cannot perform this call at all (not implemented yet).
    /// The replay stops with [`ReplayError::Unsupported`], except for
    /// `spawn` of a child (its lines are skipped) and `mincore` (noted).
    Unsupported(String),
}

impl From<Errno> for TargetError {
    fn from(e: Errno) -> Self {
        TargetError::Errno(e)
    }
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetError::Errno(e) => write!(f, "-1 {}", e.name()),
            TargetError::Unsupported(msg) => f.write_str(msg),
        }
    }
}

/// How a process comes into being.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spawn {
    /// The first process of the trace (or one whose creation the trace does
    /// not show): an empty address space, normally followed by `execve`.
    Initial,
    /// `fork`, or `clone` without `CLONE_VM`: a copy of the parent's address
    /// space (private mappings copy-on-write, shared ones shared).
    Fork {
        /// The pid that called fork/clone.
        parent: u32,
    },
    /// `vfork`, or `clone`/`clone3` with `CLONE_VM` (threads, posix_spawn):
    /// the child uses the parent's address space itself until it calls
    /// `execve` (which gives it a new one) or exits.
    SharedVm {
        /// The pid that called vfork/clone.
        parent: u32,
    },
}

/// What `execve` needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecRequest {
    /// The path exactly as the program passed it (relative or not): the
    /// string Linux copies to the stack as `AT_EXECFN`.
    pub filename: String,
    /// The host file to load: `filename` resolved against
    /// [`ReplayOptions::cwd`], lexically normalized (`.` and `..` removed,
    /// symlinks not resolved) and rewritten by [`ReplayOptions::path_map`].
    pub host_path: PathBuf,
    /// The argument strings (from the trace).
    pub argv: Vec<String>,
    /// The environment strings (from the trace with `strace -v`, otherwise
    /// [`ReplayOptions::env`]).
    pub envp: Vec<String>,
}

/// The machine side of a replay: processes with address spaces.
///
/// Pids are the trace's. Addresses, lengths and flag bits are passed exactly
/// as the program passed them (Linux x86-64 values); each call must check
/// and round them as Linux does and fail with Linux's errno, since the
/// engine compares results with the trace.
pub trait ReplayTarget {
    /// Creates process `pid`, as `how` says. A child's failure (e.g. fork
    /// not implemented yet) makes the engine skip that child's lines and
    /// list them in the report.
    fn spawn(&mut self, pid: u32, how: Spawn) -> Result<(), TargetError>;

    /// Replaces the address space of `pid` with a new program.
    fn execve(&mut self, pid: u32, exec: &ExecRequest) -> Result<(), TargetError>;

    /// `mmap(addr, len, prot, flags, fd, offset)`. `file` is the host path of
    /// the descriptor's file (after path mapping), or `None` when `flags`
    /// has `MAP_ANONYMOUS` or the trace names no file for the descriptor (a
    /// bad descriptor: Linux returns `EBADF` for a non-anonymous mapping).
    /// Returns the mapping's address.
    #[allow(clippy::too_many_arguments)]
    fn mmap(
        &mut self,
        pid: u32,
        addr: VirtAddr,
        len: u64,
        prot: u64,
        flags: u64,
        file: Option<&str>,
        offset: u64,
    ) -> Result<VirtAddr, TargetError>;

    /// `munmap(addr, len)`.
    fn munmap(&mut self, pid: u32, addr: VirtAddr, len: u64) -> Result<(), TargetError>;

    /// `mprotect(addr, len, prot)`.
    fn mprotect(
        &mut self,
        pid: u32,
        addr: VirtAddr,
        len: u64,
        prot: u64,
    ) -> Result<(), TargetError>;

    /// `mremap(old_addr, old_len, new_len, flags, new_addr)`; `new_addr` is
    /// 0 when strace did not print it (it does only for `MREMAP_FIXED`).
    /// Returns the mapping's new address.
    fn mremap(
        &mut self,
        pid: u32,
        old_addr: VirtAddr,
        old_len: u64,
        new_len: u64,
        flags: u64,
        new_addr: VirtAddr,
    ) -> Result<VirtAddr, TargetError>;

    /// `brk(addr)` (0 for `brk(NULL)`): the new break, or the old one if
    /// the request failed, as Linux's system call returns it.
    fn brk(&mut self, pid: u32, addr: VirtAddr) -> Result<VirtAddr, TargetError>;

    /// `madvise(addr, len, advice)`.
    fn madvise(
        &mut self,
        pid: u32,
        addr: VirtAddr,
        len: u64,
        advice: u64,
    ) -> Result<(), TargetError>;

    /// `msync(addr, len, flags)`.
    fn msync(&mut self, pid: u32, addr: VirtAddr, len: u64, flags: u64) -> Result<(), TargetError>;

    /// `mincore(addr, len, vec)`: one byte per page, bit 0 set if resident.
    /// Only the success or errno is compared with the trace. The default
    /// says it is not supported; the engine then notes the call and goes on.
    fn mincore(&mut self, pid: u32, addr: VirtAddr, len: u64) -> Result<Vec<u8>, TargetError> {
        let _ = (pid, addr, len);
        Err(TargetError::Unsupported(
            "mincore is not implemented".into(),
        ))
    }

    /// The program accesses `[addr, addr+len)` (a [`Touch`]) as its loads,
    /// stores or instruction fetches would: every page the range covers, in
    /// order, through the MMU and the page-fault handler (demand paging,
    /// copy-on-write, stack growth; a write gives a private VMA its
    /// anon_vma, which decides later merges and mremap's pgoff). Returns
    /// the faults it took and the signal it raised, if any. The default
    /// says it is not supported.
    fn touch(
        &mut self,
        pid: u32,
        addr: VirtAddr,
        len: u64,
        access: Access,
    ) -> Result<TouchOutcome, TargetError> {
        let _ = (pid, addr, len, access);
        Err(TargetError::Unsupported(
            "user memory accesses are not implemented".into(),
        ))
    }

    /// The process has ended (`+++ exited` or `+++ killed`): release it.
    fn exit(&mut self, pid: u32);

    /// The process has ended as `status` says (at its `exit_group`, or
    /// when killed): release it and keep the status for its parent's
    /// [`ReplayTarget::wait`]. The default calls [`ReplayTarget::exit`].
    fn exit_with(&mut self, pid: u32, status: &ExitStatus) {
        let _ = status;
        self.exit(pid);
    }

    /// `wait4(who, ..., WNOHANG if nohang)` by `pid`: reaps an exited child
    /// (`who` -1 or 0: any; otherwise that trace pid) and returns its trace
    /// pid and status, or `None` (WNOHANG, no child has exited). The
    /// default says it is not supported; the engine then passes wait calls
    /// over.
    fn wait(
        &mut self,
        pid: u32,
        who: i64,
        nohang: bool,
    ) -> Result<Option<(u32, ExitStatus)>, TargetError> {
        let _ = (pid, who, nohang);
        Err(TargetError::Unsupported("wait is not implemented".into()))
    }

    /// The text of `/proc/PID/maps` of `pid` now.
    fn maps(&mut self, pid: u32) -> String;

    /// The text of another `/proc/PID` file (`smaps`, `stat`, ...) of
    /// `pid` now, if the target has it.
    fn proc_file(&mut self, pid: u32, name: &str) -> Option<String> {
        let _ = (pid, name);
        None
    }

    /// Reads the host file `path` whole into the target's page cache (and,
    /// for an ELF executable, its interpreter), as a host that ran the
    /// program before has it cached ([`ReplayOptions::warm_cache`]). The
    /// default does nothing.
    fn warm(&mut self, path: &str) {
        let _ = path;
    }

    /// `open(path, flags)` of the host path `path` (after path mapping):
    /// the target's descriptor, or `None` if the call succeeds but opens
    /// nothing memory can map (a directory, `/proc`, a device): the engine
    /// then neither tracks the descriptor nor compares the result. The
    /// default says file calls are not supported: the engine then passes
    /// them over and maps files by the path strace printed.
    fn open(&mut self, pid: u32, path: &str, flags: u64) -> Result<Option<i32>, TargetError> {
        let _ = (pid, path, flags);
        Err(TargetError::Unsupported(
            "file calls are not implemented".into(),
        ))
    }

    /// `memfd_create(name)`: the target's descriptor.
    fn memfd_create(&mut self, pid: u32, name: &str) -> Result<i32, TargetError> {
        let _ = (pid, name);
        Err(TargetError::Unsupported(
            "memfd_create is not implemented".into(),
        ))
    }

    /// One call on a descriptor the target gave (see [`FdCall`]): its
    /// result (a byte count, a position, a new descriptor, or 0).
    fn fd_call(&mut self, pid: u32, call: FdCall<'_>) -> Result<u64, TargetError> {
        let _ = (pid, call);
        Err(TargetError::Unsupported(
            "file calls are not implemented".into(),
        ))
    }

    /// `unlink(path)` of a file the replay created (host path).
    fn unlink(&mut self, pid: u32, path: &str) -> Result<(), TargetError> {
        let _ = (pid, path);
        Err(TargetError::Unsupported("unlink is not implemented".into()))
    }

    /// `mmap` of the target's descriptor `fd` (one [`ReplayTarget::open`]
    /// or [`ReplayTarget::memfd_create`] gave), with its open mode and
    /// file: what a trace with its `open` calls replays.
    #[allow(clippy::too_many_arguments)]
    fn mmap_fd(
        &mut self,
        pid: u32,
        addr: VirtAddr,
        len: u64,
        prot: u64,
        flags: u64,
        fd: i32,
        offset: u64,
    ) -> Result<VirtAddr, TargetError> {
        let _ = (pid, addr, len, prot, flags, fd, offset);
        Err(TargetError::Unsupported(
            "mmap of a descriptor is not implemented".into(),
        ))
    }
}

/// A call on one of the target's descriptors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FdCall<'a> {
    /// `close(fd)`.
    Close(i32),
    /// `dup(fd)` (also dup2, dup3, fcntl F_DUPFD): the lowest free
    /// descriptor of the target for the same open file.
    Dup(i32),
    /// `ftruncate(fd, len)`.
    Ftruncate(i32, u64),
    /// `fsync(fd)`, `fdatasync(fd)`.
    Fsync(i32),
    /// `read(fd, .., len)` (`off` None) or `pread64(fd, .., len, off)`:
    /// the file is read through the page cache into a kernel buffer (the
    /// trace does not give the user buffer's address).
    Read {
        /// The descriptor.
        fd: i32,
        /// The offset, for pread.
        off: Option<u64>,
        /// Bytes asked for.
        len: u64,
    },
    /// `write(fd, data)` or `pwrite64(fd, data, off)`, with the bytes the
    /// trace shows (padded with zeros to the count the call returned).
    Write {
        /// The descriptor.
        fd: i32,
        /// The offset, for pwrite.
        off: Option<u64>,
        /// The bytes.
        data: &'a [u8],
    },
    /// `lseek(fd, off, whence)`.
    Lseek(i32, i64, u32),
}

/// How a process ended, as `wait4` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// `exit_group(code)` / `+++ exited with CODE +++`.
    Exited(i32),
    /// `+++ killed by SIGNAL +++`, with the signal's name.
    Killed(String),
}

impl ExitStatus {
    /// As strace prints a wait status:
    /// `{WIFEXITED(s) && WEXITSTATUS(s) == 3}`.
    pub fn strace_text(&self) -> String {
        match self {
            ExitStatus::Exited(c) => format!("{{WIFEXITED(s) && WEXITSTATUS(s) == {c}}}"),
            ExitStatus::Killed(sig) => format!("{{WIFSIGNALED(s) && WTERMSIG(s) == {sig}}}"),
        }
    }

    /// The status in strace's text, if it is one of the two forms above
    /// (a core dump adds `&& WCOREDUMP(s)`, which is ignored).
    pub fn from_strace(text: &str) -> Option<ExitStatus> {
        let t = text.trim().trim_start_matches('{').trim_end_matches('}');
        let value = |key: &str| -> Option<&str> {
            let at = t.find(key)? + key.len();
            let rest = t[at..].trim_start().strip_prefix("==")?.trim_start();
            Some(rest.split([' ', '}']).next().unwrap_or(""))
        };
        if t.starts_with("WIFEXITED") {
            return value("WEXITSTATUS(s)")?
                .parse()
                .ok()
                .map(ExitStatus::Exited);
        }
        if t.starts_with("WIFSIGNALED") {
            return Some(ExitStatus::Killed(value("WTERMSIG(s)")?.to_string()));
        }
        None
    }
}

/// The kind of a user access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A load.
    Read,
    /// A store.
    Write,
    /// An instruction fetch.
    Exec,
}

/// What one [`Touch`] did on the target.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TouchOutcome {
    /// Minor faults it took.
    pub minor: u64,
    /// Major faults (the page had to be read).
    pub major: u64,
    /// The signal the access raised (`SIGSEGV (SEGV_MAPERR) at 0x...`), if
    /// the fault handler could not resolve it.
    pub signal: Option<String>,
}

// ---------------------------------------------------------------------------
// Options, report, errors.

/// How to replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayOptions {
    /// The trace's name, for messages (`FILE:LINE: ...`).
    pub file: String,
    /// Stop at the first call whose result differs from the trace, with
    /// [`ReplayError::Divergence`]. Without it, differences are collected
    /// in [`ReplayReport::mismatches`] and the replay goes on.
    pub check: bool,
    /// The environment (`K=V` strings) for an `execve` whose envp the trace
    /// does not show (recorded without `strace -v`).
    pub env: Vec<String>,
    /// Path prefixes to rewrite, `(from, to)`, first match wins; a prefix
    /// matches whole path components (`/a/b` matches `/a/b` and `/a/b/c`,
    /// not `/a/bc`).
    pub path_map: Vec<(String, String)>,
    /// The directory relative `execve` paths are resolved against (the
    /// directory the trace was recorded from, or its replacement). `None`
    /// passes them on relative.
    pub cwd: Option<PathBuf>,
    /// User accesses the trace does not show, each made right after its
    /// line (see [`Touch`]).
    pub touches: Vec<Touch>,
    /// Start with a warm page cache: every host file the trace executes,
    /// opens or maps is read whole into the target's page cache before its
    /// first use ([`ReplayTarget::warm`]), as on the recording host, where
    /// the programs had run before (so the real kernel took no major
    /// faults). Without it the cache starts cold, as after boot, and the
    /// first fault on each file page is major.
    pub warm_cache: bool,
}

/// An access of the program to its memory, which strace does not record
/// but which decides what memory it has: demand paging, copy-on-write
/// after fork, the growth of a stack, and VMA merges (the first write to a
/// private VMA gives it an anon_vma, and then mremap keeps its pgoff when it
/// moves, where an untouched VMA gets `new_addr >> PAGE_SHIFT`, and Linux
/// stops merging it with VMAs of another anon_vma or a non-contiguous
/// pgoff). A replay that must reproduce them is told about the accesses
/// (from the program's source, or from its own announcements, see
/// `tools/record/progs/touch.h`); everything else replays without them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Touch {
    /// The access happens right after this trace line (its call
    /// completed); `None`: right before the process calls `exit_group`.
    pub after_line: Option<usize>,
    /// The pid (as in the trace) that accesses; `None`: the trace's first
    /// process.
    pub pid: Option<u32>,
    /// The first byte.
    pub addr: VirtAddr,
    /// How many bytes (every page they cover is accessed, in order).
    pub len: u64,
    /// Load, store or instruction fetch.
    pub access: Access,
}

/// A [`Touch`] the replay made, and what it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TouchReport {
    /// The touch.
    pub touch: Touch,
    /// The trace line it was made after (for a touch before exit, the
    /// `exit_group` line).
    pub line: usize,
    /// The pid that made it.
    pub pid: u32,
    /// Its faults and signal; `None` if the process was not live.
    pub outcome: Option<TouchOutcome>,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            file: "<trace>".into(),
            check: false,
            env: Vec::new(),
            path_map: Vec::new(),
            cwd: None,
            touches: Vec::new(),
            warm_cache: false,
        }
    }
}

/// A known cause of a divergence that is not lmm's rules but what a replay
/// of an strace cannot know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hint {
    /// A shared writable file mapping Linux allowed failed with EACCES:
    /// the program opened the file `O_RDWR`, the replay opens it read-only
    /// ([`SHARED_WRITE_HINT`]).
    SharedWritableFile,
}

impl Hint {
    /// The explanation.
    pub fn text(self) -> &'static str {
        match self {
            Hint::SharedWritableFile => SHARED_WRITE_HINT,
        }
    }
}

/// A call whose result differs from the trace's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// The trace's name.
    pub file: String,
    /// The line where the call starts in the trace.
    pub line: usize,
    /// The pid that made the call.
    pub pid: u32,
    /// The call as strace would print it, e.g. `munmap(0x20000000, 4096)`.
    pub call: String,
    /// What the trace has: `0x7ffff7fc0000`, `0` or `-1 ENOMEM`.
    pub expected: String,
    /// What the target returned, in the same form.
    pub got: String,
    /// A likely cause the replay knows of, when the difference may come
    /// from what it cannot reproduce rather than from lmm's rules.
    pub hint: Option<Hint>,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {} returned {} but the trace has {}",
            self.file, self.line, self.call, self.got, self.expected
        )?;
        match &self.hint {
            Some(h) => write!(f, " (likely cause: {})", h.text()),
            None => Ok(()),
        }
    }
}

/// Why a replay stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplayError {
    /// With [`ReplayOptions::check`]: the first call whose result differs.
    Divergence(Divergence),
    /// The target cannot perform a call the replay needs.
    Unsupported {
        /// The trace's name.
        file: String,
        /// The line of the call.
        line: usize,
        /// The call, or what the engine was doing (`start pid 6411`).
        call: String,
        /// The target's explanation.
        msg: String,
    },
    /// A memory call whose arguments the engine cannot read (e.g. a flag
    /// name unknown to the parser's tables).
    BadCall {
        /// The trace's name.
        file: String,
        /// The line of the call.
        line: usize,
        /// What was expected.
        msg: String,
    },
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayError::Divergence(d) => d.fmt(f),
            ReplayError::Unsupported {
                file,
                line,
                call,
                msg,
            } => write!(f, "{file}:{line}: {call}: the target cannot do this: {msg}"),
            ReplayError::BadCall { file, line, msg } => write!(f, "{file}:{line}: {msg}"),
        }
    }
}

impl std::error::Error for ReplayError {}

/// When a process's maps were captured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Capture {
    /// At its `exit_group` call.
    ExitGroup,
    /// At `+++ exited with N +++` (it ended without an `exit_group` line).
    Exited,
    /// At `+++ killed by SIGNAL +++`.
    Killed(String),
    /// At the end of the trace (it was still alive).
    EndOfTrace,
}

/// A process's `/proc/PID/maps` at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapsSnapshot {
    /// When.
    pub at: Capture,
    /// The trace line of that moment (`None` at the end of the trace).
    pub line: Option<usize>,
    /// The maps text, as the target printed it.
    pub text: String,
    /// `/proc/PID/smaps` at the same moment, if the target has it.
    pub smaps: Option<String>,
    /// `/proc/PID/stat` at the same moment, if the target has it.
    pub stat: Option<String>,
}

/// The lines of a process the target could not create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// Why (the target's message, or "its parent was not replayed").
    pub reason: String,
    /// Every trace line of the process (its calls, signals and end).
    pub lines: Vec<usize>,
}

impl Skipped {
    /// The lines as ranges: `57-60, 62`.
    pub fn ranges(&self) -> String {
        let mut out: Vec<String> = Vec::new();
        let mut i = 0;
        while i < self.lines.len() {
            let start = self.lines[i];
            let mut end = start;
            while i + 1 < self.lines.len() && self.lines[i + 1] == end + 1 {
                i += 1;
                end = self.lines[i];
            }
            out.push(if start == end {
                start.to_string()
            } else {
                format!("{start}-{end}")
            });
            i += 1;
        }
        out.join(", ")
    }
}

/// One process of the trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessReport {
    /// The pid in the trace.
    pub pid: u32,
    /// How it was created.
    pub spawn: Spawn,
    /// The line of the `clone`/`fork`/`vfork` that created it, if any.
    pub created_at: Option<usize>,
    /// Its maps when it exited (or at the end of the trace); `None` if it
    /// was skipped.
    pub maps: Option<MapsSnapshot>,
    /// Set if the target could not create it: its lines were not replayed.
    pub skipped: Option<Skipped>,
}

/// What a replay did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Every process, in the order they appeared.
    pub processes: Vec<ProcessReport>,
    /// Calls issued to the target (execve and memory calls).
    pub calls: usize,
    /// Of those, results compared with the trace (calls with a recorded
    /// result).
    pub checked: usize,
    /// Without [`ReplayOptions::check`]: every result that differed.
    pub mismatches: Vec<Divergence>,
    /// System calls outside the replayed set (arch_prctl, wait4, ...),
    /// passed over.
    pub ignored: usize,
    /// Things worth knowing: incomplete execve strings, calls that never
    /// completed, mincore calls the target does not support.
    pub notes: Vec<String>,
    /// Every [`Touch`] made, in order, with its faults.
    pub touches: Vec<TouchReport>,
}

impl ReplayReport {
    /// The last process with this pid.
    pub fn process(&self, pid: u32) -> Option<&ProcessReport> {
        self.processes.iter().rev().find(|p| p.pid == pid)
    }

    /// The maps captured for this pid, if it was replayed.
    pub fn maps_of(&self, pid: u32) -> Option<&str> {
        self.process(pid)?.maps.as_ref().map(|m| m.text.as_str())
    }

    /// Every skipped line, in order.
    pub fn skipped_lines(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .processes
            .iter()
            .filter_map(|p| p.skipped.as_ref())
            .flat_map(|s| s.lines.iter().copied())
            .collect();
        v.sort_unstable();
        v
    }
}

// ---------------------------------------------------------------------------
// The engine.

/// The system calls the engine replays (besides the process calls).
pub const MEMORY_CALLS: &[&str] = &[
    "mmap", "munmap", "mprotect", "mremap", "brk", "madvise", "msync", "mincore",
];

/// Replays `lines` (from [`crate::strace::parse_file`]) on `target`, event by
/// event in completion order. See the module documentation.
pub fn replay(
    lines: &[Line],
    target: &mut dyn ReplayTarget,
    opts: &ReplayOptions,
) -> Result<ReplayReport, ReplayError> {
    replay_with(lines, target, opts, &mut |_, _| {})
}

/// [`replay`], calling `on_line(done, total)` after each of the trace's
/// lines (a progress bar's hook: the trace is parsed whole before the
/// replay, so its length is known).
pub fn replay_with(
    lines: &[Line],
    target: &mut dyn ReplayTarget,
    opts: &ReplayOptions,
    on_line: &mut dyn FnMut(u64, u64),
) -> Result<ReplayReport, ReplayError> {
    let mut e = Engine {
        target,
        opts,
        report: ReplayReport::default(),
        procs: HashMap::new(),
        children: HashMap::new(),
        fds: HashMap::new(),
        files: FilesState::Unknown,
        created: Vec::new(),
        statuses: HashMap::new(),
        warmed: Vec::new(),
    };
    // Where each child comes from, for a child whose first lines complete
    // before its parent's clone returns.
    for l in lines {
        if let Event::Syscall(s) = &l.event {
            if let Some((child, how)) = clone_child(l.pid.unwrap_or(UNPREFIXED_PID), s) {
                e.children.entry(child).or_insert((how, l.line_no));
            }
        }
    }
    let total = lines.len() as u64;
    for (i, l) in lines.iter().enumerate() {
        e.line(l)?;
        e.touches_after(l.line_no)?;
        on_line(i as u64 + 1, total);
    }
    // Processes still alive: their maps as the trace ends.
    for i in 0..e.report.processes.len() {
        let p = &e.report.processes[i];
        let live = matches!(e.procs.get(&p.pid), Some(&(idx, State::Live)) if idx == i);
        if live && p.maps.is_none() {
            let pid = p.pid;
            let snap = e.snapshot(pid, Capture::EndOfTrace, None);
            e.report.processes[i].maps = Some(snap);
        }
    }
    Ok(e.report)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Live,
    /// It called exit_group (the target released it); its `+++ exited`
    /// line is still to come.
    Exiting,
    Skipped,
    Ended,
}

/// Whether the target replays file calls (known at the first one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FilesState {
    Unknown,
    Yes,
    No,
}

/// A descriptor of the trace that the target has too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FdEntry {
    /// The target's descriptor for it.
    fd: i32,
    /// O_CLOEXEC / MFD_CLOEXEC: closed by a successful execve.
    cloexec: bool,
}

struct Engine<'a> {
    target: &'a mut dyn ReplayTarget,
    opts: &'a ReplayOptions,
    report: ReplayReport,
    /// pid -> (index in report.processes, state) of its latest process.
    procs: HashMap<u32, (usize, State)>,
    /// child pid -> (how, line of the clone), from a first pass.
    children: HashMap<u32, (Spawn, usize)>,
    /// pid -> its descriptors that the target has (trace fd -> target fd).
    fds: HashMap<u32, HashMap<i32, FdEntry>>,
    files: FilesState,
    /// Host paths the replay created on the target (O_CREAT), which unlink
    /// then removes.
    created: Vec<String>,
    /// How each process ended, for its parent's wait4.
    statuses: HashMap<u32, ExitStatus>,
    /// Host files already warmed ([`ReplayOptions::warm_cache`]).
    warmed: Vec<String>,
}

/// The child a successful clone/fork/vfork/clone3 created, and how.
fn clone_child(pid: u32, s: &Syscall) -> Option<(u32, Spawn)> {
    let child = u32::try_from(s.ret.value()?).ok().filter(|&c| c != 0)?;
    let shared = match s.name.as_str() {
        "fork" => false,
        "vfork" => true,
        "clone" => s.args.iter().any(|a| match a.plain() {
            Arg::Named { name, value } if name == "flags" => {
                matches!(value.plain(), Arg::Flags(parts) if parts.iter().any(|p| p == "CLONE_VM"))
            }
            _ => false,
        }),
        "clone3" => s.args.first().is_some_and(|a| match a.plain() {
            Arg::Struct(text) => text
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .any(|w| w == "CLONE_VM"),
            _ => false,
        }),
        _ => return None,
    };
    let how = if shared {
        Spawn::SharedVm { parent: pid }
    } else {
        Spawn::Fork { parent: pid }
    };
    Some((child, how))
}

fn parent_of(how: Spawn) -> Option<u32> {
    match how {
        Spawn::Initial => None,
        Spawn::Fork { parent } | Spawn::SharedVm { parent } => Some(parent),
    }
}

/// `MAP_SHARED` on x86-64.
const MAP_SHARED: u64 = 0x01;
/// `PROT_WRITE`.
const PROT_WRITE: u64 = 0x2;

/// What the replay says when a `MAP_SHARED` `PROT_WRITE` file mapping the
/// trace shows succeeding fails with `EACCES`: the likely cause is the
/// read-only open, not lmm's rules.
pub const SHARED_WRITE_HINT: &str =
    "the replay opens mapped files read-only (the trace has no open calls), so a shared \
     writable mapping of a file the program opened O_RDWR cannot be reproduced";

/// The known cause of a difference the replay cannot avoid, if `s` is such
/// a call: a shared writable file mapping (or an mprotect making one
/// writable) that Linux allowed and the read-only file refused.
fn divergence_hint(s: &Syscall, got: &Result<u64, TargetError>) -> Option<Hint> {
    if !matches!(s.ret, Ret::Value(_)) || !matches!(got, Err(TargetError::Errno(Errno::EACCES))) {
        return None;
    }
    let shared_write_file = match s.name.as_str() {
        "mmap" => s.as_mmap().is_some_and(|v| {
            v.flags & MAP_ANONYMOUS == 0
                && v.flags & 0x0f != 0x02
                && v.flags & MAP_SHARED != 0
                && v.prot & PROT_WRITE != 0
                && v.path.is_some()
        }),
        "mprotect" => s.as_mprotect().is_some_and(|v| v.prot & PROT_WRITE != 0),
        _ => false,
    };
    shared_write_file.then_some(Hint::SharedWritableFile)
}

/// Results printed in hex by strace (addresses) rather than decimal.
fn returns_address(name: &str) -> bool {
    matches!(name, "mmap" | "mremap" | "brk")
}

/// Like strace's `%#lx`: hex with `0x`, except 0.
fn fmt_value(name: &str, v: u64) -> String {
    if returns_address(name) && v != 0 {
        format!("{v:#x}")
    } else {
        (v as i64).to_string()
    }
}

fn fmt_ret(name: &str, r: &Ret) -> String {
    match r {
        Ret::Value(v) => fmt_value(name, *v),
        Ret::Error { errno, .. } => format!("-1 {errno}"),
        Ret::Unknown => "?".into(),
    }
}

fn fmt_got(name: &str, r: &Result<u64, TargetError>) -> String {
    match r {
        Ok(v) => fmt_value(name, *v),
        Err(e) => e.to_string(),
    }
}

/// The call as strace prints it (arguments that strace prints in hex, the
/// addresses and mmap's offset, in hex).
pub fn format_call(s: &Syscall) -> String {
    let hex: &[usize] = match s.name.as_str() {
        "mmap" => &[0, 5],
        "mremap" => &[0, 4],
        "mincore" => &[0, 2],
        "munmap" | "mprotect" | "brk" | "madvise" | "msync" => &[0],
        _ => &[],
    };
    let args: Vec<String> = s
        .args
        .iter()
        .enumerate()
        .map(|(i, a)| fmt_arg(a, hex.contains(&i)))
        .collect();
    format!("{}({})", s.name, args.join(", "))
}

fn fmt_arg(a: &Arg, hex: bool) -> String {
    match a {
        Arg::Int(v) if hex && *v > 0 => format!("{v:#x}"),
        Arg::Int(v) => v.to_string(),
        Arg::Flags(parts) => parts.join("|"),
        Arg::Fd { fd, path } => format!("{fd}<{path}>"),
        Arg::Str(s) => format!("{s:?}"),
        Arg::TruncatedStr(s) => format!("{s:?}..."),
        Arg::Array(items) => {
            let v: Vec<String> = items.iter().map(|x| fmt_arg(x, false)).collect();
            format!("[{}]", v.join(", "))
        }
        Arg::More => "...".into(),
        Arg::Null => "NULL".into(),
        Arg::Named { name, value } => format!("{name}={}", fmt_arg(value, hex)),
        // strace prints a value it annotates (unknown advice, envp's
        // address) in hex.
        Arg::Annotated { arg, comment } => format!("{} /* {comment} */", fmt_arg(arg, true)),
        Arg::Struct(s) | Arg::Other(s) => s.clone(),
    }
}

/// True if strace cut the argument short (a string with `...`, or an array
/// with `...` in place of its last elements).
fn cut_short(a: &Arg) -> bool {
    match a.plain() {
        Arg::TruncatedStr(_) | Arg::More => true,
        Arg::Array(items) => items.iter().any(cut_short),
        _ => false,
    }
}

/// `path` with `.` and `..` components removed lexically.
pub(crate) fn normalize_lexically(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

impl Engine<'_> {
    fn file(&self) -> String {
        self.opts.file.clone()
    }

    /// The pid a [`Touch`] without one stands for: the trace's first process.
    fn touch_pid(&self, t: &Touch) -> Option<u32> {
        t.pid
            .or_else(|| self.report.processes.first().map(|p| p.pid))
    }

    /// Makes the [`Touch`]es placed after `line` on live processes.
    fn touches_after(&mut self, line: usize) -> Result<(), ReplayError> {
        let opts = self.opts;
        for t in opts.touches.iter().filter(|t| t.after_line == Some(line)) {
            let Some(pid) = self.touch_pid(t) else {
                continue;
            };
            self.make_touch(t, pid, line)?;
        }
        Ok(())
    }

    /// Makes the [`Touch`]es of `pid` placed before its exit_group (`line`).
    fn touches_before_exit(&mut self, pid: u32, line: usize) -> Result<(), ReplayError> {
        let opts = self.opts;
        for t in opts.touches.iter().filter(|t| t.after_line.is_none()) {
            if self.touch_pid(t) == Some(pid) {
                self.make_touch(t, pid, line)?;
            }
        }
        Ok(())
    }

    fn make_touch(&mut self, t: &Touch, pid: u32, line: usize) -> Result<(), ReplayError> {
        let mut rep = TouchReport {
            touch: t.clone(),
            line,
            pid,
            outcome: None,
        };
        if matches!(self.procs.get(&pid), Some((_, State::Live))) {
            match self.target.touch(pid, t.addr, t.len, t.access) {
                Ok(o) => {
                    if let Some(sig) = &o.signal {
                        self.report.notes.push(format!(
                            "{}:{line}: {} by pid {pid}: {sig}",
                            self.opts.file,
                            touch_text(t)
                        ));
                    }
                    rep.outcome = Some(o);
                }
                Err(TargetError::Unsupported(msg)) => {
                    return Err(ReplayError::Unsupported {
                        file: self.file(),
                        line,
                        call: touch_text(t),
                        msg,
                    })
                }
                Err(TargetError::Errno(e)) => self.report.notes.push(format!(
                    "{}:{line}: {} by pid {pid} failed: {}",
                    self.opts.file,
                    touch_text(t),
                    e.name()
                )),
            }
        }
        self.report.touches.push(rep);
        Ok(())
    }

    fn line(&mut self, l: &Line) -> Result<(), ReplayError> {
        let pid = l.pid.unwrap_or(UNPREFIXED_PID);
        let idx = self.ensure(pid, l.line_no)?;
        if self.procs[&pid].1 == State::Skipped {
            if let Some(s) = self.report.processes[idx].skipped.as_mut() {
                s.lines.push(l.line_no);
            }
            return Ok(());
        }
        match &l.event {
            Event::Syscall(s) => self.syscall(pid, l.line_no, s),
            Event::Exited { code } => {
                self.end(
                    pid,
                    idx,
                    Capture::Exited,
                    ExitStatus::Exited(*code),
                    l.line_no,
                );
                Ok(())
            }
            Event::Killed { signal, .. } => {
                self.end(
                    pid,
                    idx,
                    Capture::Killed(signal.clone()),
                    ExitStatus::Killed(signal.clone()),
                    l.line_no,
                );
                Ok(())
            }
            Event::Superseded { by_pid } => {
                // The thread is gone; its address space lives on in the
                // thread that called execve (simplification: not released).
                self.procs.insert(pid, (idx, State::Ended));
                self.report.notes.push(format!(
                    "{}:{}: pid {pid} superseded by execve in pid {by_pid}",
                    self.opts.file, l.line_no
                ));
                Ok(())
            }
            Event::Unfinished { name, partial_args } if name == "exit_group" => {
                // exit_group never returns: strace may leave it unfinished
                // when another process's line comes first.
                let code = partial_args.trim().parse().unwrap_or(0);
                self.exit_group(pid, idx, code, l.line_no)
            }
            Event::Unfinished { name, .. } | Event::Resumed { name, .. } => {
                if name == "execve" || MEMORY_CALLS.contains(&name.as_str()) {
                    self.report.notes.push(format!(
                        "{}:{}: {name} by pid {pid} is only half in the trace; not replayed",
                        self.opts.file, l.line_no
                    ));
                }
                Ok(())
            }
            Event::Signal { .. } | Event::Stopped { .. } => Ok(()),
        }
    }

    /// The report index of `pid`'s process, creating it on its first line.
    fn ensure(&mut self, pid: u32, line_no: usize) -> Result<usize, ReplayError> {
        match self.procs.get(&pid) {
            Some(&(idx, State::Live | State::Skipped | State::Exiting)) => Ok(idx),
            _ => {
                let (how, created_at) = match self.children.get(&pid) {
                    // A child whose clone is in the trace, if it has not
                    // ended already (else this pid was reused).
                    Some(&(how, at)) if !self.procs.contains_key(&pid) => (how, Some(at)),
                    _ => (Spawn::Initial, None),
                };
                self.create(pid, how, created_at, line_no)
            }
        }
    }

    fn create(
        &mut self,
        pid: u32,
        how: Spawn,
        created_at: Option<usize>,
        line_no: usize,
    ) -> Result<usize, ReplayError> {
        let idx = self.report.processes.len();
        let mut skipped = None;
        let parent_skipped =
            parent_of(how).is_some_and(|p| matches!(self.procs.get(&p), Some((_, State::Skipped))));
        if parent_skipped {
            skipped = Some(Skipped {
                reason: format!(
                    "its parent, pid {}, was not replayed",
                    parent_of(how).unwrap_or_default()
                ),
                lines: Vec::new(),
            });
        } else if let Err(err) = self.target.spawn(pid, how) {
            if how == Spawn::Initial {
                return Err(ReplayError::Unsupported {
                    file: self.file(),
                    line: line_no,
                    call: format!("start pid {pid}"),
                    msg: err.to_string(),
                });
            }
            if let (TargetError::Errno(_), true) = (&err, self.opts.check) {
                // The trace's clone succeeded; the target's failed (ENOMEM,
                // EAGAIN): a divergence, not something the target lacks.
                return Err(ReplayError::Divergence(Divergence {
                    file: self.file(),
                    line: created_at.unwrap_or(line_no),
                    pid: parent_of(how).unwrap_or_default(),
                    call: format!("the clone that created pid {pid}"),
                    expected: pid.to_string(),
                    got: err.to_string(),
                    hint: None,
                }));
            }
            skipped = Some(Skipped {
                reason: format!("the target cannot create it: {err}"),
                lines: Vec::new(),
            });
        }
        let state = if skipped.is_some() {
            State::Skipped
        } else {
            State::Live
        };
        // A child starts with a copy of its parent's descriptors (CLONE_FILES
        // children share them; simplification: copied too).
        let fds = match parent_of(how) {
            Some(p) if state == State::Live => self.fds.get(&p).cloned().unwrap_or_default(),
            _ => HashMap::new(),
        };
        self.fds.insert(pid, fds);
        self.report.processes.push(ProcessReport {
            pid,
            spawn: how,
            created_at,
            maps: None,
            skipped,
        });
        self.procs.insert(pid, (idx, state));
        Ok(idx)
    }

    /// The target's files of `pid` at one moment.
    fn snapshot(&mut self, pid: u32, at: Capture, line: Option<usize>) -> MapsSnapshot {
        MapsSnapshot {
            at,
            line,
            text: self.target.maps(pid),
            smaps: self.target.proc_file(pid, "smaps"),
            stat: self.target.proc_file(pid, "stat"),
        }
    }

    fn capture(&mut self, pid: u32, idx: usize, at: Capture, line: usize) {
        if self.report.processes[idx].maps.is_none() {
            let snap = self.snapshot(pid, at, Some(line));
            self.report.processes[idx].maps = Some(snap);
        }
    }

    /// `exit_group(code)`: the announced touches before it, the files at
    /// that moment, and the end of the process on the target (Linux tears
    /// the address space down in exit_group, before `+++ exited`).
    fn exit_group(
        &mut self,
        pid: u32,
        idx: usize,
        code: i32,
        line: usize,
    ) -> Result<(), ReplayError> {
        if self.procs.get(&pid).map(|p| p.1) != Some(State::Live) {
            return Ok(());
        }
        self.touches_before_exit(pid, line)?;
        self.capture(pid, idx, Capture::ExitGroup, line);
        let status = ExitStatus::Exited(code);
        self.target.exit_with(pid, &status);
        self.statuses.insert(pid, status);
        self.fds.remove(&pid);
        self.procs.insert(pid, (idx, State::Exiting));
        Ok(())
    }

    /// `+++ exited` or `+++ killed`: the end of a process that did not call
    /// exit_group (or the confirmation of one that did).
    fn end(&mut self, pid: u32, idx: usize, at: Capture, status: ExitStatus, line: usize) {
        if self.procs.get(&pid).map(|p| p.1) == Some(State::Live) {
            self.capture(pid, idx, at, line);
            self.target.exit_with(pid, &status);
            self.statuses.insert(pid, status);
            self.fds.remove(&pid);
        }
        self.procs.insert(pid, (idx, State::Ended));
    }

    fn host_path(&self, path: &str) -> String {
        apply_path_map(path, &self.opts.path_map)
    }

    /// With [`ReplayOptions::warm_cache`], the host file `path` is in the
    /// target's page cache before its first use.
    pub(crate) fn warm(&mut self, path: &str) {
        if self.opts.warm_cache && !self.warmed.iter().any(|w| w == path) {
            self.warmed.push(path.to_string());
            self.target.warm(path);
        }
    }

    fn bad(&self, line: usize, s: &Syscall) -> ReplayError {
        ReplayError::BadCall {
            file: self.file(),
            line,
            msg: format!(
                "expected {} arguments that lmm can read, got {}",
                s.name,
                format_call(s)
            ),
        }
    }

    fn syscall(&mut self, pid: u32, line: usize, s: &Syscall) -> Result<(), ReplayError> {
        let name = s.name.as_str();
        let got: Result<u64, TargetError> = match name {
            "execve" => {
                let v = s.as_execve().ok_or_else(|| self.bad(line, s))?;
                let cut = s.args.iter().any(cut_short);
                let exec = self.exec_request(line, v, cut);
                self.warm(&exec.host_path.to_string_lossy());
                let r = self.target.execve(pid, &exec).map(|()| 0);
                if r.is_ok() {
                    self.close_on_exec(pid);
                }
                r
            }
            "mmap" => {
                let v = s.as_mmap().ok_or_else(|| self.bad(line, s))?;
                let tracked = self.target_fd(pid, v.fd);
                match tracked {
                    Some(fd) if v.flags & MAP_ANONYMOUS == 0 => self
                        .target
                        .mmap_fd(pid, v.addr, v.len, v.prot, v.flags, fd, v.offset)
                        .map(|a| a.0),
                    _ => {
                        let file = if v.flags & MAP_ANONYMOUS != 0 {
                            None
                        } else {
                            v.path.as_deref().map(|p| self.host_path(p))
                        };
                        if let Some(f) = &file {
                            self.warm(f);
                        }
                        self.target
                            .mmap(
                                pid,
                                v.addr,
                                v.len,
                                v.prot,
                                v.flags,
                                file.as_deref(),
                                v.offset,
                            )
                            .map(|a| a.0)
                    }
                }
            }
            "munmap" => {
                let v = s.as_munmap().ok_or_else(|| self.bad(line, s))?;
                self.target.munmap(pid, v.addr, v.len).map(|()| 0)
            }
            "mprotect" => {
                let v = s.as_mprotect().ok_or_else(|| self.bad(line, s))?;
                self.target.mprotect(pid, v.addr, v.len, v.prot).map(|()| 0)
            }
            "mremap" => {
                let v = s.as_mremap().ok_or_else(|| self.bad(line, s))?;
                let new_addr = v.new_addr.unwrap_or(VirtAddr(0));
                self.target
                    .mremap(pid, v.old_addr, v.old_len, v.new_len, v.flags, new_addr)
                    .map(|a| a.0)
            }
            "brk" => {
                let v = s.as_brk().ok_or_else(|| self.bad(line, s))?;
                self.target.brk(pid, v.addr).map(|a| a.0)
            }
            "madvise" => {
                let v = s.as_madvise().ok_or_else(|| self.bad(line, s))?;
                self.target
                    .madvise(pid, v.addr, v.len, v.advice)
                    .map(|()| 0)
            }
            "msync" => {
                let v = s.as_msync().ok_or_else(|| self.bad(line, s))?;
                self.target.msync(pid, v.addr, v.len, v.flags).map(|()| 0)
            }
            "mincore" => {
                let addr = s.args.first().and_then(Arg::as_u64);
                let len = s.args.get(1).and_then(Arg::as_u64);
                let (Some(addr), Some(len)) = (addr, len) else {
                    return Err(self.bad(line, s));
                };
                match self.target.mincore(pid, VirtAddr(addr), len) {
                    Err(TargetError::Unsupported(msg)) => {
                        self.report.calls += 1;
                        self.report.notes.push(format!(
                            "{}:{line}: {} not replayed: {msg}",
                            self.opts.file,
                            format_call(s)
                        ));
                        return Ok(());
                    }
                    other => other.map(|_| 0),
                }
            }
            "clone" | "clone3" | "fork" | "vfork" => {
                if let Some((child, how)) = clone_child(pid, s) {
                    let known = matches!(
                        self.procs.get(&child),
                        Some((_, State::Live | State::Skipped | State::Exiting))
                    );
                    if !known {
                        self.create(child, how, Some(line), line)?;
                    }
                }
                return Ok(());
            }
            "exit_group" => {
                let Some(&(idx, _)) = self.procs.get(&pid) else {
                    return Ok(());
                };
                let code = s.args.first().and_then(Arg::as_i64).unwrap_or(0) as i32;
                return self.exit_group(pid, idx, code, line);
            }
            "wait4" => return self.wait4(pid, line, s),
            _ => match self.file_call(pid, line, s)? {
                Some(got) => got,
                None => {
                    self.report.ignored += 1;
                    return Ok(());
                }
            },
        };
        self.report.calls += 1;
        self.compare(pid, line, s, got)
    }

    /// wait4(who, status, options, rusage): the target reaps the child; the
    /// trace pid it returns and the child's status are compared with the
    /// trace's.
    fn wait4(&mut self, pid: u32, line: usize, s: &Syscall) -> Result<(), ReplayError> {
        let who = s.args.first().and_then(Arg::as_i64);
        let options = s
            .args
            .get(2)
            .and_then(|a| crate::strace::flags_value(a, crate::strace::WAIT_OPTIONS));
        let (Some(who), Some(options)) = (who, options) else {
            return Err(self.bad(line, s));
        };
        let nohang = options & 1 != 0;
        let got = match self.target.wait(pid, who, nohang) {
            Err(TargetError::Unsupported(_)) => {
                self.report.ignored += 1;
                return Ok(());
            }
            Err(e) => Err(e),
            Ok(None) => Ok(0),
            Ok(Some((child, status))) => {
                let want = s.args.get(1).and_then(|a| match a.plain() {
                    Arg::Array(v) => match v.first().map(Arg::plain) {
                        Some(Arg::Struct(t)) => ExitStatus::from_strace(t),
                        _ => None,
                    },
                    _ => None,
                });
                if s.ret.value() == Some(u64::from(child)) {
                    if let Some(want) = want.filter(|w| *w != status) {
                        self.report.calls += 1;
                        self.report.checked += 1;
                        return self.diverge(Divergence {
                            file: self.file(),
                            line,
                            pid,
                            call: format_call(s),
                            expected: format!("{child} with status {}", want.strace_text()),
                            got: format!("{child} with status {}", status.strace_text()),
                            hint: None,
                        });
                    }
                }
                Ok(u64::from(child))
            }
        };
        self.report.calls += 1;
        self.compare(pid, line, s, got)
    }

    fn exec_request(
        &mut self,
        line: usize,
        v: crate::strace::ExecveArgs,
        cut: bool,
    ) -> ExecRequest {
        let file = &self.opts.file;
        if cut {
            self.report.notes.push(format!(
                "{file}:{line}: execve strings were cut short by strace (record with -s 4096); \
                 the new stack will differ"
            ));
        }
        let argv = v.argv.unwrap_or_else(|| {
            self.report.notes.push(format!(
                "{file}:{line}: execve without an argv array; exec with an empty argv"
            ));
            Vec::new()
        });
        let envp = match v.envp {
            Some(e) => e,
            None => {
                if self.opts.env.is_empty() {
                    self.report.notes.push(format!(
                        "{file}:{line}: the trace has no envp (record with strace -v) and no \
                         environment was given (--env K=V): exec with an empty environment"
                    ));
                }
                self.opts.env.clone()
            }
        };
        let host_path = PathBuf::from(self.resolve(&v.path, None));
        ExecRequest {
            filename: v.path,
            host_path,
            argv,
            envp,
        }
    }

    /// A path of the trace as a host path: a relative one joined to `dir`
    /// (the directory strace printed for AT_FDCWD) or
    /// [`ReplayOptions::cwd`], lexically normalized, then path-mapped.
    fn resolve(&self, path: &str, dir: Option<&str>) -> String {
        let p = Path::new(path);
        let joined = match (dir, &self.opts.cwd) {
            (_, _) if p.is_absolute() => p.to_path_buf(),
            (Some(d), _) => PathBuf::from(self.host_path(d)).join(p),
            (None, Some(cwd)) => cwd.join(p),
            (None, None) => p.to_path_buf(),
        };
        let normalized = if joined.is_absolute() {
            normalize_lexically(&joined)
        } else {
            joined
        };
        self.host_path(&normalized.to_string_lossy())
    }

    fn compare(
        &mut self,
        pid: u32,
        line: usize,
        s: &Syscall,
        got: Result<u64, TargetError>,
    ) -> Result<(), ReplayError> {
        if let Err(TargetError::Unsupported(msg)) = &got {
            return Err(ReplayError::Unsupported {
                file: self.file(),
                line,
                call: format_call(s),
                msg: msg.clone(),
            });
        }
        let same = match (&s.ret, &got) {
            (Ret::Unknown, _) => return Ok(()),
            (Ret::Value(want), Ok(v)) => want == v,
            // Compared by name, so errnos lmm does not model still compare
            // (and differ).
            (Ret::Error { errno, .. }, Err(TargetError::Errno(e))) => e.name() == errno,
            _ => false,
        };
        self.report.checked += 1;
        if same {
            return Ok(());
        }
        self.diverge(Divergence {
            file: self.file(),
            line,
            pid,
            call: format_call(s),
            expected: fmt_ret(&s.name, &s.ret),
            got: fmt_got(&s.name, &got),
            hint: divergence_hint(s, &got),
        })
    }

    fn diverge(&mut self, d: Divergence) -> Result<(), ReplayError> {
        if self.opts.check {
            Err(ReplayError::Divergence(d))
        } else {
            self.report.mismatches.push(d);
            Ok(())
        }
    }
}

/// A touch as the report prints it: `write 0x1000..0x3000`.
fn touch_text(t: &Touch) -> String {
    let what = match t.access {
        Access::Read => "read",
        Access::Write => "write",
        Access::Exec => "fetch",
    };
    format!(
        "{what} {:#x}..{:#x}",
        t.addr.0,
        t.addr.0.saturating_add(t.len.max(1))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_join_consecutive_lines() {
        let s = Skipped {
            reason: String::new(),
            lines: vec![3, 4, 5, 7, 9, 10],
        };
        assert_eq!(s.ranges(), "3-5, 7, 9-10");
    }

    #[test]
    fn lexical_normalization() {
        assert_eq!(
            normalize_lexically(Path::new("/r/./tests/../bin/x")),
            PathBuf::from("/r/bin/x")
        );
    }
}
