//! File mappings on ext4 are placed by `thp_get_unmapped_area`
//! (mm/huge_memory.c `__thp_get_unmapped_area`, reached from
//! `__get_unmapped_area` through `ext4_file_operations.get_unmapped_area`):
//! a mapping whose file range `[off, off+len)` holds a whole 2 MiB-aligned
//! stretch of the file is searched for with `len + 2 MiB` and placed at the
//! address congruent to `off` modulo 2 MiB (top-down: the highest; one more
//! 2 MiB up when the search result is already congruent); a free hint is
//! kept. This replays what Linux 6.18 did for the static program
//! `tools/record/progs/thp_file_map.c` (recorded by
//! `tools/record/thp_file_map.sh` into `tests/fixtures/thp_file_map.txt`):
//! the same binary is exec'd by lmm and the same calls must return the
//! same addresses and leave the same mappings (mremap included: it
//! places a moved mapping by its file offset too).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use machine::hostfs::HostFile;
use machine::{Machine, MachineConfig};
use mm::errno::Errno;
use mm::file::{FileRef, OpenFile};
use mm::mmap::{MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A host file on whatever file system the tests run, placed as ext4
/// places it (the recording's file system), so that the test checks the
/// rule everywhere; `HostFile` itself says whether its file is on ext4
/// (tested in hostfs).
struct OnExt4(HostFile);

impl OpenFile for OnExt4 {
    fn path(&self) -> &str {
        self.0.path()
    }
    fn dev(&self) -> (u32, u32) {
        self.0.dev()
    }
    fn ino(&self) -> u64 {
        self.0.ino()
    }
    fn size(&self) -> u64 {
        self.0.size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.0.read_at(offset, buf)
    }
    fn readable(&self) -> bool {
        true
    }
    fn writable(&self) -> bool {
        false
    }
    fn thp_get_unmapped_area(&self) -> bool {
        true
    }
}

fn num(s: &str) -> u64 {
    let s = s.trim_start_matches("0x");
    u64::from_str_radix(s, 16).unwrap_or_else(|_| panic!("not a hex number: {s}"))
}

#[test]
fn ext4_file_mappings_are_placed_as_the_kernel_places_them() {
    let rec = std::fs::read_to_string(repo().join("tests/fixtures/thp_file_map.txt")).unwrap();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("thp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let make = |name: &str, size: u64| -> PathBuf {
        let p = dir.join(name);
        let f = std::fs::File::create(&p).unwrap();
        f.set_len(size).unwrap();
        p
    };
    let f6m = make("f6m", (6 << 20) + (24 << 10));
    let f1m = make("f1m", 1 << 20);

    let mut m = Machine::boot(MachineConfig::default()).unwrap();
    let pid = m.spawn("thp").unwrap();
    let bin = repo().join("tests/fixtures/bin/thp_file_map-static");
    let argv = ["thp_file_map-static".to_string(), dir.display().to_string()];
    m.exec(pid, bin.to_str().unwrap(), &argv, &[]).unwrap();

    let mut calls = 0;
    for line in rec.lines().take_while(|l| !l.starts_with("===")) {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.first() {
            Some(&"map") => {
                let (len, off, shared, hint) = (num(w[2]), num(w[3]), w[4] == "1", num(w[5]));
                let want = num(w[7]);
                let got = if w[1] == "anon" {
                    m.sys_mmap(
                        pid,
                        hint,
                        len,
                        PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS,
                        None,
                        0,
                    )
                } else {
                    let path = if w[1] == "f6m" { &f6m } else { &f1m };
                    let f: FileRef =
                        Arc::new(OnExt4(HostFile::open_host(path.to_str().unwrap()).unwrap()));
                    let flags = if shared { MAP_SHARED } else { MAP_PRIVATE };
                    m.sys_mmap(pid, hint, len, PROT_READ, flags, Some(f), off)
                };
                assert_eq!(got, Ok(want), "{line}");
                calls += 1;
            }
            Some(&"remap") => {
                // mremap passes the VMA's file offset to get_unmapped_area.
                let got = m.sys_mremap(pid, num(w[1]), num(w[2]), num(w[3]), 1, 0);
                assert_eq!(got, Ok(num(w[5])), "{line}");
                calls += 1;
            }
            Some(&"unmap") => {
                m.sys_munmap(pid, num(w[1]), num(w[2])).unwrap();
            }
            _ => {}
        }
    }
    assert_eq!(calls, 18);

    // The address space between the program and [vvar] is the kernel's,
    // mapping for mapping (the program's own brk heap aside: lmm runs no
    // code).
    let ranges = |maps: &str| -> Vec<String> {
        maps.lines()
            .filter(|l| {
                let start = l.split('-').next().unwrap_or("");
                u64::from_str_radix(start, 16)
                    .is_ok_and(|s| (0x1000_0000..0x7fff_f7ff_7000).contains(&s))
            })
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .collect()
    };
    let want = ranges(rec.split("=== checkpoint 0: end ===").nth(1).unwrap());
    let got = ranges(&m.proc_pid(pid, "maps").unwrap());
    assert_eq!(got, want);
    assert_eq!(want.len(), 15);
    m.check().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_rule_needs_a_whole_aligned_2mib_of_the_file() {
    // Without the ext4 hook (tmpfs-like files, or a file system whose
    // get_unmapped_area is the generic one) nothing is aligned: the same
    // 6 MiB mapping lands right below the vDSO.
    struct Plain(HostFile);
    impl OpenFile for Plain {
        fn path(&self) -> &str {
            self.0.path()
        }
        fn dev(&self) -> (u32, u32) {
            self.0.dev()
        }
        fn ino(&self) -> u64 {
            self.0.ino()
        }
        fn size(&self) -> u64 {
            self.0.size()
        }
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
            self.0.read_at(offset, buf)
        }
        fn readable(&self) -> bool {
            true
        }
        fn writable(&self) -> bool {
            false
        }
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("thp2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("f");
    std::fs::File::create(&p).unwrap().set_len(8 << 20).unwrap();
    let mut m = Machine::boot(MachineConfig::default()).unwrap();
    let pid = m.spawn("thp").unwrap();
    let bin = repo().join("tests/fixtures/bin/thp_file_map-static");
    m.exec(pid, bin.to_str().unwrap(), &["x".to_string()], &[])
        .unwrap();
    let open = |thp: bool| -> FileRef {
        let h = HostFile::open_host(p.to_str().unwrap()).unwrap();
        if thp {
            Arc::new(OnExt4(h))
        } else {
            Arc::new(Plain(h))
        }
    };
    let len = (6 << 20) + (24 << 10);
    // [vvar] starts at 0x7ffff7ff7000 (mmap_base less the vDSO's 8 pages).
    let top = 0x7fff_f7ff_7000u64;
    let plain = m
        .sys_mmap(pid, 0, len, PROT_READ, MAP_PRIVATE, Some(open(false)), 0)
        .unwrap();
    assert_eq!(plain, top - len);
    m.sys_munmap(pid, plain, len).unwrap();
    let aligned = m
        .sys_mmap(pid, 0, len, PROT_READ, MAP_PRIVATE, Some(open(true)), 0)
        .unwrap();
    // Searched with len + 2 MiB below [vvar], then moved up to the 2 MiB
    // boundary: the python3 trace's libpython case (24 KiB below it
    // without the rule).
    assert_eq!(aligned, 0x7fff_f780_0000);
    assert_eq!(aligned % (2 << 20), 0);
    // At file offset 2 MiB + 4 KiB the address is congruent to the offset.
    let a = m
        .sys_mmap(
            pid,
            0,
            4 << 20,
            PROT_READ,
            MAP_PRIVATE,
            Some(open(true)),
            0x20_1000,
        )
        .unwrap();
    assert_eq!(a % (2 << 20), 0x1000);
    // 4 MiB at offset 1 MiB + 4 KiB holds [2 MiB, 4 MiB): aligned; 2 MiB at
    // 1 MiB holds no whole aligned stretch: not.
    let b = m
        .sys_mmap(
            pid,
            0,
            2 << 20,
            PROT_READ,
            MAP_PRIVATE,
            Some(open(true)),
            1 << 20,
        )
        .unwrap();
    assert_eq!(b, a - (2 << 20));
    m.check().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
