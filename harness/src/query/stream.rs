//! Rows written out as they arrive (`rsfm sql`), in any [`OutputFormat`], in bounded memory:
//! CSV and JSON row by row; a text table laid out on its first [`LAYOUT_ROWS`] rows, held back
//! until then, and the rest printed with that layout.

use std::io::Write;

use serde_json::Value;

use super::table::{csv_header, csv_row, TextLayout};
use super::OutputFormat;
use crate::store::RowSink;

/// Rows a text table measures its column widths on before printing.
pub const LAYOUT_ROWS: usize = 1000;

/// Writes rows to `out` in `format` as they come.
pub struct RowWriter<W: Write> {
    out: W,
    format: OutputFormat,
    columns: Vec<String>,
    /// Text table: rows held until the layout is known.
    held: Vec<Vec<Value>>,
    layout: Option<TextLayout>,
    rows: u64,
    /// CSV for a terminal: control characters other than line ends and tabs escaped.
    escape_controls: bool,
}

impl<W: Write> RowWriter<W> {
    /// A writer of `format` onto `out`.
    pub fn new(out: W, format: OutputFormat) -> RowWriter<W> {
        RowWriter {
            out,
            format,
            columns: Vec::new(),
            held: Vec::new(),
            layout: None,
            rows: 0,
            escape_controls: false,
        }
    }

    /// The same writer escaping control characters in CSV (for a terminal); tables always
    /// escape them, JSON writes them as `\u` escapes.
    pub fn escaping_controls(mut self, escape: bool) -> RowWriter<W> {
        self.escape_controls = escape;
        self
    }

    fn write_csv(&mut self, line: &str) -> anyhow::Result<()> {
        let line = if self.escape_controls {
            super::for_terminal_lines(line)
        } else {
            line.into()
        };
        self.out.write_all(line.as_bytes())?;
        Ok(())
    }

    /// Writes what is still held (a short table) and the end of a JSON document; flushes.
    pub fn finish(mut self) -> anyhow::Result<()> {
        match self.format {
            OutputFormat::Table => self.lay_out()?,
            OutputFormat::Json => {
                let end = if self.rows == 0 {
                    "]\n}\n"
                } else {
                    "\n  ]\n}\n"
                };
                self.out.write_all(end.as_bytes())?;
            }
            OutputFormat::Csv => {}
        }
        self.out.flush()?;
        Ok(())
    }

    /// Fixes the table layout on the held rows and prints them.
    fn lay_out(&mut self) -> anyhow::Result<()> {
        if self.layout.is_some() {
            return Ok(());
        }
        let layout = TextLayout::of(&self.columns, &self.held);
        self.out
            .write_all(layout.header(&self.columns).as_bytes())?;
        for row in std::mem::take(&mut self.held) {
            self.out.write_all(layout.line(&row).as_bytes())?;
        }
        self.layout = Some(layout);
        Ok(())
    }
}

impl<W: Write> RowSink for RowWriter<W> {
    fn columns(&mut self, columns: &[String]) -> anyhow::Result<()> {
        self.columns = columns.to_vec();
        match self.format {
            OutputFormat::Csv => self.write_csv(&csv_header(columns))?,
            OutputFormat::Json => write!(
                self.out,
                "{{\n  \"columns\": {},\n  \"rows\": [",
                serde_json::to_string(columns)?
            )?,
            OutputFormat::Table => {}
        }
        Ok(())
    }

    fn row(&mut self, row: Vec<Value>) -> anyhow::Result<()> {
        let first = self.rows == 0;
        self.rows += 1;
        match self.format {
            OutputFormat::Csv => self.write_csv(&csv_row(&row))?,
            OutputFormat::Json => {
                let separator = if first { "\n    " } else { ",\n    " };
                write!(self.out, "{separator}{}", serde_json::to_string(&row)?)?;
            }
            OutputFormat::Table => match &self.layout {
                Some(layout) => self.out.write_all(layout.line(&row).as_bytes())?,
                None => {
                    self.held.push(row);
                    if self.held.len() >= LAYOUT_ROWS {
                        self.lay_out()?;
                    }
                }
            },
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::Table;
    use serde_json::json;

    fn written(format: OutputFormat, columns: &[&str], rows: &[Vec<Value>]) -> String {
        let mut bytes = Vec::new();
        let mut writer = RowWriter::new(&mut bytes, format);
        let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        writer.columns(&columns).unwrap();
        for row in rows {
            writer.row(row.clone()).unwrap();
        }
        writer.finish().unwrap();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn streamed_output_is_what_the_whole_table_gives() {
        let rows = vec![
            vec![json!("a,b"), json!(1.5), Value::Null],
            vec![json!("c"), json!(20), json!("x\ny")],
        ];
        let table = Table {
            columns: vec!["name".into(), "value".into(), "note".into()],
            rows: rows.clone(),
        };
        let columns = ["name", "value", "note"];
        assert_eq!(
            written(OutputFormat::Table, &columns, &rows),
            table.to_text()
        );
        assert_eq!(written(OutputFormat::Csv, &columns, &rows), table.to_csv());
        let json: Value =
            serde_json::from_str(&written(OutputFormat::Json, &columns, &rows)).unwrap();
        assert_eq!(json, json!({"columns": columns, "rows": rows}));
        let empty: Value =
            serde_json::from_str(&written(OutputFormat::Json, &columns, &[])).unwrap();
        assert_eq!(empty, json!({"columns": columns, "rows": []}));
    }

    #[test]
    fn a_long_table_keeps_the_layout_of_its_first_rows() {
        let mut rows: Vec<Vec<Value>> = (0..LAYOUT_ROWS).map(|i| vec![json!(i)]).collect();
        rows.push(vec![json!(123_456_789)]);
        let text = written(OutputFormat::Table, &["n"], &rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "  n");
        assert_eq!(lines[2], "  0");
        assert_eq!(*lines.last().unwrap(), "123456789");
    }
}
