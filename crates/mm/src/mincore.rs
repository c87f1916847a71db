//! `mincore(2)`: which pages of a range are resident. Mirrors mm/mincore.c.
//!
//! Simplification: residency is what the page tables report (a present
//! pte); page-cache pages that are not mapped and swap-cache pages count as
//! not resident, because the VMA layer cannot see the page cache.

use alloc::vec::Vec;

use crate::errno::Errno;
use crate::mm_types::{MmStruct, PageTableOps};
use crate::types::{VirtAddr, PAGE_MASK, PAGE_SHIFT, PAGE_SIZE};

/// `mincore(2)`: one byte per page of `[start, start+len)`, bit 0 set if
/// resident. EINVAL for an unaligned start; ENOMEM if the range leaves
/// TASK_SIZE or contains unmapped pages.
pub fn mincore(
    mm: &MmStruct,
    pt: &dyn PageTableOps,
    start: VirtAddr,
    len: u64,
) -> Result<Vec<u8>, Errno> {
    let start = start.0;
    if start & !PAGE_MASK != 0 {
        return Err(Errno::EINVAL);
    }
    if start > mm.task_size || len > mm.task_size - start {
        return Err(Errno::ENOMEM);
    }
    let pages = (len >> PAGE_SHIFT) + u64::from(len & !PAGE_MASK != 0);
    let mut out = Vec::with_capacity(pages as usize);
    let mut addr = start;
    for _ in 0..pages {
        if mm.vma_lookup(VirtAddr(addr)).is_none() {
            return Err(Errno::ENOMEM);
        }
        let present = pt.page_info(VirtAddr(addr)).is_some_and(|p| p.present);
        out.push(u8::from(present));
        addr += PAGE_SIZE;
    }
    Ok(out)
}
