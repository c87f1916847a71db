//! The floor of `lmm native`'s technique on this host: what a ptrace stop,
//! a mirror's mmap and a RAM page's first touch cost with no lmm work at
//! all, made as `lmm native` makes them (pinned to one CPU; a stop through
//! a stub's trampoline, a mirror's mmap timed in lmm's own process). `lmm bench native` prices each program's stops, mirrors and
//! faults with them, so the time lmm itself adds can be told apart from what
//! the technique costs on the machine.
//!
//! [`measure_systrap`] measures the floor of the design that would come
//! next, gVisor's systrap (not built): no ptrace stop, but a signal to a
//! handler of the stub's own and a futex round trip to lmm on the same CPU
//! for each fault or system call.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::affinity::Pin;
use crate::ptrace::Stub;

/// The three costs, each per event.
#[derive(Clone, Copy, Debug)]
pub struct Floor {
    /// A ptrace stop and its resume: an injected `getpid` through the
    /// trampoline, which is one stop at its `int3` with the registers
    /// read and written as lmm does.
    pub stop: Duration,
    /// A mirror: `mmap(MAP_SHARED|MAP_FIXED|MAP_POPULATE)` of one page of
    /// the RAM memfd, beyond the stop that carries it: the same call made
    /// in lmm's own process, timed directly (as the difference of two
    /// batches of ptrace round trips, noise could make it zero).
    pub mirror: Duration,
    /// The host's first touch of a page of the RAM memfd (shmem allocating
    /// and clearing it), which lmm pays for each frame it uses first.
    pub first_touch: Duration,
}

/// Pages of the memfd the measurement uses (16 MiB).
const PAGES: u64 = 4096;

/// Measures the floor with `rounds` events of each kind (at most
/// `PAGES` first touches): the cheapest batch's mean for the stop and
/// the mirror, the mean for first touches.
pub fn measure(rounds: u32) -> Result<Floor, String> {
    let rounds = rounds.max(1);
    let _pin = Pin::here();
    let err = |what: &str, e: std::io::Error| format!("lmm bench native: {what}: {e}");
    // SAFETY: a NUL-terminated name and valid flags.
    let raw = unsafe { libc::memfd_create(c"lmm-floor".as_ptr(), libc::MFD_CLOEXEC) };
    if raw < 0 {
        return Err(err("memfd_create", std::io::Error::last_os_error()));
    }
    // SAFETY: a new descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let len = PAGES * 4096;
    // SAFETY: the descriptor is valid; the length fits an off_t.
    if unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) } != 0 {
        return Err(err("ftruncate", std::io::Error::last_os_error()));
    }
    let first_touch =
        touch_each_page(&fd, len, rounds.min(PAGES as u32)).map_err(|e| err("mmap", e))?;

    let mut stub = Stub::spawn(fd.as_raw_fd()).map_err(|e| err("stub", e))?;
    let stop = cheapest_batch(rounds, |_| {
        stub.syscall(libc::SYS_getpid, [0; 6])
            .map(|_| ())
            .map_err(|e| err("getpid", e))
    })?;
    let mirror = mmap_each_page(&fd, rounds).map_err(|e| err("mmap", e))?;
    Ok(Floor {
        stop,
        mirror,
        first_touch,
    })
}

/// The floor of gVisor's systrap design on this host, each per event.
#[derive(Clone, Copy, Debug)]
pub struct Systrap {
    /// A page fault delivered as SIGSEGV to a handler of the process's
    /// own that makes the page accessible, and the return to the
    /// faulting instruction (the handler's two mprotects not counted).
    pub signal: Duration,
    /// A futex round trip between two processes on one CPU: the stub
    /// waking lmm and sleeping until lmm wakes it back.
    pub futex: Duration,
    /// A round trip between two processes on two CPUs, each spinning on
    /// a shared word (no system call), as systrap's lmm side spins before
    /// it sleeps; `None` on a host with one CPU for lmm.
    pub spin: Option<Duration>,
}

impl Systrap {
    /// What one stop would cost: the signal and the cheaper round trip.
    pub fn stop(&self) -> Duration {
        self.signal + self.spin.map_or(self.futex, |s| s.min(self.futex))
    }
}

/// The page the child of [`measure_systrap`] faults on, for its handler.
static FAULT_PAGE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The SIGSEGV handler of [`measure_systrap`]'s child: the page is made
/// accessible, so the faulting store runs again and succeeds.
extern "C" fn unprotect(_sig: libc::c_int) {
    let page = FAULT_PAGE.load(std::sync::atomic::Ordering::Relaxed);
    // SAFETY: mprotect of the page the child mapped; async-signal-safe.
    unsafe {
        libc::mprotect(
            page as *mut libc::c_void,
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
        )
    };
}

/// Measures [`Systrap`] with `rounds` events of each kind in a child
/// process (forked, pinned to this CPU, running raw system calls only),
/// the cheapest batch's mean of each.
pub fn measure_systrap(rounds: u32) -> Result<Systrap, String> {
    use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
    let rounds = rounds.max(1);
    let pin = Pin::here();
    let another = pin.as_ref().and_then(Pin::another);
    let err = |what: &str| {
        format!(
            "lmm bench native: systrap floor: {what}: {}",
            std::io::Error::last_os_error()
        )
    };
    let map = |flags| {
        // SAFETY: a fresh anonymous mapping the kernel places.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                flags | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        (p != libc::MAP_FAILED).then_some(p)
    };
    // The futex word, then the child's signal cost in ns.
    let shared = map(libc::MAP_SHARED).ok_or_else(|| err("mmap"))?;
    let page = map(libc::MAP_PRIVATE).ok_or_else(|| err("mmap"))?;
    FAULT_PAGE.store(page as usize, SeqCst);
    // SAFETY: the shared page is mapped, page-aligned and zeroed; both
    // words are only ever accessed atomically, by this process and the
    // child, until it is unmapped below.
    let (word, signal_ns) = unsafe {
        (
            &*(shared as *const AtomicU32),
            &*((shared as *const u8).add(8) as *const AtomicU64),
        )
    };
    let futex = |op: i32, val: u32| {
        // SAFETY: a futex call on the shared word, which stays mapped.
        unsafe {
            libc::syscall(libc::SYS_futex, word as *const AtomicU32, op, val, 0, 0, 0);
        }
    };
    // SAFETY: fork; the child runs only raw system calls and atomics
    // (nothing that allocates or locks) and leaves with _exit.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(err("fork"));
    }
    if child == 0 {
        // SAFETY: a zeroed sigaction with a plain handler.
        let ok = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = unprotect as extern "C" fn(libc::c_int) as usize;
            libc::sigaction(libc::SIGSEGV, &sa, std::ptr::null_mut()) == 0
        };
        let p = page.cast::<u8>();
        let protect = |prot| {
            // SAFETY: mprotect of the child's own page.
            unsafe { libc::mprotect(page, 4096, prot) };
        };
        let faulting = cheapest_batch(rounds, |_| {
            protect(libc::PROT_NONE);
            // SAFETY: the page is mapped; the store faults and the
            // handler makes it writable, then it runs again.
            unsafe { p.write_volatile(1) };
            Ok(())
        });
        let plain = cheapest_batch(rounds, |_| {
            protect(libc::PROT_NONE);
            protect(libc::PROT_READ | libc::PROT_WRITE);
            Ok(())
        });
        if let (true, Ok(f), Ok(m)) = (ok, faulting, plain) {
            signal_ns.store(f.saturating_sub(m).as_nanos() as u64, SeqCst);
        }
        // The futex round trips: wait for 1, answer 0.
        for _ in 0..rounds {
            while word.load(SeqCst) != 1 {
                futex(libc::FUTEX_WAIT, 0);
            }
            word.store(0, SeqCst);
            futex(libc::FUTEX_WAKE, 1);
        }
        // On another CPU, spinning: wait for 3, answer 2; the parent
        // says 4 when it is done.
        if let Some(mask) = &another {
            if crate::affinity::set(mask).is_ok() {
                word.store(2, SeqCst);
                loop {
                    match word.load(SeqCst) {
                        3 => word.store(2, SeqCst),
                        4 => break,
                        _ => std::hint::spin_loop(),
                    }
                }
            }
        }
        // SAFETY: the child ends here, running no destructor.
        unsafe { libc::_exit(0) };
    }
    let round_trip = cheapest_batch(rounds, |_| {
        word.store(1, SeqCst);
        futex(libc::FUTEX_WAKE, 1);
        while word.load(SeqCst) != 0 {
            futex(libc::FUTEX_WAIT, 1);
        }
        Ok(())
    });
    // The child says 2 once it spins on the other CPU (given a second).
    let spin = match &another {
        Some(_) => {
            let give_up = Instant::now() + Duration::from_secs(1);
            while word.load(SeqCst) != 2 && Instant::now() < give_up {
                std::thread::yield_now();
            }
            let spun = (word.load(SeqCst) == 2).then(|| {
                cheapest_batch(rounds, |_| {
                    word.store(3, SeqCst);
                    while word.load(SeqCst) != 2 {
                        std::hint::spin_loop();
                    }
                    Ok(())
                })
            });
            word.store(4, SeqCst);
            spun.transpose()?
        }
        None => None,
    };
    let mut status = 0;
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(child, &mut status, 0) };
    let signal = Duration::from_nanos(signal_ns.load(SeqCst));
    // SAFETY: both mappings made above, unmapped once; the child is gone.
    unsafe {
        libc::munmap(shared, 4096);
        libc::munmap(page, 4096);
    }
    if signal.is_zero() {
        return Err("lmm bench native: systrap floor: the child measured no signal".into());
    }
    Ok(Systrap {
        signal,
        futex: round_trip?,
        spin,
    })
}

/// Events per batch of [`cheapest_batch`].
const BATCH: u32 = 50;

/// Runs `event(i)` for i in `0..rounds`, in batches of [`BATCH`], and
/// returns the mean time per event of the cheapest batch: a floor, so the
/// least disturbed by whatever else the host runs meanwhile.
fn cheapest_batch(
    rounds: u32,
    mut event: impl FnMut(u64) -> Result<(), String>,
) -> Result<Duration, String> {
    let mut best = Duration::MAX;
    let mut i = 0u64;
    while i < u64::from(rounds) {
        let n = BATCH.min(rounds - i as u32);
        let t = Instant::now();
        for k in 0..u64::from(n) {
            event(i + k)?;
        }
        best = best.min(t.elapsed() / n);
        i += u64::from(n);
    }
    Ok(best)
}

/// The cheapest batch's mean of `rounds` mirrors' mmaps of scattered
/// pages of the populated memfd `fd`, made here at every other page of a
/// free range (as a program's mirrors are: no two merge into one VMA), as
/// the stub makes them; the range is unmapped after.
fn mmap_each_page(fd: &OwnedFd, rounds: u32) -> std::io::Result<Duration> {
    let len = 2 * 4096 * u64::from(rounds);
    // SAFETY: reserves a range the kernel picks, unmapped at once: only
    // its address is used, for the fixed mappings below.
    let base = unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            len as usize,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        libc::munmap(p, len as usize);
        p as u64
    };
    let r = cheapest_batch(rounds, |i| {
        // SAFETY: a fixed mapping inside the range reserved above, which
        // nothing else uses; unmapped below.
        let p = unsafe {
            libc::mmap(
                (base + i * 8192) as *mut libc::c_void,
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_FIXED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                ((i * 7919 % PAGES) * 4096) as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(format!("mmap: {}", std::io::Error::last_os_error()));
        }
        Ok(())
    });
    // SAFETY: unmaps only the range reserved above.
    unsafe { libc::munmap(base as *mut libc::c_void, len as usize) };
    r.map_err(std::io::Error::other)
}

/// Maps the fresh memfd `fd` here and writes the first byte of `n` of its
/// pages: the cost per page. The memfd is left populated (as lmm's frames
/// are when a mirror maps them).
fn touch_each_page(fd: &OwnedFd, len: u64, n: u32) -> std::io::Result<Duration> {
    // SAFETY: a new shared mapping of the whole memfd at an address the
    // kernel picks; it aliases no Rust object and is unmapped below.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    let p = p.cast::<u8>();
    let t = Instant::now();
    for i in 0..u64::from(n) {
        // SAFETY: page i lies inside the mapping made above.
        unsafe { p.add((i * 4096) as usize).write_volatile(1) };
    }
    let d = t.elapsed() / n.max(1);
    for i in u64::from(n)..PAGES {
        // SAFETY: as above; the rest is populated untimed.
        unsafe { p.add((i * 4096) as usize).write_volatile(1) };
    }
    // SAFETY: the mapping made above, unmapped once.
    unsafe { libc::munmap(p.cast(), len as usize) };
    Ok(d)
}

#[cfg(test)]
mod tests {
    /// Each cost is measured and the stub's mmaps succeed (needs root for
    /// ptrace and the trampoline below mmap_min_addr; skipped visibly
    /// otherwise).
    #[test]
    fn the_floor_is_measured() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIPPED: the floor needs root (ptrace)");
            return;
        }
        let f = super::measure(50).unwrap();
        assert!(f.stop > std::time::Duration::ZERO);
        assert!(f.first_touch > std::time::Duration::ZERO);
        let s = super::measure_systrap(50).unwrap();
        assert!(s.signal > std::time::Duration::ZERO);
        assert!(s.futex > std::time::Duration::ZERO);
    }
}
