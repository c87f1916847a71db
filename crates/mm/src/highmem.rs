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

    /// `pkmap_count[nr]`.
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
    #[allow(clippy::too_many_arguments)]
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;
    use crate::gfp::Gfp;
    use crate::types::Order;
    use crate::vmalloc::tests::{env, free_now, Env};

    fn setup(arch: Arch, ram: u64) -> (Env, Highmem) {
        let mut e = env(arch, ram);
        let layout = *e.vm.layout();
        let hm = Highmem::new(&e.m.pa, &mut e.pt, CpuId(0), layout, 2).unwrap();
        e.free0 = free_now(&e.m.pa);
        (e, hm)
    }

    fn high_page(e: &Env) -> Pfn {
        let p =
            e.m.pa
                .alloc_pages(CpuId(0), Gfp::HIGHUSER, Order(0))
                .unwrap();
        assert!(Highmem::is_highmem(&e.m.pa, p));
        p
    }

    fn nop() -> impl FnMut(VirtAddr, VirtAddr) {
        |_, _| {}
    }

    #[test]
    fn kmap_round_trip_on_pae_4g() {
        let (mut e, mut hm) = setup(Arch::X86Pae, 4 << 30);
        let pa = &e.m.pa;
        let cpu = CpuId(0);
        let p = high_page(&e);
        // No page_address until kmapped; the bytes are beyond the direct map.
        assert_eq!(hm.page_address(pa, p), None);
        assert!(p.phys().0 >= 896 << 20);
        let a = hm.kmap(pa, &mut e.pt, cpu, p, &mut nop()).unwrap();
        assert_eq!(a, hm.pkmap_addr(1), "the search starts after slot 0");
        assert_eq!(hm.page_address(pa, p), Some(a));
        assert_eq!(e.pt.translate(a), Some(p.phys()), "a real mapping");
        let (pte, _) = e.pt.lookup(a).unwrap();
        assert!(pte.global() && pte.writable() && pte.nx() && !pte.user());
        let data: Vec<u8> = (0..PAGE_SIZE).map(|i| (i * 7 + 3) as u8).collect();
        hm.write(&e.pt, a, &data).unwrap();
        // A second kmap of the same page shares the slot.
        assert_eq!(hm.kmap(pa, &mut e.pt, cpu, p, &mut nop()).unwrap(), a);
        assert_eq!(hm.pkmap_count(1), 3);
        hm.kunmap(pa, p).unwrap();
        hm.kunmap(pa, p).unwrap();
        assert_eq!(hm.kunmap(pa, p), Err(Errno::EINVAL), "unbalanced kunmap");
        // Unused but still mapped until a flush.
        assert_eq!(hm.page_address(pa, p), Some(a));
        let mut flushed = vec![];
        hm.kmap_flush_unused(&mut e.pt, &mut |s, t| flushed.push((s, t)));
        assert_eq!(flushed, vec![(hm.pkmap_addr(0), hm.pkmap_addr(512))]);
        assert_eq!(hm.page_address(pa, p), None);
        assert_eq!(e.pt.lookup(a), None);
        // Mapped again, in another slot: the same bytes.
        let b = hm.kmap(pa, &mut e.pt, cpu, p, &mut nop()).unwrap();
        assert_ne!(a, b);
        let mut back = vec![0u8; PAGE_SIZE as usize];
        hm.read(&e.pt, b, &mut back).unwrap();
        assert_eq!(back, data);
        hm.kunmap(pa, p).unwrap();
        // Lowmem pages: the direct map, always.
        let low = pa.alloc_pages(cpu, Gfp::KERNEL, Order(0)).unwrap();
        let la = e.vm.layout().phys_to_virt(low.phys().0);
        assert_eq!(hm.page_address(pa, low), Some(la));
        assert_eq!(hm.kmap(pa, &mut e.pt, cpu, low, &mut nop()).unwrap(), la);
        assert_eq!(e.pt.translate(la), Some(low.phys()));
        hm.kunmap(pa, low).unwrap();
        pa.free_pages(cpu, low, Order(0));
        pa.free_pages(cpu, p, Order(0));
        hm.kmap_flush_unused(&mut e.pt, &mut nop());
        assert_eq!(free_now(pa), e.free0, "kmap allocates nothing");
        crate::debug::check_page_alloc(pa).unwrap();
    }

    #[test]
    fn pkmap_slots_run_out_and_are_reused_after_a_flush() {
        let (mut e, mut hm) = setup(Arch::X86Pae, 4 << 30);
        let pa = &e.m.pa;
        let cpu = CpuId(0);
        let n = hm.last_pkmap();
        assert_eq!(n, 512);
        let pages: Vec<Pfn> = (0..=n).map(|_| high_page(&e)).collect();
        let mut flushes = 0;
        let mut addrs = vec![];
        for &p in &pages[..n] {
            addrs.push(
                hm.kmap(pa, &mut e.pt, cpu, p, &mut |_, _| flushes += 1)
                    .unwrap(),
            );
        }
        // Every slot used once, slot 0 last (after the first wrap, which
        // found nothing to flush).
        assert_eq!(addrs[n - 1], hm.pkmap_addr(0));
        assert_eq!(flushes, 0);
        let mut sorted = addrs.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), n);
        assert_eq!(
            hm.kmap(pa, &mut e.pt, cpu, pages[n], &mut |_, _| flushes += 1),
            Err(Errno::EAGAIN)
        );
        // One kunmap frees a slot for reuse, after a flush of the window.
        hm.kunmap(pa, pages[7]).unwrap();
        let a = hm
            .kmap(pa, &mut e.pt, cpu, pages[n], &mut |_, _| flushes += 1)
            .unwrap();
        assert_eq!(a, addrs[7]);
        assert_eq!(flushes, 1);
        assert_eq!(hm.page_address(pa, pages[7]), None);
        assert_eq!(e.pt.translate(a), Some(pages[n].phys()));
        for (i, &p) in pages.iter().enumerate() {
            if i != 7 {
                hm.kunmap(pa, p).unwrap();
            }
            pa.free_pages(cpu, p, Order(0));
        }
        hm.kmap_flush_unused(&mut e.pt, &mut nop());
        assert!((0..n).all(|i| hm.pkmap_count(i) == 0));
        assert_eq!(free_now(pa), e.free0);
    }

    #[test]
    fn kmap_atomic_nests_per_cpu() {
        let (mut e, mut hm) = setup(Arch::X86Pae, 4 << 30);
        let pa = &e.m.pa;
        let ps: Vec<Pfn> = (0..3).map(|_| high_page(&e)).collect();
        let top = e.vm.layout().fixaddr_top;
        let a0 = hm.kmap_atomic(pa, &mut e.pt, CpuId(0), ps[0]).unwrap();
        let a1 = hm.kmap_atomic(pa, &mut e.pt, CpuId(0), ps[1]).unwrap();
        let b0 = hm.kmap_atomic(pa, &mut e.pt, CpuId(1), ps[2]).unwrap();
        assert_eq!(a0.0, top - (FIX_KMAP_BEGIN << PAGE_SHIFT));
        assert_eq!(a1, a0 - PAGE_SIZE);
        assert_eq!(
            b0.0,
            top - ((FIX_KMAP_BEGIN + KM_MAX_IDX as u64) << PAGE_SHIFT)
        );
        assert_eq!(
            hm.page_address(pa, ps[0]),
            None,
            "atomic kmaps have no page_address"
        );
        for (a, p) in [(a0, ps[0]), (a1, ps[1]), (b0, ps[2])] {
            assert_eq!(e.pt.translate(a), Some(p.phys()));
            hm.write(&e.pt, a + 100, &p.0.to_le_bytes()).unwrap();
        }
        // Out of order: refused, nothing changes.
        let mut flushed = vec![];
        assert_eq!(
            hm.kunmap_atomic(&mut e.pt, CpuId(0), a0, &mut |s, t| flushed.push((s, t))),
            Err(Errno::EINVAL)
        );
        hm.kunmap_atomic(&mut e.pt, CpuId(0), a1 + 5, &mut |s, t| {
            flushed.push((s, t))
        })
        .unwrap();
        hm.kunmap_atomic(&mut e.pt, CpuId(0), a0, &mut |s, t| flushed.push((s, t)))
            .unwrap();
        assert_eq!(flushed, vec![(a1, a1 + PAGE_SIZE), (a0, a0 + PAGE_SIZE)]);
        assert_eq!(e.pt.lookup(a0), None);
        assert_eq!(hm.atomic_depth(CpuId(0)), 0);
        assert_eq!(hm.atomic_depth(CpuId(1)), 1);
        hm.kunmap_atomic(&mut e.pt, CpuId(1), b0, &mut nop())
            .unwrap();
        // The bytes written through the atomic slots, read back via kmap.
        for &p in &ps {
            let mut got = [0u8; 8];
            hm.memcpy_from_page(pa, &mut e.pt, CpuId(1), p, 100, &mut got, &mut nop())
                .unwrap();
            assert_eq!(u64::from_le_bytes(got), p.0);
        }
        hm.memcpy_to_page(pa, &mut e.pt, CpuId(0), ps[0], 4090, b"abcdef", &mut nop())
            .unwrap();
        let k = hm.kmap(pa, &mut e.pt, CpuId(0), ps[0], &mut nop()).unwrap();
        let mut got = [0u8; 6];
        hm.read(&e.pt, k + 4090, &mut got).unwrap();
        assert_eq!(&got, b"abcdef");
        hm.kunmap(pa, ps[0]).unwrap();
        // KM_MAX_IDX slots per CPU.
        for _ in 0..KM_MAX_IDX {
            hm.kmap_atomic(pa, &mut e.pt, CpuId(1), ps[1]).unwrap();
        }
        assert_eq!(
            hm.kmap_atomic(pa, &mut e.pt, CpuId(1), ps[1]),
            Err(Errno::EBUSY)
        );
        for i in (0..KM_MAX_IDX).rev() {
            let va = hm.fix_kmap_addr(1, i);
            hm.kunmap_atomic(&mut e.pt, CpuId(1), va, &mut nop())
                .unwrap();
        }
        // Lowmem: the direct map, no slot taken.
        let low = pa.alloc_pages(CpuId(0), Gfp::KERNEL, Order(0)).unwrap();
        let la = hm.kmap_atomic(pa, &mut e.pt, CpuId(0), low).unwrap();
        assert_eq!(Some(la), hm.page_address(pa, low));
        assert_eq!(hm.atomic_depth(CpuId(0)), 0);
        hm.kunmap_atomic(&mut e.pt, CpuId(0), la, &mut |_, _| {
            panic!("no flush for lowmem")
        })
        .unwrap();
        pa.free_pages(CpuId(0), low, Order(0));
        for p in ps {
            pa.free_pages(CpuId(0), p, Order(0));
        }
        hm.kmap_flush_unused(&mut e.pt, &mut nop());
        assert_eq!(free_now(pa), e.free0);
        crate::debug::check_page_alloc(pa).unwrap();
    }

    #[test]
    fn kmap_round_trip_on_2level_x86() {
        let (mut e, mut hm) = setup(Arch::X86, 2 << 30);
        let pa = &e.m.pa;
        assert_eq!(hm.last_pkmap(), 1024);
        let p = high_page(&e);
        let a = hm.kmap(pa, &mut e.pt, CpuId(0), p, &mut nop()).unwrap();
        hm.write(&e.pt, a + 8, b"highmem").unwrap();
        let mut got = [0u8; 7];
        pa.direct_map().read(p.phys() + 8, &mut got);
        assert_eq!(&got, b"highmem");
        hm.kunmap(pa, p).unwrap();
        pa.free_pages(CpuId(0), p, Order(0));
    }

    #[test]
    fn every_page_has_an_address_on_x86_64() {
        let (mut e, mut hm) = setup(Arch::X86_64, 64 << 20);
        let pa = &e.m.pa;
        assert_eq!(hm.last_pkmap(), 0);
        let p = pa.alloc_pages(CpuId(0), Gfp::HIGHUSER, Order(0)).unwrap();
        let direct = VirtAddr(0xffff_8880_0000_0000 + p.phys().0);
        assert_eq!(hm.page_address(pa, p), Some(direct));
        assert_eq!(
            hm.kmap(pa, &mut e.pt, CpuId(0), p, &mut nop()).unwrap(),
            direct
        );
        assert_eq!(hm.kmap_atomic(pa, &mut e.pt, CpuId(0), p).unwrap(), direct);
        hm.kunmap_atomic(&mut e.pt, CpuId(0), direct, &mut nop())
            .unwrap();
        hm.kunmap(pa, p).unwrap();
        pa.free_pages(CpuId(0), p, Order(0));
        assert_eq!(free_now(pa), e.free0);
    }
}
