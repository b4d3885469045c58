//! Mixpanel's segmentation expressions, the `where` parameter of the raw
//! export API: `properties["plan"] == "pro" and properties["seats"] >= 5`.
//!
//! Why a parser of our own: the language is small and Mixpanel-specific,
//! and teams leaving Mixpanel have scripts that export slices with it.
//! Supported: `properties["key"]` (or `'key'`), string, number, boolean and
//! `null` literals, lists `[a, b]`, `==` `!=` `<` `<=` `>` `>=`, `in` (a
//! value in a list, or a substring of a string), `defined(...)`, `not`,
//! `and`, `or` and parentheses. A missing property is `null`: `==` to
//! anything but `null` is false and every ordering is false. A bare value
//! is true when it is `true`, a non-empty string or list, or a non-zero
//! number.
//!
//! Nothing here panics on client input; expressions are limited in length
//! and nesting so that parsing and evaluation stay cheap.

use events::Properties;
use serde_json::Value;
use std::cmp::Ordering;

/// Longest accepted expression, in bytes.
const EXPRESSION_BYTES_MAX: usize = 4096;
/// Deepest accepted nesting.
const DEPTH_MAX: usize = 32;

/// Why an expression was refused; the message names the position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// The expression is longer than [`EXPRESSION_BYTES_MAX`].
    #[error("the expression is longer than {EXPRESSION_BYTES_MAX} bytes")]
    TooLong,
    /// The expression nests deeper than [`DEPTH_MAX`].
    #[error("the expression nests deeper than {DEPTH_MAX} levels")]
    TooDeep,
    /// Unexpected text at a byte offset.
    #[error("{what} at byte {at}")]
    Syntax {
        /// What was wrong.
        what: String,
        /// Byte offset in the expression.
        at: usize,
    },
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `in`: a value in a list, or a substring of a string.
    In,
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// A literal value (a list is a literal of its items).
    Literal(Value),
    /// `properties["key"]`.
    Property(String),
    /// A list of expressions, `[a, b]`.
    List(Vec<Filter>),
    /// `defined(x)`.
    Defined(Box<Filter>),
    /// `not x`.
    Not(Box<Filter>),
    /// `a and b`.
    And(Box<Filter>, Box<Filter>),
    /// `a or b`.
    Or(Box<Filter>, Box<Filter>),
    /// `a == b`, `a in b`, ...
    Compare(Box<Filter>, Comparison, Box<Filter>),
}

impl Filter {
    /// Parses a `where` expression.
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        if text.len() > EXPRESSION_BYTES_MAX {
            return Err(FilterError::TooLong);
        }
        let mut parser = Parser { text: text.as_bytes(), at: 0, depth: 0 };
        let filter = parser.or()?;
        parser.skip_space();
        if parser.at < parser.text.len() {
            return Err(parser.error("unexpected text after the expression"));
        }
        Ok(filter)
    }

    /// Whether an event (or profile) with these properties is selected.
    pub fn matches(&self, properties: &Properties) -> bool {
        truthy(&self.value(properties))
    }

    fn value(&self, properties: &Properties) -> Value {
        match self {
            Filter::Literal(value) => value.clone(),
            Filter::Property(key) => properties.get(key).cloned().unwrap_or(Value::Null),
            Filter::List(items) => Value::Array(items.iter().map(|item| item.value(properties)).collect()),
            Filter::Defined(inner) => Value::Bool(!inner.value(properties).is_null()),
            Filter::Not(inner) => Value::Bool(!truthy(&inner.value(properties))),
            Filter::And(a, b) => Value::Bool(truthy(&a.value(properties)) && truthy(&b.value(properties))),
            Filter::Or(a, b) => Value::Bool(truthy(&a.value(properties)) || truthy(&b.value(properties))),
            Filter::Compare(a, op, b) => Value::Bool(compare(&a.value(properties), *op, &b.value(properties))),
        }
    }
}

fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
    }
}

fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn order(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn compare(a: &Value, op: Comparison, b: &Value) -> bool {
    match op {
        Comparison::Eq => equal(a, b),
        Comparison::Ne => !equal(a, b),
        Comparison::Lt => order(a, b) == Some(Ordering::Less),
        Comparison::Le => matches!(order(a, b), Some(Ordering::Less | Ordering::Equal)),
        Comparison::Gt => order(a, b) == Some(Ordering::Greater),
        Comparison::Ge => matches!(order(a, b), Some(Ordering::Greater | Ordering::Equal)),
        Comparison::In => match (a, b) {
            (_, Value::Array(items)) => items.iter().any(|item| equal(a, item)),
            (Value::String(needle), Value::String(haystack)) => haystack.contains(needle.as_str()),
            _ => false,
        },
    }
}

struct Parser<'a> {
    text: &'a [u8],
    at: usize,
    depth: usize,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> FilterError {
        FilterError::Syntax { what: what.to_owned(), at: self.at }
    }

    fn skip_space(&mut self) {
        while self.text.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_space();
        self.text.get(self.at).copied()
    }

    /// Consumes `symbol` if it comes next.
    fn eat(&mut self, symbol: &str) -> bool {
        self.skip_space();
        if self.text[self.at..].starts_with(symbol.as_bytes()) {
            self.at += symbol.len();
            true
        } else {
            false
        }
    }

    /// Consumes the keyword `word` if it comes next as a whole word.
    fn eat_word(&mut self, word: &str) -> bool {
        self.skip_space();
        let rest = &self.text[self.at..];
        let whole = rest.starts_with(word.as_bytes()) && !rest.get(word.len()).is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
        if whole {
            self.at += word.len();
        }
        whole
    }

    fn expect(&mut self, symbol: &str) -> Result<(), FilterError> {
        if self.eat(symbol) { Ok(()) } else { Err(self.error(&format!("expected {symbol:?}"))) }
    }

    fn nested<T>(&mut self, parse: impl FnOnce(&mut Self) -> Result<T, FilterError>) -> Result<T, FilterError> {
        self.depth += 1;
        if self.depth > DEPTH_MAX {
            return Err(FilterError::TooDeep);
        }
        let result = parse(self);
        self.depth -= 1;
        result
    }

    fn or(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.and()?;
        while self.eat_word("or") {
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.not()?;
        while self.eat_word("and") {
            left = Filter::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Filter, FilterError> {
        if self.eat_word("not") {
            return self.nested(|p| Ok(Filter::Not(Box::new(p.not()?))));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Filter, FilterError> {
        let left = self.primary()?;
        // Two-character operators before their one-character prefixes.
        const SYMBOLS: [(&str, Comparison); 6] =
            [("==", Comparison::Eq), ("!=", Comparison::Ne), ("<=", Comparison::Le), (">=", Comparison::Ge), ("<", Comparison::Lt), (">", Comparison::Gt)];
        let symbol = SYMBOLS.into_iter().find(|(text, _)| self.eat(text)).map(|(_, op)| op);
        let Some(op) = symbol.or_else(|| self.eat_word("in").then_some(Comparison::In)) else {
            return Ok(left);
        };
        let right = self.primary()?;
        Ok(Filter::Compare(Box::new(left), op, Box::new(right)))
    }

    fn primary(&mut self) -> Result<Filter, FilterError> {
        match self.peek() {
            Some(b'(') => {
                self.at += 1;
                let inner = self.nested(Self::or)?;
                self.expect(")")?;
                Ok(inner)
            }
            Some(b'[') => {
                self.at += 1;
                let mut items = Vec::new();
                if !self.eat("]") {
                    loop {
                        items.push(self.nested(Self::or)?);
                        if self.eat("]") {
                            break;
                        }
                        self.expect(",")?;
                    }
                }
                Ok(Filter::List(items))
            }
            Some(b'"' | b'\'') => Ok(Filter::Literal(Value::String(self.string()?))),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) if self.eat_word("properties") => {
                self.expect("[")?;
                if !matches!(self.peek(), Some(b'"' | b'\'')) {
                    return Err(self.error("expected a quoted property name"));
                }
                let key = self.string()?;
                self.expect("]")?;
                Ok(Filter::Property(key))
            }
            Some(_) if self.eat_word("defined") => {
                self.expect("(")?;
                let inner = self.nested(Self::or)?;
                self.expect(")")?;
                Ok(Filter::Defined(Box::new(inner)))
            }
            Some(_) if self.eat_word("true") => Ok(Filter::Literal(Value::Bool(true))),
            Some(_) if self.eat_word("false") => Ok(Filter::Literal(Value::Bool(false))),
            Some(_) if self.eat_word("null") || self.eat_word("undefined") => Ok(Filter::Literal(Value::Null)),
            Some(_) => Err(self.error("expected a value, properties[\"name\"], defined(...), not, or (")),
            None => Err(self.error("the expression ends too early")),
        }
    }

    /// A quoted string with JSON-style escapes (`\"`, `\\`, `\n`, `\uXXXX`).
    fn string(&mut self) -> Result<String, FilterError> {
        let quote = self.text[self.at];
        let start = self.at;
        self.at += 1;
        let mut out = Vec::new();
        loop {
            match self.text.get(self.at).copied() {
                None => return Err(FilterError::Syntax { what: "unterminated string".to_owned(), at: start }),
                Some(b) if b == quote => {
                    self.at += 1;
                    break;
                }
                Some(b'\\') => {
                    let escaped = self.text.get(self.at + 1).copied().ok_or_else(|| self.error("unterminated escape"))?;
                    self.at += 2;
                    match escaped {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'u' => {
                            let hex = self.text.get(self.at..self.at + 4).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u32::from_str_radix(h, 16).ok());
                            let c = hex.and_then(char::from_u32).ok_or_else(|| self.error("bad \\u escape"))?;
                            self.at += 4;
                            out.extend_from_slice(c.to_string().as_bytes());
                        }
                        other => out.push(other),
                    }
                }
                Some(b) => {
                    out.push(b);
                    self.at += 1;
                }
            }
        }
        String::from_utf8(out).map_err(|_| FilterError::Syntax { what: "a string that is not UTF-8".to_owned(), at: start })
    }

    fn number(&mut self) -> Result<Filter, FilterError> {
        let start = self.at;
        if self.text[self.at] == b'-' {
            self.at += 1;
        }
        while self.text.get(self.at).is_some_and(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-')) {
            self.at += 1;
        }
        let text = std::str::from_utf8(&self.text[start..self.at]).unwrap_or_default();
        let value: f64 = text.parse().map_err(|_| FilterError::Syntax { what: format!("{text:?} is not a number"), at: start })?;
        let number = if value.fract() == 0.0 && value.abs() < 9.0e15 { serde_json::Number::from(value as i64) } else { serde_json::Number::from_f64(value).ok_or_else(|| self.error("not a finite number"))? };
        Ok(Filter::Literal(Value::Number(number)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn props(value: Value) -> Properties {
        let Value::Object(map) = value else { panic!("an object") };
        map.into_iter().collect()
    }

    fn selects(expression: &str, properties: Value) -> bool {
        Filter::parse(expression).unwrap_or_else(|e| panic!("{expression}: {e}")).matches(&props(properties))
    }

    #[test]
    fn comparisons_and_logic_select_as_mixpanel_documents() {
        let event = json!({"plan": "pro", "seats": 12, "price": 9.5, "beta": true, "tags": ["a", "b"], "$os": "Mac OS X", "empty": ""});
        for (expression, want) in [
            (r#"properties["plan"] == "pro""#, true),
            (r#"properties['plan'] != "pro""#, false),
            (r#"properties["seats"] >= 12 and properties["seats"] < 13"#, true),
            (r#"properties["seats"] == 12.0"#, true),
            (r#"properties["price"] > 9"#, true),
            (r#"properties["price"] > "9""#, false),
            (r#"properties["plan"] in ["free", "pro"]"#, true),
            (r#""a" in properties["tags"]"#, true),
            (r#""Mac" in properties["$os"]"#, true),
            (r#""Win" in properties["$os"]"#, false),
            (r#"defined(properties["missing"])"#, false),
            (r#"not defined(properties["missing"])"#, true),
            (r#"properties["missing"] == null"#, true),
            (r#"properties["missing"] != "x""#, true),
            (r#"properties["missing"] < 5"#, false),
            (r#"properties["beta"]"#, true),
            (r#"properties["empty"]"#, false),
            (r#"properties["plan"] == "free" or (properties["beta"] and not properties["seats"] < 10)"#, true),
            (r#"properties["plan"] == "free" or properties["beta"] and properties["seats"] < 10"#, false),
            (r#"properties["plan"] == "p\u0072o""#, true),
            ("properties[\"$os\"] == \"Mac OS X\"", true),
        ] {
            assert_eq!(selects(expression, event.clone()), want, "{expression}");
        }
    }

    #[test]
    fn bad_expressions_are_refused_with_a_position() {
        for (expression, at) in [
            ("properties[plan] == 1", 11),
            (r#"properties["plan"] == "#, 22),
            (r#"properties["plan"] === "x""#, 21),
            (r#"(properties["a"] == 1"#, 21),
            (r#"properties["a"] == "x"#, 19),
            ("1 ++ 2", 2),
            ("", 0),
            ("drop table", 0),
        ] {
            match Filter::parse(expression) {
                Err(FilterError::Syntax { at: found, .. }) => assert_eq!(found, at, "{expression}"),
                other => panic!("{expression}: {other:?}"),
            }
        }
        assert_eq!(Filter::parse(&"x".repeat(5000)), Err(FilterError::TooLong));
        assert_eq!(Filter::parse(&format!("{}1{}", "(".repeat(40), ")".repeat(40))), Err(FilterError::TooDeep));
        assert_eq!(Filter::parse(&format!("{}true", "not ".repeat(40))), Err(FilterError::TooDeep));
    }
}
