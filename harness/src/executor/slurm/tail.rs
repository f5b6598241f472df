//! Follows a Slurm job's log file: the worker's JSON-line events, as the local executor reads
//! them from stdout, and the last lines for a failure report; both in bounded memory whatever
//! the job writes (the log is read in chunks, a line longer than [`MAX_LINE_BYTES`] is skipped,
//! and the failure tail comes from the log's last [`TAIL_WINDOW`] bytes, bounded as the local
//! executor bounds it).

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use rsfm_model::protocol::Event;

use crate::executor::bounded_lines::{Tail, MAX_LINE_BYTES};

/// New complete lines of a growing log, from where the previous read stopped.
pub(crate) struct LogTail {
    path: PathBuf,
    offset: u64,
    /// The start of a line whose end has not been written yet.
    partial: Vec<u8>,
    /// Within a line longer than [`MAX_LINE_BYTES`], skipped to its end.
    skipping: bool,
}

/// Bytes read from the log at a time.
const CHUNK_BYTES: usize = 1 << 20;
/// The end of the log a failure tail is taken from.
const TAIL_WINDOW: u64 = 1 << 20;

impl LogTail {
    /// Follows `path` from its current end (earlier runs' lines are not this run's events).
    pub(crate) fn from_end(path: &Path) -> LogTail {
        let offset = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        LogTail {
            path: path.to_path_buf(),
            offset,
            partial: Vec::new(),
            skipping: false,
        }
    }

    /// Follows `path` from byte `offset` (where a detached job began to write to it).
    pub(crate) fn from_offset(path: &Path, offset: u64) -> LogTail {
        LogTail {
            path: path.to_path_buf(),
            offset,
            partial: Vec::new(),
            skipping: false,
        }
    }

    /// The protocol events among the lines written since the last call.
    pub(crate) fn read_events(&mut self) -> Vec<Event> {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len < self.offset {
            // Truncated by someone: start over.
            self.offset = 0;
            self.partial.clear();
            self.skipping = false;
        }
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut events = Vec::new();
        let mut chunk = vec![0u8; CHUNK_BYTES];
        loop {
            let n = match file.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            self.offset += n as u64;
            for piece in chunk[..n].split_inclusive(|b| *b == b'\n') {
                let complete = piece.ends_with(b"\n");
                if !self.skipping {
                    self.partial.extend_from_slice(piece);
                }
                if complete {
                    if !self.skipping {
                        let line = String::from_utf8_lossy(&self.partial);
                        events.extend(Event::parse_line(line.trim_end_matches(['\n', '\r'])));
                    }
                    self.partial.clear();
                    self.skipping = false;
                } else if self.partial.len() > MAX_LINE_BYTES {
                    // Too long for an event: skip to its end.
                    self.partial.clear();
                    self.skipping = true;
                }
            }
        }
        events
    }
}

/// The last lines of the file at `path` that are not protocol events, read from its last
/// [`TAIL_WINDOW`] bytes and bounded as [`Tail`] bounds them.
pub(crate) fn last_lines(path: &Path) -> String {
    let mut bytes = Vec::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let start = len.saturating_sub(TAIL_WINDOW);
        if file.seek(SeekFrom::Start(start)).is_ok() {
            let _ = file.take(TAIL_WINDOW).read_to_end(&mut bytes);
        }
        if start > 0 {
            // The window starts inside a line: drop that part.
            let first = bytes
                .iter()
                .position(|b| *b == b'\n')
                .map_or(bytes.len(), |i| i + 1);
            bytes.drain(..first);
        }
    }
    let mut tail = Tail::default();
    for line in String::from_utf8_lossy(&bytes).lines() {
        if Event::parse_line(line).is_none() {
            tail.push(line);
        }
    }
    tail.text()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn events_arrive_once_and_only_when_their_line_is_complete() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stage.log");
        std::fs::write(&path, "{\"event\":\"progress\",\"step\":1,\"total\":3}\n").unwrap();
        let mut tail = LogTail::from_end(&path);
        assert!(tail.read_events().is_empty(), "earlier lines are skipped");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        write!(file, "noise\n{{\"event\":\"progress\",\"step\":2,").unwrap();
        assert!(tail.read_events().is_empty());
        writeln!(file, "\"total\":3}}").unwrap();
        let events = tail.read_events();
        assert_eq!(events.len(), 1);
        assert!(matches!(events[0], Event::Progress { step: 2, .. }));
        assert!(tail.read_events().is_empty());
        assert_eq!(last_lines(&path), "noise");
    }

    #[test]
    fn a_huge_log_and_an_endless_line_stay_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stage.log");
        std::fs::write(&path, "").unwrap();
        let mut tail = LogTail::from_end(&path);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(&vec![b'x'; 3 << 20]).unwrap();
        assert!(tail.read_events().is_empty());
        assert!(tail.partial.len() <= MAX_LINE_BYTES + CHUNK_BYTES);
        writeln!(file, "\n{{\"event\":\"progress\",\"step\":7,\"total\":9}}").unwrap();
        for i in 0..100_000 {
            writeln!(file, "line {i}").unwrap();
        }
        let events = tail.read_events();
        assert!(
            matches!(events[..], [Event::Progress { step: 7, .. }]),
            "{events:?}"
        );
        let kept = last_lines(&path);
        assert!(kept.ends_with("line 99999"), "{kept}");
        assert!(kept.len() <= crate::executor::bounded_lines::MAX_TAIL_BYTES);
    }
}
