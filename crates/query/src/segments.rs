//! Breakdowns: which segment(s) a row falls in. Decided once per distinct
//! value (a segment id per dictionary code), like filters.

use crate::context::Context;
use crate::error::QueryError;
use crate::spec::{Breakdown, Source};
use crate::value::{number_json, Column, Value, MISSING};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::sync::Arc;

/// The label of the segment that gathers those a `limit` leaves out.
pub(crate) const OTHER: &str = "$other";

pub(crate) struct Segmenter {
    /// The label of each segment; `Json::Null` is "not set".
    pub(crate) labels: Vec<Json>,
    kind: Kind,
}

enum Kind {
    None,
    Column { column: Arc<Column>, by_unit: bool, segment_of: Vec<u32>, missing: u32 },
    /// One list of segments per unit (a person may be in several cohorts).
    Units(Vec<Vec<u32>>),
}

impl Segmenter {
    pub(crate) fn none() -> Segmenter {
        Segmenter { labels: vec![Json::Null], kind: Kind::None }
    }

    pub(crate) fn new(context: &Context<'_>, breakdown: Option<&Breakdown>) -> Result<Segmenter, QueryError> {
        let (property, source, buckets) = match breakdown {
            None => return Ok(Segmenter::none()),
            Some(Breakdown::Name(name)) => (name.as_str(), Source::Event, None),
            Some(Breakdown::Property { property, source, buckets }) => (property.as_str(), *source, buckets.as_deref()),
            Some(Breakdown::Cohorts { cohort }) => {
                let mut per_unit = vec![Vec::new(); context.table.n_units()];
                let mut labels = Vec::new();
                for (segment, id) in cohort.iter().enumerate() {
                    let members = context.cohort_members(*id)?;
                    labels.push(Json::from(*id));
                    for (unit, member) in members.iter().enumerate() {
                        if *member {
                            per_unit[unit].push(segment as u32);
                        }
                    }
                }
                return Ok(Segmenter { labels, kind: Kind::Units(per_unit) });
            }
        };
        if let Some(edges) = buckets
            && (edges.is_empty() || edges.windows(2).any(|w| w[0] >= w[1]) || edges.iter().any(|e| !e.is_finite())) {
                return Err(QueryError::bad("breakdown buckets must be increasing finite numbers"));
            }
        let (column, by_unit) = match source {
            Source::Event => (context.table.column(property)?, false),
            Source::Profile => (context.profile_column(property)?, true),
        };
        let mut labels: Vec<Json> = Vec::new();
        let mut index: HashMap<String, u32> = HashMap::new();
        let mut segment_for = |label: Json| -> u32 {
            let key = label.to_string();
            *index.entry(key).or_insert_with(|| {
                labels.push(label);
                (labels.len() - 1) as u32
            })
        };
        let segment_of: Vec<u32> = column
            .dictionary
            .values
            .iter()
            .map(|value| match (value, buckets) {
                (Value::Num(number), Some(edges)) => segment_for(Json::from(bucket_label(*number, edges))),
                _ => segment_for(value.to_json()),
            })
            .collect();
        let missing = segment_for(Json::Null);
        Ok(Segmenter { labels, kind: Kind::Column { column, by_unit, segment_of, missing } })
    }

    /// The same breakdown with the segments in `fold` folded into one,
    /// `"$other"` (after those in `keep`); any other segment goes to a last
    /// one that nothing reads.
    pub(crate) fn with_other(&self, keep: &[u32], fold: &[u32]) -> Segmenter {
        let other = keep.len() as u32;
        let mut map = vec![other + 1; self.labels.len()];
        for segment in fold {
            map[*segment as usize] = other;
        }
        for (new, old) in keep.iter().enumerate() {
            map[*old as usize] = new as u32;
        }
        let mut labels: Vec<Json> = keep.iter().map(|s| self.labels[*s as usize].clone()).collect();
        labels.push(Json::from(OTHER));
        labels.push(Json::Null);
        let kind = match &self.kind {
            Kind::None => Kind::None,
            Kind::Column { column, by_unit, segment_of, missing } => Kind::Column {
                column: column.clone(),
                by_unit: *by_unit,
                segment_of: segment_of.iter().map(|s| map[*s as usize]).collect(),
                missing: map[*missing as usize],
            },
            Kind::Units(per_unit) => Kind::Units(
                per_unit
                    .iter()
                    .map(|list| {
                        let mut mapped: Vec<u32> = list.iter().map(|s| map[*s as usize]).collect();
                        mapped.sort_unstable();
                        mapped.dedup();
                        mapped
                    })
                    .collect(),
            ),
        };
        Segmenter { labels, kind }
    }

    /// For a breakdown by an event property: the column's codes, the segment
    /// of each code and the segment of "not set"; `Some(None)` without a
    /// breakdown; `None` when the segment depends on the unit.
    #[allow(clippy::type_complexity)]
    pub(crate) fn by_row(&self) -> Option<Option<(&crate::value::Codes, &[u32], u32)>> {
        match &self.kind {
            Kind::None => Some(None),
            Kind::Column { column, by_unit: false, segment_of, missing } => Some(Some((&column.codes, segment_of, *missing))),
            _ => None,
        }
    }

    /// Whether a row's segment depends on its unit (profile or cohort breakdowns).
    pub(crate) fn reads_units(&self) -> bool {
        match &self.kind {
            Kind::None => false,
            Kind::Column { by_unit, .. } => *by_unit,
            Kind::Units(_) => true,
        }
    }

    pub(crate) fn is_none(&self) -> bool {
        matches!(self.kind, Kind::None)
    }

    pub(crate) fn len(&self) -> usize {
        self.labels.len()
    }

    #[inline(always)]
    pub(crate) fn for_each(&self, row: usize, unit: usize, mut visit: impl FnMut(u32)) {
        match &self.kind {
            Kind::None => visit(0),
            Kind::Column { column, by_unit, segment_of, missing } => {
                let code = column.codes.get(if *by_unit { unit } else { row });
                visit(if code == MISSING { *missing } else { segment_of[code as usize] });
            }
            Kind::Units(per_unit) => per_unit[unit].iter().for_each(|s| visit(*s)),
        }
    }
}

/// `"< a"`, `"a - b"` or `">= z"` for the range of `edges` holding `number`.
fn bucket_label(number: f64, edges: &[f64]) -> String {
    let text = |x: f64| number_json(x).to_string();
    let i = edges.partition_point(|e| *e <= number);
    if i == 0 {
        format!("< {}", text(edges[0]))
    } else if i == edges.len() {
        format!(">= {}", text(edges[i - 1]))
    } else {
        format!("{} - {}", text(edges[i - 1]), text(edges[i]))
    }
}
