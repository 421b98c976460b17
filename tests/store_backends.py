"""Store fixtures: every store test runs on SQLite (a temporary file) and on PostgreSQL when
FHIR_ADAPTER_TEST_POSTGRES_URL names a server (e.g. postgresql://postgres@127.0.0.1:5432/
postgres). The PostgreSQL tests get a database of their own, created through that URL and
dropped at the end of the session.

Import the fixtures into a test module: `from store_backends import backend, store_url, store`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from fhir_adapter.store import SqlStore, open_store
from fhir_adapter.store.schema import database_url, metadata

POSTGRES_ENV = "FHIR_ADAPTER_TEST_POSTGRES_URL"


@contextmanager
def new_postgres_database() -> Iterator[str]:
    """A database of its own on the server of $FHIR_ADAPTER_TEST_POSTGRES_URL (skips the
    test when unset), dropped afterwards."""
    server = os.environ.get(POSTGRES_ENV)
    if not server:
        pytest.skip(f"{POSTGRES_ENV} is not set: PostgreSQL store tests skipped (set it to "
                    "e.g. postgresql://postgres@127.0.0.1:5432/postgres)")
    admin_url = make_url(database_url(server)).set(database="postgres")
    name = f"fhir_adapter_test_{uuid.uuid4().hex[:12]}"
    # NullPool: no idle admin connection held while the database lives (many test databases
    # at once would otherwise fill max_connections)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """One PostgreSQL database for the session's function-scoped store tests."""
    with new_postgres_database() as url:
        yield url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_store(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqlStore]:
    """A store shared by the tests of one module (that only read), on its own database."""
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('store') / 'store.db'}"
        else:
            url = stack.enter_context(new_postgres_database())
        opened = open_store(url, clock=Clock())
        stack.callback(opened.close)
        yield opened


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """An empty database of the backend under test."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url = request.getfixturevalue("postgres_database")
    engine = create_engine(database_url(url))
    metadata.create_all(engine)
    with engine.begin() as conn:  # each test starts empty
        names = ", ".join(t.name for t in metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


class Clock:
    """A controllable clock: each call moves one second on, so versions are ordered."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    """An empty store with a stepping clock (instants 2026-01-02T03:04:06Z, :07, ...)."""
    opened = open_store(store_url, clock=Clock())
    try:
        yield opened
    finally:
        opened.close()
