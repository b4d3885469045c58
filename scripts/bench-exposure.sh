#!/usr/bin/env bash
# The exposure report's running time: a key exports every row of a
# generated data set (default 1,000,000 events, about 50,000 people) through
# the API, so the audit holds a million returned rows; then
# `hearth incident report` for that key and a week's window is timed.
# Usage: scripts/bench-exposure.sh [EVENTS]
set -euo pipefail
repo_root="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd -- "$repo_root"
events="${1:-1000000}"
cargo build --locked --release --bin hearth
hearth="$repo_root/target/release/hearth"
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
data="$work/data"
"$hearth" project create bench --data "$data" --json > /dev/null
"$hearth" gen --events "$events" --project bench --data "$data" 2>/dev/null
"$hearth" service-account create exporter --data "$data" > /dev/null
key_json="$("$hearth" api-key create --account exporter --scope read,export --project bench --json --data "$data")"
key="$(printf '%s' "$key_json" | sed -E 's/.*"key":"([^"]+)".*/\1/')"
id="$(printf '%s' "$key_json" | sed -E 's/.*"id":([0-9]+).*/\1/')"
port=18931
HEARTH_LOG=warn "$hearth" serve --data "$data" --listen "127.0.0.1:$port" & server=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" > /dev/null && break; sleep 0.1; done
start=$(date +%s.%N)
rows="$(curl -sf -u "$key:" "http://127.0.0.1:$port/api/2.0/export?from_date=2000-01-01&to_date=2100-01-01" | wc -l)"
end=$(date +%s.%N)
echo "exported $rows rows with key $id in $(echo "$end - $start" | bc) s (one audit entry with their user-key bitmap)"
kill "$server"; wait "$server" 2>/dev/null || true
from="$(date -u -d '-6 days' +%Y-%m-%d)"; to="$(date -u -d '+1 day' +%Y-%m-%d)"
start=$(date +%s.%N)
"$hearth" incident report --data "$data" --from "$from" --to "$to" --key "$id" --out "$work/report"
end=$(date +%s.%N)
echo "hearth incident report, a week's window, $rows audited rows returned: $(echo "$end - $start" | bc) s wall clock (store opened, user keys resolved, files written)"
echo "people in the report: $(($(wc -l < "$work/report/people.csv") - 1))"
