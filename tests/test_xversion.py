"""R4 <-> R5 conversion of client writes (gateway/xversion): every resource converts, is valid
in the other version, and converts back unchanged (R4 -> R5 -> R4 and R5 -> R4 -> R5), or is
refused naming the element. Over the official examples, our goldens and generated resources
(hypothesis) of every type the store holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fhir_adapter.gateway.xversion import NotRepresentable, convert, convert_checked, equivalent
from fhir_adapter.gateway.xversion.placeholders import PLACEHOLDER
from fhir_adapter.store.canonical import loads
from fhir_adapter.validation import validate

ROOT = Path(__file__).resolve().parents[1]
OTHER = {"R4": "R5", "R5": "R4"}


def _resources(data: Any) -> Any:
    """Every resource in a golden file (lists, {"resources": ...}, Bundles)."""
    if isinstance(data, list):
        for item in data:
            yield from _resources(item)
    elif isinstance(data, dict) and "resourceType" in data and data["resourceType"] != "Bundle":
        yield data
    elif isinstance(data, dict):
        for value in data.values():
            yield from _resources(value)


def _examples() -> list[Any]:
    out = []
    for version in ("r4", "r5"):
        for path in sorted((FIXTURES / "fhir" / "examples" / version).glob("*.json")):
            out.append(pytest.param(version.upper(), loads(path.read_bytes()),
                                    id=f"{version}-{path.stem}"))
    for path in sorted((ROOT / "tests" / "golden").glob("*/*.r[45].expected.json")):
        version = "R4" if ".r4." in path.name else "R5"
        data = loads(path.read_bytes())
        items = list(_resources(data))
        seen: set[str] = set()
        for item in items:  # one of each type per file: the goldens repeat their shapes
            if item["resourceType"] not in seen:
                seen.add(item["resourceType"])
                out.append(pytest.param(version, item,
                                        id=f"{path.stem}-{item['resourceType']}"))
    return out


@pytest.mark.parametrize("version,resource", _examples())
def test_examples_and_goldens_round_trip(version, resource) -> None:
    assert validate(resource, version) == []
    converted = convert_checked(resource, version, OTHER[version])  # never refused
    assert validate(converted, OTHER[version]) == []
    assert equivalent(convert(converted, OTHER[version], version), resource)


def test_r4_research_subject_in_r5() -> None:
    r4 = {"resourceType": "ResearchSubject", "id": "s", "status": "on-study",
          "study": {"reference": "ResearchStudy/x"}, "individual": {"reference": "Patient/p"},
          "assignedArm": "Arm A", "consent": {"reference": "Consent/c"}}
    r5 = convert_checked(r4, "R4", "R5")
    assert r5["subject"] == {"reference": "Patient/p"} and r5["status"] == "active"
    assert r5["assignedComparisonGroup"] == "arm-arm-a"  # the linkId our mapper gives "Arm A"
    assert r5["consent"] == [{"reference": "Consent/c"}]
    assert r5["progress"][-1]["subjectState"]["coding"][0]["code"] == "on-study"
    assert r5["extension"] == [{
        "url": "http://hl7.org/fhir/4.0/StructureDefinition/extension-ResearchSubject.assignedArm",
        "valueString": "Arm A"}]
    assert convert(r5, "R5", "R4") == r4


def test_a_changed_r4_status_becomes_a_new_r5_progress_entry() -> None:
    r5 = {"resourceType": "ResearchSubject", "status": "active",
          "progress": [{"subjectState": {"coding": [{
              "system": "http://terminology.hl7.org/CodeSystem/research-subject-state",
              "code": "on-study"}]}, "startDate": "2024-01-01"}],
          "study": {"reference": "ResearchStudy/x"}, "subject": {"reference": "Patient/p"}}
    r4 = convert_checked(r5, "R5", "R4")
    assert r4["status"] == "on-study"
    r4["status"] = "off-study"  # an R4 client's update
    again = convert_checked(r4, "R4", "R5")
    states = [p["subjectState"]["coding"][0]["code"] for p in again["progress"]]
    assert states == ["on-study", "off-study"]
    assert again["progress"][0]["startDate"] == "2024-01-01"


def test_required_elements_without_a_value_hold_a_placeholder() -> None:
    # R5 Group.type 'careteam' has no R4 code: the code travels in the cross-version
    # extension, the required R4 element holds a data-absent-reason, both go on the way back.
    r5 = {"resourceType": "Group", "type": "careteam", "membership": "enumerated"}
    r4 = convert_checked(r5, "R5", "R4")
    assert r4["_type"] == PLACEHOLDER and "type" not in r4
    assert r4["extension"] == [{"url": "http://hl7.org/fhir/5.0/StructureDefinition/"
                                       "extension-Group.type", "valueCode": "careteam"}]
    assert convert(r4, "R4", "R5") == r5
    # an R5 ResearchSubject without progress: no R4 status, a placeholder in its place
    subject = {"resourceType": "ResearchSubject", "status": "active",
               "study": {"reference": "ResearchStudy/x"}, "subject": {"reference": "Patient/y"}}
    r4 = convert_checked(subject, "R5", "R4")
    assert r4["_status"] == PLACEHOLDER and "status" not in r4
    assert convert(r4, "R4", "R5") == subject


def test_what_cannot_be_represented_is_named() -> None:
    with pytest.raises(NotRepresentable) as caught:  # two values for R5 subject
        convert_checked({"resourceType": "ResearchSubject", "status": "on-study",
                         "study": {"reference": "ResearchStudy/x"},
                         "individual": {"reference": "Patient/p"},
                         "extension": [{"url": "http://hl7.org/fhir/5.0/StructureDefinition/"
                                               "extension-ResearchSubject.subject",
                                        "valueReference": {"reference": "Group/g"}}]},
                        "R4", "R5")
    assert caught.value.element == "ResearchSubject.subject"
    with pytest.raises(NotRepresentable) as caught:  # R5 has no home for assignedArm's own
        convert_checked({"resourceType": "ResearchSubject", "status": "on-study",
                         "study": {"reference": "ResearchStudy/x"},
                         "individual": {"reference": "Patient/p"}, "assignedArm": "A",
                         "_assignedArm": {"extension": [{"url": "http://example.org/x",
                                                         "valueString": "y"}]}},
                        "R4", "R5")
    assert caught.value.element == "ResearchSubject._assignedArm"
    with pytest.raises(NotRepresentable) as caught:  # an exposure of an arm there is not
        convert_checked({"resourceType": "ResearchStudy", "status": "active",
                         "arm": [{"name": "A"}], "extension": [{
                             "url": "http://hl7.org/fhir/5.0/StructureDefinition/"
                                    "extension-ResearchStudy.comparisonGroup",
                             "extension": [{"url": "name", "valueString": "B"}]}]}, "R4", "R5")
    assert caught.value.element == "ResearchStudy.extension"


# -- generated resources -------------------------------------------------------------------

_text = st.text(alphabet="abcdefgh XYZ-", min_size=1, max_size=12).map(str.strip).filter(bool)
_code = st.sampled_from(["a", "b", "c1", "x-y"])
_system = st.sampled_from(["urn:s1", "http://example.org/cs"])
_coding = st.builds(lambda s, c: {"system": s, "code": c}, _system, _code)
_concept = st.one_of(st.builds(lambda c: {"coding": [c]}, _coding),
                     st.builds(lambda t: {"text": t}, _text))
_identifier = st.builds(lambda s, v: {"system": s, "value": v}, _system, _text)
_date = st.from_regex(r"20[0-2]\d-(0[1-9]|1[0-2])-(0[1-9]|1\d|2[0-8])", fullmatch=True)
_period = st.builds(lambda a: {"start": a}, _date)


def _ref(*types: str) -> Any:
    return st.builds(lambda t, i: {"reference": f"{t}/{i}"}, st.sampled_from(types),
                     st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True))


def _listed(s: Any) -> Any:
    return st.lists(s, min_size=1, max_size=3)


def _resource(rtype: str, required: dict[str, Any], optional: dict[str, Any]) -> Any:
    @st.composite
    def build(draw: Any) -> dict[str, Any]:
        out = {"resourceType": rtype, "id": draw(st.from_regex(r"[a-z0-9]{1,10}",
                                                               fullmatch=True))}
        for key, strategy in required.items():
            out[key] = draw(strategy)
        for key in draw(st.lists(st.sampled_from(sorted(optional)), unique=True,
                                 max_size=len(optional))):
            out[key] = draw(optional[key])
        return out
    return build()


R4_RESOURCES = {
    "ResearchSubject": _resource("ResearchSubject", {
        "status": st.sampled_from(["candidate", "on-study", "off-study", "withdrawn"]),
        "study": _ref("ResearchStudy"), "individual": _ref("Patient")}, {
        "identifier": _listed(_identifier), "period": _period, "assignedArm": _text,
        "actualArm": _text, "consent": _ref("Consent")}),
    "ResearchStudy": _resource("ResearchStudy", {
        "status": st.sampled_from(["active", "completed", "withdrawn", "in-review",
                                   "temporarily-closed-to-accrual"])}, {
        "identifier": _listed(_identifier), "title": _text, "phase": _concept,
        "category": _listed(_concept), "focus": _listed(_concept),
        "condition": _listed(_concept), "keyword": _listed(_concept),
        "location": _listed(_concept), "description": _text, "period": _period,
        "enrollment": st.lists(_ref("Group"), min_size=1, max_size=2),
        "sponsor": _ref("Organization"), "principalInvestigator": _ref("Practitioner"),
        "site": _listed(_ref("Location")), "reasonStopped": _concept,
        "arm": _listed(st.builds(lambda n, t: {"name": n, "type": t}, _text, _concept)),
        "objective": _listed(st.builds(lambda n: {"name": n}, _text)),
        "contact": _listed(st.builds(lambda n: {"name": n}, _text))}),
    "AdverseEvent": _resource("AdverseEvent", {
        "actuality": st.sampled_from(["actual", "potential"]), "subject": _ref("Patient")}, {
        "identifier": _identifier, "category": _listed(_concept), "event": _concept,
        "date": _date, "detected": _date, "recordedDate": _date,
        "resultingCondition": _listed(_ref("Condition")), "location": _ref("Location"),
        "seriousness": _concept, "severity": _concept, "outcome": _concept,
        "recorder": _ref("Practitioner"), "contributor": _listed(_ref("Practitioner")),
        "suspectEntity": _listed(st.builds(
            lambda r, c: {"instance": r, "causality": c}, _ref("Medication"),
            st.lists(st.builds(lambda a, m: {"assessment": a, "method": m}, _concept,
                               _concept), min_size=1, max_size=2))),
        "subjectMedicalHistory": _listed(_ref("Condition")),
        "referenceDocument": _listed(_ref("DocumentReference")),
        "study": _listed(_ref("ResearchStudy"))}),
    "Patient": _resource("Patient", {}, {
        "identifier": _listed(_identifier), "active": st.booleans(),
        "gender": st.sampled_from(["male", "female", "other", "unknown"]),
        "birthDate": _date, "deceasedBoolean": st.booleans(),
        "name": _listed(st.builds(lambda f: {"family": f}, _text)),
        "managingOrganization": _ref("Organization"),
        "link": _listed(st.builds(lambda o: {"other": o, "type": "seealso"}, _ref("Patient")))}),
    "Group": _resource("Group", {
        "type": st.sampled_from(["person", "practitioner", "device"]),
        "actual": st.booleans()}, {
        "name": _text, "code": _concept, "quantity": st.integers(0, 99),
        "member": _listed(st.builds(lambda e: {"entity": e}, _ref("Patient"))),
        "characteristic": _listed(st.builds(
            lambda c, v, x: {"code": c, "valueCodeableConcept": v, "exclude": x},
            _concept, _concept, st.booleans()))}),
    "Organization": _resource("Organization", {}, {
        "identifier": _listed(_identifier), "active": st.booleans(), "name": _text,
        "alias": _listed(_text), "type": _listed(_concept),
        "telecom": _listed(st.builds(lambda v: {"system": "phone", "value": v}, _text)),
        "address": _listed(st.builds(lambda c: {"city": c}, _text)),
        "partOf": _ref("Organization"),
        "contact": _listed(st.builds(lambda n: {"name": {"text": n}}, _text))}),
    "Location": _resource("Location", {}, {
        "identifier": _listed(_identifier), "status": st.sampled_from(["active", "inactive"]),
        "name": _text, "alias": _listed(_text), "description": _text,
        "type": _listed(_concept), "physicalType": _concept,
        "telecom": _listed(st.builds(lambda v: {"system": "email", "value": v}, _text)),
        "address": st.builds(lambda c: {"country": c}, _text),
        "managingOrganization": _ref("Organization"), "partOf": _ref("Location"),
        "availabilityExceptions": _text}),
    "Practitioner": _resource("Practitioner", {}, {
        "identifier": _listed(_identifier), "active": st.booleans(),
        "name": _listed(st.builds(lambda f: {"family": f}, _text)),
        "gender": st.sampled_from(["male", "female"]), "birthDate": _date,
        "communication": _listed(_concept),
        "qualification": _listed(st.builds(lambda c: {"code": c}, _concept))}),
    "PractitionerRole": _resource("PractitionerRole", {}, {
        "identifier": _listed(_identifier), "active": st.booleans(), "period": _period,
        "practitioner": _ref("Practitioner"), "organization": _ref("Organization"),
        "code": _listed(_concept), "specialty": _listed(_concept),
        "location": _listed(_ref("Location")),
        "availableTime": _listed(st.builds(lambda d: {"daysOfWeek": [d]},
                                           st.sampled_from(["mon", "tue"]))),
        "availabilityExceptions": _text}),
    "Medication": _resource("Medication", {}, {
        "code": _concept, "status": st.sampled_from(["active", "inactive"]),
        "manufacturer": _ref("Organization"), "form": _concept,
        "ingredient": _listed(st.one_of(
            st.builds(lambda c: {"itemCodeableConcept": c}, _concept),
            st.builds(lambda r: {"itemReference": r, "isActive": True}, _ref("Substance")))),
        "batch": st.builds(lambda n: {"lotNumber": n}, _text)}),
    "EvidenceVariable": _resource("EvidenceVariable", {
        "status": st.sampled_from(["draft", "active"]),
        "characteristic": _listed(st.one_of(
            st.builds(lambda c: {"definitionCodeableConcept": c}, _concept),
            st.builds(lambda r, x: {"definitionReference": r, "exclude": x}, _ref("Group"),
                      st.booleans())))}, {
        "title": _text, "description": _text, "name": _text,
        "note": _listed(st.builds(lambda t: {"text": t}, _text)),
        "type": st.sampled_from(["dichotomous", "continuous", "descriptive"])}),
}

_state = st.builds(lambda c: {"coding": [{
    "system": "http://terminology.hl7.org/CodeSystem/research-subject-state", "code": c}]},
    st.sampled_from(["candidate", "on-study", "off-study", "withdrawn", "follow-up"]))
_study_state = st.one_of(st.builds(lambda c: {"coding": [{
    "system": "http://hl7.org/fhir/research-study-status", "code": c}]},
    st.sampled_from(["active", "completed", "withdrawn", "overall-study", "recruiting"])),
    st.builds(lambda t: {"text": t}, _text))
_link = st.from_regex(r"arm-[a-z]{1,6}", fullmatch=True)

# R5 resources as R5 clients write them (what R4 lacks included): R5 -> R4 -> R5 is lossless.
R5_RESOURCES = {
    "ResearchSubject": _resource("ResearchSubject", {
        "status": st.sampled_from(["draft", "active", "retired"]),
        "study": _ref("ResearchStudy"), "subject": _ref("Patient", "Group")}, {
        "progress": st.lists(st.builds(lambda s, d: {"subjectState": s, "startDate": d},
                                       _state, _date), min_size=1, max_size=3),
        "assignedComparisonGroup": _link, "actualComparisonGroup": _link,
        "consent": _listed(_ref("Consent")), "period": _period}),
    "ResearchStudy": _resource("ResearchStudy", {
        "status": st.sampled_from(["draft", "active", "retired", "unknown"])}, {
        "progressStatus": st.lists(st.builds(lambda s, a: {"state": s, "actual": a},
                                             _study_state, st.booleans()), min_size=1,
                                       max_size=3),
        "focus": _listed(st.one_of(
            st.builds(lambda c, r: {"concept": c, "reference": r}, _concept,
                      _ref("EvidenceVariable")),
            st.builds(lambda r: {"reference": r}, _ref("EvidenceVariable")),
            st.builds(lambda c: {"concept": c}, _concept))),
        "comparisonGroup": st.lists(st.builds(
            lambda n, k, e: {"linkId": k, "name": n, "intendedExposure": e} if e else
            {"linkId": k, "name": n}, _text, _link,
            st.lists(_ref("EvidenceVariable"), max_size=2)),
            min_size=1, max_size=3, unique_by=lambda g: g["name"]),
        "recruitment": st.builds(lambda t, g, a: {"targetNumber": t, "eligibility": g,
                                                  "actualGroup": a},
                                 st.integers(0, 500), _ref("Group"), _ref("Group")),
        "relatedArtifact": _listed(st.builds(lambda t, u: {"type": t, "document": {"url": u}},
                                             st.sampled_from(["transforms", "citation",
                                                              "derived-from"]),
                                             st.sampled_from(["http://x.org/a",
                                                              "http://y.org/b"]))),
        "associatedParty": _listed(st.builds(lambda r, p: {"role": {"coding": [{
            "system": "http://hl7.org/fhir/research-study-party-role", "code": r}]},
            "party": p}, st.sampled_from(["sponsor", "lead-sponsor", "primary-investigator",
                                          "collaborator"]), _ref("Organization"))),
        "descriptionSummary": _text, "classifier": _listed(_concept),
        "studyDesign": _listed(_concept)}),
    "AdverseEvent": _resource("AdverseEvent", {
        "status": st.sampled_from(["in-progress", "completed", "unknown"]),
        "actuality": st.sampled_from(["actual", "potential"]), "subject": _ref("Patient")}, {
        "identifier": _listed(_identifier), "code": _concept,
        "occurrencePeriod": _period, "expectedInResearchStudy": st.booleans(),
        "suspectEntity": _listed(st.one_of(
            st.builds(lambda c: {"instanceCodeableConcept": c}, _concept),
            st.builds(lambda r: {"instanceReference": r}, _ref("Medication")))),
        "participant": _listed(st.builds(lambda f, a: {"function": f, "actor": a},
                                         _concept, _ref("Practitioner")))}),
    "EvidenceVariable": _resource("EvidenceVariable", {
        "status": st.sampled_from(["draft", "active"])}, {
        "title": _text, "description": _text,
        "characteristic": _listed(st.builds(lambda c: {"definitionCodeableConcept": c},
                                            _concept))}),
    "Group": _resource("Group", {
        "type": st.sampled_from(["person", "careteam", "device"]),
        "membership": st.sampled_from(["definitional", "enumerated"])}, {
        "name": _text, "description": _text, "quantity": st.integers(0, 99)}),
}


@pytest.mark.parametrize("rtype", sorted(R4_RESOURCES))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_generated_r4_resources_round_trip_through_r5(rtype, data) -> None:
    resource = data.draw(R4_RESOURCES[rtype])
    assume(validate(resource, "R4") == [])
    r5 = convert_checked(resource, "R4", "R5")  # R4 always fits R5
    assert validate(r5, "R5") == []
    back = convert(r5, "R5", "R4")
    assert equivalent(back, resource)
    try:  # and the R5 form goes round R4 too
        assert equivalent(convert(convert_checked(r5, "R5", "R4"), "R4", "R5"), r5)
    except NotRepresentable as exc:
        raise AssertionError(f"R5 made from R4 must fit R4: {exc}") from exc


@pytest.mark.parametrize("rtype", sorted(R5_RESOURCES))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_generated_r5_resources_round_trip_through_r4(rtype, data) -> None:
    resource = data.draw(R5_RESOURCES[rtype])
    assume(validate(resource, "R5") == [])
    r4 = convert_checked(resource, "R5", "R4")  # never refused: R4 extensions carry the rest
    assert validate(r4, "R4") == []
    assert equivalent(convert(r4, "R4", "R5"), resource)
    assert equivalent(convert(convert_checked(r4, "R4", "R5"), "R5", "R4"), r4)


def test_our_r4_study_extensions_fold_into_r5_elements() -> None:
    """The R4 study mapping's study-level comparisonGroup extension (linkId, exposures, by arm
    name) and recruitment extension become R5 comparisonGroup and recruitment, and back."""
    xv = "http://hl7.org/fhir/5.0/StructureDefinition/extension-ResearchStudy."
    r4 = {"resourceType": "ResearchStudy", "status": "active", "extension": [
        {"url": xv + "recruitment", "extension": [
            {"url": "targetNumber", "valueUnsignedInt": 20},
            {"url": "actualGroup", "valueReference": {"reference": "Group/cohort"}}]},
        {"url": xv + "comparisonGroup", "extension": [
            {"url": "linkId", "valueId": "arm-b"}, {"url": "name", "valueString": "B"},
            {"url": "intendedExposure", "valueReference": {"reference": "EvidenceVariable/d"}}]}],
        "enrollment": [{"reference": "Group/eligibility"}],
        "arm": [{"name": "A", "description": "no exposure"}, {"name": "B"}]}
    r5 = convert_checked(r4, "R4", "R5")
    assert "extension" not in r5
    assert r5["recruitment"] == {"targetNumber": 20,
                                 "eligibility": {"reference": "Group/eligibility"},
                                 "actualGroup": {"reference": "Group/cohort"}}
    assert r5["comparisonGroup"] == [
        {"name": "A", "description": "no exposure"},
        {"linkId": "arm-b", "name": "B",
         "intendedExposure": [{"reference": "EvidenceVariable/d"}]}]
    assert equivalent(convert(r5, "R5", "R4"), r4)
