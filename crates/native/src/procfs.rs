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
//!   `self`, `thread-self` (the process's files: lmm renders no per-thread
//!   ones) and lmm's pid of the
//!   program. Other files of the program's own pid (`cmdline`, `fd/...`)
//!   are the host's files of the stub (`/proc/self/...`); a numeric pid
//!   lmm has no process for is ENOENT, as in lmm's world it does not exist.
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
//! open, or a path relative to a directory descriptor, goes to the host).
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
    /// A system-wide file rendered by lmm.
    System(&'static str),
    /// The host's file of the stub: open this path instead.
    Stub(String),
    /// A pid lmm has no process for: ENOENT.
    NoSuchProcess,
}

/// What `path` (absolute; `..` and `.` are not resolved) is for a program
/// whose pid in lmm is `pid`, with `exists` telling whether lmm has a
/// process of a pid; `None` if the path is not one lmm renders or
/// redirects.
pub fn resolve(path: &str, pid: u32, exists: impl Fn(u32) -> bool) -> Option<Target> {
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
    let who = match first {
        "self" | "thread-self" => pid,
        n => {
            let n: u32 = n.parse().ok()?;
            if !exists(n) {
                return Some(Target::NoSuchProcess);
            }
            n
        }
    };
    if let [file] = tail[..] {
        if let Some(&f) = PID_FILES.iter().find(|&&f| f == file) {
            return Some(Target::Pid(who, f));
        }
    }
    // Not rendered by lmm: the stub's own file when it is the program's,
    // as the host has it (the host's /proc/self is the stub).
    (who == pid && first != "self").then(|| Target::Stub(format!("/proc/self/{}", tail.join("/"))))
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
        Target::Pid(pid, "pagemap") => {
            f.set_len((TASK_SIZE / PAGE_SIZE) * 8).map_err(io)?;
            for (off, bytes) in m.pagemap_binary(pid)? {
                f.write_all_at(&bytes, off).map_err(io)?;
            }
        }
        Target::Pid(pid, file) => f
            .write_all_at(m.proc_pid(pid, file)?.as_bytes(), 0)
            .map_err(io)?,
        Target::System(name) => f.write_all_at(m.proc(name)?.as_bytes(), 0).map_err(io)?,
        Target::Stub(_) | Target::NoSuchProcess => {}
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
        if a[flag_arg] & libc::O_ACCMODE as u64 != libc::O_RDONLY as u64 {
            return Ok(None);
        }
        let m = &*self.m;
        let Some(target) = resolve(&path, self.cur.pid, |n| m.process(n).is_some()) else {
            return Ok(None);
        };
        let (new_path, memfd) = match &target {
            Target::NoSuchProcess => return Ok(Some(-i64::from(libc::ENOENT))),
            Target::Stub(p) => (p.clone(), None),
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

    #[test]
    fn self_its_pid_and_system_files_are_lmms() {
        let ours = |n: u32| n == 1 || n == 7;
        assert_eq!(
            resolve("/proc/self/maps", 7, ours),
            Some(Target::Pid(7, "maps"))
        );
        assert_eq!(
            resolve("/proc/thread-self/status", 7, ours),
            Some(Target::Pid(7, "status"))
        );
        assert_eq!(
            resolve("/proc/1/smaps", 7, ours),
            Some(Target::Pid(1, "smaps"))
        );
        assert_eq!(
            resolve("/proc/meminfo", 7, ours),
            Some(Target::System("meminfo"))
        );
        assert_eq!(
            resolve("/proc/4242/maps", 7, ours),
            Some(Target::NoSuchProcess)
        );
        assert_eq!(
            resolve("/proc/7/cmdline", 7, ours),
            Some(Target::Stub("/proc/self/cmdline".into()))
        );
        // Passed through: the stub's own file, files lmm does not render,
        // paths outside /proc.
        assert_eq!(resolve("/proc/self/cmdline", 7, ours), None);
        assert_eq!(resolve("/proc/cpuinfo", 7, ours), None);
        assert_eq!(resolve("/proc/1/cmdline", 7, ours), None);
        assert_eq!(resolve("/etc/passwd", 7, ours), None);
        assert_eq!(resolve("/proc/self", 7, ours), None);
        assert_eq!(resolve("/proc/x/maps", 7, ours), None);
    }
}
