"""The cohort Group of a loaded study (mapping/cohort.py, kept in step by the loader) and the
Group- and Patient-level Bulk Data exports of its members' compartments, on SQLite and
PostgreSQL: exactly the Patients, their ResearchSubjects and AdverseEvents, and what those
reference; `_type`, `_since` and `_typeFilter` narrow it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from store_backends import new_postgres_database

from fhir_adapter import ids
from fhir_adapter.gateway import create_app
from fhir_adapter.mapping.cohort import NOT_ENROLLED, cohort_id, subject_state
from fhir_adapter.pipeline.load import load_files
from fhir_adapter.store import open_store
from fhir_adapter.store.scope import reference_texts, targets
from fhir_adapter.validation import validate

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SEED = "NCT05003921"
ASYNC = {"Accept": "application/fhir+json", "Prefer": "respond-async"}
STUDY = ids.study_resource_id(SEED)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres",
                                                                marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[str]:
    """A store with the seed study, its enrollments and adverse events, loaded in the order
    subjects first (the cohort is made once the study comes)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('cohort') / 'c.db'}"
        _load(url)
        yield url
    else:
        with new_postgres_database() as url:
            _load(url)
            yield url


def _load(url: str) -> None:
    load_files("enrollments", [EXAMPLES / f"{SEED}.enrollments.csv"], database=url,
               study=SEED)
    load_files("adverse-events", [EXAMPLES / f"{SEED}.adverse-events.csv"], database=url,
               study=SEED)
    load_files("study", [EXAMPLES / f"{SEED}.json"], database=url)


@pytest.fixture(scope="module")
def client(database: str) -> Iterator[FlaskClient]:
    app = create_app({"DATABASE_URL": database, "EXPORT_STALE": 2})
    yield app.test_client()
    app.extensions["fhir_store"].close()


def everything(url: str, version: str = "R4") -> dict[tuple[str, str], Any]:
    store = open_store(url)
    try:
        return {(s.resource_type, s.id): s for s in store.iter_all(version=version)}  # type: ignore[arg-type]
    finally:
        store.close()


def _json(stored: Any, version: str = "R4") -> dict[str, Any]:
    return json.loads(stored.json(version))


def test_the_cohort_group_lists_the_enrolled_subjects(database: str) -> None:
    stored = everything(database)
    for version in ("R4", "R5"):
        group = json.loads(everything(database, version)["Group", cohort_id(STUDY)]
                           .json(version))
        assert validate(group, version) == []  # type: ignore[arg-type]
        subjects = [_json(s, version) for (t, _), s in everything(database, version).items()
                    if t == "ResearchSubject"]
        field = "individual" if version == "R4" else "subject"
        enrolled = {s[field]["reference"] for s in subjects
                    if subject_state(s, version) not in NOT_ENROLLED}  # type: ignore[arg-type]
        assert 0 < len(enrolled) <= len(subjects)
        assert [m["entity"]["reference"] for m in group["member"]] == sorted(enrolled)
        assert group["quantity"] == len(enrolled)
        assert group["identifier"] == [{"system": "urn:fhir-adapter:cohort", "value": STUDY}]
        study = json.loads(everything(database, version)["ResearchStudy", STUDY].json(version))
        assert validate(study, version) == []  # type: ignore[arg-type]
        link = {"reference": f"Group/{cohort_id(STUDY)}"}
        if version == "R5":
            assert study["recruitment"]["actualGroup"] == link
        else:
            recruitment = next(e for e in study["extension"]
                               if e["url"].endswith("ResearchStudy.recruitment"))
            assert {"url": "actualGroup", "valueReference": link} in recruitment["extension"]
    # Loading the same files again changes nothing, the Group included.
    summary = load_files("enrollments", [EXAMPLES / f"{SEED}.enrollments.csv"],
                         database=database, study=SEED)
    assert summary.total("created") == summary.total("updated") == 0
    again = everything(database)
    assert again["Group", cohort_id(STUDY)].version_id == stored["Group",
                                                                 cohort_id(STUDY)].version_id


def run_export(client: FlaskClient, path: str) -> dict[str, list[dict[str, Any]]]:
    kick = client.get(path, headers=ASYNC)
    assert kick.status_code == 202, kick.get_data(as_text=True)
    status = kick.headers["Content-Location"].removeprefix("http://localhost")
    deadline = time.monotonic() + 60
    while (reply := client.get(status)).status_code == 202:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert reply.status_code == 200, reply.get_data(as_text=True)
    out: dict[str, list[dict[str, Any]]] = {}
    for entry in reply.get_json()["output"]:
        body = client.get(entry["url"].removeprefix("http://localhost")).get_data()
        out[entry["type"]] = [json.loads(line) for line in body.splitlines()]
        assert len(out[entry["type"]]) == entry["count"]
    return out


def compartment_of(database: str, patients: set[str]) -> set[tuple[str, str]]:
    """What the exports should hold, worked out from the stored resources directly."""
    stored = everything(database)
    inside = {("Patient", p) for p in patients}
    for (rtype, rid), s in stored.items():
        data = _json(s)
        ref = (data.get("individual") if rtype == "ResearchSubject" else
               data.get("subject") if rtype == "AdverseEvent" else None) or {}
        if ref.get("reference", "").removeprefix("Patient/") in patients:
            inside.add((rtype, rid))
    referenced = set()
    for key in inside:
        referenced |= targets(set(reference_texts(stored[key].json("R4"))))
    return inside | {k for k in referenced if k in stored
                     and (k[0] != "Patient" or k[1] in patients)}


def keys(files: dict[str, list[dict[str, Any]]]) -> set[tuple[str, str]]:
    return {(r["resourceType"], r["id"]) for rows in files.values() for r in rows}


def test_group_export_is_exactly_the_members_compartments(client: FlaskClient,
                                                          database: str) -> None:
    group = _json(everything(database)["Group", cohort_id(STUDY)])
    members = {m["entity"]["reference"].removeprefix("Patient/") for m in group["member"]}
    files = run_export(client, f"/fhir/Group/{cohort_id(STUDY)}/$export")
    expected = compartment_of(database, members)
    assert keys(files) == expected
    assert {t for t, _ in expected} >= {"Patient", "ResearchSubject", "AdverseEvent",
                                        "ResearchStudy"}
    every = {p for (t, p) in everything(database) if t == "Patient"}
    assert members < every  # a subject never enrolled is outside the Group's export
    assert keys(run_export(client, "/fhir/Patient/$export")) == compartment_of(database, every)


def test_type_since_and_type_filter(client: FlaskClient, database: str) -> None:
    path = f"/fhir/Group/{cohort_id(STUDY)}/$export"
    files = run_export(client, path + "?_type=AdverseEvent,Patient")
    assert set(files) == {"AdverseEvent", "Patient"}
    mild = run_export(client, path + "?_type=AdverseEvent&_typeFilter=AdverseEvent%3F"
                                     "severity%3Dmild")
    everyone = files["AdverseEvent"]
    expected = {r["id"] for r in everyone if r.get("severity", {}).get("coding", [{}])[0]
                .get("code") == "mild"}
    assert 0 < len(expected) < len(everyone)
    assert {r["id"] for r in mild["AdverseEvent"]} == expected
    latest = max(r["meta"]["lastUpdated"] for rows in files.values() for r in rows)
    recent = run_export(client, path + f"?_since={latest}")
    assert keys(recent) and all(r["meta"]["lastUpdated"] >= latest
                                for rows in recent.values() for r in rows)
    for bad, said in (("?_typeFilter=Nothing%3Fx%3D1", "_typeFilter"),
                      ("?_type=Patient&_typeFilter=AdverseEvent%3Fseverity%3Dmild", "_type"),
                      ("?_typeFilter=AdverseEvent%3Fnonsense%3D1", "nonsense")):
        reply = client.get(path + bad, headers=ASYNC)
        if reply.status_code == 202:  # an unknown parameter is found by the job's search
            status = reply.headers["Content-Location"].removeprefix("http://localhost")
            while (reply := client.get(status)).status_code == 202:
                time.sleep(0.05)
            assert reply.status_code == 500
        else:
            assert reply.status_code == 400
        assert said in reply.get_data(as_text=True), bad
    assert client.get("/fhir/$export?_typeFilter=Patient%3Fgender%3Dmale",
                      headers=ASYNC).status_code == 400
    assert client.get("/fhir/Group/no-such-group/$export", headers=ASYNC).status_code == 404
