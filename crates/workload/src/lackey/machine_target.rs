//! The lackey replay on lmm's machine: one process whose accesses go
//! through its CPU's MMU and the page-fault handler.

use mm::VirtAddr;

use super::{AccessKind, LackeyTarget, TargetError, TargetStats};

/// A process of lmm's machine as a lackey replay target: accesses are user
/// accesses through the process's CPU's MMU and the page-fault handler;
/// the replay maps what the trace touches outside every VMA with
/// MAP_FIXED_NOREPLACE anonymous mmaps.
pub struct MachineLackey {
    machine: machine::Machine,
    pid: u32,
    /// Watches the machine after every access (`lmm top replay lackey`);
    /// once it returns false, every further access fails with
    /// `STOPPED`, which ends the replay (or, with `--keep-going`, makes
    /// it skip the rest of the trace's accesses).
    pub observer: Option<crate::sample::Watch>,
    /// The observer asked to stop.
    stopped: bool,
}

/// Why accesses fail after the observer asked to stop.
const STOPPED: &str = "stopped by the observer";

impl MachineLackey {
    /// Boots a machine and spawns the empty process the replay runs in
    /// (valgrind's addresses are not the kernel's layout, so nothing is
    /// exec'd: the trace builds the address space as it touches it).
    pub fn boot(config: machine::MachineConfig) -> Result<MachineLackey, String> {
        let mut machine = machine::Machine::boot(config).map_err(|e| e.to_string())?;
        let pid = machine.spawn("lackey").map_err(|e| format!("spawn: {e}"))?;
        Ok(MachineLackey {
            machine,
            pid,
            observer: None,
            stopped: false,
        })
    }

    /// The machine, for /proc files and `mm::debug` after the replay.
    pub fn machine(&mut self) -> &mut machine::Machine {
        &mut self.machine
    }
}

impl LackeyTarget for MachineLackey {
    fn access(&mut self, va: VirtAddr, kind: AccessKind) -> Result<(), TargetError> {
        let access = match kind {
            AccessKind::Read => machine::mmu::Access::Read,
            AccessKind::Write => machine::mmu::Access::Write,
            AccessKind::Exec => machine::mmu::Access::Exec,
        };
        if self.stopped {
            return Err(TargetError::Unsupported(STOPPED.into()));
        }
        let r = self
            .machine
            .touch(self.pid, va.0, 1, access)
            .map_err(|f| TargetError::Signal(f.to_string()));
        if let Some(watch) = &mut self.observer {
            self.stopped = !watch(&self.machine);
        }
        r
    }

    fn is_mapped(&self, va: VirtAddr) -> bool {
        self.machine
            .process(self.pid)
            .is_some_and(|p| p.mm.vma_lookup(va).is_some())
    }

    fn map_anon(&mut self, start: VirtAddr, len: u64, exec: bool) -> Result<(), TargetError> {
        use mm::mmap::{MAP_ANONYMOUS, MAP_FIXED_NOREPLACE, MAP_PRIVATE};
        use mm::mmap::{PROT_EXEC, PROT_READ, PROT_WRITE};
        let prot = PROT_READ | PROT_WRITE | if exec { PROT_EXEC } else { 0 };
        let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
        self.machine
            .sys_mmap(self.pid, start.0, len, prot, flags, None, 0)
            .map(|_| ())
            .map_err(TargetError::Errno)
    }

    fn make_exec(&mut self, start: VirtAddr, len: u64) -> Result<(), TargetError> {
        use mm::mmap::{PROT_EXEC, PROT_READ, PROT_WRITE};
        self.machine
            .sys_mprotect(self.pid, start.0, len, PROT_READ | PROT_WRITE | PROT_EXEC)
            .map(|_| ())
            .map_err(TargetError::Errno)
    }

    fn stats(&self) -> TargetStats {
        let Some(p) = self.machine.process(self.pid) else {
            return TargetStats::default();
        };
        let tlb = self
            .machine
            .cpus()
            .get(p.cpu)
            .map(|c| c.tlb.stats())
            .unwrap_or_default();
        TargetStats {
            minor_faults: p.flt.minor,
            major_faults: p.flt.major,
            rss_pages: p.mm.rss_pages(),
            tlb_hits: tlb.hits,
            tlb_misses: tlb.misses,
        }
    }
}
