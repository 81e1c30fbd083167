//! `p2pctl chat PEER`: a conversation on the terminal, or a pipe of lines into messages.
//!
//! Requests: `subscribe` first (so nothing about the conversation is missed), `peers` (who
//! is PEER, is it online?), then one `send_message` per non-empty input line.
//!
//! - stdin a terminal: the last [`Options::last`] messages of the conversation (one
//!   `history` request, made after `subscribe` so that a message arriving meanwhile is
//!   shown once), then incoming messages, delivery changes, the peer's file offers and the
//!   ends of transfers with it as they come; the session ends at end of input (ctrl-d) or on
//!   ctrl-c, or with [`Error::DaemonStopped`] when p2pd closes the connection. With stdout a
//!   terminal too (and no `--json`), lines are typed in [`editor::Editor`] and the
//!   conversation prints above its prompt.
//! - stdin not a terminal: each line is sent in order; at end of input p2pctl waits until
//!   every message is delivered or refused, or the peer is offline (then queued counts as
//!   done), at most [`DRAIN`]; then it prints `N delivered, M queued` to stderr and exits 0,
//!   or 1 if a message was refused or a line could not be sent. The bookkeeping is the pure
//!   [`ledger::Ledger`].
//!
//! With `--json`, stdout carries only [`MessageInfo`] objects, one per line: each message
//! sent (as stored, `queued`), each state change of a message to PEER, each message from
//! PEER. Everything else goes to stderr.

pub(crate) mod editor;
mod ledger;
mod show;

use std::collections::HashSet;
use std::io::Write;
use std::time::{Duration, SystemTime};

use proto::api::{Call, Direction, EVENT_NOTIFICATION, Event, MessageInfo, MessageState, PeerInfo};
use proto::peer::{MAX_TEXT, MessageId};
use tokio::io::{AsyncBufRead, AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::{awaited, message_raw, resolve, subscribe};
use crate::client::{Client, Notice};
use crate::error::Error;
use crate::lines::{LineError, LineReader};
use crate::output::{Out, clean, from_unix_ms, local_clock, preview};
use ledger::Ledger;

/// Longest wait for deliveries after the end of piped input.
pub(crate) const DRAIN: Duration = Duration::from_secs(30);

/// Characters of a message recalled in a delivery line.
const PREVIEW: usize = 40;

/// How long an interactive chat holds "bob went offline" back: when p2pd stops, its links
/// and tracker connection close just before the control socket does, and the peer must not
/// be shown leaving for what was our own daemon stopping.
const OFFLINE_HOLD: Duration = Duration::from_millis(500);

/// Where `chat` reads the user's lines: stdin, or the terminal's line editor.
pub(crate) trait Input {
    /// The session is open: show `prompt` and start reading (stdin needs nothing).
    fn begin(&mut self, _prompt: &str) {}

    /// The next line, without its newline; `None` at end of input.
    async fn next_line(&mut self) -> Result<Option<String>, LineError>;
}

impl<R: AsyncBufRead + Unpin> Input for LineReader<R> {
    async fn next_line(&mut self) -> Result<Option<String>, LineError> {
        LineReader::next_line(self).await
    }
}

/// How `chat` behaves.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    /// Print [`MessageInfo`] JSON lines instead of text.
    pub(crate) json: bool,
    /// stdin is a terminal: no echo of our lines, no waiting at end of input, no summary.
    pub(crate) interactive: bool,
    /// Longest wait for deliveries after the end of piped input.
    pub(crate) drain: Duration,
    /// Messages of the conversation shown when an interactive session opens (0: none).
    pub(crate) last: u32,
}

/// Runs the conversation with the peer named by `arg`, reading lines from `input`, until end
/// of input (and, when piped, the wait for deliveries) or `stop`.
pub(crate) async fn run<S, I, W, E>(
    client: &mut Client<S>,
    out: &mut Out<W>,
    notes: &mut Out<E>,
    input: &mut I,
    arg: &str,
    options: Options,
    stop: impl Future<Output = ()>,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite,
    I: Input,
    W: Write,
    E: Write,
{
    subscribe(client).await?;
    let peers = client.call::<Vec<PeerInfo>>(Call::Peers {}).await?.value;
    let peer = resolve(client, &peers, arg).await?;
    let mut session = Session {
        peer: peer.id,
        name: clean(peer.name.as_str()),
        online: peer.online,
        ledger: Ledger::new(awaited(peer)),
        link_error: None,
        shown: HashSet::new(),
        offline_since: None,
        options,
    };
    if options.interactive {
        session.greet(notes, peer);
        if options.last > 0 {
            let (lines, ids) = show::recent(client, &session.peer, options.last).await?;
            if !options.json {
                for line in &lines {
                    out.line(line)?;
                }
            }
            session.shown = ids;
        }
    }
    input.begin(&format!("{}> ", session.name));

    let mut stop = std::pin::pin!(stop);
    let mut drain = std::pin::pin!(tokio::time::sleep(Duration::ZERO));
    let mut reading = true;
    let mut draining = false;
    loop {
        if !reading && (options.interactive || session.ledger.settled()) {
            break;
        }
        tokio::select! {
            biased;
            () = &mut stop => {
                if options.interactive {
                    // End the line the terminal echoed `^C` on.
                    note(notes, "");
                }
                break;
            }
            () = &mut drain, if draining => break,
            () = tokio::time::sleep_until(session.offline_since.unwrap_or_else(Instant::now)),
                if session.offline_since.is_some() => session.show_offline(out)?,
            notice = client.next_notice() => match notice? {
                Some(notice) => session.on_notice(client, out, notes, &notice).await?,
                // An interactive session says what happened (and the line held back about
                // the peer is dropped: it was our daemon stopping).
                None if options.interactive => return Err(Error::DaemonStopped),
                None => return Err(Error::Closed),
            },
            line = input.next_line(), if reading => match line {
                Ok(Some(line)) => session.on_line(client, out, notes, line).await?,
                Ok(None) => {
                    reading = false;
                    if !options.interactive {
                        drain.as_mut().reset(tokio::time::Instant::now() + options.drain);
                        draining = true;
                    }
                }
                Err(LineError::Io(e)) => return Err(Error::Input(e)),
                Err(e @ LineError::TooLong { .. }) => {
                    session.ledger.not_sent();
                    note(notes, &format!("p2pctl: not sent: {e} (messages are at most 64 KiB)"));
                }
                Err(e @ LineError::NotUtf8) => {
                    session.ledger.not_sent();
                    note(notes, &format!("p2pctl: not sent: {e}"));
                }
            },
        }
    }
    session.finish(notes)
}

/// Writes a line to stderr; a closed stderr must not end the conversation.
fn note<E: Write>(notes: &mut Out<E>, line: &str) {
    let _ = notes.line(line);
}

/// The conversation's state.
struct Session {
    /// The peer.
    peer: proto::PeerId,
    /// Its name, neutralised.
    name: String,
    /// Online at the tracker, as last heard.
    online: bool,
    /// Our messages of this session.
    ledger: Ledger,
    /// The link error last shown, so p2pd's retries failing the same way are shown once.
    link_error: Option<String>,
    /// Messages shown from history when the session opened.
    shown: HashSet<MessageId>,
    /// Interactive: when the held "went offline" line is due ([`OFFLINE_HOLD`]).
    offline_since: Option<Instant>,
    options: Options,
}

impl Session {
    /// The first line on a terminal: who, and how to leave.
    fn greet<E: Write>(&self, notes: &mut Out<E>, peer: &PeerInfo) {
        let state = if peer.online { "online" } else { "offline" };
        note(
            notes,
            &format!(
                "chatting with {} ({state}); type a line and press enter to send it, \
                 ctrl-d or ctrl-c to leave",
                self.name
            ),
        );
        if peer.blocked {
            note(
                notes,
                &format!(
                    "note: {0} is blocked; p2pd refuses to send to it until 'p2pctl unblock {0}'",
                    self.name
                ),
            );
        }
        if peer.key_conflict.is_some() {
            note(
                notes,
                &format!(
                    "warning: the tracker shows another key for {0}; links to it are refused \
                     ('p2pctl forget-key {0}' if that key is really theirs)",
                    self.name
                ),
            );
        }
    }

    /// Sends one input line (a CR before the newline is dropped; blank lines are skipped).
    async fn on_line<S, W, E>(
        &mut self,
        client: &mut Client<S>,
        out: &mut Out<W>,
        notes: &mut Out<E>,
        mut line: String,
    ) -> Result<(), Error>
    where
        S: AsyncRead + AsyncWrite,
        W: Write,
        E: Write,
    {
        if line.ends_with('\r') {
            line.pop();
        }
        if line.trim().is_empty() {
            return Ok(());
        }
        if line.len() > MAX_TEXT {
            self.ledger.not_sent();
            note(
                notes,
                &format!("p2pctl: {}", super::msg::too_long(line.len())),
            );
            return Ok(());
        }
        let call = Call::SendMessage {
            peer: self.peer.to_string(),
            text: line,
        };
        let reply = match client.call::<MessageInfo>(call).await {
            Ok(reply) => reply,
            Err(Error::Rpc(e)) => {
                self.ledger.not_sent();
                note(notes, &format!("p2pctl: not sent: {}", Error::Rpc(e)));
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let m = &reply.value;
        self.ledger.sent(m.id, m.state);
        if self.options.json {
            return out.line(&reply.raw);
        }
        let clock = local_clock(from_unix_ms(m.sent_at));
        if !self.options.interactive {
            out.line(&format!("{clock} you: {}", clean(&m.text)))?;
        }
        if self.options.interactive && !self.online && m.state == MessageState::Queued {
            out.line(&format!("{clock} queued ({} is offline)", self.name))?;
        }
        Ok(())
    }

    /// Shows an event that concerns this conversation and updates the ledger.
    async fn on_notice<S, W, E>(
        &mut self,
        client: &mut Client<S>,
        out: &mut Out<W>,
        notes: &mut Out<E>,
        notice: &Notice,
    ) -> Result<(), Error>
    where
        S: AsyncRead + AsyncWrite,
        W: Write,
        E: Write,
    {
        if notice.method != EVENT_NOTIFICATION {
            return Ok(());
        }
        let Ok(event) = serde_json::from_value::<Event>(notice.params.clone()) else {
            return Ok(());
        };
        let json = self.options.json;
        let now = || local_clock(SystemTime::now());
        match event {
            Event::MessageReceived { message } if message.peer == self.peer => {
                if self.shown.contains(&message.id) {
                    return Ok(());
                }
                if json {
                    out.line(&message_raw(notice, &message))?;
                } else {
                    out.line(&incoming_line(&message))?;
                }
            }
            Event::MessageUpdated { message } if message.peer == self.peer => {
                let ours = self.ledger.updated(message.id, message.state);
                if message.state == MessageState::Delivered {
                    self.link_error = None;
                }
                if json {
                    out.line(&message_raw(notice, &message))?;
                } else if ours {
                    out.line(&format!("{} {}", now(), update_text(&message, &self.name)))?;
                }
            }
            Event::PeerJoined { peer } if peer.id == self.peer => {
                self.track(&peer);
                self.link_error = None;
                if self.offline_since.is_some() {
                    self.show_offline(out)?;
                }
                if json {
                } else if self.options.interactive {
                    out.line(&format!("{} {} is back", now(), self.name))?;
                } else {
                    out.line(&format!("{} {} is online", now(), self.name))?;
                }
            }
            Event::PeerUpdated { peer } if peer.id == self.peer => self.track(&peer),
            Event::PeerLeft { peer } if peer.id == self.peer => {
                self.track(&peer);
                if self.options.interactive && !json {
                    self.offline_since = Some(Instant::now() + OFFLINE_HOLD);
                } else if !json {
                    out.line(&format!(
                        "{} {} went offline; messages wait until it is back",
                        now(),
                        self.name
                    ))?;
                }
            }
            Event::LinkError {
                peer: Some(peer),
                detail,
            } if peer == self.peer => {
                // p2pd retries, and a retry may deliver: keep waiting (up to the deadline).
                if self.link_error.as_ref() == Some(&detail) {
                    return Ok(());
                }
                let line = format!("link error with {}: {}", self.name, clean(&detail));
                self.link_error = Some(detail);
                if json {
                    note(notes, &format!("p2pctl: {line}"));
                } else {
                    out.line(&format!("{} {line}", now()))?;
                }
            }
            Event::TransferOffered { transfer } | Event::TransferUpdated { transfer }
                if transfer.peer == self.peer && self.options.interactive && !json =>
            {
                let line = show::offer_line(&transfer, &self.name)
                    .or_else(|| show::end_line(&transfer, &self.name));
                if let Some(line) = line {
                    out.line(&format!("{} {line}", now()))?;
                }
            }
            Event::Lagged { missed } => {
                note(
                    notes,
                    &format!(
                        "p2pctl: missed {missed} events; 'p2pctl history {}' shows any \
                         message missed",
                        self.name
                    ),
                );
                self.resync(client, out).await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Shows the held "went offline" line.
    fn show_offline<W: Write>(&mut self, out: &mut Out<W>) -> Result<(), Error> {
        self.offline_since = None;
        let now = local_clock(SystemTime::now());
        out.line(&format!(
            "{now} {} went offline; messages wait until it is back",
            self.name
        ))
    }

    /// After lost events: reads our messages' states and the peer's state back.
    async fn resync<S, W>(&mut self, client: &mut Client<S>, out: &mut Out<W>) -> Result<(), Error>
    where
        S: AsyncRead + AsyncWrite,
        W: Write,
    {
        let limit = u32::try_from(self.ledger.len() + 100).unwrap_or(u32::MAX);
        let history = client
            .call::<Vec<MessageInfo>>(Call::History {
                peer: self.peer.to_string(),
                limit: Some(limit),
            })
            .await?;
        for m in history
            .value
            .iter()
            .filter(|m| m.direction == Direction::Out)
        {
            if self.ledger.updated(m.id, m.state) {
                if self.options.json {
                    let raw = serde_json::to_string(m)
                        .map_err(|e| Error::Protocol(format!("cannot encode a message: {e}")))?;
                    out.line(&raw)?;
                } else {
                    let now = local_clock(SystemTime::now());
                    out.line(&format!("{now} {}", update_text(m, &self.name)))?;
                }
            }
        }
        let peers = client.call::<Vec<PeerInfo>>(Call::Peers {}).await?.value;
        if let Some(p) = peers.iter().find(|p| p.id == self.peer) {
            self.track(p);
        }
        Ok(())
    }

    /// Follows the peer's state: online, and whether p2pd will send to it now.
    fn track(&mut self, p: &PeerInfo) {
        self.online = p.online;
        if awaited(p) {
            self.ledger.peer_up();
        } else {
            self.ledger.peer_down();
        }
    }

    /// The end: piped, the summary (and exit 1 if anything failed); on a terminal, a word
    /// about messages still queued.
    fn finish<E: Write>(&self, notes: &mut Out<E>) -> Result<(), Error> {
        let summary = self.ledger.summary();
        if self.options.interactive {
            if summary.queued > 0 {
                let (n, s) = (summary.queued, if summary.queued == 1 { "" } else { "s" });
                note(
                    notes,
                    &format!(
                        "{n} message{s} still queued for {0}; p2pd delivers them when {0} \
                         can be reached",
                        self.name
                    ),
                );
            }
            return Ok(());
        }
        note(notes, &summary.to_string());
        if summary.ok() {
            Ok(())
        } else {
            Err(Error::Reported)
        }
    }
}

/// `HH:MM:SS bob: text`, the time being when bob sent it.
fn incoming_line(m: &MessageInfo) -> String {
    format!(
        "{} {}: {}",
        local_clock(from_unix_ms(m.sent_at)),
        clean(m.peer_name.as_str()),
        clean(&m.text)
    )
}

/// `✓ delivered: PREVIEW` or `✗ refused by bob: PREVIEW (DETAIL)`.
fn update_text(m: &MessageInfo, name: &str) -> String {
    let text = preview(&m.text, PREVIEW);
    match (m.state, m.detail.as_deref().filter(|d| !d.is_empty())) {
        (MessageState::Refused, Some(d)) => format!("✗ refused by {name}: {text} ({})", clean(d)),
        (MessageState::Refused, None) => format!("✗ refused by {name}: {text}"),
        (state, _) => format!("✓ {}: {text}", crate::output::message_state(state)),
    }
}

#[cfg(test)]
mod tests;
