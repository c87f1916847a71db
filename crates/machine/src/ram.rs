//! Simulated RAM: a memfd as large as the physical address space (holes
//! included), mapped once MAP_SHARED|MAP_NORESERVE. The file is sparse, so a
//! 1 TiB machine costs only the pages that are touched; it starts zeroed, as
//! memory the kernel clears. Being a file, a frame is also a file offset
//! (its physical address): `lmm native` maps frames of it into the host
//! process that runs a real program, so the program and lmm share them.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex, OnceLock};

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
    /// Where [`RamBacking::prepare`] sends the chunks to populate, once
    /// [`Ram::populate_ahead`] started the thread that does it.
    ahead: OnceLock<Mutex<Sender<(u64, u64)>>>,
    /// One bit per [`CHUNK`]: set once the chunk was sent to be populated.
    sent: Box<[AtomicU64]>,
}

/// The granule of populating ahead: 2 MiB.
const CHUNK: u64 = 2 << 20;

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
    /// Sends the chunks of the range not sent before to the thread of
    /// [`Ram::populate_ahead`], if it runs.
    fn prepare(&self, pa: u64, len: u64) {
        let Some(tx) = self.ahead.get() else { return };
        let end = pa.saturating_add(len).min(self.len as u64);
        if end <= pa {
            return;
        }
        // From the top down: the user of the range goes up from its
        // start, so the two meet in the middle instead of queueing on the
        // same pages.
        for c in (pa / CHUNK..=(end - 1) / CHUNK).rev() {
            let bit = 1u64 << (c % 64);
            if self.sent[(c / 64) as usize].fetch_or(bit, Relaxed) & bit == 0 {
                let _ = tx.lock().map(|tx| tx.send((c * CHUNK, CHUNK)));
            }
        }
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
        let chunks = (len as u64).div_ceil(CHUNK);
        Ok(Ram {
            fd,
            map: Arc::new(RamMapping {
                base,
                len,
                ahead: OnceLock::new(),
                sent: (0..chunks.div_ceil(64))
                    .map(|_| AtomicU64::new(0))
                    .collect(),
            }),
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

    /// Starts a thread that has the host allocate, ahead of use, the RAM
    /// the memory manager announces it will use next (the struct pages
    /// boot initialises; each max-order block the page allocator starts
    /// on, and the next one: [`RamBacking::prepare`]), in 2 MiB chunks with
    /// MADV_POPULATE_WRITE. The host's first touch of a page of the memfd
    /// (shmem allocating and clearing it, about 4 us on our machines) then
    /// happens on another CPU, not in lmm's fault path: a machine booted
    /// with `MachineConfig::populate_ahead` (as `lmm native` boots it,
    /// before it pins itself to one CPU) starts it before boot. Nothing
    /// the machine computes changes: a page reads as zero either way. The
    /// host holds at most two max-order blocks more than lmm uses. The
    /// thread ends with the mapping; a second call does nothing.
    pub fn populate_ahead(&self) -> std::io::Result<()> {
        if self.map.ahead.get().is_some() {
            return Ok(());
        }
        let (tx, rx) = channel::<(u64, u64)>();
        let map = Arc::downgrade(&self.map);
        std::thread::Builder::new()
            .name("lmm-ram-ahead".into())
            .spawn(move || {
                while let Ok((pa, len)) = rx.recv() {
                    let Some(m) = map.upgrade() else { return };
                    // SAFETY: the chunk lies inside the mapping, which `m`
                    // keeps mapped during the call; populating changes no
                    // byte (an untouched page of the memfd reads as zero).
                    unsafe {
                        libc::madvise(
                            m.base.as_ptr().add(pa as usize).cast(),
                            len.min(m.len as u64 - pa) as usize,
                            libc::MADV_POPULATE_WRITE,
                        );
                    }
                }
            })?;
        let _ = self.map.ahead.set(Mutex::new(tx));
        Ok(())
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

    /// Pages of `[off, off + len)` of the RAM mapping the host has
    /// resident (mincore).
    fn resident(ram: &Ram, off: u64, len: u64) -> usize {
        let mut vec = vec![0u8; (len / 4096) as usize];
        let dm = ram.direct_map();
        // SAFETY: the range lies inside the live mapping; `vec` holds one
        // byte per page of it.
        let r =
            unsafe { libc::mincore(dm.ptr(PhysAddr(off)).cast(), len as usize, vec.as_mut_ptr()) };
        assert_eq!(r, 0, "mincore: {}", std::io::Error::last_os_error());
        vec.iter().filter(|&&b| b & 1 != 0).count()
    }

    /// Once populating ahead runs, a prepared range becomes resident whole
    /// (in 2 MiB chunks) without lmm touching it, reads as zero, and a
    /// range never prepared stays untouched; without it, prepare does
    /// nothing.
    #[test]
    fn a_prepared_range_is_populated_ahead_and_reads_as_zero() {
        let ram = Ram::new(64 << 20).unwrap();
        let dm = ram.direct_map();
        dm.prepare(PhysAddr(0), 4 << 20);
        assert_eq!(resident(&ram, 0, 4 << 20), 0, "no thread: nothing done");
        ram.populate_ahead().unwrap();
        // A page in the third chunk: its whole chunk, and only it.
        dm.prepare(PhysAddr((4 << 20) + 8192), 4096);
        let want = (2 << 20) / 4096;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while resident(&ram, 4 << 20, 2 << 20) < want && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(resident(&ram, 4 << 20, 2 << 20), want);
        assert_eq!(resident(&ram, 0, 4 << 20), 0);
        assert_eq!(resident(&ram, 6 << 20, 58 << 20), 0);
        let mut buf = vec![1u8; 2 << 20];
        dm.read(PhysAddr(4 << 20), &mut buf);
        assert!(buf.iter().all(|&b| b == 0));
    }

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
