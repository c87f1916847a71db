//! Virtual address-space layout: where user space ends, where the kernel's
//! direct map, vmalloc area, pkmap, fixmap and vsyscall page sit, per mode.
//! Mirrors arch/x86/include/asm/{page_64_types.h,pgtable_64_types.h,page_32_types.h,pgtable_32_areas.h}
//! and arch/arm64/include/asm/{memory.h,pgtable.h,processor.h,elf.h}.
//!
//! Values are Linux 6.18's with KASLR off (no randomised PAGE_OFFSET,
//! VMALLOC_START or VMEMMAP_START) and, on x86-32, the 3G/1G split.

use crate::arch::pte::PagingMode;
use crate::types::{VirtAddr, PAGE_SIZE};

// ---- x86-64 -------------------------------------------------------------

/// Largest user address + 1 with 4-level paging: TASK_SIZE_MAX =
/// DEFAULT_MAP_WINDOW = 2^47 - PAGE_SIZE (page_64_types.h; the last page
/// below the hole stays unmapped for the SYSRET erratum).
pub const X86_64_DEFAULT_MAP_WINDOW: u64 = (1 << 47) - PAGE_SIZE;
/// TASK_SIZE_MAX with 5-level paging: 2^56 - PAGE_SIZE (page_64_types.h);
/// addresses above DEFAULT_MAP_WINDOW are only used on request (a hint).
pub const X86_64_L5_TASK_SIZE_MAX: u64 = (1 << 56) - PAGE_SIZE;
/// __PAGE_OFFSET_BASE_L4 (page_64_types.h): start of the direct map.
pub const X86_64_PAGE_OFFSET_L4: u64 = 0xffff_8880_0000_0000;
/// __PAGE_OFFSET_BASE_L5 (page_64_types.h).
pub const X86_64_PAGE_OFFSET_L5: u64 = 0xff11_0000_0000_0000;
/// __VMALLOC_BASE_L4 (pgtable_64_types.h).
pub const X86_64_VMALLOC_START_L4: u64 = 0xffff_c900_0000_0000;
/// VMALLOC_SIZE_TB_L4 = 32 TiB (pgtable_64_types.h): VMALLOC_END =
/// VMALLOC_START + 32 TiB - 1.
pub const X86_64_VMALLOC_END_L4: u64 = X86_64_VMALLOC_START_L4 + (32 << 40) - 1;
/// __VMALLOC_BASE_L5 (pgtable_64_types.h).
pub const X86_64_VMALLOC_START_L5: u64 = 0xffa0_0000_0000_0000;
/// VMALLOC_SIZE_TB_L5 = 12800 TiB (pgtable_64_types.h).
pub const X86_64_VMALLOC_END_L5: u64 = X86_64_VMALLOC_START_L5 + (12800 << 40) - 1;
/// __VMEMMAP_BASE_L4 (pgtable_64_types.h): the struct page array.
pub const X86_64_VMEMMAP_START_L4: u64 = 0xffff_ea00_0000_0000;
/// __VMEMMAP_BASE_L5 (pgtable_64_types.h).
pub const X86_64_VMEMMAP_START_L5: u64 = 0xffd4_0000_0000_0000;
/// __START_KERNEL_map (page_64_types.h): the kernel image mapping.
pub const X86_64_START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;
/// MODULES_VADDR = __START_KERNEL_map + KERNEL_IMAGE_SIZE (1 GiB with
/// CONFIG_RANDOMIZE_BASE) (pgtable_64_types.h).
pub const X86_64_MODULES_VADDR: u64 = X86_64_START_KERNEL_MAP + (1 << 30);
/// MODULES_END (pgtable_64_types.h).
pub const X86_64_MODULES_END: u64 = 0xffff_ffff_ff00_0000;
/// VSYSCALL_ADDR = -10 MiB (uapi/asm/vsyscall.h): the legacy vsyscall page.
pub const X86_64_VSYSCALL_ADDR: u64 = 0xffff_ffff_ff60_0000;
/// FIXADDR_TOP = round_up(VSYSCALL_ADDR + PAGE_SIZE, PMD_SIZE) - PAGE_SIZE
/// (fixmap.h).
pub const X86_64_FIXADDR_TOP: u64 = 0xffff_ffff_ff7f_f000;

// ---- x86-32 -------------------------------------------------------------

/// PAGE_OFFSET for the default 3G/1G split (CONFIG_PAGE_OFFSET,
/// page_32_types.h); TASK_SIZE and STACK_TOP equal it.
pub const X86_32_PAGE_OFFSET: u64 = 0xc000_0000;
/// VMALLOC_OFFSET: the 8 MiB guard gap after high_memory (pgtable_32_areas.h).
pub const X86_32_VMALLOC_OFFSET: u64 = 8 << 20;
/// __FIXADDR_TOP on 32-bit: the last page below 4 GiB (fixmap.h).
pub const X86_32_FIXADDR_TOP: u64 = 0xffff_f000;
/// FIXADDR_TOT_START, the bottom of the fixmap. Simplification: the real
/// value depends on NR_CPUS and other config; this is a typical
/// defconfig's value (dmesg "fixmap : 0xfff16000 - 0xfffff000").
pub const X86_32_FIXADDR_TOT_START: u64 = 0xfff1_6000;
/// CPU_ENTRY_AREA_PAGES as a typical NR_CPUS=8 config yields it (assumed).
pub const X86_32_CPU_ENTRY_AREA_PAGES: u64 = 300;
/// LAST_PKMAP without PAE: PTRS_PER_PTE = 1024 kmap slots (highmem.h).
pub const X86_32_LAST_PKMAP: u64 = 1024;
/// LAST_PKMAP with PAE: PTRS_PER_PTE = 512 kmap slots (highmem.h).
pub const X86_PAE_LAST_PKMAP: u64 = 512;

// ---- arm64 (4 KiB pages, 48-bit VA) -------------------------------------
//
// Documentation/arch/arm64/memory.rst (6.12), "AArch64 Linux memory layout
// with 4KB pages + 4 levels (48-bit)": user 0000000000000000-0000ffffffffffff,
// linear map ffff000000000000-ffff7fffffffffff, modules ffff800000000000-
// ffff80007fffffff, vmalloc ffff800080000000-fffffbffefffffff, fixed
// mappings up to fffffbfffdffffff, PCI I/O fffffbfffe800000-fffffbffff7fffff,
// vmemmap fffffc0000000000-fffffdffffffffff.

/// TASK_SIZE_64 = 1 << VA_BITS (processor.h): user space is the whole low
/// half selected by TTBR0, with no guard page below it (unlike x86-64).
pub const ARM64_TASK_SIZE: u64 = 1 << 48;
/// PAGE_OFFSET = -(1 << VA_BITS) (memory.h): the linear map of DRAM.
pub const ARM64_PAGE_OFFSET: u64 = 0xffff_0000_0000_0000;
/// PAGE_END = -(1 << (VA_BITS - 1)): the linear map covers 128 TiB.
pub const ARM64_PAGE_END: u64 = 0xffff_8000_0000_0000;
/// MODULES_VADDR = _PAGE_END(VA_BITS_MIN) (memory.h), MODULES_VSIZE 2 GiB.
pub const ARM64_MODULES_VADDR: u64 = ARM64_PAGE_END;
/// VMALLOC_START = MODULES_END (pgtable.h).
pub const ARM64_VMALLOC_START: u64 = ARM64_MODULES_VADDR + (2 << 30);
/// VMEMMAP_START: 2 TiB of struct pages (128 TiB / 4 KiB x 64 bytes)
/// ending at VMEMMAP_END = -(1 << (VA_BITS - 7)).
pub const ARM64_VMEMMAP_START: u64 = 0xffff_fc00_0000_0000;
/// VMALLOC_END = VMEMMAP_START - SZ_256M (pgtable.h), exclusive.
pub const ARM64_VMALLOC_END: u64 = ARM64_VMEMMAP_START - (256 << 20);
/// FIXADDR_TOP = VMEMMAP_START - SZ_32M (fixmap.h).
pub const ARM64_FIXADDR_TOP: u64 = ARM64_VMEMMAP_START - (32 << 20);

/// The virtual address-space layout of one paging mode.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct AddressSpaceLayout {
    /// The paging mode.
    pub mode: PagingMode,
    /// TASK_SIZE_MAX: user addresses are below this.
    pub task_size: u64,
    /// DEFAULT_MAP_WINDOW: the top of mmap's default search.
    pub default_map_window: u64,
    /// STACK_TOP: where the initial stack ends (no randomisation).
    pub stack_top: u64,
    /// PAGE_OFFSET: the direct map of physical address 0.
    pub page_offset: u64,
    /// VMALLOC_START.
    pub vmalloc_start: u64,
    /// VMALLOC_END (inclusive on x86-64, exclusive on x86-32 and arm64, as Linux).
    pub vmalloc_end: u64,
    /// VMEMMAP_START (64-bit only).
    pub vmemmap_start: Option<u64>,
    /// PKMAP_BASE: the kmap window for highmem (x86-32 only).
    pub pkmap_base: Option<u64>,
    /// LAST_PKMAP: slots in the kmap window (0 without highmem).
    pub last_pkmap: u64,
    /// FIXADDR_TOP: the top of the fixmap.
    pub fixaddr_top: u64,
    /// The vsyscall page (x86-64 only).
    pub vsyscall: Option<u64>,
}

impl AddressSpaceLayout {
    /// The layout of `mode`. `high_memory` is the end of lowmem as a
    /// physical address (x86-32 puts VMALLOC_START 8 MiB above its direct
    /// map image, aligned to 8 MiB); x86-64 ignores it.
    pub const fn new(mode: PagingMode, high_memory_phys: u64) -> AddressSpaceLayout {
        match mode {
            PagingMode::X86_64L4 => AddressSpaceLayout {
                mode,
                task_size: X86_64_DEFAULT_MAP_WINDOW,
                default_map_window: X86_64_DEFAULT_MAP_WINDOW,
                stack_top: X86_64_DEFAULT_MAP_WINDOW,
                page_offset: X86_64_PAGE_OFFSET_L4,
                vmalloc_start: X86_64_VMALLOC_START_L4,
                vmalloc_end: X86_64_VMALLOC_END_L4,
                vmemmap_start: Some(X86_64_VMEMMAP_START_L4),
                pkmap_base: None,
                last_pkmap: 0,
                fixaddr_top: X86_64_FIXADDR_TOP,
                vsyscall: Some(X86_64_VSYSCALL_ADDR),
            },
            PagingMode::X86_64L5 => AddressSpaceLayout {
                mode,
                task_size: X86_64_L5_TASK_SIZE_MAX,
                default_map_window: X86_64_DEFAULT_MAP_WINDOW,
                stack_top: X86_64_DEFAULT_MAP_WINDOW,
                page_offset: X86_64_PAGE_OFFSET_L5,
                vmalloc_start: X86_64_VMALLOC_START_L5,
                vmalloc_end: X86_64_VMALLOC_END_L5,
                vmemmap_start: Some(X86_64_VMEMMAP_START_L5),
                pkmap_base: None,
                last_pkmap: 0,
                fixaddr_top: X86_64_FIXADDR_TOP,
                vsyscall: Some(X86_64_VSYSCALL_ADDR),
            },
            PagingMode::Arm64L4 => AddressSpaceLayout {
                mode,
                task_size: ARM64_TASK_SIZE,
                default_map_window: ARM64_TASK_SIZE,
                // STACK_TOP_MAX = DEFAULT_MAP_WINDOW_64 (processor.h).
                stack_top: ARM64_TASK_SIZE,
                page_offset: ARM64_PAGE_OFFSET,
                vmalloc_start: ARM64_VMALLOC_START,
                vmalloc_end: ARM64_VMALLOC_END,
                vmemmap_start: Some(ARM64_VMEMMAP_START),
                pkmap_base: None,
                last_pkmap: 0,
                fixaddr_top: ARM64_FIXADDR_TOP,
                vsyscall: None,
            },
            PagingMode::X86_32 | PagingMode::X86Pae => {
                let pkmap = x86_32_pkmap_base(mode);
                let vm_off = X86_32_VMALLOC_OFFSET;
                let high = X86_32_PAGE_OFFSET + high_memory_phys;
                AddressSpaceLayout {
                    mode,
                    task_size: X86_32_PAGE_OFFSET,
                    default_map_window: X86_32_PAGE_OFFSET,
                    stack_top: X86_32_PAGE_OFFSET,
                    page_offset: X86_32_PAGE_OFFSET,
                    vmalloc_start: (high + vm_off) & !(vm_off - 1),
                    // VMALLOC_END = PKMAP_BASE - 2 * PAGE_SIZE with HIGHMEM.
                    vmalloc_end: pkmap - 2 * PAGE_SIZE,
                    vmemmap_start: None,
                    pkmap_base: Some(pkmap),
                    last_pkmap: if matches!(mode, PagingMode::X86Pae) {
                        X86_PAE_LAST_PKMAP
                    } else {
                        X86_32_LAST_PKMAP
                    },
                    fixaddr_top: X86_32_FIXADDR_TOP,
                    vsyscall: None,
                }
            }
        }
    }

    /// The kernel virtual address of physical address `pa` in the direct
    /// map (`__va`). On arm64 the linear map starts at the start of DRAM
    /// (PHYS_OFFSET = memstart_addr, the QEMU virt board's 1 GiB with
    /// KASLR off), not at physical 0.
    pub const fn phys_to_virt(&self, pa: u64) -> VirtAddr {
        match self.mode {
            PagingMode::Arm64L4 => VirtAddr(
                self.page_offset
                    .wrapping_add(pa.wrapping_sub(crate::arch::Arch::Arm64.dram_base())),
            ),
            _ => VirtAddr(self.page_offset.wrapping_add(pa)),
        }
    }
}

/// PKMAP_BASE on x86-32 (pgtable_32_areas.h): below the LDT remap, itself
/// below the CPU entry area under the fixmap, each PMD-aligned.
pub const fn x86_32_pkmap_base(mode: PagingMode) -> u64 {
    // PMD_SIZE: 4 MiB without PAE (the PGD entry), 2 MiB with it.
    let pmd_mask = !(mode.span(2) - 1);
    let cea = (X86_32_FIXADDR_TOT_START - PAGE_SIZE * (X86_32_CPU_ENTRY_AREA_PAGES + 1)) & pmd_mask;
    let ldt = (cea - PAGE_SIZE) & pmd_mask;
    (ldt - PAGE_SIZE) & pmd_mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x86_64_layout_matches_mm_rst() {
        // Documentation/arch/x86/x86_64/mm.rst, 4-level table.
        let l = AddressSpaceLayout::new(PagingMode::X86_64L4, 0);
        assert_eq!(l.task_size, 0x7fff_ffff_f000);
        assert_eq!(l.page_offset, 0xffff_8880_0000_0000);
        assert_eq!(l.vmalloc_start, 0xffff_c900_0000_0000);
        assert_eq!(l.vmalloc_end, 0xffff_e8ff_ffff_ffff);
        // VmallocTotal = 34359738367 kB (linux-facts.md).
        assert_eq!((l.vmalloc_end - l.vmalloc_start) >> 10, 34_359_738_367);
        assert_eq!(l.vsyscall, Some(0xffff_ffff_ff60_0000));
        assert_eq!(X86_64_MODULES_VADDR, 0xffff_ffff_c000_0000);
        let l5 = AddressSpaceLayout::new(PagingMode::X86_64L5, 0);
        assert_eq!(l5.task_size, 0x00ff_ffff_ffff_f000);
        assert_eq!(l5.vmalloc_end, 0xffd1_ffff_ffff_ffff);
        assert_eq!(l5.default_map_window, 0x7fff_ffff_f000);
    }

    #[test]
    fn arm64_layout_matches_memory_rst() {
        let l = AddressSpaceLayout::new(PagingMode::Arm64L4, 0);
        assert_eq!(l.task_size, 0x0001_0000_0000_0000);
        assert_eq!(l.page_offset, 0xffff_0000_0000_0000);
        assert_eq!(ARM64_MODULES_VADDR, 0xffff_8000_0000_0000);
        assert_eq!(l.vmalloc_start, 0xffff_8000_8000_0000);
        // "ffff800080000000 fffffbffefffffff 124TB vmalloc".
        assert_eq!(l.vmalloc_end - 1, 0xffff_fbff_efff_ffff);
        assert_eq!((l.vmalloc_end - l.vmalloc_start) >> 40, 123);
        assert_eq!(l.fixaddr_top - 1, 0xffff_fbff_fdff_ffff);
        // vmemmap: 2 TiB of 64-byte struct pages for the 128 TiB linear map.
        assert_eq!((ARM64_PAGE_END - ARM64_PAGE_OFFSET) >> 12 << 6, 2 << 40);
        assert_eq!(l.vsyscall, None);
        // The linear map starts at DRAM (1 GiB on the virt board).
        assert_eq!(l.phys_to_virt(0x4000_1000), VirtAddr(0xffff_0000_0000_1000));
    }

    #[test]
    fn arm64_process_layout_is_the_generic_top_down_one() {
        use crate::mm_types::{MmLayout, Rlimits};
        // mm/util.c mmap_base: gap = 8 MiB rlimit + 1 MiB stack_guard_gap,
        // raised to MIN_GAP (128 MiB); base = STACK_TOP - gap.
        let l = MmLayout::arm64(Rlimits::default());
        assert_eq!(l.task_size.as_u64(), 1 << 48);
        assert_eq!(l.mmap_base.as_u64(), 0xffff_f800_0000);
        // TASK_UNMAPPED_BASE = PAGE_ALIGN(DEFAULT_MAP_WINDOW / 4).
        assert_eq!(l.mmap_legacy_base.as_u64(), 0x4000_0000_0000);
        // A huge stack rlimit is capped at STACK_TOP / 6 * 5.
        let big = MmLayout::arm64(Rlimits {
            stack: u64::MAX,
            ..Rlimits::default()
        });
        assert_eq!(
            big.mmap_base.as_u64(),
            ((1u64 << 48) - (1u64 << 48) / 6 * 5 + 0xfff) & !0xfff
        );
    }

    #[test]
    fn x86_32_layout() {
        let l = AddressSpaceLayout::new(PagingMode::X86Pae, 896 << 20);
        assert_eq!(l.page_offset, 0xc000_0000);
        assert_eq!(l.vmalloc_start, 0xf880_0000);
        assert_eq!(l.pkmap_base, Some(0xff80_0000));
        assert_eq!(l.vmalloc_end, 0xff7f_e000);
        // The kmap window ends below the fixmap.
        assert!(l.pkmap_base.unwrap() + l.last_pkmap * PAGE_SIZE <= X86_32_FIXADDR_TOT_START);
        let n = AddressSpaceLayout::new(PagingMode::X86_32, 512 << 20);
        assert_eq!(n.vmalloc_start, 0xe080_0000);
        assert_eq!(n.pkmap_base, Some(0xff40_0000));
        assert!(n.pkmap_base.unwrap() + n.last_pkmap * PAGE_SIZE <= X86_32_FIXADDR_TOT_START);
        assert_eq!(n.phys_to_virt(0x1000), VirtAddr(0xc000_1000));
    }
}
