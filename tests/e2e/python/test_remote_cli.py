"""`hearth import --url` and `hearth export --url`: the CLI against a running server over its HTTP
API, with the project secret from the environment. Batches cross the 2000-event boundary; a line
that is not JSON and a record without a time are rejected and named without sinking their batch;
the export's `where` returns exactly the events the expression selects; a wrong secret is a clear
error."""

from __future__ import annotations

import json
import os
import subprocess
import time

from hearth_harness import HEARTH_BIN, REPO_ROOT, utc_date


def hearth(*args, secret: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HEARTH_SECRET": secret}
    return subprocess.run([HEARTH_BIN, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, env=env)


def test_import_and_export_through_a_running_server(hearth_factory, tmp_path):
    server = hearth_factory(name="remote")
    now = int(time.time())
    events = [{"event": "Page View" if n % 3 else "Sign Up",
               "properties": {"time": now - 3600 - n, "distinct_id": f"user{n % 50}", "$insert_id": f"remote-{n}",
                              "plan": "pro" if n % 4 == 0 else "free", "seats": n % 10}}
              for n in range(3001)]
    source = tmp_path / "events.jsonl"
    with open(source, "w", encoding="utf-8") as out:
        for n, event in enumerate(events):
            out.write(json.dumps(event) + "\n")
            if n == 10:
                out.write("{not json\n")
        out.write(json.dumps({"event": "No Time", "properties": {"distinct_id": "x", "$insert_id": "no-time"}}) + "\n")

    imported = hearth("import", "--url", server.url, str(source), secret=server.secret)
    assert imported.returncode == 0, imported.stderr
    assert f"imported 3001 events through {server.url}; 2 rejected" in imported.stderr, imported.stderr
    assert "not JSON" in imported.stderr and "properties.time" in imported.stderr, imported.stderr

    day_from, day_to = utc_date(now - 2 * 86400), utc_date(now)
    deadline = time.monotonic() + 15
    while len(server.export(day_from, day_to)) < 3001 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(server.export(day_from, day_to)) == 3001

    out = tmp_path / "pro.jsonl"
    expression = 'properties["plan"] == "pro" and properties["seats"] >= 4'
    exported = hearth("export", "--url", server.url, "--from", day_from, "--to", day_to, "--where", expression, "--out", str(out), secret=server.secret)
    assert exported.returncode == 0, exported.stderr
    got = sorted(json.loads(line)["properties"]["$insert_id"] for line in out.read_text().splitlines())
    want = sorted(e["properties"]["$insert_id"] for e in events if e["properties"]["plan"] == "pro" and e["properties"]["seats"] >= 4)
    assert got == want and len(want) > 100, (len(got), len(want))
    assert f"exported {len(want)} events" in exported.stderr

    refused = hearth("import", "--url", server.url, str(source), secret="not-the-secret")
    assert refused.returncode != 0 and "refused the credential (401)" in refused.stderr, refused.stderr
    bad_where = hearth("export", "--url", server.url, "--from", day_from, "--to", day_to, "--where", "properties[plan]", secret=server.secret)
    assert bad_where.returncode != 0 and "where" in bad_where.stderr, bad_where.stderr
