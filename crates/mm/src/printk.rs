//! The kernel log (`printk` and the ring buffer `dmesg` reads). Lines carry
//! a timestamp in nanoseconds of simulated time, which the machine advances;
//! boot lines are stamped 0, so a log is the same bytes on every run.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A kernel log buffer.
#[derive(Default)]
pub struct Printk {
    lines: spin::Mutex<Vec<(u64, String)>>,
    clock_ns: AtomicU64,
}

impl Printk {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }
    /// Appends a line at the current simulated time.
    pub fn log(&self, line: String) {
        let t = self.clock_ns.load(Relaxed);
        self.lines.lock().push((t, line));
    }
    /// Advances simulated time.
    pub fn advance(&self, ns: u64) {
        self.clock_ns.fetch_add(ns, Relaxed);
    }
    /// Number of lines logged.
    pub fn len(&self) -> usize {
        self.lines.lock().len()
    }
    /// True if nothing was logged.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The lines without timestamps.
    pub fn messages(&self) -> Vec<String> {
        self.lines.lock().iter().map(|(_, l)| l.clone()).collect()
    }
    /// The log as `dmesg` prints it: `[%5lu.%06lu] message`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (t, l) in self.lines.lock().iter() {
            let _ = writeln!(
                out,
                "[{:5}.{:06}] {}",
                t / 1_000_000_000,
                (t / 1000) % 1_000_000,
                l
            );
        }
        out
    }
}

/// The key `%p` hashes kernel pointers with (lib/vsprintf.c `ptr_key`):
/// random at each boot in Linux, drawn from the machine's seed here so a
/// run prints the same bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PtrKey(pub u64, pub u64);

impl PtrKey {
    /// A key derived from `seed` (two rounds of splitmix64).
    pub fn from_seed(seed: u64) -> PtrKey {
        let mix = |mut z: u64| {
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let a = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        PtrKey(mix(a), mix(a.wrapping_add(0x9e37_79b9_7f4a_7c15)))
    }

    /// What `%p` prints for a pointer of `ptr_size` bytes
    /// (`ptr_to_hashval`): SipHash-2-4 of the pointer under the key (of its
    /// 8 bytes on a 64-bit kernel, 4 on a 32-bit one), only the low 32 bits
    /// kept "to make explicit that the address was modified".
    pub fn hash(&self, ptr: u64, ptr_size: u64) -> u64 {
        use core::hash::Hasher;
        let mut h = siphasher::sip::SipHasher24::new_with_keys(self.0, self.1);
        if ptr_size == 4 {
            h.write(&(ptr as u32).to_le_bytes());
        } else {
            h.write(&ptr.to_le_bytes());
        }
        h.finish() & 0xffff_ffff
    }
}

/// `printk!(log, "fmt", args...)`: formats and appends a line.
#[macro_export]
macro_rules! printk {
    ($log:expr, $($arg:tt)*) => {
        $log.log($crate::__private::format!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_hash_with_siphash_2_4_to_32_bits() {
        // SipHash-2-4 reference vector (Aumasson and Bernstein, appendix
        // A): key 00 01 .. 0f, message 00 01 .. 07 gives
        // 0x93f5f5799a932462; %p keeps its low 32 bits.
        let key = PtrKey(0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908);
        assert_eq!(key.hash(0x0706_0504_0302_0100, 8), 0x9a93_2462);
        // And message 00 01 02 03 gives 0xcf2794e0277187b7.
        assert_eq!(key.hash(0x0302_0100, 4), 0x2771_87b7);
        // Same pointer, same hash; the seed decides the key.
        let k = PtrKey::from_seed(1);
        assert_eq!(
            k.hash(0xffff_c900_0000_0000, 8),
            k.hash(0xffff_c900_0000_0000, 8)
        );
        assert_ne!(k, PtrKey::from_seed(2));
    }

    #[test]
    fn renders_like_dmesg() {
        let p = Printk::new();
        printk!(p, "Zone ranges:");
        p.advance(1_500_000);
        printk!(p, "x {}", 1);
        assert_eq!(
            p.render(),
            "[    0.000000] Zone ranges:\n[    0.001500] x 1\n"
        );
        assert_eq!(p.len(), 2);
    }
}
