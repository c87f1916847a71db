//! Tour topics of address spaces: mmap placement and VMA merge/split, brk,
//! exec of a real ELF, demand-zero and the zero page, copy-on-write after
//! fork, file faults and the page cache, swap out and in, the OOM killer.

use machine::config::MachineConfig;
use machine::exec::{MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE};
use machine::mmu::Access;
use machine::Machine;
use mm::types::VirtAddr;

use super::{Topic, Tour};

/// The address-space topics, in the textbook's order.
pub(super) static TOPICS: &[Topic] = &[
    Topic {
        name: "mmap",
        title: "mmap placement and VMA merge/split",
        run: mmap,
    },
    Topic {
        name: "brk",
        title: "the heap: start_brk, brk growing and shrinking",
        run: brk,
    },
    Topic {
        name: "exec",
        title: "exec of a static ELF: segments, bss, the initial stack",
        run: exec,
    },
    Topic {
        name: "demand-zero",
        title: "demand paging of anonymous memory and the zero page",
        run: demand_zero,
    },
    Topic {
        name: "filefault",
        title: "file faults, fault-around, the page cache and msync",
        run: filefault,
    },
    Topic {
        name: "cow",
        title: "copy-on-write after fork",
        run: cow,
    },
    Topic {
        name: "lru",
        title: "the LRU lists, second chance and kswapd",
        run: lru,
    },
    Topic {
        name: "swap",
        title: "swap out under pressure and back in on a fault",
        run: swap,
    },
    Topic {
        name: "oom",
        title: "the OOM killer: badness, the victim, memory freed",
        run: oom,
    },
];

/// 4 KiB, the x86-64 base page.
const PAGE: u64 = 4096;

/// Boots a small machine for one topic (64 MiB, one CPU, so every topic's
/// numbers are the same on every host).
fn boot() -> Result<Machine, String> {
    Machine::boot(MachineConfig {
        ram: 64 << 20,
        cpus: 1,
        ..Default::default()
    })
    .map_err(|e| format!("boot: {e}"))
}

/// /proc/PID/maps of `pid`, with a file's host device, inode and
/// directory left out (they differ between hosts; the file's name stays)
/// and the trailing padding trimmed, so the output is the same everywhere.
fn maps(m: &mut Machine, pid: u32) -> Result<String, String> {
    let text = m.proc_pid(pid, "maps")?;
    let mut out = String::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        let line = match f.as_slice() {
            [range, perms, off, _dev, _ino, name] if name.starts_with('/') => {
                let base = name.rsplit('/').next().unwrap_or(name);
                format!("{range} {perms} {off} {base}")
            }
            [range, perms, off, _dev, _ino, name] => format!("{range} {perms} {off} {name}"),
            [range, perms, off, ..] => format!("{range} {perms} {off}"),
            _ => l.to_string(),
        };
        out.push_str(&line);
        out.push('\n');
    }
    Ok(out)
}

/// The number of VMAs of `pid` (`mm->map_count`).
fn map_count(m: &Machine, pid: u32) -> Result<usize, String> {
    Ok(process(m, pid)?.mm.map_count())
}

/// The process `pid`, or an error naming it.
fn process(m: &Machine, pid: u32) -> Result<&machine::process::Process, String> {
    m.process(pid).ok_or_else(|| format!("no process {pid}"))
}

/// An anonymous private read-write mmap of `pages` pages, placed by the
/// kernel.
fn mmap_anon(m: &mut Machine, pid: u32, pages: u64) -> Result<u64, String> {
    m.sys_mmap(
        pid,
        0,
        pages * PAGE,
        PROT_READ | PROT_WRITE,
        MAP_PRIVATE | MAP_ANONYMOUS,
        None,
        0,
    )
    .map_err(|e| format!("mmap: {e}"))
}

/// The last-level page-table entry of `pid` at `va`, as a line a student
/// can read: `none`, or the frame and the bits that matter here.
fn pte_line(m: &Machine, pid: u32, va: u64) -> Result<String, String> {
    let p = process(m, pid)?;
    Ok(match p.pt.lookup(VirtAddr(va)) {
        Some((pte, 1)) if pte.present() => format!(
            "pte {va:#x}: pfn {:#x} present {} {} {}",
            pte.pfn().0,
            if pte.writable() { "RW" } else { "RO" },
            if pte.accessed() { "A" } else { "-" },
            if pte.dirty() { "D" } else { "-" },
        ),
        Some((pte, 1)) if !pte.is_none() => format!("pte {va:#x}: {:#018x} not present", pte.raw()),
        _ => format!("pte {va:#x}: none"),
    })
}

/// The parent's and the child's pte lines at `va`, one under the other.
fn both_ptes(m: &Machine, parent: u32, child: u32, va: u64) -> Result<String, String> {
    Ok(format!(
        "parent {}\nchild  {}",
        pte_line(m, parent, va)?,
        pte_line(m, child, va)?
    ))
}

/// The frame mapped at `va` in `pid`, if any.
fn pfn_at(m: &Machine, pid: u32, va: u64) -> Result<Option<u64>, String> {
    let p = process(m, pid)?;
    Ok(match p.pt.lookup(VirtAddr(va)) {
        Some((pte, 1)) if pte.present() => Some(pte.pfn().0),
        _ => None,
    })
}

/// `page_mapcount` of the frame `pfn`.
fn mapcount(m: &Machine, pfn: u64) -> i32 {
    m.pa().page(mm::types::Pfn(pfn)).map_or(0, |p| p.mapcount())
}

/// `pid`'s resident pages and minor/major fault counts.
fn rss_faults(m: &Machine, pid: u32) -> Result<(u64, u64, u64), String> {
    let p = process(m, pid)?;
    Ok((p.mm.rss_pages(), p.flt.minor, p.flt.major))
}

/// Spawns a process with an empty address space.
fn spawn(m: &mut Machine, comm: &str) -> Result<u32, String> {
    m.spawn(comm).map_err(|e| format!("spawn: {e}"))
}

/// Topic `mmap`: top-down placement below mmap_base, then merge, split and
/// a hole, with /proc/PID/maps after each call.
fn mmap(t: &mut Tour) -> Result<(), String> {
    let mut m = boot()?;
    let pid = spawn(&mut m, "tour")?;
    let base = process(&m, pid)?.mm.mmap_base;
    t.say(
        "A fresh process with an empty address space: mmap places mappings\n\
         top-down below mmap_base (the stack's reserved gap lies above it),\n\
         and neighbouring VMAs with the same flags merge into one.",
    );
    t.step("mmap 4 anonymous pages, address chosen by the kernel");
    t.state("before", &format!("mmap_base {base:#x}, no VMAs"));
    let a = mmap_anon(&mut m, pid, 4)?;
    t.state("after", &maps(&mut m, pid)?);
    t.explain(
        "the mapping ends exactly at mmap_base: the highest gap that fits",
        "mm/mmap.c arch_get_unmapped_area_topdown → vm_unmapped_area (top-down); \
         mmap_base = TASK_SIZE - gap (RLIMIT_STACK + guard) - random offset (0, ASLR off)",
    );
    t.checkpoint("mmap_base", format!("{base:#x}"));
    t.checkpoint("first mmap", format!("{a:#x}"));

    t.step("mmap 4 more pages: placed just below, and merged");
    let b = mmap_anon(&mut m, pid, 4)?;
    t.state("after", &maps(&mut m, pid)?);
    t.explain(
        "the new range ends where the first begins, so one VMA covers both",
        "mm/vma.c vma_merge_new_range: an anonymous VMA adjacent to one with the same \
         flags, file and anon_vma is expanded instead of a new one created",
    );
    t.checkpoint("second mmap", format!("{b:#x}"));
    t.checkpoint("VMAs after second mmap", map_count(&m, pid)?);

    t.step("mprotect the middle 2 pages read-only: one VMA splits into three");
    let mid = b + 3 * PAGE;
    m.sys_mprotect(pid, mid, 2 * PAGE, PROT_READ)
        .map_err(|e| format!("mprotect: {e}"))?;
    t.state("after", &maps(&mut m, pid)?);
    t.explain(
        "pages with different protections cannot share a VMA: rw-p, r--p, rw-p",
        "mm/mprotect.c mprotect_fixup → vma_modify_flags → split_vma at both ends \
         (__split_vma), since vm_flags are per VMA",
    );
    t.checkpoint("VMAs after mprotect", map_count(&m, pid)?);

    t.step("mprotect them back: the three merge again");
    m.sys_mprotect(pid, mid, 2 * PAGE, PROT_READ | PROT_WRITE)
        .map_err(|e| format!("mprotect: {e}"))?;
    t.state("after", &maps(&mut m, pid)?);
    t.explain(
        "with equal flags again the neighbours merge back into one VMA",
        "mm/vma.c vma_merge_existing_range: a modified range merges with both \
         neighbours when flags, anon_vma and policy match",
    );
    t.checkpoint("VMAs after mprotect back", map_count(&m, pid)?);

    t.step("munmap the middle 2 pages: a hole splits the VMA in two");
    m.sys_munmap(pid, mid, 2 * PAGE)
        .map_err(|e| format!("munmap: {e}"))?;
    t.state("after", &maps(&mut m, pid)?);
    t.explain(
        "the range is removed and what is left on each side is a VMA of its own",
        "mm/vma.c do_vmi_align_munmap: split at start and end, detach the middle, \
         unmap its pages and free its page tables",
    );
    t.checkpoint("VMAs after munmap", map_count(&m, pid)?);
    Ok(())
}

/// Topic `brk`: start_brk after exec of a static binary, brk growing,
/// shrinking and refused next to another mapping.
fn brk(t: &mut Tour) -> Result<(), String> {
    let mut m = boot()?;
    let pid = spawn(&mut m, "tour")?;
    let bin = STATIC_BIN;
    let path = fixture(bin)?;
    m.exec(pid, &path, &["mmap_basic".to_string()], &[])
        .map_err(|e| format!("exec {bin}: {e}"))?;
    let heap_lines = |m: &mut Machine| -> Result<String, String> {
        let s = maps(m, pid)?;
        Ok(s.lines()
            .filter(|l| l.starts_with("00"))
            .collect::<Vec<_>>()
            .join("\n"))
    };
    let (start_brk, end_data) = {
        let mm = &process(&m, pid)?.mm;
        (mm.start_brk.as_u64(), mm.end_data.as_u64())
    };
    t.say(
        "The heap is one anonymous VMA from start_brk up to brk, right above\n\
         the program's bss. brk(2) moves its end; malloc builds on it.",
    );
    t.step("exec a static binary: start_brk is set, the heap is empty");
    t.state("after exec", &heap_lines(&mut m)?);
    t.explain(
        &format!("start_brk = {start_brk:#x}, the page-aligned end of bss (the anonymous VMA below it); no [heap] yet"),
        "fs/binfmt_elf.c load_elf_binary: mm->start_brk = mm->brk = ELF_PAGEALIGN(elf_brk); \
         arch_randomize_brk only when randomize_va_space is 2 (off here)",
    );
    t.checkpoint("end_data", format!("{end_data:#x}"));
    t.checkpoint("start_brk", format!("{start_brk:#x}"));

    t.step("brk(start_brk + 3 pages): the heap VMA appears");
    let r = m
        .sys_brk(pid, start_brk + 3 * PAGE)
        .map_err(|e| format!("brk: {e}"))?;
    t.state("after", &heap_lines(&mut m)?);
    t.explain(
        "brk returns the new break and a 3-page [heap] VMA covers it",
        "mm/mmap.c SYSCALL_DEFINE1(brk) → do_brk_flags: an anonymous VMA (or the old one \
         expanded) from the old page-aligned brk to the new one",
    );
    t.checkpoint("brk after grow", format!("{r:#x}"));

    t.step("brk(start_brk + 1 page): the heap shrinks");
    let r = m
        .sys_brk(pid, start_brk + PAGE)
        .map_err(|e| format!("brk: {e}"))?;
    t.state("after", &heap_lines(&mut m)?);
    t.explain(
        "the top two pages are unmapped; the VMA now ends one page above start_brk",
        "mm/mmap.c brk: a lower brk is do_vmi_align_munmap of [newbrk, oldbrk)",
    );
    t.checkpoint("brk after shrink", format!("{r:#x}"));

    t.step("a mapping just above the heap, then a brk that would overlap it");
    let fixed = start_brk + 4 * PAGE;
    m.sys_mmap(
        pid,
        fixed,
        PAGE,
        PROT_READ,
        MAP_PRIVATE | MAP_ANONYMOUS | machine::exec::MAP_FIXED,
        None,
        0,
    )
    .map_err(|e| format!("mmap: {e}"))?;
    let r = m
        .sys_brk(pid, start_brk + 8 * PAGE)
        .map_err(|e| format!("brk: {e}"))?;
    t.state("after", &heap_lines(&mut m)?);
    t.explain(
        "brk is refused: it returns the old break, the heap is unchanged",
        "mm/mmap.c brk: the new range must leave stack_guard_gap below the next VMA \
         (find_vma_intersection with the gap); on failure brk returns mm->brk",
    );
    t.checkpoint("brk refused returns", format!("{r:#x}"));
    Ok(())
}

/// The path of a repository fixture, from the crate's directory or the
/// repository's (the binary runs from either).
fn fixture(rel: &str) -> Result<String, String> {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel);
    if here.exists() {
        return Ok(here.to_string_lossy().into_owned());
    }
    Err(format!("fixture {rel} not found"))
}

/// Topic `demand-zero`: an anonymous mapping, the zero page on a read,
/// a fresh page on a write; RSS, fault counts and ptes.
fn demand_zero(t: &mut Tour) -> Result<(), String> {
    let mut m = boot()?;
    let pid = spawn(&mut m, "tour")?;
    t.say(
        "Anonymous memory is allocated when it is touched, not when it is\n\
         mapped: a read maps the shared zero page, a write a fresh zeroed page.",
    );
    t.step("mmap 2 anonymous pages");
    let a = mmap_anon(&mut m, pid, 2)?;
    let (rss, minor, _) = rss_faults(&m, pid)?;
    t.state(
        "after",
        &format!(
            "{}\n{}",
            maps(&mut m, pid)?.trim_end(),
            pte_line(&m, pid, a)?
        ),
    );
    t.explain(
        "a VMA exists but no page-table entry: nothing is resident",
        "mm/mmap.c mmap_region only records the VMA; pages come at fault time \
         (mm/memory.c handle_mm_fault)",
    );
    t.checkpoint("rss after mmap", rss);
    t.checkpoint("minor faults after mmap", minor);

    t.step("read the first page");
    m.touch(pid, a, 1, Access::Read)
        .map_err(|e| e.to_string())?;
    let (rss, minor, _) = rss_faults(&m, pid)?;
    let zero = m.tasks().zero_pfn.map_or(0, |p| p.0);
    t.state("after", &pte_line(&m, pid, a)?);
    t.explain(
        "a minor fault maps the zero page read-only; RSS does not count it",
        "mm/memory.c do_anonymous_page: a read fault without FAULT_FLAG_WRITE maps \
         my_zero_pfn with pte_mkspecial, no page allocated and no rss counter touched",
    );
    t.checkpoint("zero page pfn", format!("{zero:#x}"));
    t.checkpoint(
        "pfn after read",
        format!("{:#x}", pfn_at(&m, pid, a)?.unwrap_or(0)),
    );
    t.checkpoint("rss after read", rss);
    t.checkpoint("minor faults after read", minor);

    t.step("write the first page");
    m.store(pid, a, b"hi").map_err(|e| e.to_string())?;
    let (rss, minor, _) = rss_faults(&m, pid)?;
    t.state("after", &pte_line(&m, pid, a)?);
    t.explain(
        "a write-protect fault on the zero page: a new zeroed frame, mapped writable",
        "mm/memory.c do_wp_page → wp_page_copy: the zero page is never written, so a write \
         allocates a zeroed page (vma_alloc_zeroed_movable_folio) and MM_ANONPAGES +1",
    );
    t.checkpoint("rss after write", rss);
    t.checkpoint("minor faults after write", minor);

    t.step("write the second page, never read before");
    m.store(pid, a + PAGE, b"hi").map_err(|e| e.to_string())?;
    let (rss, minor, major) = rss_faults(&m, pid)?;
    t.state(
        "after",
        &format!(
            "{}\n{}",
            pte_line(&m, pid, a)?,
            pte_line(&m, pid, a + PAGE)?
        ),
    );
    t.explain(
        "one fault allocates and maps the zeroed page directly, writable and dirty",
        "mm/memory.c do_anonymous_page with FAULT_FLAG_WRITE: folio allocated zeroed, \
         pte made writable and dirty (maybe_mkwrite(pte_mkdirty))",
    );
    t.checkpoint("rss after second write", rss);
    t.checkpoint("minor faults after second write", minor);
    t.checkpoint("major faults", major);
    Ok(())
}

/// Topic `cow`: fork write-protects a private page in both; the child's
/// write copies it, the parent's later write reuses it.
fn cow(t: &mut Tour) -> Result<(), String> {
    let mut m = boot()?;
    let parent = spawn(&mut m, "parent")?;
    t.say(
        "fork copies the page tables, not the pages: private pages become\n\
         read-only in both processes and are copied on the first write.",
    );
    t.step("the parent writes a page, then forks");
    let a = mmap_anon(&mut m, parent, 1)?;
    m.store(parent, a, b"parent data")
        .map_err(|e| e.to_string())?;
    let before = pte_line(&m, parent, a)?;
    let child = m.fork(parent).map_err(|e| format!("fork: {e}"))?;
    let pfn = pfn_at(&m, parent, a)?.ok_or("parent page not mapped")?;
    t.state("before fork", &format!("parent {before}"));
    t.state("after fork", &both_ptes(&m, parent, child, a)?);
    t.explain(
        "both ptes map the same frame, now read-only; its mapcount is 2",
        "mm/memory.c copy_present_pte: a private writable pte is write-protected in parent \
         and child (ptep_set_wrprotect) and the folio's mapcount raised (folio_dup_file_rmap / anon)",
    );
    t.checkpoint("shared pfn", format!("{pfn:#x}"));
    t.checkpoint(
        "child pfn after fork",
        format!("{:#x}", pfn_at(&m, child, a)?.unwrap_or(0)),
    );
    t.checkpoint("mapcount after fork", mapcount(&m, pfn));

    t.step("the child writes: the page is copied");
    m.store(child, a, b"child!").map_err(|e| e.to_string())?;
    let cpfn = pfn_at(&m, child, a)?.ok_or("child page not mapped")?;
    let data = m.load(child, a, 11).map_err(|e| e.to_string())?;
    t.state("after", &both_ptes(&m, parent, child, a)?);
    t.explain(
        "the child gets a new frame with the old contents, then its write lands there",
        "mm/memory.c do_wp_page → wp_page_copy: a shared anonymous page (mapcount > 1) \
         cannot be reused, so it is copied and the old one's mapcount drops",
    );
    t.checkpoint("child pfn after write", format!("{cpfn:#x}"));
    t.checkpoint("child reads", String::from_utf8_lossy(&data));
    t.checkpoint("old frame mapcount", mapcount(&m, pfn));
    t.checkpoint("new frame mapcount", mapcount(&m, cpfn));

    t.step("the parent writes: its page is reused, not copied");
    let minor = rss_faults(&m, parent)?.1;
    m.store(parent, a, b"PARENT").map_err(|e| e.to_string())?;
    let ppfn = pfn_at(&m, parent, a)?.ok_or("parent page not mapped")?;
    let data = m.load(parent, a, 11).map_err(|e| e.to_string())?;
    t.state("after", &format!("parent {}", pte_line(&m, parent, a)?));
    t.explain(
        "a write fault, but the parent is the page's only user: the pte is made writable",
        "mm/memory.c do_wp_page → wp_can_reuse_anon_folio: an exclusive anonymous folio \
         (refcount 1) is reused in place (wp_page_reuse), no copy",
    );
    t.checkpoint("parent pfn after write", format!("{ppfn:#x}"));
    t.checkpoint("parent reads", String::from_utf8_lossy(&data));
    t.checkpoint("parent write faults", rss_faults(&m, parent)?.1 - minor);
    Ok(())
}

/// The static test binary the brk and exec topics run (its sha256 is
/// checked by the tests).
const STATIC_BIN: &str = "tests/fixtures/bin/mmap_basic-static";

/// An ELF segment's `p_flags` as `r-x`.
fn seg_perms(flags: u32) -> String {
    let bit = |b: u32, c: char| if flags & b != 0 { c } else { '-' };
    [bit(4, 'r'), bit(2, 'w'), bit(1, 'x')].iter().collect()
}

/// Topic `exec`: the static fixture's PT_LOAD segments, the VMAs they
/// become, the bss and the initial stack.
fn exec(t: &mut Tour) -> Result<(), String> {
    use machine::exec::elf;
    use machine::exec::stack::{AT_ENTRY, AT_PHDR, AT_PHNUM, AT_RANDOM};
    let mut m = boot()?;
    let pid = spawn(&mut m, "tour")?;
    let path = fixture(STATIC_BIN)?;
    let bytes = std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?;
    let ehdr = elf::parse_ehdr(&bytes).ok_or("not an ELF file")?;
    let file = machine::hostfs::HostFile::open(&path).map_err(|e| format!("{path}: {e}"))?;
    let loads: Vec<elf::Phdr> = elf::load_elf_phdrs(&ehdr, &file)
        .ok_or("bad program headers")?
        .into_iter()
        .filter(|p| p.p_type == 1)
        .collect();
    t.say(
        "exec replaces the address space with the program's: each PT_LOAD\n\
         segment of the file becomes a VMA, the bss is zero-filled, and the\n\
         stack gets argc, argv, envp and the auxiliary vector.",
    );
    t.step("the program's PT_LOAD segments, read from the file");
    let mut table = String::from("offset   vaddr    filesz   memsz    flags\n");
    for p in &loads {
        table.push_str(&format!(
            "{:06x}   {:06x}   {:06x}   {:06x}   {}\n",
            p.p_offset,
            p.p_vaddr,
            p.p_filesz,
            p.p_memsz,
            seg_perms(p.p_flags)
        ));
    }
    t.state("mmap_basic-static", &table);
    t.explain(
        &format!(
            "{} loadable segments, entry {:#x}; the last has memsz > filesz: the bss",
            loads.len(),
            ehdr.e_entry
        ),
        "ELF gABI: PT_LOAD maps [p_offset, +p_filesz) at p_vaddr and zero-fills up to p_memsz",
    );
    t.checkpoint("PT_LOAD segments", loads.len());
    t.checkpoint("entry", format!("{:#x}", ehdr.e_entry));

    t.step("exec: the segments become VMAs");
    let r = m
        .exec(
            pid,
            &path,
            &["mmap_basic".to_string(), "hi".to_string()],
            &["LANG=C".to_string()],
        )
        .map_err(|e| format!("exec: {e}"))?;
    let text = maps(&mut m, pid)?;
    t.state("after", &text);
    let file_vmas = text.lines().filter(|l| l.contains("mmap_basic")).count();
    t.explain(
        "each PT_LOAD becomes a file VMA over its pages, the bss an anonymous one; stack and vdso at the top",
        "fs/binfmt_elf.c load_elf_binary → elf_load → vm_mmap(MAP_PRIVATE|MAP_FIXED) per \
         PT_LOAD, prot from p_flags (make_prot); setup_arg_pages places the stack",
    );
    t.checkpoint("file VMAs", file_vmas);

    t.step("the bss: the file page's tail is zeroed, the rest is anonymous");
    let last = loads.last().ok_or("no PT_LOAD")?;
    let file_end = last.p_vaddr + last.p_filesz;
    let page_end = file_end.next_multiple_of(PAGE);
    let mem_end = last.p_vaddr + last.p_memsz;
    let tail = m
        .read_user(pid, file_end, 16)
        .map_err(|e| format!("read bss: {e}"))?;
    let bss_vma = process(&m, pid)?
        .mm
        .vma_lookup(VirtAddr(page_end))
        .map(|v| (v.start.0, v.end.0, v.is_anonymous()));
    t.state(
        "bss",
        &format!(
            "file data ends {file_end:#x}, its page ends {page_end:#x}, memsz ends {mem_end:#x}\n\
             16 bytes at {file_end:#x}: {}\n\
             VMA at {page_end:#x}: {}",
            tail.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" "),
            bss_vma.map_or("none".into(), |(s, e, a)| format!(
                "{s:#x}-{e:#x} {}",
                if a { "anonymous" } else { "file" }
            ))
        ),
    );
    t.explain(
        "the bytes past filesz in the last file page read as zero; the bss beyond it is anonymous",
        "fs/binfmt_elf.c elf_load: padzero clears the file page's tail, then vm_brk_flags maps \
         [page end, memsz end) anonymous (zero-filled on demand)",
    );
    t.checkpoint("bss tail zero", tail.iter().all(|&b| b == 0));
    t.checkpoint(
        "bss VMA",
        bss_vma.map_or("none".into(), |(s, e, _)| format!("{s:#x}-{e:#x}")),
    );

    t.step("the initial stack: argc, argv, envp, auxv");
    let sp = r.start_stack.0;
    let words = m
        .read_user(pid, sp, 6 * 8)
        .map_err(|e| format!("read stack: {e}"))?;
    let word = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&words[i * 8..i * 8 + 8]);
        u64::from_le_bytes(b)
    };
    let cstr = |m: &mut Machine, va: u64| -> Result<String, String> {
        let b = m.read_user(pid, va, 32).map_err(|e| format!("read: {e}"))?;
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        Ok(String::from_utf8_lossy(&b[..end]).into_owned())
    };
    let argc = word(0);
    let argv0 = cstr(&mut m, word(1))?;
    let argv1 = cstr(&mut m, word(2))?;
    let env0 = cstr(&mut m, word(4))?;
    let aux = |k: u64| r.auxv.iter().find(|(t, _)| *t == k).map_or(0, |(_, v)| *v);
    t.state(
        "stack",
        &format!(
            "sp {sp:#x}: argc {argc}\n\
             argv[0] {:#x} \"{argv0}\", argv[1] {:#x} \"{argv1}\", argv[2] NULL\n\
             envp[0] {:#x} \"{env0}\", envp[1] NULL\n\
             auxv: AT_PHDR {:#x}  AT_PHNUM {}  AT_ENTRY {:#x}  AT_RANDOM {:#x}",
            word(1),
            word(2),
            word(4),
            aux(AT_PHDR),
            aux(AT_PHNUM),
            aux(AT_ENTRY),
            aux(AT_RANDOM),
        ),
    );
    t.explain(
        "sp points at argc, then the argv and envp pointer arrays, then the auxv pairs",
        "fs/binfmt_elf.c create_elf_tables: AT_PHDR = load address of the program headers, \
         AT_ENTRY = e_entry, AT_RANDOM = 16 random bytes copied high on the stack",
    );
    t.checkpoint("argc", argc);
    t.checkpoint("argv", format!("{argv0} {argv1}"));
    t.checkpoint("envp[0]", env0);
    t.checkpoint("AT_PHDR", format!("{:#x}", aux(AT_PHDR)));
    t.checkpoint("AT_PHNUM", aux(AT_PHNUM));
    t.checkpoint("AT_ENTRY", format!("{:#x}", aux(AT_ENTRY)));
    t.checkpoint("AT_RANDOM above sp", aux(AT_RANDOM) > sp);
    Ok(())
}

/// Topic `oom`: badness and oom_score of each task, the OOM kill of the
/// highest, the machine going on.
fn oom(t: &mut Tour) -> Result<(), String> {
    const MIB: u64 = 1 << 20;
    let mut m = boot()?;
    let init = spawn(&mut m, "init")?;
    let a = spawn(&mut m, "big")?;
    let b = spawn(&mut m, "small")?;
    t.say(
        "With no swap, anonymous memory cannot be reclaimed. When an allocation\n\
         fails even after reclaim, the OOM killer picks the task with the\n\
         highest badness and kills it, freeing its memory at once.",
    );
    t.step("two tasks fill memory: big 24 MiB, small 4 MiB with oom_score_adj 1000");
    let va = mmap_anon(&mut m, a, 24 * MIB / PAGE)?;
    m.touch(a, va, 24 * MIB, Access::Write)
        .map_err(|e| e.to_string())?;
    let vb = mmap_anon(&mut m, b, MIB / PAGE * 4)?;
    m.touch(b, vb, 4 * MIB, Access::Write)
        .map_err(|e| e.to_string())?;
    m.set_oom_score_adj(b, 1000)
        .map_err(|e| format!("oom_score_adj: {e}"))?;
    let score = |m: &mut Machine, pid: u32| -> Result<String, String> {
        Ok(m.proc_pid(pid, "oom_score")?.trim().to_string())
    };
    let (sa, sb, si) = (score(&mut m, a)?, score(&mut m, b)?, score(&mut m, init)?);
    let rss = |m: &Machine, pid: u32| process(m, pid).map(|p| p.mm.rss_pages());
    t.state(
        "after",
        &format!(
            "pid  comm   rss(pages) oom_score_adj /proc/PID/oom_score\n\
             {init:>3}  init   {:>10} {:>13} {si:>19}\n\
             {a:>3}  big    {:>10} {:>13} {sa:>19}\n\
             {b:>3}  small  {:>10} {:>13} {sb:>19}",
            rss(&m, init)?,
            0,
            rss(&m, a)?,
            0,
            rss(&m, b)?,
            1000
        ),
    );
    t.explain(
        "small scores higher than big: adj 1000 adds all of memory to its badness",
        "mm/oom_kill.c oom_badness: rss + swap entries + page-table pages + \
         oom_score_adj * totalpages / 1000; fs/proc/base.c proc_oom_score scales it by totalpages",
    );
    t.checkpoint("oom_score big", &sa);
    t.checkpoint("oom_score small", &sb);
    t.checkpoint("rss small", rss(&m, b)?);

    t.step("big touches more than is free: reclaim fails, the OOM killer runs");
    let free0 = m.pa().nr_free_pages();
    let more = (free0 + 128) * PAGE;
    let vmore = mmap_anon(&mut m, a, more / PAGE)?;
    let r = m.touch(a, vmore, more, Access::Write);
    let log = m.dmesg();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("invoked oom-killer") || l.contains("Out of memory"))
        .collect();
    t.state(
        "dmesg",
        &format!(
            "free pages before: {free0}, big asks for {}\n{}",
            more / PAGE,
            lines.join("\n")
        ),
    );
    t.explain(
        "small is chosen (highest badness) and killed; big's fault is retried and succeeds",
        "mm/oom_kill.c out_of_memory → select_bad_process → oom_kill_process; \
         the victim's memory is freed by the exit path (and the oom reaper in Linux)",
    );
    t.checkpoint(
        "big's access",
        r.map_or_else(|e| e.to_string(), |_| "ok".into()),
    );
    t.checkpoint("small alive", m.process(b).is_some());
    t.checkpoint(
        "killed line",
        lines
            .iter()
            .any(|l| l.contains(&format!("Killed process {b} (small)"))),
    );

    t.step("the machine keeps working");
    let vc = mmap_anon(&mut m, init, 1)?;
    let ok = m.store(init, vc, b"still here").is_ok();
    let back = m.load(init, vc, 10).map_err(|e| e.to_string())?;
    t.state(
        "after",
        &format!(
            "init writes and reads back: {:?}",
            String::from_utf8_lossy(&back)
        ),
    );
    t.explain(
        "init, never a candidate, still allocates: the kill freed memory",
        "mm/oom_kill.c oom_unkillable_task: init (pid 1) and kernel threads are never chosen",
    );
    t.checkpoint("init store ok", ok);
    Ok(())
}

/// The meminfo lines about the page cache.
fn meminfo_cache(m: &Machine) -> Result<String, String> {
    Ok(m.proc("meminfo")?
        .lines()
        .filter(|l| l.starts_with("Cached:") || l.starts_with("Mapped:"))
        .collect::<Vec<_>>()
        .join("\n"))
}

/// Topic `filefault`: a file mapping's major fault with read-around, a
/// second process's minor fault with fault-around, then a shared write
/// written back by msync.
fn filefault(t: &mut Tour) -> Result<(), String> {
    let mut m = boot()?;
    let path = fixture(STATIC_BIN)?;
    let map_file = |m: &mut Machine, pid: u32| -> Result<u64, String> {
        let f = machine::hostfs::HostFile::open(&path).map_err(|e| format!("{path}: {e}"))?;
        m.sys_mmap(pid, 0, 64 * PAGE, PROT_READ, MAP_PRIVATE, Some(f), 0)
            .map_err(|e| format!("mmap: {e}"))
    };
    let p1 = spawn(&mut m, "first")?;
    let p2 = spawn(&mut m, "second")?;
    t.say(
        "A file mapping is filled from the page cache. The first fault reads\n\
         the page from the file (a major fault) and maps its cached neighbours\n\
         too; another process mapping the same file finds it cached.",
    );
    t.step("the first process maps 64 pages of a file, nothing is read");
    let a = map_file(&mut m, p1)?;
    let cached0 = meminfo_cache(&m)?;
    t.state("after", &cached0);
    t.explain(
        "mmap of a file only creates the VMA; no page is read yet",
        "mm/mmap.c mmap_region → the file's mmap method (generic_file_mmap) sets vm_ops; \
         pages come at fault time (filemap_fault)",
    );
    t.checkpoint("rss after mmap", rss_faults(&m, p1)?.0);

    t.step("it reads page 20: a major fault and read-around");
    m.touch(p1, a + 20 * PAGE, 1, Access::Read)
        .map_err(|e| e.to_string())?;
    let (rss, minor, major) = rss_faults(&m, p1)?;
    let resident = m
        .sys_mincore(p1, a, 64 * PAGE)
        .map_err(|e| format!("mincore: {e}"))?;
    let in_cache = resident.iter().filter(|&&b| b & 1 != 0).count();
    t.state(
        "after",
        &format!(
            "{}\nrss {rss}, pages of the range in the page cache (mincore) {in_cache}",
            meminfo_cache(&m)?
        ),
    );
    t.explain(
        "a major fault reads 32 pages (128 KiB) around page 20 into the cache but maps only page 20",
        "mm/filemap.c filemap_fault → do_sync_mmap_readahead: read-around of ra_pages centred on \
         the fault (VM_FAULT_MAJOR); fault-around (mm/memory.c do_read_fault) ran first and found nothing cached",
    );
    t.checkpoint("major faults first", major);
    t.checkpoint("minor faults first", minor);
    t.checkpoint("rss first", rss);
    t.checkpoint("cached pages of range", in_cache);

    t.step("a second process maps the same file and reads page 20");
    let b = map_file(&mut m, p2)?;
    m.touch(p2, b + 20 * PAGE, 1, Access::Read)
        .map_err(|e| e.to_string())?;
    let (rss, minor, major) = rss_faults(&m, p2)?;
    let same = pfn_at(&m, p1, a + 20 * PAGE)? == pfn_at(&m, p2, b + 20 * PAGE)?;
    t.state(
        "after",
        &format!(
            "{}\nfirst  {}\nsecond {}",
            meminfo_cache(&m)?,
            pte_line(&m, p1, a + 20 * PAGE)?,
            pte_line(&m, p2, b + 20 * PAGE)?
        ),
    );
    t.explain(
        "a minor fault: the cached frame is shared, and fault-around maps 16 cached pages at once",
        "mm/memory.c do_read_fault → do_fault_around → filemap_map_pages maps the uptodate \
         cached pages of the fault_around_bytes (64 KiB) window; no I/O, so no VM_FAULT_MAJOR",
    );
    t.checkpoint("major faults second", major);
    t.checkpoint("minor faults second", minor);
    t.checkpoint("rss second", rss);
    t.checkpoint("same frame", same);
    shared_write(t, &mut m, p1)
}

/// What a shared file page's write and msync change: its pte, PG_dirty,
/// the node's dirty/written counters and the bytes on the disk.
fn dirty_state(
    m: &Machine,
    pid: u32,
    va: u64,
    file: &machine::brd::BrdFile,
    len: usize,
) -> Result<(String, bool), String> {
    let dirty = pfn_at(m, pid, va)?
        .and_then(|pfn| m.pa().page(mm::types::Pfn(pfn)))
        .is_some_and(|p| p.test(mm::memmap::PageFlags::DIRTY));
    let disk = file.disk();
    Ok((
        format!(
            "{}
PageDirty {}
nr_dirty {}  nr_dirtied {}  nr_written {}
on disk: {:?}",
            pte_line(m, pid, va)?,
            if dirty { "yes" } else { "no" },
            vmstat(m, "nr_dirty")?,
            vmstat(m, "nr_dirtied")?,
            vmstat(m, "nr_written")?,
            String::from_utf8_lossy(&disk[..len.min(disk.len())]),
        ),
        dirty,
    ))
}

/// The filefault topic's last steps: a write through a MAP_SHARED mapping
/// of a disk-backed file (a RAM-disk file: host files are read-only by
/// design) dirties the page through its pte; msync(MS_SYNC) writes it
/// back to the disk.
fn shared_write(t: &mut Tour, m: &mut Machine, pid: u32) -> Result<(), String> {
    const OLD: &[u8] = b"old text on the disk";
    const NEW: &[u8] = b"new text via the pte";
    let mut bytes = OLD.to_vec();
    bytes.resize(4 * PAGE as usize, b'.');
    let file = machine::brd::BrdFile::new("/mnt/ram0/notes", 12, bytes);
    let handle: mm::file::FileRef = file.clone();

    t.step("it maps a 4-page file of a RAM disk shared and writable, and reads page 0");
    let a = m
        .sys_mmap(
            pid,
            0,
            4 * PAGE,
            PROT_READ | PROT_WRITE,
            mm::mmap::MAP_SHARED,
            Some(handle),
            0,
        )
        .map_err(|e| format!("mmap: {e}"))?;
    m.touch(pid, a, 1, Access::Read)
        .map_err(|e| e.to_string())?;
    let (before, _) = dirty_state(m, pid, a, &file, NEW.len())?;
    t.state("after", &before);
    t.explain(
        "the page is mapped read-only although the mapping is writable, so the first write traps",
        "mm/mmap.c vma_wants_writenotify: a shared writable mapping of a file with dirty \
         accounting keeps its ptes write-protected until a write (since 2.6.19)",
    );
    let pte_writable = |m: &Machine| -> Result<bool, String> {
        Ok(process(m, pid)?
            .pt
            .lookup(VirtAddr(a))
            .is_some_and(|(p, _)| p.present() && p.writable()))
    };
    let pte_dirty = |m: &Machine| -> Result<bool, String> {
        Ok(process(m, pid)?
            .pt
            .lookup(VirtAddr(a))
            .is_some_and(|(p, _)| p.present() && p.dirty()))
    };
    t.checkpoint("pte writable after read", pte_writable(m)?);
    let base = [vmstat(m, "nr_dirtied")?, vmstat(m, "nr_written")?];

    t.step("it writes 20 bytes at the start of page 0");
    m.write_user(pid, a, NEW)
        .map_err(|e| format!("write: {e}"))?;
    let (after, dirty) = dirty_state(m, pid, a, &file, NEW.len())?;
    t.state("after", &after);
    t.explain(
        "the write-protect fault makes the pte writable and dirty and marks the page dirty; \
         the disk still has the old bytes",
        "mm/memory.c do_wp_page → wp_page_shared: folio_mark_dirty (NR_FILE_DIRTY, NR_DIRTIED) \
         and a writable, dirty pte; writeback happens later",
    );
    t.checkpoint("pte dirty after write", pte_dirty(m)?);
    t.checkpoint("pte writable after write", pte_writable(m)?);
    t.checkpoint("PageDirty after write", dirty);
    t.checkpoint("nr_dirty after write", vmstat(m, "nr_dirty")?);
    t.checkpoint("nr_dirtied by write", vmstat(m, "nr_dirtied")? - base[0]);
    t.checkpoint(
        "disk after write",
        String::from_utf8_lossy(&file.disk()[..NEW.len()]),
    );

    t.step("msync(MS_SYNC) of the mapping");
    m.sys_msync(pid, a, 4 * PAGE, mm::msync::MS_SYNC)
        .map_err(|e| format!("msync: {e}"))?;
    let (after, dirty) = dirty_state(m, pid, a, &file, NEW.len())?;
    t.state("after", &after);
    t.explain(
        "the pte's dirty bit is moved to the page, the page is written to the disk and cleaned, \
         and the pte is write-protected again to catch the next write",
        "msync(2): MS_SYNC requests an update and waits for it; mm/msync.c → vfs_fsync_range → \
         folio_mkclean (pte clean, read-only) and writepage (PG_dirty cleared, NR_WRITTEN)",
    );
    t.checkpoint("pte dirty after msync", pte_dirty(m)?);
    t.checkpoint("pte writable after msync", pte_writable(m)?);
    t.checkpoint("PageDirty after msync", dirty);
    t.checkpoint("nr_dirty after msync", vmstat(m, "nr_dirty")?);
    t.checkpoint("nr_written by msync", vmstat(m, "nr_written")? - base[1]);
    t.checkpoint(
        "disk after msync",
        String::from_utf8_lossy(&file.disk()[..NEW.len()]),
    );
    Ok(())
}

/// A vmstat counter.
fn vmstat(m: &Machine, name: &str) -> Result<u64, String> {
    m.proc("vmstat")?
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .ok_or_else(|| format!("no vmstat {name}"))
}

/// meminfo's LRU lines (kB), in its order.
const LRU_LINES: [&str; 4] = [
    "Active(anon):",
    "Inactive(anon):",
    "Active(file):",
    "Inactive(file):",
];

/// The LRU lines of meminfo, and their values in pages.
fn lru_lists(m: &Machine) -> Result<(String, [u64; 4]), String> {
    let text = m.proc("meminfo")?;
    let mut pages = [0; 4];
    let mut lines = Vec::new();
    for (i, name) in LRU_LINES.iter().enumerate() {
        let l = text
            .lines()
            .find(|l| l.starts_with(name))
            .ok_or_else(|| format!("no meminfo {name}"))?;
        let kb: u64 = l[name.len()..]
            .trim()
            .trim_end_matches(" kB")
            .parse()
            .map_err(|_| format!("meminfo {l:?}"))?;
        pages[i] = kb / 4;
        lines.push(l);
    }
    Ok((lines.join("\n"), pages))
}

/// The reclaim counters of vmstat the topic follows, as `name value` lines.
const RECLAIM_EVENTS: [&str; 6] = [
    "pageoutrun",
    "pgscan_kswapd",
    "pgsteal_kswapd",
    "pgrefill",
    "pgactivate",
    "pgdeactivate",
];

fn reclaim_events(m: &Machine) -> Result<Vec<u64>, String> {
    RECLAIM_EVENTS.iter().map(|e| vmstat(m, e)).collect()
}

/// The pages of `[a, a + n pages)` of `pid` that are still present.
fn resident(m: &Machine, pid: u32, a: u64, n: u64) -> Result<u64, String> {
    let mut k = 0;
    for i in 0..n {
        k += u64::from(pfn_at(m, pid, a + i * PAGE)?.is_some());
    }
    Ok(k)
}

/// Topic `lru`: new pages on the inactive list, referenced ones kept by
/// second chance, kswapd woken at the low watermark reclaiming to high.
fn lru(t: &mut Tour) -> Result<(), String> {
    let mut m = Machine::boot(MachineConfig {
        ram: 64 << 20,
        cpus: 1,
        swap: Some(machine::swapfile::SwapSpec::Make(64 << 20)),
        ..Default::default()
    })
    .map_err(|e| format!("boot: {e}"))?;
    let pid = spawn(&mut m, "tour")?;
    t.say(
        "Each node keeps its pages on LRU lists, inactive and active, for\n\
         anonymous and for file pages. Reclaim takes from the tail of the\n\
         inactive lists; a page used again is given a second chance.",
    );
    t.step("a process writes 2000 new anonymous pages");
    let (before, b) = lru_lists(&m)?;
    let a = mmap_anon(&mut m, pid, 2000)?;
    for i in 0..2000 {
        m.store(pid, a + i * PAGE, b"lru")
            .map_err(|e| e.to_string())?;
    }
    let (after, c) = lru_lists(&m)?;
    t.state("before", &before);
    t.state("after", &after);
    t.explain(
        "the new anonymous pages joined the inactive anon list, not the active one",
        "mm/memory.c do_anonymous_page → folio_add_lru_vma: since 5.9 new anon pages start \
         inactive (workingset protection), through the per-CPU folio batch (mm/swap.c)",
    );
    t.checkpoint("inactive anon pages added", c[1].saturating_sub(b[1]));
    t.checkpoint("active anon pages added", c[0].saturating_sub(b[0]));

    t.step("11500 more pages are written: memory runs low");
    let ev0 = reclaim_events(&m)?;
    let hog = mmap_anon(&mut m, pid, 11500)?;
    for i in 0..11500 {
        m.store(pid, hog + i * PAGE, b"x")
            .map_err(|e| e.to_string())?;
    }
    let ev1 = reclaim_events(&m)?;
    let (lists, _) = lru_lists(&m)?;
    let counters: Vec<String> = RECLAIM_EVENTS
        .iter()
        .zip(ev0.iter().zip(&ev1))
        .map(|(n, (x, y))| format!("{n:<15} {x:>7} -> {y:>7}"))
        .collect();
    t.state("vmstat", &counters.join("\n"));
    t.state("meminfo", &lists);
    t.explain(
        "kswapd woke and scanned: pages whose accessed bit was set were kept or activated, the bit cleared",
        "mm/page_alloc.c wakes kswapd below a zone's low watermark; mm/vmscan.c \
         folio_check_references clears the young bits it finds through rmap (folio_referenced)",
    );
    t.checkpoint("kswapd runs", ev1[0] - ev0[0]);
    t.checkpoint("scanned >= stolen", ev1[1] - ev0[1] >= ev1[2] - ev0[2]);

    t.step("the first 200 of the 2000 pages are read again; then 3000 more pages are written");
    let before = resident(&m, pid, a, 2000)?;
    let major0 = rss_faults(&m, pid)?.2;
    for i in 0..200 {
        m.load(pid, a + i * PAGE, 1).map_err(|e| e.to_string())?;
    }
    let major = rss_faults(&m, pid)?.2 - major0;
    let more = mmap_anon(&mut m, pid, 3000)?;
    for i in 0..3000 {
        m.store(pid, more + i * PAGE, b"y")
            .map_err(|e| e.to_string())?;
    }
    let used = resident(&m, pid, a, 200)?;
    let idle = resident(&m, pid, a + 200 * PAGE, 1800)?;
    t.state(
        "resident",
        &format!(
            "before: {before} of the 2000 resident; the reads took {major} major faults\n\
             after:  pages read again: {used} of 200; pages not used again: {idle} of 1800"
        ),
    );
    t.explain(
        "the 200 pages read again (the swapped ones faulted back) all stayed; the others went to swap",
        "mm/vmscan.c folio_check_references: a page referenced since the last scan gets a \
         second chance (kept, or activated) instead of being reclaimed",
    );
    t.checkpoint("resident before the reads", before);
    t.checkpoint("major faults of the reads", major);
    t.checkpoint("read-again pages resident (%)", used * 100 / 200);
    t.checkpoint("other pages resident (%)", idle * 100 / 1800);

    t.step("after kswapd: each zone's free pages against its watermarks");
    let zones = m.proc("zoneinfo")?;
    // (zone, free, min, low, high) of each zone with memory.
    let mut table: Vec<(String, [u64; 4])> = Vec::new();
    let mut zone = String::new();
    for l in zones.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        let n = |i: usize| w.get(i).and_then(|v| v.parse().ok()).unwrap_or(0);
        match w.as_slice() {
            ["Node", _, "zone", z] => zone = (*z).to_string(),
            ["pages", "free", _] => table.push((zone.clone(), [n(2), 0, 0, 0])),
            [k @ ("min" | "low" | "high"), _] => {
                if let Some((_, v)) = table.last_mut() {
                    v[match *k {
                        "min" => 1,
                        "low" => 2,
                        _ => 3,
                    }] = n(1);
                }
            }
            // Zones without memory have watermarks but nothing to show.
            ["managed", "0"] => {
                table.pop();
            }
            _ => {}
        }
    }
    let rows: Vec<String> = table
        .iter()
        .map(|(z, [f, mi, lo, hi])| {
            format!("{z:<6} free {f:>6}  min {mi:>5}  low {lo:>5}  high {hi:>5}")
        })
        .collect();
    let balanced = table.iter().filter(|(_, v)| v[0] >= v[3]).count();
    t.state("zoneinfo", &rows.join("\n"));
    t.explain(
        "kswapd went back to sleep once the zones were balanced again",
        "mm/vmscan.c kswapd: balance_pgdat stops when every eligible zone is above its high \
         watermark (pgdat_balanced), then kswapd_try_to_sleep",
    );
    t.checkpoint("zones with memory", rows.len());
    t.checkpoint("zones at or above high", balanced);
    Ok(())
}

/// Topic `swap`: a page pushed to swap under pressure, faulted back in,
/// its slot freed at munmap.
fn swap(t: &mut Tour) -> Result<(), String> {
    let mut m = Machine::boot(MachineConfig {
        ram: 64 << 20,
        cpus: 1,
        swap: Some(machine::swapfile::SwapSpec::Make(64 << 20)),
        ..Default::default()
    })
    .map_err(|e| format!("boot: {e}"))?;
    let pid = spawn(&mut m, "tour")?;
    t.say(
        "Anonymous pages have no file to go back to: under pressure reclaim\n\
         writes them to swap and leaves a swap entry in the page table; a\n\
         later access faults them back in.",
    );
    t.step("write one page, then fill memory with 14000 more");
    let a = mmap_anon(&mut m, pid, 1)?;
    m.store(pid, a, b"keep me").map_err(|e| e.to_string())?;
    let before = pte_line(&m, pid, a)?;
    let big = mmap_anon(&mut m, pid, 14000)?;
    for i in 0..14000 {
        m.store(pid, big + i * PAGE, b"x")
            .map_err(|e| e.to_string())?;
    }
    let swaps = m.proc("swaps")?;
    let pte = process(&m, pid)?.pt.lookup(VirtAddr(a)).map(|(p, _)| p);
    // The swap entry in the pte, decoded as x86-64 lays it out
    // (arch/x86/include/asm/pgtable_64.h, __swp_type/__swp_offset): the
    // type in bits 59-63, the offset inverted (an L1TF mitigation: a
    // not-present pte must not point at real memory) in bits 9-58.
    let entry = pte.and_then(|p| p.swap_entry(mm::arch::pte::PagingMode::X86_64L4));
    let decoded = match entry {
        Some(e) => format!(
            "swap entry: type {} (bits 59-63), offset {} (bits 9-58, inverted); swap_map[{}] = {}",
            e.ty,
            e.offset,
            e.offset,
            m.swap().table.swap_count(e)
        ),
        None => "no swap entry".to_string(),
    };
    t.state("before", &before);
    t.state(
        "after",
        &format!("{}\n{decoded}\n{}", pte_line(&m, pid, a)?, swaps.trim_end()),
    );
    t.explain(
        "the first page, oldest on the inactive anon list, went to swap: its pte holds a swap entry",
        "mm/vmscan.c shrink_folio_list → add_to_swap + pageout; mm/rmap.c try_to_unmap_one \
         replaces the pte with the swap entry (type, offset) of the slot",
    );
    t.checkpoint("pte is swap entry", pte.is_some_and(|p| p.is_swap()));
    t.checkpoint("swap pte", format!("{:#018x}", pte.map_or(0, |p| p.raw())));
    t.checkpoint("swap type", entry.map_or(-1, |e| i64::from(e.ty)));
    t.checkpoint("swap offset", entry.map_or(0, |e| e.offset));
    t.checkpoint(
        "swap_map count",
        entry.map_or(0, |e| m.swap().table.swap_count(e)),
    );
    t.checkpoint("pswpout > 0", vmstat(&m, "pswpout")? > 0);

    t.step("read the page back");
    let (_, _, major0) = rss_faults(&m, pid)?;
    let pswpin0 = vmstat(&m, "pswpin")?;
    let data = m.load(pid, a, 7).map_err(|e| e.to_string())?;
    let (_, _, major1) = rss_faults(&m, pid)?;
    let pswpin = vmstat(&m, "pswpin")? - pswpin0;
    t.state(
        "after",
        &format!("{}\npswpin +{pswpin}", pte_line(&m, pid, a)?),
    );
    t.explain(
        "a major fault reads it from swap (with page-cluster neighbours), the data intact",
        "mm/memory.c do_swap_page → swapin_readahead (vm.page-cluster 3: up to 8 slots) into \
         the swap cache, then maps it (VM_FAULT_MAJOR); mm/page_io.c swap_read_folio",
    );
    t.checkpoint("data", String::from_utf8_lossy(&data));
    t.checkpoint("major faults", major1 - major0);
    t.checkpoint("pswpin", pswpin);

    t.step("unmap everything: the swap slots are freed");
    m.sys_munmap(pid, big, 14000 * PAGE)
        .map_err(|e| format!("munmap: {e}"))?;
    m.sys_munmap(pid, a, PAGE)
        .map_err(|e| format!("munmap: {e}"))?;
    let swaps = m.proc("swaps")?;
    let used: u64 = swaps
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        .unwrap_or(u64::MAX);
    t.state("after", swaps.trim_end());
    t.explain(
        "with the last reference gone each slot returns to the free map: Used is 0",
        "mm/memory.c zap_pte_range → free_swap_and_cache drops the slot's count; \
         mm/swapfile.c frees the slot when swap_map reaches 0",
    );
    t.checkpoint("swap used after unmap", used);
    Ok(())
}
