//! The floor of `lmm native`'s technique on this host: what a ptrace stop,
//! a mirror's mmap and a RAM page's first touch cost with no lmm work at
//! all, made as `lmm native` makes them (pinned to one CPU, through a stub's
//! trampoline). `lmm bench native` prices each program's stops, mirrors and
//! faults with them, so the time lmm itself adds can be told apart from what
//! the technique costs on the machine.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::affinity::Pin;
use crate::ptrace::{Stub, MEMFD_SLOT};

/// The three costs, each per event.
#[derive(Clone, Copy, Debug)]
pub struct Floor {
    /// A ptrace stop and its resume: an injected `getpid` through the
    /// trampoline, which is one stop at its `int3` with the registers
    /// read and written as lmm does.
    pub stop: Duration,
    /// A mirror: `mmap(MAP_SHARED|MAP_FIXED|MAP_POPULATE)` of one page of
    /// the RAM memfd in the stub, beyond the stop that carries it.
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
    // Scattered frames at every other page, as a program's mirrors are: no
    // two merge into one host VMA.
    let base = 0x7f00_0000_0000u64;
    let mmap = cheapest_batch(rounds, |i| {
        let r = stub
            .syscall(
                libc::SYS_mmap,
                [
                    base + i * 8192,
                    4096,
                    (libc::PROT_READ | libc::PROT_WRITE) as u64,
                    (libc::MAP_SHARED | libc::MAP_FIXED | libc::MAP_POPULATE) as u64,
                    MEMFD_SLOT as u64,
                    (i * 7919 % PAGES) * 4096,
                ],
            )
            .map_err(|e| err("mmap in the stub", e))?;
        if r < 0 {
            return Err(format!("lmm bench native: mmap in the stub: errno {}", -r));
        }
        Ok(())
    })?;
    let mirror = mmap.saturating_sub(stop);
    Ok(Floor {
        stop,
        mirror,
        first_touch,
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
    }
}
