"""Every search parameter of ResearchStudy, ResearchSubject and AdverseEvent, R4 and R5, on
both backends: a rich resource fills every searchable element, every parameter indexes it,
and a search built from each index row finds it and not a resource without those values.
The same round trip runs over every index row of the official examples."""

# ruff: noqa: F811 (tests take the fixtures imported from store_backends as arguments)

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from conftest import FIXTURES
from store_backends import backend, postgres_database, store, store_url  # noqa: F401 (fixtures)
from unindexed import rows_as_if_indexed

from fhir_adapter.store import SqlStore, canonical
from fhir_adapter.store.base import SearchQuery
from fhir_adapter.store.indexing import UNINDEXED, index_rows
from fhir_adapter.store.searchparams import TABLE_OF, SearchParam, search_params
from fhir_adapter.store.values import MAX_INSTANT, MIN_INSTANT, epoch_to_instant

META = {"profile": ["http://example.org/StructureDefinition/trial"],
        "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                      "code": "R"}],
        "tag": [{"system": "http://example.org/tags", "code": "rich"}],
        "source": "http://example.org/source#loader"}


TERMINOLOGY = "http://terminology.hl7.org/CodeSystem/"


def cc(system: str, code: str, text: str | None = None) -> dict:
    out: dict = {"coding": [{"system": system, "code": code, "display": code.title()}]}
    if text:
        out["text"] = text
    return out


def ref(target: str) -> dict:
    return {"reference": target}


# our extension analysis-population, indexed by our SearchParameter of that code
POPULATION = {"url": "https://fhir-adapter.dev/fhir/StructureDefinition/analysis-population",
              "valueReference": ref("Group/itt")}
STUDY_R4 = {
    "resourceType": "ResearchStudy", "id": "rich-study", "meta": META,
    "extension": [POPULATION],
    "identifier": [{"system": "https://clinicaltrials.gov", "value": "NCT00000001"}],
    "title": "Étude riche: Aspirin in Headache",
    "protocol": [ref("PlanDefinition/pd1")],
    "partOf": [ref("ResearchStudy/parent")],
    "status": "completed",
    "category": [cc("http://example.org/category", "interventional")],
    "focus": [cc("http://example.org/focus", "aspirin")],
    "keyword": [cc("http://example.org/keyword", "pain")],
    "location": [cc("urn:iso:std:iso:3166", "FR")],
    "period": {"start": "2020-01-15", "end": "2021-06-30"},
    "sponsor": ref("Organization/sponsor"),
    "principalInvestigator": ref("Practitioner/pi"),
    "site": [ref("Location/site1")],
}

STUDY_R5 = {
    "resourceType": "ResearchStudy", "id": "rich-study", "meta": META, "language": "fr",
    "extension": [POPULATION],
    "identifier": [{"system": "https://clinicaltrials.gov", "value": "NCT00000001"}],
    "name": "RichStudy", "title": "Étude riche: Aspirin in Headache",
    "protocol": [ref("PlanDefinition/pd1")], "partOf": [ref("ResearchStudy/parent")],
    "status": "active",
    "phase": cc("http://terminology.hl7.org/CodeSystem/research-study-phase", "phase-3"),
    "studyDesign": [cc("http://example.org/design", "randomized")],
    "focus": [{"concept": cc("http://example.org/focus", "aspirin")},
              {"reference": ref("Medication/med1")}],
    "condition": [cc("http://snomed.info/sct", "25064002", "Headache")],
    "keyword": [cc("http://example.org/keyword", "pain")],
    "region": [cc("urn:iso:std:iso:3166", "FR")],
    "description": "A rich description of the study",
    "period": {"start": "2020-01-15", "end": "2021-06-30"},
    "site": [ref("Location/site1")],
    "classifier": [cc("http://example.org/classifier", "fda-regulated")],
    "progressStatus": [{"state": cc("http://hl7.org/fhir/research-study-status",
                                    "recruiting"),
                        "actual": True, "period": {"start": "2020-02-01", "end": "2020-12-31"}},
                       {"state": cc("http://hl7.org/fhir/research-study-status", "completed"),
                        "actual": False, "period": {"start": "2021-06-30"}}],
    "recruitment": {"targetNumber": 120, "actualNumber": 87, "eligibility": ref("Group/elig")},
    "objective": [{"name": "primary",
                   "type": cc("http://hl7.org/fhir/research-study-objective-type", "primary"),
                   "description": "Reduce headache days"}],
}

SUBJECT_R4 = {
    "resourceType": "ResearchSubject", "id": "rich-subject", "meta": META,
    "identifier": [{"system": "urn:fhir-adapter:subject:nct00000001", "value": "S-001"}],
    "status": "on-study", "period": {"start": "2020-03-01T09:30:00Z"},
    "study": ref("ResearchStudy/rich-study"), "individual": ref("Patient/rich-patient"),
    "assignedArm": "Aspirin",
}

SUBJECT_R5 = {
    "resourceType": "ResearchSubject", "id": "rich-subject", "meta": META, "language": "en",
    "identifier": [{"system": "urn:fhir-adapter:subject:nct00000001", "value": "S-001"}],
    "status": "active",
    "progress": [{"type": cc(TERMINOLOGY + "research-subject-state-type", "Enrollment"),
                  "subjectState": cc(TERMINOLOGY + "research-subject-state", "on-study"),
                  "startDate": "2020-03-01T09:30:00Z"}],
    "period": {"start": "2020-03-01T09:30:00Z"},
    "study": ref("ResearchStudy/rich-study"), "subject": ref("Patient/rich-patient"),
}

AE_R4 = {
    "resourceType": "AdverseEvent", "id": "rich-ae", "meta": META,
    "identifier": {"system": "urn:fhir-adapter:ae", "value": "AE-1"},
    "actuality": "actual",
    "category": [cc("http://terminology.hl7.org/CodeSystem/adverse-event-category",
                    "product-use-error")],
    "event": cc("http://snomed.info/sct", "25064002", "Headache"),
    "subject": ref("Patient/rich-patient"),
    "date": "2020-04-05T10:11:12+02:00",
    "resultingCondition": [ref("Condition/c1")],
    "location": ref("Location/site1"),
    "seriousness": cc("http://terminology.hl7.org/CodeSystem/adverse-event-seriousness",
                      "Serious"),
    "severity": cc("http://terminology.hl7.org/CodeSystem/adverse-event-severity", "severe"),
    "recorder": ref("Practitioner/pi"),
    "suspectEntity": [{"instance": ref("Medication/med1")}],
    "study": [ref("ResearchStudy/rich-study")],
}

AE_R5 = {
    "resourceType": "AdverseEvent", "id": "rich-ae", "meta": META, "language": "en",
    "identifier": [{"system": "urn:fhir-adapter:ae", "value": "AE-1"}],
    "status": "completed", "actuality": "actual",
    "category": [cc("http://terminology.hl7.org/CodeSystem/adverse-event-category",
                    "medication-mishap")],
    "code": cc("http://snomed.info/sct", "25064002", "Headache"),
    "subject": ref("Patient/rich-patient"),
    "occurrenceDateTime": "2020-04-05T10:11:12+02:00",
    "resultingEffect": [ref("Condition/c1")],
    "location": ref("Location/site1"),
    "seriousness": cc("http://terminology.hl7.org/CodeSystem/adverse-event-seriousness",
                      "serious"),
    "recorder": ref("Practitioner/pi"),
    "suspectEntity": [{"instanceReference": ref("Medication/med1")}],
    "study": [ref("ResearchStudy/rich-study")],
}

RICH = {"R4": [STUDY_R4, SUBJECT_R4, AE_R4], "R5": [STUDY_R5, SUBJECT_R5, AE_R5]}

OTHERS = {  # minimal resources with none of the rich values
    "R4": [{"resourceType": "ResearchStudy", "id": "other-study", "status": "active"},
           {"resourceType": "ResearchSubject", "id": "other-subject", "status": "candidate",
            "study": ref("ResearchStudy/x"), "individual": ref("Patient/x")},
           {"resourceType": "AdverseEvent", "id": "other-ae", "actuality": "potential",
            "subject": ref("Group/x")}],
    "R5": [{"resourceType": "ResearchStudy", "id": "other-study", "status": "draft"},
           {"resourceType": "ResearchSubject", "id": "other-subject", "status": "draft",
            "study": ref("ResearchStudy/x"), "subject": ref("Group/x")},
           {"resourceType": "AdverseEvent", "id": "other-ae", "status": "in-progress",
            "actuality": "potential", "subject": ref("Group/x")}],
}


def _instant(micros: int) -> str:
    return epoch_to_instant(micros)


def esc(text: str) -> str:
    """A literal as a FHIR search value (, | $ and \\ escaped)."""
    for ch in "\\,|$":
        text = text.replace(ch, "\\" + ch)
    return text


def _row_queries(kind: str, code: str, row: dict[str, Any]) -> list[list[tuple[str, str]]]:
    """Searches that must find the resource the index row belongs to."""
    if kind in ("token", "uri"):
        if row["code"] is None:
            return [[(f"{code}:text", esc(row["text"][:6]))]]
        value = f"{esc(row['system'])}|{esc(row['code'])}" if row["system"] and \
            kind == "token" else esc(row["code"])
        return [[(code, value)]]
    if kind == "string":
        return [[(code, esc(row["exact"][:4].upper()))], [(f"{code}:exact", esc(row["exact"]))],
                [(f"{code}:contains", esc(row["norm"][2:6]))]]
    if kind == "reference":
        if row["target_type"] and row["target_id"]:
            return [[(code, f"{row['target_type']}/{row['target_id']}")],
                    [(f"{code}:{row['target_type']}", row["target_id"])]]
        return [[(code, esc(row["url"]))]]
    if kind == "number":
        return [[(code, repr(row["value"]))]]
    if kind == "quantity":
        return [[(code, f"ge{row['low']}"), (code, f"le{row['high']}")]]
    # date: bounded on each side the value has
    sides = []
    if row["low"] != MIN_INSTANT:
        sides.append((code, f"ge{_instant(row['low'])}"))
    if row["high"] != MAX_INSTANT:
        sides.append((code, f"le{_instant(row['high'])}"))
    return [sides]


def _component_value(kind: str, row: dict[str, Any]) -> str:
    if kind == "date":
        return f"ge{_instant(row['low'])}" if row["low"] != MIN_INSTANT else \
            f"le{_instant(row['high'])}"
    if kind == "quantity":
        return f"ge{row['low']}"
    return esc(row["code"])


def queries_for(resource: dict[str, Any], version: str, param: SearchParam
                ) -> list[list[tuple[str, str]]]:
    """Every search derived from the index rows of `param` on `resource`."""
    rows = index_rows(resource, version)  # type: ignore[arg-type]
    if param.code in UNINDEXED:  # searched from the resources table, as if it had rows
        for table, extra in rows_as_if_indexed(resource, version).items():
            rows[table] += extra
    if param.type != "composite":
        table = TABLE_OF[param.type]
        return [q for row in rows[table] if row["param"] == param.code
                for q in _row_queries(param.type, param.code, row)]
    groups: dict[int, dict[int, dict[str, Any]]] = defaultdict(dict)
    for n, comp in enumerate(param.components):
        for row in rows[TABLE_OF[comp.type or "token"]]:
            if row["param"] == f"{param.code}${n}":
                groups[row["grp"]].setdefault(n, row)
    return [[(param.code, "$".join(_component_value(c.type or "token", parts[n])
                                   for n, c in enumerate(param.components)))]
            for parts in groups.values() if len(parts) == len(param.components)]


def _ids(store: SqlStore, rtype: str, version: str, params: list[tuple[str, str]]) -> set[str]:
    found = store.search(SearchQuery(rtype, version, params, count=100,  # type: ignore[arg-type]
                                     strict=True))
    return {m.id for m in found.matches}


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_every_trial_search_parameter_filters(store: SqlStore, version: str) -> None:
    for rich, other in zip(RICH[version], OTHERS[version], strict=True):
        stored = store.update({version: rich}).stored
        store.update({version: other})
        indexed = canonical.loads(stored.json(version))
        rtype = rich["resourceType"]
        for code, param in search_params(version, rtype).items():  # type: ignore[arg-type]
            queries = queries_for(indexed, version, param)
            assert queries, f"{version} {rtype}.{code}: the rich resource indexes nothing"
            for params in queries:
                found = _ids(store, rtype, version, params)
                assert found == {rich["id"]}, f"{version} {rtype}?{params} found {found}"


def _examples() -> list[tuple[str, Any]]:
    out = []
    for folder, version in (("r4", "R4"), ("r5", "R5")):
        for path in sorted((FIXTURES / "fhir" / "examples" / folder).glob("*.json")):
            out.append((version, path))
    if not out:
        pytest.skip(f"official examples not present under {FIXTURES}")
    return out


def test_every_index_row_of_the_official_examples_is_found(store: SqlStore) -> None:
    checked = 0
    for version, path in _examples():
        stored = store.update({version: canonical.loads(path.read_bytes())}).stored
        resource = canonical.loads(stored.json(version))
        for param in search_params(version, stored.resource_type).values():
            for params in queries_for(resource, version, param):
                assert stored.id in _ids(store, stored.resource_type, version, params), (
                    f"{path.name}: {params}")
                checked += 1
    assert checked > 50
