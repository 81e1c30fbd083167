//! One handler per method, chosen by an exhaustive match.

use std::sync::Arc;

use proto::api::{Call, Status, Subscribed};
use proto::rpc::{RpcError, code};
use serde::Serialize;
use serde_json::Value;

use crate::node::Node;
use crate::resources::Sampler;

/// What a handler produced.
pub enum Reply {
    /// A result to send.
    Value(Value),
    /// A result to send, after which the connection streams events.
    Subscribe(Value),
}

/// Services the handlers reach.
pub struct Services {
    /// Shared state.
    pub node: Arc<Node>,
    /// Resource sampler.
    pub sampler: Sampler,
}

/// Runs one call.
pub fn dispatch(svc: &Services, call: Call) -> Result<Reply, RpcError> {
    match call {
        Call::Status {} => to_value(status(svc)).map(Reply::Value),
        Call::Peers {} => to_value(svc.node.peers()).map(Reply::Value),
        Call::Subscribe {} => to_value(Subscribed { subscribed: true }).map(Reply::Subscribe),
    }
}

fn status(svc: &Services) -> Status {
    let node = &svc.node;
    let id = &node.identity;
    let (peers_online, peers_known) = node.peer_counts();
    Status {
        name: id.name.clone(),
        id: id.id,
        version: env!("CARGO_PKG_VERSION").to_string(),
        listen: id.listen,
        socket: id.socket.display().to_string(),
        tracker: node.tracker(),
        peers_online,
        peers_known,
        resources: svc.sampler.sample(node.started.elapsed().as_secs()),
    }
}

fn to_value<T: Serialize>(v: T) -> Result<Value, RpcError> {
    serde_json::to_value(v).map_err(|e| {
        RpcError::new(
            code::INTERNAL_ERROR,
            format!("cannot encode the result: {e}"),
        )
    })
}
