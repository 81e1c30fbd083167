//! The command-line contract: p2pctl's exit codes (2 usage, 3 daemon unreachable, with a
//! hint), exit 78 for every bad daemon configuration, a clean SIGTERM shutdown that removes
//! the socket, one daemon per socket, and the activity log.

use std::io;
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

use p2p_tests::{DEADLINE, TestNet, poll};

#[test]
fn p2pctl_without_a_daemon_exits_3_and_says_how_to_start_one() {
    let net = TestNet::new();
    // Nothing at the path.
    let missing = net.path().join("nowhere").join("p2pd.sock");
    let out = net.ctl_at(&missing, &["status"]);
    out.assert_code(3);
    assert!(out.stderr.contains("p2pd --name"), "hint:\n{out}");
    assert!(out.stdout.is_empty(), "{out}");
    // A stale socket file that nobody listens on (left by a killed daemon).
    let stale = net.unique_dir("stale").join("p2pd.sock");
    drop(UnixListener::bind(&stale).expect("bind"));
    assert!(stale.exists());
    // A child that another test thread forked while the listener was open holds a copy of it
    // until it execs, and a connection made meanwhile is reset, not refused. Wait until a
    // connection is refused, as it is once nobody holds the socket.
    poll(
        DEADLINE,
        Duration::from_millis(1),
        || match UnixStream::connect(&stale) {
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Ok(()),
            _ => Err(format!("{} still accepts connections", stale.display())),
        },
    );
    let out = net.ctl_at(&stale, &["--json", "peers"]);
    out.assert_code(3);
    // With --json the hint is in the error document on stdout.
    let hint = out.json()["error"]["hint"].clone();
    assert!(
        hint.as_str().is_some_and(|h| h.contains("p2pd --name")),
        "hint:\n{out}"
    );
    // `watch` too.
    net.ctl_at(&stale, &["watch"]).assert_code(3);
}

#[test]
fn p2pctl_usage_errors_exit_2() {
    let net = TestNet::new();
    let sock = net.path().join("p2pd.sock");
    net.ctl_at(&sock, &["frobnicate"]).assert_code(2);
    net.ctl_at(&sock, &[]).assert_code(2);
    net.ctl_at(&sock, &["status", "--no-such-flag"])
        .assert_code(2);
}

#[test]
fn p2pd_with_a_bad_config_exits_78() {
    let net = TestNet::new();
    let unknown_key = net.write_file("unknown.toml", "nmae = \"alice\"\n");
    let out = net
        .p2pd("alice")
        .args(["--config"])
        .args([&unknown_key])
        .run_to_exit();
    out.assert_code(78);
    assert!(out.stderr.contains("nmae"), "names the bad key:\n{out}");

    let not_toml = net.write_file("broken.toml", "name = \n");
    net.p2pd("alice")
        .args(["--config"])
        .args([&not_toml])
        .run_to_exit()
        .assert_code(78);

    let missing = net.path().join("no-such-config.toml");
    net.p2pd("alice")
        .args(["--config"])
        .args([&missing])
        .run_to_exit()
        .assert_code(78);

    net.p2pd("Not A Name!").run_to_exit().assert_code(78);
    net.p2pd("alice")
        .tracker("no-port")
        .run_to_exit()
        .assert_code(78);
    net.p2pd("alice")
        .args(["--tracker-key", "not-a-key"])
        .run_to_exit()
        .assert_code(78);
}

#[test]
fn p2pd_without_a_name_exits_78() {
    let net = TestNet::new();
    let out = net.run("p2pd", &["--tracker", "127.0.0.1:9"]);
    out.assert_code(78);
    assert!(out.stderr.contains("name"), "{out}");
    // No tracker is a valid setup (other sources find the peers), and says so.
    let out = net.run("p2pd", &["--name", "alice", "--check-config"]);
    out.assert_success();
    assert!(out.stdout.contains("no tracker configured"), "{out}");
}

#[test]
fn p2pd_check_config_prints_toml_and_the_file_it_read() {
    let net = TestNet::new();
    let out = net.run("p2pd", &["--name", "alice", "--check-config"]);
    out.assert_success();
    assert!(out.stdout.starts_with("# no config file read"), "{out}");
    let file = net.write_file(
        "p2pd.toml",
        "name = \"alice\"\ntracker = \"127.0.0.1:9\"\n[limits]\nmessage-rate = 7\n",
    );
    let path = file.to_str().expect("utf-8 path");
    let args = [
        "--config",
        path,
        "--listen",
        "127.0.0.1:7000",
        "--check-config",
    ];
    let out = net.run("p2pd", &args);
    out.assert_success();
    assert!(
        out.stdout
            .starts_with(&format!("# read {path}, flags applied over it\n")),
        "{out}"
    );
    let resolved: toml::Table = toml::from_str(&out.stdout).expect("TOML");
    assert_eq!(resolved["name"].as_str(), Some("alice"), "{out}");
    assert_eq!(resolved["listen"].as_str(), Some("127.0.0.1:7000"), "{out}");
    let trackers = resolved["trackers"].as_array().expect("trackers");
    assert_eq!(trackers[0].as_str(), Some("127.0.0.1:9"), "{out}");
    let limits = resolved["limits"].as_table().expect("[limits]");
    assert_eq!(limits["message-rate"].as_integer(), Some(7), "{out}");
    assert_eq!(limits["message-burst"].as_integer(), Some(1000), "{out}");
    // The output is a config file that resolves to the same.
    let again = net.write_file("again.toml", &out.stdout);
    let out2 = net.run(
        "p2pd",
        &["--config", again.to_str().expect("utf-8"), "--check-config"],
    );
    out2.assert_success();
    let body = |o: &p2p_tests::CmdOutput| {
        let lines: Vec<&str> = o.stdout.lines().filter(|l| !l.starts_with('#')).collect();
        lines.join("\n")
    };
    assert_eq!(body(&out2), body(&out), "{out2}");
}

#[test]
fn p2pd_reads_its_default_config_strictly() {
    let net = TestNet::new();
    let dir = net.home().join(".config").join("p2pd");
    std::fs::create_dir_all(&dir).expect("mkdir");
    // $XDG_CONFIG_HOME/p2pd/config.toml with an unknown key: refused even without --config.
    std::fs::write(
        dir.join("config.toml"),
        "name = \"alice\"\ncolour = \"blue\"\n",
    )
    .expect("write");
    let out = net.run("p2pd", &["--tracker", "127.0.0.1:9"]);
    out.assert_code(78);
    assert!(out.stderr.contains("colour"), "{out}");
    // A good one supplies the name.
    std::fs::write(dir.join("config.toml"), "name = \"carol\"\n").expect("write");
    let daemon = net.p2pd("carol").name_from_config().spawn();
    assert_eq!(daemon.status()["name"], "carol");
    // Flags win over the file.
    let daemon = net.p2pd("dave").spawn();
    assert_eq!(daemon.status()["name"], "dave");
}

#[test]
fn trackerd_with_a_bad_config_exits_78() {
    let net = TestNet::new();
    for (file, text) in [
        ("unknown.toml", "lease-sec = 10\n"),
        ("unknown-limit.toml", "[limits]\nmax-conns = 5\n"),
        ("short-lease.toml", "lease-secs = 1\n"),
        ("long-lease.toml", "lease-secs = 3601\n"),
        (
            "fast-handshake.toml",
            "[limits]\nhandshake-timeout-ms = 99\n",
        ),
        ("no-connections.toml", "[limits]\nmax-connections = 0\n"),
        ("not-toml.toml", "lease-secs = \n"),
    ] {
        let path = net.write_file(file, text);
        let state = net.unique_dir("tracker");
        let out = net.run(
            "trackerd",
            &[
                "--listen".as_ref(),
                "127.0.0.1:0".as_ref(),
                "--state-dir".as_ref(),
                state.as_os_str(),
                "--config".as_ref(),
                path.as_os_str(),
            ],
        );
        assert_eq!(out.code(), Some(78), "{file} ({text:?}):\n{out}");
        assert!(!out.stderr.is_empty(), "{file}: says why:\n{out}");
    }
    // The edges of the ranges are accepted.
    let ok = net.spawn_tracker(Some(
        "lease-secs = 2\n[limits]\nhandshake-timeout-ms = 100\nmax-connections = 1\n",
    ));
    assert!(ok.addr.port() != 0);
}

#[test]
fn p2pd_stops_on_sigterm_with_exit_0_and_removes_its_socket() {
    let net = TestNet::new();
    let tracker = net.spawn_tracker(None);
    let mut daemon = net.spawn_p2pd("alice", &tracker.addr_string(), &[]);
    daemon.wait_tracker_state("registered", DEADLINE);
    assert!(daemon.socket.exists());
    // A connected control client must not hold up the shutdown.
    let _idle = daemon.rpc();
    let status = daemon.stop();
    assert_eq!(status.code(), Some(0), "exit status {status}");
    assert!(
        !daemon.socket.exists(),
        "{} left behind",
        daemon.socket.display()
    );
    net.ctl(&daemon, &["status"]).assert_code(3);
}

#[test]
fn trackerd_stops_on_sigterm_with_exit_0() {
    let net = TestNet::new();
    let mut tracker = net.spawn_tracker(None);
    let daemon = net.spawn_p2pd("alice", &tracker.addr_string(), &[]);
    daemon.wait_tracker_state("registered", DEADLINE);
    let status = tracker.stop();
    assert_eq!(status.code(), Some(0), "exit status {status}");
    daemon.wait_tracker_state("connecting", DEADLINE);
}

#[test]
fn a_second_p2pd_on_the_same_socket_fails_and_the_first_keeps_serving() {
    let net = TestNet::new();
    let tracker = net.spawn_tracker(None);
    let first = net.spawn_p2pd("alice", &tracker.addr_string(), &[]);
    let out = net
        .p2pd("bob")
        .tracker(&tracker.addr_string())
        .socket(&first.socket)
        .run_to_exit();
    assert_ne!(out.code(), Some(0), "{out}");
    assert!(out.stderr.contains("already running"), "{out}");
    assert!(
        first.socket.exists(),
        "the second daemon removed the socket"
    );
    assert_eq!(first.status()["name"], "alice");
    let status = net
        .ctl(&first, &["--json", "status"])
        .assert_success()
        .json();
    assert_eq!(status["name"], "alice", "{status}");
}

#[test]
fn a_killed_p2pd_can_be_restarted_on_its_stale_socket() {
    let net = TestNet::new();
    let tracker = net.spawn_tracker(None);
    let mut daemon = net.spawn_p2pd("alice", &tracker.addr_string(), &[]);
    let id = daemon.id();
    daemon.kill();
    assert!(daemon.socket.exists(), "SIGKILL leaves the socket file");
    daemon.restart();
    assert_eq!(daemon.id(), id, "same identity");
    daemon.wait_tracker_state("registered", DEADLINE);
}

#[test]
fn the_activity_log_records_the_registration() {
    let net = TestNet::new();
    let tracker = net.spawn_tracker(None);
    let mut daemon = net.spawn_p2pd("alice", &tracker.addr_string(), &[]);
    daemon.wait_tracker_state("registered", DEADLINE);
    // The log is written by a background thread; stopping the daemon flushes it.
    assert!(daemon.stop().success());
    let logs: Vec<_> = std::fs::read_dir(&daemon.state_dir)
        .expect("read the state directory")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("activity.log."))
        .collect();
    assert_eq!(logs.len(), 1, "one activity log file: {logs:?}");
    let name = logs[0].file_name().to_string_lossy().into_owned();
    let date = name.trim_start_matches("activity.log.");
    assert!(
        date.len() == 10 && date.as_bytes()[4] == b'-' && date.as_bytes()[7] == b'-',
        "dated YYYY-MM-DD: {name}"
    );
    let text = std::fs::read_to_string(logs[0].path()).expect("read the log");
    assert!(
        text.lines()
            .any(|l| l.contains("register") && l.contains("ok")),
        "no successful registration in the activity log:\n{text}"
    );
    // The identity key is never logged.
    let seed = std::fs::read(daemon.state_dir.join("identity.key")).expect("read the key");
    let hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(seed.len(), 32);
    assert!(
        !text.contains(&hex),
        "the secret key is in the activity log"
    );

    // The tracker keeps one too.
    let tracker_log = std::fs::read_dir(&tracker.state_dir)
        .expect("read")
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with("activity.log."))
        .expect("the tracker has an activity log");
    drop(tracker);
    let text = std::fs::read_to_string(tracker_log.path()).expect("read the log");
    assert!(text.contains("register"), "{text}");
    assert!(text.contains("alice"), "{text}");
}
