//! The names a share request carries: share names, entry names and content ids.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::MAX_SHARE_NAME;
use crate::transfer::{PathError, RelPath};

pub use crate::content::ContentId;

/// Why a share or entry name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name breaks a rule of relative paths (empty, `..`, control characters, a
    /// look-alike of `/`, a Windows device name ...).
    #[error("{0}")]
    Path(#[from] PathError),
    /// The name holds a `/`: a name is one path component.
    #[error("a name is one path component, without '/'")]
    Slash,
    /// A share name longer than [`MAX_SHARE_NAME`] bytes.
    #[error("the share name is {len} bytes long; at most {MAX_SHARE_NAME} are allowed")]
    TooLong {
        /// Bytes of UTF-8, in NFC.
        len: usize,
    },
}

/// One path component, checked by the rules of [`RelPath`] (so in NFC).
fn one_component(s: &str) -> Result<RelPath, NameError> {
    if s.contains('/') {
        return Err(NameError::Slash);
    }
    Ok(RelPath::new(s)?)
}

/// The name of a share: one path component (the rules of [`RelPath`]) of at most
/// [`MAX_SHARE_NAME`] bytes. Deserialising validates it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ShareName(RelPath);

impl ShareName {
    /// Validates `name` (in its NFC form, which it keeps).
    pub fn new(name: &str) -> Result<Self, NameError> {
        let p = one_component(name)?;
        if p.as_str().len() > MAX_SHARE_NAME {
            return Err(NameError::TooLong {
                len: p.as_str().len(),
            });
        }
        Ok(Self(p))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// The name of one entry of a directory listing: one path component (the rules of
/// [`RelPath`]). Deserialising validates it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EntryName(RelPath);

impl EntryName {
    /// Validates `name` (in its NFC form, which it keeps).
    pub fn new(name: &str) -> Result<Self, NameError> {
        one_component(name).map(Self)
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

macro_rules! name_impls {
    ($t:ident) => {
        impl TryFrom<String> for $t {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::new(&s)
            }
        }

        impl From<$t> for String {
            fn from(n: $t) -> String {
                n.0.into()
            }
        }

        impl FromStr for $t {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($t), self.as_str())
            }
        }
    };
}

name_impls!(ShareName);
name_impls!(EntryName);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_names_are_one_safe_component() {
        assert_eq!(ShareName::new("photos").unwrap().as_str(), "photos");
        assert_eq!(ShareName::new("cafe\u{301}").unwrap().as_str(), "caf\u{e9}");
        assert_eq!(ShareName::new("a/b"), Err(NameError::Slash));
        assert!(matches!(ShareName::new(".."), Err(NameError::Path(_))));
        assert!(matches!(ShareName::new(""), Err(NameError::Path(_))));
        assert!(matches!(ShareName::new("CON"), Err(NameError::Path(_))));
        assert!(matches!(
            ShareName::new("x\u{202e}y"),
            Err(NameError::Path(_))
        ));
        assert_eq!(
            ShareName::new(&"s".repeat(65)),
            Err(NameError::TooLong { len: 65 })
        );
        assert!(EntryName::new(&"s".repeat(255)).is_ok());
        assert!(EntryName::new(&"s".repeat(256)).is_err());
    }

    #[test]
    fn content_ids_print_and_parse() {
        let id = ContentId([0xab; 32]);
        assert_eq!(id.to_string(), "ab".repeat(32));
        assert_eq!(id.short(), "ab".repeat(6));
        assert_eq!(id.to_string().parse::<ContentId>(), Ok(id));
        assert_eq!("AB".repeat(32).parse::<ContentId>(), Ok(id));
        assert!("+b".repeat(32).parse::<ContentId>().is_err());
        assert!("ab".repeat(31).parse::<ContentId>().is_err());
    }
}
