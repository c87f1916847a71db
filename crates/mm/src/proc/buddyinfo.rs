//! /proc/buddyinfo: free blocks per order of every populated zone.
//! Mirrors mm/vmstat.c `frag_show` / `frag_show_print`.

use alloc::string::String;
use core::fmt::Write;

use crate::mmzone::NR_PAGE_ORDERS;
use crate::page_alloc::PageAlloc;

/// Renders /proc/buddyinfo: for each node, one line per populated zone,
/// `Node %d, zone %8s ` then `%6lu ` per order (free blocks, not pages;
/// pages on per-CPU lists are not counted), then a newline.
pub fn render(pa: &PageAlloc) -> String {
    let mut s = String::new();
    for node in &pa.nodes {
        for z in node.zones.iter().filter(|z| z.is_populated()) {
            let _ = write!(s, "Node {}, zone {:>8} ", node.nid, z.ztype.name());
            let area = z.lock_area();
            for order in 0..NR_PAGE_ORDERS {
                let _ = write!(s, "{:>6} ", area.nr_free_order(order));
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
        // mm/vmstat.c frag_show_print: "Node %d, zone %8s " + "%6lu " per order.
        // Checked by eye: DMA 4096 pages less the first MiB and the kernel
        // image (768) less one page; DMA32 12288 less 512 memmap pages (a whole section's) less
        // the order-2 block and the block on CPU 0's list.
        let m = boot(Arch::X86_64, 64 << 20, 2);
        m.pa.alloc_pages(CpuId(0), Gfp::KERNEL, Order(2)).unwrap();
        m.pa.alloc_pages(CpuId(0), Gfp::GFP_DMA, Order(0)).unwrap();
        let got = render(&m.pa);
        assert_eq!(got, GOLDEN_64M);
    }

    const GOLDEN_64M: &str = r#"Node 0, zone      DMA      1      1      1      1      1      1      1      1      2      1      2 
Node 0, zone    DMA32      0      0      0      1      1      1      1      1      1      2     10 
"#;

    #[test]
    fn columns_match_host() {
        // Same zones as this machine (DMA, DMA32, Normal populated): every
        // number ends in the same column as in the host's file.
        let m = boot(Arch::X86_64, 5 << 30, 2);
        let ours = render(&m.pa);
        let hostf = host("buddyinfo.txt");
        assert_eq!(ours.lines().count(), hostf.lines().count());
        for (h, o) in hostf.lines().zip(ours.lines()) {
            assert_eq!(h[..21], o[..21], "zone labels differ");
            assert_eq!(h.len(), o.len(), "{h:?} vs {o:?}");
            assert_eq!(token_ends(h), token_ends(o), "{h:?} vs {o:?}");
            assert!(o.ends_with(' '));
        }
    }
}
