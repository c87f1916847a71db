//! Tracepoints: the events Linux traces in memory management, under Linux
//! 6.18's names and with its fields (include/trace/events/kmem.h, vmscan.h,
//! filemap.h, oom.h, tlb.h; arch/x86/include/asm/trace/exceptions.h), plus
//! lmm's own where Linux has none (system `lmm`: buddy split and merge, swap
//! reads and writes). Mirrors kernel/trace's ring buffer and event files.
//!
//! A [`Trace`] belongs to one machine (shared through an `Arc` with its
//! zones). It is off by default: a call site then costs one relaxed load of
//! the enabled-event mask and a branch, and builds no event. When on, every
//! tracepoint hit advances a simulated clock by [`TICK_NS`], whether or not
//! the filter keeps the event, so the same inputs give the same bytes and a
//! filtered trace is exactly the matching lines of the full one.
//!
//! Simplifications (said where they matter below): one buffer for all CPUs
//! ordered by the one clock (Linux keeps per-CPU buffers with per-CPU
//! clocks and `trace-cmd report` merges them); `%pS` call sites print the
//! Rust source location of the caller, since lmm has no kernel symbols;
//! `%p` pointers print unhashed, as `trace-cmd report` prints them; `ip`
//! of a user fault is known only for instruction fetches, since the
//! software MMU runs no instructions.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use core::panic::Location;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::gfp::Gfp;
use crate::mmzone::MigrateType;
use crate::page_alloc::CpuId;
use crate::types::{Pfn, PAGE_SHIFT};

/// Simulated nanoseconds each tracepoint hit takes while tracing is on.
pub const TICK_NS: u64 = 1000;

/// `sizeof(struct page)` on x86-64, for the `page=` pointers.
const STRUCT_PAGE_BYTES: u64 = 64;

/// `pageblock_order` with 4 KiB pages and 2 MiB huge pages.
const PAGEBLOCK_ORDER: u32 = 9;

macro_rules! events {
    ($($id:ident => $sys:literal : $name:literal,)*) => {
        /// The tracepoints lmm has, one bit each in an [`EventMask`].
        #[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u8)]
        pub enum EventId { $($id,)* }

        /// Every tracepoint: id, system, name (as in /sys/kernel/tracing/events).
        pub const EVENTS: &[(EventId, &str, &str)] = &[$((EventId::$id, $sys, $name),)*];
    };
}

events! {
    MmPageAlloc => "kmem": "mm_page_alloc",
    MmPageFree => "kmem": "mm_page_free",
    MmPageAllocZoneLocked => "kmem": "mm_page_alloc_zone_locked",
    MmPagePcpuDrain => "kmem": "mm_page_pcpu_drain",
    MmPageAllocExtfrag => "kmem": "mm_page_alloc_extfrag",
    Kmalloc => "kmem": "kmalloc",
    Kfree => "kmem": "kfree",
    PageFaultUser => "exceptions": "page_fault_user",
    MmFilemapAddToPageCache => "filemap": "mm_filemap_add_to_page_cache",
    MmVmscanKswapdSleep => "vmscan": "mm_vmscan_kswapd_sleep",
    MmVmscanKswapdWake => "vmscan": "mm_vmscan_kswapd_wake",
    MmVmscanDirectReclaimBegin => "vmscan": "mm_vmscan_direct_reclaim_begin",
    MmVmscanDirectReclaimEnd => "vmscan": "mm_vmscan_direct_reclaim_end",
    MmVmscanLruShrinkInactive => "vmscan": "mm_vmscan_lru_shrink_inactive",
    MmVmscanWriteFolio => "vmscan": "mm_vmscan_write_folio",
    MarkVictim => "oom": "mark_victim",
    TlbFlush => "tlb": "tlb_flush",
    BuddySplit => "lmm": "buddy_split",
    BuddyMerge => "lmm": "buddy_merge",
    SwapReadFolio => "lmm": "swap_read_folio",
    SwapWriteFolio => "lmm": "swap_write_folio",
}

impl EventId {
    /// The event's name (`trace-cmd report` prints it without the system).
    pub fn name(self) -> &'static str {
        EVENTS[self as usize].2
    }
    /// Its system.
    pub fn system(self) -> &'static str {
        EVENTS[self as usize].1
    }
}

/// A set of enabled events.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub struct EventMask(pub u64);

impl EventMask {
    /// Every event.
    pub const ALL: EventMask = EventMask((1u64 << EVENTS.len()) - 1);

    /// Whether `id` is in the set.
    pub fn has(self, id: EventId) -> bool {
        self.0 & (1 << id as u64) != 0
    }

    /// Parses an ftrace-style event list (`set_event`, `trace-cmd -e`):
    /// comma-separated `system:event` terms where either part may be a glob
    /// (`*`, `?`), `system` or `system:` alone for a whole system, and a
    /// bare `event` glob for that event in any system. A term that matches
    /// nothing is an error naming it and the known systems.
    pub fn parse(spec: &str) -> Result<EventMask, String> {
        let mut mask = 0u64;
        for term in spec.split(',').map(str::trim) {
            if term.is_empty() {
                return Err(alloc::format!("empty event in {spec:?}"));
            }
            let (sys, name) = match term.split_once(':') {
                Some((s, "")) => (s, "*"),
                Some((s, n)) => (s, n),
                None if EVENTS.iter().any(|e| e.1 == term) => (term, "*"),
                None => ("*", term),
            };
            let hit: u64 = EVENTS
                .iter()
                .filter(|e| glob(sys, e.1) && glob(name, e.2))
                .fold(0, |m, e| m | 1 << e.0 as u64);
            if hit == 0 {
                let mut systems: Vec<&str> = EVENTS.iter().map(|e| e.1).collect();
                systems.dedup();
                return Err(alloc::format!(
                    "unknown trace event {term:?}: no event matches (systems: {}; e.g. kmem:mm_page_alloc, vmscan:*)",
                    systems.join(", ")
                ));
            }
            mask |= hit;
        }
        Ok(EventMask(mask))
    }
}

/// Glob match with `*` (any run) and `?` (any one character).
fn glob(pat: &str, s: &str) -> bool {
    let (p, s) = (pat.as_bytes(), s.as_bytes());
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < s.len() {
        if i < p.len() && (p[i] == b'?' || p[i] == s[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == b'*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == b'*')
}

/// `enum tlb_flush_reason` (include/linux/mm_types.h).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TlbFlushReason {
    /// TLB_FLUSH_ON_TASK_SWITCH.
    OnTaskSwitch = 0,
    /// TLB_REMOTE_SHOOTDOWN: another CPU asked.
    RemoteShootdown = 1,
    /// TLB_LOCAL_SHOOTDOWN.
    LocalShootdown = 2,
    /// TLB_LOCAL_MM_SHOOTDOWN: this CPU changed an mm it runs.
    LocalMmShootdown = 3,
    /// TLB_REMOTE_SEND_IPI.
    RemoteSendIpi = 4,
}

impl TlbFlushReason {
    /// The name `__print_symbolic` gives it (include/trace/events/tlb.h).
    pub fn name(self) -> &'static str {
        match self {
            TlbFlushReason::OnTaskSwitch => "flush on task switch",
            TlbFlushReason::RemoteShootdown => "remote shootdown",
            TlbFlushReason::LocalShootdown => "local shootdown",
            TlbFlushReason::LocalMmShootdown => "local mm shootdown",
            TlbFlushReason::RemoteSendIpi => "remote ipi send",
        }
    }
}

/// `TLB_FLUSH_ALL` as the `pages` field prints it.
pub const TLB_FLUSH_ALL: i64 = -1;

/// What `mm_vmscan_lru_shrink_inactive` reports of one pass
/// (`struct reclaim_stat` and the pass's counts).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct ShrinkStat {
    /// Node.
    pub nid: u32,
    /// Pages isolated from the list.
    pub nr_scanned: u64,
    /// Pages freed.
    pub nr_reclaimed: u64,
    /// Dirty pages met (lmm writes them at once: the pages written).
    pub nr_dirty: u64,
    /// Pages activated, anon.
    pub nr_activate_anon: u64,
    /// Pages activated, file.
    pub nr_activate_file: u64,
    /// Scan priority.
    pub priority: i32,
    /// The file list (else anon).
    pub file: bool,
}

/// What `mark_victim` reports of the OOM killer's victim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Victim {
    /// pid.
    pub pid: u32,
    /// comm.
    pub comm: String,
    /// `total_vm`, pages.
    pub total_vm: u64,
    /// MM_ANONPAGES.
    pub anon_rss: u64,
    /// MM_FILEPAGES.
    pub file_rss: u64,
    /// MM_SHMEMPAGES.
    pub shmem_rss: u64,
    /// uid.
    pub uid: u32,
    /// `mm_pgtables_bytes`.
    pub pgtables_bytes: u64,
    /// `oom_score_adj`.
    pub oom_score_adj: i16,
}

/// One event with its fields (`TP_STRUCT__entry`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// `kmem:mm_page_alloc`; `pfn` is `None` for a failed allocation.
    MmPageAlloc {
        pfn: Option<Pfn>,
        order: u8,
        gfp: Gfp,
        migratetype: MigrateType,
    },
    /// `kmem:mm_page_free`: a block's last reference went.
    MmPageFree { pfn: Pfn, order: u8 },
    /// `kmem:mm_page_alloc_zone_locked`: a block taken from the buddy lists
    /// under the zone lock, `percpu_refill` when it goes to a per-CPU list.
    MmPageAllocZoneLocked {
        pfn: Pfn,
        order: u8,
        migratetype: MigrateType,
        percpu_refill: bool,
    },
    /// `kmem:mm_page_pcpu_drain`: a block from a per-CPU list back to buddy.
    MmPagePcpuDrain {
        pfn: Pfn,
        order: u8,
        migratetype: MigrateType,
    },
    /// `kmem:mm_page_alloc_extfrag`: an allocation fell back to another
    /// migrate type's block; `change_ownership` when its pageblock is now
    /// the allocation's type.
    MmPageAllocExtfrag {
        pfn: Pfn,
        alloc_order: u8,
        fallback_order: u8,
        alloc_migratetype: MigrateType,
        fallback_migratetype: MigrateType,
        change_ownership: bool,
    },
    /// `kmem:kmalloc`; `ptr` is the object's physical address.
    Kmalloc {
        call_site: &'static Location<'static>,
        ptr: u64,
        bytes_req: u64,
        bytes_alloc: u64,
        gfp: Gfp,
        node: i32,
    },
    /// `kmem:kfree`; `ptr` is the object's physical address.
    Kfree {
        call_site: &'static Location<'static>,
        ptr: u64,
    },
    /// `exceptions:page_fault_user`.
    PageFaultUser {
        address: u64,
        ip: u64,
        error_code: u64,
    },
    /// `filemap:mm_filemap_add_to_page_cache`.
    MmFilemapAddToPageCache {
        dev: (u32, u32),
        ino: u64,
        pfn: Pfn,
        index: u64,
        order: u8,
    },
    /// `vmscan:mm_vmscan_kswapd_sleep`.
    MmVmscanKswapdSleep { nid: u32 },
    /// `vmscan:mm_vmscan_kswapd_wake`.
    MmVmscanKswapdWake { nid: u32, zid: u32, order: u8 },
    /// `vmscan:mm_vmscan_direct_reclaim_begin`.
    MmVmscanDirectReclaimBegin { order: u8, gfp: Gfp },
    /// `vmscan:mm_vmscan_direct_reclaim_end`.
    MmVmscanDirectReclaimEnd { nr_reclaimed: u64 },
    /// `vmscan:mm_vmscan_lru_shrink_inactive`.
    MmVmscanLruShrinkInactive(ShrinkStat),
    /// `vmscan:mm_vmscan_write_folio`: reclaim wrote a page out.
    MmVmscanWriteFolio { pfn: Pfn, file: bool },
    /// `oom:mark_victim`.
    MarkVictim(Victim),
    /// `tlb:tlb_flush`; `pages` is [`TLB_FLUSH_ALL`] for a whole-mm flush.
    TlbFlush { reason: TlbFlushReason, pages: i64 },
    /// `lmm:buddy_split`: a free block of `order` halved (`expand`); its
    /// upper half goes back on the free lists.
    BuddySplit {
        pfn: Pfn,
        order: u8,
        migratetype: MigrateType,
    },
    /// `lmm:buddy_merge`: a freed block of `order` joined its free buddy
    /// into one of `order + 1` (`__free_one_page`).
    BuddyMerge { pfn: Pfn, buddy: Pfn, order: u8 },
    /// `lmm:swap_read_folio`: a page read in from swap slot (type, offset).
    SwapReadFolio { pfn: Pfn, ty: u32, offset: u64 },
    /// `lmm:swap_write_folio`: a page written to swap slot (type, offset).
    SwapWriteFolio { pfn: Pfn, ty: u32, offset: u64 },
}

/// Where the kernel's addresses are, for the pointers events print.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Address of the struct page of PFN 0 (`vmemmap`).
    pub vmemmap: u64,
    /// Start of the direct map (`PAGE_OFFSET`), with the physical address
    /// it maps first.
    pub page_offset: u64,
    /// Physical address at `page_offset` (the DRAM base).
    pub phys_base: u64,
}

impl Default for Layout {
    /// x86-64 with 4-level tables and KASLR off.
    fn default() -> Self {
        Layout {
            vmemmap: crate::arch::layout::X86_64_VMEMMAP_START_L4,
            page_offset: 0xffff_8880_0000_0000,
            phys_base: 0,
        }
    }
}

impl Layout {
    fn page(&self, pfn: Pfn) -> u64 {
        self.vmemmap
            .wrapping_add(pfn.0.wrapping_mul(STRUCT_PAGE_BYTES))
    }
    fn virt(&self, phys: u64) -> u64 {
        self.page_offset
            .wrapping_add(phys.wrapping_sub(self.phys_base))
    }
}

fn migratetype(mt: MigrateType) -> i32 {
    mt as i32
}

/// `show_reclaim_flags(trace_reclaim_flags(file))`.
fn reclaim_flags(file: bool) -> &'static str {
    if file {
        "RECLAIM_WB_FILE|RECLAIM_WB_ASYNC"
    } else {
        "RECLAIM_WB_ANON|RECLAIM_WB_ASYNC"
    }
}

/// `show_gfp_flags`: the `%pGg` names, `none` for 0.
fn gfp_flags(g: Gfp) -> String {
    g.describe()
}

/// A kernel pointer for the JSON args: hex text, since JSON readers hold
/// numbers as doubles and would round addresses above 2^53.
fn hex(v: u64) -> String {
    alloc::format!("{v:#x}")
}

fn location(l: &Location<'_>) -> String {
    alloc::format!("{}:{}", l.file(), l.line())
}

impl Event {
    /// The tracepoint this event comes from.
    pub fn id(&self) -> EventId {
        use EventId as I;
        match self {
            Event::MmPageAlloc { .. } => I::MmPageAlloc,
            Event::MmPageFree { .. } => I::MmPageFree,
            Event::MmPageAllocZoneLocked { .. } => I::MmPageAllocZoneLocked,
            Event::MmPagePcpuDrain { .. } => I::MmPagePcpuDrain,
            Event::MmPageAllocExtfrag { .. } => I::MmPageAllocExtfrag,
            Event::Kmalloc { .. } => I::Kmalloc,
            Event::Kfree { .. } => I::Kfree,
            Event::PageFaultUser { .. } => I::PageFaultUser,
            Event::MmFilemapAddToPageCache { .. } => I::MmFilemapAddToPageCache,
            Event::MmVmscanKswapdSleep { .. } => I::MmVmscanKswapdSleep,
            Event::MmVmscanKswapdWake { .. } => I::MmVmscanKswapdWake,
            Event::MmVmscanDirectReclaimBegin { .. } => I::MmVmscanDirectReclaimBegin,
            Event::MmVmscanDirectReclaimEnd { .. } => I::MmVmscanDirectReclaimEnd,
            Event::MmVmscanLruShrinkInactive(_) => I::MmVmscanLruShrinkInactive,
            Event::MmVmscanWriteFolio { .. } => I::MmVmscanWriteFolio,
            Event::MarkVictim(_) => I::MarkVictim,
            Event::TlbFlush { .. } => I::TlbFlush,
            Event::BuddySplit { .. } => I::BuddySplit,
            Event::BuddyMerge { .. } => I::BuddyMerge,
            Event::SwapReadFolio { .. } => I::SwapReadFolio,
            Event::SwapWriteFolio { .. } => I::SwapWriteFolio,
        }
    }

    /// The event's fields as its `TP_printk` formats them.
    pub fn print(&self, l: &Layout) -> String {
        let mut o = String::new();
        let page = |pfn: Pfn| alloc::format!("page={:#x} pfn={:#x}", l.page(pfn), pfn.0);
        let _ = match self {
            Event::MmPageAlloc {
                pfn,
                order,
                gfp,
                migratetype: mt,
            } => {
                match pfn {
                    Some(p) => o.push_str(&page(*p)),
                    None => o.push_str("page=(null) pfn=0x0"),
                }
                write!(
                    o,
                    " order={order} migratetype={} gfp_flags={}",
                    migratetype(*mt),
                    gfp_flags(*gfp)
                )
            }
            Event::MmPageFree { pfn, order } => write!(o, "{} order={order}", page(*pfn)),
            Event::MmPageAllocZoneLocked {
                pfn,
                order,
                migratetype: mt,
                percpu_refill,
            } => write!(
                o,
                "{} order={order} migratetype={} percpu_refill={}",
                page(*pfn),
                migratetype(*mt),
                u8::from(*percpu_refill)
            ),
            Event::MmPagePcpuDrain {
                pfn,
                order,
                migratetype: mt,
            } => write!(
                o,
                "{} order={order} migratetype={}",
                page(*pfn),
                migratetype(*mt)
            ),
            Event::MmPageAllocExtfrag {
                pfn,
                alloc_order,
                fallback_order,
                alloc_migratetype,
                fallback_migratetype,
                change_ownership,
            } => write!(
                o,
                "{} alloc_order={alloc_order} fallback_order={fallback_order} pageblock_order={PAGEBLOCK_ORDER} alloc_migratetype={} fallback_migratetype={} fragmenting={} change_ownership={}",
                page(*pfn),
                migratetype(*alloc_migratetype),
                migratetype(*fallback_migratetype),
                u8::from((*fallback_order as u32) < PAGEBLOCK_ORDER),
                u8::from(*change_ownership)
            ),
            Event::Kmalloc {
                call_site,
                ptr,
                bytes_req,
                bytes_alloc,
                gfp,
                node,
            } => write!(
                o,
                "call_site={} ptr={:#x} bytes_req={bytes_req} bytes_alloc={bytes_alloc} gfp_flags={} node={node} accounted={}",
                location(call_site),
                l.virt(*ptr),
                gfp_flags(*gfp),
                gfp.contains(Gfp::ACCOUNT)
            ),
            Event::Kfree { call_site, ptr } => write!(
                o,
                "call_site={} ptr={:#x}",
                location(call_site),
                l.virt(*ptr)
            ),
            Event::PageFaultUser {
                address,
                ip,
                error_code,
            } => write!(o, "address={address:#x} ip={ip:#x} error_code={error_code:#x}"),
            Event::MmFilemapAddToPageCache {
                dev,
                ino,
                pfn,
                index,
                order,
            } => write!(
                o,
                "dev {}:{} ino {ino:x} pfn={:#x} ofs={} order={order}",
                dev.0,
                dev.1,
                pfn.0,
                index << PAGE_SHIFT
            ),
            Event::MmVmscanKswapdSleep { nid } => write!(o, "nid={nid}"),
            Event::MmVmscanKswapdWake { nid, order, .. } => write!(o, "nid={nid} order={order}"),
            Event::MmVmscanDirectReclaimBegin { order, gfp } => {
                write!(o, "order={order} gfp_flags={}", gfp_flags(*gfp))
            }
            Event::MmVmscanDirectReclaimEnd { nr_reclaimed } => {
                write!(o, "nr_reclaimed={nr_reclaimed}")
            }
            Event::MmVmscanLruShrinkInactive(s) => write!(
                o,
                "nid={} nr_scanned={} nr_reclaimed={} nr_dirty={} nr_writeback=0 nr_congested=0 nr_immediate=0 nr_activate_anon={} nr_activate_file={} nr_ref_keep=0 nr_unmap_fail=0 priority={} flags={}",
                s.nid,
                s.nr_scanned,
                s.nr_reclaimed,
                s.nr_dirty,
                s.nr_activate_anon,
                s.nr_activate_file,
                s.priority,
                reclaim_flags(s.file)
            ),
            Event::MmVmscanWriteFolio { pfn, file } => {
                write!(o, "{} flags={}", page(*pfn), reclaim_flags(*file))
            }
            Event::MarkVictim(v) => write!(
                o,
                "pid={} comm={} total-vm={}kB anon-rss={}kB file-rss:{}kB shmem-rss:{}kB uid={} pgtables={}kB oom_score_adj={}",
                v.pid,
                v.comm,
                v.total_vm << (PAGE_SHIFT - 10),
                v.anon_rss << (PAGE_SHIFT - 10),
                v.file_rss << (PAGE_SHIFT - 10),
                v.shmem_rss << (PAGE_SHIFT - 10),
                v.uid,
                v.pgtables_bytes >> 10,
                v.oom_score_adj
            ),
            Event::TlbFlush { reason, pages } => write!(
                o,
                "pages:{pages} reason:{} ({})",
                reason.name(),
                *reason as i32
            ),
            Event::BuddySplit {
                pfn,
                order,
                migratetype: mt,
            } => write!(
                o,
                "{} order={order} migratetype={}",
                page(*pfn),
                migratetype(*mt)
            ),
            Event::BuddyMerge { pfn, buddy, order } => write!(
                o,
                "pfn={:#x} buddy_pfn={:#x} order={order}",
                pfn.0, buddy.0
            ),
            Event::SwapReadFolio { pfn, ty, offset } | Event::SwapWriteFolio { pfn, ty, offset } => {
                write!(o, "{} type={ty} offset={offset}", page(*pfn))
            }
        };
        o
    }

    /// The event's fields as typed JSON values, for the Perfetto args.
    pub fn args(&self, l: &Layout) -> serde_json::Map<String, serde_json::Value> {
        use serde_json::json;
        let v = match self {
            Event::MmPageAlloc {
                pfn,
                order,
                gfp,
                migratetype: mt,
            } => json!({
                "page": hex(pfn.map_or(0, |p| l.page(p))),
                "pfn": pfn.map(|p| p.0).unwrap_or(0),
                "order": order,
                "migratetype": migratetype(*mt),
                "gfp_flags": gfp_flags(*gfp),
            }),
            Event::MmPageFree { pfn, order } => json!({"pfn": pfn.0, "order": order}),
            Event::MmPageAllocZoneLocked {
                pfn,
                order,
                migratetype: mt,
                percpu_refill,
            } => json!({
                "pfn": pfn.0, "order": order, "migratetype": migratetype(*mt),
                "percpu_refill": u8::from(*percpu_refill),
            }),
            Event::MmPagePcpuDrain {
                pfn,
                order,
                migratetype: mt,
            } => json!({"pfn": pfn.0, "order": order, "migratetype": migratetype(*mt)}),
            Event::MmPageAllocExtfrag {
                pfn,
                alloc_order,
                fallback_order,
                alloc_migratetype,
                fallback_migratetype,
                change_ownership,
            } => json!({
                "pfn": pfn.0, "alloc_order": alloc_order, "fallback_order": fallback_order,
                "alloc_migratetype": migratetype(*alloc_migratetype),
                "fallback_migratetype": migratetype(*fallback_migratetype),
                "change_ownership": u8::from(*change_ownership),
            }),
            Event::Kmalloc {
                call_site,
                ptr,
                bytes_req,
                bytes_alloc,
                gfp,
                node,
            } => json!({
                "call_site": location(call_site), "ptr": hex(l.virt(*ptr)),
                "bytes_req": bytes_req, "bytes_alloc": bytes_alloc,
                "gfp_flags": gfp_flags(*gfp), "node": node,
            }),
            Event::Kfree { call_site, ptr } => {
                json!({"call_site": location(call_site), "ptr": hex(l.virt(*ptr))})
            }
            Event::PageFaultUser {
                address,
                ip,
                error_code,
            } => json!({"address": address, "ip": ip, "error_code": error_code}),
            Event::MmFilemapAddToPageCache {
                dev,
                ino,
                pfn,
                index,
                order,
            } => json!({
                "dev": alloc::format!("{}:{}", dev.0, dev.1), "ino": ino, "pfn": pfn.0,
                "ofs": index << PAGE_SHIFT, "order": order,
            }),
            Event::MmVmscanKswapdSleep { nid } => json!({"nid": nid}),
            Event::MmVmscanKswapdWake { nid, zid, order } => {
                json!({"nid": nid, "zid": zid, "order": order})
            }
            Event::MmVmscanDirectReclaimBegin { order, gfp } => {
                json!({"order": order, "gfp_flags": gfp_flags(*gfp)})
            }
            Event::MmVmscanDirectReclaimEnd { nr_reclaimed } => {
                json!({"nr_reclaimed": nr_reclaimed})
            }
            Event::MmVmscanLruShrinkInactive(s) => json!({
                "nid": s.nid, "nr_scanned": s.nr_scanned, "nr_reclaimed": s.nr_reclaimed,
                "nr_dirty": s.nr_dirty, "nr_activate_anon": s.nr_activate_anon,
                "nr_activate_file": s.nr_activate_file, "priority": s.priority,
                "flags": reclaim_flags(s.file),
            }),
            Event::MmVmscanWriteFolio { pfn, file } => {
                json!({"pfn": pfn.0, "flags": reclaim_flags(*file)})
            }
            Event::MarkVictim(v) => json!({
                "pid": v.pid, "comm": v.comm, "total_vm_kb": v.total_vm << (PAGE_SHIFT - 10),
                "anon_rss_kb": v.anon_rss << (PAGE_SHIFT - 10),
                "file_rss_kb": v.file_rss << (PAGE_SHIFT - 10),
                "shmem_rss_kb": v.shmem_rss << (PAGE_SHIFT - 10),
                "uid": v.uid, "pgtables_kb": v.pgtables_bytes >> 10,
                "oom_score_adj": v.oom_score_adj,
            }),
            Event::TlbFlush { reason, pages } => {
                json!({"pages": pages, "reason": reason.name()})
            }
            Event::BuddySplit {
                pfn,
                order,
                migratetype: mt,
            } => json!({"pfn": pfn.0, "order": order, "migratetype": migratetype(*mt)}),
            Event::BuddyMerge { pfn, buddy, order } => {
                json!({"pfn": pfn.0, "buddy_pfn": buddy.0, "order": order})
            }
            Event::SwapReadFolio { pfn, ty, offset }
            | Event::SwapWriteFolio { pfn, ty, offset } => {
                json!({"pfn": pfn.0, "type": ty, "offset": offset})
            }
        };
        match v {
            serde_json::Value::Object(m) => m,
            _ => serde_json::Map::new(),
        }
    }
}

/// A task as the trace names it (`comm-pid`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task {
    /// pid (0 for the idle task and lmm's kernel threads, which have none).
    pub pid: u32,
    /// comm.
    pub comm: String,
}

/// One recorded event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Simulated time, ns.
    pub ts_ns: u64,
    /// The CPU it happened on.
    pub cpu: u32,
    /// Index of the task in [`TraceLog::tasks`].
    pub task: u32,
    /// The event.
    pub event: Event,
}

/// One sample of a counter track (Perfetto `"ph":"C"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counter {
    /// Simulated time, ns.
    pub ts_ns: u64,
    /// The process the track belongs to (0: the machine).
    pub pid: u32,
    /// Track name.
    pub name: String,
    /// Series and their values.
    pub values: Vec<(String, u64)>,
}

/// Everything a trace recorded, taken out of the machine to print.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceLog {
    /// CPUs of the machine.
    pub ncpus: usize,
    /// Address layout for the pointers.
    pub layout: Layout,
    /// The tasks records point to.
    pub tasks: Vec<Task>,
    /// The events, in time order.
    pub records: Vec<Record>,
    /// The counter samples, in time order.
    pub counters: Vec<Counter>,
}

struct Buffer {
    clock_ns: u64,
    /// The CPU of the last event that named one.
    last_cpu: usize,
    /// Per CPU: the task running there (index into `log.tasks`).
    current: Vec<u32>,
    last_sample_ns: Option<u64>,
    log: TraceLog,
}

impl Buffer {
    fn intern(&mut self, pid: u32, comm: &str) -> u32 {
        match self
            .log
            .tasks
            .iter()
            .position(|t| t.pid == pid && t.comm == comm)
        {
            Some(i) => i as u32,
            None => {
                self.log.tasks.push(Task {
                    pid,
                    comm: String::from(comm),
                });
                (self.log.tasks.len() - 1) as u32
            }
        }
    }
    fn current(&mut self, cpu: usize) -> u32 {
        if cpu >= self.current.len() {
            self.current.resize(cpu + 1, 0);
        }
        self.current[cpu]
    }
}

/// A machine's trace buffer and its switch (`/sys/kernel/tracing`).
pub struct Trace {
    mask: AtomicU64,
    buf: spin::Mutex<Buffer>,
}

impl Default for Trace {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for Trace {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Trace")
            .field("mask", &EventMask(self.mask.load(Relaxed)))
            .finish()
    }
}

/// The task a CPU ran before [`Trace::switch_to`], to put back.
#[derive(Copy, Clone, Debug)]
pub struct Prev(Option<u32>);

impl Trace {
    /// A trace that is off, its clock at 0, every CPU running `<idle>-0`.
    pub fn new() -> Self {
        let mut log = TraceLog::default();
        log.tasks.push(Task {
            pid: 0,
            comm: String::from("<idle>"),
        });
        Trace {
            mask: AtomicU64::new(0),
            buf: spin::Mutex::new(Buffer {
                clock_ns: 0,
                last_cpu: 0,
                current: Vec::new(),
                last_sample_ns: None,
                log,
            }),
        }
    }

    /// Turns on the events of `mask` (none turns tracing off).
    pub fn enable(&self, mask: EventMask) {
        self.mask.store(mask.0 & EventMask::ALL.0, Relaxed);
    }

    /// Whether tracing is on.
    #[inline(always)]
    pub fn is_on(&self) -> bool {
        self.mask.load(Relaxed) != 0
    }

    /// Sets the machine's CPU count and address layout (at boot).
    pub fn set_machine(&self, ncpus: usize, layout: Layout) {
        let mut b = self.buf.lock();
        b.log.ncpus = b.log.ncpus.max(ncpus);
        b.log.layout = layout;
    }

    /// A tracepoint: when tracing is on, advances the clock and records
    /// the event `f` builds if the filter keeps it; when off, one relaxed
    /// load and nothing else.
    #[inline(always)]
    pub fn emit<F: FnOnce() -> Event>(&self, cpu: CpuId, f: F) {
        if self.mask.load(Relaxed) != 0 {
            self.record(Some(cpu), f());
        }
    }

    /// [`Self::emit`] for code that does not know its CPU (the buddy
    /// lists under the zone lock): the event goes on the CPU of the last
    /// event or context switch that named one, since the simulator runs
    /// one CPU at a time.
    #[inline(always)]
    pub fn emit_here<F: FnOnce() -> Event>(&self, f: F) {
        if self.mask.load(Relaxed) != 0 {
            self.record(None, f());
        }
    }

    #[cold]
    #[inline(never)]
    fn record(&self, cpu: Option<CpuId>, event: Event) {
        let mask = EventMask(self.mask.load(Relaxed));
        let mut b = self.buf.lock();
        b.clock_ns += TICK_NS;
        let cpu = cpu.map_or(b.last_cpu, |c| c.0);
        b.last_cpu = cpu;
        if mask.has(event.id()) {
            let task = b.current(cpu);
            let ts_ns = b.clock_ns;
            b.log.records.push(Record {
                ts_ns,
                cpu: cpu as u32,
                task,
                event,
            });
        }
    }

    /// Puts task `pid`/`comm` on `cpu` (a context switch), returning the one
    /// that was there; nothing when tracing is off.
    #[inline]
    pub fn switch_to(&self, cpu: CpuId, pid: u32, comm: &str) -> Prev {
        if !self.is_on() {
            return Prev(None);
        }
        self.switch_to_traced(cpu, pid, comm)
    }

    #[cold]
    #[inline(never)]
    fn switch_to_traced(&self, cpu: CpuId, pid: u32, comm: &str) -> Prev {
        let mut b = self.buf.lock();
        let t = b.intern(pid, comm);
        let prev = b.current(cpu.0);
        b.current[cpu.0] = t;
        b.last_cpu = cpu.0;
        Prev(Some(prev))
    }

    /// Puts back the task [`Self::switch_to`] replaced.
    #[inline]
    pub fn switch_back(&self, cpu: CpuId, prev: Prev) {
        if let Prev(Some(t)) = prev {
            self.switch_back_traced(cpu, t);
        }
    }

    #[cold]
    #[inline(never)]
    fn switch_back_traced(&self, cpu: CpuId, t: u32) {
        let mut b = self.buf.lock();
        b.current(cpu.0);
        b.current[cpu.0] = t;
    }

    /// Whether events happened since the last counter sample (and so a new
    /// one is due); marks the sample taken.
    #[inline]
    pub fn sample_due(&self) -> bool {
        self.is_on() && self.sample_due_traced()
    }

    #[cold]
    #[inline(never)]
    fn sample_due_traced(&self) -> bool {
        let mut b = self.buf.lock();
        let now = b.clock_ns;
        if b.last_sample_ns == Some(now) {
            return false;
        }
        b.last_sample_ns = Some(now);
        true
    }

    /// Records a counter sample at the current time (the clock does not
    /// move, so sampling changes no event's timestamp).
    pub fn counter(&self, pid: u32, name: String, values: Vec<(String, u64)>) {
        if !self.is_on() {
            return;
        }
        let mut b = self.buf.lock();
        let ts_ns = b.clock_ns;
        b.log.counters.push(Counter {
            ts_ns,
            pid,
            name,
            values,
        });
    }

    /// Takes what was recorded so far (the clock and tasks stay).
    pub fn take(&self) -> TraceLog {
        let mut b = self.buf.lock();
        TraceLog {
            ncpus: b.log.ncpus,
            layout: b.log.layout,
            tasks: b.log.tasks.clone(),
            records: core::mem::take(&mut b.log.records),
            counters: core::mem::take(&mut b.log.counters),
        }
    }

    // Tracepoints called from the allocator fast paths, one line each there.

    /// `trace_mm_page_alloc`.
    #[inline(always)]
    pub fn mm_page_alloc(&self, cpu: CpuId, pfn: Option<Pfn>, order: u8, gfp: Gfp) {
        self.emit(cpu, || Event::MmPageAlloc {
            pfn,
            order,
            gfp,
            migratetype: gfp.migratetype(),
        })
    }

    /// `trace_mm_page_free`.
    #[inline(always)]
    pub fn mm_page_free(&self, cpu: CpuId, pfn: Pfn, order: u8) {
        self.emit(cpu, || Event::MmPageFree { pfn, order })
    }

    /// `trace_mm_page_alloc_zone_locked`.
    #[inline(always)]
    /// `percpu_refill` as Linux computes it: an order the per-CPU lists
    /// hold, of a type they have.
    pub fn mm_page_alloc_zone_locked(&self, pfn: Pfn, order: u8, mt: MigrateType) {
        self.emit_here(|| Event::MmPageAllocZoneLocked {
            pfn,
            order,
            migratetype: mt,
            percpu_refill: crate::page_alloc::pcp_allowed_order(crate::types::Order(order))
                && mt.idx() < crate::mmzone::MIGRATE_PCPTYPES,
        })
    }

    /// `trace_mm_page_pcpu_drain`.
    #[inline(always)]
    pub fn mm_page_pcpu_drain(&self, pfn: Pfn, order: u8, mt: impl FnOnce() -> MigrateType) {
        self.emit_here(|| Event::MmPagePcpuDrain {
            pfn,
            order,
            migratetype: mt(),
        })
    }

    /// `trace_mm_page_alloc_extfrag`.
    #[inline(always)]
    pub fn mm_page_alloc_extfrag(
        &self,
        pfn: Pfn,
        order: u8,
        cur: u8,
        mt: MigrateType,
        ft: MigrateType,
        claimed: bool,
    ) {
        self.emit_here(|| Event::MmPageAllocExtfrag {
            pfn,
            alloc_order: order,
            fallback_order: cur,
            alloc_migratetype: mt,
            fallback_migratetype: ft,
            change_ownership: claimed,
        })
    }

    /// lmm's buddy split.
    #[inline(always)]
    pub fn buddy_split(&self, pfn: Pfn, order: u8, mt: MigrateType) {
        self.emit_here(|| Event::BuddySplit {
            pfn,
            order,
            migratetype: mt,
        })
    }

    /// lmm's buddy merge.
    #[inline(always)]
    pub fn buddy_merge(&self, pfn: Pfn, buddy: Pfn, order: u8) {
        self.emit_here(|| Event::BuddyMerge { pfn, buddy, order })
    }

    /// `trace_kmalloc`.
    #[inline(always)]
    /// A kmalloc that returned `obj` (lmm traces the successful ones; a
    /// failed kmalloc shows as the failed `mm_page_alloc` under it);
    /// `ksize` gives its size class, asked only when tracing is on. `node`
    /// is NUMA_NO_NODE (-1), as plain kmalloc passes it.
    pub fn kmalloc(
        &self,
        cpu: CpuId,
        site: &'static Location<'static>,
        obj: crate::slab::ObjPtr,
        req: u64,
        gfp: Gfp,
        ksize: impl FnOnce(crate::slab::ObjPtr) -> u64,
    ) {
        self.emit(cpu, || Event::Kmalloc {
            call_site: site,
            ptr: obj.0 .0,
            bytes_req: req,
            bytes_alloc: ksize(obj),
            gfp,
            node: -1,
        })
    }

    /// `trace_kfree`.
    #[inline(always)]
    pub fn kfree(&self, cpu: CpuId, site: &'static Location<'static>, ptr: u64) {
        self.emit(cpu, || Event::Kfree {
            call_site: site,
            ptr,
        })
    }
}

impl TraceLog {
    /// The trace as `trace-cmd report` prints it: a `cpus=N` line, then
    /// `comm-pid [cpu] secs.usecs: event: fields`, one line per event.
    pub fn ftrace(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "cpus={}", self.ncpus.max(1));
        for r in &self.records {
            let t = &self.tasks[r.task as usize];
            let name = alloc::format!("{}:", r.event.id().name());
            let _ = writeln!(
                o,
                "{:>16}-{:<5} [{:03}] {:5}.{:06}: {:<21} {}",
                t.comm,
                t.pid,
                r.cpu,
                r.ts_ns / 1_000_000_000,
                r.ts_ns % 1_000_000_000 / 1000,
                name,
                r.event.print(&self.layout)
            );
        }
        o
    }

    /// The trace in the Chrome JSON trace format that ui.perfetto.dev
    /// opens: an instant (`"ph":"i"`) per event on its task's thread, with
    /// the fields as args, and the counter samples (`"ph":"C"`) as tracks
    /// (the machine's on pid 0, a process's on its pid). Times in µs.
    pub fn perfetto(&self) -> String {
        use serde_json::{json, Value};
        let mut ev: Vec<Value> = Vec::new();
        // Tasks without a pid (the idle task, kernel threads) are threads
        // of process 0, one thread id each past any real pid.
        let tid = |i: usize| -> u64 {
            let t = &self.tasks[i];
            if t.pid == 0 {
                (1u64 << 32) + i as u64
            } else {
                t.pid as u64
            }
        };
        ev.push(json!({"name": "process_name", "ph": "M", "pid": 0, "args": {"name": "kernel"}}));
        let mut named: Vec<u32> = Vec::new();
        for (i, t) in self.tasks.iter().enumerate() {
            if t.pid != 0 && !named.contains(&t.pid) {
                named.push(t.pid);
                ev.push(json!({"name": "process_name", "ph": "M", "pid": t.pid, "args": {"name": t.comm}}));
            }
            ev.push(json!({"name": "thread_name", "ph": "M", "pid": t.pid, "tid": tid(i), "args": {"name": t.comm}}));
        }
        for r in &self.records {
            let t = &self.tasks[r.task as usize];
            let mut args = r.event.args(&self.layout);
            args.insert(String::from("cpu"), json!(r.cpu));
            ev.push(json!({
                "name": r.event.id().name(),
                "cat": r.event.id().system(),
                "ph": "i",
                "s": "t",
                "ts": r.ts_ns as f64 / 1000.0,
                "pid": t.pid,
                "tid": tid(r.task as usize),
                "args": Value::Object(args),
            }));
        }
        for c in &self.counters {
            let args: serde_json::Map<String, Value> = c
                .values
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            ev.push(json!({
                "name": c.name,
                "ph": "C",
                "ts": c.ts_ns as f64 / 1000.0,
                "pid": c.pid,
                "args": Value::Object(args),
            }));
        }
        let doc = json!({
            "traceEvents": ev,
            "displayTimeUnit": "ns",
            "otherData": {"clock": "lmm simulated clock", "tick_ns": TICK_NS},
        });
        let mut s = serde_json::to_string(&doc).unwrap_or_default();
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_lists_parse_as_ftrace_takes_them() {
        let m = EventMask::parse("kmem:*,vmscan:mm_vmscan_kswapd_*").unwrap();
        assert!(m.has(EventId::MmPageAlloc) && m.has(EventId::Kfree));
        assert!(m.has(EventId::MmVmscanKswapdWake) && m.has(EventId::MmVmscanKswapdSleep));
        assert!(!m.has(EventId::MmVmscanDirectReclaimBegin));
        assert!(!m.has(EventId::PageFaultUser));
        // A system alone, `system:`, and a bare event name.
        assert_eq!(
            EventMask::parse("oom").unwrap(),
            EventMask::parse("oom:").unwrap()
        );
        assert_eq!(
            EventMask::parse("mm_page_alloc").unwrap(),
            EventMask(1 << EventId::MmPageAlloc as u64)
        );
        assert_eq!(EventMask::parse("*:*").unwrap(), EventMask::ALL);
    }

    #[test]
    fn an_unknown_event_or_system_is_an_error() {
        let e = EventMask::parse("kmem:mm_page_alloc,kmem:no_such").unwrap_err();
        assert!(e.contains("\"kmem:no_such\""), "{e}");
        assert!(e.contains("kmem, "), "{e}");
        assert!(EventMask::parse("sched:*").is_err());
        assert!(EventMask::parse("kmem:*,").is_err());
    }

    #[test]
    fn off_records_nothing_and_on_ticks_the_clock_per_hit() {
        let t = Trace::new();
        t.emit(CpuId(0), || Event::MmPageFree {
            pfn: Pfn(1),
            order: 0,
        });
        assert!(t.take().records.is_empty());
        t.enable(EventMask::parse("kmem:mm_page_free").unwrap());
        t.emit(CpuId(1), || Event::MmVmscanKswapdSleep { nid: 0 });
        t.emit(CpuId(1), || Event::MmPageFree {
            pfn: Pfn(0x12),
            order: 2,
        });
        let log = t.take();
        assert_eq!(log.records.len(), 1);
        // The filtered-out event still took its tick.
        assert_eq!(log.records[0].ts_ns, 2 * TICK_NS);
        assert_eq!(
            log.ftrace(),
            "cpus=1\n          <idle>-0     [001]     0.000002: mm_page_free:         page=0xffffea0000000480 pfn=0x12 order=2\n"
        );
    }

    #[test]
    fn tp_printk_formats() {
        let l = Layout::default();
        let e = Event::MmPageAlloc {
            pfn: None,
            order: 1,
            gfp: Gfp::ATOMIC,
            migratetype: MigrateType::Unmovable,
        };
        assert_eq!(
            e.print(&l),
            "page=(null) pfn=0x0 order=1 migratetype=0 gfp_flags=GFP_ATOMIC"
        );
        let tlb = Event::TlbFlush {
            reason: TlbFlushReason::RemoteShootdown,
            pages: TLB_FLUSH_ALL,
        };
        assert_eq!(tlb.print(&l), "pages:-1 reason:remote shootdown (1)");
        let f = Event::MmFilemapAddToPageCache {
            dev: (254, 0),
            ino: 0x3c6c9,
            pfn: Pfn(0x13af68),
            index: 36,
            order: 0,
        };
        assert_eq!(
            f.print(&l),
            "dev 254:0 ino 3c6c9 pfn=0x13af68 ofs=147456 order=0"
        );
    }
}
