"""The ClinicalTrials.gov API v2 enums the study mapping writes as codings, and their display
text (shared by the mapping and by the CodeSystems we publish for them)."""

from __future__ import annotations

import re

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
