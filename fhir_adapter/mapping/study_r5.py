"""FHIR R5 ResearchStudy from the study facts, shaped like HL7's own CT.gov example
(ResearchStudy-example-ctgov-study-record): label, progressStatus, associatedParty,
comparisonGroup, outcomeMeasure, recruitment, site, classifier."""

from __future__ import annotations

from typing import Any

from .. import ids
from .study_common import Ctx, concept, mapped_coding, reference
from .study_facts import Facts
from .study_parties import Party, Sites


def party(p: Party) -> dict[str, Any]:
    """ResearchStudy.associatedParty."""
    out: dict[str, Any] = {}
    if p.name:
        out["name"] = p.name
    out["role"] = p.role_concept()
    if p.classifier:
        out["classifier"] = p.classifier
    if p.party:
        out["party"] = p.party
    return out


def artifact(item: dict[str, Any]) -> dict[str, Any]:
    """A version-neutral related artifact as an R5 RelatedArtifact (no url: document.url)."""
    out: dict[str, Any] = {"type": item.get("r5type", item["type"])}
    for key in ("label", "display", "citation"):
        if key in item:
            out[key] = item[key]
    if "url" in item:
        out["document"] = {"url": item.get("r5url", item["url"])}
    elif "document" in item:
        out["document"] = item["document"]
    return out


def research_study(ctx: Ctx, facts: Facts, parties: list[Party], sites: Sites,
                   artifacts: list[dict[str, Any]]) -> dict[str, Any]:
    """The study's R5 ResearchStudy (status is the publication status: always 'active')."""
    recruitment: dict[str, Any] = {}
    if facts.target is not None:
        recruitment["targetNumber"] = facts.target
    if facts.actual is not None:
        recruitment["actualNumber"] = facts.actual
    if facts.eligibility:
        recruitment["eligibility"] = reference(facts.eligibility)
    return {
        "resourceType": "ResearchStudy",
        "id": ctx.study_id,
        "meta": {"tag": facts.tags} if facts.tags else None,
        "identifier": facts.identifiers,
        "title": facts.title,
        "label": [{"type": kind, "value": value} for kind, value in facts.labels],
        "relatedArtifact": [artifact(a) for a in artifacts],
        "date": facts.date,
        "status": "active",
        "primaryPurposeType": facts.purpose,
        "phase": facts.phase,
        "studyDesign": facts.design,
        "focus": [{"concept": cc, "reference": reference(ev)} for ev, cc in facts.interventions]
        + [{"concept": cc} for cc in facts.focus_mesh],
        "condition": facts.conditions,
        "keyword": facts.keywords,
        "region": sites.regions,
        "descriptionSummary": facts.summary,
        "description": facts.detail,
        "period": facts.period,
        "site": sites.locations,
        "note": [{"text": n} for n in facts.notes],
        "classifier": facts.classifiers,
        "associatedParty": [party(p) for p in parties],
        "progressStatus": facts.progress,
        "whyStopped": {"text": facts.why_stopped} if facts.why_stopped else None,
        "recruitment": recruitment,
        "comparisonGroup": [_group(arm) for arm in facts.arms],
        "objective": [{"type": o["type"], "description": o["text"]} for o in facts.objectives],
        "outcomeMeasure": [{k: v for k, v in (("name", o["name"]), ("type", [o["type"]]),
                                               ("description", o["description"])) if v}
                           for o in facts.outcomes],
    }


def _group(arm: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"linkId": ids.arm_link_id(arm["name"]), "name": arm["name"]}
    if arm["type"]:
        out["type"] = arm["type"]
    if arm["description"]:
        out["description"] = arm["description"]
    if arm["exposures"]:
        out["intendedExposure"] = arm["exposures"]
    return out


def site_studies(ctx: Ctx, sites: Sites) -> list[dict[str, Any]]:
    """Sites with their own recruitment status or contacts, as HL7's example does: a
    ResearchStudy per site, part of the study, with the site's progressStatus and contacts."""
    out = []
    for location, status, people in sites.details:
        state = mapped_coding("ctgov-overall-status-to-r5-progress", status) if status else None
        if status and not state:
            ctx.warn(f"site status {status!r} is not a CT.gov status: not mapped")
        out.append({
            "resourceType": "ResearchStudy",
            "id": ctx.rid("ResearchStudy", f"site|{location['id']}"),
            "title": f"{ctx.key} at {location.get('name') or location['address'].get('text')}",
            "partOf": [{"reference": f"ResearchStudy/{ctx.study_id}"}],
            "status": "active",
            "site": [reference(location, location.get("name"))],
            "associatedParty": [party(p) for p in people],
            "progressStatus": [{"state": concept([state])}] if state else [],
        })
    return out
