//! Files as the memory manager sees them: an open file (Linux `struct file`)
//! whose inode can back a mapping. The machine supplies the implementation
//! (host files, read-only); mm only reads pages and identity from it.

use alloc::sync::Arc;

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
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read
    /// (short at end of file; the rest of `buf` is left untouched).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> usize;
    /// Opened for reading (FMODE_READ).
    fn readable(&self) -> bool;
    /// Opened for writing (FMODE_WRITE).
    fn writable(&self) -> bool;
}

/// A shared handle to an open file, as a VMA's `vm_file`.
pub type FileRef = Arc<dyn OpenFile>;

/// True if two handles name the same inode (what VMA merging compares).
pub fn same_inode(a: &FileRef, b: &FileRef) -> bool {
    a.dev() == b.dev() && a.ino() == b.ino()
}
