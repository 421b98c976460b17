"""The StructureDefinitions of our extensions and the CodeSystems we publish: served read-only
at /fhir/StructureDefinition and /fhir/CodeSystem in R4 and R5, searchable by url, listed in
the CapabilityStatement."""

from __future__ import annotations

import pytest
from gateway_fixtures import FHIR, app, client, database_url

from fhir_adapter import extension_defs
from fhir_adapter.mapping import own_terms
from fhir_adapter.mapping.ctgov_enums import ENUMS
from fhir_adapter.store.canonical import loads

__all__ = ["app", "client", "database_url"]

AGE = extension_defs.BASE + "age-at-enrollment"


def _prefix(version: str) -> str:
    return "/fhir/R5" if version == "R5" else "/fhir"


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_structure_definitions_read_and_search_by_url(client, version) -> None:
    base = _prefix(version)
    every = loads(client.get(f"{base}/StructureDefinition?_count=100").data)
    assert {e["resource"]["url"] for e in every["entry"]} == set(extension_defs.specs())
    assert every["total"] == len(extension_defs.specs())
    found = loads(client.get(f"{base}/StructureDefinition?url={AGE}").data)
    (entry,) = found["entry"]
    sd = entry["resource"]
    sd.pop("meta")
    assert sd == extension_defs.structure_definition(AGE, version)
    assert sd.get("fhirVersion") == ("5.0.0" if version == "R5" else None)
    read = client.get(f"{base}/StructureDefinition/age-at-enrollment")
    assert read.status_code == 200 and loads(read.data)["url"] == AGE
    none = loads(client.get(f"{base}/StructureDefinition?url={AGE}x").data)
    assert none["total"] == 0 and "entry" not in none
    assert client.get(f"{base}/StructureDefinition/nope").status_code == 404


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_our_code_systems_read_and_search_by_url(client, version) -> None:
    base = _prefix(version)
    url = own_terms.ctgov_system("StudyType")
    (entry,) = loads(client.get(f"{base}/CodeSystem?url={url}").data)["entry"]
    assert [c["code"] for c in entry["resource"]["concept"]] == list(ENUMS["StudyType"])
    every = loads(client.get(f"{base}/CodeSystem?_count=0").data)
    assert every["total"] == len(own_terms.code_systems())
    aeacn = loads(client.get(f"{base}/CodeSystem/cdisc-sdtm-aeacn").data)
    assert {"DOSE NOT CHANGED", "DRUG WITHDRAWN"} <= {c["code"] for c in aeacn["concept"]}


@pytest.mark.parametrize("rtype, rid", [("StructureDefinition", "study-site"),
                                        ("CodeSystem", "ctgov-phase")])
def test_read_only(client, rtype, rid) -> None:
    body = loads(client.get(f"/fhir/{rtype}/{rid}").data)
    for method, url in (("POST", f"/fhir/{rtype}"), ("PUT", f"/fhir/{rtype}/{rid}"),
                        ("DELETE", f"/fhir/{rtype}/{rid}")):
        r = client.open(url, method=method, json=body, headers={"Content-Type": FHIR})
        assert r.status_code == 405, (method, url)
        assert loads(r.data)["resourceType"] == "OperationOutcome"
    assert client.get(f"/fhir/{rtype}/{rid}").status_code == 200


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_capability_statement_lists_them(client, version) -> None:
    statement = loads(client.get(f"{_prefix(version)}/metadata").data)
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    for rtype in ("StructureDefinition", "CodeSystem"):
        listed = resources[rtype]
        assert {i["code"] for i in listed["interaction"]} == {
            "read", "vread", "history-instance", "history-type", "search-type"}
        assert "url" in {p["name"] for p in listed["searchParam"]}
    assert all(url in resources["StructureDefinition"]["documentation"]
               for url in extension_defs.specs())
