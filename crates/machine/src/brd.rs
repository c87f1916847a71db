//! A writable disk-backed file: a regular file on a RAM disk, Linux's
//! `brd` (drivers/block/brd.c, `/dev/ram0`, block major 1), whose blocks
//! are a byte buffer in host memory. Unlike a tmpfs file its pages are not
//! swap-backed: a dirty page of it is written back to the "disk" (by
//! msync(MS_SYNC), fsync or reclaim's pageout) and a clean one can be
//! dropped and read again, as with ext4 on a real disk.
//!
//! Why it exists: host files are opened read-only by design (lmm never
//! writes to the host), so without this nothing shows a shared file
//! mapping's dirty page going back to its file. Simplifications: one file
//! per disk, no file system on it (the file's bytes are the disk's bytes),
//! no I/O errors.

use std::sync::{Arc, Mutex};

use mm::errno::Errno;
use mm::file::OpenFile;

/// `RAMDISK_MAJOR` (include/uapi/linux/major.h): the block major of brd's
/// `/dev/ramN`.
pub const RAMDISK_MAJOR: u32 = 1;

/// A file whose backing store is a byte buffer (the RAM disk's blocks).
#[derive(Debug)]
pub struct BrdFile {
    path: String,
    ino: u64,
    disk: Mutex<Vec<u8>>,
}

impl BrdFile {
    /// A file at `path`, inode `ino`, whose disk holds `bytes`.
    pub fn new(path: &str, ino: u64, bytes: Vec<u8>) -> Arc<BrdFile> {
        Arc::new(BrdFile {
            path: path.to_string(),
            ino,
            disk: Mutex::new(bytes),
        })
    }

    /// The bytes on the disk now (what a read bypassing the page cache,
    /// O_DIRECT, would see).
    pub fn disk(&self) -> Vec<u8> {
        self.disk.lock().map(|d| d.clone()).unwrap_or_default()
    }
}

impl OpenFile for BrdFile {
    fn path(&self) -> &str {
        &self.path
    }
    fn dev(&self) -> (u32, u32) {
        (RAMDISK_MAJOR, 0)
    }
    fn ino(&self) -> u64 {
        self.ino
    }
    fn size(&self) -> u64 {
        self.disk.lock().map_or(0, |d| d.len() as u64)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let d = self.disk.lock().map_err(|_| Errno::EIO)?;
        let from = usize::try_from(offset).unwrap_or(usize::MAX).min(d.len());
        let n = (d.len() - from).min(buf.len());
        buf[..n].copy_from_slice(&d[from..from + n]);
        Ok(n)
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<usize, Errno> {
        let mut d = self.disk.lock().map_err(|_| Errno::EIO)?;
        let at = usize::try_from(offset).map_err(|_| Errno::EFBIG)?;
        let end = at.checked_add(buf.len()).ok_or(Errno::EFBIG)?;
        if d.len() < end {
            d.resize(end, 0);
        }
        d[at..end].copy_from_slice(buf);
        Ok(buf.len())
    }
    fn set_size(&self, size: u64) -> Result<(), Errno> {
        let size = usize::try_from(size).map_err(|_| Errno::EFBIG)?;
        self.disk.lock().map_err(|_| Errno::EIO)?.resize(size, 0);
        Ok(())
    }
    fn readable(&self) -> bool {
        true
    }
    fn writable(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_land_on_the_disk_and_reads_come_from_it() {
        let f = BrdFile::new("/mnt/ram/f", 12, vec![1; 8]);
        assert_eq!(f.write_at(6, &[7, 7, 7, 7]), Ok(4));
        assert_eq!(f.size(), 10);
        let mut buf = [0u8; 16];
        assert_eq!(f.read_at(4, &mut buf), Ok(6));
        assert_eq!(&buf[..6], &[1, 1, 7, 7, 7, 7]);
        assert_eq!(f.disk(), vec![1, 1, 1, 1, 1, 1, 7, 7, 7, 7]);
        assert_eq!(f.dev(), (1, 0));
    }
}
