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
/// Linux gives them the same `VM_` prefix as a VMA's flags, but they are
/// another set, so lmm names the type after vmalloc.
#[derive(Copy, Clone, Default, PartialEq, Eq, Hash)]
pub struct VmallocFlags(pub u32);

bitflags::bitflags! {
    /// The `VM_*` bits of a `vm_struct`.
    impl VmallocFlags: u32 {
        /// No flags.
        const EMPTY = 0;
        /// ioremap() and friends.
        const IOREMAP = 0x1;
        /// vmalloc(): the area owns its pages.
        const ALLOC = 0x2;
        /// vmap() of pages the caller owns.
        const MAP = 0x4;
        /// Suitable for remap_vmalloc_range (vmalloc_user).
        const USERMAP = 0x8;
        /// dma_alloc_coherent.
        const DMA_COHERENT = 0x10;
        /// The area is being set up (its pages are not all there yet).
        const UNINITIALIZED = 0x20;
        /// No guard page after the area.
        const NO_GUARD = 0x40;
        /// vmap() hands its pages to the area: vfree frees them.
        const MAP_PUT_PAGES = 0x200;
        const _ = !0;
    }
}

impl core::fmt::Debug for VmallocFlags {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "VmallocFlags({:#x})", self.0)
    }
}

/// `IOREMAP_MAX_ORDER`: ioremap areas are aligned to their size rounded
/// up to a power of two, at most this, so that huge entries can map them:
/// PUD_SHIFT (1 GiB) on x86-64 (asm/page_types.h) and on arm64 with 4 KiB
/// pages (asm/memory.h), PMD_SHIFT on 32-bit x86. (The generic 128 pages of
/// include/linux/vmalloc.h is for arches that do not override it.)
pub const fn ioremap_max_order(mode: PagingMode) -> u32 {
    match mode {
        PagingMode::X86_32 | PagingMode::X86Pae => mode.shift(2),
        _ => mode.shift(3),
    }
}

/// One area of the vmalloc space (`struct vm_struct` with its
/// `vmap_area`): `[addr, addr + size)`, guard page included.
#[derive(Clone, Debug)]
pub struct VmStruct {
    /// First address.
    pub addr: VirtAddr,
    /// Bytes, the guard page included (as Linux's `vm->size`).
    pub size: u64,
    /// VM_* flags.
    pub flags: VmallocFlags,
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
        if self.flags.contains(VmallocFlags::NO_GUARD) {
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
        if vstart >= vend {
            return None;
        }
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
        flags: VmallocFlags,
        start: VirtAddr,
        end: VirtAddr,
        caller: &str,
    ) -> Option<VirtAddr> {
        let mut size = size.checked_add(PAGE_SIZE - 1)? & !(PAGE_SIZE - 1);
        if size == 0 {
            return None;
        }
        let mut align = align.max(PAGE_SIZE).next_power_of_two();
        if flags.contains(VmallocFlags::IOREMAP) {
            let max = ioremap_max_order(self.layout.mode);
            let order = (64 - (size - 1).leading_zeros()).clamp(PAGE_SHIFT, max);
            align = 1 << order;
        }
        if !flags.contains(VmallocFlags::NO_GUARD) {
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
            va += PAGE_SIZE;
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
            va += PAGE_SIZE;
        }
        Ok(())
    }

    /// `ioremap_page_range`: maps `size` bytes of device memory from
    /// `phys` at `addr` with the largest entries that fit, as
    /// `vmap_range_noflush` does with `ioremap_max_page_shift` where the
    /// arch allows huge vmaps (x86 with PSE/GBPAGES, arm64): a 1 GiB or
    /// 2 MiB (4 MiB on 32-bit x86) block wherever both addresses are aligned
    /// to it and the range covers it, else 4 KiB pages. On failure unmaps
    /// what it mapped.
    #[allow(clippy::too_many_arguments)]
    fn ioremap_page_range(
        pa: &PageAlloc,
        pt: &mut PageTable,
        cpu: CpuId,
        addr: VirtAddr,
        phys: u64,
        size: u64,
        prot: PteFlags,
    ) -> Result<(), Errno> {
        let mut frames = PgtableFrames { pa, cpu };
        let mode = pt.mode();
        let end = addr.0 + size;
        let (mut va, mut ph) = (addr.0, phys);
        while va < end {
            let level = (2..=mode.max_leaf_level())
                .rev()
                .find(|&l| {
                    let span = mode.span(l);
                    mode.huge_ok(l) && va % span == 0 && ph % span == 0 && end - va >= span
                })
                .unwrap_or(1);
            let pfn = Pfn(ph >> PAGE_SHIFT);
            let done = if level == 1 {
                pt.map(&mut frames, VirtAddr(va), pfn, prot)
            } else {
                pt.map_huge(&mut frames, VirtAddr(va), pfn, level, prot)
            };
            let span = mode.span(level);
            if let Err(e) = done {
                // Nothing was ever present in the new range: no flush.
                pt.zap_range(&mut frames, addr, VirtAddr(va + span), &mut |_, _| {});
                return Err(e);
            }
            va += span;
            ph += span;
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
        let req = self.vmalloc_request(
            size,
            Gfp(Gfp::KERNEL.0 | Gfp::ZERO.0),
            VmallocFlags::EMPTY,
            None,
        );
        self.vmalloc_node_range(pa, pt, cpu, req, caller)
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
        let req = self.vmalloc_request(size, Gfp::KERNEL, VmallocFlags::EMPTY, nid);
        self.vmalloc_node_range(pa, pt, cpu, req, caller)
    }

    /// A task's kernel stack with CONFIG_VMAP_STACK (`alloc_thread_stack_node`):
    /// `__vmalloc_node_range(THREAD_SIZE, THREAD_ALIGN, VMALLOC_START,
    /// VMALLOC_END, THREADINFO_GFP & ~__GFP_ACCOUNT, PAGE_KERNEL, ...)`,
    /// i.e. zeroed pages, the area aligned to `align` (THREAD_ALIGN:
    /// THREAD_SIZE on x86-64, twice that on arm64 for its overflow check),
    /// plus the usual guard page.
    pub fn vmalloc_thread_stack(
        &mut self,
        pa: &PageAlloc,
        pt: &mut PageTable,
        cpu: CpuId,
        size: u64,
        align: u64,
        caller: &str,
    ) -> Option<VirtAddr> {
        let mut req = self.vmalloc_request(
            size,
            Gfp(Gfp::KERNEL.0 | Gfp::ZERO.0),
            VmallocFlags::EMPTY,
            None,
        );
        req.align = align;
        self.vmalloc_node_range(pa, pt, cpu, req, caller)
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
        let req = self.vmalloc_request(
            size,
            Gfp(Gfp::KERNEL.0 | Gfp::ZERO.0),
            VmallocFlags::USERMAP,
            None,
        );
        self.vmalloc_node_range(pa, pt, cpu, req, caller)
    }

    /// The request `__vmalloc_node` makes of `__vmalloc_node_range`: the
    /// whole VMALLOC_START..VMALLOC_END window, no alignment beyond a
    /// page, PAGE_KERNEL, with the given GFP, extra VM_* flags and node.
    fn vmalloc_request(
        &self,
        size: u64,
        gfp: Gfp,
        vm_flags: VmallocFlags,
        nid: Option<u32>,
    ) -> VmallocRequest {
        VmallocRequest {
            size,
            align: 1,
            start: self.vmalloc_start(),
            end: self.vmalloc_end(),
            gfp,
            prot: PteFlags::KERNEL,
            vm_flags,
            nid,
        }
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
        let Some(size) = req
            .size
            .checked_add(PAGE_SIZE - 1)
            .map(|s| s & !(PAGE_SIZE - 1))
        else {
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
        let flags = VmallocFlags::ALLOC | VmallocFlags::UNINITIALIZED | req.vm_flags;
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
            let nested = self.vmalloc_request(array_size, nested_gfp, VmallocFlags::EMPTY, req.nid);
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
        if !gfp.contains(Gfp::DMA) && !gfp.contains(Gfp::DMA32) {
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
        vm.flags = vm.flags.difference(VmallocFlags::UNINITIALIZED);
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
        let Some(vm) = self.take_vm_area(pa, pt, cpu, addr, flush, "vfree") else {
            return;
        };
        if vm.flags.contains(VmallocFlags::ALLOC) {
            self.nr_vmalloc_pages -= vm.pages.len() as u64;
        }
        for &p in &vm.pages {
            pa.free_pages(cpu, p, Order(0));
        }
        if let Some(a) = vm.pages_array {
            self.vfree(pa, pt, cpu, a, flush);
        }
    }

    /// The common head of vfree and vunmap: a null address is ignored; an
    /// address that starts no area is a warning naming `what` (Linux's
    /// "Trying to vfree() nonexistent vm area"); otherwise the area is
    /// unmapped and removed.
    fn take_vm_area(
        &mut self,
        pa: &PageAlloc,
        pt: &mut PageTable,
        cpu: CpuId,
        addr: VirtAddr,
        flush: &mut dyn FnMut(VirtAddr, VirtAddr),
        what: &str,
    ) -> Option<VmStruct> {
        if addr.0 == 0 {
            return None;
        }
        let vm = self.remove_vm_area(pa, pt, cpu, addr, flush);
        if vm.is_none() {
            crate::printk!(
                pa.log,
                "Trying to {}() nonexistent vm area ({:#x})",
                what,
                addr.0
            );
        }
        vm
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
        flags: VmallocFlags,
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
        if flags.contains(VmallocFlags::MAP_PUT_PAGES) {
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
        self.take_vm_area(pa, pt, cpu, addr, flush, "vunmap");
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
        let addr = self.get_vm_area(map_size, 1, VmallocFlags::IOREMAP, start, end, caller)?;
        let prot = PAGE_KERNEL_IO.union(mode.prot());
        if Self::ioremap_page_range(pa, pt, cpu, addr, base, map_size, prot).is_err() {
            self.remove_vm_area(pa, pt, cpu, addr, &mut |_, _| {});
            return None;
        }
        self.busy
            .get_mut(&addr.0)
            .expect("area just reserved")
            .phys_addr = Some(PhysAddr(base));
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
            .is_some_and(|vm| vm.flags.contains(VmallocFlags::IOREMAP));
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
        if gfp.contains(Gfp::NOWARN) {
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
    pub vm_flags: VmallocFlags,
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
    let dm = pt.direct_map();
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
    let dm = pt.direct_map();
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::arch::Arch;
    use crate::mm_init::testing::{boot, TestMachine};
    use crate::vmstat::NodeStat;
    use alloc::vec;
    use proptest::prelude::*;

    /// The e820 reserved window of the simulated PC (PCI ECAM, chipset).
    pub const MMIO: (u64, u64) = (0xeec0_0000, 0xfec0_0000);

    /// A booted machine with kernel page tables and an empty vmalloc space.
    pub struct Env {
        pub m: TestMachine,
        pub pt: PageTable,
        pub vm: Vmalloc,
        /// Free + per-CPU pages once the kernel tables exist.
        pub free0: u64,
    }

    pub fn env(arch: Arch, ram: u64) -> Env {
        let m = boot(arch, ram, 2);
        let mode = PagingMode::for_arch(arch, false);
        let lowmem_end = if arch.is_32bit() {
            ram.min(crate::arch::X86_32_MAXMEM_PFN << PAGE_SHIFT)
        } else {
            ram
        };
        let mut frames = PgtableFrames {
            pa: &m.pa,
            cpu: CpuId(0),
        };
        let pt = PageTable::new_kernel(m.pa.direct_map(), &mut frames, mode, PhysAddr(lowmem_end))
            .unwrap();
        let mut vm = Vmalloc::new(AddressSpaceLayout::new(mode, lowmem_end));
        vm.set_iomem(IoResources {
            ram: vec![(PhysAddr(0), PhysAddr(ram))],
            mmio: vec![(PhysAddr(MMIO.0), PhysAddr(MMIO.1))],
        });
        let free0 = free_now(&m.pa);
        Env { m, pt, vm, free0 }
    }

    pub fn free_now(pa: &PageAlloc) -> u64 {
        pa.nr_free_pages() + pa.nr_pcp_pages()
    }

    fn tables_accounted(e: &Env) {
        let n: i64 =
            e.m.pa
                .nodes
                .iter()
                .map(|n| n.stats.get(NodeStat::NrPageTablePages))
                .sum();
        assert_eq!(n as u64, e.pt.count_tables());
        assert_eq!(e.pt.count_tables(), e.pt.count_tables_by_walk());
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    /// Bytes written through the vmalloc address are in each page's own
    /// frame (read through the direct map), and the other way round.
    fn round_trip(arch: Arch, ram: u64) {
        let mut e = env(arch, ram);
        let pa = &e.m.pa;
        let size = 5 * PAGE_SIZE + 123;
        let a =
            e.vm.vmalloc(pa, &mut e.pt, CpuId(0), size, "test_caller")
                .unwrap();
        assert!(e.vm.is_vmalloc_addr(a));
        let data = pattern(size as usize, 7);
        kernel_write(&e.pt, a, &data).unwrap();
        let dm = pa.direct_map();
        let vm = e.vm.find_vm_area(a).unwrap().clone();
        assert_eq!(vm.nr_pages(), 6);
        for (i, &pfn) in vm.pages.iter().enumerate() {
            assert_eq!(
                e.vm.vmalloc_to_pfn(&e.pt, a + i as u64 * PAGE_SIZE),
                Some(pfn)
            );
            let mut page = vec![0u8; PAGE_SIZE as usize];
            dm.read(pfn.phys(), &mut page);
            let lo = i * PAGE_SIZE as usize;
            let hi = (lo + PAGE_SIZE as usize).min(data.len());
            assert_eq!(&page[..hi - lo], &data[lo..hi], "page {i}");
            // PAGE_KERNEL: present, writable, global, supervisor, NX.
            let (pte, level) = e.pt.lookup(a + lo as u64).unwrap();
            assert_eq!(level, 1);
            assert!(pte.present() && pte.writable() && pte.global() && !pte.user());
            assert_eq!(pte.nx(), e.pt.mode().has_nx());
            // The other way: write the frame, read the vmalloc address.
            let back = pattern(PAGE_SIZE as usize, i as u8 + 100);
            dm.write(pfn.phys(), &back);
            let mut got = vec![0u8; PAGE_SIZE as usize];
            kernel_read(&e.pt, a + lo as u64, &mut got).unwrap();
            assert_eq!(got, back);
        }
        if arch.is_32bit() && ram > 896 << 20 {
            // __GFP_HIGHMEM: on a 4 GiB 32-bit machine the pages are highmem.
            assert!(vm
                .pages
                .iter()
                .all(|&p| pa.zone_of(p).unwrap().is_highmem()));
        }
        let mut flushed = vec![];
        e.vm.vfree(pa, &mut e.pt, CpuId(0), a, &mut |s, t| flushed.push((s, t)));
        assert_eq!(flushed, vec![(a, a + 7 * PAGE_SIZE)]);
        assert_eq!(e.pt.translate(a), None);
        assert_eq!(free_now(pa), e.free0);
        crate::debug::check_page_alloc(pa).unwrap();
    }

    #[test]
    fn vmalloc_bytes_reach_the_pages_on_x86_64() {
        round_trip(Arch::X86_64, 64 << 20);
    }

    #[test]
    fn vmalloc_bytes_reach_the_pages_on_pae_highmem() {
        round_trip(Arch::X86Pae, 4 << 30);
    }

    #[test]
    fn vmalloc_bytes_reach_the_pages_on_2level_x86() {
        round_trip(Arch::X86, 64 << 20);
    }

    #[test]
    fn guard_page_follows_each_area() {
        let mut e = env(Arch::X86_64, 64 << 20);
        let pa = &e.m.pa;
        let a =
            e.vm.vmalloc(pa, &mut e.pt, CpuId(0), 3 * PAGE_SIZE, "a")
                .unwrap();
        let b =
            e.vm.vmalloc(pa, &mut e.pt, CpuId(0), PAGE_SIZE, "b")
                .unwrap();
        assert_eq!(a, e.vm.vmalloc_start());
        assert_eq!(b, a + 4 * PAGE_SIZE, "b starts after a's guard page");
        assert!(e.pt.translate(a + 2 * PAGE_SIZE).is_some());
        assert_eq!(e.pt.lookup(a + 3 * PAGE_SIZE), None, "guard page mapped");
        assert_eq!(e.pt.lookup(b + PAGE_SIZE), None, "guard page mapped");
        assert_eq!(e.vm.find_vm_area(a + 3 * PAGE_SIZE).unwrap().addr, a);
        assert_eq!(
            kernel_read(&e.pt, a + 3 * PAGE_SIZE, &mut [0u8; 1]),
            Err(Errno::EFAULT)
        );
        // VM_NO_GUARD areas abut.
        let pages: Vec<Pfn> = (0..2)
            .map(|_| pa.alloc_pages(CpuId(0), Gfp::KERNEL, Order(0)).unwrap())
            .collect();
        let c =
            e.vm.vmap(
                pa,
                &mut e.pt,
                CpuId(0),
                &pages,
                VmallocFlags::MAP | VmallocFlags::NO_GUARD,
                PteFlags::KERNEL,
                "c",
            )
            .unwrap();
        let d =
            e.vm.vmalloc(pa, &mut e.pt, CpuId(0), PAGE_SIZE, "d")
                .unwrap();
        assert_eq!(d, c + 2 * PAGE_SIZE);
        let mut nop = |_: VirtAddr, _: VirtAddr| {};
        for x in [a, b, d] {
            e.vm.vfree(pa, &mut e.pt, CpuId(0), x, &mut nop);
        }
        e.vm.vunmap(pa, &mut e.pt, CpuId(0), c, &mut nop);
        for p in pages {
            pa.free_pages(CpuId(0), p, Order(0));
        }
        assert_eq!(free_now(pa), e.free0);
        assert_eq!(e.vm.free_ranges().count(), 1);
    }

    #[test]
    fn vfree_returns_pages_tables_and_accounting() {
        let mut e = env(Arch::X86_64, 64 << 20);
        let pa = &e.m.pa;
        let tables0 = e.pt.count_tables();
        // 600 pages: the page array (4800 bytes) is vmalloc'ed too.
        let a =
            e.vm.vzalloc(pa, &mut e.pt, CpuId(1), 600 * PAGE_SIZE, "big")
                .unwrap();
        let vm = e.vm.find_vm_area(a).unwrap();
        let arr = vm.pages_array.unwrap();
        assert_eq!(e.vm.find_vm_area(arr).unwrap().nr_pages(), 2);
        assert_eq!(e.vm.nr_vmalloc_pages(), 602);
        assert_eq!(e.vm.vmalloc_used_kb(), 602 * 4);
        assert!(e.pt.count_tables() > tables0);
        tables_accounted(&e);
        // vzalloc: zeroed.
        let mut buf = vec![0xffu8; 3 * PAGE_SIZE as usize];
        kernel_read(&e.pt, a + 100 * PAGE_SIZE, &mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == 0));
        let mut flushes = 0;
        e.vm.vfree(pa, &mut e.pt, CpuId(0), a, &mut |_, _| flushes += 1);
        assert_eq!(flushes, 2, "the area and its page array");
        assert_eq!(e.vm.nr_vmalloc_pages(), 0);
        assert_eq!(e.vm.areas().count(), 0);
        assert_eq!(e.pt.count_tables(), tables0);
        tables_accounted(&e);
        assert_eq!(free_now(pa), e.free0);
        crate::debug::check_page_alloc(pa).unwrap();
        // Bad frees warn and change nothing.
        e.vm.vfree(pa, &mut e.pt, CpuId(0), a, &mut |_, _| panic!("flushed"));
        assert!(pa
            .log
            .render()
            .contains("Trying to vfree() nonexistent vm area (0xffffc90000000000)"));
        e.vm.vunmap(pa, &mut e.pt, CpuId(0), a, &mut |_, _| panic!("flushed"));
        assert!(pa
            .log
            .render()
            .contains("Trying to vunmap() nonexistent vm area (0xffffc90000000000)"));
        assert_eq!(free_now(pa), e.free0);
    }

    #[test]
    fn vmalloc_failures_leave_nothing_behind() {
        let mut e = env(Arch::X86_64, 32 << 20);
        let pa = &e.m.pa;
        assert_eq!(e.vm.vmalloc(pa, &mut e.pt, CpuId(0), 0, "z"), None);
        assert_eq!(e.vm.vmalloc(pa, &mut e.pt, CpuId(0), 1 << 30, "huge"), None);
        assert!(pa
            .log
            .render()
            .contains("vmalloc error: size 1073741824, exceeds total pages"));
        // Nearly all of RAM: the page allocator runs dry part way.
        let n = pa.totalram_pages() - 16;
        assert_eq!(
            e.vm.vmalloc(pa, &mut e.pt, CpuId(0), n * PAGE_SIZE, "most"),
            None
        );
        assert!(
            pa.log.render().contains("failed to allocate pages"),
            "{}",
            pa.log.render()
        );
        assert_eq!(e.vm.areas().count(), 0);
        assert_eq!(e.vm.nr_vmalloc_pages(), 0);
        assert_eq!(free_now(pa), e.free0);
        crate::debug::check_page_alloc(pa).unwrap();
        // A range too small for the request.
        let s = e.vm.vmalloc_start();
        let req = VmallocRequest {
            size: 2 * PAGE_SIZE,
            align: 1,
            start: s,
            end: s + 2 * PAGE_SIZE,
            gfp: Gfp::KERNEL,
            prot: PteFlags::KERNEL,
            vm_flags: VmallocFlags::EMPTY,
            nid: None,
        };
        assert_eq!(
            e.vm.vmalloc_node_range(pa, &mut e.pt, CpuId(0), req, "tight"),
            None
        );
        assert!(pa.log.render().contains("vm_struct allocation failed"));
        // An empty or inverted range is refused, not a panic.
        let inv = VmallocRequest {
            start: s + PAGE_SIZE,
            end: s,
            ..req
        };
        assert_eq!(
            e.vm.vmalloc_node_range(pa, &mut e.pt, CpuId(0), inv, "inv"),
            None
        );
        assert_eq!(free_now(pa), e.free0);
    }

    /// An ioremap of whole, aligned 2 MiB blocks is aligned to its size up
    /// to IOREMAP_MAX_ORDER (PUD_SHIFT on x86-64, PMD_SHIFT on 32-bit x86)
    /// and mapped by PMD entries, as `ioremap_page_range` does with huge
    /// vmap; an unaligned tail takes 4 KiB pages; iounmap gives every table
    /// back. (arm64: tests/arm64.rs in the machine crate.)
    #[test]
    fn ioremap_maps_aligned_blocks_with_huge_entries() {
        for (arch, align) in [(Arch::X86_64, 8u64 << 20), (Arch::X86Pae, 2 << 20)] {
            let mut e = env(arch, 64 << 20);
            let pa = &e.m.pa;
            let cpu = CpuId(0);
            let free0 = free_now(pa);
            let size = (4 << 20) + 0x3000;
            let phys = MMIO.0;
            let a =
                e.vm.ioremap(pa, &mut e.pt, cpu, PhysAddr(phys), size, "ecam");
            let a = a.unwrap();
            // 4 MiB + 12 KiB rounds up to 8 MiB, clamped to the max order.
            assert_eq!(a.0 % align, 0, "{arch:?} {:#x}", a.0);
            for off in [0u64, 0x1000, 2 << 20, (4 << 20) - 1] {
                let (_, level) = e.pt.lookup(a + off).unwrap();
                assert_eq!(level, 2, "{arch:?} +{off:#x}");
                assert_eq!(e.pt.translate(a + off), Some(PhysAddr(phys + off)));
            }
            for off in [4u64 << 20, (4 << 20) + 0x2000] {
                let (_, level) = e.pt.lookup(a + off).unwrap();
                assert_eq!(level, 1, "{arch:?} +{off:#x}");
                assert_eq!(e.pt.translate(a + off), Some(PhysAddr(phys + off)));
            }
            e.vm.iounmap(pa, &mut e.pt, cpu, a, &mut |_, _| {});
            assert_eq!(e.pt.lookup(a), None);
            assert_eq!(free_now(pa), free0, "{arch:?}: a table was kept");
        }
    }

    #[test]
    fn ioremap_is_uncached_and_refuses_ram() {
        let mut e = env(Arch::X86_64, 64 << 20);
        let pa = &e.m.pa;
        let cpu = CpuId(0);
        let a =
            e.vm.ioremap(
                pa,
                &mut e.pt,
                cpu,
                PhysAddr(0xfec0_0000 - 0x1000 + 0x10),
                0x20,
                "dev",
            )
            .unwrap();
        assert_eq!(a.page_offset(), 0x10);
        assert_eq!(e.pt.translate(a), Some(PhysAddr(0xfebf_f010)));
        let (pte, _) = e.pt.lookup(a).unwrap();
        assert_ne!(pte.raw() & Pte::PCD, 0, "ioremap must be uncached");
        assert_eq!(pte.raw() & Pte::PWT, 0, "UC- has PWT clear");
        assert!(pte.global() && pte.nx() && pte.writable() && !pte.user());
        let vm = e.vm.find_vm_area(a).unwrap();
        assert_eq!(
            (vm.phys_addr, vm.size, vm.nr_pages()),
            (Some(PhysAddr(0xfebf_f000)), 2 * PAGE_SIZE, 0)
        );
        let u =
            e.vm.ioremap_uc(pa, &mut e.pt, cpu, PhysAddr(MMIO.0), 0x1000, "dev")
                .unwrap();
        let (pte, _) = e.pt.lookup(u).unwrap();
        assert_eq!(pte.raw() & (Pte::PCD | Pte::PWT), Pte::PCD | Pte::PWT);
        // Free RAM is refused, as Linux does.
        assert_eq!(
            e.vm.ioremap(pa, &mut e.pt, cpu, PhysAddr(16 << 20), 0x2000, "bad"),
            None
        );
        let log = pa.log.render();
        assert!(
            log.contains("ioremap on RAM at 0x0000000001000000 - 0x0000000001001fff"),
            "{log}"
        );
        // Straddling the start of the window and outside any window.
        assert_eq!(
            e.vm.ioremap(pa, &mut e.pt, cpu, PhysAddr(MMIO.0 - 0x1000), 0x2000, "x"),
            None
        );
        assert_eq!(
            e.vm.ioremap(pa, &mut e.pt, cpu, PhysAddr(0x1_0000_0000), 0x1000, "x"),
            None
        );
        assert_eq!(
            e.vm.ioremap(pa, &mut e.pt, cpu, PhysAddr(MMIO.0), 0, "x"),
            None
        );
        assert_eq!(e.vm.areas().count(), 2);
        let mut nop = |_: VirtAddr, _: VirtAddr| {};
        e.vm.iounmap(pa, &mut e.pt, cpu, a, &mut nop);
        e.vm.iounmap(pa, &mut e.pt, cpu, a, &mut nop);
        assert!(pa.log.render().contains("iounmap: bad address"));
        e.vm.iounmap(pa, &mut e.pt, cpu, u, &mut nop);
        assert_eq!(e.vm.areas().count(), 0);
        assert_eq!(free_now(pa), e.free0);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Vmalloc(u64),
        Vmap(u64),
        Ioremap(u64, u64),
        Free(usize),
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        proptest::collection::vec(
            prop_oneof![
                4 => (1u64..40).prop_map(Op::Vmalloc),
                2 => (1u64..8).prop_map(Op::Vmap),
                2 => (0u64..0x400, 1u64..0x140).prop_map(|(p, n)| Op::Ioremap(p, n)),
                4 => any::<usize>().prop_map(Op::Free),
            ],
            1..50,
        )
    }

    /// What the model expects: the lowest `align`ed start in
    /// [vstart, vend) whose `size` bytes touch no live area.
    fn lowest_fit(
        live: &[(u64, u64)],
        size: u64,
        align: u64,
        vstart: u64,
        vend: u64,
    ) -> Option<u64> {
        let up = |x: u64| (x + align - 1) & !(align - 1);
        core::iter::once(up(vstart))
            .chain(live.iter().map(|&(_, e)| up(e)))
            .filter(|&c| c >= vstart && c + size <= vend)
            .filter(|&c| live.iter().all(|&(s, e)| c + size <= s || c >= e))
            .min()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Random vmalloc/vmap/ioremap/free against a model: areas are
        /// where the lowest-fit rule puts them, aligned, disjoint, inside
        /// the vmalloc area, their pages and guard pages mapped as they
        /// should be; busy and free ranges tile the address space; freeing
        /// everything restores the free pages.
        #[test]
        fn areas_match_a_model(ops in ops()) {
            let mut e = env(Arch::X86_64, 32 << 20);
            let pa = &e.m.pa;
            let cpu = CpuId(0);
            let (vs, ve) = (e.vm.vmalloc_start().0, e.vm.vmalloc_end().0);
            // (start, end with guard, owned vmap pages, is ioremap)
            let mut live: Vec<(u64, u64, Vec<Pfn>, bool)> = vec![];
            let mut nop = |_: VirtAddr, _: VirtAddr| {};
            for op in ops {
                let spans: Vec<(u64, u64)> = live.iter().map(|l| (l.0, l.1)).collect();
                match op {
                    Op::Vmalloc(n) => {
                        let want = lowest_fit(&spans, (n + 1) * PAGE_SIZE, PAGE_SIZE, vs, ve);
                        let got = e.vm.vmalloc(pa, &mut e.pt, cpu, n * PAGE_SIZE - 5, "p");
                        prop_assert_eq!(got.map(|a| a.0), want);
                        live.push((want.unwrap(), want.unwrap() + (n + 1) * PAGE_SIZE, vec![], false));
                    }
                    Op::Vmap(n) => {
                        let pages: Vec<Pfn> = (0..n)
                            .map(|_| pa.alloc_pages(cpu, Gfp::KERNEL, Order(0)).unwrap())
                            .collect();
                        let want = lowest_fit(&spans, (n + 1) * PAGE_SIZE, PAGE_SIZE, vs, ve);
                        let got = e.vm.vmap(pa, &mut e.pt, cpu, &pages, VmallocFlags::MAP, PteFlags::KERNEL, "m");
                        prop_assert_eq!(got.map(|a| a.0), want);
                        live.push((want.unwrap(), want.unwrap() + (n + 1) * PAGE_SIZE, pages, false));
                    }
                    Op::Ioremap(p, n) => {
                        let phys = MMIO.0 + p * PAGE_SIZE + 8;
                        let size = n * PAGE_SIZE - 8;
                        let align = (n * PAGE_SIZE).next_power_of_two().clamp(PAGE_SIZE, 1 << ioremap_max_order(e.pt.mode()));
                        let want = lowest_fit(&spans, (n + 1) * PAGE_SIZE, align, vs, ve);
                        let got = e.vm.ioremap(pa, &mut e.pt, cpu, PhysAddr(phys), size, "io");
                        prop_assert_eq!(got.map(|a| a.0), want.map(|w| w + 8));
                        let w = want.unwrap();
                        prop_assert_eq!(e.pt.translate(VirtAddr(w + (n - 1) * PAGE_SIZE)),
                            Some(PhysAddr(phys - 8 + (n - 1) * PAGE_SIZE)));
                        live.push((w, w + (n + 1) * PAGE_SIZE, vec![], true));
                    }
                    Op::Free(i) if !live.is_empty() => {
                        let (s, end, pages, io) = live.swap_remove(i % live.len());
                        let mut fl = None;
                        if io {
                            e.vm.iounmap(pa, &mut e.pt, cpu, VirtAddr(s + 8), &mut |a, b| fl = Some((a, b)));
                        } else if pages.is_empty() {
                            e.vm.vfree(pa, &mut e.pt, cpu, VirtAddr(s), &mut |a, b| fl = Some((a, b)));
                        } else {
                            e.vm.vunmap(pa, &mut e.pt, cpu, VirtAddr(s), &mut |a, b| fl = Some((a, b)));
                            for p in pages {
                                pa.free_pages(cpu, p, Order(0));
                            }
                        }
                        prop_assert_eq!(fl, Some((VirtAddr(s), VirtAddr(end))));
                    }
                    Op::Free(_) => {}
                }
                // Invariants.
                let areas: Vec<&VmStruct> = e.vm.areas().collect();
                prop_assert_eq!(areas.len(), live.len());
                let mut cover: Vec<(u64, u64)> = e.vm.free_ranges().map(|(s, t)| (s.0, t.0)).collect();
                for (i, v) in areas.iter().enumerate() {
                    prop_assert!(v.addr.0 >= vs && v.end().0 <= ve);
                    if i > 0 {
                        prop_assert!(areas[i - 1].end() <= v.addr, "overlap");
                    }
                    prop_assert!(live.iter().any(|l| (l.0, l.1) == (v.addr.0, v.end().0)));
                    let mapped = v.mapped_size() / PAGE_SIZE;
                    for k in 0..mapped {
                        let va = v.addr + k * PAGE_SIZE;
                        prop_assert!(e.pt.translate(va).is_some());
                        if let Some(&p) = v.pages.get(k as usize) {
                            prop_assert_eq!(e.pt.translate(va), Some(p.phys()));
                        }
                    }
                    prop_assert_eq!(e.pt.lookup(v.end() - PAGE_SIZE), None, "guard page mapped");
                    cover.push((v.addr.0, v.end().0));
                }
                cover.sort();
                prop_assert_eq!(cover.first().map(|c| c.0), Some(0));
                prop_assert_eq!(cover.last().map(|c| c.1), Some(u64::MAX));
                for w in cover.windows(2) {
                    prop_assert_eq!(w[0].1, w[1].0, "busy and free ranges must tile");
                }
            }
            for (s, _, pages, io) in live {
                if io {
                    e.vm.iounmap(pa, &mut e.pt, cpu, VirtAddr(s), &mut nop);
                } else if pages.is_empty() {
                    e.vm.vfree(pa, &mut e.pt, cpu, VirtAddr(s), &mut nop);
                } else {
                    e.vm.vunmap(pa, &mut e.pt, cpu, VirtAddr(s), &mut nop);
                    for p in pages {
                        pa.free_pages(cpu, p, Order(0));
                    }
                }
            }
            prop_assert_eq!(e.vm.free_ranges().count(), 1);
            prop_assert_eq!(free_now(pa), e.free0);
            prop_assert_eq!(e.vm.nr_vmalloc_pages(), 0);
            crate::debug::check_page_alloc(pa).unwrap();
        }
    }
}
