"""Shared pieces of the study mapping: code systems, FHIR datatype builders, the CT.gov enums,
the mapping context (deterministic ids, referenced resources, warnings) and element order."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from .. import conceptmaps, ids
from ..fhirversion import FhirVersion, model_class

CTGOV_DS = "https://clinicaltrials.gov/data-about-studies/study-data-structure"
RS_STATUS = "http://hl7.org/fhir/research-study-status"
PARTY_ROLE = "http://hl7.org/fhir/research-study-party-role"
TITLE_TYPE = "http://hl7.org/fhir/title-type"
OBJECTIVE_TYPE = "http://terminology.hl7.org/CodeSystem/research-study-objective-type"
ISO3166 = "urn:iso:std:iso:3166"
# THO's CodeSystem "MeSH" has this canonical url; urn:oid:2.16.840.1.113883.6.177 is only its
# OID identifier, and http://id.nlm.nih.gov/mesh/ its RDF IRI stem (both in the CodeSystem).
MESH = "https://www.nlm.nih.gov/mesh"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ORG_SYSTEM = "urn:fhir-adapter:organization"
# Official cross-version extensions (hl7.fhir.uv.xver-r5.r4): an R5 element used in R4.
XVER = "http://hl7.org/fhir/5.0/StructureDefinition/extension-"
CONTACTPOINT_EXT = "http://hl7.org/fhir/StructureDefinition/contactpoint-extension"

# CT.gov API v2 enums (ctg-oas-v2.yaml components/schemas) that the mapping writes as codings.
ENUMS: dict[str, tuple[str, ...]] = {
    "Status": ("ACTIVE_NOT_RECRUITING", "COMPLETED", "ENROLLING_BY_INVITATION",
               "NOT_YET_RECRUITING", "RECRUITING", "SUSPENDED", "TERMINATED", "WITHDRAWN",
               "AVAILABLE", "NO_LONGER_AVAILABLE", "TEMPORARILY_NOT_AVAILABLE",
               "APPROVED_FOR_MARKETING", "WITHHELD", "UNKNOWN"),
    "Phase": ("NA", "EARLY_PHASE1", "PHASE1", "PHASE2", "PHASE3", "PHASE4"),
    "StudyType": ("EXPANDED_ACCESS", "INTERVENTIONAL", "OBSERVATIONAL"),
    "DesignAllocation": ("RANDOMIZED", "NON_RANDOMIZED", "NA"),
    "InterventionalAssignment": ("SINGLE_GROUP", "PARALLEL", "CROSSOVER", "FACTORIAL",
                                 "SEQUENTIAL"),
    "PrimaryPurpose": ("TREATMENT", "PREVENTION", "DIAGNOSTIC", "ECT", "SUPPORTIVE_CARE",
                       "SCREENING", "HEALTH_SERVICES_RESEARCH", "BASIC_SCIENCE",
                       "DEVICE_FEASIBILITY", "OTHER"),
    "ObservationalModel": ("COHORT", "CASE_CONTROL", "CASE_ONLY", "CASE_CROSSOVER",
                           "ECOLOGIC_OR_COMMUNITY", "FAMILY_BASED", "DEFINED_POPULATION",
                           "NATURAL_HISTORY", "OTHER"),
    "DesignTimePerspective": ("RETROSPECTIVE", "PROSPECTIVE", "CROSS_SECTIONAL", "OTHER"),
    "BioSpecRetention": ("NONE_RETAINED", "SAMPLES_WITH_DNA", "SAMPLES_WITHOUT_DNA"),
    "DesignMasking": ("NONE", "SINGLE", "DOUBLE", "TRIPLE", "QUADRUPLE"),
    "WhoMasked": ("PARTICIPANT", "CARE_PROVIDER", "INVESTIGATOR", "OUTCOMES_ASSESSOR"),
    "ArmGroupType": ("EXPERIMENTAL", "ACTIVE_COMPARATOR", "PLACEBO_COMPARATOR", "SHAM_COMPARATOR",
                     "NO_INTERVENTION", "OTHER"),
    "InterventionType": ("BEHAVIORAL", "BIOLOGICAL", "COMBINATION_PRODUCT", "DEVICE",
                         "DIAGNOSTIC_TEST", "DIETARY_SUPPLEMENT", "DRUG", "GENETIC", "PROCEDURE",
                         "RADIATION", "OTHER"),
    "AgencyClass": ("NIH", "FED", "OTHER_GOV", "INDIV", "INDUSTRY", "NETWORK", "AMBIG", "OTHER",
                    "UNKNOWN"),
    "Sex": ("FEMALE", "MALE", "ALL"),
    "SamplingMethod": ("PROBABILITY_SAMPLE", "NON_PROBABILITY_SAMPLE"),
    "OrgStudyIdType": ("NIH", "FDA", "VA", "CDC", "AHRQ", "SAMHSA"),
    "SecondaryIdType": ("NIH", "FDA", "VA", "CDC", "AHRQ", "SAMHSA", "OTHER_GRANT",
                        "EUDRACT_NUMBER", "REGISTRY", "OTHER"),
    "ReferenceType": ("BACKGROUND", "RESULT", "DERIVED"),
    "IpdSharing": ("YES", "NO", "UNDECIDED"),
}
_DISPLAY = {"NA": "N/A", "ECT": "Educational/Counseling/Training", "EARLY_PHASE1": "Early Phase 1",
            "FED": "Federal", "OTHER_GOV": "Other Government", "INDIV": "Individual",
            "AMBIG": "Ambiguous", "EUDRACT_NUMBER": "EudraCT Number", "NONE": "None (Open Label)",
            "OTHER_GRANT": "Other Grant/Funding Number", "NON_RANDOMIZED": "Non-Randomized",
            "SAMPLES_WITH_DNA": "Samples With DNA", "SAMPLES_WITHOUT_DNA": "Samples Without DNA",
            "SAP": "Statistical Analysis Plan (SAP)", "ICF": "Informed Consent Form (ICF)",
            "CSR": "Clinical Study Report (CSR)"}
_ACRONYMS = {"NIH", "FDA", "VA", "CDC", "AHRQ", "SAMHSA"}


def display(value: str) -> str:
    """Human text of a CT.gov enum value: SINGLE_GROUP -> 'Single Group', PHASE1 -> 'Phase 1'."""
    if value in _DISPLAY:
        return _DISPLAY[value]
    if value in _ACRONYMS:
        return value
    text = value.replace("_", " ").title()
    return re.sub(r"(?<=[a-z])(\d)", r" \1", text)


def ctgov_coding(enum: str, value: str) -> dict[str, str] | None:
    """The CT.gov enum value as a Coding (system as in HL7's CT.gov example); None if unknown."""
    if value not in ENUMS[enum]:
        return None
    return {"system": f"{CTGOV_DS}#enum-{enum}", "code": value, "display": display(value)}


def coding(system: str | None, code: str | None, display_: str | None = None) -> dict[str, str]:
    """A Coding with only the parts that are present, in FHIR element order."""
    out = {}
    if system:
        out["system"] = system
    if code:
        out["code"] = code
    if display_:
        out["display"] = display_
    return out


def concept(codings: list[dict[str, str] | None] | None = None,
            text: str | None = None) -> dict[str, Any]:
    """A CodeableConcept from codings (None entries skipped) and text."""
    out: dict[str, Any] = {}
    found = [c for c in codings or [] if c]
    if found:
        out["coding"] = found
    if text:
        out["text"] = text
    return out


def translate(map_id: str, code: str) -> conceptmaps.Target | None:
    """The first usable target of a ConceptMap row, or None (unmatched / not in the map)."""
    try:
        return conceptmaps.lookup(map_id, code)
    except conceptmaps.UnmappedCode:
        return None


def mapped_coding(map_id: str, code: str) -> dict[str, str] | None:
    """The ConceptMap target of `code` as a Coding, or None."""
    target = translate(map_id, code)
    return target.coding() if target else None


def reference(resource: dict[str, Any], display_: str | None = None) -> dict[str, str]:
    """A literal reference "Type/id" to a standalone resource (served by the gateway)."""
    out = {"reference": f"{resource['resourceType']}/{resource['id']}"}
    if display_:
        out["display"] = display_
    return out


def ext(name: str, value_type: str, value: Any) -> dict[str, Any]:
    """A simple extension; `name` is an R5 path for the cross-version ones."""
    url = name if name.startswith("http") else XVER + name
    return {"url": url, f"value{value_type}": value}


def complex_ext(name: str, parts: list[tuple[str, str, Any]]) -> dict[str, Any]:
    """A cross-version complex extension whose sub-extensions are named after R5 children."""
    subs = [{"url": part, f"value{vtype}": value} for part, vtype, value in parts
            if value not in (None, "", [], {})]
    return {"url": XVER + name, "extension": subs}


_DATE = re.compile(r"\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?")


def fhir_date(value: Any) -> str | None:
    """A CT.gov date ('2022', '2022-12', '2022-12-06') if it is a valid FHIR date, else None."""
    return value if isinstance(value, str) and _DATE.fullmatch(value) else None


_AGE = re.compile(r"(\d+(?:\.\d+)?)\s+(year|month|week|day|hour|minute)s?", re.IGNORECASE)
_UCUM = {"year": "a", "month": "mo", "week": "wk", "day": "d", "hour": "h", "minute": "min"}


def age_quantity(text: str) -> dict[str, Any] | None:
    """'18 Years' -> a UCUM Quantity (18 a); None when the text is not '<number> <unit>'."""
    match = _AGE.fullmatch(text.strip())
    if not match:
        return None
    number = float(match[1])
    value: int | float = int(number) if number.is_integer() else number
    unit = match[2].lower()
    return {"value": value, "unit": unit + ("s" if value != 1 else ""), "system": UCUM,
            "code": _UCUM[unit]}


@cache
def _sequence(version: FhirVersion, resource_type: str) -> tuple[str, ...]:
    return tuple(model_class(version, resource_type).elements_sequence())


def ordered(resource: dict[str, Any], version: FhirVersion) -> dict[str, Any]:
    """The resource with its top-level elements in FHIR order (resourceType first), so golden
    files read like the specification; empty elements are dropped."""
    order = {name: i for i, name in enumerate(_sequence(version, resource["resourceType"]))}
    items = [(k, v) for k, v in resource.items()
             if k != "resourceType" and v not in (None, "", [], {})]
    items.sort(key=lambda kv: order.get(kv[0], len(order)))
    return {"resourceType": resource["resourceType"], **dict(items)}


@dataclass
class Ctx:
    """One study being mapped: its key, the resources it references (by type and id, in the
    order first met) and the warnings about what could not be mapped."""

    study: dict[str, Any]
    version: FhirVersion
    key: str
    source: str | None = None
    resources: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def study_id(self) -> str:
        return ids.study_resource_id(self.key)

    def rid(self, resource_type: str, local: str) -> str:
        """Deterministic id of a resource that belongs to this study."""
        system, value = ids.study_key(self.key)
        return ids.resource_id(resource_type, system, f"{value}|{local}")

    def add(self, resource: dict[str, Any]) -> dict[str, Any]:
        """Register a referenced resource (the first one with a type and id wins)."""
        return self.resources.setdefault((resource["resourceType"], resource["id"]), resource)

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def module(self, name: str) -> dict[str, Any]:
        """A protocolSection module ({} when absent)."""
        section = self.study.get("protocolSection") or {}
        value = section.get(name)
        return value if isinstance(value, dict) else {}
