//! The replay target on lmm's simulated machine: each trace pid is a real
//! process of a booted [`Machine`], `execve` loads the program from the
//! host's disk (through [`Machine::exec_as`], so `AT_EXECFN` is the name the
//! program passed), every memory call goes to the `sys_*` entry points, so
//! the mmap layer's own rules (placement, merging, errnos) decide the
//! results the engine compares with the trace, and touches are real user
//! accesses through the CPU's MMU and the page-fault handler.
//!
//! Processes: `fork` (and clone without `CLONE_VM`) is [`Machine::fork`]
//! (copy-on-write); a vfork or `CLONE_VM` child gets a task of its own
//! (its descriptors, its parent, its exit status for wait) whose memory
//! calls and touches act on its parent's address space until its execve
//! gives it one (as `CLONE_VM` shares the mm). exit_group is
//! [`Machine::exit_code`] (a zombie until the parent's wait4, which is
//! [`Machine::wait`]); the trace pid of the child it reaps is found from
//! the machine pid.
//!
//! Files: a path that the trace opens is opened on the machine
//! ([`Machine::sys_open`]): created on its tmpfs with `O_CREAT`, a host file
//! read-only otherwise; `/proc`, `/sys`, `/dev` (but `/dev/zero`) and
//! directories are not modelled ([`ReplayTarget::open`] says `None`). The
//! trace's `mmap` of such a descriptor is [`Machine::sys_mmap_fd`].
//!
//! Simplifications:
//! - a host file opened for writing without `O_CREAT` is opened read-only
//!   (the machine's host files are read-only), so a shared writable mapping
//!   of it fails with `EACCES` (the engine names this as the likely cause:
//!   [`super::SHARED_WRITE_HINT`]); without file calls in the trace, files
//!   are opened read-only at each `mmap` from the path strace printed;
//! - the faults a vfork child takes before its execve count for the
//!   process whose address space it uses (its parent), as do its touches;
//! - threads (`CLONE_THREAD`) are replayed as `CLONE_VM` children;
//! - `mmap` flags, `prot` and `msync` flags are truncated to 32 bits (every
//!   x86-64 value fits; Linux ignores unknown high bits of mmap's flags too)
//!   and madvise's advice to an `int`, as the system call's C types do.

use std::collections::HashMap;

use machine::hostfs::HostFile;
use machine::mmu;
use machine::{Machine, MachineConfig};
use mm::errno::Errno;
use mm::VirtAddr;

use super::{
    Access, ExecRequest, ExitStatus, FdCall, ReplayTarget, Spawn, TargetError, TouchOutcome,
};

/// [`ReplayTarget`] over a booted [`Machine`].
pub struct MachineTarget {
    /// The machine (public so tests can look at processes and memory).
    pub machine: Machine,
    /// Trace pid -> machine pid of live processes.
    pids: HashMap<u32, u32>,
    /// Trace pid of a vfork/`CLONE_VM` child that has not exec'd -> the
    /// trace pid whose address space it uses.
    shares_vm: HashMap<u32, u32>,
    /// Machine pid -> (trace pid, status) of exited processes, until their
    /// parent waits.
    exited: HashMap<u32, (u32, ExitStatus)>,
    /// Run [`Machine::check`] after every call (and remember the first
    /// failure in [`MachineTarget::check_failure`]).
    pub check_each_call: bool,
    /// The first `mm::debug` violation found with `check_each_call`, with
    /// what had just been done.
    pub check_failure: Option<String>,
    /// Watches the machine after every call (`lmm top replay`); once it
    /// returns false it is dropped and the replay goes on unwatched.
    pub observer: Option<crate::sample::Watch>,
}

impl MachineTarget {
    /// Boots a machine with `config` for replaying.
    pub fn boot(config: MachineConfig) -> Result<MachineTarget, String> {
        let machine = Machine::boot(config).map_err(|e| format!("booting the machine: {e}"))?;
        Ok(MachineTarget {
            machine,
            pids: HashMap::new(),
            shares_vm: HashMap::new(),
            exited: HashMap::new(),
            check_each_call: false,
            check_failure: None,
            observer: None,
        })
    }

    /// The machine pid of trace pid `pid`, if it was spawned and has not
    /// exited.
    pub fn machine_pid(&self, pid: u32) -> Option<u32> {
        self.pids.get(&pid).copied()
    }

    /// The task of trace pid `pid`.
    fn task(&self, pid: u32) -> Result<u32, TargetError> {
        self.machine_pid(pid)
            .ok_or(TargetError::Errno(Errno::ESRCH))
    }

    /// The machine pid whose address space trace pid `pid` uses: its own,
    /// or its parent's for a vfork/`CLONE_VM` child before execve.
    pub fn mm_pid(&self, pid: u32) -> Option<u32> {
        let mut p = pid;
        for _ in 0..64 {
            match self.shares_vm.get(&p) {
                Some(&parent) => p = parent,
                None => return self.machine_pid(p),
            }
        }
        None
    }

    fn mm(&self, pid: u32) -> Result<u32, TargetError> {
        self.mm_pid(pid).ok_or(TargetError::Errno(Errno::ESRCH))
    }

    fn checked<T>(&mut self, what: &str, r: T) -> T {
        if self.check_each_call && self.check_failure.is_none() {
            if let Err(e) = self.machine.check() {
                self.check_failure = Some(format!("after {what}: {e}"));
            }
        }
        if let Some(watch) = &mut self.observer {
            if !watch(&self.machine) {
                self.observer = None;
            }
        }
        r
    }
}

fn u32_arg(v: u64) -> u32 {
    v as u32
}

/// Linux's number of a signal name, for the exit code of a killed process
/// (`128 + N`, as a shell reports it).
fn signal_number(name: &str) -> i32 {
    const NAMES: &[&str] = &[
        "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE",
        "SIGKILL", "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM",
    ];
    NAMES
        .iter()
        .position(|n| *n == name)
        .map_or(0, |i| i as i32 + 1)
}

/// The PT_INTERP path of an ELF64 little-endian executable, if it has one.
fn elf_interpreter(path: &str) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    let u16_at = |o: usize| Some(u16::from_le_bytes(bytes.get(o..o + 2)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(bytes.get(o..o + 8)?.try_into().ok()?));
    if bytes.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let phoff = usize::try_from(u64_at(0x20)?).ok()?;
    let (phentsize, phnum) = (usize::from(u16_at(0x36)?), usize::from(u16_at(0x38)?));
    for i in 0..phnum {
        let ph = phoff.checked_add(i.checked_mul(phentsize)?)?;
        if u32::from_le_bytes(bytes.get(ph..ph + 4)?.try_into().ok()?) == 3 {
            let off = usize::try_from(u64_at(ph + 8)?).ok()?;
            let len = usize::try_from(u64_at(ph + 32)?).ok()?;
            let name = bytes.get(off..off.checked_add(len)?)?;
            let name = name.split(|&b| b == 0).next()?;
            return Some(String::from_utf8_lossy(name).into_owned());
        }
    }
    None
}

/// True for paths whose files memory does not model: what the kernel
/// opens there (proc and sysfs files, devices, directories) cannot be
/// mapped by the programs replayed here.
fn unmodelled(path: &str) -> bool {
    if path == "/dev/zero" || path.starts_with("/dev/shm/") {
        return false;
    }
    ["/proc", "/sys", "/dev"]
        .iter()
        .any(|d| path == *d || path.starts_with(&format!("{d}/")))
        || std::fs::metadata(path).is_ok_and(|m| m.is_dir())
}

impl ReplayTarget for MachineTarget {
    fn spawn(&mut self, pid: u32, how: Spawn) -> Result<(), TargetError> {
        let m = match how {
            Spawn::Initial => self.machine.spawn("replay")?,
            Spawn::Fork { parent } => {
                let task = self.task(parent)?;
                let child = self.machine.fork(self.mm(parent)?)?;
                // A vfork child that forks: the copy is of the address space
                // it uses, the parent is the task itself.
                if let Some(c) = self.machine.process_mut(child) {
                    c.ppid = task;
                }
                child
            }
            Spawn::SharedVm { parent } => {
                let task = self.task(parent)?;
                let child = self.machine.spawn("replay")?;
                let (comm, files) = match self.machine.process(task) {
                    Some(p) => (p.comm.clone(), p.files.clone()),
                    None => return Err(TargetError::Errno(Errno::ESRCH)),
                };
                if let Some(c) = self.machine.process_mut(child) {
                    c.ppid = task;
                    c.comm = comm;
                    c.files = files;
                }
                self.shares_vm.insert(pid, parent);
                child
            }
        };
        if let Some(old) = self.pids.insert(pid, m) {
            // A reused trace pid whose process never ended.
            let _ = self.machine.exit(old);
        }
        self.checked("spawn", ());
        Ok(())
    }

    fn execve(&mut self, pid: u32, exec: &ExecRequest) -> Result<(), TargetError> {
        let m = self.task(pid)?;
        let host = exec.host_path.to_string_lossy();
        let r = self
            .machine
            .exec_as(m, &host, &exec.filename, &exec.argv, &exec.envp)
            .map(|_| ())
            .map_err(TargetError::Errno);
        if r.is_ok() {
            // The task has its own address space now.
            self.shares_vm.remove(&pid);
        }
        self.checked("execve", r)
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
        let m = self.mm(pid)?;
        let file = match file {
            Some(path) => Some(HostFile::open(path).map_err(|e| {
                TargetError::Unsupported(format!(
                    "cannot open {path} on the host to map it: {}",
                    e.name()
                ))
            })?),
            None => None,
        };
        let r = self
            .machine
            .sys_mmap(m, addr.0, len, u32_arg(prot), u32_arg(flags), file, offset);
        self.checked("mmap", r.map(VirtAddr).map_err(TargetError::from))
    }

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
        let task = self.task(pid)?;
        let m = self.mm(pid)?;
        let r = if m == task {
            self.machine
                .sys_mmap_fd(m, addr.0, len, u32_arg(prot), u32_arg(flags), fd, offset)
        } else {
            // A vfork child maps its own descriptor into its parent's mm.
            match self.machine.process(task).map(|p| p.files.get(fd).cloned()) {
                Some(Ok(f)) => {
                    let shared = flags & 3 == mm::mmap::MAP_SHARED as u64;
                    if !f.read || (shared && prot & 2 != 0 && !f.write) {
                        Err(Errno::EACCES)
                    } else {
                        self.machine.sys_mmap(
                            m,
                            addr.0,
                            len,
                            u32_arg(prot),
                            u32_arg(flags),
                            Some(f.file),
                            offset,
                        )
                    }
                }
                Some(Err(e)) => Err(e),
                None => Err(Errno::ESRCH),
            }
        };
        self.checked("mmap", r.map(VirtAddr).map_err(TargetError::from))
    }

    fn munmap(&mut self, pid: u32, addr: VirtAddr, len: u64) -> Result<(), TargetError> {
        let m = self.mm(pid)?;
        let r = self.machine.sys_munmap(m, addr.0, len);
        self.checked("munmap", r.map(|_| ()).map_err(TargetError::from))
    }

    fn mprotect(
        &mut self,
        pid: u32,
        addr: VirtAddr,
        len: u64,
        prot: u64,
    ) -> Result<(), TargetError> {
        let m = self.mm(pid)?;
        let r = self.machine.sys_mprotect(m, addr.0, len, u32_arg(prot));
        self.checked("mprotect", r.map(|_| ()).map_err(TargetError::from))
    }

    fn mremap(
        &mut self,
        pid: u32,
        old_addr: VirtAddr,
        old_len: u64,
        new_len: u64,
        flags: u64,
        new_addr: VirtAddr,
    ) -> Result<VirtAddr, TargetError> {
        let m = self.mm(pid)?;
        let r =
            self.machine
                .sys_mremap(m, old_addr.0, old_len, new_len, u32_arg(flags), new_addr.0);
        self.checked("mremap", r.map(VirtAddr).map_err(TargetError::from))
    }

    fn brk(&mut self, pid: u32, addr: VirtAddr) -> Result<VirtAddr, TargetError> {
        let m = self.mm(pid)?;
        let r = self.machine.sys_brk(m, addr.0);
        self.checked("brk", r.map(VirtAddr).map_err(TargetError::from))
    }

    fn madvise(
        &mut self,
        pid: u32,
        addr: VirtAddr,
        len: u64,
        advice: u64,
    ) -> Result<(), TargetError> {
        let m = self.mm(pid)?;
        let r = self.machine.sys_madvise(m, addr.0, len, advice as i32);
        self.checked("madvise", r.map(|_| ()).map_err(TargetError::from))
    }

    fn msync(&mut self, pid: u32, addr: VirtAddr, len: u64, flags: u64) -> Result<(), TargetError> {
        let m = self.mm(pid)?;
        let r = self.machine.sys_msync(m, addr.0, len, u32_arg(flags));
        self.checked("msync", r.map(|_| ()).map_err(TargetError::from))
    }

    fn mincore(&mut self, pid: u32, addr: VirtAddr, len: u64) -> Result<Vec<u8>, TargetError> {
        let m = self.mm(pid)?;
        Ok(self.machine.sys_mincore(m, addr.0, len)?)
    }

    /// [`Machine::touch`]: every page through the MMU of the process's CPU,
    /// faults resolved by the fault handler; the faults are the task's
    /// counters before and after.
    fn touch(
        &mut self,
        pid: u32,
        addr: VirtAddr,
        len: u64,
        access: Access,
    ) -> Result<TouchOutcome, TargetError> {
        let m = self.mm(pid)?;
        let before = self.machine.process(m).map(|p| p.flt).unwrap_or_default();
        let acc = match access {
            Access::Read => mmu::Access::Read,
            Access::Write => mmu::Access::Write,
            Access::Exec => mmu::Access::Exec,
        };
        let r = self.machine.touch(m, addr.0, len, acc);
        let after = self.machine.process(m).map(|p| p.flt).unwrap_or_default();
        let outcome = TouchOutcome {
            minor: after.minor - before.minor,
            major: after.major - before.major,
            signal: r.err().map(|f| f.to_string()),
        };
        Ok(self.checked("touch", outcome))
    }

    fn exit(&mut self, pid: u32) {
        self.exit_with(pid, &ExitStatus::Exited(0));
    }

    fn exit_with(&mut self, pid: u32, status: &ExitStatus) {
        self.shares_vm.remove(&pid);
        if let Some(m) = self.pids.remove(&pid) {
            let code = match status {
                ExitStatus::Exited(c) => *c,
                ExitStatus::Killed(sig) => 128 + signal_number(sig),
            };
            if self.machine.exit_code(m, code).is_ok() {
                self.exited.insert(m, (pid, status.clone()));
            }
        }
        self.checked("exit", ());
    }

    fn wait(
        &mut self,
        pid: u32,
        who: i64,
        nohang: bool,
    ) -> Result<Option<(u32, ExitStatus)>, TargetError> {
        let parent = self.task(pid)?;
        let target = if who > 0 {
            let t = who as u32;
            match self.machine_pid(t).or_else(|| {
                self.exited
                    .iter()
                    .find(|(_, (tp, _))| *tp == t)
                    .map(|(&m, _)| m)
            }) {
                Some(m) => i64::from(m),
                None => return Err(TargetError::Errno(Errno::ECHILD)),
            }
        } else {
            -1
        };
        match self.machine.wait(parent, target) {
            Ok((child, _)) => match self.exited.remove(&child) {
                Some((tp, status)) => Ok(Some((tp, status))),
                None => Err(TargetError::Unsupported(format!(
                    "wait reaped machine pid {child}, which no trace pid stands for"
                ))),
            },
            Err(Errno::EAGAIN) if nohang => Ok(None),
            Err(e) => Err(TargetError::Errno(e)),
        }
    }

    fn maps(&mut self, pid: u32) -> String {
        match self.mm_pid(pid) {
            Some(m) => self.machine.proc_pid(m, "maps").unwrap_or_default(),
            None => String::new(),
        }
    }

    fn proc_file(&mut self, pid: u32, name: &str) -> Option<String> {
        let m = if name == "stat" || name == "status" {
            self.machine_pid(pid)?
        } else {
            self.mm_pid(pid)?
        };
        self.machine.proc_pid(m, name).ok()
    }

    /// Reads the file through the machine's page cache, 64 KiB at a time,
    /// and an ELF executable's interpreter (PT_INTERP) with it. Files that
    /// are not regular host files (or cannot be read) are passed over.
    fn warm(&mut self, path: &str) {
        for p in [Some(path.to_string()), elf_interpreter(path)]
            .into_iter()
            .flatten()
        {
            if unmodelled(&p) {
                continue;
            }
            let Ok(f) = HostFile::open(&p) else {
                continue;
            };
            let cpu = mm::page_alloc::CpuId(0);
            let mut buf = vec![0u8; 64 << 10];
            let mut off = 0;
            while off < f.size() {
                match self
                    .machine
                    .cache()
                    .read(self.machine.pa(), cpu, &f, off, &mut buf)
                {
                    Ok(n) if n > 0 => off += n as u64,
                    _ => break,
                }
            }
        }
    }

    fn open(&mut self, pid: u32, path: &str, flags: u64) -> Result<Option<i32>, TargetError> {
        let m = self.task(pid)?;
        if flags & 0o100 == 0 && unmodelled(path) {
            return Ok(None);
        }
        let flags = u32_arg(flags) & 0o7777;
        let mut r = self.machine.sys_open(m, path, flags);
        if r == Err(Errno::EROFS) {
            // The machine's host files are read-only: a host file opened
            // for writing is opened for reading (see the module
            // documentation).
            r = self.machine.sys_open(m, path, flags & !0o3 & !0o1000);
        }
        self.checked("open", r.map(Some).map_err(TargetError::from))
    }

    fn memfd_create(&mut self, pid: u32, name: &str) -> Result<i32, TargetError> {
        let m = self.task(pid)?;
        Ok(self.machine.sys_memfd_create(m, name)?)
    }

    fn fd_call(&mut self, pid: u32, call: FdCall<'_>) -> Result<u64, TargetError> {
        let m = self.task(pid)?;
        let r = match call {
            FdCall::Close(fd) => self.machine.sys_close(m, fd).map(|()| 0),
            FdCall::Dup(fd) => self.machine.sys_dup(m, fd).map(|n| n as u64),
            FdCall::Ftruncate(fd, len) => self.machine.sys_ftruncate(m, fd, len).map(|()| 0),
            FdCall::Fsync(fd) => self.machine.sys_fsync(m, fd).map(|()| 0),
            FdCall::Read { fd, off, len } => self
                .machine
                .file_read(m, fd, off, len.min(64 << 20) as usize)
                .map(|b| b.len() as u64),
            FdCall::Write { fd, off, data } => {
                self.machine.file_write(m, fd, off, data).map(|n| n as u64)
            }
            FdCall::Lseek(fd, off, whence) => self.machine.sys_lseek(m, fd, off, whence),
        };
        self.checked("a file call", r.map_err(TargetError::from))
    }

    fn unlink(&mut self, pid: u32, path: &str) -> Result<(), TargetError> {
        self.task(pid)?;
        let r = self.machine.sys_unlink(path);
        self.checked("unlink", r.map_err(TargetError::from))
    }
}
