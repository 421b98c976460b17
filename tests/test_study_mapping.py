"""CT.gov study -> ResearchStudy and the resources it references, R4 and R5: golden files,
every fixture record valid in both versions, the shape of HL7's own R5 CT.gov example, and
the facts that are easy to get wrong (combined phases, UNKNOWN status, partial records)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, fixture_path
from golden import GOLDEN, check_golden

from fhir_adapter import conceptmaps, ids
from fhir_adapter.mapping.own_terms import ctgov_system
from fhir_adapter.mapping.study import map_study, unmapped
from fhir_adapter.mapping.study_common import (
    OBJECTIVE_TYPE,
    PARTY_ROLE,
    RS_STATUS,
    XVER,
)
from fhir_adapter.sources.study import read_studies
from fhir_adapter.validation import validate

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "NCT05003921.json"
V2 = FIXTURES / "ctgov" / "v2"


def example() -> dict[str, Any]:
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


def v2(name: str) -> dict[str, Any]:
    return json.loads(fixture_path("ctgov", "v2", name).read_text(encoding="utf-8"))


def legacy(name: str) -> dict[str, Any]:
    (record,) = read_studies([fixture_path("ctgov", "legacy_xml", name)])
    return record.study


def main(resources: list[dict[str, Any]]) -> dict[str, Any]:
    assert resources[0]["resourceType"] == "ResearchStudy"
    return resources[0]


def of_type(resources: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in resources if r["resourceType"] == kind]


def extensions(resource: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [e for e in resource.get("extension", []) if e["url"] == XVER + name]


def sub(extension: dict[str, Any], name: str) -> Any:
    (part,) = [e for e in extension["extension"] if e["url"] == name]
    return next(v for k, v in part.items() if k.startswith("value"))


# ---- golden files ----------------------------------------------------------------------------

CASES: dict[str, Callable[[], dict[str, Any]]] = {
    "NCT05003921": example,  # the seed study (examples/), suspended, phase 1, one site
    "NCT02513394": lambda: v2("NCT02513394.json"),  # PALLAS: multinational, 437 sites
    "NCT00023673": lambda: legacy("NCT00023673.xml"),  # phase 1/phase 2 (only in legacy XML)
    "cdiscpilot01": lambda: sdtm_design(),  # CDISC SDTM pilot trial design (TS/TA/TI/TE)
}


def sdtm_design() -> dict[str, Any]:
    (record,) = read_studies([fixture_path("sdtm", "cdiscpilot01-slice")])
    return record.study


@pytest.mark.parametrize("version", ["R4", "R5"])
@pytest.mark.parametrize("case", list(CASES))
def test_golden(case: str, version: str, update_golden: bool) -> None:
    mapped = map_study(CASES[case](), version)
    check_golden(GOLDEN / "study" / f"{case}.{version.lower()}.expected.json",
                 mapped.resources, update_golden)


# ---- every fixture record, both versions ---------------------------------------------------

def _records() -> list[tuple[str, int]]:
    out = []
    for path in sorted(V2.rglob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        out += [(str(path.relative_to(V2)), i) for i in range(len(data))] if isinstance(
            data, list) else [(str(path.relative_to(V2)), 0)]
    return out or [("(no fixtures)", 0)]


@pytest.mark.parametrize("version", ["R4", "R5"])
@pytest.mark.parametrize("name, index", _records())
def test_every_v2_record_maps_and_validates(name: str, index: int, version: str) -> None:
    data = json.loads(fixture_path("ctgov", "v2", name).read_text(encoding="utf-8"))
    study = data[index] if isinstance(data, list) else data
    mapped = map_study(study, version, source=name)
    keys = [(r["resourceType"], r["id"]) for r in mapped.resources]
    assert len(keys) == len(set(keys)), "a resource produced twice"
    for resource in mapped.resources:
        assert validate(resource, version) == [], (resource["resourceType"], resource["id"])
    nct = study["protocolSection"]["identificationModule"]["nctId"]
    assert main(mapped.resources)["id"] == ids.study_resource_id(nct)
    assert mapped == map_study(copy.deepcopy(study), version, source=name)  # deterministic


def _legacy_names() -> list[str]:
    folder = V2.parent / "legacy_xml"
    return sorted(p.name for p in folder.glob("*.xml")) or ["(no fixtures)"]


@pytest.mark.parametrize("version", ["R4", "R5"])
@pytest.mark.parametrize("name", _legacy_names())
def test_every_legacy_xml_record_maps_and_validates(name: str, version: str) -> None:
    mapped = map_study(legacy(name), version, source=name)
    for resource in mapped.resources:
        assert validate(resource, version) == [], (resource["resourceType"], resource["id"])
    assert main(mapped.resources)["id"] == ids.study_resource_id(name.removesuffix(".xml"))


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_sdtm_pilot_design_maps_and_validates(version: str) -> None:
    mapped = map_study(sdtm_design(), version, source="cdiscpilot01")
    study = main(mapped.resources)
    assert study["id"] == ids.study_resource_id("CDISCPILOT01")
    for resource in mapped.resources:
        assert validate(resource, version) == [], (resource["resourceType"], resource["id"])
    arms = ([a["name"] for a in study["arm"]] if version == "R4"
            else [g["name"] for g in study["comparisonGroup"]])
    assert sorted(arms) == ["Placebo", "Xanomeline High Dose", "Xanomeline Low Dose"]
    # SDTM has no overall status: the fallback is said, not silent.
    assert any("status" in w for w in mapped.warnings)


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_references_resolve_within_the_output(version: str) -> None:
    resources = map_study(v2("NCT02210780.json"), version).resources
    have = {f"{r['resourceType']}/{r['id']}" for r in resources}
    found = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            ref = value.get("reference")
            if isinstance(ref, str):
                found.append(ref)
            for child in value.values():
                walk(child)
        elif isinstance(value, list):
            for child in value:
                walk(child)

    walk(resources)
    assert found and set(found) <= have


# ---- HL7's R5 CT.gov example as the model of the R5 shape ----------------------------------

def test_r5_shape_follows_hl7_ctgov_example(fixtures_dir: Path) -> None:
    hl7 = json.loads((fixtures_dir / "fhir" / "examples" / "r5" /
                      "ResearchStudy-example-ctgov-study-record.json").read_text())
    ours = main(map_study(v2("NCT02513394.json"), "R5").resources)
    for element in ("identifier", "label", "relatedArtifact", "primaryPurposeType", "phase",
                    "studyDesign", "condition", "keyword", "descriptionSummary", "site",
                    "classifier", "associatedParty", "progressStatus", "recruitment",
                    "comparisonGroup", "outcomeMeasure"):
        assert element in hl7 and element in ours, element
    assert ours["status"] == hl7["status"] == "active"  # publication status, not the lifecycle
    nct = {"use": "official", "system": "https://clinicaltrials.gov"}
    assert any(nct.items() <= i.items() for i in hl7["identifier"])
    assert any(nct.items() <= i.items() for i in ours["identifier"])
    for element in ("primaryPurposeType", "phase"):  # same code systems as HL7
        assert ours[element]["coding"][0]["system"] == hl7[element]["coding"][0]["system"]
    # label: HL7 types its label by text only; we add the R5 title-type code (and keep the text).
    assert {x["type"]["text"] for x in hl7["label"]} <= {x["type"]["text"] for x in ours["label"]}
    assert all(x["value"] for x in ours["label"])
    # progressStatus: the current state without a period, then 'overall-study' with a period
    # and actual flag (left out where CT.gov gives no date type), in research-study-status.
    for doc in (hl7, ours):
        first, *rest = doc["progressStatus"]
        assert first["state"]["coding"][0]["system"] == RS_STATUS and "period" not in first
        overall = [p for p in rest if p["state"].get("coding", [{}])[0].get("code")
                   == "overall-study"]
        assert overall and all("period" in p for p in overall)
        assert any("actual" in p for p in overall)
    # associatedParty: coded research-study-party-role (HL7 leaves the PI role as text; we
    # code it); sponsors carry their CT.gov agency class as classifier.
    hl7_roles = {c["code"] for p in hl7["associatedParty"] for c in p["role"].get("coding", [])}
    assert all(p["role"]["coding"][0]["system"] == PARTY_ROLE for p in ours["associatedParty"])
    ours_roles = {p["role"]["coding"][0]["code"] for p in ours["associatedParty"]}
    contacts = main(map_study(v2("NCT03475563.json"), "R5").resources)["associatedParty"]
    ours_roles |= {p["role"]["coding"][0]["code"] for p in contacts}
    assert hl7_roles <= ours_roles | {"sponsor"}  # 'sponsor' only when it differs from the lead
    lead = next(p for p in ours["associatedParty"]
                if p["role"]["coding"][0]["code"] == "lead-sponsor")
    assert lead["classifier"][0]["coding"][0]["system"] == ctgov_system("AgencyClass")
    # comparisonGroup: linkId, name, type, description, intendedExposure -> EvidenceVariable.
    for doc in (hl7, ours):
        for group in doc["comparisonGroup"]:
            assert {"linkId", "name", "type", "intendedExposure"} <= group.keys()
            assert all(x["type"] == "EvidenceVariable" for x in group["intendedExposure"])
    # outcomeMeasure: name, objective type, description (ours adds the time frame).
    for doc in (hl7, ours):
        for measure in doc["outcomeMeasure"]:
            assert measure["name"] and measure["description"]
            assert measure["type"][0]["coding"][0]["system"] == OBJECTIVE_TYPE
    assert any("Time frame:" in m["description"] for m in ours["outcomeMeasure"])
    # recruitment: numbers and eligibility (HL7: an EvidenceVariable on fevir.net; ours: the
    # eligibility Group, as R5 allows, standalone so that the gateway serves it).
    assert "targetNumber" in hl7["recruitment"] and "eligibility" in hl7["recruitment"]
    assert {"actualNumber", "eligibility"} <= ours["recruitment"].keys()
    assert ours["recruitment"]["eligibility"]["reference"].startswith("Group/")
    # site: HL7 points at a contained per-site ResearchStudy; ours point at the Location (the
    # R4 site element can only hold a Location), with per-site ResearchStudies partOf the study
    # only where a site has its own status or contacts.
    assert all(s["reference"].startswith("Location/") for s in ours["site"])
    # classifier: the same "Has Results: ..." / "Oversight Classifier: ..." texts as HL7.
    for prefix in ("Has Results: ", "Oversight Classifier: "):
        assert any(c["text"].startswith(prefix) for c in hl7["classifier"])
        assert any(c["text"].startswith(prefix) for c in ours["classifier"])


# ---- facts that are easy to get wrong -------------------------------------------------------

def test_seed_study_facts() -> None:
    r4 = map_study(example(), "R4").resources
    study = main(r4)
    assert study["status"] == "temporarily-closed-to-accrual"
    assert study["reasonStopped"] == {"text": "Modifying Protocol"}
    assert study["phase"]["coding"][0]["code"] == "phase-1"
    assert {"system": ids.STUDY_ID_SYSTEM, "value": "SC-7-ATG-7-01"}.items() <= \
        study["identifier"][1].items()
    (recruitment,) = extensions(study, "ResearchStudy.recruitment")
    assert sub(recruitment, "targetNumber") == 20
    (location,) = of_type(r4, "Location")
    assert location["address"]["country"] == "AG"
    assert study["location"][0]["coding"][0] == {
        "system": "urn:iso:std:iso:3166", "code": "AG", "display": "Antigua and Barbuda"}
    assert [o["name"] for o in study["objective"]] == [
        "Safety (adverse events)", "Efficacy: revised ALS functional rating scale (ALSFRS-R)"]
    assert all("Four year follow-up" in sub(e, "description")
               for e in extensions(study, "ResearchStudy.outcomeMeasure"))
    assert study["arm"][0]["name"] == "Treatment Group"
    r5 = main(map_study(example(), "R5").resources)
    assert r5["comparisonGroup"][0]["linkId"] == ids.arm_link_id("Treatment Group")
    assert r5["whyStopped"] == {"text": "Modifying Protocol"}
    (group,) = of_type(map_study(example(), "R5").resources, "Group")
    assert group["description"].startswith("Inclusion Criteria:")
    assert group["membership"] == "definitional"


@pytest.mark.parametrize("phases, code", [
    (["PHASE1", "PHASE2"], "phase-1-phase-2"), (["PHASE3", "PHASE2"], "phase-2-phase-3"),
    (["EARLY_PHASE1"], "early-phase-1"), (["NA"], "n-a"),
])
def test_combined_phases_are_never_cut_to_the_first(phases: list[str], code: str) -> None:
    study = example()
    study["protocolSection"]["designModule"]["phases"] = phases
    for version in ("R4", "R5"):
        assert main(map_study(study, version).resources)["phase"]["coding"][0]["code"] == code


def test_unknown_phase_combination_is_text_and_warned() -> None:
    study = example()
    study["protocolSection"]["designModule"]["phases"] = ["PHASE1", "PHASE3"]
    mapped = map_study(study, "R4")
    assert main(mapped.resources)["phase"] == {"text": "PHASE1/PHASE3"}
    assert any("PHASE3" in w for w in mapped.warnings)


def test_unknown_status_uses_last_known_status_not_actual() -> None:
    study = v2("NCT03475563.json")  # UNKNOWN, lastKnownStatus RECRUITING
    r4 = main(map_study(study, "R4").resources)
    assert r4["status"] == "active"
    state = sub(extensions(r4, "ResearchStudy.progressStatus")[0], "state")
    assert state["coding"][0]["code"] == "recruiting" and "Unknown status" in state["text"]
    assert sub(extensions(r4, "ResearchStudy.progressStatus")[0], "actual") is False
    first = main(map_study(study, "R5").resources)["progressStatus"][0]
    assert first["state"]["coding"][0]["code"] == "recruiting" and first["actual"] is False


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_stated_unknown_status_is_a_searchable_tag(tmp_path: Path, version: str) -> None:
    """R4 has no unknown state: the stated UNKNOWN is a meta.tag in our published CT.gov
    status CodeSystem, found by ResearchStudy?_tag=...|UNKNOWN in a real store; a study with
    a known status is not."""
    from fhir_adapter.store import open_store
    from fhir_adapter.store.base import SearchQuery

    unknown = main(map_study(v2("NCT03475563.json"), version).resources)
    known = main(map_study(example(), version).resources)
    tag = {"system": ctgov_system("Status"), "code": "UNKNOWN", "display": "Unknown"}
    assert unknown["meta"]["tag"] == [tag] and "meta" not in known
    store = open_store(f"sqlite:///{tmp_path}/tag.db")
    with store.transaction() as tx:
        for resource in (unknown, known):
            tx.update({version: resource})
    query = SearchQuery("ResearchStudy", version, [("_tag", f"{tag['system']}|UNKNOWN")])
    assert [m.id for m in store.search(query).matches] == [unknown["id"]]
    # the status ConceptMap says so, as data
    (row,) = [e for g in conceptmaps.get_map(f"ctgov-overall-status-to-r{version[1]}"
                                             + ("" if version == "R4" else "-progress"))["group"]
              for e in g["element"] if e["code"] == "UNKNOWN"]
    assert "meta.tag" in row["target"][0]["comment"]


def test_actual_start_and_estimated_end_are_two_entries() -> None:
    study = example()
    study["protocolSection"]["statusModule"]["startDateStruct"]["type"] = "ACTUAL"
    progress = main(map_study(study, "R5").resources)["progressStatus"]
    overall = [p for p in progress if p["state"].get("coding", [{}])[0].get("code")
               == "overall-study"]
    assert overall == [
        {"state": overall[0]["state"], "actual": True, "period": {"start": "2022-12"}},
        {"state": overall[0]["state"], "actual": False, "period": {"end": "2025-09"}}]


def test_actual_enrollment_is_actual_number() -> None:
    study = example()
    study["protocolSection"]["designModule"]["enrollmentInfo"]["type"] = "ACTUAL"
    assert main(map_study(study, "R5").resources)["recruitment"]["actualNumber"] == 20


@pytest.mark.parametrize("name", ["NCT00465816.json", "NCT03453554.json"])
def test_partial_record_maps_what_it_has_and_warns(name: str) -> None:
    study = v2(f"partial/{name}")
    r4 = map_study(study, "R4")
    assert main(r4.resources)["status"] == "in-review"
    assert any("overallStatus missing" in w and "fallback" in w for w in r4.warnings)
    for module in ("statusModule", "designModule", "eligibilityModule"):
        assert f"protocolSection.{module} missing" in r4.warnings
    r5 = map_study(study, "R5")
    assert "progressStatus" not in main(r5.resources)
    assert main(r5.resources)["title"]


def test_fields_not_mapped_are_reported() -> None:
    study = example()
    study["protocolSection"]["eligibilityModule"]["genderDescription"] = "self-identified"
    study["protocolSection"]["armsInterventionsModule"]["armGroups"][0]["x-code"] = "A"
    study["resultsSection"] = {"participantFlowModule": {"groups": [{"id": "FG000"}]}}
    mapped = map_study(study, "R4")
    assert ("not mapped: protocolSection.armsInterventionsModule.armGroups.x-code, "
            "protocolSection.eligibilityModule.genderDescription, resultsSection"
            ) in mapped.warnings  # in record order
    assert unmapped(example()) == []


def test_country_without_iso_code_is_kept_and_warned() -> None:
    study = example()
    study["protocolSection"]["contactsLocationsModule"]["locations"][0]["country"] = "Kosovo"
    mapped = map_study(study, "R5")
    (location,) = of_type(mapped.resources, "Location")
    assert location["address"]["country"] == "Kosovo"
    assert main(mapped.resources)["region"] == [{"text": "Kosovo"}]
    assert any("Kosovo" in w for w in mapped.warnings)


def test_sponsor_and_officials() -> None:
    study = v2("NCT02513394.json")
    resources = map_study(study, "R4").resources
    r4 = main(resources)
    lead = study["protocolSection"]["sponsorCollaboratorsModule"]["leadSponsor"]["name"]
    org_id = ids.resource_id("Organization", "urn:fhir-adapter:organization", lead)
    assert r4["sponsor"]["reference"] == f"Organization/{org_id}"
    roles = [sub(e, "role")["coding"][0]["code"]
             for e in extensions(r4, "ResearchStudy.associatedParty")]
    assert "collaborator" in roles
    if "principalInvestigator" in r4:
        assert r4["principalInvestigator"]["reference"].startswith("PractitionerRole/")
    assert of_type(resources, "PractitionerRole") and of_type(resources, "Practitioner")


def test_no_study_key_is_an_input_error() -> None:
    from fhir_adapter.errors import InputError

    with pytest.raises(InputError, match="nctId missing"):
        map_study({"protocolSection": {"identificationModule": {}}}, "R4", source="x.json")


def test_legacy_xml_and_v2_json_agree() -> None:
    """NCT02513394 as legacy XML (a 2020 download) and as v2 JSON (2023): the same identifiers,
    status, phase, arms and conditions; the XML's site countries are among the JSON's (the trial
    added sites after 2020)."""
    xml, json_ = legacy("NCT02513394.xml"), v2("NCT02513394.json")
    for version in ("R4", "R5"):
        a, b = map_study(xml, version).resources, map_study(json_, version).resources
        sa, sb = main(a), main(b)
        assert sa["id"] == sb["id"]
        assert [i["value"] for i in sa["identifier"]] == [i["value"] for i in sb["identifier"]]
        assert sa["status"] == sb["status"] and sa["phase"] == sb["phase"]
        # the same conditions and derived MeSH terms; the XML names MeSH terms without ids
        assert [c["text"] for c in sa["condition"]] == [c["text"] for c in sb["condition"]]
        assert all(c["coding"][0]["code"] for c in sb["condition"] if "coding" in c)
        assert any("without their MeSH ids" in w for w in map_study(xml, version).warnings)
        arms = "arm" if version == "R4" else "comparisonGroup"
        assert [x["name"] for x in sa[arms]] == [x["name"] for x in sb[arms]]
        regions = "location" if version == "R4" else "region"
        assert {c["coding"][0]["code"] for c in sa[regions]} <= {
            c["coding"][0]["code"] for c in sb[regions]}
        assert len(of_type(a, "Location")) == len(sa["site"]) > 200


@pytest.mark.parametrize("overall, last, r5_text", [
    ("UNKNOWN", None, "Unknown status"), ("Recruiting soon", None, "Recruiting soon")])
def test_unusable_status_falls_back_with_warnings(overall: str, last: str | None,
                                                  r5_text: str) -> None:
    study = example()
    study["protocolSection"]["statusModule"]["overallStatus"] = overall
    if last:
        study["protocolSection"]["statusModule"]["lastKnownStatus"] = last
    r4 = map_study(study, "R4")
    assert main(r4.resources)["status"] == "in-review"
    assert any("fallback" in w for w in r4.warnings)
    r5 = map_study(study, "R5")
    assert main(r5.resources)["progressStatus"][0]["state"] == {"text": r5_text}


def test_official_without_role_still_has_a_role() -> None:
    study = example()
    del study["protocolSection"]["contactsLocationsModule"]["overallOfficials"][0]["role"]
    for version in ("R4", "R5"):
        for resource in map_study(study, version).resources:
            assert validate(resource, version) == []
    party = main(map_study(study, "R5").resources)["associatedParty"][-1]
    assert party["role"] == {"text": "Overall Official"}


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_derived_mesh_terms_are_codings(version: str) -> None:
    """CT.gov's derived MeSH conditions become MeSH codings even when the stated condition text
    differs ('ALS' vs 'Amyotrophic Lateral Sclerosis'); ancestors are coded keywords."""
    study = example()
    study["protocolSection"]["conditionsModule"]["conditions"] = ["ALS"]
    rs = main(map_study(study, version).resources)
    derived = {m["id"] for m in study["derivedSection"]["conditionBrowseModule"]["meshes"]}
    coded = {c["code"] for cc in rs["condition"] for c in cc.get("coding", [])}
    assert rs["condition"][0] == {"text": "ALS"} and coded == derived
    ancestors = {m["id"] for m in study["derivedSection"]["conditionBrowseModule"]["ancestors"]}
    assert ancestors <= {c["code"] for cc in rs["keyword"] for c in cc.get("coding", [])}
    for cc in rs["condition"] + rs["keyword"]:
        for c in cc.get("coding", []):
            assert c["system"] == "https://www.nlm.nih.gov/mesh" and c["display"] == cc["text"]


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_sdtm_ts_objectives_are_study_objectives(version: str) -> None:
    """Every TS OBJPRIM/OBJSEC of the pilot is an objective of its type, text as stated."""
    study = sdtm_design()
    stated = study["protocolSection"]["x-sdtm"]["objectives"]
    assert {o["type"] for o in stated} == {"primary", "secondary"}
    rs = main(map_study(study, version).resources)
    text = "name" if version == "R4" else "description"
    got = [(o["type"]["coding"][0]["code"], o[text]) for o in rs["objective"]][:len(stated)]
    assert got == [(o["type"], o["text"]) for o in stated]


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_phone_extension_and_country_code(version: str) -> None:
    """phoneExt is the extension number (contactpoint-extension, on ContactPoint.value, its
    context), unless it is a country calling code ('+33', as real records give it): then it
    goes before the number and no extension is written."""
    study = example()
    study["protocolSection"]["contactsLocationsModule"]["centralContacts"] = [
        {"name": "A Person", "role": "CONTACT", "phone": "1 23 45 67 89", "phoneExt": "+33"},
        {"name": "B Person", "role": "CONTACT", "phone": "555-0100", "phoneExt": "7802"}]
    resources = map_study(study, version).resources
    text = json.dumps(resources)
    assert '{"system": "phone", "value": "+33 1 23 45 67 89"}' in text
    assert '{"system": "phone", "value": "555-0100", "_value": {"extension": [{"url": ' \
        '"http://hl7.org/fhir/StructureDefinition/contactpoint-extension", ' \
        '"valueString": "7802"}]}}' in text
    assert text.count("contactpoint-extension") == 1
    for resource in resources:
        assert validate(resource, version) == []


def test_r4_arm_exposures_are_in_the_study_comparison_group_extension() -> None:
    rs = main(map_study(example(), "R4").resources)
    assert all("extension" not in arm for arm in rs["arm"])
    (group,) = extensions(rs, "ResearchStudy.comparisonGroup")
    assert sub(group, "name") == rs["arm"][0]["name"]
    assert sub(group, "linkId") == ids.arm_link_id(rs["arm"][0]["name"])
    assert sub(group, "intendedExposure")["type"] == "EvidenceVariable"
