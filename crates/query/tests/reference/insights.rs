//! Insights, bucket by bucket and segment by segment, from the event list.

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::Date;
use query::QueryError;
use query::result::{FormulaSeries, InsightsResult, Series};
use query::spec::{Aggregate, Compare, InsightsEvent, InsightsSpec, Interval, Measure};
use serde_json::Value;

use super::{
    Event, World, add_days, bad, days_of, mean, name_matches, optional_segment_cmp, parse_date, present, quantile_cont,
};

pub(super) fn run(world: &World, spec: &InsightsSpec) -> Result<InsightsResult, QueryError> {
    validate(spec)?;
    let formulas: Vec<Expr> =
        spec.formulas.iter().map(|formula| parse_formula(&formula.expression, spec.events.len())).collect::<Result<_, _>>()?;
    let from = parse_date(&spec.from)?;
    let to = parse_date(&spec.to)?;
    if from > to {
        return Err(bad("from is after to"));
    }
    let mut result = insights_over(world, spec, &formulas, from, to)?;
    if spec.compare == Some(Compare::PreviousPeriod) {
        let n_days = days_of(from, to).len() as i64;
        let previous = insights_over(world, spec, &formulas, add_days(from, -n_days), add_days(from, -1))?;
        result.previous = Some(Box::new(previous));
    }
    Ok(result)
}

fn validate(spec: &InsightsSpec) -> Result<(), QueryError> {
    if spec.events.is_empty() {
        return Err(bad("events must not be empty"));
    }
    for entry in &spec.events {
        if window_days(entry.measure).is_some() && spec.interval != Interval::Day {
            return Err(bad("dau, wau and mau need interval day"));
        }
        if is_property_aggregate(entry.measure) && entry.property.is_none() {
            return Err(bad("this measure needs a property"));
        }
    }
    Ok(())
}

fn window_days(measure: Measure) -> Option<i64> {
    match measure {
        Measure::Dau => Some(1),
        Measure::Wau => Some(7),
        Measure::Mau => Some(30),
        _ => None,
    }
}

fn is_property_aggregate(measure: Measure) -> bool {
    matches!(measure, Measure::Sum | Measure::Avg | Measure::Min | Measure::Max | Measure::Median | Measure::P90)
}

fn measure_name(measure: Measure) -> String {
    serde_json::to_value(measure).expect("measures serialise").as_str().expect("a string").to_owned()
}

/// The report over one range (the main one or the previous period).
fn insights_over(world: &World, spec: &InsightsSpec, formulas: &[Expr], from: Date, to: Date) -> Result<InsightsResult, QueryError> {
    let keys = world.calendar.bucket_keys(from, to, spec.interval);
    let mut entries = Vec::new();
    for entry in &spec.events {
        entries.push(EntryEvents::collect(world, spec, entry, from, to)?);
    }
    let mut series = Vec::new();
    // Each entry's "$other" points, for formulas.
    let mut other_points: Vec<Option<BTreeMap<String, Option<f64>>>> = vec![None; spec.events.len()];
    for (index, (entry, events)) in spec.events.iter().zip(&entries).enumerate() {
        let mut segments = if spec.breakdown.is_some() { events.segments() } else { vec![None] };
        segments.sort_by(|a, b| {
            let (total_a, total_b) = (events.total(a), events.total(b));
            // Totals descending, null totals last, then segment order.
            total_b.is_some().cmp(&total_a.is_some()).then(total_b.partial_cmp(&total_a).expect("no NaN")).then(optional_segment_cmp(a, b))
        });
        let mut dropped = Vec::new();
        if let (Some(_), Some(limit)) = (&spec.breakdown, spec.limit) {
            dropped = segments.split_off(limit.min(segments.len()));
        }
        let with_total = spec.breakdown.is_some() && spec.limit.is_some();
        for segment in segments {
            series.push(Series {
                event: entry.event.clone(),
                measure: measure_name(entry.measure),
                points: events.points(&segment, &keys),
                total: if with_total { events.total(&segment) } else { None },
                segment,
            });
        }
        if spec.other && !dropped.is_empty() {
            // Every left-out segment read as one, "$other".
            let other = Some(Value::from("$other"));
            let folded = events.folded(&dropped, &other);
            other_points[index] = Some(folded.points(&other, &keys));
            series.push(Series {
                event: entry.event.clone(),
                measure: measure_name(entry.measure),
                points: folded.points(&other, &keys),
                total: folded.total(&other),
                segment: other,
            });
        }
    }
    let formula_series = formula_series(spec, formulas, &entries, &series, &keys, &other_points);
    Ok(InsightsResult { series, formulas: formula_series, previous: None })
}

fn formula_series(
    spec: &InsightsSpec,
    formulas: &[Expr],
    entries: &[EntryEvents],
    series: &[Series],
    keys: &[String],
    other_points: &[Option<BTreeMap<String, Option<f64>>>],
) -> Vec<FormulaSeries> {
    let mut segments: Vec<Option<Value>> = Vec::new();
    for one in series {
        if !segments.contains(&one.segment) {
            segments.push(one.segment.clone());
        }
    }
    let mut result = Vec::new();
    for (formula, expr) in spec.formulas.iter().zip(formulas) {
        for segment in &segments {
            // "$other" reads each letter's own "$other" series where it has one.
            let is_other = segment.as_ref().and_then(Value::as_str) == Some("$other");
            let letter_points: Vec<BTreeMap<String, Option<f64>>> = entries
                .iter()
                .zip(other_points)
                .map(|(entry, other)| match (is_other, other) {
                    (true, Some(points)) => points.clone(),
                    _ => entry.points(segment, keys),
                })
                .collect();
            let points = keys.iter().map(|key| (key.clone(), expr.eval(&|letter| letter_points[letter][key]))).collect();
            result.push(FormulaSeries {
                name: formula.name.clone(),
                expression: formula.expression.clone(),
                segment: segment.clone(),
                points,
            });
        }
    }
    result
}

/// One event read by a measure, with who it counts for and its segments.
struct Counted<'w> {
    event: &'w Event,
    actor: String,
    segments: Vec<Option<Value>>,
    /// The bucket key, `None` for look-back events before `from`.
    bucket: Option<String>,
}

/// Everything one entry of `events` reads over one range.
struct EntryEvents<'w> {
    world: &'w World,
    entry: InsightsEvent,
    counted: Vec<Counted<'w>>,
}

impl<'w> EntryEvents<'w> {
    /// The same events with the segments in `dropped` renamed `other`.
    fn folded(&self, dropped: &[Option<Value>], other: &Option<Value>) -> EntryEvents<'w> {
        let counted = self
            .counted
            .iter()
            .map(|c| {
                let mut segments: Vec<Option<Value>> = Vec::new();
                for segment in &c.segments {
                    let renamed = if dropped.contains(segment) { other.clone() } else { segment.clone() };
                    if !segments.contains(&renamed) {
                        segments.push(renamed);
                    }
                }
                Counted { event: c.event, actor: c.actor.clone(), segments, bucket: c.bucket.clone() }
            })
            .collect();
        EntryEvents { world: self.world, entry: self.entry.clone(), counted }
    }

    fn collect(world: &'w World, spec: &InsightsSpec, entry: &InsightsEvent, from: Date, to: Date) -> Result<Self, QueryError> {
        let (range_start_ms, range_end_ms) = world.calendar.range_ms(from, to);
        let look_back_days = window_days(entry.measure).map_or(0, |days| days - 1);
        let read_start_ms = world.calendar.start_of_day_ms(add_days(from, -look_back_days));
        let mut counted = Vec::new();
        for event in &world.events {
            if event.time_ms < read_start_ms || event.time_ms >= range_end_ms || !name_matches(&entry.event, event) {
                continue;
            }
            let Some(actor) = world.actor_of(event, &spec.unit) else { continue };
            if !world.passes(event, &spec.filters)? || !world.passes(event, &entry.filters)? {
                continue;
            }
            let in_range = event.time_ms >= range_start_ms;
            counted.push(Counted {
                event,
                actor,
                segments: world.segments_of(spec.breakdown.as_ref(), event)?,
                bucket: in_range.then(|| world.calendar.bucket_key(event.time_ms, spec.interval)),
            });
        }
        Ok(EntryEvents { world, entry: entry.clone(), counted })
    }

    /// Every segment some in-range event falls in (interpretation 11).
    fn segments(&self) -> Vec<Option<Value>> {
        let mut segments = Vec::new();
        for counted in self.counted.iter().filter(|counted| counted.bucket.is_some()) {
            for segment in &counted.segments {
                if !segments.contains(segment) {
                    segments.push(segment.clone());
                }
            }
        }
        segments
    }

    fn in_segment<'a>(&'a self, segment: &'a Option<Value>) -> impl Iterator<Item = &'a Counted<'w>> + 'a {
        self.counted.iter().filter(move |counted| counted.segments.contains(segment))
    }

    fn points(&self, segment: &Option<Value>, keys: &[String]) -> BTreeMap<String, Option<f64>> {
        let mut points = BTreeMap::new();
        for key in keys {
            let value = match window_days(self.entry.measure) {
                Some(n_days) => Some(self.active_people(segment, key, n_days)),
                None => {
                    let in_bucket: Vec<&Counted> =
                        self.in_segment(segment).filter(|counted| counted.bucket.as_deref() == Some(key.as_str())).collect();
                    self.measure(&in_bucket)
                }
            };
            points.insert(key.clone(), value);
        }
        points
    }

    /// Distinct actors in the `n_days` ending with day `key`.
    fn active_people(&self, segment: &Option<Value>, key: &str, n_days: i64) -> f64 {
        let day = parse_date(key).expect("day keys are dates");
        let start_ms = self.world.calendar.start_of_day_ms(add_days(day, 1 - n_days));
        let end_ms = self.world.calendar.start_of_day_ms(add_days(day, 1));
        let actors: BTreeSet<&str> = self
            .in_segment(segment)
            .filter(|counted| start_ms <= counted.event.time_ms && counted.event.time_ms < end_ms)
            .map(|counted| counted.actor.as_str())
            .collect();
        actors.len() as f64
    }

    /// The measure with the whole range as one bucket (interpretation 12).
    fn total(&self, segment: &Option<Value>) -> Option<f64> {
        let in_range: Vec<&Counted> = self.in_segment(segment).filter(|counted| counted.bucket.is_some()).collect();
        self.measure(&in_range)
    }

    fn measure(&self, events: &[&Counted]) -> Option<f64> {
        match self.entry.measure {
            Measure::Total => Some(events.len() as f64),
            Measure::Uniques | Measure::Dau | Measure::Wau | Measure::Mau => {
                Some(events.iter().map(|counted| counted.actor.as_str()).collect::<BTreeSet<_>>().len() as f64)
            }
            Measure::Frequency => {
                let mut per_actor: BTreeMap<&str, f64> = BTreeMap::new();
                for counted in events {
                    *per_actor.entry(&counted.actor).or_default() += 1.0;
                }
                let counts: Vec<f64> = per_actor.into_values().collect();
                Some(aggregate(self.entry.aggregate.unwrap_or_default(), &counts).unwrap_or(0.0))
            }
            Measure::Sum | Measure::Avg | Measure::Min | Measure::Max | Measure::Median | Measure::P90 => {
                let property = self.entry.property.as_deref().expect("validated");
                let values: Vec<f64> =
                    events.iter().filter_map(|counted| present(counted.event.properties.get(property)).and_then(Value::as_f64)).collect();
                property_aggregate(self.entry.measure, &values)
            }
        }
    }
}

fn aggregate(aggregate: Aggregate, values: &[f64]) -> Option<f64> {
    match aggregate {
        Aggregate::Avg => mean(values),
        Aggregate::Median => quantile_cont(values, 0.5),
        Aggregate::Min => values.iter().copied().reduce(f64::min),
        Aggregate::Max => values.iter().copied().reduce(f64::max),
        Aggregate::P90 => quantile_cont(values, 0.9),
    }
}

fn property_aggregate(measure: Measure, values: &[f64]) -> Option<f64> {
    match measure {
        Measure::Sum => (!values.is_empty()).then(|| values.iter().sum()),
        Measure::Avg => aggregate(Aggregate::Avg, values),
        Measure::Min => aggregate(Aggregate::Min, values),
        Measure::Max => aggregate(Aggregate::Max, values),
        Measure::Median => aggregate(Aggregate::Median, values),
        Measure::P90 => aggregate(Aggregate::P90, values),
        _ => unreachable!("not a property aggregate"),
    }
}

// ---- formulas ----

/// A parsed formula: letters name the entries of `events` (0 for A).
#[derive(Debug)]
pub(crate) enum Expr {
    Letter(usize),
    Number(f64),
    Negate(Box<Expr>),
    Binary(char, Box<Expr>, Box<Expr>),
}

impl Expr {
    pub(crate) fn eval(&self, letter_value: &dyn Fn(usize) -> Option<f64>) -> Option<f64> {
        match self {
            Expr::Letter(index) => letter_value(*index),
            Expr::Number(number) => Some(*number),
            Expr::Negate(inner) => inner.eval(letter_value).map(|x| -x),
            Expr::Binary(op, left, right) => {
                let (x, y) = (left.eval(letter_value)?, right.eval(letter_value)?);
                match op {
                    '+' => Some(x + y),
                    '-' => Some(x - y),
                    '*' => Some(x * y),
                    _ => (y != 0.0).then(|| x / y),
                }
            }
        }
    }
}

/// Parses `expression` by recursive descent: sum := product (('+'|'-') product)*,
/// product := factor (('*'|'/') factor)*, factor := letter | number | '-' factor | '(' sum ')'.
pub(crate) fn parse_formula(expression: &str, n_events: usize) -> Result<Expr, QueryError> {
    let tokens: Vec<char> = expression.chars().filter(|c| !c.is_whitespace()).collect();
    let mut parser = Parser { tokens, position: 0, n_events };
    let expr = parser.sum()?;
    if parser.position != parser.tokens.len() {
        return Err(bad(format!("unexpected {:?} in formula {expression:?}", parser.tokens[parser.position])));
    }
    Ok(expr)
}

struct Parser {
    tokens: Vec<char>,
    position: usize,
    n_events: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.tokens.get(self.position).copied()
    }

    fn sum(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.product()?;
        while let Some(op @ ('+' | '-')) = self.peek() {
            self.position += 1;
            left = Expr::Binary(op, Box::new(left), Box::new(self.product()?));
        }
        Ok(left)
    }

    fn product(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.factor()?;
        while let Some(op @ ('*' | '/')) = self.peek() {
            self.position += 1;
            left = Expr::Binary(op, Box::new(left), Box::new(self.factor()?));
        }
        Ok(left)
    }

    fn factor(&mut self) -> Result<Expr, QueryError> {
        let Some(token) = self.peek() else { return Err(bad("formula ends early")) };
        self.position += 1;
        match token {
            'A'..='Z' => {
                let index = token as usize - 'A' as usize;
                if index >= self.n_events {
                    return Err(bad(format!("formula letter {token} names no event")));
                }
                Ok(Expr::Letter(index))
            }
            '-' => Ok(Expr::Negate(Box::new(self.factor()?))),
            '(' => {
                let inner = self.sum()?;
                if self.peek() != Some(')') {
                    return Err(bad("formula misses a closing parenthesis"));
                }
                self.position += 1;
                Ok(inner)
            }
            '0'..='9' | '.' => {
                let start = self.position - 1;
                while matches!(self.peek(), Some('0'..='9' | '.')) {
                    self.position += 1;
                }
                let text: String = self.tokens[start..self.position].iter().collect();
                text.parse().map(Expr::Number).map_err(|_| bad(format!("bad number {text:?} in formula")))
            }
            other => Err(bad(format!("unexpected {other:?} in formula"))),
        }
    }
}
