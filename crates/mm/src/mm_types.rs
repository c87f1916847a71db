//! The address space of a process: `MmStruct` (Linux `struct mm_struct`),
//! `Vma` (`struct vm_area_struct`), the `VmFlags` bits and the
//! [`PageTableOps`] boundary to the page tables. Mirrors
//! include/linux/mm_types.h and the VM_* flags of include/linux/mm.h (x86-64).
//!
//! Simplifications: the VMA tree is a chunked sorted list keyed by
//! `vm_start` (`vma_tree`: O(log n) lookups, like the maple tree's). Every
//! insertion into and removal from the tree goes through
//! `MmStruct::tree_insert` / `MmStruct::tree_remove`,
//! which keep the machine-wide reverse map ([`crate::rmap::Rmap`]) exact
//! when the mm is attached to one.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use core::fmt;

use crate::arch::layout::X86_64_L5_TASK_SIZE_MAX;
use crate::errno::Errno;
use crate::file::FileRef;
use crate::filemap::PageCache;
use crate::rmap::{MmEntry, MmId, Rmap, RssStat};
use crate::types::{VirtAddr, PAGE_SHIFT, PAGE_SIZE};

/// VMA flags (`vm_flags_t`), with Linux's bit values on x86-64.
#[derive(Copy, Clone, Default, PartialEq, Eq, Hash)]
pub struct VmFlags(pub u64);

bitflags::bitflags! {
    /// The `VM_*` bits and masks of include/linux/mm.h. Every bit is known
    /// (`_ = !0`), so flags lmm does not name survive `!` and `&`.
    impl VmFlags: u64 {
        /// `VM_NONE`.
        const NONE = 0;
        /// `VM_READ`.
        const READ = 0x1;
        /// `VM_WRITE`.
        const WRITE = 0x2;
        /// `VM_EXEC`.
        const EXEC = 0x4;
        /// `VM_SHARED`.
        const SHARED = 0x8;
        /// `VM_MAYREAD`.
        const MAYREAD = 0x10;
        /// `VM_MAYWRITE`.
        const MAYWRITE = 0x20;
        /// `VM_MAYEXEC`.
        const MAYEXEC = 0x40;
        /// `VM_MAYSHARE`.
        const MAYSHARE = 0x80;
        /// `VM_GROWSDOWN`.
        const GROWSDOWN = 0x100;
        /// `VM_UFFD_MISSING`.
        const UFFD_MISSING = 0x200;
        /// `VM_PFNMAP`.
        const PFNMAP = 0x400;
        /// `VM_UFFD_WP`.
        const UFFD_WP = 0x1000;
        /// `VM_LOCKED`.
        const LOCKED = 0x2000;
        /// `VM_IO`.
        const IO = 0x4000;
        /// `VM_SEQ_READ`.
        const SEQ_READ = 0x8000;
        /// `VM_RAND_READ`.
        const RAND_READ = 0x10000;
        /// `VM_DONTCOPY`.
        const DONTCOPY = 0x20000;
        /// `VM_DONTEXPAND`.
        const DONTEXPAND = 0x40000;
        /// `VM_LOCKONFAULT`.
        const LOCKONFAULT = 0x80000;
        /// `VM_ACCOUNT`.
        const ACCOUNT = 0x100000;
        /// `VM_NORESERVE`.
        const NORESERVE = 0x200000;
        /// `VM_HUGETLB`.
        const HUGETLB = 0x400000;
        /// `VM_SYNC`.
        const SYNC = 0x800000;
        /// VM_ARCH_1: VM_PAT on x86.
        const ARCH_1 = 0x1000000;
        /// `VM_WIPEONFORK`.
        const WIPEONFORK = 0x2000000;
        /// `VM_DONTDUMP`.
        const DONTDUMP = 0x4000000;
        /// `VM_SOFTDIRTY`.
        const SOFTDIRTY = 0x8000000;
        /// `VM_MIXEDMAP`.
        const MIXEDMAP = 0x10000000;
        /// `VM_HUGEPAGE`.
        const HUGEPAGE = 0x20000000;
        /// `VM_NOHUGEPAGE`.
        const NOHUGEPAGE = 0x40000000;
        /// `VM_MERGEABLE`.
        const MERGEABLE = 0x80000000;
        /// VM_HIGH_ARCH_5: shadow stack on x86-64.
        const SHADOW_STACK = 1 << 37;
        /// `VM_UFFD_MINOR`.
        const UFFD_MINOR = 1 << 38;
        /// `VM_DROPPABLE`.
        const DROPPABLE = 1 << 40;
        /// `VM_SEALED`.
        const SEALED = 1 << 42;
        /// VM_STACK: the flag that marks stacks (GROWSDOWN on x86).
        const STACK = Self::GROWSDOWN.bits();
        /// VM_ACCESS_FLAGS.
        const ACCESS_FLAGS = 0x7;
        /// VM_LOCKED_MASK.
        const LOCKED_MASK = 0x2000 | 0x80000;
        /// VM_SPECIAL: never merged, never mlocked, never expanded by mremap.
        const SPECIAL = 0x4000 | 0x40000 | 0x400 | 0x10000000;
        /// VM_DATA_DEFAULT_FLAGS on x86-64 (no READ_IMPLIES_EXEC personality).
        const DATA_DEFAULT = 0x1 | 0x2 | 0x10 | 0x20 | 0x40;
        /// VM_STACK_FLAGS = VM_STACK | VM_STACK_DEFAULT_FLAGS | VM_ACCOUNT.
        const STACK_FLAGS = 0x100 | 0x1 | 0x2 | 0x10 | 0x20 | 0x40 | 0x100000;
        const _ = !0;
    }
}

impl VmFlags {
    /// `calc_vm_prot_bits`: PROT_READ/WRITE/EXEC to VM_READ/WRITE/EXEC.
    pub const fn from_prot(prot: u32) -> VmFlags {
        VmFlags((prot & 0x7) as u64)
    }
}

impl fmt::Debug for VmFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VmFlags({:#x})", self.0)
    }
}

/// Identity of an anon_vma. Only equality matters: it decides whether two
/// VMAs may merge (`is_mergeable_anon_vma`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AnonVmaId(pub u64);

/// A virtual memory area (`struct vm_area_struct`): `[start, end)` with one
/// set of flags, one backing object and one offset into it.
#[derive(Clone)]
pub struct Vma {
    /// First byte (`vm_start`), page-aligned.
    pub start: VirtAddr,
    /// One past the last byte (`vm_end`), page-aligned.
    pub end: VirtAddr,
    /// `vm_flags`.
    pub flags: VmFlags,
    /// Offset into the file in pages (`vm_pgoff`); `start >> PAGE_SHIFT` for
    /// private anonymous and brk VMAs.
    pub pgoff: u64,
    /// The mapped file (`vm_file`); shared anonymous memory has a shmem file.
    pub file: Option<FileRef>,
    /// Set when a private VMA gets its first anonymous page.
    pub anon_vma: Option<AnonVmaId>,
    /// Name of a special mapping (`vm_ops->name` / `arch_vma_name`).
    pub special: Option<&'static str>,
    /// PR_SET_VMA_ANON_NAME name, shown as `[anon:NAME]`.
    pub anon_name: Option<Arc<str>>,
    /// True for shared anonymous memory (the file is a shmem "/dev/zero").
    pub shmem: bool,
    /// The rest of the anon_vma chain (`anon_vma_chain`): the anon_vmas
    /// of the ancestors this VMA was forked from, whose pages it may still
    /// map. Non-empty means the chain is not singular, and such a VMA does
    /// not merge with a neighbour lacking an anon_vma (merge selftest, §3
    /// rule 2).
    pub anon_parents: alloc::vec::Vec<AnonVmaId>,
}

impl Vma {
    /// A new anonymous VMA with no file and no anon_vma.
    pub fn new_anon(start: VirtAddr, end: VirtAddr, flags: VmFlags, pgoff: u64) -> Vma {
        Vma {
            start,
            end,
            flags,
            pgoff,
            file: None,
            anon_vma: None,
            special: None,
            anon_name: None,
            shmem: false,
            anon_parents: alloc::vec::Vec::new(),
        }
    }
    /// The chain is not singular (the VMA was forked from one with pages).
    pub fn anon_vma_forked(&self) -> bool {
        !self.anon_parents.is_empty()
    }
    /// Every anon_vma the VMA is linked to: its own, then its ancestors'.
    pub fn anon_chain(&self) -> impl Iterator<Item = AnonVmaId> + '_ {
        self.anon_vma
            .into_iter()
            .chain(self.anon_parents.iter().copied())
    }
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }
    /// True if the VMA is empty (never for a VMA in a tree).
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
    /// Number of pages.
    pub fn pages(&self) -> u64 {
        self.len() >> PAGE_SHIFT
    }
    /// True if `addr` lies inside the VMA.
    pub fn contains(&self, addr: VirtAddr) -> bool {
        self.start <= addr && addr < self.end
    }
    /// `vma_is_anonymous`: no file and no special ops (private anonymous).
    pub fn is_anonymous(&self) -> bool {
        self.file.is_none() && self.special.is_none()
    }
    /// `vm_start_gap`: start lowered by the stack guard gap for GROWSDOWN.
    pub fn start_gap(&self, stack_guard_gap: u64) -> VirtAddr {
        if self.flags.contains(VmFlags::GROWSDOWN) {
            self.start.saturating_sub(stack_guard_gap)
        } else {
            self.start
        }
    }
    /// `vm_end_gap`: x86 has no GROWSUP, so this is `vm_end`.
    pub fn end_gap(&self) -> VirtAddr {
        self.end
    }
    /// pgoff of the page at `addr` (`linear_page_index`).
    pub fn pgoff_at(&self, addr: VirtAddr) -> u64 {
        self.pgoff + ((addr - self.start) >> PAGE_SHIFT)
    }
}

impl fmt::Debug for Vma {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Vma({:#x}-{:#x} {:?} pgoff={:#x}",
            self.start.0, self.end.0, self.flags, self.pgoff
        )?;
        if let Some(file) = &self.file {
            write!(f, " file={}", file.path())?;
        }
        if let Some(a) = self.anon_vma {
            write!(f, " anon_vma={}", a.0)?;
        }
        if let Some(s) = self.special {
            write!(f, " {s}")?;
        }
        write!(f, ")")
    }
}

/// What the page tables know about one virtual page: what smaps, pagemap and
/// mincore need.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct PageInfo {
    /// A page is mapped (pte present).
    pub present: bool,
    /// Frame number of the mapped page.
    pub pfn: u64,
    /// The pte is writable.
    pub writable: bool,
    /// pte dirty or PageDirty.
    pub dirty: bool,
    /// pte young or PG_referenced.
    pub young: bool,
    /// PageAnon (false for file and shmem pages).
    pub anon: bool,
    /// Number of page tables mapping the page.
    pub mapcount: u32,
    /// Swap entry `(type, offset)` when the pte is a swap pte.
    pub swap: Option<(u8, u64)>,
    /// The pte's soft-dirty bit.
    pub soft_dirty: bool,
    /// PageAnonExclusive / mapped exactly once.
    pub exclusive: bool,
    /// An anonymous page freed lazily by MADV_FREE (!PageSwapBacked, clean).
    pub lazyfree: bool,
}

/// Every effect the VMA layer has on page tables. The page-table glue
/// implements it; tests use a recording fake. Calls always carry
/// page-aligned, non-empty ranges that lie inside VMAs of the mm.
pub trait PageTableOps {
    /// Zap the ptes of `[start, end)` (munmap, MAP_FIXED over old maps,
    /// shrinking mremap/brk). Frees anonymous pages, drops swap entries.
    fn unmap_range(&mut self, start: VirtAddr, end: VirtAddr);
    /// Rewrite the ptes of `[start, end)` for the new `vm_flags` (mprotect).
    fn change_protection(&mut self, start: VirtAddr, end: VirtAddr, vm_flags: VmFlags);
    /// Move the ptes of `[old, old+len)` to `[new, new+len)` (mremap). The
    /// destination has no ptes. All or nothing: ENOMEM when the
    /// destination's page tables cannot be allocated, with nothing moved
    /// (Linux's `move_vma` moves back what it moved and fails the same way).
    fn move_range(&mut self, old: VirtAddr, new: VirtAddr, len: u64) -> Result<(), Errno>;
    /// Fault in `[start, end)` of `vma` (MAP_POPULATE, mlock, MADV_POPULATE_*),
    /// for writing if `write` (breaking CoW for private mappings).
    fn populate(
        &mut self,
        vma: &Vma,
        start: VirtAddr,
        end: VirtAddr,
        write: bool,
    ) -> Result<(), Errno>;
    /// MADV_DONTNEED (`free == false`: zap now) or MADV_FREE (`free == true`:
    /// mark clean anonymous pages lazily freeable).
    fn discard(&mut self, start: VirtAddr, end: VirtAddr, free: bool);
    /// MADV_COLD (`pageout == false`: deactivate the range's pages) or
    /// MADV_PAGEOUT (reclaim them now).
    fn cold(&mut self, _start: VirtAddr, _end: VirtAddr, _pageout: bool) {}
    /// mlock/munlock of the pages mapped in the range (PG_mlocked, the
    /// unevictable list).
    fn mlock_range(&mut self, _start: VirtAddr, _end: VirtAddr, _lock: bool) {}
    /// True if the page of file VMA `vma` at `va` is in the page cache,
    /// mapped or not (what mincore reports for a file page without a pte).
    fn cached(&self, _vma: &Vma, _va: VirtAddr) -> bool {
        false
    }
    /// The state of the page at `va`, or `None` if no pte (present or swap).
    /// The shared zero page is reported present with `mapcount == 0`.
    fn page_info(&self, va: VirtAddr) -> Option<PageInfo>;
    /// /proc/PID/clear_refs on `[start, end)`: with `soft_dirty`, clear the
    /// ptes' soft-dirty bits and write-protect them so the next write sets
    /// the bit again (value 4); otherwise clear the young/referenced bits
    /// (values 1-3).
    fn clear_refs(&mut self, start: VirtAddr, end: VirtAddr, soft_dirty: bool);
}

/// Resource limits that the VMA layer checks (soft limits, bytes).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Rlimits {
    /// RLIMIT_STACK.
    pub stack: u64,
    /// RLIMIT_DATA.
    pub data: u64,
    /// RLIMIT_MEMLOCK.
    pub memlock: u64,
    /// RLIMIT_AS.
    pub as_: u64,
}

/// RLIM_INFINITY.
pub const RLIM_INFINITY: u64 = u64::MAX;

impl Default for Rlimits {
    /// Linux defaults: 8 MiB stack, 8 MiB memlock (since 5.16), the rest unlimited.
    fn default() -> Self {
        Rlimits {
            stack: 8 << 20,
            data: RLIM_INFINITY,
            memlock: 8 << 20,
            as_: RLIM_INFINITY,
        }
    }
}

/// The capabilities of the task that owns the mm that the VMA layer checks.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// CAP_IPC_LOCK: mlock beyond RLIMIT_MEMLOCK.
    pub cap_ipc_lock: bool,
    /// CAP_SYS_RAWIO: map below mmap_min_addr.
    pub cap_sys_rawio: bool,
    /// CAP_SYS_ADMIN: see PFNs in pagemap.
    pub cap_sys_admin: bool,
}

impl Credentials {
    /// root: every capability.
    pub const ROOT: Credentials = Credentials {
        cap_ipc_lock: true,
        cap_sys_rawio: true,
        cap_sys_admin: true,
    };
    /// An unprivileged user.
    pub const USER: Credentials = Credentials {
        cap_ipc_lock: false,
        cap_sys_rawio: false,
        cap_sys_admin: false,
    };
}

impl Default for Credentials {
    fn default() -> Self {
        Self::ROOT
    }
}

/// x86-64 TASK_SIZE (DEFAULT_MAP_WINDOW with 4-level paging).
pub const TASK_SIZE_X86_64: u64 = 0x7fff_ffff_f000;
/// Default `stack_guard_gap`: 256 pages.
pub const STACK_GUARD_GAP: u64 = 256 << PAGE_SHIFT;
/// Default `vm.max_map_count`.
pub const DEFAULT_MAX_MAP_COUNT: usize = 65530;
/// Default `vm.mmap_min_addr` (distribution value).
pub const DEFAULT_MMAP_MIN_ADDR: u64 = 65536;

/// Parameters of a new address space (what exec's `arch_pick_mmap_layout` and
/// the sysctls decide).
#[derive(Clone, Debug)]
pub struct MmLayout {
    /// TASK_SIZE.
    pub task_size: VirtAddr,
    /// DEFAULT_MAP_WINDOW: the top of placement without a hint above it
    /// (equal to `task_size` with 4-level paging; 2^47 - 4096 below a
    /// 56-bit TASK_SIZE with 5-level paging).
    pub map_window: VirtAddr,
    /// Top of the top-down mmap area.
    pub mmap_base: VirtAddr,
    /// Bottom of the legacy bottom-up mmap area.
    pub mmap_legacy_base: VirtAddr,
    /// Use the legacy bottom-up layout (ADDR_COMPAT_LAYOUT / legacy_va_layout).
    pub legacy: bool,
    /// `stack_guard_gap`.
    pub stack_guard_gap: u64,
    /// `vm.mmap_min_addr`.
    pub mmap_min_addr: VirtAddr,
    /// `vm.max_map_count`.
    pub max_map_count: usize,
    /// Resource limits.
    pub rlimits: Rlimits,
    /// Capabilities.
    pub cred: Credentials,
    /// A 64-bit kernel (x86-64): /proc pads map names to column 73 and the
    /// `[vsyscall]` gate exists; a 32-bit kernel pads to column 49 and has
    /// no gate.
    pub kernel_64bit: bool,
}

impl MmLayout {
    /// x86-64 layout with ASLR off for the given limits (arch/x86/mm/mmap.c
    /// `mmap_base`): gap = stack rlimit + guard gap, clamped to
    /// [128 MiB, task_size/6*5]; legacy base = PAGE_ALIGN(task_size/3).
    pub fn x86_64(rlimits: Rlimits) -> MmLayout {
        Self::x86_64_with(rlimits, TASK_SIZE_X86_64)
    }

    /// x86-64 with 5-level paging (LA57): TASK_SIZE is TASK_SIZE_MAX =
    /// 2^56 - 4096, but `arch_pick_mmap_layout` computes mmap_base and the
    /// legacy base from `task_size_64bit(0)` = DEFAULT_MAP_WINDOW, so both
    /// equal the 4-level values; only hints above the window (or MAP_FIXED)
    /// reach the upper part.
    pub fn x86_64_la57(rlimits: Rlimits) -> MmLayout {
        Self::x86_64_with(rlimits, X86_64_L5_TASK_SIZE_MAX)
    }

    /// 32-bit x86 with the 3G/1G split (TASK_SIZE = PAGE_OFFSET =
    /// 0xC0000000), ASLR off: the same mmap_base rule on the 3 GiB space
    /// (0xB7FFF000 with an 8 MiB stack), legacy base TASK_SIZE/3.
    pub fn x86_32(rlimits: Rlimits) -> MmLayout {
        MmLayout {
            kernel_64bit: false,
            ..Self::layout_with(rlimits, 0xC000_0000, 0xC000_0000)
        }
    }

    /// arm64 with 48-bit VA, ASLR off: TASK_SIZE = DEFAULT_MAP_WINDOW =
    /// 2^48 (arch/arm64/include/asm/processor.h); arm64 selects
    /// ARCH_WANT_DEFAULT_TOPDOWN_MMAP_LAYOUT, so mmap_base is mm/util.c's
    /// generic one: the same rlimit + guard gap clamped to [128 MiB,
    /// STACK_TOP/6*5] below STACK_TOP = TASK_SIZE; the legacy base is
    /// TASK_UNMAPPED_BASE = PAGE_ALIGN(DEFAULT_MAP_WINDOW / 4). There is no
    /// `[vsyscall]` gate (the caller clears [`MmStruct::vsyscall`]).
    pub fn arm64(rlimits: Rlimits) -> MmLayout {
        let task_size = crate::arch::layout::ARM64_TASK_SIZE;
        MmLayout {
            mmap_legacy_base: VirtAddr((task_size / 4 + PAGE_SIZE - 1) & !(PAGE_SIZE - 1)),
            ..Self::layout_with(rlimits, task_size, task_size)
        }
    }

    fn x86_64_with(rlimits: Rlimits, task_size_max: u64) -> MmLayout {
        Self::layout_with(rlimits, TASK_SIZE_X86_64, task_size_max)
    }

    fn layout_with(rlimits: Rlimits, task_size: u64, task_size_max: u64) -> MmLayout {
        let mut gap = rlimits.stack;
        let pad = STACK_GUARD_GAP;
        if let Some(g) = gap.checked_add(pad) {
            gap = g;
        }
        let gap_min = 128 << 20;
        let gap_max = task_size / 6 * 5;
        let gap = gap.clamp(gap_min, gap_max);
        let mmap_base = (task_size - gap + PAGE_SIZE - 1) & !(PAGE_SIZE - 1);
        let legacy = (task_size / 3 + PAGE_SIZE - 1) & !(PAGE_SIZE - 1);
        MmLayout {
            task_size: VirtAddr(task_size_max),
            map_window: VirtAddr(task_size),
            mmap_base: VirtAddr(mmap_base),
            mmap_legacy_base: VirtAddr(legacy),
            legacy: false,
            stack_guard_gap: STACK_GUARD_GAP,
            mmap_min_addr: VirtAddr(DEFAULT_MMAP_MIN_ADDR),
            max_map_count: DEFAULT_MAX_MAP_COUNT,
            rlimits,
            cred: Credentials::ROOT,
            kernel_64bit: true,
        }
    }
}

/// RSS counter indices (`MM_FILEPAGES`, `MM_ANONPAGES`, `MM_SWAPENTS`,
/// `MM_SHMEMPAGES`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RssKind {
    /// MM_FILEPAGES.
    File = 0,
    /// MM_ANONPAGES.
    Anon = 1,
    /// MM_SWAPENTS.
    Swap = 2,
    /// MM_SHMEMPAGES.
    Shmem = 3,
}

/// An address space (`struct mm_struct`).
#[derive(Clone, Debug)]
pub struct MmStruct {
    /// The VMA tree, keyed by `vm_start`.
    pub(crate) vmas: crate::vma_tree::VmaTree,
    /// TASK_SIZE.
    pub task_size: VirtAddr,
    /// DEFAULT_MAP_WINDOW (see [`MmLayout::map_window`]).
    pub map_window: VirtAddr,
    /// Top of the top-down mmap area.
    pub mmap_base: VirtAddr,
    /// Bottom of the legacy bottom-up mmap area.
    pub mmap_legacy_base: VirtAddr,
    /// Legacy (bottom-up) layout; false is MMF_TOPDOWN.
    pub legacy_layout: bool,
    /// `stack_guard_gap`.
    pub stack_guard_gap: u64,
    /// `vm.mmap_min_addr`.
    pub mmap_min_addr: VirtAddr,
    /// `vm.max_map_count`.
    pub max_map_count: usize,
    /// Resource limits.
    pub rlimits: Rlimits,
    /// Capabilities of the owner.
    pub cred: Credentials,
    /// `start_code`.
    pub start_code: VirtAddr,
    /// `end_code`.
    pub end_code: VirtAddr,
    /// `start_data`.
    pub start_data: VirtAddr,
    /// `end_data`.
    pub end_data: VirtAddr,
    /// `start_brk`.
    pub start_brk: VirtAddr,
    /// `brk`.
    pub brk: VirtAddr,
    /// `start_stack`.
    pub start_stack: VirtAddr,
    /// `arg_start`.
    pub arg_start: VirtAddr,
    /// `arg_end`.
    pub arg_end: VirtAddr,
    /// `env_start`.
    pub env_start: VirtAddr,
    /// `env_end`.
    pub env_end: VirtAddr,
    /// Pages mapped (`total_vm`).
    pub total_vm: u64,
    /// Pages in VM_LOCKED VMAs (`locked_vm`).
    pub locked_vm: u64,
    /// Pages in private writable non-stack VMAs (`data_vm`).
    pub data_vm: u64,
    /// Pages in executable, non-writable VMAs (`exec_vm`).
    pub exec_vm: u64,
    /// Pages in stack VMAs (`stack_vm`).
    pub stack_vm: u64,
    /// Pinned pages (`pinned_vm`).
    pub pinned_vm: u64,
    /// RSS counters (`rss_stat`), shared with the rmap so that an unmap
    /// done from a page's side is accounted here.
    pub rss: Arc<RssStat>,
    /// Peak total_vm (`hiwater_vm`).
    pub hiwater_vm: u64,
    /// Bytes of page tables (`mm_pgtables_bytes`), kept by the page-table glue.
    pub pgtables_bytes: u64,
    /// Flags every new VMA gets (`def_flags`: VM_LOCKED/LOCKONFAULT from
    /// mlockall(MCL_FUTURE)).
    pub def_flags: VmFlags,
    /// Show the x86-64 `[vsyscall]` gate VMA at the end of maps/smaps.
    pub vsyscall: bool,
    /// Column /proc/PID/maps pads names to (25 + 6 × pointer bytes - 1).
    pub name_column: usize,
    /// THP "always" (else "madvise", this machine's setting and the
    /// default): decides smaps THPeligible.
    pub thp_always: bool,
    /// CONFIG_MEM_SOFT_DIRTY: without it (our machines' kernel, and the
    /// default) VM_SOFTDIRTY is 0 to Linux, so smaps prints no `sd` and
    /// pagemap never reports bit 55. The bits are still kept internally.
    pub soft_dirty: bool,
    /// The CPU has memory protection keys (x86 PKU with OSPKE, as our
    /// machines' CPUs do): smaps prints `ProtectionKey:` (always key 0
    /// here; pkey_mprotect is not modelled). Off by default; the machine
    /// sets it for x86-64.
    pub pkeys: bool,
    /// `vm.overcommit_memory` and the memory totals it compares with (see
    /// [`crate::util::Overcommit`]); set by the machine.
    pub overcommit: crate::util::Overcommit,
    /// Kernel-object counts of the VMA tree.
    pub(crate) objects: ObjectCounts,
    /// The machine-wide rmap and page cache this mm is linked into, with
    /// its identity there; `None` for a detached mm (the VMA layer's tests).
    pub link: Option<MmLink>,
    pub(crate) next_anon_vma: u64,
    pub(crate) next_shmem_ino: u64,
    /// The allocation of the last VMA freed, kept for the next one (as
    /// `vm_area_cachep`'s per-CPU freelist hands a freed object out again):
    /// an mmap+munmap pair takes nothing from the heap.
    vma_spare: Option<Box<Vma>>,
}

/// How many kernel objects of each kind an address space's VMAs take in
/// Linux: vm_area_struct, anon_vma (distinct), anon_vma_chain (one per
/// VMA link) and struct file (distinct inodes mapped).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelObjects {
    /// vm_area_struct objects.
    pub vmas: usize,
    /// Distinct anon_vmas.
    pub anon_vmas: usize,
    /// anon_vma_chain links.
    pub chains: usize,
    /// Distinct mapped files.
    pub files: usize,
}

/// Reference counts behind [`KernelObjects`].
#[derive(Clone, Debug, Default)]
pub(crate) struct ObjectCounts {
    anon: BTreeMap<AnonVmaId, usize>,
    files: BTreeMap<((u32, u32), u64), usize>,
    chains: usize,
}

impl ObjectCounts {
    #[inline]
    fn count(&mut self, v: &Vma, d: isize) {
        // An anonymous VMA never faulted links to no object but itself.
        if v.file.is_none() && v.anon_vma.is_none() && v.anon_parents.is_empty() {
            return;
        }
        self.count_linked(v, d);
    }

    #[inline(never)]
    fn count_linked(&mut self, v: &Vma, d: isize) {
        fn bump<K: Ord>(m: &mut BTreeMap<K, usize>, k: K, d: isize) {
            use alloc::collections::btree_map::Entry;
            match m.entry(k) {
                Entry::Occupied(mut e) => {
                    let n = e.get().saturating_add_signed(d);
                    if n == 0 {
                        e.remove();
                    } else {
                        e.insert(n);
                    }
                }
                Entry::Vacant(e) => {
                    if d > 0 {
                        e.insert(d as usize);
                    }
                }
            }
        }
        for a in v.anon_chain() {
            bump(&mut self.anon, a, d);
            self.chains = self.chains.saturating_add_signed(d);
        }
        if let Some(f) = &v.file {
            bump(&mut self.files, (f.dev(), f.ino()), d);
        }
    }
}

/// Where an attached mm lives machine-wide.
#[derive(Clone, Debug)]
pub struct MmLink {
    /// The reverse map and address-space list.
    pub rmap: Arc<Rmap>,
    /// The page cache (file VMAs link into their address_space's i_mmap).
    pub cache: Arc<PageCache>,
    /// This mm's id in the rmap.
    pub id: MmId,
}

impl MmStruct {
    /// A new, empty address space with the given layout.
    pub fn new(layout: MmLayout) -> MmStruct {
        MmStruct {
            vmas: crate::vma_tree::VmaTree::new(),
            task_size: layout.task_size,
            map_window: layout.map_window,
            mmap_base: layout.mmap_base,
            mmap_legacy_base: layout.mmap_legacy_base,
            legacy_layout: layout.legacy,
            stack_guard_gap: layout.stack_guard_gap,
            mmap_min_addr: layout.mmap_min_addr,
            max_map_count: layout.max_map_count,
            rlimits: layout.rlimits,
            cred: layout.cred,
            start_code: VirtAddr(0),
            end_code: VirtAddr(0),
            start_data: VirtAddr(0),
            end_data: VirtAddr(0),
            start_brk: VirtAddr(0),
            brk: VirtAddr(0),
            start_stack: VirtAddr(0),
            arg_start: VirtAddr(0),
            arg_end: VirtAddr(0),
            env_start: VirtAddr(0),
            env_end: VirtAddr(0),
            total_vm: 0,
            locked_vm: 0,
            data_vm: 0,
            exec_vm: 0,
            stack_vm: 0,
            pinned_vm: 0,
            rss: Arc::new(RssStat::default()),
            hiwater_vm: 0,
            pgtables_bytes: 0,
            def_flags: VmFlags::NONE,
            vsyscall: layout.kernel_64bit,
            name_column: if layout.kernel_64bit { 72 } else { 48 },
            thp_always: false,
            soft_dirty: false,
            pkeys: false,
            overcommit: crate::util::Overcommit::default(),
            objects: ObjectCounts::default(),
            link: None,
            next_anon_vma: 1,
            next_shmem_ino: 1,
            vma_spare: None,
        }
    }

    /// Linux's x86-64 defaults with ASLR off and an 8 MiB stack rlimit:
    /// mmap_base 0x7ffff7fff000, legacy base 0x2aaaaaaab000, root credentials.
    pub fn for_x86_64_default() -> MmStruct {
        MmStruct::new(MmLayout::x86_64(Rlimits::default()))
    }

    /// Number of VMAs (`map_count`).
    pub fn map_count(&self) -> usize {
        self.vmas.len()
    }

    /// All VMAs in address order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Vma> {
        self.vmas.values()
    }

    /// `find_vma`: the first VMA with `end > addr`.
    pub fn find_vma(&self, addr: VirtAddr) -> Option<&Vma> {
        if let Some((_, v)) = self.vmas.range(..=addr).next_back() {
            if v.end > addr {
                return Some(v);
            }
        }
        self.vmas
            .range((
                core::ops::Bound::Excluded(addr),
                core::ops::Bound::Unbounded,
            ))
            .next()
            .map(|(_, v)| v)
    }

    /// `vma_lookup`: the VMA containing `addr`.
    pub fn vma_lookup(&self, addr: VirtAddr) -> Option<&Vma> {
        self.vmas
            .range(..=addr)
            .next_back()
            .map(|(_, v)| v)
            .filter(|v| v.end > addr)
    }

    /// `find_vma_prev`: `find_vma(addr)` and the VMA before it.
    pub fn find_vma_prev(&self, addr: VirtAddr) -> (Option<&Vma>, Option<&Vma>) {
        let vma = self.find_vma(addr);
        let prev = match vma {
            Some(v) => self.vmas.range(..v.start).next_back().map(|(_, p)| p),
            None => self.vmas.values().next_back(),
        };
        (vma, prev)
    }

    /// `find_vma_intersection`: the first VMA overlapping `[start, end)`.
    pub fn find_vma_intersection(&self, start: VirtAddr, end: VirtAddr) -> Option<&Vma> {
        self.find_vma(start).filter(|v| v.start < end)
    }

    /// True if some VMA overlaps `[start, end)`: the last VMA starting below
    /// `end` reaches past `start` (the ones before it end below its start),
    /// so one descent of the tree answers.
    pub(crate) fn range_mapped(&self, start: VirtAddr, end: VirtAddr) -> bool {
        self.vmas
            .range(..end)
            .next_back()
            .is_some_and(|(_, v)| v.end > start)
    }

    /// The VMA just below `addr` (ending at or before it).
    pub(crate) fn prev_of(&self, addr: VirtAddr) -> Option<&Vma> {
        self.vmas.range(..addr).next_back().map(|(_, v)| v)
    }

    /// `vm_stat_account`: add (or remove, if `npages < 0`) pages to total_vm
    /// and to exec_vm / stack_vm / data_vm by the VMA's kind.
    pub fn vm_stat_account(&mut self, flags: VmFlags, npages: i64) {
        let add = |x: &mut u64| *x = x.wrapping_add_signed(npages);
        add(&mut self.total_vm);
        if is_exec_mapping(flags) {
            add(&mut self.exec_vm);
        } else if is_stack_mapping(flags) {
            add(&mut self.stack_vm);
        } else if is_data_mapping(flags) {
            add(&mut self.data_vm);
        }
        if flags.contains(VmFlags::LOCKED) {
            add(&mut self.locked_vm);
        }
        if self.total_vm > self.hiwater_vm {
            self.hiwater_vm = self.total_vm;
        }
    }

    /// `may_expand_vm`: RLIMIT_AS for all mappings, RLIMIT_DATA for data ones.
    pub fn may_expand_vm(&self, flags: VmFlags, npages: u64) -> bool {
        let as_pages = self.rlimits.as_ >> PAGE_SHIFT;
        if self.total_vm.saturating_add(npages) > as_pages {
            return false;
        }
        if is_data_mapping(flags) {
            let data_pages = self.rlimits.data >> PAGE_SHIFT;
            if self.data_vm.saturating_add(npages) > data_pages {
                return false;
            }
        }
        true
    }

    /// `can_do_mlock`: RLIMIT_MEMLOCK non-zero or CAP_IPC_LOCK.
    pub fn can_do_mlock(&self) -> bool {
        self.rlimits.memlock != 0 || self.cred.cap_ipc_lock
    }

    /// `mlock_future_ok`: would `bytes` more locked memory fit RLIMIT_MEMLOCK?
    pub fn mlock_future_ok(&self, flags: VmFlags, bytes: u64) -> bool {
        if !flags.contains(VmFlags::LOCKED) || self.cred.cap_ipc_lock {
            return true;
        }
        let locked = self.locked_vm.saturating_add(bytes >> PAGE_SHIFT);
        locked <= self.rlimits.memlock >> PAGE_SHIFT
    }

    /// Resident pages (file + anon + shmem).
    pub fn rss_pages(&self) -> u64 {
        self.rss.resident()
    }

    /// Peak resident pages (`hiwater_rss`).
    pub fn hiwater_rss(&self) -> u64 {
        self.rss.hiwater()
    }

    /// Adds `delta` pages to an RSS counter (page-table glue).
    pub fn add_rss(&mut self, kind: RssKind, delta: i64) {
        self.rss.add(kind, delta);
    }

    /// A fresh anon_vma (`anon_vma_alloc`), child of `parent` at fork:
    /// a machine-wide object when the mm is attached to an rmap.
    pub(crate) fn new_anon_vma(&mut self, parent: Option<AnonVmaId>) -> AnonVmaId {
        if let Some(l) = &self.link {
            return l.rmap.new_anon_vma(parent);
        }
        let id = AnonVmaId(self.next_anon_vma);
        self.next_anon_vma += 1;
        id
    }

    /// A fresh inode number for a shmem object (`get_next_ino`), unique
    /// machine-wide when the mm is attached.
    pub(crate) fn new_shmem_ino(&mut self) -> u64 {
        if let Some(l) = &self.link {
            return l.cache.new_shmem_ino();
        }
        let ino = self.next_shmem_ino;
        self.next_shmem_ino += 1;
        ino
    }

    /// Links this mm into a machine-wide rmap and page cache (at
    /// `mm_alloc`); every VMA linked later is indexed there.
    pub fn attach(&mut self, rmap: Arc<Rmap>, cache: Arc<PageCache>, entry: MmEntry) {
        let id = rmap.register_mm(MmEntry {
            rss: self.rss.clone(),
            ..entry
        });
        self.link = Some(MmLink { rmap, cache, id });
        for v in self.vmas.values() {
            rmap_link(self.link.as_ref(), v, true);
        }
    }

    /// Unlinks every VMA and leaves the rmap (at the last `mmput`).
    pub fn detach(&mut self) {
        for v in self.vmas.values() {
            rmap_link(self.link.as_ref(), v, false);
        }
        if let Some(l) = self.link.take() {
            l.rmap.unregister_mm(l.id);
        }
    }

    /// `vm_area_alloc`: an allocation holding `v`, the spare one if any.
    pub(crate) fn vm_area_alloc(&mut self, v: Vma) -> Box<Vma> {
        match self.vma_spare.take() {
            Some(mut b) => {
                *b = v;
                b
            }
            None => Box::new(v),
        }
    }

    /// `vm_area_free`: keeps the allocation of a VMA that holds no
    /// references (no file, name or ancestor chain) as the spare.
    pub(crate) fn vm_area_free(&mut self, v: Box<Vma>) {
        if v.file.is_none() && v.anon_name.is_none() && v.anon_parents.capacity() == 0 {
            self.vma_spare = Some(v);
        }
    }

    /// Inserts a VMA into the tree, indexing it in the rmap. The tree holds
    /// each VMA in its own allocation, as the maple tree holds pointers to
    /// `vm_area_struct`s: moving a node's entries moves pointers only.
    pub(crate) fn tree_insert(&mut self, v: Box<Vma>) {
        rmap_link(self.link.as_ref(), &v, true);
        self.objects.count(&v, 1);
        self.vmas.insert(v.start, v);
    }

    /// Removes the VMA starting at `start` from the tree and the rmap.
    pub(crate) fn tree_remove(&mut self, start: VirtAddr) -> Option<Box<Vma>> {
        let v = self.vmas.remove(&start)?;
        rmap_link(self.link.as_ref(), &v, false);
        self.objects.count(&v, -1);
        Some(v)
    }

    /// The kernel objects the VMA tree stands for, kept as VMAs come and
    /// go (so reading them is O(1) whatever the number of VMAs).
    pub fn kernel_objects(&self) -> KernelObjects {
        KernelObjects {
            vmas: self.vmas.len(),
            anon_vmas: self.objects.anon.len(),
            chains: self.objects.chains,
            files: self.objects.files.len(),
        }
    }

    /// Changes the VMA starting at `start` in place through `f` (which
    /// must leave `start` alone: the tree's key), keeping the rmap index
    /// and the object counts exact if its end, offset or anon_vma change.
    pub(crate) fn tree_modify(&mut self, start: VirtAddr, f: impl FnOnce(&mut Vma)) {
        let Some(v) = self.vmas.get_mut(&start) else {
            return;
        };
        rmap_link(self.link.as_ref(), v, false);
        self.objects.count(v, -1);
        f(v);
        debug_assert_eq!(v.start, start, "tree_modify moved a VMA's start");
        rmap_link(self.link.as_ref(), v, true);
        self.objects.count(v, 1);
    }
}

/// Links (or unlinks) one VMA in the rmap of `link` (nothing for a
/// detached mm). A free function so that a VMA borrowed from the tree can
/// be (un)indexed in place.
fn rmap_link(link: Option<&MmLink>, v: &Vma, on: bool) {
    let Some(l) = link else { return };
    // An anonymous VMA not yet faulted (no anon_vma) is in no rmap
    // tree: nothing to lock.
    if v.file.is_none() && v.anon_chain().next().is_none() {
        return;
    }
    let file = v.file.as_ref().map(|f| l.cache.mapping_of(f));
    if on {
        l.rmap.link(l.id, v, file);
    } else {
        l.rmap.unlink(l.id, v, file);
    }
}

/// `is_exec_mapping`: executable and neither writable nor a stack.
pub fn is_exec_mapping(flags: VmFlags) -> bool {
    flags.0 & (VmFlags::EXEC.0 | VmFlags::WRITE.0 | VmFlags::STACK.0) == VmFlags::EXEC.0
}

/// `is_stack_mapping`.
pub fn is_stack_mapping(flags: VmFlags) -> bool {
    flags.contains(VmFlags::STACK)
}

/// `is_data_mapping`: private, writable, not a stack.
pub fn is_data_mapping(flags: VmFlags) -> bool {
    flags.0 & (VmFlags::WRITE.0 | VmFlags::SHARED.0 | VmFlags::STACK.0) == VmFlags::WRITE.0
}
