//! A process's kernel objects live in their caches: slabinfo, Slab and
//! KernelStack count them, and exit gives them back.

use machine::{Machine, MachineConfig};
use mm::slab_common::{Kmem, SlabKind};
use mm::vmstat::NodeStat;

/// Objects handed out from a cache (slabinfo's active_objs also counts the
/// free objects of per-CPU slabs, as SLUB's does, so it is not exact).
fn active(m: &Machine, name: &str) -> u64 {
    let k = Kmem::new(m.slab(), m.pa());
    let id = m.slab().find_cache(name).unwrap();
    k.validate(id).unwrap().live
}

fn run(kind: SlabKind) {
    let mut m = Machine::boot(MachineConfig {
        ram: 512 << 20,
        slab: kind,
        ..Default::default()
    })
    .unwrap();
    let filp0 = active(&m, "filp");
    // The idle task of the second CPU has had its stack since boot.
    let idle_kb = m.pa().nodes[0].stats.get(NodeStat::NrKernelStack);
    assert_eq!(idle_kb, 16);
    let (tasks0, mms0, vmas0) = (
        active(&m, "task_struct"),
        active(&m, "mm_struct"),
        active(&m, "vm_area_struct"),
    );
    let pid = m.spawn("true").unwrap();
    m.exec(pid, "/bin/true", &["/bin/true".to_string()], &[])
        .unwrap();
    let map_count = m.process(pid).unwrap().mm.map_count() as u64;
    assert_eq!(active(&m, "task_struct"), tasks0 + 1);
    assert_eq!(active(&m, "mm_struct"), mms0 + 1);
    assert_eq!(active(&m, "vm_area_struct"), vmas0 + map_count);
    // One struct file each for /usr/bin/true and ld.so.
    assert_eq!(active(&m, "filp"), filp0 + 2);
    // THREAD_SIZE: 16 KiB kernel stack on x86-64, counted in kB.
    assert_eq!(
        m.pa().nodes[0].stats.get(NodeStat::NrKernelStack),
        idle_kb + 16
    );
    let meminfo = m.proc("meminfo").unwrap();
    assert!(meminfo.contains("KernelStack:          32 kB"), "{meminfo}");
    let slabinfo = m.proc("slabinfo").unwrap();
    assert!(slabinfo.starts_with("slabinfo - version: 2.1\n"));
    assert!(
        slabinfo.lines().any(|l| l.starts_with("task_struct ")),
        "{slabinfo}"
    );
    // A mapping adds a VMA object; unmapping it gives it back.
    let a = m.sys_mmap(pid, 0, 8192, 3, 0x22, None, 0).unwrap();
    assert_eq!(active(&m, "vm_area_struct"), vmas0 + map_count + 1);
    m.sys_munmap(pid, a, 8192).unwrap();
    assert_eq!(active(&m, "vm_area_struct"), vmas0 + map_count);
    m.exit(pid).unwrap();
    assert_eq!(active(&m, "task_struct"), tasks0);
    assert_eq!(active(&m, "mm_struct"), mms0);
    assert_eq!(active(&m, "vm_area_struct"), vmas0);
    assert_eq!(active(&m, "filp"), filp0);
    assert_eq!(m.pa().nodes[0].stats.get(NodeStat::NrKernelStack), idle_kb);
    mm::debug::check_page_alloc(m.pa()).unwrap();
}

#[test]
fn process_objects_are_accounted_in_slub() {
    run(SlabKind::Slub);
}

#[test]
fn process_objects_are_accounted_in_slab() {
    run(SlabKind::Slab);
}

/// The vmallocinfo lines of task stacks.
fn stacks(m: &Machine) -> Vec<String> {
    m.proc("vmallocinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(" kernel_clone+"))
        .map(String::from)
        .collect()
}

/// CONFIG_VMAP_STACK (y on x86-64; this host's /proc/vmallocinfo shows
/// each task's stack as `20480 kernel_clone+0x94/0x3e0 pages=4 vmalloc
/// N0=4`): THREAD_SIZE (16 KiB) of pages plus a guard page, aligned to
/// THREAD_ALIGN. kernel/fork.c keeps NR_CACHED_STACKS (2) freed stacks per
/// CPU for the next task, zeroed before reuse, and KernelStack counts only
/// the stacks of live tasks.
#[test]
fn x86_64_task_stacks_are_vmalloc_areas_cached_per_cpu() {
    let mut m = Machine::boot(MachineConfig {
        ram: 256 << 20,
        cpus: 1,
        ..Default::default()
    })
    .unwrap();
    let pids: Vec<u32> = (0..4).map(|i| m.spawn(&format!("t{i}")).unwrap()).collect();
    let lines = stacks(&m);
    assert_eq!(lines.len(), 4, "{lines:?}");
    for l in &lines {
        let f: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(f[1], "20480", "{l}");
        assert_eq!(&f[3..], ["pages=4", "vmalloc", "N0=4"], "{l}");
    }
    let areas: Vec<(u64, u64)> = m
        .vmap_areas()
        .areas()
        .filter(|a| a.caller.starts_with("kernel_clone+"))
        .map(|a| (a.addr.0, a.size))
        .collect();
    assert!(
        areas.iter().all(|&(a, s)| a % 16384 == 0 && s == 20480),
        "{areas:x?}"
    );
    let stack_kb = |m: &Machine| m.pa().nodes[0].stats.get(NodeStat::NrKernelStack);
    assert_eq!(stack_kb(&m), 4 * 16);
    // Dirty a stack page, then let its task go: the stack stays mapped in
    // the CPU's cache (two of the three freed stacks), the third is freed.
    let first = areas[0].0;
    m.kernel_write(mm::types::VirtAddr(first), b"stale")
        .unwrap();
    for &pid in &pids[..3] {
        m.exit(pid).unwrap();
    }
    assert_eq!(stacks(&m).len(), 3);
    assert_eq!(stack_kb(&m), 16);
    let meminfo = m.proc("meminfo").unwrap();
    assert!(meminfo.contains("VmallocUsed:          48 kB"), "{meminfo}");
    // The next task takes a cached stack, cleared of what it held.
    let n = m.spawn("new").unwrap();
    assert_eq!(stacks(&m).len(), 3);
    assert_eq!(stack_kb(&m), 32);
    let mut buf = [0xffu8; 5];
    for &(a, _) in &areas[..2] {
        m.kernel_read(mm::types::VirtAddr(a), &mut buf).unwrap();
        assert_ne!(&buf, b"stale");
    }
    m.exit(n).unwrap();
    m.exit(pids[3]).unwrap();
    assert_eq!(stack_kb(&m), 0);
    assert_eq!(stacks(&m).len(), 2);
    mm::debug::check_page_alloc(m.pa()).unwrap();
}

/// 32-bit x86 has no VMAP_STACK: stacks are THREAD_SIZE (8 KiB) blocks of
/// the buddy allocator, never in vmallocinfo.
#[test]
fn x86_32_task_stacks_come_from_the_buddy_allocator() {
    let mut m = Machine::boot(MachineConfig {
        arch: mm::arch::Arch::X86,
        ram: 256 << 20,
        ..Default::default()
    })
    .unwrap();
    m.spawn("t").unwrap();
    assert!(stacks(&m).is_empty());
    assert_eq!(m.pa().nodes[0].stats.get(NodeStat::NrKernelStack), 8);
}

/// A fresh kernel's vmallocinfo is not empty: on x86-64 each CPU's IRQ
/// stack is a vmap of its percpu backing store (`irq_init_percpu_irqstack`,
/// IRQ_STACK_SIZE 16 KiB + guard, flag vmap) and each secondary CPU's idle
/// task has a VMAP_STACK stack (`fork_idle`), counted in KernelStack. The
/// line shapes are this host's /proc/vmallocinfo. (arm64's boot areas:
/// tests/arm64.rs.)
#[test]
fn a_fresh_kernel_has_irq_and_idle_stacks_in_vmallocinfo() {
    for (arch, cpus) in [
        (mm::arch::Arch::X86_64, 2usize),
        (mm::arch::Arch::X86_64, 4),
        (mm::arch::Arch::X86, 2),
    ] {
        let m = Machine::boot(MachineConfig {
            arch,
            ram: 512 << 20,
            cpus,
            ..Default::default()
        })
        .unwrap();
        let info = m.proc("vmallocinfo").unwrap();
        let count = |tail: &str| info.lines().filter(|l| l.ends_with(tail)).count();
        let irq = "   20480 irq_init_percpu_irqstack+0xca/0x100 vmap";
        let idle = "   20480 fork_idle+0x74/0x120 pages=4 vmalloc N0=4";
        let (want_irq, want_idle) = match arch {
            mm::arch::Arch::X86_64 => (cpus, cpus - 1),
            _ => (0, 0),
        };
        assert_eq!(count(irq), want_irq, "{arch:?} {cpus}:\n{info}");
        assert_eq!(count(idle), want_idle, "{arch:?} {cpus}:\n{info}");
        assert_eq!(info.lines().count(), want_irq + want_idle, "{info}");
        let stack_kb = m.pa().nodes[0].stats.get(NodeStat::NrKernelStack);
        assert_eq!(stack_kb, 16 * want_idle as i64, "{arch:?} {cpus}");
        // CPU n's IRQ stack area (made in CPU order, lowest address first)
        // maps the first page of CPU n's percpu unit.
        let irq_areas: Vec<u64> = m
            .vmap_areas()
            .areas()
            .filter(|a| a.caller.starts_with("irq_init_percpu_irqstack+"))
            .map(|a| a.addr.0)
            .collect();
        for (cpu, &va) in irq_areas.iter().enumerate() {
            let pa = m.kernel_pt().unwrap().translate(mm::types::VirtAddr(va));
            assert_eq!(pa, Some(m.pa().percpu_units[cpu]), "cpu {cpu}");
        }
        mm::debug::check_page_alloc(m.pa()).unwrap();
    }
}

/// A thread group: each thread takes its own task_struct, pid and kernel
/// stack (not a signal struct or creds: shared), gets the next pid as its
/// tid, shares the process's mm (one mm_struct), shows in `Threads:` and
/// stat's num_threads, and gives its objects back at its exit; the last
/// thread's exit is the group's.
#[test]
fn threads_share_one_mm_and_have_their_own_task_objects() {
    let mut m = Machine::boot(MachineConfig {
        ram: 256 << 20,
        ..Default::default()
    })
    .unwrap();
    let pid = m.spawn("true").unwrap();
    m.exec(pid, "/bin/true", &["/bin/true".to_string()], &[])
        .unwrap();
    let count = |m: &Machine| {
        (
            active(m, "task_struct"),
            active(m, "pid"),
            active(m, "signal_cache"),
            active(m, "mm_struct"),
            m.pa().nodes[0].stats.get(NodeStat::NrKernelStack),
        )
    };
    let one = count(&m);
    let threads = |m: &mut Machine| {
        let status = m.proc_pid(pid, "status").unwrap();
        let stat = m.proc_pid(pid, "stat").unwrap();
        let n: usize = status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:\t"))
            .unwrap()
            .parse()
            .unwrap();
        // Field 20 of stat is num_threads (after "pid (comm)").
        let f: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        assert_eq!(f[17].parse::<usize>().unwrap(), n, "{stat}");
        n
    };
    assert_eq!(threads(&mut m), 1);
    let t1 = m.clone_thread(pid).unwrap();
    let t2 = m.clone_thread(pid).unwrap();
    assert_eq!((t1, t2), (pid + 1, pid + 2));
    // A thread's tid is not a process: the next fork gets the next pid.
    assert!(m.process(t1).is_none());
    assert_eq!(m.process(pid).unwrap().threads, vec![pid, t1, t2]);
    let three = count(&m);
    assert_eq!(three.0, one.0 + 2);
    assert_eq!(three.1, one.1 + 2);
    assert_eq!(three.2, one.2);
    assert_eq!(three.3, one.3);
    assert_eq!(three.4, one.4 + 2 * 16);
    assert_eq!(threads(&mut m), 3);
    // A fault any thread takes is the process's, on its one mm.
    let a = m.sys_mmap(pid, 0, 4096, 3, 0x22, None, 0).unwrap();
    let before = m.process(pid).unwrap().flt.minor;
    m.touch(pid, a, 1, machine::mmu::Access::Write).unwrap();
    assert_eq!(m.process(pid).unwrap().flt.minor, before + 1);
    assert_eq!(m.exit_thread(pid, t1), Ok(2));
    assert_eq!(m.exit_thread(pid, t1), Err(mm::errno::Errno::ESRCH));
    assert_eq!(count(&m).0, one.0 + 1);
    assert_eq!(threads(&mut m), 2);
    // The leader ends first (exit(2) in main): it is no longer counted,
    // its objects stay until the group ends.
    assert_eq!(m.exit_thread(pid, pid), Ok(1));
    assert_eq!(threads(&mut m), 1);
    assert_eq!(count(&m).0, one.0 + 1);
    assert_eq!(m.exit_thread(pid, t2), Err(mm::errno::Errno::EBUSY));
    let tasks0 = one.0 - 1;
    m.exit(pid).unwrap();
    assert_eq!(active(&m, "task_struct"), tasks0);
    assert_eq!(active(&m, "pid"), one.1 - 1);
    assert_eq!(m.spawn("next"), Ok(t2 + 1));
    mm::debug::check_page_alloc(m.pa()).unwrap();
}

/// Field `i` of a /proc stat line after "pid (comm)" (0: state).
fn stat_field(stat: &str, i: usize) -> String {
    stat.rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect::<Vec<_>>()[i]
        .to_string()
}

/// Each thread counts its own faults (task/TID/stat: its tid first, its
/// minflt, exit_signal -1 but for the leader; the group's sum in
/// /proc/PID/stat), and an exec in a thread group is de_thread's: the
/// other threads' task objects are freed, the exec'ing thread carries on
/// with the group's pid as its tid and its own fault counts.
#[test]
fn threads_count_their_own_faults_and_exec_ends_the_others() {
    let mut m = Machine::boot(MachineConfig {
        ram: 256 << 20,
        ..Default::default()
    })
    .unwrap();
    let pid = m.spawn("true").unwrap();
    let argv = ["/bin/true".to_string()];
    m.exec(pid, "/bin/true", &argv, &[]).unwrap();
    let one = (active(&m, "task_struct"), active(&m, "pid"));
    let t1 = m.clone_thread(pid).unwrap();
    let t2 = m.clone_thread(pid).unwrap();
    let a = m.sys_mmap(pid, 0, 3 * 4096, 3, 0x22, None, 0).unwrap();
    let total = m.process(pid).unwrap().flt.minor;
    let leader = m.process(pid).unwrap().thread_flt[&pid].minor;
    for (tid, page) in [(t1, 0), (t1, 1), (t2, 2)] {
        m.process_mut(pid).unwrap().running = tid;
        m.touch(pid, a + page * 4096, 1, machine::mmu::Access::Write)
            .unwrap();
    }
    let stat = |m: &mut Machine, tid| m.proc_tid(pid, tid, "stat").unwrap();
    let s1 = stat(&mut m, t1);
    assert!(s1.starts_with(&format!("{t1} (true) R ")), "{s1}");
    // minflt (field 10, index 7), exit_signal (38, index 35),
    // num_threads (20, index 17).
    assert_eq!(stat_field(&s1, 7), "2", "{s1}");
    assert_eq!(stat_field(&s1, 35), "-1", "{s1}");
    assert_eq!(stat_field(&s1, 17), "3", "{s1}");
    assert_eq!(stat_field(&stat(&mut m, t2), 7), "1");
    let s0 = stat(&mut m, pid);
    assert_eq!(stat_field(&s0, 7), leader.to_string(), "{s0}");
    assert_eq!(stat_field(&s0, 35), "17", "{s0}");
    let group = m.proc_pid(pid, "stat").unwrap();
    assert_eq!(stat_field(&group, 7), (total + 3).to_string(), "{group}");
    let status = m.proc_tid(pid, t2, "status").unwrap();
    assert!(
        status.contains(&format!("Tgid:\t{pid}\nPid:\t{t2}\n")),
        "{status}"
    );
    assert!(m.proc_tid(pid, t2 + 1, "stat").is_err());
    // The same maps from every thread.
    assert_eq!(
        m.proc_tid(pid, t1, "maps").unwrap(),
        m.proc_pid(pid, "maps").unwrap()
    );

    // t1 execs: t2 and the old leader's task go, t1 is the group's one
    // thread under the pid, with its own two faults and exec's.
    m.process_mut(pid).unwrap().running = t1;
    m.exec(pid, "/bin/true", &argv, &[]).unwrap();
    let p = m.process(pid).unwrap();
    assert_eq!(p.threads, vec![pid]);
    let exec_faults = p.flt.minor - (total + 3);
    assert!(exec_faults > 0);
    assert_eq!(p.thread_flt[&pid].minor, 2 + exec_faults);
    assert_eq!((active(&m, "task_struct"), active(&m, "pid")), one);
    let s = stat(&mut m, pid);
    assert_eq!(stat_field(&s, 17), "1", "{s}");
    assert!(m.proc_tid(pid, t1, "stat").is_err());
    m.exit(pid).unwrap();
    mm::debug::check_page_alloc(m.pa()).unwrap();
}
