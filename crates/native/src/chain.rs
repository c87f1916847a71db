//! The return chain: a page fault served in one ptrace stop.
//!
//! Without it a fault costs two round trips through the host scheduler:
//! the SIGSEGV stop, then the injected `mmap` of the mirror (run at the
//! trampoline, stopping at its `int3` so that lmm can put the program's
//! registers back). The chain removes the second: lmm writes the mirror
//! calls and the program's registers into the trampoline page, points
//! the stub at code there that makes the calls, reloads every register
//! those calls clobbered and jumps back to the faulting instruction, and
//! lets the stub run. No instruction of the chain changes the flags
//! (only `mov`, `syscall` and `jmp`; `syscall` and `sysret` keep them),
//! and none touches the stack, so a leaf function's red zone survives.
//!
//! The stub runs the chain with PTRACE_CONT, not PTRACE_SYSEMU (under
//! which its `syscall` would stop): a seccomp filter ([`FILTER`]) lets
//! system calls made from the trampoline page run and sends every other
//! one to lmm as a PTRACE_EVENT_SECCOMP stop, which lmm serves as it
//! serves a PTRACE_SYSEMU stop (skipping the call). This is gVisor's
//! systrap idea, kept inside ptrace: the filter tells the stub's own calls
//! from the program's by the instruction pointer.
//!
//! Deviation: the program's own `prctl(PR_GET_SECCOMP)` (run by the host)
//! sees the filter; lmm's /proc/PID/status does not show it.

use crate::ptrace::{Regs, TRAMPOLINE, WINDOW};

/// Where the chain's code starts in the trampoline page.
pub const CODE: u64 = TRAMPOLINE + 128;
/// Where its data starts: the calls, then the saved registers, in the
/// window lmm writes with plain stores.
pub const DATA: u64 = WINDOW;
/// Calls one chain makes at most (a fault mirrors one run, sometimes two;
/// more are made the old way, one stop each).
pub const MAX_CALLS: usize = 4;

/// Bytes of one call's code: seven loads and a `syscall`.
const CALL_BYTES: usize = 7 * 7 + 2;
/// Words of one call's data: the number and six arguments.
const CALL_WORDS: usize = 7;
/// The registers a call clobbers or loads, restored before the jump, in
/// data order (x86-64 register numbers: rax, rcx, rdx, rsi, rdi, r8-r11).
const RESTORED: [u8; 9] = [0, 1, 2, 6, 7, 8, 9, 10, 11];
/// The argument registers of a call in order (rdi, rsi, rdx, r10, r8, r9).
const ARGS: [u8; 6] = [7, 6, 2, 10, 8, 9];
/// Where the saved registers start (after the calls).
const SAVED: u64 = DATA + (MAX_CALLS * CALL_WORDS * 8) as u64;
/// Bytes of the whole code.
pub const CODE_BYTES: usize = MAX_CALLS * CALL_BYTES + RESTORED.len() * 7 + 6;

/// `mov reg, [rip + disp]` at `at`, loading the word at `target`.
fn load(code: &mut [u8], at: usize, reg: u8, target: u64) {
    let next = CODE + at as u64 + 7;
    let disp = (target as i64 - next as i64) as i32;
    code[at] = 0x48 | if reg >= 8 { 0x04 } else { 0 };
    code[at + 1] = 0x8b;
    code[at + 2] = ((reg & 7) << 3) | 0x05;
    code[at + 3..at + 7].copy_from_slice(&disp.to_le_bytes());
}

/// The chain's machine code, to be placed at [`CODE`]. Call slot `i`
/// loads its data at `DATA + 56 i`; a chain of `n` calls enters at the
/// slot `MAX_CALLS - n` ([`entry`]), so the last `n` slots run.
pub fn code() -> [u8; CODE_BYTES] {
    let mut c = [0u8; CODE_BYTES];
    let mut at = 0;
    for i in 0..MAX_CALLS {
        let data = DATA + (i * CALL_WORDS * 8) as u64;
        load(&mut c, at, 0, data);
        at += 7;
        for (k, reg) in ARGS.iter().enumerate() {
            load(&mut c, at, *reg, data + 8 * (k as u64 + 1));
            at += 7;
        }
        c[at] = 0x0f;
        c[at + 1] = 0x05;
        at += 2;
    }
    for (k, reg) in RESTORED.iter().enumerate() {
        load(&mut c, at, *reg, SAVED + 8 * k as u64);
        at += 7;
    }
    // jmp [rip + disp]: to the saved rip, after the restored registers.
    let target = SAVED + 8 * RESTORED.len() as u64;
    let disp = (target as i64 - (CODE + at as u64 + 6) as i64) as i32;
    c[at] = 0xff;
    c[at + 1] = 0x25;
    c[at + 2..at + 6].copy_from_slice(&disp.to_le_bytes());
    c
}

/// Where a chain of `n` calls (1 to [`MAX_CALLS`]) enters.
pub fn entry(n: usize) -> u64 {
    CODE + ((MAX_CALLS - n) * CALL_BYTES) as u64
}

/// True if `rip` lies in the chain's code: a stop there came before the
/// chain was through.
pub fn inside(rip: u64) -> bool {
    (CODE..CODE + CODE_BYTES as u64).contains(&rip)
}

/// The data a chain of `calls` (number and arguments each) needs, to be
/// written at [`DATA`]: the calls in the last slots, then `regs`' values
/// of the restored registers and its rip.
pub fn data(calls: &[[u64; 7]], regs: &Regs) -> Vec<u8> {
    let mut words = vec![0u64; MAX_CALLS * CALL_WORDS];
    for (i, call) in calls.iter().enumerate() {
        let slot = MAX_CALLS - calls.len() + i;
        words[slot * CALL_WORDS..(slot + 1) * CALL_WORDS].copy_from_slice(call);
    }
    words.extend([
        regs.rax, regs.rcx, regs.rdx, regs.rsi, regs.rdi, regs.r8, regs.r9, regs.r10, regs.r11,
        regs.rip,
    ]);
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// `struct seccomp_data` offsets: the audit arch, and the instruction
/// pointer's low and high halves (little-endian).
const ARCH_AT: u32 = 4;
const IP_LOW_AT: u32 = 8;
const IP_HIGH_AT: u32 = 12;
/// `AUDIT_ARCH_X86_64` (EM_X86_64 with the 64-bit and little-endian bits).
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

/// The stub's seccomp filter: a call made from the trampoline page (the
/// instruction pointer after its `syscall` lies in it) of the x86-64 ABI
/// runs; any other call stops for lmm (SECCOMP_RET_TRACE).
pub const FILTER: [libc::sock_filter; 9] = {
    const LD: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const JGE: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
    const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    const fn op(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
        libc::sock_filter { code, jt, jf, k }
    }
    [
        op(LD, 0, 0, ARCH_AT),
        op(JEQ, 0, 6, AUDIT_ARCH_X86_64),
        op(LD, 0, 0, IP_HIGH_AT),
        op(JEQ, 0, 4, 0),
        op(LD, 0, 0, IP_LOW_AT),
        op(JGE, 0, 2, TRAMPOLINE as u32),
        op(JGE, 1, 0, (TRAMPOLINE + 4096) as u32),
        op(RET, 0, 0, libc::SECCOMP_RET_ALLOW),
        op(RET, 0, 0, libc::SECCOMP_RET_TRACE),
    ]
};

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::{Decoder, DecoderOptions, Mnemonic, Register};

    /// The register iced names for x86-64 register number `n`.
    fn reg(n: u8) -> Register {
        [
            Register::RAX,
            Register::RCX,
            Register::RDX,
            Register::RBX,
            Register::RSP,
            Register::RBP,
            Register::RSI,
            Register::RDI,
            Register::R8,
            Register::R9,
            Register::R10,
            Register::R11,
        ][n as usize]
    }

    #[test]
    fn the_code_makes_the_calls_then_restores_and_jumps_back() {
        let code = code();
        let mut d = Decoder::with_ip(64, &code, CODE, DecoderOptions::NONE);
        let mut seen = Vec::new();
        while d.can_decode() {
            let i = d.decode();
            assert!(!i.is_invalid(), "invalid instruction at {:#x}", i.ip());
            seen.push(i);
        }
        // Per call: rax then the six argument registers, each loaded from
        // its word of the call's data, then `syscall`.
        let mut it = seen.iter();
        for slot in 0..MAX_CALLS {
            let base = DATA + (slot * CALL_WORDS * 8) as u64;
            assert_eq!(
                it.clone().next().map(|i| i.ip()),
                Some(entry(MAX_CALLS - slot))
            );
            for (k, r) in [0u8].iter().chain(ARGS.iter()).enumerate() {
                let i = it.next().expect("a load");
                assert_eq!(i.mnemonic(), Mnemonic::Mov);
                assert_eq!(i.op0_register(), reg(*r));
                assert_eq!(i.memory_displacement64(), base + 8 * k as u64);
            }
            assert_eq!(it.next().map(|i| i.mnemonic()), Some(Mnemonic::Syscall));
        }
        for (k, r) in RESTORED.iter().enumerate() {
            let i = it.next().expect("a restore");
            assert_eq!(i.mnemonic(), Mnemonic::Mov);
            assert_eq!(i.op0_register(), reg(*r));
            assert_eq!(i.memory_displacement64(), SAVED + 8 * k as u64);
        }
        let jmp = it.next().expect("the jump back");
        assert_eq!(jmp.mnemonic(), Mnemonic::Jmp);
        assert_eq!(
            jmp.memory_displacement64(),
            SAVED + 8 * RESTORED.len() as u64
        );
        assert!(it.next().is_none());
        // Nothing in it writes the flags or the stack.
        for i in &seen {
            assert!(
                matches!(
                    i.mnemonic(),
                    Mnemonic::Mov | Mnemonic::Syscall | Mnemonic::Jmp
                ),
                "{:?}",
                i.mnemonic()
            );
        }
        assert!(inside(CODE) && inside(CODE + CODE_BYTES as u64 - 1));
        assert!(!inside(CODE + CODE_BYTES as u64) && !inside(TRAMPOLINE));
    }

    #[test]
    fn the_data_puts_the_calls_in_the_last_slots_then_the_registers() {
        // SAFETY: user_regs_struct is plain integers; all zeroes is valid.
        let mut r: Regs = unsafe { std::mem::zeroed() };
        (r.rax, r.rcx, r.rdx, r.rsi, r.rdi) = (1, 2, 3, 4, 5);
        (r.r8, r.r9, r.r10, r.r11, r.rip) = (6, 7, 8, 9, 0x40_1000);
        let call = [9, 0x7000, 4096, 3, 0x11, 1000, 0x5000];
        let d = data(&[call], &r);
        let word = |i: usize| u64::from_le_bytes(d[8 * i..8 * i + 8].try_into().unwrap());
        let last = (MAX_CALLS - 1) * CALL_WORDS;
        assert_eq!(
            (0..CALL_WORDS).map(|k| word(last + k)).collect::<Vec<_>>(),
            call
        );
        assert!((0..last).all(|i| word(i) == 0));
        let saved = MAX_CALLS * CALL_WORDS;
        assert_eq!(
            (0..10).map(|k| word(saved + k)).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 0x40_1000]
        );
        assert!(d.len() <= 4096);
        assert!(CODE + CODE_BYTES as u64 <= DATA);
    }
}
