//! Swap devices and the swap map: the on-disk swap header, the table of
//! swap devices with their priorities, the per-slot reference counts and the
//! cluster allocator of swap slots. Mirrors Linux 6.18 `mm/swapfile.c`
//! (with `include/linux/swap.h` for the encodings and the header layout).
//!
//! # Model and simplifications
//!
//! - One lock (`SwapTable::inner`) stands for Linux's `swap_lock`,
//!   `swap_avail_lock`, `si->lock`, the cluster locks and the per-CPU
//!   `percpu_swap_cluster` local lock. Every operation is atomic with
//!   respect to the others; device I/O runs outside the lock.
//! - Slot allocation is 6.18's: clusters of [`SWAPFILE_CLUSTER`] slots with
//!   free / nonfull / frag / full lists and a per-CPU "next slot" in the
//!   cluster the CPU last allocated from (`swap_alloc_fast`), falling back to
//!   `cluster_alloc_swap_entry` over the priority-ordered available devices
//!   (`swap_alloc_slow`). 6.18 has no other allocator: the old next-fit
//!   `scan_swap_map` (Gorman, "Understanding the Linux Virtual Memory
//!   Manager", ch. 11) was removed in 6.14. It is kept here as an opt-in
//!   policy, [`SwapAllocPolicy::NextFit`], for teaching and comparison.
//! - Devices are modelled as non-rotational (`SWP_SOLIDSTATE`, so the
//!   per-CPU cluster is used; a rotational device shares one
//!   `global_cluster` among all CPUs instead), without discard, on no NUMA
//!   node
//!   (`swap_node` = NUMA_NO_NODE, so the avail list is ordered by priority
//!   alone; on a real NUMA machine a default-priority device on the CPU's
//!   node is boosted on that node's list).
//! - Only order-0 slots are allocated: swap files cannot hold mTHP entries
//!   in 6.18 (`cluster_alloc_swap_entry` refuses order > 0 without
//!   SWP_BLKDEV), so the per-order lists exist for order 0 only.
//! - Slots that hold only SWAP_HAS_CACHE are never reclaimed by the
//!   allocator (Linux reclaims them only when swap is more than half full,
//!   `vm_swap_full`); the swap cache lives in another module.
//! - Counts above SWAP_MAP_MAX continue in continuation "digits" kept in a
//!   side table (`BTreeMap<offset, Vec<u8>>`), where Linux keeps them in
//!   continuation pages chained from the swap_map page. The digits have
//!   Linux's radix (SWAP_MAP_MAX + 1 for the swap_map byte, SWAP_CONT_MAX + 1
//!   for each continuation digit), so the swap_map byte is exactly Linux's.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::fmt::Write as _;

use crate::arch::pte::SwapEntry;
use crate::errno::Errno;

/// Bytes in a swap slot (one page).
pub const SWAP_PAGE_SIZE: usize = 4096;

/// Slots in a swap cluster: HPAGE_PMD_NR = 512 with CONFIG_THP_SWAP, which
/// x86-64 enables (linux-facts §6.9; mm/swap.h). 256 without THP_SWAP.
pub const SWAPFILE_CLUSTER: u64 = 512;

/// Swap types Linux can have at once on our reference configuration:
/// `1 << MAX_SWAPFILES_SHIFT` (32) less the types taken by migration
/// entries (3, CONFIG_MIGRATION), PTE markers (1), device-private entries
/// (0: CONFIG_DEVICE_PRIVATE unset) and hwpoison entries (0:
/// CONFIG_MEMORY_FAILURE unset), include/linux/swap.h. Recorded on our
/// 6.18 machine: the 29th `swapon` fails with EPERM.
pub const MAX_SWAPFILES: usize = 32 - 3 - 1;

/// swap_map: the slot is free.
pub const SWAP_MAP_FREE: u8 = 0;
/// swap_map: largest count held in the map byte itself.
pub const SWAP_MAP_MAX: u8 = 0x3e;
/// swap_map: the slot is unusable (the header, a bad block).
pub const SWAP_MAP_BAD: u8 = 0x3f;
/// swap_map flag: the slot's page is in the swap cache.
pub const SWAP_HAS_CACHE: u8 = 0x40;
/// swap_map flag: the count goes on in continuation digits.
pub const COUNT_CONTINUED: u8 = 0x80;
/// Largest value of one continuation digit.
pub const SWAP_CONT_MAX: u8 = 0x7f;

/// Most bad pages a version-1 header can list: the `badpages[]` array runs
/// from byte 1536 up to the magic at byte 4086, 4-byte entries.
pub const MAX_SWAP_BADPAGES: u32 = ((SWAP_PAGE_SIZE - 10 - 1536) / 4) as u32;

/// The smallest swap area `mkswap` (util-linux) agrees to make, in pages.
pub const MKSWAP_MIN_PAGES: u64 = 10;

const HDR_VERSION: usize = 1024;
const HDR_LAST_PAGE: usize = 1028;
const HDR_NR_BADPAGES: usize = 1032;
const HDR_UUID: usize = 1036;
const HDR_VOLUME: usize = 1052;
const HDR_BADPAGES: usize = 1536;
const HDR_MAGIC: usize = SWAP_PAGE_SIZE - 10;

/// Block I/O to a swap device. `slot` is the page offset in the device.
/// This is all the swap layer knows of the storage behind a device.
pub trait SwapIo: Send + Sync {
    /// Reads slot `slot` into `buf` (4096 bytes).
    fn read_page(&self, slot: u64, buf: &mut [u8]) -> Result<(), Errno>;
    /// Writes `buf` (4096 bytes) to slot `slot`.
    fn write_page(&self, slot: u64, buf: &[u8]) -> Result<(), Errno>;
}

// ---------------------------------------------------------------------------
// The on-disk header (`union swap_header`, include/linux/swap.h)
// ---------------------------------------------------------------------------

/// Why a swap header was refused. Linux's swapon returns EINVAL for all of
/// them (`read_swap_header` returns 0 pages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SwapHeaderError {
    /// Fewer than 4096 bytes were given for page 0.
    Truncated(usize),
    /// No "SWAPSPACE2" in the last 10 bytes of page 0.
    NoSignature,
    /// "SWAP-SPACE": the version-0 bitmap format, unsupported since 2.5.
    OldVersion0,
    /// The `version` field is neither 1 nor byte-swapped 1.
    UnsupportedVersion(u32),
    /// `last_page` is 0: the area has no slot besides the header.
    EmptySwapFile,
    /// `nr_badpages` exceeds [`MAX_SWAP_BADPAGES`].
    TooManyBadPages(u32),
    /// A listed bad page is 0 (the header) or beyond `last_page`.
    BadPageOutOfRange {
        /// The listed page.
        page: u32,
        /// The header's last_page.
        last_page: u32,
    },
    /// The header claims more pages than the file or device holds.
    ShorterThanSignature {
        /// Pages the header describes (last_page + 1).
        header_pages: u64,
        /// Whole pages in the file.
        file_pages: u64,
    },
    /// A regular file lists bad pages; Linux refuses them outside block
    /// devices.
    BadPagesInFile,
    /// `mkswap` refuses an area smaller than [`MKSWAP_MIN_PAGES`].
    TooSmall(u64),
}

impl fmt::Display for SwapHeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated(n) => write!(f, "swap header truncated: {n} of 4096 bytes"),
            Self::NoSignature => write!(f, "unable to find swap-space signature"),
            Self::OldVersion0 => {
                write!(f, "old swap-space format (version 0, SWAP-SPACE) is not supported")
            }
            Self::UnsupportedVersion(v) => write!(f, "unable to handle swap header version {v}"),
            Self::EmptySwapFile => write!(f, "empty swap-file (last_page is 0)"),
            Self::TooManyBadPages(n) => {
                write!(f, "{n} bad pages listed, at most {MAX_SWAP_BADPAGES} fit")
            }
            Self::BadPageOutOfRange { page, last_page } => write!(
                f,
                "bad slot offset is out of border: {page} (last_page: {last_page})"
            ),
            Self::ShorterThanSignature {
                header_pages,
                file_pages,
            } => write!(
                f,
                "swap area shorter than signature indicates ({file_pages} pages, header says {header_pages})"
            ),
            Self::BadPagesInFile => write!(f, "a swap file cannot list bad pages"),
            Self::TooSmall(p) => write!(
                f,
                "swap area needs to be at least {} KiB ({p} pages given)",
                MKSWAP_MIN_PAGES * 4
            ),
        }
    }
}

/// A parsed version-1 swap header (`swap_header.info`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwapHeader {
    /// Always 1 after parsing.
    pub version: u32,
    /// Last usable page of the area; the area is `last_page + 1` pages.
    pub last_page: u32,
    /// Bad pages (slots never used), as listed.
    pub badpages: Vec<u32>,
    /// `sws_uuid`.
    pub uuid: [u8; 16],
    /// `sws_volume`: the label, NUL padded.
    pub volume: [u8; 16],
    /// The header was written in the other byte order; Linux accepts it
    /// by swapping the fields (its "swap partition endianness hack").
    pub byte_swapped: bool,
}

fn le32(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

impl SwapHeader {
    /// Parses page 0 of a swap area the way Linux's `read_swap_header`
    /// does, with the checks that need nothing but the page.
    pub fn parse(page0: &[u8]) -> Result<SwapHeader, SwapHeaderError> {
        if page0.len() < SWAP_PAGE_SIZE {
            return Err(SwapHeaderError::Truncated(page0.len()));
        }
        let magic = &page0[HDR_MAGIC..SWAP_PAGE_SIZE];
        if magic != b"SWAPSPACE2" {
            if magic == b"SWAP-SPACE" {
                return Err(SwapHeaderError::OldVersion0);
            }
            return Err(SwapHeaderError::NoSignature);
        }
        let mut version = le32(page0, HDR_VERSION);
        let mut last_page = le32(page0, HDR_LAST_PAGE);
        let mut nr_badpages = le32(page0, HDR_NR_BADPAGES);
        let byte_swapped = version != 1 && version.swap_bytes() == 1;
        if byte_swapped {
            version = version.swap_bytes();
            last_page = last_page.swap_bytes();
            nr_badpages = nr_badpages.swap_bytes();
            if nr_badpages > MAX_SWAP_BADPAGES {
                return Err(SwapHeaderError::TooManyBadPages(nr_badpages));
            }
        }
        if version != 1 {
            return Err(SwapHeaderError::UnsupportedVersion(version));
        }
        if last_page == 0 {
            return Err(SwapHeaderError::EmptySwapFile);
        }
        if nr_badpages > MAX_SWAP_BADPAGES {
            return Err(SwapHeaderError::TooManyBadPages(nr_badpages));
        }
        let mut badpages = Vec::with_capacity(nr_badpages as usize);
        for i in 0..nr_badpages as usize {
            let mut p = le32(page0, HDR_BADPAGES + 4 * i);
            if byte_swapped {
                p = p.swap_bytes();
            }
            if p == 0 || p > last_page {
                return Err(SwapHeaderError::BadPageOutOfRange { page: p, last_page });
            }
            badpages.push(p);
        }
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&page0[HDR_UUID..HDR_UUID + 16]);
        let mut volume = [0u8; 16];
        volume.copy_from_slice(&page0[HDR_VOLUME..HDR_VOLUME + 16]);
        Ok(SwapHeader {
            version,
            last_page,
            badpages,
            uuid,
            volume,
            byte_swapped,
        })
    }

    /// Slots of the area, header included (`maxpages`): `last_page + 1`,
    /// kept within an `unsigned int` as Linux's `si->max` is.
    pub fn max_pages(&self) -> u64 {
        (u64::from(self.last_page) + 1).min(u64::from(u32::MAX))
    }

    /// The checks Linux makes against the file: the header may not claim
    /// more pages than `file_bytes` holds (0 = unknown size, not checked),
    /// and a regular file may list no bad pages. Returns `maxpages`.
    pub fn check_size(&self, file_bytes: u64, kind: SwapKind) -> Result<u64, SwapHeaderError> {
        let maxpages = self.max_pages();
        let file_pages = file_bytes / SWAP_PAGE_SIZE as u64;
        if file_pages != 0 && maxpages > file_pages {
            return Err(SwapHeaderError::ShorterThanSignature {
                header_pages: maxpages,
                file_pages,
            });
        }
        if !self.badpages.is_empty() && kind == SwapKind::File {
            return Err(SwapHeaderError::BadPagesInFile);
        }
        Ok(maxpages)
    }

    /// The label, up to its first NUL.
    pub fn label(&self) -> &[u8] {
        let end = self.volume.iter().position(|&b| b == 0).unwrap_or(16);
        &self.volume[..end]
    }

    /// Page 0 of a new swap area of `pages` pages, byte for byte what
    /// util-linux `mkswap -U uuid -L label` writes: zeroed boot bits,
    /// version 1, `last_page = pages - 1` (areas above 2^32 - 1 pages are
    /// truncated to that, as mkswap does), no bad pages, the uuid, the label
    /// cut to 15 bytes and NUL terminated, and the "SWAPSPACE2" magic.
    pub fn write(
        pages: u64,
        uuid: [u8; 16],
        label: &str,
    ) -> Result<[u8; SWAP_PAGE_SIZE], SwapHeaderError> {
        if pages < MKSWAP_MIN_PAGES {
            return Err(SwapHeaderError::TooSmall(pages));
        }
        let pages = pages.min(u64::from(u32::MAX));
        let mut p = [0u8; SWAP_PAGE_SIZE];
        p[HDR_VERSION..HDR_VERSION + 4].copy_from_slice(&1u32.to_le_bytes());
        p[HDR_LAST_PAGE..HDR_LAST_PAGE + 4].copy_from_slice(&((pages - 1) as u32).to_le_bytes());
        p[HDR_UUID..HDR_UUID + 16].copy_from_slice(&uuid);
        let l = label.as_bytes();
        let n = l.len().min(15);
        p[HDR_VOLUME..HDR_VOLUME + n].copy_from_slice(&l[..n]);
        p[HDR_MAGIC..].copy_from_slice(b"SWAPSPACE2");
        Ok(p)
    }
}

// ---------------------------------------------------------------------------
// Devices
// ---------------------------------------------------------------------------

/// What backs a swap device, as /proc/swaps names it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SwapKind {
    /// A regular file.
    File,
    /// A block device (may list bad pages).
    Partition,
}

impl SwapKind {
    /// The Type column of /proc/swaps, with the tab `swap_type_str` adds to
    /// "file" so the columns line up.
    fn proc_str(self) -> &'static str {
        match self {
            SwapKind::File => "file\t",
            SwapKind::Partition => "partition",
        }
    }
}

/// How slots are chosen inside a device.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum SwapAllocPolicy {
    /// Linux 6.18: per-CPU clusters and cluster lists.
    #[default]
    Cluster,
    /// The textbook next-fit scan (`scan_swap_map` of Linux 2.4/2.6 as
    /// Gorman describes it): from the slot after the last one handed out to
    /// the end, then from the start. No per-CPU state.
    NextFit,
}

/// A device as `swapon` sees it (for /proc/swaps and the tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwapDeviceInfo {
    /// Swap type (index in the table).
    pub ty: u8,
    /// The path given to swapon.
    pub name: String,
    /// File or partition.
    pub kind: SwapKind,
    /// Priority (negative when chosen by the kernel).
    pub prio: i32,
    /// Usable slots (`si->pages`: header and bad slots excluded).
    pub pages: u64,
    /// Slots in use (`si->inuse_pages`).
    pub inuse: u64,
    /// Slots of the area, header included (`si->max`).
    pub max: u64,
    /// Still taking allocations (SWP_WRITEOK): false once swapoff began.
    pub writeok: bool,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum ClusterFlag {
    /// Isolated: on no list.
    None,
    Free,
    Nonfull,
    Frag,
    Full,
}

const NIL: u32 = u32::MAX;

#[derive(Copy, Clone, Debug)]
struct Cluster {
    /// Slots taken: allocated, bad, header, or past the end of the area.
    count: u32,
    flag: ClusterFlag,
    prev: u32,
    next: u32,
}

#[derive(Copy, Clone, Debug)]
struct ClusterList {
    head: u32,
    tail: u32,
}

impl ClusterList {
    const EMPTY: ClusterList = ClusterList {
        head: NIL,
        tail: NIL,
    };
}

/// `struct swap_info_struct`, with its swap map and cluster info.
struct SwapInfo {
    name: String,
    kind: SwapKind,
    io: Arc<dyn SwapIo>,
    prio: i32,
    writeok: bool,
    max: u64,
    pages: u64,
    inuse: u64,
    /// On the avail list (not full, WRITEOK).
    on_avail: bool,
    map: Vec<u8>,
    /// Continuation digits of slots whose count passed SWAP_MAP_MAX.
    cont: BTreeMap<u64, Vec<u8>>,
    clusters: Vec<Cluster>,
    free_clusters: ClusterList,
    nonfull_clusters: ClusterList,
    frag_clusters: ClusterList,
    full_clusters: ClusterList,
    /// NextFit policy: where the next scan starts.
    next_fit: u64,
}

impl SwapInfo {
    fn list_mut(&mut self, f: ClusterFlag) -> Option<&mut ClusterList> {
        match f {
            ClusterFlag::None => None,
            ClusterFlag::Free => Some(&mut self.free_clusters),
            ClusterFlag::Nonfull => Some(&mut self.nonfull_clusters),
            ClusterFlag::Frag => Some(&mut self.frag_clusters),
            ClusterFlag::Full => Some(&mut self.full_clusters),
        }
    }

    fn unlink(&mut self, idx: u32) {
        let c = self.clusters[idx as usize];
        if c.flag == ClusterFlag::None {
            return;
        }
        if c.prev != NIL {
            self.clusters[c.prev as usize].next = c.next;
        }
        if c.next != NIL {
            self.clusters[c.next as usize].prev = c.prev;
        }
        if let Some(list) = self.list_mut(c.flag) {
            if list.head == idx {
                list.head = c.next;
            }
            if list.tail == idx {
                list.tail = c.prev;
            }
        }
        let c = &mut self.clusters[idx as usize];
        c.prev = NIL;
        c.next = NIL;
        c.flag = ClusterFlag::None;
    }

    /// `move_cluster`: to the tail of the list for `flag`.
    fn move_cluster(&mut self, idx: u32, flag: ClusterFlag) {
        self.unlink(idx);
        self.clusters[idx as usize].flag = flag;
        let Some(list) = self.list_mut(flag) else {
            return;
        };
        let old_tail = list.tail;
        list.tail = idx;
        if old_tail == NIL {
            list.head = idx;
        }
        if old_tail != NIL {
            self.clusters[old_tail as usize].next = idx;
        }
        self.clusters[idx as usize].prev = old_tail;
    }

    /// `isolate_lock_cluster`: takes the first cluster off a list.
    fn isolate(&mut self, flag: ClusterFlag) -> Option<u32> {
        let head = self.list_mut(flag)?.head;
        if head == NIL {
            return None;
        }
        self.unlink(head);
        Some(head)
    }

    /// `relocate_cluster`: puts a cluster on the list its count calls for.
    fn relocate(&mut self, idx: u32) {
        let c = self.clusters[idx as usize];
        let want = if c.count == 0 {
            ClusterFlag::Free
        } else if u64::from(c.count) < SWAPFILE_CLUSTER {
            ClusterFlag::Frag
        } else {
            ClusterFlag::Full
        };
        if c.flag != want {
            self.move_cluster(idx, want);
        }
    }

    fn cluster_usable(&self, idx: u32) -> bool {
        !matches!(self.clusters[idx as usize].flag, ClusterFlag::Full)
    }

    /// `alloc_swap_scan_cluster`: the first free slot at or after `from` in
    /// cluster `idx`. Returns the slot found and the CPU's next offset.
    fn scan_cluster(&mut self, idx: u32, from: u64) -> (Option<u64>, u64) {
        let start = u64::from(idx) * SWAPFILE_CLUSTER;
        let end = (start + SWAPFILE_CLUSTER).min(self.max);
        let mut found = None;
        let mut next = 0;
        if u64::from(self.clusters[idx as usize].count) < SWAPFILE_CLUSTER {
            for off in from.max(start)..end {
                if self.map[off as usize] == SWAP_MAP_FREE {
                    self.map[off as usize] = SWAP_HAS_CACHE;
                    self.clusters[idx as usize].count += 1;
                    found = Some(off);
                    if u64::from(self.clusters[idx as usize].count) < SWAPFILE_CLUSTER
                        && off + 1 < end
                    {
                        next = off + 1;
                    }
                    break;
                }
            }
        }
        self.relocate(idx);
        (found, next)
    }

    /// `cluster_alloc_swap_entry` for order 0 on a device without discard:
    /// the nonfull clusters, then one free cluster, then one frag cluster.
    fn cluster_alloc(&mut self) -> (Option<u64>, u64) {
        while let Some(ci) = self.isolate(ClusterFlag::Nonfull) {
            let r = self.scan_cluster(ci, 0);
            if r.0.is_some() {
                return r;
            }
        }
        if let Some(ci) = self.isolate(ClusterFlag::Free) {
            let r = self.scan_cluster(ci, 0);
            if r.0.is_some() {
                return r;
            }
        }
        if let Some(ci) = self.isolate(ClusterFlag::Frag) {
            let r = self.scan_cluster(ci, 0);
            if r.0.is_some() {
                return r;
            }
        }
        (None, 0)
    }

    /// The textbook next-fit scan.
    fn next_fit_alloc(&mut self) -> Option<u64> {
        let n = self.max;
        let start = self.next_fit.clamp(1, n.max(2) - 1);
        for i in 0..n.saturating_sub(1) {
            let off = 1 + (start - 1 + i) % (n - 1);
            if self.map[off as usize] == SWAP_MAP_FREE {
                self.map[off as usize] = SWAP_HAS_CACHE;
                let ci = (off / SWAPFILE_CLUSTER) as u32;
                self.clusters[ci as usize].count += 1;
                self.relocate(ci);
                self.next_fit = off + 1;
                return Some(off);
            }
        }
        None
    }

    /// Total pte references of a slot (map byte plus continuation digits).
    fn count_of(&self, off: u64) -> u64 {
        let b = self.map[off as usize];
        if b == SWAP_MAP_BAD {
            return 0;
        }
        let low = u64::from(b & !(SWAP_HAS_CACHE | COUNT_CONTINUED));
        let mut total = low;
        if b & COUNT_CONTINUED != 0 {
            let mut unit = u64::from(SWAP_MAP_MAX) + 1;
            if let Some(d) = self.cont.get(&off) {
                for &digit in d {
                    total = total.saturating_add(unit.saturating_mul(u64::from(digit)));
                    unit = unit.saturating_mul(u64::from(SWAP_CONT_MAX) + 1);
                }
            }
        }
        total
    }

    /// Adds one pte reference (`__swap_duplicate` with usage 1, with the
    /// continuation carry of `swap_count_continued`).
    fn inc_count(&mut self, off: u64) -> Result<(), Errno> {
        let b = self.map[off as usize];
        let cache = b & SWAP_HAS_CACHE;
        let cont = b & COUNT_CONTINUED;
        let low = b & !(SWAP_HAS_CACHE | COUNT_CONTINUED);
        if low < SWAP_MAP_MAX {
            self.map[off as usize] = (low + 1) | cont | cache;
            return Ok(());
        }
        // Carry into the continuation digits: low wraps to 0.
        let digits = self.cont.entry(off).or_default();
        let mut i = 0;
        loop {
            if i == digits.len() {
                if digits.len() >= 8 {
                    // 63 * 128^8 references: beyond any page's refcount.
                    return Err(Errno::ENOMEM);
                }
                digits.push(0);
            }
            if digits[i] < SWAP_CONT_MAX {
                digits[i] += 1;
                break;
            }
            digits[i] = 0;
            i += 1;
        }
        self.map[off as usize] = COUNT_CONTINUED | cache;
        Ok(())
    }

    /// Drops one pte reference; the caller checked the count is not 0.
    fn dec_count(&mut self, off: u64) {
        let b = self.map[off as usize];
        let cache = b & SWAP_HAS_CACHE;
        let cont = b & COUNT_CONTINUED;
        let low = b & !(SWAP_HAS_CACHE | COUNT_CONTINUED);
        if low > 0 {
            self.map[off as usize] = (low - 1) | cont | cache;
            return;
        }
        // Borrow from the continuation digits: low becomes SWAP_MAP_MAX.
        let mut still_continued = false;
        if let Some(digits) = self.cont.get_mut(&off) {
            for d in digits.iter_mut() {
                if *d > 0 {
                    *d -= 1;
                    break;
                }
                *d = SWAP_CONT_MAX;
            }
            while digits.last() == Some(&0) {
                digits.pop();
            }
            still_continued = !digits.is_empty();
            if !still_continued {
                self.cont.remove(&off);
            }
        }
        let flag = if still_continued { COUNT_CONTINUED } else { 0 };
        self.map[off as usize] = SWAP_MAP_MAX | flag | cache;
    }
}

/// The per-CPU allocation hint (`percpu_swap_cluster` for order 0): the
/// device and offset the CPU allocates from next. Offset 0 = none.
#[derive(Copy, Clone, Debug, Default)]
struct PerCpuCluster {
    ty: u8,
    offset: u64,
}

struct Inner {
    devices: Vec<Option<SwapInfo>>,
    /// Types whose slot has been used (`nr_swapfiles`).
    nr_swapfiles: usize,
    /// `swap_active_head`: WRITEOK devices, highest priority first, equal
    /// priorities in insertion order.
    active: Vec<u8>,
    /// `swap_avail_head`: the active devices that are not full.
    avail: Vec<u8>,
    least_priority: i32,
    total_swap_pages: i64,
    nr_swap_pages: i64,
    percpu: Vec<PerCpuCluster>,
    policy: SwapAllocPolicy,
}

/// The machine's swap devices (`swap_info[]` and the lists around it).
pub struct SwapTable {
    inner: spin::Mutex<Inner>,
}

impl Default for SwapTable {
    fn default() -> Self {
        Self::new()
    }
}

/// plist_add order: after every entry whose priority is >= `prio`.
fn plist_insert(list: &mut Vec<u8>, devices: &[Option<SwapInfo>], ty: u8, prio: i32) {
    let pos = list
        .iter()
        .position(|&t| devices[t as usize].as_ref().is_some_and(|d| d.prio < prio))
        .unwrap_or(list.len());
    list.insert(pos, ty);
}

fn plist_remove(list: &mut Vec<u8>, ty: u8) {
    if let Some(p) = list.iter().position(|&t| t == ty) {
        list.remove(p);
    }
}

impl Inner {
    fn dev(&self, ty: u8) -> Option<&SwapInfo> {
        self.devices.get(ty as usize).and_then(|d| d.as_ref())
    }

    fn dev_mut(&mut self, ty: u8) -> Option<&mut SwapInfo> {
        self.devices.get_mut(ty as usize).and_then(|d| d.as_mut())
    }

    /// The device and the slot of a swap entry, or EINVAL ("Bad swap file
    /// entry" / "Bad swap offset entry").
    fn entry_mut(&mut self, e: SwapEntry) -> Result<&mut SwapInfo, Errno> {
        let d = self.dev_mut(e.ty).ok_or(Errno::EINVAL)?;
        if e.offset == 0 || e.offset >= d.max {
            return Err(Errno::EINVAL);
        }
        Ok(d)
    }

    fn entry(&self, e: SwapEntry) -> Option<&SwapInfo> {
        let d = self.dev(e.ty)?;
        (e.offset != 0 && e.offset < d.max).then_some(d)
    }

    /// `swap_range_alloc`: one more slot in use.
    fn range_alloc(&mut self, ty: u8) {
        let Some(d) = self.dev_mut(ty) else { return };
        d.inuse += 1;
        let full = d.inuse == d.pages;
        if full && d.on_avail {
            d.on_avail = false;
            plist_remove(&mut self.avail, ty);
        }
        self.nr_swap_pages -= 1;
    }

    /// Frees slot `off` once its count and cache bit are both 0
    /// (`swap_entries_free` + `swap_range_free`).
    fn maybe_free_slot(&mut self, ty: u8, off: u64) {
        let Some(d) = self.dev_mut(ty) else { return };
        if d.map[off as usize] != SWAP_MAP_FREE {
            return;
        }
        let ci = (off / SWAPFILE_CLUSTER) as u32;
        let c = &mut d.clusters[ci as usize];
        c.count = c.count.saturating_sub(1);
        if c.count == 0 {
            d.move_cluster(ci, ClusterFlag::Free);
        } else if d.clusters[ci as usize].flag != ClusterFlag::Nonfull {
            d.move_cluster(ci, ClusterFlag::Nonfull);
        }
        let was_full = d.inuse == d.pages;
        d.inuse = d.inuse.saturating_sub(1);
        let readd = was_full && d.writeok && !d.on_avail;
        let prio = d.prio;
        if readd {
            d.on_avail = true;
            plist_insert(&mut self.avail, &self.devices, ty, prio);
        }
        self.nr_swap_pages += 1;
    }

    /// `swap_alloc_fast`: the CPU's current cluster.
    fn alloc_fast(&mut self, cpu: usize) -> Option<SwapEntry> {
        let pc = *self.percpu.get(cpu)?;
        if pc.offset == 0 {
            return None;
        }
        let d = self.dev_mut(pc.ty)?;
        if !d.writeok || pc.offset >= d.max {
            return None;
        }
        let ci = (pc.offset / SWAPFILE_CLUSTER) as u32;
        if !d.cluster_usable(ci) {
            return None;
        }
        let from = if d.clusters[ci as usize].count == 0 {
            u64::from(ci) * SWAPFILE_CLUSTER
        } else {
            pc.offset
        };
        let (found, next) = d.scan_cluster(ci, from);
        self.percpu[cpu] = PerCpuCluster {
            ty: pc.ty,
            offset: next,
        };
        let off = found?;
        self.range_alloc(pc.ty);
        Some(SwapEntry {
            ty: pc.ty,
            offset: off,
        })
    }

    /// `swap_alloc_slow`: the available devices in priority order; each
    /// tried is first requeued behind the others of its priority.
    fn alloc_slow(&mut self, cpu: usize) -> Option<SwapEntry> {
        let mut snap = [0u8; MAX_SWAPFILES];
        let n = self.avail.len().min(MAX_SWAPFILES);
        snap[..n].copy_from_slice(&self.avail[..n]);
        for &ty in &snap[..n] {
            if !self.avail.contains(&ty) {
                continue;
            }
            // plist_requeue
            plist_remove(&mut self.avail, ty);
            let prio = self.dev(ty).map_or(i32::MIN, |d| d.prio);
            plist_insert(&mut self.avail, &self.devices, ty, prio);
            let policy = self.policy;
            let d = self.dev_mut(ty)?;
            let found = match policy {
                SwapAllocPolicy::Cluster => {
                    let (found, next) = d.cluster_alloc();
                    if let Some(pc) = self.percpu.get_mut(cpu) {
                        *pc = PerCpuCluster { ty, offset: next };
                    }
                    found
                }
                SwapAllocPolicy::NextFit => d.next_fit_alloc(),
            };
            if let Some(off) = found {
                self.range_alloc(ty);
                return Some(SwapEntry { ty, offset: off });
            }
        }
        None
    }
}

impl SwapTable {
    /// An empty table: no swap.
    pub fn new() -> SwapTable {
        SwapTable {
            inner: spin::Mutex::new(Inner {
                devices: Vec::new(),
                nr_swapfiles: 0,
                active: Vec::new(),
                avail: Vec::new(),
                least_priority: -1,
                total_swap_pages: 0,
                nr_swap_pages: 0,
                percpu: Vec::new(),
                policy: SwapAllocPolicy::Cluster,
            }),
        }
    }

    /// Chooses how slots are picked inside a device (default: 6.18's).
    pub fn set_alloc_policy(&self, policy: SwapAllocPolicy) {
        self.inner.lock().policy = policy;
    }

    /// `swapon(2)`: adds a device whose header was read and checked.
    /// `prio` None takes the next default priority: -2 for the first
    /// device, then -3, ... (Linux starts `least_priority` at -1 and
    /// pre-decrements; recorded on 6.18). Errors as Linux: EINVAL for a
    /// negative explicit priority, a bad header or an area with no usable
    /// slot; EBUSY if `name` is already swapped on; EPERM when all
    /// [`MAX_SWAPFILES`] types are in use. Returns the swap type (the
    /// lowest free one).
    pub fn swapon(
        &self,
        name: String,
        kind: SwapKind,
        io: Box<dyn SwapIo>,
        header: &SwapHeader,
        prio: Option<i16>,
    ) -> Result<u8, Errno> {
        let mut g = self.inner.lock();
        let ty = (0..g.nr_swapfiles)
            .find(|&t| g.devices[t].is_none())
            .unwrap_or(g.nr_swapfiles);
        if ty >= MAX_SWAPFILES {
            return Err(Errno::EPERM);
        }
        if g.devices.iter().flatten().any(|d| d.name == name) {
            return Err(Errno::EBUSY);
        }
        if prio.is_some_and(|p| p < 0) {
            return Err(Errno::EINVAL);
        }
        if header.version != 1 || header.last_page == 0 {
            return Err(Errno::EINVAL);
        }
        if header.check_size(0, kind).is_err() {
            return Err(Errno::EINVAL);
        }
        let max = header.max_pages();
        let nr_clusters = max.div_ceil(SWAPFILE_CLUSTER);
        // Linux's kvcalloc of the swap map fails with ENOMEM, not a panic.
        let mut map: Vec<u8> = Vec::new();
        map.try_reserve_exact(max as usize)
            .map_err(|_| Errno::ENOMEM)?;
        map.resize(max as usize, SWAP_MAP_FREE);
        let mut clusters: Vec<Cluster> = Vec::new();
        clusters
            .try_reserve_exact(nr_clusters as usize)
            .map_err(|_| Errno::ENOMEM)?;
        clusters.resize(
            nr_clusters as usize,
            Cluster {
                count: 0,
                flag: ClusterFlag::None,
                prev: NIL,
                next: NIL,
            },
        );
        let mut pages = max - 1;
        map[0] = SWAP_MAP_BAD;
        clusters[0].count += 1;
        for &b in &header.badpages {
            if b == 0 || u64::from(b) > u64::from(header.last_page) {
                return Err(Errno::EINVAL);
            }
            let b = u64::from(b);
            if b < max && map[b as usize] != SWAP_MAP_BAD {
                map[b as usize] = SWAP_MAP_BAD;
                clusters[(b / SWAPFILE_CLUSTER) as usize].count += 1;
                pages -= 1;
            }
        }
        // The tail of the last cluster past the area is never usable.
        for s in max..nr_clusters * SWAPFILE_CLUSTER {
            clusters[(s / SWAPFILE_CLUSTER) as usize].count += 1;
        }
        if pages == 0 {
            return Err(Errno::EINVAL);
        }
        let mut si = SwapInfo {
            name,
            kind,
            io: Arc::from(io),
            prio: 0,
            writeok: false,
            max,
            pages,
            inuse: 0,
            on_avail: false,
            map,
            cont: BTreeMap::new(),
            clusters,
            free_clusters: ClusterList::EMPTY,
            nonfull_clusters: ClusterList::EMPTY,
            frag_clusters: ClusterList::EMPTY,
            full_clusters: ClusterList::EMPTY,
            next_fit: 1,
        };
        // setup_swap_clusters_info: clusters holding unusable slots start
        // on the nonfull list, the others on the free list, in order.
        for i in 0..nr_clusters as u32 {
            let f = if si.clusters[i as usize].count > 0 {
                ClusterFlag::Nonfull
            } else {
                ClusterFlag::Free
            };
            si.move_cluster(i, f);
        }
        si.prio = match prio {
            Some(p) => i32::from(p),
            None => {
                g.least_priority -= 1;
                g.least_priority
            }
        };
        if g.devices.len() <= ty {
            g.devices.resize_with(ty + 1, || None);
        }
        g.nr_swapfiles = g.nr_swapfiles.max(ty + 1);
        g.devices[ty] = Some(si);
        Self::enable(&mut g, ty as u8);
        Ok(ty as u8)
    }

    /// `_enable_swap_info`: WRITEOK, counted, on the active and avail lists.
    fn enable(g: &mut Inner, ty: u8) {
        let Some(d) = g.dev_mut(ty) else { return };
        d.writeok = true;
        let (pages, inuse, prio) = (d.pages, d.inuse, d.prio);
        d.on_avail = inuse < pages;
        g.nr_swap_pages += pages as i64;
        g.total_swap_pages += pages as i64;
        plist_insert(&mut g.active, &g.devices, ty, prio);
        if inuse < pages {
            plist_insert(&mut g.avail, &g.devices, ty, prio);
        }
    }

    /// First half of `swapoff(2)`: stops allocation from device `ty`.
    /// `vm_enough_memory(pages)` is asked whether the pages can come back
    /// into memory (Linux's `security_vm_enough_memory_mm`); if not,
    /// ENOMEM and nothing changes. EINVAL if `ty` is not an active device.
    /// The devices after it in priority order that have default
    /// (negative) priorities move up by one, as Linux renumbers them.
    pub fn swapoff_begin(
        &self,
        ty: u8,
        vm_enough_memory: impl FnOnce(u64) -> bool,
    ) -> Result<(), Errno> {
        let mut g = self.inner.lock();
        let d = g.dev(ty).ok_or(Errno::EINVAL)?;
        if !d.writeok {
            return Err(Errno::EINVAL);
        }
        let (pages, prio) = (d.pages, d.prio);
        if !vm_enough_memory(pages) {
            return Err(Errno::ENOMEM);
        }
        if let Some(d) = g.dev_mut(ty) {
            d.on_avail = false;
            d.writeok = false;
        }
        plist_remove(&mut g.avail, ty);
        if prio < 0 {
            let pos = g.active.iter().position(|&t| t == ty).unwrap_or(0);
            let after: Vec<u8> = g.active[pos + 1..].to_vec();
            for t in after {
                if let Some(d) = g.dev_mut(t) {
                    d.prio += 1;
                }
            }
            g.least_priority += 1;
        }
        plist_remove(&mut g.active, ty);
        g.nr_swap_pages -= pages as i64;
        g.total_swap_pages -= pages as i64;
        // flush_percpu_swap_cluster
        for pc in g.percpu.iter_mut() {
            if pc.ty == ty {
                pc.offset = 0;
            }
        }
        Ok(())
    }

    /// `find_next_to_unuse`: the first slot after `prev` that still has
    /// users (pte references or the swap cache), for swapoff to bring in.
    pub fn find_next_to_unuse(&self, ty: u8, prev: u64) -> Option<SwapEntry> {
        let g = self.inner.lock();
        let d = g.dev(ty)?;
        ((prev + 1)..d.max)
            .find(|&o| {
                let b = d.map[o as usize];
                b != SWAP_MAP_FREE && b != SWAP_MAP_BAD
            })
            .map(|offset| SwapEntry { ty, offset })
    }

    /// Every slot of `ty` still in use, in offset order.
    pub fn in_use_entries(&self, ty: u8) -> Vec<SwapEntry> {
        let mut v = Vec::new();
        let mut prev = 0;
        while let Some(e) = self.find_next_to_unuse(ty, prev) {
            prev = e.offset;
            v.push(e);
        }
        v
    }

    /// Last half of `swapoff(2)`: removes device `ty` once no slot is in
    /// use; its type becomes free for the next swapon. EBUSY while slots
    /// are still in use (Linux's `try_to_unuse` would keep going), EINVAL
    /// if `ty` is not a device being swapped off.
    pub fn swapoff_finish(&self, ty: u8) -> Result<(), Errno> {
        let mut g = self.inner.lock();
        let d = g.dev(ty).ok_or(Errno::EINVAL)?;
        if d.writeok {
            return Err(Errno::EINVAL);
        }
        if d.inuse != 0 {
            return Err(Errno::EBUSY);
        }
        g.devices[ty as usize] = None;
        Ok(())
    }

    /// A failed swapoff (`reinsert_swap_info`): the device takes
    /// allocations again. A default-priority device gets a fresh lowest
    /// priority, as Linux's `setup_swap_info` gives it.
    pub fn swapoff_abort(&self, ty: u8) -> Result<(), Errno> {
        let mut g = self.inner.lock();
        let d = g.dev(ty).ok_or(Errno::EINVAL)?;
        if d.writeok {
            return Err(Errno::EINVAL);
        }
        if d.prio < 0 {
            g.least_priority -= 1;
            let p = g.least_priority;
            if let Some(d) = g.dev_mut(ty) {
                d.prio = p;
            }
        }
        Self::enable(&mut g, ty);
        Ok(())
    }

    /// `folio_alloc_swap` for an order-0 folio: a free slot, its map byte
    /// set to SWAP_HAS_CACHE (the folio enters the swap cache holding it).
    /// Tries the CPU's current cluster first, then the devices in priority
    /// order. None when swap is full or absent.
    pub fn folio_alloc_swap(&self, cpu: usize) -> Option<SwapEntry> {
        let mut g = self.inner.lock();
        if g.percpu.len() <= cpu {
            g.percpu.resize(cpu + 1, PerCpuCluster::default());
        }
        if g.policy == SwapAllocPolicy::Cluster {
            if let Some(e) = g.alloc_fast(cpu) {
                return Some(e);
            }
        }
        g.alloc_slow(cpu)
    }

    /// The older name of [`SwapTable::folio_alloc_swap`].
    pub fn get_swap_page(&self, cpu: usize) -> Option<SwapEntry> {
        self.folio_alloc_swap(cpu)
    }

    /// `swap_duplicate`: one more pte references the slot (fork copying a
    /// swap pte, or unmap replacing a pte by the entry). ENOENT if the slot
    /// is free or bad, EINVAL for an entry of no device.
    pub fn swap_duplicate(&self, e: SwapEntry) -> Result<(), Errno> {
        let mut g = self.inner.lock();
        let d = g.entry_mut(e)?;
        let b = d.map[e.offset as usize];
        if b == SWAP_MAP_FREE || b == SWAP_MAP_BAD {
            return Err(Errno::ENOENT);
        }
        d.inc_count(e.offset)
    }

    /// `swapcache_prepare`: claims the slot for a folio being read in
    /// (sets SWAP_HAS_CACHE). EEXIST if another folio has it, ENOENT if
    /// the slot is free.
    pub fn swapcache_prepare(&self, e: SwapEntry) -> Result<(), Errno> {
        let mut g = self.inner.lock();
        let d = g.entry_mut(e)?;
        let b = d.map[e.offset as usize];
        if b == SWAP_MAP_FREE || b == SWAP_MAP_BAD {
            return Err(Errno::ENOENT);
        }
        if b & SWAP_HAS_CACHE != 0 {
            return Err(Errno::EEXIST);
        }
        d.map[e.offset as usize] = b | SWAP_HAS_CACHE;
        Ok(())
    }

    /// `swap_free`: a pte reference is gone. The slot is freed when no
    /// reference and no cache remain. EINVAL if the slot has no reference.
    pub fn swap_free(&self, e: SwapEntry) -> Result<(), Errno> {
        self.put_ref(e).map(|_| ())
    }

    fn put_ref(&self, e: SwapEntry) -> Result<bool, Errno> {
        let mut g = self.inner.lock();
        let d = g.entry_mut(e)?;
        if d.map[e.offset as usize] == SWAP_MAP_BAD || d.count_of(e.offset) == 0 {
            return Err(Errno::EINVAL);
        }
        d.dec_count(e.offset);
        let only_cache = d.map[e.offset as usize] == SWAP_HAS_CACHE;
        g.maybe_free_slot(e.ty, e.offset);
        Ok(only_cache)
    }

    /// `free_swap_and_cache` (the swap-map half): drops one pte reference
    /// and returns whether the swap cache is now the slot's only user, in
    /// which case the caller should try to delete the cached folio, whose
    /// [`SwapTable::put_swap_folio`] then frees the slot.
    pub fn free_swap_and_cache(&self, e: SwapEntry) -> Result<bool, Errno> {
        self.put_ref(e)
    }

    /// `put_swap_folio`: the folio left the swap cache (drops
    /// SWAP_HAS_CACHE). EINVAL if the bit was not set.
    pub fn put_swap_folio(&self, e: SwapEntry) -> Result<(), Errno> {
        let mut g = self.inner.lock();
        let d = g.entry_mut(e)?;
        let b = d.map[e.offset as usize];
        if b == SWAP_MAP_BAD || b & SWAP_HAS_CACHE == 0 {
            return Err(Errno::EINVAL);
        }
        d.map[e.offset as usize] = b & !SWAP_HAS_CACHE;
        g.maybe_free_slot(e.ty, e.offset);
        Ok(())
    }

    /// `swapcache_clear`: undoes [`SwapTable::swapcache_prepare`] (same
    /// effect as [`SwapTable::put_swap_folio`]).
    pub fn swapcache_clear(&self, e: SwapEntry) -> Result<(), Errno> {
        self.put_swap_folio(e)
    }

    /// Pte references of a slot (0 for a free, bad or invalid one),
    /// continuation included.
    pub fn swap_count(&self, e: SwapEntry) -> u32 {
        let g = self.inner.lock();
        g.entry(e)
            .map_or(0, |d| d.count_of(e.offset).min(u64::from(u32::MAX)) as u32)
    }

    /// Whether the slot is held by the swap cache.
    pub fn has_cache(&self, e: SwapEntry) -> bool {
        let g = self.inner.lock();
        g.entry(e).is_some_and(|d| {
            let b = d.map[e.offset as usize];
            b != SWAP_MAP_BAD && b & SWAP_HAS_CACHE != 0
        })
    }

    /// The raw swap_map byte of a slot (slot 0 included), None if the
    /// entry names no slot.
    pub fn swap_map_byte(&self, e: SwapEntry) -> Option<u8> {
        let g = self.inner.lock();
        let d = g.dev(e.ty)?;
        d.map.get(e.offset as usize).copied()
    }

    fn io_for(&self, e: SwapEntry, len: usize) -> Result<Arc<dyn SwapIo>, Errno> {
        if len != SWAP_PAGE_SIZE {
            return Err(Errno::EINVAL);
        }
        let g = self.inner.lock();
        let d = g.entry(e).ok_or(Errno::EINVAL)?;
        Ok(d.io.clone())
    }

    /// `swap_writepage`: writes a page to its slot (counts nothing).
    pub fn swap_writepage(&self, e: SwapEntry, page: &[u8]) -> Result<(), Errno> {
        let io = self.io_for(e, page.len())?;
        io.write_page(e.offset, page)
    }

    /// `swap_read_folio`: reads a page from its slot (counts nothing).
    pub fn swap_readpage(&self, e: SwapEntry, page: &mut [u8]) -> Result<(), Errno> {
        let io = self.io_for(e, page.len())?;
        io.read_page(e.offset, page)
    }

    /// `total_swap_pages`: usable slots of the active devices.
    pub fn total_swap_pages(&self) -> i64 {
        self.inner.lock().total_swap_pages
    }

    /// `nr_swap_pages`: free slots of the active devices (a device being
    /// swapped off counts its in-use slots against it until they are freed).
    pub fn nr_swap_pages(&self) -> i64 {
        self.inner.lock().nr_swap_pages
    }

    /// `si_swapinfo`: (totalswap, freeswap) in pages, as free(1) and
    /// /proc/meminfo see them: a device being swapped off still counts its
    /// slots in use.
    pub fn si_swapinfo(&self) -> (u64, u64) {
        let g = self.inner.lock();
        let unused: i64 = g
            .devices
            .iter()
            .flatten()
            .filter(|d| !d.writeok)
            .map(|d| d.inuse as i64)
            .sum();
        (
            (g.total_swap_pages + unused).max(0) as u64,
            (g.nr_swap_pages + unused).max(0) as u64,
        )
    }

    /// `si->inuse_pages` of device `ty`.
    pub fn inuse_pages(&self, ty: u8) -> Option<u64> {
        self.inner.lock().dev(ty).map(|d| d.inuse)
    }

    /// What /proc/swaps and the tests need of device `ty`.
    pub fn device_info(&self, ty: u8) -> Option<SwapDeviceInfo> {
        let g = self.inner.lock();
        g.dev(ty).map(|d| SwapDeviceInfo {
            ty,
            name: d.name.clone(),
            kind: d.kind,
            prio: d.prio,
            pages: d.pages,
            inuse: d.inuse,
            max: d.max,
            writeok: d.writeok,
        })
    }

    /// The devices, by type.
    pub fn devices(&self) -> Vec<SwapDeviceInfo> {
        let n = self.inner.lock().devices.len();
        (0..n as u8).filter_map(|t| self.device_info(t)).collect()
    }

    /// /proc/swaps (mm/swapfile.c `swap_show`): a header line, then one
    /// line per device in type order: the name (with space, tab, newline
    /// and backslash written as octal escapes, as `seq_file_path` does)
    /// padded with spaces to column 40 (at least one space), the type
    /// ("file\t" or "partition"), a tab, the size in KiB (usable slots, so
    /// without the header page), a second tab if it is below 10000000, the
    /// used KiB likewise, and the priority.
    pub fn proc_swaps(&self) -> String {
        let g = self.inner.lock();
        let mut s = String::from("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n");
        for d in g.devices.iter().flatten() {
            let start = s.len();
            for c in d.name.chars() {
                if matches!(c, ' ' | '\t' | '\n' | '\\') {
                    let _ = write!(s, "\\{:03o}", c as u32);
                } else {
                    s.push(c);
                }
            }
            let len = s.len() - start;
            let pad = if len < 40 { 40 - len } else { 1 };
            let size = d.pages * 4;
            let used = d.inuse * 4;
            let _ = writeln!(
                s,
                "{:pad$}{}\t{}\t{}{}\t{}{}",
                "",
                d.kind.proc_str(),
                size,
                if size < 10_000_000 { "\t" } else { "" },
                used,
                if used < 10_000_000 { "\t" } else { "" },
                d.prio,
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use proptest::prelude::*;
    use std::collections::HashMap;

    /// A swap device in memory.
    struct MemIo(spin::Mutex<BTreeMap<u64, Vec<u8>>>);

    impl MemIo {
        fn boxed() -> Box<dyn SwapIo> {
            Box::new(MemIo(spin::Mutex::new(BTreeMap::new())))
        }
    }

    impl SwapIo for MemIo {
        fn read_page(&self, slot: u64, buf: &mut [u8]) -> Result<(), Errno> {
            match self.0.lock().get(&slot) {
                Some(p) => buf.copy_from_slice(p),
                None => buf.fill(0),
            }
            Ok(())
        }
        fn write_page(&self, slot: u64, buf: &[u8]) -> Result<(), Errno> {
            self.0.lock().insert(slot, buf.to_vec());
            Ok(())
        }
    }

    const UUID: [u8; 16] = [
        0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd,
        0xef,
    ];

    fn header(pages: u64) -> SwapHeader {
        SwapHeader::parse(&SwapHeader::write(pages, UUID, "").unwrap()).unwrap()
    }

    fn table_with(sizes: &[(u64, Option<i16>)]) -> SwapTable {
        let t = SwapTable::new();
        for (i, &(pages, prio)) in sizes.iter().enumerate() {
            let ty = t
                .swapon(
                    alloc::format!("/swap{i}"),
                    SwapKind::File,
                    MemIo::boxed(),
                    &header(pages),
                    prio,
                )
                .unwrap();
            assert_eq!(ty as usize, i);
        }
        t
    }

    fn e(ty: u8, offset: u64) -> SwapEntry {
        SwapEntry { ty, offset }
    }

    /// The bytes host `mkswap -U 01234567-89ab-cdef-0123-456789abcdef -L lab1`
    /// wrote into page 0 of a 16 MiB file on our 6.18 machine (util-linux
    /// 2.38.1, recorded with xxd): all zero except these.
    #[test]
    fn header_write_matches_recorded_mkswap_bytes() {
        let p = SwapHeader::write(4096, UUID, "lab1").unwrap();
        let mut want = [0u8; 4096];
        want[0x400..0x410].copy_from_slice(&[
            0x01, 0, 0, 0, 0xff, 0x0f, 0, 0, 0, 0, 0, 0, 0x01, 0x23, 0x45, 0x67,
        ]);
        want[0x410..0x420].copy_from_slice(&[
            0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, b'l', b'a',
            b'b', b'1',
        ]);
        want[0xff6..].copy_from_slice(b"SWAPSPACE2");
        assert_eq!(p[..], want[..]);
    }

    #[test]
    fn header_round_trip() {
        let p = SwapHeader::write(4096, UUID, "0123456789abcdefXYZ").unwrap();
        let h = SwapHeader::parse(&p).unwrap();
        assert_eq!(h.version, 1);
        assert_eq!(h.last_page, 4095);
        assert_eq!(h.max_pages(), 4096);
        assert_eq!(h.uuid, UUID);
        // mkswap cuts the label to 15 bytes ("Label was truncated").
        assert_eq!(h.label(), b"0123456789abcde");
        assert!(h.badpages.is_empty() && !h.byte_swapped);
        assert_eq!(h.check_size(16 << 20, SwapKind::File), Ok(4096));
        assert_eq!(
            SwapHeader::write(9, UUID, ""),
            Err(SwapHeaderError::TooSmall(9))
        );
        assert!(SwapHeader::write(10, UUID, "").is_ok());
    }

    #[test]
    fn corrupt_headers_give_named_errors() {
        let good = SwapHeader::write(100, UUID, "x").unwrap();
        assert_eq!(
            SwapHeader::parse(&good[..4095]),
            Err(SwapHeaderError::Truncated(4095))
        );
        let mut p = good;
        p[4086..].copy_from_slice(b"NOTSWAPXXX");
        assert_eq!(SwapHeader::parse(&p), Err(SwapHeaderError::NoSignature));
        p[4086..].copy_from_slice(b"SWAP-SPACE");
        assert_eq!(SwapHeader::parse(&p), Err(SwapHeaderError::OldVersion0));
        let mut p = good;
        p[1024..1028].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(
            SwapHeader::parse(&p),
            Err(SwapHeaderError::UnsupportedVersion(2))
        );
        let mut p = good;
        p[1028..1032].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(SwapHeader::parse(&p), Err(SwapHeaderError::EmptySwapFile));
        let mut p = good;
        p[1032..1036].copy_from_slice(&638u32.to_le_bytes());
        assert_eq!(
            SwapHeader::parse(&p),
            Err(SwapHeaderError::TooManyBadPages(638))
        );
        let mut p = good;
        p[1032..1036].copy_from_slice(&1u32.to_le_bytes());
        p[1536..1540].copy_from_slice(&100u32.to_le_bytes());
        assert_eq!(
            SwapHeader::parse(&p),
            Err(SwapHeaderError::BadPageOutOfRange {
                page: 100,
                last_page: 99
            })
        );
        // A bad page in range parses, but a regular file may not list one.
        p[1536..1540].copy_from_slice(&99u32.to_le_bytes());
        let h = SwapHeader::parse(&p).unwrap();
        assert_eq!(h.badpages, [99]);
        assert_eq!(
            h.check_size(100 * 4096, SwapKind::File),
            Err(SwapHeaderError::BadPagesInFile)
        );
        assert_eq!(h.check_size(100 * 4096, SwapKind::Partition), Ok(100));
        assert_eq!(
            header(100).check_size(99 * 4096 + 4095, SwapKind::File),
            Err(SwapHeaderError::ShorterThanSignature {
                header_pages: 100,
                file_pages: 99
            })
        );
        assert_eq!(MAX_SWAP_BADPAGES, 637);
        assert!(SwapHeaderError::NoSignature
            .to_string()
            .contains("swap-space signature"));
    }

    /// Linux swaps the fields of a header written in the other byte order
    /// (`read_swap_header`'s endianness hack) instead of refusing it.
    #[test]
    fn byte_swapped_header_is_accepted_like_linux() {
        let mut p = SwapHeader::write(100, UUID, "").unwrap();
        p[1024..1028].copy_from_slice(&1u32.to_be_bytes());
        p[1028..1032].copy_from_slice(&99u32.to_be_bytes());
        p[1032..1036].copy_from_slice(&1u32.to_be_bytes());
        p[1536..1540].copy_from_slice(&7u32.to_be_bytes());
        let h = SwapHeader::parse(&p).unwrap();
        assert!(h.byte_swapped);
        assert_eq!((h.last_page, h.badpages.clone()), (99, alloc::vec![7]));
        p[1032..1036].copy_from_slice(&700u32.to_be_bytes());
        assert_eq!(
            SwapHeader::parse(&p),
            Err(SwapHeaderError::TooManyBadPages(700))
        );
    }

    #[test]
    fn slot_zero_is_bad_and_sizes_exclude_it() {
        let t = table_with(&[(4096, None)]);
        assert_eq!(t.swap_map_byte(e(0, 0)), Some(SWAP_MAP_BAD));
        assert_eq!(t.total_swap_pages(), 4095);
        assert_eq!(t.nr_swap_pages(), 4095);
        assert_eq!(t.inuse_pages(0), Some(0));
        assert_eq!(t.swap_duplicate(e(0, 0)), Err(Errno::EINVAL));
        assert_eq!(t.swap_duplicate(e(0, 4096)), Err(Errno::EINVAL));
        assert_eq!(t.swap_duplicate(e(5, 1)), Err(Errno::EINVAL));
    }

    #[test]
    fn consecutive_allocations_fill_one_cluster() {
        let t = table_with(&[(4096, None)]);
        // Cluster 0 holds the header, so it starts on the nonfull list and
        // is taken first; the CPU then runs through it slot by slot.
        for want in 1..SWAPFILE_CLUSTER {
            let got = t.folio_alloc_swap(0).unwrap();
            assert_eq!(got, e(0, want));
            assert_eq!(t.swap_map_byte(got), Some(SWAP_HAS_CACHE));
        }
        // Cluster 0 is full: the next cluster comes off the free list.
        assert_eq!(t.folio_alloc_swap(0), Some(e(0, 512)));
        assert_eq!(t.folio_alloc_swap(0), Some(e(0, 513)));
        assert_eq!(t.inuse_pages(0), Some(513));
        assert_eq!(t.nr_swap_pages(), 4095 - 513);
    }

    #[test]
    fn two_cpus_take_different_clusters() {
        let t = table_with(&[(4096, None)]);
        let a: Vec<_> = (0..4)
            .map(|_| t.folio_alloc_swap(0).unwrap().offset)
            .collect();
        let b: Vec<_> = (0..4)
            .map(|_| t.folio_alloc_swap(1).unwrap().offset)
            .collect();
        let c: Vec<_> = (0..2)
            .map(|_| t.folio_alloc_swap(0).unwrap().offset)
            .collect();
        assert_eq!(a, [1, 2, 3, 4]);
        assert_eq!(b, [512, 513, 514, 515]);
        assert_eq!(c, [5, 6]);
        // A CPU with no cluster yet takes the next free one.
        assert_eq!(t.folio_alloc_swap(7), Some(e(0, 1024)));
    }

    #[test]
    fn freed_slots_make_a_cluster_nonfull_and_it_is_reused_first() {
        let t = table_with(&[(2048, None)]);
        let all: Vec<_> = (0..1023).map(|_| t.folio_alloc_swap(0).unwrap()).collect();
        assert_eq!(all.last(), Some(&e(0, 1023)));
        // Free one slot in full cluster 0: it moves to the nonfull list.
        t.put_swap_folio(e(0, 100)).unwrap();
        assert_eq!(t.swap_map_byte(e(0, 100)), Some(0));
        // CPU 1 has no cluster: nonfull clusters come before free ones.
        assert_eq!(t.folio_alloc_swap(1), Some(e(0, 100)));
        assert_eq!(t.folio_alloc_swap(1), Some(e(0, 1024)));
    }

    #[test]
    fn full_device_returns_none_until_a_slot_is_freed() {
        let t = table_with(&[(10, None)]);
        let got: Vec<_> = (0..9)
            .map(|_| t.folio_alloc_swap(0).unwrap().offset)
            .collect();
        assert_eq!(got, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(t.folio_alloc_swap(0), None);
        assert_eq!(t.folio_alloc_swap(1), None);
        assert_eq!(t.nr_swap_pages(), 0);
        t.put_swap_folio(e(0, 4)).unwrap();
        assert_eq!(t.nr_swap_pages(), 1);
        assert_eq!(t.folio_alloc_swap(1), Some(e(0, 4)));
        assert_eq!(SwapTable::new().folio_alloc_swap(0), None);
    }

    #[test]
    fn higher_priority_device_is_used_first() {
        let t = table_with(&[(600, None), (600, Some(5)), (600, Some(1))]);
        let infos = t.devices();
        assert_eq!(infos.iter().map(|d| d.prio).collect::<Vec<_>>(), [-2, 5, 1]);
        for i in 0..599 {
            assert_eq!(t.folio_alloc_swap(i % 2).unwrap().ty, 1, "alloc {i}");
        }
        assert_eq!(t.folio_alloc_swap(0).unwrap().ty, 2);
        for _ in 0..598 {
            assert_eq!(t.folio_alloc_swap(0).unwrap().ty, 2);
        }
        assert_eq!(t.folio_alloc_swap(0).unwrap().ty, 0);
    }

    /// Equal priorities rotate (`plist_requeue` in `swap_alloc_slow`) each
    /// time a CPU needs a new cluster; within a cluster the CPU stays.
    /// Recorded on 6.18: two 32 MiB files at priority 3, a process in a
    /// 16 MiB memory cgroup touching 24 MiB: Used 8132 and 8092 KiB.
    #[test]
    fn equal_priorities_alternate_by_cluster() {
        let t = table_with(&[(2048, Some(3)), (2048, Some(3))]);
        let mut seq = Vec::new();
        // Cluster 0 has 511 usable slots (the header), the others 512.
        for more in [510, 510, 511, 511] {
            let first = t.folio_alloc_swap(0).unwrap();
            for _ in 0..more {
                assert_eq!(t.folio_alloc_swap(0).unwrap().ty, first.ty);
            }
            seq.push(first);
        }
        assert_eq!(seq, [e(0, 1), e(1, 1), e(0, 512), e(1, 512)]);
        // Two CPUs starting together land on different devices.
        let t = table_with(&[(2048, Some(3)), (2048, Some(3))]);
        assert_eq!(t.folio_alloc_swap(0).unwrap().ty, 0);
        assert_eq!(t.folio_alloc_swap(1).unwrap().ty, 1);
        assert_eq!(t.folio_alloc_swap(0).unwrap(), e(0, 2));
    }

    #[test]
    fn default_priorities_and_swapoff_renumbering_match_recording() {
        // Recorded on 6.18: swapon a, b -> -2, -3; swapoff a -> b is -2;
        // swapon -p 5 a -> a is type 0 again, with priority 5.
        let t = table_with(&[(100, None), (100, None), (100, None)]);
        assert_eq!(
            t.devices().iter().map(|d| d.prio).collect::<Vec<_>>(),
            [-2, -3, -4]
        );
        t.swapoff_begin(0, |_| true).unwrap();
        t.swapoff_finish(0).unwrap();
        assert_eq!(
            t.devices().iter().map(|d| d.prio).collect::<Vec<_>>(),
            [-2, -3]
        );
        let ty = t
            .swapon(
                "/again".into(),
                SwapKind::File,
                MemIo::boxed(),
                &header(100),
                None,
            )
            .unwrap();
        assert_eq!((ty, t.device_info(0).unwrap().prio), (0, -4));
        assert_eq!(
            t.swapon(
                "/swap1".into(),
                SwapKind::File,
                MemIo::boxed(),
                &header(100),
                None
            ),
            Err(Errno::EBUSY)
        );
        assert_eq!(
            t.swapon(
                "/neg".into(),
                SwapKind::File,
                MemIo::boxed(),
                &header(100),
                Some(-1)
            ),
            Err(Errno::EINVAL)
        );
    }

    /// Recorded on 6.18 (same cgroup experiment, default priorities -2 and
    /// -3): Used 22312 and 0 KiB. The disk has no NUMA node, so no device
    /// is boosted on the avail list and the order is strict.
    #[test]
    fn default_priorities_are_strict() {
        let t = table_with(&[(600, None), (600, None)]);
        for cpu in 0..599 {
            assert_eq!(t.folio_alloc_swap(cpu % 3).unwrap().ty, 0);
        }
        assert_eq!(t.folio_alloc_swap(0).unwrap().ty, 1);
        t.put_swap_folio(e(0, 9)).unwrap();
        assert_eq!(t.folio_alloc_swap(2), Some(e(0, 9)));
    }

    #[test]
    fn swapon_refuses_past_max_swapfiles() {
        let t = SwapTable::new();
        for i in 0..MAX_SWAPFILES {
            let name = alloc::format!("/s{i}");
            assert_eq!(
                t.swapon(name, SwapKind::File, MemIo::boxed(), &header(10), None),
                Ok(i as u8)
            );
        }
        assert_eq!(MAX_SWAPFILES, 28);
        assert_eq!(t.device_info(27).unwrap().prio, -29);
        assert_eq!(
            t.swapon(
                "/x".into(),
                SwapKind::File,
                MemIo::boxed(),
                &header(10),
                None
            ),
            Err(Errno::EPERM)
        );
    }

    #[test]
    fn swapoff_in_steps() {
        let t = table_with(&[(100, None), (100, None)]);
        let a = t.folio_alloc_swap(0).unwrap();
        let b = t.folio_alloc_swap(0).unwrap();
        assert_eq!((a.ty, b.ty), (0, 0));
        t.swap_duplicate(a).unwrap();
        t.put_swap_folio(a).unwrap();
        assert_eq!(t.swapoff_begin(0, |pages| pages < 10), Err(Errno::ENOMEM));
        assert!(t.device_info(0).unwrap().writeok);
        assert_eq!(t.swapoff_begin(9, |_| true), Err(Errno::EINVAL));
        t.swapoff_begin(0, |pages| pages == 99).unwrap();
        assert_eq!(t.swapoff_begin(0, |_| true), Err(Errno::EINVAL));
        assert_eq!(t.total_swap_pages(), 99);
        assert_eq!(t.nr_swap_pages(), 99 - 2);
        assert_eq!(t.si_swapinfo(), (101, 99));
        // No more allocation from device 0, not even from CPU 0's cluster.
        assert_eq!(t.folio_alloc_swap(0).unwrap().ty, 1);
        assert_eq!(t.in_use_entries(0), [a, b]);
        assert_eq!(t.find_next_to_unuse(0, a.offset), Some(b));
        assert_eq!(t.swapoff_finish(0), Err(Errno::EBUSY));
        t.swap_free(a).unwrap();
        t.put_swap_folio(b).unwrap();
        assert_eq!(t.in_use_entries(0), []);
        t.swapoff_finish(0).unwrap();
        assert_eq!(t.device_info(0), None);
        assert_eq!(t.devices().len(), 1);
        assert_eq!(t.device_info(1).unwrap().prio, -2);
        assert_eq!(t.nr_swap_pages(), 98);
    }

    #[test]
    fn swapoff_abort_reinserts_with_a_new_lowest_priority() {
        let t = table_with(&[(100, None), (100, None)]);
        t.swapoff_begin(0, |_| true).unwrap();
        assert_eq!(t.device_info(1).unwrap().prio, -2);
        t.swapoff_abort(0).unwrap();
        assert_eq!(t.device_info(0).unwrap().prio, -3);
        assert_eq!(t.total_swap_pages(), 198);
        assert_eq!(t.folio_alloc_swap(0).unwrap().ty, 1);
    }

    #[test]
    fn bad_pages_of_a_partition_are_never_used() {
        let mut p = SwapHeader::write(20, UUID, "").unwrap();
        p[1032..1036].copy_from_slice(&3u32.to_le_bytes());
        for (i, b) in [2u32, 5, 19].iter().enumerate() {
            p[1536 + 4 * i..1540 + 4 * i].copy_from_slice(&b.to_le_bytes());
        }
        let h = SwapHeader::parse(&p).unwrap();
        let t = SwapTable::new();
        assert_eq!(
            t.swapon("/f".into(), SwapKind::File, MemIo::boxed(), &h, None),
            Err(Errno::EINVAL)
        );
        let ty = t
            .swapon(
                "/dev/sdz1".into(),
                SwapKind::Partition,
                MemIo::boxed(),
                &h,
                None,
            )
            .unwrap();
        for b in [0, 2, 5, 19] {
            assert_eq!(t.swap_map_byte(e(ty, b)), Some(SWAP_MAP_BAD));
        }
        assert_eq!(t.total_swap_pages(), 16);
        let got: Vec<_> = core::iter::from_fn(|| t.folio_alloc_swap(0))
            .map(|e| e.offset)
            .collect();
        assert_eq!(
            got,
            [1, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]
        );
        assert_eq!(t.swapcache_prepare(e(ty, 2)), Err(Errno::ENOENT));
        assert_eq!(t.swap_duplicate(e(ty, 5)), Err(Errno::ENOENT));
        assert_eq!(t.swap_count(e(ty, 5)), 0);
        assert!(!t.has_cache(e(ty, 5)));
        assert!(t
            .proc_swaps()
            .contains("/dev/sdz1                               partition\t64\t\t64\t\t-2\n"));
    }

    #[test]
    fn reference_counts_and_cache_bit() {
        let t = table_with(&[(100, None)]);
        let s = t.folio_alloc_swap(0).unwrap();
        assert_eq!(t.swapcache_prepare(s), Err(Errno::EEXIST));
        t.swap_duplicate(s).unwrap();
        t.swap_duplicate(s).unwrap();
        assert_eq!((t.swap_count(s), t.has_cache(s)), (2, true));
        assert_eq!(t.swap_map_byte(s), Some(SWAP_HAS_CACHE | 2));
        t.put_swap_folio(s).unwrap();
        assert_eq!(t.put_swap_folio(s), Err(Errno::EINVAL));
        assert_eq!(t.free_swap_and_cache(s), Ok(false));
        // Swap-in: claim the cache bit, then the last pte goes.
        t.swapcache_prepare(s).unwrap();
        assert_eq!(t.free_swap_and_cache(s), Ok(true));
        assert_eq!(t.swap_map_byte(s), Some(SWAP_HAS_CACHE));
        assert_eq!(t.inuse_pages(0), Some(1));
        assert_eq!(t.swap_free(s), Err(Errno::EINVAL));
        t.swapcache_clear(s).unwrap();
        assert_eq!(t.swap_map_byte(s), Some(0));
        assert_eq!(t.inuse_pages(0), Some(0));
        assert_eq!(t.swapcache_prepare(s), Err(Errno::ENOENT));
        assert_eq!(t.swap_duplicate(s), Err(Errno::ENOENT));
    }

    #[test]
    fn counts_beyond_swap_map_max_continue() {
        let t = table_with(&[(100, None)]);
        let s = t.folio_alloc_swap(0).unwrap();
        for n in 1..=20_000u32 {
            t.swap_duplicate(s).unwrap();
            if n == 62 {
                assert_eq!(t.swap_map_byte(s), Some(SWAP_HAS_CACHE | 0x3e));
            }
            if n == 63 {
                assert_eq!(t.swap_map_byte(s), Some(SWAP_HAS_CACHE | COUNT_CONTINUED));
            }
        }
        assert_eq!(t.swap_count(s), 20_000);
        assert_eq!(
            t.swap_map_byte(s),
            Some(SWAP_HAS_CACHE | COUNT_CONTINUED | (20_000 % 63) as u8)
        );
        t.put_swap_folio(s).unwrap();
        for n in (0..20_000u32).rev() {
            t.swap_free(s).unwrap();
            assert_eq!(t.swap_count(s), n);
        }
        assert_eq!(t.swap_map_byte(s), Some(0));
        assert_eq!(t.nr_swap_pages(), 99);
    }

    #[test]
    fn next_fit_policy_scans_on_from_the_last_slot() {
        let t = table_with(&[(1100, None)]);
        t.set_alloc_policy(SwapAllocPolicy::NextFit);
        let a: Vec<_> = (0..3)
            .map(|c| t.folio_alloc_swap(c).unwrap().offset)
            .collect();
        assert_eq!(a, [1, 2, 3]);
        t.put_swap_folio(e(0, 1)).unwrap();
        assert_eq!(t.folio_alloc_swap(0).unwrap().offset, 4);
        for _ in 5..1100 {
            t.folio_alloc_swap(0).unwrap();
        }
        // Wrapped around to the freed slot.
        assert_eq!(t.folio_alloc_swap(0).unwrap().offset, 1);
        assert_eq!(t.folio_alloc_swap(0), None);
    }

    #[test]
    fn swap_io_goes_to_the_slot() {
        let t = table_with(&[(100, None)]);
        let s = t.folio_alloc_swap(0).unwrap();
        let page: Vec<u8> = (0..4096).map(|i| (i * 7 % 251) as u8).collect();
        t.swap_writepage(s, &page).unwrap();
        let mut back = alloc::vec![0u8; 4096];
        t.swap_readpage(s, &mut back).unwrap();
        assert_eq!(back, page);
        assert_eq!(t.swap_writepage(s, &page[..100]), Err(Errno::EINVAL));
        assert_eq!(t.swap_readpage(e(3, 1), &mut back), Err(Errno::EINVAL));
    }

    /// /proc/swaps as 6.18 printed it on our machine for two swap files of
    /// 16 MiB (type 0, priority 5) and 8 MiB (type 1, default priority),
    /// recorded with `cat -A /proc/swaps`: mm/swapfile.c `swap_show` pads
    /// the name to 40 columns and puts two tabs after numbers below 10^7.
    #[test]
    fn proc_swaps_matches_recorded_kernel_output() {
        let t = SwapTable::new();
        t.swapon(
            "/tmp/sw1".into(),
            SwapKind::File,
            MemIo::boxed(),
            &header(4096),
            Some(5),
        )
        .unwrap();
        t.swapon(
            "/tmp/sw2".into(),
            SwapKind::File,
            MemIo::boxed(),
            &header(2048),
            None,
        )
        .unwrap();
        let want = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n\
                    /tmp/sw1                                file\t\t16380\t\t0\t\t5\n\
                    /tmp/sw2                                file\t\t8188\t\t0\t\t-2\n";
        assert_eq!(t.proc_swaps(), want);
        for _ in 0..3 {
            t.folio_alloc_swap(0).unwrap();
        }
        assert!(t.proc_swaps().contains("file\t\t16380\t\t12\t\t5\n"));
        // Long and odd names: escapes, one space at least.
        let long = "/a/very/long/path/to/a/swap/file/that/is/long".to_string();
        let t = SwapTable::new();
        t.swapon(
            long.clone(),
            SwapKind::File,
            MemIo::boxed(),
            &header(10),
            None,
        )
        .unwrap();
        t.swapon(
            "/x y".into(),
            SwapKind::File,
            MemIo::boxed(),
            &header(10),
            None,
        )
        .unwrap();
        let out = t.proc_swaps();
        assert!(out.contains(&alloc::format!("{long} file\t\t36\t\t0\t\t-2\n")));
        assert!(out.contains(&alloc::format!("/x\\040y{}file", " ".repeat(33))));
    }

    #[derive(Clone, Debug)]
    enum Op {
        Alloc(usize),
        Dup(usize, u32),
        Free(usize),
        Prepare(usize),
        Clear(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0usize..3).prop_map(Op::Alloc),
            3 => (any::<usize>(), 1u32..80).prop_map(|(i, n)| Op::Dup(i, n)),
            3 => any::<usize>().prop_map(Op::Free),
            1 => any::<usize>().prop_map(Op::Prepare),
            2 => any::<usize>().prop_map(Op::Clear),
        ]
    }

    fn expected_byte(count: u32, cache: bool) -> u8 {
        let low = (count % 63) as u8;
        let cont = if count >= 63 { COUNT_CONTINUED } else { 0 };
        low | cont | if cache { SWAP_HAS_CACHE } else { 0 }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn swap_map_matches_a_model(ops in proptest::collection::vec(op(), 1..300)) {
            // Two small devices with bad pages, one of them on a partition.
            let mut p = SwapHeader::write(40, UUID, "").unwrap();
            p[1032..1036].copy_from_slice(&2u32.to_le_bytes());
            p[1536..1540].copy_from_slice(&7u32.to_le_bytes());
            p[1540..1544].copy_from_slice(&39u32.to_le_bytes());
            let bad = SwapHeader::parse(&p).unwrap();
            let t = SwapTable::new();
            t.swapon("/p".into(), SwapKind::Partition, MemIo::boxed(), &bad, Some(1)).unwrap();
            t.swapon("/f".into(), SwapKind::File, MemIo::boxed(), &header(30), Some(1)).unwrap();
            let total = 37 + 29;
            prop_assert_eq!(t.total_swap_pages(), total);
            let mut model: HashMap<SwapEntry, (u32, bool)> = HashMap::new();
            let mut order: Vec<SwapEntry> = Vec::new();
            for op in ops {
                let pick = |i: usize| (!order.is_empty()).then(|| order[i % order.len()]);
                match op {
                    Op::Alloc(cpu) => match t.folio_alloc_swap(cpu) {
                        Some(s) => {
                            prop_assert!(!model.contains_key(&s), "{:?} handed out twice", s);
                            prop_assert!(s.offset != 0);
                            prop_assert!(!(s.ty == 0 && (s.offset == 7 || s.offset == 39)));
                            model.insert(s, (0, true));
                            order.push(s);
                        }
                        None => prop_assert_eq!(model.len() as i64, total),
                    },
                    Op::Dup(i, n) => if let Some(s) = pick(i) {
                        for _ in 0..n {
                            let r = t.swap_duplicate(s);
                            match model.get_mut(&s) {
                                Some(m) => { prop_assert_eq!(r, Ok(())); m.0 += 1; }
                                None => prop_assert_eq!(r, Err(Errno::ENOENT)),
                            }
                        }
                    },
                    Op::Free(i) => if let Some(s) = pick(i) {
                        let r = t.swap_free(s);
                        match model.get_mut(&s) {
                            Some(m) if m.0 > 0 => { prop_assert_eq!(r, Ok(())); m.0 -= 1; }
                            _ => prop_assert_eq!(r, Err(Errno::EINVAL)),
                        }
                    },
                    Op::Prepare(i) => if let Some(s) = pick(i) {
                        let r = t.swapcache_prepare(s);
                        match model.get_mut(&s) {
                            Some(m) if m.1 => prop_assert_eq!(r, Err(Errno::EEXIST)),
                            Some(m) => { prop_assert_eq!(r, Ok(())); m.1 = true; }
                            None => prop_assert_eq!(r, Err(Errno::ENOENT)),
                        }
                    },
                    Op::Clear(i) => if let Some(s) = pick(i) {
                        let r = t.put_swap_folio(s);
                        match model.get_mut(&s) {
                            Some(m) if m.1 => { prop_assert_eq!(r, Ok(())); m.1 = false; }
                            _ => prop_assert_eq!(r, Err(Errno::EINVAL)),
                        }
                    },
                }
                model.retain(|_, m| m.0 > 0 || m.1);
                order.retain(|s| model.contains_key(s));
                for (ty, max) in [(0u8, 40u64), (1, 30)] {
                    for off in 0..max {
                        let s = e(ty, off);
                        let want = if off == 0 || (ty == 0 && (off == 7 || off == 39)) {
                            SWAP_MAP_BAD
                        } else {
                            model.get(&s).map_or(0, |&(c, h)| expected_byte(c, h))
                        };
                        prop_assert_eq!(t.swap_map_byte(s), Some(want), "slot {:?}", s);
                        if let Some(&(c, h)) = model.get(&s) {
                            prop_assert_eq!(t.swap_count(s), c);
                            prop_assert_eq!(t.has_cache(s), h);
                        }
                    }
                    let used = model.keys().filter(|s| s.ty == ty).count() as u64;
                    prop_assert_eq!(t.inuse_pages(ty), Some(used));
                }
                prop_assert_eq!(t.nr_swap_pages(), total - model.len() as i64);
            }
        }
    }
}
