//! Rendering rows of JSON cells as an aligned text table or as CSV.

use serde_json::Value;

/// Output format of `rsfm results` and `rsfm sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for a terminal.
    #[default]
    Table,
    /// RFC 4180 CSV (header row, CRLF line ends, quoted where needed).
    Csv,
    /// JSON (shape documented on each command).
    Json,
}

/// Named columns and rows of cells.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, each with one cell per column.
    pub rows: Vec<Vec<Value>>,
}

impl Table {
    /// Aligned text: a header, a rule, one line per row; numbers right-aligned, NULL shown as `-`.
    pub fn to_text(&self) -> String {
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|row| row.iter().map(text_cell).collect())
            .collect();
        let mut widths: Vec<usize> = self.columns.iter().map(|c| c.chars().count()).collect();
        for row in &cells {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let numeric: Vec<bool> = (0..self.columns.len())
            .map(|i| {
                let mut values = self
                    .rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .filter(|v| !v.is_null())
                    .peekable();
                values.peek().is_some() && values.all(Value::is_number)
            })
            .collect();
        let line = |row: &[String]| {
            let padded: Vec<String> = row
                .iter()
                .zip(&widths)
                .zip(&numeric)
                .map(|((cell, &width), &right)| {
                    if right {
                        format!("{cell:>width$}")
                    } else {
                        format!("{cell:<width$}")
                    }
                })
                .collect();
            padded.join("  ").trim_end().to_string()
        };
        let mut out = line(&self.columns);
        out.push('\n');
        out.push_str(
            &widths
                .iter()
                .map(|w| "-".repeat(*w))
                .collect::<Vec<_>>()
                .join("  "),
        );
        out.push('\n');
        for row in &cells {
            out.push_str(&line(row));
            out.push('\n');
        }
        out
    }

    /// RFC 4180 CSV: header row, CRLF line ends; a field with a comma, quote, CR or LF is quoted,
    /// quotes doubled. NULL is an empty field.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        let header: Vec<String> = self.columns.iter().map(|c| csv_field(c)).collect();
        out.push_str(&header.join(","));
        out.push_str("\r\n");
        for row in &self.rows {
            let fields: Vec<String> = row
                .iter()
                .map(|v| {
                    if v.is_null() {
                        String::new()
                    } else {
                        csv_field(&text_cell(v))
                    }
                })
                .collect();
            out.push_str(&fields.join(","));
            out.push_str("\r\n");
        }
        out
    }
}

/// A cell as text: strings bare, numbers in their shortest round-trip form, NULL as `-`.
fn text_cell(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Table {
        Table {
            columns: vec!["model".into(), "value".into()],
            rows: vec![
                vec![json!("vit-b"), json!(0.5)],
                vec![json!("a,\"b\"\nc"), json!(null)],
                vec![json!("x"), json!(12)],
            ],
        }
    }

    #[test]
    fn csv_quotes_as_rfc_4180() {
        assert_eq!(
            sample().to_csv(),
            "model,value\r\nvit-b,0.5\r\n\"a,\"\"b\"\"\nc\",\r\nx,12\r\n"
        );
    }

    #[test]
    fn text_aligns_numbers_right() {
        let table = Table {
            columns: vec!["model".into(), "value".into()],
            rows: vec![
                vec![json!("vit-b"), json!(0.5)],
                vec![json!("vit-1.3b"), json!(12)],
            ],
        };
        assert_eq!(
            table.to_text(),
            "model     value\n--------  -----\nvit-b       0.5\nvit-1.3b     12\n"
        );
    }
}
