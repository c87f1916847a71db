//! Tour topics of address spaces: mmap placement and VMA merge/split, brk,
//! exec of a real ELF, demand-zero and the zero page, file faults and the
//! page cache, copy-on-write after fork, the LRU lists and kswapd, swap
//! out and in, the OOM killer.

use super::{Topic, Tour};

/// The address-space topics, in the textbook's order.
pub(super) static TOPICS: &[Topic] = &[Topic {
    name: "mmap",
    title: "mmap placement and VMA merge/split",
    run: mmap,
}];

fn mmap(t: &mut Tour) -> Result<(), String> {
    t.say("placeholder");
    Ok(())
}
