//! The two SQL dialects and the few rewrites between them.

/// Which engine a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// Schema text written for SQLite, as this dialect needs it: for
    /// PostgreSQL, `INTEGER PRIMARY KEY` (SQLite's row id) becomes
    /// `BIGSERIAL PRIMARY KEY`, `INTEGER` `BIGINT`, `REAL` `DOUBLE
    /// PRECISION`, `BLOB` `BYTEA`, and `WITHOUT ROWID` goes.
    pub fn schema(self, sql: &str) -> String {
        match self {
            Dialect::Sqlite => sql.to_owned(),
            Dialect::Postgres => {
                let mut out = String::with_capacity(sql.len() + 64);
                let words: Vec<&str> = split_keeping_separators(sql);
                let mut i = 0;
                while i < words.len() {
                    let word = words[i];
                    let next_word = |k: usize| words[i + 1..].iter().filter(|w| !is_separator(w)).nth(k).copied().unwrap_or("");
                    if word.eq_ignore_ascii_case("INTEGER") && next_word(0).eq_ignore_ascii_case("PRIMARY") && next_word(1).eq_ignore_ascii_case("KEY") {
                        out.push_str("BIGSERIAL");
                    } else if word.eq_ignore_ascii_case("INTEGER") {
                        out.push_str("BIGINT");
                    } else if word.eq_ignore_ascii_case("REAL") {
                        out.push_str("DOUBLE PRECISION");
                    } else if word.eq_ignore_ascii_case("BLOB") {
                        out.push_str("BYTEA");
                    } else if word.eq_ignore_ascii_case("WITHOUT") && next_word(0).eq_ignore_ascii_case("ROWID") {
                        // Skip "WITHOUT", the separator and "ROWID".
                        while i + 1 < words.len() && !words[i + 1].eq_ignore_ascii_case("ROWID") {
                            i += 1;
                        }
                        i += 1;
                    } else {
                        out.push_str(word);
                    }
                    i += 1;
                }
                out
            }
        }
    }

    /// A statement's placeholders as this dialect writes them: `?N` and `?`
    /// become `$N` for PostgreSQL (a bare `?` takes the number after the
    /// highest so far, as in SQLite). Quoted text is left alone.
    pub fn placeholders(self, sql: &str) -> String {
        if self == Dialect::Sqlite || !sql.contains('?') {
            return sql.to_owned();
        }
        let mut out = String::with_capacity(sql.len() + 8);
        let mut chars = sql.chars().peekable();
        let mut quote: Option<char> = None;
        let mut highest = 0u32;
        while let Some(c) = chars.next() {
            if let Some(q) = quote {
                out.push(c);
                if c == q {
                    quote = None;
                }
                continue;
            }
            match c {
                '\'' | '"' => {
                    quote = Some(c);
                    out.push(c);
                }
                '?' => {
                    let mut digits = String::new();
                    while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                        digits.push(*d);
                        chars.next();
                    }
                    let number = if digits.is_empty() { highest + 1 } else { digits.parse().unwrap_or(highest + 1) };
                    highest = highest.max(number);
                    out.push('$');
                    out.push_str(&number.to_string());
                }
                _ => out.push(c),
            }
        }
        out
    }
}

fn is_separator(word: &str) -> bool {
    word.chars().next().is_some_and(|c| !(c.is_ascii_alphanumeric() || c == '_'))
}

/// Words (runs of letters, digits and `_`) and the text between them.
fn split_keeping_separators(sql: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_word = None;
    for (index, c) in sql.char_indices() {
        let word_char = c.is_ascii_alphanumeric() || c == '_';
        match in_word {
            Some(w) if w != word_char => {
                parts.push(&sql[start..index]);
                start = index;
            }
            _ => {}
        }
        in_word = Some(word_char);
    }
    if start < sql.len() {
        parts.push(&sql[start..]);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::Dialect;

    #[test]
    fn schema_types_become_postgresql_types() {
        let sqlite = "CREATE TABLE t (\n id INTEGER PRIMARY KEY,\n n INTEGER NOT NULL,\n x REAL,\n b BLOB,\n integer_like TEXT\n) WITHOUT ROWID;";
        let pg = Dialect::Postgres.schema(sqlite);
        assert_eq!(pg, "CREATE TABLE t (\n id BIGSERIAL PRIMARY KEY,\n n BIGINT NOT NULL,\n x DOUBLE PRECISION,\n b BYTEA,\n integer_like TEXT\n) ;");
        assert_eq!(Dialect::Sqlite.schema(sqlite), sqlite);
    }

    #[test]
    fn placeholders_are_numbered_outside_quotes() {
        let pg = Dialect::Postgres.placeholders("SELECT a FROM t WHERE b = ?2 AND c = '?' AND d = ?1 OR e = ? AND f = ?");
        assert_eq!(pg, "SELECT a FROM t WHERE b = $2 AND c = '?' AND d = $1 OR e = $3 AND f = $4");
        assert_eq!(Dialect::Sqlite.placeholders("x = ?1"), "x = ?1");
    }
}
