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
        let layout = TextLayout::of(&self.columns, &self.rows);
        let mut out = layout.header(&self.columns);
        for row in &self.rows {
            out.push_str(&layout.line(row));
        }
        out
    }

    /// RFC 4180 CSV: header row, CRLF line ends; a field with a comma, quote, CR or LF is quoted,
    /// quotes doubled. NULL is an empty field.
    pub fn to_csv(&self) -> String {
        let mut out = csv_header(&self.columns);
        for row in &self.rows {
            out.push_str(&csv_row(row));
        }
        out
    }
}

/// One row as a CSV line (CRLF-terminated): NULL as an empty field, other cells exact.
pub fn csv_row(row: &[Value]) -> String {
    let fields: Vec<String> = row
        .iter()
        .map(|v| {
            if v.is_null() {
                String::new()
            } else {
                exact_cell(v)
            }
        })
        .collect();
    csv_record(&fields)
}

/// The CSV header line of `columns`.
pub fn csv_header(columns: &[String]) -> String {
    csv_record(columns)
}

/// One RFC 4180 record, CRLF-terminated, written by the `csv` crate: a field with a comma,
/// quote, CR or LF is quoted, quotes doubled. Every CSV rsfm writes goes through it.
pub fn csv_record<S: AsRef<str>>(fields: &[S]) -> String {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    // Writing into memory cannot fail, and the bytes are the UTF-8 fields with ASCII added.
    let _ = writer.write_record(fields.iter().map(|f| f.as_ref().as_bytes()));
    String::from_utf8(writer.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// Column widths and alignments of a text table, measured on some rows and applied to any
/// (a later cell wider than its column widens its own line only).
#[derive(Debug, Clone, PartialEq)]
pub struct TextLayout {
    widths: Vec<usize>,
    right_aligned: Vec<bool>,
}

impl TextLayout {
    /// The layout that fits `columns` and `rows`: each column as wide as its widest cell,
    /// right-aligned when every non-NULL cell is a number.
    pub fn of(columns: &[String], rows: &[Vec<Value>]) -> TextLayout {
        let mut widths: Vec<usize> = columns
            .iter()
            .map(|c| for_terminal(c).chars().count())
            .collect();
        for row in rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(for_terminal(&text_cell(cell)).chars().count());
            }
        }
        let right_aligned = (0..columns.len())
            .map(|i| {
                let mut values = rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .filter(|v| !v.is_null())
                    .peekable();
                values.peek().is_some() && values.all(Value::is_number)
            })
            .collect();
        TextLayout {
            widths,
            right_aligned,
        }
    }

    /// The header line and the rule under it.
    pub fn header(&self, columns: &[String]) -> String {
        let names: Vec<String> = columns.iter().map(|c| for_terminal(c)).collect();
        let rule: Vec<String> = self.widths.iter().map(|w| "-".repeat(*w)).collect();
        format!("{}{}\n", self.padded(&names), rule.join("  "))
    }

    /// One row as a line (with its newline).
    pub fn line(&self, row: &[Value]) -> String {
        let cells: Vec<String> = row.iter().map(|v| for_terminal(&text_cell(v))).collect();
        self.padded(&cells)
    }

    fn padded(&self, cells: &[String]) -> String {
        let padded: Vec<String> = cells
            .iter()
            .zip(&self.widths)
            .zip(&self.right_aligned)
            .map(|((cell, &width), &right)| pad(cell, width, right))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    }
}

/// Significant digits of a real number in a text table.
const TABLE_DIGITS: i32 = 4;

/// Hex digits of a content key wherever a command prints it shortened.
pub const KEY_PREFIX_LEN: usize = 12;

/// The shortened form of a content key that every command prints.
pub fn short_key(key: &str) -> &str {
    key.get(..KEY_PREFIX_LEN).unwrap_or(key)
}

/// A number for a human: integral values as integers, others with 4 significant digits
/// (trailing zeros dropped; values from 10^4 to 10^6 rounded to an integer), very large or small
/// ones in scientific notation.
pub fn format_number(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    if value.fract() == 0.0 && value.abs() < 1e15 {
        return format!("{}", value as i64);
    }
    let magnitude = value.abs().log10().floor() as i32;
    if !(-4..6).contains(&magnitude) {
        return format!("{:.*e}", (TABLE_DIGITS - 1) as usize, value);
    }
    let decimals = (TABLE_DIGITS - 1 - magnitude).max(0) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// A cell as text for a table: strings bare, numbers as [`format_number`], NULL as `-`.
/// Longest cell of a text table, in characters; longer ones end with `…`.
const MAX_CELL_CHARS: usize = 1000;

/// `cell` padded with spaces to `width` characters, on the left when `right`-aligned.
fn pad(cell: &str, width: usize, right: bool) -> String {
    let fill = " ".repeat(width.saturating_sub(cell.chars().count()));
    if right {
        fill + cell
    } else {
        format!("{cell}{fill}")
    }
}

/// `text` made safe for a terminal: control characters (ESC, BEL, newlines…) written as
/// escapes (`\n`, `\u{1b}`), at most [`MAX_CELL_CHARS`] characters (the rest cut at `…`).
pub fn for_terminal(text: &str) -> String {
    let cut = text.chars().nth(MAX_CELL_CHARS).is_some();
    let kept = if cut {
        MAX_CELL_CHARS - 1
    } else {
        MAX_CELL_CHARS
    };
    let mut out = String::new();
    for c in text.chars().take(kept) {
        push_shown(&mut out, c, |_| false);
    }
    if cut {
        out.push('…');
    }
    out
}

/// `text` with its control characters escaped (ESC, BEL, …) except line ends and tabs, for
/// messages of several lines and CSV shown on a terminal; not shortened.
pub fn for_terminal_lines(text: &str) -> std::borrow::Cow<'_, str> {
    let kept = |c: char| matches!(c, '\n' | '\r' | '\t');
    if !text.chars().any(|c| c.is_control() && !kept(c)) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_shown(&mut out, c, kept);
    }
    std::borrow::Cow::Owned(out)
}

/// Pushes `c`, or its escape (`\u{1b}`, `\n`) when it is a control character that `kept`
/// does not keep.
fn push_shown(out: &mut String, c: char, kept: impl Fn(char) -> bool) {
    if c.is_control() && !kept(c) {
        out.extend(c.escape_default());
    } else {
        out.push(c);
    }
}

fn text_cell(value: &Value) -> String {
    match value {
        Value::Number(n) => match n.as_i64() {
            Some(int) => int.to_string(),
            None => n.as_f64().map_or_else(|| n.to_string(), format_number),
        },
        other => exact_cell(other),
    }
}

/// A cell as exact text for CSV: strings bare, integral numbers as integers, other numbers in
/// their shortest round-trip form, NULL as `-`.
fn exact_cell(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.as_i64().is_none() && f.fract() == 0.0 && f.abs() < 1e15 => {
                format!("{}", f as i64)
            }
            _ => n.to_string(),
        },
        other => other.to_string(),
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
    fn messages_keep_their_lines_and_lose_their_escapes() {
        assert_eq!(
            for_terminal_lines("a\u{1b}[31mred\u{7}\nnext\r\n"),
            "a\\u{1b}[31mred\\u{7}\nnext\r\n"
        );
        assert!(matches!(
            for_terminal_lines("plain\nlines"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn huge_cells_are_cut_and_control_characters_escaped() {
        let table = Table {
            columns: vec!["name".into(), "n".into()],
            rows: vec![
                vec![Value::from("x".repeat(100_000)), Value::from(1)],
                vec![Value::from("bell\u{7}\u{1b}[31mred\nline"), Value::from(22)],
            ],
        };
        let text = table.to_text();
        let first = text.lines().nth(2).unwrap();
        assert!(
            first.starts_with(&"x".repeat(999)) && first.contains('…'),
            "{}",
            &first[..20]
        );
        assert!(first.chars().count() < 1100);
        // A cell of exactly the longest length is shown whole.
        let longest = "y".repeat(MAX_CELL_CHARS);
        assert_eq!(for_terminal(&longest), longest);
        let longer = "y".repeat(MAX_CELL_CHARS + 1);
        assert_eq!(for_terminal(&longer).chars().count(), MAX_CELL_CHARS);
        assert!(for_terminal(&longer).ends_with('…'));
        assert!(text.contains("bell\\u{7}\\u{1b}[31mred\\nline"), "{text}");
        assert!(!text.contains('\u{1b}'));
        assert_eq!(text.lines().count(), 4);
    }

    #[test]
    fn tables_round_to_4_significant_digits_and_csv_stays_exact() {
        let cases = [
            (0.123456789, "0.1235"),
            (71.456789, "71.46"),
            (113600.0, "113600"),
            (0.5, "0.5"),
            (1.5e-3, "0.0015"),
            (2.5e-7, "2.500e-7"),
            (-1.234567, "-1.235"),
            (123456.7, "123457"),
            (1234567.8, "1.235e6"),
        ];
        for (value, shown) in cases {
            assert_eq!(format_number(value), shown, "{value}");
        }
        let table = Table {
            columns: vec!["value".into()],
            rows: vec![vec![json!(0.123456789)], vec![json!(113600.0)]],
        };
        assert_eq!(table.to_csv(), "value\r\n0.123456789\r\n113600\r\n");
        assert!(table.to_text().contains("0.1235\n"));
        assert_eq!(short_key("0123456789abcdef"), "0123456789ab");
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
