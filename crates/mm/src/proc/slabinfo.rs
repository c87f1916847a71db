//! /proc/slabinfo, version 2.1 (mm/slab_common.c `slab_show`,
//! `cache_show`): a header, then one line per cache, newest first, with
//! SLUB's tunables all 0 and SLAB's limit/batchcount/shared filled in.

use alloc::string::String;
use core::fmt::Write;

use crate::slab_common::{Kmem, SlabInfo};

/// The two header lines.
pub const HEADER: &str = "slabinfo - version: 2.1\n# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>\n";

/// One cache's line: `"%-17s %6lu %6lu %6u %4u %4d"`, then
/// `" : tunables %4u %4u %4u"` and `" : slabdata %6lu %6lu %6lu"`.
pub fn line(out: &mut String, i: &SlabInfo) {
    let _ = writeln!(
        out,
        "{:<17} {:>6} {:>6} {:>6} {:>4} {:>4} : tunables {:>4} {:>4} {:>4} : slabdata {:>6} {:>6} {:>6}",
        i.name,
        i.active_objs,
        i.num_objs,
        i.objsize,
        i.objperslab,
        i.pagesperslab,
        i.limit,
        i.batchcount,
        i.sharedfactor,
        i.active_slabs,
        i.num_slabs,
        i.sharedavail
    );
}

/// Renders /proc/slabinfo.
pub fn render(k: &Kmem) -> String {
    let mut out = String::from(HEADER);
    for i in k.slabinfo() {
        line(&mut out, &i);
    }
    out
}
