//! Predicates on event JSON (the `params` of an `event` notification, as `p2pctl --json
//! watch` prints them), for [`crate::Watch::wait_for`] and [`crate::RpcClient::wait_event`].

use serde_json::Value;

/// `peer_joined` for the peer named `name`.
pub fn peer_joined(name: &str) -> impl Fn(&Value) -> bool + '_ {
    move |ev| ev["type"] == "peer_joined" && ev["peer"]["name"] == name
}

/// `peer_left` for the peer named `name`.
pub fn peer_left(name: &str) -> impl Fn(&Value) -> bool + '_ {
    move |ev| ev["type"] == "peer_left" && ev["peer"]["name"] == name
}

/// A `tracker` event whose link state is `state` (`connecting`, `registered`, `refused`).
pub fn tracker_state(state: &str) -> impl Fn(&Value) -> bool + '_ {
    move |ev| ev["type"] == "tracker" && ev["tracker"]["state"] == state
}
