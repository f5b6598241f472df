//! Follows a Slurm job's log file: the worker's JSON-line events, as the local executor reads
//! them from stdout, and the last lines for a failure report.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use rsfm_model::protocol::Event;

/// New complete lines of a growing log, from where the previous read stopped.
pub(crate) struct LogTail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl LogTail {
    /// Follows `path` from its current end (earlier runs' lines are not this run's events).
    pub(crate) fn from_end(path: &Path) -> LogTail {
        let offset = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        LogTail {
            path: path.to_path_buf(),
            offset,
            partial: Vec::new(),
        }
    }

    /// The protocol events among the lines written since the last call.
    pub(crate) fn read_events(&mut self) -> Vec<Event> {
        self.read_lines()
            .iter()
            .filter_map(|line| Event::parse_line(line))
            .collect()
    }

    fn read_lines(&mut self) -> Vec<String> {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len < self.offset {
            // Truncated by someone: start over.
            self.offset = 0;
            self.partial.clear();
        }
        let mut bytes = Vec::new();
        if file.seek(SeekFrom::Start(self.offset)).is_err() || file.read_to_end(&mut bytes).is_err()
        {
            return Vec::new();
        }
        self.offset += bytes.len() as u64;
        self.partial.extend_from_slice(&bytes);
        let Some(last_newline) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return Vec::new();
        };
        let complete: Vec<u8> = self.partial.drain(..=last_newline).collect();
        String::from_utf8_lossy(&complete)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// The last `count` lines of the file at `path` that are not protocol events.
pub(crate) fn last_lines(path: &Path, count: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| Event::parse_line(line).is_none())
        .collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
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
        assert_eq!(last_lines(&path, 5), "noise");
    }
}
