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

/// `peer_updated` for the peer named `name`.
pub fn peer_updated(name: &str) -> impl Fn(&Value) -> bool + '_ {
    move |ev| ev["type"] == "peer_updated" && ev["peer"]["name"] == name
}

/// A `tracker` event whose link state is `state` (`connecting`, `registered`, `refused`).
pub fn tracker_state(state: &str) -> impl Fn(&Value) -> bool + '_ {
    move |ev| ev["type"] == "tracker" && ev["tracker"]["state"] == state
}

/// `message_received` whose text is exactly `text`.
pub fn message_received(text: &str) -> impl Fn(&Value) -> bool + '_ {
    move |ev| ev["type"] == "message_received" && ev["message"]["text"] == text
}

/// `message_updated` of the message with id `id`, now in `state` (`delivered`, `refused`).
pub fn message_updated<'a>(id: &'a str, state: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |ev| {
        ev["type"] == "message_updated"
            && ev["message"]["id"] == id
            && ev["message"]["state"] == state
    }
}

/// `link_error` whose detail contains `needle`.
pub fn link_error(needle: &str) -> impl Fn(&Value) -> bool + '_ {
    move |ev| {
        ev["type"] == "link_error" && ev["detail"].as_str().is_some_and(|d| d.contains(needle))
    }
}
