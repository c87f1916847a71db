//! Host files seen through mm's [`OpenFile`]: a real file of the host,
//! opened read-only or (for a shared mapping of a descriptor open for
//! reading and writing) read-write, with the identity Linux shows for it in
//! /proc/PID/maps (path as `d_path` prints it, device, inode). Mirrors what
//! `fs/open.c` and `fs/stat.c` give the memory manager for a `struct file`.
//!
//! The contents are read from the host when the page cache fills a page
//! ([`OpenFile::read_at`]) and, for a file opened read-write, written to
//! it by writeback (msync, fsync, reclaim's pageout: `writepage`,
//! [`OpenFile::write_at`]). The size is the host's own (`fstat` on each
//! call), so a file the host truncates or extends is seen at once (a
//! fault past the new end is SIGBUS). Keeping lmm's cached pages coherent
//! with the host's own system calls on the file is the caller's work
//! (`lmm native`'s coherence module): Linux has one page cache, lmm and the
//! host have two.

use std::fs::File;
use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::Arc;

use mm::errno::Errno;
use mm::file::{FileRef, OpenFile};

/// A regular host file, opened read-only or read-write.
#[derive(Debug)]
pub struct HostFile {
    file: File,
    path: String,
    dev: (u32, u32),
    ino: u64,
    /// The size at open: what [`OpenFile::size`] says if `fstat` fails.
    size: u64,
    mode: u32,
    thp: bool,
    /// Opened read-write (FMODE_WRITE).
    write: bool,
}

/// `EXT4_SUPER_MAGIC` (also ext2's and ext3's, which ext4 serves).
pub const EXT4_SUPER_MAGIC: i64 = 0xEF53;

/// The file system's magic number of an open host file (`fstatfs`'s
/// `f_type`), or `None` if the host does not say.
pub fn fs_magic(file: &File) -> Option<i64> {
    use std::os::fd::AsRawFd;
    let mut st = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: `st` is a zeroed `struct statfs` (plain integers, so zero is
    // a valid value) that outlives the call; fstatfs writes at most one
    // such struct through the pointer and reads nothing else of ours.
    let r = unsafe { libc::fstatfs(file.as_raw_fd(), st.as_mut_ptr()) };
    if r != 0 {
        return None;
    }
    // SAFETY: zero-initialised above, and fstatfs filled it in.
    let st = unsafe { st.assume_init() };
    // f_type is __fsword_t: i64 on x86-64, narrower elsewhere.
    #[allow(clippy::useless_conversion)]
    Some(i64::from(st.f_type))
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

    /// Opens `path` for reading and writing, for a shared mapping that may
    /// write to it: its dirty pages are written back to the host file.
    /// Errors as [`HostFile::open`] (EACCES where the host refuses writing).
    pub fn open_rw(path: &str) -> Result<FileRef, Errno> {
        Ok(Arc::new(Self::open_mode(path, true)?))
    }

    /// Like [`HostFile::open`] but returns the concrete type.
    pub fn open_host(path: &str) -> Result<HostFile, Errno> {
        Self::open_mode(path, false)
    }

    /// Opens the file a descriptor's magic link `link` (`/proc/PID/fd/N`)
    /// names, read-only or read-write if `write`, recording `name` (the
    /// link's target as the host prints it) for /proc/PID/maps. Through
    /// the link a file that no longer has a name opens too (one unlinked
    /// after its open, or made with O_TMPFILE): Linux's maps show it as
    /// `/tmp/#123 (deleted)`, the link's target. Errors as
    /// [`HostFile::open`].
    pub fn open_link(link: &str, name: &str, write: bool) -> Result<FileRef, Errno> {
        Ok(Arc::new(Self::open_as(link, Some(name), write)?))
    }

    /// Opens `path` read-only, or read-write if `write`.
    fn open_mode(path: &str, write: bool) -> Result<HostFile, Errno> {
        Self::open_as(path, None, write)
    }

    /// Opens `path` read-only, or read-write if `write`, recorded as
    /// `name`, or else as its canonical path.
    fn open_as(path: &str, name: Option<&str>, write: bool) -> Result<HostFile, Errno> {
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
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(write)
            .open(path)
            .map_err(|e| errno_of(&e))?;
        let canon = match name {
            Some(name) => name.to_string(),
            None => std::fs::canonicalize(path)
                .map_err(|e| errno_of(&e))?
                .to_string_lossy()
                .into_owned(),
        };
        let meta = file.metadata().map_err(|e| errno_of(&e))?;
        // ext4_file_operations.get_unmapped_area = thp_get_unmapped_area
        // (fs/ext4/file.c). Other file systems are not modelled: the
        // generic placement.
        let thp = fs_magic(&file) == Some(EXT4_SUPER_MAGIC);
        Ok(HostFile {
            file,
            path: canon,
            dev: new_decode_dev(meta.dev()),
            ino: meta.ino(),
            size: meta.len(),
            mode: meta.mode(),
            thp,
            write,
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
        self.file.metadata().map_or(self.size, |m| m.len())
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
    /// One `preadv` for the whole batch (readahead's), repeated from where
    /// a short read stopped until EOF.
    fn read_vectored_at(&self, offset: u64, bufs: &mut [&mut [u8]]) -> Result<usize, Errno> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let mut done = 0;
        while done < total {
            let Some(off) = offset
                .checked_add(done as u64)
                .filter(|&o| o <= i64::MAX as u64)
            else {
                break;
            };
            // The buffers from `done` on, the first one cut where it stopped.
            let mut skip = done;
            let mut iov: Vec<libc::iovec> = Vec::with_capacity(bufs.len());
            for b in bufs.iter_mut() {
                if skip >= b.len() {
                    skip -= b.len();
                    continue;
                }
                iov.push(libc::iovec {
                    iov_base: b[skip..].as_mut_ptr().cast(),
                    iov_len: b.len() - skip,
                });
                skip = 0;
            }
            let cnt = iov.len().min(libc::UIO_MAXIOV as usize) as libc::c_int;
            // SAFETY: every iovec points into a distinct live buffer of
            // `bufs`, borrowed mutably for this call; the descriptor is ours.
            let n = unsafe {
                libc::preadv(self.file.as_raw_fd(), iov.as_ptr(), cnt, off as libc::off_t)
            };
            match n {
                0 => break,
                n if n > 0 => done += n as usize,
                _ if std::io::Error::last_os_error().kind() == ErrorKind::Interrupted => {}
                // As read_at: a failing read is EIO, never a page left zero.
                _ => return Err(Errno::EIO),
            }
        }
        Ok(done)
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<usize, Errno> {
        if !self.write {
            return Err(Errno::EBADF);
        }
        if offset.saturating_add(buf.len() as u64) > i64::MAX as u64 {
            return Err(Errno::EFBIG);
        }
        // ENOSPC, EFBIG, EIO... as the host reports them, which writeback
        // returns to msync or fsync.
        self.file
            .write_all_at(buf, offset)
            .map(|()| buf.len())
            .map_err(|e| errno_of(&e))
    }
    fn set_size(&self, size: u64) -> Result<(), Errno> {
        if !self.write {
            return Err(Errno::EINVAL);
        }
        if size > i64::MAX as u64 {
            return Err(Errno::EFBIG);
        }
        self.file.set_len(size).map_err(|e| errno_of(&e))
    }
    fn readable(&self) -> bool {
        true
    }
    fn writable(&self) -> bool {
        self.write
    }
    fn thp_get_unmapped_area(&self) -> bool {
        self.thp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ext4_files_take_the_thp_placement() {
        // A file where the tests are built (on our machines: ext4) follows
        // what fstatfs says; /proc is never ext4.
        let here = HostFile::open_host(file!()).or_else(|_| HostFile::open_host("Cargo.toml"));
        if let Ok(f) = here {
            let magic = fs_magic(&f.file);
            assert!(magic.is_some());
            assert_eq!(f.thp_get_unmapped_area(), magic == Some(EXT4_SUPER_MAGIC));
        }
        let proc = HostFile::open_host("/proc/self/status").unwrap();
        assert_eq!(fs_magic(&proc.file), Some(0x9fa0)); // PROC_SUPER_MAGIC
        assert!(!proc.thp_get_unmapped_area());
    }

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
    fn read_write_opens_write_back_and_follow_the_host_size() {
        let dir = std::env::temp_dir().join(format!("lmm-hostfs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rw.dat");
        std::fs::write(&path, b"0123456789").unwrap();
        let p = path.to_str().unwrap();
        // Read-only: writes refused, as an opener without FMODE_WRITE.
        let ro = HostFile::open(p).unwrap();
        assert!(!ro.writable());
        assert_eq!(ro.write_at(0, b"x"), Err(Errno::EBADF));
        assert_eq!(ro.set_size(1), Err(Errno::EINVAL));
        let rw = HostFile::open_rw(p).unwrap();
        assert!(rw.writable());
        assert_eq!(rw.write_at(8, b"abcd"), Ok(4));
        assert_eq!(std::fs::read(&path).unwrap(), b"01234567abcd");
        // Both openers see the host's size, whoever changed it.
        assert_eq!(ro.size(), 12);
        rw.set_size(3).unwrap();
        assert_eq!(ro.size(), 3);
        std::fs::write(&path, b"0123456").unwrap();
        assert_eq!(rw.size(), 7);
        assert_eq!(rw.write_at(u64::MAX - 1, b"ab"), Err(Errno::EFBIG));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A file unlinked after its open opens through its descriptor's
    /// magic link, under the name given (the link's target, as Linux's
    /// maps print it), with its bytes and inode; by path it is ENOENT.
    #[test]
    fn an_unlinked_file_opens_through_its_descriptor_link() {
        use std::os::fd::AsRawFd;
        let dir = std::env::temp_dir().join(format!("lmm-hostfs-link-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("gone.dat");
        std::fs::write(&path, b"still here").unwrap();
        let held = std::fs::File::open(&path).unwrap();
        let ino = held.metadata().unwrap().ino();
        std::fs::remove_file(&path).unwrap();
        let link = format!("/proc/self/fd/{}", held.as_raw_fd());
        let name = std::fs::read_link(&link).unwrap();
        let name = name.to_str().unwrap();
        assert!(name.ends_with("gone.dat (deleted)"), "{name}");
        assert_eq!(
            HostFile::open(path.to_str().unwrap()).err(),
            Some(Errno::ENOENT)
        );
        let f = HostFile::open_link(&link, name, false).unwrap();
        assert_eq!((f.path(), f.ino(), f.size()), (name, ino, 10));
        let mut buf = [0u8; 10];
        assert_eq!(f.read_at(0, &mut buf), Ok(10));
        assert_eq!(&buf, b"still here");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A vectored read fills the buffers in turn from the offset, as
    /// read_at would one by one, and stops at EOF (the default method of
    /// the trait is the model).
    #[test]
    fn a_vectored_read_fills_the_buffers_in_turn_up_to_eof() {
        let dir = std::env::temp_dir().join(format!("lmm-hostfs-v-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("v.dat");
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let f = HostFile::open(path.to_str().unwrap()).unwrap();
        for (offset, lens) in [
            (0u64, vec![4096usize, 4096, 4096]),
            (4096, vec![4096, 4096]),
            (100, vec![10, 0, 3000, 9000]),
            (9_999, vec![4, 4]),
            (10_000, vec![8]),
        ] {
            let mut bufs: Vec<Vec<u8>> = lens.iter().map(|&l| vec![0xaa; l]).collect();
            let mut refs: Vec<&mut [u8]> = bufs.iter_mut().map(|b| &mut b[..]).collect();
            let n = f.read_vectored_at(offset, &mut refs).unwrap();
            let want = (data.len() as u64)
                .saturating_sub(offset)
                .min(lens.iter().sum::<usize>() as u64);
            assert_eq!(n as u64, want, "offset {offset}");
            let got: Vec<u8> = bufs.concat();
            assert_eq!(&got[..n], &data[offset as usize..offset as usize + n]);
            assert!(
                got[n..].iter().all(|&b| b == 0xaa),
                "bytes past EOF untouched"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
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
