//! VMA-layer rules, each test citing its rule in
//! /work/shared/reference/linux-facts.md (§ numbers), run against a recording
//! fake of the page tables.

use std::collections::BTreeMap;
use std::sync::Arc;

use mm::errno::Errno;
use mm::file::{FileRef, OpenFile};
use mm::madvise::*;
use mm::mincore::mincore;
use mm::mlock::*;
use mm::mm_types::*;
use mm::mmap::*;
use mm::mprotect::mprotect;
use mm::mremap::*;
use mm::msync::*;
use mm::task_mmu::*;
use mm::types::{VirtAddr, PAGE_SIZE};
use proptest::prelude::*;

const P: u64 = PAGE_SIZE;

// ---------------------------------------------------------------------------
// Fakes

#[derive(Debug, Clone, PartialEq)]
enum Call {
    Unmap(u64, u64),
    Prot(u64, u64, VmFlags),
    Move(u64, u64, u64),
    Populate(u64, u64, bool),
    Discard(u64, u64, bool),
}

/// Page tables as a map of present pages; records every call.
#[derive(Default)]
struct Fake {
    pages: BTreeMap<u64, PageInfo>,
    log: Vec<Call>,
    next_pfn: u64,
}

impl Fake {
    fn present(&self, a: u64) -> bool {
        self.pages.contains_key(&a)
    }
    fn count_in(&self, s: u64, e: u64) -> usize {
        self.pages.range(s..e).count()
    }
}

impl PageTableOps for Fake {
    fn unmap_range(&mut self, start: VirtAddr, end: VirtAddr) {
        self.log.push(Call::Unmap(start.0, end.0));
        let keys: Vec<u64> = self.pages.range(start.0..end.0).map(|(k, _)| *k).collect();
        for k in keys {
            self.pages.remove(&k);
        }
    }
    fn change_protection(&mut self, start: VirtAddr, end: VirtAddr, f: VmFlags) {
        self.log.push(Call::Prot(start.0, end.0, f));
    }
    fn move_range(&mut self, old: VirtAddr, new: VirtAddr, len: u64) -> Result<(), Errno> {
        self.log.push(Call::Move(old.0, new.0, len));
        let moved: Vec<(u64, PageInfo)> = self
            .pages
            .range(old.0..old.0 + len)
            .map(|(k, v)| (*k, *v))
            .collect();
        for (k, v) in moved {
            self.pages.remove(&k);
            self.pages.insert(k - old.0 + new.0, v);
        }
        Ok(())
    }
    fn populate(
        &mut self,
        vma: &Vma,
        start: VirtAddr,
        end: VirtAddr,
        write: bool,
    ) -> Result<(), Errno> {
        self.log.push(Call::Populate(start.0, end.0, write));
        let private = !vma.flags.contains(VmFlags::MAYSHARE);
        let mut a = start.0;
        while a < end.0 {
            let anon = private && (vma.file.is_none() || write);
            let pfn = self.next_pfn + 0x1000;
            let e = self.pages.entry(a).or_insert_with(|| PageInfo {
                present: true,
                pfn,
                anon,
                mapcount: 1,
                young: true,
                exclusive: true,
                ..PageInfo::default()
            });
            if write {
                e.dirty = true;
                e.writable = true;
                e.soft_dirty = true;
                e.anon |= private;
            }
            self.next_pfn += 1;
            a += P;
        }
        Ok(())
    }
    fn discard(&mut self, start: VirtAddr, end: VirtAddr, free: bool) {
        self.log.push(Call::Discard(start.0, end.0, free));
        let keys: Vec<u64> = self.pages.range(start.0..end.0).map(|(k, _)| *k).collect();
        for k in keys {
            if free {
                if let Some(p) = self.pages.get_mut(&k) {
                    p.lazyfree = true;
                    p.dirty = false;
                }
            } else {
                self.pages.remove(&k);
            }
        }
    }
    fn page_info(&self, va: VirtAddr) -> Option<PageInfo> {
        self.pages.get(&va.0).copied()
    }
    fn clear_refs(&mut self, start: VirtAddr, end: VirtAddr, soft_dirty: bool) {
        for (_, p) in self.pages.range_mut(start.0..end.0) {
            if soft_dirty {
                p.soft_dirty = false;
                p.writable = false;
            } else {
                p.young = false;
            }
        }
    }
}

struct TestFile {
    path: &'static str,
    readable: bool,
    writable: bool,
}

impl OpenFile for TestFile {
    fn path(&self) -> &str {
        self.path
    }
    fn dev(&self) -> (u32, u32) {
        (8, 1)
    }
    fn ino(&self) -> u64 {
        1234
    }
    fn size(&self) -> u64 {
        1 << 20
    }
    fn read_at(&self, _offset: u64, buf: &mut [u8]) -> Result<usize, mm::errno::Errno> {
        Ok(buf.len())
    }
    fn readable(&self) -> bool {
        self.readable
    }
    fn writable(&self) -> bool {
        self.writable
    }
}

fn file(readable: bool, writable: bool) -> FileRef {
    Arc::new(TestFile {
        path: "/usr/bin/prog",
        readable,
        writable,
    })
}

/// An mm as these rules were recorded on: soft-dirty configured (so `sd`
/// and pagemap bit 55 show) and THP "always"; tests of this machine's
/// defaults clear them.
fn setup() -> (MmStruct, Fake) {
    let mut mm = MmStruct::for_x86_64_default();
    mm.soft_dirty = true;
    mm.thp_always = true;
    (mm, Fake::default())
}

const RW: u32 = PROT_READ | PROT_WRITE;
const ANON: u32 = MAP_PRIVATE | MAP_ANONYMOUS;
const BASE: u64 = 0x1000_0000;

fn anon(
    mm: &mut MmStruct,
    pt: &mut Fake,
    addr: u64,
    len: u64,
    prot: u32,
    flags: u32,
) -> Result<u64, Errno> {
    mmap(mm, pt, VirtAddr(addr), len, prot, ANON | flags, None, 0).map(|a| a.0)
}

fn fixed(mm: &mut MmStruct, pt: &mut Fake, addr: u64, pages: u64, prot: u32) -> u64 {
    anon(mm, pt, addr, pages * P, prot, MAP_FIXED).unwrap()
}

/// (start, end) of every VMA.
fn ranges(mm: &MmStruct) -> Vec<(u64, u64)> {
    mm.iter().map(|v| (v.start.0, v.end.0)).collect()
}

fn vma_at(mm: &MmStruct, a: u64) -> &Vma {
    mm.vma_lookup(VirtAddr(a)).expect("vma")
}

// ---------------------------------------------------------------------------
// §6.1 layout

#[test]
fn layout_defaults_match_x86_64_aslr_off() {
    // §6.1: 8 MiB stack -> gap 128 MiB -> mmap_base 0x7ffff7fff000; legacy
    // base PAGE_ALIGN(TASK_SIZE/3); unlimited stack -> 0x155555556000.
    let mm = MmStruct::for_x86_64_default();
    assert_eq!(mm.mmap_base.as_u64(), 0x7fff_f7ff_f000);
    assert_eq!(mm.mmap_legacy_base.as_u64(), 0x2aaa_aaaa_b000);
    assert_eq!(mm.task_size.as_u64(), 0x7fff_ffff_f000);
    assert_eq!(mm.stack_guard_gap, 1 << 20);
    let unl = MmLayout::x86_64(Rlimits {
        stack: RLIM_INFINITY,
        ..Rlimits::default()
    });
    assert_eq!(unl.mmap_base.as_u64(), 0x1555_5555_6000);
    assert!(!unl.legacy);
}

// ---------------------------------------------------------------------------
// §6.2 placement

#[test]
fn first_mmap_ends_at_mmap_base_and_next_stacks_below() {
    // §6.2: top-down search returns the highest fitting gap below mmap_base.
    let (mut mm, mut pt) = setup();
    let a = anon(&mut mm, &mut pt, 0, 3 * P, RW, 0).unwrap();
    assert_eq!(a, 0x7fff_f7ff_f000 - 3 * P);
    let b = anon(&mut mm, &mut pt, 0, P, PROT_READ, 0).unwrap();
    assert_eq!(b, a - P);
    // A hole left by munmap is reused by the highest fit.
    munmap(&mut mm, &mut pt, VirtAddr(a), P).unwrap();
    let c = anon(&mut mm, &mut pt, 0, P, PROT_EXEC, 0).unwrap();
    assert_eq!(c, a);
}

#[test]
fn hints_honoured_when_free_else_top_down() {
    // §6.2: hint rounded down to a page, honoured if it fits below TASK_SIZE
    // and before the next VMA's vm_start_gap; a hint below mmap_min_addr is
    // raised to it.
    let (mut mm, mut pt) = setup();
    let a = anon(&mut mm, &mut pt, 0x5000_0123, 2 * P, RW, 0).unwrap();
    assert_eq!(a, 0x5000_0000);
    let b = anon(&mut mm, &mut pt, 0x5000_1000, P, RW, 0).unwrap();
    assert_eq!(
        b,
        0x7fff_f7ff_f000 - P,
        "occupied hint falls back to top-down"
    );
    let c = anon(&mut mm, &mut pt, 0x1000, P, RW, 0).unwrap();
    assert_eq!(c, 0x10000, "hint below mmap_min_addr is raised");
    let d = anon(&mut mm, &mut pt, 0x7fff_ffff_f000 - P, 2 * P, RW, 0).unwrap();
    assert_eq!(d, b - 2 * P, "hint past TASK_SIZE ignored");
}

#[test]
fn thp_alignment_only_for_unhinted_anon_private_2mib_multiples() {
    // §0 / §6.2 (Linux >= 6.13 __get_unmapped_area): !file && !addr &&
    // IS_ALIGNED(len, PMD_SIZE).
    let (mut mm, mut pt) = setup();
    let a = anon(&mut mm, &mut pt, 0, 2 << 20, RW, 0).unwrap();
    assert_eq!(a, 0x7fff_f7c0_0000);
    assert_eq!(a % (2 << 20), 0);
    let b = anon(&mut mm, &mut pt, 0, 4 << 20, RW, 0).unwrap();
    assert_eq!(b % (2 << 20), 0);
    assert_eq!(b + (4 << 20), a);
    // Not a multiple: plain top-down below b.
    let c = anon(&mut mm, &mut pt, 0, 3 << 20, RW, 0).unwrap();
    assert_eq!(c, b - (3 << 20));
    assert_ne!(c % (2 << 20), 0);
    // Shared anonymous goes through shmem: no alignment.
    let d = anon(&mut mm, &mut pt, 0, 2 << 20, RW, MAP_SHARED ^ MAP_PRIVATE).unwrap();
    assert_eq!(d, c - (2 << 20));
    assert_ne!(d % (2 << 20), 0);
    // File mappings: no alignment.
    let e = mmap(
        &mut mm,
        &mut pt,
        VirtAddr(0),
        2 << 20,
        PROT_READ,
        MAP_PRIVATE,
        Some(file(true, false)),
        0,
    )
    .unwrap()
    .0;
    assert_eq!(e, d - (2 << 20));
    // MAP_FIXED at address 0 (root may map below mmap_min_addr) is not moved.
    assert_eq!(anon(&mut mm, &mut pt, 0, 2 << 20, RW, MAP_FIXED), Ok(0));
    // Legacy layout: bottom-up, rounded up to 2 MiB.
    let mut legacy = MmStruct::new(MmLayout {
        legacy: true,
        ..MmLayout::x86_64(Rlimits::default())
    });
    let f = anon(&mut legacy, &mut pt, 0, 2 << 20, RW, 0).unwrap();
    assert_eq!(f, 0x2aaa_aac0_0000);
}

#[test]
fn legacy_layout_is_bottom_up() {
    // §6.1: legacy layout searches upward from mmap_legacy_base.
    let mut mm = MmStruct::new(MmLayout {
        legacy: true,
        ..MmLayout::x86_64(Rlimits::default())
    });
    let mut pt = Fake::default();
    let a = anon(&mut mm, &mut pt, 0, P, RW, 0).unwrap();
    assert_eq!(a, 0x2aaa_aaaa_b000);
    let b = anon(&mut mm, &mut pt, 0, P, RW, 0).unwrap();
    assert_eq!(b, a + P);
}

#[test]
fn map_32bit_searches_below_2gib() {
    // §6.2: MAP_32BIT searches [0x40000000, 0x80000000) bottom-up.
    let (mut mm, mut pt) = setup();
    let a = anon(&mut mm, &mut pt, 0, P, RW, MAP_32BIT).unwrap();
    assert_eq!(a, 0x4000_0000);
}

#[test]
fn stack_guard_gap_keeps_placement_away_from_growsdown() {
    // §6.1: vm_start_gap = vm_start - stack_guard_gap for GROWSDOWN VMAs;
    // used by hints and the gap search.
    let (mut mm, mut pt) = setup();
    let s = anon(
        &mut mm,
        &mut pt,
        0x6000_0000,
        4 * P,
        RW,
        MAP_GROWSDOWN | MAP_FIXED,
    )
    .unwrap();
    assert_eq!(s, 0x6000_0000);
    // A hint whose end falls inside the gap is refused.
    let h = anon(&mut mm, &mut pt, 0x6000_0000 - 2 * P, P, RW, 0).unwrap();
    assert_ne!(h, 0x6000_0000 - 2 * P);
    // One that ends exactly at the gap is taken.
    let g = anon(&mut mm, &mut pt, 0x6000_0000 - (1 << 20) - P, P, RW, 0).unwrap();
    assert_eq!(g, 0x6000_0000 - (1 << 20) - P);
    // Top-down: a GROWSDOWN VMA at the top pushes the next map below its gap.
    let (mut mm, mut pt) = setup();
    let t = anon(&mut mm, &mut pt, 0, 4 * P, RW, MAP_GROWSDOWN).unwrap();
    let u = anon(&mut mm, &mut pt, 0, P, RW, 0).unwrap();
    assert_eq!(u, t - (1 << 20) - P);
}

// ---------------------------------------------------------------------------
// §6.2 mmap errors

#[test]
fn mmap_errnos() {
    let (mut mm, mut pt) = setup();
    let e = |r: Result<u64, Errno>| r.unwrap_err();
    // len 0 -> EINVAL; page-rounding overflow -> ENOMEM.
    assert_eq!(e(anon(&mut mm, &mut pt, 0, 0, RW, 0)), Errno::EINVAL);
    assert_eq!(e(anon(&mut mm, &mut pt, 0, u64::MAX, RW, 0)), Errno::ENOMEM);
    assert_eq!(e(anon(&mut mm, &mut pt, 0, 1 << 50, RW, 0)), Errno::ENOMEM);
    // Unaligned offset / MAP_FIXED address -> EINVAL.
    let f = file(true, true);
    assert_eq!(
        mmap(
            &mut mm,
            &mut pt,
            VirtAddr(0),
            P,
            PROT_READ,
            MAP_PRIVATE,
            Some(f.clone()),
            5
        )
        .unwrap_err(),
        Errno::EINVAL
    );
    assert_eq!(
        e(anon(&mut mm, &mut pt, BASE + 1, P, RW, MAP_FIXED)),
        Errno::EINVAL
    );
    // Map type missing -> EINVAL.
    assert_eq!(
        mmap(&mut mm, &mut pt, VirtAddr(0), P, RW, MAP_ANONYMOUS, None, 0).unwrap_err(),
        Errno::EINVAL
    );
    // Not anonymous and no file -> EBADF.
    assert_eq!(
        mmap(&mut mm, &mut pt, VirtAddr(0), P, RW, MAP_PRIVATE, None, 0).unwrap_err(),
        Errno::EBADF
    );
    // pgoff + pages overflows -> EOVERFLOW.
    assert_eq!(
        mmap(
            &mut mm,
            &mut pt,
            VirtAddr(0),
            2 * P,
            PROT_READ,
            MAP_PRIVATE,
            Some(f.clone()),
            !(P - 1)
        )
        .unwrap_err(),
        Errno::EOVERFLOW
    );
    // GROWSDOWN shared anon / file -> EINVAL.
    assert_eq!(
        mmap(
            &mut mm,
            &mut pt,
            VirtAddr(0),
            P,
            RW,
            MAP_SHARED | MAP_ANONYMOUS | MAP_GROWSDOWN,
            None,
            0
        )
        .unwrap_err(),
        Errno::EINVAL
    );
    assert_eq!(
        mmap(
            &mut mm,
            &mut pt,
            VirtAddr(0),
            P,
            PROT_READ,
            MAP_PRIVATE | MAP_GROWSDOWN,
            Some(f),
            0
        )
        .unwrap_err(),
        Errno::EINVAL
    );
    assert_eq!(mm.map_count(), 0, "failed mmaps leave nothing behind");
}

#[test]
fn mmap_file_permission_errnos() {
    // do_mmap: shared+PROT_WRITE on a file not open for writing -> EACCES;
    // any map of a file not open for reading -> EACCES; a shared map of a
    // read-only file loses VM_MAYWRITE and VM_SHARED but keeps MAYSHARE.
    let (mut mm, mut pt) = setup();
    let ro = file(true, false);
    assert_eq!(
        mmap(
            &mut mm,
            &mut pt,
            VirtAddr(0),
            P,
            RW,
            MAP_SHARED,
            Some(ro.clone()),
            0
        )
        .unwrap_err(),
        Errno::EACCES
    );
    let wo = file(false, true);
    assert_eq!(
        mmap(
            &mut mm,
            &mut pt,
            VirtAddr(0),
            P,
            PROT_READ,
            MAP_PRIVATE,
            Some(wo.clone()),
            0
        )
        .unwrap_err(),
        Errno::EACCES
    );
    assert_eq!(
        mmap(
            &mut mm,
            &mut pt,
            VirtAddr(0),
            P,
            PROT_READ,
            MAP_SHARED,
            Some(wo),
            0
        )
        .unwrap_err(),
        Errno::EACCES
    );
    let a = mmap(
        &mut mm,
        &mut pt,
        VirtAddr(0),
        P,
        PROT_READ,
        MAP_SHARED,
        Some(ro.clone()),
        0,
    )
    .unwrap();
    let v = vma_at(&mm, a.0);
    assert!(v.flags.contains(VmFlags::MAYSHARE));
    assert!(!v.flags.contains(VmFlags::SHARED));
    assert!(!v.flags.contains(VmFlags::MAYWRITE));
    // Private writable map of a read-only file is fine (CoW).
    mmap(
        &mut mm,
        &mut pt,
        VirtAddr(0),
        P,
        RW,
        MAP_PRIVATE,
        Some(ro.clone()),
        0,
    )
    .unwrap();
    // MAP_SHARED_VALIDATE rejects unknown flags (EOPNOTSUPP in Linux, EINVAL here).
    assert!(mmap(
        &mut mm,
        &mut pt,
        VirtAddr(0),
        P,
        PROT_READ,
        MAP_SHARED_VALIDATE | MAP_SYNC,
        Some(ro),
        0
    )
    .is_err());
}

#[test]
fn map_fixed_noreplace_rules() {
    // §3 rule 1: 3 pages at base+1 page; overlapping requests -> EEXIST,
    // adjacent ones succeed.
    let (mut mm, mut pt) = setup();
    let base = BASE;
    fixed(&mut mm, &mut pt, base + P, 3, RW);
    let nr = |mm: &mut MmStruct, pt: &mut Fake, a: u64, n: u64| {
        anon(mm, pt, a, n * P, RW, MAP_FIXED_NOREPLACE)
    };
    assert_eq!(nr(&mut mm, &mut pt, base, 5), Err(Errno::EEXIST));
    assert_eq!(nr(&mut mm, &mut pt, base + 2 * P, 1), Err(Errno::EEXIST));
    assert_eq!(nr(&mut mm, &mut pt, base + 3 * P, 2), Err(Errno::EEXIST));
    assert_eq!(nr(&mut mm, &mut pt, base, 2), Err(Errno::EEXIST));
    assert_eq!(nr(&mut mm, &mut pt, base, 1), Ok(base));
    assert_eq!(nr(&mut mm, &mut pt, base + 4 * P, 1), Ok(base + 4 * P));
}

#[test]
fn map_fixed_replaces_and_zaps_exactly_the_range() {
    // §6.2: MAP_FIXED replaces existing mappings in the range.
    let (mut mm, mut pt) = setup();
    anon(&mut mm, &mut pt, BASE, 4 * P, RW, MAP_FIXED | MAP_POPULATE).unwrap();
    assert_eq!(pt.count_in(BASE, BASE + 4 * P), 4);
    pt.log.clear();
    anon(&mut mm, &mut pt, BASE + P, 2 * P, PROT_READ, MAP_FIXED).unwrap();
    assert_eq!(pt.log, vec![Call::Unmap(BASE + P, BASE + 3 * P)]);
    assert!(
        pt.present(BASE)
            && !pt.present(BASE + P)
            && !pt.present(BASE + 2 * P)
            && pt.present(BASE + 3 * P)
    );
    assert_eq!(
        ranges(&mm),
        vec![
            (BASE, BASE + P),
            (BASE + P, BASE + 3 * P),
            (BASE + 3 * P, BASE + 4 * P)
        ]
    );
}

#[test]
fn mmap_limits_and_privileges() {
    // max_map_count -> ENOMEM; MAP_LOCKED without memlock right -> EPERM;
    // over RLIMIT_MEMLOCK -> EAGAIN; MAP_FIXED below mmap_min_addr without
    // CAP_SYS_RAWIO -> EPERM; RLIMIT_AS -> ENOMEM.
    let mut lay = MmLayout::x86_64(Rlimits {
        memlock: 0,
        ..Rlimits::default()
    });
    lay.cred = Credentials::USER;
    lay.max_map_count = 3;
    let mut mm = MmStruct::new(lay);
    let mut pt = Fake::default();
    assert_eq!(
        anon(&mut mm, &mut pt, 0, P, RW, MAP_LOCKED),
        Err(Errno::EPERM)
    );
    assert_eq!(
        anon(&mut mm, &mut pt, 0x1000, P, RW, MAP_FIXED),
        Err(Errno::EPERM)
    );
    for i in 0..4 {
        // Alternating prot so nothing merges.
        anon(
            &mut mm,
            &mut pt,
            BASE + 2 * i * P,
            P,
            if i % 2 == 0 { RW } else { PROT_READ },
            MAP_FIXED,
        )
        .unwrap();
    }
    assert_eq!(mm.map_count(), 4);
    assert_eq!(anon(&mut mm, &mut pt, 0, P, RW, 0), Err(Errno::ENOMEM));
    // munmap that would split beyond the limit -> ENOMEM.
    let mut lay = MmLayout::x86_64(Rlimits {
        memlock: 2 * P,
        as_: 64 * P,
        ..Rlimits::default()
    });
    lay.cred = Credentials::USER;
    let mut mm = MmStruct::new(lay);
    assert_eq!(
        anon(&mut mm, &mut pt, 0, 3 * P, RW, MAP_LOCKED),
        Err(Errno::EAGAIN)
    );
    anon(&mut mm, &mut pt, 0, 2 * P, RW, MAP_LOCKED).unwrap();
    assert_eq!(mm.locked_vm, 2);
    assert_eq!(anon(&mut mm, &mut pt, 0, 63 * P, RW, 0), Err(Errno::ENOMEM));
    anon(&mut mm, &mut pt, 0, 62 * P, RW, 0).unwrap();
}

#[test]
fn munmap_rules_and_split() {
    // munmap: EINVAL unaligned / zero length / beyond TASK_SIZE; unmapping
    // a hole succeeds; unmapping the middle splits with pgoff kept.
    let (mut mm, mut pt) = setup();
    assert_eq!(
        munmap(&mut mm, &mut pt, VirtAddr(BASE + 1), P),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        munmap(&mut mm, &mut pt, VirtAddr(BASE), 0),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        munmap(&mut mm, &mut pt, VirtAddr(0x7fff_ffff_f000), 2 * P),
        Err(Errno::EINVAL)
    );
    assert_eq!(munmap(&mut mm, &mut pt, VirtAddr(BASE), P), Ok(()));
    anon(&mut mm, &mut pt, BASE, 5 * P, RW, MAP_FIXED | MAP_POPULATE).unwrap();
    pt.log.clear();
    munmap(&mut mm, &mut pt, VirtAddr(BASE + P), 2 * P - 100).unwrap();
    assert_eq!(pt.log, vec![Call::Unmap(BASE + P, BASE + 3 * P)]);
    assert_eq!(
        ranges(&mm),
        vec![(BASE, BASE + P), (BASE + 3 * P, BASE + 5 * P)]
    );
    assert_eq!(vma_at(&mm, BASE + 3 * P).pgoff, (BASE + 3 * P) >> 12);
    assert_eq!(mm.total_vm, 3);
    assert_eq!(mm.data_vm, 3);
    assert_eq!(mm.hiwater_vm, 5);
    mm.check_invariants().unwrap();
    // Munmap across a hole and two VMAs.
    munmap(&mut mm, &mut pt, VirtAddr(BASE), 5 * P).unwrap();
    assert_eq!(mm.map_count(), 0);
    assert!(pt.pages.is_empty());
}

// ---------------------------------------------------------------------------
// §3 rule 2, §6.4: merging and mprotect

#[test]
fn adjacent_anon_maps_merge() {
    // §3 rule 2: two adjacent RW anonymous 1-page maps merge trivially.
    let (mut mm, mut pt) = setup();
    let a = anon(&mut mm, &mut pt, 0, P, RW, 0).unwrap();
    let b = anon(&mut mm, &mut pt, 0, P, RW, 0).unwrap();
    assert_eq!(b + P, a);
    assert_eq!(ranges(&mm), vec![(b, a + P)]);
    // Different prot does not merge.
    anon(&mut mm, &mut pt, 0, P, PROT_READ, 0).unwrap();
    assert_eq!(mm.map_count(), 2);
}

#[test]
fn mprotect_split_then_merge_back_with_faulted_half() {
    // §3 rule 2 / §6.4: 10 RW pages split by mprotect; fault one half (it
    // gets an anon_vma); mprotect the other half back -> one VMA.
    for faulted_left in [false, true] {
        let (mut mm, mut pt) = setup();
        let a = anon(&mut mm, &mut pt, 0, 10 * P, RW, 0).unwrap();
        mprotect(&mut mm, &mut pt, VirtAddr(a + 5 * P), 5 * P, PROT_READ).unwrap();
        assert_eq!(mm.map_count(), 2);
        assert_eq!(
            vma_at(&mm, a + 5 * P).pgoff,
            (a + 5 * P) >> 12,
            "§6.4 tail pgoff"
        );
        let faulted = if faulted_left { a } else { a + 5 * P };
        madvise(
            &mut mm,
            &mut pt,
            VirtAddr(faulted),
            5 * P,
            MADV_POPULATE_READ,
        )
        .unwrap();
        let key = vma_at(&mm, faulted).start;
        mm.anon_vma_prepare(key).unwrap();
        mprotect(&mut mm, &mut pt, VirtAddr(a + 5 * P), 5 * P, RW).unwrap();
        assert_eq!(
            ranges(&mm),
            vec![(a, a + 10 * P)],
            "faulted_left={faulted_left}"
        );
        assert!(vma_at(&mm, a).anon_vma.is_some());
        mm.check_invariants().unwrap();
    }
}

#[test]
fn mprotect_middle_gives_three_vmas_and_no_change_no_split() {
    // §6.4: equal flags -> nothing happens; otherwise split at start/end.
    let (mut mm, mut pt) = setup();
    let a = anon(&mut mm, &mut pt, 0, 3 * P, RW, 0).unwrap();
    pt.log.clear();
    mprotect(&mut mm, &mut pt, VirtAddr(a), 3 * P, RW).unwrap();
    assert!(pt.log.is_empty());
    assert_eq!(mm.map_count(), 1);
    mprotect(&mut mm, &mut pt, VirtAddr(a + P), 1, PROT_READ).unwrap();
    assert_eq!(
        ranges(&mm),
        vec![(a, a + P), (a + P, a + 2 * P), (a + 2 * P, a + 3 * P)]
    );
    assert!(matches!(pt.log[0], Call::Prot(s, e, _) if s == a + P && e == a + 2 * P));
    // VM_ACCOUNT dropped on the unfaulted read-only part (mprotect_fixup).
    assert!(!vma_at(&mm, a + P).flags.contains(VmFlags::ACCOUNT));
    assert_eq!(mm.data_vm, 2);
    mprotect(&mut mm, &mut pt, VirtAddr(a), 3 * P, RW).unwrap();
    assert_eq!(mm.map_count(), 1);
    mm.check_invariants().unwrap();
}

#[test]
fn mprotect_errnos() {
    // §6.4: unaligned start -> EINVAL; hole -> ENOMEM after changing the
    // mapped part; no VM_MAYWRITE (shared map of read-only file) -> EACCES.
    let (mut mm, mut pt) = setup();
    fixed(&mut mm, &mut pt, BASE, 2, RW);
    fixed(&mut mm, &mut pt, BASE + 3 * P, 1, RW);
    assert_eq!(
        mprotect(&mut mm, &mut pt, VirtAddr(BASE + 1), P, PROT_READ),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        mprotect(&mut mm, &mut pt, VirtAddr(BASE), P, 0x40),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        mprotect(
            &mut mm,
            &mut pt,
            VirtAddr(BASE),
            P,
            PROT_READ | PROT_GROWSDOWN | PROT_GROWSUP
        ),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        mprotect(
            &mut mm,
            &mut pt,
            VirtAddr(BASE),
            P,
            PROT_READ | PROT_GROWSDOWN
        ),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        mprotect(&mut mm, &mut pt, VirtAddr(BASE), 0, PROT_READ),
        Ok(())
    );
    assert_eq!(
        mprotect(&mut mm, &mut pt, VirtAddr(BASE + 2 * P), P, PROT_READ),
        Err(Errno::ENOMEM)
    );
    assert_eq!(
        mprotect(&mut mm, &mut pt, VirtAddr(BASE), 4 * P, PROT_READ),
        Err(Errno::ENOMEM)
    );
    assert_eq!(
        vma_at(&mm, BASE).flags & VmFlags::ACCESS_FLAGS,
        VmFlags::READ,
        "prefix changed"
    );
    assert_eq!(
        vma_at(&mm, BASE + 3 * P).flags & VmFlags::ACCESS_FLAGS,
        VmFlags::READ | VmFlags::WRITE
    );
    assert_eq!(
        mprotect(&mut mm, &mut pt, VirtAddr(!(P - 1)), 2 * P, PROT_READ),
        Err(Errno::ENOMEM)
    );
    let ro = file(true, false);
    let a = mmap(
        &mut mm,
        &mut pt,
        VirtAddr(0),
        P,
        PROT_READ,
        MAP_SHARED,
        Some(ro.clone()),
        0,
    )
    .unwrap();
    assert_eq!(mprotect(&mut mm, &mut pt, a, P, RW), Err(Errno::EACCES));
    let b = mmap(
        &mut mm,
        &mut pt,
        VirtAddr(0),
        P,
        PROT_READ,
        MAP_PRIVATE,
        Some(ro),
        0,
    )
    .unwrap();
    assert_eq!(mprotect(&mut mm, &mut pt, b, P, RW), Ok(()));
}

#[test]
fn file_vmas_merge_only_with_contiguous_pgoff_and_same_file() {
    // vma.c is_mergeable_vma / can_vma_merge_after: same file, pgoff contiguous.
    let (mut mm, mut pt) = setup();
    let f = file(true, false);
    let m = |mm: &mut MmStruct, pt: &mut Fake, a: u64, f: &FileRef, off: u64| {
        mmap(
            mm,
            pt,
            VirtAddr(a),
            P,
            PROT_READ,
            MAP_PRIVATE | MAP_FIXED,
            Some(f.clone()),
            off,
        )
        .unwrap()
    };
    m(&mut mm, &mut pt, BASE, &f, 0);
    m(&mut mm, &mut pt, BASE + P, &f, P);
    assert_eq!(mm.map_count(), 1);
    m(&mut mm, &mut pt, BASE + 2 * P, &f, 5 * P);
    assert_eq!(mm.map_count(), 2);
    let g = file(true, false);
    m(&mut mm, &mut pt, BASE + 3 * P, &g, 6 * P);
    assert_eq!(mm.map_count(), 3, "another open file never merges");
}

// ---------------------------------------------------------------------------
// §3 rule 3, §6.5: mremap

#[test]
fn mremap_expand_merge() {
    // §3 rule 3 "expand merge": 3 pages, unmap the middle, grow the first
    // page to 2 pages in place -> one 3-page mapping.
    let (mut mm, mut pt) = setup();
    let a = anon(&mut mm, &mut pt, 0, 3 * P, RW, 0).unwrap();
    munmap(&mut mm, &mut pt, VirtAddr(a + P), P).unwrap();
    let r = mremap(&mut mm, &mut pt, VirtAddr(a), P, 2 * P, 0, VirtAddr(0)).unwrap();
    assert_eq!(r.0, a);
    assert_eq!(ranges(&mm), vec![(a, a + 3 * P)]);
    mm.check_invariants().unwrap();
}

#[test]
fn mremap_expand_merge_offset() {
    // §3 rule 3 "expand merge offset": unmap page 3, grow page 2 to 2 pages.
    let (mut mm, mut pt) = setup();
    let a = anon(&mut mm, &mut pt, 0, 3 * P, RW, 0).unwrap();
    munmap(&mut mm, &mut pt, VirtAddr(a + 2 * P), P).unwrap();
    let r = mremap(&mut mm, &mut pt, VirtAddr(a + P), P, 2 * P, 0, VirtAddr(0)).unwrap();
    assert_eq!(r.0, a + P);
    assert_eq!(ranges(&mm), vec![(a, a + 3 * P)]);
}

#[test]
fn mremap_errnos() {
    // §6.5 parameter rules.
    let (mut mm, mut pt) = setup();
    let a = fixed(&mut mm, &mut pt, BASE, 4, RW);
    let r = |mm: &mut MmStruct, pt: &mut Fake, old: u64, ol: u64, nl: u64, fl: u32, na: u64| {
        mremap(mm, pt, VirtAddr(old), ol, nl, fl, VirtAddr(na)).map(|v| v.0)
    };
    assert_eq!(
        r(&mut mm, &mut pt, a, P, P, 8, 0),
        Err(Errno::EINVAL),
        "unknown flag"
    );
    assert_eq!(
        r(&mut mm, &mut pt, a + 1, P, P, 0, 0),
        Err(Errno::EINVAL),
        "unaligned old"
    );
    assert_eq!(
        r(&mut mm, &mut pt, a, P, 0, 0, 0),
        Err(Errno::EINVAL),
        "new_len 0"
    );
    assert_eq!(
        r(&mut mm, &mut pt, a, P, P, MREMAP_FIXED, 0x2000_0000),
        Err(Errno::EINVAL),
        "FIXED w/o MAYMOVE"
    );
    assert_eq!(
        r(
            &mut mm,
            &mut pt,
            a,
            P,
            2 * P,
            MREMAP_MAYMOVE | MREMAP_DONTUNMAP,
            0
        ),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        r(&mut mm, &mut pt, a, P, P, MREMAP_DONTUNMAP, 0),
        Err(Errno::EINVAL)
    );
    let mf = MREMAP_MAYMOVE | MREMAP_FIXED;
    assert_eq!(
        r(&mut mm, &mut pt, a, 2 * P, 2 * P, mf, a + P),
        Err(Errno::EINVAL),
        "overlap"
    );
    assert_eq!(
        r(&mut mm, &mut pt, a, P, P, mf, 0x2000_0001),
        Err(Errno::EINVAL),
        "unaligned new"
    );
    assert_eq!(
        r(&mut mm, &mut pt, a, P, P, mf, 0x7fff_ffff_f000),
        Err(Errno::EINVAL),
        "new past TASK_SIZE"
    );
    assert_eq!(
        r(&mut mm, &mut pt, 0x3000_0000, P, P, 0, 0),
        Err(Errno::EFAULT),
        "no vma"
    );
    assert_eq!(
        r(&mut mm, &mut pt, a, 5 * P, 6 * P, MREMAP_MAYMOVE, 0),
        Err(Errno::EFAULT),
        "crosses end"
    );
    assert_eq!(
        r(&mut mm, &mut pt, a, 0, P, MREMAP_MAYMOVE, 0),
        Err(Errno::EINVAL),
        "dup private"
    );
    fixed(&mut mm, &mut pt, a + 4 * P, 1, PROT_READ);
    assert_eq!(
        r(&mut mm, &mut pt, a, 4 * P, 5 * P, 0, 0),
        Err(Errno::ENOMEM),
        "no room, no MAYMOVE"
    );
    // DONTEXPAND: growth -> EFAULT, DONTUNMAP -> EINVAL.
    mm.insert_special_mapping(
        VirtAddr(0x5000_0000),
        P,
        VmFlags::READ | VmFlags::MAYREAD,
        "[vvar]",
    )
    .unwrap();
    assert_eq!(
        r(&mut mm, &mut pt, 0x5000_0000, P, 2 * P, MREMAP_MAYMOVE, 0),
        Err(Errno::EFAULT)
    );
    assert_eq!(
        r(
            &mut mm,
            &mut pt,
            0x5000_0000,
            P,
            P,
            MREMAP_MAYMOVE | MREMAP_DONTUNMAP,
            0
        ),
        Err(Errno::EINVAL)
    );
    // Same length, no flags: returns the address.
    assert_eq!(r(&mut mm, &mut pt, a, P, P, 0, 0), Ok(a));
    mm.check_invariants().unwrap();
}

#[test]
fn mremap_shrink_and_move_preserve_pages() {
    // §6.5: shrink unmaps the tail; a move carries the pages (move_range)
    // and leaves nothing at the source.
    let (mut mm, mut pt) = setup();
    let a = anon(&mut mm, &mut pt, BASE, 4 * P, RW, MAP_FIXED | MAP_POPULATE).unwrap();
    pt.log.clear();
    assert_eq!(
        mremap(&mut mm, &mut pt, VirtAddr(a), 4 * P, 3 * P, 0, VirtAddr(0))
            .unwrap()
            .0,
        a
    );
    assert_eq!(pt.log, vec![Call::Unmap(a + 3 * P, a + 4 * P)]);
    fixed(&mut mm, &mut pt, a + 3 * P, 1, PROT_READ);
    let pfn0 = pt.pages[&a].pfn;
    pt.log.clear();
    let n = mremap(
        &mut mm,
        &mut pt,
        VirtAddr(a),
        3 * P,
        5 * P,
        MREMAP_MAYMOVE,
        VirtAddr(0),
    )
    .unwrap()
    .0;
    assert_ne!(n, a);
    assert_eq!(pt.log[0], Call::Move(a, n, 3 * P));
    assert_eq!(pt.pages[&n].pfn, pfn0);
    assert!(!pt.present(a));
    assert_eq!(vma_at(&mm, n).end.0, n + 5 * P);
    // Faulted anon keeps its pgoff (linear index of the source).
    assert_eq!(vma_at(&mm, n).pgoff, a >> 12);
    assert!(mm.vma_lookup(VirtAddr(a)).is_none());
    mm.check_invariants().unwrap();
}

#[test]
fn mremap_unfaulted_anon_resets_pgoff_and_merges_at_destination() {
    // §6.5: an unfaulted anonymous VMA gets pgoff = new_addr >> PAGE_SHIFT
    // and merges with destination neighbours (copy_vma).
    let (mut mm, mut pt) = setup();
    fixed(&mut mm, &mut pt, BASE, 2, RW);
    fixed(&mut mm, &mut pt, 0x2000_0000, 1, RW);
    let n = mremap(
        &mut mm,
        &mut pt,
        VirtAddr(0x2000_0000),
        P,
        P,
        MREMAP_MAYMOVE | MREMAP_FIXED,
        VirtAddr(BASE + 2 * P),
    )
    .unwrap();
    assert_eq!(n.0, BASE + 2 * P);
    assert_eq!(ranges(&mm), vec![(BASE, BASE + 3 * P)]);
}

#[test]
fn mremap_fixed_replaces_only_moved_part() {
    // §3 rule 4: 5 pages moved onto the first 5 of a 10-page destination keep
    // pages 6-10; the destination is unmapped first.
    let (mut mm, mut pt) = setup();
    let src = anon(&mut mm, &mut pt, BASE, 5 * P, RW, MAP_FIXED | MAP_POPULATE).unwrap();
    let dst = anon(
        &mut mm,
        &mut pt,
        0x2000_0000,
        10 * P,
        PROT_READ,
        MAP_FIXED | MAP_POPULATE,
    )
    .unwrap();
    let dst_pfn6 = pt.pages[&(dst + 5 * P)].pfn;
    let src_pfn = pt.pages[&src].pfn;
    let flags = MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP;
    let n = mremap(
        &mut mm,
        &mut pt,
        VirtAddr(src),
        5 * P,
        5 * P,
        flags,
        VirtAddr(dst),
    )
    .unwrap();
    assert_eq!(n.0, dst);
    assert_eq!(pt.pages[&dst].pfn, src_pfn);
    assert_eq!(pt.pages[&(dst + 5 * P)].pfn, dst_pfn6);
    // DONTUNMAP: the source stays mapped but has no pages.
    assert!(mm.vma_lookup(VirtAddr(src)).is_some());
    assert_eq!(pt.count_in(src, src + 5 * P), 0);
    assert_eq!(
        vma_at(&mm, dst).flags & VmFlags::ACCESS_FLAGS,
        VmFlags::READ | VmFlags::WRITE
    );
    assert_eq!(
        vma_at(&mm, dst + 5 * P).flags & VmFlags::ACCESS_FLAGS,
        VmFlags::READ
    );
    mm.check_invariants().unwrap();
}

#[test]
fn mremap_dontunmap_sub_range() {
    // §3 rule 4: DONTUNMAP works on a sub-range of a VMA.
    let (mut mm, mut pt) = setup();
    let a = anon(&mut mm, &mut pt, BASE, 4 * P, RW, MAP_FIXED | MAP_POPULATE).unwrap();
    let n = mremap(
        &mut mm,
        &mut pt,
        VirtAddr(a + P),
        2 * P,
        2 * P,
        MREMAP_MAYMOVE | MREMAP_DONTUNMAP,
        VirtAddr(0),
    )
    .unwrap()
    .0;
    assert!(pt.present(n) && pt.present(n + P));
    assert!(pt.present(a) && !pt.present(a + P) && !pt.present(a + 2 * P) && pt.present(a + 3 * P));
    assert_eq!(mm.vma_lookup(VirtAddr(a)).unwrap().end.0, a + 4 * P);
}

// ---------------------------------------------------------------------------
// §6.3 brk

#[test]
fn brk_rules() {
    let (mut mm, mut pt) = setup();
    mm.start_brk = VirtAddr(0x60_1000);
    mm.brk = VirtAddr(0x60_1000);
    // Below start_brk: unchanged.
    assert_eq!(brk(&mut mm, &mut pt, VirtAddr(0x50_0000)).0, 0x60_1000);
    // Sub-page move: only mm.brk changes.
    assert_eq!(brk(&mut mm, &mut pt, VirtAddr(0x60_1000)).0, 0x60_1000);
    assert_eq!(mm.map_count(), 0);
    // Growth creates an rw VMA with pgoff = addr >> 12 and VM_ACCOUNT.
    assert_eq!(brk(&mut mm, &mut pt, VirtAddr(0x60_2800)).0, 0x60_2800);
    assert_eq!(ranges(&mm), vec![(0x60_1000, 0x60_3000)]);
    let v = vma_at(&mm, 0x60_1000);
    assert_eq!(v.pgoff, 0x601);
    assert!(v
        .flags
        .contains(VmFlags::ACCOUNT | VmFlags::READ | VmFlags::WRITE));
    // Further growth extends the same VMA.
    assert_eq!(brk(&mut mm, &mut pt, VirtAddr(0x60_5000)).0, 0x60_5000);
    assert_eq!(ranges(&mm), vec![(0x60_1000, 0x60_5000)]);
    // Shrink unmaps [newbrk, oldbrk).
    pt.log.clear();
    assert_eq!(brk(&mut mm, &mut pt, VirtAddr(0x60_3000)).0, 0x60_3000);
    assert_eq!(pt.log, vec![Call::Unmap(0x60_3000, 0x60_5000)]);
    // A mapping within one page of newbrk blocks growth; old brk returned.
    fixed(&mut mm, &mut pt, 0x70_0000, 1, RW);
    assert_eq!(brk(&mut mm, &mut pt, VirtAddr(0x6f_f001)).0, 0x60_3000);
    assert_eq!(brk(&mut mm, &mut pt, VirtAddr(0x6f_f000)).0, 0x6f_f000);
    // A GROWSDOWN VMA adds the guard gap.
    let (mut mm, mut pt) = setup();
    mm.start_brk = VirtAddr(0x60_0000);
    mm.brk = VirtAddr(0x60_0000);
    anon(
        &mut mm,
        &mut pt,
        0x80_0000,
        P,
        RW,
        MAP_FIXED | MAP_GROWSDOWN,
    )
    .unwrap();
    assert_eq!(brk(&mut mm, &mut pt, VirtAddr(0x70_0000)).0, 0x60_0000);
    assert_eq!(brk(&mut mm, &mut pt, VirtAddr(0x6f_f000)).0, 0x6f_f000);
    // RLIMIT_DATA: the old brk comes back.
    let mut mm = MmStruct::new(MmLayout::x86_64(Rlimits {
        data: 4 * P,
        ..Rlimits::default()
    }));
    mm.start_brk = VirtAddr(0x60_0000);
    mm.brk = VirtAddr(0x60_0000);
    assert_eq!(brk(&mut mm, &mut pt, VirtAddr(0x60_5000)).0, 0x60_0000);
    assert_eq!(brk(&mut mm, &mut pt, VirtAddr(0x60_4000)).0, 0x60_4000);
    mm.check_invariants().unwrap();
}

#[test]
fn overcommit_heuristic_refuses_single_requests_beyond_ram_plus_swap() {
    // mm/util.c __vm_enough_memory, OVERCOMMIT_GUESS (vm.overcommit_memory
    // 0): a charge of more pages than totalram_pages() + total_swap_pages
    // fails with ENOMEM. Recorded: mremap_brk's brk(start + 1 TiB) returns
    // the old break on a machine with less than 1 TiB (traces/mremap_brk-*).
    let (mut mm, mut pt) = setup();
    mm.overcommit = mm::util::Overcommit::new(mm::util::OvercommitMode::Guess, 1024, 0);
    mm.start_brk = VirtAddr(0x60_0000);
    mm.brk = VirtAddr(0x60_0000);
    // brk (do_brk_flags charges the growth): 1025 pages refused, old brk.
    assert_eq!(
        brk(&mut mm, &mut pt, VirtAddr(0x60_0000 + 1025 * P)).0,
        0x60_0000
    );
    assert_eq!(mm.map_count(), 0);
    assert_eq!(
        brk(&mut mm, &mut pt, VirtAddr(0x60_0000 + 1024 * P)).0,
        0x60_0000 + 1024 * P
    );
    // mmap: private writable memory is accountable; NORESERVE, shared and
    // read-only mappings are not charged.
    assert_eq!(
        anon(&mut mm, &mut pt, 0, 1025 * P, RW, 0),
        Err(Errno::ENOMEM)
    );
    assert!(anon(&mut mm, &mut pt, 0, 1025 * P, RW, MAP_NORESERVE).is_ok());
    assert!(anon(&mut mm, &mut pt, 0, 1025 * P, PROT_READ, 0).is_ok());
    let shared = mmap(
        &mut mm,
        &mut pt,
        VirtAddr(0),
        1025 * P,
        RW,
        MAP_SHARED | MAP_ANONYMOUS,
        None,
        0,
    );
    assert!(shared.is_ok());
    // A refused MAP_FIXED leaves what was there.
    let before = ranges(&mm);
    assert_eq!(
        anon(&mut mm, &mut pt, BASE, 2048 * P, RW, MAP_FIXED),
        Err(Errno::ENOMEM)
    );
    assert_eq!(ranges(&mm), before);
    // mprotect of a private read-only mapping to writable charges it.
    let ro = anon(&mut mm, &mut pt, 0, 1025 * P, PROT_READ, 0).unwrap();
    assert_eq!(
        mprotect(&mut mm, &mut pt, VirtAddr(ro), 1025 * P, RW),
        Err(Errno::ENOMEM)
    );
    assert_eq!(
        mprotect(&mut mm, &mut pt, VirtAddr(ro), 1024 * P, RW),
        Ok(())
    );
    // mremap growth of an accounted VMA charges the delta (vrm_calc_charge).
    let a = anon(&mut mm, &mut pt, 0, 4 * P, RW, 0).unwrap();
    assert_eq!(
        mremap(
            &mut mm,
            &mut pt,
            VirtAddr(a),
            4 * P,
            1030 * P,
            MREMAP_MAYMOVE,
            VirtAddr(0)
        ),
        Err(Errno::ENOMEM)
    );
    assert!(mremap(
        &mut mm,
        &mut pt,
        VirtAddr(a),
        4 * P,
        1028 * P,
        MREMAP_MAYMOVE,
        VirtAddr(0)
    )
    .is_ok());
    // vm.overcommit_memory 1 refuses nothing.
    mm.overcommit.set_mode(mm::util::OvercommitMode::Always);
    assert!(anon(&mut mm, &mut pt, 0, 4096 * P, RW, 0).is_ok());
}

#[test]
fn brk_populates_under_mlockall_future() {
    // §6.3: with def_flags VM_LOCKED the new brk area is populated.
    let (mut mm, mut pt) = setup();
    mm.start_brk = VirtAddr(0x60_0000);
    mm.brk = VirtAddr(0x60_0000);
    mlockall(&mut mm, &mut pt, MCL_FUTURE).unwrap();
    brk(&mut mm, &mut pt, VirtAddr(0x60_2000));
    assert_eq!(pt.count_in(0x60_0000, 0x60_2000), 2);
    assert_eq!(mm.locked_vm, 2);
}

// ---------------------------------------------------------------------------
// madvise

#[test]
fn madvise_rules() {
    let (mut mm, mut pt) = setup();
    fixed(&mut mm, &mut pt, BASE, 2, RW);
    fixed(&mut mm, &mut pt, BASE + 3 * P, 2, RW);
    mm_populate(&mut mm, &mut pt, VirtAddr(BASE), 5 * P, true).unwrap();
    // Unknown advice, misaligned start -> EINVAL.
    assert_eq!(
        madvise(&mut mm, &mut pt, VirtAddr(BASE), P, 7),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        madvise(&mut mm, &mut pt, VirtAddr(BASE), P, 100),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        madvise(&mut mm, &mut pt, VirtAddr(BASE + 1), P, MADV_DONTNEED),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        madvise(&mut mm, &mut pt, VirtAddr(BASE), 0, MADV_DONTNEED),
        Ok(())
    );
    // DONTNEED across a hole: applied to both sides, then ENOMEM.
    pt.log.clear();
    assert_eq!(
        madvise(&mut mm, &mut pt, VirtAddr(BASE + P), 3 * P, MADV_DONTNEED),
        Err(Errno::ENOMEM)
    );
    assert_eq!(
        pt.log,
        vec![
            Call::Discard(BASE + P, BASE + 2 * P, false),
            Call::Discard(BASE + 3 * P, BASE + 4 * P, false)
        ]
    );
    assert!(pt.present(BASE) && !pt.present(BASE + P) && pt.present(BASE + 4 * P));
    // No VMA at or after start -> ENOMEM.
    assert_eq!(
        madvise(&mut mm, &mut pt, VirtAddr(0x7000_0000), P, MADV_NORMAL),
        Err(Errno::ENOMEM)
    );
    // FREE marks pages lazily free.
    madvise(&mut mm, &mut pt, VirtAddr(BASE + 4 * P), P, MADV_FREE).unwrap();
    assert!(pt.pages[&(BASE + 4 * P)].lazyfree);
    // Flag advice splits and merges like mprotect.
    madvise(&mut mm, &mut pt, VirtAddr(BASE), P, MADV_DONTFORK).unwrap();
    assert!(vma_at(&mm, BASE).flags.contains(VmFlags::DONTCOPY));
    assert_eq!(mm.map_count(), 3);
    madvise(&mut mm, &mut pt, VirtAddr(BASE), P, MADV_DOFORK).unwrap();
    assert_eq!(mm.map_count(), 2);
    for (adv, flag) in [
        (MADV_SEQUENTIAL, VmFlags::SEQ_READ),
        (MADV_RANDOM, VmFlags::RAND_READ),
        (MADV_DONTDUMP, VmFlags::DONTDUMP),
        (MADV_WIPEONFORK, VmFlags::WIPEONFORK),
        (MADV_HUGEPAGE, VmFlags::HUGEPAGE),
        (MADV_NOHUGEPAGE, VmFlags::NOHUGEPAGE),
    ] {
        madvise(&mut mm, &mut pt, VirtAddr(BASE), 2 * P, adv).unwrap();
        assert!(vma_at(&mm, BASE).flags.contains(flag));
    }
    assert!(
        !vma_at(&mm, BASE).flags.contains(VmFlags::SEQ_READ),
        "RANDOM clears SEQ"
    );
    assert!(
        !vma_at(&mm, BASE).flags.contains(VmFlags::HUGEPAGE),
        "NOHUGEPAGE clears HUGEPAGE"
    );
    for adv in [
        MADV_NORMAL,
        MADV_DODUMP,
        MADV_KEEPONFORK,
        MADV_WILLNEED,
        MADV_COLD,
        MADV_PAGEOUT,
    ] {
        madvise(&mut mm, &mut pt, VirtAddr(BASE), 2 * P, adv).unwrap();
    }
    // WIPEONFORK on a file or shared mapping -> EINVAL; FREE on file -> EINVAL.
    let f = file(true, true);
    let fa = mmap(
        &mut mm,
        &mut pt,
        VirtAddr(0),
        P,
        PROT_READ,
        MAP_PRIVATE,
        Some(f),
        0,
    )
    .unwrap();
    assert_eq!(
        madvise(&mut mm, &mut pt, fa, P, MADV_WIPEONFORK),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        madvise(&mut mm, &mut pt, fa, P, MADV_FREE),
        Err(Errno::EINVAL)
    );
    // DONTNEED on VM_LOCKED -> EINVAL (COLD too); DONTNEED_LOCKED is allowed.
    mlock(&mut mm, &mut pt, VirtAddr(BASE + 3 * P), 2 * P).unwrap();
    assert_eq!(
        madvise(&mut mm, &mut pt, VirtAddr(BASE + 3 * P), P, MADV_DONTNEED),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        madvise(&mut mm, &mut pt, VirtAddr(BASE + 3 * P), P, MADV_COLD),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        madvise(
            &mut mm,
            &mut pt,
            VirtAddr(BASE + 3 * P),
            P,
            MADV_DONTNEED_LOCKED
        ),
        Ok(())
    );
    mm.check_invariants().unwrap();
}

#[test]
fn madvise_populate_rules() {
    // §3 rule 7 (madv_populate).
    let (mut mm, mut pt) = setup();
    let r = fixed(&mut mm, &mut pt, BASE, 2, PROT_READ);
    assert_eq!(
        madvise(&mut mm, &mut pt, VirtAddr(r), 2 * P, MADV_POPULATE_READ),
        Ok(())
    );
    assert_eq!(
        madvise(&mut mm, &mut pt, VirtAddr(r), 2 * P, MADV_POPULATE_WRITE),
        Err(Errno::EINVAL)
    );
    let w = fixed(&mut mm, &mut pt, 0x2000_0000, 2, PROT_WRITE);
    assert_eq!(
        madvise(&mut mm, &mut pt, VirtAddr(w), 2 * P, MADV_POPULATE_READ),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        madvise(&mut mm, &mut pt, VirtAddr(w), 2 * P, MADV_POPULATE_WRITE),
        Ok(())
    );
    assert!(pt.present(w) && pt.present(w + P));
    assert!(
        vma_at(&mm, w).anon_vma.is_some(),
        "write fault gives an anon_vma"
    );
    // Holes at the middle, end and beginning -> ENOMEM.
    let h = fixed(&mut mm, &mut pt, 0x3000_0000, 3, RW);
    munmap(&mut mm, &mut pt, VirtAddr(h + P), P).unwrap();
    for (s, l) in [(h, 3 * P), (h + 2 * P, 2 * P), (h - P, 2 * P)] {
        assert_eq!(
            madvise(&mut mm, &mut pt, VirtAddr(s), l, MADV_POPULATE_READ),
            Err(Errno::ENOMEM)
        );
    }
    // pagemap: POPULATE_READ does not set soft-dirty on the pte, WRITE does.
    assert!(!pt.pages[&r].soft_dirty);
    assert!(pt.pages[&w].soft_dirty);
}

// ---------------------------------------------------------------------------
// §3 rule 5: mlock

#[test]
fn mlock2_split_and_merge() {
    let (mut mm, mut pt) = setup();
    let a = anon(&mut mm, &mut pt, 0, 3 * P, RW, 0).unwrap();
    mlock2(&mut mm, &mut pt, VirtAddr(a), 3 * P, 0).unwrap();
    assert!(vma_at(&mm, a).flags.contains(VmFlags::LOCKED));
    assert_eq!(pt.count_in(a, a + 3 * P), 3, "Rss == Size after mlock");
    assert_eq!(mm.locked_vm, 3);
    munlock(&mut mm, &mut pt, VirtAddr(a + P), P).unwrap();
    assert_eq!(mm.map_count(), 3);
    assert_eq!(mm.locked_vm, 2);
    munlock(&mut mm, &mut pt, VirtAddr(a), 3 * P).unwrap();
    assert_eq!(ranges(&mm), vec![(a, a + 3 * P)]);
    assert_eq!(mm.locked_vm, 0);
    // ONFAULT: lo + lf, no population.
    let b = anon(&mut mm, &mut pt, 0, 3 * P, RW, 0).unwrap();
    mlock2(&mut mm, &mut pt, VirtAddr(b), 3 * P, MLOCK_ONFAULT).unwrap();
    assert!(vma_at(&mm, b)
        .flags
        .contains(VmFlags::LOCKED | VmFlags::LOCKONFAULT));
    assert_eq!(pt.count_in(b, b + 3 * P), 0);
    assert_eq!(
        mlock2(&mut mm, &mut pt, VirtAddr(b), P, 2),
        Err(Errno::EINVAL)
    );
    // Holes -> ENOMEM.
    assert_eq!(
        mlock(&mut mm, &mut pt, VirtAddr(0x100_0000), P),
        Err(Errno::ENOMEM)
    );
    mm.check_invariants().unwrap();
}

#[test]
fn mlockall_and_limits() {
    let (mut mm, mut pt) = setup();
    let a = anon(&mut mm, &mut pt, 0, 2 * P, RW, 0).unwrap();
    assert_eq!(mlockall(&mut mm, &mut pt, 0), Err(Errno::EINVAL));
    assert_eq!(mlockall(&mut mm, &mut pt, MCL_ONFAULT), Err(Errno::EINVAL));
    assert_eq!(mlockall(&mut mm, &mut pt, 8), Err(Errno::EINVAL));
    mlockall(&mut mm, &mut pt, MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT).unwrap();
    assert!(vma_at(&mm, a)
        .flags
        .contains(VmFlags::LOCKED | VmFlags::LOCKONFAULT));
    assert_eq!(pt.count_in(a, a + 2 * P), 0);
    let b = anon(&mut mm, &mut pt, 0, P, RW, 0).unwrap();
    assert!(
        vma_at(&mm, b)
            .flags
            .contains(VmFlags::LOCKED | VmFlags::LOCKONFAULT),
        "MCL_FUTURE"
    );
    munlockall(&mut mm, &mut pt).unwrap();
    assert_eq!(mm.def_flags, VmFlags::NONE);
    assert_eq!(mm.locked_vm, 0);
    assert_eq!(mm.map_count(), 1);
    // Unprivileged: RLIMIT_MEMLOCK.
    let mut lay = MmLayout::x86_64(Rlimits {
        memlock: 2 * P,
        ..Rlimits::default()
    });
    lay.cred = Credentials::USER;
    let mut mm = MmStruct::new(lay.clone());
    let a = anon(&mut mm, &mut pt, 0, 3 * P, RW, 0).unwrap();
    assert_eq!(
        mlock(&mut mm, &mut pt, VirtAddr(a), 3 * P),
        Err(Errno::ENOMEM)
    );
    mlock(&mut mm, &mut pt, VirtAddr(a), 2 * P).unwrap();
    mlock(&mut mm, &mut pt, VirtAddr(a), 2 * P).unwrap();
    assert_eq!(mlockall(&mut mm, &mut pt, MCL_CURRENT), Err(Errno::ENOMEM));
    lay.rlimits.memlock = 0;
    let mut mm = MmStruct::new(lay);
    assert_eq!(mlock(&mut mm, &mut pt, VirtAddr(a), P), Err(Errno::EPERM));
    assert_eq!(mlockall(&mut mm, &mut pt, MCL_CURRENT), Err(Errno::EPERM));
    // Special mappings are never locked.
    let (mut mm, mut pt) = setup();
    mm.insert_special_mapping(VirtAddr(BASE), P, VmFlags::READ | VmFlags::EXEC, "[vdso]")
        .unwrap();
    mlock(&mut mm, &mut pt, VirtAddr(BASE), P).unwrap();
    assert!(!vma_at(&mm, BASE).flags.contains(VmFlags::LOCKED));
}

// ---------------------------------------------------------------------------
// msync, mincore

#[test]
fn msync_rules() {
    let (mut mm, mut pt) = setup();
    fixed(&mut mm, &mut pt, BASE, 1, RW);
    fixed(&mut mm, &mut pt, BASE + 2 * P, 1, RW);
    assert_eq!(
        msync(&mm, VirtAddr(BASE), P, 8, &mut |_, _, _| Ok(())),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        msync(&mm, VirtAddr(BASE + 1), P, MS_SYNC, &mut |_, _, _| Ok(())),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        msync(
            &mm,
            VirtAddr(BASE),
            P,
            MS_SYNC | MS_ASYNC,
            &mut |_, _, _| Ok(())
        ),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        msync(&mm, VirtAddr(BASE), 0, MS_SYNC, &mut |_, _, _| Ok(())),
        Ok(())
    );
    assert_eq!(
        msync(&mm, VirtAddr(BASE), P, MS_SYNC, &mut |_, _, _| Ok(())),
        Ok(())
    );
    assert_eq!(
        msync(&mm, VirtAddr(BASE), 3 * P, MS_SYNC, &mut |_, _, _| Ok(())),
        Err(Errno::ENOMEM)
    );
    assert_eq!(
        msync(&mm, VirtAddr(BASE), 3 * P, MS_ASYNC, &mut |_, _, _| Ok(())),
        Err(Errno::ENOMEM)
    );
    assert_eq!(
        msync(&mm, VirtAddr(0x7000_0000), P, MS_ASYNC, &mut |_, _, _| Ok(
            ()
        )),
        Err(Errno::ENOMEM)
    );
    mlock(&mut mm, &mut pt, VirtAddr(BASE), P).unwrap();
    assert_eq!(
        msync(&mm, VirtAddr(BASE), P, MS_INVALIDATE, &mut |_, _, _| Ok(())),
        Err(Errno::EBUSY)
    );
    assert_eq!(
        msync(&mm, VirtAddr(BASE), P, MS_ASYNC, &mut |_, _, _| Ok(())),
        Ok(())
    );
}

#[test]
fn mincore_rules() {
    let (mut mm, mut pt) = setup();
    fixed(&mut mm, &mut pt, BASE, 3, RW);
    mm_populate(&mut mm, &mut pt, VirtAddr(BASE + P), P, false).unwrap();
    assert_eq!(
        mincore(&mm, &pt, VirtAddr(BASE), 3 * P - 5).unwrap(),
        vec![0, 1, 0]
    );
    assert_eq!(mincore(&mm, &pt, VirtAddr(BASE + 1), P), Err(Errno::EINVAL));
    assert_eq!(mincore(&mm, &pt, VirtAddr(BASE), 4 * P), Err(Errno::ENOMEM));
    assert_eq!(
        mincore(&mm, &pt, VirtAddr(0x7fff_ffff_f000), 2 * P),
        Err(Errno::ENOMEM)
    );
    assert_eq!(
        mincore(&mm, &pt, VirtAddr(BASE), 0).unwrap(),
        Vec::<u8>::new()
    );
}

// ---------------------------------------------------------------------------
// §5.7-5.9 /proc renderers

fn golden_mm() -> (MmStruct, Fake) {
    let (mut mm, mut pt) = setup();
    let f = file(true, false);
    mmap(
        &mut mm,
        &mut pt,
        VirtAddr(0x40_0000),
        P,
        PROT_READ | PROT_EXEC,
        MAP_PRIVATE | MAP_FIXED,
        Some(f.clone()),
        0,
    )
    .unwrap();
    mmap(
        &mut mm,
        &mut pt,
        VirtAddr(0x40_2000),
        P,
        PROT_READ,
        MAP_PRIVATE | MAP_FIXED,
        Some(f),
        0x2000,
    )
    .unwrap();
    mm.start_brk = VirtAddr(0x60_1000);
    mm.brk = VirtAddr(0x60_1000);
    brk(&mut mm, &mut pt, VirtAddr(0x62_2000));
    anon(&mut mm, &mut pt, 0, 3 * P, RW, 0).unwrap();
    (mm, pt)
}

#[test]
fn maps_format_byte_for_byte() {
    // §5.7: widths, padding to column 73 for names, trailing space for
    // unnamed VMAs, offset only for file VMAs, dev hex 2 digits, [vsyscall].
    let (mm, pt) = golden_mm();
    let expected =
        "00400000-00401000 r-xp 00000000 08:01 1234                               /usr/bin/prog\n\
00402000-00403000 r--p 00002000 08:01 1234                               /usr/bin/prog\n\
00601000-00622000 rw-p 00000000 00:00 0                                  [heap]\n\
7ffff7ffc000-7ffff7fff000 rw-p 00000000 00:00 0 \n\
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n";
    assert_eq!(show_maps(&mm, &pt), expected);
}

#[test]
fn maps_names_stack_special_shared_anon() {
    // §5.7 name precedence: special name, [stack], shmem "/dev/zero (deleted)",
    // [anon:NAME].
    let (mut mm, mut pt) = setup();
    mm.insert_stack_vma(
        VirtAddr(0x7fff_fffd_e000),
        VirtAddr(0x7fff_ffff_f000),
        VirtAddr(0x7fff_ffff_e000),
        false,
    )
    .unwrap();
    mm.insert_special_mapping(
        VirtAddr(0x7fff_f7fc_1000),
        2 * P,
        VmFlags::READ | VmFlags::EXEC,
        "[vdso]",
    )
    .unwrap();
    let s = anon(
        &mut mm,
        &mut pt,
        0x5000_0000,
        P,
        RW,
        MAP_SHARED ^ MAP_PRIVATE,
    )
    .unwrap();
    let out = show_maps(&mm, &pt);
    assert!(
        out.contains(
            "7ffff7fc1000-7ffff7fc3000 r-xp 00000000 00:00 0                          [vdso]\n"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "7ffffffde000-7ffffffff000 rw-p 00000000 00:00 0                          [stack]\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("50000000-50001000 rw-s 00000000 00:01 1"),
        "{out}"
    );
    assert!(out.contains("/dev/zero (deleted)\n"));
    assert_eq!(vma_at(&mm, s).pgoff, 0);
    let stack = vma_at(&mm, 0x7fff_fffd_e000);
    assert!(stack.flags.contains(VmFlags::GROWSDOWN | VmFlags::ACCOUNT));
    assert_eq!(mm.stack_vm, 33);
}

#[test]
fn smaps_fields_and_vmflags() {
    // §5.8 and §3 rule 5: after mlock, VmFlags has "lo", Rss == Size.
    let (mut mm, mut pt) = setup();
    let a = anon(&mut mm, &mut pt, 0, 3 * P, RW, 0).unwrap();
    mlock(&mut mm, &mut pt, VirtAddr(a), 3 * P).unwrap();
    let s = show_smaps(&mm, &pt);
    let expected = "7ffff7ffc000-7ffff7fff000 rw-p 00000000 00:00 0 \n\
Size:                 12 kB\n\
KernelPageSize:        4 kB\n\
MMUPageSize:           4 kB\n\
Rss:                  12 kB\n\
Pss:                  12 kB\n\
Pss_Dirty:            12 kB\n\
Shared_Clean:          0 kB\n\
Shared_Dirty:          0 kB\n\
Private_Clean:         0 kB\n\
Private_Dirty:        12 kB\n\
Referenced:           12 kB\n\
Anonymous:            12 kB\n\
KSM:                   0 kB\n\
LazyFree:              0 kB\n\
AnonHugePages:         0 kB\n\
ShmemPmdMapped:        0 kB\n\
FilePmdMapped:         0 kB\n\
Shared_Hugetlb:        0 kB\n\
Private_Hugetlb:       0 kB\n\
Swap:                  0 kB\n\
SwapPss:               0 kB\n\
Locked:               12 kB\n\
THPeligible:           0\n\
VmFlags: rd wr mr mw me lo ac sd \n";
    assert!(s.starts_with(expected), "{s}");
    assert!(s.contains("[vsyscall]\n"));
    let roll = show_smaps_rollup(&mm, &pt);
    assert!(roll.starts_with(
        "7ffff7ffc000-7ffff7fff000 ---p 00000000 00:00 0                          [rollup]\nRss:                  12 kB\nPss:                  12 kB\nPss_Dirty:            12 kB\nPss_Anon:             12 kB\nPss_File:              0 kB\nPss_Shmem:             0 kB\n"
    ), "{roll}");
    assert!(!roll.contains("VmFlags"));
}

#[test]
fn pagemap_bits() {
    // §5.9: present bit 63, soft-dirty 55 (VM_SOFTDIRTY forces it), exclusive
    // 56, file 61, swap 62 with type/offset, PFN only with CAP_SYS_ADMIN,
    // holes 0, offset/count multiples of 8.
    let (mut mm, mut pt) = setup();
    fixed(&mut mm, &mut pt, BASE, 4, RW);
    mm_populate(&mut mm, &mut pt, VirtAddr(BASE), P, false).unwrap();
    pt.pages.insert(
        BASE + 2 * P,
        PageInfo {
            swap: Some((3, 0x1234)),
            ..PageInfo::default()
        },
    );
    let f = file(true, false);
    let fa = mmap(
        &mut mm,
        &mut pt,
        VirtAddr(0x2000_0000),
        P,
        PROT_READ,
        MAP_PRIVATE | MAP_FIXED,
        Some(f),
        0,
    )
    .unwrap();
    mm_populate(&mut mm, &mut pt, fa, P, false).unwrap();
    let off = (BASE >> 12) * 8;
    assert_eq!(pagemap_read(&mm, &pt, off + 1, 8), Err(Errno::EINVAL));
    assert_eq!(pagemap_read(&mm, &pt, off, 12), Err(Errno::EINVAL));
    let raw = pagemap_read(&mm, &pt, off - 8, 6 * 8).unwrap();
    let e: Vec<u64> = raw
        .chunks(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(e[0], 0, "hole");
    let pfn = pt.pages[&BASE].pfn;
    assert_eq!(e[1], PM_PRESENT | PM_SOFT_DIRTY | PM_MMAP_EXCLUSIVE | pfn);
    assert_eq!(e[2], PM_SOFT_DIRTY, "VM_SOFTDIRTY, no pte");
    assert_eq!(e[3], PM_SWAP | PM_SOFT_DIRTY | 3 | (0x1234 << 5));
    assert_eq!(e[5], 0);
    let fe = pagemap_entry(&mm, &pt, fa);
    assert_eq!(fe & (PM_PRESENT | PM_FILE), PM_PRESENT | PM_FILE);
    // Without CAP_SYS_ADMIN: no PFN, no swap offset.
    mm.cred = Credentials::USER;
    let raw = pagemap_read(&mm, &pt, off, 3 * 8).unwrap();
    let e: Vec<u64> = raw
        .chunks(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(e[0], PM_PRESENT | PM_SOFT_DIRTY | PM_MMAP_EXCLUSIVE);
    assert_eq!(e[2], PM_SWAP | PM_SOFT_DIRTY);
    // Past TASK_SIZE: empty; huge counts are short reads.
    assert!(pagemap_read(&mm, &pt, (mm.task_size.as_u64() >> 12) * 8, 8)
        .unwrap()
        .is_empty());
    assert_eq!(
        pagemap_read(&mm, &pt, 0, !7u64).unwrap().len() as u64,
        PAGEMAP_MAX_READ
    );
}

#[test]
fn status_vm_lines() {
    // task_mem format: "Label:\t%8lu kB".
    let (mut mm, _pt) = golden_mm();
    mm.add_rss(RssKind::Anon, 3);
    mm.add_rss(RssKind::File, 1);
    mm.start_code = VirtAddr(0x40_0000);
    mm.end_code = VirtAddr(0x40_0800);
    let s = show_status_vm(&mm);
    let expected = "VmPeak:\t     152 kB\nVmSize:\t     152 kB\nVmLck:\t       0 kB\nVmPin:\t       0 kB\n\
VmHWM:\t      16 kB\nVmRSS:\t      16 kB\nRssAnon:\t      12 kB\nRssFile:\t       4 kB\nRssShmem:\t       0 kB\n\
VmData:\t     144 kB\nVmStk:\t       0 kB\nVmExe:\t       4 kB\nVmLib:\t       0 kB\nVmPTE:\t       0 kB\n\
VmSwap:\t       0 kB\nHugetlbPages:\t       0 kB\n";
    assert_eq!(s, expected);
}

#[test]
fn bad_input_never_panics() {
    let (mut mm, mut pt) = setup();
    for &a in &[0u64, 1, P, u64::MAX, !(P - 1), 0x7fff_ffff_f000, 1 << 63] {
        for &l in &[0u64, 1, P, u64::MAX, u64::MAX - P, 1 << 47] {
            let _ = anon(&mut mm, &mut pt, a, l, RW, 0);
            let _ = anon(&mut mm, &mut pt, a, l, RW, MAP_FIXED);
            let f = Some(file(true, true));
            let _ = mmap(
                &mut mm,
                &mut pt,
                VirtAddr(a),
                l,
                RW,
                MAP_SHARED,
                f.clone(),
                a & !(P - 1),
            );
            let _ = mmap(
                &mut mm,
                &mut pt,
                VirtAddr(a),
                l,
                RW,
                MAP_PRIVATE | MAP_FIXED,
                f,
                l & !(P - 1),
            );
            let _ = munmap(&mut mm, &mut pt, VirtAddr(a), l);
            let _ = mprotect(&mut mm, &mut pt, VirtAddr(a), l, PROT_READ);
            let _ = mremap(
                &mut mm,
                &mut pt,
                VirtAddr(a),
                l,
                l,
                MREMAP_MAYMOVE,
                VirtAddr(a),
            );
            let _ = mremap(
                &mut mm,
                &mut pt,
                VirtAddr(a),
                P,
                l,
                MREMAP_MAYMOVE | MREMAP_FIXED,
                VirtAddr(a),
            );
            let _ = madvise(&mut mm, &mut pt, VirtAddr(a), l, MADV_DONTNEED);
            let _ = mlock(&mut mm, &mut pt, VirtAddr(a), l);
            let _ = munlock(&mut mm, &mut pt, VirtAddr(a), l);
            let _ = msync(&mm, VirtAddr(a), l, MS_SYNC, &mut |_, _, _| Ok(()));
            let _ = brk(&mut mm, &mut pt, VirtAddr(a));
            let _ = pagemap_read(&mm, &pt, a & !7, l.min(4096) & !7);
            if l <= 16 * P {
                let _ = mincore(&mm, &pt, VirtAddr(a), l);
            }
            mm.check_invariants().unwrap();
        }
    }
}

// ---------------------------------------------------------------------------
// Property test against a page-granular model.

const NP: u64 = 48;
const PB: u64 = 0x4000_0000;

#[derive(Debug, Clone)]
enum Op {
    Map(u64, u64, u32),
    Unmap(u64, u64),
    Protect(u64, u64, u32),
    Move(u64, u64, u64, u64),
    Lock(u64, u64, bool),
    DontFork(u64, u64, bool),
}

fn op() -> impl Strategy<Value = Op> {
    let prot = prop_oneof![Just(PROT_NONE), Just(PROT_READ), Just(RW)];
    prop_oneof![
        (0..NP, 1..8u64, prot.clone()).prop_map(|(s, n, p)| Op::Map(s, n, p)),
        (0..NP, 1..8u64).prop_map(|(s, n)| Op::Unmap(s, n)),
        (0..NP, 1..8u64, prot).prop_map(|(s, n, p)| Op::Protect(s, n, p)),
        (0..NP, 1..6u64, 1..6u64, 0..NP).prop_map(|(s, o, n, d)| Op::Move(s, o, n, d)),
        (0..NP, 1..8u64, any::<bool>()).prop_map(|(s, n, l)| Op::Lock(s, n, l)),
        (0..NP, 1..8u64, any::<bool>()).prop_map(|(s, n, d)| Op::DontFork(s, n, d)),
    ]
}

/// What the model keeps per page: prot, locked (on fault), dontfork.
type Attr = (u32, bool, bool);

/// The mprotect/mlock hole rule (§6.4): nothing if `s` is unmapped, else the
/// mapped prefix changes; Ok only if the whole range was mapped.
fn apply_prefix(model: &mut BTreeMap<u64, Attr>, s: u64, n: u64, f: impl Fn(&mut Attr)) -> bool {
    let mut i = s;
    while i < s + n {
        match model.get_mut(&i) {
            Some(a) => f(a),
            None => break,
        }
        i += 1;
    }
    i == s + n
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn vma_set_matches_page_model(ops in proptest::collection::vec(op(), 1..50)) {
        let (mut mm, mut pt) = setup();
        let mut model: BTreeMap<u64, Attr> = BTreeMap::new();
        let pa = |i: u64| PB + i * P;
        for op in ops {
            match op {
                Op::Map(s, n, p) => {
                    let n = n.min(NP - s);
                    if n == 0 { continue; }
                    anon(&mut mm, &mut pt, pa(s), n * P, p, MAP_FIXED).unwrap();
                    for i in s..s + n { model.insert(i, (p, false, false)); }
                }
                Op::Unmap(s, n) => {
                    munmap(&mut mm, &mut pt, VirtAddr(pa(s)), n * P).unwrap();
                    for i in s..s + n { model.remove(&i); }
                }
                Op::Protect(s, n, p) => {
                    let r = mprotect(&mut mm, &mut pt, VirtAddr(pa(s)), n * P, p);
                    let ok = apply_prefix(&mut model, s, n, |a| a.0 = p);
                    prop_assert_eq!(r, if ok { Ok(()) } else { Err(Errno::ENOMEM) });
                }
                Op::Lock(s, n, lock) => {
                    let r = if lock {
                        mlock2(&mut mm, &mut pt, VirtAddr(pa(s)), n * P, MLOCK_ONFAULT)
                    } else {
                        munlock(&mut mm, &mut pt, VirtAddr(pa(s)), n * P)
                    };
                    let ok = apply_prefix(&mut model, s, n, |a| a.1 = lock);
                    prop_assert_eq!(r, if ok { Ok(()) } else { Err(Errno::ENOMEM) });
                }
                Op::DontFork(s, n, d) => {
                    let adv = if d { MADV_DONTFORK } else { MADV_DOFORK };
                    let r = madvise(&mut mm, &mut pt, VirtAddr(pa(s)), n * P, adv);
                    let mut all = true;
                    for i in s..s + n {
                        match model.get_mut(&i) {
                            Some(a) => a.2 = d,
                            None => all = false,
                        }
                    }
                    prop_assert_eq!(r, if all { Ok(()) } else { Err(Errno::ENOMEM) });
                }
                Op::Move(s, o, n, d) => {
                    let in_one_vma = mm
                        .vma_lookup(VirtAddr(pa(s)))
                        .is_some_and(|v| v.end.0 >= pa(s) + o * P);
                    let overlap = d < s + o && s < d + n;
                    if !in_one_vma || overlap || d + n > NP { continue; }
                    let a = model[&s];
                    let r = mremap(&mut mm, &mut pt, VirtAddr(pa(s)), o * P, n * P,
                        MREMAP_MAYMOVE | MREMAP_FIXED, VirtAddr(pa(d)));
                    prop_assert_eq!(r, Ok(VirtAddr(pa(d))));
                    for i in s..s + o { model.remove(&i); }
                    for i in d..d + n { model.insert(i, a); }
                }
            }
            mm.check_invariants().map_err(TestCaseError::fail)?;
            // Every page of the model is covered with the right attributes,
            // nothing else is mapped.
            let mut covered: BTreeMap<u64, Attr> = BTreeMap::new();
            let vmas: Vec<&Vma> = mm.iter().collect();
            for v in &vmas {
                prop_assert!(v.start.0 >= PB && v.end.0 <= PB + NP * P);
                prop_assert_eq!(v.pgoff, v.start.0 >> 12);
                prop_assert!(v.anon_vma.is_none());
                let locked = v.flags.contains(VmFlags::LOCKED);
                prop_assert_eq!(locked, v.flags.contains(VmFlags::LOCKONFAULT));
                let attr = ((v.flags.0 & 7) as u32, locked, v.flags.contains(VmFlags::DONTCOPY));
                for a in (v.start.0..v.end.0).step_by(P as usize) {
                    covered.insert((a - PB) / P, attr);
                }
            }
            prop_assert_eq!(&covered, &model);
            // Sorted, disjoint, and maximally merged.
            for w in vmas.windows(2) {
                prop_assert!(w[0].end <= w[1].start);
                let mergeable = w[0].end == w[1].start
                    && w[0].flags.difference(VmFlags::SOFTDIRTY)
                        == w[1].flags.difference(VmFlags::SOFTDIRTY);
                prop_assert!(!mergeable, "unmerged neighbours {:?} {:?}", w[0], w[1]);
            }
            prop_assert_eq!(mm.total_vm, model.len() as u64);
            prop_assert_eq!(mm.locked_vm, model.values().filter(|a| a.1).count() as u64);
            prop_assert!(pt.pages.is_empty());
        }
    }
}

#[test]
fn smaps_thp_eligible_needs_an_aligned_2mib_block() {
    // huge_memory.c __thp_vma_allowable_orders with TVA_SMAPS: the size and
    // alignment check applies; NOHUGEPAGE (MAP_STACK) disables it.
    let (mut mm, mut pt) = setup();
    let a = anon(&mut mm, &mut pt, 0, 4 << 20, RW, 0).unwrap();
    let s = show_smaps(&mm, &pt);
    assert!(s.contains("THPeligible:           1\n"), "{s}");
    madvise(&mut mm, &mut pt, VirtAddr(a), 4 << 20, MADV_NOHUGEPAGE).unwrap();
    assert!(show_smaps(&mm, &pt).contains("THPeligible:           0\n"));
    let b = anon(&mut mm, &mut pt, 0, 4 << 20, RW, MAP_STACK).unwrap();
    assert!(vma_at(&mm, b).flags.contains(VmFlags::NOHUGEPAGE));
    mm.thp_always = false;
    let c = anon(&mut mm, &mut pt, 0x4000_0000, 4 << 20, RW, MAP_FIXED).unwrap();
    madvise(&mut mm, &mut pt, VirtAddr(c), 4 << 20, MADV_HUGEPAGE).unwrap();
    let s = show_smaps(&mm, &pt);
    let block = &s[s.find("40000000-40400000").unwrap()..];
    assert!(block.contains("THPeligible:           1\n"), "{block}");
    assert!(
        block.contains("VmFlags: rd wr mr mw me ac sd hg \n"),
        "{block}"
    );
}

#[test]
fn expand_stack_rules() {
    // §6.1 stack_guard_gap; mm/mmap.c expand_downwards + acct_stack_growth.
    let (mut mm, mut pt) = setup();
    let top = 0x7fff_ffff_f000;
    mm.insert_stack_vma(
        VirtAddr(top - 33 * P),
        VirtAddr(top),
        VirtAddr(top - 16),
        false,
    )
    .unwrap();
    expand_stack(&mut mm, VirtAddr(top - 40 * P + 8)).unwrap();
    assert_eq!(vma_at(&mm, top - 1).start.0, top - 40 * P);
    assert_eq!(vma_at(&mm, top - 1).pgoff, (top - 40 * P) >> 12);
    assert_eq!(mm.stack_vm, 40);
    assert!(vma_at(&mm, top - 1).anon_vma.is_some());
    // RLIMIT_STACK (8 MiB).
    assert_eq!(
        expand_stack(&mut mm, VirtAddr(top - (8 << 20) - P)),
        Err(Errno::ENOMEM)
    );
    // Guard gap to an accessible VMA below.
    anon(&mut mm, &mut pt, top - (4 << 20), P, RW, MAP_FIXED).unwrap();
    assert_eq!(
        expand_stack(&mut mm, VirtAddr(top - (3 << 20))),
        Err(Errno::ENOMEM)
    );
    expand_stack(&mut mm, VirtAddr(top - (3 << 20) + P)).unwrap();
    // Not a stack above.
    assert_eq!(
        expand_stack(&mut mm, VirtAddr(top - (5 << 20))),
        Err(Errno::EFAULT)
    );
    mm.check_invariants().unwrap();
}

#[test]
fn anon_names_show_split_and_merge() {
    // §5.7 name precedence item 7 ([anon:NAME], [anon_shmem:NAME]); names
    // take part in merging (vma.c compares anon_name).
    let (mut mm, mut pt) = setup();
    let a = fixed(&mut mm, &mut pt, BASE, 3, RW);
    set_anon_name(&mut mm, VirtAddr(a + P), P, Some("buf")).unwrap();
    assert_eq!(mm.map_count(), 3);
    let maps = show_maps(&mm, &pt);
    assert!(
        maps.contains(
            "10001000-10002000 rw-p 00000000 00:00 0                                  [anon:buf]\n"
        ),
        "{maps}"
    );
    set_anon_name(&mut mm, VirtAddr(a), 3 * P, None).unwrap();
    assert_eq!(mm.map_count(), 1);
    assert_eq!(
        set_anon_name(&mut mm, VirtAddr(a), P, Some("a[b")),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        set_anon_name(&mut mm, VirtAddr(a), P, Some(&"x".repeat(80))),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        set_anon_name(&mut mm, VirtAddr(a + 1), P, Some("x")),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        set_anon_name(&mut mm, VirtAddr(a), 4 * P, Some("x")),
        Err(Errno::ENOMEM)
    );
    assert!(vma_at(&mm, a).anon_name.is_some());
    let f = mmap(
        &mut mm,
        &mut pt,
        VirtAddr(0),
        P,
        PROT_READ,
        MAP_PRIVATE,
        Some(file(true, false)),
        0,
    )
    .unwrap();
    assert_eq!(set_anon_name(&mut mm, f, P, Some("x")), Err(Errno::EBADF));
    let s = anon(
        &mut mm,
        &mut pt,
        0x5000_0000,
        P,
        RW,
        MAP_SHARED ^ MAP_PRIVATE,
    )
    .unwrap();
    set_anon_name(&mut mm, VirtAddr(s), P, Some("shm")).unwrap();
    assert!(show_maps(&mm, &pt).contains("[anon_shmem:shm]\n"));
}

#[test]
fn mremap_fixed_checks_before_unmapping() {
    // 6.18 check_prep_vma runs before the destination is unmapped: a source
    // range crossing its VMA gives EFAULT and leaves the destination alone.
    let (mut mm, mut pt) = setup();
    let src = fixed(&mut mm, &mut pt, BASE, 2, RW);
    let dst = fixed(&mut mm, &mut pt, 0x2000_0000, 4, PROT_READ);
    let r = mremap(
        &mut mm,
        &mut pt,
        VirtAddr(src),
        3 * P,
        3 * P,
        MREMAP_MAYMOVE | MREMAP_FIXED,
        VirtAddr(dst),
    );
    assert_eq!(r, Err(Errno::EFAULT));
    assert_eq!(vma_at(&mm, dst).end.0, dst + 4 * P);
    // A shrinking FIXED move unmaps the source tail and moves the rest.
    let n = mremap(
        &mut mm,
        &mut pt,
        VirtAddr(src),
        2 * P,
        P,
        MREMAP_MAYMOVE | MREMAP_FIXED,
        VirtAddr(dst),
    )
    .unwrap();
    assert_eq!(n.0, dst);
    assert!(mm.vma_lookup(VirtAddr(src)).is_none() && mm.vma_lookup(VirtAddr(src + P)).is_none());
    assert_eq!(ranges(&mm), vec![(dst, dst + P), (dst + P, dst + 4 * P)]);
    mm.check_invariants().unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    /// §6.2: top-down placement returns the highest page-aligned address
    /// below mmap_base (and at or above PAGE_SIZE) whose range overlaps no
    /// VMA and ends before the guard gap of a following GROWSDOWN VMA;
    /// checked against a brute-force scan.
    #[test]
    fn top_down_placement_is_highest_fit(
        maps in proptest::collection::vec((1..300u64, 1..6u64, any::<bool>()), 0..12),
        len in 1..12u64,
    ) {
        let mut lay = MmLayout::x86_64(Rlimits::default());
        lay.mmap_base = VirtAddr(256 * P);
        lay.stack_guard_gap = 8 * P;
        lay.mmap_min_addr = VirtAddr(P);
        let mut mm = MmStruct::new(lay);
        let mut pt = Fake::default();
        for (s, n, down) in maps {
            let fl = MAP_FIXED | if down { MAP_GROWSDOWN } else { 0 };
            // Alternate prot so that neighbours stay separate VMAs.
            let _ = anon(&mut mm, &mut pt, s * P, n * P, if s % 2 == 0 { RW } else { PROT_READ }, fl);
        }
        let vmas: Vec<(u64, u64, bool)> = mm
            .iter()
            .map(|v| (v.start.0, v.end.0, v.flags.contains(VmFlags::GROWSDOWN)))
            .collect();
        // No overlap, and the range ends before the guard gap of the VMA
        // that follows it (only that one is checked, as in vm_unmapped_area).
        let fits = |a: u64| {
            let e = a + len * P;
            let clear = vmas.iter().all(|&(s, ve, _)| e <= s || a >= ve);
            let next = vmas.iter().find(|&&(s, _, _)| s >= e);
            clear
                && next.is_none_or(|&(s, _, down)| !down || e <= s.saturating_sub(8 * P))
        };
        let want = (1..=(256 - len)).rev().map(|i| i * P).find(|&a| fits(a));
        let got = anon(&mut mm, &mut pt, 0, len * P, RW, 0).unwrap();
        match want {
            Some(w) => prop_assert_eq!(got, w),
            None => prop_assert!(got >= mm.mmap_legacy_base.as_u64(), "fell back to bottom-up"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    /// §6.1/§6.2 legacy layout: the lowest fit at or above mmap_legacy_base,
    /// with the same guard-gap rule; ENOMEM when nothing fits below TASK_SIZE.
    #[test]
    fn bottom_up_placement_is_lowest_fit(
        maps in proptest::collection::vec((16..256u64, 1..6u64, any::<bool>()), 0..12),
        len in 1..12u64,
    ) {
        let mut lay = MmLayout::x86_64(Rlimits::default());
        lay.legacy = true;
        lay.mmap_legacy_base = VirtAddr(16 * P);
        lay.task_size = VirtAddr(256 * P);
        lay.stack_guard_gap = 8 * P;
        lay.mmap_min_addr = VirtAddr(P);
        let mut mm = MmStruct::new(lay);
        let mut pt = Fake::default();
        for (s, n, down) in maps {
            let fl = MAP_FIXED | if down { MAP_GROWSDOWN } else { 0 };
            let _ = anon(&mut mm, &mut pt, s * P, n * P, if s % 2 == 0 { RW } else { PROT_READ }, fl);
        }
        let vmas: Vec<(u64, u64, bool)> = mm
            .iter()
            .map(|v| (v.start.0, v.end.0, v.flags.contains(VmFlags::GROWSDOWN)))
            .collect();
        let fits = |a: u64| {
            let e = a + len * P;
            let clear = vmas.iter().all(|&(s, ve, _)| e <= s || a >= ve);
            let next = vmas.iter().find(|&&(s, _, _)| s >= e);
            clear && next.is_none_or(|&(s, _, down)| !down || e <= s.saturating_sub(8 * P))
        };
        let want = (16..=(256 - len)).map(|i| i * P).find(|&a| fits(a));
        let got = anon(&mut mm, &mut pt, 0, len * P, RW, 0);
        prop_assert_eq!(got, want.ok_or(Errno::ENOMEM));
    }
}

#[test]
fn fork_inherited_vma_does_not_merge_with_unfaulted_neighbour() {
    // §3 rule 2: a VMA inherited through fork (anon_vma chain cloned) does
    // not merge with a new adjacent unfaulted VMA, even after mprotect makes
    // the flags equal. §6.11: DONTCOPY VMAs are not copied; locks are not
    // inherited; WIPEONFORK VMAs start without an anon_vma.
    let (mut mm, mut pt) = setup();
    let a = fixed(&mut mm, &mut pt, BASE, 2, RW);
    madvise(&mut mm, &mut pt, VirtAddr(a), 2 * P, MADV_POPULATE_WRITE).unwrap();
    let d = fixed(&mut mm, &mut pt, 0x2000_0000, 1, RW);
    madvise(&mut mm, &mut pt, VirtAddr(d), P, MADV_DONTFORK).unwrap();
    let w = fixed(&mut mm, &mut pt, 0x3000_0000, 1, RW);
    madvise(&mut mm, &mut pt, VirtAddr(w), P, MADV_POPULATE_WRITE).unwrap();
    madvise(&mut mm, &mut pt, VirtAddr(w), P, MADV_WIPEONFORK).unwrap();
    mlock(&mut mm, &mut pt, VirtAddr(a), 2 * P).unwrap();
    let mut child = mm.dup_mmap().unwrap();
    assert_eq!(child.map_count(), 2);
    assert_eq!(child.total_vm, 3);
    assert_eq!(child.locked_vm, 0);
    assert!(!vma_at(&child, a).flags.contains(VmFlags::LOCKED));
    assert!(vma_at(&child, a).anon_vma.is_some());
    assert_ne!(vma_at(&child, a).anon_vma, vma_at(&mm, a).anon_vma);
    assert!(vma_at(&child, w).anon_vma.is_none());
    assert!(vma_needs_copy(vma_at(&mm, a)));
    assert!(!vma_needs_copy(vma_at(&mm, w)));
    child.check_invariants().unwrap();
    // New unfaulted neighbour in the child: no merge, even with equal flags.
    let mut cpt = Fake::default();
    fixed(&mut child, &mut cpt, a + 2 * P, 1, PROT_READ);
    mprotect(&mut child, &mut cpt, VirtAddr(a + 2 * P), P, RW).unwrap();
    assert_eq!(child.map_count(), 3);
    // The same sequence in the parent merges.
    munlock(&mut mm, &mut pt, VirtAddr(a), 2 * P).unwrap();
    fixed(&mut mm, &mut pt, a + 2 * P, 1, PROT_READ);
    mprotect(&mut mm, &mut pt, VirtAddr(a + 2 * P), P, RW).unwrap();
    assert_eq!(vma_at(&mm, a).end.0, a + 3 * P);
}

#[test]
fn soft_dirty_rules() {
    // §3 rule 6 / §5.9: a new VMA is soft-dirty before any write; clear_refs
    // 4 clears it; a write sets it again; mprotect RO then RW does not; a new
    // VMA at the same address is soft-dirty again. Other values: 1-5 only.
    let (mut mm, mut pt) = setup();
    let a = fixed(&mut mm, &mut pt, BASE, 2, RW);
    let sd = |mm: &MmStruct, pt: &Fake, va: u64| {
        pagemap_entry(mm, pt, VirtAddr(va)) & PM_SOFT_DIRTY != 0
    };
    assert!(sd(&mm, &pt, a));
    clear_refs(&mut mm, &mut pt, 4).unwrap();
    assert!(!sd(&mm, &pt, a) && !sd(&mm, &pt, a + P));
    madvise(&mut mm, &mut pt, VirtAddr(a), P, MADV_POPULATE_WRITE).unwrap();
    assert!(sd(&mm, &pt, a) && !sd(&mm, &pt, a + P));
    clear_refs(&mut mm, &mut pt, 4).unwrap();
    mprotect(&mut mm, &mut pt, VirtAddr(a), 2 * P, PROT_READ).unwrap();
    mprotect(&mut mm, &mut pt, VirtAddr(a), 2 * P, RW).unwrap();
    assert!(!sd(&mm, &pt, a));
    munmap(&mut mm, &mut pt, VirtAddr(a), 2 * P).unwrap();
    fixed(&mut mm, &mut pt, a, 2, RW);
    assert!(sd(&mm, &pt, a));
    assert_eq!(clear_refs(&mut mm, &mut pt, 0), Err(Errno::EINVAL));
    assert_eq!(clear_refs(&mut mm, &mut pt, 6), Err(Errno::EINVAL));
    // 1: referenced bits cleared; 5: peak RSS reset.
    madvise(&mut mm, &mut pt, VirtAddr(a), P, MADV_POPULATE_READ).unwrap();
    assert!(pt.pages[&a].young);
    clear_refs(&mut mm, &mut pt, 1).unwrap();
    assert!(!pt.pages[&a].young);
    mm.add_rss(RssKind::Anon, 5);
    mm.add_rss(RssKind::Anon, -4);
    assert_eq!(mm.hiwater_rss(), 5);
    clear_refs(&mut mm, &mut pt, 5).unwrap();
    assert_eq!(mm.hiwater_rss(), 1);
}

#[test]
fn mremap_old_len_zero_duplicates_shared_mapping() {
    // §6.5: old_len == 0 duplicates a shared mapping (same shmem object).
    let (mut mm, mut pt) = setup();
    let a = anon(&mut mm, &mut pt, 0, 2 * P, RW, MAP_SHARED ^ MAP_PRIVATE).unwrap();
    let b = mremap(
        &mut mm,
        &mut pt,
        VirtAddr(a),
        0,
        2 * P,
        MREMAP_MAYMOVE,
        VirtAddr(0),
    )
    .unwrap()
    .0;
    assert_ne!(a, b);
    let (va, vb) = (vma_at(&mm, a), vma_at(&mm, b));
    assert!(Arc::ptr_eq(
        va.file.as_ref().unwrap(),
        vb.file.as_ref().unwrap()
    ));
    assert_eq!((va.pgoff, vb.pgoff), (0, 0));
    assert_eq!(mm.total_vm, 4);
    assert!(pt
        .log
        .iter()
        .all(|c| !matches!(c, Call::Move(..) | Call::Unmap(..))));
}

#[test]
fn guard_gap_only_limits_the_gap_directly_below() {
    // Regression found by the placement proptest: a GROWSDOWN VMA's guard
    // gap constrains only the gap right below it (vm_unmapped_area checks
    // the next VMA), not gaps below an intervening VMA.
    let mut lay = MmLayout::x86_64(Rlimits::default());
    lay.mmap_base = VirtAddr(256 * P);
    lay.stack_guard_gap = 8 * P;
    lay.mmap_min_addr = VirtAddr(P);
    let mut mm = MmStruct::new(lay);
    let mut pt = Fake::default();
    anon(
        &mut mm,
        &mut pt,
        247 * P,
        3 * P,
        RW,
        MAP_FIXED | MAP_GROWSDOWN,
    )
    .unwrap();
    anon(&mut mm, &mut pt, 240 * P, P, RW, MAP_FIXED).unwrap();
    assert_eq!(anon(&mut mm, &mut pt, 0, 7 * P, RW, 0), Ok(233 * P));
}

// ---------------------------------------------------------------------------
// x86-64 5-level paging (LA57)

/// DEFAULT_MAP_WINDOW (2^47 - 4096).
const MAP_WINDOW: u64 = 0x7fff_ffff_f000;
/// TASK_SIZE_MAX with 5-level paging (2^56 - 4096).
const TASK_SIZE_L5: u64 = 0x00ff_ffff_ffff_f000;

fn la57() -> (MmStruct, Fake) {
    (
        MmStruct::new(MmLayout::x86_64_la57(Rlimits::default())),
        Fake::default(),
    )
}

#[test]
fn la57_layout_keeps_the_4_level_bases() {
    // §6.1: TASK_SIZE is 2^56 - 4096, mmap_base and the legacy base come
    // from DEFAULT_MAP_WINDOW (arch_pick_mmap_layout, task_size_64bit(0)).
    let (mm, _) = la57();
    let l4 = MmStruct::for_x86_64_default();
    assert_eq!(mm.task_size.as_u64(), TASK_SIZE_L5);
    assert_eq!(mm.map_window.as_u64(), MAP_WINDOW);
    assert_eq!(mm.mmap_base.as_u64(), 0x7fff_f7ff_f000);
    assert_eq!(mm.mmap_base, l4.mmap_base);
    assert_eq!(mm.mmap_legacy_base, l4.mmap_legacy_base);
    assert_eq!(
        (l4.task_size.as_u64(), l4.map_window.as_u64()),
        (MAP_WINDOW, MAP_WINDOW)
    );
    let unlimited = MmLayout::x86_64_la57(Rlimits {
        stack: u64::MAX,
        ..Rlimits::default()
    });
    assert_eq!(unlimited.mmap_base.as_u64(), 0x1555_5555_6000);
}

#[test]
fn la57_mmap_without_hint_stays_below_the_window() {
    // §3 item 10 (virtual_address_range): without a hint above 128 TiB,
    // mmap never returns addresses >= DEFAULT_MAP_WINDOW, even after the
    // top-down area is exhausted and the bottom-up fallback fills the rest.
    let (mut mm, mut pt) = la57();
    let first = anon(&mut mm, &mut pt, 0, P, RW, 0).unwrap();
    assert_eq!(first + P, mm.mmap_base.as_u64());
    let mut len = 1u64 << 40;
    let mut maps = 0;
    while len >= P {
        loop {
            match anon(&mut mm, &mut pt, 0, len, PROT_READ, MAP_NORESERVE) {
                Ok(a) => {
                    assert!(a + len <= MAP_WINDOW, "{a:#x}+{len:#x}");
                    maps += 1;
                    assert!(maps < 10_000, "no progress");
                }
                Err(e) => {
                    assert_eq!(e, Errno::ENOMEM);
                    break;
                }
            }
        }
        len /= 2;
    }
    assert!(maps > 120, "{maps}");
    // Everything below the window is taken (from PAGE_SIZE, as root may map
    // below mmap_min_addr), nothing above it.
    assert_eq!(mm.iter().next().unwrap().start.0, P);
    assert!(mm.iter().all(|v| v.end.0 <= MAP_WINDOW));
    let mut end = P;
    for (s, e) in ranges(&mm) {
        assert_eq!(s, end, "gap below {s:#x}");
        end = e;
    }
    assert_eq!(end, MAP_WINDOW);
    // A hint above the window still finds room.
    let hi = anon(&mut mm, &mut pt, 1 << 52, P, RW, 0).unwrap();
    assert_eq!(hi, 1 << 52);
}

#[test]
fn la57_hint_above_the_window_opens_the_56_bit_space() {
    // §6.2: a hint above DEFAULT_MAP_WINDOW is honoured when free; if it is
    // not usable the top-down search runs up to mmap_base + (TASK_SIZE_MAX -
    // DEFAULT_MAP_WINDOW) (arch_get_unmapped_area_topdown).
    let (mut mm, mut pt) = la57();
    let a = anon(&mut mm, &mut pt, 1 << 52, 4 * P, RW, 0).unwrap();
    assert_eq!(a, 1 << 52);
    // Taken: the search over the full space returns the highest gap.
    let b = anon(&mut mm, &mut pt, 1 << 52, P, RW, 0).unwrap();
    let top = mm.mmap_base.as_u64() + (TASK_SIZE_L5 - MAP_WINDOW);
    assert_eq!(top, 0x00ff_ffff_f7ff_f000);
    assert_eq!(b, top - P);
    // A hint of 2^56 is beyond TASK_SIZE: not honoured, but still high.
    let c = anon(&mut mm, &mut pt, 1 << 56, P, RW, 0).unwrap();
    assert_eq!(c, top - 2 * P);
    assert!(c > MAP_WINDOW);
    // THP alignment still applies to an unhinted 2 MiB map only.
    let d = anon(
        &mut mm,
        &mut pt,
        0x0100_0000_0000_0000 - (4 << 20),
        2 << 20,
        RW,
        0,
    )
    .unwrap();
    assert_eq!(d, 0x0100_0000_0000_0000 - (4 << 20));
    // A hint straddling the window is invalid (mmap_address_hint_valid):
    // the default search below mmap_base is used.
    let e = anon(&mut mm, &mut pt, MAP_WINDOW - P, 2 * P, RW, 0).unwrap();
    assert_eq!(e, mm.mmap_base.as_u64() - 2 * P);
    // Hints at or below the window are placed as on 4-level.
    let f = anon(&mut mm, &mut pt, MAP_WINDOW - P, P, RW, 0).unwrap();
    assert_eq!(f, MAP_WINDOW - P);
    let g = anon(&mut mm, &mut pt, 0, P, RW, 0).unwrap();
    assert!(g < MAP_WINDOW);
    // Legacy layout: the bottom-up search ends at TASK_SIZE_MAX only for a
    // hint above the window.
    let mut legacy = MmStruct::new(MmLayout {
        legacy: true,
        ..MmLayout::x86_64_la57(Rlimits::default())
    });
    let h = anon(&mut legacy, &mut pt, 1 << 52, P, RW, 0).unwrap();
    assert_eq!(h, 1 << 52);
    let i = anon(&mut legacy, &mut pt, 0, P, RW, 0).unwrap();
    assert_eq!(i, 0x2aaa_aaaa_b000);
}

#[test]
fn la57_map_fixed_reaches_task_size_max() {
    // §6.2: MAP_FIXED may use anything below TASK_SIZE_MAX; beyond it
    // __get_unmapped_area fails with ENOMEM, a length over TASK_SIZE too.
    let (mut mm, mut pt) = la57();
    let hi = 0x7f_0000_0000_0000u64;
    assert_eq!(fixed(&mut mm, &mut pt, hi, 2, RW), hi);
    assert_eq!(vma_at(&mm, hi).end.0, hi + 2 * P);
    let last = TASK_SIZE_L5 - P;
    assert_eq!(fixed(&mut mm, &mut pt, last, 1, RW), last);
    assert_eq!(
        anon(&mut mm, &mut pt, TASK_SIZE_L5, P, RW, MAP_FIXED),
        Err(Errno::ENOMEM)
    );
    assert_eq!(
        anon(&mut mm, &mut pt, last, 2 * P, RW, MAP_FIXED),
        Err(Errno::ENOMEM)
    );
    assert_eq!(
        anon(&mut mm, &mut pt, 0x7f0_0000_0000_0000, P, RW, MAP_FIXED),
        Err(Errno::ENOMEM)
    );
    assert_eq!(
        anon(&mut mm, &mut pt, 1 << 56, P, RW, MAP_FIXED_NOREPLACE),
        Err(Errno::ENOMEM)
    );
    assert_eq!(
        anon(&mut mm, &mut pt, 0, TASK_SIZE_L5 + P, RW, 0),
        Err(Errno::ENOMEM)
    );
    // maps shows the 14-digit addresses.
    let maps = show_maps(&mm, &pt);
    assert!(
        maps.contains("7f000000000000-7f000000002000 rw-p 00000000 00:00 0 \n"),
        "{maps}"
    );
    assert!(
        maps.contains("\nffffffffffe000-fffffffffff000 rw-p 00000000 00:00 0 \n"),
        "{maps}"
    );
    // munmap and mprotect work up there; the 4-level layout refuses it.
    mprotect(&mut mm, &mut pt, VirtAddr(hi), P, PROT_READ).unwrap();
    assert_eq!(mm.map_count(), 3);
    munmap(&mut mm, &mut pt, VirtAddr(hi), 2 * P).unwrap();
    assert_eq!(mm.map_count(), 1);
    let (mut l4, mut pt4) = setup();
    assert_eq!(
        anon(&mut l4, &mut pt4, hi, P, RW, MAP_FIXED),
        Err(Errno::ENOMEM)
    );
    assert_eq!(
        anon(&mut l4, &mut pt4, 1 << 52, P, RW, 0).unwrap(),
        l4.mmap_base.as_u64() - P
    );
}

#[test]
fn this_machines_defaults_no_soft_dirty_and_thp_madvise() {
    // linux-facts §6.12: CONFIG_MEM_SOFT_DIRTY is not set (VM_SOFTDIRTY is
    // 0: no `sd` in smaps, no pagemap bit 55) and THP is in "madvise" mode
    // (THPeligible only with MADV_HUGEPAGE).
    let mut mm = MmStruct::for_x86_64_default();
    let mut pt = Fake::default();
    assert!(!mm.soft_dirty && !mm.thp_always);
    let a = anon(&mut mm, &mut pt, 0, 4 << 20, RW, MAP_POPULATE).unwrap();
    let s = show_smaps(&mm, &pt);
    assert!(!s.contains(" sd "), "{s}");
    assert!(s.contains("THPeligible:           0\n"), "{s}");
    assert_eq!(pagemap_entry(&mm, &pt, VirtAddr(a)) & PM_SOFT_DIRTY, 0);
    madvise(&mut mm, &mut pt, VirtAddr(a), 4 << 20, MADV_HUGEPAGE).unwrap();
    let s = show_smaps(&mm, &pt);
    assert!(s.contains("THPeligible:           1\n"), "{s}");
    assert!(s.contains("VmFlags: rd wr mr mw me ac hg \n"), "{s}");
}
