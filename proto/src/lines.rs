//! Splitting a byte stream into newline-terminated lines with a hard length cap, without
//! doing any I/O: the caller reads bytes and hands them over with [`LineSplitter::push`],
//! which consumes a prefix of them and says what it found.
//!
//! A line longer than the cap is reported once, as soon as it is known to be too long, and
//! the rest of it (up to and including its newline) is discarded as it arrives, so a reader
//! never holds more than the cap and the stream stays usable after it.

/// What one call to [`LineSplitter::push`] found in the bytes it consumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Split {
    /// No complete line yet: the bytes were kept (or discarded, within an over-long line).
    /// Push what is left, or more input.
    More,
    /// A complete line, without its newline (a trailing `\r` is kept). It may not be UTF-8.
    Line(Vec<u8>),
    /// The current line is longer than the cap. It is dropped, and the rest of it will be
    /// discarded up to its newline.
    TooLong,
}

/// A capped line splitter: the pure part of a line reader.
#[derive(Debug, Clone)]
pub struct LineSplitter {
    max: usize,
    /// The start of the current line.
    pending: Vec<u8>,
    /// Discarding the rest of an over-long line, up to and including its newline.
    skipping: bool,
}

impl LineSplitter {
    /// A splitter refusing lines longer than `max` bytes (newline excluded).
    pub fn new(max: usize) -> Self {
        Self {
            max,
            pending: Vec::new(),
            skipping: false,
        }
    }

    /// The cap, in bytes.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Takes bytes from the start of `input`, at most up to and including the first newline.
    /// Returns how many it took (drop those from the caller's buffer) and what they made.
    /// Everything taken is either kept for the current line or discarded, so the caller can
    /// free its buffer; an idle splitter holds no allocation.
    pub fn push(&mut self, input: &[u8]) -> (usize, Split) {
        let (chunk, used, complete) = match input.iter().position(|&b| b == b'\n') {
            Some(i) => (&input[..i], i + 1, true),
            None => (input, input.len(), false),
        };
        if self.skipping {
            self.skipping = !complete;
            return (used, Split::More);
        }
        if self.pending.len().saturating_add(chunk.len()) > self.max {
            self.pending = Vec::new();
            self.skipping = !complete;
            return (used, Split::TooLong);
        }
        self.pending.extend_from_slice(chunk);
        if complete {
            return (used, Split::Line(std::mem::take(&mut self.pending)));
        }
        (used, Split::More)
    }

    /// The end of the input: the last line if it had no newline (`None` when there is none,
    /// or when it was over-long). The splitter is then empty, ready for a new stream.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        self.skipping = false;
        let tail = std::mem::take(&mut self.pending);
        (!tail.is_empty()).then_some(tail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Everything `splitter` makes of `input` fed in pieces of `step` bytes, then the tail.
    fn split_all(max: usize, input: &[u8], step: usize) -> (Vec<Split>, Option<Vec<u8>>) {
        let mut s = LineSplitter::new(max);
        let mut out = Vec::new();
        for piece in input.chunks(step.max(1)) {
            let mut rest = piece;
            while !rest.is_empty() {
                let (used, found) = s.push(rest);
                assert!(used > 0 && used <= rest.len());
                rest = &rest[used..];
                if found != Split::More {
                    out.push(found);
                }
            }
        }
        (out, s.finish())
    }

    /// The same by a plain model: split on newlines, then apply the cap to each line.
    fn model(max: usize, input: &[u8]) -> (Vec<Split>, Option<Vec<u8>>) {
        let mut parts: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
        let last = parts.pop().unwrap_or_default();
        let mut out: Vec<Split> = parts
            .into_iter()
            .map(|l| {
                if l.len() > max {
                    Split::TooLong
                } else {
                    Split::Line(l.to_vec())
                }
            })
            .collect();
        let tail = if last.len() > max {
            out.push(Split::TooLong);
            None
        } else {
            (!last.is_empty()).then(|| last.to_vec())
        };
        (out, tail)
    }

    fn line(s: &str) -> Split {
        Split::Line(s.as_bytes().to_vec())
    }

    #[test]
    fn lines_at_the_cap_pass_and_over_it_are_reported_once() {
        let (found, tail) = split_all(5, b"12345\n123456\nok\n", 3);
        assert_eq!(found, vec![line("12345"), Split::TooLong, line("ok")]);
        assert_eq!(tail, None);
    }

    #[test]
    fn an_over_long_line_is_refused_before_its_newline_arrives() {
        let mut s = LineSplitter::new(4);
        assert_eq!(s.push(b"xxxxx"), (5, Split::TooLong));
        assert_eq!(s.push(b"yyyyyyyy"), (8, Split::More));
        assert_eq!(s.push(b"yy\nnext\n"), (3, Split::More));
        assert_eq!(s.push(b"next\n"), (5, line("next")));
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn the_tail_without_a_newline_comes_from_finish() {
        let (found, tail) = split_all(64, b"a\r\n\nb", 1);
        assert_eq!(found, vec![line("a\r"), line("")]);
        assert_eq!(tail, Some(b"b".to_vec()));
        assert_eq!(
            split_all(2, b"a\nbcd", 64),
            (vec![line("a"), Split::TooLong], None)
        );
    }

    #[test]
    fn an_idle_splitter_holds_nothing() {
        let mut s = LineSplitter::new(crate::rpc::MAX_LINE);
        let _ = s.push(b"some line\n");
        assert_eq!(s.pending.capacity(), 0);
        let _ = s.push(&vec![b'x'; crate::rpc::MAX_LINE + 1]);
        assert_eq!(s.pending.capacity(), 0);
    }

    proptest! {
        #[test]
        fn any_chunking_splits_like_the_model(
            input in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'a'), any::<u8>()], 0..300),
            max in 0usize..20,
            step in 1usize..40,
        ) {
            prop_assert_eq!(split_all(max, &input, step), model(max, &input));
        }
    }
}
