"""The HL7 validator's checks that can run offline, on every resource produced from every
fixture (every CT.gov v2 record and legacy XML, the SDTM slice, the findings inputs with their
SUPPAE and SUPPDM, examples/) and on every resource in a golden file, in R4 and R5: the
official schema and the models, our extensions against our StructureDefinitions, every other
extension an official one placed in its context (HL7 core, the cross-version R5 extensions on
their R5 parent, the AE research IGs, US Core), code-system membership and display for every
HL7 code system we vendor and every code system we publish, no R5-only code system in R4, no
code-less coding with a display (cod-1), no code-system URI outside the registered ones and our
own, and a generated, safe XHTML narrative on every resource. Each checker is also shown to
catch the findings the HL7 validator reported (issue 16)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from datetime import date
from functools import cache
from typing import Any

import pytest
from conftest import FIXTURES, ROOT
from golden import GOLDEN

from fhir_adapter import codesystems, extension_defs
from fhir_adapter.mapping import cohort, narrative, own_terms, population
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
        name = path.relative_to(FIXTURES) if path.is_relative_to(FIXTURES) else path.name
        for n, record in enumerate(read_studies([path])):
            yield f"study {name}#{n}", record.study


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
    # the findings inputs: every inconsistency rule, SUPPDM populations, SUPPAE qualifiers
    findings = GOLDEN / "enrollment"
    out += [("findings.dm.input.csv", r) for r in enrollment_resources(
        findings / "findings.dm.input.csv", version, today=today, warn=lambda *_: None,
        disposition=findings / "findings.ds.input.csv",
        supplemental=findings / "findings.suppdm.input.csv")]
    for path, kw in ((pilot / "ae.xpt", {}), (ROOT / "examples" /
                     "NCT05003921.adverse-events.csv", {"timezone": "America/Antigua"}),
                     (GOLDEN / "adverse_event" / "findings.input.csv", {
                         "supplemental": GOLDEN / "adverse_event" / "findings.suppae.input.csv"})):
        out += [(path.name, r) for r in adverse_event_resources(path, version, LoadReport(),
                                                                **kw)]
    return tuple(out) + _pipeline_made(out, version)


def _pipeline_made(mapped: list[tuple[str, dict[str, Any]]], version: str
                   ) -> tuple[tuple[str, dict[str, Any]], ...]:
    """What a load derives from the mapped resources: each study's cohort Group and the
    ResearchStudy linked to its cohort and its analysis-population Groups."""
    subjects: dict[str, list[dict[str, Any]]] = {}
    populations: dict[str, list[str]] = {}
    for _, r in mapped:
        if r["resourceType"] == "ResearchSubject":
            subjects.setdefault(r["study"]["reference"].split("/")[1], []).append(r)
        elif r["resourceType"] == "Group" and (study := population.study_of(r)):
            populations.setdefault(study, []).append(r["id"])
    out = []
    for name, r in mapped:
        if r["resourceType"] == "ResearchStudy" and not r.get("partOf"):
            out.append((f"{name} (loaded)", population.link_populations(
                cohort.link_study(r, version), populations.get(r["id"], []))))  # type: ignore[arg-type]
    for study_id, members in subjects.items():
        out.append(("cohort", cohort.cohort_group(study_id, None, members, version)))  # type: ignore[arg-type]
    # the findings study (S1) has no ResearchStudy among the fixtures: linked to a bare one
    for study_id, groups in populations.items():
        if not any(r["id"] == study_id for _, r in out):
            bare = {"resourceType": "ResearchStudy", "id": study_id,
                    "status": "completed" if version == "R4" else "active"}
            out.append(("populations", narrative.added(population.link_populations(
                cohort.link_study(bare, version), groups))))  # type: ignore[arg-type]
    return tuple(out)


def _dicts(value: Any, wanted: Callable[[dict[str, Any]], bool], inside: bool = True
           ) -> Iterator[dict[str, Any]]:
    """Every object in a JSON value that is `wanted` (and, when `inside`, those in it)."""
    if isinstance(value, dict):
        if wanted(value):
            yield value
            if not inside:
                return
        for child in value.values():
            yield from _dicts(child, wanted, inside)
    elif isinstance(value, list):
        for item in value:
            yield from _dicts(item, wanted, inside)


@cache
def goldens(version: str) -> tuple[tuple[str, dict[str, Any]], ...]:
    """(file, resource) for every resource of `version` in the golden files."""
    out = []
    for path in sorted(GOLDEN.rglob(f"*.{version.lower()}.expected.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        out += [(f"golden {path.relative_to(GOLDEN)}", r)
                for r in _dicts(data, lambda d: "resourceType" in d, inside=False)]
    return tuple(out)


def _ctgov_records() -> int:
    """How many study records the CT.gov v2 fixture files hold (one, an array, a page)."""
    count = 0
    for path in (FIXTURES / "ctgov" / "v2").rglob("*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        count += len(data if isinstance(data, list) else data.get("studies", [data]))
    return count


def codings(value: Any) -> Iterator[dict[str, Any]]:
    """Every Coding in a resource (Identifier and Quantity have a value, a Coding has none)."""
    return _dicts(value, lambda d: "system" in d and "value" not in d
                  and ("code" in d or "display" in d))


@cache
def _own() -> dict[str, dict[str, str]]:
    return {cs["url"]: {c["code"]: c["display"] for c in cs["concept"]}
            for cs in own_terms.code_systems()}


@cache
def _fragments() -> frozenset[str]:
    return frozenset(cs["url"] for cs in own_terms.code_systems()
                     if cs.get("content") == "fragment")


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
            if code not in known and system in _fragments():
                continue  # a fragment (sponsor-defined SUPPDM flags): other codes exist
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


XVER = "http://hl7.org/fhir/5.0/StructureDefinition/extension-"
CONTACTPOINT = "http://hl7.org/fhir/StructureDefinition/contactpoint-extension"
# Official extensions outside HL7 core we write: url prefix -> (FHIR versions, contexts)
IG_EXTENSIONS = {
    "http://hl7.org/fhir/uv/ae-research-backport-ig/StructureDefinition/": ({"R4"},
                                                                            {"AdverseEvent"}),
    "http://hl7.org/fhir/uv/ae-research-ig/StructureDefinition/": ({"R5"}, {"AdverseEvent"}),
    "http://hl7.org/fhir/us/core/StructureDefinition/us-core-": ({"R4", "R5"}, {"Patient"}),
}


def _element(version: str, path: str) -> str | None:
    """The type of the element at a dotted path in `version`'s schema, or None if none."""
    from fhir_adapter.store.fhirpath_eval import property_types

    owner: str | None = path.split(".")[0]
    for step in path.split(".")[1:]:
        props = property_types(version, owner) if owner else {}  # type: ignore[arg-type]
        choices = [k for k in props if re.fullmatch(re.escape(step) + "[A-Z][A-Za-z]*", k)]
        if step not in props and not choices:  # a choice element: occurrence[x]
            return None
        owner = props.get(step) or "primitive"
    return owner


def official_extension_problems(resource: dict[str, Any], version: str) -> list[str]:
    """Every extension that is not ours: an official one, in its context. A cross-version R5
    extension (R4 only) names an R5 element R4 lacks and sits on that element's R5 parent
    (the issue's comparisonGroup.intendedExposure on ResearchStudy.arm is refused);
    contactpoint-extension (the phone extension number) sits on ContactPoint.value and holds
    no country calling code."""
    problems: list[str] = []

    def one(path: str, ext: dict[str, Any]) -> None:
        url = str(ext.get("url", ""))
        if url.startswith(extension_defs.BASE):
            return  # ours: extension_defs.check
        where = f"{path}: {url}"
        if url.startswith(XVER):
            element = url.removeprefix(XVER)
            parent, _, name = element.rpartition(".")
            if version != "R4":
                problems.append(f"{where}: a cross-version R5 extension in R5")
            elif _element("R5", element) is None:
                problems.append(f"{where}: R5 has no element {element}")
            elif _element("R4", element) is not None:
                problems.append(f"{where}: R4 has {element}: no extension needed")
            elif path != parent:
                problems.append(f"{where}: its context is {parent}")
        elif url == CONTACTPOINT:
            if not path.endswith(".telecom.value"):
                problems.append(f"{where}: its context is ContactPoint.value")
            if str(ext.get("valueString", "")).startswith("+"):
                problems.append(f"{where}: a country calling code is no extension number")
        else:
            rule = next((v for k, v in IG_EXTENSIONS.items() if url.startswith(k)), None)
            if rule is None:
                problems.append(f"{where}: neither official nor ours")
            elif version not in rule[0] or path not in rule[1]:
                problems.append(f"{where}: allowed in {sorted(rule[0])} on {sorted(rule[1])}")

    def walk(value: Any, path: str) -> None:
        if isinstance(value, list):
            for item in value:
                walk(item, path)
        elif isinstance(value, dict):
            for ext in value.get("extension") or []:
                one(path, ext)
            for key, child in value.items():
                if key not in ("extension", "resourceType", "contained") and \
                        isinstance(child, (dict, list)):
                    walk(child, f"{path}.{key.lstrip('_')}")

    walk(resource, resource["resourceType"])
    return problems


def narrative_problems(resource: dict[str, Any]) -> list[str]:
    """A generated narrative that is well-formed, safe XHTML with content (dom-6, txt-1/2),
    on every resource."""
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
    resources = produced(version) + goldens(version)
    kinds = {r["resourceType"] for _, r in resources}
    assert {"ResearchStudy", "ResearchSubject", "Patient", "AdverseEvent", "Group",
            "Organization", "Location", "Practitioner"} <= kinds
    ctgov = {name for name, _ in _sources() if name.startswith("study ctgov/v2/")}
    assert len(ctgov) == _ctgov_records() >= 21  # every CT.gov record of the fixtures
    assert any(population.study_of(r) for _, r in resources)  # SUPPDM populations met
    assert any(e["url"] == population.POPULATION_EXTENSION
               for _, r in resources for e in r.get("extension") or [])
    files = {f"golden {p.relative_to(GOLDEN)}"
             for p in GOLDEN.rglob(f"*.{version.lower()}.expected.json")}
    assert len(files) >= 13 and {name for name, _ in resources} >= files  # each has some
    found: list[str] = []
    seen = 0
    for source, resource in resources:
        where = f"{source} {resource['resourceType']}/{resource['id']}"
        found += [f"{where}: {i.expression}: {i.message}" for i in validate(resource, version)]
        found += [f"{where}: {p}" for p in extension_defs.check(resource)]
        found += [f"{where}: {p}" for p in official_extension_problems(resource, version)]
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



# ---- official extensions in their context ---------------------------------------------------

def _phone(ext: dict[str, Any], on_value: bool = True) -> dict[str, Any]:
    telecom = {"system": "phone", "value": "1 23 45 67 89"}
    if on_value:
        telecom["_value"] = {"extension": [ext]}
    else:
        telecom["extension"] = [ext]
    return {"resourceType": "Practitioner", "telecom": [telecom]}


@pytest.mark.parametrize("version, resource, finding", [
    ("R4", _phone({"url": CONTACTPOINT, "valueString": "+33"}),
     "a country calling code is no extension number"),
    ("R4", _phone({"url": CONTACTPOINT, "valueString": "7802"}, on_value=False),
     "its context is ContactPoint.value"),
    ("R4", {"resourceType": "ResearchStudy", "arm": [{"name": "A", "extension": [
        {"url": XVER + "ResearchStudy.comparisonGroup.intendedExposure",
         "valueReference": {"reference": "EvidenceVariable/x"}}]}]},
     "its context is ResearchStudy.comparisonGroup"),
    ("R5", {"resourceType": "ResearchStudy", "extension": [
        {"url": XVER + "ResearchStudy.label", "valueString": "x"}]}, "in R5"),
    ("R4", {"resourceType": "ResearchStudy", "extension": [
        {"url": XVER + "ResearchStudy.title", "valueString": "x"}]}, "no extension needed"),
    ("R4", {"resourceType": "ResearchStudy", "extension": [
        {"url": XVER + "ResearchStudy.nope", "valueString": "x"}]}, "R5 has no element"),
    ("R4", {"resourceType": "AdverseEvent", "extension": [
        {"url": "https://clinicaltrials.gov/ext/thing", "valueString": "x"}]},
     "neither official nor ours"),
    ("R5", {"resourceType": "AdverseEvent", "extension": [
        {"url": "http://hl7.org/fhir/uv/ae-research-backport-ig/StructureDefinition/ae-grade",
         "valueString": "x"}]}, "allowed in ['R4']"),
])
def test_official_extension_check_catches_each_misuse(version: str, resource: dict[str, Any],
                                                      finding: str) -> None:
    problems = official_extension_problems(resource, version)
    assert len(problems) == 1 and finding in problems[0], problems


def test_official_extension_check_accepts_the_right_use() -> None:
    assert official_extension_problems(
        _phone({"url": CONTACTPOINT, "valueString": "7802"}), "R4") == []
    occurrence = {"resourceType": "AdverseEvent", "extension": [
        {"url": XVER + "AdverseEvent.occurrence", "valuePeriod": {"start": "2020"}}]}
    assert official_extension_problems(occurrence, "R4") == []


def test_narrative_is_required_on_every_type() -> None:
    assert narrative_problems({"resourceType": "CodeSystem", "id": "c"}) == \
        ["no generated narrative"]
