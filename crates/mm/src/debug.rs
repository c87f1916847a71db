//! Invariant checks over the whole memory-manager state, what Linux's
//! CONFIG_DEBUG_VM and `check_new_page`/`free_pages_check` verify, but
//! exhaustively: tests call [`check_page_alloc`] after every step.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::memmap::PageFlags;
use crate::mmzone::{
    MigrateType, MAX_PAGE_ORDER, MIGRATE_PCPTYPES, NR_PAGE_ORDERS, PAGEBLOCK_ORDER,
};
use crate::mmzone::{Zone, NR_PCP_LISTS};
use crate::page_alloc::{CpuId, PageAlloc};
use crate::types::{Order, Pfn};
use crate::vmstat::ZoneStat;

/// A broken invariant, described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebugError(pub String);

impl core::fmt::Display for DebugError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            return Err(DebugError(format!($($arg)*)));
        }
    };
}

/// Marks `[pfn, pfn+n)` as owned once in a per-zone bitmap; fails on overlap.
fn claim(seen: &mut [u64], zone: &Zone, pfn: Pfn, n: u64, what: &str) -> Result<(), DebugError> {
    for p in pfn.0..pfn.0 + n {
        ensure!(
            zone.spans(Pfn(p)),
            "{what} page {p:#x} outside zone {}",
            zone.ztype.name()
        );
        let i = (p - zone.start_pfn.0) as usize;
        ensure!(
            seen[i / 64] & (1 << (i % 64)) == 0,
            "page {p:#x} owned twice ({what})"
        );
        seen[i / 64] |= 1 << (i % 64);
    }
    Ok(())
}

/// Checks every zone: each free block heads the list of its order and of its
/// pageblock's migrate type, is order-aligned and inside the zone, and is
/// listed once; no page is both free and on a per-CPU list; no two free
/// buddies of one order are left unmerged; per-order, per-type and per-zone
/// free counts match the lists; per-CPU counts match their lists; and free +
/// per-CPU + allocated + reserved pages account for every present page.
pub fn check_page_alloc(pa: &PageAlloc) -> Result<(), DebugError> {
    for zone in pa.zones() {
        if zone.spanned == 0 {
            continue;
        }
        let mut seen = vec![0u64; (zone.spanned as usize).div_ceil(64)];
        let mut pcp_pages = 0;
        for c in 0..zone.nr_cpus() {
            let (lists, count) = zone.pcp_lists(CpuId(c));
            let mut sum = 0;
            for (i, l) in lists.iter().enumerate() {
                for pfn in l.iter(zone.memmap()) {
                    let page = zone.page(pfn);
                    let order = Order(page.private() as u8);
                    ensure!(page.test(PageFlags::PCP), "pcp page {pfn:?} lacks PCP tag");
                    ensure!(
                        !page.test(PageFlags::BUDDY),
                        "pcp page {pfn:?} is also buddy"
                    );
                    let want = if i == NR_PCP_LISTS - 1 {
                        order.0 == PAGEBLOCK_ORDER
                    } else {
                        order.idx() == i / MIGRATE_PCPTYPES
                    };
                    ensure!(want, "pcp page {pfn:?} of order {} on list {i}", order.0);
                    ensure!(
                        pfn.is_aligned(order),
                        "pcp page {pfn:?} not aligned to order {}",
                        order.0
                    );
                    claim(&mut seen, zone, pfn, order.pages(), "pcp")?;
                    sum += order.pages();
                }
            }
            ensure!(
                sum == count,
                "cpu {c} zone {}: pcp count {count} but lists hold {sum}",
                zone.ztype.name()
            );
            pcp_pages += sum;
        }
        let area = zone.lock_area();
        let mut free = 0u64;
        for order in 0..NR_PAGE_ORDERS {
            for mt in MigrateType::ALL {
                let mut n = 0;
                for pfn in area.list(order, mt).iter(zone.memmap()) {
                    let page = zone.page(pfn);
                    ensure!(
                        page.test(PageFlags::BUDDY),
                        "free page {pfn:?} lacks the buddy tag"
                    );
                    ensure!(
                        page.private() == order as u64,
                        "free page {pfn:?} on order-{order} list records order {}",
                        page.private()
                    );
                    ensure!(
                        pfn.is_aligned(Order(order as u8)),
                        "free block {pfn:?} not aligned to order {order}"
                    );
                    ensure!(
                        zone.pageblock_mt(pfn) == mt,
                        "free block {pfn:?} on {} list in a {} pageblock",
                        mt.name(),
                        zone.pageblock_mt(pfn).name()
                    );
                    ensure!(
                        !page.test(PageFlags::RESERVED),
                        "reserved page {pfn:?} on a free list"
                    );
                    claim(&mut seen, zone, pfn, 1 << order, "free")?;
                    if order < MAX_PAGE_ORDER as usize {
                        let buddy = Pfn(pfn.0 ^ (1 << order));
                        let bp = zone.spans(buddy).then(|| zone.page(buddy));
                        let merge_blocked = order >= PAGEBLOCK_ORDER as usize
                            && (mt.idx() >= MIGRATE_PCPTYPES
                                || zone.pageblock_mt(buddy).idx() >= MIGRATE_PCPTYPES);
                        ensure!(
                            merge_blocked
                                || !bp.is_some_and(
                                    |b| b.test(PageFlags::BUDDY) && b.private() == order as u64
                                ),
                            "free buddies {pfn:?} and {buddy:?} of order {order} left unmerged"
                        );
                    }
                    n += 1;
                }
                let deferred: u64 =
                    if order == MAX_PAGE_ORDER as usize && mt == MigrateType::Movable {
                        area.deferred()
                            .map(|(s, e)| (e.0 - s.0) >> MAX_PAGE_ORDER)
                            .sum()
                    } else {
                        0
                    };
                ensure!(
                    area.nr_free(order, mt) == n + deferred,
                    "zone {} order {order} {}: nr_free {} but list holds {n} (+{deferred} deferred)",
                    zone.ztype.name(),
                    mt.name(),
                    area.nr_free(order, mt)
                );
                free += (n + deferred) << order;
            }
        }
        for order in 0..NR_PAGE_ORDERS {
            let pcp_types: u64 = (0..MIGRATE_PCPTYPES)
                .map(|i| area.nr_free(order, MigrateType::ALL[i]))
                .sum();
            let want = (pcp_types, area.nr_free(order, MigrateType::HighAtomic));
            ensure!(
                zone.free_block_summary(order) == want,
                "zone {} order {order}: lock-free summary {:?} but lists hold {want:?}",
                zone.ztype.name(),
                zone.free_block_summary(order)
            );
        }
        ensure!(
            zone.stats.get(ZoneStat::NrFreePages) == free as i64,
            "zone {}: NR_FREE_PAGES {} but lists hold {free}",
            zone.ztype.name(),
            zone.stats.get(ZoneStat::NrFreePages)
        );
        ensure!(
            free + pcp_pages + zone.allocated() == zone.managed(),
            "zone {}: free {free} + pcp {pcp_pages} + allocated {} != managed {}",
            zone.ztype.name(),
            zone.allocated(),
            zone.managed()
        );
    }
    Ok(())
}

/// Free blocks per order of every populated zone, for tests that compare
/// whole buddy states.
pub fn free_area_snapshot(pa: &PageAlloc) -> Vec<[u64; NR_PAGE_ORDERS]> {
    pa.zones()
        .filter(|z| z.is_populated())
        .map(|z| {
            let a = z.lock_area();
            core::array::from_fn(|o| a.nr_free_order(o))
        })
        .collect()
}

/// One address space as [`check_mm`] sees it.
pub struct MmView<'a> {
    /// The mm (VMAs, RSS counters, its rmap identity).
    pub mm: &'a crate::mm_types::MmStruct,
    /// Its page tables.
    pub pt: &'a crate::pgtable::PageTable,
}

/// Checks every user mapping across all address spaces (CONFIG_DEBUG_VM's
/// `page_mapcount` and rmap checks, exhaustively): each pte lies inside a
/// VMA; every mapped page's mapcount equals the number of ptes that map
/// it; its refcount is at least that (plus one when the page cache holds
/// it); each mm's RSS counters equal its ptes by kind; the rmap walk from
/// each page finds every pte that maps it; and every cached page carries
/// its mapping and index.
pub fn check_mm(
    pa: &PageAlloc,
    rmap: &crate::rmap::Rmap,
    cache: &crate::filemap::PageCache,
    zero_pfn: Option<Pfn>,
    mms: &[MmView<'_>],
) -> Result<(), DebugError> {
    use crate::memory::{page_kind, Kind};
    use crate::mm_types::RssKind;
    use crate::rmap::{MmId, PageMapping};
    use crate::types::VirtAddr;
    use alloc::collections::{BTreeMap, BTreeSet};

    let mut ptes: BTreeMap<Pfn, BTreeSet<(MmId, u64)>> = BTreeMap::new();
    for v in mms {
        let id = v.mm.link.as_ref().map(|l| l.id);
        let mut rss = [0u64; 4];
        let mut bad = None;
        v.pt.walk(VirtAddr(0), v.mm.task_size, &mut |va, pte, level| {
            if bad.is_some() {
                return;
            }
            if v.mm.vma_lookup(va).is_none() {
                bad = Some(format!(
                    "pte {:#x} at {:#x} outside every VMA",
                    pte.raw(),
                    va.0
                ));
                return;
            }
            if level != 1 || !pte.maps_page() {
                if pte.is_swap() {
                    rss[RssKind::Swap as usize] += 1;
                }
                return;
            }
            let pfn = pte.pfn();
            let Some(page) = pa.page(pfn) else {
                bad = Some(format!(
                    "pte at {:#x} maps pfn {:#x} outside RAM",
                    va.0, pfn.0
                ));
                return;
            };
            let kind = page_kind(zero_pfn, pfn, page);
            let r = match kind {
                Kind::Zero => return,
                Kind::Anon => RssKind::Anon,
                Kind::Shmem => RssKind::Shmem,
                Kind::File => RssKind::File,
            };
            rss[r as usize] += 1;
            if let Some(id) = id {
                ptes.entry(pfn).or_default().insert((id, va.0));
            }
        });
        if let Some(b) = bad {
            return Err(DebugError(b));
        }
        let have = v.mm.rss.all();
        ensure!(
            have == rss,
            "mm {:?}: RSS counters [file, anon, swap, shmem] {:?} but ptes give {:?}",
            id,
            have,
            rss
        );
    }
    let cached: BTreeMap<Pfn, (crate::rmap::MappingId, u64)> = cache
        .mappings()
        .into_iter()
        .flat_map(|(m, _, _)| cache.pages(m).into_iter().map(move |(i, p)| (p, (m, i))))
        .collect();
    for (&pfn, &(m, i)) in &cached {
        let page = pa
            .page(pfn)
            .ok_or_else(|| DebugError(format!("cached pfn {pfn:?} outside RAM")))?;
        ensure!(
            PageMapping::decode(page.mapping()) == PageMapping::File(m) && page.index() == i,
            "cached page {pfn:?} has mapping {:#x} index {} but sits at {m:?} index {i}",
            page.mapping(),
            page.index()
        );
        ensure!(
            page.refcount() >= 1,
            "cached page {pfn:?} holds no reference"
        );
    }
    for (&pfn, at) in &ptes {
        let page = pa
            .page(pfn)
            .ok_or_else(|| DebugError(format!("pfn {pfn:?}")))?;
        let n = at.len() as i32;
        ensure!(
            page.mapcount() == n,
            "page {pfn:?}: mapcount {} but {} ptes map it ({:?})",
            page.mapcount(),
            n,
            at
        );
        let min_ref = n + i32::from(cached.contains_key(&pfn));
        ensure!(
            page.refcount() >= min_ref,
            "page {pfn:?}: refcount {} below its {} mappings and cache reference",
            page.refcount(),
            min_ref
        );
        let mapping = PageMapping::decode(page.mapping());
        let found: BTreeSet<(MmId, u64)> = rmap
            .mapped_ptes(pa.direct_map(), mapping, page.index(), pfn)
            .into_iter()
            .map(|(h, _)| (h.mm, h.va.0))
            .collect();
        ensure!(
            &found == at,
            "page {pfn:?} ({mapping:?} index {:#x}): rmap walk finds {:?} but ptes are {:?}",
            page.index(),
            found,
            at
        );
    }
    Ok(())
}

/// Checks reclaim's state (CONFIG_DEBUG_VM's swap and LRU checks): every
/// node's LRU lists are consistent with their pages' flags and counters;
/// every swap slot in use has exactly as many references as there are
/// swap ptes naming it in all address spaces and shmem entries, and SWAP_HAS_CACHE iff the
/// swap cache holds a page for it; every swap-cache page has PG_swapcache
/// and its entry; no swap pte names a free slot.
pub fn check_reclaim(
    pa: &PageAlloc,
    swap: &crate::swap_state::SwapState,
    shmem_swapped: &[crate::arch::pte::SwapEntry],
    mms: &[MmView<'_>],
) -> Result<(), DebugError> {
    use crate::arch::pte::SwapEntry;
    use crate::memmap::PageFlags;
    use crate::types::VirtAddr;
    use alloc::collections::BTreeMap;

    for node in &pa.nodes {
        crate::swap::check_lruvec(node).map_err(DebugError)?;
    }
    let mut refs: BTreeMap<SwapEntry, u32> = BTreeMap::new();
    for v in mms {
        let mode = v.pt.mode();
        v.pt.walk(VirtAddr(0), v.mm.task_size, &mut |_, pte, level| {
            if level == 1 {
                if let Some(e) = pte.swap_entry(mode) {
                    *refs.entry(e).or_default() += 1;
                }
            }
        });
    }
    for e in shmem_swapped {
        *refs.entry(*e).or_default() += 1;
    }
    let cached: BTreeMap<SwapEntry, Pfn> = swap.cached().into_iter().collect();
    for (&e, &pfn) in &cached {
        let page = pa
            .page(pfn)
            .ok_or_else(|| DebugError(format!("swap cache {e:?} holds pfn {pfn:?} outside RAM")))?;
        ensure!(
            page.test(PageFlags::SWAPCACHE) && swap.entry_of(page) == e,
            "swap-cache page {pfn:?} for {e:?}: flags {:#x}, entry {:?}",
            page.flags().0,
            swap.entry_of(page)
        );
        ensure!(
            page.refcount() >= 1,
            "swap-cache page {pfn:?} holds no reference"
        );
    }
    for d in swap.table.devices() {
        for e in swap.table.in_use_entries(d.ty) {
            let want = refs.get(&e).copied().unwrap_or(0);
            ensure!(
                swap.table.swap_count(e) == want,
                "swap slot {e:?}: count {} but {want} swap ptes name it",
                swap.table.swap_count(e)
            );
            ensure!(
                swap.table.has_cache(e) == cached.contains_key(&e),
                "swap slot {e:?}: SWAP_HAS_CACHE {} but the swap cache {} it",
                swap.table.has_cache(e),
                if cached.contains_key(&e) {
                    "holds"
                } else {
                    "lacks"
                }
            );
        }
    }
    for (e, n) in &refs {
        ensure!(
            swap.table.swap_count(*e) == *n,
            "{n} swap ptes name {e:?}, whose count is {}",
            swap.table.swap_count(*e)
        );
    }
    Ok(())
}
