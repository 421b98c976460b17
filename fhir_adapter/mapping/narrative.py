"""Generated narrative (Resource.text, status `generated`) for what an EHR displays: a heading
and a table of the facts a reader looks for first, taken from the resource itself (so it can
never say more than the data). Safe XHTML by construction: every value is escaped, and only
the elements and attributes FHIR's narrative rules allow are written (div with the XHTML
namespace, p, b, table, tr, th, td), so it passes the schema and the validator's XHTML check.

Each mapper applies it in one place (`added`); the per-type rows are data below."""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

Row = tuple[str, Callable[[dict[str, Any]], str | None]]
XHTML = "http://www.w3.org/1999/xhtml"
_BEFORE_TEXT = frozenset(("resourceType", "id", "meta", "implicitRules", "language"))


def _cc(value: Any) -> str | None:
    """Text of a CodeableConcept (or CodeableReference.concept, or Coding)."""
    if not isinstance(value, dict):
        return None
    if "concept" in value:
        value = value["concept"]
    if value.get("text"):
        return str(value["text"])
    codings = value.get("coding") or ([value] if "code" in value else [])
    for c in codings:
        if c.get("display") or c.get("code"):
            return str(c.get("display") or c.get("code"))
    return None


def _ccs(values: Any) -> str | None:
    texts = [t for t in (_cc(v) for v in values or []) if t]
    return "; ".join(dict.fromkeys(texts)) or None


def _ref(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    return value.get("display") or value.get("reference")


def _ids(resource: dict[str, Any]) -> str | None:
    return "; ".join(str(i["value"]) for i in resource.get("identifier") or []
                     if i.get("value")) or None


def _period(value: Any) -> str | None:
    if not isinstance(value, dict) or not (value.get("start") or value.get("end")):
        return None
    if value.get("start") and value.get("end"):
        return f"{value['start']} to {value['end']}"
    return f"from {value['start']}" if value.get("start") else f"until {value['end']}"


def _study_status(r: dict[str, Any]) -> str | None:
    progress = r.get("progressStatus") or []
    state = _cc(progress[0].get("state")) if progress else None
    return state or r.get("status")


def _subject_state(r: dict[str, Any]) -> str | None:
    states = [_cc(p.get("subjectState")) for p in r.get("progress") or []
              if p.get("subjectState")]
    return (states[-1] if states else None) or r.get("status")


def _name(r: dict[str, Any]) -> str | None:
    names = r.get("name")
    if isinstance(names, str):
        return names
    for n in names or []:
        text = n.get("text") or " ".join([*n.get("given", []), n.get("family", "")]).strip()
        if text:
            return text
    return None


def _address(r: dict[str, Any]) -> str | None:
    a = r.get("address")
    if not isinstance(a, dict):
        return None
    return a.get("text") or ", ".join(a[k] for k in ("city", "state", "country") if a.get(k)) \
        or None


def _ae_date(r: dict[str, Any]) -> str | None:
    return r.get("date") or _period(r.get("occurrencePeriod")) or r.get("occurrenceDateTime")


def _deceased(r: dict[str, Any]) -> str | None:
    if "deceasedDateTime" in r:
        return f"deceased {r['deceasedDateTime']}"
    return "deceased" if r.get("deceasedBoolean") else None


ROWS: dict[str, tuple[Callable[[dict[str, Any]], str | None], list[Row]]] = {
    "ResearchStudy": (lambda r: r.get("title"), [
        ("Identifier", _ids), ("Status", _study_status), ("Phase", lambda r: _cc(r.get("phase"))),
        ("Conditions", lambda r: _ccs(r.get("condition"))),
        ("Period", lambda r: _period(r.get("period"))),
        ("Part of", lambda r: _ref((r.get("partOf") or [None])[0]))]),
    "ResearchSubject": (_ids, [
        ("Study", lambda r: _ref(r.get("study"))),
        ("Subject", lambda r: _ref(r.get("individual") or r.get("subject"))),
        ("State", _subject_state), ("Period", lambda r: _period(r.get("period"))),
        ("Arm", lambda r: r.get("actualArm") or r.get("assignedArm")
         or r.get("actualComparisonGroup") or r.get("assignedComparisonGroup"))]),
    "Patient": (_ids, [
        ("Gender", lambda r: r.get("gender")), ("Born", lambda r: r.get("birthDate")),
        ("Deceased", _deceased), ("Country", lambda r: _address(
            {"address": (r.get("address") or [None])[0]}))]),
    "AdverseEvent": (lambda r: _cc(r.get("event") or r.get("code")), [
        ("Subject", lambda r: _ref(r.get("subject"))), ("When", _ae_date),
        ("Seriousness", lambda r: _cc(r.get("seriousness"))),
        ("Severity", lambda r: _cc(r.get("severity"))),
        ("Outcome", lambda r: _cc(r.get("outcome")) if isinstance(r.get("outcome"), dict)
         else _ccs(r.get("outcome"))),
        ("Study", lambda r: "; ".join(filter(None, map(_ref, r.get("study") or []))) or None)]),
    "Group": (lambda r: r.get("name") or r.get("title"), [
        ("Type", lambda r: r.get("type")), ("Description", lambda r: r.get("description")),
        ("Members", lambda r: str(r["quantity"]) if "quantity" in r else None),
        ("Criteria", lambda r: _ccs(c.get("code") for c in r.get("characteristic") or []))]),
    "Organization": (lambda r: r.get("name"), [("Identifier", _ids)]),
    "Location": (lambda r: r.get("name"), [("Address", _address),
                                          ("Status", lambda r: r.get("status"))]),
    "Practitioner": (_name, [("Identifier", _ids)]),
    "PractitionerRole": (lambda r: _ref(r.get("practitioner")), [
        ("Organization", lambda r: _ref(r.get("organization"))),
        ("Role", lambda r: _ccs(r.get("code")))]),
    "EvidenceVariable": (lambda r: r.get("title") or r.get("name"), [
        ("Description", lambda r: r.get("description"))]),
    "Medication": (lambda r: _cc(r.get("code")), []),
}


def _esc(text: str) -> str:
    # Element content needs &, < and > escaped; most values have none (mapping is hot).
    if "&" in text or "<" in text or ">" in text:
        return escape(text, quote=False)
    return text


# (heading, [(the row's opening markup, getter)]) per type: labels are constants, escaped once.
_MARKUP = {rtype: (heading, [(f"<tr><th>{escape(label)}</th><td>", get) for label, get in rows])
           for rtype, (heading, rows) in ROWS.items()}


def narrative(resource: dict[str, Any]) -> dict[str, str] | None:
    """The generated Narrative of `resource`, or None for a type we do not narrate."""
    spec = _MARKUP.get(resource["resourceType"])
    if spec is None:
        return None
    heading, rows = spec
    title = heading(resource) or resource.get("id") or ""
    cells = []
    for opening, get in rows:
        value = get(resource)
        if value:
            cells.append(f"{opening}{_esc(value)}</td></tr>")
    table = f"<table>{''.join(cells)}</table>" if cells else ""
    return {"status": "generated",
            "div": f'<div xmlns="{XHTML}"><p><b>{resource["resourceType"]}</b> '
                   f"{_esc(str(title))}</p>{table}</div>"}


def added(resource: dict[str, Any]) -> dict[str, Any]:
    """`resource` with its generated narrative in FHIR element order (after id and meta)."""
    text = narrative(resource)
    if text is None:
        return resource
    out: dict[str, Any] = {}
    rest = []
    for key, value in resource.items():
        if key in _BEFORE_TEXT:
            out[key] = value
        elif key != "text":
            rest.append((key, value))
    out["text"] = text
    out.update(rest)
    return out
