//! The page cache: one `address_space` per inode holding its pages by
//! index, filled by reads with readahead, dirtied by writes and shared
//! mappings, written back by msync/fsync, cut by truncate. Mirrors
//! mm/filemap.c (`filemap_get_folio`, `filemap_add_folio`,
//! `filemap_fault`, `filemap_map_pages`), mm/readahead.c
//! (`page_cache_ra_unbounded`, `do_sync_mmap_readahead`'s read-around),
//! mm/page-writeback.c and mm/truncate.c, with shmem's `shmem_get_folio`.
//!
//! A cached page holds one reference for the cache and one per pte that
//! maps it; `page->mapping` is the address_space ([`MappingId`]) and
//! `page->index` the page's offset in the file.
//!
//! Simplifications: the index is a `BTreeMap` (Linux: an XArray);
//! readahead is the synchronous window only (no async PG_readahead marker
//! and no window ramp-up: every read-around reads `ra_pages` pages, the
//! default 128 KiB); pages stay cached until truncation or eviction of the
//! inode (reclaim of clean cache pages is the next step); writeback is
//! synchronous.

use alloc::collections::BTreeMap;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;

use crate::arch::pte::SwapEntry;
use crate::errno::Errno;
use crate::file::{FileRef, OpenFile};
use crate::gfp::Gfp;
use crate::memmap::PageFlags;
use crate::page_alloc::{CpuId, PageAlloc};
use crate::rmap::{MappingId, PageMapping};
use crate::swap_state::SwapState;
use crate::types::{Order, Pfn, PAGE_SHIFT, PAGE_SIZE};
use crate::vmstat::NodeStat;

/// Default readahead window: `VM_READAHEAD_PAGES` (128 KiB), what
/// `/sys/block/*/queue/read_ahead_kb` shows for our disks.
pub const RA_PAGES: u64 = 32;

/// The identity of an inode across opens: (device, inode number).
pub type InodeKey = ((u32, u32), u64);

/// One inode's cached pages (`struct address_space`).
struct AddressSpace {
    key: InodeKey,
    /// The file, for writeback and readahead by whoever holds only the
    /// mapping (reclaim); dead once every opener and mapping is gone.
    file: Weak<dyn OpenFile>,
    pages: BTreeMap<u64, Pfn>,
    /// Shadow entries of evicted pages, by index (mm/workingset.c).
    shadows: BTreeMap<u64, u64>,
    /// Shmem pages on swap, by index: the swap entries shmem keeps in its
    /// mapping in place of the pages (each holds a count on its slot).
    swapped: BTreeMap<u64, SwapEntry>,
}

#[derive(Default)]
struct CacheState {
    by_key: BTreeMap<InodeKey, MappingId>,
    spaces: BTreeMap<MappingId, AddressSpace>,
    /// The shmem mappings: the only ones [`PageCache::reap`] looks at.
    shmem: alloc::collections::BTreeSet<MappingId>,
    next: u64,
    next_ino: u64,
}

/// The machine-wide page cache.
#[derive(Default)]
pub struct PageCache {
    state: spin::Mutex<CacheState>,
    /// Shmem address spaces in `state` (changed under its lock), so that
    /// [`PageCache::reap`] takes no lock when there are none.
    nr_shmem: core::sync::atomic::AtomicUsize,
    /// Swap, for shmem pages (set once the machine has it).
    swap: spin::Once<Arc<SwapState>>,
}

impl core::fmt::Debug for PageCache {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let s = self.state.lock();
        f.debug_struct("PageCache")
            .field("inodes", &s.spaces.len())
            .finish()
    }
}

/// The readahead a miss triggers.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Readahead {
    /// Only the page (MADV_RANDOM, a write).
    None,
    /// [`RA_PAGES`] centred on the page: `do_sync_mmap_readahead`'s
    /// read-around for a mapping fault.
    Around,
    /// [`RA_PAGES`] from the page on: a sequential `read()` or a
    /// MADV_SEQUENTIAL mapping (`page_cache_sync_ra`).
    Forward,
}

/// Where a page came from on a fault or read (the fault's `VM_FAULT_MAJOR`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// It was cached: a minor fault.
    Cached,
    /// It was read from the backing store: a major fault.
    Read,
    /// A shmem page made without I/O.
    Created,
}

impl PageCache {
    /// An empty cache.
    pub fn new() -> PageCache {
        PageCache::default()
    }

    /// Gives shmem the machine's swap (once).
    pub fn set_swap(&self, swap: Arc<SwapState>) {
        self.swap.call_once(|| swap);
    }

    /// Every shmem swap entry (for `mm::debug`'s swap counts).
    pub fn shmem_swapped(&self) -> Vec<SwapEntry> {
        self.state
            .lock()
            .spaces
            .values()
            .flat_map(|s| s.swapped.values().copied())
            .collect()
    }

    /// `shmem_writeout`: a clean-of-ptes shmem page reclaim chose goes to
    /// swap: a slot (with a count for the entry shmem keeps), the bytes
    /// written, the page out of the cache with the entry in its place
    /// (`pswpout`). The caller frees the page. EAGAIN-like `false` if swap
    /// is full or absent.
    pub fn shmem_writeout(&self, pa: &PageAlloc, cpu: CpuId, pfn: Pfn) -> bool {
        let Some(swap) = self.swap.get() else {
            return false;
        };
        let Some(page) = pa.page(pfn) else {
            return false;
        };
        let PageMapping::File(m) = PageMapping::decode(page.mapping()) else {
            return false;
        };
        let Some(e) = swap.table.get_swap_page(cpu.0) else {
            return false;
        };
        let mut buf = [0u8; PAGE_SIZE as usize];
        pa.direct_map().read(pfn.phys(), &mut buf);
        if swap.table.swap_duplicate(e).is_err() || swap.table.swap_writepage(e, &buf).is_err() {
            let _ = swap.table.swap_free(e);
            let _ = swap.table.swapcache_clear(e);
            return false;
        }
        let _ = swap.table.swapcache_clear(e);
        let index = page.index();
        {
            let mut s = self.state.lock();
            let Some(sp) = s.spaces.get_mut(&m) else {
                return false;
            };
            sp.pages.remove(&index);
            sp.swapped.insert(index, e);
        }
        self.delete_from_cache(pa, pfn);
        pa.events
            .count_on(cpu.0, crate::vmstat::VmEvent::Pswpout, 1);
        crate::memory::put_page(pa, cpu, pfn);
        true
    }

    /// `shmem_swapin_folio`: page `index` of shmem mapping `m` comes back
    /// from swap into a new page in the cache; its slot count is dropped
    /// (`pswpin`). `None` if the index is not on swap.
    fn shmem_swapin(
        &self,
        pa: &PageAlloc,
        cpu: CpuId,
        m: MappingId,
        index: u64,
    ) -> Option<Result<Pfn, Errno>> {
        let e = *self.state.lock().spaces.get(&m)?.swapped.get(&index)?;
        let swap = self.swap.get()?;
        let Some(pfn) = pa.alloc_pages(cpu, Gfp::HIGHUSER_MOVABLE, Order(0)) else {
            return Some(Err(Errno::ENOMEM));
        };
        let mut buf = [0u8; PAGE_SIZE as usize];
        if let Err(err) = swap.table.swap_readpage(e, &mut buf) {
            pa.free_pages(cpu, pfn, Order(0));
            return Some(Err(err));
        }
        pa.direct_map().write(pfn.phys(), &buf);
        if let Some(sp) = self.state.lock().spaces.get_mut(&m) {
            sp.swapped.remove(&index);
        }
        let _ = swap.table.swap_free(e);
        self.add(pa, cpu, m, index, pfn, true);
        if let Some(p) = pa.page(pfn) {
            p.set(PageFlags::DIRTY);
        }
        pa.events.count_on(cpu.0, crate::vmstat::VmEvent::Pswpin, 1);
        Some(Ok(pfn))
    }

    /// The page at `index` of `m` if it exists, in the cache or (shmem) on
    /// swap, which brings it back (`shmem_get_folio` with SGP_READ: a hole
    /// stays a hole). No reference is taken.
    pub fn find_or_swapin(
        &self,
        pa: &PageAlloc,
        cpu: CpuId,
        m: MappingId,
        index: u64,
    ) -> Result<Option<Pfn>, Errno> {
        if let Some(p) = self.find(m, index) {
            return Ok(Some(p));
        }
        self.shmem_swapin(pa, cpu, m, index).transpose()
    }

    /// Swapoff's `shmem_unuse`: every shmem page on swap type `ty` comes
    /// back into memory. ENOMEM if memory runs out.
    pub fn shmem_unuse(&self, pa: &PageAlloc, cpu: CpuId, ty: u8) -> Result<(), Errno> {
        let todo: Vec<(MappingId, u64)> = self
            .state
            .lock()
            .spaces
            .iter()
            .flat_map(|(&m, sp)| {
                sp.swapped
                    .iter()
                    .filter(|(_, e)| e.ty == ty)
                    .map(move |(&i, _)| (m, i))
            })
            .collect();
        for (m, i) in todo {
            if let Some(r) = self.shmem_swapin(pa, cpu, m, i) {
                r?;
            }
        }
        Ok(())
    }

    /// A fresh shmem inode number (`get_next_ino`), from 1.
    pub fn new_shmem_ino(&self) -> u64 {
        let mut s = self.state.lock();
        s.next_ino += 1;
        s.next_ino
    }

    /// The address_space of `file`'s inode, made on first use.
    pub fn mapping_of(&self, file: &FileRef) -> MappingId {
        let key = (file.dev(), file.ino());
        let mut s = self.state.lock();
        if let Some(&m) = s.by_key.get(&key) {
            if let Some(sp) = s.spaces.get_mut(&m) {
                // Writeback needs an opener that may write: one replaces
                // a read-only one (or a dead one).
                let better = match sp.file.upgrade() {
                    None => true,
                    Some(old) => file.writable() && !old.writable(),
                };
                if better {
                    sp.file = Arc::downgrade(file);
                }
            }
            return m;
        }
        s.next += 1;
        let m = MappingId(s.next);
        s.by_key.insert(key, m);
        if file.is_shmem() {
            s.shmem.insert(m);
            self.nr_shmem
                .store(s.shmem.len(), core::sync::atomic::Ordering::Relaxed);
        }
        s.spaces.insert(
            m,
            AddressSpace {
                key,
                file: Arc::downgrade(file),
                pages: BTreeMap::new(),
                shadows: BTreeMap::new(),
                swapped: BTreeMap::new(),
            },
        );
        m
    }

    /// The address_space of the inode `key` if the cache has one (the
    /// inode is cached), without making it.
    pub fn lookup(&self, key: InodeKey) -> Option<MappingId> {
        self.state.lock().by_key.get(&key).copied()
    }

    /// An open file of mapping `m` that is still alive (`mapping->host`'s),
    /// the read-write one if there is one.
    pub fn file_of(&self, m: MappingId) -> Option<FileRef> {
        self.state.lock().spaces.get(&m)?.file.upgrade()
    }

    /// The cached page at `index` (`filemap_get_folio`), without a reference.
    pub fn find(&self, m: MappingId, index: u64) -> Option<Pfn> {
        self.state
            .lock()
            .spaces
            .get(&m)
            .and_then(|s| s.pages.get(&index).copied())
    }

    /// Number of cached pages of a mapping (`mapping->nrpages`).
    pub fn nrpages(&self, m: MappingId) -> u64 {
        self.state
            .lock()
            .spaces
            .get(&m)
            .map_or(0, |s| s.pages.len() as u64)
    }

    /// The highest index cached in a mapping, if any page is.
    pub fn last_index(&self, m: MappingId) -> Option<u64> {
        self.state
            .lock()
            .spaces
            .get(&m)
            .and_then(|s| s.pages.last_key_value().map(|(&i, _)| i))
    }

    /// Every cached page of a mapping, by index.
    pub fn pages(&self, m: MappingId) -> Vec<(u64, Pfn)> {
        self.state
            .lock()
            .spaces
            .get(&m)
            .map(|s| s.pages.iter().map(|(&i, &p)| (i, p)).collect())
            .unwrap_or_default()
    }

    /// Every mapping with its inode and cached page count (for `mm::debug`).
    pub fn mappings(&self) -> Vec<(MappingId, InodeKey, u64)> {
        self.state
            .lock()
            .spaces
            .iter()
            .map(|(&m, s)| (m, s.key, s.pages.len() as u64))
            .collect()
    }

    /// Inserts a fresh, locked-for-us page (`filemap_add_folio`): the cache
    /// takes the reference the allocation gave; counts NR_FILE_PAGES (and
    /// NR_SHMEM with PG_swapbacked for shmem); a shadow left in the slot
    /// makes it a refault (`workingset_refault`); the page goes on the LRU.
    fn add(&self, pa: &PageAlloc, cpu: CpuId, m: MappingId, index: u64, pfn: Pfn, shmem: bool) {
        if let Some(page) = pa.page(pfn) {
            page.set_mapping(PageMapping::File(m).encode());
            page.set_index(index);
            page.set(PageFlags::UPTODATE);
            let stats = &pa.nodes[page.nid() as usize].stats;
            stats.add(NodeStat::NrFilePages, 1);
            if shmem {
                page.set(PageFlags::SWAPBACKED);
                stats.add(NodeStat::NrShmem, 1);
            }
        }
        let shadow = self.state.lock().spaces.get_mut(&m).and_then(|s| {
            s.pages.insert(index, pfn);
            s.shadows.remove(&index)
        });
        if let Some(sh) = shadow {
            crate::workingset::workingset_refault(pa, pfn, sh, false);
        }
        pa.trace.emit(cpu, || {
            let (dev, ino) = self
                .state
                .lock()
                .spaces
                .get(&m)
                .map_or(((0, 0), 0), |s| s.key);
            crate::trace::Event::MmFilemapAddToPageCache {
                dev,
                ino,
                pfn,
                index,
                order: 0,
            }
        });
        crate::swap::folio_add_lru(pa, cpu, pfn);
    }

    /// Reads page `index` of `file` into a new page (`filemap_read_folio`):
    /// bytes past EOF in the last page are zero. EIO if the store fails,
    /// ENOMEM if no page.
    fn read_page(
        &self,
        pa: &PageAlloc,
        cpu: CpuId,
        file: &FileRef,
        m: MappingId,
        index: u64,
    ) -> Result<Pfn, Errno> {
        let pfn = pa
            .alloc_pages(cpu, Gfp::HIGHUSER_MOVABLE, Order(0))
            .ok_or(Errno::ENOMEM)?;
        let ok = pa.direct_map().with_frames(&[pfn], |page| {
            let n = if file.is_shmem() {
                0
            } else {
                file.read_at(index << PAGE_SHIFT, page[0])?
            };
            page[0][n..].fill(0);
            Ok::<(), Errno>(())
        });
        match ok {
            Ok(()) => {
                self.add(pa, cpu, m, index, pfn, file.is_shmem());
                Ok(pfn)
            }
            Err(e) => {
                pa.free_pages(cpu, pfn, Order(0));
                Err(e)
            }
        }
    }

    /// The page at `index`, from the cache or read, with the readahead
    /// `ra` asks for (inside EOF), holding a reference for the caller (so
    /// reclaim cannot take it away meanwhile). Shmem pages are made zeroed.
    /// SIGBUS-worthy errors: EIO from the store; the caller checks EOF.
    pub fn get_page(
        &self,
        pa: &PageAlloc,
        cpu: CpuId,
        file: &FileRef,
        index: u64,
        ra: Readahead,
    ) -> Result<(Pfn, Found), Errno> {
        let m = self.mapping_of(file);
        let got = |p: Pfn| {
            if let Some(pg) = pa.page(p) {
                pg.get();
            }
            p
        };
        if let Some(p) = self.find(m, index) {
            return Ok((got(p), Found::Cached));
        }
        if file.is_shmem() {
            if let Some(r) = self.shmem_swapin(pa, cpu, m, index) {
                return Ok((got(r?), Found::Read));
            }
            let p = self.read_page(pa, cpu, file, m, index)?;
            return Ok((got(p), Found::Created));
        }
        let p = got(self.read_page(pa, cpu, file, m, index)?);
        let start = match ra {
            Readahead::None => None,
            Readahead::Around => Some(index.saturating_sub(RA_PAGES / 2)),
            Readahead::Forward => Some(index),
        };
        if let Some(start) = start {
            let eof_pages = file.size().div_ceil(PAGE_SIZE);
            let end = (start + RA_PAGES).min(eof_pages);
            self.read_ahead(pa, cpu, file, m, index, start..end);
        }
        Ok((p, Found::Read))
    }

    /// Readahead (`page_cache_ra_unbounded`): the pages of `range` not
    /// cached, except `skip` (read already), get a page each, in index
    /// order, and each stretch of consecutive ones is read in one request
    /// ([`OpenFile::read_vectored_at`], as Linux submits one bio). Best
    /// effort: no memory ends the window; a stretch the store fails is read
    /// page by page, and a page that still fails is left out.
    /// *Simplified:* Linux adds each page to the cache as it allocates it
    /// and submits the reads after; here a stretch's pages join the cache
    /// once read, so a trace shows its allocations before its
    /// `mm_filemap_add_to_page_cache` events.
    fn read_ahead(
        &self,
        pa: &PageAlloc,
        cpu: CpuId,
        file: &FileRef,
        m: MappingId,
        skip: u64,
        range: core::ops::Range<u64>,
    ) {
        let mut run: Vec<(u64, Pfn)> = Vec::new();
        for i in range {
            if i == skip || self.find(m, i).is_some() {
                self.read_run(pa, cpu, file, m, &run);
                run.clear();
                continue;
            }
            let Some(pfn) = pa.alloc_pages(cpu, Gfp::HIGHUSER_MOVABLE, Order(0)) else {
                break;
            };
            run.push((i, pfn));
        }
        self.read_run(pa, cpu, file, m, &run);
    }

    /// Fills the fresh pages of `run` (consecutive indexes; none: nothing
    /// to do) from `file` in one request and adds them to the cache; bytes
    /// past EOF are zero.
    fn read_run(
        &self,
        pa: &PageAlloc,
        cpu: CpuId,
        file: &FileRef,
        m: MappingId,
        run: &[(u64, Pfn)],
    ) {
        let Some(&(first, _)) = run.first() else {
            return;
        };
        let pfns: Vec<Pfn> = run.iter().map(|&(_, p)| p).collect();
        let offset = first << PAGE_SHIFT;
        let read = pa.direct_map().with_frames(&pfns, |bufs| {
            let n = file.read_vectored_at(offset, bufs)?;
            let mut left = n;
            for b in bufs.iter_mut() {
                let got = left.min(b.len());
                b[got..].fill(0);
                left -= got;
            }
            Ok::<(), Errno>(())
        });
        if read.is_ok() {
            for &(i, pfn) in run {
                self.add(pa, cpu, m, i, pfn, false);
            }
            return;
        }
        for &(i, pfn) in run {
            pa.free_pages(cpu, pfn, Order(0));
            let _ = self.read_page(pa, cpu, file, m, i);
        }
    }

    /// Walks `[offset, end)` of `file` page by page through the cache,
    /// calling `f(page, physical address in it, offset into the caller's
    /// buffer, bytes)` for each piece.
    #[allow(clippy::too_many_arguments)]
    fn for_each_piece(
        &self,
        pa: &PageAlloc,
        cpu: CpuId,
        file: &FileRef,
        offset: u64,
        end: u64,
        ra: Readahead,
        f: &mut dyn FnMut(Pfn, crate::types::PhysAddr, usize, usize),
    ) -> Result<(), Errno> {
        let mut at = offset;
        while at < end {
            let (pfn, _) = self.get_page(pa, cpu, file, at >> PAGE_SHIFT, ra)?;
            let in_page = at & (PAGE_SIZE - 1);
            let n = (PAGE_SIZE - in_page).min(end - at);
            f(
                pfn,
                crate::types::PhysAddr(pfn.phys().0 + in_page),
                (at - offset) as usize,
                n as usize,
            );
            crate::swap::folio_mark_accessed(pa, cpu, pfn);
            crate::memory::put_page(pa, cpu, pfn);
            at += n;
        }
        Ok(())
    }

    /// Reads `[offset, end)` of `file` into the cache as `read(2)` would,
    /// readahead and all, without copying it anywhere (`lmm native
    /// --warm-cache` making the cache as warm as the host's).
    pub fn read_into_cache(
        &self,
        pa: &PageAlloc,
        cpu: CpuId,
        file: &FileRef,
        offset: u64,
        end: u64,
    ) -> Result<(), Errno> {
        self.for_each_piece(
            pa,
            cpu,
            file,
            offset,
            end,
            Readahead::Forward,
            &mut |_, _, _, _| {},
        )
    }

    /// `read(2)` through the cache: up to `buf.len()` bytes at `offset`,
    /// stopping at EOF. Returns the bytes read.
    pub fn read(
        &self,
        pa: &PageAlloc,
        cpu: CpuId,
        file: &FileRef,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, Errno> {
        let end = file.size().min(offset.saturating_add(buf.len() as u64));
        let dm = pa.direct_map();
        self.for_each_piece(
            pa,
            cpu,
            file,
            offset,
            end,
            Readahead::Forward,
            &mut |_, at, o, n| {
                dm.read(at, &mut buf[o..o + n]);
            },
        )?;
        Ok(end.saturating_sub(offset) as usize)
    }

    /// `write(2)` through the cache (`generic_perform_write`): copies into
    /// the cached pages (read first where only part of a page is written),
    /// marks them dirty and grows i_size. Every shared mapping sees the
    /// bytes at once, since it maps these very pages.
    pub fn write(
        &self,
        pa: &PageAlloc,
        cpu: CpuId,
        file: &FileRef,
        offset: u64,
        data: &[u8],
    ) -> Result<usize, Errno> {
        if !file.writable() {
            return Err(Errno::EBADF);
        }
        let end = offset.checked_add(data.len() as u64).ok_or(Errno::EFBIG)?;
        let dm = pa.direct_map();
        self.for_each_piece(
            pa,
            cpu,
            file,
            offset,
            end,
            Readahead::None,
            &mut |pfn, at, o, n| {
                dm.write(at, &data[o..o + n]);
                self.set_dirty(pa, pfn);
            },
        )?;
        if end > file.size() {
            file.set_size(end)?;
        }
        Ok(data.len())
    }

    /// `folio_mark_dirty` for a cache page (NR_FILE_DIRTY and NR_DIRTIED
    /// on the first transition, as `folio_account_dirtied`). Shmem pages
    /// are never counted dirty for writeback.
    pub fn set_dirty(&self, pa: &PageAlloc, pfn: Pfn) {
        let Some(page) = pa.page(pfn) else { return };
        if page.test(PageFlags::SWAPBACKED) {
            page.set(PageFlags::DIRTY);
            return;
        }
        if !page.test(PageFlags::DIRTY) {
            page.set(PageFlags::DIRTY);
            let stats = &pa.nodes[page.nid() as usize].stats;
            stats.add(NodeStat::NrDirty, 1);
            stats.add(NodeStat::NrDirtied, 1);
        }
    }

    /// Writes the dirty pages of `[first, last]` back to the file
    /// (`filemap_write_and_wait_range`), clearing PG_dirty; the caller
    /// has already moved pte dirty bits to the pages (`folio_mkclean`).
    /// Returns the pages written.
    pub fn writeback(
        &self,
        pa: &PageAlloc,
        file: &FileRef,
        first: u64,
        last: u64,
    ) -> Result<u64, Errno> {
        if file.is_shmem() {
            return Ok(0);
        }
        let m = self.mapping_of(file);
        let pages: Vec<(u64, Pfn)> = self
            .pages(m)
            .into_iter()
            .filter(|&(i, _)| i >= first && i <= last)
            .collect();
        let mut n = 0;
        for (i, pfn) in pages {
            if Self::write_one(pa, file, i, pfn)? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Writes page `i` of `file` (in frame `pfn`) back if it is dirty and
    /// cleans it (`writepage`); true if it was written.
    fn write_one(pa: &PageAlloc, file: &FileRef, i: u64, pfn: Pfn) -> Result<bool, Errno> {
        let Some(page) = pa.page(pfn) else {
            return Ok(false);
        };
        if !page.test(PageFlags::DIRTY) {
            return Ok(false);
        }
        Self::write_out(pa, file, i, pfn)?;
        page.clear(PageFlags::DIRTY);
        // The write is synchronous here, so writeback ends at once:
        // NR_WRITTEN as `folio_end_writeback` counts it.
        let stats = &pa.nodes[page.nid() as usize].stats;
        stats.add(NodeStat::NrDirty, -1);
        stats.add(NodeStat::NrWritten, 1);
        Ok(true)
    }

    /// Writes the bytes of page `i` of `file` (in frame `pfn`) that lie
    /// before its end to the backing store.
    fn write_out(pa: &PageAlloc, file: &FileRef, i: u64, pfn: Pfn) -> Result<(), Errno> {
        let off = i << PAGE_SHIFT;
        let len = file.size().saturating_sub(off).min(PAGE_SIZE) as usize;
        let mut buf = [0u8; PAGE_SIZE as usize];
        pa.direct_map().read(pfn.phys(), &mut buf);
        if len > 0 {
            file.write_at(off, &buf[..len])?;
        }
        Ok(())
    }

    /// `filemap_fdatawrite_range` as a reader outside this cache needs it
    /// (the host's own read() of a file lmm maps): every cached page of
    /// `[first, last]` of mapping `m` that is dirty, in the page
    /// (PG_dirty) or in a pte that maps it (found through `rmap`), is
    /// written to the backing store. Simplified: the pages and ptes stay
    /// dirty (Linux cleans them, `folio_mkclean`; here a pte may be
    /// mirrored writable in a running program that could not see the
    /// change), so they are written again by the next msync, fsync, munmap
    /// or pageout, and nothing is counted. Returns the pages written.
    pub fn flush_range(
        &self,
        pa: &PageAlloc,
        rmap: &crate::rmap::Rmap,
        m: MappingId,
        first: u64,
        last: u64,
    ) -> Result<u64, Errno> {
        let Some(file) = self.file_of(m) else {
            return Ok(0);
        };
        if file.is_shmem() || !file.writable() || first > last {
            return Ok(0);
        }
        let pages = self.cached_in(m, first, last);
        let mut n = 0;
        for (i, pfn) in pages {
            let Some(page) = pa.page(pfn) else { continue };
            let dirty = page.test(PageFlags::DIRTY)
                || (page.mapcount() > 0
                    && rmap
                        .mapped_ptes(pa.direct_map(), PageMapping::File(m), i, pfn)
                        .iter()
                        .any(|(_, pte)| pte.dirty()));
            if dirty {
                Self::write_out(pa, &file, i, pfn)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// The cached pages of mapping `m` with index in `[first, last]`, by
    /// index (none for a mapping the cache does not know).
    fn cached_in(&self, m: MappingId, first: u64, last: u64) -> Vec<(u64, Pfn)> {
        let s = self.state.lock();
        s.spaces.get(&m).map_or_else(Vec::new, |sp| {
            sp.pages
                .range(first..=last)
                .map(|(&i, &p)| (i, p))
                .collect()
        })
    }

    /// After the backing store changed under the cache (the host wrote the
    /// file): every cached page of `[first, last]` of mapping `m` is read
    /// again in place, bytes past the end zero, so every pte that maps it
    /// sees the new contents as Linux's one page cache would show them
    /// (the frame stays, so no mapping changes). The caller has flushed
    /// the range's dirty pages first ([`PageCache::flush_range`]). With no
    /// live opener to read from, the clean pages no pte maps are dropped
    /// instead ([`PageCache::invalidate_mapping_pages`]; the caller gives
    /// the mapping an opener when a pte may map one). Returns the pages
    /// read.
    pub fn refresh_range(
        &self,
        pa: &PageAlloc,
        cpu: CpuId,
        m: MappingId,
        first: u64,
        last: u64,
    ) -> Result<u64, Errno> {
        if first > last {
            return Ok(0);
        }
        let Some(file) = self.file_of(m) else {
            self.invalidate_mapping_pages(pa, cpu, m);
            return Ok(0);
        };
        if file.is_shmem() {
            return Ok(0);
        }
        let pages = self.cached_in(m, first, last);
        for &(i, pfn) in &pages {
            let mut buf = [0u8; PAGE_SIZE as usize];
            file.read_at(i << PAGE_SHIFT, &mut buf)?;
            pa.direct_map().write(pfn.phys(), &buf);
        }
        Ok(pages.len() as u64)
    }

    /// Reclaim's `pageout` of a dirty file page: written back through the
    /// file its mapping belongs to. EIO if that file is gone.
    pub fn writepage(&self, pa: &PageAlloc, pfn: Pfn) -> Result<(), Errno> {
        let page = pa.page(pfn).ok_or(Errno::EINVAL)?;
        let PageMapping::File(m) = PageMapping::decode(page.mapping()) else {
            return Err(Errno::EINVAL);
        };
        let file = self
            .state
            .lock()
            .spaces
            .get(&m)
            .and_then(|s| s.file.upgrade())
            .ok_or(Errno::EIO)?;
        Self::write_one(pa, &file, page.index(), pfn).map(|_| ())
    }

    /// `__remove_mapping` for a clean page reclaim is evicting: out of the
    /// cache with `shadow` left in its slot; the cache's reference is put.
    pub fn remove_for_reclaim(&self, pa: &PageAlloc, cpu: CpuId, pfn: Pfn, shadow: u64) {
        let Some(page) = pa.page(pfn) else { return };
        let PageMapping::File(m) = PageMapping::decode(page.mapping()) else {
            return;
        };
        let index = page.index();
        {
            let mut s = self.state.lock();
            let Some(sp) = s.spaces.get_mut(&m) else {
                return;
            };
            if sp.pages.get(&index) != Some(&pfn) {
                return;
            }
            sp.pages.remove(&index);
            sp.shadows.insert(index, shadow);
        }
        self.delete_from_cache(pa, pfn);
        crate::memory::put_page(pa, cpu, pfn);
    }

    /// `drop_caches` 1 (`invalidate_mapping_pages` over every inode): frees
    /// every clean, unmapped, otherwise unused page of files with a
    /// backing store. Returns the pages freed.
    pub fn invalidate_clean(&self, pa: &PageAlloc, cpu: CpuId) -> u64 {
        let files: Vec<MappingId> = {
            let s = self.state.lock();
            s.spaces
                .keys()
                .filter(|m| !s.shmem.contains(m))
                .copied()
                .collect()
        };
        files
            .into_iter()
            .map(|m| self.invalidate_mapping_pages(pa, cpu, m))
            .sum()
    }

    /// `invalidate_mapping_pages`: frees every clean page of mapping `m`
    /// that no pte maps and nobody else holds. Returns the pages freed.
    pub fn invalidate_mapping_pages(&self, pa: &PageAlloc, cpu: CpuId, m: MappingId) -> u64 {
        let mut gone = Vec::new();
        if let Some(sp) = self.state.lock().spaces.get_mut(&m) {
            sp.pages.retain(|_, &mut pfn| {
                let free = pa.page(pfn).is_some_and(|p| {
                    p.mapcount() == 0 && p.refcount() == 1 && !p.test(PageFlags::DIRTY)
                });
                if free {
                    gone.push(pfn);
                }
                !free
            });
        }
        for &pfn in &gone {
            self.delete_from_cache(pa, pfn);
            crate::memory::put_page(pa, cpu, pfn);
        }
        gone.len() as u64
    }

    /// Removes the cached pages from `first` on (`truncate_inode_pages`),
    /// dropping the cache's reference on each. The caller has unmapped
    /// them from every pte first (`unmap_mapping_range`). Returns the
    /// pages removed.
    pub fn truncate(&self, pa: &PageAlloc, cpu: CpuId, m: MappingId, first: u64) -> u64 {
        let gone: Vec<Pfn> = {
            let mut s = self.state.lock();
            let Some(sp) = s.spaces.get_mut(&m) else {
                return 0;
            };
            sp.shadows.split_off(&first);
            let swapped = sp.swapped.split_off(&first);
            if let Some(swap) = self.swap.get() {
                for e in swapped.into_values() {
                    swap.free_swap_and_cache(pa, cpu, e);
                }
            }
            let tail = sp.pages.split_off(&first);
            tail.into_values().collect()
        };
        for &pfn in &gone {
            self.delete_from_cache(pa, pfn);
            crate::memory::put_page(pa, cpu, pfn);
        }
        gone.len() as u64
    }

    /// `__filemap_remove_folio`: the page leaves the cache's counters.
    fn delete_from_cache(&self, pa: &PageAlloc, pfn: Pfn) {
        let Some(page) = pa.page(pfn) else { return };
        let stats = &pa.nodes[page.nid() as usize].stats;
        stats.add(NodeStat::NrFilePages, -1);
        if page.test(PageFlags::SWAPBACKED) {
            stats.add(NodeStat::NrShmem, -1);
        } else if page.test(PageFlags::DIRTY) {
            stats.add(NodeStat::NrDirty, -1);
        }
        page.clear(PageFlags::DIRTY);
    }

    /// Frees the whole cache of inodes that no file handle or mapping can
    /// reach any more and that have no backing store (shmem: unlinked
    /// tmpfs files, memfds, shared anonymous memory), as the final `iput`
    /// evicts them. `mapped` says whether a VMA still maps a mapping.
    /// Returns the pages freed.
    #[inline]
    pub fn reap(&self, pa: &PageAlloc, cpu: CpuId, mapped: &dyn Fn(MappingId) -> bool) -> u64 {
        if self.nr_shmem.load(core::sync::atomic::Ordering::Relaxed) == 0 {
            return 0;
        }
        self.reap_shmem(pa, cpu, mapped)
    }

    #[cold]
    #[inline(never)]
    fn reap_shmem(&self, pa: &PageAlloc, cpu: CpuId, mapped: &dyn Fn(MappingId) -> bool) -> u64 {
        let dead: Vec<MappingId> = {
            let s = self.state.lock();
            s.shmem
                .iter()
                .filter(|&&m| {
                    s.spaces
                        .get(&m)
                        .is_some_and(|sp| sp.file.strong_count() == 0 && !mapped(m))
                })
                .copied()
                .collect()
        };
        let mut n = 0;
        for m in dead {
            n += self.truncate(pa, cpu, m, 0);
            let mut s = self.state.lock();
            s.shmem.remove(&m);
            self.nr_shmem
                .store(s.shmem.len(), core::sync::atomic::Ordering::Relaxed);
            if let Some(sp) = s.spaces.remove(&m) {
                s.by_key.remove(&sp.key);
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;
    use crate::debug::check_page_alloc;
    use crate::mm_init::testing::boot;
    use crate::pgtable::PageTable;
    use crate::vmstat::NodeStat;

    /// A file with a backing store in host memory that records writes and
    /// can be made to fail reads: all of them, or those that touch page
    /// `bad`.
    struct MemFile {
        data: spin::Mutex<Vec<u8>>,
        fail: bool,
        bad: Option<u64>,
    }

    impl OpenFile for MemFile {
        fn path(&self) -> &str {
            "/mem"
        }
        fn dev(&self) -> (u32, u32) {
            (8, 1)
        }
        fn ino(&self) -> u64 {
            if self.fail {
                2
            } else {
                1
            }
        }
        fn size(&self) -> u64 {
            self.data.lock().len() as u64
        }
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
            let end = offset + buf.len() as u64;
            if self.fail
                || self
                    .bad
                    .is_some_and(|b| offset < (b + 1) * PAGE_SIZE && end > b * PAGE_SIZE)
            {
                return Err(Errno::EIO);
            }
            let d = self.data.lock();
            let from = (offset as usize).min(d.len());
            let n = (d.len() - from).min(buf.len());
            buf[..n].copy_from_slice(&d[from..from + n]);
            Ok(n)
        }
        fn write_at(&self, offset: u64, buf: &[u8]) -> Result<usize, Errno> {
            let mut d = self.data.lock();
            let end = offset as usize + buf.len();
            if d.len() < end {
                d.resize(end, 0);
            }
            d[offset as usize..end].copy_from_slice(buf);
            Ok(buf.len())
        }
        fn set_size(&self, size: u64) -> Result<(), Errno> {
            self.data.lock().resize(size as usize, 0);
            Ok(())
        }
        fn readable(&self) -> bool {
            true
        }
        fn writable(&self) -> bool {
            true
        }
    }

    fn file(pages: usize, fail: bool) -> FileRef {
        let data = (0..pages * PAGE_SIZE as usize)
            .map(|i| (i / PAGE_SIZE as usize) as u8)
            .collect();
        Arc::new(MemFile {
            data: spin::Mutex::new(data),
            fail,
            bad: None,
        })
    }

    fn stat(pa: &PageAlloc, s: NodeStat) -> i64 {
        pa.nodes[0].stats.get(s)
    }

    #[test]
    fn readahead_windows_and_cached_hits() {
        let m = boot(Arch::X86_64, 64 << 20, 1);
        let (pa, cpu) = (&m.pa, CpuId(0));
        let cache = PageCache::new();
        let f = file(100, false);
        let mid = cache.get_page(pa, cpu, &f, 50, Readahead::Around).unwrap();
        assert_eq!(mid.1, Found::Read);
        let id = cache.mapping_of(&f);
        // Read-around: 32 pages centred on 50.
        let idx: Vec<u64> = cache.pages(id).iter().map(|p| p.0).collect();
        assert_eq!(idx, (34..66).collect::<Vec<_>>());
        assert_eq!(
            cache
                .get_page(pa, cpu, &f, 40, Readahead::Around)
                .unwrap()
                .1,
            Found::Cached
        );
        // Forward readahead from 90 stops at EOF (page 99).
        cache.get_page(pa, cpu, &f, 90, Readahead::Forward).unwrap();
        assert_eq!(cache.nrpages(id), 32 + 10);
        // Every cached page holds the file's bytes.
        for (i, pfn) in cache.pages(id) {
            let mut b = [0u8; 2];
            pa.direct_map().read(pfn.phys(), &mut b);
            assert_eq!(b, [i as u8; 2]);
        }
        assert_eq!(stat(pa, NodeStat::NrFilePages), 42);
        assert_eq!(cache.truncate(pa, cpu, id, 0), 42);
        assert_eq!(stat(pa, NodeStat::NrFilePages), 0);
        check_page_alloc(pa).unwrap();
    }

    /// Readahead reads each stretch of missing pages in one request; a
    /// stretch whose request fails is read page by page, so only the page
    /// that cannot be read is left out (and a read of it is EIO later);
    /// the tail of the last page past EOF is zero.
    #[test]
    fn readahead_reads_stretches_and_leaves_out_only_a_failing_page() {
        let m = boot(Arch::X86_64, 64 << 20, 1);
        let (pa, cpu) = (&m.pa, CpuId(0));
        let cache = PageCache::new();
        let mut data: Vec<u8> = (0..60 * PAGE_SIZE as usize)
            .map(|i| (i / PAGE_SIZE as usize) as u8)
            .collect();
        data.truncate(data.len() - 100);
        let f: FileRef = Arc::new(MemFile {
            data: spin::Mutex::new(data),
            fail: false,
            bad: Some(45),
        });
        let id = cache.mapping_of(&f);
        // Page 40 cached first, so the window 34..66 (cut at EOF, 60) has
        // two stretches around it, the second holding the bad page.
        cache.get_page(pa, cpu, &f, 40, Readahead::None).unwrap();
        cache.get_page(pa, cpu, &f, 50, Readahead::Around).unwrap();
        let idx: Vec<u64> = cache.pages(id).iter().map(|p| p.0).collect();
        let want: Vec<u64> = (34..60).filter(|&i| i != 45).collect();
        assert_eq!(idx, want);
        for (i, pfn) in cache.pages(id) {
            let mut b = [0u8; PAGE_SIZE as usize];
            pa.direct_map().read(pfn.phys(), &mut b);
            let full = if i == 59 {
                PAGE_SIZE as usize - 100
            } else {
                b.len()
            };
            assert!(b[..full].iter().all(|&x| x == i as u8), "page {i}");
            assert!(b[full..].iter().all(|&x| x == 0), "page {i} past EOF");
        }
        assert_eq!(
            cache.get_page(pa, cpu, &f, 45, Readahead::None),
            Err(Errno::EIO)
        );
        assert_eq!(stat(pa, NodeStat::NrFilePages), want.len() as i64);
        cache.truncate(pa, cpu, id, 0);
        check_page_alloc(pa).unwrap();
    }

    #[test]
    fn a_failing_read_is_eio_and_leaves_nothing_behind() {
        let m = boot(Arch::X86_64, 64 << 20, 1);
        let (pa, cpu) = (&m.pa, CpuId(0));
        let free0 = pa.nr_free_pages() + pa.nr_pcp_pages();
        let cache = PageCache::new();
        let f = file(4, true);
        assert_eq!(
            cache.get_page(pa, cpu, &f, 1, Readahead::Around),
            Err(Errno::EIO)
        );
        assert_eq!(cache.nrpages(cache.mapping_of(&f)), 0);
        assert_eq!(pa.nr_free_pages() + pa.nr_pcp_pages(), free0);
        // A fault on it is SIGBUS, never a zero-filled page.
        let mut frames = crate::pgalloc::PgtableFrames { pa, cpu };
        let kernel = PageTable::new_kernel(
            pa.direct_map(),
            &mut frames,
            crate::arch::pte::PagingMode::X86_64L4,
            crate::types::PhysAddr(64 << 20),
        )
        .unwrap();
        let mut pt = PageTable::new_user(&kernel, &mut frames).unwrap();
        let mut tlb = crate::memory::NoTlb;
        let swap = crate::swap_state::SwapState::new();
        let mut ops =
            crate::memory::UserPageTables::new(&mut pt, pa, &cache, &swap, cpu, 1, &mut tlb, None);
        let mut vma = crate::mm_types::Vma::new_anon(
            crate::types::VirtAddr(0x10000),
            crate::types::VirtAddr(0x14000),
            crate::mm_types::VmFlags::READ | crate::mm_types::VmFlags::MAYREAD,
            0,
        );
        vma.file = Some(f);
        assert_eq!(
            ops.fault_page(&vma, crate::types::VirtAddr(0x11000), false, true),
            Err(crate::memory::FaultError::Bus)
        );
        pt.destroy(&mut frames);
        kernel.destroy(&mut frames);
        check_page_alloc(pa).unwrap();
    }

    #[test]
    fn flush_writes_dirty_pages_and_keeps_them_dirty_refresh_rereads() {
        let m = boot(Arch::X86_64, 64 << 20, 1);
        let (pa, cpu) = (&m.pa, CpuId(0));
        let cache = PageCache::new();
        let rmap = crate::rmap::Rmap::new();
        let f = file(3, false);
        let id = cache.mapping_of(&f);
        for i in 0..3 {
            let (pfn, _) = cache.get_page(pa, cpu, &f, i, Readahead::None).unwrap();
            crate::memory::put_page(pa, cpu, pfn);
        }
        // Page 1 dirtied in memory, page 2 changed but clean.
        let p1 = cache.find(id, 1).unwrap();
        pa.direct_map().write(p1.phys(), b"new");
        cache.set_dirty(pa, p1);
        let p2 = cache.find(id, 2).unwrap();
        pa.direct_map().write(p2.phys(), b"old");
        // A flush of page 0 only writes nothing; of all, page 1 only.
        assert_eq!(cache.flush_range(pa, &rmap, id, 0, 0), Ok(0));
        assert_eq!(cache.flush_range(pa, &rmap, id, 0, u64::MAX), Ok(1));
        let mut b = [0u8; 3];
        f.read_at(PAGE_SIZE, &mut b).unwrap();
        assert_eq!(&b, b"new");
        f.read_at(2 * PAGE_SIZE, &mut b).unwrap();
        assert_eq!(b, [2; 3]);
        // Still dirty: written again by the next writeback.
        assert_eq!(stat(pa, NodeStat::NrDirty), 1);
        assert_eq!(cache.writeback(pa, &f, 0, u64::MAX), Ok(1));
        // The store changes under the cache: refresh reads pages 1..=2
        // again, in the same frames; bytes past the end read zero.
        f.write_at(2 * PAGE_SIZE, b"xyz").unwrap();
        f.set_size(2 * PAGE_SIZE + 2).unwrap();
        assert_eq!(cache.refresh_range(pa, cpu, id, 1, u64::MAX), Ok(2));
        assert_eq!(cache.find(id, 2), Some(p2));
        let mut b4 = [9u8; 4];
        pa.direct_map().read(p2.phys(), &mut b4);
        assert_eq!(&b4, b"xy\0\0");
        pa.direct_map().read(p1.phys(), &mut b);
        assert_eq!(&b, b"new");
        assert_eq!(cache.last_index(id), Some(2));
        assert_eq!(cache.lookup((f.dev(), f.ino())), Some(id));
        cache.truncate(pa, cpu, id, 0);
        check_page_alloc(pa).unwrap();
    }

    #[test]
    fn writes_dirty_pages_and_writeback_cleans_them() {
        let m = boot(Arch::X86_64, 64 << 20, 1);
        let (pa, cpu) = (&m.pa, CpuId(0));
        let cache = PageCache::new();
        let f = file(2, false);
        assert_eq!(cache.write(pa, cpu, &f, 4090, b"across pages"), Ok(12));
        assert_eq!(stat(pa, NodeStat::NrDirty), 2);
        // The backing store has not seen it yet; read() through the cache has.
        let mut b = [0u8; 12];
        f.read_at(4090, &mut b).unwrap();
        assert_ne!(&b, b"across pages");
        assert_eq!(cache.read(pa, cpu, &f, 4090, &mut b), Ok(12));
        assert_eq!(&b, b"across pages");
        // Writeback of page 0 only, then the rest.
        assert_eq!(cache.writeback(pa, &f, 0, 0), Ok(1));
        assert_eq!(stat(pa, NodeStat::NrDirty), 1);
        assert_eq!(cache.writeback(pa, &f, 0, u64::MAX), Ok(1));
        assert_eq!(stat(pa, NodeStat::NrDirty), 0);
        // Two pages were dirtied and two written, each counted once.
        assert_eq!(stat(pa, NodeStat::NrDirtied), 2);
        assert_eq!(stat(pa, NodeStat::NrWritten), 2);
        f.read_at(4090, &mut b).unwrap();
        assert_eq!(&b, b"across pages");
        // A write past EOF grows the file.
        cache.write(pa, cpu, &f, 3 * PAGE_SIZE, b"end").unwrap();
        assert_eq!(f.size(), 3 * PAGE_SIZE + 3);
        let id = cache.mapping_of(&f);
        cache.truncate(pa, cpu, id, 0);
        assert_eq!(stat(pa, NodeStat::NrDirty), 0);
        check_page_alloc(pa).unwrap();
    }
}
