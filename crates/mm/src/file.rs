//! Files as the memory manager sees them: an open file (Linux `struct file`)
//! whose inode can back a mapping and whose pages live in the page cache.
//! The machine supplies the implementations (host files read-only, tmpfs
//! and shmem in memory); mm reads and writes pages through this trait only.

use alloc::sync::Arc;

use crate::errno::Errno;

/// An open file that can be mapped.
pub trait OpenFile: Send + Sync {
    /// The path /proc/PID/maps prints.
    fn path(&self) -> &str;
    /// Device of the inode as (major, minor), as the host kernel reports it.
    fn dev(&self) -> (u32, u32);
    /// Inode number.
    fn ino(&self) -> u64;
    /// Current size in bytes (i_size).
    fn size(&self) -> u64;
    /// Reads up to `buf.len()` bytes at `offset` from the backing store
    /// (`read_folio`); returns how many were read (short at end of file;
    /// the rest of `buf` is left untouched). EIO when the backing store
    /// fails: the caller turns it into SIGBUS or -EIO, never zeroes.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno>;
    /// Reads consecutive bytes from `offset` into `bufs` in turn, as one
    /// request where the store can (readahead's batch of pages, one bio in
    /// Linux); returns how many were read, as [`OpenFile::read_at`]. The
    /// default makes one `read_at` per buffer.
    fn read_vectored_at(&self, offset: u64, bufs: &mut [&mut [u8]]) -> Result<usize, Errno> {
        let mut done = 0;
        for b in bufs.iter_mut() {
            let n = self.read_at(offset + done as u64, b)?;
            done += n;
            if n < b.len() {
                break;
            }
        }
        Ok(done)
    }
    /// Writes `buf` at `offset` to the backing store (`writepage`). Files
    /// without one (shmem) and read-only files refuse with EBADF.
    fn write_at(&self, _offset: u64, _buf: &[u8]) -> Result<usize, Errno> {
        Err(Errno::EBADF)
    }
    /// Sets i_size (ftruncate, or a write past the end). Read-only files
    /// refuse with EINVAL.
    fn set_size(&self, _size: u64) -> Result<(), Errno> {
        Err(Errno::EINVAL)
    }
    /// Opened for reading (FMODE_READ).
    fn readable(&self) -> bool;
    /// Opened for writing (FMODE_WRITE).
    fn writable(&self) -> bool;
    /// A shmem/tmpfs inode: its pages exist only in the page cache (a page
    /// never written reads as zeroes and is made without I/O) and are
    /// swap-backed.
    fn is_shmem(&self) -> bool {
        false
    }
    /// The file system's `file_operations.get_unmapped_area` is
    /// `thp_get_unmapped_area` (mm/huge_memory.c), as ext4's is
    /// (fs/ext4/file.c `ext4_file_operations`): a mapping of the file that
    /// covers a whole 2 MiB-aligned stretch of it is placed so that the
    /// stretch is 2 MiB aligned in memory. False by default (the generic
    /// placement of files whose file system has no such hook).
    fn thp_get_unmapped_area(&self) -> bool {
        false
    }
}

/// A shared handle to an open file, as a VMA's `vm_file`.
pub type FileRef = Arc<dyn OpenFile>;

/// True if two handles name the same inode (what VMA merging compares).
pub fn same_inode(a: &FileRef, b: &FileRef) -> bool {
    a.dev() == b.dev() && a.ino() == b.ino()
}
