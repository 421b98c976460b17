"""Content negotiation and FHIR versions: Accept / Content-Type / `_format` (R4 http.html), the
fhirVersion parameter and the /fhir/R5 alias, and one stored resource read in both versions."""

from __future__ import annotations

import pytest
from gateway_fixtures import FHIR, app, client, database_url, patient, post, unique_system

from fhir_adapter.store.canonical import loads

__all__ = ["app", "client", "database_url"]


@pytest.mark.parametrize("accept,mime", [
    (None, FHIR),
    ("*/*", FHIR),
    ("application/*", FHIR),
    ("application/fhir+json", FHIR),
    ("application/fhir+json; charset=utf-8", FHIR),
    ("application/json", "application/json"),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", FHIR),  # a browser
    ("application/fhir+xml;q=1, application/json;q=0.5", "application/json"),
])
def test_json_for_every_accept_that_allows_it(client, accept, mime) -> None:
    headers = {"Accept": accept} if accept else {}
    r = client.get("/fhir/metadata", headers=headers)
    assert r.status_code == 200
    assert r.headers["Content-Type"].split(";")[0] == mime
    assert loads(r.data)["resourceType"] == "CapabilityStatement"


@pytest.mark.parametrize("query,status", [
    ("_format=json", 200), ("_format=application/fhir%2Bjson", 200),
    ("_format=application/json", 200), ("_format=xml", 406), ("_format=html", 406),
])
def test_format_overrides_accept(client, query, status) -> None:
    r = client.get(f"/fhir/metadata?{query}", headers={"Accept": "application/fhir+xml"})
    assert r.status_code == status
    assert loads(r.data)["resourceType"] in ("CapabilityStatement", "OperationOutcome")


def test_406_for_xml_only_and_unknown_fhir_version(client) -> None:
    assert client.get("/fhir/metadata", headers={"Accept": "application/fhir+xml"}
                      ).status_code == 406
    r = client.get("/fhir/metadata", headers={"Accept": "application/fhir+json; fhirVersion=3.0"})
    assert r.status_code == 406
    assert loads(r.data)["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("content_type", [FHIR, "application/json",
                                          "application/json; charset=utf-8",
                                          "application/fhir+json; fhirVersion=4.0"])
def test_writes_accept_both_json_types(client, content_type) -> None:
    r = client.post("/fhir/Patient", data=b'{"resourceType":"Patient"}',
                    headers={"Content-Type": content_type})
    assert r.status_code == 201


def test_415_for_other_bodies_and_400_for_broken_json(client) -> None:
    xml = client.post("/fhir/Patient", data=b"<Patient/>",
                      headers={"Content-Type": "application/fhir+xml"})
    assert xml.status_code == 415
    broken = client.post("/fhir/Patient", data=b'{"resourceType":',
                         headers={"Content-Type": FHIR})
    assert broken.status_code == 400
    nan = client.post("/fhir/Patient", data=b'{"resourceType":"Patient","x":NaN}',
                      headers={"Content-Type": FHIR})
    assert nan.status_code == 400


def test_r5_by_accept_parameter_and_by_alias(client) -> None:
    for url, headers in (("/fhir/metadata", {"Accept": "application/fhir+json; fhirVersion=5.0"}),
                         ("/fhir/R5/metadata", {})):
        r = client.get(url, headers=headers)
        assert loads(r.data)["fhirVersion"] == "5.0.0"
        assert "fhirVersion=5.0" in r.headers["Content-Type"]
    assert loads(client.get("/fhir/metadata").data)["fhirVersion"] == "4.0.1"
    conflict = client.get("/fhir/R5/metadata",
                          headers={"Accept": "application/fhir+json; fhirVersion=4.0"})
    assert conflict.status_code == 400


def test_one_resource_in_both_versions_when_valid_in_both(client) -> None:
    rid = loads(post(client, patient(unique_system())).data)["id"]
    r4 = client.get(f"/fhir/Patient/{rid}")
    r5 = client.get(f"/fhir/R5/Patient/{rid}")
    assert r4.status_code == r5.status_code == 200
    assert loads(r4.data) == loads(r5.data)


def test_r4_only_resource_read_in_r5_is_406_saying_why(client) -> None:
    # R5 has no assignedArm: it goes to an extension, but the extension on its value cannot.
    subject = {"resourceType": "ResearchSubject", "status": "on-study",
               "study": {"reference": "ResearchStudy/x"},
               "individual": {"reference": "Patient/y"}, "assignedArm": "A",
               "_assignedArm": {"extension": [{"url": "http://example.org/x",
                                               "valueString": "y"}]}}
    rid = loads(post(client, subject).data)["id"]
    r = client.get(f"/fhir/R5/ResearchSubject/{rid}")
    assert r.status_code == 406
    diagnostics = loads(r.data)["issue"][0]["diagnostics"]
    assert "R4" in diagnostics and "ResearchSubject._assignedArm" in diagnostics


def test_write_in_r5_via_content_type(client) -> None:
    subject = {"resourceType": "ResearchSubject", "status": "active",
               "study": {"reference": "ResearchStudy/x"},
               "subject": {"reference": "Patient/y"}}
    r = client.post("/fhir/ResearchSubject", json=subject,
                    headers={"Content-Type": "application/fhir+json; fhirVersion=5.0"})
    assert r.status_code == 201, r.data
    assert "fhirVersion=5.0" in r.headers["Content-Type"]
    rid = loads(r.data)["id"]
    r4 = client.get(f"/fhir/ResearchSubject/{rid}")  # converted: no R5 progress, so R4's
    assert r4.status_code == 200  # status holds a data-absent-reason (docs/versions.md)
    assert "fhirVersion=4.0" in r4.headers["Content-Type"] and "_status" in loads(r4.data)
    assert client.get(f"/fhir/R5/ResearchSubject/{rid}").status_code == 200
