//! Share frames (`p2p-share/1`) at their limits: counts and lengths over their caps refused,
//! bitfields and error texts checked as they decode, and the largest frames within the cap.

use bytes::{Bytes, BytesMut};
use proto::content::ChunkCv;
use proto::frame::{self, FrameError};
use proto::share::{
    Access, Bitfield, CHUNK, ContentId, Cursor, Entry, EntryKind, EntryName, ErrorKind, ErrorText,
    Incoming, MAX_CVS_PER_PAGE, MAX_ERROR_TEXT, MAX_FRAME, MAX_HAVE_BITS, MAX_HAVE_IDS, MAX_PAGE,
    MAX_SHARES, MAX_VERSIONS, ManifestPage, Page, Request, RequestFrame, RequestId, Response,
    ResponseFrame, ShareInfo, ShareName, VersionInfo,
};
use proto::{PeerId, SecretKey};

const AB: ContentId = ContentId([0xab; 32]);

fn share(s: &str) -> ShareName {
    ShareName::new(s).unwrap()
}

fn peer(n: u8) -> PeerId {
    SecretKey::from_seed([n; 32]).peer_id()
}

fn resp(id: u64, response: Response) -> ResponseFrame {
    ResponseFrame {
        id: RequestId(id),
        response,
    }
}

/// A request or response payload: id 1, then `tail`.
fn with_id(tail: &[u8]) -> Vec<u8> {
    [&[1u8][..], tail].concat()
}

/// Each list and byte string is refused on its announced length, before any item is read
/// (`share::wire`); a count just over the cap is refused even with every item there. The
/// fuzz targets run under a 64 MiB allocation limit, which a decoder reserving by the
/// announced count would break.
#[test]
fn counts_over_their_caps_are_refused() {
    let huge = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]; // 2^56 - 1 as a varint
    let varint = |n: usize| postcard::to_allocvec(&(n as u64)).unwrap();
    // (payload, is it a request?)
    let cases: Vec<(Vec<u8>, bool)> = vec![
        // Have(Ids) announcing huge and MAX_HAVE_IDS + 1 ids (with that many behind it).
        (with_id(&[&[5u8, 0][..], &huge].concat()), true),
        (
            with_id(
                &[
                    &[5u8, 0][..],
                    &varint(MAX_HAVE_IDS + 1),
                    &vec![0xab; 32 * (MAX_HAVE_IDS + 1)],
                ]
                .concat(),
            ),
            true,
        ),
        // A cursor of MAX_CURSOR + 1 bytes.
        (
            with_id(
                &[
                    &[1u8, 4][..],
                    b"docs",
                    &[0, 1],
                    &varint(257),
                    &[7; 257],
                    &[0],
                ]
                .concat(),
            ),
            true,
        ),
        // PutChunk data of CHUNK + 1 bytes, and of a huge announced length.
        (
            with_id(
                &[
                    &[7u8, 1, 0][..],
                    &varint(CHUNK as usize + 1),
                    &vec![0; CHUNK as usize + 1],
                ]
                .concat(),
            ),
            true,
        ),
        (with_id(&[&[7u8, 1, 0][..], &huge].concat()), true),
        // Shares, Page, Manifest, Versions announcing huge counts.
        (with_id(&[&[0u8][..], &huge].concat()), false),
        (with_id(&[&[1u8][..], &huge].concat()), false),
        (
            with_id(&[&[3u8][..], &[0xab; 32], &[3, 0], &huge].concat()),
            false,
        ),
        (with_id(&[&[6u8][..], &huge].concat()), false),
        // A manifest page of MAX_CVS_PER_PAGE + 1 values, all there.
        (
            with_id(
                &[
                    &[3u8][..],
                    &[0xab; 32],
                    &[0xff, 0xff, 0xff, 0x7f, 0],
                    &varint(MAX_CVS_PER_PAGE + 1),
                    &vec![0xcd; 32 * (MAX_CVS_PER_PAGE + 1)],
                ]
                .concat(),
            ),
            false,
        ),
        // A chunk of CHUNK + 1 bytes.
        (
            with_id(
                &[
                    &[4u8][..],
                    &[0xab; 32],
                    &[0],
                    &varint(CHUNK as usize + 1),
                    &vec![0; CHUNK as usize + 1],
                ]
                .concat(),
            ),
            false,
        ),
        // A bitfield of MAX_HAVE_BITS + 8 bits.
        (
            with_id(
                &[
                    &[5u8][..],
                    &varint(MAX_HAVE_BITS as usize + 8),
                    &varint(MAX_HAVE_BITS as usize / 8 + 1),
                    &vec![0; MAX_HAVE_BITS as usize / 8 + 1],
                ]
                .concat(),
            ),
            false,
        ),
    ];
    for (i, (payload, is_request)) in cases.into_iter().enumerate() {
        let refused = if is_request {
            matches!(
                RequestFrame::decode(&payload),
                Ok(Incoming::Malformed { .. })
            )
        } else {
            frame::decode_payload::<ResponseFrame>(&payload).is_err()
        };
        assert!(refused, "case {i} decoded");
    }
}

#[test]
fn bitfields_must_match_their_length() {
    let decode = |bits: u32, bytes: &[u8]| {
        let payload = [
            &[1u8, 5][..],
            &postcard::to_allocvec(&bits).unwrap(),
            &[bytes.len() as u8],
            bytes,
        ]
        .concat();
        frame::decode_payload::<ResponseFrame>(&payload)
    };
    assert!(decode(3, &[0b101]).is_ok());
    assert!(decode(8, &[0xff]).is_ok());
    assert!(decode(0, &[]).is_ok());
    assert!(decode(3, &[0b1101]).is_err(), "a spare bit set");
    assert!(decode(3, &[]).is_err());
    assert!(decode(3, &[0, 0]).is_err());
    assert!(decode(9, &[0xff]).is_err());
    assert!(Bitfield::new(MAX_HAVE_BITS).is_some());
    assert!(Bitfield::new(MAX_HAVE_BITS + 1).is_none());
    let mut b = Bitfield::new(10).unwrap();
    b.set(9);
    b.set(10);
    assert!(b.get(9) && !b.get(10) && !b.get(0));
    assert_eq!((b.len(), b.count_ones()), (10, 1));
}

#[test]
fn error_text_is_neutralised_and_capped() {
    let t = ErrorText::new("bad \u{1b}[2J name\u{202e}");
    assert_eq!(t.as_str(), "bad \\e[2J name\\u{202e}");
    let long = ErrorText::new(&"é".repeat(MAX_ERROR_TEXT));
    assert_eq!(long.as_str().len(), MAX_ERROR_TEXT);
    // On the wire, only text already neutral and short enough decodes.
    let payload = |text: &str| {
        [
            &[1u8, 8, 4][..],
            &postcard::to_allocvec(&text.to_owned()).unwrap()[..],
        ]
        .concat()
    };
    assert!(frame::decode_payload::<ResponseFrame>(&payload("fine")).is_ok());
    assert!(frame::decode_payload::<ResponseFrame>(&payload("a\u{1b}b")).is_err());
    assert!(frame::decode_payload::<ResponseFrame>(&payload("a\u{202e}b")).is_err());
    let over = "x".repeat(MAX_ERROR_TEXT + 1);
    assert!(frame::decode_payload::<ResponseFrame>(&payload(&over)).is_err());
}

#[test]
fn the_largest_frames_fit_the_cap() {
    let name = "n".repeat(255);
    let largest = [
        Response::Chunk {
            id: AB,
            index: u64::MAX,
            data: Bytes::from(vec![1; CHUNK as usize]),
        },
        Response::Manifest(ManifestPage {
            id: AB,
            len: u64::MAX,
            first: u64::MAX,
            cvs: vec![ChunkCv([7; 32]); MAX_CVS_PER_PAGE],
        }),
        Response::Page(Page {
            entries: vec![
                Entry {
                    name: EntryName::new(&name).unwrap(),
                    kind: EntryKind::File,
                    size: u64::MAX,
                    mtime: u64::MAX,
                    id: Some(AB),
                };
                MAX_PAGE
            ],
            next: Some(Cursor(vec![0; 256])),
        }),
        Response::Shares(vec![
            ShareInfo {
                name: share(&"s".repeat(64)),
                access: Access::Read,
            };
            MAX_SHARES
        ]),
        Response::Versions(vec![
            VersionInfo {
                number: u64::MAX,
                size: u64::MAX,
                replaced_at: u64::MAX,
                id: AB,
                by: Some(peer(1)),
            };
            MAX_VERSIONS
        ]),
        Response::Have(Bitfield::new(MAX_HAVE_BITS).unwrap()),
        Response::error(ErrorKind::Invalid, &"x".repeat(MAX_ERROR_TEXT)),
    ];
    for response in largest {
        let tag = response.tag();
        let frame = resp(u64::MAX, response);
        let bytes = frame::encode(&frame, MAX_FRAME).unwrap_or_else(|e| panic!("{tag}: {e}"));
        let back = frame::decode::<ResponseFrame>(&mut BytesMut::from(&bytes[..]), MAX_FRAME);
        assert_eq!(back.unwrap(), Some(frame));
    }
    let header = ((MAX_FRAME + 1) as u32).to_be_bytes();
    assert!(matches!(
        frame::decode::<ResponseFrame>(&mut BytesMut::from(&header[..]), MAX_FRAME),
        Err(FrameError::TooLarge { .. })
    ));
    let put_chunk = RequestFrame {
        id: RequestId(u64::MAX),
        request: Request::PutChunk {
            put: RequestId(u64::MAX),
            index: u64::MAX,
            data: Bytes::from(vec![1; CHUNK as usize]),
        },
    };
    let bytes = frame::encode(&put_chunk, MAX_FRAME).unwrap();
    assert_eq!(
        RequestFrame::decode(&bytes[frame::HEADER_LEN..]).unwrap(),
        Incoming::Request(put_chunk)
    );
}

#[test]
fn manifest_pages_fit_their_content() {
    let page = |len, first, n: usize| ManifestPage {
        id: AB,
        len,
        first,
        cvs: vec![ChunkCv([0; 32]); n],
    };
    assert!(page(0, 0, 0).fits());
    assert!(page(1, 0, 1).fits());
    assert!(page(CHUNK + 1, 1, 1).fits());
    assert!(page(CHUNK * 3, 0, 3).fits());
    assert!(!page(0, 0, 1).fits());
    assert!(!page(1, 0, 0).fits());
    assert!(!page(CHUNK, 0, 2).fits());
    assert!(!page(CHUNK * 3, 2, 2).fits());
    assert!(!page(u64::MAX, u64::MAX, 1).fits());
}
