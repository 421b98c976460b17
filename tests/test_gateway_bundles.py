"""Transaction and batch Bundles (R4 http.html#transaction): urn:uuid rewriting, processing
order, all-or-nothing with the failing entry named, conditional entries, batch per entry."""

from __future__ import annotations

from gateway_fixtures import BASE, FHIR, app, client, database_url, patient, unique_system

from fhir_adapter.store.canonical import loads

__all__ = ["app", "client", "database_url"]


def _post(client, bundle: dict):  # type: ignore[no-untyped-def]
    return client.post("/fhir", json=bundle, headers={"Content-Type": FHIR, "Accept": FHIR})


def _count(client, query: str) -> int:  # type: ignore[no-untyped-def]
    return loads(client.get(f"/fhir/{query}&_summary=count").data)["total"]


def _subject_transaction(system: str) -> dict:
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:0a4e7bd6-6c2d-4f3c-9d34-111111111111",
         "resource": {"resourceType": "ResearchSubject", "status": "on-study",
                      "identifier": [{"system": system, "value": "RS"}],
                      "study": {"reference": "urn:uuid:0a4e7bd6-6c2d-4f3c-9d34-222222222222"},
                      "individual": {"reference": "urn:uuid:0a4e7bd6-6c2d-4f3c-9d34-333333333333"}},
         "request": {"method": "POST", "url": "ResearchSubject"}},
        {"fullUrl": "urn:uuid:0a4e7bd6-6c2d-4f3c-9d34-222222222222",
         "resource": {"resourceType": "ResearchStudy", "status": "active",
                      "identifier": [{"system": system, "value": "S"}]},
         "request": {"method": "POST", "url": "ResearchStudy"}},
        {"fullUrl": "urn:uuid:0a4e7bd6-6c2d-4f3c-9d34-333333333333",
         "resource": patient(system),
         "request": {"method": "POST", "url": "Patient",
                     "ifNoneExist": f"identifier={system}|p1"}},
    ]}


def test_transaction_rewrites_urn_uuid_references(client) -> None:
    system = unique_system()
    r = _post(client, _subject_transaction(system))
    assert r.status_code == 200, r.data
    reply = loads(r.data)
    assert reply["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in reply["entry"]]
    assert statuses == ["201 Created"] * 3
    subject, study, person = (e["resource"] for e in reply["entry"])
    assert subject["study"]["reference"] == f"ResearchStudy/{study['id']}"
    assert subject["individual"]["reference"] == f"Patient/{person['id']}"
    assert reply["entry"][1]["fullUrl"] == f"{BASE}/ResearchStudy/{study['id']}"
    stored = loads(client.get(f"/fhir/ResearchSubject/{subject['id']}").data)
    assert stored["study"]["reference"] == f"ResearchStudy/{study['id']}"


def test_transaction_conditional_create_points_at_the_existing_resource(client) -> None:
    system = unique_system()
    existing = loads(client.post("/fhir/Patient", json=patient(system),
                                 headers={"Content-Type": FHIR}).data)["id"]
    reply = loads(_post(client, _subject_transaction(system)).data)
    assert reply["entry"][2]["response"]["status"] == "200 OK"
    assert reply["entry"][0]["resource"]["individual"]["reference"] == f"Patient/{existing}"
    assert _count(client, f"Patient?identifier={system}|p1") == 1


def test_transaction_with_one_invalid_entry_writes_nothing(client) -> None:
    system = unique_system()
    bundle = _subject_transaction(system)
    bundle["entry"].append({"resource": {"resourceType": "AdverseEvent", "actuality": "bogus",
                                         "subject": {"reference": "Patient/x"}},
                            "request": {"method": "POST", "url": "AdverseEvent"}})
    r = _post(client, bundle)
    assert r.status_code == 422
    issues = loads(r.data)["issue"]
    assert any(e.startswith("Bundle.entry[3].resource.actuality")
               for i in issues for e in i.get("expression", []))
    for query in (f"ResearchSubject?identifier={system}|", f"ResearchStudy?identifier={system}|",
                  f"Patient?identifier={system}|"):
        assert _count(client, query) == 0


def test_transaction_order_delete_post_put_get(client) -> None:
    system = unique_system()
    old = loads(client.post("/fhir/Patient", json=patient(system, "old"),
                            headers={"Content-Type": FHIR}).data)["id"]
    keep = loads(client.post("/fhir/Patient", json=patient(system, "keep"),
                             headers={"Content-Type": FHIR}).data)
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "GET", "url": f"Patient?identifier={system}|"}},
        {"resource": keep | {"active": True},
         "request": {"method": "PUT", "url": f"Patient/{keep['id']}", "ifMatch": 'W/"1"'}},
        {"resource": patient(system, "new"), "request": {"method": "POST", "url": "Patient"}},
        {"request": {"method": "DELETE", "url": f"Patient/{old}"}},
    ]}
    reply = loads(_post(client, bundle).data)
    statuses = [e["response"]["status"] for e in reply["entry"]]
    assert statuses == ["200 OK", "200 OK", "201 Created", "204 No Content"]
    # GET ran last: it sees the new patient and the update, not the deleted one.
    found = reply["entry"][0]["resource"]
    values = sorted(e["resource"]["identifier"][0]["value"] for e in found["entry"])
    assert values == ["keep", "new"]
    assert client.get(f"/fhir/Patient/{old}").status_code == 410


def test_transaction_if_match_mismatch_rolls_back(client) -> None:
    system = unique_system()
    made = loads(client.post("/fhir/Patient", json=patient(system),
                             headers={"Content-Type": FHIR}).data)
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": patient(system, "other"), "request": {"method": "POST", "url": "Patient"}},
        {"resource": made | {"active": True},
         "request": {"method": "PUT", "url": f"Patient/{made['id']}", "ifMatch": 'W/"7"'}},
    ]}
    r = _post(client, bundle)
    assert r.status_code == 412
    assert "Bundle.entry[1]" in loads(r.data)["issue"][0]["diagnostics"]
    assert _count(client, f"Patient?identifier={system}|other") == 0


def test_transaction_rejects_unknown_urn_and_double_writes(client) -> None:
    dangling = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "ResearchSubject", "status": "on-study",
                      "study": {"reference": "urn:uuid:99999999-6c2d-4f3c-9d34-111111111111"},
                      "individual": {"reference": "Patient/x"}},
         "request": {"method": "POST", "url": "ResearchSubject"}}]}
    assert _post(client, dangling).status_code == 400
    twice = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient", "id": "twice"},
         "request": {"method": "PUT", "url": "Patient/twice"}},
        {"request": {"method": "DELETE", "url": "Patient/twice"}}]}
    assert _post(client, twice).status_code == 400


def test_batch_reports_each_entry(client) -> None:
    system = unique_system()
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": patient(system), "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Patient", "gender": "robot"},
         "request": {"method": "POST", "url": "Patient"}},
        {"request": {"method": "GET", "url": "Patient/not-there"}},
        {"request": {"method": "GET", "url": f"{BASE}/Patient?identifier={system}|"}},
    ]}
    r = _post(client, bundle)
    assert r.status_code == 200
    reply = loads(r.data)
    assert reply["type"] == "batch-response"
    statuses = [e["response"]["status"] for e in reply["entry"]]
    assert statuses == ["201 Created", "422 Unprocessable Entity", "404 Not Found", "200 OK"]
    assert reply["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert reply["entry"][3]["resource"]["total"] == 1


def test_not_a_transaction_or_batch(client) -> None:
    r = _post(client, {"resourceType": "Bundle", "type": "collection"})
    assert r.status_code == 400
    assert client.post("/fhir", json={"resourceType": "Patient"},
                       headers={"Content-Type": FHIR}).status_code == 400
