//! Tour topics of kernel virtual memory: vmalloc, kmap and the page-table
//! walk with the TLB.

use super::Tour;

/// `lmm tour vmalloc`.
pub(super) fn vmalloc(_t: &mut Tour) -> Result<(), String> {
    Ok(())
}
/// `lmm tour kmap`.
pub(super) fn kmap(_t: &mut Tour) -> Result<(), String> {
    Ok(())
}
/// `lmm tour pagewalk`.
pub(super) fn pagewalk(_t: &mut Tour) -> Result<(), String> {
    Ok(())
}
