//! The lackey replay on real traces recorded with valgrind
//! (`tests/fixtures/lackey/`, see its README) and on made-up ones, against a
//! fake target: a page table of mapped pages, a set of resident pages and a
//! direct-mapped TLB.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use mm::errno::Errno;
use mm::VirtAddr;
use proptest::prelude::*;
use workload::lackey::{
    maybe_gunzip, open, replay, run_cli, AccessKind, Kind, LackeyError, LackeyTarget, Options,
    Reader, Summary, TargetError, TargetStats,
};

const PAGE: u64 = 4096;
const TLB_SLOTS: usize = 64;

/// The fake machine side.
struct Fake {
    /// Mapped pages (by page number) and whether each is executable.
    mapped: BTreeMap<u64, bool>,
    /// Pages faulted in.
    resident: BTreeSet<u64>,
    /// A direct-mapped TLB of page numbers.
    tlb: [Option<u64>; TLB_SLOTS],
    /// Every access, in order.
    log: Vec<(u64, AccessKind)>,
    /// Every map_anon call.
    maps: Vec<(u64, u64, bool)>,
    stats: TargetStats,
}

impl Fake {
    fn new() -> Fake {
        Fake {
            mapped: BTreeMap::new(),
            resident: BTreeSet::new(),
            tlb: [None; TLB_SLOTS],
            log: Vec::new(),
            maps: Vec::new(),
            stats: TargetStats::default(),
        }
    }

    /// A fake with `pages` pages mapped at `start` already (like an exec'd
    /// program's VMAs).
    fn with_vma(start: u64, pages: u64, exec: bool) -> Fake {
        let mut f = Fake::new();
        for p in 0..pages {
            f.mapped.insert(start / PAGE + p, exec);
        }
        f
    }
}

impl LackeyTarget for Fake {
    fn access(&mut self, va: VirtAddr, kind: AccessKind) -> Result<(), TargetError> {
        let vpn = va.0 / PAGE;
        let Some(&exec) = self.mapped.get(&vpn) else {
            return Err(TargetError::Signal("SIGSEGV (SEGV_MAPERR)".into()));
        };
        if kind == AccessKind::Exec && !exec {
            return Err(TargetError::Signal("SIGSEGV (SEGV_ACCERR)".into()));
        }
        self.log.push((va.0, kind));
        let slot = (vpn % TLB_SLOTS as u64) as usize;
        if self.tlb[slot] == Some(vpn) {
            self.stats.tlb_hits += 1;
            return Ok(());
        }
        self.stats.tlb_misses += 1;
        if self.resident.insert(vpn) {
            self.stats.minor_faults += 1;
            self.stats.rss_pages += 1;
        }
        self.tlb[slot] = Some(vpn);
        Ok(())
    }

    fn is_mapped(&self, va: VirtAddr) -> bool {
        self.mapped.contains_key(&(va.0 / PAGE))
    }

    fn map_anon(&mut self, start: VirtAddr, len: u64, exec: bool) -> Result<(), TargetError> {
        assert_eq!((start.0 % PAGE, len % PAGE), (0, 0));
        assert!(len > 0);
        let first = start.0 / PAGE;
        let n = len / PAGE;
        if (first..first + n).any(|p| self.mapped.contains_key(&p)) {
            return Err(TargetError::Errno(Errno::EEXIST));
        }
        for p in first..first + n {
            self.mapped.insert(p, exec);
        }
        self.maps.push((start.0, len, exec));
        Ok(())
    }

    fn make_exec(&mut self, start: VirtAddr, len: u64) -> Result<(), TargetError> {
        for p in start.0 / PAGE..(start.0 + len) / PAGE {
            let e = self.mapped.get_mut(&p).ok_or(Errno::ENOMEM)?;
            *e = true;
            let slot = (p % TLB_SLOTS as u64) as usize;
            if self.tlb[slot] == Some(p) {
                self.tlb[slot] = None;
            }
        }
        Ok(())
    }

    fn stats(&self) -> TargetStats {
        self.stats
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/lackey")
        .join(name)
}

/// A fixture's text, decompressed.
fn raw(name: &str) -> String {
    let mut s = String::new();
    open(&fixture(name))
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    s
}

fn run(text: &str, target: &mut Fake, opts: &Options) -> Result<Summary, LackeyError> {
    replay(text.as_bytes(), "t.lk", target, opts)
}

/// The accesses of a trace, parsed by the simplest code that works on
/// well-formed lackey output: (kind letter, address, size).
fn simple_parse(text: &str) -> Vec<(char, u64, u64)> {
    let mut v = Vec::new();
    for line in text.lines() {
        let t = line.trim_start();
        let Some(kind) = ['I', 'L', 'S', 'M'].into_iter().find(|k| t.starts_with(*k)) else {
            continue;
        };
        let (a, s) = t[1..].trim().split_once(',').unwrap();
        v.push((
            kind,
            u64::from_str_radix(a, 16).unwrap(),
            s.parse().unwrap(),
        ));
    }
    v
}

/// The MMU accesses a trace must make, in order.
fn expected_log(accesses: &[(char, u64, u64)]) -> Vec<(u64, AccessKind)> {
    let mut v = Vec::new();
    for &(kind, addr, size) in accesses {
        let ops: &[AccessKind] = match kind {
            'I' => &[AccessKind::Exec],
            'L' => &[AccessKind::Read],
            'S' => &[AccessKind::Write],
            _ => &[AccessKind::Read, AccessKind::Write],
        };
        for &op in ops {
            let mut at = addr;
            while at <= addr + (size - 1) {
                v.push((at, op));
                at = (at / PAGE + 1) * PAGE;
            }
        }
    }
    v
}

/// Distinct pages of a trace, each with whether it was ever fetched from.
fn expected_pages(accesses: &[(char, u64, u64)]) -> BTreeMap<u64, bool> {
    let mut pages = BTreeMap::new();
    for &(kind, addr, size) in accesses {
        for p in addr / PAGE..=(addr + size - 1) / PAGE {
            *pages.entry(p).or_insert(false) |= kind == 'I';
        }
    }
    pages
}

/// Runs of contiguous pages with the same protection.
fn runs(pages: &BTreeMap<u64, bool>) -> u64 {
    let mut n = 0;
    let mut prev: Option<(u64, bool)> = None;
    for (&p, &x) in pages {
        if prev != Some((p.wrapping_sub(1), x)) {
            n += 1;
        }
        prev = Some((p, x));
    }
    n
}

/// `grep -c` of each kind, and of valgrind's lines.
fn grep_counts(text: &str) -> ([u64; 4], u64) {
    let mut kinds = [0; 4];
    let mut banner = 0;
    for line in text.lines() {
        for (i, prefix) in ["I  ", " L ", " S ", " M "].iter().enumerate() {
            kinds[i] += u64::from(line.starts_with(prefix));
        }
        banner += u64::from(line.starts_with("=="));
    }
    (kinds, banner)
}

const FIXTURES: [&str; 2] = ["touch.lk", "true.lk.gz"];

#[test]
fn parsed_counts_equal_grep_counts() {
    for name in FIXTURES {
        let text = raw(name);
        let (kinds, banner) = grep_counts(&text);
        let mut reader = Reader::new(open(&fixture(name)).unwrap(), name);
        let mut counts = [0u64; 4];
        for rec in reader.by_ref() {
            counts[rec.unwrap().kind as usize] += 1;
        }
        assert_eq!(counts, kinds, "{name}");
        assert_eq!(reader.messages(), banner, "{name}");
        assert_eq!(reader.lines(), text.lines().count(), "{name}");
        assert!(kinds.iter().all(|&k| k > 0), "{name}: every kind occurs");
    }
}

#[test]
fn real_traces_touch_exactly_their_pages_in_order() {
    for name in FIXTURES {
        let text = raw(name);
        let accesses = simple_parse(&text);
        let pages = expected_pages(&accesses);
        let mut fake = Fake::new();
        let s = run(&text, &mut fake, &Options::default()).unwrap();

        assert_eq!(
            fake.log,
            expected_log(&accesses),
            "{name}: accesses in order"
        );
        let resident: Vec<u64> = fake.resident.iter().copied().collect();
        let want: Vec<u64> = pages.keys().copied().collect();
        assert_eq!(resident, want, "{name}: the distinct pages");
        assert_eq!(s.pages_touched, pages.len() as u64);
        assert_eq!(s.page_touches, fake.log.len() as u64);
        // Nothing was mapped beforehand: every page was mapped by the
        // replay, one at a time, and is executable iff it was fetched from.
        assert_eq!(s.pages_mapped, pages.len() as u64);
        assert_eq!(fake.maps.len(), pages.len());
        assert_eq!(fake.mapped, pages, "{name}: protections");
        assert_eq!(s.areas_made, runs(&pages), "{name}");
        assert_eq!(s.stats.minor_faults, pages.len() as u64);
        assert_eq!(s.stats.rss_pages, pages.len() as u64);
        assert_eq!(
            s.stats.tlb_hits + s.stats.tlb_misses,
            s.page_touches,
            "{name}"
        );
        assert_eq!(s.total(), accesses.len() as u64);
        assert_eq!(s.failed, 0);
    }
}

/// The addresses `touch` printed.
fn touch_symbols() -> (u64, u64) {
    let out = std::fs::read_to_string(fixture("touch.stdout")).unwrap();
    let sym = |name: &str| {
        let line = out
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} 0x")))
            .unwrap();
        u64::from_str_radix(line, 16).unwrap()
    };
    (sym("arr"), sym("word"))
}

#[test]
fn touch_program_does_what_its_source_says() {
    let (arr, word) = touch_symbols();
    let mut fake = Fake::new();
    run(&raw("touch.lk"), &mut fake, &Options::default()).unwrap();
    let in_arr = |va: u64| (arr..arr + 16 * PAGE).contains(&va);
    let arr_log: Vec<(u64, AccessKind)> = fake
        .log
        .iter()
        .copied()
        .filter(|(va, _)| in_arr(*va))
        .collect();
    let w = AccessKind::Write;
    let r = AccessKind::Read;
    let mut want: Vec<(u64, AccessKind)> = (0..16).map(|i| (arr + i * PAGE, w)).collect();
    // The straddling 8-byte store: both pages, in order.
    want.extend([(arr + 4 * PAGE - 4, w), (arr + 4 * PAGE, w)]);
    want.extend((0..16).map(|i| (arr + i * PAGE + 1, r)));
    // incq: lackey's M, a load of both pages then a store of both.
    let m = arr + 8 * PAGE - 4;
    want.extend([(m, r), (m + 4, r), (m, w), (m + 4, w)]);
    assert_eq!(arr_log, want);
    assert!(fake.log.contains(&(word, w)));
    // The code page was fetched from, the data pages were not.
    assert_eq!(fake.mapped.get(&(arr / PAGE)), Some(&false));
    assert!(fake
        .log
        .iter()
        .any(|&(va, k)| k == AccessKind::Exec && fake.mapped[&(va / PAGE)]));
}

#[test]
fn report_of_the_touch_trace() {
    let mut fake = Fake::new();
    let mut out = Vec::new();
    let file = fixture("touch.lk").to_string_lossy().into_owned();
    let s = run_cli(std::slice::from_ref(&file), &mut fake, &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    let body = out.split_once('\n').unwrap().1;
    assert_eq!(
        out.lines().next().unwrap(),
        format!("lackey trace: {file} (616 lines, 25 valgrind lines skipped)")
    );
    assert_eq!(
        body,
        "accesses: 591 (I 478, L 52, S 60, M 1)\n\
         page touches: 595\n\
         pages touched: 20 (80 kB)\n\
         areas made: 3 (20 pages mapped anonymous on first touch, 0 made executable)\n\
         faults: 20 (minor 20, major 0)\n\
         RSS: 20 pages (80 kB)\n\
         TLB: 575 hits, 20 misses, hit rate 96.63%\n"
    );
    assert_eq!(s.count(Kind::Modify), 1);
    // Deterministic: the same bytes again.
    let mut again = Vec::new();
    run_cli(&[file], &mut Fake::new(), &mut again).unwrap();
    assert_eq!(String::from_utf8(again).unwrap(), out);
}

#[test]
fn malformed_lines_name_file_and_line() {
    let cases: &[(&str, &str)] = &[
        ("==1== hi\nI  1000,2\nhello\n", "t.lk:3: expected an access"),
        (
            "I  1000,2\n L 2000\n",
            "t.lk:2: expected `,` and a decimal size",
        ),
        (
            "\n\n S 1000,0\n",
            "t.lk:3: expected a size of at least 1 byte",
        ),
        (
            " M zz,4\n",
            "t.lk:1: expected a hexadecimal address after `M`",
        ),
        (
            "I  1000,2 3\n",
            "t.lk:1: expected the end of the line after the size",
        ),
        (
            " L ffffffffffffffff,8\n",
            "t.lk:1: expected an access that ends below 2^64",
        ),
    ];
    for (text, want) in cases {
        let err = run(text, &mut Fake::new(), &Options::default()).unwrap_err();
        assert!(matches!(err, LackeyError::Parse(_)), "{err:?}");
        assert!(err.to_string().starts_with(want), "{text:?}: {err}");
    }
}

#[test]
fn io_errors_name_the_file() {
    let err = run_cli(
        &["/nonexistent/x.lk".into()],
        &mut Fake::new(),
        &mut Vec::new(),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/nonexistent/x.lk: No such file or directory"),
        "{err}"
    );
    // A gzip file cut short is a read error after the last whole line.
    let gz = std::fs::read(fixture("true.lk.gz")).unwrap();
    let cut = gz[..gz.len() / 2].to_vec();
    let input = maybe_gunzip(std::io::Cursor::new(cut)).unwrap();
    let err = replay(input, "cut.lk.gz", &mut Fake::new(), &Options::default()).unwrap_err();
    let LackeyError::Io { file, line, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(file, "cut.lk.gz");
    assert!(*line > 1000, "{err}");
}

#[test]
fn a_fault_stops_the_replay_unless_keep_going() {
    // A non-executable area exists already: fetching from it is SEGV_ACCERR.
    let text = " L 10000,4\nI  10000,4\n S 20000,8\n";
    let err = run(
        text,
        &mut Fake::with_vma(0x10000, 1, false),
        &Options::default(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "t.lk:2: `I 0x10000,4`: instruction fetch at 0x10000: SIGSEGV (SEGV_ACCERR)"
    );
    let mut fake = Fake::with_vma(0x10000, 1, false);
    let opts = Options {
        keep_going: true,
        ..Options::default()
    };
    let s = run(text, &mut fake, &opts).unwrap();
    assert_eq!(s.failed, 1);
    assert_eq!(
        s.first_failure.as_deref(),
        Some("t.lk:2: `I 0x10000,4`: instruction fetch at 0x10000: SIGSEGV (SEGV_ACCERR)")
    );
    assert_eq!((s.pages_touched, s.pages_mapped, s.areas_made), (2, 1, 1));
    assert!(s
        .to_string()
        .contains("failed accesses: 1 (first: t.lk:2: "));
    // An M whose read faults makes no write.
    let mut fake = Fake::new();
    let text = " M 5000,8\n";
    fake.mapped.insert(5, false);
    fake.resident.insert(5);
    struct Refuse(Fake);
    impl LackeyTarget for Refuse {
        fn access(&mut self, va: VirtAddr, kind: AccessKind) -> Result<(), TargetError> {
            if kind == AccessKind::Read {
                return Err(TargetError::Signal("SIGBUS (BUS_ADRERR)".into()));
            }
            self.0.access(va, kind)
        }
        fn is_mapped(&self, va: VirtAddr) -> bool {
            self.0.is_mapped(va)
        }
        fn map_anon(&mut self, s: VirtAddr, l: u64, e: bool) -> Result<(), TargetError> {
            self.0.map_anon(s, l, e)
        }
        fn make_exec(&mut self, s: VirtAddr, l: u64) -> Result<(), TargetError> {
            self.0.make_exec(s, l)
        }
        fn stats(&self) -> TargetStats {
            self.0.stats()
        }
    }
    let mut t = Refuse(fake);
    let s = replay(text.as_bytes(), "m.lk", &mut t, &opts).unwrap();
    assert_eq!((s.failed, s.page_touches), (1, 1));
    assert!(t.0.log.is_empty());
}

#[test]
fn mapping_errors_and_unsupported_targets_stop() {
    struct NoMap(Fake);
    impl LackeyTarget for NoMap {
        fn access(&mut self, va: VirtAddr, kind: AccessKind) -> Result<(), TargetError> {
            self.0.access(va, kind)
        }
        fn is_mapped(&self, va: VirtAddr) -> bool {
            self.0.is_mapped(va)
        }
        fn map_anon(&mut self, s: VirtAddr, _: u64, _: bool) -> Result<(), TargetError> {
            if s.0 >= 0x8000_0000 {
                Err(TargetError::Unsupported("no user access yet".into()))
            } else {
                Err(TargetError::Errno(Errno::ENOMEM))
            }
        }
        fn make_exec(&mut self, s: VirtAddr, l: u64) -> Result<(), TargetError> {
            self.0.make_exec(s, l)
        }
        fn stats(&self) -> TargetStats {
            self.0.stats()
        }
    }
    let err = replay(
        &b" S 1234,2\n"[..],
        "t.lk",
        &mut NoMap(Fake::new()),
        &Options::default(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "t.lk:1: `S 0x1234,2`: mapping the page at 0x1000: -1 ENOMEM"
    );
    let keep = Options {
        keep_going: true,
        ..Options::default()
    };
    let s = replay(&b" S 1234,2\n"[..], "t.lk", &mut NoMap(Fake::new()), &keep).unwrap();
    assert_eq!(s.failed, 1);
    let err = replay(
        &b" S 80000000,2\n"[..],
        "t.lk",
        &mut NoMap(Fake::new()),
        &keep,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "t.lk:1: `S 0x80000000,2`: mapping the page at 0x80000000: no user access yet"
    );
}

#[test]
fn areas_follow_contiguity_and_protection() {
    let opts = Options::default();
    let areas = |text: &str| {
        let mut fake = Fake::new();
        let s = run(text, &mut fake, &opts).unwrap();
        (s.areas_made, s.pages_made_exec, fake)
    };
    // Three pages touched out of order: one run.
    assert_eq!(areas(" S 1000,1\n S 3000,1\n S 2000,1\n").0, 1);
    // A fetched page next to data pages is an area of its own...
    assert_eq!(areas(" S 1000,1\n S 3000,1\n S 2000,1\nI  4000,1\n").0, 2);
    // ...a fetch from the middle data page splits the run in three...
    let (n, made_exec, fake) = areas(" S 1000,1\n S 3000,1\n S 2000,1\nI  2000,1\n");
    assert_eq!((n, made_exec), (3, 1));
    assert_eq!(
        fake.mapped.into_iter().collect::<Vec<_>>(),
        [(1, false), (2, true), (3, false)]
    );
    // ...and one that straddles it and the last page, in two.
    let (n, made_exec, fake) = areas(" S 1000,1\n S 3000,1\n S 2000,1\nI  2ffe,4\n");
    assert_eq!((n, made_exec), (2, 2));
    assert_eq!(
        fake.mapped.into_iter().collect::<Vec<_>>(),
        [(1, false), (2, true), (3, true)]
    );
    // A straddling access maps both pages; fetched pages between two data
    // runs join each other, not them.
    assert_eq!(areas(" L 1ffc,8\n L 5000,1\nI  3000,1\nI  4000,1\n").0, 3);
    // Pages mapped beforehand are not made, and split nothing.
    let mut fake = Fake::with_vma(0x2000, 1, false);
    let s = run(" S 1000,1\n S 2000,1\n S 3000,1\n", &mut fake, &opts).unwrap();
    assert_eq!((s.areas_made, s.pages_mapped, s.pages_touched), (2, 2, 3));
}

#[test]
fn limit_stops_after_n_accesses() {
    let text = "I  1000,1\n L 2000,1\n S 3000,1\n M 4000,1\n";
    let opts = Options {
        limit: Some(2),
        ..Options::default()
    };
    let s = run(text, &mut Fake::new(), &opts).unwrap();
    assert_eq!((s.total(), s.lines, s.stopped_at_limit), (2, 2, true));
    assert!(s.to_string().contains("\nstopped at --limit 2\n"));
    let opts = Options {
        limit: Some(4),
        ..Options::default()
    };
    let s = run(text, &mut Fake::new(), &opts).unwrap();
    assert_eq!((s.total(), s.lines, s.stopped_at_limit), (4, 4, false));
    // A bad line after the limit is never reached.
    let s = run(&format!("{text}junk\n"), &mut Fake::new(), &opts).unwrap();
    assert_eq!((s.total(), s.lines, s.stopped_at_limit), (4, 4, true));
}

#[test]
fn stats_are_differences_except_rss() {
    let mut fake = Fake::new();
    fake.stats = TargetStats {
        minor_faults: 100,
        major_faults: 7,
        rss_pages: 50,
        tlb_hits: 1000,
        tlb_misses: 10,
    };
    let s = run(" S 1000,1\n S 1008,1\n", &mut fake, &Options::default()).unwrap();
    assert_eq!(
        s.stats,
        TargetStats {
            minor_faults: 1,
            major_faults: 0,
            rss_pages: 51,
            tlb_hits: 1,
            tlb_misses: 1,
        }
    );
}

#[test]
fn gzip_and_plain_give_the_same_replay() {
    let plain = raw("true.lk.gz");
    let a = run(&plain, &mut Fake::new(), &Options::default()).unwrap();
    let gz: Box<dyn BufRead> = open(&fixture("true.lk.gz")).unwrap();
    let b = replay(gz, "t.lk", &mut Fake::new(), &Options::default()).unwrap();
    assert_eq!(a, b);
}

/// One access of a generated trace: kind, page (in a small window), offset, size.
fn access_strategy() -> impl Strategy<Value = (char, u64, u64, u64)> {
    (
        prop::sample::select(vec!['I', 'L', 'S', 'M']),
        0u64..24,
        0u64..PAGE,
        1u64..=600,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any bytes: an error or a summary, never a panic.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2000),
                                   keep_going in any::<bool>()) {
        let opts = Options { keep_going, ..Options::default() };
        let _ = replay(&bytes[..], "fuzz.lk", &mut Fake::new(), &opts);
        let _ = Reader::new(&bytes[..], "fuzz.lk").count();
    }

    /// Lines that look almost like lackey's: never a panic, and every
    /// error names a line of the input.
    #[test]
    fn near_miss_lines_never_panic(lines in prop::collection::vec(
        "( |  )?[ILSMB=x-]{0,2}  ?[0-9a-fA-FxX]{0,18},?[0-9]{0,21}[ ,x]?", 0..40)) {
        let text = lines.join("\n");
        match run(&text, &mut Fake::new(), &Options::default()) {
            Ok(_) => {}
            Err(LackeyError::Parse(e)) => prop_assert!(e.line >= 1 && e.line <= lines.len().max(1)),
            Err(e) => prop_assert!(false, "unexpected {e:?}"),
        }
    }

    /// Generated traces: the fake sees exactly the model's pages, in order,
    /// and the areas made are the model's runs.
    #[test]
    fn replay_matches_a_model(accesses in prop::collection::vec(access_strategy(), 0..200)) {
        let accesses: Vec<(char, u64, u64)> = accesses
            .into_iter()
            .map(|(k, page, off, size)| (k, 0x10_0000 + page * PAGE + off, size))
            .collect();
        let mut text = String::from("==1== start\n");
        for &(k, addr, size) in &accesses {
            let prefix = if k == 'I' { "I  " } else { match k { 'L' => " L ", 'S' => " S ", _ => " M " } };
            text.push_str(&format!("{prefix}{addr:08x},{size}\n"));
        }
        let mut fake = Fake::new();
        let s = run(&text, &mut fake, &Options::default()).unwrap();
        let pages = expected_pages(&accesses);
        prop_assert_eq!(&fake.log, &expected_log(&accesses));
        prop_assert_eq!(&fake.mapped, &pages);
        prop_assert_eq!(s.areas_made, runs(&pages));
        prop_assert_eq!(s.pages_touched, pages.len() as u64);
        let resident: HashSet<u64> = fake.resident.iter().copied().collect();
        prop_assert_eq!(resident, pages.keys().copied().collect::<HashSet<u64>>());
    }
}
