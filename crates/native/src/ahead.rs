//! Fault-ahead: fewer stops for a program that writes fresh anonymous
//! memory page after page (a growing heap), with every fault still taken
//! and counted by lmm's fault handler, one per page, as Linux takes them.
//!
//! At a write fault on a fresh page of a private anonymous mapping whose
//! page below is present (the program is filling it in order), lmm hands
//! out a block of up to 16 consecutive zeroed frames for the faulting page
//! and those after it ([`machine::Machine::give_ahead`]); the fault takes
//! the first, and the whole block is mapped in the stub writable with one
//! mmap. The program then writes the next pages without a stop. The host
//! tells lmm which it touched, and how: the block is registered with a
//! userfaultfd in asynchronous write-protect mode (`UFFD_FEATURE_WP_ASYNC`,
//! Linux 6.7), whose `PAGEMAP_SCAN` of the stub's pagemap reports each
//! page present (touched) and written; the registration also turns the
//! host's fault-around off for the block, so only touched pages become
//! present. At the program's next stop lmm takes, for each touched page,
//! the fault Linux took: a write fault, which takes the page's frame with
//! what the program wrote in it, or for a page only read a read fault,
//! which maps the zero page as Linux's does (its frame is given back and
//! the stub's mirror becomes the zero page, read-only, so that a later
//! write faults again). Pages never touched stay handed out until a
//! system call of lmm's changes the address space ([`Run::drop_ahead`]).
//!
//! Simplifications: the faults of the pages touched between two stops are
//! taken at the second stop, in address order, not at the touch (their
//! count is Linux's, but a page read and then written between two stops
//! counts one write fault where Linux counts a read fault and a write
//! fault); handed-out frames count as allocated (pgalloc, MemFree) from
//! the hand-out. Only a process with one thread, and only while every zone
//! is well above its high watermark, gets frames ahead (no reclaim can
//! start because of them), and a host without the userfaultfd features
//! gets none.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use mm::mm_types::VmFlags;
use mm::types::VirtAddr;

use crate::ptrace::MEMFD_SLOT;
use crate::{Mirror, Run};

/// Pages of the largest block handed out at a fault (order 4: 64 KiB).
const BLOCK_ORDER: u8 = 4;
/// Free pages every zone must keep above its high watermark for a block.
const ROOM: u64 = 256;

/// `_IOWR(0xAA, 0x3F, struct uffdio_api)`.
const UFFDIO_API: u64 = 0xc018_aa3f;
/// `_IOWR(0xAA, 0x00, struct uffdio_register)`.
const UFFDIO_REGISTER: u64 = 0xc020_aa00;
/// `_IOWR(0xAA, 0x06, struct uffdio_writeprotect)`.
const UFFDIO_WRITEPROTECT: u64 = 0xc018_aa06;
/// `_IOWR('f', 16, struct pm_scan_arg)`.
const PAGEMAP_SCAN: u64 = 0xc060_6610;
/// `UFFD_API`.
const UFFD_API: u64 = 0xaa;
/// `UFFD_FEATURE_WP_HUGETLBFS_SHMEM | UFFD_FEATURE_WP_UNPOPULATED |
/// UFFD_FEATURE_WP_ASYNC`: write-protect tracking of shared memory (the
/// RAM memfd), resolved by the kernel without a message.
const UFFD_FEATURES: u64 = (1 << 12) | (1 << 13) | (1 << 15);
/// `UFFDIO_REGISTER_MODE_WP`.
const REGISTER_MODE_WP: u64 = 1 << 1;
/// `UFFDIO_WRITEPROTECT_MODE_WP`.
const WRITEPROTECT_MODE_WP: u64 = 1 << 0;
/// `PAGE_IS_WRITTEN` of `PAGEMAP_SCAN`'s categories.
const PAGE_IS_WRITTEN: u64 = 1 << 1;
/// `PAGE_IS_PRESENT`.
const PAGE_IS_PRESENT: u64 = 1 << 3;

/// What a process needs to get frames ahead: a userfaultfd the stub made
/// (its mm's), held by lmm, and the stub's pagemap.
pub(crate) struct Tracker {
    /// The userfaultfd, in lmm's descriptor table.
    uffd: OwnedFd,
    /// `/proc/STUB/pagemap`.
    pagemap: File,
}

/// `struct page_region` of `PAGEMAP_SCAN`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct PageRegion {
    start: u64,
    end: u64,
    categories: u64,
}

/// An ioctl of lmm's on `fd` with the argument struct `arg`; the result
/// or the error.
fn ioctl<T>(fd: &impl AsRawFd, req: u64, arg: &mut T) -> std::io::Result<i64> {
    // SAFETY: `arg` is the struct the request reads and writes, owned by
    // the caller for the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req as _, arg as *mut T) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(r as i64)
}

impl Tracker {
    /// Registers `[start, start + len)` of the stub (one mapping) with the
    /// userfaultfd and write-protects `[protect, start + len)`.
    fn track(&self, start: u64, len: u64, protect: u64) -> std::io::Result<()> {
        let mut reg = [start, len, REGISTER_MODE_WP, 0u64];
        ioctl(&self.uffd, UFFDIO_REGISTER, &mut reg)?;
        let mut wp = [protect, start + len - protect, WRITEPROTECT_MODE_WP];
        ioctl(&self.uffd, UFFDIO_WRITEPROTECT, &mut wp)?;
        Ok(())
    }

    /// The pages of `[start, end)` the stub has touched, each with whether
    /// it was written.
    fn touched(&self, start: u64, end: u64) -> std::io::Result<Vec<(u64, bool)>> {
        let mut regions = [PageRegion::default(); 64];
        let mut out = Vec::new();
        let mut at = start;
        while at < end {
            let mut arg = [0u64; 12];
            arg[0] = 96;
            arg[2] = at;
            arg[3] = end;
            arg[5] = regions.as_mut_ptr() as u64;
            arg[6] = regions.len() as u64;
            arg[10] = PAGE_IS_PRESENT | PAGE_IS_WRITTEN;
            arg[11] = PAGE_IS_PRESENT | PAGE_IS_WRITTEN;
            let n = ioctl(&self.pagemap, PAGEMAP_SCAN, &mut arg)? as usize;
            for r in &regions[..n.min(regions.len())] {
                if r.categories & PAGE_IS_PRESENT == 0 {
                    continue;
                }
                let written = r.categories & PAGE_IS_WRITTEN != 0;
                let mut va = r.start;
                while va < r.end {
                    out.push((va, written));
                    va += 4096;
                }
            }
            // walk_end: where the scan stopped (the buffer full).
            if arg[4] <= at || arg[4] >= end {
                break;
            }
            at = arg[4];
        }
        Ok(out)
    }
}

impl Run<'_> {
    /// The current process's tracker, made at its first use: a
    /// userfaultfd made in the stub and taken into lmm (pidfd_getfd).
    /// `None` where the host cannot (then never tried again for it).
    fn tracker(&mut self) -> Option<&Tracker> {
        let pid = self.cur.pid;
        if !self.trackers.contains_key(&pid) {
            let t = self.make_tracker();
            self.trackers.insert(pid, t);
        }
        self.trackers.get(&pid).and_then(|t| t.as_ref())
    }

    /// [`Run::tracker`]'s work.
    fn make_tracker(&mut self) -> Option<Tracker> {
        let stub = &mut self.cur.stub;
        let flags = (libc::O_CLOEXEC | libc::O_NONBLOCK) as u64;
        let fd = stub
            .syscall(libc::SYS_userfaultfd, [flags, 0, 0, 0, 0, 0])
            .ok()?;
        if fd < 0 {
            return None;
        }
        // SAFETY: raw system calls with integer arguments; the descriptors
        // they return are owned at once.
        let own = unsafe {
            let pidfd = libc::syscall(libc::SYS_pidfd_open, stub.tgid, 0);
            let got = if pidfd >= 0 {
                let got = libc::syscall(libc::SYS_pidfd_getfd, pidfd, fd, 0);
                libc::close(pidfd as i32);
                got
            } else {
                -1
            };
            (got >= 0).then(|| OwnedFd::from_raw_fd(got as i32))
        };
        let _ = stub.syscall(libc::SYS_close, [fd as u64, 0, 0, 0, 0, 0]);
        let uffd = own?;
        let mut api = [UFFD_API, UFFD_FEATURES, 0u64];
        ioctl(&uffd, UFFDIO_API, &mut api).ok()?;
        let pagemap = File::open(format!("/proc/{}/pagemap", stub.tgid)).ok()?;
        Some(Tracker { uffd, pagemap })
    }

    /// Before a fault at `addr` with `write`: hands out a block of frames
    /// for it and the pages after it, when the program is filling fresh
    /// anonymous memory in order (see the module's text); the block's
    /// first page, its order and its first frame's physical address.
    pub(crate) fn give_ahead(&mut self, addr: u64, write: bool) -> Option<(u64, u8, u64)> {
        use mm::mmzone::Wmark;
        if !write || !self.fault_ahead {
            return None;
        }
        let page = addr & !4095;
        let p = self.m.process(self.cur.pid)?;
        if p.threads.len() != 1 {
            return None;
        }
        let vma = p.mm.vma_lookup(VirtAddr(page))?;
        let bad = VmFlags::SHARED | VmFlags::EXEC | VmFlags::LOCKED | VmFlags::HUGEPAGE;
        if vma.file.is_some()
            || vma.special.is_some()
            || vma.shmem
            || !vma.flags.contains(VmFlags::WRITE)
            || vma.flags.intersects(bad)
        {
            return None;
        }
        let empty = |va: u64| {
            p.pt.lookup(VirtAddr(va))
                .is_none_or(|(pte, _)| pte.is_none())
        };
        let below = page.checked_sub(4096)?;
        if !empty(page) || empty(below) || below < vma.start.0 {
            return None;
        }
        let table_end = (page | ((2 << 20) - 1)) + 1;
        let limit = vma.end.0.min(table_end);
        let mut order = BLOCK_ORDER;
        while order > 0 && page + (4096 << order) > limit {
            order -= 1;
        }
        let n = 1u64 << order;
        if order == 0 || (1..n).any(|i| !empty(page + 4096 * i)) {
            return None;
        }
        let roomy = self
            .m
            .pa()
            .zones()
            .filter(|z| z.is_populated())
            .all(|z| z.free_pages() > z.wmark(Wmark::High).saturating_add(ROOM + n));
        if !roomy || self.others.values().any(|t| t.pid == self.cur.pid) {
            return None;
        }
        self.tracker()?;
        let phys = self.m.give_ahead(self.cur.pid, page, order)?;
        Some((page, order, phys))
    }

    /// After the fault at the first page of a block [`Run::give_ahead`]
    /// handed out: maps the block in the stub (one mmap, writable) and
    /// starts tracking the pages after the first. If the fault did not
    /// take the first frame, or the host refuses, the block is given back
    /// and false is returned (the fault is mirrored as any other).
    pub(crate) fn map_ahead(&mut self, page: u64, order: u8, phys: u64) -> Result<bool, String> {
        let pid = self.cur.pid;
        let len = 4096u64 << order;
        let took = self
            .m
            .process(pid)
            .is_some_and(|p| !p.ahead.contains_key(&VirtAddr(page)));
        let rw = libc::PROT_READ | libc::PROT_WRITE;
        let mapped = took
            && self
                .cur
                .stub
                .syscall(
                    libc::SYS_mmap,
                    [
                        page,
                        len,
                        rw as u64,
                        (libc::MAP_SHARED | libc::MAP_FIXED) as u64,
                        MEMFD_SLOT as u64,
                        phys,
                    ],
                )
                .map_err(|e| format!("lmm native: {e}"))?
                == page as i64;
        let tracked = mapped
            && self
                .trackers
                .get(&pid)
                .and_then(|t| t.as_ref())
                .is_some_and(|t| t.track(page, len, page + 4096).is_ok());
        {
            let mut mirrors = self.cur.mirrors();
            for s in crate::mirror::overlapping(&mirrors, page, page + len) {
                mirrors.remove(&s.0);
            }
            if mapped {
                for i in 0..(1u64 << order) {
                    let mir = Mirror {
                        phys: phys + 4096 * i,
                        span: 4096,
                        prot: rw,
                    };
                    mirrors.insert(page + 4096 * i, mir);
                }
            }
        }
        if mapped {
            self.out.mirrors += 1;
        }
        if !tracked {
            // The pages after the first go back, and leave the stub.
            for i in 1..(1u64 << order) {
                self.m.take_back_ahead(pid, page + 4096 * i);
            }
            if mapped {
                self.unmirror(page + 4096, len - 4096)?;
            }
            self.m.take_back_ahead(pid, page);
            self.trackers.insert(pid, None);
            return Ok(false);
        }
        Ok(true)
    }

    /// Takes the faults of the pages handed out ahead that the current
    /// process has touched since its last stop (see the module's text).
    /// Made at each stop before anything else looks at its memory.
    pub(crate) fn settle_ahead(&mut self) -> Result<(), String> {
        let pid = self.cur.pid;
        let runs = self.ahead_runs();
        if runs.is_empty() {
            return Ok(());
        }
        let Some(Some(t)) = self.trackers.get(&pid) else {
            return Ok(());
        };
        let mut touched = Vec::new();
        for (s, e) in runs {
            touched.extend(
                t.touched(s, e)
                    .map_err(|e| format!("lmm native: PAGEMAP_SCAN of the stub: {e}"))?,
            );
        }
        for (va, written) in touched {
            let handed = self
                .m
                .process(pid)
                .is_some_and(|p| p.ahead.contains_key(&VirtAddr(va)));
            if !handed {
                continue;
            }
            let access = if written {
                machine::mmu::Access::Write
            } else {
                // Read only: Linux mapped the zero page.
                self.m.take_back_ahead(pid, va);
                machine::mmu::Access::Read
            };
            let t0 = std::time::Instant::now();
            let r = self.m.touch(pid, va, 1, access);
            self.out.fault_time += t0.elapsed();
            if r.is_err() {
                return Err(format!(
                    "lmm native: the fault the program took at {va:#x} ahead failed"
                ));
            }
            if !written {
                self.mirror(va, true)?;
            }
        }
        Ok(())
    }

    /// Settles the current process's pages handed out ahead, then gives
    /// back the untouched ones and unmaps them from the stub: before a
    /// system call of lmm's changes its address space (mmap, munmap, brk,
    /// fork, exec, exit...).
    pub(crate) fn drop_ahead(&mut self) -> Result<(), String> {
        self.settle_ahead()?;
        let pid = self.cur.pid;
        for (s, e) in self.ahead_runs() {
            for va in (s..e).step_by(4096) {
                self.m.take_back_ahead(pid, va);
            }
            self.unmirror(s, e - s)?;
        }
        Ok(())
    }

    /// The runs of consecutive pages handed out ahead to the current
    /// process, each `[start, end)`.
    fn ahead_runs(&self) -> Vec<(u64, u64)> {
        let mut runs: Vec<(u64, u64)> = Vec::new();
        if let Some(p) = self.m.process(self.cur.pid) {
            for va in p.ahead.keys().map(|v| v.0) {
                match runs.last_mut() {
                    Some((_, e)) if *e == va => *e = va + 4096,
                    _ => runs.push((va, va + 4096)),
                }
            }
        }
        runs
    }
}
