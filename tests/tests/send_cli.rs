//! `p2pctl send` as a user runs it, between two real daemons: the progress bar in a
//! pseudo-terminal 60 columns wide never draws a frame wider than the terminal and ends with
//! a summary of the time taken and the average rate.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use p2p_tests::chat::{self, Pair};
use p2p_tests::transfer::{TRANSFER_DEADLINE, write_pattern};
use p2p_tests::{CmdOutput, P2pd, TestNet, run_with_timeout};

const MIB: usize = 1 << 20;

/// `word` quoted for `sh`.
fn quote(word: &OsStr) -> String {
    let text = String::from_utf8_lossy(word.as_bytes());
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Runs `p2pctl --socket S ARGS` on `p2pd` in a pseudo-terminal `cols` columns wide
/// (util-linux `script`); stdout and stderr both come back as the terminal's output, in
/// `stdout`.
fn ctl_in_pty(net: &TestNet, p2pd: &P2pd, args: &[&str], cols: u16) -> CmdOutput {
    let ctl = net.command("p2pctl");
    let mut line = format!(
        "stty cols {cols} rows 24; exec {}",
        quote(ctl.get_program())
    );
    for a in ctl.get_args() {
        line.push(' ');
        line.push_str(&quote(a));
    }
    for a in [OsStr::new("--socket"), p2pd.socket.as_os_str()]
        .into_iter()
        .chain(args.iter().map(OsStr::new))
    {
        line.push(' ');
        line.push_str(&quote(a));
    }
    let mut cmd = net.isolated_command("script");
    cmd.args(["--quiet", "--return", "--command", &line, "/dev/null"]);
    run_with_timeout(cmd, TRANSFER_DEADLINE)
}

/// What a terminal shows of `out`: each row as drawn between carriage returns and line
/// feeds, with escape sequences (colours, cursor moves, line clears) removed.
fn rows(out: &str) -> Vec<String> {
    let mut rows = Vec::new();
    let mut cur = String::new();
    let mut chars = out.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI: ESC [ parameters, then one final byte in @..~.
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            '\r' | '\n' => {
                if !cur.is_empty() {
                    rows.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        rows.push(cur);
    }
    rows
}

/// Whether `row` is a frame of the bar: it starts with a percentage.
fn is_frame(row: &str) -> bool {
    let t = row.trim_start();
    t.find('%')
        .is_some_and(|i| i > 0 && i <= 3 && t[..i].bytes().all(|b| b.is_ascii_digit()))
}

#[test]
fn the_bar_fits_60_columns_and_ends_with_time_and_average_rate() {
    let net = TestNet::new();
    let p: Pair = chat::pair(&net);
    net.ctl(&p.bob, &["trust", "alice", "--auto-accept"])
        .assert_success();
    let src = net.unique_dir("src").join("big.bin");
    write_pattern(&src, 48 * MIB, 7);
    let out = ctl_in_pty(&net, &p.alice, &["send", src.to_str().unwrap(), "bob"], 60);
    out.assert_success();
    let rows = rows(&out.stdout);
    let frames: Vec<&String> = rows.iter().filter(|r| is_frame(r)).collect();
    assert!(!frames.is_empty(), "no bar was drawn:\n{out}");
    for f in &frames {
        assert!(
            f.chars().count() <= 60,
            "a frame wider than 60 columns ({}): {f:?}\n{out}",
            f.chars().count()
        );
    }
    assert!(
        frames.iter().any(|f| f.contains('[') && f.contains(']')),
        "60 columns still have room for the bar itself:\n{out}"
    );
    let summary = rows
        .iter()
        .find(|r| r.starts_with("sent big.bin to bob: 48.0 MiB in "))
        .unwrap_or_else(|| panic!("no summary line:\n{out}"));
    assert!(summary.ends_with("/s)"), "{summary:?}");
    assert!(
        rows.iter()
            .any(|r| r == "bob has the file (48.0 MiB) verified"),
        "{out}"
    );
}
