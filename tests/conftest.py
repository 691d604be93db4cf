"""Shared fixtures: one throwaway PostgreSQL server per test session, a fresh database per
test, and exact stop requests for the study loop.

The PostgreSQL ones are skipped (with the reason) where the PostgreSQL server binaries are not installed; CI has them.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    """A running :class:`storage.testing.PostgresServer`, stopped at the end of the session."""
    from storage.testing import PostgresNotInstalled, start_postgres

    try:
        server = start_postgres(tmp_path_factory.mktemp("postgres"))
    except PostgresNotInstalled as err:
        pytest.skip(str(err))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server) -> str:
    """URL of the session server's ``postgres`` database (trust auth, 127.0.0.1)."""
    return postgres_server.url


@pytest.fixture
def postgres_db_url(postgres_server) -> str:
    """URL of an empty database created for this test and dropped after it."""
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url.rsplit("/", 1)[1])


@pytest.fixture
def prompt_stops(monkeypatch):
    """Read the stop flag before every trial (drivers read it every STOP_POLL_S), so a stop
    requested after trial k lands exactly there."""
    import workbench.study

    monkeypatch.setattr(workbench.study, "STOP_POLL_S", 0.0)


@pytest.fixture
def ui_allows_test_evaluators():
    """A UI started with ``--allow-evaluators tests`` (its forms name tests.evaluators)."""
    from pathlib import Path

    from ui.policy import ServePolicy, set_policy

    set_policy(ServePolicy(frozenset({"tests"}), Path(__file__).resolve().parents[1]))
    yield
    set_policy(ServePolicy())
