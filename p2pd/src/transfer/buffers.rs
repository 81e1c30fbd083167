//! The memory a transfer engine moves data in, owned by the transfer service: the chunk
//! buffers kept between sends and between receives, the daemon-wide cap on received chunks
//! in flight, and the daemon-wide cap on the sender's read-ahead buffers.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::{Bytes, BytesMut};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::source::BUFFERS;

/// Chunks queued or being verified or written, across every transfer of the daemon: one
/// transfer holds at most 5, so only several at once wait for each other, and memory stays
/// bounded however many there are.
const IN_FLIGHT: usize = 8;
/// Most received-chunk buffers kept (what one transfer needs going round).
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
    /// Permits for received chunks between the link task and the writer.
    in_flight: Arc<Semaphore>,
    /// Buffers of written chunks, for the next chunks any transfer reads from its link.
    recv: Mutex<Vec<BytesMut>>,
    /// Buffers of finished sends, for the next send's reading thread.
    send: Mutex<Vec<Vec<u8>>>,
    /// Permits for send buffers beyond a send's first ([`SEND_EXTRA`]).
    send_extra: Arc<Semaphore>,
}

impl Default for Buffers {
    fn default() -> Self {
        Buffers {
            in_flight: Arc::new(Semaphore::new(IN_FLIGHT)),
            recv: Mutex::default(),
            send: Mutex::default(),
            send_extra: Arc::new(Semaphore::new(SEND_EXTRA)),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Buffers {
    /// Waits for room for one more received chunk in flight; the room is freed when the
    /// permit is dropped. (`None` only if the semaphore were closed, which it never is.)
    pub(super) async fn chunk_permit(&self) -> Option<OwnedSemaphorePermit> {
        self.in_flight.clone().acquire_owned().await.ok()
    }

    /// A buffer for reading the next received chunk, if one is free.
    pub(super) fn spare_recv(&self) -> Option<BytesMut> {
        lock(&self.recv).pop()
    }

    /// Keeps a written chunk's buffer for reuse, if nothing else holds it and the pool has
    /// room.
    pub(super) fn give_back_recv(&self, data: Bytes) {
        if let Ok(buf) = data.try_into_mut() {
            let mut pool = lock(&self.recv);
            if pool.len() < RECV_POOL_MAX {
                pool.push(buf);
            }
        }
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

    #[tokio::test]
    async fn pools_are_capped_and_the_in_flight_cap_holds() {
        let b = Buffers::default();
        for _ in 0..10 {
            b.give_back_recv(Bytes::from(vec![0u8; 16]));
            b.keep_send(vec![0u8; 16]);
        }
        assert_eq!(std::iter::from_fn(|| b.spare_recv()).count(), RECV_POOL_MAX);
        assert_eq!(std::iter::from_fn(|| b.take_send()).count(), SEND_POOL_MAX);
        // A buffer something else still holds is not kept.
        let shared = Bytes::from(vec![0u8; 16]);
        let _other = shared.clone();
        b.give_back_recv(shared);
        assert!(b.spare_recv().is_none());

        let mut held = Vec::new();
        for _ in 0..IN_FLIGHT {
            held.push(b.chunk_permit().await);
        }
        assert_eq!(b.in_flight.available_permits(), 0);
        drop(held.pop());
        let _again = b.chunk_permit().await;

        let extras: Vec<_> = std::iter::from_fn(|| b.extra_send()).collect();
        assert_eq!(extras.len(), SEND_EXTRA);
        drop(extras);
        assert!(b.extra_send().is_some());
    }
}
