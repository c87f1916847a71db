//! What differs per architecture: the zones a kernel is built with and their
//! physical limits, lowmem, and the address-space constants.
//! Mirrors arch/x86/mm/init.c `zone_sizes_init`, arch/x86/mm/init_32.c and
//! arch/arm64/mm/init.c `zone_sizes_init`.

pub mod arm64;
pub mod layout;
pub mod pte;

use crate::mmzone::ZoneType;
use crate::types::{Pfn, PAGE_SHIFT};

/// The architectures lmm models.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Arch {
    /// x86-64, 4-level paging (5-level on request for user space).
    X86_64,
    /// 32-bit x86, 2-level paging, no PAE: at most 4 GiB of RAM.
    X86,
    /// 32-bit x86 with PAE (3-level paging): up to 64 GiB of RAM.
    X86Pae,
    /// arm64 with 4 KiB pages and 48-bit virtual addresses.
    Arm64,
}

/// Physical limit of ZONE_DMA on x86 (ISA DMA: 16 MiB), as a PFN.
pub const X86_MAX_DMA_PFN: u64 = (16 << 20) >> PAGE_SHIFT;
/// Physical limit of ZONE_DMA32 on x86-64 (4 GiB), as a PFN.
pub const X86_MAX_DMA32_PFN: u64 = (4 << 30) >> PAGE_SHIFT;
/// End of lowmem on 32-bit x86 with the 3G/1G split: the textbook 896 MiB
/// (1 GiB of kernel space less the 128 MiB vmalloc reserve). Simplified:
/// Linux's `MAXMEM` (VMALLOC_END - PAGE_OFFSET - __VMALLOC_RESERVE) also
/// loses the fixmap and pkmap windows, a few MiB depending on the config;
/// zone limits, the direct map and the vmalloc area all use this one value.
pub const X86_32_MAXMEM_PFN: u64 = (896 << 20) >> PAGE_SHIFT;

impl Arch {
    /// Parses the command-line spelling (`x86_64`, `x86`, `x86-pae`, `arm64`).
    pub fn parse(s: &str) -> Option<Arch> {
        Some(match s {
            "x86_64" | "x86-64" | "amd64" => Arch::X86_64,
            "x86" | "i386" | "i686" => Arch::X86,
            "x86-pae" | "x86_pae" | "pae" => Arch::X86Pae,
            "arm64" | "aarch64" => Arch::Arm64,
            _ => return None,
        })
    }

    /// The command-line spelling.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::X86 => "x86",
            Arch::X86Pae => "x86-pae",
            Arch::Arm64 => "arm64",
        }
    }

    /// True for the 32-bit x86 variants.
    pub fn is_32bit(self) -> bool {
        matches!(self, Arch::X86 | Arch::X86Pae)
    }

    /// The zones this architecture's kernel is built with, in zone-index
    /// order. The x86-64 reference config (the kernel on our machines) has
    /// DMA, DMA32, Normal, Movable and Device; x86-32 has DMA, Normal,
    /// HighMem, Movable (ZONE_DEVICE needs 64-bit); arm64 has DMA, DMA32,
    /// Normal, Movable. Movable and Device are never populated here.
    pub fn zones(self) -> &'static [ZoneType] {
        use ZoneType::*;
        match self {
            Arch::X86_64 => &[Dma, Dma32, Normal, Movable, Device],
            Arch::Arm64 => &[Dma, Dma32, Normal, Movable],
            Arch::X86 | Arch::X86Pae => &[Dma, Normal, HighMem, Movable],
        }
    }

    /// Largest physical address space the architecture can hold, in bytes.
    pub fn max_phys_bytes(self) -> u64 {
        match self {
            Arch::X86_64 => 1 << 46,
            Arch::X86 => 1 << 32,
            Arch::X86Pae => 1 << 36,
            Arch::Arm64 => 1 << 48,
        }
    }

    /// Exclusive end PFN of each zone in `self.zones()` order (entries past
    /// the arch's zone count are unused), given the highest RAM PFN and the
    /// lowest (arm64 DRAM need not start at 0). Movable and Device are always
    /// empty (no kernelcore=/movablecore=, no device memory), so they end
    /// where the last real zone ends and span nothing.
    ///
    /// arm64: `zone_dma_limit` defaults to 32 bits when firmware sets no
    /// narrower DMA range, and `max_zone_phys` then makes ZONE_DMA cover all
    /// RAM below 4 GiB, leaving ZONE_DMA32 empty; if DRAM starts at or above
    /// 4 GiB, `max_zone_phys` widens the limit and ZONE_DMA takes all RAM.
    pub fn zone_end_pfns(self, min_pfn: Pfn, max_pfn: Pfn) -> [Pfn; 5] {
        let max = max_pfn.0;
        match self {
            Arch::X86_64 => {
                let dma = X86_MAX_DMA_PFN.min(max);
                let dma32 = X86_MAX_DMA32_PFN.min(max);
                [Pfn(dma), Pfn(dma32), Pfn(max), Pfn(max), Pfn(max)]
            }
            Arch::X86 | Arch::X86Pae => {
                let dma = X86_MAX_DMA_PFN.min(max);
                let normal = X86_32_MAXMEM_PFN.min(max);
                [Pfn(dma), Pfn(normal), Pfn(max), Pfn(max), Pfn(max)]
            }
            Arch::Arm64 => {
                let four_g = X86_MAX_DMA32_PFN;
                let dma = if min_pfn.0 >= four_g {
                    max
                } else {
                    four_g.min(max)
                };
                [Pfn(dma), Pfn(dma), Pfn(max), Pfn(max), Pfn(max)]
            }
        }
    }

    /// Where RAM starts in the physical address space: 0 on PCs; 1 GiB on
    /// arm64 (the QEMU `virt` board's DRAM base).
    pub const fn dram_base(self) -> u64 {
        match self {
            Arch::Arm64 => 0x4000_0000,
            _ => 0,
        }
    }

    /// Physical address of MAX_DMA_ADDRESS, the floor early allocations
    /// such as the memmap prefer: the end of ZONE_DMA (16 MiB) on x86,
    /// the start of DRAM on arm64 (where it is PAGE_OFFSET).
    pub fn max_dma_address(self) -> u64 {
        match self {
            Arch::Arm64 => self.dram_base(),
            _ => X86_MAX_DMA_PFN << PAGE_SHIFT,
        }
    }

    /// log2 of a memory section (SECTION_SIZE_BITS): 128 MiB on x86-64 and
    /// arm64 with 4 KiB pages, 512 MiB on PAE, 64 MiB on 2-level x86.
    pub fn section_size_bits(self) -> u32 {
        match self {
            Arch::X86_64 | Arch::Arm64 => 27,
            Arch::X86Pae => 29,
            Arch::X86 => 26,
        }
    }

    /// Size of a kernel stack (THREAD_SIZE): 16 KiB on 64-bit, 8 KiB on x86-32.
    pub fn thread_size(self) -> u64 {
        if self.is_32bit() {
            8 << 10
        } else {
            16 << 10
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x86_64_zone_limits_follow_zone_sizes_init() {
        // arch/x86/mm/init.c: DMA ends at MAX_DMA_PFN (16 MiB), DMA32 at
        // MAX_DMA32_PFN (4 GiB), Normal at max_pfn.
        let z = Arch::X86_64.zone_end_pfns(Pfn(0), Pfn(0x640000));
        assert_eq!(z[..3], [Pfn(4096), Pfn(0x100000), Pfn(0x640000)]);
        // A 1 GiB machine has no Normal memory.
        let z = Arch::X86_64.zone_end_pfns(Pfn(0), Pfn(0x40000));
        assert_eq!(z[1], Pfn(0x40000));
        assert_eq!(z[2], Pfn(0x40000));
    }

    #[test]
    fn x86_32_lowmem_ends_at_896m() {
        let z = Arch::X86.zone_end_pfns(Pfn(0), Pfn((2u64 << 30) >> 12));
        assert_eq!(z[0], Pfn(4096));
        assert_eq!(z[1], Pfn(0x38000)); // 896 MiB
        assert_eq!(z[2], Pfn(0x80000)); // HighMem up to 2 GiB
    }

    #[test]
    fn arm64_dma_covers_first_4g() {
        let z = Arch::Arm64.zone_end_pfns(Pfn(0x40000), Pfn(0x140000));
        assert_eq!(z[0], Pfn(0x100000));
        assert_eq!(z[1], Pfn(0x100000)); // DMA32 empty
        assert_eq!(z[2], Pfn(0x140000));
    }

    #[test]
    fn parse_round_trips() {
        for a in [Arch::X86_64, Arch::X86, Arch::X86Pae, Arch::Arm64] {
            assert_eq!(Arch::parse(a.name()), Some(a));
        }
        assert_eq!(Arch::parse("riscv"), None);
    }
}
