//! What a LAN announcement carries, pure: the TXT layout of the `_p2pd._tcp.local.` service,
//! and the merge of the resolve events of each instance into announcements to act on.
//!
//! TXT layout (each entry one TXT string of at most 255 bytes):
//! - `v=1`: the layout version;
//! - `n=NAME`: the name the peer claims (a claim only: a name is bound by a tracker or a pin);
//! - `r0=...`, `r1=...`, ...: the encoded signed address record, split into pieces of at most
//!   [`PIECE`] bytes, in order, binary (a TXT value is bytes), at most [`MAX_RECORD`] in all.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;

use proto::PeerName;

/// The DNS-SD service type.
pub const SERVICE_TYPE: &str = "_p2pd._tcp.local.";
/// The layout version in `v=`.
pub const LAYOUT: &str = "1";
/// Bytes of the record in one TXT string (`rN=` and the piece stay under 255 bytes).
pub const PIECE: usize = 250;
/// The largest encoded record carried (the signed address record's own cap).
pub const MAX_RECORD: usize = 1000;
/// Instances held at once; announcements of further instances are dropped until some go.
pub const MAX_INSTANCES: usize = 256;
/// Addresses kept per instance.
const MAX_ADDRS: usize = 16;

/// The TXT entries announcing `record` (encoded) for the peer that claims `name`.
pub fn txt(name: &PeerName, record: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![
        ("v".to_owned(), LAYOUT.as_bytes().to_vec()),
        ("n".to_owned(), name.as_str().as_bytes().to_vec()),
    ];
    for (i, piece) in record.chunks(PIECE).enumerate() {
        out.push((format!("r{i}"), piece.to_vec()));
    }
    out
}

/// What one TXT record says, once read: the claimed name (if it is a valid name) and the
/// record's bytes, still to be decoded and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txt {
    /// The name claimed, if present and valid.
    pub name: Option<PeerName>,
    /// The encoded record, reassembled from its pieces.
    pub record: Vec<u8>,
}

/// Why a TXT record is not an announcement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxtError {
    /// `v=` is missing or names another layout.
    #[error("unknown TXT layout")]
    Layout,
    /// No `r0=`.
    #[error("no address record")]
    NoRecord,
    /// The pieces add up to more than [`MAX_RECORD`] bytes.
    #[error("address record over {MAX_RECORD} bytes")]
    TooLong,
}

/// Reads a TXT record given as `(key, value)` pairs (keys compared in lower case, the first of
/// each kept, as DNS-SD says). Never panics.
pub fn read_txt<'a>(
    entries: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
) -> Result<Txt, TxtError> {
    let mut map: HashMap<String, &[u8]> = HashMap::new();
    for (key, val) in entries {
        let key = key.to_ascii_lowercase();
        if key.len() > 8 {
            continue;
        }
        map.entry(key).or_insert(val.unwrap_or_default());
    }
    if map.get("v").copied() != Some(LAYOUT.as_bytes()) {
        return Err(TxtError::Layout);
    }
    let name = map
        .get("n")
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|s| PeerName::new(s).ok());
    let mut record = Vec::new();
    for i in 0.. {
        let Some(piece) = map.get(&format!("r{i}")) else {
            break;
        };
        if record.len() + piece.len() > MAX_RECORD {
            return Err(TxtError::TooLong);
        }
        record.extend_from_slice(piece);
    }
    if record.is_empty() {
        return Err(TxtError::NoRecord);
    }
    Ok(Txt { name, record })
}

/// What an instance announces now: to decode, check and report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// The instance's full DNS-SD name.
    pub instance: String,
    /// The TXT record read.
    pub txt: Txt,
    /// The addresses the instance resolved to, with its port: where it was heard.
    pub addrs: Vec<SocketAddr>,
}

#[derive(Debug)]
struct Instance {
    txt: Txt,
    addrs: BTreeSet<SocketAddr>,
    /// The addresses last reported, `None` before the first report.
    reported: Option<BTreeSet<SocketAddr>>,
}

/// The instances heard on the LAN, each merged from its resolve events: a first event may
/// carry only some of the addresses (an IPv6 link-local one) and the next the rest, so the
/// addresses of one record add up until the record changes.
#[derive(Debug, Default)]
pub struct Instances {
    by_name: HashMap<String, Instance>,
}

impl Instances {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// An instance resolved with `txt` at `addrs`: returns the announcement to act on when it
    /// says something new (a new record, or new addresses), `None` when nothing changed or
    /// the instance is one too many.
    pub fn resolved(
        &mut self,
        instance: &str,
        txt: Txt,
        addrs: impl IntoIterator<Item = SocketAddr>,
    ) -> Option<Announcement> {
        if !self.by_name.contains_key(instance) && self.by_name.len() >= MAX_INSTANCES {
            return None;
        }
        let entry = self
            .by_name
            .entry(instance.to_owned())
            .or_insert_with(|| Instance {
                txt: txt.clone(),
                addrs: BTreeSet::new(),
                reported: None,
            });
        if entry.txt != txt {
            entry.txt = txt;
            entry.addrs.clear();
            entry.reported = None;
        }
        for a in addrs {
            if entry.addrs.len() >= MAX_ADDRS {
                break;
            }
            entry.addrs.insert(a);
        }
        if entry.reported.as_ref() == Some(&entry.addrs) {
            return None;
        }
        entry.reported = Some(entry.addrs.clone());
        Some(Announcement {
            instance: instance.to_owned(),
            txt: entry.txt.clone(),
            addrs: entry.addrs.iter().copied().collect(),
        })
    }

    /// The instance is gone (a goodbye, or its records expired): returns what it last
    /// announced, for the caller to withdraw.
    pub fn removed(&mut self, instance: &str) -> Option<Txt> {
        self.by_name.remove(instance).map(|i| i.txt)
    }

    /// Instances held.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// No instance held.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// At most one report per instance every `every` seconds (a forged announcement repeated, or
/// many of them, must not flood the activity log). Holds at most [`MAX_INSTANCES`] names.
#[derive(Debug)]
pub struct Throttle {
    every: u64,
    last: HashMap<String, u64>,
}

impl Throttle {
    /// A throttle letting one report per name through every `every` seconds.
    pub fn new(every: u64) -> Self {
        Throttle {
            every,
            last: HashMap::new(),
        }
    }

    /// Whether a report about `name` may be made at `now` (Unix seconds); if so, it counts.
    pub fn allow(&mut self, name: &str, now: u64) -> bool {
        if let Some(&at) = self.last.get(name)
            && now < at.saturating_add(self.every)
        {
            return false;
        }
        if self.last.len() >= MAX_INSTANCES {
            let every = self.every;
            self.last.retain(|_, at| now < at.saturating_add(every));
            if self.last.len() >= MAX_INSTANCES {
                return false;
            }
        }
        self.last.insert(name.to_owned(), now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(t: &[(String, Vec<u8>)]) -> Vec<(&str, Option<&[u8]>)> {
        t.iter()
            .map(|(k, v)| (k.as_str(), Some(v.as_slice())))
            .collect()
    }

    #[test]
    fn a_long_record_is_split_and_reassembled() {
        let name = PeerName::new("bob").unwrap();
        let record: Vec<u8> = (0..=255u8).cycle().take(MAX_RECORD).collect();
        let t = txt(&name, &record);
        assert_eq!(t.len(), 2 + MAX_RECORD.div_ceil(PIECE));
        assert!(t.iter().all(|(k, v)| k.len() + 1 + v.len() <= 255));
        // `=` bytes inside a piece stay in the value.
        assert!(record.contains(&b'='));
        let back = read_txt(entries(&t)).unwrap();
        assert_eq!(back.name, Some(name));
        assert_eq!(back.record, record);
    }

    #[test]
    fn bad_txt_is_refused() {
        let name = PeerName::new("bob").unwrap();
        let mut t = txt(&name, b"rec");
        assert_eq!(read_txt(entries(&t)).unwrap().record, b"rec");
        t[0].1 = b"2".to_vec();
        assert_eq!(read_txt(entries(&t)), Err(TxtError::Layout));
        let t = txt(&name, b"");
        assert_eq!(read_txt(entries(&t)), Err(TxtError::NoRecord));
        let mut t = txt(&name, &[7; MAX_RECORD]);
        t.push((format!("r{}", MAX_RECORD / PIECE), vec![1]));
        assert_eq!(read_txt(entries(&t)), Err(TxtError::TooLong));
        // An invalid claimed name is no name; the record still counts.
        let mut t = txt(&name, b"rec");
        t[1].1 = b"Not A Name!".to_vec();
        assert_eq!(read_txt(entries(&t)).unwrap().name, None);
        assert_eq!(read_txt(Vec::new()), Err(TxtError::Layout));
    }

    fn t(record: &[u8]) -> Txt {
        Txt {
            name: PeerName::new("bob").ok(),
            record: record.to_vec(),
        }
    }

    #[test]
    fn resolve_events_merge_until_the_record_changes() {
        let mut s = Instances::new();
        let v6: SocketAddr = "[fe80::1%2]:7000".parse().unwrap();
        let v4: SocketAddr = "10.0.0.3:7000".parse().unwrap();
        let a = s.resolved("bob", t(b"1"), [v6]).unwrap();
        assert_eq!(a.addrs, vec![v6]);
        let a = s.resolved("bob", t(b"1"), [v4]).unwrap();
        assert_eq!(a.addrs, vec![v4, v6], "the second event adds to the first");
        assert_eq!(s.resolved("bob", t(b"1"), [v6, v4]), None, "nothing new");
        let a = s.resolved("bob", t(b"2"), [v4]).unwrap();
        assert_eq!((a.txt.record.as_slice(), a.addrs), (&b"2"[..], vec![v4]));
        assert_eq!(s.removed("bob"), Some(t(b"2")));
        assert_eq!(s.removed("bob"), None);
        assert!(s.is_empty());
    }

    #[test]
    fn instances_are_capped() {
        let mut s = Instances::new();
        let addr: SocketAddr = "10.0.0.3:7000".parse().unwrap();
        for i in 0..MAX_INSTANCES {
            assert!(s.resolved(&format!("i{i}"), t(b"r"), [addr]).is_some());
        }
        assert_eq!(s.resolved("one-more", t(b"r"), [addr]), None);
        assert!(
            s.resolved("i0", t(b"new"), [addr]).is_some(),
            "known ones go on"
        );
        s.removed("i1");
        assert!(s.resolved("one-more", t(b"r"), [addr]).is_some());
        assert_eq!(s.len(), MAX_INSTANCES);
    }

    #[test]
    fn reports_are_throttled_per_name_and_bounded() {
        let mut t = Throttle::new(60);
        assert!(t.allow("a", 100));
        assert!(!t.allow("a", 159));
        assert!(t.allow("b", 159));
        assert!(t.allow("a", 160));
        for i in 0..MAX_INSTANCES {
            t.allow(&format!("n{i}"), 200);
        }
        assert!(!t.allow("late", 201), "full of recent names");
        assert!(t.allow("late", 261), "the old ones make room");
    }
}
