//! The machine side of overcommit and the OOM killer: the vm.overcommit_*
//! sysctls, Committed_AS and CommitLimit in /proc/meminfo, the check that
//! `vm_committed_as` is the sum of every address space's accounted pages,
//! /proc/PID/oom_score, oom_score_adj and oom_adj, and `out_of_memory`:
//! gather the tasks, choose the victim ([`mm::oom_kill`]), log as Linux
//! does, and kill it with SIGKILL through the exit path. Mirrors
//! mm/oom_kill.c `out_of_memory` / `oom_kill_process`, mm/util.c's sysctl
//! table and fs/proc/base.c.
//!
//! Where the OOM killer runs. In Linux 6.18 the allocation that fails in
//! the page allocator's slow path calls it (`__alloc_pages_may_oom`);
//! `pagefault_out_of_memory` only warns and retries. lmm's fault handler
//! reports the failed allocation to the machine, which then does what the
//! allocation context would: [`Machine::fault_out_of_memory`] runs the OOM
//! killer for the faulting task with the gfp mask of an anonymous fault and
//! retries the fault once if another task died.
//!
//! Simplifications: `dump_header` prints its first line and the task table
//! but not the stack dump nor `__show_mem`'s Mem-Info block; the victim dies
//! at once (so the oom_reaper has nothing to do and logs nothing); no
//! memcg, cpuset or mempolicy constraint (always CONSTRAINT_NONE); with
//! nothing to kill Linux panics, lmm logs the warning and the allocation
//! fails; the sysrq trigger's `current` is shown as `kworker/0:1`.

use mm::errno::Errno;
use mm::gfp::Gfp;
use mm::mm_types::RssKind;
use mm::oom_kill::{self, OomCandidate, Selection};
use mm::util::OvercommitMode;
use mm::vmstat::VmEvent;

use crate::machine::Machine;
use crate::mmu::Access;
use crate::process::UserFault;

/// SIGKILL.
pub const SIGKILL: i32 = 9;
/// The exit code lmm records for a task killed by SIGKILL: 128 + 9, as a
/// shell's `$?` shows it (the zombie also keeps the signal, see
/// [`crate::process::Zombie::wait_status`]).
pub const KILLED_EXIT_CODE: i32 = 128 + SIGKILL;
/// What an anonymous page fault allocates with (`vma_alloc_zeroed_movable_folio`:
/// GFP_HIGHUSER_MOVABLE | __GFP_ZERO, and __GFP_COMP for a folio), the gfp
/// mask real OOM reports of user faults show (0x140dca).
pub const FAULT_GFP: Gfp = Gfp(Gfp::HIGHUSER_MOVABLE.0 | Gfp::ZERO.0 | Gfp::COMP.0);
/// The `current` of a sysrq-f OOM (a workqueue worker).
pub const SYSRQ_COMM: &str = "kworker/0:1";

/// The overcommit sysctls a machine knows (vm.*).
pub const OVERCOMMIT_SYSCTLS: &[&str] = &[
    "vm.overcommit_memory",
    "vm.overcommit_ratio",
    "vm.overcommit_kbytes",
    "vm.admin_reserve_kbytes",
    "vm.user_reserve_kbytes",
];

impl Machine {
    /// The machine's overcommit policy and `vm_committed_as`.
    pub fn overcommit(&self) -> &mm::util::Overcommit {
        &self.tasks.overcommit
    }

    /// Writes one of [`OVERCOMMIT_SYSCTLS`] as `sysctl -w` would. `None` if
    /// `name` is not one of them; EINVAL where the kernel's handler refuses
    /// the value: overcommit_memory outside 0..=2 (`proc_dointvec_minmax`),
    /// overcommit_ratio outside an `int` (`proc_dointvec`), the kbytes
    /// values below 0 (`proc_doulongvec_minmax`).
    pub fn set_overcommit_sysctl(&mut self, name: &str, value: i64) -> Option<Result<(), Errno>> {
        let oc = &self.tasks.overcommit;
        let unsigned = || u64::try_from(value).map_err(|_| Errno::EINVAL);
        Some(match name {
            "vm.overcommit_memory" => OvercommitMode::from_value(value)
                .ok_or(Errno::EINVAL)
                .map(|m| oc.set_mode(m)),
            "vm.overcommit_ratio" => i32::try_from(value)
                .map_err(|_| Errno::EINVAL)
                .map(|r| oc.set_ratio(i64::from(r))),
            "vm.overcommit_kbytes" => unsigned().map(|v| oc.set_kbytes(v)),
            "vm.admin_reserve_kbytes" => unsigned().map(|v| oc.set_admin_reserve_kbytes(v)),
            "vm.user_reserve_kbytes" => unsigned().map(|v| oc.set_user_reserve_kbytes(v)),
            _ => return None,
        })
    }

    /// Reads one of [`OVERCOMMIT_SYSCTLS`].
    pub fn overcommit_sysctl(&self, name: &str) -> Option<i64> {
        let oc = &self.tasks.overcommit;
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        Some(match name {
            "vm.overcommit_memory" => i64::from(oc.mode().value()),
            "vm.overcommit_ratio" => oc.ratio(),
            "vm.overcommit_kbytes" => clamp(oc.kbytes()),
            "vm.admin_reserve_kbytes" => clamp(oc.admin_reserve_kbytes()),
            "vm.user_reserve_kbytes" => clamp(oc.user_reserve_kbytes()),
            _ => return None,
        })
    }

    /// Fills meminfo's Committed_AS (`vm_memory_committed`) and CommitLimit
    /// (`vm_commit_limit`).
    pub(crate) fn overcommit_meminfo(&self, ex: &mut mm::proc::meminfo::MeminfoExtras) {
        let oc = &self.tasks.overcommit;
        ex.committed_as_kb = oc.committed_pages() << (mm::PAGE_SHIFT - 10);
        ex.commit_limit_pages = Some(oc.vm_commit_limit());
    }

    /// `vm_committed_as` must equal the pages of VM_ACCOUNT VMAs over all
    /// address spaces (what each `exit_mmap` would give back).
    pub fn check_committed_as(&self) -> Result<(), String> {
        let sum: u64 = self.processes.values().map(|p| p.mm.accounted_vm()).sum();
        let got = self.tasks.overcommit.committed_pages();
        if sum != got {
            return Err(format!(
                "vm_committed_as is {got} pages but the VM_ACCOUNT VMAs of all processes hold {sum}"
            ));
        }
        Ok(())
    }

    /// `totalram_pages() + total_swap_pages`: the OOM killer's
    /// `totalpages` for a global OOM.
    pub fn oom_totalpages(&self) -> u64 {
        self.pa.totalram_pages() + self.tasks.overcommit.total_swap_pages()
    }

    /// The process `pid` as the OOM killer sees it.
    fn oom_candidate(&self, p: &crate::process::Process) -> OomCandidate {
        let rss = &p.mm.rss;
        OomCandidate {
            pid: p.pid,
            uid: 0,
            tgid: p.pid,
            comm: p.comm.clone(),
            total_vm: p.mm.total_vm,
            rss_anon: rss.get(RssKind::Anon),
            rss_file: rss.get(RssKind::File),
            rss_shmem: rss.get(RssKind::Shmem),
            swapents: rss.get(RssKind::Swap),
            pgtables_bytes: p.mm.pgtables_bytes,
            oom_score_adj: p.oom_score_adj,
            // is_global_init; lmm has no kernel threads.
            unkillable: p.pid == 1,
            // Victims die at once: none is ever still exiting.
            oom_victim: false,
        }
    }

    /// Every process, in task-list order (creation order, which is pid
    /// order here).
    pub fn oom_candidates(&self) -> Vec<OomCandidate> {
        self.processes
            .values()
            .map(|p| self.oom_candidate(p))
            .collect()
    }

    /// /proc/PID/oom_score.
    pub fn oom_score(&self, pid: u32) -> Result<u64, Errno> {
        let p = self.processes.get(&pid).ok_or(Errno::ESRCH)?;
        let total = self.oom_totalpages();
        let badness = self.oom_candidate(p).badness(total);
        Ok(oom_kill::proc_oom_score(badness, total))
    }

    /// /proc/PID/oom_score_adj.
    pub fn oom_score_adj(&self, pid: u32) -> Result<i16, Errno> {
        Ok(self.processes.get(&pid).ok_or(Errno::ESRCH)?.oom_score_adj)
    }

    /// Writing /proc/PID/oom_score_adj: EINVAL outside -1000..=1000, ESRCH
    /// for no such process. (lmm's tasks are root: lowering it needs
    /// CAP_SYS_RESOURCE, which they have.)
    pub fn set_oom_score_adj(&mut self, pid: u32, v: i64) -> Result<(), Errno> {
        let adj = oom_kill::check_oom_score_adj(v)?;
        self.processes
            .get_mut(&pid)
            .ok_or(Errno::ESRCH)?
            .oom_score_adj = adj;
        Ok(())
    }

    /// Writing the legacy /proc/PID/oom_adj (-17..=15, scaled into
    /// oom_score_adj).
    pub fn set_oom_adj(&mut self, pid: u32, v: i64) -> Result<(), Errno> {
        let adj = oom_kill::oom_adj_to_score_adj(v)?;
        self.processes
            .get_mut(&pid)
            .ok_or(Errno::ESRCH)?
            .oom_score_adj = adj;
        Ok(())
    }

    /// The /proc/PID files of this module, `None` for any other file.
    pub(crate) fn proc_pid_oom(&self, pid: u32, file: &str) -> Option<Result<String, String>> {
        let no = |_| format!("no process with pid {pid}");
        Some(match file {
            "oom_score" => self.oom_score(pid).map(|v| format!("{v}\n")).map_err(no),
            "oom_score_adj" => self
                .oom_score_adj(pid)
                .map(|v| format!("{v}\n"))
                .map_err(no),
            "oom_adj" => self
                .oom_score_adj(pid)
                .map(|v| format!("{}\n", oom_kill::score_adj_to_oom_adj(v)))
                .map_err(no),
            _ => return None,
        })
    }

    /// `out_of_memory`: an allocation of `order` pages with `gfp` failed
    /// for `trigger_pid` (`None`: the sysrq-f trigger, order -1). Unless
    /// the allocation may not invoke the OOM killer
    /// ([`oom_kill::may_oom_kill`]), chooses the task with the highest
    /// badness, logs `dump_header`'s first line, the task table, the
    /// `oom-kill:` summary and the `Killed process` line, counts vmstat
    /// `oom_kill`, and kills it with SIGKILL through the exit path (all its
    /// memory is freed at once). Returns the killed pid.
    pub fn out_of_memory(&mut self, trigger_pid: Option<u32>, gfp: Gfp, order: i32) -> Option<u32> {
        if !oom_kill::may_oom_kill(gfp, order) {
            return None;
        }
        let sysrq = order == -1;
        let (comm, adj) = match trigger_pid.and_then(|p| self.processes.get(&p)) {
            Some(p) => (p.comm.clone(), p.oom_score_adj),
            None => (SYSRQ_COMM.to_string(), 0),
        };
        let totalpages = self.oom_totalpages();
        let cands = self.oom_candidates();
        let log = &self.pa.log;
        let header = |log: &mm::printk::Printk| {
            log.log(oom_kill::invoked_line(&comm, gfp, order, adj));
            for l in oom_kill::dump_tasks(&cands) {
                log.log(l);
            }
        };
        let (index, _points) = match oom_kill::select_bad_process(&cands, totalpages, sysrq) {
            Selection::Chosen { index, points } => (index, points),
            Selection::Abort => return None,
            Selection::Nothing => {
                header(log);
                log.log(oom_kill::NO_KILLABLE.to_string());
                return None;
            }
        };
        let victim = &cands[index];
        header(log);
        log.log(oom_kill::oom_kill_line(victim, self.config.nodes));
        // mark_oom_victim, before the "Killed process" line.
        self.pa.trace.emit_here(|| {
            mm::trace::Event::MarkVictim(mm::trace::Victim {
                pid: victim.pid,
                comm: victim.comm.clone(),
                total_vm: victim.total_vm,
                anon_rss: victim.rss_anon,
                file_rss: victim.rss_file,
                shmem_rss: victim.rss_shmem,
                uid: victim.uid,
                pgtables_bytes: victim.pgtables_bytes,
                oom_score_adj: victim.oom_score_adj,
            })
        });
        // Counted before the signal is sent, as __oom_kill_process does.
        self.pa.events.count(VmEvent::OomKill, 1);
        log.log(oom_kill::killed_line(victim));
        let pid = victim.pid;
        self.exit_signal(pid, KILLED_EXIT_CODE, SIGKILL).ok()?;
        Some(pid)
    }

    /// A fault of `pid` at `addr` ran out of memory: the failed allocation
    /// invokes the OOM killer ([`Machine::out_of_memory`] with
    /// [`FAULT_GFP`], order 0). If the faulting task itself was killed the
    /// access ends with [`UserFault::Killed`]; if another task was, the
    /// fault is retried once; if nobody was, it fails with
    /// [`UserFault::Oom`].
    pub fn fault_out_of_memory(
        &mut self,
        pid: u32,
        addr: u64,
        access: Access,
    ) -> Result<(), UserFault> {
        match self.out_of_memory(Some(pid), FAULT_GFP, 0) {
            Some(victim) if victim == pid => Err(UserFault::Killed { addr }),
            Some(_) => self.do_user_addr_fault(pid, addr, access),
            None => Err(UserFault::Oom { addr }),
        }
    }
}
