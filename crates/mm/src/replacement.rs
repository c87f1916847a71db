//! Page-replacement policies for experiments: which resident page a process
//! limited to N frames gives up on a fault. One trait ([`ReplacementPolicy`]),
//! six policies (fifo, lru, clock, age, opt, linux), one place that chooses
//! ([`policy_by_name`]), a reference-string simulator ([`simulate`]) and
//! miss-ratio curves ([`miss_ratio_curve`]).
//!
//! Linux itself has no pluggable policy: its reclaim is mm/vmscan.c (the
//! machine's `vmscan` module, for global reclaim). The `linux` policy here is
//! a model of that active/inactive LRU for per-process frame-limited
//! experiments, so it can be compared with the textbook policies on the same
//! reference string.
//!
//! Pages are named by a key `u64` (in lmm: a virtual page number of the
//! process being limited). Every policy keeps its pages in index-linked
//! lists (the way Linux links `struct page` through `lru`), and finds a key's
//! node through [`KeyMap`]: a dense `Vec` for keys below 2^20, so that a
//! caller that compacts its keys (as [`simulate`] does) walks no hash table
//! per reference; a small open-addressing table for larger keys.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

/// A page-replacement policy over a resident set of pages named by `u64`
/// keys.
///
/// The caller owns residency: it calls [`admit`](Self::admit) when a page
/// becomes resident, [`victim`](Self::victim) when it needs a frame and the
/// set is full, [`remove`](Self::remove) when a page leaves for another
/// reason. Only a policy that [`needs_every_reference`](Self::needs_every_reference)
/// is told of each reference; the others see what the hardware leaves: the
/// accessed bit, which `victim` tests and clears through its `young`
/// callback (in the machine: the PTE's A bit, reached through the rmap walk,
/// as `folio_referenced` does). A kernel-side caller that only has accessed
/// bits can therefore run every policy but `lru` and `opt`.
///
/// Misuse is tolerated, never a panic: admitting a resident key counts as a
/// reference, referencing or removing a key that is not resident does
/// nothing.
pub trait ReplacementPolicy {
    /// The name [`policy_by_name`] knows it by.
    fn name(&self) -> &'static str;
    /// True if the policy must see every reference (lru, opt); false if the
    /// accessed bit, sampled by `victim`, is all it uses (fifo, clock, age,
    /// linux).
    fn needs_every_reference(&self) -> bool;
    /// `key` became resident at reference number `now` (its accessed bit is
    /// set: the faulting access made it young).
    fn admit(&mut self, key: u64, now: u64);
    /// A reference, number `now`, to the resident page `key` (called only
    /// if [`needs_every_reference`](Self::needs_every_reference)).
    fn reference(&mut self, key: u64, now: u64);
    /// Chooses the page to evict and drops it from the policy's set.
    /// `young(key)` tests and clears that page's accessed bit. `None` only
    /// if no page is resident.
    fn victim(&mut self, young: &mut dyn FnMut(u64) -> bool) -> Option<u64>;
    /// `key` left the resident set for another reason (munmap, exit).
    fn remove(&mut self, key: u64);
    /// Pages resident.
    fn len(&self) -> usize;
    /// True if no page is resident.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The names [`policy_by_name`] accepts, in the order sweeps print them.
pub const POLICIES: [&str; 6] = ["fifo", "lru", "clock", "age", "opt", "linux"];

/// The one place that chooses a policy by name. `future` is the whole
/// reference string, which only `opt` needs (and which it must have).
pub fn policy_by_name(
    name: &str,
    future: Option<&[u64]>,
) -> Result<Box<dyn ReplacementPolicy>, String> {
    Ok(match name {
        "fifo" => Box::new(Fifo::new()),
        "lru" => Box::new(Lru::new()),
        "clock" => Box::new(Clock::new()),
        "age" => Box::new(Age::new()),
        "linux" => Box::new(LinuxLru::new()),
        "opt" => match future {
            Some(refs) => Box::new(Opt::new(refs)),
            None => {
                return Err(
                    "policy \"opt\" (Belady's MIN) needs the whole future reference string, \
                     and none was given"
                        .into(),
                )
            }
        },
        other => {
            return Err(format!(
                "unknown replacement policy {other:?}: expected one of {}",
                POLICIES.join(", ")
            ))
        }
    })
}

// ---------------------------------------------------------------------------
// Key -> node index.

/// No node, no entry.
const NIL: u32 = u32::MAX;

/// Keys below this are looked up in a dense `Vec`.
pub const DENSE_KEYS: u64 = 1 << 20;

/// An open-addressing hash table `u64 -> u32` (linear probing, Fibonacci
/// hashing, deletion by backward shift, so no tombstones).
#[derive(Clone, Debug, Default)]
struct SparseMap {
    keys: Vec<u64>,
    vals: Vec<u32>,
    len: usize,
    shift: u32,
}

impl SparseMap {
    fn mask(&self) -> usize {
        self.keys.len() - 1
    }

    fn home(&self, key: u64) -> usize {
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    /// The slot holding `key`, or the empty slot where it would go.
    fn find(&self, key: u64) -> usize {
        let mask = self.mask();
        let mut i = self.home(key);
        while self.vals[i] != NIL && self.keys[i] != key {
            i = (i + 1) & mask;
        }
        i
    }

    fn get(&self, key: u64) -> Option<u32> {
        if self.len == 0 {
            return None;
        }
        let v = self.vals[self.find(key)];
        (v != NIL).then_some(v)
    }

    fn grow(&mut self) {
        let cap = (self.keys.len() * 2).max(16);
        let old_keys = core::mem::replace(&mut self.keys, vec![0; cap]);
        let old_vals = core::mem::replace(&mut self.vals, vec![NIL; cap]);
        self.shift = 64 - cap.trailing_zeros();
        for (k, v) in old_keys.into_iter().zip(old_vals) {
            if v != NIL {
                let i = self.find(k);
                self.keys[i] = k;
                self.vals[i] = v;
            }
        }
    }

    fn insert(&mut self, key: u64, val: u32) {
        if (self.len + 1) * 2 > self.keys.len() {
            self.grow();
        }
        let i = self.find(key);
        if self.vals[i] == NIL {
            self.len += 1;
            self.keys[i] = key;
        }
        self.vals[i] = val;
    }

    fn remove(&mut self, key: u64) -> Option<u32> {
        if self.len == 0 {
            return None;
        }
        let mask = self.mask();
        let mut hole = self.find(key);
        let old = self.vals[hole];
        if old == NIL {
            return None;
        }
        self.vals[hole] = NIL;
        self.len -= 1;
        // Backward shift: pull later entries of the probe run into the hole
        // when the hole lies between their home slot and where they are.
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            if self.vals[j] == NIL {
                break;
            }
            let home = self.home(self.keys[j]);
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.keys[hole] = self.keys[j];
                self.vals[hole] = self.vals[j];
                self.vals[j] = NIL;
                hole = j;
            }
        }
        Some(old)
    }
}

/// `u64 -> u32`: a dense `Vec` (grown on demand) for keys below
/// [`DENSE_KEYS`], a `SparseMap` above.
#[derive(Clone, Debug, Default)]
pub struct KeyMap {
    dense: Vec<u32>,
    sparse: SparseMap,
    len: usize,
}

impl KeyMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Entries in the map.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if the map has no entry.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The value of `key`.
    #[inline]
    pub fn get(&self, key: u64) -> Option<u32> {
        if key < DENSE_KEYS {
            match self.dense.get(key as usize) {
                Some(&v) if v != NIL => Some(v),
                _ => None,
            }
        } else {
            self.sparse.get(key)
        }
    }

    /// Sets `key` to `val` (not `u32::MAX`, which means "absent" and is
    /// refused); returns the old value.
    pub fn insert(&mut self, key: u64, val: u32) -> Option<u32> {
        if val == NIL {
            return self.get(key);
        }
        let old = self.get(key);
        if key < DENSE_KEYS {
            let i = key as usize;
            if i >= self.dense.len() {
                let want = (i + 1).next_power_of_two().min(DENSE_KEYS as usize);
                self.dense.resize(want, NIL);
            }
            self.dense[i] = val;
        } else {
            self.sparse.insert(key, val);
        }
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: u64) -> Option<u32> {
        let old = if key < DENSE_KEYS {
            let slot = self.dense.get_mut(key as usize)?;
            let v = core::mem::replace(slot, NIL);
            (v != NIL).then_some(v)
        } else {
            self.sparse.remove(key)
        };
        if old.is_some() {
            self.len -= 1;
        }
        old
    }
}

// ---------------------------------------------------------------------------
// Index-linked lists.

#[derive(Clone, Copy, Debug)]
struct Node {
    key: u64,
    prev: u32,
    next: u32,
    /// The list the node is on; [`NIL`] for a free node.
    list: u32,
    /// Policy data: the age (age), PG_referenced (linux).
    aux: u32,
}

/// Nodes linked into circular lists through `prev`/`next` indices, each
/// list with a sentinel node (indices `0..lists`), as `list_head` does.
/// "Front" is just after the sentinel (the head, where Linux adds), "back"
/// just before it (the tail, where reclaim scans).
#[derive(Clone, Debug)]
struct Lists {
    nodes: Vec<Node>,
    free: Vec<u32>,
    map: KeyMap,
    counts: Vec<usize>,
}

impl Lists {
    fn new(lists: u32) -> Self {
        let nodes = (0..lists)
            .map(|i| Node {
                key: 0,
                prev: i,
                next: i,
                list: i,
                aux: 0,
            })
            .collect();
        Lists {
            nodes,
            free: Vec::new(),
            map: KeyMap::new(),
            counts: vec![0; lists as usize],
        }
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    #[inline]
    fn slot(&self, key: u64) -> Option<u32> {
        self.map.get(key)
    }

    #[inline]
    fn node(&self, i: u32) -> &Node {
        &self.nodes[i as usize]
    }

    #[inline]
    fn node_mut(&mut self, i: u32) -> &mut Node {
        &mut self.nodes[i as usize]
    }

    /// A new node for `key`, on no list yet (`None` if the index space is
    /// exhausted: 2^32 - 1 pages).
    fn alloc(&mut self, key: u64, aux: u32) -> Option<u32> {
        let node = Node {
            key,
            prev: NIL,
            next: NIL,
            list: NIL,
            aux,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                let i = u32::try_from(self.nodes.len()).ok().filter(|&i| i != NIL)?;
                self.nodes.push(node);
                i
            }
        };
        self.map.insert(key, i);
        Some(i)
    }

    /// Frees node `i`, which is on no list.
    fn release(&mut self, i: u32) {
        let key = self.node(i).key;
        self.map.remove(key);
        self.node_mut(i).list = NIL;
        self.free.push(i);
    }

    /// Links `i` after node `at` (a sentinel or a node on `list`).
    #[inline]
    fn link_after(&mut self, i: u32, at: u32, list: u32) {
        let next = self.node(at).next;
        *self.node_mut(i) = Node {
            prev: at,
            next,
            list,
            ..*self.node(i)
        };
        self.node_mut(at).next = i;
        self.node_mut(next).prev = i;
        self.counts[list as usize] += 1;
    }

    fn push_front(&mut self, list: u32, i: u32) {
        self.link_after(i, list, list);
    }

    /// Links `i` just before `at`, on `at`'s list.
    fn insert_before(&mut self, i: u32, at: u32) {
        let (prev, list) = (self.node(at).prev, self.node(at).list);
        self.link_after(i, prev, list);
    }

    #[inline]
    fn unlink(&mut self, i: u32) {
        let Node {
            prev, next, list, ..
        } = *self.node(i);
        self.node_mut(prev).next = next;
        self.node_mut(next).prev = prev;
        self.counts[list as usize] -= 1;
        let n = self.node_mut(i);
        n.prev = NIL;
        n.next = NIL;
        n.list = NIL;
    }

    fn back(&self, list: u32) -> Option<u32> {
        let b = self.node(list).prev;
        (b != list).then_some(b)
    }

    fn count(&self, list: u32) -> usize {
        self.counts[list as usize]
    }

    /// The node after `i` around its circular list, skipping the sentinel.
    fn next_around(&self, i: u32) -> u32 {
        let n = self.node(i);
        if n.next == n.list {
            self.node(n.list).next
        } else {
            n.next
        }
    }

    /// Unlinks and frees the node of `key`; returns it for the caller that
    /// needs to move a hand off it first.
    fn remove_key(&mut self, key: u64) -> Option<u32> {
        let i = self.slot(key)?;
        self.unlink(i);
        self.release(i);
        Some(i)
    }
}

// ---------------------------------------------------------------------------
// FIFO.

/// First in, first out: evict the page resident longest, whatever its use
/// (Belady 1966; Silberschatz, Galvin, Gagne, *Operating System Concepts*,
/// 10th ed., section 10.4.2 "FIFO Page Replacement"). Uses no accessed bit.
#[derive(Clone, Debug)]
pub struct Fifo {
    lists: Lists,
}

impl Fifo {
    /// An empty set.
    pub fn new() -> Self {
        Fifo {
            lists: Lists::new(1),
        }
    }
}

impl Default for Fifo {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplacementPolicy for Fifo {
    fn name(&self) -> &'static str {
        "fifo"
    }
    fn needs_every_reference(&self) -> bool {
        false
    }
    fn admit(&mut self, key: u64, _now: u64) {
        if self.lists.slot(key).is_some() {
            return;
        }
        if let Some(i) = self.lists.alloc(key, 0) {
            self.lists.push_front(0, i);
        }
    }
    fn reference(&mut self, _key: u64, _now: u64) {}
    fn victim(&mut self, _young: &mut dyn FnMut(u64) -> bool) -> Option<u64> {
        let i = self.lists.back(0)?;
        let key = self.lists.node(i).key;
        self.lists.remove_key(key);
        Some(key)
    }
    fn remove(&mut self, key: u64) {
        self.lists.remove_key(key);
    }
    fn len(&self) -> usize {
        self.lists.len()
    }
}

// ---------------------------------------------------------------------------
// LRU.

/// Exact least recently used: evict the page whose last reference is
/// oldest (Silberschatz et al., *Operating System Concepts*, 10th ed.,
/// section 10.4.4 "LRU Page Replacement", the "stack" implementation: a
/// doubly linked list, a referenced page moved to the top, O(1) per
/// reference). Needs every reference.
#[derive(Clone, Debug)]
pub struct Lru {
    lists: Lists,
}

impl Lru {
    /// An empty set.
    pub fn new() -> Self {
        Lru {
            lists: Lists::new(1),
        }
    }
}

impl Default for Lru {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplacementPolicy for Lru {
    fn name(&self) -> &'static str {
        "lru"
    }
    fn needs_every_reference(&self) -> bool {
        true
    }
    fn admit(&mut self, key: u64, now: u64) {
        if self.lists.slot(key).is_some() {
            return self.reference(key, now);
        }
        if let Some(i) = self.lists.alloc(key, 0) {
            self.lists.push_front(0, i);
        }
    }
    #[inline]
    fn reference(&mut self, key: u64, _now: u64) {
        if let Some(i) = self.lists.slot(key) {
            // Already most recent (a run of references to one page, the
            // common case in a trace): nothing to move.
            if self.lists.node(0).next != i {
                self.lists.unlink(i);
                self.lists.push_front(0, i);
            }
        }
    }
    fn victim(&mut self, _young: &mut dyn FnMut(u64) -> bool) -> Option<u64> {
        let i = self.lists.back(0)?;
        let key = self.lists.node(i).key;
        self.lists.remove_key(key);
        Some(key)
    }
    fn remove(&mut self, key: u64) {
        self.lists.remove_key(key);
    }
    fn len(&self) -> usize {
        self.lists.len()
    }
}

// ---------------------------------------------------------------------------
// Clock and age: a hand over a circular list.

/// A circular list with a hand: the shared body of [`Clock`] and [`Age`].
/// A new page goes just before the hand (into the frame the last victim
/// left, in the textbook's picture of frames in a circle), so the hand
/// reaches it last.
#[derive(Clone, Debug)]
struct Circle {
    lists: Lists,
    hand: u32,
}

impl Circle {
    fn new() -> Self {
        Circle {
            lists: Lists::new(1),
            hand: NIL,
        }
    }

    fn admit(&mut self, key: u64, aux: u32) {
        if self.lists.slot(key).is_some() {
            return;
        }
        let Some(i) = self.lists.alloc(key, aux) else {
            return;
        };
        if self.hand == NIL {
            self.lists.push_front(0, i);
            self.hand = i;
        } else {
            self.lists.insert_before(i, self.hand);
        }
    }

    /// Removes node `i`, moving the hand on first if it points there.
    fn drop_node(&mut self, i: u32) {
        if self.hand == i {
            let next = self.lists.next_around(i);
            self.hand = if next == i { NIL } else { next };
        }
        self.lists.unlink(i);
        self.lists.release(i);
    }

    fn remove(&mut self, key: u64) {
        if let Some(i) = self.lists.slot(key) {
            self.drop_node(i);
        }
    }

    fn advance(&mut self) {
        self.hand = self.lists.next_around(self.hand);
    }
}

/// Second chance, "clock": a hand sweeps the circle of resident pages; a
/// page whose accessed bit is set has it cleared and is passed over, the
/// first page found with the bit clear is evicted (Corbató, "A Paging
/// Experiment with the Multics System", 1968; Silberschatz et al., 10th
/// ed., section 10.4.5.2 "Second-Chance Algorithm"; Tanenbaum, *Modern
/// Operating Systems*, 4th ed., section 3.4.5 "The Clock Page Replacement
/// Algorithm").
///
/// A `young` that never answers false is met by evicting the page at the
/// hand after two full turns, rather than looping forever.
#[derive(Clone, Debug)]
pub struct Clock {
    circle: Circle,
}

impl Clock {
    /// An empty set.
    pub fn new() -> Self {
        Clock {
            circle: Circle::new(),
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplacementPolicy for Clock {
    fn name(&self) -> &'static str {
        "clock"
    }
    fn needs_every_reference(&self) -> bool {
        false
    }
    fn admit(&mut self, key: u64, _now: u64) {
        self.circle.admit(key, 0);
    }
    fn reference(&mut self, _key: u64, _now: u64) {}
    fn victim(&mut self, young: &mut dyn FnMut(u64) -> bool) -> Option<u64> {
        let c = &mut self.circle;
        if c.hand == NIL {
            return None;
        }
        let limit = 2 * c.lists.len();
        let mut steps = 0;
        loop {
            let i = c.hand;
            let key = c.lists.node(i).key;
            if steps < limit && young(key) {
                c.advance();
                steps += 1;
                continue;
            }
            c.drop_node(i);
            return Some(key);
        }
    }
    fn remove(&mut self, key: u64) {
        self.circle.remove(key);
    }
    fn len(&self) -> usize {
        self.circle.lists.len()
    }
}

/// Linux 2.4's initial page age (`PAGE_AGE_START`, include/linux/swap.h).
pub const PAGE_AGE_START: u32 = 2;
/// Age added when a scan finds the page referenced (`PAGE_AGE_ADV`).
pub const PAGE_AGE_ADV: u32 = 3;
/// The age cap (`PAGE_AGE_MAX`).
pub const PAGE_AGE_MAX: u32 = 64;

/// Page aging, the multi-pass clock of Linux 2.4 (Gorman, *Understanding
/// the Linux Virtual Memory Manager*, 2004, ch. 10 "Page Frame
/// Reclamation", section 10.3 on page aging; Linux 2.4.0 mm/swap.c
/// `age_page_up`/`age_page_down`, include/linux/swap.h for the constants).
///
/// Each resident page has an age, [`PAGE_AGE_START`] when it arrives. The
/// hand sweeps the circle: a referenced page (accessed bit set, then
/// cleared) gains [`PAGE_AGE_ADV`], up to [`PAGE_AGE_MAX`]; an unreferenced
/// page's age is halved, as 2.4.0's `age_page_down` does (`age /= 2`; the
/// later 2.4 `-ac`/rmap VMs instead subtracted `PAGE_AGE_DECL` = 1, a
/// linear decline, which this model does not use). A page whose age
/// reaches 0 is evicted (in 2.4 it was deactivated, to be laundered and
/// reclaimed from the inactive lists; here that is one step).
///
/// A fresh unreferenced page thus survives one pass (2 -> 1) and goes on the
/// second (1 -> 0); a page at the cap survives seven. A `young` that never
/// answers false is met by evicting the page at the hand after
/// 8 full turns.
#[derive(Clone, Debug)]
pub struct Age {
    circle: Circle,
}

impl Age {
    /// An empty set.
    pub fn new() -> Self {
        Age {
            circle: Circle::new(),
        }
    }
}

impl Default for Age {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplacementPolicy for Age {
    fn name(&self) -> &'static str {
        "age"
    }
    fn needs_every_reference(&self) -> bool {
        false
    }
    fn admit(&mut self, key: u64, _now: u64) {
        self.circle.admit(key, PAGE_AGE_START);
    }
    fn reference(&mut self, _key: u64, _now: u64) {}
    fn victim(&mut self, young: &mut dyn FnMut(u64) -> bool) -> Option<u64> {
        let c = &mut self.circle;
        if c.hand == NIL {
            return None;
        }
        let limit = 8 * c.lists.len();
        let mut steps = 0;
        loop {
            let i = c.hand;
            let key = c.lists.node(i).key;
            if steps >= limit {
                c.drop_node(i);
                return Some(key);
            }
            steps += 1;
            let node = c.lists.node_mut(i);
            if young(key) {
                node.aux = (node.aux + PAGE_AGE_ADV).min(PAGE_AGE_MAX);
            } else {
                node.aux /= 2;
                if node.aux == 0 {
                    c.drop_node(i);
                    return Some(key);
                }
            }
            c.advance();
        }
    }
    fn remove(&mut self, key: u64) {
        self.circle.remove(key);
    }
    fn len(&self) -> usize {
        self.circle.lists.len()
    }
}

// ---------------------------------------------------------------------------
// OPT.

/// "Never referenced again".
const NEVER: u64 = u64::MAX;

/// A set of times `0..n` with "largest member" in O(levels): a bitmap with
/// a summary bitmap per level above it (bit `i` of level `l + 1` is set
/// if word `i` of level `l` is not zero).
#[derive(Clone, Debug, Default)]
struct TimeSet {
    levels: Vec<Vec<u64>>,
    n: usize,
}

impl TimeSet {
    fn new(n: usize) -> Self {
        let mut levels = Vec::new();
        let mut words = n.div_ceil(64).max(1);
        loop {
            levels.push(vec![0u64; words]);
            if words == 1 {
                break;
            }
            words = words.div_ceil(64);
        }
        TimeSet { levels, n }
    }

    /// Adds `t`; a time outside `0..n` is ignored.
    fn insert(&mut self, t: usize) {
        if t >= self.n {
            return;
        }
        let mut i = t;
        for level in &mut self.levels {
            let Some(w) = level.get_mut(i / 64) else {
                return;
            };
            let was = *w;
            *w |= 1 << (i % 64);
            if was != 0 {
                return;
            }
            i /= 64;
        }
    }

    fn remove(&mut self, t: usize) {
        let mut i = t;
        for level in &mut self.levels {
            let Some(w) = level.get_mut(i / 64) else {
                return;
            };
            *w &= !(1 << (i % 64));
            if *w != 0 {
                return;
            }
            i /= 64;
        }
    }

    fn max(&self) -> Option<usize> {
        let top = self.levels.last()?;
        let mut i = 63 - top.first().filter(|&&w| w != 0)?.leading_zeros() as usize;
        for level in self.levels.iter().rev().skip(1) {
            let w = level[i];
            i = i * 64 + (63 - w.leading_zeros() as usize);
        }
        Some(i)
    }
}

/// Belady's MIN, the optimal policy: evict the resident page whose next
/// reference lies farthest in the future (Belady, "A study of replacement
/// algorithms for a virtual-storage computer", IBM Systems Journal 5(2),
/// 1966; Silberschatz et al., 10th ed., section 10.4.3 "Optimal Page
/// Replacement"). Among pages never referenced again, the one referenced
/// least recently goes first (any choice is optimal; this one is fixed so
/// that runs repeat).
///
/// Built from the whole reference string: [`Opt::new`] computes, for each
/// reference index, the index of the next reference to the same key. The
/// `now` given to [`admit`](ReplacementPolicy::admit) and
/// [`reference`](ReplacementPolicy::reference) must be the index of that
/// reference in the string (the key only names the page, so a caller may
/// hand compacted ids); a `now` past the string's end means "never again".
///
/// Next-use times are unique, so the resident pages' next uses form a set
/// of times: a hierarchical bitmap finds the largest in a few word reads,
/// and a reference moves its page's bit from `now` to its next use, O(1).
/// Pages never used again wait on a list in order of last reference.
#[derive(Clone, Debug)]
pub struct Opt {
    next: Vec<u64>,
    /// List 0: pages with a next use (in `times`); list 1: pages never
    /// used again, least recently referenced at the back.
    lists: Lists,
    times: TimeSet,
    /// Per time in `times`: the node whose next use it is.
    owner: Vec<u32>,
    /// Per node: its next use, [`NEVER`] if none.
    next_use: Vec<u64>,
}

const LIVE: u32 = 0;
const DEAD: u32 = 1;

impl Opt {
    /// The policy for the reference string `refs`.
    pub fn new(refs: &[u64]) -> Self {
        let mut next = vec![NEVER; refs.len()];
        // Key -> compact id -> the index of its latest reference seen so
        // far, scanning backwards.
        let mut ids = KeyMap::new();
        let mut latest: Vec<u64> = Vec::new();
        for (i, &k) in refs.iter().enumerate().rev() {
            let id = match ids.get(k) {
                Some(id) => id as usize,
                None => {
                    let Some(id) = u32::try_from(latest.len()).ok().filter(|&id| id != NIL) else {
                        continue; // 2^32 distinct keys: "never" for the rest
                    };
                    ids.insert(k, id);
                    latest.push(NEVER);
                    id as usize
                }
            };
            next[i] = latest[id];
            latest[id] = i as u64;
        }
        Opt {
            times: TimeSet::new(refs.len()),
            owner: vec![NIL; refs.len()],
            next,
            lists: Lists::new(2),
            next_use: Vec::new(),
        }
    }

    /// Sets node `i`'s next use from the reference at `now`, and files it.
    fn touch(&mut self, i: u32, now: u64) {
        let slot = i as usize;
        if self.next_use.len() <= slot {
            self.next_use.resize(slot + 1, NEVER);
        }
        let old = self.next_use[slot];
        if old != NEVER {
            self.times.remove(old as usize);
        }
        let t = usize::try_from(now)
            .ok()
            .and_then(|n| self.next.get(n).copied())
            .unwrap_or(NEVER);
        self.next_use[slot] = t;
        if t == NEVER {
            // Most recently referenced of the dead pages.
            self.lists.unlink(i);
            self.lists.push_front(DEAD, i);
        } else {
            // A caller whose `now` is not this page's reference could make
            // two pages share a time: the later one owns it.
            self.times.insert(t as usize);
            self.owner[t as usize] = i;
            // The live list's order does not matter: move only from dead.
            if self.lists.node(i).list != LIVE {
                self.lists.unlink(i);
                self.lists.push_front(LIVE, i);
            }
        }
    }

    fn evict(&mut self, i: u32) -> u64 {
        let key = self.lists.node(i).key;
        let t = self.next_use[i as usize];
        if t != NEVER {
            self.times.remove(t as usize);
        }
        self.next_use[i as usize] = NEVER;
        self.lists.unlink(i);
        self.lists.release(i);
        key
    }
}

impl ReplacementPolicy for Opt {
    fn name(&self) -> &'static str {
        "opt"
    }
    fn needs_every_reference(&self) -> bool {
        true
    }
    fn admit(&mut self, key: u64, now: u64) {
        if self.lists.slot(key).is_some() {
            return self.reference(key, now);
        }
        if let Some(i) = self.lists.alloc(key, 0) {
            // On a list before touch() moves it.
            self.lists.push_front(DEAD, i);
            if self.next_use.len() > i as usize {
                self.next_use[i as usize] = NEVER;
            }
            self.touch(i, now);
        }
    }
    #[inline]
    fn reference(&mut self, key: u64, now: u64) {
        if let Some(i) = self.lists.slot(key) {
            self.touch(i, now);
        }
    }
    fn victim(&mut self, _young: &mut dyn FnMut(u64) -> bool) -> Option<u64> {
        if let Some(i) = self.lists.back(DEAD) {
            return Some(self.evict(i));
        }
        while let Some(t) = self.times.max() {
            let i = self.owner[t];
            if i != NIL && self.next_use.get(i as usize) == Some(&(t as u64)) {
                return Some(self.evict(i));
            }
            self.times.remove(t); // stale (see touch)
        }
        // Only a page that lost its time to a misusing caller is left.
        let i = self.lists.back(LIVE)?;
        Some(self.evict(i))
    }
    fn remove(&mut self, key: u64) {
        if let Some(i) = self.lists.slot(key) {
            self.evict(i);
        }
    }
    fn len(&self) -> usize {
        self.lists.len()
    }
}

// ---------------------------------------------------------------------------
// Linux's active/inactive LRU.

const ACTIVE: u32 = 0;
const INACTIVE: u32 = 1;

pub use crate::vmscan::inactive_is_low;

/// A model of Linux's two-list LRU (mm/vmscan.c, 6.18, without MGLRU) as
/// a policy for one frame-limited process: the machine's global reclaim
/// (the `vmscan` module) runs the real lists; this one reproduces their
/// decisions for anonymous pages so they can be compared with the textbook
/// policies on the same reference string.
///
/// - A new page goes to the head of the inactive list (anonymous pages
///   start inactive since Linux 5.9, `folio_add_lru_vma`).
/// - Before a victim is chosen, while [`inactive_is_low`] the active
///   list's tail is moved to the inactive head (`shrink_active_list`): its
///   accessed bit is tested and cleared (`folio_referenced`), and since a
///   referenced page is kept active only if it is a mapped executable file
///   page, every anonymous page is deactivated; PG_referenced stays.
/// - The inactive list is scanned from its tail (`shrink_inactive_list`,
///   `folio_check_references`): a young page gets PG_referenced and is
///   activated (to the active head) if it already had it, else rotated to
///   the inactive head for another trip; a page that is not young is
///   evicted (its PG_referenced cleared with it). If the scan empties the
///   inactive list, it is refilled from the active list and goes on.
///
/// Simplified: one page at a time instead of batches of SWAP_CLUSTER_MAX,
/// no anon/file balance (`get_scan_count`), no swap cache, no refaults
/// (workingset), no MGLRU. A `young` that never answers false is met by
/// evicting the inactive tail after 4 turns over all pages.
#[derive(Clone, Debug)]
pub struct LinuxLru {
    lists: Lists,
}

impl LinuxLru {
    /// Empty lists.
    pub fn new() -> Self {
        LinuxLru {
            lists: Lists::new(2),
        }
    }

    /// Pages on the active list.
    pub fn active(&self) -> usize {
        self.lists.count(ACTIVE)
    }

    /// Pages on the inactive list.
    pub fn inactive(&self) -> usize {
        self.lists.count(INACTIVE)
    }

    /// `shrink_active_list` for one page: deactivates the active tail.
    fn deactivate_one(&mut self, young: &mut dyn FnMut(u64) -> bool) -> bool {
        let Some(i) = self.lists.back(ACTIVE) else {
            return false;
        };
        // folio_referenced: the A bit is cleared whatever the outcome.
        let _ = young(self.lists.node(i).key);
        self.lists.unlink(i);
        self.lists.push_front(INACTIVE, i);
        true
    }

    fn refill(&mut self, young: &mut dyn FnMut(u64) -> bool) {
        while inactive_is_low(self.inactive() as u64, self.active() as u64)
            && self.deactivate_one(young)
        {}
    }
}

impl Default for LinuxLru {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplacementPolicy for LinuxLru {
    fn name(&self) -> &'static str {
        "linux"
    }
    fn needs_every_reference(&self) -> bool {
        false
    }
    fn admit(&mut self, key: u64, _now: u64) {
        if self.lists.slot(key).is_some() {
            return;
        }
        if let Some(i) = self.lists.alloc(key, 0) {
            self.lists.push_front(INACTIVE, i);
        }
    }
    fn reference(&mut self, _key: u64, _now: u64) {}
    fn victim(&mut self, young: &mut dyn FnMut(u64) -> bool) -> Option<u64> {
        if self.lists.len() == 0 {
            return None;
        }
        self.refill(young);
        let limit = 4 * self.lists.len();
        let mut steps = 0;
        loop {
            let i = match self.lists.back(INACTIVE) {
                Some(i) => i,
                None => {
                    // Everything was activated: refill and go on.
                    self.deactivate_one(young);
                    self.refill(young);
                    self.lists.back(INACTIVE)?
                }
            };
            let key = self.lists.node(i).key;
            steps += 1;
            if steps <= limit && young(key) {
                let referenced = self.lists.node(i).aux != 0;
                self.lists.node_mut(i).aux = 1;
                self.lists.unlink(i);
                if referenced {
                    self.lists.push_front(ACTIVE, i);
                } else {
                    self.lists.push_front(INACTIVE, i);
                }
                continue;
            }
            self.lists.remove_key(key);
            return Some(key);
        }
    }
    fn remove(&mut self, key: u64) {
        self.lists.remove_key(key);
    }
    fn len(&self) -> usize {
        self.lists.len()
    }
}

// ---------------------------------------------------------------------------
// The simulator.

/// What a simulated run counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// References replayed.
    pub references: u64,
    /// References to a page that was not resident (cold misses included).
    pub faults: u64,
    /// Faults on a page that had been evicted before: swap-ins.
    pub swap_ins: u64,
    /// Pages evicted to make room: swap-outs (every evicted page is
    /// written out in this model; Linux skips a clean page whose swap copy
    /// is still valid).
    pub evictions: u64,
}

impl SimStats {
    /// Faults per reference, 0 for an empty string.
    pub fn miss_ratio(&self) -> f64 {
        if self.references == 0 {
            0.0
        } else {
            self.faults as f64 / self.references as f64
        }
    }
}

/// A reference string with its keys compacted to dense ids `0..distinct`
/// in order of first appearance, built once and simulated many times.
#[derive(Clone, Debug, Default)]
pub struct RefString {
    ids: Vec<u32>,
    keys: Vec<u64>,
}

impl RefString {
    /// Compacts `refs`. A string with 2^32 - 1 distinct keys or more is
    /// refused.
    pub fn new(refs: &[u64]) -> Result<Self, String> {
        let mut map = KeyMap::new();
        let mut keys = Vec::new();
        let mut ids = Vec::with_capacity(refs.len());
        for &k in refs {
            let id = match map.get(k) {
                Some(id) => id,
                None => {
                    let id = u32::try_from(keys.len())
                        .ok()
                        .filter(|&id| id != NIL)
                        .ok_or("more than 2^32 - 2 distinct pages in the reference string")?;
                    map.insert(k, id);
                    keys.push(k);
                    id
                }
            };
            ids.push(id);
        }
        Ok(RefString { ids, keys })
    }

    /// References in the string.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True for the empty string.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Distinct pages.
    pub fn distinct(&self) -> usize {
        self.keys.len()
    }

    /// Runs the string through `policy` with `frames` frames. The policy
    /// sees compacted ids as keys (so its tables are dense) and, for `opt`,
    /// each reference's index as `now`; `on_evict(key, index)` is told of
    /// each eviction with the original key and the index of the faulting
    /// reference. The machine is the textbook's: a software accessed bit
    /// set on every reference (the faulting one included), tested and
    /// cleared by `young`.
    pub fn simulate_with(
        &self,
        frames: usize,
        policy: &mut dyn ReplacementPolicy,
        on_evict: &mut dyn FnMut(u64, u64),
    ) -> Result<SimStats, String> {
        const RESIDENT: u8 = 1;
        const ACCESSED: u8 = 2;
        const EVICTED: u8 = 4;
        if frames == 0 {
            return Err("frames must be at least 1".into());
        }
        let every = policy.needs_every_reference();
        let mut state = vec![0u8; self.keys.len()];
        let mut stats = SimStats {
            references: self.ids.len() as u64,
            ..SimStats::default()
        };
        let mut resident = 0usize;
        for (now, &id) in self.ids.iter().enumerate() {
            let now = now as u64;
            let s = &mut state[id as usize];
            if *s & RESIDENT != 0 {
                *s |= ACCESSED;
                if every {
                    policy.reference(u64::from(id), now);
                }
                continue;
            }
            stats.faults += 1;
            stats.swap_ins += u64::from(*s & EVICTED != 0);
            if resident == frames {
                let v = policy.victim(&mut |k| match state.get_mut(k as usize) {
                    Some(s) if *s & RESIDENT != 0 => {
                        let young = *s & ACCESSED != 0;
                        *s &= !ACCESSED;
                        young
                    }
                    _ => false,
                });
                let v = match v {
                    Some(v) if state.get(v as usize).is_some_and(|s| s & RESIDENT != 0) => v,
                    other => {
                        return Err(format!(
                            "policy {} chose {} with {resident} pages resident",
                            policy.name(),
                            match other {
                                Some(v) => format!("page {v}, which is not resident"),
                                None => "no victim".into(),
                            }
                        ))
                    }
                };
                state[v as usize] = EVICTED;
                resident -= 1;
                stats.evictions += 1;
                on_evict(self.keys[v as usize], now);
            }
            state[id as usize] = RESIDENT | ACCESSED;
            resident += 1;
            policy.admit(u64::from(id), now);
        }
        Ok(stats)
    }
}

/// Runs the reference string `refs` through `policy` with `frames` frames
/// (see [`RefString::simulate_with`]).
pub fn simulate(
    refs: &[u64],
    frames: usize,
    policy: &mut dyn ReplacementPolicy,
) -> Result<SimStats, String> {
    RefString::new(refs)?.simulate_with(frames, policy, &mut |_, _| {})
}

/// A policy's miss-ratio curve: its name and `(frames, miss ratio)` points.
pub type Curve = (String, Vec<(usize, f64)>);

/// Miss-ratio curves: for each policy name, `(frames, faults / references)`
/// for each frame count, in the order given. Errors name an unknown policy
/// or a frame count of 0.
pub fn miss_ratio_curve(
    refs: &[u64],
    frames_list: &[usize],
    names: &[&str],
) -> Result<Vec<Curve>, String> {
    let rs = RefString::new(refs)?;
    let mut out = Vec::with_capacity(names.len());
    for &name in names {
        let mut curve = Vec::with_capacity(frames_list.len());
        for &frames in frames_list {
            let mut p = policy_by_name(name, Some(refs))?;
            let stats = rs.simulate_with(frames, p.as_mut(), &mut |_, _| {})?;
            curve.push((frames, stats.miss_ratio()));
        }
        out.push((String::from(name), curve));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cmp::Reverse;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    // -- Plain models: Vec-based, O(n), written to be obviously right. ----

    /// A policy as the models implement it; `acc` is the accessed bit of
    /// each resident page, which `victim` reads and clears.
    trait Model {
        fn admit(&mut self, k: u64, now: u64);
        fn reference(&mut self, _k: u64, _now: u64) {}
        fn victim(&mut self, acc: &mut BTreeMap<u64, bool>, now: u64) -> u64;
        fn remove(&mut self, k: u64);
    }

    fn take_young(acc: &mut BTreeMap<u64, bool>, k: u64) -> bool {
        std::mem::replace(acc.get_mut(&k).unwrap(), false)
    }

    #[derive(Default)]
    struct FifoModel(Vec<u64>);
    impl Model for FifoModel {
        fn admit(&mut self, k: u64, _: u64) {
            self.0.push(k);
        }
        fn victim(&mut self, _: &mut BTreeMap<u64, bool>, _: u64) -> u64 {
            self.0.remove(0)
        }
        fn remove(&mut self, k: u64) {
            self.0.retain(|&x| x != k);
        }
    }

    #[derive(Default)]
    struct LruModel(Vec<(u64, u64)>);
    impl Model for LruModel {
        fn admit(&mut self, k: u64, now: u64) {
            self.0.push((k, now));
        }
        fn reference(&mut self, k: u64, now: u64) {
            self.0.iter_mut().find(|e| e.0 == k).unwrap().1 = now;
        }
        fn victim(&mut self, _: &mut BTreeMap<u64, bool>, _: u64) -> u64 {
            let i = (0..self.0.len()).min_by_key(|&i| self.0[i].1).unwrap();
            self.0.remove(i).0
        }
        fn remove(&mut self, k: u64) {
            self.0.retain(|e| e.0 != k);
        }
    }

    /// Frames in a circle; `hand` indexes the next frame the hand looks at
    /// (taken modulo the length); a new page is inserted just before it.
    #[derive(Default)]
    struct RingModel {
        ring: Vec<(u64, u32)>,
        hand: usize,
        aging: bool,
    }
    impl Model for RingModel {
        fn admit(&mut self, k: u64, _: u64) {
            if !self.ring.is_empty() {
                self.hand %= self.ring.len() + 1;
            }
            self.ring.insert(self.hand, (k, PAGE_AGE_START));
            self.hand += 1;
        }
        fn victim(&mut self, acc: &mut BTreeMap<u64, bool>, _: u64) -> u64 {
            loop {
                self.hand %= self.ring.len();
                let (k, age) = self.ring[self.hand];
                let young = take_young(acc, k);
                if self.aging {
                    let age = if young { (age + 3).min(64) } else { age / 2 };
                    self.ring[self.hand].1 = age;
                    if age == 0 {
                        return self.ring.remove(self.hand).0;
                    }
                } else if !young {
                    return self.ring.remove(self.hand).0;
                }
                self.hand += 1;
            }
        }
        fn remove(&mut self, k: u64) {
            let i = self.ring.iter().position(|e| e.0 == k).unwrap();
            self.ring.remove(i);
            if i < self.hand {
                self.hand -= 1;
            }
        }
    }

    struct OptModel {
        refs: Vec<u64>,
        resident: Vec<(u64, u64)>,
    }
    impl Model for OptModel {
        fn admit(&mut self, k: u64, now: u64) {
            self.resident.push((k, now));
        }
        fn reference(&mut self, k: u64, now: u64) {
            self.resident.iter_mut().find(|e| e.0 == k).unwrap().1 = now;
        }
        fn victim(&mut self, _: &mut BTreeMap<u64, bool>, now: u64) -> u64 {
            let next_use = |k: u64| {
                (now as usize + 1..self.refs.len())
                    .find(|&j| self.refs[j] == k)
                    .map_or(u64::MAX, |j| j as u64)
            };
            let i = (0..self.resident.len())
                .max_by_key(|&i| {
                    let (k, last) = self.resident[i];
                    (next_use(k), Reverse(last))
                })
                .unwrap();
            self.resident.remove(i).0
        }
        fn remove(&mut self, k: u64) {
            self.resident.retain(|e| e.0 != k);
        }
    }

    /// Index 0 is a list's tail, the end is its head.
    #[derive(Default)]
    struct LinuxModel {
        active: Vec<u64>,
        inactive: Vec<u64>,
        referenced: BTreeSet<u64>,
    }
    impl LinuxModel {
        fn deactivate(&mut self, acc: &mut BTreeMap<u64, bool>) {
            let k = self.active.remove(0);
            take_young(acc, k);
            self.inactive.push(k);
        }
        fn refill(&mut self, acc: &mut BTreeMap<u64, bool>) {
            // Under 1 GiB the ratio is 1.
            while self.inactive.len() < self.active.len() {
                self.deactivate(acc);
            }
        }
    }
    impl Model for LinuxModel {
        fn admit(&mut self, k: u64, _: u64) {
            self.inactive.push(k);
        }
        fn victim(&mut self, acc: &mut BTreeMap<u64, bool>, _: u64) -> u64 {
            self.refill(acc);
            loop {
                if self.inactive.is_empty() {
                    self.deactivate(acc);
                    self.refill(acc);
                }
                let k = self.inactive.remove(0);
                if take_young(acc, k) {
                    if self.referenced.contains(&k) {
                        self.active.push(k);
                    } else {
                        self.referenced.insert(k);
                        self.inactive.push(k);
                    }
                    continue;
                }
                self.referenced.remove(&k);
                return k;
            }
        }
        fn remove(&mut self, k: u64) {
            self.active.retain(|&x| x != k);
            self.inactive.retain(|&x| x != k);
            self.referenced.remove(&k);
        }
    }

    fn model(name: &str, refs: &[u64]) -> Box<dyn Model> {
        match name {
            "fifo" => Box::new(FifoModel::default()),
            "lru" => Box::new(LruModel::default()),
            "clock" => Box::new(RingModel::default()),
            "age" => Box::new(RingModel {
                aging: true,
                ..RingModel::default()
            }),
            "opt" => Box::new(OptModel {
                refs: refs.to_vec(),
                resident: Vec::new(),
            }),
            "linux" => Box::new(LinuxModel::default()),
            _ => unreachable!(),
        }
    }

    /// What a model run counted: faults, swap-ins, and each eviction as
    /// (key, index of the faulting reference).
    #[derive(Debug, PartialEq)]
    struct Run {
        faults: u64,
        swap_ins: u64,
        victims: Vec<(u64, u64)>,
    }

    fn model_run(name: &str, refs: &[u64], frames: usize) -> Run {
        let mut m = model(name, refs);
        let every = matches!(name, "lru" | "opt");
        let mut acc: BTreeMap<u64, bool> = BTreeMap::new();
        let mut evicted = BTreeSet::new();
        let mut run = Run {
            faults: 0,
            swap_ins: 0,
            victims: Vec::new(),
        };
        for (now, &k) in refs.iter().enumerate() {
            let now = now as u64;
            if let Some(a) = acc.get_mut(&k) {
                *a = true;
                if every {
                    m.reference(k, now);
                }
                continue;
            }
            run.faults += 1;
            run.swap_ins += u64::from(evicted.contains(&k));
            if acc.len() == frames {
                let v = m.victim(&mut acc, now);
                acc.remove(&v);
                evicted.insert(v);
                run.victims.push((v, now));
            }
            acc.insert(k, true);
            m.admit(k, now);
        }
        run
    }

    fn policy_run(name: &str, refs: &[u64], frames: usize) -> Run {
        let mut p = policy_by_name(name, Some(refs)).unwrap();
        let mut victims = Vec::new();
        let s = RefString::new(refs)
            .unwrap()
            .simulate_with(frames, p.as_mut(), &mut |k, now| victims.push((k, now)))
            .unwrap();
        assert_eq!(s.references, refs.len() as u64);
        assert_eq!(s.evictions, victims.len() as u64);
        assert_eq!(
            p.len(),
            frames.min(RefString::new(refs).unwrap().distinct())
        );
        Run {
            faults: s.faults,
            swap_ins: s.swap_ins,
            victims,
        }
    }

    // -- Textbook answers. --------------------------------------------------

    fn faults(name: &str, refs: &[u64], frames: usize) -> u64 {
        let mut p = policy_by_name(name, Some(refs)).unwrap();
        simulate(refs, frames, p.as_mut()).unwrap().faults
    }

    /// Silberschatz, Galvin, Gagne, *Operating System Concepts* (10th ed.,
    /// section 10.4, figures 10.12, 10.14, 10.15): this string with 3
    /// frames takes 15 faults under FIFO, 9 under OPT, 12 under LRU.
    #[test]
    fn silberschatz_reference_string() {
        let refs = [7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2, 1, 2, 0, 1, 7, 0, 1];
        assert_eq!(faults("fifo", &refs, 3), 15);
        assert_eq!(faults("lru", &refs, 3), 12);
        assert_eq!(faults("opt", &refs, 3), 9);
        // The first 3 are cold misses for every policy.
        for name in POLICIES {
            assert!(faults(name, &refs, 3) >= 9, "{name} beats OPT");
        }
    }

    /// Belady's anomaly (Belady, Nelson, Shedler, "An anomaly in
    /// space-time characteristics of certain programs running in a paging
    /// machine", CACM 12(6), 1969; Silberschatz et al., figure 10.13): FIFO
    /// takes 9 faults with 3 frames and 10 with 4. LRU and OPT are stack
    /// algorithms and never fault more with more frames.
    #[test]
    fn beladys_anomaly() {
        let refs = [1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5];
        assert_eq!(faults("fifo", &refs, 3), 9);
        assert_eq!(faults("fifo", &refs, 4), 10);
        assert_eq!(faults("lru", &refs, 3), 10);
        assert_eq!(faults("lru", &refs, 4), 8);
        assert_eq!(faults("opt", &refs, 3), 7);
        assert_eq!(faults("opt", &refs, 4), 6);
    }

    /// Second chance on a string worked by hand: 3 frames, 1 2 3 fill
    /// (bits set), 4 clears all three and evicts 1, 2 is referenced (bit
    /// set), 5 passes 2 (clearing) and evicts 3, ...
    #[test]
    fn clock_by_hand() {
        let refs = [1, 2, 3, 4, 2, 5, 1];
        let run = policy_run("clock", &refs, 3);
        // 4 evicts 1 (all young: a full turn, then 1); 5: hand at 2
        // (cleared on the first turn, referenced since: young) -> skip,
        // 3 (clear) -> evict; 1: hand at 4 (young from its fault) -> skip,
        // 2 -> not young -> evict.
        assert_eq!(run.victims, [(1, 3), (3, 5), (2, 6)]);
        assert_eq!(run.faults, 6);
        assert_eq!(run.swap_ins, 1);
    }

    /// Age by hand: fresh pages start at 2; a victim search over pages
    /// referenced once (since their fault) raises them to 5, then halves
    /// them 5 -> 2 -> 1 -> 0: the first of them goes after three more turns.
    #[test]
    fn age_by_hand() {
        let mut p = Age::new();
        for k in 0..3 {
            p.admit(k, k);
        }
        let mut young: BTreeMap<u64, bool> = (0..3).map(|k| (k, true)).collect();
        let mut calls = 0;
        let v = p.victim(&mut |k| {
            calls += 1;
            std::mem::replace(young.get_mut(&k).unwrap(), false)
        });
        assert_eq!(v, Some(0));
        // Turn 1: 3 young (2 -> 5); turns 2, 3: 5 -> 2 -> 1; turn 4: page 0
        // 1 -> 0, evicted at the first look.
        assert_eq!(calls, 3 + 3 + 3 + 1);
        assert_eq!(p.len(), 2);
    }

    /// The `linux` model: a page referenced once more after its fault is
    /// rotated with PG_referenced, a third time activated; unreferenced
    /// pages go first.
    #[test]
    fn linux_second_chance_then_activation() {
        let mut p = LinuxLru::new();
        for k in 0..4 {
            p.admit(k, k);
        }
        assert_eq!((p.active(), p.inactive()), (0, 4));
        // Inactive, tail first: 0 1 2 3. Only 0 is young: it gets
        // PG_referenced and rotates to the head; 1 goes.
        let mut young = BTreeSet::from([0u64]);
        assert_eq!(p.victim(&mut |k| young.remove(&k)), Some(1));
        // Inactive: 2 3 0. 2 is not young.
        assert_eq!(p.victim(&mut |_| false), Some(2));
        // Inactive: 3 0, both young: 3 is rotated with PG_referenced, 0
        // (PG_referenced already) is activated; then 3, cleared, goes.
        let mut young = BTreeSet::from([0u64, 3]);
        assert_eq!(p.victim(&mut |k| young.remove(&k)), Some(3));
        assert_eq!((p.active(), p.inactive()), (1, 0));
        // Inactive empty, active 1: low, so 0 is deactivated, then evicted.
        assert_eq!(p.victim(&mut |_| false), Some(0));
        assert_eq!(p.victim(&mut |_| false), None);
    }

    /// inactive_is_low's ratio: 1 below 1 GiB, int_sqrt(10 * gb) above
    /// (mm/vmscan.c): 3 at 1 GiB, 10 at 10 GiB.
    #[test]
    fn inactive_ratio() {
        assert!(inactive_is_low(1, 2));
        assert!(!inactive_is_low(2, 2));
        let gib = 1u64 << 18; // pages
        assert!(!inactive_is_low(gib / 4, 3 * gib / 4));
        assert!(inactive_is_low(gib / 4 - 1, 3 * gib / 4 + 1));
        assert!(!inactive_is_low(gib, 10 * gib - 1));
        // 11 GiB - 10 pages: still 10 GiB by the shift, ratio 10.
        assert!(inactive_is_low(gib - 1, 10 * gib - 9));
    }

    #[test]
    fn chooser_errors_name_the_problem() {
        let err = |n: &str, f: Option<&[u64]>| policy_by_name(n, f).err().unwrap();
        assert_eq!(
            err("lfu", None),
            "unknown replacement policy \"lfu\": expected one of fifo, lru, clock, age, opt, linux"
        );
        assert!(err("opt", None).contains("needs the whole future reference string"));
        for name in POLICIES {
            let p = policy_by_name(name, Some(&[])).unwrap();
            assert_eq!(p.name(), name);
            assert_eq!(p.needs_every_reference(), matches!(name, "lru" | "opt"));
        }
    }

    #[test]
    fn simulate_refuses_zero_frames_and_counts_an_empty_string() {
        let mut p = Lru::new();
        assert_eq!(
            simulate(&[1, 2], 0, &mut p).unwrap_err(),
            "frames must be at least 1"
        );
        assert_eq!(simulate(&[], 4, &mut p).unwrap(), SimStats::default());
        assert_eq!(SimStats::default().miss_ratio(), 0.0);
    }

    /// A policy that returns a page that is not resident is an error of
    /// the run, not a panic.
    #[test]
    fn a_bad_victim_is_an_error() {
        struct Liar;
        impl ReplacementPolicy for Liar {
            fn name(&self) -> &'static str {
                "liar"
            }
            fn needs_every_reference(&self) -> bool {
                false
            }
            fn admit(&mut self, _: u64, _: u64) {}
            fn reference(&mut self, _: u64, _: u64) {}
            fn victim(&mut self, _: &mut dyn FnMut(u64) -> bool) -> Option<u64> {
                Some(99)
            }
            fn remove(&mut self, _: u64) {}
            fn len(&self) -> usize {
                0
            }
        }
        assert_eq!(
            simulate(&[1, 2], 1, &mut Liar).unwrap_err(),
            "policy liar chose page 99, which is not resident with 1 pages resident"
        );
    }

    /// A `young` that never clears cannot make a policy loop forever.
    #[test]
    fn a_stuck_accessed_bit_still_yields_a_victim() {
        for name in POLICIES {
            let mut p = policy_by_name(name, Some(&[])).unwrap();
            for k in 0..5 {
                p.admit(k, k);
            }
            for _ in 0..5 {
                assert!(p.victim(&mut |_| true).is_some(), "{name}");
            }
            assert_eq!(p.victim(&mut |_| true), None, "{name}");
        }
    }

    /// Misuse is harmless: a double admit, a reference to or removal of a
    /// page that is not resident.
    #[test]
    fn misuse_is_tolerated() {
        for name in POLICIES {
            let mut p = policy_by_name(name, Some(&[5, 5, 6])).unwrap();
            p.admit(5, 0);
            p.admit(5, 1);
            p.reference(7, 2);
            p.remove(8);
            assert_eq!(p.len(), 1, "{name}");
            p.remove(5);
            assert!(p.is_empty(), "{name}");
            assert_eq!(p.victim(&mut |_| false), None, "{name}");
        }
    }

    #[test]
    fn miss_ratio_curve_per_policy() {
        let refs = [1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5];
        let c = miss_ratio_curve(&refs, &[3, 4], &["fifo", "opt"]).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].0, "fifo");
        assert_eq!(c[0].1, [(3, 9.0 / 12.0), (4, 10.0 / 12.0)]);
        assert_eq!(c[1].1, [(3, 7.0 / 12.0), (4, 6.0 / 12.0)]);
        assert!(miss_ratio_curve(&refs, &[0], &["fifo"]).is_err());
        assert!(miss_ratio_curve(&refs, &[1], &["nope"]).is_err());
    }

    // -- Against the models. -------------------------------------------------

    /// Drives `name` and its model through references and removals with
    /// keys `key(k)`, comparing every victim.
    fn drive(name: &str, ops: &[(bool, u64)], frames: usize, key: fn(u64) -> u64) {
        let refs: Vec<u64> = ops.iter().map(|&(_, k)| key(k)).collect();
        let mut p = policy_by_name(name, Some(&refs)).unwrap();
        let mut m = model(name, &refs);
        let every = p.needs_every_reference();
        let mut acc: BTreeMap<u64, bool> = BTreeMap::new();
        for (now, &(remove, k)) in ops.iter().enumerate() {
            let (k, now) = (key(k), now as u64);
            if remove {
                if acc.remove(&k).is_some() {
                    p.remove(k);
                    m.remove(k);
                }
                continue;
            }
            if let Some(a) = acc.get_mut(&k) {
                *a = true;
                if every {
                    p.reference(k, now);
                    m.reference(k, now);
                }
                continue;
            }
            if acc.len() == frames {
                let mut acc2 = acc.clone();
                let want = m.victim(&mut acc2, now);
                let got = p.victim(&mut |v| take_young(&mut acc, v));
                assert_eq!(got, Some(want), "{name} at op {now}");
                assert_eq!(acc, acc2, "{name}: accessed bits at op {now}");
                acc.remove(&want);
            }
            acc.insert(k, true);
            p.admit(k, now);
            m.admit(k, now);
            assert_eq!(p.len(), acc.len());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn every_policy_matches_its_model(
            refs in proptest::collection::vec(0u64..12, 0..300),
            frames in 1usize..8,
        ) {
            for name in POLICIES {
                prop_assert_eq!(
                    policy_run(name, &refs, frames),
                    model_run(name, &refs, frames),
                    "{}", name
                );
            }
        }

        #[test]
        fn policies_match_models_with_removals_and_large_keys(
            ops in proptest::collection::vec((proptest::bool::weighted(0.1), 0u64..16), 0..300),
            frames in 1usize..8,
            large in any::<bool>(),
        ) {
            let key: fn(u64) -> u64 = if large { |k| (1 << 40) + k * 4096 } else { |k| k };
            for name in POLICIES {
                drive(name, &ops, frames, key);
            }
        }

        /// LRU and OPT are stack algorithms: more frames, never more
        /// faults; OPT never faults more than any other policy.
        #[test]
        fn opt_is_a_lower_bound(
            refs in proptest::collection::vec(0u64..10, 0..200),
            frames in 1usize..6,
        ) {
            let opt = faults("opt", &refs, frames);
            for name in POLICIES {
                prop_assert!(faults(name, &refs, frames) >= opt, "{}", name);
            }
            prop_assert!(faults("lru", &refs, frames + 1) <= faults("lru", &refs, frames));
            prop_assert!(faults("opt", &refs, frames + 1) <= opt);
        }

        #[test]
        fn time_set_matches_a_btree_set(
            n in 0usize..10_000,
            ops in proptest::collection::vec((any::<bool>(), 0usize..10_000), 0..400),
        ) {
            let mut t = TimeSet::new(n);
            let mut model = BTreeSet::new();
            for (insert, x) in ops {
                let x = if n == 0 { x } else { x % (n + 1) }; // n itself is out of range
                if insert {
                    t.insert(x);
                    if x < n {
                        model.insert(x);
                    }
                } else {
                    t.remove(x);
                    model.remove(&x);
                }
                prop_assert_eq!(t.max(), model.last().copied());
            }
        }

        #[test]
        fn key_map_matches_a_btree_map(
            ops in proptest::collection::vec((0u8..3, 0u64..64, 0u32..1000), 0..400),
        ) {
            // Small keys, and large ones that share low bits (long probe
            // runs in the open-addressing table).
            let mut m = KeyMap::new();
            let mut model = BTreeMap::new();
            for (op, k, v) in ops {
                let k = if k < 16 { k } else { (k << 36) | (1 << 20) };
                match op {
                    0 => prop_assert_eq!(m.insert(k, v), model.insert(k, v)),
                    1 => prop_assert_eq!(m.remove(k), model.remove(&k)),
                    _ => prop_assert_eq!(m.get(k), model.get(&k).copied()),
                }
                prop_assert_eq!(m.len(), model.len());
            }
            for (k, v) in model {
                prop_assert_eq!(m.get(k), Some(v));
            }
        }
    }

    /// Same input, same bytes: two runs report the same victims.
    #[test]
    fn deterministic() {
        let refs: Vec<u64> = (0..2000u64)
            .map(|i| (i * 7919) % 97 % (i % 13 + 5))
            .collect();
        for name in POLICIES {
            assert_eq!(policy_run(name, &refs, 6), policy_run(name, &refs, 6));
        }
    }
}
