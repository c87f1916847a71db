//! Workloads: scenarios and trace replay.
