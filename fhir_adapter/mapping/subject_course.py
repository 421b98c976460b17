"""A subject's course through a study (consent, enrolment, disposition events) as FHIR
states: the R4 ResearchSubject.status and the R5 ResearchSubject.progress entries.

Each source event is translated with ConceptMaps (mappings/): SDTM DSDECOD by the
sdtm-dsdecod-to-* maps, our enrollment `status` by the enrollment-status-to-* maps. Events are
put in date order (a coarser date before a finer one on the same day; undated events last;
DSSEQ breaks ties); the state after the last event is the subject's status.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..conceptmaps import Target, translate
from ..dates import ParsedDate
from ..fhirversion import FhirVersion
from ..records import CourseEvent, EnrollmentRecord

R4_STATE = "http://hl7.org/fhir/research-subject-status"
R5_STATE = "http://terminology.hl7.org/CodeSystem/research-subject-state"
MILESTONE = "http://terminology.hl7.org/CodeSystem/research-subject-milestone"
REASON = "http://terminology.hl7.org/CodeSystem/state-change-reason"
STATE_MAPS = {("R4", "sdtm"): "sdtm-dsdecod-to-r4-subject-status",
              ("R4", "enrollment"): "enrollment-status-to-r4-subject-status",
              ("R5", "sdtm"): "sdtm-dsdecod-to-r5-subject-state",
              ("R5", "enrollment"): "enrollment-status-to-r5-subject-state"}
REASON_MAPS = {"sdtm": "sdtm-dsdecod-to-state-change-reason",
               "enrollment": "enrollment-status-to-state-change-reason"}
END_STATES = frozenset({"off-study", "ineligible", "withdrawn", "not-registered"})
_REGISTERED = frozenset({"on-study", "on-study-intervention", "on-study-observation",
                         "follow-up"})
# Reasons that make a subject who leaves before enrolment FHIR 'withdrawn' (left of their own
# accord) rather than 'not-registered' (any other reason).
_WITHDRAWAL = frozenset({"withdrawnConsent", "subjectRefusal", "refuseConsent",
                         "unwillingOrUnable"})
# The dates of a record read as events of the course: consent is the CDISC protocol milestone
# of that name, enrolment is our 'enrolled' status.
CONSENT_TERM, START_TERM = "INFORMED CONSENT OBTAINED", "enrolled"
# Displays of the states this module sets itself (the others come from the ConceptMaps).
DISPLAY = {"off-study": "Off-study", "withdrawn": "Withdrawn", "not-registered": "Not Registered",
           "on-study": "On-study", "candidate": "Candidate"}


@dataclass(frozen=True)
class Step:
    """One event of the course, translated: the state after it, the milestone it marks."""

    date: ParsedDate | None
    field: str  # source field of the date (for warnings)
    state: str | None
    state_display: str | None
    milestone: Target | None
    reason: Target | None
    reason_text: str | None


def course(record: EnrollmentRecord, version: FhirVersion, fields: dict[str, str],
           warn: list[str]) -> list[Step]:
    """The translated course in date order; the last step with a state has the status.

    `fields` names the record's date fields in the source (consent, start, end, event)."""
    events: list[tuple[int, CourseEvent, str]] = []
    src = (record.file, record.row)
    if record.consent_date:
        events.append((0, CourseEvent(CONSENT_TERM, "sdtm", "milestone", record.consent_date,
                                      None, 0.0, *src), fields["consent"]))
    if record.start_date:
        events.append((1, CourseEvent(START_TERM, "enrollment", "status", record.start_date,
                                      None, 0.0, *src), fields["start"]))
    events += [(2, e, fields["event"] if e.date is not record.end_date else fields["end"])
               for e in record.events]
    events.sort(key=lambda item: (item[1].date is None,
                                  item[1].date.sort_key() if item[1].date else (),
                                  item[0], item[1].seq))
    steps = [s for s in (_step(e, f, version, warn, rank < 2) for rank, e, f in events) if s]
    ongoing = any(e.category == "status" for e in record.events)
    if record.end_date and not ongoing and not any(s.state in END_STATES for s in steps):
        # Participation ended, with no disposition saying how. (An end date beside a status
        # that has not ended is a finding of the source: the status stays as recorded.)
        reason = _reason(record.end_reason, None, "enrollment")
        steps.append(Step(record.end_date, fields["end"], "off-study", DISPLAY["off-study"],
                          None, reason, record.end_reason))
    return _registration(record, steps)


def _step(event: CourseEvent, field: str, version: FhirVersion, warn: list[str],
          implicit: bool) -> Step | None:
    map_id = STATE_MAPS[(version, event.vocabulary)]
    targets = [t for t in translate(map_id, event.term) if t.code]
    system = R4_STATE if version == "R4" else R5_STATE
    state = next((t for t in targets if t.system == system), None)
    milestone = next((t for t in targets if t.system == MILESTONE), None)
    if state is None and milestone is None:
        label = "DSDECOD" if event.vocabulary == "sdtm" else "status"
        warn.append(f"{label} {event.term!r} is not in ConceptMap {map_id}: event not used")
        return None
    # SDTM: DSDECOD is the coded reason, DSTERM (the verbatim reason) its text, else DSDECOD;
    # our format: end_reason may be a CDISC term (then coded) and is the text. The terms this
    # module stands in for dates have no text.
    sdtm = event.vocabulary == "sdtm"
    reason = _reason(None if sdtm else event.text, event.term, event.vocabulary)
    text = event.text or (event.term if sdtm and not implicit else None)
    if sdtm and reason is None and event.text and event.text != event.term:
        text = f"{event.term}: {event.text}"  # no coding holds DSDECOD: the text does
    return Step(event.date, field, state.code if state else None,
                state.display if state else None, milestone, reason, text)


def _reason(text: str | None, term: str | None, vocabulary: str) -> Target | None:
    """A coded reason: free text that is a CDISC disposition term, else the event's term."""
    for code, vocab in ((text, "sdtm"), (term, vocabulary)):
        if code:
            found = [t for t in translate(REASON_MAPS[vocab], code) if t.code]
            if found:
                return found[0]
    return None


def _registration(record: EnrollmentRecord, steps: list[Step]) -> list[Step]:
    """FHIR 'withdrawn' means withdrawn before registration: a subject who was never enrolled
    and whose course ends off-study is 'withdrawn' or 'not-registered' instead."""
    states = [i for i, s in enumerate(steps) if s.state]
    if not states or steps[states[-1]].state != "off-study":
        return steps
    registered = bool(record.start_date) or any(
        s.state in _REGISTERED or (s.milestone and s.milestone.code == "Randomized")
        for s in steps)
    if registered:
        return steps
    last = steps[states[-1]]
    code = "withdrawn" if last.reason and last.reason.code in _WITHDRAWAL else "not-registered"
    changed = replace(last, state=code, state_display=DISPLAY[code])
    return steps[:states[-1]] + [changed] + steps[states[-1] + 1:]


def status(steps: list[Step]) -> str | None:
    """The state after the last event, or None when no event has one."""
    return next((s.state for s in reversed(steps) if s.state), None)
