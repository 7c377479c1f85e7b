//! The terminal's live status block: a few lines at the bottom of stderr, redrawn in place,
//! with log lines printed above it.
//!
//! The [`Console`] is also the log writer (it implements tracing's `MakeWriter`): before a log
//! line is written it erases the block, and it draws the block again after the line, all under
//! one lock, so log lines and the block never interleave. Line wrapping is turned off while the
//! block is drawn (`ESC[?7l`), so each of its lines takes exactly one row whatever the terminal's
//! width, and erasing it (cursor up, clear to the end of the screen) is exact.
//!
//! Off a terminal the console is plain: logs go to stderr and nothing is drawn.
//!
//! Either way, a log line is one line: a control or invisible character inside it (from a
//! worker's name, a failure message, a cancel reason) is written as its escape
//! (`sweep_common::text::terminal`), so that no text can forge a log line of its own. The
//! escape character itself is left to `tracing_subscriber`, which escapes it in field values
//! and uses it for colours on a terminal.

use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Longest line of a block, in characters (a safety net; the terminal cuts lines anyway).
const MAX_LINE: usize = 400;

#[derive(Debug, Default)]
struct Inner {
    /// Draw the block at all (stderr is a terminal and the sweep is on).
    live: bool,
    /// The block's text, every line ending with a newline.
    block: String,
    /// Rows the block takes on screen now (0: not on screen).
    rows: usize,
}

/// The live block's owner and the log writer. Cheap to clone; every clone is the same console.
#[derive(Debug, Clone, Default)]
pub struct Console {
    inner: Arc<Mutex<Inner>>,
}

impl Console {
    /// A console that draws the block when `live` (stderr is a terminal), else writes logs only.
    pub fn new(live: bool) -> Self {
        Console {
            inner: Arc::new(Mutex::new(Inner {
                live,
                ..Inner::default()
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// True while the block is drawn (else the status goes to plain log lines).
    pub fn is_live(&self) -> bool {
        self.lock().live
    }

    /// Replaces the block with `block` (lines ending with newlines). Does nothing unless live.
    pub fn draw(&self, block: &str) {
        let mut inner = self.lock();
        if !inner.live {
            return;
        }
        inner.block = block
            .lines()
            .map(|l| {
                let mut l: String = l.chars().take(MAX_LINE).collect();
                l.push('\n');
                l
            })
            .collect();
        let mut out = erase(inner.rows);
        out.push_str(&drawn(&inner.block));
        inner.rows = inner.block.lines().count();
        // A terminal that cannot be written to is not worth failing the sweep for.
        let _ = write_stderr(out.as_bytes());
    }

    /// Stops drawing: the last block stays on screen as plain text, and what is written after
    /// it goes below.
    pub fn finish(&self) {
        let mut inner = self.lock();
        inner.live = false;
        inner.rows = 0;
        inner.block.clear();
    }

    /// Runs `f` (which prints to the terminal) with the block erased, then draws it again.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        let mut inner = self.lock();
        let _ = write_stderr(erase(inner.rows).as_bytes());
        inner.rows = 0;
        let r = f();
        let _ = io::stdout().flush();
        redraw(&mut inner);
        r
    }

    /// Writes a log line: erases the block, writes `buf`, draws the block below it again.
    fn write_log(&self, buf: &[u8]) -> io::Result<()> {
        let buf = &*one_line(buf);
        let mut inner = self.lock();
        if inner.rows == 0 && !inner.live {
            return write_stderr(buf);
        }
        let mut out = erase(inner.rows).into_bytes();
        out.extend_from_slice(buf);
        inner.rows = 0;
        if buf.ends_with(b"\n") && inner.live && !inner.block.is_empty() {
            out.extend_from_slice(drawn(&inner.block).as_bytes());
            inner.rows = inner.block.lines().count();
        }
        write_stderr(&out)
    }
}

/// A formatted log event as one line: every control or invisible character but the final
/// newline (and the escape character, see the module's documentation) written as its escape.
fn one_line(buf: &[u8]) -> Cow<'_, [u8]> {
    let Ok(text) = std::str::from_utf8(buf) else {
        return Cow::Borrowed(buf);
    };
    let body = text.strip_suffix('\n').unwrap_or(text);
    let acting = |c: char| c != '\x1b' && sweep_common::text::forbidden(c);
    if !body.contains(acting) {
        return Cow::Borrowed(buf);
    }
    let mut line: String = body
        .split('\x1b')
        .map(sweep_common::text::terminal)
        .collect::<Vec<_>>()
        .join("\x1b");
    if body.len() < text.len() {
        line.push('\n');
    }
    Cow::Owned(line.into_bytes())
}

/// Draws the block again after something else was printed.
fn redraw(inner: &mut Inner) {
    if inner.live && !inner.block.is_empty() {
        let _ = write_stderr(drawn(&inner.block).as_bytes());
        inner.rows = inner.block.lines().count();
    }
}

/// The escape sequence that erases a block of `rows` rows right above the cursor.
fn erase(rows: usize) -> String {
    if rows == 0 {
        String::new()
    } else {
        format!("\r\x1b[{rows}A\x1b[J")
    }
}

/// The block with wrapping turned off while it is drawn.
fn drawn(block: &str) -> String {
    format!("\x1b[?7l{block}\x1b[?7h")
}

fn write_stderr(bytes: &[u8]) -> io::Result<()> {
    let mut err = io::stderr().lock();
    err.write_all(bytes)?;
    err.flush()
}

/// The writer of one log event.
pub struct LogWriter(Console);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_log(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Console {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> LogWriter {
        LogWriter(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erasing_moves_up_exactly_the_rows_drawn() {
        assert_eq!(erase(0), "");
        assert_eq!(erase(3), "\r\x1b[3A\x1b[J");
        assert_eq!(drawn("a\nb\n"), "\x1b[?7la\nb\n\x1b[?7h");
    }

    #[test]
    fn a_log_line_stays_one_line() {
        let plain = b"2026 INFO worker registered name=gpu-1\n";
        assert!(matches!(one_line(plain), Cow::Borrowed(_)));
        let forged = "2026 INFO worker registered name=w\n2026 INFO sweep finished: all trials \
                      succeeded\r\u{202e}\n";
        assert_eq!(
            std::str::from_utf8(&one_line(forged.as_bytes())).unwrap(),
            "2026 INFO worker registered name=w\\n2026 INFO sweep finished: all trials \
             succeeded\\r\\u{202e}\n"
        );
        // Colours stay colours.
        let coloured = "\x1b[32m INFO\x1b[0m name=a\tb\n";
        assert_eq!(
            std::str::from_utf8(&one_line(coloured.as_bytes())).unwrap(),
            "\x1b[32m INFO\x1b[0m name=a\\tb\n"
        );
    }

    #[test]
    fn a_plain_console_draws_nothing() {
        let c = Console::new(false);
        c.draw("status\n");
        assert!(!c.is_live());
        assert_eq!(c.lock().rows, 0);
        let live = Console::new(true);
        assert!(live.is_live());
        live.finish();
        assert!(!live.is_live());
    }
}
