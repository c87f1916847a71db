//! The simulated machine that lmm's memory manager runs on: RAM as real
//! host memory, a firmware memory map, CPUs with an MMU and TLB, NUMA nodes,
//! boot, host files and exec with its binary-format table.

pub mod brd;
pub mod config;
pub mod e820;
pub mod exec;
pub mod fs;
pub mod hostfs;
pub mod kernel;
pub mod kobjects;
pub mod machine;
pub mod mmu;
pub mod oom;
pub mod process;
pub mod qemu_virt;
pub mod ram;
pub mod swapdev;
pub mod swapfile;

pub use config::{parse_size, MachineConfig, TraceSink};
pub use machine::Machine;
