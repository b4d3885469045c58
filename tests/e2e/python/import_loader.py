"""Import load that survives server crashes: loader threads POST /import?strict=1 batches (JSON
array bodies of BATCH_SIZE events, unique $insert_id, times within the last day, Basic auth with
the project secret) and record which batches got a 200 acknowledgement. Batches that failed
(connection reset, refused, timeout, 5xx) are sent again, unchanged, as an SDK would. Used by the
crash tests of the embedded store and of the ClickHouse backend.
"""

from __future__ import annotations

import base64
import collections
import http.client
import json
import random
import threading
import time
import uuid

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
