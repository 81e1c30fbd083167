//! Share frames (`p2p-share/1`): pinned wire bytes, what the server answers to requests it
//! cannot read, round trips, garbage and mutations. Caps: `share_limits.rs`.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use proto::frame::{self, FrameError};
use proto::share::{
    Access, Bitfield, ContentId, Cursor, Entry, EntryKind, EntryName, ErrorKind, HaveQuery,
    Incoming, KNOWN_REQUESTS, MAX_ERROR_TEXT, MAX_FRAME, ManifestPage, Page, Request, RequestFrame,
    RequestId, Response, ResponseFrame, ShareInfo, ShareName, VersionInfo,
};
use proto::transfer::RelPath;
use proto::{PeerId, SecretKey};
use serde::Serialize;

// ---------------------------------------------------------------------------------------------
// Helpers

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn share(s: &str) -> ShareName {
    ShareName::new(s).unwrap()
}

fn path(s: &str) -> RelPath {
    RelPath::new(s).unwrap()
}

fn peer(n: u8) -> PeerId {
    SecretKey::from_seed([n; 32]).peer_id()
}

const AB: ContentId = ContentId([0xab; 32]);
const CD: ContentId = ContentId([0xcd; 32]);

fn req(id: u64, request: Request) -> RequestFrame {
    RequestFrame {
        id: RequestId(id),
        request,
    }
}

fn resp(id: u64, response: Response) -> ResponseFrame {
    ResponseFrame {
        id: RequestId(id),
        response,
    }
}

/// A request as the server reads it: one frame, decoded with `RequestFrame::decode`.
fn serve(bytes: &[u8]) -> Result<Incoming, FrameError> {
    let mut buf = BytesMut::from(bytes);
    let len = frame::peek_len(&buf, MAX_FRAME)?.expect("a whole header");
    assert_eq!(buf.len(), frame::HEADER_LEN + len, "one whole frame");
    let payload = buf.split_off(frame::HEADER_LEN);
    RequestFrame::decode(&payload)
}

fn enc<T: Serialize>(msg: &T) -> Vec<u8> {
    frame::encode(msg, MAX_FRAME).unwrap()
}

fn docs() -> String {
    format!("04{}", hex(b"docs"))
}

// ---------------------------------------------------------------------------------------------
// Pinned bytes

#[test]
fn every_request_has_pinned_bytes() {
    let (ab, cd, docs) = ("ab".repeat(32), "cd".repeat(32), docs());
    let cases = [
        (req(5, Request::ListShares), "0500".to_owned()),
        (
            req(
                1,
                Request::List {
                    share: share("docs"),
                    path: Some(path("a/b")),
                    cursor: Some(Cursor(vec![1, 2])),
                    limit: 300,
                },
            ),
            // id 1, tag 1, share, Some(path "a/b"), Some(cursor of 2 bytes), limit varint 300.
            format!("0101{docs}0103612f6201020102ac02"),
        ),
        (
            req(
                2,
                Request::Stat {
                    share: share("docs"),
                    path: None,
                },
            ),
            format!("0202{docs}00"),
        ),
        (
            req(3, Request::GetManifest { id: AB, first: 128 }),
            format!("0303{ab}8001"),
        ),
        (
            req(4, Request::GetChunk { id: AB, index: 7 }),
            format!("0404{ab}07"),
        ),
        (
            req(5, Request::Have(HaveQuery::Ids(vec![AB]))),
            format!("05050001{ab}"),
        ),
        (
            req(
                6,
                Request::Have(HaveQuery::Chunks {
                    id: AB,
                    first: 1,
                    count: 2,
                }),
            ),
            format!("060501{ab}0102"),
        ),
        (
            req(
                7,
                Request::Put {
                    share: share("docs"),
                    path: path("a.txt"),
                    size: 3,
                    id: AB,
                    replaces: Some(CD),
                },
            ),
            format!("0706{docs}05{}03{ab}01{cd}", hex(b"a.txt")),
        ),
        (
            req(
                8,
                Request::PutChunk {
                    put: RequestId(7),
                    index: 0,
                    data: Bytes::from_static(b"hi"),
                },
            ),
            "0807070002".to_owned() + &hex(b"hi"),
        ),
        (
            req(
                9,
                Request::Remove {
                    share: share("docs"),
                    path: path("a"),
                },
            ),
            format!("0908{docs}0161"),
        ),
        (
            req(
                10,
                Request::Rename {
                    share: share("docs"),
                    from: path("a"),
                    to: path("b"),
                },
            ),
            format!("0a09{docs}01610162"),
        ),
        (
            req(
                11,
                Request::MakeDir {
                    share: share("docs"),
                    path: path("d"),
                },
            ),
            format!("0b0a{docs}0164"),
        ),
        (
            req(
                12,
                Request::Versions {
                    share: share("docs"),
                    path: path("a"),
                },
            ),
            format!("0c0b{docs}0161"),
        ),
        (
            req(
                13,
                Request::Restore {
                    share: share("docs"),
                    path: path("a"),
                    version: 2,
                },
            ),
            format!("0d0c{docs}016102"),
        ),
        (
            req(
                14,
                Request::Cancel {
                    request: RequestId(300),
                },
            ),
            "0e0dac02".to_owned(),
        ),
        (
            req(
                15,
                Request::Pull {
                    share: share("docs"),
                    path: Some(path("a")),
                },
            ),
            format!("0f0e{docs}010161"),
        ),
    ];
    let mut tags = Vec::new();
    for (frame, body) in cases {
        let bytes = enc(&frame);
        assert_eq!(hex(&bytes[frame::HEADER_LEN..]), body, "{frame:?}");
        assert_eq!(
            bytes[..frame::HEADER_LEN],
            (body.len() as u32 / 2).to_be_bytes()
        );
        // The tag is the byte after the (one-byte) id.
        assert_eq!(u32::from(bytes[frame::HEADER_LEN + 1]), frame.request.tag());
        tags.push(frame.request.tag());
        assert_eq!(serve(&bytes).unwrap(), Incoming::Request(frame));
    }
    tags.dedup();
    assert_eq!(tags, (0..KNOWN_REQUESTS).collect::<Vec<_>>());
}

#[test]
fn every_response_has_pinned_bytes() {
    let (ab, cd) = ("ab".repeat(32), "cd".repeat(32));
    let entry = |name: &str, kind, size, mtime, id| Entry {
        name: EntryName::new(name).unwrap(),
        kind,
        size,
        mtime,
        id,
    };
    let cases = [
        (
            resp(
                1,
                Response::Shares(vec![ShareInfo {
                    name: share("docs"),
                    access: Access::Write,
                }]),
            ),
            format!("010001{}01", docs()),
        ),
        (
            resp(
                2,
                Response::Page(Page {
                    entries: vec![entry("a.txt", EntryKind::File, 3, 1000, Some(AB))],
                    next: None,
                }),
            ),
            // 1 entry: name, kind 0, size 3, mtime varint 1000, Some(id); next None.
            format!("02010105{}0003e80701{ab}00", hex(b"a.txt")),
        ),
        (
            resp(3, Response::Stat(entry("d", EntryKind::Dir, 0, 1, None))),
            "0302016401000100".to_owned(),
        ),
        (
            resp(
                4,
                Response::Manifest(ManifestPage {
                    id: AB,
                    len: 3,
                    first: 0,
                    cvs: vec![proto::content::ChunkCv(CD.0)],
                }),
            ),
            format!("0403{ab}030001{cd}"),
        ),
        (
            resp(
                5,
                Response::Chunk {
                    id: AB,
                    index: 0,
                    data: Bytes::from_static(b"hi"),
                },
            ),
            format!("0504{ab}0002{}", hex(b"hi")),
        ),
        (
            resp(
                6,
                Response::Have(Bitfield::from_bools(&[true, false, true]).unwrap()),
            ),
            "0605030105".to_owned(),
        ),
        (
            resp(
                7,
                Response::Versions(vec![
                    VersionInfo {
                        number: 1,
                        size: 3,
                        replaced_at: 2,
                        id: AB,
                        by: None,
                    },
                    VersionInfo {
                        number: 2,
                        size: 0,
                        replaced_at: 4,
                        id: CD,
                        by: Some(peer(1)),
                    },
                ]),
            ),
            format!("070602010302{ab}00020004{cd}01{}", hex(peer(1).as_bytes())),
        ),
        (resp(8, Response::Done), "0807".to_owned()),
        (
            resp(9, Response::error(ErrorKind::Denied, "no")),
            "090801026e6f".to_owned(),
        ),
        (
            resp(10, Response::Pulling(proto::transfer::TransferId([7; 16]))),
            format!("0a09{}", "07".repeat(16)),
        ),
    ];
    for (i, (frame, body)) in cases.into_iter().enumerate() {
        let bytes = enc(&frame);
        assert_eq!(hex(&bytes[frame::HEADER_LEN..]), body, "{frame:?}");
        assert_eq!(frame.response.tag(), i as u32);
        assert_eq!(
            u32::from(bytes[frame::HEADER_LEN + 1]),
            frame.response.tag()
        );
        let back = frame::decode::<ResponseFrame>(&mut BytesMut::from(&bytes[..]), MAX_FRAME);
        assert_eq!(back.unwrap(), Some(frame));
    }
    // Error kinds are tags 0 to 4.
    for (kind, tag) in [
        (ErrorKind::NotFound, 0),
        (ErrorKind::Denied, 1),
        (ErrorKind::Conflict, 2),
        (ErrorKind::Busy, 3),
        (ErrorKind::Invalid, 4),
    ] {
        let bytes = postcard::to_allocvec(&Response::error(kind, "")).unwrap();
        assert_eq!(bytes, [8, tag, 0]);
    }
}

// ---------------------------------------------------------------------------------------------
// What the server answers without serving

#[test]
fn an_unknown_request_is_answered_invalid_and_the_link_kept() {
    for (payload, id, tag) in [
        (vec![1, 15], 1, 15),
        (vec![0x80, 0x01, 15, 1, 2, 3], 128, 15),
        (vec![9, 0xc8, 0x01], 9, 200),
        (vec![9, 0xff, 0xff, 0xff, 0xff, 0x0f], 9, u32::MAX),
    ] {
        let incoming = RequestFrame::decode(&payload).unwrap();
        assert_eq!(
            incoming,
            Incoming::Unknown {
                id: RequestId(id),
                tag
            }
        );
        let answer = incoming.refusal().unwrap();
        assert_eq!(
            answer,
            resp(
                id,
                Response::error(ErrorKind::Invalid, &format!("unknown request {tag}"))
            )
        );
    }
}

/// The layout of `Request::Stat` with a plain string path, as a hostile client would
/// encode it.
#[derive(Serialize)]
struct ShadowStat {
    id: u64,
    tag: u8,
    share: String,
    path: Option<String>,
}

fn shadow_stat(share: &str, path: &str) -> Vec<u8> {
    postcard::to_allocvec(&ShadowStat {
        id: 42,
        tag: 2,
        share: share.into(),
        path: Some(path.into()),
    })
    .unwrap()
}

#[test]
fn the_shadow_layout_matches() {
    assert_eq!(
        RequestFrame::decode(&shadow_stat("docs", "a/b")).unwrap(),
        Incoming::Request(req(
            42,
            Request::Stat {
                share: share("docs"),
                path: Some(path("a/b"))
            }
        ))
    );
}

#[test]
fn hostile_paths_and_names_are_answered_invalid() {
    let long = "x".repeat(256);
    let mut cases: Vec<(&str, &str)> = [
        "..",
        "../etc/passwd",
        "a/../../b",
        "/etc/passwd",
        "C:\\x",
        "a\\b",
        "a\0b",
        "a\u{1b}b",
        "con",
        "a//b",
        "\u{ff0e}\u{ff0e}\u{ff0f}x",
        "x\u{202e}y",
        "pay\u{200b}pal",
        &long,
    ]
    .into_iter()
    .map(|p| ("docs", p))
    .collect();
    cases.extend([("..", "a"), ("a/b", "a"), ("", "a"), ("CON", "a")]);
    for (share_name, p) in cases {
        let incoming = RequestFrame::decode(&shadow_stat(share_name, p)).unwrap();
        assert!(
            matches!(&incoming, Incoming::Malformed { id: RequestId(42), detail } if detail.starts_with("request 2: ")),
            "{share_name:?} {p:?}: {incoming:?}"
        );
        let answer = incoming.refusal().unwrap();
        let Response::Error(err) = &answer.response else {
            panic!("{answer:?}")
        };
        assert_eq!((answer.id, err.kind), (RequestId(42), ErrorKind::Invalid));
        assert_eq!(
            err.message.as_str(),
            "malformed request 2: a path or name breaks the naming rules, or a list or byte \
             string is over its cap"
        );
    }
}

#[test]
fn trailing_bytes_and_a_missing_tag_are_malformed() {
    let mut bytes = postcard::to_allocvec(&req(3, Request::ListShares)).unwrap();
    bytes.push(0);
    let answer = RequestFrame::decode(&bytes).unwrap().refusal().unwrap();
    assert_eq!(
        answer,
        resp(
            3,
            Response::error(
                ErrorKind::Invalid,
                "malformed request 0: malformed frame: 1 trailing bytes"
            )
        )
    );
    assert!(matches!(
        RequestFrame::decode(&[3]).unwrap(),
        Incoming::Malformed {
            id: RequestId(3),
            ..
        }
    ));
    assert!(matches!(
        RequestFrame::decode(&[3, 0x80]).unwrap(),
        Incoming::Malformed { .. }
    ));
}

#[test]
fn a_payload_without_an_id_ends_the_link() {
    for bytes in [
        &[][..],
        &[0x80],
        &[
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ],
    ] {
        assert!(RequestFrame::decode(bytes).is_err(), "{bytes:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Properties

fn any_content() -> impl Strategy<Value = ContentId> {
    any::<[u8; 32]>().prop_map(ContentId)
}

fn any_share() -> impl Strategy<Value = ShareName> {
    "[a-zA-Z0-9é日_-]{1,12}".prop_filter_map("invalid share name", |s| ShareName::new(&s).ok())
}

fn any_path() -> impl Strategy<Value = RelPath> {
    "[a-zA-Z0-9é日 ._-]{0,8}[a-z](/[a-z0-9.]{0,6}[a-z]){0,3}"
        .prop_filter_map("invalid path", |s| RelPath::new(&s).ok())
}

fn any_bytes(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn any_request() -> impl Strategy<Value = Request> {
    let cursor =
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..=256).prop_map(Cursor));
    prop_oneof![
        Just(Request::ListShares),
        (
            any_share(),
            proptest::option::of(any_path()),
            cursor,
            any::<u32>()
        )
            .prop_map(|(share, path, cursor, limit)| Request::List {
                share,
                path,
                cursor,
                limit
            }),
        (any_share(), proptest::option::of(any_path()))
            .prop_map(|(share, path)| Request::Stat { share, path }),
        (any_content(), any::<u64>()).prop_map(|(id, first)| Request::GetManifest { id, first }),
        (any_content(), any::<u64>()).prop_map(|(id, index)| Request::GetChunk { id, index }),
        proptest::collection::vec(any_content(), 0..8)
            .prop_map(|ids| Request::Have(HaveQuery::Ids(ids))),
        (any_content(), any::<u64>(), any::<u32>()).prop_map(|(id, first, count)| {
            Request::Have(HaveQuery::Chunks { id, first, count })
        }),
        (
            any_share(),
            any_path(),
            any::<u64>(),
            any_content(),
            proptest::option::of(any_content())
        )
            .prop_map(|(share, path, size, id, replaces)| Request::Put {
                share,
                path,
                size,
                id,
                replaces
            }),
        (any::<u64>(), any::<u64>(), any_bytes(600)).prop_map(|(put, index, data)| {
            Request::PutChunk {
                put: RequestId(put),
                index,
                data,
            }
        }),
        (any_share(), any_path()).prop_map(|(share, path)| Request::Remove { share, path }),
        (any_share(), any_path(), any_path()).prop_map(|(share, from, to)| Request::Rename {
            share,
            from,
            to
        }),
        (any_share(), any_path()).prop_map(|(share, path)| Request::MakeDir { share, path }),
        (any_share(), any_path()).prop_map(|(share, path)| Request::Versions { share, path }),
        (any_share(), any_path(), any::<u64>()).prop_map(|(share, path, version)| {
            Request::Restore {
                share,
                path,
                version,
            }
        }),
        any::<u64>().prop_map(|r| Request::Cancel {
            request: RequestId(r)
        }),
        (any_share(), proptest::option::of(any_path()))
            .prop_map(|(share, path)| Request::Pull { share, path }),
    ]
}

fn any_entry() -> impl Strategy<Value = Entry> {
    (
        "[a-zA-Z0-9é日 ._-]{0,10}[a-z]",
        any::<bool>(),
        any::<u64>(),
        any::<u64>(),
        proptest::option::of(any_content()),
    )
        .prop_filter_map("invalid name", |(name, dir, size, mtime, id)| {
            Some(Entry {
                name: EntryName::new(&name).ok()?,
                kind: if dir { EntryKind::Dir } else { EntryKind::File },
                size,
                mtime,
                id,
            })
        })
}

fn any_kind() -> impl Strategy<Value = ErrorKind> {
    prop_oneof![
        Just(ErrorKind::NotFound),
        Just(ErrorKind::Denied),
        Just(ErrorKind::Conflict),
        Just(ErrorKind::Busy),
        Just(ErrorKind::Invalid),
    ]
}

fn any_response() -> impl Strategy<Value = Response> {
    let access = prop_oneof![Just(Access::Read), Just(Access::Write)];
    let version = (
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any_content(),
        proptest::option::of(any::<u8>()),
    )
        .prop_map(|(number, size, replaced_at, id, by)| VersionInfo {
            number,
            size,
            replaced_at,
            id,
            by: by.map(peer),
        });
    prop_oneof![
        proptest::collection::vec((any_share(), access), 0..6).prop_map(|v| {
            Response::Shares(
                v.into_iter()
                    .map(|(name, access)| ShareInfo { name, access })
                    .collect(),
            )
        }),
        (
            proptest::collection::vec(any_entry(), 0..6),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..=256).prop_map(Cursor))
        )
            .prop_map(|(entries, next)| Response::Page(Page { entries, next })),
        any_entry().prop_map(Response::Stat),
        (
            any_content(),
            any::<u64>(),
            any::<u64>(),
            proptest::collection::vec(any::<[u8; 32]>(), 0..6)
        )
            .prop_map(|(id, len, first, cvs)| Response::Manifest(ManifestPage {
                id,
                len,
                first,
                cvs: cvs.into_iter().map(proto::content::ChunkCv).collect()
            })),
        (any_content(), any::<u64>(), any_bytes(600))
            .prop_map(|(id, index, data)| Response::Chunk { id, index, data }),
        proptest::collection::vec(any::<bool>(), 0..100)
            .prop_map(|b| Response::Have(Bitfield::from_bools(&b).unwrap())),
        proptest::collection::vec(version, 0..4).prop_map(Response::Versions),
        Just(Response::Done),
        any::<[u8; 16]>().prop_map(|b| Response::Pulling(proto::transfer::TransferId(b))),
        (any_kind(), ".{0,60}").prop_map(|(kind, text)| Response::error(kind, &text)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn requests_round_trip(id in any::<u64>(), request in any_request()) {
        let f = req(id, request);
        let bytes = enc(&f);
        prop_assert_eq!(serve(&bytes).unwrap(), Incoming::Request(f.clone()));
        let mut buf = BytesMut::from(&bytes[..]);
        prop_assert_eq!(frame::decode::<RequestFrame>(&mut buf, MAX_FRAME).unwrap(), Some(f));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn responses_round_trip(id in any::<u64>(), response in any_response()) {
        let f = resp(id, response);
        let mut buf = BytesMut::from(&enc(&f)[..]);
        prop_assert_eq!(frame::decode::<ResponseFrame>(&mut buf, MAX_FRAME).unwrap(), Some(f));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = RequestFrame::decode(&bytes);
        let _ = frame::decode_payload::<ResponseFrame>(&bytes);
        let _ = frame::decode::<RequestFrame>(&mut BytesMut::from(&bytes[..]), MAX_FRAME);
        let _ = frame::decode::<ResponseFrame>(&mut BytesMut::from(&bytes[..]), MAX_FRAME);
    }

    /// Whatever follows a readable id, the server gets a value it can answer: the link is
    /// never lost to a bad body, and the answer to a bad one is a short, neutral `Invalid`.
    #[test]
    fn anything_after_an_id_is_answered(
        id in any::<u64>(),
        tag in 0u8..20,
        body in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let payload = [postcard::to_allocvec(&id).unwrap(), vec![tag], body].concat();
        let incoming = RequestFrame::decode(&payload).unwrap();
        prop_assert_eq!(incoming.id(), RequestId(id));
        check_refusal(&incoming)?;
    }

    #[test]
    fn mutated_requests_keep_their_id(
        id in any::<u64>(),
        request in any_request(),
        at in any::<usize>(),
        byte in any::<u8>(),
    ) {
        let mut payload = postcard::to_allocvec(&req(id, request)).unwrap();
        let id_len = postcard::to_allocvec(&id).unwrap().len();
        let i = id_len + at % (payload.len() - id_len);
        payload[i] = byte;
        let incoming = RequestFrame::decode(&payload).unwrap();
        prop_assert_eq!(incoming.id(), RequestId(id));
        check_refusal(&incoming)?;
        payload.truncate(i);
        prop_assert_eq!(RequestFrame::decode(&payload).unwrap().id(), RequestId(id));
    }

    #[test]
    fn mutated_responses_never_panic(
        id in any::<u64>(),
        response in any_response(),
        at in any::<usize>(),
        byte in any::<u8>(),
    ) {
        let mut payload = postcard::to_allocvec(&resp(id, response)).unwrap();
        let i = at % payload.len();
        payload[i] = byte;
        if let Ok(f) = frame::decode_payload::<ResponseFrame>(&payload) {
            // Whatever decodes re-encodes to a frame that decodes equal.
            let again = postcard::to_allocvec(&f).unwrap();
            prop_assert_eq!(frame::decode_payload::<ResponseFrame>(&again).unwrap(), f);
        }
        payload.truncate(i);
        let _ = frame::decode_payload::<ResponseFrame>(&payload);
    }
}

/// A request that decoded has no refusal; any other gets `Invalid` with a short, neutral
/// message.
fn check_refusal(incoming: &Incoming) -> Result<(), TestCaseError> {
    match (incoming, incoming.refusal()) {
        (Incoming::Request(_), None) => {}
        (
            _,
            Some(ResponseFrame {
                id,
                response: Response::Error(err),
            }),
        ) => {
            prop_assert_eq!(id, incoming.id());
            prop_assert_eq!(err.kind, ErrorKind::Invalid);
            let text = err.message.as_str();
            prop_assert!(text.len() <= MAX_ERROR_TEXT);
            prop_assert!(!text.chars().any(char::is_control), "{}", text);
        }
        (i, r) => prop_assert!(false, "{:?} answered {:?}", i, r),
    }
    Ok(())
}
