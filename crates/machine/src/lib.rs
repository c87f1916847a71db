//! The simulated machine.

pub mod exec;
pub mod hostfs;
