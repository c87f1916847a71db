//! Object caches shared by both slab allocators: `kmem_cache_create` and
//! friends, cache merging, the kmalloc size classes and `/proc/slabinfo`'s
//! numbers. Mirrors mm/slab_common.c (and include/linux/slab.h).
//!
//! Objects live in simulated RAM: an object is its physical address
//! ([`ObjPtr`]) and its bytes are reached through the direct map. Two
//! engines sit behind one interface, chosen per machine by [`SlabKind`]:
//! [`crate::slab::slub`] (the default, as in Linux 6.18) and
//! [`crate::slab::slab`] (the classic SLAB, removed from Linux in 6.8 and
//! kept here for comparison). The types both share are in [`crate::slab`]
//! (mm/slab.h) and re-exported here, where other crates find them; this
//! module is the one place that picks an engine (`with_engine`).
//!
//! Simplifications, each said where it is made: no RCU-deferred freeing, no
//! memcg charging (kmalloc-cg-* exist and count, nothing is charged), no
//! NUMA policies beyond "the CPU's node first".

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::panic::Location;
use core::sync::atomic::Ordering::Relaxed;

use crate::errno::Errno;
use crate::gfp::Gfp;
use crate::memmap::PageFlags;
use crate::page_alloc::{CpuId, PageAlloc};
use crate::slab::slab::Slab;
use crate::slab::slub::Slub;
pub use crate::slab::{
    calculate_alignment, Cache, CacheCounts, CacheId, Ctor, Kmem, ObjPtr, SlabAllocator, SlabFlags,
    SlabInfo, SlabKind, SlabReport, Track, ARCH_MINALIGN, CACHE_LINE_SIZE, KMALLOC_SHIFT_HIGH,
    POISON_END, POISON_FREE, POISON_INUSE, SLUB_RED_ACTIVE, SLUB_RED_INACTIVE, ZERO_SIZE_PTR,
};
use crate::slab::{CpuCache, CpuState, Registry, SlabEngine, KMEM_CACHE, KMEM_CACHE_NODE};
use crate::types::{Order, PAGE_SIZE};
use crate::vmstat::NodeStat;

/// Runs `$body` with `$E` naming an engine (`slub::Slub` or
/// `slab::Slab`): the one place an engine is picked, with static dispatch
/// so that the fast paths inline. `with_engine!(kind, E => ...)` picks it
/// by allocator kind; `with_engine!(cpu c, E, x => ...)` by a per-CPU
/// state, binding `x` to the engine's part of it (the fast paths need no
/// second test of the kind).
macro_rules! with_engine {
    ($kind:expr, $E:ident => $body:expr) => {
        match $kind {
            SlabKind::Slub => {
                type $E = Slub;
                $body
            }
            SlabKind::Slab => {
                type $E = Slab;
                $body
            }
        }
    };
    (cpu $c:expr, $E:ident, $x:ident => $body:expr) => {
        match $c {
            CpuCache::Slub($x) => {
                type $E = Slub;
                $body
            }
            CpuCache::Slab($x) => {
                type $E = Slab;
                $body
            }
        }
    };
}

/// `KMALLOC_MAX_CACHE_SIZE`.
pub const KMALLOC_MAX_CACHE_SIZE: u64 = 1 << KMALLOC_SHIFT_HIGH;
/// `KMALLOC_MAX_SIZE`: the largest request kmalloc serves (MAX_PAGE_ORDER pages).
pub const KMALLOC_MAX_SIZE: u64 = PAGE_SIZE << crate::mmzone::MAX_PAGE_ORDER;

/// The kmalloc cache types (`enum kmalloc_cache_type`), in creation order.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum KmallocType {
    /// `kmalloc-<n>`.
    Normal = 0,
    /// `kmalloc-rcl-<n>`: __GFP_RECLAIMABLE.
    Reclaim = 1,
    /// `dma-kmalloc-<n>`: __GFP_DMA.
    Dma = 2,
    /// `kmalloc-cg-<n>`: __GFP_ACCOUNT.
    Cgroup = 3,
}

impl KmallocType {
    /// All types, in Linux's creation order.
    pub const ALL: [KmallocType; 4] = [
        KmallocType::Normal,
        KmallocType::Reclaim,
        KmallocType::Dma,
        KmallocType::Cgroup,
    ];
    /// `kmalloc_type(flags)`.
    pub fn of(gfp: Gfp) -> KmallocType {
        if gfp.0 & (Gfp::DMA.0 | Gfp::RECLAIMABLE.0 | Gfp::ACCOUNT.0) == 0 {
            KmallocType::Normal
        } else if gfp.contains(Gfp::DMA) {
            KmallocType::Dma
        } else if gfp.contains(Gfp::RECLAIMABLE) {
            KmallocType::Reclaim
        } else {
            KmallocType::Cgroup
        }
    }
    fn prefix(self) -> &'static str {
        match self {
            KmallocType::Normal => "kmalloc-",
            KmallocType::Reclaim => "kmalloc-rcl-",
            KmallocType::Dma => "dma-kmalloc-",
            KmallocType::Cgroup => "kmalloc-cg-",
        }
    }
    fn flags(self) -> SlabFlags {
        match self {
            KmallocType::Normal => SlabFlags::empty(),
            KmallocType::Reclaim => SlabFlags::RECLAIM_ACCOUNT,
            KmallocType::Dma => SlabFlags::CACHE_DMA,
            KmallocType::Cgroup => SlabFlags::ACCOUNT,
        }
    }
}

/// `kmalloc_info[]`: (size, name suffix) by kmalloc index; index 0 unused.
pub const KMALLOC_INFO: [(u64, &str); 14] = [
    (0, ""),
    (96, "96"),
    (192, "192"),
    (8, "8"),
    (16, "16"),
    (32, "32"),
    (64, "64"),
    (128, "128"),
    (256, "256"),
    (512, "512"),
    (1024, "1k"),
    (2048, "2k"),
    (4096, "4k"),
    (8192, "8k"),
];

/// `size_index[]`: the kmalloc index of requests of 1..=192 bytes, by
/// `(size - 1) / 8` (mm/slab_common.c).
const SIZE_INDEX: [u8; 24] = [
    3, 4, 5, 5, 6, 6, 6, 6, 1, 1, 1, 1, 7, 7, 7, 7, 2, 2, 2, 2, 2, 2, 2, 2,
];

/// `kmalloc_index(size)`: the size class of a request of 1..=8192 bytes.
/// `min_shift` is `KMALLOC_SHIFT_LOW` (3 for SLUB, 5 for SLAB).
pub fn kmalloc_index(size: u64, min_shift: usize) -> usize {
    debug_assert!(size > 0 && size <= KMALLOC_MAX_CACHE_SIZE);
    let i = if size <= 192 {
        SIZE_INDEX[((size - 1) / 8) as usize] as usize
    } else {
        (64 - (size - 1).leading_zeros()) as usize
    };
    if i >= 3 && i < min_shift {
        min_shift
    } else {
        i
    }
}

/// The caches `kmem_cache_init` makes for the kernel's own objects, with the
/// object sizes of this machine's Linux 6.18 (tests/host/slabinfo.txt).
pub const KERNEL_CACHES: &[(&str, u64, u32)] = {
    // Bits, so the table can be built in a const (`|` on the type is not).
    const H: u32 = SlabFlags::HWCACHE_ALIGN.bits();
    const P: u32 = SlabFlags::PANIC.bits();
    const A: u32 = SlabFlags::ACCOUNT.bits();
    const N: u32 = SlabFlags::NO_MERGE.bits();
    const R: u32 = SlabFlags::RECLAIM_ACCOUNT.bits();
    &[
        ("vmap_area", 72, P | N),
        ("maple_node", 256, P | N),
        ("radix_tree_node", 584, R | P | A | N),
        ("names_cache", 4096, H | P | N),
        ("buffer_head", 104, R | P | N),
        ("mm_slot", 40, N),
        ("task_struct", 5888, P | A | N),
        ("cred_jar", 184, H | P | A),
        ("pid", 192, H | P | A | N),
        ("mm_struct", 1600, H | P | A | N),
        ("vm_area_struct", 192, H | P | A | N),
        ("anon_vma", 104, P | A | N),
        ("anon_vma_chain", 64, P | A | N),
        ("sighand_cache", 2112, H | P | A | N),
        ("signal_cache", 1152, H | P | A | N),
        ("files_cache", 704, H | P | A | N),
        ("fs_cache", 56, H | P | A),
        ("filp", 192, H | P | A | N),
        ("dentry", 192, R | P | A | N),
        ("inode_cache", 624, R | P | A | N),
        ("uid_cache", 128, H | P | N),
        ("nsproxy", 72, P | A | N),
        ("sigqueue", 80, P | A | N),
        ("task_delay_info", 256, P | A | N),
    ]
};

/// A CPU held by one thread ([`Kmem::lock_cpu`]).
pub struct KmemCpu<'a> {
    k: Kmem<'a>,
    cpu: CpuId,
    st: spin::MutexGuard<'a, CpuState>,
}

impl KmemCpu<'_> {
    /// `kmem_cache_alloc` on the held CPU.
    #[track_caller]
    #[inline]
    pub fn kmem_cache_alloc(&mut self, cache: CacheId, gfp: Gfp) -> Option<ObjPtr> {
        self.k
            .alloc_in(&mut self.st, self.cpu, cache, gfp, None, Location::caller())
    }
    /// `kmem_cache_free` on the held CPU.
    #[track_caller]
    #[inline]
    pub fn kmem_cache_free(&mut self, cache: CacheId, obj: ObjPtr) -> Result<(), SlabReport> {
        self.k
            .free_in(&mut self.st, self.cpu, cache, obj, Location::caller())
    }
    /// `kmalloc` on the held CPU. Tracing, `kmalloc(0)` and sizes above
    /// the kmalloc caches take `Self::kmalloc_slow`, out of line.
    #[track_caller]
    #[inline]
    pub fn kmalloc(&mut self, size: u64, gfp: Gfp) -> Option<ObjPtr> {
        let caller = Location::caller();
        if self.k.trace.is_on() || size == 0 || size > KMALLOC_MAX_CACHE_SIZE {
            return self.kmalloc_slow(size, gfp, caller);
        }
        let id = self.k.sa.kmalloc_slab(size, gfp)?;
        self.k
            .alloc_in(&mut self.st, self.cpu, id, gfp, Some(size), caller)
    }
    /// [`Self::kmalloc`] traced, or of a size no kmalloc cache serves.
    #[cold]
    #[inline(never)]
    fn kmalloc_slow(
        &mut self,
        size: u64,
        gfp: Gfp,
        caller: &'static Location<'static>,
    ) -> Option<ObjPtr> {
        if size == 0 || size > KMALLOC_MAX_CACHE_SIZE {
            return self.k.kmalloc_caller(self.cpu, size, gfp, caller);
        }
        let id = self.k.sa.kmalloc_slab(size, gfp)?;
        let k = self.k;
        let obj = k.alloc_in(&mut self.st, self.cpu, id, gfp, Some(size), caller)?;
        k.pa.trace
            .kmalloc(self.cpu, caller, obj, size, gfp, |o| k.ksize(o));
        Some(obj)
    }
    /// `kfree` on the held CPU; traced calls go out of line.
    #[track_caller]
    #[inline]
    pub fn kfree(&mut self, obj: ObjPtr) -> Result<(), SlabReport> {
        let caller = Location::caller();
        if self.k.trace.is_on() {
            return self.kfree_traced(obj, caller);
        }
        self.kfree_notrace(obj, caller)
    }
    /// `trace_kfree`, then [`Self::kfree_notrace`].
    #[cold]
    #[inline(never)]
    fn kfree_traced(
        &mut self,
        obj: ObjPtr,
        caller: &'static Location<'static>,
    ) -> Result<(), SlabReport> {
        if self.k.obj_slab(obj).is_none() {
            return self.k.kfree_traced(self.cpu, obj, caller);
        }
        self.k.pa.trace.kfree(self.cpu, caller, obj.0 .0);
        self.kfree_notrace(obj, caller)
    }
    /// `kfree` on the held CPU without its tracepoint: a slab object goes
    /// back through the held state, anything else through [`Kmem::kfree`]'s
    /// path (which takes no CPU slab state).
    #[inline]
    fn kfree_notrace(
        &mut self,
        obj: ObjPtr,
        caller: &'static Location<'static>,
    ) -> Result<(), SlabReport> {
        match self.k.obj_slab(obj) {
            Some((_, id)) => self.k.free_in(&mut self.st, self.cpu, id, obj, caller),
            None => self.k.kfree_notrace(self.cpu, obj, caller),
        }
    }
}

impl SlabAllocator {
    /// `kmem_cache_init` + `create_kmalloc_caches` + the kernel's own caches:
    /// kmem_cache and kmem_cache_node first, then every kmalloc type and
    /// size (96 and 192 before the powers of two, as Linux), then
    /// [`KERNEL_CACHES`].
    pub fn kmem_cache_init(pa: &PageAlloc, kind: SlabKind) -> SlabAllocator {
        let mut sa = SlabAllocator::empty(pa, kind);
        let mut table = [[u32::MAX; KMALLOC_INFO.len()]; 4];
        let mut kernel = Vec::new();
        {
            let k = Kmem::new(&sa, pa);
            let h = SlabFlags::HWCACHE_ALIGN | SlabFlags::PANIC | SlabFlags::NO_MERGE;
            k.kmem_cache_create("kmem_cache", 256, 0, h, None)
                .expect("kmem_cache");
            k.kmem_cache_create("kmem_cache_node", 128, 0, h, None)
                .expect("kmem_cache_node");
            // `bootstrap`: the two boot caches move into objects of
            // kmem_cache itself, with their node structures.
            *sa.meta.lock() = Some(Vec::new());
            for id in [KMEM_CACHE, KMEM_CACHE_NODE] {
                k.alloc_meta(id).expect("bootstrap kmem_cache");
            }
            let low = sa.kmalloc_shift_low();
            for t in KmallocType::ALL {
                let mut order: Vec<usize> = alloc::vec![1, 2];
                order.extend(low..=KMALLOC_SHIFT_HIGH);
                for i in order {
                    let (size, suffix) = KMALLOC_INFO[i];
                    let name = format!("{}{}", t.prefix(), suffix);
                    let flags = SlabFlags::KMALLOC | SlabFlags::PANIC | t.flags();
                    let id = k
                        .create_cache(&name, size, ARCH_MINALIGN, flags, None, false)
                        .expect("kmalloc cache");
                    table[t as usize][i] = id.0;
                }
                // Requests below KMALLOC_SHIFT_LOW's size (SLAB: 8 and 16
                // bytes) map to its cache, as Linux's
                // setup_kmalloc_cache_index_table points size_index[] at
                // the smallest cache, so that a lookup needs no clamp.
                for i in 3..low {
                    table[t as usize][i] = table[t as usize][low];
                }
            }
            for &(name, size, flags) in KERNEL_CACHES {
                let id = k
                    .kmem_cache_create(name, size, 0, SlabFlags::from_bits_retain(flags), None)
                    .expect("kernel cache");
                kernel.push((name, id));
            }
        }
        sa.kmalloc = table;
        sa.kernel_caches = kernel;
        with_engine!(kind, E => E::boot_message(pa));
        sa
    }

    /// `KMALLOC_SHIFT_LOW`: 3 (8 bytes) for SLUB, 5 (32 bytes) for SLAB.
    pub fn kmalloc_shift_low(&self) -> usize {
        with_engine!(self.kind, E => E::KMALLOC_SHIFT_LOW)
    }
    /// The live cache called `name`, or the cache a kernel cache of that
    /// name was merged into.
    pub fn find_cache(&self, name: &str) -> Option<CacheId> {
        if let Some(&(_, id)) = self.kernel_caches.iter().find(|(n, _)| *n == name) {
            return Some(id);
        }
        let r = self.registry.read();
        r.list.iter().copied().find(|id| {
            r.caches[id.0 as usize]
                .as_ref()
                .is_some_and(|c| c.name == name)
        })
    }

    /// Live caches, newest first (the order of /proc/slabinfo).
    pub fn caches(&self) -> Vec<Arc<Cache>> {
        let r = self.registry.read();
        r.list
            .iter()
            .rev()
            .filter_map(|id| r.caches[id.0 as usize].clone())
            .collect()
    }

    /// The kmalloc cache for `size` bytes and `gfp` (`kmalloc_slab`).
    #[inline]
    pub fn kmalloc_slab(&self, size: u64, gfp: Gfp) -> Option<CacheId> {
        if size == 0 || size > KMALLOC_MAX_CACHE_SIZE {
            return None;
        }
        // No clamp to KMALLOC_SHIFT_LOW: kmem_cache_init points the
        // smaller indexes of the table at the smallest cache.
        let i = kmalloc_index(size, 3);
        let id = self.kmalloc[KmallocType::of(gfp) as usize][i];
        (id != u32::MAX).then_some(CacheId(id))
    }
}

impl<'a> Kmem<'a> {
    /// Pairs a slab allocator with its page allocator.
    pub fn new(sa: &'a SlabAllocator, pa: &'a PageAlloc) -> Self {
        Kmem {
            sa,
            pa,
            trace: &pa.trace,
        }
    }

    /// `kmem_cache_create(name, size, align, flags, ctor)`: a new cache, or
    /// (SLUB) an existing compatible one it merges into. Errors: EINVAL for
    /// a bad size or alignment, ENOMEM never (metadata lives in host memory).
    /// With SLAB_PANIC a failure panics, as Linux does.
    pub fn kmem_cache_create(
        &self,
        name: &str,
        size: u64,
        align: u64,
        flags: SlabFlags,
        ctor: Option<Ctor>,
    ) -> Result<CacheId, Errno> {
        let r = self.create_cache(name, size, align, flags, ctor, true);
        if r.is_err() && flags.contains(SlabFlags::PANIC) {
            panic!("kmem_cache_create: Failed to create slab '{name}'");
        }
        r
    }

    pub(crate) fn create_cache(
        &self,
        name: &str,
        size: u64,
        align: u64,
        flags: SlabFlags,
        ctor: Option<Ctor>,
        mergeable: bool,
    ) -> Result<CacheId, Errno> {
        if size == 0 || size > KMALLOC_MAX_SIZE || (align != 0 && !align.is_power_of_two()) {
            return Err(Errno::EINVAL);
        }
        let mut reg = self.sa.registry.write();
        if mergeable && with_engine!(self.sa.kind, E => E::MERGES) {
            if let Some(id) = find_mergeable(&reg, size, align, flags, ctor) {
                let c = reg.caches[id.0 as usize].clone().unwrap();
                c.refcount.fetch_add(1, Relaxed);
                c.object_size.fetch_max(size, Relaxed);
                return Ok(id);
            }
        }
        let id = CacheId(reg.caches.len() as u32);
        let cache = with_engine!(self.sa.kind, E => E::create_cache(self, id, name, size, align, flags, ctor));
        let cache = Arc::new(cache);
        reg.caches.push(Some(cache.clone()));
        reg.list.push(id);
        for cpu in self.sa.cpus.iter() {
            let mut st = cpu.lock();
            st.caches
                .push(Some(with_engine!(self.sa.kind, E => E::new_cpu(&cache))));
        }
        drop(reg);
        if self.alloc_meta(id).is_none() {
            self.unregister(id);
            return Err(Errno::ENOMEM);
        }
        Ok(id)
    }

    /// Allocates cache `id`'s `struct kmem_cache` and its node structures
    /// once the allocator is bootstrapped (before that, nothing). None if
    /// memory runs out, with nothing kept.
    fn alloc_meta(&self, id: CacheId) -> Option<()> {
        if self.sa.meta.lock().is_none() {
            return Some(());
        }
        let nodes = self
            .pa
            .nodes
            .iter()
            .filter(|n| n.zones.iter().any(|z| z.is_populated()))
            .count();
        let mut objs = Vec::new();
        for c in core::iter::once(KMEM_CACHE).chain((0..nodes).map(|_| KMEM_CACHE_NODE)) {
            match self.kmem_cache_alloc(CpuId(0), c, Gfp::KERNEL) {
                Some(o) => objs.push((c, o)),
                None => {
                    for (c, o) in objs {
                        let _ = self.kmem_cache_free(CpuId(0), c, o);
                    }
                    return None;
                }
            }
        }
        let mut meta = self.sa.meta.lock();
        let v = meta.as_mut()?;
        if v.len() <= id.0 as usize {
            v.resize(id.0 as usize + 1, Vec::new());
        }
        v[id.0 as usize] = objs;
        Some(())
    }

    /// Takes a cache out of the registry and every CPU's state.
    fn unregister(&self, cache: CacheId) {
        let mut reg = self.sa.registry.write();
        reg.caches[cache.0 as usize] = None;
        reg.list.retain(|&i| i != cache);
        for cpu in self.sa.cpus.iter() {
            cpu.lock().caches[cache.0 as usize] = None;
        }
    }

    /// `kmem_cache_alloc(cache, gfp)` on `cpu`. With __GFP_ZERO the object is
    /// zeroed. `None` when no slab page can be had.
    #[track_caller]
    pub fn kmem_cache_alloc(&self, cpu: CpuId, cache: CacheId, gfp: Gfp) -> Option<ObjPtr> {
        self.alloc_obj(cpu, cache, gfp, None, Location::caller())
    }

    /// `kmem_cache_zalloc`.
    #[track_caller]
    pub fn kmem_cache_zalloc(&self, cpu: CpuId, cache: CacheId, gfp: Gfp) -> Option<ObjPtr> {
        self.alloc_obj(cpu, cache, gfp | Gfp::ZERO, None, Location::caller())
    }

    #[inline]
    pub(crate) fn alloc_obj(
        &self,
        cpu: CpuId,
        cache: CacheId,
        gfp: Gfp,
        orig_size: Option<u64>,
        caller: &'static Location<'static>,
    ) -> Option<ObjPtr> {
        let mut st = self.sa.cpus[cpu.0].lock();
        self.alloc_in(&mut st, cpu, cache, gfp, orig_size, caller)
    }

    #[inline]
    fn alloc_in(
        &self,
        st: &mut CpuState,
        cpu: CpuId,
        cache: CacheId,
        gfp: Gfp,
        orig_size: Option<u64>,
        caller: &'static Location<'static>,
    ) -> Option<ObjPtr> {
        let c = st.caches.get_mut(cache.0 as usize)?.as_mut()?;
        let obj = with_engine!(cpu c, E, x => E::alloc(self, cpu, x, gfp, orig_size, caller))?;
        if gfp.contains(Gfp::ZERO) {
            let len = orig_size.unwrap_or_else(|| c.cache().object_size());
            self.pa.direct_map().fill(obj.0 .0, 0, len);
        }
        Some(obj)
    }

    /// `kmem_cache_free(cache, obj)` on `cpu`. A bad pointer, a double free
    /// or a clobbered red zone (debug caches) is reported and nothing is
    /// freed.
    #[track_caller]
    pub fn kmem_cache_free(
        &self,
        cpu: CpuId,
        cache: CacheId,
        obj: ObjPtr,
    ) -> Result<(), SlabReport> {
        self.free_obj(cpu, cache, obj, Location::caller())
    }

    #[inline]
    pub(crate) fn free_obj(
        &self,
        cpu: CpuId,
        cache: CacheId,
        obj: ObjPtr,
        caller: &'static Location<'static>,
    ) -> Result<(), SlabReport> {
        let mut st = self.sa.cpus[cpu.0].lock();
        self.free_in(&mut st, cpu, cache, obj, caller)
    }

    #[inline]
    fn free_in(
        &self,
        st: &mut CpuState,
        cpu: CpuId,
        cache: CacheId,
        obj: ObjPtr,
        caller: &'static Location<'static>,
    ) -> Result<(), SlabReport> {
        let Some(c) = st.caches.get_mut(cache.0 as usize).and_then(|c| c.as_mut()) else {
            return Err(SlabReport::InvalidFree {
                cache: String::from("?"),
                obj,
            });
        };
        with_engine!(cpu c, E, x => E::free(self, cpu, x, obj, caller))
    }

    /// `kmem_cache_shrink`: flushes this cache's per-CPU state and frees
    /// every empty slab. Returns the pages freed.
    pub fn kmem_cache_shrink(&self, cpu: CpuId, cache: CacheId) -> u64 {
        let Some(c) = self.sa.cache(cache) else {
            return 0;
        };
        with_engine!(self.sa.kind, E => E::shrink(self, cpu, &c))
    }

    /// `kmem_cache_destroy`: drops one reference (merged caches share one);
    /// the last frees the cache's empty slabs. A cache that still has
    /// objects is kept, nothing lost, and Linux's lines are logged:
    /// "Objects remaining in NAME on __kmem_cache_shutdown()" and
    /// "kmem_cache_destroy NAME: Slab cache still has objects when called
    /// from CALLER" (two errors, as slub_kunit counts them).
    #[track_caller]
    pub fn kmem_cache_destroy(&self, cpu: CpuId, cache: CacheId) -> Result<(), SlabReport> {
        let caller = Location::caller();
        let Some(c) = self.sa.cache(cache) else {
            return Ok(());
        };
        if c.refcount.fetch_sub(1, Relaxed) > 1 {
            return Ok(());
        }
        self.kmem_cache_shrink(cpu, cache);
        let live = with_engine!(self.sa.kind, E => E::nr_slabs(&c));
        if live > 0 {
            c.refcount.fetch_add(1, Relaxed);
            let count = self.validate(cache).map(|n| n.live).unwrap_or(0);
            let rep = SlabReport::ObjectsRemaining {
                cache: c.name.clone(),
                count,
            };
            crate::printk!(self.pa.log, "{}", rep.title());
            crate::printk!(
                self.pa.log,
                "kmem_cache_destroy {}: Slab cache still has objects when called from {}:{}",
                c.name,
                caller.file(),
                caller.line()
            );
            c.errors.fetch_add(2, Relaxed);
            return Err(rep);
        }
        self.unregister(cache);
        let objs = self
            .sa
            .meta
            .lock()
            .as_mut()
            .and_then(|v| v.get_mut(cache.0 as usize).map(core::mem::take))
            .unwrap_or_default();
        for (c, o) in objs {
            self.kmem_cache_free(cpu, c, o)?;
        }
        Ok(())
    }

    /// Holds `cpu`'s slab state for a run of operations, as kernel code
    /// between `preempt_disable()` and `preempt_enable()` owns its CPU's
    /// per-CPU data: the fast paths then take no lock at all. Shrinking or
    /// destroying a cache from the same thread while holding it deadlocks.
    pub fn lock_cpu(&self, cpu: CpuId) -> KmemCpu<'a> {
        KmemCpu {
            k: *self,
            cpu,
            st: self.sa.cpus[cpu.0].lock(),
        }
    }

    // ----- kmalloc -----

    /// `kmalloc(size, gfp)`: an object of the smallest size class that holds
    /// `size` bytes; above 8 KiB, whole pages straight from the page
    /// allocator (`kmalloc_large`); `ZERO_SIZE_PTR` for 0.
    #[track_caller]
    pub fn kmalloc(&self, cpu: CpuId, size: u64, gfp: Gfp) -> Option<ObjPtr> {
        self.kmalloc_caller(cpu, size, gfp, Location::caller())
    }

    /// `__kmalloc` with its tracepoint: tracing is tested once, on entry,
    /// and a traced call goes out of line, so that tracepoints compiled in
    /// and off cost one load and one branch (keeping the event's arguments
    /// alive across the allocation cost ten times that).
    #[inline]
    fn kmalloc_caller(
        &self,
        cpu: CpuId,
        size: u64,
        gfp: Gfp,
        caller: &'static Location<'static>,
    ) -> Option<ObjPtr> {
        if self.trace.is_on() {
            return self.kmalloc_traced(cpu, size, gfp, caller);
        }
        self.kmalloc_notrace(cpu, size, gfp, caller)
    }

    /// [`Self::kmalloc_caller`] when tracing is on: the allocation, then
    /// `trace_kmalloc` for a successful one (not for `kmalloc(0)`).
    #[cold]
    #[inline(never)]
    fn kmalloc_traced(
        &self,
        cpu: CpuId,
        size: u64,
        gfp: Gfp,
        caller: &'static Location<'static>,
    ) -> Option<ObjPtr> {
        let obj = self.kmalloc_notrace(cpu, size, gfp, caller)?;
        if size != 0 {
            self.pa
                .trace
                .kmalloc(cpu, caller, obj, size, gfp, |o| self.ksize(o));
        }
        Some(obj)
    }

    /// `__kmalloc` without its tracepoint: `ZERO_SIZE_PTR` for 0, pages
    /// above 8 KiB, else an object of the size class.
    #[inline]
    fn kmalloc_notrace(
        &self,
        cpu: CpuId,
        size: u64,
        gfp: Gfp,
        caller: &'static Location<'static>,
    ) -> Option<ObjPtr> {
        if size == 0 {
            return Some(ZERO_SIZE_PTR);
        }
        if size > KMALLOC_MAX_CACHE_SIZE {
            return self.kmalloc_large(cpu, size, gfp);
        }
        let id = self.sa.kmalloc_slab(size, gfp)?;
        self.alloc_obj(cpu, id, gfp, Some(size), caller)
    }

    fn kmalloc_large(&self, cpu: CpuId, size: u64, gfp: Gfp) -> Option<ObjPtr> {
        if size > KMALLOC_MAX_SIZE {
            return None;
        }
        let order = Order::for_size(size);
        let pfn = self.pa.alloc_pages(cpu, gfp | Gfp::COMP, order)?;
        let page = self.sa.page(pfn)?;
        page.set_private(order.0 as u64);
        // Linux counts large kmalloc pages in NR_SLAB_UNRECLAIMABLE_B.
        self.pa.nodes[page.nid() as usize]
            .stats
            .add(NodeStat::NrSlabUnreclaimable, order.pages() as i64);
        Some(ObjPtr(pfn.phys()))
    }

    /// `__kmalloc_cache(cache, size)`: a kmalloc-style allocation of `size`
    /// bytes from a given cache (its requested size is recorded on debug
    /// caches, so the bytes past it are a red zone).
    #[track_caller]
    pub fn kmalloc_from(&self, cpu: CpuId, cache: CacheId, size: u64, gfp: Gfp) -> Option<ObjPtr> {
        self.alloc_obj(cpu, cache, gfp, Some(size), Location::caller())
    }

    /// `validate_slab_cache` on a debug cache: checks every slab and object,
    /// repairs what it can and returns the errors counted (slub_kunit's
    /// `slab_errors`). 0 for caches without debugging.
    pub fn validate_slab_cache(&self, cache: CacheId) -> u64 {
        match self.sa.cache(cache) {
            Some(c) if c.debug() => {
                with_engine!(self.sa.kind, E => E::validate_slab_cache(self, &c))
            }
            _ => 0,
        }
    }

    /// `kzalloc`: kmalloc with __GFP_ZERO.
    #[track_caller]
    pub fn kzalloc(&self, cpu: CpuId, size: u64, gfp: Gfp) -> Option<ObjPtr> {
        self.kmalloc_caller(cpu, size, gfp | Gfp::ZERO, Location::caller())
    }

    /// `kcalloc(n, size)`: zeroed, `None` if `n * size` overflows.
    #[track_caller]
    pub fn kcalloc(&self, cpu: CpuId, n: u64, size: u64, gfp: Gfp) -> Option<ObjPtr> {
        let bytes = n.checked_mul(size)?;
        self.kmalloc_caller(cpu, bytes, gfp | Gfp::ZERO, Location::caller())
    }

    /// `ksize(obj)`: the usable size of an object (its cache's object size,
    /// or the pages of a large kmalloc). 0 for ZERO_SIZE_PTR.
    pub fn ksize(&self, obj: ObjPtr) -> u64 {
        if obj.is_zero_or_null() {
            return 0;
        }
        if let Some((_, id)) = self.obj_slab(obj) {
            return self.sa.cache(id).map(|c| c.object_size()).unwrap_or(0);
        }
        self.sa
            .page(obj.0.pfn())
            .map(|p| Order(p.private() as u8).bytes())
            .unwrap_or(0)
    }

    /// `kfree(obj)`: back to its cache, or its pages back to the buddy
    /// allocator for a large kmalloc. NULL and ZERO_SIZE_PTR are ignored.
    /// Its tracepoint is tested on entry and traced calls go out of line,
    /// as in [`Self::kmalloc`].
    #[track_caller]
    #[inline]
    pub fn kfree(&self, cpu: CpuId, obj: ObjPtr) -> Result<(), SlabReport> {
        if self.trace.is_on() {
            return self.kfree_traced(cpu, obj, Location::caller());
        }
        self.kfree_notrace(cpu, obj, Location::caller())
    }

    /// `trace_kfree`, then [`Self::kfree_notrace`].
    #[cold]
    #[inline(never)]
    fn kfree_traced(
        &self,
        cpu: CpuId,
        obj: ObjPtr,
        caller: &'static Location<'static>,
    ) -> Result<(), SlabReport> {
        self.pa.trace.kfree(cpu, caller, obj.0 .0);
        self.kfree_notrace(cpu, obj, caller)
    }

    /// `kfree` without its tracepoint.
    fn kfree_notrace(
        &self,
        cpu: CpuId,
        obj: ObjPtr,
        caller: &'static Location<'static>,
    ) -> Result<(), SlabReport> {
        if obj.is_zero_or_null() {
            return Ok(());
        }
        let pfn = obj.0.pfn();
        let Some(page) = self.sa.page(pfn) else {
            return Err(SlabReport::InvalidFree {
                cache: String::from("kmalloc"),
                obj,
            });
        };
        if page.test(PageFlags::SLAB) {
            let id = CacheId(page.private() as u32);
            return self.free_obj(cpu, id, obj, caller);
        }
        if page.refcount() <= 0 || !obj.0.is_page_aligned() {
            let rep = SlabReport::InvalidFree {
                cache: String::from("kmalloc"),
                obj,
            };
            crate::printk!(self.pa.log, "{}", rep.title());
            return Err(rep);
        }
        let order = Order(page.private() as u8);
        page.set_private(0);
        self.pa.nodes[page.nid() as usize]
            .stats
            .add(NodeStat::NrSlabUnreclaimable, -(order.pages() as i64));
        self.pa.free_pages(cpu, pfn, order);
        Ok(())
    }

    /// `krealloc(obj, new_size)`: the same object if it still fits (bytes
    /// past the new size get the kmalloc red zone on debug caches; newly
    /// exposed bytes are zeroed with __GFP_ZERO), else a new object with
    /// the old bytes copied and the old one freed. Size 0 frees and returns
    /// ZERO_SIZE_PTR.
    #[track_caller]
    pub fn krealloc(&self, cpu: CpuId, obj: ObjPtr, new_size: u64, gfp: Gfp) -> Option<ObjPtr> {
        let caller = Location::caller();
        if new_size == 0 {
            let _ = self.kfree(cpu, obj);
            return Some(ZERO_SIZE_PTR);
        }
        if obj.is_zero_or_null() {
            return self.kmalloc_caller(cpu, new_size, gfp, caller);
        }
        let ks = self.ksize(obj);
        let old = self.orig_size(obj).unwrap_or(ks);
        if new_size <= ks {
            let dm = self.pa.direct_map();
            if let Some((_, id)) = self.obj_slab(obj) {
                if let Some(c) = self.sa.cache(id) {
                    if let Some(off) = c.orig_size_offset() {
                        dm.write_u64(obj.0 .0 + off, new_size);
                        if new_size < c.object_size() && c.flags.contains(SlabFlags::RED_ZONE) {
                            dm.fill(
                                obj.0 .0 + new_size,
                                SLUB_RED_ACTIVE,
                                c.object_size() - new_size,
                            );
                        }
                    }
                }
            }
            if gfp.contains(Gfp::ZERO) && new_size > old {
                dm.fill(obj.0 .0 + old, 0, new_size - old);
            }
            return Some(obj);
        }
        let new = self.kmalloc_caller(cpu, new_size, gfp, caller)?;
        let dm = self.pa.direct_map();
        let n = old.min(new_size) as usize;
        let mut buf = alloc::vec![0u8; n];
        dm.read(obj.0, &mut buf);
        dm.write(new.0, &buf);
        let _ = self.kfree(cpu, obj);
        Some(new)
    }

    /// The requested size stored for a kmalloc object on a debug cache.
    fn orig_size(&self, obj: ObjPtr) -> Option<u64> {
        let (_, id) = self.obj_slab(obj)?;
        let c = self.sa.cache(id)?;
        let off = c.orig_size_offset()?;
        Some(self.pa.direct_map().read_u64(obj.0 .0 + off))
    }

    /// /proc/slabinfo's numbers for every live cache, newest first
    /// (`get_slabinfo`).
    pub fn slabinfo(&self) -> Vec<SlabInfo> {
        self.sa
            .caches()
            .iter()
            .map(|c| with_engine!(self.sa.kind, E => E::slabinfo(self, c)))
            .collect()
    }

    /// Walks every slab of a cache with all CPUs and nodes locked and
    /// checks it (`validate_slab_cache`): freelists stay inside their slab
    /// and hold each object once, counters match, every slab is on the list
    /// its state says. Returns the counts.
    pub fn validate(&self, cache: CacheId) -> Result<CacheCounts, String> {
        let c = self
            .sa
            .cache(cache)
            .ok_or_else(|| String::from("no such cache"))?;
        self.with_cpu_caches_locked(cache, |cpus| {
            with_engine!(self.sa.kind, E => {
                let cpus: Vec<_> = cpus.iter().filter_map(|c| E::cpu_ref(c)).collect();
                E::validate(self, &c, &cpus)
            })
        })
    }

    /// Runs `f` on `cache`'s per-CPU caches with every CPU's slab state
    /// locked, CPU 0 first, as the walks over a whole cache need.
    fn with_cpu_caches_locked<R>(&self, cache: CacheId, f: impl FnOnce(&[&CpuCache]) -> R) -> R {
        let cpus: Vec<_> = self.sa.cpus.iter().map(|l| l.lock()).collect();
        let cpu_caches: Vec<&CpuCache> = cpus
            .iter()
            .filter_map(|st| st.caches.get(cache.0 as usize).and_then(|x| x.as_ref()))
            .collect();
        f(&cpu_caches)
    }

    /// Leak report: every object of `cache` still allocated, with who
    /// allocated it when the cache tracks owners (STORE_USER). Each is also
    /// logged as "INFO: Object 0x... @offset=N allocated at FILE:LINE cpu=C".
    pub fn leak_report(&self, cache: CacheId) -> Vec<(ObjPtr, Option<Track>)> {
        let Some(c) = self.sa.cache(cache) else {
            return Vec::new();
        };
        let out: Vec<(ObjPtr, Option<Track>)> = self.with_cpu_caches_locked(cache, |cpus| {
            with_engine!(self.sa.kind, E => {
                let cpus: Vec<_> = cpus.iter().filter_map(|c| E::cpu_ref(c)).collect();
                E::live_objects(self, &c, &cpus)
                    .into_iter()
                    .map(|o| (o, E::alloc_track(self, &c, o)))
                    .collect()
            })
        });
        for (o, t) in &out {
            let off = o.0 .0 & ((PAGE_SIZE << c.order) - 1);
            match t {
                Some(t) => crate::printk!(
                    self.pa.log,
                    "INFO: {} Object {:#x} @offset={} allocated at {}:{} cpu={}",
                    c.name,
                    o.0 .0,
                    off,
                    t.caller.file(),
                    t.caller.line(),
                    t.cpu
                ),
                None => crate::printk!(
                    self.pa.log,
                    "INFO: {} Object {:#x} @offset={}",
                    c.name,
                    o.0 .0,
                    off
                ),
            }
        }
        out
    }

    /// slub_debug errors counted on a cache so far (slub_kunit's
    /// `slab_errors`).
    pub fn errors(&self, cache: CacheId) -> u64 {
        self.sa
            .cache(cache)
            .map(|c| c.errors.load(Relaxed))
            .unwrap_or(0)
    }

    /// Resets a cache's error count.
    pub fn reset_errors(&self, cache: CacheId) {
        if let Some(c) = self.sa.cache(cache) {
            c.errors.store(0, Relaxed);
        }
    }
}

/// `find_mergeable` (SLUB): the newest compatible cache. Never with a
/// ctor or debug flags; same MERGE_SAME flags; large enough; its size
/// aligned to the new alignment; less than a pointer of waste.
fn find_mergeable(
    reg: &Registry,
    size: u64,
    align: u64,
    flags: SlabFlags,
    ctor: Option<Ctor>,
) -> Option<CacheId> {
    if ctor.is_some() || flags.intersects(SlabFlags::NEVER_MERGE) {
        return None;
    }
    let size = size.next_multiple_of(8);
    let align = calculate_alignment(flags, align, size);
    let size = size.next_multiple_of(align);
    for &id in reg.list.iter().rev() {
        let s = reg.caches[id.0 as usize].as_ref()?;
        if s.flags.intersects(SlabFlags::NEVER_MERGE) || s.ctor.is_some() {
            continue;
        }
        if size > s.size
            || flags.intersection(SlabFlags::MERGE_SAME)
                != s.flags.intersection(SlabFlags::MERGE_SAME)
            || s.size & !(align - 1) != s.size
            || s.size - size >= 8
        {
            continue;
        }
        return Some(id);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;
    use crate::debug::check_page_alloc;
    use crate::mm_init::testing::{boot, TestMachine};
    use crate::types::{Pfn, PhysAddr};
    use alloc::collections::BTreeMap;
    use proptest::prelude::*;

    const C0: CpuId = CpuId(0);
    const C1: CpuId = CpuId(1);

    fn machine() -> TestMachine {
        boot(Arch::X86_64, 64 << 20, 2)
    }

    fn free_pages(m: &TestMachine) -> u64 {
        m.pa.nr_free_pages() + m.pa.nr_pcp_pages()
    }

    fn slab_pages(m: &TestMachine) -> i64 {
        m.pa.nodes[0].stats.get(NodeStat::NrSlabReclaimable)
            + m.pa.nodes[0].stats.get(NodeStat::NrSlabUnreclaimable)
    }

    /// The pages the caches of caches hold once every test object is freed
    /// and every cache shrunk, checking what they hold: one kmem_cache per
    /// live cache and one kmem_cache_node per live cache and node (none
    /// before `kmem_cache_init` bootstraps).
    fn meta_pages(sa: &SlabAllocator, pa: &PageAlloc) -> i64 {
        if sa.meta.lock().is_none() {
            return 0;
        }
        let k = Kmem::new(sa, pa);
        let n = sa.caches().len() as u64;
        let mut pages = 0;
        for id in [KMEM_CACHE, KMEM_CACHE_NODE] {
            let c = k.validate(id).unwrap();
            assert_eq!(c.live, n, "objects in cache {id:?}");
            pages += c.slabs << sa.cache(id).unwrap().order;
        }
        pages as i64
    }

    /// What shrinking leaves in cache `c` with no test object live.
    fn assert_at_rest(k: &Kmem, c: &Cache) {
        if c.id == KMEM_CACHE || c.id == KMEM_CACHE_NODE {
            return;
        }
        assert_eq!(
            k.validate(c.id).unwrap(),
            CacheCounts::default(),
            "{}",
            c.name
        );
    }

    #[test]
    fn kernel_caches_present_after_init() {
        let m = machine();
        for kind in [SlabKind::Slub, SlabKind::Slab] {
            let sa = SlabAllocator::kmem_cache_init(&m.pa, kind);
            let k = Kmem::new(&sa, &m.pa);
            for name in [
                "task_struct",
                "mm_struct",
                "vm_area_struct",
                "anon_vma",
                "anon_vma_chain",
                "files_cache",
                "signal_cache",
                "sighand_cache",
                "pid",
                "kmem_cache",
                "kmem_cache_node",
                "kmalloc-96",
                "kmalloc-192",
                "kmalloc-8k",
                "kmalloc-rcl-64",
                "dma-kmalloc-512",
                "kmalloc-cg-1k",
            ] {
                assert!(sa.find_cache(name).is_some(), "{kind:?}: {name}");
            }
            let ts = sa.find_cache("task_struct").unwrap();
            let t = k.kmem_cache_alloc(C0, ts, Gfp::KERNEL).unwrap();
            assert_eq!(k.ksize(t), 5888);
            k.kmem_cache_free(C0, ts, t).unwrap();
            // SLAB has no kmalloc-8/16 (KMALLOC_MIN_SIZE 32).
            assert_eq!(sa.find_cache("kmalloc-8").is_some(), kind == SlabKind::Slub);
        }
        // slabinfo lists newest first: kmalloc types cg, dma, rcl, normal;
        // 96 and 192 after the powers of two of their type, as on the host.
        let sa = SlabAllocator::kmem_cache_init(&m.pa, SlabKind::Slub);
        let names: Vec<String> = sa.caches().iter().map(|c| c.name.clone()).collect();
        let pos = |n: &str| names.iter().position(|x| x == n).unwrap();
        assert!(pos("kmalloc-cg-8k") < pos("dma-kmalloc-8k"));
        assert!(pos("kmalloc-rcl-96") < pos("kmalloc-8k"));
        assert!(pos("kmalloc-8") < pos("kmalloc-192") && pos("kmalloc-192") < pos("kmalloc-96"));
        assert_eq!(names.last().unwrap(), "kmem_cache");
    }

    #[test]
    fn kmalloc_size_classes_and_variants() {
        let m = machine();
        let sa = SlabAllocator::kmem_cache_init(&m.pa, SlabKind::Slub);
        let k = Kmem::new(&sa, &m.pa);
        let name = |size, gfp| {
            sa.cache(sa.kmalloc_slab(size, gfp).unwrap())
                .unwrap()
                .name
                .clone()
        };
        for (size, want) in [
            (1, "kmalloc-8"),
            (8, "kmalloc-8"),
            (9, "kmalloc-16"),
            (17, "kmalloc-32"),
            (33, "kmalloc-64"),
            (65, "kmalloc-96"),
            (96, "kmalloc-96"),
            (97, "kmalloc-128"),
            (129, "kmalloc-192"),
            (193, "kmalloc-256"),
            (4097, "kmalloc-8k"),
            (8192, "kmalloc-8k"),
        ] {
            assert_eq!(name(size, Gfp::KERNEL), want, "{size}");
        }
        assert_eq!(name(64, Gfp::KERNEL | Gfp::RECLAIMABLE), "kmalloc-rcl-64");
        assert_eq!(name(64, Gfp::KERNEL | Gfp::DMA), "dma-kmalloc-64");
        assert_eq!(name(64, Gfp::KERNEL_ACCOUNT), "kmalloc-cg-64");
        assert_eq!(k.kmalloc(C0, 0, Gfp::KERNEL), Some(ZERO_SIZE_PTR));
        k.kfree(C0, ZERO_SIZE_PTR).unwrap();
        // DMA objects come from ZONE_DMA (below 16 MiB).
        let d = k.kmalloc(C0, 100, Gfp::KERNEL | Gfp::DMA).unwrap();
        assert!(d.0 .0 < 16 << 20);
        k.kfree(C0, d).unwrap();
        // Large kmalloc: pages straight from the buddy allocator, counted as slab.
        let before = free_pages(&m);
        let slab0 = slab_pages(&m);
        let big = k.kmalloc(C0, 8193, Gfp::KERNEL).unwrap();
        assert!(big.0.is_page_aligned());
        assert_eq!(k.ksize(big), 16384);
        assert_eq!(slab_pages(&m) - slab0, 4);
        assert!(!m.pa.page(big.0.pfn()).unwrap().test(PageFlags::SLAB));
        k.kfree(C0, big).unwrap();
        assert_eq!(free_pages(&m), before);
        assert_eq!(slab_pages(&m), slab0);
        check_page_alloc(&m.pa).unwrap();
    }

    #[test]
    fn kzalloc_kcalloc_krealloc_keep_bytes() {
        let m = machine();
        for kind in [SlabKind::Slub, SlabKind::Slab] {
            let sa = SlabAllocator::kmem_cache_init(&m.pa, kind);
            let k = Kmem::new(&sa, &m.pa);
            let dm = m.pa.direct_map();
            let p = k.kmalloc(C0, 40, Gfp::KERNEL).unwrap();
            dm.write(p.0, &[0xee; 40]);
            k.kfree(C0, p).unwrap();
            let z = k.kzalloc(C0, 40, Gfp::KERNEL).unwrap();
            let mut b = [1u8; 40];
            dm.read(z.0, &mut b);
            assert_eq!(b, [0; 40]);
            assert_eq!(k.kcalloc(C0, u64::MAX, 2, Gfp::KERNEL), None);
            let c = k.kcalloc(C0, 10, 30, Gfp::KERNEL).unwrap();
            assert!(k.ksize(c) >= 300);
            dm.write(z.0, b"krealloc keeps these bytes");
            let same = k.krealloc(C0, z, 60, Gfp::KERNEL).unwrap();
            assert_eq!(same, z, "40 -> 60 fits the 64-byte object");
            let moved = k.krealloc(C0, same, 10000, Gfp::KERNEL).unwrap();
            assert_ne!(moved, z);
            let mut s = [0u8; 26];
            dm.read(moved.0, &mut s);
            assert_eq!(&s, b"krealloc keeps these bytes");
            assert_eq!(k.krealloc(C0, moved, 0, Gfp::KERNEL), Some(ZERO_SIZE_PTR));
            k.kfree(C0, c).unwrap();
        }
    }

    #[test]
    fn ctor_runs_once_per_object_at_slab_setup() {
        fn ctor(b: &mut [u8]) {
            b[..4].copy_from_slice(b"CTOR");
        }
        let m = machine();
        for kind in [SlabKind::Slub, SlabKind::Slab] {
            let sa = SlabAllocator::empty(&m.pa, kind);
            let k = Kmem::new(&sa, &m.pa);
            let id = k
                .kmem_cache_create("ctor_test", 48, 0, SlabFlags::empty(), Some(ctor))
                .unwrap();
            let p = k.kmem_cache_alloc(C0, id, Gfp::KERNEL).unwrap();
            let mut b = [0u8; 4];
            m.pa.direct_map().read(p.0, &mut b);
            assert_eq!(&b, b"CTOR", "{kind:?}");
            k.kmem_cache_free(C0, id, p).unwrap();
        }
    }

    /// Full/partial/empty transitions as seen by slabinfo, validate and the
    /// node lists, for both engines.
    #[test]
    fn slab_state_transitions() {
        let m = machine();
        for kind in [SlabKind::Slub, SlabKind::Slab] {
            let sa = SlabAllocator::empty(&m.pa, kind);
            let k = Kmem::new(&sa, &m.pa);
            let id = k
                .kmem_cache_create("states", 1000, 0, SlabFlags::empty(), None)
                .unwrap();
            let c = sa.cache(id).unwrap();
            let per = c.objects as usize;
            let objs: Vec<ObjPtr> = (0..2 * per + 1)
                .map(|_| k.kmem_cache_alloc(C0, id, Gfp::KERNEL).unwrap())
                .collect();
            let v = k.validate(id).unwrap();
            assert_eq!(v.live, objs.len() as u64, "{kind:?}");
            assert!(v.slabs >= 3);
            // Free one slab's worth: that slab becomes empty, others stay.
            let slabs: Vec<Pfn> = objs.iter().map(|o| k.obj_slab(*o).unwrap().0).collect();
            let first = slabs[0];
            for (o, _) in objs.iter().zip(&slabs).filter(|x| *x.1 == first) {
                k.kmem_cache_free(C0, id, *o).unwrap();
            }
            k.kmem_cache_shrink(C0, id);
            let v = k.validate(id).unwrap();
            assert_eq!(with_engine!(kind, E => E::nr_slabs(&c)), v.slabs);
            if kind == SlabKind::Slab {
                // After a shrink no slab is empty: each is full or partial.
                assert!(c.slab().node(0).free.is_empty());
            }
            for (o, _) in objs.iter().zip(&slabs).filter(|x| *x.1 != first) {
                k.kmem_cache_free(C0, id, *o).unwrap();
            }
            k.kmem_cache_shrink(C0, id);
            assert_eq!(k.validate(id).unwrap(), CacheCounts::default(), "{kind:?}");
            assert_eq!(slab_pages(&m), 0);
            k.kmem_cache_destroy(C0, id).unwrap();
            assert!(sa.cache(id).is_none());
            check_page_alloc(&m.pa).unwrap();
        }
    }

    #[test]
    fn destroy_with_live_objects_refuses_and_loses_nothing() {
        let m = machine();
        let sa = SlabAllocator::empty(&m.pa, SlabKind::Slub);
        let k = Kmem::new(&sa, &m.pa);
        let id = k
            .kmem_cache_create("leaky", 64, 0, SlabFlags::empty(), None)
            .unwrap();
        let p = k.kmem_cache_alloc(C0, id, Gfp::KERNEL).unwrap();
        m.pa.direct_map().write(p.0, b"still here");
        assert!(matches!(
            k.kmem_cache_destroy(C0, id),
            Err(SlabReport::ObjectsRemaining { count: 1, .. })
        ));
        assert_eq!(k.errors(id), 2, "slub_kunit test_leak_destroy");
        let log = m.pa.log.messages().join("\n");
        assert!(
            log.contains("kmem_cache_destroy leaky: Slab cache still has objects when called from"),
            "{log}"
        );
        let mut b = [0u8; 10];
        m.pa.direct_map().read(p.0, &mut b);
        assert_eq!(&b, b"still here");
        assert_eq!(k.leak_report(id).len(), 1);
        k.kmem_cache_free(C0, id, p).unwrap();
        k.kmem_cache_destroy(C0, id).unwrap();
        assert_eq!(slab_pages(&m), 0);
    }

    #[test]
    fn slub_merges_compatible_caches_and_lists_them_once() {
        let m = machine();
        let sa = SlabAllocator::kmem_cache_init(&m.pa, SlabKind::Slub);
        let k = Kmem::new(&sa, &m.pa);
        let n = sa.caches().len();
        let a = k
            .kmem_cache_create("my_objs", 60, 0, SlabFlags::empty(), None)
            .unwrap();
        assert_eq!(sa.cache(a).unwrap().name, "kmalloc-64");
        assert_eq!(sa.caches().len(), n);
        fn ctor(_: &mut [u8]) {}
        let b = k
            .kmem_cache_create("with_ctor", 60, 0, SlabFlags::empty(), Some(ctor))
            .unwrap();
        let c = k
            .kmem_cache_create("debugged", 60, 0, SlabFlags::RED_ZONE, None)
            .unwrap();
        let d = k
            .kmem_cache_create("reclaim", 60, 0, SlabFlags::RECLAIM_ACCOUNT, None)
            .unwrap();
        assert!(b != a && c != a);
        assert_eq!(sa.cache(d).unwrap().name, "kmalloc-rcl-64");
        assert_eq!(sa.caches().len(), n + 2);
        // Destroying the alias drops a reference; kmalloc-64 lives on.
        k.kmem_cache_destroy(C0, a).unwrap();
        assert!(sa.cache(a).is_some());
        // SLAB never merges.
        let sa2 = SlabAllocator::kmem_cache_init(&m.pa, SlabKind::Slab);
        let k2 = Kmem::new(&sa2, &m.pa);
        let e = k2
            .kmem_cache_create("my_objs", 60, 0, SlabFlags::empty(), None)
            .unwrap();
        assert_eq!(sa2.cache(e).unwrap().name, "my_objs");
    }

    #[test]
    fn slab_pages_are_accounted_by_reclaimability() {
        let m = machine();
        let sa = SlabAllocator::kmem_cache_init(&m.pa, SlabKind::Slub);
        let k = Kmem::new(&sa, &m.pa);
        // The caches of caches hold unreclaimable pages from boot on.
        let meta = meta_pages(&sa, &m.pa);
        assert!(meta > 0);
        assert_eq!(m.pa.nodes[0].stats.get(NodeStat::NrSlabUnreclaimable), meta);
        let r = k.kmalloc(C0, 64, Gfp::KERNEL | Gfp::RECLAIMABLE).unwrap();
        let u = k.kmalloc(C0, 4096, Gfp::KERNEL).unwrap();
        assert_eq!(m.pa.nodes[0].stats.get(NodeStat::NrSlabReclaimable), 1);
        assert_eq!(
            m.pa.nodes[0].stats.get(NodeStat::NrSlabUnreclaimable),
            8 + meta
        );
        let mi = crate::proc::meminfo::render(&m.pa, &Default::default());
        assert!(mi.contains("SReclaimable:          4 kB"), "{mi}");
        let sunreclaim = alloc::format!("SUnreclaim:     {:8} kB", 32 + 4 * meta);
        assert!(mi.contains(&sunreclaim), "{mi}");
        k.kfree(C0, r).unwrap();
        k.kfree(C0, u).unwrap();
    }

    /// /proc/slabinfo after `slabinfo_golden_small_config`'s steps, per
    /// allocator (test_a: 100 bytes, 3 objects; test_b: 400 bytes
    /// HWCACHE_ALIGN, 4 objects), on the 64 MiB machine with 2 CPUs.
    const SLABINFO_GOLDEN_SMALL: [(SlabKind, &str); 2] = [
        (SlabKind::Slub, "\
test_b                18     18    448   18    2 : tunables    0    0    0 : slabdata      1      1      0
test_a                 3     39    104   39    1 : tunables    0    0    0 : slabdata      1      1      0
"),
        (SlabKind::Slab, "\
test_b                 9      9    448    9    1 : tunables   54   27    8 : slabdata      1      1      0
test_a                39     39    104   39    1 : tunables  120   60    8 : slabdata      1      1      0
"),
    ];

    #[test]
    fn slabinfo_golden_follows_linux_formulas() {
        // objsize, objperslab, pagesperslab and the tunables of
        // SLABINFO_GOLDEN_SMALL, from Linux's rules evaluated here, not by
        // lmm's code. Active objects and slab counts are state.
        const PAGE: u64 = 4096;
        const CPUS: u64 = 2;
        let fls = |x: u64| 64 - x.leading_zeros() as u64;
        let get_order = |bytes: u64| {
            let mut o = 0;
            while PAGE << o < bytes {
                o += 1;
            }
            o
        };
        // calculate_alignment (mm/slab_common.c): HWCACHE_ALIGN takes the
        // cache line (64), halved while the object fits in half of it; at
        // least ARCH_SLAB_MINALIGN (8); the size is rounded up to it.
        let size_of = |object: u64, hwcache: bool| {
            let mut align = 8;
            if hwcache {
                let mut ralign = 64;
                while object <= ralign / 2 {
                    ralign /= 2;
                }
                align = align.max(ralign);
            }
            object.next_multiple_of(8).next_multiple_of(align)
        };
        // SLUB calculate_order (mm/slub.c, 6.8+; linux-facts §6.8):
        // min_objects = 4 * (fls(nr_cpus) + 1), at most what fits in
        // slub_max_order 3; min_order = get_order(min_objects * size); the
        // first order up to 3 whose leftover is at most 1/16, 1/8, 1/4, 1/2
        // of the slab.
        let slub_order = |size: u64| {
            let max_objects = ((PAGE << 3) / size).max(1);
            let min_objects = (4 * (fls(CPUS) + 1)).min(max_objects);
            let min_order = get_order(min_objects * size);
            for fraction in [16, 8, 4, 2] {
                if let Some(o) =
                    (min_order..=3).find(|&o| (PAGE << o) % size <= (PAGE << o) / fraction)
                {
                    return o;
                }
            }
            get_order(size)
        };
        // SLAB (mm/slab.c, last in 6.7): a cache without a constructor whose
        // freelist (one byte per object) fits in an object keeps it in a
        // free object (set_objfreelist_slab_cache), so num = slab_size /
        // size; calculate_slab_order takes the first order holding an
        // object that reaches slab_max_order (1: totalram above 32 MiB) or
        // wastes at most 1/8 of the slab. enable_cpucache: limit 120 up to
        // 256 bytes, 54 up to 1 KiB, 24 up to a page, 8 above, 1 above 128
        // KiB; batchcount (limit + 1) / 2; shared 8 for objects up to a
        // page on a machine with more than one possible CPU.
        let totalram = crate::proc::testing::linux_64m::derive().totalram;
        let slab_max_order = if totalram * PAGE > 32 << 20 { 1 } else { 0 };
        let slab_order = |size: u64| {
            (0..=10u32)
                .find(|&o| {
                    (PAGE << o) / size > 0
                        && (o >= slab_max_order || (PAGE << o) % size * 8 <= PAGE << o)
                })
                .unwrap()
        };
        let slab_tunables = |size: u64| {
            let limit: u64 = match size {
                s if s > 131072 => 1,
                s if s > PAGE => 8,
                s if s > 1024 => 24,
                s if s > 256 => 54,
                _ => 120,
            };
            let shared = if size <= PAGE && CPUS > 1 { 8 } else { 0 };
            // batchcount = (limit + 1) / 2.
            [limit, limit.div_ceil(2), shared]
        };
        let caches = [("test_a", 100, false), ("test_b", 400, true)];
        for (kind, text) in SLABINFO_GOLDEN_SMALL {
            for line in text.lines() {
                let f: alloc::vec::Vec<&str> = line.split_whitespace().collect();
                let n = |i: usize| f[i].parse::<u64>().unwrap();
                let &(_, object, hw) = caches.iter().find(|c| c.0 == f[0]).unwrap();
                let size = size_of(object, hw);
                assert!((PAGE / size) <= object, "the freelist fits in an object");
                let (order, tunables) = match kind {
                    SlabKind::Slub => (slub_order(size), [0, 0, 0]),
                    SlabKind::Slab => (slab_order(size), slab_tunables(size)),
                };
                let what = alloc::format!("{kind:?} {}", f[0]);
                assert_eq!(n(3), size, "{what}: objsize");
                assert_eq!(n(4), (PAGE << order) / size, "{what}: objperslab");
                assert_eq!(n(5), 1 << order, "{what}: pagesperslab");
                assert_eq!([n(8), n(9), n(10)], tunables, "{what}: tunables");
            }
        }
    }

    #[test]
    fn slabinfo_golden_small_config() {
        let m = machine();
        for (kind, want) in SLABINFO_GOLDEN_SMALL {
            let sa = SlabAllocator::empty(&m.pa, kind);
            let k = Kmem::new(&sa, &m.pa);
            let a = k
                .kmem_cache_create("test_a", 100, 0, SlabFlags::empty(), None)
                .unwrap();
            let b = k
                .kmem_cache_create("test_b", 400, 0, SlabFlags::HWCACHE_ALIGN, None)
                .unwrap();
            let objs: Vec<_> = (0..3)
                .map(|_| k.kmem_cache_alloc(C0, a, Gfp::KERNEL).unwrap())
                .collect();
            let bs: Vec<_> = (0..4)
                .map(|_| k.kmem_cache_alloc(C0, b, Gfp::KERNEL).unwrap())
                .collect();
            if kind == SlabKind::Slub {
                k.kmem_cache_shrink(C0, a);
            }
            let text = crate::proc::slabinfo::render(&k);
            assert_eq!(
                text,
                alloc::format!("{}{want}", crate::proc::slabinfo::HEADER),
                "{kind:?}"
            );
            for o in objs {
                k.kmem_cache_free(C0, a, o).unwrap();
            }
            for o in bs {
                k.kmem_cache_free(C0, b, o).unwrap();
            }
            k.kmem_cache_shrink(C0, a);
            k.kmem_cache_shrink(C0, b);
        }
        assert_eq!(slab_pages(&m), 0);
    }

    #[test]
    fn slabinfo_lines_match_host_format() {
        let host = crate::proc::testing::host("slabinfo.txt");
        let mut lines = host.lines();
        let header: String = lines
            .by_ref()
            .take(2)
            .map(|l| alloc::format!("{l}\n"))
            .collect();
        assert_eq!(header, crate::proc::slabinfo::HEADER);
        for l in lines {
            let t: Vec<&str> = l.split_whitespace().collect();
            let n = |i: usize| t[i].parse::<u64>().unwrap();
            let info = SlabInfo {
                name: t[0].into(),
                active_objs: n(1),
                num_objs: n(2),
                objsize: n(3),
                objperslab: n(4),
                pagesperslab: n(5),
                limit: n(8),
                batchcount: n(9),
                sharedfactor: n(10),
                active_slabs: n(13),
                num_slabs: n(14),
                sharedavail: n(15),
            };
            let mut out = String::new();
            crate::proc::slabinfo::line(&mut out, &info);
            assert_eq!(out, alloc::format!("{l}\n"));
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Cache { cache: usize, cpu: usize },
        Kmalloc { size: u64, gfp: u8, cpu: usize },
        Free { pick: usize, cpu: usize },
        Shrink { cache: usize },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..3usize, 0..2usize).prop_map(|(cache, cpu)| Op::Cache { cache, cpu }),
            (0..10000u64, 0..3u8, 0..2usize).prop_map(|(size, gfp, cpu)| Op::Kmalloc {
                size,
                gfp,
                cpu
            }),
            (any::<usize>(), 0..2usize).prop_map(|(pick, cpu)| Op::Free { pick, cpu }),
            (0..3usize).prop_map(|cache| Op::Shrink { cache }),
        ]
    }

    fn run_model(kind: SlabKind, ops: &[Op]) {
        let m = machine();
        let base_free = free_pages(&m);
        let sa = SlabAllocator::kmem_cache_init(&m.pa, kind);
        let k = Kmem::new(&sa, &m.pa);
        let dm = m.pa.direct_map();
        let specs = [
            (24u64, 0u64, SlabFlags::empty()),
            (200, 64, SlabFlags::empty()),
            (
                700,
                0,
                SlabFlags::HWCACHE_ALIGN | SlabFlags::RECLAIM_ACCOUNT,
            ),
        ];
        let caches: Vec<CacheId> = specs
            .iter()
            .enumerate()
            .map(|(i, &(s, a, f))| {
                k.kmem_cache_create(
                    &alloc::format!("model{i}"),
                    s,
                    a,
                    f | SlabFlags::NO_MERGE,
                    None,
                )
                .unwrap()
            })
            .collect();
        // addr -> (len, cache or None for kmalloc, fill byte)
        let mut live: BTreeMap<u64, (u64, Option<CacheId>, u8)> = BTreeMap::new();
        // The model of free memory: each live object pins at most one slab
        // (or, above 8 KiB, one block) of at most 2^PAGE_ALLOC_COSTLY_ORDER
        // pages, and a new one needs one more. While that bound stays below
        // the free pages above every zone's high watermark and lowmem
        // reserve, an allocation must succeed: an allocator that fails
        // cannot pass.
        let reserve: u64 =
            m.pa.zones()
                .map(|z| {
                    z.wmark(crate::mmzone::Wmark::High)
                        + (0..crate::vmstat::MAX_ZONES)
                            .map(|j| z.lowmem_reserve(j))
                            .max()
                            .unwrap_or(0)
                })
                .sum();
        let free_at_start = free_pages(&m);
        let must_succeed = |live: usize| {
            let slab = 1u64 << crate::mmzone::PAGE_ALLOC_COSTLY_ORDER;
            (live as u64 + 1) * slab + reserve < free_at_start
        };
        for (step, o) in ops.iter().enumerate() {
            let got = match *o {
                Op::Cache { cache, cpu } => {
                    let id = caches[cache];
                    let p = k.kmem_cache_alloc(CpuId(cpu), id, Gfp::KERNEL);
                    assert!(
                        p.is_some() || !must_succeed(live.len()),
                        "step {step}: kmem_cache_alloc failed with {} objects live",
                        live.len()
                    );
                    p.map(|p| {
                        let (size, align, _) = specs[cache];
                        assert_eq!(p.0 .0 % align.max(8), 0, "alignment");
                        (p, size, Some(id))
                    })
                }
                Op::Kmalloc { size, gfp, cpu } => {
                    let g = [
                        Gfp::KERNEL,
                        Gfp::KERNEL | Gfp::RECLAIMABLE,
                        Gfp::KERNEL | Gfp::DMA,
                    ][gfp as usize];
                    let p = k.kmalloc(CpuId(cpu), size, g);
                    assert!(
                        p.is_some() || !must_succeed(live.len()),
                        "step {step}: kmalloc({size}) failed with {} objects live",
                        live.len()
                    );
                    match p {
                        None => None,
                        Some(p) if size == 0 => {
                            assert_eq!(p, ZERO_SIZE_PTR);
                            None
                        }
                        Some(p) => {
                            assert!(k.ksize(p) >= size, "ksize");
                            assert_eq!(p.0 .0 % 8, 0);
                            if kind == SlabKind::Slub && size.is_power_of_two() {
                                assert_eq!(p.0 .0 % size.min(PAGE_SIZE), 0, "natural alignment");
                            }
                            Some((p, size, None))
                        }
                    }
                }
                Op::Free { pick, cpu } => {
                    if !live.is_empty() {
                        let (&a, &(len, c, fillb)) = live.iter().nth(pick % live.len()).unwrap();
                        let mut b = alloc::vec![0u8; len as usize];
                        dm.read(PhysAddr(a), &mut b);
                        assert!(b.iter().all(|&x| x == fillb), "object bytes intact");
                        let p = ObjPtr(PhysAddr(a));
                        match c {
                            Some(id) => k.kmem_cache_free(CpuId(cpu), id, p).unwrap(),
                            None => k.kfree(CpuId(cpu), p).unwrap(),
                        }
                        live.remove(&a);
                    }
                    None
                }
                Op::Shrink { cache } => {
                    k.kmem_cache_shrink(C0, caches[cache]);
                    None
                }
            };
            if let Some((p, len, c)) = got {
                let a = p.0 .0;
                if let Some((&prev, &(plen, _, _))) = live.range(..=a).next_back() {
                    assert!(prev + plen <= a, "step {step}: {a:#x} overlaps {prev:#x}");
                }
                if let Some((&next, _)) = live.range(a..).next() {
                    assert!(a + len <= next, "step {step}: {a:#x} overlaps {next:#x}");
                }
                let fillb = (step % 251) as u8;
                dm.fill(a, fillb, len);
                live.insert(a, (len, c, fillb));
            }
            check_page_alloc(&m.pa).unwrap();
            for &id in &caches {
                k.validate(id).unwrap();
            }
        }
        for (&a, &(_, c, _)) in &live {
            match c {
                Some(id) => k.kmem_cache_free(C1, id, ObjPtr(PhysAddr(a))).unwrap(),
                None => k.kfree(C1, ObjPtr(PhysAddr(a))).unwrap(),
            }
        }
        for c in sa.caches() {
            k.kmem_cache_shrink(C0, c.id);
            assert_at_rest(&k, &c);
        }
        let meta = meta_pages(&sa, &m.pa);
        assert_eq!(slab_pages(&m), meta);
        assert_eq!(
            free_pages(&m) + meta as u64,
            base_free,
            "every page returned"
        );
        check_page_alloc(&m.pa).unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn random_alloc_free_matches_model_slub(ops in proptest::collection::vec(op(), 1..120)) {
            run_model(SlabKind::Slub, &ops);
        }
        #[test]
        fn random_alloc_free_matches_model_slab(ops in proptest::collection::vec(op(), 1..120)) {
            run_model(SlabKind::Slab, &ops);
        }
    }

    #[test]
    fn many_objects_cycle_through_cpu_partial_and_node_lists() {
        let ops: Vec<Op> = (0..600)
            .map(|i| {
                if i % 3 == 2 {
                    Op::Free {
                        pick: i * 7,
                        cpu: i % 2,
                    }
                } else {
                    Op::Cache {
                        cache: i % 3,
                        cpu: (i / 2) % 2,
                    }
                }
            })
            .chain((0..400).map(|i| Op::Free {
                pick: i * 13,
                cpu: i % 2,
            }))
            .collect();
        run_model(SlabKind::Slub, &ops);
        run_model(SlabKind::Slab, &ops);
    }

    #[test]
    fn requests_below_kmalloc_shift_low_use_the_smallest_cache() {
        let m = machine();
        for (kind, smallest) in [(SlabKind::Slub, 8), (SlabKind::Slab, 32)] {
            let sa = SlabAllocator::kmem_cache_init(&m.pa, kind);
            let k = Kmem::new(&sa, &m.pa);
            for (size, want) in [
                (1, smallest),
                (8, smallest),
                (16, smallest.max(16)),
                (17, 32),
            ] {
                let id = sa.kmalloc_slab(size, Gfp::KERNEL).unwrap();
                assert_eq!(sa.cache(id).unwrap().object_size(), want, "{kind:?} {size}");
                let o = k.kmalloc(C0, size, Gfp::KERNEL).unwrap();
                assert_eq!(k.ksize(o), want, "{kind:?} {size}");
                k.kfree(C0, o).unwrap();
            }
            let dma = sa.kmalloc_slab(8, Gfp::KERNEL | Gfp::DMA).unwrap();
            let want = alloc::format!("dma-kmalloc-{smallest}");
            assert_eq!(sa.cache(dma).unwrap().name, want);
        }
    }

    #[test]
    fn kmalloc_and_kfree_tracepoints_fire_only_when_on() {
        use crate::trace::{Event, EventMask};
        let m = machine();
        let sa = SlabAllocator::kmem_cache_init(&m.pa, SlabKind::Slub);
        let k = Kmem::new(&sa, &m.pa);
        let _ = m.pa.trace.take();
        // Off: no event, for a slab object, a large kmalloc and kmalloc(0).
        for size in [64, 3 * PAGE_SIZE, 0] {
            let o = k.kmalloc(C1, size, Gfp::KERNEL).unwrap();
            k.kfree(C1, o).unwrap();
        }
        assert!(m.pa.trace.take().records.is_empty());
        m.pa.trace
            .enable(EventMask::parse("kmem:kmalloc,kmem:kfree").unwrap());
        let small = k.kmalloc(C1, 40, Gfp::KERNEL).unwrap();
        let large = k.kmalloc(C1, 3 * PAGE_SIZE, Gfp::KERNEL).unwrap();
        let zero = k.kmalloc(C1, 0, Gfp::KERNEL).unwrap();
        k.kfree(C1, small).unwrap();
        k.kfree(C1, large).unwrap();
        k.kfree(C1, zero).unwrap();
        m.pa.trace.enable(EventMask(0));
        let log = m.pa.trace.take();
        let got: Vec<(u32, u64, u64, u64)> = log
            .records
            .iter()
            .filter_map(|r| match &r.event {
                Event::Kmalloc {
                    ptr,
                    bytes_req,
                    bytes_alloc,
                    ..
                } => Some((r.cpu, *ptr, *bytes_req, *bytes_alloc)),
                Event::Kfree { ptr, .. } => Some((r.cpu, *ptr, 0, 0)),
                _ => None,
            })
            .collect();
        // kmalloc(0) is not traced; its kfree is, as Linux's kfree traces
        // before testing ZERO_OR_NULL_PTR.
        assert_eq!(
            got,
            [
                (1, small.0 .0, 40, 64),
                (1, large.0 .0, 3 * PAGE_SIZE, 4 * PAGE_SIZE),
                (1, small.0 .0, 0, 0),
                (1, large.0 .0, 0, 0),
                (1, ZERO_SIZE_PTR.0 .0, 0, 0),
            ]
        );
    }

    #[test]
    fn held_cpu_fast_paths() {
        let m = machine();
        let sa = SlabAllocator::kmem_cache_init(&m.pa, SlabKind::Slub);
        let k = Kmem::new(&sa, &m.pa);
        let id = sa.find_cache("vm_area_struct").unwrap();
        {
            let mut c = k.lock_cpu(C1);
            let v: Vec<_> = (0..100)
                .map(|i| c.kmalloc(1 + i * 50, Gfp::KERNEL).unwrap())
                .collect();
            let o = c.kmem_cache_alloc(id, Gfp::KERNEL).unwrap();
            c.kmem_cache_free(id, o).unwrap();
            for p in v {
                c.kfree(p).unwrap();
            }
        }
        for c in sa.caches() {
            k.kmem_cache_shrink(C0, c.id);
        }
        assert_eq!(slab_pages(&m), meta_pages(&sa, &m.pa));
    }

    #[test]
    fn two_host_threads_drive_two_cpus() {
        let m = machine();
        for kind in [SlabKind::Slub, SlabKind::Slab] {
            // What the previous allocator's caches of caches keep.
            let before = slab_pages(&m);
            let sa = SlabAllocator::kmem_cache_init(&m.pa, kind);
            let k = Kmem::new(&sa, &m.pa);
            std::thread::scope(|s| {
                for cpu in 0..2 {
                    s.spawn(move || {
                        let mut held = Vec::new();
                        for i in 0..3000u64 {
                            held.push(k.kmalloc(CpuId(cpu), 8 + (i % 500), Gfp::KERNEL).unwrap());
                            if held.len() > 100 {
                                // Free on this CPU objects the other may have touched.
                                let p = held.swap_remove((i as usize * 31) % held.len());
                                k.kfree(CpuId(cpu), p).unwrap();
                            }
                        }
                        for p in held {
                            k.kfree(CpuId(cpu), p).unwrap();
                        }
                    });
                }
            });
            for c in sa.caches() {
                k.kmem_cache_shrink(C0, c.id);
                assert_at_rest(&k, &c);
            }
            assert_eq!(slab_pages(&m) - before, meta_pages(&sa, &m.pa));
            check_page_alloc(&m.pa).unwrap();
        }
    }
}
