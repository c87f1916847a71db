//! The kernel topics of `lmm tour`: each topic's checkpoints against values
//! derived here from Linux's rules (the source of each formula is cited),
//! its output deterministic, and every step closed by its what/why lines.

use workload::tour::{self, Tour};

/// The kernel topics, in the order `lmm tour` lists them.
const KERNEL_TOPICS: [&str; 12] = [
    "boot",
    "zones",
    "numa",
    "buddy",
    "pcp",
    "watermarks",
    "slab",
    "kmalloc",
    "mempool",
    "vmalloc",
    "kmap",
    "pagewalk",
];

/// Runs topic `name` twice, checks the two narrations are the same bytes
/// and that every step has its what and why lines; returns the first run.
fn run(name: &str) -> Tour {
    let topic = tour::topic(name).unwrap_or_else(|| panic!("no topic {name}"));
    let a = tour::run(topic).unwrap_or_else(|e| panic!("{e}"));
    let b = tour::run(topic).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        a.text(),
        b.text(),
        "{name}: the output is not deterministic"
    );
    let steps: Vec<&str> = a.text().split("── step ").skip(1).collect();
    assert!(steps.len() >= 3, "{name}: {} steps", steps.len());
    for (i, s) in steps.iter().enumerate() {
        assert!(
            s.starts_with(&format!("{}: ", i + 1)),
            "{name}: step {} is numbered {s:.10}",
            i + 1
        );
        assert_eq!(
            s.matches("\n   what: ").count(),
            1,
            "{name} step {}: one what line",
            i + 1
        );
        assert_eq!(
            s.matches("\n   why:  ").count(),
            1,
            "{name} step {}: one why line",
            i + 1
        );
    }
    let lines = a.text().lines().count();
    assert!(lines <= 100, "{name}: {lines} lines is not short");
    a
}

/// The value of checkpoint `name`.
fn val<'a>(t: &'a Tour, name: &str) -> &'a str {
    t.value(name)
        .unwrap_or_else(|| panic!("no checkpoint {name:?}"))
}

/// Checkpoint `name` as a number (decimal or 0x hex).
fn num(t: &Tour, name: &str) -> u64 {
    let v = val(t, name);
    match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => v.parse(),
    }
    .unwrap_or_else(|_| panic!("{name} = {v} is not a number"))
}

/// mm/page_alloc.c zone_batchsize: managed/1024 capped at 1 MiB of pages,
/// a quarter of that, then rounddown_pow_of_two(batch + batch/2) - 1.
fn zone_batchsize(managed: u64) -> u64 {
    let batch = (managed / 1024).min((1 << 20) / 4096) / 4;
    if batch == 0 {
        return 1;
    }
    let b = batch + batch / 2;
    (1u64 << (63 - b.leading_zeros())) - 1
}

#[test]
fn every_kernel_topic_runs_in_the_textbook_order() {
    let names: Vec<&str> = tour::topics().iter().map(|t| t.name).collect();
    assert_eq!(&names[..KERNEL_TOPICS.len()], &KERNEL_TOPICS[..]);
    for name in KERNEL_TOPICS {
        let topic = tour::topic(name).expect("listed");
        let t = tour::run(topic).unwrap_or_else(|e| panic!("{e}"));
        assert!(!t.checkpoints().is_empty(), "{name} records checkpoints");
    }
}

#[test]
fn boot() {
    let t = run("boot");
    // e820 on 64 MiB: usable [0, 0x9fc00) and [1 MiB, 64 MiB); page 0 and
    // [0xa0000, 1 MiB) are trimmed (arch/x86/kernel/e820.c).
    assert_eq!(
        num(&t, "memblock.memory bytes"),
        (0x9fc00 - 0x1000) + ((64 << 20) - (1 << 20))
    );
    assert_eq!(num(&t, "memblock.memory regions"), 2);
    // The first MiB and the kernel image, adjacent, merge into one region.
    let img = machine::machine::kernel_image(mm::arch::Arch::X86_64, 64 << 20);
    assert_eq!(img.start.0, 1 << 20);
    assert_eq!(
        num(&t, "reserved[0] end"),
        (img.start.0 + img.size()).next_multiple_of(4096)
    );
    // SPARSEMEM_VMEMMAP: one section (128 MiB, SECTION_SIZE_BITS 27) of
    // struct pages (64 bytes each) = 2 MiB.
    assert_eq!(num(&t, "memmap bytes"), ((1u64 << 27) / 4096) * 64);
    // The hash tables memblock holds are the two the log announces.
    let hash_bytes: u64 = t
        .text()
        .lines()
        .filter(|l| l.contains("hash table entries"))
        .map(|l| {
            l.split(", ")
                .nth(1)
                .and_then(|b| b.split(' ').next())
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    let from_dmesg = t.text().contains("Dentry cache hash table");
    if from_dmesg {
        assert_eq!(num(&t, "hash table bytes"), hash_bytes);
    } else {
        // dentry 8192 + inode 4096 buckets of 8 bytes on this machine's log.
        assert_eq!(num(&t, "hash table bytes"), 8192 * 8 + 4096 * 8);
    }
    // DMA: pfn 1..0x9f and 0x100..0x1000; DMA32: 16 MiB..64 MiB.
    assert_eq!(num(&t, "DMA present pages"), (0x9f - 1) + (0x1000 - 0x100));
    assert_eq!(num(&t, "DMA32 present pages"), (48 << 20) / 4096);
    // mem_init_print_info: physpages = present pages; reserved = physpages
    // - totalram at that point (before kernel_init freed initmem).
    let phys = (0x9f - 1 + 0x3f00) * 4;
    assert_eq!(num(&t, "physpages KiB"), phys);
    let initmem: u64 = t
        .text()
        .lines()
        .find(|l| l.contains("(initmem) memory: "))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|k| k.trim_end_matches('K').parse().ok())
        .expect("initmem line");
    assert_eq!(
        num(&t, "reserved KiB"),
        phys - (num(&t, "totalram_pages") * 4 - initmem)
    );
    assert!(num(&t, "available KiB") < phys - num(&t, "reserved KiB") + 1);
    // The buddyinfo printed adds up to nr_free_pages: sum of count << order.
    let free: u64 = t
        .text()
        .lines()
        .filter(|l| l.contains("Node 0, zone"))
        .map(|l| {
            l.split_whitespace()
                .skip(4)
                .enumerate()
                .map(|(o, n)| n.parse::<u64>().unwrap() << o)
                .sum::<u64>()
        })
        .sum();
    assert_eq!(num(&t, "nr_free_pages"), free);
}

#[test]
fn zones() {
    let t = run("zones");
    // arch/x86/mm/init.c zone_sizes_init: MAX_DMA32_PFN = 4 GiB >> 12.
    assert_eq!(num(&t, "x86-64 DMA32 end pfn"), (4u64 << 30) >> 12);
    assert_eq!(num(&t, "x86-64 Normal start pfn"), (4u64 << 30) >> 12);
    // 32-bit: MAXMEM = 896 MiB (1 GiB of kernel space less 128 MiB).
    assert_eq!(num(&t, "x86 HighMem start pfn"), (896u64 << 20) >> 12);
    // GFP_ZONE_TABLE: the highest zone each may use, and the allocation
    // came from it while it had room.
    for (k, z) in [
        ("x86-64 GFP_KERNEL got", "Normal"),
        ("x86-64 GFP_DMA32 got", "DMA32"),
        ("x86-64 GFP_DMA got", "DMA"),
        ("x86-64 GFP_HIGHUSER got", "Normal"),
        ("x86 GFP_KERNEL got", "Normal"),
        ("x86 GFP_DMA got", "DMA"),
        ("x86 GFP_HIGHUSER got", "HighMem"),
    ] {
        assert_eq!(val(&t, k), z, "{k}");
    }
    assert!(t.text().contains("GFP_DMA       may use DMA "));
    assert!(t
        .text()
        .contains("GFP_HIGHUSER  may use HighMem → Normal → DMA"));
}

#[test]
fn numa() {
    let t = run("numa");
    // include/linux/topology.h REMOTE_DISTANCE.
    assert_eq!(num(&t, "distance 0→1"), 20);
    // CPUs are spread over the nodes: CPU 1 of 2 is on node 1.
    assert_eq!(num(&t, "node 1 cpu"), 1);
    assert_eq!(num(&t, "node 1 zonelist starts on node"), 1);
    assert_eq!(num(&t, "cpu 0 page node"), 0);
    assert_eq!(num(&t, "cpu 1 page node"), 1);
    assert_eq!(num(&t, "fallback page node"), 0);
    // __zone_watermark_ok for order 9: free - (2^9 - 1) must stay above
    // low, so the zone is passed over once free < low + 512; until then
    // its own blocks were used (at least one: it started far above low).
    let free = num(&t, "node 1 DMA32 free at fallback");
    let low = num(&t, "node 1 DMA32 low");
    assert!(free < low + 512, "free {free}, low {low}");
    assert!(num(&t, "node 1 blocks before fallback") > 0);
    assert!(t.text().contains("node 1: 1/DMA32 → 0/DMA32 → 0/DMA"));
}

#[test]
fn buddy() {
    let t = run("buddy");
    assert!(
        num(&t, "smallest free order before") > 0,
        "no order-0 block to take as is"
    );
    let before: Vec<u64> = val(&t, "free blocks per order after free")
        .split(' ')
        .map(|n| n.parse().unwrap())
        .collect();
    let after: Vec<u64> = val(&t, "free blocks per order after")
        .split(' ')
        .map(|n| n.parse().unwrap())
        .collect();
    // mm/page_alloc.c __rmqueue_fallback: with no free block of the
    // request's (unmovable) type, the largest free block is claimed.
    let split = before.iter().rposition(|&n| n > 0).unwrap();
    assert_eq!(num(&t, "split order"), split as u64);
    let pfn = num(&t, "allocated pfn");
    // The first page of the split block is handed out: aligned to its size.
    assert!(pfn.is_multiple_of(1 << split));
    // expand(): one new free block at each order below the split one.
    for o in 0..before.len() {
        let want = match o {
            o if o < split => before[o] + 1,
            o if o == split => before[o] - 1,
            _ => before[o],
        };
        assert_eq!(after[o], want, "order {o}");
    }
    // mm/internal.h __find_buddy_pfn: pfn ^ (1 << order).
    assert_eq!(num(&t, "order-0 buddy"), pfn ^ 1);
    for o in 0..split {
        let line = format!(
            "order {o}: buddy of {pfn:#x} is {pfn:#x} ^ {:#x} = {:#x}, free: true",
            1 << o,
            pfn ^ (1 << o)
        );
        assert!(t.text().contains(&line), "{line}");
    }
    assert_eq!(val(&t, "restored"), "true");
}

#[test]
fn pcp() {
    let t = run("pcp");
    let batch = num(&t, "batch");
    assert_eq!(batch, zone_batchsize(num(&t, "DMA32 managed")));
    // rmqueue_bulk takes a batch; one page is handed out.
    assert_eq!(num(&t, "buddy pages taken"), batch);
    assert_eq!(num(&t, "count after first"), batch - 1);
    assert_eq!(val(&t, "zone free unchanged"), "true");
    assert_eq!(num(&t, "count after frees"), batch);
    // zone_highsize: the low watermark split over the node's 2 CPUs, at
    // least 4 batches; the first drain happens when count reaches high.
    let high = (num(&t, "DMA32 low") / 2).max(batch * 4);
    assert_eq!(num(&t, "high"), high);
    assert_eq!(num(&t, "count at first drain"), high);
}

#[test]
fn watermarks() {
    let t = run("watermarks");
    let lowmem = num(&t, "lowmem managed");
    let managed = num(&t, "DMA32 managed");
    // mm/khugepaged.c set_recommended_min_free_kbytes: 2 pageblocks (512
    // pages) per populated zone (DMA, DMA32) plus 512 × 3 × 3 per zone,
    // at most 5% of lowmem; above init_per_zone_wmark_min's
    // int_sqrt(lowmem_kbytes * 16).
    let recommended = ((512 * 2 * 2 + 512 * 2 * 9) as u64).min(lowmem / 20) * 4;
    let sqrt = ((lowmem * 4 * 16) as f64).sqrt() as u64;
    assert_eq!(num(&t, "min_free_kbytes"), recommended.max(sqrt));
    // __setup_per_zone_wmarks: min is the zone's share of pages_min (within
    // the pages freed after the marks were set at boot).
    let min = num(&t, "DMA32 min");
    let share = (num(&t, "min_free_kbytes") / 4) * managed / lowmem;
    assert!(
        min.abs_diff(share) <= share / 200,
        "min {min} vs share {share}"
    );
    let step = (min / 4).max(managed * 10 / 10000);
    assert!((num(&t, "DMA32 low") - min).abs_diff(step) <= 1);
    assert!((num(&t, "DMA32 high") - num(&t, "DMA32 low")).abs_diff(step) <= 1);
    // lowmem_reserve_ratio[DMA] = 256.
    let reserve = num(&t, "DMA lowmem_reserve[DMA32]");
    assert!(
        reserve.abs_diff(managed / 256) <= managed / 256 / 50,
        "{reserve}"
    );
    let batch = num(&t, "DMA32 batch");
    assert_eq!(batch, zone_batchsize(managed));
    assert_eq!(val(&t, "kswapd woken before"), "false");
    assert_eq!(val(&t, "kswapd woken"), "true");
    // The wake comes with the first allocation that fails the low mark;
    // the buddy count moves a pcp batch at a time.
    let low = num(&t, "DMA32 low");
    let wake = num(&t, "free at wake");
    assert!(
        wake < low && wake + batch + 1 >= low,
        "wake at {wake}, low {low}"
    );
    let kfail = num(&t, "free at GFP_KERNEL failure");
    assert!(
        kfail <= min && kfail + batch + 1 >= min,
        "GFP_KERNEL stopped at {kfail}"
    );
    // __zone_watermark_ok: ALLOC_MIN_RESERVE takes min/2, ALLOC_NON_BLOCK a
    // further quarter of what is left.
    let m1 = min - min / 2;
    let floor = m1 - m1 / 4;
    let afail = num(&t, "free at GFP_ATOMIC failure");
    assert!(
        afail <= floor && afail + batch + 1 >= floor,
        "GFP_ATOMIC stopped at {afail}, floor {floor}"
    );
    assert!(num(&t, "atomic pages below min") > 0);
}

#[test]
fn slab() {
    let t = run("slab");
    // mm/slub.c calc_slab_order: the smallest order holding min_objects =
    // 4 × (fls(1 CPU) + 1) = 8 objects of 1000 bytes.
    let order = (0..4).find(|o| (4096u64 << o) / 1000 >= 8).unwrap();
    assert_eq!(num(&t, "SLUB slab order"), order);
    assert_eq!(num(&t, "SLUB objects per slab"), (4096 << order) / 1000);
    assert_eq!(num(&t, "SLUB colours"), 0);
    // mm/slab.c: an order-0 slab of 4 objects; the 96 bytes left over make
    // one colour of cache_line_size (64).
    assert_eq!(num(&t, "SLAB slab order"), 0);
    assert_eq!(num(&t, "SLAB objects per slab"), 4096 / 1000);
    assert_eq!(num(&t, "SLAB colours"), (4096 - 4 * 1000) / 64);
    for (kind, per) in [("SLUB", (4096u64 << order) / 1000), ("SLAB", 4)] {
        let slabs = |w: &str| num(&t, &format!("{kind} slabs {w}"));
        let in_use = |w: &str| val(&t, &format!("{kind} in use {w}")).to_string();
        assert_eq!(slabs("after first"), 1);
        assert!(in_use("after first").ends_with(": 1"));
        assert_eq!(slabs("after fill"), 2);
        let fill = in_use("after fill");
        let parts: Vec<&str> = fill.split(", ").collect();
        assert_eq!(parts.len(), 2, "{fill}");
        assert!(
            parts[0].ends_with(&format!(": {per}")),
            "{kind}: the first slab full: {fill}"
        );
        assert!(parts[1].ends_with(": 1"), "{fill}");
        let half = in_use("after half");
        assert!(
            half.starts_with(parts[0].split(':').next().unwrap()),
            "{half}"
        );
        assert!(
            half.contains(&format!(": {}, ", per - per / 2)),
            "{kind}: partial: {half}"
        );
        assert_eq!(slabs("after shrink"), 0);
        assert_eq!(in_use("after shrink"), "none");
    }
}

/// mm/slab_common.c kmalloc_info: the class serving `size` bytes (8 to
/// 8 KiB, powers of two plus 96 and 192), or None above
/// KMALLOC_MAX_CACHE_SIZE.
fn kmalloc_class(size: u64) -> Option<u64> {
    if size > 8192 {
        return None;
    }
    let pow = size.next_power_of_two().max(8);
    Some(match size {
        65..=96 => 96,
        129..=192 => 192,
        _ => pow,
    })
}

#[test]
fn kmalloc() {
    let t = run("kmalloc");
    for size in [1u64, 8, 9, 96, 100, 192, 200, 4096, 8193] {
        let want = match kmalloc_class(size) {
            Some(c) if c >= 1024 => format!("kmalloc-{}k ksize {c}", c / 1024),
            Some(c) => format!("kmalloc-{c} ksize {c}"),
            // get_order(8193) = 2: 16 KiB.
            None => format!("page allocator ksize {}", 4096u64 << 2),
        };
        assert_eq!(val(&t, &format!("kmalloc({size})")), want);
    }
    assert_eq!(num(&t, "large order"), 2);
    assert_eq!(num(&t, "pages back"), 1 << 2);
}

#[test]
fn mempool() {
    let t = run("mempool");
    assert_eq!(num(&t, "curr_nr after create"), 4);
    assert_eq!(val(&t, "direct alloc failed"), "true");
    assert_eq!(num(&t, "curr_nr after reserve alloc"), 3);
    assert_eq!(num(&t, "curr_nr after first free"), 4);
    assert_eq!(num(&t, "curr_nr after second free"), 4);
    assert_eq!(num(&t, "pages returned"), 1);
}

#[test]
fn vmalloc() {
    let t = run("vmalloc");
    // Documentation/arch/x86/x86_64/mm.rst: vmalloc space starts at
    // ffffc90000000000 with 4-level paging; the only area before the tour's
    // is the one CPU's IRQ stack (IRQ_STACK_SIZE 16 KiB and a guard page).
    assert_eq!(num(&t, "vmalloc start"), 0xffff_c900_0000_0000);
    assert_eq!(
        num(&t, "area address"),
        0xffff_c900_0000_0000 + 16384 + 4096
    );
    assert_eq!(num(&t, "area size"), 6 * 4096);
    let pages: Vec<&str> = val(&t, "pages").split(' ').collect();
    assert_eq!(pages.len(), 5);
    assert_eq!(val(&t, "physically contiguous"), "false");
    assert_eq!(val(&t, "first PTE pfn"), pages[0]);
    assert_eq!(val(&t, "guard PTE"), "none");
    assert_eq!(val(&t, "PTE after vfree"), "none");
    assert!(num(&t, "TLB flushes by vfree") >= 1);
}

#[test]
fn kmap() {
    let t = run("kmap");
    // __va: PAGE_OFFSET 0xc0000000 (3G/1G split) + phys.
    assert_eq!(
        num(&t, "lowmem address"),
        0xc000_0000 + (num(&t, "lowmem pfn") << 12)
    );
    let high = num(&t, "highmem pfn");
    assert!(high >= (896 << 20) >> 12);
    assert_eq!(val(&t, "highmem page_address"), "false");
    // LAST_PKMAP = 1024 without PAE (arch/x86/include/asm/pgtable_32_areas.h).
    let base = t
        .text()
        .split("PKMAP_BASE ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|h| u64::from_str_radix(h.trim_start_matches("0x"), 16).ok())
        .expect("PKMAP_BASE printed");
    let a = num(&t, "kmap address");
    assert!(
        a >= base && a < base + 1024 * 4096 && a.is_multiple_of(4096),
        "{a:#x}"
    );
    assert_eq!(num(&t, "kmap PTE pfn"), high);
    assert_eq!(val(&t, "PTE kept after kunmap"), "true");
    assert_eq!(val(&t, "kmap_local reads"), "in high memory");
    assert_eq!(val(&t, "kmap_local PTE after unmap"), "none");
}

#[test]
fn pagewalk() {
    let t = run("pagewalk");
    // Each level indexes 9 bits: PAGE_SHIFT 12, then 21, 30, 39 (and 48
    // with LA57).
    let idx = |a: u64, shifts: &[u32]| {
        format!(
            "{:?}",
            shifts
                .iter()
                .map(|s| ((a >> s) & 511) as usize)
                .collect::<Vec<_>>()
        )
    };
    let a = num(&t, "address");
    assert_eq!(val(&t, "4-level indexes"), idx(a, &[39, 30, 21, 12]));
    let a5 = num(&t, "5-level address");
    assert_eq!(val(&t, "5-level indexes"), idx(a5, &[48, 39, 30, 21, 12]));
    // A written anonymous page: present, writable, user, accessed, dirty,
    // not executable.
    assert_eq!(val(&t, "4-level PTE flags"), "P RW US A D NX");
    assert_eq!(num(&t, "first load misses"), 1);
    assert_eq!(num(&t, "first load walks"), 1);
    assert_eq!(num(&t, "second load hits"), 1);
    assert_eq!(num(&t, "second load misses"), 0);
}
