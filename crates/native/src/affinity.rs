//! CPU placement of the tracer and its stubs. Every fault and system call
//! of the program is a ptrace stop: the stub sleeps and lmm wakes, then
//! the other way round. When the two sit on different CPUs, each hand-over
//! is a cross-CPU wake-up (an inter-processor interrupt, costly on a
//! virtual machine); on one CPU it is a plain context switch. So `lmm
//! native` pins itself to the CPU it is running on while the program runs,
//! and the stubs it forks inherit that (gVisor's ptrace platform binds its
//! tracer and stub threads together for the same reason).
//!
//! The program must not see this: `sched_getaffinity` is answered by lmm
//! with the mask lmm had before it pinned itself, as the program would
//! have seen it running plainly on the host.

use std::io;

/// The bytes of the largest CPU mask asked for (8192 CPUs, the kernel's
/// `NR_CPUS` maximum on x86-64).
const MAX_MASK: usize = 1024;

/// lmm's CPU mask before [`Pin::here`], restored when dropped.
pub struct Pin {
    /// The mask's bytes as `sched_getaffinity` returned them: its length
    /// is the kernel's `cpumask_size()`.
    saved: Vec<u8>,
    /// The shortest buffer the kernel accepts (`nr_cpu_ids` bits, in
    /// whole longs).
    min_len: u64,
    /// The CPU it pinned to.
    cpu: usize,
}

/// `sched_getaffinity(0, len)` of the calling thread: the mask's bytes
/// (`min(len, cpumask_size())` of them).
fn get_len(len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    // SAFETY: the raw system call writes at most `buf.len()` bytes into
    // `buf`, which outlives the call.
    let n = unsafe { libc::syscall(libc::SYS_sched_getaffinity, 0, buf.len(), buf.as_mut_ptr()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// The whole mask of the calling thread.
fn get() -> io::Result<Vec<u8>> {
    get_len(MAX_MASK)
}

/// `sched_setaffinity(0, mask)` of the calling thread.
pub(crate) fn set(mask: &[u8]) -> io::Result<()> {
    // SAFETY: the kernel reads `mask.len()` bytes from `mask`, which
    // outlives the call.
    let r = unsafe { libc::syscall(libc::SYS_sched_setaffinity, 0, mask.len(), mask.as_ptr()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl Pin {
    /// Pins the calling thread to the CPU it runs on; `None` (nothing
    /// changed) where the host refuses or does not say.
    pub fn here() -> Option<Pin> {
        let saved = get().ok()?;
        // SAFETY: sched_getcpu takes no arguments and touches no memory.
        let cpu = usize::try_from(unsafe { libc::sched_getcpu() }).ok()?;
        if cpu / 8 >= saved.len() {
            return None;
        }
        let mut one = vec![0u8; saved.len()];
        one[cpu / 8] = 1 << (cpu % 8);
        let long = std::mem::size_of::<libc::c_long>();
        let min_len = (long..=saved.len())
            .step_by(long)
            .find(|&l| get_len(l).is_ok())
            .unwrap_or(saved.len()) as u64;
        set(&one).ok()?;
        Some(Pin {
            saved,
            min_len,
            cpu,
        })
    }

    /// A mask of one CPU of those allowed before the pin other than the
    /// pinned one (the lowest), if there is one.
    pub fn another(&self) -> Option<Vec<u8>> {
        let other = (0..self.saved.len() * 8)
            .find(|&c| c != self.cpu && self.saved[c / 8] & (1 << (c % 8)) != 0)?;
        let mut one = vec![0u8; self.saved.len()];
        one[other / 8] = 1 << (other % 8);
        Some(one)
    }

    /// What `sched_getaffinity(pid, len, mask)` returns to the program:
    /// EINVAL (as a negative errno) for a length that is not a whole
    /// number of longs or holds fewer bits than the kernel's CPU ids,
    /// else the bytes to copy (the return value is their count), as
    /// kernel/sched/syscalls.c answers it.
    pub fn getaffinity_reply(&self, len: u64) -> Result<&[u8], i64> {
        reply(&self.saved, self.min_len, len)
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        let _ = set(&self.saved);
    }
}

/// [`Pin::getaffinity_reply`] for `mask` and the shortest length
/// accepted, `min_len`.
fn reply(mask: &[u8], min_len: u64, len: u64) -> Result<&[u8], i64> {
    let long = std::mem::size_of::<libc::c_long>() as u64;
    if !len.is_multiple_of(long) || len < min_len {
        return Err(-i64::from(libc::EINVAL));
    }
    Ok(&mask[..mask.len().min(len as usize)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reply_follows_the_kernels_length_rules() {
        // A cpumask of 16 bytes on a kernel whose CPU ids fit in 8.
        let mask = [3u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let einval = Err(-i64::from(libc::EINVAL));
        assert_eq!(reply(&mask, 8, 0), einval);
        assert_eq!(reply(&mask, 8, 4), einval);
        assert_eq!(reply(&mask, 8, 12), einval);
        assert_eq!(reply(&mask, 16, 8), einval);
        assert_eq!(reply(&mask, 8, 8), Ok(&mask[..8]));
        assert_eq!(reply(&mask, 8, 128), Ok(&mask[..]));
    }

    #[test]
    fn pinning_restricts_to_one_cpu_and_dropping_restores_the_mask() {
        let before = get().expect("sched_getaffinity");
        let Some(pin) = Pin::here() else {
            panic!("sched_setaffinity to the current CPU was refused");
        };
        assert_eq!(pin.getaffinity_reply(before.len() as u64), Ok(&before[..]));
        let pinned = get().expect("sched_getaffinity");
        let ones: u32 = pinned.iter().map(|b| b.count_ones()).sum();
        assert_eq!(ones, 1, "pinned mask {pinned:?}");
        drop(pin);
        assert_eq!(get().expect("sched_getaffinity"), before);
    }
}
