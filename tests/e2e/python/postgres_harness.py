"""A real PostgreSQL server for the end-to-end tests: Debian's binaries (installed by
scripts/install-test-deps.sh), a throwaway cluster in a temporary folder on a free loopback
port, with a password user `hearth` so that Hearth's authentication to it is exercised. Run as
root, the cluster runs as the `postgres` user (PostgreSQL refuses root). The Rust tests have the
same in `sqldb::local_server`.
"""

from __future__ import annotations

import glob
import os
import pathlib
import shutil
import subprocess
import tempfile
import time

from hearth_harness import free_port

USER = "hearth"
PASSWORD = "e2e-password"
DATABASE = "hearth"


def bin_dir() -> pathlib.Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    assert found, "PostgreSQL is not installed: run scripts/install-test-deps.sh"
    return pathlib.Path(found[-1]).parent


class Postgres:
    def __init__(self):
        # Directly under the system's temporary folder: the `postgres` user must reach it, and
        # pytest's own folders are private to this user.
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="hearth-postgres-"))
        self.port = free_port()
        self.bin = bin_dir()
        self.as_root = os.geteuid() == 0
        self.proc: subprocess.Popen | None = None
        (self.dir / "password").write_text(PASSWORD)
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")
            shutil.chown(self.dir / "password", "postgres", "postgres")
        self._run("initdb", "-D", str(self.dir / "data"), "-U", USER, "-A", "scram-sha-256", "-E", "UTF8",
                  "--locale=C", "--no-sync", f"--pwfile={self.dir / 'password'}")

    def _command(self, program: str, *args: str) -> list[str]:
        command = [str(self.bin / program), *args]
        return ["runuser", "-u", "postgres", "--", *command] if self.as_root else command

    def _run(self, program: str, *args: str) -> None:
        result = subprocess.run(self._command(program, *args), capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"{program} failed: {result.stderr}"

    @property
    def url(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    def hearth_env(self) -> dict:
        """The HEARTH_* settings of a node that keeps its metadata in this server."""
        return {
            "HEARTH_METADATA__BACKEND": "postgres",
            "HEARTH_METADATA__POSTGRES_URL": self.url,
            "HEARTH_METADATA__POSTGRES_PASSWORD": PASSWORD,
        }

    def start(self) -> "Postgres":
        log = open(self.dir / "server.log", "ab")
        self.proc = subprocess.Popen(
            self._command("postgres", "-D", str(self.dir / "data"), "-p", str(self.port), "-k", str(self.dir),
                          "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"),
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 60
        while subprocess.run(self._command("pg_isready", "-h", "127.0.0.1", "-p", str(self.port), "-q")).returncode != 0:
            assert self.proc.poll() is None, f"postgres exited: {(self.dir / 'server.log').read_text()[-2000:]}"
            assert time.monotonic() < deadline, "postgres did not start within 60 s"
            time.sleep(0.1)
        if not getattr(self, "created", False):
            env = {**os.environ, "PGPASSWORD": PASSWORD}
            subprocess.run([str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER,
                            "-d", "postgres", "-c", f"CREATE DATABASE {DATABASE}"],
                           check=True, capture_output=True, env=env, timeout=60)
            self.created = True
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            subprocess.run(self._command("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "stop"),
                           capture_output=True, timeout=60)
            self.proc.wait(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)
