"""The ClickHouse backend against a real ClickHouse (Debian's 18.16, started by the test, and a
current engine, PyPI's chdb behind chdb_server.py: every test runs on both): events
from the official Python SDK sent to two Hearth nodes land once; two nodes sharing ClickHouse and
PostgreSQL (Debian's, started by the test too), SIGKILLed in turn mid-batch, and a ClickHouse
outage, lose no acknowledged event; `hearth migrate` moves a project's events to ClickHouse and back
without losing or doubling any.
"""

from __future__ import annotations

import collections
import json
import os
import random
import subprocess
import time
import urllib.parse

import pytest
from mixpanel import BufferedConsumer, Consumer, Mixpanel

from bench_reports import BENCH_SPECS, WHOLE
from chdb_server import ChdbServer
from clickhouse_harness import ClickHouse
from postgres_harness import Postgres
from reports_sql import describe_difference
from hearth_harness import HEARTH_BIN, REPO_ROOT
from import_loader import Loader

DAY = 86400
DATABASE = "hearth_e2e"
FAST_FLUSH = {"HEARTH_STORE__FLUSH_INTERVAL_MS": "300"}


@pytest.fixture(params=["clickhouse-18.16", "chdb"])
def clickhouse(request, tmp_path):
    """Debian's ClickHouse 18.16, and a current engine (PyPI's chdb behind chdb_server.py): every
    test of the backend runs on both."""
    server = (ClickHouse(tmp_path / "clickhouse") if request.param == "clickhouse-18.16" else ChdbServer(tmp_path / "chdb")).start()
    yield server
    server.kill()


def stored_counts(clickhouse: ClickHouse, project: int) -> collections.Counter:
    """$insert_id -> copies, as every read sees them (FINAL: deduplicated)."""
    rows = clickhouse.query(f"SELECT insert_id, count() AS n FROM {DATABASE}.events FINAL "
                            f"WHERE project = {project} GROUP BY insert_id")
    return collections.Counter({row["insert_id"]: row["n"] for row in rows})


def wait_for_rows(clickhouse: ClickHouse, project: int, expected: set, timeout=30.0) -> collections.Counter:
    deadline = time.monotonic() + timeout
    while True:
        counts = stored_counts(clickhouse, project)
        if expected <= set(counts) or time.monotonic() > deadline:
            return counts
        time.sleep(0.25)


def gdpr(node, method, path, body=None):
    """A call to Mixpanel's GDPR API on a node, with the project's token and secret."""
    return node.request(method, path, query={"token": node.token}, body=json.dumps(body) if body is not None else None,
                        headers={"Content-Type": "application/json"}, auth=f"Bearer {node.secret}")


def erase_and_wait(node, distinct_ids: list) -> None:
    """A GDPR deletion through `node`, waited for until its job reports it done."""
    deleted = gdpr(node, "POST", "/api/app/data-deletions/v3.0/", {"distinct_ids": distinct_ids, "compliance_type": "GDPR"})
    assert deleted.status == 200, deleted
    deadline, status = time.monotonic() + 60, None
    while time.monotonic() < deadline and status != "SUCCESS":
        time.sleep(0.25)
        status = gdpr(node, "GET", f"/api/app/data-deletions/v3.0/{deleted.json()['results']['task_id']}").json()["results"]["status"]
    assert status == "SUCCESS", status


def urls(server) -> dict:
    return {"events_url": server.url + "/track", "import_url": server.url + "/import",
            "people_url": server.url + "/engage", "groups_url": server.url + "/groups"}


def test_two_nodes_keep_sdk_events_in_clickhouse_once(hearth_factory, clickhouse):
    env = {**clickhouse.hearth_env(DATABASE), **FAST_FLUSH}
    node_a = hearth_factory(name="shared", env=env)
    node_b = hearth_factory(name="shared", env=env)
    assert node_a.project_id == node_b.project_id, "both nodes' first project has the same id"
    project = node_a.project_id

    # /track through the SDK's Consumer, to node A only.
    mp_a = Mixpanel(node_a.token, consumer=Consumer(**urls(node_a)))
    for i in range(40):
        mp_a.track(f"user-{i % 5}", "Viewed Page", {"page": f"/p/{i}", "$insert_id": f"track-{i}"})

    # The same import batch through each node (a client retrying on another node).
    now = int(time.time())
    sent = {}
    for node in (node_a, node_b):
        consumer = BufferedConsumer(max_size=50, **urls(node))
        mp = Mixpanel(node.token, consumer=consumer)
        for i in range(120):
            properties = {"plan": ["free", "pro"][i % 2], "seats": i, "note": "Grüße \"quoted\" \t tab",
                          "$insert_id": f"import-{i}"}
            sent[f"import-{i}"] = properties
            mp.import_data(None, f"org-user-{i % 9}", "Created API Key", now - 2 * DAY + i,
                           properties=properties, api_secret=node.secret)
        consumer.flush()

    # An address as a property: used for geolocation, then dropped before storage.
    body = urllib.parse.urlencode({"data": json.dumps({"event": "With IP", "properties": {
        "token": node_b.token, "distinct_id": "ip-user", "ip": "203.0.113.77", "$insert_id": "with-ip"}})})
    answer = node_b.request("POST", "/track", body=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status == 200 and answer.text.strip() == "1", answer

    expected = {f"track-{i}" for i in range(40)} | set(sent) | {"with-ip"}
    counts = wait_for_rows(clickhouse, project, expected)
    assert set(counts) == expected, f"missing {sorted(expected - set(counts))[:5]}, unknown {sorted(set(counts) - expected)[:5]}"
    assert max(counts.values()) == 1, [k for k, n in counts.items() if n > 1][:5]

    rows = clickhouse.query(f"SELECT insert_id, event, distinct_id, time_ms, property_keys, property_values "
                            f"FROM {DATABASE}.events FINAL WHERE project = {project} AND event = 'Created API Key'")
    assert len(rows) == 120
    for row in rows:
        i = int(row["insert_id"].split("-")[1])
        properties = {k: json.loads(v) for k, v in zip(row["property_keys"], row["property_values"])}
        assert row["distinct_id"] == f"org-user-{i % 9}"
        assert row["time_ms"] == (now - 2 * DAY + i) * 1000
        for key in ("plan", "seats", "note"):
            assert properties[key] == sent[row["insert_id"]][key], (key, properties)
    leaked = clickhouse.query(f"SELECT count() AS n FROM {DATABASE}.events WHERE has(property_keys, 'ip') "
                              f"OR arrayExists(v -> position(v, '203.0.113.77') > 0, property_values)")
    assert leaked == [{"n": 0}], "the IP address reached ClickHouse"

    # GDPR through Mixpanel's API on this backend: a retrieval returns the person's events from
    # ClickHouse; a deletion removes them from ClickHouse itself, not only from what reads show.
    created = gdpr(node_a, "POST", "/api/app/data-retrievals/v3.0/", {"distinct_ids": ["user-1"], "compliance_type": "GDPR"})
    assert created.status == 200, created
    retrieved = gdpr(node_a, "GET", f"/api/app/data-retrievals/v3.0/{created.json()['results']['task_id']}")
    assert retrieved.status == 200, retrieved
    person = retrieved.json()["results"]["result"][0]
    assert sorted(e["properties"]["$insert_id"] for e in person["events"]) == sorted(f"track-{i}" for i in range(1, 40, 5)), person
    erase_and_wait(node_a, ["user-1"])
    left = clickhouse.query(f"SELECT distinct_id, count() AS n FROM {DATABASE}.events WHERE project = {project} "
                            f"AND distinct_id IN ('user-1', 'user-2') GROUP BY distinct_id")
    assert left == [{"distinct_id": "user-2", "n": 8}], left



@pytest.fixture
def postgres():
    server = Postgres().start()
    yield server
    server.stop()


# Nodes that share their metadata share the master key too (the key store is in PostgreSQL).
MASTER_KEY = {"HEARTH_MASTER_KEY": "4f" * 32}


def test_two_nodes_lose_no_acknowledged_event_to_kills_or_a_clickhouse_outage(hearth_factory, clickhouse, postgres):
    """Two nodes share ClickHouse and PostgreSQL (one project, one key store); each takes its own
    import load; they are SIGKILLed in turn mid-batch, and ClickHouse goes away for a while."""
    seed = int(os.environ.get("HEARTH_CRASH_SEED", str(time.time_ns() % 1_000_000_007)))
    rng = random.Random(seed)
    env = {**clickhouse.hearth_env(DATABASE), **postgres.hearth_env(), **MASTER_KEY, **FAST_FLUSH}
    node_a = hearth_factory(name="crash", env=env)
    node_b = hearth_factory(name="crash", env=env, project=node_a.project)
    loaders = [Loader(node, random.Random(seed + 1 + n)) for n, node in enumerate((node_a, node_b))]
    for loader in loaders:
        loader.start()

    def acked_count() -> int:
        return sum(len(loader.acked) for loader in loaders)

    for cycle in range(6):
        time.sleep(rng.uniform(0.2, 0.9))
        if cycle == 2:
            # ClickHouse goes away for a while: the nodes keep acknowledging from their WALs.
            clickhouse.kill()
            acked_before = acked_count()
            time.sleep(1.5)
            acked_during_outage = acked_count() - acked_before
            clickhouse.start()
        node = (node_a, node_b)[cycle % 2]
        node.kill()
        node.start()
    for loader in loaders:
        with loader.lock:
            loader.generating = False
    for loader in loaders:
        assert loader.join(timeout=90), f"seed={seed}: a loader could not finish"
        assert not loader.unexpected, loader.unexpected[:5]
    assert acked_during_outage > 0, f"seed={seed}: nothing was acknowledged while ClickHouse was down"

    acked = {e["properties"]["$insert_id"] for loader in loaders for n in loader.acked for e in loader.batches[n].events}
    everything = {e["properties"]["$insert_id"] for loader in loaders for b in loader.batches.values() for e in b.events}
    counts = wait_for_rows(clickhouse, node_a.project_id, acked, timeout=60)
    missing = acked - set(counts)
    assert not missing, f"seed={seed}: {len(missing)} acknowledged events lost, e.g. {sorted(missing)[:5]}"
    assert set(counts) <= everything, "events that were never sent"
    assert max(counts.values()) == 1
    assert all(loader.failures > 0 for loader in loaders), "a node's requests were never interrupted: the kills proved nothing"

    # Either node answers reports on the shared project, and both say the same.
    spec = {"report": "insights", "from": "2000-01-01", "to": "2100-12-31", "interval": "month",
            "events": [{"event": "$any", "measure": "total"}]}
    answers = [node.request("POST", "/api/v1/query", body=json.dumps(spec), headers={"Content-Type": "application/json"},
                            auth=node.secret_auth) for node in (node_a, node_b)]
    assert all(answer.status == 200 for answer in answers), answers
    assert answers[0].json() == answers[1].json()
    assert sum(answers[0].json()["series"][0]["points"].values()) == len(counts)


def test_an_erasure_holds_back_the_persons_events_another_node_still_held(hearth_factory, clickhouse, postgres):
    """Node B holds a person's events in its WAL and is down while node A erases the person (the
    rows in ClickHouse deleted, the erasure finished). When B comes back and flushes, the person's
    events from before the erasure stay out of ClickHouse; everyone else's, and the person's
    events sent after the erasure, arrive."""
    env = {**clickhouse.hearth_env(DATABASE), **postgres.hearth_env(), **MASTER_KEY, **FAST_FLUSH}
    node_a = hearth_factory(name="erase", env=env)
    node_b = hearth_factory(name="erase", env={**env, "HEARTH_STORE__FLUSH_INTERVAL_MS": "600000"}, project=node_a.project)
    project = node_a.project_id
    now = time.time()

    def batch(prefix, n, start):
        return [{"event": "Held", "properties": {"time": round(start + i, 3), "distinct_id": ("victim" if i % 2 else "bystander"),
                                                  "$insert_id": f"{prefix}-{i}"}} for i in range(n)]

    def send(node, events):
        answer = node.request("POST", "/import?strict=1", body=json.dumps(events),
                              headers={"Content-Type": "application/json"}, auth=node.secret_auth)
        assert answer.status == 200, answer

    held_by_b = batch("b", 20, now - 300)
    send(node_b, held_by_b)
    node_b.kill()  # acknowledged, in B's WAL only
    sent_to_a = batch("a", 20, now - 200)
    send(node_a, sent_to_a)
    assert set(wait_for_rows(clickhouse, project, {e["properties"]["$insert_id"] for e in sent_to_a})) \
        >= {e["properties"]["$insert_id"] for e in sent_to_a}
    erase_and_wait(node_a, ["victim"])
    assert not [r for r in clickhouse.query(f"SELECT distinct_id FROM {DATABASE}.events WHERE project = {project}")
                if r["distinct_id"] == "victim"], "the erasure left rows in ClickHouse"

    # B comes back: its WAL is replayed and flushed, through the gate.
    node_b.env["HEARTH_STORE__FLUSH_INTERVAL_MS"] = "300"
    node_b.start()
    after = [{"event": "Held", "properties": {"time": round(time.time() + 1, 3), "distinct_id": "victim", "$insert_id": "b-after"}}]
    send(node_b, after)
    expected = {e["properties"]["$insert_id"] for e in held_by_b + sent_to_a if e["properties"]["distinct_id"] == "bystander"}
    counts = wait_for_rows(clickhouse, project, expected | {"b-after"})
    assert set(counts) == expected | {"b-after"}, sorted(set(counts) ^ (expected | {"b-after"}))
    assert "held back events of erased people" in node_b.log_path.read_text("utf-8", "replace"), "the gate did not act: the test proved nothing"


def test_a_policy_rewrite_reaches_the_events_in_clickhouse(hearth_factory, clickhouse, tmp_path):
    """`hearth privacy apply --rewrite` beside a running node: the stored events come under the
    new policy in ClickHouse itself (free-form personal data and the email redacted, an event the
    policy drops deleted), and the old values leave ClickHouse's files, not only its reads."""
    env = {**clickhouse.hearth_env(DATABASE), **FAST_FLUSH}
    node = hearth_factory(name="rewrite", env=env)
    cli_env = env
    open_policy, strict_policy = tmp_path / "open.toml", tmp_path / "strict.toml"
    open_policy.write_text('pii_scan = "off"\n[properties]\n')
    strict_policy.write_text('[events."Debug Dump"]\ndrop = true\n')
    target = ["--project", "rewrite", "--data", str(node.data_dir)]
    run_hearth("privacy", "set", *target, str(open_policy), env=cli_env)
    now = time.time()
    events = [{"event": "Note", "properties": {"time": round(now - 60, 3), "distinct_id": "u1", "$insert_id": "note-1",
                                               "note": "call +44 20 7946 0958", "$email": "p1@example.com"}},
              {"event": "Note", "properties": {"time": round(now - 50, 3), "distinct_id": "u2", "$insert_id": "note-2",
                                               "note": "nothing personal", "plan": "pro"}},
              {"event": "Debug Dump", "properties": {"time": round(now - 40, 3), "distinct_id": "u2", "$insert_id": "dump-1",
                                                     "blob": "x" * 40}}]
    deadline = time.monotonic() + 20
    while True:  # the node sees the open policy within a second
        answer = node.request("POST", "/import?strict=1", body=json.dumps(events), headers={"Content-Type": "application/json"},
                              auth=node.secret_auth)
        assert answer.status == 200, answer
        stored = export_all(node)
        if stored.get("note-1", {}).get("properties", {}).get("$email") == "p1@example.com" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert stored["note-1"]["properties"]["note"] == "call +44 20 7946 0958", stored
    assert set(wait_for_rows(clickhouse, node.project_id, {"note-1", "note-2", "dump-1"})) == {"note-1", "note-2", "dump-1"}

    run_hearth("privacy", "set", *target, str(strict_policy), env=cli_env)
    rewritten = run_hearth("privacy", "apply", *target, "--rewrite", env=cli_env)
    assert "1 days read, 1 rewritten" in rewritten.stdout and "1 dropped" in rewritten.stdout, rewritten.stdout
    after = export_all(node)
    assert set(after) == {"note-1", "note-2"}, sorted(after)
    assert after["note-1"]["properties"]["note"] == "call [phone]", after["note-1"]
    assert after["note-1"]["properties"]["$email"] == "[email]", after
    assert "p1@example.com" not in json.dumps(after), after
    assert after["note-2"]["properties"]["plan"] == "pro"
    # Not in ClickHouse's files either: every physical row, merged or not.
    leftovers = clickhouse.query(f"SELECT insert_id FROM {DATABASE}.events WHERE project = {node.project_id} "
                                 f"AND (arrayExists(v -> position(v, '7946') > 0 OR position(v, 'p1@example.com') > 0, property_values) "
                                 f"OR event = 'Debug Dump')")
    assert leftovers == [], leftovers
    assert stored_counts(clickhouse, node.project_id) == {"note-1": 1, "note-2": 1}


def run_hearth(*args, env=None, timeout=300) -> subprocess.CompletedProcess:
    result = subprocess.run([HEARTH_BIN, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **(env or {})})
    assert result.returncode == 0, f"hearth {' '.join(args)} failed ({result.returncode}): {result.stderr[-3000:]}"
    return result


def export_all(server) -> dict:
    events = server.export("2000-01-01", "2100-12-31")
    return {e["properties"]["$insert_id"]: e for e in events}


def test_migrate_to_clickhouse_and_back_keeps_every_event_once(hearth_factory, clickhouse):
    ch_env = clickhouse.hearth_env(DATABASE)
    source = hearth_factory(name="moving", start=False)
    run_hearth("gen", "--events", "20000", "--project", "moving", "--data", str(source.data_dir))
    source.start()
    original = export_all(source)
    assert len(original) > 15000
    source.stop()

    moved = run_hearth("migrate", "--to", "clickhouse", "--data", str(source.data_dir), env=ch_env)
    assert f"copied {len(original)} events" in moved.stderr, moved.stderr
    counts = stored_counts(clickhouse, source.project_id)
    assert set(counts) == set(original) and max(counts.values()) == 1

    # Resuming: a rerun copies nothing; forgetting the last days copies just those again.
    again = run_hearth("migrate", "--to", "clickhouse", "--data", str(source.data_dir), env=ch_env)
    assert "copied 0 events (0 days)" in again.stderr, again.stderr
    progress_path = source.data_dir / "migrate-to-clickhouse.json"
    progress = json.loads(progress_path.read_text())
    forgotten = sorted(progress["done"])[-10:]
    progress["done"] = sorted(progress["done"])[:-10]
    progress_path.write_text(json.dumps(progress))
    resumed = run_hearth("migrate", "--to", "clickhouse", "--data", str(source.data_dir), env=ch_env)
    assert "(10 days)" in resumed.stderr and f"{len(progress['done'])} days were already done" in resumed.stderr, resumed.stderr
    assert len(forgotten) == 10
    assert stored_counts(clickhouse, source.project_id) == counts, "a resumed copy doubled events"

    # And back, into a fresh node's embedded store.
    target = hearth_factory(name="moving", start=False)
    assert target.project_id == source.project_id
    back = run_hearth("migrate", "--to", "embedded", "--data", str(target.data_dir), env=ch_env)
    assert f"copied {len(original)} events" in back.stderr, back.stderr
    target.start()
    returned = export_all(target)
    assert returned.keys() == original.keys()
    for insert_id, event in original.items():
        assert returned[insert_id] == event, (insert_id, returned[insert_id], event)


def test_a_node_starts_while_clickhouse_is_down_and_catches_up(hearth_factory, clickhouse):
    clickhouse.kill()
    node = hearth_factory(name="early", env={**clickhouse.hearth_env("hearth_late"), **FAST_FLUSH})
    now = time.time()
    batch = [{"event": "Early", "properties": {"time": round(now - i, 3), "distinct_id": f"u{i % 4}",
                                                "$insert_id": f"early-{i}"}} for i in range(100)]
    answer = node.request("POST", "/import?strict=1", body=json.dumps(batch),
                          headers={"Content-Type": "application/json"}, auth=node.secret_auth)
    assert answer.status == 200 and answer.json()["num_records_imported"] == 100, answer
    clickhouse.start()
    rows = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            rows = clickhouse.query("SELECT insert_id FROM hearth_late.events FINAL")
        except AssertionError:
            rows = []  # the node has not created the database yet
        if len(rows) >= 100:
            break
        time.sleep(0.5)
    assert sorted(r["insert_id"] for r in rows) == sorted(f"early-{i}" for i in range(100))


# Insights that are translated to ClickHouse SQL: the four of the reference reports, and more
# intervals, filters and breakdowns. In a zone with a DST change in the range (2025-03-09).
INSIGHTS_SPECS = {
    name: spec for name, spec in BENCH_SPECS.items() if spec["report"] == "insights"
}
FUNNEL_SPECS = {
    "funnel_4_any": BENCH_SPECS["funnel_4_any"],
    "funnel_first_filtered": {"report": "funnel", **WHOLE, "window": "36h",
                              "steps": [{"event": "Page View"}, {"event": "Sign Up", "where": [{"property": "plan", "op": "set"}]},
                                        {"event": "$any"}],
                              "where": [{"property": "mp_country_code", "op": "neq", "value": "FR"}]},
    "funnel_any_from_page_views": {"report": "funnel", **WHOLE, "window": "1d", "entry": "any",
                                   "steps": [{"event": "Page View"}, {"event": "Create API Key"}, {"event": "API Request"}]},
    "funnel_breakdown_by_country": {"report": "funnel", **WHOLE, "window": "7d", "entry": "any", "breakdown": "mp_country_code",
                                    "limit": 5, "steps": [{"event": "Sign Up"}, {"event": "Create API Key"}]},
    "funnel_breakdown_by_plan": {"report": "funnel", **WHOLE, "breakdown": "plan",
                                 "steps": [{"event": "Page View"}, {"event": "Sign Up"}, {"event": "Upgrade Plan"}]},
    "funnel_by_profile_plan": {"report": "funnel", **WHOLE, "breakdown": {"property": "plan", "source": "profile"},
                               "steps": [{"event": "Sign Up"}, {"event": "Create API Key"}, {"event": "API Request"}]},
    "funnel_of_a_cohort": {"report": "funnel", **WHOLE, "where": [{"cohort": 1}],
                           "steps": [{"event": "Sign Up"}, {"event": "Create API Key"}, {"event": "Upgrade Plan"}]},
    "funnel_by_token_buckets": {"report": "funnel", **WHOLE, "breakdown": {"property": "tokens", "buckets": [100, 1000, 10000]},
                                "steps": [{"event": "API Request"}, {"event": "Upgrade Plan"}]},
    "funnel_any_order_held": {"report": "funnel", **WHOLE, "order": "any", "hold_constant": ["mp_country_code"],
                              "steps": [{"event": "Sign Up"}, {"event": "API Request"}, {"event": "Create API Key"}]},
    "funnel_exclusions": {"report": "funnel", **WHOLE, "entry": "any", "window": "3d",
                          "steps": [{"event": "Page View"}, {"event": "Sign Up"}, {"event": "Create API Key"}],
                          "exclusions": [{"event": "View Usage", "after_step": 1, "before_step": 3},
                                         {"event": "Page View", "after_step": 2, "before_step": 3,
                                          "where": [{"property": "$os", "op": "set"}]}]},
    "funnel_of_companies": {"report": "funnel", **WHOLE, "unit": {"group": "company_id"}, "entry": "any",
                            "steps": [{"event": "Create API Key"}, {"event": "API Request"}, {"event": "Upgrade Plan"}]},
    "funnel_totals": {"report": "funnel", **WHOLE, "counting": "totals", "window": "1d",
                      "steps": [{"event": "Page View"}, {"event": "Sign Up"}, {"event": "Create API Key"}]},
    "funnel_totals_of_requests": {"report": "funnel", "from": "2025-02-01", "to": "2025-03-15", "counting": "totals",
                                  "window": "30m", "steps": [{"event": "$any"}, {"event": "API Request"}, {"event": "View Usage"}]},
    "funnel_totals_any_order_held_by_country": {
        "report": "funnel", **WHOLE, "counting": "totals", "order": "any", "window": "2d",
        "hold_constant": ["plan"], "breakdown": "mp_country_code", "limit": 5,
        "steps": [{"event": "Sign Up"}, {"event": "API Request"}, {"event": "Create API Key"}],
        "exclusions": [{"event": "View Usage", "after_step": 1, "before_step": 3}]},
    "funnel_by_cohort": {"report": "funnel", **WHOLE, "breakdown": {"cohort": [2, 1]},
                         "steps": [{"event": "Sign Up"}, {"event": "Create API Key"}, {"event": "API Request"}]},
    "funnel_totals_by_cohort": {"report": "funnel", **WHOLE, "breakdown": {"cohort": [1, 2]}, "counting": "totals",
                                "entry": "any", "steps": [{"event": "Page View"}, {"event": "Sign Up"}]},
    "funnel_first_short_window": {"report": "funnel", "from": "2025-02-01", "to": "2025-03-15", "window": "90m",
                                  "steps": [{"event": "Sign Up"}, {"event": "Create API Key"}, {"event": "API Request"}]},
}

RETENTION_SPECS = {
    "retention_weekly": BENCH_SPECS["retention_weekly"],
    "retention_daily_any_on_or_after": {"report": "retention", "from": "2025-02-01", "to": "2025-02-20",
                                        "born": {"event": "Sign Up"}, "return": {"event": "$any"},
                                        "unit": "day", "periods": 10, "mode": "on_or_after"},
    "retention_of_pro_people": {"report": "retention", **WHOLE, "born": {"event": "Sign Up"}, "return": {"event": "API Request"},
                                "where": [{"property": "plan", "source": "profile", "op": "eq", "value": "pro"}]},
    "retention_of_a_cohort": {"report": "retention", **WHOLE, "born": {"event": "Sign Up"}, "return": {"event": "$any"},
                              "where": [{"any": [{"cohort": 2}, {"property": "mp_country_code", "op": "eq", "value": "US"}]}]},
    "retention_of_companies": {"report": "retention", **WHOLE, "born": {"event": "Create API Key"},
                               "return": {"event": "API Request"}, "unit": "week", "periods": 6,
                               "count": {"group": "company_id"}},
    "retention_recurring_daily": {"report": "retention", "from": "2025-02-01", "to": "2025-03-10", "born": {"event": "API Request"},
                                  "return": {"event": "$any"}, "unit": "day", "periods": 7, "retention": "recurring",
                                  "mode": "on_or_after"},
    "retention_monthly_same_event": {"report": "retention", **WHOLE, "born": {"event": "API Request"},
                                     "return": {"event": "API Request", "where": [{"property": "plan", "op": "set"}]},
                                     "unit": "month", "periods": 3},
}

FLOWS_SPECS = {
    "flows_after_sign_up": {"report": "flows", **WHOLE, "anchor": {"event": "Sign Up"}, "steps": 4},
    "flows_before_upgrade": {"report": "flows", **WHOLE, "anchor": {"event": "Upgrade Plan"}, "direction": "before",
                             "steps": 3, "window": "7d"},
    "flows_totals_filtered": {"report": "flows", "from": "2025-02-01", "to": "2025-02-28", "counting": "totals",
                              "anchor": {"event": "Create API Key", "where": [{"property": "plan", "op": "set"}]},
                              "where": [{"property": "mp_country_code", "op": "neq", "value": "US"}], "steps": 2, "limit": 7},
}

INSIGHTS_SPECS.update({
    "hourly_two_days": {"report": "insights", "from": "2025-03-08", "to": "2025-03-09", "interval": "hour",
                        "events": [{"event": "Page View", "measure": "total"}, {"event": "$any", "measure": "uniques"}]},
    "monthly_by_plan": {"report": "insights", **WHOLE, "interval": "month",
                        "events": [{"event": "API Request", "measure": "uniques"}], "breakdown": "plan"},
    "formulas_and_compare": {"report": "insights", "from": "2025-02-01", "to": "2025-02-28", "interval": "day",
                             "events": [{"event": "API Request", "measure": "total"}, {"event": "$any", "measure": "uniques"}],
                             "breakdown": "$browser", "limit": 3, "other": True,
                             "formulas": [{"name": "per person", "expression": "A / B"}, {"name": "x", "expression": "(A - B) * 2 + 1"}],
                             "compare": "previous_period"},
    "top_countries_and_other": {"report": "insights", **WHOLE, "interval": "month",
                                "events": [{"event": "Sign Up", "measure": "uniques"}], "breakdown": "mp_country_code",
                                "limit": 4, "other": True},
    "active_people": {"report": "insights", "from": "2025-02-10", "to": "2025-03-20", "interval": "day",
                      "events": [{"event": "$any", "measure": "dau"}, {"event": "API Request", "measure": "wau"},
                                 {"event": "$any", "measure": "mau"}],
                      "breakdown": "plan", "limit": 2, "other": True},
    "frequency": {"report": "insights", **WHOLE, "interval": "week",
                  "events": [{"event": "API Request", "measure": "frequency"},
                             {"event": "API Request", "measure": "frequency", "aggregate": "median"},
                             {"event": "Page View", "measure": "frequency", "aggregate": "p90"},
                             {"event": "$any", "measure": "frequency", "aggregate": "max"}],
                  "breakdown": "mp_country_code", "limit": 3,
                  "formulas": [{"name": "spread", "expression": "D - B"}]},
    "by_profile_plan": {"report": "insights", **WHOLE, "interval": "week",
                        "events": [{"event": "API Request", "measure": "uniques"}],
                        "breakdown": {"property": "plan", "source": "profile"},
                        "where": [{"property": "$country_code", "source": "profile", "op": "in", "value": ["US", "DE", "IN"]}]},
    "cohort_filters": {"report": "insights", **WHOLE, "interval": "week",
                       "events": [{"event": "API Request", "measure": "uniques", "where": [{"cohort": 1}]},
                                  {"event": "$any", "measure": "total", "where": [{"not_cohort": 2}]},
                                  {"event": "Page View", "measure": "uniques", "where": [{"cohort": 2}]}]},
    "latency_buckets": {"report": "insights", **WHOLE, "interval": "month",
                        "events": [{"event": "API Request", "measure": "total"}, {"event": "API Request", "measure": "uniques"}],
                        "breakdown": {"property": "latency_ms", "buckets": [50, 100.5, 250, 1000]}},
    "by_status_and_version": {"report": "insights", **WHOLE, "interval": "month",
                              "events": [{"event": "API Request", "measure": "total"}], "breakdown": "status"},
    "by_browser_version": {"report": "insights", **WHOLE, "interval": "month",
                           "events": [{"event": "$any", "measure": "uniques"}], "breakdown": "$browser_version", "limit": 6},
    "property_measures": {"report": "insights", **WHOLE, "interval": "week",
                          "events": [{"event": "API Request", "measure": m, "property": "latency_ms"}
                                     for m in ("sum", "avg", "min", "max", "median", "p90")]
                                    + [{"event": "API Request", "measure": "sum", "property": "tokens"}],
                          "breakdown": "mp_country_code", "limit": 4, "other": True,
                          "formulas": [{"name": "per request", "expression": "G / A"}]},
    "by_cohort": {"report": "insights", **WHOLE, "interval": "week",
                  "events": [{"event": "API Request", "measure": "uniques"}, {"event": "$any", "measure": "total"}],
                  "breakdown": {"cohort": [2, 1]}, "limit": 2},
    "by_cohort_and_other": {"report": "insights", **WHOLE, "interval": "month",
                            "events": [{"event": "API Request", "measure": "uniques"}, {"event": "$any", "measure": "total"}],
                            "breakdown": {"cohort": [1, 2]}, "limit": 1, "other": True,
                            "formulas": [{"name": "events per person", "expression": "B / A"}]},
    "companies_by_week": {"report": "insights", **WHOLE, "interval": "week", "unit": {"group": "company_id"},
                          "events": [{"event": "API Request", "measure": "uniques"}, {"event": "$any", "measure": "total"}],
                          "breakdown": "plan"},
    "filters": {"report": "insights", **WHOLE, "interval": "week",
                "events": [{"event": "$any", "measure": "total",
                            "where": [{"property": "mp_country_code", "op": "in", "value": ["US", "DE", "GB"]}]}],
                "where": [{"property": "$current_url", "op": "not_contains", "value": "/docs"},
                          {"any": [{"property": "plan", "op": "neq", "value": "free"},
                                   {"property": "$referring_domain", "op": "contains", "value": "oo"},
                                   {"property": "$os", "op": "set"}]}],
                "breakdown": "$browser"},
})


@pytest.fixture(params=["clickhouse-18.16", "chdb"])
def report_engine(request, tmp_path):
    """Debian's ClickHouse 18.16, and a current engine (PyPI's chdb behind chdb_server.py): the
    report SQL must run on both and answer alike."""
    server = (ClickHouse(tmp_path / "clickhouse") if request.param == "clickhouse-18.16" else ChdbServer(tmp_path / "chdb")).start()
    yield server
    server.kill()


def test_reports_on_clickhouse_equal_the_embedded_engine(hearth_factory, report_engine, tmp_path):
    clickhouse = report_engine
    jsonl, profiles = tmp_path / "gen.jsonl", tmp_path / "profiles.jsonl"
    run_hearth("gen", "--events", "30000", "--out", str(jsonl), "--profiles", str(profiles))
    updates = [json.loads(line) for line in profiles.read_text().splitlines() if line.strip()]
    embedded = hearth_factory(name="reports", start=False)
    in_clickhouse = hearth_factory(name="reports", start=False,
                                   env={**clickhouse.hearth_env("hearth_reports"), **FAST_FLUSH})
    for node in (embedded, in_clickhouse):
        run_hearth("project", "set", "reports", "--timezone", "America/New_York", "--data", str(node.data_dir))
        node.start()
        run_hearth("import", "--url", node.url, str(jsonl), env={"HEARTH_SECRET": node.secret})
        for first in range(0, len(updates), 50):
            batch = [{**update, "$token": node.token} for update in updates[first:first + 50]]
            answer = node.request("POST", "/engage", body=urllib.parse.urlencode({"data": json.dumps(batch)}),
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
            assert answer.status == 200 and answer.text.strip() == "1", answer
    # Saved cohorts, the same ids on both nodes.
    cohorts = [
        {"name": "heavy users", "definition": {"all": [{"did": "API Request", "at_least": 5, "within_days": 30}]}},
        {"name": "pro, never upgraded", "definition": {"all": [{"property": "plan", "op": "eq", "value": "pro"},
                                                               {"did_not": "Upgrade Plan", "from": "2025-01-01", "to": "2025-12-31"}]}},
    ]
    for node in (embedded, in_clickhouse):
        for number, cohort in enumerate(cohorts, 1):
            answer = node.request("POST", "/api/v1/cohorts", body=json.dumps(cohort),
                                  headers={"Content-Type": "application/json"}, auth=node.secret_auth)
            assert answer.status in (200, 201) and answer.json()["id"] == number, answer
    # Every imported event is in ClickHouse once the count stops growing.
    deadline, last, stable_since = time.monotonic() + 60, -1, time.monotonic()
    while time.monotonic() < deadline:
        n = clickhouse.query("SELECT count() AS n FROM hearth_reports.events FINAL")[0]["n"]
        if n != last:
            last, stable_since = n, time.monotonic()
        elif time.monotonic() - stable_since > 2:
            break
        time.sleep(0.25)
    assert last > 25000, last

    def report(node, spec):
        return node.request("POST", "/api/v1/query", body=json.dumps(spec),
                            headers={"Content-Type": "application/json"}, auth=node.secret_auth)

    answers = {}
    for name, spec in {**INSIGHTS_SPECS, **FUNNEL_SPECS, **RETENTION_SPECS, **FLOWS_SPECS}.items():
        expected, got = report(embedded, spec), report(in_clickhouse, spec)
        assert expected.status == 200, (name, expected)
        assert got.status == 200, (name, got)
        assert got.json() == expected.json(), (
            f"{name}: ClickHouse and the embedded engine differ: "
            f"{describe_difference(expected.json(), got.json(), ('embedded', 'ClickHouse'))}")
        answer = expected.json()
        if "paths" in answer:
            counted = [[len(p["events"]) > 1 for p in answer["paths"]]]
        elif "series" in answer:
            counted = [s["points"].values() for s in answer["series"]]
        elif answer.get("segments"):
            counted = [[s["count"] for s in segment["steps"][1:]] for segment in answer["segments"]]
        elif "steps" in answer:
            counted = [[s["count"] for s in answer["steps"][1:]]]
        else:
            counted = [c["counts"][1:] for c in answer["cohorts"]]
        assert any(any(v for v in values) for values in counted), f"{name} counted nothing"
        answers[name] = answer
    # The specs reach what they name: attempts counted again, and the left-out cohort.
    assert answers["funnel_totals"]["steps"][0]["count"] > report(embedded, {
        **FUNNEL_SPECS["funnel_totals"], "counting": "uniques"}).json()["steps"][0]["count"]
    assert [s["segment"] for s in answers["by_cohort_and_other"]["series"]][-1] == "$other", answers["by_cohort_and_other"]
    assert {s["segment"] for s in answers["funnel_by_cohort"]["segments"]} == {1, 2}, answers["funnel_by_cohort"]

    # The event-name list and the live view (a few events of now, on both).
    names = [node.request("GET", "/api/v1/events/names", auth=node.secret_auth) for node in (embedded, in_clickhouse)]
    assert names[0].status == names[1].status == 200, names
    assert names[1].json() == names[0].json() and len(names[0].json()["events"]) > 5, names
    now = time.time()
    live_batch = [{"event": f"Live {i % 3}", "properties": {"time": round(now - 60 + i, 3), "distinct_id": f"live-{i}",
                                                            "$insert_id": f"live-{i}", "$browser": "Firefox",
                                                            "mp_country_code": "NL", "plan": "hidden from the live view"}}
                  for i in range(30)]
    for node in (embedded, in_clickhouse):
        answer = node.request("POST", "/import?strict=1", body=json.dumps(live_batch),
                              headers={"Content-Type": "application/json"}, auth=node.secret_auth)
        assert answer.status == 200, answer
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        lives = [node.request("GET", "/api/v1/events/live", auth=node.secret_auth) for node in (embedded, in_clickhouse)]
        if all(live.status == 200 and len(live.json()["events"]) == 30 for live in lives):
            break
        time.sleep(0.3)
    assert lives[0].json()["events"] and lives[1].json() == lives[0].json(), lives
    assert "plan" not in lives[1].json()["events"][0]["properties"]

    # The people reports: a saved cohort's members, one defined in the request (as of a day,
    # with a profile rule), and activity feeds (a person's ids, profile and newest events).
    listed = set()
    people_specs = {
        "members_saved": {"report": "cohort_members", "cohort": 1, "as_of": "2025-04-05"},
        "members_defined": {"report": "cohort_members", "as_of": "2025-03-01", "limit": 7,
                            "definition": {"any": [{"did": "Upgrade Plan", "within_days": 20},
                                                   {"property": "plan", "op": "eq", "value": "enterprise"}]}},
    }
    for name, spec in people_specs.items():
        expected, got = report(embedded, spec), report(in_clickhouse, spec)
        assert expected.status == got.status == 200, (name, expected, got)
        assert got.json() == expected.json(), (name, describe_difference(expected.json(), got.json(), ("embedded", "ClickHouse")))
        assert 0 < len(expected.json()["members"]) <= spec.get("limit", 1000), (name, expected.json())
        listed.update(got.json()["members"])
    def without_tokens(value):
        """Personal fields as tokens differ between the two nodes (each has its own keys)."""
        if isinstance(value, dict):
            return {k: without_tokens(v) for k, v in value.items()}
        if isinstance(value, list):
            return [without_tokens(v) for v in value]
        return "pii:…" if isinstance(value, str) and value.startswith("pii:") else value

    for person in sorted(listed)[:3] + ["$device:no-such-device"]:
        spec = {"report": "activity", "distinct_id": person, "limit": 12}
        expected, got = report(embedded, spec), report(in_clickhouse, spec)
        assert expected.status == got.status == 200, (person, expected, got)
        expected, got = without_tokens(expected.json()), without_tokens(got.json())
        assert got == expected, (person, describe_difference(expected, got, ("embedded", "ClickHouse")))
        listed.update(got["distinct_ids"])
    assert any(report(in_clickhouse, {"report": "activity", "distinct_id": p}).json()["events"] for p in sorted(listed)[:3])

    # The raw export: the same events from either backend.
    exported = [without_tokens(export_all(node)) for node in (embedded, in_clickhouse)]
    assert len(exported[0]) > 25000
    assert exported[1] == exported[0], describe_difference(exported[0], exported[1], ("embedded", "ClickHouse"))
    listed.update(event["properties"]["distinct_id"] for event in exported[1].values())

    # The CLI reads ClickHouse too, beside the running node: `hearth query` answers as the API
    # does, and `hearth export` writes the same events.
    cli_env = clickhouse.hearth_env("hearth_reports")
    name, spec = next(iter(INSIGHTS_SPECS.items()))
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec))
    printed = run_hearth("query", "--project", "reports", "--data", str(in_clickhouse.data_dir), str(spec_path), env=cli_env)
    assert json.loads(printed.stdout) == report(in_clickhouse, spec).json(), name
    out = tmp_path / "cli-export.jsonl"
    run_hearth("export", "--project", "reports", "--from", "2000-01-01", "--to", "2100-01-01", "--out", str(out),
               "--data", str(in_clickhouse.data_dir), env=cli_env)
    written = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    assert len(written) == len(exported[1]) and {e["properties"]["$insert_id"] for e in written} == set(exported[1])

    # The audit names whose data those reports returned, in numbers every node shares, and the
    # exposure report turns them back into the same people.
    exposure = in_clickhouse.request("GET", "/api/v1/incident/exposure", query={"from": "2000-01-01", "to": "2100-01-01"},
                                     auth=in_clickhouse.secret_auth)
    assert exposure.status == 200, exposure
    exposed = {d for person in exposure.json()["people"] for d in person["distinct_ids"]}
    assert listed <= exposed, sorted(listed - exposed)[:5]
    assert exposure.json()["unresolved_keys"] == 0
