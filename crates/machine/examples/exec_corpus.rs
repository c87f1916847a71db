//! Writes the exec corpus (see `machine::exec::corpus`) into a directory
//! and prints one line per file: `NAME HASH MODE WHAT`. Used by
//! `tools/record/exec_errno.sh`.
//!
//! Usage: cargo run -p machine --example exec_corpus -- SEED COUNT DIR

use std::path::Path;

use machine::exec::corpus;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: exec_corpus SEED COUNT DIR");
        std::process::exit(2);
    }
    let seed: u64 = args[1].parse().expect("SEED: a number");
    let count: usize = args[2].parse().expect("COUNT: a number");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/bin");
    let bases = corpus::load_bases(&root).expect("tests/fixtures/bin");
    let cases = corpus::generate(seed, count, &bases);
    corpus::write_corpus(Path::new(&args[3]), &cases).expect("write the corpus");
    for c in &cases {
        println!(
            "{} {:016x} {:o} {}",
            c.name,
            corpus::fnv1a64(&c.bytes),
            c.mode,
            c.what
        );
    }
}
