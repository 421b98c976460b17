"""The ResearchStudy references each of its SUPPDM analysis-population Groups (our extension
analysis-population) whichever of the study and the enrollments is loaded first, on SQLite
and PostgreSQL, R4 and R5; re-loading changes nothing; our SearchParameter finds the study of
a population and `_include` returns a study's populations with it, over HTTP."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from conftest import fixture_path
from store_backends import backend, postgres_database, store_url  # noqa: F401 (fixtures)
from test_enrollment_cli import run

from fhir_adapter import extension_defs, ids
from fhir_adapter.gateway import create_app
from fhir_adapter.mapping.population import POPULATION_EXTENSION, population_id
from fhir_adapter.store import open_store
from fhir_adapter.store.base import SearchQuery
from fhir_adapter.store.canonical import loads
from fhir_adapter.validation import validate

PILOT = ("sdtm", "cdiscpilot01-slice")
STUDY = "CDISCPILOT01"
# Population -> which of the slice's subjects (by position) are flagged Y
FLAGS = {"ITT": lambda n: True, "SAFETY": lambda n: n % 3 != 0, "COMPLT8": lambda n: n < 4}


def _suppdm(path: Path) -> tuple[Path, dict[str, set[str]]]:
    """A synthetic SUPPDM for the slice's subjects: Y and N flags of three populations."""
    with fixture_path(*PILOT, "dm.csv").open(newline="", encoding="utf-8") as fh:
        subjects = [row["USUBJID"] for row in csv.DictReader(fh)]
    members: dict[str, set[str]] = {code: set() for code in FLAGS}
    lines = ["STUDYID,RDOMAIN,USUBJID,IDVAR,IDVARVAL,QNAM,QLABEL,QVAL"]
    for n, subject in enumerate(subjects):
        for code, flagged in FLAGS.items():
            lines.append(f"{STUDY},DM,{subject},,,{code},{code} Population Flag,"
                         + ("Y" if flagged(n) else "N"))
            if flagged(n):
                members[code].add(subject)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, members


def _load(kind: str, url: str, suppdm: Path, capsys: pytest.CaptureFixture[str]) -> str:
    if kind == "study":
        argv = ["load", "study", str(fixture_path(*PILOT))]
    else:
        argv = ["load", "enrollments", str(fixture_path(*PILOT, "dm.csv")), "--disposition",
                str(fixture_path(*PILOT, "ds.csv")), "--supplemental", str(suppdm)]
    code, out, err = run([*argv, "--database", url, "--no-progress"], capsys)
    assert code == 0, err
    return out


def _links(study: dict[str, Any]) -> list[str]:
    return [e["valueReference"]["reference"] for e in study.get("extension") or []
            if e["url"] == POPULATION_EXTENSION]


@pytest.mark.parametrize("first", ["study", "enrollments"])
def test_the_study_references_its_populations_whichever_comes_first(
        first: str, store_url: str, tmp_path: Path,  # noqa: F811
        capsys: pytest.CaptureFixture[str]) -> None:
    suppdm, members = _suppdm(tmp_path / "suppdm.csv")
    second = "enrollments" if first == "study" else "study"
    _load(first, store_url, suppdm, capsys)
    out = _load(second, store_url, suppdm, capsys)
    expected = sorted(f"Group/{population_id(STUDY, code)}" for code in FLAGS)
    store = open_store(store_url)
    try:
        study_id = ids.study_resource_id(STUDY)
        stored = store.read("ResearchStudy", study_id)
        # Written once with its links when the populations were there before it; linked by
        # the post-load hook (one more version) when they came after.
        assert stored.version_id == (1 if first == "enrollments" else 2)
        assert ("ResearchStudy linked to its analysis populations: 1 updated" in out) == \
            (first == "study")
        for version in ("R4", "R5"):
            study = loads(stored.json(version))
            assert _links(study) == expected
            assert validate(study, version) == [] and extension_defs.check(study) == []
            for code, subjects in members.items():
                group_id = population_id(STUDY, code)
                found = store.search(SearchQuery("ResearchStudy", version, [
                    ("analysis-population", f"Group/{group_id}")]))
                assert [m.id for m in found.matches] == [study_id] and not found.ignored
                group = loads(store.read("Group", group_id).json(version))
                assert group["quantity"] == len(subjects)
                # the Group names its study by business identifier, not by a literal
                # reference: no cycle between ResearchStudy and Group for a push to order
                ref = group["characteristic"][0]["valueReference"]
                assert ref == {"type": "ResearchStudy", "identifier": {
                    "system": ids.STUDY_ID_SYSTEM, "value": STUDY}}
        # Re-loading either changes nothing.
        for kind in ("study", "enrollments"):
            again = _load(kind, store_url, suppdm, capsys)
            assert " 0 created, 0 updated" in again.splitlines()[-1], again
            assert "analysis populations" not in again
        assert store.read("ResearchStudy", study_id).version_id == stored.version_id
    finally:
        store.close()


def test_populations_are_found_over_http(store_url: str, tmp_path: Path,  # noqa: F811
                                         capsys: pytest.CaptureFixture[str]) -> None:
    suppdm, _ = _suppdm(tmp_path / "suppdm.csv")
    _load("study", store_url, suppdm, capsys)
    _load("enrollments", store_url, suppdm, capsys)
    app = create_app({"DATABASE_URL": store_url, "PUBLIC_BASE_URL": "http://testserver/fhir"})
    app.testing = True
    client = app.test_client()
    study_id = ids.study_resource_id(STUDY)
    groups = sorted(population_id(STUDY, code) for code in FLAGS)
    try:
        for prefix in ("/fhir", "/fhir/R5"):
            def search(query: str, pre: str = prefix) -> list[tuple[str, str, str]]:
                r = client.get(f"{pre}/{query}")
                assert r.status_code == 200, r.data
                return sorted((e["resource"]["resourceType"], e["resource"]["id"],
                               e["search"]["mode"]) for e in loads(r.data).get("entry", []))

            assert search(f"ResearchStudy?analysis-population=Group/{groups[0]}") == [
                ("ResearchStudy", study_id, "match")]
            assert search(f"ResearchStudy?_id={study_id}"
                          "&_include=ResearchStudy:analysis-population") == sorted(
                [("ResearchStudy", study_id, "match")]
                + [("Group", g, "include") for g in groups])
            assert search("Group?identifier=" + ids.subject_system(STUDY)
                          + ":analysis-population|") == [("Group", g, "match") for g in groups]
            metadata = loads(client.get(f"{prefix}/metadata").data)
            params = {p["name"]: p["definition"] for r in metadata["rest"][0]["resource"]
                      if r["type"] == "ResearchStudy" for p in r["searchParam"]}
            assert params["analysis-population"] == \
                "https://fhir-adapter.dev/fhir/SearchParameter/ResearchStudy-analysis-population"
            sd = client.get(f"{prefix}/StructureDefinition?url={POPULATION_EXTENSION}")
            assert [e["resource"]["id"] for e in loads(sd.data)["entry"]] == \
                ["analysis-population"]
    finally:
        for name in ("fhir_store", "fhir_conceptmaps"):
            if name in app.extensions:
                app.extensions[name].close()


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_golden_study_linked_to_its_populations(version: str, update_golden: bool) -> None:
    """The population Groups of the findings golden (study S1, SUPPDM ITT, SAFETY, COMPLT8)
    and the ResearchStudy linked to its cohort and to them: valid, our extensions conform,
    linking twice is once, and links are replaced, not added up."""
    from golden import GOLDEN, check_golden

    from fhir_adapter.mapping import narrative
    from fhir_adapter.mapping.cohort import link_study
    from fhir_adapter.mapping.population import link_populations, study_of

    mapped = loads((GOLDEN / "enrollment" / f"findings.{version.lower()}.expected.json")
                   .read_bytes())["resources"]
    groups = [r for r in mapped if r["resourceType"] == "Group"]
    study_id = ids.study_resource_id("S1")
    assert {study_of(g) for g in groups} == {study_id}
    study: dict[str, Any] = {"resourceType": "ResearchStudy", "id": study_id,
                             "status": "completed" if version == "R4" else "active"}
    linked = narrative.added(link_populations(link_study(study, version),  # type: ignore[arg-type]
                                              [g["id"] for g in reversed(groups)]))
    assert validate(linked, version) == [] and extension_defs.check(linked) == []  # type: ignore[arg-type]
    assert link_populations(linked, [g["id"] for g in groups]) is linked
    assert _links(link_populations(linked, [groups[0]["id"]])) == [f"Group/{groups[0]['id']}"]
    assert "extension" not in link_populations(study, [])
    check_golden(GOLDEN / "cohort" / f"findings-populations.{version.lower()}.expected.json",
                 {"study": linked, "populations": [g["id"] for g in groups]}, update_golden)


def test_the_extension_holds_only_group_references() -> None:
    bad = {"resourceType": "ResearchStudy", "extension": [
        {"url": POPULATION_EXTENSION, "valueReference": {"reference": "Patient/p"}}]}
    problems = extension_defs.check(bad)
    assert len(problems) == 1 and "allowed targets ['Group']" in problems[0], problems
    sd = extension_defs.structure_definition(POPULATION_EXTENSION, "R5")
    value = next(e for e in sd["differential"]["element"] if e["id"] == "Extension.value[x]")
    assert value["type"] == [{"code": "Reference", "targetProfile": [
        "http://hl7.org/fhir/StructureDefinition/Group"]}]
