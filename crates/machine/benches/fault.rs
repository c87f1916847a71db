//! criterion: demand-zero faults, a 1-byte write to each 4 KiB page of 64 MiB
//! of fresh anonymous memory, by a process of the machine (`Machine::store`:
//! MMU miss, fault handler, zeroed page) and, as the named reference, by
//! this process on the host (real kernel faults, MADV_NOHUGEPAGE). The
//! throughput is in faults (elements) per second. `lmm bench fault` prints
//! the same comparison for 1 GiB with its ratio.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use machine::{Machine, MachineConfig};
use memmap2::{Advice, MmapOptions};
use mm::mmap::{MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE};

const SIZE: u64 = 64 << 20;
const PAGES: u64 = SIZE / 4096;

fn fault(c: &mut Criterion) {
    let mut m = Machine::boot(MachineConfig {
        ram: 1 << 30,
        ..Default::default()
    })
    .unwrap();
    let pid = m.spawn("bench").unwrap();
    let mut g = c.benchmark_group("fault");
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.throughput(Throughput::Elements(PAGES));
    g.bench_function("lmm/demand_zero_64MiB", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let flags = MAP_PRIVATE | MAP_ANONYMOUS;
                let va = m
                    .sys_mmap(pid, 0, SIZE, PROT_READ | PROT_WRITE, flags, None, 0)
                    .unwrap();
                let t = Instant::now();
                for i in 0..PAGES {
                    m.store(pid, va + i * 4096, &[1]).unwrap();
                }
                total += t.elapsed();
                m.sys_munmap(pid, va, SIZE).unwrap();
            }
            total
        })
    });
    g.bench_function("host/demand_zero_64MiB", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut map = MmapOptions::new().len(SIZE as usize).map_anon().unwrap();
                // A kernel without THP refuses the advice: 4 KiB faults anyway.
                let _ = map.advise(Advice::NoHugePage);
                let t = Instant::now();
                for off in (0..SIZE as usize).step_by(4096) {
                    // SAFETY: in bounds of the writable mapping.
                    unsafe { map.as_mut_ptr().add(off).write_volatile(1) };
                }
                total += t.elapsed();
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, fault);
criterion_main!(benches);
