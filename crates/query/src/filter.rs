//! Filters, compiled against a table: each property test is decided once per
//! distinct value of the column (a `bool` per dictionary code), so testing a
//! row is an array lookup.

use crate::context::Context;
use crate::error::QueryError;
use crate::spec::{Filter, Op, Source};
use crate::value::{Column, Value, MISSING};
use serde_json::Value as Json;
use std::sync::Arc;

/// A test of an event property (by row) or a profile property (by unit),
/// decided per dictionary code.
#[derive(Debug)]
pub(crate) struct PropertyTest {
    column: Arc<Column>,
    by_unit: bool,
    accept: Vec<bool>,
    accept_missing: bool,
}

impl PropertyTest {
    #[inline(always)]
    fn holds(&self, row: usize, unit: usize) -> bool {
        let code = self.column.codes.get(if self.by_unit { unit } else { row });
        if code == MISSING { self.accept_missing } else { self.accept[code as usize] }
    }
}

#[derive(Debug)]
pub(crate) enum RowFilter {
    Property(PropertyTest),
    /// Property tests that must all hold: the common case, kept flat so a
    /// row is tested without recursion.
    Conjunction(Vec<PropertyTest>),
    /// Membership of a set of units (cohorts).
    Units { members: Arc<Vec<bool>>, negate: bool },
    All(Vec<RowFilter>),
    Any(Vec<RowFilter>),
}

impl RowFilter {
    pub(crate) fn always() -> RowFilter {
        RowFilter::All(Vec::new())
    }

    /// True when the filter holds for every row.
    /// Whether the filter looks at a row's unit (profile properties, cohorts).
    pub(crate) fn reads_units(&self) -> bool {
        match self {
            RowFilter::Property(test) => test.by_unit,
            RowFilter::Conjunction(tests) => tests.iter().any(|t| t.by_unit),
            RowFilter::Units { .. } => true,
            RowFilter::All(list) | RowFilter::Any(list) => list.iter().any(RowFilter::reads_units),
        }
    }

    pub(crate) fn is_trivial(&self) -> bool {
        matches!(self, RowFilter::All(list) if list.iter().all(RowFilter::is_trivial))
    }

    #[inline(always)]
    pub(crate) fn test(&self, row: usize, unit: usize) -> bool {
        match self {
            RowFilter::Property(test) => test.holds(row, unit),
            RowFilter::Conjunction(tests) => tests.iter().all(|t| t.holds(row, unit)),
            RowFilter::Units { members, negate } => members[unit] != *negate,
            RowFilter::All(list) => list.iter().all(|f| f.test(row, unit)),
            RowFilter::Any(list) => list.iter().any(|f| f.test(row, unit)),
        }
    }
}

/// Compiles a list of filters that must all hold.
pub(crate) fn compile_all(context: &Context<'_>, filters: &[Filter]) -> Result<RowFilter, QueryError> {
    let mut list: Vec<RowFilter> = Vec::with_capacity(filters.len());
    for filter in filters {
        // Nested "all" groups flatten into this one: fewer levels per row.
        match compile(context, filter)? {
            RowFilter::All(inner) => list.extend(inner),
            RowFilter::Conjunction(tests) => list.extend(tests.into_iter().map(RowFilter::Property)),
            other => list.push(other),
        }
    }
    if list.iter().all(|f| matches!(f, RowFilter::Property(_))) && !list.is_empty() {
        let tests = list.into_iter().filter_map(|f| if let RowFilter::Property(test) = f { Some(test) } else { None }).collect();
        return Ok(RowFilter::Conjunction(tests));
    }
    Ok(RowFilter::All(list))
}

pub(crate) fn compile(context: &Context<'_>, filter: &Filter) -> Result<RowFilter, QueryError> {
    match filter {
        Filter::All { all } => compile_all(context, all),
        Filter::Any { any } => Ok(RowFilter::Any(any.iter().map(|f| compile(context, f)).collect::<Result<_, _>>()?)),
        Filter::Cohort { cohort } => Ok(RowFilter::Units { members: context.cohort_members(*cohort)?, negate: false }),
        Filter::NotCohort { not_cohort } => Ok(RowFilter::Units { members: context.cohort_members(*not_cohort)?, negate: true }),
        Filter::Property { property, op, value, source } => {
            let (column, by_unit) = match source {
                Source::Event => (context.table.column(property)?, false),
                Source::Profile => (context.profile_column(property)?, true),
            };
            let test = ValueTest::new(*op, value, property)?;
            let accept = column.dictionary.values.iter().map(|v| test.holds(Some(v))).collect();
            Ok(RowFilter::Property(PropertyTest { accept_missing: test.holds(None), column, by_unit, accept }))
        }
    }
}

/// One operator with its operand, checked once.
#[derive(Debug)]
pub(crate) struct ValueTest {
    op: Op,
    operands: Vec<Value>,
    numbers: Vec<f64>,
}

impl ValueTest {
    pub(crate) fn new(op: Op, operand: &Json, property: &str) -> Result<ValueTest, QueryError> {
        let bad = |what: &str| QueryError::bad(format!("filter on {property:?}: {op:?} needs {what}").to_lowercase());
        let (operands, numbers) = match op {
            Op::Set | Op::NotSet => (Vec::new(), Vec::new()),
            Op::Eq | Op::Neq => (vec![Value::from_json(operand).ok_or_else(|| bad("a value"))?], Vec::new()),
            Op::In | Op::NotIn => {
                let list = operand.as_array().ok_or_else(|| bad("a list value"))?;
                (list.iter().filter_map(Value::from_json).collect(), Vec::new())
            }
            Op::Contains | Op::NotContains => {
                let text = operand.as_str().ok_or_else(|| bad("a string value"))?;
                (vec![Value::Str(text.into())], Vec::new())
            }
            Op::Gt | Op::Gte | Op::Lt | Op::Lte => (Vec::new(), vec![operand.as_f64().ok_or_else(|| bad("a numeric value"))?]),
            Op::Between => {
                let pair = operand.as_array().filter(|l| l.len() == 2).ok_or_else(|| bad("a value [low, high]"))?;
                let low = pair[0].as_f64().ok_or_else(|| bad("numeric bounds"))?;
                let high = pair[1].as_f64().ok_or_else(|| bad("numeric bounds"))?;
                (Vec::new(), vec![low, high])
            }
        };
        Ok(ValueTest { op, operands, numbers })
    }

    pub(crate) fn holds(&self, value: Option<&Value>) -> bool {
        let number = value.and_then(Value::as_number);
        match self.op {
            Op::Set => value.is_some(),
            Op::NotSet => value.is_none(),
            Op::Eq => value.is_some_and(|v| self.operands.iter().any(|o| same(o, v))),
            Op::Neq => !value.is_some_and(|v| self.operands.iter().any(|o| same(o, v))),
            Op::In => value.is_some_and(|v| self.operands.iter().any(|o| same(o, v))),
            Op::NotIn => !value.is_some_and(|v| self.operands.iter().any(|o| same(o, v))),
            Op::Contains => contains(value, &self.operands[0]),
            Op::NotContains => !contains(value, &self.operands[0]),
            Op::Gt => number.is_some_and(|x| x > self.numbers[0]),
            Op::Gte => number.is_some_and(|x| x >= self.numbers[0]),
            Op::Lt => number.is_some_and(|x| x < self.numbers[0]),
            Op::Lte => number.is_some_and(|x| x <= self.numbers[0]),
            Op::Between => number.is_some_and(|x| self.numbers[0] <= x && x <= self.numbers[1]),
        }
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Num(x), Value::Num(y)) => x == y,
        _ => a == b,
    }
}

fn contains(value: Option<&Value>, needle: &Value) -> bool {
    match (value, needle) {
        (Some(Value::Str(text)), Value::Str(needle)) => text.contains(needle.as_ref()),
        _ => false,
    }
}
