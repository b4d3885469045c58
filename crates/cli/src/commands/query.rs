//! `hearth query`: runs a report spec against a data directory and prints the
//! same JSON as `POST /api/v1/query`, or a table or CSV of it.

use crate::args::QueryArgs;
use crate::commands::{data_dir, open_project};
use crate::config::Config;
use anyhow::Context;
use query::result::{FunnelStep, ReportResult};
use std::io::Read;
use std::sync::Arc;

pub(crate) fn run(config: &Config, args: QueryArgs) -> anyhow::Result<()> {
    let text = if args.spec.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        text
    } else {
        std::fs::read_to_string(&args.spec).with_context(|| format!("reading {}", args.spec.display()))?
    };
    let spec: query::Spec = serde_json::from_str(&text).map_err(|error| anyhow::anyhow!("{}: invalid report spec: {error}", args.spec.display()))?;
    let data = data_dir(config, &args.data);
    let (meta, project) = open_project(config, &data, &args.project)?;
    let meta = Arc::new(meta);
    let result = match config.storage.clickhouse()? {
        // Events in ClickHouse: the report runs there, as the server runs it
        // (profile searches read only the metadata, through the engine).
        Some(settings) if !matches!(spec, query::Spec::Profiles(_)) => {
            let client = crate::config::connect_clickhouse(&settings)?;
            query::ReportBackend::run(&clickhouse_store::reports::ClickHouseReports::new(client, meta), &project, &spec)
        }
        _ => {
            let store = Arc::new(crate::commands::open_store(&data, config.store_config(), &meta)?);
            let engine = query::Engine::new(store.clone(), meta);
            let result = engine.run(&project, &spec);
            drop(engine);
            if let Ok(store) = Arc::try_unwrap(store) {
                store.close()?;
            }
            result
        }
    };
    let result = result.map_err(|error| anyhow::anyhow!("{error}"))?;
    let rows = match args.format.as_str() {
        "json" => {
            println!("{}", serde_json::to_string(&result)?);
            return Ok(());
        }
        _ => to_rows(&result),
    };
    if args.format == "csv" {
        for row in rows {
            println!("{}", row.iter().map(|cell| csv_cell(cell)).collect::<Vec<_>>().join(","));
        }
    } else {
        print_table(&rows);
    }
    Ok(())
}

fn number(value: Option<f64>) -> String {
    match value {
        None => String::new(),
        Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{}", x as i64),
        Some(x) => format!("{x:.4}"),
    }
}

fn segment_text(segment: &Option<serde_json::Value>) -> String {
    match segment {
        None => String::new(),
        Some(serde_json::Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

/// The result as a header row and data rows.
fn to_rows(result: &ReportResult) -> Vec<Vec<String>> {
    let funnel_rows = |segment: Option<String>, steps: &[FunnelStep], rows: &mut Vec<Vec<String>>| {
        for (i, step) in steps.iter().enumerate() {
            let mut row = Vec::new();
            if let Some(segment) = &segment {
                row.push(segment.clone());
            }
            row.extend([
                (i + 1).to_string(),
                step.event.clone(),
                step.count.to_string(),
                format!("{:.4}", step.conversion_from_previous),
                format!("{:.4}", step.conversion_from_start),
                number(step.median_time_from_previous_ms),
                number(step.avg_time_from_previous_ms),
            ]);
            rows.push(row);
        }
    };
    let funnel_header = ["step", "event", "count", "from_previous", "from_start", "median_ms", "avg_ms"].map(str::to_owned);
    match result {
        ReportResult::Insights(insights) => {
            let labels: Vec<String> = insights.series.first().map(|s| s.points.keys().cloned().collect()).unwrap_or_default();
            let mut rows = vec![["event", "measure", "segment"].iter().map(|s| s.to_string()).chain(labels.iter().cloned()).collect()];
            for series in &insights.series {
                let mut row = vec![series.event.clone(), series.measure.clone(), segment_text(&series.segment)];
                row.extend(labels.iter().map(|label| number(series.points.get(label).copied().flatten())));
                rows.push(row);
            }
            for formula in &insights.formulas {
                let mut row = vec![formula.name.clone(), formula.expression.clone(), segment_text(&formula.segment)];
                row.extend(labels.iter().map(|label| number(formula.points.get(label).copied().flatten())));
                rows.push(row);
            }
            rows
        }
        ReportResult::Funnel(funnel) => match &funnel.segments {
            None => {
                let mut rows = vec![funnel_header.to_vec()];
                funnel_rows(None, &funnel.steps, &mut rows);
                rows
            }
            Some(segments) => {
                let mut rows = vec![std::iter::once("segment".to_owned()).chain(funnel_header.iter().cloned()).collect()];
                for segment in segments {
                    funnel_rows(Some(segment_text(&Some(segment.segment.clone()))), &segment.steps, &mut rows);
                }
                rows
            }
        },
        ReportResult::Retention(retention) => {
            let periods = retention.cohorts.first().map_or(0, |c| c.counts.len());
            let mut rows = vec![["cohort", "size"].iter().map(|s| s.to_string()).chain((0..periods).map(|k| k.to_string())).collect()];
            for cohort in &retention.cohorts {
                rows.push([cohort.start.clone(), cohort.size.to_string()].into_iter().chain(cohort.counts.iter().map(u64::to_string)).collect());
            }
            rows
        }
        ReportResult::Flows(flows) => {
            let mut rows = vec![vec!["count".to_owned(), "path".to_owned()]];
            rows.extend(flows.paths.iter().map(|p| vec![p.count.to_string(), p.events.join(" > ")]));
            rows
        }
        ReportResult::Members(members) => {
            let mut rows = vec![vec!["distinct_id".to_owned()]];
            rows.extend(members.members.iter().map(|m| vec![m.clone()]));
            rows
        }
        ReportResult::Profiles(profiles) => {
            let mut rows = vec![vec!["distinct_id".to_owned(), "properties".to_owned()]];
            rows.extend(profiles.profiles.iter().map(|p| vec![p.distinct_id.clone(), serde_json::Value::Object(p.properties.clone()).to_string()]));
            rows
        }
        ReportResult::Activity(activity) => {
            let mut rows = vec![vec!["event".to_owned()]];
            rows.extend(activity.events.iter().map(|e| vec![e.to_string()]));
            rows
        }
    }
}

fn csv_cell(cell: &str) -> String {
    if cell.contains([',', '"', '\n', '\r']) { format!("\"{}\"", cell.replace('"', "\"\"")) } else { cell.to_owned() }
}

fn print_table(rows: &[Vec<String>]) {
    let n_columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n_columns).map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0)).collect();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                let numeric = cell.parse::<f64>().is_ok();
                if numeric { format!("{cell:>width$}", width = widths[c]) } else { format!("{cell:<width$}", width = widths[c]) }
            })
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
}
