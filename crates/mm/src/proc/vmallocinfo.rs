//! /proc/vmallocinfo: one line per vmalloc/vmap/ioremap area, and the
//! vmalloc lines of /proc/meminfo. Mirrors mm/vmalloc.c
//! (`vmalloc_info_show`, `show_numa_info`, `vmalloc_nr_pages`).
//!
//! Addresses are printed as root sees them with `no_hash_pointers` (a
//! non-root reader of the real file sees hashed values, as in
//! tests/host/vmallocinfo.txt). Areas come in address order (one vmap node)
//! and there are never "unpurged vm_area" lines: our vfree flushes at once.

use alloc::string::String;
use alloc::vec;
use core::fmt::Write;

use crate::page_alloc::PageAlloc;
use crate::proc::meminfo::MeminfoExtras;
use crate::vmalloc::{VmFlags, VmStruct, Vmalloc};

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
pub fn render(vm: &Vmalloc, pa: &PageAlloc) -> String {
    let mut s = String::new();
    let w = 2 * vm.ptr_size() as usize;
    let pw = vm.phys_digits();
    let mut counters = vec![0u32; pa.nodes.len()];
    for v in vm.areas() {
        let _ = write!(
            s,
            "0x{:0w$x}-0x{:0w$x} {:7}",
            v.addr.0,
            v.end().0,
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
            (VmFlags::IOREMAP, " ioremap"),
            (VmFlags::ALLOC, " vmalloc"),
            (VmFlags::MAP, " vmap"),
            (VmFlags::USERMAP, " user"),
            (VmFlags::DMA_COHERENT, " dma-coherent"),
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
    if v.flags.contains(VmFlags::UNINITIALIZED) {
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
