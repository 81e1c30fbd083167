//! The seed corpus: a valid encoding of every message each target reads, plus a few
//! refusals, so the fuzzer starts from inputs that reach deep into each decoder.
//! `examples/seed_corpus.rs` writes them to `corpus/<target>/`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::Bytes;
use proto::api::{
    Call, Direction, Event, MessageInfo, MessageState, PeerInfo, PeerSource, Resources,
    SourceStatus, Status, Subscribed, TrackerLinkState, TrackerStatus, TransferInfo, TransferKind,
    TransferState,
};
use proto::content::{CHUNK, ChunkCv, ChunkCvs, ChunkList, MAX_CHUNK_CVS_PAYLOAD};
use proto::peer::{self, ChatMessage, MessageId, PeerFrame};
use proto::rpc::{Notification, Request, Response, RpcError, Version2, code};
use proto::tracker::{self, PeerEntry, PeerMsg, Record, TrackerMsg};
use proto::transfer::{
    FileEntry, FileResume, MAX_CHUNK_FRAME, Manifest, RelPath, TransferFrame, TransferId,
};
use proto::{PeerId, PeerName, SecretKey};
use serde::Serialize;

/// Every target and its seeds.
pub fn all() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    vec![
        ("tracker_frame", tracker_frames()),
        ("peer_frame", peer_frames()),
        ("transfer_frame", transfer_frames()),
        ("rel_path", rel_paths()),
        ("rpc_request", rpc_requests()),
        ("api_params", api_params()),
        ("server_line", server_lines()),
        ("peer_key", peer_keys()),
        ("chunk_cvs", chunk_cvs()),
        ("share_frame", crate::share_seeds::share_frames()),
        ("addr_record", addr_records()),
    ]
}

/// A signed address record of each address family, the largest allowed, and one forged.
fn addr_records() -> Vec<Vec<u8>> {
    use proto::addr_record::{AddrRecord, MAX_ADDRS};
    let record = |addrs: Vec<SocketAddr>| AddrRecord {
        key: id(1),
        seq: 1_765_000_000_000,
        addrs,
        expiry: 1_765_007_200,
    };
    let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 7071);
    let v6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 7071);
    let unspecified = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 7071);
    let mut forged = record(vec![v4]).sign(&key(2));
    forged.record.seq += 1;
    vec![
        record(vec![v4, v6, unspecified]).sign(&key(1)).encode(),
        record(vec![v6; MAX_ADDRS]).sign(&key(1)).encode(),
        record(vec![]).sign(&key(1)).encode(),
        forged.encode(),
    ]
}

fn key(n: u8) -> SecretKey {
    SecretKey::from_seed([n; 32])
}

fn id(n: u8) -> PeerId {
    key(n).peer_id()
}

fn name(s: &str) -> PeerName {
    PeerName::new(s).expect("a valid seed name")
}

fn path(s: &str) -> RelPath {
    RelPath::new(s).expect("a valid seed path")
}

/// Each message as one frame, then all of them as one stream.
pub(crate) fn frames<T: Serialize>(msgs: &[T], max: usize) -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = msgs
        .iter()
        .map(|m| proto::frame::encode(m, max).expect("a seed fits its cap"))
        .collect();
    seeds.push(seeds.concat());
    seeds
}

fn entry(n: u8) -> PeerEntry {
    let record = Record {
        name: name(&format!("peer-{n}")),
        key: id(n),
        addrs: vec![
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 4000),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 4001),
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 4000),
        ],
        seq: u64::from(n),
    };
    PeerEntry {
        signed: record.sign(&key(n)),
        observed: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
    }
}

/// A statement by key `from` handing the name of `entry(1)` to key `to`.
fn handover(from: u8, to: u8) -> tracker::SignedHandover {
    tracker::Handover {
        name: entry(1).signed.record.name,
        old_key: id(from),
        new_key: id(to),
        seq: u64::from(from) + 100,
    }
    .sign(&key(from))
}

/// Peer `n`'s address record, as a tracker carries it.
fn own_record(n: u8) -> proto::addr_record::SignedAddrRecord {
    proto::addr_record::AddrRecord {
        key: id(n),
        seq: 1_765_000_000_000,
        addrs: vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 7071)],
        expiry: 1_765_007_200,
    }
    .sign(&key(n))
}

fn tracker_frames() -> Vec<Vec<u8>> {
    let peer = [
        PeerMsg::Hello {
            version: tracker::PROTOCOL_VERSION,
        },
        PeerMsg::Register(entry(1).signed),
        PeerMsg::Subscribe { req: 1 },
        PeerMsg::List { req: 2 },
        PeerMsg::Ping { nonce: 3 },
        PeerMsg::Pong { nonce: u64::MAX },
        PeerMsg::RegisterHandover {
            record: entry(5).signed,
            statement: tracker::Handover {
                name: name("peer-5"),
                old_key: id(6),
                new_key: id(5),
                seq: 7,
            }
            .sign(&key(6)),
        },
        PeerMsg::GetHandovers {
            name: entry(1).signed.record.name,
        },
        PeerMsg::AddrRecord(own_record(1)),
        PeerMsg::Watch {
            req: 4,
            keys: vec![id(2).key_bytes(), id(3).key_bytes()],
        },
        PeerMsg::Unwatch {
            keys: vec![id(3).key_bytes()],
        },
        PeerMsg::Lookup {
            req: 5,
            by: tracker::LookupBy::Name(name("peer-2")),
        },
        PeerMsg::Lookup {
            req: 6,
            by: tracker::LookupBy::Key(id(2)),
        },
        PeerMsg::ListPage {
            req: 7,
            after: Some(id(2)),
            limit: 100,
        },
    ];
    let tracker = [
        TrackerMsg::Hello {
            version: tracker::PROTOCOL_VERSION,
            lease_secs: 60,
        },
        TrackerMsg::Registered { entry: entry(1) },
        TrackerMsg::Refused {
            reason: tracker::Refusal::NameTaken,
            detail: "name is taken".into(),
        },
        TrackerMsg::Peers {
            req: 1,
            peers: vec![entry(2), entry(3)],
        },
        TrackerMsg::Joined(entry(4)),
        TrackerMsg::Updated(entry(4)),
        TrackerMsg::Left { key: id(4) },
        TrackerMsg::Ping { nonce: 5 },
        TrackerMsg::Pong { nonce: 6 },
        TrackerMsg::Handovers {
            name: entry(1).signed.record.name,
            chain: vec![handover(1, 2), handover(2, 3)],
        },
        TrackerMsg::AddrRecord {
            record: own_record(2),
            observed: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)),
        },
        TrackerMsg::Found {
            req: 5,
            entry: Some(entry(2)),
        },
        TrackerMsg::Found {
            req: 6,
            entry: None,
        },
        TrackerMsg::Page {
            req: 7,
            peers: vec![entry(2), entry(3)],
            next: Some(id(3)),
        },
    ];
    let mut seeds = frames(&peer, tracker::MAX_REQUEST_FRAME);
    seeds.extend(frames(&tracker, tracker::MAX_RESPONSE_FRAME));
    seeds
}

fn peer_frames() -> Vec<Vec<u8>> {
    let msg = MessageId([0x5a; 16]);
    frames(
        &[
            PeerFrame::Hello {
                version: peer::PROTOCOL_VERSION,
                name: name("alice"),
            },
            PeerFrame::Message(ChatMessage {
                id: msg,
                seq: 1,
                sent_at: 1_700_000_000_000,
                text: "hello \u{1b}[2J w\u{f6}rld \u{202e}".into(),
            }),
            PeerFrame::Ack { id: msg },
            PeerFrame::Refused {
                id: Some(msg),
                reason: peer::Refusal::Blocked,
                detail: "blocked".into(),
            },
            PeerFrame::Refused {
                id: None,
                reason: peer::Refusal::KeyMismatch,
                detail: String::new(),
            },
            PeerFrame::Refused {
                id: Some(msg),
                reason: peer::Refusal::Deferred,
                detail: "retry after 500 ms".into(),
            },
            PeerFrame::Refused {
                id: Some(msg),
                reason: peer::Refusal::OverQuota,
                detail: "quota".into(),
            },
            PeerFrame::Ping { nonce: 1 },
            PeerFrame::Pong { nonce: 1 },
        ],
        peer::MAX_FRAME,
    )
}

fn manifest() -> Manifest {
    let file = |p: &str, size: u64, h: u8| FileEntry {
        path: path(p),
        size,
        hash: [h; 32],
    };
    Manifest {
        id: TransferId([7; 16]),
        files: vec![
            file("photos/2024/a.jpg", 3 << 20, 1),
            file("photos/2024/b.jpg", 1, 2),
            file("notes.txt", 0, 3),
            file("d\u{e9}j\u{e0} vu/\u{65e5}\u{672c}.md", (1 << 20) + 1, 4),
        ],
        dirs: Vec::new(),
    }
}

fn transfer_frames() -> Vec<Vec<u8>> {
    let id = TransferId([7; 16]);
    frames(
        &[
            TransferFrame::Offer(manifest()),
            TransferFrame::Accept {
                id,
                resume: vec![FileResume {
                    file: 0,
                    verified_chunks: 2,
                }],
            },
            TransferFrame::Decline {
                id,
                reason: "no thanks".into(),
            },
            TransferFrame::Cancel {
                id,
                reason: "cancelled".into(),
            },
            TransferFrame::ChunkCvs {
                id,
                file: 0,
                run: ChunkCvs {
                    first: 0,
                    cvs: vec![ChunkCv([1; 32]), ChunkCv([2; 32]), ChunkCv([3; 32])],
                },
            },
            TransferFrame::Chunk {
                id,
                file: 1,
                index: 0,
                data: Bytes::from_static(b"x"),
            },
            TransferFrame::FileDone { id, file: 1 },
            TransferFrame::Done { id },
            TransferFrame::Failed {
                id,
                reason: "hash mismatch".into(),
            },
        ],
        MAX_CHUNK_FRAME,
    )
    .into_iter()
    .chain(raw_offers())
    .chain(offers_with_dirs())
    .collect()
}

fn rel_paths() -> Vec<Vec<u8>> {
    let long = "x".repeat(256);
    [
        "a.txt",
        "dir/sub/file.tar.gz",
        "d\u{e9}j\u{e0} vu/\u{65e5}\u{672c}.md",
        "..",
        "a/../b",
        "./a",
        "/etc/passwd",
        "a\\b",
        "C:x",
        "con.txt",
        "LPT\u{b9}",
        "a\0b",
        "a\u{1b}[2J",
        "a/b/",
        "a//b",
        "trailing.",
        "trailing ",
        &long,
        "cafe\u{301}/cre\u{300}me.txt",
        "\u{ff0e}\u{ff0e}\u{ff0f}x",
        "a\u{2215}b",
        "invoice\u{202e}fdp.exe",
        "pay\u{200b}pal",
        "\u{2025}",
        "c\u{2105}o",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

fn calls() -> Vec<Call> {
    let p = || String::from("bob");
    vec![
        Call::Status {},
        Call::Peers {},
        Call::Subscribe {},
        Call::SendMessage {
            peer: p(),
            text: "hi".into(),
        },
        Call::History {
            peer: p(),
            limit: Some(10),
        },
        Call::Trust {
            peer: p(),
            auto_accept: true,
        },
        Call::Untrust { peer: p() },
        Call::Block { peer: p() },
        Call::Unblock { peer: p() },
        Call::ForgetKey {
            peer: p(),
            force: true,
        },
        Call::SendFiles {
            peer: p(),
            path: "/tmp/x".into(),
            paths: vec!["/tmp/y".into()],
        },
        Call::Transfers { all: false },
        Call::TransfersClear {},
        Call::Accept {
            id: "0707070707".into(),
            to: Some("/tmp/in".into()),
            mkdir: true,
        },
        Call::Decline {
            id: "070707".into(),
        },
        Call::Cancel {
            id: "070707".into(),
        },
        Call::Rekey {},
    ]
}

fn json_line<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("a seed serialises")
}

fn rpc_requests() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = calls()
        .into_iter()
        .zip(1..)
        .map(|(call, n)| json_line(&Request::new(n, call)))
        .collect();
    for raw in [
        r#"{"jsonrpc":"2.0","id":"a","method":"status","params":[]}"#,
        r#"{"jsonrpc":"2.0","method":"peers"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"nope"}"#,
        r#"{"jsonrpc":"1.0","id":1,"method":"status"}"#,
        r#"{"jsonrpc":"2.0","id":[1],"method":"status"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"history","params":[1]}"#,
        r#"[[[[[[[[[[]]]]]]]]]]"#,
        "{",
    ] {
        seeds.push(raw.as_bytes().to_vec());
    }
    seeds
}

fn api_params() -> Vec<Vec<u8>> {
    calls()
        .into_iter()
        .map(|call| {
            let index = Call::METHODS
                .iter()
                .position(|m| *m == call.method())
                .expect("every method is listed");
            let value = serde_json::to_value(&call).expect("a call serialises");
            let mut seed = vec![u8::try_from(index).expect("few methods")];
            seed.extend(json_line(&value["params"]));
            seed
        })
        .collect()
}

fn peer_info() -> PeerInfo {
    PeerInfo {
        name: name("bob"),
        id: id(2),
        addrs: vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 4000)],
        online: true,
        since: 1_700_000_000,
        trusted: true,
        auto_accept: false,
        blocked: false,
        key_conflict: Some(id(3)),
        same_name: Vec::new(),
        trackers: Vec::new(),
        sources: Vec::new(),
        verified: true,
    }
}

fn message_info() -> MessageInfo {
    MessageInfo {
        id: MessageId([9; 16]),
        peer: id(2),
        peer_name: name("bob"),
        direction: Direction::In,
        seq: 4,
        text: "hi".into(),
        state: MessageState::Received,
        sent_at: 1_700_000_000_000,
        detail: None,
    }
}

fn transfer_info() -> TransferInfo {
    TransferInfo {
        id: TransferId([7; 16]),
        peer: id(2),
        peer_name: name("bob"),
        direction: Direction::Out,
        state: TransferState::Running,
        files: 4,
        sample: vec!["notes.txt".into()],
        total_bytes: 4 << 20,
        done_bytes: 1 << 20,
        rate: 1000,
        eta_secs: Some(3),
        local_path: Some("/tmp/x".into()),
        error: None,
        kind: TransferKind::Send,
        created_at: Some("2026-12-05T22:10:03.000Z".into()),
        ended_at: None,
        landed: Vec::new(),
        sources: Vec::new(),
        dirs_left_out: 0,
    }
}

fn tracker_status() -> TrackerStatus {
    TrackerStatus {
        addr: "127.0.0.1:7000".into(),
        key: Some(id(9)),
        state: TrackerLinkState::Registered,
        detail: None,
        since: 1_700_000_000,
    }
}

fn status() -> Status {
    Status {
        name: name("alice"),
        id: id(1),
        version: "0.1.0".into(),
        listen: SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 4000),
        socket: "/run/user/1000/p2pd.sock".into(),
        tracker: Some(tracker_status()),
        sources: vec![
            SourceStatus::tracker(&tracker_status(), 1),
            SourceStatus::up(PeerSource::Link, 1),
            SourceStatus::up(PeerSource::Book, 2),
        ],
        peers_online: 1,
        peers_known: 2,
        resources: Resources {
            pid: 42,
            rss_bytes: 10 << 20,
            cpu_percent: 1.5,
            uptime_secs: 60,
        },
    }
}

fn ok<T: Serialize>(n: u64, result: T) -> Vec<u8> {
    let result = serde_json::to_value(result).expect("a seed serialises");
    json_line(&Response::ok(n.into(), result))
}

fn event(e: Event) -> Vec<u8> {
    json_line(&Notification {
        jsonrpc: Version2,
        method: proto::api::EVENT_NOTIFICATION.into(),
        params: serde_json::to_value(e).expect("a seed serialises"),
    })
}

fn server_lines() -> Vec<Vec<u8>> {
    vec![
        ok(1, status()),
        ok(2, vec![peer_info()]),
        ok(3, message_info()),
        ok(4, vec![transfer_info()]),
        ok(5, Subscribed { subscribed: true }),
        json_line(&Response::err(
            "x".into(),
            RpcError::new(code::UNKNOWN_PEER, "no such peer"),
        )),
        event(Event::PeerJoined { peer: peer_info() }),
        event(Event::Tracker {
            tracker: tracker_status(),
        }),
        event(Event::MessageReceived {
            message: message_info(),
        }),
        event(Event::TransferProgress {
            transfer: transfer_info(),
        }),
        event(Event::LinkError {
            peer: Some(id(2)),
            detail: "key mismatch".into(),
        }),
        event(Event::Lagged { missed: 3 }),
    ]
}

fn peer_keys() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = (1..=3).map(|n| id(n).to_spki_der()).collect();
    seeds.push(id(4).to_string().into_bytes());
    seeds.push(id(5).to_string().to_uppercase().into_bytes());
    seeds
}

/// Offers as a sender may write them, valid or not: `TransferFrame`'s tag 0 with the paths
/// as plain strings (the same bytes as a real `Offer`).
#[derive(Serialize)]
enum RawFrame {
    Offer(([u8; 16], Vec<RawEntry>)),
}

/// A file as path, size and hash.
type RawEntry = (String, u64, [u8; 32]);

/// Refused offers, and offers as bare payloads (no header), for the `IncomingOffer` check.
fn raw_offers() -> Vec<Vec<u8>> {
    let offer = |files: &[(&str, u64)]| {
        let files = files
            .iter()
            .map(|(p, size)| (p.to_string(), *size, [9; 32]))
            .collect();
        RawFrame::Offer(([7; 16], files))
    };
    let offers = [
        offer(&[("a.txt", 1), ("b/c.txt", 2)]),
        offer(&[("../etc/passwd", 1)]),
        offer(&[("ok", 1), ("a\\b", 1)]),
        offer(&[("Read.me", 1), ("README", 1), ("read.me", 1)]),
        offer(&[("a", 1), ("A/b", 1)]),
        offer(&[("con.txt", 1)]),
        offer(&[("big", u64::MAX), ("more", 1)]),
        offer(&[]),
        offer(&[("caf\u{e9}", 1), ("cafe\u{301}", 1)]),
        offer(&[("ok", 1), ("\u{ff0e}\u{ff0e}\u{ff0f}x", 1)]),
    ];
    let mut seeds = Vec::new();
    for o in &offers {
        seeds.push(postcard::to_stdvec(o).expect("a seed encodes"));
        seeds.push(proto::frame::encode(o, MAX_CHUNK_FRAME).expect("a seed fits"));
    }
    seeds
}

/// Offers of `p2p-bulk/3` as bare payloads: empty directories after the files, fine and
/// hostile, and directories alone.
fn offers_with_dirs() -> Vec<Vec<u8>> {
    let offer = RawFrame::Offer(([7; 16], vec![("a.txt".to_owned(), 1, [9; 32])]));
    let mut seeds: Vec<Vec<u8>> = [&["a/empty", "b"][..], &["../x"], &["a.txt"], &["A.TXT/x"]]
        .iter()
        .map(|dirs| {
            let mut payload = postcard::to_stdvec(&offer).expect("a seed encodes");
            payload.extend(postcard::to_stdvec(&dirs.to_vec()).expect("a seed encodes"));
            payload
        })
        .collect();
    // Directories alone, no file.
    let bare = RawFrame::Offer(([7; 16], Vec::new()));
    let mut payload = postcard::to_stdvec(&bare).expect("a seed encodes");
    payload.extend(postcard::to_stdvec(&vec!["a/b/c"]).expect("a seed encodes"));
    seeds.push(payload);
    seeds
}

/// Runs of chunk values as frames (a real file's list, an empty run, the last chunk a file
/// can have), then the stream of them all, then one bare payload.
fn chunk_cvs() -> Vec<Vec<u8>> {
    let data: Vec<u8> = (0..3 * CHUNK as usize + 5)
        .map(|i| (i % 251) as u8)
        .collect();
    let mut runs: Vec<ChunkCvs> = ChunkCvs::runs(ChunkList::of(&data).cvs()).collect();
    runs.push(ChunkCvs {
        first: 4,
        cvs: vec![],
    });
    runs.push(ChunkCvs {
        first: u64::MAX / CHUNK,
        cvs: vec![ChunkCv([9; 32])],
    });
    let mut seeds = frames(&runs, MAX_CHUNK_CVS_PAYLOAD);
    seeds.push(runs[0].encode().expect("a seed run encodes"));
    seeds
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::frame::decode_payload;
    use proto::transfer::{IncomingOffer, OfferError};

    #[test]
    fn offers_with_dirs_read_as_a_receiver_of_bulk_3_would() {
        let verdicts: Vec<_> = offers_with_dirs()
            .iter()
            .map(|p| {
                IncomingOffer::from_payload(p)
                    .expect("an offer decodes")
                    .manifest
            })
            .collect();
        assert!(verdicts[0].as_ref().is_ok_and(|m| m.dirs.len() == 2));
        assert!(matches!(
            verdicts[1],
            Err(OfferError::DirPath { dir: 0, .. })
        ));
        assert!(matches!(verdicts[2], Err(OfferError::Manifest(_))));
        assert!(matches!(verdicts[3], Err(OfferError::Manifest(_))));
        assert!(
            verdicts[4]
                .as_ref()
                .is_ok_and(|m| m.files.is_empty() && m.dirs.len() == 1)
        );
    }

    #[test]
    fn raw_offers_read_as_a_receiver_would() {
        let verdicts: Vec<_> = raw_offers()
            .iter()
            .step_by(2)
            .map(|payload| {
                decode_payload::<IncomingOffer>(payload)
                    .expect("an offer decodes")
                    .manifest
            })
            .collect();
        let path = |v: &Result<_, OfferError>, n: usize| matches!(v, Err(OfferError::Path { file, .. }) if *file == n);
        let manifest = |v: &Result<_, OfferError>| matches!(v, Err(OfferError::Manifest(_)));
        assert!(verdicts[0].is_ok());
        assert!(path(&verdicts[1], 0) && path(&verdicts[2], 1) && path(&verdicts[5], 0));
        assert!([3, 4, 6, 7, 8].iter().all(|&i| manifest(&verdicts[i])));
        assert!(path(&verdicts[9], 1));
    }

    #[test]
    fn path_seeds_pass_the_path_checks() {
        for seed in rel_paths() {
            let input = String::from_utf8_lossy(&seed);
            crate::paths::check_validation(&input, &RelPath::new(&input));
        }
        let fine = RelPath::new("cafe\u{301}").expect("a decomposed name is fine");
        assert_eq!(fine.as_str(), "caf\u{e9}");
    }

    #[test]
    fn every_target_has_seeds_and_valid_frames_decode() {
        let all = all();
        let registered = include_str!("../Cargo.toml").matches("[[bin]]").count();
        assert_eq!(
            all.len(),
            registered,
            "every target in Cargo.toml has seeds"
        );
        assert!(all.iter().all(|(_, seeds)| !seeds.is_empty()));
        let frames = transfer_frames();
        let stream = crate::frames::check_stream::<TransferFrame>(&frames[9], MAX_CHUNK_FRAME);
        assert_eq!(stream.len(), 9, "the stream seed holds every frame");
    }

    #[test]
    fn chunk_cvs_seeds_decode() {
        let seeds = chunk_cvs();
        let stream = crate::frames::check_stream::<ChunkCvs>(&seeds[3], MAX_CHUNK_CVS_PAYLOAD);
        assert_eq!(stream.len(), 3, "the stream seed holds every run");
        assert_eq!(
            ChunkCvs::decode(&seeds[4]).map(|r| r.cvs.len()).ok(),
            Some(4)
        );
    }
}
