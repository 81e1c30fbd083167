//! Network-fault test hosts: a small network of Linux network namespaces, one per host, each
//! joined by a veth pair to a bridge in a "switch" namespace, and faults put on those links
//! (link down, random packet loss, a bandwidth cap).
//!
//! ```text
//!  [host tracker 10.77.0.1] eth0 ──── h0 ┐
//!  [host alice   10.77.0.2] eth0 ──── h1 ├─ br0  [switch]
//!  [host bob     10.77.0.3] eth0 ──── h2 ┘
//! ```
//!
//! Every namespace of a [`Lab`] is named `p2pt-PID-N-...` (test process id, a counter), and
//! every interface is made directly inside its own namespace, so labs of concurrent tests
//! never share a name; all of them are deleted when the [`Lab`] drops, panic or not (and a
//! lab left behind by a killed test process is deleted, with the daemons still running in
//! it, by the next lab made). Processes run
//! in a host through `ip netns exec NS` ([`Host::prefix`], for [`crate::P2pdSpec::prefix`]
//! and [`crate::TestNet::spawn_tracker_via`]); control sockets are files, so the test
//! process reaches them from its own namespace.
//!
//! The tools are `ip` and `tc` (iproute2) and `nft` (nftables). This kernel may lack netem,
//! so there is no added delay: loss is an nftables `numgen random` drop rule, the bandwidth
//! cap a `tbf` qdisc on both ends of the link, and an outage the switch's end set down (the
//! cable pulled). Making namespaces needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN);
//! [`Lab::or_skip`] says why not, so tests can skip where it is missing (but not in CI as
//! root, see [`skip`]).

use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::{DEADLINE, P2pd, TestNet, Tracker, run_with_input};

/// Lets a test skip, printing `skipped: REASON`, when what it needs is missing here; but in
/// CI as root (`CI=true` and uid 0), where `.ci/run` installs every tool the tests use, a
/// skip would hide a broken test, so it panics with the reason instead.
#[track_caller]
pub fn skip(reason: &str) {
    if must_run(std::env::var("CI").ok().as_deref(), svc::current_uid()) {
        panic!("this test must run in CI as root, but cannot: {reason}");
    }
    eprintln!("skipped: {reason}");
}

/// Whether a test may not skip: `CI` is `true` (or `1`) and the (effective) uid is 0.
fn must_run(ci: Option<&str>, uid: u32) -> bool {
    matches!(ci, Some("true" | "1")) && uid == 0
}

/// The interface name of every host's end of its link.
pub const HOST_IF: &str = "eth0";
const BRIDGE: &str = "br0";
const PREFIX: &str = "p2pt-";
const SUBNET: [u8; 3] = [10, 77, 0];
/// The nftables table holding a host's loss rules.
const FAULT_TABLE: &str = "p2p_faults";

static LABS: AtomicUsize = AtomicUsize::new(0);

/// A switch namespace with a bridge, and the hosts plugged into it. Dropping it deletes every
/// namespace it made (processes still running in one keep it alive, unnamed, until they
/// exit); drop it after the processes (declare it before the [`crate::TestNet`]).
#[derive(Debug)]
pub struct Lab {
    tag: String,
    switch: String,
    /// Namespaces to delete, the switch first.
    made: Vec<String>,
}

/// One host: a network namespace with one interface, [`HOST_IF`], on the lab's switch.
#[derive(Debug, Clone)]
pub struct Host {
    /// The name given to [`Lab::host`].
    pub label: String,
    /// Its network namespace.
    pub ns: String,
    /// Its address (a /24 shared by the lab).
    pub addr: Ipv4Addr,
    switch: String,
    /// The switch's end of the link (a bridge port in the switch namespace).
    port: String,
}

impl Lab {
    /// A new lab with its switch, or why none can be made here: a program of `ip` and
    /// `needs` (such as `tc`, `nft`) is missing, or `ip netns add` fails (not root).
    pub fn new(needs: &[&str]) -> Result<Lab, String> {
        for tool in std::iter::once(&"ip").chain(needs) {
            if !on_path(tool) {
                return Err(format!(
                    "`{tool}` is not installed (iproute2 gives ip and tc, nftables gives nft)"
                ));
            }
        }
        sweep_stale();
        let tag = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            LABS.fetch_add(1, Ordering::Relaxed)
        );
        let switch = format!("{tag}-sw");
        let out = quiet(Command::new("ip").args(["netns", "add", &switch]));
        if let Err(e) = out {
            return Err(format!(
                "cannot make a network namespace (needs root): ip netns add: {e}"
            ));
        }
        let lab = Lab {
            tag,
            made: vec![switch.clone()],
            switch,
        };
        lab.ip(&["link", "add", BRIDGE, "type", "bridge"]);
        lab.ip(&["link", "set", BRIDGE, "up"]);
        lab.ip(&["link", "set", "lo", "up"]);
        Ok(lab)
    }

    /// [`Lab::new`], or `None` after printing `skipped: REASON` (for a test to return early
    /// where namespaces cannot be made). In CI as root it panics instead (see [`skip`]).
    #[track_caller]
    pub fn or_skip(needs: &[&str]) -> Option<Lab> {
        match Lab::new(needs) {
            Ok(lab) => Some(lab),
            Err(reason) => {
                skip(&reason);
                None
            }
        }
    }

    /// Adds a host named `label` (letters, digits, `-`) at the next address, its link up.
    pub fn host(&mut self, label: &str) -> Host {
        let index = self.made.len() - 1;
        let last = u8::try_from(index + 1).expect("at most 254 hosts");
        let ns = format!("{}-{label}", self.tag);
        run(Command::new("ip").args(["netns", "add", &ns]));
        self.made.push(ns.clone());
        let port = format!("h{index}");
        self.ip(&[
            "link", "add", &port, "type", "veth", "peer", "name", HOST_IF, "netns", &ns,
        ]);
        // One wire-sized packet per buffer (no segmentation offload), so that a rule that
        // drops packets drops single packets, as on a real network, not 64 KiB bursts.
        let one = ["gso_max_segs", "1"];
        self.ip(&[&["link", "set", &port, "master", BRIDGE, "up"], &one[..]].concat());
        let addr = Ipv4Addr::new(SUBNET[0], SUBNET[1], SUBNET[2], last);
        let host = Host {
            label: label.to_owned(),
            ns,
            addr,
            switch: self.switch.clone(),
            port,
        };
        host.ip(&["addr", "add", &format!("{addr}/24"), "dev", HOST_IF]);
        host.ip(&[&["link", "set", HOST_IF, "up"], &one[..]].concat());
        host.ip(&["link", "set", "lo", "up"]);
        host
    }

    fn ip(&self, args: &[&str]) {
        run(Command::new("ip").args(["-n", &self.switch]).args(args));
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in &self.made {
            // Never panic here (this may run while a failing test unwinds): report and go on.
            if let Err(e) = quiet(Command::new("ip").args(["netns", "delete", ns])) {
                eprintln!("cannot delete network namespace {ns}: {e}");
            }
        }
    }
}

impl Host {
    /// `ip netns exec NS`: put before a command to run it in this host.
    pub fn prefix(&self) -> Vec<OsString> {
        ["ip", "netns", "exec", &self.ns]
            .into_iter()
            .map(Into::into)
            .collect()
    }

    /// A tracker of `net` running in this host, on a port of its address.
    pub fn spawn_tracker(&self, net: &TestNet) -> Tracker {
        net.spawn_tracker_via(self.prefix(), self.socket_addr(0))
    }

    /// A p2pd of `net` named `name` running in this host, registered with `tracker` and
    /// listening on `0.0.0.0`, so that its peers learn the address the tracker observed.
    pub fn spawn_p2pd(&self, net: &TestNet, name: &str, tracker: &Tracker) -> P2pd {
        net.p2pd(name)
            .tracker(&tracker.addr_string())
            .listen("0.0.0.0:0")
            .prefix(self.prefix())
            .spawn()
    }

    /// This host's address with `port`.
    pub fn socket_addr(&self, port: u16) -> SocketAddr {
        SocketAddr::from((self.addr, port))
    }

    /// Pulls the cable (`false`: the switch's end of the link goes down, so nothing passes
    /// either way) or plugs it back (`true`).
    pub fn set_link(&self, up: bool) {
        let state = if up { "up" } else { "down" };
        run(Command::new("ip").args(["-n", &self.switch, "link", "set", &self.port, state]));
    }

    /// Caps the link at `mbit` Mbit/s each way (a `tbf` qdisc on both ends).
    pub fn limit_rate(&self, mbit: u32) {
        let rate = format!("{mbit}mbit");
        for (ns, dev) in [(&self.ns, HOST_IF), (&self.switch, &self.port)] {
            run(Command::new("tc").args([
                "-n", ns, "qdisc", "replace", "dev", dev, "root", "tbf", "rate", &rate, "burst",
                "256kb", "latency", "20ms",
            ]));
        }
    }

    /// Drops `percent` % of the packets that leave or reach this host over its link, at
    /// random (an nftables rule each way in the host; replaces an earlier setting).
    pub fn drop_percent(&self, percent: u8) {
        assert!(percent <= 100, "a percentage: {percent}");
        let rules = format!(
            "table inet {FAULT_TABLE}\n\
             delete table inet {FAULT_TABLE}\n\
             table inet {FAULT_TABLE} {{\n\
               chain in {{\n\
                 type filter hook input priority 0; policy accept;\n\
                 iifname \"{HOST_IF}\" numgen random mod 100 < {percent} counter drop\n\
               }}\n\
               chain out {{\n\
                 type filter hook output priority 0; policy accept;\n\
                 oifname \"{HOST_IF}\" numgen random mod 100 < {percent} counter drop\n\
               }}\n\
             }}\n"
        );
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns, "nft", "-f", "-"]);
        run_with_input(cmd, Some(rules.into_bytes()), DEADLINE).assert_success();
    }

    /// The packets nftables dropped on this host's link so far (both ways), from the
    /// counters of the rules [`Host::drop_percent`] set; 0 if none are set.
    pub fn dropped_packets(&self) -> u64 {
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            &self.ns,
            "nft",
            "list",
            "table",
            "inet",
            FAULT_TABLE,
        ]);
        let out = run_with_input(cmd, None, DEADLINE);
        if !out.status.success() {
            return 0;
        }
        out.stdout
            .split_whitespace()
            .collect::<Vec<_>>()
            .windows(2)
            .filter(|w| w[0] == "packets")
            .filter_map(|w| w[1].parse::<u64>().ok())
            .sum()
    }

    fn ip(&self, args: &[&str]) {
        run(Command::new("ip").args(["-n", &self.ns]).args(args));
    }
}

/// Runs `cmd` to completion; panics with its output unless it succeeds.
#[track_caller]
pub(crate) fn run(cmd: &mut Command) {
    if let Err(e) = quiet(cmd) {
        panic!("{e}");
    }
}

/// Runs `cmd` to completion without panicking; `Err` holds the command line and stderr.
fn quiet(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// True if `program` is an executable file in a directory of `$PATH`.
fn on_path(program: &str) -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| dir.join(program).is_file())
}

/// Deletes the namespaces of labs whose test process is gone (killed before its drop ran),
/// killing the processes left running in them.
fn sweep_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(ns) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = ns
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            // Its daemons outlived it: they run in its namespaces and nowhere else.
            if let Ok(pids) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
                    if let Ok(pid) = pid.parse() {
                        let _ = crate::proc::send_signal(pid, rustix::process::Signal::KILL);
                    }
                }
            }
            let _ = quiet(Command::new("ip").args(["netns", "delete", ns]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::must_run;

    #[test]
    fn only_ci_as_root_refuses_a_skip() {
        assert!(must_run(Some("true"), 0));
        assert!(must_run(Some("1"), 0));
        assert!(!must_run(Some("true"), 1000));
        assert!(!must_run(None, 0));
        assert!(!must_run(Some("false"), 0));
        assert!(!must_run(Some(""), 0));
    }
}
