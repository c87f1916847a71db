//! Mirroring in runs: after a fault, the faulting page and the present
//! neighbours lmm mapped with it (fault-around maps up to 16 pages of a
//! file at once) are mapped into the stub together, with one mmap of
//! lmm's RAM memfd when their frames are consecutive. Each page mirrored
//! this way is one host SIGSEGV (two ptrace stops and an injected mmap)
//! the program no longer takes to reach a page lmm has already mapped.
//!
//! Only neighbours whose entry is young are mirrored ahead of use: lmm has
//! seen them accessed already (x86 fault-around maps its pages young), so
//! nothing lmm's accessed bit would learn from a SIGSEGV is lost. Their
//! protection follows the same rule as a single mirror (writable only if
//! dirty), so a first write still reaches lmm. The run stays inside one
//! page table (2 MiB) and 64 KiB of the fault, and has one protection; lmm's fault counts do not
//! change (they are taken in lmm's fault handler, not here).

use mm::types::VirtAddr;

use crate::ptrace::MEMFD_SLOT;
use std::collections::BTreeMap;

use crate::{Mirror, Run, MIRROR_FLOOR, TASK_SIZE};

/// The span of one page table of 4 KiB entries.
const TABLE_SPAN: u64 = 2 << 20;
/// How far a run reaches on either side of the faulting page: fault-around's
/// window (`fault_around_bytes`, 64 KiB), so that a window lmm mapped at
/// once is mirrored at once wherever in it the fault fell, while a fault
/// looks at a few dozen entries and not the whole table.
const RUN_REACH: u64 = 64 << 10;

/// The host protection a present entry is mirrored with.
pub(crate) fn prot_of(writable: bool, dirty: bool, nx: bool) -> i32 {
    let mut prot = libc::PROT_READ;
    if writable && dirty {
        prot |= libc::PROT_WRITE;
    }
    if !nx {
        prot |= libc::PROT_EXEC;
    }
    prot
}

/// The mirrors of `mirrored` (by start) that overlap `[start, end)`.
/// Mirrors never overlap one another, so of those starting below `start`
/// only the last can reach into the range: a lookup, not a scan of every
/// mirror up to a huge page's span below.
pub(crate) fn overlapping(
    mirrored: &BTreeMap<u64, Mirror>,
    start: u64,
    end: u64,
) -> Vec<(u64, Mirror)> {
    let before = mirrored
        .range(..start)
        .next_back()
        .filter(|(&s, mir)| s + mir.span > start);
    before
        .into_iter()
        .chain(mirrored.range(start..end))
        .map(|(&s, &mir)| (s, mir))
        .collect()
}

impl Run<'_> {
    /// Mirrors the page at `va` after a fault, with the run of young
    /// present neighbours in its page table whose frames continue its own
    /// and whose protection is the same; a huge entry is mirrored alone.
    pub(crate) fn mirror_around(&mut self, va: u64) -> Result<(), String> {
        let page = va & !4095;
        let region = page & !(TABLE_SPAN - 1);
        let from = region.max(page.saturating_sub(RUN_REACH));
        let to = (region + TABLE_SPAN).min(page + 4096 + RUN_REACH);
        let p = self
            .m
            .process(self.cur.pid)
            .ok_or("lmm native: the process is gone")?;
        let mut leaves = Vec::new();
        p.pt.walk(VirtAddr(from), VirtAddr(to), &mut |at, pte, level| {
            if pte.present() && p.pt.mode().span(level) == 4096 {
                let prot = prot_of(pte.writable(), pte.dirty(), pte.nx());
                leaves.push((at.0, pte.phys().0, prot, pte.accessed()));
            }
        });
        let Some(i) = leaves.iter().position(|l| l.0 == page) else {
            return self.mirror(va, true);
        };
        let (_, phys, prot, _) = leaves[i];
        // Neighbours the stub already mirrors as they are stay as they
        // are: mapping them again would drop the host's page-table entries
        // for them (a host fault each on their next use) and split the
        // host's VMA, where a run that only adds pages merges with it.
        let have = overlapping(&self.cur.mirrors(), from, to);
        let fits = |l: &(u64, u64, i32, bool)| {
            l.3 && l.2 == prot
                && l.0 >= MIRROR_FLOOR
                && l.0 + 4096 <= TASK_SIZE
                && l.1.wrapping_sub(phys) == l.0.wrapping_sub(page)
                && have.binary_search_by_key(&l.0, |h| h.0).map_or(true, |k| {
                    have[k].1
                        != Mirror {
                            phys: l.1,
                            span: 4096,
                            prot,
                        }
                })
        };
        let (mut lo, mut hi) = (i, i);
        while lo > 0 && leaves[lo - 1].0 + 4096 == leaves[lo].0 && fits(&leaves[lo - 1]) {
            lo -= 1;
        }
        while hi + 1 < leaves.len()
            && leaves[hi].0 + 4096 == leaves[hi + 1].0
            && fits(&leaves[hi + 1])
        {
            hi += 1;
        }
        if lo == hi {
            return self.mirror(va, true);
        }
        let (start, end) = (leaves[lo].0, leaves[hi].0 + 4096);
        self.map_run(start, end - start, leaves[lo].1, prot)?;
        for l in &leaves[lo..=hi] {
            self.cur.mirrors().insert(
                l.0,
                Mirror {
                    phys: l.1,
                    span: 4096,
                    prot,
                },
            );
        }
        Ok(())
    }

    /// Maps `len` bytes of lmm's RAM from `phys` at `base` in the stub with
    /// `prot` (one mmap), forgetting the mirrors it replaces.
    pub(crate) fn map_run(
        &mut self,
        base: u64,
        len: u64,
        phys: u64,
        prot: i32,
    ) -> Result<(), String> {
        let hit = overlapping(&self.cur.mirrors(), base, base + len);
        for (s, _) in hit {
            self.cur.mirrors().remove(&s);
        }
        let r = self
            .cur
            .stub
            .queue_syscall(
                libc::SYS_mmap,
                [
                    base,
                    len,
                    prot as u64,
                    (libc::MAP_SHARED | libc::MAP_FIXED | libc::MAP_POPULATE) as u64,
                    MEMFD_SLOT as u64,
                    phys,
                ],
            )
            .map_err(|e| format!("lmm native: {e}"))?;
        if r < 0 {
            return Err(format!(
                "lmm native: mapping frame {phys:#x} at {base:#x} in the stub: errno {}",
                -r
            ));
        }
        self.out.mirrors += 1;
        Ok(())
    }
}
