//! Protocol events on stdout, one JSON line each, flushed at once.

use std::io::Write;

use crate::protocol::Event;

/// Where a training loop reports progress, metrics and log lines.
pub struct Events {
    out: Box<dyn Write + Send>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Events")
    }
}

impl Events {
    /// Events to the process's stdout.
    pub fn stdout() -> Self {
        Events {
            out: Box::new(std::io::stdout()),
        }
    }

    /// Events that go nowhere: a data-parallel rank other than 0, which reports nothing.
    pub fn discard() -> Self {
        Events {
            out: Box::new(std::io::sink()),
        }
    }

    /// Events to any writer (tests).
    pub fn to_writer(out: Box<dyn Write + Send>) -> Self {
        Events { out }
    }

    /// Writes one event line and flushes; a closed stdout is ignored (the run goes on).
    pub fn emit(&mut self, event: &Event) {
        let _ = writeln!(self.out, "{}", event.to_line());
        let _ = self.out.flush();
    }

    /// Emits a `log` event.
    pub fn log(&mut self, level: &str, msg: impl Into<String>) {
        self.emit(&Event::Log {
            level: level.into(),
            msg: msg.into(),
        });
    }

    /// Emits a `metric` event.
    pub fn metric(&mut self, name: &str, value: f64, step: Option<u64>) {
        self.emit(&Event::Metric {
            name: name.into(),
            value,
            step,
        });
    }
}
