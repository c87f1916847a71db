//! Memory pools: a reserve of `min_nr` preallocated elements that an
//! allocation falls back on when the underlying allocator (a slab cache,
//! kmalloc, or the page allocator) fails, so that code which must make
//! progress under memory pressure (block I/O) can. Mirrors mm/mempool.c.
//!
//! Waiting: Linux's `mempool_alloc` with a GFP that may block sleeps until
//! an element is freed back. A simulated CPU cannot sleep inside mm, so
//! here it returns `None` once the allocator and the reserve both fail,
//! logs "mempool_alloc: would wait for a free element" and counts it in
//! [`Mempool::waits`]; the caller retries after freeing (a simplification).
//! With a GFP that cannot wait it returns `None` once the reserve is empty,
//! exactly as Linux does.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::errno::Errno;
use crate::gfp::Gfp;
use crate::page_alloc::CpuId;
use crate::slab_common::{CacheId, Kmem, ObjPtr};
use crate::types::Order;

/// `mempool_alloc_t`: allocates one element.
pub type AllocFn = Box<dyn Fn(&Kmem, CpuId, Gfp) -> Option<ObjPtr> + Send + Sync>;
/// `mempool_free_t`: frees one element.
pub type FreeFn = Box<dyn Fn(&Kmem, CpuId, ObjPtr) + Send + Sync>;

/// A memory pool (`mempool_t`).
pub struct Mempool {
    min_nr: spin::Mutex<usize>,
    elements: spin::Mutex<Vec<ObjPtr>>,
    alloc: AllocFn,
    free: FreeFn,
    /// Allocations that would have slept waiting for a free element.
    pub waits: AtomicU64,
}

impl Mempool {
    /// `mempool_create(min_nr, alloc_fn, free_fn, pool_data)`: the closure
    /// captures the pool data. Fills the reserve with GFP_KERNEL; ENOMEM
    /// (with everything already allocated given back) if it cannot.
    pub fn create(
        k: &Kmem,
        cpu: CpuId,
        min_nr: usize,
        alloc: AllocFn,
        free: FreeFn,
    ) -> Result<Mempool, Errno> {
        let pool = Mempool {
            min_nr: spin::Mutex::new(min_nr),
            elements: spin::Mutex::new(Vec::with_capacity(min_nr)),
            alloc,
            free,
            waits: AtomicU64::new(0),
        };
        while pool.curr_nr() < min_nr {
            match (pool.alloc)(k, cpu, Gfp::KERNEL) {
                Some(e) => pool.elements.lock().push(e),
                None => {
                    pool.destroy(k, cpu);
                    return Err(Errno::ENOMEM);
                }
            }
        }
        Ok(pool)
    }

    /// `mempool_create_slab_pool`: elements from a slab cache.
    pub fn create_slab_pool(
        k: &Kmem,
        cpu: CpuId,
        min_nr: usize,
        cache: CacheId,
    ) -> Result<Mempool, Errno> {
        Self::create(
            k,
            cpu,
            min_nr,
            Box::new(move |k, cpu, gfp| k.kmem_cache_alloc(cpu, cache, gfp)),
            Box::new(move |k, cpu, e| {
                let _ = k.kmem_cache_free(cpu, cache, e);
            }),
        )
    }

    /// `mempool_create_kmalloc_pool`: elements of `size` bytes from kmalloc.
    pub fn create_kmalloc_pool(
        k: &Kmem,
        cpu: CpuId,
        min_nr: usize,
        size: u64,
    ) -> Result<Mempool, Errno> {
        Self::create(
            k,
            cpu,
            min_nr,
            Box::new(move |k, cpu, gfp| k.kmalloc(cpu, size, gfp)),
            Box::new(|k, cpu, e| {
                let _ = k.kfree(cpu, e);
            }),
        )
    }

    /// `mempool_create_page_pool`: blocks of `order` pages (the element is
    /// the block's physical address).
    pub fn create_page_pool(
        k: &Kmem,
        cpu: CpuId,
        min_nr: usize,
        order: Order,
    ) -> Result<Mempool, Errno> {
        Self::create(
            k,
            cpu,
            min_nr,
            Box::new(move |k, cpu, gfp| {
                k.pa.alloc_pages(cpu, gfp, order).map(|p| ObjPtr(p.phys()))
            }),
            Box::new(move |k, cpu, e| k.pa.free_pages(cpu, e.0.pfn(), order)),
        )
    }

    /// Elements in the reserve (`curr_nr`).
    pub fn curr_nr(&self) -> usize {
        self.elements.lock().len()
    }

    /// The reserve's target size (`min_nr`).
    pub fn min_nr(&self) -> usize {
        *self.min_nr.lock()
    }

    /// `mempool_alloc`: the allocator first (without reclaim, I/O or
    /// warnings), then the reserve, then (if `gfp` differs) the allocator
    /// with the caller's full GFP. `None` when all fail (see the module doc
    /// about waiting).
    pub fn alloc(&self, k: &Kmem, cpu: CpuId, gfp: Gfp) -> Option<ObjPtr> {
        let gfp_temp = Gfp(gfp.0 & !(Gfp::DIRECT_RECLAIM.0 | Gfp::IO.0))
            | Gfp::NOMEMALLOC
            | Gfp::NORETRY
            | Gfp::NOWARN;
        if let Some(e) = (self.alloc)(k, cpu, gfp_temp) {
            return Some(e);
        }
        if let Some(e) = self.elements.lock().pop() {
            return Some(e);
        }
        if gfp_temp != gfp {
            if let Some(e) = (self.alloc)(k, cpu, gfp | Gfp::NOWARN) {
                return Some(e);
            }
        }
        if gfp.allows_blocking() {
            self.waits.fetch_add(1, Relaxed);
            crate::printk!(k.pa.log, "mempool_alloc: would wait for a free element");
        }
        None
    }

    /// `mempool_free`: refills the reserve first; only a full reserve lets
    /// the element go back to the allocator.
    pub fn free(&self, k: &Kmem, cpu: CpuId, e: ObjPtr) {
        {
            let mut el = self.elements.lock();
            if el.len() < *self.min_nr.lock() {
                el.push(e);
                return;
            }
        }
        (self.free)(k, cpu, e);
    }

    /// `mempool_resize`: a smaller reserve gives its surplus back; a larger
    /// one is filled with GFP_KERNEL (ENOMEM if it cannot be, the pool
    /// then keeps what it got and its old target).
    pub fn resize(&self, k: &Kmem, cpu: CpuId, new_min_nr: usize) -> Result<(), Errno> {
        if new_min_nr == 0 {
            return Err(Errno::EINVAL);
        }
        let surplus: Vec<ObjPtr> = {
            let mut el = self.elements.lock();
            let keep = el.len().min(new_min_nr);
            el.drain(keep..).collect()
        };
        for e in surplus {
            (self.free)(k, cpu, e);
        }
        while self.curr_nr() < new_min_nr {
            let e = (self.alloc)(k, cpu, Gfp::KERNEL).ok_or(Errno::ENOMEM)?;
            self.elements.lock().push(e);
        }
        *self.min_nr.lock() = new_min_nr;
        Ok(())
    }

    /// `mempool_destroy`: the reserve goes back to the allocator.
    pub fn destroy(self, k: &Kmem, cpu: CpuId) {
        let el = core::mem::take(&mut *self.elements.lock());
        for e in el {
            (self.free)(k, cpu, e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;
    use crate::mm_init::testing::boot;
    use crate::slab_common::{SlabAllocator, SlabFlags, SlabKind};
    use alloc::sync::Arc;
    use core::sync::atomic::AtomicBool;

    const C0: CpuId = CpuId(0);

    /// A kmalloc pool whose allocator can be made to fail (the test hook).
    fn failing_pool(k: &Kmem, min: usize, fail: Arc<AtomicBool>) -> Mempool {
        Mempool::create(
            k,
            C0,
            min,
            Box::new(move |k, cpu, gfp| {
                if fail.load(Relaxed) {
                    None
                } else {
                    k.kmalloc(cpu, 256, gfp)
                }
            }),
            Box::new(|k, cpu, e| k.kfree(cpu, e).unwrap()),
        )
        .unwrap()
    }

    #[test]
    fn reserve_used_only_when_the_allocator_fails() {
        let m = boot(Arch::X86_64, 64 << 20, 2);
        let sa = SlabAllocator::kmem_cache_init(&m.pa, SlabKind::Slub);
        let k = Kmem::new(&sa, &m.pa);
        let fail = Arc::new(AtomicBool::new(false));
        let pool = failing_pool(&k, 3, fail.clone());
        assert_eq!(pool.curr_nr(), 3);
        // The allocator works: the reserve is untouched.
        let a = pool.alloc(&k, C0, Gfp::KERNEL).unwrap();
        assert_eq!(pool.curr_nr(), 3);
        // It fails: the reserve hands out its elements, then runs dry.
        fail.store(true, Relaxed);
        let r: alloc::vec::Vec<ObjPtr> = (0..3)
            .map(|_| pool.alloc(&k, C0, Gfp::ATOMIC).unwrap())
            .collect();
        assert_eq!(pool.curr_nr(), 0);
        assert_eq!(
            pool.alloc(&k, C0, Gfp::ATOMIC),
            None,
            "cannot wait: nothing"
        );
        assert_eq!(pool.waits.load(Relaxed), 0);
        assert_eq!(pool.alloc(&k, C0, Gfp::KERNEL), None, "would sleep");
        assert_eq!(pool.waits.load(Relaxed), 1);
        assert!(m
            .pa
            .log
            .messages()
            .iter()
            .any(|l| l.contains("mempool_alloc: would wait")));
        // Frees refill the reserve first, then go back to kmalloc.
        for e in r {
            pool.free(&k, C0, e);
        }
        assert_eq!(pool.curr_nr(), 3);
        let before = sa
            .caches()
            .iter()
            .find(|c| c.name == "kmalloc-256")
            .unwrap()
            .id;
        pool.free(&k, C0, a);
        assert_eq!(pool.curr_nr(), 3);
        assert_eq!(
            k.validate(before).unwrap().live,
            3,
            "a went back to kmalloc"
        );
        // Resize: shrink gives the surplus back, growth needs the allocator.
        pool.resize(&k, C0, 1).unwrap();
        assert_eq!((pool.curr_nr(), pool.min_nr()), (1, 1));
        assert_eq!(pool.resize(&k, C0, 4), Err(Errno::ENOMEM));
        fail.store(false, Relaxed);
        pool.resize(&k, C0, 4).unwrap();
        assert_eq!(pool.curr_nr(), 4);
        pool.destroy(&k, C0);
        assert_eq!(k.validate(before).unwrap().live, 0);
    }

    #[test]
    fn slab_kmalloc_and_page_pools() {
        let m = boot(Arch::X86_64, 64 << 20, 2);
        let sa = SlabAllocator::kmem_cache_init(&m.pa, SlabKind::Slab);
        let k = Kmem::new(&sa, &m.pa);
        let free0 = m.pa.nr_free_pages() + m.pa.nr_pcp_pages();
        let cache = k
            .kmem_cache_create("bio", 200, 0, SlabFlags::empty(), None)
            .unwrap();
        let sp = Mempool::create_slab_pool(&k, C0, 4, cache).unwrap();
        let kp = Mempool::create_kmalloc_pool(&k, C0, 2, 1000).unwrap();
        let pp = Mempool::create_page_pool(&k, C0, 2, Order(1)).unwrap();
        // Slab pages run out: the slab pool still serves from its reserve.
        sa.fail_new_slabs.store(u64::MAX, Relaxed);
        let mut got = alloc::vec::Vec::new();
        while let Some(e) = sp.alloc(&k, C0, Gfp::NOWAIT) {
            got.push(e);
        }
        assert!(got.len() >= 4 && sp.curr_nr() == 0);
        sa.fail_new_slabs.store(0, Relaxed);
        for e in got {
            sp.free(&k, C0, e);
        }
        let pg = pp.alloc(&k, C0, Gfp::KERNEL).unwrap();
        assert!(pg.0.is_page_aligned());
        pp.free(&k, C0, pg);
        sp.destroy(&k, C0);
        kp.destroy(&k, C0);
        pp.destroy(&k, C0);
        for c in sa.caches() {
            k.kmem_cache_shrink(C0, c.id);
        }
        assert_eq!(m.pa.nr_free_pages() + m.pa.nr_pcp_pages(), free0);
    }

    #[test]
    fn create_fails_cleanly_when_the_reserve_cannot_be_filled() {
        let m = boot(Arch::X86_64, 64 << 20, 1);
        let sa = SlabAllocator::kmem_cache_init(&m.pa, SlabKind::Slub);
        let k = Kmem::new(&sa, &m.pa);
        let huge = Mempool::create_page_pool(&k, C0, 100_000, Order(0));
        assert_eq!(huge.err(), Some(Errno::ENOMEM));
        crate::debug::check_page_alloc(&m.pa).unwrap();
    }
}
