//! Reclaim and swap on contents: processes use several times the RAM of
//! the machine, pages go to a swap area and come back, and every byte is
//! checked; `mm::debug` (`Machine::check`: LRU lists against page flags
//! and counters, swap counts against the swap ptes and the swap cache)
//! runs after every step.

mod common;

use std::sync::{Arc, Mutex};

use common::check;
use machine::{Machine, MachineConfig};
use mm::errno::Errno;
use mm::mm_types::RssKind;
use mm::mmap::{MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE};
use mm::swapfile::{SwapHeader, SwapIo};
use mm::types::PAGE_SIZE;
use mm::vmstat::{NodeStat, VmEvent};

const RW: u32 = PROT_READ | PROT_WRITE;
const ANON: u32 = MAP_PRIVATE | MAP_ANONYMOUS;

/// A swap area in host memory.
struct MemSwap(Arc<Mutex<Vec<u8>>>);

impl SwapIo for MemSwap {
    fn read_page(&self, slot: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let d = self.0.lock().unwrap();
        let at = (slot * PAGE_SIZE) as usize;
        buf.copy_from_slice(d.get(at..at + PAGE_SIZE as usize).ok_or(Errno::EIO)?);
        Ok(())
    }
    fn write_page(&self, slot: u64, buf: &[u8]) -> Result<(), Errno> {
        let mut d = self.0.lock().unwrap();
        let at = (slot * PAGE_SIZE) as usize;
        d.get_mut(at..at + PAGE_SIZE as usize)
            .ok_or(Errno::EIO)?
            .copy_from_slice(buf);
        Ok(())
    }
}

/// A machine with `ram_mib` of RAM and a swap area of `swap_pages`.
fn boot_with_swap(ram_mib: u64, swap_pages: u64) -> Machine {
    let mut m = Machine::boot(MachineConfig {
        ram: ram_mib << 20,
        cpus: 2,
        ..Default::default()
    })
    .unwrap();
    let page0 = SwapHeader::write(swap_pages, [7; 16], "lmm").unwrap();
    let mut area = vec![0u8; (swap_pages * PAGE_SIZE) as usize];
    area[..PAGE_SIZE as usize].copy_from_slice(&page0);
    let header = SwapHeader::parse(&page0).unwrap();
    m.sys_swapon(
        "/swapfile",
        Box::new(MemSwap(Arc::new(Mutex::new(area)))),
        &header,
        None,
    )
    .unwrap();
    m
}

/// The tag written at the start and end of page `i` of process `pid`.
fn tag(pid: u32, i: u64, version: u64) -> [u8; 16] {
    let mut t = [0u8; 16];
    t[..8].copy_from_slice(&(u64::from(pid) << 40 | i).to_le_bytes());
    t[8..].copy_from_slice(&version.to_le_bytes());
    t
}

fn write_tags(m: &mut Machine, pid: u32, base: u64, pages: u64, version: u64) {
    for i in 0..pages {
        let t = tag(pid, i, version);
        m.store(pid, base + i * PAGE_SIZE, &t).unwrap();
        m.store(pid, base + i * PAGE_SIZE + PAGE_SIZE - 16, &t)
            .unwrap();
    }
}

/// Checks the tags `owner` wrote, as `pid` sees them.
fn check_tags_of(m: &mut Machine, pid: u32, owner: u32, base: u64, pages: u64, version: u64) {
    for i in 0..pages {
        let t = tag(owner, i, version);
        let a = m.load(pid, base + i * PAGE_SIZE, 16).unwrap();
        let b = m
            .load(pid, base + i * PAGE_SIZE + PAGE_SIZE - 16, 16)
            .unwrap();
        assert_eq!(
            (a.as_slice(), b.as_slice()),
            (&t[..], &t[..]),
            "pid {pid} page {i}"
        );
    }
}

fn check_tags(m: &mut Machine, pid: u32, base: u64, pages: u64, version: u64) {
    check_tags_of(m, pid, pid, base, pages, version);
}

#[test]
fn twice_the_ram_goes_to_swap_and_comes_back_intact() {
    let mut m = boot_with_swap(64, 65536);
    let total = m.pa().totalram_pages();
    let pid = m.spawn("big").unwrap();
    let pages = total * 2;
    let a = m
        .sys_mmap(pid, 0, pages * PAGE_SIZE, RW, ANON, None, 0)
        .unwrap();
    write_tags(&mut m, pid, a, pages, 1);
    check(&m);
    let out = m.pa().events.get(VmEvent::Pswpout);
    assert!(out >= pages - total, "only {out} pages went to swap");
    let p = m.process(pid).unwrap();
    assert!(p.mm.rss.get(RssKind::Swap) > 0);
    assert!(p.mm.rss.get(RssKind::Anon) < total);
    // kswapd woke at the low watermark; direct reclaim ran below min.
    assert!(
        m.pa().events.get(VmEvent::PgstealKswapd) + m.pa().events.get(VmEvent::PgstealDirect) > 0
    );
    check_tags(&mut m, pid, a, pages, 1);
    assert!(m.pa().events.get(VmEvent::Pswpin) > 0);
    check(&m);
    // Rewrite everything: the stale copies on swap must not come back.
    write_tags(&mut m, pid, a, pages, 2);
    check_tags(&mut m, pid, a, pages, 2);
    check(&m);
    m.exit(pid).unwrap();
    check(&m);
    assert_eq!(m.process(pid).map(|_| ()), None);
}

#[test]
fn fork_shares_swapped_pages_and_cow_keeps_them_apart() {
    let mut m = boot_with_swap(64, 65536);
    let total = m.pa().totalram_pages();
    let parent = m.spawn("p").unwrap();
    let pages = total + total / 2;
    let a = m
        .sys_mmap(parent, 0, pages * PAGE_SIZE, RW, ANON, None, 0)
        .unwrap();
    write_tags(&mut m, parent, a, pages, 1);
    let child = m.fork(parent).unwrap();
    check(&m);
    // The child sees the parent's bytes, swapped or not.
    check_tags_of(&mut m, child, parent, a, pages, 1);
    check(&m);
    // The child writes its own version; the parent's stays.
    write_tags(&mut m, child, a, pages / 3, 2);
    check(&m);
    check_tags(&mut m, parent, a, pages, 1);
    check_tags(&mut m, child, a, pages / 3, 2);
    check(&m);
    m.exit(child).unwrap();
    m.exit(parent).unwrap();
    check(&m);
}

#[test]
fn swapoff_brings_every_page_back() {
    let mut m = boot_with_swap(64, 65536);
    let total = m.pa().totalram_pages();
    let pid = m.spawn("s").unwrap();
    let pages = total / 2 + total / 4;
    let a = m
        .sys_mmap(pid, 0, pages * PAGE_SIZE, RW, ANON, None, 0)
        .unwrap();
    write_tags(&mut m, pid, a, pages, 1);
    // Pressure from a second process pushes the first one's pages out.
    let other = m.spawn("o").unwrap();
    let b = m
        .sys_mmap(other, 0, pages * PAGE_SIZE, RW, ANON, None, 0)
        .unwrap();
    write_tags(&mut m, other, b, pages, 1);
    m.exit(other).unwrap();
    let swapped = m.process(pid).unwrap().mm.rss.get(RssKind::Swap);
    assert!(swapped > 0);
    m.sys_swapoff(0).unwrap();
    check(&m);
    assert_eq!(m.process(pid).unwrap().mm.rss.get(RssKind::Swap), 0);
    assert_eq!(m.swap().table.total_swap_pages(), 0);
    assert_eq!(m.pa().nodes[0].stats.get(NodeStat::NrSwapcached), 0);
    check_tags(&mut m, pid, a, pages, 1);
}

#[test]
fn shmem_pages_swap_out_and_back_with_their_bytes() {
    use machine::fs::{O_CREAT, O_RDWR};
    use mm::mmap::MAP_SHARED;
    let mut m = boot_with_swap(64, 65536);
    let total = m.pa().totalram_pages();
    let pid = m.spawn("shm").unwrap();
    // A tmpfs file of a RAM's worth, written through write(2)...
    let fd = m.sys_open(pid, "/tmp/big", O_CREAT | O_RDWR).unwrap();
    let pages = total;
    for i in 0..pages {
        m.file_write(pid, fd, Some(i * PAGE_SIZE), &tag(pid, i, 7))
            .unwrap();
    }
    // ...and shared anonymous memory of half a RAM, written through the MMU.
    let half = total / 2;
    let s = m
        .sys_mmap(
            pid,
            0,
            half * PAGE_SIZE,
            RW,
            MAP_SHARED | MAP_ANONYMOUS,
            None,
            0,
        )
        .unwrap();
    write_tags(&mut m, pid, s, half, 8);
    check(&m);
    assert!(m.pa().events.get(VmEvent::Pswpout) > 0);
    for i in 0..pages {
        let b = m.file_read(pid, fd, Some(i * PAGE_SIZE), 16).unwrap();
        assert_eq!(b, tag(pid, i, 7), "file page {i}");
    }
    check(&m);
    check_tags(&mut m, pid, s, half, 8);
    check(&m);
    // Truncation frees the slots of the pages on swap.
    m.sys_ftruncate(pid, fd, 0).unwrap();
    check(&m);
    // swapoff brings the rest in.
    m.sys_swapoff(0).unwrap();
    check(&m);
    check_tags(&mut m, pid, s, half, 8);
}

#[test]
fn a_swap_file_made_by_the_hosts_mkswap_carries_the_traffic() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join("host-mkswap.img");
    let _ = std::fs::remove_file(&path);
    std::fs::File::create(&path)
        .unwrap()
        .set_len(96 << 20)
        .unwrap();
    let made = ["mkswap", "/sbin/mkswap", "/usr/sbin/mkswap"]
        .iter()
        .any(|cmd| {
            std::process::Command::new(cmd)
                .arg(&path)
                .output()
                .is_ok_and(|o| o.status.success())
        });
    if !made {
        // Visible in `cargo test` output (and counted by .ci/run).
        println!("SKIP: no host mkswap (util-linux) on this machine");
        eprintln!("SKIP: no host mkswap (util-linux) on this machine");
        return;
    }
    let mut m = Machine::boot(MachineConfig {
        ram: 64 << 20,
        cpus: 2,
        swap: Some(machine::swapfile::SwapSpec::File(path.clone())),
        ..Default::default()
    })
    .unwrap();
    let swaps = m.proc("swaps").unwrap();
    assert!(swaps.contains(&format!("{}", path.display())), "{swaps}");
    assert!(swaps.contains("\t98300\t"), "{swaps}");
    let pid = m.spawn("t").unwrap();
    let pages = 2 * m.pa().totalram_pages();
    let a = m
        .sys_mmap(pid, 0, pages * PAGE_SIZE, RW, ANON, None, 0)
        .unwrap();
    write_tags(&mut m, pid, a, pages, 3);
    assert!(m.pa().events.get(VmEvent::Pswpout) > 0);
    check_tags(&mut m, pid, a, pages, 3);
    check(&m);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn pages_read_ahead_from_swap_and_never_mapped_are_reclaimable() {
    let mut m = boot_with_swap(64, 65536);
    let total = m.pa().totalram_pages();
    let pid = m.spawn("ra").unwrap();
    let pages = 2 * total;
    let a = m
        .sys_mmap(pid, 0, pages * PAGE_SIZE, RW, ANON, None, 0)
        .unwrap();
    write_tags(&mut m, pid, a, pages, 1);
    // Touch one page in eight: swap readahead (page-cluster 3) brings the
    // other seven into the swap cache, mapped by no pte.
    for i in (0..pages).step_by(8) {
        m.load(pid, a + i * PAGE_SIZE, 1).unwrap();
    }
    let cached = m.pa().nodes[0].stats.get(NodeStat::NrSwapcached);
    assert!(cached > (total / 2) as i64, "{cached} swap-cache pages");
    // Another process needs most of the RAM: reclaim must take those
    // unmapped swap-cache pages (they are neither shmem nor mapped).
    let other = m.spawn("need").unwrap();
    let b = m
        .sys_mmap(other, 0, total * PAGE_SIZE, RW, ANON, None, 0)
        .unwrap();
    write_tags(&mut m, other, b, total, 2);
    assert_eq!(m.pa().events.get(VmEvent::OomKill), 0);
    check(&m);
    check_tags(&mut m, pid, a, pages, 1);
    check_tags(&mut m, other, b, total, 2);
    check(&m);
}
