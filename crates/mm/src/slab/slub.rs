//! SLUB, the default slab allocator: per-CPU slabs whose free objects are
//! chained through a free pointer stored inside each free object, per-CPU
//! partial lists, per-node partial lists trimmed to `min_partial`, and
//! slub_debug (red zones, poisoning, owner tracking). Mirrors mm/slub.c.
//!
//! Free pointer placement is Linux 6.x's: in the middle of the object
//! (`ALIGN_DOWN(object_size / 2, 8)`) for caches without a constructor,
//! poisoning or RCU, otherwise just past the object. It is stored as the
//! plain physical address (no CONFIG_SLAB_FREELIST_HARDENED obfuscation).
//!
//! Simplifications: the CPU fast path takes the CPU's lock instead of a
//! `this_cpu_cmpxchg`; remote frees go through the node lock instead of a
//! `cmpxchg_double` on the slab; full slabs stay on a per-node list (Linux
//! lists them only with debugging) so that they can be validated and
//! counted; debug caches never use CPU slabs (as in Linux, every debug
//! allocation and free takes the slow path, here under the node lock). A
//! use-after-free found on allocation is reported and the poison restored,
//! and the object handed out (Linux isolates the whole slab instead).
//!
//! # Lock order
//!
//! Outermost first; a lock is only taken while holding locks above it:
//!
//! 1. the allocator's cache registry (`slab_mutex`), written by
//!    `kmem_cache_create`/`destroy` while each CPU's state gets or loses
//!    the new cache's entry;
//! 2. one CPU's slab state (`sa.cpus[cpu]`: every cache's
//!    `KmemCacheCpu` on that CPU). Walks over a whole cache (validate,
//!    leak reports) take every CPU's, CPU 0 first; shrinking takes them one
//!    at a time;
//! 3. one node's `list_lock` of one cache (`SlubNode`); never two nodes,
//!    never two caches at once;
//! 4. the page allocator's locks: a zone's per-CPU list lock, then its zone
//!    lock (`zone->lock`), as page_alloc.rs orders them. A new slab's pages
//!    are allocated with 2 held; an emptied slab's pages are freed with 2
//!    and 3 held.
//!
//! Leaf locks, under which nothing else is taken: the interned call sites
//! of owner tracks, the report list and the boot caches' metadata.
//!
//! Linux's mm/slub.c orders `list_lock` *above* the CPU slab's
//! `local_lock`, and its slow path drops the local lock before taking a
//! node's list_lock or calling the page allocator. Here a simulated CPU's
//! slab state is one ordinary lock held across the whole slow path, so it
//! sits above the node locks instead; nothing ever takes a CPU's state
//! while holding a node lock, so the order is acyclic. A thread holding a
//! CPU with [`crate::slab_common::Kmem::lock_cpu`] must not shrink or
//! destroy caches (that takes 2 again and deadlocks).

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::panic::Location;
use core::sync::atomic::Ordering::Relaxed;

use super::{
    calculate_alignment, new_nodes, run_ctor, Cache, CacheCounts, CacheEngine, CacheId,
    CacheLayout, CpuCache, Ctor, Kmem, KmemCacheCpu, ObjPtr, SlabEngine, SlabFlags, SlabInfo,
    SlabReport, SlubCache, SlubNode, Track, CACHE_LINE_SIZE, FROZEN, INUSE_MASK, ON_FULL,
    ON_PARTIAL, POISON_END, POISON_FREE, SLUB_RED_ACTIVE, SLUB_RED_INACTIVE,
};
use crate::gfp::Gfp;
use crate::memmap::NIL;
use crate::page_alloc::{CpuId, PageAlloc};
use crate::types::{Order, Pfn, PhysAddr, PAGE_SHIFT, PAGE_SIZE};

/// `slub_max_order` (PAGE_ALLOC_COSTLY_ORDER).
pub const SLUB_MAX_ORDER: u8 = 3;
/// `MIN_PARTIAL` and `MAX_PARTIAL`.
const MIN_PARTIAL: u64 = 5;
const MAX_PARTIAL: u64 = 10;
/// `sizeof(struct track)` on x86-64.
pub const TRACK_SIZE: u64 = 32;

fn fls(x: u64) -> u32 {
    64 - x.leading_zeros()
}

/// `calc_slab_order`: the first order in `[min_order, max_order]` whose
/// leftover is at most 1/`fract` of the slab (max_order + 1 if none).
fn calc_slab_order(size: u64, min_order: u8, max_order: u8, fract: u64) -> u8 {
    let mut order = min_order;
    while order <= max_order {
        let slab_size = PAGE_SIZE << order;
        if slab_size % size <= slab_size / fract {
            break;
        }
        order += 1;
    }
    order
}

/// `calculate_order` (mm/slub.c, v6.8+): at least `4 * (fls(nr_cpus) + 1)`
/// objects per slab (capped by what fits in order 3), then the first order
/// wasting at most 1/16, 1/8, 1/4, 1/2 of the slab.
pub fn calculate_order(size: u64, nr_cpus: usize) -> u8 {
    let min_objects = 4 * (fls(nr_cpus as u64) as u64 + 1);
    let max_objects = ((PAGE_SIZE << SLUB_MAX_ORDER) / size).max(1);
    let min_objects = min_objects.min(max_objects);
    let min_order = Order::for_size(min_objects * size).0;
    for fract in [16, 8, 4, 2] {
        let order = calc_slab_order(size, min_order, SLUB_MAX_ORDER, fract);
        if order <= SLUB_MAX_ORDER {
            return order;
        }
    }
    Order::for_size(size).0
}

/// Objects in a slab of `order` (`order_objects`).
pub fn order_objects(order: u8, size: u64) -> u32 {
    ((PAGE_SIZE << order) / size) as u32
}

/// `kmem_cache_open` / `calculate_sizes`: the object layout, order,
/// `min_partial` and `cpu_partial_slabs` of a new SLUB cache.
fn new_cache(
    k: &Kmem,
    id: CacheId,
    name: &str,
    size: u64,
    align: u64,
    flags: SlabFlags,
    ctor: Option<Ctor>,
) -> Cache {
    let align = calculate_alignment(flags, align, size);
    let object_size = size;
    let mut s = size.next_multiple_of(8);
    if flags.contains(SlabFlags::RED_ZONE) && s == object_size {
        s += 8;
    }
    let inuse = s;
    let orig = flags.contains(SlabFlags::KMALLOC)
        && flags.contains(SlabFlags::STORE_USER)
        && flags.contains(SlabFlags::RED_ZONE);
    let offset = if flags.contains(SlabFlags::POISON)
        || flags.contains(SlabFlags::TYPESAFE_BY_RCU)
        || ctor.is_some()
        || (flags.contains(SlabFlags::RED_ZONE) && (object_size < 8 || orig))
    {
        s += 8;
        s - 8
    } else {
        (object_size / 2) & !7
    };
    let (mut track_offset, mut orig_size_offset, mut red_left_pad) = (0, None, 0);
    if flags.contains(SlabFlags::STORE_USER) {
        track_offset = s;
        s += 2 * TRACK_SIZE;
        if orig {
            // Linux stores an unsigned int; we keep 8 bytes for aligned access.
            orig_size_offset = Some(s);
            s += 8;
        }
    }
    if flags.contains(SlabFlags::RED_ZONE) {
        s += 8;
        red_left_pad = 8u64.next_multiple_of(align);
        s += red_left_pad;
    }
    let size = s.next_multiple_of(align);
    let order = calculate_order(size, k.sa.nr_cpus());
    let objects = order_objects(order, size);
    let min_partial = (fls(size) as u64 / 2).clamp(MIN_PARTIAL, MAX_PARTIAL);
    let cpu_partial_slabs = if flags.intersects(SlabFlags::DEBUG_FLAGS) {
        0
    } else {
        let nr_objects: u64 = if size >= PAGE_SIZE {
            6
        } else if size >= 1024 {
            24
        } else if size >= 256 {
            52
        } else {
            120
        };
        (nr_objects * 2).div_ceil(objects as u64) as usize
    };
    let layout = CacheLayout {
        size,
        align,
        order,
        objects,
    };
    let engine = CacheEngine::Slub(SlubCache {
        offset,
        inuse,
        red_left_pad,
        min_partial,
        cpu_partial_slabs,
        track_offset,
        orig_size_offset,
        nodes: new_nodes(k.sa.nr_nodes()),
    });
    Cache::new(id, name, object_size, flags, ctor, layout, engine)
}

// ----- slab helpers -----

/// True if `addr` is an object slot of the slab at `pfn` (`check_valid_pointer`).
fn valid_obj(s: &Cache, pfn: u64, addr: u64) -> bool {
    let base = (pfn << PAGE_SHIFT) + s.slub().red_left_pad;
    addr >= base
        && (addr - base).is_multiple_of(s.size)
        && (addr - base) / s.size < s.objects as u64
}

fn obj_index(s: &Cache, pfn: u64, addr: u64) -> usize {
    ((addr - (pfn << PAGE_SHIFT) - s.slub().red_left_pad) / s.size) as usize
}

/// Walks a freelist from `fl`, marking objects in `free`; errors on a
/// pointer outside the slab or an object listed twice.
fn walk(
    k: &Kmem,
    s: &Cache,
    pfn: u64,
    mut fl: u64,
    free: &mut [bool],
) -> Result<u32, alloc::string::String> {
    let dm = k.pa.direct_map();
    let mut n = 0;
    while fl != 0 {
        if !valid_obj(s, pfn, fl) {
            return Err(alloc::format!(
                "{}: slab {pfn:#x}: bad free pointer {fl:#x}",
                s.name
            ));
        }
        let i = obj_index(s, pfn, fl);
        if free[i] {
            return Err(alloc::format!(
                "{}: slab {pfn:#x}: object {fl:#x} free twice",
                s.name
            ));
        }
        free[i] = true;
        n += 1;
        fl = dm.read_u64(fl + s.slub().offset);
    }
    Ok(n)
}

/// Lays out a new slab's objects: debug patterns, constructor, free chain.
/// Returns the first object.
fn init_slab(k: &Kmem, s: &Cache, pfn: Pfn) -> u64 {
    let dm = k.pa.direct_map();
    let base = pfn.phys().0 + s.slub().red_left_pad;
    let n = s.objects as u64;
    for i in 0..n {
        let p = base + i * s.size;
        if s.debug() {
            init_object(k, s, p, SLUB_RED_INACTIVE, None);
        }
        if let Some(ctor) = s.ctor {
            run_ctor(dm, p, s.object_size(), ctor);
        }
        dm.write_u64(p + s.slub().offset, if i + 1 < n { p + s.size } else { 0 });
    }
    base
}

fn new_slab(k: &Kmem, cpu: CpuId, s: &Cache, gfp: Gfp) -> Option<Pfn> {
    let pfn = k.new_slab_pages(cpu, s, gfp)?;
    let first = init_slab(k, s, pfn);
    let head = k.sa.page(pfn)?;
    head.set_mapping(first);
    let mut n = s.slub().node(head.nid());
    n.nr_slabs += 1;
    n.total_objects += s.objects as u64;
    Some(pfn)
}

fn discard_slab(k: &Kmem, cpu: CpuId, s: &Cache, n: &mut SlubNode, pfn: u64) {
    n.nr_slabs -= 1;
    n.total_objects -= s.objects as u64;
    k.free_slab_pages(cpu, s, Pfn(pfn));
}

fn add_partial(k: &Kmem, n: &mut SlubNode, nid: u32, pfn: u64, inuse: u64) {
    let head = k.sa.page(Pfn(pfn)).unwrap();
    head.set_index(ON_PARTIAL | inuse);
    n.partial.push_back(k.sa.memmap(nid), Pfn(pfn));
    n.nr_partial += 1;
}

fn remove_partial(k: &Kmem, n: &mut SlubNode, nid: u32, pfn: u64) {
    n.partial.remove(k.sa.memmap(nid), Pfn(pfn));
    n.nr_partial -= 1;
}

// ----- allocation -----

/// `slab_alloc`: the CPU freelist, else `___slab_alloc`.
#[inline]
fn alloc(
    k: &Kmem,
    cpu: CpuId,
    c: &mut KmemCacheCpu,
    gfp: Gfp,
    orig_size: Option<u64>,
    caller: &'static Location<'static>,
) -> Option<ObjPtr> {
    if c.freelist != 0 {
        let obj = c.freelist;
        c.freelist = k.pa.direct_map().read_u64(obj + c.offset);
        return Some(ObjPtr(PhysAddr(obj)));
    }
    if c.cache.debug() {
        return alloc_debug(k, cpu, &c.cache.clone(), gfp, orig_size, caller);
    }
    slab_alloc_slow(k, cpu, c, gfp)
}

#[inline(never)]
fn slab_alloc_slow(k: &Kmem, cpu: CpuId, c: &mut KmemCacheCpu, gfp: Gfp) -> Option<ObjPtr> {
    let s = c.cache.clone();
    let dm = k.pa.direct_map();
    loop {
        if c.slab != NIL {
            // get_freelist: objects freed remotely into the CPU slab.
            let head = k.sa.page(Pfn(c.slab))?;
            let nid = head.nid();
            let mut n = s.slub().node(nid);
            let fl = head.mapping();
            if fl != 0 {
                head.set_mapping(0);
                head.set_index(FROZEN | s.objects as u64);
                drop(n);
                c.freelist = dm.read_u64(fl + s.slub().offset);
                return Some(ObjPtr(PhysAddr(fl)));
            }
            // The CPU slab is full: unfreeze it onto the full list.
            head.set_index(ON_FULL | s.objects as u64);
            n.full.push_back(k.sa.memmap(nid), Pfn(c.slab));
            c.slab = NIL;
        }
        if let Some(p) = c.partial.pop() {
            c.slab = p;
            continue;
        }
        if get_partial(k, cpu, c, &s) {
            continue;
        }
        let pfn = new_slab(k, cpu, &s, gfp)?;
        let head = k.sa.page(pfn)?;
        let _n = s.slub().node(head.nid());
        let fl = head.mapping();
        head.set_mapping(0);
        head.set_index(FROZEN | s.objects as u64);
        c.slab = pfn.0;
        c.freelist = dm.read_u64(fl + s.slub().offset);
        return Some(ObjPtr(PhysAddr(fl)));
    }
}

/// `get_partial`: slabs from the CPU's node (then the others) become the
/// CPU slab and fill up to half the CPU partial list.
fn get_partial(k: &Kmem, cpu: CpuId, c: &mut KmemCacheCpu, s: &Cache) -> bool {
    let local = k.sa.cpu_node(cpu);
    let nodes = core::iter::once(local).chain((0..k.sa.nr_nodes() as u32).filter(|&n| n != local));
    for nid in nodes {
        let mut n = s.slub().node(nid);
        let mut got = false;
        while let Some(pfn) = n.partial.first() {
            remove_partial(k, &mut n, nid, pfn.0);
            let head = k.sa.page(pfn).unwrap();
            head.set_index(FROZEN | (head.index() & INUSE_MASK));
            got = true;
            if c.slab == NIL {
                c.slab = pfn.0;
            } else {
                c.partial.push(pfn.0);
            }
            if s.slub().cpu_partial_slabs == 0 || c.partial.len() > s.slub().cpu_partial_slabs / 2 {
                break;
            }
        }
        if got {
            return true;
        }
    }
    false
}

// ----- freeing -----

/// `slab_free`: onto the CPU freelist when the object is in the CPU slab,
/// else `__slab_free` under the slab's node lock.
#[inline]
fn free(
    k: &Kmem,
    cpu: CpuId,
    c: &mut KmemCacheCpu,
    obj: ObjPtr,
    caller: &'static Location<'static>,
) -> Result<(), SlabReport> {
    let addr = obj.0 .0;
    if c.slab != NIL && (addr >> PAGE_SHIFT) & c.slab_mask == c.slab {
        k.pa.direct_map().write_u64(addr + c.offset, c.freelist);
        c.freelist = addr;
        return Ok(());
    }
    slab_free_slow(k, cpu, c, obj, caller)
}

/// `__slab_free`: an object of another slab than the CPU's, under its
/// node lock (kept out of line so that the fast path above stays small).
#[inline(never)]
fn slab_free_slow(
    k: &Kmem,
    cpu: CpuId,
    c: &mut KmemCacheCpu,
    obj: ObjPtr,
    caller: &'static Location<'static>,
) -> Result<(), SlabReport> {
    let addr = obj.0 .0;
    let s = c.cache.clone();
    let pfn = match k.obj_slab(obj) {
        Some((pfn, id)) if id == s.id && valid_obj(&s, pfn.0, addr) => pfn.0,
        _ => {
            return Err(report(
                k,
                &s,
                SlabReport::InvalidFree {
                    cache: s.name.clone(),
                    obj,
                },
                1,
            ))
        }
    };
    if s.debug() {
        return free_debug(k, cpu, &s, pfn, addr, caller);
    }
    let head = k.sa.page(Pfn(pfn)).unwrap();
    let nid = head.nid();
    let mut n = s.slub().node(nid);
    let prior = head.mapping();
    let idx = head.index();
    let inuse = (idx & INUSE_MASK) - 1;
    k.pa.direct_map().write_u64(addr + s.slub().offset, prior);
    head.set_mapping(addr);
    if idx & FROZEN != 0 {
        head.set_index(FROZEN | inuse);
        return Ok(());
    }
    if idx & ON_FULL != 0 {
        n.full.remove(k.sa.memmap(nid), Pfn(pfn));
        if s.slub().cpu_partial_slabs > 0 {
            // put_cpu_partial: freeze it onto this CPU's partial list.
            head.set_index(FROZEN | inuse);
            drop(n);
            if c.partial.len() >= s.slub().cpu_partial_slabs {
                put_partials(k, cpu, c);
            }
            c.partial.push(pfn);
            return Ok(());
        }
        add_partial(k, &mut n, nid, pfn, inuse);
    } else {
        head.set_index(ON_PARTIAL | inuse);
    }
    if inuse == 0 && n.nr_partial >= s.slub().min_partial {
        remove_partial(k, &mut n, nid, pfn);
        discard_slab(k, cpu, &s, &mut n, pfn);
    }
    Ok(())
}

/// `__put_partials`: unfreezes the CPU partial list onto the node lists,
/// freeing empty slabs beyond `min_partial`.
fn put_partials(k: &Kmem, cpu: CpuId, c: &mut KmemCacheCpu) {
    let s = c.cache.clone();
    for pfn in core::mem::take(&mut c.partial) {
        let head = k.sa.page(Pfn(pfn)).unwrap();
        let nid = head.nid();
        let mut n = s.slub().node(nid);
        let inuse = head.index() & INUSE_MASK;
        if inuse == 0 && n.nr_partial >= s.slub().min_partial {
            head.set_index(0);
            discard_slab(k, cpu, &s, &mut n, pfn);
        } else {
            add_partial(k, &mut n, nid, pfn, inuse);
        }
    }
    c.partial = Vec::with_capacity(s.slub().cpu_partial_slabs);
}

/// `deactivate_slab`: returns the CPU freelist to the CPU slab and puts
/// the slab on the node list its state calls for.
fn deactivate(k: &Kmem, cpu: CpuId, c: &mut KmemCacheCpu) {
    if c.slab == NIL {
        return;
    }
    let s = c.cache.clone();
    let dm = k.pa.direct_map();
    let pfn = core::mem::replace(&mut c.slab, NIL);
    let head = k.sa.page(Pfn(pfn)).unwrap();
    let nid = head.nid();
    let mut n = s.slub().node(nid);
    let mut inuse = head.index() & INUSE_MASK;
    let mut sfl = head.mapping();
    let mut fl = core::mem::replace(&mut c.freelist, 0);
    while fl != 0 {
        let next = dm.read_u64(fl + s.slub().offset);
        dm.write_u64(fl + s.slub().offset, sfl);
        sfl = fl;
        fl = next;
        inuse -= 1;
    }
    head.set_mapping(sfl);
    if inuse == 0 && n.nr_partial >= s.slub().min_partial {
        head.set_index(0);
        discard_slab(k, cpu, &s, &mut n, pfn);
    } else if sfl != 0 {
        add_partial(k, &mut n, nid, pfn, inuse);
    } else {
        head.set_index(ON_FULL | inuse);
        n.full.push_back(k.sa.memmap(nid), Pfn(pfn));
    }
}

/// `__kmem_cache_do_shrink`: flushes every CPU's slab and partial list,
/// then frees every empty slab. Returns the pages freed.
fn shrink(k: &Kmem, cpu: CpuId, s: &Cache) -> u64 {
    for l in k.sa.cpus.iter() {
        let mut st = l.lock();
        if let Some(Some(CpuCache::Slub(c))) = st.caches.get_mut(s.id.0 as usize) {
            deactivate(k, cpu, c);
            put_partials(k, cpu, c);
        }
    }
    let mut freed = 0;
    for nid in 0..k.sa.nr_nodes() as u32 {
        let mut n = s.slub().node(nid);
        let empty: Vec<u64> = n
            .partial
            .iter(k.sa.memmap(nid))
            .filter(|p| k.sa.page(*p).unwrap().index() & INUSE_MASK == 0)
            .map(|p| p.0)
            .collect();
        for pfn in empty {
            remove_partial(k, &mut n, nid, pfn);
            k.sa.page(Pfn(pfn)).unwrap().set_index(0);
            discard_slab(k, cpu, s, &mut n, pfn);
            freed += s.pages();
        }
    }
    freed
}

// ----- slub_debug -----

fn report(k: &Kmem, s: &Cache, r: SlabReport, errors: u64) -> SlabReport {
    crate::printk!(
        k.pa.log,
        "============================================================================="
    );
    crate::printk!(k.pa.log, "{}", r.title());
    crate::printk!(
        k.pa.log,
        "-----------------------------------------------------------------------------"
    );
    match &r {
        SlabReport::Redzone {
            obj,
            at,
            found,
            expected,
            ..
        }
        | SlabReport::Poison {
            obj,
            at,
            found,
            expected,
            ..
        } => {
            crate::printk!(
                k.pa.log,
                "INFO: {:#x} @offset={}. First byte {:#x} instead of {:#x}",
                at.0,
                at.0 as i64 - obj.0 .0 as i64,
                found,
                expected
            );
        }
        SlabReport::DoubleFree { obj, .. }
        | SlabReport::InvalidFree { obj, .. }
        | SlabReport::FreepointerCorrupt { obj, .. } => {
            crate::printk!(k.pa.log, "INFO: Object {:#x}", obj.0 .0);
        }
        _ => {}
    }
    s.errors.fetch_add(errors, Relaxed);
    k.sa.push_report(r.clone());
    r
}

#[allow(clippy::too_many_arguments)]
/// `check_bytes_and_report`: the first byte of `[start, start+len)` that is
/// not `v` is reported, the range restored (`restore_bytes`), two errors.
fn check_bytes(
    k: &Kmem,
    s: &Cache,
    obj: u64,
    what: &'static str,
    start: u64,
    v: u8,
    len: u64,
    out: &mut Vec<SlabReport>,
) {
    if len == 0 {
        return;
    }
    let dm = k.pa.direct_map();
    let mut buf = vec![0u8; len as usize];
    dm.read(PhysAddr(start), &mut buf);
    let Some(i) = buf.iter().position(|&b| b != v) else {
        return;
    };
    let last = buf.iter().rposition(|&b| b != v).unwrap();
    let obj = ObjPtr(PhysAddr(obj));
    let at = PhysAddr(start + i as u64);
    let r = if what == "Poison" {
        SlabReport::Poison {
            cache: s.name.clone(),
            obj,
            at,
            found: buf[i],
            expected: v,
        }
    } else {
        SlabReport::Redzone {
            cache: s.name.clone(),
            obj,
            what,
            at,
            found: buf[i],
            expected: v,
        }
    };
    out.push(report(k, s, r, 2));
    crate::printk!(
        k.pa.log,
        "FIX {}: Restoring {} {:#x}-{:#x}={:#x}",
        s.name,
        what,
        start + i as u64,
        start + last as u64,
        v
    );
    dm.fill(start + i as u64, v, (last - i + 1) as u64);
}

/// `check_object`: red zones (and the kmalloc red zone past the requested
/// size) hold `val`; a free object's poison is intact.
fn check_object(k: &Kmem, s: &Cache, p: u64, val: u8) -> Vec<SlabReport> {
    let mut out = Vec::new();
    let osize = s.object_size();
    if s.flags.contains(SlabFlags::RED_ZONE) {
        check_bytes(
            k,
            s,
            p,
            "Left Redzone",
            p - s.slub().red_left_pad,
            val,
            s.slub().red_left_pad,
            &mut out,
        );
        check_bytes(
            k,
            s,
            p,
            "Right Redzone",
            p + osize,
            val,
            s.slub().inuse - osize,
            &mut out,
        );
        if let (Some(off), true) = (s.slub().orig_size_offset, val == SLUB_RED_ACTIVE) {
            let orig = k.pa.direct_map().read_u64(p + off).min(osize);
            check_bytes(
                k,
                s,
                p,
                "kmalloc Redzone",
                p + orig,
                val,
                osize - orig,
                &mut out,
            );
        }
    }
    if s.poisons() && val == SLUB_RED_INACTIVE {
        check_bytes(k, s, p, "Poison", p, POISON_FREE, osize - 1, &mut out);
        check_bytes(k, s, p, "Poison", p + osize - 1, POISON_END, 1, &mut out);
    }
    out
}

/// `init_object`: red zones to `val`; a freed object poisoned; an
/// allocated kmalloc object red-zoned past its requested size.
fn init_object(k: &Kmem, s: &Cache, p: u64, val: u8, orig: Option<u64>) {
    let dm = k.pa.direct_map();
    let osize = s.object_size();
    if s.poisons() && val == SLUB_RED_INACTIVE {
        dm.fill(p, POISON_FREE, osize - 1);
        dm.fill(p + osize - 1, POISON_END, 1);
    }
    if s.flags.contains(SlabFlags::RED_ZONE) {
        dm.fill(p - s.slub().red_left_pad, val, s.slub().red_left_pad);
        dm.fill(p + osize, val, s.slub().inuse - osize);
        if let Some(off) = s.slub().orig_size_offset {
            let orig = orig.unwrap_or(osize).min(osize);
            dm.write_u64(p + off, orig);
            if val == SLUB_RED_ACTIVE {
                dm.fill(p + orig, val, osize - orig);
            }
        }
    }
}

fn set_track(
    k: &Kmem,
    s: &Cache,
    p: u64,
    free: bool,
    cpu: CpuId,
    caller: &'static Location<'static>,
) {
    if !s.flags.contains(SlabFlags::STORE_USER) {
        return;
    }
    let dm = k.pa.direct_map();
    let t = p + s.slub().track_offset + if free { TRACK_SIZE } else { 0 };
    dm.write_u64(t, k.sa.intern(caller));
    dm.write_u64(t + 8, cpu.0 as u64);
}

/// The alloc (or free) track stored with an object (`get_track`).
fn get_track(k: &Kmem, s: &Cache, obj: ObjPtr, free: bool) -> Option<Track> {
    if !s.flags.contains(SlabFlags::STORE_USER) {
        return None;
    }
    let dm = k.pa.direct_map();
    let t = obj.0 .0 + s.slub().track_offset + if free { TRACK_SIZE } else { 0 };
    Some(Track {
        caller: k.sa.location(dm.read_u64(t))?,
        cpu: dm.read_u64(t + 8) as u32,
    })
}

/// Debug allocation (`alloc_single_from_partial`): straight from a node's
/// partial slab, checking the object's red zones and poison first.
fn alloc_debug(
    k: &Kmem,
    cpu: CpuId,
    s: &Cache,
    gfp: Gfp,
    orig_size: Option<u64>,
    caller: &'static Location<'static>,
) -> Option<ObjPtr> {
    let dm = k.pa.direct_map();
    let local = k.sa.cpu_node(cpu);
    loop {
        let mut hit = None;
        for nid in
            core::iter::once(local).chain((0..k.sa.nr_nodes() as u32).filter(|&n| n != local))
        {
            let n = s.slub().node(nid);
            if let Some(pfn) = n.partial.first() {
                hit = Some((nid, n, pfn.0));
                break;
            }
        }
        let Some((nid, mut n, pfn)) = hit else {
            let pfn = new_slab(k, cpu, s, gfp)?;
            let nid = k.sa.page(pfn)?.nid();
            add_partial(k, &mut s.slub().node(nid), nid, pfn.0, 0);
            continue;
        };
        let head = k.sa.page(Pfn(pfn))?;
        let obj = head.mapping();
        let inuse = (head.index() & INUSE_MASK) + 1;
        if obj == 0 || !valid_obj(s, pfn, obj) {
            // A corrupt freelist: isolate the slab ("Marking all objects used").
            report(
                k,
                s,
                SlabReport::FreepointerCorrupt {
                    cache: s.name.clone(),
                    obj: ObjPtr(PhysAddr(obj)),
                },
                2,
            );
            remove_partial(k, &mut n, nid, pfn);
            head.set_mapping(0);
            head.set_index(ON_FULL | s.objects as u64);
            n.full.push_back(k.sa.memmap(nid), Pfn(pfn));
            continue;
        }
        let next = dm.read_u64(obj + s.slub().offset);
        // alloc_consistency_checks: use after free shows as broken poison.
        check_object(k, s, obj, SLUB_RED_INACTIVE);
        head.set_mapping(next);
        if next == 0 {
            remove_partial(k, &mut n, nid, pfn);
            head.set_index(ON_FULL | inuse);
            n.full.push_back(k.sa.memmap(nid), Pfn(pfn));
        } else {
            head.set_index(ON_PARTIAL | inuse);
        }
        drop(n);
        init_object(k, s, obj, SLUB_RED_ACTIVE, orig_size);
        set_track(k, s, obj, false, cpu, caller);
        return Some(ObjPtr(PhysAddr(obj)));
    }
}

/// Debug free (`free_debug_processing` + `free_to_partial_list`): refuses
/// a double free and an object whose red zones were overwritten (reported,
/// repaired, not freed); otherwise poisons it and puts it back.
fn free_debug(
    k: &Kmem,
    cpu: CpuId,
    s: &Cache,
    pfn: u64,
    addr: u64,
    caller: &'static Location<'static>,
) -> Result<(), SlabReport> {
    let dm = k.pa.direct_map();
    let head = k.sa.page(Pfn(pfn)).unwrap();
    let nid = head.nid();
    let mut n = s.slub().node(nid);
    // on_freelist
    let mut fl = head.mapping();
    let mut steps = 0;
    while fl != 0 && steps <= s.objects && valid_obj(s, pfn, fl) {
        if fl == addr {
            let r = SlabReport::DoubleFree {
                cache: s.name.clone(),
                obj: ObjPtr(PhysAddr(addr)),
            };
            return Err(report(k, s, r, 1));
        }
        fl = dm.read_u64(fl + s.slub().offset);
        steps += 1;
    }
    let bad = check_object(k, s, addr, SLUB_RED_ACTIVE);
    if let Some(r) = bad.into_iter().next() {
        crate::printk!(k.pa.log, "FIX {}: Object at {:#x} not freed", s.name, addr);
        return Err(r);
    }
    init_object(k, s, addr, SLUB_RED_INACTIVE, None);
    set_track(k, s, addr, true, cpu, caller);
    let prior = head.mapping();
    let idx = head.index();
    let inuse = (idx & INUSE_MASK) - 1;
    dm.write_u64(addr + s.slub().offset, prior);
    head.set_mapping(addr);
    if idx & ON_FULL != 0 {
        n.full.remove(k.sa.memmap(nid), Pfn(pfn));
        if inuse == 0 && n.nr_partial >= s.slub().min_partial {
            discard_slab(k, cpu, s, &mut n, pfn);
        } else {
            add_partial(k, &mut n, nid, pfn, inuse);
        }
    } else if inuse == 0 && n.nr_partial >= s.slub().min_partial {
        remove_partial(k, &mut n, nid, pfn);
        discard_slab(k, cpu, s, &mut n, pfn);
    } else {
        head.set_index(ON_PARTIAL | inuse);
    }
    Ok(())
}

/// `validate_slab_cache` for a debug cache, counting errors the way
/// slub_kunit does: a broken freelist is truncated (1 error), a wrong
/// in-use count fixed (2: the report and the fix), and every object's red
/// zones and poison checked (2 per bad range).
fn validate_slab_cache(k: &Kmem, s: &Cache) -> u64 {
    let before = s.errors.load(Relaxed);
    let dm = k.pa.direct_map();
    for nid in 0..k.sa.nr_nodes() as u32 {
        let n = s.slub().node(nid);
        let slabs: Vec<Pfn> = n
            .partial
            .iter(k.sa.memmap(nid))
            .chain(n.full.iter(k.sa.memmap(nid)))
            .collect();
        for pfn in slabs {
            let head = k.sa.page(pfn).unwrap();
            let mut free = vec![false; s.objects as usize];
            let mut fp = head.mapping();
            let mut object = 0;
            let mut nr = 0u32;
            while fp != 0 && nr <= s.objects {
                if !valid_obj(s, pfn.0, fp) || free[obj_index(s, pfn.0, fp)] {
                    let r = SlabReport::FreepointerCorrupt {
                        cache: s.name.clone(),
                        obj: ObjPtr(PhysAddr(object)),
                    };
                    if object != 0 {
                        report(k, s, r, 1);
                        dm.write_u64(object + s.slub().offset, 0);
                    } else {
                        report(k, s, r, 2);
                        head.set_mapping(0);
                        head.set_index((head.index() & !INUSE_MASK) | s.objects as u64);
                        nr = 0;
                    }
                    break;
                }
                free[obj_index(s, pfn.0, fp)] = true;
                object = fp;
                fp = dm.read_u64(object + s.slub().offset);
                nr += 1;
            }
            let inuse = (head.index() & INUSE_MASK) as u32;
            if inuse != s.objects - nr {
                let r = SlabReport::WrongObjectCount {
                    cache: s.name.clone(),
                    slab: pfn,
                    counter: inuse,
                    counted: s.objects - nr,
                };
                report(k, s, r, 2);
                crate::printk!(k.pa.log, "FIX {}: Object count adjusted", s.name);
                head.set_index((head.index() & !INUSE_MASK) | (s.objects - nr) as u64);
            }
            let base = pfn.phys().0 + s.slub().red_left_pad;
            for (i, f) in free.iter().enumerate() {
                let p = base + i as u64 * s.size;
                let val = if *f {
                    SLUB_RED_INACTIVE
                } else {
                    SLUB_RED_ACTIVE
                };
                check_object(k, s, p, val);
            }
        }
    }
    s.errors.load(Relaxed) - before
}

// ----- introspection -----

/// The slabs of a cache with their free-object maps: node lists and CPU
/// slabs, checked for consistency.
fn slabs_with_free(
    k: &Kmem,
    s: &Cache,
    cpus: &[&KmemCacheCpu],
) -> Result<Vec<(u64, Vec<bool>)>, alloc::string::String> {
    use alloc::format;
    let mut out = Vec::new();
    let mut nr_slabs = 0;
    for nid in 0..k.sa.nr_nodes() as u32 {
        let n = s.slub().node(nid);
        let mm = k.sa.memmap(nid);
        let mut np = 0;
        for pfn in n.partial.iter(mm) {
            let head = k.sa.page(pfn).unwrap();
            let idx = head.index();
            if idx & (ON_PARTIAL | FROZEN | ON_FULL) != ON_PARTIAL {
                return Err(format!(
                    "{}: slab {pfn:?} on partial list with state {idx:#x}",
                    s.name
                ));
            }
            let mut free = vec![false; s.objects as usize];
            let nf = walk(k, s, pfn.0, head.mapping(), &mut free)?;
            if nf == 0 || (idx & INUSE_MASK) as u32 != s.objects - nf {
                return Err(format!(
                    "{}: partial slab {pfn:?} inuse {} free {nf}",
                    s.name,
                    idx & INUSE_MASK
                ));
            }
            out.push((pfn.0, free));
            np += 1;
        }
        if np != n.nr_partial {
            return Err(format!(
                "{}: nr_partial {} but {np} listed",
                s.name, n.nr_partial
            ));
        }
        for pfn in n.full.iter(mm) {
            let head = k.sa.page(pfn).unwrap();
            let idx = head.index();
            if idx != ON_FULL | s.objects as u64 || head.mapping() != 0 {
                return Err(format!("{}: full slab {pfn:?} state {idx:#x}", s.name));
            }
            out.push((pfn.0, vec![false; s.objects as usize]));
        }
        nr_slabs += n.nr_slabs;
        if n.total_objects != n.nr_slabs * s.objects as u64 {
            return Err(format!("{}: total_objects {}", s.name, n.total_objects));
        }
    }
    for c in cpus {
        let frozen = (c.slab != NIL)
            .then_some(c.slab)
            .into_iter()
            .chain(c.partial.iter().copied());
        for pfn in frozen {
            let head = k.sa.page(Pfn(pfn)).unwrap();
            let idx = head.index();
            if idx & (FROZEN | ON_PARTIAL | ON_FULL) != FROZEN {
                return Err(format!("{}: CPU slab {pfn:#x} state {idx:#x}", s.name));
            }
            let mut free = vec![false; s.objects as usize];
            let nf = walk(k, s, pfn, head.mapping(), &mut free)?;
            if (idx & INUSE_MASK) as u32 != s.objects - nf {
                return Err(format!(
                    "{}: CPU slab {pfn:#x} inuse {} free {nf}",
                    s.name,
                    idx & INUSE_MASK
                ));
            }
            if pfn == c.slab {
                walk(k, s, pfn, c.freelist, &mut free)?;
            } else if head.mapping() == 0 {
                return Err(format!(
                    "{}: CPU partial slab {pfn:#x} has no free object",
                    s.name
                ));
            }
            out.push((pfn, free));
        }
        if c.slab == NIL && c.freelist != 0 {
            return Err(format!("{}: CPU freelist without a CPU slab", s.name));
        }
    }
    if out.len() as u64 != nr_slabs {
        return Err(format!(
            "{}: nr_slabs {nr_slabs} but {} found",
            s.name,
            out.len()
        ));
    }
    Ok(out)
}

fn validate(
    k: &Kmem,
    s: &Cache,
    cpus: &[&KmemCacheCpu],
) -> Result<CacheCounts, alloc::string::String> {
    let slabs = slabs_with_free(k, s, cpus)?;
    let objects = slabs.len() as u64 * s.objects as u64;
    let free: u64 = slabs
        .iter()
        .map(|(_, f)| f.iter().filter(|x| **x).count() as u64)
        .sum();
    Ok(CacheCounts {
        slabs: slabs.len() as u64,
        objects,
        live: objects - free,
    })
}

fn live_objects(k: &Kmem, s: &Cache, cpus: &[&KmemCacheCpu]) -> Vec<ObjPtr> {
    let mut out = Vec::new();
    if let Ok(slabs) = slabs_with_free(k, s, cpus) {
        for (pfn, free) in slabs {
            let base = (pfn << PAGE_SHIFT) + s.slub().red_left_pad;
            for (i, f) in free.iter().enumerate() {
                if !f {
                    out.push(ObjPtr(PhysAddr(base + i as u64 * s.size)));
                }
            }
        }
    }
    out.sort();
    out
}

/// `get_slabinfo` (SLUB): objects on node partial lists are the free ones;
/// CPU slabs count as fully in use, as in Linux.
fn slabinfo(k: &Kmem, s: &Cache) -> SlabInfo {
    let (mut slabs, mut objs, mut free) = (0, 0, 0);
    for nid in 0..k.sa.nr_nodes() as u32 {
        let n = s.slub().node(nid);
        slabs += n.nr_slabs;
        objs += n.total_objects;
        free += n
            .partial
            .iter(k.sa.memmap(nid))
            .map(|p| s.objects as u64 - (k.sa.page(p).unwrap().index() & INUSE_MASK))
            .sum::<u64>();
    }
    SlabInfo {
        name: s.name.clone(),
        active_objs: objs - free,
        num_objs: objs,
        objsize: s.size,
        objperslab: s.objects as u64,
        pagesperslab: s.pages(),
        limit: 0,
        batchcount: 0,
        sharedfactor: 0,
        active_slabs: slabs,
        num_slabs: slabs,
        sharedavail: 0,
    }
}

/// The SLUB engine.
pub(crate) struct Slub;

impl SlabEngine for Slub {
    const KMALLOC_SHIFT_LOW: usize = 3;
    const MERGES: bool = true;
    type Cpu = KmemCacheCpu;

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
        CpuCache::Slub(KmemCacheCpu {
            cache: cache.clone(),
            offset: cache.slub().offset,
            slab_mask: !((1u64 << cache.order) - 1),
            slab: NIL,
            freelist: 0,
            partial: Vec::with_capacity(cache.slub().cpu_partial_slabs),
        })
    }

    fn cpu_ref(c: &CpuCache) -> Option<&KmemCacheCpu> {
        match c {
            CpuCache::Slub(c) => Some(c),
            CpuCache::Slab(_) => None,
        }
    }

    #[inline]
    fn alloc(
        k: &Kmem,
        cpu: CpuId,
        c: &mut KmemCacheCpu,
        gfp: Gfp,
        orig_size: Option<u64>,
        caller: &'static Location<'static>,
    ) -> Option<ObjPtr> {
        alloc(k, cpu, c, gfp, orig_size, caller)
    }

    #[inline]
    fn free(
        k: &Kmem,
        cpu: CpuId,
        c: &mut KmemCacheCpu,
        obj: ObjPtr,
        caller: &'static Location<'static>,
    ) -> Result<(), SlabReport> {
        free(k, cpu, c, obj, caller)
    }

    fn shrink(k: &Kmem, cpu: CpuId, s: &Cache) -> u64 {
        shrink(k, cpu, s)
    }

    fn nr_slabs(s: &Cache) -> u64 {
        s.slub().nodes.iter().map(|n| n.lock().nr_slabs).sum()
    }

    fn slabinfo(k: &Kmem, s: &Cache) -> SlabInfo {
        slabinfo(k, s)
    }

    fn validate(
        k: &Kmem,
        s: &Cache,
        cpus: &[&KmemCacheCpu],
    ) -> Result<CacheCounts, alloc::string::String> {
        validate(k, s, cpus)
    }

    fn live_objects(k: &Kmem, s: &Cache, cpus: &[&KmemCacheCpu]) -> Vec<ObjPtr> {
        live_objects(k, s, cpus)
    }

    fn alloc_track(k: &Kmem, s: &Cache, obj: ObjPtr) -> Option<Track> {
        get_track(k, s, obj, false)
    }

    fn validate_slab_cache(k: &Kmem, s: &Cache) -> u64 {
        validate_slab_cache(k, s)
    }

    fn boot_message(pa: &PageAlloc) {
        // slub_min_order 0, slub_min_objects 0 (automatic), no command line.
        crate::printk!(
            pa.log,
            "SLUB: HWalign={}, Order=0-{}, MinObjects=0, CPUs={}, Nodes={}",
            CACHE_LINE_SIZE,
            SLUB_MAX_ORDER,
            pa.nr_cpus(),
            pa.nodes.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;
    use crate::mm_init::testing::boot;
    use crate::slab_common::{SlabAllocator, SlabKind};
    use alloc::string::{String, ToString};

    const C0: CpuId = CpuId(0);

    /// linux-facts §6.8: objperslab/pagesperslab of the kmalloc sizes.
    #[test]
    fn calculate_order_table() {
        let sizes = [
            8u64, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192,
        ];
        let rows: [(usize, [&str; 13]); 4] = [
            (
                1,
                [
                    "512/1", "256/1", "128/1", "64/1", "42/1", "32/1", "21/1", "16/1", "8/1",
                    "8/2", "8/4", "8/8", "4/8",
                ],
            ),
            (
                2,
                [
                    "512/1", "256/1", "128/1", "64/1", "42/1", "32/1", "21/1", "16/1", "16/2",
                    "16/4", "16/8", "8/8", "4/8",
                ],
            ),
            (
                8,
                [
                    "512/1", "256/1", "128/1", "64/1", "42/1", "32/1", "21/1", "32/2", "32/4",
                    "32/8", "16/8", "8/8", "4/8",
                ],
            ),
            (
                16,
                [
                    "512/1", "256/1", "128/1", "64/1", "42/1", "32/1", "42/2", "32/2", "32/4",
                    "32/8", "16/8", "8/8", "4/8",
                ],
            ),
        ];
        for (cpus, want) in rows {
            for (size, w) in sizes.iter().zip(want) {
                let o = calculate_order(*size, cpus);
                assert_eq!(
                    alloc::format!("{}/{}", order_objects(o, *size), 1 << o),
                    w,
                    "cpus {cpus} size {size}"
                );
            }
        }
    }

    #[test]
    fn kmalloc_caches_match_host_slabinfo_on_two_cpus() {
        // The host that recorded tests/host/slabinfo.txt has 2 CPUs.
        let m = boot(Arch::X86_64, 64 << 20, 2);
        let sa = SlabAllocator::kmem_cache_init(&m.pa, SlabKind::Slub);
        let host = crate::proc::testing::host("slabinfo.txt");
        let mut checked = 0;
        for l in host.lines().skip(2) {
            let t: alloc::vec::Vec<&str> = l.split_whitespace().collect();
            let Some(id) = sa.find_cache(t[0]) else {
                continue;
            };
            let c = sa.cache(id).unwrap();
            assert_eq!(
                (
                    c.size.to_string(),
                    c.objects.to_string(),
                    c.pages().to_string()
                ),
                (String::from(t[3]), String::from(t[4]), String::from(t[5])),
                "{}",
                t[0]
            );
            checked += 1;
        }
        assert!(checked > 60, "{checked}");
    }

    fn setup(flags: u32, size: u64) -> (crate::mm_init::testing::TestMachine, SlabAllocator) {
        let m = boot(Arch::X86_64, 64 << 20, 2);
        let sa = SlabAllocator::kmem_cache_init(&m.pa, SlabKind::Slub);
        let _ = (flags, size);
        (m, sa)
    }

    fn poke(k: &Kmem, a: u64, v: u8) {
        k.pa.direct_map().write(PhysAddr(a), &[v]);
    }

    // slub_kunit (lib/tests/slub_kunit.c), error counts as in linux-facts §4.

    #[test]
    fn kunit_clobber_zone() {
        let (m, sa) = setup(0, 0);
        let k = Kmem::new(&sa, &m.pa);
        let s = k
            .kmem_cache_create("TestSlub_RZ_alloc", 64, 0, SlabFlags::RED_ZONE, None)
            .unwrap();
        let p = k.kmem_cache_alloc(C0, s, Gfp::KERNEL).unwrap();
        poke(&k, p.0 .0 + 64, 0x12);
        assert_eq!(k.validate_slab_cache(s), 2);
        let log = m.pa.log.messages().join("\n");
        assert!(
            log.contains("BUG TestSlub_RZ_alloc (Not tainted): Right Redzone overwritten"),
            "{log}"
        );
        assert!(log.contains("First byte 0x12 instead of 0xcc"), "{log}");
        k.kmem_cache_free(C0, s, p).unwrap();
        k.kmem_cache_destroy(C0, s).unwrap();
    }

    #[test]
    fn kunit_next_pointer() {
        let (m, sa) = setup(0, 0);
        let k = Kmem::new(&sa, &m.pa);
        let s = k
            .kmem_cache_create("TestSlub_next_ptr_free", 64, 0, SlabFlags::POISON, None)
            .unwrap();
        let p = k.kmem_cache_alloc(C0, s, Gfp::KERNEL).unwrap();
        k.kmem_cache_free(C0, s, p).unwrap();
        let c = sa.cache(s).unwrap();
        let fp = p.0 .0 + c.slub().offset;
        let tmp = m.pa.direct_map().read_u64(fp);
        poke(&k, fp, 0x12);
        assert_eq!(
            k.validate_slab_cache(s),
            3,
            "corrupt freechain + wrong count + fix"
        );
        m.pa.direct_map().write_u64(fp, tmp);
        assert_eq!(k.validate_slab_cache(s), 2, "wrong count + fix");
        assert_eq!(k.validate_slab_cache(s), 0);
        k.kmem_cache_destroy(C0, s).unwrap();
    }

    #[test]
    fn kunit_first_word_and_50th_byte() {
        for at in [0u64, 50] {
            let (m, sa) = setup(0, 0);
            let k = Kmem::new(&sa, &m.pa);
            let s = k
                .kmem_cache_create("TestSlub_1th_word_free", 64, 0, SlabFlags::POISON, None)
                .unwrap();
            let p = k.kmem_cache_alloc(C0, s, Gfp::KERNEL).unwrap();
            k.kmem_cache_free(C0, s, p).unwrap();
            poke(&k, p.0 .0 + at, 0x12);
            assert_eq!(k.validate_slab_cache(s), 2, "byte {at}");
            assert!(m
                .pa
                .log
                .messages()
                .iter()
                .any(|l| l.contains("Poison overwritten")));
            assert_eq!(k.validate_slab_cache(s), 0, "repaired");
        }
    }

    #[test]
    fn kunit_clobber_redzone_free() {
        let (m, sa) = setup(0, 0);
        let k = Kmem::new(&sa, &m.pa);
        let s = k
            .kmem_cache_create("TestSlub_RZ_free", 64, 0, SlabFlags::RED_ZONE, None)
            .unwrap();
        let p = k.kmem_cache_alloc(C0, s, Gfp::KERNEL).unwrap();
        k.kmem_cache_free(C0, s, p).unwrap();
        poke(&k, p.0 .0 + 64, 0xab);
        assert_eq!(k.validate_slab_cache(s), 2);
    }

    #[test]
    fn kunit_kmalloc_redzone_access() {
        let (m, sa) = setup(0, 0);
        let k = Kmem::new(&sa, &m.pa);
        let f = SlabFlags::KMALLOC | SlabFlags::STORE_USER | SlabFlags::RED_ZONE;
        let s = k
            .kmem_cache_create("TestSlub_RZ_kmalloc", 32, 0, f, None)
            .unwrap();
        let p = k.kmalloc_from(C0, s, 18, Gfp::KERNEL).unwrap();
        poke(&k, p.0 .0 + 18, 0xab);
        poke(&k, p.0 .0 + 19, 0xab);
        assert_eq!(k.validate_slab_cache(s), 2);
        assert!(m
            .pa
            .log
            .messages()
            .iter()
            .any(|l| l.contains("kmalloc Redzone overwritten")));
        k.kmem_cache_free(C0, s, p).unwrap();
    }

    #[test]
    fn kunit_krealloc_redzone_zeroing() {
        let (m, sa) = setup(0, 0);
        let k = Kmem::new(&sa, &m.pa);
        let dm = m.pa.direct_map();
        let f = SlabFlags::KMALLOC | SlabFlags::STORE_USER | SlabFlags::RED_ZONE;
        let s = k
            .kmem_cache_create("TestSlub_krealloc", 64, 0, f, None)
            .unwrap();
        let p = k.kmalloc_from(C0, s, 48, Gfp::KERNEL).unwrap();
        dm.fill(p.0 .0, 0xff, 48);
        let mut b = [0u8; 64];
        let p = k.krealloc(C0, p, 40, Gfp::KERNEL | Gfp::ZERO).unwrap();
        dm.read(p.0, &mut b);
        assert!(b[40..].iter().all(|&x| x == SLUB_RED_ACTIVE));
        let p = k.krealloc(C0, p, 56, Gfp::KERNEL | Gfp::ZERO).unwrap();
        dm.read(p.0, &mut b);
        assert!(b[..40].iter().all(|&x| x == 0xff));
        assert!(b[40..56].iter().all(|&x| x == 0));
        assert!(b[56..].iter().all(|&x| x == SLUB_RED_ACTIVE));
        assert_eq!(k.validate_slab_cache(s), 0);
        let q = k.krealloc(C0, p, 112, Gfp::KERNEL | Gfp::ZERO).unwrap();
        assert_ne!(q, p);
        assert_eq!(k.ksize(q), 128);
        let mut c = [0u8; 112];
        dm.read(q.0, &mut c);
        assert!(c[..40].iter().all(|&x| x == 0xff) && c[40..].iter().all(|&x| x == 0));
        assert_eq!(k.validate_slab_cache(s), 0);
        k.kfree(C0, q).unwrap();
    }

    #[test]
    fn double_free_use_after_free_and_bad_pointers_are_reported() {
        let (m, sa) = setup(0, 0);
        let k = Kmem::new(&sa, &m.pa);
        let f = SlabFlags::POISON | SlabFlags::RED_ZONE | SlabFlags::STORE_USER;
        let s = k.kmem_cache_create("dbg", 100, 0, f, None).unwrap();
        let p = k.kmem_cache_alloc(C0, s, Gfp::KERNEL).unwrap();
        let q = k.kmem_cache_alloc(C0, s, Gfp::KERNEL).unwrap();
        // Double free.
        k.kmem_cache_free(C0, s, p).unwrap();
        assert!(matches!(
            k.kmem_cache_free(C0, s, p),
            Err(SlabReport::DoubleFree { .. })
        ));
        // Use after free: found when the object is handed out again.
        poke(&k, p.0 .0 + 10, 0x00);
        sa.take_reports();
        let p2 = k.kmem_cache_alloc(C0, s, Gfp::KERNEL).unwrap();
        assert_eq!(p2, p);
        let r = sa.take_reports();
        assert!(
            matches!(
                r.as_slice(),
                [SlabReport::Poison {
                    found: 0,
                    expected: POISON_FREE,
                    ..
                }]
            ),
            "{r:?}"
        );
        // Overflow into the red zone: refused, reported, object kept.
        poke(&k, q.0 .0 + 100, 0x41);
        assert!(matches!(
            k.kmem_cache_free(C0, s, q),
            Err(SlabReport::Redzone {
                what: "Right Redzone",
                ..
            })
        ));
        // Underflow: left red zone.
        poke(&k, p2.0 .0 - 1, 0x41);
        assert!(matches!(
            k.kmem_cache_free(C0, s, p2),
            Err(SlabReport::Redzone {
                what: "Left Redzone",
                ..
            })
        ));
        // A pointer inside an object is not an object.
        assert!(matches!(
            k.kmem_cache_free(C0, s, ObjPtr(PhysAddr(q.0 .0 + 8))),
            Err(SlabReport::InvalidFree { .. })
        ));
        // Both objects are still live (repaired, not freed) and their owner is known.
        let leaks = k.leak_report(s);
        assert_eq!(leaks.iter().map(|l| l.0).collect::<alloc::vec::Vec<_>>(), {
            let mut v = alloc::vec![p2, q];
            v.sort();
            v
        });
        let t = leaks[0].1.unwrap();
        assert!(t.caller.file().ends_with("slub.rs"));
        assert!(m
            .pa
            .log
            .messages()
            .iter()
            .any(|l| l.contains("allocated at") && l.contains("slub.rs")));
        // The repaired objects free cleanly now.
        k.kmem_cache_free(C0, s, q).unwrap();
        k.kmem_cache_free(C0, s, p2).unwrap();
        assert_eq!(k.validate_slab_cache(s), 0);
        k.kmem_cache_destroy(C0, s).unwrap();
        crate::debug::check_page_alloc(&m.pa).unwrap();
    }

    #[test]
    fn debug_layout_like_linux() {
        let (m, sa) = setup(0, 0);
        let k = Kmem::new(&sa, &m.pa);
        let rz = k
            .kmem_cache_create("rz", 64, 0, SlabFlags::RED_ZONE, None)
            .unwrap();
        let c = sa.cache(rz).unwrap();
        assert_eq!(
            (
                c.slub().inuse,
                c.slub().offset,
                c.slub().red_left_pad,
                c.size
            ),
            (72, 32, 8, 88)
        );
        let po = k
            .kmem_cache_create("po", 64, 0, SlabFlags::POISON, None)
            .unwrap();
        let c = sa.cache(po).unwrap();
        assert_eq!((c.slub().offset, c.size), (64, 72));
        let plain = k
            .kmem_cache_create("plain", 100, 0, SlabFlags::NO_MERGE, None)
            .unwrap();
        assert_eq!(
            sa.cache(plain).unwrap().slub().offset,
            48,
            "free pointer mid-object"
        );
    }
}
