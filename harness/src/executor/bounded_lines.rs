//! What the harness keeps of a stage's output, bounded whatever the stage writes: lines read in
//! chunks of at most [`MAX_LINE_BYTES`] (a longer line is cut and the rest skipped; bytes that
//! are not UTF-8 are replaced), and a failure tail of the last lines, at most
//! [`TAIL_LINES`] and [`MAX_TAIL_BYTES`].

use std::collections::VecDeque;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

/// Longest line passed on; the rest of a longer one is skipped.
pub const MAX_LINE_BYTES: usize = 64 << 10;
/// Lines of stderr kept for the database when a stage fails.
pub const TAIL_LINES: usize = 40;
/// Bytes of stderr kept for the database when a stage fails.
pub const MAX_TAIL_BYTES: usize = 16 << 10;
/// Longest line in the tail.
const MAX_TAIL_LINE_BYTES: usize = 2 << 10;

/// The next line of `reader` without its line end, at most [`MAX_LINE_BYTES`] (cut lines end
/// with a note); None at the end of the stream or on a read error.
pub async fn next_line(reader: &mut (impl AsyncBufRead + Unpin)) -> Option<String> {
    let mut buf = Vec::new();
    let n = (&mut *reader)
        .take(MAX_LINE_BYTES as u64)
        .read_until(b'\n', &mut buf)
        .await
        .ok()?;
    if n == 0 {
        return None;
    }
    let complete = buf.last() == Some(&b'\n');
    if complete {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
    let mut text = String::from_utf8_lossy(&buf).into_owned();
    if !complete && buf.len() == MAX_LINE_BYTES {
        let mut skipped = 0u64;
        loop {
            let mut rest = Vec::new();
            let n = (&mut *reader)
                .take(MAX_LINE_BYTES as u64)
                .read_until(b'\n', &mut rest)
                .await
                .unwrap_or(0);
            skipped += n as u64;
            if n == 0 || rest.last() == Some(&b'\n') {
                break;
            }
        }
        text.push_str(&format!(" … ({skipped} more bytes of this line not kept)"));
    }
    Some(text)
}

/// The last lines of stderr, bounded in lines and bytes.
#[derive(Debug, Default)]
pub struct Tail {
    lines: VecDeque<String>,
    bytes: usize,
}

impl Tail {
    /// Adds a line (cut at 2 KiB), dropping the oldest ones past the bounds.
    pub fn push(&mut self, line: &str) {
        let line = cut(line, MAX_TAIL_LINE_BYTES);
        self.bytes += line.len() + 1;
        self.lines.push_back(line);
        while self.lines.len() > TAIL_LINES || (self.bytes > MAX_TAIL_BYTES && self.lines.len() > 1)
        {
            if let Some(old) = self.lines.pop_front() {
                self.bytes -= old.len() + 1;
            }
        }
    }

    /// The kept lines, joined.
    pub fn text(&self) -> String {
        Vec::from(self.lines.clone()).join("\n")
    }
}

/// `line` cut to at most `max` bytes at a character boundary, with `…` when cut.
fn cut(line: &str, max: usize) -> String {
    if line.len() <= max {
        return line.to_string();
    }
    let mut end = max;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn long_lines_are_cut_and_bad_bytes_replaced() {
        let mut input = vec![b'x'; MAX_LINE_BYTES * 3];
        input.extend_from_slice(b"\nnext \xff line\r\nlast");
        let mut reader = tokio::io::BufReader::new(&input[..]);
        let first = next_line(&mut reader).await.unwrap();
        assert!(first.starts_with(&"x".repeat(100)) && first.len() < MAX_LINE_BYTES + 100);
        assert!(
            first.contains("131073 more bytes"),
            "{}",
            &first[first.len() - 60..]
        );
        assert_eq!(next_line(&mut reader).await.unwrap(), "next \u{fffd} line");
        assert_eq!(next_line(&mut reader).await.unwrap(), "last");
        assert_eq!(next_line(&mut reader).await, None);
    }

    #[test]
    fn the_tail_is_bounded_in_lines_and_bytes() {
        let mut tail = Tail::default();
        for i in 0..100 {
            tail.push(&format!("line {i}"));
        }
        assert_eq!(tail.text().lines().count(), TAIL_LINES);
        assert!(tail.text().ends_with("line 99"));
        for _ in 0..100 {
            tail.push(&"y".repeat(10_000));
        }
        assert!(tail.text().len() <= MAX_TAIL_BYTES);
    }
}
