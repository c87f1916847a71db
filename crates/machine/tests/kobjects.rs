//! A process's kernel objects live in their caches: slabinfo, Slab and
//! KernelStack count them, and exit gives them back.

use machine::{Machine, MachineConfig};
use mm::slab_common::{Kmem, SlabKind};
use mm::vmstat::NodeStat;

/// Objects handed out from a cache (slabinfo's active_objs also counts the
/// free objects of per-CPU slabs, as SLUB's does, so it is not exact).
fn active(m: &Machine, name: &str) -> u64 {
    let k = Kmem::new(&m.slab, &m.pa);
    let id = m.slab.find_cache(name).unwrap();
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
    assert_eq!(m.pa.nodes[0].stats.get(NodeStat::NrKernelStack), 16);
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
    assert_eq!(m.pa.nodes[0].stats.get(NodeStat::NrKernelStack), 0);
    mm::debug::check_page_alloc(&m.pa).unwrap();
}

#[test]
fn process_objects_are_accounted_in_slub() {
    run(SlabKind::Slub);
}

#[test]
fn process_objects_are_accounted_in_slab() {
    run(SlabKind::Slab);
}
