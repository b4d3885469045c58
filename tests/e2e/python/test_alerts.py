"""Alerts delivered for real: a bulk export by a stolen key trips the canary and the export-volume
rule; the volume rule's automatic action disables the key, whose next request fails; each alert
reaches a webhook receiver (JSON, HMAC-signed, checked here with the shared secret) and an SMTP
server (aiosmtpd, a real one) as mail. Export approval by a second owner runs in the Rust suite
(crates/server/tests/guardrails.rs), which can sign passkey step-ups."""

from __future__ import annotations

import email
import hashlib
import hmac
import http.server
import json
import socket
import subprocess
import threading
import time

from aiosmtpd.controller import Controller

from hearth_harness import HEARTH_BIN, REPO_ROOT, basic_auth, utc_date

WEBHOOK_SECRET = "a-webhook-secret-of-some-length"


def cli(server, *args) -> str:
    result = subprocess.run([HEARTH_BIN, *args, "--data", str(server.data_dir)], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result
    return result.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Webhook:
    """An HTTP receiver keeping every POST's headers and body."""

    def __init__(self):
        self.received: list[tuple[dict, bytes]] = []
        received = self.received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hearth-alerts"


class Mailbox:
    def __init__(self):
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.1)
    return predicate()


def test_a_bulk_export_trips_the_canary_and_volume_rules_and_the_key_dies(hearth_factory, monkeypatch):
    webhook = Webhook()
    mailbox = Mailbox()
    smtp_port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        monkeypatch.setenv("HEARTH_ALERTS__WEBHOOK_URL", webhook.url)
        monkeypatch.setenv("HEARTH_ALERTS__WEBHOOK_SECRET", WEBHOOK_SECRET)
        monkeypatch.setenv("HEARTH_ALERTS__SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("HEARTH_ALERTS__SMTP_PORT", str(smtp_port))
        monkeypatch.setenv("HEARTH_ALERTS__SMTP_SECURITY", "none")
        monkeypatch.setenv("HEARTH_ALERTS__EMAIL_FROM", "hearth@example.com")
        monkeypatch.setenv("HEARTH_ALERTS__EMAIL_TO", "security@example.com,dpo@example.com")
        server = hearth_factory(name="alerts", start=False)
        # The canary only alerts; the volume rule acts: more than 0.005 x the 1000-row floor,
        # i.e. more than 5 rows in a day, is a bulk export for this organisation.
        cli(server, "alerts", "set", "canary", "--action", "none")
        cli(server, "alerts", "set", "export_volume", "--threshold", "0.005", "--action", "revoke")
        rules = {r["rule"]: r for r in map(json.loads, cli(server, "alerts", "rules", "--json").splitlines())}
        assert rules["export_volume"]["action"] == "revoke" and rules["canary"]["action"] == "none", rules
        server.start()

        now = int(time.time())
        body = json.dumps([{"event": "Login", "properties": {"time": now - 600 + n, "distinct_id": f"real{n}", "$insert_id": f"r{n}"}} for n in range(10)])
        assert server.request("POST", "/import", query={"strict": "1"}, body=body, headers={"Content-Type": "application/json"}, auth=server.secret_auth).status == 200
        assert server.request("POST", "/api/v1/canaries", body=json.dumps({"count": 1}), headers={"Content-Type": "application/json"}, auth=server.secret_auth).status == 201
        cli(server, "service-account", "create", "thief")
        key = json.loads(cli(server, "api-key", "create", "--account", "thief", "--scope", "read,export", "--project", "alerts", "--json"))
        auth = basic_auth(key["key"])
        day_from, day_to = utc_date(now - 86400), utc_date(now)

        exported = server.request("GET", "/api/2.0/export", query={"from_date": day_from, "to_date": day_to}, auth=auth)
        assert exported.status == 200, exported
        rows = [json.loads(line) for line in exported.body.splitlines()]
        people = {r["properties"]["distinct_id"] for r in rows}
        assert len(people) == 11 and {f"real{n}" for n in range(10)} < people, "ten people and the canary's rows"

        def alerts():
            return server.request("GET", "/api/v1/alerts", auth=server.secret_auth).json()["alerts"]
        assert wait_for(lambda: {"canary", "export_volume"} <= {a["rule"] for a in alerts()}), alerts()
        by_rule = {a["rule"]: a for a in alerts()}
        assert by_rule["canary"]["action_taken"] is None, by_rule
        assert by_rule["export_volume"]["action_taken"] == "key disabled", by_rule
        assert by_rule["export_volume"]["detail"]["rows_today"] == len(rows), by_rule
        assert by_rule["export_volume"]["credential"].startswith("api_key:") and by_rule["export_volume"]["credential"].endswith(f"#{key['id']}"), by_rule
        assert server.request("GET", "/api/2.0/export", query={"from_date": day_from, "to_date": day_to}, auth=auth).status == 401, "the key dies on its next request"

        # The webhook got both, signed with the shared secret over "timestamp.body".
        assert wait_for(lambda: len(webhook.received) >= 2), webhook.received
        delivered = {}
        for headers, raw in webhook.received:
            timestamp = headers["x-hearth-timestamp"]
            expected = "v1=" + hmac.new(WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()
            assert hmac.compare_digest(headers["x-hearth-signature"], expected), headers
            message = json.loads(raw)
            delivered[message["rule"]] = message
        assert delivered["canary"]["severity"] == "critical" and delivered["canary"]["detail"]["via"] == "export", delivered
        assert delivered["export_volume"]["action_taken"] == "key disabled", delivered
        forged = "v1=" + hmac.new(b"another secret", f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()
        assert not hmac.compare_digest(headers["x-hearth-signature"], forged)

        # And the mail: one per alert, to both recipients.
        assert wait_for(lambda: len(mailbox.messages) >= 2), mailbox.messages
        subjects = sorted(m["Subject"] for m in mailbox.messages)
        assert any("canary" in s for s in subjects) and any("export volume" in s for s in subjects), subjects
        assert all("security@example.com" in m["To"] and "dpo@example.com" in m["To"] for m in mailbox.messages)
        assert all(f"#{key['id']}" in m.get_payload(decode=True).decode() for m in mailbox.messages)

        # Every alert is an audit entry, and `hearth alerts test` reaches both channels.
        audited = cli(server, "audit", "list", "--json")
        assert "alert.canary" in audited and "alert.export_volume" in audited
        before = len(webhook.received), len(mailbox.messages)
        tested = subprocess.run([HEARTH_BIN, "alerts", "test"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
        assert tested.returncode == 0 and "test alert delivered" in tested.stdout, tested
        assert wait_for(lambda: len(webhook.received) > before[0] and len(mailbox.messages) > before[1])
    finally:
        controller.stop()


def test_a_key_from_a_new_country_is_flagged_and_with_revoke_set_it_dies(hearth_factory):
    server = hearth_factory(name="travel", trusted_proxies=["127.0.0.1/32"], start=False)
    cli(server, "alerts", "set", "new_country", "--action", "revoke")
    server.start()
    cli(server, "service-account", "create", "reports")
    key = json.loads(cli(server, "api-key", "create", "--account", "reports", "--scope", "read", "--project", "travel", "--json"))
    auth = basic_auth(key["key"])

    def read(address):
        return server.request("GET", "/api/v1/privacy/findings", auth=auth, headers={"X-Forwarded-For": address}).status

    # The first country is the key's baseline; more reads from it are quiet.
    assert read("8.8.8.8") == 200 and read("8.8.4.4") == 200
    alerts = server.request("GET", "/api/v1/alerts", auth=server.secret_auth).json()["alerts"]
    assert not [a for a in alerts if a["rule"] == "new_country"], alerts
    # Then the same key from another country: flagged, and (as set) the key is disabled.
    assert read("193.99.144.80") == 200, "the request that trips the rule is answered; the action bites on the next"
    alerts = server.request("GET", "/api/v1/alerts", auth=server.secret_auth).json()["alerts"]
    flagged = [a for a in alerts if a["rule"] == "new_country"]
    assert len(flagged) == 1 and flagged[0]["action_taken"] == "key disabled", alerts
    assert flagged[0]["detail"]["country"] not in (None, "US") and flagged[0]["credential"].endswith(f"#{key['id']}"), flagged
    assert "193.99.144.80" not in json.dumps(alerts), "countries, never addresses"
    assert read("193.99.144.80") == 401
