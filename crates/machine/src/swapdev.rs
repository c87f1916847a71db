//! Swap devices backed by host files: the storage behind `mm::swapfile`'s
//! [`SwapIo`], a `mkswap` that writes what util-linux's writes, and the
//! header check `swapon` makes before handing a file to the swap table.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use mm::errno::Errno;
use mm::swapfile::{SwapHeader, SwapIo, SwapKind, SWAP_PAGE_SIZE};

/// A swap area in a host file, read and written a page at a time with
/// pread/pwrite. Any host error, and any slot past the end of the file,
/// is EIO, as a failed block request is.
pub struct HostSwapFile {
    file: File,
    path: PathBuf,
    pages: u64,
}

impl HostSwapFile {
    /// Opens `path` for reading and writing as a swap area (no header
    /// check: see [`open_swap_file`]).
    pub fn open(path: &Path) -> Result<HostSwapFile, String> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let len = file
            .metadata()
            .map_err(|e| format!("{}: {e}", path.display()))?
            .len();
        Ok(HostSwapFile {
            file,
            path: path.to_path_buf(),
            pages: len / SWAP_PAGE_SIZE as u64,
        })
    }

    /// Whole pages in the file.
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// The host path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn byte_offset(&self, slot: u64, len: usize) -> Result<u64, Errno> {
        if len != SWAP_PAGE_SIZE || slot >= self.pages {
            return Err(Errno::EIO);
        }
        Ok(slot * SWAP_PAGE_SIZE as u64)
    }
}

impl SwapIo for HostSwapFile {
    fn read_page(&self, slot: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let at = self.byte_offset(slot, buf.len())?;
        self.file.read_exact_at(buf, at).map_err(|_| Errno::EIO)
    }

    fn write_page(&self, slot: u64, buf: &[u8]) -> Result<(), Errno> {
        let at = self.byte_offset(slot, buf.len())?;
        self.file.write_all_at(buf, at).map_err(|_| Errno::EIO)
    }
}

/// Makes a swap area of `size_bytes` in a new file at `path` (replacing
/// any file there), the way `mkswap -U uuid -L label` does on a file of
/// that size: mode 0600, page 0 holding the version-1 header, the rest
/// zero (sparse). A size that is not a whole number of pages leaves the
/// tail unused, as mkswap does; fewer than 10 pages is refused.
pub fn mkswap(path: &Path, size_bytes: u64, uuid: [u8; 16], label: &str) -> Result<(), String> {
    let pages = size_bytes / SWAP_PAGE_SIZE as u64;
    let page0 =
        SwapHeader::write(pages, uuid, label).map_err(|e| format!("{}: {e}", path.display()))?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.set_len(size_bytes)
        .and_then(|()| file.write_all_at(&page0, 0))
        .and_then(|()| file.sync_data())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Opens a swap file and checks its header as `swapon` does (signature,
/// version, size against the file, no bad pages in a regular file).
/// Errors name the file and the problem.
pub fn open_swap_file(path: &Path) -> Result<(SwapHeader, HostSwapFile), String> {
    let dev = HostSwapFile::open(path)?;
    let len = dev
        .file
        .metadata()
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    let mut page0 = vec![0u8; SWAP_PAGE_SIZE];
    let mut f = &dev.file;
    let mut got = 0;
    while got < SWAP_PAGE_SIZE {
        match f.read(&mut page0[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    let header =
        SwapHeader::parse(&page0[..got]).map_err(|e| format!("{}: {e}", path.display()))?;
    header
        .check_size(len, SwapKind::File)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((header, dev))
}

/// Parses a UUID written as mkswap prints it
/// (`01234567-89ab-cdef-0123-456789abcdef`).
pub fn parse_uuid(s: &str) -> Result<[u8; 16], String> {
    let hex: Vec<u8> = s.bytes().filter(|&b| b != b'-').collect();
    let shape_ok = s.len() == 36
        && s.bytes()
            .enumerate()
            .all(|(i, b)| (b == b'-') == matches!(i, 8 | 13 | 18 | 23));
    if hex.len() != 32 || !shape_ok {
        return Err(format!("{s:?}: not a UUID (8-4-4-4-12 hex digits)"));
    }
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        let txt = std::str::from_utf8(pair).map_err(|_| format!("{s:?}: not a UUID"))?;
        out[i] = u8::from_str_radix(txt, 16).map_err(|_| format!("{s:?}: not a UUID"))?;
    }
    Ok(out)
}
