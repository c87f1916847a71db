//! The swapon and swapoff system calls: a swap area (a file in mkswap's
//! format, or any [`SwapIo`]) joins the machine's swap table; swapoff
//! brings every page on it back into memory (`try_to_unuse`: each swap pte
//! naming the device is faulted in through the swap cache, then the cache
//! lets go of the slots) and removes it. Mirrors the syscall halves of
//! mm/swapfile.c.
//!
//! Swapoff walks the process page tables and shmem's mappings, as
//! Linux's `unuse_mm` and `shmem_unuse` do.

use mm::errno::Errno;
use mm::page_alloc::CpuId;
use mm::swapfile::{SwapHeader, SwapIo, SwapKind};
use mm::types::VirtAddr;

use crate::machine::Machine;

/// The swap a machine boots with (`--swap SIZE`, `--swap-file PATH`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SwapSpec {
    /// A fresh swap file of this many bytes that lmm makes (mkswap's
    /// format) in the host's temporary directory; it is unlinked once open
    /// and shows as `/swapfile` in /proc/swaps.
    Make(u64),
    /// An existing swap file (made by the host's `mkswap` or by lmm).
    File(std::path::PathBuf),
}

impl Machine {
    /// Turns on the swap `spec` describes; returns its swap type.
    pub fn swapon_spec(&mut self, spec: &SwapSpec) -> Result<u8, String> {
        match spec {
            SwapSpec::Make(size) => {
                let path = std::env::temp_dir().join(format!(
                    "lmm-swap-{}-{:x}.img",
                    std::process::id(),
                    self as *const Machine as usize
                ));
                let made = crate::swapdev::mkswap(&path, *size, [0; 16], "lmm")
                    .and_then(|()| crate::swapdev::open_swap_file(&path));
                let _ = std::fs::remove_file(&path);
                let (header, dev) = made?;
                self.sys_swapon("/swapfile", Box::new(dev), &header, None)
                    .map_err(|e| format!("swapon /swapfile ({size} bytes): {e}"))
            }
            SwapSpec::File(path) => {
                let (header, dev) = crate::swapdev::open_swap_file(path)?;
                let name = path.display().to_string();
                self.sys_swapon(&name, Box::new(dev), &header, None)
                    .map_err(|e| format!("swapon {name}: {e}"))
            }
        }
    }

    /// `swapon(2)` of an area whose header was read: returns its swap type.
    pub fn sys_swapon(
        &mut self,
        name: &str,
        io: Box<dyn SwapIo>,
        header: &SwapHeader,
        prio: Option<i16>,
    ) -> Result<u8, Errno> {
        let ty = self
            .swap
            .table
            .swapon(name.to_string(), SwapKind::File, io, header, prio)?;
        self.swap_totals_changed();
        // A node kswapd gave up on may have something to do again.
        for n in &self.pa.nodes {
            n.kswapd
                .failures
                .store(0, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(ty)
    }

    /// `swapoff(2)` of swap type `ty`: stops allocation from it, swaps
    /// every page it holds back in (ENOMEM, with the device put back, if
    /// memory runs out), then removes it.
    pub fn sys_swapoff(&mut self, ty: u8) -> Result<(), Errno> {
        // __vm_enough_memory in the heuristic mode, asked before the
        // device leaves the totals: only an area larger than RAM and all
        // swap together is refused.
        let limit = self.pa.totalram_pages() + self.swap.table.total_swap_pages().max(0) as u64;
        self.swap.table.swapoff_begin(ty, |pages| pages <= limit)?;
        if let Err(e) = self.try_to_unuse(ty) {
            self.swap.table.swapoff_abort(ty)?;
            return Err(e);
        }
        self.swap.table.swapoff_finish(ty)?;
        self.swap_totals_changed();
        Ok(())
    }

    /// CommitLimit and the heuristic overcommit check count swap.
    fn swap_totals_changed(&mut self) {
        let oc = &self.tasks.overcommit;
        oc.set_totals(
            self.pa.totalram_pages(),
            self.swap.table.total_swap_pages().max(0) as u64,
        );
    }

    /// `try_to_unuse`: faults in every swap pte of every process that names
    /// device `ty`, then drops the swap cache's hold on its slots.
    fn try_to_unuse(&mut self, ty: u8) -> Result<(), Errno> {
        let pids: Vec<u32> = self.processes.keys().copied().collect();
        for pid in pids {
            let Some(p) = self.processes.get(&pid) else {
                continue;
            };
            let mode = p.pt.mode();
            let mut vas = Vec::new();
            p.pt.walk(VirtAddr(0), p.mm.task_size, &mut |va, pte, level| {
                if level == 1 && pte.swap_entry(mode).is_some_and(|e| e.ty == ty) {
                    vas.push(va);
                }
            });
            for va in vas {
                // unuse_pte: maps the page back whatever the VMA's
                // protection (even PROT_NONE), so no access check.
                self.with_mm(pid, |mm, ops| {
                    let vma = mm.vma_lookup(va).cloned().ok_or(Errno::EFAULT)?;
                    ops.fault_page(&vma, va, false, false)
                        .map(|_| ())
                        .map_err(|_| Errno::ENOMEM)
                })??;
            }
        }
        self.cache.shmem_unuse(&self.pa, CpuId(0), ty)?;
        mm::swap::lru_add_drain_all(&self.pa);
        for e in self.swap.table.in_use_entries(ty) {
            if let Some(pfn) = self.swap.lookup(e) {
                if !self.swap.folio_free_swap(&self.pa, CpuId(0), pfn) {
                    return Err(Errno::EBUSY);
                }
            }
        }
        Ok(())
    }
}
