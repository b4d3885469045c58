//! Splitting a per-unit pass over the machine's cores: units are cut into
//! chunks of about equal row counts, each worker thread folds the chunks it
//! takes into its own accumulator, and the caller merges the accumulators.
//! Units never straddle chunks, so per-unit state needs no locking.

use crate::table::Table;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Rows below which one thread does the work.
const SMALL: usize = 50_000;

pub(crate) fn threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(8)
}

/// Runs `work` over all units; returns one accumulator per worker.
pub(crate) fn over_units<A: Send>(table: &Table, make: impl Fn() -> A + Sync, work: impl Fn(&mut A, Range<usize>) + Sync) -> Vec<A> {
    let n_units = table.n_units();
    let n_threads = if table.n_rows() < SMALL { 1 } else { threads() };
    if n_threads == 1 {
        let mut acc = make();
        work(&mut acc, 0..n_units);
        return vec![acc];
    }
    let n_chunks = n_threads * 8;
    let per_chunk = table.n_rows().div_ceil(n_chunks).max(1);
    let mut chunks: Vec<Range<usize>> = Vec::with_capacity(n_chunks + 1);
    let mut start = 0usize;
    while start < n_units {
        let target = table.offsets[start] as usize + per_chunk;
        let end = table.offsets.partition_point(|o| (*o as usize) < target).clamp(start + 1, n_units);
        chunks.push(start..end);
        start = end;
    }
    run_chunks(&chunks, n_threads, make, work)
}

/// Hands `chunks` to `n_threads` workers, each folding into its own accumulator.
fn run_chunks<A: Send>(chunks: &[Range<usize>], n_threads: usize, make: impl Fn() -> A + Sync, work: impl Fn(&mut A, Range<usize>) + Sync) -> Vec<A> {
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n_threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut acc = make();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(chunk) = chunks.get(i) else { break };
                        work(&mut acc, chunk.clone());
                    }
                    acc
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    })
}

/// Runs `work` over all rows in table order, for passes that need no unit
/// (event counts and property values); returns one accumulator per worker.
pub(crate) fn over_rows<A: Send>(n_rows: usize, make: impl Fn() -> A + Sync, work: impl Fn(&mut A, Range<usize>) + Sync) -> Vec<A> {
    let n_threads = if n_rows < SMALL { 1 } else { threads() };
    let per_chunk = n_rows.div_ceil(n_threads * 8).max(1);
    let chunks: Vec<Range<usize>> = (0..n_rows).step_by(per_chunk).map(|start| start..(start + per_chunk).min(n_rows)).collect();
    if n_threads == 1 {
        let mut acc = make();
        for chunk in chunks {
            work(&mut acc, chunk);
        }
        return vec![acc];
    }
    run_chunks(&chunks, n_threads, make, work)
}

/// Linear interpolation between the two nearest ranks (DuckDB's quantile_cont).
/// Selects rather than sorts: linear time.
pub(crate) fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let position = q * (values.len() - 1) as f64;
    let lower = position.floor() as usize;
    let fraction = position - lower as f64;
    let (_, low, above) = values.select_nth_unstable_by(lower, |a, b| a.total_cmp(b));
    let low = *low;
    if fraction == 0.0 || above.is_empty() {
        return Some(low);
    }
    let high = above.iter().copied().fold(f64::INFINITY, f64::min);
    Some(low + (high - low) * fraction)
}
