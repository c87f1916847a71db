//! `lmm`: the Linux memory manager in Rust, on a simulated machine.
//! Subcommands: run a scenario, print /proc files, the kernel log, benchmarks.

#[macro_use]
mod out;
mod bench;
mod progress;
mod top;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use machine::{parse_size, Machine, MachineConfig};
use mm::arch::Arch;
use workload::scenario::Limits;

#[derive(Parser)]
#[command(
    name = "lmm",
    version,
    about = "The Linux memory-management subsystem, in Rust, on a simulated machine"
)]
struct Cli {
    #[command(flatten)]
    machine: MachineFlags,
    #[command(subcommand)]
    cmd: Cmd,
}

/// Machine flags, accepted by every subcommand.
#[derive(Args, Clone)]
struct MachineFlags {
    /// Architecture: x86_64, x86, x86-pae or arm64.
    #[arg(long, global = true, default_value = "x86_64")]
    arch: String,
    /// RAM size, e.g. 512M, 4G, 1T.
    #[arg(long, global = true, default_value = "4G")]
    ram: String,
    /// Number of CPUs.
    #[arg(long, global = true, default_value_t = 2)]
    cpus: usize,
    /// Number of NUMA nodes (RAM is split evenly by address).
    #[arg(long, global = true, default_value_t = 1)]
    nodes: u32,
    /// Seed for anything random.
    #[arg(long, global = true, default_value_t = 0)]
    seed: u64,
    /// Slab allocator: slub (Linux 6.18's) or slab (the classic one).
    #[arg(long, global = true, default_value = "slub")]
    slab: String,
    /// x86-64 5-level paging (LA57): 5-level page tables, user space up to
    /// 2^56 - 4096 for hints above 128 TiB.
    #[arg(long, global = true)]
    la57: bool,
    /// Swap: a swap file of this size that lmm makes (mkswap's format),
    /// e.g. 1G.
    #[arg(long, global = true, value_name = "SIZE", conflicts_with = "swap_file")]
    swap: Option<String>,
    /// Swap: an existing swap file (e.g. made by the host's mkswap).
    #[arg(long, global = true, value_name = "PATH")]
    swap_file: Option<std::path::PathBuf>,
    /// Dentry hash table entries, as the kernel's dhash_entries= (0: sized
    /// by memory).
    #[arg(long, global = true, value_name = "N", default_value_t = 0)]
    dhash_entries: u64,
    /// Inode hash table entries, as the kernel's ihash_entries= (0: sized
    /// by memory).
    #[arg(long, global = true, value_name = "N", default_value_t = 0)]
    ihash_entries: u64,
}

/// Bounds on a scenario, so that no script runs forever or takes the
/// host's memory; the error says which one stopped it. 0: no limit.
#[derive(Args, Clone)]
struct LimitFlags {
    /// Rhai operations the script may run.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_operations)]
    max_operations: u64,
    /// Nested function calls.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_call_levels)]
    max_call_levels: usize,
    /// Bytes in one string (or in the strings of one array or map).
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_string_size)]
    max_string_size: usize,
    /// Elements in one array (nested arrays counted in).
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_array_size)]
    max_array_size: usize,
    /// Entries in one object map (nested maps counted in).
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_map_size)]
    max_map_size: usize,
    /// Machines the script may boot().
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_boots)]
    max_boots: u64,
    /// RAM of all the machines the script boots, added up (e.g. 4T).
    #[arg(long, value_name = "SIZE", default_value = "4T")]
    max_boot_ram: String,
}

impl LimitFlags {
    fn limits(&self) -> Result<Limits, String> {
        Ok(Limits {
            max_operations: self.max_operations,
            max_call_levels: self.max_call_levels,
            max_string_size: self.max_string_size,
            max_array_size: self.max_array_size,
            max_map_size: self.max_map_size,
            max_boots: self.max_boots,
            max_boot_ram: if self.max_boot_ram == "0" {
                0
            } else {
                parse_size(&self.max_boot_ram).map_err(|e| format!("--max-boot-ram: {e}"))?
            },
        })
    }
}

/// Tracepoints (`mm::trace`): where to write them and which to take.
#[derive(Args, Clone)]
struct TraceFlags {
    /// Write the tracepoints as ftrace text (the lines `trace-cmd report`
    /// prints, on a simulated clock) to FILE.
    #[arg(long, value_name = "FILE")]
    trace: Option<std::path::PathBuf>,
    /// Write a Chrome/Perfetto JSON trace (events and counter tracks:
    /// free blocks per zone and order, LRU sizes, swap use, RSS per
    /// process) to FILE, for ui.perfetto.dev.
    #[arg(long, value_name = "FILE")]
    perfetto: Option<std::path::PathBuf>,
    /// The events to trace, ftrace style: `kmem:*,vmscan:mm_vmscan_kswapd_*`
    /// (default: all).
    #[arg(long, value_name = "LIST")]
    events: Option<String>,
}

impl TraceFlags {
    /// Turns tracing on in `config`'s buffer if an output was asked for.
    fn enable(&self, config: &mut MachineConfig) -> Result<(), String> {
        let mask = match &self.events {
            Some(spec) => {
                mm::trace::EventMask::parse(spec).map_err(|e| format!("--events: {e}"))?
            }
            None => mm::trace::EventMask::ALL,
        };
        if self.trace.is_none() && self.perfetto.is_none() {
            if self.events.is_some() {
                return Err("--events needs --trace FILE or --perfetto FILE".into());
            }
            return Ok(());
        }
        config.trace = machine::TraceSink::default();
        config.trace.0.enable(mask);
        Ok(())
    }

    /// Writes what `config`'s buffer recorded to the files asked for.
    fn write(&self, config: &MachineConfig) -> Result<(), String> {
        if self.trace.is_none() && self.perfetto.is_none() {
            return Ok(());
        }
        let log = config.trace.0.take();
        for (path, text) in [
            (&self.trace, log.ftrace()),
            (&self.perfetto, log.perfetto()),
        ] {
            if let Some(p) = path {
                std::fs::write(p, text).map_err(|e| format!("{}: {e}", p.display()))?;
            }
        }
        Ok(())
    }
}

/// The flags of an strace replay, shared by `lmm replay` and `lmm top
/// replay`.
#[derive(Args, Clone)]
struct StraceFlags {
    /// strace: environment for an execve whose envp the trace lacks
    /// (repeatable).
    #[arg(long, value_name = "K=V")]
    env: Vec<String>,
    /// strace: rewrite host path prefixes, e.g. /work/wt-record=.
    /// (repeatable).
    #[arg(long = "path-map", value_name = "FROM=TO")]
    path_map: Vec<String>,
    /// strace: directory relative execve paths are resolved against
    /// (default: current).
    #[arg(long, value_name = "DIR")]
    cwd: Option<std::path::PathBuf>,
    /// strace: a user access the trace does not show, through the MMU and
    /// the fault handler: every page of [ADDR, ADDR+LEN) (LEN 1 if
    /// omitted) read, written (:w) or fetched (:x), by PID right after
    /// trace line LINE, or without LINE:PID: by the first process before
    /// its exit_group. LINE:PID:ADDR:LEN is a write (hex or decimal;
    /// repeatable).
    #[arg(long, value_name = "[LINE:PID:]ADDR[,LEN][:w]")]
    touch: Vec<String>,
    /// strace: start with every host file the trace uses in the page cache
    /// (as on the recording host); without it the cache is cold and first
    /// faults on file pages are major.
    #[arg(long = "warm-cache")]
    warm_cache: bool,
}

impl StraceFlags {
    /// True if any was given (they apply to strace traces only).
    fn any(&self) -> bool {
        !self.env.is_empty()
            || !self.path_map.is_empty()
            || self.cwd.is_some()
            || !self.touch.is_empty()
            || self.warm_cache
    }

    /// The replay's arguments for `file`, without the print flags.
    fn args(self, file: std::path::PathBuf) -> workload::replay::CliArgs {
        workload::replay::CliArgs {
            file,
            env: self.env,
            path_map: self.path_map,
            cwd: self.cwd,
            touch: self.touch,
            warm_cache: self.warm_cache,
            ..Default::default()
        }
    }
}

/// The flags of a lackey replay, shared by `lmm replay` and `lmm top
/// replay`.
#[derive(Args, Clone)]
struct LackeyFlags {
    /// lackey: count a failing access and go on instead of stopping.
    #[arg(long = "keep-going")]
    keep_going: bool,
    /// lackey: stop after N accesses.
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
}

impl LackeyFlags {
    /// True if any was given (they apply to lackey traces only).
    fn any(&self) -> bool {
        self.keep_going || self.limit.is_some()
    }

    /// The argument list `workload::lackey::parse_args` reads, for `file`.
    fn args(&self, file: &std::path::Path) -> Vec<String> {
        let mut args = vec![file.to_string_lossy().into_owned()];
        if self.keep_going {
            args.push("--keep-going".into());
        }
        if let Some(n) = self.limit {
            args.extend(["--limit".into(), n.to_string()]);
        }
        args
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a scenario script (Rhai), or the built-in default scenario.
    Run {
        /// The scenario file.
        scenario: Option<String>,
        #[command(flatten)]
        limits: LimitFlags,
        #[command(flatten)]
        tracing: TraceFlags,
    },
    /// Print a /proc file of the machine after boot, or after a scenario.
    Proc {
        /// buddyinfo, pagetypeinfo, zoneinfo, meminfo, vmstat, iomem, memblock/memory, memblock/reserved;
        /// or PID/FILE for a process the scenario created: PID/maps, PID/smaps,
        /// PID/smaps_rollup, PID/status, PID/pagemap.
        name: String,
        /// Run this scenario first.
        #[arg(long)]
        scenario: Option<String>,
    },
    /// Exec a real program from the host on a new process (the program is
    /// loaded, not run) and print its /proc/PID/maps.
    Exec {
        /// Also dump the initial stack (argc, argv, envp, auxv, strings).
        #[arg(long)]
        stack: bool,
        /// Environment variable for the program (repeatable); without any,
        /// the program gets lmm's own environment, as from a shell.
        #[arg(long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// The program: execve's path, and the first element of argv.
        program: String,
        /// Its arguments (a trailing `--stack` is taken as the flag).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run a real program natively on the host CPU with lmm as its memory
    /// manager: every page it touches is a frame of lmm's RAM, every fault
    /// goes through lmm's fault handler (x86-64 programs, static or
    /// dynamically linked; it may fork, exec, wait and start threads;
    /// needs root, for ptrace). Exits with the program's status.
    Native {
        /// Environment variable for the program (repeatable), added to
        /// lmm's own environment (or to none with --clear-env).
        #[arg(long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// Start the program's environment empty.
        #[arg(long)]
        clear_env: bool,
        /// Write the process's /proc/PID/maps, as lmm renders it at exit_group.
        #[arg(long, value_name = "FILE")]
        maps_at_exit: Option<std::path::PathBuf>,
        /// Write its /proc/PID/smaps at exit_group.
        #[arg(long, value_name = "FILE")]
        smaps_at_exit: Option<std::path::PathBuf>,
        /// Write its /proc/PID/status at exit_group.
        #[arg(long, value_name = "FILE")]
        status_at_exit: Option<std::path::PathBuf>,
        /// Write the host's /proc/PID/maps of the stub process just before
        /// the program's first instruction (what the host has mapped in it).
        #[arg(long, value_name = "FILE")]
        host_maps_at_start: Option<std::path::PathBuf>,
        /// Write the host's /proc/PID/maps of the first forked child's stub
        /// just before its first instruction.
        #[arg(long, value_name = "FILE")]
        host_maps_at_fork: Option<std::path::PathBuf>,
        /// Start with the program, its interpreter and each file it maps
        /// in the page cache, as on a host that ran it before.
        #[arg(long)]
        warm_cache: bool,
        /// Take every fault when the program takes it (one ptrace stop
        /// each, in the trace's order); by default fresh anonymous memory
        /// written in order gets frames ahead: the same faults, taken at
        /// the next stop, with fewer stops (docs/native.md).
        #[arg(long)]
        no_fault_ahead: bool,
        #[command(flatten)]
        tracing: TraceFlags,
        /// The program: execve's path, and the first element of argv.
        program: String,
        /// Its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Print the kernel log.
    Dmesg {
        /// Run this scenario first.
        #[arg(long)]
        scenario: Option<String>,
    },
    /// Replay a trace on the machine: `lmm replay strace FILE` prints each
    /// process's maps as it stood at exit_group (or the end of the trace);
    /// `lmm replay lackey FILE` drives every access of a valgrind lackey
    /// trace through one process's MMU and prints faults, RSS and TLB use.
    Replay {
        /// The trace format: strace (output of `strace -f -y [-v] -e
        /// trace=%memory,%process`) or lackey (`valgrind --tool=lackey
        /// --trace-mem=yes`, plain or gzipped, `-` for stdin).
        format: String,
        /// The trace file.
        file: std::path::PathBuf,
        /// Compare every result with the trace; stop at the first divergence.
        #[arg(long)]
        check: bool,
        /// Print only this process's maps at its exit_group (PID as in the trace).
        #[arg(long, value_name = "PID")]
        maps: Option<u32>,
        /// Print this process's /proc/PID/smaps at its exit_group.
        #[arg(long, value_name = "PID")]
        smaps: Option<u32>,
        /// Print this process's /proc/PID/stat at its exit_group (faults).
        #[arg(long, value_name = "PID")]
        stat: Option<u32>,
        #[command(flatten)]
        strace: StraceFlags,
        #[command(flatten)]
        lackey: LackeyFlags,
        /// lackey: instead of the machine replay, run the trace's page
        /// reference string through a page-replacement policy with N frames
        /// and print faults, swap-ins and swap-outs.
        #[arg(long, value_name = "N")]
        frames: Option<String>,
        /// lackey: the policy for --frames (default linux) or the policies
        /// for --sweep (default all): fifo, lru, clock, age, opt, linux.
        #[arg(long, value_name = "P[,P...]")]
        policy: Option<String>,
        /// lackey: miss ratio of each policy for each of these frame counts.
        #[arg(long, value_name = "N,N,...")]
        sweep: Option<String>,
        /// lackey: draw the --sweep curves as an SVG file.
        #[arg(long, value_name = "FILE")]
        svg: Option<String>,
        #[command(flatten)]
        tracing: TraceFlags,
    },
    /// The "nothing lost" soak: seeded processes using several times the
    /// RAM (here --ram defaults to 64M and --swap to 256M) fork, exit,
    /// write, remap, unmap, advise and use tmpfs files and shared file
    /// mappings; every read is checked against a model, mm::debug runs
    /// every K ops. Exit status 1 on a mismatch or a failed check.
    Soak {
        /// Operations to run.
        #[arg(long, value_name = "N", default_value_t = 100_000)]
        ops: u64,
        /// Processes alive at most.
        #[arg(long = "max-procs", value_name = "N", default_value_t = 4)]
        max_procs: usize,
        /// mm::debug every K ops (0: only at the end).
        #[arg(long = "check-every", value_name = "K", default_value_t = 1000)]
        check_every: u64,
        /// Leave kinds of op out (comma-separated or repeated), e.g.
        /// madv-free,fork; --verbose lists them.
        #[arg(long, value_name = "OP", value_delimiter = ',')]
        without: Vec<String>,
        /// Also print the count of each kind of op and other counters.
        #[arg(long)]
        verbose: bool,
        /// Describe every op and system call on stderr.
        #[arg(long)]
        trace: bool,
        /// Print running totals on stderr every N ops (0: never).
        #[arg(long, value_name = "N", default_value_t = 0)]
        progress: u64,
    },
    /// A guided walk through each mechanism of the textbook: without a
    /// topic, the list in the textbook's order; `all` runs every topic.
    Tour {
        /// The topic (its name from the list), or `all`.
        topic: Option<String>,
    },
    /// Draw figures of a scenario run (the built-in one by default) as
    /// SVG: memory over time, the fault rate, fragmentation. With --png
    /// (or a FILE ending in .png) the same SVG rendered to PNG: the SVG is
    /// byte-for-byte deterministic, the PNG's bytes depend on the installed
    /// fonts (without any, its text is missing and a warning says so).
    Plot {
        /// The scenario file.
        #[arg(long)]
        scenario: Option<String>,
        /// Where to write the figure; with --kind all, FILE's name gets
        /// -memory, -faults and -fragmentation before its extension.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: String,
        /// memory, faults, fragmentation or all.
        #[arg(long, default_value = "memory")]
        kind: String,
        /// Rhai operations between samples.
        #[arg(long, value_name = "N", default_value_t = 2000)]
        every: u64,
        /// Write PNG instead of SVG (implied by -o FILE.png).
        #[arg(long)]
        png: bool,
        #[command(flatten)]
        limits: LimitFlags,
    },
    /// A live view of a scenario run (the built-in one by default), a
    /// replay (`lmm top replay ...`) or a real program (`lmm top native
    /// ...`), like htop and vmstat 1: zones against their watermarks, buddy
    /// lists, processes, slab caches, reclaim. Keys: q quit, space pause,
    /// s/n step, + faster, - slower.
    Top {
        /// The scenario file.
        #[arg(long)]
        scenario: Option<String>,
        /// Print N frames as text (no terminal needed) and stop.
        #[arg(long, value_name = "N", global = true)]
        batch: Option<u64>,
        /// Milliseconds between frames in the live view.
        #[arg(long, value_name = "MS", default_value_t = 200, global = true)]
        delay: u64,
        /// Steps between frames: Rhai operations of a scenario (default
        /// 2000), system calls of an strace replay (10), accesses of a
        /// lackey replay (10000), faults and system calls of a native
        /// program (100).
        #[arg(long, value_name = "N", global = true)]
        every: Option<u64>,
        #[command(flatten)]
        limits: LimitFlags,
        /// Watch a replay or a real program instead of a scenario.
        #[command(subcommand)]
        of: Option<TopOf>,
    },
    /// Run benchmarks with a reference measured in the same run.
    Bench {
        /// page_alloc, slab, vm, fault, fork or boot; all when omitted; or
        /// native (real programs under lmm native; needs root).
        name: Option<String>,
        /// Anonymous memory that fault and fork use, e.g. 16M (default 1G).
        #[arg(long, value_name = "SIZE")]
        size: Option<String>,
    },
}

/// What `lmm top` watches besides a scenario.
#[derive(Subcommand)]
enum TopOf {
    /// A replay, as `lmm replay` runs it: `lmm top replay strace FILE` or
    /// `lmm top replay lackey FILE`.
    Replay {
        /// strace or lackey.
        format: String,
        /// The trace file.
        file: std::path::PathBuf,
        #[command(flatten)]
        strace: StraceFlags,
        #[command(flatten)]
        lackey: LackeyFlags,
    },
    /// A real program run natively, as `lmm native` runs it (root). With
    /// --batch the frames go to stderr, so the program's stdout stays its
    /// own; the live view draws on stderr too (redirect the program's
    /// output, `> FILE`, or it writes over the view). Exits with the
    /// program's status.
    Native {
        /// Environment variable for the program (repeatable).
        #[arg(long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// Start the program's environment empty.
        #[arg(long)]
        clear_env: bool,
        /// Start with the program and the files it maps in the page cache.
        #[arg(long)]
        warm_cache: bool,
        /// The program: execve's path, and the first element of argv.
        program: String,
        /// Its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

impl MachineFlags {
    fn config(&self) -> Result<MachineConfig, String> {
        let arch = Arch::parse(&self.arch).ok_or_else(|| {
            format!(
                "unknown --arch {:?}: expected x86_64, x86, x86-pae or arm64",
                self.arch
            )
        })?;
        let ram = parse_size(&self.ram).map_err(|e| format!("--ram: {e}"))?;
        Ok(MachineConfig {
            arch,
            ram,
            cpus: self.cpus,
            nodes: self.nodes,
            distance: None,
            seed: self.seed,
            slab: match self.slab.as_str() {
                "slub" => mm::slab_common::SlabKind::Slub,
                "slab" => mm::slab_common::SlabKind::Slab,
                other => return Err(format!("unknown --slab {other:?}: expected slub or slab")),
            },
            la57: self.la57,
            swap: match (&self.swap, &self.swap_file) {
                (Some(size), _) => Some(machine::swapfile::SwapSpec::Make(
                    parse_size(size).map_err(|e| format!("--swap: {e}"))?,
                )),
                (None, Some(path)) => Some(machine::swapfile::SwapSpec::File(path.clone())),
                (None, None) => None,
            },
            dhash_entries: self.dhash_entries,
            ihash_entries: self.ihash_entries,
            trace: Default::default(),
            boot_progress: Default::default(),
            populate_ahead: false,
        })
    }
}

/// Boots the machine and runs a scenario on it if one is given.
fn machine_after(
    config: MachineConfig,
    scenario: Option<&str>,
) -> Result<(Machine, String), String> {
    match scenario {
        None => Ok((
            Machine::boot(config).map_err(|e| e.to_string())?,
            String::new(),
        )),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
            let (out, m) =
                workload::scenario::run(path, &text, config).map_err(|e| e.to_string())?;
            Ok((m, out.output))
        }
    }
}

/// The scenario `lmm plot` and `lmm top` sample: the file, or the built-in
/// default, every `every` operations.
fn scenario_source(
    scenario: Option<String>,
    config: MachineConfig,
    limits: &LimitFlags,
    every: u64,
) -> Result<workload::sample::ScenarioSource, String> {
    if every == 0 {
        return Err("--every: a sample every 0 operations? (give 1 or more)".into());
    }
    let (file, script) = match scenario {
        Some(p) => {
            let text = std::fs::read_to_string(&p).map_err(|e| format!("{p}: {e}"))?;
            (p, text)
        }
        None => (
            "default scenario".to_string(),
            workload::scenario::DEFAULT_SCENARIO.to_string(),
        ),
    };
    Ok(workload::sample::ScenarioSource {
        file,
        script,
        config,
        limits: limits.limits()?,
        every,
    })
}

fn real_main(cli: Cli) -> Result<(), String> {
    let mut config = cli.machine.config()?;
    // A huge machine's boot shows its progress, in the commands that boot
    // before they print (not top, which draws the screen itself, nor soak
    // and bench, which have their own bars).
    if matches!(
        cli.cmd,
        Cmd::Run { .. }
            | Cmd::Proc { .. }
            | Cmd::Exec { .. }
            | Cmd::Dmesg { .. }
            | Cmd::Replay { .. }
    ) {
        config.boot_progress = progress::boot();
    }
    match cli.cmd {
        Cmd::Run {
            scenario,
            limits,
            tracing,
        } => {
            tracing.enable(&mut config)?;
            let sink = config.clone();
            let limits = limits.limits()?;
            let (file, text) = match &scenario {
                Some(p) => (
                    p.clone(),
                    std::fs::read_to_string(p).map_err(|e| format!("{p}: {e}"))?,
                ),
                None => (
                    "<default scenario>".to_string(),
                    workload::scenario::DEFAULT_SCENARIO.to_string(),
                ),
            };
            let r = workload::scenario::run_with_limits(&file, &text, config, &limits);
            tracing.write(&sink)?;
            let (out, m) = r.map_err(|e| e.to_string())?;
            out!("{}", out.output);
            outln!(
                "-- {file}: {} on {} with {} MiB RAM, {} CPUs, {} node(s): {} checks passed, {} page allocations ({} failed), {} pages free of {}",
                if out.checks > 0 { "ok" } else { "done" },
                m.config().arch.name(),
                m.config().ram >> 20,
                m.config().cpus,
                m.config().nodes,
                out.checks,
                out.allocations,
                out.failures,
                m.pa().nr_free_pages(),
                m.pa().totalram_pages()
            );
        }
        Cmd::Proc { name, scenario } => {
            let (mut m, _) = machine_after(config, scenario.as_deref())?;
            let name = name.trim_start_matches("/proc/");
            match name.split_once('/') {
                Some((pid, file)) if pid.parse::<u32>().is_ok() => {
                    let pid: u32 = pid.parse().unwrap_or(0);
                    if m.process(pid).is_none() {
                        return Err(format!(
                            "no process {pid}: processes exist only after a scenario that \
                             spawns them (lmm proc {pid}/{file} --scenario FILE)"
                        ));
                    }
                    out!("{}", m.proc_pid(pid, file)?);
                }
                _ => out!("{}", m.proc(name)?),
            }
        }
        Cmd::Exec {
            mut stack,
            env,
            program,
            mut args,
        } => {
            if args.last().is_some_and(|a| a == "--stack") {
                args.pop();
                stack = true;
            }
            let envp: Vec<String> = if env.is_empty() {
                std::env::vars_os()
                    .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
                    .collect()
            } else {
                env
            };
            let mut argv = vec![program.clone()];
            argv.extend(args);
            let mut m = Machine::boot(config).map_err(|e| e.to_string())?;
            let pid = m.spawn("lmm").map_err(|e| format!("spawn: {e}"))?;
            let r = m
                .exec(pid, &program, &argv, &envp)
                .map_err(|e| format!("exec {program}: {e}"))?;
            out!("{}", m.proc_pid(pid, "maps")?);
            if stack {
                out!("{}", stack_dump(&mut m, pid, &r)?);
            }
        }
        Cmd::Native {
            env,
            clear_env,
            maps_at_exit,
            smaps_at_exit,
            status_at_exit,
            host_maps_at_start,
            host_maps_at_fork,
            warm_cache,
            no_fault_ahead,
            tracing,
            program,
            args,
        } => {
            let envp = native_env(env, clear_env);
            let mut argv = vec![program.clone()];
            argv.extend(args);
            let mut at_exit = Vec::new();
            for (file, path) in [
                ("maps", maps_at_exit),
                ("smaps", smaps_at_exit),
                ("status", status_at_exit),
            ] {
                if let Some(p) = path {
                    at_exit.push((file.to_string(), p));
                }
            }
            let opts = native::Options {
                at_exit,
                host_maps_at_start,
                host_maps_at_fork,
                warm_cache,
                no_fault_ahead,
                observer: None,
            };
            tracing.enable(&mut config)?;
            config.populate_ahead = true;
            let sink = config.clone();
            let mut m = Machine::boot(config).map_err(|e| e.to_string())?;
            let outcome = native::run(&mut m, &program, &argv, &envp, &opts);
            tracing.write(&sink)?;
            let outcome = outcome?;
            eprint!("{}", outcome.summary(&program));
            native::exit_as(outcome.ending);
        }
        Cmd::Dmesg { scenario } => {
            let (m, _) = machine_after(config, scenario.as_deref())?;
            out!("{}", m.dmesg());
        }
        Cmd::Soak {
            ops,
            max_procs,
            check_every,
            without,
            verbose,
            trace,
            progress,
        } => {
            // The soak's own defaults for the machine flags not given.
            let matches = <Cli as clap::CommandFactory>::command().get_matches();
            let given = |id: &str| {
                let cli = Some(clap::parser::ValueSource::CommandLine);
                matches.value_source(id) == cli
                    || matches
                        .subcommand_matches("soak")
                        .is_some_and(|m| m.value_source(id) == cli)
            };
            let mut machine = config;
            if !given("ram") {
                machine.ram = 64 << 20;
            }
            if !given("swap") && !given("swap_file") {
                machine.swap = Some(machine::swapfile::SwapSpec::Make(256 << 20));
            }
            let seed = machine.seed;
            // A bar on a terminal, unless --progress or --trace write
            // their own lines there.
            let bar = (progress == 0 && !trace).then(|| progress::bar(ops, "soak", false));
            let on_op = bar
                .clone()
                .map(|b| workload::soak::OnOp(std::sync::Arc::new(move |op| b.set_position(op))));
            let cfg = workload::soak::SoakConfig {
                machine,
                max_procs,
                check_every,
                without,
                trace,
                progress,
                on_op,
                ..workload::soak::SoakConfig::new(ops, seed)
            };
            let r = workload::soak::run(&cfg);
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            let r = r?;
            out!("{}", r.render(verbose));
            if let Some(f) = r.failure() {
                return Err(format!("soak: {f}"));
            }
        }
        Cmd::Tour { topic } => {
            use workload::tour;
            let chosen = match topic.as_deref() {
                None => {
                    out!("{}", tour::list());
                    return Ok(());
                }
                Some("all") => tour::topics(),
                Some(name) => vec![tour::topic(name).ok_or_else(|| {
                    format!("tour: no topic {name:?}; the topics are:\n{}", tour::list())
                })?],
            };
            for (i, t) in chosen.into_iter().enumerate() {
                if i > 0 {
                    out!("\n");
                }
                out!("{}", tour::run(t)?.text());
            }
        }
        Cmd::Plot {
            scenario,
            output,
            kind,
            every,
            png,
            limits,
        } => {
            let png = png
                || std::path::Path::new(&output)
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("png"));
            let kinds = match kind.as_str() {
                "all" => workload::plot::Kind::ALL.to_vec(),
                k => vec![workload::plot::Kind::parse(k).ok_or_else(|| {
                    format!("unknown --kind {k:?}: expected memory, faults, fragmentation or all")
                })?],
            };
            let mut src = scenario_source(scenario, config, &limits, every)?;
            let title = src.file.clone();
            let samples = workload::sample::Source::collect(&mut src)?;
            for k in &kinds {
                let path = if kinds.len() == 1 {
                    output.clone()
                } else {
                    let p = std::path::Path::new(&output);
                    let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("plot");
                    let ext = p.extension().and_then(|s| s.to_str()).unwrap_or(if png {
                        "png"
                    } else {
                        "svg"
                    });
                    p.with_file_name(format!("{stem}-{}.{ext}", k.name()))
                        .to_string_lossy()
                        .into_owned()
                };
                let doc = workload::plot::render(*k, &samples, &title)?;
                let bytes = if png {
                    // One code path: the SVG is the source of the PNG.
                    let (bytes, warning) = workload::plot::svg_to_png(&doc)?;
                    if let Some(w) = warning {
                        eprintln!("lmm: {path}: {w}");
                    }
                    bytes
                } else {
                    doc.into_bytes()
                };
                std::fs::write(&path, bytes).map_err(|e| format!("{path}: {e}"))?;
                outln!("{path}: {} ({} samples)", k.name(), samples.len());
            }
        }
        Cmd::Top {
            scenario,
            batch,
            delay,
            every,
            limits,
            of,
        } => top_cmd(config, scenario, batch, delay, every, &limits, of)?,
        Cmd::Bench { name, size } => {
            let size = size
                .map(|s| parse_size(&s).map_err(|e| format!("--size: {e}")))
                .transpose()?;
            bench::run(name.as_deref(), size, &config)?
        }
        Cmd::Replay {
            format,
            file,
            check,
            maps,
            smaps,
            stat,
            strace,
            lackey,
            frames,
            policy,
            sweep,
            svg,
            tracing,
        } => {
            tracing.enable(&mut config)?;
            let sink = config.clone();
            let r = replay(
                &config,
                format,
                file,
                ReplayFlags {
                    check,
                    maps,
                    smaps,
                    stat,
                    strace,
                    lackey,
                    policy_flags: [
                        ("--frames", frames),
                        ("--policy", policy),
                        ("--sweep", sweep),
                        ("--svg", svg),
                    ],
                },
            );
            tracing.write(&sink)?;
            r?;
        }
    }
    Ok(())
}

/// A native program's environment: lmm's own (none with `clear_env`),
/// with each `K=V` of `env` added or replacing its key.
fn native_env(env: Vec<String>, clear_env: bool) -> Vec<String> {
    let mut envp: Vec<String> = if clear_env {
        Vec::new()
    } else {
        std::env::vars_os()
            .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
            .collect()
    };
    for kv in env {
        let key = kv.split('=').next().unwrap_or("").to_string();
        envp.retain(|e| e.split('=').next() != Some(key.as_str()));
        envp.push(kv);
    }
    envp
}

/// `lmm top`: the view of a scenario, a replay or a native program, live
/// or as `batch` frames of text.
fn top_cmd(
    config: MachineConfig,
    scenario: Option<String>,
    batch: Option<u64>,
    delay: u64,
    every: Option<u64>,
    limits: &LimitFlags,
    of: Option<TopOf>,
) -> Result<(), String> {
    if scenario.is_some() && of.is_some() {
        return Err("top: --scenario or a replay or a native program, not both".into());
    }
    if every == Some(0) && of.is_some() {
        return Err("--every: a frame every 0 events? (give 1 or more)".into());
    }
    let delay = std::time::Duration::from_millis(delay.max(1));
    let show = |src: &mut dyn workload::sample::Source, to| match batch {
        Some(n) => top::batch(src, n, to),
        None => top::live(src, delay, to),
    };
    match of {
        None => {
            let mut src = scenario_source(scenario, config, limits, every.unwrap_or(2000))?;
            show(&mut src, top::To::Stdout)
        }
        Some(TopOf::Replay {
            format,
            file,
            strace,
            lackey,
        }) => {
            use workload::sample::Trace;
            let (trace, default_every) = match format.as_str() {
                "strace" => {
                    if lackey.any() {
                        return Err("--keep-going and --limit apply to lackey traces only".into());
                    }
                    (Trace::Strace(strace.args(file)), 10)
                }
                "lackey" => {
                    if strace.any() {
                        return Err(
                            "--env, --path-map, --cwd, --touch and --warm-cache apply to strace traces only"
                                .into(),
                        );
                    }
                    let parsed = workload::lackey::parse_args(&lackey.args(&file))
                        .map_err(|e| e.to_string())?;
                    (Trace::Lackey(parsed), 10_000)
                }
                other => {
                    return Err(format!(
                        "unknown trace format {other:?}: expected strace or lackey"
                    ))
                }
            };
            let mut src = workload::sample::ReplaySource {
                trace,
                config,
                every: every.unwrap_or(default_every),
            };
            show(&mut src, top::To::Stdout)
        }
        Some(TopOf::Native {
            env,
            clear_env,
            warm_cache,
            program,
            args,
        }) => {
            let mut argv = vec![program.clone()];
            argv.extend(args);
            let mut src = top::NativeSource {
                program: program.clone(),
                argv,
                envp: native_env(env, clear_env),
                warm_cache,
                config,
                every: every.unwrap_or(100),
                outcome: None,
            };
            // The program's stdout is lmm's: the frames go to stderr.
            show(&mut src, top::To::Stderr)?;
            let outcome = src
                .outcome
                .ok_or("top native: the program did not run to its end")?;
            eprint!("{}", outcome.summary(&program));
            native::exit_as(outcome.ending);
        }
    }
}

/// The flags of `lmm replay` besides the format, file and tracing.
struct ReplayFlags {
    check: bool,
    maps: Option<u32>,
    smaps: Option<u32>,
    stat: Option<u32>,
    strace: StraceFlags,
    lackey: LackeyFlags,
    policy_flags: [(&'static str, Option<String>); 4],
}

/// `lmm replay`: a lackey or strace trace on a machine booted from `config`.
fn replay(
    config: &MachineConfig,
    format: String,
    file: std::path::PathBuf,
    f: ReplayFlags,
) -> Result<(), String> {
    let config = config.clone();
    let ReplayFlags {
        check,
        maps,
        smaps,
        stat,
        strace,
        lackey,
        policy_flags,
    } = f;
    {
        {
            if format == "lackey" {
                let mut args = lackey.args(&file);
                for (flag, v) in policy_flags {
                    if let Some(v) = v {
                        args.extend([flag.to_string(), v]);
                    }
                }
                let parsed = workload::lackey::parse_args(&args).map_err(|e| e.to_string())?;
                if parsed.policy.is_some() {
                    // A bar over the runs (one per policy and frame count;
                    // the report is printed after them).
                    let bar = progress::bar(0, "policy runs", false);
                    let r = workload::lackey::run_policy_cli(
                        &parsed,
                        Some(&config),
                        &mut out::Stdout,
                        &mut |done, total| {
                            bar.set_length(total);
                            bar.set_position(done);
                        },
                    );
                    bar.finish_and_clear();
                    r.map_err(|e| e.to_string())?;
                    return Ok(());
                }
                let mut target = workload::lackey::MachineLackey::boot(config)?;
                // A spinner counting the accesses (the trace's length is
                // not known before its end).
                let bar = progress::spinner("lackey replay: accesses", false);
                let b = bar.clone();
                target.observer = Some(Box::new(move |_| {
                    b.inc(1);
                    true
                }));
                // The summary is printed after the spinner is cleared (its
                // clearing would take a line printed under it).
                let mut summary = Vec::new();
                let r = workload::lackey::run_cli(&args, &mut target, &mut summary);
                bar.finish_and_clear();
                r.map_err(|e| e.to_string())?;
                out!("{}", String::from_utf8_lossy(&summary));
                return target
                    .machine()
                    .check()
                    .map_err(|e| format!("mm::debug: {e}"));
            }
            if format != "strace" {
                return Err(format!(
                    "unknown trace format {format:?}: expected strace or lackey"
                ));
            }
            if let Some((flag, _)) = policy_flags.iter().find(|(_, v)| v.is_some()) {
                return Err(format!("{flag} applies to lackey traces only"));
            }
            let args = workload::replay::CliArgs {
                check,
                maps,
                smaps,
                stat,
                ..strace.args(file)
            };
            let mut target = workload::replay::machine_target(config);
            // A bar over the trace's lines: the trace is parsed whole
            // before the replay, so the line count is exact and free,
            // where the file's size would only measure the parse, done
            // by then. It is gone before anything is printed.
            let bar = progress::bar(0, "strace replay: lines", false);
            let r = workload::replay::run_cli_with(
                &args,
                target.as_mut(),
                &mut out::Stdout,
                &mut std::io::stderr(),
                &mut |done, total| {
                    bar.set_length(total);
                    bar.set_position(done);
                    if done == total {
                        bar.finish_and_clear();
                    }
                },
            );
            bar.finish_and_clear();
            r?;
        }
    }
    Ok(())
}

/// The initial stack from the stack pointer to STACK_TOP as a hex dump
/// (`ADDR: 16 bytes |ascii|`), after a summary of argc and the auxv.
fn stack_dump(m: &mut Machine, pid: u32, r: &machine::exec::ExecResult) -> Result<String, String> {
    use std::fmt::Write;
    let sp = r.start_stack.0;
    let top = machine::exec::STACK_TOP;
    let bytes = m
        .read_user(pid, sp, (top - sp) as usize)
        .map_err(|e| format!("reading the stack: {e}"))?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\ninitial stack: rsp={sp:#x} entry={:#x} ({} bytes)",
        r.entry.0,
        bytes.len()
    );
    for (k, v) in &r.auxv {
        let _ = writeln!(out, "auxv {k:>2} {v:#x}");
    }
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let _ = write!(out, "{:012x}:", sp + 16 * i as u64);
        for b in chunk {
            let _ = write!(out, " {b:02x}");
        }
        for _ in chunk.len()..16 {
            out.push_str("   ");
        }
        out.push_str("  |");
        for &b in chunk {
            out.push(if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '.'
            });
        }
        out.push_str("|\n");
    }
    Ok(out)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match real_main(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "lmm: {e}");
            ExitCode::FAILURE
        }
    }
}
