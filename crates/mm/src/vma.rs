//! VMA tree operations: split, merge, link/unlink with accounting, and the
//! helpers exec uses to insert VMAs. Mirrors mm/vma.c.
//!
//! The merge rules are Linux 6.18's (`is_mergeable_vma`,
//! `is_mergeable_anon_vma`, `can_vma_merge_{before,after}`): equal flags
//! ignoring VM_SOFTDIRTY, the same `struct file` and contiguous pgoff, equal
//! or absent anon_vma, equal anon name, never VM_SPECIAL or special mappings.
//! Simplification: where Linux first tries to merge and only splits when it
//! cannot, we split, change, then merge again at the edges; the final VMA set
//! is the same (only the map_count check at the exact limit can differ).

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::errno::Errno;
use crate::file::FileRef;
use crate::mm_types::{AnonVmaId, MmStruct, PageTableOps, VmFlags, Vma};
use crate::types::{VirtAddr, PAGE_SHIFT};

/// True if the two optional files are the same open file (Linux compares
/// `vm_file` pointers).
pub fn same_file(a: &Option<FileRef>, b: &Option<FileRef>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => Arc::as_ptr(x) as *const u8 == Arc::as_ptr(y) as *const u8,
        _ => false,
    }
}

/// True if `a`, which ends where `b` starts, may become one VMA with `b`.
pub fn can_merge(a: &Vma, b: &Vma) -> bool {
    a.end == b.start
        && a.flags.difference(VmFlags::SOFTDIRTY) == b.flags.difference(VmFlags::SOFTDIRTY)
        && !a.flags.intersects(VmFlags::SPECIAL)
        && a.special.is_none()
        && b.special.is_none()
        && same_file(&a.file, &b.file)
        && a.shmem == b.shmem
        && b.pgoff == a.pgoff.wrapping_add(a.pages())
        && match (a.anon_vma, b.anon_vma) {
            (Some(x), Some(y)) => x == y,
            // The anon_vma of one side will be shared with the other: only
            // if its chain is singular (not inherited through fork).
            (Some(_), None) => !a.anon_vma_forked(),
            (None, Some(_)) => !b.anon_vma_forked(),
            (None, None) => true,
        }
        && a.anon_name == b.anon_name
}

/// `anon_vma_compatible`: neighbours that may share an anon_vma (flags equal
/// apart from access bits and soft-dirty).
fn anon_vma_compatible(a: &Vma, b: &Vma) -> bool {
    let ignore = VmFlags::ACCESS_FLAGS | VmFlags::SOFTDIRTY;
    a.end == b.start
        && a.flags.difference(ignore) == b.flags.difference(ignore)
        && same_file(&a.file, &b.file)
        && b.pgoff == a.pgoff.wrapping_add(a.pages())
}

impl MmStruct {
    /// Inserts `vma` into the tree and accounts it (`vma_link` +
    /// `vm_stat_account`). The caller guarantees the range is free.
    pub(crate) fn link_vma(&mut self, vma: Box<Vma>) {
        self.vm_stat_account(vma.flags, vma.pages() as i64);
        self.vm_acct_vma(vma.flags, vma.pages() as i64);
        self.tree_insert(vma);
    }

    /// Removes the VMA starting at `start` and un-accounts it.
    pub(crate) fn unlink_vma(&mut self, start: VirtAddr) -> Option<Box<Vma>> {
        let v = self.tree_remove(start)?;
        self.vm_stat_account(v.flags, -(v.pages() as i64));
        self.vm_acct_vma(v.flags, -(v.pages() as i64));
        Some(v)
    }

    /// The commitment of a VMA entering (`npages > 0`) or leaving an
    /// address space: VM_ACCOUNT pages count in `vm_committed_as` (see
    /// [`crate::util`] for the Linux sites this sums up).
    fn vm_acct_vma(&self, flags: VmFlags, npages: i64) {
        if flags.contains(VmFlags::ACCOUNT) {
            self.overcommit.vm_acct_memory(npages);
        }
    }

    /// `security_vm_enough_memory_mm(mm, pages)`: may this address space
    /// commit `pages` more pages? (the policy of
    /// [`crate::util::Overcommit::vm_enough_memory`] with this mm's
    /// total_vm and CAP_SYS_ADMIN).
    pub(crate) fn vm_enough_memory(&self, pages: u64) -> Result<(), Errno> {
        self.overcommit
            .vm_enough_memory(pages, Some(self.total_vm), self.cred.cap_sys_admin)
    }

    /// Pages of this address space's VM_ACCOUNT VMAs: its share of
    /// `vm_committed_as` (what `exit_mmap` gives back as `nr_accounted`).
    pub fn accounted_vm(&self) -> u64 {
        self.vmas
            .values()
            .filter(|v| v.flags.contains(VmFlags::ACCOUNT))
            .map(|v| v.pages())
            .sum()
    }

    /// Replaces the flags of the VMA starting at `start`, re-accounting it.
    pub(crate) fn set_vma_flags(&mut self, start: VirtAddr, flags: VmFlags) {
        let Some(v) = self.vmas.get(&start) else {
            return;
        };
        let (old, pages) = (v.flags, v.pages() as i64);
        if old == flags {
            return;
        }
        self.vm_stat_account(old, -pages);
        self.vm_stat_account(flags, pages);
        self.vm_acct_vma(old, -pages);
        self.vm_acct_vma(flags, pages);
        if let Some(v) = self.vmas.get_mut(&start) {
            v.flags = flags;
        }
    }

    /// `split_vma`: if `addr` lies strictly inside a VMA, cut it in two; the
    /// upper part's pgoff advances by the pages below `addr`. With
    /// `check_count`, fails with ENOMEM when map_count is at max_map_count.
    pub(crate) fn split_at(&mut self, addr: VirtAddr, check_count: bool) -> Result<(), Errno> {
        let Some((&key, v)) = self.vmas.range(..addr).next_back() else {
            return Ok(());
        };
        if v.end <= addr {
            return Ok(());
        }
        if check_count && self.vmas.len() >= self.max_map_count {
            return Err(Errno::ENOMEM);
        }
        let mut tail = v.clone();
        tail.pgoff = v.pgoff.wrapping_add((addr - key) >> PAGE_SHIFT);
        tail.start = addr;
        self.tree_modify(key, |v| v.end = addr);
        let tail = self.vm_area_alloc(tail);
        self.tree_insert(tail);
        Ok(())
    }

    /// Merges the VMA ending at `addr` with the one starting there, if the
    /// rules allow. Returns true if merged.
    pub(crate) fn try_merge_at(&mut self, addr: VirtAddr) -> bool {
        // One descent finds both: the VMA at `addr`, then the one below.
        let mut below = self.vmas.range(..=addr).rev();
        let Some((&b_key, b)) = below.next() else {
            return false;
        };
        let Some((&a_key, a)) = below.next() else {
            return false;
        };
        if b_key != addr || !can_merge(a, b) {
            return false;
        }
        let Some(b) = self.tree_remove(addr) else {
            return false;
        };
        self.tree_modify(a_key, |a| {
            a.end = b.end;
            a.flags |= b.flags & VmFlags::SOFTDIRTY;
            if a.anon_vma.is_none() {
                a.anon_vma = b.anon_vma;
                a.anon_parents = b.anon_parents.clone();
            }
        });
        self.vm_area_free(b);
        true
    }

    /// Links `vma` into the free range it covers and merges it with its
    /// neighbours: the outcome of `merge_range` over that range (Linux's
    /// `vma_merge_new_range`). One descent of the tree before linking finds
    /// both neighbours, and a merge is only attempted where the rules allow
    /// it. After a merge with the next VMA the new one may have taken its
    /// anon_vma, so the merge below is then decided afresh.
    pub(crate) fn link_and_merge(&mut self, vma: Box<Vma>) {
        let (start, end) = (vma.start, vma.end);
        let (with_next, with_prev) = {
            let mut below = self.vmas.range(..=end).rev();
            let mut item = below.next();
            let with_next = match item {
                Some((&k, next)) if k == end => {
                    let ok = can_merge(&vma, next);
                    item = below.next();
                    ok
                }
                _ => false,
            };
            (
                with_next,
                item.is_some_and(|(_, prev)| can_merge(prev, &vma)),
            )
        };
        self.link_vma(vma);
        if with_next {
            self.try_merge_at(end);
            self.try_merge_at(start);
        } else if with_prev {
            self.try_merge_at(start);
        }
    }

    /// Merges at both edges of `[start, end)` and at every VMA boundary
    /// inside it (the effect of `vma_merge_existing_range` on each VMA that
    /// an operation changed).
    pub(crate) fn merge_range(&mut self, start: VirtAddr, end: VirtAddr) {
        let inner: Vec<VirtAddr> = self
            .vmas
            .range(start.saturating_add(1)..end)
            .map(|(&k, _)| k)
            .collect();
        for k in inner.into_iter().rev() {
            self.try_merge_at(k);
        }
        // The VMA that now ends at or after `end`.
        if let Some(v) = self.vma_lookup(end.saturating_sub(1)) {
            if v.end == end {
                self.try_merge_at(end);
            }
        }
        self.try_merge_at(start);
    }

    /// Splits so that `start` and `end` fall on VMA boundaries, checking
    /// map_count for each split (`vma_modify`).
    pub(crate) fn split_range(&mut self, start: VirtAddr, end: VirtAddr) -> Result<(), Errno> {
        self.split_at(start, true)?;
        self.split_at(end, true)
    }

    /// The VMAs intersecting `[start, end)`, in address order (walked in
    /// place: no list is built).
    pub(crate) fn vmas_in(&self, start: VirtAddr, end: VirtAddr) -> impl Iterator<Item = &Vma> {
        self.vma_lookup(start).into_iter().chain(
            self.vmas
                .range(start.saturating_add(1)..end)
                .map(|(_, v)| v),
        )
    }

    /// Pages of `[start, end)` in the VMAs `filter` accepts.
    pub(crate) fn pages_in(
        &self,
        start: VirtAddr,
        end: VirtAddr,
        filter: impl Fn(&Vma) -> bool,
    ) -> u64 {
        self.vmas_in(start, end)
            .filter(|v| filter(v))
            .map(|v| (v.end.min(end) - v.start.max(start)) >> PAGE_SHIFT)
            .sum()
    }

    /// Pages of `[start, end)` that are mapped (`count_vma_pages_range`).
    pub(crate) fn count_pages(&self, start: VirtAddr, end: VirtAddr) -> u64 {
        self.pages_in(start, end, |_| true)
    }

    /// Pages of VM_ACCOUNT VMAs in `[start, end)` (`vms->nr_accounted`: what
    /// a MAP_FIXED mapping over them no longer needs to charge).
    pub(crate) fn accounted_pages(&self, start: VirtAddr, end: VirtAddr) -> u64 {
        self.pages_in(start, end, |v| v.flags.contains(VmFlags::ACCOUNT))
    }

    /// The core of munmap (`do_vmi_align_munmap`): split at the edges,
    /// detach every VMA inside `[start, end)`, zap their ptes if `zap`, and
    /// drop them. `start`/`end` must be page-aligned.
    pub(crate) fn detach_range(
        &mut self,
        pt: &mut dyn PageTableOps,
        start: VirtAddr,
        end: VirtAddr,
        zap: bool,
    ) -> Result<(), Errno> {
        let Some(first) = self.find_vma_intersection(start, end) else {
            return Ok(());
        };
        let (first_start, first_end) = (first.start, first.end);
        if start > first_start {
            if end < first_end && self.vmas.len() >= self.max_map_count {
                return Err(Errno::ENOMEM);
            }
            self.split_at(start, false)?;
        }
        // A VMA straddles `end` only if the first one does not end there
        // (the ones after it start at or above its end).
        if first_end != end {
            self.split_at(end, false)?;
        }
        // One VMA at a time, lowest first, with no list of keys built: the
        // first is known, each next one is looked up only while the range
        // goes on past the VMA just removed.
        let mut next = Some(start.max(first_start));
        while let Some(k) = next {
            let Some(v) = self.unlink_vma(k) else {
                break;
            };
            if zap {
                pt.unmap_range(v.start, v.end);
            }
            next = if v.end < end {
                self.vmas.range(v.end..end).next().map(|(&k, _)| k)
            } else {
                None
            };
            self.vm_area_free(v);
        }
        Ok(())
    }

    /// `anon_vma_prepare`: gives the private VMA containing `addr` an
    /// anon_vma (reusing a compatible neighbour's, as
    /// `find_mergeable_anon_vma` does) and returns it. Shared mappings get none.
    pub fn anon_vma_prepare(&mut self, addr: VirtAddr) -> Option<AnonVmaId> {
        let v = self.vma_lookup(addr)?;
        if v.flags.contains(VmFlags::MAYSHARE) {
            return None;
        }
        if let Some(a) = v.anon_vma {
            return Some(a);
        }
        let (key, end) = (v.start, v.end);
        let from_prev = self
            .prev_of(key)
            .filter(|p| anon_vma_compatible(p, v) && !p.anon_vma_forked())
            .and_then(|p| p.anon_vma);
        let from_next = self
            .vmas
            .get(&end)
            .filter(|n| anon_vma_compatible(v, n) && !n.anon_vma_forked())
            .and_then(|n| n.anon_vma);
        let id = match from_prev.or(from_next) {
            Some(id) => id,
            None => self.new_anon_vma(None),
        };
        self.tree_modify(key, |v| v.anon_vma = Some(id));
        Some(id)
    }

    /// `insert_vm_struct`: links a ready-made VMA (exec's segments, the
    /// stack) without merging. ENOMEM if it overlaps or map_count is full,
    /// or if the overcommit policy refuses a VM_ACCOUNT VMA; EINVAL if it is empty or misaligned.
    pub fn insert_vma(&mut self, mut vma: Vma) -> Result<(), Errno> {
        if vma.start >= vma.end || !vma.start.is_page_aligned() || !vma.end.is_page_aligned() {
            return Err(Errno::EINVAL);
        }
        if vma.end > self.task_size && vma.special.is_none() {
            return Err(Errno::ENOMEM);
        }
        if self.find_vma_intersection(vma.start, vma.end).is_some()
            || self.vmas.len() >= self.max_map_count
        {
            return Err(Errno::ENOMEM);
        }
        // insert_vm_struct charges a VM_ACCOUNT VMA (exec's stack).
        if vma.flags.contains(VmFlags::ACCOUNT) {
            self.vm_enough_memory(vma.pages())?;
        }
        if vma.is_anonymous() && !vma.flags.contains(VmFlags::MAYSHARE) {
            vma.pgoff = vma.start.vpn();
        }
        self.link_vma(Box::new(vma));
        Ok(())
    }

    /// `_install_special_mapping`: a `[vdso]`-like VMA named `name` with
    /// `flags | def_flags | VM_DONTEXPAND | VM_SOFTDIRTY`; it never merges.
    pub fn insert_special_mapping(
        &mut self,
        start: VirtAddr,
        len: u64,
        flags: VmFlags,
        name: &'static str,
    ) -> Result<(), Errno> {
        let end = start.checked_add(len).ok_or(Errno::ENOMEM)?;
        let mut v = Vma::new_anon(
            start,
            end,
            flags | self.def_flags | VmFlags::DONTEXPAND | VmFlags::SOFTDIRTY,
            0,
        );
        v.special = Some(name);
        self.insert_vma(v)
    }

    /// The initial stack VMA exec builds (`__bprm_mm_init` +
    /// `setup_arg_pages`): `[start, end)` with VM_STACK_FLAGS | VM_SOFTDIRTY
    /// (| VM_EXEC for an executable stack). Sets `start_stack` to `sp`.
    pub fn insert_stack_vma(
        &mut self,
        start: VirtAddr,
        end: VirtAddr,
        sp: VirtAddr,
        exec_stack: bool,
    ) -> Result<(), Errno> {
        let mut flags = VmFlags::STACK_FLAGS | VmFlags::SOFTDIRTY | self.def_flags;
        if exec_stack {
            flags |= VmFlags::EXEC;
        }
        self.insert_vma(Vma::new_anon(start, end, flags, 0))?;
        self.start_stack = sp;
        Ok(())
    }

    /// Checks the tree's invariants (sorted, non-overlapping, page-aligned,
    /// non-empty, keyed by start, accounting equal to a recount). Returns a
    /// description of the first violation.
    pub fn check_invariants(&self) -> Result<(), alloc::string::String> {
        use alloc::format;
        let mut last_end = VirtAddr(0);
        let mut probe = MmStruct::new(crate::mm_types::MmLayout::x86_64(self.rlimits));
        for (&k, v) in &self.vmas {
            if k != v.start {
                return Err(format!("key {k:#x} != start of {v:?}"));
            }
            if v.start >= v.end || !v.start.is_page_aligned() || !v.end.is_page_aligned() {
                return Err(format!("bad range {v:?}"));
            }
            if v.start < last_end {
                return Err(format!("overlap at {v:?}"));
            }
            last_end = v.end;
            probe.vm_stat_account(v.flags, v.pages() as i64);
        }
        let ours = (
            self.total_vm,
            self.data_vm,
            self.exec_vm,
            self.stack_vm,
            self.locked_vm,
        );
        let theirs = (
            probe.total_vm,
            probe.data_vm,
            probe.exec_vm,
            probe.stack_vm,
            probe.locked_vm,
        );
        if ours != theirs {
            return Err(format!("accounting {ours:?} != recount {theirs:?}"));
        }
        Ok(())
    }
}
