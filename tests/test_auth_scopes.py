"""SMART scope strings: v2 `.cruds` subsets, v1 `.read/.write/.*`, what they allow, and how a
token request is narrowed to the registered scopes."""

from __future__ import annotations

import pytest

from fhir_adapter.auth.scopes import Grant, granted, parse_scope


@pytest.mark.parametrize(("scope", "parsed"), [
    ("system/Patient.rs", ("Patient", "rs")),
    ("system/Patient.cruds", ("Patient", "cruds")),
    ("system/*.r", ("*", "r")),
    ("system/Patient.read", ("Patient", "rs")),
    ("system/Patient.write", ("Patient", "cud")),
    ("system/Patient.*", ("Patient", "cruds")),
    ("system/Patient.rs?category=x", ("Patient", "rs")),
    ("system/Patient.sr", None),  # v2 letters keep their order
    ("system/Patient.rr", None),
    ("system/Patient.x", None),
    ("patient/Patient.rs", None),  # no patient context on a backend-services server
    ("user/*.cruds", None),
    ("openid", None),
    ("system/patient.rs", None),
])
def test_parse_scope(scope: str, parsed: tuple[str, str] | None) -> None:
    assert parse_scope(scope) == parsed


def test_a_grant_allows_what_its_scopes_say() -> None:
    grant = Grant.of("system/ResearchStudy.rs system/Patient.read system/*.c openid".split())
    assert grant.scope == "system/ResearchStudy.rs system/Patient.read system/*.c"
    assert grant.can("ResearchStudy", "r") and grant.can("ResearchStudy", "s")
    assert not grant.can("ResearchStudy", "u") and not grant.can("ResearchStudy", "d")
    assert grant.can("Patient", "s") and grant.can("AdverseEvent", "c")
    assert not grant.can("AdverseEvent", "r")
    assert grant.types("r", ["Patient", "Group", "ResearchStudy"]) == ["Patient",
                                                                       "ResearchStudy"]


@pytest.mark.parametrize(("requested", "registered", "expected"), [
    ("system/Patient.r", "system/Patient.rs", "system/Patient.r"),
    ("system/Patient.rs system/Group.rs", "system/Patient.rs", "system/Patient.rs"),
    ("system/Patient.cruds", "system/Patient.rs", ""),
    ("system/Patient.read", "system/*.rs", "system/Patient.read"),
    ("system/*.rs", "system/Patient.rs", ""),
    ("system/*.rs", "system/*.cruds", "system/*.rs"),
    ("openid system/Group.s", "system/Group.rs", "system/Group.s"),
])
def test_a_token_gets_the_registered_scopes_it_asked_for(requested: str, registered: str,
                                                         expected: str) -> None:
    assert granted(requested, registered) == expected
