//! Page tables in simulated RAM: build the kernel's direct map, give each mm
//! a PGD sharing the kernel half, map/unmap/protect/move/zap entries and
//! free tables that become empty. Mirrors mm/pgtable-generic.c, arch/x86/mm/pgtable.c, mm/memory.c (zap, free_pgtables), mm/mremap.c (move_page_tables).
//!
//! Tables are frames from a [`PgtableAlloc`], holding entries in the
//! mode's own hardware format ([`Pte`]); the simulated MMU walks the same
//! bytes. Every range operation skips absent upper-level entries whole, so
//! walking or zapping a huge empty range costs one read per empty slot of
//! the top table.
//!
//! Sharing of the kernel half follows Linux: on x86-64 the kernel's PGD
//! entries 256..511 point at lower tables that are all allocated when the
//! kernel table is built (Linux preallocates the vmalloc ones in
//! `preallocate_vmalloc_pages`), so copying them into a new PGD
//! (`pgd_ctor` / `clone_pgd_range`) makes every later kernel mapping
//! visible to every process. 2-level x86 copies PGD entries 768..1023;
//! the ones that are not direct-map 4 MiB pages point at PTE tables
//! preallocated here (Linux instead syncs new entries into every PGD with
//! `arch_sync_kernel_mappings`). PAE shares the kernel PMD of PDPT entry 3.
//! Tables reached from a kernel-half top-level entry are never freed.
//!
//! arm64 ([`PagingMode::split_roots`]) shares nothing: a process's PGD is
//! the TTBR0 table, all of it user space (VA < 2^48), and init_mm's is
//! `swapper_pg_dir` in TTBR1, all of it kernel space (VA >= 0xffff << 48),
//! so both index their 512 PGD entries with VA bits 47..39 and a user
//! table never maps a kernel address (nor the other way round).
//!
//! TLB consistency is the caller's job, as in Linux: after changing or
//! zapping present entries, flush the TLBs that may cache them before
//! reusing the frames (mmu_gather).

use crate::arch::pte::{PagingMode, Pte, PteFlags};
use crate::direct_map::DirectMap;
use crate::errno::Errno;
use crate::types::{Pfn, PhysAddr, VirtAddr, PAGE_SIZE};
use core::ops::ControlFlow;

/// Source of page-table frames (the buddy allocator implements it with
/// GFP_PGTABLE_USER / GFP_PGTABLE_KERNEL). Frames may come uninitialised;
/// the page-table code zeroes them.
pub trait PgtableAlloc {
    /// One frame for a table, or `None` when memory is exhausted.
    fn alloc_table(&mut self) -> Option<Pfn>;
    /// Gives back a frame that no longer holds a table.
    fn free_table(&mut self, pfn: Pfn);
}

/// A level in the walk: 1 = PTE, 2 = PMD, ... (see [`crate::arch::pte`]).
pub type Level = u8;

/// Whose page tables these are.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Kind {
    /// init_mm's tables: owns the kernel half.
    Kernel,
    /// A process's tables: owns the user half, shares the kernel half.
    User,
}

/// The page tables of one mm, rooted at its PGD (the value CR3 holds).
pub struct PageTable {
    dm: DirectMap,
    root: Pfn,
    mode: PagingMode,
    kind: Kind,
    /// Table frames this PageTable owns, root included.
    nr_tables: u64,
}

impl core::fmt::Debug for PageTable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PageTable")
            .field("root", &self.root)
            .field("mode", &self.mode)
            .field("kind", &self.kind)
            .field("nr_tables", &self.nr_tables)
            .finish()
    }
}

/// Read and update access to tables owned by someone else (see
/// [`PageTable::view`]); it can neither allocate nor free tables.
pub struct PageTableView(PageTable);

impl PageTableView {
    /// The leaf entry covering `va` and its level (see [`PageTable::lookup`]).
    pub fn lookup(&self, va: VirtAddr) -> Option<(Pte, Level)> {
        self.0.lookup(va)
    }
    /// Atomically replaces the leaf covering `va` (see [`PageTable::update`]).
    pub fn update(&self, va: VirtAddr, f: &dyn Fn(Pte) -> Pte) -> Option<Pte> {
        self.0.update(va, f)
    }
    /// Every leaf overlapping `[start, end)`, skipping empty tables (see
    /// [`PageTable::walk`]).
    pub fn walk(&self, start: VirtAddr, end: VirtAddr, f: &mut dyn FnMut(VirtAddr, Pte, Level)) {
        self.0.walk(start, end, f)
    }
}

/// A half-open range of linear (not sign-extended) addresses.
#[derive(Copy, Clone, Debug)]
struct LinRange {
    start: u64,
    end: u64,
}

impl PageTable {
    /// Builds the kernel's page tables (init_mm's `swapper_pg_dir`): the
    /// direct map of physical `[0, lowmem_end)` at PAGE_OFFSET with the
    /// largest pages the mode allows wherever alignment permits (1 GiB on
    /// x86-64, 4 MiB PSE / 2 MiB PAE on 32-bit, smaller at unaligned
    /// edges), PAGE_KERNEL_LARGE / PAGE_KERNEL (supervisor, global, NX),
    /// and every kernel-half table below the PGD preallocated so user PGDs
    /// can share it. On failure every frame taken is given back.
    pub fn new_kernel(
        dm: &DirectMap,
        alloc: &mut dyn PgtableAlloc,
        mode: PagingMode,
        lowmem_end: PhysAddr,
    ) -> Result<PageTable, Errno> {
        Self::new_kernel_ranges(dm, alloc, mode, lowmem_end, &[(PhysAddr(0), lowmem_end)])
    }

    /// Like [`Self::new_kernel`], but maps only the physical ranges given
    /// (clipped to `lowmem_end`), as `init_mem_mapping` maps the first MiB
    /// and then each memblock memory range, leaving holes unmapped.
    pub fn new_kernel_ranges(
        dm: &DirectMap,
        alloc: &mut dyn PgtableAlloc,
        mode: PagingMode,
        lowmem_end: PhysAddr,
        ranges: &[(PhysAddr, PhysAddr)],
    ) -> Result<PageTable, Errno> {
        let root = take_table(dm, alloc)?;
        let mut pt = PageTable {
            dm: dm.clone(),
            root,
            mode,
            kind: Kind::Kernel,
            nr_tables: 1,
        };
        match pt.build_kernel(alloc, lowmem_end, ranges) {
            Ok(()) => Ok(pt),
            Err(e) => {
                pt.destroy(alloc);
                Err(e)
            }
        }
    }

    fn build_kernel(
        &mut self,
        alloc: &mut dyn PgtableAlloc,
        lowmem_end: PhysAddr,
        ranges: &[(PhysAddr, PhysAddr)],
    ) -> Result<(), Errno> {
        let mode = self.mode;
        let layout = crate::arch::layout::AddressSpaceLayout::new(mode, lowmem_end.0);
        for &(start, end) in ranges {
            let end = end.0.min(lowmem_end.0) & !(PAGE_SIZE - 1);
            let start = start.0 & !(PAGE_SIZE - 1);
            self.map_direct(alloc, &layout, start, end)?;
        }
        // Preallocate the next level under every empty kernel-half slot.
        let top = mode.levels();
        for idx in mode.kernel_pgd_boundary()..mode.entries(top) {
            let pa = mode.entry_pa(self.root, idx);
            if self.read(pa).is_none() {
                let t = self.alloc_table(alloc)?;
                self.write(pa, Pte::table(mode, t, top, false));
            }
        }
        Ok(())
    }

    /// Maps physical `[start, end)` into the direct map with the largest
    /// pages alignment allows (`kernel_physical_mapping_init`).
    fn map_direct(
        &mut self,
        alloc: &mut dyn PgtableAlloc,
        layout: &crate::arch::layout::AddressSpaceLayout,
        start: u64,
        end: u64,
    ) -> Result<(), Errno> {
        let mode = self.mode;
        let mut pa = start;
        while pa < end {
            let mut level = mode.max_leaf_level();
            while level > 1 {
                let span = mode.span(level);
                if pa & (span - 1) == 0 && end - pa >= span {
                    break;
                }
                level -= 1;
            }
            let mut flags = PteFlags::KERNEL;
            if level > 1 {
                flags |= PteFlags::HUGE;
            }
            let va = layout.phys_to_virt(pa);
            self.map_at(alloc, va, Pfn(pa >> crate::types::PAGE_SHIFT), level, flags)?;
            pa += mode.span(level);
        }
        Ok(())
    }

    /// Builds a process's PGD (`pgd_alloc`): an empty user half and the
    /// kernel half shared with `kernel` (x86-64: PGD entries 256..511
    /// copied; 2-level x86: 768..1023 copied; PAE: PDPT entry 3, the kernel
    /// PMD, shared).
    pub fn new_user(kernel: &PageTable, alloc: &mut dyn PgtableAlloc) -> Result<PageTable, Errno> {
        let mode = kernel.mode;
        let root = take_table(&kernel.dm, alloc)?;
        let pt = PageTable {
            dm: kernel.dm.clone(),
            root,
            mode,
            kind: Kind::User,
            nr_tables: 1,
        };
        let top = mode.levels();
        for idx in mode.kernel_pgd_boundary()..mode.entries(top) {
            let e = kernel.read(mode.entry_pa(kernel.root, idx));
            pt.write(mode.entry_pa(root, idx), e);
        }
        Ok(pt)
    }

    /// Another mm's tables, reached through their root for an rmap walk
    /// (Linux's `page_vma_mapped_walk` from a page): lookups and atomic
    /// entry updates only, since the view owns nothing.
    pub fn view(dm: &DirectMap, root: Pfn, mode: PagingMode) -> PageTableView {
        PageTableView(PageTable {
            dm: dm.clone(),
            root,
            mode,
            kind: Kind::User,
            nr_tables: 0,
        })
    }

    /// The PGD frame (what CR3 holds).
    pub fn root(&self) -> Pfn {
        self.root
    }
    /// The paging mode.
    pub fn mode(&self) -> PagingMode {
        self.mode
    }
    /// The direct map the tables live in.
    pub fn direct_map(&self) -> &DirectMap {
        &self.dm
    }
    /// True for init_mm's tables.
    pub fn is_kernel(&self) -> bool {
        self.kind == Kind::Kernel
    }

    /// Table frames owned by these page tables, PGD included (the
    /// PageTables / NR_PAGETABLE accounting). Shared kernel tables count
    /// only in the kernel's PageTable.
    pub fn count_tables(&self) -> u64 {
        self.nr_tables
    }

    /// Counts the owned tables by walking them; equals [`count_tables`]
    /// unless the accounting is broken (for `mm::debug`).
    ///
    /// [`count_tables`]: PageTable::count_tables
    pub fn count_tables_by_walk(&self) -> u64 {
        let top = self.mode.levels();
        let mut n = 1;
        for idx in 0..self.owned_top_entries() {
            let e = self.read(self.mode.entry_pa(self.root, idx));
            if !e.is_none() && !self.mode.is_leaf(e, top) {
                n += self.count_subtree(e.pfn(), top - 1);
            }
        }
        n
    }

    fn count_subtree(&self, table: Pfn, level: Level) -> u64 {
        let mut n = 1;
        if level > 1 && self.dm.contains(table.phys(), PAGE_SIZE) {
            for idx in 0..self.mode.entries(level) {
                let e = self.read(self.mode.entry_pa(table, idx));
                if !e.is_none() && !self.mode.is_leaf(e, level) {
                    n += self.count_subtree(e.pfn(), level - 1);
                }
            }
        }
        n
    }

    /// Top-level entries this PageTable may change: the user half for a
    /// process, all of them for the kernel.
    fn owned_top_entries(&self) -> usize {
        match self.kind {
            Kind::Kernel => self.mode.entries(self.mode.levels()),
            Kind::User => self.mode.kernel_pgd_boundary(),
        }
    }

    /// End of the linear addresses this PageTable may change.
    fn lin_limit(&self) -> u64 {
        (self.owned_top_entries() as u64) << self.mode.shift(self.mode.levels())
    }

    /// With split roots (arm64): true if `va` belongs to this table's
    /// half (TTBR1 for the kernel's, TTBR0 for a process's). Always true
    /// for a shared-PGD mode.
    fn in_own_half(&self, va: VirtAddr) -> bool {
        !self.mode.split_roots() || (va.0 >> 48 == 0xffff) == (self.kind == Kind::Kernel)
    }

    /// The virtual address of linear address `lin` in this table: sign
    /// extended on x86-64; in the TTBR1 half for arm64's kernel table.
    fn va_of(&self, lin: u64) -> VirtAddr {
        if self.mode.split_roots() && self.kind == Kind::Kernel {
            VirtAddr(lin | 0xffff_0000_0000_0000)
        } else {
            self.mode.canonical(lin)
        }
    }

    /// Linear address of `va` if it is canonical and this table may map it.
    fn lin_of(&self, va: VirtAddr) -> Result<u64, Errno> {
        if !self.mode.is_canonical(va) || !self.in_own_half(va) {
            return Err(Errno::EINVAL);
        }
        let lin = va.0 & self.mode.va_mask();
        if lin >= self.lin_limit() {
            return Err(Errno::EINVAL);
        }
        Ok(lin)
    }

    /// `[start, end)` clamped to what this PageTable owns, as linear
    /// addresses; `None` if empty or an end is not canonical.
    ///
    /// A non-canonical end is clamped: on 32-bit to 4 GiB, on x86-64 to the
    /// edge of the hole (so `[0, u64::MAX)` means the whole address space).
    fn lin_range(&self, start: VirtAddr, end: VirtAddr) -> Option<LinRange> {
        if start >= end {
            return None;
        }
        let mode = self.mode;
        if mode.split_roots() {
            // TTBR0 covers [0, 2^48), TTBR1 [0xffff << 48, 2^64): clamp to
            // this table's half.
            let (base, top) = match self.kind {
                Kind::User => (0, 1u64 << 48),
                Kind::Kernel => (0xffff_0000_0000_0000, u64::MAX),
            };
            let s = start.0.clamp(base, top) - base;
            let e = end.0.clamp(base, top) - base;
            let e = if end.0 == u64::MAX { 1 << 48 } else { e }.min(self.lin_limit());
            return (s < e).then_some(LinRange { start: s, end: e });
        }
        let hole = 1u64 << (mode.va_bits() - 1);
        let lin = |a: VirtAddr| {
            if mode.is_canonical(a) {
                a.0 & mode.va_mask()
            } else if mode.va_bits() == 32 {
                1 << 32
            } else {
                hole
            }
        };
        let s = lin(start);
        let e = if mode.is_canonical(end - 1) {
            lin(end - 1) + 1
        } else {
            lin(end - 1)
        };
        let e = e.min(self.lin_limit());
        (s < e).then_some(LinRange { start: s, end: e })
    }

    fn read(&self, pa: PhysAddr) -> Pte {
        self.mode.read_entry(&self.dm, pa)
    }
    fn write(&self, pa: PhysAddr, pte: Pte) {
        self.mode.write_entry(&self.dm, pa, pte)
    }

    fn alloc_table(&mut self, alloc: &mut dyn PgtableAlloc) -> Result<Pfn, Errno> {
        let t = take_table(&self.dm, alloc)?;
        self.nr_tables += 1;
        Ok(t)
    }

    fn free_table(&mut self, alloc: &mut dyn PgtableAlloc, pfn: Pfn) {
        self.nr_tables -= 1;
        alloc.free_table(pfn);
    }

    /// Whether the table that the entry `idx` of a `level` table points at
    /// may be freed: never the ones reached from a kernel-half PGD entry.
    fn child_freeable(&self, level: Level, idx: usize) -> bool {
        if self.mode.split_roots() && self.kind == Kind::Kernel {
            return level != self.mode.levels();
        }
        level != self.mode.levels() || idx < self.mode.kernel_pgd_boundary()
    }

    /// Descends to the table of `level` that covers `lin`, allocating
    /// missing tables; returns the address of the entry at `level`.
    /// EEXIST if a leaf (huge page or swap entry) sits above `level`.
    fn walk_alloc(
        &mut self,
        alloc: &mut dyn PgtableAlloc,
        lin: u64,
        level: Level,
    ) -> Result<PhysAddr, Errno> {
        let mode = self.mode;
        let va = VirtAddr(lin);
        let user = if mode.split_roots() {
            self.kind == Kind::User
        } else {
            lin < (mode.kernel_pgd_boundary() as u64) << mode.shift(mode.levels())
        };
        let mut table = self.root;
        let mut l = mode.levels();
        while l > level {
            let pa = mode.entry_pa(table, mode.index(va, l));
            let e = self.read(pa);
            if e.is_none() {
                let t = self.alloc_table(alloc)?;
                self.write(pa, Pte::table(mode, t, l, user));
                table = t;
            } else if mode.is_leaf(e, l) {
                return Err(Errno::EEXIST);
            } else {
                table = e.pfn();
            }
            l -= 1;
        }
        Ok(mode.entry_pa(table, mode.index(va, level)))
    }

    /// Finds the leaf covering `lin`: its entry address, value and level.
    fn find(&self, lin: u64) -> Option<(PhysAddr, Pte, Level)> {
        let mode = self.mode;
        let va = VirtAddr(lin);
        let mut table = self.root;
        let mut l = mode.levels();
        loop {
            let pa = mode.entry_pa(table, mode.index(va, l));
            let e = self.read(pa);
            if e.is_none() {
                return None;
            }
            if mode.is_leaf(e, l) {
                return Some((pa, e, l));
            }
            if !self.dm.contains(e.phys(), PAGE_SIZE) {
                return None;
            }
            table = e.pfn();
            l -= 1;
        }
    }

    fn map_at(
        &mut self,
        alloc: &mut dyn PgtableAlloc,
        va: VirtAddr,
        pfn: Pfn,
        level: Level,
        flags: PteFlags,
    ) -> Result<(), Errno> {
        let mode = self.mode;
        let lin = self.lin_of(va)?;
        if lin & (mode.span(level) - 1) != 0
            || (pfn.0 << crate::types::PAGE_SHIFT) & (mode.span(level) - 1) != 0
        {
            return Err(Errno::EINVAL);
        }
        if pfn.0 > mode.pfn_mask() >> crate::types::PAGE_SHIFT {
            return Err(Errno::EINVAL);
        }
        let pa = self.walk_alloc(alloc, lin, level)?;
        if level > 1 {
            let old = self.read(pa);
            if !old.is_none() && !mode.is_leaf(old, level) {
                return Err(Errno::EEXIST);
            }
        }
        let flags = if flags.contains(PteFlags::PROTNONE) {
            flags.difference(PteFlags::PRESENT)
        } else {
            flags.union(PteFlags::PRESENT)
        };
        self.write(pa, Pte::new(mode, pfn, flags));
        Ok(())
    }

    /// Maps the 4 KiB page at `va` to `pfn` (set_pte_at), allocating the
    /// intermediate tables (ENOMEM when the allocator is empty; tables
    /// allocated before the failure stay, empty, until zapped), replacing
    /// whatever entry was there (the caller flushes the TLB if it was
    /// present). PRESENT is implied unless `flags` has PROTNONE, which
    /// makes a PROT_NONE entry (mapped for Linux, absent for the MMU).
    /// EINVAL for an address
    /// that is misaligned, not canonical, or in the kernel half of a
    /// process's tables; EEXIST if a huge page covers it.
    pub fn map(
        &mut self,
        alloc: &mut dyn PgtableAlloc,
        va: VirtAddr,
        pfn: Pfn,
        flags: PteFlags,
    ) -> Result<(), Errno> {
        self.map_at(alloc, va, pfn, 1, flags.difference(PteFlags::HUGE))
    }

    /// Maps a large page at `level` (2 = PMD: 2/4 MiB, 3 = PUD: 1 GiB),
    /// as set_pmd_at / set_pud_at do. Both `va` and `pfn` must be aligned
    /// to the page size (EINVAL); EEXIST if a table is already there.
    pub fn map_huge(
        &mut self,
        alloc: &mut dyn PgtableAlloc,
        va: VirtAddr,
        pfn: Pfn,
        level: Level,
        flags: PteFlags,
    ) -> Result<(), Errno> {
        if level < 2 || !self.mode.huge_ok(level) {
            return Err(Errno::EINVAL);
        }
        self.map_at(alloc, va, pfn, level, flags.union(PteFlags::HUGE))
    }

    /// Writes a raw 4 KiB-level entry (a swap entry, a PROT_NONE entry),
    /// allocating tables, and returns the previous one.
    pub fn set_pte(
        &mut self,
        alloc: &mut dyn PgtableAlloc,
        va: VirtAddr,
        pte: Pte,
    ) -> Result<Pte, Errno> {
        let lin = self.lin_of(va)?;
        if !va.is_page_aligned() {
            return Err(Errno::EINVAL);
        }
        let pa = self.walk_alloc(alloc, lin, 1)?;
        Ok(self.mode.xchg_entry(&self.dm, pa, pte))
    }

    /// Clears the leaf entry covering `va` (a 4 KiB or a whole huge page)
    /// and returns it, or `None` if nothing was mapped. Tables are kept.
    pub fn unmap(&mut self, va: VirtAddr) -> Option<Pte> {
        let lin = self.lin_of(va).ok()?;
        let (pa, _, _) = self.find(lin)?;
        Some(self.mode.xchg_entry(&self.dm, pa, Pte::NONE))
    }

    /// The leaf entry covering `va` (present, PROT_NONE or swap) and its
    /// level, or `None`.
    pub fn lookup(&self, va: VirtAddr) -> Option<(Pte, Level)> {
        if !self.mode.is_canonical(va) || !self.in_own_half(va) {
            return None;
        }
        self.find(va.0 & self.mode.va_mask())
            .map(|(_, e, l)| (e, l))
    }

    /// The physical address `va` maps to, if a present entry maps it.
    pub fn translate(&self, va: VirtAddr) -> Option<PhysAddr> {
        let (e, l) = self.lookup(va)?;
        if !e.present() {
            return None;
        }
        let span = self.mode.span(l);
        Some(PhysAddr((e.phys().0 & !(span - 1)) | (va.0 & (span - 1))))
    }

    /// Replaces the leaf covering `va` by `f(old)` atomically (so a
    /// concurrent accessed/dirty update by an MMU is not lost) and returns
    /// the old entry; `None` if nothing is mapped there.
    pub fn update(&self, va: VirtAddr, f: &dyn Fn(Pte) -> Pte) -> Option<Pte> {
        let lin = self.lin_of(va).ok()?;
        let (pa, old, _) = self.find(lin)?;
        Some(self.cmpxchg_loop(pa, old, f))
    }

    fn cmpxchg_loop(&self, pa: PhysAddr, mut old: Pte, f: &dyn Fn(Pte) -> Pte) -> Pte {
        loop {
            match self.mode.cmpxchg_entry(&self.dm, pa, old, f(old)) {
                Ok(o) => return o,
                Err(found) => old = found,
            }
        }
    }

    /// Calls `f(va, pte, level)` for every leaf entry (present, PROT_NONE
    /// or swap) that overlaps `[start, end)`, in address order; `va` is the
    /// start of the page the leaf maps. Read-only.
    pub fn walk(&self, start: VirtAddr, end: VirtAddr, f: &mut dyn FnMut(VirtAddr, Pte, Level)) {
        let Some(r) = self.lin_range(start, end) else {
            return;
        };
        let mode = self.mode;
        self.for_each_leaf(self.root, mode.levels(), 0, r, &mut |lin, _, e, l| {
            f(self.va_of(lin), e, l)
        });
    }

    /// Calls `f(lin, entry_pa, pte, level)` for every leaf entry under
    /// `table` (at `level`, mapping from linear address `base`) that
    /// overlaps `r`, in address order.
    fn for_each_leaf(
        &self,
        table: Pfn,
        level: Level,
        base: u64,
        r: LinRange,
        f: &mut dyn FnMut(u64, PhysAddr, Pte, Level),
    ) {
        let _ = self.try_for_each_leaf(table, level, base, r, &mut |lin, pa, e, l| {
            f(lin, pa, e, l);
            ControlFlow::<()>::Continue(())
        });
    }

    /// The walk behind `for_each_leaf` and `next_leaf`: calls `f` for
    /// every leaf under `table` that overlaps `r`, in address order,
    /// descending only into tables the direct map covers, and stops at
    /// the first `Break`, which it returns.
    fn try_for_each_leaf<B>(
        &self,
        table: Pfn,
        level: Level,
        base: u64,
        r: LinRange,
        f: &mut dyn FnMut(u64, PhysAddr, Pte, Level) -> ControlFlow<B>,
    ) -> ControlFlow<B> {
        let mode = self.mode;
        let shift = mode.shift(level);
        let first = ((r.start - base) >> shift) as usize;
        let last = ((r.end - 1 - base) >> shift) as usize;
        for idx in first..=last {
            let pa = mode.entry_pa(table, idx);
            let e = self.read(pa);
            if e.is_none() {
                continue;
            }
            let eb = base + ((idx as u64) << shift);
            if mode.is_leaf(e, level) {
                f(eb, pa, e, level)?;
            } else if self.dm.contains(e.phys(), PAGE_SIZE) {
                let sub = LinRange {
                    start: r.start.max(eb),
                    end: r.end.min(eb + (1 << shift)),
                };
                self.try_for_each_leaf(e.pfn(), level - 1, eb, sub, f)?;
            }
        }
        ControlFlow::Continue(())
    }

    /// Applies `f` to every leaf that maps a page (present or PROT_NONE)
    /// overlapping `[start, end)`, as change_protection does; swap entries
    /// are left alone. Huge leaves are changed whole. Returns the number of
    /// entries whose value changed. The caller flushes the TLB.
    pub fn change_protection(
        &mut self,
        start: VirtAddr,
        end: VirtAddr,
        f: &dyn Fn(Pte) -> Pte,
    ) -> u64 {
        let Some(r) = self.lin_range(start, end) else {
            return 0;
        };
        let mut changed = 0;
        self.for_each_leaf(self.root, self.mode.levels(), 0, r, &mut |_, pa, e, _| {
            if e.maps_page() {
                let old = self.cmpxchg_loop(pa, e, f);
                if f(old) != old {
                    changed += 1;
                }
            }
        });
        changed
    }

    /// The walk of fork's `copy_pte_range`: for every 4 KiB leaf of `src`
    /// in `[start, end)`, calls `f(va, pte)`; if it returns `Some((child,
    /// parent))`, `child` is written into these (the child's) tables and,
    /// if `parent` differs from `pte`, the source entry is replaced
    /// atomically. The child's PTE table is found (or allocated) once per
    /// table, not once per entry, and before `f` sees the entries it
    /// covers. ENOMEM if a table cannot be allocated (entries copied so
    /// far stay; `f` is not called for the rest). Huge leaves are skipped.
    pub fn copy_range(
        &mut self,
        alloc: &mut dyn PgtableAlloc,
        src: &PageTable,
        start: VirtAddr,
        end: VirtAddr,
        f: &mut dyn FnMut(VirtAddr, Pte) -> Option<(Pte, Pte)>,
    ) -> Result<(), Errno> {
        let Some(r) = src.lin_range(start, end) else {
            return Ok(());
        };
        let mode = self.mode;
        let table_span = mode.span(2);
        let mut cur: Option<(u64, Pfn)> = None;
        let mut err = Ok(());
        let _ = src.try_for_each_leaf(src.root, mode.levels(), 0, r, &mut |lin, pa, _, level| {
            if level != 1 {
                return ControlFlow::Continue(());
            }
            // The child's table first (`pte_alloc` before the copy loop):
            // its allocation may reclaim, which may change the parent's
            // entry, so the entry is read again after it; and nothing is
            // duplicated that could not be installed.
            let base = lin & !(table_span - 1);
            let table = match cur {
                Some((b, t)) if b == base => t,
                _ => match self.walk_alloc(alloc, lin, 1) {
                    Ok(epa) => {
                        let t = Pfn(epa.0 >> crate::types::PAGE_SHIFT);
                        cur = Some((base, t));
                        t
                    }
                    Err(x) => {
                        err = Err(x);
                        return ControlFlow::Break(());
                    }
                },
            };
            let e = src.read(pa);
            let Some((child, parent)) = f(src.va_of(lin), e) else {
                return ControlFlow::Continue(());
            };
            let idx = mode.index(VirtAddr(lin), 1);
            self.write(mode.entry_pa(table, idx), child);
            if parent != e {
                src.cmpxchg_loop(pa, e, &|p| {
                    if p.writable() && !parent.writable() {
                        p.wrprotect()
                    } else {
                        p
                    }
                });
            }
            ControlFlow::Continue(())
        });
        err
    }

    /// Clears every entry in `[start, end)` (zap_page_range + free_pgtables):
    /// calls `f(va, old)` for each present, PROT_NONE or swap entry cleared,
    /// then frees the tables left empty (never the shared kernel ones). A
    /// huge leaf only partly inside the range is left in place (callers
    /// split it first, as Linux does). Returns the number of tables freed.
    pub fn zap_range(
        &mut self,
        alloc: &mut dyn PgtableAlloc,
        start: VirtAddr,
        end: VirtAddr,
        f: &mut dyn FnMut(VirtAddr, Pte),
    ) -> u64 {
        // A process's tables with nothing below the PGD map nothing (where
        // the PGD holds no leaves): the walk would find every entry none.
        if self.kind == Kind::User
            && self.nr_tables == 1
            && self.mode.max_leaf_level() < self.mode.levels()
        {
            return 0;
        }
        let Some(r) = self.lin_range(start, end) else {
            return 0;
        };
        let before = self.nr_tables;
        self.zap_level(alloc, self.root, self.mode.levels(), 0, r, f);
        before - self.nr_tables
    }

    /// Zaps `r` inside `table` of `level`; true if the table is now empty.
    fn zap_level(
        &mut self,
        alloc: &mut dyn PgtableAlloc,
        table: Pfn,
        level: Level,
        base: u64,
        r: LinRange,
        f: &mut dyn FnMut(VirtAddr, Pte),
    ) -> bool {
        let mode = self.mode;
        let shift = mode.shift(level);
        let span = 1u64 << shift;
        let first = ((r.start - base) >> shift) as usize;
        let last = ((r.end - 1 - base) >> shift) as usize;
        for idx in first..=last {
            let pa = mode.entry_pa(table, idx);
            let e = self.read(pa);
            if e.is_none() {
                continue;
            }
            let eb = base + ((idx as u64) << shift);
            if mode.is_leaf(e, level) {
                if eb >= r.start && eb + span <= r.end {
                    let old = mode.xchg_entry(&self.dm, pa, Pte::NONE);
                    f(self.va_of(eb), old);
                }
                continue;
            }
            if !self.dm.contains(e.phys(), PAGE_SIZE) {
                continue;
            }
            let sub = LinRange {
                start: r.start.max(eb),
                end: r.end.min(eb + span),
            };
            let child = e.pfn();
            if self.zap_level(alloc, child, level - 1, eb, sub, f)
                && self.child_freeable(level, idx)
            {
                self.write(pa, Pte::NONE);
                self.free_table(alloc, child);
            }
        }
        // The PGD itself is never freed here.
        level != mode.levels() && self.table_empty(table, level)
    }

    fn table_empty(&self, table: Pfn, level: Level) -> bool {
        let mode = self.mode;
        if mode.entry_size() == 8 {
            (0..mode.entries(level)).all(|i| self.read(mode.entry_pa(table, i)).is_none())
        } else {
            // Two 4-byte entries per 64-bit word.
            (0..mode.entries(level) / 2).all(|i| {
                self.dm
                    .word(PhysAddr(table.phys().0 + 8 * i as u64))
                    .load(core::sync::atomic::Ordering::Acquire)
                    == 0
            })
        }
    }

    /// Moves every leaf of `[old, old + len)` to the same offset from
    /// `new` (move_page_tables for mremap), large pages included when the
    /// distance keeps them aligned (EINVAL otherwise, or for overlapping
    /// ranges, misaligned arguments or addresses outside this table).
    /// All destination tables are allocated before any entry moves, so on
    /// ENOMEM nothing has moved. EEXIST if the destination holds entries.
    /// Emptied source tables stay until the range is zapped.
    pub fn move_range(
        &mut self,
        alloc: &mut dyn PgtableAlloc,
        old: VirtAddr,
        new: VirtAddr,
        len: u64,
    ) -> Result<(), Errno> {
        if len == 0 {
            return Ok(());
        }
        if !old.is_page_aligned() || !new.is_page_aligned() || len & (PAGE_SIZE - 1) != 0 {
            return Err(Errno::EINVAL);
        }
        let os = self.lin_of(old)?;
        let ns = self.lin_of(new)?;
        let last = |a: VirtAddr| a.0.checked_add(len - 1).map(VirtAddr).ok_or(Errno::EINVAL);
        let oe = self.lin_of(last(old)?)? + 1;
        let ne = self.lin_of(last(new)?)? + 1;
        if oe <= os || ne <= ns || (os < ne && ns < oe) {
            return Err(Errno::EINVAL);
        }
        let mode = self.mode;
        // Pass 1: check and allocate.
        let mut cur = os;
        while let Some((lin, _, _, level)) = self.next_leaf(cur, oe) {
            let span = mode.span(level);
            if lin < os || lin + span > oe || ns.wrapping_sub(os) & (span - 1) != 0 {
                return Err(Errno::EINVAL);
            }
            let dst = self.walk_alloc(alloc, ns + (lin - os), level)?;
            if !self.read(dst).is_none() {
                return Err(Errno::EEXIST);
            }
            cur = lin + span;
        }
        // Pass 2: move; cannot fail.
        let mut cur = os;
        while let Some((lin, pa, _, level)) = self.next_leaf(cur, oe) {
            let e = mode.xchg_entry(&self.dm, pa, Pte::NONE);
            let dst = self.walk_alloc(alloc, ns + (lin - os), level)?;
            self.write(dst, e);
            cur = lin + mode.span(level);
        }
        Ok(())
    }

    /// First leaf overlapping `[from, end)`.
    fn next_leaf(&self, from: u64, end: u64) -> Option<(u64, PhysAddr, Pte, Level)> {
        if from >= end {
            return None;
        }
        let r = LinRange { start: from, end };
        match self.try_for_each_leaf(self.root, self.mode.levels(), 0, r, &mut |lin, pa, e, l| {
            ControlFlow::Break((lin, pa, e, l))
        }) {
            ControlFlow::Break(found) => Some(found),
            ControlFlow::Continue(()) => None,
        }
    }

    /// Frees every table this PageTable owns, PGD last (`pgd_free` after
    /// `free_pgtables`): for a process, the user half; for the kernel,
    /// everything, so destroy the kernel's tables after every process's.
    /// Entries are not reported; zap the range first if the mapped pages
    /// need releasing.
    pub fn destroy(mut self, alloc: &mut dyn PgtableAlloc) {
        let top = self.mode.levels();
        for idx in 0..self.owned_top_entries() {
            let pa = self.mode.entry_pa(self.root, idx);
            let e = self.read(pa);
            if !e.is_none() && !self.mode.is_leaf(e, top) {
                self.write(pa, Pte::NONE);
                self.free_subtree(alloc, e.pfn(), top - 1);
            }
        }
        let root = self.root;
        self.free_table(alloc, root);
    }

    fn free_subtree(&mut self, alloc: &mut dyn PgtableAlloc, table: Pfn, level: Level) {
        if !self.dm.contains(table.phys(), PAGE_SIZE) {
            return;
        }
        if level > 1 {
            for idx in 0..self.mode.entries(level) {
                let e = self.read(self.mode.entry_pa(table, idx));
                if !e.is_none() && !self.mode.is_leaf(e, level) {
                    self.free_subtree(alloc, e.pfn(), level - 1);
                }
            }
        }
        self.free_table(alloc, table);
    }
}

/// Takes a frame from `alloc` and zeroes it; a frame outside RAM is given
/// back and reported as ENOMEM.
fn take_table(dm: &DirectMap, alloc: &mut dyn PgtableAlloc) -> Result<Pfn, Errno> {
    let pfn = alloc.alloc_table().ok_or(Errno::ENOMEM)?;
    if !dm.contains(pfn.phys(), PAGE_SIZE) {
        alloc.free_table(pfn);
        return Err(Errno::ENOMEM);
    }
    dm.zero_pages(pfn, 1);
    Ok(pfn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::layout::AddressSpaceLayout;
    use crate::direct_map::HeapRam;
    use alloc::collections::{BTreeMap, BTreeSet};
    use alloc::vec::Vec;
    use proptest::prelude::*;

    /// A Vec-backed frame allocator over test RAM that scribbles on the
    /// frames it hands out (so unzeroed tables would show) and checks
    /// every free.
    struct TestAlloc {
        dm: DirectMap,
        free: Vec<Pfn>,
        out: BTreeSet<u64>,
        limit: usize,
    }

    impl TestAlloc {
        fn new(dm: DirectMap) -> Self {
            let pages = dm.size() / PAGE_SIZE;
            TestAlloc {
                dm,
                free: (1..pages).rev().map(Pfn).collect(),
                out: BTreeSet::new(),
                limit: usize::MAX,
            }
        }
        fn outstanding(&self) -> usize {
            self.out.len()
        }
    }

    impl PgtableAlloc for TestAlloc {
        fn alloc_table(&mut self) -> Option<Pfn> {
            if self.out.len() >= self.limit {
                return None;
            }
            let p = self.free.pop()?;
            self.dm.write(p.phys(), &[0xa5; PAGE_SIZE as usize]);
            self.out.insert(p.0);
            Some(p)
        }
        fn free_table(&mut self, pfn: Pfn) {
            assert!(self.out.remove(&pfn.0), "free of {pfn:?} not allocated");
            self.dm.write(pfn.phys(), &[0x5a; PAGE_SIZE as usize]);
            self.free.push(pfn);
        }
    }

    const RAM: u64 = 16 << 20;

    fn setup(mode: PagingMode, lowmem: u64) -> (DirectMap, TestAlloc, PageTable) {
        let dm = HeapRam::direct_map(RAM);
        let mut a = TestAlloc::new(dm.clone());
        let k = kernel(&dm, &mut a, mode, lowmem).unwrap();
        (dm, a, k)
    }

    /// The kernel's tables over the test RAM at physical 0: with its direct
    /// map on x86; without on arm64, whose linear map starts at the DRAM
    /// base (1 GiB), above this RAM.
    fn kernel(
        dm: &DirectMap,
        a: &mut TestAlloc,
        mode: PagingMode,
        lowmem: u64,
    ) -> Result<PageTable, Errno> {
        if mode.split_roots() {
            PageTable::new_kernel_ranges(dm, a, mode, PhysAddr(lowmem), &[])
        } else {
            PageTable::new_kernel(dm, a, mode, PhysAddr(lowmem))
        }
    }

    /// Raw entries met walking `va` from `root`, top first, read straight
    /// from RAM as 4- or 8-byte little-endian words.
    fn raw_path(dm: &DirectMap, mode: PagingMode, root: Pfn, va: u64) -> Vec<u64> {
        let mut out = Vec::new();
        let mut table = root;
        for l in (1..=mode.levels()).rev() {
            let pa = mode.entry_pa(table, mode.index(VirtAddr(va), l));
            let mut b = [0u8; 8];
            dm.read(pa, &mut b[..mode.entry_size() as usize]);
            let raw = u64::from_le_bytes(b);
            out.push(raw);
            // The entry as the mode's hardware reads it (an ARMv8-A
            // descriptor on arm64: bit 0 valid, bits[1:0] = 01 a block).
            let (valid, block) = if mode.split_roots() {
                (raw & 1 != 0, raw & 3 == 1)
            } else {
                (raw & Pte::P != 0, raw & Pte::PS != 0)
            };
            if !valid || (l > 1 && block && mode.huge_ok(l)) {
                break;
            }
            table = Pfn((raw & mode.pfn_mask()) >> 12);
        }
        out
    }

    /// Addresses that put 0, 1 and the last index at every level, in the
    /// user half.
    fn edge_addresses(mode: PagingMode) -> Vec<u64> {
        let top = mode.levels();
        let limit = (mode.kernel_pgd_boundary() as u64) << mode.shift(top);
        let mut v = alloc::vec![0, limit - PAGE_SIZE];
        for l in 1..=top {
            let max = if l == top {
                mode.kernel_pgd_boundary() - 1
            } else {
                mode.entries(l) - 1
            };
            for idx in [1, max] {
                let at = (idx as u64) << mode.shift(l);
                v.push(at);
                // The last entry of every lower table too.
                v.push(at | (mode.span(l) - PAGE_SIZE));
            }
        }
        v.sort();
        v.dedup();
        v
    }

    #[test]
    fn round_trip_at_every_index_edge_with_exact_hardware_bits() {
        for mode in PagingMode::ALL {
            let (dm, mut a, k) = setup(mode, 8 << 20);
            let mut u = PageTable::new_user(&k, &mut a).unwrap();
            let addrs = edge_addresses(mode);
            let flags = PteFlags::PRESENT | PteFlags::USER | PteFlags::WRITE | PteFlags::NX;
            for (i, &lin) in addrs.iter().enumerate() {
                let va = mode.canonical(lin);
                u.map(&mut a, va, Pfn(0x100 + i as u64), flags).unwrap();
            }
            for (i, &lin) in addrs.iter().enumerate() {
                let va = mode.canonical(lin);
                let (pte, level) = u.lookup(va).unwrap();
                assert_eq!(level, 1);
                assert_eq!(pte.pfn(), Pfn(0x100 + i as u64));
                let path = raw_path(&dm, mode, u.root(), va.0);
                assert_eq!(path.len(), mode.levels() as usize, "{mode:?} {va:?}");
                let nx = if mode.has_nx() { Pte::NX } else { 0 };
                // arm64 (pgtable-hwdef.h, pgtable-prot.h): a page
                // descriptor (0b11), SH inner (0x300), nG (0x800), AP[1]
                // user (0x40), AP[2] read-only until dirty (0x80), DBM
                // (writable), PXN and UXN (no exec); no AF (not accessed).
                let leaf = if mode.split_roots() {
                    ((0x100 + i as u64) << 12) | 0xbc3 | 0x0068_0000_0000_0000
                } else {
                    ((0x100 + i as u64) << 12) | 0x7 | nx
                };
                assert_eq!(*path.last().unwrap(), leaf, "{mode:?} {va:?}");
                for (j, raw) in path[..path.len() - 1].iter().enumerate() {
                    let low = if mode == PagingMode::X86Pae && j == 0 {
                        0x1
                    } else if mode.split_roots() {
                        // Table descriptor 0b11; bits 2..11 are ignored by
                        // the walk and carry the neutral table bits.
                        0xf43
                    } else {
                        0x67
                    };
                    assert_eq!(
                        raw & 0xfff,
                        low,
                        "{mode:?} {va:?} level {}",
                        mode.levels() as usize - j
                    );
                    // No NSTable/APTable/XNTable (arm64), no NX (x86).
                    let high = if mode.split_roots() { 59 } else { 52 };
                    assert_eq!(raw >> high, 0);
                }
                assert_eq!(
                    u.translate(va + 0x123),
                    Some(PhysAddr(((0x100 + i as u64) << 12) + 0x123))
                );
            }
            assert_eq!(u.count_tables(), u.count_tables_by_walk());
            for &lin in &addrs {
                let va = mode.canonical(lin);
                assert!(u.unmap(va).is_some_and(|p| p.present()));
                assert_eq!(u.lookup(va), None);
                assert_eq!(u.unmap(va), None);
            }
            let kernel_tables = k.count_tables() as usize;
            let freed = u.zap_range(&mut a, VirtAddr(0), VirtAddr(u64::MAX), &mut |_, _| {
                panic!("nothing mapped")
            });
            assert!(freed > 0);
            assert_eq!(u.count_tables(), 1, "{mode:?}");
            assert_eq!(a.outstanding(), kernel_tables + 1);
            u.destroy(&mut a);
            assert_eq!(a.outstanding(), kernel_tables);
            k.destroy(&mut a);
            assert_eq!(a.outstanding(), 0);
        }
    }

    #[test]
    fn kernel_direct_map_uses_largest_pages() {
        // x86-64: 3 GiB + 2 MiB + 8 KiB -> three 1 GiB, one 2 MiB, two 4 KiB pages.
        let end = (3 << 30) + (2 << 20) + 0x2000;
        let (dm, _a, k) = setup(PagingMode::X86_64L4, end);
        let l = AddressSpaceLayout::new(PagingMode::X86_64L4, 0);
        let at = |pa: u64| {
            k.lookup(VirtAddr(l.page_offset + pa))
                .map(|(p, lv)| (p.raw(), lv))
        };
        assert_eq!(at(0), Some((0x8000_0000_0000_01e3, 3)));
        assert_eq!(
            at((2 << 30) + 5),
            Some(((2 << 30) | 0x8000_0000_0000_01e3, 3))
        );
        assert_eq!(at(3 << 30), Some(((3 << 30) | 0x8000_0000_0000_01e3, 2)));
        assert_eq!(
            at((3 << 30) + (2 << 20) + 0x1000),
            Some((((3 << 30) + (2 << 20) + 0x1000) | 0x8000_0000_0000_0163, 1))
        );
        assert_eq!(at(end), None);
        assert_eq!(
            k.translate(VirtAddr(l.page_offset + 0x1234_5678)),
            Some(PhysAddr(0x1234_5678))
        );
        let path = raw_path(&dm, PagingMode::X86_64L4, k.root(), l.page_offset);
        assert_eq!(path[0] & 0xfff, 0x063); // _KERNPG_TABLE
        assert_eq!(path[1], 0x8000_0000_0000_01e3);
        // Every kernel-half PGD slot points at a (preallocated) table.
        for i in 256..512 {
            let mut b = [0u8; 8];
            dm.read(PagingMode::X86_64L4.entry_pa(k.root(), i), &mut b);
            assert_eq!(u64::from_le_bytes(b) & 0xfff, 0x063, "slot {i}");
        }

        // 2-level x86: 896 MiB of 4 MiB PSE pages in PGD slots 768..991, no NX.
        let (dm, _a, k) = setup(PagingMode::X86_32, 896 << 20);
        let mut b = [0u8; 4];
        dm.read(PagingMode::X86_32.entry_pa(k.root(), 768 + 5), &mut b);
        assert_eq!(u32::from_le_bytes(b), (5 << 22) | 0x1e3);
        assert_eq!(
            k.translate(VirtAddr(0xc000_0000 + 0x3456_789a)),
            Some(PhysAddr(0x3456_789a))
        );
        assert_eq!(
            k.lookup(VirtAddr(0xc000_0000 + (896 << 20))).map(|x| x.1),
            None
        );

        // PAE: 2 MiB pages with NX under the kernel PMD.
        let (_ram, _a, k) = setup(PagingMode::X86Pae, 64 << 20);
        assert_eq!(
            k.lookup(VirtAddr(0xc020_0000)).map(|(p, l)| (p.raw(), l)),
            Some((0x8000_0000_0020_01e3, 2))
        );
    }

    #[test]
    fn user_tables_see_later_kernel_mappings() {
        for mode in PagingMode::ALL.into_iter().filter(|m| !m.split_roots()) {
            let (_ram, mut a, mut k) = setup(mode, 8 << 20);
            let u = PageTable::new_user(&k, &mut a).unwrap();
            let l = AddressSpaceLayout::new(mode, 8 << 20);
            let va = VirtAddr(l.vmalloc_start + 0x5000);
            k.map(&mut a, va, Pfn(77), PteFlags::KERNEL).unwrap();
            assert_eq!(
                u.lookup(va).map(|(p, _)| p.pfn()),
                Some(Pfn(77)),
                "{mode:?}"
            );
            assert_eq!(
                u.translate(VirtAddr(l.page_offset + 0x4321)),
                Some(PhysAddr(0x4321))
            );
            // A process cannot map into, or zap, the kernel half.
            let mut u = u;
            assert_eq!(
                u.map(&mut a, va, Pfn(1), PteFlags::USER),
                Err(Errno::EINVAL)
            );
            let ktables = k.count_tables();
            u.zap_range(
                &mut a,
                VirtAddr(0),
                VirtAddr(u64::MAX),
                &mut |_, _| panic!(),
            );
            assert!(u.lookup(va).is_some());
            // Zapping the vmalloc page in the kernel keeps the shared tables.
            let mut seen = 0;
            k.zap_range(
                &mut a,
                VirtAddr(l.vmalloc_start),
                VirtAddr(l.vmalloc_start + (1 << 20)),
                &mut |_, _| seen += 1,
            );
            assert_eq!(seen, 1);
            assert!(k.count_tables() <= ktables);
            assert_eq!(u.lookup(va), None);
            assert_eq!(
                u.translate(VirtAddr(l.page_offset + 0x4321)),
                Some(PhysAddr(0x4321))
            );
            k.map(&mut a, va, Pfn(78), PteFlags::KERNEL).unwrap();
            assert_eq!(
                u.lookup(va).map(|(p, _)| p.pfn()),
                Some(Pfn(78)),
                "{mode:?}"
            );
            u.destroy(&mut a);
            k.destroy(&mut a);
            assert_eq!(a.outstanding(), 0);
        }
    }

    #[test]
    fn arm64_user_and_kernel_halves_have_separate_roots() {
        // Documentation/arch/arm64/memory.rst: "The swapper_pg_dir contains
        // only kernel (global) mappings while the user pgd contains only
        // user (non-global) mappings."
        let mode = PagingMode::Arm64L4;
        let (_ram, mut a, mut k) = setup(mode, 8 << 20);
        let mut u = PageTable::new_user(&k, &mut a).unwrap();
        assert_eq!(u.count_tables(), 1, "nothing copied from the kernel");
        let l = AddressSpaceLayout::new(mode, 8 << 20);
        let kva = VirtAddr(l.vmalloc_start + 0x5000);
        // The same PGD index (bits 47..39) in both halves.
        let uva = VirtAddr(kva.0 & 0xffff_ffff_ffff);
        assert_eq!(mode.index(kva, 4), mode.index(uva, 4));
        k.map(&mut a, kva, Pfn(77), PteFlags::KERNEL).unwrap();
        u.map(&mut a, uva, Pfn(88), PteFlags::from_prot(3, false))
            .unwrap();
        assert_eq!(k.lookup(kva).map(|(p, _)| p.pfn()), Some(Pfn(77)));
        assert_eq!(u.lookup(uva).map(|(p, _)| p.pfn()), Some(Pfn(88)));
        assert_eq!(u.lookup(kva), None, "TTBR0 never maps a kernel address");
        assert_eq!(k.lookup(uva), None, "TTBR1 never maps a user address");
        assert_eq!(
            u.map(&mut a, kva, Pfn(1), PteFlags::USER),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            k.map(&mut a, uva, Pfn(1), PteFlags::KERNEL),
            Err(Errno::EINVAL)
        );
        // Neither address is canonical-looking in between.
        assert_eq!(
            u.map(
                &mut a,
                VirtAddr(0x0001_0000_0000_0000),
                Pfn(1),
                PteFlags::USER
            ),
            Err(Errno::EINVAL)
        );
        // Walks report each half's own addresses.
        let mut seen = alloc::vec::Vec::new();
        k.walk(VirtAddr(0), VirtAddr(u64::MAX), &mut |va, _, _| {
            seen.push(va)
        });
        assert_eq!(seen, [kva]);
        seen.clear();
        u.walk(VirtAddr(0), VirtAddr(u64::MAX), &mut |va, _, _| {
            seen.push(va)
        });
        assert_eq!(seen, [uva]);
        // User pages are not global (nG), kernel pages are.
        assert!(!u.lookup(uva).unwrap().0.global());
        assert!(k.lookup(kva).unwrap().0.global());
        u.zap_range(&mut a, VirtAddr(0), VirtAddr(u64::MAX), &mut |_, _| {});
        u.destroy(&mut a);
        k.destroy(&mut a);
        assert_eq!(a.outstanding(), 0);
    }

    #[test]
    fn zap_frees_empty_tables_and_reports_entries() {
        for mode in PagingMode::ALL {
            let (_ram, mut a, k) = setup(mode, 4 << 20);
            let mut u = PageTable::new_user(&k, &mut a).unwrap();
            let base = 0x4000_0000u64;
            let before = a.outstanding();
            // 3 PTE tables' worth, crossing table boundaries.
            let span = mode.span(2);
            for i in 0..8u64 {
                u.map(
                    &mut a,
                    VirtAddr(base + i * (span / 4)),
                    Pfn(10 + i),
                    PteFlags::USER | PteFlags::WRITE,
                )
                .unwrap();
            }
            u.set_pte(
                &mut a,
                VirtAddr(base + 2 * span + 0x3000),
                Pte::swap(mode, crate::arch::pte::SwapEntry { ty: 2, offset: 99 }),
            )
            .unwrap();
            let allocated = a.outstanding() - before;
            assert_eq!(u.count_tables() - 1, allocated as u64);
            // Zapping half keeps the tables that still hold entries.
            let mut got = Vec::new();
            u.zap_range(
                &mut a,
                VirtAddr(base),
                VirtAddr(base + span / 2),
                &mut |va, p| got.push((va.0, p.pfn().0)),
            );
            assert_eq!(got, alloc::vec![(base, 10), (base + span / 4, 11)]);
            assert_eq!(u.count_tables() - 1, (a.outstanding() - before) as u64);
            let mut swaps = 0;
            let freed = u.zap_range(&mut a, VirtAddr(0), VirtAddr(0xc000_0000), &mut |_, p| {
                if let Some(e) = p.swap_entry(mode) {
                    assert_eq!((e.ty, e.offset), (2, 99));
                    swaps += 1;
                }
            });
            assert_eq!(swaps, 1);
            assert!(freed as usize >= mode.levels() as usize - 1);
            assert_eq!(a.outstanding(), before);
            assert_eq!(u.count_tables(), 1);
        }
    }

    #[test]
    fn zapping_the_whole_empty_address_space_is_instant() {
        let (_ram, mut a, k) = setup(PagingMode::X86_64L5, 4 << 20);
        let mut u = PageTable::new_user(&k, &mut a).unwrap();
        u.map(
            &mut a,
            VirtAddr(0x00ff_ffff_ffff_e000),
            Pfn(3),
            PteFlags::USER,
        )
        .unwrap();
        for _ in 0..1000 {
            u.zap_range(
                &mut a,
                VirtAddr(0),
                VirtAddr(0x0100_0000_0000_0000),
                &mut |_, _| {},
            );
            let mut n = 0;
            u.walk(VirtAddr(0), VirtAddr(u64::MAX), &mut |_, _, _| n += 1);
            assert_eq!(n, 0);
        }
        assert_eq!(u.count_tables(), 1);
    }

    #[test]
    fn huge_pages_protection_and_move() {
        for mode in PagingMode::ALL {
            let (_ram, mut a, k) = setup(mode, 4 << 20);
            let mut u = PageTable::new_user(&k, &mut a).unwrap();
            let hs = mode.span(2);
            let (src, dst) = (4 * hs, 8 * hs);
            let flags = PteFlags::from_prot(3, true);
            u.map_huge(&mut a, VirtAddr(src), Pfn(hs >> 12), 2, flags)
                .unwrap();
            u.map(&mut a, VirtAddr(src + hs + 0x1000), Pfn(5), flags)
                .unwrap();
            assert_eq!(
                u.map_huge(&mut a, VirtAddr(src + 0x1000), Pfn(hs >> 12), 2, flags),
                Err(Errno::EINVAL)
            );
            assert_eq!(
                u.map_huge(&mut a, VirtAddr(src + hs), Pfn(hs >> 12), 2, flags),
                Err(Errno::EEXIST)
            );
            assert_eq!(
                u.map(&mut a, VirtAddr(src + 0x1000), Pfn(9), flags),
                Err(Errno::EEXIST)
            );
            assert_eq!(
                u.translate(VirtAddr(src + 0x1234)),
                Some(PhysAddr(hs + 0x1234))
            );
            let (p, l) = u.lookup(VirtAddr(src + hs - 1)).unwrap();
            assert!(p.huge() && l == 2 && p.writable());
            // mprotect read-only.
            let n = u.change_protection(VirtAddr(src), VirtAddr(src + 2 * hs), &|p| p.wrprotect());
            assert_eq!(n, 2);
            assert!(!u.lookup(VirtAddr(src)).unwrap().0.writable());
            assert!(!u.lookup(VirtAddr(src + hs + 0x1000)).unwrap().0.writable());
            // mremap the two.
            assert_eq!(
                u.move_range(&mut a, VirtAddr(src), VirtAddr(src + hs), 2 * hs),
                Err(Errno::EINVAL)
            );
            assert_eq!(
                u.move_range(&mut a, VirtAddr(src), VirtAddr(dst + 0x1000), 2 * hs),
                Err(Errno::EINVAL)
            );
            u.move_range(&mut a, VirtAddr(src), VirtAddr(dst), 2 * hs)
                .unwrap();
            assert_eq!(u.lookup(VirtAddr(src)), None);
            assert_eq!(
                u.translate(VirtAddr(dst + 0x1234)),
                Some(PhysAddr(hs + 0x1234))
            );
            assert_eq!(
                u.translate(VirtAddr(dst + hs + 0x1008)),
                Some(PhysAddr(0x5008))
            );
            let mut leaves = Vec::new();
            u.walk(VirtAddr(0), VirtAddr(0xffff_f000), &mut |va, p, l| {
                leaves.push((va.0, p.pfn().0, l))
            });
            assert_eq!(
                leaves,
                alloc::vec![(dst, hs >> 12, 2), (dst + hs + 0x1000, 5, 1)]
            );
            // Destination occupied.
            u.map(&mut a, VirtAddr(src + hs + 0x1000), Pfn(6), flags)
                .unwrap();
            assert_eq!(
                u.move_range(&mut a, VirtAddr(src), VirtAddr(dst), 2 * hs),
                Err(Errno::EEXIST)
            );
            let mut n = 0;
            u.zap_range(&mut a, VirtAddr(0), VirtAddr(0xffff_f000), &mut |_, _| {
                n += 1
            });
            assert_eq!(n, 3);
            assert_eq!(u.count_tables(), 1);
            u.destroy(&mut a);
        }
    }

    #[test]
    fn out_of_memory_is_an_error_not_a_panic() {
        for mode in PagingMode::ALL {
            let dm = HeapRam::direct_map(RAM);
            let mut a = TestAlloc::new(dm.clone());
            // x86 needs the PGD and at least one preallocated kernel
            // table; arm64's swapper_pg_dir alone is a valid kernel table.
            for limit in 0..if mode.split_roots() { 1 } else { 2 } {
                a.limit = limit;
                assert_eq!(
                    kernel(&dm, &mut a, mode, 64 << 20).err(),
                    Some(Errno::ENOMEM)
                );
                assert_eq!(a.outstanding(), 0);
            }
            a.limit = usize::MAX;
            let k = kernel(&dm, &mut a, mode, 64 << 20).unwrap();
            let mut u = PageTable::new_user(&k, &mut a).unwrap();
            a.limit = a.outstanding();
            assert_eq!(
                u.map(&mut a, VirtAddr(0x1000), Pfn(1), PteFlags::USER),
                Err(Errno::ENOMEM)
            );
            assert_eq!(
                u.map(&mut a, VirtAddr(0x1001), Pfn(1), PteFlags::USER),
                Err(Errno::EINVAL)
            );
            assert_eq!(
                u.map(
                    &mut a,
                    VirtAddr(0xffff_ffff_ffff_f000),
                    Pfn(1),
                    PteFlags::USER
                ),
                Err(Errno::EINVAL)
            );
            assert_eq!(
                u.map(&mut a, VirtAddr(0x1000), Pfn(u64::MAX), PteFlags::USER),
                Err(Errno::EINVAL)
            );
            assert_eq!(
                u.move_range(&mut a, VirtAddr(0x1000), VirtAddr(0x2000), !0xfff),
                Err(Errno::EINVAL)
            );
            assert_eq!(u.lookup(VirtAddr(0x8000_0000_0000)), None);
            a.limit = usize::MAX;
            u.zap_range(&mut a, VirtAddr(0), VirtAddr(u64::MAX), &mut |_, _| {});
            u.destroy(&mut a);
            k.destroy(&mut a);
            assert_eq!(a.outstanding(), 0);
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Map(u64, u64, bool),
        Unmap(u64),
        Protect(u64, u64, bool),
        Zap(u64, u64),
        Move(u64, u64, u64),
    }

    /// Page numbers clustered around table boundaries of every level.
    fn vpn(mode: PagingMode) -> impl Strategy<Value = u64> {
        let top = mode.levels();
        let limit_pages = ((mode.kernel_pgd_boundary() as u64) << mode.shift(top)) >> 12;
        let l2 = mode.span(2) >> 12;
        let l3 = if mode.levels() >= 3 {
            mode.span(3) >> 12
        } else {
            limit_pages / 2
        };
        prop_oneof![
            0..8u64,
            (l2 - 4)..(l2 + 4),
            (l3 - 2)..(l3 + 2),
            (limit_pages - 6)..limit_pages,
        ]
    }

    fn op(mode: PagingMode) -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (vpn(mode), 1..1000u64, any::<bool>()).prop_map(|(v, p, w)| Op::Map(v, p, w)),
            2 => vpn(mode).prop_map(Op::Unmap),
            1 => (vpn(mode), 1..16u64, any::<bool>()).prop_map(|(v, n, w)| Op::Protect(v, n, w)),
            1 => (vpn(mode), 1..(1u64 << 20)).prop_map(|(v, n)| Op::Zap(v, n)),
            1 => (vpn(mode), vpn(mode), 1..8u64).prop_map(|(a, b, n)| Op::Move(a, b, n)),
        ]
    }

    fn run_model(mode: PagingMode, ops: Vec<Op>) {
        let (_ram, mut a, k) = setup(mode, 4 << 20);
        let ktables = a.outstanding();
        let mut u = PageTable::new_user(&k, &mut a).unwrap();
        let limit = u.lin_limit() >> 12;
        let mut model: BTreeMap<u64, (u64, bool)> = BTreeMap::new();
        let va = |v: u64| mode.canonical(v << 12);
        for op in ops {
            match op {
                Op::Map(v, p, w) => {
                    let f = if w {
                        PteFlags::USER | PteFlags::WRITE
                    } else {
                        PteFlags::USER
                    };
                    u.map(&mut a, va(v), Pfn(p), f).unwrap();
                    model.insert(v, (p, w));
                }
                Op::Unmap(v) => {
                    assert_eq!(
                        u.unmap(va(v)).map(|p| p.pfn().0),
                        model.remove(&v).map(|x| x.0)
                    );
                }
                Op::Protect(v, n, w) => {
                    let end = (v + n).min(limit);
                    u.change_protection(va(v), va(end - 1) + PAGE_SIZE, &|p| {
                        if w {
                            p.mkwrite()
                        } else {
                            p.wrprotect()
                        }
                    });
                    for (_, e) in model.range_mut(v..end) {
                        e.1 = w;
                    }
                }
                Op::Zap(v, n) => {
                    let end = (v + n).min(limit);
                    let mut got = BTreeMap::new();
                    u.zap_range(&mut a, va(v), va(end - 1) + PAGE_SIZE, &mut |x, p| {
                        got.insert((x.0 & mode.va_mask()) >> 12, (p.pfn().0, p.writable()));
                    });
                    let want: BTreeMap<_, _> = model.range(v..end).map(|(k, v)| (*k, *v)).collect();
                    assert_eq!(got, want);
                    model.retain(|k, _| !(v..end).contains(k));
                }
                Op::Move(s, d, n) => {
                    let n = n.min(limit - s).min(limit - d);
                    let overlap = s < d + n && d < s + n;
                    let dst_busy = model
                        .range(s..s + n)
                        .any(|(k, _)| model.contains_key(&(k - s + d)));
                    let r = u.move_range(&mut a, va(s), va(d), n << 12);
                    if overlap {
                        assert_eq!(r, Err(Errno::EINVAL));
                    } else if dst_busy {
                        assert_eq!(r, Err(Errno::EEXIST));
                    } else {
                        r.unwrap();
                        let moved: Vec<_> = model.range(s..s + n).map(|(k, v)| (*k, *v)).collect();
                        for (k, v) in moved {
                            model.remove(&k);
                            model.insert(k - s + d, v);
                        }
                    }
                }
            }
            let mut seen = BTreeMap::new();
            u.walk(VirtAddr(0), VirtAddr(u64::MAX), &mut |x, p, l| {
                assert_eq!(l, 1);
                seen.insert((x.0 & mode.va_mask()) >> 12, (p.pfn().0, p.writable()));
            });
            assert_eq!(seen, model);
            for (&v, &(p, w)) in &model {
                let (pte, l) = u.lookup(va(v)).unwrap();
                assert_eq!((pte.pfn().0, pte.writable(), l), (p, w, 1));
            }
            assert_eq!(u.count_tables(), u.count_tables_by_walk());
            assert_eq!(a.outstanding(), ktables + u.count_tables() as usize);
        }
        u.zap_range(&mut a, VirtAddr(0), VirtAddr(u64::MAX), &mut |_, _| {});
        assert_eq!(
            u.count_tables(),
            1,
            "tables leaked after zapping everything"
        );
        u.destroy(&mut a);
        assert_eq!(a.outstanding(), ktables);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn random_ops_agree_with_a_model(
            (mode, ops) in prop_oneof![
                Just(PagingMode::X86_64L4), Just(PagingMode::X86_64L5),
                Just(PagingMode::X86_32), Just(PagingMode::X86Pae),
            ].prop_flat_map(|m| (Just(m), proptest::collection::vec(op(m), 1..60)))
        ) {
            run_model(mode, ops);
        }
    }
}
