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
    assert_eq!(m.pa().nodes[0].stats.get(NodeStat::NrKernelStack), 16);
    let meminfo = m.proc("meminfo").unwrap();
    assert!(meminfo.contains("KernelStack:          16 kB"), "{meminfo}");
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
    assert_eq!(m.pa().nodes[0].stats.get(NodeStat::NrKernelStack), 0);
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
