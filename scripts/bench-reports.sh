#!/usr/bin/env bash
# Report benchmark: Hearth's /api/v1/query against DuckDB and chdb on the same `hearth gen`
# events (tests/e2e/python/bench_reports.py says what is timed and how). Extra arguments go to
# it, e.g. `--events 1000000` for a quick run, `--runs 9`, `--chdb-python ''` to leave chdb out.
#
#   .test-deps/venv        the test venv (requirements.txt: DuckDB); runs the benchmark
#   .test-deps/bench-venv  chdb only (~0.9 GB installed, bench only, not needed by any test)
#
# cargo runs under `flock /tmp/hearth-cargo.lock`: this 2-core machine must never run two cargo
# builds at once.
set -euo pipefail
repo_root="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd -- "$repo_root"

chdb_pins=(chdb==4.4.0 chdb-core==26.9.0)
venv=.test-deps/venv
bench_venv=.test-deps/bench-venv

[[ -x $venv/bin/python ]] || python3 -m venv "$venv"
"$venv/bin/python" -c 'import duckdb' 2>/dev/null \
    || "$venv/bin/pip" install -q --disable-pip-version-check -r tests/e2e/python/requirements.txt

[[ -x $bench_venv/bin/python ]] || python3 -m venv "$bench_venv"
# chdb reads a config.xml from the current directory: look it up from an empty one.
probe_dir="$(mktemp -d)"
trap 'rm -rf -- "$probe_dir"' EXIT
if ! (cd -- "$probe_dir" && "$repo_root/$bench_venv/bin/python" -c \
        "import chdb, sys; sys.exit(chdb.__version__ != '${chdb_pins[0]#chdb==}')") 2>/dev/null; then
    echo "bench-reports: pip install ${chdb_pins[*]} into $bench_venv (about 0.5 GB download)" >&2
    "$bench_venv/bin/pip" install -q --disable-pip-version-check "${chdb_pins[@]}"
fi

flock /tmp/hearth-cargo.lock cargo build --locked --release --bin hearth

"$venv/bin/python" tests/e2e/python/bench_reports.py \
    --hearth-bin "$repo_root/target/release/hearth" \
    --chdb-python "$repo_root/$bench_venv/bin/python" "$@"
