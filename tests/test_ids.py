"""ids.py: the uuid5 written without the UUID object is uuid.uuid5, and remembered ids are
the computed ones."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_adapter import ids


@given(st.text())
def test_uuid5_text_is_uuid5(name: str) -> None:
    try:
        expected = str(uuid.uuid5(ids.NAMESPACE, name))
    except UnicodeEncodeError:  # lone surrogates: neither can encode them
        with pytest.raises(UnicodeEncodeError):
            ids.uuid5_text(name)
        return
    assert ids.uuid5_text(name) == expected


@given(st.sampled_from(["AdverseEvent", "Patient", "Medication"]), st.text(max_size=20),
       st.text(max_size=20))
def test_resource_ids_remembered_or_not_are_the_same(rtype: str, system: str,
                                                     value: str) -> None:
    try:
        expected = str(uuid.uuid5(ids.NAMESPACE, f"{rtype}|{system}|{value}"))
    except UnicodeEncodeError:
        return
    assert ids.resource_id(rtype, system, value) == expected
    assert ids.resource_id(rtype, system, value) == expected  # from the cache


def test_study_ids_from_the_cache_match() -> None:
    for _ in range(2):
        assert ids.study_key(" nct05003921 ") == (ids.NCT_SYSTEM, "NCT05003921")
        assert ids.subject_system("CDISCPILOT01") == "urn:fhir-adapter:subject:cdiscpilot01"
        assert ids.study_resource_id("NCT05003921") == ids.resource_id(
            "ResearchStudy", ids.NCT_SYSTEM, "NCT05003921")
