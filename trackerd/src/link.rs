//! One attached link's shared handle: its queue of event frames, why it must close, and when
//! its peer was last heard from. The hub pushes frames and closes links; the link's task waits
//! on the handle ([`LinkCtl::poll_signal`]); one sweeper closes the links whose lease ran out
//! ([`crate::state::Hub::sweep`]). One small allocation per link, instead of a child
//! cancellation token, a timer and a `Notify` each.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

/// Frames queued per link before it counts as too slow and is disconnected.
pub const QUEUE: usize = 4096;

/// Why the hub closes a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Close {
    /// Displaced, evicted, released by the operator, or the tracker stops.
    Cancelled,
    /// Nothing heard from the peer for a whole lease.
    Lease,
    /// Its event queue overflowed: it gets what waits, then the link closes.
    Slow,
}

/// What the link's task is woken for.
#[derive(Debug, PartialEq, Eq)]
pub enum Signal {
    /// An event frame to send.
    Frame(Bytes),
    /// The link must close.
    Close(Close),
}

/// Why a frame was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum PushError {
    /// [`QUEUE`] frames wait already.
    Full,
    /// The link is closing.
    Closed,
}

#[derive(Default)]
struct State {
    /// Allocated while frames wait, freed once they are taken: an idle link holds none.
    frames: VecDeque<Bytes>,
    waker: Option<Waker>,
    close: Option<Close>,
}

/// The handle on one link (see the module documentation).
#[derive(Default)]
pub struct LinkCtl {
    state: Mutex<State>,
    /// When the peer was last heard from, in the hub's milliseconds.
    heard: AtomicU64,
}

impl LinkCtl {
    /// A handle on a link whose peer was heard from at `now_ms`.
    pub fn new(now_ms: u64) -> Self {
        LinkCtl {
            state: Mutex::default(),
            heard: AtomicU64::new(now_ms),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues an event frame and wakes the link.
    pub fn push(&self, frame: Bytes) -> Result<(), PushError> {
        let mut s = self.lock();
        if s.close.is_some() {
            return Err(PushError::Closed);
        }
        if s.frames.len() >= QUEUE {
            return Err(PushError::Full);
        }
        s.frames.push_back(frame);
        wake(s);
        Ok(())
    }

    /// Asks the link to close; the first reason given stands.
    pub fn close(&self, why: Close) {
        let mut s = self.lock();
        if s.close.is_none() {
            s.close = Some(why);
            wake(s);
        }
    }

    /// Whether the link was asked to close.
    pub fn closing(&self) -> Option<Close> {
        self.lock().close
    }

    /// The peer was heard from at `now_ms`.
    pub fn heard(&self, now_ms: u64) {
        self.heard.store(now_ms, Ordering::Relaxed);
    }

    /// When the peer was last heard from.
    pub fn heard_at(&self) -> u64 {
        self.heard.load(Ordering::Relaxed)
    }

    /// The next signal: a close for a reason other than [`Close::Slow`] first, then the
    /// queued frames, then a slow link's close. Pending (and woken by the hub) otherwise.
    pub fn poll_signal(&self, cx: &mut Context<'_>) -> Poll<Signal> {
        let mut s = self.lock();
        if let Some(why @ (Close::Cancelled | Close::Lease)) = s.close {
            return Poll::Ready(Signal::Close(why));
        }
        if let Some(frame) = s.frames.pop_front() {
            if s.frames.is_empty() {
                s.frames = VecDeque::new();
            }
            return Poll::Ready(Signal::Frame(frame));
        }
        if let Some(why) = s.close {
            return Poll::Ready(Signal::Close(why));
        }
        if !s.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            s.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// The next signal, waiting for one.
    pub async fn signal(&self) -> Signal {
        std::future::poll_fn(|cx| self.poll_signal(cx)).await
    }
}

/// Wakes the link's task, outside the lock.
fn wake(mut s: MutexGuard<'_, State>) {
    let waker = s.waker.take();
    drop(s);
    if let Some(w) = waker {
        w.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn frames_wake_the_reader_and_a_close_ends_it() {
        let link = Arc::new(LinkCtl::new(0));
        let reader = tokio::spawn({
            let link = link.clone();
            async move {
                let mut got = Vec::new();
                loop {
                    match link.signal().await {
                        Signal::Frame(f) => got.push(f),
                        Signal::Close(why) => return (got, why),
                    }
                }
            }
        });
        for i in 0..100u8 {
            link.push(Bytes::from(vec![i])).unwrap();
            tokio::task::yield_now().await;
        }
        link.close(Close::Slow);
        link.close(Close::Lease);
        assert_eq!(link.push(Bytes::new()), Err(PushError::Closed));
        let (got, why) = reader.await.unwrap();
        assert_eq!(why, Close::Slow, "the first reason stands");
        assert_eq!(
            got,
            (0..100u8).map(|i| Bytes::from(vec![i])).collect::<Vec<_>>()
        );
        assert_eq!(
            link.lock().frames.capacity(),
            0,
            "an idle link keeps no buffer"
        );
    }

    #[test]
    fn a_cancel_goes_before_waiting_frames_and_a_full_queue_refuses() {
        let link = LinkCtl::new(5);
        for _ in 0..QUEUE {
            link.push(Bytes::from_static(b"e")).unwrap();
        }
        assert_eq!(link.push(Bytes::from_static(b"e")), Err(PushError::Full));
        link.close(Close::Cancelled);
        let mut cx = Context::from_waker(Waker::noop());
        assert_eq!(
            link.poll_signal(&mut cx),
            Poll::Ready(Signal::Close(Close::Cancelled))
        );
        assert_eq!(link.heard_at(), 5);
        link.heard(9);
        assert_eq!(link.heard_at(), 9);
    }
}
