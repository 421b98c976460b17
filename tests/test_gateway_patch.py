"""PATCH (R4 http.html#patch) through the Flask test client over the real store, both backends
and both versions: JSON Patch, FHIRPath Patch, merge patch, If-Match, conditional patch,
PATCH entries in transactions and batches, and validation of the result like any write."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from gateway_fixtures import FHIR, app, client, database_url, patient, post, unique_system

from fhir_adapter.gateway.capability import capability_statement
from fhir_adapter.store.canonical import dumps, loads

__all__ = ["app", "client", "database_url"]
JSON_PATCH = "application/json-patch+json"


def _body(response: Any) -> dict[str, Any]:
    return loads(response.data)


def _op(kind: str, path: str, **parts: Any) -> dict[str, Any]:
    out = [{"name": "type", "valueCode": kind}, {"name": "path", "valueString": path}]
    for name, value in parts.items():
        if name == "value":
            out.append({"name": "value", **value})
        elif isinstance(value, int):
            out.append({"name": name, "valueInteger": value})
        else:
            out.append({"name": name, "valueString": value})
    return {"name": "operation", "part": out}


def _fhirpath_patch(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": list(ops)}


def _created(client: Any, prefix: str = "/fhir", **extra: Any) -> tuple[str, str]:
    system = unique_system()
    body = patient(system, name=[{"family": "Doe", "given": ["Jane"]}], gender="female",
                   **extra)
    r = client.post(f"{prefix}/Patient", data=dumps(body), headers={"Content-Type": FHIR})
    assert r.status_code == 201, r.data
    return _body(r)["id"], system


def _patch(client: Any, url: str, body: Any, mime: str = FHIR, **headers: str) -> Any:
    return client.patch(url, data=dumps(body), headers={"Content-Type": mime, **headers})


@pytest.mark.parametrize("prefix", ["/fhir", "/fhir/R5"])
def test_json_patch_with_if_match(client, prefix) -> None:
    pid, _ = _created(client, prefix)
    ops = [{"op": "test", "path": "/gender", "value": "female"},
           {"op": "replace", "path": "/gender", "value": "other"},
           {"op": "add", "path": "/name/0/given/-", "value": "Q."}]
    stale = _patch(client, f"{prefix}/Patient/{pid}", ops, JSON_PATCH, **{"If-Match": 'W/"9"'})
    assert stale.status_code == 412
    r = _patch(client, f"{prefix}/Patient/{pid}", ops, JSON_PATCH, **{"If-Match": 'W/"1"'})
    assert r.status_code == 200, r.data
    assert r.headers["ETag"] == 'W/"2"'
    got = _body(client.get(f"{prefix}/Patient/{pid}"))
    assert got["gender"] == "other" and got["name"][0]["given"] == ["Jane", "Q."]
    assert got["meta"]["versionId"] == "2"
    # the test op now fails: 422 and nothing written
    failed = _patch(client, f"{prefix}/Patient/{pid}", ops, JSON_PATCH)
    assert failed.status_code == 422
    assert _body(failed)["resourceType"] == "OperationOutcome"
    assert _body(client.get(f"{prefix}/Patient/{pid}"))["meta"]["versionId"] == "2"


def test_patched_resource_reads_in_both_versions(client) -> None:
    pid, _ = _created(client)
    r = _patch(client, f"/fhir/Patient/{pid}",
               [{"op": "add", "path": "/birthDate", "value": "1970-01-02"}], JSON_PATCH)
    assert r.status_code == 200
    assert _body(client.get(f"/fhir/R5/Patient/{pid}"))["birthDate"] == "1970-01-02"


def test_fhirpath_patch_every_operation(client) -> None:
    pid, system = _created(client, telecom=[{"system": "phone", "value": "1"},
                                            {"system": "email", "value": "a@b.c"}])
    body = _fhirpath_patch(
        _op("add", "Patient", name="birthDate", value={"valueDate": "1980-05-06"}),
        _op("add", "Patient", name="deceased", value={"valueBoolean": False}),
        _op("add", "Patient", name="contact",
            value={"part": [{"name": "name", "valueHumanName": {"family": "Roe"}},
                            {"name": "gender", "valueCode": "male"}]}),
        _op("insert", "Patient.name[0].given", index=0, value={"valueString": "Mary"}),
        _op("replace", f"Patient.identifier.where(system = '{system}').value",
            value={"valueString": "p2"}),
        _op("move", "Patient.telecom", source=1, destination=0),
        _op("delete", "Patient.telecom.where(system = 'phone')"),
        _op("delete", "Patient.gender"))
    r = _patch(client, f"/fhir/Patient/{pid}", body)
    assert r.status_code == 200, r.data
    got = _body(r)
    assert got["birthDate"] == "1980-05-06" and got["deceasedBoolean"] is False
    assert got["contact"] == [{"name": {"family": "Roe"}, "gender": "male"}]
    assert got["name"][0]["given"] == ["Mary", "Jane"]
    assert got["identifier"] == [{"system": system, "value": "p2"}]
    assert got["telecom"] == [{"system": "email", "value": "a@b.c"}]
    assert "gender" not in got


@pytest.mark.parametrize("op,status", [
    (_op("replace", "Patient.name", value={"valueString": "x"}), 422),  # invalid result
    (_op("replace", "Patient.telecom", value={"valueString": "x"}), 422),  # nothing there
    (_op("delete", "Patient.name.given"), 422),  # two elements
    (_op("insert", "Patient.name.given", index=5, value={"valueString": "x"}), 422),
    (_op("frobnicate", "Patient.name"), 400),
    (_op("replace", "Observation.status", value={"valueCode": "final"}), 400),
    (_op("replace", "Patient.name.select(given)", value={"valueString": "x"}), 400),
])
def test_bad_fhirpath_patches_change_nothing(client, op, status) -> None:
    pid, _ = _created(client)
    client.patch(f"/fhir/Patient/{pid}", data=dumps(_fhirpath_patch(_op(
        "add", "Patient.name[0]", name="given", value={"valueString": "x"}))),
        headers={"Content-Type": FHIR})  # a second given for the "two elements" case
    r = _patch(client, f"/fhir/Patient/{pid}", _fhirpath_patch(op))
    assert r.status_code == status, r.data
    issue = _body(r)["issue"][0]
    assert issue["expression"] == ["Parameters.parameter[0]"] or status == 422
    assert _body(client.get(f"/fhir/Patient/{pid}"))["meta"]["versionId"] == "2"


def test_merge_patch_as_fhirpy_sends_it(client) -> None:
    pid, _ = _created(client)
    r = client.patch(f"/fhir/Patient/{pid}", json={"gender": None, "active": True})
    assert r.status_code == 200, r.data
    got = _body(r)
    assert "gender" not in got and got["active"] is True and got["name"][0]["family"] == "Doe"
    bad = client.patch(f"/fhir/Patient/{pid}", json={"gender": "bogus"})
    assert bad.status_code == 422
    assert _body(bad)["issue"][0]["expression"] == ["Patient.gender"]
    renamed = client.patch(f"/fhir/Patient/{pid}", json={"id": "other"})
    assert renamed.status_code == 422


def test_conditional_patch(client) -> None:
    pid, system = _created(client)
    r = _patch(client, f"/fhir/Patient?identifier={system}|p1",
               [{"op": "replace", "path": "/gender", "value": "male"}], JSON_PATCH)
    assert r.status_code == 200, r.data
    assert _body(r)["id"] == pid and _body(r)["gender"] == "male"
    none = _patch(client, f"/fhir/Patient?identifier={system}|nope", [], JSON_PATCH)
    assert none.status_code == 404
    post(client, patient(system, "p2"))
    many = _patch(client, f"/fhir/Patient?identifier={system}|", [], JSON_PATCH)
    assert many.status_code == 412
    assert _patch(client, "/fhir/Patient", [], JSON_PATCH).status_code == 400


def test_unknown_and_deleted_targets(client) -> None:
    assert _patch(client, "/fhir/Patient/no-such", [], JSON_PATCH).status_code == 404
    pid, _ = _created(client)
    client.delete(f"/fhir/Patient/{pid}")
    assert _patch(client, f"/fhir/Patient/{pid}", [], JSON_PATCH).status_code == 410
    xml = client.patch(f"/fhir/Patient/{pid}", data=b"<x/>",
                       headers={"Content-Type": "application/xml-patch+xml"})
    assert xml.status_code == 415


def _binary(ops: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Binary", "contentType": JSON_PATCH,
            "data": base64.b64encode(dumps(ops)).decode()}


def test_patch_entries_in_a_transaction(client) -> None:
    pid, system = _created(client)
    other, _ = _created(client)
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": _binary([{"op": "replace", "path": "/gender", "value": "male"}]),
         "request": {"method": "PATCH", "url": f"Patient/{pid}", "ifMatch": 'W/"1"'}},
        {"resource": _fhirpath_patch(_op("add", "Patient", name="active",
                                         value={"valueBoolean": True})),
         "request": {"method": "PATCH", "url": f"Patient?identifier={system}|p1"}},
    ]}
    dup = client.post("/fhir", data=dumps(bundle), headers={"Content-Type": FHIR})
    assert dup.status_code == 400  # both entries patch the same resource
    bundle["entry"][1]["request"]["url"] = f"Patient/{other}"
    r = client.post("/fhir", data=dumps(bundle), headers={"Content-Type": FHIR})
    assert r.status_code == 200, r.data
    statuses = [e["response"]["status"] for e in _body(r)["entry"]]
    assert statuses == ["200 OK", "200 OK"]
    assert _body(client.get(f"/fhir/Patient/{pid}"))["gender"] == "male"
    assert _body(client.get(f"/fhir/Patient/{other}"))["active"] is True
    # one failing patch rolls back the whole transaction
    bundle["entry"][0]["request"]["ifMatch"] = 'W/"1"'  # now stale
    bundle["entry"][1]["resource"] = _fhirpath_patch(_op("add", "Patient", name="active",
                                                         value={"valueBoolean": False}))
    r = client.post("/fhir", data=dumps(bundle), headers={"Content-Type": FHIR})
    assert r.status_code == 412
    assert _body(client.get(f"/fhir/Patient/{other}"))["active"] is True


def test_patch_entries_in_a_batch(client) -> None:
    pid, _ = _created(client)
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": _binary([{"op": "replace", "path": "/gender", "value": "bogus"}]),
         "request": {"method": "PATCH", "url": f"Patient/{pid}"}},
        {"resource": _binary([{"op": "replace", "path": "/gender", "value": "unknown"}]),
         "request": {"method": "PATCH", "url": f"Patient/{pid}"}},
        {"resource": {"resourceType": "Patient"},
         "request": {"method": "PATCH", "url": f"Patient/{pid}"}},
    ]}
    r = client.post("/fhir", data=dumps(bundle), headers={"Content-Type": FHIR})
    assert r.status_code == 200, r.data
    statuses = [e["response"]["status"] for e in _body(r)["entry"]]
    assert statuses == ["422 Unprocessable Entity", "200 OK", "400 Bad Request"]
    assert _body(client.get(f"/fhir/Patient/{pid}"))["gender"] == "unknown"


def _patchable() -> list[Any]:
    out = []
    for version in ("R4", "R5"):
        statement = loads(capability_statement(version, "http://testserver/fhir"))
        for resource in statement["rest"][0]["resource"]:
            if any(i["code"] == "patch" for i in resource.get("interaction", [])):
                out.append(pytest.param(version, resource["type"],
                                        id=f"{version}-{resource['type']}"))
    return out


_MINIMAL: dict[str, dict[str, Any]] = {
    "ResearchStudy": {"R4": {"status": "active"}, "R5": {"status": "active"}},
    "ResearchSubject": {"R4": {"status": "candidate", "study": {"reference": "ResearchStudy/x"},
                               "individual": {"reference": "Patient/x"}},
                        "R5": {"status": "active", "study": {"reference": "ResearchStudy/x"},
                               "subject": {"reference": "Patient/x"}}},
    "AdverseEvent": {"R4": {"actuality": "actual", "subject": {"reference": "Patient/x"}},
                     "R5": {"status": "completed", "actuality": "actual",
                            "subject": {"reference": "Patient/x"}}},
    "Group": {"R4": {"type": "person", "actual": True},
              "R5": {"type": "person", "membership": "enumerated"}},
    "EvidenceVariable": {"R4": {"status": "active", "characteristic": [
                             {"definitionCodeableConcept": {"text": "age over 18"}}]},
                         "R5": {"status": "active"}},
}


@pytest.mark.parametrize("version,rtype", _patchable())
def test_every_type_the_capability_statement_says_is_patchable(client, version, rtype) -> None:
    prefix = "/fhir/R5" if version == "R5" else "/fhir"
    body = {"resourceType": rtype, **_MINIMAL.get(rtype, {}).get(version, {})}
    r = client.post(f"{prefix}/{rtype}", data=dumps(body), headers={"Content-Type": FHIR})
    assert r.status_code == 201, r.data
    rid = _body(r)["id"]
    tag = {"system": unique_system(), "code": "patched"}
    r = _patch(client, f"{prefix}/{rtype}/{rid}",
               [{"op": "add", "path": "/meta", "value": {"tag": [tag]}}], JSON_PATCH)
    assert r.status_code == 200, r.data
    assert _body(client.get(f"{prefix}/{rtype}/{rid}"))["meta"]["tag"] == [tag]
    found = _body(client.get(f"{prefix}/{rtype}?_tag={tag['system']}|patched"))
    assert [e["resource"]["id"] for e in found.get("entry", [])] == [rid]


def test_cors_preflight_allows_patch(database_url: str) -> None:
    from fhir_adapter.gateway import create_app

    cors_app = create_app({"DATABASE_URL": database_url,  # CORS is off unless origins are set
                           "CORS_ORIGINS": "https://app.example"})
    try:
        pre = cors_app.test_client().options("/fhir/Patient/1", headers={
            "Origin": "https://app.example", "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "content-type, if-match"})
    finally:
        cors_app.extensions["fhir_store"].close()
    assert pre.status_code == 200
    assert "PATCH" in pre.headers["Access-Control-Allow-Methods"]


def test_a_patch_of_an_id_no_resource_can_have_is_400(client) -> None:
    # Found by the fuzz test on PostgreSQL: a NUL in the id reached the database (500).
    for rid in ("a%00b", "x" * 65):
        r = client.patch(f"/fhir/AdverseEvent/{rid}", data=b"[]",
                         headers={"Content-Type": "application/json-patch+json"})
        assert r.status_code == 400, r.data
        assert _body(r)["resourceType"] == "OperationOutcome"
