//! Multi-source `get` as the CLI runs it (with `--from`, or drawing from the peers that
//! hold the content): start one, wait for its end, read the transfer it printed, how
//! `transfers` lists it, and each source's share of it.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::transfer::TRANSFER_DEADLINE;
use crate::{P2pd, TestNet, poll};

/// `p2pctl --json get TARGET DEST` at `who`, its output piped.
fn get_command(net: &TestNet, who: &P2pd, target: &str, dest: &Path) -> Command {
    let mut c = net.command("p2pctl");
    c.arg("--socket")
        .arg(&who.socket)
        .args(["--json", "get", target])
        .arg(dest)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// `p2pctl --json get TARGET DEST --from FROM` at `who`, running.
pub fn start_get(net: &TestNet, who: &P2pd, target: &str, dest: &Path, from: &str) -> Child {
    get_command(net, who, target, dest)
        .args(["--from", from])
        .spawn()
        .expect("spawn p2pctl get")
}

/// `p2pctl --json get TARGET DEST` (no `--from`) at `who`, running.
pub fn start_plain_get(net: &TestNet, who: &P2pd, target: &str, dest: &Path) -> Child {
    get_command(net, who, target, dest)
        .spawn()
        .expect("spawn p2pctl get")
}

/// Waits for `child` to end (at most [`TRANSFER_DEADLINE`]); its status and output.
pub fn finish(child: Child) -> (bool, String, String) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx
        .recv_timeout(TRANSFER_DEADLINE)
        .expect("get ended in time")
        .expect("wait for p2pctl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The transfer of the last JSON line `get` printed.
pub fn answer(stdout: &str) -> Value {
    let line = stdout.lines().last().expect("get printed its transfer");
    serde_json::from_str(line).expect("JSON")
}

/// [`finish`], which must succeed: the transfer it printed.
#[track_caller]
pub fn finish_ok(child: Child) -> Value {
    let (ok, out, err) = finish(child);
    assert!(ok, "get failed:\n{out}\n{err}");
    answer(&out)
}

/// The first transfer `who`'s `transfers --json` lists that `pick` picks, once there is one
/// (at most [`TRANSFER_DEADLINE`]).
#[track_caller]
pub fn wait_listed(net: &TestNet, who: &P2pd, pick: impl Fn(&Value) -> bool) -> Value {
    poll(TRANSFER_DEADLINE, Duration::from_millis(50), || {
        let out = net.ctl(who, &["--json", "transfers"]);
        out.assert_success();
        let list = out.json();
        list.as_array()
            .and_then(|l| l.iter().find(|t| pick(t)))
            .cloned()
            .ok_or_else(|| format!("none picked of {list}"))
    })
}

/// Transfer `t` as `who`'s `transfers --json` lists it.
#[track_caller]
pub fn listed(net: &TestNet, who: &P2pd, t: &Value) -> Value {
    wait_listed(net, who, |l| l["id"] == t["id"])
}

/// Each source's (name, bytes, dropped) from a transfer.
pub fn sources(t: &Value) -> Vec<(String, u64, Option<String>)> {
    t["sources"]
        .as_array()
        .unwrap_or_else(|| panic!("no sources: {t}"))
        .iter()
        .map(|s| {
            (
                s["peer"].as_str().unwrap().to_owned(),
                s["bytes"].as_u64().unwrap(),
                s["dropped"].as_str().map(str::to_owned),
            )
        })
        .collect()
}
