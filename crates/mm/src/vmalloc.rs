//! vmalloc, vmap and ioremap: virtually contiguous kernel mappings in the
//! vmalloc area, of physically scattered pages or of device memory, each
//! followed by a guard page. Mirrors mm/vmalloc.c and arch/x86/mm/ioremap.c.
//!
//! The allocator keeps the busy areas (`vm_struct`s, keyed by address) and
//! the free ranges of the kernel virtual address space in two ordered maps
//! and picks the lowest-addressed free block that fits with the requested
//! alignment, as Linux's `__alloc_vmap_area` does (Linux finds it in
//! O(log n) with an augmented rbtree; here the scan is linear in the number
//! of free ranges below the fit).
//!
//! Simplifications, each said where it matters:
//! - TLB flushing is immediate: `vfree`, `vunmap` and `iounmap` call the
//!   caller's flush callback on the freed range before the address range or
//!   the page tables are reused. Linux defers this (lazy purge of up to
//!   `lazy_max_pages`, the "unpurged vm_area" lines of /proc/vmallocinfo);
//!   we never have unpurged areas.
//! - Page tables that become empty when an area goes are freed (after the
//!   flush), so vfree gives back every frame vmalloc took; Linux keeps the
//!   vmalloc area's tables for good.
//! - One vmap node: /proc/vmallocinfo lists areas in address order.
//! - A page array of more than a page goes to a nested vmalloc (the
//!   "vpages" of vmallocinfo), as Linux does; smaller ones would come from
//!   kmalloc and are not accounted here (they live in host memory).
//! - No huge vmalloc mappings (`vmalloc_huge`, VM_ALLOW_HUGE_VMAP), no
//!   vm_map_ram, no KASAN shadow.
//! - `vmalloc_node(nid)` allocates on behalf of a CPU of node `nid` (the
//!   allocator has no node argument), so pages come from that node's
//!   zonelist.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use crate::arch::layout::AddressSpaceLayout;
use crate::arch::pte::{PagingMode, Pte, PteFlags};
use crate::errno::Errno;
use crate::gfp::Gfp;
use crate::memmap::PageFlags;
use crate::page_alloc::{CpuId, PageAlloc};
use crate::pgalloc::PgtableFrames;
use crate::pgtable::PageTable;
use crate::types::{Order, Pfn, PhysAddr, VirtAddr, PAGE_SHIFT, PAGE_SIZE};

/// Flags of a `vm_struct` (`VM_*`, include/linux/vmalloc.h, same values).
#[derive(Copy, Clone, Default, PartialEq, Eq, Hash)]
pub struct VmFlags(pub u32);

impl VmFlags {
    /// No flags.
    pub const EMPTY: VmFlags = VmFlags(0);
    /// ioremap() and friends.
    pub const IOREMAP: VmFlags = VmFlags(0x1);
    /// vmalloc(): the area owns its pages.
    pub const ALLOC: VmFlags = VmFlags(0x2);
    /// vmap() of pages the caller owns.
    pub const MAP: VmFlags = VmFlags(0x4);
    /// Suitable for remap_vmalloc_range (vmalloc_user).
    pub const USERMAP: VmFlags = VmFlags(0x8);
    /// dma_alloc_coherent.
    pub const DMA_COHERENT: VmFlags = VmFlags(0x10);
    /// The area is being set up (its pages are not all there yet).
    pub const UNINITIALIZED: VmFlags = VmFlags(0x20);
    /// No guard page after the area.
    pub const NO_GUARD: VmFlags = VmFlags(0x40);
    /// vmap() hands its pages to the area: vfree frees them.
    pub const MAP_PUT_PAGES: VmFlags = VmFlags(0x200);

    /// True if every flag of `other` is set.
    pub const fn contains(self, other: VmFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// Union.
    pub const fn union(self, other: VmFlags) -> VmFlags {
        VmFlags(self.0 | other.0)
    }
    /// `self` without `other`.
    pub const fn difference(self, other: VmFlags) -> VmFlags {
        VmFlags(self.0 & !other.0)
    }
}

impl core::ops::BitOr for VmFlags {
    type Output = VmFlags;
    fn bitor(self, rhs: VmFlags) -> VmFlags {
        self.union(rhs)
    }
}

impl core::fmt::Debug for VmFlags {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "VmFlags({:#x})", self.0)
    }
}

/// `IOREMAP_MAX_ORDER`: ioremap areas are aligned to their size rounded
/// up to a power of two, at most 128 pages (include/linux/vmalloc.h; x86
/// does not override it).
pub const IOREMAP_MAX_ORDER: u32 = 7 + PAGE_SHIFT;

/// One area of the vmalloc space (`struct vm_struct` with its
/// `vmap_area`): `[addr, addr + size)`, guard page included.
#[derive(Clone, Debug)]
pub struct VmStruct {
    /// First address.
    pub addr: VirtAddr,
    /// Bytes, the guard page included (as Linux's `vm->size`).
    pub size: u64,
    /// VM_* flags.
    pub flags: VmFlags,
    /// Pages the area owns and frees on vfree (vmalloc, or vmap with
    /// VM_MAP_PUT_PAGES), in address order. Empty for plain vmap/ioremap.
    pub pages: Vec<Pfn>,
    /// Start of the device range an ioremap area maps.
    pub phys_addr: Option<PhysAddr>,
    /// Who made it (`%pS` of the caller in Linux): a tag the caller gives.
    pub caller: String,
    /// The vmalloc'ed page array, when it needed more than a page
    /// ("vpages").
    pub pages_array: Option<VirtAddr>,
}

impl VmStruct {
    /// End address (exclusive), guard page included.
    pub fn end(&self) -> VirtAddr {
        self.addr + self.size
    }
    /// Pages counted in `pages=` (`vm->nr_pages`).
    pub fn nr_pages(&self) -> usize {
        self.pages.len()
    }
    /// Bytes mapped: the size without the guard page (`get_vm_area_size`).
    pub fn mapped_size(&self) -> u64 {
        if self.flags.contains(VmFlags::NO_GUARD) {
            self.size
        } else {
            self.size - PAGE_SIZE
        }
    }
}

/// The physical address map ioremap checks against (what Linux reads
/// from the resource tree, /proc/iomem): System RAM and device windows,
/// half-open `[start, end)` ranges.
#[derive(Clone, Debug, Default)]
pub struct IoResources {
    /// System RAM ranges (e820 usable).
    pub ram: Vec<(PhysAddr, PhysAddr)>,
    /// Ranges where devices live and ioremap is allowed (e820 reserved
    /// MMIO windows, PCI BARs).
    pub mmio: Vec<(PhysAddr, PhysAddr)>,
}

/// Cache modes of an ioremap (x86 `enum page_cache_mode` with the default
/// PAT layout, arch/x86/mm/pat/memtype.c).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CacheMode {
    /// UC-: PCD (PAT index 2). What plain `ioremap()` gives.
    UcMinus,
    /// UC: PCD | PWT (PAT index 3), `ioremap_uc()`.
    Uc,
    /// Write-through: PWT (PAT index 1), `ioremap_wt()`.
    Wt,
    /// Write-back: `ioremap_cache()`.
    Wb,
}

impl CacheMode {
    /// The PTE cache bits of this mode (`cachemode2protval`).
    pub const fn prot(self) -> PteFlags {
        match self {
            CacheMode::UcMinus => PteFlags::NO_CACHE,
            CacheMode::Uc => PteFlags(PteFlags::NO_CACHE.0 | PteFlags::WRITE_THROUGH.0),
            CacheMode::Wt => PteFlags::WRITE_THROUGH,
            CacheMode::Wb => PteFlags::EMPTY,
        }
    }
}

/// PAGE_KERNEL_IO: PAGE_KERNEL (present, RW, accessed, dirty, global, NX);
/// ioremap adds its cache-mode bits.
pub const PAGE_KERNEL_IO: PteFlags = PteFlags::KERNEL;

/// The vmalloc allocator of one machine: its busy areas, the free ranges
/// of kernel virtual space and the vmalloc page count. Methods that change
/// mappings take the buddy allocator, the kernel's page tables (init_mm's,
/// shared by every process) and the CPU doing the work.
///
/// Not internally locked: Linux serialises with `vmap_area_lock`; here the
/// `&mut self` (and the `&mut PageTable`) does.
#[derive(Debug)]
pub struct Vmalloc {
    layout: AddressSpaceLayout,
    /// Busy areas by start address.
    busy: BTreeMap<u64, VmStruct>,
    /// Free ranges of the address space by start: start -> end (exclusive).
    free: BTreeMap<u64, u64>,
    /// `vmalloc_nr_pages`: pages of all VM_ALLOC areas.
    nr_vmalloc_pages: u64,
    iomem: IoResources,
}

impl Vmalloc {
    /// An empty vmalloc space for `layout` (`vmalloc_init`). ioremap is
    /// refused until [`set_iomem`](Self::set_iomem) declares device ranges.
    pub fn new(layout: AddressSpaceLayout) -> Vmalloc {
        let mut free = BTreeMap::new();
        // vmap_init_free_space: the whole address space is free.
        free.insert(0, u64::MAX);
        Vmalloc {
            layout,
            busy: BTreeMap::new(),
            free,
            nr_vmalloc_pages: 0,
            iomem: IoResources::default(),
        }
    }

    /// Declares System RAM and the device windows ioremap may map.
    pub fn set_iomem(&mut self, iomem: IoResources) {
        self.iomem = iomem;
    }

    /// The address-space layout.
    pub fn layout(&self) -> &AddressSpaceLayout {
        &self.layout
    }

    /// VMALLOC_START.
    pub fn vmalloc_start(&self) -> VirtAddr {
        VirtAddr(self.layout.vmalloc_start)
    }

    /// The exclusive page-aligned end of what the allocator hands out
    /// (VMALLOC_END is inclusive on x86-64; no area may end past it).
    pub fn vmalloc_end(&self) -> VirtAddr {
        VirtAddr(self.layout.vmalloc_end & !(PAGE_SIZE - 1))
    }

    /// `vmalloc_nr_pages()`: pages held by vmalloc areas.
    pub fn nr_vmalloc_pages(&self) -> u64 {
        self.nr_vmalloc_pages
    }

    /// meminfo's VmallocUsed in kB.
    pub fn vmalloc_used_kb(&self) -> u64 {
        self.nr_vmalloc_pages << (PAGE_SHIFT - 10)
    }

    /// meminfo's VmallocTotal in kB: (VMALLOC_END - VMALLOC_START) >> 10.
    pub fn vmalloc_total_kb(&self) -> u64 {
        (self.layout.vmalloc_end - self.layout.vmalloc_start) >> 10
    }

    /// The busy areas in address order.
    pub fn areas(&self) -> impl Iterator<Item = &VmStruct> {
        self.busy.values()
    }

    /// The free ranges `[start, end)` of the address space, in order.
    pub fn free_ranges(&self) -> impl Iterator<Item = (VirtAddr, VirtAddr)> + '_ {
        self.free.iter().map(|(&s, &e)| (VirtAddr(s), VirtAddr(e)))
    }

    /// `find_vm_area`: the area containing `addr` (guard page included).
    pub fn find_vm_area(&self, addr: VirtAddr) -> Option<&VmStruct> {
        let (_, vm) = self.busy.range(..=addr.0).next_back()?;
        (addr < vm.end()).then_some(vm)
    }

    /// `is_vmalloc_addr`: inside [VMALLOC_START, VMALLOC_END).
    pub fn is_vmalloc_addr(&self, addr: VirtAddr) -> bool {
        addr >= self.vmalloc_start() && addr < self.vmalloc_end()
    }

    // ---- the address allocator ------------------------------------------

    /// `__alloc_vmap_area`: the lowest address `a` in `[vstart, vend)` with
    /// `a % align == 0` and `[a, a + size)` free; takes it out of the free
    /// ranges.
    fn alloc_vmap_area(&mut self, size: u64, align: u64, vstart: u64, vend: u64) -> Option<u64> {
        debug_assert!(align.is_power_of_two() && size > 0);
        // Start with the free range that holds vstart, if any.
        let first = self
            .free
            .range(..=vstart)
            .next_back()
            .filter(|&(_, &e)| e > vstart)
            .map(|(&s, _)| s)
            .unwrap_or(vstart);
        let mut found = None;
        for (&s, &e) in self.free.range(first..vend) {
            let a = s.max(vstart).checked_add(align - 1)? & !(align - 1);
            let Some(end) = a.checked_add(size) else {
                break;
            };
            if end <= e.min(vend) {
                found = Some((s, e, a, end));
                break;
            }
        }
        let (s, e, a, end) = found?;
        self.free.remove(&s);
        if s < a {
            self.free.insert(s, a);
        }
        if end < e {
            self.free.insert(end, e);
        }
        Some(a)
    }

    /// Gives `[start, end)` back to the free ranges, merging neighbours
    /// (`merge_or_add_vmap_area`).
    fn free_vmap_area(&mut self, mut start: u64, mut end: u64) {
        if let Some((&ps, &pe)) = self.free.range(..start).next_back() {
            debug_assert!(pe <= start, "double free of vmap range");
            if pe == start {
                self.free.remove(&ps);
                start = ps;
            }
        }
        if let Some(ne) = self.free.remove(&end) {
            end = ne;
        }
        self.free.insert(start, end);
    }

    /// `__get_vm_area_node`: reserves an area of `size` bytes (page
    /// aligned, plus a guard page unless VM_NO_GUARD) in `[start, end)`
    /// and records it.
    #[allow(clippy::too_many_arguments)]
    fn get_vm_area(
        &mut self,
        size: u64,
        align: u64,
        flags: VmFlags,
        start: VirtAddr,
        end: VirtAddr,
        caller: &str,
    ) -> Option<VirtAddr> {
        let mut size = size.checked_add(PAGE_SIZE - 1)? & !(PAGE_SIZE - 1);
        if size == 0 {
            return None;
        }
        let mut align = align.max(PAGE_SIZE).next_power_of_two();
        if flags.contains(VmFlags::IOREMAP) {
            let order = (64 - (size - 1).leading_zeros()).clamp(PAGE_SHIFT, IOREMAP_MAX_ORDER);
            align = 1 << order;
        }
        if !flags.contains(VmFlags::NO_GUARD) {
            size = size.checked_add(PAGE_SIZE)?;
        }
        let addr = self.alloc_vmap_area(size, align, start.0, end.0)?;
        self.busy.insert(
            addr,
            VmStruct {
                addr: VirtAddr(addr),
                size,
                flags,
                pages: Vec::new(),
                phys_addr: None,
                caller: String::from(caller),
                pages_array: None,
            },
        );
        Some(VirtAddr(addr))
    }

    /// `remove_vm_area`: takes the area starting at `addr` out of the
    /// busy set, clears its entries, flushes the range, frees the tables
    /// left empty and returns the address range to the free ranges.
    fn remove_vm_area(
        &mut self,
        pa: &PageAlloc,
        pt: &mut PageTable,
        cpu: CpuId,
        addr: VirtAddr,
        flush: &mut dyn FnMut(VirtAddr, VirtAddr),
    ) -> Option<VmStruct> {
        let vm = self.busy.remove(&addr.0)?;
        let mapped_end = vm.addr + vm.mapped_size();
        let mut va = vm.addr;
        while va < mapped_end {
            pt.unmap(va);
            va = va + PAGE_SIZE;
        }
        // Every entry is clear: flush, then the tables can go.
        flush(vm.addr, vm.end());
        let mut frames = PgtableFrames { pa, cpu };
        pt.zap_range(&mut frames, vm.addr, vm.end(), &mut |_, _| {});
        self.free_vmap_area(vm.addr.0, vm.end().0);
        Some(vm)
    }

    /// Maps `pfns` at `addr` one 4 KiB page each; on failure unmaps what it
    /// mapped.
    fn map_pages(
        pa: &PageAlloc,
        pt: &mut PageTable,
        cpu: CpuId,
        addr: VirtAddr,
        pfns: impl Iterator<Item = Pfn>,
        prot: PteFlags,
    ) -> Result<(), Errno> {
        let mut frames = PgtableFrames { pa, cpu };
        let mut va = addr;
        for pfn in pfns {
            if let Err(e) = pt.map(&mut frames, va, pfn, prot) {
                // Nothing was ever present in the new range: no flush.
                pt.zap_range(&mut frames, addr, va + PAGE_SIZE, &mut |_, _| {});
                return Err(e);
            }
            va = va + PAGE_SIZE;
        }
        Ok(())
    }

    // ---- vmalloc ---------------------------------------------------------

    /// `vmalloc(size)`: `size` bytes (rounded up to pages) of kernel
    /// virtual memory backed by pages taken one by one with
    /// GFP_KERNEL | __GFP_HIGHMEM, mapped PAGE_KERNEL (global, NX, RW).
    /// `None` (and a "vmalloc error" line in the log) when out of memory
    /// or address space.
    pub fn vmalloc(
        &mut self,
        pa: &PageAlloc,
        pt: &mut PageTable,
        cpu: CpuId,
        size: u64,
        caller: &str,
    ) -> Option<VirtAddr> {
        self.vmalloc_node(pa, pt, cpu, size, None, caller)
    }

    /// `vzalloc(size)`: vmalloc with zeroed pages.
    pub fn vzalloc(
        &mut self,
        pa: &PageAlloc,
        pt: &mut PageTable,
        cpu: CpuId,
        size: u64,
        caller: &str,
    ) -> Option<VirtAddr> {
        let (start, end) = (self.vmalloc_start(), self.vmalloc_end());
        self.vmalloc_node_range(
            pa,
            pt,
            cpu,
            VmallocRequest {
                size,
                align: 1,
                start,
                end,
                gfp: Gfp(Gfp::KERNEL.0 | Gfp::ZERO.0),
                prot: PteFlags::KERNEL,
                vm_flags: VmFlags::EMPTY,
                nid: None,
            },
            caller,
        )
    }

    /// `vmalloc_node(size, nid)`: vmalloc with pages from node `nid`
    /// (`None` = NUMA_NO_NODE: the local node).
    pub fn vmalloc_node(
        &mut self,
        pa: &PageAlloc,
        pt: &mut PageTable,
        cpu: CpuId,
        size: u64,
        nid: Option<u32>,
        caller: &str,
    ) -> Option<VirtAddr> {
        let (start, end) = (self.vmalloc_start(), self.vmalloc_end());
        self.vmalloc_node_range(
            pa,
            pt,
            cpu,
            VmallocRequest {
                size,
                align: 1,
                start,
                end,
                gfp: Gfp::KERNEL,
                prot: PteFlags::KERNEL,
                vm_flags: VmFlags::EMPTY,
                nid,
            },
            caller,
        )
    }

    /// `vmalloc_user(size)`: zeroed, VM_USERMAP (may be mapped to user
    /// space with remap_vmalloc_range).
    pub fn vmalloc_user(
        &mut self,
        pa: &PageAlloc,
        pt: &mut PageTable,
        cpu: CpuId,
        size: u64,
        caller: &str,
    ) -> Option<VirtAddr> {
        let (start, end) = (self.vmalloc_start(), self.vmalloc_end());
        self.vmalloc_node_range(
            pa,
            pt,
            cpu,
            VmallocRequest {
                size,
                align: 1,
                start,
                end,
                gfp: Gfp(Gfp::KERNEL.0 | Gfp::ZERO.0),
                prot: PteFlags::KERNEL,
                vm_flags: VmFlags::USERMAP,
                nid: None,
            },
            caller,
        )
    }

    /// `__vmalloc_node_range`: the general form. Reserves the area, takes
    /// the page array (a nested vmalloc when it exceeds a page, as Linux),
    /// allocates the pages one at a time (__GFP_HIGHMEM added unless the
    /// GFP asks for DMA zones) and maps them.
    pub fn vmalloc_node_range(
        &mut self,
        pa: &PageAlloc,
        pt: &mut PageTable,
        cpu: CpuId,
        req: VmallocRequest,
        caller: &str,
    ) -> Option<VirtAddr> {
        let real_size = req.size;
        let Some(size) = req.size.checked_add(PAGE_SIZE - 1).map(|s| s & !(PAGE_SIZE - 1)) else {
            self.warn(pa, req.gfp, real_size, "exceeds total pages");
            return None;
        };
        if size == 0 {
            return None;
        }
        let nr_pages = size >> PAGE_SHIFT;
        if nr_pages > pa.totalram_pages() {
            self.warn(pa, req.gfp, real_size, "exceeds total pages");
            return None;
        }
        let flags = VmFlags::ALLOC | VmFlags::UNINITIALIZED | req.vm_flags;
        let Some(addr) = self.get_vm_area(size, req.align, flags, req.start, req.end, caller)
        else {
            self.warn(pa, req.gfp, real_size, "vm_struct allocation failed");
            return None;
        };
        let mut nop = |_: VirtAddr, _: VirtAddr| {};

        // The page array: kmalloc'ed up to a page, vmalloc'ed beyond.
        let array_size = nr_pages * self.ptr_size();
        let mut pages_array = None;
        if array_size > PAGE_SIZE {
            let nested_gfp = Gfp((req.gfp.0 & !Gfp::ZONEMASK.0) | Gfp::ZERO.0);
            let (vs, ve) = (self.vmalloc_start(), self.vmalloc_end());
            let nested = VmallocRequest {
                size: array_size,
                align: 1,
                start: vs,
                end: ve,
                gfp: nested_gfp,
                prot: PteFlags::KERNEL,
                vm_flags: VmFlags::EMPTY,
                nid: req.nid,
            };
            match self.vmalloc_node_range(pa, pt, cpu, nested, caller) {
                Some(a) => pages_array = Some(a),
                None => {
                    crate::printk!(
                        pa.log,
                        "lmm: vmalloc error: size {}, failed to allocated page array size {}, mode:{:#x}({}), nodemask=(null)",
                        real_size,
                        array_size,
                        req.gfp.0,
                        req.gfp.describe()
                    );
                    self.remove_vm_area(pa, pt, cpu, addr, &mut nop);
                    return None;
                }
            }
        }

        // The pages, one by one.
        let mut gfp = req.gfp;
        if !gfp.has(Gfp::DMA) && !gfp.has(Gfp::DMA32) {
            gfp = Gfp(gfp.0 | Gfp::HIGHMEM.0);
        }
        let alloc_cpu = cpu_on_node(pa, cpu, req.nid);
        let mut pages = Vec::with_capacity(nr_pages as usize);
        for _ in 0..nr_pages {
            match pa.alloc_pages(alloc_cpu, Gfp(gfp.0 | Gfp::NOWARN.0), Order(0)) {
                Some(p) => pages.push(p),
                None => break,
            }
        }
        let mut failed = None;
        if (pages.len() as u64) < nr_pages {
            failed = Some("failed to allocate pages");
        } else if Self::map_pages(pa, pt, cpu, addr, pages.iter().copied(), req.prot).is_err() {
            failed = Some("failed to map pages");
        }
        if let Some(why) = failed {
            self.warn(pa, req.gfp, real_size, why);
            for &p in &pages {
                pa.free_pages(alloc_cpu, p, Order(0));
            }
            self.remove_vm_area(pa, pt, cpu, addr, &mut nop);
            if let Some(a) = pages_array {
                self.vfree(pa, pt, cpu, a, &mut nop);
            }
            return None;
        }
        self.nr_vmalloc_pages += nr_pages;
        let vm = self.busy.get_mut(&addr.0).expect("area just reserved");
        vm.pages = pages;
        vm.pages_array = pages_array;
        vm.flags = vm.flags.difference(VmFlags::UNINITIALIZED);
        Some(addr)
    }

    /// `vfree(addr)`: unmaps a vmalloc (or VM_MAP_PUT_PAGES vmap) area,
    /// calls `flush(start, end)` on its range (TLB shootdown), frees its
    /// pages and page array and gives the range back. A null address is
    /// ignored; an address that starts no area is a warning in the log.
    pub fn vfree(
        &mut self,
        pa: &PageAlloc,
        pt: &mut PageTable,
        cpu: CpuId,
        addr: VirtAddr,
        flush: &mut dyn FnMut(VirtAddr, VirtAddr),
    ) {
        if addr.0 == 0 {
            return;
        }
        let Some(vm) = self.remove_vm_area(pa, pt, cpu, addr, flush) else {
            crate::printk!(
                pa.log,
                "Trying to vfree() nonexistent vm area ({:#x})",
                addr.0
            );
            return;
        };
        if vm.flags.contains(VmFlags::ALLOC) {
            self.nr_vmalloc_pages -= vm.pages.len() as u64;
        }
        for &p in &vm.pages {
            pa.free_pages(cpu, p, Order(0));
        }
        if let Some(a) = vm.pages_array {
            self.vfree(pa, pt, cpu, a, flush);
        }
    }

    // ---- vmap ------------------------------------------------------------

    /// `vmap(pages, count, flags, prot)`: maps pages the caller owns
    /// contiguously in the vmalloc area. With VM_MAP_PUT_PAGES the area
    /// takes them (vfree frees them and `pages=` shows them).
    #[allow(clippy::too_many_arguments)]
    pub fn vmap(
        &mut self,
        pa: &PageAlloc,
        pt: &mut PageTable,
        cpu: CpuId,
        pages: &[Pfn],
        flags: VmFlags,
        prot: PteFlags,
        caller: &str,
    ) -> Option<VirtAddr> {
        let count = pages.len() as u64;
        if count == 0 || count > pa.totalram_pages() {
            return None;
        }
        let (start, end) = (self.vmalloc_start(), self.vmalloc_end());
        let addr = self.get_vm_area(count * PAGE_SIZE, 1, flags, start, end, caller)?;
        if Self::map_pages(pa, pt, cpu, addr, pages.iter().copied(), prot).is_err() {
            self.remove_vm_area(pa, pt, cpu, addr, &mut |_, _| {});
            return None;
        }
        if flags.contains(VmFlags::MAP_PUT_PAGES) {
            let vm = self.busy.get_mut(&addr.0).expect("area just reserved");
            vm.pages = pages.to_vec();
        }
        Some(addr)
    }

    /// `vunmap(addr)`: removes a vmap area (the pages stay the caller's).
    /// Warns in the log if `addr` starts no area.
    pub fn vunmap(
        &mut self,
        pa: &PageAlloc,
        pt: &mut PageTable,
        cpu: CpuId,
        addr: VirtAddr,
        flush: &mut dyn FnMut(VirtAddr, VirtAddr),
    ) {
        if addr.0 == 0 {
            return;
        }
        if self.remove_vm_area(pa, pt, cpu, addr, flush).is_none() {
            crate::printk!(
                pa.log,
                "Trying to vunmap() nonexistent vm area ({:#x})",
                addr.0
            );
        }
    }

    // ---- ioremap ---------------------------------------------------------

    /// `ioremap(phys, size)`: maps a device range uncached (UC-: PCD) and
    /// returns the address of `phys` (the page offset is kept). Refuses,
    /// with a log line, a range that touches System RAM in use ("ioremap
    /// on RAM at ..."), one beyond the physical address width, or one
    /// outside every declared device window.
    pub fn ioremap(
        &mut self,
        pa: &PageAlloc,
        pt: &mut PageTable,
        cpu: CpuId,
        phys: PhysAddr,
        size: u64,
        caller: &str,
    ) -> Option<VirtAddr> {
        self.ioremap_prot(pa, pt, cpu, phys, size, CacheMode::UcMinus, caller)
    }

    /// `ioremap_uc(phys, size)`: strongly uncached (PCD | PWT).
    pub fn ioremap_uc(
        &mut self,
        pa: &PageAlloc,
        pt: &mut PageTable,
        cpu: CpuId,
        phys: PhysAddr,
        size: u64,
        caller: &str,
    ) -> Option<VirtAddr> {
        self.ioremap_prot(pa, pt, cpu, phys, size, CacheMode::Uc, caller)
    }

    /// `__ioremap_caller`: ioremap with an explicit cache mode.
    #[allow(clippy::too_many_arguments)]
    pub fn ioremap_prot(
        &mut self,
        pa: &PageAlloc,
        pt: &mut PageTable,
        cpu: CpuId,
        phys: PhysAddr,
        size: u64,
        mode: CacheMode,
        caller: &str,
    ) -> Option<VirtAddr> {
        let last = phys.0.checked_add(size)?.checked_sub(1)?;
        if size == 0 {
            return None;
        }
        let phys_width = self.layout.mode.pfn_mask() | (PAGE_SIZE - 1);
        if last > phys_width {
            crate::printk!(pa.log, "ioremap: invalid physical address {:x}", phys.0);
            return None;
        }
        let w = self.phys_digits();
        if self.touches_ram(pa, phys.0, last) {
            crate::printk!(
                pa.log,
                "ioremap on RAM at {:#0w$x} - {:#0w$x}",
                phys.0,
                last,
                w = w + 2
            );
            return None;
        }
        let in_window = self
            .iomem
            .mmio
            .iter()
            .any(|&(s, e)| s.0 <= phys.0 && last < e.0);
        if !in_window {
            // Ours: Linux maps any non-RAM range; we require a declared one.
            crate::printk!(
                pa.log,
                "ioremap: [mem {:#0w$x}-{:#0w$x}] outside every device window",
                phys.0,
                last,
                w = w + 2
            );
            return None;
        }
        let offset = phys.0 & (PAGE_SIZE - 1);
        let base = phys.0 & !(PAGE_SIZE - 1);
        let map_size = ((last + PAGE_SIZE) & !(PAGE_SIZE - 1)) - base;
        let (start, end) = (self.vmalloc_start(), self.vmalloc_end());
        let addr = self.get_vm_area(map_size, 1, VmFlags::IOREMAP, start, end, caller)?;
        let prot = PAGE_KERNEL_IO.union(mode.prot());
        let pfns = (0..map_size >> PAGE_SHIFT).map(|i| Pfn((base >> PAGE_SHIFT) + i));
        if Self::map_pages(pa, pt, cpu, addr, pfns, prot).is_err() {
            self.remove_vm_area(pa, pt, cpu, addr, &mut |_, _| {});
            return None;
        }
        self.busy.get_mut(&addr.0).expect("area just reserved").phys_addr = Some(PhysAddr(base));
        Some(addr + offset)
    }

    /// `iounmap(addr)`: removes an ioremap area; `addr` may point anywhere
    /// in its first page. Logs "iounmap: bad address" otherwise.
    pub fn iounmap(
        &mut self,
        pa: &PageAlloc,
        pt: &mut PageTable,
        cpu: CpuId,
        addr: VirtAddr,
        flush: &mut dyn FnMut(VirtAddr, VirtAddr),
    ) {
        let start = addr.page_down();
        let ok = self
            .busy
            .get(&start.0)
            .is_some_and(|vm| vm.flags.contains(VmFlags::IOREMAP));
        if !ok {
            crate::printk!(pa.log, "iounmap: bad address {:#x}", addr.0);
            return;
        }
        self.remove_vm_area(pa, pt, cpu, start, flush);
    }

    /// True if a page of `[first, last]` is System RAM with a struct page
    /// that is not reserved (`__ioremap_check_ram`).
    fn touches_ram(&self, pa: &PageAlloc, first: u64, last: u64) -> bool {
        self.iomem.ram.iter().any(|&(s, e)| {
            let lo = first.max(s.0);
            let hi = last.min(e.0.saturating_sub(1));
            lo <= hi
                && (lo >> PAGE_SHIFT..=hi >> PAGE_SHIFT).any(|pfn| {
                    pa.page(Pfn(pfn))
                        .is_some_and(|p| !p.test(PageFlags::RESERVED))
                })
        })
    }

    // ---- helpers ---------------------------------------------------------

    /// `vmalloc_to_pfn`: the frame mapped at `addr`.
    pub fn vmalloc_to_pfn(&self, pt: &PageTable, addr: VirtAddr) -> Option<Pfn> {
        pt.translate(addr).map(|p| p.pfn())
    }

    /// sizeof(void *) on this architecture.
    pub fn ptr_size(&self) -> u64 {
        match self.layout.mode {
            PagingMode::X86_32 | PagingMode::X86Pae => 4,
            _ => 8,
        }
    }

    /// Hex digits of a `%pa` (phys_addr_t): 16 with a 64-bit phys_addr_t
    /// (x86-64, PAE), 8 on 2-level x86.
    pub fn phys_digits(&self) -> usize {
        match self.layout.mode {
            PagingMode::X86_32 => 8,
            _ => 16,
        }
    }

    fn warn(&self, pa: &PageAlloc, gfp: Gfp, size: u64, why: &str) {
        if gfp.has(Gfp::NOWARN) {
            return;
        }
        crate::printk!(
            pa.log,
            "lmm: vmalloc error: size {}, {}, mode:{:#x}({}), nodemask=(null)",
            size,
            why,
            gfp.0,
            gfp.describe()
        );
    }
}

/// The arguments of `__vmalloc_node_range` besides the caller.
#[derive(Copy, Clone, Debug)]
pub struct VmallocRequest {
    /// Bytes wanted (rounded up to pages).
    pub size: u64,
    /// Alignment of the start (at least a page).
    pub align: u64,
    /// Lowest address the area may start at.
    pub start: VirtAddr,
    /// Address the area (guard page included) must end at or below.
    pub end: VirtAddr,
    /// How to allocate the pages.
    pub gfp: Gfp,
    /// Protection of the mapping.
    pub prot: PteFlags,
    /// Extra VM_* flags.
    pub vm_flags: VmFlags,
    /// Node the pages should come from (`None` = local).
    pub nid: Option<u32>,
}

/// meminfo's VmallocUsed in kB, for `MeminfoExtras::vmalloc_used_kb`.
pub fn vmalloc_used_kb(vm: &Vmalloc) -> u64 {
    vm.vmalloc_used_kb()
}

/// A CPU of node `nid` to allocate on behalf of (`cpu` itself when it is
/// there, when `nid` is `None` or when the node has no CPU).
fn cpu_on_node(pa: &PageAlloc, cpu: CpuId, nid: Option<u32>) -> CpuId {
    match nid {
        Some(n) if pa.cpu_node.get(cpu.0) != Some(&n) => pa
            .cpu_node
            .iter()
            .position(|&c| c == n)
            .map(CpuId)
            .unwrap_or(cpu),
        _ => cpu,
    }
}

/// Copies kernel virtual memory `[va, va + buf.len())` into `buf`, page by
/// page through the kernel page tables (`vread_iter`): the bytes are those
/// the mapping reaches. EFAULT at the first unmapped page.
pub fn kernel_read(pt: &PageTable, va: VirtAddr, buf: &mut [u8]) -> Result<(), Errno> {
    let dm = *pt.direct_map();
    let mut done = 0usize;
    while done < buf.len() {
        let a = va + done as u64;
        let n = ((PAGE_SIZE - a.page_offset()) as usize).min(buf.len() - done);
        let phys = pt.translate(a).ok_or(Errno::EFAULT)?;
        if !dm.contains(phys, n as u64) {
            return Err(Errno::EFAULT);
        }
        dm.read(phys, &mut buf[done..done + n]);
        done += n;
    }
    Ok(())
}

/// Writes `data` at kernel virtual address `va` through the kernel page
/// tables; EFAULT at the first page not mapped writable.
pub fn kernel_write(pt: &PageTable, va: VirtAddr, data: &[u8]) -> Result<(), Errno> {
    let dm = *pt.direct_map();
    let mut done = 0usize;
    while done < data.len() {
        let a = va + done as u64;
        let n = ((PAGE_SIZE - a.page_offset()) as usize).min(data.len() - done);
        let (pte, _): (Pte, _) = pt.lookup(a).ok_or(Errno::EFAULT)?;
        if !pte.present() || !pte.writable() {
            return Err(Errno::EFAULT);
        }
        let phys = pt.translate(a).ok_or(Errno::EFAULT)?;
        if !dm.contains(phys, n as u64) {
            return Err(Errno::EFAULT);
        }
        dm.write(phys, &data[done..done + n]);
        done += n;
    }
    Ok(())
}
