//! systemd readiness notification. Without `NOTIFY_SOCKET` these do nothing.

use sd_notify::NotifyState;

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

fn send(states: &[NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!("sd_notify failed: {e}");
    }
}
