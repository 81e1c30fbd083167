//! `p2pctl put PATH PEER:SHARE[/PATH] [--force]`: write a local file or directory into a
//! peer's share. PATH is made absolute here; p2pd reads it, looks at the target, and puts
//! each file with compare and swap (`put`, which answers once the owner has every file in
//! place). Progress: a second connection subscribes to events and shows the
//! `put_progress` events of this put on stderr (a bar on a terminal, else a line at most
//! every second; none with `--json`).

use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use proto::api::{Call, EVENT_NOTIFICATION, Event, PutDone, PutProgress};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{ls, subscribe};
use crate::client::Client;
use crate::error::Error;
use crate::output::{Out, clean, files, human_bytes};

/// How long `put` may run: p2pd ends it sooner if the owner stops answering.
const PUT_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Least time between two plain progress lines.
const PLAIN_EVERY: Duration = Duration::from_secs(1);

/// The canonical absolute form of the PATH argument, which p2pd reads; a path that does not
/// exist fails here (exit 1), before p2pd is asked.
pub(crate) fn absolute_src(arg: &std::path::Path) -> Result<String, Error> {
    let shown = clean(&arg.display().to_string());
    let path = std::fs::canonicalize(arg).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => {
            Error::Failed(format!("cannot put {shown}: no such file or directory"))
        }
        _ => Error::Failed(format!("cannot put {shown}: {e}")),
    })?;
    super::send::utf8(&path)
}

/// Peer, share and path of `PEER:SHARE[/PATH]`; a share must be named.
pub(crate) fn target(arg: &str) -> Result<(String, String, Option<String>), Error> {
    let t = ls::target(arg);
    match t.share {
        Some(share) if !t.peer.is_empty() => Ok((t.peer, share, t.path)),
        _ => Err(Error::Failed(format!(
            "cannot put to {}: name a peer and a share, as PEER:SHARE[/PATH]",
            clean(arg)
        ))),
    }
}

/// What was put, as one line.
pub(crate) fn done_line(d: &PutDone) -> String {
    let mut line = format!(
        "put {} ({})",
        files(u32::try_from(d.files).unwrap_or(u32::MAX)),
        human_bytes(d.bytes)
    );
    if d.dirs > 0 {
        let s = if d.dirs == 1 { "y" } else { "ies" };
        line.push_str(&format!(" and made {} director{s}", d.dirs));
    }
    let at = if d.path.is_empty() {
        d.share.to_string()
    } else {
        format!("{}/{}", d.share, d.path)
    };
    line.push_str(&format!(" on {}:{}", d.peer, clean(&at)));
    line
}

/// Makes the `put` call on `client`, showing progress from the events `events` receives.
pub(crate) async fn run<S, W>(
    client: &mut Client<S>,
    events: Option<Client<S>>,
    out: &mut Out<W>,
    json: bool,
    call: Call,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite,
    W: Write,
{
    let src = match &call {
        Call::Put { src, .. } => src.clone(),
        _ => String::new(),
    };
    let progress = async {
        let Some(mut events) = events else {
            return std::future::pending::<Result<(), Error>>().await;
        };
        subscribe(&mut events).await?;
        let mut view = View::new();
        while let Some(notice) = events.next_notice().await? {
            if notice.method != EVENT_NOTIFICATION {
                continue;
            }
            if let Ok(Event::PutProgress { put }) = serde_json::from_value(notice.params)
                && put.src == src
            {
                view.show(&put);
            }
        }
        std::future::pending().await
    };
    let mut put = std::pin::pin!(client.call_within::<PutDone>(call, PUT_TIMEOUT));
    let reply = tokio::select! {
        r = &mut put => r,
        // The events connection failing only stops the progress display.
        Err(e) = progress => {
            let _ = writeln!(io::stderr(), "p2pctl: no more progress shown: {e}");
            put.await
        }
    };
    let reply = reply?;
    for s in &reply.value.skipped {
        let _ = writeln!(io::stderr(), "skipped {}", clean(s));
    }
    if json {
        out.line(&reply.raw)
    } else {
        out.line(&done_line(&reply.value))
    }
}

/// Progress on stderr.
struct View {
    bar: Option<ProgressBar>,
    last: Option<Instant>,
    /// The bytes of the last plain line, so a repeated figure is not printed again.
    printed: Option<u64>,
}

impl View {
    fn new() -> View {
        let bar = io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            if let Ok(style) = ProgressStyle::with_template(
                "{bar:30} {bytes}/{total_bytes} {bytes_per_sec} ETA {left}",
            ) {
                // The time left in p2pctl's one duration style.
                let left = |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = w.write_str(&crate::output::human_duration(s.eta().as_secs()));
                };
                bar.set_style(style.with_key("left", left));
            }
            bar
        });
        View {
            bar,
            last: None,
            printed: None,
        }
    }

    fn show(&mut self, p: &PutProgress) {
        if let Some(bar) = &self.bar {
            bar.set_length(p.total_bytes);
            bar.set_position(p.done_bytes);
            if p.done_bytes >= p.total_bytes {
                bar.finish_and_clear();
            }
            return;
        }
        let now = Instant::now();
        let due = self.last.is_none_or(|t| now - t >= PLAIN_EVERY);
        if (due || p.done_bytes >= p.total_bytes) && self.printed != Some(p.done_bytes) {
            self.last = Some(now);
            self.printed = Some(p.done_bytes);
            let _ = writeln!(
                io::stderr(),
                "put: {} / {}",
                human_bytes(p.done_bytes),
                human_bytes(p.total_bytes)
            );
        }
    }
}

impl Drop for View {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_put_target_names_a_share() {
        assert_eq!(
            target("alice:docs/a/b").unwrap(),
            ("alice".into(), "docs".into(), Some("a/b".into()))
        );
        assert_eq!(
            target("alice:docs").unwrap(),
            ("alice".into(), "docs".into(), None)
        );
        for bad in ["alice", "alice:", ":docs"] {
            assert!(target(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_outcome_says_what_landed_where() {
        let mut d = PutDone {
            peer: proto::PeerName::new("alice").unwrap(),
            share: proto::share::ShareName::new("docs").unwrap(),
            path: "x.txt".into(),
            files: 1,
            dirs: 0,
            bytes: 10,
            skipped: Vec::new(),
        };
        assert_eq!(done_line(&d), "put 1 file (10 B) on alice:docs/x.txt");
        d.dirs = 2;
        d.files = 3;
        d.path = String::new();
        assert_eq!(
            done_line(&d),
            "put 3 files (10 B) and made 2 directories on alice:docs"
        );
    }
}
