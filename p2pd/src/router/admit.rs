//! Admission of an inbound link after its `Hello`: who may link, under which name.

use proto::peer::Refusal;
use proto::{PeerId, PeerName};
use tracing::warn;

use crate::node::Node;

/// Checks an inbound peer: not blocked, and the name it gave is the one the peer table holds
/// for its key (bound by the tracker or pinned here). `Ok` carries that name; `Err` the
/// refusal to send. Nothing is written: a peer is pinned in the store only once the user
/// deals with it.
pub fn admit(node: &Node, id: PeerId, name: &PeerName) -> Result<PeerName, (Refusal, String)> {
    let known = node.peer(id);
    if known.as_ref().is_some_and(|p| p.blocked) {
        return Err((Refusal::Blocked, Refusal::Blocked.describe().into()));
    }
    if let Some(p) = &known
        && p.name == *name
        && p.key_conflict.is_none()
    {
        return Ok(p.name.clone());
    }
    // Names are bound to keys by the tracker (or an earlier pin), never by a caller's own
    // word: else any key could take a name not seen here yet, and speak under it.
    let (detail, contact) = match node.resolve(name.as_str()) {
        Ok(p) if p.name == *name && p.id != id => (
            format!(
                "{:?} is pinned to key {}, but the link presented key {id}",
                name.as_str(),
                p.id
            ),
            Some(p.id),
        ),
        _ => match known {
            Some(p) => (
                format!(
                    "key {id} is known here as {:?}, not {:?}",
                    p.name.as_str(),
                    name.as_str()
                ),
                None,
            ),
            None => (
                format!(
                    "no peer {:?} with key {id} is known here; the tracker has not shown it",
                    name.as_str()
                ),
                None,
            ),
        },
    };
    // A contact is named at most once a minute, however many keys claim its name.
    if let Some(contact) = contact
        && node.link_error(contact, detail.clone())
    {
        warn!(peer = %name, id = %id.short(), "refusing a peer link: {detail}");
    }
    Err((Refusal::KeyMismatch, detail))
}
