//! The sampler behind `lmm plot` and `lmm top`: a time series of a
//! machine's memory state, taken at points of a run. Each [`Sample`] is
//! read from the machine's own /proc files (meminfo, vmstat, zoneinfo,
//! buddyinfo, slabinfo, /proc/PID/stat and status), the way `vmstat 1`,
//! `free` and `htop` read Linux's, so a sample's numbers are /proc's by
//! construction. A [`Source`] produces samples; the scenario source
//! ([`ScenarioSource`]) takes one every N Rhai operations of a script, so
//! the series is the same on every run. A replay ([`ReplaySource`]) is
//! sampled every N events (system calls of an strace log, accesses of a
//! lackey trace) through an [`EventSampler`], which a native run (`lmm top
//! native`, in crates/lmm) uses too.

use std::collections::BTreeMap;

use machine::{Machine, MachineConfig};

use crate::scenario::{self, Limits, Observer, Step};

/// Orders of the buddy free lists (0..=MAX_PAGE_ORDER).
pub const ORDERS: usize = mm::mmzone::MAX_PAGE_ORDER as usize + 1;

/// How many slab caches a sample keeps (the largest by memory).
pub const TOP_SLABS: usize = 8;

/// One zone in a sample (zoneinfo and buddyinfo).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneSample {
    /// NUMA node.
    pub node: u32,
    /// Zone name (`DMA`, `DMA32`, `Normal`, ...).
    pub name: String,
    /// `pages free`.
    pub free: u64,
    /// The min, low and high watermarks, in pages.
    pub min: u64,
    /// See `min`.
    pub low: u64,
    /// See `min`.
    pub high: u64,
    /// Pages the buddy allocator manages in the zone.
    pub managed: u64,
    /// Free blocks on the buddy lists of each order (buddyinfo's columns).
    pub blocks: [u64; ORDERS],
}

/// One process in a sample (/proc/PID/stat and status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcSample {
    /// Process id.
    pub pid: u32,
    /// Command name.
    pub comm: String,
    /// VmRSS, in kB.
    pub rss_kb: u64,
    /// VmSwap, in kB.
    pub swap_kb: u64,
    /// minflt (faults resolved without I/O).
    pub minflt: u64,
    /// majflt (faults that needed I/O).
    pub majflt: u64,
}

/// One slab cache in a sample (a slabinfo line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlabSample {
    /// Cache name.
    pub name: String,
    /// Objects in use.
    pub active_objs: u64,
    /// Object size in bytes.
    pub objsize: u64,
    /// Memory of its slabs, in kB (num_slabs × pagesperslab pages).
    pub kb: u64,
}

/// The machine's memory state at one point of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Where in the run: Rhai operations so far, machines booted so far.
    pub step: Step,
    /// /proc/meminfo, in kB, by field name (`MemFree`, `Active(anon)`...).
    pub meminfo: BTreeMap<String, u64>,
    /// /proc/vmstat, by counter name (`pgfault`, `pswpout`, ...).
    pub vmstat: BTreeMap<String, u64>,
    /// Populated zones (managed pages > 0), in zoneinfo's order.
    pub zones: Vec<ZoneSample>,
    /// Processes, by pid.
    pub procs: Vec<ProcSample>,
    /// The [`TOP_SLABS`] largest slab caches, largest first (ties by name).
    pub slabs: Vec<SlabSample>,
}

impl Sample {
    /// Reads a sample from the machine's /proc files.
    pub fn take(m: &Machine, step: Step) -> Result<Sample, String> {
        let meminfo = parse_meminfo(&m.proc("meminfo")?);
        let vmstat = parse_vmstat(&m.proc("vmstat")?);
        let zones = parse_zones(&m.proc("zoneinfo")?, &m.proc("buddyinfo")?)?;
        let slabs = parse_slabinfo(&m.proc("slabinfo")?);
        let procs = m
            .processes()
            .values()
            .map(|p| {
                let status = format!("Name:\t{}\n{}", p.comm, mm::task_mmu::show_status_vm(&p.mm));
                let stat = machine::process::proc_pid_stat(p);
                let kb = |key: &str| {
                    status
                        .lines()
                        .find_map(|l| l.strip_prefix(key))
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                        .unwrap_or(0)
                };
                // After "(comm)": fields 3.. of stat; minflt is field 10,
                // majflt field 12 (proc(5)).
                let rest: Vec<&str> = stat
                    .rsplit_once(") ")
                    .map_or("", |(_, r)| r)
                    .split_whitespace()
                    .collect();
                let field = |n: usize| rest.get(n - 3).and_then(|v| v.parse().ok()).unwrap_or(0);
                ProcSample {
                    pid: p.pid,
                    comm: p.comm.clone(),
                    rss_kb: kb("VmRSS:"),
                    swap_kb: kb("VmSwap:"),
                    minflt: field(10),
                    majflt: field(12),
                }
            })
            .collect();
        Ok(Sample {
            step,
            meminfo,
            vmstat,
            zones,
            procs,
            slabs,
        })
    }

    /// A meminfo field in kB (0 if absent).
    pub fn kb(&self, field: &str) -> u64 {
        self.meminfo.get(field).copied().unwrap_or(0)
    }

    /// A vmstat counter (0 if absent).
    pub fn vm(&self, name: &str) -> u64 {
        self.vmstat.get(name).copied().unwrap_or(0)
    }

    /// Swap in use, in kB (SwapTotal − SwapFree).
    pub fn swap_used_kb(&self) -> u64 {
        self.kb("SwapTotal").saturating_sub(self.kb("SwapFree"))
    }

    /// Pages scanned by reclaim, kswapd and direct (pgscan_kswapd +
    /// pgscan_direct + pgscan_khugepaged, which /proc/vmstat lists apart).
    pub fn pgscan(&self) -> u64 {
        ["pgscan_kswapd", "pgscan_direct", "pgscan_khugepaged"]
            .iter()
            .map(|k| self.vm(k))
            .sum()
    }

    /// Pages reclaimed, kswapd and direct (the pgsteal_* counters).
    pub fn pgsteal(&self) -> u64 {
        ["pgsteal_kswapd", "pgsteal_direct", "pgsteal_khugepaged"]
            .iter()
            .map(|k| self.vm(k))
            .sum()
    }

    /// The populated zone with the most managed pages (the first of equals):
    /// the one whose fragmentation a plot follows.
    pub fn main_zone(&self) -> Option<&ZoneSample> {
        self.zones.iter().rev().max_by_key(|z| z.managed)
    }
}

/// The unusable free space index of a zone for an allocation of `order`
/// (Documentation/admin-guide/sysctl/vm.rst, `extfrag_threshold`; mm/vmstat.c
/// computes it as `unusable_free_index` for /sys/kernel/debug/extfrag/
/// unusable_index): the fraction of the free pages that sit in blocks
/// smaller than 2^order, so cannot serve such an allocation,
/// (free pages − free pages in blocks of order ≥ `order`) / free pages.
/// 0 means every free page is usable; 1 means none is. Linux reports it
/// scaled by 1000 with three decimals; a zone without free pages gives 0
/// there (nothing free, so nothing unusable), and so here.
pub fn unusable_free_index(blocks: &[u64; ORDERS], order: usize) -> f64 {
    let total: u64 = blocks.iter().enumerate().map(|(o, n)| n << o).sum();
    if total == 0 {
        return 0.0;
    }
    let suitable: u64 = blocks
        .iter()
        .enumerate()
        .skip(order)
        .map(|(o, n)| n << o)
        .sum();
    (total - suitable) as f64 / total as f64
}

/// Parses `Key:   N kB` lines.
fn parse_meminfo(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let n = v.split_whitespace().next()?.parse().ok()?;
            Some((k.trim().to_string(), n))
        })
        .collect()
}

/// Parses `name N` lines.
fn parse_vmstat(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let n = it.next()?.parse().ok()?;
            Some((k.to_string(), n))
        })
        .collect()
}

/// Zones from zoneinfo (free, watermarks, managed) joined with buddyinfo's
/// free lists; zones without managed pages are left out.
fn parse_zones(zoneinfo: &str, buddyinfo: &str) -> Result<Vec<ZoneSample>, String> {
    let header = |l: &str| -> Option<(u32, String)> {
        let rest = l.strip_prefix("Node ")?;
        let (node, rest) = rest.split_once(", zone")?;
        let mut words = rest.split_whitespace();
        Some((node.trim().parse().ok()?, words.next()?.to_string()))
    };
    let mut zones: Vec<ZoneSample> = Vec::new();
    for l in zoneinfo.lines() {
        if let Some((node, name)) = header(l) {
            zones.push(ZoneSample {
                node,
                name,
                free: 0,
                min: 0,
                low: 0,
                high: 0,
                managed: 0,
                blocks: [0; ORDERS],
            });
            continue;
        }
        let Some(z) = zones.last_mut() else { continue };
        let words: Vec<&str> = l.split_whitespace().collect();
        let num = |i: usize| words.get(i).and_then(|w| w.parse().ok()).unwrap_or(0);
        match words.as_slice() {
            ["pages", "free", ..] => z.free = num(2),
            ["min", _] => z.min = num(1),
            ["low", _] => z.low = num(1),
            ["high", _] => z.high = num(1),
            ["managed", _] => z.managed = num(1),
            _ => {}
        }
    }
    for l in buddyinfo.lines() {
        let Some((node, name)) = header(l) else {
            continue;
        };
        let counts: Vec<u64> = l
            .split_whitespace()
            .skip(4)
            .map(|w| w.parse().map_err(|_| format!("buddyinfo: bad count {w:?}")))
            .collect::<Result<_, _>>()?;
        if let Some(z) = zones.iter_mut().find(|z| z.node == node && z.name == name) {
            for (slot, n) in z.blocks.iter_mut().zip(counts) {
                *slot = n;
            }
        }
    }
    zones.retain(|z| z.managed > 0);
    Ok(zones)
}

/// The [`TOP_SLABS`] largest caches of a slabinfo file.
fn parse_slabinfo(text: &str) -> Vec<SlabSample> {
    let mut caches: Vec<SlabSample> = text
        .lines()
        .filter(|l| !l.starts_with("slabinfo") && !l.starts_with('#'))
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let n = |i: usize| w.get(i).and_then(|v| v.parse::<u64>().ok());
            // name active num objsize objperslab pagesperslab : tunables
            // l b s : slabdata active_slabs num_slabs sharedavail
            Some(SlabSample {
                name: w.first()?.to_string(),
                active_objs: n(1)?,
                objsize: n(3)?,
                kb: n(14)? * n(5)? * (mm::types::PAGE_SIZE >> 10),
            })
        })
        .collect();
    caches.sort_by(|a, b| b.kb.cmp(&a.kb).then_with(|| a.name.cmp(&b.name)));
    caches.truncate(TOP_SLABS);
    caches
}

/// Something that runs and reports samples of a machine: a scenario or a
/// replay (here), a real program (`lmm top native`).
pub trait Source {
    /// A line naming what runs, for titles.
    fn title(&self) -> String;

    /// What [`Step::ops`] counts, for titles (`operation` of a scenario).
    fn unit(&self) -> &'static str {
        "operation"
    }

    /// Runs, handing each sample to `sink` in order; `sink` returns false
    /// to stop early (not an error). Errors say what failed.
    fn run(&mut self, sink: Box<dyn FnMut(Sample) -> bool>) -> Result<(), String>;

    /// Runs to the end and returns every sample, in order.
    fn collect(&mut self) -> Result<Vec<Sample>, String> {
        let got = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let g = got.clone();
        self.run(Box::new(move |s| {
            g.borrow_mut().push(s);
            true
        }))?;
        Ok(got.take())
    }
}

/// A Rhai scenario, sampled every `every` operations and once at its end.
pub struct ScenarioSource {
    /// Script name, for errors and titles.
    pub file: String,
    /// The script.
    pub script: String,
    /// The machine it boots first.
    pub config: MachineConfig,
    /// Run limits.
    pub limits: Limits,
    /// Rhai operations between samples (at least 1).
    pub every: u64,
}

impl Source for ScenarioSource {
    fn title(&self) -> String {
        self.file.clone()
    }

    fn run(&mut self, sink: Box<dyn FnMut(Sample) -> bool>) -> Result<(), String> {
        use std::cell::{Cell, RefCell};
        use std::rc::Rc;
        let every = self.every.max(1);
        // The sink and what stopped the run, shared by the observer and the
        // final sample below.
        let sink = Rc::new(RefCell::new(sink));
        let failed: Rc<RefCell<Option<String>>> = Rc::default();
        let stopped = Rc::new(Cell::new(false));
        let last = Rc::new(Cell::new(Step { ops: 0, boots: 0 }));
        let (s, f, st, l) = (sink.clone(), failed.clone(), stopped.clone(), last.clone());
        let observer: Observer = Box::new(move |m, step| {
            l.set(step);
            if step.ops % every != 0 {
                return true;
            }
            match Sample::take(m, step) {
                Ok(sample) => {
                    let go = (s.borrow_mut())(sample);
                    st.set(!go);
                    go
                }
                Err(e) => {
                    *f.borrow_mut() = Some(e);
                    false
                }
            }
        });
        let run = scenario::run_observed(
            &self.file,
            &self.script,
            self.config.clone(),
            &self.limits,
            Some(observer),
        );
        if let Some(e) = failed.borrow_mut().take() {
            return Err(e);
        }
        if stopped.get() {
            return Ok(());
        }
        let (_, m) = run.map_err(|e| e.to_string())?;
        // The end of the script: one more sample, after its last operation.
        let Step { ops, boots } = last.get();
        let end = Sample::take(
            &m,
            Step {
                ops: ops + 1,
                boots,
            },
        )?;
        (sink.borrow_mut())(end);
        Ok(())
    }
}

/// A watcher of a replay's machine, called after each event (a system call,
/// an access); false asks it to stop watching.
pub type Watch = Box<dyn FnMut(&Machine) -> bool>;

/// Samples a machine every `every` events of a run that is not a script
/// (a replay, a native program): the run calls [`EventSampler::event`]
/// after each event, [`EventSampler::finish`] at its end. [`Step::ops`]
/// counts the events; [`Step::boots`] is 0 (one machine).
pub struct EventSampler {
    /// Events between samples (at least 1).
    every: u64,
    /// Events so far.
    events: u64,
    /// Where samples go; false from it stops the sampling.
    sink: Box<dyn FnMut(Sample) -> bool>,
    /// The sink asked to stop, or a sample failed.
    stopped: bool,
    /// Why a sample failed.
    failed: Option<String>,
}

impl EventSampler {
    /// A sampler handing every `every`-th event's sample to `sink`.
    pub fn new(every: u64, sink: Box<dyn FnMut(Sample) -> bool>) -> EventSampler {
        EventSampler {
            every: every.max(1),
            events: 0,
            sink,
            stopped: false,
            failed: None,
        }
    }

    /// One more event: a sample of `m` if it is the `every`-th since the
    /// last; false once the sampling stopped (the sink said so, or reading
    /// /proc failed).
    pub fn event(&mut self, m: &Machine) -> bool {
        if self.stopped {
            return false;
        }
        self.events += 1;
        if self.events.is_multiple_of(self.every) {
            self.sample(m);
        }
        !self.stopped
    }

    /// The run's end: a last sample of `m` after the last event (unless that
    /// event was just sampled or the sampling stopped); the error of a
    /// failed sample, if one failed.
    pub fn finish(&mut self, m: &Machine) -> Result<(), String> {
        if !self.stopped && (self.events == 0 || !self.events.is_multiple_of(self.every)) {
            self.sample(m);
        }
        match self.failed.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// True once the sink asked to stop or a sample failed.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Takes a sample at the current event and hands it on.
    fn sample(&mut self, m: &Machine) {
        let step = Step {
            ops: self.events,
            boots: 0,
        };
        match Sample::take(m, step) {
            Ok(s) => self.stopped = !(self.sink)(s),
            Err(e) => {
                self.failed = Some(e);
                self.stopped = true;
            }
        }
    }
}

/// The trace a [`ReplaySource`] replays, as `lmm replay` takes it.
pub enum Trace {
    /// An `strace -f` log (see [`crate::replay`]).
    Strace(crate::replay::CliArgs),
    /// A valgrind lackey trace (see [`crate::lackey`]); no `--frames` or
    /// `--sweep` (those run without a machine).
    Lackey(crate::lackey::CliArgs),
}

/// A replay on a machine booted from `config`, as `lmm replay` runs it
/// (its printed report aside), sampled every `every` events: each system
/// call the strace replay makes on the machine, each page access of a
/// lackey replay; and once at the end.
pub struct ReplaySource {
    /// What to replay.
    pub trace: Trace,
    /// The machine.
    pub config: MachineConfig,
    /// Events between samples (at least 1).
    pub every: u64,
}

impl Source for ReplaySource {
    fn title(&self) -> String {
        match &self.trace {
            Trace::Strace(a) => format!("replay strace {}", a.file.display()),
            Trace::Lackey(a) => format!("replay lackey {}", a.file),
        }
    }

    fn unit(&self) -> &'static str {
        match self.trace {
            Trace::Strace(_) => "system call",
            Trace::Lackey(_) => "access",
        }
    }

    fn run(&mut self, sink: Box<dyn FnMut(Sample) -> bool>) -> Result<(), String> {
        use std::cell::RefCell;
        use std::rc::Rc;
        let sampler = Rc::new(RefCell::new(EventSampler::new(self.every, sink)));
        let s = sampler.clone();
        let watch: Watch = Box::new(move |m: &Machine| s.borrow_mut().event(m));
        let config = self.config.clone();
        match &self.trace {
            Trace::Strace(args) => {
                let (lines, opts) = crate::replay::prepare(args)?;
                let mut target = crate::replay::MachineTarget::boot(config)?;
                target.observer = Some(watch);
                let r = crate::replay::replay(&lines, &mut target, &opts);
                // A replay that fails after the viewer stopped is no error
                // of the view's; one that fails while watched is.
                if !sampler.borrow().stopped() {
                    r.map_err(|e| e.to_string())?;
                }
                target.observer = None;
                sampler.borrow_mut().finish(&target.machine)
            }
            Trace::Lackey(args) => {
                if args.policy.is_some() {
                    return Err("--frames/--sweep run without a machine: nothing to watch".into());
                }
                let mut target = crate::lackey::MachineLackey::boot(config)?;
                target.observer = Some(watch);
                let input = crate::lackey::open(std::path::Path::new(&args.file))
                    .map_err(|e| e.to_string())?;
                let r = crate::lackey::replay(input, &args.file, &mut target, &args.opts);
                if !sampler.borrow().stopped() {
                    r.map_err(|e| e.to_string())?;
                }
                target.observer = None;
                sampler.borrow_mut().finish(target.machine())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    /// Runs `script` on a 64 MiB machine with 64 MiB of swap, sampling
    /// every `every` operations.
    fn run(script: &str, every: u64) -> Vec<Sample> {
        let mut src = ScenarioSource {
            file: "t.rhai".into(),
            script: script.into(),
            config: MachineConfig {
                ram: 64 << 20,
                swap: Some(machine::swapfile::SwapSpec::Make(64 << 20)),
                ..Default::default()
            },
            limits: Limits::default(),
            every,
        };
        src.collect().expect("the script runs")
    }

    /// A process that writes 20000 pages (more than the RAM) and reads
    /// them back, then stays. (Rhai reports some operation counts twice in
    /// the read-back loop, which the series must not repeat.)
    const HOG: &str = r#"
        let p = spawn("hog");
        let n = 20000;
        let a = mmap(p, 0, n * 4096, "PROT_READ|PROT_WRITE", "MAP_PRIVATE|MAP_ANONYMOUS");
        for i in 0..n { store(p, a + i * 4096, "x" + i); }
        let bad = 0;
        for i in 0..n { if load(p, a + i * 4096, ("x" + i).len()) != "x" + i { bad += 1; } }
        expect_eq(bad, 0, "every page read back");
    "#;

    #[test]
    fn the_last_sample_is_the_machines_own_proc_at_the_end() {
        let s = run(HOG, 5000);
        assert!(s.len() > 20, "{} samples", s.len());
        // Same script, same samples.
        assert_eq!(s, run(HOG, 5000));
        let last = s.last().unwrap();
        // The end of the run as `lmm proc` would show it.
        let (_, mut m) = scenario::run(
            "t.rhai",
            HOG,
            MachineConfig {
                ram: 64 << 20,
                swap: Some(machine::swapfile::SwapSpec::Make(64 << 20)),
                ..Default::default()
            },
        )
        .unwrap();
        let meminfo = m.proc("meminfo").unwrap();
        let field = |k: &str| -> u64 {
            let l = meminfo
                .lines()
                .find(|l| l.starts_with(&format!("{k}:")))
                .unwrap();
            l.split_whitespace().nth(1).unwrap().parse().unwrap()
        };
        for k in [
            "MemFree",
            "Active(anon)",
            "Inactive(anon)",
            "Slab",
            "SwapFree",
        ] {
            assert_eq!(last.kb(k), field(k), "{k}");
        }
        assert!(last.swap_used_kb() > 0, "the hog went to swap");
        let vmstat = m.proc("vmstat").unwrap();
        for k in [
            "pgfault",
            "pgmajfault",
            "pswpin",
            "pswpout",
            "pgscan_kswapd",
        ] {
            let want: u64 = vmstat
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{k} ")))
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(last.vm(k), want, "{k}");
        }
        assert!(last.vm("pgmajfault") > 0 && last.pgsteal() > 0 && last.pgscan() >= last.pgsteal());
        // Zones: free, watermarks and buddy lists as zoneinfo and buddyinfo say.
        let buddy = m.proc("buddyinfo").unwrap();
        assert_eq!(last.zones.len(), buddy.lines().count());
        for (z, line) in last.zones.iter().zip(buddy.lines()) {
            let counts: Vec<u64> = line
                .split_whitespace()
                .skip(4)
                .map(|w| w.parse().unwrap())
                .collect();
            assert_eq!(z.blocks.to_vec(), counts, "{}", z.name);
            let free: u64 = z.blocks.iter().enumerate().map(|(o, n)| n << o).sum();
            assert!(
                z.free >= free,
                "{}: pages free {} < buddy {free}",
                z.name,
                z.free
            );
            assert!(
                z.min < z.low && z.low < z.high && z.high < z.managed,
                "{z:?}"
            );
        }
        let total_free: u64 = last.zones.iter().map(|z| z.free).sum();
        assert_eq!(total_free * 4, last.kb("MemFree"));
        // The process, as /proc/PID/status and stat show it.
        let p = &last.procs[0];
        assert_eq!((p.pid, p.comm.as_str()), (1, "hog"));
        let status = m.proc_pid(1, "status").unwrap();
        let kb = |k: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        assert_eq!((p.rss_kb, p.swap_kb), (kb("VmRSS:"), kb("VmSwap:")));
        assert_eq!(
            p.rss_kb + p.swap_kb,
            20000 * 4,
            "every page is resident or on swap"
        );
        let f = m.process(1).unwrap().flt;
        assert_eq!((p.minflt, p.majflt), (f.minor, f.major));
        assert!(p.majflt > 0);
        // Slab: the largest caches, largest first.
        assert_eq!(last.slabs.len(), TOP_SLABS);
        assert!(last.slabs.windows(2).all(|w| w[0].kb >= w[1].kb));
        // Samples come every 5000 operations, then the end.
        assert!(s.windows(2).all(|w| w[1].step.ops > w[0].step.ops));
        assert!(s[..s.len() - 1].iter().all(|x| x.step.ops % 5000 == 0));
    }

    #[test]
    fn a_sink_can_stop_the_run() {
        let mut src = ScenarioSource {
            file: "t.rhai".into(),
            script: HOG.into(),
            config: MachineConfig {
                ram: 64 << 20,
                ..Default::default()
            },
            limits: Limits::default(),
            every: 100,
        };
        let n = Rc::new(std::cell::Cell::new(0));
        let c = n.clone();
        src.run(Box::new(move |_| {
            c.set(c.get() + 1);
            c.get() < 3
        }))
        .expect("a stop is not an error");
        assert_eq!(n.get(), 3);
    }

    #[test]
    fn an_event_sampler_samples_every_nth_event_and_the_end_once() {
        let m = Machine::boot(MachineConfig {
            ram: 64 << 20,
            ..Default::default()
        })
        .unwrap();
        let steps = |events: u64, every: u64| -> Vec<u64> {
            let got = Rc::new(std::cell::RefCell::new(Vec::new()));
            let g = got.clone();
            let mut s = EventSampler::new(
                every,
                Box::new(move |x| {
                    g.borrow_mut().push(x.step.ops);
                    true
                }),
            );
            for _ in 0..events {
                assert!(s.event(&m));
            }
            s.finish(&m).unwrap();
            got.take()
        };
        assert_eq!(steps(7, 3), vec![3, 6, 7]);
        // The last event was sampled: the end adds no second frame of it.
        assert_eq!(steps(6, 3), vec![3, 6]);
        // No event at all: the end alone.
        assert_eq!(steps(0, 3), vec![0]);
        // A sink that says stop stops the sampling, the end included.
        let n = Rc::new(std::cell::Cell::new(0));
        let c = n.clone();
        let mut s = EventSampler::new(
            1,
            Box::new(move |_| {
                c.set(c.get() + 1);
                false
            }),
        );
        assert!(!s.event(&m));
        assert!(!s.event(&m) && s.stopped());
        s.finish(&m).unwrap();
        assert_eq!(n.get(), 1);
    }

    #[test]
    fn unusable_free_space_index_follows_the_formula() {
        // 4 single pages, 2 order-1 blocks, 1 order-3 block, 1 order-9
        // block: 4 + 4 + 8 + 512 = 528 free pages.
        let mut b = [0u64; ORDERS];
        b[0] = 4;
        b[1] = 2;
        b[3] = 1;
        b[9] = 1;
        assert_eq!(unusable_free_index(&b, 0), 0.0);
        // Order 1: the 4 single pages cannot serve it.
        assert_eq!(unusable_free_index(&b, 1), 4.0 / 528.0);
        // Order 3: nor the order-1 blocks.
        assert_eq!(unusable_free_index(&b, 3), 8.0 / 528.0);
        // Order 9: only the order-9 block can.
        assert_eq!(unusable_free_index(&b, 9), 16.0 / 528.0);
        // Order 10: nothing can.
        assert_eq!(unusable_free_index(&b, 10), 1.0);
        assert_eq!(unusable_free_index(&[0; ORDERS], 3), 0.0);
    }
}
