//! The memory a transfer engine moves data in, owned by the transfer service: the chunk
//! buffers kept between sends and between receives, and the daemon-wide caps on the
//! receiver's chunks in flight and on the sender's read-ahead buffers beyond each transfer's
//! first.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::{Bytes, BytesMut};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::source::BUFFERS;

/// Received chunks beyond each link's first (being read, queued, verified or written),
/// across every receive of the daemon. A link always has room for one chunk of its own, so
/// a sender that stalls mid-chunk never holds up another transfer; one transfer alone holds
/// its own and all of these (the 5 its queues can hold), several at once share them.
const RECV_EXTRA: usize = 4;
/// Most received-chunk buffers kept while nothing is received (what one transfer needs
/// going round). While receives run, the pool keeps as many as may be in flight at once
/// (each link's own room and the extras), so buffers go round instead of being freed and
/// allocated again, which left freed memory scattered over the allocator's arenas.
const RECV_POOL_MAX: usize = 4;
/// Most send buffers kept (what one send uses at once).
const SEND_POOL_MAX: usize = BUFFERS;
/// Send buffers beyond each send's first, across every send of the daemon. A send always
/// has one buffer of its own, so a send whose receiver stalls never holds up another; the
/// read-ahead beyond it is shared: one send alone gets all of it, several at once share it.
const SEND_EXTRA: usize = 4;

/// Buffer pools and the in-flight cap, shared by every transfer of one service.
///
/// Buffers are kept for the next chunks rather than allocated and freed per chunk or per
/// send: freed buffers would stay scattered over the allocator's per-thread arenas.
pub(super) struct Buffers {
    /// Permits for received chunks beyond each link's own ([`RECV_EXTRA`]).
    recv_extra: Arc<Semaphore>,
    /// Buffers of written chunks, for the next chunks any transfer reads from its link.
    recv: Mutex<Vec<BytesMut>>,
    /// Receive sessions running ([`Buffers::receiving`]).
    receiving: Mutex<usize>,
    /// Buffers of finished sends, for the next send's reading thread.
    send: Mutex<Vec<Vec<u8>>>,
    /// Permits for send buffers beyond a send's first ([`SEND_EXTRA`]).
    send_extra: Arc<Semaphore>,
}

impl Default for Buffers {
    fn default() -> Self {
        Buffers {
            recv_extra: Arc::new(Semaphore::new(RECV_EXTRA)),
            recv: Mutex::default(),
            receiving: Mutex::default(),
            send: Mutex::default(),
            send_extra: Arc::new(Semaphore::new(SEND_EXTRA)),
        }
    }
}

/// A receive session counted by [`Buffers::receiving`].
pub(super) struct Receiving(Arc<Buffers>);

impl Drop for Receiving {
    fn drop(&mut self) {
        let mut running = lock(&self.0.receiving);
        *running = running.saturating_sub(1);
        if *running == 0 {
            lock(&self.0.recv).truncate(RECV_POOL_MAX);
        }
    }
}

/// A receiving link's own room for one chunk in flight ([`Buffers::chunk_room`]).
pub(super) fn own_room() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(1))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Buffers {
    /// Waits for room to read one more chunk from a link, before its bytes are read: the
    /// link's `own` room (one permit, see [`own_room`]) or one of the daemon-wide extras,
    /// whichever frees first. The room is freed when the permit is dropped, once the chunk is
    /// written. (`None` only if a semaphore were closed, which they never are.)
    pub(super) async fn chunk_room(&self, own: &Arc<Semaphore>) -> Option<OwnedSemaphorePermit> {
        tokio::select! {
            biased;
            p = own.clone().acquire_owned() => p.ok(),
            p = self.recv_extra.clone().acquire_owned() => p.ok(),
        }
    }

    /// A buffer for reading the next received chunk, if one is free.
    pub(super) fn spare_recv(&self) -> Option<BytesMut> {
        lock(&self.recv).pop()
    }

    /// Keeps a written chunk's buffer for reuse, if nothing else holds it and the pool has
    /// room.
    pub(super) fn give_back_recv(&self, data: Bytes) {
        if let Ok(buf) = data.try_into_mut() {
            let keep = RECV_POOL_MAX.max(*lock(&self.receiving) + RECV_EXTRA);
            let mut pool = lock(&self.recv);
            if pool.len() < keep {
                pool.push(buf);
            }
        }
    }

    /// Counts a receive session as running until the guard is dropped; when the last ends,
    /// the pool gives back what it kept beyond [`RECV_POOL_MAX`].
    pub(super) fn receiving(self: &Arc<Self>) -> Receiving {
        *lock(&self.receiving) += 1;
        Receiving(self.clone())
    }

    /// A kept send buffer, if any.
    pub(super) fn take_send(&self) -> Option<Vec<u8>> {
        lock(&self.send).pop()
    }

    /// Room for one more read-ahead buffer of a send, if the daemon-wide cap allows it now;
    /// the room is freed when the permit is dropped. Never waits: a send that gets none
    /// goes on with the buffers it has.
    pub(super) fn extra_send(&self) -> Option<OwnedSemaphorePermit> {
        self.send_extra.clone().try_acquire_owned().ok()
    }

    /// Keeps a send buffer for the next send, if the pool has room.
    pub(super) fn keep_send(&self, buf: Vec<u8>) {
        let mut pool = lock(&self.send);
        if pool.len() < SEND_POOL_MAX {
            pool.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Polls `f` once.
    fn futures_now<F: std::future::Future + Unpin>(f: F) -> Option<F::Output> {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = f;
        match std::pin::Pin::new(&mut f).poll(&mut cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        }
    }

    #[tokio::test]
    async fn pools_are_capped_and_the_in_flight_cap_holds() {
        let b = Buffers::default();
        for _ in 0..10 {
            b.give_back_recv(Bytes::from(vec![0u8; 16]));
            b.keep_send(vec![0u8; 16]);
        }
        assert_eq!(std::iter::from_fn(|| b.spare_recv()).count(), RECV_POOL_MAX);
        // While receives run the pool keeps what they may have in flight, and gives the
        // rest back when the last ends.
        let b = Arc::new(b);
        let (one, two) = (b.receiving(), b.receiving());
        for _ in 0..10 {
            b.give_back_recv(Bytes::from(vec![0u8; 16]));
        }
        assert_eq!(lock(&b.recv).len(), 2 + RECV_EXTRA);
        drop(one);
        assert_eq!(lock(&b.recv).len(), 2 + RECV_EXTRA);
        drop(two);
        assert_eq!(lock(&b.recv).len(), RECV_POOL_MAX);
        std::iter::from_fn(|| b.spare_recv()).for_each(drop);
        assert_eq!(std::iter::from_fn(|| b.take_send()).count(), SEND_POOL_MAX);
        // A buffer something else still holds is not kept.
        let shared = Bytes::from(vec![0u8; 16]);
        let _other = shared.clone();
        b.give_back_recv(shared);
        assert!(b.spare_recv().is_none());

        // A link takes its own room first, then the extras; with those gone it waits for
        // whichever frees first, and another link still has its own.
        let (one, two) = (own_room(), own_room());
        let mut held = Vec::new();
        for _ in 0..=RECV_EXTRA {
            held.push(b.chunk_room(&one).await.expect("room"));
        }
        assert_eq!(one.available_permits(), 0);
        assert_eq!(b.recv_extra.available_permits(), 0);
        let waiting = b.chunk_room(&one);
        tokio::pin!(waiting);
        assert!(futures_now(waiting.as_mut()).is_none());
        let _other = b.chunk_room(&two).await.expect("the other link's own room");
        drop(held.pop());
        assert!(futures_now(waiting.as_mut()).is_some());

        let extras: Vec<_> = std::iter::from_fn(|| b.extra_send()).collect();
        assert_eq!(extras.len(), SEND_EXTRA);
        drop(extras);
        assert!(b.extra_send().is_some());
    }
}
