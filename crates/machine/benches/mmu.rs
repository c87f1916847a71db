//! MMU benchmarks: a TLB hit, a full 4-level walk after a flush, and a
//! std `HashMap` lookup of the same pages as the named reference (what a
//! software TLB built on a hash map would cost). Compare hit / reference.

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use machine::mmu::{Access, Mmu};
use mm::arch::pte::{PagingMode, PteFlags};
use mm::direct_map::HeapRam;
use mm::pgtable::{PageTable, PgtableAlloc};
use mm::types::{Pfn, PhysAddr, VirtAddr, PAGE_SIZE};

struct Frames(Vec<Pfn>);
impl PgtableAlloc for Frames {
    fn alloc_table(&mut self) -> Option<Pfn> {
        self.0.pop()
    }
    fn free_table(&mut self, pfn: Pfn) {
        self.0.push(pfn)
    }
}

const RAM: u64 = 16 << 20;
const PAGES: u64 = 64;

fn bench(c: &mut Criterion) {
    let dm = HeapRam::direct_map(RAM);
    let mut frames = Frames((RAM / 2 / PAGE_SIZE..RAM / PAGE_SIZE).map(Pfn).collect());
    let mode = PagingMode::X86_64L4;
    let kernel = PageTable::new_kernel(&dm, &mut frames, mode, PhysAddr(RAM)).unwrap();
    let mut user = PageTable::new_user(&kernel, &mut frames).unwrap();
    let base = 0x7f00_0000_0000u64;
    let flags = PteFlags::PRESENT | PteFlags::USER | PteFlags::WRITE;
    for i in 0..PAGES {
        user.map(
            &mut frames,
            VirtAddr(base + i * PAGE_SIZE),
            Pfn(0x100 + i),
            flags,
        )
        .unwrap();
    }
    let root = user.root();
    let mut g = c.benchmark_group("mmu");

    let mut mmu = Mmu::new();
    let mut i = 0u64;
    g.bench_function("translate_tlb_hit", |b| {
        b.iter(|| {
            i = (i + 1) % PAGES;
            let va = VirtAddr(base + i * PAGE_SIZE + 8);
            black_box(mmu.translate(&dm, root, mode, 1, black_box(va), Access::Read, true))
        })
    });

    let mut mmu = Mmu::new();
    g.bench_function("translate_walk_4level", |b| {
        b.iter(|| {
            i = (i + 1) % PAGES;
            let va = VirtAddr(base + i * PAGE_SIZE + 8);
            mmu.flush_page(1, va);
            black_box(mmu.translate(&dm, root, mode, 1, black_box(va), Access::Read, true))
        })
    });

    let map: HashMap<u64, u64> = (0..PAGES).map(|i| ((base >> 12) + i, 0x100 + i)).collect();
    g.bench_function("reference_hashmap_lookup", |b| {
        b.iter(|| {
            i = (i + 1) % PAGES;
            let va = base + i * PAGE_SIZE + 8;
            black_box(
                map.get(&(black_box(va) >> 12))
                    .map(|p| (p << 12) | (va & 0xfff)),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
