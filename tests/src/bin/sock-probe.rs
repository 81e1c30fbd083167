//! A stand-in for another local user's program at a control socket, for the tests of who may
//! serve and who may use it. It reports on stdout what it got, one line each:
//!
//! - `sock-probe listen PATH`: binds a Unix socket at PATH, prints `listening`, accepts one
//!   connection, reads it until the other side closes, prints `read N bytes`, and exits.
//! - `sock-probe send PATH LINE`: connects to PATH, writes LINE and a newline, reads until the
//!   other side closes, prints `read N bytes`, and exits.
//!
//! A read cut short by an error still reports the bytes read before it, then the error.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::ExitCode;
use std::time::Duration;

/// The longest a read waits for the other side, so a test that fails never hangs on this.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["listen", path] => listen(path),
        ["send", path, line] => send(path, line),
        _ => {
            eprintln!("usage: sock-probe listen PATH | sock-probe send PATH LINE");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sock-probe: {e}");
            ExitCode::FAILURE
        }
    }
}

fn listen(path: &str) -> std::io::Result<()> {
    let listener = UnixListener::bind(path)?;
    say("listening")?;
    let (stream, _) = listener.accept()?;
    drain(stream)
}

fn send(path: &str, line: &str) -> std::io::Result<()> {
    let mut stream = UnixStream::connect(path)?;
    match stream.write_all(format!("{line}\n").as_bytes()) {
        Ok(()) => say("sent")?,
        Err(e) => say(&format!("send failed: {e}"))?,
    }
    drain(stream)
}

/// Reads until end of stream (or an error) and reports how much arrived.
fn drain(mut stream: UnixStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    let mut got = Vec::new();
    let end = stream.read_to_end(&mut got);
    say(&format!("read {} bytes", got.len()))?;
    if let Err(e) = end {
        say(&format!("then: {e}"))?;
    }
    Ok(())
}

fn say(line: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}
