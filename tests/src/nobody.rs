//! Acting as another local user: programs run as `nobody` (uid and gid 65534, no groups)
//! through `setpriv` (util-linux). Needs root; [`Nobody::new`] says why not when it cannot.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{DEADLINE, TestNet, run_with_timeout};

/// The uid (and gid) of `nobody`.
pub const NOBODY: u32 = 65534;

/// Runs programs of a [`TestNet`] as `nobody`.
#[derive(Debug)]
pub struct Nobody<'a> {
    net: &'a TestNet,
}

impl<'a> Nobody<'a> {
    /// `None`, after printing why, when this process cannot act as another user (not root,
    /// or no `setpriv`). Opens the test directory to others (0755) so nobody can reach what
    /// the test puts there.
    pub fn new(net: &'a TestNet) -> Option<Nobody<'a>> {
        if Command::new("setpriv").arg("--version").output().is_err() {
            crate::netns::skip("setpriv (util-linux) is not installed");
            return None;
        }
        if svc::current_uid() != 0 {
            eprintln!("SKIPPED: acting as another user needs root");
            return None;
        }
        set_mode(net.path(), 0o755);
        Some(Nobody { net })
    }

    /// A command running `program` as nobody, with the test's isolated environment.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = self.net.isolated_command("setpriv");
        cmd.arg(format!("--reuid={NOBODY}"))
            .arg(format!("--regid={NOBODY}"))
            .arg("--clear-groups")
            .arg(program);
        cmd
    }

    /// `program`, or a copy of it in the test directory when nobody may not run it where it
    /// is (a build directory under a private home).
    pub fn runnable(&self, program: &Path) -> PathBuf {
        let mut probe = self.command("test");
        probe.arg("-x").arg(program);
        if run_with_timeout(probe, DEADLINE).status.success() {
            return program.to_owned();
        }
        let name = program.file_name().expect("a program file name");
        let copy = self.net.unique_dir("bin-nobody").join(name);
        std::fs::copy(program, &copy)
            .unwrap_or_else(|e| panic!("copy {} for nobody: {e}", program.display()));
        set_mode(copy.parent().expect("its directory"), 0o755);
        set_mode(&copy, 0o755);
        copy
    }
}

/// `chmod MODE PATH`, panicking with the path on failure.
pub fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}
