"""Fixtures of the Python end-to-end tests.

Each test gets its own Hearth server (``hearth`` fixture, or several via ``hearth_factory``): a
temporary data directory, a project created with ``hearth project create --json``, ``hearth serve``
on a free loopback port, ready once ``GET /readyz`` answers 200, and killed at teardown. The
server's stdout and stderr go to ``hearth.log`` beside its data directory (the IP-privacy test
reads it); its tail is attached to the report of a failed test.
"""

from __future__ import annotations

import pytest

from hearth_harness import Hearth, servers_of_current_test


@pytest.fixture
def hearth_factory(tmp_path):
    """Makes servers on demand (each in its own folder under tmp_path); kills them at teardown."""
    servers: list[Hearth] = []

    def make(name="e2e", trusted_proxies=(), start=True, env=None, project=None) -> Hearth:
        server = Hearth(tmp_path / f"server{len(servers)}", trusted_proxies=trusted_proxies, name=name, env=env,
                        project=project)
        servers.append(server)
        if start:
            server.start()
        return server

    yield make
    for server in servers:
        server.kill()


@pytest.fixture
def hearth(hearth_factory) -> Hearth:
    return hearth_factory()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    servers_of_current_test.clear()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.when in ("call", "setup"):
        for server in servers_of_current_test:
            report.sections.append(
                (f"hearth log {server.log_path}", server.log_tail(40))
            )
