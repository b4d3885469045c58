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
