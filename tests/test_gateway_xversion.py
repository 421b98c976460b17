"""Every resource in both versions through the gateway, both stores: what a client writes in
one version reads and searches in the other (converted on write), and a write that cannot be
converted stays in its own version, a read in the other naming the element."""

from __future__ import annotations

from pathlib import Path

import pytest
from gateway_fixtures import FHIR, app, client, database_url, unique_system
from test_xversion import _resources

from fhir_adapter.store.canonical import dumps, loads

__all__ = ["app", "client", "database_url"]
R5 = "application/fhir+json; fhirVersion=5.0"
ROOT = Path(__file__).resolve().parents[1]


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


def test_research_subject_written_in_r5_reads_and_searches_in_r4(client) -> None:
    system = unique_system()
    state = "http://terminology.hl7.org/CodeSystem/research-subject-state"
    body = {"resourceType": "ResearchSubject", "identifier": [{"system": system, "value": "1"}],
            "status": "active", "progress": [
                {"subjectState": {"coding": [{"system": state, "code": "on-study"}]},
                 "startDate": "2024-01-02"},
                {"subjectState": {"coding": [{"system": state, "code": "follow-up"}]}}],
            "study": {"reference": "ResearchStudy/xv5-study"},
            "subject": {"reference": "Patient/xv5-patient"},
            "assignedComparisonGroup": "arm-a"}
    r = client.post("/fhir/R5/ResearchSubject", data=dumps(body),
                    headers={"Content-Type": FHIR})
    assert r.status_code == 201, r.data
    rid = loads(r.data)["id"]
    got = loads(client.get(f"/fhir/ResearchSubject/{rid}").data)
    assert got["status"] == "follow-up"
    assert got["individual"] == {"reference": "Patient/xv5-patient"}
    for query in (f"identifier={system}|1", "individual=Patient/xv5-patient",
                  "status=follow-up&study=ResearchStudy/xv5-study",
                  "patient=Patient/xv5-patient"):
        assert rid in _ids(client, f"/fhir/ResearchSubject?{query}"), query
    got.pop("meta")  # an R4 client's update: R5 keeps the history and the comparison group
    got["status"] = "off-study"
    assert client.put(f"/fhir/ResearchSubject/{rid}", data=dumps(got),
                      headers={"Content-Type": FHIR}).status_code == 200
    again = loads(client.get(f"/fhir/R5/ResearchSubject/{rid}").data)
    assert [p["subjectState"]["coding"][0]["code"] for p in again["progress"]] == [
        "on-study", "follow-up", "off-study"]
    assert again["assignedComparisonGroup"] == "arm-a"
    assert rid in _ids(client, f"/fhir/R5/ResearchSubject?subject_state=off-study"
                               f"&identifier={system}|1")


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
    # R4 has no home for assignedComparisonGroup's own extensions (only for its value)
    body = {"resourceType": "ResearchSubject", "status": "active",
            "study": {"reference": "ResearchStudy/x"}, "subject": {"reference": "Patient/y"},
            "assignedComparisonGroup": "arm-a", "_assignedComparisonGroup": {"extension": [
                {"url": "http://example.org/why", "valueString": "randomised"}]}}
    r = client.post("/fhir/R5/ResearchSubject", data=dumps(body),
                    headers={"Content-Type": FHIR})
    assert r.status_code == 201
    r4 = client.get(f"/fhir/ResearchSubject/{loads(r.data)['id']}", headers={"Accept": FHIR})
    assert r4.status_code == 406
    issue = loads(r4.data)["issue"][0]
    assert issue["expression"] == ["ResearchSubject._assignedComparisonGroup"]
    assert "ResearchSubject._assignedComparisonGroup" in issue["diagnostics"]


def test_r5_research_subject_without_progress_reads_in_r4(client) -> None:
    """No R5 progress: R4 status (required) holds a data-absent-reason, and the R5 status
    and everything else come back when it is written again in R4."""
    body = {"resourceType": "ResearchSubject", "status": "draft",
            "study": {"reference": "ResearchStudy/x"}, "subject": {"reference": "Patient/y"}}
    r = client.post("/fhir/R5/ResearchSubject", data=dumps(body),
                    headers={"Content-Type": FHIR})
    rid = loads(r.data)["id"]
    r4 = loads(client.get(f"/fhir/ResearchSubject/{rid}").data)
    assert "status" not in r4 and r4["_status"]["extension"][0]["valueCode"] == "unsupported"
    r4.pop("meta")
    assert client.put(f"/fhir/ResearchSubject/{rid}", data=dumps(r4),
                      headers={"Content-Type": FHIR}).status_code == 200
    again = loads(client.get(f"/fhir/R5/ResearchSubject/{rid}").data)
    again.pop("meta")
    assert again == {**body, "id": rid}


def test_research_study_from_our_r4_output_reads_in_r5(client) -> None:
    """Our R4 study mapping carries R5 facts in cross-version extensions (comparisonGroup
    with linkId and intendedExposure, recruitment, progressStatus, labels, ...): written by
    a client, the R5 read has them as R5 elements again."""
    data = loads((ROOT / "tests" / "golden" / "study" / "NCT05003921.r4.expected.json")
                 .read_bytes())
    study = next(r for r in _resources(data) if r["resourceType"] == "ResearchStudy")
    system = unique_system()
    study = {**study, "identifier": [*study["identifier"], {"system": system, "value": "1"}]}
    study.pop("id")
    r = client.post("/fhir/ResearchStudy", data=dumps(study), headers={"Content-Type": FHIR})
    assert r.status_code == 201, r.data
    rid = loads(r.data)["id"]
    r5 = client.get(f"/fhir/R5/ResearchStudy/{rid}")
    assert r5.status_code == 200, r5.data
    got = loads(r5.data)
    assert not [e for e in got.get("extension", [])
                if e["url"].startswith("http://hl7.org/fhir/5.0/")]  # all folded back
    arm = got["comparisonGroup"][0]
    assert arm["linkId"] == "arm-treatment-group" and arm["intendedExposure"]
    assert got["recruitment"]["eligibility"] == study["enrollment"][0]
    states = [p["state"] for p in got["progressStatus"]]  # no state entry added: R4 status
    assert states[0]["coding"][0]["code"] == "temporarily-closed-to-accrual"  # is the first
    assert states[1:] == [{"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/research-study-status",
        "code": "overall-study", "display": "Overall study"}]}, {"text": "Primary completion"}]
    assert rid in _ids(client, f"/fhir/R5/ResearchStudy?identifier={system}|1")
    assert rid in _ids(client, "/fhir/R5/ResearchStudy?identifier=NCT05003921")

