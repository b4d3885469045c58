"""The official Python SDK (PyPI `mixpanel` 5.x) against Hearth, over plain http.

The SDK builds https://{api_host}/... URLs, so every consumer gets explicit *_url arguments.
`Mixpanel.alias()` always posts to api.mixpanel.com through a fresh default Consumer (it ignores
custom hosts), so it is not used here.
"""

from __future__ import annotations

import json
import re
import time
import uuid

import mixpanel
import pytest
from mixpanel import BufferedConsumer, Consumer, Mixpanel, MixpanelException

from hearth_harness import assert_exactly, same_json, utc_date

DAY = 86400


def endpoint_urls(server) -> dict:
    return {
        "events_url": f"{server.url}/track",
        "people_url": f"{server.url}/engage",
        "groups_url": f"{server.url}/groups",
        "import_url": f"{server.url}/import",
    }


class RecordingConsumer:
    """Wraps an SDK consumer and remembers each request it made, so that the test knows exactly
    what went over the wire and can send the very same request again (as a retrying client
    would)."""

    def __init__(self, inner):
        self.inner = inner
        self.sent: list[tuple] = []

    def send(self, endpoint, json_message, api_key=None, api_secret=None):
        self.inner.send(endpoint, json_message, api_key, api_secret)
        self.sent.append((endpoint, json_message, api_key, api_secret))


def sent_events(recorders, endpoints=("events", "imports")) -> dict:
    """$insert_id -> event, from everything the recorders saw on the given endpoints."""
    events = {}
    for recorder in recorders:
        for endpoint, message, _key, _secret in recorder.sent:
            if endpoint not in endpoints:
                continue
            payload = json.loads(message)
            for event in payload if isinstance(payload, list) else [payload]:
                events[event["properties"]["$insert_id"]] = event
    return events


def test_track_buffered_and_import_each_exactly_once(hearth):
    urls = endpoint_urls(hearth)
    plain = RecordingConsumer(Consumer(**urls))
    mp = Mixpanel(hearth.token, consumer=plain)

    custom = {
        "plan": "pro",
        "price": 9.99,
        "count": 3,
        "ok": True,
        "off": False,
        "tags": ["a", "b", "c"],
        "nested": {"k": "v", "n": 1, "deep": {"x": [1, 2]}},
        "unicode": "Grüße ☃ 日本語 \"quoted\" & = + %",
        "empty": "",
        "nothing": None,
    }
    for i in range(6):
        mp.track(f"py-user-{i % 2}", "Signed Up" if i == 0 else "Viewed Page",
                 {**custom, "i": i, "page": f"/p/{i}"})

    # BufferedConsumer: JSON arrays of up to 50 events (50 + 50 + 20).
    buffered_inner = BufferedConsumer(max_size=50, **urls)
    buffered_inner._consumer = RecordingConsumer(buffered_inner._consumer)
    mpb = Mixpanel(hearth.token, consumer=buffered_inner)
    for i in range(120):
        mpb.track(f"py-buffered-{i % 7}", "Buffered Event", {"i": i, "odd": i % 2 == 1, "w": i * 0.5})
    buffered_inner.flush()
    buffered = buffered_inner._consumer
    batch_sizes = [len(json.loads(m)) for e, m, _, _ in buffered.sent if e == "events"]
    assert batch_sizes == [50, 50, 20]

    # import_data: events 3 days old, authenticated with the project secret (HTTP Basic).
    now = time.time()
    for i in range(10):
        ts = int(now) - 3 * DAY + i * 60
        if i % 2:
            ts += 0.125  # a millisecond fraction
        mp.import_data(None, "py-import-user", "Imported Event", ts,
                       properties={"i": i, "source": "backfill"}, api_secret=hearth.secret)
    buffered_import = BufferedConsumer(max_size=50, **urls)
    buffered_import._consumer = RecordingConsumer(buffered_import._consumer)
    mpi = Mixpanel(hearth.token, consumer=buffered_import)
    for i in range(60):
        mpi.import_data(None, f"py-import-{i % 3}", "Imported Batch", int(now) - 3 * DAY - i,
                        properties={"i": i}, api_secret=hearth.secret)
    buffered_import.flush()
    import_sizes = [len(json.loads(m)) for e, m, _, _ in buffered_import._consumer.sent if e == "imports"]
    assert import_sizes == [50, 10]

    recorders = [plain, buffered, buffered_import._consumer]
    expected = sent_events(recorders)
    assert len(expected) == 6 + 120 + 10 + 60

    # Send every request a second time, byte for byte, through the SDK's own Consumer.
    resend = Consumer(**urls)
    for recorder in recorders:
        for endpoint, message, key, secret in list(recorder.sent):
            resend.send(endpoint, message, key, secret)

    times = [e["properties"]["time"] for e in expected.values()]
    from_date, to_date = utc_date(min(times)), utc_date(max(times))
    exported = hearth.export_until(from_date, to_date, expected)
    assert_exactly(exported, expected)

    # The SDK's own properties survive; the token does not need to, the IP never was sent (ip=0).
    for event in exported:
        props = event["properties"]
        assert props["mp_lib"] == "python"
        assert props["$lib_version"] == mixpanel.__version__
        assert "ip" not in props and "mp_country_code" not in props, props

    # The event filter of the export.
    only = hearth.export(from_date, to_date, event=["Imported Event"])
    assert sorted(e["properties"]["i"] for e in only) == list(range(10))
    assert {e["event"] for e in only} == {"Imported Event"}
    two = hearth.export(from_date, to_date, event=["Signed Up", "Imported Batch"])
    assert sorted(e["event"] for e in two).count("Signed Up") == 1
    assert len(two) == 61

    # Dates are inclusive UTC days: only the recent events are in today's export.
    today = utc_date(time.time())
    recent = hearth.export(today, today)
    assert {e["event"] for e in recent} <= {"Signed Up", "Viewed Page", "Buffered Event"}
    old_day = utc_date(int(now) - 3 * DAY + 120)
    old = hearth.export(old_day, old_day)
    assert old and {e["event"] for e in old} <= {"Imported Event", "Imported Batch"}


def test_import_requires_the_project_secret(hearth):
    urls = endpoint_urls(hearth)
    mp = Mixpanel(hearth.token, consumer=Consumer(retry_limit=0, **urls))
    ts = int(time.time()) - 2 * DAY
    with pytest.raises(MixpanelException):
        mp.import_data(None, "py-nosecret", "Unauthorised Import", ts)
    with pytest.raises(MixpanelException):
        mp.import_data(None, "py-wrongsecret", "Unauthorised Import", ts, api_secret="not-the-secret")
    with pytest.raises(MixpanelException):
        # The public token is not the secret.
        mp.import_data(None, "py-token", "Unauthorised Import", ts, api_secret=hearth.token)

    # Raw requests: /import without credentials is a 401.
    body = json.dumps([{"event": "Raw", "properties": {"time": ts, "distinct_id": "x",
                                                        "$insert_id": uuid.uuid4().hex}}])
    response = hearth.request("POST", "/import", query={"strict": "1"}, body=body,
                              headers={"Content-Type": "application/json"})
    assert response.status == 401, response
    # ... and the export needs the secret too.
    day = utc_date(ts)
    assert hearth.request("GET", "/api/2.0/export", query={"from_date": day, "to_date": day}).status == 401
    assert hearth.export(day, day) == []

    recorder = RecordingConsumer(Consumer(**urls))
    Mixpanel(hearth.token, consumer=recorder).import_data(
        None, "py-secret", "Authorised Import", ts, api_secret=hearth.secret)
    exported = hearth.export_until(day, day, sent_events([recorder]))
    assert [(e["event"], e["properties"]["distinct_id"]) for e in exported] == [("Authorised Import", "py-secret")]


def custom_props(profile: dict) -> dict:
    """A profile's properties minus Mixpanel's reserved/server-maintained `$` ones."""
    return {k: v for k, v in profile.items() if not k.startswith("$")}


def test_people_operations_have_mixpanel_semantics(hearth):
    urls = endpoint_urls(hearth)
    mp = Mixpanel(hearth.token, consumer=Consumer(**urls))

    alice = "py-alice"
    mp.people_set(alice, {"$name": "Alice", "$email": "alice@example.com", "plan": "free",
                          "age": 30, "temp": "x", "flag": True})
    mp.people_set_once(alice, {"plan": "ignored", "first_seen": "2026-01-01"})
    mp.people_set(alice, {"plan": "pro"})
    mp.people_increment(alice, {"logins": 1})
    mp.people_increment(alice, {"logins": 2, "score": 1.5})
    mp.people_increment(alice, {"age": -2})
    mp.people_append(alice, {"tags": "a"})
    mp.people_append(alice, {"tags": "b"})
    mp.people_append(alice, {"tags": "a"})  # $append does not dedupe
    mp.people_union(alice, {"colors": ["red", "blue"]})
    mp.people_union(alice, {"colors": ["blue", "green"]})
    mp.people_remove(alice, {"colors": "blue"})
    mp.people_remove(alice, {"colors": "purple"})  # absent: no-op
    mp.people_unset(alice, ["temp"])

    bob = "py-bob"
    mp.people_set(bob, {"plan": "free"})
    mp.people_delete(bob)

    # A batch (JSON array) on /engage, applied in order.
    buffered = BufferedConsumer(max_size=50, **urls)
    mpb = Mixpanel(hearth.token, consumer=buffered)
    carol = "py-carol"
    mpb.people_set(carol, {"n": 1, "gone": "soon"})
    mpb.people_increment(carol, {"n": 2})
    mpb.people_append(carol, {"l": "x"})
    mpb.people_union(carol, {"u": ["p", "q"]})
    mpb.people_unset(carol, ["gone"])
    mpb.people_set_once(carol, {"n": 100, "once": 1})
    buffered.flush()

    profile = hearth.profile(alice)
    assert profile is not None, "alice has no profile"
    expected = {
        "plan": "pro",
        "age": 28,
        "flag": True,
        "first_seen": "2026-01-01",
        "logins": 3,
        "score": 1.5,
        "tags": ["a", "b", "a"],
        "colors": ["red", "green"],
    }
    assert same_json(custom_props(profile), expected), custom_props(profile)

    assert hearth.profile(bob) is None, "a $delete'd profile is still returned"

    profile = hearth.profile(carol)
    assert profile is not None, "carol has no profile"
    assert same_json(custom_props(profile), {"n": 3, "l": ["x"], "u": ["p", "q"], "once": 1}), profile

    both = hearth.engage(distinct_ids=[alice, bob, carol])
    assert both["total"] == 2
    assert sorted(r["$distinct_id"] for r in both["results"]) == [alice, carol]
    single = hearth.engage(distinct_id=carol)
    assert [r["$distinct_id"] for r in single["results"]] == [carol]


def test_group_operations_have_mixpanel_semantics(hearth):
    urls = endpoint_urls(hearth)
    mp = Mixpanel(hearth.token, consumer=Consumer(**urls))
    key = "company_id"
    mp.group_set(key, "acme", {"name": "Acme", "size": 10, "tier": "gold"})
    mp.group_set_once(key, "acme", {"name": "ignored", "founded": 1999})
    mp.group_union(key, "acme", {"domains": ["acme.com", "acme.io"]})
    mp.group_union(key, "acme", {"domains": ["acme.io", "acme.org"]})
    mp.group_remove(key, "acme", {"domains": "acme.io"})
    mp.group_unset(key, "acme", ["tier"])
    mp.group_set(key, "globex", {"name": "Globex"})
    mp.group_delete(key, "globex")

    # The same group id under another group key is another profile.
    mp.group_set("team_id", "acme", {"name": "Team Acme"})

    acme = hearth.profile("acme", data_group_id=key)
    assert acme is not None, "group acme has no profile"
    assert same_json(custom_props(acme), {"name": "Acme", "size": 10, "founded": 1999,
                                          "domains": ["acme.com", "acme.org"]}), acme
    assert hearth.profile("globex", data_group_id=key) is None
    team = hearth.profile("acme", data_group_id="team_id")
    assert team is not None and team.get("name") == "Team Acme", team
    # Group profiles are not user profiles.
    assert hearth.profile("acme") is None


# Hearth's documented privacy default (README, crates/privacy): names, emails
# and phone numbers are never stored in plaintext; until encrypted personal
# fields exist they are dropped at ingest. Every other property is kept.
PERSONAL = {"$name": "Py Person", "$first_name": "Py", "$last_name": "Person",
            "$email": "pp@example.com", "$phone": "+15550100"}


TOKEN = re.compile(r"^pii:[A-Za-z0-9_-]{22}$")


def test_personal_profile_fields_are_stored_only_as_tokens(hearth):
    mp = Mixpanel(hearth.token, consumer=Consumer(**endpoint_urls(hearth)))
    kept = {"$avatar": "https://example.com/a.png", "$created": "2026-01-02T03:04:05", "plan": "x"}
    mp.people_set("py-reserved", {**PERSONAL, **kept})
    profile = hearth.profile("py-reserved")
    assert profile is not None, profile
    assert {k: profile.get(k) for k in kept} == kept, profile
    for key in PERSONAL:
        assert TOKEN.match(str(profile.get(key))), f"{key} is not a token: {profile}"
    text = json.dumps(profile)
    for value in PERSONAL.values():
        # As a JSON string: a short value ("Py") may occur inside a random token.
        assert json.dumps(value) not in text, f"{value!r} stored in plaintext: {profile}"
    assert len({profile[k] for k in PERSONAL}) == len(set(PERSONAL.values()))


def test_personal_event_properties_are_tokens_that_still_join(hearth):
    recorder = RecordingConsumer(Consumer(**endpoint_urls(hearth)))
    mp = Mixpanel(hearth.token, consumer=recorder)
    mp.track("py-reserved", "Button Clicked", {"name": "signup", "email": "pp@example.com", "n": 1, "button": "go"})
    mp.track("py-reserved-2", "Button Clicked", {"email": "pp@example.com", "button": "stop"})
    expected = sent_events([recorder])
    personal = {}
    for insert_id, event in expected.items():
        personal[insert_id] = {k: event["properties"].pop(k) for k in ("name", "email") if k in event["properties"]}
    day = utc_date(time.time())
    exported = hearth.export_until(day, day, expected)
    assert_exactly([{**e, "properties": {k: v for k, v in e["properties"].items() if k not in ("name", "email")}} for e in exported], expected)
    # Exports leave personal fields out; reports group by their tokens: the same value, the
    # same token, so the two events by pp@example.com join.
    assert all("name" not in e["properties"] and "email" not in e["properties"] for e in exported), exported
    spec = {"report": "insights", "from": day, "to": day, "interval": "day",
            "events": [{"event": "Button Clicked", "measure": "total"}]}
    segments = {}
    for key in ("email", "name"):
        result = hearth.request("POST", "/api/v1/query", body=json.dumps({**spec, "breakdown": key}), auth=hearth.secret_auth).json()
        segments[key] = {s["segment"]: sum(v for v in s["points"].values() if v) for s in result["series"]}
    email_tokens = [t for t in segments["email"] if TOKEN.match(str(t))]
    assert len(email_tokens) == 1 and segments["email"][email_tokens[0]] == 2, segments
    name_tokens = [t for t in segments["name"] if TOKEN.match(str(t))]
    assert len(name_tokens) == 1 and name_tokens[0] != email_tokens[0] and segments["name"][name_tokens[0]] == 1, segments
    assert "pp@example.com" not in json.dumps(segments) and "signup" not in json.dumps(segments)
    assert sorted(e["properties"]["button"] for e in exported) == ["go", "stop"]
