"""IP privacy: client addresses are used for geo enrichment and then forgotten.

A server with --trusted-proxy 127.0.0.1/32 receives
  - /track/ (browser-like: POST, form data=base64(JSON array), ?ip=1) with X-Forwarded-For: 8.8.8.8,
  - /engage/ $set with the $ip modifier 8.8.4.4,
  - /import with an event whose properties.ip is 9.9.9.9.
After a graceful stop, no file under its data directory (recursively, including the decompressed
contents of every gzip and zstd frame found in them, and every value of every Parquet part read
with DuckDB, whatever its page compression) and not its log contains
any of these addresses, as text or as packed 4-byte integers. The export and the profile show the
country instead. A second server, without --trusted-proxy, must ignore X-Forwarded-For.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.parse
import uuid

from disk_scan import all_files, find_needles
from hearth_harness import utc_date

ADDRESSES = ["8.8.8.8", "8.8.4.4", "9.9.9.9"]
ORIGIN = "http://127.0.0.1:9"  # any page origin; the server must echo it


def needles(address: str) -> dict[str, bytes]:
    octets = bytes(int(part) for part in address.split("."))
    return {
        f"{address} as text": address.encode(),
        f"{address} as UTF-16LE text": address.encode("utf-16-le"),
        f"{address} as big-endian u32": octets,
        f"{address} as little-endian u32": octets[::-1],
    }


def find_addresses(paths) -> tuple[list[str], int, int]:
    """Hits as readable strings, the number of files read and of compressed frames opened."""
    patterns = {}
    for address in ADDRESSES:
        patterns.update(needles(address))
    return find_needles(paths, patterns)


def b64_form(objects) -> bytes:
    payload = base64.b64encode(json.dumps(objects).encode()).decode()
    return ("data=" + urllib.parse.quote(payload, safe="")).encode()


def browser_track(server, events, *, ip: int, xff: str | None):
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Origin": ORIGIN,
        "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                      "Chrome/148.0.0.0 Safari/537.36",
    }
    if xff is not None:
        headers["X-Forwarded-For"] = xff
    query = {"verbose": "1", "ip": str(ip), "_": str(int(time.time() * 1000))}
    response = server.request("POST", "/track/", query=query, body=b64_form(events), headers=headers)
    assert response.status == 200, response
    assert response.json().get("status") == 1, response
    assert response.headers.get("Access-Control-Allow-Origin") == ORIGIN, dict(response.headers)
    assert response.headers.get("Access-Control-Allow-Credentials") == "true", dict(response.headers)


def browser_event(server, name: str, device: str, **extra) -> dict:
    return {"event": name, "properties": {
        "token": server.token,
        "distinct_id": f"$device:{device}",
        "$device_id": device,
        "time": round(time.time(), 3),
        "$insert_id": uuid.uuid4().hex[:16],
        "mp_lib": "web",
        **extra,
    }}


def test_ips_enrich_and_are_never_stored_or_logged(hearth_factory):
    server = hearth_factory(name="privacy", trusted_proxies=["127.0.0.1/32"])
    device = str(uuid.uuid4())

    geo = browser_event(server, "Geo From Proxy", device)
    no_geo = browser_event(server, "No Geo Wanted", device)
    browser_track(server, [geo], ip=1, xff="8.8.8.8")
    browser_track(server, [no_geo], ip=0, xff="8.8.8.8")  # ip=0: no geolocation

    profile_update = [{
        "$token": server.token,
        "$distinct_id": "privacy-user",
        "$set": {"plan": "pro", "seats": 3},
        "$ip": "8.8.4.4",
    }]
    response = server.request(
        "POST", "/engage/", query={"verbose": "1", "ip": "1", "_": str(int(time.time() * 1000))},
        body=b64_form(profile_update),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": ORIGIN},
    )
    assert response.status == 200 and response.json().get("status") == 1, response

    imported = {"event": "Imported With IP", "properties": {
        "time": int(time.time()) - 3600,
        "distinct_id": "privacy-importer",
        "$insert_id": uuid.uuid4().hex,
        "ip": "9.9.9.9",
        "kept": "yes",
    }}
    response = server.request("POST", "/import", query={"strict": "1"}, body=json.dumps([imported]),
                              headers={"Content-Type": "application/json"}, auth=server.secret_auth)
    assert response.status == 200, response
    assert response.json().get("num_records_imported") == 1, response

    today_from = utc_date(time.time() - 3600)
    today_to = utc_date(time.time())
    ids = [geo["properties"]["$insert_id"], no_geo["properties"]["$insert_id"],
           imported["properties"]["$insert_id"]]
    exported = {e["event"]: e["properties"] for e in server.export_until(today_from, today_to, ids)}
    assert set(exported) == {"Geo From Proxy", "No Geo Wanted", "Imported With IP"}, exported

    proxied = exported["Geo From Proxy"]
    assert proxied.get("mp_country_code") == "US", proxied
    assert "ip" not in proxied and "$ip" not in proxied, proxied
    assert "mp_country_code" not in exported["No Geo Wanted"], exported["No Geo Wanted"]
    from_import = exported["Imported With IP"]
    assert "ip" not in from_import, from_import
    assert from_import.get("kept") == "yes"
    code = from_import.get("mp_country_code")
    assert isinstance(code, str) and len(code) == 2 and code.isupper(), from_import

    profile = server.profile("privacy-user")
    assert profile is not None, "no profile for privacy-user"
    assert profile.get("plan") == "pro" and profile.get("seats") == 3, profile
    assert profile.get("$country_code") == "US", profile
    assert "$ip" not in profile and "ip" not in profile, profile
    for value in profile.values():
        assert value not in ADDRESSES, profile

    exit_code = server.stop()
    assert exit_code == 0, f"graceful stop exited with {exit_code}"

    files = all_files(server.data_dir)
    assert files, "the data directory is empty"
    hits, n_files, n_frames = find_addresses(files + [server.log_path])
    if any(f.suffix == ".parquet" for f in files):
        assert n_frames > 0, "Parquet files, but no compressed page could be opened: the scan would be blind"
    assert not hits, f"client IP addresses found ({len(hits)} hits in {n_files} files, {n_frames} frames):\n" + "\n".join(hits[:20])
    # The log was really written and really read.
    assert server.log_path.stat().st_size > 0


def test_untrusted_forwarded_for_is_ignored(hearth_factory):
    server = hearth_factory(name="no-proxy")  # no --trusted-proxy
    device = str(uuid.uuid4())
    spoofed = browser_event(server, "Spoofed Forwarded For", device)
    browser_track(server, [spoofed], ip=1, xff="8.8.8.8")
    also = browser_event(server, "Spoofed Real IP", device)
    response = server.request(
        "POST", "/track/", query={"verbose": "1", "ip": "1"}, body=b64_form([also]),
        headers={"Content-Type": "application/x-www-form-urlencoded",
                 "X-Forwarded-For": "8.8.4.4, 9.9.9.9", "X-Real-IP": "9.9.9.9",
                 "Forwarded": "for=8.8.4.4"},
    )
    assert response.status == 200 and response.json().get("status") == 1, response

    day_from, day_to = utc_date(time.time() - 60), utc_date(time.time())
    ids = [spoofed["properties"]["$insert_id"], also["properties"]["$insert_id"]]
    exported = server.export_until(day_from, day_to, ids)
    assert sorted(e["event"] for e in exported) == ["Spoofed Forwarded For", "Spoofed Real IP"], exported
    for event in exported:
        props = event["properties"]
        # The request came from 127.0.0.1 (loopback): no country, and the header was not believed.
        assert "mp_country_code" not in props, props
        assert "$city" not in props and "$region" not in props, props
        assert props["distinct_id"] == f"$device:{device}"

    assert server.stop() == 0
    hits, n_files, _ = find_addresses(all_files(server.data_dir) + [server.log_path])
    assert not hits, f"forwarded-for addresses stored or logged ({n_files} files):\n" + "\n".join(hits[:20])
