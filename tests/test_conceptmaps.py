"""Every ConceptMap in mappings/ loads, is valid FHIR R4 and R5, and answers translations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fhir_adapter import conceptmaps
from fhir_adapter.validation import validate

MAPS = sorted((Path(__file__).resolve().parents[1] / "mappings").glob("*.json"))


def test_there_are_maps() -> None:
    assert len(MAPS) >= 5


@pytest.mark.parametrize("path", MAPS, ids=lambda p: p.stem)
def test_map_is_valid_fhir(path: Path) -> None:
    cm = json.loads(path.read_text())
    assert cm["id"] == path.stem, "file name and id must agree"
    assert cm["url"] == conceptmaps.CANONICAL_BASE + cm["id"]
    assert validate(cm, "R4") == []
    for group in cm.get("group", []):
        for element in group["element"]:
            for target in element.get("target", []):
                if target.get("equivalence") not in (None, "equivalent", "equal"):
                    assert target.get("comment"), (
                        f"{cm['id']}: {element['code']} -> {target.get('code')} is "
                        f"{target['equivalence']}: say why in a comment")


@pytest.mark.parametrize("path", MAPS, ids=lambda p: p.stem)
def test_every_source_code_translates(path: Path) -> None:
    cm_id = path.stem
    for code in conceptmaps.source_codes(cm_id):
        assert conceptmaps.translate(cm_id, code), code


def test_lookup_unmapped_raises() -> None:
    cm_id = MAPS[0].stem
    with pytest.raises(conceptmaps.UnmappedCode, match="not in ConceptMap"):
        conceptmaps.lookup(cm_id, "certainly-not-a-code")


def test_site_maps_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = json.loads(MAPS[0].read_text())
    element = original["group"][0]["element"][0]
    override = dict(original, group=[dict(original["group"][0], element=[
        {"code": element["code"], "target": [{"code": "site-code", "equivalence": "equivalent"}]}
    ])])
    (tmp_path / "mine.json").write_text(json.dumps(override))
    monkeypatch.setenv("FHIR_ADAPTER_MAPPINGS", str(tmp_path))
    conceptmaps.all_maps.cache_clear()
    conceptmaps._index.cache_clear()
    try:
        assert conceptmaps.lookup(original["id"], element["code"]).code == "site-code"
    finally:
        monkeypatch.delenv("FHIR_ADAPTER_MAPPINGS")
        conceptmaps.all_maps.cache_clear()
        conceptmaps._index.cache_clear()
