//! `mprotect(2)`: change the access flags of a range, splitting and merging
//! VMAs. Mirrors mm/mprotect.c (`do_mprotect_pkey`, `mprotect_fixup`).
//!
//! Simplifications: no protection keys, no MDWE, no READ_IMPLIES_EXEC
//! personality. Making private memory writable charges it (VM_ACCOUNT, see
//! [`crate::util`]); an unfaulted anonymous VMA made read-only gives it back.

use crate::errno::Errno;
use crate::mm_types::{MmStruct, PageTableOps, VmFlags};
use crate::mmap::{PROT_EXEC, PROT_GROWSDOWN, PROT_GROWSUP, PROT_READ, PROT_SEM, PROT_WRITE};
use crate::types::{page_align, VirtAddr};

/// `mprotect(2)`. EINVAL for an unaligned start, unknown prot bits,
/// PROT_GROWSDOWN|PROT_GROWSUP together, PROT_GROWSDOWN on a VMA that does
/// not grow down; ENOMEM for an overflowing range or any hole (the mapped
/// part before the hole is changed, as in Linux); EACCES when a VMA lacks
/// the VM_MAY* bit for a requested access (a shared mapping of a file opened
/// read-only has no VM_MAYWRITE).
pub fn mprotect(
    mm: &mut MmStruct,
    pt: &mut dyn PageTableOps,
    start: VirtAddr,
    len: u64,
    prot: u32,
) -> Result<(), Errno> {
    let grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP);
    let prot = prot & !grows;
    if grows == PROT_GROWSDOWN | PROT_GROWSUP {
        return Err(Errno::EINVAL);
    }
    let mut start = start;
    if !start.is_page_aligned() {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(());
    }
    let len = page_align(len).ok_or(Errno::ENOMEM)?;
    let end = start.checked_add(len).ok_or(Errno::ENOMEM)?;
    if prot & !(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM) != 0 {
        return Err(Errno::EINVAL);
    }
    let Some(first) = mm.find_vma(start).filter(|v| v.start < end) else {
        return Err(Errno::ENOMEM);
    };
    if grows & PROT_GROWSDOWN != 0 {
        start = first.start;
        if !first.flags.contains(VmFlags::GROWSDOWN) {
            return Err(Errno::EINVAL);
        }
    } else if first.start > start {
        return Err(Errno::ENOMEM);
    } else if grows & PROT_GROWSUP != 0 {
        // x86 has no VM_GROWSUP VMAs.
        return Err(Errno::EINVAL);
    }
    let newprot = VmFlags::from_prot(prot);
    let mut tmp = start;
    let mut nstart = start;
    let mut result = Ok(());
    while tmp < end {
        let Some(v) = mm.find_vma(tmp).filter(|v| v.start < end) else {
            break;
        };
        if v.start > tmp {
            result = Err(Errno::ENOMEM);
            break;
        }
        let newflags = newprot | v.flags.difference(VmFlags::ACCESS_FLAGS);
        // Each requested access needs its VM_MAY* bit (four bits up).
        if (newflags.0 & !(newflags.0 >> 4)) & VmFlags::ACCESS_FLAGS.0 != 0 {
            result = Err(Errno::EACCES);
            break;
        }
        let seg_end = v.end.min(end);
        let key = v.start;
        if let Err(e) = mprotect_fixup(mm, pt, key, nstart, seg_end, newflags) {
            result = Err(e);
            break;
        }
        tmp = seg_end;
        nstart = seg_end;
    }
    if result.is_ok() && tmp < end {
        result = Err(Errno::ENOMEM);
    }
    result
}

/// `mprotect_fixup`: apply `newflags` (access bits) to `[start, end)` of
/// the VMA at `key`, with Linux's VM_ACCOUNT rules, then merge.
pub(crate) fn mprotect_fixup(
    mm: &mut MmStruct,
    pt: &mut dyn PageTableOps,
    key: VirtAddr,
    start: VirtAddr,
    end: VirtAddr,
    mut newflags: VmFlags,
) -> Result<(), Errno> {
    let Some(v) = mm.vmas.get(&key) else {
        return Ok(());
    };
    let oldflags = v.flags;
    if newflags == oldflags {
        return Ok(());
    }
    if newflags.contains(VmFlags::WRITE) {
        if !oldflags.intersects(
            VmFlags::ACCOUNT
                | VmFlags::WRITE
                | VmFlags::HUGETLB
                | VmFlags::SHARED
                | VmFlags::NORESERVE,
        ) {
            // Private memory becoming writable is charged now.
            mm.vm_enough_memory((end - start) >> crate::types::PAGE_SHIFT)?;
            newflags |= VmFlags::ACCOUNT;
        }
    } else if oldflags.contains(VmFlags::ACCOUNT) && v.is_anonymous() && v.anon_vma.is_none() {
        newflags = newflags.difference(VmFlags::ACCOUNT);
    }
    let faulted_locked_write = oldflags.0
        & (VmFlags::WRITE.0 | VmFlags::SHARED.0 | VmFlags::LOCKED.0)
        == VmFlags::LOCKED.0
        && newflags.contains(VmFlags::WRITE);
    mm.split_range(start, end)?;
    mm.set_vma_flags(start, newflags);
    pt.change_protection(start, end, newflags);
    mm.merge_range(start, end);
    if faulted_locked_write {
        if let Some(v) = mm.vma_lookup(start) {
            let k = v.start;
            let _ = crate::mmap::populate_vma_range(mm, pt, k, start, end);
        }
    }
    Ok(())
}
