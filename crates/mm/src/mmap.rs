//! Creating and destroying mappings: `get_unmapped_area` (placement),
//! `mmap`, `munmap`, `brk` and `mm_populate`. Mirrors mm/mmap.c and
//! arch/x86/kernel/sys_x86_64.c (x86-64 placement).
//!
//! Simplifications: the bottom-up free-gap search (legacy layout) walks the
//! VMA tree from the search limit (Linux keeps gap sizes in the maple tree;
//! the top-down search skips chunks by their gap sizes, see `vma_tree`);
//! hugetlb, DAX, mseal, noexec mounts and file `->mmap` hooks are not modelled, so ENODEV is never
//! returned; EOPNOTSUPP (not in our Errno) is reported as EINVAL.

use alloc::boxed::Box;
use alloc::sync::Arc;

use crate::errno::Errno;
use crate::file::{FileRef, OpenFile};
use crate::mm_types::{MmStruct, PageTableOps, VmFlags, Vma, RLIM_INFINITY};
use crate::types::{page_align, VirtAddr, PAGE_MASK, PAGE_SHIFT, PAGE_SIZE};

/// Page may not be accessed.
pub const PROT_NONE: u32 = 0;
/// Page may be read.
pub const PROT_READ: u32 = 0x1;
/// Page may be written.
pub const PROT_WRITE: u32 = 0x2;
/// Page may be executed.
pub const PROT_EXEC: u32 = 0x4;
/// Page may be used for atomic ops (ignored).
pub const PROT_SEM: u32 = 0x8;
/// mprotect: extend the change down to the start of a growsdown VMA.
pub const PROT_GROWSDOWN: u32 = 0x0100_0000;
/// mprotect: extend the change up (not on x86).
pub const PROT_GROWSUP: u32 = 0x0200_0000;

/// Share changes.
pub const MAP_SHARED: u32 = 0x01;
/// Changes are private.
pub const MAP_PRIVATE: u32 = 0x02;
/// Share changes and validate the extension flags.
pub const MAP_SHARED_VALIDATE: u32 = 0x03;
/// Zero memory under memory pressure.
pub const MAP_DROPPABLE: u32 = 0x08;
/// Mask for the mapping type.
pub const MAP_TYPE: u32 = 0x0f;
/// Interpret addr exactly.
pub const MAP_FIXED: u32 = 0x10;
/// Don't use a file.
pub const MAP_ANONYMOUS: u32 = 0x20;
/// Only give out 32-bit addresses.
pub const MAP_32BIT: u32 = 0x40;
/// Stack-like segment.
pub const MAP_GROWSDOWN: u32 = 0x100;
/// Ignored.
pub const MAP_DENYWRITE: u32 = 0x800;
/// Ignored.
pub const MAP_EXECUTABLE: u32 = 0x1000;
/// Lock the pages.
pub const MAP_LOCKED: u32 = 0x2000;
/// Don't check for reservations.
pub const MAP_NORESERVE: u32 = 0x4000;
/// Populate (prefault) page tables.
pub const MAP_POPULATE: u32 = 0x8000;
/// Do not block on IO.
pub const MAP_NONBLOCK: u32 = 0x10000;
/// Give out an address that is best suited for process/thread stacks.
pub const MAP_STACK: u32 = 0x20000;
/// Create a huge page mapping.
pub const MAP_HUGETLB: u32 = 0x40000;
/// Perform synchronous page faults for the mapping (DAX only).
pub const MAP_SYNC: u32 = 0x80000;
/// MAP_FIXED which doesn't unmap underlying mapping.
pub const MAP_FIXED_NOREPLACE: u32 = 0x100000;
/// For anonymous mmap, memory could be uninitialized.
pub const MAP_UNINITIALIZED: u32 = 0x4000000;

/// The flags that plain MAP_SHARED accepts and MAP_SHARED_VALIDATE checks
/// against (`LEGACY_MAP_MASK`, x86-64: includes MAP_32BIT and the huge sizes).
pub const LEGACY_MAP_MASK: u32 = MAP_SHARED
    | MAP_PRIVATE
    | MAP_FIXED
    | MAP_ANONYMOUS
    | MAP_DENYWRITE
    | MAP_EXECUTABLE
    | MAP_UNINITIALIZED
    | MAP_GROWSDOWN
    | MAP_LOCKED
    | MAP_NORESERVE
    | MAP_POPULATE
    | MAP_NONBLOCK
    | MAP_STACK
    | MAP_HUGETLB
    | MAP_32BIT
    | (21 << 26)
    | (30 << 26);

/// PMD_SIZE: the THP size on x86-64.
pub const PMD_SIZE: u64 = 2 << 20;

/// The shmem file behind a shared anonymous mapping (`shmem_zero_setup`):
/// maps prints it as `/dev/zero (deleted)` on device 00:01.
struct ShmemZero {
    ino: u64,
    size: u64,
}

impl OpenFile for ShmemZero {
    fn path(&self) -> &str {
        "/dev/zero (deleted)"
    }
    fn dev(&self) -> (u32, u32) {
        (0, 1)
    }
    fn ino(&self) -> u64 {
        self.ino
    }
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let avail = self.size.saturating_sub(offset).min(buf.len() as u64) as usize;
        buf[..avail].fill(0);
        Ok(avail)
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

/// `vm_unmapped_area` top-down: the highest `len`-byte gap in
/// `[low, high)` whose start satisfies the alignment, respecting the guard
/// gaps of GROWSDOWN VMAs.
fn unmapped_area_topdown(
    mm: &MmStruct,
    len: u64,
    low: VirtAddr,
    high: VirtAddr,
) -> Option<VirtAddr> {
    mm.vmas.gap_topdown(len, low, high, mm.stack_guard_gap)
}

/// `vm_unmapped_area` bottom-up: the lowest `len`-byte gap in `[low, high)`.
fn unmapped_area(mm: &MmStruct, len: u64, low: VirtAddr, high: VirtAddr) -> Option<VirtAddr> {
    let gap = mm.stack_guard_gap;
    let mut gap_start = low;
    if let Some(prev) = mm.prev_of(low.saturating_add(1)) {
        gap_start = gap_start.max(prev.end_gap());
    }
    for (_, v) in mm.vmas.range(low.saturating_add(1)..) {
        if gap_start >= high {
            return None;
        }
        let ge = v.start_gap(gap).min(high);
        if ge >= gap_start && ge - gap_start >= len {
            return Some(gap_start);
        }
        gap_start = gap_start.max(v.end_gap());
    }
    if high >= gap_start && high - gap_start >= len {
        return Some(gap_start);
    }
    None
}

/// x86-64 `arch_get_unmapped_area` (bottom-up, legacy layout or fallback).
fn arch_get_unmapped_area(
    mm: &MmStruct,
    addr: VirtAddr,
    len: u64,
    flags: u32,
) -> Result<VirtAddr, Errno> {
    if flags & MAP_FIXED != 0 {
        return Ok(addr);
    }
    // find_start_end: the end is task_size_64bit(addr > DEFAULT_MAP_WINDOW).
    let (begin, end) = if flags & MAP_32BIT != 0 {
        (VirtAddr(0x4000_0000), VirtAddr(0x8000_0000))
    } else {
        (mm.mmap_legacy_base, search_top(mm, addr))
    };
    if len > end.as_u64() {
        return Err(Errno::ENOMEM);
    }
    if addr != VirtAddr(0) {
        if let Some(a) = addr.page_up() {
            if end - len >= a && hint_valid(mm, a, len) && hint_fits(mm, a, len) {
                return Ok(a);
            }
        }
    }
    unmapped_area(mm, len, begin, end).ok_or(Errno::ENOMEM)
}

/// `task_size_64bit(addr > DEFAULT_MAP_WINDOW)`: the top of a search,
/// TASK_SIZE_MAX only for a hint above the window (5-level paging).
fn search_top(mm: &MmStruct, addr: VirtAddr) -> VirtAddr {
    if addr > mm.map_window {
        mm.task_size
    } else {
        mm.map_window
    }
}

/// `mmap_address_hint_valid`: the hint fits below TASK_SIZE and does not
/// straddle DEFAULT_MAP_WINDOW (with 4-level paging the window is TASK_SIZE,
/// so the second rule never fails).
fn hint_valid(mm: &MmStruct, addr: VirtAddr, len: u64) -> bool {
    if len > mm.task_size.as_u64() || mm.task_size - len < addr {
        return false;
    }
    (addr > mm.map_window) == (addr + len > mm.map_window)
}

/// True if `[addr, addr+len)` ends at or before the next VMA's `vm_start_gap`.
fn hint_fits(mm: &MmStruct, addr: VirtAddr, len: u64) -> bool {
    match mm.find_vma(addr) {
        None => true,
        Some(v) => addr + len <= v.start_gap(mm.stack_guard_gap),
    }
}

/// x86-64 `arch_get_unmapped_area_topdown`.
fn arch_get_unmapped_area_topdown(
    mm: &MmStruct,
    addr0: VirtAddr,
    len: u64,
    flags: u32,
) -> Result<VirtAddr, Errno> {
    if flags & MAP_FIXED != 0 {
        return Ok(addr0);
    }
    if flags & MAP_32BIT == 0 {
        if addr0 != VirtAddr(0) {
            let addr = addr0.page_down();
            if hint_valid(mm, addr, len) && hint_fits(mm, addr, len) {
                return Ok(addr);
            }
        }
        // A hint above DEFAULT_MAP_WINDOW opens the whole 5-level space:
        // high_limit += TASK_SIZE_MAX - DEFAULT_MAP_WINDOW.
        let mut high = mm.mmap_base;
        if addr0.page_down() > mm.map_window {
            high += mm.task_size - mm.map_window;
        }
        if let Some(a) = unmapped_area_topdown(mm, len, VirtAddr(PAGE_SIZE), high) {
            return Ok(a);
        }
    }
    arch_get_unmapped_area(mm, addr0, len, flags)
}

/// `mm_get_unmapped_area`: the layout's search.
fn mm_get_unmapped_area(
    mm: &MmStruct,
    addr: VirtAddr,
    len: u64,
    flags: u32,
) -> Result<VirtAddr, Errno> {
    if len > mm.task_size.as_u64() {
        return Err(Errno::ENOMEM);
    }
    if mm.legacy_layout {
        arch_get_unmapped_area(mm, addr, len, flags)
    } else {
        arch_get_unmapped_area_topdown(mm, addr, len, flags)
    }
}

/// `__thp_get_unmapped_area` (mm/huge_memory.c) with `size` = PMD_SIZE:
/// the placement of a mapping of file offset `off` (anonymous memory: 0)
/// that lets its 2 MiB-aligned stretches of the file sit on 2 MiB
/// boundaries. Nothing (`None`: the caller does the normal search) unless
/// `[off, off+len)` holds a whole aligned 2 MiB (`off_end - off_align >=
/// size`); otherwise search for `len + 2 MiB` and place the mapping in it
/// at the address congruent to `off` modulo 2 MiB, the highest such one
/// top-down (`ret + size` when the search result already is). A hint that
/// the padded search returns unchanged is kept as it is. Offsets are
/// `loff_t` arithmetic (wrapping, signed).
fn thp_get_unmapped_area(
    mm: &MmStruct,
    addr: VirtAddr,
    len: u64,
    off: i64,
    flags: u32,
) -> Option<VirtAddr> {
    let size = PMD_SIZE as i64;
    let off_end = off.wrapping_add(len as i64);
    let off_align = off.wrapping_add(size - 1) & !(size - 1);
    if off_end <= off_align || off_end.wrapping_sub(off_align) < size {
        return None;
    }
    let len_pad = len.wrapping_add(PMD_SIZE);
    if len_pad < len || off.wrapping_add(len_pad as i64) < off {
        return None;
    }
    let ret = mm_get_unmapped_area(mm, addr, len_pad, flags).ok()?;
    // `if (ret == addr) return addr;` and thp_get_unmapped_area_vmflags
    // takes 0 as "no result": a hint of 0 never ends here.
    if ret == addr {
        return (addr != VirtAddr(0)).then_some(addr);
    }
    let off_sub = (off as u64).wrapping_sub(ret.as_u64()) & (PMD_SIZE - 1);
    if !mm.legacy_layout && off_sub == 0 {
        return Some(ret + PMD_SIZE);
    }
    Some(ret + off_sub)
}

/// `__get_unmapped_area` at page offset 0; see [`get_unmapped_area_pgoff`].
pub fn get_unmapped_area(
    mm: &MmStruct,
    file: Option<&FileRef>,
    addr: VirtAddr,
    len: u64,
    flags: u32,
) -> Result<VirtAddr, Errno> {
    get_unmapped_area_pgoff(mm, file, addr, len, 0, flags)
}

/// `__get_unmapped_area` (mm/mmap.c): where a mapping of `len` bytes
/// (page-aligned) of `file` from page `pgoff` goes. Honours MAP_FIXED,
/// hints, the layout and MAP_32BIT, and the THP placement of Linux 6.18:
/// - a file whose file system's `get_unmapped_area` is
///   `thp_get_unmapped_area` ([`OpenFile::thp_get_unmapped_area`]: ext4)
///   goes through `__thp_get_unmapped_area` at file offset `pgoff << 12`:
///   2 MiB aligned relative to the file when the mapping covers a whole
///   aligned 2 MiB of it (a hint is kept if free);
/// - private anonymous memory with no hint and a length that is a
///   multiple of 2 MiB is 2 MiB aligned (6.13+; offset 0);
/// - anything else, including shared anonymous memory (shmem's
///   `get_unmapped_area`, with tmpfs `huge=never`), gets the plain search.
///
/// Checks the result against TASK_SIZE (ENOMEM), page alignment (EINVAL)
/// and mmap_min_addr (EPERM without CAP_SYS_RAWIO).
pub fn get_unmapped_area_pgoff(
    mm: &MmStruct,
    file: Option<&FileRef>,
    addr: VirtAddr,
    len: u64,
    pgoff: u64,
    flags: u32,
) -> Result<VirtAddr, Errno> {
    if len > mm.task_size.as_u64() {
        return Err(Errno::ENOMEM);
    }
    let shared_anon = file.is_none() && flags & MAP_SHARED != 0;
    let thp_file = file.is_some_and(|f| f.thp_get_unmapped_area());
    let thp_anon =
        file.is_none() && !shared_anon && addr == VirtAddr(0) && len.is_multiple_of(PMD_SIZE);
    let off = if file.is_some() {
        (pgoff << PAGE_SHIFT) as i64
    } else {
        0
    };
    let thp = if thp_file || thp_anon {
        thp_get_unmapped_area(mm, addr, len, off, flags)
    } else {
        None
    };
    let got = match thp {
        Some(a) => a,
        None => mm_get_unmapped_area(mm, addr, len, flags)?,
    };
    if got > mm.task_size - len {
        return Err(Errno::ENOMEM);
    }
    if !got.is_page_aligned() {
        return Err(Errno::EINVAL);
    }
    if got < mm.mmap_min_addr && !mm.cred.cap_sys_rawio {
        return Err(Errno::EPERM);
    }
    Ok(got)
}

/// `mmap(2)`: maps `len` bytes with `prot` and `flags` at or near `addr`,
/// from `file` at byte `offset` (ignored for MAP_ANONYMOUS). Errors as
/// Linux: EINVAL (len 0, unaligned offset or MAP_FIXED address, bad map
/// type, GROWSDOWN on shared), ENOMEM (length overflow, no space,
/// max_map_count, RLIMIT_AS/DATA), EOVERFLOW (pgoff overflow), EEXIST
/// (MAP_FIXED_NOREPLACE overlap), EPERM (MAP_LOCKED without mlock right,
/// below mmap_min_addr), EAGAIN (RLIMIT_MEMLOCK), EACCES (file modes),
/// EOVERFLOW (file offset + length beyond MAX_LFS_FILESIZE),
/// EBADF (no file and not anonymous).
#[allow(clippy::too_many_arguments)]
pub fn mmap(
    mm: &mut MmStruct,
    pt: &mut dyn PageTableOps,
    addr: VirtAddr,
    len: u64,
    prot: u32,
    flags: u32,
    file: Option<FileRef>,
    offset: u64,
) -> Result<VirtAddr, Errno> {
    if offset & !PAGE_MASK != 0 {
        return Err(Errno::EINVAL);
    }
    let file = if flags & MAP_ANONYMOUS != 0 {
        None
    } else {
        Some(file.ok_or(Errno::EBADF)?)
    };
    if flags & MAP_HUGETLB != 0 {
        // No hugetlbfs: a file is never hugetlbfs (EINVAL), and anonymous
        // huge pages behave as with nr_hugepages = 0 (ENOMEM).
        return Err(if file.is_some() {
            Errno::EINVAL
        } else {
            Errno::ENOMEM
        });
    }
    do_mmap(mm, pt, addr, len, prot, flags, file, offset >> PAGE_SHIFT)
}

#[allow(clippy::too_many_arguments)]
fn do_mmap(
    mm: &mut MmStruct,
    pt: &mut dyn PageTableOps,
    mut addr: VirtAddr,
    len: u64,
    prot: u32,
    mut flags: u32,
    file: Option<FileRef>,
    mut pgoff: u64,
) -> Result<VirtAddr, Errno> {
    if len == 0 {
        return Err(Errno::EINVAL);
    }
    if flags & MAP_FIXED_NOREPLACE != 0 {
        flags |= MAP_FIXED;
    }
    if flags & MAP_FIXED == 0 {
        addr = addr.page_down();
        if addr != VirtAddr(0) && addr < mm.mmap_min_addr {
            addr = mm.mmap_min_addr.page_up().unwrap_or(VirtAddr(PAGE_SIZE));
        }
    }
    let len = page_align(len).ok_or(Errno::ENOMEM)?;
    if pgoff.checked_add(len >> PAGE_SHIFT).is_none() {
        return Err(Errno::EOVERFLOW);
    }
    if mm.map_count() > mm.max_map_count {
        return Err(Errno::ENOMEM);
    }
    let mut vm_flags = VmFlags::from_prot(prot)
        | calc_vm_flag_bits(flags)
        | mm.def_flags
        | VmFlags::MAYREAD
        | VmFlags::MAYWRITE
        | VmFlags::MAYEXEC;
    let addr = get_unmapped_area_pgoff(mm, file.as_ref(), addr, len, pgoff, flags)?;
    if flags & MAP_FIXED_NOREPLACE != 0 && mm.find_vma_intersection(addr, addr + len).is_some() {
        return Err(Errno::EEXIST);
    }
    if flags & MAP_LOCKED != 0 && !mm.can_do_mlock() {
        return Err(Errno::EPERM);
    }
    if !mm.mlock_future_ok(vm_flags, len) {
        return Err(Errno::EAGAIN);
    }
    let map_type = flags & MAP_TYPE;
    if let Some(f) = &file {
        // file_mmap_ok: a regular file maps at most MAX_LFS_FILESIZE bytes.
        let maxsize = (i64::MAX as u64).checked_sub(len).ok_or(Errno::EOVERFLOW)?;
        if pgoff > maxsize >> PAGE_SHIFT {
            return Err(Errno::EOVERFLOW);
        }
        match map_type {
            MAP_SHARED | MAP_SHARED_VALIDATE => {
                if map_type == MAP_SHARED {
                    flags &= LEGACY_MAP_MASK;
                } else if flags & !LEGACY_MAP_MASK != 0 {
                    return Err(Errno::EINVAL); // EOPNOTSUPP in Linux
                }
                if prot & PROT_WRITE != 0 && !f.writable() {
                    return Err(Errno::EACCES);
                }
                vm_flags |= VmFlags::SHARED | VmFlags::MAYSHARE;
                if !f.writable() {
                    vm_flags = vm_flags.difference(VmFlags::MAYWRITE | VmFlags::SHARED);
                }
                check_private_file(f, vm_flags)?;
            }
            MAP_PRIVATE => check_private_file(f, vm_flags)?,
            _ => return Err(Errno::EINVAL),
        }
    } else {
        match map_type {
            MAP_SHARED | MAP_SHARED_VALIDATE => {
                if vm_flags.contains(VmFlags::GROWSDOWN) {
                    return Err(Errno::EINVAL);
                }
                pgoff = 0;
                vm_flags |= VmFlags::SHARED | VmFlags::MAYSHARE;
            }
            MAP_DROPPABLE | MAP_PRIVATE => {
                if map_type == MAP_DROPPABLE {
                    if flags & MAP_LOCKED != 0 || vm_flags.contains(VmFlags::GROWSDOWN) {
                        return Err(Errno::EINVAL);
                    }
                    vm_flags |= VmFlags::DROPPABLE | VmFlags::WIPEONFORK | VmFlags::DONTDUMP;
                }
                pgoff = addr.vpn();
            }
            _ => return Err(Errno::EINVAL),
        }
    }
    // do_mmap: MAP_NORESERVE is ignored under vm.overcommit_memory 2.
    if flags & MAP_NORESERVE != 0 && mm.overcommit.mode() != crate::util::OvercommitMode::Never {
        vm_flags |= VmFlags::NORESERVE;
    }
    let fixed = flags & MAP_FIXED != 0;
    let addr = mmap_region(mm, pt, file, addr, len, vm_flags, pgoff, fixed)?;
    if vm_flags.contains(VmFlags::LOCKED) || flags & (MAP_POPULATE | MAP_NONBLOCK) == MAP_POPULATE {
        let _ = mm_populate(mm, pt, addr, len, true);
    }
    Ok(addr)
}

/// The MAP_PRIVATE file checks (also applied to shared maps): the file must
/// be open for reading; a file mapping cannot grow down.
fn check_private_file(f: &FileRef, vm_flags: VmFlags) -> Result<(), Errno> {
    if !f.readable() {
        return Err(Errno::EACCES);
    }
    if vm_flags.contains(VmFlags::GROWSDOWN) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// `calc_vm_flag_bits` (x86-64, THP enabled).
fn calc_vm_flag_bits(flags: u32) -> VmFlags {
    let mut f = VmFlags::NONE;
    if flags & MAP_GROWSDOWN != 0 {
        f |= VmFlags::GROWSDOWN;
    }
    if flags & MAP_LOCKED != 0 {
        f |= VmFlags::LOCKED;
    }
    if flags & MAP_TYPE == MAP_SHARED_VALIDATE && flags & MAP_SYNC != 0 {
        f |= VmFlags::SYNC;
    }
    if flags & MAP_STACK != 0 {
        f |= VmFlags::NOHUGEPAGE;
    }
    f
}

/// `mmap_region`: replaces whatever is in `[addr, addr+len)` with a new VMA
/// and merges it with its neighbours. `fixed`: the range was given
/// (MAP_FIXED) rather than found free by `get_unmapped_area`.
#[allow(clippy::too_many_arguments)]
fn mmap_region(
    mm: &mut MmStruct,
    pt: &mut dyn PageTableOps,
    file: Option<FileRef>,
    addr: VirtAddr,
    len: u64,
    mut vm_flags: VmFlags,
    pgoff: u64,
    fixed: bool,
) -> Result<VirtAddr, Errno> {
    let end = addr + len;
    let pages = len >> PAGE_SHIFT;
    // A range the search found free (the usual case) has nothing to count,
    // to credit or to unmap; a fixed one takes one lookup to tell.
    debug_assert!(fixed || !mm.range_mapped(addr, end));
    let occupied = fixed && mm.range_mapped(addr, end);
    if !mm.may_expand_vm(vm_flags, pages) {
        let mapped = if occupied {
            mm.count_pages(addr, end)
        } else {
            0
        };
        if !mm.may_expand_vm(vm_flags, pages - mapped) {
            return Err(Errno::ENOMEM);
        }
    }
    // accountable_mapping: private writable memory without NORESERVE is
    // charged (less what it replaces) before anything is unmapped, so a
    // refused MAP_FIXED leaves the old mappings in place.
    if vm_flags.0 & (VmFlags::NORESERVE.0 | VmFlags::SHARED.0 | VmFlags::WRITE.0)
        == VmFlags::WRITE.0
    {
        let replaced = if occupied {
            mm.accounted_pages(addr, end)
        } else {
            0
        };
        let charged = pages - replaced;
        if charged > 0 {
            mm.vm_enough_memory(charged)?;
        }
        vm_flags |= VmFlags::ACCOUNT;
    }
    if occupied {
        mm.detach_range(pt, addr, end, true)?;
    }
    if vm_flags.contains(VmFlags::LOCKED) && vm_flags.intersects(VmFlags::SPECIAL) {
        vm_flags = vm_flags.difference(VmFlags::LOCKED_MASK);
    }
    vm_flags |= VmFlags::SOFTDIRTY;
    let mut vma = mm.vm_area_alloc(Vma::new_anon(addr, end, vm_flags, pgoff));
    match file {
        Some(f) => vma.file = Some(f),
        None if vm_flags.contains(VmFlags::MAYSHARE) => {
            let ino = mm.new_shmem_ino();
            vma.file = Some(Arc::new(ShmemZero { ino, size: len }));
            vma.shmem = true;
        }
        None => {}
    }
    mm.link_and_merge(vma);
    Ok(addr)
}

/// `munmap(2)`: EINVAL for an unaligned or out-of-range start or a zero
/// length; ENOMEM if splitting would exceed max_map_count. Unmapping a hole
/// succeeds.
pub fn munmap(
    mm: &mut MmStruct,
    pt: &mut dyn PageTableOps,
    addr: VirtAddr,
    len: u64,
) -> Result<(), Errno> {
    do_munmap(mm, pt, addr, len)
}

/// `do_vmi_munmap`.
pub(crate) fn do_munmap(
    mm: &mut MmStruct,
    pt: &mut dyn PageTableOps,
    start: VirtAddr,
    len: u64,
) -> Result<(), Errno> {
    if !start.is_page_aligned() || start > mm.task_size || len > mm.task_size - start {
        return Err(Errno::EINVAL);
    }
    let end = start + page_align(len).ok_or(Errno::EINVAL)?;
    if end == start {
        return Err(Errno::EINVAL);
    }
    mm.detach_range(pt, start, end, true)?;
    Ok(())
}

/// `brk(2)`: moves the program break. Returns the new break on success and
/// the old one on any failure (below start_brk, RLIMIT_DATA, collision with
/// a mapping or its guard gap, RLIMIT_AS, TASK_SIZE, mmap_min_addr,
/// RLIMIT_MEMLOCK under mlockall(MCL_FUTURE)). The growth extends the previous
/// brk VMA when compatible; with mlockall(MCL_FUTURE) it is populated.
/// Simplification: min_brk is start_brk (no CONFIG_COMPAT_BRK).
pub fn brk(mm: &mut MmStruct, pt: &mut dyn PageTableOps, brk: VirtAddr) -> VirtAddr {
    let origbrk = mm.brk;
    if brk < mm.start_brk || brk > mm.task_size {
        return origbrk;
    }
    let rlim = mm.rlimits.data;
    if rlim < RLIM_INFINITY {
        let data = mm.end_data.as_u64().saturating_sub(mm.start_data.as_u64());
        let want = (brk - mm.start_brk).saturating_add(data);
        if want > rlim {
            return origbrk;
        }
    }
    let (Some(newbrk), Some(oldbrk)) = (brk.page_up(), mm.brk.page_up()) else {
        return origbrk;
    };
    if oldbrk == newbrk {
        mm.brk = brk;
        return brk;
    }
    if brk <= mm.brk {
        // Shrink: only the brk VMA may be cut.
        let ok = matches!(
            mm.find_vma_intersection(newbrk, oldbrk),
            Some(v) if v.start < oldbrk
        );
        mm.brk = brk;
        if !ok || do_munmap(mm, pt, newbrk, oldbrk - newbrk).is_err() {
            mm.brk = origbrk;
            return origbrk;
        }
        return brk;
    }
    // Growth must leave one page plus the guard gap before the next VMA.
    let limit = newbrk
        .saturating_add(PAGE_SIZE)
        .saturating_add(mm.stack_guard_gap);
    if let Some(next) = mm.find_vma_intersection(oldbrk, limit) {
        if newbrk + PAGE_SIZE > next.start_gap(mm.stack_guard_gap) {
            return origbrk;
        }
    }
    // check_brk_limits: the range must be mappable (TASK_SIZE, mmap_min_addr)
    // and fit RLIMIT_MEMLOCK under mlockall(MCL_FUTURE).
    if get_unmapped_area(mm, None, oldbrk, newbrk - oldbrk, MAP_FIXED).is_err()
        || !mm.mlock_future_ok(mm.def_flags, newbrk - oldbrk)
    {
        return origbrk;
    }
    if do_brk_flags(mm, oldbrk, newbrk - oldbrk).is_err() {
        return origbrk;
    }
    mm.brk = brk;
    if mm.def_flags.contains(VmFlags::LOCKED) {
        let _ = mm_populate(mm, pt, oldbrk, newbrk - oldbrk, true);
    }
    brk
}

/// `do_brk_flags`: adds `[addr, addr+len)` as anonymous rw memory, extending
/// the brk VMA below it (one starting at or above start_brk) when it can.
fn do_brk_flags(mm: &mut MmStruct, addr: VirtAddr, len: u64) -> Result<(), Errno> {
    let flags = VmFlags::DATA_DEFAULT | VmFlags::ACCOUNT | mm.def_flags;
    if !mm.may_expand_vm(flags, len >> PAGE_SHIFT) || mm.map_count() > mm.max_map_count {
        return Err(Errno::ENOMEM);
    }
    mm.vm_enough_memory(len >> PAGE_SHIFT)?;
    let vma = Vma::new_anon(addr, addr + len, flags | VmFlags::SOFTDIRTY, addr.vpn());
    let vma = mm.vm_area_alloc(vma);
    mm.link_vma(vma);
    if mm
        .prev_of(addr)
        .is_some_and(|p| p.end == addr && p.start >= mm.start_brk)
    {
        mm.try_merge_at(addr);
    }
    Ok(())
}

/// `__mm_populate`: faults in every VMA of `[start, start+len)` (skipping
/// VM_IO/PFNMAP, LOCKONFAULT and PROT_NONE VMAs). Private writable VMAs are
/// populated for writing and get an anon_vma. Stops at a hole. With
/// `ignore_errors`, a failing VMA is skipped.
pub fn mm_populate(
    mm: &mut MmStruct,
    pt: &mut dyn PageTableOps,
    start: VirtAddr,
    len: u64,
    ignore_errors: bool,
) -> Result<(), Errno> {
    let end = start.saturating_add(len);
    let mut nstart = start;
    while nstart < end {
        let Some(v) = mm.find_vma_intersection(nstart, end) else {
            break;
        };
        let nend = end.min(v.end);
        let key = v.start;
        nstart = nstart.max(key);
        if !v.flags.intersects(VmFlags::IO | VmFlags::PFNMAP) {
            if let Err(e) = populate_vma_range(mm, pt, key, nstart, nend) {
                if !ignore_errors {
                    return Err(e);
                }
            }
        }
        nstart = nend;
    }
    Ok(())
}

/// `populate_vma_page_range` for the VMA starting at `key`.
pub(crate) fn populate_vma_range(
    mm: &mut MmStruct,
    pt: &mut dyn PageTableOps,
    key: VirtAddr,
    start: VirtAddr,
    end: VirtAddr,
) -> Result<(), Errno> {
    let Some(v) = mm.vmas.get(&key) else {
        return Ok(());
    };
    if v.flags.contains(VmFlags::LOCKONFAULT) || !v.flags.intersects(VmFlags::ACCESS_FLAGS) {
        return Ok(());
    }
    let write = v.flags.0 & (VmFlags::WRITE.0 | VmFlags::SHARED.0) == VmFlags::WRITE.0;
    fault_range(mm, pt, key, start, end, write)
}

/// Faults `[start, end)` of the VMA at `key` through the page tables, giving
/// a private VMA its anon_vma first on a write.
pub(crate) fn fault_range(
    mm: &mut MmStruct,
    pt: &mut dyn PageTableOps,
    key: VirtAddr,
    start: VirtAddr,
    end: VirtAddr,
    write: bool,
) -> Result<(), Errno> {
    if write {
        mm.anon_vma_prepare(key);
    }
    let Some(v) = mm.vmas.get(&key) else {
        return Ok(());
    };
    pt.populate(v, start, end, write)
}

/// `expand_stack` / `expand_downwards`: grows the VM_GROWSDOWN VMA above
/// `addr` down to the page of `addr` (the fault path calls this for an
/// access below the stack). Errors: EFAULT if the VMA above `addr` does not
/// grow down (or there is none), EPERM below mmap_min_addr, ENOMEM if the
/// growth would come within stack_guard_gap of an accessible VMA below, or
/// exceed RLIMIT_STACK, RLIMIT_AS or RLIMIT_MEMLOCK. Succeeds at once if a
/// VMA already contains `addr`.
pub fn expand_stack(mm: &mut MmStruct, addr: VirtAddr) -> Result<(), Errno> {
    let Some(vma) = mm.find_vma(addr) else {
        return Err(Errno::EFAULT);
    };
    if vma.start <= addr {
        return Ok(());
    }
    if !vma.flags.contains(VmFlags::GROWSDOWN) {
        return Err(Errno::EFAULT);
    }
    let address = addr.page_down();
    if address < mm.mmap_min_addr {
        return Err(Errno::EPERM);
    }
    let (key, end, flags, pgoff) = (vma.start, vma.end, vma.flags, vma.pgoff);
    if let Some(prev) = mm.prev_of(key) {
        if !prev.flags.contains(VmFlags::GROWSDOWN)
            && prev.flags.intersects(VmFlags::ACCESS_FLAGS)
            && address - prev.end < mm.stack_guard_gap
        {
            return Err(Errno::ENOMEM);
        }
    }
    let grow = (key - address) >> PAGE_SHIFT;
    if grow > pgoff {
        return Ok(());
    }
    if !mm.may_expand_vm(flags, grow)
        || end - address > mm.rlimits.stack
        || !mm.mlock_future_ok(flags, grow << PAGE_SHIFT)
    {
        return Err(Errno::ENOMEM);
    }
    // acct_stack_growth charges the growth.
    mm.vm_enough_memory(grow)?;
    mm.anon_vma_prepare(key);
    let mut v = mm.unlink_vma(key).ok_or(Errno::EFAULT)?;
    v.start = address;
    v.pgoff -= grow;
    mm.link_vma(v);
    Ok(())
}

/// `vma_needs_copy`: must fork copy this VMA's page tables? Only where the
/// child cannot refault the contents: anonymous pages (an anon_vma),
/// PFNMAP/MIXEDMAP. WIPEONFORK VMAs start empty in the child.
pub fn vma_needs_copy(vma: &Vma) -> bool {
    if vma.flags.contains(VmFlags::WIPEONFORK) {
        return false;
    }
    vma.flags.intersects(VmFlags::PFNMAP | VmFlags::MIXEDMAP) || vma.anon_vma.is_some()
}

impl MmStruct {
    /// `dup_mmap`: the child's address space at fork, VMA side only (the
    /// page-table glue then copies the ptes of every VMA for which
    /// [`vma_needs_copy`] holds on the parent's VMA). VM_DONTCOPY VMAs are
    /// left out; the child's VMAs lose VM_LOCKED/LOCKONFAULT (locked_vm 0),
    /// WIPEONFORK VMAs get no anon_vma, and the others get a child anon_vma
    /// (one per parent anon_vma) whose chain is not singular. def_flags keep
    /// only VM_NOHUGEPAGE (`VM_INIT_DEF_MASK`); RSS counters start at 0.
    /// The child's VM_ACCOUNT VMAs are charged to the machine's commitment
    /// (Linux charges each with `security_vm_enough_memory_mm(oldmm, len)`);
    /// ENOMEM, and no child, if the overcommit policy refuses. One check of
    /// the sum decides as the per-VMA checks would: the commitment only
    /// grows along the way, so the last check is the strictest.
    pub fn dup_mmap(&mut self) -> Result<MmStruct, crate::errno::Errno> {
        let charge: u64 = self
            .vmas
            .values()
            .filter(|v| v.flags.contains(VmFlags::ACCOUNT) && !v.flags.contains(VmFlags::DONTCOPY))
            .map(|v| v.pages())
            .sum();
        if charge > 0 {
            self.vm_enough_memory(charge)?;
        }
        let mut child = self.clone();
        child.vmas.clear();
        child.objects = Default::default();
        child.link = None;
        child.rss = alloc::sync::Arc::new(crate::rmap::RssStat::default());
        child.locked_vm = 0;
        child.pinned_vm = 0;
        child.pgtables_bytes = 0;
        child.def_flags = self.def_flags & VmFlags::NOHUGEPAGE;
        let keys: alloc::vec::Vec<VirtAddr> = self.vmas.keys().copied().collect();
        for k in keys {
            let v = &self.vmas[&k];
            if v.flags.contains(VmFlags::DONTCOPY) {
                child.vm_stat_account(v.flags, -(v.pages() as i64));
                continue;
            }
            let mut c = v.clone();
            c.flags = c.flags.difference(VmFlags::LOCKED_MASK);
            if c.flags.contains(VmFlags::WIPEONFORK) {
                c.anon_vma = None;
                c.anon_parents.clear();
            } else if let Some(parent) = v.anon_vma {
                // anon_vma_fork: the child's VMA links every anon_vma of
                // the parent's chain and gets one of its own.
                c.anon_parents = v.anon_chain().collect();
                c.anon_vma = Some(self.new_anon_vma(Some(parent)));
            }
            let _ = k;
            child.tree_insert(Box::new(c));
        }
        // Counters other than locked_vm are inherited, minus DONTCOPY VMAs.
        child.next_anon_vma = self.next_anon_vma;
        child.overcommit.vm_acct_memory(charge as i64);
        Ok(child)
    }
}
