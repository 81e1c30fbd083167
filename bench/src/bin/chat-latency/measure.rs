//! The timed loops: the raw socket echo baseline, `peers` round trips, and the chat itself.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bench::WAIT;
use bench::rpc::Rpc;
use proto::api::{Call, EVENT_NOTIFICATION};
use proto::rpc::{ServerLine, parse_server_line};

/// Size of one raw echo message (about a `peers` request line).
const ECHO_BYTES: usize = 64;

/// Round trips of `ECHO_BYTES` over a socket pair between this thread and an echo thread.
pub fn kernel_echo(rounds: usize, warmup: usize) -> anyhow::Result<Vec<Duration>> {
    let (mut near, mut far) = UnixStream::pair()?;
    near.set_read_timeout(Some(WAIT))?;
    let total = rounds + warmup;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let mut buf = [0u8; ECHO_BYTES];
        for _ in 0..total {
            far.read_exact(&mut buf)?;
            far.write_all(&buf)?;
        }
        Ok(())
    });
    let msg = [b'x'; ECHO_BYTES];
    let mut buf = [0u8; ECHO_BYTES];
    let mut samples = Vec::with_capacity(rounds);
    for i in 0..total {
        let t0 = Instant::now();
        near.write_all(&msg)?;
        near.read_exact(&mut buf)?;
        if i >= warmup {
            samples.push(t0.elapsed());
        }
    }
    echo.join()
        .map_err(|_| anyhow::anyhow!("the echo thread panicked"))??;
    Ok(samples)
}

/// `peers` round trips on `rpc`, timed from the write to the response line read.
pub fn rpc_ping(rpc: &mut Rpc, rounds: usize, warmup: usize) -> anyhow::Result<Vec<Duration>> {
    let mut samples = Vec::with_capacity(rounds);
    for i in 0..rounds + warmup {
        let timed = rpc.timed_call(Call::Peers {})?;
        if timed.result.is_none() {
            bail!("a notification on an unsubscribed connection");
        }
        if i >= warmup {
            samples.push(timed.read - timed.sent);
        }
    }
    Ok(samples)
}

/// The three timings of every measured message, and the first (cold) message's.
pub struct ChatSamples {
    /// A = t2 - t1: `send_message` returned on alice -> event read at bob.
    pub a: Vec<Duration>,
    /// B = t2 - t0: request about to be written to alice -> event read at bob.
    pub b: Vec<Duration>,
    /// C = t1 - t0: the `send_message` call itself.
    pub c: Vec<Duration>,
    /// B of the first warm-up message: it also dials the TLS link to bob.
    pub first_b: Duration,
    /// Other lines read on bob's subscription meanwhile (other events).
    pub other_events: usize,
}

/// Sends `warmup + n` messages from alice to bob, one at a time; `bob` is subscribed.
pub fn chat(
    alice: &mut Rpc,
    bob: &mut Rpc,
    n: usize,
    warmup: usize,
) -> anyhow::Result<ChatSamples> {
    let mut out = ChatSamples {
        a: Vec::with_capacity(n),
        b: Vec::with_capacity(n),
        c: Vec::with_capacity(n),
        first_b: Duration::ZERO,
        other_events: 0,
    };
    for i in 0..warmup + n {
        let text = format!("m{i}");
        let timed = alice.timed_call(Call::SendMessage {
            peer: "bob".into(),
            text: text.clone(),
        })?;
        let (t0, t1) = (timed.sent, timed.read);
        let result = timed
            .result
            .context("a notification on alice's unsubscribed connection")?;
        if result["text"] != text.as_str() {
            bail!("send_message answered {result} for {text:?}");
        }
        let t2 = loop {
            let line = bob
                .read_line()
                .with_context(|| format!("waiting for {text:?} at bob"))?;
            let t2 = Instant::now();
            let event = match parse_server_line(line.trim_end())? {
                ServerLine::Notification(n) if n.method == EVENT_NOTIFICATION => n.params,
                other => bail!("unexpected line on bob's subscription: {other:?}"),
            };
            if event["type"] == "message_received" && event["message"]["text"] == text.as_str() {
                break t2;
            }
            if event["type"] == "message_received" {
                bail!(
                    "bob received {} while waiting for {text:?}",
                    event["message"]
                );
            }
            out.other_events += 1;
        };
        if i == 0 {
            out.first_b = t2 - t0;
        }
        if i >= warmup {
            out.a.push(t2 - t1);
            out.b.push(t2 - t0);
            out.c.push(t1 - t0);
        }
    }
    Ok(out)
}
