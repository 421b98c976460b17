"""Our own SearchParameters (data/searchparameters/own-*.json): indexed like the official ones
(R4 AdverseEvent?identifier= finds one event), served read-only at /fhir/SearchParameter with
the search parameters the CapabilityStatement lists for it (generated cases, compared with an
oracle over the definitions), and `fhir-adapter db reindex` for resources stored before."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from gateway_fixtures import BASE, FHIR, app, client, database_url, unique_system
from store_backends import backend, postgres_database, store_url
from store_backends import store as empty_store

from fhir_adapter.cli import cli
from fhir_adapter.gateway.capability import capability_statement
from fhir_adapter.store.base import SearchQuery
from fhir_adapter.store.canonical import dumps, loads
from fhir_adapter.store.schema import index_tables
from fhir_adapter.store.searchparams import definitions, own_bundle

__all__ = ["app", "backend", "client", "database_url", "empty_store", "postgres_database",
           "store_url"]
OWN_AE_IDENTIFIER = "https://fhir-adapter.dev/fhir/SearchParameter/AdverseEvent-identifier"


def _event(system: str, value: str, subject: str = "Patient/own-sp") -> dict[str, Any]:
    return {"resourceType": "AdverseEvent", "identifier": {"system": system, "value": value},
            "actuality": "actual", "subject": {"reference": subject}}


def _searchset_ids(client: Any, url: str) -> list[str]:
    r = client.get(url)
    assert r.status_code == 200, r.data
    return [e["resource"]["id"] for e in loads(r.data).get("entry", [])]


def test_r4_adverse_event_identifier_finds_exactly_one_event(client) -> None:
    system = unique_system()
    ids = []
    for value in ("AE-1", "AE-2", "AE-10"):
        r = client.post("/fhir/AdverseEvent", data=dumps(_event(system, value)),
                        headers={"Content-Type": FHIR})
        assert r.status_code == 201, r.data
        ids.append(loads(r.data)["id"])
    assert _searchset_ids(client, f"/fhir/AdverseEvent?identifier={system}|AE-1") == [ids[0]]
    assert _searchset_ids(client, f"/fhir/AdverseEvent?identifier={system}|AE-3") == []
    assert sorted(_searchset_ids(client, f"/fhir/AdverseEvent?identifier={system}|")) == \
        sorted(ids)
    # conditional create by the business identifier now works for events too
    again = client.post("/fhir/AdverseEvent", data=dumps(_event(system, "AE-2")),
                        headers={"Content-Type": FHIR, "If-None-Exist":
                                 f"identifier={system}|AE-2"})
    assert again.status_code == 200 and loads(again.data)["id"] == ids[1]


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_capability_statement_lists_them_with_their_url(client, version) -> None:
    r = client.get("/fhir/R5/metadata" if version == "R5" else "/fhir/metadata")
    resources = {x["type"]: x for x in loads(r.data)["rest"][0]["resource"]}
    listed = {p["name"]: p["definition"] for p in resources["AdverseEvent"]["searchParam"]}
    for sp in (e["resource"] for e in own_bundle(version)["entry"]):  # type: ignore[arg-type]
        for base in sp["base"]:
            assert {p["name"]: p["definition"]
                    for p in resources[base]["searchParam"]}[sp["code"]] == sp["url"]
    expected = OWN_AE_IDENTIFIER if version == "R4" else \
        "http://hl7.org/fhir/SearchParameter/clinical-identifier"
    assert listed["identifier"] == expected


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_read_every_served_definition(client, version) -> None:
    prefix = "/fhir/R5" if version == "R5" else "/fhir"
    for sp in definitions(version):  # type: ignore[arg-type]
        r = client.get(f"{prefix}/SearchParameter/{sp['id']}")
        assert r.status_code == 200
        assert loads(r.data) == loads(dumps(sp))
    assert client.get(f"{prefix}/SearchParameter/no-such").status_code == 404


def _search_cases() -> list[Any]:
    out = []
    for version in ("R4", "R5"):
        statement = loads(capability_statement(version, BASE))
        for resource in statement["rest"][0]["resource"]:
            if resource["type"] == "SearchParameter":
                for param in resource["searchParam"]:
                    out.append(pytest.param(version, param["name"],
                                            id=f"{version}-{param['name']}"))
    return out


_ELEMENT = {"_id": "id"}


@pytest.mark.parametrize("version,name", _search_cases())
def test_search_parameter_search_is_what_the_definitions_say(client, version, name) -> None:
    prefix = "/fhir/R5" if version == "R5" else "/fhir"
    every = definitions(version)  # type: ignore[arg-type]
    element = _ELEMENT.get(name, name)
    values = sorted({v for sp in every for v in (sp[element] if isinstance(sp[element], list)
                                                 else [sp[element]])})
    for value in values[:3] + values[-3:]:
        expected = [sp["id"] for sp in every
                    if value in (sp[element] if isinstance(sp[element], list)
                                 else [sp[element]])]
        got, url = [], f"{prefix}/SearchParameter?{name}={quote(value, safe='')}&_count=7"
        while url:
            r = client.get(url)
            bundle = loads(r.data)
            assert bundle["total"] == len(expected)
            got += [e["resource"]["id"] for e in bundle.get("entry", [])]
            url = next((link["url"].replace(BASE, "/fhir", 1).replace("/fhir/fhir", "/fhir")
                        for link in bundle["link"] if link["relation"] == "next"), "")
        assert got == expected, (name, value)


def test_unknown_filters_and_writes_are_refused(client) -> None:
    assert client.get("/fhir/SearchParameter?derived-from=x").status_code == 400
    assert client.get("/fhir/SearchParameter?_sort=url").status_code == 400
    assert client.post("/fhir/SearchParameter", json={"resourceType": "SearchParameter"}
                       ).status_code == 405
    assert client.delete("/fhir/SearchParameter/x").status_code == 405


def test_db_reindex_adds_the_rows_of_a_new_parameter(empty_store, store_url) -> None:
    system = unique_system()
    reps = {"R4": {"resourceType": "AdverseEvent", "id": "reindexed", **{
        k: v for k, v in _event(system, "X-1").items() if k != "resourceType"}}}
    empty_store.create(reps)
    query = SearchQuery("AdverseEvent", "R4", [("identifier", f"{system}|X-1")])
    assert [s.id for s in empty_store.search(query).matches] == ["reindexed"]
    # A store written before the parameter existed: no rows for it.
    token = index_tables["token"]
    with empty_store.engine.begin() as conn:
        conn.execute(token.delete().where(token.c.param == "identifier",
                                          token.c.res_type == "AdverseEvent"))
    assert list(empty_store.search(query).matches) == []
    before = _all_rows(empty_store)
    result = CliRunner().invoke(cli, ["db", "reindex", "--database", store_url])
    assert result.exit_code == 0, result.output
    assert "reindexed 1 resource(s)" in result.output
    assert [s.id for s in empty_store.search(query).matches] == ["reindexed"]
    after = _all_rows(empty_store)
    assert after - before == {r for r in after if r[4] == "identifier"}  # only what was missing
    bad = CliRunner().invoke(cli, ["db", "reindex", "--type", "Observation",
                                   "--database", store_url])
    assert bad.exit_code != 0 and "Observation" in bad.output


def _all_rows(store: Any) -> set[tuple]:
    out = set()
    with store.engine.connect() as conn:
        for table in index_tables.values():
            out |= {(table.name, *r) for r in conn.execute(table.select())}
    return out
