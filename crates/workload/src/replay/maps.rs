//! Path remapping and maps text helpers for comparing a replay's
//! `/proc/PID/maps` with the real kernel's recorded in another checkout.

/// The column where Linux starts the name in a maps line: the header
/// prefix is padded with spaces to `25 + sizeof(void *) * 6 - 1` characters
/// on 64-bit (fs/proc/task_mmu.c, `seq_setwidth` + `seq_pad`).
pub const MAPS_NAME_COLUMN: usize = 73;

/// `path` with the first matching prefix of `map` (`(from, to)`) rewritten.
/// A prefix matches whole components: `/a/b` matches `/a/b` and `/a/b/c`,
/// not `/a/bc`. A trailing `/` on either side is ignored.
pub fn apply_path_map(path: &str, map: &[(String, String)]) -> String {
    match remap(path, map) {
        Some(p) => p,
        None => path.to_string(),
    }
}

fn remap(path: &str, map: &[(String, String)]) -> Option<String> {
    for (from, to) in map {
        let from = from.trim_end_matches('/');
        let to = to.trim_end_matches('/');
        if let Some(rest) = path.strip_prefix(from) {
            if rest.is_empty() || rest.starts_with('/') {
                return Some(format!("{to}{rest}"));
            }
        }
    }
    None
}

fn under_any_target(path: &str, map: &[(String, String)]) -> bool {
    map.iter().any(|(_, to)| {
        let to = to.trim_end_matches('/');
        path.strip_prefix(to)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// One maps line split into its fields.
struct MapsLine<'a> {
    range: &'a str,
    perms: &'a str,
    offset: &'a str,
    dev: &'a str,
    inode: &'a str,
    name: &'a str,
}

fn split_maps_line(line: &str) -> Option<MapsLine<'_>> {
    let (range, rest) = line.split_once(' ')?;
    let (perms, rest) = rest.split_once(' ')?;
    let (offset, rest) = rest.split_once(' ')?;
    let (dev, rest) = rest.split_once(' ')?;
    let (inode, rest) = match rest.split_once(' ') {
        Some(x) => x,
        None => (rest, ""),
    };
    let (lo, hi) = range.split_once('-')?;
    let hexes = [lo, hi, offset];
    if !hexes
        .iter()
        .all(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()))
        || perms.len() != 4
        || !dev.contains(':')
        || inode.is_empty()
        || !inode.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    Some(MapsLine {
        range,
        perms,
        offset,
        dev,
        inode,
        name: rest.trim_start_matches(' '),
    })
}

fn render(l: &MapsLine<'_>, dev: &str, inode: &str, name: &str) -> String {
    let mut s = format!("{} {} {} {} {} ", l.range, l.perms, l.offset, dev, inode);
    if !name.is_empty() {
        while s.len() < MAPS_NAME_COLUMN {
            s.push(' ');
        }
        s.push_str(name);
    }
    s
}

/// Normalizes maps text for comparison across checkouts: names under a
/// `from` prefix of `path_map` are rewritten to `to` (as the replay does),
/// and lines whose name is under a `to` prefix get device `00:00` and inode
/// `0` (a fresh checkout has new inode numbers, possibly another device).
/// Apply it to both the real kernel's recorded maps and the replay's.
/// Lines that are not maps lines are kept as they are; with an empty map the
/// text is unchanged.
pub fn normalize_maps(text: &str, path_map: &[(String, String)]) -> String {
    if path_map.is_empty() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    for chunk in text.split_inclusive('\n') {
        let (line, nl) = match chunk.strip_suffix('\n') {
            Some(l) => (l, "\n"),
            None => (chunk, ""),
        };
        match split_maps_line(line) {
            Some(m) if !m.name.is_empty() => {
                let name = apply_path_map(m.name, path_map);
                if under_any_target(&name, path_map) {
                    out.push_str(&render(&m, "00:00", "0", &name));
                } else {
                    out.push_str(&render(&m, m.dev, m.inode, &name));
                }
            }
            _ => out.push_str(line),
        }
        out.push_str(nl);
    }
    out
}

/// The name maps prints for the shmem file behind a shared anonymous
/// mapping (`shmem_zero_setup`), on device `00:01`.
pub const SHMEM_ZERO_NAME: &str = "/dev/zero (deleted)";

/// Renumbers the inodes of shared anonymous mappings (`/dev/zero
/// (deleted)` on `00:01`) 1, 2, ... in order of first appearance, so two
/// maps compare equal when their shared anonymous mappings are backed by
/// the same files in the same pattern. Linux takes these numbers from a
/// machine-wide counter of the internal shmem mount (`shmem_reserve_inode`,
/// per-CPU batches), so they depend on everything the host did since boot
/// and cannot be reproduced; which mappings share a file can.
pub fn renumber_shmem_inodes(text: &str) -> String {
    let mut seen: Vec<String> = Vec::new();
    let mut out = String::with_capacity(text.len());
    for chunk in text.split_inclusive('\n') {
        let (line, nl) = match chunk.strip_suffix('\n') {
            Some(l) => (l, "\n"),
            None => (chunk, ""),
        };
        match split_maps_line(line) {
            Some(m) if m.name == SHMEM_ZERO_NAME && m.dev == "00:01" => {
                let n = match seen.iter().position(|i| i == m.inode) {
                    Some(i) => i + 1,
                    None => {
                        seen.push(m.inode.to_string());
                        seen.len()
                    }
                };
                out.push_str(&render(&m, m.dev, &n.to_string(), m.name));
            }
            _ => out.push_str(line),
        }
        out.push_str(nl);
    }
    out
}

/// A `=== checkpoint N: LABEL ===` block of a fixture's `.stdout`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// N.
    pub number: u32,
    /// LABEL.
    pub label: String,
    /// The maps lines that follow the header, each ending in `\n`.
    pub maps: String,
}

/// The checkpoints of a recorded program's output (see
/// `tests/fixtures/README.md`): each header and the maps lines right after
/// it. Other output lines are passed over.
pub fn stdout_checkpoints(text: &str) -> Vec<Checkpoint> {
    let mut out: Vec<Checkpoint> = Vec::new();
    let mut in_maps = false;
    for line in text.lines() {
        if let Some(h) = line
            .strip_prefix("=== checkpoint ")
            .and_then(|h| h.strip_suffix(" ==="))
        {
            if let Some((n, label)) = h.split_once(": ") {
                if let Ok(number) = n.parse() {
                    out.push(Checkpoint {
                        number,
                        label: label.to_string(),
                        maps: String::new(),
                    });
                    in_maps = true;
                    continue;
                }
            }
        }
        if in_maps && split_maps_line(line).is_some() {
            if let Some(c) = out.last_mut() {
                c.maps.push_str(line);
                c.maps.push('\n');
            }
        } else {
            in_maps = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> Vec<(String, String)> {
        vec![("/work/wt-record".into(), "/repo".into())]
    }

    #[test]
    fn shmem_inodes_renumbered_by_first_appearance() {
        let t = "7ffff7dd0000-7ffff7dd2000 rw-s 00000000 00:01 9                          /dev/zero (deleted)\n\
                 7ffff7dd2000-7ffff7dd5000 rw-p 00000000 00:00 0 \n\
                 7ffff7fb0000-7ffff7fb2000 rw-s 00000000 00:01 12                         /dev/zero (deleted)\n\
                 7ffff7fb8000-7ffff7fba000 rw-s 00000000 00:01 9                          /dev/zero (deleted)\n";
        let r = renumber_shmem_inodes(t);
        let inodes: Vec<&str> = r
            .lines()
            .map(|l| l.split_whitespace().nth(4).unwrap())
            .collect();
        assert_eq!(inodes, ["1", "0", "2", "1"]);
        assert!(r
            .lines()
            .all(|l| !l.contains("(deleted)") || l.find('/') == Some(MAPS_NAME_COLUMN)));
        assert_eq!(r.lines().nth(1), t.lines().nth(1));
    }

    #[test]
    fn prefixes_match_whole_components() {
        let m = map();
        assert_eq!(apply_path_map("/work/wt-record/bin/x", &m), "/repo/bin/x");
        assert_eq!(apply_path_map("/work/wt-record", &m), "/repo");
        assert_eq!(
            apply_path_map("/work/wt-recordX/y", &m),
            "/work/wt-recordX/y"
        );
        assert_eq!(
            apply_path_map("/usr/lib/libc.so.6", &m),
            "/usr/lib/libc.so.6"
        );
    }

    #[test]
    fn rewrite_masks_and_repads() {
        let real = "555555554000-555555555000 r--p 00000000 fe:00 5317017                    /work/wt-record/tests/fixtures/bin/filemap-pie\n\
                    7ffff7dd5000-7ffff7dfb000 r--p 00000000 fe:00 326279                     /usr/lib/x86_64-linux-gnu/libc.so.6\n\
                    555555559000-555555569000 rw-p 00000000 00:00 0 \n";
        let ours = "555555554000-555555555000 r--p 00000000 fe:01 42                         /repo/tests/fixtures/bin/filemap-pie\n\
                    7ffff7dd5000-7ffff7dfb000 r--p 00000000 fe:00 326279                     /usr/lib/x86_64-linux-gnu/libc.so.6\n\
                    555555559000-555555569000 rw-p 00000000 00:00 0 \n";
        let a = normalize_maps(real, &map());
        assert_eq!(a, normalize_maps(ours, &map()));
        let first = a.lines().next().unwrap();
        assert_eq!(
            first,
            "555555554000-555555555000 r--p 00000000 00:00 0                          /repo/tests/fixtures/bin/filemap-pie"
        );
        assert_eq!(first.find('/'), Some(MAPS_NAME_COLUMN));
        assert_eq!(a.lines().nth(1), real.lines().nth(1));
        assert!(a.ends_with("00:00 0 \n"));
    }
}
