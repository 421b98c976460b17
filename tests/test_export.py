"""`fhir-adapter export`: stored bytes to <Type>.ndjson files, whole store or one study, on
SQLite and PostgreSQL. The study's scope is checked against an oracle that reads every
stored body (not the reference index the export uses)."""

# ruff: noqa: F811 (tests take the fixtures imported from store_backends as arguments)

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from store_backends import backend, module_store, postgres_database, store, store_url  # noqa: F401

from fhir_adapter.cli import cli
from fhir_adapter.errors import BadRequest, InputError, NotFound
from fhir_adapter.export import export_ndjson, study_id
from fhir_adapter.pipeline.load import load_files
from fhir_adapter.store import SqlStore, canonical
from fhir_adapter.store.values import split_reference

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SEED = "NCT05003921"
OTHER = "SYNTH-OTHER-01"  # a synthetic second study: the seed's rows under another id
FILES = [("study", "NCT05003921.json"), ("enrollments", "NCT05003921.enrollments.csv"),
         ("adverse-events", "NCT05003921.adverse-events.csv")]


@pytest.fixture(scope="module")
def loaded(module_store: SqlStore, tmp_path_factory: pytest.TempPathFactory) -> SqlStore:
    if not all((EXAMPLES / name).is_file() for _, name in FILES):
        pytest.skip("examples/ seed files not present")
    folder = tmp_path_factory.mktemp("other")
    for kind, name in FILES:
        options = {} if kind == "study" else {"study": SEED}
        load_files(kind, [EXAMPLES / name], store=module_store, **options)
        if kind != "study":  # the other study's protocol is not stored: only its rows
            other = folder / name.replace(SEED, OTHER)
            other.write_text((EXAMPLES / name).read_text().replace(SEED, OTHER))
            load_files(kind, [other], store=module_store, study=OTHER)
    return module_store


def _lines(directory: Path) -> dict[str, list[bytes]]:
    return {p.name: p.read_bytes().splitlines() for p in sorted(directory.iterdir())}


def _exported(directory: Path) -> set[tuple[str, str]]:
    found = [(r["resourceType"], r["id"]) for lines in _lines(directory).values()
             for r in map(canonical.loads, lines)]
    assert len(found) == len(set(found)), "a resource exported twice"
    return set(found)


def references(value: Any) -> Iterator[tuple[str, str]]:
    """(type, id) of each `Type/id` reference in a parsed resource: the oracle's own walk,
    not the export's reading of stored bytes."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                rtype, rid = split_reference(item)
                if rtype and rid:
                    yield rtype, rid
            else:
                yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def _oracle(store: SqlStore, study: str, version: str) -> set[tuple[str, str]]:
    """The study, what it reaches by its references, every stored resource whose body
    references the study, and what those reference, by reading every stored body."""
    bodies = {(s.resource_type, s.id): list(references(canonical.loads(s.json(version))))
              for s in store.iter_all(version=version)}
    own, todo = set(), [("ResearchStudy", study)]
    while todo:
        key = todo.pop()
        if key not in own and key in bodies:
            own.add(key)
            todo.extend(bodies[key])
    pointing = {k for k, refs in bodies.items() if ("ResearchStudy", study) in refs} - own
    onward = {r for k in pointing for r in bodies[k] if r in bodies}
    return own | pointing | onward


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_the_whole_store_exports_as_served(loaded: SqlStore, tmp_path: Path,
                                           version: str) -> None:
    summary = export_ndjson(loaded, tmp_path / "out", version)  # type: ignore[arg-type]
    files = _lines(tmp_path / "out")
    everything = list(loaded.iter_all(version=version))  # type: ignore[arg-type]
    assert summary.total == len(everything) == sum(len(v) for v in files.values())
    assert {p.name: n for p, n in summary.counts.items()} == {k: len(v) for k, v in
                                                             files.items()}
    for name, lines in files.items():
        rtype = name.removesuffix(".ndjson")
        ids = [canonical.loads(line)["id"] for line in lines]
        assert ids == sorted(ids)
        for rid, line in zip(ids, lines, strict=True):
            assert line == loaded.read(rtype, rid).json(version)  # type: ignore[arg-type]
    assert not list((tmp_path / "out").glob("*.partial"))


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_a_study_exports_its_own_resources(loaded: SqlStore, tmp_path: Path,
                                           version: str) -> None:
    seed = study_id(loaded, SEED)
    export_ndjson(loaded, tmp_path / "seed", version, study=SEED)  # type: ignore[arg-type]
    got = _exported(tmp_path / "seed")
    assert got == _oracle(loaded, seed, version)
    kinds = {t for t, _ in got}
    assert {"ResearchStudy", "ResearchSubject", "Patient", "AdverseEvent", "Organization",
            "Location", "Practitioner"} <= kinds
    other = study_id(loaded, OTHER)
    assert other != seed and ("ResearchStudy", other) not in got
    export_ndjson(loaded, tmp_path / "other", version, study=OTHER)  # type: ignore[arg-type]
    theirs = _exported(tmp_path / "other")
    assert theirs == _oracle(loaded, other, version)
    people = {k for k in got if k[0] in ("Patient", "ResearchSubject", "AdverseEvent")}
    assert people and not people & theirs  # same rows, other study: other resources
    events = [k for k in theirs if k[0] == "AdverseEvent"]
    assert len(events) == sum(1 for k in got if k[0] == "AdverseEvent")


def test_a_resource_reached_twice_is_exported_once(store: SqlStore, tmp_path: Path) -> None:
    # R5: the event's subject is a ResearchSubject that itself points at the study, and a
    # sub-study points at the study (partOf) while the study is also named.
    study = {"resourceType": "ResearchStudy", "id": "s1", "status": "active"}
    part = {"resourceType": "ResearchStudy", "id": "s2", "status": "active",
            "partOf": [{"reference": "ResearchStudy/s1"}]}
    elsewhere = {"resourceType": "ResearchStudy", "id": "s3", "status": "active"}
    patient = {"resourceType": "Patient", "id": "p1"}
    subject = {"resourceType": "ResearchSubject", "id": "rs1", "status": "active",
               "study": {"reference": "ResearchStudy/s1"},
               "subject": {"reference": "Patient/p1"}}
    event = {"resourceType": "AdverseEvent", "id": "ae1", "status": "completed",
             "actuality": "actual", "subject": {"reference": "ResearchSubject/rs1"},
             "study": [{"reference": "ResearchStudy/s1"}]}
    for resource in (study, part, elsewhere, patient, subject, event):
        store.update({"R5": resource})
    export_ndjson(store, tmp_path / "out", "R5", study="s1")
    assert _exported(tmp_path / "out") == {
        ("ResearchStudy", "s1"), ("ResearchStudy", "s2"), ("Patient", "p1"),
        ("ResearchSubject", "rs1"), ("AdverseEvent", "ae1")}
    store.delete("Patient", "p1")
    export_ndjson(store, tmp_path / "out", "R5", study="s1", overwrite=True)
    assert ("Patient", "p1") not in _exported(tmp_path / "out")
    assert not (tmp_path / "out" / "Patient.ndjson").exists()  # the earlier one's: gone


def test_types_narrow_the_export(loaded: SqlStore, tmp_path: Path) -> None:
    summary = export_ndjson(loaded, tmp_path, "R4", types=["Patient", "ResearchStudy"],
                            study=SEED)
    assert sorted(p.name for p in summary.counts) == ["Patient.ndjson", "ResearchStudy.ndjson"]
    assert export_ndjson(loaded, tmp_path / "none", "R4", types=["Encounter"]).total == 0
    assert not (tmp_path / "none").exists()
    with pytest.raises(ValueError, match="adverse-event"):
        export_ndjson(loaded, tmp_path, "R4", types=["adverse-event"])


def test_existing_files_are_kept_unless_overwritten(loaded: SqlStore, tmp_path: Path) -> None:
    export_ndjson(loaded, tmp_path, "R4")
    before = _lines(tmp_path)
    with pytest.raises(InputError, match="exists already"):
        export_ndjson(loaded, tmp_path, "R5", study=SEED)
    assert _lines(tmp_path) == before
    export_ndjson(loaded, tmp_path, "R5", study=SEED, overwrite=True)
    after = _lines(tmp_path)
    assert "Medication.ndjson" in before and "Medication.ndjson" not in after  # R5: a code
    assert after["ResearchStudy.ndjson"] != before["ResearchStudy.ndjson"]


def test_a_failed_export_leaves_the_directory_as_it_was(
        loaded: SqlStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    export_ndjson(loaded, tmp_path, "R4", types=["Patient"])
    before = _lines(tmp_path)
    real = loaded.iter_all

    def failing(*args: Any, **kwargs: Any) -> Iterator[Any]:
        for n, stored in enumerate(real(*args, **kwargs)):
            if n == 20:  # a few files are under way
                raise OSError("disk full")
            yield stored

    monkeypatch.setattr(loaded, "iter_all", failing)
    with pytest.raises(OSError, match="disk full"):
        export_ndjson(loaded, tmp_path, "R4", overwrite=True)
    assert _lines(tmp_path) == before


def test_an_unknown_study_writes_nothing(loaded: SqlStore, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="NCT00000000"):
        export_ndjson(loaded, tmp_path / "none", "R4", study="NCT00000000")
    assert not (tmp_path / "none").exists()


def test_the_command(loaded: SqlStore, tmp_path: Path) -> None:
    url = loaded.engine.url.render_as_string(hide_password=False)
    runner = CliRunner()
    done = runner.invoke(cli, ["export", str(tmp_path / "out"), "--study", SEED,
                               "--fhir-version", "R5", "--type", "AdverseEvent"],
                         env={"FHIR_ADAPTER_DATABASE_URL": url})
    assert done.exit_code == 0, done.output
    events = (tmp_path / "out" / "AdverseEvent.ndjson").read_bytes().splitlines()
    assert done.output.splitlines() == [
        f"{tmp_path / 'out' / 'AdverseEvent.ndjson'}: {len(events)} resource(s)",
        f"{len(events)} resource(s) in 1 file(s)"]
    assert all(b'"status":' in line for line in events)  # R5's (R4 AEs have no status)
    again = runner.invoke(cli, ["export", str(tmp_path / "out"), "--type", "../Patient"],
                          env={"FHIR_ADAPTER_DATABASE_URL": url})
    assert again.exit_code == 2 and "'../Patient'" in again.output
    assert "--type" in again.output
    since = runner.invoke(cli, ["export", str(tmp_path / "out"), "--since", "soon"],
                          env={"FHIR_ADAPTER_DATABASE_URL": url})
    assert since.exit_code == 2 and "--since" in since.output


def test_only_a_bad_type_name_is_blamed_on_type(loaded: SqlStore, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Any other ValueError while exporting is not reported as a --type problem."""
    from fhir_adapter import export

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("something else")

    monkeypatch.setattr(export, "export_ndjson", broken)
    url = loaded.engine.url.render_as_string(hide_password=False)
    done = CliRunner().invoke(cli, ["export", str(tmp_path / "out")],
                              env={"FHIR_ADAPTER_DATABASE_URL": url})
    assert isinstance(done.exception, ValueError) and "--type" not in done.output


def test_since_narrows_what_is_written_not_the_scope(loaded: SqlStore, tmp_path: Path) -> None:
    # Last in the module: it changes a stored Patient (both versions, one new version).
    export_ndjson(loaded, tmp_path / "all", "R4", study=SEED)
    patients = (tmp_path / "all" / "Patient.ndjson").read_bytes().splitlines()
    changed = canonical.loads(patients[0])
    stored = loaded.read("Patient", changed["id"])
    both = {v: canonical.loads(b) for v, b in stored.body.items()}
    for resource in both.values():
        resource.pop("meta")
        resource["active"] = not resource.get("active", False)
    written = loaded.update(both)
    assert written.outcome == "updated"
    after = written.stored.last_updated
    export_ndjson(loaded, tmp_path / "since", "R4", study=SEED, since=after)
    # The events pointing at the study did not change, yet they still lead to the Patient.
    assert _exported(tmp_path / "since") == {("Patient", changed["id"])}
    export_ndjson(loaded, tmp_path / "whole", "R4", since=after)
    assert _exported(tmp_path / "whole") == {("Patient", changed["id"])}
    assert export_ndjson(loaded, tmp_path / "none", "R4", study=SEED,
                         since="2999-01-01").total == 0
    with pytest.raises(NotFound):  # an unknown study says so, since or not
        export_ndjson(loaded, tmp_path / "none", "R4", study="NCT00000000", since=after)
    with pytest.raises(BadRequest, match="invalid _since"):
        export_ndjson(loaded, tmp_path / "none", "R4", since="soon")
