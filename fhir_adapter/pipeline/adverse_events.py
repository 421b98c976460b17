"""The adverse-event pipeline behind `map adverse-events` and `load adverse-events`: open the
source, map each record, validate, dedupe the shared Medication, and keep what the summary
needs. Data-quality findings are reported (and tag the event), or refuse the row under
`strict`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..findings import RULES
from ..keyset import KeySet
from ..output import invalid_error
from ..validation import FhirVersion, validate
from .checks import findings_error
from .report import Reporter

SHOWN_ERRORS = 20  # bad rows listed one by one; the rest are counted


class LoadReport:
    """What a load did: counts for the summary (kept as counters, so memory stays flat),
    warnings grouped by text, bad rows."""

    def __init__(self) -> None:
        self.events = 0
        self.counts: dict[str, Counter[str]] = {k: Counter() for k in (
            "seriousness", "criteria met", "severity", "CTCAE grade", "outcome", "relatedness")}
        self.subjects = KeySet()  # compact: a million-row file keeps memory flat
        self.warnings: Counter[str] = Counter()
        self.first_row: dict[str, str] = {}
        self.errors: list[InputError] = []
        self.skipped: list[InputError] = []
        self.findings: Counter[str] = Counter()  # rule -> rows
        self.source: Any = None  # the AdverseEventSource, once opened

    def warn(self, text: str, where: str) -> None:
        self.warnings[text] += 1
        self.first_row.setdefault(text, where)

    def count(self, facts: dict[str, Any]) -> None:
        """Add one event's facts (`safety_facts`, i.e. `fhir_to_record`, of what was written)
        to the counts."""
        self.events += 1
        serious = {True: "serious", False: "non-serious", None: "not given"}[facts["serious"]]
        self.counts["seriousness"][serious] += 1
        for flag, met in facts["criteria"].items():
            if met:
                self.counts["criteria met"][_criterion(flag)] += 1
        self.counts["severity"][_label(facts["severity"])] += 1
        grade = facts["grade"]
        self.counts["CTCAE grade"][f"grade {grade}" if grade else "not given"] += 1
        self.counts["outcome"][_label(facts["outcome"])] += 1
        self.counts["relatedness"][_label(facts["relatedness"])] += 1

    def summary(self, version: FhirVersion, source: str, kind: str) -> list[str]:
        """The summary lines: events by seriousness, criteria, severity, grade, outcome."""
        lines = [f"adverse events: {self.events} FHIR {version} AdverseEvent(s) from {source} "
                 f"({kind}); {len(self.subjects)} subject(s); {len(self.skipped)} invalid row(s) "
                 "skipped"]
        order = {"seriousness": ["serious", "non-serious", "not given"],
                 "severity": ["mild", "moderate", "severe", "not given"],
                 "CTCAE grade": [f"grade {g}" for g in range(1, 6)] + ["not given"]}
        for label, counts in self.counts.items():
            if not counts and label != "criteria met":
                continue
            if label == "criteria met" and not self.counts["seriousness"]["serious"]:
                continue
            keys = order.get(label) or sorted(counts, key=lambda k: (-counts[k], k))
            text = " | ".join(f"{k} {counts[k]}" for k in keys if counts[k]) or "none given"
            lines.append(f"  {label:<12} {text}")
        if self.findings:
            text = " | ".join(f"{r} {self.findings[r]}" for r in RULES if self.findings[r])
            lines.append(f"  {'findings':<12} {text} (mapped as recorded, tagged)")
        return lines


def _label(term: str | None) -> str:
    return term.lower() if term else "not given"


def _criterion(flag: str | None) -> str:
    """'AESHOSP' -> 'requires inpatient hospitalization' (the ConceptMap's target name)."""
    from ..conceptmaps import translate

    targets = translate("sdtm-ae-seriousness-criteria", flag or "")
    return targets[0].display.lower() if targets and targets[0].display else str(flag)


def adverse_event_resources(file: Path, version: FhirVersion, report: LoadReport, *,
                            supplemental: Path | None = None, study: str | None = None,
                            timezone: str | None = None, intervention: str | None = None,
                            skip_invalid: bool = False, tally: bool = True,
                            strict: bool = False, reporter: Reporter | None = None,
                            records: Iterable[Any] | None = None,
                            passed_on: Callable[[Iterable[Any]], Iterator[Any]] | None = None
                            ) -> Iterator[dict[str, Any]]:
    """Validated resources of one adverse-event file; bad rows stop the load at the end (so
    every one is reported) unless `skip_invalid`. Findings go to `reporter` and are counted
    in `report`; under `strict` they make the row bad. `tally`: count events, subjects and
    their facts for report.summary (the store loader, which prints no summary, leaves it:
    ~5% of its mapping). `records`: the file's records as another producer read them (a
    parallel load parses each file once, parallel.Relay), instead of reading the file;
    `passed_on` wraps the records read here (that other producer's sender)."""
    from ..mapping.adverse_event import map_adverse_event
    from ..mapping.adverse_event_inverse import safety_facts
    from ..sources.adverse_event import open_adverse_events

    if records is None:
        source = open_adverse_events(file, supplemental, study)
        report.source = source
        records = source.records if passed_on is None else passed_on(source.records)
    shared: set[str] = set()  # the study intervention's Medication: once per output
    events = KeySet(_capacity(file))  # AdverseEvent id -> row: a key given twice is an error
    subject = None  # the last subject counted (a subject's rows usually come together)
    for item in records:
        if not isinstance(item, InputError) and item.findings:
            refused = findings_error(item.findings, reporter, strict)
            if refused is not None:
                item = refused
            else:
                report.findings.update(f.rule for f in item.findings)
        if not isinstance(item, InputError):
            mapped = map_adverse_event(item, version, timezone=timezone,
                                       intervention=intervention)
            event = mapped.resources[0]
            if not events.add(event["id"], item.row):
                item = InputError(item.file, f"event {item.subject_id}|{item.event_key} is "
                                  f"already at row {events.get(event['id'])}", item.row,
                                  item.columns.get("event_key"))
        if isinstance(item, InputError):
            if skip_invalid:
                report.skipped.append(item)
            else:
                report.errors.append(item)
            continue
        for text in mapped.warnings:
            report.warn(text, f"{item.file}, row {item.row}")
        fresh = [event]
        for resource in mapped.resources[1:]:
            if resource["id"] not in shared:
                shared.add(resource["id"])
                fresh.append(resource)
        if tally:
            report.count(safety_facts(event, version))
            if item.subject_id != subject:
                subject = item.subject_id
                report.subjects.add(subject)
        for resource in fresh:
            issues = validate(resource, version, model="per-shape")
            if issues:
                raise invalid_error(resource, version, f"{item.file}, row {item.row}", issues)
            yield resource
    if report.errors:
        raise InputError(str(file), f"{len(report.errors)} invalid row(s): nothing written "
                         "(--skip-invalid maps the valid rows)",
                         rows=report.errors[:SHOWN_ERRORS],
                         more_rows=max(len(report.errors) - SHOWN_ERRORS, 0))


def _capacity(file: Path) -> int:
    """A KeySet size for the events of `file`: growing one costs a re-insert of every key, so
    it starts near its final size (rows take >= 150 bytes; a KeySet is at most half full)."""
    try:
        rows = file.stat().st_size // 150
    except OSError:
        rows = 0
    return min(max(2 * rows, 1024), 1 << 21)
