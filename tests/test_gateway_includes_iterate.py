"""`_include:iterate`, `_revinclude:iterate` and `_include=*` (R4 search.html#include) over the
real store, both backends: each round includes from what the previous one found, until
nothing is new; a search whose includes do not settle in ROUNDS rounds is refused."""

from __future__ import annotations

from typing import Any

from gateway_fixtures import FHIR, app, client, database_url, unique_system

from fhir_adapter.gateway.includes import ROUNDS
from fhir_adapter.store.canonical import dumps, loads

__all__ = ["app", "client", "database_url"]


def _put(client: Any, resource: dict[str, Any]) -> None:
    r = client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", data=dumps(resource),
                   headers={"Content-Type": FHIR})
    assert r.status_code in (200, 201), r.data


def _found(client: Any, url: str) -> dict[str, set[str]]:
    r = client.get(url)
    assert r.status_code == 200, r.data
    out: dict[str, set[str]] = {"match": set(), "include": set()}
    for e in loads(r.data).get("entry", []):
        out[e["search"]["mode"]].add(f"{e['resource']['resourceType']}/{e['resource']['id']}")
    return out


def _world(client: Any, chain: int = 3) -> str:
    """Patients p0 <- p1 <- ... (each links to the one before), a study, a subject of p0 in
    it and an adverse event of p0; the id prefix."""
    tag = unique_system().rsplit(":", 1)[1][:12]
    for n in range(chain):
        patient: dict[str, Any] = {"resourceType": "Patient", "id": f"{tag}-p{n}"}
        if n:
            patient["link"] = [{"other": {"reference": f"Patient/{tag}-p{n - 1}"},
                                "type": "seealso"}]
        _put(client, patient)
    _put(client, {"resourceType": "ResearchStudy", "id": f"{tag}-s", "status": "active"})
    _put(client, {"resourceType": "ResearchSubject", "id": f"{tag}-rs", "status": "on-study",
                  "study": {"reference": f"ResearchStudy/{tag}-s"},
                  "individual": {"reference": f"Patient/{tag}-p0"}})
    _put(client, {"resourceType": "AdverseEvent", "id": f"{tag}-ae", "actuality": "actual",
                  "subject": {"reference": f"Patient/{tag}-p0"},
                  "study": [{"reference": f"ResearchStudy/{tag}-s"}]})
    return tag


def test_revinclude_iterate_from_included_resources(client) -> None:
    tag = _world(client)
    got = _found(client, f"/fhir/AdverseEvent?_id={tag}-ae&_include=AdverseEvent:subject"
                         "&_revinclude:iterate=ResearchSubject:individual")
    assert got["match"] == {f"AdverseEvent/{tag}-ae"}
    assert got["include"] == {f"Patient/{tag}-p0", f"ResearchSubject/{tag}-rs"}
    plain = _found(client, f"/fhir/AdverseEvent?_id={tag}-ae&_include=AdverseEvent:subject"
                           "&_revinclude=ResearchSubject:individual")
    assert plain["include"] == {f"Patient/{tag}-p0"}  # not iterated: no subject of an AE


def test_include_iterate_follows_a_chain_until_it_ends(client) -> None:
    tag = _world(client, chain=4)
    got = _found(client, f"/fhir/Patient?_id={tag}-p3&_include:iterate=Patient:link")
    assert got["include"] == {f"Patient/{tag}-p{n}" for n in range(3)}
    once = _found(client, f"/fhir/Patient?_id={tag}-p3&_include=Patient:link")
    assert once["include"] == {f"Patient/{tag}-p2"}


def test_include_iterate_that_does_not_settle_is_refused(client) -> None:
    tag = _world(client, chain=ROUNDS + 3)
    r = client.get(f"/fhir/Patient?_id={tag}-p{ROUNDS + 2}&_include:iterate=Patient:link")
    assert r.status_code == 400
    assert "rounds" in loads(r.data)["issue"][0]["diagnostics"]


def test_include_star_is_every_reference_parameter(client) -> None:
    tag = _world(client)
    got = _found(client, f"/fhir/AdverseEvent?_id={tag}-ae&_include=*")
    assert got["include"] == {f"Patient/{tag}-p0", f"ResearchStudy/{tag}-s"}
    assert _found(client, f"/fhir/AdverseEvent?_id={tag}-ae&_include=AdverseEvent:*") == got


def test_other_include_modifiers_are_refused(client) -> None:
    r = client.get("/fhir/Patient?_include:recurse=Patient:link")
    assert r.status_code == 400
