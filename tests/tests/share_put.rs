//! Writing into a peer's share with `p2pctl put`, between real daemons: alice shares a
//! directory; bob, with `read` only, is refused and nothing is written; with `write` he puts
//! a new file (identical at alice), into a directory (placed inside it, as `cp -r` does), and
//! over a file he looked at (replaced, the old one kept as a version). A put whose target
//! alice changes while it runs fails with `conflict: ... changed on alice since you read it`
//! and leaves alice's file alone; `--force` then replaces it. A put over the share's quota,
//! or larger than the free space of the share's disk (a small tmpfs), is refused before any
//! byte is written. A directory lands whole, symlinks skipped. A hostile client speaking
//! `p2p-share/1` by hand (a chunk of the wrong length, for an unknown put, twice, bytes that
//! are not the announced content) is answered `Invalid`, nothing lands, no staging file is
//! left, and the daemon serves on; a fifth put at once on a link is `Busy`, a `Cancel` or
//! the link's end removes a put's staging file, and a revoke stops a put at its next chunk.
//! A get while a put replaces the file gets one whole version.

use std::path::{Path, PathBuf};
use std::time::Duration;

use p2p_tests::chat::{self, Pair};
use p2p_tests::sys::{NetNs, Tmpfs};
use p2p_tests::transfer::write_pattern;
use p2p_tests::{CmdOutput, DEADLINE, TestNet, poll};

/// Runs `p2pctl ARGS` against `who`'s daemon and asserts it succeeded.
#[track_caller]
fn ok(net: &TestNet, who: &p2p_tests::P2pd, args: &[&str]) -> CmdOutput {
    let out = net.ctl(who, args);
    out.assert_success();
    out
}

/// Every entry under `dir` (files and directories, hidden ones too), relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
            if e.file_type().unwrap().is_dir() {
                todo.push(e.path());
                found.push(format!("{rel}/"));
            } else {
                found.push(rel);
            }
        }
    }
    found.sort();
    found
}

/// How long a put over the capped link may take (8 MiB at 1 MB/s, on a loaded machine).
const SLOW_PUT: Duration = Duration::from_secs(90);

/// Runs `p2pctl ARGS` against the daemon at `socket`, for at most [`SLOW_PUT`].
fn slow_ctl(net: &TestNet, socket: &Path, args: &[&str]) -> CmdOutput {
    let mut cmd = net.command("p2pctl");
    cmd.arg("--socket").arg(socket).args(args);
    p2p_tests::run_with_timeout(cmd, SLOW_PUT)
}

/// The files under `dir` whose bytes are `data`.
fn files_holding(dir: &Path, data: &[u8]) -> Vec<String> {
    tree(dir)
        .into_iter()
        .filter(|rel| !rel.ends_with('/'))
        .filter(|rel| std::fs::read(dir.join(rel)).is_ok_and(|b| b == data))
        .collect()
}

/// alice shares a new directory holding `old.txt` as `docs`; its canonical path.
fn share_docs(net: &TestNet, p: &Pair) -> PathBuf {
    let dir = net.unique_dir("docs");
    std::fs::write(dir.join("old.txt"), "old text").unwrap();
    share(net, p, &dir)
}

/// alice shares `dir` as `docs` and waits until it is indexed; its canonical path.
fn share(net: &TestNet, p: &Pair, dir: &Path) -> PathBuf {
    share_with(net, p, dir, &[])
}

/// [`share`], with `extra` options to `share add`.
fn share_with(net: &TestNet, p: &Pair, dir: &Path, extra: &[&str]) -> PathBuf {
    let mut add = vec!["share", "add", "docs", dir.to_str().unwrap()];
    add.extend_from_slice(extra);
    ok(net, &p.alice, &add);
    poll(DEADLINE, Duration::from_millis(50), || {
        let v = ok(net, &p.alice, &["--json", "share", "ls"]).json();
        if v[0]["ready"] == true {
            Ok(PathBuf::from(v[0]["path"].as_str().unwrap()))
        } else {
            Err(format!("share not indexed yet: {v}"))
        }
    })
}

/// The content id alice's index shows for `path` of `docs`, as bob lists it.
fn listed_id(net: &TestNet, p: &Pair, path: &str) -> Option<String> {
    let target = format!("alice:docs/{path}");
    let l = net.ctl(&p.bob, &["--json", "ls", "-l", &target]).json();
    l["entries"][0]["id"].as_str().map(str::to_owned)
}

fn id_of(data: &[u8]) -> String {
    proto::content::ContentId::of(data).to_string()
}

#[test]
fn bob_puts_only_with_write_and_replaces_only_what_he_saw() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    let docs = share_docs(&net, &p);
    let local = net.unique_dir("local");
    let a = local.join("a.txt");
    std::fs::write(&a, "first put").unwrap();
    let a = a.to_str().unwrap();

    // No grant, then read only: refused, saying which right is needed; nothing written.
    for right in [None, Some("read")] {
        if let Some(right) = right {
            ok(&net, &p.alice, &["grant", "docs", "bob", right]);
        }
        let denied = net.ctl(&p.bob, &["put", a, "alice:docs/new.txt"]);
        assert_eq!(denied.code(), Some(1), "{denied}");
        let want = "permission denied: docs on alice (ask alice for write)";
        assert!(denied.stderr.contains(want), "expected {want:?}:\n{denied}");
        assert_eq!(tree(&docs), ["old.txt"]);
    }

    ok(&net, &p.alice, &["grant", "docs", "bob", "write"]);
    // A target that does not exist names the file.
    let put = ok(&net, &p.bob, &["put", a, "alice:docs/new.txt"]);
    assert_eq!(
        put.stdout, "put 1 file (9 B) on alice:docs/new.txt\n",
        "{put}"
    );
    assert_eq!(std::fs::read(docs.join("new.txt")).unwrap(), b"first put");
    // An existing directory receives it inside.
    let put = ok(&net, &p.bob, &["--json", "put", a, "alice:docs"]).json();
    assert_eq!(put["path"], "a.txt", "{put}");
    assert_eq!(put["files"], 1, "{put}");
    assert_eq!(std::fs::read(docs.join("a.txt")).unwrap(), b"first put");

    // Over a file: replaced, and what it held is kept as a version at alice.
    std::fs::write(local.join("a.txt"), "second put, longer").unwrap();
    ok(&net, &p.bob, &["put", a, "alice:docs/new.txt"]);
    assert_eq!(
        std::fs::read(docs.join("new.txt")).unwrap(),
        b"second put, longer"
    );
    let kept = files_holding(&p.alice.state_dir.join("versions"), b"first put");
    assert_eq!(kept.len(), 1, "the replaced file kept once: {kept:?}");
    // An empty file.
    let empty = local.join("empty");
    std::fs::write(&empty, "").unwrap();
    ok(
        &net,
        &p.bob,
        &["put", empty.to_str().unwrap(), "alice:docs"],
    );
    assert_eq!(std::fs::read(docs.join("empty")).unwrap(), b"");
    assert_eq!(tree(&docs), ["a.txt", "empty", "new.txt", "old.txt"]);

    // What bob sees afterwards is what he put.
    let want = id_of(b"second put, longer");
    poll(DEADLINE, Duration::from_millis(50), || {
        match listed_id(&net, &p, "new.txt") {
            Some(id) if id == want => Ok(()),
            other => Err(format!("new.txt listed as {other:?}, not {want}")),
        }
    });

    // A directory over a file, a file into a path under a file: refused, nothing changes.
    let over = net.ctl(&p.bob, &["put", a, "alice:docs/old.txt/x"]);
    assert_eq!(over.code(), Some(1), "{over}");
    assert_eq!(tree(&docs), ["a.txt", "empty", "new.txt", "old.txt"]);

    // alice's activity log names bob and each put; bob's names alice.
    let received = |l: &str| l.contains("put received") && l.contains("bob");
    p.alice
        .wait_activity("puts received", 4, DEADLINE, received);
    let refused = |l: &str| l.contains("put refused") && l.contains("bob");
    p.alice.wait_activity("puts refused", 1, DEADLINE, refused);
    let sent = |l: &str| l.contains("put done") && l.contains("alice");
    p.bob.wait_activity("puts done", 4, DEADLINE, sent);
}

#[test]
fn a_put_whose_target_changes_meanwhile_conflicts_and_force_then_replaces_it() {
    // A capped link, so that the put is still sending when alice changes the file.
    let ns = NetNs::rate_limited(8);
    let net = TestNet::in_netns(&ns);
    let p = chat::pair(&net);
    let dir = net.unique_dir("docs");
    std::fs::write(dir.join("target.bin"), "alice's first version").unwrap();
    let docs = share(&net, &p, &dir);
    ok(&net, &p.alice, &["grant", "docs", "bob", "write"]);
    let local = net.unique_dir("local");
    let big = write_pattern(&local.join("big.bin"), 8 << 20, 3);
    let src = local.join("big.bin");
    let src = src.to_str().unwrap();

    let mut watch = net.watch(&p.bob);
    let bob = p.bob.socket.clone();
    let lost = std::thread::scope(|s| {
        let put = s.spawn(|| slow_ctl(&net, &bob, &["put", src, "alice:docs/target.bin"]));
        let started = |e: &serde_json::Value| {
            e["type"] == "put_progress" && e["put"]["done_bytes"].as_u64().unwrap_or(0) > 0
        };
        watch.wait_for("the put's first progress", started, 4 * DEADLINE);
        std::fs::write(docs.join("target.bin"), "alice's second version").unwrap();
        put.join().unwrap()
    });
    assert_eq!(lost.code(), Some(1), "{lost}");
    let want = "conflict: docs/target.bin changed on alice since you read it";
    assert!(lost.stderr.contains(want), "expected {want:?}:\n{lost}");
    // Nothing lost: alice's change stays, and no staging file is left.
    assert_eq!(
        std::fs::read(docs.join("target.bin")).unwrap(),
        b"alice's second version"
    );
    assert_eq!(tree(&docs), ["target.bin"]);

    // --force looks again and puts over alice's version.
    slow_ctl(
        &net,
        &p.bob.socket,
        &["put", "--force", src, "alice:docs/target.bin"],
    )
    .assert_success();
    assert!(std::fs::read(docs.join("target.bin")).unwrap() == big);
    assert_eq!(tree(&docs), ["target.bin"]);
    // What the forced put replaced is kept: alice's change is not lost.
    let versions = p.alice.state_dir.join("versions");
    let kept = files_holding(&versions, b"alice's second version");
    assert_eq!(kept.len(), 1, "{kept:?}");
}

#[test]
fn a_directory_lands_whole_with_symlinks_skipped() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    let docs = share_docs(&net, &p);
    ok(&net, &p.alice, &["grant", "docs", "bob", "write"]);
    let local = net.unique_dir("local");
    let top = local.join("tree");
    std::fs::create_dir_all(top.join("sub/deeper")).unwrap();
    std::fs::write(top.join("a.txt"), "a").unwrap();
    std::fs::write(top.join("sub/b.txt"), "bb").unwrap();
    let c = write_pattern(&top.join("sub/deeper/c.bin"), (2 << 20) + 5, 4);
    std::os::unix::fs::symlink("/etc/passwd", top.join("link")).unwrap();
    let src = top.to_str().unwrap();

    // The directories are made at alice, every file lands, identical; the symlink is
    // skipped and said so.
    let put = ok(&net, &p.bob, &["--json", "put", src, "alice:docs"]);
    let done = put.json();
    assert_eq!(done["path"], "tree", "{put}");
    assert_eq!(done["files"], 3, "{put}");
    assert_eq!(done["dirs"], 3, "{put}");
    assert!(
        put.stderr
            .contains("skipped link: a symlink (not followed)"),
        "{put}"
    );
    assert_eq!(
        tree(&docs),
        [
            "old.txt",
            "tree/",
            "tree/a.txt",
            "tree/sub/",
            "tree/sub/b.txt",
            "tree/sub/deeper/",
            "tree/sub/deeper/c.bin"
        ]
    );
    assert_eq!(std::fs::read(docs.join("tree/a.txt")).unwrap(), b"a");
    assert_eq!(std::fs::read(docs.join("tree/sub/b.txt")).unwrap(), b"bb");
    assert!(std::fs::read(docs.join("tree/sub/deeper/c.bin")).unwrap() == c);

    // Again to the same place: the directories exist, each file is replaced.
    std::fs::write(top.join("a.txt"), "a, again").unwrap();
    let again = ok(&net, &p.bob, &["put", src, "alice:docs"]);
    let said = "put 3 files (2.0 MiB) on alice:docs/tree\n";
    assert_eq!(again.stdout, said, "{again}");
    assert_eq!(std::fs::read(docs.join("tree/a.txt")).unwrap(), b"a, again");
    assert_eq!(tree(&docs).len(), 7, "{:?}", tree(&docs));
}

#[test]
fn a_put_over_the_share_quota_is_refused_before_any_byte_is_written() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    let dir = net.unique_dir("docs");
    std::fs::write(dir.join("held.bin"), vec![7u8; 1000]).unwrap();
    share_with(&net, &p, &dir, &["--quota", "4K"]);
    ok(&net, &p.alice, &["grant", "docs", "bob", "write"]);
    let local = net.unique_dir("local");
    let big = local.join("big.bin");
    std::fs::write(&big, vec![1u8; 3200]).unwrap();
    let out = net.ctl(&p.bob, &["put", big.to_str().unwrap(), "alice:docs"]);
    assert_eq!(out.code(), Some(1), "{out}");
    let want = "over the quota of docs: it holds 1000 of 4096 bytes, and this put of 3200 bytes \
                would bring it to 4200";
    assert!(out.stderr.contains(want), "expected {want:?}:\n{out}");
    assert_eq!(tree(&dir), ["held.bin"]);
    // Replacing the file that is there counts only the difference.
    ok(
        &net,
        &p.bob,
        &[
            "put",
            "--force",
            big.to_str().unwrap(),
            "alice:docs/held.bin",
        ],
    );
    assert_eq!(
        std::fs::read(dir.join("held.bin")).unwrap(),
        vec![1u8; 3200]
    );
}

#[test]
fn a_put_larger_than_the_free_space_is_refused_before_any_byte_is_written() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    let disk = Tmpfs::mount(&net.unique_dir("small"), 4);
    let docs = share(&net, &p, disk.path());
    ok(&net, &p.alice, &["grant", "docs", "bob", "write"]);
    let local = net.unique_dir("local");
    write_pattern(&local.join("big.bin"), 5 << 20, 1);
    let src = local.join("big.bin");
    let out = net.ctl(&p.bob, &["put", src.to_str().unwrap(), "alice:docs"]);
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(
        out.stderr
            .contains("not enough space for docs/big.bin: 5242880 bytes needed"),
        "{out}"
    );
    assert!(tree(&docs).is_empty(), "{:?}", tree(&docs));
    // What fits goes.
    let small = local.join("small.bin");
    let data = write_pattern(&small, 1 << 20, 2);
    ok(
        &net,
        &p.bob,
        &["put", small.to_str().unwrap(), "alice:docs"],
    );
    assert!(std::fs::read(docs.join("small.bin")).unwrap() == data);
}

#[test]
fn a_get_while_a_put_replaces_the_file_gets_one_whole_version() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    let dir = net.unique_dir("docs");
    let old = write_pattern(&dir.join("f.bin"), 6 << 20, 10);
    let docs = share(&net, &p, &dir);
    ok(&net, &p.alice, &["grant", "docs", "bob", "write"]);
    let local = net.unique_dir("local");
    let new = write_pattern(&local.join("f.bin"), 5 << 20, 11);
    let src = local.join("f.bin");
    let dest = net.unique_dir("got");
    let bob = p.bob.socket.clone();
    let (put, got) = std::thread::scope(|s| {
        let put = s.spawn(|| {
            let src = src.to_str().unwrap();
            slow_ctl(&net, &bob, &["put", "--force", src, "alice:docs/f.bin"])
        });
        let got = s.spawn(|| {
            slow_ctl(
                &net,
                &bob,
                &["get", "alice:docs/f.bin", dest.to_str().unwrap()],
            )
        });
        (put.join().unwrap(), got.join().unwrap())
    });
    put.assert_success();
    assert!(std::fs::read(docs.join("f.bin")).unwrap() == new);
    // The get ended either way; what it left is one whole version, never a mix.
    if got.code() == Some(0) {
        let bytes = std::fs::read(dest.join("f.bin")).unwrap();
        assert!(
            bytes == old || bytes == new,
            "a mix of {} bytes",
            bytes.len()
        );
    } else {
        assert!(!dest.join("f.bin").exists(), "{got}");
    }
}

/// A share link made by hand to alice, as mallory (who holds `write`).
mod wire {
    use std::collections::BTreeMap;

    use bytes::Bytes;
    use p2p_tests::share_raw::ShareLink;
    use proto::share::{ContentId, Request, RequestFrame, RequestId, ResponseFrame, ShareName};
    use proto::transfer::RelPath;

    pub(super) fn put(id: u64, path: &str, data: &[u8], claimed: ContentId) -> Vec<u8> {
        frame(
            id,
            Request::Put {
                share: ShareName::new("docs").unwrap(),
                path: RelPath::new(path).unwrap(),
                size: data.len() as u64,
                id: claimed,
                replaces: None,
            },
        )
    }

    pub(super) fn chunk(id: u64, put: u64, index: u64, data: &[u8]) -> Vec<u8> {
        frame(
            id,
            Request::PutChunk {
                put: RequestId(put),
                index,
                data: Bytes::copy_from_slice(data),
            },
        )
    }

    fn frame(id: u64, request: Request) -> Vec<u8> {
        postcard::to_stdvec(&RequestFrame {
            id: RequestId(id),
            request,
        })
        .expect("encode")
    }

    pub(super) async fn send(link: &mut ShareLink, payloads: &[Vec<u8>]) {
        for p in payloads {
            link.send_payload(p).await.expect("send a request");
        }
    }

    /// Reads `n` responses, by request id.
    pub(super) async fn answers(link: &mut ShareLink, n: usize) -> BTreeMap<u64, ResponseFrame> {
        let mut out = BTreeMap::new();
        while out.len() < n {
            let frame = link.next_answer().await.expect("an answer");
            let frame = frame.expect("the link stays up");
            out.insert(frame.id.0, frame);
        }
        out
    }
}

#[tokio::test]
async fn hostile_chunks_are_refused_and_leave_nothing() {
    use p2p_tests::share_raw::ShareLink;
    use proto::content::ContentId;
    use proto::share::{ErrorKind, Response};

    let net = TestNet::new();
    let p = chat::pair(&net);
    let docs = share_docs(&net, &p);
    let key = p2p_tests::raw::random_key();
    let _registration = p2p_tests::transfer::register_raw(&p.tracker, &key, "mallory").await;
    p.alice.wait_peer("mallory", true, DEADLINE);
    ok(&net, &p.alice, &["grant", "docs", "mallory", "write"]);
    let mut link = ShareLink::open(p.alice.listen, &key, "mallory").await;

    // Two chunks' worth: chunk 0 is 1 MiB, chunk 1 the rest.
    let data: Vec<u8> = (0..(1 << 20) + 100).map(|i| (i % 251) as u8).collect();
    let id = ContentId::of(&data);
    let (first, rest) = data.split_at(1 << 20);
    let error =
        |got: &std::collections::BTreeMap<u64, proto::share::ResponseFrame>, id: u64| match &got
            [&id]
            .response
        {
            Response::Error(e) => (e.kind, e.message.to_string()),
            other => panic!("request {id}: expected an error, got {other:?}"),
        };
    let staging = || {
        tree(&docs)
            .into_iter()
            .filter(|n| n.contains(".p2p-put-"))
            .collect::<Vec<_>>()
    };

    // A chunk for a put that does not exist.
    wire::send(&mut link, &[wire::chunk(1, 77, 0, first)]).await;
    let got = wire::answers(&mut link, 1).await;
    assert_eq!(error(&got, 1).0, ErrorKind::Invalid, "{got:?}");

    // A chunk of the wrong length ends its put.
    wire::send(
        &mut link,
        &[
            wire::put(2, "x.bin", &data, id),
            wire::chunk(3, 2, 1, first),
        ],
    )
    .await;
    let got = wire::answers(&mut link, 2).await;
    assert_eq!(error(&got, 3).0, ErrorKind::Invalid, "{got:?}");
    assert_eq!(error(&got, 2).0, ErrorKind::Invalid, "{got:?}");
    assert!(staging().is_empty(), "{:?}", staging());

    // A chunk twice ends its put.
    wire::send(
        &mut link,
        &[
            wire::put(4, "x.bin", &data, id),
            wire::chunk(5, 4, 0, first),
            wire::chunk(6, 4, 0, first),
        ],
    )
    .await;
    let got = wire::answers(&mut link, 3).await;
    assert_eq!(got[&5].response, Response::Done);
    let (kind, message) = error(&got, 6);
    assert_eq!(kind, ErrorKind::Invalid, "{message}");
    assert!(message.contains("twice"), "{message}");
    assert_eq!(error(&got, 4).0, ErrorKind::Invalid, "{got:?}");
    assert!(staging().is_empty(), "{:?}", staging());

    // Bytes that are not the content announced: the put fails once all are in.
    let mut wrong = rest.to_vec();
    wrong[7] ^= 1;
    wire::send(
        &mut link,
        &[
            wire::put(7, "x.bin", &data, id),
            wire::chunk(8, 7, 1, &wrong),
            wire::chunk(9, 7, 0, first),
        ],
    )
    .await;
    let got = wire::answers(&mut link, 3).await;
    assert_eq!(got[&8].response, Response::Done);
    assert_eq!(got[&9].response, Response::Done);
    let (kind, message) = error(&got, 7);
    assert_eq!(kind, ErrorKind::Invalid, "{message}");
    assert!(message.contains("not content"), "{message}");
    assert_eq!(tree(&docs), ["old.txt"]);

    // At most four puts at once on a link; a Cancel ends one and removes its staging file.
    let puts: Vec<Vec<u8>> = (20..25)
        .map(|n| wire::put(n, &format!("p{n}.bin"), &data, id))
        .collect();
    wire::send(&mut link, &puts).await;
    let got = wire::answers(&mut link, 1).await;
    assert_eq!(error(&got, 24).0, ErrorKind::Busy, "{got:?}");
    assert_eq!(staging().len(), 4, "{:?}", tree(&docs));
    let cancels: Vec<Vec<u8>> = (20..24)
        .map(|n| {
            postcard::to_stdvec(&proto::share::RequestFrame {
                id: proto::share::RequestId(n + 10),
                request: proto::share::Request::Cancel {
                    request: proto::share::RequestId(n),
                },
            })
            .unwrap()
        })
        .collect();
    wire::send(&mut link, &cancels).await;
    let got = wire::answers(&mut link, 4).await;
    assert!(
        got.values().all(|f| f.response == Response::Done),
        "{got:?}"
    );
    assert!(staging().is_empty(), "{:?}", staging());

    // A put left unfinished when the link ends leaves nothing.
    wire::send(
        &mut link,
        &[
            wire::put(10, "y.bin", &data, id),
            wire::chunk(11, 10, 0, first),
        ],
    )
    .await;
    let got = wire::answers(&mut link, 1).await;
    assert_eq!(got[&11].response, Response::Done);
    assert_eq!(staging().len(), 1, "{:?}", tree(&docs));
    drop(link);
    poll(DEADLINE, Duration::from_millis(20), || {
        if staging().is_empty() {
            Ok(())
        } else {
            Err(format!("staging left: {:?}", staging()))
        }
    });

    // The daemon serves on: the same put, right, lands.
    let mut link = ShareLink::open(p.alice.listen, &key, "mallory").await;
    wire::send(
        &mut link,
        &[
            wire::put(1, "x.bin", &data, id),
            wire::chunk(2, 1, 1, rest),
            wire::chunk(3, 1, 0, first),
        ],
    )
    .await;
    let got = wire::answers(&mut link, 3).await;
    assert_eq!(got[&1].response, Response::Done, "{got:?}");
    assert!(std::fs::read(docs.join("x.bin")).unwrap() == data);
    assert_eq!(tree(&docs), ["old.txt", "x.bin"]);

    // A revoke stops a put at its next chunk.
    wire::send(
        &mut link,
        &[
            wire::put(4, "z.bin", &data, id),
            wire::chunk(5, 4, 0, first),
        ],
    )
    .await;
    let got = wire::answers(&mut link, 1).await;
    assert_eq!(got[&5].response, Response::Done);
    ok(&net, &p.alice, &["revoke", "docs", "mallory"]);
    wire::send(&mut link, &[wire::chunk(6, 4, 1, rest)]).await;
    let got = wire::answers(&mut link, 2).await;
    assert_eq!(error(&got, 6).0, ErrorKind::Denied, "{got:?}");
    assert_eq!(error(&got, 4).0, ErrorKind::Denied, "{got:?}");
    assert_eq!(tree(&docs), ["old.txt", "x.bin"]);
}
