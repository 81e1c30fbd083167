//! Resource use of this process, sampled with sysinfo.

use std::sync::Mutex;

use proto::api::Resources;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// Samples this process. CPU use is measured between two calls.
pub struct Sampler {
    /// `None` when sysinfo cannot read this platform's process table.
    system: Option<Mutex<System>>,
    pid: Pid,
}

impl Default for Sampler {
    fn default() -> Self {
        Self::new()
    }
}

impl Sampler {
    /// A sampler for the current process.
    pub fn new() -> Self {
        Self {
            system: System::new().ok().map(Mutex::new),
            pid: Pid::from_u32(std::process::id()),
        }
    }

    /// Current figures; `uptime_secs` is filled in by the caller's clock.
    pub fn sample(&self, uptime_secs: u64) -> Resources {
        let Some(system) = &self.system else {
            return Resources {
                pid: self.pid.as_u32(),
                rss_bytes: 0,
                cpu_percent: 0.0,
                uptime_secs,
            };
        };
        let mut sys = system
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        sys.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[self.pid]),
            true,
            ProcessRefreshKind::nothing().with_memory().with_cpu(),
        );
        let (rss_bytes, cpu_percent) = sys
            .process(self.pid)
            .map_or((0, 0.0), |p| (p.memory(), p.cpu_usage()));
        Resources {
            pid: self.pid.as_u32(),
            rss_bytes,
            cpu_percent,
            uptime_secs,
        }
    }
}
