//! /proc/meminfo: the machine's memory in kB, in Linux 6.18's order, with
//! the counters mm keeps and, from the caller, what mm does not know yet
//! (swap, vmalloc, per-CPU areas, commitment, the direct-map page sizes).
//! Mirrors fs/proc/meminfo.c `meminfo_proc_show`, mm/show_mem.c
//! `si_mem_available`, mm/hugetlb.c `hugetlb_report_meminfo` and
//! arch/x86/mm/pat/set_memory.c `arch_report_meminfo`.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use crate::arch::Arch;
use crate::mmzone::Wmark;
use crate::page_alloc::PageAlloc;
use crate::proc::{clamp, totalreserve_pages};
use crate::types::PAGE_SHIFT;
use crate::vmstat::{NodeStat, ZoneStat};

/// vm.overcommit_ratio default (percent of RAM in CommitLimit).
pub const OVERCOMMIT_RATIO: u64 = 50;
/// VmallocTotal on x86-64 with 4-level paging: VMALLOC_END - VMALLOC_START
/// + 1 = 32 TiB, in kB (the `+ 1` is why it ends in 7).
pub const X86_64_VMALLOC_TOTAL_KB: u64 = 34_359_738_367;

/// What /proc/meminfo shows that the page allocator does not know: filled
/// by the machine (vmalloc, swap, per-CPU areas, commitment, direct map).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MeminfoExtras {
    /// VmallocTotal, kB (VMALLOC_END - VMALLOC_START).
    pub vmalloc_total_kb: u64,
    /// VmallocUsed, kB.
    pub vmalloc_used_kb: u64,
    /// Percpu, kB.
    pub percpu_kb: u64,
    /// x86 `DirectMap*` lines: (label without colon, e.g. "DirectMap4k", kB).
    pub direct_map: Vec<(&'static str, u64)>,
    /// Committed_AS, kB (`vm_committed_as`).
    pub committed_as_kb: u64,
    /// CommitLimit in pages (`vm_commit_limit`) when the machine knows its
    /// overcommit sysctls; `None`: the default ratio of RAM plus swap
    /// ([`commit_limit`]).
    pub commit_limit_pages: Option<u64>,
    /// SwapTotal, kB.
    pub swap_total_kb: u64,
    /// SwapFree, kB.
    pub swap_free_kb: u64,
}

impl MeminfoExtras {
    /// Extras with the architecture's constants filled in: VmallocTotal on
    /// x86-64, and zeroed DirectMap lines on x86 (4k, 2M, 1G on x86-64;
    /// 4k, 2M with PAE; 4k, 4M without). Everything else is 0.
    pub fn for_arch(arch: Arch) -> Self {
        let (vmalloc_total_kb, direct_map) = match arch {
            Arch::X86_64 => (
                X86_64_VMALLOC_TOTAL_KB,
                alloc::vec![("DirectMap4k", 0), ("DirectMap2M", 0), ("DirectMap1G", 0)],
            ),
            Arch::X86Pae => (0, alloc::vec![("DirectMap4k", 0), ("DirectMap2M", 0)]),
            Arch::X86 => (0, alloc::vec![("DirectMap4k", 0), ("DirectMap4M", 0)]),
            Arch::Arm64 => (0, Vec::new()),
        };
        MeminfoExtras {
            vmalloc_total_kb,
            direct_map,
            ..Default::default()
        }
    }
}

fn node_sum(pa: &PageAlloc, s: NodeStat) -> u64 {
    pa.nodes.iter().map(|n| clamp(n.stats.get(s))).sum()
}

fn zone_sum(pa: &PageAlloc, s: ZoneStat) -> u64 {
    clamp(pa.zones().map(|z| z.stats.get(s)).sum())
}

/// MemAvailable in pages (mm/show_mem.c `si_mem_available`): free pages
/// less `totalreserve_pages`, plus the page cache and the reclaimable
/// kernel memory, each less the smaller of its half and the sum of the low
/// watermarks.
pub fn si_mem_available(pa: &PageAlloc) -> u64 {
    let wmark_low: u64 = pa.zones().map(|z| z.wmark(Wmark::Low)).sum();
    let mut available = pa.nr_free_pages() as i64 - totalreserve_pages(pa) as i64;
    let pagecache = node_sum(pa, NodeStat::NrActiveFile) + node_sum(pa, NodeStat::NrInactiveFile);
    available += (pagecache - (pagecache / 2).min(wmark_low)) as i64;
    let reclaimable =
        node_sum(pa, NodeStat::NrSlabReclaimable) + node_sum(pa, NodeStat::NrKernelMiscReclaimable);
    available += (reclaimable - (reclaimable / 2).min(wmark_low)) as i64;
    available.max(0) as u64
}

/// CommitLimit in pages (mm/util.c `vm_commit_limit`): RAM, less hugetlb
/// (none), times vm.overcommit_ratio percent, plus swap.
pub fn commit_limit(pa: &PageAlloc, swap_pages: u64) -> u64 {
    pa.totalram_pages() * OVERCOMMIT_RATIO / 100 + swap_pages
}

/// Hugepagesize in kB: a PMD (2 MiB), 4 MiB on 2-level x86-32.
fn hugepage_kb(arch: Arch) -> u64 {
    match arch {
        Arch::X86 => 4096,
        _ => 2048,
    }
}

/// Renders /proc/meminfo (fs/proc/meminfo.c `meminfo_proc_show`): each line
/// a 16-column label, `%8lu`, ` kB`. Counters lmm does not model yet
/// (Buffers, Bounce, WritebackTmp, Zswap, hugetlb) print 0; HighTotal..
/// LowFree appear only on architectures with ZONE_HIGHMEM, DirectMap lines
/// only on x86, taken from `extras`.
pub fn render(pa: &PageAlloc, extras: &MeminfoExtras) -> String {
    let mut s = String::new();
    let kb = |pages: u64| pages << (PAGE_SHIFT - 10);
    let mut line = |label: &str, v: u64| {
        let _ = writeln!(s, "{:<16}{v:>8} kB", alloc::format!("{label}:"));
    };
    let totalram = pa.totalram_pages();
    let free = pa.nr_free_pages();
    let n = |st| node_sum(pa, st);
    let buffers = 0; // nr_blockdev_pages: no block-device page cache yet
    let swapcached = n(NodeStat::NrSwapcached);
    let cached = n(NodeStat::NrFilePages).saturating_sub(swapcached + buffers);
    let (aa, ia) = (n(NodeStat::NrActiveAnon), n(NodeStat::NrInactiveAnon));
    let (af, inf) = (n(NodeStat::NrActiveFile), n(NodeStat::NrInactiveFile));
    let sreclaimable = n(NodeStat::NrSlabReclaimable);
    let sunreclaim = n(NodeStat::NrSlabUnreclaimable);

    line("MemTotal", kb(totalram));
    line("MemFree", kb(free));
    line("MemAvailable", kb(si_mem_available(pa)));
    line("Buffers", kb(buffers));
    line("Cached", kb(cached));
    line("SwapCached", kb(swapcached));
    line("Active", kb(aa + af));
    line("Inactive", kb(ia + inf));
    line("Active(anon)", kb(aa));
    line("Inactive(anon)", kb(ia));
    line("Active(file)", kb(af));
    line("Inactive(file)", kb(inf));
    line("Unevictable", kb(n(NodeStat::NrUnevictable)));
    line("Mlocked", kb(zone_sum(pa, ZoneStat::NrMlock)));
    if pa.arch.zones().contains(&crate::mmzone::ZoneType::HighMem) {
        let high_total: u64 = pa
            .zones()
            .filter(|z| z.is_highmem())
            .map(|z| z.managed())
            .sum();
        let high_free: u64 = pa
            .zones()
            .filter(|z| z.is_highmem())
            .map(|z| z.free_pages())
            .sum();
        line("HighTotal", kb(high_total));
        line("HighFree", kb(high_free));
        line("LowTotal", kb(totalram - high_total));
        line("LowFree", kb(free - high_free));
    }
    line("SwapTotal", extras.swap_total_kb);
    line("SwapFree", extras.swap_free_kb);
    line("Zswap", 0);
    line("Zswapped", 0);
    line("Dirty", kb(n(NodeStat::NrDirty)));
    line("Writeback", kb(n(NodeStat::NrWriteback)));
    line("AnonPages", kb(n(NodeStat::NrAnonPages)));
    line("Mapped", kb(n(NodeStat::NrMapped)));
    line("Shmem", kb(n(NodeStat::NrShmem)));
    line(
        "KReclaimable",
        kb(sreclaimable + n(NodeStat::NrKernelMiscReclaimable)),
    );
    line("Slab", kb(sreclaimable + sunreclaim));
    line("SReclaimable", kb(sreclaimable));
    line("SUnreclaim", kb(sunreclaim));
    // NR_KERNEL_STACK_KB is kept in kB.
    line("KernelStack", n(NodeStat::NrKernelStack));
    line("PageTables", kb(n(NodeStat::NrPageTablePages)));
    line("SecPageTables", kb(n(NodeStat::NrSecPageTablePages)));
    line("NFS_Unstable", 0);
    line("Bounce", 0);
    line("WritebackTmp", 0);
    line(
        "CommitLimit",
        kb(extras
            .commit_limit_pages
            .unwrap_or_else(|| commit_limit(pa, extras.swap_total_kb >> (PAGE_SHIFT - 10)))),
    );
    line("Committed_AS", extras.committed_as_kb);
    line("VmallocTotal", extras.vmalloc_total_kb);
    line("VmallocUsed", extras.vmalloc_used_kb);
    line("VmallocChunk", 0);
    line("Percpu", extras.percpu_kb);
    line("AnonHugePages", kb(n(NodeStat::NrAnonTransparentHugepages)));
    line("ShmemHugePages", kb(n(NodeStat::NrShmemHugepages)));
    line("ShmemPmdMapped", kb(n(NodeStat::NrShmemPmdmapped)));
    line("FileHugePages", kb(n(NodeStat::NrFileHugepages)));
    line("FilePmdMapped", kb(n(NodeStat::NrFilePmdmapped)));
    line("Balloon", kb(n(NodeStat::NrBalloonPages)));
    // mm/hugetlb.c hugetlb_report_meminfo: no hugetlb pages yet.
    let _ = write!(
        s,
        "HugePages_Total:   {:>5}\nHugePages_Free:    {:>5}\nHugePages_Rsvd:    {:>5}\n\
         HugePages_Surp:    {:>5}\nHugepagesize:   {:>8} kB\nHugetlb:        {:>8} kB\n",
        0,
        0,
        0,
        0,
        hugepage_kb(pa.arch),
        0
    );
    if matches!(pa.arch, Arch::X86_64 | Arch::X86 | Arch::X86Pae) {
        for (label, v) in &extras.direct_map {
            let _ = writeln!(s, "{:<16}{v:>8} kB", alloc::format!("{label}:"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gfp::Gfp;
    use crate::mm_init::testing::boot;
    use crate::page_alloc::CpuId;
    use crate::proc::testing::{host, token_ends};
    use crate::types::Order;

    fn label(l: &str) -> &str {
        l.split(':').next().unwrap()
    }

    #[test]
    fn golden_x86_64_64m() {
        // fs/proc/meminfo.c meminfo_proc_show, mm/show_mem.c si_mem_available.
        // Checked by eye: MemTotal 15360 pages; MemAvailable = (15352 free -
        // 1167 totalreserve) * 4 kB; CommitLimit half of MemTotal.
        let m = boot(Arch::X86_64, 64 << 20, 2);
        m.pa.alloc_pages(CpuId(0), Gfp::KERNEL, Order(2)).unwrap();
        let mut ex = MeminfoExtras::for_arch(Arch::X86_64);
        ex.direct_map = alloc::vec![
            ("DirectMap4k", 8192),
            ("DirectMap2M", 57344),
            ("DirectMap1G", 0)
        ];
        ex.percpu_kb = 688;
        let got = render(&m.pa, &ex);
        assert_eq!(got, GOLDEN_64M);
    }

    const GOLDEN_64M: &str = r#"MemTotal:          60416 kB
MemFree:           60384 kB
MemAvailable:      55792 kB
Buffers:               0 kB
Cached:                0 kB
SwapCached:            0 kB
Active:                0 kB
Inactive:              0 kB
Active(anon):          0 kB
Inactive(anon):        0 kB
Active(file):          0 kB
Inactive(file):        0 kB
Unevictable:           0 kB
Mlocked:               0 kB
SwapTotal:             0 kB
SwapFree:              0 kB
Zswap:                 0 kB
Zswapped:              0 kB
Dirty:                 0 kB
Writeback:             0 kB
AnonPages:             0 kB
Mapped:                0 kB
Shmem:                 0 kB
KReclaimable:          0 kB
Slab:                  0 kB
SReclaimable:          0 kB
SUnreclaim:            0 kB
KernelStack:           0 kB
PageTables:            0 kB
SecPageTables:         0 kB
NFS_Unstable:          0 kB
Bounce:                0 kB
WritebackTmp:          0 kB
CommitLimit:       30208 kB
Committed_AS:          0 kB
VmallocTotal:   34359738367 kB
VmallocUsed:           0 kB
VmallocChunk:          0 kB
Percpu:              688 kB
AnonHugePages:         0 kB
ShmemHugePages:        0 kB
ShmemPmdMapped:        0 kB
FileHugePages:         0 kB
FilePmdMapped:         0 kB
Balloon:               0 kB
HugePages_Total:       0
HugePages_Free:        0
HugePages_Rsvd:        0
HugePages_Surp:        0
Hugepagesize:       2048 kB
Hugetlb:               0 kB
DirectMap4k:        8192 kB
DirectMap2M:       57344 kB
DirectMap1G:           0 kB
"#;

    /// The value of `Label:` in a meminfo text.
    fn kb(text: &str, label: &str) -> u64 {
        text.lines()
            .find_map(|l| crate::proc::testing::field(l, label))
            .unwrap_or_else(|| panic!("no {label}"))
            .trim_end_matches(" kB")
            .parse()
            .unwrap()
    }

    #[test]
    fn golden_64m_values_follow_linux_formulas() {
        // The numbers of GOLDEN_64M that a formula gives, against Linux
        // 6.18's rules evaluated from first principles
        // (proc::testing::linux_64m). MemFree is state (what the buddy
        // lists hold); Percpu and DirectMap* are the test's inputs.
        let want = crate::proc::testing::linux_64m::derive();
        let g = GOLDEN_64M;
        // MemTotal = totalram_pages (si_meminfo): the managed pages.
        assert_eq!(kb(g, "MemTotal"), want.totalram * 4);
        // si_mem_available (mm/show_mem.c): free - totalreserve_pages, plus
        // page cache and reclaimable slab beyond what must stay (none here).
        let free = kb(g, "MemFree") / 4;
        assert_eq!(kb(g, "MemAvailable"), (free - want.totalreserve) * 4);
        // vm_commit_limit (mm/util.c), overcommit_ratio 50, no hugetlb, no
        // swap: totalram * 50 / 100.
        assert_eq!(kb(g, "CommitLimit"), want.totalram * 50 / 100 * 4);
        // VMALLOC_TOTAL >> 10, x86-64 4-level: VMALLOC_START
        // 0xffffc90000000000, VMALLOC_SIZE_TB 32, END = START + 32 TiB - 1.
        let (start, end) = (
            0xffff_c900_0000_0000u64,
            0xffff_c900_0000_0000u64 + (32 << 40) - 1,
        );
        assert_eq!(kb(g, "VmallocTotal"), (end - start) >> 10);
        // HPAGE_PMD_SIZE: 2 MiB.
        assert_eq!(kb(g, "Hugepagesize"), 2048);
        // No swap device, no hugetlb pages (HugePages_* have no unit).
        assert_eq!((kb(g, "SwapTotal"), kb(g, "SwapFree")), (0, 0));
        assert_eq!(kb(g, "HugePages_Total"), 0);
    }

    #[test]
    fn labels_and_columns_match_host() {
        let m = boot(Arch::X86_64, 5 << 30, 2);
        let ours = render(&m.pa, &MeminfoExtras::for_arch(Arch::X86_64));
        let hostf = host("meminfo.txt");
        let ol: Vec<_> = ours.lines().map(label).collect();
        let hl: Vec<_> = hostf.lines().map(label).collect();
        assert_eq!(ol, hl);
        for (h, o) in hostf.lines().zip(ours.lines()) {
            assert_eq!(token_ends(h), token_ends(o), "{h:?} vs {o:?}");
        }
        // The values that exist are true: totals and the 50% commit limit
        // (host: MemTotal 24684092 kB, CommitLimit 12342044 kB = half).
        let total = m.pa.totalram_pages() * 4;
        assert!(ours.contains(&alloc::format!("MemTotal:       {total:>8} kB\n")));
        assert!(ours.contains(&alloc::format!("CommitLimit:    {:>8} kB\n", total / 2)));
        assert!(ours.contains("VmallocTotal:   34359738367 kB\n"));
    }

    #[test]
    fn mem_available_is_free_less_reserve_without_caches() {
        let m = boot(Arch::X86_64, 64 << 20, 1);
        assert_eq!(
            si_mem_available(&m.pa),
            m.pa.nr_free_pages() - totalreserve_pages(&m.pa)
        );
    }

    #[test]
    fn highmem_lines_only_with_highmem() {
        let m = boot(Arch::X86, 1 << 30, 1);
        let s = render(&m.pa, &MeminfoExtras::for_arch(Arch::X86));
        let labels: Vec<_> = s.lines().map(label).collect();
        let i = labels.iter().position(|&l| l == "Mlocked").unwrap();
        assert_eq!(
            labels[i + 1..i + 6],
            ["HighTotal", "HighFree", "LowTotal", "LowFree", "SwapTotal"]
        );
        assert_eq!(labels[labels.len() - 2..], ["DirectMap4k", "DirectMap4M"]);
        assert!(s.contains("Hugepagesize:       4096 kB\n"), "{s}");
        let arm = boot(Arch::Arm64, 64 << 20, 1);
        let s = render(&arm.pa, &MeminfoExtras::for_arch(Arch::Arm64));
        assert!(!s.contains("HighTotal") && !s.contains("DirectMap"), "{s}");
        assert!(s.ends_with("Hugetlb:               0 kB\n"), "{s}");
    }
}
