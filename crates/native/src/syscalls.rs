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
    /// A value-result length (a `socklen_t` at `len_va`, read and written
    /// back) and the buffer at `va` it sizes, written: at most `max` bytes
    /// of it, as the kernel writes at most what it has (a socket address
    /// is at most 128 bytes, `sockaddr_storage`).
    Sized { va: u64, len_va: u64, max: u64 },
    /// A `struct msghdr` at `va` (sendmsg reads it; recvmsg writes its
    /// lengths and flags back) and the name, iovec buffers and control
    /// data it points at, read or written as `access` says.
    Msghdr { va: u64, access: Access },
    /// An array of `count` `struct mmsghdr` at `va` (sendmmsg,
    /// recvmmsg): each a [`Buf::Msghdr`] followed by the `msg_len` the
    /// call writes, 64 bytes. Only the elements before the first bad one
    /// are faulted in: the call is EFAULT if that is the first, and
    /// otherwise the host stops there and returns how many it did, as
    /// Linux does.
    Mmsghdr { va: u64, count: u64, access: Access },
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
    /// getpid, gettid, getppid; setpgid, getpgid, getpgrp, setsid,
    /// getsid: lmm's pids, process groups and sessions, not the stub's.
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

/// `sockaddr_storage`: the most a socket call writes of an address.
const SOCKADDR: u64 = 128;
/// `struct timespec`, `struct timeval` (two longs each).
const TIMESPEC: u64 = 16;
/// `struct itimerspec`, `struct itimerval`: two of them.
const ITIMER: u64 = 32;
/// `struct sigevent` on x86-64, which timer_create reads whole.
const SIGEVENT: u64 = 64;
/// The most elements sendmmsg and recvmmsg take (`UIO_MAXIOV`): Linux
/// caps a larger `vlen` at it.
const UIO_MAXIOV: u64 = 1024;
/// `struct epoll_event`: packed on x86-64 (a u32 and a u64).
const EPOLL_EVENT: u64 = 12;
/// The most descriptors a process may have (`fs.nr_open`'s default):
/// poll with more is EINVAL, which the host says without lmm faulting
/// in a buffer that large.
const NR_OPEN: u64 = 1 << 20;

/// The signal mask of the calls that take one with its size: read, when
/// the size is the kernel's `sigset_t` (8 bytes; another size is EINVAL,
/// left to the host).
fn sigset(va: u64, size: u64) -> Vec<Buf> {
    if size == 8 {
        opt(va, 8, Access::Read)
    } else {
        Vec::new()
    }
}

/// The events array of the epoll waits: `maxevents` packed events,
/// written (all of them faulted in, as for a pipe's read; Linux faults
/// only the events it returns). A count Linux refuses (<= 0, or more than
/// INT_MAX / 12) is left to the host's EINVAL.
fn epoll_events(va: u64, maxevents: u64) -> Vec<Buf> {
    let n = maxevents as i32;
    if n <= 0 || n as u64 > i32::MAX as u64 / EPOLL_EVENT {
        return Vec::new();
    }
    opt(va, n as u64 * EPOLL_EVENT, Access::Write)
}

/// The three `fd_set`s of select and pselect6 (`nfds` bits each, in
/// longs), read and written. Simplification: Linux caps `nfds` at the
/// size of the descriptor table; lmm at [`NR_OPEN`].
fn fd_sets(nfds: u64, sets: [u64; 3]) -> Vec<Buf> {
    let nfds = (nfds as i32).clamp(0, NR_OPEN as i32) as u64;
    let len = nfds.div_ceil(64) * 8;
    sets.iter()
        .flat_map(|&va| opt(va, len, Access::Write))
        .collect()
}

/// The `struct mmsghdr` array of sendmmsg and recvmmsg: `vlen` (an
/// unsigned int) elements, capped at [`UIO_MAXIOV`] as Linux caps it.
fn mmsghdrs(va: u64, vlen: u64, access: Access) -> Buf {
    Buf::Mmsghdr {
        va,
        count: u64::from(vlen as u32).min(UIO_MAXIOV),
        access,
    }
}

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
/// itself), and rt_sigtimedwait, which with epoll_wait lmm makes again
/// when its own SIGSTOP ended an untimed wait with EINTR.
pub fn needs_result(nr: u64) -> bool {
    matches!(
        nr,
        218 | 35 | 230 | 202 | 7 | 271 | 23 | 270 | 232 | 281 | 441 | 219 | 128
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
            // FIONBIO reads an int; FIONREAD writes one; FIONCLEX and
            // FIOCLEX take nothing
            0x5421 => host(opt(a[2], 4, R)),
            0x541b => host(opt(a[2], 4, W)),
            0x5450 | 0x5451 => host(Vec::new()),
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
        // getuid, getgid, geteuid, getegid, sched_yield, kill, tgkill,
        // tkill, umask, pause (kill's pids are lmm's, turned into the
        // stubs' by the caller)
        102 | 104 | 107 | 108 | 24 | 62 | 234 | 200 | 95 | 34 => host(Vec::new()),
        // rt_sigqueueinfo(pid, sig, info), rt_tgsigqueueinfo(tgid, tid,
        // sig, info): the ids are lmm's, as kill's; the siginfo is read
        // whole, as copy_from_siginfo does
        129 => host(vec![bytes(a[2], 128, R)]),
        297 => host(vec![bytes(a[3], 128, R)]),
        39 | 110 | 186 | 109 | 121 | 111 | 112 | 124 => Kind::Pid,
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
            // PR_GET_DUMPABLE, PR_SET_DUMPABLE, PR_GET_KEEPCAPS,
            // PR_SET_KEEPCAPS, PR_CAPBSET_READ, PR_GET_SECUREBITS,
            // PR_GET_TIMERSLACK, PR_SET_TIMERSLACK, PR_SET_NO_NEW_PRIVS,
            // PR_GET_NO_NEW_PRIVS: the thread's own flags, no buffer
            3 | 4 | 7 | 8 | 23 | 27 | 29 | 30 | 38 | 39 => host(Vec::new()),
            _ => Kind::Refused("this prctl option"),
        },
        // rseq: the kernel would write the area on every preemption, which
        // needs it kept mirrored writable; refused, glibc runs without it
        334 => Kind::Quiet,
        // poll(fds, nfds, timeout): the pollfds read and their revents
        // written; ppoll also writes back the time left
        7 if a[1] <= NR_OPEN => host(opt(a[0], a[1] * 8, W)),
        271 if a[1] <= NR_OPEN => host(
            [
                opt(a[0], a[1] * 8, W),
                opt(a[2], TIMESPEC, W),
                sigset(a[3], a[4]),
            ]
            .concat(),
        ),
        7 | 271 => host(Vec::new()),
        // select(nfds, r, w, e, timeval): the time left is written back
        23 => host([fd_sets(a[0], [a[1], a[2], a[3]]), opt(a[4], TIMESPEC, W)].concat()),
        // pselect6(nfds, r, w, e, timespec, sig): `sig` points at
        // { const sigset_t *ss; size_t ss_len }, an iovec's layout
        270 => host(
            [
                fd_sets(a[0], [a[1], a[2], a[3]]),
                opt(a[4], TIMESPEC, W),
                if a[5] == 0 {
                    Vec::new()
                } else {
                    vec![Buf::Iovec {
                        va: a[5],
                        count: 1,
                        access: R,
                    }]
                },
            ]
            .concat(),
        ),
        // epoll_create(size), epoll_create1(flags), eventfd(count),
        // eventfd2(count, flags), timerfd_create(clock, flags)
        213 | 291 | 284 | 290 | 283 => host(Vec::new()),
        // epoll_ctl(epfd, op, fd, event): EPOLL_CTL_DEL ignores `event`
        233 if a[1] == 2 => host(Vec::new()),
        233 => host(opt(a[3], EPOLL_EVENT, R)),
        // epoll_wait(epfd, events, maxevents, timeout)
        232 => host(epoll_events(a[1], a[2])),
        // epoll_pwait(.., timeout, sigmask, sigsetsize); epoll_pwait2 with
        // a struct timespec timeout (read)
        281 => host([epoll_events(a[1], a[2]), sigset(a[4], a[5])].concat()),
        441 => host(
            [
                epoll_events(a[1], a[2]),
                opt(a[3], TIMESPEC, R),
                sigset(a[4], a[5]),
            ]
            .concat(),
        ),
        // timerfd_settime(fd, flags, new, old), timerfd_gettime(fd, cur);
        // timer_settime(id, flags, new, old), timer_gettime(id, cur)
        286 | 223 => host([opt(a[2], ITIMER, R), opt(a[3], ITIMER, W)].concat()),
        287 | 224 => host(opt(a[1], ITIMER, W)),
        // timer_create(clock, sevp, id): the sigevent read (a
        // SIGEV_THREAD_ID one names lmm's tid: `Run::timer_create` gives
        // the host its own), the id written; timer_getoverrun(id),
        // timer_delete(id). Simplifications: a CPU clock of another
        // process (a pid in the clock id) names the host's pid, not lmm's;
        // a bad id pointer is EFAULT before a timer is made (Linux makes
        // and frees one, which uses up an id).
        222 => host([opt(a[1], SIGEVENT, R), opt(a[2], 4, W)].concat()),
        225 | 226 => host(Vec::new()),
        // signalfd(fd, mask, size), signalfd4(fd, mask, size, flags)
        282 | 289 => host(sigset(a[1], a[2])),
        // close_range(first, last, flags): lmm keeps the RAM memfd out
        // of the range (`Run::close_range`)
        436 => host(Vec::new()),
        // getitimer(which, cur), setitimer(which, new, old), alarm(secs)
        36 => host(opt(a[1], ITIMER, W)),
        38 => host([opt(a[1], ITIMER, R), opt(a[2], ITIMER, W)].concat()),
        37 => host(Vec::new()),
        // rt_sigpending(set, size), rt_sigtimedwait(set, info, ts, size)
        127 => host(if a[1] == 8 {
            opt(a[0], 8, W)
        } else {
            Vec::new()
        }),
        128 => host(
            [
                sigset(a[0], a[3]),
                opt(a[1], 128, W),
                opt(a[2], TIMESPEC, R),
            ]
            .concat(),
        ),
        // getcpu(cpu, node, cache)
        309 => host([opt(a[0], 4, W), opt(a[1], 4, W)].concat()),
        // socketpair(domain, type, protocol, sv)
        53 => host(opt(a[3], 8, W)),
        // accept(fd, addr, addrlen), accept4(.., flags), getsockname,
        // getpeername (fd, addr, addrlen)
        43 | 288 | 51 | 52 if a[1] != 0 => host(vec![Buf::Sized {
            va: a[1],
            len_va: a[2],
            max: SOCKADDR,
        }]),
        43 | 288 | 51 | 52 => host(Vec::new()),
        // sendto(fd, buf, len, flags, addr, addrlen)
        44 => host([opt(a[1], a[2], R), opt(a[4], a[5], R)].concat()),
        // recvfrom(fd, buf, len, flags, addr, addrlen)
        45 => host(
            [
                opt(a[1], a[2], W),
                if a[4] == 0 {
                    Vec::new()
                } else {
                    vec![Buf::Sized {
                        va: a[4],
                        len_va: a[5],
                        max: SOCKADDR,
                    }]
                },
            ]
            .concat(),
        ),
        // sendmsg(fd, msg, flags), recvmsg(fd, msg, flags)
        46 => host(vec![Buf::Msghdr {
            va: a[1],
            access: R,
        }]),
        47 => host(vec![Buf::Msghdr {
            va: a[1],
            access: W,
        }]),
        // sendmmsg(fd, vec, vlen, flags), recvmmsg(fd, vec, vlen, flags,
        // timeout): the timeout is read and the time left written back.
        // Simplification: recvmmsg's elements are faulted in whole, as for
        // recvmsg, where Linux writes only those it fills.
        307 => host(vec![mmsghdrs(a[1], a[2], R)]),
        299 => host([vec![mmsghdrs(a[1], a[2], W)], opt(a[4], TIMESPEC, W)].concat()),
        // shutdown(fd, how), listen(fd, backlog)
        48 | 50 => host(Vec::new()),
        // bind(fd, addr, addrlen)
        49 => host(opt(a[1], a[2], R)),
        // setsockopt(fd, level, name, val, len)
        54 => host(opt(a[3], a[4], R)),
        // getsockopt(fd, level, name, val, len): the value's size is the
        // option's; lmm faults in at most a page of it
        55 => host(vec![Buf::Sized {
            va: a[3],
            len_va: a[4],
            max: 4096,
        }]),
        // Files by path: truncate, creat, chmod, chown, lchown (path,
        // ...); rename, link, symlink (two paths); inotify_add_watch(fd,
        // path, mask); the *at forms (dirfd, path, ...): fchownat,
        // fchmodat, fchmodat2, and renameat, renameat2, linkat (dirfd,
        // path, dirfd, path, ...)
        76 | 85 | 90 | 92 | 94 => host(vec![s(a[0])]),
        82 | 86 | 88 => host(vec![s(a[0]), s(a[1])]),
        254 | 260 | 268 | 452 => host(vec![s(a[1])]),
        264 | 316 | 265 => host(vec![s(a[1]), s(a[3])]),
        // Files by descriptor, no buffer: flock, fchmod, fchown,
        // readahead, tee, sync_file_range, fallocate, syncfs, sync;
        // inotify_init, inotify_init1, inotify_rm_watch
        73 | 91 | 93 | 187 | 276 | 277 | 285 | 306 | 162 | 253 | 294 | 255 => host(Vec::new()),
        // getdents(fd, buf, count)
        78 => host(opt(a[1], a[2], W)),
        // sendfile(out, in, offset, count); splice and copy_file_range
        // (in, off_in, out, off_out, len, flags): each offset is read and
        // the new one written back
        40 => host(opt(a[2], 8, W)),
        275 | 326 => host([opt(a[1], 8, W), opt(a[3], 8, W)].concat()),
        // utime(path, times), utimes(path, times[2]); utimensat(dirfd,
        // path or NULL, times[2], flags)
        132 => host([vec![s(a[0])], opt(a[1], 16, R)].concat()),
        235 => host([vec![s(a[0])], opt(a[1], 32, R)].concat()),
        280 => host(
            [
                if a[1] == 0 { Vec::new() } else { vec![s(a[1])] },
                opt(a[2], 32, R),
            ]
            .concat(),
        ),
        // setxattr, lsetxattr (path, name, value, size, flags);
        // fsetxattr(fd, ...); removexattr, lremovexattr (path, name);
        // fremovexattr(fd, name)
        188 | 189 => host([vec![s(a[0]), s(a[1])], opt(a[2], a[3], R)].concat()),
        190 => host([vec![s(a[1])], opt(a[2], a[3], R)].concat()),
        197 | 198 => host(vec![s(a[0]), s(a[1])]),
        199 => host(vec![s(a[1])]),
        // listxattr, llistxattr (path, list, size); flistxattr(fd, ...)
        194 | 195 => host([vec![s(a[0])], opt(a[1], a[2], W)].concat()),
        196 => host(opt(a[1], a[2], W)),
        // times(struct tms: 4 clock_t)
        100 => host(opt(a[0], 32, W)),
        // Credentials: setuid, setgid, setreuid, setregid, setresuid,
        // setresgid, setfsuid, setfsgid; getgroups(size, list) writes
        // and setgroups reads `size` gid_t (simplification: getgroups'
        // whole list is faulted in, where Linux writes only the groups
        // there are); getresuid, getresgid write three
        105 | 106 | 113 | 114 | 117 | 119 | 122 | 123 => host(Vec::new()),
        115 | 116 => {
            // A negative count (an int) is EINVAL before the list is
            // touched.
            let n = u64::try_from(a[0] as i32).unwrap_or(0).min(NGROUPS_MAX);
            host(opt(a[1], n * 4, if nr == 115 { W } else { R }))
        }
        118 | 120 => host([opt(a[0], 4, W), opt(a[1], 4, W), opt(a[2], 4, W)].concat()),
        // getpriority(which, who), setpriority(which, who, prio);
        // ioprio_get(which, who), ioprio_set(which, who, prio): a
        // process's id is lmm's, turned into its stub's by the caller
        140 | 141 | 251 | 252 => host(Vec::new()),
        // capget(header, data), capset(header, data): the header (version,
        // pid) is read and capget writes the version back; the data is
        // two 12-byte sets for versions 2 and 3. Simplification: a pid in
        // the header is the host's (libcap's own process is 0, the caller).
        125 => host([opt(a[0], 8, W), opt(a[1], 24, W)].concat()),
        126 => host([opt(a[0], 8, R), opt(a[1], 24, R)].concat()),
        // setrlimit(res, rlim). Simplification: the limit is the stub's
        // (as prlimit64's): lmm's mm does not enforce it.
        160 => host(opt(a[1], 16, R)),
        _ => Kind::Refused("this system call"),
    }
}

/// NGROUPS_MAX: the most supplementary groups getgroups and setgroups
/// take (more is EINVAL, before any buffer is touched).
const NGROUPS_MAX: u64 = 65536;

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
        7 => "poll",
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
        23 => "select",
        24 => "sched_yield",
        25 => "mremap",
        26 => "msync",
        27 => "mincore",
        28 => "madvise",
        32 => "dup",
        33 => "dup2",
        34 => "pause",
        35 => "nanosleep",
        36 => "getitimer",
        37 => "alarm",
        38 => "setitimer",
        39 => "getpid",
        41 => "socket",
        42 => "connect",
        43 => "accept",
        44 => "sendto",
        45 => "recvfrom",
        46 => "sendmsg",
        47 => "recvmsg",
        48 => "shutdown",
        49 => "bind",
        50 => "listen",
        51 => "getsockname",
        52 => "getpeername",
        53 => "socketpair",
        54 => "setsockopt",
        55 => "getsockopt",
        56 => "clone",
        57 => "fork",
        58 => "vfork",
        59 => "execve",
        60 => "exit",
        61 => "wait4",
        62 => "kill",
        63 => "uname",
        72 => "fcntl",
        74 => "fsync",
        75 => "fdatasync",
        77 => "ftruncate",
        79 => "getcwd",
        80 => "chdir",
        81 => "fchdir",
        83 => "mkdir",
        84 => "rmdir",
        87 => "unlink",
        89 => "readlink",
        95 => "umask",
        96 => "gettimeofday",
        97 => "getrlimit",
        98 => "getrusage",
        99 => "sysinfo",
        102 => "getuid",
        104 => "getgid",
        107 => "geteuid",
        108 => "getegid",
        110 => "getppid",
        111 => "getpgrp",
        112 => "setsid",
        127 => "rt_sigpending",
        128 => "rt_sigtimedwait",
        129 => "rt_sigqueueinfo",
        130 => "rt_sigsuspend",
        131 => "sigaltstack",
        137 => "statfs",
        138 => "fstatfs",
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
        213 => "epoll_create",
        217 => "getdents64",
        218 => "set_tid_address",
        219 => "restart_syscall",
        221 => "fadvise64",
        222 => "timer_create",
        223 => "timer_settime",
        224 => "timer_gettime",
        225 => "timer_getoverrun",
        226 => "timer_delete",
        228 => "clock_gettime",
        229 => "clock_getres",
        230 => "clock_nanosleep",
        231 => "exit_group",
        232 => "epoll_wait",
        233 => "epoll_ctl",
        234 => "tgkill",
        247 => "waitid",
        257 => "openat",
        258 => "mkdirat",
        262 => "newfstatat",
        263 => "unlinkat",
        266 => "symlinkat",
        267 => "readlinkat",
        269 => "faccessat",
        270 => "pselect6",
        271 => "ppoll",
        273 => "set_robust_list",
        281 => "epoll_pwait",
        282 => "signalfd",
        283 => "timerfd_create",
        284 => "eventfd",
        286 => "timerfd_settime",
        287 => "timerfd_gettime",
        288 => "accept4",
        289 => "signalfd4",
        290 => "eventfd2",
        291 => "epoll_create1",
        292 => "dup3",
        293 => "pipe2",
        295 => "preadv",
        296 => "pwritev",
        297 => "rt_tgsigqueueinfo",
        299 => "recvmmsg",
        302 => "prlimit64",
        307 => "sendmmsg",
        309 => "getcpu",
        318 => "getrandom",
        322 => "execveat",
        325 => "mlock2",
        332 => "statx",
        334 => "rseq",
        435 => "clone3",
        436 => "close_range",
        439 => "faccessat2",
        441 => "epoll_pwait2",
        40 => "sendfile",
        73 => "flock",
        76 => "truncate",
        78 => "getdents",
        82 => "rename",
        85 => "creat",
        86 => "link",
        88 => "symlink",
        90 => "chmod",
        91 => "fchmod",
        92 => "chown",
        93 => "fchown",
        94 => "lchown",
        100 => "times",
        105 => "setuid",
        106 => "setgid",
        113 => "setreuid",
        114 => "setregid",
        115 => "getgroups",
        116 => "setgroups",
        117 => "setresuid",
        118 => "getresuid",
        119 => "setresgid",
        120 => "getresgid",
        122 => "setfsuid",
        123 => "setfsgid",
        132 => "utime",
        160 => "setrlimit",
        162 => "sync",
        187 => "readahead",
        188 => "setxattr",
        189 => "lsetxattr",
        190 => "fsetxattr",
        197 => "removexattr",
        198 => "lremovexattr",
        199 => "fremovexattr",
        194 => "listxattr",
        195 => "llistxattr",
        196 => "flistxattr",
        125 => "capget",
        126 => "capset",
        109 => "setpgid",
        121 => "getpgid",
        124 => "getsid",
        140 => "getpriority",
        141 => "setpriority",
        251 => "ioprio_get",
        252 => "ioprio_set",
        235 => "utimes",
        253 => "inotify_init",
        254 => "inotify_add_watch",
        255 => "inotify_rm_watch",
        260 => "fchownat",
        264 => "renameat",
        265 => "linkat",
        268 => "fchmodat",
        275 => "splice",
        276 => "tee",
        277 => "sync_file_range",
        280 => "utimensat",
        285 => "fallocate",
        294 => "inotify_init1",
        306 => "syncfs",
        316 => "renameat2",
        326 => "copy_file_range",
        452 => "fchmodat2",
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
    fn path_calls_fault_in_each_path_and_list_calls_cap_their_length() {
        let s = |va| Buf::Str { va };
        // rename(old, new); renameat2(dirfd, old, dirfd, new, flags).
        assert_eq!(
            classify(82, [0x1000, 0x2000, 0, 0, 0, 0]),
            Kind::Host(vec![s(0x1000), s(0x2000)])
        );
        assert_eq!(
            classify(316, [3, 0x1000, 4, 0x2000, 1, 0]),
            Kind::Host(vec![s(0x1000), s(0x2000)])
        );
        // utimensat with a NULL path works on the descriptor.
        let times = Buf::Bytes {
            va: 0x3000,
            len: 32,
            access: Access::Read,
        };
        assert_eq!(
            classify(280, [3, 0, 0x3000, 0, 0, 0]),
            Kind::Host(vec![times])
        );
        // getgroups(size, list): at most NGROUPS_MAX gids are written;
        // a negative size touches nothing (the kernel's EINVAL).
        assert_eq!(
            classify(115, [i32::MAX as u64, 0x4000, 0, 0, 0, 0]),
            Kind::Host(vec![Buf::Bytes {
                va: 0x4000,
                len: NGROUPS_MAX * 4,
                access: Access::Write
            }])
        );
        assert_eq!(
            classify(115, [u64::MAX, 0x4000, 0, 0, 0, 0]),
            Kind::Host(vec![])
        );
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
        // The process-group and session calls are lmm's too.
        for nr in [109, 111, 112, 121, 124] {
            assert_eq!(classify(nr, [0; 6]), Kind::Pid, "{}", name(nr));
        }
        assert_eq!(classify(435, [0; 6]), Kind::Quiet);
        assert_eq!(classify(16, [1, 0x5402, 0, 0, 0, 0]), Kind::NoTty);
        assert_eq!(name(231), "exit_group");
        assert_eq!(name(9999), "syscall_9999");
    }

    #[test]
    fn every_call_lmm_serves_has_its_name() {
        for nr in 0..512 {
            if !matches!(classify(nr, [0; 6]), Kind::Refused(_)) {
                assert_ne!(name(nr), format!("syscall_{nr}"), "{nr}");
            }
        }
    }

    #[test]
    fn event_waits_fault_in_what_the_kernel_reads_and_writes() {
        let b = |va, len, access| Buf::Bytes { va, len, access };
        let (r, w) = (Access::Read, Access::Write);
        // poll: 8 bytes per pollfd, revents written.
        assert_eq!(
            classify(7, [0x1000, 3, 0, 0, 0, 0]),
            Kind::Host(vec![b(0x1000, 24, w)])
        );
        // ppoll: the time left is written back; a sigset of 8 bytes read.
        assert_eq!(
            classify(271, [0x1000, 1, 0x2000, 0x3000, 8, 0]),
            Kind::Host(vec![b(0x1000, 8, w), b(0x2000, 16, w), b(0x3000, 8, r)])
        );
        // More pollfds than a process may have: the host's EINVAL, no
        // buffer faulted in.
        assert_eq!(
            classify(7, [0x1000, 1 << 30, 0, 0, 0, 0]),
            Kind::Host(vec![])
        );
        // epoll_wait: 12 bytes per event; a bad maxevents is EINVAL's.
        assert_eq!(
            classify(232, [3, 0x1000, 10, !0, 0, 0]),
            Kind::Host(vec![b(0x1000, 120, w)])
        );
        assert_eq!(classify(232, [3, 0x1000, 0, !0, 0, 0]), Kind::Host(vec![]));
        assert_eq!(classify(232, [3, 0x1000, !0, !0, 0, 0]), Kind::Host(vec![]));
        // epoll_pwait2 reads its timespec; a sigset of another size is
        // EINVAL's.
        assert_eq!(
            classify(441, [3, 0x1000, 1, 0x2000, 0x3000, 16]),
            Kind::Host(vec![b(0x1000, 12, w), b(0x2000, 16, r)])
        );
        // epoll_ctl reads the event, but not for EPOLL_CTL_DEL.
        assert_eq!(
            classify(233, [3, 1, 4, 0x1000, 0, 0]),
            Kind::Host(vec![b(0x1000, 12, r)])
        );
        assert_eq!(classify(233, [3, 2, 4, 0x1000, 0, 0]), Kind::Host(vec![]));
        // select: nfds bits per set, in longs; the timeval written back.
        assert_eq!(
            classify(23, [65, 0x1000, 0, 0x2000, 0x3000, 0]),
            Kind::Host(vec![b(0x1000, 16, w), b(0x2000, 16, w), b(0x3000, 16, w)])
        );
        // pselect6's sixth argument is { sigset_t *, size_t }.
        assert_eq!(
            classify(270, [1, 0, 0, 0, 0, 0x4000]),
            Kind::Host(vec![Buf::Iovec {
                va: 0x4000,
                count: 1,
                access: r
            }])
        );
    }

    #[test]
    fn posix_timer_calls_fault_in_the_sigevent_id_and_itimerspecs() {
        let b = |va, len, access| Buf::Bytes { va, len, access };
        let (r, w) = (Access::Read, Access::Write);
        // timer_create: the 64-byte sigevent read, the int id written;
        // a NULL sigevent is the default one.
        assert_eq!(
            classify(222, [1, 0x1000, 0x2000, 0, 0, 0]),
            Kind::Host(vec![b(0x1000, 64, r), b(0x2000, 4, w)])
        );
        assert_eq!(
            classify(222, [1, 0, 0x2000, 0, 0, 0]),
            Kind::Host(vec![b(0x2000, 4, w)])
        );
        // timer_settime(id, flags, new, old), timer_gettime(id, cur).
        assert_eq!(
            classify(223, [0, 0, 0x1000, 0x2000, 0, 0]),
            Kind::Host(vec![b(0x1000, 32, r), b(0x2000, 32, w)])
        );
        assert_eq!(
            classify(224, [0, 0x1000, 0, 0, 0, 0]),
            Kind::Host(vec![b(0x1000, 32, w)])
        );
        assert_eq!(classify(225, [0; 6]), Kind::Host(vec![]));
        assert_eq!(classify(226, [0; 6]), Kind::Host(vec![]));
        // None of them ends with -ERESTART_RESTARTBLOCK (nor do sendmmsg
        // and recvmmsg): they run in place.
        assert!((222..=226).chain([299, 307]).all(|nr| !needs_result(nr)));
    }

    #[test]
    fn socket_calls_fault_in_addresses_by_their_length() {
        let b = |va, len, access| Buf::Bytes { va, len, access };
        let (r, w) = (Access::Read, Access::Write);
        // recvfrom: the data written, the address sized by *addrlen.
        assert_eq!(
            classify(45, [3, 0x1000, 100, 0, 0x2000, 0x3000]),
            Kind::Host(vec![
                b(0x1000, 100, w),
                Buf::Sized {
                    va: 0x2000,
                    len_va: 0x3000,
                    max: 128
                }
            ])
        );
        // accept without an address touches nothing.
        assert_eq!(classify(43, [3, 0, 0, 0, 0, 0]), Kind::Host(vec![]));
        assert_eq!(
            classify(46, [3, 0x1000, 0, 0, 0, 0]),
            Kind::Host(vec![Buf::Msghdr {
                va: 0x1000,
                access: r
            }])
        );
        // sendmmsg: vlen capped at UIO_MAXIOV; recvmmsg's timeout.
        assert_eq!(
            classify(307, [3, 0x1000, 5000, 0, 0, 0]),
            Kind::Host(vec![Buf::Mmsghdr {
                va: 0x1000,
                count: 1024,
                access: r
            }])
        );
        assert_eq!(
            classify(299, [3, 0x1000, 2, 0, 0x2000, 0]),
            Kind::Host(vec![
                Buf::Mmsghdr {
                    va: 0x1000,
                    count: 2,
                    access: w
                },
                b(0x2000, 16, w)
            ])
        );
        assert_eq!(
            classify(53, [1, 1, 0, 0x1000, 0, 0]),
            Kind::Host(vec![b(0x1000, 8, w)])
        );
    }
}
