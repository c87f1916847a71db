//! The direct map: every physical address of the machine's RAM reachable as
//! bytes (Linux `__va()` / `page_address()` on lowmem). The machine hands mm a
//! host mapping that covers physical addresses `[0, size)`; holes in the
//! firmware map are part of it but are never handed out.

use alloc::sync::Arc;
use core::ptr::NonNull;
use core::sync::atomic::AtomicU64;

use crate::types::{Pfn, PhysAddr, PAGE_SIZE};

/// The owner of the host memory that stands for RAM: the machine's memfd
/// mapping, or a heap buffer in tests. Every [`DirectMap`] holds it, so the
/// memory is released only after its last user is gone, whatever order the
/// machine's parts are dropped in.
///
/// # Safety
/// `base()` must be page-aligned and valid for reads and writes of `size()`
/// bytes for as long as the value lives, and neither may change.
pub unsafe trait RamBacking: Send + Sync {
    /// Host address of physical address 0.
    fn base(&self) -> NonNull<u8>;
    /// Bytes of physical address space covered.
    fn size(&self) -> u64;
    /// Told that `[pa, pa + len)` is about to be used: struct pages boot
    /// initialises next, a max-order block the buddy allocator took off
    /// its free lists, and the next one. A
    /// backing may have the host allocate it ahead, off lmm's path. Only a
    /// speed-up: reads and writes work without it. The default does
    /// nothing.
    fn prepare(&self, _pa: u64, _len: u64) {}
}

/// Host view of the simulated RAM. Cloning it shares the [`RamBacking`],
/// which keeps the memory alive as long as any clone exists.
#[derive(Clone)]
pub struct DirectMap {
    /// `owner.base()`, kept here so an access is one add.
    base: NonNull<u8>,
    /// `owner.size()`.
    size: u64,
    /// Keeps the memory alive while this view exists.
    owner: Arc<dyn RamBacking>,
}

// SAFETY: the mapping is plain memory shared by all simulated CPUs, as RAM is;
// concurrent users synchronise through the allocator's locks, as in Linux.
// The owner is Send + Sync by its trait's bounds.
unsafe impl Send for DirectMap {}
// SAFETY: as for Send: shared access goes through the allocator's locks.
unsafe impl Sync for DirectMap {}

impl DirectMap {
    /// The direct map of `owner`'s memory, which stands for physical
    /// addresses `[0, owner.size())`.
    pub fn new(owner: Arc<dyn RamBacking>) -> Self {
        Self {
            base: owner.base(),
            size: owner.size(),
            owner,
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

    /// Tells the backing that `[pa, pa + len)` is about to be used
    /// ([`RamBacking::prepare`]).
    pub fn prepare(&self, pa: PhysAddr, len: u64) {
        self.owner.prepare(pa.0, len)
    }

    /// The physical address of `ptr`, a host pointer into the mapping (a
    /// struct page in the memmap). Panics if it is outside.
    pub fn phys_of(&self, ptr: *const u8) -> PhysAddr {
        let off = (ptr as usize).wrapping_sub(self.base.as_ptr() as usize) as u64;
        assert!(off < self.size, "{ptr:?} is not in the direct map");
        PhysAddr(off)
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

    /// Runs `f` on the bytes of each frame of `pfns` as one mutable slice
    /// per frame (for a read straight into fresh pages). Panics if a frame
    /// is out of range or given twice: the slices must not alias.
    pub fn with_frames<R>(&self, pfns: &[Pfn], f: impl FnOnce(&mut [&mut [u8]]) -> R) -> R {
        let mut sorted: alloc::vec::Vec<u64> = pfns.iter().map(|p| p.0).collect();
        sorted.sort_unstable();
        assert!(
            sorted.windows(2).all(|w| w[0] != w[1]),
            "a frame given twice"
        );
        let mut slices: alloc::vec::Vec<&mut [u8]> = pfns
            .iter()
            .map(|p| {
                assert!(self.contains(p.phys(), PAGE_SIZE));
                // SAFETY: in range (checked), one whole frame, and no two
                // slices overlap (distinct frames, checked above); RAM
                // never overlaps a Rust object.
                unsafe { core::slice::from_raw_parts_mut(self.ptr(p.phys()), PAGE_SIZE as usize) }
            })
            .collect();
        f(&mut slices)
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

/// Zeroed, page-aligned heap memory standing in for RAM, for tests and
/// benchmarks that drive mm or the MMU without a machine. Allocated with a
/// small alignment (so the host's calloc maps it lazily rather than clearing
/// it) and aligned by hand.
pub struct HeapRam {
    ptr: NonNull<u8>,
    layout: alloc::alloc::Layout,
    size: u64,
}

// SAFETY: the buffer is owned by the value and only reached through
// `DirectMap`, whose users synchronise as on any shared memory.
unsafe impl Send for HeapRam {}
// SAFETY: as for Send.
unsafe impl Sync for HeapRam {}

impl HeapRam {
    /// The direct map of `size` bytes of fresh zeroed memory. Panics if the
    /// host cannot allocate it, as a test would.
    pub fn direct_map(size: u64) -> DirectMap {
        let layout = alloc::alloc::Layout::from_size_align(size as usize + PAGE_SIZE as usize, 16)
            .expect("test RAM size fits a layout");
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { alloc::alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).unwrap_or_else(|| alloc::alloc::handle_alloc_error(layout));
        DirectMap::new(Arc::new(HeapRam { ptr, layout, size }))
    }
}

// SAFETY: `size` bytes from the first page boundary lie inside the
// allocation (one spare page was allocated for the alignment), which lives
// until the value is dropped.
unsafe impl RamBacking for HeapRam {
    fn base(&self) -> NonNull<u8> {
        let off = self.ptr.as_ptr().align_offset(PAGE_SIZE as usize);
        // SAFETY: `off` < PAGE_SIZE, inside the allocation.
        unsafe { self.ptr.add(off) }
    }
    fn size(&self) -> u64 {
        self.size
    }
}

impl Drop for HeapRam {
    fn drop(&mut self) {
        // SAFETY: allocated in `direct_map` with this layout, freed once.
        unsafe { alloc::alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::Ordering;

    #[test]
    fn bytes_round_trip_and_copy_page() {
        let dm = HeapRam::direct_map(4 * PAGE_SIZE);
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

/// Checked word and byte access for the slab allocators, which keep their
/// free pointers, free-index arrays and debug patterns in the RAM they
/// manage (Linux reaches them through `__va()` with plain loads and
/// stores). Every access is bounds-checked against the RAM size. An
/// address out of range panics, naming the access: the slab code only
/// passes addresses inside slabs it got from the page allocator, whose
/// frames all lie in RAM, so a failure is an internal invariant breach (or
/// a free pointer clobbered by a use after free on a cache without
/// slub_debug, which would crash Linux as well), never bad input to report.
impl DirectMap {
    /// Panics with a clear message unless `[pa, pa+len)` is in RAM.
    #[inline]
    #[track_caller]
    fn check(&self, what: &str, pa: u64, len: u64) {
        if !self.contains(PhysAddr(pa), len) {
            out_of_ram(what, pa, len, self.size());
        }
    }

    /// [`Self::check`] for 8 bytes in one comparison: `[pa, pa+8)` is in
    /// RAM iff `pa < size - 7` (no RAM below 8 bytes admits any word).
    #[inline]
    #[track_caller]
    fn check_word(&self, what: &str, pa: u64) {
        if pa >= self.size().saturating_sub(7) {
            out_of_ram(what, pa, 8, self.size());
        }
    }

    /// Reads the little-endian u64 at `pa` (any alignment).
    #[inline]
    #[track_caller]
    pub fn read_u64(&self, pa: u64) -> u64 {
        self.check_word("read_u64", pa);
        // SAFETY: the 8 bytes lie inside the mapping (checked above); an
        // unaligned read needs no alignment.
        unsafe { core::ptr::read_unaligned(self.ptr(PhysAddr(pa)) as *const u64) }
    }

    /// Writes the little-endian u64 `v` at `pa` (any alignment).
    #[inline]
    #[track_caller]
    pub fn write_u64(&self, pa: u64, v: u64) {
        self.check_word("write_u64", pa);
        // SAFETY: the 8 bytes lie inside the mapping (checked above); an
        // unaligned write needs no alignment.
        unsafe { core::ptr::write_unaligned(self.ptr(PhysAddr(pa)) as *mut u64, v) }
    }

    /// Fills `len` bytes from `pa` with `v` (`memset`).
    #[inline]
    #[track_caller]
    pub fn fill(&self, pa: u64, v: u8, len: u64) {
        self.check("fill", pa, len);
        if len == 0 {
            return;
        }
        // SAFETY: the range lies inside the mapping (checked above).
        unsafe { core::ptr::write_bytes(self.ptr(PhysAddr(pa)), v, len as usize) }
    }
}

/// The panic of a checked access out of RAM, kept out of line so that the
/// checks stay two instructions in the slab fast paths.
#[cold]
#[inline(never)]
#[track_caller]
fn out_of_ram(what: &str, pa: u64, len: u64, size: u64) -> ! {
    panic!("direct map: {what} of {len} bytes at {pa:#x} is beyond RAM ({size:#x} bytes): a slab address outside memory")
}

#[cfg(test)]
mod checked_tests {
    use super::HeapRam;
    use crate::types::PAGE_SIZE;

    #[test]
    fn checked_words_and_fill_round_trip() {
        let dm = HeapRam::direct_map(2 * PAGE_SIZE);
        dm.write_u64(0x1003, 0x0102_0304_0506_0708);
        assert_eq!(dm.read_u64(0x1003), 0x0102_0304_0506_0708);
        let mut b = [0u8; 2];
        dm.read(crate::types::PhysAddr(0x1003), &mut b);
        assert_eq!(b, [0x08, 0x07], "little-endian");
        dm.fill(0x1ff8, 0xab, 8);
        assert_eq!(dm.read_u64(0x1ff8), 0xabab_abab_abab_abab);
        dm.fill(0x2000, 0, 0);
    }

    #[test]
    #[should_panic(expected = "read_u64 of 8 bytes at 0x1ffc is beyond RAM (0x2000 bytes)")]
    fn word_straddling_the_end_of_ram_panics() {
        HeapRam::direct_map(2 * PAGE_SIZE).read_u64(0x1ffc);
    }

    #[test]
    #[should_panic(expected = "fill of 16 bytes at 0x1ff8 is beyond RAM")]
    fn fill_past_the_end_of_ram_panics() {
        HeapRam::direct_map(2 * PAGE_SIZE).fill(0x1ff8, 0, 16);
    }
}
