#!/usr/bin/env bash
# Benchmarks that print figures. Builds release binaries, makes sure DuckDB
# (PyPI) is in the project's venv, then runs `hearth-bench ingest` with any
# extra arguments (e.g. --events 1000000 for a quick run).
set -euo pipefail
repo_root="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd -- "$repo_root"
venv=.test-deps/venv
[[ -x $venv/bin/python ]] || python3 -m venv "$venv"
"$venv/bin/python" -c 'import duckdb' 2>/dev/null || "$venv/bin/pip" install -q -r tests/e2e/python/requirements.txt
cargo build --locked --release --bin hearth --bin hearth-bench
exec target/release/hearth-bench "${1:-ingest}" "${@:2}"
