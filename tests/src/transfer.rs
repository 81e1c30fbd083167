//! File-transfer helpers: the transfer methods of the control socket (`send_files`,
//! `transfers`, `accept`, `decline`, `cancel`), waits on a transfer's state re-checked on
//! every event, test data and directory listings, and [`BulkSender`], a hand-driven bulk link
//! that plays a sender who lies (hostile paths, bad chunks, size lies).

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use proto::SecretKey;
use proto::content::{ChunkCv, ChunkCvs, chunk_cvs};
use proto::peer::ALPN_BULK_V1;
use proto::tracker::{Record, TrackerMsg};
use proto::transfer::{
    CHUNK, FileEntry, MAX_CHUNK_FRAME, Manifest, RelPath, TransferFrame, TransferId,
};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::raw::{self, Client};
use crate::raw_peer::RawPeer;
use crate::{P2pd, Tracker};

/// Deadline for a transfer of tens of megabytes between debug builds to end.
pub const TRANSFER_DEADLINE: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------------------------
// The control socket

/// `send_files {peer, path}` on `p`: offers `path` (absolute) to `peer`; returns the
/// outgoing transfer as p2pd answers at once: `scanning`, while it hashes the files.
#[track_caller]
pub fn start_send(p: &P2pd, peer: &str, path: &Path) -> Value {
    let path = path.to_str().expect("test paths are UTF-8");
    let t = p
        .rpc()
        .call("send_files", json!({"peer": peer, "path": path}));
    assert_eq!(t["state"], "scanning", "{t:#}");
    t
}

/// [`start_send`], then waits until p2pd has hashed the files; returns the transfer as
/// listed then (`queued` or later, or `failed` if the files could not be hashed).
#[track_caller]
pub fn send_files(p: &P2pd, peer: &str, path: &Path) -> Value {
    let id = id_of(&start_send(p, peer, path));
    wait_transfer(p, &id, "hashed", TRANSFER_DEADLINE, |t| {
        t["state"] != "scanning"
    })
}

/// Every transfer `p` lists.
#[track_caller]
pub fn list(p: &P2pd) -> Vec<Value> {
    as_list(p.rpc().call("transfers", json!({})))
}

fn as_list(v: Value) -> Vec<Value> {
    match v {
        Value::Array(list) => list,
        other => panic!("transfers is not an array: {other}"),
    }
}

/// The transfer `id` as `p` lists it, if it does.
#[track_caller]
pub fn get(p: &P2pd, id: &str) -> Option<Value> {
    list(p).into_iter().find(|t| t["id"] == id)
}

/// The id of a transfer (as `TransferInfo` JSON).
pub fn id_of(t: &Value) -> String {
    t["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a transfer has an id: {t}"))
        .to_owned()
}

/// `accept {id, to?}` on `p`; returns the transfer.
#[track_caller]
pub fn accept(p: &P2pd, id: &str, to: Option<&Path>) -> Value {
    let mut params = json!({ "id": id });
    if let Some(to) = to {
        params["to"] = json!(to.to_str().expect("test paths are UTF-8"));
    }
    p.rpc().call("accept", params)
}

/// `decline {id}` on `p`; returns the transfer.
#[track_caller]
pub fn decline(p: &P2pd, id: &str) -> Value {
    p.rpc().call("decline", json!({ "id": id }))
}

/// `cancel {id}` on `p`; returns the transfer.
#[track_caller]
pub fn cancel(p: &P2pd, id: &str) -> Value {
    p.rpc().call("cancel", json!({ "id": id }))
}

/// `trust {peer, auto_accept: true}` on `p`; returns the peer.
#[track_caller]
pub fn trust_auto_accept(p: &P2pd, peer: &str) -> Value {
    p.rpc()
        .call("trust", json!({"peer": peer, "auto_accept": true}))
}

/// Waits until `check` returns `Some` for `p`'s transfer list, re-reading it on every event
/// (subscribed before the first read, so no change is missed). On timeout, panics with the
/// list.
#[track_caller]
pub fn wait_list<T>(
    p: &P2pd,
    what: &str,
    timeout: Duration,
    mut check: impl FnMut(&[Value]) -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    let mut rpc = p.rpc();
    rpc.subscribe();
    loop {
        let list = as_list(rpc.call("transfers", json!({})));
        if let Some(v) = check(&list) {
            return v;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            panic!(
                "{}: not {what} within {timeout:?}; transfers: {list:#?}",
                p.name
            );
        }
        rpc.next_event(left);
    }
}

/// Waits until `p` lists transfer `id` and `pred` accepts it; returns it.
#[track_caller]
pub fn wait_transfer(
    p: &P2pd,
    id: &str,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    wait_list(p, what, timeout, |list| {
        list.iter().find(|t| t["id"] == id && pred(t)).cloned()
    })
}

/// Waits until transfer `id` is in `state` at `p`; panics at once if it ends in another
/// state.
#[track_caller]
pub fn wait_state(p: &P2pd, id: &str, state: &str, timeout: Duration) -> Value {
    wait_list(p, &format!("transfer {id} {state}"), timeout, |list| {
        let t = list.iter().find(|t| t["id"] == id)?;
        if t["state"] == state {
            return Some(t.clone());
        }
        assert!(
            !is_final(t),
            "{}: transfer {id} ended {} while waiting for {state}: {t:#}",
            p.name,
            t["state"]
        );
        None
    })
}

/// alice offers `file` to bob, bob accepts it into his download directory; returns the
/// transfer id and the bytes done in bob's first progress report above `min` (the transfer
/// is then running).
#[track_caller]
pub fn send_until_progress(alice: &P2pd, bob: &P2pd, file: &Path, min: u64) -> (String, u64) {
    let mut events = bob.rpc();
    events.subscribe();
    let id = id_of(&send_files(alice, &bob.name, file));
    events.wait_event(
        "the offer at bob",
        |ev| offered_in(ev) && ev["transfer"]["id"] == id.as_str(),
        crate::DEADLINE,
    );
    accept(bob, &id, None);
    let at = events.wait_event(
        &format!("bob's progress past {min} bytes"),
        progress(&id, min),
        TRANSFER_DEADLINE,
    )["transfer"]["done_bytes"]
        .as_u64()
        .expect("done_bytes");
    (id, at)
}

/// Waits until transfer `id` of `data` as `name` is done at alice and at bob, and checks
/// that bob's download directory then holds that file, byte for byte, and nothing else.
#[track_caller]
pub fn wait_arrived(alice: &P2pd, bob: &P2pd, id: &str, name: &str, data: &[u8]) {
    for p in [bob, alice] {
        let t = wait_state(p, id, "done", TRANSFER_DEADLINE);
        assert_eq!(t["done_bytes"], data.len(), "{}: {t:#}", p.name);
    }
    let dl = bob.download_dir();
    assert_content(&dl.join(name), data);
    wait_no_parts(dl, crate::DEADLINE);
    assert_eq!(entries(dl), [name]);
}

/// SIGKILLs `p` and checks it died of it.
#[track_caller]
pub fn sigkill(p: &mut P2pd) {
    let status = p.kill();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "{}: {status}",
        p.name
    );
}

/// Waits until `p` lists an incoming offer (state `offered`); returns the first.
#[track_caller]
pub fn wait_offer(p: &P2pd, timeout: Duration) -> Value {
    wait_list(p, "an incoming offer", timeout, |list| {
        list.iter()
            .find(|t| t["direction"] == "in" && t["state"] == "offered")
            .cloned()
    })
}

/// True once the transfer can change no more.
pub fn is_final(t: &Value) -> bool {
    matches!(
        t["state"].as_str(),
        Some("done" | "declined" | "cancelled" | "failed")
    )
}

/// Event predicate: `transfer_updated` of `id` in `state`.
pub fn updated<'a>(id: &'a str, state: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |ev| {
        ev["type"] == "transfer_updated"
            && ev["transfer"]["id"] == id
            && ev["transfer"]["state"] == state
    }
}

/// Event predicate: `transfer_updated` of `id` in any final state.
pub fn ended(id: &str) -> impl Fn(&Value) -> bool + '_ {
    move |ev| {
        ev["type"] == "transfer_updated" && ev["transfer"]["id"] == id && is_final(&ev["transfer"])
    }
}

/// Event predicate: `transfer_progress` of `id` with more than `min` bytes done.
pub fn progress(id: &str, min: u64) -> impl Fn(&Value) -> bool + '_ {
    move |ev| {
        ev["type"] == "transfer_progress"
            && ev["transfer"]["id"] == id
            && ev["transfer"]["done_bytes"]
                .as_u64()
                .is_some_and(|d| d > min)
    }
}

/// Event predicate: `transfer_offered` of an incoming transfer.
pub fn offered_in(ev: &Value) -> bool {
    ev["type"] == "transfer_offered" && ev["transfer"]["direction"] == "in"
}

// ---------------------------------------------------------------------------------------------
// Files

/// `len` bytes of a reproducible pseudo-random pattern (no two seeds alike).
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Writes `pattern(len, seed)` to `path` (creating its directory) and returns the bytes.
pub fn write_pattern(path: &Path, len: usize, seed: u64) -> Vec<u8> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("create a directory for test data");
    }
    let data = pattern(len, seed);
    std::fs::write(path, &data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    data
}

/// Every entry under `dir`, recursively, as sorted relative paths (`/`-separated);
/// directories end with `/`, symlinks with ` -> TARGET` (never followed). Empty if `dir`
/// does not exist.
pub fn entries(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd {
            let e = e.expect("read a directory entry");
            let name = format!("{rel}{}", e.file_name().to_string_lossy());
            let ft = e.file_type().expect("file type");
            if ft.is_symlink() {
                let target = std::fs::read_link(e.path()).expect("read a symlink");
                out.push(format!("{name} -> {}", target.display()));
            } else if ft.is_dir() {
                out.push(format!("{name}/"));
                walk(&e.path(), &format!("{name}/"), out);
            } else {
                out.push(name);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out);
    out.sort();
    out
}

/// The entries under `dir` that look like part files (`.part` at the end).
pub fn part_files(dir: &Path) -> Vec<String> {
    entries(dir)
        .into_iter()
        .filter(|e| e.ends_with(".part"))
        .collect()
}

/// Waits until no part file is left under `dir`. The receiver removes them as it ends a
/// transfer, which may be just after the end is announced; this polls the directory (there
/// is no event for it) until `timeout`, then panics with what is left.
#[track_caller]
pub fn wait_no_parts(dir: &Path, timeout: Duration) {
    crate::poll(timeout, Duration::from_millis(20), || {
        let parts = part_files(dir);
        if parts.is_empty() {
            return Ok(());
        }
        Err(format!(
            "part files left in {}: {parts:?}\nall: {:?}",
            dir.display(),
            entries(dir)
        ))
    });
}

/// Panics unless the file at `path` holds exactly `want`.
#[track_caller]
pub fn assert_content(path: &Path, want: &[u8]) {
    let got = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert!(
        got.len() == want.len() && got == want,
        "{} differs: {} bytes, {} expected (blake3 {} vs {})",
        path.display(),
        got.len(),
        want.len(),
        blake3::hash(&got),
        blake3::hash(want)
    );
}

// ---------------------------------------------------------------------------------------------
// A hand-driven (hostile) sender

/// Registers `key` as `name` at the tracker (announcing an address nobody listens on), so
/// daemons list it and admit its links; the registration lives as long as the returned
/// client.
pub async fn register_raw(tracker: &Tracker, key: &SecretKey, name: &str) -> Client {
    register_raw_at(tracker, key, name, "127.0.0.1:9".parse().expect("addr")).await
}

/// [`register_raw`], announcing `addr`.
pub async fn register_raw_at(
    tracker: &Tracker,
    key: &SecretKey,
    name: &str,
    addr: SocketAddr,
) -> Client {
    register_raw_via(tracker.addr, key, name, addr).await
}

/// A hand-made peer `name` with a listening port, registered at `tracker` with that port as
/// its address, once `p2pd` sees it online: its key, the listener (p2pd dials it there) and
/// the tracker link that keeps it registered.
pub async fn listening_raw_peer(
    tracker: &Tracker,
    p2pd: &P2pd,
    name: &str,
) -> (SecretKey, tokio::net::TcpListener, Client) {
    let key = raw::random_key();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind {name}'s port: {e}"));
    let addr = listener.local_addr().expect("a bound address");
    let registration = register_raw_at(tracker, &key, name, addr).await;
    p2pd.wait_peer(name, true, crate::DEADLINE);
    (key, listener, registration)
}

/// [`register_raw_at`] with the tracker at `tracker`.
pub async fn register_raw_via(
    tracker: SocketAddr,
    key: &SecretKey,
    name: &str,
    addr: SocketAddr,
) -> Client {
    let mut c = Client::connect(tracker, key)
        .await
        .expect("connect to the tracker");
    let rec = Record {
        name: proto::PeerName::new(name).expect("name"),
        key: key.peer_id(),
        addrs: vec![addr],
        seq: 1,
    }
    .sign(key);
    match c.register(rec).await {
        TrackerMsg::Registered { .. } => c,
        other => panic!("the tracker refused {name}: {other:?}"),
    }
}

/// A manifest entry with a plain string path, encoded like [`FileEntry`] but never
/// validated: what a hostile peer's encoder can send.
#[derive(Debug, Clone, Serialize)]
pub struct ShadowEntry {
    /// The path, whatever it is.
    pub path: String,
    /// The announced size.
    pub size: u64,
    /// The announced hash.
    pub hash: [u8; 32],
}

#[derive(Serialize)]
struct ShadowManifest<'a> {
    id: [u8; 16],
    files: &'a [ShadowEntry],
}

#[derive(Serialize)]
enum ShadowFrame<'a> {
    Offer(ShadowManifest<'a>),
}

/// The payload of an `Offer` frame (tag 0) with `files` as given, bypassing every check.
pub fn shadow_offer(id: TransferId, files: &[ShadowEntry]) -> Vec<u8> {
    postcard::to_stdvec(&ShadowFrame::Offer(ShadowManifest { id: id.0, files }))
        .expect("encode a shadow offer")
}

/// A fresh random transfer id.
pub fn random_id() -> TransferId {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).expect("OS randomness");
    TransferId(id)
}

/// A valid `Offer` of one file at `path` announced as `size` bytes hashing to `hash`.
pub fn offer(id: TransferId, path: &str, size: u64, hash: [u8; 32]) -> TransferFrame {
    TransferFrame::Offer(Manifest {
        id,
        files: vec![FileEntry {
            path: RelPath::new(path).expect("a valid path"),
            size,
            hash,
        }],
        dirs: Vec::new(),
    })
}

/// A bulk link made by hand, after the `Hello` exchange: it speaks transfer frames.
pub struct BulkSender {
    /// The link.
    pub peer: RawPeer,
}

impl BulkSender {
    /// TLS with ALPN `p2p-bulk/2` to the p2pd peer port `addr` as `key`, then `Hello`
    /// naming us `name`. The daemon admits it only if the tracker showed `key` as `name`.
    pub async fn connect(addr: SocketAddr, key: &SecretKey, name: &str) -> io::Result<Self> {
        let (peer, _) = RawPeer::hello_bulk(addr, key, name).await?;
        Ok(BulkSender { peer })
    }

    /// [`BulkSender::connect`] over the bulk protocol of older daemons, `p2p-bulk/1`.
    pub async fn connect_v1(addr: SocketAddr, key: &SecretKey, name: &str) -> io::Result<Self> {
        let (peer, _) = RawPeer::hello_alpn(addr, key, name, ALPN_BULK_V1).await?;
        Ok(BulkSender { peer })
    }

    /// Sends one transfer frame.
    pub async fn send(&mut self, frame: &TransferFrame) -> io::Result<()> {
        let bytes = proto::frame::encode(frame, MAX_CHUNK_FRAME).map_err(io::Error::other)?;
        self.peer.send_raw(&bytes).await
    }

    /// Sends `payload` as one frame (length prefix added), whatever it holds.
    pub async fn send_payload(&mut self, payload: &[u8]) -> io::Result<()> {
        let len = u32::try_from(payload.len()).map_err(io::Error::other)?;
        let mut bytes = len.to_be_bytes().to_vec();
        bytes.extend_from_slice(payload);
        self.peer.send_raw(&bytes).await
    }

    /// The next transfer frame within `timeout`. `Ok(None)` at end of stream.
    pub async fn recv(&mut self, timeout: Duration) -> io::Result<Option<TransferFrame>> {
        let tls = &mut self.peer.tls;
        let read = async {
            let mut header = [0u8; 4];
            match tls.read_exact(&mut header).await {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(e) => return Err(e),
            }
            let len = u32::from_be_bytes(header) as usize;
            if len > MAX_CHUNK_FRAME {
                return Err(io::Error::other(format!("p2pd sent a {len}-byte frame")));
            }
            let mut payload = vec![0u8; len];
            tls.read_exact(&mut payload).await?;
            proto::frame::decode_payload(&payload)
                .map(Some)
                .map_err(io::Error::other)
        };
        tokio::time::timeout(timeout, read)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no frame from p2pd in time"))?
    }

    /// Sends the chunk values of `whole`, all of file `file`, in runs as a sender does
    /// before the file's first chunk.
    pub async fn send_values(&mut self, id: TransferId, file: u32, whole: &[u8]) -> io::Result<()> {
        self.send_cvs(id, file, &chunk_cvs(whole)).await
    }

    /// Sends `cvs` as the chunk values of file `file`, from chunk 0, whatever they are.
    pub async fn send_cvs(&mut self, id: TransferId, file: u32, cvs: &[ChunkCv]) -> io::Result<()> {
        for run in ChunkCvs::runs(cvs) {
            self.send(&TransferFrame::ChunkCvs { id, file, run })
                .await?;
        }
        Ok(())
    }

    /// Sends chunk `index` of `file` holding `data` (its file's values must have gone
    /// before: [`BulkSender::send_values`]).
    pub async fn send_chunk(
        &mut self,
        id: TransferId,
        file: u32,
        index: u64,
        data: &[u8],
    ) -> io::Result<()> {
        self.send(&TransferFrame::Chunk {
            id,
            file,
            index,
            data: Bytes::copy_from_slice(data),
        })
        .await
    }

    /// Sends chunks `chunks` of `whole`, all of file `file` (its values must have gone
    /// before).
    pub async fn send_chunks(
        &mut self,
        id: TransferId,
        file: u32,
        whole: &[u8],
        chunks: std::ops::Range<u64>,
    ) -> io::Result<()> {
        for index in chunks {
            let at = usize::try_from(index * CHUNK).map_err(io::Error::other)?;
            let end = whole.len().min(at + CHUNK as usize);
            self.send_chunk(id, file, index, &whole[at..end]).await?;
        }
        Ok(())
    }

    /// Sends `data` as file `file`: its chunk values, then every chunk, honestly.
    pub async fn send_data(&mut self, id: TransferId, file: u32, data: &[u8]) -> io::Result<()> {
        self.send_values(id, file, data).await?;
        for (index, chunk) in data.chunks(CHUNK as usize).enumerate() {
            self.send_chunk(id, file, index as u64, chunk).await?;
        }
        Ok(())
    }

    /// Shuts our side down cleanly (TLS close_notify, then FIN).
    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.peer.tls.shutdown().await
    }

    /// Waits until the daemon closes the link (see [`raw::wait_closed`]).
    pub async fn wait_closed(&mut self, timeout: Duration) -> Result<Duration, String> {
        raw::wait_closed(&mut self.peer.tls, timeout).await
    }
}
