//! Overcommit accounting: whether a new commitment of private writable
//! memory (a VM_ACCOUNT mapping, brk growth, mremap growth, mprotect to
//! writable, stack growth) may be made. Mirrors `__vm_enough_memory` in
//! mm/util.c, the `security_vm_enough_memory_mm` check of those paths.
//!
//! Simplifications: only the `vm.overcommit_memory` modes 0 (heuristic, the
//! default) and 1 (always) are modelled; mode 2 (never), which needs the
//! machine-wide `vm_committed_as` sum, is not. The totals are a snapshot the
//! machine gives each address space when it creates it.

use crate::errno::Errno;

/// `vm.overcommit_memory`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OvercommitMode {
    /// 0, `OVERCOMMIT_GUESS`: refuse only a single request larger than all
    /// of RAM plus swap.
    #[default]
    Guess,
    /// 1, `OVERCOMMIT_ALWAYS`: never refuse.
    Always,
}

/// What `__vm_enough_memory` looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overcommit {
    /// The policy.
    pub mode: OvercommitMode,
    /// `totalram_pages()`.
    pub totalram_pages: u64,
    /// `total_swap_pages`.
    pub total_swap_pages: u64,
}

impl Default for Overcommit {
    /// The heuristic mode with unknown (unlimited) memory: nothing is
    /// refused until the machine says how much memory it has.
    fn default() -> Self {
        Overcommit {
            mode: OvercommitMode::Guess,
            totalram_pages: u64::MAX,
            total_swap_pages: 0,
        }
    }
}

impl Overcommit {
    /// `__vm_enough_memory(mm, pages)`: ENOMEM if a commitment of `pages`
    /// pages is refused. In the heuristic mode (Linux >= 5.x) the only test
    /// is `pages > totalram_pages() + total_swap_pages`: a single request
    /// larger than all memory and swap fails, however little is in use.
    pub fn vm_enough_memory(&self, pages: u64) -> Result<(), Errno> {
        match self.mode {
            OvercommitMode::Always => Ok(()),
            OvercommitMode::Guess => {
                if pages > self.totalram_pages.saturating_add(self.total_swap_pages) {
                    Err(Errno::ENOMEM)
                } else {
                    Ok(())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guess_refuses_only_more_than_ram_plus_swap() {
        // mm/util.c __vm_enough_memory, OVERCOMMIT_GUESS:
        // `if (pages > totalram_pages() + total_swap_pages) goto error;`
        let o = Overcommit {
            mode: OvercommitMode::Guess,
            totalram_pages: 1000,
            total_swap_pages: 24,
        };
        assert_eq!(o.vm_enough_memory(1024), Ok(()));
        assert_eq!(o.vm_enough_memory(1025), Err(Errno::ENOMEM));
        let always = Overcommit {
            mode: OvercommitMode::Always,
            ..o
        };
        assert_eq!(always.vm_enough_memory(u64::MAX), Ok(()));
        assert_eq!(Overcommit::default().vm_enough_memory(u64::MAX - 1), Ok(()));
    }
}
