"""Legacy CT.gov <clinical_study> XML -> the API v2 study shape (sources/ctgov_xml.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, fixture_path

from fhir_adapter.errors import InputError
from fhir_adapter.sources import ctgov_values as v
from fhir_adapter.sources.ctgov_xml import read_clinical_study_xml

LEGACY = sorted(p.name for p in (FIXTURES / "ctgov" / "legacy_xml").glob("*.xml")) or ["absent"]
V2_FILES = sorted(p.name for p in (FIXTURES / "ctgov" / "v2").glob("*.json")) or ["absent"]
ISO_DATE = re.compile(r"\d{4}-\d{2}(-\d{2})?")

# Which enum each converted v2 field must come from (every fixture value is a known one).
ENUM_FIELDS = {
    "overallStatus": v.STATUS, "lastKnownStatus": v.STATUS, "studyType": v.STUDY_TYPE,
    "allocation": v.ALLOCATION, "interventionModel": v.INTERVENTION_MODEL,
    "primaryPurpose": v.PRIMARY_PURPOSE, "observationalModel": v.OBSERVATIONAL_MODEL,
    "timePerspective": v.TIME_PERSPECTIVE, "masking": v.MASKING, "sex": v.SEX,
    "samplingMethod": v.SAMPLING_METHOD, "ipdSharing": v.IPD_SHARING,
}


def walk(value: Any, path: str = "", key: str = "") -> Any:
    """(path, key, value) for every leaf and every empty container of a JSON-like value."""
    if isinstance(value, dict | list) and not value:
        yield path, key, value
    elif isinstance(value, dict):
        for name, item in value.items():
            yield from walk(item, f"{path}.{name}", name)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk(item, f"{path}[{index}]", key)
    else:
        yield path, key, value


@pytest.mark.parametrize("name", LEGACY)
def test_every_legacy_fixture_converts(name: str) -> None:
    path = fixture_path("ctgov", "legacy_xml", name)
    study = read_clinical_study_xml(path)
    protocol = study["protocolSection"]
    assert protocol["identificationModule"]["nctId"] == path.stem
    assert protocol["identificationModule"]["briefTitle"]
    assert json.loads(json.dumps(study)) == study
    for where, key, leaf in walk(study):
        assert leaf not in (None, "", [], {}), f"{where} is empty"
        if key in ENUM_FIELDS:
            assert leaf in ENUM_FIELDS[key].values, f"{where} = {leaf!r}"
        if key == "date" or key.endswith("Date"):
            assert ISO_DATE.fullmatch(leaf), f"{where} = {leaf!r}"
    arms = protocol.get("armsInterventionsModule", {})
    names = {f"{i['type'].title().replace('_', ' ')}: {i['name']}"
             for i in arms.get("interventions", [])}
    for arm in arms.get("armGroups", []):
        # Observational groups (cohorts) have no arm_group_type.
        assert arm.get("type", "OTHER") in v.ARM_GROUP_TYPE.values
        assert set(arm.get("interventionNames", [])) <= names
    for intervention in arms.get("interventions", []):
        assert intervention["type"] in v.INTERVENTION_TYPE.values
    for phase in protocol.get("designModule", {}).get("phases", []):
        assert phase in v.PHASE.values


def test_pallas_xml_agrees_with_v2() -> None:
    """The XML is a 2020-08-18 snapshot, the v2 JSON a 2023-10-06 one: fields that changed in
    between (sites, officials, outcomes reworded at results posting) are printed, not asserted."""
    xml = read_clinical_study_xml(fixture_path("ctgov", "legacy_xml", "NCT02513394.xml"))
    v2 = json.loads(fixture_path("ctgov", "v2", "NCT02513394.json").read_text())

    def facts(study: dict[str, Any]) -> dict[str, Any]:
        p = study["protocolSection"]
        return {
            "nctId": p["identificationModule"]["nctId"],
            "orgStudyId": p["identificationModule"]["orgStudyIdInfo"]["id"],
            "overallStatus": p["statusModule"]["overallStatus"],
            "phases": p["designModule"]["phases"],
            "armGroups": len(p["armsInterventionsModule"]["armGroups"]),
            "locations": len(p["contactsLocationsModule"]["locations"]),
            "conditions": p["conditionsModule"]["conditions"],
            "enrollment": p["designModule"]["enrollmentInfo"]["count"],
            "start": p["statusModule"]["startDateStruct"],
            "primaryOutcomes": len(p["outcomesModule"]["primaryOutcomes"]),
            "secondaryOutcomes": len(p["outcomesModule"]["secondaryOutcomes"]),
            "leadSponsor": p["sponsorCollaboratorsModule"]["leadSponsor"]["name"],
            "primaryCompletion": p["statusModule"]["primaryCompletionDateStruct"],
            "officials": [o["name"] for o in p["contactsLocationsModule"]["overallOfficials"]],
            "designInfo": p["designModule"]["designInfo"],
            "eligibility": {k: x for k, x in p["eligibilityModule"].items()},
            "briefSummary": p["descriptionModule"]["briefSummary"],
            "arms": p["armsInterventionsModule"],
            "meshes": [[m["term"] for m in study["derivedSection"][f"{kind}BrowseModule"]
                        ["meshes"]] for kind in ("condition", "intervention")],
        }

    ours, theirs = facts(xml), facts(v2)
    for key in ours:
        if ours[key] != theirs[key]:
            print(f"{key}: XML {ours[key]!r:.120} / v2 {theirs[key]!r:.120}")
    # Changed between the snapshots: sites added (233 -> 437), a PI replaced, outcomes reworded
    # and split when results were posted, primary completion became actual.
    changed = {"locations", "secondaryOutcomes", "primaryCompletion", "officials"}
    assert xml["derivedSection"]["miscInfoModule"]["versionHolder"] == "2020-08-18"
    assert v2["derivedSection"]["miscInfoModule"]["versionHolder"] == "2023-10-06"
    assert {k: x for k, x in ours.items() if k not in changed} == {
        k: x for k, x in theirs.items() if k not in changed}


@pytest.mark.parametrize("name", V2_FILES)
def test_std_ages_match_ctgov(name: str) -> None:
    data = json.loads(fixture_path("ctgov", "v2", name).read_text())
    for study in data if isinstance(data, list) else [data]:
        eligibility = study["protocolSection"].get("eligibilityModule")
        if eligibility and "stdAges" in eligibility:
            assert v.std_ages(eligibility.get("minimumAge"),
                              eligibility.get("maximumAge")) == eligibility["stdAges"]


ENUM_CASES = [
    (v.STATUS, "Recruiting", "RECRUITING"),
    (v.STATUS, "Active, not recruiting", "ACTIVE_NOT_RECRUITING"),
    (v.STATUS, "Not yet recruiting", "NOT_YET_RECRUITING"),
    (v.STATUS, "Enrolling by invitation", "ENROLLING_BY_INVITATION"),
    (v.STATUS, "Suspended", "SUSPENDED"),
    (v.STATUS, "Terminated", "TERMINATED"),
    (v.STATUS, "Completed", "COMPLETED"),
    (v.STATUS, "Withdrawn", "WITHDRAWN"),
    (v.STATUS, "Unknown status", "UNKNOWN"),
    (v.STATUS, "Available", "AVAILABLE"),
    (v.STATUS, "No longer available", "NO_LONGER_AVAILABLE"),
    (v.STATUS, "Temporarily not available", "TEMPORARILY_NOT_AVAILABLE"),
    (v.STATUS, "Approved for marketing", "APPROVED_FOR_MARKETING"),
    (v.STATUS, "Withheld", "WITHHELD"),
    (v.STUDY_TYPE, "Interventional", "INTERVENTIONAL"),
    (v.STUDY_TYPE, "Observational", "OBSERVATIONAL"),
    (v.STUDY_TYPE, "Observational [Patient Registry]", "OBSERVATIONAL"),
    (v.STUDY_TYPE, "Expanded Access", "EXPANDED_ACCESS"),
    (v.ALLOCATION, "Randomized", "RANDOMIZED"),
    (v.ALLOCATION, "Non-Randomized", "NON_RANDOMIZED"),
    (v.ALLOCATION, "N/A", "NA"),
    (v.INTERVENTION_MODEL, "Single Group Assignment", "SINGLE_GROUP"),
    (v.INTERVENTION_MODEL, "Parallel Assignment", "PARALLEL"),
    (v.INTERVENTION_MODEL, "Crossover Assignment", "CROSSOVER"),
    (v.INTERVENTION_MODEL, "Factorial Assignment", "FACTORIAL"),
    (v.INTERVENTION_MODEL, "Sequential Assignment", "SEQUENTIAL"),
    (v.PRIMARY_PURPOSE, "Treatment", "TREATMENT"),
    (v.PRIMARY_PURPOSE, "Prevention", "PREVENTION"),
    (v.PRIMARY_PURPOSE, "Diagnostic", "DIAGNOSTIC"),
    (v.PRIMARY_PURPOSE, "Supportive Care", "SUPPORTIVE_CARE"),
    (v.PRIMARY_PURPOSE, "Screening", "SCREENING"),
    (v.PRIMARY_PURPOSE, "Health Services Research", "HEALTH_SERVICES_RESEARCH"),
    (v.PRIMARY_PURPOSE, "Basic Science", "BASIC_SCIENCE"),
    (v.PRIMARY_PURPOSE, "Device Feasibility", "DEVICE_FEASIBILITY"),
    (v.PRIMARY_PURPOSE, "Educational/Counseling/Training", "ECT"),
    (v.PRIMARY_PURPOSE, "Other", "OTHER"),
    (v.OBSERVATIONAL_MODEL, "Case-Control", "CASE_CONTROL"),
    (v.OBSERVATIONAL_MODEL, "Ecologic or Community", "ECOLOGIC_OR_COMMUNITY"),
    (v.TIME_PERSPECTIVE, "Cross-Sectional", "CROSS_SECTIONAL"),
    (v.ARM_GROUP_TYPE, "Experimental", "EXPERIMENTAL"),
    (v.ARM_GROUP_TYPE, "Active Comparator", "ACTIVE_COMPARATOR"),
    (v.ARM_GROUP_TYPE, "Placebo Comparator", "PLACEBO_COMPARATOR"),
    (v.ARM_GROUP_TYPE, "Sham Comparator", "SHAM_COMPARATOR"),
    (v.ARM_GROUP_TYPE, "No Intervention", "NO_INTERVENTION"),
    (v.ARM_GROUP_TYPE, "Other", "OTHER"),
    (v.INTERVENTION_TYPE, "Drug", "DRUG"),
    (v.INTERVENTION_TYPE, "Biological", "BIOLOGICAL"),
    (v.INTERVENTION_TYPE, "Behavioral", "BEHAVIORAL"),
    (v.INTERVENTION_TYPE, "Device", "DEVICE"),
    (v.INTERVENTION_TYPE, "Procedure", "PROCEDURE"),
    (v.INTERVENTION_TYPE, "Radiation", "RADIATION"),
    (v.INTERVENTION_TYPE, "Dietary Supplement", "DIETARY_SUPPLEMENT"),
    (v.INTERVENTION_TYPE, "Genetic", "GENETIC"),
    (v.INTERVENTION_TYPE, "Combination Product", "COMBINATION_PRODUCT"),
    (v.INTERVENTION_TYPE, "Diagnostic Test", "DIAGNOSTIC_TEST"),
    (v.INTERVENTION_TYPE, "Other", "OTHER"),
    (v.SEX, "All", "ALL"), (v.SEX, "Male", "MALE"), (v.SEX, "Female", "FEMALE"),
    (v.SEX, "Both", "ALL"),
    (v.OFFICIAL_ROLE, "Principal Investigator", "PRINCIPAL_INVESTIGATOR"),
    (v.OFFICIAL_ROLE, "Study Director", "STUDY_DIRECTOR"),
    (v.OFFICIAL_ROLE, "Study Chair", "STUDY_CHAIR"),
    (v.OFFICIAL_ROLE, "Sub-Investigator", "SUB_INVESTIGATOR"),
    (v.AGENCY_CLASS, "NIH", "NIH"), (v.AGENCY_CLASS, "Industry", "INDUSTRY"),
    (v.AGENCY_CLASS, "Other", "OTHER"), (v.AGENCY_CLASS, "U.S. Fed", "FED"),
    (v.AGENCY_CLASS, "Other U.S. Federal agency", "FED"),
    (v.RESPONSIBLE_PARTY_TYPE, "Sponsor-Investigator", "SPONSOR_INVESTIGATOR"),
    (v.SAMPLING_METHOD, "Non-Probability Sample", "NON_PROBABILITY_SAMPLE"),
    (v.BIOSPEC_RETENTION, "Samples With DNA", "SAMPLES_WITH_DNA"),
    (v.IPD_SHARING, "Undecided", "UNDECIDED"),
    (v.IPD_INFO_TYPE, "Statistical Analysis Plan (SAP)", "SAP"),
    (v.DATE_TYPE, "Actual", "ACTUAL"), (v.DATE_TYPE, "Anticipated", "ESTIMATED"),
    (v.DATE_TYPE, "Estimate", "ESTIMATED"), (v.DATE_TYPE, "Estimated", "ESTIMATED"),
    # Unknown text is kept (whitespace collapsed) for the mapping to report.
    (v.STATUS, "  Paused   for lunch ", "Paused for lunch"),
    (v.ARM_GROUP_TYPE, "Case", "Case"),
]


@pytest.mark.parametrize(("enum", "text", "expected"), ENUM_CASES)
def test_enum_conversion(enum: v.V2Enum, text: str, expected: str) -> None:
    assert enum(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("Phase 1", ["PHASE1"]), ("Phase 1/Phase 2", ["PHASE1", "PHASE2"]),
    ("Phase 2/Phase 3", ["PHASE2", "PHASE3"]), ("Phase 3", ["PHASE3"]), ("Phase 4", ["PHASE4"]),
    ("Early Phase 1", ["EARLY_PHASE1"]), ("Phase 0", ["EARLY_PHASE1"]), ("N/A", ["NA"]),
    ("Phase 5", ["Phase 5"]), (None, []),
])
def test_phases(text: str | None, expected: list[str]) -> None:
    assert v.phases(text) == expected


@pytest.mark.parametrize(("text", "level", "who"), [
    ("None (Open Label)", "NONE", []),
    ("Single (Outcomes Assessor)", "SINGLE", ["OUTCOMES_ASSESSOR"]),
    ("Double (Participant, Investigator)", "DOUBLE", ["PARTICIPANT", "INVESTIGATOR"]),
    ("Triple (Participant, Care Provider, Investigator)", "TRIPLE",
     ["PARTICIPANT", "CARE_PROVIDER", "INVESTIGATOR"]),
    ("Quadruple (Participant, Care Provider, Investigator, Outcomes Assessor)", "QUADRUPLE",
     ["PARTICIPANT", "CARE_PROVIDER", "INVESTIGATOR", "OUTCOMES_ASSESSOR"]),
    ("Double Blind (Subject, Caregiver)", "DOUBLE", ["PARTICIPANT", "CARE_PROVIDER"]),
    ("Double Blind", "DOUBLE", []), ("Open Label", "NONE", []),
    ("Single Blind (Subject)", "SINGLE", ["PARTICIPANT"]),
    ("Partly (Nobody)", "Partly (Nobody)", []),
])
def test_masking(text: str, level: str, who: list[str]) -> None:
    assert v.masking(text) == (level, who)


@pytest.mark.parametrize(("text", "expected"), [
    ("December 2022", "2022-12"), ("March 3, 2015", "2015-03-03"),
    ("July 31, 2015", "2015-07-31"), ("  August\n 2015 ", "2015-08"),
    ("February 30, 2015", "February 30, 2015"), ("Unknown", "Unknown"), ("", None),
])
def test_iso_date(text: str, expected: str | None) -> None:
    assert v.iso_date(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("Yes", True), ("No", False), ("Accepts Healthy Volunteers", True), ("Maybe", "Maybe"),
])
def test_yes_no(text: str, expected: bool | str) -> None:
    assert v.yes_no(text) == expected


def test_textblock_reflows_paragraphs_and_nested_lists() -> None:
    block = """
        Inclusion Criteria:

          -  Signed informed consent prior to study specific procedures, given in
             writing.

               1. first sub point
                  wrapped

          -  Age >= 18

        A paragraph wrapped at a line that begins with a year
        2015. and goes on.
      """
    assert v.textblock(block) == (
        "Inclusion Criteria:\n\n"
        "* Signed informed consent prior to study specific procedures, given in writing.\n"
        "  1. first sub point wrapped\n"
        "* Age >= 18\n\n"
        "A paragraph wrapped at a line that begins with a year 2015. and goes on.")


def write(tmp_path: Path, text: str, name: str = "study.xml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


MINIMAL = """<?xml version="1.0" encoding="UTF-8"?>
<clinical_study>
  <id_info><org_study_id>X-1</org_study_id><nct_id>NCT00000001</nct_id></id_info>
  <brief_title>Old style</brief_title>
  <sponsors><lead_sponsor><agency>A</agency><agency_class>U.S. Fed</agency_class></lead_sponsor>
  </sponsors>
  <overall_status>Paused for lunch</overall_status>
  <start_date>Unknown</start_date>
  <phase>Phase 2/Phase 3</phase>
  <study_type>Interventional</study_type>
  <study_design>Allocation: Randomized, Endpoint Classification: Safety/Efficacy Study, \
Intervention Model: Crossover Assignment, Masking: Double Blind (Subject, Caregiver), \
Primary Purpose: Treatment</study_design>
  <enrollment type="Anticipated">about 40</enrollment>
  <arm_group><arm_group_label>Arm  A</arm_group_label><arm_group_type>Case</arm_group_type>
  </arm_group>
  <intervention><intervention_type>Dietary Supplement</intervention_type>
    <intervention_name>Zinc</intervention_name><arm_group_label>Arm A</arm_group_label>
    <other_name>Zn</other_name></intervention>
  <eligibility><gender>Both</gender><minimum_age>6 Months</minimum_age>
    <maximum_age>N/A</maximum_age><healthy_volunteers>No</healthy_volunteers></eligibility>
  <firstreceived_date>May 1, 2001</firstreceived_date>
</clinical_study>
"""


def test_pre_2017_record_and_unknown_values(tmp_path: Path) -> None:
    study = read_clinical_study_xml(write(tmp_path, MINIMAL))
    p = study["protocolSection"]
    assert p["sponsorCollaboratorsModule"]["leadSponsor"] == {"name": "A", "class": "FED"}
    assert p["statusModule"]["overallStatus"] == "Paused for lunch"
    assert p["statusModule"]["startDateStruct"] == {"date": "Unknown"}
    assert p["statusModule"]["studyFirstSubmitDate"] == "2001-05-01"
    assert p["designModule"]["phases"] == ["PHASE2", "PHASE3"]
    assert p["designModule"]["designInfo"] == {
        "allocation": "RANDOMIZED", "interventionModel": "CROSSOVER", "primaryPurpose": "TREATMENT",
        "maskingInfo": {"masking": "DOUBLE", "whoMasked": ["PARTICIPANT", "CARE_PROVIDER"]}}
    assert p["designModule"]["enrollmentInfo"] == {"count": "about 40", "type": "ESTIMATED"}
    assert p["armsInterventionsModule"]["armGroups"] == [
        {"label": "Arm  A", "type": "Case", "interventionNames": ["Dietary Supplement: Zinc"]}]
    assert p["armsInterventionsModule"]["interventions"] == [{
        "type": "DIETARY_SUPPLEMENT", "name": "Zinc", "armGroupLabels": ["Arm A"],
        "otherNames": ["Zn"]}]
    assert p["eligibilityModule"] == {"healthyVolunteers": False, "sex": "ALL",
                                      "minimumAge": "6 Months",
                                      "stdAges": ["CHILD", "ADULT", "OLDER_ADULT"]}
    assert study["hasResults"] is False
    assert "derivedSection" not in study


BAD = {
    "text file": ("Just some notes, not XML.\n", "not well-formed XML", 1),
    "empty file": ("", "not well-formed XML", 1),
    "wrong root": ('<?xml version="1.0"?>\n<study><id_info/></study>', "expected <clinical_study>",
                   2),
    "missing nct_id": ("<clinical_study>\n<id_info>\n<org_study_id>1</org_study_id>\n</id_info>"
                       "</clinical_study>", "<nct_id> missing", 2),
    "no id_info": ("<clinical_study><brief_title>t</brief_title></clinical_study>",
                   "<nct_id> missing", 1),
    "bad nct_id": ("<clinical_study><id_info><nct_id>NCT123</nct_id></id_info></clinical_study>",
                   "not an NCT number", 1),
    "entity expansion": ('<?xml version="1.0"?>\n<!DOCTYPE clinical_study [\n'
                         '<!ENTITY a "aaaaaaaaaa">\n<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">\n]>\n'
                         "<clinical_study><id_info><nct_id>NCT00000001</nct_id></id_info>"
                         "<brief_title>&b;</brief_title></clinical_study>", "DOCTYPE", 2),
    "external entity": ('<?xml version="1.0"?>\n<!DOCTYPE c [<!ENTITY x SYSTEM '
                        '"file:///etc/passwd">]>\n<clinical_study>&x;</clinical_study>',
                        "DOCTYPE", 2),
    "undeclared entity": ("<clinical_study><id_info><nct_id>&x;</nct_id></id_info>"
                          "</clinical_study>", "undefined entity", 1),
    "truncated": ("<clinical_study><id_info><nct_id>NCT00000001</nct_id>",
                  "not well-formed XML", 1),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_an_input_error(tmp_path: Path, case: str) -> None:
    text, message, line = BAD[case]
    path = write(tmp_path, text)
    with pytest.raises(InputError) as error:
        read_clinical_study_xml(path)
    assert error.value.file == str(path)
    assert message in error.value.message
    assert error.value.row == line


def test_binary_and_missing_files(tmp_path: Path) -> None:
    binary = tmp_path / "data.xpt"
    binary.write_bytes(b"HEADER RECORD*******\x00\x01\xff")
    with pytest.raises(InputError, match="not well-formed XML"):
        read_clinical_study_xml(binary)
    with pytest.raises(InputError, match="cannot read file"):
        read_clinical_study_xml(tmp_path / "absent.xml")
