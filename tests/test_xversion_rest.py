"""Our own output written back through the REST API in one version reads and searches in the
other (gateway/xversion), on both stores: every golden file (study, enrollment, adverse
events, cohort Groups; the seed study examples/NCT05003921.json is the NCT05003921 golden)
and the official HL7 examples of our types. What a client reads in the other version equals
what our mapper makes for that version, except for the element paths listed, each with its
reason, in tests/xversion_differences.json (and docs/versions.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES
from flask.testing import FlaskClient
from gateway_fixtures import BACKENDS, FHIR
from store_backends import new_postgres_database
from test_xversion import _resources as resources

from fhir_adapter.gateway import create_app
from fhir_adapter.gateway.xversion import convert, equivalent
from fhir_adapter.store.canonical import dumps, loads
from fhir_adapter.validation import FhirVersion, validate

ROOT = Path(__file__).resolve().parents[1]
OTHER: dict[FhirVersion, FhirVersion] = {"R4": "R5", "R5": "R4"}
PREFIX = {"R4": "/fhir", "R5": "/fhir/R5"}
DIFFERENCES = json.loads((ROOT / "tests" / "xversion_differences.json").read_text("utf-8"))
SERVER_META = ("versionId", "lastUpdated")


def _files() -> list[Any]:
    out = []
    for path in sorted((ROOT / "tests" / "golden").glob("*/*.r[45].expected.json")):
        version = "R4" if ".r4." in path.name else "R5"
        out.append(pytest.param(version, path, id=f"{path.parent.name}-{path.stem}"))
    for version in ("R4", "R5"):
        for path in sorted((FIXTURES / "fhir" / "examples" / version.lower()).glob("*.json")):
            out.append(pytest.param(version, path, id=f"hl7-{version}-{path.stem}"))
    return out


def _counterpart(path: Path, version: FhirVersion) -> dict[tuple[str, str], dict[str, Any]]:
    """Our mapper's output for the other version of a golden file, by (type, id)."""
    other = path.with_name(path.name.replace(f".{version.lower()}.",
                                             f".{OTHER[version].lower()}."))
    if "golden" not in path.parts or not other.exists():
        return {}
    return {(r["resourceType"], r["id"]): r for r in resources(loads(other.read_bytes()))}


@pytest.fixture(scope="module", params=BACKENDS)
def client(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[FlaskClient]:
    """A store of its own (the goldens' ids are fixed: other tests write some of them)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('xversion') / 'fhir.db'}"
        yield from _client(url, tmp_path_factory)
        return
    with new_postgres_database() as url:
        yield from _client(url, tmp_path_factory)


def _client(url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlaskClient]:
    app = create_app({"DATABASE_URL": url, "PUBLIC_BASE_URL": "http://testserver/fhir",
                      "MAX_COUNT": 50, "EXPORT_DIR": str(tmp_path_factory.mktemp("exports"))})
    app.testing = True
    yield app.test_client()
    for name in ("fhir_store", "fhir_conceptmaps"):
        if name in app.extensions:
            app.extensions[name].close()


def _unserved(resource: dict[str, Any]) -> dict[str, Any]:
    """`resource` without what the server sets (meta.versionId, meta.lastUpdated)."""
    out = dict(resource)
    meta = {k: v for k, v in (out.pop("meta", None) or {}).items() if k not in SERVER_META}
    if meta:
        out["meta"] = meta
    return out


def _differences(a: Any, b: Any, path: str) -> set[str]:
    """Element paths (no indices; extensions by url) where `a` and `b` differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: set[str] = set()
        for key in {*a, *b}:
            if key == "extension":
                out |= _extension_differences(a.get(key) or [], b.get(key) or [], path)
            elif key not in a or key not in b:
                out.add(f"{path}.{key}")
            else:
                out |= _differences(a[key], b[key], f"{path}.{key}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return set().union(*(_differences(x, y, path) for x, y in zip(a, b, strict=True)))
    return set() if a == b else {path}


def _extension_differences(a: list[Any], b: list[Any], path: str) -> set[str]:
    def by_url(items: list[Any]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for item in items:
            out.setdefault(item.get("url", ""), []).append(dumps(item).decode())
        return {url: sorted(v) for url, v in out.items()}
    left, right = by_url(a), by_url(b)
    return {f"{path}.extension({url})" for url in {*left, *right}
            if left.get(url) != right.get(url)}


def _documented(direction: str, rtype: str, path: str) -> bool:
    listed = DIFFERENCES[direction].get(rtype, {})
    return any(path == p or path.startswith(p + ".") for p in listed)


def _write(client: FlaskClient, version: FhirVersion, items: list[dict[str, Any]]) -> None:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
        for r in items]}
    r = client.post(PREFIX[version], data=dumps(bundle), headers={"Content-Type": FHIR})
    assert r.status_code == 200, r.data[:2000]


def _search(client: FlaskClient, version: FhirVersion, query: str) -> dict[str, Any]:
    r = client.get(f"{PREFIX[version]}/{query}")
    assert r.status_code == 200, (query, r.data[:2000])
    return {e["resource"]["id"]: e["resource"] for e in loads(r.data).get("entry", [])}


def _by_id(client: FlaskClient, version: FhirVersion, rtype: str, ids: list[str]
           ) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n in range(0, len(ids), 40):
        chunk = ids[n:n + 40]
        out |= _search(client, version, f"{rtype}?_id={','.join(chunk)}&_count=50")
    return out


@pytest.mark.parametrize("version,path", _files())
def test_our_output_written_in_one_version_reads_and_searches_in_the_other(
        client: FlaskClient, version: FhirVersion, path: Path) -> None:
    items = {(r["resourceType"], r["id"]): r for r in resources(loads(path.read_bytes()))}
    _write(client, version, list(items.values()))
    other, direction = OTHER[version], f"{version}->{OTHER[version]}"
    mapped = _counterpart(path, version)
    undocumented: dict[str, set[str]] = {}
    for rtype in sorted({t for t, _ in items}):
        ids = sorted(i for t, i in items if t == rtype)
        read = _by_id(client, other, rtype, ids)
        assert sorted(read) == ids, f"{rtype}: not all found in {other}"
        again = _by_id(client, version, rtype, ids)
        for rid in ids:
            got = _unserved(read[rid])
            assert validate(got, other) == [], (rtype, rid)
            # lossless: converted back, it is what was written (and what reads in `version`)
            assert equivalent(convert(got, other, version), items[rtype, rid])
            assert equivalent(_unserved(again[rid]), items[rtype, rid])
            if (rtype, rid) in mapped:
                found = _differences(got, _unserved(mapped[rtype, rid]), rtype)
                undocumented.setdefault(rtype, set()).update(
                    p for p in found if not _documented(direction, rtype, p))
        first = items[rtype, ids[0]]
        for query in _searches(first, other):  # and the other version's search finds it
            assert ids[0] in _search(client, other, f"{rtype}?{query}"), query
    assert not {t: sorted(p) for t, p in undocumented.items() if p}, \
        f"{direction}: differences from our {other} mapping not in xversion_differences.json"


def _searches(resource: dict[str, Any], version: FhirVersion) -> list[str]:
    """Queries in `version` (by what the resource says in any version) that must find it."""
    out = []
    identifier = resource.get("identifier")
    first = identifier[0] if isinstance(identifier, list) and identifier else identifier
    if isinstance(first, dict) and first.get("system") and first.get("value"):
        out.append(f"identifier={first['system']}|{first['value']}")
    if resource["resourceType"] == "ResearchSubject":
        who = (resource.get("individual") or resource.get("subject"))["reference"]
        study = resource["study"]["reference"]
        out.append(f"{'subject' if version == 'R5' else 'individual'}={who}&study={study}")
    if resource["resourceType"] == "AdverseEvent":
        out.append(f"subject={resource['subject']['reference']}")
    return out


def test_every_documented_difference_is_in_the_docs() -> None:
    docs = (ROOT / "docs" / "versions.md").read_text("utf-8")
    for direction, types in DIFFERENCES.items():
        if direction.startswith("_"):
            continue
        for paths in types.values():
            for p in paths:
                assert f"`{p}`" in docs, f"{direction} {p} is not in docs/versions.md"
