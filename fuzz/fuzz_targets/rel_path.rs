//! Relative paths of offered files, the defence against writing outside the destination.
//!
//! Checks: an accepted path is the input in Unicode NFC and obeys every rule independently
//! of the validator (no `..` or `.`, not absolute, no backslash, colon, NUL or control
//! character, no empty, over-long or Windows-reserved component, no look-alike of `/`, `\`
//! or `.`, no bidi control or invisible character, and `std::path` sees only plain names);
//! validation is idempotent and gives every spelling (NFC, NFD) of the input the same
//! verdict; a refusal's message is bounded and printable; the wire and JSON decoders agree
//! with `RelPath::new`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use p2p_fuzz::paths::check_validation;
use proto::transfer::RelPath;

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let direct = RelPath::new(&input);
    check_validation(&input, &direct);
    let wire = postcard::to_stdvec(&*input).expect("a string encodes");
    let decoded = postcard::from_bytes::<RelPath>(&wire);
    assert_eq!(decoded.ok().as_ref(), direct.as_ref().ok());
    let json = serde_json::to_string(&*input).expect("a string serialises");
    let parsed = serde_json::from_str::<RelPath>(&json);
    assert_eq!(parsed.ok().as_ref(), direct.as_ref().ok());
});
