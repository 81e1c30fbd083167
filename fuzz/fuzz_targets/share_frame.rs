//! Share links: the `RequestFrame`s a share server reads and the `ResponseFrame`s a client
//! reads (both capped at `share::MAX_FRAME`).
//!
//! Checks: each frame stream decodes the same however it is cut into reads; every frame
//! round-trips through the frame codec and through JSON; paths and names in a decoded frame
//! are safe and validate to themselves; error texts are neutral and short; bitfields hold no
//! bit past their length. The whole input as one request payload, as the server reads it:
//! an error only when no request id can be read; a request exactly when the generic decoder
//! decodes it; an unknown request only past the known tags; anything else answered `Invalid`
//! with the same id, in a short, printable message; and the rules give every decoded request
//! a verdict without panicking.

#![no_main]

use libfuzzer_sys::fuzz_target;
use p2p_fuzz::frames::check_stream;
use p2p_fuzz::json::check_json_round_trip;
use p2p_fuzz::paths::check_rel_path;
use p2p_fuzz::share_seeds::Toy;
use proto::frame::decode_payload;
use proto::share::rules::{self, Need};
use proto::share::{
    EntryName, ErrorKind, HaveQuery, Incoming, KNOWN_REQUESTS, MAX_ERROR_TEXT, MAX_FRAME, Request,
    RequestFrame, RequestId, Response, ResponseFrame, ShareName,
};
use proto::transfer::RelPath;

fuzz_target!(|data: &[u8]| {
    for frame in check_stream::<RequestFrame>(data, MAX_FRAME) {
        check_json_round_trip(&frame);
        check_request(&frame.request);
    }
    for frame in check_stream::<ResponseFrame>(data, MAX_FRAME) {
        check_json_round_trip(&frame);
        check_response(&frame.response);
    }
    check_incoming(data);
});

/// `data` as one request payload, read as the server reads it.
fn check_incoming(data: &[u8]) {
    let generic = decode_payload::<RequestFrame>(data);
    let incoming = match RequestFrame::decode(data) {
        Ok(incoming) => incoming,
        Err(_) => {
            assert!(postcard::take_from_bytes::<RequestId>(data).is_err());
            assert!(generic.is_err());
            return;
        }
    };
    let id = postcard::take_from_bytes::<RequestId>(data).map(|(id, _)| id);
    assert_eq!(id.ok(), Some(incoming.id()));
    match &incoming {
        Incoming::Request(frame) => {
            assert!(frame.request.tag() < KNOWN_REQUESTS);
            assert_eq!(generic.as_ref().ok(), Some(frame));
            assert!(incoming.refusal().is_none());
            let state = Toy::new();
            for peer in state.peers() {
                let _ = rules::check(&state, &peer, &frame.request, None);
                let _ = rules::check(&state, &peer, &frame.request, state.shares.first());
            }
            if let Request::Have(HaveQuery::Ids(ids)) = &frame.request {
                let bits = rules::have_ids(&state, &state.peers()[0], ids, |_| true);
                assert_eq!(bits.len() as usize, ids.len());
            }
        }
        Incoming::Unknown { tag, .. } => {
            assert!(*tag >= KNOWN_REQUESTS);
            assert!(generic.is_err());
        }
        Incoming::Malformed { .. } => assert!(generic.is_err()),
    }
    if let Some(answer) = incoming.refusal() {
        assert_eq!(answer.id, incoming.id());
        let Response::Error(err) = &answer.response else {
            panic!("a refusal that is not an error: {answer:?}")
        };
        assert_eq!(err.kind, ErrorKind::Invalid);
        check_text(err.message.as_str());
    }
}

fn check_request(req: &Request) {
    let _ = rules::need(req);
    match req {
        Request::List { share, path, .. } | Request::Stat { share, path } => {
            check_share(share);
            path.iter().for_each(check_path);
        }
        Request::Put { share, path, .. }
        | Request::Remove { share, path }
        | Request::MakeDir { share, path }
        | Request::Versions { share, path }
        | Request::Restore { share, path, .. } => {
            check_share(share);
            check_path(path);
        }
        Request::Rename { share, from, to } => {
            check_share(share);
            check_path(from);
            check_path(to);
        }
        Request::PutChunk { put, data, .. } => {
            assert!(data.len() as u64 <= proto::share::CHUNK);
            assert_eq!(rules::need(req), Need::PutOf(*put));
        }
        Request::ListShares
        | Request::GetManifest { .. }
        | Request::GetChunk { .. }
        | Request::Have(_)
        | Request::Cancel { .. } => {}
        Request::Pull { share, path } => {
            check_share(share);
            if let Some(p) = path {
                check_path(p);
            }
        }
    }
}

fn check_response(resp: &Response) {
    match resp {
        Response::Shares(shares) => shares.iter().for_each(|s| check_share(&s.name)),
        Response::Page(page) => page.entries.iter().for_each(|e| check_name(&e.name)),
        Response::Stat(entry) => check_name(&entry.name),
        Response::Manifest(m) => {
            let _ = m.fits();
        }
        Response::Chunk { data, .. } => assert!(data.len() as u64 <= proto::share::CHUNK),
        Response::Have(bits) => {
            assert!(bits.count_ones() <= bits.len());
            assert!(!bits.get(bits.len()));
        }
        Response::Versions(_) | Response::Done | Response::Pulling(_) => {}
        Response::Error(err) => check_text(err.message.as_str()),
    }
}

fn check_path(p: &RelPath) {
    check_rel_path(p);
}

fn check_share(s: &ShareName) {
    assert!(s.as_str().len() <= proto::share::MAX_SHARE_NAME);
    assert_eq!(ShareName::new(s.as_str()).as_ref(), Ok(s));
    check_rel_path(&RelPath::new(s.as_str()).expect("a share name is a path"));
}

fn check_name(n: &EntryName) {
    assert!(!n.as_str().contains('/'));
    assert_eq!(EntryName::new(n.as_str()).as_ref(), Ok(n));
    check_rel_path(&RelPath::new(n.as_str()).expect("an entry name is a path"));
}

/// An error text: short, and already neutral (neutralising changes nothing).
fn check_text(text: &str) {
    assert!(
        text.len() <= MAX_ERROR_TEXT,
        "error text of {} bytes",
        text.len()
    );
    p2p_fuzz::assert_no_control(text);
    assert_eq!(proto::text::neutralize(text), text);
}
