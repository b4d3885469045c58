//! Formulas across insights series: `+ - * /` and parentheses over the
//! letters A, B, ... that name the report's events in order, and numbers.
//! A division by zero, or any null operand, gives null.

use crate::error::QueryError;

#[derive(Debug, Clone, PartialEq)]
pub enum Expression {
    Letter(usize),
    Number(f64),
    Negate(Box<Expression>),
    Binary(Box<Expression>, char, Box<Expression>),
}

impl Expression {
    pub fn evaluate(&self, letter: &dyn Fn(usize) -> Option<f64>) -> Option<f64> {
        match self {
            Expression::Letter(i) => letter(*i),
            Expression::Number(n) => Some(*n),
            Expression::Negate(inner) => inner.evaluate(letter).map(|x| -x),
            Expression::Binary(a, op, b) => {
                let (x, y) = (a.evaluate(letter)?, b.evaluate(letter)?);
                match op {
                    '+' => Some(x + y),
                    '-' => Some(x - y),
                    '*' => Some(x * y),
                    _ if y == 0.0 => None,
                    _ => Some(x / y),
                }
            }
        }
    }
}

pub fn parse(text: &str, n_letters: usize) -> Result<Expression, QueryError> {
    let tokens: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
    let mut parser = Parser { tokens: &tokens, at: 0, n_letters, text };
    let expression = parser.sum()?;
    if parser.at != tokens.len() {
        return Err(parser.error("unexpected text"));
    }
    Ok(expression)
}

struct Parser<'a> {
    tokens: &'a [char],
    at: usize,
    n_letters: usize,
    text: &'a str,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> QueryError {
        QueryError::bad(format!("formula {:?}: {what} at character {}", self.text, self.at + 1))
    }

    fn peek(&self) -> Option<char> {
        self.tokens.get(self.at).copied()
    }

    fn sum(&mut self) -> Result<Expression, QueryError> {
        let mut left = self.product()?;
        while let Some(op @ ('+' | '-')) = self.peek() {
            self.at += 1;
            left = Expression::Binary(Box::new(left), op, Box::new(self.product()?));
        }
        Ok(left)
    }

    fn product(&mut self) -> Result<Expression, QueryError> {
        let mut left = self.factor()?;
        while let Some(op @ ('*' | '/')) = self.peek() {
            self.at += 1;
            left = Expression::Binary(Box::new(left), op, Box::new(self.factor()?));
        }
        Ok(left)
    }

    fn factor(&mut self) -> Result<Expression, QueryError> {
        match self.peek() {
            Some('(') => {
                self.at += 1;
                let inner = self.sum()?;
                if self.peek() != Some(')') {
                    return Err(self.error("missing )"));
                }
                self.at += 1;
                Ok(inner)
            }
            Some('-') => {
                self.at += 1;
                Ok(Expression::Negate(Box::new(self.factor()?)))
            }
            Some(c) if c.is_ascii_uppercase() => {
                let index = (c as u8 - b'A') as usize;
                if index >= self.n_letters {
                    return Err(self.error(&format!("{c} names no event")));
                }
                self.at += 1;
                Ok(Expression::Letter(index))
            }
            Some(c) if c.is_ascii_digit() || c == '.' => {
                let start = self.at;
                while self.peek().is_some_and(|c| c.is_ascii_digit() || c == '.') {
                    self.at += 1;
                }
                let number: String = self.tokens[start..self.at].iter().collect();
                number.parse().map(Expression::Number).map_err(|_| self.error("bad number"))
            }
            _ => Err(self.error("expected a letter, a number or (")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_parentheses_and_division_by_zero() {
        let values = [Some(10.0), Some(4.0), Some(0.0)];
        let eval = |text: &str| parse(text, 3).unwrap().evaluate(&|i| values[i]);
        assert_eq!(eval("A/B"), Some(2.5));
        assert_eq!(eval("(A - B) / A"), Some(0.6));
        assert_eq!(eval("A + B * 2"), Some(18.0));
        assert_eq!(eval("A / C"), None);
        assert_eq!(eval("-A + 1"), Some(-9.0));
        assert!(parse("A +", 3).is_err());
        assert!(parse("D", 3).is_err());
    }
}
