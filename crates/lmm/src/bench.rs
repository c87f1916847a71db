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

/// Bytes of anonymous memory `fault` and `fork` use unless told otherwise.
pub const DEFAULT_SIZE: u64 = 1 << 30;

/// Runs the benchmark `name`, or all of them; `size` is the memory of
/// `fault` and `fork` ([`DEFAULT_SIZE`] when `None`).
pub fn run(name: Option<&str>, size: Option<u64>, config: &MachineConfig) -> Result<(), String> {
    // The quick smoke mode (LMM_BENCH_QUICK) faults and forks 16 MiB once.
    let quick = std::env::var_os("LMM_BENCH_QUICK").is_some();
    let size = size.unwrap_or(if quick { 16 << 20 } else { DEFAULT_SIZE });
    let (fault_rounds, fork_rounds) = if quick { (2, 1) } else { (4, 5) };
    let out = &mut std::io::stdout();
    match name {
        None => {
            // A bar over the benchmarks on stderr (when stderr is a
            // terminal and stdout, where the tables go, is not).
            let names = [
                "page_alloc",
                "slab",
                "vm",
                "fault",
                "fork",
                "reclaim",
                "boot",
            ];
            let bar = crate::progress::bar(names.len() as u64, "bench", true);
            for name in names {
                bar.set_message(format!("bench {name}"));
                let r = run(Some(name), Some(size), config);
                bar.inc(1);
                r?;
            }
            bar.finish_and_clear();
            Ok(())
        }
        Some("reclaim") => reclaim(config),
        Some("page_alloc") => page_alloc(config),
        Some("vm") => vm(config),
        Some("boot") => boot(),
        Some("slab") => slab(config),
        Some("fault") => fault(config, size, fault_rounds, out).map(|_| ()),
        Some("fork") => fork(config, size, fork_rounds, out).map(|_| ()),
        Some("native") => native::run(config, out),
        Some(other) => Err(format!(
            "unknown benchmark {other:?}: expected page_alloc, slab, vm, fault, fork, reclaim, boot or native"
        )),
    }
}

/// [`time_ns`] of `ours` and `theirs` in five rounds that alternate
/// between the two, so that a change in the machine's load falls on both:
/// the best round of each, in ns per call. Out of line, so that each
/// side's loop is compiled on its own and not into the bench's body.
#[inline(never)]
fn time_alternating(iters: u64, mut ours: impl FnMut(), mut theirs: impl FnMut()) -> (f64, f64) {
    let (mut a, mut b) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..5 {
        a = a.min(time_ns(iters, 1, &mut ours));
        b = b.min(time_ns(iters, 1, &mut theirs));
    }
    (a, b)
}

fn page_alloc(config: &MachineConfig) -> Result<(), String> {
    let m = Machine::boot(config.clone()).map_err(|e| e.to_string())?;
    let pa = &m.pa();
    let cpu = CpuId(0);
    // The reference: buddy_system_allocator's frame allocator over the same
    // number of frames, doing the same alloc+free pairs.
    let mut reference = FrameAllocator::<32>::new();
    reference.add_frame(0, pa.totalram_pages() as usize);
    outln!("page_alloc: alloc+free pairs, ns/op (best of 5 rounds, alternating), lmm vs buddy_system_allocator 0.13");
    outln!("  lmm: alloc_pages(GFP_KERNEL, order) then __free_pages on CPU 0 of the machine: zonelist walk, watermark check, the per-CPU list (its lock taken per call, or held) or the zone's buddy lists under the zone lock, page refcount and vmstat counters");
    outln!("  reference: FrameAllocator::<32> over as many frames: alloc(2^order) then dealloc, a BTreeSet of free blocks per order, no lock, no counters");
    outln!(
        "{:<36} {:>10} {:>12} {:>8}",
        "case",
        "lmm",
        "reference",
        "ratio"
    );
    let iters = 2_000_000;
    let mut row = |case: &str, order: u8, pcp: bool, held: bool| {
        pa.set_pcp_disabled(!pcp);
        let o = Order(order);
        let n = if order >= 9 { iters / 20 } else { iters };
        let theirs_pair = || {
            let f = reference.alloc(1 << order).expect("reference allocation");
            reference.dealloc(black_box(f), 1 << order);
        };
        let (ours, theirs) = if held {
            // The page allocator's `lock_cpu`: the CPU's lists held across
            // calls, as the slab's fast path holds its CPU.
            let mut h = pa.lock_cpu(cpu);
            let ours_pair = || {
                let p = h.alloc_pages(Gfp::KERNEL, o).expect("bench allocation");
                h.free_pages(black_box(p), o);
            };
            time_alternating(n, ours_pair, theirs_pair)
        } else {
            let ours_pair = || {
                let p = pa
                    .alloc_pages(cpu, Gfp::KERNEL, o)
                    .expect("bench allocation");
                pa.free_pages(cpu, black_box(p), o);
            };
            time_alternating(n, ours_pair, theirs_pair)
        };
        outln!(
            "{case:<36} {ours:>10.1} {theirs:>12.1} {:>7.2}x",
            theirs / ours
        );
    };
    row("order-0 via per-CPU lists", 0, true, false);
    row("order-0 via per-CPU lists, CPU held", 0, true, true);
    row("order-0 without per-CPU", 0, false, false);
    row("order-3 via per-CPU lists", 3, true, false);
    row("order-9 via per-CPU lists", 9, true, false);
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
        m.pa().totalram_pages()
    );
    match host_memmap_init() {
        Some(lines) => {
            for l in lines {
                outln!("  host reference, from its boot log: {l}");
            }
        }
        None => outln!(
            "  no host reference: the host's boot log (/dev/kmsg) is unreadable or has no memmap init time (\"deferred pages initialised in\")"
        ),
    }
    Ok(())
}

/// The host kernel's own memmap init times, from its boot log: Linux
/// prints "node N deferred pages initialised in Mms" once deferred struct
/// pages are set up. `None` if the log cannot be read or has no such line.
fn host_memmap_init() -> Option<Vec<String>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
        .ok()?;
    let mut found = Vec::new();
    // One record per read; EAGAIN at the end of the buffer.
    let mut buf = vec![0u8; 8192];
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        let rec = String::from_utf8_lossy(&buf[..n]);
        let msg = rec.split_once(';').map_or(&*rec, |(_, m)| m);
        let msg = msg.lines().next().unwrap_or("");
        if msg.contains("deferred pages initialised in") {
            found.push(msg.trim().to_string());
        }
    }
    (!found.is_empty()).then_some(found)
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
    outln!("  lmm:  Machine::sys_mmap then sys_munmap on a process of the machine: address search, VMA tree insert/merge and removal, commit accounting, the vm_area_struct slab object, page-table zap and TLB flush");
    outln!("  host: mmap(2) then munmap(2) by this process, the same sizes and flags (real system calls of the host kernel)");
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
    let dm = m.pa().direct_map().clone();
    let mmu = m.cpu_mut(0);
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
    // The reference: the host CPU loading from one resident page of this
    // process, a TLB hit every time (a user process cannot flush the
    // host's TLB, so the host's own walk has no measurement here).
    let page = vec![1u64; 512];
    let mut i = 0usize;
    let host = time_ns(5_000_000, 5, || {
        i = (i + 1) & 511;
        // SAFETY: `i` < 512, inside `page`.
        black_box(unsafe { std::ptr::read_volatile(page.as_ptr().add(black_box(i))) });
    });
    outln!("translate: one 8-byte read of a resident page, ns (best of 5)");
    outln!("  lmm:  Mmu::translate on CPU 0: a TLB hit, then a full 4-level walk of the process's page tables after flushing the page's entry");
    outln!("  host: a load by the host CPU from one page of this process, a TLB hit each time (no reference for the walk: user space cannot flush the host's TLB)");
    outln!("{:<28} {:>10} {:>12} {:>8}", "case", "lmm", "host", "ratio");
    outln!(
        "{:<28} {hit:>10.1} {host:>12.1} {:>7.2}x",
        "TLB hit",
        host / hit
    );
    outln!(
        "{:<28} {walk:>10.1} {host:>12.1} {:>7.2}x",
        "full walk vs host TLB hit",
        host / walk
    );
    outln!(
        "(ratio = host / lmm; lmm {:.0} M hits/s, {:.0} M walks/s, host {:.0} M loads/s)",
        1e3 / hit,
        1e3 / walk,
        1e3 / host
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
    let k = Kmem::new(m.slab(), m.pa());
    let cache = k
        .kmem_cache_create("bench_64", 64, 0, SlabFlags::NO_MERGE, None)
        .map_err(|e| e.to_string())?;
    let cpu = CpuId(0);
    let layout = Layout::from_size_align(64, 8).expect("layout");
    let iters = 2_000_000;
    outln!(
        "slab: alloc+free pairs of 64 bytes, ns/op (best of 5), {:?}",
        m.config().slab
    );
    outln!("  lmm: kmalloc(64, GFP_KERNEL)+kfree, and kmem_cache_alloc+free on a 64-byte cache, on CPU 0: its per-CPU slab state locked per call, or held (lock_cpu)");
    outln!("  references: std::alloc::System (glibc malloc/free) and mimalloc, 64-byte blocks, the same alloc+free pattern");
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
    if m.pa().nr_cpus() >= 2 {
        let per_thread = 1_000_000u64;
        let t = Instant::now();
        std::thread::scope(|s| {
            for c in 0..2 {
                let k = Kmem::new(m.slab(), m.pa());
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

/// Writes one line of a benchmark's report to `out`.
macro_rules! say {
    ($out:expr, $($arg:tt)*) => {
        writeln!($out, $($arg)*).map_err(|e| format!("writing the report: {e}"))?
    };
}

mod native;

/// "1 GiB", "16 MiB", "64 KiB".
fn size_label(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b.is_multiple_of(1 << 30) => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 && b.is_multiple_of(1 << 20) => format!("{} MiB", b >> 20),
        b => format!("{} KiB", b >> 10),
    }
}

/// `config` with RAM raised, if needed, so that `size` of anonymous memory
/// (twice, for fork's child) fits without reclaim.
fn bench_config(config: &MachineConfig, size: u64) -> MachineConfig {
    let mut c = config.clone();
    c.ram = c.ram.max(2 * size + (64 << 20));
    c
}

/// This process's minor faults so far (`minflt`, field 10 of
/// /proc/self/stat); 0 if the file cannot be read.
fn host_minflt() -> u64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the comm's closing parenthesis start at field 3 (state).
    s.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(7))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A fresh anonymous private rw mapping of the host, with transparent huge
/// pages refused (MADV_NOHUGEPAGE) so that it faults 4 KiB at a time as
/// lmm does; unmapped on drop.
struct HostAnon {
    ptr: *mut u8,
    len: usize,
}

impl HostAnon {
    fn new(len: u64) -> Result<HostAnon, String> {
        use rustix::mm::{madvise, mmap_anonymous, Advice, MapFlags, ProtFlags};
        let len = usize::try_from(len).map_err(|_| "size too large for the host".to_string())?;
        // SAFETY: a fresh mapping chosen by the kernel; only this value
        // uses it, within its `len` bytes, until drop unmaps it.
        let ptr = unsafe {
            mmap_anonymous(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE,
            )
        }
        .map_err(|e| format!("host mmap of {len} bytes: {e}"))?;
        let map = HostAnon {
            ptr: ptr.cast(),
            len,
        };
        // SAFETY: advice on the mapping just made; it changes no contents.
        // A kernel without THP refuses it, which leaves 4 KiB faults anyway.
        let _ = unsafe { madvise(ptr, len, Advice::LinuxNoHugepage) };
        Ok(map)
    }

    /// Writes one byte to each 4 KiB page, in order.
    fn write_each_page(&self) {
        for off in (0..self.len).step_by(4096) {
            // SAFETY: `off` is inside the mapping, which is readable and
            // writable and referenced by nothing else.
            unsafe { self.ptr.add(off).write_volatile(1) };
        }
    }
}

impl Drop for HostAnon {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, no longer referenced.
        let _ = unsafe { rustix::mm::munmap(self.ptr.cast(), self.len) };
    }
}

/// What `fault` measured, for its callers and tests.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(test), allow(dead_code))]
pub struct FaultResult {
    /// Pages written per round.
    pub pages: u64,
    /// Minor faults lmm's process took in each round (all rounds equal).
    pub lmm_faults: u64,
    /// The host's minor faults in its best round (this process's minflt,
    /// so other threads' faults count too).
    pub host_faults: u64,
    /// Best lmm and host rates, faults per second.
    pub lmm_rate: f64,
    /// See `lmm_rate`.
    pub host_rate: f64,
}

/// `lmm bench fault`: demand-zero faults, one 1-byte write to each 4 KiB
/// page of `size` of fresh anonymous memory, on a process of the machine
/// (through the MMU and the fault handler) and, round by round in the same
/// run, by this process on the host (real kernel faults). `rounds` >= 2:
/// the first is reported apart, since lmm's first touch of its RAM also
/// takes the host's faults on the MAP_NORESERVE pages behind it.
pub fn fault(
    config: &MachineConfig,
    size: u64,
    rounds: usize,
    out: &mut dyn std::io::Write,
) -> Result<FaultResult, String> {
    use mm::mmap::{MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE};
    if size == 0 || !size.is_multiple_of(4096) || rounds < 2 {
        return Err("bench fault: size must be a non-zero multiple of 4 KiB, rounds >= 2".into());
    }
    let config = bench_config(config, size);
    let mut m = Machine::boot(config.clone()).map_err(|e| e.to_string())?;
    let pid = m.spawn("bench").map_err(|e| format!("spawn: {e}"))?;
    let pages = size / 4096;
    let label = size_label(size);
    let minflt = |m: &Machine| m.process(pid).map_or(0, |p| p.flt.minor);
    let mut lmm_ns = Vec::new();
    let mut host_ns = Vec::new();
    let mut host_faults = Vec::new();
    let mut lmm_faults = 0;
    for _ in 0..rounds {
        let va = m
            .sys_mmap(
                pid,
                0,
                size,
                PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS,
                None,
                0,
            )
            .map_err(|e| format!("lmm mmap of {label}: {e}"))?;
        let f0 = minflt(&m);
        let t = Instant::now();
        for i in 0..pages {
            m.store(pid, va + i * 4096, &[1])
                .map_err(|f| format!("lmm store at {:#x}: {f:?}", va + i * 4096))?;
        }
        lmm_ns.push(t.elapsed().as_nanos() as f64);
        let faults = minflt(&m) - f0;
        if faults != pages {
            return Err(format!(
                "lmm took {faults} faults writing {pages} fresh pages"
            ));
        }
        lmm_faults = faults;
        // A check that the writes landed: the last page reads back.
        let last = m
            .load(pid, va + size - 4096, 1)
            .map_err(|f| format!("lmm load: {f:?}"))?;
        if last != [1] {
            return Err("lmm: a written byte did not read back".into());
        }
        m.sys_munmap(pid, va, size)
            .map_err(|e| format!("lmm munmap: {e}"))?;

        let host = HostAnon::new(size)?;
        let f0 = host_minflt();
        let t = Instant::now();
        host.write_each_page();
        host_ns.push(t.elapsed().as_nanos() as f64);
        host_faults.push(host_minflt().saturating_sub(f0));
        drop(host);
    }
    let rate = |ns: f64| pages as f64 / (ns / 1e9);
    let best = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let (lmm_best, host_best) = (best(&lmm_ns[1..]), best(&host_ns[1..]));
    let host_best_round = 1 + host_ns[1..]
        .iter()
        .position(|&n| n == host_best)
        .unwrap_or(0);
    say!(
        out,
        "fault: demand-zero page faults, a 1-byte write to each 4 KiB page of {label} of fresh anonymous private rw memory ({pages} pages), faults/s"
    );
    say!(
        out,
        "  lmm:  Machine::store by a process of an {} machine with {} RAM, page after page: the MMU's walk finds no PTE, handle_mm_fault allocates, zeroes and maps a page, the store is retried and lands",
        config.arch.name(),
        size_label(config.ram)
    );
    say!(
        out,
        "  host: this process writes the same bytes to a fresh mmap of its own (MADV_NOHUGEPAGE, no MAP_POPULATE): real kernel page faults"
    );
    say!(
        out,
        "{:<36} {:>12} {:>12} {:>8}",
        "case",
        "lmm/s",
        "host/s",
        "ratio"
    );
    let mut row = |case: &str, ours: f64, theirs: f64| -> Result<(), String> {
        say!(
            out,
            "{case:<36} {:>12.0} {:>12.0} {:>7.2}x",
            rate(ours),
            rate(theirs),
            theirs / ours
        );
        Ok(())
    };
    row(
        "round 1 (lmm's RAM cold on the host)",
        lmm_ns[0],
        host_ns[0],
    )?;
    row(&format!("best of rounds 2-{rounds}"), lmm_best, host_best)?;
    say!(
        out,
        "faults counted: lmm {lmm_faults} per round ({pages} pages written), host {} in its best round (this process's minflt)",
        host_faults[host_best_round]
    );
    let ratio = host_best / lmm_best;
    say!(
        out,
        "(ratio = lmm rate / host rate: above 1 means lmm is faster; target >= 4x: {})",
        if ratio >= 4.0 { "met" } else { "not met" }
    );
    Ok(FaultResult {
        pages,
        lmm_faults,
        host_faults: host_faults[host_best_round],
        lmm_rate: rate(lmm_best),
        host_rate: rate(host_best),
    })
}

/// What `fork` measured: best times of the fork call, in seconds.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(test), allow(dead_code))]
pub struct ForkResult {
    /// Pages resident in the forked process.
    pub pages: u64,
    /// lmm's `Machine::fork`.
    pub lmm_secs: f64,
    /// The host's fork(2).
    pub host_secs: f64,
}

/// `lmm bench fork`: the time of fork alone for a process with `size` of
/// anonymous memory resident, best of `rounds`: first this process on the
/// host (fork(2); the child `_exit`s at once and is reaped), then a
/// process of the machine (`Machine::fork`; the child exits and is
/// reaped). The host goes first, before the machine boots, so that the
/// host's fork copies only this process's own `size` and not lmm's RAM.
pub fn fork(
    config: &MachineConfig,
    size: u64,
    rounds: usize,
    out: &mut dyn std::io::Write,
) -> Result<ForkResult, String> {
    use machine::mmu::Access;
    use mm::mmap::{MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE};
    if size == 0 || !size.is_multiple_of(4096) || rounds == 0 {
        return Err("bench fork: size must be a non-zero multiple of 4 KiB, rounds >= 1".into());
    }
    let pages = size / 4096;
    let label = size_label(size);

    let host = HostAnon::new(size)?;
    host.write_each_page();
    let mut host_secs = f64::INFINITY;
    for _ in 0..rounds {
        let t = Instant::now();
        // SAFETY: the child calls only `_exit`, which is async-signal-safe,
        // so forking this (possibly multi-threaded) process is sound.
        let child = unsafe { libc::fork() };
        if child == 0 {
            // SAFETY: ends the child at once, running no destructor.
            unsafe { libc::_exit(0) };
        }
        let dt = t.elapsed().as_secs_f64();
        if child < 0 {
            return Err(format!("host fork: {}", std::io::Error::last_os_error()));
        }
        let mut status = 0;
        // SAFETY: waits for the child just made; `status` is a valid int.
        let r = unsafe { libc::waitpid(child, &mut status, 0) };
        if r != child || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
            return Err(format!("host fork: the child ended badly ({status:#x})"));
        }
        host_secs = host_secs.min(dt);
    }
    drop(host);

    let config = bench_config(config, size);
    let mut m = Machine::boot(config.clone()).map_err(|e| e.to_string())?;
    let pid = m.spawn("bench").map_err(|e| format!("spawn: {e}"))?;
    let va = m
        .sys_mmap(
            pid,
            0,
            size,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS,
            None,
            0,
        )
        .map_err(|e| format!("lmm mmap of {label}: {e}"))?;
    m.touch(pid, va, size, Access::Write)
        .map_err(|f| format!("lmm touch: {f:?}"))?;
    let mut lmm_secs = f64::INFINITY;
    let mut exit_secs = f64::INFINITY;
    for _ in 0..rounds {
        let t = Instant::now();
        let child = m.fork(pid).map_err(|e| format!("lmm fork: {e}"))?;
        lmm_secs = lmm_secs.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        m.exit(child).map_err(|e| format!("lmm exit: {e}"))?;
        m.wait(pid, child as i64)
            .map_err(|e| format!("lmm wait: {e}"))?;
        exit_secs = exit_secs.min(t.elapsed().as_secs_f64());
    }
    say!(
        out,
        "fork: fork(2) of a process with {label} of anonymous private memory resident ({pages} pages written), ms for the fork call alone (best of {rounds})"
    );
    say!(
        out,
        "  lmm:  Machine::fork of a process of an {} machine with {} RAM: dup_mmap, copy_page_range write-protects and copies {pages} PTEs; then the child exits and is reaped, untimed",
        config.arch.name(),
        size_label(config.ram)
    );
    say!(
        out,
        "  host: fork() of this process with {label} resident (MADV_NOHUGEPAGE; lmm's machine not yet booted); the child _exit(0)s at once and is reaped, untimed"
    );
    say!(
        out,
        "{:<36} {:>12} {:>12} {:>8}",
        "case",
        "lmm ms",
        "host ms",
        "ratio"
    );
    say!(
        out,
        "{:<36} {:>12.3} {:>12.3} {:>7.2}x",
        format!("fork, {label} resident"),
        lmm_secs * 1e3,
        host_secs * 1e3,
        host_secs / lmm_secs
    );
    say!(
        out,
        "lmm child's exit+wait (zap of {pages} PTEs, its tables freed): {:.3} ms",
        exit_secs * 1e3
    );
    let ratio = host_secs / lmm_secs;
    say!(
        out,
        "(ratio = host time / lmm time: above 1 means lmm is faster; target >= 4x: {})",
        if ratio >= 4.0 { "met" } else { "not met" }
    );
    Ok(ForkResult {
        pages,
        lmm_secs,
        host_secs,
    })
}

/// `lmm bench reclaim`: reclaim and swap under pressure, and the lackey
/// replay with the whole model, each against a host reference measured in
/// the same run.
///
/// - Pressure: a process writes three times the RAM of a 64 MiB machine
///   with swap (every page tagged), then reads it all back: pages
///   reclaimed per second, and swap-out/swap-in round trips per second
///   against the host's own rate of writing and reading back the same
///   number of 4 KiB pages to a file (pwrite/pread; the host's swap is
///   not used, since turning it on would disturb the machine we run on).
/// - Replay: a valgrind lackey trace replayed through the MMU and the
///   fault handler, in page references per second, against a plain pass
///   over the same references (a HashSet of pages, what a cache simulator
///   with no memory model does).
fn reclaim(config: &MachineConfig) -> Result<(), String> {
    use mm::mmap::{MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE};
    use mm::vmstat::VmEvent;
    use std::os::unix::fs::FileExt;
    let quick = std::env::var_os("LMM_BENCH_QUICK").is_some();
    let mut c = config.clone();
    c.ram = 64 << 20;
    c.swap = Some(machine::swapfile::SwapSpec::Make(256 << 20));
    let mut m = Machine::boot(c).map_err(|e| e.to_string())?;
    let pid = m.spawn("bench").map_err(|e| format!("spawn: {e}"))?;
    let pages = if quick {
        2 * m.pa().totalram_pages()
    } else {
        3 * m.pa().totalram_pages()
    };
    let va = m
        .sys_mmap(
            pid,
            0,
            pages * 4096,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS,
            None,
            0,
        )
        .map_err(|e| format!("mmap: {e}"))?;
    let t = Instant::now();
    for i in 0..pages {
        m.store(pid, va + i * 4096, &i.to_le_bytes())
            .map_err(|f| format!("store: {f:?}"))?;
    }
    for i in 0..pages {
        let b = m
            .load(pid, va + i * 4096, 8)
            .map_err(|f| format!("load: {f:?}"))?;
        if b != i.to_le_bytes() {
            return Err(format!("page {i} came back wrong"));
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let ev = |e| m.pa().events.get(e) as f64;
    let stolen = ev(VmEvent::PgstealKswapd) + ev(VmEvent::PgstealDirect);
    let (outs, ins) = (ev(VmEvent::Pswpout), ev(VmEvent::Pswpin));
    let trips = outs.min(ins);
    // The host: the same number of pages written to a file, then read.
    let path = std::env::temp_dir().join(format!("lmm-bench-{}.dat", std::process::id()));
    let f = std::fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let _ = std::fs::remove_file(&path);
    let n = trips.max(1.0) as u64;
    let mut buf = [7u8; 4096];
    let t = Instant::now();
    for i in 0..n {
        f.write_all_at(&buf, i * 4096).map_err(|e| e.to_string())?;
    }
    for i in 0..n {
        f.read_exact_at(&mut buf, i * 4096)
            .map_err(|e| e.to_string())?;
    }
    let host = n as f64 / t.elapsed().as_secs_f64();
    println!(
        "reclaim: {pages} pages written and read back on 64 MiB with swap: {:.0} pages reclaimed/s, {:.0} swap round trips/s ({outs} out, {ins} in); host file write+read {host:.0} pages/s; ratio {:.2}",
        stolen / secs,
        trips / secs,
        trips / secs / host
    );
    // The lackey replay with the whole model.
    let trace = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/lackey/true.lk.gz"
    );
    let opts = workload::lackey::Options::default();
    let mut target = workload::lackey::MachineLackey::boot(config.clone())?;
    let input = workload::lackey::open(std::path::Path::new(trace)).map_err(|e| e.to_string())?;
    let t = Instant::now();
    let sum =
        workload::lackey::replay(input, trace, &mut target, &opts).map_err(|e| e.to_string())?;
    let lmm_secs = t.elapsed().as_secs_f64();
    let refs = sum.page_touches as f64;
    // The reference: the same page references, counted into a set.
    let input = workload::lackey::open(std::path::Path::new(trace)).map_err(|e| e.to_string())?;
    let t = Instant::now();
    let mut set = std::collections::HashSet::new();
    for rec in workload::lackey::Reader::new(input, trace) {
        let rec = rec.map_err(|e| e.to_string())?;
        for _ in rec.kind.accesses() {
            for vpn in rec.addr.0 >> 12..=rec.last().0 >> 12 {
                set.insert(vpn);
            }
        }
    }
    let distinct = black_box(set.len());
    let set_secs = t.elapsed().as_secs_f64();
    println!(
        "lackey replay (true.lk.gz, {refs} page references, {distinct} pages): lmm {:.2}M refs/s; a page set over the same trace {:.2}M refs/s; ratio {:.2}",
        refs / lmm_secs / 1e6,
        refs / set_secs / 1e6,
        set_secs / lmm_secs
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The numbers of a table row: the case, two values and `N.NNx`.
    fn row_numbers(line: &str) -> (f64, f64, f64) {
        let t: Vec<&str> = line.split_whitespace().collect();
        assert!(t.len() >= 4, "short row {line:?}");
        let n = t.len();
        let num = |s: &str| {
            s.parse::<f64>()
                .unwrap_or_else(|_| panic!("{s:?} in {line:?} is not a number"))
        };
        let ratio = t[n - 1]
            .strip_suffix('x')
            .unwrap_or_else(|| panic!("no ratio at the end of {line:?}"));
        (num(t[n - 3]), num(t[n - 2]), num(ratio))
    }

    /// Both benches in a quick mode (16 MiB): the report's shape, and
    /// lmm's faults equal to the pages written.
    #[test]
    fn fault_and_fork_quick() {
        let config = MachineConfig {
            ram: 64 << 20,
            ..Default::default()
        };
        let size = 16 << 20;
        let pages = size / 4096;

        let mut out = Vec::new();
        let r = fault(&config, size, 2, &mut out).expect("bench fault");
        assert_eq!(r.pages, pages);
        assert_eq!(r.lmm_faults, pages);
        assert!(r.lmm_rate > 0.0 && r.host_rate > 0.0);
        assert!(r.host_faults > 0, "the host's writes took no fault");
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 8, "{text}");
        assert!(lines[0].starts_with("fault: demand-zero page faults"));
        assert!(lines[0].contains("16 MiB") && lines[0].contains("(4096 pages)"));
        assert!(lines[1].starts_with("  lmm:  Machine::store"));
        assert!(lines[1].contains("x86_64 machine with 96 MiB RAM"));
        assert!(lines[2].starts_with("  host: "));
        assert!(lines[3].starts_with("case") && lines[3].ends_with("ratio"));
        assert!(lines[4].starts_with("round 1 "));
        assert!(lines[5].starts_with("best of rounds 2-2 "));
        for l in &lines[4..6] {
            let (ours, theirs, ratio) = row_numbers(l);
            assert!(ours > 0.0 && theirs > 0.0 && ratio > 0.0, "{l}");
        }
        assert!(
            lines[6].starts_with("faults counted: lmm 4096 per round (4096 pages written), host "),
            "{}",
            lines[6]
        );
        assert!(lines[7].starts_with("(ratio = lmm rate / host rate"));
        assert!(lines[7].ends_with(": met)") || lines[7].ends_with(": not met)"));

        let mut out = Vec::new();
        let r = fork(&config, size, 2, &mut out).expect("bench fork");
        assert_eq!(r.pages, pages);
        assert!(r.lmm_secs > 0.0 && r.host_secs > 0.0);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 7, "{text}");
        assert!(lines[0].starts_with("fork: fork(2) of a process with 16 MiB"));
        assert!(lines[0].contains("(4096 pages written)") && lines[0].ends_with("(best of 2)"));
        assert!(lines[1].starts_with("  lmm:  Machine::fork"));
        assert!(lines[1].contains("copies 4096 PTEs"));
        assert!(lines[2].starts_with("  host: fork() of this process with 16 MiB resident"));
        assert!(lines[3].starts_with("case") && lines[3].ends_with("ratio"));
        assert!(lines[4].starts_with("fork, 16 MiB resident "));
        let (ours, theirs, ratio) = row_numbers(lines[4]);
        assert!(ours > 0.0 && theirs > 0.0 && ratio > 0.0);
        assert!(lines[5].starts_with("lmm child's exit+wait (zap of 4096 PTEs"));
        assert!(lines[6].starts_with("(ratio = host time / lmm time"));
    }

    #[test]
    fn bad_sizes_are_errors() {
        let config = MachineConfig::default();
        let mut out = Vec::new();
        assert!(fault(&config, 4097, 2, &mut out).is_err());
        assert!(fault(&config, 4096, 1, &mut out).is_err());
        assert!(fork(&config, 0, 1, &mut out).is_err());
        assert!(out.is_empty());
    }
}
