//! Page-table pages from the buddy allocator, tagged and accounted in
//! NR_PAGE_TABLE_PAGES (the PageTables line of meminfo). Mirrors
//! include/asm-generic/pgalloc.h (`pte_alloc_one`, `pgd_alloc`) and
//! `pagetable_alloc`/`pagetable_free`.

use crate::gfp::Gfp;
use crate::memmap::PageFlags;
use crate::page_alloc::{CpuId, PageAlloc};
use crate::pgtable::PgtableAlloc;
use crate::types::{Order, Pfn};
use crate::vmstat::NodeStat;

/// Hands out page-table frames on behalf of `cpu`.
pub struct PgtableFrames<'a> {
    /// The allocator.
    pub pa: &'a PageAlloc,
    /// The CPU doing the work.
    pub cpu: CpuId,
}

impl PgtableAlloc for PgtableFrames<'_> {
    fn alloc_table(&mut self) -> Option<Pfn> {
        // GFP_PGTABLE_USER: GFP_KERNEL_ACCOUNT (no highmem page tables:
        // CONFIG_HIGHPTE is off). The table code clears the frame itself.
        let pfn = self
            .pa
            .alloc_pages(self.cpu, Gfp::KERNEL_ACCOUNT, Order(0))?;
        let page = self.pa.page(pfn)?;
        page.set(PageFlags::PGTABLE);
        self.pa.nodes[page.nid() as usize]
            .stats
            .add(NodeStat::NrPageTablePages, 1);
        Some(pfn)
    }

    fn free_table(&mut self, pfn: Pfn) {
        if let Some(page) = self.pa.page(pfn) {
            page.clear(PageFlags::PGTABLE);
            self.pa.nodes[page.nid() as usize]
                .stats
                .add(NodeStat::NrPageTablePages, -1);
            self.pa.free_pages(self.cpu, pfn, Order(0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::pte::{PagingMode, PteFlags};
    use crate::arch::Arch;
    use crate::mm_init::testing::boot;
    use crate::pgtable::PageTable;
    use crate::types::{PhysAddr, VirtAddr};

    #[test]
    fn tables_are_accounted_and_returned() {
        let m = boot(Arch::X86_64, 64 << 20, 1);
        let mut a = PgtableFrames {
            pa: &m.pa,
            cpu: CpuId(0),
        };
        let free0 = m.pa.nr_free_pages() + m.pa.nr_pcp_pages();
        let kernel = PageTable::new_kernel(
            m.pa.direct_map(),
            &mut a,
            PagingMode::X86_64L4,
            PhysAddr(64 << 20),
        )
        .unwrap();
        let mut user = PageTable::new_user(&kernel, &mut a).unwrap();
        let pfn =
            m.pa.alloc_pages(CpuId(0), Gfp::HIGHUSER_MOVABLE, Order(0))
                .unwrap();
        user.map(
            &mut a,
            VirtAddr(0x40_0000),
            pfn,
            PteFlags::PRESENT | PteFlags::USER,
        )
        .unwrap();
        let tables = m.pa.nodes[0].stats.get(NodeStat::NrPageTablePages);
        assert_eq!(tables as u64, kernel.count_tables() + user.count_tables());
        user.destroy(&mut a);
        m.pa.free_pages(CpuId(0), pfn, Order(0));
        assert_eq!(
            m.pa.nodes[0].stats.get(NodeStat::NrPageTablePages) as u64,
            kernel.count_tables()
        );
        kernel.destroy(&mut a);
        assert_eq!(m.pa.nodes[0].stats.get(NodeStat::NrPageTablePages), 0);
        assert_eq!(m.pa.nr_free_pages() + m.pa.nr_pcp_pages(), free0);
        crate::debug::check_page_alloc(&m.pa).unwrap();
    }
}
