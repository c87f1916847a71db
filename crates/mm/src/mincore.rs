//! `mincore(2)`: which pages of a range are resident. Mirrors mm/mincore.c.
//!
//! A page is resident if a present pte maps it or, in a file VMA, if the
//! page cache holds it (`mincore_page`) even though this mm never
//! faulted it in. Swap-cache lookups come with swap.

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
    if !start.is_page_aligned() {
        return Err(Errno::EINVAL);
    }
    if start > mm.task_size || len > mm.task_size - start {
        return Err(Errno::ENOMEM);
    }
    let pages = (len >> PAGE_SHIFT) + u64::from(len & !PAGE_MASK != 0);
    let mut out = Vec::with_capacity(pages as usize);
    let mut addr = start;
    for _ in 0..pages {
        let Some(vma) = mm.vma_lookup(addr) else {
            return Err(Errno::ENOMEM);
        };
        let present = pt.page_info(addr).is_some_and(|p| p.present)
            || (vma.file.is_some() && pt.cached(vma, addr));
        out.push(u8::from(present));
        addr += PAGE_SIZE;
    }
    Ok(out)
}
