//! Reading one request line, bounded in size.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt as _};

/// A request line as read.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Line {
    /// The line, its newline included (or all the client sent before
    /// closing its end).
    Complete(Vec<u8>),
    /// No newline within `max` bytes.
    TooLarge,
    /// Closed without sending anything.
    Closed,
}

/// One request line being read, at most `max` bytes (newline included),
/// never holding more.
#[derive(Debug)]
pub(super) struct LineReader {
    buf: Vec<u8>,
    max: usize,
}

impl LineReader {
    pub(super) fn new(max: usize) -> Self {
        Self {
            buf: Vec::new(),
            max,
        }
    }

    /// Takes what was read (`chunk`; empty: end of input): the line once
    /// it is complete or too large.
    pub(super) fn push(&mut self, chunk: &[u8]) -> Option<Line> {
        if chunk.is_empty() {
            return Some(if self.buf.is_empty() {
                Line::Closed
            } else {
                Line::Complete(std::mem::take(&mut self.buf))
            });
        }
        if let Some(i) = chunk.iter().position(|&b| b == b'\n') {
            if self.buf.len() + i + 1 > self.max {
                return Some(Line::TooLarge);
            }
            self.buf.extend_from_slice(&chunk[..=i]);
            return Some(Line::Complete(std::mem::take(&mut self.buf)));
        }
        if self.buf.len() + chunk.len() >= self.max {
            return Some(Line::TooLarge);
        }
        self.buf.extend_from_slice(chunk);
        None
    }

    /// Reads until the line is complete (cancel-safe: what was read stays
    /// in `self`).
    pub(super) async fn read(&mut self, read: &mut (impl AsyncRead + Unpin)) -> io::Result<Line> {
        let mut chunk = [0u8; 8192];
        loop {
            let n = read.read(&mut chunk).await?;
            if let Some(line) = self.push(&chunk[..n]) {
                return Ok(line);
            }
        }
    }

    /// Reads what has arrived already, without waiting: the line if it
    /// is complete (or too large), `None` if more is to come.
    pub(super) fn read_now(
        &mut self,
        try_read: impl Fn(&mut [u8]) -> io::Result<usize>,
    ) -> Option<Line> {
        let mut chunk = [0u8; 8192];
        loop {
            let n = try_read(&mut chunk).ok()?;
            if let Some(line) = self.push(&chunk[..n]) {
                return Some(line);
            }
        }
    }
}
