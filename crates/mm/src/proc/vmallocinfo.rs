//! /proc/vmallocinfo: one line per vmalloc/vmap/ioremap area, and the
//! vmalloc lines of /proc/meminfo. Mirrors mm/vmalloc.c
//! (`vmalloc_info_show`, `show_numa_info`, `vmalloc_nr_pages`).
//!
//! Addresses are printed with `%pK`: with kptr_restrict 0 (our machines')
//! that is `%p`, a hash of the pointer, for root too (as in
//! tests/host/vmallocinfo.txt); without a key (`no_hash_pointers`) they are
//! raw. Areas come in address order (one vmap node) and there are never
//! "unpurged vm_area" lines: our vfree flushes at once.

use alloc::string::String;
use alloc::vec;
use core::fmt::Write;

use crate::page_alloc::PageAlloc;
use crate::printk::PtrKey;
use crate::proc::meminfo::MeminfoExtras;
use crate::vmalloc::{VmStruct, Vmalloc, VmallocFlags};

pub use crate::vmalloc::vmalloc_used_kb;

/// Fills meminfo's VmallocTotal and VmallocUsed from `vm`.
pub fn fill_meminfo(vm: &Vmalloc, extras: &mut MeminfoExtras) {
    extras.vmalloc_total_kb = vm.vmalloc_total_kb();
    extras.vmalloc_used_kb = vm.vmalloc_used_kb();
}

/// Renders /proc/vmallocinfo: per area
/// `0x%p-0x%p %7ld` (start, end and size with the guard page), then
/// ` %pS` (the caller tag), ` pages=%d` if it holds pages, ` phys=%pa` for
/// ioremap, the flag words (`ioremap`, `vmalloc`, `vmap`, `user`,
/// `dma-coherent`), ` vpages` if the page array was vmalloc'ed, and
/// ` N<nid>=<pages>` for each node with memory that holds some of its
/// pages.
pub fn render(vm: &Vmalloc, pa: &PageAlloc, key: Option<PtrKey>) -> String {
    let mut s = String::new();
    let w = 2 * vm.ptr_size() as usize;
    let pw = vm.phys_digits();
    let mut counters = vec![0u32; pa.nodes.len()];
    let ptr = |p: u64| key.map_or(p, |k| k.hash(p, vm.ptr_size()));
    for v in vm.areas() {
        let _ = write!(
            s,
            "0x{:0w$x}-0x{:0w$x} {:7}",
            ptr(v.addr.0),
            ptr(v.end().0),
            v.size
        );
        if !v.caller.is_empty() {
            let _ = write!(s, " {}", v.caller);
        }
        if v.nr_pages() > 0 {
            let _ = write!(s, " pages={}", v.nr_pages());
        }
        if let Some(p) = v.phys_addr.filter(|p| p.0 != 0) {
            let _ = write!(s, " phys=0x{:0pw$x}", p.0);
        }
        for (flag, word) in [
            (VmallocFlags::IOREMAP, " ioremap"),
            (VmallocFlags::ALLOC, " vmalloc"),
            (VmallocFlags::MAP, " vmap"),
            (VmallocFlags::USERMAP, " user"),
            (VmallocFlags::DMA_COHERENT, " dma-coherent"),
        ] {
            if v.flags.contains(flag) {
                s.push_str(word);
            }
        }
        if v.pages_array.is_some() {
            s.push_str(" vpages");
        }
        show_numa_info(&mut s, v, pa, &mut counters);
        s.push('\n');
    }
    s
}

/// ` N%u=%u` for each node with memory (N_HIGH_MEMORY), in node order,
/// that holds pages of `v`.
fn show_numa_info(s: &mut String, v: &VmStruct, pa: &PageAlloc, counters: &mut [u32]) {
    if v.flags.contains(VmallocFlags::UNINITIALIZED) {
        return;
    }
    counters.iter_mut().for_each(|c| *c = 0);
    for &pfn in &v.pages {
        if let Some(page) = pa.page(pfn) {
            if let Some(c) = counters.get_mut(page.nid() as usize) {
                *c += 1;
            }
        }
    }
    for node in &pa.nodes {
        let has_memory = node.zones.iter().any(|z| z.is_populated());
        let n = counters[node.nid as usize];
        if has_memory && n > 0 {
            let _ = write!(s, " N{}={}", node.nid, n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::pte::PteFlags;
    use crate::arch::Arch;
    use crate::gfp::Gfp;
    use crate::page_alloc::CpuId;
    use crate::proc::testing::host;
    use crate::types::{Order, PhysAddr, PAGE_SIZE};
    use crate::vmalloc::tests::env;
    use alloc::vec::Vec;

    const GOLDEN: &str = "\
0xffffc90000000000-0xffffc90000005000   20480 kernel_clone+0x94/0x3e0 pages=4 vmalloc N0=4
0xffffc90000005000-0xffffc9000000a000   20480 irq_init_percpu_irqstack+0xca/0x100 vmap
0xffffc9000000a000-0xffffc9000000d000   12288 htab_map_alloc+0x2e4/0x5a0 pages=2 vmalloc N0=2
0xffffc90000100000-0xffffc90000201000 1052672 pci_mmcfg_arch_map+0x2b/0x60 phys=0x00000000eec00000 ioremap
0xffffc90000201000-0xffffc90000403000 2105344 htab_map_alloc+0x2e4/0x5a0 pages=513 vmalloc vpages N0=513
";

    #[test]
    fn golden_sizes_follow_linux_formulas() {
        // Each area of GOLDEN is what it maps plus one guard page
        // (__get_vm_area_node adds PAGE_SIZE unless VM_NO_GUARD), the size
        // column is end - start, and the first area starts at x86-64's
        // 4-level VMALLOC_START (0xffffc90000000000, no KASLR). Mapped
        // pages: `pages=N` of a vmalloc, 4 for the vmap, 1 MiB for the
        // ioremap.
        let mapped = [4, 4, 2, 256, 513];
        let mut first = true;
        for (line, pages) in GOLDEN.lines().zip(mapped) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (s, e) = f[0].split_once('-').unwrap();
            let hex = |v: &str| u64::from_str_radix(v.trim_start_matches("0x"), 16).unwrap();
            let size: u64 = f[1].parse().unwrap();
            assert_eq!(hex(e) - hex(s), size, "{line}");
            assert_eq!(size, (pages + 1) * PAGE_SIZE, "{line}");
            if let Some(n) = f.iter().find_map(|w| w.strip_prefix("pages=")) {
                assert_eq!(n.parse::<u64>().unwrap(), pages, "{line}");
            }
            if first {
                assert_eq!(hex(s), 0xffff_c900_0000_0000);
                first = false;
            }
        }
    }

    #[test]
    fn golden_and_columns_match_linux() {
        let mut e = env(Arch::X86_64, 64 << 20);
        let pa = &e.m.pa;
        let cpu = CpuId(0);
        e.vm.vmalloc(pa, &mut e.pt, cpu, 4 * PAGE_SIZE, "kernel_clone+0x94/0x3e0")
            .unwrap();
        // The 1 MiB PCI ECAM window: aligned to its size (x86-64's
        // IOREMAP_MAX_ORDER is 1 GiB).
        let io =
            e.vm.ioremap(
                pa,
                &mut e.pt,
                cpu,
                PhysAddr(0xeec0_0000),
                1 << 20,
                "pci_mmcfg_arch_map+0x2b/0x60",
            )
            .unwrap();
        assert_eq!(io.0, 0xffff_c900_0010_0000);
        let pages: Vec<_> = (0..4)
            .map(|_| pa.alloc_pages(cpu, Gfp::KERNEL, Order(0)).unwrap())
            .collect();
        e.vm.vmap(
            pa,
            &mut e.pt,
            cpu,
            &pages,
            VmallocFlags::MAP,
            PteFlags::KERNEL,
            "irq_init_percpu_irqstack+0xca/0x100",
        )
        .unwrap();
        // 513 pages: the page array (4104 bytes) is itself vmalloc'ed.
        e.vm.vmalloc(
            pa,
            &mut e.pt,
            cpu,
            513 * PAGE_SIZE,
            "htab_map_alloc+0x2e4/0x5a0",
        )
        .unwrap();
        let ours = render(&e.vm, pa, None);
        assert_eq!(ours, GOLDEN);

        // Every line, past its two addresses, is a line of the host's file:
        // same size column, words and order.
        let sample = host("vmallocinfo.txt");
        let tails: Vec<&str> = sample.lines().map(|l| &l[37..]).collect();
        for line in ours.lines() {
            assert!(
                tails.contains(&&line[37..]),
                "not in the host sample: {line}"
            );
            let t = crate::proc::testing::token_ends(line);
            let h = crate::proc::testing::token_ends(sample.lines().next().unwrap());
            assert_eq!(t[..2], h[..2], "address and size columns: {line}");
        }

        // meminfo: 4 + 513 + 2 pages.
        let mut ex = crate::proc::meminfo::MeminfoExtras::for_arch(Arch::X86_64);
        fill_meminfo(&e.vm, &mut ex);
        assert_eq!(ex.vmalloc_used_kb, 519 * 4);
        assert_eq!(vmalloc_used_kb(&e.vm), 519 * 4);
        assert_eq!(
            ex.vmalloc_total_kb,
            crate::proc::meminfo::X86_64_VMALLOC_TOTAL_KB
        );
        let mi = crate::proc::meminfo::render(pa, &ex);
        assert!(mi.contains("VmallocUsed:        2076 kB\n"), "{mi}");
    }

    #[test]
    fn pae_prints_32_bit_pointers_and_64_bit_phys() {
        let mut e = env(Arch::X86Pae, 1 << 30);
        let pa = &e.m.pa;
        let a =
            e.vm.vmalloc(pa, &mut e.pt, CpuId(0), 100, "f+0x1/0x2")
                .unwrap();
        e.vm.ioremap(
            pa,
            &mut e.pt,
            CpuId(0),
            PhysAddr(0xfebf_f000),
            16,
            "g+0x1/0x2",
        )
        .unwrap();
        let s = render(&e.vm, pa, None);
        let start = e.vm.vmalloc_start().0;
        let want = alloc::format!(
            "0x{:08x}-0x{:08x}    8192 f+0x1/0x2 pages=1 vmalloc N0=1\n\
             0x{:08x}-0x{:08x}    8192 g+0x1/0x2 phys=0x00000000febff000 ioremap\n",
            start,
            start + 0x2000,
            start + 0x2000,
            start + 0x4000
        );
        assert_eq!(s, want);
        assert_eq!(a.0, start);
        let mut ex = crate::proc::meminfo::MeminfoExtras::for_arch(Arch::X86Pae);
        fill_meminfo(&e.vm, &mut ex);
        assert_eq!(
            ex.vmalloc_total_kb,
            (e.vm.layout().vmalloc_end - start) >> 10
        );
        assert_eq!(ex.vmalloc_used_kb, 4);
    }
}
