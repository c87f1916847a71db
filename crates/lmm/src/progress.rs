//! Progress bars for commands that run for more than a moment (`lmm soak`,
//! `lmm replay` of a large trace, the policy sweeps of `lmm replay lackey
//! --sweep`, `lmm bench`, the boot of a huge machine): drawn on stderr with the rate and the time left (indicatif)
//! when stderr is a terminal, and nothing at all otherwise (indicatif's
//! hidden draw target), so pipes, logs and tests see the bytes they saw
//! before. Standard output is never touched. The loops that advance a bar
//! live in libraries that stay terminal-free: they call back (soak's
//! `on_op`, the lackey target's observer, the strace replay's and the
//! policy runs' `(done, total)` hooks, boot's [`BootObserver`]) and the
//! callback moves the bar.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use mm::mm_init::{BootObserver, BootProgress};

/// Where bars are drawn: stderr if it is a terminal, nowhere otherwise.
/// `stdout_busy`: the command writes to stdout while the bar runs, so on a
/// stdout that is a terminal too the bar's redraws would erase its lines:
/// then no bar either.
fn target(stdout_busy: bool) -> ProgressDrawTarget {
    let clash = stdout_busy && std::io::stdout().is_terminal();
    if std::io::stderr().is_terminal() && !clash {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

/// A bar of `len` steps named `what`: position, rate and ETA (see
/// [`target`] for `stdout_busy`).
pub fn bar(len: u64, what: &str, stdout_busy: bool) -> ProgressBar {
    let b = ProgressBar::with_draw_target(Some(len), target(stdout_busy));
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{bar:30}] {human_pos}/{human_len} {rate} ETA {eta} ({elapsed})",
    ) {
        b.set_style(style.with_key("rate", rate).progress_chars("=> "));
    }
    b.set_message(what.to_string());
    b
}

/// A spinner for work of unknown length (a streamed trace, a boot): the
/// count so far and its rate, or the time spent when nothing is counted
/// (see [`target`] for `stdout_busy`).
pub fn spinner(what: &str, stdout_busy: bool) -> ProgressBar {
    let b = ProgressBar::with_draw_target(None, target(stdout_busy));
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {msg} {human_pos} {rate} ({elapsed})")
    {
        b.set_style(style.with_key("rate", rate));
    }
    b.set_message(what.to_string());
    b.enable_steady_tick(Duration::from_millis(120));
    b
}

/// Struct pages a boot initialises before its spinner appears: 2^20 (the
/// memmap of 4 GiB), which only huge machines reach (a 1 TiB machine
/// initialises about 4.3 million); smaller boots end too soon for a bar to
/// help.
const BOOT_SHOWN: u64 = 1 << 20;

/// The boot's progress hook: a spinner of the struct pages memmap_init
/// has initialised, from [`BOOT_SHOWN`] on, cleared when it is done. The
/// length is not known beforehand (it would take a second pass over
/// memblock's ranges and the deferred-init split).
pub fn boot() -> BootProgress {
    BootProgress(Some(Arc::new(BootBar(Mutex::new(None)))))
}

/// The spinner of [`boot`], made on the first report past [`BOOT_SHOWN`].
struct BootBar(Mutex<Option<ProgressBar>>);

impl BootObserver for BootBar {
    fn pages_initialised(&self, pages: u64) {
        if pages < BOOT_SHOWN {
            return;
        }
        if let Ok(mut b) = self.0.lock() {
            b.get_or_insert_with(|| spinner("boot: struct pages initialised", false))
                .set_position(pages);
        }
    }

    fn done(&self) {
        if let Some(b) = self.0.lock().ok().and_then(|mut b| b.take()) {
            b.finish_and_clear();
        }
    }
}

/// The `{rate}` of the templates: steps per second, whole.
fn rate(s: &ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = write!(w, "{:.0}/s", s.per_sec());
}
