//! The replay target on lmm's simulated machine: each trace pid is a real
//! process of a booted [`Machine`], `execve` loads the program from the
//! host's disk (through [`Machine::exec_as`], so `AT_EXECFN` is the name the
//! program passed), and every memory call goes to the `sys_*` entry points,
//! so the mmap layer's own rules (placement, merging, errnos) decide the
//! results the engine compares with the trace.
//!
//! Simplifications:
//! - files are opened read-only ([`HostFile`]) at each `mmap`, from the path
//!   strace printed for the descriptor. The trace (`%memory,%process`) has
//!   no `open` calls, so the open mode is unknown: a `MAP_SHARED` +
//!   `PROT_WRITE` mapping of a file the program opened `O_RDWR` fails here
//!   with `EACCES` where Linux succeeded (the engine then names this as the likely cause: [`super::SHARED_WRITE_HINT`]);
//! - `fork`/`clone`/`vfork` children are refused (`Unsupported`) until the
//!   machine has fork (the demand-paging issue); the engine skips their
//!   lines;
//! - `mmap` flags, `prot` and `msync` flags are truncated to 32 bits (every
//!   x86-64 value fits; Linux ignores unknown high bits of mmap's flags too)
//!   and madvise's advice to an `int`, as the system call's C types do.

use std::collections::HashMap;

use machine::hostfs::HostFile;
use machine::{Machine, MachineConfig};
use mm::errno::Errno;
use mm::VirtAddr;

use super::{ExecRequest, ReplayTarget, Spawn, TargetError};

/// [`ReplayTarget`] over a booted [`Machine`].
pub struct MachineTarget {
    /// The machine (public so tests can look at processes and memory).
    pub machine: Machine,
    /// Trace pid -> machine pid.
    pids: HashMap<u32, u32>,
}

impl MachineTarget {
    /// Boots a machine with `config` for replaying.
    pub fn boot(config: MachineConfig) -> Result<MachineTarget, String> {
        let machine = Machine::boot(config).map_err(|e| format!("booting the machine: {e}"))?;
        Ok(MachineTarget {
            machine,
            pids: HashMap::new(),
        })
    }

    /// The machine pid of trace pid `pid`, if it was spawned and has not
    /// exited.
    pub fn machine_pid(&self, pid: u32) -> Option<u32> {
        self.pids.get(&pid).copied()
    }

    fn pid(&self, pid: u32) -> Result<u32, TargetError> {
        self.machine_pid(pid)
            .ok_or(TargetError::Errno(Errno::ESRCH))
    }
}

fn u32_arg(v: u64) -> u32 {
    v as u32
}

impl ReplayTarget for MachineTarget {
    fn spawn(&mut self, pid: u32, how: Spawn) -> Result<(), TargetError> {
        match how {
            Spawn::Initial => {
                let m = self.machine.spawn("replay")?;
                if let Some(old) = self.pids.insert(pid, m) {
                    // A reused trace pid whose process never ended.
                    let _ = self.machine.exit(old);
                }
                Ok(())
            }
            Spawn::Fork { .. } => Err(TargetError::Unsupported(
                "fork is not implemented on the machine yet (it arrives with demand paging)".into(),
            )),
            Spawn::SharedVm { .. } => Err(TargetError::Unsupported(
                "vfork and clone(CLONE_VM) are not implemented on the machine yet".into(),
            )),
        }
    }

    fn execve(&mut self, pid: u32, exec: &ExecRequest) -> Result<(), TargetError> {
        let m = self.pid(pid)?;
        let host = exec.host_path.to_string_lossy();
        self.machine
            .exec_as(m, &host, &exec.filename, &exec.argv, &exec.envp)
            .map(|_| ())
            .map_err(TargetError::Errno)
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
        let m = self.pid(pid)?;
        let file = match file {
            Some(path) => Some(HostFile::open(path).map_err(|e| {
                TargetError::Unsupported(format!(
                    "cannot open {path} on the host to map it: {}",
                    e.name()
                ))
            })?),
            None => None,
        };
        let r =
            self.machine
                .sys_mmap(m, addr.0, len, u32_arg(prot), u32_arg(flags), file, offset)?;
        Ok(VirtAddr(r))
    }

    fn munmap(&mut self, pid: u32, addr: VirtAddr, len: u64) -> Result<(), TargetError> {
        let m = self.pid(pid)?;
        self.machine.sys_munmap(m, addr.0, len)?;
        Ok(())
    }

    fn mprotect(
        &mut self,
        pid: u32,
        addr: VirtAddr,
        len: u64,
        prot: u64,
    ) -> Result<(), TargetError> {
        let m = self.pid(pid)?;
        self.machine.sys_mprotect(m, addr.0, len, u32_arg(prot))?;
        Ok(())
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
        let m = self.pid(pid)?;
        let r =
            self.machine
                .sys_mremap(m, old_addr.0, old_len, new_len, u32_arg(flags), new_addr.0)?;
        Ok(VirtAddr(r))
    }

    fn brk(&mut self, pid: u32, addr: VirtAddr) -> Result<VirtAddr, TargetError> {
        let m = self.pid(pid)?;
        Ok(VirtAddr(self.machine.sys_brk(m, addr.0)?))
    }

    fn madvise(
        &mut self,
        pid: u32,
        addr: VirtAddr,
        len: u64,
        advice: u64,
    ) -> Result<(), TargetError> {
        let m = self.pid(pid)?;
        self.machine.sys_madvise(m, addr.0, len, advice as i32)?;
        Ok(())
    }

    fn msync(&mut self, pid: u32, addr: VirtAddr, len: u64, flags: u64) -> Result<(), TargetError> {
        let m = self.pid(pid)?;
        self.machine.sys_msync(m, addr.0, len, u32_arg(flags))?;
        Ok(())
    }

    fn mincore(&mut self, pid: u32, addr: VirtAddr, len: u64) -> Result<Vec<u8>, TargetError> {
        let m = self.pid(pid)?;
        Ok(self.machine.sys_mincore(m, addr.0, len)?)
    }

    /// `MADV_POPULATE_WRITE` over the range: it faults every page in for
    /// writing "as if manually writing to each page" (madvise(2)), which is
    /// what the program's stores did, without changing the bytes.
    fn touch(&mut self, pid: u32, addr: VirtAddr, len: u64) -> Result<(), TargetError> {
        let m = self.pid(pid)?;
        let start = addr.0 & !(mm::types::PAGE_SIZE - 1);
        let end = addr.0.saturating_add(len);
        self.machine
            .sys_madvise(m, start, end - start, mm::madvise::MADV_POPULATE_WRITE)?;
        Ok(())
    }

    fn exit(&mut self, pid: u32) {
        if let Some(m) = self.pids.remove(&pid) {
            let _ = self.machine.exit(m);
        }
    }

    fn maps(&mut self, pid: u32) -> String {
        match self.machine_pid(pid) {
            Some(m) => self.machine.proc_pid(m, "maps").unwrap_or_default(),
            None => String::new(),
        }
    }
}
