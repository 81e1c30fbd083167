//! Neutralising text from other peers before it reaches a terminal.

/// Replaces control characters (C0, DEL, C1), bidi overrides and isolates with visible
/// escapes, so received text can never drive the terminal. Printable text is unchanged.
pub fn neutralize(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    for c in input.chars() {
        match c {
            '\u{1b}' => out.push_str("\\e"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || is_bidi_control(c) => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{061c}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_become_visible() {
        assert_eq!(neutralize("a\u{1b}[2Jb"), "a\\e[2Jb");
        assert_eq!(neutralize("\u{1b}]52;c;aGk=\u{7}"), "\\e]52;c;aGk=\\u{7}");
        assert_eq!(neutralize("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(neutralize("\u{9b}"), "\\u{9b}");
        assert_eq!(neutralize("héllo wörld"), "héllo wörld");
    }
}
