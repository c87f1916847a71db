//! Scenarios: Rhai scripts that boot a machine and drive its memory manager.
//! lmm registers its operations as Rhai functions (see docs/scenarios.md),
//! so loops, variables, functions and randomness come from the language.
//! `expect` assertions fail the run with a clear message, so scenarios
//! double as tests. Errors name file:line:column and what went wrong.

use std::cell::RefCell;
use std::rc::Rc;

use crate::strace::{
    MADV_ADVICE as MADV_NAMES, MAP_FLAGS as MAP_NAMES, MCL_FLAGS as MCL_NAMES,
    MREMAP_FLAGS as MREMAP_NAMES, MS_FLAGS as MS_NAMES, PROT_FLAGS as PROT_NAMES,
};
use machine::{parse_size, Machine, MachineConfig};
use mm::arch::Arch;
use mm::gfp::Gfp;
use mm::page_alloc::CpuId;
use mm::types::{Order, Pfn, PhysAddr, VirtAddr};
use rhai::{Dynamic, Engine, EvalAltResult, Map, Position, Scope};

mod guard;
mod oom;
mod reclaim;
pub use guard::Limits;

/// The built-in default scenario (`lmm run` with no file).
pub const DEFAULT_SCENARIO: &str = include_str!("../../../scenarios/default.rhai");

/// A scenario failure: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// Script name.
    pub file: String,
    /// Line (1-based), if known.
    pub line: Option<usize>,
    /// Column (1-based), if known.
    pub column: Option<usize>,
    /// What went wrong.
    pub msg: String,
}

impl std::fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{}:{}:{}: {}", self.file, l, c, self.msg),
            (Some(l), None) => write!(f, "{}:{}: {}", self.file, l, self.msg),
            _ => write!(f, "{}: {}", self.file, self.msg),
        }
    }
}

impl std::error::Error for ScenarioError {}

/// What a finished scenario produced.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Everything the script printed, in order.
    pub output: String,
    /// Number of `expect` checks that passed.
    pub checks: u64,
    /// Page allocations made through the script.
    pub allocations: u64,
    /// Page allocations that failed.
    pub failures: u64,
}

struct State {
    /// Slab objects the script holds (address -> cache, None for kmalloc),
    /// so a bad or repeated free is an error, never memory corruption.
    slab_objs: std::collections::BTreeMap<i64, Option<u32>>,
    /// Page blocks the script holds (first pfn -> order), so that freeing
    /// any other, or with another order, is refused (see `guard`).
    pages: std::collections::BTreeMap<u64, u8>,
    /// Slab caches the script created, with how many times (a merged
    /// cache is shared): only these may be destroyed.
    caches: std::collections::BTreeMap<u32, u32>,
    /// The limits of this run, and the machines booted so far (count, RAM).
    limits: Limits,
    booted: (u64, u64),
    machine: Machine,
    out: String,
    checks: u64,
    allocations: u64,
    failures: u64,
}

type Shared = Rc<RefCell<State>>;
type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

fn err<T>(msg: impl Into<String>) -> RhaiResult<T> {
    Err(Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(msg.into()),
        Position::NONE,
    )))
}

fn gfp_of(s: &str) -> RhaiResult<Gfp> {
    Gfp::parse(s).map_or_else(|| err(format!("unknown GFP flags {s:?}")), Ok)
}

fn order_of(o: i64) -> RhaiResult<Order> {
    if (0..=mm::mmzone::MAX_PAGE_ORDER as i64).contains(&o) {
        Ok(Order(o as u8))
    } else {
        err(format!("order {o} out of range 0..=10"))
    }
}

fn config_from_map(base: &MachineConfig, m: &Map) -> RhaiResult<MachineConfig> {
    let mut c = base.clone();
    for (k, v) in m {
        match k.as_str() {
            "arch" => {
                let s = v.clone().into_string()?;
                c.arch = Arch::parse(&s).map_or_else(|| err(format!("unknown arch {s:?}")), Ok)?;
            }
            "ram" => {
                c.ram = if v.is_int() {
                    v.as_int()? as u64
                } else {
                    parse_size(&v.clone().into_string()?).or_else(|e| err(e.0))?
                }
            }
            "cpus" => c.cpus = v.as_int()? as usize,
            "nodes" => c.nodes = v.as_int()? as u32,
            "seed" => c.seed = v.as_int()? as u64,
            "la57" => c.la57 = v.as_bool()?,
            "swap" => {
                let size = parse_size(&v.clone().into_string()?).or_else(|e| err(e.0))?;
                c.swap = (size > 0).then_some(machine::swapfile::SwapSpec::Make(size));
            }
            "slab" => {
                c.slab = match v.clone().into_string()?.as_str() {
                    "slub" => mm::slab_common::SlabKind::Slub,
                    "slab" => mm::slab_common::SlabKind::Slab,
                    other => {
                        return err(format!(
                            "unknown slab allocator {other:?} (expected slub or slab)"
                        ))
                    }
                }
            }
            other => {
                return err(format!(
                "unknown machine setting {other:?} (expected arch, ram, cpus, nodes, seed, slab, la57, swap)"
            ))
            }
        }
    }
    Ok(c)
}

fn boot(c: MachineConfig) -> RhaiResult<Machine> {
    Machine::boot(c).or_else(|e| err(e.to_string()))
}

fn register(engine: &mut Engine, st: &Shared) {
    let s = st.clone();
    engine.on_print(move |t| {
        let mut s = s.borrow_mut();
        s.out.push_str(t);
        s.out.push('\n');
    });
    let s = st.clone();
    engine.register_fn("boot", move |m: Map| -> RhaiResult<()> {
        let c = config_from_map(s.borrow().machine.config(), &m)?;
        // A swap file takes host disk as RAM takes host memory.
        let swap = match &c.swap {
            Some(machine::swapfile::SwapSpec::Make(n)) => *n,
            _ => 0,
        };
        guard::may_boot(&mut s.borrow_mut(), c.ram.saturating_add(swap))?;
        let machine = boot(c)?;
        let mut st = s.borrow_mut();
        st.machine = machine;
        // What the script held belonged to the old machine.
        st.pages.clear();
        st.slab_objs.clear();
        st.caches.clear();
        Ok(())
    });
    let s = st.clone();
    engine.register_fn(
        "alloc_pages",
        move |gfp: &str, order: i64| -> RhaiResult<i64> { alloc(&s, 0, gfp, order) },
    );
    let s = st.clone();
    engine.register_fn(
        "alloc_pages_on",
        move |cpu: i64, gfp: &str, order: i64| -> RhaiResult<i64> { alloc(&s, cpu, gfp, order) },
    );
    let s = st.clone();
    engine.register_fn(
        "free_pages",
        move |pfn: i64, order: i64| -> RhaiResult<()> { free(&s, 0, pfn, order) },
    );
    let s = st.clone();
    engine.register_fn(
        "free_pages_on",
        move |cpu: i64, pfn: i64, order: i64| -> RhaiResult<()> { free(&s, cpu, pfn, order) },
    );
    let s = st.clone();
    engine.register_fn(
        "write_phys",
        move |addr: i64, text: &str| -> RhaiResult<()> {
            let st = s.borrow();
            let dm = st.machine.pa().direct_map();
            if !dm.contains(PhysAddr(addr as u64), text.len() as u64) {
                return err(format!("physical address {addr:#x} outside RAM"));
            }
            guard::may_write_phys(&st, "write_phys", addr as u64, text.len() as u64)?;
            dm.write(PhysAddr(addr as u64), text.as_bytes());
            Ok(())
        },
    );
    let s = st.clone();
    engine.register_fn(
        "read_phys",
        move |addr: i64, len: i64| -> RhaiResult<String> {
            let st = s.borrow();
            let dm = st.machine.pa().direct_map();
            if len < 0 || !dm.contains(PhysAddr(addr as u64), len as u64) {
                return err(format!("physical range {addr:#x}+{len} outside RAM"));
            }
            let mut buf = vec![0u8; len as usize];
            dm.read(PhysAddr(addr as u64), &mut buf);
            Ok(String::from_utf8_lossy(&buf).into_owned())
        },
    );
    engine.register_fn("pfn_phys", |pfn: i64| -> i64 { pfn << mm::PAGE_SHIFT });
    let s = st.clone();
    engine.register_fn("proc", move |name: &str| -> RhaiResult<String> {
        s.borrow().machine.proc(name).or_else(err)
    });
    let s = st.clone();
    engine.register_fn("dmesg", move || -> String { s.borrow().machine.dmesg() });
    // The booted machine's architecture (`x86_64`, `x86`, `x86-pae`,
    // `arm64`), for scenarios whose steps differ by architecture.
    let s = st.clone();
    engine.register_fn("arch", move || -> String {
        s.borrow().machine.config().arch.name().to_string()
    });
    let s = st.clone();
    engine.register_fn("nr_free_pages", move || -> i64 {
        s.borrow().machine.pa().nr_free_pages() as i64
    });
    let s = st.clone();
    engine.register_fn("drain_pages", move || {
        s.borrow().machine.pa().drain_all_pages()
    });
    let s = st.clone();
    engine.register_fn("check", move || -> RhaiResult<()> {
        s.borrow()
            .machine
            .check()
            .or_else(|e| err(format!("mm::debug: {e}")))
    });
    let s = st.clone();
    engine.register_fn("sysctl", move |name: &str, value: i64| -> RhaiResult<()> {
        if let Some(r) = oom::sysctl(&s, name, value) {
            return r;
        }
        // Linux's ranges (proc_dointvec_minmax: EINVAL outside them, and
        // for anything that is not an int).
        let range = match name {
            "vm.watermark_scale_factor" => Some(1..=3000),
            "vm.min_free_kbytes" | "vm.legacy_va_layout" => Some(0..=i64::from(i32::MAX)),
            // mm/vmscan.c: 0..=200 (MAX_SWAPPINESS); mm/swap.c page_cluster_max 31.
            "vm.swappiness" => Some(0..=200),
            "vm.page-cluster" => Some(0..=31),
            // fs/drop_caches.c: 1 page cache, 2 slab, 3 both, 4 quiet.
            "vm.drop_caches" => Some(1..=4),
            _ => None,
        };
        if let Some(range) = range.filter(|r| !r.contains(&value)) {
            return err(format!(
                "sysctl({name}, {value}): EINVAL: the range is {}..={}",
                range.start(),
                range.end()
            ));
        }
        let st = s.borrow();
        let pa = &st.machine.pa();
        let r = match name {
            "vm.min_free_kbytes" => pa.set_min_free_kbytes(value as u64),
            "vm.watermark_scale_factor" => pa.set_watermark_scale_factor(value as u64),
            "vm.swappiness" => {
                st.machine
                    .reclaim()
                    .swappiness
                    .store(value as u32, std::sync::atomic::Ordering::Relaxed);
                return Ok(());
            }
            "vm.page-cluster" => {
                st.machine
                    .swap()
                    .page_cluster
                    .store(value as u32, std::sync::atomic::Ordering::Relaxed);
                return Ok(());
            }
            "vm.drop_caches" => {
                drop(st);
                if value & 1 != 0 {
                    s.borrow_mut().machine.drop_caches();
                }
                return Ok(());
            }
            "vm.legacy_va_layout" => {
                drop(st);
                s.borrow_mut().machine.set_legacy_va_layout(value != 0);
                return Ok(());
            }
            _ => return err(format!("unknown sysctl {name:?}")),
        };
        r.or_else(|e| err(format!("sysctl {name}={value}: {e}")))
    });
    register_process(engine, st);
    register_kernel(engine, st);
    register_slab(engine, st);
    register_paging(engine, st);
    reclaim::register(engine, st);
    oom::register_oom(engine, st);
    let s = st.clone();
    engine.register_fn("expect", move |cond: bool, msg: &str| -> RhaiResult<()> {
        if cond {
            s.borrow_mut().checks += 1;
            Ok(())
        } else {
            err(format!("expectation failed: {msg}"))
        }
    });
    let s = st.clone();
    engine.register_fn(
        "expect_eq",
        move |a: Dynamic, b: Dynamic, msg: &str| -> RhaiResult<()> {
            if a.to_string() == b.to_string() && a.type_name() == b.type_name() {
                s.borrow_mut().checks += 1;
                Ok(())
            } else {
                err(format!("expectation failed: {msg}: {a} != {b}"))
            }
        },
    );
}

/// A `|`-separated set of Linux constant names (or numbers) as bits.
fn flag_bits(s: &str, names: &[(&str, u64)], what: &str) -> RhaiResult<u64> {
    let mut bits = 0;
    for t in s.split('|').map(str::trim).filter(|t| !t.is_empty()) {
        if let Some(&(_, v)) = names.iter().find(|(n, _)| *n == t) {
            bits |= v;
        } else if let Some(h) = t.strip_prefix("0x") {
            bits |= u64::from_str_radix(h, 16).or_else(|_| err(format!("bad {what} {t:?}")))?;
        } else if let Ok(v) = t.parse::<u64>() {
            bits |= v;
        } else {
            return err(format!("unknown {what} {t:?}"));
        }
    }
    Ok(bits)
}

/// A system call's result as the raw syscall returns it: the value, or
/// the negative errno.
fn raw(r: Result<u64, mm::errno::Errno>) -> i64 {
    match r {
        Ok(v) => v as i64,
        Err(e) => -(e.code() as i64),
    }
}

fn pid_of(pid: i64) -> RhaiResult<u32> {
    u32::try_from(pid).or_else(|_| err(format!("bad pid {pid}")))
}

/// The process functions: spawn, exec, the memory system calls, user
/// memory through the MMU, exit and the /proc/PID files.
fn register_process(engine: &mut Engine, st: &Shared) {
    // `spawn` is a reserved keyword in Rhai, so `spawn(comm)` is a custom
    // syntax rather than a function.
    let s = st.clone();
    let spawn_syntax =
        engine.register_custom_syntax(["spawn", "(", "$expr$", ")"], false, move |ctx, inputs| {
            let comm = ctx.eval_expression_tree(&inputs[0])?.into_string()?;
            let mut st = s.borrow_mut();
            st.machine
                .spawn(&comm)
                .map(|p| Dynamic::from_int(i64::from(p)))
                .or_else(|e| err(format!("spawn({comm:?}): {e}")))
        });
    if let Err(e) = spawn_syntax {
        panic!("the spawn syntax is valid: {e}");
    }
    let s = st.clone();
    engine.register_fn(
        "exec",
        move |pid: i64, path: &str, argv: rhai::Array| -> RhaiResult<i64> {
            let pid = pid_of(pid)?;
            let argv: Vec<String> = argv.into_iter().map(|a| a.to_string()).collect();
            let mut st = s.borrow_mut();
            Ok(raw(st.machine.exec(pid, path, &argv, &[]).map(|_| 0)))
        },
    );
    let s = st.clone();
    engine.register_fn(
        "mmap",
        move |pid: i64, addr: i64, len: i64, prot: &str, flags: &str| -> RhaiResult<i64> {
            let pid = pid_of(pid)?;
            let prot = flag_bits(prot, PROT_NAMES, "protection")? as u32;
            let flags = flag_bits(flags, MAP_NAMES, "mmap flag")? as u32;
            let mut st = s.borrow_mut();
            Ok(raw(st.machine.sys_mmap(
                pid,
                addr as u64,
                len as u64,
                prot,
                flags,
                None,
                0,
            )))
        },
    );
    let s = st.clone();
    engine.register_fn(
        "mmap_file",
        move |pid: i64,
              addr: i64,
              len: i64,
              prot: &str,
              flags: &str,
              path: &str,
              offset: i64|
              -> RhaiResult<i64> {
            let pid = pid_of(pid)?;
            let prot = flag_bits(prot, PROT_NAMES, "protection")? as u32;
            let flags = flag_bits(flags, MAP_NAMES, "mmap flag")? as u32;
            let file = match machine::hostfs::HostFile::open(path) {
                Ok(f) => f,
                Err(e) => return Ok(-(e.code() as i64)),
            };
            let mut st = s.borrow_mut();
            Ok(raw(st.machine.sys_mmap(
                pid,
                addr as u64,
                len as u64,
                prot,
                flags,
                Some(file),
                offset as u64,
            )))
        },
    );
    let s = st.clone();
    engine.register_fn(
        "munmap",
        move |pid: i64, addr: i64, len: i64| -> RhaiResult<i64> {
            let pid = pid_of(pid)?;
            Ok(raw(s.borrow_mut().machine.sys_munmap(
                pid,
                addr as u64,
                len as u64,
            )))
        },
    );
    let s = st.clone();
    engine.register_fn(
        "mprotect",
        move |pid: i64, addr: i64, len: i64, prot: &str| -> RhaiResult<i64> {
            let pid = pid_of(pid)?;
            let prot = flag_bits(prot, PROT_NAMES, "protection")? as u32;
            Ok(raw(s.borrow_mut().machine.sys_mprotect(
                pid,
                addr as u64,
                len as u64,
                prot,
            )))
        },
    );
    let s = st.clone();
    engine.register_fn(
        "mremap",
        move |pid: i64,
              old: i64,
              old_len: i64,
              new_len: i64,
              flags: &str,
              new_addr: i64|
              -> RhaiResult<i64> {
            let pid = pid_of(pid)?;
            let flags = flag_bits(flags, MREMAP_NAMES, "mremap flag")? as u32;
            Ok(raw(s.borrow_mut().machine.sys_mremap(
                pid,
                old as u64,
                old_len as u64,
                new_len as u64,
                flags,
                new_addr as u64,
            )))
        },
    );
    let s = st.clone();
    engine.register_fn("brk", move |pid: i64, addr: i64| -> RhaiResult<i64> {
        let pid = pid_of(pid)?;
        Ok(raw(s.borrow_mut().machine.sys_brk(pid, addr as u64)))
    });
    let s = st.clone();
    engine.register_fn(
        "madvise",
        move |pid: i64, addr: i64, len: i64, advice: &str| -> RhaiResult<i64> {
            let pid = pid_of(pid)?;
            let advice = flag_bits(advice, MADV_NAMES, "madvise advice")? as i32;
            Ok(raw(s.borrow_mut().machine.sys_madvise(
                pid,
                addr as u64,
                len as u64,
                advice,
            )))
        },
    );
    let s = st.clone();
    engine.register_fn(
        "mlock",
        move |pid: i64, addr: i64, len: i64| -> RhaiResult<i64> {
            let pid = pid_of(pid)?;
            Ok(raw(s.borrow_mut().machine.sys_mlock(
                pid,
                addr as u64,
                len as u64,
            )))
        },
    );
    let s = st.clone();
    engine.register_fn(
        "munlock",
        move |pid: i64, addr: i64, len: i64| -> RhaiResult<i64> {
            let pid = pid_of(pid)?;
            Ok(raw(s.borrow_mut().machine.sys_munlock(
                pid,
                addr as u64,
                len as u64,
            )))
        },
    );
    let s = st.clone();
    engine.register_fn(
        "mlockall",
        move |pid: i64, flags: &str| -> RhaiResult<i64> {
            let pid = pid_of(pid)?;
            let flags = flag_bits(flags, MCL_NAMES, "mlockall flag")? as u32;
            Ok(raw(s.borrow_mut().machine.sys_mlockall(pid, flags)))
        },
    );
    let s = st.clone();
    engine.register_fn("munlockall", move |pid: i64| -> RhaiResult<i64> {
        let pid = pid_of(pid)?;
        Ok(raw(s.borrow_mut().machine.sys_munlockall(pid)))
    });
    let s = st.clone();
    engine.register_fn(
        "msync",
        move |pid: i64, addr: i64, len: i64, flags: &str| -> RhaiResult<i64> {
            let pid = pid_of(pid)?;
            let flags = flag_bits(flags, MS_NAMES, "msync flag")? as u32;
            Ok(raw(s.borrow_mut().machine.sys_msync(
                pid,
                addr as u64,
                len as u64,
                flags,
            )))
        },
    );
    let s = st.clone();
    engine.register_fn(
        "mincore",
        move |pid: i64, addr: i64, len: i64| -> RhaiResult<Dynamic> {
            let pid = pid_of(pid)?;
            Ok(
                match s
                    .borrow_mut()
                    .machine
                    .sys_mincore(pid, addr as u64, len as u64)
                {
                    Ok(v) => Dynamic::from_array(
                        v.into_iter().map(|b| Dynamic::from_int(b as i64)).collect(),
                    ),
                    Err(e) => Dynamic::from_int(-(e.code() as i64)),
                },
            )
        },
    );
    let s = st.clone();
    engine.register_fn(
        "read_user",
        move |pid: i64, va: i64, len: i64| -> RhaiResult<Dynamic> {
            let pid = pid_of(pid)?;
            if !(0..=1 << 20).contains(&len) {
                return err(format!("read_user: bad length {len}"));
            }
            Ok(
                match s
                    .borrow_mut()
                    .machine
                    .read_user(pid, va as u64, len as usize)
                {
                    Ok(b) => Dynamic::from(String::from_utf8_lossy(&b).into_owned()),
                    Err(e) => Dynamic::from_int(-(e.code() as i64)),
                },
            )
        },
    );
    let s = st.clone();
    engine.register_fn(
        "write_user",
        move |pid: i64, va: i64, text: &str| -> RhaiResult<i64> {
            let pid = pid_of(pid)?;
            let r = s
                .borrow_mut()
                .machine
                .write_user(pid, va as u64, text.as_bytes());
            Ok(raw(r.map(|_| text.len() as u64)))
        },
    );
    let s = st.clone();
    engine.register_fn("exit", move |pid: i64| -> RhaiResult<i64> {
        let pid = pid_of(pid)?;
        Ok(raw(s.borrow_mut().machine.exit(pid).map(|_| 0)))
    });
    for file in ["maps", "smaps", "smaps_rollup", "status", "stat"] {
        let s = st.clone();
        engine.register_fn(file, move |pid: i64| -> RhaiResult<String> {
            let pid = pid_of(pid)?;
            s.borrow_mut().machine.proc_pid(pid, file).or_else(err)
        });
    }
    engine.register_fn("errno", |name: &str| -> RhaiResult<i64> {
        mm::errno::Errno::from_name(name)
            .map(|e| -(e.code() as i64))
            .map_or_else(|| err(format!("unknown errno {name:?}")), Ok)
    });
    let s = st.clone();
    engine.register_fn(
        "expect_errno",
        move |r: i64, name: &str, msg: &str| -> RhaiResult<()> {
            let Some(e) = mm::errno::Errno::from_name(name) else {
                return err(format!("unknown errno {name:?}"));
            };
            if r == -(e.code() as i64) {
                s.borrow_mut().checks += 1;
                Ok(())
            } else {
                let got = if r < 0 {
                    mm::errno::Errno::ALL
                        .iter()
                        .find(|e| i64::from(e.code()) == -r)
                        .map_or_else(|| format!("{r}"), |e| e.name().to_string())
                } else {
                    format!("{r:#x}")
                };
                err(format!(
                    "expectation failed: {msg}: expected {name}, got {got}"
                ))
            }
        },
    );
}

fn alloc(s: &Shared, cpu: i64, gfp: &str, order: i64) -> RhaiResult<i64> {
    let gfp = gfp_of(gfp)?;
    let order = order_of(order)?;
    let mut st = s.borrow_mut();
    if cpu < 0 || cpu as usize >= st.machine.pa().nr_cpus() {
        return err(format!("no CPU {cpu}"));
    }
    st.allocations += 1;
    match st.machine.pa().alloc_pages(CpuId(cpu as usize), gfp, order) {
        Some(p) => {
            st.pages.insert(p.0, order.0);
            Ok(p.0 as i64)
        }
        None => {
            st.failures += 1;
            Ok(-1)
        }
    }
}

/// `__free_pages` of a block the script allocated, with the order it was
/// allocated with; anything else (a double free, a page the kernel or a
/// process holds, another order) would be a kernel BUG and is refused.
fn free(s: &Shared, cpu: i64, pfn: i64, order: i64) -> RhaiResult<()> {
    let order = order_of(order)?;
    let mut st = s.borrow_mut();
    if cpu < 0 || cpu as usize >= st.machine.pa().nr_cpus() {
        return err(format!("no CPU {cpu}"));
    }
    match st.pages.get(&(pfn as u64)) {
        Some(&o) if o == order.0 => {}
        Some(&o) => {
            return err(format!(
                "free_pages({pfn:#x}, {}): the block was allocated with order {o}",
                order.0
            ))
        }
        None => {
            return err(format!(
                "free_pages({pfn:#x}, {}): not an allocated block of this script (never allocated by it, or already freed)",
                order.0
            ))
        }
    }
    st.pages.remove(&(pfn as u64));
    st.machine
        .pa()
        .free_pages(CpuId(cpu as usize), Pfn(pfn as u64), order);
    Ok(())
}

/// Runs a scenario script on a machine booted from `config` (the script may
/// reboot with other settings), with the default [`Limits`]. `file` names
/// the script in errors.
pub fn run(
    file: &str,
    script: &str,
    config: MachineConfig,
) -> Result<(Outcome, Machine), ScenarioError> {
    run_with_limits(file, script, config, &Limits::default())
}

/// [`run`] with other limits.
pub fn run_with_limits(
    file: &str,
    script: &str,
    config: MachineConfig,
    limits: &Limits,
) -> Result<(Outcome, Machine), ScenarioError> {
    run_observed(file, script, config, limits, None)
}

/// Where a scenario is when an [`Observer`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Rhai operations run so far (each expression step, loop turn, call):
    /// the scenario's clock, the same on every run of the same script.
    pub ops: u64,
    /// Machines the script booted so far (0 while it runs on the first).
    pub boots: u64,
}

/// Watches a scenario between its steps (`lmm plot`, `lmm top`): called
/// with the machine after each Rhai operation, between the script's calls,
/// so it sees the machine in a consistent state; returns false to stop
/// the script there (which then ends with an error saying so).
pub type Observer = Box<dyn FnMut(&Machine, Step) -> bool>;

/// [`run_with_limits`] with an observer called after every operation.
pub fn run_observed(
    file: &str,
    script: &str,
    config: MachineConfig,
    limits: &Limits,
    observer: Option<Observer>,
) -> Result<(Outcome, Machine), ScenarioError> {
    let fail = |line: Option<usize>, column: Option<usize>, msg: String| ScenarioError {
        file: file.to_string(),
        line,
        column,
        msg,
    };
    let machine = Machine::boot(config).map_err(|e| fail(None, None, e.to_string()))?;
    let st: Shared = Rc::new(RefCell::new(State {
        slab_objs: Default::default(),
        pages: Default::default(),
        caches: Default::default(),
        limits: limits.clone(),
        booted: (0, 0),
        machine,
        out: String::new(),
        checks: 0,
        allocations: 0,
        failures: 0,
    }));
    let mut engine = Engine::new();
    limits.apply(&mut engine);
    let tracing = st.borrow().machine.trace().is_on();
    if tracing || observer.is_some() {
        // Counter tracks are sampled after each step that traced events;
        // the observer, if any, sees every step.
        let s = st.clone();
        let observer = RefCell::new(observer);
        // Rhai may report the same count twice (it checks progress at more
        // places than it counts operations): the observer sees each once.
        let seen = std::cell::Cell::new(None);
        engine.on_progress(move |ops| {
            let st = s.try_borrow().ok()?;
            if tracing {
                st.machine.trace_sample();
            }
            if seen.replace(Some(ops)) == Some(ops) {
                return None;
            }
            let mut o = observer.borrow_mut();
            let go = o.as_mut().is_none_or(|f| {
                f(
                    &st.machine,
                    Step {
                        ops,
                        boots: st.booted.0,
                    },
                )
            });
            (!go).then(|| Dynamic::from("stopped by the observer"))
        });
    }
    register(&mut engine, &st);
    let ast = engine.compile(script).map_err(|e| {
        let p = e.position();
        fail(
            p.line(),
            p.position(),
            format!("syntax error: {}", e.err_type()),
        )
    })?;
    let mut scope = Scope::new();
    if let Err(e) = engine.run_ast_with_scope(&mut scope, &ast) {
        if let Some((msg, p)) = limits.stopped_by(&e) {
            return Err(fail(p.line(), p.position(), msg));
        }
        let p = e.position();
        let msg = match *e {
            EvalAltResult::ErrorRuntime(ref d, _) => d.to_string(),
            EvalAltResult::ErrorInFunctionCall(ref f, _, ref inner, _) => {
                format!("in {f}: {inner}")
            }
            ref other => other.to_string(),
        };
        let msg = msg.split(" (line ").next().unwrap_or(&msg).to_string();
        return Err(fail(p.line(), p.position(), msg));
    }
    drop(engine);
    let st = Rc::try_unwrap(st)
        .map_err(|_| fail(None, None, "internal: scenario state still shared".into()))?;
    let st = st.into_inner();
    Ok((
        Outcome {
            output: st.out,
            checks: st.checks,
            allocations: st.allocations,
            failures: st.failures,
        },
        st.machine,
    ))
}

/// Kernel memory functions: the vmalloc area (vmalloc, vzalloc, vfree,
/// vmap, ioremap) and kmap, with kernel reads and writes through the
/// kernel page tables. Failures return the negative errno.
fn register_kernel(engine: &mut Engine, st: &Shared) {
    let s = st.clone();
    engine.register_fn("vmalloc", move |size: i64| -> i64 {
        raw(s
            .borrow_mut()
            .machine
            .vmalloc(size.max(0) as u64, false, "scenario")
            .map(|v| v.0))
    });
    let s = st.clone();
    engine.register_fn("vzalloc", move |size: i64| -> i64 {
        raw(s
            .borrow_mut()
            .machine
            .vmalloc(size.max(0) as u64, true, "scenario")
            .map(|v| v.0))
    });
    let s = st.clone();
    engine.register_fn("vfree", move |addr: i64| -> RhaiResult<i64> {
        guard::may_vfree(&s.borrow(), addr)?;
        Ok(raw(s
            .borrow_mut()
            .machine
            .vfree(VirtAddr(addr as u64))
            .map(|_| 0)))
    });
    let s = st.clone();
    engine.register_fn("vmap", move |pfns: rhai::Array| -> RhaiResult<i64> {
        let pages: Vec<Pfn> = pfns
            .into_iter()
            .map(|d| d.as_int().map(|p| Pfn(p as u64)))
            .collect::<Result<_, _>>()
            .or_else(|t| err(format!("vmap takes an array of PFNs, found {t}")))?;
        for p in &pages {
            guard::memmap_pfn(&s.borrow(), "vmap", p.0 as i64)?;
        }
        Ok(raw(s
            .borrow_mut()
            .machine
            .vmap(&pages, "scenario")
            .map(|v| v.0)))
    });
    let s = st.clone();
    engine.register_fn("ioremap", move |phys: i64, size: i64| -> i64 {
        raw(s
            .borrow_mut()
            .machine
            .ioremap(PhysAddr(phys as u64), size.max(0) as u64, "scenario")
            .map(|v| v.0))
    });
    let s = st.clone();
    engine.register_fn("kmap", move |pfn: i64| -> RhaiResult<i64> {
        let pfn = guard::memmap_pfn(&s.borrow(), "kmap", pfn)?;
        Ok(raw(s.borrow_mut().machine.kmap(pfn).map(|v| v.0)))
    });
    let s = st.clone();
    engine.register_fn("kunmap", move |pfn: i64| -> RhaiResult<i64> {
        let pfn = guard::memmap_pfn(&s.borrow(), "kunmap", pfn)?;
        Ok(raw(s.borrow_mut().machine.kunmap(pfn).map(|_| 0)))
    });
    let s = st.clone();
    engine.register_fn(
        "kmap_atomic",
        move |cpu: i64, pfn: i64| -> RhaiResult<i64> {
            let (cpu, pfn) = {
                let st = s.borrow();
                let cpu = guard::cpu(&st, "kmap_atomic", cpu)?;
                (cpu, guard::memmap_pfn(&st, "kmap_atomic", pfn)?)
            };
            Ok(raw(s
                .borrow_mut()
                .machine
                .kmap_atomic(cpu, pfn)
                .map(|v| v.0)))
        },
    );
    let s = st.clone();
    engine.register_fn(
        "kunmap_atomic",
        move |cpu: i64, addr: i64| -> RhaiResult<i64> {
            let cpu = guard::cpu(&s.borrow(), "kunmap_atomic", cpu)?;
            Ok(raw(s
                .borrow_mut()
                .machine
                .kunmap_atomic(cpu, VirtAddr(addr as u64))
                .map(|_| 0)))
        },
    );
    let s = st.clone();
    engine.register_fn("page_address", move |pfn: i64| -> RhaiResult<i64> {
        let st = s.borrow();
        let pfn = guard::memmap_pfn(&st, "page_address", pfn)?;
        Ok(st.machine.page_address(pfn).map_or(0, |v| v.0 as i64))
    });
    let s = st.clone();
    engine.register_fn(
        "kernel_write",
        move |addr: i64, text: &str| -> RhaiResult<i64> {
            let st = s.borrow();
            guard::may_write_kernel(&st, addr as u64, text.len() as u64)?;
            Ok(raw(st
                .machine
                .kernel_write(VirtAddr(addr as u64), text.as_bytes())
                .map(|_| 0)))
        },
    );
    let s = st.clone();
    engine.register_fn(
        "kernel_read",
        move |addr: i64, len: i64| -> RhaiResult<String> {
            let mut buf = vec![0u8; len.clamp(0, 1 << 20) as usize];
            match s
                .borrow()
                .machine
                .kernel_read(VirtAddr(addr as u64), &mut buf)
            {
                Ok(()) => Ok(String::from_utf8_lossy(&buf).into_owned()),
                Err(e) => err(format!("kernel_read({addr:#x}, {len}): {e}")),
            }
        },
    );
}

fn slab_flags(s: &str) -> RhaiResult<mm::slab_common::SlabFlags> {
    use mm::slab_common::SlabFlags as F;
    let mut f = F::empty();
    for part in s.split('|').map(str::trim).filter(|p| !p.is_empty()) {
        f |= match part.trim_start_matches("SLAB_") {
            "HWCACHE_ALIGN" => F::HWCACHE_ALIGN,
            "POISON" => F::POISON,
            "RED_ZONE" => F::RED_ZONE,
            "STORE_USER" => F::STORE_USER,
            "CONSISTENCY_CHECKS" => F::CONSISTENCY_CHECKS,
            "RECLAIM_ACCOUNT" => F::RECLAIM_ACCOUNT,
            "CACHE_DMA" => F::CACHE_DMA,
            "CACHE_DMA32" => F::CACHE_DMA32,
            "ACCOUNT" => F::ACCOUNT,
            "NO_MERGE" => F::NO_MERGE,
            "TYPESAFE_BY_RCU" => F::TYPESAFE_BY_RCU,
            other => return err(format!("unknown or unavailable slab flag {other:?} (SLAB_PANIC would stop lmm, not a simulated kernel)")),
        };
    }
    Ok(f)
}

/// Slab functions: caches and their objects, kmalloc and friends. Objects
/// are physical addresses in simulated RAM (`write_phys`/`read_phys` reach
/// their bytes). Freeing an address the script does not hold returns
/// -EINVAL before it reaches the allocator; slub_debug's own detections
/// (red zones, poison) are logged (see `dmesg()`) and also return -EINVAL.
fn register_slab(engine: &mut Engine, st: &Shared) {
    use mm::slab_common::{CacheId, Kmem, ObjPtr};
    fn hand_out(s: &Shared, o: Option<ObjPtr>, cache: Option<u32>) -> i64 {
        match o {
            Some(o) => {
                let a = o.0 .0 as i64;
                s.borrow_mut().slab_objs.insert(a, cache);
                a
            }
            None => -12,
        }
    }
    fn take_back(s: &Shared, a: i64, cache: Option<u32>) -> bool {
        let mut st = s.borrow_mut();
        if st.slab_objs.get(&a) == Some(&cache)
            || (cache.is_none() && st.slab_objs.contains_key(&a))
        {
            st.slab_objs.remove(&a);
            true
        } else {
            false
        }
    }
    let obj = |a: i64| ObjPtr(PhysAddr(a as u64));
    let s = st.clone();
    engine.register_fn(
        "kmem_cache_create",
        move |name: &str, size: i64, align: i64, flags: &str| -> RhaiResult<i64> {
            let flags = slab_flags(flags)?;
            let r = {
                let st = s.borrow();
                let k = Kmem::new(st.machine.slab(), st.machine.pa());
                k.kmem_cache_create(name, size.max(0) as u64, align.max(0) as u64, flags, None)
            };
            if let Ok(id) = r {
                *s.borrow_mut().caches.entry(id.0).or_default() += 1;
            }
            Ok(raw(r.map(|id| id.0 as u64)))
        },
    );
    let s = st.clone();
    engine.register_fn(
        "kmem_cache_alloc",
        move |id: i64, gfp: &str| -> RhaiResult<i64> {
            let gfp = gfp_of(gfp)?;
            let o = {
                let st = s.borrow();
                if id < 0 || st.machine.slab().cache(CacheId(id as u32)).is_none() {
                    return err(format!("no slab cache {id}"));
                }
                Kmem::new(st.machine.slab(), st.machine.pa()).kmem_cache_alloc(
                    CpuId(0),
                    CacheId(id as u32),
                    gfp,
                )
            };
            Ok(hand_out(&s, o, Some(id as u32)))
        },
    );
    let s = st.clone();
    engine.register_fn("kmem_cache_free", move |id: i64, a: i64| -> i64 {
        if !take_back(&s, a, Some(id as u32)) {
            return -22;
        }
        let st = s.borrow();
        let k = Kmem::new(st.machine.slab(), st.machine.pa());
        raw(k
            .kmem_cache_free(CpuId(0), CacheId(id as u32), obj(a))
            .map(|_| 0)
            .map_err(|_| mm::errno::Errno::EINVAL))
    });
    let s = st.clone();
    engine.register_fn("kmem_cache_shrink", move |id: i64| -> i64 {
        let st = s.borrow();
        Kmem::new(st.machine.slab(), st.machine.pa())
            .kmem_cache_shrink(CpuId(0), CacheId(id as u32)) as i64
    });
    let s = st.clone();
    engine.register_fn("kmem_cache_destroy", move |id: i64| -> RhaiResult<i64> {
        let r = {
            let st = s.borrow();
            if id < 0 || st.machine.slab().cache(CacheId(id as u32)).is_none() {
                return Ok(-22);
            }
            if !st.caches.contains_key(&(id as u32)) {
                let name = st.machine.slab().cache(CacheId(id as u32)).map(|c| c.name.clone());
                return err(format!(
                    "kmem_cache_destroy({id}): {} is the kernel's cache, not one this script created",
                    name.unwrap_or_default()
                ));
            }
            let k = Kmem::new(st.machine.slab(), st.machine.pa());
            k.kmem_cache_destroy(CpuId(0), CacheId(id as u32))
        };
        if r.is_ok() {
            let mut st = s.borrow_mut();
            if let Some(n) = st.caches.get_mut(&(id as u32)) {
                *n -= 1;
                if *n == 0 {
                    st.caches.remove(&(id as u32));
                }
            }
        }
        Ok(raw(r.map(|_| 0).map_err(|_| mm::errno::Errno::EBUSY)))
    });
    for (name, zero) in [("kmalloc", false), ("kzalloc", true)] {
        let s = st.clone();
        engine.register_fn(name, move |size: i64, gfp: &str| -> RhaiResult<i64> {
            let gfp = gfp_of(gfp)?;
            let o = {
                let st = s.borrow();
                let k = Kmem::new(st.machine.slab(), st.machine.pa());
                let size = size.max(0) as u64;
                if zero {
                    k.kzalloc(CpuId(0), size, gfp)
                } else {
                    k.kmalloc(CpuId(0), size, gfp)
                }
            };
            Ok(hand_out(&s, o, None))
        });
    }
    let s = st.clone();
    engine.register_fn(
        "krealloc",
        move |a: i64, size: i64, gfp: &str| -> RhaiResult<i64> {
            let gfp = gfp_of(gfp)?;
            if !take_back(&s, a, None) {
                return Ok(-22);
            }
            let o = {
                let st = s.borrow();
                Kmem::new(st.machine.slab(), st.machine.pa()).krealloc(
                    CpuId(0),
                    obj(a),
                    size.max(0) as u64,
                    gfp,
                )
            };
            match o {
                Some(_) => Ok(hand_out(&s, o, None)),
                None => {
                    s.borrow_mut().slab_objs.insert(a, None);
                    Ok(-12)
                }
            }
        },
    );
    let s = st.clone();
    engine.register_fn("kfree", move |a: i64| -> i64 {
        if !take_back(&s, a, None) {
            return -22;
        }
        let st = s.borrow();
        let k = Kmem::new(st.machine.slab(), st.machine.pa());
        raw(k
            .kfree(CpuId(0), obj(a))
            .map(|_| 0)
            .map_err(|_| mm::errno::Errno::EINVAL))
    });
    let s = st.clone();
    engine.register_fn("ksize", move |a: i64| -> i64 {
        let st = s.borrow();
        if !st.slab_objs.contains_key(&a) {
            return -22;
        }
        Kmem::new(st.machine.slab(), st.machine.pa()).ksize(obj(a)) as i64
    });
}

/// `open` flags by name.
const O_NAMES: &[(&str, u64)] = &[
    ("O_RDONLY", machine::fs::O_RDONLY as u64),
    ("O_WRONLY", machine::fs::O_WRONLY as u64),
    ("O_RDWR", machine::fs::O_RDWR as u64),
    ("O_CREAT", machine::fs::O_CREAT as u64),
    ("O_EXCL", machine::fs::O_EXCL as u64),
    ("O_TRUNC", machine::fs::O_TRUNC as u64),
    ("O_APPEND", machine::fs::O_APPEND as u64),
];

/// What a user access gave: "ok", or the signal (see docs/scenarios.md).
fn fault_text(r: Result<(), machine::process::UserFault>) -> String {
    match r {
        Ok(()) => "ok".into(),
        Err(f) => f.to_string(),
    }
}

fn fd_of(fd: i64) -> RhaiResult<i32> {
    i32::try_from(fd).or_else(|_| err(format!("bad file descriptor {fd}")))
}

fn len_of(len: i64, what: &str) -> RhaiResult<u64> {
    if (0..=64 << 20).contains(&len) {
        Ok(len as u64)
    } else {
        err(format!("{what}: bad length {len} (0 to 64 MiB)"))
    }
}

/// Demand paging, fork/exit/wait and files: user loads and stores through
/// the fault handler, and the file system calls.
fn register_paging(engine: &mut Engine, st: &Shared) {
    let s = st.clone();
    engine.register_fn("fork", move |pid: i64| -> RhaiResult<i64> {
        let pid = pid_of(pid)?;
        Ok(raw(s.borrow_mut().machine.fork(pid).map(u64::from)))
    });
    let s = st.clone();
    engine.register_fn("exit", move |pid: i64, code: i64| -> RhaiResult<i64> {
        let pid = pid_of(pid)?;
        let code = i32::try_from(code).or_else(|_| err(format!("exit: bad code {code}")))?;
        Ok(raw(s.borrow_mut().machine.exit_code(pid, code).map(|_| 0)))
    });
    let s = st.clone();
    engine.register_fn("wait", move |pid: i64| -> RhaiResult<Dynamic> {
        let pid = pid_of(pid)?;
        Ok(match s.borrow_mut().machine.wait(pid, -1) {
            Ok((c, code)) => Dynamic::from_array(vec![
                Dynamic::from_int(i64::from(c)),
                Dynamic::from_int(i64::from(code)),
            ]),
            Err(e) => Dynamic::from_int(-(e.code() as i64)),
        })
    });
    let s = st.clone();
    engine.register_fn(
        "touch",
        move |pid: i64, va: i64, len: i64, access: &str| -> RhaiResult<String> {
            let pid = pid_of(pid)?;
            let len = len_of(len, "touch")?;
            let acc = match access {
                "r" => machine::mmu::Access::Read,
                "w" => machine::mmu::Access::Write,
                "x" => machine::mmu::Access::Exec,
                other => {
                    return err(format!(
                        "touch: access {other:?} is not \"r\", \"w\" or \"x\""
                    ))
                }
            };
            Ok(fault_text(
                s.borrow_mut().machine.touch(pid, va as u64, len, acc),
            ))
        },
    );
    let s = st.clone();
    engine.register_fn(
        "store",
        move |pid: i64, va: i64, text: &str| -> RhaiResult<String> {
            let pid = pid_of(pid)?;
            Ok(fault_text(s.borrow_mut().machine.store(
                pid,
                va as u64,
                text.as_bytes(),
            )))
        },
    );
    let s = st.clone();
    engine.register_fn(
        "load",
        move |pid: i64, va: i64, len: i64| -> RhaiResult<String> {
            let pid = pid_of(pid)?;
            let len = len_of(len, "load")?;
            Ok(
                match s.borrow_mut().machine.load(pid, va as u64, len as usize) {
                    Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                    Err(f) => f.to_string(),
                },
            )
        },
    );
    let s = st.clone();
    engine.register_fn("faults", move |pid: i64| -> RhaiResult<Map> {
        let pid = pid_of(pid)?;
        let st = s.borrow();
        let p = st
            .machine
            .process(pid)
            .map_or_else(|| err(format!("faults: no process {pid}")), Ok)?;
        let mut m = Map::new();
        m.insert("minor".into(), Dynamic::from_int(p.flt.minor as i64));
        m.insert("major".into(), Dynamic::from_int(p.flt.major as i64));
        m.insert("rss".into(), Dynamic::from_int(p.mm.rss_pages() as i64));
        Ok(m)
    });
    let s = st.clone();
    engine.register_fn("vmstat", move |name: &str| -> RhaiResult<i64> {
        let text = s.borrow().machine.proc("vmstat").or_else(err)?;
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
            .map_or_else(|| err(format!("vmstat: no counter {name:?}")), Ok)
    });
    let s = st.clone();
    engine.register_fn(
        "open",
        move |pid: i64, path: &str, flags: &str| -> RhaiResult<i64> {
            let pid = pid_of(pid)?;
            let flags = flag_bits(flags, O_NAMES, "open flag")? as u32;
            Ok(raw(s
                .borrow_mut()
                .machine
                .sys_open(pid, path, flags)
                .map(|f| f as u64)))
        },
    );
    let s = st.clone();
    engine.register_fn(
        "memfd_create",
        move |pid: i64, name: &str| -> RhaiResult<i64> {
            let pid = pid_of(pid)?;
            Ok(raw(s
                .borrow_mut()
                .machine
                .sys_memfd_create(pid, name)
                .map(|f| f as u64)))
        },
    );
    let s = st.clone();
    engine.register_fn("close", move |pid: i64, fd: i64| -> RhaiResult<i64> {
        let (pid, fd) = (pid_of(pid)?, fd_of(fd)?);
        Ok(raw(s.borrow_mut().machine.sys_close(pid, fd).map(|_| 0)))
    });
    let s = st.clone();
    engine.register_fn("dup", move |pid: i64, fd: i64| -> RhaiResult<i64> {
        let (pid, fd) = (pid_of(pid)?, fd_of(fd)?);
        Ok(raw(s
            .borrow_mut()
            .machine
            .sys_dup(pid, fd)
            .map(|f| f as u64)))
    });
    let s = st.clone();
    engine.register_fn("unlink", move |path: &str| -> i64 {
        raw(s.borrow_mut().machine.sys_unlink(path).map(|_| 0))
    });
    let s = st.clone();
    engine.register_fn(
        "write_fd",
        move |pid: i64, fd: i64, text: &str| -> RhaiResult<i64> {
            let (pid, fd) = (pid_of(pid)?, fd_of(fd)?);
            Ok(raw(s
                .borrow_mut()
                .machine
                .file_write(pid, fd, None, text.as_bytes())
                .map(|n| n as u64)))
        },
    );
    let s = st.clone();
    engine.register_fn(
        "pwrite",
        move |pid: i64, fd: i64, text: &str, off: i64| -> RhaiResult<i64> {
            let (pid, fd) = (pid_of(pid)?, fd_of(fd)?);
            let off = u64::try_from(off).or_else(|_| err(format!("pwrite: bad offset {off}")))?;
            Ok(raw(s
                .borrow_mut()
                .machine
                .file_write(pid, fd, Some(off), text.as_bytes())
                .map(|n| n as u64)))
        },
    );
    let s = st.clone();
    engine.register_fn(
        "read_fd",
        move |pid: i64, fd: i64, len: i64| -> RhaiResult<Dynamic> {
            let (pid, fd) = (pid_of(pid)?, fd_of(fd)?);
            let len = len_of(len, "read_fd")?;
            Ok(
                match s
                    .borrow_mut()
                    .machine
                    .file_read(pid, fd, None, len as usize)
                {
                    Ok(b) => Dynamic::from(String::from_utf8_lossy(&b).into_owned()),
                    Err(e) => Dynamic::from_int(-(e.code() as i64)),
                },
            )
        },
    );
    let s = st.clone();
    engine.register_fn(
        "pread",
        move |pid: i64, fd: i64, len: i64, off: i64| -> RhaiResult<Dynamic> {
            let (pid, fd) = (pid_of(pid)?, fd_of(fd)?);
            let len = len_of(len, "pread")?;
            let off = u64::try_from(off).or_else(|_| err(format!("pread: bad offset {off}")))?;
            Ok(
                match s
                    .borrow_mut()
                    .machine
                    .file_read(pid, fd, Some(off), len as usize)
                {
                    Ok(b) => Dynamic::from(String::from_utf8_lossy(&b).into_owned()),
                    Err(e) => Dynamic::from_int(-(e.code() as i64)),
                },
            )
        },
    );
    let s = st.clone();
    engine.register_fn(
        "ftruncate",
        move |pid: i64, fd: i64, len: i64| -> RhaiResult<i64> {
            let (pid, fd) = (pid_of(pid)?, fd_of(fd)?);
            let len =
                u64::try_from(len).or_else(|_| err(format!("ftruncate: bad length {len}")))?;
            Ok(raw(s
                .borrow_mut()
                .machine
                .sys_ftruncate(pid, fd, len)
                .map(|_| 0)))
        },
    );
    let s = st.clone();
    engine.register_fn("fsync", move |pid: i64, fd: i64| -> RhaiResult<i64> {
        let (pid, fd) = (pid_of(pid)?, fd_of(fd)?);
        Ok(raw(s.borrow_mut().machine.sys_fsync(pid, fd).map(|_| 0)))
    });
    let s = st.clone();
    engine.register_fn(
        "lseek",
        move |pid: i64, fd: i64, off: i64, whence: i64| -> RhaiResult<i64> {
            let (pid, fd) = (pid_of(pid)?, fd_of(fd)?);
            let whence = u32::try_from(whence).unwrap_or(u32::MAX);
            Ok(raw(s.borrow_mut().machine.sys_lseek(pid, fd, off, whence)))
        },
    );
    let s = st.clone();
    engine.register_fn("fstat_size", move |pid: i64, fd: i64| -> RhaiResult<i64> {
        let (pid, fd) = (pid_of(pid)?, fd_of(fd)?);
        Ok(raw(s.borrow().machine.sys_fstat_size(pid, fd)))
    });
    let s = st.clone();
    engine.register_fn(
        "mmap_fd",
        move |pid: i64,
              addr: i64,
              len: i64,
              prot: &str,
              flags: &str,
              fd: i64,
              off: i64|
              -> RhaiResult<i64> {
            let (pid, fd) = (pid_of(pid)?, fd_of(fd)?);
            let prot = flag_bits(prot, PROT_NAMES, "protection")? as u32;
            let flags = flag_bits(flags, MAP_NAMES, "mmap flag")? as u32;
            Ok(raw(s.borrow_mut().machine.sys_mmap_fd(
                pid,
                addr as u64,
                len as u64,
                prot,
                flags,
                fd,
                off as u64,
            )))
        },
    );
}
