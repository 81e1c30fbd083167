//! Checks shared by the fuzz targets in `fuzz_targets/`, and the seed corpus.
//!
//! Every target feeds untrusted bytes to a decoder of `proto` exactly as a daemon would and
//! then asserts properties of whatever decoded: a panic here is a finding.

pub mod frames;
pub mod json;
pub mod paths;
pub mod seeds;
pub mod share_seeds;

/// Asserts that `text` holds no control character (C0, DEL, C1), the property every string
/// shown to a user or written to a log after neutralising must have.
pub fn assert_no_control(text: &str) {
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        panic!("control character {c:?} in {text:?}");
    }
}

/// Asserts what [`proto::text::neutralize`] promises: no control or bidi character comes
/// out, and text without any comes out unchanged.
pub fn check_neutralize(input: &str) {
    let out = proto::text::neutralize(input);
    assert_no_control(&out);
    let bidi = |c: char| matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{061c}');
    assert!(!out.chars().any(bidi), "bidi control left in {out:?}");
    if !input.chars().any(|c| c.is_control() || bidi(c)) {
        assert_eq!(out, input, "printable text was rewritten");
    }
}
