//! One page cache, as Linux has, out of two: lmm's page cache holds the
//! pages of host files the program maps, while the program's own file
//! system calls (read, write, ftruncate...) run in the stub against the
//! host's. Linux has one cache, so a write() is seen by a mapping of the
//! file and a store into a shared mapping is seen by read(); this module
//! keeps the two agreeing around each such host call:
//!
//! - before a host call that reads a file lmm may hold dirty pages of
//!   (read, pread64, readv, sendfile's and copy_file_range's input, lseek
//!   SEEK_DATA/SEEK_HOLE, fsync...), those pages of the range are written
//!   to the host file ([`machine::Machine::flush_file_range`]);
//! - before a host call that changes a cached file (write, pwrite64,
//!   writev, ftruncate, fallocate, the output of copy_file_range, sendfile
//!   or splice), the same, so that the page read again afterwards keeps
//!   the program's stores; after it, lmm's cached pages of the range are
//!   read again in place and those past a new end are truncated
//!   ([`machine::Machine::file_changed`]): the mappings see the new bytes,
//!   and an access past the end is SIGBUS. An open with O_TRUNC is a
//!   change of the whole file.
//!
//! The file of a descriptor is identified as `host_file` does, by the
//! stub's /proc/PID/fd link (device and inode), and only for files lmm has
//! cached. Cheap checks come first: a reading call costs nothing while the
//! program has no shared mapping of a file open for writing (only those
//! can hold pages dirtier than the host file); a writing call costs one
//! stat of the descriptor.
//!
//! Files opened read-write for a shared mapping stay open here for the
//! whole run, as Linux keeps an inode with dirty pages in memory after the
//! last munmap: their dirty pages are written back when a process exits
//! and when the run ends ([`Coherence::sync_all`]), and reclaim can write
//! them back (`writepage`) at any time.
//!
//! Simplifications: a call's range is the whole file where the call does
//! not say it cheaply (vectored and offset-pointer calls, O_APPEND);
//! truncate(2) of a path is not followed (ftruncate and O_TRUNC are); a
//! store by another process running during the host call may land between
//! the flush and the refresh of its page and be lost.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;

use machine::hostfs::{new_decode_dev, HostFile};
use machine::Machine;
use mm::errno::Errno;
use mm::file::FileRef;
use mm::filemap::InodeKey;
use mm::rmap::MappingId;
use mm::types::PAGE_SHIFT;

/// `O_TRUNC` and `O_APPEND` as open(2) and /proc/PID/fdinfo give them.
const O_TRUNC: u64 = 0o1000;
/// Writes go to the end of the file.
const O_APPEND: u64 = 0o2000;
/// lseek's whence values that look at the file's data and holes.
const SEEK_DATA: u64 = 3;
/// See [`SEEK_DATA`].
const SEEK_HOLE: u64 = 4;

/// What a host call will have changed, for [`Coherence::after`]: pages
/// `[first, last]` of a cached file, or (an open with O_TRUNC) the file
/// the returned descriptor names.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Change {
    /// Pages `[first, last]` of a cached file, written through this
    /// descriptor.
    Range(MappingId, u64, u64, u64),
    /// The whole file of the returned descriptor, if cached.
    Opened,
}

/// The coherence state of a run: the files kept open for writeback, and
/// the change each stub's host call in flight will make.
#[derive(Default)]
pub struct Coherence {
    /// Host files lmm opened read-write for shared mappings, by inode.
    files: BTreeMap<InodeKey, FileRef>,
    /// By stub (host pid): the change its host call will make.
    pending: BTreeMap<libc::pid_t, Change>,
}

/// The inode of the program's descriptor `fd` in stub `stub`, if it is a
/// regular file (what `host_file` maps).
fn fd_inode(stub: libc::pid_t, fd: u64) -> Option<InodeKey> {
    let meta = std::fs::metadata(format!("/proc/{stub}/fd/{}", fd as i32)).ok()?;
    meta.is_file()
        .then(|| (new_decode_dev(meta.dev()), meta.ino()))
}

/// The file position and open flags of the program's descriptor `fd`
/// (from /proc/PID/fdinfo).
fn fd_pos_flags(stub: libc::pid_t, fd: u64) -> Option<(u64, u64)> {
    let info = std::fs::read_to_string(format!("/proc/{stub}/fdinfo/{}", fd as i32)).ok()?;
    let field = |name: &str, radix: u32| {
        info.lines()
            .find_map(|l| u64::from_str_radix(l.strip_prefix(name)?.trim(), radix).ok())
    };
    Some((field("pos:", 10)?, field("flags:", 8)?))
}

/// The page range of `len` bytes from `off` (to the end for `u64::MAX`).
fn pages(off: u64, len: u64) -> (u64, u64) {
    let first = off >> PAGE_SHIFT;
    let last = match len {
        0 => first,
        _ => off.saturating_add(len - 1) >> PAGE_SHIFT,
    };
    (first, last)
}

impl Coherence {
    /// The host file of the descriptor link `link` (`/proc/STUB/fd/N`,
    /// shown as `name`) opened read-write for a shared mapping (the
    /// program's descriptor is open for reading and writing): the one
    /// already open for its inode if any, kept for the run. Errors as
    /// [`HostFile::open`].
    pub fn open_rw(&mut self, link: &str, name: &str) -> Result<FileRef, Errno> {
        let meta = std::fs::metadata(link).map_err(|e| machine::hostfs::errno_of(&e))?;
        let key = (new_decode_dev(meta.dev()), meta.ino());
        if let Some(f) = self.files.get(&key) {
            return Ok(f.clone());
        }
        let f = HostFile::open_link(link, name, true)?;
        self.files.insert((f.dev(), f.ino()), f.clone());
        Ok(f)
    }

    /// The cached file (mapping) of descriptor `fd`, if lmm caches it;
    /// `dirty_only`: only if it is one of the files kept here (the only
    /// ones whose cached pages can be newer than the host file).
    fn cached(
        &self,
        m: &Machine,
        stub: libc::pid_t,
        fd: u64,
        dirty_only: bool,
    ) -> Option<(InodeKey, MappingId)> {
        let key = fd_inode(stub, fd)?;
        if dirty_only && !self.files.contains_key(&key) {
            return None;
        }
        Some((key, m.cache().lookup(key)?))
    }

    /// Writes the dirty pages of `[first, last]` of `fd`'s file to the
    /// host, if it is a file kept here.
    fn flush(&self, m: &Machine, stub: libc::pid_t, fd: u64, first: u64, last: u64) {
        if self.files.is_empty() {
            return;
        }
        if let Some((_, map)) = self.cached(m, stub, fd, true) {
            // An error (ENOSPC, EIO) leaves the pages dirty in lmm: the
            // host call then reads what the file holds, as Linux's read
            // would not see a failed writeback either.
            let _ = m.flush_file_range(map, first, last);
        }
    }

    /// Notes that `fd`'s file will change in the pages `range` gives
    /// (`[first, last]`, asked only once the file is known to be cached),
    /// flushing its dirty pages there first, if lmm caches it.
    fn will_change(
        &mut self,
        m: &Machine,
        stub: libc::pid_t,
        fd: u64,
        range: impl FnOnce() -> Option<(u64, u64)>,
    ) {
        let Some((key, map)) = self.cached(m, stub, fd, false) else {
            return;
        };
        let Some((first, last)) = range() else {
            return;
        };
        if self.files.contains_key(&key) {
            let _ = m.flush_file_range(map, first, last);
        }
        self.pending
            .insert(stub, Change::Range(map, fd, first, last));
    }

    /// Before the program's host call `nr` with arguments `a` runs in stub
    /// `stub`: flushes what it will read, notes what it will change.
    pub fn before(&mut self, m: &Machine, stub: libc::pid_t, nr: u64, a: [u64; 6]) {
        self.pending.remove(&stub);
        let all = u64::MAX;
        match nr {
            // read, readv: from the file position.
            0 | 19 => {
                if self.files.is_empty() {
                    return;
                }
                let Some((pos, _)) = fd_pos_flags(stub, a[0]) else {
                    return;
                };
                let (f, l) = pages(pos, if nr == 0 { a[2] } else { all });
                self.flush(m, stub, a[0], f, l);
            }
            // pread64; preadv, preadv2 (the offset is a[3]).
            17 => {
                let (f, l) = pages(a[3], a[2]);
                self.flush(m, stub, a[0], f, l);
            }
            295 | 327 => self.flush(m, stub, a[0], a[3] >> PAGE_SHIFT, all),
            // lseek's data and hole search, fsync, fdatasync,
            // sync_file_range: the whole file.
            8 if a[2] == SEEK_DATA || a[2] == SEEK_HOLE => self.flush(m, stub, a[0], 0, all),
            74 | 75 | 277 => self.flush(m, stub, a[0], 0, all),
            // sync, syncfs: every file.
            162 | 306 => self.sync_files(m, false),
            // write, writev: from the position, or the end with O_APPEND.
            1 | 20 => self.will_change(m, stub, a[0], || {
                let (pos, flags) = fd_pos_flags(stub, a[0])?;
                Some(if flags & O_APPEND != 0 {
                    (0, all)
                } else {
                    pages(pos, if nr == 1 { a[2] } else { all })
                })
            }),
            // pwrite64; pwritev, pwritev2.
            18 => self.will_change(m, stub, a[0], || Some(pages(a[3], a[2]))),
            296 | 328 => self.will_change(m, stub, a[0], || Some((a[3] >> PAGE_SHIFT, all))),
            // ftruncate: the page the new end falls in keeps its bytes
            // before the end; the rest may go.
            77 => self.will_change(m, stub, a[0], || Some((a[1] >> PAGE_SHIFT, all))),
            // fallocate (collapsing or inserting a range moves the rest).
            285 => self.will_change(m, stub, a[0], || Some((a[2] >> PAGE_SHIFT, all))),
            // sendfile(out, in, ...): reads `in`, writes `out`.
            40 => {
                self.flush(m, stub, a[1], 0, all);
                self.will_change(m, stub, a[0], || Some((0, all)));
            }
            // copy_file_range, splice (in, off_in, out, off_out, len).
            326 | 275 => {
                self.flush(m, stub, a[0], 0, all);
                self.will_change(m, stub, a[2], || Some((0, all)));
            }
            // open, openat with O_TRUNC; creat.
            2 if a[1] & O_TRUNC != 0 => {
                self.pending.insert(stub, Change::Opened);
            }
            257 if a[2] & O_TRUNC != 0 => {
                self.pending.insert(stub, Change::Opened);
            }
            85 => {
                self.pending.insert(stub, Change::Opened);
            }
            _ => {}
        }
    }

    /// True if stub `stub`'s host call will change a cached file (the
    /// caller stops the other processes before [`Coherence::after`], which
    /// may free pages they map).
    pub fn changes(&self, stub: libc::pid_t) -> bool {
        self.pending.contains_key(&stub)
    }

    /// After stub `stub`'s host call (of lmm pid `pid`) returned `ret`:
    /// lmm's cached pages of what it changed are read again, those past a
    /// new end truncated. True if pages left the cache (a mirror of them
    /// is stale in any stub).
    pub fn after(&mut self, m: &mut Machine, stub: libc::pid_t, pid: u32, ret: i64) -> bool {
        // A failed call changed nothing (a partial write returns what it
        // wrote, not an error).
        let (map, fd, first, last) = match self.pending.remove(&stub) {
            None => return false,
            _ if ret < 0 => return false,
            Some(Change::Range(map, fd, first, last)) => (map, fd, first, last),
            Some(Change::Opened) => {
                let fd = ret as u64;
                let Some((_, map)) = self.cached(m, stub, fd, false) else {
                    return false;
                };
                (map, fd, 0, u64::MAX)
            }
        };
        // The pages are read again from an opener of the file: if every
        // one lmm had is gone while a mapping still shows the pages (each
        // VMA holds an opener of its own, the cache only the first), one
        // opened from the descriptor, for the while.
        let _opener = match m.cache().file_of(map) {
            Some(_) => None,
            None => HostFile::open(&format!("/proc/{stub}/fd/{}", fd as i32))
                .ok()
                .inspect(|f| {
                    m.cache().mapping_of(f);
                }),
        };
        // A read error leaves the old bytes in place (EIO from the host).
        m.file_changed(pid, map, first, last).unwrap_or(false)
    }

    /// Writes every dirty page of the files kept here back to the host
    /// (`sync`): `clean`, as writeback does (the pages are clean after),
    /// or leaving them dirty (for a sync(2) while they may be mapped).
    fn sync_files(&self, m: &Machine, clean: bool) {
        for f in self.files.values() {
            let _ = if clean {
                m.cache().writeback(m.pa(), f, 0, u64::MAX).map(|_| ())
            } else {
                match m.cache().lookup((f.dev(), f.ino())) {
                    Some(map) => m.flush_file_range(map, 0, u64::MAX).map(|_| ()),
                    None => Ok(()),
                }
            };
        }
    }

    /// Writes the dirty pages of every file kept here back to the host, as
    /// the flusher would after a process unmapped them or exited: the
    /// pages that no pte maps any more carry their dirt in PG_dirty, and
    /// leave clean.
    pub fn sync_all(&self, m: &Machine) {
        self.sync_files(m, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_ranges() {
        assert_eq!(pages(0, 4096), (0, 0));
        assert_eq!(pages(4095, 2), (0, 1));
        assert_eq!(pages(8192, 0), (2, 2));
        assert_eq!(pages(4096, u64::MAX), (1, u64::MAX >> PAGE_SHIFT));
    }

    #[test]
    fn descriptors_of_this_process() {
        let me = std::process::id() as libc::pid_t;
        let Ok(f) = std::fs::File::open("/proc/self/exe") else {
            return;
        };
        use std::os::fd::AsRawFd;
        let fd = f.as_raw_fd() as u64;
        let meta = f.metadata().unwrap();
        assert_eq!(
            fd_inode(me, fd),
            Some((new_decode_dev(meta.dev()), meta.ino()))
        );
        assert_eq!(fd_pos_flags(me, fd).map(|p| p.0), Some(0));
        // No such descriptor.
        assert_eq!(fd_inode(me, u64::from(u32::MAX)), None);
    }
}
