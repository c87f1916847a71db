//! `mlock(2)`, `mlock2(2)`, `munlock(2)`, `mlockall(2)`, `munlockall(2)`:
//! set or clear VM_LOCKED / VM_LOCKONFAULT on ranges (splitting and merging)
//! and fault the pages in. Mirrors mm/mlock.c.
//!
//! Simplification: locked_vm is the sum of VM_LOCKED VMA sizes (kept by the
//! VMA accounting), which is what Linux's bookkeeping amounts to here.

use crate::errno::Errno;
use crate::mm_types::{MmStruct, PageTableOps, VmFlags};
use crate::mmap::mm_populate;
use crate::types::{page_align, VirtAddr, PAGE_SHIFT};

/// mlock2: lock pages as they are faulted in.
pub const MLOCK_ONFAULT: u32 = 1;
/// mlockall: lock current mappings.
pub const MCL_CURRENT: u32 = 1;
/// mlockall: lock future mappings.
pub const MCL_FUTURE: u32 = 2;
/// mlockall: lock on fault.
pub const MCL_ONFAULT: u32 = 4;

/// `mlock(2)`.
pub fn mlock(
    mm: &mut MmStruct,
    pt: &mut dyn PageTableOps,
    start: VirtAddr,
    len: u64,
) -> Result<(), Errno> {
    do_mlock(mm, pt, start, len, VmFlags::LOCKED)
}

/// `mlock2(2)`: EINVAL for flags other than MLOCK_ONFAULT.
pub fn mlock2(
    mm: &mut MmStruct,
    pt: &mut dyn PageTableOps,
    start: VirtAddr,
    len: u64,
    flags: u32,
) -> Result<(), Errno> {
    if flags & !MLOCK_ONFAULT != 0 {
        return Err(Errno::EINVAL);
    }
    let mut f = VmFlags::LOCKED;
    if flags & MLOCK_ONFAULT != 0 {
        f |= VmFlags::LOCKONFAULT;
    }
    do_mlock(mm, pt, start, len, f)
}

/// `do_mlock`: EPERM without the right to lock (RLIMIT_MEMLOCK 0 and no
/// CAP_IPC_LOCK); ENOMEM over RLIMIT_MEMLOCK or for a hole; EAGAIN if the
/// pages could not be faulted in.
fn do_mlock(
    mm: &mut MmStruct,
    pt: &mut dyn PageTableOps,
    start: VirtAddr,
    len: u64,
    flags: VmFlags,
) -> Result<(), Errno> {
    if !mm.can_do_mlock() {
        return Err(Errno::EPERM);
    }
    let len = page_align(len.checked_add(start.page_offset()).ok_or(Errno::ENOMEM)?)
        .ok_or(Errno::ENOMEM)?;
    let start = start.page_down();
    let lock_limit = mm.rlimits.memlock >> PAGE_SHIFT;
    let mut locked = (len >> PAGE_SHIFT).saturating_add(mm.locked_vm);
    let cap = mm.cred.cap_ipc_lock;
    if locked > lock_limit && !cap {
        locked = locked.saturating_sub(count_mlocked(mm, start, start.saturating_add(len)));
    }
    if locked > lock_limit && !cap {
        return Err(Errno::ENOMEM);
    }
    apply_vma_lock_flags(mm, pt, start, len, flags)?;
    match mm_populate(mm, pt, start, len, false) {
        Ok(()) => Ok(()),
        Err(Errno::EFAULT) => Err(Errno::ENOMEM),
        Err(Errno::ENOMEM) => Err(Errno::EAGAIN),
        Err(e) => Err(e),
    }
}

/// Pages of `[start, end)` already in VM_LOCKED VMAs.
fn count_mlocked(mm: &MmStruct, start: VirtAddr, end: VirtAddr) -> u64 {
    mm.pages_in(start, end, |v| v.flags.contains(VmFlags::LOCKED))
}

/// `munlock(2)`.
pub fn munlock(
    mm: &mut MmStruct,
    pt: &mut dyn PageTableOps,
    start: VirtAddr,
    len: u64,
) -> Result<(), Errno> {
    let len = page_align(len.checked_add(start.page_offset()).ok_or(Errno::ENOMEM)?)
        .ok_or(Errno::ENOMEM)?;
    apply_vma_lock_flags(mm, pt, start.page_down(), len, VmFlags::NONE)
}

/// `apply_vma_lock_flags`: sets the lock bits of every VMA in the range to
/// `flags`; ENOMEM for holes (the part before the hole is changed).
fn apply_vma_lock_flags(
    mm: &mut MmStruct,
    pt: &mut dyn PageTableOps,
    start: VirtAddr,
    len: u64,
    flags: VmFlags,
) -> Result<(), Errno> {
    let end = start.checked_add(len).ok_or(Errno::EINVAL)?;
    if end == start {
        return Ok(());
    }
    if mm.vma_lookup(start).is_none() {
        return Err(Errno::ENOMEM);
    }
    let mut tmp = start;
    while tmp < end {
        let Some(v) = mm.find_vma(tmp).filter(|v| v.start < end) else {
            break;
        };
        if v.start > tmp {
            return Err(Errno::ENOMEM);
        }
        let newflags = v.flags.difference(VmFlags::LOCKED_MASK) | flags;
        let seg_end = v.end.min(end);
        let key = v.start;
        mlock_fixup(mm, pt, key, tmp, seg_end, newflags)?;
        tmp = seg_end;
    }
    if tmp < end {
        return Err(Errno::ENOMEM);
    }
    Ok(())
}

/// `mlock_fixup`: special, hugetlb and droppable VMAs are never locked.
/// Pages already mapped are locked or unlocked with the range
/// (`mlock_vma_pages_range`); the ones faulted in later are locked by the
/// fault.
fn mlock_fixup(
    mm: &mut MmStruct,
    pt: &mut dyn PageTableOps,
    key: VirtAddr,
    start: VirtAddr,
    end: VirtAddr,
    newflags: VmFlags,
) -> Result<(), Errno> {
    let v = &mm.vmas[&key];
    let old = v.flags;
    if newflags == old
        || old.intersects(VmFlags::SPECIAL | VmFlags::HUGETLB | VmFlags::DROPPABLE)
        || v.special.is_some()
    {
        return Ok(());
    }
    mm.split_range(start, end)?;
    mm.set_vma_flags(start, newflags);
    mm.merge_range(start, end);
    let (was, is) = (
        old.contains(VmFlags::LOCKED),
        newflags.contains(VmFlags::LOCKED),
    );
    if was != is {
        pt.mlock_range(start, end, is);
    }
    Ok(())
}

/// `mlockall(2)`: EINVAL for no flags, unknown flags or MCL_ONFAULT alone;
/// EPERM without the right to lock; ENOMEM if MCL_CURRENT and total_vm
/// exceeds RLIMIT_MEMLOCK without CAP_IPC_LOCK.
pub fn mlockall(mm: &mut MmStruct, pt: &mut dyn PageTableOps, flags: u32) -> Result<(), Errno> {
    if flags == 0 || flags & !(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0 || flags == MCL_ONFAULT
    {
        return Err(Errno::EINVAL);
    }
    if !mm.can_do_mlock() {
        return Err(Errno::EPERM);
    }
    let lock_limit = mm.rlimits.memlock >> PAGE_SHIFT;
    if flags & MCL_CURRENT != 0 && mm.total_vm > lock_limit && !mm.cred.cap_ipc_lock {
        return Err(Errno::ENOMEM);
    }
    apply_mlockall_flags(mm, pt, flags);
    if flags & MCL_CURRENT != 0 {
        let ts = mm.task_size;
        let _ = mm_populate(mm, pt, VirtAddr(0), ts.as_u64(), true);
    }
    Ok(())
}

/// `munlockall(2)`.
pub fn munlockall(mm: &mut MmStruct, pt: &mut dyn PageTableOps) -> Result<(), Errno> {
    apply_mlockall_flags(mm, pt, 0);
    Ok(())
}

fn apply_mlockall_flags(mm: &mut MmStruct, pt: &mut dyn PageTableOps, flags: u32) {
    mm.def_flags = mm.def_flags.difference(VmFlags::LOCKED_MASK);
    if flags & MCL_FUTURE != 0 {
        mm.def_flags |= VmFlags::LOCKED;
        if flags & MCL_ONFAULT != 0 {
            mm.def_flags |= VmFlags::LOCKONFAULT;
        }
        if flags & MCL_CURRENT == 0 {
            return;
        }
    }
    let mut to_add = VmFlags::NONE;
    if flags & MCL_CURRENT != 0 {
        to_add |= VmFlags::LOCKED;
        if flags & MCL_ONFAULT != 0 {
            to_add |= VmFlags::LOCKONFAULT;
        }
    }
    let keys: alloc::vec::Vec<VirtAddr> = mm.vmas.keys().copied().collect();
    for k in keys {
        // Earlier merges may have absorbed this VMA.
        let Some(v) = mm.vma_lookup(k) else {
            continue;
        };
        let (key, s, e) = (v.start, v.start.max(k), v.end);
        let newflags = v.flags.difference(VmFlags::LOCKED_MASK) | to_add;
        let _ = mlock_fixup(mm, pt, key, s, e, newflags);
    }
}
