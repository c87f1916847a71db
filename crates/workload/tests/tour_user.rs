//! The address-space topics of `lmm tour`: each topic's checkpoints against
//! values derived here independently (from the recorded real kernel's
//! layout, the ELF file itself, or the rule the step narrates), plus: the
//! output is the same on every run and every step closes with its what and
//! why lines.

use sha2::{Digest, Sha256};
use workload::tour::{self, Tour};

/// 4 KiB pages.
const PAGE: u64 = 4096;

/// mmap_base with an 8 MiB RLIMIT_STACK and ASLR off, as recorded on the
/// real kernel (tests/fixtures/README.md: "so mmap_base = 0x7ffff7fff000").
const MMAP_BASE: u64 = 0x7fff_f7ff_f000;

/// Runs `name` twice, checks the two narrations are byte for byte the
/// same and that every step has exactly one what and one why line;
/// returns the first run.
fn run(name: &str) -> Tour {
    let topic = tour::topic(name).unwrap_or_else(|| panic!("no topic {name}"));
    let a = tour::run(topic).unwrap_or_else(|e| panic!("{e}"));
    let b = tour::run(topic).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(a.text(), b.text(), "{name}: output differs between runs");
    let count = |p: &str| a.text().lines().filter(|l| l.starts_with(p)).count();
    let steps = count("── step ");
    assert!(steps >= 3, "{name}: {steps} steps");
    assert_eq!(count("   what: "), steps, "{name}: a what line per step");
    assert_eq!(count("   why:  "), steps, "{name}: a why line per step");
    assert!(
        a.text().lines().count() <= 90,
        "{name}: {} lines",
        a.text().lines().count()
    );
    a
}

/// The checkpoint `name` of `t`.
fn cp<'a>(t: &'a Tour, name: &str) -> &'a str {
    t.value(name)
        .unwrap_or_else(|| panic!("no checkpoint {name:?} in\n{}", t.text()))
}

/// `v` as the tour prints addresses.
fn hex(v: u64) -> String {
    format!("{v:#x}")
}

#[test]
fn every_address_space_topic_runs() {
    for name in [
        "mmap",
        "brk",
        "exec",
        "demand-zero",
        "filefault",
        "cow",
        "lru",
        "swap",
        "oom",
    ] {
        let t = tour::run(tour::topic(name).expect("listed")).expect("runs");
        assert!(!t.checkpoints().is_empty(), "{name} records checkpoints");
    }
}

#[test]
fn mmap_places_top_down_and_merges_and_splits() {
    let t = run("mmap");
    assert_eq!(cp(&t, "mmap_base"), hex(MMAP_BASE));
    // Top-down: the highest gap below mmap_base that fits 4 pages.
    assert_eq!(cp(&t, "first mmap"), hex(MMAP_BASE - 4 * PAGE));
    assert_eq!(cp(&t, "second mmap"), hex(MMAP_BASE - 8 * PAGE));
    // Adjacent, same flags: one VMA; a middle mprotect splits into 3;
    // back to one; a hole in the middle leaves 2.
    assert_eq!(cp(&t, "VMAs after second mmap"), "1");
    assert_eq!(cp(&t, "VMAs after mprotect"), "3");
    assert_eq!(cp(&t, "VMAs after mprotect back"), "1");
    assert_eq!(cp(&t, "VMAs after munmap"), "2");
    assert!(t.text().contains("7ffff7ffa000-7ffff7ffc000 r--p"));
}

/// The static fixture the brk and exec topics run, checked by its hash so
/// that the values read from it below are the ones the tour saw.
fn static_binary() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/bin/mmap_basic-static"
    );
    let bytes = std::fs::read(path).expect("fixture");
    let digest: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        digest,
        "877072616771347c8a424ee7bcd30f3fa870ebb2637c7fbb86e86fcf08e1f9ad"
    );
    bytes
}

/// The PT_LOAD program headers of an ELF64 little-endian file as
/// (offset, vaddr, filesz, memsz, flags), read from the file's program
/// header table (e_phoff at 0x20, e_phentsize at 0x36, e_phnum at 0x38;
/// p_type 1 is PT_LOAD) — the layout of the System V gABI.
fn pt_loads(elf: &[u8]) -> Vec<(u64, u64, u64, u64, u32)> {
    let u16_at = |o: usize| u64::from(u16::from_le_bytes([elf[o], elf[o + 1]]));
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().expect("4 bytes"));
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().expect("8 bytes"));
    assert_eq!(&elf[..4], b"\x7fELF");
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    (0..phnum)
        .map(|i| (phoff + i * phentsize) as usize)
        .filter(|&o| u32_at(o) == 1)
        .map(|o| {
            (
                u64_at(o + 8),
                u64_at(o + 16),
                u64_at(o + 32),
                u64_at(o + 40),
                u32_at(o + 4),
            )
        })
        .collect()
}

#[test]
fn brk_starts_above_bss_and_moves() {
    let loads = pt_loads(&static_binary());
    let &(_, vaddr, filesz, memsz, _) = loads.last().expect("a PT_LOAD");
    // load_elf_binary: start_brk = page-aligned end of the last segment's
    // memory image (elf_brk), no random offset with ASLR off.
    let start_brk = (vaddr + memsz).div_ceil(PAGE) * PAGE;
    let t = run("brk");
    assert_eq!(cp(&t, "end_data"), hex(vaddr + filesz));
    assert_eq!(cp(&t, "start_brk"), hex(start_brk));
    assert_eq!(cp(&t, "brk after grow"), hex(start_brk + 3 * PAGE));
    assert_eq!(cp(&t, "brk after shrink"), hex(start_brk + PAGE));
    // A refused brk returns the old break.
    assert_eq!(cp(&t, "brk refused returns"), hex(start_brk + PAGE));
}

#[test]
fn demand_zero_maps_the_zero_page_then_a_fresh_one() {
    let t = run("demand-zero");
    assert_eq!(cp(&t, "rss after mmap"), "0");
    assert_eq!(cp(&t, "minor faults after mmap"), "0");
    // A read fault maps the zero page itself, not counted in RSS.
    assert_eq!(cp(&t, "pfn after read"), cp(&t, "zero page pfn"));
    assert_eq!(cp(&t, "rss after read"), "0");
    assert_eq!(cp(&t, "minor faults after read"), "1");
    // Each write fault allocates one page: RSS +1, one minor fault each.
    assert_eq!(cp(&t, "rss after write"), "1");
    assert_eq!(cp(&t, "minor faults after write"), "2");
    assert_eq!(cp(&t, "rss after second write"), "2");
    assert_eq!(cp(&t, "minor faults after second write"), "3");
    assert_eq!(cp(&t, "major faults"), "0");
}

#[test]
fn cow_copies_for_the_child_and_reuses_for_the_parent() {
    let t = run("cow");
    let shared = cp(&t, "shared pfn");
    assert_eq!(cp(&t, "child pfn after fork"), shared);
    assert_eq!(cp(&t, "mapcount after fork"), "2");
    assert_ne!(cp(&t, "child pfn after write"), shared, "the child copies");
    // "child!" over "parent data": the copy kept the rest of the page.
    assert_eq!(cp(&t, "child reads"), "child! data");
    assert_eq!(cp(&t, "old frame mapcount"), "1");
    assert_eq!(cp(&t, "new frame mapcount"), "1");
    assert_eq!(
        cp(&t, "parent pfn after write"),
        shared,
        "the parent reuses"
    );
    assert_eq!(cp(&t, "parent reads"), "PARENT data");
    assert_eq!(cp(&t, "parent write faults"), "1");
}

#[test]
fn exec_maps_segments_bss_and_builds_the_stack() {
    let elf = static_binary();
    let loads = pt_loads(&elf);
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().expect("8 bytes"));
    let e_entry = u64_at(0x18);
    let e_phoff = u64_at(0x20);
    let e_phnum = u16::from_le_bytes([elf[0x38], elf[0x39]]);
    let t = run("exec");
    assert_eq!(cp(&t, "PT_LOAD segments"), loads.len().to_string());
    assert_eq!(cp(&t, "entry"), hex(e_entry));
    // Each PT_LOAD covers pages of its own here: one file VMA each.
    assert_eq!(cp(&t, "file VMAs"), loads.len().to_string());
    // The bss: [page end of the file part, page end of memsz), anonymous.
    let &(_, vaddr, filesz, memsz, _) = loads.last().expect("a PT_LOAD");
    let up = |v: u64| v.div_ceil(PAGE) * PAGE;
    assert_eq!(
        cp(&t, "bss VMA"),
        format!("{}-{}", hex(up(vaddr + filesz)), hex(up(vaddr + memsz)))
    );
    assert_eq!(cp(&t, "bss tail zero"), "true");
    assert_eq!(cp(&t, "argc"), "2");
    assert_eq!(cp(&t, "argv"), "mmap_basic hi");
    assert_eq!(cp(&t, "envp[0]"), "LANG=C");
    // AT_PHDR: the program headers sit in the first segment (file offset
    // 0 mapped at its p_vaddr), so at its p_vaddr + e_phoff.
    let (off0, vaddr0, ..) = loads[0];
    assert_eq!(off0, 0);
    assert_eq!(cp(&t, "AT_PHDR"), hex(vaddr0 + e_phoff));
    assert_eq!(cp(&t, "AT_PHNUM"), e_phnum.to_string());
    assert_eq!(cp(&t, "AT_ENTRY"), hex(e_entry));
    assert_eq!(cp(&t, "AT_RANDOM above sp"), "true");
}

#[test]
fn oom_kills_the_highest_badness_and_the_machine_goes_on() {
    let t = run("oom");
    let score = |n: &str| cp(&t, n).parse::<u64>().expect("a number");
    // oom_score_adj 1000 adds totalpages to small's badness, more than
    // big's whole RSS.
    assert!(score("oom_score small") > score("oom_score big"));
    assert_eq!(cp(&t, "rss small"), (4 << 20 >> 12).to_string());
    assert_eq!(cp(&t, "killed line"), "true");
    assert_eq!(cp(&t, "small alive"), "false");
    assert_eq!(cp(&t, "big's access"), "ok");
    assert_eq!(cp(&t, "init store ok"), "true");
}

#[test]
fn filefault_reads_around_hits_the_cache_and_msync_writes_back() {
    let t = run("filefault");
    assert_eq!(cp(&t, "rss after mmap"), "0");
    // The first fault does I/O: major, and only the faulting page mapped.
    assert_eq!(cp(&t, "major faults first"), "1");
    assert_eq!(cp(&t, "minor faults first"), "0");
    assert_eq!(cp(&t, "rss first"), "1");
    // Read-around reads ra_pages = VM_READAHEAD_PAGES (128 KiB) = 32
    // pages (include/linux/mm.h), all inside the 64-page mapping.
    assert_eq!(
        cp(&t, "cached pages of range"),
        (128 * 1024 / PAGE).to_string()
    );
    // The second process: no I/O, one minor fault, and fault-around maps
    // fault_around_bytes (64 KiB, mm/memory.c) = 16 pages.
    assert_eq!(cp(&t, "major faults second"), "0");
    assert_eq!(cp(&t, "minor faults second"), "1");
    assert_eq!(cp(&t, "rss second"), (64 * 1024 / PAGE).to_string());
    assert_eq!(cp(&t, "same frame"), "true");
    // A shared writable file mapping: write-notify keeps a read-faulted
    // page read-only (vma_wants_writenotify), so the write traps and
    // dirties it: pte D and RW, PG_dirty, NR_FILE_DIRTY and NR_DIRTIED 1;
    // the disk has not seen the write.
    assert_eq!(cp(&t, "pte writable after read"), "false");
    assert_eq!(cp(&t, "pte dirty after write"), "true");
    assert_eq!(cp(&t, "pte writable after write"), "true");
    assert_eq!(cp(&t, "PageDirty after write"), "true");
    assert_eq!(cp(&t, "nr_dirty after write"), "1");
    assert_eq!(cp(&t, "nr_dirtied by write"), "1");
    assert_eq!(cp(&t, "disk after write"), "old text on the disk");
    // msync(MS_SYNC) (msync(2): "requests an update and waits for it to
    // complete"): folio_mkclean cleans and write-protects the pte, the page
    // is written (NR_WRITTEN 1) and clean, and the disk holds the bytes
    // written through the mapping.
    assert_eq!(cp(&t, "pte dirty after msync"), "false");
    assert_eq!(cp(&t, "pte writable after msync"), "false");
    assert_eq!(cp(&t, "PageDirty after msync"), "false");
    assert_eq!(cp(&t, "nr_dirty after msync"), "0");
    assert_eq!(cp(&t, "nr_written by msync"), "1");
    assert_eq!(cp(&t, "disk after msync"), "new text via the pte");
}

#[test]
fn lru_adds_inactive_gives_a_second_chance_and_kswapd_balances() {
    let t = run("lru");
    let num = |name: &str| -> u64 { cp(&t, name).parse().expect("a number") };
    // New anonymous pages go to the inactive list (lru_cache_add_inactive_
    // or_unevictable since 5.9); up to a folio batch (31 pages,
    // FOLIO_BATCH_SIZE) may still wait on the CPU's batch.
    let inactive = num("inactive anon pages added");
    assert!((2000 - 31..=2000).contains(&inactive), "{inactive}");
    assert_eq!(num("active anon pages added"), 0);
    assert!(num("kswapd runs") > 0);
    assert_eq!(cp(&t, "scanned >= stolen"), "true");
    // Some of the 2000 were reclaimed before the reads, so the reads of
    // those were major faults; afterwards the pages read again survive
    // and the others do not (second chance).
    assert!(num("resident before the reads") < 2000);
    assert!(num("major faults of the reads") > 0);
    assert_eq!(num("read-again pages resident (%)"), 100);
    assert!(num("other pages resident (%)") < 50);
    // kswapd sleeps only once every zone is at or above its high mark
    // (pgdat_balanced); the 64 MiB machine has DMA and DMA32.
    assert_eq!(num("zones with memory"), 2);
    assert_eq!(num("zones at or above high"), 2);
}

#[test]
fn swap_pushes_out_and_faults_back_in() {
    let t = run("swap");
    assert_eq!(cp(&t, "pte is swap entry"), "true");
    assert_eq!(cp(&t, "pswpout > 0"), "true");
    // The entry decoded by hand from the pte's bits, x86-64's layout
    // (arch/x86/include/asm/pgtable_64.h): Present (bit 0) clear, the type
    // in bits 59-63, the offset's complement in bits 9-58.
    let raw = u64::from_str_radix(cp(&t, "swap pte").trim_start_matches("0x"), 16).unwrap();
    assert_eq!(raw & 1, 0, "not present");
    let ty = raw >> 59;
    let offset = !(raw >> 9) & ((1u64 << 50) - 1);
    assert_eq!(cp(&t, "swap type"), ty.to_string());
    assert_eq!(cp(&t, "swap offset"), offset.to_string());
    // The only swap area is type 0; slot 0 holds its header, so the first
    // page written out took slot 1 (the 64 MiB area has 16384 slots).
    assert_eq!(ty, 0);
    assert_eq!(offset, 1);
    // One pte refers to the slot: its swap_map count is 1.
    assert_eq!(cp(&t, "swap_map count"), "1");
    assert_eq!(
        cp(&t, "data"),
        "keep me",
        "the bytes survive the round trip"
    );
    assert_eq!(cp(&t, "major faults"), "1");
    // swapin_readahead reads at most 1 << page_cluster (vm.page-cluster
    // 3 by default, mm/swap.c) slots, the faulting one included.
    let pswpin: u64 = cp(&t, "pswpin").parse().expect("a number");
    assert!((1..=8).contains(&pswpin), "pswpin {pswpin}");
    assert_eq!(cp(&t, "swap used after unmap"), "0");
}
