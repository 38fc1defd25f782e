//! Splits a byte stream into lines as it arrives, holding at most one line (and never more
//! than the line limit of it).

/// One line of an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// The line's bytes, without its `\n` (nor a `\r` before it).
    Text {
        /// Line number in the upload, from 1.
        line: u64,
        /// Its bytes.
        bytes: Vec<u8>,
    },
    /// A line longer than the limit; its bytes were dropped as they arrived.
    TooLong {
        /// Line number in the upload, from 1.
        line: u64,
    },
}

/// Cuts chunks of bytes into [`Line`]s.
#[derive(Debug)]
pub struct LineSplitter {
    max: usize,
    buf: Vec<u8>,
    /// Number of the line being read.
    line: u64,
    /// The current line passed the limit: its remaining bytes are dropped.
    too_long: bool,
}

impl LineSplitter {
    /// A splitter whose lines are at most `max` bytes (without the line break).
    pub fn new(max: usize) -> Self {
        LineSplitter {
            max,
            buf: Vec::new(),
            line: 1,
            too_long: false,
        }
    }

    /// Number of the next line to complete (lines before it were all returned).
    pub fn next_line(&self) -> u64 {
        self.line
    }

    /// Feeds `chunk`, appending every line it completes to `out`.
    pub fn push(&mut self, mut chunk: &[u8], out: &mut Vec<Line>) {
        while !chunk.is_empty() {
            match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.take(&chunk[..i]);
                    self.end_line(out);
                    chunk = &chunk[i + 1..];
                }
                None => {
                    self.take(chunk);
                    chunk = &[];
                }
            }
        }
    }

    /// Ends the upload: a last line without a line break is returned too.
    pub fn finish(&mut self, out: &mut Vec<Line>) {
        if !self.buf.is_empty() || self.too_long {
            self.end_line(out);
        }
    }

    fn take(&mut self, part: &[u8]) {
        if self.too_long {
            return;
        }
        // One more byte is allowed for a `\r` before the `\n`.
        if self.buf.len() + part.len() > self.max + 1 {
            self.too_long = true;
            self.buf = Vec::new();
            return;
        }
        self.buf.extend_from_slice(part);
    }

    fn end_line(&mut self, out: &mut Vec<Line>) {
        let line = self.line;
        self.line += 1;
        if self.too_long {
            self.too_long = false;
            out.push(Line::TooLong { line });
            return;
        }
        let mut bytes = std::mem::take(&mut self.buf);
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        if bytes.len() > self.max {
            out.push(Line::TooLong { line });
        } else {
            out.push(Line::Text { line, bytes });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]], max: usize) -> Vec<Line> {
        let mut s = LineSplitter::new(max);
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, &mut out);
        }
        s.finish(&mut out);
        out
    }

    fn text(line: u64, s: &str) -> Line {
        Line::Text {
            line,
            bytes: s.as_bytes().to_vec(),
        }
    }

    #[test]
    fn lines_across_chunks_keep_their_numbers() {
        let out = split(&[b"ab", b"c\r\nd", b"e\n\nlast"], 10);
        assert_eq!(
            out,
            vec![text(1, "abc"), text(2, "de"), text(3, ""), text(4, "last")]
        );
        assert_eq!(split(&[b"a\n"], 10), vec![text(1, "a")]);
    }

    #[test]
    fn a_long_line_is_reported_and_the_next_one_read() {
        let out = split(&[b"12345", b"6789\nok\n", b"abcdefghijk"], 5);
        assert_eq!(
            out,
            vec![
                Line::TooLong { line: 1 },
                text(2, "ok"),
                Line::TooLong { line: 3 }
            ]
        );
        // Exactly the limit, with or without a CR, is fine.
        assert_eq!(split(&[b"12345\r\n"], 5), vec![text(1, "12345")]);
    }
}
