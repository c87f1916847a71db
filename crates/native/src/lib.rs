//! `lmm native`: an unmodified Linux program runs on the host CPU with lmm
//! as its memory manager. The program runs in a traced host process, the
//! stub ([`ptrace`]), that holds no memory of its own: every page it
//! touches is a frame of lmm's RAM memfd, mapped into the stub at the
//! page's address after lmm's fault handler resolved the fault, with the
//! protection of lmm's page-table entry (this is "mirroring").
//!
//! - A host SIGSEGV in the stub is a page fault for lmm ([`fault`]): lmm's
//!   MMU translates the access (setting accessed/dirty as hardware does)
//!   and, where it faults, lmm's `handle_mm_fault` runs and counts it; the
//!   entry is then mirrored. A fault lmm cannot resolve is a real SIGSEGV
//!   (or SIGBUS) delivered to the program.
//! - A page is mirrored writable only once lmm's entry is writable and
//!   dirty, so the first write to a clean page reaches lmm (which sets the
//!   dirty bit, as hardware would, without counting a fault).
//! - The program runs under PTRACE_SYSEMU: every system call stops in lmm.
//!   The memory calls are lmm's (their range is unmapped in the stub and
//!   faults back lazily), exit_group is lmm's; others run in the stub on
//!   the host kernel after lmm faulted in every buffer they touch
//!   ([`syscalls`]).
//!
//! - An mmap of one of the program's (host) descriptors maps the same file
//!   through lmm's page cache, which is how dynamically linked programs run.
//! - After lmm reclaimed pages, their mirrors are unmapped from the stub and
//!   fault back in (a swap-in).
//! - Invariant: no frame is freed, or its contents changed by swap, while a
//!   stub that is not stopped still mirrors it. Before lmm does work that
//!   can allocate (and so reclaim or migrate), it stops every other stub
//!   that may be running and waits for the stop (`Run::quiesce`, the
//!   role of Linux's TLB shootdown, which waits for the other CPUs before
//!   the page is freed); each such stub drops its stale mirrors before it
//!   is resumed. This was chosen over a hook in the machine's rmap unmap:
//!   it needs no change in the machine and no ptrace from inside lmm's
//!   reclaim, at the cost of stopping the others on such stops while more
//!   than one process runs (a pipeline's); a page fault far from the
//!   watermarks stops nobody (`Run::quiesce_for`).
//!
//! - The vDSO is the host's, moved in the stub to where lmm's maps show it.
//!
//! - fork, vfork, clone of processes, execve, exit and wait4 are lmm's:
//!   each process has a stub, forked in the host as lmm forks the process
//!   (its copy-on-write pages mirrored read-only in both); one event loop
//!   serves them all, so a call blocked in the host never stalls lmm.
//!
//! - /proc files lmm renders are lmm's ([`procfs`]).
//!
//! - A shared writable mapping of a host file writes back to it, and lmm's
//!   cached pages of a file agree with the program's host calls on it
//!   (`coherence`).
//!
//! - Threads (clone with CLONE_THREAD) are more host threads of the
//!   process's stub (PTRACE_O_TRACECLONE), one task each in the event loop
//!   (by host tid), sharing one mirror table as they share one address
//!   space; lmm's process is their thread group, with one mm
//!   ([`Machine::clone_thread`]). `Run::quiesce` stops the other running
//!   threads as it stops other processes. See docs/native.md.

mod affinity;
mod ahead;
mod chain;
mod coherence;
pub mod fault;
pub mod floor;
mod mirror;
pub mod procfs;
pub mod ptrace;
pub mod syscalls;

use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use machine::mmu::Access;
use machine::process::{Faults, UserFault, WaitTarget};
use machine::Machine;
use mm::types::VirtAddr;

use machine::exec::ExecResult;
use ptrace::{Regs, Stop, Stub, MEMFD_SLOT, SCRATCH, TRAMPOLINE, ZEROES};
use syscalls::{Buf, Kind};

/// The lowest address lmm may mirror (above the trampoline page).
const MIRROR_FLOOR: u64 = TRAMPOLINE + 4096;
/// The end of the x86-64 (4-level) user address space.
const TASK_SIZE: u64 = 0x7fff_ffff_f000;
/// `AT_SYSINFO_EHDR` and `AT_IGNORE` (auxv types).
const AT_SYSINFO_EHDR: u64 = 33;
/// An auxv entry the program skips.
const AT_IGNORE: u64 = 1;
/// Faults in a row at one address and instruction, on a page the stub
/// mirrors as lmm wants it, before lmm gives up (a mirror that does not
/// take would otherwise loop forever).
const MAX_REPEATS: u32 = 16;
/// si_code of a SIGSEGV on a page mapped without the needed permission.
const SEGV_ACCERR: i32 = 2;
/// The most pages one page fault can allocate (a 2 MiB THP, its page
/// tables, a read-around window), with room to spare: below this many
/// free pages above a zone's high watermark, a fault may start reclaim.
const FAULT_PAGES: u64 = 2048;
/// clone(2) flags lmm looks at.
const CLONE_VM: u64 = 0x100;
/// The child shares the caller's signal handlers (threads only).
const CLONE_SIGHAND: u64 = 0x800;
/// The parent waits until the child execs or exits.
const CLONE_VFORK: u64 = 0x4000;
/// A thread of the caller's thread group.
const CLONE_THREAD: u64 = 0x10000;
/// The child's FS base is the `tls` argument.
const CLONE_SETTLS: u64 = 0x80000;
/// The child's pid is stored at `parent_tid` in the parent.
const CLONE_PARENT_SETTID: u64 = 0x100000;
/// The child's pid is stored at `child_tid` in the child.
const CLONE_CHILD_SETTID: u64 = 0x1000000;
/// The result of a call interrupted by a signal that the kernel restarts
/// with restart_syscall (its state kept in the thread's restart block).
const ERESTART_RESTARTBLOCK: i64 = 516;
/// The `dirfd` that means the working directory (the *at calls).
const AT_FDCWD: i32 = -100;
/// `O_CLOEXEC` as /proc/PID/fdinfo's (octal) flags show it.
const O_CLOEXEC: u32 = 0o2000000;
/// The longest argument or environment string execve copies
/// (MAX_ARG_STRLEN).
const MAX_ARG_STRLEN: u64 = 32 * 4096;
/// The most argv or envp pointers lmm reads for an execve.
const MAX_ARGS: u64 = 1 << 20;

/// What to record of a run.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Files of the process, as lmm renders them when the program calls
    /// exit_group (or is killed): `maps`, `smaps`, `status`.
    pub at_exit: Vec<(String, std::path::PathBuf)>,
    /// Where to write the stub's host /proc/PID/maps just before the
    /// program's first instruction (what the host has mapped in it).
    pub host_maps_at_start: Option<std::path::PathBuf>,
    /// Where to write the host /proc/PID/maps of the first forked child's
    /// stub, just before its first instruction.
    pub host_maps_at_fork: Option<std::path::PathBuf>,
    /// Read the program, its ELF interpreter and every file it maps into
    /// lmm's page cache before their first use, as the host's cache is
    /// warm for a program that has run before (no major faults; fault-around
    /// maps cached neighbours as Linux's does).
    pub warm_cache: bool,
    /// Take every fault when the program takes it, one stop each, as a
    /// trace's order then shows; by default fresh anonymous memory written
    /// in order is handed out ahead (fault-ahead: the same faults, taken at
    /// the next stop, with fewer stops).
    pub no_fault_ahead: bool,
    /// Watches the machine while the program runs (`lmm top native`).
    pub observer: Option<Observer>,
}

/// A watcher of the machine during a run (`lmm top native`): called after
/// each stop of the program that lmm handled (a page fault, a system call,
/// a signal passed on) with `false`, and once at the end with `true`, before
/// the process is torn down (its RSS and faults still there). Shared (`Rc`)
/// so [`Options`] stays `Clone`; it cannot stop the run (the program runs to
/// its end either way).
#[derive(Clone)]
pub struct Observer(pub std::rc::Rc<std::cell::RefCell<ObserverFn>>);

/// What an [`Observer`] calls: the machine, and whether the program ended.
pub type ObserverFn = dyn FnMut(&Machine, bool);

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observer(..)")
    }
}

/// How the program ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// exit_group(code) (the low 8 bits).
    Exited(i32),
    /// Killed by this signal.
    Signaled(i32),
}

/// The result of a run.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// How it ended.
    pub ending: Ending,
    /// Its faults (`min_flt`, `maj_flt`), exec's included, as Linux counts
    /// them for a new process, plus those of the children it waited for
    /// (`cmin_flt`, `cmaj_flt`): what wait4's rusage and time(1) report.
    pub faults: Faults,
    /// Peak RSS in kB (`VmHWM`).
    pub peak_rss_kb: u64,
    /// System calls by name.
    pub syscalls: BTreeMap<String, u64>,
    /// System calls by how they were served: `lmm` (memory, exit, wait),
    /// `host` (run in the stub) or `refused`.
    pub kinds: BTreeMap<&'static str, u64>,
    /// Pages swapped in and out on the machine during the run (`pswpin`,
    /// `pswpout`).
    pub swap: (u64, u64),
    /// Host SIGSEGVs that were not lmm faults (the page was mapped in
    /// lmm already, only not in the stub): mirror refreshes.
    pub spurious: u64,
    /// ptrace stops of the stub (system calls, faults, injected calls).
    pub stops: u64,
    /// System calls lmm ran in the stub (the program's and its own).
    pub injected: u64,
    /// Mirrors made (an mmap of lmm's RAM in the stub each).
    pub mirrors: u64,
    /// The program's host calls run where they stood (one stop each; the
    /// others go through the trampoline, two stops each).
    pub in_place: u64,
    /// Time spent in lmm's MMU and fault handler on the program's faults.
    pub fault_time: std::time::Duration,
}

/// One mirrored mapping in the stub: the frame and whether it is writable.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Mirror {
    /// Physical address (= memfd offset) of the first byte.
    phys: u64,
    /// Bytes (4 KiB or a huge page).
    span: u64,
    /// Host protection.
    prot: i32,
}

/// What a process is doing, seen from lmm.
#[derive(Clone, Debug)]
enum State {
    /// Resumed under PTRACE_SYSEMU (or stopped, about to be).
    Running,
    /// Running a system call in the host through the trampoline (it may
    /// block there): the registers to restore at its `int3`, the call's
    /// number, and when a timed wait's timeout ends ([`Run::wait_deadline`]).
    HostCall {
        saved: Regs,
        nr: u64,
        deadline: Option<Instant>,
    },
    /// Blocked in lmm's wait4 or waitid (the call's number) with these
    /// arguments (no child has exited yet): retried when a child exits.
    Wait(u64, [u64; 6]),
    /// A vfork parent held until its child (this lmm pid) execs or exits.
    Vfork(u32),
    /// A thread-group leader that called exit(2) (with this code) while
    /// other threads run: held at its call, never resumed; the process
    /// ends with this code when its last thread ends (Linux reports the
    /// leader's exit code then). Holding it spares the host's delayed
    /// reaping of an exited leader.
    Exited(i32),
}

/// What one address space has mirrored in the host: shared by the tasks
/// of a process's threads (`Rc`), as their host threads share one host
/// mm, so that a mirror one thread made or removed is every thread's.
#[derive(Clone, Debug, Default)]
struct Space {
    /// What the stub has mapped, by start address.
    mirrored: BTreeMap<u64, Mirror>,
    /// Pages reclaimed on the machine when its mirrors were last checked.
    reclaimed: u64,
    /// How many times stale mirrors were unmapped from it: a thread that
    /// has not seen the latest must not trust what its stop showed of
    /// memory (the instruction at its `rip` may be gone).
    unmaps: u64,
}

/// One thread of a process of the run (a process has one task per
/// thread): its host thread and lmm's view of it.
struct Task {
    /// The traced host thread it runs in.
    stub: Stub,
    /// Its process's lmm pid (the thread group's id).
    pid: u32,
    /// Its lmm tid (the pid for the group's leader).
    tid: u32,
    /// Its address space's mirrors, shared with the process's other threads.
    space: std::rc::Rc<std::cell::RefCell<Space>>,
    /// [`Space::unmaps`] when this thread last looked.
    unmaps_seen: u64,
    /// What it is doing.
    state: State,
    /// SIGSTOPs lmm sent it (to check its mirrors) not yet seen.
    stops: u32,
    /// Where the kernel clears the thread's tid and wakes a futex when it
    /// exits (CLONE_CHILD_CLEARTID's `child_tid`, set_tid_address's
    /// argument; 0: nowhere): lmm faults it in for writing before the
    /// thread's exit(2) runs in the host, so that pthread_join's wake is
    /// not lost on a page lmm had not mirrored writable.
    clear_tid: u64,
    /// A host call of the thread that a signal interrupted with
    /// -ERESTART_RESTARTBLOCK (a timed futex wait, a nanosleep): its
    /// number and arguments, whose buffers lmm faults in again when the
    /// program makes restart_syscall.
    restart: Option<(u64, [u64; 6])>,
}

impl Task {
    /// A new task, running, of a process with its own address space
    /// (`space`: what is mirrored in it).
    fn new(stub: Stub, pid: u32, space: Space) -> Task {
        Task {
            stub,
            pid,
            tid: pid,
            unmaps_seen: space.unmaps,
            space: std::rc::Rc::new(std::cell::RefCell::new(space)),
            state: State::Running,
            stops: 0,
            clear_tid: 0,
            restart: None,
        }
    }

    /// The mirrors of its address space.
    fn mirrors(&self) -> std::cell::RefMut<'_, BTreeMap<u64, Mirror>> {
        std::cell::RefMut::map(self.space.borrow_mut(), |s| &mut s.mirrored)
    }
}

/// What serving a system call did.
enum Done {
    /// The call returned this value: resume the process.
    Ret(i64),
    /// The process is left as it is (running a host call, or held).
    Pending,
    /// The registers are set already (rt_sigreturn): resume the process.
    Resume,
    /// The first process ended: the run is over.
    Ended(Ending),
}

/// A run in progress. The process whose stop lmm is serving is the
/// current one (as Linux's `current`): `cur`; the others wait in `others`
/// ([`Run::switch_to`] swaps them).
struct Run<'a> {
    /// The machine the processes' mm live on.
    m: &'a mut Machine,
    /// The current process.
    cur: Task,
    /// Stops lmm collected from other processes while it stopped them
    /// ([`Run::quiesce`]), by host pid with the raw wait status: served
    /// before the next `waitpid(-1)`, in order; those processes stay
    /// stopped until then.
    parked: std::collections::VecDeque<(libc::pid_t, i32)>,
    /// The other processes, by host pid.
    others: BTreeMap<libc::pid_t, Task>,
    /// The first process's lmm pid: the run ends when it does.
    init: u32,
    /// lmm pids of vfork children whose parent still waits.
    vforking: std::collections::BTreeSet<u32>,
    /// A process exec'd or exited since the held ones were last looked
    /// at ([`Run::wake`]).
    kick: bool,
    /// The last fault: host pid, address, rip and how often in a row.
    last_fault: (libc::pid_t, u64, u64, u32),
    /// [`Options::host_maps_at_fork`], until the first fork wrote it.
    host_maps_at_fork: Option<std::path::PathBuf>,
    /// System calls already warned about (by number).
    warned: std::collections::BTreeSet<u64>,
    /// [`Options::warm_cache`].
    warm_cache: bool,
    /// lmm and its stubs pinned to one CPU while the run lasts
    /// ([`affinity`]); `None` where the host refused.
    pin: Option<affinity::Pin>,
    /// [`Options::observer`].
    observer: Option<Observer>,
    /// lmm's page cache kept coherent with the host calls on its files.
    coherence: coherence::Coherence,
    /// The directories standing for /proc/PID/task ([`procfs`]).
    task_dirs: procfs::TaskDirs,
    /// lmm's pid of every process the run made, by its stub's host pid
    /// (kept after it exits: a signal it sent may be delivered later).
    pids: BTreeMap<libc::pid_t, u32>,
    /// Per parent (lmm pid), the SIGCHLD siginfo of the child whose exit
    /// sent the SIGCHLD pending for it ([`Run::exit_task`]), for its
    /// delivery.
    chld: BTreeMap<u32, [u8; 28]>,
    /// The processes (lmm pids) whose SIGCHLD action has SA_NOCLDWAIT,
    /// which the host does not show: seen at their rt_sigaction, kept
    /// across fork, cleared by exec (which clears every action's flags).
    nocldwait: std::collections::BTreeSet<u32>,
    /// Per process (lmm pid), what tracks the pages it was handed ahead
    /// ([`ahead`]); `None` where the host could not.
    trackers: BTreeMap<u32, Option<ahead::Tracker>>,
    /// Not [`Options::no_fault_ahead`].
    fault_ahead: bool,
    /// What the run has found so far.
    out: Outcome,
}

/// Runs `program` (a host path) on `m` with `argv` and `envp` to its end.
pub fn run(
    m: &mut Machine,
    program: &str,
    argv: &[String],
    envp: &[String],
    opts: &Options,
) -> Result<Outcome, String> {
    let fd = m.ram_memfd().as_raw_fd();
    // Started before the pin, so that the thread may run on another CPU.
    m.populate_ram_ahead()
        .map_err(|e| format!("lmm native: a thread to populate RAM: {e}"))?;
    let pin = affinity::Pin::here();
    // The program runs on the host's CPU: its protection keys are the
    // machine's (smaps' ProtectionKey line).
    m.set_pkeys(host_has_pkeys());
    let stub = Stub::spawn(fd).map_err(|e| format!("lmm native: {e}"))?;
    if opts.warm_cache {
        warm(m, program);
        if let Some(interp) = elf_interpreter(program) {
            warm(m, &interp);
        }
    }
    let pid = m.spawn("lmm").map_err(|e| format!("spawn: {e}"))?;
    // The program is in lmm's own process group and session, begun
    // outside the machine's pids (0), as a traced program is in its
    // tracer's: it may setsid or setpgid(0, 0) at once, as it could
    // under strace or time.
    if let Some(p) = m.process_mut(pid) {
        p.pgid = 0;
    }
    let r = m
        .exec(pid, program, argv, envp)
        .map_err(|e| format!("exec {program}: {e}"))?;
    let reclaimed = reclaimed_pages(m);
    let swap = (vmstat(m, "pswpin"), vmstat(m, "pswpout"));
    let mut run = Run {
        m,
        cur: Task::new(
            stub,
            pid,
            Space {
                mirrored: BTreeMap::new(),
                reclaimed,
                unmaps: 0,
            },
        ),
        parked: Default::default(),
        others: BTreeMap::new(),
        init: pid,
        vforking: Default::default(),
        kick: false,
        last_fault: (0, 0, 0, 0),
        host_maps_at_fork: opts.host_maps_at_fork.clone(),
        warned: Default::default(),
        warm_cache: opts.warm_cache,
        pin,
        observer: opts.observer.clone(),
        coherence: Default::default(),
        task_dirs: Default::default(),
        pids: BTreeMap::new(),
        chld: BTreeMap::new(),
        nocldwait: Default::default(),
        trackers: BTreeMap::new(),
        fault_ahead: !opts.no_fault_ahead,
        out: Outcome {
            ending: Ending::Exited(0),
            faults: Faults::default(),
            peak_rss_kb: 0,
            syscalls: BTreeMap::new(),
            kinds: BTreeMap::new(),
            swap,
            spurious: 0,
            stops: 0,
            injected: 0,
            mirrors: 0,
            in_place: 0,
            fault_time: std::time::Duration::ZERO,
        },
    };
    run.pids.insert(run.cur.stub.tgid, pid);
    run.start_image(&r)?;
    if let Some(path) = &opts.host_maps_at_start {
        let maps = std::fs::read_to_string(format!("/proc/{}/maps", run.cur.stub.pid))
            .map_err(|e| format!("/proc/{}/maps: {e}", run.cur.stub.pid))?;
        std::fs::write(path, maps).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let ending = run.run_loop()?;
    run.finish(ending, opts)?;
    Ok(run.out)
}

impl Run<'_> {
    /// Points the stub at a new image of the process (after lmm's exec):
    /// the host's vDSO moved where lmm's maps show it (or hidden from the
    /// program), the registers zeroed as the kernel's `start_thread`
    /// leaves them, at the entry point with lmm's stack pointer.
    fn start_image(&mut self, r: &ExecResult) -> Result<(), String> {
        let run = self;
        let pid = run.cur.pid;
        let lmm_vdso: Vec<(String, u64, u64)> = run
            .m
            .proc_pid(pid, "maps")?
            .lines()
            .filter_map(|l| {
                let name = l.split_whitespace().nth(5)?;
                if !name.starts_with("[v") || name == "[vsyscall]" {
                    return None;
                }
                let (a, b) = l.split_whitespace().next()?.split_once('-')?;
                let a = u64::from_str_radix(a, 16).ok()?;
                Some((name.to_string(), a, u64::from_str_radix(b, 16).ok()? - a))
            })
            .collect();
        if !run
            .cur
            .stub
            .place_vdso(&lmm_vdso)
            .map_err(|e| format!("lmm native: {e}"))?
        {
            run.hide_vdso(r.start_stack.0)?;
        }
        let io = |e: std::io::Error| format!("lmm native: {e}");
        let mut regs = run.cur.stub.regs().map_err(io)?;
        regs.rax = 0;
        regs.rbx = 0;
        regs.rcx = 0;
        regs.rdx = 0;
        regs.rsi = 0;
        regs.rdi = 0;
        regs.rbp = 0;
        regs.r8 = 0;
        regs.r9 = 0;
        regs.r10 = 0;
        regs.r11 = 0;
        regs.r12 = 0;
        regs.r13 = 0;
        regs.r14 = 0;
        regs.r15 = 0;
        regs.fs_base = 0;
        regs.gs_base = 0;
        regs.eflags = 0x202;
        regs.rip = r.entry.0;
        regs.rsp = r.start_stack.0;
        run.cur.stub.set_regs(&regs).map_err(io)?;
        Ok(())
    }
}

/// The mirror lmm's present entry covering `va` in `p`'s page table asks
/// for (its start and frame, span and protection): writable only once
/// the entry is writable and dirty, executable unless NX; `None` if no
/// entry is present.
fn entry_mirror(p: &machine::process::Process, va: u64) -> Option<(u64, Mirror)> {
    let (pte, level) = p.pt.lookup(VirtAddr(va))?;
    if !pte.present() {
        return None;
    }
    let span = p.pt.mode().span(level);
    let base = va & !(span - 1);
    let phys = pte.phys().0 & !(span - 1);
    let prot = mirror::prot_of(pte.writable(), pte.dirty(), pte.nx());
    Some((base, Mirror { phys, span, prot }))
}

/// `sizeof(struct rusage)` on x86-64: two timevals, then 14 longs.
const RUSAGE_BYTES: usize = 144;
/// Where `ru_maxrss` (kB), the first long, sits in a `struct rusage`.
const RU_MAXRSS: usize = 32;
/// Where `ru_minflt` sits in a `struct rusage` (the fifth long);
/// `ru_majflt` follows it.
const RU_MINFLT: usize = 64;

/// `ru_minflt` and `ru_majflt` as they lie in a `struct rusage`.
fn fault_words(flt: Faults) -> [u8; 16] {
    let mut w = [0u8; 16];
    w[..8].copy_from_slice(&flt.minor.to_le_bytes());
    w[8..].copy_from_slice(&flt.major.to_le_bytes());
    w
}

/// True if the host's CPU has memory protection keys enabled by its
/// kernel (the `ospke` flag of /proc/cpuinfo: PKU, and CR4.PKE set).
fn host_has_pkeys() -> bool {
    std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|c| {
        c.lines()
            .find(|l| l.starts_with("flags"))
            .is_some_and(|l| l.split_whitespace().any(|f| f == "ospke"))
    })
}

/// Reads the host file `path` through the machine's page cache, 64 KiB
/// at a time (a file that cannot be opened is passed over).
fn warm(m: &mut Machine, path: &str) {
    if let Ok(f) = machine::hostfs::HostFile::open(path) {
        warm_file(m, &f);
    }
}

/// Reads the whole of host file `f` through the machine's page cache.
fn warm_file(m: &mut Machine, f: &mm::file::FileRef) {
    let _ = m
        .cache()
        .read_into_cache(m.pa(), mm::page_alloc::CpuId(0), f, 0, f.size());
}

/// The PT_INTERP path of the ELF64 file `path`, if it has one.
/// Reads only the ELF header, the program headers and the path (a program
/// can be many megabytes; this runs in the timed part of `lmm bench native`).
fn elf_interpreter(path: &str) -> Option<String> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(path).ok()?;
    let read = |off: u64, len: usize| {
        let mut b = vec![0u8; len];
        f.read_exact_at(&mut b, off).ok().map(|_| b)
    };
    let h = read(0, 64)?;
    let u16_at = |b: &[u8], o: usize| Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?));
    let u64_at = |b: &[u8], o: usize| Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?));
    if h.get(..5)? != b"\x7fELF\x02" {
        return None;
    }
    let (phoff, phentsize, phnum) = (u64_at(&h, 0x20)?, u16_at(&h, 0x36)?, u16_at(&h, 0x38)?);
    let phs = read(phoff, usize::from(phentsize) * usize::from(phnum))?;
    phs.chunks(usize::from(phentsize).max(1)).find_map(|ph| {
        if u32::from_le_bytes(ph.get(..4)?.try_into().ok()?) != 3 {
            return None;
        }
        // PATH_MAX bounds what the kernel would read (ENOEXEC above it).
        let len = usize::try_from(u64_at(ph, 32)?)
            .ok()
            .filter(|&l| l <= 4096)?;
        let s = read(u64_at(ph, 8)?, len)?;
        Some(String::from_utf8_lossy(s.strip_suffix(b"\0").unwrap_or(&s)).into_owned())
    })
}

/// A signal mask of host thread `stub` from its /proc status (`SigCgt`,
/// `SigIgn`, `SigBlk`; 0 if it cannot be read).
fn sig_mask(stub: libc::pid_t, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{stub}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        .unwrap_or(0)
}

/// True if signal `sig` does nothing to host thread `stub` (ignored, or
/// left at a default action of ignoring it: SIGCHLD, SIGCONT, SIGURG,
/// SIGWINCH): Linux would not interrupt its system call for it, which the
/// host did only because lmm traces it.
fn ignored(stub: libc::pid_t, sig: i32) -> bool {
    if !(1..=64).contains(&sig) {
        return false;
    }
    let bit = 1u64 << (sig - 1);
    let default_ignored = [libc::SIGCHLD, libc::SIGCONT, libc::SIGURG, libc::SIGWINCH];
    sig_mask(stub, "SigIgn") & bit != 0
        || (default_ignored.contains(&sig) && sig_mask(stub, "SigCgt") & bit == 0)
}

/// si_code values of SIGCHLD.
const CLD_EXITED: i32 = 1;
const CLD_KILLED: i32 = 2;

/// The fields of a SIGCHLD `siginfo_t` Linux fills for a child that
/// ended (waitid's, and the signal's): si_signo, si_errno, si_code (bytes
/// 0..12), then _sigchld's si_pid, si_uid, si_status (16..28).
/// *Simplified:* si_utime and si_stime, which the signal also carries, are
/// left zero (lmm does not count the child's times).
fn chld_info(child: u32, code: i32, status: i32) -> [u8; 28] {
    // SAFETY: getuid cannot fail; the stubs run as lmm's uid.
    let uid = unsafe { libc::getuid() };
    let mut info = [0u8; 28];
    info[0..4].copy_from_slice(&libc::SIGCHLD.to_le_bytes());
    info[8..12].copy_from_slice(&code.to_le_bytes());
    info[16..20].copy_from_slice(&child.to_le_bytes());
    info[20..24].copy_from_slice(&uid.to_le_bytes());
    info[24..28].copy_from_slice(&status.to_le_bytes());
    info
}

/// The bytes of a `siginfo_t` (128 on x86-64).
fn siginfo_bytes(si: &mut libc::siginfo_t) -> &mut [u8; 128] {
    const _: () = assert!(std::mem::size_of::<libc::siginfo_t>() == 128);
    // SAFETY: siginfo_t is 128 bytes of plain data (checked above), any
    // byte pattern of which is a valid siginfo_t.
    unsafe { &mut *(si as *mut libc::siginfo_t).cast::<[u8; 128]>() }
}

/// A counter of the machine's /proc/vmstat (0 if absent).
fn vmstat(m: &Machine, name: &str) -> u64 {
    m.proc("vmstat")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == name).then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0)
}

/// Pages the machine has taken from under their mappings so far
/// (reclaimed by kswapd or directly, swapped out, migrated, collapsed into
/// a huge page): a change detector, read from the event counters directly
/// since it runs on every fault (rendering /proc/vmstat there cost a tenth
/// of the run).
fn reclaimed_pages(m: &Machine) -> u64 {
    use mm::vmstat::VmEvent;
    [
        VmEvent::PgstealKswapd,
        VmEvent::PgstealDirect,
        VmEvent::PgstealKhugepaged,
        VmEvent::PgstealProactive,
        VmEvent::Pswpout,
        VmEvent::PgmigrateSuccess,
        VmEvent::ThpCollapseAlloc,
    ]
    .into_iter()
    .map(|e| m.pa().events.get(e))
    .sum()
}

impl Run<'_> {
    /// Turns the program's AT_SYSINFO_EHDR into AT_IGNORE, when the host's
    /// vDSO could not be put where lmm's maps show it: lmm's [vdso] holds
    /// no code the host CPU could run, so the program must make real system
    /// calls (the stack pages are present: no fault is taken).
    fn hide_vdso(&mut self, sp: u64) -> Result<(), String> {
        let word = |m: &mut Machine, va: u64| -> Result<u64, String> {
            let b = m
                .read_user(self.cur.pid, va, 8)
                .map_err(|e| format!("reading the initial stack: {e}"))?;
            Ok(u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
        };
        let argc = word(self.m, sp)?;
        let mut at = sp + 8 * (argc + 2);
        while word(self.m, at)? != 0 {
            at += 8;
        }
        at += 8;
        loop {
            let t = word(self.m, at)?;
            if t == 0 {
                return Ok(());
            }
            if t == AT_SYSINFO_EHDR {
                return self
                    .m
                    .write_user(self.cur.pid, at, &AT_IGNORE.to_le_bytes())
                    .map_err(|e| format!("hiding the vDSO: {e}"));
            }
            at += 16;
        }
    }

    /// Serves every process of the run until the first one ends: one
    /// event loop over all the stubs (`waitpid(-1)`), since a call one
    /// process passes to the host may block until another one acts (a
    /// pipe's reader and writer).
    fn run_loop(&mut self) -> Result<Ending, String> {
        let io = |e: std::io::Error| format!("lmm native: {e}");
        self.cur.stub.resume(libc::PTRACE_SYSEMU, 0).map_err(io)?;
        loop {
            let (host, status) = match self.parked.pop_front() {
                Some(p) => p,
                None => ptrace::wait_any().map_err(io)?,
            };
            if !self.switch_to(host) {
                continue;
            }
            let stop = self.cur.stub.decode(status);
            // An end seen here is served here.
            self.cur.stub.take_end();
            match self.event(stop) {
                Ok(Some(end)) => return Ok(end),
                Ok(None) => {}
                // Its group is dying of a signal another thread took (or
                // of SIGKILL): its end comes through the wait.
                Err(_) if self.cur.stub.vanished() => {
                    // A wait in the failed work may have reaped it already.
                    if let Some(end) = self.cur.stub.take_end() {
                        if let Some(end) = self.event(end)? {
                            return Ok(end);
                        }
                    }
                }
                Err(e) => return Err(e),
            }
            // lmm top native (branch obs): the observer, after each stop.
            self.observe(false);
        }
    }

    /// Calls [`Options::observer`], if any, with the machine as it stands.
    fn observe(&mut self, at_exit: bool) {
        if let Some(o) = &self.observer {
            (o.0.borrow_mut())(self.m, at_exit);
        }
    }

    /// Makes the process running in host process `host` the current one;
    /// false if it is none of the run's. A current process whose stub is
    /// gone is forgotten.
    fn switch_to(&mut self, host: libc::pid_t) -> bool {
        if self.cur.stub.pid == host {
            return true;
        }
        let Some(t) = self.others.remove(&host) else {
            return false;
        };
        let old = std::mem::replace(&mut self.cur, t);
        if old.stub.alive() {
            self.others.insert(old.stub.pid, old);
        }
        self.running_thread();
        true
    }

    /// Tells the machine which thread of the current process runs, whose
    /// own fault counts its faults join (/proc/PID/task/TID/stat).
    fn running_thread(&mut self) {
        if let Some(p) = self.m.process_mut(self.cur.pid) {
            p.running = self.cur.tid;
        }
    }

    /// Makes the siginfo of a signal about to be delivered to the current
    /// process read as on Linux with lmm's pids: a signal lmm had to send
    /// again gets its own siginfo back; one sent by kill, tkill or tgkill
    /// (SI_USER, SI_TKILL) names its sender by lmm's pid, or 0 for a sender
    /// outside the run (as a pid namespace shows one from outside); the
    /// SIGCHLD lmm sends for a child's exit is the kernel's (CLD_EXITED or
    /// CLD_KILLED, the child's pid and status). sigqueue's SI_QUEUE
    /// carries the pid the sender wrote: lmm's already.
    fn sender_in_lmm(&mut self, si: &mut libc::siginfo_t) {
        const SI_USER: i32 = 0;
        const SI_TKILL: i32 = -6;
        if let Some(held) = self.cur.stub.requeued_info(si) {
            *si = held;
        }
        if si.si_code != SI_USER && si.si_code != SI_TKILL {
            return;
        }
        let sig = si.si_signo;
        let b = siginfo_bytes(si);
        let from = i32::from_le_bytes([b[16], b[17], b[18], b[19]]);
        if from == std::process::id() as i32 && sig == libc::SIGCHLD {
            if let Some(info) = self.chld.remove(&self.cur.pid) {
                b.fill(0);
                b[..28].copy_from_slice(&info);
                return;
            }
        }
        // A siginfo lmm set back at an earlier stop of the same signal
        // (one held across a call lmm ran) names lmm's pid already: the
        // stubs' host pids, all above lmm's own, never are one of those.
        let pid = match self.pids.get(&from) {
            Some(&pid) => pid,
            None if self.pids.values().any(|&p| i64::from(p) == i64::from(from)) => return,
            None => 0,
        };
        b[16..20].copy_from_slice(&pid.to_le_bytes());
    }

    /// The host pid of lmm's process `pid`, if it is one of the run's.
    fn host_pid(&self, pid: u32) -> Option<libc::pid_t> {
        self.tasks()
            .find(|t| t.pid == pid && t.stub.alive())
            .map(|t| t.stub.tgid)
    }

    /// The host tid of lmm's thread `tid`, if it is one of the run's.
    fn host_tid(&self, tid: u32) -> Option<libc::pid_t> {
        self.tasks()
            .find(|t| t.tid == tid && t.stub.alive())
            .map(|t| t.stub.pid)
    }

    /// Every task of the run, the current one first.
    fn tasks(&self) -> impl Iterator<Item = &Task> {
        std::iter::once(&self.cur).chain(self.others.values())
    }

    /// Serves one stop of the current process; `Some` when the run ends.
    fn event(&mut self, stop: Stop) -> Result<Option<Ending>, String> {
        let io = |e: std::io::Error| format!("lmm native: {e}");
        let mut info = None;
        if !matches!(stop, Stop::Exited(_) | Stop::Killed(_)) {
            self.settle_ahead()?;
        }
        let sig = match stop {
            Stop::Exited(_) if self.cur.tid != self.cur.pid => return self.thread_gone(true),
            Stop::Killed(_) if self.cur.tid != self.cur.pid => return self.thread_gone(false),
            Stop::Exited(code) => return self.exit_task(Ending::Exited(code)),
            Stop::Killed(s) => return self.exit_task(Ending::Signaled(s)),
            Stop::Event(_) => {
                self.check_reclaim()?;
                0
            }
            Stop::Syscall => {
                self.check_reclaim()?;
                return match self.syscall()? {
                    Done::Ret(ret) => {
                        self.set_result(ret)?;
                        self.cur.stub.resume(libc::PTRACE_SYSEMU, 0).map_err(io)?;
                        self.wake()?;
                        Ok(None)
                    }
                    Done::Resume => {
                        self.cur.stub.resume(libc::PTRACE_SYSEMU, 0).map_err(io)?;
                        Ok(None)
                    }
                    Done::Pending => {
                        self.wake()?;
                        Ok(None)
                    }
                    Done::Ended(end) => self.exit_task(end),
                };
            }
            Stop::Signal(libc::SIGSTOP) if self.cur.stops > 0 => {
                // lmm's own stop: the mirrors are checked, the process goes
                // on (an interrupted host call is made again).
                self.cur.stops -= 1;
                if let State::HostCall {
                    saved,
                    nr,
                    deadline,
                } = self.cur.state
                {
                    self.cur.state = State::Running;
                    self.end_host_call(saved, nr, deadline, libc::SIGSTOP, true)?;
                }
                self.check_reclaim()?;
                0
            }
            Stop::Signal(s) => {
                // Its siginfo (a timer's si_timerid, si_value), delivered
                // with it: the calls lmm may run in the stub meanwhile
                // replace the stop's own (a SIGSEGV, most often a fault
                // lmm resolves, is left as it was).
                if s != libc::SIGSEGV {
                    info = self.cur.stub.siginfo().ok().map(|mut si| {
                        self.sender_in_lmm(&mut si);
                        si
                    });
                }
                if let State::HostCall {
                    saved,
                    nr,
                    deadline,
                } = self.cur.state
                {
                    self.cur.state = State::Running;
                    self.end_host_call(saved, nr, deadline, s, false)?
                } else if s == libc::SIGSEGV {
                    self.segv()?
                } else {
                    self.check_reclaim()?;
                    s
                }
            }
        };
        let req = match self.cur.state {
            State::HostCall { .. } => libc::PTRACE_CONT,
            _ => libc::PTRACE_SYSEMU,
        };
        if sig != 0 && req == libc::PTRACE_SYSEMU {
            self.prepare_signal(sig)?;
        }
        self.cur.stub.resume_info(req, sig, info).map_err(io)?;
        Ok(None)
    }

    /// A stop of the current process during its host call: past the
    /// trampoline's `int3` the call is done (its result is set; the signal
    /// to deliver is returned, none for the `int3`'s SIGTRAP); any other
    /// signal `s` interrupted it, or came before it
    /// started, and is returned for delivery on the program's own
    /// registers: those at its system call, with the host's result (an
    /// interrupted call's -ERESTART* code, so that the kernel restarts it
    /// or fails it with EINTR as the signal's SA_RESTART says), or set to
    /// make the call again after the handler if it had not run. No
    /// handler ever runs on the trampoline or outside PTRACE_SYSEMU.
    /// `ours`: the signal is lmm's own SIGSTOP (before work that can
    /// reclaim). After it, or a signal the program ignores (which the
    /// host delivers to a traced thread all the same), the calls that
    /// fail with EINTR rather than restart (epoll_wait, sigtimedwait) go
    /// on waiting, as the program, which no signal reached, sees them do
    /// on Linux; so do they when they come back with EINTR and no signal
    /// for the thread (another took it). One without a timeout is made
    /// again; one with a timeout (its `deadline`) is made again for the
    /// time left ([`Run::wait_again`]), or times out.
    fn end_host_call(
        &mut self,
        saved: Regs,
        nr: u64,
        deadline: Option<Instant>,
        s: i32,
        ours: bool,
    ) -> Result<i32, String> {
        let io = |e: std::io::Error| format!("lmm native: {e}");
        let after = self.cur.stub.regs().map_err(io)?;
        let untimed = match nr {
            // epoll_wait, epoll_pwait: a negative timeout in ms;
            // epoll_pwait2: a NULL timespec; rt_sigtimedwait: NULL.
            232 | 281 => (saved.r10 as i32) < 0,
            441 => saved.r10 == 0,
            128 => saved.rdx == 0,
            _ => false,
        };
        let waits = untimed || deadline.is_some();
        let eintr = after.rax as i64 == -i64::from(libc::EINTR);
        // A wait that came back with EINTR and no signal for this thread
        // (it reached the `int3`): a process-wide signal woke it and
        // another thread took it, or lmm's own stop of the other threads
        // did. Linux wakes only the thread that takes a signal, so the
        // wait goes on.
        let lost = after.rip == TRAMPOLINE + 3 && waits && eintr;
        if after.rip == TRAMPOLINE + 3 && !lost {
            let mut ret = self.cur.stub.finish_syscall(saved).map_err(io)?;
            if nr == 218 {
                // set_tid_address returns the caller's tid: lmm's.
                ret = i64::from(self.cur.tid);
            }
            self.host_call_done(ret)?;
            self.check_reclaim()?;
            self.set_result(ret)?;
            return Ok(if s == libc::SIGTRAP { 0 } else { s });
        }
        let mut r = saved;
        r.fs_base = after.fs_base;
        r.gs_base = after.gs_base;
        let again = lost || (waits && eintr && (ours || ignored(self.cur.stub.pid, s)));
        if let (true, Some(deadline)) = (again, deadline) {
            self.wait_again(r, after, nr, deadline)?;
            return Ok(0);
        }
        if after.rip == TRAMPOLINE + 2 && !again {
            r.rax = after.rax;
            r.orig_rax = nr;
            // A restart_syscall interrupted in its turn restarts the same
            // call: the one kept stays.
            if after.rax as i64 == -ERESTART_RESTARTBLOCK && nr != libc::SYS_restart_syscall as u64
            {
                self.cur.restart = Some((
                    nr,
                    [
                        saved.rdi, saved.rsi, saved.rdx, saved.r10, saved.r8, saved.r9,
                    ],
                ));
            }
        } else {
            // The `syscall` instruction is two bytes: run it again.
            r.rip = saved.rip - 2;
            r.rax = nr;
            r.orig_rax = u64::MAX;
        }
        self.cur.stub.set_regs(&r).map_err(io)?;
        self.check_reclaim()?;
        // The `int3`'s SIGTRAP is lmm's, not the program's.
        Ok(if lost { 0 } else { s })
    }

    /// When the timed wait `nr` with arguments `a` that the current thread
    /// is about to run in the host times out: epoll_wait's and
    /// epoll_pwait's timeout in ms, epoll_pwait2's and rt_sigtimedwait's
    /// timespec (read from the program, which lmm's table faulted in).
    /// None for any other call, a wait without a timeout, or one that
    /// does not wait (a zero or invalid timeout).
    fn wait_deadline(&self, nr: u64, a: [u64; 6]) -> Option<Instant> {
        let now = Instant::now();
        let ts = |va: u64| {
            let mut b = [0u8; 16];
            if va == 0 || self.cur.stub.read_mem(va, &mut b) < 16 {
                return None;
            }
            let sec = i64::from_le_bytes(b[..8].try_into().ok()?);
            let nsec = i64::from_le_bytes(b[8..].try_into().ok()?);
            let d = Duration::new(u64::try_from(sec).ok()?, u32::try_from(nsec).ok()?);
            (nsec < 1_000_000_000).then_some(d)
        };
        let d = match nr {
            232 | 281 => Duration::from_millis(u64::try_from(a[3] as i32).ok()?),
            441 => ts(a[3])?,
            128 => ts(a[2])?,
            _ => return None,
        };
        (!d.is_zero()).then(|| now + d)
    }

    /// Makes the timed wait `nr` the current thread ran in the host go on
    /// after an interruption the program must not see (lmm's own stop, an
    /// ignored signal, one another thread took): with the time left to
    /// `deadline`, through the trampoline again (`after`: the stub's
    /// registers there), the program's registers (`program`) kept for its
    /// end; or, the time being up, it ends as the timeout would have
    /// ended it (0 events, or EAGAIN). Its buffers are faulted in again
    /// first, as for a new call. Simplification: an events buffer a fork
    /// made copy-on-write meanwhile takes a write fault where Linux, with
    /// no event to write, would take none. epoll_wait and epoll_pwait take the
    /// time left in ms, rounded up; epoll_pwait2 and rt_sigtimedwait a
    /// timespec lmm writes in the trampoline page's slot for the thread
    /// ([`ptrace::TIMEOUTS`]).
    fn wait_again(
        &mut self,
        program: Regs,
        after: Regs,
        nr: u64,
        deadline: Instant,
    ) -> Result<(), String> {
        let io = |e: std::io::Error| format!("lmm native: {e}");
        self.cur.stub.set_regs(&program).map_err(io)?;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let timed_out = if nr == 128 {
                -i64::from(libc::EAGAIN)
            } else {
                0
            };
            return self.set_result(timed_out);
        }
        let p = program;
        let mut args = [p.rdi, p.rsi, p.rdx, p.r10, p.r8, p.r9];
        // Its buffers again: lmm may have taken pages from the stub
        // meanwhile (a fork's copy-on-write, reclaim).
        if let Kind::Host(bufs) = syscalls::classify(nr, args) {
            if !self.fault_in_stable(&self.clip_read(nr, args, bufs))? {
                return self.set_result(-i64::from(libc::EFAULT));
            }
        }
        let mut r = after;
        match nr {
            232 | 281 => {
                let ms = left.as_nanos().div_ceil(1_000_000);
                args[3] = u64::try_from(ms).unwrap_or(u64::MAX).min(i32::MAX as u64);
            }
            _ => {
                let slot = ptrace::timeout_slot(self.cur.stub.pid);
                let mut ts = [0u8; 16];
                ts[..8].copy_from_slice(&left.as_secs().to_le_bytes());
                ts[8..].copy_from_slice(&u64::from(left.subsec_nanos()).to_le_bytes());
                self.cur.stub.poke(slot, &ts).map_err(io)?;
                args[if nr == 128 { 2 } else { 3 }] = slot;
            }
        }
        r.rip = TRAMPOLINE;
        r.rax = nr;
        r.orig_rax = u64::MAX;
        [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9] = args;
        self.cur.stub.set_regs(&r).map_err(io)?;
        self.cur.state = State::HostCall {
            saved: program,
            nr,
            deadline: Some(deadline),
        };
        Ok(())
    }

    /// After the current process's host call returned `ret`: lmm's cached
    /// pages of a file it changed are refreshed ([`coherence`]), the other
    /// processes stopped first since pages past a new end leave; then every
    /// process checks its mirrors of them before it runs again.
    fn host_call_done(&mut self, ret: i64) -> Result<(), String> {
        let stub = self.cur.stub.pid;
        if !self.coherence.changes(stub) {
            return Ok(());
        }
        self.quiesce()?;
        if self.coherence.after(self.m, stub, self.cur.pid, ret) {
            // Every address space checks its mirrors (threads share one).
            self.cur.space.borrow_mut().reclaimed = u64::MAX;
            for t in self.others.values() {
                t.space.borrow_mut().reclaimed = u64::MAX;
            }
        }
        Ok(())
    }

    /// Before a signal the program catches is delivered: the host kernel
    /// writes the signal frame below the stack pointer (past the 128-byte
    /// red zone), so those pages are faulted in for writing through lmm
    /// and mirrored, as Linux's copy_to_user of the frame would fault them
    /// (the host could not write a page mirrored read-only, and would kill
    /// the program instead). The frame's size is the host's
    /// AT_MINSIGSTKSZ. Simplification: a frame on an alternate signal
    /// stack is not prepared.
    fn prepare_signal(&mut self, sig: i32) -> Result<(), String> {
        /// Fallback frame size (MINSIGSTKSZ) when the host gives none.
        const MINSIGSTKSZ: u64 = 2048;
        let caught = sig_mask(self.cur.stub.pid, "SigCgt");
        if !(1..=64).contains(&sig) || caught & (1 << (sig - 1)) == 0 {
            return Ok(());
        }
        // SAFETY: getauxval only reads lmm's own auxiliary vector.
        let frame = match unsafe { libc::getauxval(libc::AT_MINSIGSTKSZ) } {
            0 => MINSIGSTKSZ,
            n => n,
        };
        let regs = self
            .cur
            .stub
            .regs()
            .map_err(|e| format!("lmm native: {e}"))?;
        let top = regs.rsp.saturating_sub(128);
        let low = top.saturating_sub(frame);
        self.fault_in(low, top - low, Access::Write)?;
        Ok(())
    }

    /// A host SIGSEGV of the current process: 0 if it was a page fault
    /// lmm resolved, else the signal to deliver.
    fn segv(&mut self) -> Result<i32, String> {
        let io = |e: std::io::Error| format!("lmm native: {e}");
        let si = self.cur.stub.siginfo().map_err(io)?;
        // Kernel-made page faults only (SEGV_MAPERR, ACCERR, ...); sent
        // signals and general-protection faults (SI_KERNEL) go to the
        // program as they are.
        if si.si_code <= 0 || si.si_code == 0x80 {
            return Ok(libc::SIGSEGV);
        }
        // SAFETY: a SIGSEGV siginfo from a fault carries si_addr.
        let addr = unsafe { si.si_addr() } as u64;
        let regs = self.cur.stub.regs().map_err(io)?;
        let last = self.last_fault;
        // Only a fault on a page the stub already mirrors as lmm's entry
        // wants is one that did not take. Another at the same address and
        // instruction is new: the program unmapped and mapped the page
        // again meanwhile (python's marshal does, in a loop), or reclaim
        // took it.
        let took = self
            .m
            .process(self.cur.pid)
            .and_then(|p| entry_mirror(p, addr));
        let stuck = took.is_some_and(|(base, want)| self.cur.mirrors().get(&base) == Some(&want));
        self.last_fault =
            if stuck && (self.cur.stub.pid, addr, regs.rip) == (last.0, last.1, last.2) {
                (last.0, last.1, last.2, last.3 + 1)
            } else {
                (self.cur.stub.pid, addr, regs.rip, 0)
            };
        if self.last_fault.3 >= MAX_REPEATS {
            return Err(format!(
                "lmm native: the fault at {addr:#x} (rip {:#x}) keeps coming back",
                regs.rip
            ));
        }
        // The siginfo and registers are read before anything is run in
        // the stub (an injected unmap replaces them with its own stop's).
        // If stale mirrors went, the instruction is not decoded from what
        // is left: the program runs it again and faults afresh.
        if self.check_reclaim()? {
            return Ok(0);
        }
        let accerr = si.si_code == SEGV_ACCERR;
        let access = fault::access_type(|va, buf| self.read_text(va, buf), &regs, addr, accerr);
        self.page_fault(addr, access)
    }

    /// Reads up to `buf.len()` bytes of the current process's memory at
    /// `va`, a page at a time, as the stub sees it: from lmm's RAM where lmm's page table maps the
    /// page, which is what the stub mirrors once stale mirrors are gone
    /// (no system call), else from the stub (the host's vDSO). How many
    /// bytes were read.
    fn read_text(&self, va: u64, buf: &mut [u8]) -> usize {
        let Some(p) = self.m.process(self.cur.pid) else {
            return self.cur.stub.read_mem(va, buf);
        };
        let mut n = 0;
        while n < buf.len() {
            let at = va + n as u64;
            let page_left = (4096 - (at & 4095)) as usize;
            let want = page_left.min(buf.len() - n);
            let got = match entry_mirror(p, at) {
                Some((base, mir)) => {
                    let pa = mm::types::PhysAddr(mir.phys + (at - base));
                    self.m.pa().direct_map().read(pa, &mut buf[n..n + want]);
                    want
                }
                None => self.cur.stub.read_mem(at, &mut buf[n..n + want]),
            };
            n += got;
            if got < want {
                break;
            }
        }
        n
    }

    /// Sets the current process's system-call result register.
    fn set_result(&mut self, ret: i64) -> Result<(), String> {
        let io = |e: std::io::Error| format!("lmm native: {e}");
        // Re-read: the call may have changed the segment bases.
        let mut regs = self.cur.stub.regs().map_err(io)?;
        regs.rax = ret as u64;
        self.cur.stub.set_regs(&regs).map_err(io)
    }

    /// The current process ended (exit_group, or its stub died of a
    /// signal). The first process ends the run; another becomes a zombie
    /// in lmm (for its parent's wait4), its stub is killed and reaped,
    /// and its parent gets SIGCHLD.
    fn exit_task(&mut self, ending: Ending) -> Result<Option<Ending>, String> {
        if self.cur.pid == self.init {
            return Ok(Some(ending));
        }
        let pid = self.cur.pid;
        let ppid = self.m.process(pid).map_or(0, |p| p.ppid);
        // The process may be gone from lmm already (the OOM killer).
        let _ = match ending {
            Ending::Exited(c) => self.m.exit_code(pid, c),
            Ending::Signaled(s) => self.m.exit_signal(pid, 128 + s, s),
        };
        self.coherence.sync_all(self.m);
        self.kill_process(pid);
        self.cur.mirrors().clear();
        self.vforking.remove(&pid);
        self.kick = true;
        self.nocldwait.remove(&pid);
        self.trackers.remove(&pid);
        let bit = 1u64 << (libc::SIGCHLD - 1);
        let parent = self.host_pid(ppid);
        let ignored = parent.is_some_and(|h| sig_mask(h, "SigIgn") & bit != 0);
        if ignored || self.nocldwait.contains(&ppid) {
            // A parent that ignores SIGCHLD, or set SA_NOCLDWAIT, gets no
            // zombie: the child is reaped at once (do_notify_parent's
            // autoreap), and a wait of the parent's ends with ECHILD once
            // no child is left. One that ignores it gets no signal either.
            self.m.release_zombie(pid);
        }
        if let (false, Some(parent)) = (ignored, parent) {
            // The host drops a SIGCHLD sent while one is pending, as Linux
            // does: the pending one keeps the first child's siginfo.
            if (sig_mask(parent, "ShdPnd") | sig_mask(parent, "SigPnd")) & bit == 0 {
                let (code, status) = match ending {
                    Ending::Exited(c) => (CLD_EXITED, c & 0xff),
                    Ending::Signaled(s) => (CLD_KILLED, s),
                };
                let info = chld_info(pid, code, status);
                // One SIGCHLD can be pending: an info kept from before
                // is stale (its signal was discarded by SIG_IGN, or taken
                // by sigwaitinfo without a delivery lmm sees).
                self.chld.insert(ppid, info);
            }
            // SAFETY: a signal to one of our stubs.
            unsafe { libc::kill(parent, libc::SIGCHLD) };
        }
        self.wake()?;
        Ok(None)
    }

    /// The host tids of lmm's process `pid`'s threads waiting in `others`
    /// (all of them but the current one, if it is one).
    fn other_threads(&self, pid: u32) -> Vec<libc::pid_t> {
        self.others
            .values()
            .filter(|t| t.pid == pid)
            .map(|t| t.stub.pid)
            .collect()
    }

    /// Kills the host threads of lmm's process `pid` (the current task's
    /// too, if it is one of them; it stays current, its stub dead) and
    /// forgets the others, counting their stops. Threads other than the
    /// leader go first: the host reports a leader's death only once the
    /// rest of its group is reaped.
    fn kill_process(&mut self, pid: u32) {
        let hosts = self.other_threads(pid);
        let mut tasks: Vec<Task> = hosts.iter().filter_map(|h| self.others.remove(h)).collect();
        tasks.sort_by_key(|t| t.tid == t.pid);
        if self.cur.pid == pid && self.cur.tid != pid {
            self.cur.stub.kill();
        }
        for mut t in tasks {
            t.stub.kill();
            self.out.stops += t.stub.stops;
            self.out.injected += t.stub.injected;
        }
        if self.cur.pid == pid {
            self.cur.stub.kill();
            self.out.stops += std::mem::take(&mut self.cur.stub.stops);
            self.out.injected += std::mem::take(&mut self.cur.stub.injected);
        }
    }

    /// The current task's host thread ended, the process living on (its
    /// exit(2) ran in the host: `exited`, or a signal is killing its
    /// group, whose leader reports last and ends the process). If after an
    /// exit what is left of the process is its leader held in exit(2)
    /// ([`State::Exited`]), the process ends now with the leader's code.
    fn thread_gone(&mut self, exited: bool) -> Result<Option<Ending>, String> {
        let (pid, tid) = (self.cur.pid, self.cur.tid);
        // Forgotten already if it ran exit(2); not if a signal killed it.
        let _ = self.m.exit_thread(pid, tid);
        self.out.stops += std::mem::take(&mut self.cur.stub.stops);
        self.out.injected += std::mem::take(&mut self.cur.stub.injected);
        let rest: Vec<(libc::pid_t, State)> = self
            .others
            .values()
            .filter(|t| t.pid == pid && t.stub.alive())
            .map(|t| (t.stub.pid, t.state.clone()))
            .collect();
        if let (true, [(leader, State::Exited(code))]) = (exited, &rest[..]) {
            let (leader, code) = (*leader, *code);
            self.switch_to(leader);
            return self.exit_task(Ending::Exited(code));
        }
        Ok(None)
    }

    /// exit(2) of the current thread (`code`). The process's last thread
    /// ends the process (with the code of a leader held in exit(2), as
    /// Linux reports the leader's, else its own). Else the thread leaves
    /// lmm's thread group and a leader is held
    /// ([`State::Exited`]); another thread's exit runs in the host after
    /// its clear-child-tid word is faulted in for writing (the host
    /// kernel writes 0 there and wakes pthread_join's futex), and its end
    /// comes back as a stop ([`Run::thread_gone`]).
    fn exit_thread(&mut self, code: u64) -> Result<Done, String> {
        let (pid, tid) = (self.cur.pid, self.cur.tid);
        let own = Ending::Exited((code & 0xff) as i32);
        let Some(threads) = self.m.process(pid).map(|p| p.threads.clone()) else {
            return Ok(Done::Ended(own));
        };
        if threads.contains(&tid) {
            if threads.len() <= 1 {
                let leader = self.others.values().find_map(|t| match t.state {
                    State::Exited(c) if t.pid == pid => Some(Ending::Exited(c)),
                    _ => None,
                });
                return Ok(Done::Ended(leader.unwrap_or(own)));
            }
            self.m
                .exit_thread(pid, tid)
                .map_err(|e| format!("lmm native: exit of thread {tid}: {e}"))?;
        }
        // Else it is the same exit again: its host call was interrupted
        // (a SIGSTOP of lmm's) before it ran, and the program made it anew.
        if tid == pid {
            self.cur.state = State::Exited((code & 0xff) as i32);
            return Ok(Done::Pending);
        }
        if self.cur.clear_tid != 0 {
            // Linux's put_user at exit ignores a fault: so does lmm.
            self.fault_in(self.cur.clear_tid, 4, Access::Write)?;
        }
        let saved = self
            .cur
            .stub
            .start_syscall(libc::SYS_exit, [code, 0, 0, 0, 0, 0])
            .map_err(|e| format!("lmm native: {e}"))?;
        self.cur.state = State::HostCall {
            saved,
            nr: libc::SYS_exit as u64,
            deadline: None,
        };
        Ok(Done::Pending)
    }

    /// Resumes the held processes that can go on: vfork parents whose
    /// child has exec'd or exited, and wait4 callers with a child to reap.
    fn wake(&mut self) -> Result<(), String> {
        if !std::mem::take(&mut self.kick) {
            return Ok(());
        }
        let io = |e: std::io::Error| format!("lmm native: {e}");
        let held: Vec<libc::pid_t> = self
            .others
            .values()
            .filter(|t| matches!(t.state, State::Wait(..) | State::Vfork(_)))
            .map(|t| t.stub.pid)
            .collect();
        let back = self.cur.stub.pid;
        for host in held {
            self.switch_to(host);
            let ret = match self.cur.state.clone() {
                State::Vfork(child) if !self.vforking.contains(&child) => Some(i64::from(child)),
                State::Wait(nr, a) => self.wait(nr, a)?,
                _ => None,
            };
            if let Some(ret) = ret {
                self.cur.state = State::Running;
                self.check_reclaim()?;
                self.set_result(ret)?;
                self.cur.stub.resume(libc::PTRACE_SYSEMU, 0).map_err(io)?;
            }
        }
        self.switch_to(back);
        Ok(())
    }

    /// wait4 (61) or waitid (247): the call's result, `None` if the caller
    /// must wait.
    fn wait(&mut self, nr: u64, a: [u64; 6]) -> Result<Option<i64>, String> {
        if nr == 247 {
            self.waitid(a)
        } else {
            self.wait4(a)
        }
    }

    /// waitid(idtype, id, infop, options, rusage) on lmm's process table:
    /// P_ALL, P_PID, or P_PGID (0: the caller's group); the child's
    /// `siginfo_t` (SIGCHLD, CLD_EXITED or CLD_KILLED, its lmm pid, uid
    /// and status) and rusage are written and
    /// 0 returned; WNOWAIT leaves it waitable; with WNOHANG and no child
    /// ready the siginfo is zeroed, as Linux's waitid zeroes it. lmm's
    /// children never stop or continue: without WEXITED nothing is
    /// reported (the caller waits, or gets zeroes with WNOHANG). EINVAL for
    /// a bad idtype, id or option, and for P_PIDFD (pidfds are not
    /// supported).
    fn waitid(&mut self, a: [u64; 6]) -> Result<Option<i64>, String> {
        const WNOHANG: u64 = 1;
        const WSTOPPED: u64 = 2;
        const WEXITED: u64 = 4;
        const WCONTINUED: u64 = 8;
        const WNOWAIT: u64 = 0x0100_0000;
        /// __WNOTHREAD, __WALL and __WCLONE.
        const WTHREADS: u64 = 0xe000_0000;
        let einval = Ok(Some(-i64::from(libc::EINVAL)));
        let (idtype, id, infop, options, ru) = (a[0], a[1] as i32, a[2], a[3], a[4]);
        let events = WSTOPPED | WEXITED | WCONTINUED;
        if options & !(WNOHANG | events | WNOWAIT | WTHREADS) != 0 || options & events == 0 {
            return einval;
        }
        let target = match (idtype, u32::try_from(id)) {
            (0, _) => WaitTarget::Any,
            (1, Ok(pid)) if pid > 0 => WaitTarget::Pid(pid),
            (2, Ok(pgid)) => WaitTarget::Group(pgid),
            _ => return einval,
        };
        let found = if options & WEXITED == 0 {
            // Only whether a child exists matters.
            match self.m.peek_zombie(self.cur.pid, target) {
                Err(mm::errno::Errno::ECHILD) => Err(mm::errno::Errno::ECHILD),
                _ => Err(mm::errno::Errno::EAGAIN),
            }
        } else if options & WNOWAIT != 0 {
            self.m.peek_zombie(self.cur.pid, target)
        } else {
            self.m.wait_zombie(self.cur.pid, target)
        };
        let mut info = [0u8; 28];
        match found {
            Ok((child, z)) => {
                let (code, status) = match z.signal {
                    Some(sig) => (CLD_KILLED, sig),
                    None => (CLD_EXITED, z.code & 0xff),
                };
                info = chld_info(child, code, status);
                if ru != 0 && !self.put_rusage(ru, z.flt)? {
                    return Ok(Some(-i64::from(libc::EFAULT)));
                }
            }
            Err(mm::errno::Errno::EAGAIN) if options & WNOHANG != 0 => {}
            Err(mm::errno::Errno::EAGAIN) => return Ok(None),
            Err(e) => return Ok(Some(-i64::from(e.code()))),
        }
        if infop != 0
            && !(self.put_user(infop, &info[..12])? && self.put_user(infop + 16, &info[16..])?)
        {
            return Ok(Some(-i64::from(libc::EFAULT)));
        }
        Ok(Some(0))
    }

    /// Writes a `struct rusage` at `va` with `flt` as its ru_minflt and
    /// ru_majflt (the times and the rest zero); false on EFAULT.
    fn put_rusage(&mut self, va: u64, flt: Faults) -> Result<bool, String> {
        let mut ru = [0u8; RUSAGE_BYTES];
        ru[RU_MINFLT..RU_MINFLT + 16].copy_from_slice(&fault_words(flt));
        self.put_user(va, &ru)
    }

    /// wait4(pid, wstatus, options, rusage) on lmm's process table: the
    /// reaped child's lmm pid with its status and rusage (the faults lmm
    /// counted for it and its own waited-for children; the times are
    /// zero) written; `None` if the caller must wait. A pid of 0 is a
    /// child in the caller's process group, one below -1 in that group.
    fn wait4(&mut self, a: [u64; 6]) -> Result<Option<i64>, String> {
        const WNOHANG: u64 = 1;
        let target = WaitTarget::of_wait4(i64::from(a[0] as i32));
        let (child, z) = match self.m.wait_zombie(self.cur.pid, target) {
            Ok(r) => r,
            Err(mm::errno::Errno::EAGAIN) if a[2] & WNOHANG != 0 => return Ok(Some(0)),
            Err(mm::errno::Errno::EAGAIN) => return Ok(None),
            Err(e) => return Ok(Some(-i64::from(e.code()))),
        };
        if a[1] != 0 && !self.put_user(a[1], &z.wait_status().to_le_bytes())? {
            return Ok(Some(-i64::from(libc::EFAULT)));
        }
        if a[3] != 0 && !self.put_rusage(a[3], z.flt)? {
            return Ok(Some(-i64::from(libc::EFAULT)));
        }
        Ok(Some(i64::from(child)))
    }

    /// `copy_to_user` of the current process through lmm (faulting the
    /// pages in and mirroring them); false on EFAULT.
    fn put_user(&mut self, va: u64, bytes: &[u8]) -> Result<bool, String> {
        if !self.fault_in(va, bytes.len() as u64, Access::Write)? {
            return Ok(false);
        }
        Ok(self.m.write_user(self.cur.pid, va, bytes).is_ok())
    }

    /// Reads a NUL-terminated string of the current process (at most
    /// `max` bytes); `None` if it is not accessible or too long.
    fn get_str(&mut self, va: u64, max: u64) -> Result<Option<String>, String> {
        let mut out = Vec::new();
        let mut at = va;
        while at - va < max {
            let chunk = (at & !4095) + 4096 - at;
            if !self.fault_in(at, 1, Access::Read)? {
                return Ok(None);
            }
            let Ok(bytes) = self.m.read_user(self.cur.pid, at, chunk as usize) else {
                return Ok(None);
            };
            if let Some(n) = bytes.iter().position(|&b| b == 0) {
                out.extend_from_slice(&bytes[..n]);
                return Ok(Some(String::from_utf8_lossy(&out).into_owned()));
            }
            out.extend_from_slice(&bytes);
            at += chunk;
        }
        Ok(None)
    }

    /// Reads a NULL-terminated array of string pointers (argv, envp) of
    /// the current process; `None` on EFAULT (a NULL array is empty).
    fn get_strs(&mut self, va: u64) -> Result<Option<Vec<String>>, String> {
        let mut out = Vec::new();
        if va == 0 {
            return Ok(Some(out));
        }
        for i in 0..MAX_ARGS {
            let at = va + 8 * i;
            if !self.fault_in(at, 8, Access::Read)? {
                return Ok(None);
            }
            let Ok(w) = self.m.read_user(self.cur.pid, at, 8) else {
                return Ok(None);
            };
            let ptr = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
            if ptr == 0 {
                return Ok(Some(out));
            }
            match self.get_str(ptr, MAX_ARG_STRLEN)? {
                Some(s) => out.push(s),
                None => return Ok(None),
            }
        }
        Ok(None)
    }

    /// fork, vfork and clone of a process: lmm's fork of the current
    /// process (its private writable pages become copy-on-write), the
    /// same fork injected in its stub, and the mirrors of both made to
    /// agree with lmm's page tables. The child runs on at once; a vfork
    /// parent is held until the child execs or exits. A thread
    /// (CLONE_THREAD) is [`Run::clone_thread`]'s; CLONE_VM or
    /// CLONE_SIGHAND without CLONE_THREAD (a process sharing its parent's
    /// memory, but for CLONE_VM|CLONE_VFORK) is refused with ENOSYS.
    ///
    /// Simplification: a vfork child (or clone with CLONE_VM|CLONE_VFORK,
    /// as posix_spawn makes) gets a copy-on-write copy of the parent's mm,
    /// not the parent's mm itself: what it writes before exec is not seen
    /// by the parent, and both take the copy-on-write faults of a fork.
    fn fork(&mut self, nr: u64, a: [u64; 6]) -> Result<Done, String> {
        let io = |e: std::io::Error| format!("lmm native: {e}");
        let (flags, newsp, ptid, ctid, tls) = match nr {
            56 => (a[0], a[1], a[2], a[3], a[4]),
            58 => (CLONE_VM | CLONE_VFORK, 0, 0, 0, 0),
            _ => (0, 0, 0, 0, 0),
        };
        if flags & CLONE_THREAD != 0 {
            return self.clone_thread(flags, newsp, ptid, ctid, tls);
        }
        if flags & CLONE_SIGHAND != 0 || (flags & CLONE_VM != 0 && flags & CLONE_VFORK == 0) {
            if self.warned.insert(nr | 1 << 32) {
                eprintln!(
                    "lmm native: clone with CLONE_VM or CLONE_SIGHAND but not CLONE_THREAD \
                     (a process sharing its parent's memory) is not supported yet: the \
                     program gets ENOSYS"
                );
            }
            *self.out.kinds.entry("refused").or_default() += 1;
            return Ok(Done::Ret(-i64::from(libc::ENOSYS)));
        }
        self.quiesce()?;
        let child = match self.m.fork(self.cur.pid) {
            Ok(c) => c,
            Err(e) => return Ok(Done::Ret(-i64::from(e.code()))),
        };
        if self.nocldwait.contains(&self.cur.pid) {
            self.nocldwait.insert(child);
        }
        // lmm's fork write-protected the parent's private pages.
        self.resync()?;
        if flags & CLONE_PARENT_SETTID != 0 && !self.put_user(ptid, &child.to_le_bytes())? {
            return Ok(Done::Ret(-i64::from(libc::EFAULT)));
        }
        let mut stub = self.cur.stub.fork().map_err(io)?;
        let mut regs = self.cur.stub.regs().map_err(io)?;
        regs.rax = 0;
        if newsp != 0 {
            regs.rsp = newsp;
        }
        if flags & CLONE_SETTLS != 0 {
            regs.fs_base = tls;
        }
        stub.set_regs(&regs).map_err(io)?;
        let host = stub.pid;
        let parent = self.cur.stub.pid;
        let space = self.cur.space.borrow().clone();
        self.pids.insert(stub.tgid, child);
        self.others.insert(host, Task::new(stub, child, space));
        self.switch_to(host);
        if flags & CLONE_CHILD_SETTID != 0 {
            // The child's own first write (schedule_tail's put_user):
            // its fault, if any, is the child's.
            let _ = self.m.write_user(child, ctid, &child.to_le_bytes());
        }
        self.resync()?;
        if let Some(path) = self.host_maps_at_fork.take() {
            let maps = std::fs::read_to_string(format!("/proc/{host}/maps"))
                .map_err(|e| format!("/proc/{host}/maps: {e}"))?;
            std::fs::write(&path, maps).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        self.cur.stub.resume(libc::PTRACE_SYSEMU, 0).map_err(io)?;
        self.switch_to(parent);
        if flags & CLONE_VFORK != 0 {
            self.vforking.insert(child);
            self.cur.state = State::Vfork(child);
            return Ok(Done::Pending);
        }
        Ok(Done::Ret(i64::from(child)))
    }

    /// clone(2) with CLONE_THREAD (pthread_create): a new thread of the
    /// current process in lmm ([`Machine::clone_thread`]: its tid, the
    /// process's one mm) and in the host (an injected clone with the
    /// program's flags, stack, tid pointers and TLS: one more host thread
    /// of the stub, sharing its address space and so its mirrors). The
    /// new thread starts with the caller's registers at its call, 0 in
    /// rax, on `newsp`, with its TLS. Where the host wrote its own tid
    /// (CLONE_PARENT_SETTID, CLONE_CHILD_SETTID) lmm writes lmm's. EINVAL
    /// without CLONE_SIGHAND and CLONE_VM, as Linux's copy_process.
    fn clone_thread(
        &mut self,
        flags: u64,
        newsp: u64,
        ptid: u64,
        ctid: u64,
        tls: u64,
    ) -> Result<Done, String> {
        /// The kernel clears the tid there at the thread's exit.
        const CLONE_CHILD_CLEARTID: u64 = 0x200000;
        let io = |e: std::io::Error| format!("lmm native: {e}");
        if flags & (CLONE_SIGHAND | CLONE_VM) != CLONE_SIGHAND | CLONE_VM {
            return Ok(Done::Ret(-i64::from(libc::EINVAL)));
        }
        let pid = self.cur.pid;
        let tid = match self.m.clone_thread(pid) {
            Ok(t) => t,
            Err(e) => return Ok(Done::Ret(-i64::from(e.code()))),
        };
        let mut stub = match self.cur.stub.clone_thread(flags, newsp, ptid, ctid, tls) {
            Ok(s) => s,
            Err(e) => {
                // The host refused (EAGAIN past its thread limit): so
                // does lmm, and the thread it made is forgotten.
                let _ = self.m.exit_thread(pid, tid);
                eprintln!("lmm native: {e}");
                return Ok(Done::Ret(-i64::from(libc::EAGAIN)));
            }
        };
        let mut regs = self.cur.stub.regs().map_err(io)?;
        regs.rax = 0;
        regs.orig_rax = u64::MAX;
        if newsp != 0 {
            regs.rsp = newsp;
        }
        if flags & CLONE_SETTLS != 0 {
            regs.fs_base = tls;
        }
        stub.set_regs(&regs).map_err(io)?;
        let lmm_tid = tid.to_le_bytes();
        // Linux's put_user of the tids ignores a fault: so does lmm.
        if flags & CLONE_PARENT_SETTID != 0 {
            self.put_user(ptid, &lmm_tid)?;
        }
        if flags & CLONE_CHILD_SETTID != 0 {
            self.put_user(ctid, &lmm_tid)?;
        }
        let host = stub.pid;
        let mut task = Task {
            stub,
            pid,
            tid,
            space: self.cur.space.clone(),
            unmaps_seen: self.cur.space.borrow().unmaps,
            state: State::Running,
            stops: 0,
            clear_tid: if flags & CLONE_CHILD_CLEARTID != 0 {
                ctid
            } else {
                0
            },
            restart: None,
        };
        task.stub.resume(libc::PTRACE_SYSEMU, 0).map_err(io)?;
        self.others.insert(host, task);
        Ok(Done::Ret(i64::from(tid)))
    }

    /// Unmaps the current process's mirrors that no longer agree with
    /// lmm's page table (after a fork write-protected them, or in a forked
    /// child whose entries differ from the parent's), in runs.
    fn resync(&mut self) -> Result<(), String> {
        let p = self
            .m
            .process(self.cur.pid)
            .ok_or("lmm native: the process is gone")?;
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for (&va, mir) in self.cur.mirrors().iter() {
            if entry_mirror(p, va) == Some((va, *mir)) {
                continue;
            }
            match runs.last_mut() {
                Some(last) if last.1 == va => last.1 = va + mir.span,
                _ => runs.push((va, va + mir.span)),
            }
        }
        for (a, b) in runs {
            self.unmirror(a, b - a)?;
        }
        Ok(())
    }

    /// execve(path, argv, envp): lmm's exec of the current process, as
    /// execveat(AT_FDCWD, path, argv, envp, 0) is.
    fn execve(&mut self, a: [u64; 6]) -> Result<i64, String> {
        self.execveat([AT_FDCWD as u64, a[0], a[1], a[2], 0, 0])
    }

    /// execveat(dirfd, path, argv, envp, flags): lmm's exec of the current
    /// process. A relative path is the stub's working directory's (dirfd
    /// AT_FDCWD) or the directory `dirfd`'s; an empty path with
    /// AT_EMPTY_PATH execs the file `dirfd` names. The name the program
    /// sees (`AT_EXECFN`) is Linux's: the path itself, or `/dev/fd/N` and
    /// `/dev/fd/N/path` for a descriptor. AT_SYMLINK_NOFOLLOW refuses a
    /// final symlink with ELOOP. On success the stub loses every mirror,
    /// its close-on-exec descriptors and its caught signals' handlers
    /// (reset to SIG_DFL; ignored ones stay ignored), gets the vDSO placed
    /// again and starts at the new entry. On failure the old image goes on
    /// with the errno. Simplification: the descriptor must name a file by
    /// a host path (not a memfd or a deleted file).
    fn execveat(&mut self, a: [u64; 6]) -> Result<i64, String> {
        /// AT_EMPTY_PATH.
        const AT_EMPTY_PATH: u64 = 0x1000;
        /// AT_SYMLINK_NOFOLLOW.
        const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
        let err = |e: i32| Ok(-i64::from(e));
        let (dirfd, flags) = (a[0] as i32, a[4]);
        if flags & !(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0 {
            return err(libc::EINVAL);
        }
        let Some(path) = self.get_str(a[1], 4096)? else {
            return err(libc::EFAULT);
        };
        let (Some(argv), Some(envp)) = (self.get_strs(a[2])?, self.get_strs(a[3])?) else {
            return err(libc::EFAULT);
        };
        if path.is_empty() && flags & AT_EMPTY_PATH == 0 {
            return err(libc::ENOENT);
        }
        let stub = self.cur.stub.pid;
        let (host_path, shown) = if path.starts_with('/') {
            (path.clone(), path.clone())
        } else if dirfd == AT_FDCWD {
            let cwd = std::fs::read_link(format!("/proc/{stub}/cwd"))
                .map_err(|e| format!("lmm native: /proc/{stub}/cwd: {e}"))?;
            (cwd.join(&path).to_string_lossy().into_owned(), path.clone())
        } else {
            if dirfd < 0 || dirfd == MEMFD_SLOT {
                return err(libc::EBADF);
            }
            let Ok(base) = std::fs::read_link(format!("/proc/{stub}/fd/{dirfd}")) else {
                return err(libc::EBADF);
            };
            if path.is_empty() {
                (
                    base.to_string_lossy().into_owned(),
                    format!("/dev/fd/{dirfd}"),
                )
            } else if !base.is_dir() {
                return err(libc::ENOTDIR);
            } else {
                (
                    base.join(&path).to_string_lossy().into_owned(),
                    format!("/dev/fd/{dirfd}/{path}"),
                )
            }
        };
        if flags & AT_SYMLINK_NOFOLLOW != 0
            && std::fs::symlink_metadata(&host_path).is_ok_and(|m| m.file_type().is_symlink())
        {
            return err(libc::ELOOP);
        }
        self.quiesce()?;
        if self.warm_cache {
            warm(self.m, &host_path);
            if let Some(interp) = elf_interpreter(&host_path) {
                warm(self.m, &interp);
            }
        }
        let r = match self
            .m
            .exec_as(self.cur.pid, &host_path, &shown, &argv, &envp)
        {
            Ok(r) => r,
            Err(e) => return Ok(-i64::from(e.code())),
        };
        let io = |e: std::io::Error| format!("lmm native: {e}");
        self.nocldwait.remove(&self.cur.pid);
        self.cur.mirrors().clear();
        self.cur.stub.unmap_all().map_err(io)?;
        self.de_thread()?;
        self.reset_for_exec()?;
        self.start_image(&r)?;
        self.vforking.remove(&self.cur.pid);
        self.kick = true;
        Ok(0)
    }

    /// Linux's de_thread in the host, once lmm's exec of the current
    /// thread's process succeeded (lmm's exec has made the group one
    /// thread, [`Machine::exec_as`]) and the stub lost its mirrors: every
    /// other host thread of the process ends by an exit(2) lmm makes it
    /// call through the trampoline (the host cannot kill one thread of a
    /// group with a signal), and lmm waits for each end. The process goes
    /// on in its host leader thread, with the group's pid as its tid, as
    /// Linux's exec'ing thread takes the leader's pid: the exec'ing thread
    /// ends instead if it is not the leader, its blocked signals given to
    /// the leader first (exec keeps the exec'ing thread's mask). The other
    /// threads exit with nothing mirrored: their clear-child-tid and
    /// robust-list writes, which Linux makes in the old mm, touch nothing.
    /// Simplification: the exec'ing thread's pending thread-directed
    /// signals and alternate stack are not carried over to the leader.
    fn de_thread(&mut self) -> Result<(), String> {
        let io = |e: std::io::Error| format!("lmm native: {e}");
        let (pid, leader) = (self.cur.pid, self.cur.stub.tgid);
        let others = self.other_threads(pid);
        if others.is_empty() {
            return Ok(());
        }
        let mut dying: Vec<Task> = others
            .iter()
            .filter(|&&h| h != leader)
            .filter_map(|h| self.others.remove(h))
            .collect();
        if self.cur.stub.pid != leader {
            let blocked = sig_mask(self.cur.stub.pid, "SigBlk");
            let mut next = self
                .others
                .remove(&leader)
                .ok_or("lmm native: exec in a thread group without its leader")?;
            for stop in self.take_parked(&mut next) {
                match stop {
                    Stop::Signal(libc::SIGSTOP) if next.stops > 0 => next.stops -= 1,
                    // A signal on its way to the leader (the old image's
                    // faults and traps aside) is queued to it again.
                    Stop::Signal(s)
                        if ![libc::SIGTRAP, libc::SIGSEGV, libc::SIGBUS, libc::SIGSTOP]
                            .contains(&s) =>
                    {
                        next.stub.requeue(s)
                    }
                    _ => {}
                }
            }
            if !next.stub.alive() {
                return Err("lmm native: the thread group's leader died during an exec".into());
            }
            next.stub
                .poke(SCRATCH, &blocked.to_le_bytes())
                .map_err(io)?;
            next.stub
                .syscall(
                    libc::SYS_rt_sigprocmask,
                    [libc::SIG_SETMASK as u64, SCRATCH, 0, 8, 0, 0],
                )
                .map_err(io)?;
            dying.push(std::mem::replace(&mut self.cur, next));
        }
        self.cur.tid = pid;
        self.cur.state = State::Running;
        self.cur.clear_tid = 0;
        self.cur.restart = None;
        for mut t in dying {
            self.take_parked(&mut t);
            if t.stub.alive() {
                t.stub.start_syscall(libc::SYS_exit, [0; 6]).map_err(io)?;
                while !matches!(
                    t.stub.wait().map_err(io)?,
                    Stop::Exited(_) | Stop::Killed(_)
                ) {
                    t.stub.resume(libc::PTRACE_CONT, 0).map_err(io)?;
                }
            }
            self.out.stops += t.stub.stops;
            self.out.injected += t.stub.injected;
        }
        Ok(())
    }

    /// The stops of task `t` that [`Run::quiesce`] parked, taken out of
    /// the queue and decoded (in order): its thread is about to end or to
    /// start afresh, so they will not be served.
    fn take_parked(&mut self, t: &mut Task) -> Vec<Stop> {
        let host = t.stub.pid;
        let (mine, rest) = std::mem::take(&mut self.parked)
            .into_iter()
            .partition(|&(h, _)| h == host);
        self.parked = rest;
        mine.into_iter()
            .map(|(_, status): (libc::pid_t, i32)| t.stub.decode(status))
            .collect()
    }

    /// What exec resets in the stub's host state: descriptors marked
    /// close-on-exec are closed, POSIX timers deleted and caught signals
    /// get SIG_DFL (from its /proc/PID/fdinfo, timers and status). Simplification: the alternate signal
    /// stack is kept.
    fn reset_for_exec(&mut self) -> Result<(), String> {
        let io = |e: std::io::Error| format!("lmm native: {e}");
        let stub = self.cur.stub.pid;
        let fds = std::fs::read_dir(format!("/proc/{stub}/fd"))
            .map_err(|e| format!("lmm native: /proc/{stub}/fd: {e}"))?;
        let mut close = Vec::new();
        for e in fds.flatten() {
            let Some(fd) = e.file_name().to_str().and_then(|f| f.parse::<i32>().ok()) else {
                continue;
            };
            if fd == MEMFD_SLOT {
                continue;
            }
            let info =
                std::fs::read_to_string(format!("/proc/{stub}/fdinfo/{fd}")).unwrap_or_default();
            let flags = info
                .lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
                .unwrap_or(0);
            if flags & O_CLOEXEC != 0 {
                close.push(fd);
            }
        }
        for fd in close {
            self.cur
                .stub
                .syscall(libc::SYS_close, [fd as u64, 0, 0, 0, 0, 0])
                .map_err(io)?;
        }
        // POSIX timers are deleted (the stub's, listed in its
        // /proc/PID/timers as "ID: n").
        let timers = std::fs::read_to_string(format!("/proc/{stub}/timers")).unwrap_or_default();
        for id in timers
            .lines()
            .filter_map(|l| l.strip_prefix("ID: ")?.trim().parse::<u64>().ok())
        {
            self.cur
                .stub
                .syscall(libc::SYS_timer_delete, [id, 0, 0, 0, 0, 0])
                .map_err(io)?;
        }
        let caught = sig_mask(stub, "SigCgt");
        for sig in 1..=64u64 {
            if caught & (1 << (sig - 1)) != 0 {
                self.cur
                    .stub
                    .syscall(libc::SYS_rt_sigaction, [sig, ZEROES, 0, 8, 0, 0])
                    .map_err(io)?;
            }
        }
        Ok(())
    }

    /// kill, tkill, tgkill, rt_sigqueueinfo and rt_tgsigqueueinfo name
    /// lmm's pids and tids, as do getpriority, setpriority, ioprio_get
    /// and ioprio_set of one process or thread: they are turned into
    /// the stubs' (ESRCH for an id that is none of the run's, which the
    /// program could not see). kill of 0 or a negative pid signals a
    /// process group of lmm's, or every process but the caller and pid 1
    /// (-1). Simplification: a group whose members have all exited,
    /// unreaped, is ESRCH, where Linux signals the zombies (0). `Err`:
    /// the call's result.
    fn host_pids(&self, nr: u64, mut a: [u64; 6]) -> Result<[u64; 6], i64> {
        let esrch = -i64::from(libc::ESRCH);
        let id = |v: u64| u32::try_from(v as i32).map_err(|_| esrch);
        let map =
            |v: u64| -> Result<u64, i64> { self.host_pid(id(v)?).map(|h| h as u64).ok_or(esrch) };
        let map_tid =
            |v: u64| -> Result<u64, i64> { self.host_tid(id(v)?).map(|h| h as u64).ok_or(esrch) };
        match nr {
            // kill of a group (0: the caller's; below -1: that one) or of
            // every process but the caller and pid 1 (-1).
            62 if (a[0] as i32) <= 0 => {
                let me = self.cur.pid;
                let pids = match a[0] as i32 {
                    0 => self.m.group(self.m.process(me).map_or(0, |p| p.pgid)),
                    -1 => self
                        .tasks()
                        .map(|t| t.pid)
                        .filter(|&p| p != me && p != 1)
                        .collect(),
                    g => self.m.group(g.unsigned_abs()),
                };
                let hosts: std::collections::BTreeSet<libc::pid_t> =
                    pids.into_iter().filter_map(|p| self.host_pid(p)).collect();
                if hosts.is_empty() {
                    return Err(esrch);
                }
                for h in hosts {
                    // SAFETY: a signal to one of our stubs.
                    if unsafe { libc::kill(h, a[1] as i32) } != 0 {
                        let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
                        return Err(-i64::from(e));
                    }
                }
                return Err(0);
            }
            // A zombie takes a signal and drops it: kill succeeds.
            62 | 129 if id(a[0]).is_ok_and(|p| self.m.is_zombie(p)) => return Err(0),
            // kill of a thread's tid signals its process, as on Linux.
            62 => a[0] = map(a[0]).or_else(|_| map_tid(a[0]))?,
            200 => a[0] = map_tid(a[0])?,
            129 => a[0] = map(a[0]).or_else(|_| map_tid(a[0]))?,
            234 | 297 => {
                a[0] = map(a[0])?;
                a[1] = map_tid(a[1])?;
            }
            // getpriority, setpriority of PRIO_PROCESS; ioprio_get,
            // ioprio_set of IOPRIO_WHO_PROCESS (a thread's id): 0 is the
            // caller.
            140 | 141 if a[0] == 0 && a[1] != 0 => a[1] = map(a[1]).or_else(|_| map_tid(a[1]))?,
            251 | 252 if a[0] == 1 && a[1] != 0 => a[1] = map_tid(a[1]).or_else(|_| map(a[1]))?,
            _ => {}
        }
        Ok(a)
    }

    /// `timer_create(clock, sevp, id)` (`nr` 222) with SIGEV_THREAD_ID
    /// (glibc's SIGEV_THREAD makes one for its helper thread): the
    /// sigevent names lmm's tid of the thread to signal, which must be one
    /// of the caller's (EINVAL otherwise, as Linux's `good_sigevent`
    /// says). The host is given a copy in the trampoline's scratch area
    /// naming that thread's stub, so the program's sigevent reads as it
    /// wrote it. `None` for any other call or notification (the host
    /// reads the program's own sigevent, faulted in).
    fn timer_create(&mut self, nr: u64, a: [u64; 6]) -> Result<Option<i64>, String> {
        /// `sigev_notify` (at byte 12) of a signal to one thread, whose
        /// tid is the int at byte 16 (`sigev_notify_thread_id`).
        const SIGEV_THREAD_ID: i32 = 4;
        if nr != 222 || a[1] == 0 {
            return Ok(None);
        }
        let Ok(mut ev) = self.m.read_user(self.cur.pid, a[1], 64) else {
            return Ok(None);
        };
        let int = |at: usize| i32::from_le_bytes([ev[at], ev[at + 1], ev[at + 2], ev[at + 3]]);
        if int(12) != SIGEV_THREAD_ID {
            return Ok(None);
        }
        let (pid, tid) = (self.cur.pid, int(16));
        let Some(host) = self
            .tasks()
            .find(|t| t.pid == pid && i64::from(t.tid) == i64::from(tid) && t.stub.alive())
            .map(|t| t.stub.pid)
        else {
            return Ok(Some(-i64::from(libc::EINVAL)));
        };
        ev[16..20].copy_from_slice(&host.to_le_bytes());
        let io = |e: std::io::Error| format!("lmm native: {e}");
        self.cur.stub.poke(SCRATCH, &ev).map_err(io)?;
        let args = [a[0], SCRATCH, a[2], 0, 0, 0];
        Ok(Some(self.cur.stub.syscall(222, args).map_err(io)?))
    }

    /// `close_range(first, last, flags)` (`nr` 436) over the RAM memfd's
    /// descriptor ([`MEMFD_SLOT`], lmm's, not the program's): run in the
    /// stub as two calls, on the descriptors below it and above it, so
    /// that the program closes all of its own and the stub keeps the
    /// memfd (a program's child closes every descriptor before an exec
    /// this way: python's subprocess). `None` for any other call or range.
    fn close_range(&mut self, nr: u64, a: [u64; 6]) -> Result<Option<i64>, String> {
        let (first, last, slot) = (a[0] as u32, a[1] as u32, MEMFD_SLOT as u32);
        if nr != 436 || !(first..=last).contains(&slot) {
            return Ok(None);
        }
        let mut parts = Vec::new();
        if first < slot {
            parts.push((first, slot - 1));
        }
        if last > slot {
            parts.push((slot + 1, last));
        }
        for (lo, hi) in parts {
            let r = self
                .cur
                .stub
                .syscall(436, [u64::from(lo), u64::from(hi), a[2], 0, 0, 0])
                .map_err(|e| format!("lmm native: {e}"))?;
            if r < 0 {
                return Ok(Some(r));
            }
        }
        Ok(Some(0))
    }

    /// `getrusage(who, usage)` (`nr` 98): run in the stub, for the times
    /// and the host's other counters, with the faults and peak RSS made
    /// lmm's, as Linux's kernel/sys.c gives them: RUSAGE_SELF the
    /// process's faults and its mm's `hiwater_rss`, RUSAGE_THREAD the
    /// thread's faults and the same peak, RUSAGE_CHILDREN the waited-for
    /// children's faults (their peak RSS, `cmaxrss`, stays the host's: a
    /// simplification). `None` for any other call. The buffer is present
    /// already.
    fn getrusage(&mut self, nr: u64, a: [u64; 6]) -> Result<Option<i64>, String> {
        if nr != 98 {
            return Ok(None);
        }
        let r = self
            .cur
            .stub
            .syscall(98, a)
            .map_err(|e| format!("lmm native: {e}"))?;
        let Some(p) = self.m.process(self.cur.pid).filter(|_| r == 0) else {
            return Ok(Some(r));
        };
        let peak = p.mm.hiwater_rss().max(p.mm.rss_pages()) * 4;
        let (flt, maxrss) = match a[0] as i32 {
            libc::RUSAGE_SELF => (p.flt, Some(peak)),
            libc::RUSAGE_THREAD => (
                p.thread_flt.get(&self.cur.tid).copied().unwrap_or_default(),
                Some(peak),
            ),
            libc::RUSAGE_CHILDREN => (p.cflt, None),
            _ => return Ok(Some(r)),
        };
        let pid = self.cur.pid;
        if let Some(kb) = maxrss {
            let _ = self
                .m
                .write_user(pid, a[1] + RU_MAXRSS as u64, &kb.to_le_bytes());
        }
        let _ = self
            .m
            .write_user(pid, a[1] + RU_MINFLT as u64, &fault_words(flt));
        Ok(Some(r))
    }

    /// `sched_getaffinity(pid, len, mask)` (`nr` 204) answered with the
    /// CPUs lmm ran on before it pinned itself and its stubs to one
    /// ([`affinity`]), so the program sees what it would see on the host;
    /// `None` for any other call, or when nothing was pinned. The buffer
    /// is present already.
    fn getaffinity(&mut self, nr: u64, a: [u64; 6]) -> Result<Option<i64>, String> {
        let Some(pin) = self.pin.as_ref().filter(|_| nr == 204) else {
            return Ok(None);
        };
        let pid = a[0] as i32;
        if pid < 0 || (pid > 0 && self.host_pid(pid as u32).is_none()) {
            return Ok(Some(-i64::from(libc::ESRCH)));
        }
        let mask = match pin.getaffinity_reply(a[1]) {
            Ok(mask) => mask.to_vec(),
            Err(e) => return Ok(Some(e)),
        };
        Ok(Some(if self.put_user(a[2], &mask)? {
            mask.len() as i64
        } else {
            -i64::from(libc::EFAULT)
        }))
    }

    /// A page fault of the program at `addr`: lmm's MMU and fault handler
    /// resolve it and the page is mirrored; 0 to resume, or the signal
    /// the program gets.
    fn page_fault(&mut self, addr: u64, access: Access) -> Result<i32, String> {
        self.quiesce_for(FAULT_PAGES)?;
        let before = self.faults();
        let ahead = self.give_ahead(addr, access == Access::Write);
        let t = std::time::Instant::now();
        let touched = self.m.touch(self.cur.pid, addr, 1, access);
        self.out.fault_time += t.elapsed();
        if touched.is_err() && ahead.is_some() {
            self.drop_ahead()?;
        }
        match touched {
            Ok(()) => {
                if self.faults() == before {
                    self.out.spurious += 1;
                }
                self.check_reclaim()?;
                if let Some((page, order, phys)) = ahead {
                    if self.map_ahead(page, order, phys)? {
                        return Ok(0);
                    }
                }
                self.mirror_around(addr)?;
                Ok(0)
            }
            Err(UserFault::Bus { .. }) => Ok(libc::SIGBUS),
            Err(UserFault::Killed { .. }) => Ok(libc::SIGKILL),
            Err(UserFault::Segv { .. } | UserFault::Oom { .. }) => Ok(libc::SIGSEGV),
        }
    }

    /// The process's faults so far.
    fn faults(&self) -> Faults {
        self.m
            .process(self.cur.pid)
            .map(|p| p.flt)
            .unwrap_or_default()
    }

    /// Stops every other process of the run that may be running (in its
    /// own code or in a host call) and waits until it is stopped, before
    /// lmm does work that can allocate and so reclaim or migrate a frame
    /// one of them has mirrored. Their stops are parked and served, each
    /// after its mirrors are checked ([`Run::check_reclaim`]), once the
    /// current stop is done. Processes already stopped are left alone, so
    /// a run with one process running pays nothing.
    fn quiesce(&mut self) -> Result<(), String> {
        self.quiesce_for(u64::MAX)
    }

    /// [`Run::quiesce`] before work that allocates at most `pages` pages
    /// (one page fault): skipped while every populated zone has more than
    /// that many free pages above its high watermark, since the machine
    /// frees or moves a mapped frame only in reclaim, which an allocation
    /// starts only below a zone's low watermark (lmm has no compaction or
    /// khugepaged that could move one otherwise).
    fn quiesce_for(&mut self, pages: u64) -> Result<(), String> {
        use mm::mmzone::Wmark;
        if !self.others.values().any(|t| t.stub.running()) {
            return Ok(());
        }
        let roomy = pages != u64::MAX
            && self
                .m
                .pa()
                .zones()
                .filter(|z| z.is_populated())
                .all(|z| z.free_pages() > z.wmark(Wmark::High).saturating_add(pages));
        if roomy {
            return Ok(());
        }
        for t in self.others.values_mut() {
            if t.stub.running() {
                let status = t.stub.interrupt().map_err(|e| format!("lmm native: {e}"))?;
                t.stops += 1;
                self.parked.push_back((t.stub.pid, status));
            }
        }
        Ok(())
    }

    /// Unmaps from the current stub the mirrors lmm's page table no longer
    /// backs with the same frame, if the machine reclaimed or migrated
    /// pages since the current process last looked (the frame may hold
    /// something else now). Every process runs this before it is resumed.
    /// True if a mirror was unmapped since the current thread last looked
    /// (by it, or by another thread of the process: the mirrors are
    /// shared).
    fn check_reclaim(&mut self) -> Result<bool, String> {
        self.unmap_stale()?;
        let unmaps = self.cur.space.borrow().unmaps;
        let seen = std::mem::replace(&mut self.cur.unmaps_seen, unmaps);
        Ok(unmaps != seen)
    }

    /// The work of [`Run::check_reclaim`] for the current address space.
    fn unmap_stale(&mut self) -> Result<(), String> {
        let now = reclaimed_pages(self.m);
        if now == self.cur.space.borrow().reclaimed {
            return Ok(());
        }
        self.cur.space.borrow_mut().reclaimed = now;
        let p = self
            .m
            .process(self.cur.pid)
            .ok_or("lmm native: the process is gone")?;
        let stale: Vec<u64> = self
            .cur
            .mirrors()
            .iter()
            .filter(|(&va, mir)| {
                // A frame handed out ahead is the process's (reclaim
                // cannot take it) while its page has no entry yet.
                !p.ahead.contains_key(&VirtAddr(va))
                    && p.pt
                        .lookup(VirtAddr(va))
                        .is_none_or(|(pte, _)| !pte.present() || pte.phys().0 != mir.phys)
            })
            .map(|(&va, _)| va)
            .collect();
        if !stale.is_empty() {
            self.cur.space.borrow_mut().unmaps += 1;
        }
        for va in stale {
            let mir = self.cur.mirrors().get(&va).copied();
            if let Some(mir) = mir {
                self.unmirror(va, mir.span)?;
            }
        }
        Ok(())
    }

    /// Maps lmm's present entry covering `va` into the stub (`force`: even
    /// if the stub is believed to have it already, as after a fault).
    fn mirror(&mut self, va: u64, force: bool) -> Result<(), String> {
        let p = self
            .m
            .process(self.cur.pid)
            .ok_or("lmm native: the process is gone")?;
        let Some((base, want)) = entry_mirror(p, va) else {
            return Ok(());
        };
        let (phys, span, prot) = (want.phys, want.span, want.prot);
        if !force && self.cur.mirrors().get(&base) == Some(&want) {
            return Ok(());
        }
        if base < MIRROR_FLOOR || base + span > TASK_SIZE {
            return Ok(());
        }
        // map_run forgets the mirrors this one replaces (huge or small).
        self.map_run(base, span, phys, prot)?;
        self.cur.mirrors().insert(base, want);
        Ok(())
    }

    /// Unmaps `[va, va + len)` (rounded out to pages, and to whole mirrors)
    /// from the stub: its entries changed in lmm and fault back in. Where
    /// the stub mirrors nothing there is nothing to do (the mirrors table is
    /// what the stub maps above [`MIRROR_FLOOR`]); else the munmap is
    /// queued, made before the program runs again (by the chain back to it,
    /// without a stop of its own).
    fn unmirror(&mut self, va: u64, len: u64) -> Result<(), String> {
        let mut start = (va & !4095).max(MIRROR_FLOOR);
        let mut end = va.saturating_add(len).saturating_add(4095) & !4095;
        end = end.min(TASK_SIZE);
        if start >= end {
            return Ok(());
        }
        let hit = mirror::overlapping(&self.cur.mirrors(), start, end);
        if hit.is_empty() {
            return Ok(());
        }
        for (s, mir) in hit {
            self.cur.mirrors().remove(&s);
            start = start.min(s);
            end = end.max(s + mir.span);
        }
        let r = self
            .cur
            .stub
            .queue_syscall(libc::SYS_munmap, [start, end - start, 0, 0, 0, 0])
            .map_err(|e| format!("lmm native: {e}"))?;
        if r < 0 {
            return Err(format!(
                "lmm native: munmap {start:#x}-{end:#x} in the stub: errno {}",
                -r
            ));
        }
        Ok(())
    }

    /// Faults `[va, va + len)` in for `access` through lmm and mirrors it.
    fn fault_in(&mut self, va: u64, len: u64, access: Access) -> Result<bool, String> {
        if len == 0 {
            return Ok(true);
        }
        let Some(end) = va.checked_add(len) else {
            return Ok(false);
        };
        let mut page = va & !4095;
        while page < end {
            let at = page.max(va);
            self.quiesce_for(FAULT_PAGES)?;
            if self.m.touch(self.cur.pid, at, 1, access).is_err() {
                return Ok(false);
            }
            self.check_reclaim()?;
            self.mirror(at, false)?;
            page += 4096;
        }
        Ok(true)
    }

    /// [`Run::fault_in_buffers`] again until no page was reclaimed while
    /// it ran (reclaim may take back a page faulted in for an earlier
    /// buffer, and the host would then see it missing and say EFAULT).
    fn fault_in_stable(&mut self, bufs: &[Buf]) -> Result<bool, String> {
        for _ in 0..8 {
            let before = reclaimed_pages(self.m);
            if !self.fault_in_buffers(bufs)? {
                return Ok(false);
            }
            if reclaimed_pages(self.m) == before {
                return Ok(true);
            }
        }
        Err("lmm native: reclaim keeps taking a system call's buffers back".into())
    }

    /// Faults in the buffers of a system call; false if one is not
    /// accessible (the call then fails with EFAULT).
    fn fault_in_buffers(&mut self, bufs: &[Buf]) -> Result<bool, String> {
        for &b in bufs {
            if !self.fault_in_buf(b)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Faults in one buffer of a system call (what a pointer in it points
    /// at too); false if it is not accessible.
    fn fault_in_buf(&mut self, b: Buf) -> Result<bool, String> {
        let word = |raw: &[u8], at: usize| {
            u64::from_le_bytes(raw[at..at + 8].try_into().unwrap_or([0; 8]))
        };
        Ok(match b {
            Buf::Bytes { va, len, access } => self.fault_in(va, len, access)?,
            Buf::Str { va } => self.fault_in_str(va)?,
            Buf::Iovec { count, .. } if count > 1024 => true,
            Buf::Iovec { va, count, access } => {
                let Some(raw) = self.get_user(va, count * 16)? else {
                    return Ok(false);
                };
                // A NULL base is the host's EFAULT (its page 0 is never
                // mapped) or, for pselect6's { sigset, size }, no mask.
                for iov in raw.chunks_exact(16).filter(|iov| word(iov, 0) != 0) {
                    if !self.fault_in(word(iov, 0), word(iov, 8), access)? {
                        return Ok(false);
                    }
                }
                true
            }
            Buf::Sized { va, len_va, max } => {
                // The length is read, then written back.
                let Some(raw) = self.get_user(len_va, 4)? else {
                    return Ok(false);
                };
                if !self.fault_in(len_va, 4, Access::Write)? {
                    return Ok(false);
                }
                let len = u32::from_le_bytes(raw[..4].try_into().unwrap_or([0; 4]));
                // A negative length is EINVAL, the host's to say.
                (len as i32) < 0 || self.fault_in(va, u64::from(len).min(max), Access::Write)?
            }
            Buf::Mmsghdr { va, count, access } => {
                for i in 0..count {
                    let at = va.wrapping_add(64 * i);
                    let msg_len = Buf::Bytes {
                        va: at.wrapping_add(56),
                        len: 4,
                        access: Access::Write,
                    };
                    if !self.fault_in_buffers(&[Buf::Msghdr { va: at, access }, msg_len])? {
                        return Ok(i > 0);
                    }
                }
                true
            }
            Buf::Msghdr { va, access } => {
                // msg_name, msg_namelen, msg_iov, msg_iovlen, msg_control,
                // msg_controllen, msg_flags: 56 bytes; recvmsg writes the
                // lengths and the flags back.
                let Some(raw) = self.get_user(va, 56)? else {
                    return Ok(false);
                };
                let namelen =
                    u64::from(u32::from_le_bytes(raw[8..12].try_into().unwrap_or([0; 4])));
                let parts = [
                    Buf::Bytes {
                        va,
                        len: 56,
                        access,
                    },
                    Buf::Bytes {
                        va: word(&raw, 0),
                        len: if word(&raw, 0) == 0 { 0 } else { namelen },
                        access,
                    },
                    Buf::Iovec {
                        va: word(&raw, 16),
                        count: word(&raw, 24),
                        access,
                    },
                    Buf::Bytes {
                        va: word(&raw, 32),
                        len: word(&raw, 40),
                        access,
                    },
                ];
                self.fault_in_buffers(&parts)?
            }
        })
    }

    /// `copy_from_user` of `len` bytes of the current process through lmm
    /// (faulting the pages in); `None` on EFAULT.
    fn get_user(&mut self, va: u64, len: u64) -> Result<Option<Vec<u8>>, String> {
        if !self.fault_in(va, len, Access::Read)? {
            return Ok(None);
        }
        Ok(self.m.read_user(self.cur.pid, va, len as usize).ok())
    }

    /// A read of a regular file writes at most the bytes left before its
    /// end: only those pages are faulted in, as Linux's copy_to_user
    /// faults only what it writes (a read into a 128 KiB buffer of a 4 KiB
    /// file touches one page). Pipes and terminals keep the whole buffer.
    fn clip_read(&self, nr: u64, a: [u64; 6], bufs: Vec<Buf>) -> Vec<Buf> {
        if nr != 0 && nr != 17 {
            return bufs;
        }
        let stub = self.cur.stub.pid;
        let fd = a[0];
        let Ok(meta) = std::fs::metadata(format!("/proc/{stub}/fd/{fd}")) else {
            return bufs;
        };
        if !meta.is_file() {
            return bufs;
        }
        let pos = if nr == 17 {
            a[3]
        } else {
            let info =
                std::fs::read_to_string(format!("/proc/{stub}/fdinfo/{fd}")).unwrap_or_default();
            match info
                .lines()
                .find_map(|l| l.strip_prefix("pos:")?.trim().parse::<u64>().ok())
            {
                Some(p) => p,
                None => return bufs,
            }
        };
        let left = meta.len().saturating_sub(pos);
        bufs.into_iter()
            .map(|b| match b {
                Buf::Bytes { va, len, access } => Buf::Bytes {
                    va,
                    len: len.min(left),
                    access,
                },
                other => other,
            })
            .collect()
    }

    /// Faults in a NUL-terminated string at `va` (at most PATH_MAX bytes).
    fn fault_in_str(&mut self, va: u64) -> Result<bool, String> {
        let mut at = va;
        while at - va < 4096 {
            let chunk = (at & !4095) + 4096 - at;
            if !self.fault_in(at, 1, Access::Read)? {
                return Ok(false);
            }
            let Ok(bytes) = self.m.read_user(self.cur.pid, at, chunk as usize) else {
                return Ok(false);
            };
            if bytes.contains(&0) {
                return Ok(true);
            }
            at += chunk;
        }
        Ok(true)
    }

    /// A system-call stop of the current process: serves the call.
    fn syscall(&mut self) -> Result<Done, String> {
        let io = |e: std::io::Error| format!("lmm native: {e}");
        let regs = self.cur.stub.regs().map_err(io)?;
        let nr = regs.orig_rax;
        let a = [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9];
        *self.out.syscalls.entry(syscalls::name(nr)).or_default() += 1;
        let mut kind = syscalls::classify(nr, a);
        if nr == libc::SYS_restart_syscall as u64 {
            // The call the kernel restarts touches what it touched (a
            // futex word lmm may have unmapped since, at a fork), as
            // often as it is restarted.
            if let Some((was, args)) = self.cur.restart {
                if let Kind::Host(bufs) = syscalls::classify(was, args) {
                    kind = Kind::Host(bufs);
                }
            }
        }
        *self
            .out
            .kinds
            .entry(match kind {
                Kind::Host(_) => "host",
                Kind::Refused(_) | Kind::Quiet | Kind::NoTty => "refused",
                Kind::Memory | Kind::Exit | Kind::Wait | Kind::Fork | Kind::Exec | Kind::Pid => {
                    "lmm"
                }
            })
            .or_default() += 1;
        if matches!(kind, Kind::Memory | Kind::Exit | Kind::Fork | Kind::Exec) {
            self.drop_ahead()?;
        }
        let ret: i64 = match kind {
            Kind::Exit if nr == libc::SYS_exit as u64 => return self.exit_thread(a[0]),
            Kind::Exit => return Ok(Done::Ended(Ending::Exited((a[0] & 0xff) as i32))),
            Kind::Memory => self.memory(nr, a)?,
            Kind::Wait => match self.wait(nr, a)? {
                Some(ret) => ret,
                None => {
                    self.cur.state = State::Wait(nr, a);
                    return Ok(Done::Pending);
                }
            },
            Kind::Fork => return self.fork(nr, a),
            Kind::Exec if nr == 322 => self.execveat(a)?,
            Kind::Exec => self.execve(a)?,
            Kind::Pid => self.ids(nr, a),
            Kind::Quiet => -i64::from(libc::ENOSYS),
            Kind::NoTty => -i64::from(libc::ENOTTY),
            Kind::Refused(what) => {
                if self.warned.insert(nr) {
                    eprintln!(
                        "lmm native: {} ({what}) is not supported yet: the program gets ENOSYS",
                        syscalls::name(nr)
                    );
                }
                -i64::from(libc::ENOSYS)
            }
            Kind::Host(bufs) => {
                // The RAM memfd's descriptor is lmm's, not the program's.
                let fd_args = matches!(nr, 3 | 32 | 33 | 292 | 72)
                    && (a[0] == MEMFD_SLOT as u64 || (nr != 3 && a[1] == MEMFD_SLOT as u64));
                if fd_args {
                    -i64::from(libc::EBADF)
                } else if !self.fault_in_stable(&self.clip_read(nr, a, bufs))? {
                    -i64::from(libc::EFAULT)
                } else if nr == 15 {
                    self.cur.stub.sigreturn().map_err(io)?;
                    return Ok(Done::Resume);
                } else if let Some(r) = self.proc_call(nr, a)? {
                    r
                } else if let Some(r) = self.timer_create(nr, a)? {
                    r
                } else if let Some(r) = self.close_range(nr, a)? {
                    r
                } else if let Some(r) = self.getrusage(nr, a)? {
                    r
                } else if let Some(r) = self.getaffinity(nr, a)? {
                    r
                } else {
                    if nr == 218 {
                        self.cur.clear_tid = a[0];
                    }
                    if nr == 13 && a[0] == libc::SIGCHLD as u64 && a[1] != 0 {
                        self.note_sigchld_action(a[1]);
                    }
                    match self.host_pids(nr, a) {
                        Err(ret) => ret,
                        Ok(args) => {
                            let stub = self.cur.stub.pid;
                            self.coherence.before(self.m, stub, nr, args);
                            if args == a
                                && !syscalls::needs_result(nr)
                                && !self.coherence.changes(stub)
                                && self.cur.stub.run_in_place().map_err(io)?
                            {
                                self.out.in_place += 1;
                                return Ok(Done::Pending);
                            }
                            let a = args;
                            // Run in the host; it may block there: the
                            // event loop serves the others meanwhile.
                            let deadline = self.wait_deadline(nr, a);
                            let saved = self.cur.stub.start_syscall(nr as i64, a).map_err(io)?;
                            self.cur.state = State::HostCall {
                                saved,
                                nr,
                                deadline,
                            };
                            return Ok(Done::Pending);
                        }
                    }
                }
            }
        };
        Ok(Done::Ret(ret))
    }

    /// Notes whether the `struct sigaction` at `act` that the current
    /// process is giving SIGCHLD (rt_sigaction, its buffer faulted in) has
    /// SA_NOCLDWAIT, for the autoreap of [`Run::exit_task`]. A call the
    /// kernel then refuses (a bad size) changes nothing on Linux but is
    /// noted here: a simplification.
    fn note_sigchld_action(&mut self, act: u64) {
        let mut flags = [0u8; 8];
        if self.read_text(act + 8, &mut flags) < 8 {
            return;
        }
        if u64::from_le_bytes(flags) & libc::SA_NOCLDWAIT as u64 != 0 {
            self.nocldwait.insert(self.cur.pid);
        } else {
            self.nocldwait.remove(&self.cur.pid);
        }
    }

    /// getpid, gettid, getppid and the process-group and session calls
    /// (setpgid, getpgid, getpgrp, setsid, getsid) on lmm's process
    /// table: their result. Simplification: a pid argument that is the
    /// tid of a thread other than its group's leader is ESRCH, where
    /// Linux finds the thread and answers for its process.
    fn ids(&mut self, nr: u64, a: [u64; 6]) -> i64 {
        let me = self.cur.pid;
        let err = |e: mm::errno::Errno| -i64::from(e.code());
        // A pid argument: 0 is the caller; a negative one is no process.
        let who = |v: u64| match v as i32 {
            0 => Ok(me),
            p => u32::try_from(p).map_err(|_| mm::errno::Errno::ESRCH),
        };
        let field = |m: &Machine, v: u64, f: fn(&machine::process::Process) -> u32| {
            who(v)
                .and_then(|p| m.process(p).map(f).ok_or(mm::errno::Errno::ESRCH))
                .map_or_else(err, i64::from)
        };
        match nr {
            39 => i64::from(me),
            186 => i64::from(self.cur.tid),
            109 => {
                let pgid = a[1] as i32;
                if pgid < 0 {
                    return err(mm::errno::Errno::EINVAL);
                }
                who(a[0])
                    .and_then(|pid| {
                        let pgid = if pgid == 0 { pid } else { pgid as u32 };
                        self.m.setpgid(me, pid, pgid)
                    })
                    .map_or_else(err, |()| 0)
            }
            111 => field(self.m, 0, |p| p.pgid),
            121 => field(self.m, a[0], |p| p.pgid),
            124 => field(self.m, a[0], |p| p.sid),
            112 => self.m.setsid(me).map_or_else(err, i64::from),
            _ => match self.m.process(me).map_or(0, |p| p.ppid) {
                // The first process's parent is lmm's own parent.
                0 => i64::from(std::os::unix::process::parent_id()),
                ppid => i64::from(ppid),
            },
        }
    }

    /// A memory system call on lmm's mm, and its effect on the stub.
    fn memory(&mut self, nr: u64, a: [u64; 6]) -> Result<i64, String> {
        self.quiesce()?;
        let pid = self.cur.pid;
        let errno = |e: mm::errno::Errno| -i64::from(e.code());
        let r = match nr {
            9 => {
                let file = if a[3] & libc::MAP_ANONYMOUS as u64 == 0 {
                    match self.host_file(a[4] as i32, a[2], a[3]) {
                        Ok(f) => f,
                        Err(e) => return Ok(e),
                    }
                } else {
                    None
                };
                let flags = if file.is_none() {
                    a[3] | libc::MAP_ANONYMOUS as u64
                } else {
                    a[3]
                };
                let r = self
                    .m
                    .sys_mmap(pid, a[0], a[1], a[2] as u32, flags as u32, file, a[5]);
                if let Ok(at) = r {
                    self.unmirror(at, a[1])?;
                }
                r
            }
            10 => {
                let r = self.m.sys_mprotect(pid, a[0], a[1], a[2] as u32);
                self.unmirror(a[0], a[1])?;
                r
            }
            11 => {
                let r = self.m.sys_munmap(pid, a[0], a[1]);
                self.unmirror(a[0], a[1])?;
                r
            }
            12 => {
                let old = self.m.process(pid).map_or(0, |p| p.mm.brk.as_u64());
                let r = self.m.sys_brk(pid, a[0]);
                if let Ok(new) = r {
                    let (lo, hi) = (old.min(new), old.max(new));
                    self.unmirror(lo, hi - lo)?;
                }
                r
            }
            25 => {
                let r = self.m.sys_mremap(pid, a[0], a[1], a[2], a[3] as u32, a[4]);
                self.unmirror(a[0], a[1])?;
                if let Ok(at) = r {
                    self.unmirror(at, a[2])?;
                }
                r
            }
            26 => {
                // MS_SYNC cleans and write-protects the dirty ptes: the
                // next store must fault again to dirty the page.
                let r = self.m.sys_msync(pid, a[0], a[1], a[2] as u32);
                if a[2] & u64::from(mm::msync::MS_SYNC) != 0 {
                    self.unmirror(a[0], a[1])?;
                }
                r
            }
            27 => match self.m.sys_mincore(pid, a[0], a[1]) {
                Ok(vec) => {
                    if self.fault_in(a[2], vec.len() as u64, Access::Write)? {
                        self.m.write_user(pid, a[2], &vec).map(|_| 0)
                    } else {
                        Err(mm::errno::Errno::EFAULT)
                    }
                }
                Err(e) => Err(e),
            },
            28 => {
                let r = self.m.sys_madvise(pid, a[0], a[1], a[2] as i32);
                self.unmirror(a[0], a[1])?;
                r
            }
            149 | 325 => self.m.sys_mlock(pid, a[0], a[1]),
            150 => self.m.sys_munlock(pid, a[0], a[1]),
            151 => self.m.sys_mlockall(pid, a[0] as u32),
            152 => self.m.sys_munlockall(pid),
            _ => Err(mm::errno::Errno::ENOSYS),
        };
        self.check_reclaim()?;
        Ok(r.map(|v| v as i64).unwrap_or_else(errno))
    }

    /// The file behind the program's descriptor `fd` (a host descriptor in
    /// the stub), opened by lmm so that a mapping of it reads the file
    /// through lmm's page cache; `None` for /dev/zero (anonymous memory).
    /// A shared mapping of a descriptor open for reading and writing opens
    /// the file read-write (kept for the run, [`coherence`]), so that its
    /// dirty pages are written back to it; other mappings open it
    /// read-only. Err: the negative errno the mmap returns (EBADF, EACCES
    /// as mmap(2) checks them).
    fn host_file(
        &mut self,
        fd: i32,
        prot: u64,
        flags: u64,
    ) -> Result<Option<mm::file::FileRef>, i64> {
        let ebadf = -i64::from(libc::EBADF);
        let eacces = -i64::from(libc::EACCES);
        if fd < 0 || fd == MEMFD_SLOT {
            return Err(ebadf);
        }
        let stub = self.cur.stub.pid;
        // Opened through the descriptor's link, so that a file without a
        // name (unlinked, O_TMPFILE) opens too; shown as the link's target.
        let link = format!("/proc/{stub}/fd/{fd}");
        let path = std::fs::read_link(&link).map_err(|_| ebadf)?;
        let info =
            std::fs::read_to_string(format!("/proc/{stub}/fdinfo/{fd}")).map_err(|_| ebadf)?;
        let open_flags = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
            .unwrap_or(0);
        let access = open_flags & 3;
        if access == libc::O_WRONLY as u32 {
            return Err(eacces);
        }
        let path = path.to_string_lossy().into_owned();
        if path == "/dev/zero" {
            return Ok(None);
        }
        let shared = flags & 3 != libc::MAP_PRIVATE as u64;
        let rdwr = access == libc::O_RDWR as u32;
        if shared && prot & libc::PROT_WRITE as u64 != 0 && !rdwr {
            return Err(eacces);
        }
        let file = if shared && rdwr {
            self.coherence.open_rw(&link, &path)
        } else {
            machine::hostfs::HostFile::open_link(&link, &path, false)
        }
        .map_err(|e| -i64::from(e.code()))?;
        if self.warm_cache {
            warm_file(self.m, &file);
        }
        Ok(Some(file))
    }

    /// The end of the run: records the files at exit, the faults and peak
    /// RSS, tears the process down in lmm and kills the stub.
    fn finish(&mut self, ending: Ending, opts: &Options) -> Result<(), String> {
        for (file, path) in &opts.at_exit {
            let text = self.m.proc_pid(self.cur.pid, file)?;
            std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        if let Some(p) = self.m.process(self.cur.pid) {
            self.out.faults = Faults {
                minor: p.flt.minor + p.cflt.minor,
                major: p.flt.major + p.cflt.major,
            };
            self.out.peak_rss_kb = p.mm.hiwater_rss().max(p.mm.rss_pages()) * 4;
        }
        self.out.ending = ending;
        self.observe(true);
        self.out.swap = (
            vmstat(self.m, "pswpin") - self.out.swap.0,
            vmstat(self.m, "pswpout") - self.out.swap.1,
        );
        let code = match ending {
            Ending::Exited(c) => c,
            Ending::Signaled(s) => 128 + s,
        };
        self.m
            .exit_code(self.cur.pid, code)
            .map_err(|e| format!("exit: {e}"))?;
        self.coherence.sync_all(self.m);
        // Its threads, then orphans still running, are killed with the run.
        self.kill_process(self.cur.pid);
        let pids: std::collections::BTreeSet<u32> = self.others.values().map(|t| t.pid).collect();
        for pid in pids {
            self.kill_process(pid);
        }
        Ok(())
    }
}

/// Ends lmm the way the program ended, so that lmm's own parent sees the
/// program's wait status: the same exit code, or death by the same signal
/// (with the default action restored and no core dump).
pub fn exit_as(ending: Ending) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    match ending {
        Ending::Exited(code) => std::process::exit(code),
        Ending::Signaled(sig) => {
            // SAFETY: resetting a disposition, dropping the core limit and
            // raising a signal at ourselves; nothing runs after it returns
            // but the fallback exit.
            unsafe {
                let no_core = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                libc::setrlimit(libc::RLIMIT_CORE, &no_core);
                libc::signal(sig, libc::SIG_DFL);
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, sig);
                libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
                libc::raise(sig);
            }
            std::process::exit(128 + sig)
        }
    }
}

impl Outcome {
    /// The summary `lmm native` prints on stderr.
    pub fn summary(&self, program: &str) -> String {
        let mut s = match self.ending {
            Ending::Exited(c) => format!("lmm native: {program} exited with status {c}\n"),
            Ending::Signaled(sig) => format!("lmm native: {program} was killed by signal {sig}\n"),
        };
        s += &format!("minor faults: {}\n", self.faults.minor);
        s += &format!("major faults: {}\n", self.faults.major);
        s += &format!("peak RSS: {} kB\n", self.peak_rss_kb);
        s += &format!("swap-ins: {}\n", self.swap.0);
        s += &format!("swap-outs: {}\n", self.swap.1);
        s += &format!("mirror refreshes: {}\n", self.spurious);
        s += &format!(
            "ptrace stops: {} ({} injected system calls, {} mirrors, {} host calls in place)\n",
            self.stops, self.injected, self.mirrors, self.in_place
        );
        let kinds: Vec<String> = self.kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
        s += &format!("system calls: {}\n", kinds.join(", "));
        for (name, n) in &self.syscalls {
            s += &format!("  {name} {n}\n");
        }
        s
    }
}
