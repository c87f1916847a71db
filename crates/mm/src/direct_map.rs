//! The direct map: every physical address of the machine's RAM reachable as
//! bytes (Linux `__va()` / `page_address()` on lowmem). The machine hands mm a
//! host mapping that covers physical addresses `[0, size)`; holes in the
//! firmware map are part of it but are never handed out.

use core::ptr::NonNull;
use core::sync::atomic::AtomicU64;

use crate::types::{Pfn, PhysAddr, PAGE_SIZE};

/// Host view of the simulated RAM. Cheap to copy; the owner of the mapping
/// (the machine) keeps it alive for as long as the memory manager lives.
#[derive(Clone, Copy)]
pub struct DirectMap {
    base: NonNull<u8>,
    size: u64,
}

// SAFETY: the mapping is plain memory shared by all simulated CPUs, as RAM is;
// concurrent users synchronise through the allocator's locks, as in Linux.
unsafe impl Send for DirectMap {}
// SAFETY: as for Send: shared access goes through the allocator's locks.
unsafe impl Sync for DirectMap {}

impl DirectMap {
    /// Wraps a host mapping of `size` bytes that stands for physical
    /// addresses `[0, size)`.
    ///
    /// # Safety
    /// `base` must be valid for reads and writes of `size` bytes, aligned to
    /// a page, and outlive every user of this `DirectMap`.
    pub unsafe fn new(base: *mut u8, size: u64) -> Self {
        Self {
            base: NonNull::new(base).expect("direct map base must not be null"),
            size,
        }
    }

    /// Bytes of physical address space covered.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// True if `[pa, pa+len)` lies inside the mapping.
    pub fn contains(&self, pa: PhysAddr, len: u64) -> bool {
        pa.0.checked_add(len).is_some_and(|end| end <= self.size)
    }

    /// Host pointer for a physical address. Panics if out of range: callers
    /// pass addresses of frames the allocator owns.
    #[inline]
    pub fn ptr(&self, pa: PhysAddr) -> *mut u8 {
        assert!(pa.0 < self.size, "physical address {pa:?} beyond RAM");
        // SAFETY: in range, checked above.
        unsafe { self.base.as_ptr().add(pa.0 as usize) }
    }

    /// Copies bytes out of physical memory.
    pub fn read(&self, pa: PhysAddr, buf: &mut [u8]) {
        assert!(self.contains(pa, buf.len() as u64));
        // SAFETY: range checked; RAM never overlaps host buffers.
        unsafe { core::ptr::copy_nonoverlapping(self.ptr(pa), buf.as_mut_ptr(), buf.len()) }
    }

    /// Copies bytes into physical memory.
    pub fn write(&self, pa: PhysAddr, data: &[u8]) {
        assert!(self.contains(pa, data.len() as u64));
        // SAFETY: range checked; RAM never overlaps host buffers.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr(pa), data.len()) }
    }

    /// Fills `pages` frames from `pfn` with zeroes (`clear_page`).
    pub fn zero_pages(&self, pfn: Pfn, pages: u64) {
        let len = pages * PAGE_SIZE;
        assert!(self.contains(pfn.phys(), len));
        // SAFETY: range checked.
        unsafe { core::ptr::write_bytes(self.ptr(pfn.phys()), 0, len as usize) }
    }

    /// Copies one frame to another (`copy_page`), as CoW and migration do.
    pub fn copy_page(&self, dst: Pfn, src: Pfn) {
        assert!(self.contains(dst.phys(), PAGE_SIZE) && self.contains(src.phys(), PAGE_SIZE));
        if dst != src {
            // SAFETY: distinct whole frames inside the mapping.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    self.ptr(src.phys()),
                    self.ptr(dst.phys()),
                    PAGE_SIZE as usize,
                )
            }
        }
    }

    /// A 64-bit word of RAM as an atomic, for page-table entries that the
    /// simulated MMU updates (accessed/dirty bits) while software reads them.
    pub fn word(&self, pa: PhysAddr) -> &AtomicU64 {
        assert!(pa.0.is_multiple_of(8) && self.contains(pa, 8));
        // SAFETY: aligned, in range, and AtomicU64 has the layout of u64.
        unsafe { &*(self.ptr(pa) as *const AtomicU64) }
    }
}

#[cfg(test)]
pub(crate) mod test_ram {
    //! A heap-backed RAM for unit tests of mm alone.
    extern crate std;
    use super::DirectMap;
    use std::alloc::{alloc_zeroed, dealloc, Layout};

    /// Zeroed, page-aligned host memory standing in for RAM. Allocated
    /// with a small alignment (so the host's calloc maps it lazily rather
    /// than clearing it) and aligned by hand.
    pub struct TestRam {
        ptr: *mut u8,
        layout: Layout,
        size: u64,
    }

    impl TestRam {
        pub fn new(size: u64) -> Self {
            let layout = Layout::from_size_align(size as usize + 4096, 16).unwrap();
            // SAFETY: non-zero size.
            let ptr = unsafe { alloc_zeroed(layout) };
            assert!(!ptr.is_null());
            Self { ptr, layout, size }
        }
        pub fn map(&self) -> DirectMap {
            let aligned = self.ptr.wrapping_add(self.ptr.align_offset(4096));
            // SAFETY: `size` bytes from the aligned start lie inside the
            // allocation, which lives as long as self.
            unsafe { DirectMap::new(aligned, self.size) }
        }
    }

    impl Drop for TestRam {
        fn drop(&mut self) {
            // SAFETY: allocated with this layout.
            unsafe { dealloc(self.ptr, self.layout) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_ram::TestRam;
    use super::*;
    use core::sync::atomic::Ordering;

    #[test]
    fn bytes_round_trip_and_copy_page() {
        let ram = TestRam::new(4 * PAGE_SIZE);
        let dm = ram.map();
        dm.write(PhysAddr(0x1ff0), b"hello, ram");
        let mut buf = [0u8; 10];
        dm.read(PhysAddr(0x1ff0), &mut buf);
        assert_eq!(&buf, b"hello, ram");
        dm.copy_page(Pfn(3), Pfn(1));
        dm.read(PhysAddr(0x3ff0), &mut buf);
        assert_eq!(&buf, b"hello, ram");
        dm.zero_pages(Pfn(1), 1);
        dm.read(PhysAddr(0x1ff0), &mut buf);
        assert_eq!(buf, [0; 10]);
        dm.word(PhysAddr(0x2008))
            .store(0xdead_beef, Ordering::Relaxed);
        let mut w = [0u8; 8];
        dm.read(PhysAddr(0x2008), &mut w);
        assert_eq!(u64::from_le_bytes(w), 0xdead_beef);
    }
}
