//! Trust between the programs of one user on one machine: p2pctl talks only to a p2pd of its
//! own user (the socket's directory is ours and closed to others, and the listener runs as
//! us), p2pd binds only in such a directory, one p2pd owns a state directory at a time, and
//! the files p2pd makes there are private whatever the umask.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use p2p_tests::nobody::{NOBODY, Nobody, set_mode};
use p2p_tests::{CmdOutput, DEADLINE, Proc, TestNet};

/// A message that must never reach anyone but our own daemon.
const SECRET: &str = "the wire password is hunter2";

/// `p2pctl --socket SOCKET msg bob SECRET`, run as us.
fn send_secret(net: &TestNet, socket: &Path) -> CmdOutput {
    net.ctl_at(socket, &["msg", "bob", SECRET])
}

/// Asserts that p2p refused with `code` and said `needle`, and printed nothing on stdout.
#[track_caller]
fn assert_refused(out: &CmdOutput, code: i32, needle: &str) {
    assert_eq!(out.code(), Some(code), "{out}");
    assert!(out.stderr.contains(needle), "expected {needle:?}:\n{out}");
    assert!(!out.stdout.contains("delivered"), "{out}");
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn a_socket_directory_owned_by_another_user_is_refused_by_p2pd_and_p2pctl() {
    let net = TestNet::new();
    if svc::current_uid() != 0 {
        eprintln!("SKIPPED: giving a directory to another user needs root");
        return;
    }
    // What another user can do when XDG_RUNTIME_DIR is unset: make /tmp/p2pd-UID first.
    let theirs = net.unique_dir("p2pd-0");
    std::os::unix::fs::chown(&theirs, Some(NOBODY), Some(NOBODY)).expect("chown");
    set_mode(&theirs, 0o700);
    let socket = theirs.join("p2pd.sock");
    let expected = format!(
        "control socket directory {} is owned by uid {NOBODY}, not you (uid 0); \
         remove it or use --socket in a directory of your own",
        theirs.display()
    );

    let spec = net.p2pd("alice").socket(&socket);
    let out = spec.run_to_exit();
    assert_refused(&out, 1, &expected);
    assert!(!socket.exists(), "p2pd bound in another user's directory");
    assert!(
        !spec.state_dir.join("identity.key").exists(),
        "p2pd made an identity before refusing"
    );

    let out = send_secret(&net, &socket);
    assert_refused(&out, 3, &expected);
}

#[test]
fn a_socket_directory_others_can_write_is_refused_by_p2pd_and_p2pctl() {
    let net = TestNet::new();
    for (dir_mode, who) in [
        (0o777, "group and others"),
        (0o1777, "group and others"),
        (0o770, "group"),
        (0o703, "others"),
    ] {
        let open = net.unique_dir("open-run");
        set_mode(&open, dir_mode);
        let socket = open.join("p2pd.sock");
        let expected = format!(
            "control socket directory {} is writable by {who} (mode {dir_mode:04o})",
            open.display()
        );
        let out = net.p2pd("alice").socket(&socket).run_to_exit();
        assert_refused(&out, 1, &expected);
        assert!(!socket.exists(), "p2pd bound in an open directory");
        assert_refused(&send_secret(&net, &socket), 3, &expected);
    }
    // The old examples' `--socket /tmp/alice.sock`: /tmp is everyone's.
    let out = net
        .p2pd("alice")
        .socket(Path::new("/tmp/p2p-test-never-bound.sock"))
        .run_to_exit();
    assert_refused(&out, 1, "control socket directory /tmp is writable by");
}

#[test]
fn p2pctl_sends_nothing_to_a_socket_served_by_another_user() {
    let net = TestNet::new();
    let Some(nobody) = Nobody::new(&net) else {
        return;
    };
    // Another user listens in a directory of theirs...
    let theirs = net.unique_dir("theirs");
    std::os::unix::fs::chown(&theirs, Some(NOBODY), Some(NOBODY)).expect("chown");
    let their_socket = theirs.join("p2pd.sock");
    let probe = nobody.runnable(Path::new(env!("CARGO_BIN_EXE_sock-probe")));
    let mut cmd = nobody.command(&probe);
    cmd.arg("listen").arg(&their_socket);
    let logs = net.unique_dir("logs");
    let mut fake = Proc::spawn("fake p2pd", cmd, &logs.join("fake.stderr"));
    fake.wait_line("listening", DEADLINE);

    // ...and their socket ends up in a directory of ours that passes every check of the file
    // system (a socket is found by its inode, so it still reaches their listener).
    let ours = net.unique_dir("ours");
    set_mode(&ours, 0o700);
    let socket = ours.join("p2pd.sock");
    std::fs::rename(&their_socket, &socket).expect("move the socket");

    let out = send_secret(&net, &socket);
    assert_refused(
        &out,
        3,
        &format!(
            "the control socket {} is served by uid {NOBODY}, not you (uid 0); nothing was sent",
            socket.display()
        ),
    );
    // The fake daemon was connected to, and got not one byte.
    assert_eq!(fake.wait_line("read ", DEADLINE), "0 bytes");
    assert!(fake.wait_exit(DEADLINE).success(), "{}", fake.dump());
}

#[test]
fn a_second_p2pd_on_the_same_state_directory_exits_naming_the_first_until_it_is_killed() {
    let net = TestNet::new();
    let mut first = net.p2pd("alice").spawn();
    let state = first.state_dir.clone();
    let second_run = net.unique_dir("second-run");
    let second = net
        .p2pd("alice")
        .state_dir(&state)
        .socket(&second_run.join("p2pd.sock"));

    let out = second.run_to_exit();
    assert_refused(
        &out,
        1,
        &format!(
            "another p2pd (pid {}) is using {}",
            first.proc.pid(),
            state.display()
        ),
    );
    assert!(
        !second_run.join("p2pd.sock").exists(),
        "the refused daemon bound its socket"
    );
    // The first runs on, untouched.
    assert_eq!(first.status()["name"], "alice");

    // The kernel releases the lock of a killed daemon: the next one starts.
    first.kill();
    let mut again = second.spawn();
    assert_eq!(again.status()["name"], "alice");
    let lock = std::fs::read_to_string(state.join("p2pd.lock")).expect("the lock file");
    assert_eq!(lock.trim(), again.proc.pid().to_string());
    again.stop();
}

#[test]
fn files_p2pd_makes_in_an_existing_state_directory_are_private_whatever_the_umask() {
    let net = TestNet::new();
    let tracker = net.spawn_tracker(None);
    // A state directory made beforehand, as by hand, holding a rotated activity log and a
    // lock file left with the umask's 0644.
    let state = net.unique_dir("made-by-hand");
    set_mode(&state, 0o755);
    let old_log = state.join("activity.log.2000-01-01");
    let stale_lock = state.join("p2pd.lock");
    for file in [&old_log, &stale_lock] {
        std::fs::write(file, "").expect("write");
        set_mode(file, 0o644);
    }
    let mut alice = net
        .p2pd("alice")
        .tracker(&tracker.addr_string())
        .state_dir(&state)
        .prefix(["sh", "-c", "umask 022 && exec \"$0\" \"$@\""])
        .spawn();
    // Registered: the tracker's key is pinned by then.
    alice.wait_tracker_state("registered", DEADLINE);
    net.ctl(&alice, &["status"]).assert_success();

    let mut files: Vec<(PathBuf, u32)> = std::fs::read_dir(&state)
        .expect("read the state directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            // The database's mode is its own module's business.
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("p2pd.db"))
        })
        .map(|p| {
            let m = mode(&p);
            (p, m)
        })
        .collect();
    files.sort();
    let names: Vec<String> = files
        .iter()
        .map(|(p, _)| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    for expected in [
        "identity.key",
        "p2pd.lock",
        "tracker-pins",
        "activity.log.2000-01-01",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    let todays = names
        .iter()
        .filter(|n| n.starts_with("activity.log.") && *n != "activity.log.2000-01-01")
        .count();
    assert_eq!(todays, 1, "today's activity log in {names:?}");
    let open: Vec<_> = files.iter().filter(|(_, m)| *m != 0o600).collect();
    assert!(open.is_empty(), "files not 0600: {open:?}");
    alice.stop();
}
