"""HTTPS with rustls when certificate files are configured: the server answers over TLS with a
certificate the client verifies, sends Strict-Transport-Security, and the official Python SDK
ingests through it; a plain-HTTP request to the TLS port gets no answer."""

from __future__ import annotations

import json
import ssl
import subprocess
import time
import urllib.request

from mixpanel import Consumer, Mixpanel


def self_signed(directory) -> tuple[str, str]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost"],
        check=True, capture_output=True,
    )
    return str(cert), str(key)


def test_https_with_configured_certificates(hearth_factory, monkeypatch, tmp_path):
    cert, key = self_signed(tmp_path)
    monkeypatch.setenv("HEARTH_TLS__CERTIFICATE", cert)
    monkeypatch.setenv("HEARTH_TLS__KEY", key)
    server = hearth_factory(name="tls", start=False)
    server.spawn()
    context = ssl.create_default_context(cafile=cert)
    base = f"https://localhost:{server.port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(base + "/readyz", context=context, timeout=2) as response:
                assert response.status == 200
                hsts = response.headers.get("Strict-Transport-Security", "")
                break
        except OSError:
            assert time.monotonic() < deadline, server.log_tail()
            time.sleep(0.1)
    assert hsts.startswith("max-age="), hsts

    # The SDK's verify_cert goes to requests' verify: our CA file.
    consumer = Consumer(events_url=f"{base}/track", request_timeout=10, verify_cert=cert)
    Mixpanel(server.token, consumer=consumer).track("tls-user", "Over TLS", {"ok": True})
    request = urllib.request.Request(base + "/api/2.0/export?from_date=2020-01-01&to_date=2100-01-01",
                                     headers={"Authorization": server.secret_auth})
    deadline = time.monotonic() + 10
    while True:
        with urllib.request.urlopen(request, context=context, timeout=5) as response:
            lines = [json.loads(line) for line in response.read().splitlines() if line.strip()]
        if lines or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [e["event"] for e in lines] == ["Over TLS"], lines

    # Plain HTTP to the TLS port is not answered as HTTP.
    try:
        with urllib.request.urlopen(f"http://localhost:{server.port}/readyz", timeout=3) as response:
            answered = response.status
    except Exception:  # noqa: BLE001 - any failure is the expected outcome
        answered = None
    assert answered is None
