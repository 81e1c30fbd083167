//! `scripts/install`: with `--no-build --bin-dir` it installs the built binaries, the units
//! with their `ExecStart=` pointing into the prefix, completions for three shells and man
//! pages in the standard places; a second run changes nothing and says so; `--dry-run`
//! writes nothing; `--user` puts the p2pd user unit under `$XDG_CONFIG_HOME`; `--destdir`
//! stages the tree while the units keep the prefix.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use p2p_tests::{CmdOutput, DEADLINE, TestNet, run_with_timeout};

const BINS: [&str; 3] = ["p2pd", "p2pctl", "trackerd"];

/// Runs `scripts/install ARGS --no-build --bin-dir <the test binaries>`.
fn install(net: &TestNet, args: &[&Path]) -> CmdOutput {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/install");
    let bins = net.bin("p2pd");
    let bins = bins.parent().expect("binary directory");
    let mut cmd = net.isolated_command("bash");
    cmd.arg(script)
        .args(args)
        .arg("--no-build")
        .arg("--bin-dir")
        .arg(bins);
    run_with_timeout(cmd, DEADLINE)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The files a system install puts under `prefix`, with a text each must hold (`None` for
/// the binaries).
fn expected(prefix: &Path) -> Vec<(PathBuf, Option<String>)> {
    let mut files = Vec::new();
    for name in BINS {
        files.push((prefix.join("bin").join(name), None));
        let share = prefix.join("share");
        files.push((
            share.join("bash-completion/completions").join(name),
            Some(format!("_{name}()")),
        ));
        files.push((
            share.join("zsh/site-functions").join(format!("_{name}")),
            Some(format!("#compdef {name}")),
        ));
        files.push((
            share
                .join("fish/vendor_completions.d")
                .join(format!("{name}.fish")),
            Some(format!("complete -c {name}")),
        ));
        files.push((
            share.join("man/man1").join(format!("{name}.1")),
            Some(format!(".TH {name} 1")),
        ));
    }
    let bin = prefix.join("bin");
    files.push((
        prefix.join("lib/systemd/system/trackerd.service"),
        Some(format!("ExecStart={}/trackerd ", bin.display())),
    ));
    files.push((
        prefix.join("lib/systemd/user/p2pd.service"),
        Some(format!("ExecStart={}/p2pd ", bin.display())),
    ));
    files
}

#[test]
fn installs_a_tree_under_a_prefix_and_again_changes_nothing() {
    let net = TestNet::new();
    let prefix = net.path().join("prefix");
    let out = install(&net, &[Path::new("--prefix"), &prefix]);
    out.assert_success();
    let files = expected(&prefix);
    for (path, needle) in &files {
        assert!(
            out.stdout
                .contains(&format!("installed  {}", path.display())),
            "not reported: {}\n{out}",
            path.display()
        );
        match needle {
            None => {
                let name = path.file_name().and_then(|n| n.to_str()).expect("name");
                let mode = std::fs::metadata(path).expect("stat").permissions().mode();
                assert_eq!(mode & 0o777, 0o755, "{}", path.display());
                let original = std::fs::read(net.bin(name)).expect("read the built binary");
                assert!(
                    std::fs::read(path).expect("read") == original,
                    "{name} differs"
                );
            }
            Some(text) => {
                let body = read(path);
                assert!(
                    body.contains(text.as_str()),
                    "{} lacks {text:?}:\n{body}",
                    path.display()
                );
                assert!(
                    !body.contains("/usr/local/bin/"),
                    "{} keeps /usr/local/bin",
                    path.display()
                );
            }
        }
    }
    // The installed p2pctl runs and prints the installed completion script.
    let ctl = prefix.join("bin/p2pctl");
    let mut run = net.isolated_command(&ctl);
    run.args(["completions", "bash"]);
    let again = run_with_timeout(run, DEADLINE);
    again.assert_success();
    assert_eq!(
        again.stdout,
        read(&prefix.join("share/bash-completion/completions/p2pctl"))
    );

    let second = install(&net, &[Path::new("--prefix"), &prefix]);
    second.assert_success();
    assert!(
        !second.stdout.contains("installed  "),
        "a second run rewrote files:\n{second}"
    );
    for (path, _) in &files {
        assert!(
            second
                .stdout
                .contains(&format!("unchanged  {}", path.display())),
            "{}\n{second}",
            path.display()
        );
    }
}

#[test]
fn a_dry_run_writes_nothing() {
    let net = TestNet::new();
    let prefix = net.path().join("dry");
    let out = install(
        &net,
        &[Path::new("--dry-run"), Path::new("--prefix"), &prefix],
    );
    out.assert_success();
    for (path, _) in expected(&prefix) {
        assert!(
            out.stdout
                .contains(&format!("would install  {}", path.display())),
            "{}\n{out}",
            path.display()
        );
    }
    assert!(!prefix.exists(), "a dry run made {}", prefix.display());
}

#[test]
fn a_user_install_puts_the_user_unit_in_the_config_home() {
    let net = TestNet::new();
    let prefix = net.home().join(".local");
    let out = install(&net, &[Path::new("--user")]);
    out.assert_success();
    let unit = net.home().join(".config/systemd/user/p2pd.service");
    let body = read(&unit);
    assert!(
        body.contains(&format!("ExecStart={}/bin/p2pd ", prefix.display())),
        "{body}"
    );
    assert!(prefix.join("bin/p2pd").is_file(), "{out}");
    assert!(prefix.join("share/man/man1/p2pd.1").is_file(), "{out}");
    assert!(
        !prefix.join("lib/systemd").exists(),
        "no system units in a user install:\n{out}"
    );
    // Bad usage is refused before anything is done.
    let out = install(&net, &[Path::new("--frobnicate")]);
    out.assert_code(2);
    assert!(out.stderr.contains("--frobnicate"), "{out}");
}

#[test]
fn a_staged_install_keeps_the_prefix_in_the_units() {
    let net = TestNet::new();
    let stage = net.path().join("stage");
    let out = install(
        &net,
        &[
            Path::new("--prefix"),
            Path::new("/usr"),
            Path::new("--destdir"),
            &stage,
        ],
    );
    out.assert_success();
    for (path, needle) in expected(Path::new("/usr")) {
        let staged = stage.join(path.strip_prefix("/").expect("absolute"));
        assert!(staged.is_file(), "{} not staged:\n{out}", staged.display());
        if let Some(text) = needle {
            let body = read(&staged);
            assert!(body.contains(&text), "{} lacks {text:?}", staged.display());
        }
    }
    assert!(
        read(&stage.join("usr/lib/systemd/system/trackerd.service"))
            .contains("ExecStart=/usr/bin/trackerd ")
    );
}
