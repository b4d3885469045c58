#!/usr/bin/env bash
# Dashboard benchmark: `hearth gen --events N` (default 10,000,000, 90 days) into a fresh data
# directory, `hearth serve` (release), then tests/e2e/node/bench_dashboard.mjs times, in
# Chromium, each report from the URL's change to its table on the page. DuckDB answers the first
# report (events per day) on the same generated events in the same run, for the ratio.
# Usage: scripts/bench-dashboard.sh [EVENTS]
set -euo pipefail
repo_root="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd -- "$repo_root"
events="${1:-10000000}"
flock /tmp/hearth-cargo.lock cargo build --locked --release --bin hearth
hearth="$repo_root/target/release/hearth"
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; rm -rf -- "$work"' EXIT
data="$work/data"
"$hearth" project create bench --data "$data" --json > /dev/null
start=$(date +%s.%N)
"$hearth" gen --events "$events" --project bench --data "$data" 2>/dev/null
echo "hearth gen --events $events into the store: $(echo "$(date +%s.%N) - $start" | bc) s"
port=18941
HEARTH_LOG=warn HEARTH_AUTH__ORIGIN="http://localhost:$port" "$hearth" serve --data "$data" --listen "127.0.0.1:$port" & server=$!
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/readyz" > /dev/null && break; sleep 0.2; done
(cd tests/e2e/node && node bench_dashboard.mjs --url "http://localhost:$port" --data "$data" --bin "$hearth" --from 2025-01-06 --to 2025-04-05 --runs 5)
rss_kb="$(awk '/VmHWM/ {print $2}' "/proc/$server/status")"
echo "server peak RSS: $((rss_kb / 1024)) MB"
kill "$server"; wait "$server" 2>/dev/null || true

# DuckDB, the same events, the same question (events per day), 2 threads as this machine has.
"$hearth" gen --events "$events" --out "$work/events.jsonl" 2>/dev/null
.test-deps/venv/bin/python - "$work/events.jsonl" <<'PY'
import statistics, sys, time
import duckdb
con = duckdb.connect()
con.execute("SET threads=2")
con.execute(f"CREATE TABLE ev AS SELECT event, CAST(properties->>'time' AS BIGINT) AS t FROM read_json_auto('{sys.argv[1]}', format='newline_delimited')")
# `time` is in milliseconds; days are UTC (the project's default time zone), bucketed with
# integer division, the cheapest way to ask DuckDB.
sql = "SELECT t // 86400000 AS day, COUNT(*) FROM ev WHERE t >= epoch_ms(TIMESTAMP '2025-01-06') AND t < epoch_ms(TIMESTAMP '2025-04-06') GROUP BY 1 ORDER BY 1"
con.execute(sql).fetchall()
times = []
for _ in range(5):
    start = time.perf_counter(); rows = con.execute(sql).fetchall(); times.append((time.perf_counter() - start) * 1000)
print(f"DuckDB (table loaded, 2 threads), events per day over {sum(r[1] for r in rows):,} events: median {statistics.median(times):.0f} ms (the API's time for the same report is above)")
PY
