//! Files on the machine, as far as memory needs them (this is not a VFS):
//! the host's files read-only, an in-memory writable tmpfs whose pages live
//! only in the page cache (mm/shmem.c), memfd_create, `/dev/zero`, each
//! process's file-descriptor table, and the file system calls: open, read,
//! write, pread, pwrite, lseek, ftruncate, fstat, fsync, close, unlink, dup,
//! and mmap of a descriptor. Every read and write goes through the page
//! cache, so a `write()` is seen at once by every shared mapping of the
//! file and the reverse.
//!
//! Simplifications: one flat namespace of tmpfs paths (any path that is
//! not a host file can be created; a created path shadows a host file of
//! the same name); no directories, permissions, links or locks; a file
//! position is shared by dup and fork as Linux's `struct file` is.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use mm::errno::Errno;
use mm::file::{FileRef, OpenFile};
use mm::page_alloc::CpuId;
use mm::types::{PAGE_SHIFT, PAGE_SIZE};

use crate::hostfs::HostFile;
use crate::machine::Machine;

/// The device tmpfs files show in /proc/PID/maps (an anonymous block
/// device, as a tmpfs mount gets).
pub const TMPFS_DEV: (u32, u32) = (0, 34);
/// `open` flags (x86-64 values).
pub const O_RDONLY: u32 = 0;
/// Open for writing only.
pub const O_WRONLY: u32 = 1;
/// Open for reading and writing.
pub const O_RDWR: u32 = 2;
/// Create if absent.
pub const O_CREAT: u32 = 0o100;
/// With O_CREAT: fail if present.
pub const O_EXCL: u32 = 0o200;
/// Truncate to 0 on open.
pub const O_TRUNC: u32 = 0o1000;
/// Every write appends.
pub const O_APPEND: u32 = 0o2000;
/// Largest file tmpfs accepts here (MAX_LFS_FILESIZE is larger; this
/// bounds what a script can ask of host memory for indexes).
pub const MAX_FILE_SIZE: u64 = 1 << 40;

/// A tmpfs or memfd inode: its bytes are its page-cache pages.
#[derive(Debug)]
pub struct ShmemInode {
    path: String,
    deleted_path: String,
    deleted: AtomicBool,
    dev: (u32, u32),
    ino: u64,
    size: AtomicU64,
}

impl OpenFile for ShmemInode {
    fn path(&self) -> &str {
        if self.deleted.load(Relaxed) {
            &self.deleted_path
        } else {
            &self.path
        }
    }
    fn dev(&self) -> (u32, u32) {
        self.dev
    }
    fn ino(&self) -> u64 {
        self.ino
    }
    fn size(&self) -> u64 {
        self.size.load(Relaxed)
    }
    fn read_at(&self, _offset: u64, _buf: &mut [u8]) -> Result<usize, Errno> {
        // No backing store: a page not in the cache is a hole, read as zeroes.
        Ok(0)
    }
    fn set_size(&self, size: u64) -> Result<(), Errno> {
        if size > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        self.size.store(size, Relaxed);
        Ok(())
    }
    fn readable(&self) -> bool {
        true
    }
    fn writable(&self) -> bool {
        true
    }
    fn is_shmem(&self) -> bool {
        true
    }
}

/// `/dev/zero` (char device 1:5): reads give zeroes; a private mapping is
/// anonymous memory and a shared one is shmem (`shmem_zero_setup`).
#[derive(Debug)]
pub struct DevZero;

impl OpenFile for DevZero {
    fn path(&self) -> &str {
        "/dev/zero"
    }
    fn dev(&self) -> (u32, u32) {
        (0, 6)
    }
    fn ino(&self) -> u64 {
        5
    }
    fn size(&self) -> u64 {
        0
    }
    fn read_at(&self, _offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        buf.fill(0);
        Ok(buf.len())
    }
    fn readable(&self) -> bool {
        true
    }
    fn writable(&self) -> bool {
        true
    }
}

/// An open file description (`struct file`): the file, the access mode
/// and the position, shared by dup and fork.
#[derive(Clone)]
pub struct OpenFd {
    /// The inode's file object.
    pub file: FileRef,
    /// FMODE_READ.
    pub read: bool,
    /// FMODE_WRITE.
    pub write: bool,
    /// O_APPEND.
    pub append: bool,
    /// The file position.
    pub pos: Arc<AtomicU64>,
}

impl OpenFd {
    fn is_dev_zero(&self) -> bool {
        self.file.dev() == (0, 6) && self.file.path() == "/dev/zero"
    }
}

/// A process's descriptor table (`struct files_struct`).
#[derive(Clone, Default)]
pub struct FdTable {
    fds: BTreeMap<i32, OpenFd>,
}

impl FdTable {
    /// The lowest free descriptor (`get_unused_fd_flags`), from 3 since 0-2
    /// are the standard streams a real process inherits.
    fn install(&mut self, f: OpenFd) -> Result<i32, Errno> {
        let mut fd = 3;
        while self.fds.contains_key(&fd) {
            fd += 1;
        }
        if fd >= 1024 {
            return Err(Errno::EMFILE);
        }
        self.fds.insert(fd, f);
        Ok(fd)
    }
    /// The open file behind `fd`.
    pub fn get(&self, fd: i32) -> Result<&OpenFd, Errno> {
        self.fds.get(&fd).ok_or(Errno::EBADF)
    }
    /// Number of open descriptors.
    pub fn len(&self) -> usize {
        self.fds.len()
    }
    /// True if no descriptor is open.
    pub fn is_empty(&self) -> bool {
        self.fds.is_empty()
    }
}

/// The machine's tmpfs: paths to inodes.
#[derive(Default, Debug)]
pub struct Tmpfs {
    files: BTreeMap<String, Arc<ShmemInode>>,
}

impl Machine {
    fn fds(&mut self, pid: u32) -> Result<&mut FdTable, Errno> {
        self.processes
            .get_mut(&pid)
            .map(|p| &mut p.files)
            .ok_or(Errno::ESRCH)
    }

    fn fd(&self, pid: u32, fd: i32) -> Result<OpenFd, Errno> {
        self.processes
            .get(&pid)
            .ok_or(Errno::ESRCH)?
            .files
            .get(fd)
            .cloned()
    }

    fn new_shmem_inode(
        &mut self,
        path: String,
        deleted_path: String,
        dev: (u32, u32),
    ) -> Arc<ShmemInode> {
        Arc::new(ShmemInode {
            path,
            deleted_path,
            deleted: AtomicBool::new(false),
            dev,
            ino: self.cache.new_shmem_ino(),
            size: AtomicU64::new(0),
        })
    }

    /// open(2). A tmpfs path (created with O_CREAT) is writable; any other
    /// path is a host file, read-only (EROFS when opened for writing).
    pub fn sys_open(&mut self, pid: u32, path: &str, flags: u32) -> Result<i32, Errno> {
        self.processes.get(&pid).ok_or(Errno::ESRCH)?;
        let acc = flags & 3;
        if acc == 3 {
            return Err(Errno::EINVAL);
        }
        let (read, write) = (acc != O_WRONLY, acc != O_RDONLY);
        let file: FileRef = if path == "/dev/zero" {
            Arc::new(DevZero)
        } else if let Some(i) = self.tmpfs.files.get(path) {
            if flags & (O_CREAT | O_EXCL) == O_CREAT | O_EXCL {
                return Err(Errno::EEXIST);
            }
            i.clone()
        } else if flags & O_CREAT != 0 {
            if path.is_empty() || path.ends_with('/') {
                return Err(Errno::ENOENT);
            }
            let i = self.new_shmem_inode(path.into(), format!("{path} (deleted)"), TMPFS_DEV);
            self.tmpfs.files.insert(path.into(), i.clone());
            i
        } else {
            let f = HostFile::open(path)?;
            if write {
                return Err(Errno::EROFS);
            }
            f
        };
        let fd = OpenFd {
            file,
            read,
            write,
            append: flags & O_APPEND != 0,
            pos: Arc::new(AtomicU64::new(0)),
        };
        if flags & O_TRUNC != 0 && write && fd.file.is_shmem() {
            self.truncate_file(pid, &fd.file, 0)?;
        }
        self.fds(pid)?.install(fd)
    }

    /// memfd_create(2): an unnamed tmpfs file, `/memfd:NAME (deleted)` in maps.
    pub fn sys_memfd_create(&mut self, pid: u32, name: &str) -> Result<i32, Errno> {
        self.processes.get(&pid).ok_or(Errno::ESRCH)?;
        if name.len() > 249 {
            return Err(Errno::EINVAL);
        }
        let n = format!("/memfd:{name}");
        let i = self.new_shmem_inode(n.clone(), format!("{n} (deleted)"), (0, 1));
        i.deleted.store(true, Relaxed);
        self.fds(pid)?.install(OpenFd {
            file: i,
            read: true,
            write: true,
            append: false,
            pos: Arc::new(AtomicU64::new(0)),
        })
    }

    /// close(2). The last reference to an unlinked tmpfs inode frees its
    /// pages (if no mapping holds it).
    pub fn sys_close(&mut self, pid: u32, fd: i32) -> Result<(), Errno> {
        self.fds(pid)?.fds.remove(&fd).ok_or(Errno::EBADF)?;
        let cpu = self.processes[&pid].cpu;
        self.reap_cache(cpu);
        Ok(())
    }

    /// dup(2): the lowest free descriptor for the same open file.
    pub fn sys_dup(&mut self, pid: u32, fd: i32) -> Result<i32, Errno> {
        let f = self.fd(pid, fd)?;
        self.fds(pid)?.install(f)
    }

    /// unlink(2) of a tmpfs path: mappings and descriptors keep the inode,
    /// which maps now show as `PATH (deleted)`. Host files: EROFS.
    pub fn sys_unlink(&mut self, path: &str) -> Result<(), Errno> {
        match self.tmpfs.files.remove(path) {
            Some(i) => {
                i.deleted.store(true, Relaxed);
                let cpu = 0;
                self.reap_cache(cpu);
                Ok(())
            }
            None if std::path::Path::new(path).exists() => Err(Errno::EROFS),
            None => Err(Errno::ENOENT),
        }
    }

    /// The size of the file behind `fd` (fstat's st_size).
    pub fn sys_fstat_size(&self, pid: u32, fd: i32) -> Result<u64, Errno> {
        Ok(self.fd(pid, fd)?.file.size())
    }

    /// lseek(2) with SEEK_SET (0), SEEK_CUR (1) or SEEK_END (2).
    pub fn sys_lseek(&mut self, pid: u32, fd: i32, off: i64, whence: u32) -> Result<u64, Errno> {
        let f = self.fd(pid, fd)?;
        let base = match whence {
            0 => 0,
            1 => f.pos.load(Relaxed) as i64,
            2 => f.file.size() as i64,
            _ => return Err(Errno::EINVAL),
        };
        let new = base
            .checked_add(off)
            .filter(|&n| n >= 0)
            .ok_or(Errno::EINVAL)?;
        f.pos.store(new as u64, Relaxed);
        Ok(new as u64)
    }

    /// Reads up to `len` bytes of `fd` at `off` (or the file position)
    /// through the page cache into a kernel buffer.
    pub fn file_read(
        &mut self,
        pid: u32,
        fd: i32,
        off: Option<u64>,
        len: usize,
    ) -> Result<Vec<u8>, Errno> {
        let f = self.fd(pid, fd)?;
        if !f.read {
            return Err(Errno::EBADF);
        }
        if len > 64 << 20 {
            return Err(Errno::EINVAL);
        }
        let at = off.unwrap_or_else(|| f.pos.load(Relaxed));
        let mut buf = vec![0u8; len];
        let n = if f.is_dev_zero() {
            len
        } else {
            let cpu = CpuId(self.processes[&pid].cpu);
            self.cache.read(&self.pa, cpu, &f.file, at, &mut buf)?
        };
        self.run_kswapd();
        buf.truncate(n);
        if off.is_none() {
            f.pos.store(at + n as u64, Relaxed);
        }
        Ok(buf)
    }

    /// Writes `data` to `fd` at `off` (or the file position, or the end
    /// with O_APPEND) through the page cache.
    pub fn file_write(
        &mut self,
        pid: u32,
        fd: i32,
        off: Option<u64>,
        data: &[u8],
    ) -> Result<usize, Errno> {
        let f = self.fd(pid, fd)?;
        if !f.write {
            return Err(Errno::EBADF);
        }
        if f.is_dev_zero() {
            return Ok(data.len());
        }
        let at = match off {
            Some(o) => o,
            None if f.append => f.file.size(),
            None => f.pos.load(Relaxed),
        };
        if at.saturating_add(data.len() as u64) > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        let cpu = CpuId(self.processes[&pid].cpu);
        let n = self.cache.write(&self.pa, cpu, &f.file, at, data)?;
        self.run_kswapd();
        if off.is_none() {
            f.pos.store(at + n as u64, Relaxed);
        }
        Ok(n)
    }

    /// read(2)/pread64(2) into user memory at `va` (copy_to_user: EFAULT
    /// if the buffer cannot be written).
    pub fn sys_read(
        &mut self,
        pid: u32,
        fd: i32,
        va: u64,
        len: u64,
        off: Option<u64>,
    ) -> Result<u64, Errno> {
        let f = self.fd(pid, fd)?;
        let at = off.unwrap_or_else(|| f.pos.load(Relaxed));
        let buf = self.file_read(pid, fd, Some(at), len.min(64 << 20) as usize)?;
        self.write_user(pid, va, &buf)?;
        if off.is_none() {
            f.pos.store(at + buf.len() as u64, Relaxed);
        }
        Ok(buf.len() as u64)
    }

    /// write(2)/pwrite64(2) from user memory at `va` (copy_from_user).
    pub fn sys_write(
        &mut self,
        pid: u32,
        fd: i32,
        va: u64,
        len: u64,
        off: Option<u64>,
    ) -> Result<u64, Errno> {
        let data = self.read_user(pid, va, len.min(64 << 20) as usize)?;
        self.file_write(pid, fd, off, &data).map(|n| n as u64)
    }

    /// Truncation (`truncate_setsize` + `truncate_pagecache`): every pte
    /// of the pages past the new end is cleared in every mm (so a later
    /// access there is SIGBUS), the cached pages go, and the tail of a
    /// partial last page is zeroed.
    fn truncate_file(&mut self, pid: u32, file: &FileRef, len: u64) -> Result<(), Errno> {
        if !file.is_shmem() {
            return Err(Errno::EINVAL);
        }
        if len > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        let cpu = CpuId(self.processes.get(&pid).ok_or(Errno::ESRCH)?.cpu);
        let old = file.size();
        file.set_size(len)?;
        if len < old {
            let m = self.cache.mapping_of(file);
            self.truncate_pagecache(cpu, m, len);
            if !len.is_multiple_of(PAGE_SIZE) {
                // A partial page on swap comes back to be zeroed.
                if let Some(pfn) = self
                    .cache
                    .find_or_swapin(&self.pa, cpu, m, len >> PAGE_SHIFT)?
                {
                    let tail = (PAGE_SIZE - len % PAGE_SIZE) as usize;
                    self.pa.direct_map().write(
                        mm::types::PhysAddr(pfn.phys().0 + len % PAGE_SIZE),
                        &vec![0u8; tail],
                    );
                }
            }
        }
        Ok(())
    }

    /// `truncate_pagecache`: the file of mapping `m` is now `len` bytes
    /// long: every pte of its pages past the new end is cleared in every
    /// mm (a later access there is SIGBUS) and those pages leave the
    /// cache. Returns the pages removed. The caller deals with the partial
    /// last page.
    pub fn truncate_pagecache(&mut self, cpu: CpuId, m: mm::rmap::MappingId, len: u64) -> u64 {
        let first = len.div_ceil(PAGE_SIZE);
        self.with_rmap(cpu, |r| r.unmap_mapping_range(m, first));
        self.cache.truncate(&self.pa, cpu, m, first)
    }

    /// Writes the dirty pages of `[first, last]` of file mapping `m` to
    /// the file, leaving them dirty ([`mm::filemap::PageCache::flush_range`]):
    /// for a reader of the file that does not go through this cache (`lmm
    /// native`'s host system calls). Returns the pages written.
    pub fn flush_file_range(
        &self,
        m: mm::rmap::MappingId,
        first: u64,
        last: u64,
    ) -> Result<u64, Errno> {
        self.cache.flush_range(&self.pa, &self.rmap, m, first, last)
    }

    /// The file of mapping `m` changed outside this cache in pages
    /// `[first, last]` (a host write, truncate or fallocate by `lmm
    /// native`'s program): cached pages past its end now are truncated
    /// ([`Machine::truncate_pagecache`]) and those of the range read again
    /// in place. True if pages left the cache (a mirror of them is stale).
    pub fn file_changed(
        &mut self,
        pid: u32,
        m: mm::rmap::MappingId,
        first: u64,
        last: u64,
    ) -> Result<bool, Errno> {
        let cpu = CpuId(self.processes.get(&pid).ok_or(Errno::ESRCH)?.cpu);
        let Some(file) = self.cache.file_of(m) else {
            let before = self.cache.nrpages(m);
            self.cache.refresh_range(&self.pa, cpu, m, first, last)?;
            return Ok(self.cache.nrpages(m) != before);
        };
        let size = file.size();
        let end = size.div_ceil(PAGE_SIZE);
        let cut = self.cache.last_index(m).is_some_and(|i| i >= end)
            && self.truncate_pagecache(cpu, m, size) > 0;
        if end > 0 {
            self.cache
                .refresh_range(&self.pa, cpu, m, first, last.min(end - 1))?;
        }
        Ok(cut)
    }

    /// ftruncate(2): tmpfs files only (host files are read-only: EINVAL,
    /// as for a descriptor not open for writing).
    pub fn sys_ftruncate(&mut self, pid: u32, fd: i32, len: u64) -> Result<(), Errno> {
        let f = self.fd(pid, fd)?;
        if !f.write {
            return Err(Errno::EINVAL);
        }
        self.truncate_file(pid, &f.file, len)
    }

    /// fsync(2): writes the file's dirty cached pages back (nothing for
    /// tmpfs, which has no backing store).
    pub fn sys_fsync(&mut self, pid: u32, fd: i32) -> Result<(), Errno> {
        let f = self.fd(pid, fd)?;
        self.cache
            .writeback(&self.pa, &f.file, 0, u64::MAX)
            .map(|_| ())
    }

    /// mmap(2) of a descriptor: EACCES unless it is open for reading, and
    /// for writing too when the mapping is shared and writable; `/dev/zero`
    /// gives anonymous memory (shmem when shared).
    #[allow(clippy::too_many_arguments)]
    pub fn sys_mmap_fd(
        &mut self,
        pid: u32,
        addr: u64,
        len: u64,
        prot: u32,
        flags: u32,
        fd: i32,
        off: u64,
    ) -> Result<u64, Errno> {
        let f = self.fd(pid, fd)?;
        let shared = flags & 0x3 == mm::mmap::MAP_SHARED;
        if !f.read || (shared && prot & mm::mmap::PROT_WRITE != 0 && !f.write) {
            return Err(Errno::EACCES);
        }
        if f.is_dev_zero() {
            return self.sys_mmap(
                pid,
                addr,
                len,
                prot,
                flags | mm::mmap::MAP_ANONYMOUS,
                None,
                0,
            );
        }
        self.sys_mmap(pid, addr, len, prot, flags, Some(f.file.clone()), off)
    }
}
