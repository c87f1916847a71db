//! The initial user stack: the argument and environment strings at the top
//! (fs/exec.c `bprm_stack_limits`, `copy_strings`, `remove_arg_zero`,
//! `setup_arg_pages`) and below them the ELF tables: platform string,
//! AT_RANDOM bytes, argc, argv, envp and the auxiliary vector
//! (fs/binfmt_elf.c `create_elf_tables`), byte for byte as Linux 6.18
//! x86-64 lays them out with ASLR off.
//!
//! Simplification: the strings are kept in a buffer until the stack VMA
//! exists, then written in one piece (Linux writes them into the new mm's
//! pages as it copies them).

use mm::errno::Errno;
use mm::types::{PAGE_MASK, PAGE_SIZE};

use super::{ExecParams, ARG_MAX, MAX_ARG_STRLEN, STK_LIM};

/// End of the auxiliary vector.
pub const AT_NULL: u64 = 0;
/// Address of the program headers of the program.
pub const AT_PHDR: u64 = 3;
/// Size of a program header entry.
pub const AT_PHENT: u64 = 4;
/// Number of program headers.
pub const AT_PHNUM: u64 = 5;
/// Page size.
pub const AT_PAGESZ: u64 = 6;
/// Load address of the interpreter.
pub const AT_BASE: u64 = 7;
/// Flags (AT_FLAGS_PRESERVE_ARGV0 only with binfmt_misc).
pub const AT_FLAGS: u64 = 8;
/// Entry point of the program.
pub const AT_ENTRY: u64 = 9;
/// Real uid.
pub const AT_UID: u64 = 11;
/// Effective uid.
pub const AT_EUID: u64 = 12;
/// Real gid.
pub const AT_GID: u64 = 13;
/// Effective gid.
pub const AT_EGID: u64 = 14;
/// Address of the platform string.
pub const AT_PLATFORM: u64 = 15;
/// CPU capabilities.
pub const AT_HWCAP: u64 = 16;
/// Frequency of times().
pub const AT_CLKTCK: u64 = 17;
/// Secure mode (setuid-like exec).
pub const AT_SECURE: u64 = 23;
/// Address of 16 random bytes.
pub const AT_RANDOM: u64 = 25;
/// More CPU capabilities.
pub const AT_HWCAP2: u64 = 26;
/// rseq feature size.
pub const AT_RSEQ_FEATURE_SIZE: u64 = 27;
/// rseq alignment.
pub const AT_RSEQ_ALIGN: u64 = 28;
/// Address of the file name of the program.
pub const AT_EXECFN: u64 = 31;
/// Address of the vDSO's ELF header.
pub const AT_SYSINFO_EHDR: u64 = 33;
/// Minimal stack size for signal delivery.
pub const AT_MINSIGSTKSZ: u64 = 51;

/// How far `setup_arg_pages` grows the stack VMA below the strings.
pub const STACK_EXPAND: u64 = 128 << 10;

/// The strings at the top of the new stack, copied downwards from just
/// below the top (Linux keeps the last 8 bytes zero: `bprm->p` starts at
/// `vm_end - sizeof(void *)`).
#[derive(Clone, Debug)]
pub struct ArgPages {
    top: u64,
    /// The bytes below `top`, last byte first (so copying down appends).
    rev: Vec<u8>,
    argmin: u64,
    /// `bprm->exec`: the address of the file name string (AT_EXECFN).
    pub exec: u64,
}

impl ArgPages {
    /// `__bprm_mm_init` + `bprm_stack_limits`: argument space below `top`
    /// for `argc` arguments and `envc` environment strings under a stack
    /// rlimit of `rlim_stack` bytes. E2BIG if even the pointers do not fit.
    pub fn new(top: u64, rlim_stack: u64, argc: usize, envc: usize) -> Result<Self, Errno> {
        let mut limit = (STK_LIM / 4 * 3).min(rlim_stack / 4);
        limit = limit.max(ARG_MAX);
        let ptr_size = (argc.max(1) as u64)
            .saturating_add(envc as u64)
            .saturating_mul(8);
        if limit <= ptr_size {
            return Err(Errno::E2BIG);
        }
        limit -= ptr_size;
        let p = top - 8;
        Ok(ArgPages {
            top,
            rev: vec![0; 8],
            argmin: p - limit,
            exec: 0,
        })
    }

    /// `bprm->p`: the lowest byte of the strings.
    pub fn p(&self) -> u64 {
        self.top - self.rev.len() as u64
    }

    /// The top of the stack (`vm_end`).
    pub fn top(&self) -> u64 {
        self.top
    }

    /// `copy_string_kernel`: push one NUL-terminated string below `p`.
    /// E2BIG if it is longer than `MAX_ARG_STRLEN` or the space is used up.
    pub fn copy_string(&mut self, s: &[u8]) -> Result<(), Errno> {
        let len = s.len() as u64 + 1;
        if len > MAX_ARG_STRLEN {
            return Err(Errno::E2BIG);
        }
        if self.p() < self.argmin.saturating_add(len) {
            return Err(Errno::E2BIG);
        }
        self.rev.push(0);
        self.rev.extend(s.iter().rev());
        Ok(())
    }

    /// `remove_arg_zero`: drop the lowest string (argv\[0\]).
    pub fn remove_arg_zero(&mut self) {
        while let Some(b) = self.rev.pop() {
            if b == 0 {
                break;
            }
        }
    }

    /// The bytes from `p` up to the top, in memory order.
    pub fn bytes(&self) -> Vec<u8> {
        self.rev.iter().rev().copied().collect()
    }

    /// The first `n` strings from `p` upwards, as (address, length
    /// including the NUL).
    fn strings(&self, n: usize) -> Vec<(u64, u64)> {
        let bytes = self.bytes();
        let mut out = Vec::with_capacity(n);
        let mut off = 0usize;
        for _ in 0..n {
            let len = bytes[off..]
                .iter()
                .position(|&b| b == 0)
                .map_or(bytes.len() - off, |x| x + 1);
            out.push((self.p() + off as u64, len as u64));
            off += len;
        }
        out
    }

    /// The stack VMA after `setup_arg_pages`: the pages the strings touch
    /// (at least one), grown by 128 KiB or up to the rlimit.
    pub fn stack_vma(&self, rlim_stack: u64) -> (u64, u64) {
        let end = self.top;
        let start = (self.top - PAGE_SIZE).min(self.p() & PAGE_MASK);
        let size = end - start;
        let expand = (rlim_stack & PAGE_MASK).min(size + STACK_EXPAND);
        (start.min(end - expand), end)
    }
}

/// What `create_elf_tables` needs to know of the loaded image.
#[derive(Clone, Copy, Debug, Default)]
pub struct AuxInfo {
    /// `mm->context.vdso`, if a vDSO is mapped.
    pub vdso: Option<u64>,
    /// AT_PHDR.
    pub phdr: u64,
    /// AT_PHENT.
    pub phent: u64,
    /// AT_PHNUM.
    pub phnum: u64,
    /// AT_BASE (0 without interpreter).
    pub base: u64,
    /// AT_ENTRY.
    pub entry: u64,
}

/// The tables below the strings, ready to be written.
#[derive(Clone, Debug)]
pub struct ElfTables {
    /// The initial stack pointer (points at argc), 16-byte aligned.
    pub sp: u64,
    /// The bytes from `sp` up to the top of the stack: tables, padding,
    /// platform, random bytes and the strings.
    pub image: Vec<u8>,
    /// The auxiliary vector written, AT_NULL included.
    pub auxv: Vec<(u64, u64)>,
    /// `mm->arg_start`.
    pub arg_start: u64,
    /// `mm->arg_end`.
    pub arg_end: u64,
    /// `mm->env_start`.
    pub env_start: u64,
    /// `mm->env_end`.
    pub env_end: u64,
}

/// splitmix64, to derive AT_RANDOM deterministically from a seed.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The 16 AT_RANDOM bytes for a seed.
pub fn random_bytes(seed: u64) -> [u8; 16] {
    let mut s = seed;
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&splitmix64(&mut s).to_le_bytes());
    out[8..].copy_from_slice(&splitmix64(&mut s).to_le_bytes());
    out
}

/// `create_elf_tables`: below the strings (aligned down to 16), the
/// platform string, 16 random bytes, then — 16-byte aligned — argc, the
/// argv pointers and NULL, the envp pointers and NULL, and the auxiliary
/// vector in Linux's order.
pub fn create_elf_tables(
    args: &ArgPages,
    argc: usize,
    envc: usize,
    aux: &AuxInfo,
    params: &ExecParams,
) -> ElfTables {
    let strings_p = args.p();
    let mut p = strings_p & !0xf;
    let platform = params.platform.as_bytes();
    p -= platform.len() as u64 + 1;
    let u_platform = p;
    p -= 16;
    let u_rand = p;

    let mut auxv: Vec<(u64, u64)> = Vec::with_capacity(24);
    if let Some(vdso) = aux.vdso {
        auxv.push((AT_SYSINFO_EHDR, vdso));
    }
    auxv.push((AT_MINSIGSTKSZ, params.minsigstksz));
    auxv.push((AT_HWCAP, params.hwcap));
    auxv.push((AT_PAGESZ, PAGE_SIZE));
    auxv.push((AT_CLKTCK, params.clktck));
    auxv.push((AT_PHDR, aux.phdr));
    auxv.push((AT_PHENT, aux.phent));
    auxv.push((AT_PHNUM, aux.phnum));
    auxv.push((AT_BASE, aux.base));
    auxv.push((AT_FLAGS, 0));
    auxv.push((AT_ENTRY, aux.entry));
    auxv.push((AT_UID, params.uid));
    auxv.push((AT_EUID, params.euid));
    auxv.push((AT_GID, params.gid));
    auxv.push((AT_EGID, params.egid));
    auxv.push((AT_SECURE, params.secure as u64));
    auxv.push((AT_RANDOM, u_rand));
    auxv.push((AT_HWCAP2, params.hwcap2));
    auxv.push((AT_EXECFN, args.exec));
    auxv.push((AT_PLATFORM, u_platform));
    auxv.push((AT_RSEQ_FEATURE_SIZE, params.rseq_feature_size));
    auxv.push((AT_RSEQ_ALIGN, params.rseq_align));
    auxv.push((AT_NULL, 0));

    let ei_words = auxv.len() as u64 * 2;
    let items = (argc as u64 + 1) + (envc as u64 + 1) + 1;
    let sp = (p - ei_words * 8 - items * 8) & !15;

    let top = args.top();
    let mut image = vec![0u8; (top - sp) as usize];
    let mut put = |addr: u64, bytes: &[u8]| {
        let off = (addr - sp) as usize;
        image[off..off + bytes.len()].copy_from_slice(bytes);
    };
    put(strings_p, &args.bytes());
    put(u_platform, platform);
    put(u_rand, &random_bytes(params.random_seed));

    let strings = args.strings(argc + envc);
    let mut w = sp;
    let mut word = |put: &mut dyn FnMut(u64, &[u8]), v: u64| {
        put(w, &v.to_le_bytes());
        w += 8;
    };
    word(&mut put, argc as u64);
    for &(a, _) in &strings[..argc] {
        word(&mut put, a);
    }
    word(&mut put, 0);
    for &(a, _) in &strings[argc..] {
        word(&mut put, a);
    }
    word(&mut put, 0);
    for &(k, v) in &auxv {
        word(&mut put, k);
        word(&mut put, v);
    }

    let arg_start = strings_p;
    let arg_end = strings[..argc].last().map_or(arg_start, |&(a, l)| a + l);
    let env_end = strings[argc..].last().map_or(arg_end, |&(a, l)| a + l);
    ElfTables {
        sp,
        image,
        auxv,
        arg_start,
        arg_end,
        env_start: arg_end,
        env_end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_copy_down_and_arg_zero_removal() {
        let mut a = ArgPages::new(0x1000_0000, STK_LIM, 2, 0).unwrap();
        a.copy_string(b"file").unwrap();
        a.copy_string(b"b").unwrap();
        a.copy_string(b"a0").unwrap();
        assert_eq!(a.p(), 0x1000_0000 - 8 - 5 - 2 - 3);
        assert_eq!(a.bytes(), b"a0\0b\0file\0\0\0\0\0\0\0\0\0".to_vec());
        a.remove_arg_zero();
        assert_eq!(a.bytes(), b"b\0file\0\0\0\0\0\0\0\0\0".to_vec());
    }

    #[test]
    fn limits_give_e2big() {
        // 8 MiB rlimit: a quarter (2 MiB) is argument space.
        let mut a = ArgPages::new(0x1000_0000, STK_LIM, 1, 0).unwrap();
        let long = vec![b'x'; MAX_ARG_STRLEN as usize];
        assert_eq!(a.copy_string(&long), Err(Errno::E2BIG));
        let ok = vec![b'x'; MAX_ARG_STRLEN as usize - 1];
        for _ in 0..15 {
            a.copy_string(&ok).unwrap();
        }
        assert_eq!(a.copy_string(&ok), Err(Errno::E2BIG));
        // A large rlimit is capped at 6 MiB (_STK_LIM / 4 * 3).
        let mut a = ArgPages::new(0x1000_0000, 1 << 30, 1, 0).unwrap();
        for _ in 0..47 {
            a.copy_string(&ok).unwrap();
        }
        assert_eq!(a.copy_string(&ok), Err(Errno::E2BIG));
        assert_eq!(
            ArgPages::new(0x1000_0000, STK_LIM, 1 << 20, 0).err(),
            Some(Errno::E2BIG)
        );
    }

    #[test]
    fn stack_vma_grows_by_128k() {
        let mut a = ArgPages::new(0x7fff_ffff_f000, STK_LIM, 1, 0).unwrap();
        a.copy_string(b"/x").unwrap();
        assert_eq!(a.stack_vma(STK_LIM), (0x7fff_fffd_e000, 0x7fff_ffff_f000));
        // A small rlimit caps the growth (but never shrinks the VMA).
        assert_eq!(a.stack_vma(0x4000), (0x7fff_ffff_b000, 0x7fff_ffff_f000));
        assert_eq!(a.stack_vma(0), (0x7fff_ffff_e000, 0x7fff_ffff_f000));
    }
}
