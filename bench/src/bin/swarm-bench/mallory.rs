//! mallory: a hostile source (`p2p_tests::share_raw::hostile_source`) run by this program in
//! a host of its own, capped like the seeders: a thread moves into the host's network
//! namespace and runs the server there on a runtime of its own.

use std::fs::File;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use anyhow::Context;
use p2p_tests::Tracker;
use p2p_tests::netns::Lab;
use p2p_tests::raw::random_key;
use p2p_tests::share_raw::hostile_source;
use p2p_tests::transfer::register_raw_via;
use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};
use tokio::sync::oneshot;

/// The running hostile source.
pub struct Mallory {
    stop: oneshot::Sender<()>,
    thread: JoinHandle<()>,
    asked: Arc<AtomicU64>,
}

/// Adds host `mallory` capped at 200 Mbit/s, registers mallory at `tracker` and serves a
/// `len`-byte file there, answering every chunk with wrong bytes.
pub fn start(lab: &mut Lab, tracker: &Tracker, len: u64) -> anyhow::Result<Mallory> {
    let host = lab.host("mallory");
    host.limit_rate(200);
    let ns = File::open(format!("/run/netns/{}", host.ns)).context("open mallory's namespace")?;
    let tracker = tracker.addr;
    let asked = Arc::new(AtomicU64::new(0));
    let (stop, stopped) = oneshot::channel();
    let (ready, is_ready) = std::sync::mpsc::channel();
    let counter = asked.clone();
    let addr = host.addr;
    let thread = std::thread::spawn(move || {
        let entered = move_into_link_name_space(ns.as_fd(), Some(LinkNameSpaceType::Network));
        if let Err(e) = entered {
            let _ = ready.send(Err(format!("setns: {e}")));
            return;
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind((addr, 0))
                .await
                .expect("bind in mallory's host");
            let at = listener.local_addr().expect("bound address");
            let key = random_key();
            let registration = register_raw_via(tracker, &key, "mallory", at).await;
            let _ = ready.send(Ok(()));
            tokio::select! {
                () = hostile_source(listener, key, "mallory", len, false, counter) => {}
                _ = stopped => {}
            }
            drop(registration);
        });
    });
    is_ready
        .recv()
        .context("mallory's thread ended")?
        .map_err(anyhow::Error::msg)?;
    Ok(Mallory {
        stop,
        thread,
        asked,
    })
}

impl Mallory {
    /// Stops the server; how many chunks it was asked for.
    pub fn stop(self) -> u64 {
        let _ = self.stop.send(());
        let _ = self.thread.join();
        self.asked.load(Ordering::SeqCst)
    }
}
