"""Study protocol sources, detected by content, as CT.gov API v2-shaped study records:

- ClinicalTrials.gov API v2 JSON: one study object, a JSON array of studies (the website's
  "Download -> JSON") or an API page {"studies": [...], "nextPageToken": ...};
- legacy ClinicalTrials.gov <clinical_study> XML (sources/ctgov_xml.py);
- CDISC SDTM trial design (TS, TA, TI, TE as .xpt or .csv): a study folder, or the files named
  together (files of one folder make one study; sources/sdtm_design.py).

Each record keeps where it came from: the path, plus "[i]" for the i-th study of an array or
page. Bad input raises errors.InputError naming the file and the place.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..ids import NCT_PATTERN

FORMAT_JSON = "ctgov-v2-json"
FORMAT_XML = "ctgov-xml"
FORMAT_SDTM = "sdtm-trial-design"
SDTM_DESIGN = {"ts", "ta", "ti", "te"}
NOT_A_STUDY = ("JSON is not a ClinicalTrials.gov study: expected an object with protocolSection,"
               " an array of studies or an API page {\"studies\": [...]}")


@dataclass
class StudyRecord:
    """One study in the CT.gov API v2 shape, with its provenance and source format."""

    source: str
    format: str
    study: dict[str, Any]


def is_sdtm_design(path: Path) -> bool:
    """A TS/TA/TI/TE dataset file (name decides: SDTM fixes the dataset names)."""
    return path.suffix.lower() in (".xpt", ".csv") and path.stem.lower() in SDTM_DESIGN


def read_studies(paths: list[Path]) -> Iterator[StudyRecord]:
    """Every study in `paths`, in the order given (SDTM files of one folder are read together,
    at the place of the first one)."""
    groups: dict[Path, list[Path]] = {}  # SDTM design files by folder
    order: list[tuple[str, Path]] = []  # ("file" | "folder" | "sdtm", path or folder)
    for path in map(Path, paths):
        if not path.exists():
            raise InputError(str(path), "no such file or directory")
        if path.is_dir():
            order.append(("folder", path))
        elif is_sdtm_design(path):
            folder = path.resolve().parent
            if folder not in groups:
                groups[folder] = []
                order.append(("sdtm", folder))
            if path not in groups[folder]:
                groups[folder].append(path)
        else:
            order.append(("file", path))
    for kind, path in order:
        if kind == "sdtm":
            files = groups[path]
            yield _sdtm(files, ", ".join(str(p) for p in files))
        elif kind == "folder":
            yield _sdtm([path], str(path))
        else:
            yield from read_file(path)


def _sdtm(paths: list[Path], source: str) -> StudyRecord:
    from .sdtm_design import read_trial_design  # written alongside; imported when needed

    return StudyRecord(source, FORMAT_SDTM, read_trial_design(paths))


def read_file(path: Path) -> Iterator[StudyRecord]:
    """The studies of one CT.gov file, JSON or legacy XML, told apart by their first byte."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    first = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if first in (b"{", b"["):
        yield from _json(path)
    elif first == b"<":
        from .ctgov_xml import read_clinical_study_xml  # written alongside

        yield StudyRecord(str(path), FORMAT_XML, checked(read_clinical_study_xml(path),
                                                         str(path)))
    elif not first:
        raise InputError(str(path), "empty file: expected CT.gov JSON or XML")
    elif _is_json_scalar(path):
        raise InputError(str(path), NOT_A_STUDY)
    else:
        raise InputError(str(path), "neither JSON nor XML: expected a ClinicalTrials.gov study"
                         " (API v2 JSON or <clinical_study> XML) or SDTM TS/TA/TI/TE datasets")


def _is_json_scalar(path: Path) -> bool:
    """A small file holding a JSON number, string or literal (valid JSON, but no study)."""
    if path.stat().st_size > 1 << 20:
        return False
    try:
        json.loads(path.read_bytes())
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, too deep
        return False
    return True


def _json(path: Path) -> Iterator[StudyRecord]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise InputError(str(path), f"not UTF-8 text (byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise InputError(str(path), f"not valid JSON: {exc.msg} (line {exc.lineno}, column "
                         f"{exc.colno})") from exc
    except RecursionError:  # the parser recurses per level: ~1,000 exhaust the stack
        raise InputError(str(path), "JSON nested too deep to read (no study nests like "
                         "this)") from None
    if isinstance(data, dict) and "protocolSection" in data:
        yield StudyRecord(str(path), FORMAT_JSON, checked(data, str(path)))
        return
    if isinstance(data, dict) and isinstance(data.get("studies"), list):
        items = data["studies"]
    elif isinstance(data, list):
        items = data
    else:
        raise InputError(str(path), NOT_A_STUDY)
    for index, item in enumerate(items):
        source = f"{path}[{index}]"
        if not isinstance(item, dict) or "protocolSection" not in item:
            raise InputError(source, "not a ClinicalTrials.gov study object (no protocolSection)")
        yield StudyRecord(source, FORMAT_JSON, checked(item, source))


def checked(study: dict[str, Any], source: str) -> dict[str, Any]:
    """The study if it has the shape the mapping needs; else an InputError naming the place."""
    section = study.get("protocolSection")
    if not isinstance(section, dict):
        raise InputError(source, "protocolSection is not an object")
    ident = section.get("identificationModule")
    if not isinstance(ident, dict):
        raise InputError(source, "protocolSection.identificationModule missing")
    nct = ident.get("nctId")
    if not nct:
        raise InputError(source, "protocolSection.identificationModule.nctId missing")
    if not isinstance(nct, str) or not NCT_PATTERN.fullmatch(nct):
        raise InputError(source, f"protocolSection.identificationModule.nctId {nct!r} is not an "
                         "NCT number (NCT + 8 digits)")
    return study
