//! Which handler takes a link, by the ALPN name its TLS handshake negotiated. Pure: no I/O.

use proto::peer::ALPN_CHAT;

/// The protocols a router serves, one handler per ALPN name, in registration order.
pub struct Registry<H> {
    entries: Vec<(&'static [u8], H)>,
}

impl<H> Default for Registry<H> {
    fn default() -> Self {
        Registry {
            entries: Vec::new(),
        }
    }
}

impl<H> Registry<H> {
    /// Registers `handler` for `alpn`; a second registration of one name replaces the first.
    pub fn add(&mut self, alpn: &'static [u8], handler: H) {
        match self.entries.iter_mut().find(|(a, _)| *a == alpn) {
            Some(entry) => entry.1 = handler,
            None => self.entries.push((alpn, handler)),
        }
    }

    /// The ALPN names to offer in TLS, in registration order: a client that offers none of
    /// them is refused by the TLS handshake itself.
    pub fn alpns(&self) -> Vec<Vec<u8>> {
        self.entries.iter().map(|(a, _)| a.to_vec()).collect()
    }

    /// The handler for the negotiated ALPN name; a link that negotiated none speaks
    /// [`ALPN_CHAT`]. `None` when nothing is registered for it.
    pub fn route(&self, negotiated: Option<&[u8]>) -> Option<&H> {
        let alpn = negotiated.unwrap_or(ALPN_CHAT);
        self.entries
            .iter()
            .find(|(a, _)| *a == alpn)
            .map(|(_, h)| h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::peer::ALPN_BULK;

    #[test]
    fn links_go_to_the_handler_of_their_alpn() {
        let mut r = Registry::default();
        r.add(ALPN_CHAT, "chat");
        r.add(ALPN_BULK, "bulk");
        assert_eq!(r.alpns(), [ALPN_CHAT.to_vec(), ALPN_BULK.to_vec()]);
        assert_eq!(r.route(Some(ALPN_CHAT)), Some(&"chat"));
        assert_eq!(r.route(Some(ALPN_BULK)), Some(&"bulk"));
        assert_eq!(r.route(None), Some(&"chat"), "no ALPN is a chat link");
    }

    #[test]
    fn an_alpn_without_a_handler_is_not_routed() {
        let mut r = Registry::default();
        r.add(ALPN_BULK, "bulk");
        assert_eq!(r.route(Some(b"p2p-share/1")), None);
        assert_eq!(r.route(Some(b"")), None);
        assert_eq!(r.route(None), None, "no chat handler, so no default");
        assert_eq!(r.alpns(), [ALPN_BULK.to_vec()]);
        let empty: Registry<&str> = Registry::default();
        assert!(empty.alpns().is_empty());
        assert_eq!(empty.route(Some(ALPN_CHAT)), None);
    }

    #[test]
    fn registering_a_name_again_replaces_its_handler() {
        let mut r = Registry::default();
        r.add(ALPN_CHAT, "old");
        r.add(ALPN_BULK, "bulk");
        r.add(ALPN_CHAT, "new");
        assert_eq!(r.route(Some(ALPN_CHAT)), Some(&"new"));
        assert_eq!(r.alpns(), [ALPN_CHAT.to_vec(), ALPN_BULK.to_vec()]);
    }
}
