//! The Unicode rules for names: one normal form, and the characters that deceive a reader.
//!
//! A name is compared and stored in Unicode NFC (canonical composition), so `café` typed on
//! Linux (`e` + U+0301 composed into U+00E9) and `café` read from a macOS disk (`e` followed
//! by U+0301) are one name, not two files that look the same. Compatibility forms (NFKC) are
//! only consulted to find look-alikes: a fullwidth `．．／` is not rewritten to `../`, it is
//! refused, because a name the sender sees should land under that same name or not at all.

use std::borrow::Cow;

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick, is_nfkc_quick};

/// What a refused character would make a reader see instead of what is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Deceit {
    /// Looks like the given ASCII text: a path separator or a dot.
    LooksLike(&'static str),
    /// A bidirectional control: it reorders how the rest of the name displays, so
    /// `invoice\u{202e}fdp.exe` shows as `invoiceexe.pdf`.
    Bidi,
    /// Displays as nothing, so two names that look identical differ, or a name hides a
    /// word break.
    Invisible,
}

/// Every character refused in a name, with its Unicode name, sorted by code point.
///
/// Why: a file name is read by a person before it is opened. A character that looks like
/// `/`, `\` or `.` can make a name read as a path that climbs out of the transfer (`．．／x`
/// reads as `../x`) or as another extension (`photo․exe` with U+2024 reads as
/// `photo.exe`); a bidi control makes a name display in another order than it is stored;
/// an invisible character makes two names that look the same differ, or one name hide
/// another. None of them has a use in a file name that outweighs that. Besides this list,
/// [`deceit`] refuses any character whose compatibility form (NFKC) holds `/` or `\`
/// (`℅` is `c/o`), and [`dot_lookalike`] any name whose NFKC form is `.` or `..`.
///
/// The cost: an emoji joined with U+200D ZERO WIDTH JOINER (a family, a profession with a
/// skin tone) is refused too; its parts sent separately are fine.
const REFUSED: &[(char, &str, Deceit)] = &[
    ('\u{00AD}', "SOFT HYPHEN", Deceit::Invisible),
    ('\u{034F}', "COMBINING GRAPHEME JOINER", Deceit::Invisible),
    ('\u{061C}', "ARABIC LETTER MARK", Deceit::Bidi),
    ('\u{115F}', "HANGUL CHOSEONG FILLER", Deceit::Invisible),
    ('\u{1160}', "HANGUL JUNGSEONG FILLER", Deceit::Invisible),
    ('\u{180E}', "MONGOLIAN VOWEL SEPARATOR", Deceit::Invisible),
    ('\u{200B}', "ZERO WIDTH SPACE", Deceit::Invisible),
    ('\u{200C}', "ZERO WIDTH NON-JOINER", Deceit::Invisible),
    ('\u{200D}', "ZERO WIDTH JOINER", Deceit::Invisible),
    ('\u{200E}', "LEFT-TO-RIGHT MARK", Deceit::Bidi),
    ('\u{200F}', "RIGHT-TO-LEFT MARK", Deceit::Bidi),
    ('\u{2024}', "ONE DOT LEADER", Deceit::LooksLike(".")),
    ('\u{2025}', "TWO DOT LEADER", Deceit::LooksLike("..")),
    ('\u{202A}', "LEFT-TO-RIGHT EMBEDDING", Deceit::Bidi),
    ('\u{202B}', "RIGHT-TO-LEFT EMBEDDING", Deceit::Bidi),
    ('\u{202C}', "POP DIRECTIONAL FORMATTING", Deceit::Bidi),
    ('\u{202D}', "LEFT-TO-RIGHT OVERRIDE", Deceit::Bidi),
    ('\u{202E}', "RIGHT-TO-LEFT OVERRIDE", Deceit::Bidi),
    ('\u{2044}', "FRACTION SLASH", Deceit::LooksLike("/")),
    ('\u{2060}', "WORD JOINER", Deceit::Invisible),
    ('\u{2061}', "FUNCTION APPLICATION", Deceit::Invisible),
    ('\u{2062}', "INVISIBLE TIMES", Deceit::Invisible),
    ('\u{2063}', "INVISIBLE SEPARATOR", Deceit::Invisible),
    ('\u{2064}', "INVISIBLE PLUS", Deceit::Invisible),
    ('\u{2066}', "LEFT-TO-RIGHT ISOLATE", Deceit::Bidi),
    ('\u{2067}', "RIGHT-TO-LEFT ISOLATE", Deceit::Bidi),
    ('\u{2068}', "FIRST STRONG ISOLATE", Deceit::Bidi),
    ('\u{2069}', "POP DIRECTIONAL ISOLATE", Deceit::Bidi),
    ('\u{206A}', "INHIBIT SYMMETRIC SWAPPING", Deceit::Invisible),
    ('\u{206B}', "ACTIVATE SYMMETRIC SWAPPING", Deceit::Invisible),
    ('\u{206C}', "INHIBIT ARABIC FORM SHAPING", Deceit::Invisible),
    (
        '\u{206D}',
        "ACTIVATE ARABIC FORM SHAPING",
        Deceit::Invisible,
    ),
    ('\u{206E}', "NATIONAL DIGIT SHAPES", Deceit::Invisible),
    ('\u{206F}', "NOMINAL DIGIT SHAPES", Deceit::Invisible),
    ('\u{2215}', "DIVISION SLASH", Deceit::LooksLike("/")),
    ('\u{2216}', "SET MINUS", Deceit::LooksLike("\\")),
    (
        '\u{27CB}',
        "MATHEMATICAL RISING DIAGONAL",
        Deceit::LooksLike("/"),
    ),
    (
        '\u{27CD}',
        "MATHEMATICAL FALLING DIAGONAL",
        Deceit::LooksLike("\\"),
    ),
    (
        '\u{29F5}',
        "REVERSE SOLIDUS OPERATOR",
        Deceit::LooksLike("\\"),
    ),
    ('\u{29F8}', "BIG SOLIDUS", Deceit::LooksLike("/")),
    ('\u{29F9}', "BIG REVERSE SOLIDUS", Deceit::LooksLike("\\")),
    ('\u{3164}', "HANGUL FILLER", Deceit::Invisible),
    ('\u{FE52}', "SMALL FULL STOP", Deceit::LooksLike(".")),
    ('\u{FE68}', "SMALL REVERSE SOLIDUS", Deceit::LooksLike("\\")),
    ('\u{FEFF}', "ZERO WIDTH NO-BREAK SPACE", Deceit::Invisible),
    ('\u{FF0E}', "FULLWIDTH FULL STOP", Deceit::LooksLike(".")),
    ('\u{FF0F}', "FULLWIDTH SOLIDUS", Deceit::LooksLike("/")),
    (
        '\u{FF3C}',
        "FULLWIDTH REVERSE SOLIDUS",
        Deceit::LooksLike("\\"),
    ),
    ('\u{FFA0}', "HALFWIDTH HANGUL FILLER", Deceit::Invisible),
    (
        '\u{FFF9}',
        "INTERLINEAR ANNOTATION ANCHOR",
        Deceit::Invisible,
    ),
    (
        '\u{FFFA}',
        "INTERLINEAR ANNOTATION SEPARATOR",
        Deceit::Invisible,
    ),
    (
        '\u{FFFB}',
        "INTERLINEAR ANNOTATION TERMINATOR",
        Deceit::Invisible,
    ),
];

/// Why `ch` may not appear in a name, if it may not. ASCII is never refused here (the ASCII
/// rules live in [`RelPath`](super::RelPath)).
pub(super) fn deceit(ch: char) -> Option<Deceit> {
    if ch.is_ascii() {
        return None;
    }
    if let Ok(i) = REFUSED.binary_search_by_key(&ch, |r| r.0) {
        return Some(REFUSED[i].2);
    }
    if std::iter::once(ch).nfkc().any(|c| c == '/') {
        return Some(Deceit::LooksLike("/"));
    }
    if std::iter::once(ch).nfkc().any(|c| c == '\\') {
        return Some(Deceit::LooksLike("\\"));
    }
    None
}

/// The first character of `name` that [`deceit`] refuses. Names already in NFKC (nearly
/// all) skip the compatibility lookups.
pub(super) fn first_deceit(name: &str) -> Option<(char, Deceit)> {
    if name.is_ascii() {
        return None;
    }
    let plain = is_nfkc_quick(name.chars()) == IsNormalized::Yes;
    name.chars().find_map(|ch| {
        let found = if plain {
            REFUSED
                .binary_search_by_key(&ch, |r| r.0)
                .ok()
                .map(|i| REFUSED[i].2)
        } else {
            deceit(ch)
        };
        found.map(|d| (ch, d))
    })
}

/// `Some(".")` or `Some("..")` if `name` is not that text but its NFKC form is.
pub(super) fn dot_lookalike(name: &str) -> Option<&'static str> {
    if name.is_ascii() || is_nfkc_quick(name.chars()) == IsNormalized::Yes {
        return None;
    }
    match name.nfkc().collect::<String>().as_str() {
        "." => Some("."),
        ".." => Some(".."),
        _ => None,
    }
}

/// `U+FF0F FULLWIDTH SOLIDUS`: the code point, and the name for a listed character.
pub(super) fn describe(ch: char) -> String {
    match REFUSED.binary_search_by_key(&ch, |r| r.0) {
        Ok(i) => format!("U+{:04X} {}", ch as u32, REFUSED[i].1),
        Err(_) => format!("U+{:04X}", ch as u32),
    }
}

/// `s` in Unicode NFC, borrowed when it already is (ASCII always is).
pub fn to_nfc(s: &str) -> Cow<'_, str> {
    if s.is_ascii() || is_nfc_quick(s.chars()) == IsNormalized::Yes {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.nfc().collect())
    }
}

/// The form in which two names (or paths) are compared for a collision: NFC, lower-cased,
/// NFC again. Two names with the same key are one name on a case-insensitive or
/// normalising file system (macOS, Windows) and look the same to a person anywhere.
pub fn collision_key(name: &str) -> String {
    let lower = to_nfc(name).to_lowercase();
    match to_nfc(&lower) {
        Cow::Borrowed(_) => lower,
        Cow::Owned(s) => s,
    }
}

/// Why `name` breaks the Unicode rules, if it does: it is not in NFC, or it holds a refused
/// character. A short check for code that receives names already validated as
/// [`RelPath`](super::RelPath) components and checks them again.
pub fn unicode_problem(name: &str) -> Option<&'static str> {
    if to_nfc(name) != name {
        return Some("not in Unicode NFC form");
    }
    if dot_lookalike(name).is_some() {
        return Some("reads as '.' or '..'");
    }
    first_deceit(name).map(|(_, d)| match d {
        Deceit::LooksLike(_) => "holds a character that looks like a path separator or a dot",
        Deceit::Bidi => "holds a bidi control, which reorders how the name displays",
        Deceit::Invisible => "holds an invisible character",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_has_no_ascii() {
        assert!(REFUSED.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(REFUSED.iter().all(|r| !r.0.is_ascii()));
    }

    #[test]
    fn compatibility_slashes_are_found_without_the_table() {
        assert_eq!(deceit('\u{2105}'), Some(Deceit::LooksLike("/"))); // ℅ = c/o
        assert_eq!(deceit('é'), None);
        assert_eq!(
            first_deceit("a\u{2100}b"),
            Some(('\u{2100}', Deceit::LooksLike("/")))
        );
        assert_eq!(first_deceit("日本語"), None);
    }

    #[test]
    fn keys_ignore_form_and_case() {
        assert_eq!(collision_key("Cafe\u{301}"), collision_key("CAF\u{c9}"));
        assert_eq!(collision_key("caf\u{e9}"), "caf\u{e9}");
        assert!(matches!(to_nfc("abc"), Cow::Borrowed(_)));
        assert_eq!(to_nfc("e\u{301}"), "\u{e9}");
        assert_eq!(describe('\u{ff0f}'), "U+FF0F FULLWIDTH SOLIDUS");
        assert_eq!(describe('\u{2105}'), "U+2105");
    }
}
