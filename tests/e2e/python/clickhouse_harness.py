"""A real ClickHouse server for the end-to-end tests: Debian's `clickhouse-server` (installed by
scripts/install-test-deps.sh), on free loopback ports, its data in a temporary folder, with a
password-protected user `hearth` so that Hearth's authentication to it is exercised.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import time
import urllib.error
import urllib.request

from hearth_harness import basic_auth, free_port

USER = "hearth"
PASSWORD = "e2e-password"


def server_binary() -> str:
    found = shutil.which("clickhouse-server") or (
        "/usr/bin/clickhouse-server" if pathlib.Path("/usr/bin/clickhouse-server").exists() else None)
    assert found, "clickhouse-server is not installed: run scripts/install-test-deps.sh"
    return found


class PingedServer:
    """A server process of a test, in `self.dir`, its output in `server.log`, ready once
    `GET /ping` answers `Ok.` (ClickHouse's HTTP interface, or chdb_server.py)."""

    name = "server"
    dir: pathlib.Path
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        raise NotImplementedError

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self):
        log = open(self.dir / "server.log", "ab")
        self.proc = subprocess.Popen(self.command(), cwd=self.dir, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"{self.name} exited: {(self.dir / 'server.log').read_text()[-2000:]}"
            try:
                with urllib.request.urlopen(self.url + "/ping", timeout=2) as response:
                    if response.read().startswith(b"Ok."):
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.name} did not answer /ping within 60 s")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


class ClickHouse(PingedServer):
    name = "clickhouse-server"

    def __init__(self, base_dir: pathlib.Path):
        self.dir = pathlib.Path(base_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.http_port = free_port()
        self.tcp_port = free_port()
        self.proc: subprocess.Popen | None = None
        root = str(self.dir)
        (self.dir / "config.xml").write_text(f"""<yandex>
  <logger><level>warning</level><console>1</console></logger>
  <http_port>{self.http_port}</http_port>
  <tcp_port>{self.tcp_port}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>{root}/data/</path>
  <tmp_path>{root}/tmp/</tmp_path>
  <user_files_path>{root}/user_files/</user_files_path>
  <format_schema_path>{root}/format_schemas/</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
</yandex>
""")
        (self.dir / "users.xml").write_text(f"""<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users>
    <{USER}><password>{PASSWORD}</password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></{USER}>
  </users>
  <quotas><default></default></quotas>
</yandex>
""")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def hearth_env(self, database: str) -> dict:
        """The HEARTH_* settings of a node that keeps its events in this server."""
        return {
            "HEARTH_STORAGE__BACKEND": "clickhouse",
            "HEARTH_STORAGE__CLICKHOUSE_URL": self.url,
            "HEARTH_STORAGE__CLICKHOUSE_DATABASE": database,
            "HEARTH_STORAGE__CLICKHOUSE_USER": USER,
            "HEARTH_STORAGE__CLICKHOUSE_PASSWORD": PASSWORD,
        }

    def command(self) -> list[str]:
        return [server_binary(), f"--config-file={self.dir / 'config.xml'}"]

    def query(self, sql: str) -> list[dict]:
        """Rows of a SELECT (JSONEachRow, 64-bit integers as numbers)."""
        text = self.execute(sql + " FORMAT JSONEachRow")
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def execute(self, sql: str, timeout: float = 3600) -> str:
        """Runs a statement; its answer's text."""
        request = urllib.request.Request(
            self.url + "/?output_format_json_quote_64bit_integers=0", data=sql.encode(), method="POST")
        request.add_header("Authorization", basic_auth(USER, PASSWORD))
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.read().decode()
        except urllib.error.HTTPError as err:
            raise AssertionError(f"ClickHouse refused {sql[:300]!r}: {err.read().decode()[:1000]}")
