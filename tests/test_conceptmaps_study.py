"""The study ConceptMaps cover every value of the CT.gov API v2 enums they translate, their
targets exist in the FHIR code systems they name, and doubtful rows say why."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path

import pytest

from fhir_adapter import conceptmaps
from fhir_adapter.mapping.study_common import ENUMS

# ctg-oas-v2.yaml (components/schemas) enums not kept in study_common.ENUMS.
CONTACT_ROLE = ("STUDY_CHAIR", "STUDY_DIRECTOR", "PRINCIPAL_INVESTIGATOR", "SUB_INVESTIGATOR",
                "CONTACT")
RESPONSIBLE_PARTY_TYPE = ("SPONSOR", "PRINCIPAL_INVESTIGATOR", "SPONSOR_INVESTIGATOR")
# http://hl7.org/fhir/research-study-status 5.0.0 (R5 progressStatus.state, extensible).
R5_STATES = {"overall-study", "active", "active-but-not-recruiting", "administratively-completed",
             "approved", "closed-to-accrual", "closed-to-accrual-and-intervention", "completed",
             "disapproved", "enrolling-by-invitation", "in-review", "not-yet-recruiting",
             "recruiting", "temporarily-closed-to-accrual",
             "temporarily-closed-to-accrual-and-intervention", "terminated", "withdrawn"}
PHASES = {"n-a", "early-phase-1", "phase-1", "phase-1-phase-2", "phase-2", "phase-2-phase-3",
          "phase-3", "phase-4"}
ARM_TYPES = {"active-comparator", "placebo-comparator", "sham-comparator", "no-intervention",
             "experimental", "other-arm-type"}
PURPOSES = {"treatment", "prevention", "diagnostic", "supportive-care", "screening",
            "health-services-research", "basic-science", "device-feasibility"}

COVERAGE = [
    ("ctgov-overall-status-to-r4", ENUMS["Status"]),
    ("ctgov-overall-status-to-r5-progress", ENUMS["Status"]),
    ("ctgov-phase", ENUMS["Phase"]),
    ("ctgov-primary-purpose", ENUMS["PrimaryPurpose"]),
    ("ctgov-arm-type", ENUMS["ArmGroupType"]),
    ("ctgov-masking", ENUMS["DesignMasking"] + ENUMS["WhoMasked"]),
    ("ctgov-allocation", ENUMS["DesignAllocation"]),
    ("ctgov-intervention-model", ENUMS["InterventionalAssignment"]),
    ("ctgov-study-type", ENUMS["StudyType"]),
    ("ctgov-party-role", CONTACT_ROLE + RESPONSIBLE_PARTY_TYPE),
]


@cache
def r4_status_codes() -> frozenset[str]:
    """R4 ResearchStudy.status codes, from the official R4 JSON schema."""
    text = resources.files("fhir_adapter").joinpath("data", "schema", "r4.schema.json")
    schema = json.loads(text.read_text("utf-8"))
    return frozenset(schema["definitions"]["ResearchStudy"]["properties"]["status"]["enum"])


def targets(map_id: str) -> dict[str, list[conceptmaps.Target]]:
    return {code: conceptmaps.translate(map_id, code) for code in conceptmaps.source_codes(map_id)}


@pytest.mark.parametrize("map_id, values", COVERAGE, ids=[c[0] for c in COVERAGE])
def test_every_enum_value_is_mapped(map_id: str, values: tuple[str, ...]) -> None:
    """Each value has a row: a target or an explicit 'unmatched' with a comment."""
    rows = targets(map_id)
    missing = [v for v in values if v not in rows]
    assert not missing, f"{map_id} lacks rows for {missing}"
    for value in values:
        for target in rows[value]:
            if target.equivalence != "equivalent":
                assert target.comment, f"{map_id}: {value} is {target.equivalence} without why"


def test_every_overall_status_has_an_r4_status_except_unknown() -> None:
    for status in ENUMS["Status"]:
        target = conceptmaps.translate("ctgov-overall-status-to-r4", status)[0]
        if status == "UNKNOWN":  # the mapper reads lastKnownStatus instead
            assert target.equivalence == "unmatched" and "lastKnownStatus" in target.comment
        else:
            assert target.code in r4_status_codes(), status
            assert target.system == "http://hl7.org/fhir/research-study-status"


def test_every_overall_status_has_an_r5_state_except_unknown() -> None:
    for status in ENUMS["Status"]:
        target = conceptmaps.translate("ctgov-overall-status-to-r5-progress", status)[0]
        if status == "UNKNOWN":
            assert target.equivalence == "unmatched" and "actual = false" in target.comment
        else:
            assert target.code in R5_STATES, status


@pytest.mark.parametrize("status, r4, r5, equivalence", [
    ("RECRUITING", "active", "recruiting", "equivalent"),
    ("ACTIVE_NOT_RECRUITING", "closed-to-accrual", "active-but-not-recruiting", "equivalent"),
    ("ENROLLING_BY_INVITATION", "active", "enrolling-by-invitation", "wider"),
    ("SUSPENDED", "temporarily-closed-to-accrual", "temporarily-closed-to-accrual", "inexact"),
    ("TERMINATED", "administratively-completed", "terminated", "equivalent"),
    ("NOT_YET_RECRUITING", "approved", "not-yet-recruiting", "inexact"),
])
def test_status_rows(status: str, r4: str, r5: str, equivalence: str) -> None:
    assert conceptmaps.lookup("ctgov-overall-status-to-r4", status).code == r4
    assert conceptmaps.lookup("ctgov-overall-status-to-r4", status).equivalence == equivalence
    assert conceptmaps.lookup("ctgov-overall-status-to-r5-progress", status).code == r5


def test_every_phase_and_combination() -> None:
    for phase in ENUMS["Phase"]:
        assert conceptmaps.lookup("ctgov-phase", phase).code in PHASES
    assert conceptmaps.lookup("ctgov-phase", "PHASE1+PHASE2").code == "phase-1-phase-2"
    assert conceptmaps.lookup("ctgov-phase", "PHASE2+PHASE3").code == "phase-2-phase-3"
    assert {t[0].code for t in targets("ctgov-phase").values()} == PHASES


def test_arm_types_and_purposes_are_hl7_codes() -> None:
    assert {t[0].code for t in targets("ctgov-arm-type").values()} == ARM_TYPES
    mapped = {t[0].code for t in targets("ctgov-primary-purpose").values() if t[0].code}
    assert mapped == PURPOSES
    for value in ("ECT", "OTHER"):  # written as the CT.gov coding + text instead
        assert conceptmaps.translate("ctgov-primary-purpose", value)[0].equivalence == "unmatched"


@pytest.mark.parametrize("name, code", [
    ("Antigua and Barbuda", "AG"), ("United States", "US"), ("Korea, Republic of", "KR"),
    ("South Korea", "KR"), ("Czechia", "CZ"), ("Czech Republic", "CZ"), ("Turkey", "TR"),
    ("Taiwan", "TW"), ("Russian Federation", "RU"), ("Cote D'Ivoire", "CI"),
    ("Former Serbia and Montenegro", "CS"), ("united kingdom", "GB"), ("Réunion", "RE"),
    ("Reunion", "RE"),
])
def test_country_names(name: str, code: str) -> None:
    assert conceptmaps.lookup("country-iso3166", name).code == code


def test_countries_cover_iso_3166_1() -> None:
    cm = conceptmaps.get_map("country-iso3166")
    codes = {t.get("code") for e in cm["group"][0]["element"] for t in e["target"]}
    withdrawn = {"CS", "YU", "AN", "SU", "ZR"}
    current = codes - withdrawn - {None}
    assert len(current) == 249  # every officially assigned ISO 3166-1 alpha-2 code
    assert all(len(c) == 2 and c.isupper() for c in current)
    doubtful = [t for e in cm["group"][0]["element"] for t in e["target"]
                if t["equivalence"] != "equivalent"]
    assert doubtful and all(t.get("comment") for t in doubtful)


def test_every_fixture_country_has_a_code(fixtures_dir: Path) -> None:
    countries = set()
    for path in (fixtures_dir / "ctgov" / "v2").rglob("*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        for study in data if isinstance(data, list) else [data]:
            module = study["protocolSection"].get("contactsLocationsModule") or {}
            countries |= {site.get("country") for site in module.get("locations") or []}
    countries.discard(None)
    assert len(countries) > 20
    unmapped = [c for c in countries if not conceptmaps.translate("country-iso3166", c)]
    assert unmapped == []
