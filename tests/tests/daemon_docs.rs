//! The daemons' generated documents: `p2pd` and `trackerd` each print a man page
//! (`--generate-manpage`) and completion scripts (`--generate-completions SHELL`) that name
//! their own flags, without reading any configuration; the flags stand alone.

use p2p_tests::{DEADLINE, TestNet, run_with_timeout};

/// Each daemon with a flag only it has.
const DAEMONS: [(&str, &str); 2] = [("p2pd", "--download-dir"), ("trackerd", "--admin-socket")];

#[test]
fn each_daemon_prints_its_man_page() {
    let net = TestNet::new();
    for (daemon, flag) in DAEMONS {
        let out = net.run(daemon, &["--generate-manpage"]);
        out.assert_success();
        let title = out
            .stdout
            .lines()
            .find(|l| !l.starts_with(".ie") && !l.starts_with(".el"));
        assert!(
            title.is_some_and(|l| l.starts_with(&format!(".TH {daemon} 1"))),
            "{out}"
        );
        assert!(out.stdout.contains(&flag.replace('-', "\\-")), "{out}");
        assert!(out.stderr.is_empty(), "{out}");
    }
}

#[test]
fn each_daemon_prints_completion_scripts() {
    let net = TestNet::new();
    for (daemon, flag) in DAEMONS {
        let bash = net.run(daemon, &["--generate-completions", "bash"]);
        bash.assert_success();
        assert!(bash.stdout.contains(&format!("_{daemon}()")), "{bash}");
        assert!(bash.stdout.contains(flag), "{bash}");
        let script = net.write_file(&format!("{daemon}.bash"), &bash.stdout);
        let mut check = net.isolated_command("bash");
        check.arg("-n").arg(&script);
        run_with_timeout(check, DEADLINE).assert_success();
        for (shell, needle) in [
            ("zsh", format!("#compdef {daemon}")),
            ("fish", format!("complete -c {daemon}")),
        ] {
            let out = net.run(daemon, &["--generate-completions", shell]);
            out.assert_success();
            assert!(out.stdout.contains(&needle), "{out}");
        }
        // An unknown shell, or the flag beside others, is a usage error.
        let out = net.run(daemon, &["--generate-completions", "tcsh"]);
        out.assert_code(2);
        assert!(
            out.stdout.is_empty() && out.stderr.contains("tcsh"),
            "{out}"
        );
        let out = net.run(
            daemon,
            &["--generate-manpage", "--state-dir", "/nonexistent"],
        );
        out.assert_code(2);
        assert!(out.stdout.is_empty(), "{out}");
    }
}
