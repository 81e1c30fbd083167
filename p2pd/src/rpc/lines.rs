//! Reading newline-terminated lines with a hard cap. An over-long line is reported once and
//! skipped up to its newline, so the connection stays usable.

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// One item read from the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete line, without its newline (a trailing `\r` is kept).
    Text(String),
    /// A line longer than the cap was skipped.
    TooLong,
    /// A line that is not UTF-8.
    NotUtf8,
}

/// A capped line reader over any stream.
#[derive(Debug)]
pub struct LineReader<R> {
    io: R,
    buf: BytesMut,
    max: usize,
    /// Set while skipping the rest of an over-long line.
    discarding: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    /// Reads lines of at most `max` bytes from `io`.
    pub fn new(io: R, max: usize) -> Self {
        Self {
            io,
            buf: BytesMut::new(),
            max,
            discarding: false,
        }
    }

    /// The next line; `Ok(None)` at end of stream. Cancel-safe.
    pub async fn next(&mut self) -> std::io::Result<Option<Line>> {
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line = self.buf.split_to(pos + 1);
                if self.buf.is_empty() {
                    self.buf = BytesMut::new();
                }
                if std::mem::take(&mut self.discarding) {
                    continue;
                }
                if pos > self.max {
                    return Ok(Some(Line::TooLong));
                }
                return Ok(Some(match std::str::from_utf8(&line[..pos]) {
                    Ok(s) => Line::Text(s.to_owned()),
                    Err(_) => Line::NotUtf8,
                }));
            }
            if self.buf.len() > self.max {
                // Too long already: drop what we have and skip to the next newline.
                self.buf.advance(self.buf.len());
                if !std::mem::replace(&mut self.discarding, true) {
                    return Ok(Some(Line::TooLong));
                }
            }
            self.buf.reserve(8 * 1024);
            if self.io.read_buf(&mut self.buf).await? == 0 {
                if self.buf.is_empty() || self.discarding {
                    return Ok(None);
                }
                let rest = self.buf.split();
                return Ok(Some(match String::from_utf8(rest.to_vec()) {
                    Ok(s) => Line::Text(s),
                    Err(_) => Line::NotUtf8,
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn over_long_lines_are_skipped_and_reading_goes_on() {
        let (mut w, r) = tokio::io::duplex(1024);
        let mut lines = LineReader::new(r, 10);
        let writer = tokio::spawn(async move {
            w.write_all(b"short\n").await.unwrap();
            w.write_all(&[b'x'; 5000]).await.unwrap();
            w.write_all(b"\nok again\n\xff\xfe\nlast").await.unwrap();
        });
        assert_eq!(
            lines.next().await.unwrap(),
            Some(Line::Text("short".into()))
        );
        assert_eq!(lines.next().await.unwrap(), Some(Line::TooLong));
        assert_eq!(
            lines.next().await.unwrap(),
            Some(Line::Text("ok again".into()))
        );
        assert_eq!(lines.next().await.unwrap(), Some(Line::NotUtf8));
        writer.await.unwrap();
        assert_eq!(lines.next().await.unwrap(), Some(Line::Text("last".into())));
        assert_eq!(lines.next().await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_line_of_exactly_the_cap_passes() {
        let (mut w, r) = tokio::io::duplex(64);
        let mut lines = LineReader::new(r, 4);
        w.write_all(b"abcd\nabcde\n").await.unwrap();
        drop(w);
        assert_eq!(lines.next().await.unwrap(), Some(Line::Text("abcd".into())));
        assert_eq!(lines.next().await.unwrap(), Some(Line::TooLong));
        assert_eq!(lines.next().await.unwrap(), None);
    }
}
