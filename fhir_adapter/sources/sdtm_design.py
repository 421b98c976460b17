"""CDISC SDTM trial design datasets -> a ClinicalTrials.gov API v2 study record.

One mapper (mapping/study.py) maps CT.gov and SDTM alike, so this reader answers in CT.gov's
shape: {"protocolSection": {...}} with CT.gov module names and enums, plus
protocolSection["x-sdtm"] for what CT.gov has no place for.

Input: TS (trial summary, required), TA (trial arms), TI (inclusion/exclusion criteria) and TE
(trial elements), each SAS XPORT (.xpt) or CSV, given as a study folder or as files named
together. TV/TX are recognised but not mapped (listed in x-sdtm.unmappedDatasets).

    STUDYID (every dataset)      -> identificationModule.orgStudyIdInfo.id
    TS parameters                -> see sdtm_summary.TS_PARAMETERS
    TA (one group per ARMCD)     -> armsInterventionsModule.armGroups[] {label=ARM, type,
                                    description = elements in TAETORD order, "x-armcd",
                                    "x-elements"}
    TE (ELEMENT, TEDUR, rules)   -> names and durations in arm descriptions; x-sdtm.elements
    TI (IETEST by IECAT)         -> eligibilityModule.eligibilityCriteria (CT.gov text layout)
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

from ..errors import InputError
from .sdtm_summary import TrialSummary
from .sdtm_ts import ts_params
from .tabular import Row, columns, is_xpt, read_rows

MAPPED = ("TS", "TA", "TI", "TE")
DOMAINS = (*MAPPED, "TV", "TX")
# Recognised by columns when the file name does not say; TA before TE (TA has ETCD+ELEMENT).
# Subject-level datasets (SE has ETCD+ELEMENT+TAETORD too) carry USUBJID; design ones never do.
_SIGNATURES = (("TS", {"TSPARMCD"}), ("TA", {"ARMCD", "ETCD", "TAETORD"}),
               ("TI", {"IETESTCD", "IECAT"}), ("TE", {"ETCD", "ELEMENT"}))
_REQUIRED = {"TS": ("TSPARMCD",), "TA": ("ARMCD", "ETCD"), "TI": ("IETESTCD", "IETEST", "IECAT"),
             "TE": ("ETCD",)}
_CATEGORIES = {"INCLUSION": "Inclusion Criteria", "EXCLUSION": "Exclusion Criteria"}
# TA ARM is free text: "placebo" in it is the only hint of the arm's role. Inexact by nature.
_PLACEBO = re.compile(r"placebo", re.IGNORECASE)


def is_trial_design_file(path: str | Path) -> bool:
    """True for ts/ta/ti/te/tv/tx .xpt/.csv, or a CSV/XPT whose columns are a TS, TA, TI or
    TE dataset's (for the input dispatcher)."""
    return _domain(Path(path)) is not None


def _domain(path: Path) -> str | None:
    if path.suffix.lower() not in (".xpt", ".csv") or not path.is_file():
        return None
    if path.stem.upper() in DOMAINS:
        return path.stem.upper()
    try:
        names = {c.upper() for c in columns(path)}
    except (OSError, ValueError, csv.Error, InputError):  # unreadable: not ours to claim
        return None
    if "USUBJID" in names:
        return None
    return next((domain for domain, needed in _SIGNATURES if needed <= names), None)


def read_trial_design(paths: list[Path]) -> dict[str, Any]:
    """Read one study's SDTM trial design (folder or files) into a CT.gov v2 study record.

    Raises InputError when TS is missing, a file is unreadable or not a design dataset, a
    domain is given twice, or the datasets carry more than one STUDYID.
    """
    if not paths:
        raise InputError("-", "no SDTM trial design files or folder given")
    files = _collect([Path(p) for p in paths])
    if "TS" not in files:
        found = ", ".join(sorted(files)) or "none"
        raise InputError(str(paths[0]), "no TS (trial summary) dataset: an SDTM trial design "
                         f"needs TS for the study's title, phase and design (found: {found})")
    data = {domain: _rows(domain, path) for domain, path in files.items() if domain in MAPPED}
    if not data["TS"]:
        raise InputError(str(files["TS"]), "TS (trial summary) has no rows")
    study_id = _study_id(data)

    ts = TrialSummary(ts_params(data["TS"]))
    section: dict[str, Any] = {"identificationModule": ts.identification(study_id)}
    status = ts.status()
    if status:
        section["statusModule"] = status
    sponsor = ts.sponsor()
    if sponsor:
        section["sponsorCollaboratorsModule"] = sponsor
    conditions = ts.conditions()
    if conditions:
        section["conditionsModule"] = {"conditions": conditions}
    design = ts.design()
    if design:
        section["designModule"] = design
    elements = {r.get("ETCD"): r for r in data.get("TE", [])}
    arms_module: dict[str, Any] = {}
    if data.get("TA"):
        arms_module["armGroups"] = _arm_groups(data["TA"], elements)
    interventions = ts.interventions()
    if interventions:
        arms_module["interventions"] = interventions
    if arms_module:
        section["armsInterventionsModule"] = arms_module
    outcomes = ts.outcomes()
    if outcomes:
        section["outcomesModule"] = outcomes
    extra: dict[str, Any] = {}
    eligibility = _criteria(data.get("TI", []), extra)
    eligibility.update(ts.eligibility())
    if eligibility:
        section["eligibilityModule"] = eligibility
    if elements:
        extra["elements"] = [_element(row) for row in elements.values()]
    extra.update(ts.extras())
    unmapped_sets = sorted(d for d in files if d not in MAPPED)
    if unmapped_sets:
        extra["unmappedDatasets"] = unmapped_sets
    section["x-sdtm"] = extra
    return {"protocolSection": section}


def _collect(paths: list[Path]) -> dict[str, Path]:
    """Trial design datasets by domain: a folder contributes the design files in it, a file
    named on its own must be one."""
    files: dict[str, Path] = {}
    for path in paths:
        if path.is_dir():
            found = [(d, p) for p in sorted(path.iterdir()) if (d := _domain(p))]
            if not found:
                raise InputError(str(path), "no SDTM trial design datasets (ts, ta, ti, te as "
                                 ".xpt or .csv) in this folder")
        elif not path.is_file():
            raise InputError(str(path), "no such file or folder")
        else:
            domain = _domain(path)
            if domain is None:
                raise InputError(str(path), "not an SDTM trial design dataset (TS, TA, TI, TE "
                                 "as .xpt or .csv, named by domain or with its columns)")
            found = [(domain, path)]
        for domain, file in found:
            if domain in files and files[domain].resolve() != file.resolve():
                raise InputError(str(file), f"a second {domain} dataset (the first is "
                                 f"{files[domain]}); name the one to use")
            files[domain] = file
    return files


def _rows(domain: str, path: Path) -> list[Row]:
    """All rows of a design dataset (they are small), after checking it can be read."""
    if path.suffix.lower() == ".xpt" and not is_xpt(path):
        raise InputError(str(path), "not a SAS XPORT file (no XPORT library header)")
    rows = list(read_rows(path, upper_columns=True))
    present = set(rows[0].values) if rows else {c.upper() for c in columns(path)}
    missing = [c for c in ("STUDYID", *_REQUIRED[domain]) if c not in present]
    if missing:
        raise InputError(str(path), f"{domain} dataset lacks column(s) {', '.join(missing)}")
    return rows


def _study_id(data: dict[str, list[Row]]) -> str:
    """The one STUDYID of all rows (TS has rows); two studies named together is an error
    naming both."""
    first = data["TS"][0]
    for rows in data.values():
        for row in rows:
            study = row.get("STUDYID")
            if not study:
                raise row.error("STUDYID", "blank STUDYID")
            if study != first.get("STUDYID"):
                raise InputError(row.file, f"two studies given together: STUDYID "
                                 f"{first.get('STUDYID')!r} ({first.file}) and {study!r}; map "
                                 "one study at a time", row.number, "STUDYID")
    return str(first.get("STUDYID"))


def _arm_groups(rows: list[Row], elements: dict[str | None, Row]) -> list[dict[str, Any]]:
    """One CT.gov arm group per ARMCD (first-seen order), elements in TAETORD order."""
    arms: dict[str, list[Row]] = {}
    for row in rows:
        code = row.get("ARMCD")
        if not code:
            raise row.error("ARMCD", "blank ARMCD")
        arms.setdefault(code, []).append(row)
    groups = []
    for code, arm_rows in arms.items():
        arm_rows.sort(key=lambda r: (_number(r.get("TAETORD")), r.number))
        label = next((r.get("ARM") for r in arm_rows if r.get("ARM")), code)
        steps, details = [], []
        for row in arm_rows:
            te = elements.get(row.get("ETCD"))
            name = (te.get("ELEMENT") if te else None) or row.get("ELEMENT") or row.get("ETCD")
            duration = te.get("TEDUR") if te else None
            steps.append(f"{name} ({duration})" if duration else str(name))
            details.append({k: v for k, v in (
                ("order", row.get("TAETORD")), ("etcd", row.get("ETCD")), ("element", name),
                ("duration", duration), ("epoch", row.get("EPOCH")),
                ("branch", row.get("TABRANCH")), ("transition", row.get("TATRANS"))) if v})
        groups.append({
            "label": label,
            # CT.gov arm types are roles TA does not state; "placebo" in ARM is the one safe
            # hint, everything else is taken as experimental (inexact on purpose).
            "type": "PLACEBO_COMPARATOR" if _PLACEBO.search(label) else "EXPERIMENTAL",
            "description": " -> ".join(steps),
            "x-armcd": code,
            "x-elements": details,
        })
    return groups


def _criteria(rows: list[Row], extra: dict[str, Any]) -> dict[str, Any]:
    """TI -> CT.gov's eligibility text: inclusion then exclusion, each ordered by IETESTCD.
    With several protocol versions (TIVERS) the latest is used and the choice recorded."""
    versions = sorted({r.get("TIVERS") for r in rows if r.get("TIVERS")}, key=_natural)
    if len(versions) > 1:
        extra["criteriaVersions"] = versions
        extra["criteriaVersionUsed"] = versions[-1]
        rows = [r for r in rows if r.get("TIVERS") in (None, versions[-1])]
    sections: dict[str, list[str]] = {cat: [] for cat in _CATEGORIES}
    rules: dict[str, str] = {}
    for row in sorted(rows, key=lambda r: _natural(r.get("IETESTCD") or "")):
        category = (row.get("IECAT") or "").upper()
        if category not in sections:
            raise row.error("IECAT", f"IECAT {row.get('IECAT')!r} is neither INCLUSION nor "
                            "EXCLUSION")
        text = row.get("IETEST")
        if not text:
            raise row.error("IETEST", "blank criterion text")
        sections[category].append(f"* {text}")
        if row.get("TIRL"):
            rules[str(row.get("IETESTCD"))] = str(row.get("TIRL"))
    if rules:
        extra["criteriaRules"] = rules
    parts = [f"{_CATEGORIES[cat]}:\n\n" + "\n".join(lines)
             for cat, lines in sections.items() if lines]
    return {"eligibilityCriteria": "\n\n".join(parts)} if parts else {}


def _element(row: Row) -> dict[str, str]:
    """A TE row kept whole in x-sdtm.elements (start/end rules have no CT.gov place)."""
    keys = (("etcd", "ETCD"), ("element", "ELEMENT"), ("startRule", "TESTRL"),
            ("endRule", "TEENRL"), ("duration", "TEDUR"))
    return {key: str(row.get(col)) for key, col in keys if row.get(col)}


def _number(text: str | None) -> float:
    try:
        return float(text) if text is not None else float("inf")
    except ValueError:
        return float("inf")


def _natural(text: str) -> tuple[Any, ...]:
    """'INCL2' < 'INCL10': digits compare as numbers."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text))
