//! What a validated relative path and a decoded manifest must never hold.

use std::collections::HashSet;
use std::path::{Component, Path};

use proto::transfer::{
    MAX_COMPONENT_LEN, MAX_COMPONENTS, MAX_DIRS, MAX_FILES, MAX_PATH_LEN, MAX_TOTAL_SIZE, Manifest,
    PathError, RelPath, chunk_count, chunk_range,
};
use unicode_normalization::{UnicodeNormalization, is_nfc};

/// Checks the outcome of validating `input`: an accepted path is the input in Unicode NFC,
/// safe, and validates to itself; every spelling of the input (NFC, NFD) gets the same
/// verdict; a refusal's message is bounded and shows no raw control, bidi or invisible
/// character.
pub fn check_validation(input: &str, result: &Result<RelPath, PathError>) {
    match result {
        Ok(p) => {
            let nfc: String = input.nfc().collect();
            assert_eq!(p.as_str(), nfc, "validation rewrote the path beyond NFC");
            check_rel_path(p);
        }
        Err(e) => {
            let msg = e.to_string();
            crate::assert_no_control(&msg);
            assert!(
                !msg.chars().any(|c| bidi(c) || invisible(c)),
                "bidi or invisible character in {msg:?}"
            );
            assert!(msg.len() <= 1024, "error message of {} bytes", msg.len());
        }
    }
    if input.len() <= MAX_PATH_LEN {
        for spelling in [input.nfc().collect::<String>(), input.nfd().collect()] {
            if spelling.len() <= MAX_PATH_LEN {
                assert_eq!(&RelPath::new(&spelling), result, "{spelling:?}");
            }
        }
    }
}

/// Bidi controls: they reorder how a name displays.
fn bidi(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{061c}')
}

/// Zero-width and other invisible format characters.
fn invisible(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200d}' | '\u{2060}'..='\u{2064}' | '\u{feff}' | '\u{ad}')
}

/// Look-alikes of `/`, `\` and `.`: those the rules name, and any character whose
/// compatibility form holds a slash or backslash.
fn lookalike(c: char) -> bool {
    let named = matches!(
        c,
        '\u{2215}' | '\u{2044}' | '\u{29f8}' | '\u{2024}' | '\u{2025}' | '\u{fe52}' | '\u{ff0e}'
    );
    named || !c.is_ascii() && c.to_string().nfkc().any(|k| matches!(k, '/' | '\\'))
}

/// Every rule a [`RelPath`] promises, checked independently of the validator.
pub fn check_rel_path(p: &RelPath) {
    let s = p.as_str();
    assert!(
        !s.is_empty() && s.len() <= MAX_PATH_LEN,
        "length {}",
        s.len()
    );
    assert!(!s.starts_with('/'), "absolute: {s:?}");
    assert!(
        !s.chars().any(|c| c.is_control() || c == '\\' || c == ':'),
        "forbidden character in {s:?}"
    );
    let parts: Vec<&str> = s.split('/').collect();
    assert!(parts.len() <= MAX_COMPONENTS, "{} components", parts.len());
    assert_eq!(p.components().collect::<Vec<_>>(), parts);
    assert_eq!(p.file_name(), parts[parts.len() - 1]);
    for c in &parts {
        assert!(
            !c.is_empty() && c.len() <= MAX_COMPONENT_LEN,
            "component {c:?}"
        );
        assert!(*c != "." && *c != "..", "dot component in {s:?}");
        assert!(!c.ends_with(['.', ' ']), "trailing dot or space: {c:?}");
        assert!(!windows_device(c), "device name {c:?}");
    }
    // The platform's own parser agrees: only plain names, so joining it to a directory can
    // never leave that directory.
    let comps: Vec<Component<'_>> = Path::new(s).components().collect();
    assert_eq!(comps.len(), parts.len(), "std::path sees other components");
    assert!(comps.iter().all(|c| matches!(c, Component::Normal(_))));
    let base = Path::new("/dest");
    assert!(base.join(s).starts_with(base));
    assert_eq!(s.parse::<RelPath>().as_ref(), Ok(p));
    // One normal form, and nothing that deceives a reader.
    assert!(is_nfc(s), "not NFC: {s:?}");
    assert!(
        !s.chars().any(|c| bidi(c) || invisible(c) || lookalike(c)),
        "deceptive character in {s:?}"
    );
    for c in &parts {
        let k: String = c.nfkc().collect();
        assert!(k != "." && k != "..", "{c:?} reads as {k:?}");
    }
}

/// A Windows device name as Windows reads it: the part before the first dot, trailing spaces
/// dropped, in any case.
fn windows_device(component: &str) -> bool {
    let stem = component
        .split('.')
        .next()
        .unwrap_or("")
        .trim_end_matches(' ');
    let lower = stem.to_ascii_lowercase();
    if ["con", "prn", "aux", "nul", "conin$", "conout$"].contains(&lower.as_str()) {
        return true;
    }
    let digits = [
        "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "\u{b9}", "\u{b2}", "\u{b3}",
    ];
    ["com", "lpt"]
        .iter()
        .any(|p| lower.strip_prefix(p).is_some_and(|n| digits.contains(&n)))
}

/// Every rule a decoded [`Manifest`] promises: safe paths, at most `MAX_FILES` files and at
/// least one file or directory, no two equal ignoring case and Unicode form, no file under
/// another file, a bounded total, and chunk arithmetic that covers each file exactly.
pub fn check_manifest(m: &Manifest) {
    assert!(m.validate().is_ok(), "a decoded manifest fails validation");
    assert!(m.files.len() <= MAX_FILES && !(m.files.is_empty() && m.dirs.is_empty()));
    let mut total: u64 = 0;
    let mut folded = HashSet::new();
    for f in &m.files {
        check_rel_path(&f.path);
        total = total.checked_add(f.size).expect("total overflows");
        let key: String = f.path.as_str().nfc().collect::<String>().to_lowercase();
        assert!(
            folded.insert(key.nfc().collect::<String>()),
            "duplicate ignoring case and Unicode form"
        );
        check_chunks(f.size);
    }
    assert!(total <= MAX_TOTAL_SIZE);
    assert_eq!(m.total_size(), total);
    assert!(m.dirs.len() <= MAX_DIRS);
    let mut dirs = HashSet::new();
    for d in &m.dirs {
        check_rel_path(d);
        let key: String = d.as_str().nfc().collect::<String>().to_lowercase();
        let key = key.nfc().collect::<String>();
        assert!(!folded.contains(&key), "{d} is also a file");
        assert!(
            dirs.insert(key),
            "duplicate directory ignoring case and Unicode form"
        );
    }
    for key in folded.iter().chain(&dirs) {
        for (slash, _) in key.match_indices('/') {
            assert!(!folded.contains(&key[..slash]), "{key:?} is under a file");
        }
    }
    let count = u32::try_from(m.files.len()).expect("at most MAX_FILES");
    assert!(m.file(count).is_none());
    if let Some(last) = count.checked_sub(1) {
        assert!(m.file(last).is_some());
    }
}

/// Chunks of a file of `size` bytes tile it: the first starts at 0, each follows the one
/// before, the last ends at `size`, none is empty, and there is none past the last.
fn check_chunks(size: u64) {
    let n = chunk_count(size);
    assert_eq!(chunk_range(size, n), None);
    if n == 0 {
        assert_eq!(size, 0);
        return;
    }
    let (first, first_len) = chunk_range(size, 0).expect("chunk 0 exists");
    assert_eq!(first, 0);
    assert!(first_len > 0);
    let (last, last_len) = chunk_range(size, n - 1).expect("last chunk exists");
    assert!(last_len > 0);
    assert_eq!(last + last_len, size, "chunks do not end at the size");
    if n >= 2 {
        let (prev, prev_len) = chunk_range(size, n - 2).expect("chunk exists");
        assert_eq!(prev + prev_len, last, "chunks leave a gap");
    }
}
