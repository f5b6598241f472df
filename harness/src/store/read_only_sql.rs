//! The statement check of `rsfm sql`: one statement, and one that only reads.
//!
//! This is the first of three locks (the connection is also opened `mode=ro` and runs with
//! `PRAGMA query_only=ON`), and the one that gives the user a clear message. It tokenises the
//! text the way SQLite does for the parts that matter (quoted strings and identifiers, comments,
//! semicolons) so that a keyword inside a string or comment neither passes nor fails a query.

/// Why a statement was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadOnlySqlError {
    /// Nothing but whitespace and comments.
    #[error("no SQL statement given")]
    Empty,
    /// More than one statement.
    #[error("{0} statements given; `rsfm sql` runs exactly one read-only statement")]
    MultipleStatements(usize),
    /// A statement that is not a query.
    #[error(
        "`{0}` is not allowed: `rsfm sql` runs one read-only statement (SELECT, WITH … SELECT, VALUES, \
         EXPLAIN or a reading PRAGMA); the results database is written only by `rsfm run`"
    )]
    NotReadOnly(String),
    /// A PRAGMA that sets something, or one not known to be read-only.
    #[error(
        "`PRAGMA {0}` is not allowed here: only reading pragmas without `=` (table_info(T), table_list, \
         index_list(T), user_version, ...) are"
    )]
    Pragma(String),
    /// A call of `load_extension`, which would run native code.
    #[error(
        "`load_extension` is not allowed: `rsfm sql` cannot load SQLite extensions (the connection refuses them too)"
    )]
    LoadExtension,
    /// A string, quoted identifier or comment that never ends.
    #[error("unterminated {0} in the SQL text")]
    Unterminated(&'static str),
}

/// Checks that `sql` is exactly one read-only statement.
pub fn check_read_only(sql: &str) -> Result<(), ReadOnlySqlError> {
    let tokens = tokenize(sql)?;
    let statements: Vec<&[Token]> = tokens
        .split(|t| *t == Token::Semicolon)
        .filter(|s| !s.is_empty())
        .collect();
    match statements.as_slice() {
        [] => Err(ReadOnlySqlError::Empty),
        [statement] if statement.contains(&Token::Word("LOAD_EXTENSION".into())) => {
            Err(ReadOnlySqlError::LoadExtension)
        }
        [statement] => check_statement(statement),
        many => Err(ReadOnlySqlError::MultipleStatements(many.len())),
    }
}

/// Pragmas that take an argument in parentheses and only report.
const PRAGMAS_WITH_ARGUMENT: &[&str] = &[
    "table_info",
    "table_xinfo",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "foreign_key_check",
    "integrity_check",
    "quick_check",
];

/// Pragmas that report when given no argument (with `=` or an argument, some of them write).
const PRAGMAS_WITHOUT_ARGUMENT: &[&str] = &[
    "table_list",
    "database_list",
    "collation_list",
    "function_list",
    "module_list",
    "pragma_list",
    "compile_options",
    "user_version",
    "schema_version",
    "application_id",
    "data_version",
    "page_count",
    "page_size",
    "freelist_count",
    "journal_mode",
    "encoding",
    "foreign_keys",
    "query_only",
];

/// A lexical token; only what the check needs is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A bare word (keyword or identifier), upper-cased.
    Word(String),
    /// A string literal, quoted identifier or number.
    Literal,
    /// `;`
    Semicolon,
    /// Any other punctuation character.
    Punct(char),
}

fn tokenize(sql: &str) -> Result<Vec<Token>, ReadOnlySqlError> {
    let chars: Vec<char> = sql.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '-' if chars.get(i + 1) == Some(&'-') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                let end = (i + 2..chars.len().saturating_sub(1))
                    .find(|&j| chars[j] == '*' && chars[j + 1] == '/');
                i = end.ok_or(ReadOnlySqlError::Unterminated("comment"))? + 2;
            }
            '\'' | '"' | '`' => {
                i = skip_quoted(&chars, i, c)?;
                tokens.push(Token::Literal);
            }
            '[' => {
                let end = (i + 1..chars.len()).find(|&j| chars[j] == ']');
                i = end.ok_or(ReadOnlySqlError::Unterminated("[identifier]"))? + 1;
                tokens.push(Token::Literal);
            }
            ';' => {
                tokens.push(Token::Semicolon);
                i += 1;
            }
            c if c.is_ascii_digit() => {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
                tokens.push(Token::Literal);
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
                {
                    i += 1;
                }
                tokens.push(Token::Word(
                    chars[start..i]
                        .iter()
                        .collect::<String>()
                        .to_ascii_uppercase(),
                ));
            }
            c => {
                tokens.push(Token::Punct(c));
                i += 1;
            }
        }
    }
    Ok(tokens)
}

/// Index just past the quoted run starting at `start` (a doubled quote is an escaped quote).
fn skip_quoted(chars: &[char], start: usize, quote: char) -> Result<usize, ReadOnlySqlError> {
    let mut i = start + 1;
    while i < chars.len() {
        if chars[i] == quote {
            if chars.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return Ok(i + 1);
        }
        i += 1;
    }
    Err(ReadOnlySqlError::Unterminated(if quote == '\'' {
        "string"
    } else {
        "quoted identifier"
    }))
}

fn check_statement(tokens: &[Token]) -> Result<(), ReadOnlySqlError> {
    let verb = match tokens.first() {
        Some(Token::Word(w)) => w.as_str(),
        Some(_) | None => return Err(ReadOnlySqlError::NotReadOnly(first_text(tokens))),
    };
    match verb {
        "SELECT" | "VALUES" => Ok(()),
        "WITH" => match main_verb_after_with(&tokens[1..]) {
            Some("SELECT" | "VALUES") => Ok(()),
            Some(other) => Err(ReadOnlySqlError::NotReadOnly(format!("WITH … {other}"))),
            None => Err(ReadOnlySqlError::NotReadOnly(
                "WITH without a SELECT".into(),
            )),
        },
        "EXPLAIN" => {
            let rest = &tokens[1..];
            let rest = match rest {
                [Token::Word(q), Token::Word(p), tail @ ..] if q == "QUERY" && p == "PLAN" => tail,
                _ => rest,
            };
            check_statement(rest)
        }
        "PRAGMA" => check_pragma(&tokens[1..]),
        other => Err(ReadOnlySqlError::NotReadOnly(other.to_string())),
    }
}

/// The first statement keyword at parenthesis depth 0 after `WITH` (the CTE bodies are nested).
fn main_verb_after_with(tokens: &[Token]) -> Option<&str> {
    let mut depth = 0usize;
    for token in tokens {
        match token {
            Token::Punct('(') => depth += 1,
            Token::Punct(')') => depth = depth.saturating_sub(1),
            Token::Word(w) if depth == 0 => {
                if matches!(
                    w.as_str(),
                    "SELECT" | "VALUES" | "INSERT" | "UPDATE" | "DELETE" | "REPLACE"
                ) {
                    return Some(w.as_str());
                }
            }
            _ => {}
        }
    }
    None
}

/// `PRAGMA [schema.]name` or `PRAGMA [schema.]name(arg)`, for the reading pragmas listed above.
fn check_pragma(tokens: &[Token]) -> Result<(), ReadOnlySqlError> {
    let name_and_rest = match tokens {
        [Token::Word(_), Token::Punct('.'), rest @ ..] => rest,
        _ => tokens,
    };
    let (name, rest) = match name_and_rest {
        [Token::Word(name), rest @ ..] => (name.to_ascii_lowercase(), rest),
        _ => return Err(ReadOnlySqlError::Pragma(String::new())),
    };
    let allowed = match rest {
        [] => {
            PRAGMAS_WITHOUT_ARGUMENT.contains(&name.as_str())
                || PRAGMAS_WITH_ARGUMENT.contains(&name.as_str())
        }
        [Token::Punct('('), Token::Word(_) | Token::Literal, Token::Punct(')')] => {
            PRAGMAS_WITH_ARGUMENT.contains(&name.as_str())
        }
        _ => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(ReadOnlySqlError::Pragma(name))
    }
}

fn first_text(tokens: &[Token]) -> String {
    match tokens.first() {
        Some(Token::Punct(c)) => c.to_string(),
        _ => "a statement that does not start with a keyword".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_single_queries() {
        for sql in [
            "SELECT * FROM stages",
            "  select count(*) from metrics;  ",
            "SELECT 'DELETE FROM stages; DROP TABLE x' AS s -- DELETE\n",
            "SELECT /* ; UPDATE */ 1",
            "WITH t AS (SELECT key FROM stages) SELECT * FROM t",
            "WITH RECURSIVE c(x) AS (VALUES(1) UNION ALL SELECT x + 1 FROM c WHERE x < 3) SELECT x FROM c",
            "VALUES (1), (2)",
            "EXPLAIN QUERY PLAN SELECT * FROM stages",
            "SELECT replace(name, 'a', 'b') FROM stages",
            "PRAGMA table_info(stages)",
            "PRAGMA main.table_info('metrics')",
            "PRAGMA user_version",
            "SELECT \"key\" FROM [stages]",
        ] {
            assert_eq!(check_read_only(sql), Ok(()), "{sql}");
        }
    }

    #[test]
    fn refuses_writes_and_multiple_statements() {
        let refused = [
            (
                "DELETE FROM stages",
                ReadOnlySqlError::NotReadOnly("DELETE".into()),
            ),
            (
                "update stages set status = 'x'",
                ReadOnlySqlError::NotReadOnly("UPDATE".into()),
            ),
            (
                "INSERT INTO stages VALUES (1)",
                ReadOnlySqlError::NotReadOnly("INSERT".into()),
            ),
            (
                "DROP TABLE stages",
                ReadOnlySqlError::NotReadOnly("DROP".into()),
            ),
            (
                "ATTACH 'x.db' AS x",
                ReadOnlySqlError::NotReadOnly("ATTACH".into()),
            ),
            ("VACUUM", ReadOnlySqlError::NotReadOnly("VACUUM".into())),
            (
                "SELECT 1; DELETE FROM stages",
                ReadOnlySqlError::MultipleStatements(2),
            ),
            (
                "SELECT 1; SELECT 2",
                ReadOnlySqlError::MultipleStatements(2),
            ),
            (
                "WITH t AS (SELECT key FROM stages) DELETE FROM stages WHERE key IN t",
                ReadOnlySqlError::NotReadOnly("WITH … DELETE".into()),
            ),
            (
                "EXPLAIN DELETE FROM stages",
                ReadOnlySqlError::NotReadOnly("DELETE".into()),
            ),
            (
                "PRAGMA query_only = OFF",
                ReadOnlySqlError::Pragma("query_only".into()),
            ),
            (
                "PRAGMA journal_mode(DELETE)",
                ReadOnlySqlError::Pragma("journal_mode".into()),
            ),
            (
                "PRAGMA writable_schema",
                ReadOnlySqlError::Pragma("writable_schema".into()),
            ),
            (
                "SELECT load_extension('/tmp/x.so')",
                ReadOnlySqlError::LoadExtension,
            ),
            (
                "WITH t AS (SELECT Load_Extension('x')) SELECT * FROM t",
                ReadOnlySqlError::LoadExtension,
            ),
            ("  ; -- nothing", ReadOnlySqlError::Empty),
            ("SELECT 'open", ReadOnlySqlError::Unterminated("string")),
            (
                "SELECT 1 /* open",
                ReadOnlySqlError::Unterminated("comment"),
            ),
        ];
        for (sql, expected) in refused {
            assert_eq!(check_read_only(sql), Err(expected), "{sql}");
        }
    }
}
