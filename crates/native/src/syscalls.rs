//! The x86-64 system-call table of `lmm native`: which calls lmm runs
//! itself (memory, exit, wait, fork, exec, pids), which it refuses, and, for the calls passed
//! to the host kernel in the stub, the user buffers each one touches (its
//! pointer arguments), so that lmm can fault them in first: the host then
//! never sees EFAULT where Linux would not give it, and the faults are
//! lmm's, counted as Linux counts faults taken by `copy_{from,to}_user`.

use machine::mmu::Access;

/// A user buffer a system call reads or writes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Buf {
    /// `len` bytes at `va`, read (`Access::Read`) or written.
    Bytes { va: u64, len: u64, access: Access },
    /// A NUL-terminated string at `va` (a path), read.
    Str { va: u64 },
    /// An array of `count` `struct iovec` at `va`, each buffer read or
    /// written as `access` says.
    Iovec { va: u64, count: u64, access: Access },
}

/// What lmm does with a system call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A memory system call lmm's mm runs.
    Memory,
    /// exit (one thread; the process if it is the last) or exit_group.
    Exit,
    /// wait4, waitid: lmm's process table.
    Wait,
    /// fork, vfork, clone: lmm's fork, or a new thread (CLONE_THREAD).
    Fork,
    /// execve, execveat: lmm's exec on the same process.
    Exec,
    /// getpid, gettid, getppid: lmm's pids, not the stub's.
    Pid,
    /// Not supported yet: the program gets ENOSYS and lmm says why on
    /// stderr once.
    Refused(&'static str),
    /// ENOSYS without a word: glibc falls back quietly (rseq).
    Quiet,
    /// Run by the host kernel in the stub after these buffers are present.
    Host(Vec<Buf>),
    /// A request lmm does not know the buffers of (an ioctl): ENOTTY.
    NoTty,
}

/// Bytes of `struct stat` on x86-64.
const STAT: u64 = 144;

/// Reads a buffer only if its pointer is not NULL.
fn opt(va: u64, len: u64, access: Access) -> Vec<Buf> {
    if va == 0 || len == 0 {
        Vec::new()
    } else {
        vec![Buf::Bytes { va, len, access }]
    }
}

/// The buffers of futex(uaddr, op, val, timeout, uaddr2, val3) by its
/// command (FUTEX_PRIVATE_FLAG and FUTEX_CLOCK_REALTIME aside): the word
/// (written by the PI commands' compare-and-exchange; a shared futex's key
/// is looked up on the page even for a wake), the `struct timespec`
/// timeout of the waiting ones, and the second word of the requeue and
/// wake-op ones (written by FUTEX_WAKE_OP and the PI requeues). A waiter
/// lmm stops, before work that can reclaim, makes its call anew, and the
/// words are faulted in again.
fn futex(a: [u64; 6]) -> Vec<Buf> {
    use Access::{Read as R, Write as W};
    /// FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME.
    const MODIFIERS: u64 = 128 | 256;
    /// struct __kernel_timespec.
    const TIMESPEC: u64 = 16;
    let cmd = a[1] & !MODIFIERS;
    let word = match cmd {
        // LOCK_PI, UNLOCK_PI, TRYLOCK_PI, LOCK_PI2
        6 | 7 | 8 | 13 => W,
        _ => R,
    };
    let timeout = match cmd {
        // WAIT, LOCK_PI, WAIT_BITSET, WAIT_REQUEUE_PI, LOCK_PI2
        0 | 6 | 9 | 11 | 13 => opt(a[3], TIMESPEC, R),
        _ => Vec::new(),
    };
    let second = match cmd {
        // REQUEUE, CMP_REQUEUE
        3 | 4 => opt(a[4], 4, R),
        // WAKE_OP, WAIT_REQUEUE_PI, CMP_REQUEUE_PI
        5 | 11 | 12 => opt(a[4], 4, W),
        _ => Vec::new(),
    };
    [opt(a[0], 4, word), timeout, second].concat()
}

/// True for a host call lmm must see end (so it runs through the
/// trampoline, not in place): set_tid_address, whose result is lmm's tid,
/// and the calls the host may end with -ERESTART_RESTARTBLOCK, whose
/// restart (restart_syscall) lmm serves with the interrupted call's
/// buffers (nanosleep, clock_nanosleep, futex, poll, ppoll, select,
/// pselect6, epoll_wait, epoll_pwait, epoll_pwait2, and restart_syscall
/// itself).
pub fn needs_result(nr: u64) -> bool {
    matches!(
        nr,
        218 | 35 | 230 | 202 | 7 | 271 | 23 | 270 | 232 | 281 | 441 | 219
    )
}

/// Classifies system call `nr` with arguments `a`.
pub fn classify(nr: u64, a: [u64; 6]) -> Kind {
    use Access::{Read as R, Write as W};
    let bytes = |va, len, access| Buf::Bytes { va, len, access };
    let s = |va| Buf::Str { va };
    let host = Kind::Host;
    match nr {
        // read, pread64 / write, pwrite64
        0 | 17 => host(opt(a[1], a[2], W)),
        1 | 18 => host(opt(a[1], a[2], R)),
        // open(path, ...), access, unlink, mkdir, rmdir, chdir
        2 | 21 | 87 | 83 | 84 | 80 => host(vec![s(a[0])]),
        // close, lseek, dup, dup2, dup3, fsync, fdatasync, ftruncate, fchdir
        3 | 8 | 32 | 33 | 292 | 74 | 75 | 77 | 81 => host(Vec::new()),
        // stat, lstat (path, statbuf)
        4 | 6 => host(vec![s(a[0]), bytes(a[1], STAT, W)]),
        5 => host(vec![bytes(a[1], STAT, W)]),
        // mmap, mprotect, munmap, brk, mremap, msync, mincore, madvise,
        // mlock, munlock, mlockall, munlockall, mlock2
        9 | 10 | 11 | 12 | 25 | 26 | 27 | 28 | 149 | 150 | 151 | 152 | 325 => Kind::Memory,
        // rt_sigaction(sig, act, oact, size): struct sigaction is 32 bytes
        13 => host([opt(a[1], 32, R), opt(a[2], 32, W)].concat()),
        // rt_sigprocmask(how, set, oset, size)
        14 => host([opt(a[1], a[3], R), opt(a[2], a[3], W)].concat()),
        // rt_sigreturn: the frame at rsp is on the (present) stack
        15 => host(Vec::new()),
        16 => match a[1] {
            // TCGETS: struct termios (36 bytes); TIOCGWINSZ: struct winsize
            0x5401 => host(opt(a[2], 36, W)),
            0x5413 => host(opt(a[2], 8, W)),
            _ => Kind::NoTty,
        },
        // readv, preadv / writev, pwritev
        19 | 295 => host(vec![Buf::Iovec {
            va: a[1],
            count: a[2],
            access: W,
        }]),
        20 | 296 => host(vec![Buf::Iovec {
            va: a[1],
            count: a[2],
            access: R,
        }]),
        // nanosleep(req, rem)
        35 => host([opt(a[0], 16, R), opt(a[1], 16, W)].concat()),
        // getuid, getgid, geteuid, getegid, getpgrp, setsid, sched_yield,
        // kill, tgkill, tkill, umask, pause (kill's pids are lmm's, turned
        // into the stubs' by the caller)
        102 | 104 | 107 | 108 | 111 | 112 | 24 | 62 | 234 | 200 | 95 | 34 => host(Vec::new()),
        39 | 110 | 186 => Kind::Pid,
        // pipe(fds)
        22 => host(opt(a[0], 8, W)),
        // fadvise64(fd, offset, len, advice): a hint about the host file
        221 => host(Vec::new()),
        // rt_sigsuspend(mask, size): waits in the host for a signal
        130 => host(opt(a[0], a[1], R)),
        // restart_syscall: a call a signal interrupted, made again by the
        // host from the stub's restart block
        219 => host(Vec::new()),
        56..=58 => Kind::Fork,
        // clone3: ENOSYS makes glibc fall back to clone, whose flags lmm
        // reads from registers
        435 => Kind::Quiet,
        59 | 322 => Kind::Exec,
        60 | 231 => Kind::Exit,
        61 | 247 => Kind::Wait,
        // uname(struct utsname: 6 * 65 bytes)
        63 => host(vec![bytes(a[0], 390, W)]),
        // fcntl: the lock commands take a struct flock
        72 => match a[1] {
            5..=7 | 36..=38 => host(vec![bytes(a[2], 32, W)]),
            _ => host(Vec::new()),
        },
        // getcwd(buf, size)
        79 => host(opt(a[0], a[1], W)),
        // readlink(path, buf, size)
        89 => host(vec![s(a[0]), bytes(a[1], a[2], W)]),
        // gettimeofday(tv, tz)
        96 => host([opt(a[0], 16, W), opt(a[1], 8, W)].concat()),
        // getrlimit(res, rlim)
        97 => host(opt(a[1], 16, W)),
        // getrusage(who, usage)
        98 => host(opt(a[1], 144, W)),
        // sysinfo(info)
        99 => host(opt(a[0], 112, W)),
        // sigaltstack(ss, old)
        131 => host([opt(a[0], 24, R), opt(a[1], 24, W)].concat()),
        // statfs(path, buf) / fstatfs(fd, buf)
        137 => host(vec![s(a[0]), bytes(a[1], 120, W)]),
        138 => host(opt(a[1], 120, W)),
        // arch_prctl: ARCH_GET_FS/GS write a u64; ARCH_CET_STATUS 3 u64s
        158 => match a[0] {
            0x1003 | 0x1004 => host(opt(a[1], 8, W)),
            0x3001 => host(opt(a[1], 24, W)),
            _ => host(Vec::new()),
        },
        // time(tloc)
        201 => host(opt(a[0], 8, W)),
        // futex(uaddr, op, val, timeout or val2, uaddr2, val3)
        202 => host(futex(a)),
        // sched_getaffinity(pid, len, mask): lmm answers it (lmm and its
        // stubs run pinned to one CPU) after the buffer is present
        204 => host(opt(a[2], a[1], W)),
        // getdents64(fd, buf, count)
        217 => host(opt(a[1], a[2], W)),
        // set_tid_address, set_robust_list: nothing is touched at the call
        218 | 273 => host(Vec::new()),
        // clock_gettime, clock_getres (clk, tp)
        228 | 229 => host(opt(a[1], 16, W)),
        // clock_nanosleep(clk, flags, req, rem)
        230 => host([opt(a[2], 16, R), opt(a[3], 16, W)].concat()),
        // openat(dirfd, path, ...), unlinkat, mkdirat, faccessat, faccessat2
        257 | 263 | 258 | 269 | 439 => host(vec![s(a[1])]),
        // newfstatat(dirfd, path, statbuf, flags)
        262 => host(vec![s(a[1]), bytes(a[2], STAT, W)]),
        // symlinkat(target, newdirfd, linkpath)
        266 => host(vec![s(a[0]), s(a[2])]),
        // readlinkat(dirfd, path, buf, size)
        267 => host(vec![s(a[1]), bytes(a[2], a[3], W)]),
        // pipe2(fds)
        293 => host(opt(a[0], 8, W)),
        // prlimit64(pid, res, new, old)
        302 => host([opt(a[2], 16, R), opt(a[3], 16, W)].concat()),
        // getrandom(buf, len, flags)
        318 => host(opt(a[0], a[1], W)),
        // statx(dirfd, path, flags, mask, buf)
        332 => host(vec![s(a[1]), bytes(a[4], 256, W)]),
        // getxattr, lgetxattr (path, name, value, size) / fgetxattr(fd, ...)
        191 | 192 => host(vec![s(a[0]), s(a[1]), bytes(a[2], a[3], W)]),
        193 => host(vec![s(a[1]), bytes(a[2], a[3], W)]),
        // socket(domain, type, protocol) / connect(fd, addr, len)
        41 => host(Vec::new()),
        42 => host(opt(a[1], a[2], R)),
        // prctl: PR_SET_NAME reads and PR_GET_NAME writes a 16-byte name;
        // the other options touch state lmm does not mirror
        157 => match a[0] {
            15 => host(opt(a[1], 16, R)),
            16 => host(opt(a[1], 16, W)),
            _ => Kind::Refused("this prctl option"),
        },
        // rseq: the kernel would write the area on every preemption, which
        // needs it kept mirrored writable; refused, glibc runs without it
        334 => Kind::Quiet,
        _ => Kind::Refused("this system call"),
    }
}

/// The name of system call `nr` (x86-64), for the summary.
pub fn name(nr: u64) -> String {
    let known = match nr {
        0 => "read",
        1 => "write",
        2 => "open",
        3 => "close",
        4 => "stat",
        5 => "fstat",
        6 => "lstat",
        8 => "lseek",
        9 => "mmap",
        10 => "mprotect",
        11 => "munmap",
        12 => "brk",
        13 => "rt_sigaction",
        14 => "rt_sigprocmask",
        15 => "rt_sigreturn",
        16 => "ioctl",
        17 => "pread64",
        18 => "pwrite64",
        19 => "readv",
        20 => "writev",
        21 => "access",
        22 => "pipe",
        25 => "mremap",
        26 => "msync",
        27 => "mincore",
        28 => "madvise",
        35 => "nanosleep",
        39 => "getpid",
        41 => "socket",
        42 => "connect",
        56 => "clone",
        57 => "fork",
        58 => "vfork",
        59 => "execve",
        60 => "exit",
        61 => "wait4",
        62 => "kill",
        63 => "uname",
        72 => "fcntl",
        79 => "getcwd",
        89 => "readlink",
        96 => "gettimeofday",
        97 => "getrlimit",
        98 => "getrusage",
        102 => "getuid",
        104 => "getgid",
        107 => "geteuid",
        108 => "getegid",
        110 => "getppid",
        130 => "rt_sigsuspend",
        149 => "mlock",
        150 => "munlock",
        151 => "mlockall",
        152 => "munlockall",
        157 => "prctl",
        158 => "arch_prctl",
        186 => "gettid",
        191 => "getxattr",
        192 => "lgetxattr",
        193 => "fgetxattr",
        200 => "tkill",
        201 => "time",
        202 => "futex",
        204 => "sched_getaffinity",
        217 => "getdents64",
        218 => "set_tid_address",
        219 => "restart_syscall",
        221 => "fadvise64",
        228 => "clock_gettime",
        234 => "tgkill",
        247 => "waitid",
        231 => "exit_group",
        257 => "openat",
        266 => "symlinkat",
        293 => "pipe2",
        262 => "newfstatat",
        273 => "set_robust_list",
        302 => "prlimit64",
        318 => "getrandom",
        325 => "mlock2",
        332 => "statx",
        334 => "rseq",
        435 => "clone3",
        _ => return format!("syscall_{nr}"),
    };
    known.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_writes_its_buffer_and_write_reads_it() {
        let k = classify(0, [0, 0x1000, 10, 0, 0, 0]);
        assert_eq!(
            k,
            Kind::Host(vec![Buf::Bytes {
                va: 0x1000,
                len: 10,
                access: Access::Write
            }])
        );
        let k = classify(1, [1, 0x2000, 5, 0, 0, 0]);
        assert_eq!(
            k,
            Kind::Host(vec![Buf::Bytes {
                va: 0x2000,
                len: 5,
                access: Access::Read
            }])
        );
    }

    #[test]
    fn futex_faults_in_its_words_and_timeout_by_command() {
        let b = |va, len, access| Buf::Bytes { va, len, access };
        let (r, w) = (Access::Read, Access::Write);
        // FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME
        // with a timeout: the word and the timespec, read.
        let k = classify(202, [0x1000, 9 | 128 | 256, 1, 0x2000, 0, !0]);
        assert_eq!(k, Kind::Host(vec![b(0x1000, 4, r), b(0x2000, 16, r)]));
        // FUTEX_WAIT without a timeout; FUTEX_WAKE (no timeout argument).
        let k = classify(202, [0x1000, 0, 1, 0, 0, 0]);
        assert_eq!(k, Kind::Host(vec![b(0x1000, 4, r)]));
        let k = classify(202, [0x1000, 1 | 128, 1, 0x2000, 0, 0]);
        assert_eq!(k, Kind::Host(vec![b(0x1000, 4, r)]));
        // FUTEX_WAKE_OP writes the second word; its a[3] is a count.
        let k = classify(202, [0x1000, 5, 1, 1, 0x3000, 0]);
        assert_eq!(k, Kind::Host(vec![b(0x1000, 4, r), b(0x3000, 4, w)]));
        // FUTEX_CMP_REQUEUE reads both words.
        let k = classify(202, [0x1000, 4, 1, 1, 0x3000, 0]);
        assert_eq!(k, Kind::Host(vec![b(0x1000, 4, r), b(0x3000, 4, r)]));
        // FUTEX_LOCK_PI writes the word.
        let k = classify(202, [0x1000, 6, 0, 0, 0, 0]);
        assert_eq!(k, Kind::Host(vec![b(0x1000, 4, w)]));
    }

    #[test]
    fn memory_and_process_calls_are_lmms() {
        for nr in [9, 10, 11, 12, 25, 28] {
            assert_eq!(classify(nr, [0; 6]), Kind::Memory, "{}", name(nr));
        }
        for nr in [56, 57, 58] {
            assert_eq!(classify(nr, [0; 6]), Kind::Fork, "{}", name(nr));
        }
        assert_eq!(classify(59, [0; 6]), Kind::Exec);
        assert_eq!(classify(322, [0; 6]), Kind::Exec);
        assert_eq!(classify(61, [0; 6]), Kind::Wait);
        assert_eq!(classify(247, [0; 6]), Kind::Wait);
        assert_eq!(classify(39, [0; 6]), Kind::Pid);
        assert_eq!(classify(435, [0; 6]), Kind::Quiet);
        assert_eq!(classify(16, [1, 0x5402, 0, 0, 0, 0]), Kind::NoTty);
        assert_eq!(name(231), "exit_group");
        assert_eq!(name(9999), "syscall_9999");
    }
}
