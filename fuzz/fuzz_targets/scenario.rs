//! The scenario language on arbitrary input, two ways chosen by the first
//! byte: (even) the rest as script text, mutated from the seed corpus of
//! `scenarios/*.rhai`; (odd) a program built from the bytes, a sequence of
//! calls of lmm's scenario functions with hostile arguments, each in a
//! `try` so that one refused call does not end the run. A panic, an abort
//! or a run longer than libFuzzer's `-timeout` is a finding; an `Err` is
//! the expected answer to bad input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use machine::MachineConfig;

/// Argument kinds of the generated calls.
#[derive(Clone, Copy)]
enum K {
    /// An integer: interesting values or the last result `v`.
    Int,
    /// A process id: 1, 2, 3, `v`, or a hostile one.
    Pid,
    /// A user or kernel address.
    Addr,
    /// A length or size.
    Len,
    /// A GFP string.
    Gfp,
    /// PROT_* flags.
    Prot,
    /// MAP_* flags.
    Map,
    /// Short text.
    Text,
    /// A file path.
    Path,
    /// An madvise advice.
    Advice,
    /// An O_* flag string.
    Open,
    /// A sysctl name.
    Sysctl,
    /// A /proc file name.
    Proc,
    /// A slab flags string.
    SlabFlags,
    /// An array of integers.
    Array,
    /// An argv array.
    Argv,
}

use K::*;

const FUNCS: &[(&str, &[K])] = &[
    ("alloc_pages", &[Gfp, Int]),
    ("alloc_pages_on", &[Int, Gfp, Int]),
    ("free_pages", &[Int, Int]),
    ("free_pages_on", &[Int, Int, Int]),
    ("pfn_phys", &[Int]),
    ("write_phys", &[Addr, Text]),
    ("read_phys", &[Addr, Len]),
    ("proc", &[Proc]),
    ("dmesg", &[]),
    ("nr_free_pages", &[]),
    ("drain_pages", &[]),
    ("check", &[]),
    ("sysctl", &[Sysctl, Int]),
    ("spawn", &[Text]),
    ("exec", &[Pid, Path, Argv]),
    ("mmap", &[Pid, Addr, Len, Prot, Map]),
    ("mmap_file", &[Pid, Addr, Len, Prot, Map, Path, Len]),
    ("munmap", &[Pid, Addr, Len]),
    ("mprotect", &[Pid, Addr, Len, Prot]),
    ("mremap", &[Pid, Addr, Len, Len, Map, Addr]),
    ("brk", &[Pid, Addr]),
    ("madvise", &[Pid, Addr, Len, Advice]),
    ("mlock", &[Pid, Addr, Len]),
    ("munlock", &[Pid, Addr, Len]),
    ("mlockall", &[Pid, Map]),
    ("munlockall", &[Pid]),
    ("msync", &[Pid, Addr, Len, Map]),
    ("mincore", &[Pid, Addr, Len]),
    ("read_user", &[Pid, Addr, Len]),
    ("write_user", &[Pid, Addr, Text]),
    ("exit", &[Pid]),
    ("exit", &[Pid, Int]),
    ("fork", &[Pid]),
    ("wait", &[Pid]),
    ("load", &[Pid, Addr, Len]),
    ("store", &[Pid, Addr, Text]),
    ("touch", &[Pid, Addr, Len, Text]),
    ("faults", &[Pid]),
    ("vmstat", &[Text]),
    ("maps", &[Pid]),
    ("smaps", &[Pid]),
    ("smaps_rollup", &[Pid]),
    ("status", &[Pid]),
    ("stat", &[Pid]),
    ("open", &[Pid, Path, Open]),
    ("memfd_create", &[Pid, Text]),
    ("close", &[Pid, Int]),
    ("dup", &[Pid, Int]),
    ("unlink", &[Path]),
    ("write_fd", &[Pid, Int, Text]),
    ("pwrite", &[Pid, Int, Text, Len]),
    ("read_fd", &[Pid, Int, Len]),
    ("pread", &[Pid, Int, Len, Len]),
    ("ftruncate", &[Pid, Int, Len]),
    ("fsync", &[Pid, Int]),
    ("lseek", &[Pid, Int, Int, Int]),
    ("fstat_size", &[Pid, Int]),
    ("mmap_fd", &[Pid, Addr, Len, Prot, Map, Int, Len]),
    ("vmalloc", &[Len]),
    ("vzalloc", &[Len]),
    ("vfree", &[Addr]),
    ("vmap", &[Array]),
    ("ioremap", &[Addr, Len]),
    ("kmap", &[Int]),
    ("kunmap", &[Int]),
    ("kmap_atomic", &[Int, Int]),
    ("kunmap_atomic", &[Int, Addr]),
    ("page_address", &[Int]),
    ("kernel_write", &[Addr, Text]),
    ("kernel_read", &[Addr, Len]),
    ("kmem_cache_create", &[Text, Len, Len, SlabFlags]),
    ("kmem_cache_alloc", &[Int, Gfp]),
    ("kmem_cache_free", &[Int, Addr]),
    ("kmem_cache_shrink", &[Int]),
    ("kmem_cache_destroy", &[Int]),
    ("kmalloc", &[Len, Gfp]),
    ("kzalloc", &[Len, Gfp]),
    ("krealloc", &[Addr, Len, Gfp]),
    ("kfree", &[Addr]),
    ("ksize", &[Addr]),
    ("boot", &[Int]),
];

const INTS: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "-1",
    "10",
    "11",
    "64",
    "4096",
    "0x100",
    "0x1000",
    "0x10000",
    "0x7fffffff",
    "9223372036854775807",
    "-9223372036854775808",
    "v",
    "v + 1",
    "v - 1",
    "v * 2",
    "v ^ 1",
];
const ADDRS: &[&str] = &[
    "0",
    "v",
    "v + 4096",
    "v + 1",
    "0x1000",
    "0x10000",
    "0x400000",
    "0x555555554000",
    "0x7ffff7fff000",
    "0x7ffffffff000",
    "0x800000000000",
    "0xffff888000000000",
    "0xffffc90000000000",
    "-1",
    "-4096",
    "0x100000",
    "0x1000000",
    "4095",
];
const LENS: &[&str] = &[
    "0",
    "1",
    "4095",
    "4096",
    "8192",
    "0x200000",
    "0x400000",
    "0x10000000",
    "0x40000000",
    "-1",
    "-4096",
    "9223372036854775807",
    "v",
    "3",
    "100000",
];
const GFPS: &[&str] = &[
    "\"GFP_KERNEL\"",
    "\"GFP_ATOMIC\"",
    "\"GFP_HIGHUSER_MOVABLE\"",
    "\"GFP_DMA\"",
    "\"GFP_DMA32\"",
    "\"GFP_KERNEL|__GFP_ZERO\"",
    "\"GFP_NOWAIT\"",
    "\"\"",
    "\"bogus\"",
    "\"GFP_KERNEL|__GFP_COMP\"",
    "\"__GFP_NOFAIL\"",
];
const PROTS: &[&str] = &[
    "\"PROT_READ\"",
    "\"PROT_READ|PROT_WRITE\"",
    "\"PROT_NONE\"",
    "\"PROT_READ|PROT_EXEC\"",
    "\"PROT_WRITE\"",
    "\"PROT_READ|PROT_WRITE|PROT_EXEC\"",
    "\"PROT_GROWSDOWN|PROT_READ\"",
    "\"x\"",
];
const MAPS: &[&str] = &[
    "\"MAP_PRIVATE|MAP_ANONYMOUS\"",
    "\"MAP_SHARED|MAP_ANONYMOUS\"",
    "\"MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED\"",
    "\"MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE\"",
    "\"MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE\"",
    "\"MAP_SHARED\"",
    "\"MAP_PRIVATE\"",
    "\"MAP_PRIVATE|MAP_ANONYMOUS|MAP_GROWSDOWN\"",
    "\"MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED\"",
    "\"MREMAP_MAYMOVE\"",
    "\"MREMAP_MAYMOVE|MREMAP_FIXED\"",
    "\"MREMAP_MAYMOVE|MREMAP_DONTUNMAP\"",
    "\"MCL_CURRENT|MCL_FUTURE\"",
    "\"MCL_CURRENT\"",
    "\"MS_SYNC\"",
    "\"MS_ASYNC|MS_INVALIDATE\"",
    "\"\"",
    "\"MAP_PRIVATE|MAP_ANONYMOUS|MAP_32BIT\"",
    "\"MAP_SHARED_VALIDATE\"",
];
const TEXTS: &[&str] = &[
    "\"\"",
    "\"x\"",
    "\"hello\"",
    "\"r\"",
    "\"w\"",
    "\"x\"",
    "\"pgfault\"",
    "\"nr_anon_pages\"",
    "\"\\0\\0\"",
    "\"abcdefghijklmnopqrstuvwxyz\"",
    "\"é\"",
];
const PATHS: &[&str] = &[
    "\"/bin/true\"",
    "\"/bin/ls\"",
    "\"/dev/zero\"",
    "\"/tmp/lmm-fuzz-f\"",
    "\"/\"",
    "\"\"",
    "\"/nonexistent\"",
    "\"/etc/passwd\"",
    "\"/proc/self/maps\"",
    "\"/dev/null\"",
    "\"../../tests/fixtures/bin/mmap_basic-static\"",
];
const ADVICES: &[&str] = &[
    "\"MADV_DONTNEED\"",
    "\"MADV_FREE\"",
    "\"MADV_WILLNEED\"",
    "\"MADV_HUGEPAGE\"",
    "\"MADV_NOHUGEPAGE\"",
    "\"MADV_DONTFORK\"",
    "\"MADV_REMOVE\"",
    "\"MADV_COLD\"",
    "\"MADV_PAGEOUT\"",
    "\"MADV_POPULATE_WRITE\"",
    "\"bogus\"",
];
const OPENS: &[&str] = &[
    "\"O_RDONLY\"",
    "\"O_RDWR|O_CREAT\"",
    "\"O_WRONLY\"",
    "\"O_RDWR\"",
    "\"O_RDWR|O_CREAT|O_TRUNC\"",
    "\"\"",
];
const SYSCTLS: &[&str] = &[
    "\"vm.min_free_kbytes\"",
    "\"vm.watermark_scale_factor\"",
    "\"vm.legacy_va_layout\"",
    "\"vm.bogus\"",
];
const PROCS: &[&str] = &[
    "\"buddyinfo\"",
    "\"zoneinfo\"",
    "\"meminfo\"",
    "\"vmstat\"",
    "\"pagetypeinfo\"",
    "\"iomem\"",
    "\"memblock/memory\"",
    "\"memblock/reserved\"",
    "\"slabinfo\"",
    "\"vmallocinfo\"",
    "\"x\"",
];
const SLAB_FLAGS: &[&str] = &[
    "\"\"",
    "\"SLAB_HWCACHE_ALIGN\"",
    "\"SLAB_POISON|SLAB_RED_ZONE|SLAB_STORE_USER\"",
    "\"SLAB_PANIC\"",
    "\"bogus\"",
];
const ARRAYS: &[&str] = &["[]", "[v]", "[v, v]", "[0, 1, 2]", "[-1]"];
const ARGVS: &[&str] = &["[]", "[\"x\"]", "[\"ls\", \"-l\"]", "[\"\"]"];
const BOOTS: &[&str] = &[
    "#{ram: \"64M\"}",
    "#{ram: \"16M\"}",
    "#{ram: \"1G\", cpus: 4}",
    "#{arch: \"x86\", ram: \"128M\"}",
    "#{arch: \"x86-pae\", ram: \"64M\"}",
    "#{arch: \"arm64\", ram: \"64M\"}",
    "#{ram: \"64M\", nodes: 2}",
    "#{ram: \"64M\", la57: true}",
    "#{ram: \"64M\", slab: \"slab\"}",
    "#{ram: \"1\"}",
    "#{cpus: 0}",
    "#{bogus: 1}",
];

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn pick<'t>(&mut self, table: &[&'t str]) -> &'t str {
        table[self.byte().unwrap_or(0) as usize % table.len()]
    }
}

fn program(data: &[u8]) -> String {
    let mut b = Bytes(data);
    let mut s = String::from("let v = 0;\nlet p = spawn(\"f\");\n");
    while let Some(i) = b.byte() {
        let (name, kinds) = FUNCS[i as usize % FUNCS.len()];
        let args: Vec<&str> = kinds
            .iter()
            .map(|k| match k {
                Int => b.pick(INTS),
                Pid => b.pick(&["p", "1", "2", "3", "v", "0", "-1", "99999"]),
                Addr => b.pick(ADDRS),
                Len => b.pick(LENS),
                Gfp => b.pick(GFPS),
                Prot => b.pick(PROTS),
                Map => b.pick(MAPS),
                Text => b.pick(TEXTS),
                Path => b.pick(PATHS),
                Advice => b.pick(ADVICES),
                Open => b.pick(OPENS),
                Sysctl => b.pick(SYSCTLS),
                Proc => b.pick(PROCS),
                SlabFlags => b.pick(SLAB_FLAGS),
                Array => b.pick(ARRAYS),
                Argv => b.pick(ARGVS),
            })
            .collect();
        let call = if name == "boot" {
            format!("boot({})", b.pick(BOOTS))
        } else {
            format!("{name}({})", args.join(", "))
        };
        // Keep integer results for later calls; other types are dropped.
        s.push_str(&format!(
            "try {{ let r = {call}; if type_of(r) == \"i64\" {{ v = r; }} }} catch (e) {{}}\n"
        ));
    }
    s
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let script = if mode & 1 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        program(rest)
    };
    if std::env::var_os("LMM_FUZZ_PRINT").is_some() {
        eprintln!("----- script -----\n{script}------------------");
    }
    let config = MachineConfig {
        ram: 64 << 20,
        ..MachineConfig::default()
    };
    if let Ok((_, machine)) = workload::scenario::run("fuzz.rhai", &script, config) {
        // Every refused call must leave the machine intact.
        if let Err(e) = machine.check() {
            panic!("invariants broken after an accepted script: {e}\n{script}");
        }
    }
});
