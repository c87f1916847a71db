//! Units of memory: physical and virtual addresses, page frame numbers and
//! allocation orders, each a newtype so that no bare integer crosses a module
//! boundary meaning an address (Linux: `phys_addr_t`, `unsigned long pfn`).

use core::fmt;
use core::ops::{Add, AddAssign, Sub};

/// log2 of the base page size (4 KiB on every architecture we model).
pub const PAGE_SHIFT: u32 = 12;
/// The base page size in bytes.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
/// Mask that clears the offset inside a page.
pub const PAGE_MASK: u64 = !(PAGE_SIZE - 1);

/// Rounds `x` up to a multiple of the page size (Linux `PAGE_ALIGN`).
/// Returns `None` on overflow.
pub const fn page_align(x: u64) -> Option<u64> {
    match x.checked_add(PAGE_SIZE - 1) {
        Some(v) => Some(v & PAGE_MASK),
        None => None,
    }
}

macro_rules! addr_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[repr(transparent)]
        #[derive(Copy, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u64);

        impl $name {
            /// The raw value.
            pub const fn as_u64(self) -> u64 {
                self.0
            }
            /// Rounds down to the start of the page.
            pub const fn page_down(self) -> Self {
                Self(self.0 & PAGE_MASK)
            }
            /// True if the address is the start of a page.
            pub const fn is_page_aligned(self) -> bool {
                self.0 & !PAGE_MASK == 0
            }
            /// The offset inside the page.
            pub const fn page_offset(self) -> u64 {
                self.0 & !PAGE_MASK
            }
        }

        impl Add<u64> for $name {
            type Output = Self;
            fn add(self, rhs: u64) -> Self {
                Self(self.0 + rhs)
            }
        }

        impl AddAssign<u64> for $name {
            fn add_assign(&mut self, rhs: u64) {
                self.0 += rhs;
            }
        }

        impl Sub<u64> for $name {
            type Output = Self;
            fn sub(self, rhs: u64) -> Self {
                Self(self.0 - rhs)
            }
        }

        impl Sub for $name {
            type Output = u64;
            fn sub(self, rhs: Self) -> u64 {
                self.0 - rhs.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:#x})"), self.0)
            }
        }

        impl fmt::LowerHex for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::LowerHex::fmt(&self.0, f)
            }
        }
    };
}

addr_type!(
    /// A physical address in the simulated machine's RAM (`phys_addr_t`).
    PhysAddr
);
addr_type!(
    /// A virtual address, user or kernel.
    VirtAddr
);

impl VirtAddr {
    /// `self + len`, or `None` past the top of the address space.
    pub const fn checked_add(self, len: u64) -> Option<VirtAddr> {
        match self.0.checked_add(len) {
            Some(v) => Some(VirtAddr(v)),
            None => None,
        }
    }
    /// `self + len`, stopping at the top of the address space.
    pub const fn saturating_add(self, len: u64) -> VirtAddr {
        VirtAddr(self.0.saturating_add(len))
    }
    /// `self - len`, stopping at address 0.
    pub const fn saturating_sub(self, len: u64) -> VirtAddr {
        VirtAddr(self.0.saturating_sub(len))
    }
    /// Rounds up to the next page boundary (`PAGE_ALIGN`); `None` on overflow.
    pub const fn page_up(self) -> Option<VirtAddr> {
        match page_align(self.0) {
            Some(v) => Some(VirtAddr(v)),
            None => None,
        }
    }
    /// The virtual page number (`addr >> PAGE_SHIFT`): the `vm_pgoff` of an
    /// anonymous VMA starting here, and the index of its pagemap entry.
    pub const fn vpn(self) -> u64 {
        self.0 >> PAGE_SHIFT
    }
}

impl PhysAddr {
    /// The frame that holds this address (`PHYS_PFN`).
    pub const fn pfn(self) -> Pfn {
        Pfn(self.0 >> PAGE_SHIFT)
    }
}

/// A page frame number: a physical address shifted right by `PAGE_SHIFT`.
#[repr(transparent)]
#[derive(Copy, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pfn(pub u64);

impl Pfn {
    /// The physical address of the frame's first byte (`PFN_PHYS`).
    pub const fn phys(self) -> PhysAddr {
        PhysAddr(self.0 << PAGE_SHIFT)
    }
    /// The raw value.
    pub const fn as_u64(self) -> u64 {
        self.0
    }
    /// True if this frame starts a naturally aligned block of `order`.
    pub const fn is_aligned(self, order: Order) -> bool {
        self.0 & (order.pages() - 1) == 0
    }
}

impl Add<u64> for Pfn {
    type Output = Pfn;
    fn add(self, rhs: u64) -> Pfn {
        Pfn(self.0 + rhs)
    }
}

impl Sub for Pfn {
    type Output = u64;
    fn sub(self, rhs: Pfn) -> u64 {
        self.0 - rhs.0
    }
}

impl fmt::Debug for Pfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pfn({:#x})", self.0)
    }
}

/// A buddy allocation order: a block of `2^order` contiguous pages.
#[repr(transparent)]
#[derive(Copy, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Order(pub u8);

impl Order {
    /// Number of base pages in a block of this order.
    pub const fn pages(self) -> u64 {
        1 << self.0
    }
    /// Number of bytes in a block of this order.
    pub const fn bytes(self) -> u64 {
        PAGE_SIZE << self.0
    }
    /// The order as an index into per-order arrays.
    pub const fn idx(self) -> usize {
        self.0 as usize
    }
    /// Smallest order whose block holds `size` bytes (Linux `get_order`).
    pub const fn for_size(size: u64) -> Order {
        if size <= PAGE_SIZE {
            return Order(0);
        }
        let pages = (size - 1) >> PAGE_SHIFT;
        Order((64 - pages.leading_zeros()) as u8)
    }
}

/// Bytes in a KiB, for /proc output.
pub const fn pages_to_kib(pages: u64) -> u64 {
    pages << (PAGE_SHIFT - 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_order_matches_linux() {
        // Linux get_order(): 0..=4096 -> 0, 4097..=8192 -> 1, 8193 -> 2.
        assert_eq!(Order::for_size(1), Order(0));
        assert_eq!(Order::for_size(4096), Order(0));
        assert_eq!(Order::for_size(4097), Order(1));
        assert_eq!(Order::for_size(8192), Order(1));
        assert_eq!(Order::for_size(8193), Order(2));
        assert_eq!(Order::for_size(4 << 20), Order(10));
    }

    #[test]
    fn pfn_phys_round_trip() {
        let p = PhysAddr(0x1234_5678);
        assert_eq!(p.pfn(), Pfn(0x12345));
        assert_eq!(p.pfn().phys(), PhysAddr(0x1234_5000));
        assert_eq!(p.page_offset(), 0x678);
        assert!(Pfn(1024).is_aligned(Order(10)));
        assert!(!Pfn(512).is_aligned(Order(10)));
    }

    #[test]
    fn page_align_rounds_and_detects_overflow() {
        assert_eq!(page_align(1), Some(4096));
        assert_eq!(page_align(4096), Some(4096));
        assert_eq!(page_align(u64::MAX), None);
    }
}
