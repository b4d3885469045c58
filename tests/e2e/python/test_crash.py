"""Crash safety: SIGKILL the server again and again while clients import; no acknowledged event may
be lost, none may be duplicated, nothing unknown may appear.

Loader threads POST /import?strict=1 batches (JSON array bodies of BATCH_SIZE events, unique
$insert_id, times within the last day, Basic auth with the project secret) and record which batches
got a 200 acknowledgement. Batches that failed (connection reset, refused, timeout, 5xx) are sent
again after the restart, unchanged, as an SDK would. Meanwhile the test SIGKILLs the server at
random moments and restarts it on the same data directory, CYCLES times. At the end every batch has
been acknowledged, and the export must hold every generated event exactly once.

HEARTH_CRASH_SEED fixes the random schedule (the seed is printed on failure).
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import random
import sqlite3
import time

from hearth_harness import utc_date
from import_loader import Loader

CYCLES = int(os.environ.get("HEARTH_CRASH_CYCLES", "20"))


def test_sigkill_loses_no_acknowledged_event(hearth_factory):
    seed = int(os.environ.get("HEARTH_CRASH_SEED", str(time.time_ns() % 1_000_000_007)))
    rng = random.Random(seed)
    server = hearth_factory(name="crash")
    loader = Loader(server, random.Random(seed + 1))
    loader.start()

    kills = 0
    acked_when_killed = []
    ready_times = []
    started = time.monotonic()
    for cycle in range(CYCLES):
        # Usually count the delay from readiness, every fourth cycle from the spawn, which may kill
        # the server while it is still recovering.
        time.sleep(rng.uniform(0.05, 0.8))
        server.kill()
        kills += 1
        with loader.lock:
            acked_when_killed.append(len(loader.acked))
        server.spawn()
        if cycle % 4 == 3:
            continue  # the next kill is timed from this spawn
        ready_times.append(server.wait_ready())
    # The last cycle may not have waited: the final instance must come up.
    ready_times.append(server.wait_ready())

    with loader.lock:
        loader.generating = False
    finished = loader.join(timeout=90)
    context = (f"seed={seed} kills={kills} batches={len(loader.batches)} acked={len(loader.acked)} "
               f"failed_attempts={loader.failures} acked_when_killed={acked_when_killed} "
               f"ready_s={[round(t, 2) for t in ready_times]} elapsed={time.monotonic() - started:.1f}s")
    assert finished, f"loader could not get every batch acknowledged within 90 s after the last restart; {context}"
    assert not loader.unexpected, f"unexpected answers: {loader.unexpected[:5]}; {context}"
    assert kills == CYCLES
    assert len(loader.acked) == len(loader.batches)
    assert acked_when_killed[-1] > 0, f"no batch was ever acknowledged between kills; {context}"
    assert loader.failures > 0, f"no request was ever interrupted: the test proved nothing; {context}"

    # One more crash right after the last acknowledgement, then read everything back.
    server.kill()
    server.start()

    expected = {}
    for batch in loader.batches.values():
        for event in batch.events:
            expected[event["properties"]["$insert_id"]] = event
    times = [e["properties"]["time"] for e in expected.values()]
    exported = server.export(utc_date(min(times)), utc_date(max(times)))

    counts = collections.Counter(e.get("properties", {}).get("$insert_id") for e in exported)
    duplicated = {k: n for k, n in counts.items() if n > 1}
    unknown = [k for k in counts if k not in expected]
    missing = [k for k in expected if k not in counts]
    acked_ids = {e["properties"]["$insert_id"] for n in loader.acked for e in loader.batches[n].events}
    missing_acked = [k for k in missing if k in acked_ids]
    assert not missing_acked, (
        f"{len(missing_acked)} acknowledged events lost (of {len(acked_ids)}), e.g. {missing_acked[:5]}; {context}"
    )
    assert not duplicated, f"{len(duplicated)} events exported more than once, e.g. {list(duplicated.items())[:5]}; {context}"
    assert not unknown, f"{len(unknown)} exported events were never sent, e.g. {unknown[:5]}; {context}"
    assert not missing, f"{len(missing)} events missing; {context}"
    assert len(exported) == len(expected) == len(acked_ids)

    for event in exported:
        props = event["properties"]
        sent = expected[props["$insert_id"]]
        assert event["event"] == sent["event"]
        assert props["distinct_id"] == sent["properties"]["distinct_id"]
        assert abs(props["time"] - sent["properties"]["time"]) <= 0.0011, (props["time"], sent["properties"]["time"])
        assert (props["batch"], props["seq"], props["amount"]) == (
            sent["properties"]["batch"], sent["properties"]["seq"], sent["properties"]["amount"])
    print(f"crash test: {context}; exported {len(exported)} events")


def identity_links(data_dir) -> dict:
    """The identity links durable in the server's metadata database, as {distinct id: canonical id}:
    those merged into identity_links and, where an id has none there, its earliest link still waiting
    in identity_links_recent."""
    with contextlib.closing(sqlite3.connect(data_dir / "meta.sqlite")) as db:
        links = dict(db.execute("SELECT distinct_id, canonical_id FROM identity_links"))
        for distinct_id, canonical_id in db.execute(
                "SELECT distinct_id, canonical_id FROM identity_links_recent ORDER BY seq"):
            links.setdefault(distinct_id, canonical_id)
        return links


def test_sigkill_keeps_the_identity_links_of_acknowledged_events(hearth_factory):
    """Identity links wait in memory to be committed many at a time; until then the WAL holds the
    events they come from. Events acknowledged just before a SIGKILL must still link each device to
    its user after the restart, as if no crash had happened."""
    # No time-based flush during the test: the links are committed by nothing but the restart.
    server = hearth_factory(name="links", env={"HEARTH_STORE__FLUSH_INTERVAL_MS": "3600000"})
    now_ms = int(time.time() * 1000)
    events = [
        {"event": "Sign Up", "properties": {
            "time": now_ms - 60_000 + n, "distinct_id": f"user-{n}", "$device_id": f"device-{n}",
            "$user_id": f"user-{n}", "$insert_id": f"links-{n:08d}"}}
        for n in range(300)
    ]
    response = server.request("POST", "/import", query={"strict": "1"}, body=json.dumps(events),
                              headers={"Content-Type": "application/json"}, auth=server.secret_auth)
    assert response.status == 200, response.text()
    server.kill()

    expected = {f"$device:device-{n}": f"user-{n}" for n in range(300)}
    before = identity_links(server.data_dir)
    assert not expected.items() <= before.items(), (
        "the links were already committed at the kill: this test no longer exercises their replay")
    server.start()
    after = identity_links(server.data_dir)
    missing = {k: v for k, v in expected.items() if after.get(k) != v}
    assert not missing, f"{len(missing)} links of acknowledged events lost in the crash, e.g. {list(missing.items())[:3]}"
    exported = server.export(utc_date(now_ms / 1000 - 120), utc_date(now_ms / 1000))
    assert len(exported) == 300
