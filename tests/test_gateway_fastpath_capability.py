"""The fast path against Flask, generated from the CapabilityStatement: for every served
type, FHIR version and store, a read, a vread-less read with _summary/_elements, a search on
every search parameter the statement lists (and _include / _revinclude of each of its
includes), and one with every modifier its documentation lists are answered identically by
both paths (tests/test_gateway_fastpath.py's comparison: status, headers, body)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from gateway_fixtures import database_url
from test_gateway_fastpath import AES, P1, P2, _both, apps

from fhir_adapter.gateway.capability import MODIFIERS_SAID
from fhir_adapter.valuesets import BASE as VALUE_SETS

__all__ = ["apps", "database_url"]  # fixtures used by name
# A value of each parameter type: matching or not, each must be answered alike.
SAMPLES = {"token": "http://example.org|x", "string": "a", "date": "ge2020-01-01",
           "reference": f"Patient/{P1}", "number": "1", "quantity": "1", "uri": "http://x",
           "composite": "a$b", "special": "x"}


# Values of each modifier: matching or not, and malformed (a 400 on both paths alike).
MODIFIED = {"in": [VALUE_SETS + "sdtm-aeser-seriousness-r4-target", "http://example.org/vs"],
            "not-in": [VALUE_SETS + "sdtm-aeser-seriousness-r5-target", "ValueSet/nope"],
            "of-type": ["http://terminology.hl7.org/CodeSystem/v2-0203|MR|x", "MR|x"],
            "missing": ["true", "false", "maybe"], "text": ["a"], "exact": ["a"],
            "contains": ["a"], "below": ["http://x"], "above": ["http://x/y"],
            "identifier": ["http://example.org|x", "x"]}


def _modifiers(param: dict[str, Any]) -> list[str]:
    """The modifiers a searchParam's documentation lists (capability.MODIFIERS_SAID)."""
    said = param.get("documentation", "").rpartition(MODIFIERS_SAID.strip())[2]
    return [m.strip(" .:") for m in said.split(",") if m.strip(" .:")]


def _statement(app: Flask, version: str) -> dict[str, Any]:
    prefix = "/fhir/R5" if version == "R5" else "/fhir"
    return app.test_client().get(f"{prefix}/metadata").json


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_every_capability_search_parameter_answers_alike(apps: dict[str, Flask],
                                                         version: str) -> None:
    app = apps["host-links"]
    prefix = "/fhir/R5" if version == "R5" else "/fhir"
    statement = _statement(app, version)
    compared = 0
    for resource in statement["rest"][0]["resource"]:
        rtype = resource["type"]
        for param in resource.get("searchParam", []):
            value = quote(SAMPLES.get(param["type"], "x"), safe="")
            for path in (f"{prefix}/{rtype}?{param['name']}={value}",
                         f"{prefix}/{rtype}?{param['name']}={value}&_count=2&_total=accurate"):
                _both(app, "GET", path, {})
                compared += 1
        for include in resource.get("searchInclude", []):
            _both(app, "GET", f"{prefix}/{rtype}?_include={include}", {})
            compared += 1
        for include in resource.get("searchRevInclude", []):
            _both(app, "GET", f"{prefix}/{rtype}?_revinclude={include}", {})
            compared += 1
        for rid in (AES[0], P1, "no-such-id"):
            for query in ("", "?_summary=true", "?_elements=id", "?_summary=bogus"):
                _both(app, "GET", f"{prefix}/{rtype}/{rid}{query}", {})
                compared += 1
    assert compared > 500  # the statement listed what we expect to exist


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_every_listed_modifier_answers_alike(apps: dict[str, Flask], version: str) -> None:
    app = apps["host-links"]
    prefix = "/fhir/R5" if version == "R5" else "/fhir"
    seen: set[str] = set()
    for resource in _statement(app, version)["rest"][0]["resource"]:
        for param in resource.get("searchParam", []):
            for modifier in _modifiers(param):
                seen.add(modifier)
                if modifier == "[type]":
                    modifier, values = "Patient", [P1]
                else:
                    values = MODIFIED.get(modifier, [SAMPLES.get(param["type"], "x")])
                for value in values:
                    _both(app, "GET", f"{prefix}/{resource['type']}?{param['name']}:{modifier}="
                          f"{quote(value, safe='')}&_count=2", {})
    assert {"in", "not-in", "of-type", "not", "missing", "text", "[type]", "identifier"} <= seen

def _status(app: Flask, path: str) -> tuple[int, dict[str, Any]]:
    answer = app.test_client().get(path)
    return answer.status_code, answer.json


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_every_chain_and_has_the_statement_offers_answers_alike(apps: dict[str, Flask],
                                                                version: str) -> None:
    """Generated from the statement: every reference parameter it documents as chained, an
    untyped and a two-link chain and `:identifier`; every `_has` its searchRevInclude entries
    allow (rest.searchParam lists _has), plain and nested. Both paths answer alike, and the
    searches that must find the fixture's events and patients do."""
    app = apps["host-links"]
    prefix = "/fhir/R5" if version == "R5" else "/fhir"
    statement = _statement(app, version)
    assert "_has" in {p["name"] for p in statement["rest"][0]["searchParam"]}
    compared = 0
    for resource in statement["rest"][0]["resource"]:
        rtype = resource["type"]
        for param in resource.get("searchParam", []):
            if "Chained" not in param.get("documentation", ""):
                continue
            name = param["name"]
            for query in (f"{name}._id={P1}", f"{name}._id._id=x",
                          f"{name}.identifier=x|y", f"{name}:identifier=x|y",
                          f"{name}._has:AdverseEvent:subject:_id={AES[0]}"):
                _both(app, "GET", f"{prefix}/{rtype}?{query}", {})
                compared += 1
        for include in resource.get("searchRevInclude", []):
            source, code = include.split(":")
            for query in (f"_has:{source}:{code}:_id={AES[0]}",
                          f"_has:{source}:{code}:_has:AdverseEvent:subject:_id={AES[0]}"):
                _both(app, "GET", f"{prefix}/{rtype}?{query}", {})
                compared += 1
    assert compared > 100
    found = {f"AdverseEvent?subject._id={P1}": 4, f"AdverseEvent?subject:Patient._id={P2}": 1,
             f"Patient?_has:AdverseEvent:subject:_id={AES[4]}": 1,
             f"Patient?_has:AdverseEvent:subject:subject._id={P1}": 1,
             f"AdverseEvent?subject._has:AdverseEvent:subject:_id={AES[0]}": 4}
    for query, total in found.items():
        status, bundle = _status(app, f"{prefix}/{query}")
        assert status == 200 and bundle["total"] == total, (query, bundle)
