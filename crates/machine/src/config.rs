//! The shape of a simulated machine: architecture, RAM, CPUs, NUMA nodes.

use mm::arch::Arch;
use mm::slab_common::SlabKind;

/// Smallest RAM a machine may have.
pub const MIN_RAM: u64 = 16 << 20;
/// Largest RAM a machine may have.
pub const MAX_RAM: u64 = 4 << 40;

/// A machine's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineConfig {
    /// Architecture.
    pub arch: Arch,
    /// Bytes of RAM.
    pub ram: u64,
    /// Number of CPUs.
    pub cpus: usize,
    /// Number of NUMA nodes; RAM is split evenly between them by address.
    pub nodes: u32,
    /// Node distance table (`node_distance`); default 10 local, 20 remote.
    pub distance: Option<Vec<Vec<u32>>>,
    /// Seed for anything random (AT_RANDOM bytes, scenario randomness).
    pub seed: u64,
    /// The slab allocator: SLUB (Linux 6.18's) or the classic SLAB.
    pub slab: SlabKind,
    /// x86-64 5-level paging (LA57, `--la57`): the kernel and every process
    /// use 5-level page tables and user space may reach 2^56 - 4096 on
    /// request (a hint above 128 TiB); default 4-level.
    pub la57: bool,
    /// Swap turned on at boot, if any.
    pub swap: Option<crate::swapfile::SwapSpec>,
    /// Dentry hash entries (the kernel's `dhash_entries=`); 0 sizes the
    /// table by memory, as a kernel booted without it does.
    pub dhash_entries: u64,
    /// Inode hash entries (`ihash_entries=`); 0 sizes it by memory.
    pub ihash_entries: u64,
    /// The trace buffer the machine's tracepoints write to (off unless
    /// enabled).
    pub trace: TraceSink,
    /// Who watches the boot's memmap_init (a progress bar for huge
    /// machines), if anyone.
    pub boot_progress: mm::mm_init::BootProgress,
    /// Has the host allocate RAM ahead of use on another CPU, from boot on
    /// (the struct pages boot initialises, then what the page allocator
    /// hands out next: [`crate::ram::Ram::populate_ahead`]). `lmm native`
    /// turns it on; nothing the machine computes depends on it.
    pub populate_ahead: bool,
}

/// A trace buffer shared by the machines booted from one configuration and
/// its clones (a scenario that reboots keeps one trace, its clock running
/// on); two are equal when they are the same buffer. Machines meant to be
/// traced apart need configurations with buffers of their own.
#[derive(Clone, Debug, Default)]
pub struct TraceSink(pub std::sync::Arc<mm::trace::Trace>);

impl PartialEq for TraceSink {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for TraceSink {}

impl Default for MachineConfig {
    fn default() -> Self {
        Self {
            arch: Arch::X86_64,
            ram: 4 << 30,
            cpus: 2,
            nodes: 1,
            distance: None,
            seed: 0,
            slab: SlabKind::Slub,
            la57: false,
            swap: None,
            dhash_entries: 0,
            ihash_entries: 0,
            trace: TraceSink::default(),
            boot_progress: Default::default(),
            populate_ahead: false,
        }
    }
}

/// A configuration the machine cannot have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Parses a size such as `4G`, `512M`, `16384K`, `1T` or a byte count.
pub fn parse_size(s: &str) -> Result<u64, ConfigError> {
    let s = s.trim();
    let bad = || {
        ConfigError(format!(
            "bad size {s:?}: expected a number with an optional K, M, G or T suffix"
        ))
    };
    let (num, shift) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(bad()),
            };
            (&s[..i], shift)
        }
        _ => (s, 0),
    };
    let n: u64 = num.parse().map_err(|_| bad())?;
    n.checked_shl(shift)
        .filter(|v| v >> shift == n)
        .ok_or_else(bad)
}

impl MachineConfig {
    /// Checks the configuration against what the architecture allows.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.ram < MIN_RAM || self.ram > MAX_RAM {
            return Err(ConfigError(format!(
                "RAM must be between 16M and 4T, not {} bytes",
                self.ram
            )));
        }
        let limit = self.arch.max_phys_bytes();
        let top = self.arch.dram_base() + self.ram + if self.ram > (3 << 30) { 1 << 30 } else { 0 };
        if top > limit {
            return Err(ConfigError(format!(
                "{} cannot address {} MiB of RAM: RAM above 3 GiB is placed above 4 GiB (the PCI hole), \
                 beyond the {} MiB physical limit; use less RAM{}",
                self.arch.name(),
                self.ram >> 20,
                limit >> 20,
                if self.arch == Arch::X86 { " or --arch x86-pae" } else { "" }
            )));
        }
        if self.la57 && self.arch != Arch::X86_64 {
            return Err(ConfigError(format!(
                "5-level paging (--la57) needs x86_64, not {}",
                self.arch.name()
            )));
        }
        if self.cpus == 0 || self.cpus > 256 {
            return Err(ConfigError(format!(
                "CPUs must be 1..=256, not {}",
                self.cpus
            )));
        }
        if self.nodes == 0 || self.nodes > 64 || self.nodes as usize > self.cpus {
            return Err(ConfigError(format!(
                "nodes must be 1..=64 and at most the number of CPUs, not {}",
                self.nodes
            )));
        }
        if self.ram / (self.nodes as u64) < MIN_RAM {
            return Err(ConfigError("each node needs at least 16M of RAM".into()));
        }
        if let Some(d) = &self.distance {
            let n = self.nodes as usize;
            if d.len() != n || d.iter().any(|r| r.len() != n) {
                return Err(ConfigError(format!("distance table must be {n}x{n}")));
            }
        }
        Ok(())
    }

    /// The node distance table, default or given.
    pub fn distance_table(&self) -> Vec<Vec<u32>> {
        self.distance.clone().unwrap_or_else(|| {
            (0..self.nodes)
                .map(|i| {
                    (0..self.nodes)
                        .map(|j| if i == j { 10 } else { 20 })
                        .collect()
                })
                .collect()
        })
    }

    /// Node of each CPU: CPUs are spread over nodes in contiguous runs.
    pub fn cpu_node(&self) -> Vec<u32> {
        (0..self.cpus)
            .map(|c| (c as u64 * self.nodes as u64 / self.cpus as u64) as u32)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("4G").unwrap(), 4 << 30);
        assert_eq!(parse_size("512m").unwrap(), 512 << 20);
        assert_eq!(parse_size("1T").unwrap(), 1 << 40);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("4X").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999999T").is_err());
    }

    #[test]
    fn validation_names_the_problem() {
        let mut c = MachineConfig {
            arch: Arch::X86,
            ram: 8 << 30,
            ..Default::default()
        };
        assert!(c.validate().unwrap_err().0.contains("x86 cannot address"));
        c.arch = Arch::X86Pae;
        assert!(c.validate().is_ok());
        c.ram = 1 << 20;
        assert!(c.validate().is_err());
        let c = MachineConfig {
            cpus: 4,
            nodes: 2,
            ..Default::default()
        };
        assert_eq!(c.cpu_node(), vec![0, 0, 1, 1]);
        assert_eq!(c.distance_table(), vec![vec![10, 20], vec![20, 10]]);
    }
}
