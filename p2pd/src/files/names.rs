//! Names: checking received components, part-file names and "name (n).ext" copies.

use std::io;
use std::path::{Path, PathBuf};

use cap_std::fs::Dir;
use proto::transfer::to_nfc;

use super::{FilesError, MAX_NAME, MAX_TAG};

/// Checks the tag and the components (defence in depth: the offer check comes first) and
/// returns the file name.
pub(super) fn check_names<'a>(
    transfer: &str,
    components: &[&'a str],
) -> Result<&'a str, FilesError> {
    let bad = |name: &str, reason| FilesError::BadName {
        name: name.to_owned(),
        reason,
    };
    if transfer.is_empty()
        || transfer.len() > MAX_TAG
        || !transfer
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(bad(
            transfer,
            "a transfer tag is 1 to 64 ASCII letters, digits, '-' or '_'",
        ));
    }
    let Some(name) = components.last() else {
        return Err(bad("", "empty path"));
    };
    for c in components {
        if c.is_empty() || *c == "." || *c == ".." {
            return Err(bad(c, "not a file or directory name"));
        }
        if c.len() > MAX_NAME {
            return Err(bad(c, "longer than 255 bytes"));
        }
        if c.contains(['/', '\\', '\0']) {
            return Err(bad(c, "contains a path separator or NUL"));
        }
        if let Some(reason) = proto::transfer::unicode_problem(c) {
            return Err(bad(c, reason));
        }
    }
    // A received name must never be taken for a part file of this transfer (it would be
    // reopened and written into).
    if name
        .strip_suffix(".part")
        .is_some_and(|s| s.strip_suffix(transfer).is_some_and(|s| s.ends_with('.')))
    {
        return Err(bad(name, "reserved for part files"));
    }
    Ok(name)
}

pub(super) fn rel_path<S: AsRef<Path>>(components: &[S]) -> PathBuf {
    components.iter().collect()
}

/// The entry of `dir` that is `name` under another Unicode spelling (its NFC form is
/// `name`, which is NFC), if there is one; the least such name when there are several.
pub(crate) fn other_spelling(dir: &Dir, name: &str) -> io::Result<Option<String>> {
    let mut found: Option<String> = None;
    for entry in dir.entries()? {
        let Ok(other) = entry?.file_name().into_string() else {
            continue;
        };
        if other != name && to_nfc(&other) == name && found.as_ref().is_none_or(|f| other < *f) {
            found = Some(other);
        }
    }
    Ok(found)
}

/// `.<name>.<transfer>.part`, cut with a digest of the name when too long.
pub(super) fn part_name(name: &str, transfer: &str) -> String {
    let plain = format!(".{name}.{transfer}.part");
    if plain.len() <= MAX_NAME {
        return plain;
    }
    let digest = blake3::hash(name.as_bytes()).to_hex();
    // '.' + cut + '~' + 16 hex + '.' + transfer + ".part"
    let budget = MAX_NAME - (1 + 1 + 16 + 1 + transfer.len() + 5);
    format!(
        ".{}~{}.{transfer}.part",
        cut(name, budget),
        &digest.as_str()[..16]
    )
}

/// The `n`th candidate: `name` itself for 0, else `stem (n).ext`, `name (n)` without an
/// extension, `.dotfile (n)` for a dotfile; cut to fit [`MAX_NAME`].
pub(super) fn copy_name(name: &str, n: u32) -> String {
    if n == 0 {
        return name.to_owned();
    }
    let suffix = format!(" ({n})");
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 && i + 1 < name.len() && name.len() - i + suffix.len() < MAX_NAME => {
            name.split_at(i)
        }
        _ => (name, ""),
    };
    let stem = cut(stem, MAX_NAME - suffix.len() - ext.len());
    format!("{stem}{suffix}{ext}")
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub(super) fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
