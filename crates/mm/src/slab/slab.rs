//! The classic SLAB allocator: per-node lists of full, partial and free
//! slabs, per-CPU array caches (`limit`, `batchcount`) refilled from a
//! per-node shared array and the slabs, and slab colouring by cache-line
//! offsets. Mirrors mm/slab.c, which Linux removed in 6.8 (SLUB has been
//! its only allocator since); kept so the two can be compared on one
//! workload.
//!
//! Each slab's free objects are an array of byte indices (`freelist_idx_t`
//! is one byte with 4 KiB pages) stored in the slab's own RAM: inside the
//! free object handed out last (`OBJFREELIST_SLAB`, for caches without a
//! constructor whose object can hold the array) or at the end of the slab
//! (on-slab). Simplifications: no OFF_SLAB management, no alien caches for
//! remote-node frees (objects go straight back to their node's slab), no
//! periodic reaping (`cache_reap`); debug flags are accepted and ignored
//! (slub_debug checking is SLUB's).
//!
//! # Lock order
//!
//! Outermost first, as for SLUB (see [`super::slub`]): the cache registry;
//! one CPU's slab state (its `super::ArrayCache`s; Linux 6.7 protected
//! them by disabling interrupts); one node's `list_lock` of one cache
//! (`super::SlabNode`, which also guards the node's shared array); the
//! page allocator's per-CPU list lock, then its zone lock. A cache grows
//! with only the CPU state held (the node lock is dropped first, as
//! `cache_grow_begin` does); `free_block` destroys slabs beyond
//! `free_limit` with the node lock held, so slab pages are freed under it.

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::panic::Location;

use super::{
    calculate_alignment, new_nodes, run_ctor, ArrayCache, Cache, CacheCounts, CacheEngine, CacheId,
    CacheLayout, CpuCache, Ctor, FreelistPlace, Kmem, ObjPtr, SlabCache, SlabEngine, SlabFlags,
    SlabInfo, SlabNode, SlabReport, Track, CACHE_LINE_SIZE, INUSE_MASK, ON_FREE, ON_FULL,
    ON_PARTIAL,
};
use crate::gfp::Gfp;
use crate::memmap::PageList;
use crate::page_alloc::{CpuId, PageAlloc};
use crate::types::{Pfn, PhysAddr, PAGE_SHIFT, PAGE_SIZE};

/// `SLAB_OBJ_MAX_NUM`: objects per slab a byte index can name.
pub const SLAB_OBJ_MAX_NUM: u64 = 255;
/// `KMALLOC_MAX_ORDER` for the order search.
const MAX_ORDER: u8 = 10;
const COLOUR_SHIFT: u32 = 32;
const COLOUR_MASK: u64 = 0xff_ffff;

/// `cache_estimate`: objects and leftover bytes in a slab of `order`.
pub fn cache_estimate(order: u8, size: u64, place: FreelistPlace) -> (u64, u64) {
    let slab = PAGE_SIZE << order;
    match place {
        FreelistPlace::InObject => (slab / size, slab % size),
        FreelistPlace::OnSlab => {
            let num = slab / (size + 1);
            (num, slab - num * size - num)
        }
    }
}

/// `calculate_slab_order`: the first order with objects whose leftover is
/// at most 1/8 of the slab, not above `slab_max_order`. Returns
/// (order, objects, leftover); objects 0 if none fits.
pub fn calculate_slab_order(size: u64, place: FreelistPlace, slab_max_order: u8) -> (u8, u64, u64) {
    let mut best = (0, 0, 0);
    for order in 0..=MAX_ORDER {
        let (num, left) = cache_estimate(order, size, place);
        if num == 0 {
            continue;
        }
        if num > SLAB_OBJ_MAX_NUM {
            break;
        }
        best = (order, num, left);
        if order >= slab_max_order || left * 8 <= PAGE_SIZE << order {
            break;
        }
    }
    best
}

/// `__kmem_cache_create` + `enable_cpucache` for SLAB.
fn new_cache(
    k: &Kmem,
    id: CacheId,
    name: &str,
    size: u64,
    align: u64,
    flags: SlabFlags,
    ctor: Option<Ctor>,
) -> Cache {
    let size8 = size.next_multiple_of(8);
    let align = calculate_alignment(flags, align, size8);
    let slot = size8.next_multiple_of(align);
    // SLAB_MAX_ORDER_HI above 32 MiB of RAM, else SLAB_MAX_ORDER_LO.
    let max_order = if k.pa.totalram_pages() > (32 << 20) >> PAGE_SHIFT {
        1
    } else {
        0
    };
    let mut pick = None;
    if ctor.is_none() && !flags.contains(SlabFlags::TYPESAFE_BY_RCU) {
        let (o, num, left) = calculate_slab_order(slot, FreelistPlace::InObject, max_order);
        if num > 0 && num <= size {
            pick = Some((FreelistPlace::InObject, o, num, left));
        }
    }
    let (place, order, num, left) = pick.unwrap_or_else(|| {
        let (o, num, left) = calculate_slab_order(slot, FreelistPlace::OnSlab, max_order);
        (FreelistPlace::OnSlab, o, num, left)
    });
    let colour_off = CACHE_LINE_SIZE.max(align);
    let limit = if slot > 131072 {
        1
    } else if slot > PAGE_SIZE {
        8
    } else if slot > 1024 {
        24
    } else if slot > 256 {
        54
    } else {
        120
    };
    let shared = if slot <= PAGE_SIZE && k.sa.nr_cpus() > 1 {
        8
    } else {
        0
    };
    let batchcount = u32::div_ceil(limit, 2);
    let nodes: alloc::boxed::Box<[spin::Mutex<SlabNode>]> = new_nodes(k.sa.nr_nodes());
    for (nid, n) in nodes.iter().enumerate() {
        let cpus = k.pa.cpu_node.iter().filter(|&&n| n as usize == nid).count() as u64;
        n.lock().free_limit = (1 + cpus) * batchcount as u64 + num;
    }
    let layout = CacheLayout {
        size: slot,
        align,
        order,
        objects: num as u32,
    };
    let engine = CacheEngine::Slab(SlabCache {
        colour: (left / colour_off) as u32,
        colour_off,
        freelist_place: place,
        limit,
        batchcount,
        shared,
        nodes,
    });
    Cache::new(id, name, size, flags, ctor, layout, engine)
}

/// The classic SLAB engine.
pub(crate) struct Slab;

impl SlabEngine for Slab {
    const KMALLOC_SHIFT_LOW: usize = 5;
    const MERGES: bool = false;
    type Cpu = ArrayCache;

    fn create_cache(
        k: &Kmem,
        id: CacheId,
        name: &str,
        size: u64,
        align: u64,
        flags: SlabFlags,
        ctor: Option<Ctor>,
    ) -> Cache {
        new_cache(k, id, name, size, align, flags, ctor)
    }

    fn new_cpu(cache: &Arc<Cache>) -> CpuCache {
        CpuCache::Slab(ArrayCache {
            cache: cache.clone(),
            ac: Vec::with_capacity(cache.slab().limit as usize),
        })
    }

    fn cpu_ref(c: &CpuCache) -> Option<&ArrayCache> {
        match c {
            CpuCache::Slab(c) => Some(c),
            CpuCache::Slub(_) => None,
        }
    }

    #[inline]
    fn alloc(
        k: &Kmem,
        cpu: CpuId,
        c: &mut ArrayCache,
        gfp: Gfp,
        _orig_size: Option<u64>,
        _caller: &'static Location<'static>,
    ) -> Option<ObjPtr> {
        alloc(k, cpu, c, gfp)
    }

    #[inline]
    fn free(
        k: &Kmem,
        cpu: CpuId,
        c: &mut ArrayCache,
        obj: ObjPtr,
        _caller: &'static Location<'static>,
    ) -> Result<(), SlabReport> {
        free(k, cpu, c, obj)
    }

    fn shrink(k: &Kmem, cpu: CpuId, s: &Cache) -> u64 {
        shrink(k, cpu, s)
    }

    fn nr_slabs(s: &Cache) -> u64 {
        s.slab().nodes.iter().map(|n| n.lock().nr_slabs).sum()
    }

    fn slabinfo(k: &Kmem, s: &Cache) -> SlabInfo {
        slabinfo(k, s)
    }

    fn validate(
        k: &Kmem,
        s: &Cache,
        cpus: &[&ArrayCache],
    ) -> Result<CacheCounts, alloc::string::String> {
        validate(k, s, cpus)
    }

    fn live_objects(k: &Kmem, s: &Cache, cpus: &[&ArrayCache]) -> Vec<ObjPtr> {
        live_objects(k, s, cpus)
    }

    /// SLAB keeps no owner tracks (debug flags are accepted and ignored).
    fn alloc_track(_k: &Kmem, _s: &Cache, _obj: ObjPtr) -> Option<Track> {
        None
    }

    /// slub_debug checking is SLUB's: nothing to count.
    fn validate_slab_cache(_k: &Kmem, _s: &Cache) -> u64 {
        0
    }

    /// SLAB printed no boot line of its own.
    fn boot_message(_pa: &PageAlloc) {}
}

// ----- slab layout -----

struct SlabRef {
    pfn: u64,
    s_mem: u64,
    freelist: u64,
    active: u64,
}

fn slab_ref(k: &Kmem, pfn: u64) -> SlabRef {
    let head = k.sa.page(Pfn(pfn)).unwrap();
    let idx = head.index();
    SlabRef {
        pfn,
        s_mem: (pfn << PAGE_SHIFT) + ((idx >> COLOUR_SHIFT) & COLOUR_MASK),
        freelist: head.mapping(),
        active: idx & INUSE_MASK,
    }
}

fn store(k: &Kmem, r: &SlabRef, list: u64) {
    let head = k.sa.page(Pfn(r.pfn)).unwrap();
    let colour = r.s_mem - (r.pfn << PAGE_SHIFT);
    head.set_mapping(r.freelist);
    head.set_index(list | colour << COLOUR_SHIFT | r.active);
}

fn get_byte(k: &Kmem, a: u64) -> u8 {
    let mut b = [0u8];
    k.pa.direct_map().read(PhysAddr(a), &mut b);
    b[0]
}

fn set_byte(k: &Kmem, a: u64, v: u8) {
    k.pa.direct_map().write(PhysAddr(a), &[v]);
}

/// `slab_get_obj`.
fn get_obj(k: &Kmem, s: &Cache, r: &mut SlabRef) -> u64 {
    let idx = get_byte(k, r.freelist + r.active) as u64;
    r.active += 1;
    if s.slab().freelist_place == FreelistPlace::InObject && r.active == s.objects as u64 {
        r.freelist = 0;
    }
    r.s_mem + idx * s.size
}

/// `slab_put_obj`.
fn put_obj(k: &Kmem, s: &Cache, r: &mut SlabRef, obj: u64) {
    let idx = (obj - r.s_mem) / s.size;
    r.active -= 1;
    if r.freelist == 0 {
        r.freelist = obj;
    }
    set_byte(k, r.freelist + r.active, idx as u8);
}

fn list_of(n: &mut SlabNode, flags: u64) -> &mut PageList {
    if flags & ON_FULL != 0 {
        &mut n.full
    } else if flags & ON_FREE != 0 {
        &mut n.free
    } else {
        &mut n.partial
    }
}

/// Moves a slab to the list its `active` count calls for.
fn relist(k: &Kmem, s: &Cache, n: &mut SlabNode, nid: u32, r: &SlabRef, linked: bool) {
    let mm = k.sa.memmap(nid);
    let old = k.sa.page(Pfn(r.pfn)).unwrap().index() & (ON_FULL | ON_FREE | ON_PARTIAL);
    if linked {
        list_of(n, old).remove(mm, Pfn(r.pfn));
        if old & ON_FREE != 0 {
            n.free_slabs -= 1;
        }
    }
    let new = if r.active == 0 {
        n.free_slabs += 1;
        n.free.push_front(mm, Pfn(r.pfn));
        ON_FREE
    } else if r.active == s.objects as u64 {
        n.full.push_front(mm, Pfn(r.pfn));
        ON_FULL
    } else {
        n.partial.push_back(mm, Pfn(r.pfn));
        ON_PARTIAL
    };
    store(k, r, new);
}

/// `cache_grow_begin` / `cache_grow_end`: a new slab at the next colour,
/// its objects constructed and indexed, on the node's free list.
fn grow(k: &Kmem, cpu: CpuId, s: &Cache, gfp: Gfp) -> Option<()> {
    let pfn = k.new_slab_pages(cpu, s, gfp)?;
    let nid = k.sa.page(pfn)?.nid();
    let colour = {
        let mut n = s.slab().node(nid);
        let c = n.colour_next;
        n.colour_next += 1;
        if n.colour_next >= s.slab().colour {
            n.colour_next = 0;
        }
        c as u64 * s.slab().colour_off
    };
    let base = pfn.phys().0;
    let s_mem = base + colour;
    let num = s.objects as u64;
    let freelist = match s.slab().freelist_place {
        FreelistPlace::InObject => s_mem + (num - 1) * s.size,
        FreelistPlace::OnSlab => base + (PAGE_SIZE << s.order) - num,
    };
    let dm = k.pa.direct_map();
    if let Some(ctor) = s.ctor {
        for i in 0..num {
            run_ctor(dm, s_mem + i * s.size, s.object_size(), ctor);
        }
    }
    let idx: Vec<u8> = (0..num as u8).collect();
    dm.write(PhysAddr(freelist), &idx);
    let r = SlabRef {
        pfn: pfn.0,
        s_mem,
        freelist,
        active: 0,
    };
    let mut n = s.slab().node(nid);
    n.nr_slabs += 1;
    n.total_objects += num;
    n.free_objects += num;
    relist(k, s, &mut n, nid, &r, false);
    Some(())
}

fn destroy_slab(k: &Kmem, cpu: CpuId, s: &Cache, n: &mut SlabNode, nid: u32, pfn: Pfn) {
    n.free.remove(k.sa.memmap(nid), pfn);
    n.free_slabs -= 1;
    n.free_objects -= s.objects as u64;
    n.nr_slabs -= 1;
    n.total_objects -= s.objects as u64;
    k.sa.page(pfn).unwrap().set_index(0);
    k.free_slab_pages(cpu, s, pfn);
}

// ----- allocation and freeing -----

/// `____cache_alloc`: the CPU's array cache, refilled by `batchcount`.
#[inline(never)]
fn alloc(k: &Kmem, cpu: CpuId, c: &mut ArrayCache, gfp: Gfp) -> Option<ObjPtr> {
    if let Some(o) = c.ac.pop() {
        return Some(ObjPtr(PhysAddr(o)));
    }
    refill(k, cpu, c, gfp)?;
    c.ac.pop().map(|o| ObjPtr(PhysAddr(o)))
}

/// `cache_alloc_refill`: from the node's shared array, else from partial
/// then free slabs, growing the cache when both are empty.
fn refill(k: &Kmem, cpu: CpuId, c: &mut ArrayCache, gfp: Gfp) -> Option<()> {
    let s = c.cache.clone();
    let nid = k.sa.cpu_node(cpu);
    let mut batch = s.slab().batchcount as usize;
    loop {
        let mut n = s.slab().node(nid);
        if !n.shared.is_empty() {
            let take = batch.min(n.shared.len());
            let at = n.shared.len() - take;
            c.ac.extend(n.shared.drain(at..));
            return Some(());
        }
        while batch > 0 {
            let Some(pfn) = n.partial.first().or_else(|| n.free.first()) else {
                break;
            };
            let mut r = slab_ref(k, pfn.0);
            while r.active < s.objects as u64 && batch > 0 {
                c.ac.push(get_obj(k, &s, &mut r));
                n.free_objects -= 1;
                batch -= 1;
            }
            relist(k, &s, &mut n, nid, &r, true);
        }
        drop(n);
        if !c.ac.is_empty() {
            return Some(());
        }
        grow(k, cpu, &s, gfp)?;
    }
}

/// `___cache_free`: onto the array cache; a full one first flushes
/// `batchcount` objects to the shared array or back to their slabs.
#[inline(never)]
fn free(k: &Kmem, cpu: CpuId, c: &mut ArrayCache, obj: ObjPtr) -> Result<(), SlabReport> {
    let s = &c.cache;
    let ok = match k.obj_slab(obj) {
        Some((pfn, id)) if id == s.id => {
            let r = slab_ref(k, pfn.0);
            obj.0 .0 >= r.s_mem
                && (obj.0 .0 - r.s_mem).is_multiple_of(s.size)
                && (obj.0 .0 - r.s_mem) / s.size < s.objects as u64
        }
        _ => false,
    };
    if !ok {
        let r = SlabReport::InvalidFree {
            cache: s.name.clone(),
            obj,
        };
        crate::printk!(k.pa.log, "{}", r.title());
        return Err(r);
    }
    if c.ac.len() >= s.slab().limit as usize {
        flusharray(k, cpu, c);
    }
    c.ac.push(obj.0 .0);
    Ok(())
}

/// `cache_flusharray`.
fn flusharray(k: &Kmem, cpu: CpuId, c: &mut ArrayCache) {
    let s = c.cache.clone();
    let batch = (s.slab().batchcount as usize).min(c.ac.len());
    let nid = k.sa.cpu_node(cpu);
    {
        let mut n = s.slab().node(nid);
        let max = (s.slab().shared * s.slab().batchcount) as usize;
        if n.shared.len() < max {
            let take = batch.min(max - n.shared.len());
            n.shared.extend(c.ac.drain(..take));
            return;
        }
    }
    let objs: Vec<u64> = c.ac.drain(..batch).collect();
    free_block(k, cpu, &s, &objs);
}

/// `free_block`: objects back into their slabs, then free slabs beyond
/// the node's `free_limit` destroyed.
fn free_block(k: &Kmem, cpu: CpuId, s: &Cache, objs: &[u64]) {
    for &o in objs {
        let pfn = (o >> PAGE_SHIFT) & !((1u64 << s.order) - 1);
        let nid = k.sa.page(Pfn(pfn)).unwrap().nid();
        let mut n = s.slab().node(nid);
        let mut r = slab_ref(k, pfn);
        put_obj(k, s, &mut r, o);
        n.free_objects += 1;
        relist(k, s, &mut n, nid, &r, true);
        while n.free_objects > n.free_limit {
            let Some(last) = n.free.last() else { break };
            destroy_slab(k, cpu, s, &mut n, nid, last);
        }
    }
}

/// `__kmem_cache_shrink`: drains every array cache and shared array, then
/// destroys every free slab. Returns the pages freed.
fn shrink(k: &Kmem, cpu: CpuId, s: &Cache) -> u64 {
    for l in k.sa.cpus.iter() {
        let mut st = l.lock();
        if let Some(Some(CpuCache::Slab(c))) = st.caches.get_mut(s.id.0 as usize) {
            let objs = core::mem::take(&mut c.ac);
            c.ac = Vec::with_capacity(s.slab().limit as usize);
            free_block(k, cpu, s, &objs);
        }
    }
    let mut freed = 0;
    for nid in 0..k.sa.nr_nodes() as u32 {
        let shared = core::mem::take(&mut s.slab().node(nid).shared);
        free_block(k, cpu, s, &shared);
        let mut n = s.slab().node(nid);
        while let Some(pfn) = n.free.first() {
            destroy_slab(k, cpu, s, &mut n, nid, pfn);
            freed += s.pages();
        }
    }
    freed
}

// ----- introspection -----

/// A slab's head PFN, first object and free-object map.
type SlabMap = (u64, u64, Vec<bool>);

fn slabs_with_free(
    k: &Kmem,
    s: &Cache,
    cpus: &[&ArrayCache],
) -> Result<(Vec<SlabMap>, Vec<u64>), alloc::string::String> {
    use alloc::format;
    let num = s.objects as u64;
    let mut out = Vec::new();
    let mut cached: Vec<u64> = cpus.iter().flat_map(|c| c.ac.iter().copied()).collect();
    for nid in 0..k.sa.nr_nodes() as u32 {
        let n = s.slab().node(nid);
        cached.extend(n.shared.iter().copied());
        let mm = k.sa.memmap(nid);
        let mut free_objs = 0;
        let mut free_slabs = 0;
        let mut slabs = 0;
        for (list, flag) in [
            (&n.full, ON_FULL),
            (&n.partial, ON_PARTIAL),
            (&n.free, ON_FREE),
        ] {
            for pfn in list.iter(mm) {
                let head = k.sa.page(pfn).unwrap();
                if head.index() & (ON_FULL | ON_PARTIAL | ON_FREE) != flag {
                    return Err(format!("{}: slab {pfn:?} on the wrong list", s.name));
                }
                let r = slab_ref(k, pfn.0);
                let ok = match flag {
                    ON_FULL => r.active == num,
                    ON_FREE => r.active == 0,
                    _ => r.active > 0 && r.active < num,
                };
                if !ok {
                    return Err(format!(
                        "{}: slab {pfn:?} active {} on list {flag:#x}",
                        s.name, r.active
                    ));
                }
                let mut free = vec![false; num as usize];
                for i in r.active..num {
                    let idx = get_byte(k, r.freelist + i) as usize;
                    if idx >= num as usize || free[idx] {
                        return Err(format!("{}: slab {pfn:?} bad freelist", s.name));
                    }
                    free[idx] = true;
                }
                free_objs += num - r.active;
                if flag == ON_FREE {
                    free_slabs += 1;
                }
                slabs += 1;
                out.push((pfn.0, r.s_mem, free));
            }
        }
        if free_objs != n.free_objects || free_slabs != n.free_slabs || slabs != n.nr_slabs {
            return Err(format!(
                "{}: node {nid} counts free_objects {} free_slabs {} slabs {} vs {free_objs} {free_slabs} {slabs}",
                s.name, n.free_objects, n.free_slabs, n.nr_slabs
            ));
        }
    }
    for &o in &cached {
        let pfn = (o >> PAGE_SHIFT) & !((1u64 << s.order) - 1);
        let Some(e) = out.iter_mut().find(|e| e.0 == pfn) else {
            return Err(format!(
                "{}: cached object {o:#x} outside every slab",
                s.name
            ));
        };
        let i = ((o - e.1) / s.size) as usize;
        if e.2[i] {
            return Err(format!("{}: object {o:#x} both cached and free", s.name));
        }
        e.2[i] = true;
    }
    Ok((out, cached))
}

fn validate(
    k: &Kmem,
    s: &Cache,
    cpus: &[&ArrayCache],
) -> Result<CacheCounts, alloc::string::String> {
    let (slabs, _) = slabs_with_free(k, s, cpus)?;
    let objects = slabs.len() as u64 * s.objects as u64;
    let free: u64 = slabs
        .iter()
        .map(|e| e.2.iter().filter(|x| **x).count() as u64)
        .sum();
    Ok(CacheCounts {
        slabs: slabs.len() as u64,
        objects,
        live: objects - free,
    })
}

fn live_objects(k: &Kmem, s: &Cache, cpus: &[&ArrayCache]) -> Vec<ObjPtr> {
    let mut out = Vec::new();
    if let Ok((slabs, _)) = slabs_with_free(k, s, cpus) {
        for (_, s_mem, free) in slabs {
            for (i, f) in free.iter().enumerate() {
                if !f {
                    out.push(ObjPtr(PhysAddr(s_mem + i as u64 * s.size)));
                }
            }
        }
    }
    out.sort();
    out
}

/// `get_slabinfo` + `slabinfo_show_stats` (SLAB): objects in array caches
/// count as active; the tunables are shown.
fn slabinfo(k: &Kmem, s: &Cache) -> SlabInfo {
    let (mut slabs, mut free_slabs, mut free_objs, mut shared) = (0, 0, 0, 0);
    for nid in 0..k.sa.nr_nodes() as u32 {
        let n = s.slab().node(nid);
        slabs += n.nr_slabs;
        free_slabs += n.free_slabs;
        free_objs += n.free_objects;
        shared += n.shared.len() as u64;
    }
    let num = slabs * s.objects as u64;
    SlabInfo {
        name: s.name.clone(),
        active_objs: num - free_objs,
        num_objs: num,
        objsize: s.size,
        objperslab: s.objects as u64,
        pagesperslab: s.pages(),
        limit: s.slab().limit as u64,
        batchcount: s.slab().batchcount as u64,
        sharedfactor: s.slab().shared as u64,
        active_slabs: slabs - free_slabs,
        num_slabs: slabs,
        sharedavail: shared,
    }
}
