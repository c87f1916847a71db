//! `madvise(2)`: advice that changes VMA flags (splitting/merging like
//! mprotect) or acts on pages (DONTNEED, FREE, POPULATE_*). Mirrors
//! mm/madvise.c.
//!
//! Simplifications: WILLNEED, COLD and PAGEOUT are accepted and do nothing
//! (no readahead or reclaim here); KSM merging is only the VM_MERGEABLE flag;
//! guard regions, COLLAPSE, HWPOISON and SOFT_OFFLINE are not modelled and
//! return EINVAL.

use crate::errno::Errno;
use crate::mm_types::{MmStruct, PageTableOps, VmFlags, Vma};
use crate::mmap::fault_range;
use crate::types::{page_align, VirtAddr};

#[allow(missing_docs)]
pub mod advice {
    pub const MADV_NORMAL: i32 = 0;
    pub const MADV_RANDOM: i32 = 1;
    pub const MADV_SEQUENTIAL: i32 = 2;
    pub const MADV_WILLNEED: i32 = 3;
    pub const MADV_DONTNEED: i32 = 4;
    pub const MADV_FREE: i32 = 8;
    pub const MADV_REMOVE: i32 = 9;
    pub const MADV_DONTFORK: i32 = 10;
    pub const MADV_DOFORK: i32 = 11;
    pub const MADV_MERGEABLE: i32 = 12;
    pub const MADV_UNMERGEABLE: i32 = 13;
    pub const MADV_HUGEPAGE: i32 = 14;
    pub const MADV_NOHUGEPAGE: i32 = 15;
    pub const MADV_DONTDUMP: i32 = 16;
    pub const MADV_DODUMP: i32 = 17;
    pub const MADV_WIPEONFORK: i32 = 18;
    pub const MADV_KEEPONFORK: i32 = 19;
    pub const MADV_COLD: i32 = 20;
    pub const MADV_PAGEOUT: i32 = 21;
    pub const MADV_POPULATE_READ: i32 = 22;
    pub const MADV_POPULATE_WRITE: i32 = 23;
    pub const MADV_DONTNEED_LOCKED: i32 = 24;
}
pub use advice::*;

/// `madvise(2)`. EINVAL for unknown advice, an unaligned start, a length
/// that overflows, or advice a VMA does not allow (DONTNEED on VM_LOCKED,
/// FREE on non-anonymous memory, WIPEONFORK on file/shared, POPULATE_* without
/// the access, ...). ENOMEM if part of the range is unmapped: the mapped parts
/// are still advised (POPULATE_* stops at the hole instead).
pub fn madvise(
    mm: &mut MmStruct,
    pt: &mut dyn PageTableOps,
    start: VirtAddr,
    len_in: u64,
    behavior: i32,
) -> Result<(), Errno> {
    if !behavior_valid(behavior) {
        return Err(Errno::EINVAL);
    }
    let Some((start, end)) = madvise_range(start, len_in)? else {
        return Ok(());
    };
    if behavior == MADV_POPULATE_READ || behavior == MADV_POPULATE_WRITE {
        return madvise_populate(mm, pt, start, end, behavior == MADV_POPULATE_WRITE);
    }
    madvise_walk_vmas(mm, start, end, &mut |mm, key, start, end| {
        madvise_vma(mm, pt, key, start, end, behavior)
    })
}

/// The checks madvise(2) and PR_SET_VMA_ANON_NAME make of a range: EINVAL
/// for an unaligned start or a length that overflows when page-aligned or
/// added to the start. `None` for an empty range (nothing to do).
fn madvise_range(start: VirtAddr, len_in: u64) -> Result<Option<(VirtAddr, VirtAddr)>, Errno> {
    if !start.is_page_aligned() {
        return Err(Errno::EINVAL);
    }
    let len = page_align(len_in).unwrap_or(0);
    if len_in != 0 && len == 0 {
        return Err(Errno::EINVAL);
    }
    let end = start.checked_add(len).ok_or(Errno::EINVAL)?;
    if end == start {
        return Ok(None);
    }
    Ok(Some((start, end)))
}

/// What `madvise_walk_vmas` calls for each VMA: `(mm, key, start, end)`.
type VmaVisitor<'a> =
    dyn FnMut(&mut MmStruct, VirtAddr, VirtAddr, VirtAddr) -> Result<(), Errno> + 'a;

/// `madvise_walk_vmas`: calls `visit(mm, key, start, end)` for the part
/// `[start, end)` of each VMA (keyed by its start `key`) that overlaps
/// `[start, end)`, in address order, and stops at the first error. The
/// mapped parts are all visited even when the range has holes; then the
/// result is ENOMEM.
fn madvise_walk_vmas(
    mm: &mut MmStruct,
    mut start: VirtAddr,
    end: VirtAddr,
    visit: &mut VmaVisitor<'_>,
) -> Result<(), Errno> {
    let mut unmapped = Ok(());
    loop {
        let Some(v) = mm.find_vma(start) else {
            return Err(Errno::ENOMEM);
        };
        if start < v.start {
            unmapped = Err(Errno::ENOMEM);
            start = v.start;
            if start >= end {
                break;
            }
        }
        let tmp = v.end.min(end);
        let key = v.start;
        visit(mm, key, start, tmp)?;
        start = tmp;
        if start >= end {
            break;
        }
    }
    unmapped
}

fn behavior_valid(b: i32) -> bool {
    matches!(b, 0..=4 | 8..=24)
}

/// Applies one advice to `[start, end)` of the VMA at `key`.
fn madvise_vma(
    mm: &mut MmStruct,
    pt: &mut dyn PageTableOps,
    key: VirtAddr,
    start: VirtAddr,
    end: VirtAddr,
    behavior: i32,
) -> Result<(), Errno> {
    let v: &Vma = &mm.vmas[&key];
    let f = v.flags;
    let new = match behavior {
        MADV_NORMAL => f.difference(VmFlags::RAND_READ | VmFlags::SEQ_READ),
        MADV_SEQUENTIAL => f.difference(VmFlags::RAND_READ) | VmFlags::SEQ_READ,
        MADV_RANDOM => f.difference(VmFlags::SEQ_READ) | VmFlags::RAND_READ,
        MADV_DONTFORK => f | VmFlags::DONTCOPY,
        MADV_DOFORK => {
            if f.contains(VmFlags::IO) {
                return Err(Errno::EINVAL);
            }
            f.difference(VmFlags::DONTCOPY)
        }
        MADV_WIPEONFORK => {
            if v.file.is_some() || f.contains(VmFlags::SHARED) {
                return Err(Errno::EINVAL);
            }
            f | VmFlags::WIPEONFORK
        }
        MADV_KEEPONFORK => {
            if f.contains(VmFlags::DROPPABLE) {
                return Err(Errno::EINVAL);
            }
            f.difference(VmFlags::WIPEONFORK)
        }
        MADV_DONTDUMP => f | VmFlags::DONTDUMP,
        MADV_DODUMP => {
            if f.intersects(VmFlags::SPECIAL | VmFlags::DROPPABLE) {
                return Err(Errno::EINVAL);
            }
            f.difference(VmFlags::DONTDUMP)
        }
        MADV_HUGEPAGE => f.difference(VmFlags::NOHUGEPAGE) | VmFlags::HUGEPAGE,
        MADV_NOHUGEPAGE => f.difference(VmFlags::HUGEPAGE) | VmFlags::NOHUGEPAGE,
        MADV_MERGEABLE => {
            if f.intersects(VmFlags::SPECIAL | VmFlags::MAYSHARE | VmFlags::HUGETLB) {
                f
            } else {
                f | VmFlags::MERGEABLE
            }
        }
        MADV_UNMERGEABLE => f.difference(VmFlags::MERGEABLE),
        MADV_DONTNEED | MADV_DONTNEED_LOCKED | MADV_FREE => {
            let forbidden = if behavior == MADV_DONTNEED_LOCKED {
                VmFlags::PFNMAP | VmFlags::HUGETLB
            } else {
                VmFlags::LOCKED | VmFlags::PFNMAP | VmFlags::HUGETLB
            };
            if f.intersects(forbidden) {
                return Err(Errno::EINVAL);
            }
            if behavior == MADV_FREE && !v.is_anonymous() {
                return Err(Errno::EINVAL);
            }
            pt.discard(start, end, behavior == MADV_FREE);
            return Ok(());
        }
        MADV_REMOVE => {
            if f.contains(VmFlags::LOCKED) || v.file.is_none() {
                return Err(Errno::EINVAL);
            }
            if !(f.contains(VmFlags::SHARED) && f.contains(VmFlags::MAYWRITE)) {
                return Err(Errno::EACCES);
            }
            pt.discard(start, end, false);
            return Ok(());
        }
        MADV_COLD | MADV_PAGEOUT => {
            if f.intersects(VmFlags::LOCKED | VmFlags::PFNMAP | VmFlags::HUGETLB) {
                return Err(Errno::EINVAL);
            }
            pt.cold(start, end, behavior == MADV_PAGEOUT);
            return Ok(());
        }
        // MADV_WILLNEED: readahead / swap-in, nothing to model.
        _ => return Ok(()),
    };
    if new == f {
        return Ok(());
    }
    mm.split_range(start, end)?;
    mm.set_vma_flags(start, new);
    mm.merge_range(start, end);
    Ok(())
}

/// MADV_POPULATE_READ/WRITE: fault in page by VMA; ENOMEM at the first hole,
/// EINVAL for a VMA without the access (or VM_IO/PFNMAP).
fn madvise_populate(
    mm: &mut MmStruct,
    pt: &mut dyn PageTableOps,
    mut start: VirtAddr,
    end: VirtAddr,
    write: bool,
) -> Result<(), Errno> {
    while start < end {
        let Some(v) = mm.vma_lookup(start) else {
            return Err(Errno::ENOMEM);
        };
        let need = if write { VmFlags::WRITE } else { VmFlags::READ };
        if !v.flags.contains(need) || v.flags.intersects(VmFlags::IO | VmFlags::PFNMAP) {
            return Err(Errno::EINVAL);
        }
        let key = v.start;
        let tmp = v.end.min(end);
        // A write fault on a private mapping breaks CoW (gets an anon_vma);
        // on a shared mapping it dirties the shared page.
        let private_write = write && !v.flags.contains(VmFlags::MAYSHARE);
        if private_write {
            fault_range(mm, pt, key, start, tmp, true)?;
        } else {
            let v = &mm.vmas[&key];
            pt.populate(v, start, tmp, write)?;
        }
        start = tmp;
    }
    Ok(())
}

/// Longest anon VMA name, including the terminating NUL (`ANON_VMA_NAME_MAX_LEN`).
pub const ANON_VMA_NAME_MAX_LEN: usize = 80;

/// `prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, start, len, name)`: names the
/// anonymous VMAs of the range (`[anon:NAME]` in maps; `None` clears).
/// Splits and merges like madvise. EINVAL for an unaligned start, an
/// overflowing range, a name of 80 bytes or more or with a character outside
/// 0x20..=0x7e or one of `[ ] \ $ ``; EBADF for a file-backed VMA; ENOMEM for
/// holes (after naming the mapped parts).
pub fn set_anon_name(
    mm: &mut MmStruct,
    start: VirtAddr,
    len_in: u64,
    name: Option<&str>,
) -> Result<(), Errno> {
    if let Some(n) = name {
        if n.len() >= ANON_VMA_NAME_MAX_LEN
            || n.bytes().any(|c| {
                !(0x20..=0x7e).contains(&c) || matches!(c, b'[' | b']' | b'\\' | b'$' | b'`')
            })
        {
            return Err(Errno::EINVAL);
        }
    }
    let name: Option<alloc::sync::Arc<str>> = name.map(alloc::sync::Arc::from);
    let Some((start, end)) = madvise_range(start, len_in)? else {
        return Ok(());
    };
    madvise_walk_vmas(mm, start, end, &mut |mm, key, start, end| {
        let v = &mm.vmas[&key];
        if v.file.is_some() && !v.shmem {
            return Err(Errno::EBADF);
        }
        if v.anon_name != name {
            mm.split_range(start, end)?;
            if let Some(v) = mm.vmas.get_mut(&start) {
                v.anon_name = name.clone();
            }
            mm.merge_range(start, end);
        }
        Ok(())
    })
}
