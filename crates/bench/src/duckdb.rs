//! The peer: DuckDB (PyPI `duckdb`) writes the same events, flattened to one
//! column per property as Hearth stores them, as zstd Parquet.

use anyhow::{bail, Context};
use std::path::Path;
use std::process::Command;

pub(crate) struct DuckResult {
    pub(crate) rows: u64,
    pub(crate) bytes: u64,
}

const SCRIPT: &str = r#"
import sys, os, duckdb
src, dst = sys.argv[1], sys.argv[2]
con = duckdb.connect()
con.execute("SET threads TO 2")
con.execute("SET enable_progress_bar = false")
con.execute(f"""COPY (SELECT event, unnest(properties) FROM read_json('{src}', format='newline_delimited', sample_size=-1))
               TO '{dst}' (FORMAT parquet, COMPRESSION zstd)""")
rows = con.execute(f"SELECT count(*) FROM read_parquet('{dst}')").fetchone()[0]
print(rows, os.path.getsize(dst))
"#;

/// Bytes per event of each column (compressed column chunks), Hearth's parts
/// beside DuckDB's file, largest first: where the difference lies. Hearth's
/// `properties.X` is DuckDB's `X`, `insert_id` its `$insert_id`.
const COLUMNS_SCRIPT: &str = r#"
import sys, glob, duckdb
parts_dir, duck_file, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
con = duckdb.connect()
def sizes(files):
    rows = con.execute("SELECT path_in_schema, sum(total_compressed_size) FROM parquet_metadata(?) GROUP BY 1", [files]).fetchall()
    return {name: size / n for name, size in rows}
parts = sorted(glob.glob(parts_dir + "/**/*.parquet", recursive=True))
hearth = sizes(parts) if parts else {}
duck = sizes([duck_file])
def duck_name(name):
    if name == "insert_id":
        return "$insert_id"
    return name[len("properties."):] if name.startswith("properties.") else name
names = sorted(set(hearth) | {n for n in duck if n not in {duck_name(h) for h in hearth}}, key=lambda c: -max(hearth.get(c, 0), duck.get(duck_name(c), 0)))
print(f"{'column (bytes/event, compressed chunks)':<44} {'Hearth':>12} {'DuckDB':>14}")
for name in names[:16]:
    h, d = hearth.get(name), duck.get(duck_name(name))
    fmt = lambda v: f"{v:.2f}" if v is not None else "-"
    print(f"{name:<44} {fmt(h):>12} {fmt(d):>14}")
"#;

/// Prints [`COLUMNS_SCRIPT`]'s table for the parts under `parts_dir`.
pub(crate) fn print_column_bytes(python: &Path, parts_dir: &Path, duck_file: &Path, n_events: u64) -> anyhow::Result<()> {
    let output = Command::new(python).arg("-c").arg(COLUMNS_SCRIPT).arg(parts_dir).arg(duck_file).arg(n_events.to_string()).output()?;
    if !output.status.success() {
        bail!("duckdb failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    print!("{}", String::from_utf8_lossy(&output.stdout));
    Ok(())
}

pub(crate) fn parquet_bytes(python: &Path, jsonl: &Path, parquet: &Path) -> anyhow::Result<DuckResult> {
    let output = Command::new(python)
        .arg("-c")
        .arg(SCRIPT)
        .arg(jsonl)
        .arg(parquet)
        .output()
        .with_context(|| format!("running {} (install duckdb: scripts/bench.sh does)", python.display()))?;
    if !output.status.success() {
        bail!("duckdb failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut fields = text.lines().last().unwrap_or_default().split_whitespace();
    let rows = fields.next().and_then(|f| f.parse().ok()).unwrap_or(0);
    let bytes = fields.next().and_then(|f| f.parse().ok()).unwrap_or(0);
    Ok(DuckResult { rows, bytes })
}
