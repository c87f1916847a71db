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

/// Best of `rounds` timings of `iters` calls, in ns per call. With
/// `LMM_BENCH_QUICK` set in the environment, one round of 1/1000 of the
/// calls: a smoke run for the tests, whose figures measure nothing.
fn time_ns(iters: u64, rounds: usize, mut f: impl FnMut()) -> f64 {
    let (iters, rounds) = if std::env::var_os("LMM_BENCH_QUICK").is_some() {
        ((iters / 1000).max(1), 1)
    } else {
        (iters, rounds)
    };
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
            slab(config)?;
            vm(config)?;
            boot()
        }
        Some("page_alloc") => page_alloc(config),
        Some("vm") => vm(config),
        Some("boot") => boot(),
        Some("slab") => slab(config),
        Some(other) => Err(format!(
            "unknown benchmark {other:?}: expected page_alloc, slab, vm or boot"
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
    outln!("page_alloc: alloc+free pairs, ns/op (best of 5), lmm vs buddy_system_allocator 0.13");
    outln!(
        "{:<28} {:>10} {:>12} {:>8}",
        "case",
        "lmm",
        "reference",
        "ratio"
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
        outln!(
            "{case:<28} {ours:>10.1} {theirs:>12.1} {:>7.2}x",
            theirs / ours
        );
    };
    row("order-0 via per-CPU lists", 0, true);
    row("order-0 without per-CPU", 0, false);
    row("order-3 via per-CPU lists", 3, true);
    row("order-9 via per-CPU lists", 9, true);
    pa.set_pcp_disabled(false);
    outln!("(ratio = reference / lmm: above 1 means lmm is faster)");
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
    outln!(
        "boot: x86_64 with 1 TiB RAM in {:.3} s; host RSS grew by {} MiB (now {} MiB, peak {} MiB); {} pages managed",
        dt.as_secs_f64(),
        rss.saturating_sub(rss0) >> 10,
        rss >> 10,
        hwm >> 10,
        m.pa.totalram_pages()
    );
    Ok(())
}

/// `lmm bench vm`: mmap+munmap pairs of anonymous memory (unpopulated and
/// MAP_POPULATE) on a process of the machine against the host kernel doing
/// the same calls in the same run, and MMU translations on TLB hits and on
/// full page-table walks.
fn vm(config: &MachineConfig) -> Result<(), String> {
    use mm::mmap::{MAP_ANONYMOUS, MAP_POPULATE, MAP_PRIVATE, PROT_READ, PROT_WRITE};
    use rustix::mm::{mmap_anonymous, munmap, MapFlags, ProtFlags};

    let mut m = Machine::boot(config.clone()).map_err(|e| e.to_string())?;
    let pid = m.spawn("bench").map_err(|e| format!("spawn: {e}"))?;
    outln!("vm: mmap+munmap pairs of anonymous private rw memory, ns/pair (best of 5), lmm vs the host kernel");
    outln!("{:<28} {:>10} {:>12} {:>8}", "case", "lmm", "host", "ratio");
    for (size, label) in [
        (4u64 << 10, "4 KiB"),
        (64 << 10, "64 KiB"),
        (2 << 20, "2 MiB"),
    ] {
        for populate in [false, true] {
            let pages = size / 4096;
            let iters = if populate {
                (40_000 / pages).max(200)
            } else {
                20_000
            };
            let flags = MAP_PRIVATE | MAP_ANONYMOUS | if populate { MAP_POPULATE } else { 0 };
            let mut failed = None;
            let ours = time_ns(iters, 5, || {
                match m.sys_mmap(pid, 0, size, PROT_READ | PROT_WRITE, flags, None, 0) {
                    Ok(a) => {
                        let _ = m.sys_munmap(pid, black_box(a), size);
                    }
                    Err(e) => failed = Some(e),
                }
            });
            if let Some(e) = failed {
                return Err(format!("lmm mmap of {label}: {e}"));
            }
            let mut hflags = MapFlags::PRIVATE;
            if populate {
                hflags |= MapFlags::POPULATE;
            }
            let mut host_failed = None;
            let theirs = time_ns(iters, 5, || {
                // SAFETY: a fresh anonymous mapping chosen by the kernel,
                // unmapped at once and never dereferenced.
                match unsafe {
                    mmap_anonymous(
                        std::ptr::null_mut(),
                        size as usize,
                        ProtFlags::READ | ProtFlags::WRITE,
                        hflags,
                    )
                } {
                    Ok(p) => {
                        // SAFETY: `p` is the mapping just made, `size` long.
                        let _ = unsafe { munmap(black_box(p), size as usize) };
                    }
                    Err(e) => host_failed = Some(e),
                }
            });
            if let Some(e) = host_failed {
                return Err(format!("host mmap of {label}: {e}"));
            }
            let case = format!("{label}{}", if populate { " MAP_POPULATE" } else { "" });
            outln!(
                "{case:<28} {ours:>10.1} {theirs:>12.1} {:>7.2}x",
                theirs / ours
            );
        }
    }
    outln!("(ratio = host / lmm: above 1 means lmm is faster)");

    // Translations on one populated page: TLB hits, then full 4-level walks
    // (the page's entry flushed before each).
    let va = m
        .sys_mmap(
            pid,
            0,
            4096,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
            None,
            0,
        )
        .map_err(|e| format!("mmap: {e}"))?;
    let p = m.process(pid).ok_or("no bench process")?;
    let (root, mode, asid) = (p.pt.root(), p.pt.mode(), p.asid);
    let dm = m.pa.direct_map();
    let mmu = &mut m.cpus[0];
    let v = mm::VirtAddr(va);
    let access = machine::mmu::Access::Read;
    mmu.translate(&dm, root, mode, asid, v, access, true)
        .map_err(|f| format!("translate: {f:?}"))?;
    let hit = time_ns(5_000_000, 5, || {
        let _ = black_box(mmu.translate(&dm, root, mode, asid, black_box(v), access, true));
    });
    let walk = time_ns(1_000_000, 5, || {
        mmu.flush_page(asid, v);
        let _ = black_box(mmu.translate(&dm, root, mode, asid, black_box(v), access, true));
    });
    outln!(
        "translate: TLB hit {hit:.1} ns ({:.0} M/s); full 4-level walk after a flush {walk:.1} ns ({:.0} M/s)",
        1e3 / hit,
        1e3 / walk
    );
    Ok(())
}

/// kmalloc(64)+kfree and kmem_cache_alloc+free pairs against the system
/// allocator and mimalloc doing the same pattern, then objects per second
/// with two host threads driving two simulated CPUs.
fn slab(config: &MachineConfig) -> Result<(), String> {
    use mm::slab_common::{Kmem, SlabFlags};
    use std::alloc::{GlobalAlloc, Layout, System};
    let m = Machine::boot(config.clone()).map_err(|e| e.to_string())?;
    let k = Kmem::new(&m.slab, &m.pa);
    let cache = k
        .kmem_cache_create("bench_64", 64, 0, SlabFlags(SlabFlags::NO_MERGE), None)
        .map_err(|e| e.to_string())?;
    let cpu = CpuId(0);
    let layout = Layout::from_size_align(64, 8).expect("layout");
    let iters = 2_000_000;
    outln!(
        "slab: alloc+free pairs of 64 bytes, ns/op (best of 5), {:?}",
        m.config.slab
    );
    outln!("{:<34} {:>9}", "case", "ns/op");
    let kmalloc = time_ns(iters, 5, || {
        let o = k.kmalloc(cpu, 64, Gfp::KERNEL).expect("kmalloc");
        let _ = k.kfree(cpu, black_box(o));
    });
    let cache_pair = time_ns(iters, 5, || {
        let o = k.kmem_cache_alloc(cpu, cache, Gfp::KERNEL).expect("alloc");
        let _ = k.kmem_cache_free(cpu, cache, black_box(o));
    });
    // Linux's SLUB fast path runs with preemption disabled and touches only
    // this CPU's data, with no locked instruction; holding the simulated CPU
    // (`Kmem::lock_cpu`) is our equivalent.
    let (held_kmalloc, held_cache) = {
        let mut h = k.lock_cpu(cpu);
        let a = time_ns(iters, 5, || {
            let o = h.kmalloc(64, Gfp::KERNEL).expect("kmalloc");
            let _ = h.kfree(black_box(o));
        });
        let b = time_ns(iters, 5, || {
            let o = h.kmem_cache_alloc(cache, Gfp::KERNEL).expect("alloc");
            let _ = h.kmem_cache_free(cache, black_box(o));
        });
        (a, b)
    };
    // SAFETY: non-zero layout; each block is freed with the same layout.
    let system = time_ns(iters, 5, || unsafe {
        let p = System.alloc(layout);
        System.dealloc(black_box(p), layout);
    });
    let mi = mimalloc::MiMalloc;
    // SAFETY: as above.
    let mimalloc_ns = time_ns(iters, 5, || unsafe {
        let p = mi.alloc(layout);
        mi.dealloc(black_box(p), layout);
    });
    for (case, ns) in [
        ("lmm kmalloc(64)+kfree", kmalloc),
        ("lmm kmem_cache_alloc+free", cache_pair),
        ("lmm kmalloc+kfree, CPU held", held_kmalloc),
        ("lmm kmem_cache pair, CPU held", held_cache),
        ("system malloc(64)+free", system),
        ("mimalloc 64-byte alloc+free", mimalloc_ns),
    ] {
        outln!("{case:<34} {ns:>9.1}");
    }
    outln!("ratios (other / lmm, above 1 means lmm is faster):");
    for (case, ns) in [
        ("kmalloc, locked per call", kmalloc),
        ("kmem_cache, locked per call", cache_pair),
        ("kmalloc, CPU held", held_kmalloc),
        ("kmem_cache, CPU held", held_cache),
    ] {
        outln!(
            "  {case:<28} vs system {:.2}x, vs mimalloc {:.2}x",
            system / ns,
            mimalloc_ns / ns
        );
    }
    if m.pa.nr_cpus() >= 2 {
        let per_thread = 1_000_000u64;
        let t = Instant::now();
        std::thread::scope(|s| {
            for c in 0..2 {
                let k = Kmem::new(&m.slab, &m.pa);
                s.spawn(move || {
                    for _ in 0..per_thread {
                        let o = k.kmalloc(CpuId(c), 64, Gfp::KERNEL).expect("kmalloc");
                        let _ = k.kfree(CpuId(c), black_box(o));
                    }
                });
            }
        });
        let secs = t.elapsed().as_secs_f64();
        outln!(
            "2 host threads on 2 simulated CPUs: {:.1} M kmalloc+kfree pairs/s in all",
            2.0 * per_thread as f64 / secs / 1e6
        );
    }
    Ok(())
}
