//! Root-only fixtures for faults the daemons must survive: a small tmpfs ([`Tmpfs`]) to fill
//! a disk, and a network namespace whose loopback is rate-limited ([`NetNs`]) so a transfer
//! takes seconds instead of milliseconds and can be caught half-way by its progress events.
//! Both undo themselves on drop, also when the test fails. Tests run as root; without it these panic with the command that failed.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs `program args`, panicking with the command and its stderr unless it succeeds.
#[track_caller]
fn run(program: &str, args: &[&str]) {
    crate::netns::run(Command::new(program).args(args));
}

/// A tmpfs of a fixed size mounted on a fresh directory; unmounted on drop.
///
/// Mount it before starting a daemon inside a [`NetNs`]: `ip netns exec` gives the daemon
/// its own copy of the mount table, taken when it starts.
#[derive(Debug)]
pub struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `mib` MiB on `dir` (created if missing).
    #[track_caller]
    pub fn mount(dir: &Path, mib: u64) -> Tmpfs {
        std::fs::create_dir_all(dir).expect("create the mount point");
        let dir_s = dir.to_str().expect("test paths are UTF-8");
        run(
            "mount",
            &["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs", dir_s],
        );
        Tmpfs {
            dir: dir.to_owned(),
        }
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Writes zeros to `name` in the tmpfs until the disk is full; returns the bytes written.
    #[track_caller]
    pub fn fill(&self, name: &str) -> u64 {
        use std::io::Write;
        let path = self.dir.join(name);
        let mut f = std::fs::File::create(&path)
            .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        let block = vec![0u8; 64 * 1024];
        let mut written = 0u64;
        loop {
            match f.write(&block) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("fill {}: {e}", path.display()),
            }
        }
        written
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy, so a file still open somewhere does not keep the mount.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .output();
    }
}

/// A network namespace with only its loopback, up, capped at a fixed rate; deleted on drop
/// (its processes keep it alive until they exit). Give its [`NetNs::prefix`] to
/// [`crate::TestNet::in_netns`] to run every daemon of a test inside it.
#[derive(Debug)]
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// A new namespace whose loopback carries at most `mbit` megabits per second.
    #[track_caller]
    pub fn rate_limited(mbit: u32) -> NetNs {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "p2pt-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        run("ip", &["netns", "add", &name]);
        let ns = NetNs { name };
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns.exec(&[
            "tc",
            "qdisc",
            "add",
            "dev",
            "lo",
            "root",
            "tbf",
            "rate",
            &format!("{mbit}mbit"),
            "burst",
            "256kb",
            "latency",
            "20ms",
        ]);
        ns
    }

    #[track_caller]
    fn exec(&self, cmd: &[&str]) {
        let mut args = vec!["netns", "exec", &self.name];
        args.extend_from_slice(cmd);
        run("ip", &args);
    }

    /// The command prefix that runs a program inside the namespace (`ip netns exec NAME`,
    /// which execs the program: its pid is the program's).
    pub fn prefix(&self) -> Vec<OsString> {
        ["ip", "netns", "exec", &self.name]
            .into_iter()
            .map(OsString::from)
            .collect()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stdin(Stdio::null())
            .output();
    }
}
