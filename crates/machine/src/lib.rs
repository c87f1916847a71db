//! The simulated machine.

pub mod mmu;
