"""Helpers of the Python end-to-end tests: a Hearth server process (`Hearth`), export and engage
queries, and assertions on exported events. The fixtures are in conftest.py.

The binary is ``target/debug/hearth`` unless ``HEARTH_BIN`` names another one.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import pathlib
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

REPO_ROOT = pathlib.Path(__file__).resolve().parents[3]
HEARTH_BIN = os.environ.get("HEARTH_BIN") or str(REPO_ROOT / "target" / "debug" / "hearth")
READY_TIMEOUT_S = float(os.environ.get("HEARTH_READY_TIMEOUT", "30"))

# Servers made during the running test, so that a failure report can show their logs.
servers_of_current_test: list["Hearth"] = []


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def utc_date(seconds: float) -> str:
    """The UTC calendar date (YYYY-MM-DD) of a Unix time in seconds."""
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).date().isoformat()


def basic_auth(user: str, password: str = "") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class HttpResponse:
    def __init__(self, status: int, headers, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"HTTP {self.status} {self.text[:500]!r}"


class Hearth:
    """One Hearth server process on a data directory (restartable on the same directory)."""

    def __init__(self, base_dir: pathlib.Path, trusted_proxies=(), name="e2e", env=None, project=None):
        self.base_dir = pathlib.Path(base_dir)
        # Extra environment of `hearth serve` (HEARTH_* settings), over this process's own.
        self.env = dict(env or {})
        self.data_dir = self.base_dir / "data"
        self.log_path = self.base_dir / "hearth.log"
        self.trusted_proxies = list(trusted_proxies)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Nodes that share their metadata (PostgreSQL) share a project: pass the first node's.
        project = project or self._create_project(name)
        self.project = project
        self.project_id = project["id"]
        self.token = project["token"]
        self.secret = project["secret"]
        servers_of_current_test.append(self)

    # -- process control -------------------------------------------------------------------

    def _create_project(self, name: str) -> dict:
        result = subprocess.run(
            [HEARTH_BIN, "project", "create", name, "--data", str(self.data_dir), "--json"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **self.env},
        )
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(f"--- hearth project create {name}: exit {result.returncode}\n")
            log.write(result.stderr)
        assert result.returncode == 0, (
            f"`hearth project create` failed ({result.returncode}): {result.stderr}"
        )
        lines = [line for line in result.stdout.splitlines() if line.strip()]
        assert lines, f"`hearth project create --json` printed nothing; stderr: {result.stderr}"
        project = json.loads(lines[-1])
        for key in ("id", "name", "token", "secret"):
            assert key in project, f"project JSON lacks {key!r}: {project}"
        assert project["name"] == name
        assert project["token"] and project["secret"] and project["token"] != project["secret"]
        return project

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spawn(self) -> None:
        """Starts `hearth serve` without waiting for it to be ready."""
        assert self.proc is None or self.proc.poll() is not None, "server already running"
        args = [HEARTH_BIN, "serve", "--data", str(self.data_dir), "--listen", f"127.0.0.1:{self.port}"]
        for cidr in self.trusted_proxies:
            args += ["--trusted-proxy", cidr]
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(f"--- start #{self.starts}: {' '.join(args)}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            args, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            env={**os.environ, **self.env},
        )
        log.close()

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> float:
        """Polls GET /readyz until 200; returns the seconds it took."""
        start = time.monotonic()
        deadline = start + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"hearth serve exited with {self.proc.returncode} before it was ready; "
                    f"log tail:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=2) as response:
                    if response.status == 200:
                        return time.monotonic() - start
                    last = response.status
            except urllib.error.HTTPError as err:
                last = err.code
            except OSError as err:
                last = err
            time.sleep(0.02)
        raise AssertionError(
            f"hearth serve not ready after {timeout}s (last: {last}); log tail:\n{self.log_tail()}"
        )

    def start(self) -> "Hearth":
        self.spawn()
        self.wait_ready()
        return self

    def kill(self) -> None:
        """SIGKILL, as a crash or power cut would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self, timeout: float = 20) -> int:
        """Graceful stop (SIGTERM); fails the test if the server does not exit in time."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"hearth serve did not exit within {timeout}s of SIGTERM")
        return self.proc.returncode

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text("utf-8", "replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # -- HTTP ------------------------------------------------------------------------------

    def request(self, method: str, path: str, *, query=None, body=None, headers=None,
                auth: str | None = None, timeout: float = 30) -> HttpResponse:
        url = self.url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        if isinstance(body, str):
            body = body.encode()
        req = urllib.request.Request(url, data=body, method=method)
        for name, value in (headers or {}).items():
            req.add_header(name, value)
        if auth is not None:
            req.add_header("Authorization", auth)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                return HttpResponse(response.status, response.headers, response.read())
        except urllib.error.HTTPError as err:
            return HttpResponse(err.code, err.headers, err.read())

    @property
    def secret_auth(self) -> str:
        return basic_auth(self.secret)

    def export_raw(self, from_date: str, to_date: str, event=None) -> HttpResponse:
        query = {"from_date": from_date, "to_date": to_date}
        if event is not None:
            query["event"] = json.dumps(event)
        return self.request("GET", "/api/2.0/export", query=query, auth=self.secret_auth,
                            headers={"Accept-Encoding": "identity"}, timeout=120)

    def export(self, from_date: str, to_date: str, event=None) -> list[dict]:
        """Raw export as a list of {"event", "properties"} objects."""
        response = self.export_raw(from_date, to_date, event)
        assert response.status == 200, f"export {from_date}..{to_date}: {response}"
        events = []
        for number, line in enumerate(response.text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                events.append(json.loads(line))
            except ValueError as err:
                raise AssertionError(f"export line {number} is not JSON ({err}): {line[:300]!r}")
        return events

    def export_until(self, from_date: str, to_date: str, expected_insert_ids, timeout=10.0,
                     event=None) -> list[dict]:
        """Exports until every expected $insert_id is visible (or the timeout), then returns the
        last export. Callers assert on the result; this only gives a lagging server a chance."""
        expected = set(expected_insert_ids)
        deadline = time.monotonic() + timeout
        while True:
            events = self.export(from_date, to_date, event)
            seen = {e.get("properties", {}).get("$insert_id") for e in events}
            if expected <= seen or time.monotonic() > deadline:
                return events
            time.sleep(0.25)

    def engage(self, **fields) -> dict:
        """POST /api/2.0/engage with form fields; lists are sent as JSON."""
        form = {}
        for key, value in fields.items():
            form[key] = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
        response = self.request(
            "POST", "/api/2.0/engage", body=urllib.parse.urlencode(form),
            headers={"Content-Type": "application/x-www-form-urlencoded"}, auth=self.secret_auth,
        )
        assert response.status == 200, f"engage {fields}: {response}"
        result = response.json()
        assert result.get("status") == "ok", f"engage {fields}: {result}"
        assert isinstance(result.get("results"), list), f"engage {fields}: {result}"
        assert result.get("total") == len(result["results"]), f"engage {fields}: {result}"
        return result

    def profile(self, distinct_id: str, data_group_id: str | None = None) -> dict | None:
        """The $properties of one user (or group) profile, or None when there is none. A user's
        comes from GET /api/v1/people/{id} (listings leave personal fields out)."""
        if data_group_id is None:
            response = self.request("GET", f"/api/v1/people/{urllib.parse.quote(distinct_id, safe='')}", auth=self.secret_auth)
            if response.status == 404:
                return None
            assert response.status == 200, response
            assert response.json()["distinct_id"] == distinct_id, response
            return response.json()["properties"]
        fields = {"distinct_ids": [distinct_id]}
        if data_group_id is not None:
            fields["data_group_id"] = data_group_id
        result = self.engage(**fields)
        assert result["total"] <= 1, f"more than one profile for {distinct_id}: {result}"
        if not result["results"]:
            return None
        row = result["results"][0]
        assert row.get("$distinct_id") == distinct_id, row
        return row["$properties"]


def insert_id_counts(events) -> dict:
    counts: dict = {}
    for event in events:
        key = event.get("properties", {}).get("$insert_id")
        counts[key] = counts.get(key, 0) + 1
    return counts


def assert_exactly(exported, expected: dict, time_tolerance=0.0011, ignore=("token", "time")):
    """`expected` maps $insert_id -> sent event ({"event", "properties"}). Asserts the export holds
    exactly these events, each once, with the same name, distinct_id, time (within 1 ms) and every
    other sent property (except `ignore`) unchanged."""
    counts = insert_id_counts(exported)
    duplicated = {k: n for k, n in counts.items() if n > 1}
    unknown = sorted(str(k) for k in counts if k not in expected)
    missing = sorted(k for k in expected if k not in counts)
    assert not duplicated, f"{len(duplicated)} $insert_id exported more than once, e.g. {list(duplicated.items())[:5]}"
    assert not unknown, f"{len(unknown)} exported events were never sent, e.g. {unknown[:5]}"
    assert not missing, f"{len(missing)} of {len(expected)} sent events missing from the export, e.g. {missing[:5]}"
    assert len(exported) == len(expected)
    by_id = {e["properties"]["$insert_id"]: e for e in exported}
    for insert_id, sent in expected.items():
        got = by_id[insert_id]
        props = got["properties"]
        assert got["event"] == sent["event"], (insert_id, got["event"], sent["event"])
        sent_props = sent["properties"]
        assert props.get("distinct_id") == sent_props["distinct_id"], (insert_id, props.get("distinct_id"))
        sent_time = sent_props["time"]
        if sent_time > 1e11:  # milliseconds
            sent_time = sent_time / 1000.0
        assert isinstance(props.get("time"), (int, float)), (insert_id, props.get("time"))
        assert abs(props["time"] - sent_time) <= time_tolerance, (
            f"{insert_id}: exported time {props['time']!r}, sent {sent_props['time']!r}"
        )
        for key, value in sent_props.items():
            if key in ignore:
                continue
            assert key in props, f"{insert_id}: property {key!r} lost (sent {value!r}); got {props}"
            assert same_json(props[key], value), (
                f"{insert_id}: property {key!r} is {props[key]!r}, sent {value!r}"
            )


def same_json(a, b) -> bool:
    """JSON equality that, unlike ==, tells true from 1 and false from 0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b
