//! The `lmm` program as a user runs it. Every command line in the README's
//! Quick start and Usage sections (its examples included) has a case here
//! that runs it and checks a specific line or value of its output; a
//! command line of the usage synopsis (`lmm proc NAME [--scenario FILE]`)
//! runs in each of its forms. A README line without a case fails the test.
//!
//! And lmm never panics on its stdout: a closed pipe (`lmm proc zoneinfo |
//! head -1`) ends it quietly, a full disk (`> /dev/full`) with an error.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use assert_cmd::cargo::cargo_bin;
use predicates::prelude::*;

/// The repository root: README.md, scenarios/ and tests/ are read from it.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// `lmm` run from the repository root.
fn lmm() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::new(cargo_bin("lmm"));
    c.current_dir(root());
    c
}

/// What a case checks in a successful run's output.
type Check = fn(stdout: &str, stderr: &str);

/// One run of `lmm` for a README command line.
struct Case {
    /// The README line it stands for, normalized by [`readme_lines`].
    readme: &'static str,
    args: Vec<String>,
    /// Environment for the run.
    env: Vec<(&'static str, &'static str)>,
    check: Check,
}

fn case(readme: &'static str, args: &[&str], check: Check) -> Case {
    Case {
        readme,
        args: args.iter().map(|s| s.to_string()).collect(),
        env: Vec::new(),
        check,
    }
}

/// `lmm bench` measures for seconds; the tests run it in its smoke mode
/// (`LMM_BENCH_QUICK`: one round of 1/1000 of the calls), which runs every
/// line of every benchmark and prints the same table.
fn bench(readme: &'static str, args: &[&str], check: Check) -> Case {
    let mut c = case(readme, args, check);
    c.env.push(("LMM_BENCH_QUICK", "1"));
    c
}

/// The line of `out` that starts with `prefix`.
fn line<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{out}"))
}

/// The value after `key` in the block of a zoneinfo that starts at `zone`.
fn zoneinfo_value(out: &str, zone: &str, key: &str) -> u64 {
    let block = out
        .split("Node ")
        .find(|b| b.starts_with(&format!("0, zone {zone:>8}\n")))
        .unwrap_or_else(|| panic!("no zone {zone}"));
    block
        .lines()
        .find_map(|l| l.trim().strip_prefix(key))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in zone {zone}"))
}

/// Where the `--sweep --svg` case draws.
static SVG: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// A vmalloc area left in place (an x86-64 kernel address is negative as
/// a Rhai integer; errors are -1 to -4095).
const VMALLOC_SCENARIO: &str =
    "let v = vmalloc(2 * 4096);\nexpect(v < -4095, \"a kernel address\");\n";

fn cases() -> Vec<Case> {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-vmalloc.rhai");
    std::fs::write(&tmp, VMALLOC_SCENARIO).unwrap();
    let tmp: &'static str = Box::leak(tmp.display().to_string().into_boxed_str());
    let svg = SVG.get_or_init(|| {
        Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("cli-mrc.svg")
            .display()
            .to_string()
    });
    let mut v = vec![
        // Quick start.
        case("lmm run", &["run"], |o, _| {
            assert!(o.starts_with("== after boot ==\n"), "{o}");
            assert!(
                line(o, "-- <default scenario>: ").starts_with(
                    "-- <default scenario>: ok on x86_64 with 64 MiB RAM, 2 CPUs, 1 node(s): 30 checks passed"
                ),
                "{o}"
            );
            // Reclaim and swap on the small machine the scenario boots last.
            assert!(line(o, "kswapd woke ").contains(" times and freed "), "{o}");
            assert!(
                line(o, "pages read back from swap: ").ends_with("; mismatches: 0"),
                "{o}"
            );
            line(
                o,
                "/swapfile                               file\t\t65532\t\t",
            );
            // Demand paging and copy-on-write at work.
            line(o, "== demand paging: 9 minor faults, RSS +8 pages ==");
            line(
                o,
                "== copy-on-write: the child's write copied 1 page; the rest stay shared ==",
            );
        }),
        case("lmm tour buddy", &["tour", "buddy"], |o, _| {
            assert!(o.starts_with("# buddy: a buddy split and merge\n"), "{o}");
            assert_eq!(o, std::fs::read_to_string(root().join("docs/tour.md")).unwrap().split("$ lmm tour buddy\n").nth(1).unwrap().split("\n```").next().unwrap().to_string() + "\n", "docs/tour.md's buddy run is out of date");
        }),
        // The live view needs a terminal, which the tests have not: the
        // case draws its first frame as text (--batch 1), the same drawing.
        case("lmm top", &["top", "--batch", "1"], |o, _| {
            line(o, "lmm top - default scenario - frame 1 at operation 2000");
            // docs/top.md shows this frame.
            let doc = std::fs::read_to_string(root().join("docs/top.md")).unwrap();
            assert!(doc.contains(o), "docs/top.md's --batch 1 frame is out of date");
        }),
        // arm64: 4-level ARMv8-A tables, TTBR0/TTBR1, its layout.
        case("lmm run --arch arm64", &["run", "--arch", "arm64"], |o, _| {
            assert!(
                line(o, "-- <default scenario>: ").starts_with(
                    "-- <default scenario>: ok on arm64 with 64 MiB RAM, 2 CPUs, 1 node(s): 30 checks passed"
                ),
                "{o}"
            );
            assert!(
                line(o, "pages read back from swap: ").ends_with("; mismatches: 0"),
                "{o}"
            );
            // The first anonymous mapping, top-down from arm64's mmap_base
            // (2^48 - 128 MiB); no [vsyscall] gate.
            line(o, "fffff7fc0000-fffff8000000 rw-p 00000000 00:00 0");
            assert!(!o.contains("[vsyscall]"), "{o}");
        }),
        // Usage.
        case(
            "lmm run [SCENARIO] [--trace FILE] [--perfetto FILE] [--events LIST]",
            &[
                "run",
                "scenarios/watermarks.rhai",
                "--trace",
                concat!(env!("CARGO_TARGET_TMPDIR"), "/cli-run.trace"),
                "--perfetto",
                concat!(env!("CARGO_TARGET_TMPDIR"), "/cli-run.json"),
                "--events",
                "kmem:mm_page_*,vmscan:*",
            ],
            |o, _| {
                assert!(line(o, "-- scenarios/watermarks.rhai: ").contains(": ok on "));
                let t = std::fs::read_to_string(concat!(
                    env!("CARGO_TARGET_TMPDIR"),
                    "/cli-run.trace"
                ))
                .unwrap();
                let mut lines = t.lines();
                assert_eq!(lines.next(), Some("cpus=2"));
                let mut allocs = 0;
                for l in lines {
                    // comm-pid [cpu] secs.usecs: event: fields
                    let (head, rest) = l.split_once("]").unwrap();
                    assert!(head.trim_start().contains('-') && head.contains(" ["), "{l}");
                    let (event, fields) = rest.split_once(": ").unwrap().1.split_once(':').unwrap();
                    assert!(
                        event.starts_with("mm_page_") || event.starts_with("mm_vmscan_"),
                        "{l}"
                    );
                    if event == "mm_page_alloc" {
                        allocs += 1;
                        let f: Vec<&str> = fields.split_whitespace().collect();
                        assert!(f[0].starts_with("page=") && f[1].starts_with("pfn=0x"), "{l}");
                        assert!(f[2].starts_with("order=") && f[3].starts_with("migratetype="));
                        assert!(f[4].starts_with("gfp_flags="), "{l}");
                    }
                }
                assert!(allocs > 0, "{t}");
                let j: serde_json::Value = serde_json::from_str(
                    &std::fs::read_to_string(concat!(
                        env!("CARGO_TARGET_TMPDIR"),
                        "/cli-run.json"
                    ))
                    .unwrap(),
                )
                .unwrap();
                let ev = j["traceEvents"].as_array().unwrap();
                let instants = ev.iter().filter(|e| e["ph"] == "i").count();
                assert_eq!(instants, t.lines().count() - 1);
                assert!(ev
                    .iter()
                    .any(|e| e["ph"] == "C" && e["name"] == "free blocks node0 Normal"));
            },
        ),
        case("lmm run [SCENARIO]", &["run"], |o, _| {
            assert!(line(o, "-- <default scenario>: ").contains(": ok on x86_64"));
        }),
        case(
            "lmm run [SCENARIO]",
            &["run", "scenarios/process.rhai"],
            |o, _| {
                let l = line(o, "-- scenarios/process.rhai: ");
                assert!(
                    l.contains(
                        ": ok on x86_64 with 4096 MiB RAM, 2 CPUs, 1 node(s): 25 checks passed"
                    ),
                    "{l}"
                );
            },
        ),
        case(
            "lmm proc PID/maps --scenario FILE",
            &["proc", "1/maps", "--scenario", "scenarios/process.rhai"],
            |o, _| {
                assert!(o.lines().any(|l| l.ends_with("[stack]")), "{o}");
                assert!(
                    o.lines()
                        .any(|l| l.ends_with("/usr/bin/true") || l.ends_with("/bin/true")),
                    "{o}"
                );
            },
        ),
        case(
            "lmm proc PID/maps --scenario FILE",
            &["proc", "1/smaps", "--scenario", "scenarios/process.rhai"],
            |o, _| {
                assert!(line(o, "Rss:").ends_with(" kB"));
                assert!(line(o, "VmFlags:").len() > 9);
            },
        ),
        case(
            "lmm proc PID/maps --scenario FILE",
            &[
                "proc",
                "1/smaps_rollup",
                "--scenario",
                "scenarios/process.rhai",
            ],
            |o, _| {
                assert!(o.lines().next().unwrap().ends_with("[rollup]"), "{o}");
                assert!(line(o, "Rss:").ends_with(" kB"));
            },
        ),
        case(
            "lmm proc PID/maps --scenario FILE",
            &["proc", "1/status", "--scenario", "scenarios/process.rhai"],
            |o, _| {
                assert_eq!(line(o, "Name:"), "Name:\ttrue");
                assert!(line(o, "VmRSS:").ends_with(" kB"));
            },
        ),
        case(
            "lmm proc PID/maps --scenario FILE",
            &["proc", "1/pagemap", "--scenario", "scenarios/process.rhai"],
            |o, _| {
                // ADDR ENTRY: every present page has bit 63 set.
                let first = o.lines().next().expect("a present page");
                let (_, e) = first.split_once(' ').unwrap();
                assert!(u64::from_str_radix(e, 16).unwrap() >> 63 == 1, "{first}");
            },
        ),
        case("lmm dmesg [--scenario FILE]", &["dmesg"], |o, _| {
            assert!(line(o, "[    0.000000] Memory: ").contains("K available ("));
        }),
        case(
            "lmm dmesg [--scenario FILE]",
            &["dmesg", "--scenario", "scenarios/vmalloc_kmap.rhai"],
            |o, _| {
                assert!(o.contains("ioremap on RAM at 0x0000000000100000"), "{o}");
            },
        ),
        case(
            "lmm exec PROGRAM [ARGS...] [--stack]",
            &["exec", "/bin/true"],
            |o, _| {
                assert!(
                    o.lines().next().unwrap().starts_with("555555554000-"),
                    "{o}"
                );
                assert!(o.lines().any(|l| l.ends_with("[vdso]")), "{o}");
                assert!(o.lines().any(|l| l.ends_with("[stack]")), "{o}");
            },
        ),
        case(
            "lmm exec PROGRAM [ARGS...] [--stack]",
            &["exec", "/bin/echo", "hi", "--stack"],
            |o, _| {
                assert!(line(o, "initial stack: rsp=0x7fff").ends_with(" bytes)"));
                // AT_PAGESZ (6) is 4096.
                assert_eq!(line(o, "auxv  6 "), "auxv  6 0x1000");
            },
        ),
        case(
            "lmm native [--maps-at-exit FILE] [--smaps-at-exit FILE] [--status-at-exit FILE] [--env K=V] [--clear-env] [--warm-cache] PROGRAM [ARGS...]",
            &[
                "native",
                "--maps-at-exit",
                concat!(env!("CARGO_TARGET_TMPDIR"), "/readme-touch.maps"),
                "--clear-env",
                "--env",
                "LMM=1",
                "--warm-cache",
                concat!(env!("CARGO_TARGET_TMPDIR"), "/readme-touch"),
                "8",
            ],
            |o, e| {
                // readme_native builds the program from tests/native/touch.c.
                assert_eq!(o, "pages=2048 sum=261120\n");
                let minor: u64 = line(e, "minor faults: ")
                    .trim_start_matches("minor faults: ")
                    .parse()
                    .unwrap();
                assert!(minor > 2048, "{e}");
                let maps =
                    std::fs::read_to_string(concat!(env!("CARGO_TARGET_TMPDIR"), "/readme-touch.maps"))
                        .unwrap();
                assert!(maps.lines().any(|l| l.ends_with("[heap]")), "{maps}");
            },
        ),
        case(
            "lmm native [--trace FILE] [--perfetto FILE] [--events LIST] PROGRAM [ARGS...]",
            &[
                "native",
                "--trace",
                concat!(env!("CARGO_TARGET_TMPDIR"), "/readme-native.trace"),
                "--events",
                "exceptions:page_fault_user",
                concat!(env!("CARGO_TARGET_TMPDIR"), "/readme-touch"),
                "1",
            ],
            |o, e| {
                assert_eq!(o, "pages=256 sum=32640\n");
                // A page_fault_user line per fault the program took itself;
                // the summary's counts also hold the faults lmm took on a
                // system call's buffers before passing it to the host (a
                // kernel-mode fault in Linux: page_fault_kernel), at most
                // a few per call.
                let count = |k: &str| -> usize {
                    line(e, k)[k.len()..].parse().unwrap()
                };
                let faults = count("minor faults: ") + count("major faults: ");
                let trace = std::fs::read_to_string(concat!(
                    env!("CARGO_TARGET_TMPDIR"),
                    "/readme-native.trace"
                ))
                .unwrap();
                let lines = trace.lines().filter(|l| l.contains(" page_fault_user: ")).count();
                let calls: usize = line(e, "system calls: host ")["system calls: host ".len()..]
                    .split(',')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(lines > 256 && lines <= faults, "{lines} lines\n{e}");
                assert!(faults - lines <= 2 * calls, "{lines} lines\n{e}");
            },
        ),
        case(
            "lmm replay strace FILE [--check] [--maps PID] [--smaps PID] [--stat PID]",
            &[
                "replay",
                "strace",
                "tests/fixtures/traces/mremap_brk-static.strace",
                "--check",
                "--stat",
                "6443",
                "--path-map",
                "/work/wt-record=.",
            ],
            |o, e| {
                // /proc/PID/stat at exit_group: 52 fields, the comm in parens.
                let f: Vec<&str> = o.trim_end().split(' ').collect();
                assert_eq!(f.len(), 52, "{o}");
                assert_eq!(f[1], "(mremap_brk-stat)", "{o}");
                assert!(e.contains("40 results checked"), "{e}");
            },
        ),
        case(
            "lmm replay strace FILE [--check] [--maps PID] [--smaps PID] [--stat PID]",
            &[
                "replay",
                "strace",
                "tests/fixtures/traces/mremap_brk-static.strace",
                "--smaps",
                "6443",
                "--path-map",
                "/work/wt-record=.",
                "--touch",
                "0x7ffffffde000,4096:w",
                "--warm-cache",
            ],
            |o, e| {
                assert!(o.contains("[stack]"), "{o}");
                assert!(
                    e.contains("touch: line 41 pid 6443 write 0x7ffffffde000..0x7ffffffdf000: 1 minor, 0 major fault(s)"),
                    "{e}"
                );
            },
        ),
        case(
            "lmm replay lackey FILE [--trace FILE] [--perfetto FILE] [--events LIST]",
            &[
                "replay",
                "lackey",
                "tests/fixtures/lackey/touch.lk",
                "--trace",
                concat!(env!("CARGO_TARGET_TMPDIR"), "/cli-replay.trace"),
                "--events",
                "exceptions:page_fault_user",
            ],
            |o, _| {
                assert_eq!(line(o, "faults: "), "faults: 20 (minor 20, major 0)");
                let t = std::fs::read_to_string(concat!(
                    env!("CARGO_TARGET_TMPDIR"),
                    "/cli-replay.trace"
                ))
                .unwrap();
                // One page_fault_user per fault the replay counted.
                let faults: Vec<&str> = t.lines().skip(1).collect();
                assert_eq!(faults.len(), 20, "{t}");
                for l in &faults {
                    assert!(l.starts_with("          lackey-1     [000] "), "{l}");
                    assert!(l.contains(": page_fault_user:      address=0x"), "{l}");
                }
                // The first: the fetch of the first instruction (user |
                // instruction fetch, page not present), ip = address.
                assert!(
                    faults[0].ends_with("address=0x401000 ip=0x401000 error_code=0x14"),
                    "{}",
                    faults[0]
                );
            },
        ),
        case(
            "lmm replay lackey FILE [--keep-going] [--limit N]",
            &["replay", "lackey", "tests/fixtures/lackey/touch.lk"],
            |o, _| {
                assert_eq!(
                    line(o, "accesses: "),
                    "accesses: 591 (I 478, L 52, S 60, M 1)"
                );
                assert_eq!(line(o, "faults: "), "faults: 20 (minor 20, major 0)");
                assert_eq!(line(o, "RSS: "), "RSS: 18 pages (72 kB)");
            },
        ),
        case(
            "lmm replay lackey FILE [--keep-going] [--limit N]",
            &[
                "replay",
                "lackey",
                "tests/fixtures/lackey/true.lk.gz",
                "--limit",
                "1000",
            ],
            |o, _| {
                assert!(line(o, "accesses: ").starts_with("accesses: 1000 "), "{o}");
            },
        ),
        case(
            "lmm replay lackey FILE --frames N [--policy P]",
            &[
                "replay",
                "lackey",
                "tests/fixtures/lackey/touch.lk",
                "--frames",
                "64",
                "--policy",
                "opt",
            ],
            |o, _| {
                // 591 accesses, two of which straddle two pages: 593
                // references to the 20 pages the replay touches. With more
                // frames than pages, only cold misses.
                assert_eq!(
                    line(o, "references: "),
                    "references: 593 (20 distinct pages)"
                );
                assert_eq!(line(o, "policy: "), "policy: opt, frames: 64");
                assert_eq!(line(o, "faults: "), "faults: 20");
                assert_eq!(line(o, "swap-ins: "), "swap-ins: 0");
                assert_eq!(line(o, "swap-outs: "), "swap-outs: 0");
            },
        ),
        case(
            "lmm replay lackey FILE --frames N [--policy P]",
            &[
                "replay",
                "lackey",
                "tests/fixtures/lackey/touch.lk",
                "--frames",
                "8",
            ],
            |o, _| {
                // The default policy is linux. Every fault past the 20 cold
                // ones is a swap-in, every one past the first 8 a swap-out.
                assert_eq!(line(o, "policy: "), "policy: linux, frames: 8");
                let v = |p: &str| -> u64 { line(o, p)[p.len()..].parse().unwrap() };
                let faults = v("faults: ");
                assert!(faults > 20, "{o}");
                assert_eq!(v("swap-ins: "), faults - 20, "{o}");
                assert_eq!(v("swap-outs: "), faults - 8, "{o}");
            },
        ),
        case(
            "lmm replay lackey FILE --sweep N,N,... [--policy P,...] [--svg FILE]",
            &[
                "replay",
                "lackey",
                "tests/fixtures/lackey/true.lk.gz",
                "--sweep",
                "64,4,16",
                "--svg",
                svg,
            ],
            |o, _| {
                assert_eq!(
                    line(o, "# "),
                    "# POLICY FRAMES FAULTS SWAP-INS SWAP-OUTS MISS-RATIO"
                );
                let rows: Vec<Vec<&str>> = o
                    .lines()
                    .skip_while(|l| !l.starts_with("# "))
                    .skip(1)
                    .map(|l| l.split(' ').collect())
                    .collect();
                // Every policy, frame counts ascending.
                let heads: Vec<String> =
                    rows.iter().map(|r| format!("{} {}", r[0], r[1])).collect();
                let mut want = Vec::new();
                for p in ["fifo", "lru", "clock", "age", "opt", "linux"] {
                    for f in [4, 16, 64] {
                        want.push(format!("{p} {f}"));
                    }
                }
                assert_eq!(heads, want, "{o}");
                // OPT is optimal: no policy faults less at any size.
                let faults = |p: &str, f: &str| -> u64 {
                    rows.iter().find(|r| r[0] == p && r[1] == f).unwrap()[2]
                        .parse()
                        .unwrap()
                };
                for r in &rows {
                    assert!(faults(r[0], r[1]) >= faults("opt", r[1]), "{o}");
                }
                let doc = std::fs::read_to_string(SVG.get().unwrap()).unwrap();
                assert!(doc.starts_with("<svg "), "{doc}");
                assert!(doc.contains("miss-ratio curves: tests/fixtures/lackey/true.lk.gz"));
            },
        ),
        case(
            "lmm replay lackey FILE --sweep N,N,... [--policy P,...] [--svg FILE]",
            &[
                "replay",
                "lackey",
                "tests/fixtures/lackey/touch.lk",
                "--sweep",
                "2,64",
                "--policy",
                "lru,fifo",
            ],
            |o, _| {
                assert_eq!(line(o, "lru 64 "), "lru 64 20 0 0 0.033727");
                assert_eq!(line(o, "fifo 64 "), "fifo 64 20 0 0 0.033727");
                assert!(line(o, "lru 2 ").len() > 8, "{o}");
                assert_eq!(o.lines().filter(|l| l.starts_with("clock ")).count(), 0);
            },
        ),
        case(
            "lmm replay strace FILE [--check] [--maps PID] [--smaps PID] [--stat PID]",
            &[
                "replay",
                "strace",
                "tests/fixtures/traces/mremap_brk-static.strace",
                "--check",
                "--maps",
                "6443",
                "--path-map",
                "/work/wt-record=.",
            ],
            |o, e| {
                // Only that process's maps, as at its exit_group.
                let first = o.lines().next().unwrap();
                assert!(
                    first.starts_with("00400000-00401000 r--p 00000000 ")
                        && first.ends_with("/tests/fixtures/bin/mremap_brk-static"),
                    "{o}"
                );
                assert!(e.contains("40 calls replayed, 40 results checked"), "{e}");
            },
        ),
        case(
            "lmm replay strace FILE [--check] [--maps PID] [--smaps PID] [--stat PID]",
            &[
                "replay",
                "strace",
                "tests/fixtures/traces/mremap_brk-static.strace",
                "--path-map",
                "/work/wt-record=.",
            ],
            |o, e| {
                assert_eq!(
                    o.lines().next(),
                    Some("=== pid 6443: maps at exit_group, line 41 ===")
                );
                assert!(e.contains("40 calls replayed"), "{e}");
            },
        ),
        bench(
            "lmm bench [page_alloc|slab|vm|fault|fork|reclaim|boot] [--size SIZE]",
            &["bench"],
            |o, _| {
                for head in [
                    "page_alloc: ",
                    "slab: ",
                    "vm: ",
                    "translate: ",
                    "fault: ",
                    "fork: ",
                    "reclaim: ",
                    "lackey replay (true.lk.gz, ",
                    "boot: ",
                ] {
                    line(o, head);
                }
            },
        ),
        bench(
            "lmm bench native",
            &["bench", "native"],
            |o, _| {
                line(o, "native: real programs under lmm native --warm-cache");
                // The floor: three costs, each a positive number of us.
                let f = line(o, "floor of the technique on this host");
                let costs: Vec<f64> = f
                    .split(" us")
                    .filter_map(|p| p.rsplit(' ').next()?.parse().ok())
                    .collect();
                assert!(costs.len() == 3 && costs.iter().all(|&c| c > 0.0), "{f}");
                // The systrap design's: two costs, three with a second CPU.
                let s = line(o, "floor of gVisor's systrap design");
                let sys: Vec<f64> = s
                    .split(" us")
                    .filter_map(|p| p.rsplit(' ').next()?.parse().ok())
                    .collect();
                assert!((2..=3).contains(&sys.len()) && sys.iter().all(|&c| c >= 0.0), "{s}");
                assert!(sys[0] > 0.0 && sys[1] > 0.0, "{s}");
                let systrap_stop = sys[0] + sys[1..].iter().copied().fold(f64::MAX, f64::min);
                let head = line(o, "program ");
                for col in [
                    "host ms", "lmm ms", "ratio", "stops", "mirrors", "in place", "fault ms",
                    "floor ms", "best", "systrap",
                ] {
                    assert!(head.contains(col), "{head}");
                }
                // /bin/true: 12 figures, the ratios with their x; lmm took
                // faults, ptrace stops and mirrored pages, and ran host
                // calls in place (fewer than it made stops); the floor is
                // the stops and mirrors at the measured costs, and the
                // systrap ratio prices each stop at a signal and a round
                // trip instead.
                let t: Vec<&str> = line(o, "true ").split_whitespace().collect();
                assert_eq!(t.len(), 13, "{o}");
                assert!(t[3].ends_with('x') && t[11].ends_with('x') && t[12].ends_with('x'), "{o}");
                let n = |s: &str| s.trim_end_matches('x').parse::<f64>().unwrap_or(-1.0);
                assert!(t[1..].iter().all(|s| n(s) >= 0.0), "{o}");
                assert!(n(t[4]) > 10.0 && n(t[5]) > n(t[4]) && n(t[7]) > 0.0, "{o}");
                assert!(n(t[8]) > 0.0 && n(t[8]) < n(t[5]), "{o}");
                let floor_ms = (n(t[5]) * costs[0] + n(t[7]) * costs[1]) / 1e3;
                assert!((n(t[10]) - floor_ms).abs() <= 0.01 + floor_ms * 0.01, "{o}");
                assert!(n(t[11]) > 1.0, "{o}");
                let systrap_ms = (n(t[5]) * systrap_stop + n(t[7]) * costs[1]) / 1e3;
                let ratio = (n(t[1]) + systrap_ms) / n(t[1]);
                assert!((n(t[12]) - ratio).abs() <= 0.05 + ratio * 0.01, "{o}");
                line(o, "(ratio = lmm time / host time");
            },
        ),
        bench(
            "lmm bench [page_alloc|slab|vm|fault|fork|reclaim|boot] [--size SIZE]",
            &["bench", "fault", "--size", "8M"],
            |o, _| {
                assert!(
                    line(o, "faults counted: ").starts_with("faults counted: lmm 2048 per round"),
                    "{o}"
                );
            },
        ),
        bench(
            "lmm bench [page_alloc|slab|vm|fault|fork|reclaim|boot] [--size SIZE]",
            &["bench", "fork", "--size", "8M"],
            |o, _| {
                line(o, "fork, 8 MiB resident ");
            },
        ),
        bench(
            "lmm bench [page_alloc|slab|vm|fault|fork|reclaim|boot] [--size SIZE]",
            &["bench", "slab"],
            |o, _| {
                assert!(line(o, "lmm kmalloc(64)+kfree ").len() > 30);
                line(o, "ratios (other / lmm");
            },
        ),
        bench(
            "lmm bench [page_alloc|slab|vm|fault|fork|reclaim|boot] [--size SIZE]",
            &["bench", "vm"],
            |o, _| {
                line(o, "4 KiB MAP_POPULATE ");
                line(o, "(ratio = host / lmm");
                line(o, "TLB hit ");
                line(o, "full walk vs host TLB hit ");
            },
        ),
        bench(
            "lmm bench [page_alloc|slab|vm|fault|fork|reclaim|boot] [--size SIZE]",
            &["bench", "reclaim"],
            |o, _| {
                let l = line(o, "reclaim: ");
                assert!(
                    l.contains(" pages reclaimed/s, ") && l.contains(" swap round trips/s "),
                    "{l}"
                );
                line(
                    o,
                    "lackey replay (true.lk.gz, 148555 page references, 139 pages): lmm ",
                );
            },
        ),
        case(
            "lmm proc swaps --ram 256M --swap 1G",
            &["proc", "swaps", "--ram", "256M", "--swap", "1G"],
            |o, _| {
                assert_eq!(
                    o,
                    "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/swapfile                               file\t\t1048572\t\t0\t\t-2\n"
                );
            },
        ),
        bench(
            "lmm bench [page_alloc|slab|vm|fault|fork|reclaim|boot] [--size SIZE]",
            &["bench", "boot"],
            |o, _| {
                let l = line(o, "boot: x86_64 with 1 TiB RAM in ");
                assert!(l.ends_with(" pages managed"), "{l}");
            },
        ),
        // The soak with every kind of op; running totals every 100 ops.
        case(
            "lmm soak [--ops N] [--seed S] [--max-procs N] [--check-every K] [--without OP,...] [--verbose] [--progress N]",
            &["soak", "--ops", "300", "--seed", "1", "--progress", "100"],
            |o, e| {
                let progress: Vec<&str> = e.lines().filter(|l| l.starts_with("soak: op ")).collect();
                assert_eq!(progress.len(), 3, "{e}");
                assert!(progress[2].starts_with("soak: op 300 of 300: 0 mismatches, "), "{e}");
                let keys: Vec<&str> = o.lines().map(|l| l.split(':').next().unwrap()).collect();
                assert_eq!(
                    keys,
                    ["ops", "faults", "swap-ins", "swap-outs", "oom kills", "mismatches"],
                    "{o}"
                );
                assert_eq!(line(o, "ops: "), "ops: 300");
                assert_eq!(line(o, "mismatches: "), "mismatches: 0");
            },
        ),
        case(
            "lmm soak [--ops N] [--seed S] [--max-procs N] [--check-every K] [--without OP,...] [--verbose] [--progress N]",
            &[
                "soak", "--ops", "300", "--seed", "1", "--ram", "16M", "--swap", "64M",
                "--max-procs", "3", "--check-every", "100", "--without", "madv-free,exit",
                "--verbose",
            ],
            |o, _| {
                // A smaller machine than the soak's default: pages go to swap.
                let outs: u64 = line(o, "swap-outs: ")["swap-outs: ".len()..].parse().unwrap();
                assert!(outs > 0, "{o}");
                assert_eq!(line(o, "mismatches: "), "mismatches: 0");
                assert!(line(o, "exit ").ends_with(" 0        0"), "{o}");
                assert!(!line(o, "write ").ends_with(" 0        0"), "{o}");
            },
        ),
        // The tour: the list, then every topic, each step closed by its
        // two lines (what happened, and why).
        case("lmm tour [TOPIC|all]", &["tour"], |o, _| {
            let names = tour_names(o);
            assert!(!names.is_empty(), "{o}");
            for (i, l) in o.lines().enumerate() {
                assert!(l.trim_start().starts_with(&format!("{}. ", i + 1)), "{l}");
            }
        }),
        case("lmm tour [TOPIC|all]", &["tour", "all"], |o, _| {
            let topics: Vec<&str> = o
                .lines()
                .filter_map(|l| l.strip_prefix("# "))
                .map(|l| l.split(':').next().unwrap())
                .collect();
            let listed = lmm().arg("tour").output().unwrap().stdout;
            assert_eq!(topics, tour_names(&String::from_utf8_lossy(&listed)), "{o}");
            let steps = o.lines().filter(|l| l.starts_with("── step ")).count();
            let whats = o.lines().filter(|l| l.starts_with("   what: ")).count();
            let whys = o.lines().filter(|l| l.starts_with("   why:  ")).count();
            assert_eq!((whats, whys), (steps, steps), "{o}");
        }),
        // Examples.
        case(
            "lmm proc buddyinfo --ram 4G",
            &["proc", "buddyinfo", "--ram", "4G"],
            |o, _| {
                // DMA, DMA32, Normal; 11 order columns (MAX_PAGE_ORDER 10).
                let zones: Vec<&str> = o
                    .lines()
                    .map(|l| l.split_whitespace().nth(3).unwrap())
                    .collect();
                assert_eq!(zones, ["DMA", "DMA32", "Normal"]);
                for l in o.lines() {
                    assert_eq!(l.split_whitespace().skip(4).count(), 11, "{l}");
                }
            },
        ),
        case(
            "lmm proc zoneinfo --arch x86 --ram 2G",
            &["proc", "zoneinfo", "--arch", "x86", "--ram", "2G"],
            |o, _| {
                // HighMem starts at 896 MiB and spans the rest of the 2 GiB.
                assert_eq!(
                    zoneinfo_value(o, "HighMem", "start_pfn:"),
                    (896 << 20) >> 12
                );
                assert_eq!(zoneinfo_value(o, "HighMem", "spanned"), (1152 << 20) >> 12);
            },
        ),
        case("lmm dmesg --ram 24G", &["dmesg", "--ram", "24G"], |o, _| {
            assert_eq!(
                line(o, "[    0.000000]   Normal   "),
                "[    0.000000]   Normal   [mem 0x0000000100000000-0x000000063fffffff]"
            );
            assert!(o.contains("Memory: "), "{o}");
        }),
        case(
            "lmm run scenarios/watermarks.rhai",
            &["run", "scenarios/watermarks.rhai"],
            |o, _| {
                assert!(line(o, "GFP_KERNEL left ").contains(" pages free; GFP_ATOMIC took "));
                let l = line(o, "-- scenarios/watermarks.rhai: ");
                assert!(
                    l.contains(": ok on x86_64 with 1024 MiB RAM, 1 CPUs"),
                    "{l}"
                );
            },
        ),
        case("lmm exec /bin/ls", &["exec", "/bin/ls"], |o, _| {
            // ELF_ET_DYN_BASE: a PIE's first mapping at 2/3 of TASK_SIZE.
            let first = o.lines().next().unwrap();
            assert!(
                first.starts_with("555555554000-") && first.ends_with("/ls"),
                "{first}"
            );
            assert!(o.lines().any(|l| l.contains("ld-linux-x86-64.so.2")), "{o}");
        }),
        case(
            "lmm proc slabinfo --scenario scenarios/slab.rhai --slab slab",
            &[
                "proc",
                "slabinfo",
                "--scenario",
                "scenarios/slab.rhai",
                "--slab",
                "slab",
            ],
            |o, _| {
                assert_eq!(o.lines().next(), Some("slabinfo - version: 2.1"));
                // Classic SLAB: tunables, and kmalloc from 32 bytes up.
                assert!(
                    line(o, "kmalloc-32 ").contains(" : tunables  120   60    8 : "),
                    "{o}"
                );
                assert!(!o.lines().any(|l| l.starts_with("kmalloc-8 ")), "{o}");
            },
        ),
        bench("lmm bench page_alloc", &["bench", "page_alloc"], |o, _| {
            line(o, "page_alloc: alloc+free pairs, ns/op");
            for row in [
                "order-0 via per-CPU lists ",
                "order-0 without per-CPU ",
                "order-3 via per-CPU lists ",
                "order-9 via per-CPU lists ",
            ] {
                assert!(line(o, row).ends_with('x'), "{row}");
            }
        }),
    ];
    // `lmm proc NAME [--scenario FILE]`: every NAME the README lists.
    let names: [(&str, Check); 11] = [
        ("buddyinfo", |o, _| {
            assert!(o.starts_with("Node 0, zone      DMA "))
        }),
        ("pagetypeinfo", |o, _| {
            assert_eq!(o.lines().next(), Some("Page block order: 9"))
        }),
        ("zoneinfo", |o, _| {
            assert!(zoneinfo_value(o, "DMA", "start_pfn:") == 1)
        }),
        ("meminfo", |o, _| assert!(o.starts_with("MemTotal:"))),
        ("vmstat", |o, _| assert!(o.starts_with("nr_free_pages "))),
        ("swaps", |o, _| {
            assert_eq!(o, "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n")
        }),
        ("iomem", |o, _| {
            assert!(o.contains("\n00001000-0009fbff : System RAM\n"), "{o}")
        }),
        ("slabinfo", |o, _| {
            assert!(line(o, "kmalloc-8 ").contains(" : tunables    0    0    0 : "))
        }),
        // A fresh 2-CPU x86-64 kernel: both CPUs' IRQ stacks and CPU 1's
        // idle task stack, in that order of creation (init_IRQ, smp_init,
        // CPU 1 coming up), lines shaped as this host's vmallocinfo.
        ("vmallocinfo", |o, _| {
            let tails: Vec<&str> = o.lines().map(|l| l[37..].trim_start()).collect();
            assert_eq!(
                tails,
                [
                    "20480 irq_init_percpu_irqstack+0xca/0x100 vmap",
                    "20480 fork_idle+0x74/0x120 pages=4 vmalloc N0=4",
                    "20480 irq_init_percpu_irqstack+0xca/0x100 vmap"
                ],
                "{o}"
            )
        }),
        ("memblock/memory", |o, _| {
            assert_eq!(
                o.lines().next(),
                Some("   0: 0x0000000000001000..0x000000000009fbff    0 NONE")
            )
        }),
        ("memblock/reserved", |o, _| {
            assert!(o.lines().any(|l| l.ends_with("RSV_KERN")), "{o}")
        }),
    ];
    for (name, check) in names {
        v.push(case(
            "lmm proc NAME [--scenario FILE]",
            &["proc", name],
            check,
        ));
    }
    v.push(case(
        "lmm proc NAME [--scenario FILE]",
        &["proc", "vmallocinfo", "--scenario", tmp],
        |o, _| {
            assert!(o.contains(" 12288 scenario pages=2 vmalloc"), "{o}");
        },
    ));
    v.extend(plot_and_top_cases());
    v
}

/// `path` is a PNG (its signature, then an IHDR chunk) of `w` by `h` pixels.
fn assert_png(path: &str, w: u32, h: u32) {
    let png = std::fs::read(path).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{path}");
    assert_eq!(&png[8..16], b"\0\0\0\x0dIHDR", "{path}");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    assert_eq!((be(&png[16..20]), be(&png[20..24])), (w, h), "{path}");
}

/// Where the `lmm plot` cases draw.
const PLOT_DIR: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/cli-plot");

/// The cases of `lmm plot` and `lmm top`.
fn plot_and_top_cases() -> Vec<Case> {
    std::fs::create_dir_all(PLOT_DIR).unwrap();
    const PLOT: &str =
        "lmm plot [--scenario FILE] -o FILE [--kind memory|faults|fragmentation|all] [--every N] [--png]";
    const TOP: &str = "lmm top [--scenario FILE] [--batch N] [--delay MS] [--every N]";
    const TOP_REPLAY: &str =
        "lmm top [--batch N] [--every N] replay strace|lackey FILE [REPLAY FLAGS]";
    const TOP_NATIVE: &str =
        "lmm top [--batch N] [--every N] native [--env K=V] [--clear-env] [--warm-cache] PROGRAM [ARGS...]";
    vec![
        case(
            PLOT,
            &[
                "plot",
                "-o",
                concat!(env!("CARGO_TARGET_TMPDIR"), "/cli-plot/d.svg"),
                "--kind",
                "all",
            ],
            |o, _| {
                for (kind, series) in [
                    (
                        "memory",
                        &[
                            "free (MemFree)",
                            "anon (Active+Inactive)",
                            "swap used",
                            "high watermark",
                        ][..],
                    ),
                    (
                        "faults",
                        &[
                            "minor faults",
                            "major faults (pgmajfault)",
                            "pages swapped out (pswpout)",
                        ],
                    ),
                    (
                        "fragmentation",
                        &["order 0", "order 10", "unusable free space index, order 3"],
                    ),
                ] {
                    let path = format!("{PLOT_DIR}/d-{kind}.svg");
                    line(o, &format!("{path}: {kind} ("));
                    let doc = std::fs::read_to_string(&path).unwrap();
                    assert!(doc.starts_with("<svg ") && doc.trim_end().ends_with("</svg>"));
                    // The reclaim part of the default scenario, on its 64 MiB machine.
                    assert!(doc.contains("boot() no. 1, MemTotal 5"), "{kind}");
                    for s in series {
                        assert!(doc.contains(s), "{kind}: no {s}");
                    }
                    // The figures of docs/plots/ are these.
                    let committed = std::fs::read_to_string(
                        root().join(format!("docs/plots/default-{kind}.svg")),
                    )
                    .unwrap();
                    assert_eq!(
                        doc, committed,
                        "docs/plots/default-{kind}.svg is out of date"
                    );
                }
                // And the miss-ratio curves of docs/plots.md, as it says they were drawn.
                let mrc = format!("{PLOT_DIR}/mrc-true.svg");
                lmm()
                    .args(["replay", "lackey", "tests/fixtures/lackey/true.lk.gz"])
                    .args(["--sweep", "4,8,12,16,24,32,48,64,96,128", "--svg", &mrc])
                    .assert()
                    .success();
                assert_eq!(
                    std::fs::read_to_string(&mrc).unwrap(),
                    std::fs::read_to_string(root().join("docs/plots/mrc-true.svg")).unwrap(),
                    "docs/plots/mrc-true.svg is out of date"
                );
            },
        ),
        case(
            PLOT,
            &[
                "plot",
                "--scenario",
                "scenarios/watermarks.rhai",
                "-o",
                concat!(env!("CARGO_TARGET_TMPDIR"), "/cli-plot/w.svg"),
                "--kind",
                "fragmentation",
                "--every",
                "500",
            ],
            |o, _| {
                let path = format!("{PLOT_DIR}/w.svg");
                line(o, &format!("{path}: fragmentation ("));
                let doc = std::fs::read_to_string(&path).unwrap();
                assert!(doc.contains("scenarios/watermarks.rhai"), "{doc}");
                assert!(doc.contains("unusable free space index, order 9"));
            },
        ),
        // --png: the same figures as PNG, the extension png by default.
        case(
            PLOT,
            &[
                "plot",
                "--scenario",
                "scenarios/watermarks.rhai",
                "-o",
                concat!(env!("CARGO_TARGET_TMPDIR"), "/cli-plot/wp"),
                "--kind",
                "all",
                "--every",
                "500",
                "--png",
            ],
            |o, _| {
                for (kind, h) in [("memory", 540), ("faults", 800), ("fragmentation", 800)] {
                    let path = format!("{PLOT_DIR}/wp-{kind}.png");
                    line(o, &format!("{path}: {kind} ("));
                    assert_png(&path, 900, h);
                }
            },
        ),
        // -o FILE.png implies --png.
        case(
            PLOT,
            &[
                "plot",
                "--scenario",
                "scenarios/watermarks.rhai",
                "-o",
                concat!(env!("CARGO_TARGET_TMPDIR"), "/cli-plot/wi.png"),
                "--kind",
                "faults",
                "--every",
                "500",
            ],
            |o, _| {
                let path = format!("{PLOT_DIR}/wi.png");
                line(o, &format!("{path}: faults ("));
                assert_png(&path, 900, 800);
            },
        ),
        case(TOP, &["top", "--batch", "3"], |o, _| {
            let frames: Vec<&str> = o.split("--- frame ").skip(1).collect();
            assert_eq!(frames.len(), 3, "{o}");
            // The same samples the sampler takes, one frame each.
            let mut src = workload::sample::ScenarioSource {
                file: "default scenario".into(),
                script: workload::scenario::DEFAULT_SCENARIO.into(),
                config: Default::default(),
                limits: Default::default(),
                every: 2000,
            };
            let got = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
            let g = got.clone();
            workload::sample::Source::run(
                &mut src,
                Box::new(move |s| {
                    g.borrow_mut().push(s);
                    g.borrow().len() < 3
                }),
            )
            .unwrap();
            for (i, (f, s)) in frames.iter().zip(got.borrow().iter()).enumerate() {
                assert!(f.starts_with(&format!("{} ---\n", i + 1)), "{f}");
                line(
                    f,
                    &format!(
                        "lmm top - default scenario - frame {} at operation {}",
                        i + 1,
                        2000 * (i + 1)
                    ),
                );
                let mem = line(f, "MiB Mem: ");
                assert!(
                    mem.starts_with(&format!(
                        "MiB Mem: {} total, {} free, ",
                        s.kb("MemTotal") / 1024,
                        s.kb("MemFree") / 1024
                    )),
                    "{mem}"
                );
                for pane in [
                    "zones: free pages against min/low/high",
                    "reclaim (+: since last frame)",
                    "buddy free lists (free blocks per order)",
                    "processes by RSS",
                    "slab caches by size",
                ] {
                    assert!(f.contains(pane), "no {pane} in {f}");
                }
                for z in &s.zones {
                    assert!(
                        f.contains(&format!(
                            "node{} {:<7} free {:>8}  min {:>6} low {:>6} high {:>6}",
                            z.node, z.name, z.free, z.min, z.low, z.high
                        )),
                        "{f}"
                    );
                    let blocks: Vec<String> = z.blocks.iter().map(|n| n.to_string()).collect();
                    let row = f
                        .lines()
                        .find(|l| {
                            l.starts_with(&format!("│node{} {} ", z.node, z.name))
                                && !l.contains(" free ")
                        })
                        .unwrap();
                    let cells: Vec<&str> =
                        row.trim_matches('│').split_whitespace().skip(2).collect();
                    assert_eq!(cells, blocks, "{row}");
                }
                assert!(
                    f.contains(&format!(
                        "│{:<20} {:<8} ",
                        s.slabs[0].name, s.slabs[0].active_objs
                    )),
                    "{f}"
                );
            }
            // On a 4 GiB machine the default scenario's allocations do not
            // reach any watermark.
            assert!(!o.contains("below"), "{o}");
        }),
        case(
            TOP,
            &[
                "top",
                "--scenario",
                "scenarios/reclaim.rhai",
                "--batch",
                "1000",
                "--every",
                "20000",
            ],
            |o, _| {
                // The run ends before 1000 frames, and says so.
                let frames = o.matches("--- frame ").count();
                assert!(frames > 3 && frames < 1000, "{frames}");
                line(
                    o,
                    &format!("--- end of the run after {frames} frame(s) ---"),
                );
                // The hog is in the process pane with pages on swap at some point.
                assert!(o.lines().any(|l| l.starts_with("│1      ")), "{o}");
                assert!(o.contains("pswpout"), "{o}");
            },
        ),
        case(
            TOP_REPLAY,
            &[
                "top",
                "--batch",
                "100",
                "--every",
                "5",
                "replay",
                "strace",
                "tests/fixtures/traces/mremap_brk-static.strace",
                "--path-map",
                "/work/wt-record=.",
                "--touch",
                "20:6443:0x7ffffffde000,4096:w",
            ],
            |o, _| {
                // The same replay in this process, /proc read directly
                // after every 5th call and at the end.
                let args = workload::replay::CliArgs {
                    file: root().join("tests/fixtures/traces/mremap_brk-static.strace"),
                    path_map: vec![format!("/work/wt-record={}", root().display())],
                    cwd: Some(root()),
                    touch: vec!["20:6443:0x7ffffffde000,4096:w".into()],
                    ..Default::default()
                };
                let (lines, opts) = workload::replay::prepare(&args).unwrap();
                let mut t = workload::replay::MachineTarget::boot(Default::default()).unwrap();
                let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
                let (s, n) = (seen.clone(), std::rc::Rc::new(std::cell::Cell::new(0u64)));
                t.observer = Some(Box::new(move |m| {
                    n.set(n.get() + 1);
                    if n.get() % 5 == 0 {
                        s.borrow_mut().push((n.get(), proc_numbers(m)));
                    }
                    true
                }));
                workload::replay::replay(&lines, &mut t, &opts).unwrap();
                t.observer = None;
                let calls = seen.borrow().last().map_or(0, |l| l.0);
                let frames: Vec<&str> = o.split("--- frame ").skip(1).collect();
                assert_eq!(frames.len(), seen.borrow().len() + 1, "{o}");
                for (f, (call, want)) in frames.iter().zip(seen.borrow().iter()) {
                    assert!(f.contains(&format!(" at system call {call}\n")), "{f}");
                    check_frame(f, want);
                }
                // The last frame: the end of the replay, past the last 5th call.
                let last = frames.last().unwrap();
                check_frame(last, &proc_numbers(&t.machine));
                assert!(
                    !last.contains(&format!(" at system call {calls}\n")),
                    "{last}"
                );
                assert!(
                    o.ends_with("--- end of the run after 9 frame(s) ---\n"),
                    "{o}"
                );
                // The touch after line 20 made the process's RSS grow;
                // at the end it has exited.
                let rss = |f: &str| -> Option<u64> {
                    let row = f.lines().find(|l| l.starts_with("│1 "))?;
                    row.split_whitespace().nth(2)?.parse().ok()
                };
                let most = frames.iter().filter_map(|f| rss(f)).max().unwrap();
                assert!(most > rss(frames[0]).unwrap(), "{o}");
                assert_eq!(rss(last), None, "{last}");
            },
        ),
        case(
            TOP_REPLAY,
            &[
                "top",
                "--batch",
                "4",
                "--every",
                "20000",
                "replay",
                "lackey",
                "tests/fixtures/lackey/true.lk.gz",
            ],
            |o, _| {
                let mut t = workload::lackey::MachineLackey::boot(Default::default()).unwrap();
                let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
                let (s, n) = (seen.clone(), std::rc::Rc::new(std::cell::Cell::new(0u64)));
                t.observer = Some(Box::new(move |m| {
                    n.set(n.get() + 1);
                    if n.get() % 20000 == 0 {
                        s.borrow_mut().push((n.get(), proc_numbers(m)));
                    }
                    s.borrow().len() < 4
                }));
                let input =
                    workload::lackey::open(&root().join("tests/fixtures/lackey/true.lk.gz"))
                        .unwrap();
                // The observer stops the replay after its 4th sample.
                assert!(workload::lackey::replay(input, "t", &mut t, &Default::default()).is_err());
                let frames: Vec<&str> = o.split("--- frame ").skip(1).collect();
                assert_eq!(frames.len(), 4, "{o}");
                for (f, (n, want)) in frames.iter().zip(seen.borrow().iter()) {
                    assert!(f.contains(&format!(" at access {n}\n")), "{f}");
                    check_frame(f, want);
                }
            },
        ),
        case(
            TOP_NATIVE,
            &[
                "top",
                "--batch",
                "1000",
                "--every",
                "200",
                "native",
                "--clear-env",
                concat!(env!("CARGO_TARGET_TMPDIR"), "/readme-top-touch"),
                "8",
            ],
            |o, e| {
                // The program's stdout is its own: no frame in it.
                assert_eq!(o, "pages=2048 sum=261120\n");
                let frames: Vec<&str> = e.split("--- frame ").skip(1).collect();
                assert!(frames.len() > 5, "{e}");
                let at = |f: &str| -> u64 {
                    let l = line(f.split_once('\n').unwrap().1, "lmm top - native ");
                    l.split(" at event ")
                        .nth(1)
                        .unwrap()
                        .split_whitespace()
                        .next()
                        .unwrap()
                        .parse()
                        .unwrap()
                };
                // A frame every 200 events, then one at the exit.
                for (i, f) in frames[..frames.len() - 1].iter().enumerate() {
                    assert_eq!(at(f), 200 * (i as u64 + 1), "{f}");
                }
                let last = frames.last().unwrap();
                assert!(at(last) > at(frames[frames.len() - 2]), "{last}");
                // The exit frame shows the process's faults as the summary
                // counts them (both read at exit, before the teardown).
                let row = last.lines().find(|l| l.starts_with("│1 ")).unwrap();
                let cols: Vec<&str> = row.trim_start_matches('│').split_whitespace().collect();
                let count = |k: &str| -> &str { &line(e, k)[k.len()..] };
                assert_eq!(
                    (cols[4], cols[5]),
                    (count("minor faults: "), count("major faults: ")),
                    "{row}"
                );
                // The 8 MiB the program wrote were resident at some frame.
                let max_rss = frames
                    .iter()
                    .filter_map(|f| f.lines().find(|l| l.starts_with("│1 ")))
                    .map(|r| r.split_whitespace().nth(2).unwrap().parse::<u64>().unwrap())
                    .max()
                    .unwrap();
                assert!(max_rss >= 8 * 1024, "{max_rss}");
                line(e, "lmm native: ");
            },
        ),
    ]
}

/// What a `lmm top` frame shows of a machine, read here from its /proc
/// files: MemFree in MiB, pages free per zone, pgfault, and per process
/// (pid order) its pid, VmRSS and minflt.
struct ProcNumbers {
    free_mib: u64,
    zones: Vec<(String, u64)>,
    pgfault: u64,
    procs: Vec<(u32, u64, u64)>,
}

fn proc_numbers(m: &machine::Machine) -> ProcNumbers {
    let meminfo = m.proc("meminfo").unwrap();
    let kb = line(&meminfo, "MemFree:")
        .split_whitespace()
        .nth(1)
        .unwrap();
    let zoneinfo = m.proc("zoneinfo").unwrap();
    let mut zones = Vec::new();
    let mut name = String::new();
    for l in zoneinfo.lines() {
        if let Some(rest) = l.strip_prefix("Node 0, zone") {
            name = rest.trim().to_string();
        } else if let Some(v) = l.trim().strip_prefix("pages free") {
            zones.push((name.clone(), v.trim().parse().unwrap()));
        }
    }
    let vmstat = m.proc("vmstat").unwrap();
    let pgfault = line(&vmstat, "pgfault ")[8..].parse().unwrap();
    let procs = m
        .processes()
        .values()
        .map(|p| {
            // What /proc/PID/status and /proc/PID/stat print.
            let status = mm::task_mmu::show_status_vm(&p.mm);
            let rss = line(&status, "VmRSS:")[6..]
                .trim()
                .trim_end_matches(" kB")
                .parse()
                .unwrap();
            let stat = machine::process::proc_pid_stat(p);
            let after = stat.rsplit_once(") ").unwrap().1;
            let minflt = after.split(' ').nth(7).unwrap().parse().unwrap();
            (p.pid, rss, minflt)
        })
        .collect();
    ProcNumbers {
        free_mib: kb.parse::<u64>().unwrap() / 1024,
        zones,
        pgfault,
        procs,
    }
}

/// Checks that frame `f` shows the numbers `want`.
fn check_frame(f: &str, want: &ProcNumbers) {
    let mem = line(f, "MiB Mem: ");
    assert!(
        mem.contains(&format!(" total, {} free, ", want.free_mib)),
        "{mem} / {}",
        want.free_mib
    );
    for (zone, free) in &want.zones {
        if *free > 0 {
            assert!(
                f.contains(&format!("node0 {zone:<7} free {free:>8}  min ")),
                "{zone} {free}\n{f}"
            );
        }
    }
    assert!(
        f.contains(&format!("pgfault {:>9} +", want.pgfault)),
        "pgfault {}\n{f}",
        want.pgfault
    );
    for (pid, rss, minflt) in &want.procs {
        let row = f
            .lines()
            .find(|l| l.starts_with(&format!("│{pid:<6} ")))
            .unwrap_or_else(|| panic!("no pid {pid} in\n{f}"));
        let cols: Vec<&str> = row.trim_start_matches('│').split_whitespace().collect();
        assert_eq!(
            (
                cols[2].parse::<u64>().unwrap(),
                cols[4].parse::<u64>().unwrap()
            ),
            (*rss, *minflt),
            "{row}"
        );
    }
}

/// The command lines of the README's Quick start and Usage sections
/// (`cargo run --release -- X` read as `lmm X`), without their comments.
fn readme_lines() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut out = Vec::new();
    let mut section = "";
    let mut in_code = false;
    for l in text.lines() {
        if let Some(h) = l.strip_prefix("## ") {
            section = h;
            continue;
        }
        if l.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code
            || !matches!(
                section,
                "Quick start (fresh machine, Rust toolchain installed)" | "Usage"
            )
        {
            continue;
        }
        let cmd = l.split(" # ").next().unwrap().trim();
        let cmd = match cmd.strip_prefix("cargo run --release -- ") {
            Some(rest) => format!("lmm {rest}"),
            None if cmd == "cargo run --release" => "lmm".to_string(),
            None if cmd.starts_with("lmm ") => cmd.to_string(),
            None => continue,
        };
        out.push(cmd.split_whitespace().collect::<Vec<_>>().join(" "));
    }
    out
}

#[test]
fn every_readme_command_line_has_a_case() {
    let lines = readme_lines();
    assert!(lines.len() >= 15, "{lines:?}");
    let cases = cases();
    for l in &lines {
        assert!(
            cases.iter().any(|c| c.readme == l),
            "README line `{l}` has no case in crates/lmm/tests/cli.rs"
        );
    }
    for c in &cases {
        assert!(
            lines.iter().any(|l| l == c.readme),
            "case for `{}` but the README has no such line",
            c.readme
        );
    }
}

/// Runs the cases whose README line is `lmm SUB ...` for one of `subs`.
fn run_cases(subs: &[&str]) {
    let mut n = 0;
    for c in cases() {
        let sub = c.readme.split_whitespace().nth(1).unwrap_or("");
        if !subs.contains(&sub) {
            continue;
        }
        let mut cmd = lmm();
        cmd.args(&c.args);
        for (k, v) in &c.env {
            cmd.env(k, v);
        }
        let out = cmd.assert().success().get_output().clone();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let run =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (c.check)(&stdout, &stderr)));
        if run.is_err() {
            panic!("lmm {}: output check failed (above)", c.args.join(" "));
        }
        n += 1;
    }
    assert!(n > 0);
}

#[test]
fn readme_run_and_proc() {
    run_cases(&["run", "proc"]);
}

#[test]
fn readme_dmesg_exec_and_replay() {
    run_cases(&["dmesg", "exec", "replay"]);
}

#[test]
fn readme_bench() {
    run_cases(&["bench"]);
}

/// The native case runs a static program built here from
/// tests/native/touch.c (gcc and libc6-dev needed; root for ptrace).
#[test]
fn readme_native() {
    let out = concat!(env!("CARGO_TARGET_TMPDIR"), "/readme-touch");
    let r = Command::new("gcc")
        .args(["-static", "-O1", "-o", out])
        .arg(root().join("tests/native/touch.c"))
        .status()
        .expect("the native case needs gcc (apt-get install gcc libc6-dev)");
    assert!(r.success(), "gcc -static tests/native/touch.c");
    run_cases(&["native"]);
}

#[test]
fn readme_soak() {
    run_cases(&["soak"]);
}

#[test]
fn readme_tour() {
    run_cases(&["tour"]);
}

/// The topic names of `lmm tour`'s list (`N. NAME  TITLE`).
fn tour_names(list: &str) -> Vec<String> {
    list.lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(String::from)
        .collect()
}

#[test]
fn readme_plot_and_top() {
    // The `lmm top native` case runs tests/native/touch.c.
    let out = concat!(env!("CARGO_TARGET_TMPDIR"), "/readme-top-touch");
    let r = Command::new("gcc")
        .args(["-static", "-O1", "-o", out])
        .arg(root().join("tests/native/touch.c"))
        .status()
        .expect("the top native case needs gcc (apt-get install gcc libc6-dev)");
    assert!(r.success(), "gcc -static tests/native/touch.c");
    run_cases(&["plot", "top"]);
}

#[test]
fn every_case_runs_in_one_of_the_tests_above() {
    for c in cases() {
        let sub = c.readme.split_whitespace().nth(1).unwrap_or("");
        assert!(
            [
                "run", "proc", "dmesg", "exec", "replay", "bench", "soak", "tour", "plot", "top",
                "native",
            ]
            .contains(&sub),
            "{}",
            c.readme
        );
    }
}

/// Progress bars are drawn only on a terminal: with stderr a pipe (as
/// here), the long commands (soak, both replays, a policy sweep, a 1 TiB
/// boot) write no bar, no carriage return and no
/// escape sequence to it, and stdout is what it was.
#[test]
fn progress_bars_stay_off_a_pipe() {
    for args in [
        &["soak", "--ops", "3000"][..],
        &[
            "replay",
            "lackey",
            "tests/fixtures/lackey/true.lk.gz",
            "--limit",
            "5000",
        ],
        &["replay", "strace", "tests/fixtures/traces/true.strace"],
        &[
            "replay",
            "lackey",
            "tests/fixtures/lackey/true.lk.gz",
            "--sweep",
            "4,8,16",
        ],
        // A boot past progress::BOOT_SHOWN struct pages.
        &["proc", "meminfo", "--ram", "1T"],
    ] {
        let out = lmm().args(args).assert().success().get_output().clone();
        let err = String::from_utf8_lossy(&out.stderr);
        for mark in [
            "\r",
            "\x1b[",
            "ETA",
            "/s ",
            "[=",
            "soak [",
            "accesses ",
            "lines ",
            "policy runs",
            "struct pages",
        ] {
            assert!(
                !err.contains(mark),
                "lmm {args:?}: {mark:?} on stderr:\n{err}"
            );
        }
        assert!(!out.stdout.is_empty());
    }
    // soak's stdout starts as it always did.
    let out = lmm().args(["soak", "--ops", "3000"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ops: 3000\n"));
}

/// Errors are one line on stderr and exit status 1, never a panic.
#[test]
fn bad_input_is_an_error_not_a_panic() {
    for (args, want) in [
        (&["proc", "nosuchfile"][..], "lmm: "),
        (
            &["run", "no/such/scenario.rhai"],
            "lmm: no/such/scenario.rhai: ",
        ),
        (&["proc", "buddyinfo", "--ram", "1X"], "lmm: --ram: "),
        (
            &["proc", "buddyinfo", "--slab", "slob"],
            "lmm: unknown --slab \"slob\"",
        ),
        (&["bench", "nosuch"], "lmm: unknown benchmark \"nosuch\""),
        (
            &["replay", "lackey", "tests/fixtures/lackey/touch.lk", "--frames", "0"],
            "lmm: --frames 0: expected a number of frames of at least 1",
        ),
        (
            &[
                "replay",
                "lackey",
                "tests/fixtures/lackey/touch.lk",
                "--frames",
                "2",
                "--policy",
                "lfu",
            ],
            "lmm: --policy: unknown replacement policy \"lfu\": expected one of fifo, lru, clock, age, opt, linux",
        ),
        (
            &["replay", "lackey", "tests/fixtures/lackey/touch.lk", "--sweep", "4,x"],
            "lmm: --sweep \"x\": expected a number of frames",
        ),
        (
            &["replay", "lackey", "tests/fixtures/lackey/touch.lk", "--svg", "o.svg", "--frames", "2"],
            "lmm: --svg draws the curves of --sweep",
        ),
        (
            &["replay", "strace", "tests/fixtures/traces/true.strace", "--frames", "2"],
            "lmm: --frames applies to lackey traces only",
        ),
        (
            &["soak", "--ops", "10", "--without", "nosuch"],
            "lmm: unknown op \"nosuch\"",
        ),
        (&["tour", "nosuch"], "lmm: tour: no topic \"nosuch\"; the topics are:"),
        (
            &["plot", "-o", "o.svg", "--kind", "nosuch"],
            "lmm: unknown --kind \"nosuch\": expected memory, faults, fragmentation or all",
        ),
        (&["plot", "-o", "o.svg", "--every", "0"], "lmm: --every: "),
        (
            &["plot", "-o", "o.svg", "--scenario", "no/such.rhai"],
            "lmm: no/such.rhai: ",
        ),
        (
            &["top"],
            "lmm: top needs a terminal (stdout is not one); --batch N prints N frames as text",
        ),
    ] {
        lmm().args(args).assert().code(1).stderr(
            predicate::str::starts_with(want).and(predicate::str::contains("panicked").not()),
        );
    }
    // A flag's value that is not a number is a usage error (status 2, as
    // every clap program gives), named with the flag.
    for (flag, value, why) in [
        ("--dhash-entries", "abc", "invalid digit found in string"),
        (
            "--ihash-entries",
            "99999999999999999999",
            "number too large to fit in target type",
        ),
    ] {
        lmm()
            .args(["proc", "meminfo", flag, value])
            .assert()
            .code(2)
            .stderr(predicate::str::starts_with(format!(
                "error: invalid value '{value}' for '{flag} <N>': {why}"
            )));
    }
    // A scenario's limits are flags of `lmm run`, and the error names them.
    let script = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-loop.rhai");
    std::fs::write(&script, "loop { }\n").unwrap();
    lmm()
        .args(["run", &script.display().to_string(), "--max-operations", "1000"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "cli-loop.rhai:1:6: stopped after 1000 operations (the limit; raise it with --max-operations)",
        ));
}

/// `lmm top --batch 1` on a replay or a real program that cannot start:
/// a missing trace, an unknown format, `--every 0`, a missing program.
/// Each is one line on stderr that names the problem, exit status 1, no
/// frame on stdout and no panic.
#[test]
fn top_of_a_replay_or_native_that_cannot_start_is_an_error() {
    for (args, want) in [
        (
            &["top", "--batch", "1", "replay", "strace", "no/such.strace"][..],
            "lmm: no/such.strace: expected a readable file (No such file or directory",
        ),
        (
            &["top", "--batch", "1", "replay", "lackey", "no/such.lk"],
            "lmm: no/such.lk: No such file or directory",
        ),
        (
            &[
                "top",
                "--batch",
                "1",
                "replay",
                "pcap",
                "tests/fixtures/traces/true.strace",
            ],
            "lmm: unknown trace format \"pcap\": expected strace or lackey",
        ),
        (
            &[
                "top",
                "--batch",
                "1",
                "--every",
                "0",
                "replay",
                "strace",
                "tests/fixtures/traces/true.strace",
            ],
            "lmm: --every: a frame every 0 events? (give 1 or more)",
        ),
        (
            &[
                "top",
                "--batch",
                "1",
                "replay",
                "lackey",
                "tests/fixtures/lackey/touch.lk",
                "--every",
                "0",
            ],
            "lmm: --every: a frame every 0 events? (give 1 or more)",
        ),
        (
            &["top", "--batch", "1", "native", "/no/such/program"],
            "lmm: exec /no/such/program: ENOENT",
        ),
    ] {
        let out = lmm().args(args).assert().code(1).get_output().clone();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with(want), "lmm {args:?}:\n{err}");
        assert_eq!(err.lines().count(), 1, "lmm {args:?}: one line:\n{err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(out.stdout.is_empty(), "lmm {args:?}: no frame");
    }
}

/// The read end of lmm's stdout closed before lmm writes: EPIPE. lmm exits
/// quietly (status 0, nothing on stderr), as Unix filters do.
#[test]
fn a_closed_stdout_ends_lmm_quietly() {
    let mut child = Command::new(cargo_bin("lmm"))
        .args(["proc", "zoneinfo"])
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert!(out.status.success(), "{:?}", out.status);
}

/// The README's shell line `lmm proc zoneinfo | head -1`, with an output
/// larger than a pipe's buffer so that lmm still writes after head exits.
#[test]
fn piped_into_head_lmm_exits_quietly() {
    let bin = cargo_bin("lmm");
    for extra in ["", " --cpus 64 --nodes 8"] {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "'{}' proc zoneinfo{extra} | head -1; echo \"lmm=${{PIPESTATUS[0]}}\"",
                bin.display()
            ))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "Node 0, zone      DMA\nlmm=0\n"
        );
        assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    }
}

/// `lmm proc zoneinfo > /dev/full`: ENOSPC is an error and status 1.
#[test]
fn a_full_stdout_is_an_error() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let out = Command::new(cargo_bin("lmm"))
        .args(["proc", "zoneinfo"])
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "lmm: writing to standard output: No space left on device (os error 28)\n"
    );
}
