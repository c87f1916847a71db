//! `lmm top`: a live terminal view of a running machine in the spirit of
//! htop and `vmstat 1`, drawn with ratatui: zones' free pages against their
//! watermarks, the buddy free lists, processes, the largest slab caches and
//! reclaim activity. Each frame is one sample of a [`Source`]: a scenario
//! sampled every N operations, a replay every N events
//! (`workload::sample::ReplaySource`), a real program every N faults and
//! system calls ([`NativeSource`]); `--batch N` renders N frames as plain
//! text through the same layout (ratatui's `TestBackend`), for tests and
//! pipes.

use std::cell::RefCell;
use std::io::IsTerminal;
use std::rc::Rc;
use std::time::Duration;

use machine::{Machine, MachineConfig};
use ratatui::backend::{CrosstermBackend, TestBackend};
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind};
use ratatui::crossterm::{execute, terminal};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::Line;
use ratatui::widgets::{Block, Gauge, Paragraph, Row, Table};
use ratatui::{Frame, Terminal};
use workload::sample::{EventSampler, Sample, Source, ORDERS};

/// The size of a `--batch` frame.
const BATCH_SIZE: (u16, u16) = (120, 40);

/// What a frame shows: the sample, the one before it (for rates), and the
/// viewer's state.
struct Model {
    /// What runs.
    title: String,
    /// What the step counts (`operation`, `system call`, ...).
    unit: &'static str,
    /// The frame's number (1-based).
    frame: u64,
    /// The sample shown.
    cur: Sample,
    /// The previous one (rates are per interval between the two).
    prev: Option<Sample>,
    /// Paused (live view only).
    paused: bool,
    /// Time between frames (live view only; 0 in batch output).
    delay: Duration,
}

impl Model {
    /// How much a vmstat-style counter grew since the previous frame.
    fn delta(&self, f: impl Fn(&Sample) -> u64) -> u64 {
        f(&self.cur).saturating_sub(self.prev.as_ref().map_or(0, &f))
    }
}

/// Draws one frame: the single layout both the live view and `--batch` use.
fn draw(f: &mut Frame, m: &Model) {
    let s = &m.cur;
    let [head, mid, buddy, bottom] = Layout::vertical([
        Constraint::Length(3),
        // Two rows per zone, and at least the five lines of the reclaim
        // pane (a machine with two zones would hide its fault line).
        Constraint::Length(2 + (2 * s.zones.len().max(1) as u16).max(5)),
        Constraint::Length(3 + s.zones.len() as u16),
        Constraint::Min(6),
    ])
    .areas(f.area());

    let state = if m.paused {
        "paused (space: run, s: step)".to_string()
    } else if m.delay.is_zero() {
        String::new()
    } else {
        format!("{} ms/frame (+/-)", m.delay.as_millis())
    };
    let mib = |kb: u64| kb / 1024;
    let header = vec![
        Line::from(format!(
            "lmm top - {} - frame {} at {} {}{}   {state}",
            m.title,
            m.frame,
            m.unit,
            s.step.ops,
            if s.step.boots > 0 {
                format!(" (after boot() no. {})", s.step.boots)
            } else {
                String::new()
            }
        ))
        .bold(),
        Line::from(format!(
            "MiB Mem: {} total, {} free, {} available, {} anon, {} file, {} slab   MiB Swap: {} total, {} used",
            mib(s.kb("MemTotal")),
            mib(s.kb("MemFree")),
            mib(s.kb("MemAvailable")),
            mib(s.kb("Active(anon)") + s.kb("Inactive(anon)")),
            mib(s.kb("Active(file)") + s.kb("Inactive(file)")),
            mib(s.kb("Slab")),
            mib(s.kb("SwapTotal")),
            mib(s.swap_used_kb()),
        )),
    ];
    f.render_widget(Paragraph::new(header), head);

    let [zones, reclaim] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(mid);
    let block = Block::bordered().title(" zones: free pages against min/low/high ");
    let inner = block.inner(zones);
    f.render_widget(block, zones);
    for (i, z) in s.zones.iter().enumerate() {
        let row = Rect {
            y: inner.y + 2 * i as u16,
            height: 2,
            ..inner
        };
        if row.bottom() > inner.bottom() {
            break;
        }
        let [label, gauge] =
            Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(row);
        let colour = if z.free < z.min {
            Color::Red
        } else if z.free < z.low {
            Color::Yellow
        } else {
            Color::Green
        };
        f.render_widget(
            Line::from(format!(
                "node{} {:<7} free {:>8}  min {:>6} low {:>6} high {:>6}  {}",
                z.node,
                z.name,
                z.free,
                z.min,
                z.low,
                z.high,
                if z.free < z.min {
                    "below min"
                } else if z.free < z.low {
                    "below low: kswapd"
                } else if z.free < z.high {
                    "below high"
                } else {
                    "ok"
                }
            )),
            label,
        );
        let ratio = if z.managed == 0 {
            0.0
        } else {
            (z.free as f64 / z.managed as f64).clamp(0.0, 1.0)
        };
        f.render_widget(
            Gauge::default()
                .gauge_style(Style::default().fg(colour))
                .ratio(ratio)
                .label(format!("{:.1}% of {} managed", ratio * 100.0, z.managed)),
            gauge,
        );
    }
    let lines = vec![
        Line::from(format!(
            "kswapd wakes (pageoutrun) {:>8} +{}",
            s.vm("pageoutrun"),
            m.delta(|s| s.vm("pageoutrun"))
        )),
        Line::from(format!(
            "direct reclaim (allocstall) {:>6} +{}",
            s.vm("allocstall_normal") + s.vm("allocstall_dma32") + s.vm("allocstall_dma"),
            m.delta(|s| s.vm("allocstall_normal")
                + s.vm("allocstall_dma32")
                + s.vm("allocstall_dma"))
        )),
        Line::from(format!(
            "pgscan {:>10} +{}   pgsteal {:>10} +{}",
            s.pgscan(),
            m.delta(Sample::pgscan),
            s.pgsteal(),
            m.delta(Sample::pgsteal)
        )),
        Line::from(format!(
            "pswpin {:>10} +{}   pswpout {:>10} +{}",
            s.vm("pswpin"),
            m.delta(|s| s.vm("pswpin")),
            s.vm("pswpout"),
            m.delta(|s| s.vm("pswpout"))
        )),
        Line::from(format!(
            "pgfault {:>9} +{}   pgmajfault {:>7} +{}",
            s.vm("pgfault"),
            m.delta(|s| s.vm("pgfault")),
            s.vm("pgmajfault"),
            m.delta(|s| s.vm("pgmajfault"))
        )),
    ];
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" reclaim (+: since last frame) ")),
        reclaim,
    );

    let widths: Vec<Constraint> = std::iter::once(Constraint::Length(14))
        .chain((0..ORDERS).map(|_| Constraint::Length(8)))
        .collect();
    let head_row = Row::new(
        std::iter::once("zone".to_string()).chain((0..ORDERS).map(|o| format!("order{o}"))),
    )
    .bold();
    let rows = s.zones.iter().map(|z| {
        Row::new(
            std::iter::once(format!("node{} {}", z.node, z.name))
                .chain(z.blocks.iter().map(|n| n.to_string())),
        )
    });
    f.render_widget(
        Table::new(rows, widths)
            .header(head_row)
            .block(Block::bordered().title(" buddy free lists (free blocks per order) ")),
        buddy,
    );

    let [procs, slabs] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(bottom);
    let mut by_rss: Vec<_> = s.procs.iter().collect();
    by_rss.sort_by(|a, b| b.rss_kb.cmp(&a.rss_kb).then(a.pid.cmp(&b.pid)));
    let rows = by_rss.iter().map(|p| {
        Row::new(vec![
            p.pid.to_string(),
            p.comm.clone(),
            p.rss_kb.to_string(),
            p.swap_kb.to_string(),
            p.minflt.to_string(),
            p.majflt.to_string(),
        ])
    });
    f.render_widget(
        Table::new(
            rows,
            [
                Constraint::Length(6),
                Constraint::Length(16),
                Constraint::Length(10),
                Constraint::Length(10),
                Constraint::Length(9),
                Constraint::Length(8),
            ],
        )
        .header(Row::new(["PID", "COMMAND", "RSS kB", "SWAP kB", "MINFLT", "MAJFLT"]).bold())
        .block(Block::bordered().title(" processes by RSS ")),
        procs,
    );
    let rows = s.slabs.iter().map(|c| {
        Row::new(vec![
            c.name.clone(),
            c.active_objs.to_string(),
            c.objsize.to_string(),
            c.kb.to_string(),
        ])
    });
    f.render_widget(
        Table::new(
            rows,
            [
                Constraint::Length(20),
                Constraint::Length(8),
                Constraint::Length(8),
                Constraint::Length(8),
            ],
        )
        .header(Row::new(["CACHE", "OBJS", "SIZE", "kB"]).bold())
        .block(Block::bordered().title(" slab caches by size ")),
        slabs,
    );
}

/// The text of a rendered buffer, one line per row, trailing blanks cut.
fn buffer_text(b: &ratatui::buffer::Buffer) -> String {
    let w = b.area.width as usize;
    let mut out = String::new();
    for row in b.content().chunks(w.max(1)) {
        let line: String = row.iter().map(|c| c.symbol()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Where `--batch` frames go: stdout, or stderr when stdout is the
/// program's own (`lmm top native`).
#[derive(Clone, Copy)]
pub enum To {
    /// Standard output (never panics, see [`crate::out`]).
    Stdout,
    /// Standard error.
    Stderr,
}

impl To {
    /// Writes `s` there.
    fn emit(self, s: &str) {
        match self {
            To::Stdout => crate::out::emit(s),
            To::Stderr => {
                use std::io::Write;
                let _ = std::io::stderr().lock().write_all(s.as_bytes());
            }
        }
    }
}

/// Renders `frames` frames of `src` as text on `to`, each after a line
/// `--- frame N ---`.
pub fn batch(src: &mut dyn Source, frames: u64, to: To) -> Result<(), String> {
    let title = src.title();
    let unit = src.unit();
    let prev: Rc<RefCell<Option<Sample>>> = Rc::default();
    let n = Rc::new(std::cell::Cell::new(0u64));
    let err: Rc<RefCell<Option<String>>> = Rc::default();
    let (p, c, e) = (prev.clone(), n.clone(), err.clone());
    src.run(Box::new(move |cur| {
        if c.get() >= frames {
            return false;
        }
        c.set(c.get() + 1);
        let model = Model {
            title: title.clone(),
            unit,
            frame: c.get(),
            cur,
            prev: p.borrow_mut().take(),
            paused: false,
            delay: Duration::ZERO,
        };
        let text = TestBackend::new(BATCH_SIZE.0, BATCH_SIZE.1);
        let mut t = match Terminal::new(text) {
            Ok(t) => t,
            Err(x) => {
                *e.borrow_mut() = Some(x.to_string());
                return false;
            }
        };
        if let Err(x) = t.draw(|f| draw(f, &model)) {
            *e.borrow_mut() = Some(x.to_string());
            return false;
        }
        to.emit(&format!(
            "--- frame {} ---\n{}",
            model.frame,
            buffer_text(t.backend().buffer())
        ));
        *p.borrow_mut() = Some(model.cur);
        c.get() < frames
    }))?;
    if let Some(e) = err.take() {
        return Err(e);
    }
    if n.get() < frames {
        // The run ended first: say so, so a script reading N frames knows.
        to.emit(&format!(
            "--- end of the run after {} frame(s) ---\n",
            n.get()
        ));
    }
    Ok(())
}

/// The live view: a frame per sample, every `delay`, until the run ends or
/// `q`, drawn on `to` (which must be a terminal). Keys: q quit, space
/// pause, s or n one step while paused, + faster, - slower.
pub fn live(src: &mut dyn Source, delay: Duration, to: To) -> Result<(), String> {
    let (name, tty, out): (&str, bool, Box<dyn std::io::Write>) = match to {
        To::Stdout => (
            "stdout",
            std::io::stdout().is_terminal(),
            Box::new(std::io::stdout()),
        ),
        To::Stderr => (
            "stderr",
            std::io::stderr().is_terminal(),
            Box::new(std::io::stderr()),
        ),
    };
    if !tty {
        return Err(format!(
            "top needs a terminal ({name} is not one); --batch N prints N frames as text"
        ));
    }
    let title = src.title();
    let unit = src.unit();
    let terminal = start(out).map_err(|e| format!("terminal: {e}"))?;
    let state = Rc::new(RefCell::new((terminal, None::<Sample>, false, delay, 0u64)));
    let err: Rc<RefCell<Option<String>>> = Rc::default();
    let quit = Rc::new(std::cell::Cell::new(false));
    let (st, e, q) = (state.clone(), err.clone(), quit.clone());
    let run = src.run(Box::new(move |cur| {
        let mut guard = st.borrow_mut();
        let (terminal, prev, paused, delay, frame) = &mut *guard;
        *frame += 1;
        let mut model = Model {
            title: title.clone(),
            unit,
            frame: *frame,
            cur,
            prev: prev.take(),
            paused: *paused,
            delay: *delay,
        };
        let go = loop {
            model.paused = *paused;
            model.delay = *delay;
            if let Err(x) = terminal.draw(|f| draw(f, &model)) {
                *e.borrow_mut() = Some(x.to_string());
                break false;
            }
            // Running: wait out the delay unless a key comes; paused: wait
            // for a key.
            let ready = if *paused {
                true
            } else {
                event::poll(*delay).unwrap_or(false)
            };
            if !ready {
                break true;
            }
            let key = match event::read() {
                Ok(Event::Key(k)) if k.kind == KeyEventKind::Press => k.code,
                Ok(_) => continue,
                Err(x) => {
                    *e.borrow_mut() = Some(x.to_string());
                    break false;
                }
            };
            match key {
                KeyCode::Char('q') | KeyCode::Esc => {
                    q.set(true);
                    break false;
                }
                KeyCode::Char(' ') => *paused = !*paused,
                KeyCode::Char('s') | KeyCode::Char('n') if *paused => break true,
                KeyCode::Char('+') => *delay = (*delay / 2).max(Duration::from_millis(1)),
                KeyCode::Char('-') => *delay = (*delay * 2).min(Duration::from_secs(10)),
                _ => {}
            }
        };
        *prev = Some(model.cur);
        go
    }));
    // The run ended by itself: keep its last frame up until q.
    if run.is_ok() && err.borrow().is_none() && !quit.get() {
        loop {
            match event::read() {
                Ok(Event::Key(k))
                    if k.kind == KeyEventKind::Press
                        && matches!(k.code, KeyCode::Char('q') | KeyCode::Esc) =>
                {
                    break
                }
                Ok(_) => {}
                Err(x) => {
                    *err.borrow_mut() = Some(x.to_string());
                    break;
                }
            }
        }
    }
    {
        let mut guard = state.borrow_mut();
        stop(&mut guard.0).map_err(|e| format!("terminal: {e}"))?;
    }
    run?;
    match err.take() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// A real program run natively (`lmm native`'s [`native::run`]) on a
/// machine booted from `config`, sampled every `every` events (the stops
/// of the program lmm handles: page faults, system calls, signals passed
/// on) and at its exit, before the process is torn down. The program runs
/// to its end even when the view stops.
pub struct NativeSource {
    /// The program (host path).
    pub program: String,
    /// Its argv.
    pub argv: Vec<String>,
    /// Its environment.
    pub envp: Vec<String>,
    /// `--warm-cache`.
    pub warm_cache: bool,
    /// The machine.
    pub config: MachineConfig,
    /// Events between samples (at least 1).
    pub every: u64,
    /// How the run went, once it ended.
    pub outcome: Option<native::Outcome>,
}

impl Source for NativeSource {
    fn title(&self) -> String {
        format!("native {}", self.argv.join(" "))
    }

    fn unit(&self) -> &'static str {
        "event"
    }

    fn run(&mut self, sink: Box<dyn FnMut(Sample) -> bool>) -> Result<(), String> {
        let sampler = Rc::new(RefCell::new(EventSampler::new(self.every, sink)));
        let failed: Rc<RefCell<Option<String>>> = Rc::default();
        let (s, f) = (sampler.clone(), failed.clone());
        let watch = move |m: &Machine, at_exit: bool| {
            let mut s = s.borrow_mut();
            if at_exit {
                // The last sample, with the process still there; a failed
                // sample is reported after the run.
                if let Err(e) = s.finish(m) {
                    *f.borrow_mut() = Some(e);
                }
            } else {
                s.event(m);
            }
        };
        // Every fault is seen as the program takes it (a frame may fall
        // between any two), not taken later by fault-ahead.
        let opts = native::Options {
            warm_cache: self.warm_cache,
            no_fault_ahead: true,
            observer: Some(native::Observer(Rc::new(RefCell::new(watch)))),
            ..Default::default()
        };
        // As `lmm native` boots it.
        let config = MachineConfig {
            populate_ahead: true,
            ..self.config.clone()
        };
        let mut m = Machine::boot(config).map_err(|e| e.to_string())?;
        let outcome = native::run(&mut m, &self.program, &self.argv, &self.envp, &opts)?;
        self.outcome = Some(outcome);
        failed.take().map_or(Ok(()), Err)
    }
}

/// The live view's terminal, on stdout or stderr.
type Screen = Terminal<CrosstermBackend<Box<dyn std::io::Write>>>;

/// Puts the terminal `out` leads to into raw mode on the alternate screen
/// (what `ratatui::init` does for stdout).
fn start(mut out: Box<dyn std::io::Write>) -> std::io::Result<Screen> {
    terminal::enable_raw_mode()?;
    execute!(out, terminal::EnterAlternateScreen)?;
    Terminal::new(CrosstermBackend::new(out))
}

/// Leaves the alternate screen and raw mode, cursor shown.
fn stop(t: &mut Screen) -> std::io::Result<()> {
    execute!(t.backend_mut(), terminal::LeaveAlternateScreen)?;
    t.show_cursor()?;
    terminal::disable_raw_mode()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_text_is_rows_without_trailing_blanks() {
        let mut t = Terminal::new(TestBackend::new(10, 2)).unwrap();
        t.draw(|f| f.render_widget(Line::from("ab"), f.area()))
            .unwrap();
        assert_eq!(buffer_text(t.backend().buffer()), "ab\n\n");
    }
}
