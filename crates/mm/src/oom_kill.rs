//! The OOM killer's pure parts: the badness score of a task, the value
//! /proc/PID/oom_score shows, the choice of a victim among the candidates,
//! and the kernel-log lines of a kill. Mirrors mm/oom_kill.c (`oom_badness`,
//! `oom_evaluate_task`, `select_bad_process`, `dump_header`, `dump_task`,
//! `dump_oom_victim`, `__oom_kill_process`), fs/proc/base.c
//! (`proc_oom_score`, `oom_adj_write`, `oom_adj_read`) and the early exits
//! of mm/page_alloc.c `__alloc_pages_may_oom`, as of Linux 6.18.
//!
//! The machine gathers the candidates (it knows the tasks) and kills the
//! victim through its exit path.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::errno::Errno;
use crate::gfp::Gfp;
use crate::types::PAGE_SIZE;

/// `OOM_SCORE_ADJ_MIN`: a task with this adj is never chosen.
pub const OOM_SCORE_ADJ_MIN: i16 = -1000;
/// `OOM_SCORE_ADJ_MAX`.
pub const OOM_SCORE_ADJ_MAX: i16 = 1000;
/// `OOM_DISABLE`: the legacy /proc/PID/oom_adj value that disables killing.
pub const OOM_DISABLE: i32 = -17;
/// `OOM_ADJUST_MIN`.
pub const OOM_ADJUST_MIN: i32 = -16;
/// `OOM_ADJUST_MAX`.
pub const OOM_ADJUST_MAX: i32 = 15;
/// `PAGE_ALLOC_COSTLY_ORDER`: the OOM killer does not help larger orders.
pub const PAGE_ALLOC_COSTLY_ORDER: i32 = 3;

/// `oom_badness(p, totalpages)` for an eligible task: resident pages plus
/// swap entries plus page-table pages (`pgtables_bytes / PAGE_SIZE`), plus
/// `oom_score_adj` in units of `totalpages / 1000` (integer division first,
/// as Linux normalises). `None` (Linux's `LONG_MIN`) for a task that must
/// not be killed: `oom_score_adj` is OOM_SCORE_ADJ_MIN. (Linux also returns
/// `LONG_MIN` for init, kernel threads, tasks without an mm, reaped mms and
/// tasks in vfork; the caller leaves those out, see [`OomCandidate`].)
pub fn oom_badness(
    rss_pages: u64,
    swapents: u64,
    pgtables_bytes: u64,
    oom_score_adj: i16,
    totalpages: u64,
) -> Option<i64> {
    if oom_score_adj == OOM_SCORE_ADJ_MIN {
        return None;
    }
    let points = rss_pages
        .saturating_add(swapents)
        .saturating_add(pgtables_bytes / PAGE_SIZE);
    let adj = i64::from(oom_score_adj).saturating_mul((totalpages / 1000) as i64);
    Some((points.min(i64::MAX as u64) as i64).saturating_add(adj))
}

/// /proc/PID/oom_score (`proc_oom_score`): with `totalpages` = totalram +
/// total swap, `(1000 + badness * 1000 / totalpages) * 2 / 3` in C's
/// truncating arithmetic, which maps badness into 0..=2000 (about 666 for a
/// task with nothing resident and adj 0); 0 for an unkillable task.
pub fn proc_oom_score(badness: Option<i64>, totalpages: u64) -> u64 {
    let Some(b) = badness else { return 0 };
    let total = (totalpages.max(1)).min(i64::MAX as u64) as i128;
    let points = (1000 + i128::from(b) * 1000 / total) * 2 / 3;
    // Linux stores the long into an unsigned long; the formula cannot go
    // negative for adj >= -999, so the clamp never changes a real value.
    points.clamp(0, i128::from(u64::MAX)) as u64
}

/// Writing /proc/PID/oom_score_adj (`oom_score_adj_write`): EINVAL outside
/// -1000..=1000.
pub fn check_oom_score_adj(v: i64) -> Result<i16, Errno> {
    if (i64::from(OOM_SCORE_ADJ_MIN)..=i64::from(OOM_SCORE_ADJ_MAX)).contains(&v) {
        Ok(v as i16)
    } else {
        Err(Errno::EINVAL)
    }
}

/// Writing the legacy /proc/PID/oom_adj (`oom_adj_write`): EINVAL outside
/// -16..=15 unless it is OOM_DISABLE (-17); 15 becomes 1000, anything else
/// `oom_adj * 1000 / 17` (truncated), so -17 becomes -1000.
pub fn oom_adj_to_score_adj(oom_adj: i64) -> Result<i16, Errno> {
    let ok = (i64::from(OOM_ADJUST_MIN)..=i64::from(OOM_ADJUST_MAX)).contains(&oom_adj)
        || oom_adj == i64::from(OOM_DISABLE);
    if !ok {
        return Err(Errno::EINVAL);
    }
    Ok(if oom_adj == i64::from(OOM_ADJUST_MAX) {
        OOM_SCORE_ADJ_MAX
    } else {
        (oom_adj * i64::from(OOM_SCORE_ADJ_MAX) / i64::from(-OOM_DISABLE)) as i16
    })
}

/// Reading the legacy /proc/PID/oom_adj (`oom_adj_read`): 1000 reads as 15,
/// anything else as `adj * 17 / 1000` (truncated).
pub fn score_adj_to_oom_adj(adj: i16) -> i32 {
    if adj == OOM_SCORE_ADJ_MAX {
        OOM_ADJUST_MAX
    } else {
        i32::from(adj) * -OOM_DISABLE / i32::from(OOM_SCORE_ADJ_MAX)
    }
}

/// Whether a failed allocation may invoke the OOM killer: the early exits
/// of `__alloc_pages_may_oom` (orders above PAGE_ALLOC_COSTLY_ORDER,
/// __GFP_RETRY_MAYFAIL, __GFP_THISNODE, lowmem-only DMA/DMA32 requests), the
/// slowpath's __GFP_NORETRY exit before it, and `out_of_memory`'s refusal
/// to kill for allocations without __GFP_FS. `order` -1 is the sysrq
/// trigger, which calls `out_of_memory` directly.
pub fn may_oom_kill(gfp: Gfp, order: i32) -> bool {
    if order == -1 {
        return true;
    }
    order <= PAGE_ALLOC_COSTLY_ORDER
        && !gfp.contains(Gfp::RETRY_MAYFAIL)
        && !gfp.contains(Gfp::THISNODE)
        && !gfp.contains(Gfp::NORETRY)
        && !gfp.contains(Gfp::DMA)
        && !gfp.contains(Gfp::DMA32)
        && gfp.contains(Gfp::FS)
}

/// One task as the OOM killer sees it (what `dump_task` prints and
/// `oom_badness` reads), in task-list order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OomCandidate {
    /// pid.
    pub pid: u32,
    /// uid (0: lmm's tasks run as root).
    pub uid: u32,
    /// tgid (the pid: no threads).
    pub tgid: u32,
    /// `comm`.
    pub comm: String,
    /// `mm->total_vm`, pages.
    pub total_vm: u64,
    /// MM_ANONPAGES.
    pub rss_anon: u64,
    /// MM_FILEPAGES.
    pub rss_file: u64,
    /// MM_SHMEMPAGES.
    pub rss_shmem: u64,
    /// MM_SWAPENTS.
    pub swapents: u64,
    /// `mm_pgtables_bytes`.
    pub pgtables_bytes: u64,
    /// `signal->oom_score_adj`.
    pub oom_score_adj: i16,
    /// `oom_unkillable_task`: the global init (pid 1) or a kernel thread.
    pub unkillable: bool,
    /// Already an OOM victim that has not released its memory
    /// (`tsk_is_oom_victim` without MMF_OOM_SKIP): the scan is aborted.
    pub oom_victim: bool,
}

impl OomCandidate {
    /// `get_mm_rss`: anon + file + shmem.
    pub fn rss(&self) -> u64 {
        self.rss_anon + self.rss_file + self.rss_shmem
    }
    /// [`oom_badness`] of this task, `None` if it may not be killed.
    pub fn badness(&self, totalpages: u64) -> Option<i64> {
        if self.unkillable {
            return None;
        }
        oom_badness(
            self.rss(),
            self.swapents,
            self.pgtables_bytes,
            self.oom_score_adj,
            totalpages,
        )
    }
}

/// What `select_bad_process` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection {
    /// The candidate at this index, with its points.
    Chosen {
        /// Index into the candidates.
        index: usize,
        /// Its badness.
        points: i64,
    },
    /// A previous victim is still exiting: kill nobody now.
    Abort,
    /// No killable task.
    Nothing,
}

/// `select_bad_process` over `cands` in task-list order: unkillable tasks
/// are skipped; an earlier OOM victim still holding its memory aborts the
/// scan (not for the sysrq trigger, `sysrq`); otherwise the highest badness
/// wins, and on a tie the task met *later* (Linux replaces the choice
/// unless the new points are strictly lower).
pub fn select_bad_process(cands: &[OomCandidate], totalpages: u64, sysrq: bool) -> Selection {
    let mut chosen: Option<(usize, i64)> = None;
    for (i, c) in cands.iter().enumerate() {
        if c.unkillable {
            continue;
        }
        if !sysrq && c.oom_victim {
            return Selection::Abort;
        }
        let Some(points) = c.badness(totalpages) else {
            continue;
        };
        if chosen.is_some_and(|(_, best)| points < best) {
            continue;
        }
        chosen = Some((i, points));
    }
    match chosen {
        Some((index, points)) => Selection::Chosen { index, points },
        None => Selection::Nothing,
    }
}

/// `%#x` of C: `0` for zero, else `0x` and lowercase hex.
fn c_alt_hex(v: u32) -> String {
    if v == 0 {
        String::from("0")
    } else {
        format!("{v:#x}")
    }
}

/// `dump_header`'s first line: `<comm> invoked oom-killer:
/// gfp_mask=%#x(%pGg), order=%d, oom_score_adj=%d`.
pub fn invoked_line(comm: &str, gfp: Gfp, order: i32, oom_score_adj: i16) -> String {
    format!(
        "{comm} invoked oom-killer: gfp_mask={}({}), order={order}, oom_score_adj={oom_score_adj}",
        c_alt_hex(gfp.0),
        gfp.describe()
    )
}

/// `dump_tasks`' two header lines.
pub const TASKS_STATE: &str = "Tasks state (memory values in pages):";
/// The column header `dump_tasks` prints.
pub const TASKS_HEADER: &str = "[  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem pgtables_bytes swapents oom_score_adj name";

/// One `dump_task` row: `[%7d] %5d %5d %8lu %8lu %8lu %8lu %9lu %8ld %8lu
/// <9 spaces>%5hd %s`.
pub fn dump_task_line(c: &OomCandidate) -> String {
    format!(
        "[{:7}] {:5} {:5} {:8} {:8} {:8} {:8} {:9} {:8} {:8}         {:5} {}",
        c.pid,
        c.uid,
        c.tgid,
        c.total_vm,
        c.rss(),
        c.rss_anon,
        c.rss_file,
        c.rss_shmem,
        c.pgtables_bytes,
        c.swapents,
        c.oom_score_adj,
        c.comm
    )
}

/// `dump_tasks`: the header lines, then a row for every task
/// `oom_unkillable_task` lets through, in task-list order.
pub fn dump_tasks(cands: &[OomCandidate]) -> Vec<String> {
    let mut out = Vec::with_capacity(cands.len() + 2);
    out.push(String::from(TASKS_STATE));
    out.push(String::from(TASKS_HEADER));
    out.extend(cands.iter().filter(|c| !c.unkillable).map(dump_task_line));
    out
}

/// `%*pbl` of a node mask with nodes `0..nr_nodes`: `0`, `0-1`, ...
fn node_list(nr_nodes: u32) -> String {
    match nr_nodes {
        0 | 1 => String::from("0"),
        n => format!("0-{}", n - 1),
    }
}

/// `dump_oom_victim`: the one-line summary of a global OOM without a
/// mempolicy (`CONSTRAINT_NONE`, nodemask `(null)`), as printed with
/// cpusets and memcg built in but no cgroups made: the root cpuset `/` and
/// memcg `/`, `mems_allowed` every node.
pub fn oom_kill_line(victim: &OomCandidate, nr_nodes: u32) -> String {
    format!(
        "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed={},global_oom,task_memcg=/,task={},pid={},uid={}",
        node_list(nr_nodes),
        victim.comm,
        victim.pid,
        victim.uid
    )
}

/// `__oom_kill_process`'s report (`K()` converts pages to kB):
/// `Out of memory: Killed process <pid> (<comm>) total-vm:<n>kB,
/// anon-rss:<n>kB, file-rss:<n>kB, shmem-rss:<n>kB, UID:<uid>
/// pgtables:<n>kB oom_score_adj:<adj>`.
pub fn killed_line(victim: &OomCandidate) -> String {
    let k = |pages: u64| pages * (PAGE_SIZE >> 10);
    format!(
        "Out of memory: Killed process {} ({}) total-vm:{}kB, anon-rss:{}kB, file-rss:{}kB, shmem-rss:{}kB, UID:{} pgtables:{}kB oom_score_adj:{}",
        victim.pid,
        victim.comm,
        k(victim.total_vm),
        k(victim.rss_anon),
        k(victim.rss_file),
        k(victim.rss_shmem),
        victim.uid,
        victim.pgtables_bytes >> 10,
        victim.oom_score_adj
    )
}

/// `out_of_memory`'s warning when there is nothing to kill (Linux then
/// panics for a real allocation: "System is deadlocked on memory").
pub const NO_KILLABLE: &str = "Out of memory and no killable processes...";

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(pid: u32, rss: u64, adj: i16) -> OomCandidate {
        OomCandidate {
            pid,
            tgid: pid,
            comm: format!("t{pid}"),
            total_vm: rss + 10,
            rss_anon: rss,
            oom_score_adj: adj,
            ..Default::default()
        }
    }

    #[test]
    fn badness_counts_rss_swap_and_page_tables() {
        // oom_badness: get_mm_rss + MM_SWAPENTS + mm_pgtables_bytes /
        // PAGE_SIZE, then adj *= totalpages / 1000; points += adj.
        assert_eq!(oom_badness(100, 20, 3 * 4096 + 100, 0, 10_000), Some(123));
        // totalpages / 1000 truncates first: 10_999 / 1000 = 10.
        assert_eq!(oom_badness(100, 0, 0, 5, 10_999), Some(150));
        assert_eq!(oom_badness(100, 0, 0, -5, 10_999), Some(50));
        assert_eq!(oom_badness(0, 0, 0, -999, 10_000), Some(-9990));
        // OOM_SCORE_ADJ_MIN: never a candidate (LONG_MIN).
        assert_eq!(oom_badness(1 << 30, 0, 0, -1000, 10_000), None);
    }

    #[test]
    fn oom_score_scales_badness_into_0_to_2000() {
        // proc_oom_score: (1000 + badness * 1000 / totalpages) * 2 / 3.
        assert_eq!(proc_oom_score(Some(0), 1000), 666);
        assert_eq!(proc_oom_score(Some(1000), 1000), 1333);
        // adj 1000 on an empty task: badness = totalpages -> 1333; a task
        // using all memory with adj 1000: 2000.
        assert_eq!(proc_oom_score(Some(2000), 1000), 2000);
        // 150 * 1000 / 10_999 = 13 (truncated) -> 1013 * 2 / 3 = 675.
        assert_eq!(proc_oom_score(Some(150), 10_999), 675);
        // -999 * 10 = -9990 on 10_999 pages: -908 -> 92 * 2 / 3 = 61.
        assert_eq!(proc_oom_score(Some(-9990), 10_999), 61);
        assert_eq!(proc_oom_score(None, 1000), 0);
    }

    #[test]
    fn oom_score_adj_and_legacy_oom_adj() {
        // oom_score_adj_write: EINVAL outside [-1000, 1000].
        assert_eq!(check_oom_score_adj(-1000), Ok(-1000));
        assert_eq!(check_oom_score_adj(1000), Ok(1000));
        assert_eq!(check_oom_score_adj(1001), Err(Errno::EINVAL));
        assert_eq!(check_oom_score_adj(-1001), Err(Errno::EINVAL));
        // oom_adj_write: [-16, 15] or -17; 15 -> 1000, else adj*1000/17.
        assert_eq!(oom_adj_to_score_adj(15), Ok(1000));
        assert_eq!(oom_adj_to_score_adj(-17), Ok(-1000));
        assert_eq!(oom_adj_to_score_adj(-16), Ok(-941));
        assert_eq!(oom_adj_to_score_adj(1), Ok(58));
        assert_eq!(oom_adj_to_score_adj(16), Err(Errno::EINVAL));
        assert_eq!(oom_adj_to_score_adj(-18), Err(Errno::EINVAL));
        // oom_adj_read: 1000 -> 15, else adj*17/1000.
        assert_eq!(score_adj_to_oom_adj(1000), 15);
        assert_eq!(score_adj_to_oom_adj(-1000), -17);
        assert_eq!(score_adj_to_oom_adj(58), 0);
        assert_eq!(score_adj_to_oom_adj(500), 8);
    }

    #[test]
    fn victim_choice() {
        let t = 100_000; // totalpages: adj unit 100 pages
                         // The bigger RSS loses.
        let c = [cand(2, 100, 0), cand(3, 300, 0), cand(4, 200, 0)];
        assert_eq!(
            select_bad_process(&c, t, false),
            Selection::Chosen {
                index: 1,
                points: 300
            }
        );
        // -1000 is never chosen, however big.
        let c = [cand(2, 100, 0), cand(3, 90_000, -1000)];
        assert_eq!(
            select_bad_process(&c, t, false),
            Selection::Chosen {
                index: 0,
                points: 100
            }
        );
        // adj 1000 beats a bigger task: 10 + 1000 * 100 > 50_000.
        let c = [cand(2, 50_000, 0), cand(3, 10, 1000)];
        assert_eq!(
            select_bad_process(&c, t, false),
            Selection::Chosen {
                index: 1,
                points: 100_010
            }
        );
        // Swap entries and page tables count.
        let mut a = cand(2, 100, 0);
        a.swapents = 50;
        let mut b = cand(3, 120, 0);
        b.pgtables_bytes = 20 * 4096;
        let c = [a, b.clone()];
        assert_eq!(
            select_bad_process(&c, t, false),
            Selection::Chosen {
                index: 0,
                points: 150
            }
        );
        b.pgtables_bytes = 31 * 4096;
        let c = [c[0].clone(), b];
        assert_eq!(
            select_bad_process(&c, t, false),
            Selection::Chosen {
                index: 1,
                points: 151
            }
        );
        // A tie goes to the later task (`points < chosen_points` skips).
        let c = [cand(2, 100, 0), cand(3, 100, 0)];
        assert_eq!(
            select_bad_process(&c, t, false),
            Selection::Chosen {
                index: 1,
                points: 100
            }
        );
        // init (pid 1) is never a candidate.
        let mut init = cand(1, 1 << 20, 0);
        init.unkillable = true;
        let c = [init, cand(2, 5, 0)];
        assert_eq!(
            select_bad_process(&c, t, false),
            Selection::Chosen {
                index: 1,
                points: 5
            }
        );
        // Only unkillable or -1000 tasks: nothing.
        let c = [c[0].clone(), cand(3, 5, -1000)];
        assert_eq!(select_bad_process(&c, t, false), Selection::Nothing);
        // A victim still exiting aborts the scan, except for sysrq.
        let mut v = cand(2, 5, 0);
        v.oom_victim = true;
        let c = [v, cand(3, 50, 0)];
        assert_eq!(select_bad_process(&c, t, false), Selection::Abort);
        assert!(matches!(
            select_bad_process(&c, t, true),
            Selection::Chosen { index: 1, .. }
        ));
    }

    #[test]
    fn log_lines_in_linux_format() {
        // dump_header: "%s invoked oom-killer: gfp_mask=%#x(%pGg),
        // order=%d, oom_score_adj=%d".
        let gfp = Gfp(Gfp::HIGHUSER_MOVABLE.0 | Gfp::COMP.0 | Gfp::ZERO.0);
        assert_eq!(
            invoked_line("stress", gfp, 0, 0),
            "stress invoked oom-killer: gfp_mask=0x140dca(GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP), order=0, oom_score_adj=0"
        );
        assert_eq!(
            invoked_line("x", Gfp(0), -1, 5),
            "x invoked oom-killer: gfp_mask=0(none), order=-1, oom_score_adj=5"
        );
        // dump_task: "[%7d] %5d %5d %8lu %8lu %8lu %8lu %9lu %8ld %8lu
        //   %5hd %s" (nine spaces before the adj).
        let c = OomCandidate {
            pid: 1234,
            uid: 0,
            tgid: 1234,
            comm: "hog".into(),
            total_vm: 263_000,
            rss_anon: 250_000,
            rss_file: 300,
            rss_shmem: 2,
            swapents: 7,
            pgtables_bytes: 2_072_576,
            oom_score_adj: -17,
            ..Default::default()
        };
        assert_eq!(
            dump_task_line(&c),
            "[   1234]     0  1234   263000   250302   250000      300         2  2072576        7           -17 hog"
        );
        let lines = dump_tasks(core::slice::from_ref(&c));
        assert_eq!(lines[0], "Tasks state (memory values in pages):");
        assert_eq!(
            lines[1],
            "[  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem pgtables_bytes swapents oom_score_adj name"
        );
        // The row sits under the header: pid column closes at "]" (9
        // chars), rss_shmem is 9 wide like its header.
        assert_eq!(lines[2].find(']'), lines[1].find(']'));
        // dump_oom_victim and __oom_kill_process.
        assert_eq!(
            oom_kill_line(&c, 1),
            "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/,task=hog,pid=1234,uid=0"
        );
        assert!(oom_kill_line(&c, 4).contains(",mems_allowed=0-3,"));
        assert_eq!(
            killed_line(&c),
            "Out of memory: Killed process 1234 (hog) total-vm:1052000kB, anon-rss:1000000kB, file-rss:1200kB, shmem-rss:8kB, UID:0 pgtables:2024kB oom_score_adj:-17"
        );
    }

    #[test]
    fn which_allocations_may_kill() {
        // __alloc_pages_may_oom and out_of_memory's early exits.
        let user = Gfp(Gfp::HIGHUSER_MOVABLE.0 | Gfp::COMP.0);
        assert!(may_oom_kill(user, 0));
        assert!(may_oom_kill(Gfp::KERNEL, 3));
        assert!(!may_oom_kill(Gfp::KERNEL, 4));
        assert!(!may_oom_kill(Gfp(Gfp::KERNEL.0 | Gfp::NORETRY.0), 0));
        assert!(!may_oom_kill(Gfp(Gfp::KERNEL.0 | Gfp::RETRY_MAYFAIL.0), 0));
        assert!(!may_oom_kill(Gfp::NOFS, 0));
        assert!(!may_oom_kill(Gfp(Gfp::KERNEL.0 | Gfp::DMA32.0), 0));
        assert!(may_oom_kill(Gfp::NOFS, -1));
    }
}
