//! criterion: the slab fast paths against the host's allocators doing the
//! same pattern in the same run. kmalloc(64)+kfree and
//! kmem_cache_alloc+free on one CPU (SLUB, and the classic SLAB for
//! comparison) against `std::alloc` (the system allocator) and `mimalloc`
//! allocating and freeing 64 bytes; then object pairs with two host threads
//! driving two simulated CPUs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use machine::{Machine, MachineConfig};
use mimalloc::MiMalloc;
use mm::gfp::Gfp;
use mm::page_alloc::CpuId;
use mm::slab_common::{Kmem, SlabAllocator, SlabFlags, SlabKind};

const L64: Layout = match Layout::from_size_align(64, 8) {
    Ok(l) => l,
    Err(_) => panic!(),
};

fn boot() -> Machine {
    Machine::boot(MachineConfig {
        ram: 1 << 30,
        cpus: 2,
        ..Default::default()
    })
    .unwrap()
}

fn single(c: &mut Criterion) {
    let m = boot();
    let mut g = c.benchmark_group("slab");
    for kind in [SlabKind::Slub, SlabKind::Slab] {
        let sa = SlabAllocator::kmem_cache_init(m.pa(), kind);
        let k = Kmem::new(&sa, m.pa());
        let name = if kind == SlabKind::Slub {
            "slub"
        } else {
            "slab"
        };
        g.bench_function(format!("lmm_{name}/kmalloc64_kfree"), |b| {
            b.iter(|| {
                let p = k.kmalloc(CpuId(0), black_box(64), Gfp::KERNEL).unwrap();
                k.kfree(CpuId(0), black_box(p)).unwrap();
            })
        });
        g.bench_function(format!("lmm_{name}_held_cpu/kmalloc64_kfree"), |b| {
            let mut c = k.lock_cpu(CpuId(0));
            b.iter(|| {
                let p = c.kmalloc(black_box(64), Gfp::KERNEL).unwrap();
                c.kfree(black_box(p)).unwrap();
            })
        });
        let id = k
            .kmem_cache_create("bench_obj", 64, 0, SlabFlags::NO_MERGE, None)
            .unwrap();
        g.bench_function(format!("lmm_{name}/kmem_cache_alloc_free"), |b| {
            b.iter(|| {
                let p = k.kmem_cache_alloc(CpuId(0), id, Gfp::KERNEL).unwrap();
                k.kmem_cache_free(CpuId(0), id, black_box(p)).unwrap();
            })
        });
        g.bench_function(format!("lmm_{name}_held_cpu/kmem_cache_alloc_free"), |b| {
            let mut c = k.lock_cpu(CpuId(0));
            b.iter(|| {
                let p = c.kmem_cache_alloc(id, Gfp::KERNEL).unwrap();
                c.kmem_cache_free(id, black_box(p)).unwrap();
            })
        });
    }
    g.bench_function("system/malloc64_free", |b| {
        // SAFETY: L64 has a non-zero size; the block is freed at once with
        // the layout it was allocated with.
        b.iter(|| unsafe {
            let p = System.alloc(black_box(L64));
            System.dealloc(black_box(p), L64);
        })
    });
    g.bench_function("mimalloc/malloc64_free", |b| {
        // SAFETY: as above, for mimalloc.
        b.iter(|| unsafe {
            let p = MiMalloc.alloc(black_box(L64));
            MiMalloc.dealloc(black_box(p), L64);
        })
    });
    g.finish();
}

/// Two host threads, each on its own simulated CPU, doing `iters` kmalloc
/// pairs (with 16 objects kept live to leave the pure pair pattern).
fn two_threads(c: &mut Criterion) {
    let m = boot();
    let sa = SlabAllocator::kmem_cache_init(m.pa(), SlabKind::Slub);
    let k = Kmem::new(&sa, m.pa());
    let mut g = c.benchmark_group("slab_2threads");
    g.bench_function("lmm_slub/kmalloc64_kfree", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            std::thread::scope(|s| {
                for cpu in 0..2 {
                    s.spawn(move || {
                        for _ in 0..iters {
                            let p = k.kmalloc(CpuId(cpu), 64, Gfp::KERNEL).unwrap();
                            k.kfree(CpuId(cpu), black_box(p)).unwrap();
                        }
                    });
                }
            });
            start.elapsed() / 2
        })
    });
    g.bench_function("system/malloc64_free", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            std::thread::scope(|s| {
                for _ in 0..2 {
                    s.spawn(move || {
                        for _ in 0..iters {
                            // SAFETY: a non-zero layout, freed with itself.
                            unsafe {
                                let p = System.alloc(black_box(L64));
                                System.dealloc(black_box(p), L64);
                            }
                        }
                    });
                }
            });
            let d: Duration = start.elapsed();
            d / 2
        })
    });
    g.finish();
}

criterion_group!(benches, single, two_threads);
criterion_main!(benches);
