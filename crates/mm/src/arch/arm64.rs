//! The ARMv8-A stage-1 translation-table descriptor format with the 4 KiB
//! granule and 48-bit virtual addresses (4 levels, level 0–3), as Linux's
//! arm64 port uses it with CONFIG_PGTABLE_LEVELS=4. Mirrors
//! arch/arm64/include/asm/pgtable-hwdef.h (hardware bits),
//! pgtable-prot.h (software bits, protections) and pgtable.h (swap entries).
//!
//! lmm's page-table code works on one architecture-neutral entry value
//! ([`Pte`], x86-shaped bits); on an arm64 machine the bytes in RAM are
//! real ARMv8-A descriptors and [`encode`]/[`decode`] convert at every
//! table access ([`crate::arch::pte::PagingMode::read_entry`] and friends),
//! so the simulated MMU and any dump see the arm64 format. The mapping:
//!
//! | neutral           | arm64 descriptor                                     |
//! |-------------------|------------------------------------------------------|
//! | present           | bit 0 (valid); bit 1 = table/page, clear = block      |
//! | huge (above PTE)  | block descriptor (bits\[1:0\] = 0b01)                |
//! | accessed          | AF, bit 10                                           |
//! | user              | AP\[1\] = PTE_USER, bit 6                            |
//! | writable          | DBM, bit 51 (Linux's PTE_WRITE)                      |
//! | dirty             | PTE_DIRTY (software, bit 55); hardware dirty is DBM && !RDONLY |
//! | !(writable && dirty) | AP\[2\] = PTE_RDONLY, bit 7                        |
//! | global            | nG (bit 11) clear; user pages are nG                  |
//! | NX                | UXN (54) and PXN (53); user pages always PXN, kernel pages always UXN |
//! | PCD / PWT         | AttrIndx (bits\[4:2\]) of a device / non-cacheable MAIR slot |
//! | PROT_NONE         | present-invalid: valid clear, PTE_PRESENT_INVALID (= nG) set, no USER, UXN |
//!
//! AF: Linux creates every entry with AF already set (PTE_AF is in
//! `_PROT_DEFAULT`) and clears it only to age a page; lmm's MMU sets AF on
//! use as FEAT_HAFDBS hardware does, so an aged page never takes the
//! access-flag fault that a CPU without FEAT_HAFDBS raises (Linux then sets
//! AF in its fault handler: the same end state). Dirty: with FEAT_HAFDBS
//! a write through a DBM entry clears RDONLY instead of faulting; lmm's MMU
//! does exactly that. Table descriptors carry the same neutral bits in
//! bits 2–11 and 51–58, which the hardware ignores in a table descriptor,
//! so a table entry decodes back to what was written (Linux writes only
//! the type and PXNTable/UXNTable there: simplified).

use crate::arch::pte::Pte;

/// Bit 0: the descriptor is valid (PTE_VALID).
pub const VALID: u64 = 1 << 0;
/// Bit 1: table (levels 0–2) or page (level 3) descriptor; clear with
/// VALID set is a block (PMD_TYPE_SECT / PUD_TYPE_SECT).
pub const TABLE_OR_PAGE: u64 = 1 << 1;
/// Bits\[4:2\]: AttrIndx, the MAIR_EL1 slot (PTE_ATTRINDX).
pub const ATTRINDX_SHIFT: u32 = 2;
/// AttrIndx mask.
pub const ATTRINDX_MASK: u64 = 7 << ATTRINDX_SHIFT;
/// MAIR slot of normal write-back memory (MT_NORMAL, asm/memory.h).
pub const MT_NORMAL: u64 = 0;
/// MAIR slot of normal non-cacheable memory (MT_NORMAL_NC).
pub const MT_NORMAL_NC: u64 = 2;
/// MAIR slot of strongly-ordered device memory (MT_DEVICE_nGnRnE).
pub const MT_DEVICE_NGNRNE: u64 = 3;
/// MAIR slot of the device memory ioremap uses (MT_DEVICE_nGnRE).
pub const MT_DEVICE_NGNRE: u64 = 4;
/// Bit 6: AP\[1\], EL0 may access (PTE_USER).
pub const USER: u64 = 1 << 6;
/// Bit 7: AP\[2\], read-only (PTE_RDONLY).
pub const RDONLY: u64 = 1 << 7;
/// Bits\[9:8\] = 0b11: inner shareable (PTE_SHARED).
pub const SHARED: u64 = 3 << 8;
/// Bit 10: the access flag (PTE_AF).
pub const AF: u64 = 1 << 10;
/// Bit 11: not global, the TLB entry is tagged with the ASID (PTE_NG).
pub const NG: u64 = 1 << 11;
/// Bit 11 reused while VALID is clear: the entry is present to Linux
/// (PROT_NONE or an invalidated huge entry), PTE_PRESENT_INVALID.
pub const PRESENT_INVALID: u64 = NG;
/// Bits\[47:12\]: the output address with 48-bit physical addresses
/// (PTE_ADDR_LOW; no 52-bit PA here).
pub const ADDR_MASK: u64 = 0x0000_ffff_ffff_f000;
/// Bit 51: dirty bit modifier (PTE_DBM), which Linux uses as PTE_WRITE.
pub const DBM: u64 = 1 << 51;
/// Bit 53: privileged execute-never (PTE_PXN).
pub const PXN: u64 = 1 << 53;
/// Bit 54: unprivileged execute-never (PTE_UXN).
pub const UXN: u64 = 1 << 54;
/// Bit 55: software dirty (PTE_DIRTY, pgtable-prot.h).
pub const SW_DIRTY: u64 = 1 << 55;
/// First bit of the swap type in a swap entry (__SWP_TYPE_SHIFT: bits
/// 6–10 since Linux 6.10 moved PTE_PROT_NONE to PTE_PRESENT_INVALID).
pub const SWP_TYPE_SHIFT: u32 = 6;
/// First bit of the swap offset (__SWP_OFFSET_SHIFT: bits 12–61, 50 bits,
/// leaving bit 11, PTE_PRESENT_INVALID, clear in a swap entry).
pub const SWP_OFFSET_SHIFT: u32 = 12;
/// Width of the swap offset (__SWP_OFFSET_BITS).
pub const SWP_OFFSET_BITS: u32 = 50;

/// The descriptor for a neutral entry (see the module table).
pub const fn encode(p: Pte) -> u64 {
    if p.is_none() {
        return 0;
    }
    let v = p.raw();
    let addr = v & ADDR_MASK;
    if p.present() || p.protnone() {
        let user = v & Pte::US != 0;
        let dirty = v & Pte::D != 0;
        let write = v & Pte::RW != 0;
        let mut d = addr | SHARED | attr(v) << ATTRINDX_SHIFT;
        if p.present() {
            d |= VALID;
            if v & Pte::PS == 0 {
                d |= TABLE_OR_PAGE;
            }
            if v & Pte::G == 0 {
                d |= NG;
            }
            if user {
                d |= USER;
            }
            let nx = v & Pte::NX != 0;
            if nx || user {
                d |= PXN;
            }
            if nx || !user {
                d |= UXN;
            }
        } else {
            // PAGE_NONE: page type without VALID, present-invalid,
            // read-only, never executable, not user-accessible.
            d |= TABLE_OR_PAGE | PRESENT_INVALID | PXN | UXN;
        }
        if v & Pte::A != 0 {
            d |= AF;
        }
        if write {
            d |= DBM;
        }
        if dirty {
            d |= SW_DIRTY;
        }
        if !(write && dirty) || p.protnone() {
            d |= RDONLY;
        }
        return d;
    }
    match p.swap_entry(crate::arch::pte::PagingMode::X86_64L4) {
        Some(e) => swap_entry(e.ty, e.offset),
        None => 0,
    }
}

/// AttrIndx for the neutral cache bits: PCD|PWT (UC) → nGnRnE, PCD (UC-,
/// ioremap) → nGnRE, PWT (WT) → normal non-cacheable, none → normal.
const fn attr(v: u64) -> u64 {
    match (v & Pte::PCD != 0, v & Pte::PWT != 0) {
        (true, true) => MT_DEVICE_NGNRNE,
        (true, false) => MT_DEVICE_NGNRE,
        (false, true) => MT_NORMAL_NC,
        (false, false) => MT_NORMAL,
    }
}

/// The swap descriptor for `ty`/`offset` (__swp_entry + __swp_entry_to_pte):
/// type in bits 6–10, offset in bits 12–61, bits 0–1 clear.
pub const fn swap_entry(ty: u8, offset: u64) -> u64 {
    (((ty as u64) & 0x1f) << SWP_TYPE_SHIFT)
        | ((offset & ((1 << SWP_OFFSET_BITS) - 1)) << SWP_OFFSET_SHIFT)
}

/// The neutral entry for a descriptor; inverse of [`encode`] on every
/// descriptor `encode` produces.
pub const fn decode(d: u64) -> Pte {
    if d == 0 {
        return Pte::NONE;
    }
    let addr = d & ADDR_MASK;
    let present = d & VALID != 0;
    let protnone = !present && d & PRESENT_INVALID != 0 && d & USER == 0 && d & UXN != 0;
    if !present && !protnone {
        let ty = ((d >> SWP_TYPE_SHIFT) & 0x1f) as u8;
        let offset = (d >> SWP_OFFSET_SHIFT) & ((1 << SWP_OFFSET_BITS) - 1);
        return Pte::swap(
            crate::arch::pte::PagingMode::X86_64L4,
            crate::arch::pte::SwapEntry { ty, offset },
        );
    }
    let mut v = addr;
    let user = d & USER != 0;
    if present {
        v |= Pte::P;
        if d & TABLE_OR_PAGE == 0 {
            v |= Pte::PS;
        }
        if d & NG == 0 {
            v |= Pte::G;
        }
        if user {
            v |= Pte::US;
        }
        let nx = if user { d & UXN != 0 } else { d & PXN != 0 };
        if nx {
            v |= Pte::NX;
        }
    } else {
        v |= Pte::PROTNONE;
    }
    if d & AF != 0 {
        v |= Pte::A;
    }
    if d & DBM != 0 {
        v |= Pte::RW;
    }
    if hw_dirty(d) || d & SW_DIRTY != 0 {
        v |= Pte::D;
    }
    v |= match (d & ATTRINDX_MASK) >> ATTRINDX_SHIFT {
        MT_DEVICE_NGNRNE => Pte::PCD | Pte::PWT,
        MT_DEVICE_NGNRE => Pte::PCD,
        MT_NORMAL_NC => Pte::PWT,
        _ => 0,
    };
    Pte(v)
}

/// Hardware dirty (pte_hw_dirty): writable (DBM) and no longer read-only,
/// which is what a FEAT_HAFDBS write through a clean writable entry leaves.
pub const fn hw_dirty(d: u64) -> bool {
    d & DBM != 0 && d & RDONLY == 0
}

/// The descriptor after the hardware's access/dirty update for the
/// neutral `bits` (A and/or D): AF set; for D, RDONLY cleared if DBM is
/// set (a write to a non-DBM read-only entry faults before this).
pub const fn hw_update(d: u64, bits: u64) -> u64 {
    let mut n = d;
    if bits & Pte::A != 0 {
        n |= AF;
    }
    if bits & Pte::D != 0 && d & DBM != 0 {
        n &= !RDONLY;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::pte::{PagingMode, PteFlags, SwapEntry};
    use crate::types::Pfn;

    const M: PagingMode = PagingMode::Arm64L4;

    #[test]
    fn bit_positions_are_the_architecture_s() {
        // Arm ARM D8.3 (VMSAv8-64 descriptors) and pgtable-hwdef.h:
        // AF bit 10, nG 11, AP[2:1] bits 7:6, SH 9:8, DBM 51, PXN 53,
        // UXN 54; pgtable-prot.h: PTE_DIRTY 55, PTE_WRITE = PTE_DBM.
        assert_eq!(
            (AF, NG, USER, RDONLY, SHARED),
            (0x400, 0x800, 0x40, 0x80, 0x300)
        );
        assert_eq!(
            (DBM, PXN, UXN, SW_DIRTY),
            (1 << 51, 1 << 53, 1 << 54, 1 << 55)
        );
    }

    #[test]
    fn kernel_and_user_prots_match_linux() {
        // PAGE_KERNEL = PROT_NORMAL: page | AF | SHARED | PXN | UXN |
        // WRITE | AttrIndx(MT_NORMAL), global, hardware-dirty (no RDONLY).
        let k = encode(Pte::new(M, Pfn(0x40123), PteFlags::KERNEL));
        assert_eq!(k, 0x0068_0000_4012_3703 | SW_DIRTY);
        assert!(hw_dirty(k));
        // PAGE_READONLY (private read): page | AF | SHARED | USER | RDONLY
        // | nG | PXN | UXN.
        let r = encode(Pte::new(M, Pfn(0x40001), PteFlags::from_prot(1, false)));
        assert_eq!(r, 0x0060_0000_4000_1fc3);
        // PAGE_READONLY_EXEC drops UXN only.
        let rx = encode(Pte::new(M, Pfn(0x40001), PteFlags::from_prot(5, false)));
        assert_eq!(rx, r & !UXN);
        // PAGE_SHARED: writable clean = DBM with RDONLY still set.
        let w = encode(Pte::new(M, Pfn(0x40001), PteFlags::from_prot(3, true)));
        assert_eq!(w, r | DBM);
        assert!(!hw_dirty(w));
        // A write through it (FEAT_HAFDBS) clears RDONLY: hardware dirty.
        let dirty = hw_update(w, Pte::D);
        assert_eq!(dirty, w & !RDONLY);
        assert!(decode(dirty).dirty() && decode(dirty).writable());
        // PAGE_NONE: not valid, present-invalid, RDONLY, PXN|UXN, no USER.
        let n = encode(Pte::new(M, Pfn(0x40001), PteFlags::from_prot(0, false)));
        assert_eq!(n & (VALID | USER), 0);
        assert_eq!(
            n & (PRESENT_INVALID | RDONLY | PXN | UXN),
            PRESENT_INVALID | RDONLY | PXN | UXN
        );
        assert!(decode(n).protnone() && !decode(n).present());
    }

    #[test]
    fn blocks_tables_and_pages() {
        let huge = Pte::new(M, Pfn(0x40200), PteFlags::KERNEL | PteFlags::HUGE);
        let d = encode(huge);
        assert_eq!(d & 3, 0b01, "a 2 MiB leaf is a block descriptor");
        assert_eq!(decode(d), huge);
        let t = Pte::table(M, Pfn(0x40555), 4, true);
        assert_eq!(encode(t) & 3, 0b11);
        assert_eq!(encode(t) & ADDR_MASK, 0x4055_5000);
        assert_eq!(decode(encode(t)), t);
    }

    #[test]
    fn round_trips() {
        let flags = [
            PteFlags::KERNEL,
            PteFlags::from_prot(1, false),
            PteFlags::from_prot(3, true),
            PteFlags::from_prot(7, false),
            PteFlags::from_prot(0, false),
            PteFlags::KERNEL | PteFlags::NO_CACHE,
            PteFlags::KERNEL | PteFlags::NO_CACHE | PteFlags::WRITE_THROUGH,
        ];
        for f in flags {
            for p in [
                Pte::new(M, Pfn(0x4_0000), f),
                Pte::new(M, Pfn(0xf_ffff_ffff), f),
            ] {
                let p = if f.contains(PteFlags::PROTNONE) {
                    p
                } else {
                    p.set_bits(Pte::P)
                };
                for q in [p, p.mkdirty(), p.mkold(), p.wrprotect().mkdirty()] {
                    assert_eq!(decode(encode(q)), q, "{f:?} {q:?} -> {:#x}", encode(q));
                }
            }
        }
    }

    #[test]
    fn swap_entries_use_arm64_shifts() {
        // pgtable.h: type in bits 6..10, offset from bit 12, bits 0..1 zero.
        let d = encode(Pte::swap(
            M,
            SwapEntry {
                ty: 3,
                offset: 0x12345,
            },
        ));
        assert_eq!(d, (3 << 6) | (0x12345 << 12));
        assert_eq!(d & (VALID | PRESENT_INVALID), 0);
        let max = SwapEntry {
            ty: 31,
            offset: (1 << 50) - 1,
        };
        assert_eq!(decode(encode(Pte::swap(M, max))).swap_entry(M), Some(max));
    }
}
