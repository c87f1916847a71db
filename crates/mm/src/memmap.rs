//! The memmap: one `struct page` per physical frame, and the page flags.
//! Mirrors include/linux/mm_types.h (`struct page`), include/linux/page-flags.h
//! and mm/mm_init.c (`memmap_init`). The memmap lives in simulated RAM, in
//! memory memblock reserved for it at boot, exactly where Linux puts it.
//!
//! Every field is an atomic so that a page can be shared by all simulated
//! CPUs through `&Page`; writes that must be consistent with each other are
//! made under the zone lock, as in Linux. Lists link pages by PFN (the
//! `lru` list_head of Linux), never by pointer.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicI32, AtomicU64, Ordering::Relaxed};

use crate::types::{Pfn, PAGE_SIZE};

/// "No page" in a PFN link.
pub const NIL: u64 = u64::MAX;

/// Page flags (include/linux/page-flags.h), plus the page types Linux keeps
/// in `page_type` (buddy, per-CPU list, slab, page table) folded into the
/// same word. The top bits hold the zone index and node id, as Linux packs
/// them into `page->flags`.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct PageFlags(pub u64);

bitflags::bitflags! {
    /// The `PG_*` bits at their include/linux/page-flags.h positions, then
    /// lmm's page types. Every bit is known (`_ = !0`): the zone and node
    /// fields share the word.
    impl PageFlags: u64 {
        /// `PG_locked`.
        const LOCKED = 1 << 0;
        /// `PG_referenced`.
        const REFERENCED = 1 << 2;
        /// `PG_uptodate`.
        const UPTODATE = 1 << 3;
        /// `PG_dirty`.
        const DIRTY = 1 << 4;
        /// `PG_lru`.
        const LRU = 1 << 5;
        /// `PG_head`.
        const HEAD = 1 << 6;
        /// `PG_active`.
        const ACTIVE = 1 << 8;
        /// `PG_workingset`.
        const WORKINGSET = 1 << 9;
        /// `PG_reserved`.
        const RESERVED = 1 << 11;
        /// `PG_private`.
        const PRIVATE = 1 << 12;
        /// `PG_writeback`.
        const WRITEBACK = 1 << 14;
        /// `PG_swapbacked`.
        const SWAPBACKED = 1 << 19;
        /// `PG_unevictable`.
        const UNEVICTABLE = 1 << 20;
        /// `PG_mlocked`.
        const MLOCKED = 1 << 21;
        /// `PG_swapcache`.
        const SWAPCACHE = 1 << 22;
        /// Page type: the page heads a free block in the buddy allocator; its
        /// order is in `private` (Linux `PageBuddy`).
        const BUDDY = 1 << 32;
        /// Page type: the page sits on a per-CPU free list; its order is in
        /// `private` (Linux uses `page->pcp_list` and `PagePCP`-like tagging).
        const PCP = 1 << 33;
        /// Page type: the page belongs to a slab.
        const SLAB = 1 << 34;
        /// Page type: the page is a page table.
        const PGTABLE = 1 << 35;
        /// The memmap entry has been initialised (its zone and node are valid).
        /// Pages of deferred ranges stay all-zero until first use.
        const INIT = 1 << 36;
        const _ = !0;
    }
}

impl PageFlags {
    const ZONE_SHIFT: u32 = 56;
    const NODE_SHIFT: u32 = 44;
    const NODE_MASK: u64 = 0xfff;

    /// Zone index packed in the flags (`page_zonenum`).
    #[inline]
    pub fn zone_idx(self) -> usize {
        (self.0 >> Self::ZONE_SHIFT) as usize & 0x7
    }
    /// Node id packed in the flags (`page_to_nid`).
    #[inline]
    pub fn nid(self) -> u32 {
        ((self.0 >> Self::NODE_SHIFT) & Self::NODE_MASK) as u32
    }
}

/// `struct page`. 64 bytes, like Linux's.
#[repr(C)]
#[derive(Default)]
pub struct Page {
    /// Flags, page type, zone and node (see [`PageFlags`]).
    flags: AtomicU64,
    /// Next page on the list this page is on (lru.next), or [`NIL`].
    next: AtomicU64,
    /// Previous page on the list (lru.prev), or [`NIL`].
    prev: AtomicU64,
    /// `page->private`: the order of a free block, or owner data.
    private: AtomicU64,
    /// `page->mapping`: identity of the address space or anon_vma.
    mapping: AtomicU64,
    /// `page->index`: offset in the mapping, in pages.
    index: AtomicU64,
    /// `_refcount`.
    refcount: AtomicI32,
    /// Number of page-table mappings. Linux stores this minus one in
    /// `_mapcount`; we store the count itself so that zeroed memory is an
    /// unmapped page.
    mapcount: AtomicI32,
    /// Owner tag for debugging (slub's STORE_USER-like tracking).
    owner: AtomicU64,
}

const _: () = assert!(
    core::mem::size_of::<Page>() <= 64,
    "struct page must fit Linux's 64 bytes"
);

impl Page {
    /// Raw flags word.
    #[inline]
    pub fn flags(&self) -> PageFlags {
        PageFlags(self.flags.load(Relaxed))
    }
    /// True if every bit of `f` is set.
    #[inline]
    pub fn test(&self, f: PageFlags) -> bool {
        self.flags().contains(f)
    }
    /// Sets bits.
    #[inline]
    pub fn set(&self, f: PageFlags) {
        self.flags.fetch_or(f.bits(), Relaxed);
    }
    /// Clears bits.
    #[inline]
    pub fn clear(&self, f: PageFlags) {
        self.flags.fetch_and(!f.bits(), Relaxed);
    }
    /// Sets bits with a plain read-modify-write (Linux's `__SetPage*`), for
    /// a page whose flags only the caller changes (held under its list's lock).
    #[inline]
    pub fn set_locked(&self, f: PageFlags) {
        self.flags
            .store(self.flags.load(Relaxed) | f.bits(), Relaxed);
    }
    /// Clears bits with a plain read-modify-write (`__ClearPage*`).
    #[inline]
    pub fn clear_locked(&self, f: PageFlags) {
        self.flags
            .store(self.flags.load(Relaxed) & !f.bits(), Relaxed);
    }
    /// Initialises the entry for a frame of `zone_idx` on `nid` (`__init_single_page`).
    #[inline]
    pub fn init(&self, zone_idx: usize, nid: u32) {
        self.flags.store(
            PageFlags::INIT.bits()
                | ((zone_idx as u64) << PageFlags::ZONE_SHIFT)
                | ((nid as u64 & PageFlags::NODE_MASK) << PageFlags::NODE_SHIFT),
            Relaxed,
        );
        self.next.store(NIL, Relaxed);
        self.prev.store(NIL, Relaxed);
        self.private.store(0, Relaxed);
        self.mapping.store(0, Relaxed);
        self.index.store(0, Relaxed);
        self.refcount.store(0, Relaxed);
        self.mapcount.store(0, Relaxed);
        self.owner.store(0, Relaxed);
    }
    /// Zone index packed in the flags (`page_zonenum`).
    #[inline]
    pub fn zone_idx(&self) -> usize {
        self.flags().zone_idx()
    }
    /// Node id packed in the flags (`page_to_nid`).
    #[inline]
    pub fn nid(&self) -> u32 {
        self.flags().nid()
    }
    /// `page_count`.
    #[inline]
    pub fn refcount(&self) -> i32 {
        self.refcount.load(Relaxed)
    }
    /// `set_page_count`.
    #[inline]
    pub fn set_refcount(&self, v: i32) {
        self.refcount.store(v, Relaxed)
    }
    /// `get_page`: returns the new count.
    #[inline]
    pub fn get(&self) -> i32 {
        self.refcount.fetch_add(1, Relaxed) + 1
    }
    /// `put_page_testzero`: drops a reference, returns the new count.
    #[inline]
    pub fn put(&self) -> i32 {
        self.refcount.fetch_sub(1, Relaxed) - 1
    }
    /// `page_mapcount`.
    #[inline]
    pub fn mapcount(&self) -> i32 {
        self.mapcount.load(Relaxed)
    }
    /// Adds `d` to the mapcount, returns the new value.
    #[inline]
    pub fn add_mapcount(&self, d: i32) -> i32 {
        self.mapcount.fetch_add(d, Relaxed) + d
    }
    /// `page_private`.
    #[inline]
    pub fn private(&self) -> u64 {
        self.private.load(Relaxed)
    }
    /// `set_page_private`.
    #[inline]
    pub fn set_private(&self, v: u64) {
        self.private.store(v, Relaxed)
    }
    /// `page->mapping`.
    #[inline]
    pub fn mapping(&self) -> u64 {
        self.mapping.load(Relaxed)
    }
    /// Sets `page->mapping`.
    #[inline]
    pub fn set_mapping(&self, v: u64) {
        self.mapping.store(v, Relaxed)
    }
    /// `page->index`.
    #[inline]
    pub fn index(&self) -> u64 {
        self.index.load(Relaxed)
    }
    /// Sets `page->index`.
    #[inline]
    pub fn set_index(&self, v: u64) {
        self.index.store(v, Relaxed)
    }
    /// Debug owner tag.
    #[inline]
    pub fn owner(&self) -> u64 {
        self.owner.load(Relaxed)
    }
    /// Sets the debug owner tag.
    #[inline]
    pub fn set_owner(&self, v: u64) {
        self.owner.store(v, Relaxed)
    }
    #[inline]
    pub(crate) fn next(&self) -> u64 {
        self.next.load(Relaxed)
    }
    #[inline]
    pub(crate) fn prev(&self) -> u64 {
        self.prev.load(Relaxed)
    }
    #[inline]
    pub(crate) fn set_next(&self, v: u64) {
        self.next.store(v, Relaxed)
    }
    #[inline]
    pub(crate) fn set_prev(&self, v: u64) {
        self.prev.store(v, Relaxed)
    }
}

/// The `struct page` array of one node, covering `[start_pfn, start_pfn +
/// len)`, living in simulated RAM (or, in unit tests, in host memory).
///
/// Two models, as Linux configures them:
/// - FLATMEM (32-bit x86): one array over the whole span, holes included
///   (`alloc_node_mem_map`).
/// - SPARSEMEM_VMEMMAP (64-bit): a memmap only for the memory sections
///   that hold some RAM, each section's a whole `section_map_size()` slot
///   of one per-node buffer (`sparse_init_nid`); a section wholly inside a
///   hole (the 3–4 GiB PCI hole) has none, and `pfn_valid` is false there.
///
/// Linux maps the slots contiguously in the vmemmap's virtual range, so
/// `pfn_to_page` is `vmemmap + pfn`. lmm has no virtual range to lay the
/// slots out in, so it keeps, per section, the offset that turns a PFN
/// into its index from `base` (what classic SPARSEMEM encodes in
/// `section_mem_map`: the section's memmap minus its first PFN): a lookup
/// is one bounds compare, one load and one add, holes or not. FLATMEM is
/// the case of one section covering the whole span.
#[derive(Clone)]
pub struct Memmap {
    base: *const Page,
    start: u64,
    len: u64,
    /// log2 of the pages per section ([`FLATMEM_SHIFT`] for FLATMEM).
    shift: u32,
    /// `start`'s offset in its section (0 for FLATMEM).
    skew: u64,
    /// Per section of the span, from `start`'s section on: the index from
    /// `base` of the section's page structs minus the section's first PFN,
    /// so that `pfn`'s page struct is at `base + offset + pfn`; or
    /// [`NO_SECTION`] for a section without a memmap. Never empty.
    offsets: Arc<[i64]>,
    /// A window of PFNs `[win_start, win_start + win_len)` whose page
    /// structs are consecutive from index `win_idx`, looked up before the
    /// section table with no load from it: a zone's memmap sets it to the
    /// zone's span when no hole cuts it ([`Memmap::with_window`]), the way
    /// the vmemmap makes every lookup a plain add.
    win_start: u64,
    win_len: u64,
    win_idx: u64,
}

/// A section without a memmap (`!valid_section`). Offsets of real
/// sections are differences of two PFNs, which are below 2^52.
const NO_SECTION: i64 = i64::MIN;

/// The section shift of a FLATMEM memmap: one section spans every PFN a
/// node can have (PFNs are below 2^52).
const FLATMEM_SHIFT: u32 = 63;

// SAFETY: pages are all-atomic; the memory outlives the allocator.
unsafe impl Send for Memmap {}
// SAFETY: every field of a Page is atomic, so shared references may race.
unsafe impl Sync for Memmap {}

impl Memmap {
    /// Wraps `len` page structs at `base` describing frames from `start`
    /// (FLATMEM).
    ///
    /// # Safety
    /// `base` must point to `len` zero-initialised or valid `Page`s that
    /// outlive every user of the memmap.
    pub unsafe fn new(base: *const Page, start: Pfn, len: u64) -> Self {
        Self {
            base,
            start: start.0,
            len,
            shift: FLATMEM_SHIFT,
            skew: 0,
            offsets: Arc::from([(start.0 as i64).wrapping_neg()]),
            win_start: start.0,
            win_len: len,
            win_idx: 0,
        }
    }
    /// Wraps a SPARSEMEM memmap of the span `[start, start + len)`:
    /// `present[k]` says whether the k-th section from `start`'s has a
    /// memmap; those that do have consecutive slots of `1 << shift` page
    /// structs at `base`. Panics unless `present` has an entry for every
    /// section of the span (a caller's bug: boot computes both).
    ///
    /// # Safety
    /// `base` must point to one zero-initialised or valid slot of `Page`s
    /// per present section, outliving every user of the memmap.
    pub unsafe fn new_sparse(
        base: *const Page,
        start: Pfn,
        len: u64,
        shift: u32,
        present: &[bool],
    ) -> Self {
        let first = start.0 >> shift;
        let sections = if len == 0 {
            0
        } else {
            ((start.0 + len - 1) >> shift) - first + 1
        };
        assert!(
            present.len() as u64 >= sections,
            "new_sparse: {} sections given for a span of {sections}",
            present.len()
        );
        let mut slot = 0i64;
        let mut offsets: Vec<i64> = present
            .iter()
            .enumerate()
            .map(|(k, &p)| {
                if p {
                    slot += 1;
                    ((slot - 1) << shift) - ((first + k as u64) << shift) as i64
                } else {
                    NO_SECTION
                }
            })
            .collect();
        if offsets.is_empty() {
            offsets.push(NO_SECTION);
        }
        Self {
            base,
            start: start.0,
            len,
            shift,
            skew: start.0 & ((1 << shift) - 1),
            offsets: offsets.into(),
            win_start: 0,
            win_len: 0,
            win_idx: 0,
        }
    }
    /// The same memmap, with its window (see `win_start`) set to
    /// `[start, end)` when every PFN there has a page struct and they are
    /// consecutive (no hole section inside), else left as it is.
    pub fn with_window(mut self, start: Pfn, end: Pfn) -> Self {
        // FLATMEM's window is its whole span already.
        if end.0 <= start.0 || self.shift == FLATMEM_SHIFT {
            return self;
        }
        let Some(first) = self.index(start) else {
            return self;
        };
        // A section's page structs are consecutive, so checking where each
        // section's first PFN in the range lands checks all of them.
        let mut pfn = start.0;
        while pfn < end.0 {
            if self.index(Pfn(pfn)) != Some(first + (pfn - start.0) as usize) {
                return self;
            }
            pfn = ((pfn >> self.shift) + 1) << self.shift;
        }
        self.win_start = start.0;
        self.win_len = end.0 - start.0;
        self.win_idx = first as u64;
        self
    }
    /// First frame described.
    pub fn start(&self) -> Pfn {
        Pfn(self.start)
    }
    /// One past the last frame described.
    pub fn end(&self) -> Pfn {
        Pfn(self.start + self.len)
    }
    /// Index of `pfn`'s page struct from `base`, if it has one: in the
    /// window by an add, else through the section table.
    #[inline(always)]
    fn index(&self, pfn: Pfn) -> Option<usize> {
        let w = pfn.0.wrapping_sub(self.win_start);
        if w < self.win_len {
            return Some((self.win_idx + w) as usize);
        }
        self.index_sections(pfn)
    }
    /// [`Self::index`] through the section table.
    #[inline]
    fn index_sections(&self, pfn: Pfn) -> Option<usize> {
        let i = pfn.0.wrapping_sub(self.start);
        if i >= self.len {
            return None;
        }
        let sec = ((i + self.skew) >> self.shift) as usize;
        debug_assert!(sec < self.offsets.len());
        // SAFETY: `offsets` has an entry for every section of the span
        // (`new`: one section; `new_sparse`: `present` covers the span),
        // and `i < len` puts `pfn` in one of them.
        let off = unsafe { *self.offsets.get_unchecked(sec) };
        (off != NO_SECTION).then_some(off.wrapping_add(pfn.0 as i64) as usize)
    }
    /// True if `pfn` has a page struct here (`pfn_valid`).
    #[inline]
    pub fn contains(&self, pfn: Pfn) -> bool {
        self.index(pfn).is_some()
    }
    /// The page struct of `pfn`, if it has one (`pfn_valid` then
    /// `pfn_to_page`, with one lookup).
    #[inline(always)]
    pub fn get(&self, pfn: Pfn) -> Option<&Page> {
        let i = self.index(pfn)?;
        // SAFETY: `index` keeps inside the slots `new`/`new_sparse` got.
        Some(unsafe { &*self.base.add(i) })
    }
    /// The page struct of `pfn` (`pfn_to_page`).
    #[inline(always)]
    pub fn page(&self, pfn: Pfn) -> &Page {
        let Some(i) = self.index(pfn) else {
            panic!("pfn {pfn:?} outside memmap");
        };
        // SAFETY: `index` keeps inside the slots `new`/`new_sparse` got.
        unsafe { &*self.base.add(i) }
    }
    /// Pages of RAM the memmap takes (NR_MEMMAP_BOOT_PAGES): the whole
    /// span for FLATMEM, one slot per present section for SPARSEMEM.
    pub fn boot_pages(&self) -> u64 {
        if self.shift == FLATMEM_SHIFT {
            return memmap_bytes(self.len).div_ceil(PAGE_SIZE);
        }
        let n = self.offsets.iter().filter(|&&o| o != NO_SECTION).count() as u64;
        n * memmap_bytes(1 << self.shift).div_ceil(PAGE_SIZE)
    }
}

/// Bytes of memmap needed for `pages` frames.
pub const fn memmap_bytes(pages: u64) -> u64 {
    pages * core::mem::size_of::<Page>() as u64
}

/// A doubly linked list of pages threaded through `Page::next/prev`
/// (Linux `struct list_head` in `free_area.free_list[]` and PCP lists).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageList {
    head: u64,
    tail: u64,
}

impl Default for PageList {
    fn default() -> Self {
        Self::new()
    }
}

impl PageList {
    /// An empty list.
    pub const fn new() -> Self {
        Self {
            head: NIL,
            tail: NIL,
        }
    }
    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.head == NIL
    }
    /// First page.
    pub fn first(&self) -> Option<Pfn> {
        (self.head != NIL).then_some(Pfn(self.head))
    }
    /// Last page.
    pub fn last(&self) -> Option<Pfn> {
        (self.tail != NIL).then_some(Pfn(self.tail))
    }
    /// Adds at the head (`list_add`); returns `pfn`'s page struct, so the
    /// caller need not look it up again.
    #[inline]
    pub fn push_front<'m>(&mut self, mm: &'m Memmap, pfn: Pfn) -> &'m Page {
        let p = mm.page(pfn);
        self.push_front_page(mm, pfn, p);
        p
    }
    /// Adds `pfn`, whose page struct `p` the caller already has, at the
    /// head: only the old head is looked up.
    #[inline(always)]
    pub fn push_front_page(&mut self, mm: &Memmap, pfn: Pfn, p: &Page) {
        debug_assert!(core::ptr::eq(p, mm.page(pfn)));
        p.set_prev(NIL);
        p.set_next(self.head);
        if self.head != NIL {
            mm.page(Pfn(self.head)).set_prev(pfn.0);
        } else {
            self.tail = pfn.0;
        }
        self.head = pfn.0;
    }
    /// Adds at the tail (`list_add_tail`).
    #[inline]
    pub fn push_back(&mut self, mm: &Memmap, pfn: Pfn) {
        let p = mm.page(pfn);
        p.set_next(NIL);
        p.set_prev(self.tail);
        if self.tail != NIL {
            mm.page(Pfn(self.tail)).set_next(pfn.0);
        } else {
            self.head = pfn.0;
        }
        self.tail = pfn.0;
    }
    /// Unlinks `pfn`, which must be on this list (`list_del`); returns its
    /// page struct.
    #[inline(always)]
    pub fn remove<'m>(&mut self, mm: &'m Memmap, pfn: Pfn) -> &'m Page {
        let p = mm.page(pfn);
        let (prev, next) = (p.prev(), p.next());
        if prev != NIL {
            mm.page(Pfn(prev)).set_next(next);
        } else {
            self.head = next;
        }
        if next != NIL {
            mm.page(Pfn(next)).set_prev(prev);
        } else {
            self.tail = prev;
        }
        p.set_next(NIL);
        p.set_prev(NIL);
        p
    }
    /// Removes and returns the first page.
    #[inline]
    pub fn pop_front(&mut self, mm: &Memmap) -> Option<Pfn> {
        self.pop_front_page(mm).map(|(pfn, _)| pfn)
    }
    /// Removes the first page and returns it with its page struct: `remove`
    /// knowing the page has no predecessor.
    #[inline(always)]
    pub fn pop_front_page<'m>(&mut self, mm: &'m Memmap) -> Option<(Pfn, &'m Page)> {
        let f = self.first()?;
        let p = mm.page(f);
        debug_assert_eq!(p.prev(), NIL);
        let next = p.next();
        self.head = next;
        if next != NIL {
            mm.page(Pfn(next)).set_prev(NIL);
        } else {
            self.tail = NIL;
        }
        p.set_next(NIL);
        Some((f, p))
    }
    /// Removes and returns the last page.
    pub fn pop_back(&mut self, mm: &Memmap) -> Option<Pfn> {
        let l = self.last()?;
        self.remove(mm, l);
        Some(l)
    }
    /// Iterates from head to tail.
    pub fn iter<'a>(&self, mm: &'a Memmap) -> PageListIter<'a> {
        PageListIter { mm, cur: self.head }
    }
}

/// Iterator over a [`PageList`].
pub struct PageListIter<'a> {
    mm: &'a Memmap,
    cur: u64,
}

impl Iterator for PageListIter<'_> {
    type Item = Pfn;
    fn next(&mut self) -> Option<Pfn> {
        if self.cur == NIL {
            return None;
        }
        let p = Pfn(self.cur);
        self.cur = self.mm.page(p).next();
        Some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn memmap(n: usize) -> (Vec<Page>, Memmap) {
        let v: Vec<Page> = (0..n).map(|_| Page::default()).collect();
        // SAFETY: v outlives the memmap within each test.
        let m = unsafe { Memmap::new(v.as_ptr(), Pfn(100), n as u64) };
        (v, m)
    }

    #[test]
    fn struct_page_is_64_bytes() {
        assert_eq!(core::mem::size_of::<Page>(), 64);
    }

    #[test]
    fn flags_pack_zone_and_node() {
        let p = Page::default();
        p.init(3, 7);
        assert_eq!(p.zone_idx(), 3);
        assert_eq!(p.nid(), 7);
        p.set(PageFlags::BUDDY | PageFlags::DIRTY);
        assert!(p.test(PageFlags::BUDDY));
        p.clear(PageFlags::BUDDY);
        assert!(!p.test(PageFlags::BUDDY) && p.test(PageFlags::DIRTY));
        assert_eq!(p.zone_idx(), 3);
    }

    #[test]
    fn sparse_lookup_without_holes_agrees_with_the_section_table() {
        // Sections of 4 pages; the span starts 1 page into its section.
        let v: Vec<Page> = (0..16).map(|_| Page::default()).collect();
        let ptr = |p: &Page| p as *const Page;
        // SAFETY: v outlives both memmaps within this test.
        let whole = unsafe { Memmap::new_sparse(v.as_ptr(), Pfn(9), 15, 2, &[true; 4]) };
        // SAFETY: as above; section 1 has no memmap, so slots shift by one.
        let holed =
            unsafe { Memmap::new_sparse(v.as_ptr(), Pfn(9), 15, 2, &[true, false, true, true]) };
        for pfn in 9..24 {
            // Slot k holds section k of the span, from its first page.
            assert!(core::ptr::eq(
                ptr(whole.page(Pfn(pfn))),
                &v[(pfn - 8) as usize]
            ));
            match pfn >> 2 {
                3 => assert!(holed.get(Pfn(pfn)).is_none()),
                s => {
                    let slot = if s == 2 { 0 } else { s as usize - 3 };
                    let want = &v[slot * 4 + (pfn & 3) as usize];
                    assert!(core::ptr::eq(ptr(holed.page(Pfn(pfn))), want));
                }
            }
        }
        assert!(whole.get(Pfn(8)).is_none() && whole.get(Pfn(24)).is_none());
    }

    #[test]
    fn a_window_finds_the_same_page_structs_as_the_section_table() {
        // Sections of 4 pages, section 3 (PFNs 12..16) a hole: a window may
        // cover a run of present sections (here 16..24, after the hole,
        // whose slots are shifted by one) but not one crossing the hole.
        let v: Vec<Page> = (0..16).map(|_| Page::default()).collect();
        let present = [true, false, true, true];
        // SAFETY: v outlives every memmap within this test.
        let table = unsafe { Memmap::new_sparse(v.as_ptr(), Pfn(9), 15, 2, &present) };
        let ptr = |m: &Memmap, pfn: u64| m.get(Pfn(pfn)).map(|p| p as *const Page);
        for (lo, hi, set) in [
            (16, 24, true),
            (17, 23, true),
            (9, 12, true),
            (10, 18, false),
        ] {
            let w = table.clone().with_window(Pfn(lo), Pfn(hi));
            assert_eq!(w.win_len > 0, set, "window {lo}..{hi}");
            for pfn in 0..30 {
                assert_eq!(ptr(&w, pfn), ptr(&table, pfn), "pfn {pfn} in {lo}..{hi}");
            }
        }
        // The window's first page is where the table puts it: slot 1 holds
        // section 4, so PFN 16 is the fifth page struct.
        let w = table.clone().with_window(Pfn(16), Pfn(24));
        assert!(core::ptr::eq(w.page(Pfn(16)), &v[4]));
        assert!(core::ptr::eq(w.page(Pfn(23)), &v[11]));
    }

    #[test]
    fn list_ops_match_a_vecdeque() {
        let (_v, m) = memmap(8);
        let mut l = PageList::new();
        let mut model = std::collections::VecDeque::new();
        for i in 0..4 {
            l.push_back(&m, Pfn(100 + i));
            model.push_back(100 + i);
        }
        l.push_front(&m, Pfn(107));
        model.push_front(107);
        l.remove(&m, Pfn(102));
        model.retain(|&x| x != 102);
        assert_eq!(
            l.iter(&m).map(|p| p.0).collect::<Vec<_>>(),
            Vec::from(model.clone())
        );
        assert_eq!(l.pop_back(&m), Some(Pfn(103)));
        assert_eq!(l.pop_front(&m), Some(Pfn(107)));
        while l.pop_front(&m).is_some() {}
        assert!(l.is_empty() && l.last().is_none());
    }
}
