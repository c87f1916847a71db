//! `mremap(2)`: resize and/or move a mapping. Mirrors mm/mremap.c.
//!
//! Rules (linux-facts §6.5): flag validation, shrink by unmapping the tail,
//! grow in place (merging with the next VMA, `vma_merge_extend`), move with
//! MREMAP_MAYMOVE / MREMAP_FIXED / MREMAP_DONTUNMAP, and the pgoff reset of
//! an unfaulted anonymous VMA so that it can merge at its destination.
//! Simplifications: a move covers a single source VMA (as before 6.17); no
//! hugetlb, no userfaultfd; with DONTUNMAP the source's VM_LOCKED is cleared
//! and locked_vm follows the flags (Linux leaves locked_vm unchanged).

use alloc::boxed::Box;

use crate::errno::Errno;
use crate::mm_types::{MmStruct, PageTableOps, VmFlags};
use crate::mmap::{do_munmap, get_unmapped_area_pgoff, mm_populate, MAP_FIXED, MAP_SHARED};
use crate::types::{page_align, VirtAddr, PAGE_SHIFT};

/// The mapping may move.
pub const MREMAP_MAYMOVE: u32 = 1;
/// Move to exactly `new_addr`.
pub const MREMAP_FIXED: u32 = 2;
/// Move, but leave the source mapped (and empty).
pub const MREMAP_DONTUNMAP: u32 = 4;

/// `mremap(2)`: returns the (possibly new) address of the mapping.
/// Errors: EINVAL (flags, alignment, zero new_len, lengths over TASK_SIZE,
/// overlapping FIXED ranges, DONTUNMAP rules, old_len 0 on a private VMA,
/// pgoff overflow), EFAULT (no VMA at old_addr, range crossing the VMA end,
/// growing a VM_DONTEXPAND/PFNMAP VMA), EAGAIN (RLIMIT_MEMLOCK), ENOMEM (no
/// room and no MAYMOVE, RLIMIT_AS, map count).
pub fn mremap(
    mm: &mut MmStruct,
    pt: &mut dyn PageTableOps,
    old_addr: VirtAddr,
    old_len: u64,
    new_len: u64,
    flags: u32,
    new_addr: VirtAddr,
) -> Result<VirtAddr, Errno> {
    let addr = old_addr;
    if flags & !(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & MREMAP_FIXED != 0 && flags & MREMAP_MAYMOVE == 0 {
        return Err(Errno::EINVAL);
    }
    if !addr.is_page_aligned() {
        return Err(Errno::EINVAL);
    }
    let old_len = page_align(old_len).ok_or(Errno::EINVAL)?;
    let new_len = page_align(new_len).unwrap_or(0);
    if flags & MREMAP_DONTUNMAP != 0 && (flags & MREMAP_MAYMOVE == 0 || old_len != new_len) {
        return Err(Errno::EINVAL);
    }
    if new_len == 0 || new_len > mm.task_size.as_u64() {
        return Err(Errno::EINVAL);
    }
    let implies_new_addr = flags & (MREMAP_FIXED | MREMAP_DONTUNMAP) != 0;
    if implies_new_addr {
        if new_addr > mm.task_size - new_len || !new_addr.is_page_aligned() {
            return Err(Errno::EINVAL);
        }
        let old_end = addr.saturating_add(old_len);
        if new_addr < old_end && addr < new_addr + new_len {
            return Err(Errno::EINVAL);
        }
    }
    let Some(vma) = mm.vma_lookup(addr) else {
        return Err(Errno::EFAULT);
    };
    if old_len == 0 && !vma.flags.contains(VmFlags::MAYSHARE) {
        return Err(Errno::EINVAL);
    }
    if implies_new_addr {
        return mremap_to(mm, pt, addr, old_len, new_addr, new_len, flags);
    }
    if old_len >= new_len {
        if old_len > new_len {
            do_munmap(mm, pt, addr + new_len, old_len - new_len)?;
        }
        return Ok(addr);
    }
    check_prep_vma(mm, addr, old_len, new_len, flags)?;
    let vma = mm.vma_lookup(addr).ok_or(Errno::EFAULT)?;
    let (key, vend, vflags) = (vma.start, vma.end, vma.flags);
    let delta = new_len - old_len;
    if old_len == vend - addr && vma_expandable(mm, vend, delta) {
        // Grow in place, then merge with the following VMA.
        let v = mm.unlink_vma(key).ok_or(Errno::EFAULT)?;
        let mut v2 = v.clone();
        v2.end = vend + delta;
        mm.link_vma(v2);
        mm.try_merge_at(vend + delta);
        if vflags.contains(VmFlags::LOCKED) {
            let _ = mm_populate(mm, pt, addr + old_len, delta, true);
        }
        return Ok(addr);
    }
    if flags & MREMAP_MAYMOVE == 0 {
        return Err(Errno::ENOMEM);
    }
    let map_flags = if vflags.contains(VmFlags::MAYSHARE) {
        MAP_SHARED
    } else {
        0
    };
    let file = mm.vmas.get(&key).and_then(|v| v.file.clone());
    // vma->vm_pgoff + ((addr - vma->vm_start) >> PAGE_SHIFT): the file
    // offset decides a THP-aligned placement (get_unmapped_area_pgoff).
    let pgoff = mm
        .vmas
        .get(&key)
        .map_or(0, |v| v.pgoff + ((addr - v.start) >> PAGE_SHIFT));
    let dst = get_unmapped_area_pgoff(mm, file.as_ref(), VirtAddr(0), new_len, pgoff, map_flags)?;
    move_vma(mm, pt, addr, old_len, new_len, dst, flags)
}

/// The checks Linux makes before a mapping grows or moves
/// (`check_prep_vma`): the source range must lie in one VMA (EFAULT);
/// DONTUNMAP refuses DONTEXPAND/PFNMAP VMAs (EINVAL); growth needs a pgoff
/// that does not overflow (EINVAL), a VMA that may expand (EFAULT), room under
/// RLIMIT_MEMLOCK (EAGAIN) and RLIMIT_AS/DATA (ENOMEM).
fn check_prep_vma(
    mm: &MmStruct,
    addr: VirtAddr,
    old_len: u64,
    new_len: u64,
    flags: u32,
) -> Result<(), Errno> {
    let vma = mm.vma_lookup(addr).ok_or(Errno::EFAULT)?;
    if old_len > vma.end - addr {
        return Err(Errno::EFAULT);
    }
    if flags & MREMAP_DONTUNMAP != 0 && vma.flags.intersects(VmFlags::DONTEXPAND | VmFlags::PFNMAP)
    {
        return Err(Errno::EINVAL);
    }
    if new_len == old_len {
        return vrm_calc_charge(mm, vma.flags, old_len, new_len, flags);
    }
    let pgoff = vma.pgoff_at(addr);
    if pgoff.checked_add(new_len >> PAGE_SHIFT).is_none() {
        return Err(Errno::EINVAL);
    }
    if new_len > old_len {
        if vma.flags.intersects(VmFlags::DONTEXPAND | VmFlags::PFNMAP) {
            return Err(Errno::EFAULT);
        }
        let delta = new_len - old_len;
        if !mm.mlock_future_ok(vma.flags, delta) {
            return Err(Errno::EAGAIN);
        }
        if !mm.may_expand_vm(vma.flags, delta >> PAGE_SHIFT) {
            return Err(Errno::ENOMEM);
        }
    }
    vrm_calc_charge(mm, vma.flags, old_len, new_len, flags)
}

/// `vrm_calc_charge`: a VM_ACCOUNT VMA is charged its growth, or the whole
/// new length when MREMAP_DONTUNMAP keeps the source; ENOMEM if the
/// overcommit policy refuses (Linux checks it when it expands or moves,
/// after the checks above, so the errno order is the same).
fn vrm_calc_charge(
    mm: &MmStruct,
    vm_flags: VmFlags,
    old_len: u64,
    new_len: u64,
    flags: u32,
) -> Result<(), Errno> {
    if !vm_flags.contains(VmFlags::ACCOUNT) {
        return Ok(());
    }
    let charged = if flags & MREMAP_DONTUNMAP != 0 {
        new_len
    } else {
        new_len.saturating_sub(old_len)
    };
    if charged > 0 {
        mm.vm_enough_memory(charged >> PAGE_SHIFT)?;
    }
    Ok(())
}

/// `vma_expandable`: `[end, end+delta)` is free and below TASK_SIZE.
fn vma_expandable(mm: &MmStruct, end: VirtAddr, delta: u64) -> bool {
    let Some(new_end) = end.checked_add(delta) else {
        return false;
    };
    new_end <= mm.task_size && mm.find_vma_intersection(end, new_end).is_none()
}

/// `mremap_to`: the MREMAP_FIXED / MREMAP_DONTUNMAP path.
fn mremap_to(
    mm: &mut MmStruct,
    pt: &mut dyn PageTableOps,
    addr: VirtAddr,
    mut old_len: u64,
    new_addr: VirtAddr,
    new_len: u64,
    flags: u32,
) -> Result<VirtAddr, Errno> {
    // All checks come before any unmapping (6.18 `check_prep_vma`).
    check_prep_vma(mm, addr, old_len, new_len, flags)?;
    if flags & MREMAP_DONTUNMAP != 0 {
        let v = mm.vma_lookup(addr).ok_or(Errno::EFAULT)?;
        if !mm.may_expand_vm(v.flags, old_len >> PAGE_SHIFT) {
            return Err(Errno::ENOMEM);
        }
    }
    if flags & MREMAP_FIXED != 0 {
        do_munmap(mm, pt, new_addr, new_len)?;
    }
    if old_len > new_len {
        do_munmap(mm, pt, addr + new_len, old_len - new_len)?;
        old_len = new_len;
    }
    let vma = mm.vma_lookup(addr).ok_or(Errno::EFAULT)?;
    let mut map_flags = 0;
    if flags & MREMAP_FIXED != 0 {
        map_flags |= MAP_FIXED;
    }
    if vma.flags.contains(VmFlags::MAYSHARE) {
        map_flags |= MAP_SHARED;
    }
    let file = vma.file.clone();
    let pgoff = vma.pgoff + ((addr - vma.start) >> PAGE_SHIFT);
    let dst = get_unmapped_area_pgoff(mm, file.as_ref(), new_addr, new_len, pgoff, map_flags)?;
    move_vma(mm, pt, addr, old_len, new_len, dst, flags)
}

/// `move_vma`: moves `[old, old+old_len)` (inside one VMA) to `new`,
/// making it `new_len` long; copies the VMA (`copy_vma`, with the pgoff
/// reset for an unfaulted anonymous VMA), moves the page tables, then unmaps
/// the source unless MREMAP_DONTUNMAP.
fn move_vma(
    mm: &mut MmStruct,
    pt: &mut dyn PageTableOps,
    old: VirtAddr,
    old_len: u64,
    new_len: u64,
    new: VirtAddr,
    flags: u32,
) -> Result<VirtAddr, Errno> {
    if mm.map_count() + 3 >= mm.max_map_count {
        return Err(Errno::ENOMEM);
    }
    let vma = mm.vma_lookup(old).ok_or(Errno::EFAULT)?;
    let mut copy = vma.clone();
    let vkey = vma.start;
    copy.pgoff = if vma.is_anonymous() && vma.anon_vma.is_none() {
        new.vpn()
    } else {
        vma.pgoff_at(old)
    };
    copy.start = new;
    copy.end = new + new_len;
    let dontunmap = flags & MREMAP_DONTUNMAP != 0;
    if old_len > 0 {
        // Out of page-table memory: nothing moved, the source stays
        // mapped and mremap fails with ENOMEM.
        pt.move_range(old, new, old_len)?;
    }
    if dontunmap {
        // The source stays, empty; it loses VM_LOCKED and, if it was moved
        // whole, its anon_vma.
        let whole = {
            let v = &mm.vmas[&vkey];
            v.start == old && v.end == old + old_len
        };
        let f = mm.vmas[&vkey].flags.difference(VmFlags::LOCKED_MASK);
        mm.set_vma_flags(vkey, f);
        if whole {
            mm.tree_modify(vkey, |v| {
                v.anon_vma = None;
                v.anon_parents.clear();
            });
        }
    } else if old_len > 0 {
        mm.detach_range(pt, old, old + old_len, false)?;
    }
    let locked = copy.flags.contains(VmFlags::LOCKED);
    mm.link_vma(Box::new(copy));
    mm.merge_range(new, new + new_len);
    if dontunmap {
        mm.merge_range(old, old + old_len);
    }
    if locked && new_len > old_len {
        let _ = mm_populate(mm, pt, new + old_len, new_len - old_len, true);
    }
    Ok(new)
}
