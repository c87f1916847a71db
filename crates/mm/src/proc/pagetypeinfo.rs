//! /proc/pagetypeinfo: free blocks per order and migrate type, and
//! pageblocks per migrate type, of every populated zone.
//! Mirrors mm/vmstat.c `pagetypeinfo_show` (`pagetypeinfo_showfree_print`,
//! `pagetypeinfo_showblockcount_print`).

use alloc::string::String;
use core::fmt::Write;

use crate::mmzone::{MigrateType, NR_PAGE_ORDERS, PAGEBLOCK_NR_PAGES, PAGEBLOCK_ORDER};
use crate::page_alloc::PageAlloc;

/// Linux stops counting a free list at this many entries and prints `>`.
const FREECOUNT_CAP: u64 = 100_000;

/// Renders /proc/pagetypeinfo. For each node with memory: the pageblock
/// header, the free-count table (`Node %4d, zone %8s, type %12s ` then
/// `%6lu ` per order, `>100000` when a list holds 100000 or more blocks, as
/// Linux's capped list walk prints), a blank line, and the pageblock table
/// (`%12s ` per migrate type name, then `Node %d, zone %8s ` and `%12lu `
/// per type for each populated zone). No CMA type, like the reference config.
pub fn render(pa: &PageAlloc) -> String {
    let mut s = String::new();
    for node in &pa.nodes {
        if !node.zones.iter().any(|z| z.is_populated()) {
            continue; // memoryless node
        }
        let _ = writeln!(s, "Page block order: {PAGEBLOCK_ORDER}");
        let _ = writeln!(s, "Pages per block:  {PAGEBLOCK_NR_PAGES}");
        s.push('\n');
        let _ = write!(s, "{:<43} ", "Free pages count per migrate type at order");
        for order in 0..NR_PAGE_ORDERS {
            let _ = write!(s, "{order:>6} ");
        }
        s.push('\n');
        for z in node.zones.iter().filter(|z| z.is_populated()) {
            let area = z.lock_area();
            for mt in MigrateType::ALL {
                let _ = write!(
                    s,
                    "Node {:>4}, zone {:>8}, type {:>12} ",
                    node.nid,
                    z.ztype.name(),
                    mt.name()
                );
                for order in 0..NR_PAGE_ORDERS {
                    let n = area.nr_free(order, mt);
                    if n >= FREECOUNT_CAP {
                        let _ = write!(s, ">{FREECOUNT_CAP:>6} ");
                    } else {
                        let _ = write!(s, "{n:>6} ");
                    }
                }
                s.push('\n');
            }
        }
        let _ = write!(s, "\n{:<23}", "Number of blocks type ");
        for mt in MigrateType::ALL {
            let _ = write!(s, "{:>12} ", mt.name());
        }
        s.push('\n');
        for z in node.zones.iter().filter(|z| z.is_populated()) {
            let _ = write!(s, "Node {}, zone {:>8} ", node.nid, z.ztype.name());
            for c in z.pageblock_counts() {
                let _ = write!(s, "{c:>12} ");
            }
            s.push('\n');
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;
    use crate::gfp::Gfp;
    use crate::mm_init::testing::boot;
    use crate::page_alloc::CpuId;
    use crate::proc::testing::{host, token_ends};
    use crate::types::Order;

    #[test]
    fn golden_x86_64_64m() {
        // mm/vmstat.c pagetypeinfo_show, pagetypeinfo_showfree_print,
        // pagetypeinfo_showblockcount_print.
        // Checked by eye: 8 pageblocks in DMA (16 MiB), 24 in DMA32; the
        // blocks split for unmovable kernel allocations turn Unmovable.
        let m = boot(Arch::X86_64, 64 << 20, 2);
        m.pa.alloc_pages(CpuId(0), Gfp::KERNEL, Order(2)).unwrap();
        m.pa.alloc_pages(CpuId(0), Gfp::GFP_DMA, Order(0)).unwrap();
        let got = render(&m.pa);
        assert_eq!(got, GOLDEN_64M);
    }

    const GOLDEN_64M: &str = r#"Page block order: 9
Pages per block:  512

Free pages count per migrate type at order       0      1      2      3      4      5      6      7      8      9     10 
Node    0, zone      DMA, type    Unmovable      1      1      1      1      1      1      1      1      1      1      0 
Node    0, zone      DMA, type      Movable      0      0      0      0      0      0      0      0      1      0      2 
Node    0, zone      DMA, type  Reclaimable      0      0      0      0      0      0      0      0      0      0      0 
Node    0, zone      DMA, type   HighAtomic      0      0      0      0      0      0      0      0      0      0      0 
Node    0, zone      DMA, type      Isolate      0      0      0      0      0      0      0      0      0      0      0 
Node    0, zone    DMA32, type    Unmovable      0      0      0      1      1      1      1      1      1      1      0 
Node    0, zone    DMA32, type      Movable      0      0      0      0      0      0      0      0      0      1     10 
Node    0, zone    DMA32, type  Reclaimable      0      0      0      0      0      0      0      0      0      0      0 
Node    0, zone    DMA32, type   HighAtomic      0      0      0      0      0      0      0      0      0      0      0 
Node    0, zone    DMA32, type      Isolate      0      0      0      0      0      0      0      0      0      0      0 

Number of blocks type     Unmovable      Movable  Reclaimable   HighAtomic      Isolate 
Node 0, zone      DMA            2            6            0            0            0 
Node 0, zone    DMA32            2           22            0            0            0 
"#;

    #[test]
    fn golden_64m_values_follow_linux_formulas() {
        // pageblock_order 9 and pageblock_nr_pages 512 (linux-facts §6.7);
        // each zone has one pageblock per 512 pages it spans
        // (proc::testing::linux_64m, every block counted under exactly one
        // migrate type). How the blocks divide among the types, and the
        // free counts, are state.
        let want = crate::proc::testing::linux_64m::derive();
        assert!(GOLDEN_64M.starts_with("Page block order: 9\nPages per block:  512\n"));
        let blocks = GOLDEN_64M.split("Number of blocks type").nth(1).unwrap();
        let rows: alloc::vec::Vec<(&str, u64)> = blocks
            .lines()
            .skip(1)
            .map(|l| {
                let name = l
                    .split(", zone")
                    .nth(1)
                    .unwrap()
                    .split_whitespace()
                    .next()
                    .unwrap();
                let total = l
                    .split_whitespace()
                    .skip(4)
                    .map(|v| v.parse::<u64>().unwrap())
                    .sum();
                (name, total)
            })
            .collect();
        let populated: alloc::vec::Vec<(&str, u64)> = crate::proc::testing::linux_64m::NAMES
            .iter()
            .zip(&want.zones)
            .filter(|(_, z)| z.present > 0)
            .map(|(n, z)| {
                (
                    *n,
                    z.spanned
                        .div_ceil(crate::proc::testing::linux_64m::PAGEBLOCK_NR_PAGES),
                )
            })
            .collect();
        assert_eq!(rows, populated);
    }

    #[test]
    fn columns_match_host() {
        let m = boot(Arch::X86_64, 5 << 30, 2);
        let ours = render(&m.pa);
        let hostf = host("pagetypeinfo.txt");
        assert_eq!(ours.lines().count(), hostf.lines().count());
        for (h, o) in hostf.lines().zip(ours.lines()) {
            if h.starts_with("Node") {
                // Labels identical, numbers right-aligned in the same columns.
                let label = h.find(|c: char| c.is_ascii_digit()).unwrap();
                let label_end = h.rfind(|c: char| c.is_alphabetic()).unwrap() + 1;
                assert_eq!(h[..label], o[..label]);
                assert_eq!(h[label + 1..label_end], o[label + 1..label_end]);
                assert_eq!(h.len(), o.len(), "{h:?} vs {o:?}");
                assert_eq!(token_ends(h), token_ends(o), "{h:?} vs {o:?}");
            } else {
                // Headers and the blank lines are the same bytes.
                assert_eq!(h, o);
            }
        }
    }
}
