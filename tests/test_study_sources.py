"""Study sources: CT.gov v2 JSON (one study, an array, an API page), legacy XML and SDTM trial
design detected by content; bad input is an InputError naming the file and the place."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from fhir_adapter.errors import InputError
from fhir_adapter.sources import study as source
from fhir_adapter.sources.study import read_studies

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "NCT05003921.json"


def example() -> dict[str, Any]:
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


def other(nct: str) -> dict[str, Any]:
    study = copy.deepcopy(example())
    study["protocolSection"]["identificationModule"]["nctId"] = nct
    return study


def write(tmp_path: Path, name: str, data: Any) -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def test_one_study_object() -> None:
    (record,) = read_studies([EXAMPLE])
    assert record.source == str(EXAMPLE)
    assert record.format == source.FORMAT_JSON
    assert record.study["protocolSection"]["identificationModule"]["nctId"] == "NCT05003921"


def test_array_and_api_page_number_their_studies(tmp_path: Path) -> None:
    array = write(tmp_path, "download.json", [example(), other("NCT00000001")])
    page = write(tmp_path, "page.json", {"studies": [other("NCT00000002")],
                                         "nextPageToken": "abc"})
    records = list(read_studies([array, page]))
    assert [r.source for r in records] == [f"{array}[0]", f"{array}[1]", f"{page}[0]"]
    assert [r.study["protocolSection"]["identificationModule"]["nctId"] for r in records] == [
        "NCT05003921", "NCT00000001", "NCT00000002"]


def test_empty_api_page_has_no_studies(tmp_path: Path) -> None:
    assert list(read_studies([write(tmp_path, "last.json", {"studies": []})])) == []


def test_byte_order_mark_and_leading_space(tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf\n  " + EXAMPLE.read_bytes())
    (record,) = read_studies([path])
    assert record.format == source.FORMAT_JSON


def test_fixture_array_file(fixtures_dir: Path) -> None:
    path = fixtures_dir / "ctgov" / "v2" / "trial-match-ai_ctg-studies.json"
    records = list(read_studies([path]))
    assert len(records) == 10
    assert records[3].source == f"{path}[3]"


@pytest.mark.parametrize("content, message", [
    ("hello, world", "neither JSON nor XML"),
    ("", "empty file"),
    ("{\"protocolSection\": ", "not valid JSON"),
    ({"resourceType": "Patient"}, "JSON is not a ClinicalTrials.gov study"),
    (42, "JSON is not a ClinicalTrials.gov study"),
    ({"protocolSection": {"identificationModule": {}}},
     "protocolSection.identificationModule.nctId missing"),
    ({"protocolSection": {}}, "protocolSection.identificationModule missing"),
    ({"protocolSection": {"identificationModule": {"nctId": "12345"}}},
     "'12345' is not an NCT number"),
    ({"protocolSection": []}, "protocolSection is not an object"),
])
def test_bad_input_names_file(tmp_path: Path, content: Any, message: str) -> None:
    path = write(tmp_path, "bad.json", content)
    with pytest.raises(InputError) as info:
        list(read_studies([path]))
    assert info.value.file == str(path)
    assert message in str(info.value)


def test_bad_array_item_names_its_index(tmp_path: Path) -> None:
    path = write(tmp_path, "download.json", [example(), {"hello": 1}])
    records = read_studies([path])
    next(records)
    with pytest.raises(InputError) as info:
        next(records)
    assert info.value.file == f"{path}[1]"


def test_json_error_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.json", '{\n  "protocolSection": {\n    "x": ,\n  }\n}')
    with pytest.raises(InputError, match=r"line 3, column"):
        list(read_studies([path]))


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        list(read_studies([tmp_path / "nope.json"]))


def test_other_sas_dataset_is_not_a_study(tmp_path: Path) -> None:
    path = tmp_path / "dm.xpt"
    path.write_bytes(b"HEADER RECORD*******LIBRARY HEADER RECORD!!!!!!!" + b" " * 32)
    with pytest.raises(InputError, match="SDTM TS/TA/TI/TE"):
        list(read_studies([path]))


def test_xml_goes_to_the_legacy_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []

    def fake(path: Path) -> dict[str, Any]:
        seen.append(path)
        return example()

    from fhir_adapter.sources import ctgov_xml

    monkeypatch.setattr(ctgov_xml, "read_clinical_study_xml", fake)
    path = write(tmp_path, "record.txt", "\n<?xml version='1.0'?><clinical_study/>")
    (record,) = read_studies([path])
    assert seen == [path]
    assert (record.source, record.format) == (str(path), source.FORMAT_XML)


def test_legacy_xml_fixture(fixtures_dir: Path) -> None:
    path = fixtures_dir / "ctgov" / "legacy_xml" / "NCT02513394.xml"
    (record,) = read_studies([path])
    assert record.format == source.FORMAT_XML
    assert record.study["protocolSection"]["identificationModule"]["nctId"] == "NCT02513394"


def test_sdtm_files_of_one_folder_make_one_study(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from fhir_adapter.sources import sdtm_design as sdtm

    calls: list[list[Path]] = []

    def fake(paths: list[Path]) -> dict[str, Any]:
        calls.append(list(paths))
        return example()

    monkeypatch.setattr(sdtm, "read_trial_design", fake)
    one, two = tmp_path / "a", tmp_path / "b"
    one.mkdir()
    two.mkdir()
    files = [one / "TS.xpt", one / "ta.csv", two / "ts.csv"]
    for path in files:
        path.write_text("x")
    records = list(read_studies([files[0], EXAMPLE, files[2], files[1], one]))
    assert calls == [[files[0], files[1]], [files[2]], [one]]
    assert [r.format for r in records] == [source.FORMAT_SDTM, source.FORMAT_JSON,
                                          source.FORMAT_SDTM, source.FORMAT_SDTM]
    assert records[0].source == f"{files[0]}, {files[1]}"
    assert records[3].source == str(one)


def test_sdtm_pilot_folder(fixtures_dir: Path) -> None:
    (record,) = read_studies([fixtures_dir / "sdtm" / "cdiscpilot01-slice"])
    assert record.format == source.FORMAT_SDTM
    assert record.study["protocolSection"]["identificationModule"]
