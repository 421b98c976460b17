"""Code systems we publish ourselves, for vocabularies that have no registered FHIR code-system
URI: the ClinicalTrials.gov API v2 enums (StudyType, DesignAllocation, ...), the CT.gov usage
context 'interventionType', and the ConceptMap targets in our own namespace (CDISC submission
values whose NCIt C-codes we have not verified, e.g. AEACN). The gateway serves them at
/fhir/CodeSystem; their concepts come from the same data the mappings write."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from .. import conceptmaps, findings
from .ctgov_enums import ENUMS, display
from .population import POPULATION_DISPLAYS, POPULATION_SYSTEM

BASE = "https://fhir-adapter.dev/fhir/CodeSystem/"
USAGE_CONTEXT = BASE + "ctgov-usage-context"


def kebab(name: str) -> str:
    """'DesignAllocation' -> 'design-allocation'."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", "-", name).lower()


def ctgov_system(enum: str) -> str:
    """Our CodeSystem url for a CT.gov API v2 enum."""
    return f"{BASE}ctgov-{kebab(enum)}"


def _code_system(url: str, name: str, title: str, description: str,
                 concepts: list[dict[str, str]]) -> dict[str, Any]:
    return {"resourceType": "CodeSystem", "id": url.removeprefix(BASE), "url": url,
            "version": "1.0.0", "name": name, "title": title, "status": "active",
            "experimental": False, "publisher": "fhir-adapter", "description": description,
            "caseSensitive": True, "content": "complete", "count": len(concepts),
            "concept": concepts}


# The flags of the CDISC SDTM pilot's SUPPDM (its QLABELs), the common ADaM populations.



@cache
def code_systems() -> tuple[dict[str, Any], ...]:
    """Every CodeSystem we publish (R4-shaped; valid as written in R5 too)."""
    out = [_code_system(
        ctgov_system(enum), f"Ctgov{enum}", f"ClinicalTrials.gov API v2 enum {enum}",
        f"The values of the ClinicalTrials.gov API v2 enum {enum} (ctg-oas-v2.yaml), as the "
        "study mapping writes them; CT.gov publishes no FHIR code system for them.",
        [{"code": v, "display": display(v)} for v in values]) for enum, values in ENUMS.items()]
    out.append(_code_system(
        USAGE_CONTEXT, "CtgovUsageContext", "ClinicalTrials.gov usage contexts",
        "Usage-context types for facts that ClinicalTrials.gov states about a study part.",
        [{"code": "interventionType", "display": "Intervention Type for CT.gov"}]))
    out.append(findings.code_system())  # meta.tag of resources mapped from contradictions
    population = _code_system(
        POPULATION_SYSTEM, "AnalysisPopulation", "Analysis populations",
        "The analysis-population flags of SDTM SUPPDM (QNAM) that name a population Group of a "
        "study, and the characteristic linking such a Group to its ResearchStudy. A sponsor "
        "may define more flags: the list is a fragment.",
        [{"code": "population-of", "display": "Analysis population of"}]
        + [{"code": c, "display": d} for c, d in POPULATION_DISPLAYS.items()])
    out.append(population | {"content": "fragment"})
    for cm in conceptmaps.all_maps().values():
        for group in cm.get("group", []):
            url = group.get("target") or ""
            if not url.startswith(BASE) or any(cs["url"] == url for cs in out):
                continue
            concepts: dict[str, str] = {}
            for element in group["element"]:
                for target in element.get("target", []):
                    if target.get("code"):
                        concepts.setdefault(target["code"], target.get("display")
                                            or target["code"])
            out.append(_code_system(
                url, "".join(p.title() for p in url.removeprefix(BASE).split("-")),
                f"Target codes of: {cm.get('title', cm['id'])}",
                f"The target codes of ConceptMap {cm['id']}: "
                + cm.get("description", ""),
                [{"code": c, "display": d} for c, d in concepts.items()]))
    return tuple(out)
