//! Reading newline-terminated lines with a hard length cap, so neither a misbehaving daemon
//! nor a huge paste on stdin can make p2pctl buffer without limit.

use std::fmt;
use std::io;

use proto::lines::{LineSplitter, Split};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// Why a line could not be read.
#[derive(Debug)]
pub(crate) enum LineError {
    /// The line is longer than the cap. The reader skips the rest of it, so the next call
    /// returns the line after it.
    TooLong {
        /// The cap, in bytes.
        max: usize,
    },
    /// The line is not UTF-8 (it has been consumed).
    NotUtf8,
    /// Reading failed.
    Io(io::Error),
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineError::TooLong { max } => write!(f, "a line longer than {max} bytes"),
            LineError::NotUtf8 => f.write_str("a line that is not UTF-8"),
            LineError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// What to do with a last line that has no newline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tail {
    /// Drop it: the writer stopped mid-line (the daemon's socket).
    Drop,
    /// Return it as a line (stdin: `printf 'a\nb'` is two lines).
    Keep,
}

/// Reads lines of at most `max` bytes (newline excluded) from a buffered reader; the
/// splitting is [`LineSplitter`]'s.
///
/// Cancel-safe: a partly read line stays in the splitter, so dropping a `next_line` future
/// (for example in `select!`) loses nothing.
pub(crate) struct LineReader<R> {
    inner: R,
    tail: Tail,
    split: LineSplitter,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    /// Wraps `inner`, refusing lines longer than `max` bytes.
    pub(crate) fn new(inner: R, max: usize, tail: Tail) -> Self {
        Self {
            inner,
            tail,
            split: LineSplitter::new(max),
        }
    }

    /// The next line without its newline; `None` at end of input.
    pub(crate) async fn next_line(&mut self) -> Result<Option<String>, LineError> {
        loop {
            let available = self.inner.fill_buf().await.map_err(LineError::Io)?;
            if available.is_empty() {
                return match self.split.finish() {
                    Some(tail) if self.tail == Tail::Keep => utf8(tail).map(Some),
                    _ => Ok(None),
                };
            }
            let (used, found) = self.split.push(available);
            self.inner.consume(used);
            match found {
                Split::More => {}
                Split::Line(line) => return utf8(line).map(Some),
                Split::TooLong => {
                    return Err(LineError::TooLong {
                        max: self.split.max(),
                    });
                }
            }
        }
    }
}

fn utf8(line: Vec<u8>) -> Result<String, LineError> {
    String::from_utf8(line).map_err(|_| LineError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::BufReader;

    async fn lines(input: &[u8], max: usize, tail: Tail) -> Vec<Result<String, String>> {
        // A 3-byte buffer makes lines span several reads.
        let mut r = LineReader::new(BufReader::with_capacity(3, input), max, tail);
        let mut out = Vec::new();
        loop {
            match r.next_line().await {
                Ok(None) => return out,
                Ok(Some(line)) => out.push(Ok(line)),
                Err(e) => out.push(Err(e.to_string())),
            }
            assert!(out.len() < 100, "no end of input");
        }
    }

    fn ok(lines: &[&str]) -> Vec<Result<String, String>> {
        lines.iter().map(|l| Ok((*l).to_owned())).collect()
    }

    #[tokio::test]
    async fn splits_lines_across_reads() {
        assert_eq!(
            lines(b"hello\n\nworld!\n", 16, Tail::Drop).await,
            ok(&["hello", "", "world!"])
        );
    }

    #[tokio::test]
    async fn line_at_the_cap_passes_and_over_it_is_skipped() {
        assert_eq!(lines(b"12345\n", 5, Tail::Drop).await, ok(&["12345"]));
        assert_eq!(
            lines(b"123456\nok\n", 5, Tail::Drop).await,
            vec![Err("a line longer than 5 bytes".into()), Ok("ok".into())]
        );
        // Over the cap with no newline in sight: refused without waiting for the end.
        let mut r = LineReader::new(&[b'x'; 100][..], 5, Tail::Keep);
        assert!(matches!(
            r.next_line().await,
            Err(LineError::TooLong { max: 5 })
        ));
        assert!(matches!(r.next_line().await, Ok(None)));
    }

    #[tokio::test]
    async fn unterminated_tail_is_dropped_or_kept() {
        assert_eq!(lines(b"a\n{\"half", 64, Tail::Drop).await, ok(&["a"]));
        assert_eq!(lines(b"a\nb", 64, Tail::Keep).await, ok(&["a", "b"]));
        assert_eq!(lines(b"a\n", 64, Tail::Keep).await, ok(&["a"]));
    }

    #[tokio::test]
    async fn invalid_utf8_is_an_error_and_reading_goes_on() {
        assert_eq!(
            lines(b"\xff\xfe\nfine\n", 64, Tail::Drop).await,
            vec![Err("a line that is not UTF-8".into()), Ok("fine".into())]
        );
    }
}
