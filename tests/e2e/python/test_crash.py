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

import base64
import collections
import http.client
import json
import os
import random
import threading
import time
import uuid

from hearth_harness import utc_date

CYCLES = int(os.environ.get("HEARTH_CRASH_CYCLES", "20"))
BATCH_SIZE = 200
LOADERS = 2
MAX_BATCHES = 500  # bounds the run: at most 100,000 events
NEW_BATCHES_PER_S = 15  # paces new batches so that load lasts through all the kill cycles
EVENT_NAMES = ["Crash Purchase", "Crash View", "Crash Signup"]


class Batch:
    def __init__(self, number: int, rng: random.Random, now: float):
        self.number = number
        self.events = []
        for i in range(BATCH_SIZE):
            t = round(now - rng.uniform(60, 80000), 3)  # within the last day, ms precision
            self.events.append({
                "event": EVENT_NAMES[(number + i) % len(EVENT_NAMES)],
                "properties": {
                    "time": t,
                    "distinct_id": f"crash-user-{rng.randrange(500)}",
                    "$insert_id": uuid.UUID(int=rng.getrandbits(128)).hex[:32],
                    "batch": number,
                    "seq": i,
                    "amount": rng.randrange(1, 1000) / 100,
                },
            })
        self.body = json.dumps(self.events).encode()
        self.attempts = 0


class Loader:
    def __init__(self, server, rng: random.Random):
        self.server = server
        self.rng = rng
        self.lock = threading.Lock()
        self.batches: dict[int, Batch] = {}
        self.retry: collections.deque[int] = collections.deque()
        self.acked: set[int] = set()
        self.in_flight: set[int] = set()
        self.generating = True
        self.unexpected: list[str] = []
        self.failures = 0
        self.auth = "Basic " + base64.b64encode(f"{server.secret}:".encode()).decode()
        self.threads = [threading.Thread(target=self.run, name=f"loader-{n}", daemon=True)
                        for n in range(LOADERS)]
        self.stop_all = False
        self.last_new = 0.0

    def start(self):
        for thread in self.threads:
            thread.start()

    def next_batch(self) -> Batch | None | str:
        with self.lock:
            if self.retry:
                number = self.retry.popleft()
            elif (self.generating and len(self.batches) < MAX_BATCHES
                  and time.monotonic() - self.last_new >= 1 / NEW_BATCHES_PER_S):
                self.last_new = time.monotonic()
                number = len(self.batches)
                self.batches[number] = Batch(number, self.rng, time.time())
            elif not self.generating and not self.in_flight and len(self.acked) == len(self.batches):
                return "done"
            else:
                return None
            self.in_flight.add(number)
            return self.batches[number]

    def post(self, batch: Batch) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=15)
        try:
            conn.request("POST", "/import?strict=1", body=batch.body, headers={
                "Content-Type": "application/json",
                "Authorization": self.auth,
            })
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def run(self):
        while not self.stop_all:
            batch = self.next_batch()
            if batch == "done":
                return
            if batch is None:
                time.sleep(0.01)
                continue
            batch.attempts += 1
            ok = False
            try:
                status, body = self.post(batch)
                if status == 200:
                    reply = json.loads(body)
                    if reply.get("num_records_imported") == BATCH_SIZE:
                        ok = True
                    else:
                        self.unexpected.append(f"batch {batch.number}: 200 with {body[:300]!r}")
                elif status in (429, 500, 502, 503, 504):
                    pass  # retryable, as the SDKs and Mixpanel's docs say
                else:
                    self.unexpected.append(f"batch {batch.number}: HTTP {status} {body[:300]!r}")
            except (OSError, http.client.HTTPException, ValueError):
                pass  # killed mid-request, or not listening yet: retry later
            with self.lock:
                self.in_flight.discard(batch.number)
                if ok:
                    self.acked.add(batch.number)
                else:
                    self.failures += 1
                    self.retry.append(batch.number)
            if not ok:
                time.sleep(0.02 + self.rng.random() * 0.05)

    def join(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = any(thread.is_alive() for thread in self.threads)
        if alive:
            self.stop_all = True
        return not alive


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
