//! x86-64 5-level paging (`--la57`): 5-level process page tables walked by
//! the MMU, TASK_SIZE 2^56 - 4096 with placement below DEFAULT_MAP_WINDOW
//! unless a hint asks for more (linux-facts §6.1-6.2, §3 item 10).

mod common;

use common::{check, free_pages};

use machine::{Machine, MachineConfig};
use mm::arch::pte::PagingMode;
use mm::arch::Arch;
use mm::errno::Errno;
use mm::mmap::{MAP_ANONYMOUS, MAP_FIXED, MAP_POPULATE, MAP_PRIVATE, PROT_READ, PROT_WRITE};
use mm::types::PAGE_SIZE;

const MAP_WINDOW: u64 = 0x7fff_ffff_f000;
const TASK_SIZE_L5: u64 = 0x00ff_ffff_ffff_f000;
const RW: u32 = PROT_READ | PROT_WRITE;
const ANON: u32 = MAP_PRIVATE | MAP_ANONYMOUS;

fn boot(la57: bool) -> Machine {
    let mut m = Machine::boot(MachineConfig {
        arch: Arch::X86_64,
        ram: 256 << 20,
        cpus: 2,
        la57,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(m.spawn("init"), Ok(1));
    m
}

#[test]
fn la57_process_maps_high_and_the_mmu_walks_five_levels() {
    let mut m = boot(true);
    let free0 = free_pages(&m);
    let pid = m.spawn("t").unwrap();
    {
        let p = m.process(pid).unwrap();
        assert_eq!(p.pt.mode(), PagingMode::X86_64L5);
        assert_eq!(p.mm.task_size.as_u64(), TASK_SIZE_L5);
        assert_eq!(p.mm.map_window.as_u64(), MAP_WINDOW);
        assert_eq!(p.mm.mmap_base.as_u64(), 0x7fff_f7ff_f000);
    }
    // MAP_FIXED | MAP_POPULATE far above 128 TiB.
    let hi = 0x7f_0000_0000_0000u64;
    let len = 4 * PAGE_SIZE;
    let a = m
        .sys_mmap(pid, hi, len, RW, ANON | MAP_FIXED | MAP_POPULATE, None, 0)
        .unwrap();
    assert_eq!(a, hi);
    check(&m);
    // A hint of 2^56 (beyond TASK_SIZE) is placed at the top of the 56-bit
    // space; without a hint the address stays below the window.
    let b = m
        .sys_mmap(pid, 1 << 56, PAGE_SIZE, RW, ANON | MAP_POPULATE, None, 0)
        .unwrap();
    assert_eq!(b, 0x00ff_ffff_f7ff_f000 - PAGE_SIZE);
    let c = m
        .sys_mmap(pid, 0, PAGE_SIZE, RW, ANON | MAP_POPULATE, None, 0)
        .unwrap();
    assert_eq!(c, 0x7fff_f7ff_f000 - PAGE_SIZE);
    assert!(c < MAP_WINDOW);
    // Zeroed; write through the MMU across a page boundary and read back.
    assert_eq!(
        m.read_user(pid, a, len as usize).unwrap(),
        vec![0; len as usize]
    );
    let msg = b"five levels of page tables, 57-bit addresses";
    let va = a + PAGE_SIZE - 9;
    m.write_user(pid, va, msg).unwrap();
    assert_eq!(m.read_user(pid, va, msg.len()).unwrap(), msg);
    m.write_user_on(pid, 0, b + 5, b"top").unwrap();
    assert_eq!(m.read_user_on(pid, 1, b + 5, 3).unwrap(), b"top");
    // The software walk agrees with the MMU's, and the bytes are in RAM.
    let p = m.process(pid).unwrap();
    let pa = p.pt.translate(mm::VirtAddr(va)).unwrap();
    let mut got = [0u8; 9];
    m.pa().direct_map().read(pa, &mut got);
    assert_eq!(&got, &msg[..9]);
    // Beyond TASK_SIZE_MAX: ENOMEM.
    assert_eq!(
        m.sys_mmap(pid, TASK_SIZE_L5, PAGE_SIZE, RW, ANON | MAP_FIXED, None, 0),
        Err(Errno::ENOMEM)
    );
    // maps shows the 14-digit addresses; pagemap reaches them.
    let maps = m.proc_pid(pid, "maps").unwrap();
    assert!(
        maps.contains("7f000000000000-7f000000004000 rw-p 00000000 00:00 0 \n"),
        "{maps}"
    );
    assert!(
        maps.contains("\nfffffff7ffe000-fffffff7fff000 rw-p 00000000 00:00 0 \n"),
        "{maps}"
    );
    let pagemap = m.proc_pid(pid, "pagemap").unwrap();
    assert_eq!(pagemap.lines().count(), 6, "{pagemap}");
    // munmap up there frees the pages; exit returns every page.
    m.sys_munmap(pid, a, len).unwrap();
    assert_eq!(m.read_user(pid, a, 1), Err(Errno::EFAULT));
    check(&m);
    m.exit(pid).unwrap();
    check(&m);
    assert_eq!(free_pages(&m), free0);
}

#[test]
fn four_level_machine_is_unchanged_and_la57_needs_x86_64() {
    let mut m = boot(false);
    let pid = m.spawn("t").unwrap();
    let p = m.process(pid).unwrap();
    assert_eq!(p.pt.mode(), PagingMode::X86_64L4);
    assert_eq!(
        (p.mm.task_size.as_u64(), p.mm.map_window.as_u64()),
        (MAP_WINDOW, MAP_WINDOW)
    );
    assert_eq!(
        m.sys_mmap(
            pid,
            0x7f_0000_0000_0000,
            PAGE_SIZE,
            RW,
            ANON | MAP_FIXED,
            None,
            0
        ),
        Err(Errno::ENOMEM)
    );
    let a = m
        .sys_mmap(pid, 1 << 56, PAGE_SIZE, RW, ANON, None, 0)
        .unwrap();
    assert_eq!(a, 0x7fff_f7ff_f000 - PAGE_SIZE);
    let e = Machine::boot(MachineConfig {
        arch: Arch::X86Pae,
        ram: 256 << 20,
        la57: true,
        ..Default::default()
    });
    assert!(e.is_err());
}
