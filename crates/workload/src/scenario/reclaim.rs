//! Scenario functions for reclaim and swap: turning swap on and off,
//! letting kswapd run, dropping the page cache, and reading the LRU
//! lists. Errors name the call.

use rhai::{Engine, Map};

use super::{err, pid_of, RhaiResult, Shared};
use machine::swapfile::SwapSpec;
use mm::swap::Lru;

/// Registers the reclaim functions.
pub(super) fn register(engine: &mut Engine, st: &Shared) {
    let s = st.clone();
    // swapon(size): a swap file of `size` (e.g. "64M") that lmm makes;
    // returns the swap type.
    engine.register_fn("swapon", move |size: &str| -> RhaiResult<i64> {
        let bytes =
            machine::parse_size(size).or_else(|e| err(format!("swapon({size:?}): {}", e.0)))?;
        super::guard::may_boot(&mut s.borrow_mut(), bytes)?;
        s.borrow_mut()
            .machine
            .swapon_spec(&SwapSpec::Make(bytes))
            .map(i64::from)
            .or_else(|e| err(format!("swapon({size:?}): {e}")))
    });
    let s = st.clone();
    // swapoff(type): 0, or the negative errno (ENOMEM when the pages do
    // not fit back in memory).
    engine.register_fn("swapoff", move |ty: i64| -> RhaiResult<i64> {
        let ty = u8::try_from(ty).or_else(|_| err(format!("swapoff({ty}): no such swap type")))?;
        Ok(match s.borrow_mut().machine.sys_swapoff(ty) {
            Ok(()) => 0,
            Err(e) => -(e.code() as i64),
        })
    });
    let s = st.clone();
    // kswapd(): lets every woken kswapd run now; returns the pages it freed.
    engine.register_fn("kswapd", move || -> i64 {
        s.borrow_mut().machine.run_kswapd() as i64
    });
    let s = st.clone();
    // drop_caches(): `echo 1 > /proc/sys/vm/drop_caches`; returns the pages freed.
    engine.register_fn("drop_caches", move || -> i64 {
        s.borrow_mut().machine.drop_caches() as i64
    });
    let s = st.clone();
    // lru(): node 0's list sizes in pages, by Linux's list names.
    engine.register_fn("lru", move || -> Map {
        let st = s.borrow();
        let vec = st.machine.pa().nodes[0].lruvec.lock();
        let mut m = Map::new();
        for (lru, name) in Lru::ALL.iter().zip([
            "inactive_anon",
            "active_anon",
            "inactive_file",
            "active_file",
            "unevictable",
        ]) {
            m.insert(name.into(), (vec.size(*lru) as i64).into());
        }
        m
    });
    let s = st.clone();
    // swap_rss(pid): the process's swap entries (MM_SWAPENTS).
    engine.register_fn("swap_rss", move |pid: i64| -> RhaiResult<i64> {
        let pid = pid_of(pid)?;
        let st = s.borrow();
        let p = st
            .machine
            .process(pid)
            .map_or_else(|| err(format!("swap_rss({pid}): no such process")), Ok)?;
        Ok(p.mm.rss.get(mm::mm_types::RssKind::Swap) as i64)
    });
}
