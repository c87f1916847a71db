//! The /proc files of the memory manager: buddyinfo, pagetypeinfo, zoneinfo,
//! vmstat and meminfo, rendered byte for byte in Linux 6.18's format from a
//! [`PageAlloc`]. Mirrors mm/vmstat.c (`frag_show_print`, `pagetypeinfo_show`,
//! `zoneinfo_show_print`, `vmstat_show`) and fs/proc/meminfo.c
//! (`meminfo_proc_show`).
//!
//! Every renderer is a pure function of the allocator's state (plus, for
//! meminfo, what mm does not know yet), so output is deterministic.

use crate::page_alloc::{PageAlloc, Wmark};

pub mod buddyinfo;
pub mod meminfo;
pub mod pagetypeinfo;
pub mod slabinfo;
pub mod vmallocinfo;
pub mod vmstat;
pub mod zoneinfo;

/// `totalreserve_pages`: for each zone, its largest lowmem reserve plus its
/// high watermark, capped at its managed pages, summed over all zones
/// (mm/page_alloc.c `calculate_totalreserve_pages`). Pages the kernel does
/// not count as available to user space.
pub fn totalreserve_pages(pa: &PageAlloc) -> u64 {
    let nzones = pa.arch.zones().len();
    pa.zones()
        .map(|z| {
            let max = (z.idx..nzones)
                .map(|j| z.lowmem_reserve(j))
                .max()
                .unwrap_or(0);
            (max + z.wmark(Wmark::High)).min(z.managed())
        })
        .sum()
}

/// Clamps a signed counter the way Linux's `global_*_page_state` does:
/// transiently negative per-CPU sums read as 0.
pub(crate) fn clamp(v: i64) -> u64 {
    v.max(0) as u64
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers shared by the renderers' tests.
    use alloc::string::String;
    use alloc::vec::Vec;

    /// A sample from this machine's Linux 6.18 kernel, tests/host/`name`.
    pub fn host(name: &str) -> String {
        let path = std::format!("{}/../../tests/host/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Byte offsets where each space-separated token of `line` ends: two
    /// lines with the same list have the same right-aligned columns.
    pub fn token_ends(line: &str) -> Vec<usize> {
        let b = line.as_bytes();
        (0..b.len())
            .filter(|&i| b[i] != b' ' && (i + 1 == b.len() || b[i + 1] == b' '))
            .map(|i| i + 1)
            .collect()
    }

    /// `line` with every run of digits replaced by `N`: the skeleton of a
    /// line whose numbers are left-aligned after fixed-width labels.
    pub fn mask_digits(line: &str) -> String {
        let mut out = String::new();
        let mut in_num = false;
        for c in line.chars() {
            if c.is_ascii_digit() {
                if !in_num {
                    out.push('N');
                }
                in_num = true;
            } else {
                out.push(c);
                in_num = false;
            }
        }
        out
    }
}
