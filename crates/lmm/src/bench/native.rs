//! `lmm bench native`: real programs under `lmm native --warm-cache`
//! against their plain run on the host, measured in the same run, and where
//! lmm's time goes (ptrace stops, system calls lmm injects into the stub,
//! mirrors, lmm's own fault path), and the floor of the technique on this
//! host (`native::floor`): the ratio lmm would have if it added nothing,
//! and the one gVisor's systrap design (not built) would have at best.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use machine::{Machine, MachineConfig};

/// A program of the list: its label and argv (`{FILE}` is the
/// bench's input file).
const PROGRAMS: &[(&str, &[&str])] = &[
    ("true", &["/bin/true"]),
    ("busybox sort", &["/bin/busybox", "sort", "{FILE}"]),
    ("ls -la /usr", &["/bin/ls", "-la", "/usr"]),
    ("cat", &["/bin/cat", "{FILE}"]),
    ("sort", &["/usr/bin/sort", "{FILE}"]),
    ("gzip -c", &["/bin/gzip", "-c", "{FILE}"]),
    (
        "python3 list",
        &[
            "/usr/bin/python3",
            "-c",
            "print(sum(len(str(i)) for i in list(range(200000))))",
        ],
    ),
    (
        "perl hash",
        &[
            "/usr/bin/perl",
            "-e",
            "my %h; $h{$_} = $_ * 2 for 1..100000; print scalar(keys %h), \"\\n\"",
        ],
    ),
    (
        "sqlite3 :memory:",
        &[
            "/usr/bin/sqlite3",
            ":memory:",
            "create table t(a, b); with recursive c(x) as (select 1 union all select x + 1 \
             from c where x < 20000) insert into t select x, hex(x) from c; \
             select count(*), sum(a) from t;",
        ],
    ),
    ("git --version", &["/usr/bin/git", "--version"]),
];

/// How many of [`PROGRAMS`] the quick mode (`LMM_BENCH_QUICK`) runs.
const QUICK_PROGRAMS: usize = 2;

/// The median of `v` (not empty).
fn median(v: &mut [Duration]) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

/// The bench's input: 20000 lines in a scrambled order (for cat, sort and
/// gzip), written to the temporary directory; its path.
fn input_file() -> Result<PathBuf, String> {
    let path = std::env::temp_dir().join(format!("lmm-bench-native-{}.txt", std::process::id()));
    let mut text = String::new();
    for i in 0u64..20000 {
        let k = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
        text.push_str(&format!(
            "line {k:07} of the lmm native bench, number {i}\n"
        ));
    }
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// One plain run of `argv` on the host, its output discarded; wall time.
fn host_run(argv: &[String]) -> Result<Duration, String> {
    let t = Instant::now();
    let st = Command::new(&argv[0])
        .args(&argv[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("{}: {e}", argv[0]))?;
    let d = t.elapsed();
    if !st.success() {
        return Err(format!("{} failed on the host: {st}", argv[0]));
    }
    Ok(d)
}

/// Points this process's stdout and stderr at /dev/null while it lives
/// (the stub inherits them: the program's output is discarded), and back
/// when dropped.
struct Muted {
    /// Copies of the original stdout and stderr.
    saved: [std::os::fd::OwnedFd; 2],
}

impl Muted {
    /// Mutes stdout and stderr.
    fn new() -> Result<Muted, String> {
        let null = std::fs::File::options()
            .write(true)
            .open("/dev/null")
            .map_err(|e| format!("/dev/null: {e}"))?;
        let dup = |fd: i32| -> Result<std::os::fd::OwnedFd, String> {
            std::io::stdout().flush().map_err(|e| e.to_string())?;
            // SAFETY: borrowing a descriptor that is open for the whole
            // process (stdout or stderr) to duplicate it.
            let b = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            b.try_clone_to_owned().map_err(|e| format!("dup: {e}"))
        };
        let saved = [dup(1)?, dup(2)?];
        for fd in [1, 2] {
            // SAFETY: dup2 of an open descriptor onto stdout/stderr.
            if unsafe { libc::dup2(null.as_raw_fd(), fd) } < 0 {
                return Err(format!("dup2: {}", std::io::Error::last_os_error()));
            }
        }
        Ok(Muted { saved })
    }
}

impl Drop for Muted {
    fn drop(&mut self) {
        for (fd, saved) in [1, 2].into_iter().zip(&self.saved) {
            // SAFETY: dup2 of our saved copy back onto stdout/stderr.
            unsafe {
                libc::dup2(saved.as_raw_fd(), fd);
            }
        }
    }
}

/// One run of `argv` under `lmm native --warm-cache` on a machine booted
/// from `config` (the boot is not timed); wall time and the outcome.
fn lmm_run(
    config: &MachineConfig,
    argv: &[String],
) -> Result<(Duration, ::native::Outcome), String> {
    // As `lmm native` boots it.
    let config = MachineConfig {
        populate_ahead: true,
        ..config.clone()
    };
    let mut m = Machine::boot(config).map_err(|e| e.to_string())?;
    let opts = ::native::Options {
        warm_cache: true,
        ..Default::default()
    };
    let envp: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
    let muted = Muted::new()?;
    let t = Instant::now();
    let r = ::native::run(&mut m, &argv[0], argv, &envp, &opts);
    let d = t.elapsed();
    drop(muted);
    let out = r?;
    if out.ending != ::native::Ending::Exited(0) {
        return Err(format!("{} under lmm native: {:?}", argv[0], out.ending));
    }
    Ok((d, out))
}

/// `lmm bench native`: each program of the list found on this machine,
/// `reps` runs each way (interleaved), medians compared.
pub fn run(config: &MachineConfig, out: &mut dyn Write) -> Result<(), String> {
    let quick = std::env::var_os("LMM_BENCH_QUICK").is_some();
    let (reps, programs) = if quick {
        (1, &PROGRAMS[..QUICK_PROGRAMS])
    } else {
        (5, PROGRAMS)
    };
    let floor = ::native::floor::measure(if quick { 200 } else { 2000 })?;
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    say!(
        out,
        "floor of the technique on this host, no lmm work (pinned to one CPU): a ptrace stop {:.1} us, a mirror's mmap {:.1} us, a RAM page's first touch {:.1} us",
        us(floor.stop),
        us(floor.mirror),
        us(floor.first_touch)
    );
    let systrap = ::native::floor::measure_systrap(if quick { 200 } else { 2000 })?;
    say!(
        out,
        "floor of gVisor's systrap design (not built: no ptrace stop): a SIGSEGV to the stub's own handler {:.1} us, a futex round trip to lmm on the same CPU {:.1} us, a round trip to lmm spinning on another CPU {}",
        us(systrap.signal),
        us(systrap.futex),
        systrap
            .spin
            .map_or("(one CPU: none)".to_string(), |s| format!("{:.2} us", us(s)))
    );
    let file = input_file()?;
    let file_s = file.to_string_lossy().into_owned();
    say!(
        out,
        "native: real programs under lmm native --warm-cache against their plain run on the host, wall time, median of {reps}"
    );
    say!(
        out,
        "{:<18} {:>9} {:>9} {:>7} {:>7} {:>7} {:>8} {:>7} {:>8} {:>9} {:>9} {:>7} {:>7}",
        "program",
        "host ms",
        "lmm ms",
        "ratio",
        "faults",
        "stops",
        "injected",
        "mirrors",
        "in place",
        "fault ms",
        "floor ms",
        "best",
        "systrap"
    );
    for (label, args) in programs {
        let argv: Vec<String> = args.iter().map(|a| a.replace("{FILE}", &file_s)).collect();
        if !Path::new(&argv[0]).exists() {
            say!(
                out,
                "{label:<18} skipped: {} is not on this machine",
                argv[0]
            );
            continue;
        }
        let (mut host, mut lmm) = (Vec::new(), Vec::new());
        let mut last = None;
        for _ in 0..reps {
            host.push(host_run(&argv)?);
            let (d, o) = lmm_run(config, &argv)?;
            lmm.push(d);
            last = Some(o);
        }
        let Some(o) = last else { continue };
        let (h, l) = (median(&mut host), median(&mut lmm));
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let floor_ms = o.stops as f64 * ms(floor.stop) + o.mirrors as f64 * ms(floor.mirror);
        // systrap: each stop a signal and the cheaper round trip, the
        // mirrors as now.
        let systrap_ms = o.stops as f64 * ms(systrap.stop()) + o.mirrors as f64 * ms(floor.mirror);
        say!(
            out,
            "{label:<18} {:>9.2} {:>9.2} {:>6.1}x {:>7} {:>7} {:>8} {:>7} {:>8} {:>9.2} {:>9.2} {:>6.1}x {:>6.1}x",
            ms(h),
            ms(l),
            ms(l) / ms(h).max(1e-6),
            o.faults.minor + o.faults.major,
            o.stops,
            o.injected,
            o.mirrors,
            o.in_place,
            ms(o.fault_time),
            floor_ms,
            (ms(h) + floor_ms) / ms(h).max(1e-6),
            (ms(h) + systrap_ms) / ms(h).max(1e-6)
        );
    }
    let _ = std::fs::remove_file(&file);
    say!(
        out,
        "(ratio = lmm time / host time, lmm's including warming its page cache; stops: ptrace stops of the stub (system calls, faults, injected calls); injected: system calls lmm ran in the stub (mirror mmaps among them); in place: the program's host calls run where they stopped (one stop each); fault ms: lmm's MMU and fault handler; floor ms: the stops and mirrors priced at the floor above; best: the ratio if lmm added nothing to the floor; systrap: the same with each stop a signal and the cheaper round trip instead; counts are of the last run)"
    );
    Ok(())
}
