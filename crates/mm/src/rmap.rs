//! Reverse mapping: from a page to every page-table entry that maps it.
//! Mirrors mm/rmap.c: anon_vmas with their chains (`anon_vma_chain`), the
//! file's `i_mmap` tree, `rmap_walk`, `folio_referenced` and
//! `try_to_unmap`; and the machine-wide list of address spaces
//! (`init_mm.mmlist`) that lets a walk reach any mm's page tables.
//!
//! Shape (see DESIGN.md, "Address spaces and rmap"): an rmap walk never
//! borrows an `MmStruct`. Like Linux's, it needs only the VMAs that map a
//! page (kept here, per anon_vma and per file, as `(mm, start) -> (end,
//! pgoff)` entries that the VMA tree's link/unlink keep exact) and each
//! mm's page-table root, read and updated with atomic entry operations.
//! So a walk can run from anywhere, the allocator's slow path included,
//! while another mm is being faulted in. RSS counters are atomics shared
//! with their mm ([`RssStat`]), as Linux's per-mm `rss_stat` are.
//!
//! Simplifications: one lock ([`Rmap`]'s) stands for Linux's per-anon_vma
//! rwsem and per-file i_mmap rwsem; the index is a `BTreeMap` rather than
//! an interval tree (a walk filters the VMAs of an anon_vma by pgoff).

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use crate::arch::pte::{PagingMode, Pte};
use crate::direct_map::DirectMap;
use crate::mm_types::{AnonVmaId, RssKind, Vma};
use crate::pgtable::PageTable;
use crate::types::{Pfn, VirtAddr, PAGE_SHIFT};

/// Machine-wide identity of an address space.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MmId(pub u32);

/// Identity of a file's page cache (`struct address_space`), the value a
/// file page's `page->mapping` holds (shifted, with the anon bit clear).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MappingId(pub u64);

/// `PAGE_MAPPING_ANON`: the low bit of `page->mapping` marks an anon_vma.
pub const PAGE_MAPPING_ANON: u64 = 1;

/// What `page->mapping` leads to.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PageMapping {
    /// No mapping (a free, kernel or zero page).
    None,
    /// An anonymous page's anon_vma.
    Anon(AnonVmaId),
    /// A page-cache page's address_space.
    File(MappingId),
}

impl PageMapping {
    /// Encodes for `page->mapping`.
    pub fn encode(self) -> u64 {
        match self {
            PageMapping::None => 0,
            PageMapping::Anon(a) => (a.0 << 2) | PAGE_MAPPING_ANON,
            PageMapping::File(m) => m.0 << 2,
        }
    }
    /// Decodes `page->mapping`.
    pub fn decode(raw: u64) -> PageMapping {
        if raw == 0 {
            PageMapping::None
        } else if raw & PAGE_MAPPING_ANON != 0 {
            PageMapping::Anon(AnonVmaId(raw >> 2))
        } else {
            PageMapping::File(MappingId(raw >> 2))
        }
    }
}

/// An mm's RSS counters (`mm->rss_stat`), shared by the mm and the rmap
/// so a walk from another context can account an unmap.
#[derive(Debug, Default)]
pub struct RssStat {
    counts: [AtomicI64; 4],
    hiwater: AtomicU64,
}

impl RssStat {
    /// `get_mm_counter`.
    pub fn get(&self, kind: RssKind) -> u64 {
        self.counts[kind as usize].load(Relaxed).max(0) as u64
    }
    /// `add_mm_counter`; keeps the high-water mark of resident pages.
    pub fn add(&self, kind: RssKind, delta: i64) {
        self.counts[kind as usize].fetch_add(delta, Relaxed);
        self.hiwater.fetch_max(self.resident(), Relaxed);
    }
    /// File + anon + shmem pages (`get_mm_rss`).
    pub fn resident(&self) -> u64 {
        self.get(RssKind::File) + self.get(RssKind::Anon) + self.get(RssKind::Shmem)
    }
    /// Peak of [`RssStat::resident`] (`hiwater_rss`).
    pub fn hiwater(&self) -> u64 {
        self.hiwater.load(Relaxed).max(self.resident())
    }
    /// Restarts the peak at the current RSS (clear_refs 5).
    pub fn reset_hiwater(&self) {
        self.hiwater.store(self.resident(), Relaxed);
    }
    /// All four counters, indexed by [`RssKind`].
    pub fn all(&self) -> [u64; 4] {
        [
            self.get(RssKind::File),
            self.get(RssKind::Anon),
            self.get(RssKind::Swap),
            self.get(RssKind::Shmem),
        ]
    }
}

/// One address space as the rmap reaches it.
#[derive(Clone, Debug)]
pub struct MmEntry {
    /// The PGD (CR3).
    pub root: Pfn,
    /// Its paging mode.
    pub mode: PagingMode,
    /// The address-space id its TLB entries carry.
    pub asid: u16,
    /// Its RSS counters.
    pub rss: Arc<RssStat>,
}

/// `(end, pgoff)` of a VMA, keyed by `(mm, start)`.
type VmaIndex = BTreeMap<(MmId, u64), (u64, u64)>;

/// An anon_vma: the VMAs whose chain links it (through `anon_vma_chain`).
#[derive(Debug, Default)]
struct AnonVma {
    /// The anon_vma it was forked from (`anon_vma->parent`).
    parent: Option<AnonVmaId>,
    vmas: VmaIndex,
}

#[derive(Debug, Default)]
struct RmapState {
    mms: BTreeMap<MmId, MmEntry>,
    anon: BTreeMap<AnonVmaId, AnonVma>,
    /// Each file's i_mmap: the VMAs that map it, shared or private.
    files: BTreeMap<MappingId, VmaIndex>,
    next_mm: u32,
    next_anon: u64,
}

/// A place that maps a page: which mm, and where.
#[derive(Clone, Debug)]
pub struct RmapHit {
    /// The address space.
    pub mm: MmId,
    /// The virtual address of the page in it.
    pub va: VirtAddr,
    /// The mm's tables and counters.
    pub entry: MmEntry,
}

/// The machine-wide reverse map and address-space list.
#[derive(Debug, Default)]
pub struct Rmap {
    state: spin::Mutex<RmapState>,
}

impl Rmap {
    /// An empty rmap.
    pub fn new() -> Rmap {
        Rmap::default()
    }

    /// Adds an address space (`mmlist` insertion at mm creation).
    pub fn register_mm(&self, entry: MmEntry) -> MmId {
        let mut s = self.state.lock();
        s.next_mm += 1;
        let id = MmId(s.next_mm);
        s.mms.insert(id, entry);
        id
    }

    /// Removes an address space; its VMAs must be unlinked already.
    pub fn unregister_mm(&self, id: MmId) {
        self.state.lock().mms.remove(&id);
    }

    /// The registry entry of `id`.
    pub fn mm(&self, id: MmId) -> Option<MmEntry> {
        self.state.lock().mms.get(&id).cloned()
    }

    /// Changes the ASID an mm's translations are tagged with.
    pub fn set_asid(&self, id: MmId, asid: u16) {
        if let Some(e) = self.state.lock().mms.get_mut(&id) {
            e.asid = asid;
        }
    }

    /// Number of registered address spaces.
    pub fn nr_mms(&self) -> usize {
        self.state.lock().mms.len()
    }

    /// `anon_vma_alloc`: a new anon_vma, child of `parent` for fork.
    pub fn new_anon_vma(&self, parent: Option<AnonVmaId>) -> AnonVmaId {
        let mut s = self.state.lock();
        s.next_anon += 1;
        let id = AnonVmaId(s.next_anon);
        s.anon.insert(
            id,
            AnonVma {
                parent,
                vmas: BTreeMap::new(),
            },
        );
        id
    }

    /// Frees an anon_vma that no VMA ever linked (a fork that failed
    /// after `anon_vma_fork` made it).
    pub fn forget_anon_vma(&self, av: AnonVmaId) {
        let mut s = self.state.lock();
        if s.anon.get(&av).is_some_and(|a| a.vmas.is_empty()) {
            s.anon.remove(&av);
        }
    }

    /// Number of live anon_vmas (for tests and the slab accounting).
    pub fn nr_anon_vmas(&self) -> usize {
        self.state.lock().anon.len()
    }

    /// Links a VMA into its anon_vmas' chains and its file's i_mmap
    /// (`anon_vma_chain_link`, `vma_interval_tree_insert`).
    pub fn link(&self, mm: MmId, vma: &Vma, file: Option<MappingId>) {
        let mut s = self.state.lock();
        let val = (vma.end.0, vma.pgoff);
        for av in vma.anon_chain() {
            s.anon
                .entry(av)
                .or_default()
                .vmas
                .insert((mm, vma.start.0), val);
        }
        if let Some(m) = file {
            s.files.entry(m).or_default().insert((mm, vma.start.0), val);
        }
    }

    /// Unlinks a VMA (`unlink_anon_vmas`, `unlink_file_vma`); an anon_vma
    /// no VMA links any more is freed.
    pub fn unlink(&self, mm: MmId, vma: &Vma, file: Option<MappingId>) {
        let mut s = self.state.lock();
        for av in vma.anon_chain() {
            let empty = s.anon.get_mut(&av).is_some_and(|a| {
                a.vmas.remove(&(mm, vma.start.0));
                a.vmas.is_empty()
            });
            if empty {
                s.anon.remove(&av);
            }
        }
        if let Some(m) = file {
            let empty = s.files.get_mut(&m).is_some_and(|t| {
                t.remove(&(mm, vma.start.0));
                t.is_empty()
            });
            if empty {
                s.files.remove(&m);
            }
        }
    }

    /// True if some VMA maps the file (`mapping_mapped`).
    pub fn file_mapped(&self, m: MappingId) -> bool {
        self.state.lock().files.contains_key(&m)
    }

    /// The VMAs that map file `m` (its i_mmap): (mm, registry entry,
    /// start, end, pgoff).
    pub fn file_vmas(&self, m: MappingId) -> Vec<(MmId, MmEntry, u64, u64, u64)> {
        let s = self.state.lock();
        let Some(t) = s.files.get(&m) else {
            return Vec::new();
        };
        t.iter()
            .filter_map(|(&(mm, start), &(end, pgoff))| {
                s.mms.get(&mm).map(|e| (mm, e.clone(), start, end, pgoff))
            })
            .collect()
    }

    /// The parent of an anon_vma, if it was forked.
    pub fn anon_vma_parent(&self, av: AnonVmaId) -> Option<AnonVmaId> {
        self.state.lock().anon.get(&av).and_then(|a| a.parent)
    }

    /// `rmap_walk`: every (mm, address) whose VMA covers page `index` of
    /// `mapping`. The caller checks each pte really maps the page.
    pub fn walk(&self, mapping: PageMapping, index: u64) -> Vec<RmapHit> {
        let s = self.state.lock();
        let idx = match mapping {
            PageMapping::Anon(a) => s.anon.get(&a).map(|a| &a.vmas),
            PageMapping::File(m) => s.files.get(&m),
            PageMapping::None => None,
        };
        let Some(idx) = idx else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (&(mm, start), &(end, pgoff)) in idx {
            let pages = (end - start) >> PAGE_SHIFT;
            if index < pgoff || index - pgoff >= pages {
                continue;
            }
            if let Some(entry) = s.mms.get(&mm) {
                out.push(RmapHit {
                    mm,
                    va: VirtAddr(start + ((index - pgoff) << PAGE_SHIFT)),
                    entry: entry.clone(),
                });
            }
        }
        out
    }

    /// The ptes that really map `pfn` among the walk's candidates
    /// (`page_vma_mapped_walk`), with their values.
    pub fn mapped_ptes(
        &self,
        dm: &DirectMap,
        mapping: PageMapping,
        index: u64,
        pfn: Pfn,
    ) -> Vec<(RmapHit, Pte)> {
        self.walk(mapping, index)
            .into_iter()
            .filter_map(|h| {
                let view = PageTable::view(dm, h.entry.root, h.entry.mode);
                let (pte, level) = view.lookup(h.va)?;
                (level == 1 && pte.maps_page() && pte.pfn() == pfn).then_some((h, pte))
            })
            .collect()
    }

    /// Applies `f` to every pte that maps `pfn`: where it returns a new
    /// value, the pte is replaced atomically. Returns the hits it changed,
    /// with the values they held.
    fn update_mapped(
        &self,
        dm: &DirectMap,
        mapping: PageMapping,
        index: u64,
        pfn: Pfn,
        f: &dyn Fn(Pte) -> Option<Pte>,
    ) -> Vec<(RmapHit, Pte)> {
        let mut out = Vec::new();
        for (h, pte) in self.mapped_ptes(dm, mapping, index, pfn) {
            if f(pte).is_none() {
                continue;
            }
            let view = PageTable::view(dm, h.entry.root, h.entry.mode);
            // Recomputed on the value the exchange sees, so an accessed or
            // dirty bit the MMU set meanwhile is not lost.
            if let Some(old) = view.update(h.va, &|p| f(p).unwrap_or(p)) {
                out.push((h, old));
            }
        }
        out
    }

    /// `folio_referenced`: the ptes mapping `pfn` that were young, with
    /// their accessed bits cleared (the caller flushes the TLBs, as
    /// `ptep_clear_flush_young` does).
    pub fn referenced(
        &self,
        dm: &DirectMap,
        mapping: PageMapping,
        index: u64,
        pfn: Pfn,
    ) -> Vec<RmapHit> {
        self.update_mapped(dm, mapping, index, pfn, &|p| {
            p.accessed().then(|| p.mkold())
        })
        .into_iter()
        .map(|(h, _)| h)
        .collect()
    }

    /// `try_to_unmap` of a page: replaces every pte that maps `pfn` with
    /// `new(mode)` (none, or a swap entry) and returns the hits with the entries they held (so the caller can
    /// transfer dirty bits, drop the mapcount and page references, account
    /// RSS in each mm and flush each mm's TLB).
    pub fn unmap_all(
        &self,
        dm: &DirectMap,
        mapping: PageMapping,
        index: u64,
        pfn: Pfn,
        new: &dyn Fn(PagingMode) -> Pte,
    ) -> Vec<(RmapHit, Pte)> {
        let mut out = Vec::new();
        for (h, _) in self.mapped_ptes(dm, mapping, index, pfn) {
            let view = PageTable::view(dm, h.entry.root, h.entry.mode);
            let value = new(h.entry.mode);
            if let Some(old) = view.update(h.va, &|_| value) {
                out.push((h, old));
            }
        }
        out
    }
}
