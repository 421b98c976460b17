"""GET /metadata: the CapabilityStatement is generated from what the server really does, is
valid in its FHIR version, and parses with fhirclient's strict R4 models."""

from __future__ import annotations

import pytest
from fhirclient.models.capabilitystatement import CapabilityStatement
from gateway_fixtures import BASE, app, client, database_url

from fhir_adapter.gateway.context import STORED_TYPES
from fhir_adapter.store.canonical import loads
from fhir_adapter.store.searchparams import search_params
from fhir_adapter.validation import validate

__all__ = ["app", "client", "database_url"]


def _statement(client, version: str) -> dict:  # type: ignore[no-untyped-def]
    r = client.get("/fhir/R5/metadata" if version == "R5" else "/fhir/metadata")
    assert r.status_code == 200
    return loads(r.data)


def _resources(statement: dict) -> dict[str, dict]:
    return {r["type"]: r for r in statement["rest"][0]["resource"]}


@pytest.mark.parametrize("version,release", [("R4", "4.0.1"), ("R5", "5.0.0")])
def test_valid_in_its_version(client, version, release) -> None:
    statement = _statement(client, version)
    assert statement["fhirVersion"] == release
    issues = validate(statement, version)
    # The official R4 JSON schema was cut before 4.0.1: its fhirVersion enum ends at 4.0.0
    # (the R4B models accept 4.0.1). That is the only finding allowed.
    assert [i for i in issues if i.expression != "CapabilityStatement.fhirVersion"] == []
    if version == "R5":
        assert issues == []


def test_fhirclient_parses_it_strictly(client) -> None:
    parsed = CapabilityStatement(_statement(client, "R4"))  # raises on any model error
    assert parsed.rest[0].security is None  # no auth configured: no oauth-uris extension


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_lists_every_indexed_search_parameter_and_the_interactions(client, version) -> None:
    resources = _resources(_statement(client, version))
    assert set(STORED_TYPES) <= set(resources)
    for rtype in STORED_TYPES:
        listed = {p["name"]: p for p in resources[rtype]["searchParam"]}
        indexed = search_params(version, rtype)  # type: ignore[arg-type]
        assert set(listed) == set(indexed), rtype
        assert all(listed[c]["definition"] == p.url and listed[c]["type"] == p.type
                   for c, p in indexed.items())
        codes = {i["code"] for i in resources[rtype]["interaction"]}
        assert codes == {"read", "vread", "update", "patch", "delete", "history-instance",
                         "history-type", "create", "search-type"}
        assert resources[rtype]["conditionalCreate"] is True
    assert "ResearchSubject:study" in resources["ResearchStudy"]["searchRevInclude"]
    assert "ResearchSubject:individual" in resources["ResearchSubject"]["searchInclude"] \
        or version == "R5"


def test_concept_maps_and_operations(client) -> None:
    r4 = _statement(client, "R4")
    maps = _resources(r4)["ConceptMap"]
    assert {i["code"] for i in maps["interaction"]} >= {"read", "search-type"}
    assert {"url", "source-code", "target-code"} <= {p["name"] for p in maps["searchParam"]}
    assert maps["operation"][0]["name"] == "translate"
    # The maps are R4-shaped: the R5 statement offers only $translate for them.
    r5_maps = _resources(_statement(client, "R5"))["ConceptMap"]
    assert "interaction" not in r5_maps and r5_maps["operation"][0]["name"] == "translate"
    rest = r4["rest"][0]
    assert {i["code"] for i in rest["interaction"]} == {"transaction", "batch",
                                                         "history-system"}
    assert [o["name"] for o in rest["operation"]] == ["ingest", "export"]
    assert rest["operation"][1]["definition"].startswith("http://hl7.org/fhir/uv/bulkdata/")
    study_ops = _resources(r4)["ResearchStudy"]["operation"]
    assert [o["name"] for o in study_ops] == ["validate", "export"]
    assert study_ops[1]["definition"].endswith("/OperationDefinition/ResearchStudy-export")
    assert r4["url"] == f"{BASE}/metadata"
