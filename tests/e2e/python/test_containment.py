"""`hearth incident contain` against a running server: a key, an address, then everything. Each
effect holds on the very next request; ingestion through the rotated-away public token keeps
working during its overlap; exports stay frozen until `hearth incident lift`."""

from __future__ import annotations

import json
import re
import subprocess
import time

from hearth_harness import HEARTH_BIN, REPO_ROOT, basic_auth, utc_date


def cli(server, *args) -> str:
    result = subprocess.run([HEARTH_BIN, *args, "--data", str(server.data_dir)], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result
    return result.stdout


def track(server, token: str, address: str) -> int:
    body = json.dumps([{"event": "Contained", "properties": {"token": token, "distinct_id": "u1"}}])
    response = server.request("POST", "/track", query={"verbose": "1"}, body=body,
                              headers={"Content-Type": "application/json", "X-Forwarded-For": address})
    return response.status if response.status != 200 else (200 if response.json().get("status") == 1 else 0)


def test_containment_takes_effect_on_the_next_request(hearth_factory):
    server = hearth_factory(name="contain", trusted_proxies=["127.0.0.1/32"])
    cli(server, "service-account", "create", "etl")
    created = json.loads(cli(server, "api-key", "create", "--account", "etl", "--scope", "read,export", "--project", "contain", "--json"))
    key_auth = basic_auth(created["key"])
    findings = lambda auth: server.request("GET", "/api/v1/privacy/findings", auth=auth).status  # noqa: E731
    assert findings(key_auth) == 200

    out = cli(server, "incident", "contain", "--key", str(created["id"]))
    assert f"disabled API key {created['id']}" in out, out
    assert findings(key_auth) == 401

    assert track(server, server.token, "198.51.100.7") == 200
    out = cli(server, "incident", "contain", "--address", "203.0.113.0/24")
    assert "blocked 203.0.113.0/24" in out, out
    assert track(server, server.token, "203.0.113.9") == 403, "blocked on ingestion too"
    assert track(server, server.token, "198.51.100.7") == 200

    day = utc_date(time.time())
    export = lambda auth: server.request("GET", "/api/2.0/export", query={"from_date": day, "to_date": day}, auth=auth)  # noqa: E731
    assert export(server.secret_auth).status == 200
    out = cli(server, "incident", "contain", "--all", "--token-overlap", "1h")
    secret = re.search(r"new secret (\w+)", out).group(1)
    token = re.search(r"new public token (\w+)", out).group(1)
    assert "froze exports" in out and "revoked all" in out, out
    assert export(server.secret_auth).status == 401, "the old secret dies at once"
    frozen = export(basic_auth(secret))
    assert frozen.status == 403 and "frozen" in frozen.json()["error"], frozen
    assert track(server, server.token, "198.51.100.7") == 200, "the old token keeps collecting during the overlap"
    assert track(server, token, "198.51.100.7") == 200
    cli(server, "incident", "lift")
    assert export(basic_auth(secret)).status == 200
    cli(server, "incident", "lift", "--address", "203.0.113.0/24")
    assert track(server, token, "203.0.113.9") == 200

    audit = cli(server, "audit", "list", "--json", "--action", "incident.contain.freeze")
    assert len(audit.strip().splitlines()) == 1, audit

    # No key, secret or token of this test is in plaintext under the data directory or in the log.
    assert server.stop() == 0
    keys_dir = server.data_dir.parent / "data-keys"
    files = [p for d in (server.data_dir, keys_dir) for p in d.rglob("*") if p.is_file()] + [server.log_path]
    for path in files:
        content = path.read_bytes()
        for name, value in (("API key", created["key"]), ("old secret", server.secret), ("new secret", secret)):
            assert value.encode() not in content, f"{name} in plaintext in {path}"


def test_exports_stop_at_the_daily_quota_per_credential(hearth_factory, monkeypatch):
    monkeypatch.setenv("HEARTH_EXPORTS__ROWS_PER_DAY_PER_CREDENTIAL", "5")
    server = hearth_factory(name="quota")
    body = json.dumps([{"event": "E", "properties": {"time": int(time.time()) - 60 + n, "distinct_id": f"u{n}", "$insert_id": f"i{n}"}} for n in range(8)])
    imported = server.request("POST", "/import", query={"strict": "1"}, body=body, headers={"Content-Type": "application/json"}, auth=server.secret_auth)
    assert imported.status == 200, imported
    day = utc_date(time.time())
    deadline = time.monotonic() + 10
    while len(server.export(day, day)) < 5 and time.monotonic() < deadline:
        time.sleep(0.2)
    # The polling above spent the secret's quota: a key has its own.
    cli(server, "service-account", "create", "etl")
    key = json.loads(cli(server, "api-key", "create", "--account", "etl", "--scope", "export", "--project", "quota", "--json"))
    auth = basic_auth(key["key"])
    first = server.request("GET", "/api/2.0/export", query={"from_date": day, "to_date": day}, auth=auth)
    assert first.status == 200 and first.headers.get("X-Hearth-Export-Rows-Remaining") == "5", first
    assert len(first.body.splitlines()) == 5, "the export stops at the quota"
    refused = server.request("GET", "/api/2.0/export", query={"from_date": day, "to_date": day}, auth=auth)
    assert refused.status == 429 and "daily export quota of 5 rows" in refused.json()["error"], refused
    assert int(refused.headers["Retry-After"]) >= 1
    stopped = [json.loads(line) for line in cli(server, "audit", "list", "--json", "--action", "export").splitlines()]
    assert any(e["detail"].get("stopped_at_quota") for e in stopped), stopped


def test_a_bulk_export_trips_a_canary_and_the_key_is_disabled(hearth_factory):
    server = hearth_factory(name="canary")
    now = int(time.time())
    body = json.dumps([{"event": "Login", "properties": {"time": now - 600 + n, "distinct_id": f"real{n}", "$insert_id": f"r{n}"}} for n in range(10)])
    assert server.request("POST", "/import", query={"strict": "1"}, body=body, headers={"Content-Type": "application/json"}, auth=server.secret_auth).status == 200
    created = server.request("POST", "/api/v1/canaries", body=json.dumps({"count": 2}), headers={"Content-Type": "application/json"}, auth=server.secret_auth)
    assert created.status == 201 and created.json()["created"] == 2, created
    day_from, day_to = utc_date(now - 86400), utc_date(now)

    # Canaries are in no count and no profile listing.
    uniques = server.request("POST", "/api/v1/query", body=json.dumps({"report": "insights", "from": day_from, "to": day_to, "interval": "day", "events": [{"event": "$any", "measure": "uniques"}]}), auth=server.secret_auth).json()
    assert sum(v for s in uniques["series"] for v in s["points"].values() if v) == 10, uniques
    listed = server.request("POST", "/api/v1/query", body=json.dumps({"report": "profiles", "limit": 100}), auth=server.secret_auth).json()
    assert listed["profiles"] == [], listed

    cli(server, "service-account", "create", "thief")
    key = json.loads(cli(server, "api-key", "create", "--account", "thief", "--scope", "read,export", "--project", "canary", "--json"))
    auth = basic_auth(key["key"])
    # But raw rows carry them: the bulk export touches a canary.
    exported = server.request("GET", "/api/2.0/export", query={"from_date": day_from, "to_date": day_to}, auth=auth)
    rows = [json.loads(line) for line in exported.body.splitlines()]
    assert len({r["properties"]["distinct_id"] for r in rows}) == 12, "the export carries the canaries' rows"
    alerts = []
    deadline = time.monotonic() + 5
    while not alerts and time.monotonic() < deadline:
        alerts = server.request("GET", "/api/v1/alerts", auth=server.secret_auth).json()["alerts"]
        time.sleep(0.1)
    assert alerts and alerts[0]["rule"] == "canary" and alerts[0]["severity"] == "critical", alerts
    assert alerts[0]["action_taken"] == "key disabled" and alerts[0]["credential"].startswith("api_key:"), alerts
    assert server.request("GET", "/api/v1/privacy/findings", auth=auth).status == 401, "the key dies on its next request"
    assert "alert.canary" in cli(server, "audit", "list", "--json", "--action", "alert.canary")
