//! `p2pctl send` and `accept --to` as a user runs them, between two real daemons: several
//! paths go as one transfer, and a symlink in a directory stays home, named on stderr; two
//! paths of one name are refused before anything is sent; `accept --to` a directory that
//! does not exist is refused (exit 1, with the hint) and makes nothing, and `--mkdir` makes
//! it; the progress bar in a pseudo-terminal 60 columns wide never draws a frame wider than
//! the terminal and ends with a summary of the time taken and the average rate; ctrl-c typed
//! at the terminal while the bar waits clears its line, draws no frame again, says the
//! transfer goes on, and exits 0.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use p2p_tests::chat::{self, Pair};
use p2p_tests::pty::PtyProc;
use p2p_tests::transfer::{
    TRANSFER_DEADLINE, assert_content, entries, id_of, list, wait_offer, wait_state, write_pattern,
};
use p2p_tests::{CmdOutput, DEADLINE, P2pd, TestNet, run_with_timeout};

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
    run_with_timeout(script(net, p2pd, args, cols), TRANSFER_DEADLINE)
}

/// util-linux `script` running `p2pctl --socket S ARGS` on `p2pd` in a new session whose
/// controlling terminal is a pseudo-terminal `cols` columns wide: p2pctl is its foreground
/// process, so a ctrl-c typed into `script` reaches it as SIGINT, as at a real terminal.
fn script(net: &TestNet, p2pd: &P2pd, args: &[&str], cols: u16) -> std::process::Command {
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
    cmd
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

/// The rows a terminal shows in the end after drawing `out`: a line feed starts a row, a
/// carriage return goes back to its first column, `ESC [ 2K` clears it and `ESC [ K` clears
/// it from the cursor on, text overwrites; other escapes are dropped. Trailing blanks are
/// trimmed.
fn screen(out: &str) -> Vec<String> {
    let mut rows: Vec<Vec<char>> = vec![Vec::new()];
    let mut col = 0;
    let mut chars = out.chars().peekable();
    while let Some(c) = chars.next() {
        let row = rows.last_mut().expect("one row at least");
        match c {
            '\u{1b}' if chars.peek() == Some(&'[') => {
                chars.next();
                let mut params = String::new();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        match (c, params.as_str()) {
                            ('K', "2") => row.clear(),
                            ('K', "" | "0") => row.truncate(col),
                            _ => {}
                        }
                        break;
                    }
                    params.push(c);
                }
            }
            '\u{1b}' => {
                chars.next();
            }
            '\r' => col = 0,
            '\n' => {
                rows.push(Vec::new());
                col = 0;
            }
            c => {
                if col < row.len() {
                    row[col] = c;
                } else {
                    row.resize(col, ' ');
                    row.push(c);
                }
                col += 1;
            }
        }
    }
    rows.into_iter()
        .map(|r| r.into_iter().collect::<String>().trim_end().to_owned())
        .collect()
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

#[test]
fn ctrl_c_on_the_bar_leaves_a_clean_line_and_the_transfer_going() {
    let net = TestNet::new();
    let p: Pair = chat::pair(&net);
    let src = net.unique_dir("src").join("held.bin");
    write_pattern(&src, 2 * MIB, 9);
    // Bob does not accept: the bar waits at 0 %, drawn once per change, never on a timer.
    let cmd = script(&net, &p.alice, &["send", src.to_str().unwrap(), "bob"], 80);
    let mut tty = PtyProc::spawn("p2pctl send in script", cmd);
    tty.wait_text(0, "waiting for bob to accept", TRANSFER_DEADLINE);
    tty.type_keys(b"\x03");
    let status = tty.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(0), "{}", tty.dump());
    // What the terminal shows in the end: the bar was drawn, and no frame of it is left (a
    // frame drawn again after the `^C` would stay on its own row); the last row says what
    // happened, from the first column.
    let output = tty.output();
    assert!(
        rows(&output).iter().any(|r| is_frame(r)),
        "no bar was drawn:\n{}",
        tty.dump()
    );
    let screen = screen(&output);
    assert!(
        !screen.iter().any(|r| is_frame(r)),
        "a frame of the bar is left on the terminal: {screen:#?}\n{}",
        tty.dump()
    );
    let last = screen.iter().rev().find(|r| !r.is_empty());
    let id = id_of(&list(&p.alice)[0]);
    let short = &id[..8];
    assert_eq!(
        last.map(String::as_str).unwrap_or_default(),
        format!(
            "stopped waiting; transfer {short} goes on in p2pd ('p2pctl transfers' shows it, \
             'p2pctl cancel {short}' stops it)"
        ),
        "{}",
        tty.dump()
    );
    // The transfer goes on: bob still has the offer.
    wait_offer(&p.bob, DEADLINE);
}

/// `p2pctl send PATHS... bob` on `from`.
fn send(net: &TestNet, from: &P2pd, paths: &[&Path]) -> CmdOutput {
    let mut args = vec!["send"];
    args.extend(
        paths
            .iter()
            .map(|p| p.to_str().expect("test paths are UTF-8")),
    );
    args.push("bob");
    net.ctl(from, &args)
}

#[test]
fn several_paths_go_as_one_transfer_and_a_skipped_symlink_is_named() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    net.ctl(&p.bob, &["trust", "alice", "--auto-accept"])
        .assert_success();
    let src = net.unique_dir("src");
    let report = write_pattern(&src.join("docs/report.pdf"), 300_000, 1);
    let a = write_pattern(&src.join("photos/a.jpg"), 2 * MIB, 2);
    let b = write_pattern(&src.join("photos/sub/b.raw"), 1000, 3);
    std::os::unix::fs::symlink(src.join("docs/report.pdf"), src.join("photos/sub/link"))
        .expect("symlink");
    let report_path = src.join("docs/report.pdf");
    let photos = src.join("photos");
    let out = send(&net, &p.alice, &[&report_path, &photos]);
    out.assert_success();
    assert_eq!(
        out.stdout, "bob has all 3 files (2.3 MiB) verified\n",
        "{out}"
    );
    assert!(
        out.stderr
            .lines()
            .any(|l| l == "skipped photos/sub/link: symlink (not followed)"),
        "{out}"
    );
    let dl = p.bob.download_dir();
    assert_eq!(
        entries(dl),
        [
            "photos/",
            "photos/a.jpg",
            "photos/sub/",
            "photos/sub/b.raw",
            "report.pdf"
        ]
    );
    assert_content(&dl.join("report.pdf"), &report);
    assert_content(&dl.join("photos/a.jpg"), &a);
    assert_content(&dl.join("photos/sub/b.raw"), &b);
    // One transfer carried them all.
    assert_eq!(list(&p.bob).len(), 1, "{:#?}", list(&p.bob));

    // Two paths that would arrive under one name are refused before p2pd is asked.
    write_pattern(&src.join("other/report.pdf"), 10, 4);
    let out = send(
        &net,
        &p.alice,
        &[&report_path, &src.join("other/report.pdf")],
    );
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(
        out.stderr.contains("both would arrive as report.pdf"),
        "{out}"
    );
    assert_eq!(list(&p.alice).len(), 1, "nothing more was offered");
}

#[test]
fn accept_into_a_missing_directory_needs_mkdir() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    let src = net.unique_dir("src");
    let data = write_pattern(&src.join("f.bin"), 5000, 5);
    net.ctl(
        &p.alice,
        &[
            "send",
            src.join("f.bin").to_str().unwrap(),
            "bob",
            "--no-wait",
        ],
    )
    .assert_success();
    let id = id_of(&wait_offer(&p.bob, DEADLINE));
    let dest = net.unique_dir("dest").join("typo/deeper");
    let dest_text = dest.to_str().unwrap();
    let out = net.ctl(&p.bob, &["accept", &id, "--to", dest_text]);
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(
        out.stderr
            .contains("does not exist (create it, or accept with --mkdir)"),
        "{out}"
    );
    assert!(!dest.parent().unwrap().exists(), "nothing was made");
    // Still offered: the refusal decided nothing.
    wait_state(&p.bob, &id, "offered", DEADLINE);
    net.ctl(&p.bob, &["accept", &id, "--to", dest_text, "--mkdir"])
        .assert_success();
    wait_state(&p.bob, &id, "done", TRANSFER_DEADLINE);
    assert_content(&dest.join("f.bin"), &data);
}
