//! A host SIGSEGV in the stub turned into the page fault the hardware
//! raised (arch/x86/mm/fault.c's view of it): the address is `si_addr`,
//! and the access type (read, write or instruction fetch: the error code's
//! W and I bits) is found as follows, so that lmm's fault handler takes
//! the same faults Linux's would:
//!
//! - `si_addr` inside the instruction at `rip` (or the instruction cannot
//!   be read): an instruction fetch;
//! - SEGV_ACCERR on a page lmm mirrored read-only: a write (a fetch from a
//!   mirrored page would have faulted at `rip`);
//! - otherwise the faulting instruction is decoded (iced-x86) and the
//!   memory operand that covers `si_addr` gives the access: a write for a
//!   write or read-modify-write operand (x86 reports RMW faults as writes),
//!   a read otherwise. When no operand's address can be matched (a gather
//!   with vector indices) any write operand makes it a write.
//!
//! The instruction's bytes are read through lmm's page table from the
//! machine's RAM (the frames the stub mirrors), without a system call;
//! only code lmm does not map (the host's vDSO) is read from the stub.

use iced_x86::{Decoder, DecoderOptions, InstructionInfoFactory, OpAccess, Register};
use machine::mmu::Access;

use crate::ptrace::Regs;

/// The longest x86 instruction.
const MAX_INSN: usize = 15;

/// The access of the fault at `addr` taken by the instruction at
/// `regs.rip`; `accerr` if the host said SEGV_ACCERR (the page was
/// mirrored, read-only). `read_mem` reads the program's memory as the
/// stub sees it: how many bytes it could read at an address.
pub fn access_type(
    read_mem: impl Fn(u64, &mut [u8]) -> usize,
    regs: &Regs,
    addr: u64,
    accerr: bool,
) -> Access {
    let rip = regs.rip;
    if addr >= rip && addr < rip.wrapping_add(MAX_INSN as u64) && !accerr {
        // The fault could be the fetch of the instruction's tail: decode
        // what is readable; if the instruction is complete and does not
        // reach `addr`, it was a data access.
        let mut buf = [0u8; MAX_INSN];
        let n = read_mem(rip, &mut buf[..(addr - rip) as usize]);
        if n < (addr - rip) as usize {
            return Access::Exec;
        }
        let mut d = Decoder::with_ip(64, &buf[..n], rip, DecoderOptions::NONE);
        let insn = d.decode();
        if insn.is_invalid() {
            return Access::Exec;
        }
    }
    if accerr {
        return if addr == rip {
            Access::Exec
        } else {
            Access::Write
        };
    }
    let mut buf = [0u8; MAX_INSN];
    // The instruction may end on a page that is not mirrored: read what is.
    let to_page_end = (4096 - (rip & 4095)) as usize;
    let mut n = read_mem(rip, &mut buf[..to_page_end.min(MAX_INSN)]);
    if n == to_page_end && n < MAX_INSN {
        n += read_mem(rip + n as u64, &mut buf[n..]);
    }
    if n == 0 {
        return Access::Exec;
    }
    let mut d = Decoder::with_ip(64, &buf[..n], rip, DecoderOptions::NONE);
    let insn = d.decode();
    if insn.is_invalid() {
        return Access::Read;
    }
    let mut factory = InstructionInfoFactory::new();
    let info = factory.info(&insn);
    let next_ip = insn.next_ip();
    let page = addr & !4095;
    let mut any_write = false;
    for m in info.used_memory() {
        let write = matches!(
            m.access(),
            OpAccess::Write | OpAccess::CondWrite | OpAccess::ReadWrite | OpAccess::ReadCondWrite
        );
        if matches!(m.access(), OpAccess::NoMemAccess | OpAccess::None) {
            continue;
        }
        any_write |= write;
        let va = m.virtual_address(0, |reg, _, _| register_value(regs, next_ip, reg));
        if let Some(va) = va {
            let size = (m.memory_size().size() as u64).max(1);
            let first = va & !4095;
            let last = va.wrapping_add(size - 1) & !4095;
            if page >= first && page <= last {
                return if write { Access::Write } else { Access::Read };
            }
        }
    }
    if any_write {
        Access::Write
    } else {
        Access::Read
    }
}

/// The value of general register `reg` (any width) in `regs`, the FS/GS
/// segment bases, `next_ip` for RIP; `None` for what is not a general
/// register (vector indices).
fn register_value(regs: &Regs, next_ip: u64, reg: Register) -> Option<u64> {
    let full = match reg.full_register() {
        Register::RAX => regs.rax,
        Register::RBX => regs.rbx,
        Register::RCX => regs.rcx,
        Register::RDX => regs.rdx,
        Register::RSI => regs.rsi,
        Register::RDI => regs.rdi,
        Register::RBP => regs.rbp,
        Register::RSP => regs.rsp,
        Register::R8 => regs.r8,
        Register::R9 => regs.r9,
        Register::R10 => regs.r10,
        Register::R11 => regs.r11,
        Register::R12 => regs.r12,
        Register::R13 => regs.r13,
        Register::R14 => regs.r14,
        Register::R15 => regs.r15,
        Register::RIP => next_ip,
        Register::FS => regs.fs_base,
        Register::GS => regs.gs_base,
        Register::ES | Register::CS | Register::SS | Register::DS => 0,
        _ => return None,
    };
    let bits = reg.size() * 8;
    Some(if bits >= 64 || reg.is_segment_register() {
        full
    } else {
        full & ((1u64 << bits) - 1)
    })
}
