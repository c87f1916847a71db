//! Demand paging, the page cache, fork and copy-on-write, checked on
//! contents: every test writes bytes and reads them back through the MMU
//! of the processes involved, and runs `mm::debug` (`Machine::check`:
//! allocator, VMA trees, RSS against ptes, mapcounts and refcounts against
//! every pte, the rmap walk) after every step.

mod common;

use common::{check, free_pages};
use machine::fs::{O_CREAT, O_RDONLY, O_RDWR};
use machine::mmu::Access;
use machine::process::UserFault;
use machine::{Machine, MachineConfig};
use mm::memory::SegvCode;
use mm::mm_types::RssKind;
use mm::mmap::{
    MAP_ANONYMOUS, MAP_FIXED, MAP_GROWSDOWN, MAP_POPULATE, MAP_PRIVATE, MAP_SHARED, PROT_NONE,
    PROT_READ, PROT_WRITE,
};
use mm::types::PAGE_SIZE;
use mm::vmstat::VmEvent;

const RW: u32 = PROT_READ | PROT_WRITE;
const ANON: u32 = MAP_PRIVATE | MAP_ANONYMOUS;

fn boot() -> Machine {
    Machine::boot(MachineConfig {
        ram: 256 << 20,
        cpus: 2,
        ..Default::default()
    })
    .unwrap()
}

fn anon(m: &mut Machine, pid: u32, pages: u64, flags: u32) -> u64 {
    m.sys_mmap(pid, 0, pages * PAGE_SIZE, RW, flags, None, 0)
        .unwrap()
}

fn rss(m: &Machine, pid: u32, k: RssKind) -> u64 {
    m.process(pid).unwrap().mm.rss.get(k)
}

fn pfn_of(m: &Machine, pid: u32, va: u64) -> Option<u64> {
    m.process(pid)
        .unwrap()
        .pt
        .translate(mm::VirtAddr(va))
        .map(|pa| pa.0 >> 12)
}

fn event(m: &Machine, e: VmEvent) -> u64 {
    m.pa().events.get(e)
}

#[test]
fn demand_zero_read_maps_the_zero_page_and_write_allocates() {
    let mut m = boot();
    let pid = m.spawn("t").unwrap();
    let a = anon(&mut m, pid, 4, ANON);
    let faults0 = event(&m, VmEvent::Pgfault);
    // A read maps the shared zero page: no RSS, reads zeroes.
    assert_eq!(m.load(pid, a, 8), Ok(vec![0; 8]));
    assert_eq!(pfn_of(&m, pid, a), m.tasks().zero_pfn.map(|p| p.0));
    assert_eq!(rss(&m, pid, RssKind::Anon), 0);
    check(&m);
    // A write then copies the zero page into a page of its own.
    m.store(pid, a + 5, b"hello").unwrap();
    assert_ne!(pfn_of(&m, pid, a), m.tasks().zero_pfn.map(|p| p.0));
    assert_eq!(m.load(pid, a, 10).unwrap(), b"\0\0\0\0\0hello");
    assert_eq!(rss(&m, pid, RssKind::Anon), 1);
    // A first write to an untouched page is one fault.
    m.store(pid, a + PAGE_SIZE, b"x").unwrap();
    assert_eq!(rss(&m, pid, RssKind::Anon), 2);
    assert_eq!(event(&m, VmEvent::Pgfault) - faults0, 3);
    assert_eq!(m.process(pid).unwrap().flt.minor, 3);
    assert_eq!(m.process(pid).unwrap().flt.major, 0);
    let stat = m.proc_pid(pid, "stat").unwrap();
    let f: Vec<&str> = stat.split(' ').collect();
    assert_eq!(f.len(), 52, "stat has 52 fields: {stat}");
    assert_eq!((f[9], f[11]), ("3", "0"), "minflt and majflt in stat");
    assert_eq!(f[23], "2", "rss in stat");
    check(&m);
    m.exit(pid).unwrap();
    check(&m);
}

#[test]
fn segv_codes_say_why() {
    let mut m = boot();
    let pid = m.spawn("t").unwrap();
    let ro = m
        .sys_mmap(pid, 0, PAGE_SIZE, PROT_READ, ANON, None, 0)
        .unwrap();
    let none = m
        .sys_mmap(pid, 0, PAGE_SIZE, PROT_NONE, ANON, None, 0)
        .unwrap();
    let accerr = |addr| UserFault::Segv {
        addr,
        code: SegvCode::AccErr,
    };
    assert_eq!(m.store(pid, ro, b"x"), Err(accerr(ro)));
    assert_eq!(m.load(pid, none, 1), Err(accerr(none)));
    assert_eq!(m.touch(pid, ro, 1, Access::Exec), Err(accerr(ro)));
    assert_eq!(
        m.load(pid, 0x1000, 1),
        Err(UserFault::Segv {
            addr: 0x1000,
            code: SegvCode::MapErr
        })
    );
    // copy_to_user of the same turns into EFAULT.
    assert_eq!(m.write_user(pid, ro, b"x"), Err(mm::errno::Errno::EFAULT));
    check(&m);
}

#[test]
fn fork_shares_until_written_then_copies() {
    let mut m = boot();
    let parent = m.spawn("parent").unwrap();
    let free0 = free_pages(&m);
    let a = anon(&mut m, parent, 8, ANON);
    for i in 0..8 {
        m.store(parent, a + i * PAGE_SIZE, format!("page {i}").as_bytes())
            .unwrap();
    }
    let child = m.fork(parent).unwrap();
    check(&m);
    assert_eq!(m.process(child).unwrap().ppid, parent);
    // Both see the data written before fork, in the same frames.
    for i in 0..8 {
        let va = a + i * PAGE_SIZE;
        let want = format!("page {i}");
        assert_eq!(m.load(child, va, want.len()).unwrap(), want.as_bytes());
        assert_eq!(pfn_of(&m, child, va), pfn_of(&m, parent, va));
    }
    assert_eq!(rss(&m, child, RssKind::Anon), 8);
    // A write by the child copies the page; the parent keeps its bytes.
    m.store(child, a, b"child!").unwrap();
    assert_ne!(pfn_of(&m, child, a), pfn_of(&m, parent, a));
    assert_eq!(m.load(parent, a, 6).unwrap(), b"page 0");
    assert_eq!(m.load(child, a, 6).unwrap(), b"child!");
    // And a write by the parent to another page is not seen by the child.
    m.store(parent, a + PAGE_SIZE, b"parent").unwrap();
    assert_eq!(m.load(child, a + PAGE_SIZE, 6).unwrap(), b"page 1");
    check(&m);
    // After the child exits, the parent's pages are exclusive again: a
    // write reuses the page in place (pgreuse), no copy.
    m.exit_code(child, 3).unwrap();
    check(&m);
    assert_eq!(m.wait(parent, -1), Ok((child, 3)));
    assert_eq!(m.wait(parent, -1), Err(mm::errno::Errno::ECHILD));
    let before = pfn_of(&m, parent, a + 2 * PAGE_SIZE);
    let reuse0 = event(&m, VmEvent::Pgreuse);
    m.store(parent, a + 2 * PAGE_SIZE, b"mine").unwrap();
    assert_eq!(pfn_of(&m, parent, a + 2 * PAGE_SIZE), before);
    assert_eq!(event(&m, VmEvent::Pgreuse), reuse0 + 1);
    m.exit(parent).unwrap();
    check(&m);
    assert!(free_pages(&m) >= free0, "exit returns every page");
}

#[test]
fn shared_anonymous_memory_is_shared_across_fork() {
    let mut m = boot();
    let p = m.spawn("p").unwrap();
    let s = anon(&mut m, p, 2, MAP_SHARED | MAP_ANONYMOUS);
    m.store(p, s, b"before").unwrap();
    let c = m.fork(p).unwrap();
    m.store(c, s + 100, b"from child").unwrap();
    m.store(p, s + PAGE_SIZE, b"from parent").unwrap();
    assert_eq!(m.load(p, s + 100, 10).unwrap(), b"from child");
    assert_eq!(m.load(c, s + PAGE_SIZE, 11).unwrap(), b"from parent");
    assert_eq!(m.load(c, s, 6).unwrap(), b"before");
    assert_eq!(rss(&m, p, RssKind::Shmem), 2);
    check(&m);
    let before = m.pa().nodes[0].stats.get(mm::vmstat::NodeStat::NrShmem);
    m.exit(c).unwrap();
    m.exit(p).unwrap();
    check(&m);
    // The last unmap frees the shmem object's pages.
    assert_eq!(
        m.pa().nodes[0].stats.get(mm::vmstat::NodeStat::NrShmem),
        before - 2
    );
}

#[test]
fn dontfork_and_wipeonfork() {
    let mut m = boot();
    let p = m.spawn("p").unwrap();
    let keep = anon(&mut m, p, 1, ANON);
    let wipe = anon(&mut m, p, 1, ANON);
    let gone = anon(&mut m, p, 1, ANON);
    for a in [keep, wipe, gone] {
        m.store(p, a, b"data").unwrap();
    }
    m.sys_madvise(p, wipe, PAGE_SIZE, mm::madvise::MADV_WIPEONFORK)
        .unwrap();
    m.sys_madvise(p, gone, PAGE_SIZE, mm::madvise::MADV_DONTFORK)
        .unwrap();
    let c = m.fork(p).unwrap();
    assert_eq!(m.load(c, keep, 4).unwrap(), b"data");
    assert_eq!(m.load(c, wipe, 4).unwrap(), vec![0; 4]);
    assert!(matches!(m.load(c, gone, 4), Err(UserFault::Segv { .. })));
    assert_eq!(m.load(p, wipe, 4).unwrap(), b"data");
    check(&m);
}

#[test]
fn tmpfs_writes_and_shared_mappings_see_each_other() {
    let mut m = boot();
    let a = m.spawn("a").unwrap();
    let b = m.spawn("b").unwrap();
    let fa = m.sys_open(a, "/tmp/shared", O_RDWR | O_CREAT).unwrap();
    assert_eq!(m.file_write(a, fa, None, b"written by write()"), Ok(18));
    m.sys_ftruncate(a, fa, 2 * PAGE_SIZE).unwrap();
    let fb = m.sys_open(b, "/tmp/shared", O_RDWR).unwrap();
    let ma = m
        .sys_mmap_fd(a, 0, 2 * PAGE_SIZE, RW, MAP_SHARED, fa, 0)
        .unwrap();
    let mb = m
        .sys_mmap_fd(b, 0, 2 * PAGE_SIZE, RW, MAP_SHARED, fb, 0)
        .unwrap();
    // write() is seen through both mappings: the same page-cache page.
    assert_eq!(m.load(b, mb, 18).unwrap(), b"written by write()");
    assert_eq!(pfn_of(&m, a, ma), None, "a has not faulted yet");
    assert_eq!(m.load(a, ma, 7).unwrap(), b"written");
    assert_eq!(pfn_of(&m, a, ma), pfn_of(&m, b, mb));
    // A store through one mapping is seen by the other and by read().
    m.store(b, mb + PAGE_SIZE, b"stored by b").unwrap();
    assert_eq!(m.load(a, ma + PAGE_SIZE, 11).unwrap(), b"stored by b");
    assert_eq!(
        m.file_read(a, fa, Some(PAGE_SIZE), 11).unwrap(),
        b"stored by b"
    );
    assert_eq!(rss(&m, a, RssKind::Shmem), 2);
    check(&m);
    // Truncation: the pages past the new end leave every mapping, and an
    // access there is SIGBUS.
    m.sys_ftruncate(a, fa, 100).unwrap();
    check(&m);
    assert_eq!(
        m.load(b, mb + PAGE_SIZE, 1),
        Err(UserFault::Bus {
            addr: mb + PAGE_SIZE
        })
    );
    assert_eq!(m.load(a, ma + 8, 5).unwrap(), b"by wr");
    assert_eq!(m.load(a, ma + 100, 4).unwrap(), vec![0; 4], "tail zeroed");
    assert_eq!(rss(&m, b, RssKind::Shmem), 1);
    // unlink: the mappings keep the inode, shown as deleted.
    m.sys_unlink("/tmp/shared").unwrap();
    assert!(m
        .proc_pid(a, "maps")
        .unwrap()
        .contains("/tmp/shared (deleted)"));
    check(&m);
}

#[test]
fn private_file_mapping_copies_on_write_and_shares_the_cache() {
    let mut m = boot();
    let a = m.spawn("a").unwrap();
    let b = m.spawn("b").unwrap();
    // A file on tmpfs with known contents, mapped privately by two.
    let f = m.sys_open(a, "/tmp/data", O_RDWR | O_CREAT).unwrap();
    m.file_write(a, f, None, &vec![b'z'; 3 * PAGE_SIZE as usize])
        .unwrap();
    let fb = m.sys_open(b, "/tmp/data", O_RDONLY).unwrap();
    let pa_ = m
        .sys_mmap_fd(a, 0, 3 * PAGE_SIZE, RW, MAP_PRIVATE, f, 0)
        .unwrap();
    let pb = m
        .sys_mmap_fd(b, 0, 3 * PAGE_SIZE, PROT_READ, MAP_PRIVATE, fb, 0)
        .unwrap();
    assert_eq!(m.load(a, pa_, 1).unwrap(), b"z");
    assert_eq!(m.load(b, pb, 1).unwrap(), b"z");
    assert_eq!(pfn_of(&m, a, pa_), pfn_of(&m, b, pb), "one page-cache page");
    // A write copies into an anonymous page; the file and b are unchanged.
    m.store(a, pa_, b"A").unwrap();
    assert_ne!(pfn_of(&m, a, pa_), pfn_of(&m, b, pb));
    assert_eq!(m.load(b, pb, 1).unwrap(), b"z");
    assert_eq!(m.file_read(b, fb, Some(0), 1).unwrap(), b"z");
    // Writing a page never faulted copies straight from the cache.
    m.store(a, pa_ + 2 * PAGE_SIZE, b"C").unwrap();
    assert_eq!(m.load(a, pa_ + 2 * PAGE_SIZE, 2).unwrap(), b"Cz");
    assert_eq!(rss(&m, a, RssKind::Anon), 2);
    check(&m);
}

#[test]
fn host_file_faults_read_around_then_fault_around() {
    // The test's own executable: present on every machine, and large.
    let exe = std::env::current_exe().unwrap();
    let path = exe.to_str().unwrap();
    let meta = std::fs::metadata(path).unwrap();
    assert!(meta.len() > 64 * PAGE_SIZE, "{path} is large enough");
    let mut m = boot();
    let pid = m.spawn("t").unwrap();
    let fd = m.sys_open(pid, path, O_RDONLY).unwrap();
    let len = 64 * PAGE_SIZE;
    let a = m
        .sys_mmap_fd(pid, 0, len, PROT_READ, MAP_PRIVATE, fd, 0)
        .unwrap();
    // Cold cache: the first fault reads (major) the page and its
    // read-around window, and maps only that page.
    let at = a + 20 * PAGE_SIZE;
    m.load(pid, at, 1).unwrap();
    let p = m.process(pid).unwrap();
    assert_eq!((p.flt.major, p.flt.minor), (1, 0));
    assert_eq!(rss(&m, pid, RssKind::File), 1);
    // The next fault in the same 64 KiB window is minor and maps every
    // cached page of the window (fault_around_bytes = 16 pages).
    m.load(pid, a + 17 * PAGE_SIZE, 1).unwrap();
    let p = m.process(pid).unwrap();
    assert_eq!((p.flt.major, p.flt.minor), (1, 1));
    assert_eq!(rss(&m, pid, RssKind::File), 16);
    // mincore sees the page cache: the read-around window is resident
    // even where no pte maps it yet.
    let mc = m.sys_mincore(pid, a, len).unwrap();
    assert_eq!(mc.iter().filter(|&&b| b == 1).count(), 32);
    assert_eq!(mc[4..36], [1; 32]);
    // The bytes are the file's.
    let want = std::fs::read(path).unwrap();
    let got = m.load(pid, a, 2 * PAGE_SIZE as usize).unwrap();
    assert_eq!(got, want[..2 * PAGE_SIZE as usize]);
    // A second process maps the same frames.
    let q = m.spawn("q").unwrap();
    let fq = m.sys_open(q, path, O_RDONLY).unwrap();
    let b = m
        .sys_mmap_fd(q, 0, len, PROT_READ, MAP_PRIVATE, fq, 0)
        .unwrap();
    m.load(q, b + 20 * PAGE_SIZE, 1).unwrap();
    assert_eq!(pfn_of(&m, q, b + 20 * PAGE_SIZE), pfn_of(&m, pid, at));
    assert_eq!(m.process(q).unwrap().flt.major, 0, "cached: minor");
    check(&m);
    // A mapping longer than the file: SIGBUS past the last page.
    let end = meta.len().div_ceil(PAGE_SIZE) * PAGE_SIZE;
    let big = m
        .sys_mmap_fd(q, 0, end + PAGE_SIZE, PROT_READ, MAP_PRIVATE, fq, 0)
        .unwrap();
    assert_eq!(
        m.load(q, big + end, 1),
        Err(UserFault::Bus { addr: big + end })
    );
    check(&m);
}

#[test]
fn stacks_grow_down_within_their_limits() {
    let mut m = boot();
    let pid = m.spawn("t").unwrap();
    // A MAP_GROWSDOWN region grows on an access just below it.
    let top = 0x7000_0000_0000u64;
    let g = m
        .sys_mmap(
            pid,
            top - 4 * PAGE_SIZE,
            4 * PAGE_SIZE,
            RW,
            ANON | MAP_GROWSDOWN | MAP_FIXED,
            None,
            0,
        )
        .unwrap();
    m.store(pid, g - 10, b"below").unwrap();
    let v = m
        .process(pid)
        .unwrap()
        .mm
        .vma_lookup(mm::VirtAddr(g - 10))
        .unwrap()
        .clone();
    assert_eq!(v.start.0, g - PAGE_SIZE);
    assert_eq!(v.end.0, top);
    // Not into the guard gap of a mapping below (stack_guard_gap, 256 pages).
    let low = g - PAGE_SIZE - 300 * PAGE_SIZE;
    m.sys_mmap(pid, low, PAGE_SIZE, RW, ANON | MAP_FIXED, None, 0)
        .unwrap();
    assert!(m.store(pid, low + 200 * PAGE_SIZE, b"x").is_err());
    // Not beyond RLIMIT_STACK (8 MiB) for a far access.
    let far = g - (9 << 20);
    assert!(matches!(
        m.store(pid, far, b"x"),
        Err(UserFault::Segv {
            code: SegvCode::MapErr,
            ..
        })
    ));
    check(&m);
}

#[test]
fn populate_counts_faults_and_exit_returns_pages_and_slab_objects() {
    let mut m = boot();
    let pid = m.spawn("t").unwrap();
    let slab0 = m.proc("slabinfo").unwrap();
    let active = |s: &str, name: &str| -> u64 {
        s.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap()
    };
    let free0 = free_pages(&m);
    let a = anon(&mut m, pid, 32, ANON | MAP_POPULATE);
    assert_eq!(m.process(pid).unwrap().flt.minor, 32);
    // Fork and exit twice: the second cycle must end where the first did
    // (SLUB's active counts include objects free in per-CPU slabs, so the
    // first cycle may leave them higher than at the start; a leak would
    // grow them every cycle).
    let mut after = Vec::new();
    for _ in 0..2 {
        let c = m.fork(pid).unwrap();
        m.store(c, a, b"x").unwrap();
        let s = m.proc("slabinfo").unwrap();
        assert!(active(&s, "task_struct") > 0);
        m.exit(c).unwrap();
        check(&m);
        let s = m.proc("slabinfo").unwrap();
        after.push(
            [
                "task_struct",
                "mm_struct",
                "vm_area_struct",
                "anon_vma",
                "anon_vma_chain",
            ]
            .map(|c| active(&s, c)),
        );
    }
    assert_eq!(after[0], after[1], "fork+exit leaks no kernel object");
    let _ = slab0;
    m.sys_munmap(pid, a, 32 * PAGE_SIZE).unwrap();
    check(&m);
    assert!(free_pages(&m) >= free0);
}

#[test]
fn rmap_walks_find_age_and_unmap_every_mapping() {
    let mut m = boot();
    let p = m.spawn("p").unwrap();
    let a = anon(&mut m, p, 2, ANON);
    m.store(p, a, b"shared by three").unwrap();
    let c1 = m.fork(p).unwrap();
    let c2 = m.fork(c1).unwrap();
    // Touch in each so their ptes are young (fork leaves the child's old).
    for pid in [p, c1, c2] {
        assert_eq!(m.load(pid, a, 6).unwrap(), b"shared");
    }
    let pfn = mm::Pfn(pfn_of(&m, p, a).unwrap());
    assert_eq!(m.pa().page(pfn).unwrap().mapcount(), 3);
    let cpu = mm::page_alloc::CpuId(0);
    // folio_referenced: three young ptes, then none until touched again.
    assert_eq!(m.with_rmap(cpu, |r| r.page_referenced(pfn)), 3);
    assert_eq!(m.with_rmap(cpu, |r| r.page_referenced(pfn)), 0);
    m.load(c1, a, 1).unwrap();
    assert_eq!(m.with_rmap(cpu, |r| r.page_referenced(pfn)), 1);
    // try_to_unmap: every pte goes, in all three mms, with their RSS; the
    // page survives on the reference we hold.
    m.pa().page(pfn).unwrap().get();
    assert_eq!(m.with_rmap(cpu, |r| r.try_to_unmap(pfn)), 3);
    assert_eq!(m.pa().page(pfn).unwrap().mapcount(), 0);
    for pid in [p, c1, c2] {
        assert_eq!(pfn_of(&m, pid, a), None);
        assert_eq!(rss(&m, pid, RssKind::Anon), 0);
    }
    check(&m);
    m.pa().free_pages(cpu, pfn, mm::Order(0));
    // The next access faults a fresh zero-filled page in (no swap yet).
    assert_eq!(m.load(c2, a, 6).unwrap(), vec![0; 6]);
    check(&m);
}

/// Process groups and sessions (kernel/sys.c's setpgid and setsid): a
/// spawned process leads its group in a session begun outside the
/// machine (0); a child starts in its parent's group and session; a wait
/// of a group takes only that group's children.
#[test]
fn process_groups_follow_setpgid_and_setsid_and_select_waits() {
    use machine::process::WaitTarget;
    use mm::errno::Errno;
    let mut m = boot();
    let parent = m.spawn("parent").unwrap();
    let p = m.process(parent).unwrap();
    assert_eq!((p.pgid, p.sid), (parent, 0));
    // A group leader may not begin a session.
    assert_eq!(m.setsid(parent), Err(Errno::EPERM));
    let a = m.fork(parent).unwrap();
    let b = m.fork(parent).unwrap();
    assert_eq!(m.process(a).map(|p| (p.pgid, p.sid)), Some((parent, 0)));
    // The parent moves a into a group of its own, then b into a's.
    m.setpgid(parent, a, a).unwrap();
    m.setpgid(parent, b, a).unwrap();
    assert_eq!(m.group(a), vec![a, b]);
    // A group nobody leads in the session, and a pid that is neither the
    // caller nor its child.
    assert_eq!(m.setpgid(parent, a, 9999), Err(Errno::EPERM));
    assert_eq!(m.setpgid(a, b, a), Err(Errno::ESRCH));
    // b begins a session: it leads both, the parent may not move it.
    let c = m.fork(parent).unwrap();
    assert_eq!(m.setsid(c), Ok(c));
    assert_eq!(m.process(c).map(|p| (p.pgid, p.sid)), Some((c, c)));
    assert_eq!(m.setpgid(parent, c, c), Err(Errno::EPERM));
    assert_eq!(m.setpgid(c, c, c), Err(Errno::EPERM));
    // Waits: the caller's group (0) holds none of them now; group a holds
    // a and b.
    m.exit_code(b, 2).unwrap();
    m.exit_code(c, 4).unwrap();
    assert_eq!(
        m.wait_zombie(parent, WaitTarget::Group(0)).map(|r| r.0),
        Err(Errno::ECHILD)
    );
    assert_eq!(
        m.wait_zombie(parent, WaitTarget::Group(a)).map(|r| r.0),
        Ok(b)
    );
    assert_eq!(
        m.wait_zombie(parent, WaitTarget::Group(a)).map(|r| r.0),
        Err(Errno::EAGAIN)
    );
    assert_eq!(m.wait(parent, -i64::from(c)), Ok((c, 4)));
    check(&m);
}

/// Frames handed out ahead (`lmm native`'s fault-ahead): one block split
/// into pages, each taken as it stands by the write fault at its page (the
/// data written into the frame from outside is what the page holds, and
/// the fault is counted), a read fault at such a page maps the zero page
/// and leaves the frame handed out, pages already handed out get no second
/// block, a frame given back is free again, and the address space's end
/// frees the rest; `mm::debug` holds after each step.
#[test]
fn frames_handed_out_ahead_are_taken_by_write_faults_or_given_back() {
    use std::os::fd::AsRawFd;
    let mut m = boot();
    let pid = m.spawn("ahead").unwrap();
    let va = m
        .sys_mmap(
            pid,
            0,
            16 << 12,
            3,
            (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u32,
            None,
            0,
        )
        .unwrap();
    m.check().unwrap();
    let free = m.pa().nr_free_pages() + m.pa().nr_pcp_pages();
    let phys = m.give_ahead(pid, va, 2).expect("a block of 4 pages");
    assert_eq!(phys % (4 << 12), 0, "an order-2 block is aligned");
    assert_eq!(m.pa().nr_free_pages() + m.pa().nr_pcp_pages(), free - 4);
    assert_eq!(m.give_ahead(pid, va + 4096, 1), None, "overlaps the block");
    m.check().unwrap();
    // What the program wrote through the host's mapping of the frame.
    let fd = m.ram_memfd().as_raw_fd();
    // SAFETY: pwrite of our own bytes to the machine's RAM memfd.
    let n = unsafe { libc::pwrite(fd, b"ahead".as_ptr().cast(), 5, phys as i64 + 4096 + 100) };
    assert_eq!(n, 5);
    let flt = m.process(pid).unwrap().flt.minor;
    m.touch(pid, va + 4096 + 100, 1, machine::mmu::Access::Write)
        .unwrap();
    assert_eq!(m.process(pid).unwrap().flt.minor, flt + 1);
    assert_eq!(m.read_user(pid, va + 4096 + 100, 5).unwrap(), b"ahead");
    let p = m.process(pid).unwrap();
    let (pte, _) = p.pt.lookup(mm::types::VirtAddr(va + 4096)).unwrap();
    assert_eq!(
        pte.phys().0,
        phys + 4096,
        "the fault took the frame handed out"
    );
    assert_eq!(p.ahead.len(), 3);
    m.check().unwrap();
    // A read fault maps the zero page and leaves the frame handed out.
    m.touch(pid, va + 2 * 4096, 1, machine::mmu::Access::Read)
        .unwrap();
    let p = m.process(pid).unwrap();
    let (pte, _) = p.pt.lookup(mm::types::VirtAddr(va + 2 * 4096)).unwrap();
    assert_ne!(pte.phys().0, phys + 2 * 4096);
    assert_eq!(p.ahead.len(), 3);
    // ... which is then given back (as `lmm native` does for a page only read).
    let free = m.pa().nr_free_pages() + m.pa().nr_pcp_pages();
    assert!(m.take_back_ahead(pid, va + 2 * 4096));
    assert!(!m.take_back_ahead(pid, va + 2 * 4096));
    m.check().unwrap();
    assert_eq!(m.pa().nr_free_pages() + m.pa().nr_pcp_pages(), free + 1);
    // The end of the address space frees the two left.
    m.exit_code(pid, 0).unwrap();
    m.check().unwrap();
    assert!(m.process(pid).is_none());
}
