//! Overcommit accounting (vm.overcommit_memory 0/1/2, Committed_AS) and the
//! OOM killer on a whole machine: charges and uncharges across mmap,
//! munmap, fork and exit checked against a model; a machine with little
//! RAM whose processes touch memory until an allocation fails, the victim
//! Linux's rules choose, its memory back, the survivor still working.

mod common;

use common::{check, free_pages};
use machine::mmu::Access;
use machine::oom::{KILLED_EXIT_CODE, SIGKILL};
use machine::process::UserFault;
use machine::{Machine, MachineConfig};
use mm::errno::Errno;
use mm::mmap::{MAP_ANONYMOUS, MAP_NORESERVE, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE};
use mm::types::PAGE_SIZE;
use mm::vmstat::VmEvent;

const RW: u32 = PROT_READ | PROT_WRITE;
const ANON: u32 = MAP_PRIVATE | MAP_ANONYMOUS;

fn boot(ram: u64) -> Machine {
    Machine::boot(MachineConfig {
        ram,
        cpus: 2,
        ..Default::default()
    })
    .unwrap()
}

fn sysctl(m: &mut Machine, name: &str, v: i64) {
    m.set_overcommit_sysctl(name, v).unwrap().unwrap();
}

fn meminfo_kb(m: &Machine, label: &str) -> u64 {
    let text = m.proc("meminfo").unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{label}:")))
        .unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn mmap(m: &mut Machine, pid: u32, pages: u64, prot: u32, flags: u32) -> Result<u64, Errno> {
    m.sys_mmap(pid, 0, pages * PAGE_SIZE, prot, flags, None, 0)
}

/// Committed_AS against the model: the sum of each process's accountable
/// pages, which the test tracks itself.
fn assert_committed(m: &Machine, model: &std::collections::BTreeMap<u32, u64>) {
    let want: u64 = model.values().sum();
    assert_eq!(m.overcommit().committed_pages(), want);
    assert_eq!(meminfo_kb(m, "Committed_AS"), want * 4);
    for (&pid, &pages) in model {
        assert_eq!(
            m.process(pid).unwrap().mm.accounted_vm(),
            pages,
            "pid {pid}"
        );
    }
    check(m);
}

#[test]
fn committed_as_follows_every_charge_and_uncharge() {
    // mm/util.c: every VM_ACCOUNT charge (__vm_enough_memory's
    // vm_acct_memory) and uncharge (vm_unacct_memory at munmap, exit_mmap)
    // moves vm_committed_as, which /proc/meminfo prints as Committed_AS.
    let mut m = boot(64 << 20);
    let mut model = std::collections::BTreeMap::new();
    let a = m.spawn("a").unwrap();
    model.insert(a, 0);
    assert_committed(&m, &model);
    // A private writable mapping is accountable (accountable_mapping).
    let x = mmap(&mut m, a, 100, RW, ANON).unwrap();
    model.insert(a, 100);
    assert_committed(&m, &model);
    // Read-only, shared and (in modes 0 and 1) MAP_NORESERVE mappings are not.
    mmap(&mut m, a, 7, PROT_READ, ANON).unwrap();
    mmap(&mut m, a, 7, RW, MAP_SHARED | MAP_ANONYMOUS).unwrap();
    let nr = mmap(&mut m, a, 7, RW, ANON | MAP_NORESERVE).unwrap();
    assert_committed(&m, &model);
    m.sys_munmap(a, nr, 7 * PAGE_SIZE).unwrap();
    // munmap gives back what it unmaps, part of a VMA too.
    m.sys_munmap(a, x, 30 * PAGE_SIZE).unwrap();
    model.insert(a, 70);
    assert_committed(&m, &model);
    // mprotect: private memory made writable is charged; an unfaulted
    // anonymous VMA made read-only again is given back (mprotect_fixup).
    let ro = mmap(&mut m, a, 5, PROT_READ, ANON).unwrap();
    m.sys_mprotect(a, ro, 5 * PAGE_SIZE, RW).unwrap();
    model.insert(a, 75);
    assert_committed(&m, &model);
    m.sys_mprotect(a, ro, 5 * PAGE_SIZE, PROT_READ).unwrap();
    model.insert(a, 70);
    assert_committed(&m, &model);
    // mremap growth charges the delta; a shrink gives the tail back.
    let y = x + 30 * PAGE_SIZE;
    let y = m
        .sys_mremap(a, y, 70 * PAGE_SIZE, 90 * PAGE_SIZE, 1, 0)
        .unwrap();
    model.insert(a, 90);
    assert_committed(&m, &model);
    m.sys_mremap(a, y, 90 * PAGE_SIZE, 40 * PAGE_SIZE, 0, 0)
        .unwrap();
    model.insert(a, 40);
    assert_committed(&m, &model);
    m.store(a, y, b"touch").unwrap();
    // fork: dup_mmap charges each VM_ACCOUNT VMA of the child.
    let c = m.fork(a).unwrap();
    model.insert(c, 40);
    assert_committed(&m, &model);
    let c2 = m.fork(c).unwrap();
    model.insert(c2, 40);
    mmap(&mut m, c2, 11, RW, ANON).unwrap();
    model.insert(c2, 51);
    assert_committed(&m, &model);
    // exit: exit_mmap gives back nr_accounted.
    m.exit(c).unwrap();
    model.remove(&c);
    assert_committed(&m, &model);
    m.exit(c2).unwrap();
    model.remove(&c2);
    m.exit(a).unwrap();
    model.remove(&a);
    assert_committed(&m, &model);
    assert_eq!(m.overcommit().committed_pages(), 0);
}

#[test]
fn mode_2_refuses_beyond_commit_limit() {
    // __vm_enough_memory, OVERCOMMIT_NEVER: allowed = vm_commit_limit()
    // (overcommit_kbytes >> 2 when set, plus swap: none), less the admin
    // reserve only for non-root (lmm's tasks are root), less
    // min(total_vm / 32, user_reserve_kbytes >> 2); refused unless
    // committed + pages < allowed. do_mmap ignores MAP_NORESERVE in mode 2.
    let mut m = boot(64 << 20);
    let a = m.spawn("a").unwrap();
    sysctl(&mut m, "vm.overcommit_memory", 2);
    sysctl(&mut m, "vm.overcommit_kbytes", 4000); // 1000 pages
    assert_eq!(m.overcommit().vm_commit_limit(), 1000);
    assert_eq!(meminfo_kb(&m, "CommitLimit"), 4000);
    assert_eq!(m.overcommit_sysctl("vm.overcommit_ratio"), Some(0));
    // total_vm 0: the whole limit, strictly below.
    assert_eq!(mmap(&mut m, a, 1000, RW, ANON), Err(Errno::ENOMEM));
    let x = mmap(&mut m, a, 999, RW, ANON).unwrap();
    assert_eq!(m.overcommit().committed_pages(), 999);
    assert_eq!(mmap(&mut m, a, 1, RW, ANON), Err(Errno::ENOMEM));
    // Not charged: shared and read-only mappings.
    mmap(&mut m, a, 50, PROT_READ, ANON).unwrap();
    // MAP_NORESERVE is charged in mode 2.
    m.sys_munmap(a, x, 999 * PAGE_SIZE).unwrap();
    assert_eq!(m.overcommit().committed_pages(), 0);
    // total_vm is now 50: 50 / 32 = 1 page of user reserve kept back.
    assert_eq!(
        mmap(&mut m, a, 999, RW, ANON | MAP_NORESERVE),
        Err(Errno::ENOMEM)
    );
    let n = mmap(&mut m, a, 998, RW, ANON | MAP_NORESERVE).unwrap();
    assert_eq!(m.overcommit().committed_pages(), 998);
    // fork must charge the child's 998 pages again: refused, no child.
    let procs = m.processes().len();
    assert_eq!(m.fork(a), Err(Errno::ENOMEM));
    assert_eq!(m.processes().len(), procs);
    assert_eq!(m.overcommit().committed_pages(), 998);
    check(&m);
    // mprotect to writable of a private read-only mapping is charged.
    m.sys_munmap(a, n, 998 * PAGE_SIZE).unwrap();
    let ro = mmap(&mut m, a, 400, PROT_READ, ANON).unwrap();
    // total_vm 450: 14 pages kept back; 400 fits.
    m.sys_mprotect(a, ro, 400 * PAGE_SIZE, RW).unwrap();
    assert_eq!(m.overcommit().committed_pages(), 400);
    // The fork now fits: 400 + 400 < 1000 - 14.
    let c = m.fork(a).unwrap();
    assert_eq!(m.overcommit().committed_pages(), 800);
    assert_eq!(meminfo_kb(&m, "Committed_AS"), 3200);
    check(&m);
    m.exit(c).unwrap();
    assert_eq!(m.overcommit().committed_pages(), 400);
    // Mode 0 again: NORESERVE is not charged, and only a single request
    // beyond RAM + swap is refused.
    sysctl(&mut m, "vm.overcommit_memory", 0);
    mmap(&mut m, a, 5000, RW, ANON | MAP_NORESERVE).unwrap();
    assert_eq!(m.overcommit().committed_pages(), 400);
    let total = m.pa().totalram_pages();
    assert_eq!(mmap(&mut m, a, total + 1, RW, ANON), Err(Errno::ENOMEM));
    mmap(&mut m, a, total, RW, ANON).unwrap();
    check(&m);
}

#[test]
fn sysctls_are_range_checked() {
    // vm.overcommit_memory: proc_dointvec_minmax 0..2; the kbytes values
    // are unsigned longs; overcommit_ratio an int.
    let mut m = boot(32 << 20);
    assert_eq!(
        m.set_overcommit_sysctl("vm.overcommit_memory", 3),
        Some(Err(Errno::EINVAL))
    );
    assert_eq!(
        m.set_overcommit_sysctl("vm.overcommit_memory", -1),
        Some(Err(Errno::EINVAL))
    );
    assert_eq!(
        m.set_overcommit_sysctl("vm.admin_reserve_kbytes", -1),
        Some(Err(Errno::EINVAL))
    );
    assert_eq!(
        m.set_overcommit_sysctl("vm.overcommit_ratio", 1 << 40),
        Some(Err(Errno::EINVAL))
    );
    assert_eq!(m.set_overcommit_sysctl("vm.nope", 1), None);
    // Boot values: init_admin_reserve / init_user_reserve take 1/32 of the
    // free memory, capped at 8 MiB and 128 MiB.
    let free_kb = m.pa().nr_free_pages() * 4;
    let admin = m.overcommit_sysctl("vm.admin_reserve_kbytes").unwrap() as u64;
    assert!(admin <= 8192 && admin + 64 >= (free_kb / 32).min(8192));
    // CommitLimit with the defaults: totalram * 50 / 100, no swap.
    assert_eq!(
        meminfo_kb(&m, "CommitLimit"),
        m.pa().totalram_pages() * 50 / 100 * 4
    );
}

/// Touches `pages` pages from `va` one page at a time; the first fault
/// that does not resolve ends it.
fn touch_pages(m: &mut Machine, pid: u32, va: u64, pages: u64) -> Result<(), UserFault> {
    for i in 0..pages {
        m.touch(pid, va + i * PAGE_SIZE, 1, Access::Write)?;
    }
    Ok(())
}

fn rss_pages(m: &Machine, pid: u32) -> u64 {
    m.process(pid).unwrap().mm.rss_pages()
}

#[test]
fn oom_kills_the_bigger_task_and_the_machine_goes_on() {
    // mm/oom_kill.c: the allocation that fails invokes out_of_memory, which
    // kills the task with the highest oom_badness (rss + swap + page
    // tables); its memory comes back; the fault that failed is retried.
    let mut m = boot(32 << 20);
    let init = m.spawn("init").unwrap();
    assert_eq!(init, 1);
    let small = m.spawn("small").unwrap();
    let total = m.pa().totalram_pages();
    let s_va = mmap(&mut m, small, total, RW, ANON).unwrap();
    touch_pages(&mut m, small, s_va, 300).unwrap();
    m.pa().drain_all_pages();
    let base_free = free_pages(&m);
    let base_small = (
        rss_pages(&m, small),
        m.process(small).unwrap().mm.pgtables_bytes,
    );
    // The big one takes most of what is left.
    let big = m.spawn("big").unwrap();
    let b_va = mmap(&mut m, big, total, RW, ANON).unwrap();
    let free_now = m.pa().nr_free_pages();
    touch_pages(&mut m, big, b_va, free_now * 3 / 4).unwrap();
    check(&m);
    let big_rss = rss_pages(&m, big);
    assert!(big_rss > 300);
    // small now faults more than is free: the allocation that fails runs
    // the OOM killer, which chooses big; the fault is retried and small
    // carries on.
    let kills = m.pa().events.get(VmEvent::OomKill);
    let more = free_now / 2;
    touch_pages(&mut m, small, s_va + 300 * PAGE_SIZE, more).unwrap();
    assert_eq!(m.pa().events.get(VmEvent::OomKill), kills + 1);
    assert!(m.process(big).is_none(), "big was killed");
    assert!(m.process(small).is_some());
    let log = m.pa().log.messages();
    let at = log
        .iter()
        .position(|l| l.starts_with("small invoked oom-killer: gfp_mask=0x140dca(GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP), order=0, oom_score_adj=0"))
        .expect("dump_header line");
    assert_eq!(log[at + 1], "Tasks state (memory values in pages):");
    // init is unkillable and not listed; small and big are, in pid order.
    assert!(log[at + 3].starts_with(&format!("[{small:7}]")));
    assert!(log[at + 4].starts_with(&format!("[{big:7}]")));
    assert!(log[at + 4].ends_with("            0 big"));
    assert_eq!(
        log[at + 5],
        format!("oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/,task=big,pid={big},uid=0")
    );
    assert!(log[at + 6].starts_with(&format!(
        "Out of memory: Killed process {big} (big) total-vm:{}kB, anon-rss:{}kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:",
        total * 4,
        big_rss * 4
    )));
    check(&m);
    // Everything big held is back: free pages are the baseline less what
    // small added since (its new pages and page tables).
    m.pa().drain_all_pages();
    let (rss_now, pt_now) = (
        rss_pages(&m, small),
        m.process(small).unwrap().mm.pgtables_bytes,
    );
    let grew = (rss_now - base_small.0) + (pt_now - base_small.1) / PAGE_SIZE;
    assert_eq!(free_pages(&m), base_free - grew);
    assert_eq!(rss_now, 300 + more);
    // The machine keeps working: small faults new pages, a new task runs.
    touch_pages(&mut m, small, s_va + (300 + more) * PAGE_SIZE, 64).unwrap();
    let late = m.spawn("late").unwrap();
    let l_va = mmap(&mut m, late, 64, RW, ANON).unwrap();
    touch_pages(&mut m, late, l_va, 64).unwrap();
    assert_eq!(m.pa().events.get(VmEvent::OomKill), kills + 1);
    check(&m);
}

#[test]
fn faulting_task_that_is_the_biggest_is_killed_itself() {
    // The OOM killer may choose the allocating task: the fault then ends
    // with SIGKILL, and its parent's wait sees a task killed by signal 9.
    let mut m = boot(32 << 20);
    let _init = m.spawn("init").unwrap();
    let parent = m.spawn("parent").unwrap();
    m.pa().drain_all_pages();
    let before = free_pages(&m);
    let hog = m.fork(parent).unwrap();
    let total = m.pa().totalram_pages();
    let va = mmap(&mut m, hog, total, RW, ANON).unwrap();
    let r = touch_pages(&mut m, hog, va, total);
    assert!(matches!(r, Err(UserFault::Killed { .. })), "{r:?}");
    assert!(m.process(hog).is_none());
    let z = m.tasks().zombies[&hog];
    assert_eq!((z.signal, z.wait_status()), (Some(SIGKILL), SIGKILL));
    assert_eq!(m.wait(parent, -1), Ok((hog, KILLED_EXIT_CODE)));
    check(&m);
    // Its memory, page tables, kernel stack and objects are all back.
    m.pa().drain_all_pages();
    assert_eq!(free_pages(&m), before);
    // The parent still works.
    let p_va = mmap(&mut m, parent, 16, RW, ANON).unwrap();
    touch_pages(&mut m, parent, p_va, 16).unwrap();
    check(&m);
}

#[test]
fn oom_score_adj_decides_and_proc_files_show_it() {
    // oom_score_adj -1000 is never chosen; 1000 beats a bigger task;
    // /proc/PID/oom_score is (1000 + badness * 1000 / totalpages) * 2 / 3.
    let mut m = boot(32 << 20);
    let _init = m.spawn("init").unwrap();
    let a = m.spawn("a").unwrap();
    let b = m.spawn("b").unwrap();
    let c = m.spawn("c").unwrap();
    for (pid, pages) in [(a, 400), (b, 200), (c, 100)] {
        let va = mmap(&mut m, pid, pages, RW, ANON).unwrap();
        touch_pages(&mut m, pid, va, pages).unwrap();
    }
    m.set_oom_score_adj(a, -1000).unwrap();
    m.set_oom_score_adj(c, 1000).unwrap();
    assert_eq!(m.set_oom_score_adj(b, 1001), Err(Errno::EINVAL));
    assert_eq!(m.set_oom_score_adj(99, 0), Err(Errno::ESRCH));
    let total = m.oom_totalpages();
    let p = m.process(b).unwrap();
    let badness = (p.mm.rss_pages() + p.mm.pgtables_bytes / PAGE_SIZE) as i64;
    let want = (1000 + badness * 1000 / total as i64) * 2 / 3;
    assert_eq!(m.oom_score(b), Ok(want as u64));
    assert_eq!(m.proc_pid(b, "oom_score").unwrap(), format!("{want}\n"));
    assert_eq!(m.proc_pid(a, "oom_score").unwrap(), "0\n");
    assert_eq!(m.proc_pid(c, "oom_score_adj").unwrap(), "1000\n");
    assert_eq!(m.proc_pid(c, "oom_adj").unwrap(), "15\n");
    m.set_oom_adj(b, -17).unwrap();
    assert_eq!(m.oom_score_adj(b), Ok(-1000));
    m.set_oom_adj(b, 0).unwrap();
    // Inherited at fork.
    let cc = m.fork(c).unwrap();
    assert_eq!(m.oom_score_adj(cc), Ok(1000));
    m.exit(cc).unwrap();
    // sysrq-f: c (adj 1000) goes first, then b; a (-1000) and init never.
    assert_eq!(m.out_of_memory(None, mm::gfp::Gfp::KERNEL, -1), Some(c));
    assert_eq!(m.out_of_memory(None, mm::gfp::Gfp::KERNEL, -1), Some(b));
    assert_eq!(m.out_of_memory(None, mm::gfp::Gfp::KERNEL, -1), None);
    assert!(m.process(a).is_some() && m.process(1).is_some());
    let log = m.pa().log.messages();
    assert!(log.iter().any(|l| {
        l == "kworker/0:1 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=-1, oom_score_adj=0"
    }));
    assert_eq!(
        log.last().unwrap(),
        "Out of memory and no killable processes..."
    );
    // Allocations that may not kill: costly orders, NORETRY, no __GFP_FS.
    assert_eq!(m.out_of_memory(Some(a), mm::gfp::Gfp::KERNEL, 4), None);
    assert_eq!(m.out_of_memory(Some(a), mm::gfp::Gfp::NOFS, 0), None);
    check(&m);
}
