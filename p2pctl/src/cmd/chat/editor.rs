//! The line editor of `chat` when stdin and stdout are terminals (rustyline): a prompt,
//! arrow keys, home/end, ctrl-a/ctrl-e, the lines typed in this session as history, and
//! lines from the conversation printed above the prompt while the user types, the half-typed
//! line redrawn intact below them.
//!
//! rustyline reads the terminal with a blocking call, so [`Editor::begin`] runs it on a
//! thread of its own that hands each line to the session over a channel. That thread may be
//! blocked in a read of the terminal when the session ends (p2pd stopped): it cannot be
//! cancelled, so the process exits without joining it, and [`Editor`]'s `Drop` restores the
//! terminal mode saved at the start and clears the prompt line.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustyline::error::ReadlineError;
use rustyline::{Config, DefaultEditor, ExternalPrinter};
use tokio::sync::mpsc;

use super::Input;
use crate::lines::LineError;

/// Lines typed in this session kept for the up and down arrows.
const HISTORY: usize = 1000;

/// One line from the editor thread: a line, `None` at ctrl-d or ctrl-c, or why reading failed.
type Typed = Result<Option<String>, io::Error>;

/// The terminal's line editor, as `chat`'s input.
pub(crate) struct Editor {
    /// The editor until [`begin`](Input::begin) hands it to its thread.
    idle: Option<DefaultEditor>,
    /// Lines from the editor thread, once started.
    lines: Option<mpsc::UnboundedReceiver<Typed>>,
    /// The editor thread is inside `readline` or about to be: the terminal may be in raw mode
    /// and the prompt on screen.
    reading: Arc<AtomicBool>,
    /// stdin's terminal mode before the editor touched it.
    saved: Option<mode::Saved>,
}

/// Prints whole lines above the prompt (or plainly when no line is being edited); each line
/// written goes out once a newline and a flush have come.
pub(crate) struct Printer {
    /// rustyline's printer.
    inner: Box<dyn ExternalPrinter + Send>,
    /// Bytes written since the last complete line.
    pending: Vec<u8>,
}

impl Editor {
    /// The editor and two printers (for stdout's and stderr's lines), or an error when the
    /// terminal cannot host one (such as `TERM=dumb`): then the caller reads stdin plainly.
    pub(crate) fn start() -> Result<(Editor, Printer, Printer), ReadlineError> {
        let config = Config::builder()
            .max_history_size(HISTORY)?
            .history_ignore_dups(true)?
            .auto_add_history(true)
            .build();
        let mut editor = DefaultEditor::with_config(config)?;
        let out = Printer::new(Box::new(editor.create_external_printer()?));
        let notes = Printer::new(Box::new(editor.create_external_printer()?));
        let saved = mode::save();
        let editor = Editor {
            idle: Some(editor),
            lines: None,
            reading: Arc::new(AtomicBool::new(false)),
            saved,
        };
        Ok((editor, out, notes))
    }
}

impl Input for Editor {
    fn begin(&mut self, prompt: &str) {
        let Some(mut editor) = self.idle.take() else {
            return;
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let prompt = prompt.to_owned();
        let reading = Arc::clone(&self.reading);
        reading.store(true, Ordering::SeqCst);
        let spawned = std::thread::Builder::new()
            .name("chat-editor".into())
            .spawn(move || {
                loop {
                    let typed: Typed = match editor.readline(&prompt) {
                        Ok(line) => Ok(Some(line)),
                        Err(ReadlineError::Eof | ReadlineError::Interrupted) => Ok(None),
                        Err(ReadlineError::Io(e)) => Err(e),
                        Err(e) => Err(io::Error::other(e.to_string())),
                    };
                    let more = matches!(typed, Ok(Some(_)));
                    if !more {
                        reading.store(false, Ordering::SeqCst);
                    }
                    if tx.send(typed).is_err() || !more {
                        break;
                    }
                }
            });
        if let Err(e) = spawned {
            self.reading.store(false, Ordering::SeqCst);
            let (tx, rx) = mpsc::unbounded_channel();
            let _ = tx.send(Err(e));
            self.lines = Some(rx);
            return;
        }
        self.lines = Some(rx);
    }

    async fn next_line(&mut self) -> Result<Option<String>, LineError> {
        let Some(lines) = self.lines.as_mut() else {
            return Ok(None);
        };
        match lines.recv().await {
            Some(Ok(line)) => Ok(line),
            Some(Err(e)) => Err(LineError::Io(e)),
            None => Ok(None),
        }
    }
}

impl Drop for Editor {
    fn drop(&mut self) {
        if !self.reading.load(Ordering::SeqCst) {
            return;
        }
        // The editor thread is still waiting for a key: give the shell back its terminal,
        // without the prompt and the unfinished line, and with bracketed paste off again.
        if let Some(saved) = &self.saved {
            mode::restore(saved);
        }
        let mut stdout = io::stdout();
        let _ = stdout
            .write_all(b"\x1b[?2004l\r\x1b[K")
            .and_then(|()| stdout.flush());
    }
}

impl Printer {
    fn new(inner: Box<dyn ExternalPrinter + Send>) -> Self {
        Self {
            inner,
            pending: Vec::new(),
        }
    }
}

impl Write for Printer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            // With its newline, so a line printed while no prompt is shown ends too.
            let text = String::from_utf8_lossy(&line).into_owned();
            self.inner
                .print(text)
                .map_err(|e| io::Error::other(e.to_string()))?;
        }
        Ok(())
    }
}

/// stdin's terminal mode, saved at the start to be given back (a Unix terminal's termios;
/// nothing to give back elsewhere).
#[cfg(unix)]
mod mode {
    use rustix::termios::{OptionalActions, Termios, tcgetattr, tcsetattr};

    /// The mode as it was.
    pub(super) struct Saved(Termios);

    /// stdin's mode now, if stdin is a terminal.
    pub(super) fn save() -> Option<Saved> {
        tcgetattr(std::io::stdin()).ok().map(Saved)
    }

    /// Gives stdin its saved mode back.
    pub(super) fn restore(saved: &Saved) {
        let _ = tcsetattr(std::io::stdin(), OptionalActions::Now, &saved.0);
    }
}

/// stdin's terminal mode, saved at the start to be given back (a Unix terminal's termios;
/// nothing to give back elsewhere).
#[cfg(not(unix))]
mod mode {
    /// Nothing to keep.
    pub(super) struct Saved;

    /// Nothing to save.
    pub(super) fn save() -> Option<Saved> {
        None
    }

    /// Nothing to give back.
    pub(super) fn restore(_: &Saved) {}
}
