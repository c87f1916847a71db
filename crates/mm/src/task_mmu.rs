//! The per-process /proc files of the memory manager: maps, smaps,
//! smaps_rollup, pagemap and the Vm* lines of status. Mirrors
//! fs/proc/task_mmu.c (`show_map_vma`, `show_smap`, `pagemap_read`,
//! `task_mem`).
//!
//! Simplifications: no protection keys line; SwapPss assumes a swap count
//! of 1; KSM, THP (PMD-mapped) and hugetlb counters are 0; THPeligible
//! models anonymous memory with only the PMD order enabled (file THP and
//! mTHP sizes are not modelled). A present page whose mapcount is 0
//! is the shared zero page (not a "normal" page): smaps does not count it.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use crate::errno::Errno;
use crate::mm_types::{MmStruct, PageTableOps, RssKind, VmFlags, Vma};
use crate::types::{VirtAddr, PAGE_SHIFT, PAGE_SIZE};

/// Start of the x86-64 vsyscall page (the gate VMA).
pub const VSYSCALL_START: u64 = 0xffff_ffff_ff60_0000;
/// Width of the maps header before the name on 64-bit (25 + 6 * 8 - 1).
/// Fixed-point shift of the Pss accumulators.
const PSS_SHIFT: u32 = 12;

/// The 2-letter VmFlags mnemonic for each bit (smaps `show_smap_vma_flags`,
/// x86-64), printed in ascending bit order.
fn mnemonic(bit: u32) -> Option<&'static str> {
    Some(match bit {
        0 => "rd",
        1 => "wr",
        2 => "ex",
        3 => "sh",
        4 => "mr",
        5 => "mw",
        6 => "me",
        7 => "ms",
        8 => "gd",
        9 => "um",
        10 => "pf",
        12 => "uw",
        13 => "lo",
        14 => "io",
        15 => "sr",
        16 => "rr",
        17 => "dc",
        18 => "de",
        19 => "lf",
        20 => "ac",
        21 => "nr",
        22 => "ht",
        23 => "sf",
        24 => "ar",
        25 => "wf",
        26 => "dd",
        27 => "sd",
        28 => "mm",
        29 => "hg",
        30 => "nh",
        31 => "mg",
        37 => "ss",
        38 => "ui",
        40 => "dp",
        42 => "sl",
        _ => return None,
    })
}

/// The name /proc/PID/maps prints for `vma` (`get_vma_name`), if any.
pub fn vma_name(mm: &MmStruct, vma: &Vma) -> Option<String> {
    if let Some(f) = &vma.file {
        if vma.shmem {
            if let Some(n) = &vma.anon_name {
                return Some(alloc::format!("[anon_shmem:{n}]"));
            }
        }
        return Some(String::from(f.path()));
    }
    if let Some(s) = vma.special {
        return Some(String::from(s));
    }
    // vma_is_initial_heap: strict on both sides, so a .bss VMA that ends
    // where an empty heap starts (start_brk == brk) stays unnamed, as the
    // recorded /usr/bin/ls maps at its first instruction show.
    if vma.start < mm.brk && vma.end > mm.start_brk {
        return Some(String::from("[heap]"));
    }
    if vma.start <= mm.start_stack && vma.end >= mm.start_stack {
        return Some(String::from("[stack]"));
    }
    vma.anon_name.as_ref().map(|n| alloc::format!("[anon:{n}]"))
}

/// Writes one maps header line (`show_vma_header_prefix` + name).
#[allow(clippy::too_many_arguments)]
fn header(
    out: &mut String,
    start: VirtAddr,
    end: VirtAddr,
    flags: VmFlags,
    pgoff: u64,
    dev: (u32, u32),
    ino: u64,
    name: Option<&str>,
    column: usize,
) {
    let line_start = out.len();
    let _ = write!(
        out,
        "{:08x}-{:08x} {}{}{}{} {:08x} {:02x}:{:02x} {} ",
        start,
        end,
        if flags.contains(VmFlags::READ) {
            'r'
        } else {
            '-'
        },
        if flags.contains(VmFlags::WRITE) {
            'w'
        } else {
            '-'
        },
        if flags.contains(VmFlags::EXEC) {
            'x'
        } else {
            '-'
        },
        if flags.contains(VmFlags::MAYSHARE) {
            's'
        } else {
            'p'
        },
        pgoff,
        dev.0,
        dev.1,
        ino
    );
    if let Some(name) = name {
        // seq_pad: pad to the column, then one more space, then the name.
        // The header already ends with a space; seq_pad pads the text
        // written so far (including that space) to the name column.
        let written = out.len() - line_start;
        for _ in written..column {
            out.push(' ');
        }
        out.push(' ');
        out.push_str(name);
    }
    out.push('\n');
}

fn vma_header(out: &mut String, mm: &MmStruct, vma: &Vma) {
    let (dev, ino, pgoff) = match &vma.file {
        Some(f) => (f.dev(), f.ino(), vma.pgoff << PAGE_SHIFT),
        None => ((0, 0), 0, 0),
    };
    let name = vma_name(mm, vma);
    header(
        out,
        vma.start,
        vma.end,
        vma.flags,
        pgoff,
        dev,
        ino,
        name.as_deref(),
        mm.name_column,
    );
}

/// The gate VMA of x86-64 (`[vsyscall]`, execute-only).
fn gate_vma() -> Vma {
    let mut v = Vma::new_anon(
        VirtAddr(VSYSCALL_START),
        VirtAddr(VSYSCALL_START + PAGE_SIZE),
        VmFlags::EXEC,
        0,
    );
    v.special = Some("[vsyscall]");
    v
}

/// /proc/PID/maps.
pub fn show_maps(mm: &MmStruct, _pt: &dyn PageTableOps) -> String {
    let mut out = String::new();
    for v in mm.iter() {
        vma_header(&mut out, mm, v);
    }
    if mm.vsyscall {
        vma_header(&mut out, mm, &gate_vma());
    }
    out
}

/// Per-VMA (or rollup) page statistics (`struct mem_size_stats`), bytes;
/// the pss fields are shifted left by PSS_SHIFT.
#[derive(Default, Clone, Debug)]
struct Mss {
    resident: u64,
    pss: u128,
    pss_dirty: u128,
    pss_anon: u128,
    pss_file: u128,
    pss_shmem: u128,
    pss_locked: u128,
    shared_clean: u64,
    shared_dirty: u64,
    private_clean: u64,
    private_dirty: u64,
    referenced: u64,
    anonymous: u64,
    lazyfree: u64,
    swap: u64,
    swap_pss: u128,
}

/// Walks the pages of `vma` (`smap_gather_stats`).
fn gather(mss: &mut Mss, vma: &Vma, pt: &dyn PageTableOps) {
    if vma.start.0 >= VSYSCALL_START {
        return;
    }
    let locked = vma.flags.contains(VmFlags::LOCKED);
    let mut va = vma.start;
    while va < vma.end {
        if let Some(p) = pt.page_info(va) {
            if p.present && p.mapcount > 0 {
                let size = PAGE_SIZE;
                mss.resident += size;
                if p.young {
                    mss.referenced += size;
                }
                if p.anon {
                    mss.anonymous += size;
                    if p.lazyfree && !p.dirty {
                        mss.lazyfree += size;
                    }
                }
                let pss: u128 = if p.mapcount >= 2 {
                    ((size as u128) << PSS_SHIFT) / p.mapcount as u128
                } else {
                    (size as u128) << PSS_SHIFT
                };
                match (p.mapcount >= 2, p.dirty) {
                    (true, true) => mss.shared_dirty += size,
                    (true, false) => mss.shared_clean += size,
                    (false, true) => mss.private_dirty += size,
                    (false, false) => mss.private_clean += size,
                }
                mss.pss += pss;
                if p.dirty {
                    mss.pss_dirty += pss;
                }
                if p.anon {
                    mss.pss_anon += pss;
                } else if vma.shmem {
                    mss.pss_shmem += pss;
                } else {
                    mss.pss_file += pss;
                }
                if locked {
                    mss.pss_locked += pss;
                }
            } else if !p.present && p.swap.is_some() {
                mss.swap += PAGE_SIZE;
                mss.swap_pss += (PAGE_SIZE as u128) << PSS_SHIFT;
            }
        }
        va += PAGE_SIZE;
    }
}

fn kb_line(out: &mut String, label: &str, bytes: u64) {
    let _ = writeln!(out, "{label}{:>8} kB", bytes >> 10);
}

fn pss_kb(v: u128) -> u64 {
    ((v >> PSS_SHIFT) >> 10) as u64
}

/// `__show_smap`: the common block of smaps and smaps_rollup.
fn show_smap_block(out: &mut String, mss: &Mss, rollup: bool) {
    kb_line(out, "Rss:            ", mss.resident);
    let _ = writeln!(out, "Pss:            {:>8} kB", pss_kb(mss.pss));
    let _ = writeln!(out, "Pss_Dirty:      {:>8} kB", pss_kb(mss.pss_dirty));
    if rollup {
        let _ = writeln!(out, "Pss_Anon:       {:>8} kB", pss_kb(mss.pss_anon));
        let _ = writeln!(out, "Pss_File:       {:>8} kB", pss_kb(mss.pss_file));
        let _ = writeln!(out, "Pss_Shmem:      {:>8} kB", pss_kb(mss.pss_shmem));
    }
    kb_line(out, "Shared_Clean:   ", mss.shared_clean);
    kb_line(out, "Shared_Dirty:   ", mss.shared_dirty);
    kb_line(out, "Private_Clean:  ", mss.private_clean);
    kb_line(out, "Private_Dirty:  ", mss.private_dirty);
    kb_line(out, "Referenced:     ", mss.referenced);
    kb_line(out, "Anonymous:      ", mss.anonymous);
    kb_line(out, "KSM:            ", 0);
    kb_line(out, "LazyFree:       ", mss.lazyfree);
    kb_line(out, "AnonHugePages:  ", 0);
    kb_line(out, "ShmemPmdMapped: ", 0);
    kb_line(out, "FilePmdMapped:  ", 0);
    kb_line(out, "Shared_Hugetlb: ", 0);
    let _ = writeln!(out, "Private_Hugetlb: {:>7} kB", 0);
    kb_line(out, "Swap:           ", mss.swap);
    let _ = writeln!(out, "SwapPss:        {:>8} kB", pss_kb(mss.swap_pss));
    let _ = writeln!(out, "Locked:         {:>8} kB", pss_kb(mss.pss_locked));
}

/// smaps THPeligible (`thp_vma_allowable_orders(.., TVA_SMAPS, ..)` with
/// only the PMD order enabled): a private anonymous VMA that holds an aligned
/// 2 MiB block ending at or before `vm_end`, not VM_NOHUGEPAGE, with THP
/// "always" or MADV_HUGEPAGE.
fn thp_eligible(mm: &MmStruct, vma: &Vma) -> bool {
    const HPAGE: u64 = 2 << 20;
    let fits = vma.end.0 >= HPAGE && (vma.end.0 - HPAGE) & !(HPAGE - 1) >= vma.start.0;
    fits && vma.is_anonymous()
        && !vma.flags.intersects(
            VmFlags::MAYSHARE | VmFlags::NOHUGEPAGE | VmFlags::SPECIAL | VmFlags::HUGETLB,
        )
        && vma.start.0 < VSYSCALL_START
        && (mm.thp_always || vma.flags.contains(VmFlags::HUGEPAGE))
}

fn show_smap(out: &mut String, mm: &MmStruct, vma: &Vma, pt: &dyn PageTableOps) {
    let mut mss = Mss::default();
    gather(&mut mss, vma, pt);
    vma_header(out, mm, vma);
    kb_line(out, "Size:           ", vma.len());
    kb_line(out, "KernelPageSize: ", PAGE_SIZE);
    kb_line(out, "MMUPageSize:    ", PAGE_SIZE);
    show_smap_block(out, &mss, false);
    let _ = writeln!(
        out,
        "THPeligible:    {:>8}",
        u8::from(thp_eligible(mm, vma))
    );
    if mm.pkeys {
        let _ = writeln!(out, "ProtectionKey:  {:>8}", 0);
    }
    out.push_str("VmFlags: ");
    let flags = if mm.soft_dirty {
        vma.flags
    } else {
        vma.flags.difference(VmFlags::SOFTDIRTY)
    };
    for bit in 0..64 {
        if flags.0 & (1 << bit) != 0 {
            if let Some(m) = mnemonic(bit) {
                out.push_str(m);
                out.push(' ');
            }
        }
    }
    out.push('\n');
}

/// /proc/PID/smaps.
pub fn show_smaps(mm: &MmStruct, pt: &dyn PageTableOps) -> String {
    let mut out = String::new();
    for v in mm.iter() {
        show_smap(&mut out, mm, v, pt);
    }
    if mm.vsyscall {
        show_smap(&mut out, mm, &gate_vma(), pt);
    }
    out
}

/// /proc/PID/smaps_rollup: a `[rollup]` header from the first VMA's start
/// to the last VMA's end, then the summed block with Pss_Anon/File/Shmem.
pub fn show_smaps_rollup(mm: &MmStruct, pt: &dyn PageTableOps) -> String {
    let mut out = String::new();
    let mut mss = Mss::default();
    for v in mm.iter() {
        gather(&mut mss, v, pt);
    }
    let start = mm.iter().next().map_or(VirtAddr(0), |v| v.start);
    let end = mm.iter().next_back().map_or(VirtAddr(0), |v| v.end);
    header(
        &mut out,
        start,
        end,
        VmFlags::NONE,
        0,
        (0, 0),
        0,
        Some("[rollup]"),
        mm.name_column,
    );
    show_smap_block(&mut out, &mss, true);
    out
}

/// pagemap bit 55: soft-dirty.
pub const PM_SOFT_DIRTY: u64 = 1 << 55;
/// pagemap bit 56: exclusively mapped.
pub const PM_MMAP_EXCLUSIVE: u64 = 1 << 56;
/// pagemap bit 61: file page or shared anonymous.
pub const PM_FILE: u64 = 1 << 61;
/// pagemap bit 62: swapped.
pub const PM_SWAP: u64 = 1 << 62;
/// pagemap bit 63: present.
pub const PM_PRESENT: u64 = 1 << 63;
/// pagemap bits 0-54: PFN or swap type/offset.
pub const PM_PFRAME_MASK: u64 = (1 << 55) - 1;
/// Most bytes one pagemap read returns (a short read, as read(2) allows).
pub const PAGEMAP_MAX_READ: u64 = 64 << 20;

/// The pagemap entry of one virtual page.
pub fn pagemap_entry(mm: &MmStruct, pt: &dyn PageTableOps, va: VirtAddr) -> u64 {
    let e = pagemap_entry_bits(mm, pt, va);
    if mm.soft_dirty {
        e
    } else {
        e & !PM_SOFT_DIRTY
    }
}

fn pagemap_entry_bits(mm: &MmStruct, pt: &dyn PageTableOps, va: VirtAddr) -> u64 {
    let Some(vma) = mm.vma_lookup(va) else {
        return 0;
    };
    let show_pfn = mm.cred.cap_sys_admin;
    let mut flags = 0;
    let mut frame = 0;
    if vma.flags.contains(VmFlags::SOFTDIRTY) {
        flags |= PM_SOFT_DIRTY;
    }
    if let Some(p) = pt.page_info(va) {
        if p.present {
            flags |= PM_PRESENT;
            if show_pfn {
                frame = p.pfn;
            }
            if p.soft_dirty {
                flags |= PM_SOFT_DIRTY;
            }
            if p.mapcount > 0 && !p.anon {
                flags |= PM_FILE;
            }
            if p.mapcount == 1 {
                flags |= PM_MMAP_EXCLUSIVE;
            }
        } else if let Some((ty, off)) = p.swap {
            flags |= PM_SWAP;
            if show_pfn {
                frame = u64::from(ty & 0x1f) | (off << 5);
            }
            if p.soft_dirty {
                flags |= PM_SOFT_DIRTY;
            }
        }
    }
    (frame & PM_PFRAME_MASK) | flags
}

/// Reads /proc/PID/pagemap at byte `offset` for `count` bytes: u64
/// little-endian entries, one per page. EINVAL unless both are multiples of
/// 8. The read stops at TASK_SIZE and at PAGEMAP_MAX_READ bytes. PFNs and
/// swap offsets are zero without CAP_SYS_ADMIN.
pub fn pagemap_read(
    mm: &MmStruct,
    pt: &dyn PageTableOps,
    offset: u64,
    count: u64,
) -> Result<Vec<u8>, Errno> {
    if !offset.is_multiple_of(8) || !count.is_multiple_of(8) {
        return Err(Errno::EINVAL);
    }
    let svpfn = offset / 8;
    let end_vpfn = mm.task_size.vpn();
    if svpfn >= end_vpfn {
        return Ok(Vec::new());
    }
    let n = (count.min(PAGEMAP_MAX_READ) / 8).min(end_vpfn - svpfn);
    let mut out = Vec::with_capacity((n * 8) as usize);
    for i in 0..n {
        let va = VirtAddr((svpfn + i) << PAGE_SHIFT);
        out.extend_from_slice(&pagemap_entry(mm, pt, va).to_le_bytes());
    }
    Ok(out)
}

/// The Vm*, Rss* lines of /proc/PID/status (`task_mem`), through
/// HugetlbPages.
pub fn show_status_vm(mm: &MmStruct) -> String {
    let kb = |pages: u64| pages << (PAGE_SHIFT - 10);
    let anon = mm.rss.get(RssKind::Anon);
    let file = mm.rss.get(RssKind::File);
    let shmem = mm.rss.get(RssKind::Shmem);
    let swap = mm.rss.get(RssKind::Swap);
    let total_rss = anon + file + shmem;
    let hiwater_vm = mm.total_vm.max(mm.hiwater_vm);
    let hiwater_rss = total_rss.max(mm.hiwater_rss());
    let text = code_bytes(mm).min(mm.exec_vm << PAGE_SHIFT);
    let lib = (mm.exec_vm << PAGE_SHIFT) - text;
    let mut out = String::new();
    let mut line = |label: &str, v: u64| {
        let _ = writeln!(out, "{label}:\t{v:>8} kB");
    };
    line("VmPeak", kb(hiwater_vm));
    line("VmSize", kb(mm.total_vm));
    line("VmLck", kb(mm.locked_vm));
    line("VmPin", kb(mm.pinned_vm));
    line("VmHWM", kb(hiwater_rss));
    line("VmRSS", kb(total_rss));
    line("RssAnon", kb(anon));
    line("RssFile", kb(file));
    line("RssShmem", kb(shmem));
    line("VmData", kb(mm.data_vm));
    line("VmStk", kb(mm.stack_vm));
    line("VmExe", text >> 10);
    line("VmLib", lib >> 10);
    line("VmPTE", mm.pgtables_bytes >> 10);
    line("VmSwap", kb(swap));
    line("HugetlbPages", 0);
    out
}

/// Bytes of the page-rounded code range `[start_code, end_code)`, 0 if
/// empty: what status's VmExe and statm's text are made of.
fn code_bytes(mm: &MmStruct) -> u64 {
    let end = mm.end_code.page_up().unwrap_or(VirtAddr(0));
    end.as_u64()
        .saturating_sub(mm.start_code.page_down().as_u64())
}

/// /proc/PID/statm (`task_statm` and `proc_pid_statm`, fs/proc): seven
/// page counts: size (total_vm), resident (anon + file + shmem RSS), shared
/// (file + shmem RSS), text (the page-rounded code range), lib (always 0),
/// data (data_vm + stack_vm) and dt (always 0).
pub fn show_statm(mm: &MmStruct) -> String {
    let shared = mm.rss.get(RssKind::File) + mm.rss.get(RssKind::Shmem);
    let resident = shared + mm.rss.get(RssKind::Anon);
    let text = code_bytes(mm) >> PAGE_SHIFT;
    let data = mm.data_vm + mm.stack_vm;
    alloc::format!("{} {resident} {shared} {text} 0 {data} 0\n", mm.total_vm)
}

/// Writes to /proc/PID/clear_refs (`clear_refs_write`): 1 clears the
/// referenced bits of all pages, 2 of anonymous VMAs, 3 of file-backed VMAs,
/// 4 clears soft-dirty (VM_SOFTDIRTY on every VMA and the ptes' bits), 5
/// resets the peak RSS. Anything else is EINVAL.
pub fn clear_refs(mm: &mut MmStruct, pt: &mut dyn PageTableOps, value: u32) -> Result<(), Errno> {
    match value {
        1..=4 => {}
        5 => {
            mm.rss.reset_hiwater();
            return Ok(());
        }
        _ => return Err(Errno::EINVAL),
    }
    let keys: Vec<VirtAddr> = mm.vmas.keys().copied().collect();
    for k in keys {
        let Some(v) = mm.vmas.get_mut(&k) else {
            continue;
        };
        match value {
            2 if v.file.is_some() => continue,
            3 if v.file.is_none() => continue,
            4 => v.flags = v.flags.difference(VmFlags::SOFTDIRTY),
            _ => {}
        }
        pt.clear_refs(v.start, v.end, value == 4);
    }
    Ok(())
}
