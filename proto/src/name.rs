//! Peer names: 1 to 32 of `a-z 0-9 - _`, starting with a letter or digit, folded to lower case.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest name accepted.
pub const MAX_NAME_LEN: usize = 32;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty or longer than [`MAX_NAME_LEN`].
    #[error("a name has 1 to {MAX_NAME_LEN} characters, got {len}")]
    Length {
        /// Characters given.
        len: usize,
    },
    /// A character outside `a-z 0-9 - _`.
    #[error("a name may hold only a-z, 0-9, '-' and '_' (found {found:?})")]
    BadChar {
        /// The first offending character.
        found: char,
    },
    /// Starts with `-` or `_`.
    #[error("a name starts with a letter or a digit")]
    BadStart,
}

/// A validated, lower-case peer name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PeerName(String);

impl PeerName {
    /// Validates `input`, folding ASCII upper case to lower case.
    pub fn new(input: &str) -> Result<Self, NameError> {
        let len = input.chars().count();
        if len == 0 || len > MAX_NAME_LEN {
            return Err(NameError::Length { len });
        }
        let folded = input.to_ascii_lowercase();
        if let Some(found) = folded
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
        {
            return Err(NameError::BadChar { found });
        }
        if folded.starts_with(['-', '_']) {
            return Err(NameError::BadStart);
        }
        Ok(Self(folded))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PeerName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<String> for PeerName {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(&s)
    }
}

impl From<PeerName> for String {
    fn from(n: PeerName) -> String {
        n.0
    }
}

impl fmt::Display for PeerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PeerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_folds() {
        assert_eq!(PeerName::new("Alice-01_x").unwrap().as_str(), "alice-01_x");
        assert_eq!(PeerName::new("7").unwrap().as_str(), "7");
        assert!(PeerName::new(&"a".repeat(32)).is_ok());
    }

    #[test]
    fn rejects() {
        assert_eq!(PeerName::new(""), Err(NameError::Length { len: 0 }));
        assert_eq!(
            PeerName::new(&"a".repeat(33)),
            Err(NameError::Length { len: 33 })
        );
        assert_eq!(PeerName::new("-a"), Err(NameError::BadStart));
        assert_eq!(PeerName::new("_a"), Err(NameError::BadStart));
        assert_eq!(PeerName::new("a b"), Err(NameError::BadChar { found: ' ' }));
        assert_eq!(PeerName::new("é"), Err(NameError::BadChar { found: 'é' }));
        assert!(PeerName::new("a\u{1b}").is_err());
    }

    #[test]
    fn serde_validates() {
        assert!(serde_json::from_str::<PeerName>("\"Bob\"").is_ok());
        assert!(serde_json::from_str::<PeerName>("\"b o b\"").is_err());
    }
}
