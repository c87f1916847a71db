//! exec against the real kernel on a corpus of malformed files: the
//! corpus of `machine::exec::corpus` (hand-made and mutated ELF64 x86-64
//! files and `#!` scripts, regenerated here from the recorded seed) is
//! exec'd by lmm's `Machine::exec` on a spawned process, and each answer
//! is compared with the one Linux 6.18 gave for the same bytes, recorded
//! by `tools/record/exec_errno.sh` into `tests/fixtures/exec_errno.txt`:
//! the errno execve returned (or success), and whether the failure came
//! after the point of no return (the kernel then kills the task).
//!
//! This test binary holds one test only: it changes the working directory
//! (the corpus names its interpreters by relative paths), which is shared
//! by every thread of the process.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use machine::exec::{self, corpus, ExecParams};
use machine::{Machine, MachineConfig};
use mm::errno::Errno;

/// What the kernel (or lmm) answered for one file.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Outcome {
    /// `ok` or an errno name.
    result: String,
    /// The failure came after the point of no return.
    fatal: bool,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}{}",
            self.result,
            if self.fatal { " fatal" } else { "" }
        )
    }
}

struct Fixture {
    seed: u64,
    count: usize,
    generator: u32,
    expect: BTreeMap<String, (u64, Outcome)>,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read_fixture() -> Fixture {
    let path = repo().join("tests/fixtures/exec_errno.txt");
    let text = std::fs::read_to_string(&path).expect("tests/fixtures/exec_errno.txt");
    let mut f = Fixture {
        seed: 0,
        count: 0,
        generator: 0,
        expect: BTreeMap::new(),
    };
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("# ") {
            let mut w = h.split_whitespace();
            match (w.next(), w.next()) {
                (Some("seed"), Some(v)) => f.seed = v.parse().expect("seed"),
                (Some("count"), Some(v)) => f.count = v.parse().expect("count"),
                (Some("generator"), Some(v)) => f.generator = v.parse().expect("generator"),
                _ => {}
            }
            continue;
        }
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() < 3 {
            continue;
        }
        let hash = u64::from_str_radix(w[1], 16).expect("hash");
        let out = Outcome {
            result: w[2].to_string(),
            fatal: w.get(3) == Some(&"fatal"),
        };
        f.expect.insert(w[0].to_string(), (hash, out));
    }
    f
}

/// lmm's answer for `name` (a file in the working directory).
fn lmm_exec(m: &mut Machine, name: &str) -> Outcome {
    let argv = [name.to_string()];
    let pid = m.spawn("diff").expect("spawn");
    let r = m.exec(pid, name, &argv, &[]);
    let _ = m.exit(pid);
    match r {
        Ok(_) => Outcome {
            result: "ok".into(),
            fatal: false,
        },
        Err(e) => {
            let pre =
                exec::exec_until_point_of_no_return(name, name, &argv, &[], &ExecParams::default());
            Outcome {
                result: e.name().into(),
                fatal: pre.is_ok(),
            }
        }
    }
}

#[test]
fn exec_errno_matches_the_kernel_on_malformed_files() {
    let fx = read_fixture();
    assert_eq!(
        fx.generator,
        corpus::GENERATOR_VERSION,
        "the corpus generator changed: re-record with tools/record/exec_errno.sh"
    );
    let bases = corpus::load_bases(&repo().join("tests/fixtures/bin")).expect("fixture bases");
    let cases = corpus::generate(fx.seed, fx.count, &bases);
    let dir = std::env::temp_dir().join(format!("lmm-exec-diff-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    corpus::write_corpus(&dir, &cases).expect("write corpus");
    std::env::set_current_dir(&dir).expect("chdir");

    // The recording machine has 24 GiB and no swap: overcommit's guess
    // (ENOMEM above RAM + swap) sees the same total.
    let mut m = Machine::boot(MachineConfig {
        ram: 24 << 30,
        ..MachineConfig::default()
    })
    .expect("boot");

    let mut same = 0usize;
    let mut same_fatal = 0usize;
    let mut diffs = Vec::new();
    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    for c in &cases {
        let (hash, want) = fx
            .expect
            .get(&c.name)
            .unwrap_or_else(|| panic!("{} is not in the fixture: re-record", c.name));
        assert_eq!(
            *hash,
            corpus::fnv1a64(&c.bytes),
            "{}: the corpus changed ({}): re-record with tools/record/exec_errno.sh",
            c.name,
            c.what
        );
        let got = lmm_exec(&mut m, &c.name);
        if got.result == want.result {
            same += 1;
            if got.fatal == want.fatal {
                same_fatal += 1;
            }
        } else {
            *by_kind
                .entry(format!("kernel {} / lmm {}", want.result, got.result))
                .or_default() += 1;
            diffs.push(format!(
                "{} {:o} kernel {want} lmm {got}: {}",
                c.name, c.mode, c.what
            ));
        }
    }
    m.check().expect("machine invariants after the corpus");
    let _ = std::env::set_current_dir(repo());
    let _ = std::fs::remove_dir_all(&dir);

    let n = cases.len();
    let rate = same as f64 * 100.0 / n as f64;
    println!(
        "exec differential: {same}/{n} same errno ({rate:.2}%), {same_fatal} also agree on the point of no return"
    );
    for (k, v) in &by_kind {
        println!("  {v:4}  {k}");
    }
    for d in &diffs {
        println!("  {d}");
    }
    assert!(
        rate >= 98.0,
        "only {rate:.2}% of exec results agree with the kernel"
    );
    // A file lmm loads must never fail in the kernel, and the reverse.
    let _ = Errno::ENOEXEC;
}
