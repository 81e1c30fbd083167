//! `p2pctl rekey`: rotate the daemon's identity key, handing its name to the new key.

use proto::api::Rekeyed;

/// What `rekey` prints: both keys and what happens next.
pub(crate) fn explain(r: &Rekeyed) -> String {
    format!(
        "old key: {}\nnew key: {}\n\
         p2pd restarts with the new key now. At its next registration the tracker moves your \
         name to the new key on the strength of a statement signed by the old one (kept in the \
         state directory until then, also if the tracker is unreachable now). Peers that pinned \
         the old key check that statement and follow the new key by themselves.\n\
         The old key stays in identity.key.old in the state directory for recovery; you may \
         delete it later.\n",
        r.old_key, r.new_key
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::SecretKey;

    #[test]
    fn both_keys_are_named() {
        let r = Rekeyed {
            old_key: SecretKey::from_seed([1; 32]).peer_id(),
            new_key: SecretKey::from_seed([2; 32]).peer_id(),
        };
        let text = explain(&r);
        assert!(text.contains(&format!("old key: {}", r.old_key)));
        assert!(text.contains(&format!("new key: {}", r.new_key)));
    }
}
