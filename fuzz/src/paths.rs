//! What a validated relative path and a decoded manifest must never hold.

use std::collections::HashSet;
use std::path::{Component, Path};

use proto::transfer::{
    MAX_COMPONENT_LEN, MAX_COMPONENTS, MAX_FILES, MAX_PATH_LEN, MAX_TOTAL_SIZE, Manifest,
    PathError, RelPath, chunk_count, chunk_range,
};

/// Checks the outcome of validating `input`: an accepted path is exactly the input and safe;
/// a refusal's message is bounded and shows no raw control character.
pub fn check_validation(input: &str, result: &Result<RelPath, PathError>) {
    match result {
        Ok(p) => {
            assert_eq!(p.as_str(), input, "validation rewrote the path");
            check_rel_path(p);
        }
        Err(e) => {
            let msg = e.to_string();
            crate::assert_no_control(&msg);
            assert!(msg.len() <= 1024, "error message of {} bytes", msg.len());
        }
    }
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

/// Every rule a decoded [`Manifest`] promises: safe paths, 1 to `MAX_FILES` files, no two
/// equal ignoring case, no file under another file, a bounded total, and chunk arithmetic
/// that covers each file exactly.
pub fn check_manifest(m: &Manifest) {
    assert!(m.validate().is_ok(), "a decoded manifest fails validation");
    assert!(!m.files.is_empty() && m.files.len() <= MAX_FILES);
    let mut total: u64 = 0;
    let mut folded = HashSet::new();
    for f in &m.files {
        check_rel_path(&f.path);
        total = total.checked_add(f.size).expect("total overflows");
        assert!(
            folded.insert(f.path.as_str().to_lowercase()),
            "case duplicate"
        );
        check_chunks(f.size);
    }
    assert!(total <= MAX_TOTAL_SIZE);
    assert_eq!(m.total_size(), total);
    for key in &folded {
        for (slash, _) in key.match_indices('/') {
            assert!(!folded.contains(&key[..slash]), "{key:?} is under a file");
        }
    }
    let count = u32::try_from(m.files.len()).expect("at most MAX_FILES");
    assert!(m.file(count - 1).is_some() && m.file(count).is_none());
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
