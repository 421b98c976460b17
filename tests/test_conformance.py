"""The HL7 validator's checks that can run offline, on every resource produced from every
fixture (CT.gov v2 JSON and legacy XML, the SDTM slice, examples/), in R4 and R5: the official
schema and the models, our extensions against our StructureDefinitions, code-system membership
and display for every HL7 code system we vendor and every code system we publish, no R5-only
code system in R4, no code-less coding with a display (cod-1), no invented code-system URI, and
a generated, safe XHTML narrative on everything an EHR displays. Each checker is also shown to
catch the findings the HL7 validator reported (issue 16)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import date
from functools import cache
from typing import Any

import pytest
from conftest import FIXTURES, ROOT

from fhir_adapter import codesystems, extension_defs
from fhir_adapter.mapping import narrative, own_terms
from fhir_adapter.mapping.study import map_study
from fhir_adapter.pipeline.adverse_events import LoadReport, adverse_event_resources
from fhir_adapter.pipeline.enrollments import enrollment_resources
from fhir_adapter.sources.study import read_studies
from fhir_adapter.validation import validate

# Code systems without a FHIR CodeSystem we could vendor: registered URIs (THO / HL7 terminology
# pages), checked for their form only.
REGISTERED = {"https://www.meddra.org", "https://www.nlm.nih.gov/mesh",
              "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl", "http://loinc.org",
              "http://unitsofmeasure.org", "urn:iso:std:iso:3166",
              "urn:oid:2.16.840.1.113883.6.238"}  # CDC Race & Ethnicity (OMB categories)
R5_ONLY = {codesystems.CORE + n for n in ("research-study-party-role", "study-design",
                                          "research-study-arm-type", "title-type")}
XHTML = "{http://www.w3.org/1999/xhtml}"
XHTML_TAGS = {f"{XHTML}{t}" for t in ("div", "p", "b", "table", "tr", "th", "td")}


def _sources() -> Iterator[tuple[str, Any]]:
    """(name, what to map) for every fixture."""
    for path in sorted((FIXTURES / "ctgov" / "v2").rglob("*.json")) + sorted(
            (FIXTURES / "ctgov" / "legacy_xml").glob("*.xml")) + [
            FIXTURES / "sdtm" / "cdiscpilot01-slice", ROOT / "examples" / "NCT05003921.json"]:
        for n, record in enumerate(read_studies([path])):
            yield f"study {path.name}#{n}", record.study


@cache
def produced(version: str) -> tuple[tuple[str, dict[str, Any]], ...]:
    """(source, resource) for everything mapped from every fixture in `version`."""
    out: list[tuple[str, dict[str, Any]]] = []
    for name, study in _sources():
        out += [(name, r) for r in map_study(study, version).resources]
    pilot = FIXTURES / "sdtm" / "cdiscpilot01-slice"
    today = date(2026, 1, 1)
    for path, kw in ((pilot / "dm.xpt", {"disposition": pilot / "ds.xpt"}),
                     (ROOT / "examples" / "NCT05003921.enrollments.csv", {}),
                     (ROOT / "examples" / "NCT05003921.enrollments.json", {})):
        out += [(path.name, r) for r in enrollment_resources(
            path, version, today=today, warn=lambda *_: None, **kw)]  # type: ignore[arg-type]
    for path, kw in ((pilot / "ae.xpt", {}), (ROOT / "examples" /
                     "NCT05003921.adverse-events.csv", {"timezone": "America/Antigua"})):
        out += [(path.name, r) for r in adverse_event_resources(path, version, LoadReport(),
                                                                **kw)]
    return tuple(out)


def codings(value: Any) -> Iterator[dict[str, Any]]:
    """Every Coding in a resource (Identifier and Quantity have a value, a Coding has none)."""
    if isinstance(value, dict):
        if "system" in value and "value" not in value and ("code" in value or
                                                           "display" in value):
            yield value
        for child in value.values():
            yield from codings(child)
    elif isinstance(value, list):
        for item in value:
            yield from codings(item)


@cache
def _own() -> dict[str, dict[str, str]]:
    return {cs["url"]: {c["code"]: c["display"] for c in cs["concept"]}
            for cs in own_terms.code_systems()}


def coding_problems(resource: dict[str, Any], version: str) -> list[str]:
    """What the HL7 validator (offline, no terminology server) would say about the codings."""
    problems = []
    for c in codings(resource):
        system, code = c.get("system", ""), c.get("code")
        where = f"{system}|{code}"
        if "display" in c and code is None:
            problems.append(f"{where}: display without a code (cod-1)")
            continue
        if version == "R4" and system in R5_ONLY and c.get("version") != "5.0.0":
            problems.append(f"{where}: R5-only code system in R4")
            continue
        if version == "R4" and system == codesystems.CORE + "research-study-status" \
                and code not in (codesystems.concepts("R4", system) or {}):
            problems.append(f"{where}: not an R4 research-study-status code")
            continue
        known = codesystems.concepts(version, system, c.get("version"))
        if system.startswith(own_terms.BASE):
            known = _own().get(system)
            if known is None:
                problems.append(f"{where}: our code system is not published")
                continue
        elif known is None:
            if system not in REGISTERED:
                problems.append(f"{where}: not a registered or published code system")
            continue
        if code not in known:
            problems.append(f"{where}: not in the code system")
        elif "display" in c and c["display"] != known[code]:
            problems.append(f"{where}: display {c['display']!r}, code system says "
                            f"{known[code]!r}")
    return problems


def narrative_problems(resource: dict[str, Any]) -> list[str]:
    """A generated narrative that is well-formed, safe XHTML with content (dom-6, txt-1/2)."""
    if resource["resourceType"] not in narrative.ROWS:
        return []
    text = resource.get("text")
    if not text or text.get("status") != "generated":
        return ["no generated narrative"]
    root = ET.fromstring(text["div"])
    problems = [] if root.tag == f"{XHTML}div" else ["the narrative is not an XHTML div"]
    for element in root.iter():
        if element.tag not in XHTML_TAGS or element.attrib:
            problems.append(f"element {element.tag} {element.attrib} not allowed")
    if not "".join(root.itertext()).strip():
        problems.append("empty narrative")
    return problems


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_every_produced_resource_passes_the_offline_validator_checks(version: str) -> None:
    resources = produced(version)
    kinds = {r["resourceType"] for _, r in resources}
    assert {"ResearchStudy", "ResearchSubject", "Patient", "AdverseEvent", "Group",
            "Organization", "Location", "Practitioner"} <= kinds
    found: list[str] = []
    seen = 0
    for source, resource in resources:
        where = f"{source} {resource['resourceType']}/{resource['id']}"
        found += [f"{where}: {i.expression}: {i.message}" for i in validate(resource, version)]
        found += [f"{where}: {p}" for p in extension_defs.check(resource)]
        found += [f"{where}: {p}" for p in coding_problems(resource, version)]
        found += [f"{where}: {p}" for p in narrative_problems(resource)]
        seen += sum(1 for _ in codings(resource))
    assert found == [], "\n".join(found[:40])
    assert seen > 1000  # the walk really met the codings


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_vendored_and_published_code_systems_are_used_and_valid(version: str) -> None:
    """Every vendored HL7 code system is a valid CodeSystem; our own ones are too, and the
    mapping writes codes of most of them (the check above is not vacuous)."""
    for cs in codesystems.code_systems(version):
        assert validate(cs, version) == [], cs["url"]
    for cs in own_terms.code_systems():
        assert validate(cs, version) == [], cs["url"]
    used = {c["system"] for _, r in produced(version) for c in codings(r)}
    assert used & {cs["url"] for cs in codesystems.code_systems(version)}
    assert {own_terms.ctgov_system("StudyType"), own_terms.USAGE_CONTEXT,
            own_terms.BASE + "cdisc-sdtm-aeacn"} <= used


# ---- each check catches what the HL7 validator reported -------------------------------------

def _cc(system: str, code: str | None, display: str | None = None,
        **extra: str) -> dict[str, Any]:
    c = {"system": system, **extra}
    if code is not None:
        c["code"] = code
    if display is not None:
        c["display"] = display
    return {"resourceType": "AdverseEvent", "id": "x", "seriousness": {"coding": [c]}}


@pytest.mark.parametrize("version, resource, finding", [
    ("R4", _cc(codesystems.THO + "adverse-event-seriousness", "Non-serious"),
     "not in the code system"),
    ("R4", _cc(codesystems.CORE + "research-study-party-role", "lead-sponsor"),
     "R5-only code system in R4"),
    ("R4", _cc(codesystems.CORE + "research-study-status", "recruiting"),
     "not an R4 research-study-status code"),
    ("R5", _cc(codesystems.CORE + "research-study-party-role", "lead-sponsor", "Lead Sponsor"),
     "code system says 'lead-sponsor'"),
    ("R5", _cc("https://www.meddra.org", None, "Back pain"), "cod-1"),
    ("R4", _cc("https://clinicaltrials.gov/data-about-studies/study-data-structure"
               "#enum-StudyType", "INTERVENTIONAL"), "not a registered or published"),
    ("R4", _cc(own_terms.ctgov_system("StudyType"), "NOPE"), "not in the code system"),
])
def test_coding_checks_catch_the_validator_findings(version: str, resource: dict[str, Any],
                                                    finding: str) -> None:
    problems = coding_problems(resource, version)
    assert len(problems) == 1 and finding in problems[0], problems


def test_r5_code_in_r4_is_accepted_with_the_r5_version_stated() -> None:
    arm = _cc(codesystems.CORE + "research-study-arm-type", "experimental", "Experimental",
              version="5.0.0")
    assert coding_problems(arm, "R4") == []
    assert coding_problems(_cc(codesystems.CORE + "research-study-arm-type", "experimental",
                               "Experimental", version="5.0.0"), "R5") == []


def test_narrative_check_catches_missing_unsafe_and_empty_narratives() -> None:
    patient: dict[str, Any] = {"resourceType": "Patient", "id": "p"}
    assert narrative_problems(patient) == ["no generated narrative"]
    unsafe = {**patient, "text": {"status": "generated", "div": (
        '<div xmlns="http://www.w3.org/1999/xhtml"><script>x</script></div>')}}
    assert any("script" in p for p in narrative_problems(unsafe))
    empty = {**patient, "text": {"status": "generated",
                                 "div": '<div xmlns="http://www.w3.org/1999/xhtml"> </div>'}}
    assert narrative_problems(empty) == ["empty narrative"]


def test_narrative_escapes_what_the_source_says() -> None:
    org = narrative.added({"resourceType": "Organization", "id": "o",
                           "name": "<script>alert(1)</script> & Co"})
    assert list(org)[:3] == ["resourceType", "id", "text"]
    assert "<script>" not in org["text"]["div"] and narrative_problems(org) == []
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in org["text"]["div"]


# ---- our extensions -------------------------------------------------------------------------

def test_every_extension_url_of_ours_in_the_code_has_a_structure_definition() -> None:
    literal: set[str] = set()
    joined: set[str] = set()
    for path in (ROOT / "fhir_adapter").rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        literal |= set(re.findall(r"fhir-adapter\.dev/fhir/StructureDefinition/([A-Za-z-]+)",
                                  source))
        if re.search(r'BASE = "[^"]*/StructureDefinition/"', source):  # BASE + "name" urls
            joined |= set(re.findall(r'BASE \+ "([a-z][A-Za-z-]+)"', source))
    named = {url.removeprefix(extension_defs.BASE) for url in extension_defs.specs()}
    assert {"age-at-enrollment", "meddra-classification", "study-site"} <= literal | joined
    assert (literal | joined) <= named


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_structure_definitions_are_valid_and_match_the_specs(version: str) -> None:
    for url, spec in extension_defs.specs().items():
        sd = extension_defs.structure_definition(url, version)
        assert validate(sd, version) == [], url
        assert sd["url"] == url and sd["type"] == "Extension"
        assert [c["expression"] for c in sd["context"]] == spec["context"]
        elements = {e["id"]: e for e in sd["differential"]["element"]}
        assert elements["Extension.url"]["fixedUri"] == url
        if "value" in spec:
            assert [t["code"] for t in elements["Extension.value[x]"]["type"]] == spec["value"]
        else:
            assert elements["Extension.value[x]"]["max"] == "0"
            for part in spec["parts"]:
                assert elements[f"Extension.extension:{part['name']}.url"]["fixedUri"] == \
                    part["name"]


AGE = extension_defs.BASE + "age-at-enrollment"
MEDDRA = extension_defs.BASE + "meddra-classification"


@pytest.mark.parametrize("resource, finding", [
    ({"resourceType": "AdverseEvent", "extension": [{"url": AGE, "valueAge": {"value": 3}}]},
     "not allowed here"),
    ({"resourceType": "Patient", "extension": [{"url": AGE, "valueString": "63"}]},
     "valueString is not one of"),
    ({"resourceType": "Patient", "extension": [{"url": AGE, "valueAge": {"value": 3}},
                                               {"url": AGE, "valueAge": {"value": 4}}]},
     "2 times"),
    ({"resourceType": "Patient", "extension": [{"url": extension_defs.BASE + "nope",
                                                "valueString": "x"}]},
     "has no StructureDefinition"),
    ({"resourceType": "AdverseEvent", "extension": [{"url": MEDDRA, "extension": [
        {"url": "pt", "valueCoding": {"code": "1"}}, {"url": "pt", "valueCoding": {"code": "2"}}
    ]}]}, "pt: 2 given"),
    ({"resourceType": "AdverseEvent", "extension": [{"url": MEDDRA, "extension": [
        {"url": "grade", "valueString": "x"}]}]}, "'grade' is not defined"),
    ({"resourceType": "AdverseEvent", "code": {"extension": [
        {"url": MEDDRA, "extension": [{"url": "pt", "valueCoding": {"code": "1"}}]}]}},
     "AdverseEvent.code: meddra-classification is not allowed here"),
])
def test_extension_check_catches_each_violation(resource: dict[str, Any], finding: str) -> None:
    problems = extension_defs.check(resource)
    assert len(problems) == 1 and finding in problems[0], problems

