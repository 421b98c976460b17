"""FHIR R4 ResearchStudy from the study facts: R4 elements where R4 has them, the official
cross-version extensions (http://hl7.org/fhir/5.0/StructureDefinition/extension-ResearchStudy.*,
hl7.fhir.uv.xver-r5.r4) for the R5 facts R4 has no element for."""

from __future__ import annotations

from typing import Any

from .. import ids
from .study_common import Ctx, complex_ext, ext, reference, translate
from .study_facts import Facts
from .study_parties import Party, Sites


def party_ext(p: Party) -> dict[str, Any]:
    """An R5 associatedParty as the cross-version extension."""
    parts: list[tuple[str, str, Any]] = [("name", "String", p.name),
                                         ("role", "CodeableConcept", p.role_concept())]
    parts += [("classifier", "CodeableConcept", c) for c in p.classifier]
    parts.append(("party", "Reference", p.party))
    return complex_ext("ResearchStudy.associatedParty", parts)


def progress_ext(entry: dict[str, Any]) -> dict[str, Any]:
    """An R5 progressStatus entry as the cross-version extension."""
    return complex_ext("ResearchStudy.progressStatus", [
        ("state", "CodeableConcept", entry["state"]), ("actual", "Boolean", entry.get("actual")),
        ("period", "Period", entry.get("period"))])


def artifact(item: dict[str, Any]) -> dict[str, Any]:
    """A version-neutral related artifact as an R4 RelatedArtifact (R4 has no 'transforms':
    the CT.gov record is 'derived-from', linked by its study page)."""
    out: dict[str, Any] = {"type": item["type"]}
    for key in ("label", "display", "citation", "url", "document"):
        if key in item:
            out[key] = item[key]
    return out


def _native(parties: list[Party], kind: str) -> list[Party]:
    return [p for p in parties if p.native == kind]


def research_study(ctx: Ctx, facts: Facts, parties: list[Party], sites: Sites,
                   artifacts: list[dict[str, Any]]) -> dict[str, Any]:
    """The study's R4 ResearchStudy."""
    extensions = [complex_ext("ResearchStudy.label", [("type", "CodeableConcept", kind),
                                                      ("value", "String", value)])
                  for kind, value in facts.labels]
    if facts.date:
        extensions.append(ext("ResearchStudy.date", "DateTime", facts.date))
    if facts.summary and facts.detail:  # R4 description holds both; this marks the summary
        extensions.append(ext("ResearchStudy.descriptionSummary", "Markdown", facts.summary))
    extensions += [progress_ext(entry) for entry in facts.progress]
    if facts.target is not None or facts.actual is not None:
        extensions.append(complex_ext("ResearchStudy.recruitment", [
            ("targetNumber", "UnsignedInt", facts.target),
            ("actualNumber", "UnsignedInt", facts.actual)]))
    sponsor = _native(parties, "sponsor")
    pi = _native(parties, "pi")
    contacts = [p.contact for p in _native(parties, "contact") if p.contact]
    extensions += [party_ext(p) for p in parties if p.native not in ("sponsor", "pi", "contact")]
    extensions += [_exposures(arm) for arm in facts.arms if arm["exposures"]]
    extensions += [complex_ext("ResearchStudy.outcomeMeasure", [
        ("name", "String", o["name"]), ("type", "CodeableConcept", o["type"]),
        ("description", "Markdown", o["description"])]) for o in facts.outcomes]
    description = "\n\n".join(t for t in (facts.summary, facts.detail) if t)
    return {
        "resourceType": "ResearchStudy",
        "id": ctx.study_id,
        "meta": {"tag": facts.tags} if facts.tags else None,
        "extension": extensions,
        "identifier": facts.identifiers,
        "title": facts.title,
        "status": facts.r4_status,
        "primaryPurposeType": facts.purpose,
        "phase": facts.phase,
        "category": facts.design + facts.classifiers,
        "focus": [cc for _, cc in facts.interventions] + facts.focus_mesh,
        "condition": facts.conditions,
        "contact": contacts,
        "relatedArtifact": [artifact(a) for a in artifacts],
        "keyword": facts.keywords,
        "location": sites.regions,
        "description": description,
        "enrollment": [reference(facts.eligibility)] if facts.eligibility else [],
        "period": facts.period,
        "sponsor": sponsor[0].party if sponsor else None,
        "principalInvestigator": pi[0].party if pi else None,
        "site": sites.locations,
        "reasonStopped": {"text": facts.why_stopped} if facts.why_stopped else None,
        "note": [{"text": n} for n in facts.notes],
        "arm": [_arm(arm) for arm in facts.arms],
        "objective": [{"name": o["text"], "type": o["type"]} for o in facts.objectives]
        + [{k: v for k, v in (("name", o["name"]), ("type", o["type"])) if v}
           for o in facts.outcomes],
    }


def _exposures(arm: dict[str, Any]) -> dict[str, Any]:
    """What an arm gives, as the cross-version comparisonGroup extension on the ResearchStudy
    (its context; on R4 arm the validator finds the R5 child out of place), tied to the arm by
    its name and linkId."""
    return complex_ext("ResearchStudy.comparisonGroup", [
        ("linkId", "Id", ids.arm_link_id(arm["name"])), ("name", "String", arm["name"]),
        *(("intendedExposure", "Reference", e) for e in arm["exposures"])])


def _arm(arm: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": arm["name"]}
    if arm["type"]:
        out["type"] = arm["type"]
    if arm["description"]:
        out["description"] = arm["description"]
    return out


def site_studies(ctx: Ctx, sites: Sites, study_status: str) -> list[dict[str, Any]]:
    """Sites with their own recruitment status or contacts: a ResearchStudy per site, part
    of the study (R4 status from the site status, else the study's own)."""
    out = []
    for location, status, people in sites.details:
        target = translate("ctgov-overall-status-to-r4", status) if status else None
        if status and not target:
            ctx.warn(f"site status {status!r} is not a CT.gov status: not mapped")
        state = translate("ctgov-overall-status-to-r5-progress", status) if status else None
        extensions = [progress_ext({"state": {"coding": [state.coding()]}})] if state else []
        extensions += [party_ext(p) for p in people if p.native not in ("pi", "contact")]
        pi = _native(people, "pi")
        out.append({
            "resourceType": "ResearchStudy",
            "id": ctx.rid("ResearchStudy", f"site|{location['id']}"),
            "extension": extensions,
            "title": f"{ctx.key} at {location.get('name') or location['address'].get('text')}",
            "partOf": [{"reference": f"ResearchStudy/{ctx.study_id}"}],
            "status": target.code if target else study_status,
            "contact": [p.contact for p in _native(people, "contact") if p.contact],
            "principalInvestigator": pi[0].party if pi else None,
            "site": [reference(location, location.get("name"))],
        })
    return out
