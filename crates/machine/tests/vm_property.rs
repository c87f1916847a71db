//! Random mmap/munmap/mprotect/mremap sequences on a real process against a
//! page-granular model: after every step the VMAs cover exactly the model's
//! pages with its protections, every populated page is mapped in the page
//! tables with the bytes the model says, and the allocator, RSS and
//! page-table accounting stay consistent (`mm::debug` clean).

mod common;

use std::collections::BTreeMap;

use common::check;
use machine::{Machine, MachineConfig};
use mm::mmap::{MAP_ANONYMOUS, MAP_FIXED, MAP_POPULATE, MAP_PRIVATE, PROT_READ, PROT_WRITE};
use mm::mremap::{MREMAP_FIXED, MREMAP_MAYMOVE};
use mm::types::{VirtAddr, PAGE_SIZE};
use proptest::prelude::*;

const BASE: u64 = 0x1000_0000;
const PAGES: u64 = 48;

#[derive(Clone, Debug)]
enum Op {
    Map(u64, u64, bool),
    Unmap(u64, u64),
    Protect(u64, u64, bool),
    Move(u64, u64, u64),
    Write(u64, u8),
}

fn op() -> impl Strategy<Value = Op> {
    let range = (0..PAGES, 1..8u64);
    prop_oneof![
        (range.clone(), any::<bool>()).prop_map(|((p, n), w)| Op::Map(p, n, w)),
        range.clone().prop_map(|(p, n)| Op::Unmap(p, n)),
        (range.clone(), any::<bool>()).prop_map(|((p, n), w)| Op::Protect(p, n, w)),
        (range, 0..PAGES).prop_map(|((p, n), d)| Op::Move(p, n, d)),
        (0..PAGES, any::<u8>()).prop_map(|(p, b)| Op::Write(p, b)),
    ]
}

/// A page of the model.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Page {
    /// The VMA allows writes.
    writable: bool,
    /// MAP_POPULATE of a writable mapping gave the page its own frame (a
    /// write fault: dirty, exclusive); of a read-only one, the shared zero
    /// page. Writing the zero page needs the CoW fault handler, which
    /// arrives with demand paging, so until then such writes fault.
    own_frame: bool,
    /// The byte at the page's first address.
    byte: u8,
}

/// The model: page index -> page.
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

fn apply(m: &mut Machine, pid: u32, model: &mut Model, op: &Op) {
    match *op {
        Op::Map(p, n, w) => {
            let n = n.min(PAGES - p);
            let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_POPULATE;
            assert_eq!(
                m.sys_mmap(pid, va(p), n * PAGE_SIZE, prot(w), flags, None, 0),
                Ok(va(p))
            );
            for i in p..p + n {
                model.insert(
                    i,
                    Page {
                        writable: w,
                        own_frame: w,
                        byte: 0,
                    },
                );
            }
        }
        Op::Unmap(p, n) => {
            let n = n.min(PAGES - p);
            assert_eq!(m.sys_munmap(pid, va(p), n * PAGE_SIZE), Ok(0));
            for i in p..p + n {
                model.remove(&i);
            }
        }
        Op::Protect(p, n, w) => {
            let n = n.min(PAGES - p);
            let r = m.sys_mprotect(pid, va(p), n * PAGE_SIZE, prot(w));
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
        Op::Move(p, n, d) => {
            // mremap with MAYMOVE|FIXED to a non-overlapping destination,
            // source within one VMA (same protection, contiguous).
            let n = n.min(PAGES - p).min(PAGES - d);
            let overlap = d < p + n && p < d + n;
            let src_ok = (p..p + n)
                .all(|i| model.get(&i).map(|x| x.writable) == model.get(&p).map(|x| x.writable))
                && model.contains_key(&p);
            let vmas = m
                .process(pid)
                .unwrap()
                .mm
                .find_vma(VirtAddr(va(p)))
                .map(|v| (v.start.0, v.end.0));
            let one_vma = vmas.is_some_and(|(s, e)| s <= va(p) && e >= va(p + n));
            if overlap || !src_ok || !one_vma {
                return;
            }
            let r = m.sys_mremap(
                pid,
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
        Op::Write(p, b) => {
            let r = m.write_user(pid, va(p), &[b]);
            match model.get_mut(&p) {
                Some(pg) if pg.writable && pg.own_frame => {
                    assert_eq!(r, Ok(()), "write to a writable populated page");
                    pg.byte = b;
                }
                _ => assert!(r.is_err(), "write to page {p} should fault"),
            }
        }
    }
}

fn verify(m: &mut Machine, pid: u32, model: &Model) {
    check(m);
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
    assert_eq!(covered, want, "VMAs vs model");
    for (&p, &Page { byte, .. }) in model {
        let b = m
            .read_user(pid, va(p), 1)
            .unwrap_or_else(|e| panic!("page {p} unreadable: {e}"));
        assert_eq!(b, [byte], "byte of page {p}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn address_space_matches_model(ops in prop::collection::vec(op(), 1..60)) {
        let mut m = Machine::boot(MachineConfig { ram: 128 << 20, cpus: 2, ..Default::default() }).unwrap();
        let pid = m.spawn("prop").unwrap();
        let mut model = Model::new();
        for op in &ops {
            apply(&mut m, pid, &mut model, op);
            verify(&mut m, pid, &model);
        }
        m.exit(pid).unwrap();
        check(&m);
    }
}
