//! Tour topics of the kernel's object allocators: slab caches, kmalloc's
//! size classes and mempools.

use super::{alloc, boot_machine, boot_with, zone_named, Tour};
use machine::config::MachineConfig;
use machine::machine::Machine;
use mm::gfp::Gfp;
use mm::mempool::Mempool;
use mm::page_alloc::CpuId;
use mm::slab_common::{CacheId, Kmem, ObjPtr, SlabFlags, SlabInfo, SlabKind};
use mm::Order;

/// One machine running the slab sequence: its allocator kind, the cache
/// and the objects it holds.
struct SlabRun {
    /// The machine.
    m: Machine,
    /// `SLUB` or `SLAB`.
    label: &'static str,
    /// The tour's cache.
    cache: CacheId,
    /// Objects allocated, oldest first.
    objs: Vec<ObjPtr>,
}

/// The object size of the tour's cache: 1000 bytes, so a slab holds few
/// objects and wastes some (the colouring room on SLAB).
const OBJ_SIZE: u64 = 1000;

impl SlabRun {
    /// Boots a 64 MiB machine with `kind` and creates the tour's cache.
    fn new(kind: SlabKind, label: &'static str) -> Result<SlabRun, String> {
        let m = boot_with(
            MachineConfig {
                slab: kind,
                ..Default::default()
            },
            64 << 20,
            1,
        )?;
        let cache = Kmem::new(m.slab(), m.pa())
            .kmem_cache_create("tour_obj", OBJ_SIZE, 0, SlabFlags::NO_MERGE, None)
            .map_err(|e| format!("kmem_cache_create: {e:?}"))?;
        Ok(SlabRun {
            m,
            label,
            cache,
            objs: Vec::new(),
        })
    }

    /// The cache's /proc/slabinfo numbers.
    fn info(&self) -> Result<SlabInfo, String> {
        Kmem::new(self.m.slab(), self.m.pa())
            .slabinfo()
            .into_iter()
            .find(|i| i.name == "tour_obj")
            .ok_or_else(|| "tour_obj missing from slabinfo".into())
    }

    /// The cache's slabinfo line, labelled.
    fn line(&self) -> Result<String, String> {
        let text = self.m.proc("slabinfo")?;
        let l = text
            .lines()
            .find(|l| l.starts_with("tour_obj "))
            .unwrap_or("");
        Ok(format!("{}: {l}\n", self.label))
    }

    /// Allocates `n` objects.
    fn alloc(&mut self, n: usize) -> Result<(), String> {
        let k = Kmem::new(self.m.slab(), self.m.pa());
        for _ in 0..n {
            let o = k
                .kmem_cache_alloc(CpuId(0), self.cache, Gfp::KERNEL)
                .ok_or("kmem_cache_alloc failed")?;
            self.objs.push(o);
        }
        Ok(())
    }

    /// Frees the `n` oldest objects.
    fn free_oldest(&mut self, n: usize) -> Result<(), String> {
        let k = Kmem::new(self.m.slab(), self.m.pa());
        for o in self.objs.drain(..n.min(self.objs.len())) {
            k.kmem_cache_free(CpuId(0), self.cache, o)
                .map_err(|e| format!("kmem_cache_free: {}", e.title()))?;
        }
        Ok(())
    }

    /// The objects the caller holds per slab, by the slab's first pfn
    /// (`virt_to_slab` of each object), as `pfn:n` pairs.
    fn in_use_text(&self) -> String {
        let k = Kmem::new(self.m.slab(), self.m.pa());
        let mut by_slab = std::collections::BTreeMap::new();
        for &o in &self.objs {
            if let Some((p, _)) = k.obj_slab(o) {
                *by_slab.entry(p.0).or_insert(0u32) += 1;
            }
        }
        if by_slab.is_empty() {
            return "none".into();
        }
        by_slab
            .iter()
            .map(|(p, n)| format!("slab {p:#x}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The two runs' slabinfo lines and, per slab, how many of its objects
/// the caller holds.
fn lines(runs: &[SlabRun]) -> Result<String, String> {
    let mut s: String = runs.iter().map(SlabRun::line).collect::<Result<_, _>>()?;
    for r in runs {
        s += &format!("{} in use per slab: {}\n", r.label, r.in_use_text());
    }
    Ok(s)
}

/// Records, for both runs, the slabs slabinfo counts and the caller's
/// objects per slab.
fn counts(t: &mut Tour, runs: &[SlabRun], what: &str) -> Result<(), String> {
    for r in runs {
        let i = r.info()?;
        t.checkpoint(&format!("{} slabs {what}", r.label), i.num_slabs);
        t.checkpoint(&format!("{} in use {what}", r.label), r.in_use_text());
    }
    Ok(())
}

/// `lmm tour slab`.
pub(super) fn slab(t: &mut Tour) -> Result<(), String> {
    t.say(&format!(
        "A cache of {OBJ_SIZE}-byte objects (SLAB_NO_MERGE keeps its name) on SLUB and\n\
         on classic SLAB, side by side. slabinfo counts objects cached for the CPU\n\
         as active; 'in use per slab' counts what the caller holds."
    ));
    let mut runs = [
        SlabRun::new(SlabKind::Slub, "SLUB")?,
        SlabRun::new(SlabKind::Slab, "SLAB")?,
    ];
    t.step("kmem_cache_create(\"tour_obj\", 1000)");
    let mut layout = String::new();
    let mut per = Vec::new();
    for r in &runs {
        let c = r.m.slab().cache(r.cache).ok_or("cache missing")?;
        let (colour, colour_off) = c.colouring();
        layout += &format!(
            "{}: {} objects of {} bytes per order-{} slab, {} bytes left, {} colour(s) of {} bytes\n",
            r.label,
            c.objects,
            c.size,
            c.order,
            (4096u64 << c.order) - u64::from(c.objects) * c.size,
            colour,
            colour_off
        );
        per.push((c.objects, c.order, colour));
    }
    t.state("layout", &layout);
    t.state("slabinfo", &lines(&runs)?);
    t.explain(
        "each allocator picked a slab order that fits enough objects with little waste; SLAB spends the leftover on colouring",
        "mm/slub.c calc_slab_order (min_objects 4 × (fls(nr_cpus) + 1)); mm/slab.c calculate_slab_order, colour = left_over / cache_line_size",
    );
    for (r, (objects, order, colour)) in runs.iter().zip(&per) {
        t.checkpoint(&format!("{} objects per slab", r.label), objects);
        t.checkpoint(&format!("{} slab order", r.label), order);
        t.checkpoint(&format!("{} colours", r.label), colour);
    }
    let per: Vec<usize> = per.iter().map(|p| p.0 as usize).collect();
    t.step("the first allocation creates a slab: partial");
    for r in runs.iter_mut() {
        r.alloc(1)?;
    }
    t.state("after", &lines(&runs)?);
    t.explain(
        "no slab had a free object: a new slab came from the page allocator and one object of it was handed out",
        "mm/slub.c ___slab_alloc → new_slab → allocate_slab; mm/slab.c cache_alloc_refill → cache_grow_begin",
    );
    counts(t, &runs, "after first")?;
    t.step("fill the slab, then one object more: full, and a second slab");
    for (r, &n) in runs.iter_mut().zip(&per) {
        r.alloc(n)?;
    }
    t.state("after", &lines(&runs)?);
    t.explain(
        "the first slab has every object in use; the next allocation had to grow the cache by a second slab",
        "mm/slub.c: a full slab leaves the CPU and sits on no list; mm/slab.c moves it to slabs_full",
    );
    counts(t, &runs, "after fill")?;
    t.step("free half of the first slab's objects: partial again");
    for (r, &n) in runs.iter_mut().zip(&per) {
        r.free_oldest(n / 2)?;
    }
    t.state("after", &lines(&runs)?);
    t.explain(
        "a full slab with a freed object is partial: it is where the next allocations of this node come from",
        "mm/slub.c __slab_free: a slab that was full goes onto the partial list; mm/slab.c free_block → slabs_partial",
    );
    counts(t, &runs, "after half")?;
    t.step("free the rest, then kmem_cache_shrink");
    for (r, &n) in runs.iter_mut().zip(&per) {
        r.free_oldest(n - n / 2)?;
    }
    let mid = lines(&runs)?;
    for r in runs.iter_mut() {
        let n = r.objs.len();
        r.free_oldest(n)?;
        Kmem::new(r.m.slab(), r.m.pa()).kmem_cache_shrink(CpuId(0), r.cache);
    }
    t.state("first slab empty", &mid);
    t.state("everything freed, after shrink", &lines(&runs)?);
    t.explain(
        "empty slabs are kept for reuse until kmem_cache_shrink (or memory pressure) hands them back to the page allocator",
        "mm/slub.c keeps empty slabs while nr_partial < min_partial, __kmem_cache_do_shrink discards them; mm/slab.c drain_freelist",
    );
    counts(t, &runs, "after shrink")?;
    Ok(())
}

/// The requests of the kmalloc topic, in bytes.
const KMALLOC_SIZES: [u64; 9] = [1, 8, 9, 96, 100, 192, 200, 4096, 8193];

/// `lmm tour kmalloc`.
pub(super) fn kmalloc(t: &mut Tour) -> Result<(), String> {
    t.say(
        "kmalloc rounds a request up to a size class: powers of two from 8\n\
         bytes to 8 KiB, plus 96 and 192 (common sizes that a power of two\n\
         would waste a third of). Larger requests bypass the slabs.",
    );
    let m = boot_machine(64 << 20, 1)?;
    let k = Kmem::new(m.slab(), m.pa());
    t.step("which cache serves each size");
    let mut s = format!(
        "{:>6}  {:<14} {:>6} {:>6}\n",
        "size", "served by", "ksize", "waste"
    );
    let mut rows = Vec::new();
    let mut large = None;
    for size in KMALLOC_SIZES {
        let o = k
            .kmalloc(CpuId(0), size, Gfp::KERNEL)
            .ok_or("kmalloc failed")?;
        let by = match k.obj_slab(o) {
            Some((_, id)) => m.slab().cache(id).map_or("?".into(), |c| c.name.clone()),
            None => {
                large = Some((size, o));
                "page allocator".into()
            }
        };
        let ks = k.ksize(o);
        s += &format!("{size:>6}  {by:<14} {ks:>6} {:>6}\n", ks - size);
        rows.push((size, by, ks));
    }
    t.state("kmalloc(size, GFP_KERNEL)", &s);
    t.explain(
        "each request went to the smallest class that holds it; the difference is internal waste",
        "mm/slab_common.c kmalloc_size_index: 1..8 → 8, then 16, ..., 65..96 → 96, 129..192 → 192; __kmalloc_index above 192",
    );
    for (size, by, ks) in &rows {
        t.checkpoint(&format!("kmalloc({size})"), format!("{by} ksize {ks}"));
    }
    let (size, o) = large.ok_or("no large kmalloc")?;
    t.step(&format!("kmalloc({size}): straight to the page allocator"));
    let pfn = o.0.pfn();
    let order = Order::for_size(size);
    let page = m.pa().page(pfn).ok_or("no struct page")?;
    t.state(
        "the block",
        &format!(
            "pfn {:#x}, order {} ({} bytes), a slab page: {}, zone {}\n",
            pfn.0,
            order.0,
            order.bytes(),
            page.test(mm::memmap::PageFlags::SLAB),
            m.pa().zone_of(pfn).map_or("?", |z| z.ztype.name())
        ),
    );
    t.explain(
        "above KMALLOC_MAX_CACHE_SIZE (8 KiB) there is no slab: kmalloc takes 2^get_order(size) pages and kfree gives them back",
        "mm/slub.c __kmalloc_large_node: alloc_pages(flags | __GFP_COMP, get_order(size)); KMALLOC_SHIFT_HIGH = PAGE_SHIFT + 1",
    );
    t.checkpoint("large order", order.0);
    t.step(&format!("kfree the {size}-byte object"));
    let free = |m: &Machine| m.pa().nr_free_pages() + m.pa().nr_pcp_pages();
    let before = free(&m);
    k.kfree(CpuId(0), o)
        .map_err(|e| format!("kfree: {}", e.title()))?;
    let after = free(&m);
    t.state(
        "free pages (buddy + per-CPU lists)",
        &format!("{before} → {after}\n"),
    );
    t.explain(
        &format!("the {} pages went straight back to the page allocator; no slab was involved", order.pages()),
        "mm/slub.c kfree: a folio that is not a slab is a large kmalloc, freed by free_large_kmalloc → folio_put",
    );
    t.checkpoint("pages back", after - before);
    Ok(())
}

/// `lmm tour mempool`.
pub(super) fn mempool(t: &mut Tour) -> Result<(), String> {
    t.say(
        "A mempool keeps min_nr elements aside so that a driver on the I/O\n\
         path can make progress when the allocator has nothing. Here: a page\n\
         pool of min_nr 4 on a 64 MiB machine whose memory we then use up.",
    );
    let m = boot_machine(64 << 20, 1)?;
    let k = Kmem::new(m.slab(), m.pa());
    let z = zone_named(m.pa(), 0, "DMA32")?;
    let cpu = CpuId(0);
    let noio = Gfp(Gfp::KERNEL.0 & !(Gfp::IO.0 | Gfp::FS.0));
    t.step("mempool_create_page_pool(4, 0) and one allocation with memory to spare");
    let pool = Mempool::create_page_pool(&k, cpu, 4, Order(0))
        .map_err(|e| format!("mempool_create: {e}"))?;
    let early = pool.alloc(&k, cpu, noio).ok_or("mempool_alloc failed")?;
    t.state(
        "pool",
        &format!(
            "min_nr {}  curr_nr {}  (element {:#x})\n",
            pool.min_nr(),
            pool.curr_nr(),
            early.0 .0
        ),
    );
    t.explain(
        "creation filled the reserve with 4 pages; a later mempool_alloc tried the allocator first and got a fresh page",
        "mm/mempool.c mempool_init_node preallocates min_nr; mempool_alloc_noprof calls pool->alloc before touching the reserve",
    );
    t.checkpoint("curr_nr after create", pool.curr_nr());
    t.step("use up memory, then mempool_alloc(GFP_NOIO)");
    let mut held = 0u64;
    while alloc(m.pa(), 0, Gfp(Gfp::KERNEL.0 | Gfp::NOWARN.0), 0).is_some() {
        held += 1;
    }
    let direct = alloc(m.pa(), 0, Gfp(noio.0 | Gfp::NOWARN.0), 0);
    t.state(
        "before",
        &format!(
            "{held} pages taken; DMA32 free {} (min {}); alloc_pages(GFP_NOIO): {}\ncurr_nr {}\n",
            z.free_pages(),
            z.wmark(mm::mmzone::Wmark::Min),
            if direct.is_some() { "ok" } else { "fails" },
            pool.curr_nr()
        ),
    );
    let from_reserve = pool.alloc(&k, cpu, noio).ok_or("mempool_alloc failed")?;
    t.state(
        "after",
        &format!(
            "mempool_alloc gave {:#x}; curr_nr {}\n",
            from_reserve.0 .0,
            pool.curr_nr()
        ),
    );
    t.explain(
        "the allocator failed (no reclaim allowed to the first try, nothing to reclaim), so the element came from the reserve",
        "mm/mempool.c mempool_alloc_noprof: gfp_temp without __GFP_DIRECT_RECLAIM|__GFP_IO first, then remove_element() while curr_nr > 0",
    );
    t.checkpoint("direct alloc failed", direct.is_none());
    t.checkpoint("curr_nr after reserve alloc", pool.curr_nr());
    t.step("mempool_free: the reserve is refilled first");
    let free0 = z.free_pages() + m.pa().nr_pcp_pages();
    pool.free(&k, cpu, from_reserve);
    t.state(
        "after",
        &format!(
            "curr_nr {}; pages free in the zone and on pcp lists: {} → {}\n",
            pool.curr_nr(),
            free0,
            z.free_pages() + m.pa().nr_pcp_pages()
        ),
    );
    t.explain(
        "the reserve was below min_nr, so the element went back into it, not to the page allocator",
        "mm/mempool.c mempool_free: if curr_nr < min_nr, add_element() and wake a waiter; else pool->free",
    );
    t.checkpoint("curr_nr after first free", pool.curr_nr());
    t.step("mempool_free with the reserve full: back to the allocator");
    let free1 = z.free_pages() + m.pa().nr_pcp_pages();
    pool.free(&k, cpu, early);
    let free2 = z.free_pages() + m.pa().nr_pcp_pages();
    t.state(
        "after",
        &format!(
            "curr_nr {}; pages free in the zone and on pcp lists: {free1} → {free2}\n",
            pool.curr_nr()
        ),
    );
    t.explain(
        "with curr_nr = min_nr the element went to pool->free: the page is the allocator's again",
        "mm/mempool.c mempool_free: the reserve only ever holds min_nr elements",
    );
    t.checkpoint("curr_nr after second free", pool.curr_nr());
    t.checkpoint("pages returned", free2 - free1);
    pool.destroy(&k, cpu);
    Ok(())
}
