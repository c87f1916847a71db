//! Page-table entry formats: the paging modes (levels, entry size, index
//! bits), the hardware bits of an entry and the swap-entry encoding.
//! Mirrors arch/x86/include/asm/pgtable_types.h, pgtable_64.h, pgtable-2level.h, pgtable-3level.h;
//! arm64's descriptors are in [`crate::arch::arm64`].
//!
//! Levels are numbered from the leaf up, the way the hardware walk ends:
//! 1 = PTE, 2 = PMD (the PGD itself on 2-level x86), 3 = PUD (the PDPT on
//! PAE), 4 = P4D / 4-level PGD, 5 = 5-level PGD.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::Arch;
use crate::direct_map::DirectMap;
use crate::types::{Pfn, PhysAddr, VirtAddr, PAGE_SHIFT};

/// A paging mode: how a virtual address is split into table indices and how
/// big each entry is (CR4.PAE / CR4.LA57 on x86).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum PagingMode {
    /// x86-64 4-level paging: 48-bit virtual addresses, 4 x 9 index bits.
    X86_64L4,
    /// x86-64 5-level paging (LA57): 57-bit virtual addresses, 5 x 9 index bits.
    X86_64L5,
    /// 32-bit x86 without PAE: 2 levels of 1024 4-byte entries, 4 MiB PSE pages.
    X86_32,
    /// 32-bit x86 with PAE: a 4-entry PDPT, then two levels of 512 8-byte
    /// entries, 2 MiB large pages, NX.
    X86Pae,
    /// ARMv8-A with the 4 KiB granule and 48-bit virtual addresses: 4 x 9
    /// index bits (levels 0–3, Linux's PGD/PUD/PMD/PTE), 2 MiB and 1 GiB
    /// blocks, separate roots for the low (TTBR0, user) and high (TTBR1,
    /// kernel) halves. Entries in RAM are ARMv8-A descriptors
    /// ([`crate::arch::arm64`]).
    Arm64L4,
}

/// Highest level number any mode uses.
pub const MAX_LEVELS: u8 = 5;

impl PagingMode {
    /// Every mode, for tests and command-line listings.
    pub const ALL: [PagingMode; 5] = [
        PagingMode::X86_64L4,
        PagingMode::X86_64L5,
        PagingMode::X86_32,
        PagingMode::X86Pae,
        PagingMode::Arm64L4,
    ];

    /// The mode an architecture's kernel uses; `la57` selects 5-level paging
    /// on x86-64 (arm64 with 52-bit VA is not modelled).
    pub const fn for_arch(arch: Arch, la57: bool) -> PagingMode {
        match arch {
            Arch::X86_64 if la57 => PagingMode::X86_64L5,
            Arch::X86_64 => PagingMode::X86_64L4,
            Arch::X86 => PagingMode::X86_32,
            Arch::X86Pae => PagingMode::X86Pae,
            Arch::Arm64 => PagingMode::Arm64L4,
        }
    }

    /// True if user and kernel addresses have separate roots (arm64's
    /// TTBR0_EL1 and TTBR1_EL1): a process's PGD holds no kernel entries
    /// and kernel addresses are walked from `swapper_pg_dir`.
    pub const fn split_roots(self) -> bool {
        matches!(self, PagingMode::Arm64L4)
    }

    /// Number of levels of tables (CONFIG_PGTABLE_LEVELS).
    pub const fn levels(self) -> u8 {
        match self {
            PagingMode::X86_64L4 | PagingMode::Arm64L4 => 4,
            PagingMode::X86_64L5 => 5,
            PagingMode::X86_32 => 2,
            PagingMode::X86Pae => 3,
        }
    }

    /// Size of one entry in bytes: 4 on 2-level x86, 8 otherwise.
    pub const fn entry_size(self) -> u64 {
        match self {
            PagingMode::X86_32 => 4,
            _ => 8,
        }
    }

    /// Index bits consumed by `level` (1 = PTE).
    pub const fn index_bits(self, level: u8) -> u32 {
        match self {
            PagingMode::X86_32 => 10,
            PagingMode::X86Pae if level == 3 => 2,
            _ => 9,
        }
    }

    /// Entries in a table of `level` (PTRS_PER_PTE, PTRS_PER_PMD, ...).
    /// The PAE PDPT has 4.
    pub const fn entries(self, level: u8) -> usize {
        1 << self.index_bits(level)
    }

    /// Bit position of the lowest address bit that indexes `level`
    /// (PAGE_SHIFT, PMD_SHIFT, PUD_SHIFT, P4D_SHIFT, PGDIR_SHIFT).
    pub const fn shift(self, level: u8) -> u32 {
        match self {
            PagingMode::X86_32 => PAGE_SHIFT + 10 * (level as u32 - 1),
            _ => PAGE_SHIFT + 9 * (level as u32 - 1),
        }
    }

    /// Bytes of virtual address space one entry of `level` maps.
    pub const fn span(self, level: u8) -> u64 {
        1 << self.shift(level)
    }

    /// Width of a virtual address: 48, 57 or 32 bits.
    pub const fn va_bits(self) -> u32 {
        match self {
            PagingMode::X86_64L4 | PagingMode::Arm64L4 => 48,
            PagingMode::X86_64L5 => 57,
            PagingMode::X86_32 | PagingMode::X86Pae => 32,
        }
    }

    /// True if entries have an execute-disable bit (bit 63 on x86, UXN/PXN
    /// on arm64).
    pub const fn has_nx(self) -> bool {
        !matches!(self, PagingMode::X86_32)
    }

    /// Mask of the physical-address field of an entry: bits 12..51
    /// (PTE_PFN_MASK with __PHYSICAL_MASK_SHIFT 52), or 12..31 on 2-level,
    /// 12..47 on arm64 (48-bit output addresses).
    pub const fn pfn_mask(self) -> u64 {
        match self {
            PagingMode::X86_32 => 0xffff_f000,
            PagingMode::Arm64L4 => crate::arch::arm64::ADDR_MASK,
            _ => 0x000f_ffff_ffff_f000,
        }
    }

    /// True if an entry of `level` may map a page directly (PS bit):
    /// 2 MiB and 1 GiB on x86-64, 4 MiB (PSE) or 2 MiB (PAE) on 32-bit,
    /// 2 MiB and 1 GiB block descriptors on arm64 (levels 2 and 1).
    pub const fn huge_ok(self, level: u8) -> bool {
        match self {
            PagingMode::X86_64L4 | PagingMode::X86_64L5 | PagingMode::Arm64L4 => {
                level == 2 || level == 3
            }
            PagingMode::X86_32 | PagingMode::X86Pae => level == 2,
        }
    }

    /// The largest level that may hold a leaf.
    pub const fn max_leaf_level(self) -> u8 {
        match self {
            PagingMode::X86_64L4 | PagingMode::X86_64L5 | PagingMode::Arm64L4 => 3,
            _ => 2,
        }
    }

    /// First index of the top-level table that belongs to the kernel
    /// (KERNEL_PGD_BOUNDARY): 256 on x86-64, 768 for the 3G/1G split, and
    /// PDPT entry 3 on PAE. On arm64 a process's PGD (TTBR0) is all user
    /// space: 512, past its last entry.
    pub const fn kernel_pgd_boundary(self) -> usize {
        match self {
            PagingMode::X86_64L4 | PagingMode::X86_64L5 => 256,
            PagingMode::X86_32 => 768,
            PagingMode::X86Pae => 3,
            PagingMode::Arm64L4 => 512,
        }
    }

    /// Mask of the linear (non-sign-extended) address bits.
    pub const fn va_mask(self) -> u64 {
        (1u64 << self.va_bits()) - 1
    }

    /// True if `va` is canonical: sign-extended from the top VA bit on
    /// x86-64, below 4 GiB on 32-bit; on arm64 bits 63..48 all clear
    /// (TTBR0) or all set (TTBR1), bit 47 free (no top-byte-ignore).
    pub const fn is_canonical(self, va: VirtAddr) -> bool {
        match self {
            PagingMode::X86_32 | PagingMode::X86Pae => va.0 >> 32 == 0,
            PagingMode::Arm64L4 => va.0 >> 48 == 0 || va.0 >> 48 == 0xffff,
            _ => {
                let sh = 64 - self.va_bits();
                (((va.0 << sh) as i64) >> sh) as u64 == va.0
            }
        }
    }

    /// The canonical address of a linear address (sign-extends on x86-64;
    /// on arm64 the TTBR0 address, see [`PagingMode::split_roots`]).
    pub const fn canonical(self, lin: u64) -> VirtAddr {
        match self {
            PagingMode::X86_32 | PagingMode::X86Pae => VirtAddr(lin & 0xffff_ffff),
            PagingMode::Arm64L4 => VirtAddr(lin & 0x0000_ffff_ffff_ffff),
            _ => {
                let sh = 64 - self.va_bits();
                VirtAddr((((lin << sh) as i64) >> sh) as u64)
            }
        }
    }

    /// Index into the table of `level` for `va` (pgd_index, pmd_index, ...).
    pub const fn index(self, va: VirtAddr, level: u8) -> usize {
        ((va.0 >> self.shift(level)) as usize) & (self.entries(level) - 1)
    }

    /// Physical address of entry `idx` of the table in frame `table`.
    pub const fn entry_pa(self, table: Pfn, idx: usize) -> PhysAddr {
        PhysAddr(table.phys().0 + idx as u64 * self.entry_size())
    }

    /// Linux's name for the table at `level` in this mode.
    pub const fn level_name(self, level: u8) -> &'static str {
        match (self, level) {
            (_, 1) => "pte",
            (PagingMode::X86_32, 2) | (PagingMode::X86Pae, 3) => "pgd",
            (_, 2) => "pmd",
            (_, 3) => "pud",
            (PagingMode::X86_64L5, 4) => "p4d",
            _ => "pgd",
        }
    }

    /// True if `pte`, found at `level`, maps memory (or is a non-present
    /// leaf) rather than pointing at a lower table.
    pub const fn is_leaf(self, pte: Pte, level: u8) -> bool {
        level == 1 || !pte.present() || (pte.huge() && self.huge_ok(level))
    }

    fn word(self, dm: &DirectMap, pa: PhysAddr) -> Option<(&AtomicU64, u32)> {
        let w = PhysAddr(pa.0 & !7);
        if !dm.contains(w, 8) {
            return None;
        }
        Some((dm.word(w), ((pa.0 & 4) * 8) as u32))
    }

    /// The neutral entry for the bits stored in RAM (an ARMv8-A descriptor
    /// on arm64, the x86 entry itself otherwise).
    const fn decode_hw(self, raw: u64) -> Pte {
        match self {
            PagingMode::Arm64L4 => crate::arch::arm64::decode(raw),
            _ => Pte(raw),
        }
    }

    /// The bits to store in RAM for a neutral entry.
    const fn encode_hw(self, pte: Pte) -> u64 {
        match self {
            PagingMode::Arm64L4 => crate::arch::arm64::encode(pte),
            _ => pte.0,
        }
    }

    /// Reads the raw bits of the entry at `pa` as the hardware stores them
    /// (an ARMv8-A descriptor on arm64); `None` outside RAM.
    pub fn read_raw(self, dm: &DirectMap, pa: PhysAddr) -> Option<u64> {
        let (w, sh) = self.word(dm, pa)?;
        let v = w.load(Ordering::Acquire);
        Some(if self.entry_size() == 4 {
            (v >> sh) & 0xffff_ffff
        } else {
            v
        })
    }

    /// Reads the entry at `pa` (4 or 8 bytes). Out-of-RAM addresses read as
    /// all ones, like a read from a bus with nothing behind it.
    pub fn read_entry(self, dm: &DirectMap, pa: PhysAddr) -> Pte {
        if self.split_roots() {
            return match self.read_raw(dm, pa) {
                Some(raw) => self.decode_hw(raw),
                None => Pte(u64::MAX),
            };
        }
        match self.word(dm, pa) {
            None => Pte(if self.entry_size() == 4 {
                0xffff_ffff
            } else {
                u64::MAX
            }),
            Some((w, sh)) => {
                let v = w.load(Ordering::Acquire);
                if self.entry_size() == 4 {
                    Pte((v >> sh) & 0xffff_ffff)
                } else {
                    Pte(v)
                }
            }
        }
    }

    /// Atomically ORs `bits` into the entry at `pa`, returning the old
    /// entry: how the MMU sets the accessed and dirty bits (a locked
    /// read-modify-write on real hardware). On arm64 A and D are the
    /// FEAT_HAFDBS updates (AF set; RDONLY cleared under DBM), other bits
    /// are ORed into the neutral entry.
    pub fn or_entry(self, dm: &DirectMap, pa: PhysAddr, bits: u64) -> Pte {
        if self.split_roots() {
            let Some((w, _)) = self.word(dm, pa) else {
                return Pte(u64::MAX);
            };
            let hw = bits & (Pte::A | Pte::D);
            let rest = bits & !hw;
            let mut cur = w.load(Ordering::Acquire);
            loop {
                let mut next = crate::arch::arm64::hw_update(cur, hw);
                if rest != 0 {
                    next = self.encode_hw(self.decode_hw(next).set_bits(rest));
                }
                match w.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => return self.decode_hw(cur),
                    Err(c) => cur = c,
                }
            }
        }
        match self.word(dm, pa) {
            None => Pte(u64::MAX),
            Some((w, sh)) => {
                if self.entry_size() == 4 {
                    Pte(
                        (w.fetch_or((bits & 0xffff_ffff) << sh, Ordering::AcqRel) >> sh)
                            & 0xffff_ffff,
                    )
                } else {
                    Pte(w.fetch_or(bits, Ordering::AcqRel))
                }
            }
        }
    }

    /// Atomically replaces the entry at `pa` with `new` if it still equals
    /// `old` (cmpxchg). Returns the value found.
    pub fn cmpxchg_entry(
        self,
        dm: &DirectMap,
        pa: PhysAddr,
        old: Pte,
        new: Pte,
    ) -> Result<Pte, Pte> {
        let Some((w, sh)) = self.word(dm, pa) else {
            return Err(Pte(u64::MAX));
        };
        if self.split_roots() {
            // Compare the descriptor, not the neutral value: a hardware
            // A/D update in between must make the exchange fail.
            let cur = w.load(Ordering::Acquire);
            if self.decode_hw(cur) != old {
                return Err(self.decode_hw(cur));
            }
            return w
                .compare_exchange(
                    cur,
                    self.encode_hw(new),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .map(|c| self.decode_hw(c))
                .map_err(|c| self.decode_hw(c));
        }
        if self.entry_size() == 8 {
            return w
                .compare_exchange(old.0, new.0, Ordering::AcqRel, Ordering::Acquire)
                .map(Pte)
                .map_err(Pte);
        }
        let mask = 0xffff_ffffu64 << sh;
        let mut cur = w.load(Ordering::Acquire);
        loop {
            let found = (cur >> sh) & 0xffff_ffff;
            if found != old.0 {
                return Err(Pte(found));
            }
            let next = (cur & !mask) | ((new.0 & 0xffff_ffff) << sh);
            match w.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ok(old),
                Err(c) => cur = c,
            }
        }
    }

    /// Atomically swaps `new` into the entry at `pa`, returning the old one
    /// (xchg, as `ptep_get_and_clear` does so no A/D update is lost).
    pub fn xchg_entry(self, dm: &DirectMap, pa: PhysAddr, new: Pte) -> Pte {
        let mut old = self.read_entry(dm, pa);
        loop {
            match self.cmpxchg_entry(dm, pa, old, new) {
                Ok(o) => return o,
                Err(f) if f.0 == u64::MAX && self.word(dm, pa).is_none() => return f,
                Err(f) => old = f,
            }
        }
    }

    /// Writes the entry at `pa` (set_pte). Ignored outside RAM.
    pub fn write_entry(self, dm: &DirectMap, pa: PhysAddr, pte: Pte) {
        if self.entry_size() == 8 {
            if let Some((w, _)) = self.word(dm, pa) {
                w.store(self.encode_hw(pte), Ordering::Release);
            }
        } else {
            self.xchg_entry(dm, pa, pte);
        }
    }
}

/// Architecture-neutral page protection and state flags, converted to the
/// hardware bits by [`Pte::new`].
#[derive(Copy, Clone, Default, PartialEq, Eq, Hash)]
pub struct PteFlags(pub u32);

bitflags::bitflags! {
    /// The bits, lmm's own numbering (not a hardware layout).
    impl PteFlags: u32 {
        /// No flags.
        const EMPTY = 0;
        /// The entry is valid for the hardware.
        const PRESENT = 1 << 0;
        /// Writes allowed.
        const WRITE = 1 << 1;
        /// User-mode accesses allowed.
        const USER = 1 << 2;
        /// Write-through caching (PWT).
        const WRITE_THROUGH = 1 << 3;
        /// Caching disabled (PCD).
        const NO_CACHE = 1 << 4;
        /// Accessed (young).
        const ACCESSED = 1 << 5;
        /// Dirty.
        const DIRTY = 1 << 6;
        /// Maps a large page (only valid above the PTE level).
        const HUGE = 1 << 7;
        /// Global: survives address-space switches in the TLB.
        const GLOBAL = 1 << 8;
        /// Execute-disable (ignored on 2-level x86, which has no NX).
        const NX = 1 << 9;
        /// PROT_NONE: valid to Linux, not present to the hardware.
        const PROTNONE = 1 << 10;
        /// PAGE_KERNEL: present, writable, accessed, dirty, global, NX.
        const KERNEL = Self::PRESENT.bits() | Self::WRITE.bits() | Self::ACCESSED.bits() | Self::DIRTY.bits() | Self::GLOBAL.bits() | Self::NX.bits();
        const _ = !0;
    }
}

impl PteFlags {
    /// The protections of a user mapping from mmap's `PROT_*` bits (READ=1,
    /// WRITE=2, EXEC=4), as arch/x86/mm/pgprot.c `protection_map` gives
    /// them: every present one has ACCESSED preset, NX unless PROT_EXEC,
    /// writable only for shared mappings (a private writable mapping is
    /// PAGE_COPY: read-only until copy-on-write), PROT_NONE is PAGE_NONE.
    pub const fn from_prot(prot: u32, shared: bool) -> PteFlags {
        let (r, w, x) = (prot & 1 != 0, prot & 2 != 0, prot & 4 != 0);
        if !(r || w || x) {
            return PteFlags(Self::PROTNONE.0 | Self::ACCESSED.0);
        }
        let mut f = Self::PRESENT.0 | Self::USER.0 | Self::ACCESSED.0;
        if w && shared {
            f |= Self::WRITE.0;
        }
        if !x {
            f |= Self::NX.0;
        }
        PteFlags(f)
    }
}

impl core::fmt::Debug for PteFlags {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        const NAMES: [&str; 11] = [
            "P", "W", "U", "PWT", "PCD", "A", "D", "PS", "G", "NX", "PROTNONE",
        ];
        write!(f, "PteFlags(")?;
        let mut first = true;
        for (i, n) in NAMES.iter().enumerate() {
            if self.0 & (1 << i) != 0 {
                if !first {
                    write!(f, "|")?;
                }
                write!(f, "{n}")?;
                first = false;
            }
        }
        write!(f, ")")
    }
}

/// A swap entry (`swp_entry_t`): which swap device and which slot.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SwapEntry {
    /// Swap device index, 0..32 (MAX_SWAPFILES_SHIFT = 5 bits).
    pub ty: u8,
    /// Slot in the device.
    pub offset: u64,
}

/// Bits of a swap type in an entry (SWP_TYPE_BITS).
pub const SWP_TYPE_BITS: u32 = 5;

/// A page-table entry at any level, holding the hardware bits exactly as
/// the MMU reads them (a 4-byte entry is zero-extended).
///
/// The PAT bit (bit 7 in a PTE, bit 12 in a large-page entry) is never set:
/// memory types are not modelled, so bit 7 means PS (huge) wherever it is
/// set and the PFN field is bits 12..51 uniformly.
#[derive(Copy, Clone, Default, PartialEq, Eq, Hash)]
pub struct Pte(pub u64);

impl core::fmt::Debug for Pte {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Pte({:#x})", self.0)
    }
}

impl Pte {
    /// _PAGE_PRESENT.
    pub const P: u64 = 1 << 0;
    /// _PAGE_RW.
    pub const RW: u64 = 1 << 1;
    /// _PAGE_USER.
    pub const US: u64 = 1 << 2;
    /// _PAGE_PWT.
    pub const PWT: u64 = 1 << 3;
    /// _PAGE_PCD.
    pub const PCD: u64 = 1 << 4;
    /// _PAGE_ACCESSED.
    pub const A: u64 = 1 << 5;
    /// _PAGE_DIRTY.
    pub const D: u64 = 1 << 6;
    /// _PAGE_PSE: a large page above the PTE level.
    pub const PS: u64 = 1 << 7;
    /// _PAGE_GLOBAL.
    pub const G: u64 = 1 << 8;
    /// _PAGE_PROTNONE: the global bit reused while P is clear.
    pub const PROTNONE: u64 = 1 << 8;
    /// _PAGE_NX (PAE and 64-bit only).
    pub const NX: u64 = 1 << 63;
    /// The empty entry (pte_none).
    pub const NONE: Pte = Pte(0);

    /// _PAGE_TABLE: the bits of an entry pointing at a lower user table.
    pub const TABLE_USER: u64 = Self::P | Self::RW | Self::US | Self::A | Self::D;
    /// _KERNPG_TABLE: the bits of an entry pointing at a lower kernel table.
    pub const TABLE_KERNEL: u64 = Self::P | Self::RW | Self::A | Self::D;

    /// Builds a leaf entry mapping `pfn` with `flags`. NX is dropped on
    /// 2-level x86. PFN bits beyond the mode's physical width are cut.
    pub const fn new(mode: PagingMode, pfn: Pfn, flags: PteFlags) -> Pte {
        Pte(((pfn.0 << PAGE_SHIFT) & mode.pfn_mask()) | Self::flag_bits(mode, flags))
    }

    /// The hardware bits of `flags` in `mode`.
    pub const fn flag_bits(mode: PagingMode, flags: PteFlags) -> u64 {
        let f = flags.0;
        let mut b = 0;
        if f & PteFlags::PRESENT.0 != 0 {
            b |= Self::P;
        }
        if f & PteFlags::WRITE.0 != 0 {
            b |= Self::RW;
        }
        if f & PteFlags::USER.0 != 0 {
            b |= Self::US;
        }
        if f & PteFlags::WRITE_THROUGH.0 != 0 {
            b |= Self::PWT;
        }
        if f & PteFlags::NO_CACHE.0 != 0 {
            b |= Self::PCD;
        }
        if f & PteFlags::ACCESSED.0 != 0 {
            b |= Self::A;
        }
        if f & PteFlags::DIRTY.0 != 0 {
            b |= Self::D;
        }
        if f & PteFlags::HUGE.0 != 0 {
            b |= Self::PS;
        }
        if f & (PteFlags::GLOBAL.0 | PteFlags::PROTNONE.0) != 0 {
            b |= Self::G;
        }
        if f & PteFlags::NX.0 != 0 && mode.has_nx() {
            b |= Self::NX;
        }
        b
    }

    /// An entry pointing at the lower table in frame `table`, as
    /// pgd/p4d/pud/pmd_populate write it: _PAGE_TABLE for user addresses,
    /// _KERNPG_TABLE for kernel ones, and only _PAGE_PRESENT in a PAE PDPT
    /// entry (whose other bits are reserved).
    pub const fn table(mode: PagingMode, table: Pfn, level: u8, user: bool) -> Pte {
        let bits = if matches!(mode, PagingMode::X86Pae) && level == 3 {
            Self::P
        } else if user {
            Self::TABLE_USER
        } else {
            Self::TABLE_KERNEL
        };
        Pte((table.0 << PAGE_SHIFT) | bits)
    }

    /// The raw value.
    pub const fn raw(self) -> u64 {
        self.0
    }
    /// pte_none: all bits clear.
    pub const fn is_none(self) -> bool {
        self.0 == 0
    }
    /// Present to the hardware (P set).
    pub const fn present(self) -> bool {
        self.0 & Self::P != 0
    }
    /// PROT_NONE entry: not present to the hardware, but maps a page
    /// (pte_present in Linux is `present() || protnone()`).
    pub const fn protnone(self) -> bool {
        self.0 & (Self::P | Self::PROTNONE) == Self::PROTNONE
    }
    /// Maps a page (present or PROT_NONE), as Linux's pte_present.
    pub const fn maps_page(self) -> bool {
        self.present() || self.protnone()
    }
    /// A swap (or other non-present software) entry.
    pub const fn is_swap(self) -> bool {
        !self.is_none() && !self.maps_page()
    }
    /// Writable.
    pub const fn writable(self) -> bool {
        self.0 & Self::RW != 0
    }
    /// User accessible.
    pub const fn user(self) -> bool {
        self.0 & Self::US != 0
    }
    /// Accessed (pte_young).
    pub const fn accessed(self) -> bool {
        self.0 & Self::A != 0
    }
    /// Dirty.
    pub const fn dirty(self) -> bool {
        self.0 & Self::D != 0
    }
    /// PS set: a large page when above the PTE level.
    pub const fn huge(self) -> bool {
        self.0 & Self::PS != 0
    }
    /// Global (only meaningful while present).
    pub const fn global(self) -> bool {
        self.present() && self.0 & Self::G != 0
    }
    /// Execute-disable.
    pub const fn nx(self) -> bool {
        self.0 & Self::NX != 0
    }
    /// The frame (or first frame of a large page) the entry points at.
    pub const fn pfn(self) -> Pfn {
        Pfn((self.0 & 0x000f_ffff_ffff_f000) >> PAGE_SHIFT)
    }
    /// The physical address the entry points at.
    pub const fn phys(self) -> PhysAddr {
        self.pfn().phys()
    }

    /// The neutral flags of this entry.
    pub const fn flags(self) -> PteFlags {
        let mut f = 0;
        let b = self.0;
        if b & Self::P != 0 {
            f |= PteFlags::PRESENT.0;
            if b & Self::G != 0 {
                f |= PteFlags::GLOBAL.0;
            }
        } else if b & Self::PROTNONE != 0 {
            f |= PteFlags::PROTNONE.0;
        }
        if b & Self::RW != 0 {
            f |= PteFlags::WRITE.0;
        }
        if b & Self::US != 0 {
            f |= PteFlags::USER.0;
        }
        if b & Self::PWT != 0 {
            f |= PteFlags::WRITE_THROUGH.0;
        }
        if b & Self::PCD != 0 {
            f |= PteFlags::NO_CACHE.0;
        }
        if b & Self::A != 0 {
            f |= PteFlags::ACCESSED.0;
        }
        if b & Self::D != 0 {
            f |= PteFlags::DIRTY.0;
        }
        if b & Self::PS != 0 {
            f |= PteFlags::HUGE.0;
        }
        if b & Self::NX != 0 {
            f |= PteFlags::NX.0;
        }
        PteFlags(f)
    }

    /// The same entry with raw hardware `bits` set.
    pub const fn set_bits(self, bits: u64) -> Pte {
        Pte(self.0 | bits)
    }
    /// The same entry with raw hardware `bits` cleared.
    pub const fn clear_bits(self, bits: u64) -> Pte {
        Pte(self.0 & !bits)
    }
    /// pte_wrprotect.
    pub const fn wrprotect(self) -> Pte {
        self.clear_bits(Self::RW)
    }
    /// pte_mkwrite.
    pub const fn mkwrite(self) -> Pte {
        self.set_bits(Self::RW)
    }
    /// pte_mkold.
    pub const fn mkold(self) -> Pte {
        self.clear_bits(Self::A)
    }
    /// pte_mkyoung.
    pub const fn mkyoung(self) -> Pte {
        self.set_bits(Self::A)
    }
    /// pte_mkclean.
    pub const fn mkclean(self) -> Pte {
        self.clear_bits(Self::D)
    }
    /// pte_mkdirty.
    pub const fn mkdirty(self) -> Pte {
        self.set_bits(Self::D)
    }

    /// pte_modify: keeps the frame, accessed, dirty and PS bits (_PAGE_CHG_MASK)
    /// and takes the protection from `flags`.
    pub const fn modify(self, mode: PagingMode, flags: PteFlags) -> Pte {
        let keep = mode.pfn_mask() | Self::A | Self::D | Self::PS | Self::PWT | Self::PCD;
        let prot =
            Self::flag_bits(mode, flags) & !(Self::A | Self::D | Self::PS | Self::PWT | Self::PCD);
        Pte((self.0 & keep) | prot)
    }

    /// Encodes a swap entry (__swp_entry_to_pte).
    ///
    /// x86-64 and PAE (pgtable_64.h, pgtable-3level.h): type in bits 59..63,
    /// the offset *inverted* in bits 9..58 (L1TF mitigation: a non-present
    /// entry never points at real memory), bits 0..8 clear so P and
    /// PROTNONE read 0. 2-level (pgtable-2level.h): type in bits 1..5,
    /// offset in bits 9..31, not inverted. Simplification: the software
    /// bits Linux keeps beside them (_PAGE_SWP_EXCLUSIVE, soft-dirty,
    /// uffd-wp) are not encoded. On 2-level, type 0 offset 0 would read as
    /// pte_none; Linux never uses slot 0 (the swap header) for a page.
    pub const fn swap(mode: PagingMode, e: SwapEntry) -> Pte {
        let ty = (e.ty as u64) & ((1 << SWP_TYPE_BITS) - 1);
        match mode {
            PagingMode::X86_32 => Pte((ty << 1) | ((e.offset << 9) & 0xffff_fe00)),
            _ => Pte(((!e.offset << 14) >> SWP_TYPE_BITS) | (ty << (64 - SWP_TYPE_BITS))),
        }
    }

    /// Decodes a swap entry (__pte_to_swp_entry); `None` if the entry maps
    /// a page or is empty.
    pub const fn swap_entry(self, mode: PagingMode) -> Option<SwapEntry> {
        if !self.is_swap() {
            return None;
        }
        Some(match mode {
            PagingMode::X86_32 => SwapEntry {
                ty: ((self.0 >> 1) & 0x1f) as u8,
                offset: (self.0 & 0xffff_ffff) >> 9,
            },
            _ => SwapEntry {
                ty: (self.0 >> (64 - SWP_TYPE_BITS)) as u8,
                offset: (!self.0 << SWP_TYPE_BITS) >> 14,
            },
        })
    }

    /// Largest swap offset the encoding holds.
    pub const fn max_swap_offset(mode: PagingMode) -> u64 {
        match mode {
            PagingMode::X86_32 => (1 << 23) - 1,
            _ => (1 << 50) - 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::direct_map::HeapRam;

    #[test]
    fn geometry_of_each_mode() {
        use PagingMode::*;
        assert_eq!(
            (X86_64L4.levels(), X86_64L4.shift(4), X86_64L4.entries(4)),
            (4, 39, 512)
        );
        assert_eq!((X86_64L5.levels(), X86_64L5.shift(5)), (5, 48));
        assert_eq!(
            (X86_32.levels(), X86_32.shift(2), X86_32.entries(1)),
            (2, 22, 1024)
        );
        assert_eq!(
            (X86Pae.levels(), X86Pae.shift(3), X86Pae.entries(3)),
            (3, 30, 4)
        );
        assert_eq!(X86Pae.entries(2), 512);
        assert_eq!(X86_32.entry_size(), 4);
        for m in PagingMode::ALL {
            // The levels together index exactly the virtual address width.
            let bits: u32 = (1..=m.levels()).map(|l| m.index_bits(l)).sum();
            assert_eq!(bits + PAGE_SHIFT, m.va_bits());
            // A table is one page, except the PAE PDPT.
            for l in 1..=m.levels() {
                let bytes = m.entries(l) as u64 * m.entry_size();
                assert!(bytes == 4096 || (m == X86Pae && l == 3 && bytes == 32));
            }
        }
        // Indices: 0xffff888000000000 is PGD slot 273 on both x86-64 modes.
        assert_eq!(X86_64L4.index(VirtAddr(0xffff_8880_0000_0000), 4), 273);
        assert_eq!(X86_64L5.index(VirtAddr(0xff11_0000_0000_0000), 5), 273);
        assert_eq!(X86_32.index(VirtAddr(0xc000_0000), 2), 768);
        assert_eq!(X86Pae.index(VirtAddr(0xc000_0000), 3), 3);
    }

    #[test]
    fn canonical_addresses() {
        let m = PagingMode::X86_64L4;
        assert!(m.is_canonical(VirtAddr(0x7fff_ffff_ffff)));
        assert!(!m.is_canonical(VirtAddr(0x8000_0000_0000)));
        assert!(m.is_canonical(VirtAddr(0xffff_8000_0000_0000)));
        assert_eq!(
            m.canonical(0x8000_0000_0000),
            VirtAddr(0xffff_8000_0000_0000)
        );
        assert!(PagingMode::X86_64L5.is_canonical(VirtAddr(0x00ff_ffff_ffff_f000)));
        assert!(!PagingMode::X86_32.is_canonical(VirtAddr(1 << 32)));
    }

    #[test]
    fn hardware_bits_match_linux_prots() {
        let m = PagingMode::X86_64L4;
        // __PAGE_KERNEL = P|RW|A|D|G|NX.
        assert_eq!(
            Pte::new(m, Pfn(0x1234), PteFlags::KERNEL).raw(),
            0x8000_0000_0123_4163
        );
        // PAGE_SHARED (shared RW, no exec) = P|RW|US|A|NX.
        let f = PteFlags::from_prot(3, true);
        assert_eq!(Pte::new(m, Pfn(1), f).raw(), 0x8000_0000_0000_1027);
        // PAGE_COPY_EXEC (private RWX before CoW) = P|US|A.
        assert_eq!(
            Pte::new(m, Pfn(1), PteFlags::from_prot(7, false)).raw(),
            0x1025
        );
        // PAGE_NONE = PROTNONE|A, not present.
        let none = Pte::new(m, Pfn(1), PteFlags::from_prot(0, false));
        assert_eq!(none.raw(), 0x1120);
        assert!(none.protnone() && !none.present() && none.maps_page() && !none.is_swap());
        // No NX on 2-level x86.
        assert_eq!(
            Pte::new(PagingMode::X86_32, Pfn(1), PteFlags::KERNEL).raw(),
            0x1163
        );
        assert_eq!(
            Pte::new(PagingMode::X86Pae, Pfn(1), PteFlags::KERNEL).raw(),
            0x8000_0000_0000_1163
        );
        let p = Pte::new(m, Pfn(0xabcde), PteFlags::KERNEL);
        assert!(p.present() && p.writable() && !p.user() && p.accessed() && p.dirty());
        assert!(p.global() && p.nx() && !p.huge() && p.pfn() == Pfn(0xabcde));
        assert_eq!(p.flags(), PteFlags::KERNEL);
        assert_eq!(
            Pte::table(PagingMode::X86Pae, Pfn(2), 3, true).raw(),
            0x2001
        );
        assert_eq!(Pte::table(m, Pfn(2), 4, true).raw(), 0x2067);
        assert_eq!(Pte::table(m, Pfn(2), 4, false).raw(), 0x2063);
        // pte_modify keeps frame and A/D.
        let q = p.mkold().modify(m, PteFlags::from_prot(1, false));
        assert_eq!(q.raw(), 0x8000_0000_abcd_e045);
    }

    #[test]
    fn swap_entries_round_trip() {
        for m in PagingMode::ALL {
            for (ty, off) in [(0u8, 1u64), (31, Pte::max_swap_offset(m)), (3, 0x12345)] {
                let e = SwapEntry { ty, offset: off };
                let p = Pte::swap(m, e);
                assert!(p.is_swap() && !p.present() && !p.protnone(), "{m:?} {p:?}");
                assert_eq!(p.swap_entry(m), Some(e));
            }
        }
        // x86-64 stores the offset inverted.
        let p = Pte::swap(PagingMode::X86_64L4, SwapEntry { ty: 1, offset: 0 });
        assert_eq!(p.raw(), 0x07ff_ffff_ffff_fe00 | (1 << 59));
        assert_eq!(
            Pte::swap(PagingMode::X86_32, SwapEntry { ty: 2, offset: 3 }).raw(),
            0x604
        );
    }

    #[test]
    fn four_byte_entries_are_accessed_in_place() {
        let dm = HeapRam::direct_map(8192);
        let m = PagingMode::X86_32;
        m.write_entry(&dm, PhysAddr(0x1004), Pte(0xdead_b001));
        m.write_entry(&dm, PhysAddr(0x1000), Pte(0x1234_5003));
        assert_eq!(m.read_entry(&dm, PhysAddr(0x1004)), Pte(0xdead_b001));
        assert_eq!(
            m.or_entry(&dm, PhysAddr(0x1004), Pte::A | Pte::D),
            Pte(0xdead_b001)
        );
        assert_eq!(m.read_entry(&dm, PhysAddr(0x1004)), Pte(0xdead_b061));
        assert_eq!(m.read_entry(&dm, PhysAddr(0x1000)), Pte(0x1234_5003));
        assert_eq!(
            m.xchg_entry(&dm, PhysAddr(0x1000), Pte::NONE),
            Pte(0x1234_5003)
        );
        let mut raw = [0u8; 8];
        dm.read(PhysAddr(0x1000), &mut raw);
        assert_eq!(raw, [0, 0, 0, 0, 0x61, 0xb0, 0xad, 0xde]);
        // Outside RAM reads as all ones and writes are dropped.
        assert_eq!(m.read_entry(&dm, PhysAddr(0x10000)), Pte(0xffff_ffff));
    }
}
