//! `p2pctl send PATH PEER [--no-wait]`: offer a file or directory, then wait until p2pd has
//! hashed it and the peer has it, or refused it.
//!
//! PATH is made absolute and canonical here ([`absolute_path`]) before anything is asked of
//! p2pd, which reads the files itself. Requests: `subscribe` (so no event about the transfer
//! can be missed; not with `--no-wait`), `peers` (is the peer online?), then `send_files`
//! (answered at once with the transfer `scanning`: p2pd hashes the files in the background,
//! with `transfer_progress` events counting the bytes hashed). Each
//! `transfer_offered`, `transfer_progress` and `transfer_updated` event for the transfer's id,
//! and each `peer_*` event for its peer, then feeds the pure [`wait::Wait`], which says what
//! to tell the user and when to stop with which exit code; events lost to `lagged` are made
//! up for by reading `transfers`.
//!
//! stdout gets one line (human: the outcome; `--json`: every state of the transfer as a
//! [`TransferInfo`], one per line). Notes and progress go to stderr: an indicatif bar when
//! stderr is a terminal, else a plain progress line at most every second.

mod bar;
mod wait;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use proto::api::{
    Call, Direction, EVENT_NOTIFICATION, Event, PeerInfo, Sent, Skipped, TransferInfo,
    TransferState,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::{subscribe, transfer_raw};
use crate::client::{Client, Notice};
use crate::error::Error;
use crate::output::{
    Out, clean, files, human_bytes, progress_line, rate_and_eta_parts, short_transfer,
};
use bar::Layout;
use proto::reach::Reach;
use wait::{Note, Step, Wait, away};

/// How long `get --from` may take to answer (once every source named was reached or given
/// up on) before p2pctl gives up waiting.
const SWARM_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Least time between two plain progress lines.
const PLAIN_EVERY: Duration = Duration::from_secs(1);

/// How progress is shown while waiting.
pub(crate) enum Show {
    /// `--json`: no progress display; stdout carries every state as JSON.
    Json,
    /// stderr is not a terminal: plain progress lines at most every [`PLAIN_EVERY`].
    Plain,
    /// stderr is a terminal: an indicatif bar drawn on this target.
    Bar(ProgressDrawTarget),
}

impl Show {
    /// `--json`, else a bar if stderr is a terminal, else plain lines.
    pub(crate) fn for_stderr(json: bool) -> Show {
        use std::io::IsTerminal;
        if json {
            Show::Json
        } else if io::stderr().is_terminal() {
            Show::Bar(ProgressDrawTarget::stderr())
        } else {
            Show::Plain
        }
    }
}

/// The canonical absolute form of the PATH argument, as p2pd needs it; a path that does not
/// exist or cannot be passed as UTF-8 fails here (exit 1), before p2pd is asked.
pub(crate) fn absolute_path(arg: &Path) -> Result<String, Error> {
    let shown = clean(&arg.display().to_string());
    let path = std::fs::canonicalize(arg).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => {
            Error::Failed(format!("cannot send {shown}: no such file or directory"))
        }
        _ => Error::Failed(format!("cannot send {shown}: {e}")),
    })?;
    utf8(&path)
}

/// The canonical absolute forms of several PATH arguments ([`absolute_path`]). Two that
/// would arrive under the same name are refused here: the peer could not tell them apart.
pub(crate) fn absolute_paths(args: &[PathBuf]) -> Result<Vec<String>, Error> {
    let mut out: Vec<String> = Vec::with_capacity(args.len());
    for arg in args {
        let path = absolute_path(arg)?;
        let name = |p: &str| Path::new(p).file_name().map(|n| n.to_owned());
        if let Some(same) = out.iter().find(|o| name(o) == name(&path)) {
            return Err(Error::Failed(format!(
                "cannot send {} and {} together: both would arrive as {}",
                clean(same),
                clean(&path),
                clean(&name(&path).unwrap_or_default().to_string_lossy())
            )));
        }
        out.push(path);
    }
    Ok(out)
}

/// The `send_files` request for `paths` (absolute): one path as `path`, which every p2pd
/// takes; several as `paths`.
pub(crate) fn call(peer: String, mut paths: Vec<String>) -> Call {
    if paths.len() == 1 {
        let path = paths.pop().unwrap_or_default();
        Call::SendFiles { peer, path, paths }
    } else {
        Call::SendFiles {
            peer,
            path: String::new(),
            paths,
        }
    }
}

/// The line naming an entry p2pd left out of the offer: `skipped photos/link: symlink (not
/// followed)`.
pub(crate) fn skipped_line(s: &Skipped) -> String {
    format!("skipped {}: {}", clean(&s.path), clean(&s.reason))
}

/// `path` as a string; p2pd's API carries paths as UTF-8 text.
pub(crate) fn utf8(path: &Path) -> Result<String, Error> {
    path.to_str().map(str::to_owned).ok_or_else(|| {
        Error::Failed(format!(
            "{} is not valid UTF-8, which p2pd's control API cannot carry",
            clean(&path.display().to_string())
        ))
    })
}

/// Makes `call` (`send_files`, or `get`: both answer with the transfer), then unless
/// `no_wait` waits until the transfer ends or `stop` completes (then the transfer goes on in
/// p2pd and this succeeds).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run<S, W, E>(
    client: &mut Client<S>,
    out: &mut Out<W>,
    notes: &mut Out<E>,
    show: Show,
    call: Call,
    no_wait: bool,
    stop: impl Future<Output = ()>,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite,
    W: Write,
    E: Write,
{
    let json = matches!(show, Show::Json);
    if !no_wait {
        subscribe(client).await?;
    }
    let peers = client.call::<Vec<PeerInfo>>(Call::Peers {}).await?.value;
    // A multi-source get answers once it has tried every source named, one after another.
    let whole = matches!(&call, Call::Get { from, .. } if !from.is_empty());
    let wait = if whole {
        SWARM_TIMEOUT
    } else {
        crate::client::REPLY_TIMEOUT
    };
    // `send_files` answers with the transfer and what it left out; `get` with the transfer.
    let answer = client.call_within::<Sent>(call, wait).await?;
    if json {
        out.line(&answer.raw)?;
    } else {
        for s in &answer.value.skipped {
            say(notes, &skipped_line(s));
        }
    }
    let sent = crate::client::Reply {
        value: answer.value.transfer,
        raw: answer.raw,
    };
    let reach = Reach::of_known(peers.iter().find(|p| p.id == sent.value.peer));
    let mut wait = Wait::new(&sent.value, reach);
    let first = wait.update(&sent.value);
    if no_wait {
        return match first {
            Step::Finished { code, text } => finish(out, json, code, text),
            _ if json => Ok(()),
            _ => out.line(&no_wait_line(&sent.value, reach)),
        };
    }

    let mut view = View::new(show, &sent.value);
    let mut clock = Clock::new(Instant::now());
    let mut current = sent.value;
    let mut step = first;
    let mut stop = std::pin::pin!(stop);
    loop {
        match step {
            Step::Unrelated => {}
            Step::Waiting(note) => {
                view.show(notes, &current, wait.reach(), note, Instant::now());
                tell_dirs_left_out(&mut wait, &view, notes, &current);
            }
            Step::Finished { code, text } => {
                tell_dirs_left_out(&mut wait, &view, notes, &current);
                view.clear();
                if code == 0 && !json {
                    say(notes, &clock.summary(&current, Instant::now()));
                }
                return finish(out, json, code, text);
            }
        }
        clock.saw(&current, Instant::now());
        let notice = tokio::select! {
            biased;
            () = &mut stop => {
                view.abandon();
                say(notes, &stopped_line(&current));
                return Ok(());
            }
            notice = client.next_notice() => notice?,
        };
        let Some(notice) = notice else {
            return Err(Error::Closed);
        };
        step = match input(client, &notice, &current).await? {
            None => Step::Unrelated,
            Some(Input::Peer(p)) => wait.peer(&p),
            // The same state again (p2pd's `transfer_offered` repeats the `send_files`
            // answer): nothing new to show.
            Some(Input::Transfer(info, _)) if info == current => Step::Unrelated,
            Some(Input::Transfer(info, raw)) => {
                let step = wait.update(&info);
                if step != Step::Unrelated {
                    if json {
                        out.line(&raw)?;
                    }
                    current = info;
                }
                step
            }
        };
    }
}

/// Says once, as soon as p2pd says it (and before the outcome), that the files go without
/// their empty directories: the receiving p2pd is older.
fn tell_dirs_left_out<E: Write>(
    wait: &mut Wait,
    view: &View,
    notes: &mut Out<E>,
    t: &TransferInfo,
) {
    if let Some(note) = wait.dirs_left_out(t) {
        view.say(notes, &note.text(t));
    }
}

/// When data started to move, for the closing summary's elapsed time and average rate.
struct Clock {
    /// When the wait began: the start if no data was ever seen moving.
    began: Instant,
    /// When the transfer was first seen `running`, and the bytes verified then (a resumed
    /// transfer starts above 0).
    moving: Option<(Instant, u64)>,
}

impl Clock {
    fn new(now: Instant) -> Self {
        Self {
            began: now,
            moving: None,
        }
    }

    /// Takes in the state shown at `now`.
    fn saw(&mut self, t: &TransferInfo, now: Instant) {
        if self.moving.is_none() && t.state == TransferState::Running {
            self.moving = Some((now, t.done_bytes));
        }
    }

    /// The summary of the transfer `t`, done at `now`.
    fn summary(&self, t: &TransferInfo, now: Instant) -> String {
        let (from, before) = self.moving.unwrap_or((self.began, 0));
        let moved = t.total_bytes.saturating_sub(before);
        bar::summary(t, moved, now.saturating_duration_since(from))
    }
}

/// What an event means to the wait.
enum Input {
    /// A transfer's state, with its JSON text.
    Transfer(TransferInfo, String),
    /// A peer's state.
    Peer(PeerInfo),
}

/// The transfer or peer state carried by `notice`; after `lagged`, the state of `ours` read
/// back with `transfers`. `None` for anything else.
async fn input<S: AsyncRead + AsyncWrite>(
    client: &mut Client<S>,
    notice: &Notice,
    ours: &TransferInfo,
) -> Result<Option<Input>, Error> {
    if notice.method != EVENT_NOTIFICATION {
        return Ok(None);
    }
    let Ok(event) = serde_json::from_value::<Event>(notice.params.clone()) else {
        return Ok(None);
    };
    match event {
        Event::TransferOffered { transfer }
        | Event::TransferProgress { transfer }
        | Event::TransferUpdated { transfer } => {
            let raw = transfer_raw(notice, &transfer);
            Ok(Some(Input::Transfer(transfer, raw)))
        }
        Event::PeerJoined { peer } | Event::PeerLeft { peer } | Event::PeerUpdated { peer } => {
            Ok(Some(Input::Peer(peer)))
        }
        Event::Lagged { .. } => {
            // The end of the transfer may be among the lost events: read it back.
            let list = client
                .call::<Vec<TransferInfo>>(Call::Transfers { all: true })
                .await?;
            let Some(info) = list.value.into_iter().find(|t| t.id == ours.id) else {
                return Ok(None);
            };
            let raw = serde_json::to_string(&info)
                .map_err(|e| Error::Protocol(format!("cannot encode a transfer: {e}")))?;
            Ok(Some(Input::Transfer(info, raw)))
        }
        _ => Ok(None),
    }
}

/// Ends the command: the success line on stdout (human mode), or the failure as the error.
fn finish<W: Write>(out: &mut Out<W>, json: bool, code: u8, text: String) -> Result<(), Error> {
    if code != 0 {
        return Err(Error::Failed(text));
    }
    if !json {
        out.line(&text)?;
    }
    Ok(())
}

/// What `--no-wait` prints: `hashing PATH for bob (transfer ID); ...` while p2pd hashes
/// the files (as `send_files` answers today), `offered ID to bob: 3 files, 12.3 MiB`, or
/// `queued ID for bob (offline): ...` when p2pd cannot hand the offer over now.
fn no_wait_line(t: &TransferInfo, reach: Reach) -> String {
    let name = clean(t.peer_name.as_str());
    let what = if t.files == 0 {
        "directories (no file)".to_owned()
    } else {
        format!("{}, {}", files(t.files), human_bytes(t.total_bytes))
    };
    match (t.state, reach) {
        (TransferState::Scanning, _) => format!(
            "hashing {} for {name} (transfer {}); 'p2pctl transfers' shows it",
            clean(t.local_path.as_deref().unwrap_or("the files")),
            t.id
        ),
        (TransferState::Queued, r) if away(r) => {
            format!("queued {} for {name} (offline): {what}", t.id)
        }
        (TransferState::Queued, Reach::KeyChanged) => format!(
            "queued {} for {name} (not sent: the tracker shows another key for {name}; see \
             'p2pctl peers'): {what}",
            t.id
        ),
        _ => format!("offered {} to {name}: {what}", t.id),
    }
}

/// Said on stderr when the user stops waiting.
fn stopped_line(t: &TransferInfo) -> String {
    let id = short_transfer(&t.id);
    format!(
        "stopped waiting; transfer {id} goes on in p2pd ('p2pctl transfers' shows it, \
         'p2pctl cancel {id}' stops it)"
    )
}

/// Writes a line to stderr; a closed stderr must not end the wait.
fn say<E: Write>(notes: &mut Out<E>, line: &str) {
    let _ = notes.line(line);
}

/// The progress display on stderr.
enum View {
    /// Notes only.
    Json,
    /// Notes and throttled progress lines.
    Plain {
        /// When the last progress line was printed.
        last: Option<Instant>,
    },
    /// Notes above an indicatif bar.
    Bar {
        /// The bar.
        bar: ProgressBar,
        /// Its shape, for the terminal's width when last drawn.
        layout: Layout,
    },
}

/// The width of the terminal on stderr, or [`bar::DEFAULT_COLS`].
fn stderr_cols() -> u16 {
    console::Term::stderr()
        .size_checked()
        .map_or(bar::DEFAULT_COLS, |(_, cols)| cols)
}

/// The bar's length: none while the size is not known yet (indicatif would show a bar of
/// length 0 as full, `100%`).
fn length(t: &TransferInfo) -> Option<u64> {
    Some(t.total_bytes).filter(|&n| n > 0)
}

/// The indicatif style of `layout`.
fn style(layout: Layout) -> ProgressStyle {
    ProgressStyle::with_template(&layout.template()).map_or_else(
        |_| ProgressStyle::default_bar(),
        |s| s.progress_chars("=> "),
    )
}

impl View {
    fn new(show: Show, t: &TransferInfo) -> Self {
        match show {
            Show::Json => View::Json,
            Show::Plain => View::Plain { last: None },
            Show::Bar(target) => {
                let layout = Layout::for_width(stderr_cols());
                View::Bar {
                    bar: ProgressBar::with_draw_target(length(t), target).with_style(style(layout)),
                    layout,
                }
            }
        }
    }

    /// Shows the state `t` (to a peer whose reach is `reach`), and `note` first if there is
    /// one.
    fn show<E: Write>(
        &mut self,
        notes: &mut Out<E>,
        t: &TransferInfo,
        reach: Reach,
        note: Option<Note>,
        now: Instant,
    ) {
        match self {
            View::Json => {
                if let Some(note) = note {
                    say(notes, &note.text(t));
                }
            }
            View::Plain { last } => {
                if let Some(note) = note {
                    say(notes, &note.text(t));
                }
                // Nothing moved yet (just accepted): the note said enough.
                let moved = t.done_bytes > 0 || t.rate > 0;
                if t.state == TransferState::Running && moved && due(last, now) {
                    say(notes, &progress_line(t));
                }
                if t.state == TransferState::Scanning && moved && due(last, now) {
                    say(notes, &format!("hashed {}", progress_line(t)));
                }
            }
            View::Bar { bar, layout } => {
                // The terminal may have been resized since the last state.
                let cols = stderr_cols();
                if Layout::for_width(cols) != *layout {
                    *layout = Layout::for_width(cols);
                    bar.set_style(style(*layout));
                }
                let done = t.done_bytes.min(t.total_bytes);
                let room = layout.room(cols, done, t.total_bytes);
                // The bar first, so that it is redrawn in its new state under the note.
                if let Some(len) = length(t) {
                    bar.set_length(len);
                }
                bar.set_position(done);
                bar.set_message(bar_message(t, reach, room));
                if let Some(note) = note {
                    bar.suspend(|| say(notes, &note.text(t)));
                }
            }
        }
    }

    /// Says `line` on stderr, above the bar if there is one.
    fn say<E: Write>(&self, notes: &mut Out<E>, line: &str) {
        match self {
            View::Bar { bar, .. } => bar.suspend(|| say(notes, line)),
            View::Json | View::Plain { .. } => say(notes, line),
        }
    }

    /// The transfer ended: the bar goes away (the outcome is printed next).
    fn clear(&self) {
        if let View::Bar { bar, .. } = self {
            bar.finish_and_clear();
        }
    }

    /// The user stopped waiting: the bar is wiped once, not drawn again (the terminal has
    /// echoed `^C` over it), and the line saying so takes its place.
    fn abandon(&self) {
        if let View::Bar { bar, .. } = self {
            bar.finish_and_clear();
        }
    }
}

/// Whether a plain progress line is due at `now`; if so, `now` becomes the last one.
fn due(last: &mut Option<Instant>, now: Instant) -> bool {
    if last.is_some_and(|l| now.saturating_duration_since(l) < PLAIN_EVERY) {
        return false;
    }
    *last = Some(now);
    true
}

/// The text right of the bar, in `room` columns: the rate and ETA lose their parts from the
/// end rather than wrap (a waiting text is cut by indicatif).
fn bar_message(t: &TransferInfo, reach: Reach, room: usize) -> String {
    let name = clean(t.peer_name.as_str());
    match (t.state, reach) {
        (TransferState::Scanning, _) => {
            let mut parts = vec!["hashing".to_owned()];
            parts.extend(rate_and_eta_parts(t));
            bar::fit(&parts, room)
        }
        (TransferState::Queued | TransferState::Offered, _) if t.direction == Direction::In => {
            format!("waiting for {name}")
        }
        (TransferState::Queued, r) if away(r) => format!("waiting for {name} to come online"),
        (TransferState::Queued, Reach::KeyChanged) => format!("not sent: {name}'s key changed"),
        (TransferState::Queued, _) => format!("offering to {name}"),
        (TransferState::Offered, _) => format!("waiting for {name} to accept"),
        (_, r) if away(r) => format!("paused: {name} is offline"),
        _ => bar::fit(&rate_and_eta_parts(t), room),
    }
}

#[cfg(test)]
mod tests;
