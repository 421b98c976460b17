"""FHIR search -> SQL over the typed index tables (R4 search.html semantics).

Each parameter occurrence becomes `r.res_id IN (SELECT res_id FROM idx_<type> WHERE
fhir_version = :v AND res_type = :t AND param = :p AND <value match>)`, which the composite
indexes (fhir_version, res_type, param, value...) answer in O(log n); repeated parameters
AND, comma-separated values OR. Modifiers: :missing (all), :not, :text, :in, :not-in and
:of-type (token), :exact and :contains (string), :below and :above (uri), :[type] and
:identifier (reference); chains and `_has` in chains.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from types import SimpleNamespace
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    false,
    func,
    not_,
    or_,
    select,
    true,
    union_all,
)

import fhir_adapter.store.chains as chains

from .. import valuesets
from ..errors import BadRequest
from .base import SearchQuery
from .indexing import IDENTIFIER, UNINDEXED
from .schema import index_tables, resources
from .searchparams import TABLE_OF, SearchParam, search_params
from .values import (
    EPOCH,
    PREFIX_LENGTH,
    date_range,
    epoch_to_instant,
    normalise,
    of_type_key,
    split_reference,
)

# Result-control parameters: the gateway's business, never filters.
CONTROL = frozenset({"_count", "_sort", "_total", "_include", "_revinclude", "_summary",
                     "_elements", "_format", "_pretty", "_offset", "_contained",
                     "_containedType", "_since", "_at", "_getpages"})
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
MODIFIERS = {"token": {"not", "text", "in", "not-in", "of-type"}, "uri": {"below", "above"},
             "string": {"exact", "contains"}}
NEGATED = {"not": "", "not-in": "in"}  # modifier -> the positive form it negates
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_TOP = chr(0x10FFFF)  # above any character: prefix p matches [p, p + _TOP)


@dataclass
class Plan:
    """WHERE conditions on `resources` and ORDER BY of a search, plus what was ignored."""

    where: list[ColumnElement[bool]] = field(default_factory=list)
    order_by: list[Any] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def split_escaped(text: str, sep: str) -> list[str]:
    """Split on `sep` not preceded by a backslash; escapes stay for the next split."""
    if "\\" not in text:  # the usual case: no escapes at all
        return text.split(sep)
    parts, current, i = [], [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current.append(text[i:i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def unescape(text: str) -> str:
    """'a\\,b' -> 'a,b' (FHIR escapes , | $ and \\ in search values)."""
    if "\\" not in text:
        return text
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            i += 1
        out.append(text[i])
        i += 1
    return "".join(out)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _prefix(value: str) -> tuple[str, str]:
    if value[:2] in PREFIXES and len(value) > 2 and (value[2].isdigit() or value[2] in "-+."):
        return value[:2], value[2:]
    return "eq", value


def _in_value_set(t: Any, raw: str) -> ColumnElement[bool]:
    """`:in` (and, negated by the caller, `:not-in`): the ValueSet's codes, one IN per code
    system, answered by the (code, system) index. An unknown ValueSet is a 400: matching
    nothing (or, negated, everything) would be a silent answer to a typo."""
    try:
        codes = valuesets.expand(unescape(raw))
    except valuesets.UnknownValueSet as exc:
        raise BadRequest(str(exc)) from exc
    by_system: dict[str, list[str]] = {}
    for system, code, _ in codes:
        by_system.setdefault(system, []).append(code)
    return or_(false(), *(and_(t.c.code.in_(found), t.c.system == system)
                          for system, found in by_system.items()))


def _of_type(t: Any, raw: str) -> ColumnElement[bool]:
    """`identifier:of-type=system|code|value`: an Identifier whose type has that coding, with
    that value (the rows indexing writes under `<param>:of-type`, values.of_type_key)."""
    parts = split_escaped(raw, "|")
    # a value holding an unescaped `|` keeps it, as the plain token search's code does
    system, code, value = [unescape(p) for p in (*parts[:2], "|".join(parts[2:]))] \
        if len(parts) >= 3 else ("", "", "")
    if not (system and code and value):
        raise BadRequest(f":of-type takes system|code|value (a coding of Identifier.type, then "
                         f"the identifier's value), all three present; got {raw!r}")
    return and_(t.c.code == value, t.c.system == of_type_key(system, code))


def _token(t: Any, raw: str, modifier: str) -> ColumnElement[bool]:
    if modifier == "text":
        return t.c.text.like(_like_escape(normalise(unescape(raw))) + "%", escape="\\")
    if modifier == "in":
        return _in_value_set(t, raw)
    if modifier == "of-type":
        return _of_type(t, raw)
    parts = split_escaped(raw, "|")
    if len(parts) == 1:
        return t.c.code == unescape(raw)
    system, code = unescape(parts[0]), unescape("|".join(parts[1:]))
    cond = t.c.system.is_(None) if system == "" else t.c.system == system
    return and_(cond, t.c.code == code) if code else cond


def _uri(t: Any, raw: str, modifier: str) -> ColumnElement[bool]:
    value = unescape(raw)
    if modifier == "below":
        return and_(t.c.code >= value, t.c.code < value + _TOP)
    if modifier == "above":
        cut = [value[:i] for i, ch in enumerate(value) if ch == "/" and value[i - 1:i] != "/"]
        return t.c.code.in_([*cut, value])
    return t.c.code == value


def _string(t: Any, raw: str, modifier: str) -> ColumnElement[bool]:
    value = unescape(raw)
    norm = normalise(value)
    if modifier == "contains":
        return t.c.norm.like("%" + _like_escape(norm) + "%", escape="\\")
    head = norm[:PREFIX_LENGTH]
    if modifier == "exact":
        return and_(t.c.prefix == head, t.c.exact == value)
    cond = and_(t.c.prefix >= head, t.c.prefix < head + _TOP)
    if len(norm) > PREFIX_LENGTH:
        cond = and_(cond, func.substr(t.c.norm, 1, len(norm)) == norm)
    return cond


def _date(t: Any, raw: str, modifier: str) -> ColumnElement[bool]:
    prefix, text = _prefix(unescape(raw))
    try:
        lo, hi = date_range(text)
    except ValueError as exc:
        raise BadRequest(f"invalid date search value {raw!r}") from exc
    inside = and_(t.c.low >= lo, t.c.high <= hi)
    if prefix == "ap":  # widened by 10% of the distance to now
        now = (datetime.now(UTC) - EPOCH).total_seconds() * 1e6
        gap = int(abs(now - lo) * 0.1)
        return and_(t.c.low <= hi + gap, t.c.high >= lo - gap)
    # Each form leads with a range on `low` or `high` that the condition implies (low <= high
    # always), so the (..., low) or (..., high) index bounds the rows read.
    return {
        "eq": and_(t.c.low >= lo, t.c.low <= hi, inside), "ne": not_(inside),
        "gt": t.c.high > hi, "lt": t.c.low < lo,
        "ge": and_(t.c.high >= lo, or_(t.c.high > hi, inside)),
        "le": and_(t.c.low <= hi, or_(t.c.low < lo, inside)),
        "sa": t.c.low > hi, "eb": t.c.high < lo,
    }[prefix]


def _numeric(low: Any, high: Any, raw: str) -> ColumnElement[bool]:
    prefix, text = _prefix(raw)
    try:
        if not _NUMBER.fullmatch(text):  # Decimal() would take other scripts' digits
            raise InvalidOperation(text)
        number = Decimal(text)
        exponent = number.as_tuple().exponent
    except InvalidOperation as exc:
        raise BadRequest(f"invalid number search value {raw!r}") from exc
    n = float(number)
    half = 0.5 * 10.0 ** (exponent if isinstance(exponent, int) else 0)
    inside = and_(low >= n - half, high < n + half)
    if prefix == "ap":
        return and_(low <= n + abs(n) * 0.1, high >= n - abs(n) * 0.1)
    return {"eq": inside, "ne": not_(inside), "gt": high > n, "sa": low > n, "lt": low < n,
            "eb": high < n, "ge": high >= n, "le": low <= n}[prefix]


def _number(t: Any, raw: str, modifier: str) -> ColumnElement[bool]:
    return _numeric(t.c.value, t.c.value, unescape(raw))


def _quantity(t: Any, raw: str, modifier: str) -> ColumnElement[bool]:
    parts = [unescape(p) for p in split_escaped(raw, "|")]
    cond = _numeric(t.c.low, t.c.high, parts[0])
    system, code = (parts + ["", ""])[1:3]
    if system:
        cond = and_(cond, t.c.system == system)
    if code:
        cond = and_(cond, t.c.code == code if system else or_(t.c.code == code,
                                                               t.c.unit == code))
    return cond


def _reference(t: Any, raw: str, modifier: str) -> ColumnElement[bool]:
    value = unescape(raw)
    if modifier:  # subject:Patient=123
        rid = value.rsplit("/", 1)[-1]
        return and_(t.c.target_type == modifier, t.c.target_id == rid)
    if "://" in value or value.startswith("urn:"):
        return t.c.url == value.split("|", 1)[0]
    rtype, rid = split_reference(value)
    if rtype:
        return and_(t.c.target_type == rtype, t.c.target_id == rid)
    return t.c.target_id == rid if rid else false()


def _by_reference_identifier(param: SearchParam, value: str,
                             query: SearchQuery) -> ColumnElement[bool]:
    """`subject:identifier=sys|val`: Reference.identifier (the reference's own logical id,
    indexed as token rows under `<code>:identifier`: indexing._add_identifiers), matched as
    a token; never the target's identifier (that is the chain `subject.identifier`)."""
    t = index_tables["token"]
    sub = select(t.c.res_id).where(*_scope(t, query, IDENTIFIER.format(param.code)),
                                   or_(*(_token(t, v, "") for v in split_escaped(value, ","))))
    return resources.c.res_id.in_(sub)


MATCHERS = {"token": _token, "uri": _uri, "string": _string, "date": _date,
            "number": _number, "quantity": _quantity, "reference": _reference}


def _scope(t: Any, query: SearchQuery, param: str) -> list[ColumnElement[bool]]:
    return [t.c.fhir_version == query.version, t.c.res_type == query.resource_type,
            t.c.param == param]


def modifiers(param: SearchParam) -> list[str]:
    """The modifiers `param` takes here, as the CapabilityStatement lists them."""
    if param.code == "_id":  # _by_id: the id is no coding (no :in) and has no type
        return ["missing", "not", "text"]
    found = ["missing", *sorted(MODIFIERS.get(param.type, ()))]
    if param.element != "Identifier" and "of-type" in found:
        found.remove("of-type")
    if param.type == "reference":
        found += ["[type]", "identifier"]
    return found


def _check_modifier(param: SearchParam, modifier: str) -> None:
    if modifier in ("", "missing") or (modifier in MODIFIERS.get(param.type, ())
                                       and modifier in modifiers(param)):
        return
    if param.type == "reference" and modifier == "identifier":
        return
    if param.type == "reference" and modifier[:1].isupper():
        if param.targets and modifier not in param.targets:
            raise BadRequest(f"{param.code}:{modifier}: {param.code} refers to "
                             f"{', '.join(param.targets)}, not {modifier}")
        return
    raise BadRequest(f"modifier :{modifier} is not supported on the {param.type} "
                     f"parameter {param.code!r}")


def _composite(param: SearchParam, query: SearchQuery, raw: str) -> Select:
    values = split_escaped(raw, "$")
    if len(values) != len(param.components):
        raise BadRequest(f"{param.code} expects {len(param.components)} values joined by $")
    tables = [index_tables[TABLE_OF[c.type or "token"]].alias(f"c{n}")
              for n, c in enumerate(param.components)]
    first = tables[0]
    joined: Any = first
    for t in tables[1:]:
        joined = joined.join(t, and_(t.c.res_type == first.c.res_type,
                                     t.c.res_id == first.c.res_id,
                                     t.c.fhir_version == first.c.fhir_version,
                                     t.c.grp == first.c.grp))
    conds = []
    for n, (t, comp, value) in enumerate(zip(tables, param.components, values, strict=True)):
        conds += _scope(t, query, f"{param.code}${n}")
        conds.append(MATCHERS[comp.type or "token"](t, value, ""))
    return select(first.c.res_id).select_from(joined).where(*conds)


def id_values(value: str) -> list[str] | None:
    """The ids an `_id` value names, as the token it is: 'a,b', '|a' (no system: ids have
    none); 'sys|a' names none; None when '|' names every one."""
    ids = []
    for item in split_escaped(value, ","):
        parts = split_escaped(item, "|")
        if len(parts) == 1:
            ids.append(unescape(item))
        elif unescape(parts[0]) == "":
            code = unescape("|".join(parts[1:]))
            if not code:
                return None
            ids.append(code)
    return ids


def _by_id(modifier: str, value: str) -> ColumnElement[bool]:
    """`_id`, from resources.res_id (indexing.UNINDEXED), as if it had index rows."""
    if modifier == "missing":
        return false() if value == "true" else true()
    ids = [] if modifier == "text" else id_values(value)  # :text: an id has no display
    cond = true() if ids is None else resources.c.res_id.in_(ids) if ids else false()
    return not_(cond) if modifier == "not" else cond


class _InstantColumn:
    """resources.last_updated (values.instant_text: milliseconds, fixed width, so text order
    is time order) as the `low` (offset 0) or `high` (offset 999) column of a date index
    row would hold it: the first or last microsecond of its millisecond. _date compares
    these columns with epoch microseconds; each comparison becomes one on the text."""

    def __init__(self, offset: int) -> None:
        self.offset = offset

    def __ge__(self, micros: int) -> ColumnElement[bool]:  # type: ignore[override]
        return _at_or_after(-(-(micros - self.offset) // 1000))

    def __gt__(self, micros: int) -> ColumnElement[bool]:  # type: ignore[override]
        return self >= micros + 1

    def __le__(self, micros: int) -> ColumnElement[bool]:  # type: ignore[override]
        return _at_or_before((micros - self.offset) // 1000)

    def __lt__(self, micros: int) -> ColumnElement[bool]:  # type: ignore[override]
        return self <= micros - 1


def _instant(millis: int) -> str | None:
    try:
        return epoch_to_instant(millis * 1000)
    except OverflowError:  # outside years 1-9999, where no instant is
        return None


def _at_or_after(millis: int) -> ColumnElement[bool]:
    text = _instant(millis)
    if text is None:
        return true() if millis < 0 else false()
    return resources.c.last_updated >= text


def _at_or_before(millis: int) -> ColumnElement[bool]:
    text = _instant(millis)
    if text is None:
        return false() if millis < 0 else true()
    return resources.c.last_updated <= text


_LAST_UPDATED = SimpleNamespace(c=SimpleNamespace(low=_InstantColumn(0),
                                                  high=_InstantColumn(999)))


def _by_last_updated(modifier: str, value: str) -> ColumnElement[bool]:
    """`_lastUpdated`, from resources.last_updated (indexing.UNINDEXED), as if it had the
    date index rows of its instant; the (res_type, last_updated) index answers it."""
    if modifier == "missing":
        return false() if value == "true" else true()
    return or_(*(_date(_LAST_UPDATED, v, "") for v in split_escaped(value, ",")))


_ANSWERED = {"_id": _by_id, "_lastUpdated": _by_last_updated}


def _condition(param: SearchParam, modifier: str, value: str,
               query: SearchQuery) -> ColumnElement[bool]:
    r = resources
    if modifier == "missing" and value not in ("true", "false"):
        raise BadRequest(f"{param.code}:missing takes true or false")
    if param.code in UNINDEXED:
        return _ANSWERED[param.code](modifier, value)
    if modifier == "identifier":
        return _by_reference_identifier(param, value, query)
    if modifier == "missing":
        code = f"{param.code}$0" if param.type == "composite" else param.code
        t = index_tables[TABLE_OF[param.components[0].type or "token"]
                         if param.type == "composite" else TABLE_OF[param.type]]
        present = select(t.c.res_id).where(*_scope(t, query, code))
        return r.c.res_id.not_in(present) if value == "true" else r.c.res_id.in_(present)
    ors = split_escaped(value, ",")
    if param.type == "composite":
        return r.c.res_id.in_(union_all(*(_composite(param, query, v) for v in ors)))
    t = index_tables[TABLE_OF[param.type]]
    match = MATCHERS[param.type]
    # :not and :not-in: every resource without a match, those with no value at all included
    # (:not-in read as :not is): NOT IN the matches of the positive form.
    negated = NEGATED.get(modifier)
    code = f"{param.code}:of-type" if modifier == "of-type" else param.code
    sub = select(t.c.res_id).where(*_scope(t, query, code),
                                   or_(*(match(t, v, modifier if negated is None else negated)
                                         for v in ors)))
    return r.c.res_id.in_(sub) if negated is None else r.c.res_id.not_in(sub)


def _unknown(plan: Plan, query: SearchQuery, name: str, why: str) -> None:
    if query.strict:
        raise BadRequest(f"unknown search parameter {name!r} for {query.resource_type} "
                         f"({query.version}): {why} (Prefer: handling=lenient ignores it)")
    plan.ignored.append(name)


def _sort_key(query: SearchQuery, key: str, plan: Plan) -> Any:
    desc = key.startswith("-")
    code = key.lstrip("-")
    r = resources
    if code == "_id":
        expr: Any = r.c.res_id
    elif code == "_lastUpdated":
        expr = r.c.last_updated
    else:
        param = search_params(query.version, query.resource_type).get(code)
        if param is None or param.type == "composite":
            _unknown(plan, query, f"_sort={key}", "cannot sort by it")
            return None
        t = index_tables[TABLE_OF[param.type]]
        col: Any = t.c[{"token": "code", "uri": "code", "string": "norm", "reference": "url",
                        "number": "value", "quantity": "low",
                        "date": "high" if desc else "low"}[param.type]]
        if param.type == "reference":  # a relative reference's url is left out (values.py)
            col = func.coalesce(col, t.c.target_type + "/" + t.c.target_id)
        agg = func.max if desc else func.min
        expr = select(agg(col)).where(
            t.c.res_type == r.c.res_type, t.c.res_id == r.c.res_id,
            t.c.fhir_version == query.version, t.c.param == code).scalar_subquery()
    return expr.desc().nulls_last() if desc else expr.asc().nulls_last()


def _filter(query: SearchQuery, name: str, value: str, depth: int = 0) -> ColumnElement[bool]:
    """The condition on `resources` of one parameter of `query`'s type: plain, chained or
    `_has` (chains.py follows the links and calls back here for the parameter at the end).
    Raises chains.Unknown for a parameter it cannot answer, BadRequest for a bad one."""
    if chains.is_reverse(name):
        return chains.reverse(query, name, value, depth, _filter)
    if chains.is_chain(name):
        return chains.forward(query, name, value, depth, _filter, _check_modifier)
    code, _, modifier = name.partition(":")
    param = search_params(query.version, query.resource_type).get(code)
    if param is None:
        raise chains.Unknown(f"{code!r} is not a supported search parameter of "
                             f"{query.resource_type}")
    _check_modifier(param, modifier)
    return _condition(param, modifier, value, query)


def plan(query: SearchQuery) -> Plan:
    """Conditions and order for `query`; raises errors.BadRequest on bad values/modifiers."""
    out = Plan()
    for name, value in query.params:
        if name.partition(":")[0] in CONTROL:
            continue
        try:
            out.where.append(_filter(query, name, value))
        except chains.Unknown as exc:
            _unknown(out, query, name, str(exc))
    for key in query.sort:
        order = _sort_key(query, key, out)
        if order is not None:
            out.order_by.append(order)
    out.order_by.append(resources.c.res_id.asc())  # stable pages: id breaks every tie
    return out
