//! Relative paths inside an offer, and every rule that makes one safe to create.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::unicode::{Deceit, deceit, describe, dot_lookalike, first_deceit, to_nfc};
use super::{MAX_COMPONENT_LEN, MAX_COMPONENTS, MAX_PATH_LEN};
use crate::text::neutralize;

/// Why a relative path was refused. Component indexes count from 0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The empty string.
    #[error("the path is empty")]
    Empty,
    /// Longer than [`MAX_PATH_LEN`] bytes.
    #[error("the path is {len} bytes long; at most {MAX_PATH_LEN} are allowed")]
    TooLong {
        /// Bytes of UTF-8.
        len: usize,
    },
    /// Starts with `/`.
    #[error("the path is absolute; only paths relative to the transfer are allowed")]
    Absolute,
    /// More than [`MAX_COMPONENTS`] components.
    #[error("the path has {count} components; at most {MAX_COMPONENTS} are allowed")]
    TooManyComponents {
        /// Components found.
        count: usize,
    },
    /// An empty component: `a//b`, or a trailing `/`.
    #[error("component {index} is empty (doubled or trailing '/')")]
    EmptyComponent {
        /// Which component.
        index: usize,
    },
    /// A component longer than [`MAX_COMPONENT_LEN`] bytes.
    #[error("component {index} ({}) is {len} bytes long; at most {MAX_COMPONENT_LEN} are allowed", shown(.component))]
    ComponentTooLong {
        /// Which component.
        index: usize,
        /// The component.
        component: String,
        /// Its length in bytes of UTF-8.
        len: usize,
    },
    /// A component that is `.` or `..`.
    #[error("component {index} is {component:?}: '.' and '..' are not allowed")]
    DotComponent {
        /// Which component.
        index: usize,
        /// `.` or `..`.
        component: String,
    },
    /// A control character (C0, DEL or C1, including NUL and newlines).
    #[error("component {index} ({}) holds the control character {ch:?}", shown(.component))]
    ControlChar {
        /// Which component.
        index: usize,
        /// The component.
        component: String,
        /// The first control character in it.
        ch: char,
    },
    /// A backslash, a path separator on Windows.
    #[error("component {index} ({}) holds a backslash, a path separator on Windows", shown(.component))]
    Backslash {
        /// Which component.
        index: usize,
        /// The component.
        component: String,
    },
    /// A colon: a drive letter (`C:`) or an NTFS alternate data stream (`a:b`) on Windows.
    #[error("component {index} ({}) holds ':', a drive letter or data stream on Windows", shown(.component))]
    Colon {
        /// Which component.
        index: usize,
        /// The component.
        component: String,
    },
    /// A Windows device name (`CON`, `NUL`, `COM1`, `lpt9.log`, `aux.` ...).
    #[error("component {index} ({}) is a reserved device name on Windows", shown(.component))]
    Reserved {
        /// Which component.
        index: usize,
        /// The component.
        component: String,
    },
    /// Ends with `.` or a space, which Windows silently strips.
    #[error("component {index} ({}) ends with a dot or a space", shown(.component))]
    TrailingDotOrSpace {
        /// Which component.
        index: usize,
        /// The component.
        component: String,
    },
    /// A character that looks like `/`, `\` or `.` (fullwidth `．．／`, U+2215 DIVISION
    /// SLASH, ...), or a component whose compatibility form is `.` or `..`.
    #[error("component {index} ({}) holds {}, which reads as {reads_as:?}", shown(.component), describe(*.ch))]
    LookAlike {
        /// Which component.
        index: usize,
        /// The component.
        component: String,
        /// The first such character.
        ch: char,
        /// What it reads as: `/`, `\`, `.` or `..`.
        reads_as: String,
    },
    /// A bidirectional control (U+202E RIGHT-TO-LEFT OVERRIDE, ...), which changes the order
    /// in which the name displays.
    #[error("component {index} ({}) holds {}, a bidi control that reorders how the name displays", shown(.component), describe(*.ch))]
    BidiControl {
        /// Which component.
        index: usize,
        /// The component.
        component: String,
        /// The first such character.
        ch: char,
    },
    /// An invisible character (U+200B ZERO WIDTH SPACE, U+FEFF, soft hyphen, ...).
    #[error("component {index} ({}) holds {}, an invisible character", shown(.component), describe(*.ch))]
    Invisible {
        /// Which component.
        index: usize,
        /// The component.
        component: String,
        /// The first such character.
        ch: char,
    },
}

/// A component (or path) as it appears in a message: quoted, neutralised (invisible
/// characters escaped too), cut after 40 characters.
pub(super) fn shown(component: &str) -> String {
    const MAX_CHARS: usize = 40;
    let (text, more) = match component.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => (&component[..cut], "..."),
        None => (component, ""),
    };
    let mut out = String::with_capacity(text.len() + 2);
    for ch in neutralize(text).chars() {
        if deceit(ch) == Some(Deceit::Invisible) {
            out.push_str(&format!("\\u{{{:x}}}", ch as u32));
        } else {
            out.push(ch);
        }
    }
    format!("\"{out}\"{more}")
}

/// `CON`, `PRN`, `AUX`, `NUL`, `CONIN$`, `CONOUT$`, `COM0`-`COM9`, `LPT0`-`LPT9` (also with
/// superscript ¹²³), in any case, with any extension, after Windows strips trailing dots and
/// spaces (from the name and from the part before the extension).
fn is_windows_reserved(component: &str) -> bool {
    let trimmed = component.trim_end_matches(['.', ' ']);
    let stem = trimmed
        .split('.')
        .next()
        .unwrap_or("")
        .trim_end_matches(' ');
    if stem.len() > 7 {
        return false;
    }
    let lower = stem.to_ascii_lowercase();
    match lower.as_str() {
        "con" | "prn" | "aux" | "nul" | "conin$" | "conout$" => true,
        _ => match (lower.get(..3), lower.get(3..)) {
            (Some("com" | "lpt"), Some(n)) => {
                (n.len() == 1 && n.as_bytes()[0].is_ascii_digit())
                    || matches!(n, "\u{b9}" | "\u{b2}" | "\u{b3}")
            }
            _ => false,
        },
    }
}

fn check_component(index: usize, c: &str) -> Result<(), PathError> {
    let component = || c.to_owned();
    if c.is_empty() {
        return Err(PathError::EmptyComponent { index });
    }
    if c.len() > MAX_COMPONENT_LEN {
        let len = c.len();
        return Err(PathError::ComponentTooLong {
            index,
            component: component(),
            len,
        });
    }
    if c == "." || c == ".." {
        return Err(PathError::DotComponent {
            index,
            component: component(),
        });
    }
    for ch in c.chars() {
        match ch {
            ch if ch.is_control() => {
                return Err(PathError::ControlChar {
                    index,
                    component: component(),
                    ch,
                });
            }
            '\\' => {
                return Err(PathError::Backslash {
                    index,
                    component: component(),
                });
            }
            ':' => {
                return Err(PathError::Colon {
                    index,
                    component: component(),
                });
            }
            _ => {}
        }
    }
    if let Some((ch, deceit)) = first_deceit(c) {
        return Err(match deceit {
            Deceit::LooksLike(reads_as) => PathError::LookAlike {
                index,
                component: component(),
                ch,
                reads_as: reads_as.to_owned(),
            },
            Deceit::Bidi => PathError::BidiControl {
                index,
                component: component(),
                ch,
            },
            Deceit::Invisible => PathError::Invisible {
                index,
                component: component(),
                ch,
            },
        });
    }
    if let Some(reads_as) = dot_lookalike(c) {
        return Err(PathError::LookAlike {
            index,
            component: component(),
            ch: c.chars().find(|ch| !ch.is_ascii()).unwrap_or('.'),
            reads_as: reads_as.to_owned(),
        });
    }
    if is_windows_reserved(c) {
        return Err(PathError::Reserved {
            index,
            component: component(),
        });
    }
    if c.ends_with(['.', ' ']) {
        return Err(PathError::TrailingDotOrSpace {
            index,
            component: component(),
        });
    }
    Ok(())
}

/// The relative path of a file inside an offer: components joined by `/`, each one in Unicode
/// NFC and safe to create as a single name on Linux, macOS and Windows (see [`PathError`] for
/// every rule).
/// It names a place under the destination directory and can never climb out of it; still, a
/// receiver creates it through a directory handle, one component at a time.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RelPath(String);

impl RelPath {
    /// Validates `path` in its Unicode NFC form, which it keeps: composed and decomposed
    /// spellings of one name give the same `RelPath`, and `RelPath::new(p.as_str())` is `p`.
    /// Nothing else is rewritten: a name that breaks a rule is refused, never repaired.
    /// Lengths are counted on the NFC form, the one that lands on disk.
    pub fn new(path: &str) -> Result<Self, PathError> {
        if path.is_empty() {
            return Err(PathError::Empty);
        }
        if path.len() > MAX_PATH_LEN {
            return Err(PathError::TooLong { len: path.len() });
        }
        if path.starts_with('/') {
            return Err(PathError::Absolute);
        }
        let count = path.split('/').count();
        if count > MAX_COMPONENTS {
            return Err(PathError::TooManyComponents { count });
        }
        // '/' has no decomposition and composes with nothing, so the components of the NFC
        // path are the NFC forms of the components.
        let path = to_nfc(path);
        if path.len() > MAX_PATH_LEN {
            return Err(PathError::TooLong { len: path.len() });
        }
        for (index, c) in path.split('/').enumerate() {
            check_component(index, c)?;
        }
        Ok(Self(path.into_owned()))
    }

    /// The path as text, components joined by `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The components, first to last; each is non-empty and free of separators.
    pub fn components(&self) -> std::str::Split<'_, char> {
        self.0.split('/')
    }

    /// The last component.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RelPath({:?})", self.0)
    }
}

impl AsRef<str> for RelPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for RelPath {
    type Err = PathError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<String> for RelPath {
    type Error = PathError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(&s)
    }
}

impl TryFrom<&str> for RelPath {
    type Error = PathError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl From<RelPath> for String {
    fn from(p: RelPath) -> String {
        p.0
    }
}

// ---------------------------------------------------------------------------------------------
// Hash and byte-string serde helpers

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_names() {
        for name in [
            "con",
            "CON",
            "Con.txt",
            "prn",
            "aux",
            "aux.",
            "nul ",
            "nul.tar.gz",
            "com0",
            "COM9",
            "lpt1",
            "LPT9.log",
            "com\u{b9}",
            "conin$",
            "CONOUT$",
            "con .txt",
            "aux. .",
        ] {
            assert!(is_windows_reserved(name), "{name:?}");
        }
        for name in [
            "console",
            "com",
            "com10",
            "lpt",
            "lptx",
            "nul_",
            "xcon",
            ".con",
            "com\u{b4}",
            "con$",
            "",
            "ééé",
        ] {
            assert!(!is_windows_reserved(name), "{name:?}");
        }
    }

    #[test]
    fn errors_show_components_neutralised_and_short() {
        assert_eq!(shown("a\u{200b}b\u{202e}c"), "\"a\\u{200b}b\\u{202e}c\"");
        let err = RelPath::new("ok/a\u{1b}[2Jb").unwrap_err();
        let msg = err.to_string();
        assert!(!msg.contains('\u{1b}'), "{msg}");
        assert!(msg.contains("component 1"), "{msg}");
        let long = "x".repeat(300);
        let msg = RelPath::new(&long).unwrap_err().to_string();
        assert!(msg.len() < 200, "{msg}");
        assert!(msg.contains("300 bytes"), "{msg}");
    }
}
