//! The /proc files of the memory manager: buddyinfo, pagetypeinfo, zoneinfo,
//! vmstat and meminfo, rendered byte for byte in Linux 6.18's format from a
//! [`PageAlloc`]. Mirrors mm/vmstat.c (`frag_show_print`, `pagetypeinfo_show`,
//! `zoneinfo_show_print`, `vmstat_show`) and fs/proc/meminfo.c
//! (`meminfo_proc_show`).
//!
//! Every renderer is a pure function of the allocator's state (plus, for
//! meminfo, what mm does not know yet), so output is deterministic.

use crate::mmzone::Wmark;
use crate::page_alloc::PageAlloc;

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

    /// The key and value of a `/proc` line `KEY VALUE` or `KEY: VALUE`
    /// (leading spaces ignored), if its key is `key`.
    pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
        let rest = line.trim_start().strip_prefix(key)?;
        let rest = rest.strip_prefix(':').unwrap_or(rest);
        rest.starts_with(' ').then(|| rest.trim())
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

    /// What Linux 6.18 derives by formula for the machine of the golden
    /// tests (`mm_init::testing::boot(Arch::X86_64, 64 MiB, 2 CPUs)`),
    /// computed here from first principles: the machine's definition
    /// (RAM, what boot reserves, the CPUs), Linux's constants and sysctl
    /// defaults, and the kernel's formulas restated from mm/page_alloc.c,
    /// mm/khugepaged.c, mm/mm_init.c and mm/vmstat.c (cited per step;
    /// /work/shared/reference/linux-facts.md §6.6, §6.7, §6.12). Nothing
    /// here calls lmm's allocator or its formula functions, so a golden
    /// output that merely repeats lmm's own numbers cannot pass by itself.
    pub mod linux_64m {
        use alloc::vec::Vec;

        /// 4 KiB pages: kB per page.
        pub const PAGE_KB: u64 = 4;
        /// Pages of RAM: 64 MiB from physical address 0.
        pub const RAM_PAGES: u64 = (64 << 20) >> 12;
        /// CPUs, all on node 0 and online.
        pub const CPUS: u64 = 2;
        /// `sizeof(struct page)` on x86-64 (include/linux/mm_types.h).
        pub const STRUCT_PAGE_BYTES: u64 = 64;
        /// `pageblock_nr_pages` (pageblock_order 9, linux-facts §6.7).
        pub const PAGEBLOCK_NR_PAGES: u64 = 512;
        /// `MIGRATE_PCPTYPES` (unmovable, movable, reclaimable).
        const MIGRATE_PCPTYPES: u64 = 3;
        /// Zone indexes of x86-64 with ZONE_DMA, ZONE_DMA32 and
        /// ZONE_DEVICE: DMA, DMA32, Normal, Movable, Device.
        pub const NAMES: [&str; 5] = ["DMA", "DMA32", "Normal", "Movable", "Device"];
        const MOVABLE: usize = 3;
        /// `gfp_zone(GFP_USER)`: ZONE_NORMAL.
        const GFP_USER_ZONE: usize = 2;
        /// `sysctl_lowmem_reserve_ratio` defaults (mm/page_alloc.c: DMA
        /// 256, DMA32 256, Normal 32, Movable 0; Device has no entry, 0).
        const LOWMEM_RESERVE_RATIO: [u64; 5] = [256, 256, 32, 0, 0];
        /// `watermark_scale_factor` default (10, i.e. 0.1%).
        const WATERMARK_SCALE_FACTOR: u64 = 10;

        /// One zone's formula values.
        #[derive(Clone, Debug, Default)]
        pub struct Zone {
            pub start_pfn: u64,
            pub spanned: u64,
            pub present: u64,
            pub managed: u64,
            /// min, low, high, promo.
            pub wmark: [u64; 4],
            /// `lowmem_reserve[0..5]`.
            pub protection: [u64; 5],
            pub batch: u64,
            pub high_min: u64,
            pub high_max: u64,
            /// `vm stats threshold`.
            pub threshold: u64,
        }

        /// The machine's formula values.
        #[derive(Clone, Debug)]
        pub struct Machine {
            pub zones: Vec<Zone>,
            /// `min_free_kbytes` from the sqrt rule alone.
            pub min_free_kbytes_sqrt: u64,
            /// `min_free_kbytes` after khugepaged raised it.
            pub min_free_kbytes: u64,
            /// `totalram_pages`.
            pub totalram: u64,
            /// `totalreserve_pages`.
            pub totalreserve: u64,
            /// Pages of the boot memmap.
            pub memmap_pages: u64,
        }

        /// `int_sqrt`: the largest r with r*r <= x.
        fn int_sqrt(x: u64) -> u64 {
            let mut r = 0u64;
            while (r + 1) * (r + 1) <= x {
                r += 1;
            }
            r
        }

        /// `fls`: 1-based index of the most significant set bit, 0 for 0.
        fn fls(x: u64) -> u64 {
            64 - x.leading_zeros() as u64
        }

        /// `rounddown_pow_of_two`.
        fn rounddown_pow_of_two(x: u64) -> u64 {
            1 << (fls(x) - 1)
        }

        /// `__setup_per_zone_wmarks` (mm/page_alloc.c): pages_min =
        /// min_free_kbytes >> 2 is shared among the zones that are neither
        /// highmem nor ZONE_MOVABLE in proportion to their managed pages
        /// (64-bit division); ZONE_MOVABLE (and highmem) get managed/1024
        /// clamped to [SWAP_CLUSTER_MAX = 32, 128] as min; each further step
        /// is max(share / 4, managed * watermark_scale_factor / 10000):
        /// low = min + step, high = low + step, promo = high + step.
        fn watermarks(min_free_kbytes: u64, managed: &[u64]) -> Vec<[u64; 4]> {
            let pages_min = min_free_kbytes >> 2;
            let lowmem: u64 = (0..managed.len())
                .filter(|&i| i != MOVABLE)
                .map(|i| managed[i])
                .sum();
            (0..managed.len())
                .map(|i| {
                    let share = pages_min * managed[i] / lowmem;
                    let min = if i == MOVABLE {
                        (managed[i] / 1024).clamp(32, 128)
                    } else {
                        share
                    };
                    let step = (share / 4).max(managed[i] * WATERMARK_SCALE_FACTOR / 10000);
                    [min, min + step, min + 2 * step, min + 3 * step]
                })
                .collect()
        }

        /// `nr_free_buffer_pages` (mm/page_alloc.c `nr_free_zone_pages`
        /// of `gfp_zone(GFP_USER)`): managed pages above the high
        /// watermark, summed over the zones up to ZONE_NORMAL.
        fn nr_free_buffer_pages(managed: &[u64], high: &[u64]) -> u64 {
            (0..=GFP_USER_ZONE)
                .map(|i| managed[i].saturating_sub(high[i]))
                .sum()
        }

        /// Derives every formula value of the machine.
        pub fn derive() -> Machine {
            // Zones (arch/x86/mm/init.c zone_sizes_init, linux-facts §6.6):
            // DMA below MAX_DMA_PFN = 4096 (16 MiB), DMA32 below
            // MAX_DMA32_PFN = 0x100000 (4 GiB), Normal above; RAM ends at
            // 16384, so Normal, Movable (no kernelcore=/movablecore=) and
            // Device are empty.
            let dma_end = RAM_PAGES.min(4096);
            let dma32_end = RAM_PAGES.min(0x100000);
            let spans = [
                (0, dma_end),
                (dma_end, dma32_end),
                (dma32_end, RAM_PAGES),
                (0, 0),
                (0, 0),
            ];
            // What memblock reserved before the hand-over to the buddy
            // allocator: the first MiB (x86's setup_arch reserves it), the
            // kernel image (2 MiB at 1 MiB), and the memmap: with
            // SPARSEMEM_VMEMMAP (CONFIG on our machines, linux-facts §6.12)
            // `sparse_init_nid` gives every memory section holding RAM the
            // memmap of a whole section, `section_map_size()` = 2^15
            // struct pages of 64 bytes (2 MiB, PMD aligned), allocated
            // top-down (memblock's default direction) at the end of RAM.
            // RAM_PAGES fit one 128 MiB section.
            let sections = RAM_PAGES.div_ceil(1 << (27 - 12));
            let memmap_pages = sections * ((1u64 << (27 - 12)) * STRUCT_PAGE_BYTES).div_ceil(4096);
            let reserved = [
                (0, 256),
                (256, 256 + 512),
                (RAM_PAGES - memmap_pages, RAM_PAGES),
            ];
            // spanned = end - start; present = RAM pages in the span (no
            // holes here); managed = present less the reserved pages, which
            // memblock_free_all never releases (mm/mm_init.c).
            let mut zones: Vec<Zone> = spans
                .iter()
                .map(|&(s, e)| {
                    let present = e - s;
                    let reserved: u64 = reserved
                        .iter()
                        .map(|&(rs, re): &(u64, u64)| re.min(e).saturating_sub(rs.max(s)))
                        .sum();
                    Zone {
                        start_pfn: s,
                        spanned: e - s,
                        present,
                        managed: present - reserved,
                        ..Default::default()
                    }
                })
                .collect();
            let managed: Vec<u64> = zones.iter().map(|z| z.managed).collect();
            let totalram: u64 = managed.iter().sum();

            // calculate_min_free_kbytes (mm/page_alloc.c, run first by
            // init_per_zone_wmark_min when no watermark is set yet):
            // int_sqrt(lowmem_kbytes * 16) clamped to [128, 262144].
            let lowmem_kbytes = nr_free_buffer_pages(&managed, &[0; 5]) * PAGE_KB;
            let sqrt_kb = int_sqrt(lowmem_kbytes * 16).clamp(128, 262144);
            let first = watermarks(sqrt_kb, &managed);
            // khugepaged (THP enabled = madvise on our machines, linux-facts
            // §6.12) then calls set_recommended_min_free_kbytes
            // (mm/khugepaged.c): for the populated zones up to
            // gfp_zone(GFP_USER), 2 pageblocks each plus MIGRATE_PCPTYPES^2
            // pageblocks each, at most 5% of nr_free_buffer_pages() (now
            // with the first watermarks set), raising min_free_kbytes if
            // larger, and setup_per_zone_wmarks again.
            let nr_zones = (0..=GFP_USER_ZONE).filter(|&i| managed[i] > 0).count() as u64;
            let mut rec = PAGEBLOCK_NR_PAGES * nr_zones * 2;
            rec += PAGEBLOCK_NR_PAGES * nr_zones * MIGRATE_PCPTYPES * MIGRATE_PCPTYPES;
            let high1: Vec<u64> = first.iter().map(|w| w[2]).collect();
            rec = rec.min(nr_free_buffer_pages(&managed, &high1) / 20);
            let min_free_kbytes = (rec * PAGE_KB).max(sqrt_kb);
            let wm = watermarks(min_free_kbytes, &managed);

            // setup_per_zone_lowmem_reserve (mm/page_alloc.c): for i < j,
            // lowmem_reserve[j] = (managed of zones i+1..=j) / ratio[i], 0 if
            // ratio[i] is 0 or zone i manages nothing. An empty upper zone
            // is not cleared (6.18: the host's DMA row is (0, 3019, 3787,
            // 3787, 3787) with Movable and Device empty).
            for i in 0..zones.len() {
                let clear = LOWMEM_RESERVE_RATIO[i] == 0 || managed[i] == 0;
                let mut sum = 0;
                for (j, m) in managed.iter().enumerate().skip(i + 1) {
                    sum += m;
                    zones[i].protection[j] = if clear {
                        0
                    } else {
                        sum / LOWMEM_RESERVE_RATIO[i]
                    };
                }
            }
            // calculate_totalreserve_pages: per zone, its largest
            // lowmem_reserve plus its high watermark, at most its managed
            // pages.
            let totalreserve = zones
                .iter()
                .zip(&wm)
                .map(|(z, w)| {
                    (z.protection.iter().max().copied().unwrap_or(0) + w[2]).min(z.managed)
                })
                .sum();

            for (z, w) in zones.iter_mut().zip(&wm) {
                z.wmark = *w;
                // zone_batchsize: min(managed >> 10, 1 MiB of pages) / 4,
                // at least 1, then rounddown_pow_of_two(b + b/2) - 1;
                // zone_set_high_and_batch takes max(1, that).
                let mut b = (z.managed >> 10).min(256) / 4;
                if b < 1 {
                    b = 1;
                }
                z.batch = (rounddown_pow_of_two(b + b / 2) - 1).max(1);
                // zone_highsize: the low watermark (high_min), or managed /
                // MIN_PERCPU_PAGELIST_HIGH_FRACTION = 8 (high_max), split over
                // the node's CPUs (cpumask_weight(cpumask_of_node) +
                // cpu_online 0), at least batch * 4.
                z.high_min = (w[1] / CPUS).max(z.batch * 4);
                z.high_max = (z.managed / 8 / CPUS).max(z.batch * 4);
                // calculate_normal_threshold (mm/vmstat.c): 2 * fls(online
                // CPUs) * (1 + fls(managed in 128 MiB units)), at most 125.
                z.threshold = (2 * fls(CPUS) * (1 + fls(z.managed >> 15))).min(125);
            }
            Machine {
                zones,
                min_free_kbytes_sqrt: sqrt_kb,
                min_free_kbytes,
                totalram,
                totalreserve,
                memmap_pages,
            }
        }

        #[test]
        fn worked_values() {
            // The derivation by hand, once, so that the code above is seen
            // to compute what the comments say.
            let m = derive();
            // managed: DMA 4096 - 256 - 512, DMA32 12288 - 512 (a whole
            // section's memmap).
            assert_eq!(m.zones[0].managed, 3328);
            assert_eq!(m.zones[1].managed, 11776);
            // int_sqrt(60416 * 16) = 983 (983^2 = 966289 <= 966656 < 984^2).
            assert_eq!(m.min_free_kbytes_sqrt, 983);
            // First watermarks (pages_min 983 / 4 = 245): DMA min
            // 245*3328/15104 = 53, high 53+13+13 = 79; DMA32 min 191, high
            // 191+47+47 = 285; (3249 + 11491) / 20 = 737 pages < 11264.
            assert_eq!(m.min_free_kbytes, 737 * 4);
            // pages_min 737: DMA 737*3328/15104 = 162, DMA32 574.
            assert_eq!(m.zones[0].wmark, [162, 202, 242, 282]);
            assert_eq!(m.zones[1].wmark, [574, 717, 860, 1003]);
            assert_eq!(m.zones[3].wmark, [32; 4]);
            // 11776 / 256 = 46; reserve 46 + 242 + 860.
            assert_eq!(m.zones[0].protection, [0, 46, 46, 46, 46]);
            assert_eq!(m.totalreserve, 1148);
            assert_eq!(
                (m.zones[1].batch, m.zones[1].high_min, m.zones[1].high_max),
                (1, 358, 736)
            );
        }
    }
}
