//! The VMA tree of an address space (Linux's `mm->mm_mt`, a maple tree
//! indexed by address): VMAs by `vm_start`, found in O(log n).
//!
//! Simplification: a sorted list cut into chunks of at most [`CHUNK`]
//! entries (a two-level B-tree, in effect) rather than a maple tree of
//! ranges. A lookup is a binary search over the chunks, then one inside a
//! chunk; an insertion or removal moves at most a chunk's entries. Each
//! entry points to its VMA, as the maple tree points to `vm_area_struct`s.
//! The top-down free-gap search ([`VmaTree::gap_topdown`], Linux's
//! `mas_empty_area_rev`) skips every chunk whose largest gap is too small,
//! as the maple tree skips nodes by their gap sizes; a chunk's largest gap
//! is recomputed on demand after the chunk changed.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::cell::Cell;
use core::ops::{Bound, RangeBounds};

use crate::mm_types::{VmFlags, Vma};
use crate::types::VirtAddr;

/// Most entries in one chunk; a fuller chunk is split in two.
const CHUNK: usize = 128;

type Entry = (VirtAddr, Box<Vma>);

/// VMAs keyed by start address, in address order.
#[derive(Clone, Debug, Default)]
pub(crate) struct VmaTree {
    /// Sorted chunks, each non-empty, except that the first is kept (empty)
    /// when the tree empties, so a tree going from 0 to 1 VMA and back
    /// allocates nothing.
    chunks: Vec<Vec<Entry>>,
    /// Per chunk, once computed and until the chunk or the one before it
    /// changes: the largest gap between its VMAs and below its first
    /// (from the previous chunk's last end), and whether any grows down.
    gaps: Vec<Cell<Option<(u64, bool)>>>,
    len: usize,
}

/// A place between entries: chunk and index, with `i` inside the chunk
/// or at the end position `(chunks.len(), 0)`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Pos {
    c: usize,
    i: usize,
}

impl VmaTree {
    /// An empty tree.
    pub(crate) const fn new() -> VmaTree {
        VmaTree {
            chunks: Vec::new(),
            gaps: Vec::new(),
            len: 0,
        }
    }

    /// Number of VMAs.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Removes every VMA.
    pub(crate) fn clear(&mut self) {
        self.chunks.clear();
        self.gaps.clear();
        self.len = 0;
    }

    /// Forgets the gaps of chunk `c` and of the one after it (whose gap
    /// below starts at `c`'s last end).
    #[inline]
    fn touch(&self, c: usize) {
        for g in self.gaps.iter().skip(c).take(2) {
            g.set(None);
        }
    }

    /// The largest gap of chunk `c` and whether a VMA in it grows down.
    fn gap_of(&self, c: usize) -> (u64, bool) {
        if let Some(g) = self.gaps[c].get() {
            return g;
        }
        let mut prev_end = match c.checked_sub(1) {
            Some(p) => self.chunks[p][self.chunks[p].len() - 1].1.end,
            None => VirtAddr(0),
        };
        let (mut gap, mut down) = (0, false);
        for (_, v) in &self.chunks[c] {
            gap = gap.max(v.start.as_u64().saturating_sub(prev_end.as_u64()));
            down |= v.flags.contains(VmFlags::GROWSDOWN);
            prev_end = v.end;
        }
        self.gaps[c].set(Some((gap, down)));
        (gap, down)
    }

    fn end(&self) -> Pos {
        Pos {
            c: if self.len == 0 { 0 } else { self.chunks.len() },
            i: 0,
        }
    }

    /// The first entry whose key is `>= key` (`strict`: `> key`).
    #[inline]
    fn seek(&self, key: VirtAddr, strict: bool) -> Pos {
        if self.len == 0 {
            return self.end();
        }
        let before = |k: VirtAddr| if strict { k <= key } else { k < key };
        let c = self.chunks.partition_point(|ch| before(ch[ch.len() - 1].0));
        if c == self.chunks.len() {
            return self.end();
        }
        let i = self.chunks[c].partition_point(|e| before(e.0));
        Pos { c, i }
    }

    fn entry(&self, p: Pos) -> &Entry {
        &self.chunks[p.c][p.i]
    }

    /// The position of `key`, if a VMA starts there.
    #[inline]
    fn find(&self, key: VirtAddr) -> Option<Pos> {
        let p = self.seek(key, false);
        (p != self.end() && self.entry(p).0 == key).then_some(p)
    }

    /// The VMA starting at `key`.
    #[inline]
    pub(crate) fn get(&self, key: &VirtAddr) -> Option<&Vma> {
        self.find(*key).map(|p| &*self.entry(p).1)
    }

    /// The VMA starting at `key`, to change in place (not its start).
    #[inline]
    pub(crate) fn get_mut(&mut self, key: &VirtAddr) -> Option<&mut Vma> {
        let p = self.find(*key)?;
        // The caller may move the VMA's end or change its flags.
        self.touch(p.c);
        Some(&mut *self.chunks[p.c][p.i].1)
    }

    /// Inserts `vma` under `key`, replacing a VMA there.
    pub(crate) fn insert(&mut self, key: VirtAddr, vma: Box<Vma>) {
        if self.chunks.is_empty() {
            self.chunks.push(Vec::new());
            self.gaps.push(Cell::new(None));
        }
        let mut p = self.seek(key, false);
        if p == self.end() {
            // After every key: the end of the last chunk.
            p.c = self.chunks.len() - 1;
            p.i = self.chunks[p.c].len();
        } else if self.entry(p).0 == key {
            self.touch(p.c);
            self.chunks[p.c][p.i].1 = vma;
            return;
        }
        self.touch(p.c);
        let ch = &mut self.chunks[p.c];
        ch.insert(p.i, (key, vma));
        self.len += 1;
        if ch.len() > CHUNK {
            let upper = ch.split_off(ch.len() / 2);
            self.chunks.insert(p.c + 1, upper);
            self.gaps.insert(p.c + 1, Cell::new(None));
        }
    }

    /// Removes and returns the VMA starting at `key`.
    pub(crate) fn remove(&mut self, key: &VirtAddr) -> Option<Box<Vma>> {
        let p = self.find(*key)?;
        self.touch(p.c);
        let (_, vma) = self.chunks[p.c].remove(p.i);
        self.len -= 1;
        let n = self.chunks[p.c].len();
        if n == 0 && self.chunks.len() > 1 {
            self.chunks.remove(p.c);
            self.gaps.remove(p.c);
            self.touch(p.c);
        } else if n < CHUNK / 4 {
            // Keep chunks from thinning out: fold a small one into a
            // neighbour when both fit in half a chunk.
            let fold = if p.c + 1 < self.chunks.len() {
                Some(p.c)
            } else {
                p.c.checked_sub(1)
            };
            if let Some(lo) = fold {
                if self.chunks[lo].len() + self.chunks[lo + 1].len() <= CHUNK / 2 {
                    let mut hi = self.chunks.remove(lo + 1);
                    self.gaps.remove(lo + 1);
                    self.chunks[lo].append(&mut hi);
                    self.touch(lo);
                }
            }
        }
        Some(vma)
    }

    /// The VMAs whose keys lie in `range`, in address order (either way).
    #[inline]
    pub(crate) fn range(&self, range: impl RangeBounds<VirtAddr>) -> Range<'_> {
        let front = match range.start_bound() {
            Bound::Included(&k) => self.seek(k, false),
            Bound::Excluded(&k) => self.seek(k, true),
            Bound::Unbounded if self.len == 0 => self.end(),
            Bound::Unbounded => Pos { c: 0, i: 0 },
        };
        let back = match range.end_bound() {
            Bound::Included(&k) => self.seek(k, true),
            Bound::Excluded(&k) => self.seek(k, false),
            Bound::Unbounded => self.end(),
        };
        Range {
            tree: self,
            front,
            back: back.max(front),
        }
    }

    /// `vm_unmapped_area` top-down (`mas_empty_area_rev` on the tree):
    /// the highest `len`-byte gap in `[low, high)`, a gap below a
    /// GROWSDOWN VMA ending `guard` bytes below its start (`vm_start_gap`).
    /// Each VMA below `high` is looked at in turn, highest first, except
    /// that once a chunk's largest gap is known to be under `len` (and no
    /// VMA in it grows down, so its first VMA starts lowest) the search
    /// goes straight to that first VMA.
    pub(crate) fn gap_topdown(
        &self,
        len: u64,
        low: VirtAddr,
        high: VirtAddr,
        guard: u64,
    ) -> Option<VirtAddr> {
        let top = self.seek(high, false);
        let mut gap_end = high;
        if top != self.end() {
            gap_end = gap_end.min(self.entry(top).1.start_gap(guard));
        }
        let Pos { mut c, mut i } = top;
        loop {
            if i == 0 {
                if c == 0 || self.len == 0 {
                    break;
                }
                c -= 1;
                i = self.chunks[c].len();
            }
            i -= 1;
            let v = &self.chunks[c][i].1;
            let gs = v.end_gap().max(low);
            if gap_end >= gs && gap_end - gs >= len {
                return Some(gap_end - len);
            }
            // The gap below `v` ends at v's own start gap; a guard gap only
            // constrains the gap directly below its VMA.
            gap_end = high.min(v.start_gap(guard));
            if gap_end <= low {
                return None;
            }
            if i > 1 {
                let (gap, down) = self.gap_of(c);
                if gap < len && !down {
                    i = 0;
                    gap_end = high.min(self.chunks[c][0].1.start);
                    if gap_end <= low {
                        return None;
                    }
                }
            }
        }
        if gap_end >= low && gap_end - low >= len {
            return Some(gap_end - len);
        }
        None
    }

    /// Every VMA with its key, in address order.
    pub(crate) fn iter(&self) -> Range<'_> {
        self.range(..)
    }

    /// Every VMA, in address order.
    pub(crate) fn values(&self) -> impl DoubleEndedIterator<Item = &Vma> {
        self.iter().map(|(_, v)| v)
    }

    /// Every key, in address order.
    pub(crate) fn keys(&self) -> impl DoubleEndedIterator<Item = &VirtAddr> {
        self.iter().map(|(k, _)| k)
    }
}

impl core::ops::Index<&VirtAddr> for VmaTree {
    type Output = Vma;
    /// The VMA at `key`; panics if there is none (a caller's bug).
    fn index(&self, key: &VirtAddr) -> &Vma {
        self.get(key).expect("no VMA at this key")
    }
}

impl<'a> IntoIterator for &'a VmaTree {
    type Item = (&'a VirtAddr, &'a Vma);
    type IntoIter = Range<'a>;
    fn into_iter(self) -> Range<'a> {
        self.iter()
    }
}

/// An iterator over the VMAs of a key range ([`VmaTree::range`]).
pub(crate) struct Range<'a> {
    tree: &'a VmaTree,
    front: Pos,
    back: Pos,
}

impl<'a> Iterator for Range<'a> {
    type Item = (&'a VirtAddr, &'a Vma);
    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.front == self.back {
            return None;
        }
        let (k, v) = self.tree.entry(self.front);
        self.front.i += 1;
        if self.front.i == self.tree.chunks[self.front.c].len() {
            self.front = Pos {
                c: self.front.c + 1,
                i: 0,
            };
        }
        Some((k, v))
    }
}

impl DoubleEndedIterator for Range<'_> {
    #[inline]
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.front == self.back {
            return None;
        }
        if self.back.i == 0 {
            self.back.c -= 1;
            self.back.i = self.tree.chunks[self.back.c].len();
        }
        self.back.i -= 1;
        let (k, v) = self.tree.entry(self.back);
        Some((k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;
    use proptest::prelude::*;

    fn vma(k: u64) -> Box<Vma> {
        Box::new(Vma::new_anon(
            VirtAddr(k << 12),
            VirtAddr((k + 1) << 12),
            VmFlags::READ,
            k,
        ))
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u64),
        Remove(u64),
        Range(Bound<u64>, Bound<u64>),
    }

    fn bound() -> impl Strategy<Value = Bound<u64>> {
        prop_oneof![
            (0..700u64).prop_map(Bound::Included),
            (0..700u64).prop_map(Bound::Excluded),
            Just(Bound::Unbounded),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0..600u64).prop_map(Op::Insert),
            3 => (0..600u64).prop_map(Op::Remove),
            2 => (bound(), bound()).prop_map(|(a, b)| Op::Range(a, b)),
        ]
    }

    fn addr(b: Bound<u64>) -> Bound<VirtAddr> {
        b.map(|k| VirtAddr(k << 12))
    }

    /// A model's range, empty where BTreeMap would panic (start > end,
    /// or both bounds excluding the same key).
    fn model_range(m: &BTreeMap<VirtAddr, u64>, a: Bound<u64>, b: Bound<u64>) -> Vec<u64> {
        let key = |b: Bound<u64>| match b {
            Bound::Included(k) | Bound::Excluded(k) => Some(k),
            Bound::Unbounded => None,
        };
        if let (Some(x), Some(y)) = (key(a), key(b)) {
            if x > y
                || (x == y && matches!(a, Bound::Excluded(_)) && matches!(b, Bound::Excluded(_)))
            {
                return Vec::new();
            }
        }
        m.range((addr(a), addr(b))).map(|(_, &v)| v).collect()
    }

    proptest! {
        /// The tree answers as a BTreeMap does, through chunk splits and
        /// folds: every insertion, removal, lookup and range both ways.
        #[test]
        fn matches_btreemap(ops in proptest::collection::vec(op(), 1..1500)) {
            let mut t = VmaTree::new();
            let mut m: BTreeMap<VirtAddr, u64> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Insert(k) => {
                        t.insert(VirtAddr(k << 12), vma(k));
                        m.insert(VirtAddr(k << 12), k);
                    }
                    Op::Remove(k) => {
                        let got = t.remove(&VirtAddr(k << 12)).map(|v| v.pgoff);
                        prop_assert_eq!(got, m.remove(&VirtAddr(k << 12)));
                    }
                    Op::Range(a, b) => {
                        let want = model_range(&m, a, b);
                        let fwd: Vec<u64> =
                            t.range((addr(a), addr(b))).map(|(_, v)| v.pgoff).collect();
                        prop_assert_eq!(&fwd, &want);
                        let mut rev: Vec<u64> =
                            t.range((addr(a), addr(b))).rev().map(|(_, v)| v.pgoff).collect();
                        rev.reverse();
                        prop_assert_eq!(&rev, &want);
                    }
                }
                prop_assert_eq!(t.len(), m.len());
                prop_assert!(t.chunks.iter().all(|c| c.len() <= CHUNK));
            }
            let keys: Vec<VirtAddr> = t.keys().copied().collect();
            prop_assert_eq!(keys, m.keys().copied().collect::<Vec<_>>());
            for (&k, &v) in &m {
                prop_assert_eq!(t.get(&k).map(|x| x.pgoff), Some(v));
                prop_assert_eq!(t[&k].start, k);
            }
            prop_assert!(t.get(&VirtAddr(1)).is_none());
        }
    }

    /// The top-down search of Linux 6.18 walked VMA by VMA (the model).
    fn model_topdown(
        m: &BTreeMap<VirtAddr, Vma>,
        len: u64,
        low: VirtAddr,
        high: VirtAddr,
        guard: u64,
    ) -> Option<VirtAddr> {
        let mut gap_end = high;
        if let Some((_, next)) = m.range(high..).next() {
            gap_end = gap_end.min(next.start_gap(guard));
        }
        for (_, v) in m.range(..high).rev() {
            let gs = v.end_gap().max(low);
            if gap_end >= gs && gap_end - gs >= len {
                return Some(gap_end - len);
            }
            gap_end = high.min(v.start_gap(guard));
            if gap_end <= low {
                return None;
            }
        }
        (gap_end >= low && gap_end - low >= len).then(|| gap_end - len)
    }

    proptest! {
        /// The chunk-skipping gap search finds what a walk over every VMA
        /// finds, stack guard gaps included, as VMAs come, go and change.
        #[test]
        fn gap_topdown_matches_walk(
            spans in proptest::collection::vec((0..1500u64, 1..3u64, 0..200u8), 1..1500),
            searches in proptest::collection::vec((1..12u64, 0..1200u64, 0..1600u64, 0..3u64), 1..40),
        ) {
            let mut t = VmaTree::new();
            let mut m: BTreeMap<VirtAddr, Vma> = BTreeMap::new();
            for (at, pages, kind) in spans {
                let (s, e) = (VirtAddr(at << 12), VirtAddr((at + pages) << 12));
                if m.range(..e).next_back().is_some_and(|(_, v)| v.end > s) {
                    // Overlaps: take the VMA there away instead, or cut
                    // its end (in place, as tree_modify does).
                    let k = *m.range(..e).next_back().unwrap().0;
                    if kind % 2 == 0 {
                        m.remove(&k);
                        t.remove(&k);
                    } else if m[&k].pages() > 1 {
                        let end = m[&k].start + 4096;
                        m.get_mut(&k).unwrap().end = end;
                        t.get_mut(&k).unwrap().end = end;
                    }
                    continue;
                }
                let flags = if kind == 199 { VmFlags::GROWSDOWN } else { VmFlags::READ };
                let v = Vma::new_anon(s, e, flags, at);
                t.insert(s, Box::new(v.clone()));
                m.insert(s, v);
            }
            for (len, low, high, guard) in searches {
                let (len, low, high, guard) =
                    (len << 12, VirtAddr(low << 12), VirtAddr(high << 12), guard << 12);
                prop_assert_eq!(
                    t.gap_topdown(len, low, high, guard),
                    model_topdown(&m, len, low, high, guard)
                );
            }
        }
    }

    /// Both ends of a range meeting mid-way stop the iteration: no entry
    /// comes out twice.
    #[test]
    fn both_ends_meet() {
        let mut t = VmaTree::new();
        for k in 0..300 {
            t.insert(VirtAddr(k << 12), vma(k));
        }
        let mut r = t.range(..);
        let mut seen = Vec::new();
        loop {
            match (r.next(), r.next_back()) {
                (Some(a), Some(b)) => seen.extend([a.1.pgoff, b.1.pgoff]),
                (Some(a), None) => seen.push(a.1.pgoff),
                (None, _) => break,
            }
        }
        seen.sort();
        assert_eq!(seen, (0..300).collect::<Vec<_>>());
    }

    /// A tree emptied keeps its chunk: the next insertion reuses it.
    #[test]
    fn emptied_tree_keeps_its_chunk() {
        let mut t = VmaTree::new();
        t.insert(VirtAddr(0x1000), vma(1));
        assert!(t.remove(&VirtAddr(0x1000)).is_some());
        assert_eq!(t.len(), 0);
        assert_eq!(t.chunks.len(), 1);
        assert_eq!(t.range(..).count(), 0);
        assert_eq!(t.range(..VirtAddr(0x5000)).next_back().map(|e| *e.0), None);
        t.insert(VirtAddr(0x2000), vma(2));
        assert_eq!(
            t.range(..=VirtAddr(0x5000)).next_back().map(|e| *e.0),
            Some(VirtAddr(0x2000))
        );
    }
}
