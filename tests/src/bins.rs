//! Building the daemons and the CLI for the tests: `cargo test` alone must work on a fresh
//! clone, where `target/debug/p2pd` and the others do not exist yet, and must not run
//! binaries older than the source after an edit.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::Path;
use std::process::Command;

/// The packages whose binaries the tests run.
const PACKAGES: [&str; 4] = ["p2pd", "trackerd", "p2pctl", "dht-testnet"];

/// Has cargo build the binaries of [`PACKAGES`] into `bins` (`<target>/<profile>`, or
/// `<target>/<triple>/<profile>`), with the profile and target that directory stands for.
/// Cargo does nothing when they are up to date; it is quiet then, and says what it compiles
/// otherwise. Panics, with cargo's exit status, when the build fails or cargo cannot run,
/// unless every binary is there already (then it warns and goes on with them).
pub(crate) fn build(bins: &Path) {
    let missing: Vec<&str> = PACKAGES
        .into_iter()
        .filter(|p| !bins.join(p).is_file())
        .collect();
    let mut cmd = command(bins);
    if missing.is_empty() {
        cmd.arg("--quiet");
    } else {
        // Straight to stderr: the test harness captures what `eprintln!` prints.
        let _ = writeln!(
            std::io::stderr(),
            "p2p-tests: {} not built yet in {}; building them: {cmd:?}",
            missing.join(", "),
            bins.display()
        );
    }
    let outcome = cmd.status();
    let failure = match outcome {
        Ok(status) if status.success() => return,
        Ok(status) => format!("`{cmd:?}` failed ({status})"),
        Err(e) => format!("cannot run `{cmd:?}`: {e}"),
    };
    assert!(
        missing.is_empty(),
        "{failure}; build the binaries with `cargo build --workspace --bins` (or point \
         P2P_BIN_DIR at them)"
    );
    let _ = writeln!(
        std::io::stderr(),
        "p2p-tests: {failure}; running the binaries already in {}",
        bins.display()
    );
}

/// Whether a directory name is a target triple for this machine, such as
/// `x86_64-unknown-linux-gnu`.
fn is_triple(name: &str) -> bool {
    name.starts_with(std::env::consts::ARCH)
        && name.split('-').any(|part| part == std::env::consts::OS)
}

/// `cargo build --locked --bins -p ...` for the workspace of this crate, into `bins`'s target
/// directory with its profile (and target triple, if it has one).
fn command(bins: &Path) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--locked", "--bins", "--manifest-path"])
        .arg(manifest);
    for p in PACKAGES {
        cmd.args(["-p", p]);
    }
    let profile = bins
        .file_name()
        .and_then(|n| n.to_str())
        .map(|n| if n == "debug" { "dev" } else { n })
        .unwrap_or("dev");
    cmd.args(["--profile", profile]);
    let Some(above) = bins.parent() else {
        return cmd;
    };
    // `<target>/<triple>/<profile>` when built with `--target`: the directory above the
    // profile is then named for this machine's architecture and system.
    let triple = above
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| is_triple(n));
    match (triple, above.parent()) {
        (Some(triple), Some(top)) => {
            cmd.arg("--target-dir").arg(top).args(["--target", triple]);
        }
        _ => {
            cmd.arg("--target-dir").arg(above);
        }
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(bins: &str) -> Vec<String> {
        command(Path::new(bins))
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn the_profile_and_target_directory_come_from_the_binaries_directory() {
        let debug = args("/nowhere/target/debug");
        let tail = &debug[debug.len() - 4..];
        assert_eq!(
            tail,
            ["--profile", "dev", "--target-dir", "/nowhere/target"]
        );
        assert!(debug.starts_with(&["build".into(), "--locked".into(), "--bins".into()]));
        let release = args("/nowhere/target/release");
        assert!(release.contains(&"release".to_owned()), "{release:?}");
        let triple = format!(
            "{}-unknown-{}-gnu",
            std::env::consts::ARCH,
            std::env::consts::OS
        );
        let cross = args(&format!("/nowhere/target/{triple}/debug"));
        let tail = &cross[cross.len() - 6..];
        assert_eq!(
            tail,
            [
                "--profile",
                "dev",
                "--target-dir",
                "/nowhere/target",
                "--target",
                &triple
            ]
        );
    }
}
