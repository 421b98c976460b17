"""Fixtures of the gateway tests: the real store on SQLite and (when FHIR_ADAPTER_TEST_POSTGRES_URL
is set) on a PostgreSQL database of its own, a Flask app and test client over it, and small
helpers. Tests isolate themselves by unique identifier systems, so one database per backend
serves the whole session."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import fixture_path
from flask import Flask
from flask.testing import FlaskClient
from store_backends import new_postgres_database

from fhir_adapter.gateway import create_app
from fhir_adapter.store.canonical import loads

BASE = "http://testserver/fhir"
FHIR = "application/fhir+json"


BACKENDS = [pytest.param("sqlite", id="sqlite"),
            pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[str]:
    """One database per backend for the session."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('gateway') / 'fhir.db'}"
        return
    with new_postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def app(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """The gateway over the real store."""
    app = create_app({"DATABASE_URL": database_url, "PUBLIC_BASE_URL": BASE, "MAX_COUNT": 50,
                      "EXPORT_DIR": str(tmp_path_factory.mktemp("exports"))})
    app.testing = True
    yield app
    for name in ("fhir_store", "fhir_conceptmaps"):
        if name in app.extensions:
            app.extensions[name].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def unique_system() -> str:
    """An identifier system no other test uses: the isolation of one test's data."""
    return f"urn:test:{uuid.uuid4().hex}"


def patient(system: str, value: str = "p1", **extra: Any) -> dict[str, Any]:
    """A small valid Patient (valid in R4 and R5 alike)."""
    return {"resourceType": "Patient", "identifier": [{"system": system, "value": value}],
            **extra}


def post(client: FlaskClient, resource: dict[str, Any], **headers: str) -> Any:
    """POST a resource to its type endpoint."""
    return client.post(f"/fhir/{resource['resourceType']}", json=resource,
                       headers={"Content-Type": FHIR, "Accept": FHIR, **headers})


def official(name: str) -> dict[str, Any]:
    """An official HL7 example from tests/fixtures/fhir/examples (skips when absent)."""
    return loads(fixture_path("fhir", "examples", *name.split("/")).read_bytes())
