//! Swap files on the host: our mkswap against util-linux's, header checks
//! with named errors, and page I/O through the swap table.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use machine::swapdev::{mkswap, open_swap_file, parse_uuid, HostSwapFile};
use mm::errno::Errno;
use mm::swapfile::{SwapIo, SwapKind, SwapTable};

const UUID: &str = "01234567-89ab-cdef-0123-456789abcdef";

/// Writes `SKIP what: why` to the test's stderr in one write (libtest
/// captures `eprintln!` but not the file descriptor).
fn skip(what: &str, why: &str) {
    let line = format!("SKIP {what}: {why}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("lmm-swapdev-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn find_mkswap() -> Option<PathBuf> {
    [
        "/sbin/mkswap",
        "/usr/sbin/mkswap",
        "/usr/bin/mkswap",
        "/bin/mkswap",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

fn host_mkswap(mkswap: &Path, file: &Path, size: u64, label: &str) -> Result<(), String> {
    let f = std::fs::File::create(file).map_err(|e| e.to_string())?;
    f.set_len(size).map_err(|e| e.to_string())?;
    drop(f);
    let mut perm = std::fs::metadata(file).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o600);
    std::fs::set_permissions(file, perm).unwrap();
    let out = Command::new(mkswap)
        .args(["-q", "-U", UUID, "-L", label])
        .arg(file)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(())
}

#[test]
fn host_mkswap_file_parses_and_matches_ours_byte_for_byte() {
    let Some(bin) = find_mkswap() else {
        skip(
            "host_mkswap_file_parses_and_matches_ours_byte_for_byte",
            "no mkswap on this host (util-linux)",
        );
        return;
    };
    let d = TempDir::new("cmp");
    let uuid = parse_uuid(UUID).unwrap();
    for (size, label) in [
        (16u64 << 20, "lab1"),
        (40 << 10, ""),
        ((1 << 20) + 1000, "0123456789abcdefXYZ"),
    ] {
        let theirs = d.path("theirs");
        let ours = d.path("ours");
        if let Err(why) = host_mkswap(&bin, &theirs, size, label) {
            skip(
                "host_mkswap_file_parses_and_matches_ours_byte_for_byte",
                &why,
            );
            return;
        }
        mkswap(&ours, size, uuid, label).unwrap();
        let a = std::fs::read(&theirs).unwrap();
        let b = std::fs::read(&ours).unwrap();
        assert_eq!(a.len(), b.len(), "size {size}");
        assert!(a == b, "size {size} label {label:?}: files differ");
        let (h, dev) = open_swap_file(&theirs).unwrap();
        assert_eq!(u64::from(h.last_page) + 1, size / 4096);
        assert_eq!(h.uuid, uuid);
        assert_eq!(h.label(), &label.as_bytes()[..label.len().min(15)]);
        assert_eq!(dev.pages(), size / 4096);
    }
}

#[test]
fn our_mkswap_refuses_what_mkswap_refuses() {
    let d = TempDir::new("small");
    let err = mkswap(&d.path("s"), 36 << 10, [0; 16], "").unwrap_err();
    assert!(err.contains("at least 40 KiB"), "{err}");
    assert!(err.contains("/s"), "{err}");
    assert!(parse_uuid("0123").is_err());
    assert!(parse_uuid("01234567-89ab-cdef-0123-456789abcdeg").is_err());
}

#[test]
fn open_swap_file_names_the_file_and_the_problem() {
    let d = TempDir::new("bad");
    let p = d.path("zero");
    std::fs::write(&p, vec![0u8; 8192]).unwrap();
    let err = open_swap_file(&p).err().unwrap();
    assert!(err.starts_with(&p.display().to_string()), "{err}");
    assert!(err.contains("swap-space signature"), "{err}");

    let mut old = vec![0u8; 8192];
    old[4086..4096].copy_from_slice(b"SWAP-SPACE");
    std::fs::write(&p, &old).unwrap();
    let err = open_swap_file(&p).err().unwrap();
    assert!(err.contains("version 0"), "{err}");

    // A header that claims more pages than the file has.
    mkswap(&p, 1 << 20, [7; 16], "x").unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(100 << 10).unwrap();
    drop(f);
    let err = open_swap_file(&p).err().unwrap();
    assert!(err.contains("shorter than signature"), "{err}");

    std::fs::write(&p, b"tiny").unwrap();
    let err = open_swap_file(&p).err().unwrap();
    assert!(err.contains("truncated"), "{err}");

    let err = open_swap_file(&d.path("missing")).err().unwrap();
    assert!(err.contains("missing"), "{err}");
}

#[test]
fn host_swap_file_writes_then_reads_back() {
    let d = TempDir::new("io");
    let p = d.path("swap");
    mkswap(&p, 64 << 10, [1; 16], "io").unwrap();
    let dev = HostSwapFile::open(&p).unwrap();
    let page: Vec<u8> = (0..4096u32).map(|i| (i * 31 % 253) as u8).collect();
    dev.write_page(5, &page).unwrap();
    let mut back = vec![0u8; 4096];
    dev.read_page(5, &mut back).unwrap();
    assert_eq!(back, page);
    dev.read_page(6, &mut back).unwrap();
    assert!(back.iter().all(|&b| b == 0));
    assert_eq!(dev.read_page(16, &mut back), Err(Errno::EIO));
    assert_eq!(dev.write_page(1, &page[..10]), Err(Errno::EIO));
    // The bytes are in the file where slot 5 is.
    let raw = std::fs::read(&p).unwrap();
    assert_eq!(&raw[5 * 4096..6 * 4096], &page[..]);
}

#[test]
fn swap_table_over_a_host_file() {
    let d = TempDir::new("table");
    let p = d.path("swap");
    mkswap(&p, 4 << 20, parse_uuid(UUID).unwrap(), "t").unwrap();
    let (h, dev) = open_swap_file(&p).unwrap();
    let t = SwapTable::new();
    let name = p.display().to_string();
    let ty = t
        .swapon(name.clone(), SwapKind::File, Box::new(dev), &h, None)
        .unwrap();
    let pages: Vec<Vec<u8>> = (0..5u8).map(|k| vec![k ^ 0x5a; 4096]).collect();
    let slots: Vec<_> = pages
        .iter()
        .map(|pg| {
            let s = t.folio_alloc_swap(0).unwrap();
            t.swap_writepage(s, pg).unwrap();
            s
        })
        .collect();
    assert_eq!(
        slots.iter().map(|s| s.offset).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    for (s, pg) in slots.iter().zip(&pages).rev() {
        let mut back = vec![0u8; 4096];
        t.swap_readpage(*s, &mut back).unwrap();
        assert_eq!(&back, pg);
    }
    let want = format!(
        "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n{name}{}file\t\t4092\t\t20\t\t-2\n",
        " ".repeat(40usize.saturating_sub(name.len()).max(1))
    );
    assert_eq!(t.proc_swaps(), want);
    assert_eq!(ty, 0);
}
