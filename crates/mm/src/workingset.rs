//! Workingset detection: when reclaim evicts a page it leaves a shadow
//! entry in the page's cache slot recording the node's eviction clock;
//! when the page faults back in, the refault distance (evictions and
//! activations since) says whether it would have stayed resident with a
//! larger inactive list, and if so it comes back active. Mirrors
//! mm/workingset.c (`workingset_eviction`, `workingset_test_recent`,
//! `workingset_refault`).
//!
//! The clock is the lruvec's `nonresident_age`, aged on every eviction
//! and activation. A shadow packs the eviction time, the node and the
//! page's PG_workingset bit.
//!
//! Simplifications: no memcg id in the shadow (one lruvec per node); no
//! shadow-node shrinker (shadows live until their slot is reused or the
//! file is truncated).

use crate::memmap::{Page, PageFlags};
use crate::page_alloc::PageAlloc;
use crate::swap::{is_file_lru, Lru, Lruvec};
use crate::types::Pfn;
use crate::vmstat::NodeStat;

const NODE_BITS: u32 = 10;
/// Bits of the eviction clock kept in a shadow (EVICTION_MASK).
const EVICTION_BITS: u32 = 64 - NODE_BITS - 1 - 1;
const EVICTION_MASK: u64 = (1 << EVICTION_BITS) - 1;

/// A decoded shadow entry.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Shadow {
    /// The node the page was evicted from.
    pub nid: u32,
    /// `nonresident_age` at eviction.
    pub eviction: u64,
    /// The page had PG_workingset (it had been active).
    pub workingset: bool,
}

impl Shadow {
    /// Packs the shadow (`pack_shadow`); bit 0 is set so a shadow is never 0.
    pub fn pack(self) -> u64 {
        ((self.eviction & EVICTION_MASK) << (NODE_BITS + 2))
            | ((self.nid as u64 & ((1 << NODE_BITS) - 1)) << 2)
            | (u64::from(self.workingset) << 1)
            | 1
    }
    /// Unpacks a shadow made by [`Shadow::pack`].
    pub fn unpack(v: u64) -> Shadow {
        Shadow {
            nid: ((v >> 2) & ((1 << NODE_BITS) - 1)) as u32,
            eviction: v >> (NODE_BITS + 2),
            workingset: v & 2 != 0,
        }
    }
}

/// `workingset_eviction`: ages the clock and returns the shadow for a page
/// leaving memory (under the node's lru lock).
pub fn workingset_eviction(vec: &mut Lruvec, page: &Page) -> u64 {
    let eviction = vec.nonresident_age;
    vec.nonresident_age += 1;
    Shadow {
        nid: page.nid(),
        eviction,
        workingset: page.test(PageFlags::WORKINGSET),
    }
    .pack()
}

/// `workingset_refault`: a page read back in where `shadow` was. Counts
/// `workingset_refault_{anon,file}`; if the refault distance is within
/// the workingset (the active file list, plus the inactive file list for
/// an anon page, plus the anon lists when swap is usable), the page is
/// made active (`workingset_activate_*`) and, if it was in the workingset
/// before eviction, gets PG_workingset back (`workingset_restore_*`).
/// Also charges the refault to the list's reclaim cost. Call before the
/// page goes on the LRU.
pub fn workingset_refault(pa: &PageAlloc, pfn: Pfn, shadow: u64, swap_usable: bool) {
    let Some(page) = pa.page(pfn) else { return };
    let s = Shadow::unpack(shadow);
    let Some(node) = pa.nodes.get(s.nid as usize) else {
        return;
    };
    let file = is_file_lru(page);
    let stat = |f: NodeStat, a: NodeStat| if file { f } else { a };
    node.stats.add(
        stat(
            NodeStat::WorkingsetRefaultFile,
            NodeStat::WorkingsetRefaultAnon,
        ),
        1,
    );
    let mut vec = node.lruvec.lock();
    let refault = vec.nonresident_age;
    let distance = refault.wrapping_sub(s.eviction) & EVICTION_MASK;
    let mut ws = vec.size(Lru::ActiveFile);
    if !file {
        ws += vec.size(Lru::InactiveFile);
    }
    if swap_usable {
        ws += vec.size(Lru::ActiveAnon);
        if file {
            ws += vec.size(Lru::InactiveAnon);
        }
    }
    if distance > ws {
        return;
    }
    page.set(PageFlags::ACTIVE);
    vec.nonresident_age += 1;
    node.stats.add(
        stat(
            NodeStat::WorkingsetActivateFile,
            NodeStat::WorkingsetActivateAnon,
        ),
        1,
    );
    // lru_note_cost_refault: a refault costs like a rotation.
    crate::vmscan::lru_note_cost(&mut vec, file, 0, 1);
    if s.workingset {
        page.set(PageFlags::WORKINGSET);
        node.stats.add(
            stat(
                NodeStat::WorkingsetRestoreFile,
                NodeStat::WorkingsetRestoreAnon,
            ),
            1,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shadows_round_trip_and_are_never_zero() {
        for (nid, ev, ws) in [(0, 0, false), (3, 12345, true), (1023, EVICTION_MASK, true)] {
            let s = Shadow {
                nid,
                eviction: ev,
                workingset: ws,
            };
            assert_ne!(s.pack(), 0);
            assert_eq!(Shadow::unpack(s.pack()), s);
        }
    }
}
