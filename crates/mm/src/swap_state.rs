//! The swap cache: anonymous pages on their way to or back from swap,
//! indexed by swap entry, with the shadow entries evicted pages leave;
//! swap-in with cluster readahead (`vm.page-cluster`); swap slots freed
//! with their last reference. Mirrors mm/swap_state.c (`add_to_swap`,
//! `add_to_swap_cache`, `__delete_from_swap_cache`,
//! `swap_cluster_readahead`, `free_swap_and_cache`, `folio_free_swap`)
//! and mm/page_io.c (`swap_writepage`, `swap_read_folio`).
//!
//! A page in the swap cache has PG_swapcache, holds one reference for the
//! cache and its entry in `page->private` (Linux: `folio->swap`); its slot
//! carries SWAP_HAS_CACHE in the swap map.
//!
//! Simplifications: the index is one `BTreeMap` (Linux: one XArray per
//! 64 MiB of swap); I/O is synchronous; readahead is the fixed aligned
//! window of `2^page_cluster` slots (no VMA-based readahead, which Linux
//! uses only on SSD-backed swap when `swap_vma_readahead` is on).

use alloc::collections::BTreeMap;
use core::sync::atomic::{AtomicU32, Ordering::Relaxed};

use crate::arch::pte::SwapEntry;
use crate::errno::Errno;
use crate::gfp::Gfp;
use crate::memmap::{Page, PageFlags};
use crate::page_alloc::{CpuId, PageAlloc};
use crate::swapfile::SwapTable;
use crate::trace::Event;
use crate::types::{Order, Pfn, PAGE_SIZE};
use crate::vmstat::{NodeStat, VmEvent};

/// vm.page-cluster default: swap readahead reads 2^3 = 8 slots.
pub const DEFAULT_PAGE_CLUSTER: u32 = 3;

#[derive(Default)]
struct Index {
    pages: BTreeMap<SwapEntry, Pfn>,
    shadows: BTreeMap<SwapEntry, u64>,
}

/// The machine's swap: its devices and the swap cache.
pub struct SwapState {
    /// The swap devices and their maps.
    pub table: SwapTable,
    index: spin::Mutex<Index>,
    /// vm.page-cluster.
    pub page_cluster: AtomicU32,
}

impl Default for SwapState {
    fn default() -> Self {
        SwapState::new()
    }
}

/// Packs an entry into `page->private`.
fn encode(e: SwapEntry) -> u64 {
    ((e.ty as u64) << 58) | e.offset
}

fn decode(v: u64) -> SwapEntry {
    SwapEntry {
        ty: (v >> 58) as u8,
        offset: v & ((1 << 58) - 1),
    }
}

impl SwapState {
    /// No devices, an empty cache.
    pub fn new() -> SwapState {
        SwapState {
            table: SwapTable::new(),
            index: spin::Mutex::new(Index::default()),
            page_cluster: AtomicU32::new(DEFAULT_PAGE_CLUSTER),
        }
    }

    /// Free swap slots (`get_nr_swap_pages`).
    pub fn nr_swap_pages(&self) -> u64 {
        self.table.nr_swap_pages().max(0) as u64
    }

    /// `vm_swap_full`: less than half the swap is free.
    pub fn vm_swap_full(&self) -> bool {
        self.nr_swap_pages() * 2 < self.table.total_swap_pages().max(0) as u64
    }

    /// The entry of a swap-cache page.
    pub fn entry_of(&self, page: &Page) -> SwapEntry {
        decode(page.private())
    }

    /// Pages in the swap cache.
    pub fn nr_cached(&self) -> usize {
        self.index.lock().pages.len()
    }

    /// Every (entry, page) of the swap cache (for `mm::debug`).
    pub fn cached(&self) -> alloc::vec::Vec<(SwapEntry, Pfn)> {
        self.index
            .lock()
            .pages
            .iter()
            .map(|(&e, &p)| (e, p))
            .collect()
    }

    /// The swap-cache page of `e` (`swap_cache_get_folio`), without a reference.
    pub fn lookup(&self, e: SwapEntry) -> Option<Pfn> {
        self.index.lock().pages.get(&e).copied()
    }

    /// `add_to_swap_cache` for a slot whose SWAP_HAS_CACHE the caller
    /// holds: the cache takes a reference; returns the shadow the slot held.
    fn add_to_swap_cache(&self, pa: &PageAlloc, pfn: Pfn, e: SwapEntry) -> Option<u64> {
        let page = pa.page(pfn)?;
        page.get();
        page.set(PageFlags::SWAPCACHE | PageFlags::SWAPBACKED | PageFlags::UPTODATE);
        page.set_private(encode(e));
        pa.nodes[page.nid() as usize]
            .stats
            .add(NodeStat::NrSwapcached, 1);
        let mut ix = self.index.lock();
        ix.pages.insert(e, pfn);
        ix.shadows.remove(&e)
    }

    /// `add_to_swap`: gives an anonymous page a swap slot and puts it in
    /// the swap cache, dirty so that it is written before it is freed.
    /// `None` if swap is full (or there is none).
    pub fn add_to_swap(&self, pa: &PageAlloc, cpu: CpuId, pfn: Pfn) -> Option<SwapEntry> {
        let e = self.table.get_swap_page(cpu.0)?;
        self.add_to_swap_cache(pa, pfn, e);
        if let Some(p) = pa.page(pfn) {
            p.set(PageFlags::DIRTY);
        }
        Some(e)
    }

    /// `__delete_from_swap_cache` + `put_swap_folio`: the page leaves the
    /// cache (leaving `shadow` in its slot if reclaim evicted it), its
    /// slot loses SWAP_HAS_CACHE (and is freed if no pte refers to it),
    /// and the cache's reference is put.
    pub fn delete_from_swap_cache(
        &self,
        pa: &PageAlloc,
        cpu: CpuId,
        pfn: Pfn,
        shadow: Option<u64>,
    ) {
        let Some(page) = pa.page(pfn) else { return };
        let e = decode(page.private());
        {
            let mut ix = self.index.lock();
            ix.pages.remove(&e);
            if let Some(s) = shadow {
                if self.table.swap_count(e) > 0 {
                    ix.shadows.insert(e, s);
                }
            }
        }
        page.clear(PageFlags::SWAPCACHE);
        page.set_private(0);
        pa.nodes[page.nid() as usize]
            .stats
            .add(NodeStat::NrSwapcached, -1);
        let _ = self.table.swapcache_clear(e);
        crate::memory::put_page(pa, cpu, pfn);
    }

    /// `swap_writepage`: writes a swap-cache page to its slot and cleans it
    /// (`pswpout`).
    pub fn swap_writepage(&self, pa: &PageAlloc, cpu: CpuId, pfn: Pfn) -> Result<(), Errno> {
        let page = pa.page(pfn).ok_or(Errno::EINVAL)?;
        let e = decode(page.private());
        let mut buf = [0u8; PAGE_SIZE as usize];
        pa.direct_map().read(pfn.phys(), &mut buf);
        self.table.swap_writepage(e, &buf)?;
        let (ty, offset) = (e.ty as u32, e.offset);
        pa.trace
            .emit(cpu, || Event::SwapWriteFolio { pfn, ty, offset });
        page.clear(PageFlags::DIRTY);
        pa.events.count_on(cpu.0, VmEvent::Pswpout, 1);
        Ok(())
    }

    /// Reads slot `e` into a fresh page and puts it in the swap cache (the
    /// slot's SWAP_HAS_CACHE must be ours), with the refault test on the
    /// shadow it held; the page goes on the LRU. Counts `pswpin`.
    fn read_into_cache(&self, pa: &PageAlloc, cpu: CpuId, e: SwapEntry) -> Result<Pfn, Errno> {
        let Some(pfn) = pa.alloc_pages(cpu, Gfp::HIGHUSER_MOVABLE, Order(0)) else {
            let _ = self.table.swapcache_clear(e);
            return Err(Errno::ENOMEM);
        };
        let mut buf = [0u8; PAGE_SIZE as usize];
        if let Err(err) = self.table.swap_readpage(e, &mut buf) {
            let _ = self.table.swapcache_clear(e);
            pa.free_pages(cpu, pfn, Order(0));
            return Err(err);
        }
        pa.direct_map().write(pfn.phys(), &buf);
        let (ty, offset) = (e.ty as u32, e.offset);
        pa.trace
            .emit(cpu, || Event::SwapReadFolio { pfn, ty, offset });
        if let Some(p) = pa.page(pfn) {
            p.set(PageFlags::SWAPBACKED);
        }
        let shadow = self.add_to_swap_cache(pa, pfn, e);
        if let Some(s) = shadow {
            crate::workingset::workingset_refault(pa, pfn, s, true);
        }
        crate::swap::folio_add_lru(pa, cpu, pfn);
        // The allocation's reference goes; the cache's and the batch's stay.
        crate::memory::put_page(pa, cpu, pfn);
        pa.events.count_on(cpu.0, VmEvent::Pswpin, 1);
        Ok(pfn)
    }

    /// `swapin_readahead` → `swap_cluster_readahead`: the page of `e`, from
    /// the swap cache or read with the in-use slots of its aligned
    /// `2^page_cluster` window, with a reference for the caller. The bool
    /// is true if I/O was needed (a major fault).
    pub fn swapin(&self, pa: &PageAlloc, cpu: CpuId, e: SwapEntry) -> Result<(Pfn, bool), Errno> {
        if let Some(pfn) = self.lookup(e) {
            pa.page(pfn).ok_or(Errno::EINVAL)?.get();
            return Ok((pfn, false));
        }
        let win = 1u64 << self.page_cluster.load(Relaxed).min(10);
        let start = e.offset & !(win - 1);
        for off in start..start + win {
            let ra = SwapEntry {
                ty: e.ty,
                offset: off,
            };
            if ra == e || self.table.swap_count(ra) == 0 {
                continue;
            }
            // Best effort: a slot busy in the cache, or no memory, is skipped.
            if self.table.swapcache_prepare(ra).is_ok() {
                let _ = self.read_into_cache(pa, cpu, ra);
            }
        }
        self.table.swapcache_prepare(e)?;
        let pfn = self.read_into_cache(pa, cpu, e)?;
        pa.page(pfn).ok_or(Errno::EINVAL)?.get();
        Ok((pfn, true))
    }

    /// `folio_free_swap`: if no pte refers to the slot of a swap-cache page
    /// any more, the page leaves the cache and the slot is freed (the page
    /// is then only in memory, and must be dirty). Returns true if it did.
    pub fn folio_free_swap(&self, pa: &PageAlloc, cpu: CpuId, pfn: Pfn) -> bool {
        let Some(page) = pa.page(pfn) else {
            return false;
        };
        if !page.test(PageFlags::SWAPCACHE) || self.table.swap_count(decode(page.private())) > 0 {
            return false;
        }
        page.set(PageFlags::DIRTY);
        self.delete_from_swap_cache(pa, cpu, pfn, None);
        true
    }

    /// `free_swap_and_cache`: a swap pte went away (zap, exit). Drops its
    /// reference to the slot; if only the swap cache still holds the slot
    /// and no pte maps the page (or swap is getting full), the page leaves
    /// the swap cache and the slot is freed (`__try_to_reclaim_swap` with
    /// TTRS_UNMAPPED | TTRS_FULL: either condition is enough).
    pub fn free_swap_and_cache(&self, pa: &PageAlloc, cpu: CpuId, e: SwapEntry) {
        let _ = self.table.swap_free(e);
        if self.table.swap_count(e) > 0 {
            return;
        }
        self.index.lock().shadows.remove(&e);
        let Some(pfn) = self.lookup(e) else { return };
        let Some(page) = pa.page(pfn) else { return };
        if page.mapcount() == 0 || self.vm_swap_full() {
            self.delete_from_swap_cache(pa, cpu, pfn, None);
        }
    }

    /// `swap_duplicate`: one more pte refers to `e` (fork, unmap).
    pub fn swap_duplicate(&self, e: SwapEntry) -> Result<(), Errno> {
        self.table.swap_duplicate(e)
    }
}
