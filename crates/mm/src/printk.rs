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
