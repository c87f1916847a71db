//! Tour topics of the kernel's own memory: boot, zones, NUMA, the buddy
//! allocator, per-CPU lists, watermarks, slabs, kmalloc, mempools, vmalloc,
//! kmap, the page-table walk and the TLB.

use super::{Topic, Tour};
use machine::config::MachineConfig;
use machine::machine::Machine;
use mm::gfp::Gfp;
use mm::mmzone::NR_PAGE_ORDERS;
use mm::mmzone::{Wmark, Zone};
use mm::page_alloc::{CpuId, PageAlloc};
use mm::{Order, Pfn};

mod heap;
mod paging;

/// The kernel's topics, in the textbook's order.
pub(super) static TOPICS: &[Topic] = &[
    Topic {
        name: "boot",
        title: "e820 to memblock to memmap to zones to the buddy allocator",
        run: boot,
    },
    Topic {
        name: "zones",
        title: "why DMA, DMA32, Normal and HighMem exist; which zones a GFP may use",
        run: zones,
    },
    Topic {
        name: "numa",
        title: "two nodes: spans, distance, local allocation and fallback",
        run: numa,
    },
    Topic {
        name: "buddy",
        title: "a buddy split and merge",
        run: buddy,
    },
    Topic {
        name: "pcp",
        title: "per-CPU page lists: refill by batch, drain past high",
        run: pcp,
    },
    Topic {
        name: "watermarks",
        title: "min/low/high, kswapd's wake, GFP_ATOMIC below min",
        run: watermarks,
    },
    Topic {
        name: "slab",
        title: "a slab's life on SLUB and on classic SLAB",
        run: heap::slab,
    },
    Topic {
        name: "kmalloc",
        title: "kmalloc size classes, their waste, and large kmalloc",
        run: heap::kmalloc,
    },
    Topic {
        name: "mempool",
        title: "a mempool's reserve when the allocator fails",
        run: heap::mempool,
    },
    Topic {
        name: "vmalloc",
        title: "a vmalloc area, its scattered pages and kernel PTEs, vfree",
        run: paging::vmalloc,
    },
    Topic {
        name: "kmap",
        title: "HighMem pages on 32-bit x86: kmap, kunmap, kmap_local",
        run: paging::kmap,
    },
    Topic {
        name: "pagewalk",
        title: "a 4- and 5-level page-table walk; a TLB miss and hit",
        run: paging::pagewalk,
    },
];

/// Boots a machine of `ram` bytes and `cpus` CPUs (everything else as
/// `base`), as a topic's own small machine.
fn boot_with(base: MachineConfig, ram: u64, cpus: usize) -> Result<Machine, String> {
    Machine::boot(MachineConfig { ram, cpus, ..base }).map_err(|e| format!("boot: {e}"))
}

/// Boots a default x86-64 machine of `ram` bytes and `cpus` CPUs.
fn boot_machine(ram: u64, cpus: usize) -> Result<Machine, String> {
    boot_with(MachineConfig::default(), ram, cpus)
}

/// The lines of `text` that contain any of `keys`, joined.
fn grep(text: &str, keys: &[&str]) -> String {
    text.lines()
        .filter(|l| keys.iter().any(|k| l.contains(k)))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The kernel log without the timestamps, for quoting.
fn dmesg_lines(m: &Machine, keys: &[&str]) -> String {
    grep(&m.dmesg(), keys)
        .lines()
        .map(|l| format!("{}\n", l.split_once("] ").map_or(l, |(_, r)| r)))
        .collect()
}

/// The zone of `nid` called `name` (`DMA32`, ...).
fn zone_named<'a>(pa: &'a PageAlloc, nid: u32, name: &str) -> Result<&'a Zone, String> {
    pa.zones()
        .find(|z| z.nid == nid && z.ztype.name() == name)
        .ok_or_else(|| format!("no zone {name} on node {nid}"))
}

/// A zone's free blocks per order (its `free_area[order].nr_free`).
fn free_area(z: &Zone) -> [u64; NR_PAGE_ORDERS] {
    let area = z.lock_area();
    std::array::from_fn(|o| area.nr_free_order(o))
}

/// The free-block counts as buddyinfo prints them.
fn orders_line(z: &Zone) -> String {
    let f = free_area(z);
    let mut s = format!(
        "order: {}\n",
        (0..NR_PAGE_ORDERS)
            .map(|o| format!("{o:>4}"))
            .collect::<String>()
    );
    s += &format!(
        "free:  {}\n",
        f.iter().map(|n| format!("{n:>4}")).collect::<String>()
    );
    s
}

/// `alloc_pages(gfp, order)` on `cpu`: the block's first pfn, if any.
fn alloc(pa: &PageAlloc, cpu: usize, gfp: Gfp, order: u8) -> Option<Pfn> {
    pa.alloc_pages(CpuId(cpu), gfp, Order(order))
}

/// `lmm tour boot`: e820, memblock, the memmap and zones, the hand-over.
fn boot(t: &mut Tour) -> Result<(), String> {
    t.say(
        "A 64 MiB x86-64 machine boots. Memory passes through four hands:\n\
         the firmware's e820 map, memblock (the boot-time allocator), the\n\
         memmap (one struct page per frame) and zones, and at last the buddy\n\
         allocator, which gets every page memblock did not reserve.",
    );
    let m = boot_machine(64 << 20, 1)?;
    t.step("the firmware's map (e820)");
    t.state("dmesg", &dmesg_lines(&m, &["BIOS-e820", "e820: "]));
    let usable: u64 = m.memblock().memory.total_size();
    t.explain(
        "the BIOS lists usable and reserved ranges; the kernel then drops page 0 and the 640K-1M hole",
        "arch/x86/kernel/e820.c e820__memory_setup / trim_bios_range: page 0 and the legacy ROM area are never RAM to the allocator",
    );
    t.checkpoint("memblock.memory bytes", usable);
    t.step("memblock: the usable RAM and what boot code reserved");
    t.state("memblock/memory", &m.proc("memblock/memory")?);
    t.state("memblock/reserved", &m.proc("memblock/reserved")?);
    let img = &m.image();
    t.say(&format!(
        "   reserved 0: the first MiB (firmware) and the kernel image [{:#x}, {:#x})\n   \
         reserved 1: the per-CPU areas; 2: the memmap (a 2 MiB vmemmap block);\n   \
         reserved 3: the dentry and inode hash tables; 4: NODE_DATA(0)",
        img.start.0,
        img.start.0 + img.size()
    ));
    t.explain(
        "memblock.memory holds the usable e820 ranges; memblock.reserved the kernel image, the low 1 MiB and every early allocation",
        "mm/memblock.c memblock_add/memblock_reserve; arch/x86/kernel/setup.c reserves the image and the first MiB before any memblock_alloc",
    );
    t.checkpoint("memblock.memory regions", m.memblock().memory.cnt());
    let rsv = m.memblock().reserved.regions();
    let size = |i: usize| rsv.get(i).map_or(0, |r| r.size);
    t.checkpoint(
        "reserved[0] end",
        format!("{:#x}", rsv.first().map_or(0, |r| r.end().0)),
    );
    t.checkpoint("memmap bytes", size(2));
    t.checkpoint("hash table bytes", size(3));
    t.step("the memmap and the zones");
    t.state(
        "dmesg",
        &dmesg_lines(
            &m,
            &[
                "Zone ranges",
                "  DMA",
                "  Normal",
                "unavailable ranges",
                "Total pages",
            ],
        ),
    );
    let dma = zone_named(m.pa(), 0, "DMA")?;
    let dma32 = zone_named(m.pa(), 0, "DMA32")?;
    t.explain(
        "free_area_init sizes each zone (spanned, present) and gives every frame a struct page in the memmap",
        "mm/mm_init.c free_area_init → calculate_node_totalpages; holes are 'unavailable ranges' with struct pages but no RAM",
    );
    t.checkpoint("DMA present pages", dma.present);
    t.checkpoint("DMA32 present pages", dma32.present);
    t.step("the hand-over to the buddy allocator");
    t.state("dmesg", &dmesg_lines(&m, &["Memory: ", "Freeing unused"]));
    let line = dmesg_lines(&m, &["Memory: "]);
    let kib = |after: &str, before: &str| -> u64 {
        line.split(after)
            .nth(1)
            .and_then(|r| r.split(before).next())
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    };
    let (avail, phys, reserved) = (
        kib("Memory: ", "K/"),
        kib("K/", "K available"),
        kib("bss, ", "K reserved"),
    );
    t.explain(
        "memblock_free_all releases every unreserved page to the buddy lists; initmem is freed later by kernel_init",
        "mm/memblock.c memblock_free_all → __free_pages_core; mm/mm_init.c mem_init_print_info prints available/physpages",
    );
    t.checkpoint("available KiB", avail);
    t.checkpoint("physpages KiB", phys);
    t.checkpoint("reserved KiB", reserved);
    t.checkpoint("totalram_pages", m.pa().totalram_pages());
    t.step("the buddy allocator after boot");
    t.state("buddyinfo", &m.proc("buddyinfo")?);
    t.explain(
        "free pages sit in blocks of 2^order pages per zone, mostly large: freed RAM coalesces as it is handed over",
        "mm/page_alloc.c __free_pages_core → __free_one_page merges each block with its free buddy up to MAX_PAGE_ORDER",
    );
    t.checkpoint("nr_free_pages", m.pa().nr_free_pages());
    Ok(())
}

/// Which zones an allocation with `gfp` may use on `pa`'s node 0, in the
/// zonelist's order, as names.
fn allowed_zones(pa: &PageAlloc, gfp: Gfp) -> String {
    let Some(top) = pa.highest_zoneidx(gfp) else {
        return "none".into();
    };
    pa.zonelist(0)
        .iter()
        .filter(|&&(_, idx)| idx <= top)
        .map(|&(nid, idx)| pa.zone(nid, idx))
        .filter(|z| z.is_populated())
        .map(|z| z.ztype.name())
        .collect::<Vec<_>>()
        .join(" → ")
}

/// The zone a real allocation with `gfp` came from.
fn zone_of_alloc(pa: &PageAlloc, gfp: Gfp) -> Result<&'static str, String> {
    let pfn = alloc(pa, 0, gfp, 0).ok_or("allocation failed")?;
    let z = pa.zone_of(pfn).ok_or("no zone")?.ztype.name();
    pa.free_pages(CpuId(0), pfn, Order(0));
    Ok(z)
}

/// The zone ranges of a machine, one line per populated zone.
fn zone_spans(pa: &PageAlloc) -> String {
    pa.zones()
        .filter(|z| z.spanned > 0)
        .map(|z| {
            format!(
                "{:<8} pfn {:#08x}-{:#08x}  [{:>4} MiB, {:>4} MiB)\n",
                z.ztype.name(),
                z.start_pfn.0,
                z.start_pfn.0 + z.spanned,
                (z.start_pfn.0 << 12) >> 20,
                ((z.start_pfn.0 + z.spanned) << 12) >> 20
            )
        })
        .collect()
}

/// `lmm tour zones`: zone spans on 64- and 32-bit x86, and which zones
/// each GFP may use.
fn zones(t: &mut Tour) -> Result<(), String> {
    t.say(
        "Zones exist because some hardware cannot reach all of RAM: ISA DMA sees\n\
         only the first 16 MiB, 32-bit PCI devices the first 4 GiB, and a 32-bit\n\
         kernel can map only 896 MiB of RAM permanently.",
    );
    let m64 = boot_machine(6 << 30, 1)?;
    t.step("the zones of a 6 GiB x86-64 machine");
    t.state("zone spans", &zone_spans(m64.pa()));
    t.explain(
        "DMA ends at 16 MiB, DMA32 at 4 GiB, Normal holds the rest (RAM above the PCI hole is remapped above 4 GiB)",
        "arch/x86/mm/init.c zone_sizes_init: max_zone_pfns DMA = 16M (MAX_DMA_PFN), DMA32 = 4G (MAX_DMA32_PFN), Normal = max_pfn",
    );
    let dma32 = zone_named(m64.pa(), 0, "DMA32")?;
    let normal = zone_named(m64.pa(), 0, "Normal")?;
    t.checkpoint(
        "x86-64 DMA32 end pfn",
        format!("{:#x}", dma32.start_pfn.0 + dma32.spanned),
    );
    t.checkpoint(
        "x86-64 Normal start pfn",
        format!("{:#x}", normal.start_pfn.0),
    );
    t.step("which zones each GFP may use on x86-64 (the zonelist, highest first)");
    let mut s = String::new();
    let mut got_zones = Vec::new();
    for (name, gfp) in [
        ("GFP_KERNEL", Gfp::KERNEL),
        ("GFP_DMA32", Gfp(Gfp::KERNEL.0 | Gfp::DMA32.0)),
        ("GFP_DMA", Gfp(Gfp::KERNEL.0 | Gfp::DMA.0)),
        ("GFP_HIGHUSER", Gfp::HIGHUSER),
    ] {
        let got = zone_of_alloc(m64.pa(), gfp)?;
        s += &format!(
            "{name:<13} may use {:<24} got {got}\n",
            allowed_zones(m64.pa(), gfp)
        );
        got_zones.push((format!("x86-64 {name} got"), got));
    }
    t.state("allocations", &s);
    t.explain(
        "an allocation may use its highest allowed zone and every zone below, tried from the highest down",
        "include/linux/gfp.h gfp_zone (GFP_ZONE_TABLE); mm/page_alloc.c get_page_from_freelist walks the zonelist from highest_zoneidx",
    );
    for (name, got) in got_zones.drain(..) {
        t.checkpoint(&name, got);
    }
    let m32 = boot_with(
        MachineConfig {
            arch: mm::arch::Arch::X86,
            ..Default::default()
        },
        2 << 30,
        1,
    )?;
    t.step("a 2 GiB 32-bit x86 machine: HighMem above 896 MiB");
    t.state("zone spans", &zone_spans(m32.pa()));
    let hm = zone_named(m32.pa(), 0, "HighMem")?;
    t.explain(
        "the kernel's 1 GiB above PAGE_OFFSET minus 128 MiB for vmalloc/kmap maps only 896 MiB; RAM above is HighMem",
        "arch/x86/include/asm/pgtable_32_areas.h: MAXMEM = VMALLOC_END - PAGE_OFFSET - __VMALLOC_RESERVE; highmem_pfn_init",
    );
    t.checkpoint("x86 HighMem start pfn", format!("{:#x}", hm.start_pfn.0));
    t.step("which zones each GFP may use on 32-bit x86");
    let mut s = String::new();
    for (name, gfp) in [
        ("GFP_KERNEL", Gfp::KERNEL),
        ("GFP_DMA", Gfp(Gfp::KERNEL.0 | Gfp::DMA.0)),
        ("GFP_HIGHUSER", Gfp::HIGHUSER),
    ] {
        let got = zone_of_alloc(m32.pa(), gfp)?;
        s += &format!(
            "{name:<13} may use {:<24} got {got}\n",
            allowed_zones(m32.pa(), gfp)
        );
        got_zones.push((format!("x86 {name} got"), got));
    }
    t.state("allocations", &s);
    t.explain(
        "GFP_KERNEL stays in lowmem (the kernel needs a permanent address); user pages may live in HighMem",
        "include/linux/gfp_types.h: GFP_HIGHUSER = GFP_USER | __GFP_HIGHMEM; only __GFP_HIGHMEM reaches ZONE_HIGHMEM",
    );
    for (name, got) in got_zones.drain(..) {
        t.checkpoint(&name, got);
    }
    Ok(())
}

/// `lmm tour numa`: two nodes, their distance, zonelists, local allocation
/// and fallback.
fn numa(t: &mut Tour) -> Result<(), String> {
    t.say(
        "A 512 MiB machine with two nodes, one CPU on each. Each node's\n\
         zonelist tries the node itself first, then the nearer nodes.",
    );
    let m = boot_with(
        MachineConfig {
            nodes: 2,
            ..Default::default()
        },
        512 << 20,
        2,
    )?;
    let pa = &m.pa();
    t.step("the nodes and their distance");
    let mut s = dmesg_lines(&m, &["NUMA: Node", "Fallback order"]);
    for (i, row) in pa.distance.iter().enumerate() {
        s += &format!(
            "node {i} distance: {}\n",
            row.iter().map(|d| format!("{d:>3}")).collect::<String>()
        );
    }
    t.state("nodes", &s);
    t.explain(
        "RAM is split between the nodes by address; a node is 10 from itself and 20 from the other (the SLIT default)",
        "include/linux/topology.h LOCAL_DISTANCE 10, REMOTE_DISTANCE 20; mm/page_alloc.c build_zonelists orders nodes by distance",
    );
    t.checkpoint("distance 0→1", pa.distance[0][1]);
    t.checkpoint(
        "node 1 cpu",
        pa.cpu_node
            .iter()
            .position(|&n| n == 1)
            .unwrap_or(usize::MAX),
    );
    t.step("the zonelists");
    let mut s = String::new();
    for nid in 0..2 {
        let zl: Vec<String> = pa
            .zonelist(nid)
            .iter()
            .filter(|&&(n, i)| pa.zone(n, i).is_populated())
            .map(|&(n, i)| format!("{}/{}", n, pa.zone(n, i).ztype.name()))
            .collect();
        s += &format!("node {nid}: {}\n", zl.join(" → "));
    }
    t.state("zonelist (node/zone)", &s);
    t.explain(
        "each node's zonelist holds its own zones first, highest zone first, then the other node's",
        "mm/page_alloc.c build_zonelists_in_node_order: zones of each node in find_next_best_node order",
    );
    let first1 = pa.zonelist(1).first().map_or(u32::MAX, |z| z.0);
    t.checkpoint("node 1 zonelist starts on node", first1);
    t.step("local allocation");
    let p0 = alloc(pa, 0, Gfp::KERNEL, 0).ok_or("alloc on cpu 0 failed")?;
    let p1 = alloc(pa, 1, Gfp::KERNEL, 0).ok_or("alloc on cpu 1 failed")?;
    let node = |p: Pfn| pa.zone_of(p).map_or(u32::MAX, |z| z.nid);
    t.state(
        "alloc_pages(GFP_KERNEL, 0)",
        &format!(
            "on cpu 0: pfn {:#x} (node {})\non cpu 1: pfn {:#x} (node {})\n",
            p0.0,
            node(p0),
            p1.0,
            node(p1)
        ),
    );
    t.explain(
        "each CPU's allocation comes from its own node",
        "mm/mempolicy.c: the default policy is local (numa_node_id()); alloc_pages uses that node's zonelist",
    );
    t.checkpoint("cpu 0 page node", node(p0));
    t.checkpoint("cpu 1 page node", node(p1));
    t.step("node 1 runs short: fallback to node 0");
    let z1 = zone_named(pa, 1, "DMA32")?;
    let before = format!(
        "node 1 DMA32 free {} (low {})\n",
        z1.free_pages(),
        z1.wmark(Wmark::Low)
    );
    let mut local = 0u64;
    let mut remote = None;
    for _ in 0..100_000 {
        let Some(p) = alloc(pa, 1, Gfp(Gfp::KERNEL.0 | Gfp::NOWARN.0), 9) else {
            break;
        };
        if node(p) == 1 {
            local += 1;
        } else {
            remote = Some(p);
            break;
        }
    }
    let remote = remote.ok_or("no fallback to node 0 happened")?;
    t.state("before", &before);
    t.state(
        "after",
        &format!(
            "{local} order-9 blocks came from node 1; then node 1 DMA32 free {} (low {})\nthe next came from pfn {:#x} on node {}\n",
            z1.free_pages(),
            z1.wmark(Wmark::Low),
            remote.0,
            node(remote)
        ),
    );
    t.explain(
        "once node 1's zone fails its low watermark the fast path moves on to the next zone in the zonelist: node 0's",
        "mm/page_alloc.c get_page_from_freelist: for_next_zone_zonelist_nodemask, zone_watermark_fast(ALLOC_WMARK_LOW) per zone",
    );
    t.checkpoint("fallback page node", node(remote));
    t.checkpoint("node 1 blocks before fallback", local);
    t.checkpoint("node 1 DMA32 free at fallback", z1.free_pages());
    t.checkpoint("node 1 DMA32 low", z1.wmark(Wmark::Low));
    Ok(())
}

/// `lmm tour buddy`: an order-0 allocation split from a larger block, the
/// buddy arithmetic, and the merge back.
fn buddy(t: &mut Tour) -> Result<(), String> {
    t.say(
        "A 64 MiB machine's DMA zone has no free block smaller than order 6.\n\
         The per-CPU lists are switched off here (zone_pcp_disable, as memory\n\
         hotplug does) so the order-0 page comes straight from the buddy lists.",
    );
    let m = boot_machine(64 << 20, 1)?;
    let pa = &m.pa();
    pa.set_pcp_disabled(true);
    let z = zone_named(pa, 0, "DMA")?;
    let before = free_area(z);
    let smallest = before
        .iter()
        .position(|&n| n > 0)
        .ok_or("DMA has no free block")?;
    t.step("alloc_pages(GFP_DMA, 0)");
    t.state("before (DMA free blocks per order)", &orders_line(z));
    let pfn =
        alloc(pa, 0, Gfp(Gfp::KERNEL.0 | Gfp::DMA.0), 0).ok_or("GFP_DMA allocation failed")?;
    t.state("after", &orders_line(z));
    let after = free_area(z);
    let split = (0..NR_PAGE_ORDERS)
        .find(|&o| after[o] < before[o])
        .ok_or("no block was split")?;
    t.explain(
        &format!("no unmovable block was free (boot left them all movable): the largest, order {split}, was claimed and split {split} times"),
        "mm/page_alloc.c __rmqueue_fallback claims the largest block of another type (anti-fragmentation); expand() frees each upper half one order down",
    );
    t.checkpoint("smallest free order before", smallest);
    t.checkpoint("split order", split);
    t.checkpoint("allocated pfn", format!("{:#x}", pfn.0));
    t.checkpoint("free blocks per order after", fmt_orders(&after));
    t.step("the buddies of the allocated page");
    let mut s = String::new();
    for o in 0..split {
        let b = pfn.0 ^ (1 << o);
        s += &format!(
            "order {o}: buddy of {:#x} is {:#x} ^ {:#x} = {b:#x}, free: {}\n",
            pfn.0,
            pfn.0,
            1u64 << o,
            pa.page(Pfn(b))
                .is_some_and(|p| p.test(mm::memmap::PageFlags::BUDDY))
        );
    }
    t.state("buddy pfns", &s);
    t.explain(
        "at each order the buddy is the block whose pfn differs in bit `order`, and each is free (the split's upper halves)",
        "mm/internal.h __find_buddy_pfn: buddy_pfn = pfn ^ (1 << order)",
    );
    t.checkpoint("order-0 buddy", format!("{:#x}", pfn.0 ^ 1));
    t.step("__free_pages: the merge back up");
    pa.free_pages(CpuId(0), pfn, Order(0));
    t.state("after", &orders_line(z));
    t.explain(
        &format!("the page merged with its buddy at every order up to {split}: the zone's free lists are as before"),
        "mm/page_alloc.c __free_one_page: while the buddy is free and of the same order, merge, pfn &= ~(1 << order), order++",
    );
    t.checkpoint(
        "free blocks per order after free",
        fmt_orders(&free_area(z)),
    );
    t.checkpoint("restored", free_area(z) == before);
    Ok(())
}

/// Free-block counts as a space-separated list.
fn fmt_orders(f: &[u64; NR_PAGE_ORDERS]) -> String {
    f.iter().map(u64::to_string).collect::<Vec<_>>().join(" ")
}

/// One CPU's pageset of a zone: count, high, batch.
fn pageset(z: &Zone, cpu: usize) -> (u64, u64, u64) {
    let p = z.lock_pcp(CpuId(cpu));
    (p.count, p.high, p.batch)
}

/// The pageset lines of a zone for CPU `cpu`, as zoneinfo prints them,
/// with the zone's buddy free count.
fn pageset_text(z: &Zone, cpu: usize) -> String {
    let (count, high, batch) = pageset(z, cpu);
    format!(
        "cpu {cpu}: count {count:>5}  high {high:>5}  batch {batch:>3}    zone buddy free {}\n",
        z.free_pages()
    )
}

/// `lmm tour pcp`: a CPU's page list refilled by batch and drained past
/// high.
fn pcp(t: &mut Tour) -> Result<(), String> {
    t.say(
        "A 256 MiB machine, 2 CPUs. Order-0 pages go through each CPU's own\n\
         list (the zone's pageset), so most allocations and frees never take\n\
         the zone lock. CPU 1 has not allocated yet: its list is empty.",
    );
    let m = boot_machine(256 << 20, 2)?;
    let pa = &m.pa();
    let z = zone_named(pa, 0, "DMA32")?;
    let cpu = 1;
    let (_, _, batch) = pageset(z, cpu);
    let free0 = z.free_pages();
    t.step("the first order-0 allocation on CPU 1");
    t.state("before", &pageset_text(z, cpu));
    let first = alloc(pa, cpu, Gfp::KERNEL, 0).ok_or("alloc failed")?;
    t.state("after", &pageset_text(z, cpu));
    t.explain(
        &format!("the empty list was refilled with {batch} pages from the buddy lists under one zone lock; one was handed out"),
        "mm/page_alloc.c rmqueue_pcplist → rmqueue_bulk(zone, 0, batch, ...) when the pcp list is empty",
    );
    t.checkpoint("DMA32 managed", z.managed());
    t.checkpoint("DMA32 low", z.wmark(Wmark::Low));
    t.checkpoint("batch", batch);
    t.checkpoint("count after first", pageset(z, cpu).0);
    t.checkpoint("buddy pages taken", free0 - z.free_pages());
    t.step(&format!("{} more allocations", batch - 1));
    let free1 = z.free_pages();
    t.state("before", &pageset_text(z, cpu));
    let mut held = vec![first];
    for _ in 1..batch {
        held.push(alloc(pa, cpu, Gfp::KERNEL, 0).ok_or("alloc failed")?);
    }
    t.state("after", &pageset_text(z, cpu));
    t.explain(
        "all came off the CPU's list: the zone's free count did not move",
        "mm/page_alloc.c rmqueue_pcplist: list_first_entry of pcp->lists[order_to_pindex] with only the pcp spinlock held",
    );
    t.checkpoint("zone free unchanged", z.free_pages() == free1);
    t.step("frees go back to the CPU's list");
    t.state("before", &pageset_text(z, cpu));
    for p in held.drain(..) {
        pa.free_pages(CpuId(cpu), p, Order(0));
    }
    t.state("after", &pageset_text(z, cpu));
    t.explain(
        &format!("{batch} freed pages sit on the CPU's list, below high; the zone still does not see them"),
        "mm/page_alloc.c free_frozen_page_commit: list_add to the pcp list; free_pcppages_bulk only once count ≥ high",
    );
    t.checkpoint("count after frees", pageset(z, cpu).0);
    let (_, high, _) = pageset(z, cpu);
    t.step(&format!("free past high ({high})"));
    let mut many = Vec::new();
    for _ in 0..high + batch {
        many.push(alloc(pa, cpu, Gfp::KERNEL, 0).ok_or("alloc failed")?);
    }
    t.state("before", &pageset_text(z, cpu));
    let mut drained_at = None;
    for (i, p) in many.into_iter().enumerate() {
        let c = pageset(z, cpu).0;
        pa.free_pages(CpuId(cpu), p, Order(0));
        if drained_at.is_none() && pageset(z, cpu).0 <= c {
            drained_at = Some((i + 1, c + 1));
        }
    }
    let (n, at) = drained_at.ok_or("the list never drained")?;
    t.state("after", &pageset_text(z, cpu));
    t.explain(
        &format!("free number {n} brought the count to {at} ≥ high: a batch went back to the buddy lists, coldest first"),
        "mm/page_alloc.c free_frozen_page_commit: if pcp->count >= high, free_pcppages_bulk(zone, nr_pcp_free(...), ...)",
    );
    t.checkpoint("count at first drain", at);
    t.checkpoint("high", high);
    t.step("zoneinfo's pagesets");
    let zi = m.proc("zoneinfo")?;
    let sect = zi
        .split("Node 0, zone")
        .find(|s| s.trim_start().starts_with("DMA32"))
        .unwrap_or("");
    let lines: String = sect
        .lines()
        .skip_while(|l| !l.contains("pagesets"))
        .skip(1)
        .filter(|l| !l.contains("threshold"))
        .take(12)
        .map(|l| format!("{}\n", l.trim()))
        .collect();
    t.state("zoneinfo (DMA32 pagesets)", &lines);
    t.explain(
        "high is clamped between high_min and high_max, both derived from the low watermark; batch from the zone size",
        "mm/page_alloc.c zone_batchsize (managed/1024, ≤ 1 MiB, rounded down to 2^n - 1) and zone_highsize (low watermark / CPUs of the node)",
    );
    Ok(())
}

/// One zone's watermark lines, as zoneinfo prints them.
fn wmark_text(z: &Zone) -> String {
    format!(
        "free {:>6}  min {:>6}  low {:>6}  high {:>6}\n",
        z.free_pages(),
        z.wmark(Wmark::Min),
        z.wmark(Wmark::Low),
        z.wmark(Wmark::High)
    )
}

/// `lmm tour watermarks`: the marks, kswapd's wake at low, GFP_KERNEL
/// failing at min and GFP_ATOMIC going below it.
fn watermarks(t: &mut Tour) -> Result<(), String> {
    t.say(
        "A 1 GiB machine, one CPU. Each zone has three marks: below low the\n\
         allocator wakes kswapd; below min only allocations that may dip into\n\
         the reserve (GFP_ATOMIC, __GFP_HIGH) still succeed.",
    );
    let m = boot_machine(1 << 30, 1)?;
    let pa = &m.pa();
    let z = zone_named(pa, 0, "DMA32")?;
    let dma = zone_named(pa, 0, "DMA")?;
    let s = pa.sysctl();
    t.step("the marks and where they come from");
    let zi = m.proc("zoneinfo")?;
    let sect = zi
        .split("Node 0, zone")
        .find(|s| s.trim_start().starts_with("DMA32"))
        .unwrap_or("");
    let lines = grep(
        sect,
        &[
            "pages free",
            "  min ",
            "  low ",
            "  high ",
            "managed",
            "protection",
        ],
    );
    t.state(
        "sysctl",
        &format!(
            "vm.min_free_kbytes = {}\nvm.watermark_scale_factor = {}\n",
            s.min_free_kbytes, s.watermark_scale_factor
        ),
    );
    t.state("zoneinfo (DMA32)", &lines);
    t.state(
        "zoneinfo (DMA)",
        &grep(
            zi.split("Node 0, zone").nth(1).unwrap_or(""),
            &["protection"],
        ),
    );
    t.explain(
        "min is this zone's share (by managed pages) of min_free_kbytes; low and high add max(min/4, managed × scale/10000) once and twice",
        "mm/page_alloc.c __setup_per_zone_wmarks; DMA's protection row is lowmem_reserve: DMA32's managed pages (at boot) / 256 kept from DMA32-capable allocations",
    );
    t.checkpoint("min_free_kbytes", s.min_free_kbytes);
    t.checkpoint("DMA32 managed", z.managed());
    t.checkpoint(
        "lowmem managed",
        pa.zones()
            .filter(|z| !z.is_highmem())
            .map(|z| z.managed())
            .sum::<u64>(),
    );
    t.checkpoint("DMA32 min", z.wmark(Wmark::Min));
    t.checkpoint("DMA32 low", z.wmark(Wmark::Low));
    t.checkpoint("DMA32 high", z.wmark(Wmark::High));
    t.checkpoint("DMA lowmem_reserve[DMA32]", dma.lowmem_reserve(z.idx));
    t.checkpoint("DMA32 batch", pageset(z, 0).2);
    let gfp_k = Gfp(Gfp::KERNEL.0 | Gfp::NOWARN.0 | Gfp::DMA32.0);
    let mut held = 0u64;
    t.step("GFP_KERNEL allocations down to low: kswapd wakes");
    t.state("before", &wmark_text(z));
    let kswapd = &pa.nodes[0].kswapd;
    let woken = || kswapd.woken.load(std::sync::atomic::Ordering::Relaxed);
    let was = woken();
    while !woken() {
        alloc(pa, 0, gfp_k, 0).ok_or("GFP_KERNEL failed before kswapd woke")?;
        held += 1;
    }
    t.state("after", &wmark_text(z));
    t.explain(
        &format!("after {held} pages the fast path's low-watermark check failed; the slow path woke kswapd and went on at min"),
        "mm/page_alloc.c __alloc_pages_slowpath → wake_all_kswapds, then get_page_from_freelist with ALLOC_WMARK_MIN",
    );
    t.checkpoint("kswapd woken before", was);
    t.checkpoint("kswapd woken", woken());
    t.checkpoint("free at wake", z.free_pages());
    t.step("GFP_KERNEL down to min: it fails");
    t.state("before", &wmark_text(z));
    let mut k = 0u64;
    while alloc(pa, 0, gfp_k, 0).is_some() {
        k += 1;
    }
    t.state("after", &wmark_text(z));
    t.explain(
        &format!("{k} more pages, then the allocation failed: free pages at min may not be taken by GFP_KERNEL"),
        "mm/page_alloc.c __zone_watermark_ok: free - (1 << order) must stay above min + lowmem_reserve; nothing was reclaimable",
    );
    let at_kernel_fail = z.free_pages();
    t.checkpoint("free at GFP_KERNEL failure", at_kernel_fail);
    t.step("GFP_ATOMIC dips below min");
    t.state("before", &wmark_text(z));
    let mut a = 0u64;
    while alloc(pa, 0, Gfp(Gfp::ATOMIC.0 | Gfp::NOWARN.0 | Gfp::DMA32.0), 0).is_some() {
        a += 1;
    }
    t.state("after", &wmark_text(z));
    t.explain(
        &format!("{a} GFP_ATOMIC pages more: the reserve below min is for callers that cannot sleep to reclaim"),
        "mm/page_alloc.c __zone_watermark_ok: ALLOC_MIN_RESERVE (__GFP_HIGH) halves min, ALLOC_NON_BLOCK takes a further quarter",
    );
    t.checkpoint("atomic pages below min", a);
    t.checkpoint("free at GFP_ATOMIC failure", z.free_pages());
    Ok(())
}
