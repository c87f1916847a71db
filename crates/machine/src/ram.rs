//! Simulated RAM: a memfd as large as the physical address space (holes
//! included), mapped once MAP_SHARED|MAP_NORESERVE. The file is sparse, so a
//! 1 TiB machine costs only the pages that are touched; it starts zeroed, as
//! memory the kernel clears. Being a file, a frame is also a file offset
//! (its physical address): `lmm native` maps frames of it into the host
//! process that runs a real program, so the program and lmm share them.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::Arc;

use mm::direct_map::{DirectMap, RamBacking};

/// The machine's RAM.
pub struct Ram {
    /// The memfd holding the RAM (offset = physical address).
    fd: OwnedFd,
    /// Its mapping in lmm, shared with every direct map handed out.
    map: Arc<RamMapping>,
}

/// lmm's mapping of the memfd. The direct maps hold it, so it is unmapped
/// only after the last of them is gone (the memfd may close earlier: a
/// mapping keeps its file alive).
struct RamMapping {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: `base` points at a mapping owned by the value for its whole life;
// the memory behind it is only reached through the direct map, whose users
// synchronise as they would on any shared memory.
unsafe impl Send for RamMapping {}
// SAFETY: as for Send: `RamMapping` itself never reads or writes the memory.
unsafe impl Sync for RamMapping {}

// SAFETY: the mapping is page-aligned (mmap returns page-aligned addresses),
// `len` bytes long, readable and writable, and unmapped only in `drop`.
unsafe impl RamBacking for RamMapping {
    fn base(&self) -> NonNull<u8> {
        self.base
    }
    fn size(&self) -> u64 {
        self.len as u64
    }
}

impl Drop for RamMapping {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are the mapping made in `Ram::new`, unmapped
        // once, after every direct map of it is gone.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}

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
        let base = NonNull::new(base.cast()).expect("mmap never returns NULL for a hint-less map");
        Ok(Ram {
            fd,
            map: Arc::new(RamMapping { base, len }),
        })
    }

    /// Bytes of physical address space covered.
    pub fn size(&self) -> u64 {
        self.map.len as u64
    }

    /// The memfd: the frame at physical address P is at file offset P.
    pub fn memfd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The direct map handed to the memory manager; it keeps the mapping
    /// alive for as long as it (or a clone) exists.
    pub fn direct_map(&self) -> DirectMap {
        DirectMap::new(self.map.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::Ram;
    use mm::types::PhysAddr;

    /// A direct map outlives the `Ram` it came from: the mapping goes only
    /// with its last user, so a part of the machine dropped after the RAM
    /// still reads what was written.
    #[test]
    fn the_direct_map_keeps_the_ram_mapped() {
        let ram = Ram::new(1 << 20).unwrap();
        let dm = ram.direct_map();
        dm.write(PhysAddr(0x1234), b"still here");
        drop(ram);
        let mut buf = [0u8; 10];
        dm.read(PhysAddr(0x1234), &mut buf);
        assert_eq!(&buf, b"still here");
        assert_eq!(dm.size(), 1 << 20);
    }
}
