//! systemd readiness notification. Without `NOTIFY_SOCKET` (and on Windows) these do
//! nothing.

#[cfg(unix)]
use sd_notify::NotifyState;

#[cfg(not(unix))]
mod no_systemd {
    /// Stands in for sd-notify's states where there is no systemd.
    pub(super) enum NotifyState {
        Ready,
        Reloading,
        Stopping,
    }

    impl NotifyState {
        pub(super) fn monotonic_usec_now() -> std::io::Result<NotifyState> {
            Err(std::io::ErrorKind::Unsupported.into())
        }
    }
}
#[cfg(not(unix))]
use no_systemd::NotifyState;

/// Tells systemd the daemon is ready: every socket is bound.
pub fn ready() {
    send(&[NotifyState::Ready]);
}

/// Tells systemd the daemon is reloading (restarting in-process); [`ready`] follows when it
/// is ready again.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// Tells systemd the daemon is stopping.
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

#[cfg(not(unix))]
fn send(_: &[NotifyState]) {}

#[cfg(unix)]
fn send(states: &[NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!("sd_notify failed: {e}");
    }
}
