"""Reference answers for Hearth's reports (docs/reports.md), computed as SQL in DuckDB or ClickHouse.

Why this exists: Hearth computes insights, funnels and retention with its own engine over its own
storage. To check it we compute the same reports a second, independent way: plain SQL over a flat
table of the same events, following the counting rules of docs/reports.md word by word. The test
(test_reports_duckdb.py) compares both with `==`; the benchmark (bench_reports.py) times the same
SQL in DuckDB and chdb (ClickHouse in a Python process) against Hearth.

The input is a table ``events`` (event, distinct_id, time_ms, insert_id and one VARCHAR column per
property in PROPERTY_COLUMNS); `load_jsonl_duckdb` makes it from ``hearth gen`` JSONL.
`derived_tables_sql` builds from it, once:

* ``identity``: Simplified ID Merge. Each event carrying both ``$device_id`` and ``$user_id`` links
  ``$device:<device_id>`` to the user; a device keeps its first user (by time).
* ``ev``: the events deduplicated by (distinct_id, time_ms, event, insert_id), each with its
  ``person`` (the linked user, else the distinct_id itself). ``hearth gen`` duplicates are exact
  copies, so which copy survives does not matter (the table has no arrival order to honour "the
  last copy wins").

`plan(spec, tz, dialect)` turns a report spec into SQL statements plus a `shape` function that
turns their rows into the exact JSON result of docs/reports.md; `run_report` does both.

One SQL text serves both engines wherever it can. Time zones are the main obstacle (DuckDB and
ClickHouse spell them differently), so no SQL time-zone function is used at all: Python computes
the report's UTC range bounds and the zone's UTC offsets over the span (zoneinfo), and the SQL adds
the offset with a CASE and buckets local milliseconds with integer arithmetic. ClickHouse gets its
own text only where it needs one (DDL, dedup, median) or where it has a function that states the
rule directly: ``windowFunnel(..., 'strict_increase')`` for the counts of an ``entry: "any"``
funnel, and ``retention(...)`` for ``mode: "on"`` brackets.

Not covered (NotImplementedError, or simply absent): measures other than total/uniques,
profile/cohort filters and breakdowns, numeric filters, group units, formulas, compare, funnel
totals/any-order/exclusions/hold_constant/breakdown, recurring retention, flows; identity links
other than Simplified ID Merge ($identify, $create_alias, $merge) and chains of links, which
`hearth gen` data never has.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from typing import Callable, Sequence
from zoneinfo import ZoneInfo

MS_HOUR = 3_600_000
MS_DAY = 86_400_000
EPOCH = dt.date(1970, 1, 1)
DIALECTS = ("duckdb", "clickhouse")

# The event properties the reports of the tests and the benchmark use, as VARCHAR columns.
PROPERTY_COLUMNS = (
    "$browser", "plan", "mp_country_code", "$referring_domain", "$device_id", "$user_id",
    "company_id", "signup_method", "$os",
)
# Columns of `events` besides the properties.
BASE_COLUMNS = ("event", "distinct_id", "time_ms", "insert_id")

# Statements a ClickHouse session needs before any of ours: an unmatched LEFT JOIN row must read
# NULL (not '' or 0), as in standard SQL.
SESSION_SETUP = {
    "duckdb": [],
    "clickhouse": ["SET join_use_nulls = 1", "SET output_format_json_quote_64bit_integers = 0"],
}


# -- SQL text helpers -------------------------------------------------------------------------

def ident(name: str) -> str:
    """A quoted identifier (both engines accept double quotes)."""
    return '"' + name.replace('"', '""') + '"'


def literal(value, dialect: str) -> str:
    """A string literal. The property columns hold strings only, so other values are refused."""
    if not isinstance(value, str):
        raise NotImplementedError(f"only string filter values are supported, got {value!r}")
    text = value.replace("\\", "\\\\") if dialect == "clickhouse" else value
    return "'" + text.replace("'", "''") + "'"


def as_bigint(expr: str) -> str:
    return f"CAST({expr} AS BIGINT)"


def floor_div(expr: str, divisor: int) -> str:
    """floor(expr / divisor) as an integer; `/` is float division in both engines."""
    return as_bigint(f"floor(({expr}) / {divisor})")


def median(expr: str, dialect: str) -> str:
    """Linear interpolation between the two nearest ranks (DuckDB's quantile_cont); ClickHouse's
    plain `median` is approximate, its exact R7 quantile is quantileExactInclusive."""
    if dialect == "clickhouse":
        return f"quantileExactInclusive(0.5)({expr})"
    return f"quantile_cont({expr}, 0.5)"


def check_dialect(dialect: str) -> None:
    if dialect not in DIALECTS:
        raise ValueError(f"dialect must be one of {DIALECTS}, got {dialect!r}")


# -- loading and derived tables ---------------------------------------------------------------

def load_jsonl_duckdb(con, paths: str | Sequence[str], table: str = "events") -> None:
    """Flattens Mixpanel import JSONL ({"event", "properties": {time, distinct_id, $insert_id,
    ...}}) into `table`. `time` may be seconds or milliseconds, as Mixpanel accepts both."""
    if isinstance(paths, str):
        paths = [paths]
    props = ['"time" DOUBLE', "distinct_id VARCHAR", '"$insert_id" VARCHAR']
    props += [f"{ident(name)} VARCHAR" for name in PROPERTY_COLUMNS]
    struct = "STRUCT(" + ", ".join(props) + ")"
    columns = "{'event': 'VARCHAR', 'properties': '" + struct.replace("'", "''") + "'}"
    files = "[" + ", ".join(literal(str(p), "duckdb") for p in paths) + "]"
    selected = ", ".join(f"properties.{ident(name)} AS {ident(name)}" for name in PROPERTY_COLUMNS)
    con.execute(
        f"""CREATE OR REPLACE TABLE {table} AS
        SELECT event, properties.distinct_id AS distinct_id,
               CAST(CASE WHEN properties."time" < 1e11 THEN round(properties."time" * 1000)
                         ELSE properties."time" END AS BIGINT) AS time_ms,
               properties."$insert_id" AS insert_id, {selected}
        FROM read_json({files}, format = 'newline_delimited', columns = {columns})"""
    )


def clickhouse_events_ddl(table: str = "events") -> str:
    """The chdb `events` table: MergeTree ordered by (distinct_id, time_ms). Event names and
    properties are LowCardinality, as a ClickHouse schema for such columns would have them."""
    props = ", ".join(f"{ident(name)} LowCardinality(Nullable(String))" for name in PROPERTY_COLUMNS)
    return (
        f"CREATE TABLE {table} (event LowCardinality(String), distinct_id String, time_ms Int64, "
        f"insert_id String, {props}) ENGINE = MergeTree ORDER BY (distinct_id, time_ms)"
    )


def all_columns() -> str:
    return ", ".join(ident(name) for name in BASE_COLUMNS + PROPERTY_COLUMNS)


def derived_tables_sql(dialect: str = "duckdb") -> list[str]:
    """Statements that build `identity` and `ev` from `events` (see the module docstring). `ev` is
    ordered by (event, time_ms): every report filters on the event name and the time range."""
    check_dialect(dialect)
    link_filter = '"$device_id" IS NOT NULL AND "$user_id" IS NOT NULL'
    identity_select = (
        f"""SELECT '$device:' || "$device_id" AS device_key, argMin("$user_id", time_ms) AS user_id
        FROM events WHERE {link_filter} GROUP BY device_key"""
    )
    columns = ", ".join(f"d.{ident(name)} AS {ident(name)}" for name in BASE_COLUMNS + PROPERTY_COLUMNS)
    key = "distinct_id, time_ms, event, insert_id"
    if dialect == "duckdb":
        dedup = f"SELECT DISTINCT ON ({key}) * FROM events"
        return [
            f"CREATE OR REPLACE TABLE identity AS {identity_select}",
            f"""CREATE OR REPLACE TABLE ev AS
            SELECT {columns}, coalesce(i.user_id, d.distinct_id) AS person
            FROM ({dedup}) d LEFT JOIN identity i ON i.device_key = d.distinct_id
            ORDER BY event, time_ms""",
        ]
    dedup = f"SELECT * FROM events LIMIT 1 BY {key}"
    return [
        "DROP TABLE IF EXISTS identity",
        "DROP TABLE IF EXISTS ev",
        f"CREATE TABLE identity ENGINE = Memory AS {identity_select}",
        f"""CREATE TABLE ev ENGINE = MergeTree ORDER BY (event, time_ms) AS
        SELECT {columns}, CAST(coalesce(i.user_id, d.distinct_id) AS String) AS person
        FROM ({dedup}) d LEFT JOIN identity i ON i.device_key = d.distinct_id""",
    ]


# -- calendar: ranges, offsets and buckets ----------------------------------------------------

def parse_date(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def day_start_ms(day: dt.date, tz: str) -> int:
    """UTC ms of local midnight starting `day` (a skipped midnight resolves after the gap)."""
    local = dt.datetime.combine(day, dt.time(0), tzinfo=ZoneInfo(tz))
    return int(local.timestamp()) * 1000


def range_ms(spec: dict, tz: str) -> tuple[int, int]:
    """[start(from), start(to + 1 day)) in UTC ms."""
    start, end = parse_date(spec["from"]), parse_date(spec["to"])
    if end < start:
        raise ValueError("to is before from")
    return day_start_ms(start, tz), day_start_ms(end + dt.timedelta(days=1), tz)


def utc_offset_ms(tz: str, ms: int) -> int:
    moment = dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).astimezone(ZoneInfo(tz))
    return int(moment.utcoffset().total_seconds()) * 1000


def offset_segments(tz: str, lo: int, hi: int) -> list[tuple[int, int]]:
    """[(from_ms, offset_ms)]: the zone's UTC offset from each from_ms on, over [lo, hi).
    Sampled hourly, each change narrowed to the exact millisecond by bisection."""
    segments = [(lo, utc_offset_ms(tz, lo))]
    t = lo
    while t < hi:
        step = min(MS_HOUR, hi - t)
        if utc_offset_ms(tz, t + step) != segments[-1][1] and t + step < hi:
            a, b = t, t + step  # offset(a) is the current one, offset(b) the next
            while b - a > 1:
                mid = (a + b) // 2
                if utc_offset_ms(tz, mid) == segments[-1][1]:
                    a = mid
                else:
                    b = mid
            segments.append((b, utc_offset_ms(tz, b)))
        t += step
    return segments


def local_ms_sql(col: str, tz: str, lo: int, hi: int) -> str:
    """`col` (UTC ms) shifted to local wall-clock ms; exact for times in [lo, hi)."""
    segments = offset_segments(tz, lo, hi)
    if len(segments) == 1:
        return f"({col} + {segments[0][1]})"
    cases = " ".join(f"WHEN {col} < {start} THEN {prev[1]}"
                     for prev, (start, _) in zip(segments, segments[1:]))
    return f"({col} + CASE {cases} ELSE {segments[-1][1]} END)"


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def week_start(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def day_number(day: dt.date) -> int:
    return (day - EPOCH).days


def bucket_sql(col: str, interval: str, tz: str, lo: int, hi: int) -> str:
    """SQL for the bucket of a UTC-ms column, valid for times in [lo, hi): the local hour number
    (hours since the epoch) for `hour`; the day number of the bucket's first day otherwise."""
    local = local_ms_sql(col, tz, lo, hi)
    if interval == "hour":
        return floor_div(local, MS_HOUR)
    if interval == "day":
        return floor_div(local, MS_DAY)
    if interval == "week":
        # Day 0 (1970-01-01) is a Thursday: day d is a Monday when (d + 3) % 7 == 0.
        return f"({floor_div(f'{local} + {3 * MS_DAY}', 7 * MS_DAY)} * 7 - 3)"
    if interval == "month":
        day = floor_div(local, MS_DAY)
        first = dt.datetime.fromtimestamp((lo - 2 * MS_DAY) / 1000, dt.timezone.utc).date()
        last = dt.datetime.fromtimestamp((hi + 2 * MS_DAY) / 1000, dt.timezone.utc).date()
        starts = []
        month = month_start(first)
        while month <= last:
            starts.append(day_number(month))
            month = month_start(month + dt.timedelta(days=32))
        cases = " ".join(f"WHEN {day} >= {s} THEN {s}" for s in reversed(starts[1:]))
        return f"(CASE {cases} ELSE {starts[0]} END)"
    raise ValueError(f"unknown interval {interval!r}")


def bucket_label(bucket: int, interval: str) -> str:
    if interval == "hour":
        moment = dt.datetime(1970, 1, 1) + dt.timedelta(hours=bucket)
        return moment.strftime("%Y-%m-%dT%H:00")
    return (EPOCH + dt.timedelta(days=bucket)).isoformat()


def day_bucket(day: dt.date, interval: str) -> int:
    if interval == "week":
        return day_number(week_start(day))
    if interval == "month":
        return day_number(month_start(day))
    return day_number(day)


def range_buckets(spec: dict, interval: str, tz: str) -> list[int]:
    """Every bucket of the range, in order: each gets a point, zero when empty. Local hours come
    from the offset segments, so a repeated hour (DST ends) is one bucket, a skipped one none."""
    first, last = parse_date(spec["from"]), parse_date(spec["to"])
    if interval == "hour":
        lo, hi = range_ms(spec, tz)
        hours: set[int] = set()
        segments = offset_segments(tz, lo, hi)
        for (start, offset), end in zip(segments, [s for s, _ in segments[1:]] + [hi]):
            hours.update(range((start + offset) // MS_HOUR, (end - 1 + offset) // MS_HOUR + 1))
        return sorted(hours)
    buckets: list[int] = []
    day = first
    while day <= last:
        bucket = day_bucket(day, interval)
        if not buckets or buckets[-1] != bucket:
            buckets.append(bucket)
        day += dt.timedelta(days=1)
    return buckets


def parse_window(text: str) -> int:
    """`Nd`, `Nh` or `Nm` (minutes) in ms."""
    match = re.fullmatch(r"(\d+)([dhm])", text)
    if not match:
        raise ValueError(f"window must be Nd, Nh or Nm, got {text!r}")
    unit = {"d": MS_DAY, "h": MS_HOUR, "m": 60_000}[match.group(2)]
    return int(match.group(1)) * unit


# -- filters ------------------------------------------------------------------------------------

def filter_sql(flt: dict, dialect: str) -> str:
    """One filter of docs/reports.md as a boolean SQL expression that is never NULL."""
    if "any" in flt:
        if not flt["any"]:
            return "FALSE"
        return "(" + " OR ".join(filter_sql(f, dialect) for f in flt["any"]) + ")"
    if "all" in flt:
        return filters_sql(flt["all"], dialect)
    if "cohort" in flt or "not_cohort" in flt or flt.get("source", "event") != "event":
        raise NotImplementedError(f"cohort and profile filters are not supported: {flt}")
    col = ident(flt["property"])
    op, value = flt["op"], flt.get("value")
    if op == "set":
        return f"({col} IS NOT NULL)"
    if op == "not_set":
        return f"({col} IS NULL)"
    if op in ("eq", "neq"):
        test = f"({col} IS NOT NULL AND {col} = {literal(value, dialect)})"
    elif op in ("in", "not_in"):
        strings = [v for v in value if isinstance(v, str)]  # other types never equal a string
        listed = ", ".join(literal(v, dialect) for v in strings)
        test = f"({col} IS NOT NULL AND {col} IN ({listed}))" if strings else "FALSE"
    elif op in ("contains", "not_contains"):
        needle = literal(value, dialect)
        found = f"position({col}, {needle}) > 0" if dialect == "clickhouse" else f"contains({col}, {needle})"
        test = f"({col} IS NOT NULL AND {found})"
    else:
        raise NotImplementedError(f"numeric filters are not supported on VARCHAR columns: {flt}")
    # The negations hold when the property is missing (as `neq` is documented to).
    return f"(NOT {test})" if op in ("neq", "not_in", "not_contains") else test


def filters_sql(filters: Sequence[dict], dialect: str) -> str:
    if not filters:
        return "TRUE"
    return "(" + " AND ".join(filter_sql(f, dialect) for f in filters) + ")"


def selector_sql(event: str, filters: Sequence[dict], dialect: str) -> str:
    """Rows of `ev` matching an event selector (`$any` is every event) and its filters."""
    name = "TRUE" if event == "$any" else f"event = {literal(event, dialect)}"
    return f"({name} AND {filters_sql(filters, dialect)})"


def unsupported(spec: dict, keys: Sequence[str]) -> None:
    present = [k for k in keys if spec.get(k) not in (None, [], {}, "users")]
    if present:
        raise NotImplementedError(f"{spec['report']}: unsupported fields {present}")


# -- plans ---------------------------------------------------------------------------------------

@dataclasses.dataclass
class Plan:
    """SQL statements whose rows `shape` turns into the report's JSON result."""
    statements: list[str]
    shape: Callable[[list[list[tuple]]], dict]


def plan(spec: dict, tz: str = "UTC", dialect: str = "duckdb") -> Plan:
    check_dialect(dialect)
    builders = {"insights": insights_plan, "funnel": funnel_plan, "retention": retention_plan}
    if spec.get("report") not in builders:
        raise NotImplementedError(f"report {spec.get('report')!r} is not supported")
    return builders[spec["report"]](spec, tz, dialect)


def run_report(con, spec: dict, tz: str = "UTC", dialect: str = "duckdb") -> dict:
    """Runs the report on a connection with `.execute(sql).fetchall()` holding `ev`."""
    report = plan(spec, tz, dialect)
    return report.shape([con.execute(sql).fetchall() for sql in report.statements])


# -- insights -----------------------------------------------------------------------------------

INSIGHTS_MEASURES = ("total", "uniques")


def breakdown_column(spec: dict) -> str | None:
    breakdown = spec.get("breakdown")
    if breakdown is None:
        return None
    if isinstance(breakdown, dict):
        if "property" not in breakdown or "buckets" in breakdown or breakdown.get("source", "event") != "event":
            raise NotImplementedError(f"breakdown {breakdown} is not supported")
        breakdown = breakdown["property"]
    return ident(breakdown)


def insights_groups(spec: dict) -> tuple[list[dict], list[int]]:
    """Entries with the same event and filters share one scan that computes every measure they
    need. Returns the groups and, per entry, its group's index."""
    groups: list[dict] = []
    group_of: list[int] = []
    by_key: dict[str, int] = {}
    for entry in spec["events"]:
        measure = entry.get("measure", "total")
        if measure not in INSIGHTS_MEASURES:
            raise NotImplementedError(f"measure {measure!r} is not supported")
        key = json.dumps([entry["event"], entry.get("where", [])], sort_keys=True)
        if key not in by_key:
            by_key[key] = len(groups)
            groups.append({"event": entry["event"], "where": entry.get("where", []), "measures": set()})
        groups[by_key[key]]["measures"].add(measure)
        group_of.append(by_key[key])
    return groups, group_of


def insights_plan(spec: dict, tz: str, dialect: str) -> Plan:
    """One statement: per entry group, counts per (bucket, segment). A `total` is the sum of its
    buckets; distinct people over the whole range need rows of their own (bucket -1), made only
    when they rank segments (breakdown) or are shown (`limit`)."""
    unsupported(spec, ("formulas", "compare", "unit"))
    interval = spec.get("interval", "day")
    start, end = range_ms(spec, tz)
    bucket = bucket_sql("time_ms", interval, tz, start, end)
    segment = breakdown_column(spec) or "''"
    groups, group_of = insights_groups(spec)
    selects = []
    for index, group in enumerate(groups):
        where = (f"time_ms >= {start} AND time_ms < {end} AND "
                 f"{selector_sql(group['event'], list(group['where']) + spec.get('where', []), dialect)}")
        total = "count(*)" if "total" in group["measures"] else "CAST(0 AS BIGINT)"
        uniques = "count(DISTINCT person)" if "uniques" in group["measures"] else "CAST(0 AS BIGINT)"
        measures = f"{total} AS n_total, {uniques} AS n_uniques"
        selects.append(f"SELECT {index} AS g, {bucket} AS b, {segment} AS s, {measures} "
                       f"FROM ev WHERE {where} GROUP BY b, s")
        if "uniques" in group["measures"] and (spec.get("breakdown") or spec.get("limit") is not None):
            selects.append(f"SELECT {index} AS g, -1 AS b, {segment} AS s, {measures} "
                           f"FROM ev WHERE {where} GROUP BY s")
    sql = "\nUNION ALL\n".join(selects)
    buckets = range_buckets(spec, interval, tz)

    def shape(results: list[list[tuple]]) -> dict:
        return shape_insights(spec, interval, buckets, group_of, results[0])

    return Plan([sql], shape)


def segment_rank(item: tuple) -> tuple:
    """Whole-range total descending, then segment ascending with null last."""
    segment, total = item
    return (-total, segment is None, segment or "")


def range_total(cells: dict, g: int, segment, column: int, buckets: list[int]) -> int:
    """The measure over the whole range: the sum of the buckets for `total`, the row of bucket -1
    for `uniques`."""
    if INSIGHTS_MEASURES[column] == "uniques":
        return cells.get((g, -1, segment), (0, 0))[column]
    return sum(cells.get((g, b, segment), (0, 0))[column] for b in buckets)


def shape_insights(spec: dict, interval: str, buckets: list[int], group_of: list[int],
                   rows: list[tuple]) -> dict:
    with_breakdown = spec.get("breakdown") is not None
    limit = spec.get("limit")
    cells: dict[tuple, tuple] = {}  # (group, bucket, segment) -> (total, uniques)
    for g, b, s, n_total, n_uniques in rows:
        cells[(int(g), int(b), s if with_breakdown else None)] = (int(n_total), int(n_uniques))
    labels = [bucket_label(b, interval) for b in buckets]
    series = []
    for entry, g in zip(spec["events"], group_of):
        measure = entry.get("measure", "total")
        column = INSIGHTS_MEASURES.index(measure)
        segments = {s for (group, b, s) in cells if group == g} if with_breakdown else {None}
        ranked = sorted(((s, range_total(cells, g, s, column, buckets)) for s in segments),
                        key=segment_rank)
        if with_breakdown and limit is not None:
            ranked = ranked[:limit]
        for segment, total in ranked:
            one = {"event": entry["event"], "measure": measure}
            if with_breakdown:
                one["segment"] = segment
            one["points"] = {label: cells.get((g, b, segment), (0, 0))[column]
                             for b, label in zip(buckets, labels)}
            if limit is not None:
                one["total"] = total
            series.append(one)
    return {"series": series}


# -- funnels -----------------------------------------------------------------------------------

def funnel_chain_sql(spec: dict, tz: str, dialect: str) -> str:
    """CTEs s1..sN: per attempt (person p, entry time t1) the time t_k of each step reached.
    Step k is the first matching event with t_{k-1} < t <= t1 + window; each CTE LEFT JOINs the
    step's events on the person only (equi-join, which both engines run as a hash join) and
    applies the time conditions inside min(CASE ...), so people who stop keep their row."""
    steps = spec["steps"]
    window = parse_window(spec.get("window", "7d"))
    start, end = range_ms(spec, tz)
    top = spec.get("where", [])
    first = selector_sql(steps[0]["event"], steps[0].get("where", []) + top, dialect)
    in_range = f"time_ms >= {start} AND time_ms < {end}"
    if spec.get("entry", "first") == "first":
        s1 = f"SELECT person AS p, min(time_ms) AS t1 FROM ev WHERE {in_range} AND {first} GROUP BY person"
    else:
        s1 = f"SELECT DISTINCT person AS p, time_ms AS t1 FROM ev WHERE {in_range} AND {first}"
    ctes = [f"s1 AS ({s1})"]
    for k in range(2, len(steps) + 1):
        step = selector_sql(steps[k - 1]["event"], steps[k - 1].get("where", []) + top, dialect)
        kept = ", ".join(f"a.t{j} AS t{j}" for j in range(1, k))
        group = ", ".join(f"a.t{j}" for j in range(1, k))
        reached = (f"min(CASE WHEN a.t{k - 1} IS NOT NULL AND e.et > a.t{k - 1} "
                   f"AND e.et <= a.t1 + {window} THEN e.et END) AS t{k}")
        events = (f"SELECT person AS ep, time_ms AS et FROM ev "
                  f"WHERE time_ms > {start} AND time_ms <= {end + window} AND {step}")
        ctes.append(f"s{k} AS (SELECT a.p AS p, {kept}, {reached} "
                    f"FROM s{k - 1} a LEFT JOIN ({events}) e ON e.ep = a.p GROUP BY a.p, {group})")
    return "WITH " + ",\n".join(ctes)


def funnel_stats_sql(n: int, source: str, dialect: str) -> str:
    """count, and per step k >= 2 the number reaching it with sums and medians of the times from
    the previous step (dp{k}) and from the start (ds{k}), over the rows of `source`."""
    columns = ["count(*)"]
    for k in range(2, n + 1):
        columns += [f"count(dp{k})", f"sum(dp{k})", median(f"dp{k}", dialect),
                    f"sum(ds{k})", median(f"ds{k}", dialect)]
    return f"SELECT {', '.join(columns)} FROM {source}"


def funnel_plan(spec: dict, tz: str, dialect: str) -> Plan:
    unsupported(spec, ("exclusions", "hold_constant", "breakdown", "unit"))
    if spec.get("counting", "uniques") != "uniques" or spec.get("order", "strict") != "strict":
        raise NotImplementedError("funnel counting totals and order any are not supported")
    n = len(spec["steps"])
    if not 2 <= n <= 20:
        raise ValueError("a funnel has 2 to 20 steps")
    chain = funnel_chain_sql(spec, tz, dialect)
    diffs = ", ".join(f"t{k} - t{k - 1} AS dp{k}, t{k} - t1 AS ds{k}" for k in range(2, n + 1))
    if spec.get("entry", "first") == "first":
        statements = [f"{chain}\n{funnel_stats_sql(n, f'(SELECT {diffs} FROM s{n}) x', dialect)}"]
    else:
        # Per person, the times of the earliest attempt (smallest t1) that reaches each step.
        earliest = ", ".join(
            f"argMin(t{k} - t{k - 1}, t1) FILTER (WHERE t{k} IS NOT NULL) AS dp{k}, "
            f"argMin(t{k} - t1, t1) FILTER (WHERE t{k} IS NOT NULL) AS ds{k}"
            for k in range(2, n + 1))
        per_person = f"(SELECT p, {earliest} FROM s{n} GROUP BY p) x"
        statements = [f"{chain}\n{funnel_stats_sql(n, per_person, dialect)}"]
        if dialect == "clickhouse":
            statements.append(window_funnel_sql(spec, tz))
    shape = (lambda results: shape_funnel(spec, results))
    return Plan(statements, shape)


def window_funnel_sql(spec: dict, tz: str) -> str:
    """ClickHouse's windowFunnel in 'strict_increase' mode is the `entry: "any"` rule: the furthest
    step any in-range Step 1 reaches with strictly increasing times within the window. Rows: (level,
    people at exactly that level)."""
    steps = spec["steps"]
    window = parse_window(spec.get("window", "7d"))
    start, end = range_ms(spec, tz)
    top = spec.get("where", [])
    conditions = [f"time_ms >= {start} AND time_ms < {end} AND "
                  f"{selector_sql(steps[0]['event'], steps[0].get('where', []) + top, 'clickhouse')}"]
    conditions += [selector_sql(s["event"], s.get("where", []) + top, "clickhouse") for s in steps[1:]]
    names = {s["event"] for s in steps}
    events = "TRUE" if "$any" in names else f"event IN ({', '.join(literal(e, 'clickhouse') for e in sorted(names))})"
    return (f"SELECT level, count(*) FROM (SELECT person, windowFunnel({window}, 'strict_increase')"
            f"(toUInt64(time_ms), {', '.join(conditions)}) AS level FROM ev "
            f"WHERE time_ms >= {start} AND time_ms <= {end + window} AND {events} GROUP BY person) "
            f"WHERE level > 0 GROUP BY level")


def fraction(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def mean(total, count: int) -> float | None:
    """The exact integer sum over the count, as one float division."""
    return int(total) / count if count else None


def as_float(value) -> float | None:
    return None if value is None else float(value)


def shape_funnel(spec: dict, results: list[list[tuple]]) -> dict:
    stats = results[0][0]
    counts = [int(stats[0])]
    times: list[tuple] = [(None, None, None, None)]
    for k in range(len(spec["steps"]) - 1):
        n, sum_prev, med_prev, sum_start, med_start = stats[1 + 5 * k: 6 + 5 * k]
        counts.append(int(n))
        times.append((mean(sum_prev, n), as_float(med_prev) if n else None,
                      mean(sum_start, n), as_float(med_start) if n else None))
    if len(results) > 1:  # windowFunnel: people at exactly each level -> people reaching it
        at_level = {int(level): int(n) for level, n in results[1]}
        counts = [sum(n for level, n in at_level.items() if level >= k)
                  for k in range(1, len(spec["steps"]) + 1)]
    steps = []
    for k, step in enumerate(spec["steps"]):
        avg_prev, med_prev, avg_start, med_start = times[k]
        steps.append({
            "event": step["event"],
            "count": counts[k],
            "conversion_from_previous": fraction(counts[k], counts[k - 1] if k else counts[0]),
            "conversion_from_start": fraction(counts[k], counts[0]),
            "avg_time_from_previous_ms": avg_prev,
            "median_time_from_previous_ms": med_prev,
            "avg_time_from_start_ms": avg_start,
            "median_time_from_start_ms": med_start,
        })
    return {"steps": steps}


# -- retention -----------------------------------------------------------------------------------

RETENTION_UNITS = {"day": MS_DAY, "week": 7 * MS_DAY, "month": 30 * MS_DAY}


def retention_plan(spec: dict, tz: str, dialect: str) -> Plan:
    """Births (first-ever `born` event per person) in range form cohorts by the local bucket of
    the birth; each cohort member's `return` events are LEFT JOINed on the person and mapped to a
    bracket k = floor((t - birth) / unit) (or -1), then folded per person and per cohort."""
    unsupported(spec, ("count",))
    if spec.get("retention", "first_time") != "first_time":
        raise NotImplementedError("recurring retention is not supported")
    unit_name, periods = spec.get("unit", "week"), int(spec.get("periods", 8))
    unit, mode = RETENTION_UNITS[unit_name], spec.get("mode", "on")
    start, end = range_ms(spec, tz)
    top = spec.get("where", [])
    born, ret = spec["born"], spec["return"]
    born_sql = selector_sql(born["event"], born.get("where", []) + top, dialect)
    return_sql = selector_sql(ret["event"], ret.get("where", []) + top, dialect)
    # The birth event itself never counts as a return; only possible if it can match `return`.
    self_possible = born["event"] == ret["event"] or "$any" in (born["event"], ret["event"])
    not_self = ("AND NOT (e.et = a.birth AND e.eiid = a.biid AND e.edid = a.bdid)"
                if self_possible else "")
    births = (f"SELECT person AS p, min(time_ms) AS birth, argMin(insert_id, time_ms) AS biid, "
              f"argMin(distinct_id, time_ms) AS bdid FROM ev WHERE {born_sql} GROUP BY person")
    cohort_key = bucket_sql("birth", unit_name, tz, start, end)
    cohorts = f"SELECT p, birth, biid, bdid, {cohort_key} AS c FROM ({births}) x WHERE birth >= {start} AND birth < {end}"
    returns = (f"SELECT person AS ep, time_ms AS et, insert_id AS eiid, distinct_id AS edid FROM ev "
               f"WHERE time_ms >= {start} AND time_ms < {end + periods * unit} AND {return_sql}")
    bracket = (f"coalesce(CASE WHEN e.et >= a.birth AND e.et < a.birth + {periods * unit} {not_self} "
               f"THEN {floor_div('e.et - a.birth', unit)} END, -1)")
    joined = f"SELECT a.p AS p, a.c AS c, {bracket} AS k FROM ({cohorts}) a LEFT JOIN ({returns}) e ON e.ep = a.p"
    if mode == "on" and dialect == "clickhouse":
        flags = ", ".join(f"k = {j}" for j in range(periods))
        per_person = f"SELECT p, c, retention(TRUE, {flags}) AS r FROM ({joined}) j GROUP BY p, c"
        counts = ", ".join(f"sum(r[{j + 2}])" for j in range(periods))
    elif mode == "on":
        flags = ", ".join(f"max(CASE WHEN k = {j} THEN 1 ELSE 0 END) AS r{j}" for j in range(periods))
        per_person = f"SELECT p, c, {flags} FROM ({joined}) j GROUP BY p, c"
        counts = ", ".join(f"sum(r{j})" for j in range(periods))
    elif mode == "on_or_after":
        per_person = f"SELECT p, c, max(k) AS last FROM ({joined}) j GROUP BY p, c"
        counts = ", ".join(f"sum(CASE WHEN last >= {j} THEN 1 ELSE 0 END)" for j in range(periods))
    else:
        raise ValueError(f"unknown retention mode {mode!r}")
    sql = f"SELECT c, count(*), {counts} FROM ({per_person}) pp GROUP BY c ORDER BY c"

    def shape(results: list[list[tuple]]) -> dict:
        return {"cohorts": [
            {"start": bucket_label(int(row[0]), unit_name), "size": int(row[1]),
             "counts": [int(n) for n in row[2:]]}
            for row in sorted(results[0], key=lambda r: int(r[0]))
        ]}

    return Plan([sql], shape)


# -- comparing answers ----------------------------------------------------------------------

def element_name(item, index: int) -> str:
    """`[3]`, or with the fields that identify a series, step or cohort: `[3 event='X', ...]`."""
    if isinstance(item, dict):
        keys = [k for k in ("event", "measure", "segment", "start") if k in item]
        if keys:
            return f"[{index} " + ", ".join(f"{k}={item[k]!r}" for k in keys) + "]"
    return f"[{index}]"


def first_difference(expected, actual, path: str = "result"):
    """(path, expected, actual) of the first difference, or None when equal (as `==` sees it)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in list(expected) + [k for k in actual if k not in expected]:
            if key not in actual or key not in expected:
                return (f"{path}.{key}", expected.get(key, "<absent>"), actual.get(key, "<absent>"))
            found = first_difference(expected[key], actual[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(expected, list) and isinstance(actual, list):
        for index, (e, a) in enumerate(zip(expected, actual)):
            found = first_difference(e, a, path + element_name(e, index))
            if found:
                return found
        if len(expected) != len(actual):
            return (f"{path} (length)", len(expected), len(actual))
        return None
    return None if expected == actual else (path, expected, actual)


def describe_difference(expected: dict, actual: dict, names=("expected", "actual")) -> str:
    """The first difference, and for insights the series lists when they differ."""
    lines = []
    difference = first_difference(expected, actual)
    if difference:
        path, want, got = difference
        lines.append(f"first difference at {path}: {names[0]} {want!r}, {names[1]} {got!r}")
    if isinstance(expected.get("series"), list) and isinstance(actual.get("series"), list):
        def ids(result):
            return [(s.get("event"), s.get("measure"), s.get("segment")) for s in result["series"]]
        if ids(expected) != ids(actual):
            lines.append(f"series (event, measure, segment): {names[0]} {ids(expected)}, "
                         f"{names[1]} {ids(actual)}")
    return "\n".join(lines) or "equal"


# -- chdb --------------------------------------------------------------------------------------

class ChdbConnection:
    """A chdb session behind the `.execute(sql).fetchall()` interface `run_report` expects.
    chdb reads a config.xml from the current directory: run it from a clean folder."""

    def __init__(self, path: str | None = None):
        from chdb import session  # the bench venv only

        self.session = session.Session(path) if path else session.Session()
        self.rows: list[tuple] = []
        for sql in SESSION_SETUP["clickhouse"]:
            self.session.query(sql)

    def execute(self, sql: str) -> "ChdbConnection":
        result = self.session.query(sql, "JSONCompact")
        text = result.bytes().decode() if hasattr(result, "bytes") else str(result)
        self.rows = [tuple(row) for row in json.loads(text)["data"]] if text.strip() else []
        return self

    def fetchall(self) -> list[tuple]:
        return self.rows
