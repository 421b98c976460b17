"""Search through the gateway (R4 search.html): paging links, `_count` cap, `_total`, `_sort`,
`_summary`, `_elements`, `_include`, `_revinclude`, POST `_search`, strict handling."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
from gateway_fixtures import BASE, FHIR, app, client, database_url, patient, post, unique_system

from fhir_adapter.store.canonical import loads

__all__ = ["app", "client", "database_url"]


def _get(client, url: str, **headers: str) -> dict:  # type: ignore[no-untyped-def]
    r = client.get(url, headers=headers)
    assert r.status_code == 200, r.data
    return loads(r.data)


def _relative(url: str) -> str:
    assert url.startswith(BASE + "/")  # absolute, from the configured public base URL
    return "/fhir" + url[len(BASE):]


def _link(bundle: dict, relation: str) -> str | None:
    return next((ln["url"] for ln in bundle.get("link", []) if ln["relation"] == relation), None)


@pytest.fixture
def patients(client) -> tuple[str, list[str]]:  # type: ignore[no-untyped-def]
    system = unique_system()
    ids = [loads(post(client, patient(system, f"{i:02}", name=[{"family": f"F{i:02}"}])).data)
           ["id"] for i in range(7)]
    return system, ids


def test_paging_follows_next_through_all_pages_and_back(client, patients) -> None:
    system, ids = patients
    bundle = _get(client, f"/fhir/Patient?identifier={system}|&_count=3&_sort=family")
    assert bundle["total"] == 7
    seen, pages = [], 0
    while True:
        pages += 1
        seen += [e["resource"]["id"] for e in bundle["entry"]]
        nxt = _link(bundle, "next")
        if not nxt:
            break
        bundle = _get(client, _relative(nxt))
    assert pages == 3 and seen == ids  # _sort=family gives creation order here
    prev = _link(bundle, "previous")
    assert prev and dict(parse_qsl(urlsplit(prev).query))["_offset"] == "3"
    assert dict(parse_qsl(urlsplit(_link(bundle, "self") or "").query))["_offset"] == "6"


def test_count_is_capped_and_count_zero_gives_the_total_only(client, patients) -> None:
    system, _ = patients
    capped = _get(client, f"/fhir/Patient?identifier={system}|&_count=100000")
    assert "_count=50" in (_link(capped, "self") or "")  # MAX_COUNT of the test app
    zero = _get(client, f"/fhir/Patient?identifier={system}|&_count=0&_totalMethod=count")
    assert zero["total"] == 7 and "entry" not in zero
    summary = _get(client, f"/fhir/Patient?identifier={system}|&_summary=count")
    assert summary["total"] == 7 and "entry" not in summary


def test_total_none_still_pages(client, patients) -> None:
    system, _ = patients
    bundle = _get(client, f"/fhir/Patient?identifier={system}|&_count=5&_total=none")
    assert "total" not in bundle
    assert _link(bundle, "next")
    last = _get(client, _relative(_link(bundle, "next") or ""))
    assert len(last["entry"]) == 2 and not _link(last, "next")


def test_sort_descending_and_by_id(client, patients) -> None:
    system, ids = patients
    down = _get(client, f"/fhir/Patient?identifier={system}|&_sort=-family")
    assert [e["resource"]["id"] for e in down["entry"]] == ids[::-1]
    by_id = _get(client, f"/fhir/Patient?identifier={system}|&_sort=_id")
    assert [e["resource"]["id"] for e in by_id["entry"]] == sorted(ids)


def test_summary_and_elements_subset_and_tag(client, patients) -> None:
    system, _ = patients
    bundle = _get(client, f"/fhir/Patient?identifier={system}|&_elements=name&_count=1")
    resource = bundle["entry"][0]["resource"]
    assert set(resource) == {"resourceType", "id", "meta", "name"}
    assert {"code": "SUBSETTED",
            "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"} \
        in resource["meta"]["tag"]
    summary = _get(client, f"/fhir/Patient?identifier={system}|&_summary=true&_count=1")
    assert "identifier" in summary["entry"][0]["resource"]
    text = _get(client, f"/fhir/Patient?identifier={system}|&_summary=text&_count=1")
    assert "identifier" not in text["entry"][0]["resource"]
    one = text["entry"][0]["resource"]["id"]
    read = _get(client, f"/fhir/Patient/{one}?_elements=identifier")
    assert set(read) == {"resourceType", "id", "meta", "identifier"}
    assert client.get("/fhir/Patient?_summary=maybe").status_code == 400


def test_summary_data_drops_the_narrative_and_text_keeps_it(client) -> None:
    system = unique_system()
    narrative = {"status": "generated",
                 "div": '<div xmlns="http://www.w3.org/1999/xhtml">Rita</div>'}
    post(client, patient(system, text=narrative, gender="female"))
    data = _get(client, f"/fhir/Patient?identifier={system}|&_summary=data")
    resource = data["entry"][0]["resource"]
    assert "text" not in resource and resource["gender"] == "female"
    text = _get(client, f"/fhir/Patient?identifier={system}|&_summary=text")
    resource = text["entry"][0]["resource"]
    assert resource["text"] == narrative and "gender" not in resource


def test_post_search_with_a_form_body(client, patients) -> None:
    system, _ = patients
    r = client.post("/fhir/Patient/_search", data={"identifier": f"{system}|03"},
                    headers={"Accept": FHIR})
    assert r.status_code == 200
    assert loads(r.data)["total"] == 1
    bad = client.post("/fhir/Patient/_search", json={"identifier": "x"})
    assert bad.status_code == 415


def test_unknown_parameters_are_400_unless_lenient(client, patients) -> None:
    system, _ = patients
    for headers in ({}, {"Prefer": "handling=strict"}):
        strict = client.get(f"/fhir/Patient?identifier={system}|&nonsense=1", headers=headers)
        assert strict.status_code == 400
        assert loads(strict.data)["resourceType"] == "OperationOutcome"
    lenient = loads(client.get(f"/fhir/Patient?identifier={system}|&nonsense=1",
                               headers={"Prefer": "handling=lenient"}).data)
    assert lenient["total"] == 7
    assert "nonsense" not in (_link(lenient, "self") or "")
    said = lenient["entry"][-1]
    assert said["search"]["mode"] == "outcome"
    assert said["resource"]["issue"][0]["expression"] == ["nonsense"]


@pytest.fixture
def study_with_subjects(client) -> dict:  # type: ignore[no-untyped-def]
    system = unique_system()
    study = loads(post(client, {"resourceType": "ResearchStudy", "status": "active",
                                "identifier": [{"system": system, "value": "S"}]}).data)
    subjects, people = [], []
    for n in range(3):
        person = loads(post(client, patient(system, f"P{n}")).data)
        people.append(person["id"])
        subjects.append(loads(post(client, {
            "resourceType": "ResearchSubject", "status": "on-study",
            "identifier": [{"system": system, "value": f"RS{n}"}],
            "study": {"reference": f"ResearchStudy/{study['id']}"},
            "individual": {"reference": f"Patient/{person['id']}"}}).data)["id"])
    return {"system": system, "study": study["id"], "subjects": subjects, "patients": people}


def test_revinclude_subjects_of_a_study(client, study_with_subjects) -> None:
    s = study_with_subjects
    bundle = _get(client, f"/fhir/ResearchStudy?identifier={s['system']}|S"
                          "&_revinclude=ResearchSubject:study")
    modes = {(e["resource"]["resourceType"], e["resource"]["id"]): e["search"]["mode"]
             for e in bundle["entry"]}
    assert modes[("ResearchStudy", s["study"])] == "match"
    assert {rid for (t, rid), m in modes.items() if t == "ResearchSubject"} == set(s["subjects"])
    assert bundle["total"] == 1  # includes do not count


def test_include_study_and_individuals_of_subjects(client, study_with_subjects) -> None:
    s = study_with_subjects
    bundle = _get(client, f"/fhir/ResearchSubject?identifier={s['system']}|"
                          "&_include=ResearchSubject:study&_include=ResearchSubject:individual")
    included = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]
                if e["search"]["mode"] == "include"}
    assert included == {("ResearchStudy", s["study"])} | {("Patient", p) for p in s["patients"]}
    typed = _get(client, f"/fhir/ResearchSubject?identifier={s['system']}|"
                         "&_include=ResearchSubject:individual:Group")
    assert all(e["search"]["mode"] == "match" for e in typed["entry"])
    assert client.get("/fhir/ResearchSubject?_include=ResearchSubject:status").status_code == 400


def test_search_in_r5_names_and_representations(client, study_with_subjects) -> None:
    s = study_with_subjects
    # The subjects were written in R4 and converted on write: R5 finds them by R5 names.
    r5 = _get(client, f"/fhir/R5/ResearchSubject?identifier={s['system']}|")
    assert r5["total"] == 3
    assert all("subject" in e["resource"] and "individual" not in e["resource"]
               for e in r5["entry"])
    # Patients are valid in both versions and are found through either.
    both = _get(client, f"/fhir/R5/Patient?identifier={s['system']}|")
    assert both["total"] == 3
    assert _link(both, "self").startswith(BASE + "/R5/Patient?")  # type: ignore[union-attr]
