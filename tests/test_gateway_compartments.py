"""Patient compartment search (`Patient/<id>/<type>` and `Patient/<id>/*`) over the real store,
both backends and both versions: generated from the compartment the CapabilityStatement names
and the official CompartmentDefinition's parameters, each compared with the plain search."""

from __future__ import annotations

from typing import Any

import pytest
from gateway_fixtures import FHIR, app, client, database_url, unique_system

from fhir_adapter.gateway.capability import capability_statement
from fhir_adapter.gateway.compartments import SELF, definition, members, stored_members
from fhir_adapter.store.canonical import dumps, loads

__all__ = ["app", "client", "database_url"]


def _prefix(version: str) -> str:
    return "/fhir/R5" if version == "R5" else "/fhir"


def _post(client: Any, version: str, body: dict[str, Any]) -> str:
    r = client.post(f"{_prefix(version)}/{body['resourceType']}", data=dumps(body),
                    headers={"Content-Type": FHIR})
    assert r.status_code == 201, r.data
    return loads(r.data)["id"]


def _world(client: Any, version: str) -> tuple[str, str, str]:
    """Two patients, each with events, subjects, a group and a linked patient; (the first's
    id, the second's id, the identifier system of all)."""
    system = unique_system()
    ids = []
    for n in range(2):
        pid = _post(client, version, {"resourceType": "Patient",
                                      "identifier": [{"system": system, "value": f"p{n}"}]})
        ref = {"reference": f"Patient/{pid}"}
        for k in range(3 + n):
            ae = {"resourceType": "AdverseEvent", "actuality": "actual", "subject": ref,
                  "identifier": {"system": system, "value": f"ae{n}-{k}"}} \
                if version == "R4" else {
                  "resourceType": "AdverseEvent", "status": "completed", "actuality": "actual",
                  "subject": ref, "identifier": [{"system": system, "value": f"ae{n}-{k}"}]}
            _post(client, version, ae)
        study = {"reference": "ResearchStudy/compartment-study"}
        _post(client, version, {"resourceType": "ResearchSubject", "status": "candidate",
                                "study": study, "individual": ref,
                                "identifier": [{"system": system, "value": f"rs{n}"}]}
              if version == "R4" else
              {"resourceType": "ResearchSubject", "status": "active", "study": study,
               "subject": ref, "identifier": [{"system": system, "value": f"rs{n}"}]})
        group = {"resourceType": "Group", "type": "person", "member": [{"entity": ref}],
                 "identifier": [{"system": system, "value": f"g{n}"}]}
        group |= {"actual": True} if version == "R4" else {"membership": "enumerated"}
        _post(client, version, group)
        _post(client, version, {"resourceType": "Patient", "link": [
            {"other": ref, "type": "seealso"}],
            "identifier": [{"system": system, "value": f"linked{n}"}]})
        ids.append(pid)
    return ids[0], ids[1], system


def _ids(client: Any, url: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    while url:
        r = client.get(url)
        assert r.status_code == 200, r.data
        bundle = loads(r.data)
        out += [(e["resource"]["resourceType"], e["resource"]["id"])
                for e in bundle.get("entry", [])]
        url = next((link["url"].replace("http://testserver", "") for link in bundle["link"]
                    if link["relation"] == "next"), "")
    return out


def _cases() -> list[Any]:
    out = []
    for version in ("R4", "R5"):
        statement = loads(capability_statement(version, "http://testserver/fhir"))
        assert statement["rest"][0]["compartment"] == [definition(version)["url"]]
        for rtype in stored_members(version):
            out.append(pytest.param(version, rtype, id=f"{version}-{rtype}"))
    return out


@pytest.mark.parametrize("version,rtype", _cases())
def test_compartment_equals_the_search_with_its_parameters(client, version, rtype) -> None:
    pid, other, _ = _world(client, version)
    prefix = _prefix(version)
    got = _ids(client, f"{prefix}/Patient/{pid}/{rtype}?_count=2")
    expected: set[tuple[str, str]] = set()
    for param in members(version)[rtype]:
        if param == SELF:
            expected.add(("Patient", pid))
        else:
            expected |= set(_ids(client, f"{prefix}/{rtype}?{param}=Patient/{pid}"))
    assert len(got) == len(set(got))  # paging neither repeats nor skips
    assert set(got) == expected and expected
    assert not set(got) & set(_ids(client, f"{prefix}/Patient/{other}/{rtype}"))
    # with the type's own parameters too
    first = got[0]
    assert _ids(client, f"{prefix}/Patient/{pid}/{rtype}?_id={first[1]}") == [first]
    foreign = _ids(client, f"{prefix}/Patient/{other}/{rtype}")[0]
    assert _ids(client, f"{prefix}/Patient/{pid}/{rtype}?_id={foreign[1]}") == []


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_every_type_at_once(client, version) -> None:
    pid, _, _ = _world(client, version)
    prefix = _prefix(version)
    everything = _ids(client, f"{prefix}/Patient/{pid}/*?_count=3")
    per_type = [i for t in stored_members(version)
                for i in _ids(client, f"{prefix}/Patient/{pid}/{t}")]
    assert sorted(everything) == sorted(per_type)
    assert {t for t, _ in everything} == {"AdverseEvent", "Group", "Patient", "ResearchSubject"}
    r = client.get(f"{prefix}/Patient/{pid}/*?_count=0")
    assert loads(r.data)["total"] == len(per_type)
    r = client.get(f"{prefix}/Patient/{pid}/*?_sort=_id")
    assert r.status_code == 400


def test_errors(client) -> None:
    pid, _, _ = _world(client, "R4")
    r = client.get(f"/fhir/Patient/{pid}/ResearchStudy")
    assert r.status_code == 400
    assert "not in the Patient compartment" in loads(r.data)["issue"][0]["diagnostics"]
    assert client.get("/fhir/Patient/no-such/AdverseEvent").status_code == 404
    assert client.get(f"/fhir/Patient/{pid}/Observation").status_code == 404
    strict = client.get(f"/fhir/Patient/{pid}/AdverseEvent?bogus=1",
                        headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400


def test_instance_paths_of_patient_stay_theirs(client) -> None:
    pid, _, _ = _world(client, "R4")
    history = loads(client.get(f"/fhir/Patient/{pid}/_history").data)
    assert history["type"] == "history"
    checked = loads(client.get(f"/fhir/Patient/{pid}/$validate").data)
    assert checked["resourceType"] == "OperationOutcome"
    assert checked["issue"][0]["severity"] == "information"
