//! Workloads: scenarios and trace replay.
pub mod strace;
