//! What keeps a scenario from hurting lmm: the limits on the script itself
//! (operations, call depth, data sizes, machines booted) and the ownership
//! rules of the functions that reach kernel internals. A call that would be
//! a kernel BUG (or silent corruption) in Linux, such as freeing a block
//! twice or with another order, writing into frames the script does not
//! hold (the memmap's among them), or naming a pfn outside the memmap, is
//! refused with an error that names the call, and the machine stays intact.

use mm::types::{Pfn, PhysAddr, VirtAddr};
use rhai::EvalAltResult;

use super::{err, RhaiResult, State};

/// Bounds on one scenario run, so that no script runs forever or takes
/// the host's memory. `lmm run` has a flag for each (`--max-operations`
/// and so on); 0 means no limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Rhai operations (each expression step, loop turn, call).
    pub max_operations: u64,
    /// Nested function calls.
    pub max_call_levels: usize,
    /// Bytes in a string (or in all the strings of one array or map).
    pub max_string_size: usize,
    /// Elements in an array, nested arrays counted in.
    pub max_array_size: usize,
    /// Entries in an object map, nested maps counted in. (Rhai checks an
    /// assignment `m[k] = v` on the value only, so a map grown that way is
    /// bounded by the operations alone.)
    pub max_map_size: usize,
    /// Machines the script may `boot`.
    pub max_boots: u64,
    /// RAM of all the machines the script boots, added up, in bytes: boot
    /// time and host memory grow with it (a 4 TiB machine takes about a
    /// second to boot).
    pub max_boot_ram: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_operations: 50_000_000,
            max_call_levels: 64,
            max_string_size: 16 << 20,
            max_array_size: 16 << 20,
            max_map_size: 1 << 20,
            max_boots: 256,
            max_boot_ram: 4 << 40,
        }
    }
}

impl Limits {
    /// Sets the Rhai limits on an engine (0: none).
    pub(super) fn apply(&self, engine: &mut rhai::Engine) {
        engine.set_max_operations(self.max_operations);
        engine.set_max_call_levels(self.max_call_levels);
        engine.set_max_string_size(self.max_string_size);
        engine.set_max_array_size(self.max_array_size);
        engine.set_max_map_size(self.max_map_size);
    }

    /// If `e` (or the error inside a function call that it wraps) is a
    /// limit stopping the script: which limit, and where it stopped.
    pub(super) fn stopped_by(&self, e: &EvalAltResult) -> Option<(String, rhai::Position)> {
        let msg = match e {
            EvalAltResult::ErrorInFunctionCall(_, _, inner, _) => return self.stopped_by(inner),
            EvalAltResult::ErrorTooManyOperations(_) => format!(
                "stopped after {} operations (the limit; raise it with --max-operations)",
                self.max_operations
            ),
            EvalAltResult::ErrorStackOverflow(_) => format!(
                "stopped at {} nested function calls (the limit; raise it with --max-call-levels)",
                self.max_call_levels
            ),
            EvalAltResult::ErrorDataTooLarge(what, _) if what.starts_with("Length of string") => {
                format!(
                    "stopped: a string over {} bytes (the limit; raise it with --max-string-size)",
                    self.max_string_size
                )
            }
            EvalAltResult::ErrorDataTooLarge(what, _) if what.contains("array") => format!(
                "stopped: an array over {} elements (the limit; raise it with --max-array-size)",
                self.max_array_size
            ),
            EvalAltResult::ErrorDataTooLarge(what, _) if what.contains("map") => format!(
                "stopped: an object map over {} entries (the limit; raise it with --max-map-size)",
                self.max_map_size
            ),
            _ => return None,
        };
        Some((msg, e.position()))
    }
}

/// Counts a `boot` against the limits, or refuses it.
pub(super) fn may_boot(st: &mut State, ram: u64) -> RhaiResult<()> {
    let l = &st.limits;
    let (n, total) = st.booted;
    if l.max_boots > 0 && n >= l.max_boots {
        return err(format!(
            "boot: a script may boot {} machines (raise the limit with --max-boots)",
            l.max_boots
        ));
    }
    let total = total.saturating_add(ram);
    if l.max_boot_ram > 0 && total > l.max_boot_ram {
        return err(format!(
            "boot: {} MiB more RAM would make {} MiB booted by this script, over the limit of {} MiB (raise it with --max-boot-ram)",
            ram >> 20,
            total >> 20,
            l.max_boot_ram >> 20
        ));
    }
    st.booted = (n + 1, total);
    Ok(())
}

/// The pfn as a frame of the memmap, or an error naming `call`.
pub(super) fn memmap_pfn(st: &State, call: &str, pfn: i64) -> RhaiResult<Pfn> {
    let p = Pfn(pfn as u64);
    if pfn < 0 || st.machine.pa().page(p).is_none() {
        return err(format!("{call}: pfn {pfn:#x} is outside the memmap"));
    }
    Ok(p)
}

/// A CPU of the machine, or an error naming `call`.
pub(super) fn cpu(st: &State, call: &str, cpu: i64) -> RhaiResult<usize> {
    if cpu < 0 || cpu as usize >= st.machine.pa().nr_cpus() {
        return err(format!("{call}: no CPU {cpu}"));
    }
    Ok(cpu as usize)
}

/// True if the script holds all of `[pa, pa + len)`: inside one page
/// block from `alloc_pages` or one slab object (up to its `ksize`).
pub(super) fn holds_phys(st: &State, pa: u64, len: u64) -> bool {
    let Some(end) = pa.checked_add(len) else {
        return false;
    };
    let pfn = pa >> mm::PAGE_SHIFT;
    if let Some((&first, &order)) = st.pages.range(..=pfn).next_back() {
        if end <= (first + (1 << order)) << mm::PAGE_SHIFT {
            return true;
        }
    }
    if let Some((&obj, _)) = st.slab_objs.range(..=pa as i64).next_back() {
        let k = mm::slab_common::Kmem::new(st.machine.slab(), st.machine.pa());
        let size = k.ksize(mm::slab_common::ObjPtr(PhysAddr(obj as u64)));
        if end <= obj as u64 + size {
            return true;
        }
    }
    false
}

/// Refuses a physical write the script may not make.
pub(super) fn may_write_phys(st: &State, call: &str, pa: u64, len: u64) -> RhaiResult<()> {
    if holds_phys(st, pa, len) {
        return Ok(());
    }
    err(format!(
        "{call}: [{pa:#x}, +{len}) is not inside a page block or slab object this script holds \
         (memory from alloc_pages, kmalloc or kmem_cache_alloc, not yet freed)"
    ))
}

/// Refuses a kernel-virtual write into RAM the script does not hold: a
/// vmalloc area the script made is its own; any other address is followed
/// through the kernel page tables to its frame, which must be held (a
/// direct-map address of the memmap, say, is refused). Addresses that do
/// not map RAM are left to `kernel_write`, which returns -EFAULT.
pub(super) fn may_write_kernel(st: &State, va: u64, len: u64) -> RhaiResult<()> {
    let m = &st.machine;
    let Some(pt) = m.kernel_pt() else {
        return Ok(());
    };
    let dm = m.pa().direct_map();
    let mut done = 0;
    while done < len {
        let a = VirtAddr(va.wrapping_add(done));
        let n = (mm::PAGE_SIZE - a.page_offset()).min(len - done);
        done += n;
        if m.vmap_areas()
            .find_vm_area(a)
            .is_some_and(|vm| vm.caller == "scenario" && !vm.pages.is_empty())
        {
            continue;
        }
        let Some(phys) = pt.translate(a) else {
            continue;
        };
        if dm.contains(phys, n) && !holds_phys(st, phys.0, n) {
            return err(format!(
                "kernel_write({:#x}, {len} bytes): {:#x} maps frame {:#x}, which this script does not hold",
                va,
                a.0,
                phys.0 >> mm::PAGE_SHIFT
            ));
        }
    }
    Ok(())
}

/// Refuses a `vfree` of an area the script did not make (a process's
/// kernel stack, say); other addresses are left to `vfree` (-EINVAL).
pub(super) fn may_vfree(st: &State, addr: i64) -> RhaiResult<()> {
    match st.machine.vmap_areas().find_vm_area(VirtAddr(addr as u64)) {
        Some(vm) if vm.caller != "scenario" => err(format!(
            "vfree({addr:#x}): the area belongs to {}, not to this script",
            vm.caller
        )),
        _ => Ok(()),
    }
}
