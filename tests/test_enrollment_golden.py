"""Golden files: the CDISC pilot slice (SDTM DM + DS) and the synthetic NCT05003921 examples,
mapped to R4 and R5. Inputs stay where they are (tests/fixtures, examples/): only the expected
output lives in tests/golden/enrollment/."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from conftest import fixture_path
from golden import GOLDEN, check_golden

from fhir_adapter import ids
from fhir_adapter.pipeline.enrollments import enrollment_resources

ROOT = Path(__file__).resolve().parents[1]
TODAY = date(2026, 1, 1)  # the 90+ rule depends on "now": fixed for byte-stable goldens


def mapped(path: Path, version: str, **kw: object) -> dict[str, list]:
    warnings: list[str] = []
    resources = list(enrollment_resources(
        path, version, today=TODAY,  # type: ignore[arg-type]
        warn=lambda where, text: warnings.append(f"{Path(where).name}: {text}"), **kw))
    return {"resources": resources, "warnings": warnings}


def cases() -> list[tuple[str, str]]:
    return [(case, version) for case in ("cdiscpilot01", "nct05003921")
            for version in ("R4", "R5")]


def source(case: str, ext: str = "xpt") -> tuple[Path, dict[str, object]]:
    if case == "cdiscpilot01":
        slice_dir = fixture_path("sdtm", "cdiscpilot01-slice")
        return slice_dir / f"dm.{ext}", {"disposition": slice_dir / f"ds.{ext}"}
    return ROOT / "examples" / "NCT05003921.enrollments.csv", {}


@pytest.mark.parametrize("case, version", cases())
def test_golden(case: str, version: str, update_golden: bool) -> None:
    path, kw = source(case)
    out = mapped(path, version, **kw)
    check_golden(GOLDEN / "enrollment" / f"{case}.{version.lower()}.expected.json", out,
                 update_golden)


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_xpt_and_csv_map_identically(version: str) -> None:
    xpt, xkw = source("cdiscpilot01", "xpt")
    csv, ckw = source("cdiscpilot01", "csv")
    from_xpt, from_csv = mapped(xpt, version, **xkw), mapped(csv, version, **ckw)
    assert from_xpt["resources"] == from_csv["resources"]
    assert from_xpt["warnings"] == [w.replace("dm.csv", "dm.xpt") for w in from_csv["warnings"]]


def test_json_example_maps_like_the_csv() -> None:
    examples = ROOT / "examples"
    for version in ("R4", "R5"):
        assert (mapped(examples / "NCT05003921.enrollments.json", version)["resources"]
                == mapped(examples / "NCT05003921.enrollments.csv", version)["resources"])


def test_pilot_statuses_agree_with_ds() -> None:
    path, kw = source("cdiscpilot01")
    subjects = [r for r in mapped(path, "R4", **kw)["resources"]
                if r["resourceType"] == "ResearchSubject"]
    assert len(subjects) == 12  # one per DM row, screen failure included
    status = {s["identifier"][0]["value"]: s["status"] for s in subjects}
    assert status["01-701-1057"] == "ineligible"
    assert {v for k, v in status.items() if k != "01-701-1057"} == {"off-study"}
    ids_in_study = {s["study"]["reference"] for s in subjects}
    assert ids_in_study == {f"ResearchStudy/{ids.study_resource_id('CDISCPILOT01')}"}


def test_examples_reference_the_seed_study_and_its_arm() -> None:
    out = mapped(ROOT / "examples" / "NCT05003921.enrollments.csv", "R5")
    subjects = [r for r in out["resources"] if r["resourceType"] == "ResearchSubject"]
    assert {s["study"]["reference"] for s in subjects} == {
        f"ResearchStudy/{ids.study_resource_id('NCT05003921')}"}
    groups = {s.get("assignedComparisonGroup") for s in subjects}
    assert groups == {ids.arm_link_id("Treatment Group"), None}


def test_examples_arm_matches_the_study_mapping() -> None:
    # The study mapping names R4 arms by the CT.gov arm group label (cross-mapping contract).
    import json

    study = json.loads((ROOT / "examples" / "NCT05003921.json").read_text())
    labels = {a["label"] for a in
              study["protocolSection"]["armsInterventionsModule"]["armGroups"]}
    out = mapped(ROOT / "examples" / "NCT05003921.enrollments.csv", "R4")
    arms = {r.get("assignedArm") for r in out["resources"] if r.get("assignedArm")}
    assert arms == labels


@pytest.mark.parametrize("version", ["R4", "R5"])
@pytest.mark.parametrize("case", ["cdiscpilot01", "nct05003921"])
def test_subjects_resolve_to_the_study_mapping(case: str, version: str) -> None:
    """The study reference and arms of every ResearchSubject exist in what `map study` makes
    of the same study (CT.gov record, or the SDTM trial design)."""
    from fhir_adapter.pipeline.study import study_resources

    if case == "cdiscpilot01":
        slice_dir = fixture_path("sdtm", "cdiscpilot01-slice")
        design = [slice_dir / f"{name}.xpt" for name in ("ts", "ta", "ti", "te")]
    else:
        design = [ROOT / "examples" / "NCT05003921.json"]
    studies = {f"ResearchStudy/{r['id']}": r for r in study_resources(design, version)
               if r["resourceType"] == "ResearchStudy"}
    path, kw = source(case)
    for subject in mapped(path, version, **kw)["resources"]:
        if subject["resourceType"] != "ResearchSubject":
            continue
        study = studies[subject["study"]["reference"]]
        if version == "R4":
            arms = {arm["name"] for arm in study.get("arm", [])}
            wanted = {subject.get("assignedArm"), subject.get("actualArm")} - {None}
        else:
            arms = {group["linkId"] for group in study.get("comparisonGroup", [])}
            wanted = {subject.get("assignedComparisonGroup"),
                      subject.get("actualComparisonGroup")} - {None}
        assert wanted <= arms
