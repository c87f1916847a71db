//! Scenarios: Rhai scripts that boot a machine and drive its memory manager.
//! lmm registers its operations as Rhai functions (see docs/scenarios.md),
//! so loops, variables, functions and randomness come from the language.
//! `expect` assertions fail the run with a clear message, so scenarios
//! double as tests. Errors name file:line:column and what went wrong.

use std::cell::RefCell;
use std::rc::Rc;

use machine::{parse_size, Machine, MachineConfig};
use mm::arch::Arch;
use mm::gfp::Gfp;
use mm::page_alloc::CpuId;
use mm::types::{Order, Pfn, PhysAddr};
use rhai::{Dynamic, Engine, EvalAltResult, Map, Position, Scope};

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
            other => {
                return err(format!(
                    "unknown machine setting {other:?} (expected arch, ram, cpus, nodes, seed)"
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
        let c = config_from_map(&s.borrow().machine.config, &m)?;
        s.borrow_mut().machine = boot(c)?;
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
            let dm = st.machine.pa.direct_map();
            if !dm.contains(PhysAddr(addr as u64), text.len() as u64) {
                return err(format!("physical address {addr:#x} outside RAM"));
            }
            dm.write(PhysAddr(addr as u64), text.as_bytes());
            Ok(())
        },
    );
    let s = st.clone();
    engine.register_fn(
        "read_phys",
        move |addr: i64, len: i64| -> RhaiResult<String> {
            let st = s.borrow();
            let dm = st.machine.pa.direct_map();
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
    let s = st.clone();
    engine.register_fn("nr_free_pages", move || -> i64 {
        s.borrow().machine.pa.nr_free_pages() as i64
    });
    let s = st.clone();
    engine.register_fn("drain_pages", move || {
        s.borrow().machine.pa.drain_all_pages()
    });
    let s = st.clone();
    engine.register_fn("check", move || -> RhaiResult<()> {
        mm::debug::check_page_alloc(&s.borrow().machine.pa)
            .or_else(|e| err(format!("mm::debug: {e}")))
    });
    let s = st.clone();
    engine.register_fn("sysctl", move |name: &str, value: i64| -> RhaiResult<()> {
        let st = s.borrow();
        let pa = &st.machine.pa;
        let r = match name {
            "vm.min_free_kbytes" => pa.set_min_free_kbytes(value as u64),
            "vm.watermark_scale_factor" => pa.set_watermark_scale_factor(value as u64),
            _ => return err(format!("unknown sysctl {name:?}")),
        };
        r.or_else(|e| err(format!("sysctl {name}={value}: {e}")))
    });
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

fn alloc(s: &Shared, cpu: i64, gfp: &str, order: i64) -> RhaiResult<i64> {
    let gfp = gfp_of(gfp)?;
    let order = order_of(order)?;
    let mut st = s.borrow_mut();
    if cpu < 0 || cpu as usize >= st.machine.pa.nr_cpus() {
        return err(format!("no CPU {cpu}"));
    }
    st.allocations += 1;
    match st.machine.pa.alloc_pages(CpuId(cpu as usize), gfp, order) {
        Some(p) => Ok(p.0 as i64),
        None => {
            st.failures += 1;
            Ok(-1)
        }
    }
}

fn free(s: &Shared, cpu: i64, pfn: i64, order: i64) -> RhaiResult<()> {
    let order = order_of(order)?;
    let st = s.borrow();
    let pa = &st.machine.pa;
    if cpu < 0 || cpu as usize >= pa.nr_cpus() {
        return err(format!("no CPU {cpu}"));
    }
    let page = pa.page(Pfn(pfn as u64)).filter(|p| p.refcount() > 0);
    if page.is_none() || !Pfn(pfn as u64).is_aligned(order) {
        return err(format!(
            "free_pages({pfn:#x}, {}): not an allocated block",
            order.0
        ));
    }
    pa.free_pages(CpuId(cpu as usize), Pfn(pfn as u64), order);
    Ok(())
}

/// Runs a scenario script on a machine booted from `config` (the script may
/// reboot with other settings). `file` names the script in errors.
pub fn run(
    file: &str,
    script: &str,
    config: MachineConfig,
) -> Result<(Outcome, Machine), ScenarioError> {
    let fail = |line: Option<usize>, column: Option<usize>, msg: String| ScenarioError {
        file: file.to_string(),
        line,
        column,
        msg,
    };
    let machine = Machine::boot(config).map_err(|e| fail(None, None, e.to_string()))?;
    let st: Shared = Rc::new(RefCell::new(State {
        machine,
        out: String::new(),
        checks: 0,
        allocations: 0,
        failures: 0,
    }));
    let mut engine = Engine::new();
    engine.set_max_operations(50_000_000);
    engine.set_max_call_levels(64);
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
