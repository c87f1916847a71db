//! criterion: buddy allocator alloc+free pairs (order 0 through the per-CPU
//! lists, locked per call or held, and without them, order 3, order 9)
//! against buddy_system_allocator's frame allocator doing the same pattern.
//! `lmm bench page_alloc` prints the same cases with their ratio.

use std::hint::black_box;

use buddy_system_allocator::FrameAllocator;
use criterion::{criterion_group, criterion_main, Criterion};
use machine::{Machine, MachineConfig};
use mm::gfp::Gfp;
use mm::page_alloc::CpuId;
use mm::types::Order;

fn page_alloc(c: &mut Criterion) {
    let m = Machine::boot(MachineConfig {
        ram: 1 << 30,
        ..Default::default()
    })
    .unwrap();
    let pa = &m.pa();
    let mut reference = FrameAllocator::<32>::new();
    reference.add_frame(0, pa.totalram_pages() as usize);
    let mut g = c.benchmark_group("page_alloc");
    for (name, order, pcp) in [
        ("order0_pcp", 0u8, true),
        ("order0_nopcp", 0, false),
        ("order3", 3, true),
        ("order9", 9, true),
    ] {
        pa.set_pcp_disabled(!pcp);
        g.bench_function(format!("lmm/{name}"), |b| {
            b.iter(|| {
                let p = pa.alloc_pages(CpuId(0), Gfp::KERNEL, Order(order)).unwrap();
                pa.free_pages(CpuId(0), black_box(p), Order(order));
            })
        });
        g.bench_function(format!("buddy_system_allocator/{name}"), |b| {
            b.iter(|| {
                let f = reference.alloc(1 << order).unwrap();
                reference.dealloc(black_box(f), 1 << order);
            })
        });
    }
    // The CPU's lists held across calls (`lock_cpu`), as `lmm bench
    // page_alloc`'s "CPU held" row.
    pa.set_pcp_disabled(false);
    {
        let mut held = pa.lock_cpu(CpuId(0));
        g.bench_function("lmm/order0_pcp_held", |b| {
            b.iter(|| {
                let p = held.alloc_pages(Gfp::KERNEL, Order(0)).unwrap();
                held.free_pages(black_box(p), Order(0));
            })
        });
    }
    g.finish();
}

criterion_group!(benches, page_alloc);
criterion_main!(benches);
