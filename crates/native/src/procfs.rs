//! The program's view of /proc: the files lmm renders are lmm's, not the
//! host's (fs/proc in Linux). When the program opens `/proc/self/maps`,
//! `/proc/<its pid>/status`, `/proc/meminfo` and the like, lmm renders the
//! file from its own state, writes it into a memfd of its own, and lets the
//! open run in the stub on `/proc/<lmm's host pid>/fd/<memfd>` instead (a
//! path lmm puts in the trampoline page's scratch area): the program gets
//! a descriptor of an ordinary file holding lmm's text.
//!
//! - Per-process files (`maps`, `smaps`, `smaps_rollup`, `status`, `stat`,
//!   `statm`, `pagemap`, `oom_score`, `oom_score_adj`, `oom_adj`) of
//!   `self` and lmm's pids, and the same per thread under
//!   `/proc/PID/task/TID/` and `/proc/thread-self/` (the caller's: `stat`
//!   and `status` are the thread's, [`Machine::proc_tid`]). Other files of
//!   the program's own pid (`cmdline`, `fd/...`) are the host's files of
//!   the stub (`/proc/self/...`), and of its threads the stub's host
//!   thread's (`/proc/self/task/<host tid>/comm`, which
//!   pthread_setname_np opens for writing); a numeric pid lmm has no
//!   process for, or a tid not of the process, is ENOENT, as in lmm's
//!   world it does not exist. `/proc/PID/task` itself opens a directory
//!   lmm makes with one entry per tid (`TaskDirs`).
//! - System files lmm renders: `meminfo`, `vmstat`, `buddyinfo`,
//!   `zoneinfo`, `pagetypeinfo`, `slabinfo`, `vmallocinfo`, `swaps`,
//!   `iomem`. Any other path goes to the host untouched.
//! - `readlink` of `/proc/self/exe` is the path lmm exec'd
//!   (`mm->exe_file`); of `/proc/self` lmm's pid, of `/proc/thread-self`
//!   `PID/task/TID` with lmm's pid and the calling thread's tid.
//!
//! Simplifications: the text is taken whole at the open, where Linux's
//! seq_file renders it at the first read (and a page at a time for maps):
//! a program that opens, changes its mappings and then reads sees the state
//! of the open. Only read-only opens of absolute paths are lmm's (a write
//! open of a file lmm renders, or a path relative to a directory
//! descriptor, goes to the host).
//! The file's fstat is a memfd's (size = the text's length, where Linux
//! says 0). pagemap is a sparse file as large as the user address space,
//! with the entries of every VMA written at the open.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use machine::Machine;
use mm::types::PAGE_SIZE;

use crate::ptrace::{SCRATCH, TRAMPOLINE};
use crate::{Run, TASK_SIZE};

// The per-process files lmm renders (`Machine::proc_pid`).
use machine::process::PROC_PID_FILES as PID_FILES;

// The system-wide files lmm renders (`Machine::proc`; its debugfs
// memblock files have a `/` in their name, so no /proc path names them).
use machine::machine::PROC_FILES as SYSTEM_FILES;

/// What a /proc path the program names is in lmm's world.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// File `file` of lmm's process `pid`, rendered by lmm.
    Pid(u32, &'static str),
    /// File `file` of thread `tid` of lmm's process `pid`
    /// (/proc/PID/task/TID/FILE), rendered by lmm.
    Task(u32, u32, &'static str),
    /// The directory /proc/PID/task of lmm's process `pid` (its threads).
    TaskDir(u32),
    /// A system-wide file rendered by lmm.
    System(&'static str),
    /// The host's file of the stub: open this path instead.
    Stub(String),
    /// The host's file (path under the thread's directory, possibly
    /// empty) of the stub's host thread that runs lmm's thread `tid`.
    StubThread(u32, String),
    /// A pid (or a tid of the process) lmm has none of: ENOENT.
    NoSuchProcess,
}

/// What `path` (absolute; `..` and `.` are not resolved) is for thread
/// `tid` of a program whose pid in lmm is `pid`, with `threads` giving the
/// live threads of an lmm process (`None`: no such process); `None` if the
/// path is not one lmm renders or redirects. `/proc/thread-self/` is
/// `/proc/PID/task/TID/` of the caller.
pub fn resolve(
    path: &str,
    pid: u32,
    tid: u32,
    threads: impl Fn(u32) -> Option<Vec<u32>>,
) -> Option<Target> {
    let rest = path.strip_prefix("/proc/")?.trim_start_matches('/');
    let mut parts = rest.split('/').filter(|s| !s.is_empty());
    let first = parts.next()?;
    let tail: Vec<&str> = parts.collect();
    if tail.is_empty() {
        return SYSTEM_FILES
            .iter()
            .find(|&&f| f == first)
            .map(|&f| Target::System(f));
    }
    let (who, thread) = match first {
        "self" => (pid, None),
        "thread-self" => (pid, Some(tid)),
        n => {
            let n: u32 = n.parse().ok()?;
            if threads(n).is_none() {
                return Some(Target::NoSuchProcess);
            }
            (n, None)
        }
    };
    let (thread, tail) = match (thread, &tail[..]) {
        (None, ["task"]) => return Some(Target::TaskDir(who)),
        (None, ["task", t, rest @ ..]) => {
            let t: u32 = t.parse().ok()?;
            if !threads(who).is_some_and(|ts| ts.contains(&t)) {
                return Some(Target::NoSuchProcess);
            }
            (Some(t), rest)
        }
        (thread, tail) => (thread, tail),
    };
    if let [file] = tail {
        if let Some(&f) = PID_FILES.iter().find(|&&f| f == *file) {
            return Some(match thread {
                Some(t) => Target::Task(who, t, f),
                None => Target::Pid(who, f),
            });
        }
    }
    // Not rendered by lmm: the stub's own file when it is the program's,
    // as the host has it (the host's /proc/self is the stub).
    if who != pid {
        return None;
    }
    match thread {
        Some(t) => Some(Target::StubThread(t, tail.join("/"))),
        None if first == "self" => None,
        None => Some(Target::Stub(format!("/proc/self/{}", tail.join("/")))),
    }
}

/// Directories lmm makes to stand for /proc/PID/task (Linux's
/// `proc_task_readdir`): one empty directory per live thread of the
/// process, named by lmm's tid, in a directory of lmm's own under the
/// temporary directory, brought up to date at each open and removed at
/// the end of the run. A program listing its threads (opendir and
/// getdents64: `ls /proc/self/task`, python's `os.listdir`) reads lmm's
/// tids. Simplification: the entries are plain directories (their stat
/// is the temporary directory's, and a path relative to them is not
/// lmm's /proc); a leader that called exit(2) while its threads run is
/// not listed, where Linux lists its zombie.
#[derive(Default)]
pub(crate) struct TaskDirs {
    /// The directory holding one `PID/task` per process listed so far.
    root: Option<std::path::PathBuf>,
}

impl TaskDirs {
    /// The path of the directory standing for /proc/`pid`/task, whose
    /// entries are now `tids`.
    fn sync(&mut self, pid: u32, tids: &[u32]) -> Result<String, String> {
        let root = self.root.get_or_insert_with(|| {
            std::env::temp_dir().join(format!("lmm-native-proc-{}", std::process::id()))
        });
        let dir = root.join(pid.to_string()).join("task");
        let io = |e: io::Error| format!("lmm native: {}: {e}", dir.display());
        std::fs::create_dir_all(&dir).map_err(io)?;
        for e in std::fs::read_dir(&dir).map_err(io)?.flatten() {
            let live = e
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|t| tids.contains(&t));
            if !live {
                std::fs::remove_dir(e.path()).map_err(io)?;
            }
        }
        for t in tids {
            match std::fs::create_dir(dir.join(t.to_string())) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(io(e)),
                _ => {}
            }
        }
        Ok(dir.to_string_lossy().into_owned())
    }
}

impl Drop for TaskDirs {
    fn drop(&mut self) {
        if let Some(root) = &self.root {
            let _ = std::fs::remove_dir_all(root);
        }
    }
}

/// The target of `readlink(path)` in lmm's world, for the links lmm
/// knows: `exe` of the program (the path lmm exec'd), `/proc/self` (lmm's
/// pid) and `/proc/thread-self` (`PID/task/TID`, `tid` the caller's);
/// `None` for any other path.
pub fn link(m: &Machine, path: &str, pid: u32, tid: u32) -> Option<String> {
    let rest = path.strip_prefix("/proc/")?.trim_end_matches('/');
    match rest {
        "self" => return Some(pid.to_string()),
        "thread-self" => return Some(format!("{pid}/task/{tid}")),
        _ => {}
    }
    let (first, file) = rest.split_once('/')?;
    if file != "exe" {
        return None;
    }
    let who = match first {
        "self" | "thread-self" => pid,
        n => n.parse().ok()?,
    };
    m.process(who)?.exec.as_ref().map(|e| e.exe_path.clone())
}

/// A memfd holding `target`'s content as lmm renders it now.
fn render(m: &mut Machine, target: &Target) -> Result<OwnedFd, String> {
    let fd = memfd().map_err(|e| format!("lmm native: memfd for /proc: {e}"))?;
    let f = std::fs::File::from(fd);
    use std::os::unix::fs::FileExt;
    let io = |e: io::Error| format!("lmm native: writing a /proc file: {e}");
    match *target {
        Target::Pid(pid, "pagemap") | Target::Task(pid, _, "pagemap") => {
            f.set_len((TASK_SIZE / PAGE_SIZE) * 8).map_err(io)?;
            for (off, bytes) in m.pagemap_binary(pid)? {
                f.write_all_at(&bytes, off).map_err(io)?;
            }
        }
        Target::Pid(pid, file) => f
            .write_all_at(m.proc_pid(pid, file)?.as_bytes(), 0)
            .map_err(io)?,
        Target::Task(pid, tid, file) => f
            .write_all_at(m.proc_tid(pid, tid, file)?.as_bytes(), 0)
            .map_err(io)?,
        Target::System(name) => f.write_all_at(m.proc(name)?.as_bytes(), 0).map_err(io)?,
        Target::TaskDir(_) | Target::Stub(_) | Target::StubThread(..) | Target::NoSuchProcess => {}
    }
    Ok(OwnedFd::from(f))
}

/// A new memfd, close-on-exec.
fn memfd() -> io::Result<OwnedFd> {
    // SAFETY: memfd_create with a NUL-terminated name; the descriptor it
    // returns is new and owned by nobody else.
    let fd = unsafe { libc::memfd_create(c"lmm-proc".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a descriptor memfd_create just returned.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl Run<'_> {
    /// The path argument of system call `nr` (`open`, `openat`,
    /// `readlink`, `readlinkat`) read from the program's memory (already
    /// faulted in), with the index of its argument; `None` for other calls,
    /// a relative path or one that cannot be read.
    fn proc_path(&mut self, nr: u64, a: [u64; 6]) -> Option<(usize, String)> {
        let i = match nr {
            2 | 89 => 0,
            257 | 267 => 1,
            _ => return None,
        };
        let va = a[i];
        let mut bytes = Vec::new();
        while bytes.len() < 4096 {
            let chunk = (4096 - ((va + bytes.len() as u64) & 4095)) as usize;
            let b = self
                .m
                .read_user(self.cur.pid, va + bytes.len() as u64, chunk)
                .ok()?;
            match b.iter().position(|&c| c == 0) {
                Some(n) => {
                    bytes.extend_from_slice(&b[..n]);
                    break;
                }
                None => bytes.extend_from_slice(&b),
            }
        }
        let path = String::from_utf8(bytes).ok()?;
        path.starts_with("/proc").then_some((i, path))
    }

    /// Serves an `open`/`openat` of a /proc file lmm renders and a
    /// `readlink`/`readlinkat` of a link lmm knows, whose buffers are
    /// present; `None` if the call is not lmm's to serve (it then runs on
    /// the host as it is), else the call's result.
    pub(crate) fn proc_call(&mut self, nr: u64, a: [u64; 6]) -> Result<Option<i64>, String> {
        let Some((i, path)) = self.proc_path(nr, a) else {
            return Ok(None);
        };
        if nr == 89 || nr == 267 {
            let (buf, size) = (a[i + 1], a[i + 2] as i64);
            let Some(target) = link(self.m, &path, self.cur.pid, self.cur.tid) else {
                return Ok(None);
            };
            if size <= 0 {
                return Ok(Some(-i64::from(libc::EINVAL)));
            }
            let n = target.len().min(size as usize);
            return Ok(Some(
                match self
                    .m
                    .write_user(self.cur.pid, buf, &target.as_bytes()[..n])
                {
                    Ok(_) => n as i64,
                    Err(_) => -i64::from(libc::EFAULT),
                },
            ));
        }
        let flag_arg = if nr == 2 { 1 } else { 2 };
        let m = &*self.m;
        let threads = |n| m.process(n).map(|p| p.threads.clone());
        let Some(target) = resolve(&path, self.cur.pid, self.cur.tid, threads) else {
            return Ok(None);
        };
        let host_file = matches!(target, Target::Stub(_) | Target::StubThread(..));
        if !host_file && a[flag_arg] & libc::O_ACCMODE as u64 != libc::O_RDONLY as u64 {
            return Ok(None);
        }
        let enoent = Ok(Some(-i64::from(libc::ENOENT)));
        let (new_path, memfd) = match &target {
            Target::NoSuchProcess => return enoent,
            Target::Stub(p) => (p.clone(), None),
            Target::StubThread(t, rest) => match self.host_tid(*t) {
                Some(h) => (format!("/proc/self/task/{h}/{rest}"), None),
                None => return enoent,
            },
            Target::TaskDir(who) => {
                let tids = self.m.process(*who).map(|p| p.threads.clone());
                (self.task_dirs.sync(*who, &tids.unwrap_or_default())?, None)
            }
            _ => {
                let fd = render(self.m, &target)?;
                (
                    format!("/proc/{}/fd/{}", std::process::id(), fd.as_raw_fd()),
                    Some(fd),
                )
            }
        };
        let io = |e: io::Error| format!("lmm native: {e}");
        let mut c = new_path.into_bytes();
        c.push(0);
        if c.len() as u64 > TRAMPOLINE + 4096 - SCRATCH {
            return Ok(Some(-i64::from(libc::ENAMETOOLONG)));
        }
        self.cur.stub.poke(SCRATCH, &c).map_err(io)?;
        let mut args = a;
        args[i] = SCRATCH;
        if memfd.is_some() {
            // The memfd's path is a magic link: O_NOFOLLOW would refuse it
            // where the program named a regular /proc file.
            args[flag_arg] &= !(libc::O_NOFOLLOW as u64);
        }
        // The memfd stays open until the stub's open has its own
        // reference, and is closed when this returns.
        Ok(Some(self.cur.stub.syscall(nr as i64, args).map_err(io)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Processes 1 and 7, 7 with threads 8 and 9.
    fn ours(n: u32) -> Option<Vec<u32>> {
        match n {
            1 => Some(vec![1]),
            7 => Some(vec![7, 8, 9]),
            _ => None,
        }
    }

    #[test]
    fn threads_have_their_task_files_and_thread_self_is_the_callers() {
        let r = |path| resolve(path, 7, 9, ours);
        assert_eq!(
            r("/proc/thread-self/stat"),
            Some(Target::Task(7, 9, "stat"))
        );
        assert_eq!(r("/proc/7/task/8/maps"), Some(Target::Task(7, 8, "maps")));
        assert_eq!(
            r("/proc/self/task/7/status"),
            Some(Target::Task(7, 7, "status"))
        );
        assert_eq!(r("/proc/1/task/1/stat"), Some(Target::Task(1, 1, "stat")));
        assert_eq!(r("/proc/self/task"), Some(Target::TaskDir(7)));
        assert_eq!(r("/proc/1/task/"), Some(Target::TaskDir(1)));
        // A tid of another process, or of none: ENOENT.
        assert_eq!(r("/proc/1/task/8/stat"), Some(Target::NoSuchProcess));
        assert_eq!(r("/proc/self/task/10/stat"), Some(Target::NoSuchProcess));
        // Files lmm does not render are the host thread's.
        assert_eq!(
            r("/proc/self/task/8/comm"),
            Some(Target::StubThread(8, "comm".into()))
        );
        assert_eq!(
            r("/proc/thread-self/comm"),
            Some(Target::StubThread(9, "comm".into()))
        );
        assert_eq!(
            r("/proc/self/task/8"),
            Some(Target::StubThread(8, "".into()))
        );
        assert_eq!(r("/proc/1/task/1/comm"), None);
    }

    #[test]
    fn self_its_pid_and_system_files_are_lmms() {
        let r = |path| resolve(path, 7, 7, ours);
        assert_eq!(r("/proc/self/maps"), Some(Target::Pid(7, "maps")));
        assert_eq!(r("/proc/1/smaps"), Some(Target::Pid(1, "smaps")));
        assert_eq!(r("/proc/meminfo"), Some(Target::System("meminfo")));
        assert_eq!(r("/proc/4242/maps"), Some(Target::NoSuchProcess));
        assert_eq!(
            r("/proc/7/cmdline"),
            Some(Target::Stub("/proc/self/cmdline".into()))
        );
        // Passed through: the stub's own file, files lmm does not render,
        // paths outside /proc.
        assert_eq!(r("/proc/self/cmdline"), None);
        assert_eq!(r("/proc/cpuinfo"), None);
        assert_eq!(r("/proc/1/cmdline"), None);
        assert_eq!(r("/etc/passwd"), None);
        assert_eq!(r("/proc/self"), None);
        assert_eq!(r("/proc/x/maps"), None);
    }
}
