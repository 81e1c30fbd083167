//! p2pctl's generated documents and its `--json` errors: `completions SHELL` prints a script
//! for each shell (the bash one parses and names the commands), `manpage` one roff page that
//! covers every command, an unknown shell is a usage error; with `--json` a failing command
//! prints one `{"error": {"code", "message", "hint"}}` document on stdout, nothing on stderr,
//! and exits with the contract's code (2 usage, 3 unreachable, 1 a failed operation).

use std::process::Command;

use p2p_tests::chat;
use p2p_tests::{CmdOutput, DEADLINE, TestNet, run_with_timeout};
use serde_json::Value;

/// The commands `p2pctl --help` lists, `help` aside.
fn commands(net: &TestNet) -> Vec<String> {
    let help = net.run("p2pctl", &["--help"]);
    help.assert_success();
    let list: Vec<String> = help
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect();
    assert!(list.len() > 20, "too few commands in the help:\n{help}");
    list
}

/// The error object of a `--json` failure that exited `exit`: one JSON document on stdout,
/// stderr empty.
#[track_caller]
fn json_error(out: &CmdOutput, exit: i32) -> Value {
    out.assert_code(exit);
    assert!(
        out.stderr.is_empty(),
        "stderr should be quiet with --json:\n{out}"
    );
    assert_eq!(out.stdout.lines().count(), 1, "one document:\n{out}");
    let doc = out.json();
    let error = doc["error"].clone();
    assert!(error["code"].is_i64(), "no code:\n{out}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "no message:\n{out}"
    );
    assert!(
        error.get("hint").is_none_or(Value::is_string),
        "hint not text:\n{out}"
    );
    error
}

#[test]
fn completion_scripts_for_every_shell() {
    let net = TestNet::new();
    let bash = net.run("p2pctl", &["completions", "bash"]);
    bash.assert_success();
    assert!(
        bash.stdout.contains("_p2pctl()"),
        "no completion function:\n{bash}"
    );
    for name in commands(&net) {
        assert!(bash.stdout.contains(&name), "bash script lacks {name}");
    }
    let has_bash = Command::new("bash").arg("--version").output().is_ok();
    if has_bash {
        let script = net.write_file("p2pctl.bash", &bash.stdout);
        let mut check = net.isolated_command("bash");
        check.arg("-n").arg(&script);
        run_with_timeout(check, DEADLINE).assert_success();
    }
    for (shell, needle) in [
        ("zsh", "#compdef p2pctl"),
        ("fish", "complete -c p2pctl"),
        ("elvish", "p2pctl"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = net.run("p2pctl", &["completions", shell]);
        out.assert_success();
        assert!(out.stdout.contains(needle), "{shell} script:\n{out}");
        assert!(out.stdout.contains("versions"), "{shell} script:\n{out}");
    }
    let out = net.run("p2pctl", &["completions", "tcsh"]);
    out.assert_code(2);
    assert!(out.stderr.contains("tcsh"), "{out}");
    assert!(out.stdout.is_empty(), "{out}");
}

#[test]
fn the_man_page_covers_every_command() {
    let net = TestNet::new();
    let out = net.run("p2pctl", &["manpage"]);
    out.assert_success();
    let page = &out.stdout;
    let title = page
        .lines()
        .find(|l| !l.starts_with(".ie") && !l.starts_with(".el"));
    assert!(
        title.is_some_and(|l| l.starts_with(".TH p2pctl 1")),
        "{out}"
    );
    assert_eq!(page.matches(".TH ").count(), 1, "one document:\n{out}");
    for name in commands(&net) {
        let escaped = name.replace('-', "\\-");
        assert!(
            page.contains(&format!(".SS \"p2pctl {escaped}\"")),
            "no section for {name}:\n{out}"
        );
    }
    assert!(page.contains(".SS \"p2pctl share add\""), "{out}");
    assert!(page.contains("\\-\\-keep\\-versions"), "{out}");
}

#[test]
fn json_errors_without_a_daemon() {
    let net = TestNet::new();
    let missing = net.path().join("nowhere").join("p2pd.sock");
    let error = json_error(&net.ctl_at(&missing, &["--json", "status"]), 3);
    assert_eq!(error["code"], 2002);
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot reach p2pd")),
        "{error}"
    );
    assert!(
        error["hint"]
            .as_str()
            .is_some_and(|h| h.contains("p2pd --name")),
        "{error}"
    );
    // Usage errors, wherever --json stands.
    for args in [
        &["--json", "frobnicate"][..],
        &["msg", "bob", "--json"],
        &["--json"],
        &["completions", "tcsh", "--json"],
    ] {
        let error = json_error(&net.ctl_at(&missing, args), 2);
        assert_eq!(error["code"], 2001, "{args:?}: {error}");
    }
    let error = json_error(&net.ctl_at(&missing, &["--json", "stauts"]), 2);
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("stauts")),
        "{error}"
    );
    // A missing local path is the user's error, found before p2pd is asked.
    let nothing = net.path().join("no-such-file");
    let args = ["--json", "send", nothing.to_str().expect("utf-8"), "bob"];
    let error = json_error(&net.ctl_at(&missing, &args), 1);
    assert_eq!(error["code"], 2004, "{error}");
    // Without --json, text on stderr as before.
    let out = net.ctl_at(&missing, &["frobnicate"]);
    out.assert_code(2);
    assert!(
        out.stdout.is_empty() && out.stderr.contains("frobnicate"),
        "{out}"
    );
}

#[test]
fn json_errors_from_the_daemon() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    // A peer nobody knows: the application code, with the hint text p2pctl prints.
    let error = json_error(&net.ctl(&p.alice, &["--json", "msg", "nobody", "hi"]), 1);
    assert_eq!(error["code"], proto::rpc::code::UNKNOWN_PEER, "{error}");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("nobody")),
        "{error}"
    );
    assert!(
        error["hint"]
            .as_str()
            .is_some_and(|h| h.contains("p2pctl peers")),
        "{error}"
    );
    // A share bob was not granted.
    let error = json_error(&net.ctl(&p.bob, &["--json", "ls", "alice:docs"]), 1);
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("permission denied: docs on alice")),
        "{error}"
    );
    // The same refusal in text keeps stdout empty.
    let out = net.ctl(&p.bob, &["ls", "alice:docs"]);
    out.assert_code(1);
    assert!(
        out.stdout.is_empty() && out.stderr.contains("permission denied"),
        "{out}"
    );
}
