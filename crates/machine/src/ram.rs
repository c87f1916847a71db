//! Simulated RAM: one host mapping covering physical addresses from 0 to the
//! top of RAM, made with MAP_NORESERVE so that a 1 TiB machine costs only the
//! pages that are touched. It starts zeroed, as memory the kernel clears.

use memmap2::{MmapMut, MmapOptions};
use mm::direct_map::DirectMap;

/// The machine's RAM.
pub struct Ram {
    map: MmapMut,
}

impl Ram {
    /// Maps `bytes` of physical address space (holes included).
    pub fn new(bytes: u64) -> std::io::Result<Ram> {
        let len = usize::try_from(bytes)
            .map_err(|_| std::io::Error::other("RAM larger than the host address space"))?;
        let map = MmapOptions::new().len(len).no_reserve_swap().map_anon()?;
        Ok(Ram { map })
    }

    /// Bytes of physical address space covered.
    pub fn size(&self) -> u64 {
        self.map.len() as u64
    }

    /// The direct map handed to the memory manager.
    pub fn direct_map(&self) -> DirectMap {
        // SAFETY: the mapping is page-aligned, `size` bytes long and lives in
        // `self`, which the machine drops only after the memory manager.
        unsafe { DirectMap::new(self.map.as_ptr() as *mut u8, self.size()) }
    }
}
