//! Tour topics of the kernel's own memory: boot, zones, the buddy
//! allocator, per-CPU lists, watermarks, slabs, kmalloc, mempools, vmalloc,
//! kmap, the page-table walk and the TLB, NUMA.

use super::{Topic, Tour};

/// The kernel's topics, in the textbook's order.
pub(super) static TOPICS: &[Topic] = &[Topic {
    name: "buddy",
    title: "a buddy split and merge",
    run: buddy,
}];

fn buddy(t: &mut Tour) -> Result<(), String> {
    t.say("placeholder");
    Ok(())
}
