//! `lmm bench`: measurements with their reference taken in the same run, so
//! the ratio means something on a shared machine. criterion benches of the
//! same patterns live in crates/machine/benches.

use std::hint::black_box;
use std::time::Instant;

use buddy_system_allocator::FrameAllocator;
use machine::{Machine, MachineConfig};
use mm::gfp::Gfp;
use mm::page_alloc::CpuId;
use mm::types::Order;

/// Best of `rounds` timings of `iters` calls, in ns per call.
fn time_ns(iters: u64, rounds: usize, mut f: impl FnMut()) -> f64 {
    (0..rounds)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_nanos() as f64 / iters as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// Runs the benchmark `name`, or all of them.
pub fn run(name: Option<&str>, config: &MachineConfig) -> Result<(), String> {
    match name {
        None => {
            page_alloc(config)?;
            boot()
        }
        Some("page_alloc") => page_alloc(config),
        Some("boot") => boot(),
        Some(other) => Err(format!(
            "unknown benchmark {other:?}: expected page_alloc or boot"
        )),
    }
}

fn page_alloc(config: &MachineConfig) -> Result<(), String> {
    let m = Machine::boot(config.clone()).map_err(|e| e.to_string())?;
    let pa = &m.pa;
    let cpu = CpuId(0);
    // The reference: buddy_system_allocator's frame allocator over the same
    // number of frames, doing the same alloc+free pairs.
    let mut reference = FrameAllocator::<32>::new();
    reference.add_frame(0, pa.totalram_pages() as usize);
    println!("page_alloc: alloc+free pairs, ns/op (best of 5), lmm vs buddy_system_allocator 0.13");
    println!(
        "{:<28} {:>10} {:>12} {:>8}",
        "case", "lmm", "reference", "ratio"
    );
    let iters = 2_000_000;
    let mut row = |case: &str, order: u8, pcp: bool| {
        pa.set_pcp_disabled(!pcp);
        let o = Order(order);
        let n = if order >= 9 { iters / 20 } else { iters };
        let ours = time_ns(n, 5, || {
            let p = pa
                .alloc_pages(cpu, Gfp::KERNEL, o)
                .expect("bench allocation");
            pa.free_pages(cpu, black_box(p), o);
        });
        let theirs = time_ns(n, 5, || {
            let f = reference.alloc(1 << order).expect("reference allocation");
            reference.dealloc(black_box(f), 1 << order);
        });
        println!(
            "{case:<28} {ours:>10.1} {theirs:>12.1} {:>7.2}x",
            theirs / ours
        );
    };
    row("order-0 via per-CPU lists", 0, true);
    row("order-0 without per-CPU", 0, false);
    row("order-3 via per-CPU lists", 3, true);
    row("order-9 via per-CPU lists", 9, true);
    pa.set_pcp_disabled(false);
    println!("(ratio = reference / lmm: above 1 means lmm is faster)");
    Ok(())
}

fn rss_kib() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn boot() -> Result<(), String> {
    let config = MachineConfig {
        ram: 1 << 40,
        cpus: 2,
        ..Default::default()
    };
    let (rss0, _) = rss_kib();
    let t = Instant::now();
    let m = Machine::boot(config).map_err(|e| e.to_string())?;
    let dt = t.elapsed();
    let (rss, hwm) = rss_kib();
    println!(
        "boot: x86_64 with 1 TiB RAM in {:.3} s; host RSS grew by {} MiB (now {} MiB, peak {} MiB); {} pages managed",
        dt.as_secs_f64(),
        rss.saturating_sub(rss0) >> 10,
        rss >> 10,
        hwm >> 10,
        m.pa.totalram_pages()
    );
    Ok(())
}
