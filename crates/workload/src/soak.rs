//! `lmm soak`: the "nothing lost" soak of reclaim and swap. A seeded random
//! workload of several processes on a machine whose RAM is a fraction of
//! their memory, with swap on: fork, exit, copy-on-write writes, mremap,
//! munmap, madvise, tmpfs file I/O, shared file mappings and ftruncate.
//!
//! Every page written carries a 16-byte tag (writer pid, page, version) at
//! a random offset; a model in ordered maps (so that a seed always gives
//! the same run) says what every read must return, and reads are checked
//! as they happen. `mm::debug` (`Machine::check`) runs every
//! `check_every` operations and at the end, after a sweep that reads every
//! page of every process and file once more.
//!
//! What the model allows (Linux 6.18's rules):
//! - MADV_DONTNEED on private anonymous memory: the range reads zero;
//!   on a shared file mapping the file's data stays.
//! - MADV_FREE: each page reads either its old data or zero until it is
//!   written again (a reclaimed lazy-free page, or a swapped-out one whose
//!   slot MADV_FREE frees, comes back zero); once seen as zero it stays zero.
//! - MADV_COLD / MADV_PAGEOUT change no data; EINVAL means the machine does
//!   not have them yet and is counted as unsupported.
//! - ftruncate: the pages past the new end are gone (a shared mapping there
//!   raises SIGBUS), the tail of a partial last page reads zero, and a file
//!   extended again reads zero there.
//! - An allocation failure (ENOMEM, or a fault ending in VM_FAULT_OOM) is
//!   counted, not a mismatch; a process the OOM killer takes leaves the model.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use machine::fs::{O_CREAT, O_RDWR};
use machine::process::UserFault;
use machine::{Machine, MachineConfig};
use mm::errno::Errno;
use mm::madvise::advice::{MADV_COLD, MADV_DONTNEED, MADV_FREE, MADV_PAGEOUT};
use mm::mmap::{MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PROT_NONE, PROT_READ, PROT_WRITE};
use mm::mremap::{MREMAP_FIXED, MREMAP_MAYMOVE};
use mm::vmstat::VmEvent;

const PAGE: u64 = 4096;
const TAG: usize = 16;
const RW: u32 = PROT_READ | PROT_WRITE;
const ANON: u32 = MAP_PRIVATE | MAP_ANONYMOUS;
/// tmpfs files the processes share.
const FILES: usize = 2;
/// Pages a file op may reach (files grow up to 4 MiB).
const FILE_PAGES: u64 = 1024;
/// Regions a process keeps at most (mmap turns into munmap beyond).
const MAX_REGIONS: usize = 48;
/// Regions past which a process's munmap and mremap take whole regions
/// (each takes a part otherwise, splitting one in two or three): without
/// a bound, millions of ops fragment a long-lived process into tens of
/// thousands of VMAs, and fork and exit, linear in them, dominate.
const MAX_FRAGMENTS: usize = 256;
/// Shared file mappings a process keeps at most.
const MAX_FILE_REGIONS: usize = 6;
/// Pages one write or read op covers at most.
const MAX_RUN: u64 = 64;
/// Random page reads after every op.
const READS_PER_OP: usize = 2;

/// What a soak run does.
#[derive(Clone, Debug)]
pub struct SoakConfig {
    /// The machine (RAM, CPUs, swap).
    pub machine: MachineConfig,
    /// Operations to run.
    pub ops: u64,
    /// Seed of the workload.
    pub seed: u64,
    /// Processes alive at most.
    pub max_procs: usize,
    /// `Machine::check` every this many ops (0: only at the end).
    pub check_every: u64,
    /// Test hook: at the end of op N, flip a byte of one tagged page behind
    /// the model's back (`write_user`); the run must report it as a
    /// mismatch (once per process that sees it: a fork copies it).
    pub inject_corruption_at: Option<u64>,
    /// Describe every op on stderr (to narrow a failure down).
    pub trace: bool,
    /// A line of running totals on stderr every this many ops (0: none),
    /// so a long run shows where it is.
    pub progress: u64,
    /// Called with the number of each op done (`lmm soak`'s progress bar;
    /// the library itself stays terminal-free).
    pub on_op: Option<OnOp>,
    /// Kinds of op left out of the mix, by name (`madv-free`, `fork`, ...;
    /// see [`op_names`]).
    pub without: Vec<String>,
}

impl SoakConfig {
    /// The default soak: 64 MiB of RAM, a 256 MiB swap file, 2 CPUs,
    /// 4 processes at most, a check every 1000 ops.
    pub fn new(ops: u64, seed: u64) -> SoakConfig {
        SoakConfig {
            machine: MachineConfig {
                ram: 64 << 20,
                cpus: 2,
                seed,
                swap: Some(machine::swapfile::SwapSpec::Make(256 << 20)),
                ..Default::default()
            },
            ops,
            seed,
            max_procs: 4,
            check_every: 1000,
            inject_corruption_at: None,
            trace: false,
            progress: 0,
            on_op: None,
            without: Vec::new(),
        }
    }
}

/// A callback of [`SoakConfig::on_op`]; shared so the config stays `Clone`.
#[derive(Clone)]
pub struct OnOp(pub std::sync::Arc<dyn Fn(u64) + Send + Sync>);

impl std::fmt::Debug for OnOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnOp(..)")
    }
}

/// The kinds of operation, in the order of the `--verbose` table.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Op {
    Write,
    Read,
    Mmap,
    MmapFile,
    Munmap,
    Mremap,
    DontNeed,
    Free,
    Cold,
    Pageout,
    Fork,
    Exit,
    FileWrite,
    FileRead,
    Ftruncate,
}

/// Each kind with its weight in the mix.
const MIX: [(Op, u64); 15] = [
    (Op::Write, 22),
    (Op::Read, 16),
    (Op::Mmap, 9),
    (Op::MmapFile, 3),
    (Op::Munmap, 4),
    (Op::Mremap, 6),
    (Op::DontNeed, 4),
    (Op::Free, 4),
    (Op::Cold, 3),
    (Op::Pageout, 3),
    (Op::Fork, 1),
    (Op::Exit, 1),
    (Op::FileWrite, 9),
    (Op::FileRead, 9),
    (Op::Ftruncate, 3),
];

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Write => "write",
            Op::Read => "read",
            Op::Mmap => "mmap",
            Op::MmapFile => "mmap-file",
            Op::Munmap => "munmap",
            Op::Mremap => "mremap",
            Op::DontNeed => "madv-dontneed",
            Op::Free => "madv-free",
            Op::Cold => "madv-cold",
            Op::Pageout => "madv-pageout",
            Op::Fork => "fork",
            Op::Exit => "exit",
            Op::FileWrite => "file-write",
            Op::FileRead => "file-read",
            Op::Ftruncate => "ftruncate",
        }
    }
}

/// The names of the kinds of op, as `--verbose` and
/// [`SoakConfig::without`] spell them.
pub fn op_names() -> Vec<&'static str> {
    MIX.iter().map(|(op, _)| op.name()).collect()
}

/// The processes spawned at the start: half of them, rounded up.
fn roots(max_procs: usize) -> usize {
    max_procs.max(1).div_ceil(2)
}

/// splitmix64: small, fast and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

/// What one page must hold: `want` at `off`; `maybe_zero` after MADV_FREE
/// (zero is also right until the page is written).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cell {
    off: u16,
    want: [u8; TAG],
    maybe_zero: bool,
}

/// What backs a region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backing {
    /// Private anonymous memory: the process's own cells.
    Anon,
    /// A shared mapping of tmpfs file `file` from page `pgoff`.
    File { file: usize, pgoff: u64 },
}

/// A range the model knows is mapped: `pages` pages from its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Region {
    pages: u64,
    backing: Backing,
}

impl Region {
    /// The part `[a, b)` of it (in pages).
    fn part(self, a: u64, b: u64) -> Region {
        Region {
            pages: b - a,
            backing: match self.backing {
                Backing::Anon => Backing::Anon,
                Backing::File { file, pgoff } => Backing::File {
                    file,
                    pgoff: pgoff + a,
                },
            },
        }
    }
}

/// One process as the model sees it.
#[derive(Clone, Debug, Default)]
struct ProcModel {
    /// Its parent (0: none).
    ppid: u32,
    /// Regions by start address (changed only through `add_region` and
    /// `take_region`, which keep `anon` up to date).
    regions: BTreeMap<u64, Region>,
    /// The regions' starts in no particular order, and where each is in
    /// it: a region picked at random in O(1) (they fragment into
    /// thousands over a long run).
    starts: Vec<u64>,
    slot: HashMap<u64, usize>,
    /// Pages of its anonymous regions: read after every op, so kept rather
    /// than summed over regions that fragment into thousands.
    anon: u64,
    /// Written pages of its private anonymous regions (absent: zero).
    cells: BTreeMap<u64, Cell>,
    /// Its descriptor for each tmpfs file it opened.
    fds: BTreeMap<usize, i32>,
}

impl ProcModel {
    fn anon_pages(&self) -> u64 {
        self.anon
    }

    /// True if `starts` and `slot` index exactly the regions.
    fn index_consistent(&self) -> bool {
        self.starts.len() == self.regions.len()
            && self.slot.len() == self.regions.len()
            && self
                .starts
                .iter()
                .enumerate()
                .all(|(i, a)| self.slot.get(a) == Some(&i) && self.regions.contains_key(a))
    }

    /// `anon` recomputed from the regions, for the periodic check.
    fn anon_pages_summed(&self) -> u64 {
        self.regions
            .values()
            .filter(|r| r.backing == Backing::Anon)
            .map(|r| r.pages)
            .sum()
    }

    fn add_region(&mut self, start: u64, r: Region) {
        if r.backing == Backing::Anon {
            self.anon += r.pages;
        }
        match self.regions.insert(start, r) {
            Some(old) if old.backing == Backing::Anon => self.anon -= old.pages,
            Some(_) => {}
            None => {
                self.slot.insert(start, self.starts.len());
                self.starts.push(start);
            }
        }
    }

    fn take_region(&mut self, start: u64) -> Option<Region> {
        let r = self.regions.remove(&start)?;
        if r.backing == Backing::Anon {
            self.anon -= r.pages;
        }
        let i = self.slot.remove(&start).expect("every region has a slot");
        self.starts.swap_remove(i);
        if let Some(&moved) = self.starts.get(i) {
            self.slot.insert(moved, i);
        }
        Some(r)
    }

    fn file_regions(&self) -> usize {
        self.regions
            .values()
            .filter(|r| r.backing != Backing::Anon)
            .count()
    }
}

/// A tmpfs file as the model sees it.
#[derive(Clone, Debug)]
struct FileModel {
    path: String,
    size: u64,
    /// Written pages by index (absent: zero).
    cells: BTreeMap<u64, Cell>,
}

impl FileModel {
    /// Pages a mapping may reach without SIGBUS.
    fn pages(&self) -> u64 {
        self.size.div_ceil(PAGE)
    }
}

/// Where a cell lives, for resynchronizing after a mismatch.
#[derive(Clone, Copy, Debug)]
enum Loc {
    Anon(u32, u64),
    File(usize, u64),
}

/// Counts of one kind of op.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpCount {
    /// Times it ran.
    pub runs: u64,
    /// Allocation failures it met (ENOMEM, VM_FAULT_OOM).
    pub enomem: u64,
}

/// The result of a soak run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SoakReport {
    /// The workload seed.
    pub seed: u64,
    /// Operations run.
    pub ops: u64,
    /// Page faults (vmstat pgfault) and the major ones (pgmajfault).
    pub faults: u64,
    /// Major faults.
    pub major_faults: u64,
    /// Pages read from swap (pswpin).
    pub swap_ins: u64,
    /// Pages written to swap (pswpout).
    pub swap_outs: u64,
    /// Processes the OOM killer took (vmstat oom_kill).
    pub oom_kills: u64,
    /// Reads that returned something the model does not allow (and
    /// operations that failed in a way Linux would not).
    pub mismatches: u64,
    /// Allocation failures (ENOMEM, VM_FAULT_OOM), counted and skipped.
    pub alloc_failures: u64,
    /// MADV_COLD / MADV_PAGEOUT calls that returned EINVAL.
    pub unsupported: u64,
    /// Page reads checked against the model.
    pub reads: u64,
    /// The most private anonymous pages the processes had mapped at once
    /// (pages shared copy-on-write counted in each process).
    pub peak_pages: u64,
    /// The most memory in use at once, in pages: RAM not free plus swap
    /// slots in use (after an op).
    pub peak_used: u64,
    /// Swap slots still in use after every process exited (`None` if
    /// the run stopped before).
    pub swap_left: Option<i64>,
    /// Counts per kind of op, in the table's order.
    pub per_op: Vec<(&'static str, OpCount)>,
    /// The first mismatch, with seed and op number.
    pub first_mismatch: Option<String>,
    /// The first `mm::debug` failure, with seed and op number.
    pub check_failure: Option<String>,
}

impl SoakReport {
    /// No mismatch and every check passed.
    pub fn passed(&self) -> bool {
        self.mismatches == 0 && self.check_failure.is_none()
    }

    /// The first failure (a check failure before a mismatch), if any.
    pub fn failure(&self) -> Option<&str> {
        self.check_failure
            .as_deref()
            .or(self.first_mismatch.as_deref())
    }

    /// The report as `lmm soak` prints it; `verbose` adds the table of
    /// op kinds and the other counters.
    pub fn render(&self, verbose: bool) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "ops: {}", self.ops);
        let _ = writeln!(s, "faults: {} (major {})", self.faults, self.major_faults);
        let _ = writeln!(s, "swap-ins: {}", self.swap_ins);
        let _ = writeln!(s, "swap-outs: {}", self.swap_outs);
        let _ = writeln!(s, "oom kills: {}", self.oom_kills);
        let _ = writeln!(s, "mismatches: {}", self.mismatches);
        if verbose {
            let _ = writeln!(s, "{:<14} {:>10} {:>8}", "op", "runs", "enomem");
            for (name, c) in &self.per_op {
                let _ = writeln!(s, "{name:<14} {:>10} {:>8}", c.runs, c.enomem);
            }
            let _ = writeln!(s, "page reads checked: {}", self.reads);
            let _ = writeln!(s, "allocation failures: {}", self.alloc_failures);
            let _ = writeln!(s, "madvise unsupported: {}", self.unsupported);
            let _ = writeln!(s, "peak anonymous pages mapped: {}", self.peak_pages);
            let _ = writeln!(s, "peak memory used (RAM + swap): {} pages", self.peak_used);
            if let Some(left) = self.swap_left {
                let _ = writeln!(s, "swap slots in use after exit: {left}");
            }
        }
        s
    }
}

/// Runs the soak; an error only if the machine cannot boot.
pub fn run(cfg: &SoakConfig) -> Result<SoakReport, String> {
    for w in &cfg.without {
        if !op_names().contains(&w.as_str()) {
            return Err(format!(
                "unknown op {w:?}: expected one of {}",
                op_names().join(", ")
            ));
        }
    }
    let weights: Vec<u64> = MIX
        .iter()
        .map(|(op, w)| {
            if cfg.without.iter().any(|x| x == op.name()) {
                0
            } else {
                *w
            }
        })
        .collect();
    if weights.iter().all(|&w| w == 0) {
        return Err("every kind of op is left out".into());
    }
    let m = Machine::boot(cfg.machine.clone()).map_err(|e| e.to_string())?;
    let ram_pages = cfg.machine.ram / PAGE;
    let roots = roots(cfg.max_procs);
    let mut s = Soak {
        cfg,
        m,
        rng: Rng(cfg.seed ^ 0x736f_616b),
        procs: BTreeMap::new(),
        files: (0..FILES)
            .map(|i| FileModel {
                path: format!("/tmp/soak{i}"),
                size: 0,
                cells: BTreeMap::new(),
            })
            .collect(),
        version: 0,
        op: 0,
        cur: Op::Write,
        weights,
        counts: [OpCount::default(); MIX.len()],
        // The independent processes' private memory together: 3 times
        // RAM; forked children add what they set apart by writing.
        cap: (ram_pages * 3 / roots as u64).max(16),
        report: SoakReport {
            seed: cfg.seed,
            ..Default::default()
        },
    };
    s.run();
    Ok(s.finish())
}

struct Soak<'a> {
    cfg: &'a SoakConfig,
    m: Machine,
    rng: Rng,
    procs: BTreeMap<u32, ProcModel>,
    files: Vec<FileModel>,
    version: u64,
    /// The op running (1-based).
    op: u64,
    cur: Op,
    /// The weight of each kind in the mix (0: left out).
    weights: Vec<u64>,
    counts: [OpCount; MIX.len()],
    /// Private anonymous pages a process may have.
    cap: u64,
    report: SoakReport,
}

impl Soak<'_> {
    /// Runs `f`; a panic in the machine is a failure of the run (with
    /// the seed and op number) instead of the end of the program.
    fn guarded(&mut self, f: impl FnOnce(&mut Self)) -> bool {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self)));
        match r {
            Ok(()) => true,
            Err(e) => {
                let msg = e
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| e.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                if self.report.check_failure.is_none() {
                    self.report.check_failure = Some(format!(
                        "seed {} op {}: panic in {}: {msg}",
                        self.cfg.seed,
                        self.op,
                        self.cur.name()
                    ));
                }
                false
            }
        }
    }

    fn run(&mut self) {
        // Independent processes that live through the run (unless the
        // OOM killer takes them); forked children come and go.
        for _ in 0..roots(self.cfg.max_procs) {
            match self.m.spawn("soak") {
                Ok(pid) => {
                    self.procs.insert(pid, ProcModel::default());
                }
                Err(e) => self.errno("spawn", e),
            }
        }
        for op in 1..=self.cfg.ops {
            self.op = op;
            let ok = self.guarded(|s| {
                s.reconcile();
                let kind = s.pick_op();
                s.step(kind);
                for _ in 0..READS_PER_OP {
                    s.random_read();
                }
                if s.cfg.inject_corruption_at == Some(op) {
                    s.inject_corruption();
                }
            });
            if !ok {
                return;
            }
            self.report.ops = op;
            if let Some(f) = &self.cfg.on_op {
                (f.0)(op);
            }
            let mapped = self.procs.values().map(|p| p.anon_pages()).sum();
            self.report.peak_pages = self.report.peak_pages.max(mapped);
            let used = self.used_pages();
            self.report.peak_used = self.report.peak_used.max(used);
            if self.cfg.check_every > 0 && op % self.cfg.check_every == 0 && !self.check() {
                return;
            }
            if self.cfg.progress > 0 && op % self.cfg.progress == 0 {
                let r = &self.report;
                let (regions, cells): (usize, usize) = self
                    .procs
                    .values()
                    .map(|p| (p.regions.len(), p.cells.len()))
                    .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
                eprintln!(
                    "soak: op {op} of {}: {} mismatches, {} oom kills, {} allocation failures, {used} pages in use, {regions} regions, {cells} pages written",
                    self.cfg.ops, r.mismatches, r.oom_kills, r.alloc_failures
                );
            }
        }
        if self.cfg.trace {
            for (pid, p) in &self.procs {
                let rss = self.m.process(*pid).map(|q| format!("{:?}", q.mm.rss));
                eprintln!(
                    "pid {pid}: {} regions, {} anon pages, {} written; {rss:?}",
                    p.regions.len(),
                    p.anon_pages(),
                    p.cells.len()
                );
            }
        }
        if !self.guarded(|s| {
            s.reconcile();
            s.sweep();
        }) || !self.check()
        {
            return;
        }
        // Every process exits: every page and swap slot must come back.
        let pids: Vec<u32> = self.procs.keys().rev().copied().collect();
        if !self.guarded(|s| {
            for pid in pids {
                let _ = s.m.exit(pid);
            }
        }) {
            return;
        }
        self.procs.clear();
        if !self.check() {
            return;
        }
        self.report.swap_left =
            Some(self.m.swap().table.total_swap_pages() - self.m.swap().table.nr_swap_pages());
        if self.cfg.trace {
            eprintln!(
                "after exit: {} pages in the swap cache, {} free pages of {}",
                self.m.swap().nr_cached(),
                self.m.pa().nr_free_pages(),
                self.m.pa().totalram_pages()
            );
        }
    }

    fn finish(mut self) -> SoakReport {
        let ev = &self.m.pa().events;
        self.report.faults = ev.get(VmEvent::Pgfault);
        self.report.major_faults = ev.get(VmEvent::Pgmajfault);
        self.report.swap_ins = ev.get(VmEvent::Pswpin);
        self.report.swap_outs = ev.get(VmEvent::Pswpout);
        self.report.oom_kills = ev.get(VmEvent::OomKill);
        self.report.per_op = MIX
            .iter()
            .zip(self.counts)
            .map(|((op, _), c)| (op.name(), c))
            .collect();
        self.report
    }

    /// RAM not free plus swap slots in use.
    fn used_pages(&self) -> u64 {
        let pa = &self.m.pa();
        let t = &self.m.swap().table;
        pa.totalram_pages().saturating_sub(pa.nr_free_pages())
            + (t.total_swap_pages() - t.nr_swap_pages()).max(0) as u64
    }

    /// `mm::debug`; false (and the failure recorded) if it fails.
    fn check(&mut self) -> bool {
        if let Some((pid, p)) = self
            .procs
            .iter()
            .find(|(_, p)| p.anon != p.anon_pages_summed() || !p.index_consistent())
        {
            self.report.check_failure = Some(format!(
                "seed {} op {}: the model of pid {pid} is inconsistent: anonymous page count {}, its regions hold {}, or the index of regions is off",
                self.cfg.seed,
                self.op,
                p.anon,
                p.anon_pages_summed()
            ));
            return false;
        }
        match self.m.check() {
            Ok(()) => true,
            Err(e) => {
                if self.report.check_failure.is_none() {
                    self.report.check_failure = Some(format!(
                        "seed {} op {}: mm::debug: {e}",
                        self.cfg.seed, self.op
                    ));
                }
                false
            }
        }
    }

    fn fail(&mut self, what: String) {
        // A process the OOM killer took in this op fails whatever it was
        // doing (ESRCH, SIGSEGV on its gone address space): an allocation
        // failure, not a mismatch.
        if self.procs.keys().any(|&p| self.m.process(p).is_none()) {
            return self.enomem();
        }
        self.report.mismatches += 1;
        if self.report.first_mismatch.is_none() {
            self.report.first_mismatch =
                Some(format!("seed {} op {}: {what}", self.cfg.seed, self.op));
        }
    }

    fn enomem(&mut self) {
        self.report.alloc_failures += 1;
        self.counts[self.cur as usize].enomem += 1;
    }

    /// An errno: allocation failures are counted, anything else is wrong.
    fn errno(&mut self, what: &str, e: Errno) {
        if e == Errno::ENOMEM {
            self.enomem();
        } else {
            self.fail(format!("{what}: {e}"));
        }
    }

    /// A fault on an access the model allows: OOM is counted.
    fn fault(&mut self, what: String, f: UserFault) {
        match f {
            UserFault::Oom { .. } => self.enomem(),
            _ => self.fail(format!("{what}: {f}")),
        }
    }

    /// Drops the processes the OOM killer took (reaping their zombies),
    /// and starts a process if none is left.
    fn reconcile(&mut self) {
        let gone: Vec<u32> = self
            .procs
            .keys()
            .copied()
            .filter(|&p| self.m.process(p).is_none())
            .collect();
        for pid in gone {
            if let Some(p) = self.procs.remove(&pid) {
                if self.procs.contains_key(&p.ppid) {
                    let _ = self.m.wait(p.ppid, i64::from(pid));
                }
            }
        }
        if self.procs.is_empty() {
            match self.m.spawn("soak") {
                Ok(pid) => {
                    self.procs.insert(pid, ProcModel::default());
                }
                Err(e) => self.errno("spawn", e),
            }
        }
    }

    fn pick_op(&mut self) -> Op {
        let total: u64 = self.weights.iter().sum();
        let mut r = self.rng.below(total);
        for (&(op, _), &w) in MIX.iter().zip(&self.weights) {
            if r < w {
                return op;
            }
            r -= w;
        }
        MIX[0].0
    }

    /// A line of the trace.
    fn note(&self, line: impl FnOnce() -> String) {
        if self.cfg.trace {
            eprintln!("  {}", line());
        }
    }

    fn enabled(&self, op: Op) -> bool {
        self.weights[op as usize] > 0
    }

    fn pick_proc(&mut self) -> Option<u32> {
        let n = self.rng.below(self.procs.len() as u64) as usize;
        self.procs.keys().nth(n).copied()
    }

    /// A random region of `pid` that `want` accepts.
    /// A region of `pid` that `want` accepts, each equally likely: a few
    /// tries at random among all (uniform over the accepted ones), then a
    /// count of the accepted ones if those missed.
    fn pick_region(&mut self, pid: u32, want: fn(&Region) -> bool) -> Option<(u64, Region)> {
        let p = self.procs.get(&pid)?;
        if p.starts.is_empty() {
            return None;
        }
        for _ in 0..8 {
            let start = p.starts[self.rng.below(p.starts.len() as u64) as usize];
            let r = p.regions[&start];
            if want(&r) {
                return Some((start, r));
            }
        }
        let regions = &p.regions;
        let count = regions.values().filter(|r| want(r)).count();
        let n = self.rng.below(count as u64) as usize;
        regions
            .iter()
            .filter(|(_, r)| want(r))
            .nth(n)
            .map(|(&a, &r)| (a, r))
    }

    /// The part of a region of `pid` that munmap or mremap takes: a
    /// [`Self::sub_range`], or all of it once `pid` has
    /// [`MAX_FRAGMENTS`] regions.
    fn split_range(&mut self, pid: u32, pages: u64) -> (u64, u64) {
        if self
            .procs
            .get(&pid)
            .is_some_and(|p| p.regions.len() >= MAX_FRAGMENTS)
        {
            return (0, pages);
        }
        self.sub_range(pages)
    }

    /// A random part `[a, b)` of `pages` pages: now and then all of it,
    /// else a head, a tail or a middle of up to [`MAX_RUN`] pages.
    fn sub_range(&mut self, pages: u64) -> (u64, u64) {
        if self.rng.below(16) == 0 {
            return (0, pages);
        }
        let len = 1 + self.rng.below(pages.min(MAX_RUN));
        let a = match self.rng.below(3) {
            0 => 0,
            1 => pages - len,
            _ => self.rng.below(pages - len + 1),
        };
        (a, a + len)
    }

    fn new_tag(&mut self, writer: u32, page: u64) -> [u8; TAG] {
        self.version += 1;
        let mut t = [0u8; TAG];
        t[..8]
            .copy_from_slice(&((u64::from(writer) << 48) | (page & ((1 << 48) - 1))).to_le_bytes());
        t[8..].copy_from_slice(&self.version.to_le_bytes());
        t
    }

    fn new_off(&mut self, room: u64) -> u16 {
        self.rng.below(room.min(PAGE) - TAG as u64 + 1) as u16
    }

    fn step(&mut self, kind: Op) {
        self.cur = kind;
        self.counts[kind as usize].runs += 1;
        let Some(pid) = self.pick_proc() else {
            return;
        };
        if self.cfg.trace {
            eprintln!("op {}: {} pid {pid}", self.op, kind.name());
        }
        match kind {
            Op::Write | Op::Read => self.op_run(pid, kind == Op::Write),
            Op::Mmap => self.op_mmap(pid),
            Op::MmapFile => self.op_mmap_file(pid),
            Op::Munmap => self.op_munmap(pid),
            Op::Mremap => self.op_mremap(pid),
            Op::DontNeed | Op::Free | Op::Cold | Op::Pageout => self.op_madvise(pid, kind),
            Op::Fork => self.op_fork(pid),
            Op::Exit => self.op_exit(),
            Op::FileWrite => self.op_file_write(pid),
            Op::FileRead => self.op_file_read(pid),
            Op::Ftruncate => self.op_ftruncate(pid),
        }
    }

    /// Writes (or checks) a run of pages of a random region.
    fn op_run(&mut self, pid: u32, write: bool) {
        let Some((start, r)) = self.pick_region(pid, |_| true) else {
            return self.op_mmap(pid);
        };
        let i = self.rng.below(r.pages);
        let n = 1 + self.rng.below(MAX_RUN.min(r.pages - i));
        for j in i..i + n {
            let addr = start + j * PAGE;
            let go_on = if write {
                self.write_page(pid, addr)
            } else {
                self.check_page(pid, addr)
            };
            if !go_on {
                break;
            }
        }
    }

    /// The region of `pid` that holds `addr`.
    fn region_at(&self, pid: u32, addr: u64) -> Option<(u64, Region)> {
        let (&start, &r) = self.procs.get(&pid)?.regions.range(..=addr).next_back()?;
        (addr < start + r.pages * PAGE).then_some((start, r))
    }

    /// Where the page at `addr` of `pid` lives in the model, and whether
    /// it is past the end of its file.
    fn locate(&self, pid: u32, addr: u64) -> Option<(Loc, bool)> {
        let (start, r) = self.region_at(pid, addr)?;
        Some(match r.backing {
            Backing::Anon => (Loc::Anon(pid, addr), false),
            Backing::File { file, pgoff } => {
                let idx = pgoff + (addr - start) / PAGE;
                (Loc::File(file, idx), idx >= self.files[file].pages())
            }
        })
    }

    fn cell(&self, loc: Loc) -> Option<Cell> {
        match loc {
            Loc::Anon(pid, addr) => self.procs.get(&pid)?.cells.get(&addr).copied(),
            Loc::File(f, idx) => self.files[f].cells.get(&idx).copied(),
        }
    }

    fn set_cell(&mut self, loc: Loc, c: Cell) {
        match loc {
            Loc::Anon(pid, addr) => {
                if let Some(p) = self.procs.get_mut(&pid) {
                    if c.want == [0; TAG] {
                        p.cells.remove(&addr);
                    } else {
                        p.cells.insert(addr, c);
                    }
                }
            }
            Loc::File(f, idx) => {
                self.files[f].cells.insert(idx, c);
            }
        }
    }

    /// Writes a new tag on the page at `addr`; false to stop a run.
    fn write_page(&mut self, pid: u32, addr: u64) -> bool {
        let Some((loc, past_eof)) = self.locate(pid, addr) else {
            return false;
        };
        if past_eof {
            let off = self.new_off(PAGE);
            return match self.m.store(pid, addr + u64::from(off), &[1; TAG]) {
                Err(UserFault::Bus { .. }) => true,
                Ok(()) => {
                    self.fail(format!(
                        "pid {pid} wrote {addr:#x} past the end of its file ({loc:?}) without SIGBUS"
                    ));
                    false
                }
                Err(f) => {
                    self.fault(format!("pid {pid} write {addr:#x} past EOF"), f);
                    false
                }
            };
        }
        let (room, id) = match loc {
            Loc::Anon(_, a) => (PAGE, a >> 12),
            // Only bytes below EOF: what a store past EOF in the last page
            // leaves is not the model's business.
            Loc::File(f, idx) => (
                (self.files[f].size - idx * PAGE).min(PAGE),
                (1 << 47) | ((f as u64) << 32) | idx,
            ),
        };
        if room < TAG as u64 {
            return true;
        }
        let off = self.new_off(room);
        let want = self.new_tag(pid, id);
        match self.m.store(pid, addr + u64::from(off), &want) {
            Ok(()) => {
                self.set_cell(
                    loc,
                    Cell {
                        off,
                        want,
                        maybe_zero: false,
                    },
                );
                true
            }
            Err(f) => {
                self.fault(format!("pid {pid} write {addr:#x} ({loc:?})"), f);
                false
            }
        }
    }

    /// Reads the page at `addr` of `pid` and compares it with the model;
    /// false to stop a run.
    fn check_page(&mut self, pid: u32, addr: u64) -> bool {
        let Some((loc, past_eof)) = self.locate(pid, addr) else {
            return false;
        };
        self.report.reads += 1;
        if past_eof {
            let off = self.new_off(PAGE);
            return match self.m.load(pid, addr + u64::from(off), TAG) {
                Err(UserFault::Bus { .. }) => true,
                Ok(got) => {
                    self.fail(format!(
                        "pid {pid} read {addr:#x} past the end of its file ({loc:?}) without SIGBUS: {}",
                        hex(&got)
                    ));
                    false
                }
                Err(f) => {
                    self.fault(format!("pid {pid} read {addr:#x} past EOF"), f);
                    false
                }
            };
        }
        let c = match self.cell(loc) {
            Some(c) => c,
            None => Cell {
                off: self.new_off(PAGE),
                want: [0; TAG],
                maybe_zero: false,
            },
        };
        match self.m.load(pid, addr + u64::from(c.off), TAG) {
            Ok(got) if got == c.want => true,
            Ok(got) if c.maybe_zero && got == [0; TAG] => {
                // A lazily freed page was reclaimed: zero from now on.
                self.set_cell(
                    loc,
                    Cell {
                        want: [0; TAG],
                        maybe_zero: false,
                        ..c
                    },
                );
                true
            }
            Ok(got) => {
                self.fail(format!(
                    "pid {pid} read {:#x} ({loc:?}): expected {}{}, got {}",
                    addr + u64::from(c.off),
                    hex(&c.want),
                    if c.maybe_zero { " or zero" } else { "" },
                    hex(&got)
                ));
                let mut want = [0; TAG];
                want.copy_from_slice(&got);
                self.set_cell(
                    loc,
                    Cell {
                        want,
                        maybe_zero: false,
                        ..c
                    },
                );
                true
            }
            Err(f) => {
                self.fault(format!("pid {pid} read {addr:#x} ({loc:?})"), f);
                false
            }
        }
    }

    fn random_read(&mut self) {
        let Some(pid) = self.pick_proc() else {
            return;
        };
        if let Some((start, r)) = self.pick_region(pid, |_| true) {
            let addr = start + self.rng.below(r.pages) * PAGE;
            self.check_page(pid, addr);
        }
    }

    /// A new private anonymous region, every page written.
    fn op_mmap(&mut self, pid: u32) {
        let Some(p) = self.procs.get(&pid) else {
            return;
        };
        let (have, regions) = (p.anon_pages(), p.regions.len());
        if have >= self.cap || regions >= MAX_REGIONS {
            // Full: rewrite instead (copy-on-write sets forked copies apart).
            return self.op_run(pid, true);
        }
        let shift = 5 + self.rng.below(7);
        let pages = (1 + self.rng.below(1 << shift)).min(self.cap - have);
        let r = self.m.sys_mmap(pid, 0, pages * PAGE, RW, ANON, None, 0);
        self.note(|| format!("mmap {pages} pages = {r:x?}"));
        match r {
            Ok(a) => {
                if self.overlaps(pid, a, pages) {
                    self.fail(format!("mmap of {pages} pages returned {a:#x}, in use"));
                }
                if let Some(p) = self.procs.get_mut(&pid) {
                    p.add_region(
                        a,
                        Region {
                            pages,
                            backing: Backing::Anon,
                        },
                    );
                }
                for i in 0..pages {
                    if !self.write_page(pid, a + i * PAGE) {
                        break;
                    }
                }
            }
            Err(e) => self.errno("mmap", e),
        }
    }

    fn overlaps(&self, pid: u32, a: u64, pages: u64) -> bool {
        let end = a + pages * PAGE;
        self.procs.get(&pid).is_some_and(|p| {
            p.regions
                .range(..end)
                .next_back()
                .is_some_and(|(&s, r)| s + r.pages * PAGE > a)
        })
    }

    /// `pid`'s descriptor of tmpfs file `f`, opened on first use.
    fn fd(&mut self, pid: u32, f: usize) -> Option<i32> {
        if let Some(&fd) = self.procs.get(&pid)?.fds.get(&f) {
            return Some(fd);
        }
        match self.m.sys_open(pid, &self.files[f].path, O_RDWR | O_CREAT) {
            Ok(fd) => {
                self.procs.get_mut(&pid)?.fds.insert(f, fd);
                Some(fd)
            }
            Err(e) => {
                self.errno("open", e);
                None
            }
        }
    }

    /// A shared mapping of part of a tmpfs file (perhaps past its end).
    fn op_mmap_file(&mut self, pid: u32) {
        let full = self
            .procs
            .get(&pid)
            .is_none_or(|p| p.file_regions() >= MAX_FILE_REGIONS || p.regions.len() >= MAX_REGIONS);
        if full {
            return self.op_run(pid, true);
        }
        let file = self.rng.below(FILES as u64) as usize;
        let Some(fd) = self.fd(pid, file) else {
            return;
        };
        let pgoff = self.rng.below(FILE_PAGES);
        let pages = 1 + self.rng.below(256);
        match self
            .m
            .sys_mmap_fd(pid, 0, pages * PAGE, RW, MAP_SHARED, fd, pgoff * PAGE)
        {
            Ok(a) => {
                if self.overlaps(pid, a, pages) {
                    self.fail(format!(
                        "mmap of {pages} file pages returned {a:#x}, in use"
                    ));
                }
                if let Some(p) = self.procs.get_mut(&pid) {
                    p.add_region(
                        a,
                        Region {
                            pages,
                            backing: Backing::File { file, pgoff },
                        },
                    );
                }
                let n = self.rng.below(pages.min(MAX_RUN) + 1);
                for i in 0..n {
                    if !self.write_page(pid, a + i * PAGE) {
                        break;
                    }
                }
            }
            Err(e) => self.errno("mmap of a file", e),
        }
    }

    /// Takes pages `[a, b)` of the region at `start` out of the model's
    /// region map (the rest stays as up to two regions); returns that part.
    fn detach(&mut self, pid: u32, start: u64, a: u64, b: u64) -> Option<Region> {
        let p = self.procs.get_mut(&pid)?;
        let r = p.take_region(start)?;
        if a > 0 {
            p.add_region(start, r.part(0, a));
        }
        if b < r.pages {
            p.add_region(start + b * PAGE, r.part(b, r.pages));
        }
        Some(r.part(a, b))
    }

    /// The cells of `pid` in `[lo, hi)`, removed from it.
    fn take_cells(&mut self, pid: u32, lo: u64, hi: u64) -> BTreeMap<u64, Cell> {
        let Some(p) = self.procs.get_mut(&pid) else {
            return BTreeMap::new();
        };
        // One by one: splitting and appending rebuild the whole map, and a
        // range is small next to a long run's tens of thousands of cells.
        let keys: Vec<u64> = p.cells.range(lo..hi).map(|(&k, _)| k).collect();
        keys.into_iter()
            .filter_map(|k| p.cells.remove_entry(&k))
            .collect()
    }

    fn op_munmap(&mut self, pid: u32) {
        let Some((start, r)) = self.pick_region(pid, |_| true) else {
            return;
        };
        let (a, b) = self.split_range(pid, r.pages);
        let (lo, hi) = (start + a * PAGE, start + b * PAGE);
        let res = self.m.sys_munmap(pid, lo, hi - lo);
        self.note(|| format!("munmap {lo:#x} {} pages = {res:?}", b - a));
        match res {
            Ok(_) => {
                self.detach(pid, start, a, b);
                self.take_cells(pid, lo, hi);
            }
            Err(e) => self.errno("munmap", e),
        }
    }

    /// mremap of a part of a region: grow, shrink or move it
    /// (MREMAP_MAYMOVE; a move with MREMAP_FIXED onto a reserved range).
    fn op_mremap(&mut self, pid: u32) {
        let Some((start, r)) = self.pick_region(pid, |_| true) else {
            return self.op_mmap(pid);
        };
        let (a, b) = if self.rng.below(2) == 0 {
            (0, r.pages)
        } else {
            self.split_range(pid, r.pages)
        };
        let old = b - a;
        let old_addr = start + a * PAGE;
        let have = self.procs.get(&pid).map_or(0, |p| p.anon_pages());
        let mut how = self.rng.below(3);
        let grow = 1 + self.rng.below(256);
        if how == 0 && r.backing == Backing::Anon && have + grow > self.cap {
            how = 1;
        }
        if how == 1 && old == 1 {
            how = 2;
        }
        let new = match how {
            0 => old + grow,
            1 => old - 1 - self.rng.below((old - 1).min(MAX_RUN)),
            _ => old,
        };
        let (flags, target) = if how == 2 {
            match self
                .m
                .sys_mmap(pid, 0, new * PAGE, PROT_NONE, ANON, None, 0)
            {
                Ok(t) => (MREMAP_MAYMOVE | MREMAP_FIXED, t),
                Err(e) => return self.errno("mmap of a reserve", e),
            }
        } else {
            (MREMAP_MAYMOVE, 0)
        };
        let res = self
            .m
            .sys_mremap(pid, old_addr, old * PAGE, new * PAGE, flags, target);
        self.note(|| {
            format!(
                "mremap {old_addr:#x} {old} pages to {new} flags {flags} {target:#x} = {res:x?}"
            )
        });
        match res {
            Ok(na) => {
                if target != 0 && na != target {
                    self.fail(format!(
                        "mremap MREMAP_FIXED to {target:#x} returned {na:#x}"
                    ));
                }
                let Some(mid) = self.detach(pid, start, a, b) else {
                    return;
                };
                let moved = self.take_cells(pid, old_addr, old_addr + old * PAGE);
                if self.overlaps(pid, na, new) {
                    self.fail(format!(
                        "mremap of {old_addr:#x} ({old} pages) to {new} pages returned {na:#x}, in use"
                    ));
                }
                if let Some(p) = self.procs.get_mut(&pid) {
                    for (k, c) in moved {
                        let i = (k - old_addr) / PAGE;
                        if i < new {
                            p.cells.insert(na + i * PAGE, c);
                        }
                    }
                    p.add_region(
                        na,
                        Region {
                            pages: new,
                            backing: mid.backing,
                        },
                    );
                }
            }
            Err(e) => {
                if target != 0 {
                    let _ = self.m.sys_munmap(pid, target, new * PAGE);
                }
                self.errno(
                    &format!("mremap of {old_addr:#x} ({old} pages) to {new} pages"),
                    e,
                )
            }
        }
    }

    fn op_madvise(&mut self, pid: u32, kind: Op) {
        let pick = if kind == Op::Free {
            self.pick_region(pid, |r| r.backing == Backing::Anon)
        } else {
            self.pick_region(pid, |_| true)
        };
        let Some((start, r)) = pick else {
            return self.op_mmap(pid);
        };
        let (a, b) = self.sub_range(r.pages);
        let (lo, hi) = (start + a * PAGE, start + b * PAGE);
        let advice = match kind {
            Op::DontNeed => MADV_DONTNEED,
            Op::Free => MADV_FREE,
            Op::Cold => MADV_COLD,
            _ => MADV_PAGEOUT,
        };
        let res = self.m.sys_madvise(pid, lo, hi - lo, advice);
        self.note(|| format!("madvise {lo:#x} {} pages {advice} = {res:?}", b - a));
        match res {
            Ok(_) => match (kind, r.backing) {
                (Op::DontNeed, Backing::Anon) => {
                    self.take_cells(pid, lo, hi);
                }
                (Op::Free, _) => {
                    if let Some(p) = self.procs.get_mut(&pid) {
                        for c in p.cells.range_mut(lo..hi).map(|(_, c)| c) {
                            c.maybe_zero = true;
                        }
                    }
                }
                _ => {}
            },
            Err(Errno::EINVAL) if matches!(kind, Op::Cold | Op::Pageout) => {
                self.report.unsupported += 1;
            }
            Err(e) => self.errno(kind.name(), e),
        }
    }

    fn op_fork(&mut self, pid: u32) {
        if self.procs.len() >= self.cfg.max_procs {
            // Full: a copy-on-write write instead.
            return self.op_run(pid, true);
        }
        match self.m.fork(pid) {
            Ok(child) => {
                if let Some(p) = self.procs.get(&pid) {
                    let mut c = p.clone();
                    c.ppid = pid;
                    self.procs.insert(child, c);
                }
            }
            Err(Errno::EAGAIN) => self.enomem(),
            Err(e) => self.errno("fork", e),
        }
    }

    /// A forked child exits; its parent reaps it.
    fn op_exit(&mut self) {
        let others: Vec<u32> = self
            .procs
            .iter()
            .filter(|(_, p)| p.ppid != 0)
            .map(|(&pid, _)| pid)
            .collect();
        if others.is_empty() {
            if let Some(pid) = self.pick_proc().filter(|_| self.enabled(Op::Fork)) {
                self.op_fork(pid);
            }
            return;
        }
        let pid = others[self.rng.below(others.len() as u64) as usize];
        let ppid = self.m.process(pid).map_or(0, |p| p.ppid);
        match self.m.exit_code(pid, 0) {
            Ok(()) => {
                self.procs.remove(&pid);
                if ppid != 0 && self.procs.contains_key(&ppid) {
                    match self.m.wait(ppid, i64::from(pid)) {
                        Ok((p, 0)) if p == pid => {}
                        r => self.fail(format!("wait({ppid}, {pid}) after exit: {r:?}")),
                    }
                }
            }
            Err(e) => self.errno("exit", e),
        }
    }

    fn op_file_write(&mut self, pid: u32) {
        let f = self.rng.below(FILES as u64) as usize;
        let Some(fd) = self.fd(pid, f) else {
            return;
        };
        let idx = self.rng.below(FILE_PAGES);
        let off = self.new_off(PAGE);
        let want = self.new_tag(pid, (1 << 47) | ((f as u64) << 32) | idx);
        let pos = idx * PAGE + u64::from(off);
        match self.m.file_write(pid, fd, Some(pos), &want) {
            Ok(TAG) => {
                let file = &mut self.files[f];
                file.size = file.size.max(pos + TAG as u64);
                file.cells.insert(
                    idx,
                    Cell {
                        off,
                        want,
                        maybe_zero: false,
                    },
                );
            }
            Ok(n) => self.fail(format!("write of {TAG} bytes to file {f} at {pos:#x}: {n}")),
            Err(Errno::ENOSPC) => self.enomem(),
            Err(e) => self.errno("file write", e),
        }
    }

    /// Reads the tag of a page of a file (or zeros, or nothing past EOF).
    fn file_check(&mut self, pid: u32, f: usize, fd: i32, idx: u64) {
        let c = match self.files[f].cells.get(&idx) {
            Some(&c) => c,
            None => Cell {
                off: self.new_off(PAGE),
                want: [0; TAG],
                maybe_zero: false,
            },
        };
        let pos = idx * PAGE + u64::from(c.off);
        let n = (self.files[f].size.saturating_sub(pos)).min(TAG as u64) as usize;
        self.report.reads += 1;
        match self.m.file_read(pid, fd, Some(pos), TAG) {
            Ok(got) if got == c.want[..n] => {}
            Ok(got) => {
                self.fail(format!(
                    "pid {pid} read file {f} at {pos:#x} (size {:#x}): expected {}, got {}",
                    self.files[f].size,
                    hex(&c.want[..n]),
                    hex(&got)
                ));
                let mut want = c.want;
                let k = got.len().min(TAG);
                want[..k].copy_from_slice(&got[..k]);
                self.files[f].cells.insert(idx, Cell { want, ..c });
            }
            Err(e) => self.errno("file read", e),
        }
    }

    fn op_file_read(&mut self, pid: u32) {
        let f = self.rng.below(FILES as u64) as usize;
        let Some(fd) = self.fd(pid, f) else {
            return;
        };
        let idx = self.rng.below(self.files[f].pages() + 1);
        self.file_check(pid, f, fd, idx);
    }

    fn op_ftruncate(&mut self, pid: u32) {
        let f = self.rng.below(FILES as u64) as usize;
        let Some(fd) = self.fd(pid, f) else {
            return;
        };
        let len = if self.rng.below(2) == 0 {
            self.rng.below(FILE_PAGES + 1) * PAGE
        } else {
            self.rng.below(FILE_PAGES * PAGE + 1)
        };
        match self.m.sys_ftruncate(pid, fd, len) {
            Ok(()) => {
                let file = &mut self.files[f];
                if len < file.size {
                    file.cells.split_off(&len.div_ceil(PAGE));
                    let tail = len % PAGE;
                    if tail != 0 {
                        if let Some(c) = file.cells.get_mut(&(len / PAGE)) {
                            for (i, b) in c.want.iter_mut().enumerate() {
                                if u64::from(c.off) + i as u64 >= tail {
                                    *b = 0;
                                }
                            }
                        }
                    }
                }
                file.size = len;
            }
            Err(e) => self.errno("ftruncate", e),
        }
    }

    /// Flips a byte of a tagged page behind the model's back.
    fn inject_corruption(&mut self) {
        let target = self.procs.iter().find_map(|(&pid, p)| {
            let n = p.cells.values().filter(|c| !c.maybe_zero).count() as u64;
            (n > 0).then_some((pid, n))
        });
        let Some((pid, n)) = target else {
            return;
        };
        let k = self.rng.below(n) as usize;
        let Some((addr, c)) = self.procs[&pid]
            .cells
            .iter()
            .filter(|(_, c)| !c.maybe_zero)
            .nth(k)
            .map(|(&a, &c)| (a, c))
        else {
            return;
        };
        let _ = self
            .m
            .write_user(pid, addr + u64::from(c.off), &[c.want[0] ^ 0x5a]);
    }

    /// Reads every page of every process and file once.
    fn sweep(&mut self) {
        let pages: Vec<(u32, u64)> = self
            .procs
            .iter()
            .flat_map(|(&pid, p)| {
                p.regions
                    .iter()
                    .flat_map(move |(&s, r)| (0..r.pages).map(move |i| (pid, s + i * PAGE)))
            })
            .collect();
        for (pid, addr) in pages {
            self.check_page(pid, addr);
        }
        let Some(pid) = self.procs.keys().next().copied() else {
            return;
        };
        for f in 0..FILES {
            let Some(fd) = self.fd(pid, f) else {
                continue;
            };
            for idx in 0..self.files[f].pages() {
                self.file_check(pid, f, fd, idx);
            }
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
