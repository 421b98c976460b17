"""Golden files of the cohort mapping (mapping/cohort.py): the Group made from the
ResearchSubjects the enrollment mapping makes (its own golden outputs are the input here),
and the link a study gets to it; both valid in both versions."""

from __future__ import annotations

import json

import pytest
from golden import GOLDEN, check_golden

from fhir_adapter import ids
from fhir_adapter.mapping import narrative
from fhir_adapter.mapping.cohort import cohort_group, cohort_id, link_study
from fhir_adapter.validation import validate

CASES = {"nct05003921": "NCT05003921", "cdiscpilot01": "CDISCPILOT01"}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("version", ["R4", "R5"])
def test_golden(case: str, version: str, update_golden: bool) -> None:
    mapped = json.loads((GOLDEN / "enrollment" / f"{case}.{version.lower()}.expected.json")
                        .read_text(encoding="utf-8"))["resources"]
    subjects = [r for r in mapped if r["resourceType"] == "ResearchSubject"]
    study_id = ids.study_resource_id(CASES[case])
    group = cohort_group(study_id, f"Study {CASES[case]}", subjects, version)  # type: ignore[arg-type]
    study = {"resourceType": "ResearchStudy", "id": study_id, "status": "active"}
    if version == "R4":
        study["status"] = "completed"
    linked = narrative.added(link_study(study, version))  # type: ignore[arg-type]
    for resource in (group, linked):
        assert validate(resource, version) == []  # type: ignore[arg-type]
    assert group["id"] == cohort_id(study_id) != ids.study_resource_id(CASES[case])
    assert group["quantity"] == len(group.get("member", []))
    assert len(group.get("member", [])) <= len(subjects)
    check_golden(GOLDEN / "cohort" / f"{case}.{version.lower()}.expected.json",
                 {"group": group, "study": linked}, update_golden)


def test_a_site_sub_study_is_not_linked_and_linking_twice_is_once() -> None:
    site = {"resourceType": "ResearchStudy", "id": "site", "status": "active",
            "partOf": [{"reference": "ResearchStudy/main"}]}
    assert link_study(site, "R5") is site
    main = {"resourceType": "ResearchStudy", "id": "main", "status": "active"}
    twice = link_study(link_study(main, "R4"), "R4")
    assert twice == link_study(main, "R4")
    assert main == {"resourceType": "ResearchStudy", "id": "main", "status": "active"}
