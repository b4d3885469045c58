"""The stolen-disk test, and the data subject's rights through Mixpanel's GDPR API.

Events and profiles carrying planted names, emails, phone numbers, IP addresses, card numbers,
an IBAN and API secrets go in through the official Python SDK (Consumer, and import_data for
/import) to a server logging at TRACE. Then every byte under the data directory, the key
directory and the log is read, including every decompressed zstd/gzip frame and every value of
every Parquet part: none of the planted values may appear in plaintext. Meanwhile the reports
still count the events, break down by the personal field through its token, and the findings
report names where the free-form personal data was found.

Erasure: after a GDPR v3 deletion, the person leaves exports, reports and profiles at once,
the task reaches SUCCESS once the parts are rewritten, and a retrieval (GDPR v3) that returned
their decrypted data before returns nothing after.
"""

from __future__ import annotations

import json
import re
import time

from mixpanel import Consumer, Mixpanel

from disk_scan import all_files, find_needles
from hearth_harness import utc_date

NAME = "Zebediah Quillfeather"
EMAIL = "zebediah.q@planted-example.org"
OTHER_EMAIL = "quill.backup@planted-example.net"
PHONE = "+44 20 7946 0321"
IP = "203.0.113.77"
CARD = "4539 1488 0343 6467"
IBAN = "GB82WEST12345698765432"
SECRET = "sk_live_PLANTEDa1b2c3d4e5f6g7h8i9"
TOKEN = re.compile(r"^pii:[A-Za-z0-9_-]{22}$")


def endpoint_urls(server) -> dict:
    return {"events_url": server.url + "/track", "people_url": server.url + "/engage",
            "groups_url": server.url + "/groups", "import_url": server.url + "/import"}


def planted_patterns() -> dict[str, bytes]:
    patterns = {}
    for label, value in {"name": NAME, "surname": "Quillfeather", "email": EMAIL, "other email": OTHER_EMAIL,
                         "phone": PHONE, "phone digits": "2079460321", "ip": IP, "card": CARD,
                         "card digits": CARD.replace(" ", ""), "iban": IBAN, "secret": SECRET}.items():
        patterns[f"{label} as text"] = value.encode()
        patterns[f"{label} as JSON-escaped text"] = json.dumps(value)[1:-1].encode()
    return patterns


def query(server, spec: dict) -> dict:
    response = server.request("POST", "/api/v1/query", body=json.dumps(spec),
                              headers={"Content-Type": "application/json"}, auth=server.secret_auth)
    assert response.status == 200, response
    return response.json()


def total(result: dict) -> float:
    """The sum of every point of every series (the tests' events fall on one day)."""
    return sum(value for series in result["series"] for value in series["points"].values() if value is not None)


def test_a_stolen_disk_reveals_no_planted_personal_data(hearth_factory, monkeypatch):
    monkeypatch.setenv("HEARTH_LOG", "trace")
    server = hearth_factory(name="stolen")
    mp = Mixpanel(server.token, consumer=Consumer(**endpoint_urls(server)))
    for n in range(3):
        mp.track(f"victim-{n}", "Checkout", {
            "$email": EMAIL if n == 0 else f"other{n}@planted-example.org",
            "name": NAME,
            "note": f"call {PHONE} or write to {OTHER_EMAIL}",
            "payment": f"card {CARD}",
            "debug": f"client at {IP}",
            "pasted": f"export KEY={SECRET}",
            "bank": f"IBAN {IBAN}",
            "plan": "pro",
        })
    mp.people_set("victim-0", {"$email": EMAIL, "$name": NAME, "$phone": PHONE, "plan": "pro",
                               "bio": f"reach me at {OTHER_EMAIL}"})
    mp.import_data(None, "victim-0", "Imported", int(time.time()) - 600,
                   # A name inside free text is not detectable (no typed rule finds names;
                   # docs/privacy.md says so): names are planted in the name fields.
                   {"ip": IP, "$email": EMAIL, "$name": NAME, "comment": f"paid with {CARD}"},
                   api_secret=server.secret)

    day = utc_date(time.time())
    spec = {"report": "insights", "from": utc_date(time.time() - 86400), "to": day, "interval": "day",
            "events": [{"event": "Checkout", "measure": "total"}]}
    deadline = time.monotonic() + 10
    while total(query(server, spec)) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert total(query(server, spec)) == 3
    # A breakdown by the encrypted field works through its token: one victim has EMAIL.
    by_email = query(server, {**spec, "breakdown": "$email"})
    segments = [series["segment"] for series in by_email["series"]]
    assert len(segments) == 3 and all(TOKEN.match(str(s)) for s in segments), segments

    findings = server.request("GET", "/api/v1/privacy/findings", auth=server.secret_auth)
    assert findings.status == 200, findings
    found = {(r["event"], r["property"], r["kind"]): r["count"] for r in findings.json()["results"]}
    for key in [("Checkout", "note", "phone"), ("Checkout", "note", "email"), ("Checkout", "payment", "card_number"),
                ("Checkout", "debug", "ipv4"), ("Checkout", "pasted", "secret"), ("Checkout", "bank", "iban"),
                ("$profile", "bio", "email"), ("Imported", "comment", "card_number")]:
        assert found.get(key) == (1 if key[0] != "Checkout" else 3), f"{key}: {found}"
    assert not any(value in json.dumps(findings.json()) for value in (PHONE, OTHER_EMAIL, CARD, IP))

    exported = server.export(utc_date(time.time() - 86400), day)
    assert len(exported) == 4
    checkout = next(e["properties"] for e in exported if e["event"] == "Checkout")
    assert checkout["note"] == "call [phone] or write to [email]", checkout
    assert checkout["payment"] == "card [card]" and checkout["debug"] == "client at [ip]"
    assert checkout["pasted"] == "export KEY=[secret]" and checkout["bank"] == "IBAN [iban]"
    # Personal fields (their tokens too) leave exports only for a view_pii holder who asks.
    assert "$email" not in checkout and "name" not in checkout and checkout["plan"] == "pro", checkout

    assert server.stop() == 0
    keys_dir = server.data_dir.parent / "data-keys"
    assert (keys_dir / "master.key").exists(), "the key store is not beside the data directory"
    files = all_files(server.data_dir) + all_files(keys_dir)
    assert any(f.suffix == ".parquet" for f in files) or any("wal" in str(f) for f in files), files
    hits, n_files, n_frames = find_needles(files + [server.log_path], planted_patterns())
    assert n_files > 5 and n_frames > 0, (n_files, n_frames)
    assert not hits, f"planted personal data found ({len(hits)} hits in {n_files} files):\n" + "\n".join(hits[:20])
    assert server.log_path.stat().st_size > 1000, "the TRACE log was not written"


def gdpr(server, method: str, path: str, body=None):
    return server.request(method, path, query={"token": server.token},
                          body=json.dumps(body) if body is not None else None,
                          headers={"Content-Type": "application/json"}, auth=f"Bearer {server.secret}")


def test_gdpr_deletion_and_retrieval_through_mixpanels_api(hearth_factory):
    server = hearth_factory(name="gdpr")
    mp = Mixpanel(server.token, consumer=Consumer(**endpoint_urls(server)))
    mp.track("$device:dev-1", "Page View", {"$device_id": "dev-1"})
    mp.track("ada", "Sign Up", {"$device_id": "dev-1", "$user_id": "ada", "$email": "ada@example.com"})
    mp.people_set("ada", {"$email": "ada@example.com", "$name": "Ada Lovelace", "plan": "pro"})
    mp.track("bob", "Sign Up", {"$email": "bob@example.com"})
    day_from, day_to = utc_date(time.time() - 86400), utc_date(time.time())
    deadline = time.monotonic() + 10
    while len(server.export(day_from, day_to)) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)

    created = gdpr(server, "POST", "/api/app/data-retrievals/v3.0/", {"distinct_ids": ["ada"], "compliance_type": "GDPR"})
    assert created.status == 200 and created.json()["status"] == "ok", created
    task = created.json()["results"]["task_id"]
    retrieved = gdpr(server, "GET", f"/api/app/data-retrievals/v3.0/{task}")
    assert retrieved.status == 200, retrieved
    person = retrieved.json()["results"]["result"][0]
    assert sorted(person["distinct_ids"]) == ["$device:dev-1", "ada", "dev-1"], person["distinct_ids"]
    assert person["profiles"][0]["$properties"]["$email"] == "ada@example.com", person
    assert person["profiles"][0]["$properties"]["$name"] == "Ada Lovelace"
    assert sorted(e["event"] for e in person["events"]) == ["Page View", "Sign Up"]
    sign_up = next(e for e in person["events"] if e["event"] == "Sign Up")
    assert sign_up["properties"]["$email"] == "ada@example.com"

    bad = gdpr(server, "POST", "/api/app/data-deletions/v3.0/", {"distinct_ids": []})
    assert bad.status == 400 and "distinct_ids" in bad.json()["error"], bad
    wrong_token = server.request("POST", "/api/app/data-deletions/v3.0/", query={"token": "nope"},
                                 body=json.dumps({"distinct_ids": ["ada"]}), auth=f"Bearer {server.secret}")
    assert wrong_token.status == 400, wrong_token
    assert server.request("POST", "/api/app/data-deletions/v3.0/", query={"token": server.token},
                          body=json.dumps({"distinct_ids": ["ada"]})).status == 401

    deleted = gdpr(server, "POST", "/api/app/data-deletions/v3.0/", {"distinct_ids": ["ada"], "compliance_type": "GDPR"})
    assert deleted.status == 200, deleted
    deletion = deleted.json()["results"]["task_id"]
    # At once: out of exports, profiles and reports.
    remaining = server.export(day_from, day_to)
    assert [e["properties"]["distinct_id"] for e in remaining] == ["bob"], remaining
    assert server.profile("ada") is None
    uniques = query(server, {"report": "insights", "from": day_from, "to": day_to, "interval": "day",
                             "events": [{"event": "$any", "measure": "uniques"}]})
    assert total(uniques) == 1, uniques
    assert gdpr(server, "DELETE", f"/api/app/data-deletions/v3.0/{deletion}").status == 409
    # Within seconds: the background job removes the events from the parts.
    status = None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status = gdpr(server, "GET", f"/api/app/data-deletions/v3.0/{deletion}").json()["results"]["status"]
        if status == "SUCCESS":
            break
        time.sleep(0.25)
    assert status == "SUCCESS", status
    again = gdpr(server, "GET", f"/api/app/data-retrievals/v3.0/{task}").json()["results"]["result"][0]
    assert again["profiles"] == [] and again["events"] == [], again
    assert gdpr(server, "GET", "/api/app/data-deletions/v3.0/unknown-task").status == 404
