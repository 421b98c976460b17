"""The HL7 CodeSystems (CC0) our mappings write, vendored in data/codesystems/ (code and
display of each concept; tools/vendor_codesystems.py re-vendors them from the official
packages), and the rule that keeps R5-only code systems out of R4 output.

In R4 an R5 core code system (research-study-party-role, title-type, research-study-status with
the R5 codes, study-design) is replaced by the one R4 can resolve: its THO twin
(terminology.hl7.org, published for R4) or SEVCO for study-design; a code that no R4-usable
system has keeps its R5 system with `version` 5.0.0 stated, the cross-version convention."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

R5_CORE_VERSION = "5.0.0"
THO = "http://terminology.hl7.org/CodeSystem/"
CORE = "http://hl7.org/fhir/"
SEVCO = "https://fevir.net/sevco"
# R5 core code system -> the R4-usable system holding the same codes (where it has them).
R4_TWIN = {CORE + "research-study-party-role": THO + "research-study-party-role",
           CORE + "title-type": THO + "title-type",
           CORE + "research-study-status": THO + "research-study-status",
           CORE + "study-design": SEVCO,
           CORE + "research-study-arm-type": None}


@cache
def _bundle(version: str) -> dict[tuple[str, str | None], dict[str, str]]:
    text = (resources.files("fhir_adapter") / "data" / "codesystems"
            / f"{version.lower()}.json").read_text(encoding="utf-8")
    out: dict[tuple[str, str | None], dict[str, str]] = {}
    for entry in json.loads(text)["entry"]:
        cs = entry["resource"]
        concepts = {c["code"]: c.get("display", c["code"]) for c in cs["concept"]}
        out[(cs["url"], cs.get("version"))] = concepts
        out.setdefault((cs["url"], None), concepts)  # unversioned: the first one listed
    return out


def code_systems(version: str) -> list[dict[str, Any]]:
    """The vendored CodeSystem resources of FHIR `version` (R4 or R5)."""
    text = (resources.files("fhir_adapter") / "data" / "codesystems"
            / f"{version.lower()}.json").read_text(encoding="utf-8")
    return [e["resource"] for e in json.loads(text)["entry"]]


def concepts(version: str, system: str, cs_version: str | None = None) -> dict[str, str] | None:
    """{code: display} of a vendored code system as seen from FHIR `version` (a coding that
    states R5 core's version is looked up in R5's), or None if we do not vendor it."""
    if version == "R4" and cs_version == R5_CORE_VERSION:
        version, cs_version = "R5", None
    table = _bundle(version)
    return table.get((system, cs_version)) or table.get((system, None))


def conform(coding: dict[str, str], version: str) -> dict[str, str]:
    """The coding as FHIR `version` can resolve it, with the code system's own display:
    R5-only systems in R4 become their R4-usable twin (or state version 5.0.0)."""
    system, code = coding.get("system"), coding.get("code")
    if not system or not code:
        return coding
    if version == "R4" and system in R4_TWIN and coding.get("version") != R5_CORE_VERSION:
        twin = R4_TWIN[system]
        known = concepts("R4", twin) if twin else None
        if known and code in known:
            return {"system": twin, "code": code, "display": known[code]}
        known = concepts("R5", system)
        if known and code in known:
            return {"system": system, "version": R5_CORE_VERSION, "code": code,
                    "display": known[code]}
        return coding
    known = concepts(version, system)
    if known and code in known and coding.get("display") != known[code]:
        return {**coding, "display": known[code]}
    return coding


def conform_all(value: Any, version: str) -> None:
    """conform() every Coding inside a resource (or any part of one), in place."""
    if isinstance(value, dict):
        for key, child in value.items():
            if isinstance(child, dict) and "code" in child and "system" in child \
                    and "value" not in child:  # a Coding (a Quantity has a value)
                value[key] = conform(child, version)
            elif key == "coding" and isinstance(child, list):
                value[key] = [conform(c, version) if isinstance(c, dict) else c for c in child]
            else:
                conform_all(child, version)
    elif isinstance(value, list):
        for item in value:
            conform_all(item, version)
