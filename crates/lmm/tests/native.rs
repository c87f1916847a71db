//! `lmm native`: real programs, built at test time from the C sources in
//! tests/native/ with `gcc -static -O1`, run on the host CPU with lmm as
//! their memory manager. Each run is checked against the same binary run
//! on the host: its output, its exit status and its page faults (the
//! host's counted by wait4's rusage of the child).
//!
//! Needs gcc with a static libc (Debian: gcc, libc6-dev) and root (ptrace
//! and the stub's trampoline page); without them the tests fail, loudly.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The repository root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// A scratch directory for this test binary's programs and files.
fn scratch() -> PathBuf {
    let d = std::env::temp_dir().join(format!("lmm-native-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("scratch directory");
    d
}

/// Compiles tests/native/NAME.c into a static executable; panics with
/// what to install if gcc is missing. Tests running at once may build the
/// same program: each links to a file of its own and renames it into place,
/// so no test ever sees (and execs) a half-written binary.
fn build(name: &str) -> PathBuf {
    build_as(name, name, &["-static", "-O1"])
}

/// [`build`] with these gcc flags, into the scratch file `out`.
fn build_as(name: &str, out: &str, flags: &[&str]) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let out = scratch().join(out);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = scratch().join(format!("{name}.{n}.tmp"));
    let src = root().join("tests/native").join(format!("{name}.c"));
    let r = Command::new("gcc")
        .args(flags)
        .arg("-o")
        .arg(&tmp)
        .arg(&src)
        .output()
        .unwrap_or_else(|e| {
            panic!("lmm native tests need gcc (apt-get install gcc libc6-dev): {e}")
        });
    assert!(
        r.status.success(),
        "gcc {flags:?} {}: {}",
        src.display(),
        String::from_utf8_lossy(&r.stderr)
    );
    std::fs::rename(&tmp, &out).expect("rename the built program into place");
    out
}

/// What one run gave.
struct Ran {
    stdout: String,
    stderr: String,
    status: std::process::ExitStatus,
    /// Minor + major faults (the host's from rusage; lmm's from its
    /// summary).
    faults: u64,
}

/// Runs `prog` on the host, measuring its faults with wait4 (which reaps
/// the child: `Child::wait` could not give its rusage).
#[allow(clippy::zombie_processes)]
fn host(prog: &Path, args: &[&str]) -> Ran {
    let child = Command::new(prog)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the program on the host");
    let pid = child.id() as libc::pid_t;
    let mut out = child.stdout.expect("stdout");
    let mut err = child.stderr.expect("stderr");
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    use std::io::Read;
    out.read_to_end(&mut stdout).expect("read stdout");
    err.read_to_end(&mut stderr).expect("read stderr");
    let stdout = String::from_utf8_lossy(&stdout).to_string();
    let stderr = String::from_utf8_lossy(&stderr).to_string();
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it and the status for our
    // own child, which nothing else waits for.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::wait4(pid, &mut status, 0, &mut ru), pid, "wait4");
        ru
    };
    Ran {
        stdout,
        stderr,
        status: std::process::ExitStatus::from_raw(status),
        faults: (ru.ru_minflt + ru.ru_majflt) as u64,
    }
}

/// The host's run of `prog` whose fault count is the median of five. A
/// program's faults vary by a few from run to run on the host (our 6.18
/// host: `ls -la /usr` 128 to 133, `/bin/true` 66 to 70, with ASLR or
/// without), where lmm's count is the same every time: one host run would
/// bring that spread into the comparison.
fn host_median(prog: &Path, args: &[&str]) -> Ran {
    let mut runs: Vec<Ran> = (0..5).map(|_| host(prog, args)).collect();
    runs.sort_by_key(|r| r.faults);
    runs.swap_remove(2)
}

/// Runs `lmm native [flags] prog args` and asserts that it prints what the
/// host's run `h` printed, exits 0 and refuses no call.
fn runs_like_the_host(flags: &[&str], prog: &Path, args: &[&str], h: &Ran) {
    let l = native(flags, prog, args);
    assert_eq!(l.stdout, h.stdout, "{}", l.stderr);
    assert_eq!(l.status.code(), Some(0), "{}", l.stderr);
    assert!(!l.stderr.contains("not supported"), "{}", l.stderr);
}

/// Runs `lmm native [flags] prog args`.
fn native(flags: &[&str], prog: &Path, args: &[&str]) -> Ran {
    native_on(&[], flags, prog, args)
}

/// How long a run of `lmm native` may take before the test kills it and
/// fails: far beyond any run's time, only so that a hang fails the test
/// instead of stalling CI.
const HANG: std::time::Duration = std::time::Duration::from_secs(600);

/// Runs `lmm [machine] native [flags] prog args` (killed, and the test
/// failed, if it has not ended after [`HANG`]; its stubs die with it).
fn native_on(machine: &[&str], flags: &[&str], prog: &Path, args: &[&str]) -> Ran {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lmm"))
        .args(machine)
        .arg("native")
        .args(flags)
        .arg(prog)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run lmm native");
    let drain = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = pipe.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for lmm native") {
            break s;
        }
        if start.elapsed() > HANG {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "lmm native {} {args:?} did not end within {HANG:?}: killed",
                prog.display()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let r = std::process::Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    };
    let stderr = String::from_utf8_lossy(&r.stderr).to_string();
    let field = |name: &str| -> u64 {
        stderr
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name:?} line in lmm's stderr:\n{stderr}"))
    };
    let faults = field("minor faults:") + field("major faults:");
    Ran {
        stdout: String::from_utf8_lossy(&r.stdout).to_string(),
        stderr,
        status: r.status,
        faults,
    }
}

/// Asserts lmm's fault count is within 5% of the host's, or within
/// `slack` faults for a small program.
fn assert_faults_close(lmm: &Ran, host: &Ran, slack: u64) {
    let (a, b) = (lmm.faults, host.faults);
    let diff = a.abs_diff(b);
    assert!(
        diff * 20 <= b || diff <= slack,
        "faults: lmm {a}, host kernel {b} (more than 5% and {slack} apart)\n{}",
        lmm.stderr
    );
}

#[test]
fn hello_prints_exits_with_its_status_and_faults_like_linux() {
    let prog = build("hello");
    let h = host_median(&prog, &["a", "b"]);
    let l = native(&[], &prog, &["a", "b"]);
    assert_eq!(l.stdout, "hello from a real program with 3 args\n");
    assert_eq!(l.stdout, h.stdout);
    assert_eq!(l.status.code(), Some(3), "{}", l.stderr);
    assert_eq!(h.status.code(), Some(3));
    assert!(l.stderr.contains("  exit_group 1\n"), "{}", l.stderr);
    assert!(l.stderr.contains("  write 1\n"), "{}", l.stderr);
    // A small static program takes some 30 faults; lmm's exec and the
    // host's differ by a few (see docs/native.md).
    assert_faults_close(&l, &h, 6);
}

#[test]
fn touching_64_mib_gives_the_right_sum_and_the_kernels_fault_count() {
    let prog = build("touch");
    let h = host_median(&prog, &["64"]);
    let l = native(&[], &prog, &["64"]);
    assert_eq!(l.stdout, "pages=16384 sum=2088960\n");
    assert_eq!(l.stdout, h.stdout);
    assert!(l.status.success(), "{}", l.stderr);
    // One fault per page written: 16384 and the program's own.
    assert!(l.faults > 16384, "{}", l.stderr);
    assert_faults_close(&l, &h, 0);
    let peak: u64 = l
        .stderr
        .lines()
        .find_map(|s| {
            s.strip_prefix("peak RSS: ")?
                .strip_suffix(" kB")?
                .parse()
                .ok()
        })
        .expect("peak RSS line");
    assert!((65536..70000).contains(&peak), "peak RSS {peak} kB");
}

#[test]
fn memory_system_calls_are_lmms_and_the_program_reads_back_what_it_wrote() {
    let prog = build("mmap");
    let h = host_median(&prog, &[]);
    let dir = scratch();
    let maps = dir.join("mmap.maps");
    let status = dir.join("mmap.status");
    let l = native(
        &[
            "--maps-at-exit",
            maps.to_str().unwrap_or_default(),
            "--status-at-exit",
            status.to_str().unwrap_or_default(),
        ],
        &prog,
        &[],
    );
    assert!(l.status.success(), "{}", l.stderr);
    assert_eq!(l.stdout, h.stdout);
    assert!(l.stdout.contains("dontneed sum=29760\n"), "{}", l.stdout);
    assert!(l.stdout.contains("remap loop sum=780\n"), "{}", l.stdout);
    for call in ["mmap", "munmap", "mremap", "mprotect", "madvise", "brk"] {
        assert!(
            l.stderr.contains(&format!("  {call} ")),
            "{call} not counted:\n{}",
            l.stderr
        );
    }
    assert_faults_close(&l, &h, 6);
    let maps = std::fs::read_to_string(maps).expect("maps at exit");
    assert!(
        maps.contains("[heap]") && maps.contains("[stack]"),
        "{maps}"
    );
    // The grown mapping is read-only at exit: 1024 pages.
    assert!(
        maps.lines().any(|l| {
            let (range, rest) = l.split_once(' ').unwrap_or(("", ""));
            let (a, b) = range.split_once('-').unwrap_or(("0", "0"));
            let len =
                u64::from_str_radix(b, 16).unwrap_or(0) - u64::from_str_radix(a, 16).unwrap_or(0);
            rest.starts_with("r--p 00000000 00:00 0") && len == 1024 * 4096
        }),
        "{maps}"
    );
    let status = std::fs::read_to_string(status).expect("status at exit");
    assert!(status.contains("VmRSS:"), "{status}");
}

#[test]
fn a_store_where_nothing_is_mapped_kills_with_sigsegv() {
    let prog = build("segv");
    let l = native(&[], &prog, &[]);
    assert_eq!(l.stdout, "about to fault\n");
    assert_eq!(l.status.signal(), Some(libc::SIGSEGV), "{}", l.stderr);
    assert!(l.stderr.contains("killed by signal 11"), "{}", l.stderr);
    // And a store to a page mprotect made read-only (SEGV_ACCERR).
    let prog = build("mmap");
    let l = native(&[], &prog, &["ro"]);
    assert!(l.stdout.ends_with("brk sum=192\n"), "{}", l.stdout);
    assert_eq!(l.status.signal(), Some(libc::SIGSEGV), "{}", l.stderr);
}

/// The first field of a maps line: its address range.
fn range(l: &str) -> String {
    l.split_whitespace().next().unwrap_or("").to_string()
}

/// Runs `prog` under lmm native with `flag FILE` (a host-maps option) and
/// `--maps-at-exit`, requiring exit status `code`: the stub's host maps
/// the flag wrote, and the ranges of lmm's [vvar], [vvar_vclock] and
/// [vdso] at exit (where the stub's vDSO must be).
fn stub_maps_and_vdso(prog: &Path, flag: &str, code: i32) -> (String, Vec<String>) {
    let dir = scratch();
    let (stub, maps) = (dir.join("stub.maps"), dir.join("lmm.maps"));
    let l = native(
        &[
            flag,
            stub.to_str().unwrap_or_default(),
            "--maps-at-exit",
            maps.to_str().unwrap_or_default(),
        ],
        prog,
        &[],
    );
    assert_eq!(l.status.code(), Some(code), "{}", l.stderr);
    let stub = std::fs::read_to_string(stub).expect("stub maps");
    let maps = std::fs::read_to_string(maps).expect("lmm maps");
    let vdso: Vec<String> = maps
        .lines()
        .filter(|l| {
            ["[vvar]", "[vvar_vclock]", "[vdso]"]
                .iter()
                .any(|n| l.ends_with(n))
        })
        .map(range)
        .collect();
    assert_eq!(vdso.len(), 3, "{maps}");
    (stub, vdso)
}

#[test]
fn the_stub_holds_no_memory_of_lmm() {
    let prog = build("hello");
    // Before the first instruction lmm has mirrored nothing yet: only the
    // trampoline, the chain's window after it (a memfd page of the stub's
    // own, read-only), [vsyscall] (which cannot be unmapped) and the
    // host's vDSO pages, moved to where lmm's maps show them, are there.
    let (stub, vdso) = stub_maps_and_vdso(&prog, "--host-maps-at-start", 3);
    let mut want = vec![
        "00001000-00002000".to_string(),
        "00002000-00003000".to_string(),
    ];
    want.extend(vdso);
    want.push("ffffffffff600000-ffffffffff601000".to_string());
    assert_eq!(stub.lines().map(range).collect::<Vec<_>>(), want, "{stub}");
    let mut lines = stub.lines();
    assert!(lines.next().is_some_and(|l| l.contains(" r-xp ")), "{stub}");
    assert!(
        lines
            .next()
            .is_some_and(|l| l.contains(" r--s ") && l.contains("/memfd:")),
        "{stub}"
    );
}

/// /bin/true's /proc/PID/maps at exit_group on the host, read by gdb
/// (which turns ASLR off, the layout lmm gives).
fn host_maps_at_exit(prog: &str) -> Option<String> {
    let r = Command::new("gdb")
        .args([
            "-q",
            "-batch",
            "-ex",
            "catch syscall exit_group",
            "-ex",
            "run",
            "-ex",
            "python import gdb; print(open('/proc/%d/maps' % gdb.selected_inferior().pid).read())",
            "--args",
            prog,
        ])
        .output()
        .ok()?;
    let maps: String = String::from_utf8_lossy(&r.stdout)
        .lines()
        .filter(|l| {
            l.split('-')
                .next()
                .is_some_and(|a| a.len() >= 8 && u64::from_str_radix(a, 16).is_ok())
        })
        .map(|l| format!("{l}\n"))
        .collect();
    (!maps.is_empty()).then_some(maps)
}

#[test]
fn maps_at_exit_are_the_kernels_for_bin_true() {
    let Some(host) = host_maps_at_exit("/bin/true") else {
        panic!("gdb could not run /bin/true (apt-get install gdb)");
    };
    let maps = scratch().join("true-vs-host.maps");
    let l = native(
        &["--maps-at-exit", maps.to_str().unwrap_or_default()],
        Path::new("/bin/true"),
        &[],
    );
    assert!(l.status.success(), "{}", l.stderr);
    let lmm = std::fs::read_to_string(maps).expect("maps at exit");
    assert_eq!(
        lmm, host,
        "lmm's maps at exit (left) differ from the kernel's (right)"
    );
}

#[test]
fn fork_cow_wait_and_exec_run_like_linux() {
    let prog = build("fork");
    let h = host_median(&prog, &[]);
    let l = native(&[], &prog, &[]);
    assert_eq!(
        l.stdout,
        "child: sum 121856 + 8704, pid new\n\
         parent: child exited 3, own buffer intact\n\
         parent: rewritten, sum 130560\n\
         waitpid with no child left: ECHILD\n\
         execv of a missing file: ENOENT\n\
         exec'd: parent is the forker\n\
         parent: exec'd child exited 5\n",
        "{}",
        l.stderr
    );
    assert_eq!(l.stdout, h.stdout);
    assert_eq!(l.status.code(), Some(0), "{}", l.stderr);
    assert_eq!(h.status.code(), Some(0));
    assert!(l.stderr.contains("  clone 2\n"), "{}", l.stderr);
    assert!(l.stderr.contains("  execve 2\n"), "{}", l.stderr);
    // The whole run's faults (the parent's and its waited-for children's,
    // as wait4's rusage counts them): some 3700, 1024 of them the child's
    // copy-on-write breaks and 1024 the parent's rewrite after it.
    assert!(l.faults > 3000, "{}", l.stderr);
    assert_faults_close(&l, &h, 0);
}

#[test]
fn vfork_and_posix_spawn_run_the_child_and_hold_the_parent() {
    let prog = build("vfork");
    let h = host(&prog, &[]);
    let l = native(&[], &prog, &[]);
    assert_eq!(
        l.stdout, "child runs\nvfork: child exited 4\nchild runs\nposix_spawn: child exited 4\n",
        "{}",
        l.stderr
    );
    assert_eq!(l.stdout, h.stdout);
    assert_eq!(l.status.code(), Some(0), "{}", l.stderr);
}

#[test]
fn a_shell_runs_a_pipeline_and_exits_with_its_status() {
    let sh = Path::new("/bin/sh");
    if !sh.exists() {
        eprintln!("skipped: /bin/sh is not installed");
        return;
    }
    let script = ["-c", "echo a; echo b | cat; ls / | wc -l; exit 7"];
    let h = host(sh, &script);
    let l = native(&[], sh, &script);
    assert!(l.stdout.starts_with("a\nb\n"), "{}", l.stderr);
    assert_eq!(l.stdout, h.stdout, "{}", l.stderr);
    assert_eq!(l.status.code(), Some(7), "{}", l.stderr);
    assert_eq!(h.status.code(), Some(7));
    assert!(l.stderr.contains("  wait4 "), "{}", l.stderr);
}

#[test]
fn a_shell_waits_for_a_background_job_and_catches_a_signal() {
    let sh = Path::new("/bin/sh");
    if !sh.exists() {
        eprintln!("skipped: /bin/sh is not installed");
        return;
    }
    // `wait` may sleep in rt_sigsuspend until SIGCHLD; the trap's handler
    // runs on a stack lmm prepared and returns through rt_sigreturn.
    let script = [
        "-c",
        "/bin/sleep 0 & wait; echo waited $?; trap 'echo got' USR1; kill -USR1 $$; echo after",
    ];
    let h = host(sh, &script);
    let l = native(&[], sh, &script);
    assert_eq!(l.stdout, "waited 0\ngot\nafter\n", "{}", l.stderr);
    assert_eq!(l.stdout, h.stdout);
    assert_eq!(l.status.code(), Some(0), "{}", l.stderr);
}

/// tests/native/sigchld.c: a SIGCHLD handler sees CLD_EXITED or
/// CLD_KILLED, the child's pid and its status, once per child; a signal
/// from kill, tgkill or sigqueue names its sender by the pid the receiver
/// knows (lmm's, not the stub's host pid); with SIGCHLD ignored, or
/// given SA_NOCLDWAIT, children are reaped as they exit and a wait ends
/// with ECHILD (with SA_NOCLDWAIT the SIGCHLD still comes, with its own
/// child's status).
#[test]
fn a_signal_names_its_sender_and_sigchld_its_child_like_linux() {
    let prog = build("sigchld");
    let h = host(&prog, &[]);
    assert!(
        h.stdout
            .contains("SIGCHLD 1: code 2, from the child yes, status 15\n")
            && h.stdout.contains("SIGCHLDs: 3\n")
            && h.stdout.contains("tgkill self: code -6, from me yes\n")
            && h.stdout.contains("SIG_IGN: wait -1 No child processes\n"),
        "the host's own run: {}",
        h.stdout
    );
    runs_like_the_host(&[], &prog, &[], &h);
}

#[test]
fn waitid_reports_exited_and_killed_children_like_linux() {
    let prog = build("waitid");
    let h = host(&prog, &[]);
    let l = native(&[], &prog, &[]);
    // WNOWAIT leaves the child for the reaping call; a SIGTERM'd child is
    // CLD_KILLED (2) with status 15; WNOHANG with a live child zeroes.
    assert!(
        l.stdout.starts_with(
            "nowait: ret=0 signo=17 code=1 status=7 pid_ok=1\n\
             reaped: ret=0 signo=17 code=1 status=7 pid_ok=1\n\
             rusage minflt>=16: 1\n\
             killed: ret=0 signo=17 code=2 status=15 pid_ok=1\n\
             nohang: ret=0 signo=0 code=0 status=0 pid_ok=1\n"
        ),
        "{}\n{}",
        l.stdout,
        l.stderr
    );
    assert_eq!(l.stdout, h.stdout, "{}", l.stderr);
    assert_eq!(l.status.code(), Some(0), "{}", l.stderr);
    assert!(l.stderr.contains("  waitid 8\n"), "{}", l.stderr);
}

#[test]
fn execveat_runs_a_program_by_directory_or_own_descriptor_like_linux() {
    let prog = build("execveat");
    let h = host(&prog, &[]);
    let l = native(&[], &prog, &[]);
    // AT_EXECFN is Linux's /dev/fd/N/NAME (relative to a directory
    // descriptor) or /dev/fd/N (AT_EMPTY_PATH).
    assert!(
        l.stdout.starts_with(
            "child 3: argv0=execveat-child execfn=/dev/fd/3/execveat\n\
             child 3 exited 3\n\
             child 4: argv0=execveat-child execfn=/dev/fd/4\n\
             child 4 exited 4\n"
        ),
        "{}\n{}",
        l.stdout,
        l.stderr
    );
    assert!(
        l.stdout
            .ends_with("symlink nofollow: ret=-1 errno=Too many levels of symbolic links\n"),
        "{}",
        l.stdout
    );
    assert_eq!(l.stdout, h.stdout, "{}", l.stderr);
    assert_eq!(l.status.code(), Some(0), "{}", l.stderr);
}

/// tests/native/threads.c built as the brief of threads asks
/// (`-pthread`), static or dynamically linked.
fn build_threads(dynamic: bool) -> PathBuf {
    if dynamic {
        build_as("threads", "threads-dyn", &["-O1", "-pthread"])
    } else {
        build_as("threads", "threads", &["-static", "-O1", "-pthread"])
    }
}

/// What threads.c prints for `mib` MiB per thread: the Threads: line
/// read while its five threads live, each thread's sum of every 64th
/// byte of its buffer (byte i of thread t is i * (t + 1) + t), and the
/// counter the threads added to under the mutex (10000 times t + 1 each).
fn threads_output(mib: u64) -> String {
    let mut s = String::from("Threads:\t5\n");
    for t in 0..4u64 {
        let sum: u64 = (0..(mib << 20))
            .step_by(64)
            .map(|i| (i * (t + 1) + t) & 0xff)
            .sum();
        s += &format!("thread {t}: sum {sum}\n");
    }
    s + "counter 100000\n"
}

#[test]
fn threads_run_in_one_address_space_and_fault_like_linux() {
    let prog = build_threads(false);
    let h = host_median(&prog, &[]);
    assert_eq!(h.stdout, threads_output(4), "the host's own run");
    let l = native(&[], &prog, &[]);
    assert_eq!(l.stdout, h.stdout, "{}", l.stderr);
    assert_eq!(l.status.code(), Some(0), "{}", l.stderr);
    // Four threads' 4 MiB buffers: about 4100 faults, all counted for the
    // one process (each thread's are its group's in wait4's rusage).
    assert!(l.faults > 4096, "{}", l.stderr);
    assert_faults_close(&l, &h, 6);
    assert!(l.stderr.contains("  clone 4\n"), "{}", l.stderr);
}

#[test]
fn a_dynamically_linked_threaded_program_runs_like_linux() {
    let prog = build_threads(true);
    let h = host_median(&prog, &[]);
    let l = native(&["--warm-cache"], &prog, &[]);
    assert_eq!(l.stdout, h.stdout, "{}", l.stderr);
    assert_eq!(l.stdout, threads_output(4), "{}", l.stderr);
    assert_eq!(l.status.code(), Some(0), "{}", l.stderr);
    assert!(l.stderr.contains("major faults: 0\n"), "{}", l.stderr);
    assert_faults_close(&l, &h, 6);
}

#[test]
fn a_main_thread_that_exits_first_leaves_the_others_running() {
    let prog = build_threads(false);
    // pthread_exit in main: the leader's exit(2) is held while the other
    // threads run; thread 0 joins the rest and prints, and the last
    // thread's exit_group ends the process with status 0.
    let h = host_median(&prog, &["4", "main-exits"]);
    let l = native(&[], &prog, &["4", "main-exits"]);
    assert_eq!(h.stdout, threads_output(4), "the host's own run");
    assert_eq!(l.stdout, h.stdout, "{}", l.stderr);
    assert_eq!(l.status.code(), Some(0), "{}", l.stderr);
    assert!(l.stderr.contains("  exit_group 1\n"), "{}", l.stderr);
    assert_faults_close(&l, &h, 6);
}

#[test]
fn what_threads_still_lack_is_refused_with_a_message_not_a_hang() {
    let prog = build_as(
        "threads_refused",
        "threads_refused",
        &["-static", "-O1", "-pthread"],
    );
    let l = native(&[], &prog, &[]);
    assert_eq!(
        l.stdout,
        "clone CLONE_VM: -1 Function not implemented\n\
         done\n",
        "{}",
        l.stderr
    );
    assert_eq!(l.status.code(), Some(0), "{}", l.stderr);
    let line = "lmm native: clone with CLONE_VM or CLONE_SIGHAND but not CLONE_THREAD";
    assert!(l.stderr.contains(line), "{}", l.stderr);
}

/// tests/native/threads_proc.c: /proc/self/task lists lmm's three tids,
/// task/TID/stat and status are each thread's (its tid, its own faults,
/// exit_signal -1 for a thread), task/TID/maps the process's,
/// /proc/thread-self the caller's, pthread_setname_np reaches the thread's
/// comm: the host's output.
#[test]
fn threads_see_their_own_proc_task_files_like_linux() {
    let prog = build_as(
        "threads_proc",
        "threads_proc",
        &["-static", "-O1", "-pthread"],
    );
    let h = host(&prog, &[]);
    assert!(
        h.stdout.starts_with("task entries 3, the three tids 3\n"),
        "the host's own run: {}",
        h.stdout
    );
    let l = native(&[], &prog, &[]);
    assert_eq!(l.stdout, h.stdout, "{}", l.stderr);
    assert_eq!(l.status.code(), Some(0), "{}", l.stderr);
}

/// tests/native/threads_exec.c: execve from a thread while others sleep
/// in a host call and spin in their own code, from the main thread, and
/// from a thread after main's pthread_exit: the other threads end, the
/// pid is kept and is the new image's tid, `Threads:\t1`, the exec'ing
/// thread's signal mask kept, a failed exec first leaving every thread
/// running; the host's output and exit status (7), and its faults.
#[test]
fn execve_in_a_threaded_process_ends_the_other_threads_like_linux() {
    let prog = build_as(
        "threads_exec",
        "threads_exec",
        &["-static", "-O1", "-pthread"],
    );
    for mode in ["thread", "leader", "main-exits"] {
        let h = host_median(&prog, &[mode]);
        assert_eq!(h.status.code(), Some(7), "the host's own run: {}", h.stderr);
        assert!(h.stdout.contains("Threads:\t1\n"), "{}", h.stdout);
        let l = native(&[], &prog, &[mode]);
        assert_eq!(l.stdout, h.stdout, "{mode}: {}", l.stderr);
        assert_eq!(l.status.code(), Some(7), "{mode}: {}", l.stderr);
        assert!(l.stderr.contains("  execve 2\n"), "{mode}: {}", l.stderr);
        assert_faults_close(&l, &h, 6);
    }
}

/// tests/native/events.c: poll, select, epoll, eventfd, timerfd,
/// signalfd, socket calls and close_range, each buffer on a page the stub
/// does not have at the call (lmm's table must fault it in, or the host
/// says EFAULT), and a thread in epoll_wait without a timeout, then in
/// timed epoll_wait, epoll_pwait2 and sigtimedwait, while the main thread
/// forks (lmm stops it for each fork: each wait must go on for its whole
/// time, as on Linux, where the thread was never stopped): the host's
/// output, no call refused.
#[test]
fn event_and_socket_calls_fault_in_their_buffers_like_linux() {
    let prog = build_as("events", "events", &["-static", "-O1", "-pthread"]);
    let h = host(&prog, &[]);
    assert!(
        h.stdout.contains("waiter: 1 event, data 7\n")
            && h.stdout.contains("timed epoll_wait: 0, whole time 1\n")
            && h.status.success(),
        "the host's own run: {}{}",
        h.stdout,
        h.stderr
    );
    runs_like_the_host(&[], &prog, &[], &h);
}

/// tests/native/files.c: the file, credential and priority calls of
/// shells, cp and python's multiprocessing (link, symlink, rename and
/// renameat2, chmod, chown, truncate, creat, utimensat, getdents, the
/// xattr calls, sendfile, copy_file_range, splice, flock, times,
/// getgroups, getresuid, getpriority and setpriority by lmm's pid, prctl
/// PR_CAPBSET_READ), each buffer on a page the stub does not have at the
/// call, and mappings of files without a name (O_TMPFILE, unlinked after
/// the open: lmm opens them through the descriptor, and its maps show
/// them "(deleted)"): the host's output, no call refused.
#[test]
fn file_and_credential_calls_run_like_linux() {
    let prog = build_as("files", "files", &["-static", "-O1"]);
    let dir = |who: &str| scratch().join(format!("files-{who}"));
    let (hd, ld) = (dir("host"), dir("lmm"));
    let h = host(&prog, &[hd.to_str().unwrap()]);
    assert!(
        h.stdout.contains("getdents: a c e f t\n")
            && h.stdout
                .contains("maps: 2 deleted files of the directory\n")
            && h.status.success(),
        "the host's own run: {}{}",
        h.stdout,
        h.stderr
    );
    runs_like_the_host(&[], &prog, &[ld.to_str().unwrap()], &h);
}

/// tests/native/ahead.c: fresh anonymous memory written page after page
/// is handed out ahead (crates/native/src/ahead.rs), yet each phase takes
/// the faults Linux takes (the program prints its getrusage counts: one
/// per page written first, a zero-page read fault per page read first and
/// another when it is written after a system call), what it wrote is
/// there and nothing else (checksums, a munmap while pages are handed out,
/// a write(2) from such a page), getrusage's faults and peak RSS are
/// lmm's for RUSAGE_SELF, RUSAGE_THREAD and RUSAGE_CHILDREN with the
/// host's EINVAL and EFAULT for a bad `who` or buffer, and lmm stops far
/// fewer times than the program faults (without fault-ahead each fault is
/// a stop).
#[test]
fn fault_ahead_takes_the_faults_linux_takes_with_fewer_stops() {
    // Fault-ahead needs UFFD_FEATURE_WP_ASYNC and PAGEMAP_SCAN (Linux
    // 6.7); on an older host lmm runs without it.
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut v = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    if (v.next().unwrap_or(0), v.next().unwrap_or(0)) < (6, 7) {
        eprintln!(
            "skipped: fault-ahead needs Linux 6.7, this host runs {}",
            release.trim()
        );
        return;
    }
    let prog = build("ahead");
    let h = host(&prog, &[]);
    assert!(
        h.stdout.contains("written in order: 256 faults\n")
            && h.stdout.contains("two written, four read: 6 faults\n")
            && h.stdout.contains("a read page written: 1 faults\n")
            && h.stdout
                .contains("children's faults hold its 64 copies: 1\n")
            && h.stdout.contains("bad who: -1 1\nbad buffer: -1 1\n"),
        "the host's own run: {}",
        h.stdout
    );
    let stops = |r: &Ran| -> u64 {
        r.stderr
            .lines()
            .find_map(|s| {
                s.strip_prefix("ptrace stops: ")?
                    .split(' ')
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no stops line: {}", r.stderr))
    };
    let l = native(&[], &prog, &[]);
    assert_eq!(l.stdout, h.stdout, "{}", l.stderr);
    assert_eq!(l.status.code(), Some(0), "{}", l.stderr);
    // Every fault taken at its touch, one stop each: the same faults in
    // all (the program's pages only read are read faults both ways), and
    // more stops than faults.
    let each = native(&["--no-fault-ahead"], &prog, &[]);
    assert_eq!(each.stdout, h.stdout, "{}", each.stderr);
    assert!(stops(&each) > each.faults, "{}", each.stderr);
    // The 256 pages written in order alone save some 200 stops.
    assert!(
        stops(&l) + 150 < stops(&each),
        "{} stops with fault-ahead, {} without:\n{}\n{}",
        stops(&l),
        stops(&each),
        l.stderr,
        each.stderr
    );
    assert_eq!(l.faults, each.faults, "{}\n{}", l.stderr, each.stderr);
}

/// tests/native/pgrp.c: process groups and sessions are lmm's (setpgid,
/// getpgid, getpgrp, setsid, getsid and their ESRCH, EPERM, EACCES and
/// EINVAL; kill of a group; wait4 of a group and of the caller's; waitid
/// P_PGID): the host's output.
#[test]
fn process_groups_and_sessions_run_like_linux() {
    let prog = build("pgrp");
    let h = host(&prog, &[]);
    assert!(
        h.stdout
            .contains("setpgid of a child that exec'd: -1 Permission denied\n")
            && h.stdout
                .contains("wait4 of its group: the child 1, killed by 15\n"),
        "the host's own run: {}",
        h.stdout
    );
    runs_like_the_host(&[], &prog, &[], &h);
}

/// tests/native/timers.c: POSIX timers (SIGEV_SIGNAL counted by a
/// handler, each tick with the timer's siginfo while the program forks,
/// overruns, glibc's SIGEV_THREAD, SIGEV_THREAD_ID naming one
/// thread and tids that are none of the process's, settime's old value,
/// gettime, delete then EINVAL, a timer deleted by exec) and
/// sendmmsg/recvmmsg (names, iovecs and SCM_RIGHTS across pages, msg_len,
/// a bad element, recvmmsg's timeout), each buffer on a page the stub does
/// not have at the call: the host's output, no call refused.
#[test]
fn posix_timers_and_mmsg_calls_run_like_linux() {
    let prog = build_as("timers", "timers", &["-static", "-O1", "-pthread"]);
    let h = host(&prog, &[]);
    assert!(
        h.stdout
            .contains("taken by the named thread 1, not main 1\n")
            && h.stdout.contains("sendmmsg: 3, msg_len 11 5 5\n")
            && h.stdout
                .ends_with("after exec, the old timer: -1 Invalid argument\n")
            && h.status.success(),
        "the host's own run: {}{}",
        h.stdout,
        h.stderr
    );
    runs_like_the_host(&[], &prog, &[], &h);
}

/// python3's threads running subprocesses (vfork, close_range, poll,
/// pipes from several threads) and asyncio (epoll, a socketpair, FIONBIO,
/// a subprocess and a thread pool): the host's output.
#[test]
fn python_threads_and_asyncio_run_like_linux() {
    // Four threads run five subprocesses each: their forks stop the
    // others' timed futex waits, again and again (restart_syscall of a
    // restart_syscall).
    let threads = "import threading, subprocess\n\
        out = []\n\
        def work(i):\n    \
            for j in range(5):\n        \
                r = subprocess.run(['/bin/echo', str(i), str(j)], capture_output=True, text=True)\n        \
                out.append(r.stdout.strip())\n\
        ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]\n\
        for t in ts: t.start()\n\
        for t in ts: t.join()\n\
        print(len(out), sorted(out) == sorted(f'{i} {j}' for i in range(4) for j in range(5)))\n";
    let asyncio = "import asyncio\n\
        async def main():\n    \
            p = await asyncio.create_subprocess_exec('/bin/echo', 'x', stdout=asyncio.subprocess.PIPE)\n    \
            out, _ = await p.communicate()\n    \
            await asyncio.sleep(0.01)\n    \
            r = await asyncio.get_running_loop().run_in_executor(None, sum, range(10))\n    \
            print(out, r, p.returncode)\n\
        asyncio.run(main())\n";
    for (script, want) in [(threads, "20 True\n"), (asyncio, "b'x\\n' 45 0\n")] {
        let py = Path::new("/usr/bin/python3");
        let h = host(py, &["-c", script]);
        assert_eq!(h.stdout, want, "the host's own run: {}", h.stderr);
        runs_like_the_host(&["--warm-cache"], py, &["-c", script], &h);
    }
}

#[test]
fn a_thread_dying_of_sigsegv_kills_its_process_like_linux() {
    let prog = build_as(
        "threads_segv",
        "threads_segv",
        &["-static", "-O1", "-pthread"],
    );
    for args in [&[][..], &["main-exits"][..]] {
        let h = host(&prog, args);
        assert_eq!(h.status.signal(), Some(libc::SIGSEGV), "the host's own run");
        let l = native(&[], &prog, args);
        assert_eq!(
            l.status.signal(),
            Some(libc::SIGSEGV),
            "{args:?}: {}",
            l.stderr
        );
        assert!(
            l.stderr.contains("was killed by signal 11"),
            "{args:?}: {}",
            l.stderr
        );
    }
}

#[test]
fn threads_swapping_on_a_small_machine_keep_their_sums() {
    let prog = build_threads(false);
    // Four threads write 20 MiB each (80 MiB) on a 64 MiB machine: reclaim
    // takes pages of one thread while the others run. lmm stops every
    // running thread of the address space before work that can reclaim
    // and unmaps the stale mirrors, which all threads share, before any
    // of them runs again; a thread sleeping in a host futex is stopped
    // and its call made again. A frame reused under a running thread
    // would change a sum or kill the program. Three runs.
    for run in 0..3 {
        let l = native_on(&["--ram", "64M", "--swap", "256M"], &[], &prog, &["20"]);
        assert_eq!(l.stdout, threads_output(20), "run {run}:\n{}", l.stderr);
        assert!(l.status.success(), "run {run}:\n{}", l.stderr);
        let outs: u64 = l
            .stderr
            .lines()
            .find_map(|s| s.strip_prefix("swap-outs:")?.trim().parse().ok())
            .unwrap_or(0);
        assert!(outs > 1000, "run {run}: no pressure\n{}", l.stderr);
    }
}

#[test]
fn a_forked_childs_stub_holds_only_mirrors() {
    let prog = build("fork");
    let (stub, vdso) = stub_maps_and_vdso(&prog, "--host-maps-at-fork", 0);
    // The trampoline, the chain's window, [vsyscall], the vDSO where
    // lmm's maps put it, and frames of lmm's RAM shared with the parent
    // (read-only: the copy-on-write pages), nothing else.
    let mut mirrors = 0;
    for line in stub.lines() {
        let r = range(line);
        if ["00001000-00002000", "00002000-00003000"].contains(&r.as_str())
            || r == "ffffffffff600000-ffffffffff601000"
            || vdso.contains(&r)
        {
            continue;
        }
        assert!(line.contains("/memfd:lmm-ram"), "{line}\n{stub}");
        let perms = line.split_whitespace().nth(1).unwrap_or("");
        assert!(!perms.contains('w'), "a writable mirror after fork: {line}");
        mirrors += 1;
    }
    assert!(mirrors > 0, "{stub}");
}

#[test]
fn environment_flags_reach_the_program() {
    let prog = build("env");
    let l = native(
        &["--clear-env", "--env", "LMM_X=1", "--env", "B=two"],
        &prog,
        &[],
    );
    assert_eq!(l.stdout, "LMM_X=1\nB=two\n", "{}", l.stderr);
    assert!(l.status.success(), "{}", l.stderr);
}

/// A dynamically linked host program run both ways with lmm's page cache
/// warm (as the host's is): the same output and status, and faults within
/// 5% of the kernel's (or 6 faults for a program that takes a hundred).
/// A program missing on this host is skipped, visibly.
fn dynamic(args: &[&str]) {
    let prog = Path::new(args[0]);
    if !prog.exists() {
        eprintln!("skipped: {} is not installed", args[0]);
        return;
    }
    let h = host_median(prog, &args[1..]);
    let l = native(&["--warm-cache"], prog, &args[1..]);
    assert_eq!(l.stdout, h.stdout, "{}", l.stderr);
    assert_eq!(l.status.code(), h.status.code(), "{}", l.stderr);
    assert!(l.stderr.contains("major faults: 0\n"), "{}", l.stderr);
    assert_faults_close(&l, &h, 6);
}

#[test]
fn dynamically_linked_coreutils_run_through_lmms_page_cache() {
    let readme = root().join("README.md");
    let readme = readme.to_str().unwrap_or_default();
    dynamic(&["/bin/true"]);
    dynamic(&["/bin/echo", "hi", "there"]);
    dynamic(&["/bin/ls", "-la", "/usr"]);
    dynamic(&["/bin/cat", readme]);
    dynamic(&["/usr/bin/sort", readme]);
    dynamic(&["/bin/gzip", "-c", readme]);
}

#[test]
fn python_and_perl_workloads_fault_like_linux() {
    dynamic(&[
        "/usr/bin/python3",
        "-c",
        "print(sum(len(str(i)) for i in list(range(200000))))",
    ]);
    dynamic(&[
        "/usr/bin/perl",
        "-e",
        "my %h; $h{$_} = $_ * 2 for 1..100000; print scalar(keys %h), \"\\n\"",
    ]);
}

/// sqlite3 builds a 20000-row table in memory. Its text and read-only
/// data take some 10 faults more under lmm than on our 6.18 host (smaps
/// at exit: the host has more of libm's and libreadline's text mapped,
/// as if its fault-around mapped more per fault; large folios in the
/// host's page cache are the likely cause, not verified): the workload's
/// own faults keep the total within 5%.
#[test]
fn sqlite3_and_a_static_busybox_run_like_on_linux() {
    dynamic(&[
        "/usr/bin/sqlite3",
        ":memory:",
        "create table t(a, b); with recursive c(x) as (select 1 union all select x + 1 \
         from c where x < 20000) insert into t select x, hex(x) from c; \
         create index i on t(b); select count(*), sum(a), max(b) from t where a % 7 = 3;",
    ]);
    // Debian's busybox-static: a static binary whose applets prctl
    // their name.
    let readme = root().join("README.md");
    let readme = readme.to_str().unwrap_or_default();
    dynamic(&["/bin/busybox", "echo", "hi", "there"]);
    dynamic(&["/bin/busybox", "ls", "/"]);
    dynamic(&["/bin/busybox", "sort", readme]);
}

#[test]
fn a_dynamic_programs_maps_at_exit_show_its_libraries() {
    let maps = scratch().join("true.maps");
    let l = native(
        &["--maps-at-exit", maps.to_str().unwrap_or_default()],
        Path::new("/bin/true"),
        &[],
    );
    assert!(l.status.success(), "{}", l.stderr);
    let maps = std::fs::read_to_string(maps).expect("maps at exit");
    for want in [
        "/usr/bin/true",
        "libc.so.6",
        "ld-linux-x86-64.so.2",
        "[stack]",
        "[vdso]",
    ] {
        assert!(maps.contains(want), "no {want} in\n{maps}");
    }
}

#[test]
fn a_program_larger_than_ram_swaps_and_completes_intact() {
    let prog = build("touch");
    // 72 MiB written on a 64 MiB machine: pages go to swap and come back
    // (reclaimed pages are unmapped from the stub and fault back in); a
    // page that came back wrong would change the sum.
    let l = native_on(&["--ram", "64M", "--swap", "256M"], &[], &prog, &["72"]);
    assert_eq!(l.stdout, "pages=18432 sum=2350080\n", "{}", l.stderr);
    assert!(l.status.success(), "{}", l.stderr);
    let count = |name: &str| -> u64 {
        l.stderr
            .lines()
            .find_map(|s| s.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0)
    };
    assert!(count("swap-outs:") > 1000, "{}", l.stderr);
    assert!(count("swap-ins:") > 1000, "{}", l.stderr);
}

#[test]
fn a_shell_held_in_wait4_survives_its_child_swapping() {
    let sh = Path::new("/bin/sh");
    if !sh.exists() {
        eprintln!("skipped: /bin/sh is not installed");
        return;
    }
    let prog = build("touch");
    // The child writes 72 MiB on a 64 MiB machine while the shell waits
    // in wait4: lmm may reclaim the shell's pages too, and its stale
    // mirrors are then unmapped before it runs again; the shell then forks
    // and execs once more.
    let script = format!("{0} 72; echo fg $?; {0} 1", prog.display());
    let l = native_on(
        &["--ram", "64M", "--swap", "256M"],
        &[],
        sh,
        &["-c", &script],
    );
    assert_eq!(
        l.stdout, "pages=18432 sum=2350080\nfg 0\npages=256 sum=32640\n",
        "{}",
        l.stderr
    );
    assert!(l.status.success(), "{}", l.stderr);
}

#[test]
fn two_processes_swapping_at_once_keep_their_pages_intact() {
    let sh = Path::new("/bin/sh");
    if !sh.exists() {
        eprintln!("skipped: /bin/sh is not installed");
        return;
    }
    let prog = build("touch");
    // Two programs of 24 MiB each run at once on a 32 MiB machine, so
    // reclaim takes pages from one while the other runs: lmm stops every
    // other running stub before work that can reclaim, and each drops its
    // stale mirrors before it runs again. A frame reused under a stub that
    // still mapped it would change a sum or kill the program (this died of
    // SIGSEGV before). Ten runs; whichever interleaving each gets, the
    // outcome must be the same.
    let script = format!(
        "{0} 24 & p=$!; {0} 24; echo fg $?; wait $p; echo bg $?",
        prog.display()
    );
    for run in 0..10 {
        let l = native_on(
            &["--ram", "32M", "--swap", "128M"],
            &[],
            sh,
            &["-c", &script],
        );
        // The background job's line may come before or after `fg 0`.
        let mut lines: Vec<&str> = l.stdout.lines().collect();
        lines.sort_unstable();
        assert_eq!(
            lines,
            [
                "bg 0",
                "fg 0",
                "pages=6144 sum=783360",
                "pages=6144 sum=783360"
            ],
            "run {run}:\n{}",
            l.stderr
        );
        assert!(l.status.success(), "run {run}:\n{}", l.stderr);
        let outs: u64 = l
            .stderr
            .lines()
            .find_map(|s| s.strip_prefix("swap-outs:")?.trim().parse().ok())
            .unwrap_or(0);
        assert!(outs > 1000, "run {run}: no pressure\n{}", l.stderr);
    }
}

/// The value of the `key` line (`MemTotal:`, `VmRSS:`) of `text`, in kB.
fn kb_field(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(key)?
                .trim()
                .strip_suffix(" kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {key} line in\n{text}"))
}

#[test]
fn the_program_reads_lmms_proc_files_not_the_hosts() {
    let prog = build("proc");
    let dir = scratch();
    let (maps, status) = (dir.join("proc.maps"), dir.join("proc.status"));
    let l = native_on(
        &["--ram", "256M"],
        &[
            "--maps-at-exit",
            maps.to_str().unwrap_or_default(),
            "--status-at-exit",
            status.to_str().unwrap_or_default(),
        ],
        &prog,
        &[],
    );
    assert!(l.status.success(), "{}", l.stderr);
    let h = host(&prog, &[]);
    assert!(h.status.success(), "{}", h.stderr);
    // pagemap: the written page is present with a PFN of lmm's 256 MiB
    // (65536 frames), the untouched one is neither present nor swapped.
    for out in [&l.stdout, &h.stdout] {
        assert!(
            out.starts_with("touched present=1 pfn_nonzero=1\n"),
            "{out}"
        );
        assert!(out.contains("\nuntouched present=0 swapped=0\n"), "{out}");
    }
    let pfn = |out: &str| -> u64 {
        out.lines()
            .find_map(|s| s.strip_prefix("touched pfn=")?.parse().ok())
            .unwrap_or_else(|| panic!("no pfn line in\n{out}"))
    };
    assert!(pfn(&l.stdout) < 65536, "{}", l.stdout);
    // maps: nothing is mapped after the read, so they are lmm's at exit.
    let printed: String = l
        .stdout
        .lines()
        .filter(|s| {
            s.split('-')
                .next()
                .is_some_and(|a| a.len() >= 8 && u64::from_str_radix(a, 16).is_ok())
        })
        .map(|s| format!("{s}\n"))
        .collect();
    let at_exit = std::fs::read_to_string(&maps).expect("maps at exit");
    assert_eq!(printed, at_exit);
    // meminfo: the machine's, as `lmm --ram 256M proc meminfo` prints it,
    // not the host's.
    let r = Command::new(env!("CARGO_BIN_EXE_lmm"))
        .args(["--ram", "256M", "proc", "meminfo"])
        .output()
        .expect("lmm proc meminfo");
    let machine = kb_field(&String::from_utf8_lossy(&r.stdout), "MemTotal:");
    assert_eq!(kb_field(&l.stdout, "MemTotal:"), machine);
    let host_total = kb_field(
        &std::fs::read_to_string("/proc/meminfo").expect("meminfo"),
        "MemTotal:",
    );
    assert_eq!(kb_field(&h.stdout, "MemTotal:"), host_total);
    assert_ne!(
        machine, host_total,
        "the host has 256 MiB: the test proves nothing"
    );
    // status, read last: lmm's VmRSS then, at most the few pages exit
    // touches below the one at exit_group.
    let exit_rss = kb_field(&std::fs::read_to_string(&status).expect("status"), "VmRSS:");
    let read_rss = kb_field(&l.stdout, "VmRSS:");
    assert!(
        read_rss <= exit_rss && read_rss + 16 >= exit_rss,
        "VmRSS read {read_rss} kB, at exit {exit_rss} kB"
    );
}

/// /proc/self/smaps split into its VMAs' blocks (header line and fields).
fn smaps_blocks(text: &str) -> Vec<String> {
    let mut blocks: Vec<String> = Vec::new();
    for l in text.lines() {
        if !l
            .split_whitespace()
            .next()
            .is_some_and(|f| f.ends_with(':'))
        {
            blocks.push(String::new());
        }
        if let Some(b) = blocks.last_mut() {
            b.push_str(l);
            b.push('\n');
        }
    }
    blocks
}

#[test]
fn smaps_read_by_the_program_are_the_kernels_vma_by_vma() {
    let prog = build("proc");
    // Written back, so that the host's page cache holds its pages clean
    // (a freshly written file's pages are Dirty in the host's smaps).
    std::fs::File::open(&prog)
        .and_then(|f| f.sync_all())
        .expect("sync the program");
    let p = prog.to_str().unwrap_or_default();
    // ASLR off: the layout lmm gives.
    let h = host(Path::new("setarch"), &["-R", p, "smaps"]);
    assert!(h.status.success(), "setarch -R: {}", h.stderr);
    let l = native(&["--warm-cache"], &prog, &["smaps"]);
    assert!(l.status.success(), "{}", l.stderr);
    let (hb, lb) = (smaps_blocks(&h.stdout), smaps_blocks(&l.stdout));
    assert_eq!(hb.len(), lb.len(), "{}\n{}", h.stdout, l.stdout);
    assert!(hb.len() > 8, "{}", h.stdout);
    for (hv, lv) in hb.iter().zip(&lb) {
        if hv.lines().next().is_some_and(|h| h.ends_with("[vdso]")) {
            // The host's vDSO runs in the stub without being lmm's pages:
            // lmm's [vdso] has no Rss where the host's has the page used.
            assert!(lv.contains("\nRss:                   0 kB\n"), "{lv}");
            continue;
        }
        assert_eq!(lv, hv, "lmm's VMA (left) differs from the kernel's (right)");
    }
}

/// The sha256 of a file the test made, in hex.
fn sha256_of(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Runs tests/native/shfile.c with `args` after a fresh directory, once on
/// the host and once under `lmm [machine] native`, each in a directory of
/// its own; asserts the same stdout, exit status 0 and the same bytes left
/// in the file (by sha256). Returns lmm's run.
fn shfile_both(name: &str, machine: &[&str], args: &[&str]) -> Ran {
    let prog = build("shfile");
    let dirs = ["host", "lmm"].map(|side| {
        let d = scratch().join(format!("{name}-{side}"));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("test directory");
        d
    });
    let with_dir = |d: &Path| -> Vec<String> {
        std::iter::once(d.to_string_lossy().into_owned())
            .chain(args.iter().map(|s| s.to_string()))
            .collect()
    };
    let (ha, la) = (with_dir(&dirs[0]), with_dir(&dirs[1]));
    let h = host(&prog, &ha.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(h.status.success(), "host run: {}", h.stderr);
    let l = native_on(
        machine,
        &[],
        &prog,
        &la.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert!(l.status.success(), "{}", l.stderr);
    assert_eq!(l.stdout, h.stdout, "{}", l.stderr);
    assert_eq!(
        sha256_of(&dirs[1].join("shfile.dat")),
        sha256_of(&dirs[0].join("shfile.dat")),
        "the file lmm's run left (left) differs from the host's (right)"
    );
    l
}

#[test]
fn a_shared_writable_file_mapping_and_the_files_system_calls_agree_like_linux() {
    let l = shfile_both("shfile", &[], &[]);
    // Each step is seen by the other side, as with Linux's one page cache.
    for want in [
        "msync: read() sees the stores: 1",
        "store: read() sees it: 1",
        "pwrite: the mapping sees it: 1",
        "write: the mapping sees it: 1, neighbours kept: 1",
        "fork: the child's store is in the file: 1, its pwrite in the mapping: 1",
        "fsync: the file has the store: 1",
        "grown to 12342: tail seen: 1, zero after: 1, same page as p: 1",
        "truncated: p[2 pages] gives SIGBUS",
        "truncated: q[3 pages] gives SIGBUS",
        "truncated: past the end in the last page: signal 0, byte 0",
        "truncated: kept before the end: 1",
        "munmap: the file has the store: 1",
        "final: 6144 bytes",
    ] {
        assert!(l.stdout.contains(want), "no {want:?} in\n{}", l.stdout);
    }
}

#[test]
fn a_shared_file_mapping_larger_than_ram_is_written_back_by_reclaim_intact() {
    // 96 MiB of a shared file mapping written on a 64 MiB machine: reclaim
    // must write its dirty pages to the file (pageout through writepage)
    // to free them, and read() then sees every byte the program stored.
    let l = shfile_both(
        "shfile-big",
        &["--ram", "64M", "--swap", "256M"],
        &["big", "96"],
    );
    assert_eq!(
        l.stdout,
        "big 96 MiB: read back 100663296 bytes, 0 differ, sum matches\n"
    );
    // The program printed lmm's /proc/vmstat on its stderr.
    let count = |name: &str| -> u64 {
        l.stderr
            .lines()
            .find_map(|s| s.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0)
    };
    assert!(count("nr_vmscan_write ") > 10_000, "{}", l.stderr);
    assert!(count("pgsteal_file ") > 10_000, "{}", l.stderr);
}
