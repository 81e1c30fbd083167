//! The scp baseline, measured in the same run when an `sshd` can be started (the TCP pipe
//! baseline is [`bench::pipe`], shared with share-bench).

use std::fs::File;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// What became of the scp baseline.
#[derive(Debug, Clone)]
pub enum Scp {
    /// Not run, and why.
    Skipped(String),
    /// Copied: the scp command alone, and scp plus `sync FILE` (the pipe syncs too).
    Ran {
        /// Bytes copied.
        bytes: u64,
        /// The scp command.
        scp: Duration,
        /// scp, then `sync` of the copy.
        with_sync: Duration,
    },
}

/// The `sshd` binary, if there is one.
fn find_sshd() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join("sshd"))
        .find(|p| p.is_file())
}

/// Copies `src` to `dst` with scp (aes128-gcm) through an sshd of our own on a loopback
/// port, with keys made in `dir`. Skipped, with the reason, when there is no sshd or it
/// does not start.
pub fn scp(src: &Path, dst: &Path, dir: &Path) -> Scp {
    let Some(sshd) = find_sshd() else {
        return Scp::Skipped("no sshd on this machine (openssh-server is not installed)".into());
    };
    match run_scp(&sshd, src, dst, dir) {
        Ok(s) => s,
        Err(e) => Scp::Skipped(format!("{}: {e:#}", sshd.display())),
    }
}

fn keygen(path: &Path) -> anyhow::Result<()> {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .stdout(Stdio::null())
        .status()
        .context("cannot run ssh-keygen")?;
    if !st.success() {
        bail!("ssh-keygen failed: {st}");
    }
    Ok(())
}

fn run_scp(sshd: &Path, src: &Path, dst: &Path, dir: &Path) -> anyhow::Result<Scp> {
    std::fs::create_dir_all(dir)?;
    let host_key = dir.join("host_key");
    let client_key = dir.join("client_key");
    keygen(&host_key)?;
    keygen(&client_key)?;
    let authorized = dir.join("authorized_keys");
    std::fs::copy(dir.join("client_key.pub"), &authorized)?;
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port();
    let config = dir.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
             PidFile {}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPermitRootLogin yes\n",
            host_key.display(),
            authorized.display(),
            dir.join("sshd.pid").display()
        ),
    )?;
    let log = File::create(dir.join("sshd.log"))?;
    let mut child = Command::new(sshd)
        .args(["-D", "-e", "-f"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("cannot start sshd")?;
    let result = (|| -> anyhow::Result<Scp> {
        let ready = Instant::now();
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            if let Some(st) = child.try_wait()? {
                let log = std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default();
                bail!("sshd exited with {st}: {}", log.trim());
            }
            if ready.elapsed() > Duration::from_secs(5) {
                bail!("sshd does not accept connections after 5 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let user = Command::new("id").arg("-un").output()?.stdout;
        let user = String::from_utf8(user)?.trim().to_string();
        let started = Instant::now();
        let st = Command::new("scp")
            .args(["-q", "-B", "-c", "aes128-gcm@openssh.com"])
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
            ])
            .arg("-i")
            .arg(&client_key)
            .arg("-P")
            .arg(port.to_string())
            .arg(src)
            .arg(format!("{user}@127.0.0.1:{}", dst.display()))
            .stdin(Stdio::null())
            .status()
            .context("cannot run scp")?;
        let scp = started.elapsed();
        if !st.success() {
            bail!("scp failed: {st}");
        }
        let st = Command::new("sync").arg(dst).status()?;
        let with_sync = started.elapsed();
        if !st.success() {
            bail!("sync {} failed: {st}", dst.display());
        }
        Ok(Scp::Ran {
            bytes: std::fs::metadata(dst)?.len(),
            scp,
            with_sync,
        })
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// What became of the socat baseline.
#[derive(Debug, Clone)]
pub enum Socat {
    /// Not run, and why.
    Skipped(String),
    /// Copied with `socat -b 1048576` at both ends of a loopback TCP connection.
    Ran {
        /// Bytes copied.
        bytes: u64,
        /// Wall-clock time of the copy.
        wall: Duration,
        /// CPU time (user + system) of both socat processes together.
        cpu: Duration,
    },
}

/// Copies `src` to `dst` through a loopback TCP connection between two `socat -b 1048576`
/// and reports their CPU time together (from the shell's `times`). Skipped, with the reason,
/// when socat is missing or fails.
pub fn socat(src: &Path, dst: &Path) -> Socat {
    match run_socat(src, dst) {
        Ok(s) => s,
        Err(e) => Socat::Skipped(format!("{e:#}")),
    }
}

fn run_socat(src: &Path, dst: &Path) -> anyhow::Result<Socat> {
    let found = Command::new("socat")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !found.is_ok_and(|s| s.success()) {
        bail!("socat is not installed (apt-get install socat)");
    }
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port();
    // The receiving socat listens first; the sender retries its connect until it is up.
    let script = format!(
        "socat -u -b 1048576 TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr CREATE:\"$2\" & r=$!; \
         socat -u -b 1048576 OPEN:\"$1\" TCP:127.0.0.1:{port},retry=200,interval=0.01 || exit 1; \
         wait $r || exit 1; times"
    );
    let started = Instant::now();
    let out = Command::new("bash")
        .args(["-c", &script, "socat-baseline"])
        .arg(src)
        .arg(dst)
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run bash")?;
    let wall = started.elapsed();
    if !out.status.success() {
        bail!("socat failed: {}", out.status);
    }
    // `times`: the shell's user and system time, then its children's.
    let text = String::from_utf8_lossy(&out.stdout);
    let children = text.lines().nth(1).context("no output from times")?;
    let cpu = children
        .split_whitespace()
        .map(parse_times)
        .sum::<Option<Duration>>()
        .with_context(|| format!("cannot read {children:?}"))?;
    let bytes = File::open(dst)?.metadata()?.len();
    Ok(Socat::Ran { bytes, wall, cpu })
}

/// `1m2.345s` (bash's `times`) as a duration.
fn parse_times(s: &str) -> Option<Duration> {
    let (m, rest) = s.split_once('m')?;
    let secs: f64 = rest.strip_suffix('s')?.parse().ok()?;
    let mins: f64 = m.parse().ok()?;
    Some(Duration::from_secs_f64(mins * 60.0 + secs))
}
