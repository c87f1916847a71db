//! `lmm replay lackey FILE --frames N --policy P` on the machine: the
//! trace's page reference string runs in a process of lmm's machine that
//! may keep at most N pages resident. On a reference to a page that is not
//! resident with N resident, policy P (`mm::replacement`, the one place that
//! chooses) picks a victim, using the accessed bits the MMU sets in the
//! process's ptes, and the victim really goes to swap (MADV_PAGEOUT:
//! `reclaim_pages`, `add_to_swap`, `try_to_unmap`, `swap_writepage`); the
//! next reference faults it back through the swap cache. Every page carries
//! its key at offset 8, checked on every swap-in.
//!
//! Each reference is a store to the page's first byte (so a fault on a
//! swapped page is one write fault that takes the page exclusively, and
//! faults count exactly the references to non-resident pages, as the
//! textbook counts misses). The result must agree with the plain
//! simulation of the same policy ([`mm::replacement::simulate`]); the run
//! fails if it does not.

use std::collections::HashMap;

use machine::{Machine, MachineConfig};
use mm::madvise::MADV_PAGEOUT;
use mm::mmap::{MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE};
use mm::replacement::{policy_by_name, simulate};
use mm::types::PAGE_SIZE;
use mm::vmstat::VmEvent;

/// What the machine run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MachineRun {
    /// References to pages that were not resident (cold misses included).
    pub faults: u64,
    /// Those of them to pages that had been evicted to swap.
    pub swap_ins: u64,
    /// Evictions (each a page sent to swap).
    pub swap_outs: u64,
    /// The process's faults as the machine counted them (min_flt + maj_flt)
    /// and its major ones.
    pub machine_faults: (u64, u64),
    /// vmstat pswpin and pswpout (readahead and clean swap-cache pages make
    /// these differ from the counts above).
    pub pswp: (u64, u64),
    /// Pages whose key did not come back from swap.
    pub mismatches: u64,
}

/// Runs `refs` through policy `name` with `frames` resident pages on a
/// machine booted from `config` (with a swap file big enough for the
/// trace's pages unless the config names one).
pub fn run_on_machine(
    refs: &[u64],
    name: &str,
    frames: usize,
    config: &MachineConfig,
) -> Result<MachineRun, String> {
    if frames == 0 {
        return Err("--frames: need at least one frame".into());
    }
    let mut ids: HashMap<u64, u64> = HashMap::new();
    let dense: Vec<u64> = refs
        .iter()
        .map(|&k| {
            let n = ids.len() as u64;
            *ids.entry(k).or_insert(n)
        })
        .collect();
    let distinct = ids.len() as u64;
    let mut c = config.clone();
    if c.swap.is_none() {
        c.swap = Some(machine::swapfile::SwapSpec::Make(
            ((distinct + distinct / 4 + 64) * PAGE_SIZE).max(1 << 20),
        ));
    }
    let mut m = Machine::boot(c).map_err(|e| e.to_string())?;
    let pid = m.spawn("lackey").map_err(|e| format!("spawn: {e}"))?;
    let base = m
        .sys_mmap(
            pid,
            0,
            distinct.max(1) * PAGE_SIZE,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS,
            None,
            0,
        )
        .map_err(|e| format!("mmap of {distinct} pages: {e}"))?;
    let va = |id: u64| base + id * PAGE_SIZE;
    let mut policy = policy_by_name(name, Some(&dense))?;
    let mut resident = vec![false; distinct as usize];
    let mut evicted = vec![false; distinct as usize];
    let mut seen = vec![false; distinct as usize];
    let mut nres = 0usize;
    let mut run = MachineRun::default();
    let f0 = m
        .process(pid)
        .map_or((0, 0), |p| (p.flt.minor, p.flt.major));
    let (in0, out0) = (
        m.pa().events.get(VmEvent::Pswpin),
        m.pa().events.get(VmEvent::Pswpout),
    );
    let fault = |e: machine::process::UserFault| format!("{e}");
    for (now, &id) in dense.iter().enumerate() {
        let now = now as u64;
        let i = id as usize;
        if !resident[i] {
            run.faults += 1;
            if evicted[i] {
                run.swap_ins += 1;
            }
            if nres == frames {
                let victim = policy
                    .victim(&mut |k| m.test_and_clear_young(pid, va(k)))
                    .ok_or_else(|| format!("policy {name} chose no victim"))?;
                m.sys_madvise(pid, va(victim), PAGE_SIZE, MADV_PAGEOUT)
                    .map_err(|e| format!("MADV_PAGEOUT: {e}"))?;
                resident[victim as usize] = false;
                evicted[victim as usize] = true;
                nres -= 1;
                run.swap_outs += 1;
            }
            m.store(pid, va(id), &[1]).map_err(fault)?;
            if seen[i] {
                let b = m.load(pid, va(id) + 8, 8).map_err(fault)?;
                if b != id.to_le_bytes() {
                    run.mismatches += 1;
                }
            } else {
                m.store(pid, va(id) + 8, &id.to_le_bytes()).map_err(fault)?;
                seen[i] = true;
            }
            policy.admit(id, now);
            resident[i] = true;
            nres += 1;
        } else {
            if policy.needs_every_reference() {
                policy.reference(id, now);
            }
            m.store(pid, va(id), &[1]).map_err(fault)?;
        }
    }
    let p = m.process(pid).ok_or("the process is gone")?;
    run.machine_faults = (p.flt.minor + p.flt.major - f0.0 - f0.1, p.flt.major - f0.1);
    run.pswp = (
        m.pa().events.get(VmEvent::Pswpin) - in0,
        m.pa().events.get(VmEvent::Pswpout) - out0,
    );
    m.check().map_err(|e| format!("mm::debug: {e}"))?;
    // The plain simulation of the same policy must agree.
    let mut sim_policy = policy_by_name(name, Some(&dense))?;
    let sim = simulate(&dense, frames, sim_policy.as_mut())?;
    if (sim.faults, sim.swap_ins, sim.evictions) != (run.faults, run.swap_ins, run.swap_outs) {
        return Err(format!(
            "policy {name} with {frames} frames: the machine took {} faults, {} swap-ins, {} swap-outs; the simulation {}, {}, {}",
            run.faults, run.swap_ins, run.swap_outs, sim.faults, sim.swap_ins, sim.evictions
        ));
    }
    Ok(run)
}
