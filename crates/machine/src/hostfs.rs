//! Host files seen through mm's [`OpenFile`]: a real file of the host opened
//! read-only, with the identity Linux shows for it in /proc/PID/maps
//! (path as `d_path` prints it, device, inode). Mirrors what `fs/open.c`
//! and `fs/stat.c` give the memory manager for a `struct file`.
//!
//! The contents are read from the host when the page cache fills a page
//! ([`OpenFile::read_at`]); the file is assumed not to change while cached.

use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::Arc;

use mm::errno::Errno;
use mm::file::{FileRef, OpenFile};

/// A regular host file opened read-only.
#[derive(Debug)]
pub struct HostFile {
    file: File,
    path: String,
    dev: (u32, u32),
    ino: u64,
    size: u64,
    mode: u32,
}

/// Splits a device number the way Linux's `new_decode_dev` does: the
/// major is bits 8..20, the minor is bits 0..8 plus bits 20..32.
pub fn new_decode_dev(dev: u64) -> (u32, u32) {
    let dev = dev as u32;
    let major = (dev & 0xfff00) >> 8;
    let minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
    (major, minor)
}

/// Maps a host I/O error to the errno Linux's open(2) would return.
pub fn errno_of(e: &std::io::Error) -> Errno {
    if let Some(code) = e.raw_os_error() {
        if let Some(errno) = Errno::ALL.iter().copied().find(|x| x.code() == code) {
            return errno;
        }
    }
    match e.kind() {
        ErrorKind::NotFound => Errno::ENOENT,
        ErrorKind::PermissionDenied => Errno::EACCES,
        _ => Errno::EIO,
    }
}

impl HostFile {
    /// Opens `path` read-only. The path recorded for /proc/PID/maps is the
    /// canonical one (symlinks resolved, absolute), as Linux's `d_path`
    /// prints it: `/bin/ls` shows as `/usr/bin/ls` where `/bin` is a link.
    ///
    /// Errors: ENOENT, EACCES, ENOTDIR, ELOOP, ENAMETOOLONG as the host
    /// reports them; EISDIR for a directory and EACCES for any other
    /// non-regular file, since only regular files can back a mapping here.
    pub fn open(path: &str) -> Result<FileRef, Errno> {
        Ok(Arc::new(Self::open_host(path)?))
    }

    /// Like [`HostFile::open`] but returns the concrete type.
    pub fn open_host(path: &str) -> Result<HostFile, Errno> {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        if path.len() >= 4096 {
            return Err(Errno::ENAMETOOLONG);
        }
        let meta = std::fs::metadata(path).map_err(|e| errno_of(&e))?;
        if meta.is_dir() {
            return Err(Errno::EISDIR);
        }
        if !meta.is_file() {
            return Err(Errno::EACCES);
        }
        let file = File::open(path).map_err(|e| errno_of(&e))?;
        let canon = std::fs::canonicalize(path).map_err(|e| errno_of(&e))?;
        let meta = file.metadata().map_err(|e| errno_of(&e))?;
        Ok(HostFile {
            file,
            path: canon.to_string_lossy().into_owned(),
            dev: new_decode_dev(meta.dev()),
            ino: meta.ino(),
            size: meta.len(),
            mode: meta.mode(),
        })
    }

    /// The file's mode bits (`st_mode`), for exec's permission check.
    pub fn mode(&self) -> u32 {
        self.mode
    }
}

impl OpenFile for HostFile {
    fn path(&self) -> &str {
        &self.path
    }
    fn dev(&self) -> (u32, u32) {
        self.dev
    }
    fn ino(&self) -> u64 {
        self.ino
    }
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let mut done = 0;
        while done < buf.len() {
            let Some(off) = offset
                .checked_add(done as u64)
                .filter(|&o| o <= i64::MAX as u64)
            else {
                break;
            };
            match self.file.read_at(&mut buf[done..], off) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // A failing read is EIO (the fault path makes it SIGBUS),
                // never a page silently left zero.
                Err(_) => return Err(Errno::EIO),
            }
        }
        Ok(done)
    }
    fn readable(&self) -> bool {
        true
    }
    fn writable(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_dev_like_linux() {
        // fe:00 is encoded by new_encode_dev as 0xfe00.
        assert_eq!(new_decode_dev(0xfe00), (0xfe, 0));
        // major 8, minor 0x123: minor low byte in bits 0..8, high in 20..32.
        let enc = 0x23 | (8 << 8) | (0x100 << 12);
        assert_eq!(new_decode_dev(enc), (8, 0x123));
    }

    #[test]
    fn open_errors() {
        assert_eq!(HostFile::open("/nonexistent/x").err(), Some(Errno::ENOENT));
        assert_eq!(HostFile::open("/").err(), Some(Errno::EISDIR));
        assert_eq!(HostFile::open("").err(), Some(Errno::ENOENT));
        assert_eq!(HostFile::open("/dev/null").err(), Some(Errno::EACCES));
    }

    #[test]
    fn open_resolves_symlinks_and_reads() {
        let Ok(f) = HostFile::open("/bin/sh") else {
            return;
        };
        let canon = std::fs::canonicalize("/bin/sh").unwrap();
        assert_eq!(f.path(), canon.to_str().unwrap());
        let mut magic = [0u8; 4];
        assert_eq!(f.read_at(0, &mut magic), Ok(4));
        let mut tail = [0u8; 8];
        assert_eq!(f.read_at(f.size() - 3, &mut tail), Ok(3));
        assert_eq!(f.read_at(f.size() + 10, &mut tail), Ok(0));
        assert_eq!(f.read_at(u64::MAX, &mut tail), Ok(0));
    }
}
