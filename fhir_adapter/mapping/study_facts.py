"""Version-neutral facts of a CT.gov study record, already in FHIR datatypes: the R4 and R5
assemblers (study_r4.py, study_r5.py) only decide where each one goes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import ids
from .study_common import (
    OBJECTIVE_TYPE,
    TITLE_TYPE,
    Ctx,
    coding,
    concept,
    ctgov_coding,
    display,
    mapped_coding,
    reference,
)
from .study_refs import (
    eligibility_group,
    intervention,
    intervention_concept,
    mesh_coding,
    organization,
)
from .study_status import R4_STATUS_FALLBACK, status


@dataclass
class Facts:
    """What a study says, as FHIR datatypes shared by both versions."""

    identifiers: list[dict[str, Any]] = field(default_factory=list)
    title: str | None = None
    labels: list[tuple[dict[str, Any], str]] = field(default_factory=list)  # (type, value)
    r4_status: str = R4_STATUS_FALLBACK
    progress: list[dict[str, Any]] = field(default_factory=list)  # R5 progressStatus entries
    why_stopped: str | None = None
    period: dict[str, str] = field(default_factory=dict)
    date: str | None = None
    phase: dict[str, Any] | None = None
    purpose: dict[str, Any] | None = None
    design: list[dict[str, Any]] = field(default_factory=list)
    classifiers: list[dict[str, Any]] = field(default_factory=list)
    conditions: list[dict[str, Any]] = field(default_factory=list)
    keywords: list[dict[str, Any]] = field(default_factory=list)
    summary: str | None = None
    detail: str | None = None
    interventions: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    focus_mesh: list[dict[str, Any]] = field(default_factory=list)  # derived, not named
    arms: list[dict[str, Any]] = field(default_factory=list)
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    target: int | None = None
    actual: int | None = None
    eligibility: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    tags: list[dict[str, Any]] = field(default_factory=list)  # meta.tag
    objectives: list[dict[str, Any]] = field(default_factory=list)  # {text, type}


def gather(ctx: Ctx) -> Facts:
    """Everything version-neutral about the study (sites, parties and links come separately)."""
    facts = Facts()
    _identification(ctx, facts)
    status(ctx, facts)
    _design(ctx, facts)
    _classifiers(ctx, facts)
    _conditions(ctx, facts)
    desc = ctx.module("descriptionModule")
    facts.summary, facts.detail = desc.get("briefSummary"), desc.get("detailedDescription")
    _arms(ctx, facts)
    _outcomes(ctx, facts)
    facts.eligibility = eligibility_group(ctx)
    return facts


def _identification(ctx: Ctx, facts: Facts) -> None:
    ident = ctx.module("identificationModule")
    nct = ident.get("nctId")
    if nct:
        facts.identifiers.append({"use": "official", "system": ids.NCT_SYSTEM, "value": nct})
    for alias in ident.get("nctIdAliases") or []:
        facts.identifiers.append({"use": "old", "system": ids.NCT_SYSTEM, "value": alias})
    org = ident.get("organization") or {}
    org_ref = None
    if org.get("fullName"):
        org_ref = organization(ctx, org["fullName"], org.get("class"))
    info = ident.get("orgStudyIdInfo") or {}
    if info.get("id"):
        identifier: dict[str, Any] = {}
        if info.get("type"):
            identifier["type"] = concept([ctgov_coding("OrgStudyIdType", info["type"])],
                                         display(info["type"]))
        identifier.update({"system": ids.STUDY_ID_SYSTEM, "value": info["id"]})
        if org_ref:
            identifier["assigner"] = org_ref
        facts.identifiers.append(identifier)
    for other in ident.get("secondaryIdInfos") or []:
        if not other.get("id"):
            continue
        identifier = {}
        if other.get("type"):
            identifier["type"] = concept([ctgov_coding("SecondaryIdType", other["type"])],
                                         display(other["type"]))
        identifier["value"] = other["id"]
        if other.get("domain"):
            identifier["assigner"] = {"display": other["domain"]}
        facts.identifiers.append(identifier)
    facts.title = ident.get("briefTitle") or ident.get("officialTitle")
    for field_name, code, text in (("officialTitle", "official", "Official Title"),
                                   ("acronym", "acronym", "Acronym")):
        if ident.get(field_name):
            kind = concept([coding(TITLE_TYPE, code, "Official title" if code == "official"
                                   else "Acronym")], text)
            facts.labels.append((kind, ident[field_name]))


def _enum_concept(ctx: Ctx, enum: str, value: str, label: str,
                  map_id: str | None = None) -> dict[str, Any]:
    known = ctgov_coding(enum, value)
    if not known:
        ctx.warn(f"{label} {value!r} is not a CT.gov {enum} value: kept as text")
        return {"text": f"{label}: {value}"}
    return concept([known, mapped_coding(map_id, value) if map_id else None],
                   f"{label}: {display(value)}")


def _design(ctx: Ctx, facts: Facts) -> None:
    design = ctx.module("designModule")
    info = design.get("designInfo") or {}
    phases = design.get("phases") or []
    if phases:
        order = {p: i for i, p in enumerate(("NA", "EARLY_PHASE1", "PHASE1", "PHASE2",
                                             "PHASE3", "PHASE4"))}
        key = "+".join(sorted(phases, key=lambda p: order.get(p, 99)))
        phase = mapped_coding("ctgov-phase", key)
        facts.phase = concept([phase]) if phase else {"text": "/".join(phases)}
        if not phase:
            ctx.warn(f"phases {phases} have no research-study-phase code: kept as text")
    purpose = info.get("primaryPurpose")
    if purpose:
        hl7 = mapped_coding("ctgov-primary-purpose", purpose)
        facts.purpose = (concept([hl7]) if hl7 else
                         _enum_concept(ctx, "PrimaryPurpose", purpose, "Primary Purpose"))
    masking = info.get("maskingInfo") or {}
    for value, enum, label, map_id in (
            (design.get("studyType"), "StudyType", "Study Type", "ctgov-study-type"),
            (info.get("allocation"), "DesignAllocation", "Design Allocation", "ctgov-allocation"),
            (info.get("interventionModel"), "InterventionalAssignment",
             "Design Intervention Model", "ctgov-intervention-model"),
            (info.get("observationalModel"), "ObservationalModel", "Design Observational Model",
             None),
            (info.get("timePerspective"), "DesignTimePerspective", "Design Time Perspective",
             None),
            (masking.get("masking"), "DesignMasking", "Design Masking", "ctgov-masking"),
            *((who, "WhoMasked", "Design Who Masked", "ctgov-masking")
              for who in masking.get("whoMasked") or []),
            ((design.get("bioSpec") or {}).get("retention"), "BioSpecRetention",
             "Biospecimen Retention", None)):
        if value:
            facts.design.append(_enum_concept(ctx, enum, value, label, map_id))
    if isinstance(design.get("patientRegistry"), bool):
        facts.design.append({"text": f"Patient Registry: {_yes(design['patientRegistry'])}"})
    if design.get("targetDuration"):
        facts.design.append({"text": f"Target Duration: {design['targetDuration']}"})
    for kind, flag in (design.get("expandedAccessTypes") or {}).items():
        if flag is True:
            facts.design.append({"text": f"Expanded Access Type: {kind.title()}"})
    for text, label in ((info.get("interventionModelDescription"), "Intervention model"),
                        (masking.get("maskingDescription"), "Masking"),
                        ((design.get("bioSpec") or {}).get("description"), "Biospecimens")):
        if text:
            facts.notes.append(f"{label}: {text}")
    enrollment = design.get("enrollmentInfo") or {}
    count = enrollment.get("count")
    if isinstance(count, int) and count >= 0:
        if enrollment.get("type") == "ACTUAL":
            facts.actual = count
        else:
            facts.target = count
            if enrollment.get("type") != "ESTIMATED":
                ctx.warn("designModule.enrollmentInfo.type missing: count taken as the target")


OVERSIGHT = ("oversightHasDmc", "isFdaRegulatedDrug", "isFdaRegulatedDevice",
             "isUnapprovedDevice", "isPpsd", "isUsExport", "fdaaa801Violation")


def _yes(flag: bool) -> str:
    return "Yes" if flag else "No"


def _classifiers(ctx: Ctx, facts: Facts) -> None:
    if isinstance(ctx.study.get("hasResults"), bool):
        facts.classifiers.append({"text": f"Has Results: {ctx.study['hasResults']}"})
    oversight = ctx.module("oversightModule")
    for name in OVERSIGHT:
        flag = oversight.get(name)
        if isinstance(flag, bool):
            facts.classifiers.append({"text": f"Oversight Classifier: {name} {_yes(flag)}"})
    status = ctx.module("statusModule")
    if isinstance(status.get("delayedPosting"), bool):
        facts.classifiers.append({"text": f"Delayed Posting: {_yes(status['delayedPosting'])}"})
    access = status.get("expandedAccessInfo") or {}
    if isinstance(access.get("hasExpandedAccess"), bool):
        facts.classifiers.append(
            {"text": f"Expanded Access: hasExpandedAccess {_yes(access['hasExpandedAccess'])}"})
    if access.get("nctId"):
        state = access.get("statusForNctId")
        facts.classifiers.append({"text": f"Expanded Access: {access['nctId']}"
                                  + (f" {display(state)}" if state else "")})


def _meshes(ctx: Ctx, browse: str, kind: str = "meshes") -> list[tuple[str | None, str]]:
    """(MeSH id or None, term) that CT.gov derived (legacy XML gives terms only)."""
    module = (ctx.study.get("derivedSection") or {}).get(browse) or {}
    return [(m.get("id") or None, m["term"]) for m in module.get(kind) or []
            if isinstance(m, dict) and m.get("term")]


def mesh_terms(ctx: Ctx, browse: str) -> dict[str, str]:
    """{term (case-folded): MeSH id} that CT.gov derived for conditions or interventions."""
    return {term.casefold(): code for code, term in _meshes(ctx, browse) if code}


def _mesh_concept(code: str | None, term: str) -> dict[str, Any]:
    # Without its id a MeSH term is text: a coding needs a code (cod-1).
    return concept([mesh_coding(code, term)] if code else [], term)


def _conditions(ctx: Ctx, facts: Facts) -> None:
    conds = ctx.module("conditionsModule")
    mesh = mesh_terms(ctx, "conditionBrowseModule")
    named = set()
    for name in conds.get("conditions") or []:
        code = mesh.get(name.casefold())
        named.add(name.casefold())
        facts.conditions.append(concept([mesh_coding(code, name)] if code else [], name))
    # The MeSH conditions CT.gov derived from the record (most differ from the stated text).
    derived = [(code, term) for code, term in _meshes(ctx, "conditionBrowseModule")
               if term.casefold() not in named]
    facts.conditions += [_mesh_concept(code, term) for code, term in derived]
    if any(code is None for code, _ in derived):
        ctx.warn("derived MeSH condition terms without their MeSH ids (legacy XML): kept as "
                 "condition text, not coded")
    facts.keywords = [{"text": k} for k in conds.get("keywords") or []]
    # Their MeSH ancestors are the broader headings CT.gov files the study under: keywords.
    seen: set[str] = set()
    for browse in ("conditionBrowseModule", "interventionBrowseModule"):
        for code, term in _meshes(ctx, browse, "ancestors"):
            if term.casefold() not in seen:
                seen.add(term.casefold())
                facts.keywords.append(_mesh_concept(code, term))


def _arms(ctx: Ctx, facts: Facts) -> None:
    module = ctx.module("armsInterventionsModule")
    mesh = mesh_terms(ctx, "interventionBrowseModule")
    labelled = []
    for item in module.get("interventions") or []:
        resource = intervention(ctx, item, mesh)
        facts.interventions.append((resource, intervention_concept(resource["title"], mesh)))
        label = f"{display(item.get('type') or 'OTHER')}: {resource['title']}"
        labelled.append((label, set(item.get("armGroupLabels") or []), resource))
    named = {r["title"].casefold() for r, _ in facts.interventions}
    facts.focus_mesh = [_mesh_concept(code, term)
                        for code, term in _meshes(ctx, "interventionBrowseModule")
                        if term.casefold() not in named]
    for arm in module.get("armGroups") or []:
        name = arm.get("label")
        if not name:
            ctx.warn("an armGroups entry has no label: named '(unlabelled arm)'")
            name = "(unlabelled arm)"
        kind = arm.get("type")
        arm_type = None
        if kind:
            hl7 = mapped_coding("ctgov-arm-type", kind)
            arm_type = (concept([hl7], display(kind)) if hl7 else
                        _enum_concept(ctx, "ArmGroupType", kind, "Arm Type"))
        names = {n.casefold() for n in arm.get("interventionNames") or []}
        exposures, seen = [], set()
        for label, arms, resource in labelled:
            if name in arms or label.casefold() in names:
                exposures.append({"reference": reference(resource)["reference"],
                                  "type": "EvidenceVariable", "display": label})
                seen.add(label.casefold())
        for other in arm.get("interventionNames") or []:
            if other.casefold() not in seen:  # named by the arm, described nowhere: keep name
                exposures.append({"type": "EvidenceVariable", "display": other})
        facts.arms.append({"name": name, "type": arm_type,
                           "description": arm.get("description"), "exposures": exposures})


def _objectives(ctx: Ctx, facts: Facts) -> None:
    """SDTM TS objectives (OBJPRIM, OBJSEC, OBJEXP; read into x-sdtm.objectives): CT.gov has no
    objectives, FHIR does."""
    extra = ctx.module("x-sdtm")
    for item in extra.get("objectives") or []:
        kind = item.get("type")
        if item.get("text") and kind in ("primary", "secondary", "exploratory"):
            facts.objectives.append({"text": item["text"], "type": concept(
                [coding(OBJECTIVE_TYPE, kind, kind.title())])})


def _outcomes(ctx: Ctx, facts: Facts) -> None:
    _objectives(ctx, facts)
    module = ctx.module("outcomesModule")
    # CT.gov "other pre-specified" outcomes are the exploratory ones of the HL7 objective types.
    for name, code in (("primaryOutcomes", "primary"), ("secondaryOutcomes", "secondary"),
                       ("otherOutcomes", "exploratory")):
        for outcome in module.get(name) or []:
            text = "\n\n".join(t for t in (
                outcome.get("description"),
                f"Time frame: {outcome['timeFrame']}" if outcome.get("timeFrame") else None)
                if t)
            facts.outcomes.append({
                "name": outcome.get("measure"),
                "type": concept([coding(OBJECTIVE_TYPE, code, code.title())]),
                "description": text or None})
