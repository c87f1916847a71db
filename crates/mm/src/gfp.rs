//! GFP ("get free pages") flags: which zones an allocation may use, its
//! migrate type, and how hard the allocator may try. Bit values and the
//! composite masks are Linux 6.18's (include/linux/gfp_types.h), so a mode
//! printed in a failure report reads the same as in a real kernel log.

use alloc::string::String;
use core::fmt::Write;

use crate::mmzone::{MigrateType, ZoneType};

/// A set of GFP flags (`gfp_t`).
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default, Hash)]
pub struct Gfp(pub u32);

bitflags::bitflags! {
    /// The `__GFP_*` bits and the `GFP_*` composites. Every bit is known
    /// (`_ = !0`), so a mode with bits lmm does not name keeps them.
    impl Gfp: u32 {
        /// `__GFP_DMA`.
        const DMA = 0x01;
        /// `__GFP_HIGHMEM`.
        const HIGHMEM = 0x02;
        /// `__GFP_DMA32`.
        const DMA32 = 0x04;
        /// `__GFP_MOVABLE`.
        const MOVABLE = 0x08;
        /// `__GFP_RECLAIMABLE`.
        const RECLAIMABLE = 0x10;
        /// `__GFP_HIGH`.
        const HIGH = 0x20;
        /// `__GFP_IO`.
        const IO = 0x40;
        /// `__GFP_FS`.
        const FS = 0x80;
        /// `__GFP_ZERO`.
        const ZERO = 0x100;
        /// `__GFP_DIRECT_RECLAIM`.
        const DIRECT_RECLAIM = 0x400;
        /// `__GFP_KSWAPD_RECLAIM`.
        const KSWAPD_RECLAIM = 0x800;
        /// `__GFP_WRITE`.
        const WRITE = 0x1000;
        /// `__GFP_NOWARN`.
        const NOWARN = 0x2000;
        /// `__GFP_RETRY_MAYFAIL`.
        const RETRY_MAYFAIL = 0x4000;
        /// `__GFP_NOFAIL`.
        const NOFAIL = 0x8000;
        /// `__GFP_NORETRY`.
        const NORETRY = 0x10000;
        /// `__GFP_MEMALLOC`.
        const MEMALLOC = 0x20000;
        /// `__GFP_COMP`.
        const COMP = 0x40000;
        /// `__GFP_NOMEMALLOC`.
        const NOMEMALLOC = 0x80000;
        /// `__GFP_HARDWALL`.
        const HARDWALL = 0x100000;
        /// `__GFP_THISNODE`.
        const THISNODE = 0x200000;
        /// `__GFP_ACCOUNT`.
        const ACCOUNT = 0x400000;
        /// `__GFP_RECLAIM`.
        const RECLAIM = 0x400 | 0x800;
        /// `GFP_ATOMIC`.
        const ATOMIC = 0x20 | 0x800;
        /// `GFP_KERNEL`.
        const KERNEL = 0x400 | 0x800 | 0x40 | 0x80;
        /// `GFP_KERNEL_ACCOUNT`.
        const KERNEL_ACCOUNT = Self::KERNEL.bits() | 0x400000;
        /// `GFP_NOWAIT`.
        const NOWAIT = 0x800 | 0x2000;
        /// `GFP_NOIO`.
        const NOIO = 0x400 | 0x800;
        /// `GFP_NOFS`.
        const NOFS = 0x400 | 0x800 | 0x40;
        /// `GFP_USER`.
        const USER = Self::KERNEL.bits() | 0x100000;
        /// `GFP_DMA`.
        const GFP_DMA = 0x01;
        /// `GFP_DMA32`.
        const GFP_DMA32 = 0x04;
        /// `GFP_HIGHUSER`.
        const HIGHUSER = Self::USER.bits() | 0x02;
        /// `GFP_HIGHUSER_MOVABLE`.
        const HIGHUSER_MOVABLE = Self::HIGHUSER.bits() | 0x08;
        /// The zone-modifier bits.
        const ZONEMASK = 0x0f;
        const _ = !0;
    }
}

impl Gfp {
    /// True if the allocation may sleep to reclaim (`gfpflags_allow_blocking`).
    pub fn allows_blocking(self) -> bool {
        self.contains(Gfp::DIRECT_RECLAIM)
    }

    /// The migrate type of the allocation (`gfp_migratetype`).
    pub fn migratetype(self) -> MigrateType {
        if self.contains(Gfp::MOVABLE) {
            MigrateType::Movable
        } else if self.contains(Gfp::RECLAIMABLE) {
            MigrateType::Reclaimable
        } else {
            MigrateType::Unmovable
        }
    }

    /// The highest zone the allocation may use (`gfp_zone`), before mapping
    /// to the zones the architecture has. `None` for an invalid combination
    /// (Linux's BAD_RANGE, e.g. DMA|HIGHMEM).
    pub fn zone(self) -> Option<ZoneType> {
        let z = self.0 & Self::ZONEMASK.0;
        let movable = z & Self::MOVABLE.0 != 0;
        match z & !Self::MOVABLE.0 {
            0 => Some(ZoneType::Normal),
            // GFP_ZONE_TABLE: MOVABLE with DMA or DMA32 stays in that zone
            // (0x9, 0xc); only with HIGHMEM does it mean ZONE_MOVABLE.
            0x01 => Some(ZoneType::Dma),
            0x04 => Some(ZoneType::Dma32),
            0x02 => Some(if movable {
                ZoneType::Movable
            } else {
                ZoneType::HighMem
            }),
            _ => None,
        }
    }

    /// `%pGg`: names of the flags, composites first, as the kernel prints
    /// them in "page allocation failure" lines.
    pub fn describe(self) -> String {
        const COMPOSITES: &[(Gfp, &str)] = &[
            (Gfp::HIGHUSER_MOVABLE, "GFP_HIGHUSER_MOVABLE"),
            (Gfp::HIGHUSER, "GFP_HIGHUSER"),
            (Gfp::USER, "GFP_USER"),
            (Gfp::KERNEL_ACCOUNT, "GFP_KERNEL_ACCOUNT"),
            (Gfp::KERNEL, "GFP_KERNEL"),
            (Gfp::NOFS, "GFP_NOFS"),
            (Gfp::ATOMIC, "GFP_ATOMIC"),
            (Gfp::NOIO, "GFP_NOIO"),
            (Gfp::NOWAIT, "GFP_NOWAIT"),
            (Gfp::GFP_DMA, "GFP_DMA"),
            (Gfp::GFP_DMA32, "GFP_DMA32"),
        ];
        const BITS: &[(Gfp, &str)] = &[
            (Gfp::DMA, "__GFP_DMA"),
            (Gfp::HIGHMEM, "__GFP_HIGHMEM"),
            (Gfp::DMA32, "__GFP_DMA32"),
            (Gfp::MOVABLE, "__GFP_MOVABLE"),
            (Gfp::RECLAIMABLE, "__GFP_RECLAIMABLE"),
            (Gfp::HIGH, "__GFP_HIGH"),
            (Gfp::IO, "__GFP_IO"),
            (Gfp::FS, "__GFP_FS"),
            (Gfp::ZERO, "__GFP_ZERO"),
            (Gfp::DIRECT_RECLAIM, "__GFP_DIRECT_RECLAIM"),
            (Gfp::KSWAPD_RECLAIM, "__GFP_KSWAPD_RECLAIM"),
            (Gfp::WRITE, "__GFP_WRITE"),
            (Gfp::NOWARN, "__GFP_NOWARN"),
            (Gfp::RETRY_MAYFAIL, "__GFP_RETRY_MAYFAIL"),
            (Gfp::NOFAIL, "__GFP_NOFAIL"),
            (Gfp::NORETRY, "__GFP_NORETRY"),
            (Gfp::MEMALLOC, "__GFP_MEMALLOC"),
            (Gfp::COMP, "__GFP_COMP"),
            (Gfp::NOMEMALLOC, "__GFP_NOMEMALLOC"),
            (Gfp::HARDWALL, "__GFP_HARDWALL"),
            (Gfp::THISNODE, "__GFP_THISNODE"),
            (Gfp::ACCOUNT, "__GFP_ACCOUNT"),
        ];
        let mut left = self.0;
        let mut out = String::new();
        for (g, name) in COMPOSITES.iter().chain(BITS) {
            if g.0 != 0 && left & g.0 == g.0 {
                if !out.is_empty() {
                    out.push('|');
                }
                out.push_str(name);
                left &= !g.0;
            }
        }
        if left != 0 {
            if !out.is_empty() {
                out.push('|');
            }
            let _ = write!(out, "{left:#x}");
        }
        if out.is_empty() {
            out.push_str("none");
        }
        out
    }

    /// Parses a `|`-separated list of names (`GFP_KERNEL|__GFP_ZERO`,
    /// case-insensitive, the `GFP_`/`__GFP_` prefixes optional), or a number.
    pub fn parse(s: &str) -> Option<Gfp> {
        let mut g = Gfp(0);
        for part in s.split('|').map(str::trim) {
            if let Some(hex) = part.strip_prefix("0x") {
                g |= Gfp(u32::from_str_radix(hex, 16).ok()?);
                continue;
            }
            let up = part.to_ascii_uppercase();
            let name = up.trim_start_matches("__").trim_start_matches("GFP_");
            let v = match name {
                "DMA" => Gfp::DMA,
                "HIGHMEM" => Gfp::HIGHMEM,
                "DMA32" => Gfp::DMA32,
                "MOVABLE" => Gfp::MOVABLE,
                "RECLAIMABLE" => Gfp::RECLAIMABLE,
                "HIGH" => Gfp::HIGH,
                "IO" => Gfp::IO,
                "FS" => Gfp::FS,
                "ZERO" => Gfp::ZERO,
                "DIRECT_RECLAIM" => Gfp::DIRECT_RECLAIM,
                "KSWAPD_RECLAIM" => Gfp::KSWAPD_RECLAIM,
                "NOWARN" => Gfp::NOWARN,
                "RETRY_MAYFAIL" => Gfp::RETRY_MAYFAIL,
                "NOFAIL" => Gfp::NOFAIL,
                "NORETRY" => Gfp::NORETRY,
                "MEMALLOC" => Gfp::MEMALLOC,
                "COMP" => Gfp::COMP,
                "NOMEMALLOC" => Gfp::NOMEMALLOC,
                "HARDWALL" => Gfp::HARDWALL,
                "THISNODE" => Gfp::THISNODE,
                "ACCOUNT" => Gfp::ACCOUNT,
                "ATOMIC" => Gfp::ATOMIC,
                "KERNEL" => Gfp::KERNEL,
                "KERNEL_ACCOUNT" => Gfp::KERNEL_ACCOUNT,
                "NOWAIT" => Gfp::NOWAIT,
                "NOIO" => Gfp::NOIO,
                "NOFS" => Gfp::NOFS,
                "USER" => Gfp::USER,
                "HIGHUSER" => Gfp::HIGHUSER,
                "HIGHUSER_MOVABLE" => Gfp::HIGHUSER_MOVABLE,
                _ => return None,
            };
            g |= v;
        }
        Some(g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_values_match_linux_6_18() {
        // Values as printed by real kernels: GFP_KERNEL 0xcc0, GFP_ATOMIC
        // 0x820, GFP_HIGHUSER_MOVABLE 0x100cca (include/linux/gfp_types.h).
        assert_eq!(Gfp::KERNEL.0, 0xcc0);
        assert_eq!(Gfp::ATOMIC.0, 0x820);
        assert_eq!(Gfp::USER.0, 0x100cc0);
        assert_eq!(Gfp::HIGHUSER_MOVABLE.0, 0x100cca);
        assert_eq!(Gfp::NOWAIT.0, 0x2800);
    }

    #[test]
    fn describe_like_pgg() {
        assert_eq!(Gfp::KERNEL.describe(), "GFP_KERNEL");
        assert_eq!(
            (Gfp::KERNEL | Gfp::ZERO).describe(),
            "GFP_KERNEL|__GFP_ZERO"
        );
        assert_eq!(Gfp::ATOMIC.describe(), "GFP_ATOMIC");
        assert_eq!((Gfp::ATOMIC | Gfp::DMA).describe(), "GFP_ATOMIC|GFP_DMA");
        assert_eq!(Gfp(0).describe(), "none");
    }

    #[test]
    fn zone_and_migratetype_follow_gfp_zone() {
        assert_eq!(Gfp::KERNEL.zone(), Some(ZoneType::Normal));
        assert_eq!((Gfp::KERNEL | Gfp::DMA).zone(), Some(ZoneType::Dma));
        assert_eq!((Gfp::KERNEL | Gfp::DMA32).zone(), Some(ZoneType::Dma32));
        assert_eq!(Gfp::HIGHUSER.zone(), Some(ZoneType::HighMem));
        assert_eq!(Gfp::HIGHUSER_MOVABLE.zone(), Some(ZoneType::Movable));
        assert_eq!((Gfp::DMA | Gfp::HIGHMEM).zone(), None);
        // include/linux/gfp.h GFP_ZONE_TABLE rows 0x9, 0xc, 0xb, 0xd, 0xe.
        assert_eq!((Gfp::DMA | Gfp::MOVABLE).zone(), Some(ZoneType::Dma));
        assert_eq!((Gfp::DMA32 | Gfp::MOVABLE).zone(), Some(ZoneType::Dma32));
        assert_eq!((Gfp::MOVABLE | Gfp::HIGHMEM | Gfp::DMA).zone(), None);
        assert_eq!((Gfp::MOVABLE | Gfp::DMA32 | Gfp::DMA).zone(), None);
        assert_eq!((Gfp::MOVABLE | Gfp::DMA32 | Gfp::HIGHMEM).zone(), None);
        assert_eq!(Gfp::HIGHUSER_MOVABLE.migratetype(), MigrateType::Movable);
        assert_eq!(
            (Gfp::KERNEL | Gfp::RECLAIMABLE).migratetype(),
            MigrateType::Reclaimable
        );
        assert_eq!(Gfp::KERNEL.migratetype(), MigrateType::Unmovable);
    }

    #[test]
    fn parse_names() {
        assert_eq!(
            Gfp::parse("GFP_KERNEL|__GFP_ZERO"),
            Some(Gfp::KERNEL | Gfp::ZERO)
        );
        assert_eq!(Gfp::parse("atomic | dma"), Some(Gfp::ATOMIC | Gfp::DMA));
        assert_eq!(Gfp::parse("0xcc0"), Some(Gfp::KERNEL));
        assert_eq!(Gfp::parse("GFP_BOGUS"), None);
    }
}
