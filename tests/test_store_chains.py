"""Chained parameters of several levels (typed and untyped), reverse chaining `_has` (nested
too) and the `:identifier` modifier, on SQLite and PostgreSQL, R4 and R5 (store/chains.py).

The store holds three studies with their subjects, so a search that ignored a link would
return the other studies' resources too."""

# ruff: noqa: F811 (tests take the fixtures imported from store_backends as arguments)

from __future__ import annotations

from typing import Any

import pytest
from store_backends import backend, module_store, postgres_database, store, store_url  # noqa: F401

from fhir_adapter.errors import BadRequest
from fhir_adapter.store import SqlStore
from fhir_adapter.store.base import SearchQuery
from fhir_adapter.store.chains import MAX_DEPTH

NCT = "https://clinicaltrials.gov"
MRN = "urn:oid:1.2.3.4"
VERSIONS = ("R4", "R5")
# The parameter of ResearchSubject that names its Patient
INDIVIDUAL = {"R4": "individual", "R5": "subject"}


def _both(resource: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The resource in R4 and R5 (only ResearchSubject's patient element differs here)."""
    r5 = dict(resource)
    if resource["resourceType"] == "ResearchSubject":
        r5["subject"] = r5.pop("individual")
    return {"R4": resource, "R5": r5}


def org(oid: str, name: str, partof: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"resourceType": "Organization", "id": oid, "name": name}
    if partof:
        out["partOf"] = {"reference": f"Organization/{partof}"}
    return out


def world() -> list[dict[str, Any]]:
    """Studies s1-s3 (s1 is NCT05003921), patients p1-p5 of organizations, subjects,
    events (one naming its subject by identifier only), groups and a practitioner."""
    out = [org("o0", "Holding"), org("o1", "Acme Pharma", "o0"), org("o2", "Beta Bio", "o1"),
           org("o3", "Gamma", "o2"), org("o4", "Delta", "o3")]
    for n, nct in ((1, "NCT05003921"), (2, "NCT00000002"), (3, "NCT00000003")):
        out.append({"resourceType": "ResearchStudy", "id": f"s{n}", "status": "active",
                    "identifier": [{"system": NCT, "value": nct}]})
    for n, orgid in ((1, "o1"), (2, "o1"), (3, "o2"), (4, "o2"), (5, "o4")):
        out.append({"resourceType": "Patient", "id": f"p{n}",
                    "identifier": [{"system": MRN, "value": f"M{n}"}],
                    "name": [{"family": f"Family{n}"}],
                    "managingOrganization": {"reference": f"Organization/{orgid}"}})
    for n, (study, patient) in enumerate((("s1", "p1"), ("s1", "p2"), ("s2", "p3"),
                                          ("s3", "p4"), ("s2", "p5")), start=1):
        out.append({"resourceType": "ResearchSubject", "id": f"rs{n}", "status": "on-study",
                    "study": {"reference": f"ResearchStudy/{study}"},
                    "individual": {"reference": f"Patient/{patient}"}})
    for n, subject in ((1, {"reference": "Patient/p1"}), (2, {"reference": "Patient/p3"}),
                       (3, {"identifier": {"system": MRN, "value": "X9"}}),
                       (4, {"reference": "Patient/p2",
                            "identifier": {"system": MRN, "value": "M2"}})):
        out.append({"resourceType": "AdverseEvent", "id": f"ae{n}", "actuality": "actual",
                    "subject": subject})
    out.append({"resourceType": "Practitioner", "id": "pr1", "name": [{"family": "Family1"}]})
    out.append({"resourceType": "Group", "id": "g1", "type": "person", "actual": True,
                "member": [{"entity": {"reference": "Patient/p1"}}]})
    out.append({"resourceType": "Group", "id": "g2", "type": "practitioner", "actual": True,
                "member": [{"entity": {"reference": "Practitioner/pr1"}}]})
    return out


def load(store: SqlStore) -> SqlStore:
    for resource in world():
        store.update(_both(resource))
    return store


@pytest.fixture(scope="module")
def data(module_store: SqlStore) -> SqlStore:
    return load(module_store)


def found(store: SqlStore, rtype: str, name: str, value: str, version: str = "R4",
          strict: bool = True) -> set[str]:
    query = SearchQuery(rtype, version, [(name, value)], count=100,  # type: ignore[arg-type]
                        strict=strict)
    result = store.search(query)
    assert result.total == len(result.matches)
    return {m.id for m in result.matches}


@pytest.mark.parametrize("version", VERSIONS)
def test_done_when_a_study_s_subjects_and_patients(data: SqlStore, version: str) -> None:
    for chain in ("study:ResearchStudy.identifier", "study.identifier"):
        assert found(data, "ResearchSubject", chain, "NCT05003921", version) == {"rs1", "rs2"}
        assert found(data, "ResearchSubject", chain, f"{NCT}|NCT00000002",
                     version) == {"rs3", "rs5"}
    has = f"_has:ResearchSubject:{INDIVIDUAL[version]}:study"
    assert found(data, "Patient", has, "ResearchStudy/s1", version) == {"p1", "p2"}
    assert found(data, "Patient", has, "ResearchStudy/s2", version) == {"p3", "p5"}
    assert found(data, "Patient", has, "ResearchStudy/s1,ResearchStudy/s3",
                 version) == {"p1", "p2", "p4"}
    assert found(data, "Patient", has, "ResearchStudy/none", version) == set()


@pytest.mark.parametrize("version", VERSIONS)
def test_chains_of_several_levels(data: SqlStore, version: str) -> None:
    typed = "subject:Patient.organization:Organization.name"
    assert found(data, "AdverseEvent", typed, "acme", version) == {"ae1", "ae4"}
    assert found(data, "AdverseEvent", "subject.organization.name", "beta",
                 version) == {"ae2"}
    # three and four links: patients whose organization's parent (...) is named
    assert found(data, "Patient", "organization.partof.name", "Holding", version) == {
        "p1", "p2"}
    # o3's grandparent is Acme, and no patient is at o3; o4's great-grandparent is
    assert found(data, "Patient", "organization.partof.partof.name", "acme",
                 version) == set()
    assert found(data, "Patient", "organization.partof.partof.partof.name", "acme",
                 version) == {"p5"}
    assert found(data, "Patient", "organization.partof.partof.partof.name", "holding",
                 version) == set()
    # a chain ending in _has: events of patients enrolled in s2
    has = f"subject:Patient._has:ResearchSubject:{INDIVIDUAL[version]}:study"
    assert found(data, "AdverseEvent", has, "ResearchStudy/s2", version) == {"ae2"}


@pytest.mark.parametrize("version", VERSIONS)
def test_untyped_chains_search_every_target_type(data: SqlStore, version: str) -> None:
    # Group.member may be a Patient or a Practitioner (among others): both have `name`
    assert found(data, "Group", "member.name", "family1", version) == {"g1", "g2"}
    assert found(data, "Group", "member:Practitioner.name", "family1", version) == {"g2"}
    assert found(data, "Group", "member:Patient.name", "family1", version) == {"g1"}
    # `organization` exists on Patient only among Group.member's targets that have it here
    assert found(data, "Group", "member.organization.name", "acme", version) == {"g1"}


@pytest.mark.parametrize("version", VERSIONS)
def test_nested_has(data: SqlStore, version: str) -> None:
    inner = f"_has:ResearchSubject:{INDIVIDUAL[version]}:study"
    name = f"_has:Patient:organization:{inner}"
    assert found(data, "Organization", name, "ResearchStudy/s2", version) == {"o2", "o4"}
    assert found(data, "Organization", name, "ResearchStudy/s1", version) == {"o1"}
    # _has whose parameter is a chain
    chained = f"_has:ResearchSubject:{INDIVIDUAL[version]}:study.identifier"
    assert found(data, "Patient", chained, "NCT00000003", version) == {"p4"}
    # and a Group's members' organizations
    assert found(data, "Patient", "_has:Group:member:_id", "g1", version) == {"p1"}


@pytest.mark.parametrize("version", VERSIONS)
def test_identifier_modifier_matches_the_reference_s_own_identifier(data: SqlStore,
                                                                    version: str) -> None:
    assert found(data, "AdverseEvent", "subject:identifier", f"{MRN}|X9", version) == {"ae3"}
    assert found(data, "AdverseEvent", "subject:identifier", "X9", version) == {"ae3"}
    assert found(data, "AdverseEvent", "subject:identifier", f"{MRN}|X9,{MRN}|M2",
                 version) == {"ae3", "ae4"}
    # p1 has identifier M1, but ae1's reference carries none: the target's is not looked at
    assert found(data, "AdverseEvent", "subject:identifier", f"{MRN}|M1", version) == set()
    assert found(data, "AdverseEvent", "subject.identifier", f"{MRN}|M1", version) == {"ae1"}


def test_deleted_resources_break_links(store: SqlStore) -> None:
    load(store)
    assert found(store, "AdverseEvent", "subject.organization.name", "acme") == {"ae1", "ae4"}
    store.delete("Patient", "p2")
    assert found(store, "AdverseEvent", "subject.organization.name", "acme") == {"ae1"}
    store.delete("ResearchSubject", "rs1")
    assert found(store, "Patient", "_has:ResearchSubject:individual:study",
                 "ResearchStudy/s1") == set()


def test_refusals(data: SqlStore) -> None:
    deep = "organization" + ".partof" * MAX_DEPTH + ".name"
    bad = [("Patient", deep, "x"),  # one link too many: 400 even when lenient
           ("Patient", "_has:ResearchSubject:individual", "x"),
           ("Patient", "_has:ResearchSubject:study:status", "x"),  # study is no Patient
           ("ResearchSubject", "study:Group.identifier", "x"),
           ("ResearchSubject", "study:missing.identifier", "x"),
           ("Patient", "_has:Group:member:" * (MAX_DEPTH + 1) + "_id", "g")]
    for rtype, name, value in bad:
        for strict in (True, False):
            with pytest.raises(BadRequest):
                found(data, rtype, name, value, strict=strict)
    unknown = [("Patient", "_has:Bogus:x:y"), ("Patient", "_has:Group:member:bogus"),
               ("Patient", "organization.bogus"), ("Patient", "family.name"),
               ("Group", "member.bogus.name")]
    for rtype, name in unknown:
        with pytest.raises(BadRequest):
            found(data, rtype, name, "x")
        lenient = data.search(SearchQuery(rtype, "R4", [(name, "x")], strict=False))
        assert list(lenient.ignored) == [name]
    # exactly MAX_DEPTH links is answered
    assert found(data, "Patient", "organization" + ".partof" * (MAX_DEPTH - 1) + ".name",
                 "holding") == set()
