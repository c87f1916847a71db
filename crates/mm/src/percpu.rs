//! The per-CPU areas' first chunk, set up at boot from memblock
//! (mm/percpu.c `pcpu_build_alloc_info` and `pcpu_embed_first_chunk`, as
//! x86's `setup_per_cpu_areas` calls them).
//!
//! Each possible CPU gets a unit of `unit_size` bytes; units are grouped by
//! node and allocated `upa` (units per allocation) at a time in blocks of
//! `atom_size` (a PMD on x86-64), chosen to waste at most a third of a CPU's
//! worth of units while using the fewest allocations. Of each unit only the
//! first `size_sum` bytes (static + reserved + dynamic) stay reserved; the
//! rest, and units no CPU uses, go back to memblock.
//!
//! Simplified: later chunks (what the kernel's percpu allocator populates
//! after boot) are not modelled, so meminfo's Percpu counts the first
//! chunk only.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use crate::memblock::{Memblock, MEMBLOCK_ALLOC_ACCESSIBLE};
use crate::printk::Printk;
use crate::types::{PhysAddr, PAGE_SIZE};

/// PCPU_MIN_UNIT_SIZE: the smallest unit (32 KiB).
const PCPU_MIN_UNIT_SIZE: u64 = 32 << 10;

/// The kernel build's per-CPU sizes and the architecture's atom.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PercpuConfig {
    /// Static per-CPU data of the image (`__per_cpu_end - __per_cpu_start`).
    pub static_size: u64,
    /// Reserved for modules (PERCPU_MODULE_RESERVE; 0 without modules).
    pub reserved_size: u64,
    /// Dynamic reserve asked for (PERCPU_DYNAMIC_RESERVE).
    pub dyn_size: u64,
    /// Allocation granule (PMD_SIZE on x86-64 with large pages).
    pub atom_size: u64,
    /// CONFIG_NR_CPUS, for the setup_percpu line.
    pub nr_cpus_config: u32,
}

impl PercpuConfig {
    /// The kernel our machines run (Linux 6.18 x86-64): "percpu: Embedded 53
    /// pages/cpu s185496 r0 d31592" with a 28 KiB dynamic reserve, 2 MiB
    /// atoms and NR_CPUS 256 (tests/host/dmesg-boot.txt).
    pub const LINUX_6_18_X86_64: PercpuConfig = PercpuConfig {
        static_size: 185_496,
        reserved_size: 0,
        dyn_size: 28 << 10,
        atom_size: 2 << 20,
        nr_cpus_config: 256,
    };
}

/// The first chunk's layout (`struct pcpu_alloc_info`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllocInfo {
    /// Static bytes.
    pub static_size: u64,
    /// Reserved bytes.
    pub reserved_size: u64,
    /// Dynamic bytes (what page alignment of the sum leaves).
    pub dyn_size: u64,
    /// Bytes per unit.
    pub unit_size: u64,
    /// Bytes per allocation.
    pub alloc_size: u64,
    /// Bytes per atom.
    pub atom_size: u64,
    /// Units per allocation.
    pub upa: u64,
    /// Per group (node): the CPU of each unit, None for an unused unit.
    pub groups: Vec<(u32, Vec<Option<usize>>)>,
}

impl AllocInfo {
    /// Bytes of a unit kept reserved (`size_sum`).
    pub fn size_sum(&self) -> u64 {
        self.static_size + self.reserved_size + self.dyn_size
    }
}

/// `pcpu_build_alloc_info`: units per allocation and the unit map for CPUs
/// on `cpu_node` (CPUs of one node form a group).
pub fn build_alloc_info(cfg: &PercpuConfig, cpu_node: &[u32]) -> AllocInfo {
    let size_sum = (cfg.static_size + cfg.reserved_size + cfg.dyn_size).next_multiple_of(PAGE_SIZE);
    let dyn_size = size_sum - cfg.static_size - cfg.reserved_size;
    let min_unit_size = size_sum.max(PCPU_MIN_UNIT_SIZE);
    let alloc_size = min_unit_size.next_multiple_of(cfg.atom_size);
    let fits =
        |upa: u64| alloc_size.is_multiple_of(upa) && (alloc_size / upa).is_multiple_of(PAGE_SIZE);
    let mut max_upa = (alloc_size / min_unit_size).max(1);
    while !fits(max_upa) {
        max_upa -= 1;
    }
    // Groups by node, in node order.
    let mut nodes: Vec<u32> = cpu_node.to_vec();
    nodes.sort_unstable();
    nodes.dedup();
    let group_cnt: Vec<u64> = nodes
        .iter()
        .map(|n| cpu_node.iter().filter(|c| *c == n).count() as u64)
        .collect();
    let possible = cpu_node.len() as u64;
    let (mut best_upa, mut last_allocs) = (1, u64::MAX);
    for upa in (1..=max_upa).rev() {
        if !fits(upa) {
            continue;
        }
        let allocs: u64 = group_cnt.iter().map(|c| c.div_ceil(upa)).sum();
        let wasted: u64 = group_cnt.iter().map(|c| c.div_ceil(upa) * upa - c).sum();
        // Waste at most a third of the CPUs' units ...
        if wasted > possible / 3 {
            continue;
        }
        // ... and use no more allocations than a larger upa did.
        if allocs > last_allocs {
            break;
        }
        last_allocs = allocs;
        best_upa = upa;
    }
    let groups = nodes
        .iter()
        .zip(&group_cnt)
        .map(|(&nid, &cnt)| {
            let units = cnt.div_ceil(best_upa) * best_upa;
            let cpus: Vec<usize> = (0..cpu_node.len())
                .filter(|&c| cpu_node[c] == nid)
                .collect();
            let map = (0..units as usize).map(|u| cpus.get(u).copied()).collect();
            (nid, map)
        })
        .collect();
    AllocInfo {
        static_size: cfg.static_size,
        reserved_size: cfg.reserved_size,
        dyn_size,
        unit_size: alloc_size / best_upa,
        alloc_size,
        atom_size: cfg.atom_size,
        upa: best_upa,
        groups,
    }
}

/// Decimal digits of `n` (at least 1).
fn digits(n: usize) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// `pcpu_dump_alloc_info`: the "pcpu-alloc:" lines.
fn dump_alloc_info(ai: &AllocInfo, nr_cpus: usize, log: &Printk) {
    crate::printk!(
        log,
        "pcpu-alloc: s{} r{} d{} u{} alloc={}*{}",
        ai.static_size,
        ai.reserved_size,
        ai.dyn_size,
        ai.unit_size,
        ai.alloc_size / ai.atom_size,
        ai.atom_size
    );
    let cpu_width = digits(nr_cpus.saturating_sub(1));
    let group_width = digits(ai.groups.len().saturating_sub(1));
    let empty: String = "--------".chars().take(cpu_width).collect();
    let width = ai.upa as usize * (cpu_width + 1) + group_width + 3;
    let apl = 1usize << (60 / width).max(1).ilog2();
    let mut line = String::new();
    let mut alloc = 0usize;
    for (g, (_, map)) in ai.groups.iter().enumerate() {
        for units in map.chunks(ai.upa as usize) {
            if alloc.is_multiple_of(apl) && alloc > 0 {
                crate::printk!(log, "pcpu-alloc: {}", line);
                line.clear();
            }
            let _ = write!(line, "[{g:0group_width$}] ");
            for u in units {
                match u {
                    Some(c) => {
                        let _ = write!(line, "{c:0cpu_width$} ");
                    }
                    None => {
                        let _ = write!(line, "{empty} ");
                    }
                }
            }
            alloc += 1;
        }
    }
    crate::printk!(log, "pcpu-alloc: {}", line);
}

/// x86's `setup_per_cpu_areas` with `pcpu_embed_first_chunk`: allocates each
/// group's units from its node's memory (above MAX_DMA_ADDRESS where
/// possible), gives back what the units do not use, and logs as Linux does.
/// Returns the physical start of each CPU's unit (what
/// `__per_cpu_offset[cpu]` points at), or None when memblock cannot supply
/// a group.
pub fn setup_per_cpu_areas(
    mb: &mut Memblock,
    cfg: &PercpuConfig,
    cpu_node: &[u32],
    nr_nodes: u32,
    min_addr: PhysAddr,
    log: &Printk,
) -> Option<Vec<PhysAddr>> {
    let nr = cpu_node.len();
    crate::printk!(
        log,
        "setup_percpu: NR_CPUS:{} nr_cpumask_bits:{} nr_cpu_ids:{} nr_node_ids:{}",
        cfg.nr_cpus_config,
        nr,
        nr,
        nr_nodes
    );
    let ai = build_alloc_info(cfg, cpu_node);
    let mut unit_base = alloc::vec![PhysAddr(0); nr];
    for (nid, map) in &ai.groups {
        let size = map.len() as u64 * ai.unit_size;
        let base = mb.alloc_try_nid(
            size,
            ai.atom_size,
            min_addr,
            MEMBLOCK_ALLOC_ACCESSIBLE,
            *nid,
        )?;
        for (u, cpu) in map.iter().enumerate() {
            let unit = base.0 + u as u64 * ai.unit_size;
            let used = match cpu {
                Some(c) => {
                    unit_base[*c] = PhysAddr(unit);
                    ai.size_sum()
                }
                None => 0,
            };
            if used < ai.unit_size {
                mb.free(PhysAddr(unit + used), ai.unit_size - used).ok()?;
            }
        }
    }
    crate::printk!(
        log,
        "percpu: Embedded {} pages/cpu s{} r{} d{} u{}",
        ai.size_sum() / PAGE_SIZE,
        ai.static_size,
        ai.reserved_size,
        ai.dyn_size,
        ai.unit_size
    );
    dump_alloc_info(&ai, nr, log);
    Some(unit_base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_cpus_share_one_2m_allocation_as_on_this_machine() {
        // tests/host/dmesg-boot.txt: "percpu: Embedded 53 pages/cpu s185496
        // r0 d31592 u1048576", "pcpu-alloc: ... alloc=1*2097152",
        // "pcpu-alloc: [0] 0 1 ".
        let ai = build_alloc_info(&PercpuConfig::LINUX_6_18_X86_64, &[0, 0]);
        assert_eq!((ai.size_sum(), ai.dyn_size), (53 * 4096, 31592));
        assert_eq!((ai.upa, ai.unit_size, ai.alloc_size), (2, 1 << 20, 2 << 20));
        let log = Printk::new();
        dump_alloc_info(&ai, 2, &log);
        assert_eq!(
            log.messages(),
            [
                "pcpu-alloc: s185496 r0 d31592 u1048576 alloc=1*2097152",
                "pcpu-alloc: [0] 0 1 "
            ]
        );
    }

    #[test]
    fn units_per_allocation_waste_at_most_a_third_of_the_cpus() {
        // max_upa = 2 MiB / 212 KiB = 9, down to 8 (a divisor giving page-
        // aligned units). 8 CPUs: one allocation of 8 units. 3 CPUs: upa 4
        // wastes 1 unit (> 3/3 = 1? no: 1 <= 1), so 4 units of 512 KiB.
        // 1 CPU: no waste allowed, one 2 MiB unit.
        let cfg = PercpuConfig::LINUX_6_18_X86_64;
        let upa = |cpus: &[u32]| build_alloc_info(&cfg, cpus).upa;
        assert_eq!(upa(&[0; 8]), 8);
        assert_eq!(upa(&[0; 3]), 4);
        assert_eq!(upa(&[0; 1]), 1);
        // Two nodes of 2 CPUs: upa 2, one allocation each.
        let ai = build_alloc_info(&cfg, &[0, 0, 1, 1]);
        assert_eq!(ai.upa, 2);
        assert_eq!(
            ai.groups,
            [
                (0, alloc::vec![Some(0), Some(1)]),
                (1, alloc::vec![Some(2), Some(3)])
            ]
        );
    }

    #[test]
    fn unused_parts_go_back_to_memblock() {
        let mut mb = Memblock::new();
        mb.add_node(PhysAddr(0), 64 << 20, 0).unwrap();
        let log = Printk::new();
        let cfg = PercpuConfig::LINUX_6_18_X86_64;
        let units = setup_per_cpu_areas(&mut mb, &cfg, &[0, 0, 0], 1, PhysAddr(16 << 20), &log)
            .expect("64 MiB holds the chunk");
        // 3 CPUs in 4 units: 3 * 53 pages stay, the fourth unit is freed.
        assert_eq!(mb.reserved_size(), 3 * 53 * 4096);
        // One 2 MiB allocation (upa 4, u524288): the units follow each other.
        assert_eq!(units.len(), 3);
        assert!(
            units.windows(2).all(|w| w[1].0 - w[0].0 == 524288),
            "{units:?}"
        );
        assert!(units.iter().all(|u| mb.is_reserved(*u)), "{units:?}");
        assert_eq!(
            log.messages()[0],
            "setup_percpu: NR_CPUS:256 nr_cpumask_bits:3 nr_cpu_ids:3 nr_node_ids:1"
        );
        assert!(log.messages()[1]
            .starts_with("percpu: Embedded 53 pages/cpu s185496 r0 d31592 u524288"));
        assert_eq!(log.messages()[3], "pcpu-alloc: [0] 0 1 2 - ");
    }
}
