//! `mm`: the Linux memory-management subsystem in Rust, `no_std` + `alloc`.
//!
//! One module per file of Linux's `mm/`, under the same name. The machine
//! that hosts it supplies RAM through [`direct_map::DirectMap`]; everything
//! else (zones, the buddy allocator, slabs, page tables, VMAs) lives here.
#![no_std]
#![forbid(unsafe_op_in_unsafe_fn)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod arch;
pub mod debug;
pub mod direct_map;
pub mod errno;
pub mod file;
pub mod filemap;
pub mod gfp;
pub mod highmem;
pub mod madvise;
pub mod memblock;
pub mod memmap;
pub mod memory;
pub mod mempool;
pub mod mincore;
pub mod mlock;
pub mod mm_init;
pub mod mm_types;
pub mod mmap;
pub mod mmzone;
pub mod mprotect;
pub mod mremap;
pub mod msync;
pub mod oom_kill;
pub mod page_alloc;
pub mod percpu;
pub mod pgalloc;
pub mod pgtable;
pub mod printk;
pub mod proc;
pub mod replacement;
pub mod rmap;
pub mod slab;
pub mod slab_common;
pub mod swap;
pub mod swap_state;
pub mod swapfile;
pub mod task_mmu;
pub mod trace;
pub mod types;
pub mod util;
pub mod vma;
mod vma_tree;
pub mod vmalloc;
pub mod vmscan;
pub mod vmstat;
pub mod workingset;

pub use types::{Order, Pfn, PhysAddr, VirtAddr, PAGE_SHIFT, PAGE_SIZE};

#[doc(hidden)]
pub mod __private {
    pub use alloc::format;
}
