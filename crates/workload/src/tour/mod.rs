//! `lmm tour`: a guided walk through each mechanism of the textbook. A topic
//! is a short deterministic run on the real code paths (a machine booted
//! for it, real allocator and fault-handler calls) that prints the state
//! before and after each step and says in two lines what happened and why,
//! citing the rule. Each step also records checkpoints, named values the
//! tests assert, so the narration cannot drift from what the code does.

use std::fmt::Write as _;

mod kernel;
mod user;

/// One topic of the tour.
pub struct Topic {
    /// The name `lmm tour NAME` takes (`buddy`, `cow`, ...).
    pub name: &'static str,
    /// One line: what the topic shows.
    pub title: &'static str,
    /// Runs the topic, narrating into the tour.
    pub run: fn(&mut Tour) -> Result<(), String>,
}

/// Every topic in the textbook's order: the kernel's own memory first
/// (boot to kmap and the page-table walk), then address spaces and the
/// mechanisms that page them in and out.
pub fn topics() -> Vec<&'static Topic> {
    kernel::TOPICS.iter().chain(user::TOPICS.iter()).collect()
}

/// The topic called `name`.
pub fn topic(name: &str) -> Option<&'static Topic> {
    topics().into_iter().find(|t| t.name == name)
}

/// The list `lmm tour` prints without a topic.
pub fn list() -> String {
    let mut s = String::new();
    for (i, t) in topics().iter().enumerate() {
        let _ = writeln!(s, "{:>2}. {:<12} {}", i + 1, t.name, t.title);
    }
    s
}

/// A named value a step recorded, for the tests to assert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The step's number (1-based) in its topic.
    pub step: usize,
    /// What the value is, e.g. `free order-3 blocks in DMA32`.
    pub name: String,
    /// The value as printed.
    pub value: String,
}

/// The narration of one topic and its checkpoints.
#[derive(Debug, Default)]
pub struct Tour {
    text: String,
    steps: usize,
    checkpoints: Vec<Checkpoint>,
}

impl Tour {
    /// A paragraph of introduction (before the first step, or between).
    pub fn say(&mut self, text: &str) {
        for l in text.lines() {
            let _ = writeln!(self.text, "{l}");
        }
        self.text.push('\n');
    }

    /// Starts the next step: a numbered heading.
    pub fn step(&mut self, heading: &str) {
        self.steps += 1;
        let _ = writeln!(self.text, "── step {}: {heading}", self.steps);
    }

    /// A block of state (a /proc file, a table), indented, under a label
    /// such as `before` or `after`.
    pub fn state(&mut self, label: &str, body: &str) {
        let _ = writeln!(self.text, "   {label}:");
        for l in body.lines() {
            let _ = writeln!(self.text, "     {l}");
        }
    }

    /// The two lines that close a step: what happened, and why (the rule,
    /// with where Linux has it).
    pub fn explain(&mut self, what: &str, why: &str) {
        let _ = writeln!(self.text, "   what: {what}");
        let _ = writeln!(self.text, "   why:  {why}");
        self.text.push('\n');
    }

    /// Records and prints a checkpoint of the current step.
    pub fn checkpoint(&mut self, name: &str, value: impl std::fmt::Display) {
        let value = value.to_string();
        let _ = writeln!(self.text, "   ✓ {name} = {value}");
        self.checkpoints.push(Checkpoint {
            step: self.steps,
            name: name.to_string(),
            value,
        });
    }

    /// The narration so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The checkpoints so far.
    pub fn checkpoints(&self) -> &[Checkpoint] {
        &self.checkpoints
    }

    /// The value of the checkpoint called `name` (the last one, if a
    /// topic records it more than once).
    pub fn value(&self, name: &str) -> Option<&str> {
        self.checkpoints
            .iter()
            .rev()
            .find(|c| c.name == name)
            .map(|c| c.value.as_str())
    }
}

/// Runs one topic: its title, its narration, and its checkpoints.
pub fn run(topic: &Topic) -> Result<Tour, String> {
    let mut t = Tour::default();
    let _ = writeln!(t.text, "# {}: {}\n", topic.name, topic.title);
    (topic.run)(&mut t).map_err(|e| format!("tour {}: {e}", topic.name))?;
    Ok(t)
}
