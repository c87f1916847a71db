//! Simulated RAM: a memfd as large as the physical address space (holes
//! included), mapped once MAP_SHARED|MAP_NORESERVE. The file is sparse, so a
//! 1 TiB machine costs only the pages that are touched; it starts zeroed, as
//! memory the kernel clears. Being a file, a frame is also a file offset
//! (its physical address): `lmm native` maps frames of it into the host
//! process that runs a real program, so the program and lmm share them.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use mm::direct_map::DirectMap;

/// The machine's RAM.
pub struct Ram {
    /// The memfd holding the RAM (offset = physical address).
    fd: OwnedFd,
    /// Its mapping in lmm.
    base: *mut u8,
    /// Bytes of physical address space.
    len: usize,
}

// SAFETY: `base` points at a mapping owned by `Ram` for its whole life; the
// memory behind it is only reached through the direct map, whose users
// synchronise as they would on any shared memory.
unsafe impl Send for Ram {}
// SAFETY: as for Send: `Ram` itself never reads or writes through `base`.
unsafe impl Sync for Ram {}

impl Ram {
    /// Makes and maps `bytes` of physical address space.
    pub fn new(bytes: u64) -> std::io::Result<Ram> {
        let len = usize::try_from(bytes)
            .ok()
            .filter(|&l| l > 0 && i64::try_from(l).is_ok())
            .ok_or_else(|| std::io::Error::other("RAM larger than the host address space"))?;
        // SAFETY: the name is a NUL-terminated string; the flags are valid.
        let raw = unsafe { libc::memfd_create(c"lmm-ram".as_ptr(), libc::MFD_CLOEXEC) };
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: memfd_create returned a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: `fd` is a valid descriptor; the length fits an off_t (checked).
        if unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a new shared mapping of the whole file at an address the
        // kernel picks; it aliases no Rust object.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_NORESERVE,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Ram {
            fd,
            base: base.cast(),
            len,
        })
    }

    /// Bytes of physical address space covered.
    pub fn size(&self) -> u64 {
        self.len as u64
    }

    /// The memfd: the frame at physical address P is at file offset P.
    pub fn memfd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The direct map handed to the memory manager.
    pub fn direct_map(&self) -> DirectMap {
        // SAFETY: the mapping is page-aligned, `size` bytes long and lives in
        // `self`, which the machine drops only after the memory manager.
        unsafe { DirectMap::new(self.base, self.size()) }
    }
}

impl Drop for Ram {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are the mapping made in `new`, unmapped once.
        unsafe {
            libc::munmap(self.base.cast(), self.len);
        }
    }
}
