//! The file calls of a trace (`strace -e trace=...,%file,%desc`): open,
//! openat, creat, memfd_create, close, dup/dup2/dup3/fcntl(F_DUPFD),
//! ftruncate, fsync, read/pread64, write/pwrite64, lseek and unlink, so that
//! a mapping is made of the file the program opened, with its open mode
//! (a shared writable mapping of a file opened `O_RDWR`), and files the
//! program created exist on the target's tmpfs with the size and the
//! page-cache pages the program gave them.
//!
//! Descriptors: the trace's numbers are the real kernel's; the target gives
//! its own. Each process keeps a map from the trace's descriptors to the
//! target's (copied at fork, closed at exit, `O_CLOEXEC` ones closed by
//! execve). A descriptor the target does not have (a pipe, a terminal,
//! `/proc`, a directory, one inherited from before the trace) is not
//! tracked: calls on it are passed over, and an mmap of it falls back to
//! opening the path strace printed for it, read-only. A successful open
//! is compared as success only (its number maps, it is not compared).
//!
//! Simplifications: the data of a `write` is the string strace printed
//! (padded with zeros to the count the call returned: strace cuts strings
//! at `-s`); `read` goes through the page cache into a kernel buffer, since
//! strace prints the bytes read, not the buffer's address (so the kernel's
//! copy to the user buffer, and the faults it takes, are not replayed);
//! readv/writev, sendfile and copy_file_range are passed over.

use super::{Engine, FdCall, FdEntry, FilesState, TargetError};
use crate::replay::ReplayError;
use crate::strace::{flags_value, Arg, Ret, Syscall, MFD_FLAGS, OPEN_FLAGS, SEEK_WHENCE};

/// `O_CREAT`.
const O_CREAT: u64 = 0o100;
/// `O_CLOEXEC`.
const O_CLOEXEC: u64 = 0o2000000;
/// `O_WRONLY | O_CREAT | O_TRUNC`: what `creat` opens with.
const CREAT_FLAGS: u64 = 0o1 | 0o100 | 0o1000;
/// `F_DUPFD`, `F_DUPFD_CLOEXEC`.
const F_DUPFD: &str = "F_DUPFD";
const F_DUPFD_CLOEXEC: &str = "F_DUPFD_CLOEXEC";

/// The descriptor number of an argument (`3</path>`, `3`, `AT_FDCWD`).
fn fd_arg(a: Option<&Arg>) -> Option<i32> {
    a.and_then(Arg::as_i64).and_then(|v| i32::try_from(v).ok())
}

/// The directory of an `AT_FDCWD` argument as strace -y prints it
/// (`AT_FDCWD</tmp/x>`); `Some(None)` for a bare `AT_FDCWD`, `None` if the
/// argument is a real descriptor (paths relative to it are not resolved).
fn at_fdcwd(a: Option<&Arg>) -> Option<Option<String>> {
    match a.map(Arg::plain) {
        Some(Arg::Other(t)) => {
            let rest = t.strip_prefix("AT_FDCWD")?;
            if rest.is_empty() {
                return Some(None);
            }
            Some(Some(rest.strip_prefix('<')?.strip_suffix('>')?.to_string()))
        }
        Some(Arg::Flags(f)) if f.len() == 1 && f[0] == "AT_FDCWD" => Some(None),
        _ => None,
    }
}

/// The bytes strace shows for a write's buffer, padded or cut to `n`.
fn write_data(a: Option<&Arg>, n: u64) -> Vec<u8> {
    let mut data = a
        .and_then(Arg::as_str)
        .map(|s| s.as_bytes().to_vec())
        .unwrap_or_default();
    data.resize(n as usize, 0);
    data
}

impl Engine<'_> {
    /// The target's descriptor for the trace's `fd` of `pid`, if tracked.
    pub(super) fn target_fd(&self, pid: u32, fd: i32) -> Option<i32> {
        self.fds.get(&pid)?.get(&fd).map(|e| e.fd)
    }

    /// execve closes the `O_CLOEXEC` descriptors.
    pub(super) fn close_on_exec(&mut self, pid: u32) {
        let Some(table) = self.fds.get_mut(&pid) else {
            return;
        };
        let closing: Vec<(i32, i32)> = table
            .iter()
            .filter(|(_, e)| e.cloexec)
            .map(|(&n, e)| (n, e.fd))
            .collect();
        for (n, fd) in closing {
            table.remove(&n);
            let _ = self.target.fd_call(pid, FdCall::Close(fd));
        }
    }

    /// Tracks the trace's `fd` as the target's `target` (closing what the
    /// trace's number stood for before, as the kernel reuses numbers only
    /// after close, or dup2 closes it).
    fn track(&mut self, pid: u32, fd: i32, target: i32, cloexec: bool) {
        let old = self.fds.entry(pid).or_default().insert(
            fd,
            FdEntry {
                fd: target,
                cloexec,
            },
        );
        if let Some(old) = old {
            let _ = self.target.fd_call(pid, FdCall::Close(old.fd));
        }
    }

    /// Stops tracking the trace's `fd` (closing the target's).
    fn untrack(&mut self, pid: u32, fd: i32) {
        if let Some(old) = self.fds.get_mut(&pid).and_then(|t| t.remove(&fd)) {
            let _ = self.target.fd_call(pid, FdCall::Close(old.fd));
        }
    }

    /// A file call: `None` if `s` is not one the replay makes (or it is on
    /// a descriptor the target does not have), else the target's result in
    /// the trace's terms (a descriptor the target gave stands for the
    /// trace's number, so only success or the errno compares).
    pub(super) fn file_call(
        &mut self,
        pid: u32,
        line: usize,
        s: &Syscall,
    ) -> Result<Option<Result<u64, TargetError>>, ReplayError> {
        if self.files == FilesState::No {
            return Ok(None);
        }
        let arg = |i: usize| s.args.get(i);
        let got = match s.name.as_str() {
            "open" | "openat" | "creat" => {
                let (dir, path, flags) = match s.name.as_str() {
                    "open" => (
                        Some(None),
                        arg(0).and_then(Arg::as_str),
                        arg(1).and_then(|a| flags_value(a, OPEN_FLAGS)),
                    ),
                    "creat" => (Some(None), arg(0).and_then(Arg::as_str), Some(CREAT_FLAGS)),
                    _ => (
                        at_fdcwd(arg(0)),
                        arg(1).and_then(Arg::as_str),
                        arg(2).and_then(|a| flags_value(a, OPEN_FLAGS)),
                    ),
                };
                let (Some(path), Some(flags)) = (path, flags) else {
                    return Err(self.bad(line, s));
                };
                let Some(dir) = dir else {
                    // Relative to a directory descriptor: not resolved.
                    return Ok(None);
                };
                let host = self.resolve(path, dir.as_deref());
                if flags & O_CREAT == 0 {
                    self.warm(&host);
                }
                let r = self.target.open(pid, &host, flags);
                if !self.files_known(line, &r) {
                    return Ok(None);
                }
                match (r, &s.ret) {
                    (Ok(None), _) => return Ok(None),
                    (Ok(Some(fd)), Ret::Value(v)) => {
                        if flags & O_CREAT != 0 && !self.created.contains(&host) {
                            self.created.push(host);
                        }
                        self.track(pid, *v as i32, fd, flags & O_CLOEXEC != 0);
                        Ok(*v)
                    }
                    (Ok(Some(fd)), _) => {
                        // The trace failed where the target succeeded.
                        let _ = self.target.fd_call(pid, FdCall::Close(fd));
                        Ok(fd as u64)
                    }
                    (Err(e), _) => Err(e),
                }
            }
            "memfd_create" => {
                let name = arg(0).and_then(Arg::as_str);
                let flags = arg(1).and_then(|a| flags_value(a, MFD_FLAGS));
                let (Some(name), Some(flags)) = (name, flags) else {
                    return Err(self.bad(line, s));
                };
                let r = self.target.memfd_create(pid, name);
                if !self.files_known(line, &r) {
                    return Ok(None);
                }
                match (r, &s.ret) {
                    (Ok(fd), Ret::Value(v)) => {
                        self.track(pid, *v as i32, fd, flags & 1 != 0);
                        Ok(*v)
                    }
                    (Ok(fd), _) => Ok(fd as u64),
                    (Err(e), _) => Err(e),
                }
            }
            "close" => {
                let Some(n) = fd_arg(arg(0)) else {
                    return Err(self.bad(line, s));
                };
                let Some(fd) = self.target_fd(pid, n) else {
                    return Ok(None);
                };
                if let Some(t) = self.fds.get_mut(&pid) {
                    t.remove(&n);
                }
                self.target.fd_call(pid, FdCall::Close(fd)).map(|_| 0)
            }
            "dup" | "dup2" | "dup3" | "fcntl" => {
                let Some(n) = fd_arg(arg(0)) else {
                    return Err(self.bad(line, s));
                };
                let cloexec = match s.name.as_str() {
                    "fcntl" => match arg(1).map(Arg::plain) {
                        Some(Arg::Flags(f)) if f.len() == 1 && f[0] == F_DUPFD => false,
                        Some(Arg::Flags(f)) if f.len() == 1 && f[0] == F_DUPFD_CLOEXEC => true,
                        _ => return Ok(None),
                    },
                    "dup3" => {
                        matches!(arg(2).map(Arg::plain), Some(Arg::Flags(f)) if f.iter().any(|x| x == "O_CLOEXEC"))
                    }
                    _ => false,
                };
                let Ret::Value(new) = s.ret else {
                    // A failed dup changes no descriptor.
                    return Ok(None);
                };
                let new = new as i32;
                let Some(fd) = self.target_fd(pid, n) else {
                    // dup2 of an untracked descriptor over a tracked one
                    // closes the tracked one.
                    if new != n {
                        self.untrack(pid, new);
                    }
                    return Ok(None);
                };
                if new == n {
                    return Ok(None);
                }
                match self.target.fd_call(pid, FdCall::Dup(fd)) {
                    Ok(t) => {
                        self.track(pid, new, t as i32, cloexec);
                        Ok(new as u64)
                    }
                    Err(e) => Err(e),
                }
            }
            "ftruncate" | "fsync" | "fdatasync" | "read" | "pread64" | "write" | "pwrite64"
            | "lseek" => {
                let Some(n) = fd_arg(arg(0)) else {
                    return Err(self.bad(line, s));
                };
                let Some(fd) = self.target_fd(pid, n) else {
                    return Ok(None);
                };
                let num = |i: usize| arg(i).and_then(Arg::as_u64);
                let ret = s.ret.value().unwrap_or(0);
                let call = match s.name.as_str() {
                    "ftruncate" => FdCall::Ftruncate(fd, num(1).ok_or_else(|| self.bad(line, s))?),
                    "fsync" | "fdatasync" => FdCall::Fsync(fd),
                    "read" | "pread64" => FdCall::Read {
                        fd,
                        off: if s.name == "pread64" {
                            Some(num(3).ok_or_else(|| self.bad(line, s))?)
                        } else {
                            None
                        },
                        len: num(2).ok_or_else(|| self.bad(line, s))?,
                    },
                    "lseek" => {
                        let off = arg(1)
                            .and_then(Arg::as_i64)
                            .ok_or_else(|| self.bad(line, s))?;
                        let whence = arg(2)
                            .and_then(|a| flags_value(a, SEEK_WHENCE))
                            .ok_or_else(|| self.bad(line, s))?;
                        FdCall::Lseek(fd, off, whence as u32)
                    }
                    _ => {
                        let off = if s.name == "pwrite64" {
                            Some(num(3).ok_or_else(|| self.bad(line, s))?)
                        } else {
                            None
                        };
                        let count = num(2).ok_or_else(|| self.bad(line, s))?;
                        let n = if s.ret.value().is_some() { ret } else { count };
                        let data = write_data(arg(1), n);
                        return Ok(Some(self.target.fd_call(
                            pid,
                            FdCall::Write {
                                fd,
                                off,
                                data: &data,
                            },
                        )));
                    }
                };
                self.target.fd_call(pid, call)
            }
            "unlink" | "unlinkat" => {
                let (dir, path) = if s.name == "unlink" {
                    (Some(None), arg(0).and_then(Arg::as_str))
                } else {
                    (at_fdcwd(arg(0)), arg(1).and_then(Arg::as_str))
                };
                let Some(dir) = dir else {
                    return Ok(None);
                };
                let Some(path) = path else {
                    return Err(self.bad(line, s));
                };
                let host = self.resolve(path, dir.as_deref());
                let Some(i) = self.created.iter().position(|c| *c == host) else {
                    return Ok(None);
                };
                let r = self.target.unlink(pid, &host).map(|()| 0);
                if r.is_ok() {
                    self.created.remove(i);
                }
                r
            }
            _ => return Ok(None),
        };
        Ok(Some(got))
    }

    /// True if the target replays file calls: the first call that says it
    /// does not makes every later file call pass over (with a note).
    fn files_known<T>(&mut self, line: usize, r: &Result<T, TargetError>) -> bool {
        if let Err(TargetError::Unsupported(msg)) = r {
            if self.files == FilesState::Unknown {
                self.report.notes.push(format!(
                    "{}:{line}: file calls not replayed ({msg}); files are mapped by the path \
                     strace printed, read-only",
                    self.opts.file
                ));
            }
            self.files = FilesState::No;
            return false;
        }
        self.files = FilesState::Yes;
        true
    }
}
