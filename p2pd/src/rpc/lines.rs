//! Reading newline-terminated lines with a hard cap, over [`proto::lines::LineSplitter`]. An
//! over-long line is reported once and skipped up to its newline, so the connection stays
//! usable.

use bytes::{Buf, BytesMut};
use proto::lines::{LineSplitter, Split};
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

/// A capped line reader over any stream; the splitting is [`LineSplitter`]'s.
#[derive(Debug)]
pub struct LineReader<R> {
    io: R,
    /// Bytes read and not yet handed to the splitter.
    buf: BytesMut,
    split: LineSplitter,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    /// Reads lines of at most `max` bytes from `io`.
    pub fn new(io: R, max: usize) -> Self {
        Self {
            io,
            buf: BytesMut::new(),
            split: LineSplitter::new(max),
        }
    }

    /// The next line; `Ok(None)` at end of stream. Cancel-safe.
    pub async fn next(&mut self) -> std::io::Result<Option<Line>> {
        loop {
            while !self.buf.is_empty() {
                let (used, found) = self.split.push(&self.buf);
                self.buf.advance(used);
                if self.buf.is_empty() {
                    // An idle connection keeps no read buffer.
                    self.buf = BytesMut::new();
                }
                match found {
                    Split::More => {}
                    Split::Line(line) => return Ok(Some(text(line))),
                    Split::TooLong => return Ok(Some(Line::TooLong)),
                }
            }
            self.buf.reserve(8 * 1024);
            if self.io.read_buf(&mut self.buf).await? == 0 {
                return Ok(self.split.finish().map(text));
            }
        }
    }
}

fn text(line: Vec<u8>) -> Line {
    String::from_utf8(line).map_or(Line::NotUtf8, Line::Text)
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
