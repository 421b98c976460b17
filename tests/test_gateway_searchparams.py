"""Every search parameter the CapabilityStatement lists, in R4 and in R5, filters correctly.

The cases are generated: the parameters come from the CapabilityStatement, the values from
the data loaded here (the seed study, its enrollments and adverse events, the SDTM pilot
slice, the official HL7 examples, and gateway_data's synthetic resources for the elements
those leave empty). For each parameter the test picks the least common
value it finds, searches with it, and compares the ids the server returns with the ids an
independent oracle computes from the index values of every stored resource, following the
R4 search.html rules (token system|code, string prefix/:exact/:contains, date prefixes eq/lt/ge
against the value's implicit range, number precision, reference Type/id, composite $, and
:missing / :not). A parameter no loaded resource has a value for is still checked: every
resource of the type is `:missing=true`, none `:missing=false`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import gateway_data
import pytest
from conftest import FIXTURES
from gateway_fixtures import BASE, FHIR, app, database_url, official
from unindexed import rows_as_if_indexed

from fhir_adapter.gateway.capability import capability_statement
from fhir_adapter.gateway.terminology import map_store
from fhir_adapter.store.canonical import dumps, loads
from fhir_adapter.store.indexing import index_rows
from fhir_adapter.store.searchparams import search_params
from fhir_adapter.store.values import EPOCH, MAX_INSTANT, MIN_INSTANT, date_range, normalise

__all__ = ["app", "database_url"]
ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SDTM = FIXTURES / "sdtm" / "cdiscpilot01-slice"
R5_EXAMPLES = ("r5/ResearchStudy-example-ctgov-study-record.json",
               "r5/ResearchSubject-example-crossover-placebo-to-drug.json")


def _cases() -> Iterator[Any]:
    for version in ("R4", "R5"):
        statement = loads(capability_statement(version, BASE))
        for resource in statement["rest"][0]["resource"]:
            if resource["type"] == "SearchParameter":  # not in the store: its own oracle in
                continue  # test_gateway_own_searchparams.py, generated from this statement
            for param in resource.get("searchParam", []):
                yield pytest.param(version, resource["type"], param["name"], param["type"],
                                   id=f"{version}-{resource['type']}-{param['name']}")


# -- the data --------------------------------------------------------------------------------

def _ingest(client, query: str, files: list[Path]) -> None:  # type: ignore[no-untyped-def]
    handles = [p.open("rb") for p in files]
    try:
        data: dict[str, Any] = {"file": [(h, p.name) for h, p in zip(handles, files,
                                                                    strict=True)]}
        if "disposition" in query:
            query = query.replace("&disposition", "")
            data["disposition"] = (open(SDTM / "ds.csv", "rb"), "ds.csv")  # noqa: SIM115
        r = client.post(f"/fhir/$ingest?{query}", data=data, content_type="multipart/form-data")
        assert r.status_code == 200, r.data
    finally:
        for h in handles:
            h.close()


@pytest.fixture(scope="module")
def loaded(app):  # type: ignore[no-untyped-def]
    """Load every source we have, through $ingest and PUT, once per backend."""
    client = app.test_client()
    seed = [("kind=study", "NCT05003921.json"),
            ("kind=enrollments&study=NCT05003921", "NCT05003921.enrollments.csv"),
            ("kind=adverse-events&study=NCT05003921", "NCT05003921.adverse-events.csv")]
    for query, name in seed:
        if (EXAMPLES / name).exists():
            _ingest(client, query, [EXAMPLES / name])
    if SDTM.is_dir():
        _ingest(client, "kind=study", [SDTM / f"{d}.xpt" for d in ("ts", "ta", "ti", "te")])
        _ingest(client, "kind=enrollments&study=CDISCPILOT01&disposition", [SDTM / "dm.csv"])
        _ingest(client, "kind=adverse-events&study=CDISCPILOT01", [SDTM / "ae.csv"])
    for name, base in [(f"r4/{t}-example.json", "/fhir")
                       for t in ("ResearchStudy", "ResearchSubject", "AdverseEvent")] + \
                      [(n, "/fhir/R5") for n in R5_EXAMPLES]:
        example = official(name)
        r = client.put(f"{base}/{example['resourceType']}/{example['id']}", data=dumps(example),
                       headers={"Content-Type": FHIR})
        assert r.status_code in (200, 201), r.data
    rich = [(r, "/fhir") for r in gateway_data.shared() + gateway_data.r4_only()]
    rich += [(r, "/fhir/R5") for r in gateway_data.r5_only()]
    for resource, base in rich:
        r = client.put(f"{base}/{resource['resourceType']}/{resource['id']}", json=resource,
                       headers={"Content-Type": FHIR})
        assert r.status_code in (200, 201), r.data
    return client


@pytest.fixture(scope="module")
def index(app, loaded) -> dict:  # type: ignore[no-untyped-def]
    """{version: {type: {id: {param: [(table, row)]}}}} of every stored resource."""
    out: dict[str, dict[str, dict[str, dict[str, list]]]] = {"R4": {}, "R5": {}}
    with app.app_context():
        stores = [app.extensions["fhir_store"], map_store(app)]
    for store in stores:
        for stored in store.iter_all():
            for version, body in stored.body.items():
                params = out[version].setdefault(stored.resource_type, {}).setdefault(
                    stored.id, {})
                for table, rows in index_rows(loads(body), version).items():
                    for row in rows:
                        params.setdefault(row["param"], []).append((table, row))
                # _id and _lastUpdated have no index rows (indexing.UNINDEXED): they must
                # search as if they had
                for table, rows in rows_as_if_indexed(loads(body), version).items():
                    for row in rows:
                        params.setdefault(row["param"], []).append((table, row))
    return out


# -- the oracle --------------------------------------------------------------------------------

def _esc(text: str) -> str:
    return "".join("\\" + ch if ch in "\\,|$" else ch for ch in text)


def _year(row: dict) -> str:
    micros = row["low"] if row["low"] != MIN_INSTANT else row["high"]
    return str((EPOCH + timedelta(microseconds=micros)).year)


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _within(low: float, high: float, text: str) -> bool:
    number = Decimal(text)
    exponent = number.as_tuple().exponent
    half = Decimal("0.5") * Decimal(10) ** (exponent if isinstance(exponent, int) else 0)
    return float(number - half) <= low and high < float(number + half)


def _value(kind: str, row: dict) -> str | None:
    """A search value (escaped) that matches `row` of a parameter of type `kind`."""
    if kind == "token":
        if row["code"] is None:
            return None
        return (f"{_esc(row['system'])}|{_esc(row['code'])}" if row["system"]
                else _esc(row["code"]))
    if kind == "uri":
        return _esc(row["code"]) if row.get("code") else _esc(row["url"]) if row.get("url") \
            else None
    if kind == "string":
        return _esc(row["exact"]) if row["exact"] else None
    if kind == "date":  # the year, when the value lies within one (eq needs containment)
        if MIN_INSTANT in (row["low"], row["high"]) or MAX_INSTANT in (row["low"], row["high"]):
            return None
        year = _year(row)
        lo, hi = date_range(year)
        return year if lo <= row["low"] and row["high"] <= hi else None
    if kind == "reference":
        if row["target_type"] and row["target_id"]:
            return f"{row['target_type']}/{_esc(row['target_id'])}"
        return _esc(row["url"]) if row["url"] else None
    if kind == "number":
        return _number_text(row["value"])
    if kind == "quantity":
        return (f"{_number_text(row['low'])}|{_esc(row['system'] or '')}|"
                f"{_esc(row['code'] or '')}") if row["low"] == row["high"] else None
    return None


def _unesc(text: str) -> str:
    return text.replace("\\,", ",").replace("\\|", "|").replace("\\$", "$").replace("\\\\", "\\")


def _matches(kind: str, row: dict, value: str, modifier: str = "") -> bool:
    """Does an index row satisfy `value` (R4 search.html semantics)?"""
    if kind == "token":
        if "|" in value.replace("\\|", ""):
            system, code = (_unesc(v) for v in value.replace("\\|", "\0").split("|", 1))
            system, code = system.replace("\0", "|"), code.replace("\0", "|")
            return row["system"] == system and row["code"] == code
        return row["code"] == _unesc(value)
    if kind == "uri":
        return _unesc(value) in (row.get("code"), row.get("url"))
    if kind == "string":
        wanted = _unesc(value)
        if modifier == "exact":
            return row["exact"] == wanted
        if modifier == "contains":
            return normalise(wanted) in row["norm"]
        return row["norm"].startswith(normalise(wanted))
    if kind == "date":
        prefix, text = (value[:2], value[2:]) if value[:2] in ("lt", "ge") else ("eq", value)
        lo, hi = date_range(text)
        inside = row["low"] >= lo and row["high"] <= hi
        return {"eq": inside, "lt": row["low"] < lo, "ge": row["high"] > hi or inside}[prefix]
    if kind == "reference":
        if "/" in value and "://" not in value and not value.startswith("urn:"):
            rtype, rid = value.split("/", 1)
            return row["target_type"] == rtype and row["target_id"] == _unesc(rid)
        return row["url"] == _unesc(value)
    if kind == "number":
        return _within(row["value"], row["value"], value)
    if kind == "quantity":
        number, system, code = value.split("|")
        return (_within(row["low"], row["high"], number) and row["system"] == _unesc(system)
                and row["code"] == _unesc(code))
    raise AssertionError(kind)


# A value of each type that no loaded resource has (composites without data).
_NOTHING = {"token": "no-such-code", "uri": "urn:no-such", "string": "zzzz-no-such",
            "date": "1001", "reference": "Patient/no-such", "number": "-999999",
            "quantity": "-999999"}


def _expected(resources: dict, name: str, kind: str, value: str, modifier: str = "") -> set:
    return {rid for rid, params in resources.items()
            if any(_matches(kind, row, value, modifier) for _, row in params.get(name, []))}


def _composite_case(resources: dict, version: str, rtype: str, name: str
                    ) -> tuple[str, set] | None:
    components = search_params(version, rtype)[name].components
    kinds = [c.type or "token" for c in components]
    best: tuple[str, set] | None = None
    for params in resources.values():
        groups: dict[int, dict[int, dict]] = {}
        for n in range(len(components)):
            for _, row in params.get(f"{name}${n}", []):
                groups.setdefault(row["grp"], {}).setdefault(n, row)
        for parts in groups.values():
            values = [_value(kinds[n], parts[n]) if n in parts else None
                      for n in range(len(components))]
            if None in values:
                continue
            value = "$".join(values)  # type: ignore[arg-type]
            expected = set()
            for rid, other in resources.items():
                grouped: dict[int, set[int]] = {}
                for n in range(len(components)):
                    for _, row in other.get(f"{name}${n}", []):
                        if _matches(kinds[n], row, values[n]):  # type: ignore[arg-type]
                            grouped.setdefault(row["grp"], set()).add(n)
                if any(len(hit) == len(components) for hit in grouped.values()):
                    expected.add(rid)
            if best is None or len(expected) < len(best[1]):
                best = (value, expected)
    return best


# -- the test --------------------------------------------------------------------------------

def _search(client, version: str, rtype: str, query: str) -> set:  # type: ignore[no-untyped-def]
    base = "/fhir/R5" if version == "R5" else "/fhir"
    url = f"{base}/{rtype}?{query}&_count=50&_sort=_id"
    ids: set = set()
    while url:
        r = client.get(url, headers={"Prefer": "handling=strict"})
        assert r.status_code == 200, (url, r.data)
        bundle = loads(r.data)
        ids |= {e["resource"]["id"] for e in bundle.get("entry", [])}
        nxt = [ln["url"] for ln in bundle.get("link", []) if ln["relation"] == "next"]
        url = nxt[0].replace(BASE, "/fhir") if nxt else ""
    return ids


@pytest.mark.parametrize("version,rtype,name,kind", list(_cases()))
def test_search_parameter_filters(loaded, index, version, rtype, name, kind) -> None:
    client = loaded
    resources = index[version].get(rtype, {})
    everything = set(resources)
    if kind == "composite":
        case = _composite_case(resources, version, rtype, name)
        if case is None:
            components = search_params(version, rtype)[name].components
            probe = "$".join(_NOTHING[c.type or "token"] for c in components)
            assert _search(client, version, rtype, f"{name}={quote(probe)}") == set()
            return
        value, expected = case
        assert expected and _search(client, version, rtype, f"{name}={quote(value)}") == expected
        return
    having = {rid for rid, params in resources.items() if params.get(name)}
    # :missing holds for every parameter, with or without data.
    assert _search(client, version, rtype, f"{name}:missing=false") == having
    assert _search(client, version, rtype, f"{name}:missing=true") == everything - having
    candidates = {}
    for params in resources.values():
        for _, row in params.get(name, []):
            value = _value(kind, row)
            if value is not None and value not in candidates:
                candidates[value] = _expected(resources, name, kind, value)
    if kind == "date" and having:
        # lt/ge against the year of some value, whatever its extent (periods span years).
        row = next(row for rid in sorted(having) for _, row in resources[rid][name]
                   if (row["low"], row["high"]) != (MIN_INSTANT, MAX_INSTANT))
        year = _year(row)
        for prefix in ("lt", "ge"):
            assert _search(client, version, rtype, f"{name}={prefix}{year}") \
                == _expected(resources, name, kind, prefix + year), prefix
    if not candidates:
        return  # no value to search for: :missing (and lt/ge for dates) is the check
    value, expected = min(candidates.items(), key=lambda kv: (len(kv[1]), kv[0]))
    assert expected, value
    assert _search(client, version, rtype, f"{name}={quote(value)}") == expected, value
    if kind == "token":
        assert _search(client, version, rtype, f"{name}:not={quote(value)}") \
            == everything - expected
    if kind == "string" and len(_unesc(value)) > 3:
        for modifier, probe in (("exact", value), ("contains", _esc(_unesc(value)[1:-1]))):
            assert _search(client, version, rtype, f"{name}:{modifier}={quote(probe)}") \
                == _expected(resources, name, kind, probe, modifier), (modifier, probe)
