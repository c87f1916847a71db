//! criterion: `Machine::fork` of a process with 64 MiB of anonymous memory
//! resident (dup_mmap and copy_page_range write-protecting every PTE), the
//! fork alone timed; the child's exit and wait are untimed. `lmm bench fork`
//! prints the same for 1 GiB against the host kernel's fork(2) of a process
//! with as much resident, with their ratio.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use machine::mmu::Access;
use machine::{Machine, MachineConfig};
use mm::mmap::{MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE};

const SIZE: u64 = 64 << 20;

fn fork(c: &mut Criterion) {
    let mut m = Machine::boot(MachineConfig {
        ram: 1 << 30,
        ..Default::default()
    })
    .unwrap();
    let pid = m.spawn("bench").unwrap();
    let flags = MAP_PRIVATE | MAP_ANONYMOUS;
    let va = m
        .sys_mmap(pid, 0, SIZE, PROT_READ | PROT_WRITE, flags, None, 0)
        .unwrap();
    m.touch(pid, va, SIZE, Access::Write).unwrap();
    let mut g = c.benchmark_group("fork");
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(20);
    g.bench_function("lmm/fork_64MiB_resident", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                let child = m.fork(pid).unwrap();
                total += t.elapsed();
                m.exit(child).unwrap();
                m.wait(pid, child as i64).unwrap();
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, fork);
criterion_main!(benches);
