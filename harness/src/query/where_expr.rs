//! The `--where` expression language of `rsfm results`, parsed into parameterised SQL.
//!
//! Grammar (keywords are case-insensitive):
//! ```text
//! expr       := and ("or" and)*
//! and        := unary ("and" unary)*
//! unary      := "not" unary | "(" expr ")" | condition
//! condition  := column op value                       op: = == != <> < <= > >=
//!             | column ["not"] "in" "(" value ("," value)* ")"
//!             | column ["not"] "between" value "and" value     (both ends included)
//!             | column ["not"] "in" number ".." number         (lower included, upper excluded)
//!             | column ["not"] "in" number "..=" number        (both ends included)
//!             | column "is" ["not"] "null"
//!             | column ["not"] "like" 'pattern'                  (`%` any text, `_` one character)
//! value      := 'text' | "text" | number                     (a doubled quote escapes the quote)
//! ```
//! Columns: experiment, name (stage name), kind, model, task, dataset, fraction, split,
//! protocol, status, metric, value, step, key, seed, finished_at; `params.NAME` (a stage parameter, dotted into nested
//! tables: `params.vit.embed_dim`) and `matrix.NAME` (a matrix variable) compare by type: numbers
//! as numbers, text as text. User text never enters the SQL: every value and every JSON path
//! becomes a bound parameter, and every other column comes from the fixed list above.

use std::fmt;

use sqlx::{QueryBuilder, Sqlite};

/// A column that `--where` may name, with the SQL it stands for in the results query.
const COLUMNS: &[(&str, &str)] = &[
    ("experiment", "s.experiment"),
    ("name", "s.name"),
    ("kind", "s.kind"),
    ("model", "s.model"),
    ("task", "s.task"),
    ("dataset", "s.dataset"),
    ("fraction", "s.fraction"),
    ("split", "s.split"),
    ("protocol", "s.protocol"),
    ("status", "s.status"),
    ("metric", "m.name"),
    ("value", "m.value"),
    ("step", "m.step"),
    ("key", "s.key"),
    ("seed", SEED_SQL),
    ("finished_at", "s.finished_at"),
];

/// JSON columns of `stages` that `--where` reaches into, by prefix.
const DOCUMENTS: &[(&str, &str)] = &[("params", "s.params"), ("matrix", "s.matrix")];

/// The seed of a stage: its matrix variable `seed`, else its parameter `seed`, else the seed it
/// ran with, as an integer.
pub(crate) const SEED_SQL: &str =
    "CAST(COALESCE(json_extract(s.matrix, '$.seed'), json_extract(s.params, '$.seed'), s.seed) AS INTEGER)";

/// A column `--where` names.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// A column of the fixed list: its SQL.
    Fixed(&'static str),
    /// A value inside a JSON column of `stages` (`params.lr`): the column's SQL and the JSON path,
    /// which is bound as a parameter.
    Json {
        /// SQL of the JSON column.
        document: &'static str,
        /// SQLite JSON path (`$."lr"`).
        path: String,
    },
}

impl Column {
    /// Appends the column's SQL, binding a JSON path as a parameter.
    fn push_sql(&self, sql: &mut QueryBuilder<'_, Sqlite>) {
        match self {
            Column::Fixed(column) => {
                sql.push(*column);
            }
            Column::Json { document, path } => {
                sql.push(format!("json_extract({document}, "))
                    .push_bind(path.clone())
                    .push(")");
            }
        }
    }
}

/// A literal value of an expression, bound as an SQL parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// An integer.
    Int(i64),
    /// A real number.
    Real(f64),
    /// A string.
    Text(String),
}

/// A parsed `--where` expression.
#[derive(Debug, Clone, PartialEq)]
pub enum WhereExpr {
    /// Both hold.
    And(Box<WhereExpr>, Box<WhereExpr>),
    /// Either holds.
    Or(Box<WhereExpr>, Box<WhereExpr>),
    /// The inner one does not hold.
    Not(Box<WhereExpr>),
    /// `column op value`.
    Compare {
        /// SQL of the column.
        column: Column,
        /// SQL comparison operator.
        op: &'static str,
        /// The value.
        value: Literal,
    },
    /// `column in (values)`.
    In {
        /// SQL of the column.
        column: Column,
        /// The values.
        values: Vec<Literal>,
    },
    /// `lo <= column <= hi` or, with `upper_inclusive` false, `lo <= column < hi`.
    Range {
        /// SQL of the column.
        column: Column,
        /// Lower bound (included).
        lo: Literal,
        /// Upper bound.
        hi: Literal,
        /// Whether `hi` is included.
        upper_inclusive: bool,
    },
    /// `column is null`.
    IsNull {
        /// SQL of the column.
        column: Column,
    },
    /// `column like pattern` (SQLite `LIKE`: `%`, `_`, ASCII case-insensitive).
    Like {
        /// SQL of the column.
        column: Column,
        /// The pattern.
        pattern: String,
    },
}

/// A syntax error, with the 1-based character column of the offending token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct WhereError {
    /// What is wrong.
    pub message: String,
    /// 1-based character column in the expression.
    pub column: usize,
    /// The expression.
    pub input: String,
}

impl fmt::Display for WhereError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "--where, column {}: {}", self.column, self.message)?;
        writeln!(f, "  {}", self.input)?;
        write!(f, "  {}^", " ".repeat(self.column.saturating_sub(1)))
    }
}

impl WhereExpr {
    /// Parses `input`.
    pub fn parse(input: &str) -> Result<WhereExpr, WhereError> {
        let tokens = lex(input)?;
        let mut parser = Parser {
            tokens,
            pos: 0,
            input,
        };
        let expr = parser.or_expr()?;
        match parser.peek() {
            Tok::End => Ok(expr),
            _ => Err(parser.error_here("expected `and`, `or` or the end of the expression")),
        }
    }

    /// Appends this expression's SQL to `sql`, binding every value as a parameter.
    pub fn push_sql(&self, sql: &mut QueryBuilder<'_, Sqlite>) {
        match self {
            WhereExpr::And(a, b) | WhereExpr::Or(a, b) => {
                let joiner = if matches!(self, WhereExpr::And(..)) {
                    " AND "
                } else {
                    " OR "
                };
                sql.push("(");
                a.push_sql(sql);
                sql.push(joiner);
                b.push_sql(sql);
                sql.push(")");
            }
            WhereExpr::Not(inner) => {
                sql.push("(NOT ");
                inner.push_sql(sql);
                sql.push(")");
            }
            WhereExpr::Compare { column, op, value } => {
                sql.push("(");
                column.push_sql(sql);
                sql.push(format!(" {op} "));
                bind(sql, value);
                sql.push(")");
            }
            WhereExpr::In { column, values } => {
                sql.push("(");
                column.push_sql(sql);
                sql.push(" IN (");
                for (i, value) in values.iter().enumerate() {
                    if i > 0 {
                        sql.push(", ");
                    }
                    bind(sql, value);
                }
                sql.push("))");
            }
            WhereExpr::Range {
                column,
                lo,
                hi,
                upper_inclusive,
            } => {
                sql.push("(");
                column.push_sql(sql);
                sql.push(" >= ");
                bind(sql, lo);
                sql.push(" AND ");
                column.push_sql(sql);
                sql.push(if *upper_inclusive { " <= " } else { " < " });
                bind(sql, hi);
                sql.push(")");
            }
            WhereExpr::IsNull { column } => {
                sql.push("(");
                column.push_sql(sql);
                sql.push(" IS NULL)");
            }
            WhereExpr::Like { column, pattern } => {
                sql.push("(");
                column.push_sql(sql);
                sql.push(" LIKE ").push_bind(pattern.clone()).push(")");
            }
        }
    }
}

fn bind(sql: &mut QueryBuilder<'_, Sqlite>, value: &Literal) {
    match value {
        Literal::Int(i) => sql.push_bind(*i),
        Literal::Real(f) => sql.push_bind(*f),
        Literal::Text(s) => sql.push_bind(s.clone()),
    };
}

/// A token and the 1-based column where it starts.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Num(Literal),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
    /// `..` (false) or `..=` (true).
    Range(bool),
    End,
}

fn lex(input: &str) -> Result<Vec<(Tok, usize)>, WhereError> {
    let chars: Vec<char> = input.chars().collect();
    let error = |message: String, at: usize| WhereError {
        message,
        column: at + 1,
        input: input.to_string(),
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        let next = chars.get(i + 1).copied();
        let tok = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            ',' => Tok::Comma,
            '=' if next == Some('=') => {
                i += 1;
                Tok::Op("=")
            }
            '=' => Tok::Op("="),
            '!' if next == Some('=') => {
                i += 1;
                Tok::Op("!=")
            }
            '<' if next == Some('>') => {
                i += 1;
                Tok::Op("!=")
            }
            '<' if next == Some('=') => {
                i += 1;
                Tok::Op("<=")
            }
            '<' => Tok::Op("<"),
            '>' if next == Some('=') => {
                i += 1;
                Tok::Op(">=")
            }
            '>' => Tok::Op(">"),
            '.' if next == Some('.') => {
                i += 1;
                if chars.get(i + 1) == Some(&'=') {
                    i += 1;
                    Tok::Range(true)
                } else {
                    Tok::Range(false)
                }
            }
            '\'' | '"' => {
                let mut text = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(error(
                                format!("unterminated string: add the closing {c}"),
                                start,
                            ))
                        }
                        Some(&q) if q == c && chars.get(i + 1) == Some(&c) => {
                            text.push(c);
                            i += 2;
                        }
                        Some(&q) if q == c => break,
                        Some(&other) => {
                            text.push(other);
                            i += 1;
                        }
                    }
                }
                Tok::Str(text)
            }
            c if c.is_ascii_digit()
                || (c == '-' && next.is_some_and(|n| n.is_ascii_digit() || n == '.')) =>
            {
                i = number_end(&chars, i);
                let text: String = chars[start..i].iter().collect();
                out.push((
                    Tok::Num(
                        number(&text)
                            .ok_or_else(|| error(format!("`{text}` is not a number"), start))?,
                    ),
                    start + 1,
                ));
                continue;
            }
            c if c.is_alphabetic() || c == '_' => {
                let word_char = |c: &char| c.is_alphanumeric() || *c == '_';
                while i < chars.len()
                    && (word_char(&chars[i])
                        || (chars[i] == '.' && chars.get(i + 1).is_some_and(word_char)))
                {
                    i += 1;
                }
                out.push((Tok::Word(chars[start..i].iter().collect()), start + 1));
                continue;
            }
            other => return Err(error(format!("unexpected character `{other}`"), start)),
        };
        i += 1;
        out.push((tok, start + 1));
    }
    out.push((Tok::End, chars.len() + 1));
    Ok(out)
}

/// End of the number starting at `start`: `-?digits(.digits)?([eE][+-]?digits)?` (so `1..2` lexes
/// as `1`, `..`, `2`).
fn number_end(chars: &[char], start: usize) -> usize {
    let digit_at = |j: usize| chars.get(j).is_some_and(|c| c.is_ascii_digit());
    let mut i = start + usize::from(chars[start] == '-');
    while digit_at(i) {
        i += 1;
    }
    if chars.get(i) == Some(&'.') && digit_at(i + 1) {
        i += 1;
        while digit_at(i) {
            i += 1;
        }
    }
    if matches!(chars.get(i), Some('e' | 'E')) {
        let sign = usize::from(matches!(chars.get(i + 1), Some('+' | '-')));
        if digit_at(i + 1 + sign) {
            i += 1 + sign;
            while digit_at(i) {
                i += 1;
            }
        }
    }
    // Letters glued to a number (`12abc`) make it invalid rather than two tokens.
    while chars
        .get(i)
        .is_some_and(|c| c.is_alphanumeric() || *c == '_')
    {
        i += 1;
    }
    i
}

fn number(text: &str) -> Option<Literal> {
    if let Ok(int) = text.parse::<i64>() {
        return Some(Literal::Int(int));
    }
    text.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(Literal::Real)
}

struct Parser<'a> {
    tokens: Vec<(Tok, usize)>,
    pos: usize,
    input: &'a str,
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.tokens[self.pos].0
    }

    fn advance(&mut self) -> Tok {
        let tok = self.tokens[self.pos].0.clone();
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
        tok
    }

    fn error_here(&self, message: &str) -> WhereError {
        let (tok, column) = &self.tokens[self.pos];
        let found = match tok {
            Tok::End => "the end of the expression".to_string(),
            Tok::Word(w) => format!("`{w}`"),
            Tok::Str(s) => format!("the string '{s}'"),
            Tok::Num(_) => "a number".to_string(),
            Tok::Op(op) => format!("`{op}`"),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::Comma => "`,`".into(),
            Tok::Range(true) => "`..=`".into(),
            Tok::Range(false) => "`..`".into(),
        };
        WhereError {
            message: format!("{message}, found {found}"),
            column: *column,
            input: self.input.to_string(),
        }
    }

    /// Consumes the keyword `kw` (case-insensitive) if it is next.
    fn keyword(&mut self, kw: &str) -> bool {
        if matches!(self.peek(), Tok::Word(w) if w.eq_ignore_ascii_case(kw)) {
            self.advance();
            true
        } else {
            false
        }
    }

    fn or_expr(&mut self) -> Result<WhereExpr, WhereError> {
        let mut left = self.and_expr()?;
        while self.keyword("or") {
            left = WhereExpr::Or(Box::new(left), Box::new(self.and_expr()?));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<WhereExpr, WhereError> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            left = WhereExpr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<WhereExpr, WhereError> {
        if self.keyword("not") {
            return Ok(WhereExpr::Not(Box::new(self.unary()?)));
        }
        if *self.peek() == Tok::LParen {
            self.advance();
            let inner = self.or_expr()?;
            if *self.peek() != Tok::RParen {
                return Err(self.error_here("expected `)`"));
            }
            self.advance();
            return Ok(inner);
        }
        self.condition()
    }

    fn condition(&mut self) -> Result<WhereExpr, WhereError> {
        let column = self.column()?;
        if let Tok::Op(op) = *self.peek() {
            self.advance();
            return Ok(WhereExpr::Compare {
                column,
                op,
                value: self.value()?,
            });
        }
        if self.keyword("is") {
            let negated = self.keyword("not");
            if !self.keyword("null") {
                return Err(self.error_here("expected `null` after `is`"));
            }
            let test = WhereExpr::IsNull { column };
            return Ok(if negated {
                WhereExpr::Not(Box::new(test))
            } else {
                test
            });
        }
        let negated = self.keyword("not");
        let test = if self.keyword("in") {
            self.in_tail(column)?
        } else if self.keyword("like") {
            match self.value()? {
                Literal::Text(pattern) => WhereExpr::Like { column, pattern },
                _ => return Err(self.error_at_previous("`like` takes a quoted pattern: 'vit-%'")),
            }
        } else if self.keyword("between") {
            let lo = self.value()?;
            if !self.keyword("and") {
                return Err(self.error_here("expected `and` in `between … and …`"));
            }
            WhereExpr::Range {
                column,
                lo,
                hi: self.value()?,
                upper_inclusive: true,
            }
        } else {
            let expected = if negated {
                "expected `in`, `between` or `like` after `not`"
            } else {
                "expected an operator (=, !=, <, <=, >, >=, in, between, is, like)"
            };
            return Err(self.error_here(expected));
        };
        Ok(if negated {
            WhereExpr::Not(Box::new(test))
        } else {
            test
        })
    }

    /// After `in`: a parenthesised list, or a range `a..b` / `a..=b`.
    /// An error at the token just consumed.
    fn error_at_previous(&self, message: &str) -> WhereError {
        WhereError {
            message: message.to_string(),
            column: self.tokens[self.pos.saturating_sub(1)].1,
            input: self.input.to_string(),
        }
    }

    fn in_tail(&mut self, column: Column) -> Result<WhereExpr, WhereError> {
        if *self.peek() == Tok::LParen {
            self.advance();
            let mut values = vec![self.value()?];
            loop {
                match self.peek() {
                    Tok::Comma => {
                        self.advance();
                        values.push(self.value()?);
                    }
                    Tok::RParen => {
                        self.advance();
                        return Ok(WhereExpr::In { column, values });
                    }
                    _ => return Err(self.error_here("expected `,` or `)` in the `in` list")),
                }
            }
        }
        let lo = self.number("expected `(` or a range like 1..2 after `in`")?;
        let upper_inclusive = match self.peek() {
            Tok::Range(inclusive) => *inclusive,
            _ => return Err(self.error_here("expected `..` or `..=` in the range")),
        };
        self.advance();
        let hi = self.number("expected a number after `..`")?;
        Ok(WhereExpr::Range {
            column,
            lo,
            hi,
            upper_inclusive,
        })
    }

    fn column(&mut self) -> Result<Column, WhereError> {
        if let Tok::Word(word) = self.peek() {
            if let Some((_, sql)) = COLUMNS
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(word))
            {
                self.advance();
                return Ok(Column::Fixed(sql));
            }
            if let Some((prefix, rest)) = word.split_once('.') {
                if let Some((_, document)) = DOCUMENTS
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(prefix))
                {
                    let path: String = rest
                        .split('.')
                        .map(|segment| format!(".\"{segment}\""))
                        .collect();
                    self.advance();
                    return Ok(Column::Json {
                        document,
                        path: format!("${path}"),
                    });
                }
            }
            let names: Vec<&str> = COLUMNS.iter().map(|(name, _)| *name).collect();
            return Err(self.error_here(&format!(
                "unknown column (columns: {}, params.NAME, matrix.NAME)",
                names.join(", ")
            )));
        }
        Err(self.error_here("expected a column name"))
    }

    fn value(&mut self) -> Result<Literal, WhereError> {
        match self.peek().clone() {
            Tok::Str(s) => {
                self.advance();
                Ok(Literal::Text(s))
            }
            Tok::Num(n) => {
                self.advance();
                Ok(n)
            }
            Tok::Word(_) => Err(self.error_here("expected a value (quote text: 'vit-b')")),
            _ => Err(self.error_here("expected a value (a number or a quoted string)")),
        }
    }

    fn number(&mut self, message: &str) -> Result<Literal, WhereError> {
        match self.peek().clone() {
            Tok::Num(n) => {
                self.advance();
                Ok(n)
            }
            _ => Err(self.error_here(message)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(input: &str) -> String {
        let mut sql = QueryBuilder::new("");
        WhereExpr::parse(input).unwrap().push_sql(&mut sql);
        sql.sql().to_string()
    }

    fn compare(column: &'static str, op: &'static str, value: Literal) -> WhereExpr {
        WhereExpr::Compare {
            column: Column::Fixed(column),
            op,
            value,
        }
    }

    #[test]
    fn precedence_and_binding() {
        let parsed =
            WhereExpr::parse("model = 'vit-b' or model = \"vit-l\" and not value < 0.5").unwrap();
        let expected = WhereExpr::Or(
            Box::new(compare("s.model", "=", Literal::Text("vit-b".into()))),
            Box::new(WhereExpr::And(
                Box::new(compare("s.model", "=", Literal::Text("vit-l".into()))),
                Box::new(WhereExpr::Not(Box::new(compare(
                    "m.value",
                    "<",
                    Literal::Real(0.5),
                )))),
            )),
        );
        assert_eq!(parsed, expected);
        assert_eq!(
            sql("model = 'vit-b' or model = \"vit-l\" and not value < 0.5"),
            "((s.model = ?) OR ((s.model = ?) AND (NOT (m.value < ?))))"
        );
    }

    #[test]
    fn lists_ranges_and_nulls() {
        assert_eq!(sql("step in (1, 2,3)"), "(m.step IN (?, ?, ?))");
        assert_eq!(
            sql("fraction between 0.1 AND 1"),
            "(s.fraction >= ? AND s.fraction <= ?)"
        );
        assert_eq!(sql("step in 1..10"), "(m.step >= ? AND m.step < ?)");
        assert_eq!(
            WhereExpr::parse("step in -1..=10").unwrap(),
            WhereExpr::Range {
                column: Column::Fixed("m.step"),
                lo: Literal::Int(-1),
                hi: Literal::Int(10),
                upper_inclusive: true
            }
        );
        assert_eq!(sql("step is not null"), "(NOT (m.step IS NULL))");
        assert_eq!(sql("task not in ('a')"), "(NOT (s.task IN (?)))");
        assert_eq!(
            WhereExpr::parse("name = 'it''s'").unwrap(),
            compare("s.name", "=", Literal::Text("it's".into()))
        );
        assert_eq!(
            WhereExpr::parse("value >= 1e-3").unwrap(),
            compare("m.value", ">=", Literal::Real(1e-3))
        );
    }

    #[test]
    fn params_and_matrix_paths_are_bound_and_like_matches_patterns() {
        assert_eq!(
            sql("params.lr < 1e-3 and matrix.fraction = 0.25"),
            "((json_extract(s.params, ?) < ?) AND (json_extract(s.matrix, ?) = ?))"
        );
        assert_eq!(
            WhereExpr::parse("params.vit.embed_dim >= 64").unwrap(),
            WhereExpr::Compare {
                column: Column::Json {
                    document: "s.params",
                    path: "$.\"vit\".\"embed_dim\"".into()
                },
                op: ">=",
                value: Literal::Int(64)
            }
        );
        assert_eq!(sql("name not like 'fine%'"), "(NOT (s.name LIKE ?))");
        let err = WhereExpr::parse("name like 3").unwrap_err();
        assert!(err.message.contains("quoted pattern"), "{err}");
        let err = WhereExpr::parse("colour.x = 1").unwrap_err();
        assert!(err.message.contains("params.NAME"), "{err}");
    }

    #[test]
    fn user_text_never_reaches_the_sql() {
        let input = "model = 'x''); DROP TABLE stages; --'";
        assert_eq!(sql(input), "(s.model = ?)");
        assert_eq!(
            WhereExpr::parse(input).unwrap(),
            compare(
                "s.model",
                "=",
                Literal::Text("x'); DROP TABLE stages; --".into())
            )
        );
    }

    #[test]
    fn errors_point_at_the_bad_token() {
        let cases = [
            ("model = ", 9, "expected a value"),
            ("modle = 'x'", 1, "unknown column"),
            ("model = vit", 9, "quote text"),
            ("(model = 'a'", 13, "expected `)`"),
            ("model = 'a' xor task = 'b'", 13, "expected `and`, `or`"),
            ("step in (1 2)", 12, "expected `,` or `)`"),
            ("step in 1..", 12, "expected a number"),
            ("value ~ 2", 7, "unexpected character"),
            ("name = 'open", 8, "unterminated string"),
            ("fraction between 1 2", 20, "expected `and`"),
            ("value > 12abc", 9, "is not a number"),
        ];
        for (input, column, message) in cases {
            let err = WhereExpr::parse(input).unwrap_err();
            assert_eq!(err.column, column, "{input}: {err}");
            assert!(err.message.contains(message), "{input}: {err}");
        }
        let shown = WhereExpr::parse("model = ").unwrap_err().to_string();
        assert!(shown.ends_with("  model = \n          ^"), "{shown}");
    }
}
