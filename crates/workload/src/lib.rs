//! What runs on lmm's machine: Rhai scenarios and replays of real traces
//! (strace logs of memory system calls, valgrind lackey memory-access traces).
#![forbid(unsafe_code)]

pub mod lackey;
pub mod plot;
pub mod replay;
pub mod sample;
pub mod scenario;
pub mod soak;
pub mod strace;
pub mod tour;
