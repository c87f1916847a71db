//! `msync(2)`: validate and walk the range; MS_SYNC writes back each
//! shared file VMA's part of it through the caller's `sync` (the page
//! cache's `vfs_fsync_range`). MS_ASYNC starts nothing, as since Linux
//! 2.6.19: dirty pages are tracked through the ptes. Mirrors mm/msync.c.

use crate::errno::Errno;
use crate::mm_types::{MmStruct, VmFlags, Vma};
use crate::types::{VirtAddr, PAGE_MASK};

/// Schedule writeback.
pub const MS_ASYNC: u32 = 1;
/// Invalidate other mappings of the same file.
pub const MS_INVALIDATE: u32 = 2;
/// Write back and wait.
pub const MS_SYNC: u32 = 4;

/// `msync(2)`: EINVAL for unknown flags, an unaligned start or
/// MS_ASYNC|MS_SYNC; ENOMEM for an overflowing or partly unmapped range
/// (exactly MS_SYNC stops at the first hole); EBUSY for MS_INVALIDATE on a
/// VM_LOCKED VMA.
pub fn msync(
    mm: &MmStruct,
    start: VirtAddr,
    len: u64,
    flags: u32,
    sync: &mut dyn FnMut(&Vma, VirtAddr, VirtAddr) -> Result<(), Errno>,
) -> Result<(), Errno> {
    let mut start = start;
    if flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0 {
        return Err(Errno::EINVAL);
    }
    if !start.is_page_aligned() {
        return Err(Errno::EINVAL);
    }
    if flags & MS_ASYNC != 0 && flags & MS_SYNC != 0 {
        return Err(Errno::EINVAL);
    }
    let len = len.wrapping_add(!PAGE_MASK) & PAGE_MASK;
    let end = start.checked_add(len).ok_or(Errno::ENOMEM)?;
    if end == start {
        return Ok(());
    }
    let mut unmapped = Ok(());
    loop {
        let Some(v) = mm.find_vma(start) else {
            return Err(Errno::ENOMEM);
        };
        if start < v.start {
            if flags == MS_SYNC {
                return Err(Errno::ENOMEM);
            }
            start = v.start;
            if start >= end {
                return Err(Errno::ENOMEM);
            }
            unmapped = Err(Errno::ENOMEM);
        }
        if flags & MS_INVALIDATE != 0 && v.flags.contains(VmFlags::LOCKED) {
            return Err(Errno::EBUSY);
        }
        if flags & MS_SYNC != 0 && v.file.is_some() && v.flags.contains(VmFlags::SHARED) {
            sync(v, start, end.min(v.end))?;
        }
        start = v.end;
        if start >= end {
            return unmapped;
        }
    }
}
