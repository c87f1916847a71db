//! Processes on the machine: each has an `mm_struct`, page tables in RAM,
//! an address-space id and the CPU it runs on. exec builds the address space
//! through the real mmap layer, the memory system calls act on it, user
//! memory is read and written through the CPU's MMU, and exit tears it all
//! down. Mirrors kernel/fork.c (`mm_alloc`, `mmput`), kernel/exit.c,
//! fs/exec.c (`exec_mmap`), the syscall entry points of mm/*.c, mm/maccess.c
//! (`copy_from_user`/`copy_to_user`) and fs/proc/base.c (the /proc/PID files).
//!
//! A user access that misses in the MMU raises a page fault that
//! [`mm::memory::handle_mm_fault`] resolves (then the access is retried),
//! or that ends in SIGSEGV/SIGBUS; copy_from_user/copy_to_user turn those
//! into EFAULT. fork duplicates the address space with copy-on-write;
//! exit tears it down and leaves a zombie for wait.
//!
//! Simplifications: there is no scheduler (a process stays on the CPU it was
//! given at creation; processes get CPUs round-robin); a signal is reported
//! to the caller, not delivered (the process is not killed), except the
//! OOM killer's SIGKILL (see [`crate::oom`]); a TLB
//! shootdown flushes every CPU (Linux only those in `mm_cpumask`); no
//! threads (CLONE_VM).

use mm::errno::Errno;
use mm::file::FileRef;
use mm::filemap::PageCache;
use mm::gfp::Gfp;
use mm::memory::{exit_mmap, FaultAccess, FaultError, SegvCode, TlbShootdown, UserPageTables};
use mm::mm_types::{MmLayout, MmStruct, Rlimits, VmFlags};
use mm::page_alloc::{CpuId, PageAlloc};
use mm::pgalloc::PgtableFrames;
use mm::pgtable::PageTable;
use mm::rmap::MmEntry;
use mm::slab_common::SlabAllocator;
use mm::types::{Order, Pfn, VirtAddr, PAGE_MASK, PAGE_SIZE};
use mm::util::Overcommit;

use crate::exec::{self, ExecLayout, ExecMm, ExecParams, ExecResult, MAP_ANONYMOUS, MAP_FIXED};
use crate::exec::{MAP_PRIVATE, PROT_EXEC, PROT_READ, PROT_WRITE};
use crate::kobjects::{KernelStacks, TaskObjects, VmapStacks};
use crate::machine::Machine;
use crate::mmu::{Access, AsidAllocator, Mmu};

/// A process: an address space and where it runs (`task_struct` with its
/// `mm_struct`).
pub struct Process {
    /// Process id.
    pub pid: u32,
    /// Command name (`comm`, at most 15 bytes as Linux keeps it).
    pub comm: String,
    /// The address space.
    pub mm: MmStruct,
    /// Its page tables (CR3 points at `pt.root()`).
    pub pt: PageTable,
    /// The address-space id its TLB entries are tagged with (PCID).
    pub asid: u16,
    /// The CPU it runs on.
    pub cpu: usize,
    /// What the last successful exec returned.
    pub exec: Option<ExecResult>,
    /// The parent's pid (0 for a process spawned by the machine).
    pub ppid: u32,
    /// Faults resolved for this task (`min_flt`, `maj_flt`).
    pub flt: Faults,
    /// Faults of its waited-for children (`cmin_flt`, `cmaj_flt`).
    pub cflt: Faults,
    /// Its open files.
    pub files: crate::fs::FdTable,
    /// `signal->oom_score_adj` (-1000..=1000): kept across exec,
    /// inherited at fork (see [`crate::oom`]).
    pub oom_score_adj: i16,
    /// The thread group's live threads by tid (the leader's tid is the
    /// pid), in creation order: every thread shares this one mm, page
    /// table and fault counters (faults are counted per process, the sum
    /// Linux reports for the group in wait4's rusage and /proc/PID/stat).
    /// A leader that ended with exit(2) while others run is no longer
    /// listed, as Linux's `signal->nr_threads` no longer counts it.
    pub threads: Vec<u32>,
    /// The thread the process's faults are being taken by (the one its
    /// caller runs; the leader unless told otherwise).
    pub running: u32,
    /// Each live thread's own faults (`task->min_flt`, `maj_flt`), which
    /// /proc/PID/task/TID/stat shows; [`Process::flt`] is the group's.
    pub thread_flt: std::collections::BTreeMap<u32, Faults>,
    /// Its process group (`getpgid`): a process the machine spawns leads
    /// its own, as a job-control shell's child does (`lmm native` puts
    /// its program in one outside the machine, 0); a forked one is in its
    /// parent's; [`Machine::setpgid`] moves it.
    pub pgid: u32,
    /// Its session (`getsid`): 0 for a process the machine spawns (its
    /// session leader is outside the machine's pids, as a container's
    /// processes see a session begun outside their pid namespace); a
    /// forked one is in its parent's; [`Machine::setsid`] begins one.
    pub sid: u32,
    /// It has exec'd since its fork (a parent's setpgid of it is EACCES).
    pub did_exec: bool,
    /// Frames handed out ahead of its anonymous write faults, by page
    /// ([`Machine::give_ahead`]): each is taken by the write fault at its
    /// page, or given back ([`Machine::take_back_ahead`]); freed with the
    /// address space.
    pub ahead: std::collections::BTreeMap<VirtAddr, Pfn>,
}

impl Process {
    /// Counts `f` for the process and for the thread that took them
    /// ([`Process::running`]).
    pub fn add_faults(&mut self, f: Faults) {
        self.flt.minor += f.minor;
        self.flt.major += f.major;
        let own = self.thread_flt.entry(self.running).or_default();
        own.minor += f.minor;
        own.major += f.major;
    }
}

/// Minor and major fault counts of a task.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// Resolved without I/O.
    pub minor: u64,
    /// Needed I/O.
    pub major: u64,
}

/// A process that exited and was not waited for yet.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Zombie {
    /// Its parent.
    pub ppid: u32,
    /// Its exit code.
    pub code: i32,
    /// Its faults and its children's, for the parent's cmin_flt/cmaj_flt.
    pub flt: Faults,
    /// The signal that killed it (9 for the OOM killer's SIGKILL), `None`
    /// if it exited.
    pub signal: Option<i32>,
    /// Its process group, for a wait of a group's children.
    pub pgid: u32,
}

/// Which children a wait takes (wait4's `pid`, waitid's idtype and id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitTarget {
    /// Any child (wait4's -1, waitid's P_ALL).
    Any,
    /// The child with this pid.
    Pid(u32),
    /// A child in this process group; 0: the caller's.
    Group(u32),
}

impl WaitTarget {
    /// wait4's `pid`: below -1 a group, -1 any child, 0 the caller's
    /// group, above 0 one child.
    pub fn of_wait4(pid: i64) -> WaitTarget {
        match pid {
            -1 => WaitTarget::Any,
            0 => WaitTarget::Group(0),
            p if p < -1 => WaitTarget::Group(u32::try_from(-p).unwrap_or(u32::MAX)),
            p => WaitTarget::Pid(u32::try_from(p).unwrap_or(u32::MAX)),
        }
    }
}

impl Zombie {
    /// The wait status Linux reports (`wstatus`): `(code & 0xff) << 8` for
    /// an exit (WIFEXITED), the signal number for a kill (WIFSIGNALED).
    pub fn wait_status(&self) -> i32 {
        match self.signal {
            Some(sig) => sig & 0x7f,
            None => (self.code & 0xff) << 8,
        }
    }
}

/// A user access that the fault handler could not resolve: the signal the
/// task gets (`force_sig_fault`) and the address.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum UserFault {
    /// SIGSEGV with SEGV_MAPERR or SEGV_ACCERR.
    Segv { addr: u64, code: SegvCode },
    /// SIGBUS (BUS_ADRERR): past the end of a file, or an I/O error.
    Bus { addr: u64 },
    /// Out of memory (`VM_FAULT_OOM`) and the OOM killer freed nothing
    /// that let the fault succeed.
    Oom { addr: u64 },
    /// The faulting task itself was chosen by the OOM killer: it got
    /// SIGKILL and is gone.
    Killed { addr: u64 },
}

impl std::fmt::Display for UserFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UserFault::Segv { addr, code } => write!(
                f,
                "SIGSEGV ({}) at {addr:#x}",
                match code {
                    SegvCode::MapErr => "SEGV_MAPERR",
                    SegvCode::AccErr => "SEGV_ACCERR",
                }
            ),
            UserFault::Bus { addr } => write!(f, "SIGBUS (BUS_ADRERR) at {addr:#x}"),
            UserFault::Oom { addr } => write!(f, "out of memory at {addr:#x}"),
            UserFault::Killed { addr } => {
                write!(f, "killed by SIGKILL (out of memory) at {addr:#x}")
            }
        }
    }
}

/// Machine-wide process state that is not a process.
#[derive(Debug, Default)]
pub struct TaskState {
    /// The next pid to hand out.
    pub next_pid: u32,
    /// The shared zero page (`empty_zero_page`), allocated at the first
    /// spawn and kept for the machine's life.
    pub zero_pfn: Option<Pfn>,
    /// The parameters exec uses (auxv hardware values, rlimit, seed).
    pub exec_params: ExecParams,
    /// vm.legacy_va_layout: new address spaces use the legacy bottom-up
    /// layout from TASK_SIZE/3 (`mmap_is_legacy`, read at exec and mm_alloc).
    pub legacy_va_layout: bool,
    /// The x86-64 CPU lacks memory protection keys (PKU with OSPKE), so
    /// smaps prints no `ProtectionKey:` line. False by default (the CPUs
    /// lmm's recordings come from have them); `lmm native` takes the host
    /// CPU's, which runs the program.
    pub no_pkeys: bool,
    /// Each process's kernel objects (task_struct, stack, mm_struct, VMAs).
    pub kobjects: std::collections::BTreeMap<u32, crate::kobjects::TaskObjects>,
    /// Address-space ids of live address spaces.
    pub asids: AsidAllocator,
    /// Exited processes not yet waited for.
    pub zombies: std::collections::BTreeMap<u32, Zombie>,
    /// The overcommit sysctls and `vm_committed_as`, shared by every
    /// address space of the machine.
    pub overcommit: Overcommit,
    /// Per CPU, the vmap stacks exited tasks left for the next ones
    /// (`cached_stacks`, VMAP_STACK).
    pub cached_stacks: Vec<[Option<VirtAddr>; crate::kobjects::NR_CACHED_STACKS]>,
}

impl TaskState {
    /// The state of a machine just booted: its overcommit policy knows the
    /// RAM, and the reserves take their boot values from the free memory
    /// (`init_admin_reserve`, `init_user_reserve`).
    pub fn at_boot(pa: &mm::page_alloc::PageAlloc) -> TaskState {
        let t = TaskState::default();
        t.overcommit.set_totals(pa.totalram_pages(), 0);
        t.overcommit.init_reserves(pa.nr_free_pages());
        t
    }
}

/// A TLB shootdown over every CPU's MMU, started by CPU `.2`, with its
/// `tlb:tlb_flush` events in `.1`: a local mm shootdown on the CPU that
/// asks, a remote shootdown on the others. (Linux flushes only the CPUs in
/// the mm's cpumask; lmm flushes every CPU, so each gets its event.)
pub struct AllCpus<'a>(pub &'a mut [Mmu], pub &'a mm::trace::Trace, pub CpuId);

impl AllCpus<'_> {
    fn flush_each(&mut self, pages: i64, flush: impl Fn(&mut Mmu)) {
        use mm::trace::{Event, TlbFlushReason};
        for (i, m) in self.0.iter_mut().enumerate() {
            flush(m);
            let reason = if i == self.2 .0 {
                TlbFlushReason::LocalMmShootdown
            } else {
                TlbFlushReason::RemoteShootdown
            };
            self.1.emit(CpuId(i), || Event::TlbFlush { reason, pages });
        }
    }
}

impl TlbShootdown for AllCpus<'_> {
    fn flush_range(&mut self, asid: u16, start: VirtAddr, end: VirtAddr) {
        let pages = (end.0.saturating_sub(start.0) / PAGE_SIZE) as i64;
        self.flush_each(pages, |m| m.flush_range(asid, start, end));
    }
    fn flush_asid(&mut self, asid: u16) {
        self.flush_each(mm::trace::TLB_FLUSH_ALL, |m| m.flush_asid(asid));
    }
}

/// How many times one user access may fault before lmm calls it a
/// handler bug (SIGSEGV) rather than loop.
pub const MAX_FAULT_RETRIES: u32 = 64;

/// The files `proc_pid` knows.
pub const PROC_PID_FILES: &[&str] = &[
    "maps",
    "smaps",
    "smaps_rollup",
    "status",
    "stat",
    "statm",
    "pagemap",
    "oom_score",
    "oom_score_adj",
    "oom_adj",
];

/// The per-CPU MMUs a machine with `cpus` CPUs starts with.
pub fn new_cpus(cpus: usize) -> Vec<Mmu> {
    (0..cpus.max(1)).map(|_| Mmu::new()).collect()
}

/// A fresh address space (x86-64, x86-32 or arm64 by the machine's
/// architecture) with ASLR off for a stack rlimit, charging
/// its commitments to the machine's overcommit policy `oc` (whose totals it
/// refreshes: `totalram_pages`, and swap as `oc` already records it).
/// With 5-level page tables (`la57`) TASK_SIZE is 2^56 - 4096 while
/// placement without a high hint stays below DEFAULT_MAP_WINDOW.
fn new_mm(
    rlim_stack: u64,
    pa: &mm::page_alloc::PageAlloc,
    la57: bool,
    oc: &Overcommit,
) -> MmStruct {
    let rlimits = Rlimits {
        stack: rlim_stack,
        ..Rlimits::default()
    };
    let arm64 = pa.arch == mm::arch::Arch::Arm64;
    let mut mm = MmStruct::new(if pa.arch.is_32bit() {
        MmLayout::x86_32(rlimits)
    } else if arm64 {
        MmLayout::arm64(rlimits)
    } else if la57 {
        MmLayout::x86_64_la57(rlimits)
    } else {
        MmLayout::x86_64(rlimits)
    });
    // Our machines' x86-64 CPUs have PKU (smaps prints ProtectionKey);
    // arm64 has no [vsyscall] gate and no protection keys (POE is
    // not modelled).
    mm.pkeys = pa.arch == mm::arch::Arch::X86_64;
    if arm64 {
        mm.vsyscall = false;
    }
    oc.set_totals(pa.totalram_pages(), oc.total_swap_pages());
    mm.overcommit = oc.clone();
    mm
}

/// Runs `f` with the page-table operations of `p`, commits the RSS and
/// adds the faults it resolved to the task's counters.
fn with_ops<R>(
    p: &mut Process,
    pa: &mm::page_alloc::PageAlloc,
    cache: &PageCache,
    swap: &mm::swap_state::SwapState,
    cpus: &mut [Mmu],
    zero: Option<Pfn>,
    f: impl FnOnce(&mut MmStruct, &mut UserPageTables<'_>) -> R,
) -> R {
    let prev = pa.trace.switch_to(CpuId(p.cpu), p.pid, &p.comm);
    let mut tlb = AllCpus(cpus, &pa.trace, CpuId(p.cpu));
    let mut ops = UserPageTables::new(
        &mut p.pt,
        pa,
        cache,
        swap,
        CpuId(p.cpu),
        p.asid,
        &mut tlb,
        zero,
    );
    ops.ahead = std::mem::take(&mut p.ahead);
    let r = f(&mut p.mm, &mut ops);
    ops.commit(&mut p.mm);
    p.ahead = std::mem::take(&mut ops.ahead);
    let faults = Faults {
        minor: ops.faults.0,
        major: ops.faults.1,
    };
    p.add_faults(faults);
    pa.trace.switch_back(CpuId(p.cpu), prev);
    r
}

/// The address space being built by exec ([`ExecMm`] over the real mmap
/// layer and page tables).
struct ExecTarget<'a> {
    proc: &'a mut Process,
    pa: &'a mm::page_alloc::PageAlloc,
    cache: &'a PageCache,
    swap: &'a mm::swap_state::SwapState,
    cpus: &'a mut [Mmu],
    zero: Option<Pfn>,
}

impl ExecTarget<'_> {
    fn ops<R>(&mut self, f: impl FnOnce(&mut MmStruct, &mut UserPageTables<'_>) -> R) -> R {
        with_ops(
            self.proc, self.pa, self.cache, self.swap, self.cpus, self.zero, f,
        )
    }

    /// Writes `bytes` at `va` with FOLL_FORCE rights: each page is faulted
    /// in for writing (a private file page is copied), then written through
    /// the direct map, whatever the VMA's protection.
    fn force_write(&mut self, va: u64, bytes: &[u8]) -> Result<(), Errno> {
        let end = va.checked_add(bytes.len() as u64).ok_or(Errno::EFAULT)?;
        let mut at = va;
        while at < end {
            let page = at & PAGE_MASK;
            let chunk_end = page.saturating_add(PAGE_SIZE).min(end);
            let key = self
                .proc
                .mm
                .vma_lookup(VirtAddr(page))
                .ok_or(Errno::EFAULT)?
                .start;
            self.ops(|mm, ops| -> Result<(), Errno> {
                let private = !mm
                    .vma_lookup(key)
                    .is_some_and(|v| v.flags.contains(VmFlags::MAYSHARE));
                if private {
                    mm.anon_vma_prepare(key);
                }
                let v = mm.vma_lookup(key).ok_or(Errno::EFAULT)?.clone();
                mm::mm_types::PageTableOps::populate(
                    ops,
                    &v,
                    VirtAddr(page),
                    VirtAddr(page + PAGE_SIZE),
                    true,
                )
            })?;
            let pa = self.proc.pt.translate(VirtAddr(at)).ok_or(Errno::EFAULT)?;
            let off = (at - va) as usize;
            let n = (chunk_end - at) as usize;
            self.pa.direct_map().write(pa, &bytes[off..off + n]);
            at = chunk_end;
        }
        Ok(())
    }
}

impl ExecMm for ExecTarget<'_> {
    fn task_size(&self) -> u64 {
        exec::ExecArch::for_arch(self.pa.arch).task_size
    }
    fn pick_mmap_layout(&mut self, rlim_stack: u64) {
        let rlimits = Rlimits {
            stack: rlim_stack,
            ..Rlimits::default()
        };
        let l = if self.pa.arch == mm::arch::Arch::Arm64 {
            MmLayout::arm64(rlimits)
        } else {
            MmLayout::x86_64(rlimits)
        };
        let mm = &mut self.proc.mm;
        mm.mmap_base = l.mmap_base;
        mm.mmap_legacy_base = l.mmap_legacy_base;
        mm.rlimits.stack = rlim_stack;
    }
    fn mmap_base(&self) -> VirtAddr {
        self.proc.mm.mmap_base
    }
    fn mmap(
        &mut self,
        addr: VirtAddr,
        len: u64,
        prot: u32,
        flags: u32,
        file: Option<FileRef>,
        offset: u64,
    ) -> Result<VirtAddr, Errno> {
        self.ops(|mm, ops| mm::mmap::mmap(mm, ops, addr, len, prot, flags, file, offset))
    }
    fn munmap(&mut self, addr: VirtAddr, len: u64) -> Result<(), Errno> {
        self.ops(|mm, ops| mm::mmap::munmap(mm, ops, addr, len))
    }
    fn vm_brk_flags(&mut self, addr: VirtAddr, len: u64, exec: bool) -> Result<(), Errno> {
        // vm_brk_flags gives the VMA the flags of an anonymous private rw
        // mapping (VM_DATA_DEFAULT_FLAGS | VM_ACCOUNT), as MAP_FIXED does.
        let prot = PROT_READ | PROT_WRITE | if exec { PROT_EXEC } else { 0 };
        self.mmap(
            addr,
            len,
            prot,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
            None,
            0,
        )
        .map(|_| ())
    }
    fn get_unmapped_area(&mut self, len: u64) -> Result<VirtAddr, Errno> {
        mm::mmap::get_unmapped_area(&self.proc.mm, None, VirtAddr(0), len, 0)
    }
    fn install_special_mapping(
        &mut self,
        addr: VirtAddr,
        len: u64,
        prot: u32,
        name: &'static str,
    ) -> Result<(), Errno> {
        // map_vdso: the text is VM_READ|VM_EXEC|VM_MAY*; the data pages
        // are VM_READ|VM_MAYREAD|VM_IO|VM_DONTDUMP|VM_PFNMAP.
        let flags = if prot & PROT_EXEC != 0 {
            VmFlags::from_prot(prot) | VmFlags::MAYREAD | VmFlags::MAYWRITE | VmFlags::MAYEXEC
        } else {
            VmFlags::from_prot(prot)
                | VmFlags::MAYREAD
                | VmFlags::IO
                | VmFlags::DONTDUMP
                | VmFlags::PFNMAP
        };
        self.proc.mm.insert_special_mapping(addr, len, flags, name)
    }
    fn insert_stack_vma(
        &mut self,
        start: VirtAddr,
        end: VirtAddr,
        exec: bool,
    ) -> Result<(), Errno> {
        let mm = &mut self.proc.mm;
        if let Some(v) = mm.vma_lookup(VirtAddr(end.0 - 1)) {
            if v.end == end && v.flags.contains(VmFlags::GROWSDOWN) {
                if start < v.start {
                    mm::mmap::expand_stack(mm, start)?;
                }
                return Ok(());
            }
        }
        let sp = mm.start_stack;
        mm.insert_stack_vma(start, end, sp, exec)
    }
    fn write_user(&mut self, va: VirtAddr, bytes: &[u8]) -> Result<(), Errno> {
        self.force_write(va.0, bytes)
    }
    fn clear_user(&mut self, va: VirtAddr, len: u64) -> Result<(), Errno> {
        let zeros = vec![0u8; len as usize];
        self.force_write(va.0, &zeros)
    }
    fn copy_to_user(&mut self, va: VirtAddr, bytes: &[u8]) -> Result<(), Errno> {
        // Without FOLL_FORCE a store needs a VMA with VM_WRITE (the fault
        // handler's access check); a page that cannot be faulted in (past
        // EOF) fails in force_write.
        let end = va.0.checked_add(bytes.len() as u64).ok_or(Errno::EFAULT)?;
        let mut at = va.0 & PAGE_MASK;
        while at < end {
            let v = self.proc.mm.vma_lookup(VirtAddr(at)).ok_or(Errno::EFAULT)?;
            if !v.flags.contains(VmFlags::WRITE) {
                return Err(Errno::EFAULT);
            }
            at = v.end.0.min(end.next_multiple_of(PAGE_SIZE));
        }
        self.force_write(va.0, bytes)
    }
    fn set_layout(&mut self, l: &ExecLayout) {
        let mm = &mut self.proc.mm;
        mm.start_code = l.start_code;
        mm.end_code = l.end_code;
        mm.start_data = l.start_data;
        mm.end_data = l.end_data;
        mm.start_brk = l.start_brk;
        mm.brk = l.brk;
        mm.start_stack = l.start_stack;
        mm.arg_start = l.arg_start;
        mm.arg_end = l.arg_end;
        mm.env_start = l.env_start;
        mm.env_end = l.env_end;
    }
}

impl Machine {
    fn proc_mut(&mut self, pid: u32) -> Result<&mut Process, Errno> {
        self.processes.get_mut(&pid).ok_or(Errno::ESRCH)
    }

    /// The process `pid`.
    pub fn process(&self, pid: u32) -> Option<&Process> {
        self.processes.get(&pid)
    }

    /// Process `pid`, to change its bookkeeping (parent, comm, files).
    pub fn process_mut(&mut self, pid: u32) -> Option<&mut Process> {
        self.processes.get_mut(&pid)
    }

    /// Whether the CPU has memory protection keys (x86-64 only): address
    /// spaces made from now on print smaps' `ProtectionKey:` line or not.
    pub fn set_pkeys(&mut self, on: bool) {
        self.tasks.no_pkeys = !on;
    }

    /// The vm.legacy_va_layout sysctl: address spaces made from now on
    /// place mmaps bottom-up.
    pub fn set_legacy_va_layout(&mut self, legacy: bool) {
        self.tasks.legacy_va_layout = legacy;
    }

    fn ensure_zero_page(&mut self) -> Result<Pfn, Errno> {
        if let Some(z) = self.tasks.zero_pfn {
            return Ok(z);
        }
        let pfn = self
            .pa
            .alloc_pages(CpuId(0), Gfp::KERNEL, Order(0))
            .ok_or(Errno::ENOMEM)?;
        self.pa.direct_map().zero_pages(pfn, 1);
        if let Some(p) = self.pa.page(pfn) {
            p.set(mm::memmap::PageFlags::RESERVED);
        }
        self.tasks.zero_pfn = Some(pfn);
        Ok(pfn)
    }

    /// True if processes get 5-level page tables (the kernel's are).
    fn la57(&self) -> bool {
        self.kernel_pt
            .as_ref()
            .is_some_and(|k| k.mode() == mm::arch::pte::PagingMode::X86_64L5)
    }

    /// A new, empty address space for a task on `cpu` (`mm_alloc` +
    /// `pgd_alloc`): page tables sharing the kernel half, an ASID (flushed
    /// everywhere if it was used before) and an mm linked into the rmap.
    fn new_address_space(&mut self, cpu: usize) -> Result<(MmStruct, PageTable, u16), Errno> {
        let mut mm = new_mm(
            self.tasks.exec_params.rlimit_stack,
            &self.pa,
            self.la57(),
            &self.tasks.overcommit,
        );
        mm.pkeys &= !self.tasks.no_pkeys;
        mm.legacy_layout = self.tasks.legacy_va_layout;
        self.attach_address_space(cpu, mm)
    }

    /// Gives `mm` page tables sharing the kernel half (`pgd_alloc`), an
    /// ASID (flushed everywhere if it was used before) and links it into
    /// the rmap.
    fn attach_address_space(
        &mut self,
        cpu: usize,
        mut mm: MmStruct,
    ) -> Result<(MmStruct, PageTable, u16), Errno> {
        let kernel = self.kernel_pt.as_ref().ok_or(Errno::ENOEXEC)?;
        let mut frames = PgtableFrames {
            pa: &self.pa,
            cpu: CpuId(cpu),
        };
        let pt = PageTable::new_user(kernel, &mut frames);
        let got = pt.and_then(|pt| match self.tasks.asids.alloc() {
            Some(a) => Ok((pt, a)),
            None => {
                pt.destroy(&mut frames);
                Err(Errno::EAGAIN)
            }
        });
        let (pt, (asid, reused)) = match got {
            Ok(x) => x,
            Err(e) => {
                // A forked mm gives back what dup_mmap charged; its new
                // anon_vmas were never linked.
                mm.overcommit.vm_unacct_memory(mm.accounted_vm() as i64);
                for v in mm.iter() {
                    v.anon_vma.inspect(|&a| self.rmap.forget_anon_vma(a));
                }
                return Err(e);
            }
        };
        if reused {
            AllCpus(&mut self.cpus, &self.pa.trace, CpuId(cpu)).flush_asid(asid);
        }
        mm.attach(
            self.rmap.clone(),
            self.cache.clone(),
            MmEntry {
                root: pt.root(),
                mode: pt.mode(),
                asid,
                rss: mm.rss.clone(),
            },
        );
        Ok((mm, pt, asid))
    }

    /// Creates a process with an empty address space (`mm_alloc`), named
    /// `comm`, on the next CPU round-robin; returns its pid (1, 2, ...).
    pub fn spawn(&mut self, comm: &str) -> Result<u32, Errno> {
        self.new_task(comm, 0, None)
    }

    /// A new task: its kernel objects and either an empty address space or
    /// Pages held by the kernel stacks each CPU keeps for its next task
    /// (VMAP_STACK's `cached_stacks`): free memory that a freed task left
    /// in a cache, as slab caches keep empty slabs.
    pub fn cached_stack_pages(&self) -> u64 {
        let per = self.pa.arch.thread_size() / PAGE_SIZE;
        self.tasks.cached_stacks.iter().flatten().flatten().count() as u64 * per
    }

    /// Runs `f` with the slab and page allocators and where kernel stacks
    /// come from: vmalloc where the arch has CONFIG_VMAP_STACK (64-bit:
    /// x86-64 and arm64), the buddy allocator on 32-bit x86.
    pub(crate) fn with_stacks<R>(
        &mut self,
        f: impl FnOnce(&SlabAllocator, &PageAlloc, KernelStacks) -> R,
    ) -> R {
        let ncpus = self.cpus.len().max(1);
        if self.tasks.cached_stacks.len() < ncpus {
            self.tasks.cached_stacks.resize(ncpus, Default::default());
        }
        let mut flush = crate::kernel::flush_all(&mut self.cpus);
        let stacks = match self.kernel_pt.as_mut() {
            Some(pt) if !self.pa.arch.is_32bit() => KernelStacks::Vmap(VmapStacks {
                vmalloc: &mut self.vmalloc,
                pt,
                cached: &mut self.tasks.cached_stacks,
                flush: &mut flush,
            }),
            _ => KernelStacks::Pages,
        };
        f(&self.slab, &self.pa, stacks)
    }

    /// `mm` (fork's copy, linked by the caller).
    fn new_task(
        &mut self,
        comm: &str,
        ppid: u32,
        space: Option<(MmStruct, PageTable, u16)>,
    ) -> Result<u32, Errno> {
        if self.cpus.is_empty() {
            self.cpus = new_cpus(self.config.cpus);
        }
        self.ensure_zero_page()?;
        let pid = self.tasks.next_pid.max(1);
        let cpu = (pid as usize - 1) % self.cpus.len();
        let (mm, pt, asid) = match space {
            Some(s) => s,
            None => self.new_address_space(cpu)?,
        };
        let kobj = self
            .with_stacks(|sa, pa, v| TaskObjects::alloc(sa, pa, CpuId(cpu), v))
            .and_then(|mut k| match k.new_mm(&self.slab, &self.pa, CpuId(cpu)) {
                Ok(()) => Ok(k),
                Err(e) => {
                    self.with_stacks(|sa, pa, v| k.free(sa, pa, CpuId(cpu), v));
                    Err(e)
                }
            });
        let mut p = Process {
            pid,
            comm: comm.chars().take(15).collect(),
            mm,
            pt,
            asid,
            cpu,
            exec: None,
            ppid,
            flt: Faults::default(),
            cflt: Faults::default(),
            files: Default::default(),
            oom_score_adj: 0,
            threads: vec![pid],
            running: pid,
            thread_flt: Default::default(),
            pgid: pid,
            sid: 0,
            did_exec: false,
            ahead: Default::default(),
        };
        let mut kobj = match kobj {
            Ok(k) => k,
            Err(e) => {
                self.teardown(p);
                return Err(e);
            }
        };
        kobj.sync_vmas(&self.slab, &self.pa, CpuId(cpu), &p.mm);
        self.tasks.kobjects.insert(pid, kobj);
        self.tasks.next_pid = pid + 1;
        p.cpu = cpu;
        self.processes.insert(pid, p);
        Ok(pid)
    }

    /// fork(2): a child whose address space is a copy of `pid`'s
    /// (`dup_mmap`): VMAs copied (DONTCOPY left out, WIPEONFORK empty),
    /// the ptes of every VMA with anonymous pages copied with
    /// copy-on-write (`copy_page_range`), the rest refaulted from the page
    /// cache. Returns the child's pid.
    pub fn fork(&mut self, pid: u32) -> Result<u32, Errno> {
        let zero = self.tasks.zero_pfn;
        let parent = self.processes.get_mut(&pid).ok_or(Errno::ESRCH)?;
        let child_mm = parent.mm.dup_mmap()?;
        let (comm, pcpu) = (parent.comm.clone(), parent.cpu);
        let (mut child_mm, mut child_pt, asid) = self.attach_address_space(pcpu, child_mm)?;
        let parent = self.processes.get_mut(&pid).ok_or(Errno::ESRCH)?;
        let vmas: Vec<mm::mm_types::Vma> = parent
            .mm
            .iter()
            .filter(|v| mm::mmap::vma_needs_copy(v) && !v.flags.contains(VmFlags::DONTCOPY))
            .cloned()
            .collect();
        let mut copied = Ok(());
        {
            let mut ptlb = AllCpus(&mut self.cpus, &self.pa.trace, CpuId(pcpu));
            let mut pops = UserPageTables::new(
                &mut parent.pt,
                &self.pa,
                &self.cache,
                &self.swap,
                CpuId(pcpu),
                parent.asid,
                &mut ptlb,
                zero,
            );
            let mut ctlb = mm::memory::NoTlb;
            let mut cops = UserPageTables::new(
                &mut child_pt,
                &self.pa,
                &self.cache,
                &self.swap,
                CpuId(pcpu),
                asid,
                &mut ctlb,
                zero,
            );
            for v in &vmas {
                copied = pops.copy_page_range(&mut cops, v);
                if copied.is_err() {
                    break;
                }
            }
            cops.commit(&mut child_mm);
        }
        let space = (child_mm, child_pt, asid);
        if let Err(e) = copied {
            self.teardown_parts(space, pcpu);
            return Err(e);
        }
        let child = self.new_task(&comm, pid, Some(space))?;
        let (exec, files, adj, pgid, sid) = match self.processes.get(&pid) {
            Some(p) => (
                p.exec.clone(),
                p.files.clone(),
                p.oom_score_adj,
                p.pgid,
                p.sid,
            ),
            None => (None, Default::default(), 0, child, 0),
        };
        if let Some(c) = self.processes.get_mut(&child) {
            c.exec = exec;
            c.files = files;
            c.oom_score_adj = adj;
            c.pgid = pgid;
            c.sid = sid;
        }
        Ok(child)
    }

    /// execve: replaces `pid`'s address space with `path` loaded from the
    /// host (see [`crate::exec::exec`]). The new image is built in a fresh
    /// mm; on success the old one is torn down, on failure the new one is.
    pub fn exec(
        &mut self,
        pid: u32,
        path: &str,
        argv: &[String],
        envp: &[String],
    ) -> Result<ExecResult, Errno> {
        self.exec_as(pid, path, path, argv, envp)
    }

    /// [`Machine::exec`] of the host file `host_path` under the name
    /// `filename` (the execve argument: `AT_EXECFN`; see
    /// [`crate::exec::exec_as`]).
    pub fn exec_as(
        &mut self,
        pid: u32,
        host_path: &str,
        filename: &str,
        argv: &[String],
        envp: &[String],
    ) -> Result<ExecResult, Errno> {
        // The x86-64 and arm64 binary formats are modelled: an x86-64 ELF
        // on a 32-bit kernel fails elf_check_arch (ENOEXEC), and loading
        // i386 ELF32 binaries is not built yet.
        if self.config.arch.is_32bit() {
            return Err(Errno::ENOEXEC);
        }
        let mut params = self.tasks.exec_params.clone();
        params.arch = exec::ExecArch::for_arch(self.config.arch);
        if self.config.arch == mm::arch::Arch::Arm64 {
            // ELF_PLATFORM "aarch64" and arm64's vDSO; AT_HWCAP and
            // AT_MINSIGSTKSZ keep the parameters' values (CPU features
            // are not modelled).
            params.platform = "aarch64".into();
            params.vdso = params.vdso.map(|_| exec::VdsoLayout::ARM64);
        }
        let zero = Some(self.ensure_zero_page()?);
        let (cpu, comm, ppid, flt, cflt, files, oom_score_adj, own_flt, pgid, sid) = {
            let p = self.proc_mut(pid)?;
            (
                p.cpu,
                p.comm.clone(),
                p.ppid,
                p.flt,
                p.cflt,
                p.files.clone(),
                p.oom_score_adj,
                p.thread_flt.get(&p.running).copied().unwrap_or_default(),
                p.pgid,
                p.sid,
            )
        };
        let (mm, pt, asid) = self.new_address_space(cpu)?;
        let mut fresh = Process {
            pid,
            comm,
            mm,
            pt,
            asid,
            cpu,
            exec: None,
            ppid,
            flt,
            cflt,
            files,
            oom_score_adj,
            threads: vec![pid],
            running: pid,
            // de_thread: the exec'ing thread, the group's only one now
            // with the group's pid, keeps its own fault counts.
            thread_flt: [(pid, own_flt)].into(),
            pgid,
            sid,
            did_exec: true,
            ahead: Default::default(),
        };
        let r = {
            let mut target = ExecTarget {
                proc: &mut fresh,
                pa: &self.pa,
                cache: &self.cache,
                swap: &self.swap,
                cpus: &mut self.cpus,
                zero,
            };
            exec::exec_as(&mut target, host_path, filename, argv, envp, &params)
        };
        match r {
            Ok(res) => {
                fresh.comm = res
                    .exe_path
                    .rsplit('/')
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(15)
                    .collect();
                fresh.exec = Some(res.clone());
                if let Some(k) = self.tasks.kobjects.get_mut(&pid) {
                    // exec_mmap: the new mm gets its own mm_struct.
                    let _ = k.new_mm(&self.slab, &self.pa, CpuId(cpu));
                    k.sync_vmas(&self.slab, &self.pa, CpuId(cpu), &fresh.mm);
                }
                let old = self.processes.insert(pid, fresh);
                if let Some(mut old) = old {
                    // The faults exec took were the new image's; the task's
                    // counters carry on.
                    old.flt = Faults::default();
                    // de_thread: the group's other threads are gone.
                    for &tid in old.threads.iter().filter(|&&t| t != pid) {
                        self.free_task_objects(tid, cpu);
                    }
                    self.teardown(old);
                }
                Ok(res)
            }
            Err(e) => {
                let mut fresh = fresh;
                // The faults the failed exec took are the caller's.
                let faults = Faults {
                    minor: fresh.flt.minor - flt.minor,
                    major: fresh.flt.major - flt.major,
                };
                fresh.flt = Faults::default();
                self.teardown(fresh);
                if let Some(p) = self.processes.get_mut(&pid) {
                    p.add_faults(faults);
                }
                Err(e)
            }
        }
    }

    /// Frees everything an address space holds (`exit_mmap` + `pgd_free`).
    fn teardown(&mut self, p: Process) {
        for &pfn in p.ahead.values() {
            self.pa.free_pages(CpuId(p.cpu), pfn, Order(0));
        }
        self.teardown_parts((p.mm, p.pt, p.asid), p.cpu);
    }

    fn teardown_parts(&mut self, (mut mm, mut pt, asid): (MmStruct, PageTable, u16), cpu: usize) {
        let zero = self.tasks.zero_pfn;
        {
            let mut tlb = AllCpus(&mut self.cpus, &self.pa.trace, CpuId(cpu));
            let mut ops = UserPageTables::new(
                &mut pt,
                &self.pa,
                &self.cache,
                &self.swap,
                CpuId(cpu),
                asid,
                &mut tlb,
                zero,
            );
            exit_mmap(&mut mm, &mut ops);
        }
        mm.detach();
        self.tasks.asids.free(asid);
        let mut frames = PgtableFrames {
            pa: &self.pa,
            cpu: CpuId(cpu),
        };
        pt.destroy(&mut frames);
        drop(mm);
        self.reap_cache(cpu);
        self.run_kswapd();
    }

    /// Frees the page cache of shmem objects nothing reaches any more
    /// (the final `iput` of an unlinked tmpfs file or shared anonymous
    /// memory).
    #[inline]
    pub(crate) fn reap_cache(&mut self, cpu: usize) {
        let rmap = &self.rmap;
        self.cache
            .reap(&self.pa, CpuId(cpu), &|m| rmap.file_mapped(m));
    }

    /// exit: tears the process down (every page and table freed, its TLB
    /// entries flushed on every CPU) and forgets it, with exit code 0.
    pub fn exit(&mut self, pid: u32) -> Result<(), Errno> {
        self.exit_code(pid, 0)
    }

    /// exit_group(code): tears the process down and leaves a zombie that
    /// its parent can [`Machine::wait`] for (a process the machine
    /// spawned has no parent and is reaped at once). Its children are
    /// reparented to no one.
    pub fn exit_code(&mut self, pid: u32, code: i32) -> Result<(), Errno> {
        let p = self.processes.remove(&pid).ok_or(Errno::ESRCH)?;
        let cpu = CpuId(p.cpu);
        let pgid = p.pgid;
        let (ppid, flt) = (
            p.ppid,
            Faults {
                minor: p.flt.minor + p.cflt.minor,
                major: p.flt.major + p.cflt.major,
            },
        );
        let threads = p.threads.clone();
        self.teardown(p);
        for tid in threads.into_iter().filter(|&t| t != pid).chain([pid]) {
            self.free_task_objects(tid, cpu.0);
        }
        for c in self.processes.values_mut() {
            if c.ppid == pid {
                c.ppid = 0;
            }
        }
        self.tasks.zombies.retain(|_, z| z.ppid != pid);
        if ppid != 0 && self.processes.contains_key(&ppid) {
            self.tasks.zombies.insert(
                pid,
                Zombie {
                    ppid,
                    code,
                    flt,
                    signal: None,
                    pgid,
                },
            );
        }
        Ok(())
    }

    /// Frees the kernel objects of task `tid` (`free_task`), if it has any.
    fn free_task_objects(&mut self, tid: u32, cpu: usize) {
        if let Some(mut k) = self.tasks.kobjects.remove(&tid) {
            self.with_stacks(|sa, pa, v| k.free(sa, pa, CpuId(cpu), v));
        }
    }

    /// clone(2) with CLONE_VM|CLONE_THREAD (pthread_create): a new thread
    /// in `pid`'s thread group, sharing its mm, page table, files and
    /// fault counters; it gets a tid from the pid space (the next pid, as
    /// Linux's `alloc_pid` gives threads and processes ids from one
    /// space) and its own `task_struct`, `pid` and kernel stack. Returns
    /// the tid. ESRCH if there is no such process, ENOMEM if the objects
    /// cannot be allocated.
    pub fn clone_thread(&mut self, pid: u32) -> Result<u32, Errno> {
        let cpu = self.processes.get(&pid).ok_or(Errno::ESRCH)?.cpu;
        let tid = self.tasks.next_pid.max(1);
        let kobj =
            self.with_stacks(|sa, pa, v| TaskObjects::alloc_thread(sa, pa, CpuId(cpu), v))?;
        self.tasks.kobjects.insert(tid, kobj);
        self.tasks.next_pid = tid + 1;
        if let Some(p) = self.processes.get_mut(&pid) {
            p.threads.push(tid);
        }
        Ok(tid)
    }

    /// exit(2) of thread `tid` of `pid`'s thread group while other threads
    /// of it live: the thread's kernel objects are freed (a leader's stay
    /// with the process until the group ends, as its zombie task does in
    /// Linux) and it leaves [`Process::threads`]. Returns how many threads
    /// are left. ESRCH if `tid` is not a live thread of `pid`; the last
    /// thread's exit is the group's ([`Machine::exit_code`]), EBUSY here.
    pub fn exit_thread(&mut self, pid: u32, tid: u32) -> Result<usize, Errno> {
        let p = self.processes.get_mut(&pid).ok_or(Errno::ESRCH)?;
        let at = p
            .threads
            .iter()
            .position(|&t| t == tid)
            .ok_or(Errno::ESRCH)?;
        if p.threads.len() == 1 {
            return Err(Errno::EBUSY);
        }
        p.threads.remove(at);
        // Its faults stay the group's ([`Process::flt`]), as Linux adds a
        // dead thread's to `signal->min_flt`.
        p.thread_flt.remove(&tid);
        if p.running == tid {
            p.running = p.threads[0];
        }
        let (left, cpu) = (p.threads.len(), p.cpu);
        if tid != pid {
            self.free_task_objects(tid, cpu);
        }
        Ok(left)
    }

    /// The process ends killed by signal `sig`: torn down as by
    /// [`Machine::exit_code`] (with `code`), and its zombie reports the
    /// signal (WIFSIGNALED) to the parent's wait.
    pub fn exit_signal(&mut self, pid: u32, code: i32, sig: i32) -> Result<(), Errno> {
        self.exit_code(pid, code)?;
        if let Some(z) = self.tasks.zombies.get_mut(&pid) {
            z.signal = Some(sig);
        }
        Ok(())
    }

    /// wait4: reaps an exited child of `ppid` (`pid` 0 or -1: any, the
    /// lowest pid first) and returns its pid and exit code; its faults
    /// join the parent's cmin_flt/cmaj_flt. ECHILD if there is no such
    /// child, EAGAIN if it exists but has not exited (no blocking here).
    pub fn wait(&mut self, ppid: u32, pid: i64) -> Result<(u32, i32), Errno> {
        self.wait_zombie(ppid, WaitTarget::of_wait4(pid))
            .map(|(c, z)| (c, z.code))
    }

    /// [`Machine::wait`] returning the whole zombie reaped (its wait
    /// status and the faults its rusage reports), for a wait4 that writes
    /// `wstatus` and `rusage`.
    pub fn wait_zombie(&mut self, ppid: u32, target: WaitTarget) -> Result<(u32, Zombie), Errno> {
        let (c, z) = self.peek_zombie(ppid, target)?;
        self.tasks.zombies.remove(&c);
        if let Some(p) = self.processes.get_mut(&ppid) {
            p.cflt.minor += z.flt.minor;
            p.cflt.major += z.flt.major;
        }
        Ok((c, z))
    }

    /// True if `pid` has exited and not been reaped yet.
    pub fn is_zombie(&self, pid: u32) -> bool {
        self.tasks.zombies.contains_key(&pid)
    }

    /// Releases zombie `pid` with no parent's wait (Linux's autoreap, for
    /// a parent that ignores SIGCHLD): its faults are not added to the
    /// parent's children's counts, as only a wait adds them. The zombie,
    /// if `pid` was one.
    pub fn release_zombie(&mut self, pid: u32) -> Option<Zombie> {
        self.tasks.zombies.remove(&pid)
    }

    /// The zombie [`Machine::wait_zombie`] would reap, left waitable
    /// (waitid's WNOWAIT); the same errors.
    pub fn peek_zombie(&self, ppid: u32, target: WaitTarget) -> Result<(u32, Zombie), Errno> {
        let target = match target {
            WaitTarget::Group(0) => {
                WaitTarget::Group(self.processes.get(&ppid).map_or(0, |p| p.pgid))
            }
            t => t,
        };
        let takes = |pid: u32, pgid: u32| match target {
            WaitTarget::Any => true,
            WaitTarget::Pid(p) => p == pid,
            WaitTarget::Group(g) => g == pgid,
        };
        let found = self
            .tasks
            .zombies
            .iter()
            .find(|(&c, z)| z.ppid == ppid && takes(c, z.pgid))
            .map(|(&c, z)| (c, *z));
        if let Some(found) = found {
            return Ok(found);
        }
        let live = self
            .processes
            .values()
            .any(|p| p.ppid == ppid && takes(p.pid, p.pgid));
        Err(if live { Errno::EAGAIN } else { Errno::ECHILD })
    }

    /// setpgid(pid, pgid) by `caller` (0s already resolved: `pid` the
    /// caller or one of its children, `pgid` an existing group of its
    /// session or `pid` itself), with kernel/sys.c's checks in its order:
    /// ESRCH for a pid that is neither, EPERM for a child of another
    /// session, EACCES for a child that has exec'd, EPERM for a session
    /// leader or a group that is not in the caller's session.
    pub fn setpgid(&mut self, caller: u32, pid: u32, pgid: u32) -> Result<(), Errno> {
        let c = self.processes.get(&caller).ok_or(Errno::ESRCH)?;
        let csid = c.sid;
        let p = self.processes.get(&pid).ok_or(Errno::ESRCH)?;
        if p.ppid == caller {
            if p.sid != csid {
                return Err(Errno::EPERM);
            }
            if p.did_exec {
                return Err(Errno::EACCES);
            }
        } else if pid != caller {
            return Err(Errno::ESRCH);
        }
        if p.sid == pid {
            return Err(Errno::EPERM);
        }
        if pgid != pid
            && !self
                .processes
                .values()
                .any(|q| q.pgid == pgid && q.sid == csid)
        {
            return Err(Errno::EPERM);
        }
        self.proc_mut(pid)?.pgid = pgid;
        Ok(())
    }

    /// setsid() by `pid`: a new session and group led by it, its id
    /// returned; EPERM if it leads a group already (or a group has its
    /// pid), as Linux's.
    pub fn setsid(&mut self, pid: u32) -> Result<u32, Errno> {
        if self.processes.values().any(|q| q.pgid == pid) {
            return Err(Errno::EPERM);
        }
        let p = self.proc_mut(pid)?;
        p.pgid = pid;
        p.sid = pid;
        Ok(pid)
    }

    /// The processes of group `pgid`, lowest pid first.
    pub fn group(&self, pgid: u32) -> Vec<u32> {
        self.processes
            .values()
            .filter(|p| p.pgid == pgid)
            .map(|p| p.pid)
            .collect()
    }

    /// Runs a memory system call on `pid`'s mm with its page tables.
    pub fn with_mm<R>(
        &mut self,
        pid: u32,
        f: impl FnOnce(&mut MmStruct, &mut UserPageTables<'_>) -> R,
    ) -> Result<R, Errno> {
        let zero = self.tasks.zero_pfn;
        let p = self.processes.get_mut(&pid).ok_or(Errno::ESRCH)?;
        let r = with_ops(
            p,
            &self.pa,
            &self.cache,
            &self.swap,
            &mut self.cpus,
            zero,
            f,
        );
        let cpu = p.cpu;
        if let Some(k) = self.tasks.kobjects.get_mut(&pid) {
            k.sync_vmas(&self.slab, &self.pa, CpuId(cpu), &p.mm);
        }
        self.reap_cache(cpu);
        self.run_kswapd();
        self.trace_sample();
        Ok(r)
    }

    /// Runs `f` with the services an rmap-side operation (truncation,
    /// `try_to_unmap`, `folio_referenced`) needs, on `cpu`.
    pub fn with_rmap<R>(
        &mut self,
        cpu: CpuId,
        f: impl FnOnce(&mut mm::memory::RmapCtx<'_>) -> R,
    ) -> R {
        let mut tlb = AllCpus(&mut self.cpus, &self.pa.trace, cpu);
        let mut ctx = mm::memory::RmapCtx {
            pa: &self.pa,
            cpu,
            rmap: &self.rmap,
            cache: &self.cache,
            swap: &self.swap,
            zero_pfn: self.tasks.zero_pfn,
            tlb: &mut tlb,
        };
        f(&mut ctx)
    }

    /// `mm::debug` over the whole machine: the page allocator, every
    /// process's VMA tree and page-table accounting, and every mapping
    /// across all address spaces against the rmap and page cache
    /// ([`mm::debug::check_mm`]). The first violation, described.
    pub fn check(&self) -> Result<(), String> {
        mm::debug::check_page_alloc(&self.pa).map_err(|e| e.0)?;
        for p in self.processes.values() {
            p.mm.check_invariants()
                .map_err(|e| format!("pid {}: {e}", p.pid))?;
            for (&va, &pfn) in &p.ahead {
                let page = self
                    .pa
                    .page(pfn)
                    .ok_or("a frame handed out ahead outside RAM")?;
                let unmapped = p.pt.lookup(va).is_none_or(|(pte, _)| !pte.present());
                if page.refcount() != 1 || page.mapcount() != 0 || !unmapped {
                    return Err(format!(
                        "pid {}: the frame {pfn:?} handed out ahead for {:#x} has {} references and {} mappings, or its page is mapped",
                        p.pid,
                        va.0,
                        page.refcount(),
                        page.mapcount()
                    ));
                }
            }
            let want = p.pt.count_tables().saturating_sub(1) * PAGE_SIZE;
            if p.mm.pgtables_bytes != want {
                return Err(format!(
                    "pid {}: pgtables_bytes {} but the tables take {want}",
                    p.pid, p.mm.pgtables_bytes
                ));
            }
        }
        self.check_committed_as()?;
        let views: Vec<mm::debug::MmView<'_>> = self
            .processes
            .values()
            .map(|p| mm::debug::MmView {
                mm: &p.mm,
                pt: &p.pt,
            })
            .collect();
        mm::debug::check_mm(
            &self.pa,
            &self.rmap,
            &self.cache,
            self.tasks.zero_pfn,
            &views,
        )
        .map_err(|e| e.0)?;
        mm::debug::check_reclaim(&self.pa, &self.swap, &self.cache.shmem_swapped(), &views)
            .map_err(|e| e.0)
    }

    /// The page-fault exception (`exc_page_fault` → `do_user_addr_fault`):
    /// resolves a fault of `pid` at `addr` through the fault handler. A
    /// fault that runs out of memory invokes the OOM killer
    /// ([`Machine::fault_out_of_memory`]).
    pub fn handle_fault(&mut self, pid: u32, addr: u64, access: Access) -> Result<(), UserFault> {
        match self.do_user_addr_fault(pid, addr, access) {
            Err(UserFault::Oom { .. }) => self.fault_out_of_memory(pid, addr, access),
            r => r,
        }
    }

    /// One pass of the fault handler for `pid` at `addr`.
    pub(crate) fn do_user_addr_fault(
        &mut self,
        pid: u32,
        addr: u64,
        access: Access,
    ) -> Result<(), UserFault> {
        let zero = self.tasks.zero_pfn;
        let Some(p) = self.processes.get_mut(&pid) else {
            return Err(UserFault::Segv {
                addr,
                code: SegvCode::MapErr,
            });
        };
        let acc = match access {
            Access::Read => FaultAccess::Read,
            Access::Write => FaultAccess::Write,
            Access::Exec => FaultAccess::Exec,
        };
        let r = with_ops(
            p,
            &self.pa,
            &self.cache,
            &self.swap,
            &mut self.cpus,
            zero,
            |mm, ops| mm::memory::handle_mm_fault(mm, ops, VirtAddr(addr), acc),
        );
        let cpu = p.cpu;
        if let Some(k) = self.tasks.kobjects.get_mut(&pid) {
            // A grown stack changes the VMA tree.
            k.sync_vmas(&self.slab, &self.pa, CpuId(cpu), &p.mm);
        }
        self.run_kswapd();
        self.trace_sample();
        r.map(|_| ()).map_err(|e| match e {
            FaultError::Segv(code) => UserFault::Segv { addr, code },
            FaultError::Bus => UserFault::Bus { addr },
            FaultError::Oom => UserFault::Oom { addr },
        })
    }

    /// `ptep_clear_flush_young` on `pid`'s page at `va`: whether the pte
    /// was young (accessed since the last test), clearing the bit and
    /// flushing the translation so the next access sets it again.
    pub fn test_and_clear_young(&mut self, pid: u32, va: u64) -> bool {
        let Some(p) = self.processes.get_mut(&pid) else {
            return false;
        };
        let va = VirtAddr(va).page_down();
        let young =
            p.pt.lookup(va)
                .is_some_and(|(pte, level)| level == 1 && pte.present() && pte.accessed());
        if young {
            p.pt.update(va, &|pte| pte.mkold());
            let (asid, cpu) = (p.asid, CpuId(p.cpu));
            AllCpus(&mut self.cpus, &self.pa.trace, cpu).flush_range(asid, va, va + PAGE_SIZE);
        }
        young
    }

    /// Hands out `2^order` consecutive zeroed frames (one block, split
    /// into pages as `split_page` does) for the anonymous write faults
    /// `pid` is expected to take at the pages from `va` on: each such
    /// fault takes its page's frame as it stands instead of a new one.
    /// `lmm native` maps them in the host ahead of the program's touches
    /// (its fault-ahead); the faults are still taken, and counted, by the
    /// fault handler. The first frame's physical address; `None` if the
    /// allocation failed (it never warns) or a page has one already.
    pub fn give_ahead(&mut self, pid: u32, va: u64, order: u8) -> Option<u64> {
        let p = self.processes.get_mut(&pid)?;
        let va = VirtAddr(va).page_down();
        let pages = 1u64 << order;
        if p.ahead
            .range(va..VirtAddr(va.0 + pages * PAGE_SIZE))
            .next()
            .is_some()
        {
            return None;
        }
        let pfn = self.pa.alloc_pages(
            CpuId(p.cpu),
            Gfp::HIGHUSER_MOVABLE | Gfp::NOWARN | Gfp::ZERO,
            Order(order),
        )?;
        self.pa.split_page(pfn, Order(order));
        for i in 0..pages {
            p.ahead
                .insert(VirtAddr(va.0 + i * PAGE_SIZE), Pfn(pfn.0 + i));
        }
        Some(pfn.0 * PAGE_SIZE)
    }

    /// Frees the frame handed out ahead for `pid`'s page at `va` that no
    /// fault took; true if there was one.
    pub fn take_back_ahead(&mut self, pid: u32, va: u64) -> bool {
        let Some(p) = self.processes.get_mut(&pid) else {
            return false;
        };
        match p.ahead.remove(&VirtAddr(va).page_down()) {
            Some(pfn) => {
                self.pa.free_pages(CpuId(p.cpu), pfn, Order(0));
                true
            }
            None => false,
        }
    }

    /// A user-mode access by `pid` of `len` bytes at `va` on its CPU
    /// (a load, store or instruction fetch): every page it covers is
    /// translated by the MMU in order, faults go to the fault handler and
    /// the access is retried. Returns the signal if one is raised.
    pub fn touch(&mut self, pid: u32, va: u64, len: u64, access: Access) -> Result<(), UserFault> {
        let cpu = self
            .processes
            .get(&pid)
            .map(|p| p.cpu)
            .ok_or(UserFault::Segv {
                addr: va,
                code: SegvCode::MapErr,
            })?;
        self.access_on(pid, cpu, va, len.max(1) as usize, access, |_, _, _, _| {})
    }

    /// mmap(2) on `pid` (anonymous if `file` is `None` and MAP_ANONYMOUS).
    #[allow(clippy::too_many_arguments)]
    pub fn sys_mmap(
        &mut self,
        pid: u32,
        addr: u64,
        len: u64,
        prot: u32,
        flags: u32,
        file: Option<FileRef>,
        offset: u64,
    ) -> Result<u64, Errno> {
        self.with_mm(pid, |mm, ops| {
            mm::mmap::mmap(mm, ops, VirtAddr(addr), len, prot, flags, file, offset).map(|a| a.0)
        })?
    }

    /// munmap(2).
    pub fn sys_munmap(&mut self, pid: u32, addr: u64, len: u64) -> Result<u64, Errno> {
        self.with_mm(pid, |mm, ops| {
            mm::mmap::munmap(mm, ops, VirtAddr(addr), len).map(|_| 0)
        })?
    }

    /// mprotect(2).
    pub fn sys_mprotect(&mut self, pid: u32, addr: u64, len: u64, prot: u32) -> Result<u64, Errno> {
        self.with_mm(pid, |mm, ops| {
            mm::mprotect::mprotect(mm, ops, VirtAddr(addr), len, prot).map(|_| 0)
        })?
    }

    /// mremap(2).
    pub fn sys_mremap(
        &mut self,
        pid: u32,
        old: u64,
        old_len: u64,
        new_len: u64,
        flags: u32,
        new_addr: u64,
    ) -> Result<u64, Errno> {
        self.with_mm(pid, |mm, ops| {
            mm::mremap::mremap(
                mm,
                ops,
                VirtAddr(old),
                old_len,
                new_len,
                flags,
                VirtAddr(new_addr),
            )
            .map(|a| a.0)
        })?
    }

    /// brk(2): the new break, or the old one on failure (never an errno).
    pub fn sys_brk(&mut self, pid: u32, brk: u64) -> Result<u64, Errno> {
        self.with_mm(pid, |mm, ops| mm::mmap::brk(mm, ops, VirtAddr(brk)).0)
    }

    /// madvise(2).
    pub fn sys_madvise(
        &mut self,
        pid: u32,
        addr: u64,
        len: u64,
        advice: i32,
    ) -> Result<u64, Errno> {
        self.with_mm(pid, |mm, ops| {
            mm::madvise::madvise(mm, ops, VirtAddr(addr), len, advice).map(|_| 0)
        })?
    }

    /// mlock(2).
    pub fn sys_mlock(&mut self, pid: u32, addr: u64, len: u64) -> Result<u64, Errno> {
        self.with_mm(pid, |mm, ops| {
            mm::mlock::mlock(mm, ops, VirtAddr(addr), len).map(|_| 0)
        })?
    }

    /// munlock(2).
    pub fn sys_munlock(&mut self, pid: u32, addr: u64, len: u64) -> Result<u64, Errno> {
        self.with_mm(pid, |mm, ops| {
            mm::mlock::munlock(mm, ops, VirtAddr(addr), len).map(|_| 0)
        })?
    }

    /// mlockall(2).
    pub fn sys_mlockall(&mut self, pid: u32, flags: u32) -> Result<u64, Errno> {
        self.with_mm(pid, |mm, ops| {
            mm::mlock::mlockall(mm, ops, flags).map(|_| 0)
        })?
    }

    /// munlockall(2).
    pub fn sys_munlockall(&mut self, pid: u32) -> Result<u64, Errno> {
        self.with_mm(pid, |mm, ops| mm::mlock::munlockall(mm, ops).map(|_| 0))?
    }

    /// msync(2).
    pub fn sys_msync(&mut self, pid: u32, addr: u64, len: u64, flags: u32) -> Result<u64, Errno> {
        self.with_mm(pid, |mm, ops| {
            mm::msync::msync(mm, VirtAddr(addr), len, flags, &mut |v, s, e| {
                ops.sync_range(v, s, e)
            })
            .map(|_| 0)
        })?
    }

    /// mincore(2): one byte per page, bit 0 = resident.
    pub fn sys_mincore(&mut self, pid: u32, addr: u64, len: u64) -> Result<Vec<u8>, Errno> {
        self.with_mm(pid, |mm, ops| {
            mm::mincore::mincore(mm, ops, VirtAddr(addr), len)
        })?
    }

    /// `copy_from_user`: reads `len` bytes at `va` as `pid`'s CPU would in
    /// user mode (protection applies; missing pages are faulted in).
    /// EFAULT where the fault handler raises a signal.
    pub fn read_user(&mut self, pid: u32, va: u64, len: usize) -> Result<Vec<u8>, Errno> {
        let cpu = self.processes.get(&pid).ok_or(Errno::ESRCH)?.cpu;
        self.read_user_on(pid, cpu, va, len)
    }

    /// `copy_to_user`: writes `bytes` at `va` through `pid`'s CPU's MMU
    /// (user mode: a read-only page gives EFAULT, a missing one is
    /// faulted in). Pages before the failing one are written, as a partial
    /// copy_to_user leaves them.
    pub fn write_user(&mut self, pid: u32, va: u64, bytes: &[u8]) -> Result<(), Errno> {
        let cpu = self.processes.get(&pid).ok_or(Errno::ESRCH)?.cpu;
        self.write_user_on(pid, cpu, va, bytes)
    }

    /// [`Machine::write_user`] from CPU `cpu` (as a thread of `pid` running
    /// there would): the TLB coherence tests use it.
    pub fn write_user_on(
        &mut self,
        pid: u32,
        cpu: usize,
        va: u64,
        bytes: &[u8],
    ) -> Result<(), Errno> {
        self.store_on(pid, cpu, va, bytes)
            .map_err(|_| Errno::EFAULT)
    }

    /// Reads from CPU `cpu` through its MMU, like [`Machine::read_user`].
    pub fn read_user_on(
        &mut self,
        pid: u32,
        cpu: usize,
        va: u64,
        len: usize,
    ) -> Result<Vec<u8>, Errno> {
        if !self.processes.contains_key(&pid) {
            return Err(Errno::ESRCH);
        }
        if cpu >= self.cpus.len() {
            return Err(Errno::EINVAL);
        }
        let mut out = vec![0u8; len];
        self.access_on(pid, cpu, va, len, Access::Read, |dm, pa, off, n| {
            dm.read(pa, &mut out[off..off + n])
        })
        .map_err(|_| Errno::EFAULT)?;
        Ok(out)
    }

    /// A user-mode store of `bytes` at `va` by `pid` on CPU `cpu`: the
    /// signal if a page cannot be written.
    pub fn store_on(
        &mut self,
        pid: u32,
        cpu: usize,
        va: u64,
        bytes: &[u8],
    ) -> Result<(), UserFault> {
        self.access_on(
            pid,
            cpu,
            va,
            bytes.len(),
            Access::Write,
            |dm, pa, off, n| dm.write(pa, &bytes[off..off + n]),
        )
    }

    /// A user-mode load of `len` bytes at `va` by `pid` on its CPU.
    pub fn load(&mut self, pid: u32, va: u64, len: usize) -> Result<Vec<u8>, UserFault> {
        let segv = UserFault::Segv {
            addr: va,
            code: SegvCode::MapErr,
        };
        let cpu = self.processes.get(&pid).ok_or(segv)?.cpu;
        let mut out = vec![0u8; len];
        self.access_on(pid, cpu, va, len, Access::Read, |dm, pa, off, n| {
            dm.read(pa, &mut out[off..off + n])
        })?;
        Ok(out)
    }

    /// A user-mode store by `pid` on its CPU.
    pub fn store(&mut self, pid: u32, va: u64, bytes: &[u8]) -> Result<(), UserFault> {
        let segv = UserFault::Segv {
            addr: va,
            code: SegvCode::MapErr,
        };
        let cpu = self.processes.get(&pid).ok_or(segv)?.cpu;
        self.store_on(pid, cpu, va, bytes)
    }

    /// The MMU loop of every user access: translate each page in order;
    /// on a page fault run the fault handler and retry. A resolved fault
    /// may fault again (kswapd, run after the fault, or direct reclaim in
    /// another allocation took the page back; a copy-on-write retried
    /// after `pte_same` failed), as Linux retries; a fault that never
    /// sticks is a bug in the handler, and after [`MAX_FAULT_RETRIES`]
    /// becomes SIGSEGV rather than a hang.
    fn access_on(
        &mut self,
        pid: u32,
        cpu: usize,
        va: u64,
        len: usize,
        access: Access,
        mut f: impl FnMut(&mm::direct_map::DirectMap, mm::types::PhysAddr, usize, usize),
    ) -> Result<(), UserFault> {
        let segv = |addr| UserFault::Segv {
            addr,
            code: SegvCode::MapErr,
        };
        let end = va.checked_add(len as u64).ok_or(segv(va))?;
        let dm = self.pa.direct_map().clone();
        let mut at = va;
        while at < end {
            // The last page of the address space has no next page.
            let n = (at & PAGE_MASK).saturating_add(PAGE_SIZE).min(end) - at;
            let mut tries = 0;
            let pa = loop {
                let p = self.processes.get(&pid).ok_or(segv(at))?;
                let (root, mode, asid) = (p.pt.root(), p.pt.mode(), p.asid);
                let mmu = self.cpus.get_mut(cpu).ok_or(segv(at))?;
                match mmu.translate(&dm, root, mode, asid, VirtAddr(at), access, true) {
                    Ok(pa) => break pa,
                    Err(fault) => {
                        if fault.error_code & crate::mmu::PF_NONCANONICAL != 0
                            || tries == MAX_FAULT_RETRIES
                        {
                            return Err(segv(at));
                        }
                        tries += 1;
                        self.trace_page_fault_user(pid, cpu, &fault);
                        self.handle_fault(pid, fault.addr.0, access)?;
                    }
                }
            };
            f(&dm, pa, (at - va) as usize, n as usize);
            at += n;
        }
        Ok(())
    }

    /// `exceptions:page_fault_user` for a fault `pid` took on `cpu`. The
    /// software MMU runs no instructions, so `ip` is known only for an
    /// instruction fetch (the address itself); other faults print 0.
    fn trace_page_fault_user(&self, pid: u32, cpu: usize, fault: &crate::mmu::PageFault) {
        let t = &self.pa.trace;
        if !t.is_on() {
            return;
        }
        let comm = self.processes.get(&pid).map_or("", |p| p.comm.as_str());
        let prev = t.switch_to(CpuId(cpu), pid, comm);
        t.emit(CpuId(cpu), || mm::trace::Event::PageFaultUser {
            address: fault.addr.0,
            ip: if fault.error_code & crate::mmu::PF_INSTR != 0 {
                fault.addr.0
            } else {
                0
            },
            error_code: u64::from(fault.error_code),
        });
        t.switch_back(CpuId(cpu), prev);
    }

    /// /proc/PID/pagemap as the binary file reads, sparsely: for each VMA
    /// the file offset of its first entry (8 bytes per page from address
    /// 0) and its entries, little-endian u64s (`pagemap_read` over the
    /// VMA, in reads of at most `PAGEMAP_MAX_READ` bytes). The entries of
    /// addresses outside every VMA are 0 and left out.
    pub fn pagemap_binary(&mut self, pid: u32) -> Result<Vec<(u64, Vec<u8>)>, String> {
        self.with_user_ops(pid, |mm, ops| {
            let mut out = Vec::new();
            for v in mm.iter() {
                let (mut off, end) = ((v.start.0 >> 12) * 8, (v.end.0 >> 12) * 8);
                while off < end {
                    let bytes = mm::task_mmu::pagemap_read(mm, ops, off, end - off)
                        .map_err(|e| format!("pagemap: {e:?}"))?;
                    if bytes.is_empty() {
                        break;
                    }
                    let n = bytes.len() as u64;
                    out.push((off, bytes));
                    off += n;
                }
            }
            Ok(out)
        })?
    }

    /// Runs `f` on process `pid`'s mm and a read-only view of its page
    /// tables (no TLB to flush), as the /proc readers see them.
    fn with_user_ops<R>(
        &mut self,
        pid: u32,
        f: impl FnOnce(&MmStruct, &UserPageTables) -> R,
    ) -> Result<R, String> {
        let p = self
            .processes
            .get_mut(&pid)
            .ok_or_else(|| format!("no process with pid {pid}"))?;
        let mut tlb = mm::memory::NoTlb;
        let ops = UserPageTables::new(
            &mut p.pt,
            &self.pa,
            &self.cache,
            &self.swap,
            CpuId(p.cpu),
            p.asid,
            &mut tlb,
            self.tasks.zero_pfn,
        );
        Ok(f(&p.mm, &ops))
    }

    /// /proc/PID/FILE for a process: `maps`, `smaps`, `smaps_rollup`,
    /// `status` (Name, Tgid, Pid and the Vm*/Rss* lines), `statm` or `pagemap` (as hex
    /// dump lines `VADDR ENTRY` of the present and swapped pages, since the
    /// binary file cannot be printed).
    pub fn proc_pid(&mut self, pid: u32, file: &str) -> Result<String, String> {
        self.proc_task(pid, None, file)
    }

    /// /proc/PID/task/TID/FILE: [`Machine::proc_pid`]'s files as thread
    /// `tid` of `pid`'s group sees them (`tid_base_stuff`): `stat` and
    /// `status` are the thread's (its tid as the pid, its own faults, -1
    /// as a non-leader's exit signal), the others the group's, which
    /// Linux shows the same from every thread (one mm).
    pub fn proc_tid(&mut self, pid: u32, tid: u32, file: &str) -> Result<String, String> {
        self.proc_task(pid, Some(tid), file)
    }

    /// [`Machine::proc_pid`] (`tid` None) or [`Machine::proc_tid`].
    fn proc_task(&mut self, pid: u32, tid: Option<u32>, file: &str) -> Result<String, String> {
        if let Some(r) = self.proc_pid_oom(pid, file) {
            return r;
        }
        let p = self
            .processes
            .get(&pid)
            .ok_or_else(|| format!("no process with pid {pid}"))?;
        if let Some(t) = tid.filter(|t| !p.threads.contains(t)) {
            return Err(format!("no thread {t} in process {pid}"));
        }
        let task = match file {
            "status" => format!(
                "Name:\t{}\nTgid:\t{}\nPid:\t{}\nPPid:\t{}\n",
                p.comm,
                p.pid,
                tid.unwrap_or(p.pid),
                p.ppid
            ),
            "stat" => proc_task_stat(p, tid),
            _ => String::new(),
        };
        // After the Vm* lines (HugetlbPages), Linux's status goes on with
        // CoreDumping, THP_enabled, untag_mask (not modelled) and Threads.
        let threads = format!("Threads:\t{}\n", p.threads.len().max(1));
        self.with_user_ops(pid, |mm, ops| {
            Ok(match file {
                "maps" => mm::task_mmu::show_maps(mm, ops),
                "smaps" => mm::task_mmu::show_smaps(mm, ops),
                "smaps_rollup" => mm::task_mmu::show_smaps_rollup(mm, ops),
                "status" => task + &mm::task_mmu::show_status_vm(mm) + &threads,
                "stat" => task,
                "statm" => mm::task_mmu::show_statm(mm),
                "pagemap" => {
                    let mut s = String::new();
                    for v in mm.iter() {
                        let mut va = v.start.0;
                        while va < v.end.0 {
                            let e = mm::task_mmu::pagemap_entry(mm, ops, VirtAddr(va));
                            if e & (3 << 62) != 0 {
                                s.push_str(&format!("{va:012x} {e:016x}\n"));
                            }
                            va += PAGE_SIZE;
                        }
                    }
                    s
                }
                other => {
                    return Err(format!(
                        "no such /proc/{pid} file {other:?}; lmm knows: {}",
                        PROC_PID_FILES.join(", ")
                    ))
                }
            })
        })?
    }
}

/// /proc/PID/stat (`do_task_stat`, fs/proc/array.c): the 52 fields of
/// Linux 6.18, with the memory ones real (minflt, cminflt, majflt,
/// cmajflt, vsize, rss, the code/data/stack/arg/env boundaries) and the
/// scheduler ones those of a task that never ran (state R, times 0,
/// priority 20, nice 0) and num_threads the group's.
pub fn proc_pid_stat(p: &Process) -> String {
    proc_task_stat(p, None)
}

/// [`proc_pid_stat`], or with `tid` the thread's /proc/PID/task/TID/stat
/// (`proc_tid_stat`): its tid first, its own minflt and majflt (the
/// children's and num_threads stay the group's) and, for a thread other
/// than the leader, exit_signal -1 (a thread sends no signal at its end).
pub fn proc_task_stat(p: &Process, tid: Option<u32>) -> String {
    let mm = &p.mm;
    let (id, flt, exit_signal) = match tid {
        Some(t) => (
            t,
            p.thread_flt.get(&t).copied().unwrap_or_default(),
            if t == p.pid { 17 } else { -1 },
        ),
        None => (p.pid, p.flt, 17),
    };
    // Fields 3-9: state, ppid, pgrp, session, tty_nr, tpgid, flags.
    let head = format!("R {} {} {} 0 -1 4194304", p.ppid, p.pgid, p.sid);
    // 10-13: minflt, cminflt, majflt, cmajflt; 14-21: utime, stime,
    // cutime, cstime, priority, nice, num_threads, itrealvalue.
    let faults = format!(
        "{} {} {} {} 0 0 0 0 20 0 {} 0",
        flt.minor,
        p.cflt.minor,
        flt.major,
        p.cflt.major,
        p.threads.len().max(1)
    );
    // 22-28: starttime, vsize, rss, rsslim, startcode, endcode, startstack.
    let mem = format!(
        "0 {} {} 18446744073709551615 {} {} {}",
        mm.total_vm * PAGE_SIZE,
        mm.rss_pages(),
        mm.start_code.as_u64(),
        mm.end_code.as_u64(),
        mm.start_stack.as_u64()
    );
    // 29-44: kstkesp, kstkeip, signal, blocked, sigignore, sigcatch,
    // wchan, nswap, cnswap, exit_signal, processor, rt_priority, policy,
    // delayacct_blkio_ticks, guest_time, cguest_time.
    let sched = format!("0 0 0 0 0 0 0 0 0 {exit_signal} {} 0 0 0 0 0", p.cpu);
    // 45-52: start_data, end_data, start_brk, arg_start, arg_end,
    // env_start, env_end, exit_code.
    let tail = format!(
        "{} {} {} {} {} {} {} 0",
        mm.start_data.as_u64(),
        mm.end_data.as_u64(),
        mm.start_brk.as_u64(),
        mm.arg_start.as_u64(),
        mm.arg_end.as_u64(),
        mm.env_start.as_u64(),
        mm.env_end.as_u64()
    );
    format!("{id} ({}) {head} {faults} {mem} {sched} {tail}\n", p.comm)
}
