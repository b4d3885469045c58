"""The audit log through the real binary: every read (a report, a raw export, a profile read, a
refused reveal of personal fields) is an entry naming the credential, the action, the country of the
source (never the address) and, for reads that return people's rows, a bitmap of whose;
`hearth audit verify` passes on the untouched log and fails, naming the entry, once an entry is
edited in the database file."""

from __future__ import annotations

import base64
import json
import sqlite3
import subprocess
import time

from mixpanel import Consumer, Mixpanel

from hearth_harness import HEARTH_BIN, REPO_ROOT, utc_date


def endpoint_urls(server) -> dict:
    return {"events_url": server.url + "/track", "people_url": server.url + "/engage",
            "groups_url": server.url + "/groups", "import_url": server.url + "/import"}


def audit(server, **query) -> list[dict]:
    response = server.request("GET", "/api/v1/audit", query=query, auth=server.secret_auth)
    assert response.status == 200, response
    return response.json()["entries"]


def bitmap_count(entry: dict) -> int:
    users = entry.get("users")
    return users["count"] if users else 0


def hearth_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([HEARTH_BIN, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)


def test_every_read_is_audited_and_the_chain_shows_tampering(hearth_factory):
    server = hearth_factory(name="audited")
    mp = Mixpanel(server.token, consumer=Consumer(**endpoint_urls(server)))
    for n in range(3):
        mp.track(f"u{n}", "Login", {"plan": "pro"})
        mp.people_set(f"u{n}", {"$email": f"person{n}@example.com", "plan": "pro"})
    day_from, day_to = utc_date(time.time() - 86400), utc_date(time.time())
    deadline = time.monotonic() + 10
    while len(server.export(day_from, day_to)) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)

    profiles = server.request("POST", "/api/v1/query", body=json.dumps({"report": "profiles", "limit": 100}),
                              headers={"Content-Type": "application/json"}, auth=server.secret_auth)
    assert profiles.status == 200, profiles
    masked = server.request("GET", "/api/v1/people/u1", auth=server.secret_auth).json()
    assert masked["properties"]["$email"].startswith("pii:"), masked
    # Reveals are for signed-in members holding view_pii (tests/e2e/node/passkeys.test.mjs),
    # never for a secret or key.
    refused = server.request("GET", "/api/v1/people/u1", query={"reveal": "true"}, auth=server.secret_auth)
    assert refused.status == 403 and "view_pii" in refused.json()["error"], refused
    assert server.request("GET", "/api/v1/people/nobody", auth=server.secret_auth).status == 404

    entries = audit(server)
    actions = [e["action"] for e in entries]
    for action in ("export", "query", "profile.read", "auth.denied"):
        assert action in actions, actions
    for entry in (e for e in entries if e["action"] != "auth.denied"):
        assert entry["actor"] == {"kind": "project_secret", "id": str(server.project_id)}, entry
        assert entry["project"] == server.project_id and entry["outcome"] == "ok"
        assert "127.0.0.1" not in json.dumps(entry), entry
    export = next(e for e in entries if e["action"] == "export" and e["detail"]["rows"] == 3)
    assert bitmap_count(export) == 3 and "plan" in export["detail"]["fields"], export
    query = next(e for e in entries if e["action"] == "query")
    assert query["detail"]["spec"]["report"] == "profiles" and bitmap_count(query) == 3, query
    read = next(e for e in entries if e["action"] == "profile.read" and e["detail"].get("returned_profiles") == 1)
    assert bitmap_count(read) == 1, read
    # The bitmap is a portable roaring bitmap (cookie 12346 or 12347 first).
    cookie = int.from_bytes(base64.b64decode(read["users"]["bitmap"])[:2], "little")
    assert cookie in (12346, 12347), cookie
    denied = audit(server, action="auth.denied")
    assert len(denied) == 1 and "view_pii" in denied[0]["detail"]["reason"] and denied[0]["outcome"] == "denied", denied
    assert audit(server, action="audit.read"), "reading the audit is audited too"
    no_secret = server.request("GET", "/api/v1/audit")
    assert no_secret.status == 401

    assert server.stop() == 0
    verified = hearth_cli("audit", "verify", "--data", str(server.data_dir))
    assert verified.returncode == 0 and "intact" in verified.stdout, verified
    listed = hearth_cli("audit", "list", "--data", str(server.data_dir), "--json", "--action", "auth.denied")
    assert listed.returncode == 0, listed
    assert [json.loads(line)["action"] for line in listed.stdout.splitlines()] == ["auth.denied"]

    # An insider edits the refused reveal out of the record: verification names the entry.
    connection = sqlite3.connect(server.data_dir / "audit.sqlite")
    seq = connection.execute("SELECT seq FROM audit WHERE action = 'auth.denied'").fetchone()[0]
    connection.execute("UPDATE audit SET body = replace(body, 'auth.denied', 'profile.read') WHERE seq = ?", (seq,))
    connection.commit()
    connection.close()
    broken = hearth_cli("audit", "verify", "--data", str(server.data_dir))
    assert broken.returncode == 1 and f"BROKEN at entry {seq}" in broken.stderr, broken


def test_entries_go_to_syslog_and_addresses_only_when_opted_in(hearth_factory, monkeypatch):
    """Every entry is also sent to syslog as an RFC 5424 datagram carrying the entry's JSON, and
    the source address appears in entries only after the organisation opts in."""
    import socket

    collector = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    collector.bind(("127.0.0.1", 0))
    collector.settimeout(10)
    monkeypatch.setenv("HEARTH_AUDIT__SYSLOG", f"udp:127.0.0.1:{collector.getsockname()[1]}")
    server = hearth_factory(name="shipped")

    def query():
        response = server.request("POST", "/api/v1/query", body=json.dumps({"report": "profiles", "limit": 10}),
                                  headers={"Content-Type": "application/json"}, auth=server.secret_auth)
        assert response.status == 200, response

    def received(action: str) -> dict:
        while True:
            line = collector.recv(65_536).decode()
            assert line.startswith("<85>1 "), line
            entry = json.loads(line.split(" audit - ", 1)[1])
            if entry["action"] == action:
                return entry

    query()
    shipped = received("query")
    stored = audit(server, action="query")
    assert [e["seq"] for e in stored] == [shipped["seq"]] and stored[0]["hash"] == shipped["hash"], (stored, shipped)
    assert "address" not in shipped and "127.0.0.1" not in json.dumps(stored), stored

    opted = hearth_cli("admin", "audit-addresses", "--on", "--data", str(server.data_dir))
    assert opted.returncode == 0, opted
    query()
    after = audit(server, action="query")[-1]
    assert after["address"] == "127.0.0.1", after
    assert received("query")["address"] == "127.0.0.1"
    listed = hearth_cli("audit", "list", "--data", str(server.data_dir), "--json", "--action", "organisation.audit_addresses")
    assert [json.loads(line)["detail"] for line in listed.stdout.splitlines()] == [{"on": True}], listed

    assert hearth_cli("admin", "audit-addresses", "--off", "--data", str(server.data_dir)).returncode == 0
    query()
    assert "address" not in audit(server, action="query")[-1]
    collector.close()
