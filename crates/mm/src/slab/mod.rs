//! The slab allocators' shared internals, as mm/slab.h is for Linux's:
//! the types both engines and mm/slab_common.c use (an object, a cache, the
//! slabinfo numbers, the slub_debug reports), the allocator's global state
//! (`slab_caches`, the kmalloc table, every CPU's slab state), the slab page
//! fields, `virt_to_slab` and slab page accounting, and `SlabEngine`,
//! the hooks an engine implements.
//!
//! Two engines sit below, one chosen per machine by [`SlabKind`]:
//! [`slub`] (mm/slub.c, the default, as in Linux 6.18) and [`slab`]
//! (mm/slab.c, the classic SLAB, removed from Linux in 6.8 and kept here for
//! comparison). Each keeps its own fields in its own structs, as Linux
//! 6.7's include/linux/slub_def.h and slab_def.h did: `SlubCache`,
//! `KmemCacheCpu` and `SlubNode`; `SlabCache`, `ArrayCache` and
//! `SlabNode`. The API (`kmem_cache_create`, `kmalloc`, ...) is in
//! [`crate::slab_common`], the one place that picks the engine. Modules
//! depend downwards only: slab_common on the engines, the engines on this
//! module, this module on neither.
//!
//! Concurrency follows Linux: every CPU's slab state (SLUB's CPU slab and
//! partial list, SLAB's array caches) sits behind one lock per CPU, every
//! node's lists behind the cache's per-node `list_lock`. The lock order is
//! stated at the top of each engine.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::panic::Location;
use core::sync::atomic::{AtomicI32, AtomicU64, Ordering::Relaxed};

use crate::gfp::Gfp;
use crate::memmap::{Memmap, Page, PageFlags, PageList};
use crate::page_alloc::{CpuId, PageAlloc};
use crate::types::{Order, Pfn, PhysAddr};
use crate::vmstat::NodeStat;

#[allow(clippy::module_inception)]
pub mod slab;
pub mod slub;

/// `KMALLOC_SHIFT_HIGH` = PAGE_SHIFT + 1: the largest kmalloc cache is 8 KiB.
pub const KMALLOC_SHIFT_HIGH: usize = 13;

/// An object handed out by a slab cache or kmalloc: its physical address.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct ObjPtr(pub PhysAddr);

/// What `kmalloc(0)` returns (Linux `ZERO_SIZE_PTR`, `(void *)16`): not
/// NULL, never dereferenceable, accepted by `kfree`.
pub const ZERO_SIZE_PTR: ObjPtr = ObjPtr(PhysAddr(16));

impl ObjPtr {
    /// The physical address.
    pub fn addr(self) -> PhysAddr {
        self.0
    }
    /// True for NULL or ZERO_SIZE_PTR (`ZERO_OR_NULL_PTR`).
    pub fn is_zero_or_null(self) -> bool {
        self.0 .0 <= 16
    }
}

/// Index of a cache in the allocator (`struct kmem_cache *`). An alias
/// made by merging has the id of the cache it was merged into.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct CacheId(pub u32);

/// `slab_flags_t`, with the values of Linux 6.8 (include/linux/slab.h,
/// before 6.10 renumbered them through an enum of bits).
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default, Hash)]
pub struct SlabFlags(pub u32);

bitflags::bitflags! {
    /// `SLAB_*` bits. Unknown bits are kept (`_ = !0`).
    impl SlabFlags: u32 {
        /// `SLAB_CONSISTENCY_CHECKS`: check objects on alloc and free.
        const CONSISTENCY_CHECKS = 0x0000_0100;
        /// `SLAB_RED_ZONE`: red zones around objects.
        const RED_ZONE = 0x0000_0400;
        /// `SLAB_POISON`: poison free objects.
        const POISON = 0x0000_0800;
        /// `SLAB_KMALLOC`: a kmalloc cache.
        const KMALLOC = 0x0000_1000;
        /// `SLAB_HWCACHE_ALIGN`: align objects to the cache line.
        const HWCACHE_ALIGN = 0x0000_2000;
        /// `SLAB_CACHE_DMA`: slabs from ZONE_DMA.
        const CACHE_DMA = 0x0000_4000;
        /// `SLAB_CACHE_DMA32`: slabs from ZONE_DMA32.
        const CACHE_DMA32 = 0x0000_8000;
        /// `SLAB_STORE_USER`: record the last owner of each object.
        const STORE_USER = 0x0001_0000;
        /// `SLAB_RECLAIM_ACCOUNT`: slabs count as SReclaimable.
        const RECLAIM_ACCOUNT = 0x0002_0000;
        /// `SLAB_PANIC`: a failed creation is fatal.
        const PANIC = 0x0004_0000;
        /// `SLAB_TYPESAFE_BY_RCU`: slabs freed after an RCU grace period.
        const TYPESAFE_BY_RCU = 0x0008_0000;
        /// `SLAB_NO_MERGE`: never merge with another cache.
        const NO_MERGE = 0x0100_0000;
        /// `SLAB_ACCOUNT`: objects charged to the memory cgroup.
        const ACCOUNT = 0x0400_0000;
        const _ = !0;
    }
}

impl SlabFlags {
    /// Flags that turn on slub_debug-style checking for a cache.
    pub const DEBUG_FLAGS: SlabFlags = SlabFlags::RED_ZONE
        .union(SlabFlags::POISON)
        .union(SlabFlags::STORE_USER)
        .union(SlabFlags::CONSISTENCY_CHECKS);
    /// `SLAB_NEVER_MERGE`.
    pub const NEVER_MERGE: SlabFlags = SlabFlags::DEBUG_FLAGS
        .union(SlabFlags::TYPESAFE_BY_RCU)
        .union(SlabFlags::NO_MERGE);
    /// `SLAB_MERGE_SAME`: flags two caches must share to merge.
    pub const MERGE_SAME: SlabFlags = SlabFlags::RECLAIM_ACCOUNT
        .union(SlabFlags::CACHE_DMA)
        .union(SlabFlags::CACHE_DMA32)
        .union(SlabFlags::ACCOUNT);
}

/// A constructor: runs once on each object when its slab is set up.
pub type Ctor = fn(&mut [u8]);

/// Which allocator a machine runs (`--slab slub|slab`).
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default)]
pub enum SlabKind {
    /// SLUB, Linux's only allocator since 6.8.
    #[default]
    Slub,
    /// The classic SLAB (mm/slab.c, removed in 6.8).
    Slab,
}

/// The size of a cache line (`cache_line_size()` on x86-64).
pub const CACHE_LINE_SIZE: u64 = 64;
/// `ARCH_KMALLOC_MINALIGN` / `ARCH_SLAB_MINALIGN` (sizeof(unsigned long long)).
pub const ARCH_MINALIGN: u64 = 8;

/// `slub_debug` byte patterns (include/linux/poison.h).
pub const SLUB_RED_INACTIVE: u8 = 0xbb;
/// Red zone of an allocated object.
pub const SLUB_RED_ACTIVE: u8 = 0xcc;
/// An object in use, never written (with POISON).
pub const POISON_INUSE: u8 = 0x5a;
/// A free object.
pub const POISON_FREE: u8 = 0x6b;
/// The last byte of a free object.
pub const POISON_END: u8 = 0xa5;

/// `calculate_alignment`: HWCACHE_ALIGN gives cache-line alignment, halved
/// while the object fits twice; never below ARCH_SLAB_MINALIGN, always a
/// multiple of a pointer.
pub fn calculate_alignment(flags: SlabFlags, align: u64, size: u64) -> u64 {
    let mut align = align.max(1);
    if flags.contains(SlabFlags::HWCACHE_ALIGN) {
        let mut ralign = CACHE_LINE_SIZE;
        while size <= ralign / 2 {
            ralign /= 2;
        }
        align = align.max(ralign);
    }
    align.max(ARCH_MINALIGN).next_multiple_of(8)
}

/// Who allocated or freed an object (`struct track`), as stored with
/// STORE_USER: the caller's source location (our `_RET_IP_`) and CPU.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Track {
    /// The call site.
    pub caller: &'static Location<'static>,
    /// The CPU it ran on.
    pub cpu: u32,
}

/// A slub_debug finding. Every detection is reported, logged to the kernel
/// log in Linux's wording and repaired; none corrupts memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlabReport {
    /// A red zone byte changed (`what` = "Left Redzone", "Right Redzone"
    /// or "kmalloc Redzone").
    Redzone {
        /// Cache name.
        cache: String,
        /// The object.
        obj: ObjPtr,
        /// Which red zone.
        what: &'static str,
        /// First bad byte.
        at: PhysAddr,
        /// Its value.
        found: u8,
        /// The value it should have.
        expected: u8,
    },
    /// A poisoned free object was written: use after free.
    Poison {
        /// Cache name.
        cache: String,
        /// The object.
        obj: ObjPtr,
        /// First bad byte.
        at: PhysAddr,
        /// Its value.
        found: u8,
        /// The value it should have.
        expected: u8,
    },
    /// An object freed twice.
    DoubleFree {
        /// Cache name.
        cache: String,
        /// The object.
        obj: ObjPtr,
    },
    /// A pointer that is not an object of this cache.
    InvalidFree {
        /// Cache name, if the address is in a slab at all.
        cache: String,
        /// The pointer.
        obj: ObjPtr,
    },
    /// A free pointer inside the slab points outside it.
    FreepointerCorrupt {
        /// Cache name.
        cache: String,
        /// The object whose free pointer is bad.
        obj: ObjPtr,
    },
    /// A slab's in-use counter disagrees with its freelist.
    WrongObjectCount {
        /// Cache name.
        cache: String,
        /// The slab.
        slab: Pfn,
        /// The counter.
        counter: u32,
        /// What the freelist says.
        counted: u32,
    },
    /// Objects left when a cache is destroyed.
    ObjectsRemaining {
        /// Cache name.
        cache: String,
        /// How many.
        count: u64,
    },
}

impl SlabReport {
    /// The "BUG cache (Not tainted): ..." title line.
    pub fn title(&self) -> String {
        match self {
            SlabReport::Redzone { cache, what, .. } => {
                format!("BUG {cache} (Not tainted): {what} overwritten")
            }
            SlabReport::Poison { cache, .. } => {
                format!("BUG {cache} (Not tainted): Poison overwritten")
            }
            SlabReport::DoubleFree { cache, .. } => {
                format!("BUG {cache} (Not tainted): Object already free")
            }
            SlabReport::InvalidFree { cache, .. } => {
                format!("BUG {cache} (Not tainted): Invalid object pointer")
            }
            SlabReport::FreepointerCorrupt { cache, .. } => {
                format!("BUG {cache} (Not tainted): Freechain corrupt")
            }
            SlabReport::WrongObjectCount {
                cache,
                counter,
                counted,
                ..
            } => format!(
                "BUG {cache} (Not tainted): Wrong object count. Counter is {counter} but counted were {counted}"
            ),
            SlabReport::ObjectsRemaining { cache, .. } => format!(
                "BUG {cache} (Not tainted): Objects remaining in {cache} on __kmem_cache_shutdown()"
            ),
        }
    }
}

/// A slab cache (`struct kmem_cache`). Layout fields are fixed at creation.
pub struct Cache {
    /// Its id.
    pub id: CacheId,
    /// Its name.
    pub name: String,
    /// The size callers asked for (grows when another cache merges in).
    pub object_size: AtomicU64,
    /// Bytes per object slot, metadata included (`s->size`).
    pub size: u64,
    /// Object alignment.
    pub align: u64,
    /// Flags.
    pub flags: SlabFlags,
    /// Constructor.
    pub ctor: Option<Ctor>,
    /// Slab order.
    pub order: u8,
    /// Objects per slab.
    pub objects: u32,
    /// GFP bits every slab allocation adds (`s->allocflags`).
    pub allocflags: Gfp,
    /// Caches merged into this one, plus one (`s->refcount`).
    pub refcount: AtomicI32,
    /// slub_debug errors counted like slub_kunit's `slab_errors`.
    pub errors: AtomicU64,
    /// The engine's part: SLUB's layout and node lists, or SLAB's.
    pub(crate) engine: CacheEngine,
}

impl Cache {
    /// True if slub_debug-style checks are on.
    pub fn debug(&self) -> bool {
        self.flags.intersects(SlabFlags::DEBUG_FLAGS)
    }
    /// True if free objects are poisoned (`__OBJECT_POISON`).
    pub fn poisons(&self) -> bool {
        self.flags.contains(SlabFlags::POISON) && self.ctor.is_none()
    }
    /// The size callers asked for.
    pub fn object_size(&self) -> u64 {
        self.object_size.load(Relaxed)
    }
    /// Pages per slab.
    pub fn pages(&self) -> u64 {
        1 << self.order
    }
    /// True if slab pages count as reclaimable.
    pub fn reclaimable(&self) -> bool {
        self.flags.contains(SlabFlags::RECLAIM_ACCOUNT)
    }
    /// Slab colouring as (colours, bytes per colour step): SLAB's
    /// `colour` and `colour_off`; SLUB does not colour (no colours, steps
    /// of a cache line).
    pub fn colouring(&self) -> (u32, u64) {
        match &self.engine {
            CacheEngine::Slab(s) => (s.colour, s.colour_off),
            CacheEngine::Slub(_) => (0, CACHE_LINE_SIZE),
        }
    }
    /// Where a debug kmalloc cache stores each object's requested size
    /// (SLUB with slub_debug's orig_size; never on SLAB).
    pub(crate) fn orig_size_offset(&self) -> Option<u64> {
        match &self.engine {
            CacheEngine::Slub(s) => s.orig_size_offset,
            CacheEngine::Slab(_) => None,
        }
    }
    /// SLUB's part of this cache. Panics on a SLAB cache: an allocator
    /// runs one engine, chosen at boot, so the engines only ever see
    /// their own caches (an internal invariant, not an input).
    #[inline]
    pub(crate) fn slub(&self) -> &SlubCache {
        match &self.engine {
            CacheEngine::Slub(s) => s,
            CacheEngine::Slab(_) => wrong_engine(&self.name, "SLUB"),
        }
    }
    /// SLAB's part of this cache; panics on a SLUB cache, as [`Self::slub`].
    #[inline]
    pub(crate) fn slab(&self) -> &SlabCache {
        match &self.engine {
            CacheEngine::Slab(s) => s,
            CacheEngine::Slub(_) => wrong_engine(&self.name, "SLAB"),
        }
    }
}

/// The panic of [`Cache::slub`] and [`Cache::slab`].
#[cold]
#[inline(never)]
fn wrong_engine(cache: &str, engine: &str) -> ! {
    panic!("slab cache {cache} reached by {engine}, which did not create it")
}

// ----------------------------------------------------------------------
// SLUB's part (include/linux/slub_def.h, mm/slub.c's kmem_cache_node)
// ----------------------------------------------------------------------

/// SLUB's fields of `struct kmem_cache`: the object layout, the partial
/// list limits and the per-node lists.
pub(crate) struct SlubCache {
    /// Offset of the free pointer inside the slot's object.
    pub offset: u64,
    /// Object plus right red zone and inline free pointer (`s->inuse`).
    pub inuse: u64,
    /// Left red zone bytes at the start of each slot.
    pub red_left_pad: u64,
    /// `min_partial`: empty slabs a node keeps.
    pub min_partial: u64,
    /// Per-CPU partial slabs kept (`cpu_partial_slabs`).
    pub cpu_partial_slabs: usize,
    /// slub_debug: the stored tracks sit here in each slot.
    pub track_offset: u64,
    /// slub_debug: where kmalloc's requested size is stored (`slub_debug_orig_size`).
    pub orig_size_offset: Option<u64>,
    /// Per-node lists (`s->node[]`).
    pub nodes: Box<[spin::Mutex<SlubNode>]>,
}

impl SlubCache {
    /// Node `nid`'s lists, locked (`n->list_lock`).
    pub(crate) fn node(&self, nid: u32) -> spin::MutexGuard<'_, SlubNode> {
        self.nodes[nid as usize].lock()
    }
}

/// SLUB's `struct kmem_cache_node`.
#[derive(Default)]
pub(crate) struct SlubNode {
    /// Slabs with free and used objects (also empty ones kept for `min_partial`).
    pub partial: PageList,
    /// Slabs with every object in use (SLUB keeps them listed, as with debugging).
    pub full: PageList,
    /// Slabs on `partial`.
    pub nr_partial: u64,
    /// Slabs of the node (`nr_slabs`).
    pub nr_slabs: u64,
    /// Objects in them (`total_objects`).
    pub total_objects: u64,
}

/// SLUB's `struct kmem_cache_cpu`, with the cache it belongs to.
pub(crate) struct KmemCacheCpu {
    /// The cache.
    pub cache: Arc<Cache>,
    /// The cache's free pointer offset (`s->offset`), copied here so that
    /// the fast paths read one structure.
    pub offset: u64,
    /// Mask from an object's PFN to its slab's head PFN (the cache's
    /// order), copied here for the same reason.
    pub slab_mask: u64,
    /// The CPU slab's head PFN, or NIL.
    pub slab: u64,
    /// The CPU freelist (first free object's address, 0 = empty).
    pub freelist: u64,
    /// Frozen partial slabs of this CPU.
    pub partial: Vec<u64>,
}

// ----------------------------------------------------------------------
// SLAB's part (include/linux/slab_def.h, mm/slab.h's kmem_cache_node)
// ----------------------------------------------------------------------

/// SLAB's place for a slab's free-index array (mm/slab.c).
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum FreelistPlace {
    /// `OBJFREELIST_SLAB`: inside the free object handed out last.
    InObject,
    /// On the slab, after the objects and the colour space.
    OnSlab,
}

/// SLAB's fields of `struct kmem_cache`: colouring, the freelist's place,
/// the tunables and the per-node lists.
pub(crate) struct SlabCache {
    /// Colours (`cachep->colour`).
    pub colour: u32,
    /// Colour step (`cachep->colour_off`).
    pub colour_off: u64,
    /// Where the freelist lives.
    pub freelist_place: FreelistPlace,
    /// Tunable `limit`: objects an array cache holds.
    pub limit: u32,
    /// Tunable `batchcount`: objects moved at a time.
    pub batchcount: u32,
    /// Tunable `shared` factor.
    pub shared: u32,
    /// Per-node lists (`cachep->node[]`).
    pub nodes: Box<[spin::Mutex<SlabNode>]>,
}

impl SlabCache {
    /// Node `nid`'s lists, locked (`n->list_lock`).
    pub(crate) fn node(&self, nid: u32) -> spin::MutexGuard<'_, SlabNode> {
        self.nodes[nid as usize].lock()
    }
}

/// SLAB's `struct kmem_cache_node`.
#[derive(Default)]
pub(crate) struct SlabNode {
    /// Slabs with free and used objects.
    pub partial: PageList,
    /// Slabs with every object in use.
    pub full: PageList,
    /// Slabs with no object in use.
    pub free: PageList,
    /// Slabs of the node (`total_slabs`).
    pub nr_slabs: u64,
    /// Objects in them.
    pub total_objects: u64,
    /// Free objects in the node's slabs.
    pub free_objects: u64,
    /// Free slabs.
    pub free_slabs: u64,
    /// `free_limit`: free objects kept before free slabs are destroyed.
    pub free_limit: u64,
    /// The node's shared array cache.
    pub shared: Vec<u64>,
    /// Colour of the next slab.
    pub colour_next: u32,
}

/// SLAB's `struct array_cache` of one CPU, with the cache it belongs to.
pub(crate) struct ArrayCache {
    /// The cache.
    pub cache: Arc<Cache>,
    /// Object addresses, LIFO (`entry[]`, `avail` = its length).
    pub ac: Vec<u64>,
}

/// The engine's part of a cache.
pub(crate) enum CacheEngine {
    /// A SLUB cache.
    Slub(SlubCache),
    /// A SLAB cache.
    Slab(SlabCache),
}

/// One CPU's state for one cache: SLUB's `struct kmem_cache_cpu` or
/// SLAB's `struct array_cache`, each with the cache it belongs to.
pub(crate) enum CpuCache {
    /// SLUB's CPU slab, freelist and partial list.
    Slub(KmemCacheCpu),
    /// SLAB's array cache.
    Slab(ArrayCache),
}

impl CpuCache {
    /// The cache this state belongs to.
    pub(crate) fn cache(&self) -> &Arc<Cache> {
        match self {
            CpuCache::Slub(c) => &c.cache,
            CpuCache::Slab(c) => &c.cache,
        }
    }
}

/// Every per-CPU cache state of one CPU, behind that CPU's lock.
pub(crate) struct CpuState {
    /// By cache id; None where the cache is destroyed.
    pub caches: Vec<Option<CpuCache>>,
}

/// The caches of one allocator (`slab_caches` and the ids behind them).
pub(crate) struct Registry {
    /// Every cache by id; None once destroyed.
    pub(crate) caches: Vec<Option<Arc<Cache>>>,
    /// Live caches, oldest first (`slab_caches`; slabinfo prints newest first).
    pub(crate) list: Vec<CacheId>,
}

/// Slab page fields, as SLUB and SLAB keep them in `struct slab`: every
/// page of a slab has the SLAB type and `private` = cache id | order << 32;
/// the head page's `mapping` holds the freelist and `index` the counters.
/// `index` bit: the slab is a CPU slab or on a CPU partial list (SLUB).
pub(crate) const FROZEN: u64 = 1 << 63;
/// `index` bit: the slab is on its node's partial list.
pub(crate) const ON_PARTIAL: u64 = 1 << 62;
/// `index` bit: the slab is on its node's full list.
pub(crate) const ON_FULL: u64 = 1 << 61;
/// `index` bit: the slab is on its node's free list (SLAB).
pub(crate) const ON_FREE: u64 = 1 << 60;
/// `index` bits: objects in use.
pub(crate) const INUSE_MASK: u64 = 0xffff_ffff;

/// What an engine provides to mm/slab_common.c (the `__kmem_cache_*` hooks
/// and the fast paths). Implemented by [`slub::Slub`] and [`slab::Slab`],
/// dispatched statically by [`crate::slab_common`] on the allocator's
/// [`SlabKind`] so that the fast paths inline.
pub(crate) trait SlabEngine {
    /// `KMALLOC_SHIFT_LOW`: the smallest kmalloc cache is `1 << this` bytes.
    const KMALLOC_SHIFT_LOW: usize;
    /// True if compatible caches merge (`slab_unmergeable` is false).
    const MERGES: bool;
    /// The engine's per-CPU state of one cache.
    type Cpu;

    /// `__kmem_cache_create`: a cache's layout and engine part.
    fn create_cache(
        k: &Kmem,
        id: CacheId,
        name: &str,
        size: u64,
        align: u64,
        flags: SlabFlags,
        ctor: Option<Ctor>,
    ) -> Cache;
    /// The empty per-CPU state of a new cache.
    fn new_cpu(cache: &Arc<Cache>) -> CpuCache;
    /// This engine's state inside a [`CpuCache`] (None for the other engine's).
    fn cpu_ref(c: &CpuCache) -> Option<&Self::Cpu>;
    /// `slab_alloc` on the CPU whose state `c` is.
    fn alloc(
        k: &Kmem,
        cpu: CpuId,
        c: &mut Self::Cpu,
        gfp: Gfp,
        orig_size: Option<u64>,
        caller: &'static Location<'static>,
    ) -> Option<ObjPtr>;
    /// `slab_free` on the CPU whose state `c` is.
    fn free(
        k: &Kmem,
        cpu: CpuId,
        c: &mut Self::Cpu,
        obj: ObjPtr,
        caller: &'static Location<'static>,
    ) -> Result<(), SlabReport>;
    /// `__kmem_cache_shrink`: flushes every CPU's state of the cache and
    /// frees its empty slabs. Returns the pages freed.
    fn shrink(k: &Kmem, cpu: CpuId, s: &Cache) -> u64;
    /// Slabs the cache holds on all nodes.
    fn nr_slabs(s: &Cache) -> u64;
    /// `get_slabinfo`.
    fn slabinfo(k: &Kmem, s: &Cache) -> SlabInfo;
    /// Checks every slab and per-CPU object of a cache; the CPUs' states are
    /// passed locked.
    fn validate(k: &Kmem, s: &Cache, cpus: &[&Self::Cpu]) -> Result<CacheCounts, String>;
    /// Every object of a cache still allocated, in address order.
    fn live_objects(k: &Kmem, s: &Cache, cpus: &[&Self::Cpu]) -> Vec<ObjPtr>;
    /// The owner track stored with an object (`get_track`), where kept.
    fn alloc_track(k: &Kmem, s: &Cache, obj: ObjPtr) -> Option<Track>;
    /// slub_debug's `validate_slab_cache`; the errors counted.
    fn validate_slab_cache(k: &Kmem, s: &Cache) -> u64;
    /// The boot message of `kmem_cache_init`, if the engine prints one.
    fn boot_message(pa: &PageAlloc);
}

/// The slab allocator of one machine: its caches, per-CPU state and kmalloc
/// table. Operations go through a [`Kmem`] view that pairs it with the
/// machine's page allocator.
pub struct SlabAllocator {
    /// SLUB or SLAB.
    pub kind: SlabKind,
    /// CPUs of the machine.
    pub(crate) nr_cpus: usize,
    /// Nodes of the machine.
    pub(crate) nr_nodes: usize,
    /// Each CPU's node.
    pub(crate) cpu_node: Vec<u32>,
    /// Each node's memmap, where the slab page fields live.
    pub(crate) memmaps: Vec<Memmap>,
    /// The caches (`slab_caches`, under `slab_mutex`).
    pub(crate) registry: spin::RwLock<Registry>,
    /// Every CPU's slab state, one lock per CPU.
    pub(crate) cpus: Box<[spin::Mutex<CpuState>]>,
    /// `kmalloc_caches[type][index]`: cache ids, u32::MAX where none.
    pub(crate) kmalloc: [[u32; KMALLOC_SHIFT_HIGH + 1]; 4],
    /// The kernel caches by the name they were created with, merged or
    /// not: what `kmem_cache_create` handed back at init.
    pub(crate) kernel_caches: Vec<(&'static str, CacheId)>,
    /// Interned call sites for STORE_USER tracks.
    pub(crate) locations: spin::Mutex<Vec<&'static Location<'static>>>,
    /// Test hook (`should_failslab`): fail this many new-slab allocations.
    pub fail_new_slabs: AtomicU64,
    /// slub_debug reports not yet taken.
    pub(crate) reports: spin::Mutex<Vec<SlabReport>>,
    /// Once `kmem_cache_init` has bootstrapped: each cache's own
    /// `struct kmem_cache` (from the kmem_cache cache) and one
    /// `struct kmem_cache_node` per node with memory (from kmem_cache_node),
    /// by cache id, as Linux allocates them for every cache it creates.
    pub(crate) meta: spin::Mutex<Option<Vec<CacheMeta>>>,
}

/// A cache's own structures: its kmem_cache and kmem_cache_node objects.
pub(crate) type CacheMeta = Vec<(CacheId, ObjPtr)>;

/// The ids `kmem_cache_init` gives the caches of caches.
pub(crate) const KMEM_CACHE: CacheId = CacheId(0);
/// The id of `kmem_cache_node`.
pub(crate) const KMEM_CACHE_NODE: CacheId = CacheId(1);

/// The slab allocator bound to its machine's page allocator: the kernel's
/// slab API (`kmem_cache_*`, `kmalloc` family).
#[derive(Copy, Clone)]
pub struct Kmem<'a> {
    /// The slab allocator.
    pub sa: &'a SlabAllocator,
    /// The page allocator slabs come from.
    pub pa: &'a PageAlloc,
    /// The page allocator's tracepoints, one load closer to the kmalloc
    /// and kfree fast paths, which test them on entry.
    pub(crate) trace: &'a crate::trace::Trace,
}

/// One line of /proc/slabinfo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlabInfo {
    /// Cache name.
    pub name: String,
    /// Objects in use.
    pub active_objs: u64,
    /// Objects in all slabs.
    pub num_objs: u64,
    /// `s->size`.
    pub objsize: u64,
    /// Objects per slab.
    pub objperslab: u64,
    /// Pages per slab.
    pub pagesperslab: u64,
    /// SLAB tunables (0 for SLUB).
    pub limit: u64,
    /// SLAB batchcount.
    pub batchcount: u64,
    /// SLAB shared factor.
    pub sharedfactor: u64,
    /// Slabs with an object in use (SLUB: all slabs).
    pub active_slabs: u64,
    /// All slabs.
    pub num_slabs: u64,
    /// SLAB: objects in the shared arrays.
    pub sharedavail: u64,
}

/// Per-cache counts found by [`Kmem::validate`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheCounts {
    /// Slabs.
    pub slabs: u64,
    /// Objects in all slabs.
    pub objects: u64,
    /// Objects handed out (not on any freelist or per-CPU cache).
    pub live: u64,
}

impl SlabAllocator {
    /// An allocator with no caches (tests build small configurations on it).
    pub fn empty(pa: &PageAlloc, kind: SlabKind) -> SlabAllocator {
        let nr_nodes = pa.nodes.len();
        SlabAllocator {
            kind,
            nr_cpus: pa.nr_cpus(),
            nr_nodes,
            cpu_node: pa.cpu_node.clone(),
            memmaps: pa
                .nodes
                .iter()
                .map(|n| n.zones[0].memmap().clone())
                .collect(),
            registry: spin::RwLock::new(Registry {
                caches: Vec::new(),
                list: Vec::new(),
            }),
            cpus: (0..pa.nr_cpus())
                .map(|_| spin::Mutex::new(CpuState { caches: Vec::new() }))
                .collect(),
            kmalloc: [[u32::MAX; KMALLOC_SHIFT_HIGH + 1]; 4],
            kernel_caches: Vec::new(),
            locations: spin::Mutex::new(Vec::new()),
            fail_new_slabs: AtomicU64::new(0),
            reports: spin::Mutex::new(Vec::new()),
            meta: spin::Mutex::new(None),
        }
    }

    /// Number of CPUs.
    pub fn nr_cpus(&self) -> usize {
        self.nr_cpus
    }

    /// The cache behind an id, if it is alive.
    pub fn cache(&self, id: CacheId) -> Option<Arc<Cache>> {
        self.registry
            .read()
            .caches
            .get(id.0 as usize)
            .and_then(|c| c.clone())
    }

    /// Node `nid`'s memmap.
    pub(crate) fn memmap(&self, nid: u32) -> &Memmap {
        &self.memmaps[nid as usize]
    }

    /// The page of `pfn`, if it is in RAM.
    #[inline]
    pub(crate) fn page(&self, pfn: Pfn) -> Option<&Page> {
        self.memmaps
            .iter()
            .find(|m| m.contains(pfn))
            .map(|m| m.page(pfn))
    }

    /// `cpu_to_node`.
    pub(crate) fn cpu_node(&self, cpu: CpuId) -> u32 {
        self.cpu_node[cpu.0]
    }

    /// Nodes of the machine.
    pub(crate) fn nr_nodes(&self) -> usize {
        self.nr_nodes
    }

    /// A call site's number for an owner track (1-based; 0 is none).
    pub(crate) fn intern(&self, loc: &'static Location<'static>) -> u64 {
        let mut l = self.locations.lock();
        if let Some(i) = l.iter().position(|x| core::ptr::eq(*x, loc)) {
            return i as u64 + 1;
        }
        l.push(loc);
        l.len() as u64
    }

    /// Keeps a slub_debug report for [`Self::take_reports`].
    pub(crate) fn push_report(&self, r: SlabReport) {
        self.reports.lock().push(r);
    }

    /// Takes the slub_debug reports made since the last call.
    pub fn take_reports(&self) -> Vec<SlabReport> {
        core::mem::take(&mut *self.reports.lock())
    }

    /// The call site numbered `id` by [`Self::intern`].
    pub(crate) fn location(&self, id: u64) -> Option<&'static Location<'static>> {
        if id == 0 {
            return None;
        }
        self.locations.lock().get(id as usize - 1).copied()
    }
}

impl<'a> Kmem<'a> {
    /// The head PFN and cache of the slab holding `obj`, if it is in one
    /// (`virt_to_slab`). Slabs are naturally aligned buddy blocks, so the
    /// head is the PFN rounded down to the slab order.
    #[inline]
    pub fn obj_slab(&self, obj: ObjPtr) -> Option<(Pfn, CacheId)> {
        let pfn = obj.0.pfn();
        let page = self.sa.page(pfn)?;
        if !page.test(PageFlags::SLAB) {
            return None;
        }
        let p = page.private();
        let order = (p >> 32) as u8;
        Some((Pfn(pfn.0 & !((1u64 << order) - 1)), CacheId(p as u32)))
    }

    // ----- shared slab bookkeeping -----

    /// Allocates and tags the pages of a new slab (`allocate_slab` /
    /// `kmem_getpages`) and accounts them; the engine lays out the objects.
    pub(crate) fn new_slab_pages(&self, cpu: CpuId, s: &Cache, gfp: Gfp) -> Option<Pfn> {
        if self
            .sa
            .fail_new_slabs
            .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1))
            .is_ok()
        {
            return None;
        }
        let keep = Gfp::DIRECT_RECLAIM.0
            | Gfp::KSWAPD_RECLAIM.0
            | Gfp::IO.0
            | Gfp::FS.0
            | Gfp::HIGH.0
            | Gfp::NOWARN.0
            | Gfp::NOFAIL.0
            | Gfp::NORETRY.0
            | Gfp::RETRY_MAYFAIL.0
            | Gfp::MEMALLOC.0
            | Gfp::NOMEMALLOC.0;
        let flags = Gfp(gfp.0 & keep) | s.allocflags;
        let pfn = self.pa.alloc_pages(cpu, flags, Order(s.order))?;
        let tag = s.id.0 as u64 | (s.order as u64) << 32;
        let mut nid = 0;
        for i in 0..s.pages() {
            let p = self.sa.page(pfn + i)?;
            p.set(PageFlags::SLAB);
            p.set_private(tag);
            nid = p.nid();
        }
        let head = self.sa.page(pfn)?;
        head.set_mapping(0);
        head.set_index(0);
        self.account_slab(s, nid, s.pages() as i64);
        Some(pfn)
    }

    /// Counts `pages` slab pages in or out of NR_SLAB_RECLAIMABLE or
    /// NR_SLAB_UNRECLAIMABLE by the cache's SLAB_RECLAIM_ACCOUNT
    /// (`account_slab` / `unaccount_slab`).
    fn account_slab(&self, s: &Cache, nid: u32, pages: i64) {
        let item = if s.reclaimable() {
            NodeStat::NrSlabReclaimable
        } else {
            NodeStat::NrSlabUnreclaimable
        };
        self.pa.nodes[nid as usize].stats.add(item, pages);
    }

    /// Untags, unaccounts and frees a slab's pages (`__free_slab`).
    pub(crate) fn free_slab_pages(&self, cpu: CpuId, s: &Cache, pfn: Pfn) {
        let mut nid = 0;
        for i in 0..s.pages() {
            if let Some(p) = self.sa.page(pfn + i) {
                p.clear(PageFlags::SLAB);
                p.set_private(0);
                p.set_mapping(0);
                p.set_index(0);
                nid = p.nid();
            }
        }
        self.account_slab(s, nid, -(s.pages() as i64));
        self.pa.free_pages(cpu, pfn, Order(s.order));
    }
}

/// A fresh per-node list array for a new cache, one per node.
pub(crate) fn new_nodes<N: Default>(n: usize) -> Box<[spin::Mutex<N>]> {
    (0..n).map(|_| spin::Mutex::new(N::default())).collect()
}

/// The geometry an engine computes for a new cache.
pub(crate) struct CacheLayout {
    /// Bytes per object slot (`s->size`).
    pub size: u64,
    /// Object alignment.
    pub align: u64,
    /// Slab order.
    pub order: u8,
    /// Objects per slab.
    pub objects: u32,
}

impl Cache {
    /// A cache as an engine's `__kmem_cache_create` builds it: the fields
    /// common to both engines, its geometry and the engine's part.
    pub(crate) fn new(
        id: CacheId,
        name: &str,
        object_size: u64,
        flags: SlabFlags,
        ctor: Option<Ctor>,
        layout: CacheLayout,
        engine: CacheEngine,
    ) -> Cache {
        let mut allocflags = Gfp(0);
        if flags.contains(SlabFlags::CACHE_DMA) {
            allocflags |= Gfp::DMA;
        }
        if flags.contains(SlabFlags::CACHE_DMA32) {
            allocflags |= Gfp::DMA32;
        }
        if flags.contains(SlabFlags::RECLAIM_ACCOUNT) {
            allocflags |= Gfp::RECLAIMABLE;
        }
        Cache {
            id,
            name: String::from(name),
            object_size: AtomicU64::new(object_size),
            size: layout.size,
            align: layout.align,
            flags,
            ctor,
            order: layout.order,
            objects: layout.objects,
            allocflags,
            refcount: AtomicI32::new(1),
            errors: AtomicU64::new(0),
            engine,
        }
    }
}

/// Runs a constructor on the bytes of an object of a slab being set up.
/// The bytes are copied out, constructed and copied back, so that no host
/// reference into RAM is ever made (constructors run once per object, at
/// slab setup only).
pub(crate) fn run_ctor(dm: &crate::direct_map::DirectMap, pa: u64, len: u64, ctor: Ctor) {
    let mut buf = alloc::vec![0u8; len as usize];
    dm.read(PhysAddr(pa), &mut buf);
    ctor(&mut buf);
    dm.write(PhysAddr(pa), &buf);
}
