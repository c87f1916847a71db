//! Overcommit accounting: the machine-wide commitment `vm_committed_as`,
//! the limit `vm_commit_limit` and the policy `__vm_enough_memory` that
//! decides whether a new commitment of private writable memory may be made.
//! Mirrors mm/util.c (Linux 6.18).
//!
//! Where the charge is counted. Linux adds to `vm_committed_as` in
//! `__vm_enough_memory` (via `security_vm_enough_memory_mm`) at each site
//! that creates accountable memory: `__mmap_region` (less the accounted pages
//! a MAP_FIXED replaces), `do_brk_flags`, `acct_stack_growth`,
//! `insert_vm_struct` (exec's stack), `mprotect_fixup` (private memory made
//! writable), `vrm_calc_charge` (mremap growth or a DONTUNMAP copy) and
//! `dup_mmap` (each VM_ACCOUNT VMA of the child); it subtracts with
//! `vm_unacct_memory` when accounted VMAs are unmapped
//! (`vms_complete_munmap_vmas`), at `exit_mmap`, when mprotect drops
//! VM_ACCOUNT from an unfaulted anonymous VMA, and on every failure path.
//! The net effect of all these sites (the 6.18 fix of mremap DONTUNMAP's
//! accounting restored it) is that the counter is the number of pages in
//! VM_ACCOUNT VMAs over all address spaces. lmm keeps exactly that sum where
//! VMAs enter and leave an address space (`link_vma`, `unlink_vma`, a flag
//! change, fork), and makes the *check* of `__vm_enough_memory` at Linux's
//! sites, before the VMA is linked; the counter is shared by every address
//! space of a machine through [`Overcommit`] handles. `mm::debug` checks the
//! sum.
//!
//! Simplifications: the shmem charge of shared anonymous memory and tmpfs
//! files (`shmem_acct_size`) and hugetlb are not counted; the counter is
//! exact (Linux's per-CPU counter is read approximately); the
//! `__vm_enough_memory` warning line is not logged.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering::Relaxed};

use crate::errno::Errno;
use crate::types::PAGE_SHIFT;

/// `vm.overcommit_memory`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OvercommitMode {
    /// 0, `OVERCOMMIT_GUESS`: refuse only a single request larger than all
    /// of RAM plus swap.
    #[default]
    Guess,
    /// 1, `OVERCOMMIT_ALWAYS`: never refuse.
    Always,
    /// 2, `OVERCOMMIT_NEVER`: refuse when the commitment would reach
    /// CommitLimit (less the reserves).
    Never,
}

impl OvercommitMode {
    /// The sysctl value (0, 1, 2).
    pub fn value(self) -> u8 {
        match self {
            OvercommitMode::Guess => 0,
            OvercommitMode::Always => 1,
            OvercommitMode::Never => 2,
        }
    }
    /// The mode for a sysctl value; `None` outside 0..=2 (the sysctl's
    /// `proc_dointvec_minmax` range: EINVAL).
    pub fn from_value(v: i64) -> Option<OvercommitMode> {
        match v {
            0 => Some(OvercommitMode::Guess),
            1 => Some(OvercommitMode::Always),
            2 => Some(OvercommitMode::Never),
            _ => None,
        }
    }
}

/// vm.overcommit_ratio's default (percent of RAM in CommitLimit).
pub const OVERCOMMIT_RATIO_DEFAULT: i64 = 50;
/// Cap of vm.admin_reserve_kbytes' boot value (8 MiB, `init_admin_reserve`).
pub const ADMIN_RESERVE_CAP_KB: u64 = 1 << 13;
/// Cap of vm.user_reserve_kbytes' boot value (128 MiB, `init_user_reserve`).
pub const USER_RESERVE_CAP_KB: u64 = 1 << 17;

/// The machine-wide state behind every [`Overcommit`] handle: the sysctls,
/// the memory totals and `vm_committed_as`.
#[derive(Debug)]
struct Policy {
    mode: AtomicU8,
    ratio: AtomicI64,
    kbytes: AtomicU64,
    admin_reserve_kbytes: AtomicU64,
    user_reserve_kbytes: AtomicU64,
    totalram_pages: AtomicU64,
    total_swap_pages: AtomicU64,
    committed: AtomicI64,
}

/// A handle on the machine's overcommit policy and `vm_committed_as`.
/// Clones share the same state: the machine gives one to every address
/// space it creates, and fork's child inherits its parent's.
#[derive(Clone, Debug)]
pub struct Overcommit(Arc<Policy>);

impl Default for Overcommit {
    /// The heuristic mode with unknown (unlimited) memory: nothing is
    /// refused until the machine says how much memory it has.
    fn default() -> Self {
        Overcommit::new(OvercommitMode::Guess, u64::MAX, 0)
    }
}

impl Overcommit {
    /// A fresh policy with Linux's sysctl defaults (ratio 50, kbytes 0, the
    /// reserves at their caps until [`Overcommit::init_reserves`]) and
    /// nothing committed.
    pub fn new(mode: OvercommitMode, totalram_pages: u64, total_swap_pages: u64) -> Self {
        Overcommit(Arc::new(Policy {
            mode: AtomicU8::new(mode.value()),
            ratio: AtomicI64::new(OVERCOMMIT_RATIO_DEFAULT),
            kbytes: AtomicU64::new(0),
            admin_reserve_kbytes: AtomicU64::new(ADMIN_RESERVE_CAP_KB),
            user_reserve_kbytes: AtomicU64::new(USER_RESERVE_CAP_KB),
            totalram_pages: AtomicU64::new(totalram_pages),
            total_swap_pages: AtomicU64::new(total_swap_pages),
            committed: AtomicI64::new(0),
        }))
    }

    /// True if both handles share one policy (one machine).
    pub fn same(&self, other: &Overcommit) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// `init_admin_reserve` / `init_user_reserve`: at boot each reserve is
    /// 1/32 (about 3%) of the free memory, capped at 8 MiB and 128 MiB.
    pub fn init_reserves(&self, free_pages: u64) {
        let free_kb = free_pages << (PAGE_SHIFT - 10);
        self.0
            .admin_reserve_kbytes
            .store((free_kb / 32).min(ADMIN_RESERVE_CAP_KB), Relaxed);
        self.0
            .user_reserve_kbytes
            .store((free_kb / 32).min(USER_RESERVE_CAP_KB), Relaxed);
    }

    /// `vm.overcommit_memory`.
    pub fn mode(&self) -> OvercommitMode {
        OvercommitMode::from_value(i64::from(self.0.mode.load(Relaxed))).unwrap_or_default()
    }
    /// Sets `vm.overcommit_memory`.
    pub fn set_mode(&self, mode: OvercommitMode) {
        self.0.mode.store(mode.value(), Relaxed);
    }
    /// `vm.overcommit_ratio`.
    pub fn ratio(&self) -> i64 {
        self.0.ratio.load(Relaxed)
    }
    /// Sets `vm.overcommit_ratio`; like `overcommit_ratio_handler` this
    /// clears `vm.overcommit_kbytes`, so that the ratio is what counts.
    pub fn set_ratio(&self, ratio: i64) {
        self.0.ratio.store(ratio, Relaxed);
        self.0.kbytes.store(0, Relaxed);
    }
    /// `vm.overcommit_kbytes`.
    pub fn kbytes(&self) -> u64 {
        self.0.kbytes.load(Relaxed)
    }
    /// Sets `vm.overcommit_kbytes`; like `overcommit_kbytes_handler` this
    /// clears `vm.overcommit_ratio`.
    pub fn set_kbytes(&self, kbytes: u64) {
        self.0.kbytes.store(kbytes, Relaxed);
        self.0.ratio.store(0, Relaxed);
    }
    /// `vm.admin_reserve_kbytes`.
    pub fn admin_reserve_kbytes(&self) -> u64 {
        self.0.admin_reserve_kbytes.load(Relaxed)
    }
    /// Sets `vm.admin_reserve_kbytes`.
    pub fn set_admin_reserve_kbytes(&self, kb: u64) {
        self.0.admin_reserve_kbytes.store(kb, Relaxed);
    }
    /// `vm.user_reserve_kbytes`.
    pub fn user_reserve_kbytes(&self) -> u64 {
        self.0.user_reserve_kbytes.load(Relaxed)
    }
    /// Sets `vm.user_reserve_kbytes`.
    pub fn set_user_reserve_kbytes(&self, kb: u64) {
        self.0.user_reserve_kbytes.store(kb, Relaxed);
    }
    /// `totalram_pages()`.
    pub fn totalram_pages(&self) -> u64 {
        self.0.totalram_pages.load(Relaxed)
    }
    /// `total_swap_pages`.
    pub fn total_swap_pages(&self) -> u64 {
        self.0.total_swap_pages.load(Relaxed)
    }
    /// Records the machine's RAM and swap (after boot, swapon, swapoff).
    pub fn set_totals(&self, totalram_pages: u64, total_swap_pages: u64) {
        self.0.totalram_pages.store(totalram_pages, Relaxed);
        self.0.total_swap_pages.store(total_swap_pages, Relaxed);
    }

    /// `vm_committed_as` in pages, as `percpu_counter_read_positive` reads
    /// it (never below 0).
    pub fn committed_pages(&self) -> u64 {
        self.0.committed.load(Relaxed).max(0) as u64
    }
    /// `vm_acct_memory(pages)`: adds a commitment (negative: removes one).
    pub fn vm_acct_memory(&self, pages: i64) {
        self.0.committed.fetch_add(pages, Relaxed);
    }
    /// `vm_unacct_memory(pages)`.
    pub fn vm_unacct_memory(&self, pages: i64) {
        self.vm_acct_memory(-pages);
    }

    /// `vm_commit_limit`: `vm.overcommit_kbytes` in pages if it is set, else
    /// `(totalram_pages - hugetlb pages) * vm.overcommit_ratio / 100`
    /// (no hugetlb pages here), plus all swap. Used by mode 2 and shown as
    /// /proc/meminfo's CommitLimit.
    pub fn vm_commit_limit(&self) -> u64 {
        let kbytes = self.kbytes();
        let allowed = if kbytes != 0 {
            kbytes >> (PAGE_SHIFT - 10)
        } else {
            // An `unsigned long` product in Linux; a negative ratio (the
            // sysctl does not forbid it) makes no sense, count it as 0.
            let ratio = self.ratio().max(0) as u64;
            self.totalram_pages().saturating_mul(ratio) / 100
        };
        allowed.saturating_add(self.total_swap_pages())
    }

    /// The policy test of `__vm_enough_memory(mm, pages, cap_sys_admin)`:
    /// ENOMEM if committing `pages` more pages is refused. `mm_total_vm` is
    /// the requesting address space's `total_vm` (`None` without an mm).
    ///
    /// - mode 1 (always): never refused;
    /// - mode 0 (guess, Linux >= 5.x): refused only if `pages` alone exceeds
    ///   `totalram_pages() + total_swap_pages`;
    /// - mode 2 (never): `allowed` is [`Overcommit::vm_commit_limit`], less
    ///   vm.admin_reserve_kbytes unless the caller has CAP_SYS_ADMIN, less
    ///   min(total_vm / 32, vm.user_reserve_kbytes) when there is an mm;
    ///   granted only if the commitment *including* `pages` stays strictly
    ///   below `allowed`.
    ///
    /// Linux adds `pages` to `vm_committed_as` first and takes them back on
    /// refusal; here the charge is made when the VMA is linked (see the
    /// module comment), so this only decides.
    pub fn vm_enough_memory(
        &self,
        pages: u64,
        mm_total_vm: Option<u64>,
        cap_sys_admin: bool,
    ) -> Result<(), Errno> {
        match self.mode() {
            OvercommitMode::Always => Ok(()),
            OvercommitMode::Guess => {
                if pages
                    > self
                        .totalram_pages()
                        .saturating_add(self.total_swap_pages())
                {
                    Err(Errno::ENOMEM)
                } else {
                    Ok(())
                }
            }
            OvercommitMode::Never => {
                let mut allowed = self.vm_commit_limit() as i128;
                if !cap_sys_admin {
                    allowed -= i128::from(self.admin_reserve_kbytes() >> (PAGE_SHIFT - 10));
                }
                if let Some(total_vm) = mm_total_vm {
                    let reserve = self.user_reserve_kbytes() >> (PAGE_SHIFT - 10);
                    allowed -= i128::from((total_vm / 32).min(reserve));
                }
                let committed = i128::from(self.0.committed.load(Relaxed)) + i128::from(pages);
                if committed.max(0) < allowed {
                    Ok(())
                } else {
                    Err(Errno::ENOMEM)
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
        // refused only if pages > totalram_pages() + total_swap_pages.
        let o = Overcommit::new(OvercommitMode::Guess, 1000, 24);
        o.vm_acct_memory(1_000_000);
        assert_eq!(o.vm_enough_memory(1024, Some(0), true), Ok(()));
        assert_eq!(o.vm_enough_memory(1025, Some(0), true), Err(Errno::ENOMEM));
        o.set_mode(OvercommitMode::Always);
        assert_eq!(o.vm_enough_memory(u64::MAX, None, false), Ok(()));
        assert_eq!(
            Overcommit::default().vm_enough_memory(u64::MAX - 1, None, true),
            Ok(())
        );
    }

    #[test]
    fn commit_limit_is_ratio_of_ram_or_kbytes_plus_swap() {
        // mm/util.c vm_commit_limit: overcommit_kbytes >> (PAGE_SHIFT - 10)
        // if set, else totalram * overcommit_ratio / 100; plus swap.
        let o = Overcommit::new(OvercommitMode::Never, 1001, 7);
        assert_eq!(o.vm_commit_limit(), 1001 * 50 / 100 + 7);
        o.set_ratio(80);
        assert_eq!(o.vm_commit_limit(), 1001 * 80 / 100 + 7);
        // Writing kbytes clears the ratio (overcommit_kbytes_handler) and
        // the other way round (overcommit_ratio_handler).
        o.set_kbytes(4096 + 3);
        assert_eq!(o.ratio(), 0);
        assert_eq!(o.vm_commit_limit(), 1024 + 7);
        o.set_ratio(10);
        assert_eq!(o.kbytes(), 0);
        assert_eq!(o.vm_commit_limit(), 100 + 7);
    }

    #[test]
    fn never_keeps_the_reserves_back() {
        // __vm_enough_memory, OVERCOMMIT_NEVER: allowed = vm_commit_limit()
        // - admin reserve (only without CAP_SYS_ADMIN) - min(total_vm / 32,
        // user reserve); granted iff committed + pages < allowed.
        let o = Overcommit::new(OvercommitMode::Never, 2000, 0);
        o.set_admin_reserve_kbytes(40); // 10 pages
        o.set_user_reserve_kbytes(20); // 5 pages
        assert_eq!(o.vm_commit_limit(), 1000);
        // root, no mm: the whole limit, strictly below.
        assert_eq!(o.vm_enough_memory(999, None, true), Ok(()));
        assert_eq!(o.vm_enough_memory(1000, None, true), Err(Errno::ENOMEM));
        // not root: 10 pages fewer.
        assert_eq!(o.vm_enough_memory(989, None, false), Ok(()));
        assert_eq!(o.vm_enough_memory(990, None, false), Err(Errno::ENOMEM));
        // root with an mm of 96 pages: 96 / 32 = 3 pages kept back...
        assert_eq!(o.vm_enough_memory(996, Some(96), true), Ok(()));
        assert_eq!(o.vm_enough_memory(997, Some(96), true), Err(Errno::ENOMEM));
        // ... and at most the user reserve (5 pages) however big it is.
        assert_eq!(o.vm_enough_memory(994, Some(1 << 20), true), Ok(()));
        assert_eq!(
            o.vm_enough_memory(995, Some(1 << 20), true),
            Err(Errno::ENOMEM)
        );
        // What is already committed counts.
        o.vm_acct_memory(500);
        assert_eq!(o.committed_pages(), 500);
        assert_eq!(o.vm_enough_memory(499, None, true), Ok(()));
        assert_eq!(o.vm_enough_memory(500, None, true), Err(Errno::ENOMEM));
        o.vm_unacct_memory(500);
        assert_eq!(o.committed_pages(), 0);
    }

    #[test]
    fn reserves_at_boot_are_a_32nd_of_free_memory_capped() {
        // init_admin_reserve / init_user_reserve: min(free_kbytes / 32,
        // 8 MiB) and min(free_kbytes / 32, 128 MiB).
        let o = Overcommit::default();
        o.init_reserves(16 << 8); // 16 MiB free
        assert_eq!(o.admin_reserve_kbytes(), 512);
        assert_eq!(o.user_reserve_kbytes(), 512);
        o.init_reserves(1 << 20); // 4 GiB free
        assert_eq!(o.admin_reserve_kbytes(), 8192);
        assert_eq!(o.user_reserve_kbytes(), 131072);
    }

    #[test]
    fn handles_share_one_counter() {
        let a = Overcommit::default();
        let b = a.clone();
        a.vm_acct_memory(3);
        b.vm_acct_memory(4);
        assert_eq!(a.committed_pages(), 7);
        assert!(a.same(&b));
        assert!(!a.same(&Overcommit::default()));
        assert_eq!(OvercommitMode::from_value(3), None);
        assert_eq!(OvercommitMode::from_value(2), Some(OvercommitMode::Never));
    }
}
