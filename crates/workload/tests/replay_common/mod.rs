//! What the replay tests on the real machine share: the guard against host
//! files that differ from the recording's, and visible SKIP lines.
//!
//! `tests/fixtures/host-files.txt` lists every host file a recorded trace
//! depends on (executables, libraries, ld.so, ld.so.cache) as
//! `PATH INODE SIZE SHA256`, written by `tools/record/whole.sh`. A trace
//! needs the files it names (execve paths and the `fd<path>` of `-y`,
//! canonicalized, plus ld.so when it maps a library): if one of them has
//! another sha256 here, the placement legitimately differs and the trace is
//! skipped, with a `SKIP` line written straight to stderr, so that `cargo
//! test` shows it even for a passing test. Another inode or device with the
//! same bytes changes only the numbers maps prints: such traces still run,
//! and their maps are compared with those numbers masked.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use workload::strace::{Arg, Event, Line};

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// Writes `SKIP what: why` to the test process's stderr directly (libtest
/// captures `eprintln!`, not the file descriptor), so it shows in `cargo
/// test` output.
pub fn skip(what: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIP {what}: {why}");
}

/// One listed host file.
#[derive(Clone, Debug)]
pub struct HostFile {
    pub ino: u64,
    pub size: u64,
    pub sha256: String,
}

/// `tests/fixtures/host-files.txt`.
pub fn host_files() -> BTreeMap<String, HostFile> {
    let text = std::fs::read_to_string(root().join("tests/fixtures/host-files.txt"))
        .expect("tests/fixtures/host-files.txt");
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [path, ino, size, sha] = f[..] else {
            panic!("host-files.txt:{}: expected PATH INODE SIZE SHA256", i + 1);
        };
        out.insert(
            path.to_string(),
            HostFile {
                ino: ino.parse().expect("inode"),
                size: size.parse().expect("size"),
                sha256: sha.to_string(),
            },
        );
    }
    out
}

/// The host files (canonical paths) a trace depends on. `own` are path
/// prefixes of the recording's checkout (its fixture binaries are in the
/// repository, not host files).
pub fn trace_host_files(lines: &[Line], own: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for l in lines {
        if let Event::Syscall(s) = &l.event {
            for a in &s.args {
                if let Arg::Fd { path, .. } = a.plain() {
                    names.push(path.clone());
                }
            }
            if s.ret.value().is_some() {
                if let Some(e) = s.as_execve() {
                    names.push(e.path);
                }
            }
        }
    }
    let mut out: Vec<String> = Vec::new();
    let mut dynamic = false;
    for n in names {
        let n = n.trim_end_matches(" (deleted)");
        if !n.starts_with('/')
            || own.iter().any(|o| n.starts_with(o))
            || ["/proc/", "/dev/", "/sys/", "/memfd:", "/tmp/"]
                .iter()
                .any(|p| n.starts_with(p))
        {
            continue;
        }
        let canon = std::fs::canonicalize(n)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| n.to_string());
        dynamic |= canon.contains("/lib");
        if canon.starts_with('/') && !out.contains(&canon) && !Path::new(&canon).is_dir() {
            out.push(canon);
        }
    }
    if dynamic {
        let ld = std::fs::canonicalize("/lib64/ld-linux-x86-64.so.2")
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "/lib64/ld-linux-x86-64.so.2".into());
        if !out.contains(&ld) {
            out.push(ld);
        }
    }
    out.sort();
    out
}

/// How this host's copies of `files` compare with the recording's.
#[derive(Debug, Default)]
pub struct HostCheck {
    /// Files whose bytes differ (or that are missing): the trace is skipped.
    pub differ: Vec<String>,
    /// Same bytes, another inode or size: maps numbers are masked.
    pub renumbered: Vec<String>,
}

pub fn check_host(files: &[String]) -> HostCheck {
    check_host_against(&host_files(), files)
}

/// [`check_host`] against a given list.
pub fn check_host_against(listed: &BTreeMap<String, HostFile>, files: &[String]) -> HostCheck {
    let mut c = HostCheck::default();
    for f in files {
        let want = listed.get(f).unwrap_or_else(|| {
            panic!("{f} is not in tests/fixtures/host-files.txt: regenerate it with tools/record/whole.sh")
        });
        let Ok(bytes) = std::fs::read(f) else {
            c.differ.push(format!("{f} is missing"));
            continue;
        };
        if sha256_hex(&bytes) != want.sha256 {
            c.differ.push(format!("{f} has other bytes"));
            continue;
        }
        let meta = std::fs::metadata(f).expect("metadata");
        if meta.ino() != want.ino || meta.len() != want.size {
            c.renumbered.push(f.clone());
        }
    }
    c
}

/// True if the trace can run here; prints a SKIP line if not.
pub fn host_ok(name: &str, lines: &[Line], own: &[&str]) -> Option<HostCheck> {
    let c = check_host(&trace_host_files(lines, own));
    if !c.differ.is_empty() {
        skip(
            name,
            &format!(
                "{} (this host's files are not the recording's; re-record with tools/record/record.sh)",
                c.differ.join(", ")
            ),
        );
        return None;
    }
    Some(c)
}

/// SHA-256 (FIPS 180-4) of `data`, lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    let bits = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bits.to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (i, c) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

/// Masks the device and inode of every file-backed maps line whose name is
/// one of `paths` (or, with `all`, of every file-backed line).
pub fn mask_ids(text: &str, paths: &[String], all: bool) -> String {
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        let f: Vec<&str> = line.splitn(6, ' ').collect();
        let name = f.get(5).map(|n| n.trim()).unwrap_or("");
        let base = name.trim_end_matches(" (deleted)");
        if f.len() == 6 && name.starts_with('/') && (all || paths.iter().any(|p| p == base)) {
            let head = format!("{} {} {} 00:00 0 ", f[0], f[1], f[2]);
            let mut s = head;
            while s.len() < workload::replay::MAPS_NAME_COLUMN {
                s.push(' ');
            }
            s.push_str(name);
            s.push('\n');
            out.push_str(&s);
        } else {
            out.push_str(line);
        }
    }
    out
}
