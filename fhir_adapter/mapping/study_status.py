"""The status module of a CT.gov study: R4 status and R5 progressStatus (current state,
overall-study period with actual/anticipated dates, primary completion), whyStopped, the
last-update date and the other registry dates (as a note)."""

from __future__ import annotations

from typing import Any, Protocol

from .study_common import (
    RS_STATUS,
    Ctx,
    coding,
    concept,
    display,
    fhir_date,
    mapped_coding,
    translate,
)


class StatusFacts(Protocol):
    """The part of study_facts.Facts that the status module fills (study_facts calls
    `status`, so this module names the fields instead of importing Facts)."""

    r4_status: str
    progress: list[dict[str, Any]]
    why_stopped: str | None
    period: dict[str, str]
    date: str | None
    notes: list[str]


R4_STATUS_FALLBACK = "in-review"


def _date_struct(ctx: Ctx, module: dict[str, Any], name: str
                 ) -> tuple[str | None, bool | None]:
    """(date, actual?) of a CT.gov date struct; actual is None when CT.gov gives no type."""
    struct = module.get(name) or {}
    value = struct.get("date")
    if value is not None and not fhir_date(value):
        ctx.warn(f"statusModule.{name}.date {value!r} is not a date: not mapped")
        return None, None
    kind = struct.get("type")
    return value, (kind == "ACTUAL") if kind in ("ACTUAL", "ESTIMATED") else None


def _state(state: dict[str, Any], actual: bool | None = None,
           period: dict[str, str] | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"state": state}
    if actual is not None:
        entry["actual"] = actual
    if period:
        entry["period"] = period
    return entry


def status(ctx: Ctx, facts: StatusFacts) -> None:
    """Fill the status facts; warn where the record gives no usable status."""
    module = ctx.module("statusModule")
    overall, last = module.get("overallStatus"), module.get("lastKnownStatus")
    effective, text, actual = overall, None, None
    if overall == "UNKNOWN":
        effective, actual = last, False
        text = f"Unknown status (last known: {display(last)})" if last else "Unknown status"
    r4 = translate("ctgov-overall-status-to-r4", effective) if effective else None
    state = mapped_coding("ctgov-overall-status-to-r5-progress", effective or "")
    if r4 and r4.code:
        facts.r4_status = r4.code
    elif ctx.version == "R4":
        why = ("statusModule.overallStatus missing" if not overall else
               "overallStatus UNKNOWN and no lastKnownStatus" if overall == "UNKNOWN" else
               f"overallStatus {effective!r} is not a CT.gov status")
        ctx.warn(f"{why}: R4 ResearchStudy.status set to {R4_STATUS_FALLBACK!r} "
                 "(fallback: R4 requires a status)")
    if overall and not state and not text:
        text = str(effective)
        if ctx.version == "R5":
            ctx.warn(f"overallStatus {effective!r} is not a CT.gov status: state kept as text")
    elif not overall and ctx.version == "R5":
        ctx.warn("statusModule.overallStatus missing: no progressStatus state")
    if state or text:
        facts.progress.append(_state(concept([state], text), actual))
    if module.get("whyStopped"):
        facts.why_stopped = module["whyStopped"]
    start, start_actual = _date_struct(ctx, module, "startDateStruct")
    end, end_actual = _date_struct(ctx, module, "completionDateStruct")
    facts.period = {k: v for k, v in (("start", start), ("end", end)) if v}
    overall_study = concept([coding(RS_STATUS, "overall-study", "Overall Study")])
    if start and end and start_actual != end_actual:
        # One actual flag cannot cover an actual start and an anticipated end: two entries.
        facts.progress.append(_state(overall_study, start_actual, {"start": start}))
        facts.progress.append(_state(overall_study, end_actual, {"end": end}))
    elif facts.period:
        facts.progress.append(_state(overall_study, start_actual if start else end_actual,
                                     facts.period))
    primary, primary_actual = _date_struct(ctx, module, "primaryCompletionDateStruct")
    if primary:
        facts.progress.append(_state({"text": "Primary completion"}, primary_actual,
                                     {"end": primary}))
    last_update = (module.get("lastUpdatePostDateStruct") or {}).get("date")
    facts.date = fhir_date(last_update)
    dates = []
    for name, label in (("statusVerifiedDate", "status verified"),
                        ("studyFirstSubmitDate", "first submitted"),
                        ("studyFirstSubmitQcDate", "first submitted that met QC criteria"),
                        ("studyFirstPostDateStruct", "first posted"),
                        ("resultsFirstSubmitDate", "results first submitted"),
                        ("resultsFirstSubmitQcDate", "results first submitted that met QC"),
                        ("resultsFirstPostDateStruct", "results first posted"),
                        ("dispFirstSubmitDate", "certification/extension first submitted"),
                        ("dispFirstSubmitQcDate", "certification/extension first met QC"),
                        ("dispFirstPostDateStruct", "certification/extension first posted"),
                        ("lastUpdateSubmitDate", "last update submitted"),
                        ("lastUpdatePostDateStruct", "last update posted")):
        value = module.get(name)
        if isinstance(value, dict):
            kind = f" ({value['type'].lower()})" if value.get("type") else ""
            value = f"{value.get('date')}{kind}" if value.get("date") else None
        if value:
            dates.append(f"{label} {value}")
    if dates:
        facts.notes.append("ClinicalTrials.gov record dates: " + "; ".join(dates) + ".")
