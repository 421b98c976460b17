"""create_app warms the process up once: a fresh worker's first search or CapabilityStatement
finds the search parameters and ConceptMap versions loaded; a failing warm-up only logs."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from fhir_adapter import conceptmaps, gateway
from fhir_adapter.gateway import create_app, terminology
from fhir_adapter.store import searchparams
from fhir_adapter.validation import VERSIONS


def test_create_app_loads_what_first_requests_need(tmp_path: Path) -> None:
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'fhir.db'}"})
    try:
        assert gateway.warm.cache_info().currsize == 1  # once per process
        assert searchparams._registry.cache_info().currsize == len(VERSIONS)
        assert terminology._versions_of.cache_info().currsize >= len(conceptmaps.all_maps())
        response = app.test_client().get("/fhir/AdverseEvent?subject=Patient/x")
        assert response.status_code == 200
    finally:
        app.extensions["fhir_store"].close()


def test_a_failing_warm_up_is_logged_not_raised(monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> frozenset[str]:
        raise ValueError("not a ConceptMap")

    monkeypatch.setattr(terminology, "served_versions", broken)
    with caplog.at_level(logging.WARNING, logger="fhir_adapter.gateway"):
        gateway.warm.__wrapped__()  # the process's cached warm-up has run already
    assert "warm-up failed" in caplog.text
    assert "not a ConceptMap" in caplog.text
