"""When the dashboard is served: on by default, off with authorization on unless configured."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from fhir_adapter.gateway import create_app

PATHS = ("/", "/studies/4418072e-4e9a-52c2-9ff2-37a9c4e54cbf", "/dashboard/static/study.js",
         "/dashboard/static/vendor/vega.min.js")


def _client(tmp_path: Path, **settings: str) -> FlaskClient:
    return create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'd.db'}", **settings}).test_client()


def test_on_without_auth(tmp_path: Path) -> None:
    client = _client(tmp_path)
    for path in PATHS:
        with client.get(path) as response:  # static files stream: close them
            assert response.status_code == 200, path
    page = client.get("/studies/abc-1").get_data(as_text=True)
    assert 'data-study-id="abc-1"' in page and 'data-fhir-base="/fhir"' in page
    # The page holds no data: its scripts read the FHIR API.
    assert "ResearchSubject/" not in page


@pytest.mark.parametrize("settings", [{"AUTH": "smart"}, {"AUTH": "smart", "DASHBOARD": "auto"},
                                      {"DASHBOARD": "off"}])
def test_off_answers_404_saying_why(tmp_path: Path, settings: dict[str, str]) -> None:
    client = _client(tmp_path, **settings)
    for path in PATHS:
        html = client.get(path, headers={"Accept": "text/html"})
        assert html.status_code == 404, path
        assert "dashboard is off" in html.get_data(as_text=True), path
        assert "text/html" in html.content_type
        fhir = client.get(path, headers={"Accept": "application/fhir+json"})
        assert fhir.status_code == 404
        outcome = fhir.get_json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert "dashboard is off" in outcome["issue"][0]["diagnostics"]
    # The FHIR API itself is untouched by the dashboard setting: its data still needs a token.
    assert client.get("/fhir/metadata").status_code == 200
    if settings.get("AUTH") == "smart":
        assert client.get("/fhir/ResearchStudy").status_code == 401


def test_auth_read_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FHIR_ADAPTER_AUTH", "smart")
    assert _client(tmp_path).get("/").status_code == 404
    monkeypatch.setenv("FHIR_ADAPTER_DASHBOARD", "on")
    assert _client(tmp_path).get("/").status_code == 200
    monkeypatch.setenv("FHIR_ADAPTER_AUTH", "none")
    monkeypatch.setenv("FHIR_ADAPTER_DASHBOARD", "auto")
    assert _client(tmp_path).get("/").status_code == 200


def test_on_with_auth_when_configured(tmp_path: Path) -> None:
    assert _client(tmp_path, AUTH="smart", DASHBOARD="on").get("/").status_code == 200


def test_bad_setting_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="FHIR_ADAPTER_DASHBOARD must be one of auto, on, off"):
        _client(tmp_path, DASHBOARD="maybe")


def test_not_an_id_is_a_404_page(tmp_path: Path) -> None:
    response = _client(tmp_path).get("/studies/" + "x" * 65)
    assert response.status_code == 404
    assert "not a FHIR resource id" in response.get_data(as_text=True)
