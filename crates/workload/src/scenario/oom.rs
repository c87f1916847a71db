//! Scenario functions for the OOM killer (mm/oom_kill.c, fs/proc/base.c):
//! `oom_score(pid)`, `oom_score_adj(pid)` and `oom_score_adj(pid, v)`,
//! `oom_kill()` (the sysrq-f trigger). The vm.overcommit_* sysctls go
//! through `sysctl` ([`sysctl`]).

use rhai::Engine;

use super::{err, pid_of, raw, RhaiResult, Shared};

/// Writes one of the machine's vm.overcommit_* / *_reserve_kbytes sysctls;
/// `None` if `name` is not one of them. EINVAL values are errors naming
/// the call.
pub(super) fn sysctl(st: &Shared, name: &str, value: i64) -> Option<RhaiResult<()>> {
    let r = st.borrow_mut().machine.set_overcommit_sysctl(name, value)?;
    Some(r.or_else(|e| err(format!("sysctl({name}, {value}): {}", e.name()))))
}

pub(super) fn register_oom(engine: &mut Engine, st: &Shared) {
    let s = st.clone();
    engine.register_fn("oom_score", move |pid: i64| -> RhaiResult<i64> {
        let pid = pid_of(pid)?;
        s.borrow()
            .machine
            .oom_score(pid)
            .map(|v| v as i64)
            .or_else(|e| err(format!("oom_score({pid}): {}", e.name())))
    });
    let s = st.clone();
    engine.register_fn("oom_score_adj", move |pid: i64| -> RhaiResult<i64> {
        let pid = pid_of(pid)?;
        s.borrow()
            .machine
            .oom_score_adj(pid)
            .map(i64::from)
            .or_else(|e| err(format!("oom_score_adj({pid}): {}", e.name())))
    });
    let s = st.clone();
    engine.register_fn(
        "oom_score_adj",
        move |pid: i64, v: i64| -> RhaiResult<i64> {
            let pid = pid_of(pid)?;
            Ok(raw(s
                .borrow_mut()
                .machine
                .set_oom_score_adj(pid, v)
                .map(|_| 0)))
        },
    );
    let s = st.clone();
    engine.register_fn("oom_kill", move || -> i64 {
        let killed = s
            .borrow_mut()
            .machine
            .out_of_memory(None, mm::gfp::Gfp::KERNEL, -1);
        killed.map_or(0, i64::from)
    });
}
