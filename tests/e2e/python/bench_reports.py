"""Report benchmark: Hearth's /api/v1/query against DuckDB and chdb on the same events.

Why: Hearth answers reports from its own column store; the question is how it compares with
general-purpose analytical engines answering the same questions with SQL, on this 2-core machine.
Run it through scripts/bench-reports.sh (builds the release binary, makes the venvs).

Steps:
1. `hearth gen --events N` (default 10,000,000) writes the data set as JSONL.
2. Hearth: `hearth project create` and `hearth import` into a fresh data directory, then
   `hearth serve`. Each report is POSTed once untimed and then --runs times (plain POSTs: Hearth
   has no result cache); the server's peak RSS (VmHWM) is read after the runs.
3. DuckDB (in this process, `SET threads=2`): the JSONL is loaded into a native table and the
   deduplicated, identity-resolved table `ev` is built once, untimed, before the reports (fair:
   Hearth resolves identities at load too). Each report's SQL (reports_sql.py) runs once untimed,
   then --runs times. DuckDB has no result cache.
4. chdb (ClickHouse in-process): in a subprocess with the bench venv's python, from a clean
   folder (chdb reads a config.xml from the current directory). The events go into a MergeTree
   table ordered by (distinct_id, time_ms) from a Parquet copy; `ev` (MergeTree ordered by
   (event, time_ms)) is built once, untimed; `use_query_cache = 0`.
5. Hearth on its ClickHouse backend: Debian's ClickHouse 18.16 on loopback, `hearth import`
   straight into it, `OPTIMIZE TABLE ... FINAL` (the settled state), then the same reports over
   HTTP, translated by Hearth to ClickHouse SQL.
6. A table of medians: Hearth, DuckDB and chdb in ms, and the faster engine's time over
   Hearth's (above 1: Hearth is faster). Hearth's and chdb's answers are checked against DuckDB's;
   a mismatch is printed and the timing goes on.

`--chdb-worker` is the subprocess's entry point (internal).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import reports_sql

HERE = pathlib.Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[2]

# `hearth gen`'s default range: 90 days from Monday 2025-01-06.
FIRST_DAY, LAST_DAY = "2025-01-06", "2025-04-05"
WHOLE = {"from": FIRST_DAY, "to": LAST_DAY}

# The six reports, over the whole range (test_reports_duckdb.py checks them too).
BENCH_SPECS = {
    "country_by_day": {"report": "insights", **WHOLE, "interval": "day",
                       "events": [{"event": "API Request", "measure": "total"}],
                       "breakdown": "mp_country_code"},
    "weekly_uniques": {"report": "insights", **WHOLE, "interval": "week",
                       "events": [{"event": "$any", "measure": "uniques"}]},
    "funnel_4_any": {"report": "funnel", **WHOLE, "window": "14d", "entry": "any",
                     "steps": [{"event": "Sign Up"}, {"event": "Create API Key"},
                               {"event": "API Request"}, {"event": "Upgrade Plan"}]},
    "retention_weekly": {"report": "retention", **WHOLE, "born": {"event": "Sign Up"},
                         "return": {"event": "API Request"}, "unit": "week", "periods": 9,
                         "mode": "on"},
    "chrome_pro_daily": {"report": "insights", **WHOLE, "interval": "day",
                         "events": [{"event": "$any", "measure": "total"},
                                    {"event": "$any", "measure": "uniques"}],
                         "where": [{"property": "$browser", "op": "eq", "value": "Chrome"},
                                   {"property": "plan", "op": "eq", "value": "pro"}]},
    "top_referrers": {"report": "insights", **WHOLE, "interval": "day",
                      "events": [{"event": "Sign Up", "measure": "uniques"}],
                      "breakdown": "$referring_domain", "limit": 10},
}

DESCRIPTIONS = {
    "country_by_day": "API Request total by day, by country",
    "weekly_uniques": "$any uniques by week",
    "funnel_4_any": "4-step funnel, 14d, entry any",
    "retention_weekly": "weekly retention, 9 periods, on",
    "chrome_pro_daily": "Chrome+pro: total and uniques by day",
    "top_referrers": "top 10 referrers by unique Sign Up",
}


def log(message: str) -> None:
    print(f"bench-reports: {message}", file=sys.stderr, flush=True)


def peak_rss_mb(pid: int | str = "self") -> float | None:
    """VmHWM of a process, in MB."""
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def timed_runs(run, runs: int) -> tuple[list[float], object]:
    """One untimed warm-up, then `runs` timed calls; (milliseconds, last answer)."""
    answer = run()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        answer = run()
        times.append((time.perf_counter() - start) * 1000)
    return times, answer


def run_cli(hearth_bin: str, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([hearth_bin, *args], cwd=REPO_ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"hearth {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result


# -- Hearth ---------------------------------------------------------------------------------------

def metric(server, name: str) -> float | None:
    """One gauge from the server's Prometheus /metrics."""
    response = server.request("GET", "/metrics", timeout=30)
    for line in response.text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def wait_settled(server, quiet_s: float = 10.0, timeout_s: float = 900.0) -> float:
    """Waits until compaction has nothing left and the part count has not moved for
    `quiet_s`: the state a server reaches after an import, and the one a report
    reads in steady operation (each day one part). Returns the seconds waited."""
    start = time.perf_counter()
    last, since = None, time.perf_counter()
    while time.perf_counter() - start < timeout_s:
        backlog = metric(server, "hearth_compaction_backlog_days")
        parts = metric(server, "hearth_parts")
        if (backlog, parts) != last:
            last, since = (backlog, parts), time.perf_counter()
        elif backlog == 0 and time.perf_counter() - since >= quiet_s:
            return time.perf_counter() - start
        time.sleep(1.0)
    raise RuntimeError("the server did not settle in time")


def bench_hearth(hearth_bin: str, jsonl: pathlib.Path, work: pathlib.Path, runs: int) -> dict:
    os.environ["HEARTH_BIN"] = hearth_bin
    os.environ.setdefault("HEARTH_READY_TIMEOUT", "900")
    from hearth_harness import Hearth, basic_auth  # reads HEARTH_BIN when imported

    server = Hearth(work / "hearth", name="bench")
    start = time.perf_counter()
    run_cli(hearth_bin, "import", "--data", str(server.data_dir), "--project", "bench", str(jsonl))
    import_s = time.perf_counter() - start
    log(f"hearth import: {import_s:.1f} s")
    server.start()
    settle_s = wait_settled(server)
    log(f"hearth settled (one part per day) after {settle_s:.1f} s")
    out = {"import_s": import_s, "settle_s": settle_s, "timings": {}, "results": {}, "errors": {}}
    try:
        time_reports(server, basic_auth(server.secret), runs, out, "hearth")
        out["vmhwm_mb"] = peak_rss_mb(server.proc.pid)
    finally:
        server.stop()
    return out


def time_reports(server, auth: str, runs: int, out: dict, label: str) -> None:
    """POSTs each of BENCH_SPECS through `timed_runs`, into out["timings"], ["results"] and
    ["errors"]."""
    for name, spec in BENCH_SPECS.items():
        def run(spec=spec):
            response = server.request("POST", "/api/v1/query", body=json.dumps(spec), auth=auth,
                                      headers={"Content-Type": "application/json"}, timeout=900)
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}: {response.text[:300]}")
            return response.json()
        try:
            out["timings"][name], out["results"][name] = timed_runs(run, runs)
            log(f"{label} {name}: {statistics.median(out['timings'][name]):.1f} ms")
        except (RuntimeError, OSError) as err:
            out["errors"][name] = str(err)
            log(f"{label} {name}: {err}")


def bench_hearth_clickhouse(hearth_bin: str, jsonl: pathlib.Path, work: pathlib.Path, runs: int) -> dict:
    """The same reports through Hearth on its ClickHouse backend: Debian's ClickHouse 18.16 on
    loopback, `hearth import` straight into it, the table merged (`OPTIMIZE ... FINAL`, the
    settled state, as Hearth's own is waited for), then the reports over HTTP."""
    os.environ["HEARTH_BIN"] = hearth_bin
    from clickhouse_harness import ClickHouse
    from hearth_harness import Hearth, basic_auth

    clickhouse = ClickHouse(work / "clickhouse").start()
    env = clickhouse.hearth_env("hearth_bench")
    server = Hearth(work / "hearth-clickhouse", name="bench", env=env)
    out = {"timings": {}, "results": {}, "errors": {}}
    try:
        start = time.perf_counter()
        completed = subprocess.run([hearth_bin, "import", "--data", str(server.data_dir), "--project", "bench", str(jsonl)],
                                   cwd=REPO_ROOT, capture_output=True, text=True, env={**os.environ, **env})
        if completed.returncode != 0:
            raise SystemExit(f"hearth import into ClickHouse failed: {completed.stderr[-2000:]}")
        out["import_s"] = time.perf_counter() - start
        start = time.perf_counter()
        clickhouse.execute("OPTIMIZE TABLE hearth_bench.events FINAL")
        out["optimize_s"] = time.perf_counter() - start
        log(f"hearth import into ClickHouse: {out['import_s']:.1f} s, OPTIMIZE FINAL {out['optimize_s']:.1f} s")
        server.start()
        time_reports(server, basic_auth(server.secret), runs, out, "hearth on ClickHouse")
        out["vmhwm_mb"] = peak_rss_mb(server.proc.pid)
        out["clickhouse_vmhwm_mb"] = peak_rss_mb(clickhouse.proc.pid)
    finally:
        if server.proc is not None:
            server.stop()
        clickhouse.kill()
    return out


# -- DuckDB ---------------------------------------------------------------------------------------

def bench_duckdb(jsonl: pathlib.Path, parquet: pathlib.Path, runs: int) -> dict:
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads = 2")
    start = time.perf_counter()
    reports_sql.load_jsonl_duckdb(con, str(jsonl))
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    for sql in reports_sql.derived_tables_sql("duckdb"):
        con.execute(sql)
    derive_s = time.perf_counter() - start
    log(f"duckdb: load {load_s:.1f} s, build ev {derive_s:.1f} s")
    con.execute(f"COPY events TO {reports_sql.literal(str(parquet), 'duckdb')} (FORMAT parquet)")
    out = {"load_s": load_s, "derive_s": derive_s, "timings": {}, "results": {},
           "events": con.execute("SELECT count(*) FROM events").fetchone()[0],
           "ev_rows": con.execute("SELECT count(*) FROM ev").fetchone()[0]}
    for name, spec in BENCH_SPECS.items():
        out["timings"][name], out["results"][name] = timed_runs(
            lambda spec=spec: reports_sql.run_report(con, spec, "UTC", "duckdb"), runs)
        log(f"duckdb {name}: {statistics.median(out['timings'][name]):.1f} ms")
    out["vmhwm_mb"] = peak_rss_mb()
    con.close()
    return out


# -- chdb -----------------------------------------------------------------------------------------

def bench_chdb(python: str, parquet: pathlib.Path, work: pathlib.Path, runs: int) -> dict:
    """Runs this file with --chdb-worker in the bench venv, from a clean folder."""
    folder = work / "chdb"
    folder.mkdir()
    result_path = work / "chdb-result.json"
    command = [python, str(pathlib.Path(__file__).resolve()), "--chdb-worker", "--parquet",
               str(parquet), "--runs", str(runs), "--out", str(result_path)]
    completed = subprocess.run(command, cwd=folder, stdout=sys.stderr, stderr=sys.stderr)
    if completed.returncode != 0 or not result_path.exists():
        return {"failed": f"chdb worker exited with {completed.returncode}"}
    return json.loads(result_path.read_text())


def chdb_worker(parquet: str, runs: int, out_path: str) -> None:
    con = reports_sql.ChdbConnection(str(pathlib.Path.cwd() / "session"))
    con.execute("SET use_query_cache = 0")
    con.execute(reports_sql.clickhouse_events_ddl())
    columns = reports_sql.all_columns()
    start = time.perf_counter()
    con.execute(f"INSERT INTO events ({columns}) SELECT {columns} "
                f"FROM file({reports_sql.literal(parquet, 'clickhouse')}, Parquet)")
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    for sql in reports_sql.derived_tables_sql("clickhouse"):
        con.execute(sql)
    derive_s = time.perf_counter() - start
    log(f"chdb: load {load_s:.1f} s, build ev {derive_s:.1f} s")
    out = {"load_s": load_s, "derive_s": derive_s, "timings": {}, "results": {}}
    for name, spec in BENCH_SPECS.items():
        out["timings"][name], out["results"][name] = timed_runs(
            lambda spec=spec: reports_sql.run_report(con, spec, "UTC", "clickhouse"), runs)
        log(f"chdb {name}: {statistics.median(out['timings'][name]):.1f} ms")
    out["vmhwm_mb"] = peak_rss_mb()
    pathlib.Path(out_path).write_text(json.dumps(out))


# -- report ---------------------------------------------------------------------------------------

def median_ms(engine: dict, name: str) -> float | None:
    times = engine.get("timings", {}).get(name)
    return statistics.median(times) if times else None


def cell(value: float | None, width: int = 10) -> str:
    return f"{value:{width}.1f}" if value is not None else f"{'n/a':>{width}}"


def verdict(reference: dict, engine: dict, name: str, label: str, notes: list[str]) -> str:
    """Whether the engine's answer equals DuckDB's; a difference is added to `notes`."""
    if name in engine.get("errors", {}):
        return "error"
    if name not in engine.get("results", {}):
        return "n/a"
    answer, expected = engine["results"][name], reference["results"][name]
    if answer == expected:
        return "yes"
    notes.append(f"MISMATCH {label} {name}: "
                 f"{reports_sql.describe_difference(expected, answer, ('DuckDB', label))}")
    return "NO"


def print_report(args, hearth: dict, duck: dict, chdb: dict, on_clickhouse: dict) -> None:
    print()
    print(f"Reports over {FIRST_DAY}..{LAST_DAY}: {duck['events']:,} events generated, "
          f"{duck['ev_rows']:,} after deduplication; median of {args.runs} warm runs "
          f"(one untimed run first); {os.cpu_count()} cores.")
    print("DuckDB and chdb query a deduplicated, identity-resolved table `ev` built once before "
          "timing (Hearth resolves identities at load too); no engine uses a result cache.")
    print("chdb's entry-any funnel is two statements: windowFunnel for the counts, the join chain "
          "for the times.")
    print()
    header = (f"{'report':38} {'Hearth ms':>10} {'DuckDB ms':>10} {'chdb ms':>10} "
              f"{'best/Hearth':>11}  Hearth=DuckDB  chdb=DuckDB  {'Hearth/CH ms':>12}  Hearth/CH=DuckDB")
    print(header)
    print("-" * len(header))
    notes: list[str] = []
    for name in BENCH_SPECS:
        ours, theirs = median_ms(hearth, name), [median_ms(duck, name), median_ms(chdb, name)]
        known = [t for t in theirs if t is not None]
        ratio = f"{min(known) / ours:10.2f}x" if ours and known else f"{'n/a':>11}"
        print(f"{DESCRIPTIONS[name]:38} {cell(ours)} {cell(theirs[0])} {cell(theirs[1])} {ratio}  "
              f"{verdict(duck, hearth, name, 'Hearth', notes):13}  "
              f"{verdict(duck, chdb, name, 'chdb', notes):11}  {cell(median_ms(on_clickhouse, name), 12)}  "
              f"{verdict(duck, on_clickhouse, name, 'Hearth on ClickHouse', notes)}")
    print()
    print("Hearth/CH: the same server on its ClickHouse backend (Debian's ClickHouse 18.16 on loopback, "
          "the reports translated to ClickHouse SQL, the table merged with OPTIMIZE FINAL first).")
    for note in notes:
        print(note)
    print("best/Hearth: the faster engine's time over Hearth's (above 1: Hearth is faster).")
    print(f"Load: hearth import {cell(hearth.get('import_s'), 0)} s; "
          f"DuckDB load {duck['load_s']:.1f} s + ev {duck['derive_s']:.1f} s; "
          f"chdb load {cell(chdb.get('load_s'), 0)} s (from Parquet) + ev {cell(chdb.get('derive_s'), 0)} s")
    print(f"Hearth on ClickHouse: import {cell(on_clickhouse.get('import_s'), 0)} s, OPTIMIZE FINAL "
          f"{cell(on_clickhouse.get('optimize_s'), 0)} s; peak RSS: Hearth {cell(on_clickhouse.get('vmhwm_mb'), 0)} MB, "
          f"ClickHouse {cell(on_clickhouse.get('clickhouse_vmhwm_mb'), 0)} MB")
    for name, error in on_clickhouse.get("errors", {}).items():
        print(f"Hearth on ClickHouse error on {name}: {error}")
    print(f"Peak RSS (VmHWM): Hearth server {cell(hearth.get('vmhwm_mb'), 0)} MB; "
          f"DuckDB process {cell(duck.get('vmhwm_mb'), 0)} MB; "
          f"chdb process {cell(chdb.get('vmhwm_mb'), 0)} MB")
    for name, error in hearth.get("errors", {}).items():
        print(f"Hearth error on {name}: {error}")
    if "failed" in chdb:
        print(f"chdb: {chdb['failed']}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per report (median)")
    parser.add_argument("--hearth-bin", default=str(REPO_ROOT / "target" / "release" / "hearth"))
    parser.add_argument("--chdb-python", default=str(REPO_ROOT / ".test-deps" / "bench-venv" / "bin" / "python"),
                        help="a python with chdb; empty to skip chdb")
    parser.add_argument("--no-clickhouse", action="store_true",
                        help="leave out Hearth on its ClickHouse backend (Debian's clickhouse-server)")
    parser.add_argument("--work", help="working folder (default: a temporary one, removed after)")
    parser.add_argument("--chdb-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--parquet", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.chdb_worker:
        chdb_worker(args.parquet, args.runs, args.out)
        return
    if args.runs < 1:
        raise SystemExit("--runs must be at least 1")
    work = pathlib.Path(args.work or tempfile.mkdtemp(prefix="hearth-bench-reports-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        jsonl = work / "events.jsonl"
        start = time.perf_counter()
        run_cli(args.hearth_bin, "gen", "--events", str(args.events), "--out", str(jsonl))
        log(f"hearth gen --events {args.events}: {time.perf_counter() - start:.1f} s")
        hearth = bench_hearth(args.hearth_bin, jsonl, work, args.runs)
        duck = bench_duckdb(jsonl, work / "events.parquet", args.runs)
        chdb = (bench_chdb(args.chdb_python, work / "events.parquet", work, args.runs)
                if args.chdb_python else {"failed": "skipped (--chdb-python '')"})
        on_clickhouse = (bench_hearth_clickhouse(args.hearth_bin, jsonl, work, args.runs)
                         if not args.no_clickhouse else {"errors": {}})
        print_report(args, hearth, duck, chdb, on_clickhouse)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
