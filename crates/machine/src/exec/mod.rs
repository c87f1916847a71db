//! execve: replace a process image with a program loaded from a host file,
//! through a table of binary formats tried in order (`#!` scripts, ELF),
//! as Linux's fs/exec.c (`do_execveat_common`, `bprm_execve`,
//! `exec_binprm`, `search_binary_handler`) does. Programs are loaded, never
//! run: the result is the address space, the initial stack and the entry.
//!
//! The address space is built through [`ExecMm`], which the integrator
//! implements over the real memory manager; exec itself owns no VMAs.
//!
//! Simplifications (all with ASLR off, the only mode modelled):
//! - one architecture: x86-64 with 4 KiB pages, ELF64 only (no compat
//!   i386/x32 loader: an EM_386 file gives ENOEXEC; like Linux's 64-bit
//!   loader, a header with EM_X86_64 is read as ELF64 whatever its
//!   EI_CLASS says);
//! - no binfmt_misc, no setuid/capabilities (AT_SECURE is 0 unless
//!   [`ExecParams::secure`]), no file locking against writers (ETXTBSY);
//! - the execute-permission check only looks for an x bit in the mode, as
//!   for root;
//! - errors after the point of no return are returned as `Err` (Linux
//!   kills the task with SIGSEGV instead; the errno is the one Linux
//!   computes internally);
//! - the vDSO pages hold no image (zero pages of the right size).

pub mod corpus;
pub mod elf;
pub mod script;
pub mod stack;

use mm::errno::Errno;
use mm::file::FileRef;
use mm::types::{VirtAddr, PAGE_SIZE};

pub use stack::ArgPages;

use crate::hostfs::HostFile;

/// `PROT_READ` (include/uapi/asm-generic/mman-common.h).
pub const PROT_READ: u32 = 0x1;
/// `PROT_WRITE`.
pub const PROT_WRITE: u32 = 0x2;
/// `PROT_EXEC`.
pub const PROT_EXEC: u32 = 0x4;
/// `MAP_PRIVATE`.
pub const MAP_PRIVATE: u32 = 0x02;
/// `MAP_FIXED`.
pub const MAP_FIXED: u32 = 0x10;
/// `MAP_ANONYMOUS`.
pub const MAP_ANONYMOUS: u32 = 0x20;
/// `MAP_FIXED_NOREPLACE`.
pub const MAP_FIXED_NOREPLACE: u32 = 0x100000;

/// x86-64 `TASK_SIZE` with 4-level paging (`DEFAULT_MAP_WINDOW`).
pub const TASK_SIZE: u64 = 0x7fff_ffff_f000;
/// `STACK_TOP`: the end of the initial stack VMA.
pub const STACK_TOP: u64 = TASK_SIZE;
/// x86-64 `ELF_ET_DYN_BASE` = `DEFAULT_MAP_WINDOW / 3 * 2`.
pub const ELF_ET_DYN_BASE: u64 = TASK_SIZE / 3 * 2;
/// arm64 `ELF_ET_DYN_BASE` = `2 * DEFAULT_MAP_WINDOW_64 / 3`
/// (arch/arm64/include/asm/elf.h) with 48-bit VA: 0xaaaa_aaaa_aaaa; the
/// loader rounds it down to the binary's alignment (64 KiB for Debian's
/// arm64 binaries: 0xaaaa_aaaa_0000).
pub const ARM64_ELF_ET_DYN_BASE: u64 = 2 * mm::arch::layout::ARM64_TASK_SIZE / 3;

/// What the binary format depends on per architecture: the ELF machine
/// the kernel accepts, TASK_SIZE (= STACK_TOP with ASLR off) and
/// ELF_ET_DYN_BASE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecArch {
    /// `e_machine` `elf_check_arch` accepts.
    pub e_machine: u16,
    /// TASK_SIZE: user addresses are below it; STACK_TOP equals it.
    pub task_size: u64,
    /// ELF_ET_DYN_BASE: where a PIE with an interpreter is loaded.
    pub elf_et_dyn_base: u64,
}

impl ExecArch {
    /// x86-64 with 4-level paging.
    pub const X86_64: ExecArch = ExecArch {
        e_machine: elf::EM_X86_64,
        task_size: TASK_SIZE,
        elf_et_dyn_base: ELF_ET_DYN_BASE,
    };
    /// arm64 with 48-bit VA: TASK_SIZE 2^48, no guard page below it.
    pub const ARM64: ExecArch = ExecArch {
        e_machine: elf::EM_AARCH64,
        task_size: mm::arch::layout::ARM64_TASK_SIZE,
        elf_et_dyn_base: ARM64_ELF_ET_DYN_BASE,
    };

    /// The binary format of a machine of `arch` (32-bit x86 kernels do
    /// not exec here: see [`crate::Machine::exec_as`]).
    pub fn for_arch(arch: mm::arch::Arch) -> ExecArch {
        match arch {
            mm::arch::Arch::Arm64 => Self::ARM64,
            _ => Self::X86_64,
        }
    }
}

/// The fixed \[vsyscall\] page (not a VMA: Linux's gate area).
pub const VSYSCALL_ADDR: u64 = 0xffff_ffff_ff60_0000;
/// `BINPRM_BUF_SIZE`: bytes of the file the format handlers look at.
pub const BINPRM_BUF_SIZE: usize = 256;
/// `MAX_ARG_STRLEN`: longest single argument or environment string.
pub const MAX_ARG_STRLEN: u64 = 32 * PAGE_SIZE;
/// `ARG_MAX`: the minimum argument space, whatever the stack rlimit.
pub const ARG_MAX: u64 = 131072;
/// `_STK_LIM`: the default stack rlimit (8 MiB).
pub const STK_LIM: u64 = 8 << 20;
/// `PATH_MAX`.
pub const PATH_MAX: u64 = 4096;

/// Where the memory manager's state that exec sets lives (the fields of
/// `mm_struct` that `load_elf_binary` fills), handed to
/// [`ExecMm::set_layout`] at the end.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecLayout {
    /// `mm->start_code`.
    pub start_code: VirtAddr,
    /// `mm->end_code`.
    pub end_code: VirtAddr,
    /// `mm->start_data`.
    pub start_data: VirtAddr,
    /// `mm->end_data`.
    pub end_data: VirtAddr,
    /// `mm->start_brk`.
    pub start_brk: VirtAddr,
    /// `mm->brk`.
    pub brk: VirtAddr,
    /// `mm->start_stack` (= the initial stack pointer).
    pub start_stack: VirtAddr,
    /// `mm->arg_start`.
    pub arg_start: VirtAddr,
    /// `mm->arg_end`.
    pub arg_end: VirtAddr,
    /// `mm->env_start`.
    pub env_start: VirtAddr,
    /// `mm->env_end`.
    pub env_end: VirtAddr,
    /// `mm->context.vdso`: start of the \[vdso\] text, 0 if none.
    pub vdso: VirtAddr,
    /// The stack VMA as `setup_arg_pages` left it: `[start, end)`.
    pub stack_vma: (VirtAddr, VirtAddr),
    /// True if the stack is executable (PT_GNU_STACK with PF_X).
    pub exec_stack: bool,
}

/// The memory manager as exec needs it: a fresh, empty `mm_struct` being
/// filled. Each method is the kernel function named in its doc; all
/// addresses and lengths exec passes are page-aligned unless said so.
pub trait ExecMm {
    /// TASK_SIZE of the task being built (x86-64 4-level's by default; an
    /// arm64 machine's is 2^48).
    fn task_size(&self) -> u64 {
        TASK_SIZE
    }
    /// `arch_pick_mmap_layout`: choose `mmap_base` for a stack rlimit of
    /// `rlim_stack` bytes (x86-64, ASLR off: 0x7ffff7fff000 for 8 MiB).
    fn pick_mmap_layout(&mut self, rlim_stack: u64);
    /// `mm->mmap_base` (valid after [`ExecMm::pick_mmap_layout`]).
    fn mmap_base(&self) -> VirtAddr;
    /// `vm_mmap`: map `len` bytes at `addr` (a hint, or exact with
    /// `MAP_FIXED`/`MAP_FIXED_NOREPLACE`), `file` at byte `offset` or
    /// anonymous, with `PROT_*` and `MAP_*` flags. Returns the address.
    fn mmap(
        &mut self,
        addr: VirtAddr,
        len: u64,
        prot: u32,
        flags: u32,
        file: Option<FileRef>,
        offset: u64,
    ) -> Result<VirtAddr, Errno>;
    /// `vm_munmap`.
    fn munmap(&mut self, addr: VirtAddr, len: u64) -> Result<(), Errno>;
    /// `vm_brk_flags`: anonymous read-write memory at exactly `[addr,
    /// addr+len)` (replacing what is there), executable if `exec`; how the
    /// ELF loader maps .bss beyond the file.
    fn vm_brk_flags(&mut self, addr: VirtAddr, len: u64, exec: bool) -> Result<(), Errno>;
    /// `get_unmapped_area(NULL, 0, len, 0, 0)`: where a new mapping of
    /// `len` bytes would go (top-down below `mmap_base`).
    fn get_unmapped_area(&mut self, len: u64) -> Result<VirtAddr, Errno>;
    /// `_install_special_mapping`: a named special VMA (`\[vvar\]`,
    /// `\[vvar_vclock\]`, `\[vdso\]`) at exactly `addr`.
    fn install_special_mapping(
        &mut self,
        addr: VirtAddr,
        len: u64,
        prot: u32,
        name: &'static str,
    ) -> Result<(), Errno>;
    /// The stack VMA (`VM_GROWSDOWN`, read-write, `exec` adds VM_EXEC) at
    /// `[start, end)`, as `__bprm_mm_init` + `setup_arg_pages` leave it. If
    /// a stack VMA ending at `end` exists, extend it down to `start`
    /// (`expand_stack`, what a fault below it would do).
    fn insert_stack_vma(&mut self, start: VirtAddr, end: VirtAddr, exec: bool)
        -> Result<(), Errno>;
    /// `copy_to_user`: store bytes at a user address (any alignment),
    /// whatever the VMA's protection (exec writes with FOLL_FORCE rights).
    fn write_user(&mut self, va: VirtAddr, bytes: &[u8]) -> Result<(), Errno>;
    /// `clear_user`: zero `len` bytes at a user address (any alignment).
    fn clear_user(&mut self, va: VirtAddr, len: u64) -> Result<(), Errno>;
    /// `copy_to_user` as the task's own stores make it, without FOLL_FORCE:
    /// EFAULT where there is no VMA, where the VMA is not writable, or
    /// where the page cannot be faulted in (a file page past EOF, SIGBUS).
    /// What `padzero`'s `clear_user` and `create_elf_tables` use; only the
    /// argument strings (`copy_strings`, before any segment is mapped) are
    /// written with [`ExecMm::write_user`]'s forced rights. The default
    /// ignores protections.
    fn copy_to_user(&mut self, va: VirtAddr, bytes: &[u8]) -> Result<(), Errno> {
        self.write_user(va, bytes)
    }
    /// Record the `mm_struct` fields exec computed.
    fn set_layout(&mut self, layout: &ExecLayout);
}

/// The \[vvar\]/\[vvar_vclock\]/\[vdso\] sizes in pages; hardware and build
/// dependent. [`VdsoLayout::default`] is what Linux 6.18 x86-64 maps on
/// the machine the reference was recorded on (4 + 2 + 2 pages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VdsoLayout {
    /// Pages of \[vvar\] (the vDSO data store).
    pub vvar_pages: u64,
    /// Pages of \[vvar_vclock\] (pvclock and Hyper-V clock pages).
    pub vclock_pages: u64,
    /// Pages of \[vdso\] (the image size).
    pub text_pages: u64,
}

impl VdsoLayout {
    /// arm64 in 6.18: the generic vDSO data store's \[vvar\] (time,
    /// time-namespace and random pages; arm64 has no arch data page, so
    /// one page fewer than x86), no \[vvar_vclock\], and a 2-page \[vdso\]
    /// image (the image size is a build assumption, not a recorded value).
    pub const ARM64: VdsoLayout = VdsoLayout {
        vvar_pages: 3,
        vclock_pages: 0,
        text_pages: 2,
    };
}

impl Default for VdsoLayout {
    fn default() -> Self {
        VdsoLayout {
            vvar_pages: 4,
            vclock_pages: 2,
            text_pages: 2,
        }
    }
}

/// What the machine contributes to an exec: the hardware-dependent auxv
/// values, credentials, the stack rlimit and the seed of AT_RANDOM.
/// [`ExecParams::default`] is deterministic (the values of the reference
/// machine); [`ExecParams::from_host`] reads this host's /proc/self/auxv.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecParams {
    /// AT_HWCAP (CPUID 1 EDX on x86).
    pub hwcap: u64,
    /// AT_HWCAP2.
    pub hwcap2: u64,
    /// AT_MINSIGSTKSZ (the signal frame size, depends on XSAVE features).
    pub minsigstksz: u64,
    /// AT_CLKTCK (USER_HZ).
    pub clktck: u64,
    /// AT_UID.
    pub uid: u64,
    /// AT_EUID.
    pub euid: u64,
    /// AT_GID.
    pub gid: u64,
    /// AT_EGID.
    pub egid: u64,
    /// AT_SECURE.
    pub secure: bool,
    /// AT_PLATFORM string (`ELF_PLATFORM`, from `uname -m`).
    pub platform: String,
    /// AT_RSEQ_FEATURE_SIZE.
    pub rseq_feature_size: u64,
    /// AT_RSEQ_ALIGN.
    pub rseq_align: u64,
    /// RLIMIT_STACK soft limit in bytes (`u64::MAX` = unlimited).
    pub rlimit_stack: u64,
    /// Seed from which the 16 AT_RANDOM bytes are derived.
    pub random_seed: u64,
    /// The vDSO to map, or `None` (`vdso=0`: no vDSO, no AT_SYSINFO_EHDR).
    pub vdso: Option<VdsoLayout>,
    /// The binary format's architecture (set by the machine at exec).
    pub arch: ExecArch,
}

impl Default for ExecParams {
    fn default() -> Self {
        ExecParams {
            hwcap: 0x178b_fbff,
            hwcap2: 0x2,
            minsigstksz: 0xd30,
            clktck: 100,
            uid: 0,
            euid: 0,
            gid: 0,
            egid: 0,
            secure: false,
            platform: "x86_64".into(),
            rseq_feature_size: 0x1c,
            rseq_align: 0x20,
            rlimit_stack: STK_LIM,
            random_seed: 0,
            vdso: Some(VdsoLayout::default()),
            arch: ExecArch::X86_64,
        }
    }
}

impl ExecParams {
    /// Defaults with the hardware values and credentials of this host, read
    /// from /proc/self/auxv (falls back to [`ExecParams::default`] values).
    pub fn from_host() -> Self {
        let mut p = ExecParams::default();
        if let Ok(raw) = std::fs::read("/proc/self/auxv") {
            for pair in raw.chunks_exact(16) {
                let key = u64::from_le_bytes(pair[..8].try_into().unwrap_or([0; 8]));
                let val = u64::from_le_bytes(pair[8..].try_into().unwrap_or([0; 8]));
                match key {
                    stack::AT_HWCAP => p.hwcap = val,
                    stack::AT_HWCAP2 => p.hwcap2 = val,
                    stack::AT_MINSIGSTKSZ => p.minsigstksz = val,
                    stack::AT_CLKTCK => p.clktck = val,
                    stack::AT_UID => p.uid = val,
                    stack::AT_EUID => p.euid = val,
                    stack::AT_GID => p.gid = val,
                    stack::AT_EGID => p.egid = val,
                    stack::AT_RSEQ_FEATURE_SIZE => p.rseq_feature_size = val,
                    stack::AT_RSEQ_ALIGN => p.rseq_align = val,
                    _ => {}
                }
            }
        }
        p
    }
}

/// What a successful exec leaves: where the CPU starts and what it sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecResult {
    /// The first instruction: the interpreter's entry, or the program's.
    pub entry: VirtAddr,
    /// The initial stack pointer (points at argc); `mm->start_stack`.
    pub start_stack: VirtAddr,
    /// The auxiliary vector as written to the stack, AT_NULL included
    /// (what /proc/PID/auxv prints).
    pub auxv: Vec<(u64, u64)>,
    /// The `mm_struct` fields, as given to [`ExecMm::set_layout`].
    pub layout: ExecLayout,
    /// Load address of the ELF interpreter (AT_BASE), if there is one.
    pub interp_base: Option<VirtAddr>,
    /// The program's entry point (AT_ENTRY).
    pub program_entry: VirtAddr,
    /// The canonical path of the executable finally loaded (`mm->exe_file`).
    pub exe_path: String,
    /// The argument vector as the program sees it (after `#!` rewrites).
    pub argv: Vec<String>,
}

/// `struct linux_binprm`: the exec in progress.
pub struct Bprm {
    /// `bprm->filename`: the path as given to execve.
    pub filename: String,
    /// `bprm->interp`: the file actually being run (changes with `#!`).
    pub interp: String,
    /// `bprm->file`: the file the current format handler looks at.
    pub file: FileRef,
    /// `bprm->interpreter`: set by a handler that wants another file run.
    pub interpreter: Option<FileRef>,
    /// `bprm->buf`: the first [`BINPRM_BUF_SIZE`] bytes of `file`, zero
    /// padded.
    pub buf: [u8; BINPRM_BUF_SIZE],
    /// The argument and environment strings, at the top of the stack.
    pub args: ArgPages,
    /// `bprm->argc`.
    pub argc: usize,
    /// `bprm->envc`.
    pub envc: usize,
    /// `bprm->point_of_no_return`: the old image is gone; errors are fatal.
    pub point_of_no_return: bool,
    /// The parameters of the exec.
    pub params: ExecParams,
}

impl Bprm {
    /// `prepare_binprm`: read the first bytes of the current file.
    fn prepare(&mut self) {
        self.buf = [0; BINPRM_BUF_SIZE];
        let _ = self.file.read_at(0, &mut self.buf);
    }
}

/// A binary format handler (`struct linux_binfmt`).
pub struct BinFmt {
    /// Name for diagnostics.
    pub name: &'static str,
    /// `load_binary`: `Err(ENOEXEC)` means "not mine"; `Ok(None)` means
    /// the handler set [`Bprm::interpreter`] and exec must start over with
    /// it; `Ok(Some(r))` means the image is loaded.
    pub load: fn(&mut dyn ExecMm, &mut Bprm) -> Result<Option<ExecResult>, Errno>,
}

/// The formats, in the order `search_binary_handler` tries them.
pub const FORMATS: &[BinFmt] = &[
    BinFmt {
        name: "script",
        load: script::load_script,
    },
    BinFmt {
        name: "elf",
        load: elf::load_elf_binary,
    },
];

/// `open_exec`: open a file for execution. Not a regular file or no
/// execute bit → EACCES (as `do_open_execat` and `may_open` check).
pub fn open_exec(path: &str) -> Result<FileRef, Errno> {
    match HostFile::open_host(path) {
        Ok(f) => {
            if f.mode() & 0o111 == 0 {
                return Err(Errno::EACCES);
            }
            Ok(std::sync::Arc::new(f))
        }
        Err(Errno::EISDIR) => Err(Errno::EACCES),
        Err(e) => Err(e),
    }
}

/// `open_exec` of a name the kernel holds itself: a `#!` interpreter or a
/// PT_INTERP path. Such a name is taken by `getname_kernel`, which, unlike
/// `getname` for a name from user space (ENOENT when empty), accepts the
/// empty string; the path walk then ends at the working directory, and
/// `may_open` refuses to execute a directory: EACCES.
pub fn open_exec_kernel(name: &str) -> Result<FileRef, Errno> {
    if name.is_empty() {
        return open_exec(".");
    }
    open_exec(name)
}

/// Maximum rewrites `exec_binprm` allows (`depth > 5` → ELOOP).
const MAX_DEPTH: usize = 5;

/// Truncates at the first NUL: what the kernel sees of a C string.
fn c_str(s: &str) -> &[u8] {
    let b = s.as_bytes();
    match b.iter().position(|&c| c == 0) {
        Some(n) => &b[..n],
        None => b,
    }
}

/// execve(path, argv, envp) on a fresh address space `mm`.
///
/// Mirrors `do_execveat_common`: open the file, check the argument space
/// (`bprm_stack_limits`, E2BIG), copy the file name, the environment and
/// the arguments to the top of the stack (an empty argv gets `""` as
/// argv\[0\], as Linux ≥ 5.18 does), then try the [`FORMATS`] until one
/// loads the image, following `#!` interpreters at most 5 levels deep.
pub fn exec(
    mm: &mut dyn ExecMm,
    path: &str,
    argv: &[String],
    envp: &[String],
    params: &ExecParams,
) -> Result<ExecResult, Errno> {
    exec_as(mm, path, path, argv, envp, params)
}

/// [`exec`] of the host file `host_path` under the name `filename`: the
/// string the program passed to execve, which Linux copies to the stack as
/// `AT_EXECFN` and keeps as `bprm->filename`/`bprm->interp` (a relative
/// `./bin/x` stays relative even though the kernel resolved it against the
/// caller's working directory). A replay uses it to load a file recorded in
/// another directory under its recorded name.
pub fn exec_as(
    mm: &mut dyn ExecMm,
    host_path: &str,
    filename: &str,
    argv: &[String],
    envp: &[String],
    params: &ExecParams,
) -> Result<ExecResult, Errno> {
    let path = filename;
    let file = open_exec(host_path)?;
    // STACK_TOP = TASK_SIZE on both architectures with ASLR off.
    let stack_top = params.arch.task_size;
    let mut args = ArgPages::new(stack_top, params.rlimit_stack, argv.len(), envp.len())?;
    args.copy_string(c_str(path))?;
    let exec_p = args.p();
    for s in envp.iter().rev() {
        args.copy_string(c_str(s))?;
    }
    for s in argv.iter().rev() {
        args.copy_string(c_str(s))?;
    }
    let mut argc = argv.len();
    if argc == 0 {
        args.copy_string(b"")?;
        argc = 1;
    }
    args.exec = exec_p;
    let mut bprm = Bprm {
        filename: path.to_string(),
        interp: path.to_string(),
        file,
        interpreter: None,
        buf: [0; BINPRM_BUF_SIZE],
        args,
        argc,
        envc: envp.len(),
        point_of_no_return: false,
        params: params.clone(),
    };
    exec_binprm(mm, &mut bprm)
}

/// `exec_binprm`: run the handlers, restarting with the interpreter a
/// handler asks for, at most [`MAX_DEPTH`] rewrites.
fn exec_binprm(mm: &mut dyn ExecMm, bprm: &mut Bprm) -> Result<ExecResult, Errno> {
    let mut depth = 0;
    loop {
        if depth > MAX_DEPTH {
            return Err(Errno::ELOOP);
        }
        if let Some(r) = search_binary_handler(mm, bprm)? {
            return Ok(r);
        }
        match bprm.interpreter.take() {
            Some(f) => bprm.file = f,
            None => return Err(Errno::ENOEXEC),
        }
        depth += 1;
    }
}

/// `search_binary_handler`: try each format on the current file.
fn search_binary_handler(
    mm: &mut dyn ExecMm,
    bprm: &mut Bprm,
) -> Result<Option<ExecResult>, Errno> {
    bprm.prepare();
    for fmt in FORMATS {
        match (fmt.load)(mm, bprm) {
            Err(Errno::ENOEXEC) if !bprm.point_of_no_return => continue,
            other => return other,
        }
    }
    Err(Errno::ENOEXEC)
}

/// An [`ExecMm`] that stops exec at its point of no return: the first call
/// exec makes on the new address space is `pick_mmap_layout`, made right
/// after `begin_new_exec` (`setup_new_exec` → `arch_pick_mmap_layout`);
/// every later call fails.
#[derive(Default)]
struct PointOfNoReturn {
    reached: bool,
}

impl ExecMm for PointOfNoReturn {
    fn pick_mmap_layout(&mut self, _rlim_stack: u64) {
        self.reached = true;
    }
    fn mmap_base(&self) -> VirtAddr {
        VirtAddr(0)
    }
    fn mmap(
        &mut self,
        _: VirtAddr,
        _: u64,
        _: u32,
        _: u32,
        _: Option<FileRef>,
        _: u64,
    ) -> Result<VirtAddr, Errno> {
        Err(Errno::EINTR)
    }
    fn munmap(&mut self, _: VirtAddr, _: u64) -> Result<(), Errno> {
        Err(Errno::EINTR)
    }
    fn vm_brk_flags(&mut self, _: VirtAddr, _: u64, _: bool) -> Result<(), Errno> {
        Err(Errno::EINTR)
    }
    fn get_unmapped_area(&mut self, _: u64) -> Result<VirtAddr, Errno> {
        Err(Errno::EINTR)
    }
    fn install_special_mapping(
        &mut self,
        _: VirtAddr,
        _: u64,
        _: u32,
        _: &'static str,
    ) -> Result<(), Errno> {
        Err(Errno::EINTR)
    }
    fn insert_stack_vma(&mut self, _: VirtAddr, _: VirtAddr, _: bool) -> Result<(), Errno> {
        Err(Errno::EINTR)
    }
    fn write_user(&mut self, _: VirtAddr, _: &[u8]) -> Result<(), Errno> {
        Err(Errno::EINTR)
    }
    fn clear_user(&mut self, _: VirtAddr, _: u64) -> Result<(), Errno> {
        Err(Errno::EINTR)
    }
    fn set_layout(&mut self, _: &ExecLayout) {}
}

/// What execve does up to its point of no return (`begin_new_exec`):
/// `Err(errno)` if it fails before, the errno the caller of execve gets;
/// `Ok(())` if it gets there, after which a failure kills the task with
/// SIGSEGV in Linux (`bprm_execve`: `force_fatal_sig(SIGSEGV)` once
/// `bprm->point_of_no_return` is set) and the caller never sees an errno.
/// Nothing is mapped: the new address space is never touched.
pub fn exec_until_point_of_no_return(
    host_path: &str,
    filename: &str,
    argv: &[String],
    envp: &[String],
    params: &ExecParams,
) -> Result<(), Errno> {
    let mut probe = PointOfNoReturn::default();
    match exec_as(&mut probe, host_path, filename, argv, envp, params) {
        _ if probe.reached => Ok(()),
        Ok(_) => Ok(()),
        Err(e) => Err(e),
    }
}
