"""Legacy CT.gov XML elements -> API v2 protocolSection modules (used by ctgov_xml.py).

Builders return dicts that may hold None/empty values; ctgov_xml compacts the whole study.
"""

from __future__ import annotations

import re
from typing import Any
from xml.etree.ElementTree import Element

from . import ctgov_values as v


def text(element: Element, path: str) -> str | None:
    """The stripped text at `path`, or None when absent or blank."""
    node = element.find(path)
    value = node.text.strip() if node is not None and node.text else ""
    return value or None


def block(element: Element, path: str) -> str | None:
    """A <textblock>, re-flowed; read unstripped so that its indentation survives."""
    node = element.find(path)
    return v.textblock(node.text) if node is not None else None


def texts(element: Element, path: str) -> list[str]:
    """The stripped, non-blank texts of every element at `path`."""
    return [n.text.strip() for n in element.findall(path) if n.text and n.text.strip()]


def date_struct(root: Element, *tags: str) -> dict[str, Any] | None:
    """First of `tags` present -> {date, type}; older tag names are given as fallbacks."""
    for tag in tags:
        node = root.find(tag)
        if node is not None and node.text and node.text.strip():
            return {"date": v.iso_date(node.text), "type": v.DATE_TYPE(node.get("type"))}
    return None


def date(root: Element, *tags: str) -> str | None:
    """The first of `tags` present, as an ISO date (unparseable text kept as written)."""
    return next((v.iso_date(t) for t in (text(root, tag) for tag in tags) if t), None)


def status(root: Element) -> dict[str, Any]:
    """statusModule: statuses and every milestone date."""
    # firstreceived_* / lastchanged_date: the names used before the 2017-2018 renaming.
    return {
        "statusVerifiedDate": date(root, "verification_date"),
        "overallStatus": v.STATUS(text(root, "overall_status")),
        "lastKnownStatus": v.STATUS(text(root, "last_known_status")),
        "whyStopped": text(root, "why_stopped"),
        "expandedAccessInfo": {"hasExpandedAccess": v.yes_no(text(root, "has_expanded_access"))},
        "startDateStruct": date_struct(root, "start_date"),
        "primaryCompletionDateStruct": date_struct(root, "primary_completion_date"),
        "completionDateStruct": date_struct(root, "completion_date"),
        "studyFirstSubmitDate": date(root, "study_first_submitted", "firstreceived_date"),
        "studyFirstSubmitQcDate": date(root, "study_first_submitted_qc"),
        "studyFirstPostDateStruct": date_struct(root, "study_first_posted"),
        "resultsFirstSubmitDate": date(root, "results_first_submitted",
                                       "firstreceived_results_date"),
        "resultsFirstSubmitQcDate": date(root, "results_first_submitted_qc"),
        "resultsFirstPostDateStruct": date_struct(root, "results_first_posted"),
        "dispFirstSubmitDate": date(root, "disposition_first_submitted",
                                    "firstreceived_results_disposition_date"),
        "dispFirstSubmitQcDate": date(root, "disposition_first_submitted_qc"),
        "dispFirstPostDateStruct": date_struct(root, "disposition_first_posted"),
        "lastUpdateSubmitDate": date(root, "last_update_submitted", "lastchanged_date"),
        "lastUpdatePostDateStruct": date_struct(root, "last_update_posted"),
    }


def sponsors(root: Element) -> dict[str, Any]:
    """sponsorCollaboratorsModule: responsible party, lead sponsor, collaborators."""
    def sponsor(node: Element) -> dict[str, Any]:
        return {"name": text(node, "agency"), "class": v.AGENCY_CLASS(text(node, "agency_class"))}

    party = root.find("responsible_party")
    responsible = None if party is None else {
        "type": v.RESPONSIBLE_PARTY_TYPE(text(party, "responsible_party_type")),
        "investigatorFullName": text(party, "investigator_full_name"),
        "investigatorTitle": text(party, "investigator_title"),
        "investigatorAffiliation": text(party, "investigator_affiliation"),
        "oldNameTitle": text(party, "name_title"),  # the pre-2017 form of the element
        "oldOrganization": text(party, "organization"),
    }
    lead = root.find("sponsors/lead_sponsor")
    return {
        "responsibleParty": responsible,
        "leadSponsor": None if lead is None else sponsor(lead),
        "collaborators": [sponsor(c) for c in root.findall("sponsors/collaborator")],
    }


_OLD_DESIGN_KEYS = re.compile(r",\s*(?=(?:Allocation|Endpoint Classification|Intervention Model|"
                              r"Masking|Primary Purpose|Observational Model|Time Perspective):)")


def _design_info(root: Element) -> dict[str, str]:
    """study_design_info children by tag, or the pre-2017 "Allocation: Randomized, Masking: ..."
    string split into the same tags."""
    info = root.find("study_design_info")
    if info is not None:
        return {child.tag: child.text.strip() for child in info if child.text}
    old = text(root, "study_design") or ""
    pairs = (part.partition(":") for part in _OLD_DESIGN_KEYS.split(old) if ":" in part)
    return {key.strip().lower().replace(" ", "_"): value.strip() for key, _, value in pairs}


def design(root: Element) -> dict[str, Any]:
    """designModule: study type, phases, design info, enrollment, biospecimens."""
    info = _design_info(root)
    study_type = text(root, "study_type")
    masking, who = v.masking(info.get("masking"))
    enrollment = root.find("enrollment")
    count: int | str | None = None
    if enrollment is not None and enrollment.text and enrollment.text.strip():
        raw = enrollment.text.strip()
        count = int(raw) if raw.isdigit() else raw  # anything else is kept for the mapper
    registry = None
    if v.STUDY_TYPE(study_type) == "OBSERVATIONAL":  # v2 sets the flag on observational only
        registry = "registry" in (study_type or "").lower()
    return {
        "studyType": v.STUDY_TYPE(study_type),
        "patientRegistry": registry,
        "targetDuration": text(root, "target_duration"),
        "phases": v.phases(text(root, "phase")),
        "designInfo": {
            "allocation": v.ALLOCATION(info.get("allocation")),
            "interventionModel": v.INTERVENTION_MODEL(info.get("intervention_model")),
            "interventionModelDescription": info.get("intervention_model_description"),
            "primaryPurpose": v.PRIMARY_PURPOSE(info.get("primary_purpose")),
            "observationalModel": v.OBSERVATIONAL_MODEL(info.get("observational_model")),
            "timePerspective": v.TIME_PERSPECTIVE(info.get("time_perspective")),
            "maskingInfo": {"masking": masking,
                            "maskingDescription": info.get("masking_description"),
                            "whoMasked": who},
        },
        "bioSpec": {"retention": v.BIOSPEC_RETENTION(text(root, "biospec_retention")),
                    "description": block(root, "biospec_descr/textblock")},
        "enrollmentInfo": None if count is None else {
            "count": count, "type": v.DATE_TYPE(enrollment.get("type"))},
        "expandedAccessTypes": {key: v.yes_no(text(root, f"expanded_access_info/{tag}"))
                                for key, tag in (
            ("individual", "expanded_access_type_individual"),
            ("intermediate", "expanded_access_type_intermediate"),
            ("treatment", "expanded_access_type_treatment"))},
    }


def arms_interventions(root: Element) -> dict[str, Any]:
    """armsInterventionsModule: arm groups (with interventionNames) and interventions."""
    interventions = [{
        "type": v.INTERVENTION_TYPE(text(node, "intervention_type")),
        "name": text(node, "intervention_name"),
        "description": text(node, "description"),
        "armGroupLabels": texts(node, "arm_group_label"),
        "otherNames": texts(node, "other_name"),
    } for node in root.findall("intervention")]
    # v2 names an arm's interventions "<type as displayed>: <name>", e.g. "Dietary Supplement: X".
    shown = [(f"{text(n, 'intervention_type') or 'Other'}: {text(n, 'intervention_name')}",
              {" ".join(label.split()) for label in texts(n, "arm_group_label")})
             for n in root.findall("intervention")]
    arms = []
    for node in root.findall("arm_group"):
        label = text(node, "arm_group_label")
        key = " ".join((label or "").split())
        arms.append({
            "label": label,
            "type": v.ARM_GROUP_TYPE(text(node, "arm_group_type")),
            "description": text(node, "description"),
            "interventionNames": [name for name, labels in shown if key in labels],
        })
    return {"armGroups": arms, "interventions": interventions}


def outcome(node: Element) -> dict[str, Any]:
    """One primary/secondary/other outcome."""
    return {"measure": text(node, "measure"), "description": text(node, "description"),
            "timeFrame": text(node, "time_frame")}


def eligibility(root: Element) -> dict[str, Any]:
    """eligibilityModule; ages stay "18 Years", "N/A" (no limit) is left out."""
    node = root.find("eligibility")
    if node is None:
        return {}
    minimum, maximum = v.age(text(node, "minimum_age")), v.age(text(node, "maximum_age"))
    return {
        "eligibilityCriteria": block(node, "criteria/textblock"),
        "healthyVolunteers": v.yes_no(text(node, "healthy_volunteers")),
        "sex": v.SEX(text(node, "gender")),
        "genderBased": v.yes_no(text(node, "gender_based")),
        "genderDescription": text(node, "gender_description"),
        "minimumAge": minimum,
        "maximumAge": maximum,
        "stdAges": v.std_ages(minimum, maximum),
        "studyPopulation": block(node, "study_pop/textblock"),
        "samplingMethod": v.SAMPLING_METHOD(text(node, "sampling_method")),
    }


def _person(node: Element) -> str | None:
    parts = (text(node, tag) for tag in ("first_name", "middle_name", "last_name"))
    name = " ".join(p for p in parts if p)
    degrees = text(node, "degrees")
    return f"{name}, {degrees}" if name and degrees else (name or degrees)


def contact(node: Element, role: str | None) -> dict[str, Any]:
    """A central or site contact (v2 has one name field: first middle last, degrees)."""
    return {"name": _person(node), "role": role, "phone": text(node, "phone"),
            "phoneExt": text(node, "phone_ext"), "email": text(node, "email")}


def official(node: Element) -> dict[str, Any]:
    """An overall official."""
    return {"name": _person(node), "affiliation": text(node, "affiliation"),
            "role": v.OFFICIAL_ROLE(text(node, "role"))}


def location(node: Element) -> dict[str, Any]:
    """A site with its contacts and investigators (v2 lists both under contacts)."""
    contacts = [contact(c, "CONTACT") for tag in ("contact", "contact_backup")
                for c in node.findall(tag)]
    contacts += [contact(i, v.OFFICIAL_ROLE(text(i, "role")))
                 for i in node.findall("investigator")]
    return {
        "facility": text(node, "facility/name"),
        "status": v.STATUS(text(node, "status")),
        "city": text(node, "facility/address/city"),
        "state": text(node, "facility/address/state"),
        "zip": text(node, "facility/address/zip"),
        "country": text(node, "facility/address/country"),
        "contacts": contacts,
    }
