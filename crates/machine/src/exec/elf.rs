//! The ELF loader: map an x86-64 ELF64 executable (ET_EXEC at its link
//! addresses, ET_DYN with PT_INTERP at `ELF_ET_DYN_BASE`, ET_DYN without
//! one like an ordinary mmap), its interpreter top-down below
//! `mmap_base`, the .bss, the vDSO, and build the initial stack. Mirrors
//! fs/binfmt_elf.c `load_elf_binary`, `load_elf_interp`, `elf_load`,
//! `elf_map`, `padzero`, `total_mapping_size`, `maximum_alignment`, and
//! arch/x86/entry/vdso/vma.c `map_vdso` for the vDSO placement.
//!
//! Headers are decoded with the `object` crate's ELF definitions. Every
//! value from the file is treated as hostile: errors, never panics, with
//! the errno Linux gives (ENOEXEC for a file that is not a loadable ELF,
//! ELIBBAD for a bad interpreter, EINVAL/ENOMEM for impossible segments,
//! EIO for a short read).

use object::elf::{FileHeader64, ProgramHeader64};
use object::LittleEndian as LE;

use mm::errno::Errno;
use mm::file::FileRef;
use mm::types::{VirtAddr, PAGE_MASK, PAGE_SIZE};

use super::stack::{create_elf_tables, AuxInfo};
use super::{
    open_exec_kernel, Bprm, ExecLayout, ExecMm, ExecResult, MAP_FIXED, MAP_FIXED_NOREPLACE,
    MAP_PRIVATE, PATH_MAX, PROT_EXEC, PROT_READ, PROT_WRITE,
};

/// `ET_EXEC`.
pub const ET_EXEC: u16 = 2;
/// `ET_DYN`.
pub const ET_DYN: u16 = 3;
/// `EM_X86_64`.
pub const EM_X86_64: u16 = 62;
/// `EM_AARCH64`.
pub const EM_AARCH64: u16 = 183;
/// `PT_LOAD`.
pub const PT_LOAD: u32 = 1;
/// `PT_INTERP`.
pub const PT_INTERP: u32 = 3;
/// `PT_GNU_STACK`.
pub const PT_GNU_STACK: u32 = 0x6474_e551;
/// `PF_X`.
pub const PF_X: u32 = 1;
/// `PF_W`.
pub const PF_W: u32 = 2;
/// `PF_R`.
pub const PF_R: u32 = 4;

const EHDR_SIZE: usize = core::mem::size_of::<FileHeader64<LE>>();
const PHDR_SIZE: usize = core::mem::size_of::<ProgramHeader64<LE>>();
/// `ELF_MIN_ALIGN` on x86-64.
const ELF_MIN_ALIGN: u64 = PAGE_SIZE;

/// The fields of an ELF file header the loader uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ehdr {
    /// `e_ident` magic matches `\x7fELF`.
    pub magic_ok: bool,
    /// `e_ident[EI_CLASS]`.
    pub class: u8,
    /// `e_type`.
    pub e_type: u16,
    /// `e_machine`.
    pub e_machine: u16,
    /// `e_entry`.
    pub e_entry: u64,
    /// `e_phoff`.
    pub e_phoff: u64,
    /// `e_phentsize`.
    pub e_phentsize: u16,
    /// `e_phnum`.
    pub e_phnum: u16,
}

/// A program header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Phdr {
    /// `p_type`.
    pub p_type: u32,
    /// `p_flags`.
    pub p_flags: u32,
    /// `p_offset`.
    pub p_offset: u64,
    /// `p_vaddr`.
    pub p_vaddr: u64,
    /// `p_filesz`.
    pub p_filesz: u64,
    /// `p_memsz`.
    pub p_memsz: u64,
    /// `p_align`.
    pub p_align: u64,
}

/// Decodes an ELF64 little-endian file header from the start of `buf`
/// (`None` if `buf` is too short).
pub fn parse_ehdr(buf: &[u8]) -> Option<Ehdr> {
    let (h, _) = object::pod::from_bytes::<FileHeader64<LE>>(buf.get(..EHDR_SIZE)?).ok()?;
    Some(Ehdr {
        magic_ok: h.e_ident.magic == object::elf::ELFMAG,
        class: h.e_ident.class.0,
        e_type: h.e_type.get(LE).0,
        e_machine: h.e_machine.get(LE).0,
        e_entry: h.e_entry.get(LE),
        e_phoff: h.e_phoff.get(LE),
        e_phentsize: h.e_phentsize.get(LE),
        e_phnum: h.e_phnum.get(LE),
    })
}

/// `elf_check_arch` (arch/x86/include/asm/elf.h; arch/arm64/include/asm/elf.h
/// `elf_check_arch` is the same test against EM_AARCH64): the machine
/// only, `e_machine` being the kernel's own ([`super::ExecArch::e_machine`]). The kernel's 64-bit loader never looks at `e_ident[EI_CLASS]` (nor
/// at EI_DATA, EI_VERSION or `e_version`): a header that says ELFCLASS32
/// but EM_X86_64 is read as ELF64 and loads. (A real i386 file, EM_386,
/// is the compat loader's, which is not modelled: ENOEXEC here.)
fn check_arch(h: &Ehdr, e_machine: u16) -> bool {
    h.e_machine == e_machine
}

/// `elf_read`: exactly `len` bytes at `off`, else EIO; but EINVAL first
/// where `kernel_read`'s `rw_verify_area` (fs/read_write.c) refuses the
/// position of a regular file: negative as a `loff_t`, or `pos + len`
/// past `LLONG_MAX` (a PT_INTERP `p_offset` with its top bit set).
fn elf_read(file: &FileRef, off: u64, len: usize) -> Result<Vec<u8>, Errno> {
    if off
        .checked_add(len as u64)
        .is_none_or(|end| end > i64::MAX as u64)
    {
        return Err(Errno::EINVAL);
    }
    let mut v = vec![0u8; len];
    if file.read_at(off, &mut v)? != len {
        return Err(Errno::EIO);
    }
    Ok(v)
}

/// `load_elf_phdrs`: the program headers, if their entry size is right,
/// their table is non-empty and at most 64 KiB (`size == 0 || size >
/// 65536`: 1170 headers; the old one-page `ELF_MIN_ALIGN` limit is gone
/// from 6.18, whose kernel loads a file with 74 headers), and they can be
/// read. `None` otherwise (the caller picks the errno).
pub fn load_elf_phdrs(h: &Ehdr, file: &FileRef) -> Option<Vec<Phdr>> {
    if h.e_phentsize as usize != PHDR_SIZE {
        return None;
    }
    let size = PHDR_SIZE * h.e_phnum as usize;
    if size == 0 || size > 65536 {
        return None;
    }
    let raw = elf_read(file, h.e_phoff, size).ok()?;
    let (ph, _) =
        object::pod::slice_from_bytes::<ProgramHeader64<LE>>(&raw, h.e_phnum as usize).ok()?;
    Some(
        ph.iter()
            .map(|p| Phdr {
                p_type: p.p_type.get(LE).0,
                p_flags: p.p_flags.get(LE).0,
                p_offset: p.p_offset.get(LE),
                p_vaddr: p.p_vaddr.get(LE),
                p_filesz: p.p_filesz.get(LE),
                p_memsz: p.p_memsz.get(LE),
                p_align: p.p_align.get(LE),
            })
            .collect(),
    )
}

fn elf_pagestart(x: u64) -> u64 {
    x & PAGE_MASK
}
fn elf_pageoffset(x: u64) -> u64 {
    x & !PAGE_MASK
}
/// `ELF_PAGEALIGN`, wrapping like the C macro.
fn elf_pagealign(x: u64) -> u64 {
    x.wrapping_add(PAGE_SIZE - 1) & PAGE_MASK
}
/// `BAD_ADDR`: at or above TASK_SIZE (`ts`).
fn bad_addr(x: u64, ts: u64) -> bool {
    x >= ts
}

/// `make_prot`: PF_R/W/X to PROT_READ/WRITE/EXEC.
fn make_prot(p_flags: u32) -> u32 {
    let mut prot = 0;
    if p_flags & PF_R != 0 {
        prot |= PROT_READ;
    }
    if p_flags & PF_W != 0 {
        prot |= PROT_WRITE;
    }
    if p_flags & PF_X != 0 {
        prot |= PROT_EXEC;
    }
    prot
}

/// `total_mapping_size`: from the first PT_LOAD's page to the end of the
/// highest one; 0 if there is none.
pub fn total_mapping_size(ph: &[Phdr]) -> u64 {
    let mut min = u64::MAX;
    let mut max = 0u64;
    let mut any = false;
    for p in ph.iter().filter(|p| p.p_type == PT_LOAD) {
        min = min.min(elf_pagestart(p.p_vaddr));
        max = max.max(p.p_vaddr.wrapping_add(p.p_memsz));
        any = true;
    }
    if any {
        max.wrapping_sub(min)
    } else {
        0
    }
}

/// `maximum_alignment`: the largest power-of-two PT_LOAD `p_align`, at
/// least a page.
pub fn maximum_alignment(ph: &[Phdr]) -> u64 {
    let a = ph
        .iter()
        .filter(|p| p.p_type == PT_LOAD && p.p_align.is_power_of_two())
        .map(|p| p.p_align)
        .max()
        .unwrap_or(0);
    elf_pagealign(a)
}

/// `vm_mmap`'s argument checks (mm/util.c, mm/mmap.c `do_mmap`), done here
/// too so that no hostile value reaches the memory manager.
fn vm_mmap(
    mm: &mut dyn ExecMm,
    file: Option<FileRef>,
    addr: u64,
    len: u64,
    prot: u32,
    flags: u32,
    off: u64,
) -> Result<u64, Errno> {
    // vm_mmap (mm/util.c): `offset + PAGE_ALIGN(len) < offset` (the end
    // of the file range wraps) and an unaligned offset are EINVAL, before
    // do_mmap looks at anything.
    if off.wrapping_add(elf_pagealign(len)) < off {
        return Err(Errno::EINVAL);
    }
    if elf_pageoffset(off) != 0 {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Err(Errno::EINVAL);
    }
    let len = mm::types::page_align(len).ok_or(Errno::ENOMEM)?;
    let ts = mm.task_size();
    if len > ts {
        return Err(Errno::ENOMEM);
    }
    if (off >> 12).checked_add(len >> 12).is_none() {
        return Err(Errno::EOVERFLOW);
    }
    if flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0 && addr > ts - len {
        return Err(Errno::ENOMEM);
    }
    let hint = if addr >= ts { 0 } else { addr };
    let got = mm.mmap(VirtAddr(hint), len, prot, flags, file, off)?;
    Ok(got.as_u64())
}

/// `elf_map`: map the file part of a segment at `addr` (page-rounded). The
/// first mapping of an image maps `total_size` to reserve room for all
/// segments, then unmaps what is beyond this one.
fn elf_map(
    mm: &mut dyn ExecMm,
    file: &FileRef,
    addr: u64,
    p: &Phdr,
    prot: u32,
    flags: u32,
    total_size: u64,
) -> Result<u64, Errno> {
    let size = p.p_filesz.wrapping_add(elf_pageoffset(p.p_vaddr));
    let off = p.p_offset.wrapping_sub(elf_pageoffset(p.p_vaddr));
    let addr = elf_pagestart(addr);
    let size = elf_pagealign(size);
    if size == 0 {
        return Ok(addr);
    }
    if total_size != 0 {
        let total = elf_pagealign(total_size);
        let map = vm_mmap(mm, Some(file.clone()), addr, total, prot, flags, off)?;
        if total > size {
            // elf_map ignores vm_munmap's result too.
            let _ = mm.munmap(VirtAddr(map.wrapping_add(size)), total - size);
        }
        Ok(map)
    } else {
        vm_mmap(mm, Some(file.clone()), addr, size, prot, flags, off)
    }
}

/// `padzero`: zero from `addr` to the end of its page with `clear_user`,
/// which faults like a store of the task: it fails (EFAULT) on a segment
/// mapped without PF_W (the caller ignores that) and on a file page past
/// the end of the file (SIGBUS: "a .bss that cannot be cleared", which
/// `elf_load` turns into EFAULT for a writable segment).
fn padzero(mm: &mut dyn ExecMm, addr: u64) -> Result<(), Errno> {
    let n = elf_pageoffset(addr);
    if n != 0 {
        let zeros = [0u8; ELF_MIN_ALIGN as usize];
        mm.copy_to_user(VirtAddr(addr), &zeros[..(ELF_MIN_ALIGN - n) as usize])?;
    }
    Ok(())
}

/// `elf_load`: map one PT_LOAD: its file part, the zeroed tail of the last
/// file page, and anonymous memory (`vm_brk_flags`) for the rest of .bss.
fn elf_load(
    mm: &mut dyn ExecMm,
    file: &FileRef,
    addr: u64,
    p: &Phdr,
    prot: u32,
    flags: u32,
    total_size: u64,
) -> Result<u64, Errno> {
    let map_addr;
    let mut zero_start;
    let zero_end;
    if p.p_filesz != 0 {
        map_addr = elf_map(mm, file, addr, p, prot, flags, total_size)?;
        zero_start = map_addr
            .wrapping_add(elf_pageoffset(p.p_vaddr))
            .wrapping_add(p.p_filesz);
        zero_end = map_addr
            .wrapping_add(elf_pageoffset(p.p_vaddr))
            .wrapping_add(p.p_memsz);
        if p.p_memsz > p.p_filesz && padzero(mm, zero_start).is_err() && prot & PROT_WRITE != 0 {
            return Err(Errno::EFAULT);
        }
    } else {
        map_addr = elf_pagestart(addr);
        zero_start = map_addr;
        zero_end = zero_start
            .wrapping_add(elf_pageoffset(p.p_vaddr))
            .wrapping_add(p.p_memsz);
    }
    if p.p_memsz > p.p_filesz {
        // Linux calls vm_brk_flags(zero_start, zero_end - zero_start)
        // unconditionally: a p_memsz that wraps the address space makes
        // the length "negative", i.e. huge, which vm_brk_flags refuses
        // with ENOMEM (check_brk_limits → get_unmapped_area: len >
        // TASK_SIZE) before the p_filesz/p_memsz checks could say EINVAL.
        zero_start = elf_pagealign(zero_start);
        let zero_end = elf_pagealign(zero_end);
        vm_brk_flags(mm, zero_start, zero_end.wrapping_sub(zero_start), prot)?;
    }
    Ok(map_addr)
}

/// `vm_brk_flags` (mm/mmap.c): anonymous memory at exactly
/// `[addr, addr+len)`, `len` page-aligned. Nothing for 0; the limits of
/// `check_brk_limits` → `get_unmapped_area(NULL, addr, len, 0,
/// MAP_FIXED)`: ENOMEM if `len > TASK_SIZE` or the range passes TASK_SIZE.
fn vm_brk_flags(mm: &mut dyn ExecMm, addr: u64, len: u64, prot: u32) -> Result<(), Errno> {
    if len == 0 {
        return Ok(());
    }
    let ts = mm.task_size();
    if len > ts || addr > ts - len {
        return Err(Errno::ENOMEM);
    }
    mm.vm_brk_flags(VirtAddr(addr), len, prot & PROT_EXEC != 0)
}

/// `load_elf_interp`: map the interpreter; returns its load bias.
fn load_elf_interp(
    mm: &mut dyn ExecMm,
    h: &Ehdr,
    file: &FileRef,
    no_base: u64,
    ph: &[Phdr],
    e_machine: u16,
) -> Result<u64, Errno> {
    let ts = mm.task_size();
    // Linux returns ~0UL here, which reads as -EPERM.
    if h.e_type != ET_EXEC && h.e_type != ET_DYN {
        return Err(Errno::EPERM);
    }
    if !check_arch(h, e_machine) {
        return Err(Errno::EPERM);
    }
    let mut total_size = total_mapping_size(ph);
    if total_size == 0 {
        return Err(Errno::EINVAL);
    }
    let mut load_addr = 0u64;
    let mut load_addr_set = false;
    for p in ph.iter().filter(|p| p.p_type == PT_LOAD) {
        let mut flags = MAP_PRIVATE;
        let prot = make_prot(p.p_flags);
        let vaddr = p.p_vaddr;
        if h.e_type == ET_EXEC || load_addr_set {
            flags |= MAP_FIXED;
        } else if no_base != 0 && h.e_type == ET_DYN {
            load_addr = vaddr.wrapping_neg();
        }
        let map_addr = elf_load(
            mm,
            file,
            load_addr.wrapping_add(vaddr),
            p,
            prot,
            flags,
            total_size,
        )?;
        total_size = 0;
        if bad_addr(map_addr, ts) {
            return Err(Errno::EINVAL);
        }
        if !load_addr_set && h.e_type == ET_DYN {
            load_addr = map_addr.wrapping_sub(elf_pagestart(vaddr));
            load_addr_set = true;
        }
        let k = load_addr.wrapping_add(p.p_vaddr);
        if bad_addr(k, ts) || p.p_filesz > p.p_memsz || p.p_memsz > ts || ts - p.p_memsz < k {
            return Err(Errno::ENOMEM);
        }
    }
    Ok(load_addr)
}

/// `map_vdso` (x86, ≥ v6.9): one `get_unmapped_area` for \[vvar\],
/// \[vvar_vclock\] and \[vdso\] together, in that order upwards. Returns the
/// \[vdso\] text address (`mm->context.vdso`).
fn map_vdso(mm: &mut dyn ExecMm, v: &super::VdsoLayout) -> Result<u64, Errno> {
    let data = (v.vvar_pages + v.vclock_pages) * PAGE_SIZE;
    let text_len = v.text_pages * PAGE_SIZE;
    let addr = mm.get_unmapped_area(data + text_len)?.as_u64();
    let text = addr + data;
    mm.install_special_mapping(VirtAddr(text), text_len, PROT_READ | PROT_EXEC, "[vdso]")?;
    if v.vvar_pages != 0 {
        mm.install_special_mapping(
            VirtAddr(addr),
            v.vvar_pages * PAGE_SIZE,
            PROT_READ,
            "[vvar]",
        )?;
    }
    if v.vclock_pages != 0 {
        mm.install_special_mapping(
            VirtAddr(addr + v.vvar_pages * PAGE_SIZE),
            v.vclock_pages * PAGE_SIZE,
            PROT_READ,
            "[vvar_vclock]",
        )?;
    }
    Ok(text)
}

/// `load_elf_binary`: the ELF format handler.
pub fn load_elf_binary(mm: &mut dyn ExecMm, bprm: &mut Bprm) -> Result<Option<ExecResult>, Errno> {
    let eh = parse_ehdr(&bprm.buf).ok_or(Errno::ENOEXEC)?;
    if !eh.magic_ok {
        return Err(Errno::ENOEXEC);
    }
    if eh.e_type != ET_EXEC && eh.e_type != ET_DYN {
        return Err(Errno::ENOEXEC);
    }
    let arch = bprm.params.arch;
    let ts = mm.task_size();
    if !check_arch(&eh, arch.e_machine) {
        return Err(Errno::ENOEXEC);
    }
    let file = bprm.file.clone();
    let phdrs = load_elf_phdrs(&eh, &file).ok_or(Errno::ENOEXEC)?;

    // PT_INTERP: the first one names the interpreter.
    let mut interp: Option<(FileRef, Ehdr)> = None;
    if let Some(p) = phdrs.iter().find(|p| p.p_type == PT_INTERP) {
        if p.p_filesz > PATH_MAX || p.p_filesz < 2 {
            return Err(Errno::ENOEXEC);
        }
        let name = elf_read(&file, p.p_offset, p.p_filesz as usize)?;
        if name[name.len() - 1] != 0 {
            return Err(Errno::ENOEXEC);
        }
        let end = name.iter().position(|&c| c == 0).unwrap_or(0);
        let path = String::from_utf8_lossy(&name[..end]).into_owned();
        let ifile = open_exec_kernel(&path)?;
        let raw = elf_read(&ifile, 0, EHDR_SIZE)?;
        let ih = parse_ehdr(&raw).ok_or(Errno::EIO)?;
        interp = Some((ifile, ih));
    }

    // PT_GNU_STACK: the last one decides.
    let mut exec_stack = false;
    for p in phdrs.iter().filter(|p| p.p_type == PT_GNU_STACK) {
        exec_stack = p.p_flags & PF_X != 0;
    }

    let mut interp_phdrs = Vec::new();
    if let Some((ifile, ih)) = &interp {
        if !ih.magic_ok || !check_arch(ih, arch.e_machine) {
            return Err(Errno::ELIBBAD);
        }
        interp_phdrs = load_elf_phdrs(ih, ifile).ok_or(Errno::ELIBBAD)?;
    }

    // begin_new_exec: the old image is gone from here on.
    bprm.point_of_no_return = true;
    let params = bprm.params.clone();
    mm.pick_mmap_layout(params.rlimit_stack);

    // setup_arg_pages: the stack VMA and the strings in it.
    let (stack_start, stack_end) = bprm.args.stack_vma(params.rlimit_stack);
    mm.insert_stack_vma(VirtAddr(stack_start), VirtAddr(stack_end), exec_stack)?;
    // copy_strings put the strings there before any segment is mapped (a
    // segment mapped over the top of the stack replaces them, as in Linux).
    let strings_at = bprm.args.p();
    mm.write_user(VirtAddr(strings_at), &bprm.args.bytes())?;

    let mut load_bias = 0u64;
    let mut first = true;
    let mut total_size = 0u64;
    let mut phdr_addr = 0u64;
    let mut start_code = u64::MAX;
    let mut end_code = 0u64;
    let mut start_data = 0u64;
    let mut end_data = 0u64;
    let mut elf_brk = 0u64;
    let alignment = maximum_alignment(&phdrs);

    for p in phdrs.iter().filter(|p| p.p_type == PT_LOAD) {
        let prot = make_prot(p.p_flags);
        let mut flags = MAP_PRIVATE;
        let vaddr = p.p_vaddr;
        if !first {
            flags |= MAP_FIXED;
        } else if eh.e_type == ET_EXEC {
            flags |= MAP_FIXED_NOREPLACE;
        } else {
            if interp.is_some() {
                load_bias = arch.elf_et_dyn_base;
                if alignment != 0 {
                    load_bias &= !(alignment - 1);
                }
                flags |= MAP_FIXED_NOREPLACE;
            } else if alignment > ELF_MIN_ALIGN {
                let tsize = total_mapping_size(&phdrs);
                load_bias = elf_load(mm, &file, 0, p, prot, flags, tsize)?;
                if bad_addr(load_bias, ts) {
                    return Err(Errno::EINVAL);
                }
                // load_elf_binary ignores vm_munmap's result: a total
                // size that passes TASK_SIZE (EINVAL there) goes on to
                // fail, or not, at the segments' own mappings.
                let _ = mm.munmap(VirtAddr(load_bias), elf_pagealign(tsize));
                load_bias &= !(alignment - 1);
                flags |= MAP_FIXED_NOREPLACE;
            } else {
                load_bias = 0;
            }
            load_bias = elf_pagestart(load_bias.wrapping_sub(vaddr));
            total_size = total_mapping_size(&phdrs);
            if total_size == 0 {
                return Err(Errno::EINVAL);
            }
        }

        let got = elf_load(
            mm,
            &file,
            load_bias.wrapping_add(vaddr),
            p,
            prot,
            flags,
            total_size,
        )?;
        if bad_addr(got, ts) {
            return Err(Errno::EINVAL);
        }
        if first {
            first = false;
            if eh.e_type == ET_DYN {
                load_bias = load_bias
                    .wrapping_add(got)
                    .wrapping_sub(elf_pagestart(load_bias.wrapping_add(vaddr)));
            }
        }
        total_size = 0;

        if p.p_offset <= eh.e_phoff && eh.e_phoff < p.p_offset.wrapping_add(p.p_filesz) {
            phdr_addr = (eh.e_phoff - p.p_offset).wrapping_add(p.p_vaddr);
        }
        let k = p.p_vaddr;
        if p.p_flags & PF_X != 0 && k < start_code {
            start_code = k;
        }
        if start_data < k {
            start_data = k;
        }
        if bad_addr(k, ts) || p.p_filesz > p.p_memsz || p.p_memsz > ts || ts - p.p_memsz < k {
            return Err(Errno::EINVAL);
        }
        let k = p.p_vaddr + p.p_filesz;
        if p.p_flags & PF_X != 0 && end_code < k {
            end_code = k;
        }
        if end_data < k {
            end_data = k;
        }
        let k = p.p_vaddr + p.p_memsz;
        if k > elf_brk {
            elf_brk = k;
        }
    }

    let e_entry = eh.e_entry.wrapping_add(load_bias);
    phdr_addr = phdr_addr.wrapping_add(load_bias);
    elf_brk = elf_brk.wrapping_add(load_bias);
    start_code = start_code.wrapping_add(load_bias);
    end_code = end_code.wrapping_add(load_bias);
    start_data = start_data.wrapping_add(load_bias);
    end_data = end_data.wrapping_add(load_bias);

    let mut interp_base = None;
    let elf_entry = if let Some((ifile, ih)) = &interp {
        let base = load_elf_interp(mm, ih, ifile, load_bias, &interp_phdrs, arch.e_machine)?;
        let entry = base.wrapping_add(ih.e_entry);
        if bad_addr(entry, ts) {
            return Err(Errno::EINVAL);
        }
        interp_base = Some(base);
        entry
    } else {
        if bad_addr(e_entry, ts) {
            return Err(Errno::EINVAL);
        }
        e_entry
    };

    // ARCH_SETUP_ADDITIONAL_PAGES.
    let vdso = match &params.vdso {
        Some(v) => Some(map_vdso(mm, v)?),
        None => None,
    };

    let aux = AuxInfo {
        vdso,
        phdr: phdr_addr,
        phent: PHDR_SIZE as u64,
        phnum: eh.e_phnum as u64,
        base: interp_base.unwrap_or(0),
        entry: e_entry,
    };
    let t = create_elf_tables(&bprm.args, bprm.argc, bprm.envc, &aux, &params);
    if t.sp < stack_start {
        mm.insert_stack_vma(VirtAddr(t.sp & PAGE_MASK), VirtAddr(stack_end), exec_stack)?;
    }
    // create_elf_tables stores the platform string, AT_RANDOM bytes, argc,
    // argv, envp and auxv below the strings with copy_to_user/__put_user:
    // EFAULT if a segment mapped over the stack made that memory read-only.
    let tables = (strings_at.saturating_sub(t.sp) as usize).min(t.image.len());
    mm.copy_to_user(VirtAddr(t.sp), &t.image[..tables])?;

    // brk: right after .bss with ASLR off; a static PIE (or ld.so run
    // directly) gets it at ELF_ET_DYN_BASE instead.
    if eh.e_type == ET_DYN && interp.is_none() {
        elf_brk = arch.elf_et_dyn_base;
    }
    let brk = elf_pagealign(elf_brk);

    let layout = ExecLayout {
        start_code: VirtAddr(start_code),
        end_code: VirtAddr(end_code),
        start_data: VirtAddr(start_data),
        end_data: VirtAddr(end_data),
        start_brk: VirtAddr(brk),
        brk: VirtAddr(brk),
        start_stack: VirtAddr(t.sp),
        arg_start: VirtAddr(t.arg_start),
        arg_end: VirtAddr(t.arg_end),
        env_start: VirtAddr(t.env_start),
        env_end: VirtAddr(t.env_end),
        vdso: VirtAddr(vdso.unwrap_or(0)),
        stack_vma: (
            VirtAddr(stack_start.min(t.sp & PAGE_MASK)),
            VirtAddr(stack_end),
        ),
        exec_stack,
    };
    mm.set_layout(&layout);

    let argv = read_strings(&bprm.args.bytes(), bprm.argc);
    Ok(Some(ExecResult {
        entry: VirtAddr(elf_entry),
        start_stack: VirtAddr(t.sp),
        auxv: t.auxv,
        layout,
        interp_base: interp_base.map(VirtAddr),
        program_entry: VirtAddr(e_entry),
        exe_path: file.path().to_string(),
        argv,
    }))
}

/// The first `n` NUL-terminated strings of `bytes`.
fn read_strings(bytes: &[u8], n: usize) -> Vec<String> {
    bytes
        .split(|&b| b == 0)
        .take(n)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vaddr: u64, memsz: u64, align: u64) -> Phdr {
        Phdr {
            p_type: PT_LOAD,
            p_flags: PF_R,
            p_offset: vaddr & 0xfff,
            p_vaddr: vaddr,
            p_filesz: 0,
            p_memsz: memsz,
            p_align: align,
        }
    }

    #[test]
    fn mapping_size_and_alignment() {
        let ph = [load(0x1234, 0x10, 0x1000), load(0x5000, 0x2000, 0x200000)];
        assert_eq!(total_mapping_size(&ph), 0x7000 - 0x1000);
        assert_eq!(maximum_alignment(&ph), 0x200000);
        // Non-power-of-two alignments are ignored (0 stays 0, as in Linux).
        assert_eq!(maximum_alignment(&[load(0, 1, 0x3000)]), 0);
        assert_eq!(maximum_alignment(&[load(0, 1, 0x10)]), 0x1000);
        assert_eq!(total_mapping_size(&[]), 0);
        assert_eq!(super::super::ELF_ET_DYN_BASE, 0x5555_5555_4aaa);
        // arm64: 2 * DEFAULT_MAP_WINDOW_64 / 3, then the 64 KiB alignment
        // of Debian's arm64 binaries gives the familiar 0xaaaaaaaa0000.
        assert_eq!(super::super::ARM64_ELF_ET_DYN_BASE, 0xaaaa_aaaa_aaaa);
        assert_eq!(
            super::super::ARM64_ELF_ET_DYN_BASE & !0xffff,
            0xaaaa_aaaa_0000
        );
    }

    #[test]
    fn short_or_bad_headers() {
        assert_eq!(parse_ehdr(&[0; 63]), None);
        let h = parse_ehdr(&[0; 64]).unwrap();
        assert!(!h.magic_ok);
        assert_eq!(make_prot(PF_R | PF_X), PROT_READ | PROT_EXEC);
    }
}
