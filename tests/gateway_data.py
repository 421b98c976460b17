"""Synthetic resources that fill the elements the mapped data leaves empty, so that every search
parameter of the CapabilityStatement has a value to be searched for (test_gateway_searchparams).
Invented values only; each resource is valid in the version it is written in."""

from __future__ import annotations

from typing import Any

S = "urn:test:rich"
META = {"source": "urn:test:source#rich", "profile": ["http://example.org/fhir/Profile/rich"],
        "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                      "code": "R"}],
        "tag": [{"system": "urn:test:tags", "code": "rich"}]}
ADDRESS = [{"use": "work", "line": ["1 Test Street"], "city": "Leiden", "state": "Zuid-Holland",
            "postalCode": "2333 ZA", "country": "NL"}]
TELECOM = [{"system": "phone", "value": "+31 71 000 0000"},
           {"system": "email", "value": "rich@example.org"}]
LANGUAGE = {"coding": [{"system": "urn:ietf:bcp:47", "code": "nl"}]}


def _cc(code: str, system: str = f"{S}:codes") -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


# our extension (data/extensions/analysis-population.json), indexed by our SearchParameter
POPULATION = {"url": "https://fhir-adapter.dev/fhir/StructureDefinition/analysis-population",
              "valueReference": {"reference": "Group/rich-population"}}


def common(rtype: str, rid: str, language: bool = True) -> dict[str, Any]:
    """resourceType, id, meta and language: the Resource-level search parameters."""
    out: dict[str, Any] = {"resourceType": rtype, "id": rid, "meta": META}
    if language:
        out["language"] = "nl"
    return out


def shared() -> list[dict[str, Any]]:
    """Valid in R4 and R5 as written (stored in both)."""
    return [
        common("Patient", "rich-patient") | {
            "identifier": [{"system": S, "value": "patient"}], "active": True,
            "name": [{"family": "Richards", "given": ["Rita"]}], "telecom": TELECOM,
            "gender": "female", "birthDate": "1961-07-14", "deceasedDateTime": "2024-02-03",
            "address": ADDRESS, "communication": [{"language": LANGUAGE}],
            "generalPractitioner": [{"reference": "Practitioner/rich-practitioner"}],
            "managingOrganization": {"reference": "Organization/rich-org"},
            "link": [{"other": {"reference": "Patient/rich-other"}, "type": "seealso"}]},
    ]


def r4_only() -> list[dict[str, Any]]:
    """R4 shapes of the types that changed in R5."""
    return [
        common("Organization", "rich-org") | {
            "identifier": [{"system": S, "value": "org"}], "active": True,
            "type": [_cc("sponsor")], "name": "Rich Test Sponsor", "telecom": TELECOM,
            "address": ADDRESS, "partOf": {"reference": "Organization/rich-parent"},
            "endpoint": [{"reference": "Endpoint/rich"}]},
        common("Practitioner", "rich-practitioner") | {
            "identifier": [{"system": S, "value": "practitioner"}], "active": True,
            "name": [{"family": "Pract", "given": ["Paula"]}], "telecom": TELECOM,
            "address": ADDRESS, "gender": "female", "communication": [LANGUAGE]},
        common("PractitionerRole", "rich-role") | {
            "identifier": [{"system": S, "value": "role"}], "active": True,
            "period": {"start": "2021-01-01", "end": "2021-12-31"},
            "practitioner": {"reference": "Practitioner/rich-practitioner"},
            "organization": {"reference": "Organization/rich-org"},
            "code": [_cc("investigator")], "specialty": [_cc("oncology")],
            "location": [{"reference": "Location/rich-location"}],
            "healthcareService": [{"reference": "HealthcareService/rich"}],
            "telecom": TELECOM, "endpoint": [{"reference": "Endpoint/rich"}]},
        common("Location", "rich-location") | {
            "identifier": [{"system": S, "value": "location"}], "status": "active",
            "operationalStatus": {"system": "http://terminology.hl7.org/CodeSystem/v2-0116",
                                  "code": "O"},
            "name": "Rich Site", "alias": ["Site R"], "type": [_cc("HOSP")], "telecom": TELECOM,
            "address": ADDRESS[0], "managingOrganization": {"reference": "Organization/rich-org"},
            "partOf": {"reference": "Location/rich-parent"},
            "endpoint": [{"reference": "Endpoint/rich"}]},
        common("Group", "rich-group") | {
            "identifier": [{"system": S, "value": "group"}], "active": True, "type": "person",
            "actual": True, "code": _cc("cohort"), "name": "Rich cohort",
            "managingEntity": {"reference": "Organization/rich-org"},
            "characteristic": [{"code": _cc("arm"), "valueCodeableConcept": _cc("placebo"),
                                "exclude": False}],
            "member": [{"entity": {"reference": "Patient/rich-patient"}}]},
        common("Medication", "rich-medication") | {
            "identifier": [{"system": S, "value": "medication"}], "code": _cc("drug-x"),
            "status": "active", "manufacturer": {"reference": "Organization/rich-org"},
            "form": _cc("tablet"),
            "ingredient": [{"itemCodeableConcept": _cc("substance-y")},
                           {"itemReference": {"reference": "Substance/rich"}}],
            "batch": {"lotNumber": "LOT-7", "expirationDate": "2027-05-31"}},
        common("ResearchStudy", "rich-study") | {
            "extension": [POPULATION],  # our analysis-population SearchParameter
            "identifier": [{"system": S, "value": "study"}], "title": "Rich study",
            "protocol": [{"reference": "PlanDefinition/rich"}],
            "partOf": [{"reference": "ResearchStudy/rich-parent"}], "status": "active",
            "category": [_cc("interventional")], "focus": [_cc("drug-x")],
            "keyword": [_cc("rich")], "location": [_cc("NL", "urn:iso:std:iso:3166")],
            "period": {"start": "2020-03-01", "end": "2020-09-30"},
            "sponsor": {"reference": "Organization/rich-org"},
            "principalInvestigator": {"reference": "Practitioner/rich-practitioner"},
            "site": [{"reference": "Location/rich-location"}]},
        common("ResearchSubject", "rich-subject") | {
            "identifier": [{"system": S, "value": "subject"}], "status": "on-study",
            "period": {"start": "2020-04-01", "end": "2020-08-15"},
            "study": {"reference": "ResearchStudy/rich-study"},
            "individual": {"reference": "Patient/rich-patient"}},
        common("AdverseEvent", "rich-ae") | {
            "identifier": {"system": S, "value": "ae"}, "actuality": "actual",
            "category": [_cc("product-use-error",
                             "http://terminology.hl7.org/CodeSystem/adverse-event-category")],
            "event": _cc("rash"), "subject": {"reference": "Patient/rich-patient"},
            "date": "2020-05-02", "location": {"reference": "Location/rich-location"},
            "seriousness": _cc("serious"), "severity": _cc("mild"),
            "recorder": {"reference": "Practitioner/rich-practitioner"},
            "resultingCondition": [{"reference": "Condition/rich"}],
            "study": [{"reference": "ResearchStudy/rich-study"}],
            "suspectEntity": [{"instance": {"reference": "Medication/rich-medication"}}]},
    ]


def r5_only() -> list[dict[str, Any]]:
    """R5 shapes of the types that changed in R5."""
    return [
        common("Organization", "rich-org-r5") | {
            "identifier": [{"system": S, "value": "org-r5"}], "active": True,
            "type": [_cc("sponsor")], "name": "Rich Test Sponsor R5",
            "contact": [{"telecom": TELECOM, "address": ADDRESS[0]}],
            "partOf": {"reference": "Organization/rich-parent"},
            "endpoint": [{"reference": "Endpoint/rich"}]},
        common("Practitioner", "rich-practitioner-r5") | {
            "identifier": [{"system": S, "value": "practitioner-r5"}], "active": True,
            "name": [{"family": "Pract", "given": ["Pia"]}], "telecom": TELECOM,
            "address": ADDRESS, "gender": "female", "deceasedDateTime": "2025-01-09",
            "qualification": [{"code": _cc("MD"),
                               "period": {"start": "2001-01-01", "end": "2001-06-30"}}],
            "communication": [{"language": LANGUAGE}]},
        common("PractitionerRole", "rich-role-r5") | {
            "identifier": [{"system": S, "value": "role-r5"}], "active": True,
            "period": {"start": "2022-01-01", "end": "2022-12-31"},
            "practitioner": {"reference": "Practitioner/rich-practitioner-r5"},
            "organization": {"reference": "Organization/rich-org"},
            "code": [_cc("investigator")], "specialty": [_cc("oncology")],
            "location": [{"reference": "Location/rich-location-r5"}],
            "healthcareService": [{"reference": "HealthcareService/rich"}],
            "contact": [{"telecom": TELECOM}], "characteristic": [_cc("on-site")],
            "communication": [LANGUAGE], "endpoint": [{"reference": "Endpoint/rich"}]},
        common("Location", "rich-location-r5") | {
            "identifier": [{"system": S, "value": "location-r5"}], "status": "active",
            "operationalStatus": {"system": "http://terminology.hl7.org/CodeSystem/v2-0116",
                                  "code": "O"},
            "name": "Rich Site", "type": [_cc("HOSP")], "address": ADDRESS[0],
            "managingOrganization": {"reference": "Organization/rich-org"},
            "partOf": {"reference": "Location/rich-parent"}, "characteristic": [_cc("wheel")],
            "endpoint": [{"reference": "Endpoint/rich"}]},
        common("Group", "rich-group-r5") | {
            "identifier": [{"system": S, "value": "group-r5"}], "active": True, "type": "person",
            "membership": "enumerated", "code": _cc("cohort"), "name": "Rich cohort",
            "managingEntity": {"reference": "Organization/rich-org"},
            "characteristic": [{"code": _cc("site"),
                                "valueReference": {"reference": "Location/rich-location-r5"},
                                "exclude": False}],
            "member": [{"entity": {"reference": "Patient/rich-patient"}}]},
        common("Medication", "rich-medication-r5") | {
            "identifier": [{"system": S, "value": "medication-r5"}], "code": _cc("drug-x"),
            "status": "active",
            "marketingAuthorizationHolder": {"reference": "Organization/rich-org"},
            "doseForm": _cc("tablet"),
            "ingredient": [{"item": {"concept": _cc("substance-y")}},
                           {"item": {"reference": {"reference": "Substance/rich"}}}],
            "batch": {"lotNumber": "LOT-7", "expirationDate": "2027-05-31"}},
        common("ResearchStudy", "rich-study-r5") | {
            "extension": [POPULATION],  # our analysis-population SearchParameter
            "identifier": [{"system": S, "value": "study-r5"}], "title": "Rich study R5",
            "protocol": [{"reference": "PlanDefinition/rich"}],
            "partOf": [{"reference": "ResearchStudy/rich-parent"}], "status": "active",
            "recruitment": {"targetNumber": 40, "actualNumber": 37},
            "objective": [{"name": "primary", "type": _cc("primary"),
                           "description": "Measure the rich outcome"}]},
        common("ResearchSubject", "rich-subject-r5") | {
            "identifier": [{"system": S, "value": "subject-r5"}], "status": "active",
            "study": {"reference": "ResearchStudy/rich-study-r5"},
            "subject": {"reference": "Patient/rich-patient"}},
        common("AdverseEvent", "rich-ae-r5") | {
            "identifier": [{"system": S, "value": "ae-r5"}], "status": "completed",
            "actuality": "actual", "category": [_cc("product-use-error")],
            "code": _cc("rash"), "subject": {"reference": "Patient/rich-patient"},
            "occurrenceDateTime": "2021-05-02",
            "location": {"reference": "Location/rich-location-r5"},
            "recorder": {"reference": "Practitioner/rich-practitioner-r5"},
            "resultingEffect": [{"reference": "Condition/rich"}],
            "study": [{"reference": "ResearchStudy/rich-study-r5"}]},
    ]
