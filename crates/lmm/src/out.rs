//! Standard output that never panics. `print!` panics when stdout is a
//! closed pipe (`lmm proc zoneinfo | head -1`) or a full disk
//! (`> /dev/full`); lmm instead exits quietly on a closed pipe, as Unix
//! filters do, and with a clear error and status 1 on any other failure.

use std::io::{self, Write};

/// What lmm does when writing to stdout fails: on a closed pipe (EPIPE)
/// the reader has all it wanted, so exit quietly with status 0; otherwise
/// (ENOSPC, EIO, ...) say so on stderr and exit with status 1.
pub fn failed(e: &io::Error) -> ! {
    if e.kind() == io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    let _ = writeln!(io::stderr(), "lmm: writing to standard output: {e}");
    std::process::exit(1)
}

/// Writes `s` to stdout and flushes it, so an error is seen here and not
/// at exit.
pub fn emit(s: &str) {
    let mut o = io::stdout().lock();
    if let Err(e) = o.write_all(s.as_bytes()).and_then(|()| o.flush()) {
        failed(&e)
    }
}

/// Stdout as a [`Write`] for code that takes one (the replay): a failed
/// write ends lmm by the rules of [`failed`].
pub struct Stdout;

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        io::stdout().lock().write(buf).or_else(|e| failed(&e))
    }
    fn flush(&mut self) -> io::Result<()> {
        io::stdout().lock().flush().or_else(|e| failed(&e))
    }
}

/// `print!` that never panics (see [`emit`]).
macro_rules! out {
    ($($t:tt)*) => {
        $crate::out::emit(&format!($($t)*))
    };
}

/// `println!` that never panics (see [`emit`]).
macro_rules! outln {
    () => {
        $crate::out::emit("\n")
    };
    ($($t:tt)*) => {
        $crate::out::emit(&format!("{}\n", format_args!($($t)*)))
    };
}
