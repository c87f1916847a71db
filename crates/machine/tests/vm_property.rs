//! Random sequences of mmap/munmap/mprotect/mremap, user writes and
//! reads, fork and exit over several processes, against a page-granular
//! model of each process: after every step the VMAs cover exactly the
//! model's pages with its protections, every page reads the byte the
//! model says (a write after fork is seen only by its writer), each
//! process's anonymous RSS equals the model's resident pages, and the
//! whole machine is `mm::debug` clean (allocator, RSS against the page
//! tables, mapcounts and refcounts against every pte, the rmap walk, swap
//! counts against the swap ptes). MADV_PAGEOUT sends pages to swap between
//! the steps, so reads and forks meet swapped pages.

mod common;

use std::collections::BTreeMap;

use common::check;
use machine::{Machine, MachineConfig};
use mm::mm_types::RssKind;
use mm::mmap::{MAP_ANONYMOUS, MAP_FIXED, MAP_POPULATE, MAP_PRIVATE, PROT_READ, PROT_WRITE};
use mm::mremap::{MREMAP_FIXED, MREMAP_MAYMOVE};
use mm::types::{VirtAddr, PAGE_SIZE};
use proptest::prelude::*;

const BASE: u64 = 0x1000_0000;
const PAGES: u64 = 48;
/// At most this many live processes.
const MAX_PROCS: usize = 4;

#[derive(Clone, Debug)]
enum Op {
    /// (process, page, pages, writable, MAP_POPULATE)
    Map(usize, u64, u64, bool, bool),
    Unmap(usize, u64, u64),
    Protect(usize, u64, u64, bool),
    Move(usize, u64, u64, u64),
    Write(usize, u64, u8),
    Read(usize, u64),
    Fork(usize),
    Exit(usize),
    /// MADV_PAGEOUT of (process, page, pages): the pages only this process
    /// maps go to swap; nothing the model sees changes.
    PageOut(usize, u64, u64),
}

fn op() -> impl Strategy<Value = Op> {
    let range = (0..MAX_PROCS, 0..PAGES, 1..8u64);
    prop_oneof![
        3 => (range.clone(), any::<bool>(), any::<bool>())
            .prop_map(|((q, p, n), w, pop)| Op::Map(q, p, n, w, pop)),
        1 => range.clone().prop_map(|(q, p, n)| Op::Unmap(q, p, n)),
        1 => (range.clone(), any::<bool>()).prop_map(|((q, p, n), w)| Op::Protect(q, p, n, w)),
        1 => (range, 0..PAGES).prop_map(|((q, p, n), d)| Op::Move(q, p, n, d)),
        4 => (0..MAX_PROCS, 0..PAGES, any::<u8>()).prop_map(|(q, p, b)| Op::Write(q, p, b)),
        1 => (0..MAX_PROCS, 0..PAGES).prop_map(|(q, p)| Op::Read(q, p)),
        1 => (0..MAX_PROCS).prop_map(Op::Fork),
        1 => (0..MAX_PROCS).prop_map(Op::Exit),
        2 => (0..MAX_PROCS, 0..PAGES, 1..8u64).prop_map(|(q, p, n)| Op::PageOut(q, p, n)),
    ]
}

/// A page of the model.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Page {
    /// The VMA allows writes.
    writable: bool,
    /// The process has its own anonymous frame for the page (a write, or
    /// MAP_POPULATE of a writable mapping): counted in its anon RSS. A
    /// page only read maps the shared zero page, which is not counted.
    resident: bool,
    /// The byte at the page's first address.
    byte: u8,
}

/// One process's model: page index -> page.
type Model = BTreeMap<u64, Page>;

fn va(page: u64) -> u64 {
    BASE + page * PAGE_SIZE
}

fn prot(w: bool) -> u32 {
    if w {
        PROT_READ | PROT_WRITE
    } else {
        PROT_READ
    }
}

/// The live processes: (pid, model), in creation order.
type World = Vec<(u32, Model)>;

fn apply(m: &mut Machine, world: &mut World, op: &Op) {
    let len = world.len();
    match *op {
        Op::Map(q, p, n, w, pop) => {
            let (pid, model) = &mut world[q % len];
            let n = n.min(PAGES - p);
            let mut flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
            if pop {
                flags |= MAP_POPULATE;
            }
            assert_eq!(
                m.sys_mmap(*pid, va(p), n * PAGE_SIZE, prot(w), flags, None, 0),
                Ok(va(p))
            );
            for i in p..p + n {
                model.insert(
                    i,
                    Page {
                        writable: w,
                        resident: w && pop,
                        byte: 0,
                    },
                );
            }
        }
        Op::Unmap(q, p, n) => {
            let (pid, model) = &mut world[q % len];
            let n = n.min(PAGES - p);
            assert_eq!(m.sys_munmap(*pid, va(p), n * PAGE_SIZE), Ok(0));
            for i in p..p + n {
                model.remove(&i);
            }
        }
        Op::Protect(q, p, n, w) => {
            let (pid, model) = &mut world[q % len];
            let n = n.min(PAGES - p);
            let r = m.sys_mprotect(*pid, va(p), n * PAGE_SIZE, prot(w));
            // linux-facts 6.4: an unmapped hole in the range is ENOMEM; as in
            // do_mprotect_pkey, the VMAs before the hole are changed already.
            let mut hole = false;
            for i in p..p + n {
                match model.get_mut(&i) {
                    Some(x) => x.writable = w,
                    None => {
                        hole = true;
                        break;
                    }
                }
            }
            assert_eq!(
                r,
                if hole {
                    Err(mm::errno::Errno::ENOMEM)
                } else {
                    Ok(0)
                }
            );
        }
        Op::Move(q, p, n, d) => {
            // mremap with MAYMOVE|FIXED to a non-overlapping destination,
            // source within one VMA (same protection, contiguous).
            let (pid, model) = &mut world[q % len];
            let n = n.min(PAGES - p).min(PAGES - d);
            let overlap = d < p + n && p < d + n;
            let src_ok = (p..p + n)
                .all(|i| model.get(&i).map(|x| x.writable) == model.get(&p).map(|x| x.writable))
                && model.contains_key(&p);
            let vmas = m
                .process(*pid)
                .unwrap()
                .mm
                .find_vma(VirtAddr(va(p)))
                .map(|v| (v.start.0, v.end.0));
            let one_vma = vmas.is_some_and(|(s, e)| s <= va(p) && e >= va(p + n));
            if overlap || !src_ok || !one_vma {
                return;
            }
            let r = m.sys_mremap(
                *pid,
                va(p),
                n * PAGE_SIZE,
                n * PAGE_SIZE,
                MREMAP_MAYMOVE | MREMAP_FIXED,
                va(d),
            );
            assert_eq!(r, Ok(va(d)));
            let moved: Vec<Page> = (p..p + n).map(|i| model.remove(&i).unwrap()).collect();
            for (k, v) in moved.into_iter().enumerate() {
                model.insert(d + k as u64, v);
            }
        }
        Op::Write(q, p, b) => {
            let (pid, model) = &mut world[q % len];
            let r = m.store(*pid, va(p), &[b]);
            match model.get_mut(&p) {
                Some(pg) if pg.writable => {
                    assert_eq!(r, Ok(()), "write to writable page {p}");
                    pg.byte = b;
                    pg.resident = true;
                }
                _ => assert!(r.is_err(), "write to page {p} should fault"),
            }
        }
        Op::Read(q, p) => {
            let (pid, model) = &world[q % len];
            let r = m.load(*pid, va(p), 1);
            match model.get(&p) {
                Some(pg) => assert_eq!(r, Ok(vec![pg.byte]), "read of page {p}"),
                None => assert!(r.is_err(), "read of unmapped page {p} should fault"),
            }
        }
        Op::Fork(q) => {
            if world.len() == MAX_PROCS {
                return;
            }
            let (pid, model) = world[q % len].clone();
            let child = m.fork(pid).unwrap();
            world.push((child, model));
        }
        Op::Exit(q) => {
            if world.len() == 1 {
                return;
            }
            let (pid, _) = world.remove(q % len);
            m.exit(pid).unwrap();
        }
        Op::PageOut(q, p, n) => {
            let (pid, model) = &world[q % len];
            // EINVAL/ENOMEM only where the model has holes.
            let r = m.sys_madvise(*pid, va(p), n * PAGE_SIZE, mm::madvise::MADV_PAGEOUT);
            let whole = (p..p + n).all(|i| model.contains_key(&i));
            assert!(r.is_ok() || !whole, "MADV_PAGEOUT over mapped pages: {r:?}");
        }
    }
}

fn verify(m: &mut Machine, world: &World) {
    check(m);
    for (pid, model) in world {
        let pid = *pid;
        let mut covered = BTreeMap::new();
        for v in m
            .process(pid)
            .unwrap()
            .mm
            .iter()
            .filter(|v| v.start.0 >= BASE && v.end.0 <= va(PAGES))
        {
            for a in (v.start.0..v.end.0).step_by(PAGE_SIZE as usize) {
                covered.insert((a - BASE) / PAGE_SIZE, v.flags.0 & 0x2 != 0);
            }
        }
        let want: BTreeMap<u64, bool> = model.iter().map(|(&k, pg)| (k, pg.writable)).collect();
        assert_eq!(covered, want, "VMAs vs model of pid {pid}");
        let resident = model.values().filter(|p| p.resident).count() as u64;
        assert_eq!(
            m.process(pid).unwrap().mm.rss.get(RssKind::Anon)
                + m.process(pid).unwrap().mm.rss.get(RssKind::Swap),
            resident,
            "anon RSS plus swap entries of pid {pid}"
        );
        for (&p, &Page { byte, .. }) in model {
            let b = m
                .read_user(pid, va(p), 1)
                .unwrap_or_else(|e| panic!("pid {pid} page {p} unreadable: {e}"));
            assert_eq!(b, [byte], "byte of page {p} in pid {pid}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn address_spaces_match_model(ops in prop::collection::vec(op(), 1..60)) {
        let mut m = Machine::boot(MachineConfig {
            ram: 128 << 20,
            cpus: 2,
            swap: Some(machine::swapfile::SwapSpec::Make(16 << 20)),
            ..Default::default()
        })
        .unwrap();
        let pid = m.spawn("prop").unwrap();
        let free0 = common::free_pages(&m);
        let mut world: World = vec![(pid, Model::new())];
        for op in &ops {
            apply(&mut m, &mut world, op);
            verify(&mut m, &world);
        }
        for (pid, _) in world {
            m.exit(pid).unwrap();
            check(&m);
        }
        // Every page of every process came back (the spawn's own kernel
        // objects are in the slab caches, counted by free_pages).
        // Pages left in the swap cache with no user are free for reclaim.
        let swapcache = m.pa().nodes[0].stats.get(mm::vmstat::NodeStat::NrSwapcached) as u64;
        prop_assert!(common::free_pages(&m) + swapcache >= free0);
    }
}
