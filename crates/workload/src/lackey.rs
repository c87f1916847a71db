//! Replay of valgrind lackey memory traces: every instruction fetch, load
//! and store a real program made, driven through one process's MMU (the
//! engine of `lmm replay lackey`).
//!
//! The input is what `valgrind --tool=lackey --trace-mem=yes` writes (best
//! with `--log-file=FILE`, so the program's own output stays out): one line
//! per access, `I  ADDR,SIZE` for an instruction fetch, ` L ADDR,SIZE` a
//! load, ` S ADDR,SIZE` a store, ` M ADDR,SIZE` a load then a store of the
//! same bytes (addresses in hex, sizes in decimal bytes), between valgrind's
//! own lines (`==PID== ...`, also `--PID--` and `**PID**`), which are skipped,
//! as are `SB ADDR` lines (`--trace-superblocks=yes`). [`Reader`] streams it
//! (traces run to gigabytes: one line in memory at a time; gzip input is
//! detected by [`open`]); errors name the file, the line and what was
//! expected, and no input panics.
//!
//! [`replay`] drives a [`LackeyTarget`], the machine side, a trait so that
//! the engine is tested with a fake and the real machine plugs in later.
//! Each access touches every page it covers, in order (an `M` reads them
//! all, then writes them all). A page outside every VMA is mapped anonymous
//! on its first touch, private and read-write, plus exec if that touch is an
//! instruction fetch; a later fetch from a page the replay mapped without
//! exec makes it executable (mprotect). The granule is one page, mapped with
//! `MAP_FIXED_NOREPLACE` next to its neighbours, so the kernel's VMA merge
//! joins them: the "areas made" the report gives are the runs of contiguous
//! pages the replay mapped with one protection, the VMAs the replay adds
//! (Linux may keep two where a run's pages joined two neighbours that
//! already had different anon_vmas, or merge one with an adjacent existing
//! anonymous VMA), and RSS is never inflated by pages the trace did not
//! touch.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;

use mm::errno::Errno;
use mm::{VirtAddr, PAGE_SHIFT, PAGE_SIZE};

use crate::strace::ParseError;

pub mod frames;
mod machine_target;
pub mod policy;
pub use machine_target::MachineLackey;
pub use policy::PolicyArgs;

/// The longest line read (valgrind's banner repeats the command line, so
/// this is generous); a longer one is an error, not an unbounded buffer.
pub const MAX_LINE: usize = 64 * 1024;

/// The largest access size accepted. Lackey writes at most 512 bytes per
/// data access (its `MAX_DSIZE`) and 15 (or 19, a client request) per
/// instruction; the bound keeps a malformed size from touching 2^64 pages.
pub const MAX_ACCESS_SIZE: u64 = 64 * 1024;

// ---------------------------------------------------------------------------
// The trace.

/// What a trace line says the program did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `I`: an instruction fetch.
    Instr,
    /// `L`: a data load.
    Load,
    /// `S`: a data store.
    Store,
    /// `M`: a load then a store of the same bytes (e.g. `incq (mem)`).
    Modify,
}

impl Kind {
    /// All kinds, in the order the report prints them.
    pub const ALL: [Kind; 4] = [Kind::Instr, Kind::Load, Kind::Store, Kind::Modify];

    /// The letter lackey writes.
    pub fn letter(self) -> char {
        match self {
            Kind::Instr => 'I',
            Kind::Load => 'L',
            Kind::Store => 'S',
            Kind::Modify => 'M',
        }
    }

    /// The MMU accesses this kind makes of each page it covers, in order.
    pub fn accesses(self) -> &'static [AccessKind] {
        match self {
            Kind::Instr => &[AccessKind::Exec],
            Kind::Load => &[AccessKind::Read],
            Kind::Store => &[AccessKind::Write],
            Kind::Modify => &[AccessKind::Read, AccessKind::Write],
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One access of the trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// The 1-based line number.
    pub line: usize,
    /// What the program did.
    pub kind: Kind,
    /// The first byte accessed.
    pub addr: VirtAddr,
    /// The number of bytes, 1 to [`MAX_ACCESS_SIZE`]; `addr + size - 1`
    /// does not wrap.
    pub size: u64,
}

impl Record {
    /// The last byte accessed.
    pub fn last(&self) -> VirtAddr {
        VirtAddr(self.addr.0 + (self.size - 1))
    }
}

impl fmt::Display for Record {
    /// The access as lackey wrote it (`S 0x1ffefffd78,8`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:#x},{}", self.kind.letter(), self.addr.0, self.size)
    }
}

/// What one line of a lackey log holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line {
    /// An access.
    Access {
        /// What the program did.
        kind: Kind,
        /// The first byte.
        addr: VirtAddr,
        /// The number of bytes.
        size: u64,
    },
    /// A line of valgrind's own (`==PID== ...`, `--PID-- ...`, `**PID** ...`).
    Message,
    /// `SB ADDR`: a superblock entered (`--trace-superblocks=yes`).
    Superblock(VirtAddr),
    /// An empty line (or only blanks).
    Blank,
}

fn trim_end(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t' | b'\r'] = s {
        s = rest;
    }
    s
}

fn trim_start(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    s
}

/// At most 60 characters of `s`, quoted, for an error message.
fn excerpt(s: &[u8]) -> String {
    let text = String::from_utf8_lossy(s);
    let cut: String = text.chars().take(60).collect();
    if cut.len() < text.len() {
        format!("{cut:?}...")
    } else {
        format!("{cut:?}")
    }
}

/// `==PID==`, `--PID--` or `**PID**` at the start of the line.
fn is_valgrind_line(s: &[u8]) -> bool {
    let [a, b, rest @ ..] = s else {
        return false;
    };
    if a != b || !matches!(a, b'=' | b'-' | b'*') {
        return false;
    }
    let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    digits > 0 && rest[digits..].starts_with(&[*a, *a])
}

/// A run of hex digits at the start of `s` as an address, and the rest.
fn hex_prefix<'a>(
    s: &'a [u8],
    after: &dyn std::fmt::Display,
) -> Result<(VirtAddr, &'a [u8]), String> {
    let mut addr: u64 = 0;
    let mut n = 0;
    for &c in s {
        let digit = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => break,
        };
        if addr >> 60 != 0 {
            let len = s.iter().take_while(|c| c.is_ascii_hexdigit()).count();
            return Err(format!(
                "expected an address of at most 64 bits, found {:?}",
                String::from_utf8_lossy(&s[..len])
            ));
        }
        addr = addr << 4 | u64::from(digit);
        n += 1;
    }
    if n == 0 {
        return Err(format!(
            "expected a hexadecimal address after `{after}`, found {}",
            excerpt(s)
        ));
    }
    Ok((VirtAddr(addr), &s[n..]))
}

/// An access exactly as lackey prints it (`I  %08lx,%lu`, ` L %08lx,%lu`),
/// in one pass; `None` for anything else, which [`parse_line`] then reads
/// (and explains, if it is wrong). Nearly every line of a trace is one.
fn canonical_access(s: &[u8]) -> Option<Line> {
    let (kind, rest) = match s {
        [b'I', b' ', b' ', rest @ ..] => (Kind::Instr, rest),
        [b' ', b'L', b' ', rest @ ..] => (Kind::Load, rest),
        [b' ', b'S', b' ', rest @ ..] => (Kind::Store, rest),
        [b' ', b'M', b' ', rest @ ..] => (Kind::Modify, rest),
        _ => return None,
    };
    let mut addr: u64 = 0;
    let mut i = 0;
    while let Some(&c) = rest.get(i) {
        let digit = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b',' if i > 0 && i <= 16 => break,
            _ => return None,
        };
        addr = addr << 4 | u64::from(digit);
        i += 1;
    }
    let digits = rest.get(i + 1..).filter(|d| (1..=5).contains(&d.len()))?;
    let mut size: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        size = size * 10 + u64::from(d - b'0');
    }
    ((1..=MAX_ACCESS_SIZE).contains(&size) && addr.checked_add(size - 1).is_some()).then_some(
        Line::Access {
            kind,
            addr: VirtAddr(addr),
            size,
        },
    )
}

/// Parses one line (without its newline).
pub fn parse_line(raw: &[u8]) -> Result<Line, String> {
    canonical_access(raw).map_or_else(|| parse_any_line(raw), Ok)
}

/// Parses any line lackey or valgrind writes, and explains a wrong one.
fn parse_any_line(raw: &[u8]) -> Result<Line, String> {
    let s = trim_end(raw);
    if s.is_empty() || trim_start(s).is_empty() {
        return Ok(Line::Blank);
    }
    if is_valgrind_line(s) {
        return Ok(Line::Message);
    }
    let t = trim_start(s);
    if let Some(rest) = t.strip_prefix(b"SB ") {
        let (addr, rest) = hex_prefix(trim_start(rest), &"SB")?;
        if !rest.is_empty() {
            return Err(format!(
                "expected the end of the line after the superblock address, found {}",
                excerpt(rest)
            ));
        }
        return Ok(Line::Superblock(addr));
    }
    let kind = match t[0] {
        b'I' => Kind::Instr,
        b'L' => Kind::Load,
        b'S' => Kind::Store,
        b'M' => Kind::Modify,
        _ => {
            return Err(format!(
                "expected an access (`I  ADDR,SIZE`, ` L ADDR,SIZE`, ` S ...` or ` M ...`) \
                 or a valgrind line (`==PID== ...`), found {} (record with valgrind's \
                 --log-file to keep the program's own output out of the trace)",
                excerpt(s)
            ))
        }
    };
    let letter = kind.letter();
    let rest = &t[1..];
    let after_blank = trim_start(rest);
    if after_blank.len() == rest.len() {
        return Err(format!(
            "expected a blank after `{letter}`, found {}",
            excerpt(rest)
        ));
    }
    let (addr, rest) = hex_prefix(after_blank, &letter)?;
    let Some(rest) = rest.strip_prefix(b",") else {
        return Err(format!(
            "expected `,` and a decimal size after the address, found {}",
            excerpt(rest)
        ));
    };
    let n = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 {
        return Err(format!(
            "expected a decimal size after `,`, found {}",
            excerpt(rest)
        ));
    }
    if n < rest.len() {
        return Err(format!(
            "expected the end of the line after the size, found {}",
            excerpt(&rest[n..])
        ));
    }
    let digits = &rest[..n];
    let size = digits.iter().fold(0u64, |v, &d| {
        v.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    });
    if size == 0 {
        return Err("expected a size of at least 1 byte, found 0".into());
    }
    if size > MAX_ACCESS_SIZE {
        return Err(format!(
            "expected a size of at most {MAX_ACCESS_SIZE} bytes (lackey writes at most 512), \
             found {}",
            String::from_utf8_lossy(digits)
        ));
    }
    if addr.0.checked_add(size - 1).is_none() {
        return Err(format!(
            "expected an access that ends below 2^64, found {size} bytes at {:#x}",
            addr.0
        ));
    }
    Ok(Line::Access { kind, addr, size })
}

/// Why a lackey replay stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LackeyError {
    /// A line is not what lackey writes.
    Parse(ParseError),
    /// Reading the trace failed.
    Io {
        /// The file name.
        file: String,
        /// The last line read completely (0 before the first).
        line: usize,
        /// The error.
        msg: String,
    },
    /// The target refused an access or a mapping.
    Target {
        /// The file name.
        file: String,
        /// The line of the access.
        line: usize,
        /// The access and what went wrong.
        msg: String,
    },
    /// The command line is wrong.
    Usage(String),
}

impl fmt::Display for LackeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LackeyError::Parse(e) => e.fmt(f),
            // Line 0: the file could not be opened or read at all.
            LackeyError::Io { file, line: 0, msg } => write!(f, "{file}: {msg}"),
            LackeyError::Io { file, line, msg } => {
                write!(f, "{file}: reading after line {line}: {msg}")
            }
            LackeyError::Target { file, line, msg } => write!(f, "{file}:{line}: {msg}"),
            LackeyError::Usage(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for LackeyError {}

/// Streams the accesses of a lackey log, one line in memory at a time.
///
/// Yields each access; valgrind's lines, superblock lines and blank lines
/// are counted and skipped. After the first error it yields nothing more.
pub struct Reader<R> {
    inner: R,
    file: String,
    line: usize,
    buf: Vec<u8>,
    done: bool,
    messages: u64,
    superblocks: u64,
}

impl<R: BufRead> Reader<R> {
    /// A reader of `inner`, whose errors name `file`.
    pub fn new(inner: R, file: impl Into<String>) -> Self {
        Reader {
            inner,
            file: file.into(),
            line: 0,
            buf: Vec::with_capacity(64),
            done: false,
            messages: 0,
            superblocks: 0,
        }
    }

    /// The file name given to [`Reader::new`].
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Lines read so far.
    pub fn lines(&self) -> usize {
        self.line
    }

    /// Valgrind's own lines (`==PID== ...`) and blank lines skipped so far.
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// `SB` lines skipped so far.
    pub fn superblocks(&self) -> u64 {
        self.superblocks
    }

    fn error(&mut self, msg: String) -> Option<Result<Record, LackeyError>> {
        self.done = true;
        Some(Err(LackeyError::Parse(ParseError {
            file: self.file.clone(),
            line: self.line,
            msg,
        })))
    }
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = Result<Record, LackeyError>;

    /// The next access. A line is parsed where it lies in the reader's
    /// buffer; only one that straddles two fills is copied.
    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let avail = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) => {
                    self.done = true;
                    return Some(Err(LackeyError::Io {
                        file: self.file.clone(),
                        line: self.line,
                        msg: e.to_string(),
                    }));
                }
            };
            let (parsed, used, len) = match memchr::memchr(b'\n', avail) {
                Some(i) if self.buf.is_empty() => (parse_line(&avail[..i]), i + 1, i),
                Some(i) => {
                    self.buf.extend_from_slice(&avail[..i]);
                    (parse_line(&self.buf), i + 1, self.buf.len())
                }
                None if avail.is_empty() && self.buf.is_empty() => {
                    self.done = true;
                    return None;
                }
                // The last line, without a newline.
                None if avail.is_empty() => (parse_line(&self.buf), 0, self.buf.len()),
                None => {
                    let n = avail.len();
                    self.buf.extend_from_slice(avail);
                    self.inner.consume(n);
                    if self.buf.len() > MAX_LINE {
                        self.line += 1;
                        return self.error(format!(
                            "expected a line of at most {MAX_LINE} bytes, found a longer one"
                        ));
                    }
                    continue;
                }
            };
            self.inner.consume(used);
            self.buf.clear();
            self.line += 1;
            // Without a newline, that was the last line.
            self.done = used == 0;
            if len > MAX_LINE {
                return self.error(format!(
                    "expected a line of at most {MAX_LINE} bytes, found a longer one"
                ));
            }
            match parsed {
                Ok(Line::Access { kind, addr, size }) => {
                    return Some(Ok(Record {
                        line: self.line,
                        kind,
                        addr,
                        size,
                    }))
                }
                Ok(Line::Message | Line::Blank) => self.messages += 1,
                Ok(Line::Superblock(_)) => self.superblocks += 1,
                Err(msg) => return self.error(msg),
            }
        }
        None
    }
}

/// Wraps `r` in a gzip decoder if it starts with gzip's magic bytes.
pub fn maybe_gunzip<R: BufRead + 'static>(mut r: R) -> io::Result<Box<dyn BufRead>> {
    let head = r.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(BufReader::new(
            flate2::bufread::MultiGzDecoder::new(r),
        )))
    } else {
        Ok(Box::new(r))
    }
}

/// Opens a trace file (`-` is standard input), gzip-compressed or not.
pub fn open(path: &Path) -> Result<Box<dyn BufRead>, LackeyError> {
    let io_err = |e: io::Error| LackeyError::Io {
        file: path.display().to_string(),
        line: 0,
        msg: e.to_string(),
    };
    if path == Path::new("-") {
        return maybe_gunzip(BufReader::with_capacity(1 << 16, io::stdin())).map_err(io_err);
    }
    let f = File::open(path).map_err(io_err)?;
    maybe_gunzip(BufReader::with_capacity(1 << 16, f)).map_err(io_err)
}

// ---------------------------------------------------------------------------
// The machine side.

/// An access as the MMU sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccessKind {
    /// A data read.
    Read,
    /// A data write.
    Write,
    /// An instruction fetch.
    Exec,
}

impl fmt::Display for AccessKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AccessKind::Read => "read",
            AccessKind::Write => "write",
            AccessKind::Exec => "instruction fetch",
        })
    }
}

/// Why a target call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetError {
    /// The access would deliver this signal to the process, described as
    /// `SIGSEGV (SEGV_MAPERR)`, `SIGSEGV (SEGV_ACCERR)`, `SIGBUS (BUS_ADRERR)`.
    Signal(String),
    /// A system call failed with this errno (mapping or mprotect).
    Errno(Errno),
    /// The target cannot do this at all.
    Unsupported(String),
}

impl From<Errno> for TargetError {
    fn from(e: Errno) -> Self {
        TargetError::Errno(e)
    }
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetError::Signal(s) => f.write_str(s),
            TargetError::Errno(e) => write!(f, "-1 {}", e.name()),
            TargetError::Unsupported(s) => f.write_str(s),
        }
    }
}

/// Counters of the replayed process, read before and after the replay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TargetStats {
    /// Page faults served without I/O (`min_flt`).
    pub minor_faults: u64,
    /// Page faults that needed I/O (`maj_flt`).
    pub major_faults: u64,
    /// Resident pages of the process (anon + file + shmem).
    pub rss_pages: u64,
    /// Translations served by the TLB.
    pub tlb_hits: u64,
    /// Translations that walked the page tables.
    pub tlb_misses: u64,
}

/// One process of a machine, as the replay drives it.
///
/// On lmm's machine: `access` is a user-mode access through the process's
/// CPU's MMU that enters the fault handler on a miss, `is_mapped` is
/// `find_vma`, `map_anon` is `mmap(start, len, PROT_READ|PROT_WRITE
/// [|PROT_EXEC], MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE)`, `make_exec`
/// is `mprotect(start, len, PROT_READ|PROT_WRITE|PROT_EXEC)`, and `stats`
/// reads `min_flt`/`maj_flt`, the mm's RSS counters and the CPU's TLB.
pub trait LackeyTarget {
    /// Makes one user access of `kind` to the byte at `va` (one page: the
    /// replay splits accesses at page boundaries), faulting the page in as
    /// needed; `Err(TargetError::Signal)` if the process would get a signal.
    fn access(&mut self, va: VirtAddr, kind: AccessKind) -> Result<(), TargetError>;

    /// True if a VMA of the process contains `va`.
    fn is_mapped(&self, va: VirtAddr) -> bool;

    /// Maps `len` bytes (page multiple) at `start` (page aligned), private
    /// anonymous, read-write and, if `exec`, executable, failing rather than
    /// replacing anything already there.
    fn map_anon(&mut self, start: VirtAddr, len: u64, exec: bool) -> Result<(), TargetError>;

    /// Makes `len` bytes at `start`, which the replay mapped with
    /// [`LackeyTarget::map_anon`] without exec, read-write-exec.
    fn make_exec(&mut self, start: VirtAddr, len: u64) -> Result<(), TargetError>;

    /// The process's counters now.
    fn stats(&self) -> TargetStats;
}

// ---------------------------------------------------------------------------
// The engine.

/// How to replay.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Count an access that fails (a signal, or a page that cannot be
    /// mapped) and go on with the next one, instead of stopping there.
    pub keep_going: bool,
    /// Stop after this many accesses (trace lines `I`, `L`, `S`, `M`); the
    /// rest of the trace is not read.
    pub limit: Option<u64>,
}

/// What a replay did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// The trace's name.
    pub file: String,
    /// Lines read (with [`Options::limit`], up to the last access replayed).
    pub lines: usize,
    /// Valgrind's own lines and blank lines skipped.
    pub messages: u64,
    /// `SB` lines skipped.
    pub superblocks: u64,
    /// Accesses replayed, by [`Kind`] (index `Kind as usize`).
    pub accesses: [u64; 4],
    /// MMU accesses made: one per page an access covers, twice for `M`.
    pub page_touches: u64,
    /// Distinct pages accessed successfully.
    pub pages_touched: u64,
    /// Pages the replay mapped anonymous on their first touch.
    pub pages_mapped: u64,
    /// Runs of contiguous pages the replay mapped with one protection: the
    /// VMAs it added (see the module documentation).
    pub areas_made: u64,
    /// Pages mapped without exec that a later fetch made executable.
    pub pages_made_exec: u64,
    /// Accesses that failed and were skipped ([`Options::keep_going`]).
    pub failed: u64,
    /// The first failure, as `FILE:LINE: message`.
    pub first_failure: Option<String>,
    /// True if [`Options::limit`] stopped the replay before the trace's end
    /// (a trace with exactly `limit` accesses ends normally).
    pub stopped_at_limit: bool,
    /// Faults and TLB counts made during the replay (differences of
    /// [`LackeyTarget::stats`]), RSS at its end.
    pub stats: TargetStats,
}

impl Summary {
    /// Accesses of one kind.
    pub fn count(&self, kind: Kind) -> u64 {
        self.accesses[kind.index()]
    }

    /// All accesses.
    pub fn total(&self) -> u64 {
        self.accesses.iter().sum()
    }
}

/// `part / whole` as a percentage with two decimals, truncated.
fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "n/a".into();
    }
    let bp = u128::from(part) * 10_000 / u128::from(whole);
    format!("{}.{:02}%", bp / 100, bp % 100)
}

impl fmt::Display for Summary {
    /// The report `lmm replay lackey` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kb = PAGE_SIZE / 1024;
        writeln!(
            f,
            "lackey trace: {} ({} lines, {} valgrind lines skipped)",
            self.file, self.lines, self.messages
        )?;
        write!(f, "accesses: {} (", self.total())?;
        for (i, k) in Kind::ALL.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{} {}", k.letter(), self.count(*k))?;
        }
        writeln!(f, ")")?;
        if self.stopped_at_limit {
            writeln!(f, "stopped at --limit {}", self.total())?;
        }
        writeln!(f, "page touches: {}", self.page_touches)?;
        writeln!(
            f,
            "pages touched: {} ({} kB)",
            self.pages_touched,
            self.pages_touched * kb
        )?;
        writeln!(
            f,
            "areas made: {} ({} pages mapped anonymous on first touch, {} made executable)",
            self.areas_made, self.pages_mapped, self.pages_made_exec
        )?;
        if self.failed > 0 {
            writeln!(
                f,
                "failed accesses: {} (first: {})",
                self.failed,
                self.first_failure.as_deref().unwrap_or("")
            )?;
        }
        let s = &self.stats;
        writeln!(
            f,
            "faults: {} (minor {}, major {})",
            s.minor_faults + s.major_faults,
            s.minor_faults,
            s.major_faults
        )?;
        writeln!(f, "RSS: {} pages ({} kB)", s.rss_pages, s.rss_pages * kb)?;
        writeln!(
            f,
            "TLB: {} hits, {} misses, hit rate {}",
            s.tlb_hits,
            s.tlb_misses,
            percent(s.tlb_hits, s.tlb_hits + s.tlb_misses)
        )
    }
}

/// A set of virtual page numbers, as bitmaps of 512 pages (2 MiB) each:
/// 64 bytes per 2 MiB touched, however many pages a trace touches.
#[derive(Clone, Debug, Default)]
struct PageSet {
    chunks: HashMap<u64, [u64; 8]>,
    len: u64,
}

impl PageSet {
    fn split(vpn: u64) -> (u64, usize, u64) {
        let bit = vpn & 511;
        (vpn >> 9, (bit >> 6) as usize, 1 << (bit & 63))
    }

    fn contains(&self, vpn: u64) -> bool {
        let (chunk, word, mask) = Self::split(vpn);
        self.chunks.get(&chunk).is_some_and(|c| c[word] & mask != 0)
    }

    fn insert(&mut self, vpn: u64) -> bool {
        let (chunk, word, mask) = Self::split(vpn);
        let c = self.chunks.entry(chunk).or_default();
        let new = c[word] & mask == 0;
        c[word] |= mask;
        self.len += u64::from(new);
        new
    }

    fn remove(&mut self, vpn: u64) -> bool {
        let (chunk, word, mask) = Self::split(vpn);
        let Some(c) = self.chunks.get_mut(&chunk) else {
            return false;
        };
        let had = c[word] & mask != 0;
        c[word] &= !mask;
        self.len -= u64::from(had);
        had
    }
}

/// The replay's state between accesses.
struct Engine<'t> {
    target: &'t mut dyn LackeyTarget,
    keep_going: bool,
    /// Pages accessed successfully.
    touched: PageSet,
    /// Pages the replay mapped without exec, and with exec.
    made_rw: PageSet,
    made_rwx: PageSet,
    /// The last page read or written, and the last page fetched from,
    /// successfully: another access of the same kind to it needs nothing
    /// first (pages stay touched, and a page fetched from is not one the
    /// replay mapped without exec). Two, because code and data alternate.
    last_data: Option<u64>,
    last_fetch: Option<u64>,
    areas: u64,
    page_touches: u64,
    pages_made_exec: u64,
}

impl Engine<'_> {
    fn made(&self, vpn: u64, exec: bool) -> bool {
        if exec {
            self.made_rwx.contains(vpn)
        } else {
            self.made_rw.contains(vpn)
        }
    }

    /// Neighbours of `vpn` the replay mapped with protection `exec`.
    fn neighbours(&self, vpn: u64, exec: bool) -> u64 {
        let left = vpn.checked_sub(1).is_some_and(|v| self.made(v, exec));
        let right = vpn.checked_add(1).is_some_and(|v| self.made(v, exec));
        u64::from(left) + u64::from(right)
    }

    /// Records that the replay mapped `vpn` with `exec`: a new run, unless
    /// it extends one or joins two.
    fn add_made(&mut self, vpn: u64, exec: bool) {
        let n = self.neighbours(vpn, exec);
        self.areas = self.areas + 1 - n;
        if exec {
            self.made_rwx.insert(vpn);
        } else {
            self.made_rw.insert(vpn);
        }
    }

    fn remove_made_rw(&mut self, vpn: u64) {
        self.made_rw.remove(vpn);
        let n = self.neighbours(vpn, false);
        self.areas = self.areas + n - 1;
    }

    /// One MMU access of the page holding `va`.
    fn touch(&mut self, va: VirtAddr, kind: AccessKind) -> Result<(), (TargetError, String)> {
        let vpn = va.0 >> PAGE_SHIFT;
        let last = if kind == AccessKind::Exec {
            self.last_fetch
        } else {
            self.last_data
        };
        let fast = last == Some(vpn);
        if !fast {
            let page = VirtAddr(vpn << PAGE_SHIFT);
            if !self.touched.contains(vpn) && !self.target.is_mapped(va) {
                let exec = kind == AccessKind::Exec;
                self.target
                    .map_anon(page, PAGE_SIZE, exec)
                    .map_err(|e| (e, format!("mapping the page at {:#x}", page.0)))?;
                self.add_made(vpn, exec);
            }
            if kind == AccessKind::Exec && self.made_rw.contains(vpn) {
                self.target
                    .make_exec(page, PAGE_SIZE)
                    .map_err(|e| (e, format!("making the page at {:#x} executable", page.0)))?;
                self.remove_made_rw(vpn);
                self.add_made(vpn, true);
                self.pages_made_exec += 1;
            }
        }
        self.page_touches += 1;
        self.target
            .access(va, kind)
            .map_err(|e| (e, format!("{kind} at {:#x}", va.0)))?;
        if !fast {
            self.touched.insert(vpn);
            if kind == AccessKind::Exec {
                self.last_fetch = Some(vpn);
            } else {
                self.last_data = Some(vpn);
            }
        }
        Ok(())
    }

    /// Every MMU access of `rec`, in order.
    fn apply(&mut self, rec: &Record) -> Result<(), (TargetError, String)> {
        let first = rec.addr.0 >> PAGE_SHIFT;
        let last = rec.last().0 >> PAGE_SHIFT;
        for &kind in rec.kind.accesses() {
            self.touch(rec.addr, kind)?;
            for vpn in first + 1..=last {
                self.touch(VirtAddr(vpn << PAGE_SHIFT), kind)?;
            }
        }
        Ok(())
    }
}

/// Replays the trace `input` (named `file` in errors) on `target`.
pub fn replay(
    input: impl BufRead,
    file: &str,
    target: &mut dyn LackeyTarget,
    opts: &Options,
) -> Result<Summary, LackeyError> {
    let before = target.stats();
    let mut reader = Reader::new(input, file);
    let mut summary = Summary {
        file: file.to_string(),
        ..Summary::default()
    };
    let mut engine = Engine {
        target,
        keep_going: opts.keep_going,
        touched: PageSet::default(),
        made_rw: PageSet::default(),
        made_rwx: PageSet::default(),
        last_data: None,
        last_fetch: None,
        areas: 0,
        page_touches: 0,
        pages_made_exec: 0,
    };
    for rec in reader.by_ref() {
        if opts.limit.is_some_and(|l| summary.total() >= l) {
            // One more access (or a bad line) is there: the limit stopped
            // the replay, not the end of the trace.
            summary.stopped_at_limit = true;
            break;
        }
        let rec = rec?;
        summary.accesses[rec.kind.index()] += 1;
        if let Err((err, what)) = engine.apply(&rec) {
            let fatal = matches!(err, TargetError::Unsupported(_)) || !engine.keep_going;
            let msg = format!("`{rec}`: {what}: {err}");
            if fatal {
                return Err(LackeyError::Target {
                    file: file.to_string(),
                    line: rec.line,
                    msg,
                });
            }
            summary.failed += 1;
            if summary.first_failure.is_none() {
                summary.first_failure = Some(format!("{file}:{}: {msg}", rec.line));
            }
        }
    }
    let after = engine.target.stats();
    // Lines replayed: without the one read past the limit.
    summary.lines = reader.lines() - usize::from(summary.stopped_at_limit);
    summary.messages = reader.messages();
    summary.superblocks = reader.superblocks();
    summary.page_touches = engine.page_touches;
    summary.pages_touched = engine.touched.len;
    summary.pages_mapped = engine.made_rw.len + engine.made_rwx.len;
    summary.areas_made = engine.areas;
    summary.pages_made_exec = engine.pages_made_exec;
    summary.stats = TargetStats {
        minor_faults: after.minor_faults.saturating_sub(before.minor_faults),
        major_faults: after.major_faults.saturating_sub(before.major_faults),
        rss_pages: after.rss_pages,
        tlb_hits: after.tlb_hits.saturating_sub(before.tlb_hits),
        tlb_misses: after.tlb_misses.saturating_sub(before.tlb_misses),
    };
    Ok(summary)
}

/// The page reference string of a trace: the virtual page number of every
/// page each access touches, in order (an access that straddles pages
/// references each; an `M`, a load then a store of the same bytes, is one
/// reference per page, as a page-replacement policy sees it). With `limit`,
/// only the first `limit` accesses. This is what `--frames`/`--sweep`
/// simulate, and what a machine run with a frame limit replays.
pub fn reference_string(
    input: impl BufRead,
    file: &str,
    limit: Option<u64>,
) -> Result<Vec<u64>, LackeyError> {
    let mut refs = Vec::new();
    let n = limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    for rec in Reader::new(input, file).take(n) {
        let rec = rec?;
        let first = rec.addr.0 >> PAGE_SHIFT;
        let last = rec.last().0 >> PAGE_SHIFT;
        refs.extend(first..=last);
    }
    Ok(refs)
}

// ---------------------------------------------------------------------------
// The command line.

/// The usage of `lmm replay lackey`.
pub const USAGE: &str = "usage: lmm replay lackey FILE [--keep-going] [--limit N]\n       \
    lmm replay lackey FILE [--limit N] --frames N [--policy P]\n       \
    lmm replay lackey FILE [--limit N] --sweep N,N,... [--policy P,P,...] [--svg FILE]\n  \
    FILE: valgrind --tool=lackey --trace-mem=yes output (gzip or not; - for stdin)\n  \
    P: fifo, lru, clock, age, opt or linux (--frames default linux, --sweep default all)";

/// The arguments of `lmm replay lackey`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CliArgs {
    /// The trace (`-`: standard input).
    pub file: String,
    /// How to replay.
    pub opts: Options,
    /// `--frames`/`--sweep`: simulate page replacement on the trace's
    /// reference string instead of replaying it on the machine.
    pub policy: Option<PolicyArgs>,
}

/// Parses the arguments after `lmm replay lackey`.
pub fn parse_args(args: &[String]) -> Result<CliArgs, LackeyError> {
    let usage = |msg: String| LackeyError::Usage(format!("{msg}\n{USAGE}"));
    let mut file = None;
    let mut opts = Options::default();
    let mut policy = PolicyArgs::default();
    let mut policy_given = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |what: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| usage(format!("{a}: expected {what}")))
        };
        match a.as_str() {
            "--frames" => {
                let v = value("a number of frames")?;
                policy.frames = Some(policy::parse_frames(&v, "--frames").map_err(usage)?);
                policy_given = true;
            }
            "--policy" => {
                let v = value("a policy name")?;
                policy.policies = policy::parse_policies(&v).map_err(usage)?;
                policy_given = true;
            }
            "--sweep" => {
                let v = value("comma-separated frame counts")?;
                policy.sweep = Some(policy::parse_sweep(&v).map_err(usage)?);
                policy_given = true;
            }
            "--svg" => {
                policy.svg = Some(value("an output FILE")?);
                policy_given = true;
            }
            "--keep-going" => opts.keep_going = true,
            "--limit" => {
                let v = it
                    .next()
                    .ok_or_else(|| usage("--limit: expected a number of accesses".into()))?;
                let n = v
                    .parse()
                    .map_err(|_| usage(format!("--limit {v:?}: expected a number of accesses")))?;
                opts.limit = Some(n);
            }
            s if s.starts_with("--") => return Err(usage(format!("unknown option {s:?}"))),
            s => {
                if file.replace(s.to_string()).is_some() {
                    return Err(usage(format!("unexpected argument {s:?}: one FILE only")));
                }
            }
        }
    }
    let file = file.ok_or_else(|| usage("expected a trace FILE".into()))?;
    let policy = if policy_given {
        if opts.keep_going {
            return Err(usage(
                "--keep-going applies to the replay on the machine, not to --frames/--sweep".into(),
            ));
        }
        Some(policy.finish().map_err(usage)?)
    } else {
        None
    };
    Ok(CliArgs { file, opts, policy })
}

/// `lmm replay lackey FILE [--keep-going] [--limit N]`: replays the trace on
/// `target` and prints the [`Summary`] to `out`.
pub fn run_cli(
    args: &[String],
    target: &mut dyn LackeyTarget,
    out: &mut dyn Write,
) -> Result<Summary, LackeyError> {
    let args = parse_args(args)?;
    if args.policy.is_some() {
        return Err(LackeyError::Usage(
            "--frames/--sweep simulate without a machine: run them with run_policy_cli".into(),
        ));
    }
    let input = open(Path::new(&args.file))?;
    let summary = replay(input, &args.file, target, &args.opts)?;
    write!(out, "{summary}").map_err(|e| LackeyError::Io {
        file: "<output>".into(),
        line: 0,
        msg: e.to_string(),
    })?;
    Ok(summary)
}

/// `lmm replay lackey FILE [--limit N] --frames N [--policy P]` or
/// `... --sweep N,N,... [--policy P,...] [--svg FILE]`: reads the trace's
/// [`reference_string`] and runs it through the policies (see
/// [`policy::run`] for the report), writing `lackey trace: FILE` and the
/// report to `out`. With `machine` and `--frames`, each policy runs on a
/// process of a machine booted from it, with real swap
/// ([`policy::run_machine`]). `args` must have [`CliArgs::policy`].
/// `progress(done, total)` follows the runs (one per policy and frame
/// count), for a progress bar.
pub fn run_policy_cli(
    args: &CliArgs,
    machine: Option<&machine::MachineConfig>,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<policy::PolicyReport, LackeyError> {
    let Some(p) = &args.policy else {
        return Err(LackeyError::Usage(format!(
            "expected --frames N or --sweep N,N,...\n{USAGE}"
        )));
    };
    let input = open(Path::new(&args.file))?;
    let refs = reference_string(input, &args.file, args.opts.limit)?;
    writeln!(out, "lackey trace: {}", args.file).map_err(|e| LackeyError::Io {
        file: "<output>".into(),
        line: 0,
        msg: e.to_string(),
    })?;
    match (machine, p.frames) {
        (Some(config), Some(frames)) => {
            policy::run_machine(&refs, &args.file, p, frames, config, out, progress)
        }
        _ => policy::run(&refs, &args.file, p, out, progress),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(kind: Kind, addr: u64, size: u64) -> Line {
        Line::Access {
            kind,
            addr: VirtAddr(addr),
            size,
        }
    }

    #[test]
    fn parses_what_lackey_writes() {
        assert_eq!(
            parse_line(b"I  04010d0,3"),
            Ok(access(Kind::Instr, 0x4010d0, 3))
        );
        assert_eq!(
            parse_line(b" S 1ffefffd78,8"),
            Ok(access(Kind::Store, 0x1ffefffd78, 8))
        );
        assert_eq!(
            parse_line(b" L 00402000,1"),
            Ok(access(Kind::Load, 0x402000, 1))
        );
        assert_eq!(
            parse_line(b" M 0040bffc,8\r"),
            Ok(access(Kind::Modify, 0x40bffc, 8))
        );
        assert_eq!(
            parse_line(b" L FFFFFFFFFFFFFFFF,1"),
            Ok(access(Kind::Load, u64::MAX, 1))
        );
        assert_eq!(
            parse_line(b"==8875== Command: /bin/true"),
            Ok(Line::Message)
        );
        assert_eq!(parse_line(b"==8875== "), Ok(Line::Message));
        assert_eq!(parse_line(b"--8875-- warning: x"), Ok(Line::Message));
        assert_eq!(parse_line(b"**8875** internal"), Ok(Line::Message));
        assert_eq!(
            parse_line(b"SB 04010d0"),
            Ok(Line::Superblock(VirtAddr(0x4010d0)))
        );
        assert_eq!(parse_line(b""), Ok(Line::Blank));
        assert_eq!(parse_line(b"  \r"), Ok(Line::Blank));
    }

    #[test]
    fn rejects_what_lackey_does_not_write() {
        let err = |s: &[u8]| parse_line(s).unwrap_err();
        assert!(err(b"hello").starts_with("expected an access"));
        assert!(err(b"==12= x").starts_with("expected an access"));
        assert!(err(b"==== x").starts_with("expected an access"));
        assert!(err(b"I04010d0,3").starts_with("expected a blank after `I`"));
        assert!(err(b"I  ,3").starts_with("expected a hexadecimal address after `I`"));
        assert!(err(b" S 10000000000000000,1").starts_with("expected an address of at most 64"));
        assert!(err(b" S 1000").starts_with("expected `,` and a decimal size"));
        assert!(err(b" S 1000:8").starts_with("expected `,` and a decimal size"));
        assert!(err(b" S 1000,").starts_with("expected a decimal size after `,`"));
        assert!(err(b" S 1000,x").starts_with("expected a decimal size after `,`"));
        assert!(err(b" S 1000,8 junk").starts_with("expected the end of the line"));
        assert!(err(b" S 1000,8x").starts_with("expected the end of the line"));
        assert_eq!(
            err(b" S 1000,0"),
            "expected a size of at least 1 byte, found 0"
        );
        assert!(err(b" S 1000,65537").starts_with("expected a size of at most 65536"));
        assert!(err(b" S 1000,99999999999999999999999").starts_with("expected a size of at most"));
        assert!(err(b" L ffffffffffffffff,2").starts_with("expected an access that ends below"));
        assert!(err(b"SB zz").starts_with("expected a hexadecimal address after `SB`"));
        assert!(err(b"\xff\xfe").starts_with("expected an access"));
    }

    #[test]
    fn reader_counts_lines_and_stops_at_the_first_error() {
        let text = b"==1== banner\nI  1000,2\n\n L 2000,4\nSB 1000\n S 3000,8\nbad\n S 4000,8\n";
        let mut r = Reader::new(&text[..], "t.lk");
        let got: Vec<_> = r.by_ref().collect();
        assert_eq!(got.len(), 4);
        assert_eq!(
            got[2],
            Ok(Record {
                line: 6,
                kind: Kind::Store,
                addr: VirtAddr(0x3000),
                size: 8
            })
        );
        let Err(LackeyError::Parse(e)) = &got[3] else {
            panic!("{got:?}")
        };
        assert_eq!((e.file.as_str(), e.line), ("t.lk", 7));
        assert_eq!(r.messages(), 2);
        assert_eq!(r.superblocks(), 1);
    }

    #[test]
    fn reader_refuses_an_endless_line() {
        let text = vec![b'='; MAX_LINE + 10];
        let got: Vec<_> = Reader::new(&text[..], "t.lk").collect();
        assert_eq!(got.len(), 1);
        assert!(got[0]
            .as_ref()
            .unwrap_err()
            .to_string()
            .starts_with("t.lk:1: expected a line of at most"));
        // Exactly MAX_LINE bytes and no newline is still a line.
        let mut text = b"==1==".to_vec();
        text.resize(MAX_LINE, b'x');
        assert_eq!(Reader::new(&text[..], "t.lk").count(), 0);
    }

    /// A line is parsed in place, or copied when it straddles two fills of
    /// the reader's buffer: both give the same records, line numbers and
    /// errors, whatever the buffer's size.
    #[test]
    fn reader_gives_the_same_records_whatever_its_buffer() {
        let text = b"==9== start\nI  0400a2c0,3\n L 1ffefffd48,8\r\n\nSB 400a2c0\n M 0x,1\n S 10,4";
        let whole: Vec<_> = Reader::new(&text[..], "t.lk").collect();
        assert_eq!(whole.len(), 3, "{whole:?}");
        assert_eq!(whole[1].as_ref().unwrap().line, 3);
        assert!(whole[2]
            .as_ref()
            .unwrap_err()
            .to_string()
            .starts_with("t.lk:6: "));
        for cap in [1, 2, 5, 13, 64] {
            let r = io::BufReader::with_capacity(cap, &text[..]);
            let got: Vec<_> = Reader::new(r, "t.lk").collect();
            assert_eq!(got, whole, "capacity {cap}");
        }
        // The last line needs no newline.
        let tail = b" S 10,4";
        let got: Vec<_> = Reader::new(io::BufReader::with_capacity(3, &tail[..]), "t.lk").collect();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].as_ref().unwrap().addr, VirtAddr(0x10));
        // A line one byte too long is refused even with its newline there.
        let mut long = vec![b'='; MAX_LINE + 1];
        long.extend_from_slice(b"\n L 10,4\n");
        let got: Vec<_> = Reader::new(&long[..], "t.lk").collect();
        assert_eq!(got.len(), 1);
        assert!(got[0]
            .as_ref()
            .unwrap_err()
            .to_string()
            .starts_with("t.lk:1: expected a line of at most"));
    }

    proptest::proptest! {
        /// The one-pass reader of lackey's own format agrees with the
        /// general parser on every line it accepts, and accepts lackey's.
        #[test]
        fn canonical_access_agrees_with_the_general_parser(
            prefix in proptest::sample::select(vec!["I  ", " L ", " S ", " M ", "I ", " L", "  L "]),
            addr in proptest::prop_oneof![0u64..0x1_0000, proptest::num::u64::ANY],
            width in 1usize..20,
            size in proptest::prop_oneof![0u64..600, proptest::num::u64::ANY],
            tail in proptest::sample::select(vec!["", " ", "x", ",1"]),
        ) {
            let line = format!("{prefix}{addr:0width$x},{size}{tail}");
            let general = parse_any_line(line.as_bytes());
            match canonical_access(line.as_bytes()) {
                Some(fast) => proptest::prop_assert_eq!(Ok(fast), general),
                None => {
                    let canonical = ["I  ", " L ", " S ", " M "].contains(&prefix)
                        && tail.is_empty()
                        && format!("{addr:0width$x}").len() <= 16
                        && (1..=512).contains(&size)
                        && addr.checked_add(size - 1).is_some();
                    proptest::prop_assert!(!canonical, "{line:?} not read in one pass");
                }
            }
        }
    }

    #[test]
    fn page_set_counts_distinct_pages() {
        let mut s = PageSet::default();
        assert!(s.insert(5));
        assert!(!s.insert(5));
        assert!(s.insert(u64::MAX >> 12));
        assert!(s.insert(511) && s.insert(512));
        assert_eq!(s.len, 4);
        assert!(s.contains(512) && !s.contains(513));
        assert!(s.remove(5) && !s.remove(5) && !s.remove(1 << 40));
        assert_eq!(s.len, 3);
    }

    #[test]
    fn reference_string_is_one_reference_per_page_per_access() {
        // A fetch in page 1; an M straddling pages 1 and 2 (once each, not
        // twice); a store in page 3; valgrind lines skipped.
        let text = b"==1== x\nI  1000,2\n M 1ffe,4\n S 3000,1\n L 3001,1\n";
        assert_eq!(
            reference_string(&text[..], "t", None),
            Ok(vec![1, 1, 2, 3, 3])
        );
        assert_eq!(reference_string(&text[..], "t", Some(2)), Ok(vec![1, 1, 2]));
        assert_eq!(reference_string(&text[..], "t", Some(0)), Ok(vec![]));
        let err = reference_string(&b"I  1000,2\nbad\n"[..], "t", None).unwrap_err();
        assert!(
            err.to_string().starts_with("t:2: expected an access"),
            "{err}"
        );
    }

    #[test]
    fn percent_truncates_to_two_decimals() {
        assert_eq!(percent(2, 3), "66.66%");
        assert_eq!(percent(1, 1), "100.00%");
        assert_eq!(percent(0, 0), "n/a");
        assert_eq!(percent(u64::MAX, u64::MAX), "100.00%");
    }

    #[test]
    fn args() {
        let a = |v: &[&str]| parse_args(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            a(&["t.lk", "--keep-going", "--limit", "10"]),
            Ok(CliArgs {
                file: "t.lk".into(),
                opts: Options {
                    keep_going: true,
                    limit: Some(10)
                },
                policy: None,
            })
        );
        assert_eq!(
            a(&["t.lk", "--sweep", "8,4", "--policy", "lru,opt", "--svg", "o.svg"])
                .unwrap()
                .policy,
            Some(PolicyArgs {
                frames: None,
                policies: vec!["lru".into(), "opt".into()],
                sweep: Some(vec![4, 8]),
                svg: Some("o.svg".into()),
            })
        );
        assert_eq!(
            a(&["t.lk", "--frames", "3"])
                .unwrap()
                .policy
                .unwrap()
                .policies,
            ["linux"]
        );
        for bad in [
            &[][..],
            &["a", "b"],
            &["a", "--limit"],
            &["a", "--limit", "x"],
            &["--x", "a"],
            &["a", "--frames"],
            &["a", "--frames", "0"],
            &["a", "--policy", "lfu", "--frames", "2"],
            &["a", "--policy", "lru"],
            &["a", "--frames", "2", "--sweep", "2"],
            &["a", "--frames", "2", "--svg", "x.svg"],
            &["a", "--frames", "2", "--keep-going"],
        ] {
            assert!(matches!(a(bad), Err(LackeyError::Usage(_))), "{bad:?}");
        }
    }
}
