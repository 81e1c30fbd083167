//! Which peer a user's text names: the one rule behind every command that takes a PEER, in
//! p2pd (which resolves each call's `peer`) and p2pctl (which resolves before it starts a
//! `chat`).
//!
//! The text is a peer's name (ASCII case folded), else a prefix of its id of at least
//! [`MIN_PREFIX_CHARS`] characters that no other peer shares. An exact name always wins over
//! an id prefix. A text that names nobody says why, in words meant for the user: a close
//! name ("did you mean 'bob'?"), a key prefix that is too short, or one's own name.

use std::fmt;

use crate::identity::{MIN_PREFIX_CHARS, PeerId};
use crate::name::{MAX_NAME_LEN, PeerName};
use crate::rpc::code;

/// Characters of the user's text repeated in an error; longer texts are cut.
const SHOWN_CHARS: usize = 40;
/// Names offered as "did you mean" at most.
const SUGGESTIONS: usize = 3;
/// Names listed for an ambiguous prefix at most.
const LISTED: usize = 5;

/// A known peer: its name and its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known<'a> {
    /// Its name.
    pub name: &'a PeerName,
    /// Its id.
    pub id: PeerId,
}

/// Why a text named no single peer. The two kinds are the two JSON-RPC error codes
/// ([`ResolveError::code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// It names no known peer.
    #[error("{0}")]
    Unknown(Unknown),
    /// It is an id prefix of several peers.
    #[error("{0}")]
    Ambiguous(Ambiguous),
    /// Several known peers hold the name (trackers bind it to different keys).
    #[error("{0}")]
    NameClash(NameClash),
}

impl ResolveError {
    /// The JSON-RPC error code: [`code::UNKNOWN_PEER`] or [`code::AMBIGUOUS_PEER`].
    pub fn code(&self) -> i32 {
        match self {
            ResolveError::Unknown(_) => code::UNKNOWN_PEER,
            ResolveError::Ambiguous(_) | ResolveError::NameClash(_) => code::AMBIGUOUS_PEER,
        }
    }

    /// `text` names no known peer, with no more to say about it.
    pub fn unknown(text: &str) -> ResolveError {
        ResolveError::Unknown(Unknown {
            text: shown(text),
            why: Miss::NoMatch {
                suggestions: Vec::new(),
            },
        })
    }
}

/// A text that names no known peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unknown {
    /// The text as given (cut after 40 characters).
    pub text: String,
    /// What it looked like.
    pub why: Miss,
}

/// What a text that names no known peer looked like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// Neither a name nor an id prefix; `suggestions` are the closest known names, if any
    /// is close (best first, at most 3).
    NoMatch {
        /// Names one edit or two away, or that the text begins.
        suggestions: Vec<PeerName>,
    },
    /// The start of a known id, but shorter than [`MIN_PREFIX_CHARS`].
    TooShort,
    /// Our own name or id.
    Myself,
}

impl fmt::Display for Unknown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = &self.text;
        match &self.why {
            Miss::NoMatch { suggestions } if !suggestions.is_empty() => {
                write!(f, "unknown peer '{text}': did you mean ")?;
                for (i, name) in suggestions.iter().enumerate() {
                    match i {
                        0 => {}
                        _ if i + 1 == suggestions.len() => f.write_str(" or ")?,
                        _ => f.write_str(", ")?,
                    }
                    write!(f, "'{}'", name.as_str())?;
                }
                f.write_str("?")
            }
            Miss::NoMatch { .. } => write!(
                f,
                "unknown peer '{text}': no known peer has that name or an id starting with it"
            ),
            Miss::TooShort => write!(
                f,
                "'{text}' is too short for a key prefix: give at least {MIN_PREFIX_CHARS} \
                 characters"
            ),
            Miss::Myself => write!(f, "'{text}' is you: name another peer"),
        }
    }
}

/// An id prefix that several peers share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ambiguous {
    /// The text as given (cut after 40 characters).
    pub text: String,
    /// How many peers it matches.
    pub count: usize,
    /// The first few of their names, sorted.
    pub names: Vec<PeerName>,
}

impl fmt::Display for Ambiguous {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.names.iter().map(PeerName::as_str).collect();
        if self.count > names.len() {
            names.push("...");
        }
        write!(
            f,
            "'{}' matches {} peers ({}): give more of the id",
            self.text,
            self.count,
            names.join(", ")
        )
    }
}

/// A name several known peers hold: each key with the trackers that bind the name to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameClash {
    /// The name.
    pub name: PeerName,
    /// Each key holding it, with the trackers (addresses) that say so, when known.
    pub holders: Vec<(PeerId, Vec<String>)>,
}

impl NameClash {
    /// Fills in, for each key, the trackers that bind the name to it.
    pub fn with_trackers(mut self, trackers: impl Fn(PeerId) -> Vec<String>) -> NameClash {
        for (id, by) in &mut self.holders {
            *by = trackers(*id);
        }
        self
    }
}

impl fmt::Display for NameClash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name.as_str();
        write!(
            f,
            "'{name}' is ambiguous: it is bound to {} keys: ",
            self.holders.len()
        )?;
        for (i, (id, by)) in self.holders.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{id}")?;
            if !by.is_empty() {
                write!(f, " (by tracker {})", by.join(", "))?;
            }
        }
        write!(
            f,
            ". Name one by its key prefix (at least {MIN_PREFIX_CHARS} characters), or pin one \
             with 'p2pctl trust KEYPREFIX'"
        )
    }
}

/// The peer among `known` that `text` names. A name several of them hold is refused
/// ([`ResolveError::NameClash`]): none is picked. `me` is this daemon's own name and id (left
/// out of `known`), so that naming oneself can be told apart from a typo.
pub fn resolve(
    text: &str,
    known: &[Known<'_>],
    me: Option<Known<'_>>,
) -> Result<PeerId, ResolveError> {
    let folded = text.to_ascii_lowercase();
    let mut named: Vec<&Known<'_>> = known.iter().filter(|k| k.name.as_str() == folded).collect();
    match named.as_mut_slice() {
        [] => {}
        [one] => return Ok(one.id),
        several => {
            several.sort_by_key(|k| k.id);
            return Err(ResolveError::NameClash(NameClash {
                name: several[0].name.clone(),
                holders: several.iter().map(|k| (k.id, Vec::new())).collect(),
            }));
        }
    }
    let myself = || {
        Err(ResolveError::Unknown(Unknown {
            text: shown(text),
            why: Miss::Myself,
        }))
    };
    if me.is_some_and(|m| m.name.as_str() == folded) {
        return myself();
    }
    if folded.len() >= MIN_PREFIX_CHARS {
        let mut matches: Vec<&Known<'_>> = known
            .iter()
            .filter(|k| k.id.matches_prefix(&folded))
            .collect();
        match matches.as_slice() {
            [one] => return Ok(one.id),
            [] => {}
            _ => {
                matches.sort_by(|a, b| a.name.cmp(b.name));
                return Err(ResolveError::Ambiguous(Ambiguous {
                    text: shown(text),
                    count: matches.len(),
                    names: matches
                        .iter()
                        .take(LISTED)
                        .map(|k| k.name.clone())
                        .collect(),
                }));
            }
        }
        if me.is_some_and(|m| m.id.matches_prefix(&folded)) {
            return myself();
        }
    }
    let suggestions = close_names(&folded, known);
    let short = !folded.is_empty()
        && folded.len() < MIN_PREFIX_CHARS
        && known.iter().any(|k| k.id.matches_prefix(&folded));
    let why = if short && suggestions.is_empty() {
        Miss::TooShort
    } else {
        Miss::NoMatch { suggestions }
    };
    Err(ResolveError::Unknown(Unknown {
        text: shown(text),
        why,
    }))
}

/// The known names closest to `text` (already folded), if any is close: one edit away, two
/// for a text of 4 characters or more, or begun by a text of 2 or more. Best first; ties by
/// name.
fn close_names(text: &str, known: &[Known<'_>]) -> Vec<PeerName> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() || chars.len() > MAX_NAME_LEN + 2 {
        return Vec::new();
    }
    let mut close: Vec<(usize, &PeerName)> = known
        .iter()
        .filter_map(|k| {
            let name = k.name.as_str();
            let d = distance(&chars, name);
            let near = d <= 1 || (d == 2 && chars.len() >= 4);
            let begun = chars.len() >= 2 && name.starts_with(text);
            (near || begun).then_some((d, k.name))
        })
        .collect();
    close.sort();
    close.dedup_by(|a, b| a.1 == b.1);
    let Some(&(best, _)) = close.first() else {
        return Vec::new();
    };
    close
        .into_iter()
        .take_while(|(d, _)| *d == best)
        .take(SUGGESTIONS)
        .map(|(_, name)| name.clone())
        .collect()
}

/// Levenshtein distance between `a` and `b`, in characters.
fn distance(a: &[char], b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diag + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// `text` as repeated in an error: at most [`SHOWN_CHARS`] characters, then `...`.
fn shown(text: &str) -> String {
    match text.char_indices().nth(SHOWN_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SecretKey;
    use proptest::prelude::*;

    fn peer(name: &str, seed: u8) -> (PeerName, PeerId) {
        (
            PeerName::new(name).expect("name"),
            SecretKey::from_seed([seed; 32]).peer_id(),
        )
    }

    fn known(peers: &[(PeerName, PeerId)]) -> Vec<Known<'_>> {
        peers
            .iter()
            .map(|(name, id)| Known { name, id: *id })
            .collect()
    }

    fn message(r: Result<PeerId, ResolveError>) -> String {
        r.expect_err("should not resolve").to_string()
    }

    #[test]
    fn names_fold_case_and_ids_resolve_from_eight_characters() {
        let peers = [peer("bob", 1), peer("carol", 2)];
        let k = known(&peers);
        let bob = peers[0].1;
        assert_eq!(resolve("bob", &k, None), Ok(bob));
        assert_eq!(resolve("BoB", &k, None), Ok(bob));
        let id = bob.to_string();
        assert_eq!(resolve(&id[..8], &k, None), Ok(bob));
        assert_eq!(resolve(&id.to_uppercase(), &k, None), Ok(bob));
    }

    #[test]
    fn a_short_prefix_says_it_is_too_short() {
        let peers = [peer("bob", 1)];
        let id = peers[0].1.to_string();
        let err = resolve(&id[..2], &known(&peers), None).expect_err("short");
        assert_eq!(err.code(), code::UNKNOWN_PEER);
        assert_eq!(
            err.to_string(),
            format!(
                "'{}' is too short for a key prefix: give at least 8 characters",
                &id[..2]
            )
        );
        assert_eq!(
            message(resolve(&id[..7], &known(&peers), None)),
            format!(
                "'{}' is too short for a key prefix: give at least 8 characters",
                &id[..7]
            )
        );
    }

    #[test]
    fn a_close_name_is_suggested() {
        let peers = [peer("bob", 1), peer("carol", 2), peer("caroline", 3)];
        let k = known(&peers);
        assert_eq!(
            message(resolve("bobb", &k, None)),
            "unknown peer 'bobb': did you mean 'bob'?"
        );
        assert_eq!(
            message(resolve("Karol", &k, None)),
            "unknown peer 'Karol': did you mean 'carol'?"
        );
        // Begun by the text: both carols, the nearer first.
        assert_eq!(
            message(resolve("caro", &k, None)),
            "unknown peer 'caro': did you mean 'carol'?"
        );
        assert_eq!(
            message(resolve("dave", &k, None)),
            "unknown peer 'dave': no known peer has that name or an id starting with it"
        );
        // Two edits on a short text is too far to guess.
        assert_eq!(
            message(resolve("xy", &[], None)),
            "unknown peer 'xy': no known peer has that name or an id starting with it"
        );
    }

    #[test]
    fn ties_are_all_offered() {
        let peers = [peer("bob", 1), peer("rob", 2), peer("zed", 3)];
        assert_eq!(
            message(resolve("ob", &known(&peers), None)),
            "unknown peer 'ob': did you mean 'bob' or 'rob'?"
        );
    }

    #[test]
    fn one_s_own_name_or_id_is_you() {
        let peers = [peer("bob", 1)];
        let (name, id) = peer("alice", 9);
        let me = Some(Known { name: &name, id });
        let k = known(&peers);
        assert_eq!(
            message(resolve("ALICE", &k, me)),
            "'ALICE' is you: name another peer"
        );
        assert_eq!(
            message(resolve(&id.to_string()[..10], &k, me)),
            format!("'{}' is you: name another peer", &id.to_string()[..10])
        );
        assert!(message(resolve("alice", &k, None)).starts_with("unknown peer 'alice'"));
    }

    #[test]
    fn a_shared_prefix_is_ambiguous_and_lists_names() {
        // Two rows for one id cannot happen in a table, but make a prefix ambiguous.
        let (_, id) = peer("x", 1);
        let names: Vec<PeerName> = ["dan", "bea", "cy", "ed", "al", "fay"]
            .iter()
            .map(|n| PeerName::new(n).expect("name"))
            .collect();
        let k: Vec<Known<'_>> = names.iter().map(|name| Known { name, id }).collect();
        let prefix = &id.to_string()[..8];
        let err = resolve(prefix, &k[..2], None).expect_err("ambiguous");
        assert_eq!(err.code(), code::AMBIGUOUS_PEER);
        assert_eq!(
            err.to_string(),
            format!("'{prefix}' matches 2 peers (bea, dan): give more of the id")
        );
        assert_eq!(
            message(resolve(prefix, &k, None)),
            format!("'{prefix}' matches 6 peers (al, bea, cy, dan, ed, ...): give more of the id")
        );
    }

    #[test]
    fn long_texts_are_cut_in_errors() {
        let long = "x".repeat(5000);
        let msg = message(resolve(&long, &[], None));
        assert!(msg.len() < 200, "{msg}");
        assert!(msg.contains(&format!("'{}...'", "x".repeat(40))), "{msg}");
    }

    fn name_strategy() -> impl Strategy<Value = String> {
        "[a-z0-9][a-z0-9_-]{0,31}"
    }

    proptest! {
        #[test]
        fn resolution_never_panics(
            text in any::<String>(),
            names in proptest::collection::vec(name_strategy(), 0..8),
        ) {
            let peers: Vec<(PeerName, PeerId)> = names
                .iter()
                .enumerate()
                .map(|(i, n)| peer(n, u8::try_from(i).unwrap_or(0)))
                .collect();
            let (my_name, my_id) = peer("me", 200);
            let me = Some(Known { name: &my_name, id: my_id });
            let _ = resolve(&text, &known(&peers), me).map_err(|e| e.to_string());
            let _ = resolve(&text, &known(&peers), None).map_err(|e| e.to_string());
        }

        #[test]
        fn an_exact_name_wins_over_a_prefix(seed in 1u8..100, len in MIN_PREFIX_CHARS..=MAX_NAME_LEN) {
            // One peer is named after the start of another's id.
            let (_, target) = peer("x", seed);
            let prefix = target.to_string()[..len].to_owned();
            let peers = [peer("target", seed), peer(&prefix, seed.wrapping_add(100))];
            let k = known(&peers);
            prop_assert_eq!(resolve(&prefix, &k, None), Ok(peers[1].1));
            prop_assert_eq!(resolve(&prefix.to_uppercase(), &k, None), Ok(peers[1].1));
            prop_assert_eq!(resolve("target", &k, None), Ok(target));
        }
    }
}
