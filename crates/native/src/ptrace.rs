//! The stub: the host process a real program runs in, traced by lmm with
//! ptrace (the technique of User-Mode Linux and gVisor's ptrace platform).
//!
//! lmm forks the stub; before it stops itself for the tracer the child puts
//! a trampoline page at [`TRAMPOLINE`] holding `syscall; int3`, keeps the
//! RAM memfd at descriptor [`MEMFD_SLOT`] and stdin/stdout/stderr, and
//! closes every other descriptor. The tracer then unmaps every other host
//! mapping the child inherited from lmm ([`Stub::spawn`]), so the stub sees
//! no memory of lmm: only the trampoline, `[vsyscall]` (which cannot be
//! unmapped) and the frames lmm mirrors into it.
//!
//! A system call is run in the stub by pointing its registers at the
//! trampoline and letting it run to the `int3` ([`Stub::syscall`]). The
//! mirror of a fault is made on the way back to the program instead
//! ([`Stub::queue_syscall`], `crate::chain`), which saves a stop.
//!
//! Deviation from Linux: the trampoline sits at 0x1000, below
//! `vm.mmap_min_addr`, an address Linux never gives a program (so it can
//! clash with nothing the program maps); mapping it there needs root
//! (CAP_SYS_RAWIO), which lmm native needs anyway to trace as it does.

use std::cell::Cell;
use std::fs::File;
use std::io;
use std::os::fd::RawFd;

use crate::chain;

/// Where the trampoline page sits in the stub.
pub const TRAMPOLINE: u64 = 0x1000;
/// Where the chain's window sits in the stub, after the trampoline: a page
/// of a memfd of the stub's own that lmm maps too (`Window`), read-only
/// in the stub.
pub const WINDOW: u64 = TRAMPOLINE + 4096;

/// Zero bytes in the trampoline page (after its code), readable by the
/// stub: a `struct sigaction` of SIG_DFL for the rt_sigaction calls lmm
/// injects at exec.
pub const ZEROES: u64 = TRAMPOLINE + 64;
/// Slots in the trampoline page (past the chain's code, before
/// [`SCRATCH`]) where lmm writes the time left of a timed wait it makes
/// again for a thread ([`timeout_slot`]): 64 `struct timespec`s.
pub const TIMEOUTS: u64 = TRAMPOLINE + 1024;

/// The slot of [`TIMEOUTS`] for the stub thread `tid`. Simplification:
/// two threads whose tids are equal modulo 64, both making a timed wait
/// again at once, could read each other's time left (the kernel copies
/// it when the call starts, so only that moment counts).
pub fn timeout_slot(tid: libc::pid_t) -> u64 {
    TIMEOUTS + 16 * (tid.unsigned_abs() as u64 % 64)
}
const _: () = assert!(chain::CODE + chain::CODE_BYTES as u64 <= TIMEOUTS);
const _: () = assert!(TIMEOUTS + 64 * 16 <= SCRATCH);

/// A scratch area in the trampoline page where lmm puts a path argument
/// of its own for a system call it runs in the stub ([`Stub::poke`]): the
/// page's second half, past the code.
pub const SCRATCH: u64 = TRAMPOLINE + 2048;

/// A signal lmm took from a stub thread while it ran a call there, and
/// its siginfo if the host gave it: queued to the thread again after.
type Held = (i32, Option<libc::siginfo_t>);

/// The descriptor the stub keeps the RAM memfd at (high, so the program's
/// own descriptors, handed out lowest first, never meet it).
pub const MEMFD_SLOT: RawFd = 1000;

/// The end of the user address space the stub's mappings are cleared up to
/// (x86-64 4-level TASK_SIZE).
const TASK_SIZE: u64 = 0x7fff_ffff_f000;

/// The special mappings of the host's vDSO.
const VDSO_NAMES: [&str; 3] = ["[vvar]", "[vvar_vclock]", "[vdso]"];

/// The trampoline's code: `syscall; int3`.
const TRAMPOLINE_CODE: [u8; 3] = [0x0f, 0x05, 0xcc];

/// The registers of the stub's thread (`struct user_regs_struct`).
pub type Regs = libc::user_regs_struct;

/// Words in [`Regs`] (`struct user_regs_struct`: 27 unsigned longs).
const REG_WORDS: usize = 27;
const _: () = assert!(std::mem::size_of::<Regs>() == REG_WORDS * 8);

/// The words of `r` in the kernel's order (a POKEUSER offset is 8 times
/// the index).
fn reg_words(r: &Regs) -> [u64; REG_WORDS] {
    // SAFETY: user_regs_struct is repr(C), 27 unsigned longs with no
    // padding (asserted above), so it has the layout of [u64; 27].
    unsafe { std::mem::transmute::<Regs, [u64; REG_WORDS]>(*r) }
}

/// The registers the program goes on with from a stop where lmm sends it
/// elsewhere first (a chain) and no signal is delivered: if the stop ended
/// a system call of the program's own that the kernel restarts on the way
/// back (it returned -ERESTARTSYS, -ERESTARTNOINTR or -ERESTARTNOHAND, or
/// -ERESTART_RESTARTBLOCK: a call run in place, interrupted by a signal
/// lmm holds back or by lmm's own SIGSTOP), the restart is made here as
/// arch_do_signal_or_restart would make it (`rip` back onto the `syscall`,
/// `rax` the call again, or restart_syscall), and `orig_rax` is -1 so that
/// the kernel does not make it a second time on lmm's registers.
fn restarted(mut r: Regs) -> Regs {
    /// -ERESTARTSYS, -ERESTARTNOINTR, -ERESTARTNOHAND.
    const RESTART: [i64; 3] = [-512, -513, -514];
    /// -ERESTART_RESTARTBLOCK.
    const RESTART_BLOCK: i64 = -516;
    if r.orig_rax as i64 >= 0 {
        let ret = r.rax as i64;
        if RESTART.contains(&ret) {
            r.rax = r.orig_rax;
            r.rip -= 2;
        } else if ret == RESTART_BLOCK {
            r.rax = libc::SYS_restart_syscall as u64;
            r.rip -= 2;
        }
    }
    r.orig_rax = u64::MAX;
    r
}

/// How the stub stopped or ended (from `waitpid`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// A system-call-entry stop of PTRACE_SYSEMU, or the seccomp stop of
    /// a call the program made while running under PTRACE_CONT after a
    /// chain (the call is not run either way).
    Syscall,
    /// A signal-delivery stop for this signal (not yet delivered).
    Signal(i32),
    /// The stub exited with this code.
    Exited(i32),
    /// The stub was killed by this signal.
    Killed(i32),
    /// A ptrace event stop (`PTRACE_EVENT_FORK`, `PTRACE_EVENT_CLONE`: the
    /// stub forked, or made a thread).
    Event(i32),
}

thread_local! {
    /// Stops and ends of stubs that [`wait_for`], waiting for another
    /// stub, took from the kernel: [`wait_any`] hands them out first.
    static TAKEN: std::cell::RefCell<std::collections::VecDeque<(libc::pid_t, i32)>> =
        Default::default();
}

/// Waits for the next stop or end of stub thread `pid`: its wait status.
/// It waits for any child and keeps the others' for [`wait_any`]: a wait
/// for `pid` alone could last for ever, as a thread-group leader killed by
/// its group's exit (another thread's fatal signal) is reported only once
/// its other threads, traced by lmm, are reaped (1 run in 60 of
/// threads_segv.c hung so under load, in a mirror's call on the leader).
fn wait_for(pid: libc::pid_t) -> io::Result<i32> {
    let taken = TAKEN.with(|q| {
        let mut q = q.borrow_mut();
        let at = q.iter().position(|&(p, _)| p == pid)?;
        q.remove(at).map(|(_, status)| status)
    });
    if let Some(status) = taken {
        return Ok(status);
    }
    let mut status = 0;
    loop {
        // SAFETY: waitpid on any of our children with a valid status pointer.
        let r = unsafe { libc::waitpid(-1, &mut status, libc::__WALL) };
        if r == pid {
            return Ok(status);
        }
        if r > 0 {
            TAKEN.with(|q| q.borrow_mut().push_back((r, status)));
        } else if io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return Err(os_err("waitpid"));
        }
    }
}

/// Waits for the next stop or end of any traced stub: its host pid and
/// wait status (for [`Stub::decode`]). Several stubs run at once; one
/// that blocks in the host must not keep lmm from serving the others.
pub fn wait_any() -> io::Result<(libc::pid_t, i32)> {
    if let Some(e) = TAKEN.with(|q| q.borrow_mut().pop_front()) {
        return Ok(e);
    }
    let mut status = 0;
    loop {
        // SAFETY: waitpid on any of our children with a valid status pointer.
        let r = unsafe { libc::waitpid(-1, &mut status, libc::__WALL) };
        if r > 0 {
            return Ok((r, status));
        }
        if io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return Err(os_err("waitpid"));
        }
    }
}

/// A traced host thread: a process's only (or leader) thread, or one
/// more thread of it ([`Stub::clone_thread`]).
pub struct Stub {
    /// Its host tid (the host pid for a leader).
    pub pid: libc::pid_t,
    /// Its host thread group's id (the leader's tid).
    pub tgid: libc::pid_t,
    /// False once it has exited or been killed and reaped.
    alive: bool,
    /// How it ended, once a wait reaped it, until [`Stub::take_end`].
    end: Option<Stop>,
    /// True from a resume until lmm has waited for its next stop: it may
    /// be running its code or a host call (see [`Stub::interrupt`]).
    running: bool,
    /// Stops and ends waited for so far (each is a round trip through the
    /// host kernel's scheduler: the cost `lmm bench native` breaks down).
    pub stops: u64,
    /// System calls run in the stub through the trampoline so far.
    pub injected: u64,
    /// The host's vDSO mappings kept in it until [`Stub::place_vdso`]:
    /// name, start, length.
    vdso: Vec<(String, u64, u64)>,
    /// True once the seccomp filter of [`chain::FILTER`] is in place and the
    /// process has one thread: the stub can run a chain.
    seccomp: bool,
    /// The chain's window, through which lmm hands a chain its data with
    /// plain stores (none if the stub could not make one: no chain).
    window: Option<Window>,
    /// True at a seccomp stop until the registers are set with the call
    /// skipped (`orig_rax` -1): the call must not run when resumed.
    at_seccomp: bool,
    /// The registers at the current stop, once read or set (a stop's
    /// registers change only through [`Stub::set_regs`]).
    regs: Cell<Option<Regs>>,
    /// The registers the kernel holds for the stub at this stop, once
    /// read or written: what [`Stub::set_regs`] changed is written back
    /// at the next resume, against these.
    kernel_regs: Cell<Option<Regs>>,
    /// Calls queued by [`Stub::queue_syscall`], made when the stub next
    /// runs.
    pending: Vec<[u64; 7]>,
    /// A chain the stub was let go with: the program's registers it
    /// returns to and its calls, until a stop shows it through.
    chain: Option<(Regs, Vec<[u64; 7]>)>,
    /// The siginfo of signals [`Stub::requeue_held`] had to send again
    /// with tgkill (which replaces it: SI_TKILL from lmm), given back at
    /// their delivery by [`Stub::requeued_info`].
    requeued: std::cell::RefCell<Vec<libc::siginfo_t>>,
}

/// The last OS error as an `io::Error` naming what failed.
fn os_err(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// The child side of the fork: only async-signal-safe calls from here on.
/// Never returns.
fn child(memfd: RawFd, chain_code: &[u8; chain::CODE_BYTES]) -> ! {
    // SAFETY: plain system calls on the child's own state after fork; the
    // trampoline is written through a mapping this function just created at
    // a fixed address nothing else uses.
    unsafe {
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &no_core);
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        // lmm's signal handlers, mask and alternate stack point into
        // memory the stub is about to lose: the program starts with the
        // defaults, as after execve.
        for sig in 1..=64 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        let off = libc::stack_t {
            ss_sp: std::ptr::null_mut(),
            ss_flags: libc::SS_DISABLE,
            ss_size: 0,
        };
        libc::sigaltstack(&off, std::ptr::null_mut());
        if libc::dup2(memfd, MEMFD_SLOT) != MEMFD_SLOT {
            libc::_exit(126);
        }
        libc::syscall(libc::SYS_close_range, 3u32, (MEMFD_SLOT - 1) as u32, 0u32);
        libc::syscall(
            libc::SYS_close_range,
            (MEMFD_SLOT + 1) as u32,
            u32::MAX,
            0u32,
        );
        let page = libc::mmap(
            TRAMPOLINE as *mut libc::c_void,
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
            -1,
            0,
        );
        if page != TRAMPOLINE as *mut libc::c_void {
            libc::_exit(125);
        }
        std::ptr::copy_nonoverlapping(TRAMPOLINE_CODE.as_ptr(), page.cast::<u8>(), 3);
        std::ptr::copy_nonoverlapping(
            chain_code.as_ptr(),
            page.cast::<u8>().add((chain::CODE - TRAMPOLINE) as usize),
            chain_code.len(),
        );
        libc::mprotect(page, 4096, libc::PROT_READ | libc::PROT_EXEC);
        if libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) != 0 {
            libc::_exit(124);
        }
        libc::kill(libc::getpid(), libc::SIGSTOP);
        libc::_exit(123);
    }
}

impl Stub {
    /// The state lmm keeps of host process `pid`, just stopped for the
    /// first time, with its vDSO mappings and whether it inherited the
    /// seccomp filter.
    fn new(
        pid: libc::pid_t,
        tgid: libc::pid_t,
        vdso: Vec<(String, u64, u64)>,
        seccomp: bool,
    ) -> Stub {
        Stub {
            pid,
            tgid,
            alive: true,
            end: None,
            running: false,
            stops: 0,
            injected: 0,
            vdso,
            seccomp,
            window: None,
            at_seccomp: false,
            regs: Cell::new(None),
            kernel_regs: Cell::new(None),
            pending: Vec::new(),
            chain: None,
            requeued: Default::default(),
        }
    }

    /// Forks the stub, waits for it to stop, sets the trace options
    /// (EXITKILL: it dies with lmm; TRACESYSGOOD) and unmaps everything it
    /// inherited but the trampoline.
    pub fn spawn(memfd: RawFd) -> io::Result<Stub> {
        let chain_code = chain::code();
        // The filter's program, at the same address in the child (a copy
        // of this process until `unmap_all`), where the injected seccomp
        // call reads it.
        let filter = libc::sock_fprog {
            len: chain::FILTER.len() as u16,
            filter: chain::FILTER.as_ptr().cast_mut(),
        };
        // SAFETY: the child runs only async-signal-safe system calls
        // (`child`) and never returns into Rust code of the parent.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(os_err("fork"));
        }
        if pid == 0 {
            child(memfd, &chain_code);
        }
        let mut stub = Stub::new(pid, pid, Vec::new(), false);
        match stub.wait()? {
            Stop::Signal(libc::SIGSTOP) => {}
            other => {
                return Err(io::Error::other(format!(
                    "the stub did not start: {other:?} (lmm native needs root, for ptrace \
                     and the trampoline below mmap_min_addr)"
                )))
            }
        }
        // TRACEFORK, TRACECLONE: the child of a fork lmm injects is traced
        // too, and so is a thread lmm clones; TRACESECCOMP: the filter's
        // SECCOMP_RET_TRACE stops here.
        let opts = libc::PTRACE_O_EXITKILL
            | libc::PTRACE_O_TRACESYSGOOD
            | libc::PTRACE_O_TRACEFORK
            | libc::PTRACE_O_TRACECLONE
            | libc::PTRACE_O_TRACESECCOMP;
        // SAFETY: PTRACE_SETOPTIONS on our stopped tracee with valid flags.
        if unsafe { libc::ptrace(libc::PTRACE_SETOPTIONS, pid, 0, opts) } != 0 {
            return Err(os_err("PTRACE_SETOPTIONS"));
        }
        stub.unregister_rseq()?;
        // Root may install a filter without no_new_privs; where the host
        // refuses, every fault takes the two stops of before.
        let r = stub.syscall(
            libc::SYS_seccomp,
            [
                libc::SECCOMP_SET_MODE_FILTER as u64,
                0,
                &filter as *const libc::sock_fprog as u64,
                0,
                0,
                0,
            ],
        )?;
        stub.seccomp = r == 0;
        stub.open_window()?;
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))?;
        for l in maps.lines() {
            let mut it = l.split_whitespace();
            let range = it.next().unwrap_or("");
            let name = it.nth(4).unwrap_or("");
            let Some((a, b)) = range.split_once('-') else {
                continue;
            };
            let (Ok(a), Ok(b)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) else {
                continue;
            };
            if VDSO_NAMES.contains(&name) && b <= TASK_SIZE {
                stub.vdso.push((name.to_string(), a, b - a));
            }
        }
        stub.unmap_all()?;
        Ok(stub)
    }

    /// Unmaps everything but the trampoline and the host's vDSO and its
    /// data pages (kept to be moved where lmm's maps put them); the pages
    /// below the trampoline hold nothing. At the start and at each exec.
    pub fn unmap_all(&mut self) -> io::Result<()> {
        let mut keep: Vec<(u64, u64)> = self.vdso.iter().map(|v| (v.1, v.1 + v.2)).collect();
        keep.sort_unstable();
        let mut at = WINDOW + 4096;
        for (a, b) in keep.into_iter().chain([(TASK_SIZE, TASK_SIZE)]) {
            if a > at {
                let r = self.syscall(libc::SYS_munmap, [at, a - at, 0, 0, 0, 0])?;
                if r < 0 {
                    return Err(io::Error::other(format!(
                        "munmap in the stub: errno {}",
                        -r
                    )));
                }
            }
            at = at.max(b);
        }
        Ok(())
    }

    /// Forks the stub on the host (an injected clone(2) without an exit
    /// signal; the child is traced from birth by PTRACE_O_TRACECLONE,
    /// which reports such a child): the child inherits the
    /// stub's descriptors, signal dispositions, working directory and
    /// every mirror (MAP_SHARED: the same frames, which the caller makes
    /// agree with lmm's forked page tables). The child is stopped, its
    /// registers those of the injected call.
    pub fn fork(&mut self) -> io::Result<Stub> {
        // clone with no exit signal: the host sends the parent's stub no
        // SIGCHLD when the child's stub dies (lmm kills it at the child's
        // exit_group); the SIGCHLD the program gets is lmm's, with the
        // child's exit as Linux reports it. (The host reports the child
        // as a PTRACE_EVENT_CLONE.)
        let child = self.syscall(libc::SYS_clone, [0; 6])?;
        if child < 0 {
            return Err(io::Error::other(format!(
                "fork in the stub: errno {}",
                -child
            )));
        }
        let child = child as libc::pid_t;
        let mut stub = Stub::new(child, child, self.vdso.clone(), self.seccomp);
        loop {
            match stub.wait()? {
                Stop::Signal(libc::SIGSTOP) => {
                    // The window it inherited is the parent's.
                    stub.open_window()?;
                    return Ok(stub);
                }
                Stop::Exited(_) | Stop::Killed(_) => {
                    return Err(io::Error::other("the forked stub died at birth"))
                }
                _ => stub.resume(libc::PTRACE_CONT, 0)?,
            }
        }
    }

    /// Makes a new host thread in the stub's thread group: an injected
    /// clone(2) with `flags` (which must hold CLONE_VM|CLONE_THREAD), the
    /// new stack `newsp`, `parent_tid`, `child_tid` and `tls` as the
    /// program passed them, so the host kernel keeps the thread's
    /// CLONE_CHILD_CLEARTID address and TLS base. The thread is traced
    /// from birth (PTRACE_O_TRACECLONE) and returned stopped, its
    /// registers those of the injected call (the caller sets them).
    pub fn clone_thread(
        &mut self,
        flags: u64,
        newsp: u64,
        parent_tid: u64,
        child_tid: u64,
        tls: u64,
    ) -> io::Result<Stub> {
        let tid = self.syscall(
            libc::SYS_clone,
            [flags, newsp, parent_tid, child_tid, tls, 0],
        )?;
        if tid < 0 {
            return Err(io::Error::other(format!(
                "clone of a thread in the stub: errno {}",
                -tid
            )));
        }
        // The threads of a group share the trampoline page, so one chain's
        // data could be overwritten by another's: a threaded process makes
        // its mirrors one injected call each.
        self.seccomp = false;
        // Where the vDSO is (the group's one address space), for a fork
        // this thread makes: its child's exec moves it from there.
        let mut stub = Stub::new(tid as libc::pid_t, self.tgid, self.vdso.clone(), false);
        loop {
            match stub.wait()? {
                Stop::Signal(libc::SIGSTOP) => return Ok(stub),
                Stop::Exited(_) | Stop::Killed(_) => {
                    return Err(io::Error::other("the cloned thread died at birth"))
                }
                _ => stub.resume(libc::PTRACE_CONT, 0)?,
            }
        }
    }

    /// Gives the stub a window of its own at [`WINDOW`] (replacing one it
    /// inherited): a one-page memfd made in the stub, mapped there
    /// read-only and in lmm writable, its descriptor closed again in the
    /// stub. Without one (the host refused a step) the stub runs no chain.
    fn open_window(&mut self) -> io::Result<()> {
        self.window = None;
        let fd = self.syscall(libc::SYS_memfd_create, [ZEROES, 0, 0, 0, 0, 0])?;
        if fd < 0 {
            return Ok(());
        }
        let mut window = None;
        if self.syscall(libc::SYS_ftruncate, [fd as u64, 4096, 0, 0, 0, 0])? == 0 {
            let flags = (libc::MAP_SHARED | libc::MAP_FIXED) as u64;
            let prot = libc::PROT_READ as u64;
            let at = self.syscall(libc::SYS_mmap, [WINDOW, 4096, prot, flags, fd as u64, 0])?;
            if at == WINDOW as i64 {
                window = File::options()
                    .read(true)
                    .write(true)
                    .open(format!("/proc/{}/fd/{fd}", self.pid))
                    .ok()
                    .and_then(|f| Window::map(&f).ok());
            }
        }
        self.syscall(libc::SYS_close, [fd as u64, 0, 0, 0, 0, 0])?;
        self.window = window;
        Ok(())
    }

    /// Moves the host's vDSO mappings to the addresses lmm's maps give
    /// them (`lmm` lists name, start and length), so that the program runs
    /// the host's vDSO code (a real clock) where lmm's /proc shows it.
    /// False (and the host's mappings unmapped) if the layouts differ or
    /// the kernel refuses a move: the program must then not use the vDSO.
    pub fn place_vdso(&mut self, lmm: &[(String, u64, u64)]) -> io::Result<bool> {
        let vdso = std::mem::take(&mut self.vdso);
        let fits = vdso.len() == lmm.len()
            && vdso
                .iter()
                .all(|(n, _, len)| lmm.iter().any(|(m, _, l)| m == n && l == len));
        let mut ok = fits;
        for (name, from, len) in &vdso {
            let to = lmm.iter().find(|(m, _, _)| m == name).map(|v| v.1);
            let moved = match (ok, to) {
                (true, Some(to)) if to == *from => true,
                (true, Some(to)) => {
                    let flags = (libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED) as u64;
                    self.syscall(libc::SYS_mremap, [*from, *len, *len, flags, to, 0])? == to as i64
                }
                _ => false,
            };
            if !moved {
                ok = false;
                self.syscall(libc::SYS_munmap, [*from, *len, 0, 0, 0, 0])?;
            }
        }
        if !ok {
            // Some may have moved before one failed: clear lmm's places.
            for (_, at, len) in lmm {
                self.syscall(libc::SYS_munmap, [*at, *len, 0, 0, 0, 0])?;
            }
        } else {
            // Where they are now, for the next exec's move.
            self.vdso = lmm.to_vec();
        }
        Ok(ok)
    }

    /// Unregisters the restartable-sequences area the child inherited from
    /// lmm's main thread (glibc registers one): it lies in lmm's memory,
    /// and the kernel would write it on the stub's next return to user
    /// space and kill the stub when that fails.
    fn unregister_rseq(&mut self) -> io::Result<()> {
        /// `struct ptrace_rseq_configuration`.
        #[repr(C)]
        #[derive(Default)]
        struct RseqConfig {
            pointer: u64,
            size: u32,
            signature: u32,
            flags: u32,
            pad: u32,
        }
        /// PTRACE_GET_RSEQ_CONFIGURATION (Linux 5.13).
        const PTRACE_GET_RSEQ_CONFIGURATION: libc::c_uint = 0x420f;
        /// RSEQ_FLAG_UNREGISTER.
        const RSEQ_FLAG_UNREGISTER: u64 = 1;
        let mut c = RseqConfig::default();
        // SAFETY: the request writes at most size_of::<RseqConfig>() bytes
        // (the size passed as `addr`) into `c`.
        let n = unsafe {
            libc::ptrace(
                PTRACE_GET_RSEQ_CONFIGURATION,
                self.pid,
                std::mem::size_of::<RseqConfig>(),
                &mut c as *mut RseqConfig,
            )
        };
        if n <= 0 || c.pointer == 0 {
            return Ok(());
        }
        let r = self.syscall(
            libc::SYS_rseq,
            [
                c.pointer,
                u64::from(c.size),
                RSEQ_FLAG_UNREGISTER,
                u64::from(c.signature),
                0,
                0,
            ],
        )?;
        if r < 0 {
            return Err(io::Error::other(format!(
                "unregistering rseq in the stub: errno {}",
                -r
            )));
        }
        Ok(())
    }

    /// Waits for the stub's next stop or its end.
    pub fn wait(&mut self) -> io::Result<Stop> {
        let status = wait_for(self.pid)?;
        Ok(self.decode(status))
    }

    /// What wait status `status` of this stub means (noting its end).
    /// A stop that may have come before a chain was through puts the
    /// program's registers back and makes the chain's calls (again: a
    /// MAP_FIXED mirror is the same made twice), so that lmm sees the
    /// program where the chain would have left it.
    pub fn decode(&mut self, status: i32) -> Stop {
        self.stops += 1;
        self.running = false;
        self.regs.set(None);
        self.kernel_regs.set(None);
        self.at_seccomp = false;
        let stop = if libc::WIFEXITED(status) {
            self.alive = false;
            self.end = Some(Stop::Exited(libc::WEXITSTATUS(status)));
            Stop::Exited(libc::WEXITSTATUS(status))
        } else if libc::WIFSIGNALED(status) {
            self.alive = false;
            self.end = Some(Stop::Killed(libc::WTERMSIG(status)));
            Stop::Killed(libc::WTERMSIG(status))
        } else if libc::WSTOPSIG(status) == libc::SIGTRAP | 0x80 {
            Stop::Syscall
        } else if status >> 16 == libc::PTRACE_EVENT_SECCOMP {
            self.at_seccomp = true;
            Stop::Syscall
        } else if status >> 16 != 0 {
            Stop::Event(status >> 16)
        } else {
            Stop::Signal(libc::WSTOPSIG(status))
        };
        match stop {
            // The program's own call or its end: the chain is through.
            Stop::Syscall | Stop::Exited(_) | Stop::Killed(_) => self.chain = None,
            _ => {
                if self.settle().is_err() {
                    // The registers cannot be read: the stub is gone.
                    self.kill();
                    return Stop::Killed(libc::SIGKILL);
                }
            }
        }
        stop
    }

    /// Finishes a chain the stub stopped in (see [`Stub::decode`]).
    fn settle(&mut self) -> io::Result<()> {
        let Some((saved, calls)) = self.chain.take() else {
            return Ok(());
        };
        let now = self.regs()?;
        if chain::inside(now.rip) {
            // A signal's stop keeps its siginfo across the calls.
            let info = self.siginfo().ok();
            let mut back = saved;
            // The emulated call that preceded the chain is over.
            back.orig_rax = u64::MAX;
            self.set_regs(&back)?;
            for c in calls {
                self.call_now(c)?;
            }
            if let Some(si) = info {
                self.set_siginfo(&si)?;
            }
        }
        Ok(())
    }

    /// True until the stub has exited or been killed and reaped.
    pub fn alive(&self) -> bool {
        self.alive
    }

    /// True if the stub, which lmm believed stopped, is no longer in a
    /// ptrace stop: a thread of its group was killed by a signal (or the
    /// group's exit), and SIGKILL took every thread out of its stop on its
    /// way to its end, which a later wait reports. It then counts as
    /// running, so that lmm waits for that end.
    pub fn vanished(&mut self) -> bool {
        // SAFETY: PTRACE_PEEKUSER reads one word of the tracee's user area;
        // errno tells whether the tracee is in a stop.
        let gone = unsafe {
            *libc::__errno_location() = 0;
            libc::ptrace(libc::PTRACE_PEEKUSER, self.pid, 0, 0);
            *libc::__errno_location() == libc::ESRCH
        };
        if gone && self.alive {
            self.running = true;
        }
        gone
    }

    /// How the stub ended, if a wait reaped it since the last call: for a
    /// stub that died while lmm waited for something else of it (an
    /// injected call), whose end must still be served.
    pub fn take_end(&mut self) -> Option<Stop> {
        self.end.take()
    }

    /// True if the stub was resumed and lmm has not yet waited for its
    /// next stop: it may be touching its mirrors right now.
    pub fn running(&self) -> bool {
        self.alive && self.running
    }

    /// Stops a running stub and waits until it is stopped: sends it
    /// SIGSTOP and waits for its next stop, which is returned as a raw
    /// wait status for [`Stub::decode`] later (it may be a stop that was
    /// on its way already, the SIGSTOP then still pending). Stubs are
    /// attached with PTRACE_TRACEME, so PTRACE_INTERRUPT (which needs
    /// PTRACE_SEIZE) is not available; SIGSTOP has the same effect here.
    /// The SIGSTOP is sent to this thread alone (tgkill): a thread blocked
    /// in a host call (a futex wait) leaves it with -ERESTARTSYS, which
    /// the caller turns back into the program's call.
    pub fn interrupt(&mut self) -> io::Result<i32> {
        // SAFETY: a signal to one thread of our own traced child.
        unsafe { libc::syscall(libc::SYS_tgkill, self.tgid, self.pid, libc::SIGSTOP) };
        let status = wait_for(self.pid)?;
        self.running = false;
        Ok(status)
    }

    /// Resumes the stub with `request` (PTRACE_SYSEMU, PTRACE_CONT),
    /// delivering signal `sig` (0: none). Queued calls are made first: on
    /// the way back into the program by a chain when it simply goes on
    /// (PTRACE_SYSEMU, no signal), else one injected call each.
    pub fn resume(&mut self, request: libc::c_uint, sig: i32) -> io::Result<()> {
        self.resume_info(request, sig, None)
    }

    /// [`Stub::resume`] delivering `sig` with `info`, its siginfo as the
    /// stop that brought it gave it (the kernel would make an SI_USER one
    /// from the tracer for a signal that is not the current stop's own,
    /// as after a call lmm ran in the stub: its stop is the trampoline's
    /// SIGTRAP).
    pub fn resume_info(
        &mut self,
        request: libc::c_uint,
        sig: i32,
        info: Option<libc::siginfo_t>,
    ) -> io::Result<()> {
        // Under the seccomp filter every call of the program stops for
        // lmm anyway, and one stopped there can be run where it stands
        // ([`Stub::run_in_place`]), which a PTRACE_SYSEMU stop cannot.
        let sysemu = request == libc::PTRACE_SYSEMU;
        let request = if sysemu && self.seccomp {
            libc::PTRACE_CONT
        } else {
            request
        };
        if !self.pending.is_empty() {
            if sysemu
                && sig == 0
                && self.seccomp
                && self.window.is_some()
                && self.pending.len() <= chain::MAX_CALLS
            {
                return self.run_chain();
            }
            self.flush()?;
        }
        if let Some(si) = info.filter(|si| sig != 0 && si.si_signo == sig) {
            self.set_siginfo(&si)?;
        }
        if self.at_seccomp {
            // Setting the registers skips the call the program made.
            let r = self.regs()?;
            self.set_regs(&r)?;
        }
        self.go(request, sig)
    }

    /// Lets the program's system call, stopped at the seccomp filter, run
    /// in the host where it stands: one stop for the call, where running
    /// it through the trampoline takes a second one (at its `int3`) to put
    /// the program's registers back. Only with nothing queued (a mirror
    /// the call may need must be made first) and the registers as the
    /// kernel has them; false (nothing done) otherwise. The call's result
    /// goes to the program unseen by lmm.
    pub fn run_in_place(&mut self) -> io::Result<bool> {
        let untouched = match (self.regs.get(), self.kernel_regs.get()) {
            (Some(r), Some(k)) => reg_words(&r) == reg_words(&k),
            _ => false,
        };
        if !self.at_seccomp || !self.pending.is_empty() || !untouched {
            return Ok(false);
        }
        self.at_seccomp = false;
        self.go(libc::PTRACE_CONT, 0)?;
        Ok(true)
    }

    /// The resume itself, the registers lmm set written back first.
    fn go(&mut self, request: libc::c_uint, sig: i32) -> io::Result<()> {
        self.write_regs()?;
        self.regs.set(None);
        self.kernel_regs.set(None);
        // SAFETY: a resume request on our stopped tracee.
        if unsafe { libc::ptrace(request, self.pid, 0, sig as libc::c_long) } != 0 {
            return Err(os_err("ptrace resume"));
        }
        self.running = true;
        Ok(())
    }

    /// Lets the stub run the queued calls by a chain back to the program
    /// ([`crate::chain`]): under PTRACE_CONT, its system calls stopping
    /// at the seccomp filter.
    fn run_chain(&mut self) -> io::Result<()> {
        let calls = std::mem::take(&mut self.pending);
        let regs = restarted(self.regs()?);
        if let Some(w) = &self.window {
            w.write(&chain::data(&calls, &regs));
        }
        let mut r = regs;
        r.rip = chain::entry(calls.len());
        self.set_regs(&r)?;
        self.injected += calls.len() as u64;
        self.chain = Some((regs, calls));
        self.go(libc::PTRACE_CONT, 0)
    }

    /// Queues system call `nr` with `args`, made before the stub next
    /// runs (by [`Stub::resume`], or before any call run now), its result
    /// unseen: for a mirror, which cannot fail but on a bug. Without the
    /// seccomp filter it is made at once. Returns 0 or the call's result.
    pub fn queue_syscall(&mut self, nr: i64, args: [u64; 6]) -> io::Result<i64> {
        if !self.seccomp {
            return self.syscall(nr, args);
        }
        let mut c = [nr as u64; 7];
        c[1..].copy_from_slice(&args);
        self.pending.push(c);
        Ok(0)
    }

    /// Makes the queued calls now, one injected call each.
    fn flush(&mut self) -> io::Result<()> {
        for c in std::mem::take(&mut self.pending) {
            self.call_now(c)?;
        }
        Ok(())
    }

    /// Makes queued call `c` now; an error if it fails.
    fn call_now(&mut self, c: [u64; 7]) -> io::Result<()> {
        let mut args = [0u64; 6];
        args.copy_from_slice(&c[1..]);
        let r = self.run_syscall(c[0] as i64, args)?;
        if r < 0 {
            return Err(io::Error::other(format!(
                "system call {} in the stub at {:#x}: errno {}",
                c[0], c[1], -r
            )));
        }
        Ok(())
    }

    /// The stub's registers.
    pub fn regs(&self) -> io::Result<Regs> {
        if let Some(r) = self.regs.get() {
            return Ok(r);
        }
        // SAFETY: user_regs_struct is plain integers; all zeroes is valid.
        let mut r: Regs = unsafe { std::mem::zeroed() };
        // SAFETY: PTRACE_GETREGS writes one user_regs_struct into `r`.
        if unsafe { libc::ptrace(libc::PTRACE_GETREGS, self.pid, 0, &mut r as *mut Regs) } != 0 {
            return Err(os_err("PTRACE_GETREGS"));
        }
        self.regs.set(Some(r));
        self.kernel_regs.set(Some(r));
        Ok(r)
    }

    /// Sets the stub's registers, as the stub will have them when resumed
    /// (they are written then, once however often they were set). At a
    /// seccomp stop the program's call is skipped (`orig_rax` -1), as
    /// PTRACE_SYSEMU skips it.
    pub fn set_regs(&mut self, r: &Regs) -> io::Result<()> {
        let mut r = *r;
        if self.at_seccomp {
            r.orig_rax = u64::MAX;
            self.at_seccomp = false;
        }
        self.regs.set(Some(r));
        Ok(())
    }

    /// Writes the registers [`Stub::set_regs`] changed into the stopped
    /// stub: a word or two (a fault's chain changes only `rip`) with one
    /// PTRACE_POKEUSER each, more with one PTRACE_SETREGS.
    fn write_regs(&mut self) -> io::Result<()> {
        let Some(want) = self.regs.get() else {
            return Ok(());
        };
        let changed: Vec<usize> = match self.kernel_regs.get() {
            Some(had) => {
                let (w, h) = (reg_words(&want), reg_words(&had));
                (0..REG_WORDS).filter(|&i| w[i] != h[i]).collect()
            }
            None => (0..REG_WORDS).collect(),
        };
        if changed.len() <= 2 {
            let w = reg_words(&want);
            for i in changed {
                // SAFETY: PTRACE_POKEUSER writes one word of the stopped
                // tracee's user_regs_struct, at a word-aligned offset in it.
                if unsafe { libc::ptrace(libc::PTRACE_POKEUSER, self.pid, i * 8, w[i]) } != 0 {
                    self.regs.set(None);
                    return Err(os_err("PTRACE_POKEUSER"));
                }
            }
        // SAFETY: PTRACE_SETREGS reads one user_regs_struct from `want`.
        } else if unsafe { libc::ptrace(libc::PTRACE_SETREGS, self.pid, 0, &want as *const Regs) }
            != 0
        {
            self.regs.set(None);
            return Err(os_err("PTRACE_SETREGS"));
        }
        self.kernel_regs.set(Some(want));
        Ok(())
    }

    /// The siginfo of the current signal-delivery stop.
    pub fn siginfo(&self) -> io::Result<libc::siginfo_t> {
        // SAFETY: siginfo_t is plain data; all zeroes is valid.
        let mut si: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: PTRACE_GETSIGINFO writes one siginfo_t into `si`.
        let r = unsafe {
            libc::ptrace(
                libc::PTRACE_GETSIGINFO,
                self.pid,
                0,
                &mut si as *mut libc::siginfo_t,
            )
        };
        if r != 0 {
            return Err(os_err("PTRACE_GETSIGINFO"));
        }
        Ok(si)
    }

    /// Makes `si` the siginfo of the current signal-delivery stop, so that
    /// the signal lmm resumes the thread with is delivered with it (the
    /// kernel makes an SI_USER one from the tracer for a signal that is
    /// not the stop's own: after lmm ran a call in the thread, the stop
    /// is the trampoline's SIGTRAP).
    pub fn set_siginfo(&self, si: &libc::siginfo_t) -> io::Result<()> {
        // SAFETY: PTRACE_SETSIGINFO reads one siginfo_t from `si`.
        let r = unsafe {
            libc::ptrace(
                libc::PTRACE_SETSIGINFO,
                self.pid,
                0,
                si as *const libc::siginfo_t,
            )
        };
        if r != 0 {
            return Err(os_err("PTRACE_SETSIGINFO"));
        }
        Ok(())
    }

    /// Reads up to `buf.len()` bytes of the stub's memory at `va`; returns
    /// how many could be read (0 if `va` is not mapped in the stub).
    pub fn read_mem(&self, va: u64, buf: &mut [u8]) -> usize {
        let local = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let remote = libc::iovec {
            iov_base: va as *mut libc::c_void,
            iov_len: buf.len(),
        };
        // SAFETY: `local` covers `buf`, which we own mutably; the remote
        // side is the stub's memory, which the kernel checks.
        let n = unsafe { libc::process_vm_readv(self.pid, &local, 1, &remote, 1, 0) };
        usize::try_from(n).unwrap_or(0)
    }

    /// Runs system call `nr` with `args` in the stub through the trampoline
    /// and returns its raw result (negative: -errno). The registers are
    /// restored after. Signals that arrive meanwhile are queued again
    /// after it.
    pub fn syscall(&mut self, nr: i64, args: [u64; 6]) -> io::Result<i64> {
        self.flush()?;
        self.run_syscall(nr, args)
    }

    /// [`Stub::syscall`] without making the queued calls first.
    fn run_syscall(&mut self, nr: i64, args: [u64; 6]) -> io::Result<i64> {
        self.settle()?;
        let saved = self.start_call(nr, args)?;
        let mut held = Vec::new();
        loop {
            match self.wait()? {
                Stop::Signal(libc::SIGTRAP) => break,
                // The fork or clone lmm injected: the child is taken by
                // Stub::fork or Stub::clone_thread.
                Stop::Event(_) => self.resume(libc::PTRACE_CONT, 0)?,
                Stop::Signal(sig) => {
                    // A signal from outside (SIGINT, SIGCHLD): held, so
                    // that no handler runs outside PTRACE_SYSEMU.
                    held.push(self.held(sig));
                    self.resume(libc::PTRACE_CONT, 0)?;
                }
                other => {
                    return Err(io::Error::other(format!(
                        "the stub ended during an injected system call {nr}: {other:?}"
                    )))
                }
            }
        }
        let r = self.finish_syscall(saved);
        self.requeue_held(held);
        r
    }

    /// Runs rt_sigreturn for the stub, stopped at its call: the
    /// trampoline's `syscall` is single-stepped, so the kernel restores
    /// the registers from the signal frame at the stack pointer and the
    /// stub stops at the restored instruction. Signals that arrive
    /// meanwhile are queued again.
    pub fn sigreturn(&mut self) -> io::Result<()> {
        let mut r = self.regs()?;
        r.rip = TRAMPOLINE;
        r.rax = libc::SYS_rt_sigreturn as u64;
        self.set_regs(&r)?;
        self.resume(libc::PTRACE_SINGLESTEP, 0)?;
        let mut held = Vec::new();
        loop {
            match self.wait()? {
                // The first step only ends the system call lmm emulated.
                Stop::Signal(libc::SIGTRAP) if self.regs()?.rip == TRAMPOLINE => {
                    self.resume(libc::PTRACE_SINGLESTEP, 0)?;
                }
                Stop::Signal(libc::SIGTRAP) => break,
                Stop::Signal(sig) => {
                    held.push(self.held(sig));
                    self.resume(libc::PTRACE_SINGLESTEP, 0)?;
                }
                other => {
                    return Err(io::Error::other(format!(
                        "the stub ended in rt_sigreturn: {other:?}"
                    )))
                }
            }
        }
        self.requeue_held(held);
        Ok(())
    }

    /// Starts system call `nr` with `args` in the stub through the
    /// trampoline and lets it run; returns the registers to restore.
    /// The caller waits for the stub's SIGTRAP at the `int3` (the call may
    /// block in the host meanwhile) and calls [`Stub::finish_syscall`].
    pub fn start_syscall(&mut self, nr: i64, args: [u64; 6]) -> io::Result<Regs> {
        self.flush()?;
        self.settle()?;
        self.start_call(nr, args)
    }

    /// [`Stub::start_syscall`] itself.
    fn start_call(&mut self, nr: i64, args: [u64; 6]) -> io::Result<Regs> {
        self.injected += 1;
        let saved = self.regs()?;
        let mut r = saved;
        r.rip = TRAMPOLINE;
        r.rax = nr as u64;
        // Not a call the kernel may restart on the way back (it would move
        // rip back from the trampoline): see [`restarted`].
        r.orig_rax = u64::MAX;
        r.rdi = args[0];
        r.rsi = args[1];
        r.rdx = args[2];
        r.r10 = args[3];
        r.r8 = args[4];
        r.r9 = args[5];
        self.set_regs(&r)?;
        self.resume(libc::PTRACE_CONT, 0)?;
        Ok(saved)
    }

    /// Ends a call [`Stub::start_syscall`] began, the stub stopped at the
    /// trampoline's `int3`: restores `saved` and returns the call's raw
    /// result.
    pub fn finish_syscall(&mut self, saved: Regs) -> io::Result<i64> {
        let after = self.regs()?;
        // The call may have set the thread's segment bases (arch_prctl).
        let mut saved = saved;
        saved.fs_base = after.fs_base;
        saved.gs_base = after.gs_base;
        self.set_regs(&saved)?;
        let res = after.rax as i64;
        Ok(res)
    }

    /// Writes `bytes` into the stub's memory at `va` with PTRACE_POKEDATA,
    /// a word at a time (which ignores the page's protection, so it can
    /// write the read-only trampoline page); the bytes after `bytes` in
    /// the last word are kept.
    pub fn poke(&mut self, va: u64, bytes: &[u8]) -> io::Result<()> {
        for (i, chunk) in bytes.chunks(8).enumerate() {
            let at = va + 8 * i as u64;
            let mut word = [0u8; 8];
            if chunk.len() < 8 {
                let n = self.read_mem(at, &mut word);
                if n < 8 {
                    return Err(io::Error::other(format!("reading the stub at {at:#x}")));
                }
            }
            word[..chunk.len()].copy_from_slice(chunk);
            // SAFETY: PTRACE_POKEDATA on our stopped tracee writes one word
            // of its memory; no memory of ours is touched.
            let r = unsafe {
                libc::ptrace(
                    libc::PTRACE_POKEDATA,
                    self.pid,
                    at,
                    u64::from_le_bytes(word) as libc::c_long,
                )
            };
            if r != 0 {
                return Err(os_err("PTRACE_POKEDATA"));
            }
        }
        Ok(())
    }

    /// The signal of this signal-delivery stop, taken from the thread
    /// while lmm runs a call in it, with its siginfo if the host gives it.
    fn held(&self, sig: i32) -> Held {
        (sig, self.siginfo().ok().filter(|si| si.si_signo == sig))
    }

    /// Queues the signals [`Stub::held`] took to this thread again, each
    /// with its own siginfo (a POSIX timer's SI_TIMER, `si_timerid`,
    /// `si_overrun`, `si_value`) where the host lets another process
    /// queue it (rt_tgsigqueueinfo takes a negative `si_code` other than
    /// SI_TKILL); the others are sent again by [`Stub::requeue`].
    fn requeue_held(&self, held: Vec<Held>) {
        for (sig, si) in held {
            let queued = si.is_some_and(|si| {
                // SAFETY: a signal with a siginfo we own to one thread of
                // our own traced child; the kernel copies the siginfo.
                unsafe {
                    libc::syscall(
                        libc::SYS_rt_tgsigqueueinfo,
                        self.tgid,
                        self.pid,
                        sig,
                        &si as *const libc::siginfo_t,
                    ) == 0
                }
            });
            if !queued {
                if let Some(si) = si {
                    self.requeued.borrow_mut().push(si);
                }
                self.requeue(sig);
            }
        }
    }

    /// The siginfo a signal `Stub::requeue_held` sent again had when it
    /// was held, for its delivery stop, whose siginfo `si` is tgkill's
    /// (SI_TKILL from lmm's pid); `None` for any other stop.
    pub fn requeued_info(&self, si: &libc::siginfo_t) -> Option<libc::siginfo_t> {
        const SI_TKILL: i32 = -6;
        // SAFETY: si_pid is read from a SI_TKILL siginfo, whose union is
        // the _kill member.
        let from_lmm =
            si.si_code == SI_TKILL && unsafe { si.si_pid() } == std::process::id() as libc::pid_t;
        let mut q = self.requeued.borrow_mut();
        let at = q
            .iter()
            .position(|h| from_lmm && h.si_signo == si.si_signo)?;
        Some(q.remove(at))
    }

    /// Queues `sig`, which this thread took while lmm ran a call in it,
    /// to it again: to this thread alone (tgkill), as lmm's own SIGSTOP
    /// was sent, so that no other thread of the group takes it.
    pub fn requeue(&self, sig: i32) {
        // SAFETY: a signal to one thread of our own traced child.
        unsafe { libc::syscall(libc::SYS_tgkill, self.tgid, self.pid, sig) };
    }

    /// Kills the stub (its whole thread group: SIGKILL) and reaps this
    /// thread. A leader's death is reported only once the group's other
    /// threads are reaped, so a leader first reaps those (traced by lmm,
    /// they would otherwise wait for lmm forever); their stubs, if lmm
    /// still holds them, then find nothing left to reap.
    pub fn kill(&mut self) {
        if self.alive {
            // SAFETY: SIGKILL to our own child, then reaping it.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
            }
            if self.pid == self.tgid {
                let tids = std::fs::read_dir(format!("/proc/{}/task", self.pid));
                for t in tids.into_iter().flatten().flatten() {
                    let Some(tid) = t.file_name().to_str().and_then(|n| n.parse().ok()) else {
                        continue;
                    };
                    if tid == self.pid {
                        continue;
                    }
                    let mut status = 0;
                    // SAFETY: waitpid on a thread we trace, with a valid
                    // status pointer; an error (already reaped) is fine.
                    while unsafe { libc::waitpid(tid, &mut status, libc::__WALL) } == tid
                        && !libc::WIFEXITED(status)
                        && !libc::WIFSIGNALED(status)
                    {}
                }
            }
            while self.alive {
                if self.wait().is_err() {
                    break;
                }
            }
            self.alive = false;
        }
    }
}

/// A chain's window as lmm maps it: one page shared with the stub's
/// [`WINDOW`], written by lmm while the stub is stopped and read by the
/// chain after it is resumed (the resume, a system call, orders the two).
struct Window {
    /// lmm's mapping of the page.
    page: std::ptr::NonNull<u8>,
}

impl Window {
    /// Maps the first page of `file` (the stub's window memfd) shared and
    /// writable.
    fn map(file: &File) -> io::Result<Window> {
        use std::os::fd::AsRawFd;
        // SAFETY: a new shared mapping of one page of an open memfd, at an
        // address the kernel picks; nothing else in lmm refers to it.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(os_err("mmap of a stub's window"));
        }
        std::ptr::NonNull::new(p.cast())
            .map(|page| Window { page })
            .ok_or_else(|| io::Error::other("mmap of a stub's window gave NULL"))
    }

    /// Writes `bytes` at the start of the page.
    fn write(&self, bytes: &[u8]) {
        assert!(bytes.len() <= 4096, "a chain's data outgrew its window");
        // SAFETY: `bytes` fits in the page, which this Window maps
        // writable for its whole life; the stub only reads it.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.page.as_ptr(), bytes.len()) }
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        // SAFETY: unmaps the page `map` mapped, which no one uses after.
        unsafe {
            libc::munmap(self.page.as_ptr().cast(), 4096);
        }
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.kill();
    }
}
