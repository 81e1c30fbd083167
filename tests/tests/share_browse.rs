//! Browsing a peer's shares from the command line, between two real daemons: alice shares a
//! directory, bob sees nothing of it (and is told `permission denied`, exactly as for a share
//! that does not exist) until alice grants him read; then he lists her shares, a directory
//! with sizes, a subdirectory and the whole tree; `share ls` at alice shows the grant and
//! the counts; a path with `..` is refused; after a revoke bob's next listing is denied.
//! Shares and grants survive a restart, and a listing of an offline owner says so. On the
//! wire (a share link made by hand), pipelined requests are answered by id (a reader's
//! `Versions` too), unknown, malformed and not-yet-served requests are answered `Invalid`
//! with the link kept, and a revoke holds from the next request on a link already open.

use std::time::Duration;

use p2p_tests::chat::{self, Pair};
use p2p_tests::{CmdOutput, DEADLINE, TestNet, poll};
use serde_json::Value;

/// Runs `p2pctl ARGS` against `who`'s daemon and asserts it succeeded.
#[track_caller]
fn ok(net: &TestNet, who: &p2p_tests::P2pd, args: &[&str]) -> CmdOutput {
    let out = net.ctl(who, args);
    out.assert_success();
    out
}

/// Asserts bob's `ls TARGET` is refused with exit 1 and the contract's words.
#[track_caller]
fn assert_denied(net: &TestNet, p: &Pair, target: &str, share: &str) {
    let out = net.ctl(&p.bob, &["ls", target]);
    assert_eq!(out.code(), Some(1), "{out}");
    let want = format!("permission denied: {share} on alice (ask alice for read)");
    assert!(out.stderr.contains(&want), "expected {want:?}:\n{out}");
    assert!(out.stdout.is_empty(), "{out}");
}

/// alice shares a directory holding `a.txt` ("hello") as `docs`.
fn share_one_file(net: &TestNet, p: &Pair) {
    let dir = net.unique_dir("docs");
    std::fs::write(dir.join("a.txt"), "hello").unwrap();
    ok(
        net,
        &p.alice,
        &["share", "add", "docs", dir.to_str().unwrap()],
    );
}

fn paths(listing: &Value) -> Vec<String> {
    listing["entries"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["path"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn bob_browses_alices_share_only_while_granted() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    let dir = net.unique_dir("docs");
    std::fs::write(dir.join("a.txt"), "hello").unwrap();
    std::fs::write(dir.join("b.bin"), vec![7u8; 1000]).unwrap();
    std::fs::create_dir_all(dir.join("sub/deeper")).unwrap();
    std::fs::write(dir.join("sub/c.txt"), "c").unwrap();
    std::fs::write(dir.join("sub/deeper/d.txt"), "dd").unwrap();
    let dir_arg = dir.to_str().unwrap();

    let added = ok(&net, &p.alice, &["--json", "share", "add", "docs", dir_arg]).json();
    assert_eq!(added["name"], "docs", "{added}");
    assert_eq!(added["keep_versions"], 5, "{added}");
    let again = net.ctl(&p.alice, &["share", "add", "docs", dir_arg]);
    assert_eq!(again.code(), Some(1), "{again}");
    assert!(again.stderr.contains("exists already"), "{again}");

    // Before any grant: no shares, and the share reads like one that does not exist.
    let none = ok(&net, &p.bob, &["--json", "ls", "alice"]).json();
    assert_eq!(none["peer"], "alice", "{none}");
    assert!(none.get("shares").is_none(), "{none}");
    let text = ok(&net, &p.bob, &["ls", "alice"]);
    assert_eq!(text.stdout, "alice shares nothing with you\n", "{text}");
    assert_denied(&net, &p, "alice:docs", "docs");
    assert_denied(&net, &p, "alice:nothing-here", "nothing-here");

    let granted = ok(&net, &p.alice, &["--json", "grant", "docs", "bob", "read"]).json();
    assert_eq!(granted["right"], "read", "{granted}");
    let missing = net.ctl(&p.alice, &["grant", "nope", "bob", "read"]);
    assert_eq!(missing.code(), Some(1), "{missing}");
    assert!(missing.stderr.contains("no share named nope"), "{missing}");

    let shares = ok(&net, &p.bob, &["--json", "ls", "alice"]).json();
    assert_eq!(
        shares["shares"],
        serde_json::json!([{"name": "docs", "access": "read"}]),
        "{shares}"
    );

    let top = ok(&net, &p.bob, &["--json", "ls", "alice:docs", "-l"]).json();
    let entries = top["entries"].as_array().expect("entries");
    let brief: Vec<(&str, &str, u64)> = entries
        .iter()
        .map(|e| {
            (
                e["path"].as_str().unwrap(),
                e["kind"].as_str().unwrap(),
                e["size"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        brief,
        [
            ("a.txt", "file", 5),
            ("b.bin", "file", 1000),
            ("sub", "dir", 0)
        ],
        "{top}"
    );
    assert!(
        entries.iter().all(|e| e["mtime"].as_u64() > Some(0)),
        "{top}"
    );

    let sub = ok(&net, &p.bob, &["ls", "alice:docs/sub"]);
    assert_eq!(sub.stdout, "c.txt\ndeeper/\n", "{sub}");
    let file = ok(&net, &p.bob, &["--json", "ls", "alice:docs/sub/c.txt"]).json();
    assert_eq!(paths(&file), ["c.txt"], "{file}");

    let all = ok(&net, &p.bob, &["--json", "ls", "alice:docs", "-R"]).json();
    assert_eq!(
        paths(&all),
        [
            "a.txt",
            "b.bin",
            "sub",
            "sub/c.txt",
            "sub/deeper",
            "sub/deeper/d.txt"
        ],
        "{all}"
    );
    assert!(all.get("truncated").is_none(), "{all}");

    for bad in ["alice:docs/../docs", "alice:docs/sub/../../x"] {
        let out = net.ctl(&p.bob, &["ls", bad]);
        assert_eq!(out.code(), Some(1), "{out}");
        assert!(out.stderr.contains("bad path"), "{out}");
    }
    let gone = net.ctl(&p.bob, &["ls", "alice:docs/nope"]);
    assert_eq!(gone.code(), Some(1), "{gone}");
    assert!(gone.stderr.contains("no such file or directory"), "{gone}");

    // The owner's view: counts once the first walk is done, and the grant by name.
    let listed = poll(DEADLINE, Duration::from_millis(50), || {
        let v = ok(&net, &p.alice, &["--json", "share", "ls"]).json();
        if v[0]["ready"] == true {
            Ok(v)
        } else {
            Err(format!("share not indexed yet: {v}"))
        }
    });
    assert_eq!(listed[0]["name"], "docs", "{listed}");
    assert_eq!(listed[0]["files"], 4, "{listed}");
    assert_eq!(listed[0]["bytes"], 5 + 1000 + 1 + 2, "{listed}");
    assert_eq!(listed[0]["grants"][0]["peer"], "bob", "{listed}");
    assert_eq!(listed[0]["grants"][0]["right"], "read", "{listed}");
    let table = ok(&net, &p.alice, &["share", "ls"]);
    assert!(table.stdout.contains("bob read"), "{table}");

    let revoked = ok(&net, &p.alice, &["--json", "revoke", "docs", "bob"]).json();
    assert_eq!(revoked["revoked"], true, "{revoked}");
    assert_denied(&net, &p, "alice:docs", "docs");
    let none = ok(&net, &p.bob, &["--json", "ls", "alice"]).json();
    assert!(none.get("shares").is_none(), "{none}");

    let removed = ok(&net, &p.alice, &["--json", "share", "rm", "docs"]).json();
    assert_eq!(removed["name"], "docs", "{removed}");
    let empty = ok(&net, &p.alice, &["--json", "share", "ls"]).json();
    assert_eq!(empty, serde_json::json!([]), "{empty}");
}

#[test]
fn shares_and_grants_survive_a_restart_and_an_offline_owner_is_said_so() {
    let net = TestNet::new();
    let mut p = chat::pair(&net);
    share_one_file(&net, &p);
    ok(&net, &p.alice, &["grant", "docs", "bob", "read"]);

    let status = p.alice.stop();
    assert!(status.success(), "alice stopped with {status}");
    p.bob.wait_peer("alice", false, DEADLINE);
    let out = net.ctl(&p.bob, &["ls", "alice:docs"]);
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(
        out.stderr
            .contains("alice is offline; try again once it is online"),
        "{out}"
    );

    p.alice.restart();
    p.bob.wait_peer("alice", true, DEADLINE);
    let listed = ok(&net, &p.bob, &["--json", "ls", "alice:docs"]).json();
    assert_eq!(paths(&listed), ["a.txt"], "{listed}");
    let mine = ok(&net, &p.alice, &["--json", "share", "ls"]).json();
    assert_eq!(mine[0]["name"], "docs", "{mine}");
    assert_eq!(mine[0]["grants"][0]["peer"], "bob", "{mine}");
}

#[test]
fn a_share_must_be_an_existing_directory_with_a_plain_name() {
    let net = TestNet::new();
    let tracker = net.spawn_tracker(None);
    let alice = net.spawn_p2pd("alice", &tracker.addr_string(), &[]);
    let file = net.write_file("notes.txt", "x");
    let dir = net.unique_dir("d");
    let cases: [(&str, &str, &str); 3] = [
        ("notes", file.to_str().unwrap(), "not a directory"),
        ("gone", "/nonexistent/p2p-share-dir", "cannot share"),
        ("../up", dir.to_str().unwrap(), "bad share name"),
    ];
    for (name, path, needle) in cases {
        let out = net.ctl(&alice, &["share", "add", name, path]);
        assert_eq!(out.code(), Some(1), "{out}");
        assert!(out.stderr.contains(needle), "expected {needle:?}:\n{out}");
    }
    let out = net.ctl(&alice, &["--json", "share", "ls"]);
    out.assert_success();
    assert_eq!(out.json(), serde_json::json!([]), "{out}");
}

/// A share link made by hand to alice, as mallory: raw request payloads out, responses in.
mod wire {
    use std::collections::BTreeMap;

    use p2p_tests::DEADLINE;
    use p2p_tests::raw_peer::RawPeer;
    use proto::share::{MAX_FRAME, Request, RequestFrame, RequestId, ResponseFrame, ShareName};
    use serde::Serialize;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A `List` whose share name is never checked: what a hostile encoder sends.
    #[derive(Serialize)]
    enum Shadow {
        #[allow(dead_code)]
        ListShares,
        List {
            share: String,
            path: Option<String>,
            cursor: Option<Vec<u8>>,
            limit: u32,
        },
    }

    pub(super) fn valid(id: u64, request: Request) -> Vec<u8> {
        postcard::to_stdvec(&RequestFrame {
            id: RequestId(id),
            request,
        })
        .expect("encode")
    }

    pub(super) fn list(id: u64, share: &str) -> Vec<u8> {
        valid(
            id,
            Request::List {
                share: ShareName::new(share).expect("name"),
                path: None,
                cursor: None,
                limit: 0,
            },
        )
    }

    pub(super) fn hostile_list(id: u64, share: &str) -> Vec<u8> {
        let list = Shadow::List {
            share: share.into(),
            path: None,
            cursor: None,
            limit: 0,
        };
        postcard::to_stdvec(&(id, list)).expect("encode")
    }

    pub(super) fn unknown(id: u64, tag: u32) -> Vec<u8> {
        postcard::to_stdvec(&(id, tag)).expect("encode")
    }

    pub(super) async fn send(link: &mut RawPeer, payloads: &[Vec<u8>]) {
        let mut bytes = Vec::new();
        for p in payloads {
            bytes.extend_from_slice(&u32::try_from(p.len()).unwrap().to_be_bytes());
            bytes.extend_from_slice(p);
        }
        link.tls.write_all(&bytes).await.expect("send requests");
        link.tls.flush().await.expect("flush");
    }

    /// Reads `n` responses, by request id.
    pub(super) async fn answers(link: &mut RawPeer, n: usize) -> BTreeMap<u64, ResponseFrame> {
        let mut out = BTreeMap::new();
        while out.len() < n {
            let read = async {
                let mut header = [0u8; 4];
                link.tls.read_exact(&mut header).await?;
                let len = u32::from_be_bytes(header) as usize;
                assert!(len <= MAX_FRAME, "a {len}-byte frame");
                let mut payload = vec![0u8; len];
                link.tls.read_exact(&mut payload).await?;
                Ok::<_, std::io::Error>(payload)
            };
            let payload = tokio::time::timeout(DEADLINE, read)
                .await
                .expect("an answer in time")
                .expect("the link stays up");
            let frame: ResponseFrame =
                proto::frame::decode_payload(&payload).expect("a response frame");
            out.insert(frame.id.0, frame);
        }
        out
    }
}

#[tokio::test]
async fn requests_on_one_link_are_answered_by_id_and_a_revoke_holds_from_the_next() {
    use proto::peer::ALPN_SHARE;
    use proto::share::{ErrorKind, Request, Response};

    let net = TestNet::new();
    let p = chat::pair(&net);
    share_one_file(&net, &p);
    let key = p2p_tests::raw::random_key();
    let _registration = p2p_tests::transfer::register_raw(&p.tracker, &key, "mallory").await;
    p.alice.wait_peer("mallory", true, DEADLINE);
    ok(&net, &p.alice, &["grant", "docs", "mallory", "read"]);

    let (mut link, name) =
        p2p_tests::raw_peer::RawPeer::hello_alpn(p.alice.listen, &key, "mallory", ALPN_SHARE)
            .await
            .expect("a share link to alice");
    assert_eq!(name, "alice");
    let get = Request::GetChunk {
        id: proto::share::ContentId([1; 32]),
        index: 0,
    };
    // A hash held nowhere the asker may read: reported not held.
    let have = Request::Have(proto::share::HaveQuery::Ids(vec![proto::share::ContentId(
        [2; 32],
    )]));
    // Served to a reader: a path never replaced has no versions.
    let versions = Request::Versions {
        share: proto::share::ShareName::new("docs").unwrap(),
        path: proto::transfer::RelPath::new("a.txt").unwrap(),
    };
    wire::send(
        &mut link,
        &[
            wire::valid(1, Request::ListShares),
            wire::list(2, "docs"),
            wire::unknown(3, 99),
            wire::hostile_list(4, ".."),
            wire::valid(5, get),
            wire::list(6, "other"),
            wire::valid(9, have),
            wire::valid(10, versions),
        ],
    )
    .await;
    let got = wire::answers(&mut link, 8).await;
    let error = |id: u64| match &got[&id].response {
        Response::Error(e) => (e.kind, e.message.to_string()),
        other => panic!("request {id}: expected an error, got {other:?}"),
    };
    match &got[&1].response {
        Response::Shares(s) => assert_eq!(s.len(), 1, "{s:?}"),
        other => panic!("{other:?}"),
    }
    match &got[&2].response {
        Response::Page(page) => {
            let names: Vec<&str> = page.entries.iter().map(|e| e.name.as_str()).collect();
            assert_eq!(names, ["a.txt"]);
            assert_eq!(page.entries[0].size, 5);
            assert!(page.next.is_none());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(error(3), (ErrorKind::Invalid, "unknown request 99".into()));
    let (kind, message) = error(4);
    assert_eq!(kind, ErrorKind::Invalid, "{message}");
    assert!(message.starts_with("malformed request 1"), "{message}");
    // A hash is not a capability: content in no readable share reads as absent.
    assert_eq!(error(5).0, ErrorKind::NotFound, "{:?}", error(5));
    assert_eq!(
        error(6),
        (
            ErrorKind::Denied,
            "permission denied: other (ask the owner for read)".into()
        )
    );

    match &got[&9].response {
        Response::Have(bits) => assert!(bits.len() == 1 && !bits.get(0), "{bits:?}"),
        other => panic!("request 9: {other:?}"),
    }
    assert_eq!(got[&10].response, Response::Versions(Vec::new()));

    // The revoke holds on the link already open, from the next request on.
    ok(&net, &p.alice, &["revoke", "docs", "mallory"]);
    wire::send(
        &mut link,
        &[wire::list(7, "docs"), wire::valid(8, Request::ListShares)],
    )
    .await;
    let after = wire::answers(&mut link, 2).await;
    match &after[&7].response {
        Response::Error(e) => assert_eq!(e.kind, ErrorKind::Denied, "{e:?}"),
        other => panic!("listed after the revoke: {other:?}"),
    }
    assert_eq!(after[&8].response, Response::Shares(Vec::new()));
}
