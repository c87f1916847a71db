//! Kernel-side memory services of a machine: vmalloc/vmap/ioremap in the
//! vmalloc area and kmap of HighMem pages, with the TLB shootdowns Linux
//! does for kernel ranges (`flush_tlb_kernel_range` on every CPU), and
//! kernel reads/writes that go through the kernel's page tables.

use mm::errno::Errno;
use mm::page_alloc::CpuId;
use mm::types::{Pfn, PhysAddr, VirtAddr};
use mm::vmalloc::{kernel_read, kernel_write};

use crate::machine::Machine;
use crate::mmu::Mmu;

/// Flushes `[start, end)` of the kernel half on every CPU.
pub(crate) fn flush_all(cpus: &mut [Mmu]) -> impl FnMut(VirtAddr, VirtAddr) + '_ {
    move |start, end| {
        for c in cpus.iter_mut() {
            c.flush_kernel_range(start, end);
        }
    }
}

impl Machine {
    /// `vmalloc(size)` (zeroed with `zero`), tagged with `caller` for
    /// /proc/vmallocinfo. ENOMEM when memory or address space runs out.
    pub fn vmalloc(&mut self, size: u64, zero: bool, caller: &str) -> Result<VirtAddr, Errno> {
        let pt = self.kernel_pt.as_mut().ok_or(Errno::ENOSYS)?;
        let r = if zero {
            self.vmalloc.vzalloc(&self.pa, pt, CpuId(0), size, caller)
        } else {
            self.vmalloc.vmalloc(&self.pa, pt, CpuId(0), size, caller)
        };
        r.ok_or(Errno::ENOMEM)
    }

    /// `vfree`, `vunmap` and `iounmap`: frees a vmalloc-area mapping (and
    /// the pages vmalloc took) and flushes the range from every TLB.
    pub fn vfree(&mut self, addr: VirtAddr) -> Result<(), Errno> {
        let pt = self.kernel_pt.as_mut().ok_or(Errno::ENOSYS)?;
        let area = self.vmalloc.find_vm_area(addr).ok_or(Errno::EINVAL)?;
        let is_io = area.flags.contains(mm::vmalloc::VmallocFlags::IOREMAP);
        let mut flush = flush_all(&mut self.cpus);
        if is_io {
            self.vmalloc
                .iounmap(&self.pa, pt, CpuId(0), addr, &mut flush);
        } else {
            self.vmalloc.vfree(&self.pa, pt, CpuId(0), addr, &mut flush);
        }
        Ok(())
    }

    /// `vmap(pages)`: makes already allocated pages virtually contiguous.
    pub fn vmap(&mut self, pages: &[Pfn], caller: &str) -> Result<VirtAddr, Errno> {
        let pt = self.kernel_pt.as_mut().ok_or(Errno::ENOSYS)?;
        self.vmalloc
            .vmap(
                &self.pa,
                pt,
                CpuId(0),
                pages,
                mm::vmalloc::VmallocFlags::MAP,
                mm::arch::pte::PteFlags::KERNEL,
                caller,
            )
            .ok_or(Errno::ENOMEM)
    }

    /// `ioremap(phys, size)`: an uncached mapping of device memory declared
    /// in the firmware map. EINVAL for RAM or undeclared ranges (logged).
    pub fn ioremap(&mut self, phys: PhysAddr, size: u64, caller: &str) -> Result<VirtAddr, Errno> {
        let pt = self.kernel_pt.as_mut().ok_or(Errno::ENOSYS)?;
        self.vmalloc
            .ioremap(&self.pa, pt, CpuId(0), phys, size, caller)
            .ok_or(Errno::EINVAL)
    }

    /// `kmap(page)`: the page's kernel address, mapping a HighMem page into
    /// the persistent kmap window. EAGAIN when every slot is busy.
    pub fn kmap(&mut self, pfn: Pfn) -> Result<VirtAddr, Errno> {
        let pt = self.kernel_pt.as_mut().ok_or(Errno::ENOSYS)?;
        match self.highmem.as_mut() {
            Some(h) => h.kmap(&self.pa, pt, CpuId(0), pfn, &mut flush_all(&mut self.cpus)),
            None => self.pa.page_address(pfn).ok_or(Errno::EINVAL),
        }
    }

    /// `page_address(page)`: the direct-map address of a lowmem page, the
    /// kmap address of a kmapped HighMem page, `None` otherwise.
    pub fn page_address(&self, pfn: Pfn) -> Option<VirtAddr> {
        match &self.highmem {
            Some(h) => h.page_address(&self.pa, pfn),
            None => self.pa.page_address(pfn),
        }
    }

    /// `kunmap(page)`.
    pub fn kunmap(&mut self, pfn: Pfn) -> Result<(), Errno> {
        match self.highmem.as_mut() {
            Some(h) => h.kunmap(&self.pa, pfn),
            None => Ok(()),
        }
    }

    /// `kmap_atomic(page)` on `cpu`: a per-CPU fixmap slot.
    pub fn kmap_atomic(&mut self, cpu: usize, pfn: Pfn) -> Result<VirtAddr, Errno> {
        let pt = self.kernel_pt.as_mut().ok_or(Errno::ENOSYS)?;
        match self.highmem.as_mut() {
            Some(h) => h.kmap_atomic(&self.pa, pt, CpuId(cpu), pfn),
            None => self.pa.page_address(pfn).ok_or(Errno::EINVAL),
        }
    }

    /// `kunmap_atomic(addr)` on `cpu`, innermost mapping first.
    pub fn kunmap_atomic(&mut self, cpu: usize, addr: VirtAddr) -> Result<(), Errno> {
        let pt = self.kernel_pt.as_mut().ok_or(Errno::ENOSYS)?;
        match self.highmem.as_mut() {
            Some(h) => {
                let mmu = self.cpus.get_mut(cpu).ok_or(Errno::EINVAL)?;
                h.kunmap_atomic(pt, CpuId(cpu), addr, &mut |s, e| {
                    mmu.flush_kernel_range(s, e)
                })
            }
            None => Ok(()),
        }
    }

    /// Reads kernel virtual memory through the kernel page tables (EFAULT
    /// where nothing is mapped).
    pub fn kernel_read(&self, va: VirtAddr, buf: &mut [u8]) -> Result<(), Errno> {
        kernel_read(self.kernel_pt.as_ref().ok_or(Errno::ENOSYS)?, va, buf)
    }

    /// Writes kernel virtual memory through the kernel page tables.
    pub fn kernel_write(&self, va: VirtAddr, data: &[u8]) -> Result<(), Errno> {
        kernel_write(self.kernel_pt.as_ref().ok_or(Errno::ENOSYS)?, va, data)
    }
}
