//! Highmem on 32-bit x86: pages above the direct map reached through
//! temporary kernel mappings, the persistent kmap window (`kmap`/`kunmap`,
//! reference-counted slots at PKMAP_BASE) and per-CPU fixmap slots
//! (`kmap_atomic`/`kmap_local`). Mirrors mm/highmem.c and
//! include/linux/highmem-internal.h.
//!
//! On x86-64 (and for lowmem pages on 32-bit) every page has its direct-map
//! address, so kmap is `page_address` and nothing is mapped.
//!
//! Simplifications:
//! - Where Linux sleeps in `kmap_high` until a slot frees up, `kmap`
//!   returns EAGAIN.
//! - The fixmap's kmap slots start at an assumed FIX_KMAP_BEGIN (after
//!   FIX_HOLE, the local APIC and 64 IO-APIC slots of a typical config) and
//!   take KM_MAX_IDX slots per CPU of the machine, not NR_CPUS.
//! - State is per machine and unlocked (`&mut self`); Linux uses
//!   `kmap_lock` and per-task kmap_local stacks (we keep them per CPU, as
//!   `kmap_atomic` was before 5.11).

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

use crate::arch::layout::AddressSpaceLayout;
use crate::arch::pte::{Pte, PteFlags};
use crate::errno::Errno;
use crate::page_alloc::{CpuId, PageAlloc};
use crate::pgalloc::PgtableFrames;
use crate::pgtable::PageTable;
use crate::types::{Pfn, VirtAddr, PAGE_SHIFT, PAGE_SIZE};

/// KM_MAX_IDX: kmap_local/kmap_atomic slots per CPU (highmem-internal.h,
/// without CONFIG_DEBUG_KMAP_LOCAL).
pub const KM_MAX_IDX: usize = 16;

/// FIX_KMAP_BEGIN in x86-32's `enum fixed_addresses` (fixmap.h): after
/// FIX_HOLE, FIX_APIC_BASE and MAX_IO_APICS = 64 IO-APIC slots. Assumed
/// for a typical config (the real index depends on it).
pub const FIX_KMAP_BEGIN: u64 = 1 + 1 + 64;

/// `kmap_prot`: PAGE_KERNEL on x86-32.
pub const KMAP_PROT: PteFlags = PteFlags::KERNEL;

/// The kmap state of one machine: pkmap slots with their reference
/// counts (`pkmap_count`), which page each highmem page is kmapped at
/// (`page_address_htable`), and each CPU's stack of atomic kmaps.
#[derive(Debug)]
pub struct Highmem {
    layout: AddressSpaceLayout,
    /// LAST_PKMAP, 0 without highmem.
    last_pkmap: usize,
    /// pkmap_count: 0 = free and unmapped, 1 = mapped, unused, waiting
    /// for a flush; n > 1 = n - 1 users.
    pkmap_count: Vec<u32>,
    /// The page each slot maps (Linux reads it back from the PTE).
    pkmap_page: Vec<Option<Pfn>>,
    /// last_pkmap_nr: where the search for a free slot resumes.
    last_pkmap_nr: usize,
    /// set_page_address: highmem page -> its pkmap slot.
    page_slot: BTreeMap<Pfn, usize>,
    /// Per CPU: the pages mapped by kmap_atomic, innermost last.
    atomic: Vec<Vec<Pfn>>,
}

impl Highmem {
    /// Sets up kmap for a machine with `nr_cpus` CPUs (`kmap_init`,
    /// `permanent_kmaps_init`): on 32-bit, allocates the page tables of the
    /// pkmap window and of the fixmap's kmap slots in the kernel's page
    /// tables `pt`, as Linux does at boot, so kmap never allocates. EINVAL
    /// if the CPUs' fixmap slots would reach down into the pkmap window;
    /// ENOMEM if the tables cannot be had.
    pub fn new(
        pa: &PageAlloc,
        pt: &mut PageTable,
        cpu: CpuId,
        layout: AddressSpaceLayout,
        nr_cpus: usize,
    ) -> Result<Highmem, Errno> {
        let last_pkmap = if layout.pkmap_base.is_some() {
            layout.last_pkmap as usize
        } else {
            0
        };
        let hm = Highmem {
            layout,
            last_pkmap,
            pkmap_count: vec![0; last_pkmap],
            pkmap_page: vec![None; last_pkmap],
            last_pkmap_nr: 0,
            page_slot: BTreeMap::new(),
            atomic: vec![Vec::new(); nr_cpus],
        };
        if last_pkmap == 0 {
            return Ok(hm);
        }
        let lowest_fix = hm.fix_kmap_addr(nr_cpus.saturating_sub(1), KM_MAX_IDX - 1);
        if lowest_fix.0 < hm.pkmap_addr(last_pkmap).0 {
            return Err(Errno::EINVAL);
        }
        let mut frames = PgtableFrames { pa, cpu };
        let span = pt.mode().span(2);
        let mut prealloc = |start: u64, end: u64| -> Result<(), Errno> {
            let mut va = start;
            while va < end {
                pt.set_pte(&mut frames, VirtAddr(va), Pte::NONE)?;
                va = (va | (span - 1)).saturating_add(1);
            }
            Ok(())
        };
        prealloc(hm.pkmap_addr(0).0, hm.pkmap_addr(last_pkmap).0)?;
        prealloc(lowest_fix.0, layout.fixaddr_top)?;
        Ok(hm)
    }

    /// LAST_PKMAP: slots of the persistent kmap window (0 on x86-64).
    pub fn last_pkmap(&self) -> usize {
        self.last_pkmap
    }

    /// PKMAP_ADDR(nr).
    pub fn pkmap_addr(&self, nr: usize) -> VirtAddr {
        VirtAddr(self.layout.pkmap_base.unwrap_or(0) + ((nr as u64) << PAGE_SHIFT))
    }

    /// pkmap_count[nr].
    pub fn pkmap_count(&self, nr: usize) -> u32 {
        self.pkmap_count[nr]
    }

    /// The fixmap address of kmap_atomic slot `idx` of `cpu`:
    /// `__fix_to_virt(FIX_KMAP_BEGIN + idx + KM_MAX_IDX * cpu)`.
    pub fn fix_kmap_addr(&self, cpu: usize, idx: usize) -> VirtAddr {
        let fix = FIX_KMAP_BEGIN + (idx + KM_MAX_IDX * cpu) as u64;
        VirtAddr(self.layout.fixaddr_top - (fix << PAGE_SHIFT))
    }

    /// PageHighMem: the page lies in ZONE_HIGHMEM.
    pub fn is_highmem(pa: &PageAlloc, pfn: Pfn) -> bool {
        pa.zone_of(pfn).is_some_and(|z| z.is_highmem())
    }

    /// `page_address`: the direct-map address of a lowmem page; for a
    /// highmem page its kmap address while it has a pkmap slot, else
    /// `None`.
    pub fn page_address(&self, pa: &PageAlloc, pfn: Pfn) -> Option<VirtAddr> {
        if !Self::is_highmem(pa, pfn) {
            return Some(self.layout.phys_to_virt(pfn.phys().0));
        }
        self.page_slot.get(&pfn).map(|&nr| self.pkmap_addr(nr))
    }

    /// `kmap(page)`: a kernel address for the page until `kunmap`. Lowmem
    /// pages give their direct-map address; a highmem page takes a
    /// reference on its pkmap slot, mapping it into a free one first
    /// (`map_new_virtual`: the search wraps around the window, and on
    /// each wrap unused slots are unmapped and `flush(start, end)` is
    /// called on the whole window, `flush_all_zero_pkmaps`). EAGAIN when
    /// every slot is in use (Linux sleeps).
    pub fn kmap(
        &mut self,
        pa: &PageAlloc,
        pt: &mut PageTable,
        cpu: CpuId,
        pfn: Pfn,
        flush: &mut dyn FnMut(VirtAddr, VirtAddr),
    ) -> Result<VirtAddr, Errno> {
        if !Self::is_highmem(pa, pfn) {
            return Ok(self.layout.phys_to_virt(pfn.phys().0));
        }
        let nr = match self.page_slot.get(&pfn) {
            Some(&nr) => nr,
            None => self.map_new_virtual(pa, pt, cpu, pfn, flush)?,
        };
        self.pkmap_count[nr] += 1;
        debug_assert!(self.pkmap_count[nr] >= 2);
        Ok(self.pkmap_addr(nr))
    }

    fn map_new_virtual(
        &mut self,
        pa: &PageAlloc,
        pt: &mut PageTable,
        cpu: CpuId,
        pfn: Pfn,
        flush: &mut dyn FnMut(VirtAddr, VirtAddr),
    ) -> Result<usize, Errno> {
        let mask = self.last_pkmap - 1;
        let mut count = self.last_pkmap;
        loop {
            self.last_pkmap_nr = (self.last_pkmap_nr + 1) & mask;
            if self.last_pkmap_nr == 0 {
                self.flush_all_zero_pkmaps(pt, flush);
                count = self.last_pkmap;
            }
            if self.pkmap_count[self.last_pkmap_nr] == 0 {
                break;
            }
            count -= 1;
            if count == 0 {
                return Err(Errno::EAGAIN);
            }
        }
        let nr = self.last_pkmap_nr;
        let mut frames = PgtableFrames { pa, cpu };
        pt.map(&mut frames, self.pkmap_addr(nr), pfn, KMAP_PROT)?;
        self.pkmap_count[nr] = 1;
        self.pkmap_page[nr] = Some(pfn);
        self.page_slot.insert(pfn, nr);
        Ok(nr)
    }

    /// `flush_all_zero_pkmaps`: unmaps every slot that is mapped but
    /// unused (count 1) and, if there was one, flushes the window.
    fn flush_all_zero_pkmaps(
        &mut self,
        pt: &mut PageTable,
        flush: &mut dyn FnMut(VirtAddr, VirtAddr),
    ) {
        let mut need_flush = false;
        for nr in 0..self.last_pkmap {
            if self.pkmap_count[nr] != 1 {
                continue;
            }
            self.pkmap_count[nr] = 0;
            pt.unmap(self.pkmap_addr(nr));
            if let Some(p) = self.pkmap_page[nr].take() {
                self.page_slot.remove(&p);
            }
            need_flush = true;
        }
        if need_flush {
            flush(self.pkmap_addr(0), self.pkmap_addr(self.last_pkmap));
        }
    }

    /// `kmap_flush_unused`: unmaps the unused pkmap slots now.
    pub fn kmap_flush_unused(
        &mut self,
        pt: &mut PageTable,
        flush: &mut dyn FnMut(VirtAddr, VirtAddr),
    ) {
        self.flush_all_zero_pkmaps(pt, flush);
    }

    /// `kunmap(page)`: drops a kmap reference. The slot stays mapped (and
    /// `page_address` keeps answering) until a wrap of the search or
    /// `kmap_flush_unused` reclaims it. EINVAL for a highmem page that is
    /// not kmapped (a BUG in Linux).
    pub fn kunmap(&mut self, pa: &PageAlloc, pfn: Pfn) -> Result<(), Errno> {
        if !Self::is_highmem(pa, pfn) {
            return Ok(());
        }
        let &nr = self.page_slot.get(&pfn).ok_or(Errno::EINVAL)?;
        if self.pkmap_count[nr] < 2 {
            return Err(Errno::EINVAL);
        }
        self.pkmap_count[nr] -= 1;
        Ok(())
    }

    /// `kmap_atomic(page)` / `kmap_local_page`: maps a highmem page at the
    /// CPU's next fixmap slot (a stack: unmap in reverse order); lowmem
    /// pages give their direct-map address and take no slot. EBUSY when
    /// the CPU's KM_MAX_IDX slots are taken (a BUG in Linux).
    pub fn kmap_atomic(
        &mut self,
        pa: &PageAlloc,
        pt: &mut PageTable,
        cpu: CpuId,
        pfn: Pfn,
    ) -> Result<VirtAddr, Errno> {
        if !Self::is_highmem(pa, pfn) {
            return Ok(self.layout.phys_to_virt(pfn.phys().0));
        }
        let stack = self.atomic.get(cpu.0).ok_or(Errno::EINVAL)?;
        let idx = stack.len();
        if idx >= KM_MAX_IDX {
            return Err(Errno::EBUSY);
        }
        let va = self.fix_kmap_addr(cpu.0, idx);
        debug_assert!(pt.lookup(va).is_none(), "kmap_atomic slot in use");
        let mut frames = PgtableFrames { pa, cpu };
        pt.map(&mut frames, va, pfn, KMAP_PROT)?;
        self.atomic[cpu.0].push(pfn);
        Ok(va)
    }

    /// `kunmap_atomic(addr)` / `kunmap_local`: undoes the CPU's innermost
    /// kmap_atomic, clearing the slot and flushing its page on this CPU
    /// (`flush(va, va + PAGE_SIZE)`). Addresses outside the fixmap's kmap
    /// slots (lowmem) are ignored; EINVAL if `addr` is not the innermost
    /// mapping.
    pub fn kunmap_atomic(
        &mut self,
        pt: &mut PageTable,
        cpu: CpuId,
        addr: VirtAddr,
        flush: &mut dyn FnMut(VirtAddr, VirtAddr),
    ) -> Result<(), Errno> {
        if self.last_pkmap == 0 {
            return Ok(());
        }
        let cpus = self.atomic.len();
        let lo = self.fix_kmap_addr(cpus.saturating_sub(1), KM_MAX_IDX - 1);
        let hi = self.fix_kmap_addr(0, 0);
        if addr < lo || addr >= hi + PAGE_SIZE {
            return Ok(());
        }
        let stack = self.atomic.get(cpu.0).ok_or(Errno::EINVAL)?;
        let Some(idx) = stack.len().checked_sub(1) else {
            return Err(Errno::EINVAL);
        };
        let va = self.fix_kmap_addr(cpu.0, idx);
        if addr.page_down() != va {
            return Err(Errno::EINVAL);
        }
        pt.unmap(va);
        flush(va, va + PAGE_SIZE);
        self.atomic[cpu.0].pop();
        Ok(())
    }

    /// Depth of `cpu`'s kmap_atomic stack.
    pub fn atomic_depth(&self, cpu: CpuId) -> usize {
        self.atomic.get(cpu.0).map_or(0, |s| s.len())
    }

    /// Reads kernel virtual memory through the page tables (a kmap or
    /// direct-map address): the bytes are reached only via the mapping.
    pub fn read(&self, pt: &PageTable, va: VirtAddr, buf: &mut [u8]) -> Result<(), Errno> {
        crate::vmalloc::kernel_read(pt, va, buf)
    }

    /// Writes kernel virtual memory through the page tables.
    pub fn write(&self, pt: &PageTable, va: VirtAddr, data: &[u8]) -> Result<(), Errno> {
        crate::vmalloc::kernel_write(pt, va, data)
    }

    /// `memcpy_from_page`: copies `buf.len()` bytes at `offset` in the
    /// page out through a kmap_atomic mapping (EINVAL past the page end).
    pub fn memcpy_from_page(
        &mut self,
        pa: &PageAlloc,
        pt: &mut PageTable,
        cpu: CpuId,
        pfn: Pfn,
        offset: u64,
        buf: &mut [u8],
        flush: &mut dyn FnMut(VirtAddr, VirtAddr),
    ) -> Result<(), Errno> {
        if offset + buf.len() as u64 > PAGE_SIZE {
            return Err(Errno::EINVAL);
        }
        let va = self.kmap_atomic(pa, pt, cpu, pfn)?;
        let r = self.read(pt, va + offset, buf);
        self.kunmap_atomic(pt, cpu, va, flush)?;
        r
    }

    /// `memcpy_to_page`: copies `data` to `offset` in the page through a
    /// kmap_atomic mapping.
    #[allow(clippy::too_many_arguments)]
    pub fn memcpy_to_page(
        &mut self,
        pa: &PageAlloc,
        pt: &mut PageTable,
        cpu: CpuId,
        pfn: Pfn,
        offset: u64,
        data: &[u8],
        flush: &mut dyn FnMut(VirtAddr, VirtAddr),
    ) -> Result<(), Errno> {
        if offset + data.len() as u64 > PAGE_SIZE {
            return Err(Errno::EINVAL);
        }
        let va = self.kmap_atomic(pa, pt, cpu, pfn)?;
        let r = self.write(pt, va + offset, data);
        self.kunmap_atomic(pt, cpu, va, flush)?;
        r
    }
}
