//! Progress bars for commands that run for more than a moment (`lmm soak`,
//! `lmm replay lackey` of a large trace, `lmm bench`, the boot of a huge
//! machine): drawn on stderr with the rate and the time left (indicatif)
//! when stderr is a terminal, and nothing at all otherwise (indicatif's
//! hidden draw target), so pipes, logs and tests see the bytes they saw
//! before. Standard output is never touched. The loops that advance a bar
//! live in libraries that stay terminal-free: they call back (soak's
//! `on_op`, the lackey target's observer) and the callback moves the bar.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

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

/// The `{rate}` of the templates: steps per second, whole.
fn rate(s: &ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = write!(w, "{:.0}/s", s.per_sec());
}
