"""A current ClickHouse engine behind ClickHouse's HTTP interface, for checking Hearth's SQL on it.

Debian ships ClickHouse 18.16 (2018), which the ClickHouse backend's tests run against; PyPI's
`chdb` embeds a current engine (26.x) in Python but has no server. This is the smallest server
that lets an unmodified Hearth node talk to that engine: POST a statement in the body and get its
answer, or POST `?query=INSERT INTO db.t (cols) FORMAT RowBinary` with the rows in the body (the
rows are written to a file and inserted with the `file()` table function, typed by the table's
own columns). Nothing else of the HTTP interface is there. Statements run one at a time.

Run as a script: `python chdb_server.py PORT DATA_DIR` (from a clean folder: chdb reads a
config.xml from the current directory). `ChdbServer` starts it for a test and has the
`ClickHouse` harness's interface (`hearth_env`, `query`, `kill`).
"""

from __future__ import annotations

import http.server
import itertools
import json
import os
import pathlib
import re
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request

from clickhouse_harness import PingedServer
from hearth_harness import free_port

INSERT = re.compile(r"^\s*INSERT INTO\s+([\w.]+)\s*\(([^)]*)\)\s*FORMAT\s+RowBinary\s*$", re.IGNORECASE | re.DOTALL)


def serve(port: int, data_dir: str) -> None:
    from chdb import session

    engine = session.Session(data_dir)
    lock = threading.Lock()
    uploads = itertools.count()

    def run(sql: str, body: bytes) -> str:
        insert = INSERT.match(sql)
        if insert is None:
            return str(engine.query(sql or body.decode()))
        table, columns = insert.group(1), [c.strip() for c in insert.group(2).split(",")]
        described = engine.query(f"DESCRIBE TABLE {table} FORMAT JSONEachRow")
        types = {row["name"]: row["type"] for row in map(json.loads, filter(None, str(described).splitlines()))}
        path = pathlib.Path(data_dir) / f"upload-{next(uploads)}.bin"
        path.write_bytes(body)
        structure = ", ".join(f"{c} {types[c]}" for c in columns)
        try:
            engine.query(f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM file('{path}', 'RowBinary', '{structure}')")
        finally:
            path.unlink()
        return ""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            params = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(self.path).query))
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                with lock:
                    answer = run(params.get("query", ""), body).encode()
                status = 200
            except Exception as error:  # the engine's message, as ClickHouse answers it
                answer, status = str(error).encode(), 500
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def do_GET(self):
            answer = b"Ok.\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


class ChdbServer(PingedServer):
    """The chdb server as a child process, with the interface of clickhouse_harness.ClickHouse."""

    name = "the chdb server"

    def __init__(self, base_dir: pathlib.Path):
        self.dir = pathlib.Path(base_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def version(self) -> str:
        return self.query("SELECT version() AS v")[0]["v"]

    def hearth_env(self, database: str) -> dict:
        return {
            "HEARTH_STORAGE__BACKEND": "clickhouse",
            "HEARTH_STORAGE__CLICKHOUSE_URL": self.url,
            "HEARTH_STORAGE__CLICKHOUSE_DATABASE": database,
            "HEARTH_STORAGE__CLICKHOUSE_USER": "default",
            "HEARTH_STORAGE__CLICKHOUSE_PASSWORD": "",
        }

    def command(self) -> list[str]:
        return [sys.executable, __file__, str(self.port), str(self.dir / "data")]

    def query(self, sql: str) -> list[dict]:
        """Rows of a SELECT; a refused statement raises AssertionError, as `ClickHouse.query` does."""
        request = urllib.request.Request(self.url + "/", data=(sql + " FORMAT JSONEachRow").encode(), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=600) as response:
                return [json.loads(line) for line in response.read().decode().splitlines() if line.strip()]
        except urllib.error.HTTPError as err:
            raise AssertionError(f"chdb refused {sql[:300]!r}: {err.read().decode()[:1000]}")


if __name__ == "__main__":
    os.makedirs(sys.argv[2], exist_ok=True)
    serve(int(sys.argv[1]), sys.argv[2])
