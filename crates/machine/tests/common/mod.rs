//! Checks shared by the machine's integration tests.
#![allow(dead_code)]

use machine::Machine;
use mm::debug::check_page_alloc;
use mm::mm_types::RssKind;
use mm::types::PAGE_SIZE;
use mm::vmstat::NodeStat;

/// Top of the x86-64 user stack: every user mapping lies below it.
pub const STACK_TOP: u64 = 0x7fff_ffff_f000;

/// Free pages plus the pages slab caches and the page cache hold: a
/// process's kernel objects (task_struct, vm_area_struct, ...) go back to
/// their caches at exit, and the caches keep their now-empty slabs, as
/// SLUB does; the file pages it read stay cached, as in Linux; and the
/// kernel stacks each CPU keeps for its next task (VMAP_STACK's
/// `cached_stacks`).
pub fn free_pages(m: &Machine) -> u64 {
    m.pa().nr_free_pages() + m.pa().nr_pcp_pages() + cached(m)
}

/// Pages the slab caches, the page cache and the per-CPU stack caches hold.
fn cached(m: &Machine) -> u64 {
    let slab: i64 = m
        .pa()
        .nodes
        .iter()
        .map(|n| {
            n.stats.get(NodeStat::NrSlabReclaimable)
                + n.stats.get(NodeStat::NrSlabUnreclaimable)
                + n.stats.get(NodeStat::NrFilePages)
        })
        .sum();
    slab as u64 + m.cached_stack_pages()
}

/// The page allocator's invariants, each process's VMA invariants, and
/// RSS counters and page-table bytes that agree with a walk of its tables.
pub fn check(m: &Machine) {
    if let Err(e) = m.check() {
        panic!("mm::debug: {e}");
    }
    check_page_alloc(m.pa()).unwrap();
    for p in m.processes().values() {
        p.mm.check_invariants().unwrap();
        // RSS counters match the page tables.
        let mut anon = 0;
        let mut file = 0;
        let mut shmem = 0;
        let zero = m.tasks().zero_pfn.unwrap();
        p.pt.walk(mm::VirtAddr(0), p.mm.task_size, &mut |_, pte, _| {
            if !pte.maps_page() || pte.pfn() == zero {
                return;
            }
            let page = m.pa().page(pte.pfn()).unwrap();
            if page.mapping() & 1 != 0 {
                anon += 1;
            } else if page.test(mm::memmap::PageFlags::SWAPBACKED) {
                shmem += 1;
            } else {
                file += 1;
            }
        });
        assert_eq!(p.mm.rss.get(RssKind::Anon), anon, "anon rss");
        assert_eq!(p.mm.rss.get(RssKind::File), file, "file rss");
        assert_eq!(p.mm.rss.get(RssKind::Shmem), shmem, "shmem rss");
        assert_eq!(p.mm.pgtables_bytes, (p.pt.count_tables() - 1) * PAGE_SIZE);
    }
}
