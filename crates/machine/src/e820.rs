//! The firmware memory map (a PC's BIOS e820 table; a device-tree memory
//! node on arm64) and the fix-ups Linux applies before memblock sees it
//! (arch/x86/kernel/e820.c, `trim_bios_range`).

use mm::arch::Arch;

/// Kind of a firmware map entry.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum E820Type {
    /// RAM the OS may use.
    Usable,
    /// Firmware or device memory.
    Reserved,
}

impl E820Type {
    /// The word dmesg prints.
    pub fn name(self) -> &'static str {
        match self {
            E820Type::Usable => "usable",
            E820Type::Reserved => "reserved",
        }
    }
}

/// One entry: `[start, end)` of a type.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct E820Entry {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// Kind.
    pub kind: E820Type,
}

/// Where the 32-bit PCI hole starts: RAM above 3 GiB moves above 4 GiB.
pub const LOW_RAM_LIMIT: u64 = 3 << 30;
/// A reserved MMIO window in the hole (the machines we run on list
/// 0xeec00000-0xfebfffff: PCI ECAM and chipset registers).
pub const MMIO_HOLE: (u64, u64) = (0xeec0_0000, 0xfec0_0000);

/// The map the firmware hands over for `ram` bytes, shaped like the PCs
/// lmm runs on: 639 KiB of base memory, the legacy BIOS area reserved, RAM
/// from 1 MiB up to 3 GiB, a reserved MMIO window, and the rest of RAM from
/// 4 GiB. arm64 has one bank at its DRAM base.
pub fn firmware_map(arch: Arch, ram: u64) -> Vec<E820Entry> {
    use E820Type::*;
    if arch == Arch::Arm64 {
        let b = arch.dram_base();
        return vec![E820Entry {
            start: b,
            end: b + ram,
            kind: Usable,
        }];
    }
    let mut m = vec![
        E820Entry {
            start: 0,
            end: 0x9fc00,
            kind: Usable,
        },
        E820Entry {
            start: 0x9fc00,
            end: 0x10_0000,
            kind: Reserved,
        },
        E820Entry {
            start: 0x10_0000,
            end: ram.min(LOW_RAM_LIMIT),
            kind: Usable,
        },
        E820Entry {
            start: MMIO_HOLE.0,
            end: MMIO_HOLE.1,
            kind: Reserved,
        },
    ];
    if ram > LOW_RAM_LIMIT {
        m.push(E820Entry {
            start: 1 << 32,
            end: (1 << 32) + ram - LOW_RAM_LIMIT,
            kind: Usable,
        });
    }
    m
}

/// Linux's fix-ups of the BIOS map on x86 (`trim_bios_range`): the first
/// page becomes reserved and the 640 KiB–1 MiB ISA range stops being RAM.
/// Returns the updated map and the log lines the kernel prints.
pub fn trim_bios_range(arch: Arch, map: &[E820Entry]) -> (Vec<E820Entry>, Vec<String>) {
    if arch == Arch::Arm64 {
        return (map.to_vec(), vec![]);
    }
    let mut out = Vec::new();
    for e in map {
        if e.kind == E820Type::Usable && e.start == 0 {
            out.push(E820Entry {
                start: 0,
                end: 0x1000,
                kind: E820Type::Reserved,
            });
            out.push(E820Entry {
                start: 0x1000,
                end: e.end.min(0xa0000),
                kind: e.kind,
            });
        } else if e.kind == E820Type::Usable && e.start < 0x10_0000 && e.end > 0xa0000 {
            if e.start < 0xa0000 {
                out.push(E820Entry {
                    start: e.start,
                    end: 0xa0000,
                    kind: e.kind,
                });
            }
            if e.end > 0x10_0000 {
                out.push(E820Entry {
                    start: 0x10_0000,
                    end: e.end,
                    kind: e.kind,
                });
            }
        } else {
            out.push(*e);
        }
    }
    let log = vec![
        "e820: update [mem 0x00000000-0x00000fff] usable ==> reserved".to_string(),
        "e820: remove [mem 0x000a0000-0x000fffff] usable".to_string(),
    ];
    (out, log)
}

/// The dmesg lines of the firmware's memory description: the e820 table
/// on x86 ([`log_lines`]); on arm64, booted from a device tree by QEMU's
/// `virt` board without UEFI, the machine model and the EFI stub's
/// absence (setup_machine_fdt, efi_init), as a real arm64 guest prints
/// them ("Machine model: linux,dummy-virt": firecracker issue #1146's
/// arm64 log). The memory node itself is not echoed by the kernel.
pub fn boot_log_lines(arch: Arch, map: &[E820Entry]) -> Vec<String> {
    if arch == Arch::Arm64 {
        return vec![
            "Machine model: linux,dummy-virt".to_string(),
            "efi: UEFI not found.".to_string(),
        ];
    }
    log_lines(map)
}

/// The dmesg lines of the BIOS map.
pub fn log_lines(map: &[E820Entry]) -> Vec<String> {
    let mut v = vec!["BIOS-provided physical RAM map:".to_string()];
    for e in map {
        v.push(format!(
            "BIOS-e820: [mem {:#018x}-{:#018x}] {}",
            e.start,
            e.end - 1,
            e.kind.name()
        ));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_24g_pc_looks_like_this_machine() {
        // tests/host/dmesg-boot.txt: the BIOS-e820 lines of a 24 GiB machine.
        let lines = log_lines(&firmware_map(Arch::X86_64, 24 << 30));
        let host = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/host/dmesg-boot.txt"
        ))
        .unwrap();
        for l in &lines {
            assert!(host.contains(l.as_str()), "{l} not in the host's boot log");
        }
        let (m, log) = trim_bios_range(Arch::X86_64, &firmware_map(Arch::X86_64, 24 << 30));
        for l in &log {
            assert!(host.contains(l.as_str()));
        }
        let usable: u64 = m
            .iter()
            .filter(|e| e.kind == E820Type::Usable)
            .map(|e| (e.end >> 12) - e.start.div_ceil(4096))
            .sum();
        // "Total pages: 6291358" on the host.
        assert_eq!(usable, 6291358);
    }

    #[test]
    fn small_machines_have_no_high_bank() {
        let m = firmware_map(Arch::X86_64, 512 << 20);
        assert_eq!(
            m.iter().rfind(|e| e.kind == E820Type::Usable).unwrap().end,
            512 << 20
        );
        assert_eq!(
            firmware_map(Arch::Arm64, 1 << 30),
            vec![E820Entry {
                start: 1 << 30,
                end: 2 << 30,
                kind: E820Type::Usable
            }]
        );
    }
}
