//! A deterministic corpus of malformed executables for testing exec against
//! the real kernel: hand-made ELF64 x86-64 files, mutations of real small
//! binaries (headers, program headers, PT_INTERP, alignment, overlapping
//! segments, huge sizes, a .bss that cannot be cleared, truncation) and
//! `#!` scripts, all derived from one seed.
//!
//! The files refer to each other by relative path (`./c0012` as an
//! interpreter), so a corpus is written into one directory and executed
//! with that directory as the working directory; their bytes, and so their
//! hashes, do not depend on where the directory is. The same seed and base
//! binaries always give the same corpus: `tools/record/exec_errno.sh`
//! records the host kernel's answer for each file, and
//! `crates/machine/tests/exec_differential.rs` regenerates the corpus and
//! compares lmm's answer with it.
//!
//! Changing what this module generates changes the corpus: re-record the
//! fixture (the test says so when a hash no longer matches).

use std::fmt::Write as _;

/// Bump when the generator changes what it makes (the fixture records it).
pub const GENERATOR_VERSION: u32 = 1;

/// One file of the corpus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    /// File name inside the corpus directory (`c0000`, `c0001`, ...).
    pub name: String,
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// Permission bits to give the file (`0o755` mostly).
    pub mode: u32,
    /// How the file was made, for reports.
    pub what: String,
}

/// FNV-1a 64 of `bytes`: the key of a file in the recorded fixture.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// splitmix64: a small, fast, well-mixed deterministic generator.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// True with probability `num`/`den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
    /// One element of `items`.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

const TASK_SIZE: u64 = super::TASK_SIZE;
const EHDR: usize = 64;
const PHDR: usize = 56;
const PT_LOAD: u32 = 1;
const PT_INTERP: u32 = 3;
const PT_PHDR: u32 = 6;
const PT_GNU_STACK: u32 = 0x6474_e551;

/// Interesting 64-bit values for sizes, offsets and addresses.
const EDGES: &[u64] = &[
    0,
    1,
    0xfff,
    0x1000,
    0x1001,
    0x2000,
    0x10_0000,
    0x20_0000,
    0x40_0000,
    0x1000_0000,
    0x4000_0000,
    1 << 32,
    1 << 40,
    1 << 46,
    TASK_SIZE - 0x1000,
    TASK_SIZE - 1,
    TASK_SIZE,
    TASK_SIZE + 0x1000,
    1 << 47,
    1 << 62,
    1 << 63,
    u64::MAX - 0xfff,
    u64::MAX,
];

/// Interpreter paths, by what they are on every machine we run on.
const HOST_PATHS: &[&str] = &[
    "/lib64/ld-linux-x86-64.so.2",
    "/bin/sh",
    "/bin/true",
    "/nonexistent/ld.so",
    "/etc/passwd",
    "/dev/null",
    "/tmp",
    ".",
    "",
    "/lib64/ld-linux-x86-64.so.2/x",
];

fn put16(b: &mut [u8], off: usize, v: u16) {
    if let Some(s) = b.get_mut(off..off + 2) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}
fn put32(b: &mut [u8], off: usize, v: u32) {
    if let Some(s) = b.get_mut(off..off + 4) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}
fn put64(b: &mut [u8], off: usize, v: u64) {
    if let Some(s) = b.get_mut(off..off + 8) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}
fn get64(b: &[u8], off: usize) -> u64 {
    b.get(off..off + 8)
        .map(|s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8])))
        .unwrap_or(0)
}
fn get32(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .map(|s| u32::from_le_bytes(s.try_into().unwrap_or([0; 4])))
        .unwrap_or(0)
}
fn get16(b: &[u8], off: usize) -> u16 {
    b.get(off..off + 2)
        .map(|s| u16::from_le_bytes(s.try_into().unwrap_or([0; 2])))
        .unwrap_or(0)
}

/// A program header to build.
#[derive(Clone, Copy, Debug)]
struct Ph {
    p_type: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
}

/// Builds an ELF64 LE x86-64 file: header, program headers right after
/// it, then `body` bytes (the file is `size` bytes long, zero-filled where
/// nothing was put).
fn build_elf(e_type: u16, entry: u64, phs: &[Ph], size: usize) -> Vec<u8> {
    let mut b = vec![0u8; size.max(EHDR + PHDR * phs.len())];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = 2; // ELFCLASS64
    b[5] = 1; // ELFDATA2LSB
    b[6] = 1; // EV_CURRENT
    put16(&mut b, 16, e_type);
    put16(&mut b, 18, 62); // EM_X86_64
    put32(&mut b, 20, 1);
    put64(&mut b, 24, entry);
    put64(&mut b, 32, EHDR as u64);
    put16(&mut b, 52, EHDR as u16);
    put16(&mut b, 54, PHDR as u16);
    put16(&mut b, 56, phs.len() as u16);
    for (i, p) in phs.iter().enumerate() {
        let o = EHDR + i * PHDR;
        put32(&mut b, o, p.p_type);
        put32(&mut b, o + 4, p.flags);
        put64(&mut b, o + 8, p.offset);
        put64(&mut b, o + 16, p.vaddr);
        put64(&mut b, o + 24, p.vaddr);
        put64(&mut b, o + 32, p.filesz);
        put64(&mut b, o + 40, p.memsz);
        put64(&mut b, o + 48, p.align);
    }
    // Some recognisable code bytes (a `ud2` sled): never run.
    for i in (EHDR + PHDR * phs.len()..b.len()).step_by(2) {
        if i + 1 < b.len() {
            b[i] = 0x0f;
            b[i + 1] = 0x0b;
        }
    }
    b
}

/// Where the interpreter string of a hand-made file goes.
const INTERP_OFF: usize = 0x800;
/// Bytes reserved for it.
const INTERP_ROOM: usize = 0x100;

/// The corpus generator.
pub struct Generator<'a> {
    rng: Rng,
    bases: &'a [Vec<u8>],
    cases: Vec<Case>,
    count: usize,
}

impl<'a> Generator<'a> {
    fn name(i: usize) -> String {
        format!("c{i:04}")
    }

    /// A relative path to another case of the corpus (one of the first
    /// `count`: all exist once the corpus is written).
    fn sibling(&mut self) -> String {
        format!(
            "./{}",
            Self::name(self.rng.below(self.count as u64) as usize)
        )
    }

    /// An interpreter path: a host path, a sibling, or junk.
    fn interp_path(&mut self) -> String {
        match self.rng.below(10) {
            0..=3 => self.rng.pick(HOST_PATHS).to_string(),
            4..=8 => self.sibling(),
            _ => {
                let n = self.rng.below(300) as usize + 1;
                let mut s = "./".to_string();
                for _ in 0..n {
                    s.push('a');
                }
                s
            }
        }
    }

    fn edge(&mut self) -> u64 {
        let v = self.rng.pick(EDGES);
        match self.rng.below(4) {
            0 => v.wrapping_add(self.rng.below(0x2000)),
            1 => v.wrapping_sub(self.rng.below(0x2000)),
            _ => v,
        }
    }

    /// A value for a program header field, near `old` or an edge.
    fn field(&mut self, old: u64) -> u64 {
        match self.rng.below(8) {
            0 => self.edge(),
            1 => old.wrapping_add(self.rng.below(0x3000)),
            2 => old.wrapping_sub(self.rng.below(0x3000)),
            3 => old.wrapping_mul(2),
            4 => old ^ (1 << self.rng.below(64)),
            5 => self.rng.next_u64(),
            6 => old & !0xfff,
            _ => old | self.rng.below(0x1000),
        }
    }

    /// A hand-made ELF with a few segments around the edge cases.
    fn handmade(&mut self) -> (Vec<u8>, String) {
        let r = &mut self.rng;
        let dyn_ = r.chance(1, 2);
        let base = if dyn_ { 0 } else { 0x40_0000 };
        let nload = r.below(4) as usize + if r.chance(1, 8) { 0 } else { 1 };
        let mut phs = Vec::new();
        let mut what = format!(
            "handmade {} {nload} loads",
            if dyn_ { "DYN" } else { "EXEC" }
        );
        let with_interp = r.chance(1, 3);
        let mut vaddr = base;
        let mut offset = 0u64;
        let mut file_end = 0x1000u64;
        for i in 0..nload {
            let flags = match r.below(6) {
                0 => 5, // R X
                1 => 6, // R W
                2 => 4, // R
                3 => 7, // RWX
                4 => 2, // W
                _ => r.below(8) as u32,
            };
            let filesz = match r.below(6) {
                0 => 0,
                1 => 0x1000,
                2 => 0x10,
                3 => r.below(0x3000),
                _ => r.below(0x800) + 1,
            };
            let memsz = match r.below(6) {
                0 => filesz,
                1 => filesz + r.below(0x4000),
                2 => filesz.saturating_sub(r.below(0x20)),
                3 => filesz + 0x1000 * (r.below(64) + 1),
                4 => filesz + r.below(0x10),
                _ => filesz + 1,
            };
            let sub = if i == 0 { 0 } else { r.below(0x1000) };
            let align = r.pick(&[0x1000u64, 0x1000, 0x20_0000, 0, 1, 0x10, 0x3000, 0x1_0000]);
            phs.push(Ph {
                p_type: PT_LOAD,
                flags,
                offset: offset + sub,
                vaddr: vaddr + sub,
                filesz,
                memsz,
                align,
            });
            file_end = file_end.max(offset + sub + filesz);
            let step = ((sub + memsz.max(filesz) + 0xfff) & !0xfff).max(0x1000);
            vaddr += step
                + if r.chance(1, 4) {
                    0x1000 * r.below(4)
                } else {
                    0
                };
            offset += ((sub + filesz + 0xfff) & !0xfff).max(0x1000);
        }
        let mut interp = None;
        if with_interp {
            let path = self.interp_path();
            what.push_str(&format!(" interp {path:?}"));
            let mut s = path.into_bytes();
            s.truncate(INTERP_ROOM - 1);
            s.push(0);
            interp = Some(s);
        }
        let r = &mut self.rng;
        if let Some(s) = &interp {
            phs.insert(
                0,
                Ph {
                    p_type: PT_INTERP,
                    flags: 4,
                    offset: INTERP_OFF as u64,
                    vaddr: base + INTERP_OFF as u64,
                    filesz: s.len() as u64,
                    memsz: s.len() as u64,
                    align: 1,
                },
            );
        }
        if r.chance(1, 3) {
            phs.push(Ph {
                p_type: PT_GNU_STACK,
                flags: r.pick(&[6, 7]),
                offset: 0,
                vaddr: 0,
                filesz: 0,
                memsz: 0,
                align: 16,
            });
        }
        if r.chance(1, 4) {
            phs.insert(
                0,
                Ph {
                    p_type: PT_PHDR,
                    flags: 4,
                    offset: EHDR as u64,
                    vaddr: base + EHDR as u64,
                    filesz: (PHDR * (phs.len() + 1)) as u64,
                    memsz: (PHDR * (phs.len() + 1)) as u64,
                    align: 8,
                },
            );
        }
        // The file usually holds every segment; sometimes it stops short.
        let size = match r.below(5) {
            0 => r.below(file_end + 0x1000) as usize,
            _ => file_end as usize,
        }
        .max(EHDR + PHDR * phs.len());
        let entry = base + 0x1000 + r.below(0x100);
        let mut b = build_elf(if dyn_ { 3 } else { 2 }, entry, &phs, size);
        if let Some(s) = interp {
            if b.len() < INTERP_OFF + s.len() {
                b.resize(INTERP_OFF + s.len(), 0);
            }
            b[INTERP_OFF..INTERP_OFF + s.len()].copy_from_slice(&s);
        }
        // Then, sometimes, one mutation more.
        if self.rng.chance(1, 3) {
            let m = self.mutate(&mut b);
            what.push_str(", ");
            what.push_str(&m);
        }
        (b, what)
    }

    /// Offsets of the program headers of `b` of type `t` (all if `None`).
    fn phdrs(b: &[u8], t: Option<u32>) -> Vec<usize> {
        let phoff = get64(b, 32);
        let phnum = get16(b, 56) as u64;
        if phoff > b.len() as u64 || phnum > 64 {
            return Vec::new();
        }
        (0..phnum)
            .map(|i| phoff as usize + i as usize * PHDR)
            .filter(|&o| o + PHDR <= b.len())
            .filter(|&o| t.is_none_or(|t| get32(b, o) == t))
            .collect()
    }

    /// One mutation of an ELF file in place; returns what it did.
    fn mutate(&mut self, b: &mut Vec<u8>) -> String {
        let loads = Self::phdrs(b, Some(PT_LOAD));
        let all = Self::phdrs(b, None);
        match self.rng.below(20) {
            0 => {
                // A header field.
                let (off, width, name) = self.rng.pick(&[
                    (4usize, 1usize, "EI_CLASS"),
                    (5, 1, "EI_DATA"),
                    (6, 1, "EI_VERSION"),
                    (7, 1, "EI_OSABI"),
                    (16, 2, "e_type"),
                    (18, 2, "e_machine"),
                    (20, 4, "e_version"),
                    (24, 8, "e_entry"),
                    (32, 8, "e_phoff"),
                    (52, 2, "e_ehsize"),
                    (54, 2, "e_phentsize"),
                    (56, 2, "e_phnum"),
                ]);
                let v = match width {
                    1 => self.rng.pick(&[0u64, 1, 2, 3, 0xff]),
                    2 => match name {
                        "e_type" => self.rng.pick(&[0u64, 1, 2, 3, 4, 0xfe00, 0xffff]),
                        "e_machine" => self.rng.pick(&[0u64, 3, 62, 183, 40, 0xffff]),
                        "e_phnum" => self.rng.pick(&[0u64, 1, 2, 73, 74, 1170, 0xffff]),
                        _ => self.rng.pick(&[0u64, 32, 55, 56, 57, 64, 0xffff]),
                    },
                    4 => self.rng.pick(&[0u64, 1, 2, 0xffff_ffff]),
                    _ => {
                        let old = get64(b, off);
                        self.field(old)
                    }
                };
                match width {
                    1 => b[off] = v as u8,
                    2 => put16(b, off, v as u16),
                    4 => put32(b, off, v as u32),
                    _ => put64(b, off, v),
                }
                format!("{name}={v:#x}")
            }
            1..=8 if !loads.is_empty() => {
                // A field of a PT_LOAD.
                let o = self.rng.pick(&loads);
                let (fo, name) = self.rng.pick(&[
                    (4usize, "p_flags"),
                    (8, "p_offset"),
                    (16, "p_vaddr"),
                    (32, "p_filesz"),
                    (40, "p_memsz"),
                    (40, "p_memsz"),
                    (48, "p_align"),
                ]);
                if fo == 4 {
                    let v = self.rng.below(8) as u32;
                    put32(b, o + 4, v);
                    return format!("load@{o:#x} p_flags={v}");
                }
                let old = get64(b, o + fo);
                let v = if fo == 48 {
                    self.rng.pick(&[
                        0u64,
                        1,
                        2,
                        0x10,
                        0x1000,
                        0x3000,
                        0x20_0000,
                        1 << 30,
                        1 << 63,
                    ])
                } else {
                    self.field(old)
                };
                put64(b, o + fo, v);
                format!("load@{o:#x} {name}={v:#x}")
            }
            9 => {
                // The type of any program header.
                if all.is_empty() {
                    return "nothing".into();
                }
                let o = self.rng.pick(&all);
                let v = self.rng.pick(&[
                    0u32,
                    PT_LOAD,
                    PT_INTERP,
                    PT_PHDR,
                    PT_GNU_STACK,
                    7,
                    0x6474_e552,
                    0x6474_e553,
                    0x7000_0003,
                ]);
                put32(b, o, v);
                format!("ph@{o:#x} p_type={v:#x}")
            }
            10 => {
                // Truncate.
                let n = b.len() as u64;
                let len = match self.rng.below(3) {
                    0 => self.rng.below(0x400.min(n) + 1),
                    _ => self.rng.below(n + 1),
                } as usize;
                b.truncate(len);
                format!("truncated at {len:#x}")
            }
            11 => {
                // Point PT_INTERP somewhere else.
                let interp = Self::phdrs(b, Some(PT_INTERP));
                let Some(&o) = interp.first() else {
                    return "no interp".into();
                };
                let path = self.interp_path();
                let mut s = path.clone().into_bytes();
                match self.rng.below(6) {
                    0 => {}                 // no NUL at the end
                    1 => s.extend(b"\0\0"), // extra NULs
                    _ => s.push(0),
                }
                let off = b.len();
                b.extend_from_slice(&s);
                put64(b, o + 8, off as u64);
                let filesz = match self.rng.below(8) {
                    0 => self.rng.pick(&[0u64, 1, 2, 4096, 4097, 1 << 40]),
                    _ => s.len() as u64,
                };
                put64(b, o + 32, filesz);
                format!("interp {path:?} filesz={filesz}")
            }
            12 if loads.len() >= 2 => {
                // Overlap or reorder two PT_LOADs.
                let a = self.rng.pick(&loads);
                let c = self.rng.pick(&loads);
                let va = get64(b, a + 16);
                let vc = get64(b, c + 16);
                if self.rng.chance(1, 2) {
                    put64(b, c + 16, (va & !0xfff) | (vc & 0xfff));
                    format!("load@{c:#x} over load@{a:#x}")
                } else {
                    put64(b, a + 16, vc);
                    put64(b, c + 16, va);
                    let oa = get64(b, a + 8);
                    let oc = get64(b, c + 8);
                    put64(b, a + 8, oc);
                    put64(b, c + 8, oa);
                    format!("swapped loads @{a:#x} @{c:#x}")
                }
            }
            13 if !loads.is_empty() => {
                // A .bss that cannot be cleared: a writable segment with
                // memsz > filesz whose last file page is beyond EOF.
                let o = *loads.last().unwrap_or(&loads[0]);
                let flags = get32(b, o + 4) | 2;
                put32(b, o + 4, flags);
                let filesz = get64(b, o + 32);
                let memsz = get64(b, o + 40).max(filesz.wrapping_add(0x2000));
                put64(b, o + 40, memsz);
                let off = get64(b, o + 8);
                let cut = (off & !0xfff).min(b.len() as u64);
                if self.rng.chance(2, 3) && cut >= 0x1000 {
                    b.truncate(cut as usize);
                }
                format!("bss beyond EOF load@{o:#x}")
            }
            14 if !loads.is_empty() => {
                // A huge .bss.
                let o = self.rng.pick(&loads);
                let filesz = get64(b, o + 32);
                let v = filesz.wrapping_add(self.rng.pick(&[
                    1u64 << 30,
                    1 << 36,
                    1 << 40,
                    1 << 45,
                    TASK_SIZE / 2,
                    TASK_SIZE,
                ]));
                put64(b, o + 40, v);
                format!("load@{o:#x} huge memsz={v:#x}")
            }
            15 => {
                // Random header bytes.
                let n = self.rng.below(4) + 1;
                let end = (EHDR + PHDR * 13).min(b.len());
                if end == 0 {
                    return "empty".into();
                }
                let mut s = String::from("bytes");
                for _ in 0..n {
                    let off = self.rng.below(end as u64) as usize;
                    let v = self.rng.next_u64() as u8;
                    b[off] = v;
                    let _ = write!(s, " {off:#x}={v:#x}");
                }
                s
            }
            16 => {
                // e_phoff/e_phnum moved.
                let v = self.rng.pick(&[
                    0u64,
                    1,
                    8,
                    0x40,
                    0x41,
                    0xfc8,
                    0xff0,
                    b.len() as u64 - 56.min(b.len() as u64),
                    b.len() as u64,
                    1 << 40,
                    u64::MAX - 8,
                ]);
                put64(b, 32, v);
                format!("e_phoff={v:#x}")
            }
            17 if !loads.is_empty() => {
                // A segment placed at or beyond TASK_SIZE, or at 0.
                let o = self.rng.pick(&loads);
                let v = self.rng.pick(&[
                    0u64,
                    0x1000,
                    0xf000,
                    0x1_0000,
                    TASK_SIZE - 0x1000,
                    TASK_SIZE - 0x2000,
                    TASK_SIZE,
                    0x7fff_f7ff_f000,
                    0x5555_5555_4000,
                    0xffff_8000_0000_0000,
                ]) | (get64(b, o + 8) & 0xfff);
                put64(b, o + 16, v);
                format!("load@{o:#x} p_vaddr={v:#x}")
            }
            18 => {
                // A second PT_INTERP or PT_GNU_STACK with PF_X.
                if all.is_empty() {
                    return "nothing".into();
                }
                let o = self.rng.pick(&all);
                if self.rng.chance(1, 2) {
                    put32(b, o, PT_GNU_STACK);
                    put32(b, o + 4, 7);
                    format!("ph@{o:#x} GNU_STACK rwx")
                } else {
                    let path = self.interp_path();
                    let off = b.len();
                    b.extend_from_slice(path.as_bytes());
                    b.push(0);
                    put32(b, o, PT_INTERP);
                    put64(b, o + 8, off as u64);
                    put64(b, o + 32, path.len() as u64 + 1);
                    format!("ph@{o:#x} interp {path:?}")
                }
            }
            _ => {
                // p_offset not congruent with p_vaddr, or misaligned both.
                let Some(&o) = loads.first() else {
                    return "no loads".into();
                };
                let d = self.rng.below(0x1000);
                let v = get64(b, o + 8).wrapping_add(d);
                put64(b, o + 8, v);
                if self.rng.chance(1, 2) {
                    let va = get64(b, o + 16).wrapping_add(d);
                    put64(b, o + 16, va);
                    format!("load@{o:#x} offset and vaddr +{d:#x}")
                } else {
                    format!("load@{o:#x} p_offset={v:#x}")
                }
            }
        }
    }

    /// A mutated real binary.
    fn mutant(&mut self) -> (Vec<u8>, String) {
        if self.bases.is_empty() {
            return self.handmade();
        }
        let i = self.rng.below(self.bases.len() as u64) as usize;
        let mut b = self.bases[i].clone();
        // Large bases are cut after their headers most of the time: exec
        // reads the first pages, and mapping past EOF is legal.
        if b.len() > 64 * 1024 && self.rng.chance(3, 4) {
            let keep = self.rng.pick(&[0x1000usize, 0x2000, 0x8000, 0x1_0000]);
            b.truncate(keep);
        }
        let n = 1 + self.rng.below(3);
        let mut what = format!("base{i}");
        for _ in 0..n {
            let m = self.mutate(&mut b);
            what.push_str(", ");
            what.push_str(&m);
        }
        (b, what)
    }

    /// A `#!` script.
    fn script(&mut self) -> (Vec<u8>, String) {
        let mut s = b"#!".to_vec();
        let r = &mut self.rng;
        let lead = r.pick(&["", " ", "\t", "  \t "]);
        s.extend_from_slice(lead.as_bytes());
        let path = self.interp_path();
        let r = &mut self.rng;
        s.extend_from_slice(path.as_bytes());
        match r.below(6) {
            0 => s.extend_from_slice(b" -x"),
            1 => s.extend_from_slice(b" \t-a  -b \t"),
            2 => s.extend_from_slice(b"\0-x"),
            3 => {
                let n = r.below(300) as usize;
                s.push(b' ');
                s.extend(std::iter::repeat_n(b'y', n));
            }
            _ => {}
        }
        match r.below(5) {
            0 => {}
            1 => s.extend_from_slice(b"\r\n"),
            _ => s.push(b'\n'),
        }
        s.extend_from_slice(b"echo never run\n");
        (s, format!("script {path:?}"))
    }

    fn one(&mut self, i: usize) -> Case {
        let (bytes, what) = match self.rng.below(20) {
            0..=6 => self.mutant(),
            7..=14 => self.handmade(),
            15..=17 => self.script(),
            18 => {
                // Tiny or odd files.
                let n = self.rng.below(80) as usize;
                let mut b: Vec<u8> = (0..n).map(|_| self.rng.next_u64() as u8).collect();
                let magic: &[u8] = self.rng.pick(&[
                    b"\x7fELF".as_slice(),
                    b"#!",
                    b"\x7fELF\x02\x01\x01",
                    b"",
                    b"#",
                ]);
                for (j, &m) in magic.iter().enumerate() {
                    if j < b.len() {
                        b[j] = m;
                    } else {
                        b.push(m);
                    }
                }
                (b, format!("{n} random bytes"))
            }
            19 if !self.bases.is_empty() && self.rng.chance(1, 2) => {
                // A dynamic base whose interpreter is another file of the
                // corpus (often a mutant: load_elf_interp's checks).
                let k = self.rng.below(self.bases.len() as u64) as usize;
                let mut b = self.bases[k].clone();
                let interp = Self::phdrs(&b, Some(PT_INTERP));
                let path = self.sibling();
                if let Some(&o) = interp.first() {
                    let off = b.len();
                    b.extend_from_slice(path.as_bytes());
                    b.push(0);
                    put64(&mut b, o + 8, off as u64);
                    put64(&mut b, o + 32, path.len() as u64 + 1);
                }
                (b, format!("base{k} interp {path:?}"))
            }
            _ => {
                // An intact base (or a hand-made file) with an odd mode.
                let (b, w) = if self.bases.is_empty() || self.rng.chance(1, 2) {
                    self.handmade()
                } else {
                    let k = self.rng.below(self.bases.len() as u64) as usize;
                    (self.bases[k].clone(), format!("base{k} intact"))
                };
                (b, w)
            }
        };
        let mode = match self.rng.below(40) {
            0 => 0o644,
            1 => 0o100,
            2 => 0o000,
            3 => 0o001,
            _ => 0o755,
        };
        Case {
            name: Self::name(i),
            bytes,
            mode,
            what,
        }
    }
}

/// The real binaries the corpus mutates, in this order: the fixture
/// programs of `tests/fixtures/bin/` (sources in `tools/record/progs/`).
pub const BASES: &[&str] = &[
    "mmap_basic-pie",
    "mmap_basic-nopie",
    "mmap_basic-static",
    "mmap_basic-static-pie",
    "mremap_brk-pie",
    "mremap_brk-nopie",
    "filemap-pie",
    "filemap-static",
];

/// Reads [`BASES`] from `dir` (the repository's `tests/fixtures/bin`).
pub fn load_bases(dir: &std::path::Path) -> std::io::Result<Vec<Vec<u8>>> {
    BASES.iter().map(|n| std::fs::read(dir.join(n))).collect()
}

/// Writes `cases` into `dir` (created if needed) with their modes.
pub fn write_corpus(dir: &std::path::Path, cases: &[Case]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    for c in cases {
        let p = dir.join(&c.name);
        // A previous corpus may have left the file without write rights.
        let _ = std::fs::remove_file(&p);
        std::fs::write(&p, &c.bytes)?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(c.mode))?;
    }
    Ok(())
}

/// The corpus for `seed`: `count` files mutated from `bases` (real small
/// binaries, may be empty) and made by hand.
pub fn generate(seed: u64, count: usize, bases: &[Vec<u8>]) -> Vec<Case> {
    let mut g = Generator {
        rng: Rng::new(seed),
        bases,
        cases: Vec::with_capacity(count),
        count,
    };
    for i in 0..count {
        let c = g.one(i);
        g.cases.push(c);
    }
    g.cases
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_varied() {
        let a = generate(7, 200, &[]);
        let b = generate(7, 200, &[]);
        assert_eq!(a, b);
        let c = generate(8, 200, &[]);
        assert_ne!(a, c);
        let scripts = a.iter().filter(|c| c.bytes.starts_with(b"#!")).count();
        let elves = a.iter().filter(|c| c.bytes.starts_with(b"\x7fELF")).count();
        assert!(
            scripts > 10 && elves > 100,
            "{scripts} scripts, {elves} ELF"
        );
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    }
}
