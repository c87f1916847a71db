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
//!
//! - The vDSO is the host's, moved in the stub to where lmm's maps show it.
//!
//! - /proc files lmm renders are lmm's ([`procfs`]).
//!
//! Not yet: fork, threads, execve. See docs/native.md.

pub mod fault;
mod mirror;
pub mod procfs;
pub mod ptrace;
pub mod syscalls;

use std::collections::BTreeMap;
use std::os::fd::AsRawFd;

use machine::mmu::Access;
use machine::process::{Faults, UserFault};
use machine::Machine;
use mm::types::VirtAddr;

use ptrace::{Stop, Stub, MEMFD_SLOT, TRAMPOLINE};
use syscalls::{Buf, Kind};

/// The lowest address lmm may mirror (above the trampoline page).
const MIRROR_FLOOR: u64 = TRAMPOLINE + 4096;
/// The end of the x86-64 (4-level) user address space.
const TASK_SIZE: u64 = 0x7fff_ffff_f000;
/// `AT_SYSINFO_EHDR` and `AT_IGNORE` (auxv types).
const AT_SYSINFO_EHDR: u64 = 33;
/// An auxv entry the program skips.
const AT_IGNORE: u64 = 1;
/// Faults in a row at one address and instruction before lmm gives up
/// (a mirror that does not take would otherwise loop forever).
const MAX_REPEATS: u32 = 16;
/// si_code of a SIGSEGV on a page mapped without the needed permission.
const SEGV_ACCERR: i32 = 2;
/// The largest mirror (a 1 GiB page).
const HUGEST: u64 = 1 << 30;

/// What to record of a run.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Files of the process, as lmm renders them when the program calls
    /// exit_group (or is killed): `maps`, `smaps`, `status`.
    pub at_exit: Vec<(String, std::path::PathBuf)>,
    /// Where to write the stub's host /proc/PID/maps just before the
    /// program's first instruction (what the host has mapped in it).
    pub host_maps_at_start: Option<std::path::PathBuf>,
    /// Read the program, its ELF interpreter and every file it maps into
    /// lmm's page cache before their first use, as the host's cache is
    /// warm for a program that has run before (no major faults; fault-around
    /// maps cached neighbours as Linux's does).
    pub warm_cache: bool,
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
    /// them for a new process.
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

/// A run in progress.
struct Run<'a> {
    m: &'a mut Machine,
    stub: Stub,
    pid: u32,
    /// What the stub has mapped, by start address.
    mirrored: BTreeMap<u64, Mirror>,
    /// Pages reclaimed on the machine when the mirrors were last checked.
    reclaimed: u64,
    /// System calls already warned about (by number).
    warned: std::collections::BTreeSet<u64>,
    /// [`Options::warm_cache`].
    warm_cache: bool,
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
    let stub = Stub::spawn(fd).map_err(|e| format!("lmm native: {e}"))?;
    if opts.warm_cache {
        warm(m, program);
        if let Some(interp) = elf_interpreter(program) {
            warm(m, &interp);
        }
    }
    let pid = m.spawn("lmm").map_err(|e| format!("spawn: {e}"))?;
    let r = m
        .exec(pid, program, argv, envp)
        .map_err(|e| format!("exec {program}: {e}"))?;
    let reclaimed = reclaimed_pages(m);
    let swap = (vmstat(m, "pswpin"), vmstat(m, "pswpout"));
    let mut run = Run {
        m,
        stub,
        pid,
        mirrored: BTreeMap::new(),
        reclaimed,
        warned: Default::default(),
        warm_cache: opts.warm_cache,
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
            fault_time: std::time::Duration::ZERO,
        },
    };
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
        .stub
        .place_vdso(&lmm_vdso)
        .map_err(|e| format!("lmm native: {e}"))?
    {
        run.hide_vdso(r.start_stack.0)?;
    }
    let io = |e: std::io::Error| format!("lmm native: {e}");
    let mut regs = run.stub.regs().map_err(io)?;
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
    run.stub.set_regs(&regs).map_err(io)?;
    if let Some(path) = &opts.host_maps_at_start {
        let maps = std::fs::read_to_string(format!("/proc/{}/maps", run.stub.pid))
            .map_err(|e| format!("/proc/{}/maps: {e}", run.stub.pid))?;
        std::fs::write(path, maps).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let ending = run.run_loop()?;
    run.finish(ending, opts)?;
    Ok(run.out)
}

/// Reads the host file `path` through the machine's page cache, 64 KiB
/// at a time (a file that cannot be opened is passed over).
fn warm(m: &mut Machine, path: &str) {
    let Ok(f) = machine::hostfs::HostFile::open(path) else {
        return;
    };
    let mut buf = vec![0u8; 64 << 10];
    let mut off = 0;
    while off < f.size() {
        match m
            .cache
            .read(&m.pa, mm::page_alloc::CpuId(0), &f, off, &mut buf)
        {
            Ok(n) if n > 0 => off += n as u64,
            _ => break,
        }
    }
}

/// The PT_INTERP path of the ELF64 file `path`, if it has one.
fn elf_interpreter(path: &str) -> Option<String> {
    let b = std::fs::read(path).ok()?;
    let u16_at = |o: usize| Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?));
    if b.get(..5)? != b"\x7fELF\x02" {
        return None;
    }
    let (phoff, phentsize, phnum) = (u64_at(0x20)? as usize, u16_at(0x36)?, u16_at(0x38)?);
    (0..phnum).find_map(|i| {
        let ph = phoff + usize::from(i) * usize::from(phentsize);
        let kind = u32::from_le_bytes(b.get(ph..ph + 4)?.try_into().ok()?);
        if kind != 3 {
            return None;
        }
        let (off, len) = (u64_at(ph + 8)? as usize, u64_at(ph + 32)? as usize);
        let s = b.get(off..off + len)?;
        Some(String::from_utf8_lossy(s.strip_suffix(b"\0").unwrap_or(s)).into_owned())
    })
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

/// Pages the machine's reclaim has taken so far (kswapd's and direct):
/// a change detector, read from the event counters directly since it runs
/// on every fault (rendering /proc/vmstat there cost a tenth of the run).
fn reclaimed_pages(m: &Machine) -> u64 {
    use mm::vmstat::VmEvent;
    [
        VmEvent::PgstealKswapd,
        VmEvent::PgstealDirect,
        VmEvent::PgstealKhugepaged,
        VmEvent::PgstealProactive,
        VmEvent::Pswpout,
    ]
    .into_iter()
    .map(|e| m.pa.events.get(e))
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
                .read_user(self.pid, va, 8)
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
                    .write_user(self.pid, at, &AT_IGNORE.to_le_bytes())
                    .map_err(|e| format!("hiding the vDSO: {e}"));
            }
            at += 16;
        }
    }

    /// Resumes the program until it ends.
    fn run_loop(&mut self) -> Result<Ending, String> {
        let io = |e: std::io::Error| format!("lmm native: {e}");
        let mut sig = 0;
        let mut last_fault = (0u64, 0u64, 0u32);
        loop {
            self.stub.resume(libc::PTRACE_SYSEMU, sig).map_err(io)?;
            sig = 0;
            match self.stub.wait().map_err(io)? {
                Stop::Exited(code) => return Ok(Ending::Exited(code)),
                Stop::Killed(s) => return Ok(Ending::Signaled(s)),
                Stop::Syscall => {
                    if let Some(end) = self.syscall()? {
                        return Ok(end);
                    }
                }
                Stop::Signal(s) if s == libc::SIGSEGV => {
                    let si = self.stub.siginfo().map_err(io)?;
                    // Kernel-made page faults only (SEGV_MAPERR, ACCERR, ...);
                    // sent signals and general-protection faults (SI_KERNEL)
                    // go to the program as they are.
                    if si.si_code <= 0 || si.si_code == 0x80 {
                        sig = s;
                        continue;
                    }
                    // SAFETY: a SIGSEGV siginfo from a fault carries si_addr.
                    let addr = unsafe { si.si_addr() } as u64;
                    let regs = self.stub.regs().map_err(io)?;
                    let key = (addr, regs.rip, last_fault.2 + 1);
                    last_fault = if (key.0, key.1) == (last_fault.0, last_fault.1) {
                        key
                    } else {
                        (addr, regs.rip, 0)
                    };
                    if last_fault.2 >= MAX_REPEATS {
                        return Err(format!(
                            "lmm native: the fault at {addr:#x} (rip {:#x}) keeps coming back",
                            regs.rip
                        ));
                    }
                    let accerr = si.si_code == SEGV_ACCERR;
                    let access = fault::access_type(&self.stub, &regs, addr, accerr);
                    sig = self.page_fault(addr, access)?;
                }
                Stop::Signal(s) => sig = s,
            }
        }
    }

    /// A page fault of the program at `addr`: lmm's MMU and fault handler
    /// resolve it and the page is mirrored; 0 to resume, or the signal
    /// the program gets.
    fn page_fault(&mut self, addr: u64, access: Access) -> Result<i32, String> {
        let before = self.faults();
        let t = std::time::Instant::now();
        let touched = self.m.touch(self.pid, addr, 1, access);
        self.out.fault_time += t.elapsed();
        match touched {
            Ok(()) => {
                if self.faults() == before {
                    self.out.spurious += 1;
                }
                self.check_reclaim()?;
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
        self.m.process(self.pid).map(|p| p.flt).unwrap_or_default()
    }

    /// Stops the run if the machine reclaimed pages since the last check
    /// and one of them is still mapped in the stub (the frame may hold
    /// something else now).
    fn check_reclaim(&mut self) -> Result<(), String> {
        let now = reclaimed_pages(self.m);
        if now == self.reclaimed {
            return Ok(());
        }
        self.reclaimed = now;
        let p = self
            .m
            .process(self.pid)
            .ok_or("lmm native: the process is gone")?;
        let stale: Vec<u64> = self
            .mirrored
            .iter()
            .filter(|(&va, mir)| {
                p.pt.lookup(VirtAddr(va))
                    .is_none_or(|(pte, _)| !pte.present() || pte.phys().0 != mir.phys)
            })
            .map(|(&va, _)| va)
            .collect();
        for va in stale {
            if let Some(mir) = self.mirrored.get(&va).copied() {
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
            .process(self.pid)
            .ok_or("lmm native: the process is gone")?;
        let Some((pte, level)) = p.pt.lookup(VirtAddr(va)) else {
            return Ok(());
        };
        if !pte.present() {
            return Ok(());
        }
        let span = p.pt.mode().span(level);
        let base = va & !(span - 1);
        let phys = pte.phys().0 & !(span - 1);
        let prot = mirror::prot_of(pte.writable(), pte.dirty(), pte.nx());
        let want = Mirror { phys, span, prot };
        if !force && self.mirrored.get(&base) == Some(&want) {
            return Ok(());
        }
        if base < MIRROR_FLOOR || base + span > TASK_SIZE {
            return Ok(());
        }
        // map_run forgets the mirrors this one replaces (huge or small).
        self.map_run(base, span, phys, prot)?;
        self.mirrored.insert(base, want);
        Ok(())
    }

    /// Unmaps `[va, va + len)` (rounded out to pages, and to whole mirrors)
    /// from the stub: its entries changed in lmm and fault back in.
    fn unmirror(&mut self, va: u64, len: u64) -> Result<(), String> {
        let mut start = (va & !4095).max(MIRROR_FLOOR);
        let mut end = va.saturating_add(len).saturating_add(4095) & !4095;
        end = end.min(TASK_SIZE);
        if start >= end {
            return Ok(());
        }
        let hit: Vec<(u64, Mirror)> = self
            .mirrored
            .range(start.saturating_sub(HUGEST)..end)
            .filter(|(&s, mir)| s + mir.span > start)
            .map(|(&s, &mir)| (s, mir))
            .collect();
        for (s, mir) in hit {
            self.mirrored.remove(&s);
            start = start.min(s);
            end = end.max(s + mir.span);
        }
        let r = self
            .stub
            .syscall(libc::SYS_munmap, [start, end - start, 0, 0, 0, 0])
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
            if self.m.touch(self.pid, at, 1, access).is_err() {
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
        for b in bufs {
            let ok = match *b {
                Buf::Bytes { va, len, access } => self.fault_in(va, len, access)?,
                Buf::Str { va } => self.fault_in_str(va)?,
                Buf::Iovec { va, count, access } => {
                    if count > 1024 {
                        continue;
                    }
                    if !self.fault_in(va, count * 16, Access::Read)? {
                        return Ok(false);
                    }
                    let Ok(raw) = self.m.read_user(self.pid, va, (count * 16) as usize) else {
                        return Ok(false);
                    };
                    for iov in raw.chunks_exact(16) {
                        let base = u64::from_le_bytes(iov[..8].try_into().unwrap_or([0; 8]));
                        let len = u64::from_le_bytes(iov[8..].try_into().unwrap_or([0; 8]));
                        if !self.fault_in(base, len, access)? {
                            return Ok(false);
                        }
                    }
                    true
                }
            };
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// A read of a regular file writes at most the bytes left before its
    /// end: only those pages are faulted in, as Linux's copy_to_user
    /// faults only what it writes (a read into a 128 KiB buffer of a 4 KiB
    /// file touches one page). Pipes and terminals keep the whole buffer.
    fn clip_read(&self, nr: u64, a: [u64; 6], bufs: Vec<Buf>) -> Vec<Buf> {
        if nr != 0 && nr != 17 {
            return bufs;
        }
        let stub = self.stub.pid;
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
            let Ok(bytes) = self.m.read_user(self.pid, at, chunk as usize) else {
                return Ok(false);
            };
            if bytes.contains(&0) {
                return Ok(true);
            }
            at += chunk;
        }
        Ok(true)
    }

    /// A system-call stop: runs the call and sets its result; `Some` if the
    /// program ended.
    fn syscall(&mut self) -> Result<Option<Ending>, String> {
        let io = |e: std::io::Error| format!("lmm native: {e}");
        let regs = self.stub.regs().map_err(io)?;
        let nr = regs.orig_rax;
        let a = [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9];
        *self.out.syscalls.entry(syscalls::name(nr)).or_default() += 1;
        let kind = syscalls::classify(nr, a);
        *self
            .out
            .kinds
            .entry(match kind {
                Kind::Host(_) => "host",
                Kind::Refused(_) | Kind::Quiet | Kind::NoTty => "refused",
                Kind::Memory | Kind::Exit | Kind::Wait => "lmm",
            })
            .or_default() += 1;
        let ret: i64 = match kind {
            Kind::Exit => return Ok(Some(Ending::Exited((a[0] & 0xff) as i32))),
            Kind::Memory => self.memory(nr, a)?,
            Kind::Wait => -i64::from(libc::ECHILD),
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
                } else if let Some(r) = self.proc_call(nr, a)? {
                    r
                } else {
                    self.stub.syscall(nr as i64, a).map_err(io)?
                }
            }
        };
        // Re-read: the call may have changed the segment bases.
        let mut regs = self.stub.regs().map_err(io)?;
        regs.rax = ret as u64;
        self.stub.set_regs(&regs).map_err(io)?;
        Ok(None)
    }

    /// A memory system call on lmm's mm, and its effect on the stub.
    fn memory(&mut self, nr: u64, a: [u64; 6]) -> Result<i64, String> {
        let pid = self.pid;
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
                let old = self.m.process(pid).map_or(0, |p| p.mm.brk);
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
            26 => self.m.sys_msync(pid, a[0], a[1], a[2] as u32),
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
    /// Err: the negative errno the mmap returns (EBADF, EACCES as mmap(2)
    /// checks them; ENODEV for a shared writable mapping of a host file,
    /// which lmm's read-only host files cannot back yet).
    fn host_file(
        &mut self,
        fd: i32,
        prot: u64,
        flags: u64,
    ) -> Result<Option<mm::file::FileRef>, i64> {
        let ebadf = -i64::from(libc::EBADF);
        if fd < 0 || fd == MEMFD_SLOT {
            return Err(ebadf);
        }
        let stub = self.stub.pid;
        let path = std::fs::read_link(format!("/proc/{stub}/fd/{fd}")).map_err(|_| ebadf)?;
        let info =
            std::fs::read_to_string(format!("/proc/{stub}/fdinfo/{fd}")).map_err(|_| ebadf)?;
        let open_flags = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
            .unwrap_or(0);
        if open_flags & 3 == libc::O_WRONLY as u32 {
            return Err(-i64::from(libc::EACCES));
        }
        let path = path.to_string_lossy().into_owned();
        if path == "/dev/zero" {
            return Ok(None);
        }
        let shared = flags & 3 != libc::MAP_PRIVATE as u64;
        if shared && prot & libc::PROT_WRITE as u64 != 0 {
            if self.warned.insert(u64::MAX) {
                eprintln!(
                    "lmm native: a shared writable mapping of a host file is not supported \
                     yet: the program gets ENODEV"
                );
            }
            return Err(-i64::from(libc::ENODEV));
        }
        if self.warm_cache {
            warm(self.m, &path);
        }
        machine::hostfs::HostFile::open(&path)
            .map(Some)
            .map_err(|e| -i64::from(e.code()))
    }

    /// The end of the run: records the files at exit, the faults and peak
    /// RSS, tears the process down in lmm and kills the stub.
    fn finish(&mut self, ending: Ending, opts: &Options) -> Result<(), String> {
        for (file, path) in &opts.at_exit {
            let text = self.m.proc_pid(self.pid, file)?;
            std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        if let Some(p) = self.m.process(self.pid) {
            self.out.faults = p.flt;
            self.out.peak_rss_kb = p.mm.hiwater_rss().max(p.mm.rss_pages()) * 4;
        }
        self.out.ending = ending;
        self.out.swap = (
            vmstat(self.m, "pswpin") - self.out.swap.0,
            vmstat(self.m, "pswpout") - self.out.swap.1,
        );
        let code = match ending {
            Ending::Exited(c) => c,
            Ending::Signaled(s) => 128 + s,
        };
        self.m
            .exit_code(self.pid, code)
            .map_err(|e| format!("exit: {e}"))?;
        self.stub.kill();
        self.out.stops = self.stub.stops;
        self.out.injected = self.stub.injected;
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
            "ptrace stops: {} ({} injected system calls, {} mirrors)\n",
            self.stops, self.injected, self.mirrors
        );
        let kinds: Vec<String> = self.kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
        s += &format!("system calls: {}\n", kinds.join(", "));
        for (name, n) in &self.syscalls {
            s += &format!("  {name} {n}\n");
        }
        s
    }
}
