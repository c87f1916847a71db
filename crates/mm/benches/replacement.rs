//! criterion: references per second of each page-replacement policy of
//! `mm::replacement` on two 1M-reference synthetic strings, through
//! `simulate` (key compaction included; for opt, building its next-use
//! table too): `hot`, a 1024-page working set drifting through 64 Ki
//! pages with 2048 frames (miss ratio about 0.1), and `thrash`, a
//! 4096-page working set with 1024 frames (about 0.8). The named
//! reference, in the same run: exact LRU the ordinary way, a `std`
//! HashMap of last uses plus a BTreeMap ordered by them (O(log n) per
//! reference).

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mm::replacement::{policy_by_name, simulate, POLICIES};

const REFS: usize = 1 << 20;

/// A deterministic string with locality: 90% of references fall in a
/// window of `window` pages that drifts by one page every 256 references,
/// the rest anywhere in 65536 pages; keys are page numbers of a 48-bit
/// space (sparse, as a process's are).
fn synthetic(window: u64) -> Vec<u64> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..REFS)
        .map(|i| {
            let r = next();
            let page = if r % 10 < 9 {
                (i as u64 / 256) + (r >> 8) % window
            } else {
                (r >> 8) % 65536
            };
            0x7_f000_0000 + page
        })
        .collect()
}

/// Exact LRU with std maps: the reference.
fn std_lru(refs: &[u64], frames: usize) -> u64 {
    let mut last: HashMap<u64, u64> = HashMap::new();
    let mut order: BTreeMap<u64, u64> = BTreeMap::new();
    let mut faults = 0;
    for (now, &k) in refs.iter().enumerate() {
        let now = now as u64;
        match last.insert(k, now) {
            Some(prev) => {
                order.remove(&prev);
            }
            None => {
                faults += 1;
                if order.len() == frames {
                    let (_, victim) = order.pop_first().unwrap();
                    last.remove(&victim);
                }
            }
        }
        order.insert(now, k);
    }
    faults
}

fn replacement(c: &mut Criterion) {
    for (case, window, frames) in [("hot", 1024, 2048), ("thrash", 4096, 1024)] {
        let refs = synthetic(window);
        let mut g = c.benchmark_group(format!("replacement/{case}"));
        g.throughput(Throughput::Elements(REFS as u64));
        g.sample_size(10);
        g.warm_up_time(std::time::Duration::from_secs(1));
        g.measurement_time(std::time::Duration::from_secs(3));
        // The reference and lmm's lru must agree on the faults.
        let mut lru = policy_by_name("lru", None).unwrap();
        let want = simulate(&refs, frames, lru.as_mut()).unwrap().faults;
        assert_eq!(std_lru(&refs, frames), want);
        g.bench_function("std_hashmap_btreemap_lru", |b| {
            b.iter(|| std_lru(black_box(&refs), frames))
        });
        for name in POLICIES {
            g.bench_function(name, |b| {
                b.iter(|| {
                    let mut p = policy_by_name(name, Some(&refs)).unwrap();
                    simulate(black_box(&refs), frames, p.as_mut()).unwrap()
                })
            });
        }
        g.finish();
    }
}

criterion_group!(benches, replacement);
criterion_main!(benches);
