//! Readings from `/proc` (and `getconf`, `df`): the machine description, a process's resident
//! memory (current and peak), CPU time (per process and per thread) and allowed CPUs, the
//! kernel's slab memory, and the file system and free space under a path.

use std::process::Command;
use std::time::Duration;

use anyhow::Context;

/// The CPU model from `/proc/cpuinfo` (`"unknown"` when it cannot be read).
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// CPUs this process may use (`nproc`), at least 1.
pub fn cpus_online() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The 1, 5 and 15 minute load averages from `/proc/loadavg` (`"?"` when it cannot be read).
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// The CPUs process (or thread) `pid` may run on, from `/proc/PID/status` (`pid` may be
/// `"self"`; `"?"` when it cannot be read).
pub fn cpus_allowed(pid: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| "?".into())
}

/// Resident set size of process `pid` in bytes (`VmRSS` in `/proc/PID/status`).
pub fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS line")?;
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .context("empty VmRSS line")?
        .parse()?;
    Ok(kib * 1024)
}

/// User plus system CPU time of process `pid` (`/proc/PID/stat` fields 14 and 15).
pub fn cpu_time(pid: u32, ticks_per_sec: u64) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').context("bad stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state), so field 14 is index 11.
    let utime: u64 = fields.get(11).context("short stat")?.parse()?;
    let stime: u64 = fields.get(12).context("short stat")?.parse()?;
    Ok(Duration::from_secs_f64(
        (utime + stime) as f64 / ticks_per_sec as f64,
    ))
}

/// Clock ticks per second for `/proc` CPU times (`getconf CLK_TCK`, else 100).
pub fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// Unreclaimable kernel slab memory, system-wide, in bytes (`SUnreclaim` in `/proc/meminfo`).
/// Socket objects live there; on loopback it counts both ends of every connection.
pub fn kernel_slab() -> Option<u64> {
    meminfo_bytes("SUnreclaim")
}

/// The machine's memory in bytes (`MemTotal` in `/proc/meminfo`).
pub fn mem_total_bytes() -> Option<u64> {
    meminfo_bytes("MemTotal")
}

/// A `/proc/meminfo` line given in kB, in bytes.
fn meminfo_bytes(key: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))?;
    let kib: u64 = line.split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

/// A `/proc/PID/status` line given in kB (such as `VmRSS` or `VmHWM`), in bytes.
pub fn status_bytes(pid: u32, key: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
        .with_context(|| format!("no {key} line"))?;
    let kib: u64 = line
        .split_whitespace()
        .next()
        .with_context(|| format!("empty {key} line"))?
        .parse()?;
    Ok(kib * 1024)
}

/// User plus system CPU time of every thread of process `pid`, by thread id, with the
/// thread's name (`/proc/PID/task/TID/{stat,comm}`). Threads that exit while being read
/// are left out.
pub fn thread_cpu_times(pid: u32, ticks_per_sec: u64) -> Vec<(u32, String, Duration)> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let base = format!("/proc/{pid}/task/{tid}");
        let Ok(stat) = std::fs::read_to_string(format!("{base}/stat")) else {
            continue;
        };
        let Some((_, after)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = after.split_whitespace().collect();
        let (Some(Ok(u)), Some(Ok(s))) = (
            fields.get(11).map(|f| f.parse::<u64>()),
            fields.get(12).map(|f| f.parse::<u64>()),
        ) else {
            continue;
        };
        let name = std::fs::read_to_string(format!("{base}/comm"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        out.push((
            tid,
            name,
            Duration::from_secs_f64((u + s) as f64 / ticks_per_sec as f64),
        ));
    }
    out
}

/// The file system type and device of the mount holding `path` (longest matching mount
/// point in `/proc/self/mounts`), such as `("ext4", "/dev/vda")`.
pub fn fs_of(path: &std::path::Path) -> Option<(String, String)> {
    let path = std::fs::canonicalize(path).ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (dev, mnt, fs) = (f.next()?, f.next()?, f.next()?);
            // Mount points escape spaces as \040.
            let mnt = mnt.replace("\\040", " ");
            path.starts_with(&mnt)
                .then(|| (mnt.len(), fs.to_string(), dev.to_string()))
        })
        .max_by_key(|(len, _, _)| *len)
        .map(|(_, fs, dev)| (fs, dev))
}

/// Free space for unprivileged users on the file system holding `path`, in bytes
/// (`df --output=avail -B1`).
pub fn free_bytes(path: &std::path::Path) -> Option<u64> {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(path)
        .output()
        .ok()?;
    String::from_utf8(out.stdout)
        .ok()?
        .lines()
        .nth(1)?
        .trim()
        .parse()
        .ok()
}
