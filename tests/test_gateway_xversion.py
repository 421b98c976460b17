"""Every resource in both versions through the gateway, both stores: what a client writes in
one version reads and searches in the other (converted on write), and a write that cannot be
converted stays in its own version, a read in the other naming the element."""

from __future__ import annotations

import pytest
from gateway_fixtures import FHIR, app, client, database_url, unique_system

from fhir_adapter.store.canonical import dumps, loads

__all__ = ["app", "client", "database_url"]
R5 = "application/fhir+json; fhirVersion=5.0"


def _ids(client, url: str) -> list[str]:  # type: ignore[no-untyped-def]
    r = client.get(url)
    assert r.status_code == 200, r.data
    return [e["resource"]["id"] for e in loads(r.data).get("entry", [])]


def test_research_subject_written_in_r4_reads_and_searches_in_r5(client) -> None:
    system = unique_system()
    body = {"resourceType": "ResearchSubject", "identifier": [{"system": system, "value": "1"}],
            "status": "on-study", "study": {"reference": "ResearchStudy/xv-study"},
            "individual": {"reference": "Patient/xv-patient"}, "assignedArm": "Arm A"}
    r = client.post("/fhir/ResearchSubject", data=dumps(body), headers={"Content-Type": FHIR})
    assert r.status_code == 201, r.data
    rid = loads(r.data)["id"]
    r5 = client.get(f"/fhir/R5/ResearchSubject/{rid}")
    assert r5.status_code == 200
    got = loads(r5.data)
    assert got["subject"] == {"reference": "Patient/xv-patient"}
    assert got["progress"][-1]["subjectState"]["coding"][0]["code"] == "on-study"
    assert got["meta"]["versionId"] == "1"
    for query in (f"identifier={system}|1", "subject=Patient/xv-patient",
                  "subject_state=on-study&study=ResearchStudy/xv-study",
                  "patient=Patient/xv-patient"):
        assert rid in _ids(client, f"/fhir/R5/ResearchSubject?{query}"), query
    # and an R5 update of it reads back in R4 with the new state
    got["progress"].append({"subjectState": {"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/research-subject-state",
        "code": "off-study"}]}})
    got.pop("meta")
    r = client.put(f"/fhir/R5/ResearchSubject/{rid}", data=dumps(got),
                   headers={"Content-Type": FHIR})
    assert r.status_code == 200, r.data
    back = loads(client.get(f"/fhir/ResearchSubject/{rid}").data)
    assert back["status"] == "off-study" and back["assignedArm"] == "Arm A"
    assert back["individual"] == {"reference": "Patient/xv-patient"}
    assert rid in _ids(client, f"/fhir/ResearchSubject?status=off-study&identifier={system}|1")


@pytest.mark.parametrize("rtype,r4,r5_check", [
    ("AdverseEvent", {"actuality": "actual", "subject": {"reference": "Patient/p"},
                      "event": {"text": "rash"}, "date": "2024-02-03",
                      "severity": {"text": "mild"}},
     lambda r: r["code"] == {"text": "rash"} and r["occurrenceDateTime"] == "2024-02-03"),
    ("Group", {"type": "person", "actual": True},
     lambda r: r["membership"] == "enumerated"),
    ("ResearchStudy", {"status": "completed", "sponsor": {"reference": "Organization/o"}},
     lambda r: r["status"] == "retired"
     and r["associatedParty"][0]["party"] == {"reference": "Organization/o"}),
    ("Organization", {"name": "Site", "telecom": [{"system": "phone", "value": "1"}]},
     lambda r: r["extension"][0]["valueContactPoint"]["value"] == "1"),
])
def test_every_stored_type_written_in_r4_reads_in_r5(client, rtype, r4, r5_check) -> None:
    r = client.post(f"/fhir/{rtype}", data=dumps({"resourceType": rtype, **r4}),
                    headers={"Content-Type": FHIR})
    assert r.status_code == 201, r.data
    rid = loads(r.data)["id"]
    r5 = client.get(f"/fhir/R5/{rtype}/{rid}")
    assert r5.status_code == 200, r5.data
    assert r5_check(loads(r5.data))
    again = loads(client.get(f"/fhir/{rtype}/{rid}").data)
    again.pop("meta")
    assert again == {"resourceType": rtype, "id": rid, **r4}


def test_r5_write_that_r4_cannot_hold_is_406_in_r4_naming_the_element(client) -> None:
    body = {"resourceType": "ResearchSubject", "status": "active",
            "study": {"reference": "ResearchStudy/x"}, "subject": {"reference": "Patient/y"}}
    r = client.post("/fhir/R5/ResearchSubject", data=dumps(body),
                    headers={"Content-Type": FHIR})
    assert r.status_code == 201
    r4 = client.get(f"/fhir/ResearchSubject/{loads(r.data)['id']}", headers={"Accept": FHIR})
    assert r4.status_code == 406
    assert "ResearchSubject.progress.subjectState" in loads(r4.data)["issue"][0]["diagnostics"]
