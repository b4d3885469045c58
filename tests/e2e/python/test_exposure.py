"""Attack simulation for the exposure report: a compromised analyst key runs reports, views
profiles and exports slices; `hearth incident report` (and the API) must list exactly the union
of the people and of the fields that the responses actually contained, computed here
independently from the captured responses: no miss, no extra. Aggregate reports add nobody."""

from __future__ import annotations

import csv
import json
import subprocess
import time

from mixpanel import Consumer, Mixpanel

from hearth_harness import HEARTH_BIN, REPO_ROOT, basic_auth, utc_date


def cli(server, *args) -> str:
    result = subprocess.run([HEARTH_BIN, *args, "--data", str(server.data_dir)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result
    return result.stdout


def test_the_exposure_report_names_exactly_what_the_key_saw(hearth_factory, tmp_path):
    server = hearth_factory(name="exposed")
    base = server.url
    mp = Mixpanel(server.token, consumer=Consumer(events_url=f"{base}/track", people_url=f"{base}/engage"))
    for n in range(12):
        mp.track(f"p{n}", "Login", {"plan": "pro" if n % 2 else "free", "seats": n})
        if n % 3 == 0:
            mp.track(f"p{n}", "Export Clicked", {"format": "csv"})
        mp.people_set(f"p{n}", {"$email": f"p{n}@example.com", "plan": "pro", **({"team": "red"} if n % 4 == 0 else {})})
    day = utc_date(time.time())
    deadline = time.monotonic() + 10
    while len(server.export(day, day)) < 16 and time.monotonic() < deadline:
        time.sleep(0.2)

    cli(server, "service-account", "create", "analytics-bot")
    key = json.loads(cli(server, "api-key", "create", "--account", "analytics-bot", "--scope", "read,export", "--project", "exposed", "--json"))
    auth = basic_auth(key["key"])
    seen_people: set[str] = set()
    seen_fields: set[str] = set()

    # An aggregate: nobody's rows.
    aggregate = server.request("POST", "/api/v1/query", body=json.dumps({"report": "insights", "from": day, "to": day, "interval": "day", "events": [{"event": "Login", "measure": "uniques"}]}), auth=auth)
    assert aggregate.status == 200
    # A profile listing with a filter.
    listing = server.request("POST", "/api/v1/query", body=json.dumps({"report": "profiles", "where": [{"property": "team", "op": "set"}], "limit": 3}), auth=auth)
    assert listing.status == 200, listing
    for profile in listing.json()["profiles"]:
        seen_people.add(profile["distinct_id"])
        seen_fields.update(["distinct_id", *profile["properties"].keys()])
    # One profile view.
    viewed = server.request("GET", "/api/v1/people/p8", auth=auth)
    assert viewed.status == 200
    seen_people.add("p8")
    seen_fields.update(["distinct_id", *viewed.json()["properties"].keys()])
    # An export slice of one event.
    exported = server.request("GET", "/api/2.0/export", query={"from_date": day, "to_date": day, "event": json.dumps(["Export Clicked"])}, auth=auth)
    assert exported.status == 200
    for line in exported.body.splitlines():
        event = json.loads(line)
        seen_people.add(event["properties"]["distinct_id"])
        seen_fields.update(["event", *event["properties"].keys()])
    assert len(seen_people) >= 5, seen_people

    # Noise by another credential: must not appear.
    server.request("GET", "/api/v1/people/p11", auth=server.secret_auth)

    report_api = server.request("GET", "/api/v1/incident/exposure", query={"from": day, "to": utc_date(time.time() + 86400), "key": key["id"]}, auth=server.secret_auth)
    assert report_api.status == 200, report_api
    api_people = {d for p in report_api.json()["people"] for d in p["distinct_ids"]}
    assert api_people == seen_people, (api_people ^ seen_people)
    assert set(report_api.json()["fields"]) == seen_fields, set(report_api.json()["fields"]) ^ seen_fields

    assert server.stop() == 0
    out = tmp_path / "report"
    printed = cli(server, "incident", "report", "--from", day, "--to", utc_date(time.time() + 86400), "--key", str(key["id"]), "--out", str(out), "--contacts")
    assert "exposure report" in printed, printed
    with open(out / "people.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    people = {d for row in rows for d in row["distinct_ids"].split()}
    assert people == seen_people, people ^ seen_people
    report = json.loads((out / "exposure.json").read_text())
    assert set(report["fields"]) == seen_fields, set(report["fields"]) ^ seen_fields
    assert report["by_action"].get("query") == 2 and report["by_action"].get("export") == 1, report["by_action"]
    assert report["fields"]["$email"]["sensitivity"].startswith("personal"), report["fields"]["$email"]
    # Contacts decrypted for the person running it (an audited reveal).
    assert all(row["email"] == f"{row['canonical_id']}@example.com" for row in rows if row["canonical_id"] in {f"p{n}" for n in range(12)}), rows
    draft = (out / "article33.md").read_text()
    assert f"{len(seen_people)} people" in draft and "unintelligible" in draft, draft
    assert "pii.reveal" in cli(server, "audit", "list", "--json", "--action", "pii.reveal")
