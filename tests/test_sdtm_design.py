"""SDTM trial design (TS/TA/TI/TE) -> CT.gov v2 study record: the real CDISC pilot design
(tests/fixtures, copied from the public pilot), its CSV twins, synthetic TS edge cases written in
tmp_path, the ConceptMaps it translates with, and clear errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from golden import GOLDEN, check_golden

from fhir_adapter.conceptmaps import get_map, source_codes, translate
from fhir_adapter.errors import InputError
from fhir_adapter.sources.sdtm_design import is_trial_design_file, read_trial_design
from fhir_adapter.sources.sdtm_summary import TS_PARAMETERS
from fhir_adapter.sources.sdtm_ts import ct_gov_age
from fhir_adapter.sources.tabular import read_rows
from fhir_adapter.validation import validate

ROOT = Path(__file__).resolve().parents[1]
DESIGN = ("ts", "ta", "ti", "te")
# The trial-design maps this reader translates with -> the CT.gov map that takes it on to FHIR.
DESIGN_MAPS = {"sdtm-tphase": "ctgov-phase", "sdtm-ttype": "ctgov-primary-purpose",
               "sdtm-tindtp": "ctgov-primary-purpose", "sdtm-tblind": "ctgov-masking",
               "sdtm-intmodel": "ctgov-intervention-model", "sdtm-stype": "ctgov-study-type",
               "sdtm-random": "ctgov-allocation", "sdtm-sexpop": None, "sdtm-agespan": None,
               "sdtm-inttype": None}


@pytest.fixture
def pilot(shared_dir: Path) -> Path:
    path = shared_dir / "fixtures" / "sdtm" / "cdiscpilot01-slice"
    if not (path / "ts.xpt").is_file():
        pytest.skip(f"CDISC pilot trial design not present in {path}")
    return path


def rows_of(path: Path) -> list[dict[str, str | None]]:
    return [row.values for row in read_rows(path)]


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    names: list[str] = []
    for row in rows:
        names += [k for k in row if k not in names]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(names)
        for row in rows:
            writer.writerow(["" if row.get(n) is None else row[n] for n in names])
    return path


def write_ts(folder: Path, params: list[tuple[str, str]], study: str = "S1",
             **extra: dict[str, str]) -> Path:
    """A TS CSV: (TSPARMCD, TSVAL) pairs, TSSEQ counted per parameter; extra columns per
    parameter code via extra={"REGID": {"TSVCDREF": ...}}."""
    folder.mkdir(parents=True, exist_ok=True)
    seq: dict[str, int] = {}
    rows = []
    for code, value in params:
        seq[code] = seq.get(code, 0) + 1
        rows.append({"STUDYID": study, "DOMAIN": "TS", "TSSEQ": seq[code], "TSPARMCD": code,
                     "TSPARM": code.title(), "TSVAL": value, **extra.get(code, {})})
    return write_csv(folder / "ts.csv", rows)


def protocol(paths: list[Path]) -> dict[str, Any]:
    return read_trial_design(paths)["protocolSection"]


# -- the real CDISC pilot design ------------------------------------------------------------

def test_pilot_design(pilot: Path) -> None:
    ts = rows_of(pilot / "ts.xpt")
    ti = rows_of(pilot / "ti.xpt")
    ta = rows_of(pilot / "ta.xpt")
    value = {r["TSPARMCD"]: r["TSVAL"] for r in ts}
    p = protocol([pilot])

    ident = p["identificationModule"]
    assert ident["orgStudyIdInfo"] == {"id": "CDISCPILOT01"}
    assert "nctId" not in ident  # the pilot TS has no REGID: the study keys by STUDYID
    assert ident["officialTitle"] == value["TITLE"] == ident["briefTitle"]
    assert ident["officialTitle"].startswith("Safety and Efficacy of the Xanomeline Transdermal")
    assert p["sponsorCollaboratorsModule"]["leadSponsor"]["name"] == value["SPONSOR"]

    design = p["designModule"]
    assert value["TPHASE"] == "Phase II Trial" and design["phases"] == ["PHASE2"]
    assert design["enrollmentInfo"] == {"count": int(value["PLANSUB"]), "type": "ESTIMATED"}
    assert design["designInfo"] == {"allocation": "RANDOMIZED", "primaryPurpose": "TREATMENT",
                                    "maskingInfo": {"masking": "DOUBLE"}}
    assert "studyType" not in design  # the pilot TS has no STYPE; nothing is invented

    arms = p["armsInterventionsModule"]["armGroups"]
    assert len(arms) == len({r["ARMCD"] for r in ta}) == 3
    by_label = {a["label"]: a for a in arms}
    assert set(by_label) == {"Placebo", "Xanomeline Low Dose", "Xanomeline High Dose"}
    assert by_label["Placebo"]["type"] == "PLACEBO_COMPARATOR"
    assert by_label["Placebo"]["x-armcd"] == "Pbo"
    assert by_label["Placebo"]["description"] == "Screen -> Placebo (P26W)"
    assert by_label["Xanomeline High Dose"]["type"] == "EXPERIMENTAL"
    assert by_label["Xanomeline High Dose"]["description"] == (
        "Screen -> High_Start (P2W) -> High_Middle (P22W) -> High_End (P2W)")
    names = [i["name"] for i in p["armsInterventionsModule"]["interventions"]]
    assert names == [value["TRT"], value["COMPTRT"]] == ["Xanomeline", "Placebo"]

    elig = p["eligibilityModule"]
    text = elig["eligibilityCriteria"]
    inclusion, exclusion = text.split("\n\nExclusion Criteria:\n\n")
    assert inclusion.startswith("Inclusion Criteria:\n\n* Males and postmenopausal females")
    counts = {cat: sum(r["IECAT"] == cat for r in ti) for cat in ("INCLUSION", "EXCLUSION")}
    bullets = [sum(line.startswith("* ") for line in part.splitlines())
               for part in (inclusion, exclusion)]
    assert bullets == [counts["INCLUSION"], counts["EXCLUSION"]] == [8, 23]
    assert elig["sex"] == "ALL" and elig["minimumAge"] == "50 Years"
    assert "maximumAge" not in elig  # AGEMAX "No maximum" is CT.gov's absent maximum
    assert elig["stdAges"] == ["ADULT", "OLDER_ADULT"]

    extra = p["x-sdtm"]
    assert [o["type"] for o in extra["objectives"]] == ["primary"] * 2 + ["secondary"] * 4
    assert "outcomesModule" not in p  # objectives are not outcome measures
    assert extra["trialTypes"] == ["SAFETY", "EFFICACY", "PHARMACOKINETIC"]
    assert {e["etcd"] for e in extra["elements"]} == {r["ETCD"] for r in rows_of(pilot / "te.xpt")}


def test_every_pilot_ts_parameter_is_mapped_or_kept(pilot: Path) -> None:
    ts = rows_of(pilot / "ts.xpt")
    extra = protocol([pilot])["x-sdtm"]
    unmapped = extra["unmapped"]
    for code in {r["TSPARMCD"] for r in ts}:
        assert code in TS_PARAMETERS or code in unmapped, code
    for code, values in unmapped.items():
        assert values == [r["TSVAL"] for r in ts if r["TSPARMCD"] == code]
        assert extra["labels"][code] == next(r["TSPARM"] for r in ts if r["TSPARMCD"] == code)
    assert set(unmapped) == {"ADDON", "TCNTRL", "DOSE", "DOSFRQ", "DOSU", "LENGTH", "ROUTE"}


def test_pilot_golden(pilot: Path, update_golden: bool) -> None:
    check_golden(GOLDEN / "study" / "cdiscpilot01.design.expected.json",
                 read_trial_design([pilot]), update_golden)


def test_named_files_equal_the_folder(pilot: Path) -> None:
    files = [pilot / f"{name}.xpt" for name in DESIGN]
    assert read_trial_design(files) == read_trial_design([pilot])
    assert read_trial_design([files[0], pilot]) == read_trial_design([pilot])  # same file twice


def test_csv_copies_give_the_identical_record(pilot: Path, tmp_path: Path) -> None:
    for name in DESIGN:
        write_csv(tmp_path / f"{name}.csv", rows_of(pilot / f"{name}.xpt"))
    assert read_trial_design([tmp_path]) == read_trial_design([pilot])


def test_ts_alone_maps(pilot: Path) -> None:
    p = protocol([pilot / "ts.xpt"])
    assert p["identificationModule"]["orgStudyIdInfo"]["id"] == "CDISCPILOT01"
    assert "armGroups" not in p["armsInterventionsModule"]
    assert "eligibilityCriteria" not in p["eligibilityModule"]


# -- errors ---------------------------------------------------------------------------------

def test_arms_and_criteria_without_ts_are_refused(pilot: Path) -> None:
    with pytest.raises(InputError, match=r"no TS \(trial summary\).*found: TA, TI"):
        read_trial_design([pilot / "ta.xpt", pilot / "ti.xpt"])


def test_two_studies_named_together(pilot: Path, tmp_path: Path) -> None:
    other = [dict(r, STUDYID="OTHERSTUDY") for r in rows_of(pilot / "ta.xpt")]
    ta = write_csv(tmp_path / "ta.csv", other)
    with pytest.raises(InputError) as err:
        read_trial_design([pilot / "ts.xpt", ta])
    assert "CDISCPILOT01" in str(err.value) and "OTHERSTUDY" in str(err.value)
    assert err.value.file == str(ta) and err.value.field_name == "STUDYID"


@pytest.mark.parametrize("content", [b"not an xport file at all", b"HEADER RECORD*******"])
def test_unreadable_xpt_names_the_file(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "ts.xpt"
    bad.write_bytes(content)
    with pytest.raises(InputError) as err:
        read_trial_design([bad])
    assert err.value.file == str(bad)


def test_truncated_xpt_names_the_file(pilot: Path, tmp_path: Path) -> None:
    cut = tmp_path / "ts.xpt"
    cut.write_bytes((pilot / "ts.xpt").read_bytes()[:500])
    with pytest.raises(InputError) as err:
        read_trial_design([cut])
    assert err.value.file == str(cut)


def test_other_files_and_duplicates(pilot: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not an SDTM trial design dataset"):
        read_trial_design([pilot / "ts.xpt", pilot / "dm.xpt"])
    twin = write_csv(tmp_path / "ts.csv", rows_of(pilot / "ts.xpt"))
    with pytest.raises(InputError, match="a second TS dataset"):
        read_trial_design([pilot / "ts.xpt", twin])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no SDTM trial design datasets"):
        read_trial_design([empty])


def test_missing_columns_and_bad_criteria(tmp_path: Path) -> None:
    write_csv(tmp_path / "ts.csv", [{"STUDYID": "S1", "TSVAL": "x"}])
    with pytest.raises(InputError, match="lacks column.*TSPARMCD"):
        read_trial_design([tmp_path])
    write_ts(tmp_path, [("TITLE", "T")])
    write_csv(tmp_path / "ti.csv", [{"STUDYID": "S1", "IETESTCD": "X1", "IETEST": "t",
                                     "IECAT": "MAYBE"}])
    with pytest.raises(InputError) as err:
        read_trial_design([tmp_path])
    assert err.value.field_name == "IECAT" and err.value.row == 1


# -- TS parameters --------------------------------------------------------------------------

def test_synthetic_ts_parameters(tmp_path: Path) -> None:
    write_ts(tmp_path, [
        ("TITLE", "A Long Official Title"), ("ACRONYM", "ALOT"), ("REGID", "NCT01234567"),
        ("REGID", "2004-000123-45"), ("SPONSOR", "Pharmaco"), ("STYPE", "INTERVENTIONAL"),
        ("TPHASE", "PHASE I/II TRIAL"), ("INTMODEL", "CROSS-OVER"), ("RANDOM", "N"),
        ("TBLIND", "OPEN LABEL"), ("TTYPE", "PHARMACOKINETIC"), ("PLANSUB", "40"),
        ("ACTSUB", "38"), ("AGEMIN", "P18Y"), ("AGEMAX", "P6M"), ("SEXPOP", "F"),
        ("HLTSUBJI", "Y"), ("SSTDTC", "2009-03-11T09:00"), ("SENDTC", "2011-04"),
        ("TRT", "Drug X"), ("INTTYPE", "DRUG"), ("OUTMSPRI", "Cmax"), ("OUTMSSEC", "AUC"),
        ("INDIC", "Epilepsy"), ("FUTURE", "a parameter CDISC has yet to invent"),
    ], REGID={"TSVCDREF": "EudraCT"}, INDIC={"TSVALCD": "84757009", "TSVCDREF": "SNOMED"})
    p = protocol([tmp_path])
    ident = p["identificationModule"]
    assert ident["nctId"] == "NCT01234567"
    assert ident["secondaryIdInfos"] == [{"id": "2004-000123-45", "type": "EUDRACT_NUMBER",
                                          "domain": "EudraCT"}]
    assert ident["acronym"] == "ALOT" and ident["organization"] == {"fullName": "Pharmaco"}
    assert p["statusModule"] == {"startDateStruct": {"date": "2009-03-11", "type": "ACTUAL"},
                                 "completionDateStruct": {"date": "2011-04", "type": "ACTUAL"}}
    design = p["designModule"]
    assert design["studyType"] == "INTERVENTIONAL"
    assert design["phases"] == ["PHASE1", "PHASE2"]
    assert design["designInfo"] == {"allocation": "NON_RANDOMIZED",
                                    "interventionModel": "CROSSOVER",
                                    "primaryPurpose": "BASIC_SCIENCE",
                                    "maskingInfo": {"masking": "NONE"}}
    assert design["enrollmentInfo"] == {"count": 38, "type": "ACTUAL"}
    assert p["armsInterventionsModule"]["interventions"][0] == {
        "type": "DRUG", "name": "Drug X",
        "description": "Investigational therapy or treatment (TS TRT)"}
    assert p["outcomesModule"] == {"primaryOutcomes": [{"measure": "Cmax"}],
                                   "secondaryOutcomes": [{"measure": "AUC"}]}
    assert p["eligibilityModule"] == {"healthyVolunteers": True, "sex": "FEMALE",
                                      "minimumAge": "18 Years", "maximumAge": "6 Months"}
    extra = p["x-sdtm"]
    assert extra["plannedSubjects"] == "40"
    assert extra["unmapped"] == {"FUTURE": ["a parameter CDISC has yet to invent"]}
    assert extra["codes"]["INDIC"] == [{"value": "Epilepsy", "code": "84757009",
                                        "system": "SNOMED"}]
    # TTYPE stood in for the missing TINDTP: the doubt travels with the record.
    assert extra["inexact"] == [{
        "parameter": "TTYPE", "value": "PHARMACOKINETIC",
        "element": "designModule.designInfo.primaryPurpose", "code": "BASIC_SCIENCE",
        "equivalence": "inexact", "comment": translate("sdtm-ttype", "PHARMACOKINETIC")[0].comment}]


def test_tindtp_wins_over_ttype_and_extra_values_are_kept(tmp_path: Path) -> None:
    write_ts(tmp_path, [("TTYPE", "SAFETY"), ("TINDTP", "PREVENTION"), ("PLANSUB", "30"),
                        ("PLANSUB", "500"), ("RANDOM", "U"), ("AGEMIN", "adult"),
                        ("INTTYPE", "DRUG"), ("INTTYPE", "DEVICE"), ("TRT", "A")])
    p = protocol([tmp_path])
    assert p["designModule"]["designInfo"] == {"primaryPurpose": "PREVENTION"}
    assert p["designModule"]["enrollmentInfo"] == {"count": 30, "type": "ESTIMATED"}
    assert p["armsInterventionsModule"]["interventions"][0] == {
        "name": "A", "description": "Investigational therapy or treatment (TS TRT)"}
    assert p["x-sdtm"]["unmapped"] == {"PLANSUB": ["500"], "RANDOM": ["U"],
                                       "AGEMIN": ["adult"], "INTTYPE": ["DRUG", "DEVICE"]}
    assert "inexact" not in p["x-sdtm"]


@pytest.mark.parametrize(("tphase", "phases"), [
    ("Phase II Trial", ["PHASE2"]), ("PHASE II TRIAL", ["PHASE2"]),
    ("PHASE I/II TRIAL", ["PHASE1", "PHASE2"]), ("Phase II/III Trial", ["PHASE2", "PHASE3"]),
    ("PHASE 0 TRIAL", ["EARLY_PHASE1"]), ("PHASE IIIB TRIAL", ["PHASE3"]),
    ("NOT APPLICABLE", ["NA"]), ("PHASE 2 TRIAL", ["PHASE2"]),
])
def test_phases(tmp_path: Path, tphase: str, phases: list[str]) -> None:
    write_ts(tmp_path, [("TPHASE", tphase)])
    assert protocol([tmp_path])["designModule"]["phases"] == phases


def test_phase_null_flavor_and_unknown_phase(tmp_path: Path) -> None:
    write_csv(tmp_path / "ts.csv", [
        {"STUDYID": "S", "TSPARMCD": "TPHASE", "TSVAL": "", "TSVALNF": "NA"},
        {"STUDYID": "S", "TSPARMCD": "AGEMAX", "TSVAL": "", "TSVALNF": "PINF"},
        {"STUDYID": "S", "TSPARMCD": "TBLIND", "TSVAL": "", "TSVALNF": ""}])
    p = protocol([tmp_path])
    assert p["designModule"] == {"phases": ["NA"]}
    assert "eligibilityModule" not in p and "unmapped" not in p["x-sdtm"]
    write_ts(tmp_path, [("TPHASE", "Phase Seven")])
    assert protocol([tmp_path])["x-sdtm"]["unmapped"] == {"TPHASE": ["Phase Seven"]}


def test_long_values_continue_in_tsval1(tmp_path: Path) -> None:
    write_csv(tmp_path / "ts.csv", [{"STUDYID": "S", "TSPARMCD": "TITLE", "TSVAL": "A" * 200,
                                     "TSVAL1": "continued", "TSVAL2": "and ended"}])
    title = protocol([tmp_path])["identificationModule"]["officialTitle"]
    assert title == "A" * 200 + " continued and ended"


@pytest.mark.parametrize(("text", "age"), [
    ("P50Y", "50 Years"), ("P18M", "18 Months"), ("P1Y6M", "18 Months"), ("P6W", "6 Weeks"),
    ("P28D", "28 Days"), ("PT12H", "12 Hours"), ("P1Y", "1 Year"), ("50 years", "50 Years"),
    ("18 Years", "18 Years"), ("P", None), ("P1Y2D", None), ("adult", None), ("P2.5Y", None),
])
def test_ct_gov_age(text: str, age: str | None) -> None:
    assert ct_gov_age(text) == age


# -- TI versions, TA order ------------------------------------------------------------------

def test_latest_criteria_version_is_used(tmp_path: Path) -> None:
    write_ts(tmp_path, [("TITLE", "T")])
    write_csv(tmp_path / "ti.csv", [
        {"STUDYID": "S1", "IETESTCD": "INCL10", "IETEST": "ten", "IECAT": "INCLUSION",
         "TIVERS": "2"},
        {"STUDYID": "S1", "IETESTCD": "INCL2", "IETEST": "two", "IECAT": "INCLUSION",
         "TIVERS": "2"},
        {"STUDYID": "S1", "IETESTCD": "INCL1", "IETEST": "old", "IECAT": "INCLUSION",
         "TIVERS": "1"},
        {"STUDYID": "S1", "IETESTCD": "EXCL1", "IETEST": "always", "IECAT": "EXCLUSION"}])
    p = protocol([tmp_path])
    assert p["eligibilityModule"]["eligibilityCriteria"] == (
        "Inclusion Criteria:\n\n* two\n* ten\n\nExclusion Criteria:\n\n* always")
    assert p["x-sdtm"]["criteriaVersions"] == ["1", "2"]
    assert p["x-sdtm"]["criteriaVersionUsed"] == "2"


def test_arm_elements_follow_taetord_without_te(tmp_path: Path) -> None:
    write_ts(tmp_path, [("TITLE", "T")])
    write_csv(tmp_path / "ta.csv", [
        {"STUDYID": "S1", "ARMCD": "B", "ARM": "Drug B", "TAETORD": "2", "ETCD": "TRT",
         "ELEMENT": "Treatment"},
        {"STUDYID": "S1", "ARMCD": "B", "ARM": "Drug B", "TAETORD": "1", "ETCD": "SCR",
         "ELEMENT": "Screening"},
        {"STUDYID": "S1", "ARMCD": "P", "ARM": "Matching placebo", "TAETORD": "1",
         "ETCD": "SCR"}])
    arms = protocol([tmp_path])["armsInterventionsModule"]["armGroups"]
    assert [(a["label"], a["type"], a["description"]) for a in arms] == [
        ("Drug B", "EXPERIMENTAL", "Screening -> Treatment"),
        ("Matching placebo", "PLACEBO_COMPARATOR", "SCR")]


# -- dispatcher test and ConceptMaps ----------------------------------------------------------

def test_is_trial_design_file(pilot: Path, tmp_path: Path) -> None:
    for name in DESIGN:
        assert is_trial_design_file(pilot / f"{name}.xpt")
    assert not is_trial_design_file(pilot / "dm.xpt")
    assert not is_trial_design_file(pilot / "dm.csv")
    assert not is_trial_design_file(pilot)
    renamed = write_csv(tmp_path / "trial_arms_export.csv", rows_of(pilot / "ta.xpt"))
    assert is_trial_design_file(renamed)
    elements = write_csv(tmp_path / "elements.csv", rows_of(pilot / "te.xpt"))
    assert is_trial_design_file(elements)
    subject_elements = tmp_path / "se.csv"  # SE has ETCD, ELEMENT and TAETORD, per subject
    subject_elements.write_text("STUDYID,USUBJID,ETCD,ELEMENT,TAETORD\nS,S-1,SCRN,Screen,1\n")
    assert not is_trial_design_file(subject_elements)
    (tmp_path / "TS.CSV").write_text("STUDYID,TSPARMCD,TSVAL\n")
    assert is_trial_design_file(tmp_path / "TS.CSV")
    (tmp_path / "notes.csv").write_bytes(b"\xff\xfe binary")
    assert not is_trial_design_file(tmp_path / "notes.csv")
    assert not is_trial_design_file(tmp_path / "study.json")


@pytest.mark.parametrize("map_id", DESIGN_MAPS)
def test_conceptmap_is_valid_r4_and_honest(map_id: str) -> None:
    path = ROOT / "mappings" / f"{map_id}.json"
    cm = json.loads(path.read_text(encoding="utf-8"))
    assert validate(cm, "R4") == []
    assert cm["id"] == map_id and get_map(cm["url"]) == cm
    for element in cm["group"][0]["element"]:
        for target in element["target"]:
            if target["equivalence"] not in ("equivalent", "equal"):
                assert target.get("comment"), f"{element['code']}: doubt needs a comment"
            if target["equivalence"] != "unmatched":
                assert target.get("code")


@pytest.mark.parametrize(("map_id", "onward"), [(k, v) for k, v in DESIGN_MAPS.items() if v])
def test_every_target_is_a_code_the_ctgov_map_takes_on(map_id: str, onward: str) -> None:
    """The record goes on through the CT.gov -> FHIR maps: each target must be a source there."""
    cm = get_map(map_id)
    assert cm["group"][0]["target"] == get_map(onward)["group"][0]["source"]
    targets = {t["code"] for e in cm["group"][0]["element"] for t in e["target"] if "code" in t}
    assert targets <= set(source_codes(onward))
