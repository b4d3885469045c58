"""Hearth's reports against DuckDB SQL on the `hearth gen` data set.

Why: docs/reports.md promises that every report follows written counting rules; reports_sql.py
restates those rules as SQL over a flat table of the same events. Here one data set
(`hearth gen --events 200000`, 90 days from Monday 2025-01-06) goes both into a Hearth project,
with `hearth import` before the server starts, and into DuckDB; each report spec is POSTed to
`/api/v1/query` and its JSON must equal DuckDB's answer exactly (numbers compare by value, so
Hearth's floats equal DuckDB's integers). A failure names the first differing point.

The specs are the six reports of scripts/bench-reports.sh (bench_reports.BENCH_SPECS), the
examples of docs/reports.md on this data set's dates, and variants (weekly and monthly buckets, a week starting before `from`,
breakdowns with and without `limit` and with a `null` segment, each kind of string filter,
funnel entry `first` and `any`, retention `on` and `on_or_after`, returns as `$any`). When
`hearth project set` has `--timezone`, a second project in Europe/Berlin runs the specs that
cross the DST change of 2025-03-30 as well.

HEARTH_REPORTS_EVENTS changes the data set's size.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

import reports_sql
from bench_reports import BENCH_SPECS, WHOLE
from hearth_harness import HEARTH_BIN, REPO_ROOT, Hearth, basic_auth, servers_of_current_test

duckdb = pytest.importorskip("duckdb")

EVENTS = int(os.environ.get("HEARTH_REPORTS_EVENTS", "200000"))
PROJECT = "reports"
BERLIN = "Europe/Berlin"

VARIANT_SPECS = {
    # docs/reports.md's examples, on this data set's dates.
    "doc_insights": {"report": "insights", "from": "2025-02-01", "to": "2025-03-31",
                     "interval": "day", "events": [{"event": "API Request", "measure": "total"}],
                     "breakdown": "mp_country_code", "limit": 10},
    "doc_funnel": {"report": "funnel", "from": "2025-01-06", "to": "2025-03-15",
                   "steps": [{"event": "Sign Up"}, {"event": "Create API Key"},
                             {"event": "API Request"}],
                   "window": "14d", "entry": "first", "counting": "uniques"},
    "doc_retention": {"report": "retention", "from": "2025-01-13", "to": "2025-03-09",
                      "born": {"event": "Sign Up"}, "return": {"event": "API Request"},
                      "unit": "week", "periods": 9, "mode": "on", "retention": "first_time"},
    # A week bucket that starts before `from` (2025-01-08 is a Wednesday).
    "uniques_by_week_midweek": {"report": "insights", "from": "2025-01-08", "to": "2025-03-26",
                                "interval": "week",
                                "events": [{"event": "Create API Key", "measure": "uniques"}]},
    # Anonymous page views have no plan: a `null` segment.
    "monthly_by_plan": {"report": "insights", **WHOLE, "interval": "month",
                        "events": [{"event": "Page View", "measure": "total"},
                                   {"event": "Page View", "measure": "uniques"}],
                        "breakdown": "plan"},
    "any_by_referrer_limit": {"report": "insights", "from": "2025-02-10", "to": "2025-02-23",
                              "interval": "day", "events": [{"event": "$any", "measure": "uniques"}],
                              "breakdown": {"property": "$referring_domain"}, "limit": 4},
    "filters": {"report": "insights", "from": "2025-03-01", "to": "2025-03-31", "interval": "week",
                "events": [
                    {"event": "API Request", "measure": "total",
                     "where": [{"property": "mp_country_code", "op": "in", "value": ["US", "DE"]}]},
                    {"event": "Page View", "measure": "uniques",
                     "where": [{"property": "$referring_domain", "op": "neq", "value": "google.com"}]},
                    {"event": "$any", "measure": "total",
                     "where": [{"property": "$device_id", "op": "set"}]},
                    {"event": "$any", "measure": "uniques",
                     "where": [{"property": "plan", "op": "not_in", "value": ["free"]},
                               {"property": "company_id", "op": "not_set"}]},
                ],
                "where": [{"any": [{"property": "$os", "op": "contains", "value": "Mac"},
                                   {"property": "$browser", "op": "eq", "value": "Firefox"}]},
                          {"property": "$browser", "op": "not_contains", "value": "Edge"}]},
    "hourly": {"report": "insights", "from": "2025-03-29", "to": "2025-03-31", "interval": "hour",
               "events": [{"event": "$any", "measure": "total"}]},
    "funnel_any_short": {"report": "funnel", "from": "2025-02-01", "to": "2025-02-28",
                         "steps": [{"event": "Page View"}, {"event": "Sign Up"},
                                   {"event": "Create API Key"}],
                         "window": "1d", "entry": "any"},
    "funnel_first_2h_where": {"report": "funnel", **WHOLE, "window": "2h",
                              "steps": [{"event": "Sign Up", "where": [
                                  {"property": "signup_method", "op": "eq", "value": "github"}]},
                                        {"event": "Create API Key"}, {"event": "API Request"}],
                              "where": [{"property": "$os", "op": "neq", "value": "Linux"}]},
    "retention_daily_on_or_after": {"report": "retention", "from": "2025-02-01", "to": "2025-02-28",
                                    "born": {"event": "Sign Up"}, "return": {"event": "API Request"},
                                    "unit": "day", "periods": 14, "mode": "on_or_after"},
    # Returns are any event, so the birth event itself must be left out.
    "retention_monthly_any": {"report": "retention", **WHOLE, "born": {"event": "Sign Up"},
                              "return": {"event": "$any"}, "unit": "month", "periods": 3,
                              "mode": "on"},
}

# Specs that also run in Europe/Berlin (2025-03-30 is a DST change).
BERLIN_SPECS = ("country_by_day", "weekly_uniques", "funnel_4_any", "retention_weekly",
                "hourly", "monthly_by_plan", "doc_retention")

ALL_SPECS = {**BENCH_SPECS, **VARIANT_SPECS}


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    result = subprocess.run([HEARTH_BIN, *args], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"hearth {' '.join(args)} failed ({result.returncode}): {result.stderr}"
    return result


def cli_has_timezone() -> bool:
    result = subprocess.run([HEARTH_BIN, "project", "set", "--help"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60)
    return "--timezone" in result.stdout


def project_secret(stdout: str) -> str:
    lines = [line for line in stdout.splitlines() if line.strip()]
    return json.loads(lines[-1])["secret"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("reports-data") / "events.jsonl"
    run_cli("gen", "--events", str(EVENTS), "--out", str(path))
    return path


@pytest.fixture(scope="module")
def duck(dataset):
    con = duckdb.connect()
    reports_sql.load_jsonl_duckdb(con, str(dataset))
    for sql in reports_sql.derived_tables_sql("duckdb"):
        con.execute(sql)
    yield con
    con.close()


@pytest.fixture(scope="module")
def server(dataset, tmp_path_factory):
    """One server for the module: project `reports` (UTC) and, when the CLI can set a time zone,
    `reports_berlin`, both loaded with `hearth import` before `hearth serve` starts."""
    hearth = Hearth(tmp_path_factory.mktemp("reports-server"), name=PROJECT)
    data = str(hearth.data_dir)
    secrets = {"UTC": hearth.secret}
    run_cli("import", "--data", data, "--project", PROJECT, str(dataset))
    if cli_has_timezone():
        name = PROJECT + "_berlin"
        created = run_cli("project", "create", name, "--data", data, "--json")
        run_cli("project", "set", name, "--data", data, "--timezone", BERLIN)
        run_cli("import", "--data", data, "--project", name, str(dataset))
        secrets[BERLIN] = project_secret(created.stdout)
    hearth.start()
    yield hearth, secrets
    hearth.kill()


@pytest.fixture
def hearth_server(server):
    if server[0] not in servers_of_current_test:
        servers_of_current_test.append(server[0])  # its log tail goes with a failure
    return server


def query(hearth: Hearth, secret: str, spec: dict) -> dict:
    response = hearth.request("POST", "/api/v1/query", body=json.dumps(spec),
                              headers={"Content-Type": "application/json"},
                              auth=basic_auth(secret), timeout=120)
    assert response.status == 200, f"POST /api/v1/query {json.dumps(spec)}: {response}"
    return response.json()


def describe_mismatch(spec: dict, expected: dict, actual: dict) -> str:
    text = json.dumps(actual)
    return "\n".join([
        f"spec: {json.dumps(spec)}",
        reports_sql.describe_difference(expected, actual, ("DuckDB", "Hearth")),
        f"Hearth answered ({len(text)} chars): {text[:2000]}",
    ])


def check(hearth_server, duck, spec_id: str, tz: str) -> None:
    hearth, secrets = hearth_server
    if tz not in secrets:
        pytest.skip("`hearth project set` has no --timezone")
    spec = ALL_SPECS[spec_id]
    expected = reports_sql.run_report(duck, spec, tz, "duckdb")
    actual = query(hearth, secrets[tz], spec)
    assert actual == expected, describe_mismatch(spec, expected, actual)


@pytest.mark.parametrize("spec_id", list(ALL_SPECS))
def test_report_matches_duckdb(hearth_server, duck, spec_id):
    check(hearth_server, duck, spec_id, "UTC")


@pytest.mark.parametrize("spec_id", BERLIN_SPECS)
def test_report_matches_duckdb_berlin(hearth_server, duck, spec_id):
    check(hearth_server, duck, spec_id, BERLIN)


# The README's way to read a project's parts in DuckDB: a distinct id left out of a part comes
# back from `$user_id`, else `$device:` and `$device_id` (docs/formats.md, format 3); insert ids
# are decoded as docs/formats.md spells it out (a 32-hex id is stored as its 16 bytes, except the
# 1 in 256 whose first byte would be 0x00, kept as text).
README_DISTINCT_ID = """coalesce(distinct_id, "properties.$user_id", '$device:' || "properties.$device_id")"""
README_INSERT_ID = """CASE WHEN octet_length(insert_id) = 16 THEN lower(hex(insert_id))
  WHEN octet_length(insert_id) = 17 AND left(hex(insert_id), 2) = '01' THEN lower(regexp_replace(substr(hex(insert_id), 3), '^(.{8})(.{4})(.{4})(.{4})(.{12})$', '\\1-\\2-\\3-\\4-\\5'))
  WHEN left(hex(insert_id), 2) = '00' THEN decode(unhex(substr(hex(insert_id), 3)))
  ELSE decode(insert_id) END"""


def test_parts_read_in_duckdb_as_the_readme_shows_give_every_event_back(hearth_server, duck):
    hearth, _ = hearth_server
    parts = str(hearth.data_dir / "parts" / "p1" / "*" / "*.parquet")
    con = duckdb.connect()
    con.execute(f"""CREATE TABLE stored AS SELECT DISTINCT event, {README_DISTINCT_ID} AS distinct_id,
                    epoch_ms("time") AS time_ms, {README_INSERT_ID} AS insert_id
                    FROM read_parquet('{parts}', union_by_name = true)""")
    elided = con.execute(f"SELECT count(*) FROM read_parquet('{parts}', union_by_name = true) "
                         "WHERE distinct_id IS NULL").fetchone()[0]
    assert elided > 0, "the parts store every distinct id: format 3 leaves derivable ones out"
    sent = duck.execute("SELECT DISTINCT event, distinct_id, time_ms, insert_id FROM events").fetchall()
    stored = con.execute("SELECT event, distinct_id, time_ms, insert_id FROM stored").fetchall()
    assert len(stored) == len(sent)
    missing = set(sent) - set(stored)
    assert not missing, f"{len(missing)} events differ, e.g. {sorted(missing)[:3]}"
