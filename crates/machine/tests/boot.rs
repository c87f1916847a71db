//! Whole-machine boot tests: firmware map -> memblock -> zones -> buddy.

use machine::{Machine, MachineConfig};
use mm::arch::Arch;
use mm::debug::check_page_alloc;
use mm::mmzone::ZoneType;

fn boot(arch: Arch, ram: u64) -> Machine {
    Machine::boot(MachineConfig {
        arch,
        ram,
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn x86_64_4g_has_three_zones_and_a_linux_like_log() {
    let m = boot(Arch::X86_64, 4 << 30);
    let z = &m.pa().nodes[0].zones;
    let populated: Vec<ZoneType> = z
        .iter()
        .filter(|z| z.is_populated())
        .map(|z| z.ztype)
        .collect();
    assert_eq!(
        populated,
        [ZoneType::Dma, ZoneType::Dma32, ZoneType::Normal]
    );
    // DMA: pfn 1..4096, with the 97-page ISA hole (as on this machine).
    assert_eq!(
        (z[0].start_pfn.0, z[0].spanned, z[0].present),
        (1, 4095, 3998)
    );
    // The whole first MiB is reserved: DMA manages 0x100..0x1000.
    assert_eq!(z[0].managed(), 3840);
    // 4 GiB of RAM: 3 GiB below the hole, 1 GiB above 4 GiB.
    assert_eq!(z[2].present, (1 << 30) >> 12);
    check_page_alloc(m.pa()).unwrap();
    let d = m.dmesg();
    // memmap_init reports pfn 0 and the ISA hole, but not the 3-4 GiB hole:
    // its memory sections have no memmap.
    assert!(!d.contains("zone DMA32: "), "{d}");
    for want in [
        "BIOS-e820: [mem 0x0000000000100000-0x00000000bfffffff] usable",
        "e820: remove [mem 0x000a0000-0x000fffff] usable",
        "  DMA      [mem 0x0000000000001000-0x0000000000ffffff]",
        "  Normal   [mem 0x0000000100000000-0x000000013fffffff]",
        "  Device   empty",
        "On node 0, zone DMA: 1 pages in unavailable ranges\n",
        "On node 0, zone DMA: 97 pages in unavailable ranges",
        "Memory: ",
    ] {
        assert!(d.contains(want), "missing {want:?} in\n{d}");
    }
}

#[test]
fn x86_32_2g_has_highmem_above_896m() {
    // arch/x86/mm/init_32.c: lowmem ends at 896 MiB; the rest is HighMem.
    let m = boot(Arch::X86, 2 << 30);
    let hi = m.pa().nodes[0]
        .zones
        .iter()
        .find(|z| z.ztype == ZoneType::HighMem)
        .unwrap();
    assert_eq!(hi.start_pfn.0, (896 << 20) >> 12);
    assert_eq!(hi.present, ((2u64 << 30) - (896 << 20)) >> 12);
    check_page_alloc(m.pa()).unwrap();
}

#[test]
fn arm64_ram_starts_at_1g_in_zone_dma() {
    let m = boot(Arch::Arm64, 2 << 30);
    let z = &m.pa().nodes[0].zones;
    assert_eq!(z[0].start_pfn.0, 0x40000);
    assert!(z[0].present > 0 && z[1].present == 0);
    check_page_alloc(m.pa()).unwrap();
}

#[test]
fn numa_nodes_split_ram_and_each_gets_its_memmap() {
    let m = Machine::boot(MachineConfig {
        ram: 8 << 30,
        cpus: 4,
        nodes: 2,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(m.pa().nodes.len(), 2);
    let total: u64 = m.pa().nodes.iter().map(|n| n.present).sum();
    assert!(m.pa().nodes.iter().all(|n| n.present > total / 3));
    check_page_alloc(m.pa()).unwrap();
    assert!(m.dmesg().contains("NODE_DATA(1) allocated"));
}

#[test]
fn iomem_lists_ram_reserved_and_kernel() {
    let m = boot(Arch::X86_64, 4 << 30);
    let io = m.iomem();
    // The first lines of this machine's /proc/iomem (tests/host/iomem.txt).
    assert!(io.starts_with("00000000-00000fff : Reserved\n00001000-0009fbff : System RAM\n0009fc00-000fffff : Reserved\n00100000-bfffffff : System RAM\n  01000000-"), "{io}");
    assert!(io.contains("  01000000-"), "{io}");
    assert!(io.contains("100000000-13fffffff : System RAM"), "{io}");
}

#[test]
fn kernel_page_tables_map_lowmem_and_are_accounted() {
    use mm::vmstat::NodeStat;
    let m = boot(Arch::X86_64, 4 << 30);
    let pt = m.kernel_pt().unwrap();
    let layout = mm::arch::layout::AddressSpaceLayout::new(pt.mode(), 4 << 30);
    // The direct map: PAGE_OFFSET + x translates to x.
    let va = mm::VirtAddr(layout.page_offset + 0x1234_5678);
    assert_eq!(pt.translate(va), Some(mm::PhysAddr(0x1234_5678)));
    let tables = m.pa().nodes[0].stats.get(NodeStat::NrPageTablePages) as u64;
    assert_eq!(tables, pt.count_tables());
    check_page_alloc(m.pa()).unwrap();
}

#[test]
fn a_24g_machine_boots_with_this_hosts_memory_log() {
    // tests/host/dmesg-boot.txt was read off the machine we run on (24 GiB,
    // Linux 6.18): every memory-layout line must appear verbatim in ours.
    let m = boot(Arch::X86_64, 24 << 30);
    let ours = m.dmesg();
    let host = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/host/dmesg-boot.txt"
    ))
    .unwrap();
    let prefixes = [
        "BIOS-",
        "e820: ",
        "Zone ranges:",
        "  DMA",
        "  Normal",
        "  Device",
        "Movable zone",
        "Early memory",
        "  node ",
        "Initmem setup",
        "On node ",
        "NODE_DATA(",
        "Faking a node",
        "No NUMA",
        "setup_percpu:",
        "percpu:",
        "pcpu-alloc:",
        "Dentry cache hash table",
    ];
    let mut n = 0;
    for line in host.lines() {
        let msg = line.split_once("] ").map_or(line, |x| x.1);
        if prefixes.iter().any(|p| msg.starts_with(p)) {
            assert!(
                ours.contains(msg),
                "host line {msg:?} missing from lmm's log:\n{ours}"
            );
            n += 1;
        }
    }
    assert!(n >= 24, "only {n} lines compared");
}

#[test]
fn a_24g_machine_has_this_hosts_memtotal_to_80k() {
    // tests/host/meminfo.txt (a kernel booted without dhash_entries=):
    // MemTotal is RAM less the memmap of sections with RAM, the image
    // (less its init sections and alignment gaps, freed at the end of
    // boot), the per-CPU first chunk and the 32 + 16 MiB dentry and inode
    // hash tables. The 80 kB left are early allocations lmm does not make
    // (ACPI, early page tables, the real-mode trampoline and the like).
    let m = boot(Arch::X86_64, 24 << 30);
    let kb = |text: &str| -> i64 {
        let l = text.lines().find(|l| l.starts_with("MemTotal:")).unwrap();
        l.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    let host = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/host/meminfo.txt"
    ))
    .unwrap();
    let ours = m.proc("meminfo").unwrap();
    let diff = kb(&ours) - kb(&host);
    assert!(
        (0..=80).contains(&diff),
        "lmm {} kB, host {} kB",
        kb(&ours),
        kb(&host)
    );
    // The boot log says where it went.
    let log = m.dmesg();
    for line in [
        "Inode-cache hash table entries: 2097152 (order: 12, 16777216 bytes, linear)",
        "SLUB: HWalign=64, Order=0-3, MinObjects=0, CPUs=2, Nodes=1",
        "Freeing unused kernel image (initmem) memory: 3728K",
        "Freeing unused kernel image (text/rodata gap) memory: 2008K",
        "Freeing unused kernel image (rodata/data gap) memory: 2008K",
    ] {
        assert!(log.contains(line), "{line:?} missing from:\n{log}");
    }
    // As on this machine's current boot (dhash_entries=131072
    // ihash_entries=65536 on its command line: 1.5 MiB of tables).
    let m = Machine::boot(MachineConfig {
        ram: 24 << 30,
        dhash_entries: 131072,
        ihash_entries: 65536,
        ..Default::default()
    })
    .unwrap();
    assert!(m
        .dmesg()
        .contains("Dentry cache hash table entries: 131072 (order: 8, 1048576 bytes, linear)"));
    // 48 MiB of tables less 1.5 MiB.
    assert_eq!(
        kb(&m.proc("meminfo").unwrap()) - kb(&ours),
        (48 << 10) - 1536
    );
    check_page_alloc(m.pa()).unwrap();
}

#[test]
fn a_24g_machine_has_a_memmap_only_for_sections_with_ram() {
    // SPARSEMEM_VMEMMAP (linux-facts §6.12, §6.13): the eight 128 MiB
    // sections of the 3-4 GiB PCI hole get no memmap, so 24 GiB of RAM
    // spanning 25 GiB takes 192 sections * 512 pages, as this machine's
    // vmstat says (tests/host/vmstat.txt).
    let m = boot(Arch::X86_64, 24 << 30);
    let host = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/host/vmstat.txt"
    ))
    .unwrap();
    let field = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("nr_memmap_boot_pages "))
            .map(str::to_owned)
    };
    let ours = m.proc("vmstat").unwrap();
    assert_eq!(field(&ours), field(&host));
    assert_eq!(field(&ours).as_deref(), Some("98304"));
    // pfn_valid is false inside the hole and true on both sides of it.
    let mm = m.pa().nodes[0].zones[0].memmap();
    assert!(!mm.contains(mm::types::Pfn(0xc0000)));
    assert!(!mm.contains(mm::types::Pfn(0xfffff)));
    assert!(mm.contains(mm::types::Pfn(0xbffff)) && mm.contains(mm::types::Pfn(0x100000)));
    check_page_alloc(m.pa()).unwrap();
}

#[test]
fn vmallocinfo_hashes_addresses_as_kptr_restrict_0_does() {
    // %pK with kptr_restrict 0 (this machine's) prints %p: a 32-bit hash
    // in a 64-bit field (tests/host/vmallocinfo.txt,
    // "0x00000000977c3b01-0x00000000e27230b0"); equal pointers hash
    // equally, so an area's end is the next adjacent area's start.
    let mut m = boot(Arch::X86_64, 256 << 20);
    // 64 KiB each: larger than any gap the boot's IRQ and idle stacks
    // leave, so the second follows the first.
    let a = m.vmalloc(65536, false, "first+0x1/0x2").unwrap();
    let b = m.vmalloc(65536, false, "second+0x1/0x2").unwrap();
    assert_eq!(b.0, a.0 + 65536 + 4096, "adjacent areas (one guard page)");
    let info = m.proc("vmallocinfo").unwrap();
    let ranges: Vec<(&str, &str)> = info
        .lines()
        .filter(|l| l.contains(" first+") || l.contains(" second+"))
        .map(|l| {
            l.split_whitespace()
                .next()
                .unwrap()
                .split_once('-')
                .unwrap()
        })
        .collect();
    assert_eq!(ranges.len(), 2, "{info}");
    assert_eq!(ranges[0].1, ranges[1].0, "{info}");
    let key = mm::printk::PtrKey::from_seed(0);
    assert_eq!(ranges[0].0, format!("0x{:016x}", key.hash(a.0, 8)));
    for (s, e) in &ranges {
        assert!(
            s.starts_with("0x00000000") && e.starts_with("0x00000000"),
            "{info}"
        );
    }
    assert!(!info.contains("ffffc900"), "{info}");
}
