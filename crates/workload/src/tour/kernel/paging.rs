//! Tour topics of kernel virtual memory and address translation: vmalloc,
//! kmap and the page-table walk with the TLB.

use super::{alloc, boot_machine, boot_with, grep, Tour};
use machine::config::MachineConfig;
use machine::machine::Machine;
use mm::arch::pte::{PagingMode, Pte};
use mm::gfp::Gfp;
use mm::page_alloc::CpuId;
use mm::{Order, VirtAddr};

/// An entry's flag bits by their Linux names (`_PAGE_PRESENT` as P, ...).
fn flags(e: Pte) -> String {
    let mut f = Vec::new();
    for (bit, name) in [
        (Pte::P, "P"),
        (Pte::RW, "RW"),
        (Pte::US, "US"),
        (Pte::A, "A"),
        (Pte::D, "D"),
        (Pte::PS, "PS"),
        (Pte::G, "G"),
        (Pte::NX, "NX"),
    ] {
        if e.0 & bit != 0 {
            f.push(name);
        }
    }
    f.join(" ")
}

/// The kernel page-table entry mapping `va` on `m`, as text.
fn kernel_pte(m: &Machine, va: VirtAddr) -> String {
    match m
        .kernel_pt()
        .as_ref()
        .and_then(|pt| pt.lookup(va).map(|r| (r, pt.mode())))
    {
        Some(((e, level), mode)) if e.present() => format!(
            "{} {:#018x} [{}] → pfn {:#x}",
            mode.level_name(level),
            e.0,
            flags(e),
            e.pfn().0
        ),
        _ => "none".into(),
    }
}

/// The vmallocinfo lines of the areas the tour made.
fn tour_areas(m: &Machine) -> Result<String, String> {
    let s = grep(&m.proc("vmallocinfo")?, &["tour"]);
    Ok(if s.is_empty() {
        "(no tour area)\n".into()
    } else {
        s
    })
}

/// `lmm tour vmalloc`.
pub(super) fn vmalloc(t: &mut Tour) -> Result<(), String> {
    t.say(
        "vmalloc gives the kernel virtually contiguous memory made of any free\n\
         pages. A 64 MiB x86-64 machine; a few freed single pages lie\n\
         scattered on the CPU's free list first, as on a machine that has run.",
    );
    let mut m = boot_machine(64 << 20, 1)?;
    let scattered: Vec<_> = (0..12)
        .map(|_| alloc(m.pa(), 0, Gfp::KERNEL, 0).ok_or("alloc failed"))
        .collect::<Result<_, _>>()?;
    for (i, p) in scattered.iter().enumerate() {
        if i % 3 == 0 {
            m.pa().free_pages(CpuId(0), *p, Order(0));
        }
    }
    let (start, end) = (m.vmap_areas().vmalloc_start(), m.vmap_areas().vmalloc_end());
    t.step("vmalloc(5 × 4096)");
    t.state("vmallocinfo before", &tour_areas(&m)?);
    let va = m
        .vmalloc(5 * 4096, false, "tour_vmalloc")
        .map_err(|e| format!("vmalloc: {e}"))?;
    let area = m.vmap_areas().find_vm_area(va).ok_or("no area")?.clone();
    t.state(
        "vmallocinfo after (addresses hashed, as %pK prints them)",
        &tour_areas(&m)?,
    );
    t.explain(
        &format!("an area of {} bytes (5 pages and a guard page) at the lowest free address of [{:#x}, {:#x})", area.size, start.0, end.0),
        "mm/vmalloc.c __get_vm_area_node adds a guard page (unless VM_NO_GUARD); alloc_vmap_area takes the lowest fitting hole",
    );
    t.checkpoint("area address", format!("{:#x}", va.0));
    t.checkpoint("area size", area.size);
    t.checkpoint("vmalloc start", format!("{:#x}", start.0));
    t.step("the pages behind it");
    let pfns: Vec<String> = area.pages.iter().map(|p| format!("{:#x}", p.0)).collect();
    let contiguous = area.pages.windows(2).all(|w| w[1].0 == w[0].0 + 1);
    t.state("vm_struct pages", &format!("{}\n", pfns.join(" ")));
    t.explain(
        "five single pages, each allocated on its own: physically wherever they were free",
        "mm/vmalloc.c __vmalloc_area_node → vm_area_alloc_pages: order-0 pages (alloc_pages_bulk), no contiguity asked",
    );
    t.checkpoint("pages", pfns.join(" "));
    t.checkpoint("physically contiguous", contiguous);
    t.step("the kernel page-table entries it built");
    let mut s = String::new();
    for i in 0..area.pages.len() as u64 + 1 {
        let a = VirtAddr(va.0 + i * 4096);
        s += &format!("{:#x}: {}\n", a.0, kernel_pte(&m, a));
    }
    t.state("PTEs (the last is the guard page)", &s);
    t.explain(
        "one PTE per page with PAGE_KERNEL (present, writable, global, no-execute); the guard page has none",
        "mm/vmalloc.c vmap_pages_range → vmap_pte_range: set_pte_at(&init_mm, ..., mk_pte(page, PAGE_KERNEL))",
    );
    let first = m
        .kernel_pt()
        .as_ref()
        .and_then(|pt| pt.lookup(va))
        .map_or(0, |(e, _)| e.pfn().0);
    t.checkpoint("first PTE pfn", format!("{first:#x}"));
    t.checkpoint("guard PTE", kernel_pte(&m, VirtAddr(va.0 + 5 * 4096)));
    t.step("vfree");
    let flushes = |m: &Machine| m.cpus().iter().map(|c| c.tlb.stats().flushes).sum::<u64>();
    let f0 = flushes(&m);
    m.vfree(va).map_err(|e| format!("vfree: {e}"))?;
    t.state(
        "after",
        &format!(
            "vmallocinfo: {}{:#x}: {}\nTLB flushes: {f0} → {}\n",
            tour_areas(&m)?,
            va.0,
            kernel_pte(&m, va),
            flushes(&m)
        ),
    );
    t.explain(
        "the PTEs were cleared, the kernel range flushed from every CPU's TLB and the pages freed",
        "mm/vmalloc.c vfree → remove_vm_area → vunmap_range; Linux defers the flush (lazy purge past lazy_max_pages), lmm flushes at once",
    );
    t.checkpoint("PTE after vfree", kernel_pte(&m, va));
    t.checkpoint("TLB flushes by vfree", flushes(&m) - f0);
    Ok(())
}

/// `lmm tour kmap`.
pub(super) fn kmap(t: &mut Tour) -> Result<(), String> {
    t.say(
        "A 2 GiB 32-bit x86 machine (no PAE). The kernel maps RAM only up to\n\
         896 MiB at PAGE_OFFSET; a HighMem page has no kernel address until\n\
         kmap gives it one for a while.",
    );
    let mut m = boot_with(
        MachineConfig {
            arch: mm::arch::Arch::X86,
            ..Default::default()
        },
        2 << 30,
        1,
    )?;
    let page_offset = m.pa().page_offset();
    t.step("a lowmem page");
    let low = alloc(m.pa(), 0, Gfp::KERNEL, 0).ok_or("alloc failed")?;
    let la = m
        .page_address(low)
        .ok_or("lowmem page without an address")?;
    t.state(
        "GFP_KERNEL page",
        &format!(
            "pfn {:#x} phys {:#x}; page_address {:#x} = PAGE_OFFSET {page_offset:#x} + phys\ndirect map: {}\n",
            low.0,
            low.0 << 12,
            la.0,
            kernel_pte(&m, la)
        ),
    );
    t.explain(
        "lowmem is permanently mapped (here by a 4 MiB PSE entry): its address is arithmetic, no lookup",
        "arch/x86/include/asm/page.h __va(x) = x + PAGE_OFFSET; lowmem_page_address",
    );
    t.checkpoint("lowmem pfn", format!("{:#x}", low.0));
    t.checkpoint("lowmem address", format!("{:#x}", la.0));
    t.step("a HighMem page");
    let high = alloc(m.pa(), 0, Gfp::HIGHUSER, 0).ok_or("alloc failed")?;
    t.state(
        "GFP_HIGHUSER page",
        &format!(
            "pfn {:#x} phys {:#x}; page_address: {}\n",
            high.0,
            high.0 << 12,
            m.page_address(high)
                .map_or("none (NULL)".into(), |a| format!("{:#x}", a.0))
        ),
    );
    t.explain(
        "PAGE_OFFSET + phys would be past 4 GiB: there is no permanent mapping",
        "mm/highmem.c page_address: a highmem page has an address only while it is in page_address_htable (kmapped)",
    );
    t.checkpoint("highmem pfn", format!("{:#x}", high.0));
    t.checkpoint("highmem page_address", m.page_address(high).is_some());
    t.step("kmap");
    let a = m.kmap(high).map_err(|e| format!("kmap: {e}"))?;
    m.kernel_write(a, b"in high memory")
        .map_err(|e| format!("write: {e}"))?;
    let pkmap_base = m.vmap_areas().layout().pkmap_base.unwrap_or(0);
    t.state(
        "after",
        &format!(
            "kmap → {:#x} (PKMAP_BASE {pkmap_base:#x}, slot {})\nPTE: {}\npage_address: {:#x}\n",
            a.0,
            (a.0 - pkmap_base) >> 12,
            kernel_pte(&m, a),
            m.page_address(high).map_or(0, |v| v.0)
        ),
    );
    t.explain(
        "a free slot of the pkmap window got a PTE for the page; page_address now finds it",
        "mm/highmem.c kmap_high → map_new_virtual: get_next_pkmap_nr, set_pte_at(&init_mm, PKMAP_ADDR(nr), mk_pte(page, kmap_prot))",
    );
    t.checkpoint("kmap address", format!("{:#x}", a.0));
    let pte_pfn = m
        .kernel_pt()
        .as_ref()
        .and_then(|pt| pt.lookup(a))
        .map_or(0, |(e, _)| e.pfn().0);
    t.checkpoint("kmap PTE pfn", format!("{pte_pfn:#x}"));
    t.step("kunmap");
    m.kunmap(high).map_err(|e| format!("kunmap: {e}"))?;
    t.state(
        "after",
        &format!(
            "PTE: {}\npage_address: {:#x}\n",
            kernel_pte(&m, a),
            m.page_address(high).map_or(0, |v| v.0)
        ),
    );
    t.explain(
        "kunmap only drops the count to 1: the mapping stays (no TLB flush) until the slot search wraps",
        "mm/highmem.c kunmap_high: --pkmap_count[nr]; flush_all_zero_pkmaps unmaps count-1 slots in one flush when the pool wraps",
    );
    t.checkpoint("PTE kept after kunmap", kernel_pte(&m, a) != "none");
    t.step("kmap_local_page (kmap_atomic) on CPU 0");
    let b = m
        .kmap_atomic(0, high)
        .map_err(|e| format!("kmap_atomic: {e}"))?;
    let mut buf = [0u8; 14];
    m.kernel_read(b, &mut buf)
        .map_err(|e| format!("read: {e}"))?;
    let during = kernel_pte(&m, b);
    m.kunmap_atomic(0, b)
        .map_err(|e| format!("kunmap_atomic: {e}"))?;
    t.state(
        "mapped",
        &format!(
            "{:#x}: {during}\nreads {:?}\n",
            b.0,
            String::from_utf8_lossy(&buf)
        ),
    );
    t.state(
        "after kunmap_local",
        &format!("{:#x}: {}\n", b.0, kernel_pte(&m, b)),
    );
    t.explain(
        "a per-CPU fixmap slot, taken and released like a stack, with no lock and no shared count",
        "mm/highmem.c __kmap_local_pfn_prot: idx = kmap_local_idx_push(), vaddr = __fix_to_virt(FIX_KMAP_BEGIN + idx + KM_MAX_IDX * cpu)",
    );
    t.checkpoint("kmap_local reads", String::from_utf8_lossy(&buf));
    t.checkpoint("kmap_local PTE after unmap", kernel_pte(&m, b));
    Ok(())
}

/// One entry-by-entry walk of `va` in the page tables rooted at `root`,
/// as the MMU does it: the level's name, the index (from the address
/// bits), the entry and its flags. Returns the text and the indexes.
fn walk(m: &Machine, root: mm::Pfn, mode: PagingMode, va: VirtAddr) -> (String, Vec<usize>) {
    let dm = m.pa().direct_map();
    let mut s = String::new();
    let mut idx = Vec::new();
    let mut table = root;
    for level in (1..=mode.levels()).rev() {
        let i = mode.index(va, level);
        idx.push(i);
        let e = mode.read_entry(dm, mode.entry_pa(table, i));
        s += &format!(
            "{:<4} bits {:>2}-{:<2} index {i:>3}: {:#018x} [{}]\n",
            mode.level_name(level),
            mode.shift(level) + mode.index_bits(level) - 1,
            mode.shift(level),
            e.0,
            flags(e)
        );
        if !e.present() || mode.is_leaf(e, level) {
            break;
        }
        table = e.pfn();
    }
    (s, idx)
}

/// Spawns a process on `m`, maps one anonymous page and writes to it;
/// returns the pid and the page's address.
fn touched_page(m: &mut Machine) -> Result<(u32, u64), String> {
    use mm::mmap::{MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE};
    let pid = m.spawn("walker").map_err(|e| format!("spawn: {e}"))?;
    let a = m
        .sys_mmap(
            pid,
            0,
            4096,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS,
            None,
            0,
        )
        .map_err(|e| format!("mmap: {e}"))?;
    m.store(pid, a, b"walk me")
        .map_err(|e| format!("store: {e}"))?;
    Ok((pid, a))
}

/// `lmm tour pagewalk`.
pub(super) fn pagewalk(t: &mut Tour) -> Result<(), String> {
    t.say(
        "A process maps one anonymous page and writes to it. The MMU turns the\n\
         address into a physical one by indexing one table per level with 9\n\
         bits of the address each, and caches the result in the TLB.",
    );
    let mut m = boot_machine(64 << 20, 1)?;
    let (pid, a) = touched_page(&mut m)?;
    let p = m.processes().get(&pid).ok_or("no process")?;
    let (root, mode) = (p.pt.root(), p.pt.mode());
    t.step(&format!("a 4-level walk of {a:#x}"));
    let (s, idx) = walk(&m, root, mode, VirtAddr(a));
    t.state(&format!("CR3 → pfn {:#x}", root.0), &s);
    t.explain(
        "four tables, each entry pointing to the next; the PTE holds the page's frame with P RW US A D and NX",
        "arch/x86/include/asm/pgtable_64_types.h: PGDIR_SHIFT 39, PUD_SHIFT 30, PMD_SHIFT 21, PAGE_SHIFT 12; 512 entries per table",
    );
    t.checkpoint("address", format!("{a:#x}"));
    t.checkpoint("4-level indexes", format!("{idx:?}"));
    let leaf = p.pt.lookup(VirtAddr(a)).map_or(0, |(e, _)| e.0);
    t.checkpoint("4-level PTE flags", flags(Pte(leaf)));
    let mut m5 = boot_with(
        MachineConfig {
            la57: true,
            ..Default::default()
        },
        64 << 20,
        1,
    )?;
    let (pid5, a5) = touched_page(&mut m5)?;
    let p5 = m5.processes().get(&pid5).ok_or("no process")?;
    t.step(&format!("the same on a 5-level (LA57) machine: {a5:#x}"));
    let (s, idx5) = walk(&m5, p5.pt.root(), p5.pt.mode(), VirtAddr(a5));
    t.state(&format!("CR3 → pfn {:#x}", p5.pt.root().0), &s);
    t.explain(
        "one level more, the P4D: addresses have 57 bits, the PGD is indexed by bits 56-48",
        "arch/x86/include/asm/pgtable_64_types.h with CONFIG_X86_5LEVEL: PGDIR_SHIFT 48, P4D_SHIFT 39; user space below 2^47 unless asked higher",
    );
    t.checkpoint("5-level address", format!("{a5:#x}"));
    t.checkpoint("5-level indexes", format!("{idx5:?}"));
    t.step("a TLB miss, then a hit");
    let cpu = m.processes().get(&pid).map_or(0, |p| p.cpu);
    m.cpu_mut(cpu).flush_all();
    let before = m.cpus()[cpu].tlb.stats();
    m.load(pid, a, 7).map_err(|e| format!("load: {e}"))?;
    let mid = m.cpus()[cpu].tlb.stats();
    let got = m.load(pid, a, 7).map_err(|e| format!("load: {e}"))?;
    let after = m.cpus()[cpu].tlb.stats();
    let row = |s: machine::mmu::TlbStats| {
        format!(
            "hits {:>3}  misses {:>3}  walks {:>3}\n",
            s.hits, s.misses, s.walks
        )
    };
    t.state("after flushing the TLB", &row(before));
    t.state("first load", &row(mid));
    t.state(
        &format!("second load (reads {:?})", String::from_utf8_lossy(&got)),
        &row(after),
    );
    t.explain(
        "the first load missed and walked the four tables; the TLB kept the translation, so the second load hit",
        "the x86 TLB caches leaf translations tagged by PCID; Linux flushes it (flush_tlb_mm_range, INVLPG) when it changes a PTE",
    );
    t.checkpoint("first load misses", mid.misses - before.misses);
    t.checkpoint("first load walks", mid.walks - before.walks);
    t.checkpoint("second load hits", after.hits - mid.hits);
    t.checkpoint("second load misses", after.misses - mid.misses);
    Ok(())
}
