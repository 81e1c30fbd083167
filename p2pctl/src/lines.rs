//! Reading newline-terminated lines with a hard length cap, so a misbehaving daemon cannot
//! make p2pctl buffer without limit.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::error::Error;

/// Reads lines of at most `max` bytes (newline excluded) from a buffered reader.
///
/// Cancel-safe: a partly read line stays in `pending`, so dropping a `next_line` future (for
/// example in `select!`) loses nothing.
pub(crate) struct LineReader<R> {
    inner: R,
    max: usize,
    pending: Vec<u8>,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    /// Wraps `inner`, refusing lines longer than `max` bytes.
    pub(crate) fn new(inner: R, max: usize) -> Self {
        Self {
            inner,
            max,
            pending: Vec::new(),
        }
    }

    /// The next line without its newline; `None` at end of input. A final fragment with no
    /// newline means the peer stopped mid-line, and is treated as end of input too.
    pub(crate) async fn next_line(&mut self) -> Result<Option<String>, Error> {
        loop {
            let available = self.inner.fill_buf().await.map_err(Error::Io)?;
            if available.is_empty() {
                self.pending.clear();
                return Ok(None);
            }
            let (chunk, used, complete) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (&available[..i], i + 1, true),
                None => (available, available.len(), false),
            };
            if self.pending.len() + chunk.len() > self.max {
                return Err(Error::Protocol(format!(
                    "a line longer than {} bytes",
                    self.max
                )));
            }
            self.pending.extend_from_slice(chunk);
            self.inner.consume(used);
            if complete {
                let line = std::mem::take(&mut self.pending);
                return String::from_utf8(line)
                    .map(Some)
                    .map_err(|_| Error::Protocol("a line that is not UTF-8".into()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::BufReader;

    async fn lines(input: &[u8], max: usize) -> Vec<Result<Option<String>, String>> {
        // A 3-byte buffer makes lines span several reads.
        let mut r = LineReader::new(BufReader::with_capacity(3, input), max);
        let mut out = Vec::new();
        loop {
            let next = r.next_line().await.map_err(|e| e.to_string());
            let done = !matches!(next, Ok(Some(_)));
            out.push(next);
            if done {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn splits_lines_across_reads() {
        assert_eq!(
            lines(b"hello\n\nworld!\n", 16).await,
            vec![
                Ok(Some("hello".into())),
                Ok(Some(String::new())),
                Ok(Some("world!".into())),
                Ok(None)
            ]
        );
    }

    #[tokio::test]
    async fn line_at_the_cap_passes_and_over_it_fails() {
        assert_eq!(
            lines(b"12345\n", 5).await,
            vec![Ok(Some("12345".into())), Ok(None)]
        );
        assert_eq!(
            lines(b"123456\n", 5).await,
            vec![Err(
                "p2pd sent an unexpected reply: a line longer than 5 bytes".into()
            )]
        );
        // Over the cap with no newline in sight: refused without waiting for the end.
        assert!(lines(&[b'x'; 100], 5).await[0].is_err());
    }

    #[tokio::test]
    async fn unterminated_tail_is_end_of_input() {
        assert_eq!(
            lines(b"a\n{\"half", 64).await,
            vec![Ok(Some("a".into())), Ok(None)]
        );
    }

    #[tokio::test]
    async fn invalid_utf8_is_a_protocol_error() {
        assert!(lines(b"\xff\xfe\n", 64).await[0].is_err());
    }
}
