"""Loading files into the store (SQLite and PostgreSQL): both FHIR versions paired by id, one
transaction per file, re-loads that change nothing, Bundle/NDJSON loading, the commands."""

# ruff: noqa: F811 (tests take the fixtures imported from store_backends as arguments)

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from store_backends import backend, postgres_database, store, store_url  # noqa: F401 (fixtures)

from fhir_adapter.cli import cli
from fhir_adapter.commands.reporting import Console
from fhir_adapter.errors import InputError, NotFound
from fhir_adapter.pipeline import load as loader
from fhir_adapter.pipeline.bundles import load_bundles
from fhir_adapter.pipeline.load import LoadSummary, load_files, paired
from fhir_adapter.store import SqlStore, open_store
from fhir_adapter.store.base import SearchQuery

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def people_source(tmp_path: Path, name: str, rows: list[dict[str, Any]]) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def people(paths: list[Path], version: str, report: Any = None, **options: Any
           ) -> Iterator[dict[str, Any]]:
    """A stand-in mapping: Patient + ResearchSubject per row, R5 in reverse order, and an
    R4-only Medication; a row {"fail": true} raises like a bad source row."""
    for path in paths:
        rows = json.loads(path.read_text("utf-8"))
        out = []
        for row in rows:
            if row.get("fail"):
                raise InputError(str(path), "bad row", row=rows.index(row) + 1)
            pid, sid = f"pat-{row['id']}", f"sub-{row['id']}"
            out.append({"resourceType": "Patient", "id": pid, "gender": row["gender"]})
            subject = {"resourceType": "ResearchSubject", "id": sid, "study": {
                "reference": "ResearchStudy/s1"}}
            if version == "R4":
                subject |= {"status": "on-study", "individual": {"reference": f"Patient/{pid}"}}
            else:
                subject |= {"status": "active", "subject": {"reference": f"Patient/{pid}"}}
            out.append(subject)
        if version == "R4":
            out.append({"resourceType": "Medication", "id": "drug", "code": {"text": "x"}})
        yield from (out if version == "R4" else reversed(out))


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "producer", lambda kind: people)


def test_paired_matches_versions_by_type_and_id() -> None:
    r4 = [{"resourceType": "A", "id": "1"}, {"resourceType": "B", "id": "1"},
          {"resourceType": "M", "id": "x"}]
    r5 = [{"resourceType": "B", "id": "1", "v": 5}, {"resourceType": "A", "id": "1", "v": 5}]
    pairs = list(paired(r4, r5))
    assert [(sorted(p), next(iter(p.values()))["resourceType"]) for p in pairs] == [
        (["R4", "R5"], "B"), (["R4", "R5"], "A"), (["R4"], "M")]
    assert pairs[0]["R5"]["v"] == 5


def test_load_twice_changes_nothing(store: SqlStore, tmp_path: Path, fake: None) -> None:
    source = people_source(tmp_path, "a.json", [{"id": 1, "gender": "male"},
                                                {"id": 2, "gender": "female"}])
    first = load_files("enrollments", [source], store=store)
    assert str(first) == "5 created, 0 updated, 0 unchanged"
    assert first.lines() == ["Medication: 1 created, 0 updated, 0 unchanged",
                             "Patient: 2 created, 0 updated, 0 unchanged",
                             "ResearchSubject: 2 created, 0 updated, 0 unchanged"]
    subject = store.read("ResearchSubject", "sub-1")
    assert set(subject.body) == {"R4", "R5"}
    assert orjson.loads(subject.json("R5"))["subject"] == {"reference": "Patient/pat-1"}
    assert set(store.read("Medication", "drug").body) == {"R4"}
    before = {(s.resource_type, s.id): (s.version_id, s.body) for s in store.iter_all()}
    second = load_files("enrollments", [source], store=store)
    assert str(second) == "0 created, 0 updated, 5 unchanged"
    after = {(s.resource_type, s.id): (s.version_id, s.body) for s in store.iter_all()}
    assert after == before
    assert len(store.history()) == 5
    changed = people_source(tmp_path, "a.json", [{"id": 1, "gender": "other"},
                                                 {"id": 2, "gender": "female"}])
    third = load_files("enrollments", [changed], store=store)
    assert (third.total("updated"), third.total("unchanged")) == (1, 4)
    assert store.read("Patient", "pat-1").version_id == 2


def test_a_failing_file_writes_nothing(store: SqlStore, tmp_path: Path, fake: None) -> None:
    good = people_source(tmp_path, "good.json", [{"id": 1, "gender": "male"}])
    bad = people_source(tmp_path, "bad.json", [{"id": 7, "gender": "male"}, {"fail": True}])
    with pytest.raises(InputError) as caught:
        load_files("enrollments", [good, bad], store=store)
    assert caught.value.file == str(bad) and caught.value.row == 2
    assert store.read("Patient", "pat-1").version_id == 1  # the first file committed
    with pytest.raises(NotFound):
        store.read("Patient", "pat-7")


def test_progress_counter(capsys: pytest.CaptureFixture[str]) -> None:
    meter = Console(progress=True, every=2)
    for count in range(1, 6):
        meter.progress("f.csv", count)
    meter.progress("f.csv", 5, done=True)
    assert capsys.readouterr().err.endswith("\rf.csv: 5 resources\n")
    quiet = Console(progress=False, every=1)
    quiet.progress("f.csv", 1)
    quiet.progress("f.csv", 1, done=True)
    assert capsys.readouterr().err == ""


BUNDLE = (b'{"resourceType":"Bundle","type":"transaction","entry":['
          b'{"fullUrl":"urn:uuid:8c2f6f56-0c0e-4b4e-9b8a-6f1d3b1c1a01","resource":'
          b'{"resourceType":"Patient","gender":"female"},"request":{"method":"POST","url":'
          b'"Patient"}},'
          b'{"fullUrl":"urn:uuid:8c2f6f56-0c0e-4b4e-9b8a-6f1d3b1c1a02","resource":'
          b'{"resourceType":"Group","type":"person","actual":true,"quantity":1,'
          b'"characteristic":[{"code":{"text":"weight"},"valueQuantity":{"value":70.50},'
          b'"exclude":false}],"member":[{"entity":{"reference":'
          b'"urn:uuid:8c2f6f56-0c0e-4b4e-9b8a-6f1d3b1c1a01"}}]}}]}')


def test_load_bundle_relinks_and_keeps_bytes(store: SqlStore, tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_bytes(BUNDLE)
    summary = load_bundles([path], "R4", store=store)
    assert str(summary) == "2 created, 0 updated, 0 unchanged"
    group = store.read("Group", "8c2f6f56-0c0e-4b4e-9b8a-6f1d3b1c1a02").json("R4")
    assert b'"value":70.50' in group
    assert b'"reference":"Patient/8c2f6f56-0c0e-4b4e-9b8a-6f1d3b1c1a01"' in group
    found = store.search(SearchQuery("Group", "R4", [
        ("member", "Patient/8c2f6f56-0c0e-4b4e-9b8a-6f1d3b1c1a01")]))
    assert found.total == 1
    assert str(load_bundles([path], "R4", store=store)) == "0 created, 0 updated, 2 unchanged"


def test_load_ndjson_all_or_nothing(store: SqlStore, tmp_path: Path) -> None:
    path = tmp_path / "r.ndjson"
    lines = [{"resourceType": "Patient", "id": "n1"}, {"resourceType": "Patient", "id": "n2"}]
    path.write_text("\n".join(json.dumps(r) for r in lines) + "\n\n", encoding="utf-8")
    assert load_bundles([path], "R5", store=store).total("created") == 2
    assert set(store.read("Patient", "n1").body) == {"R5"}
    bad = tmp_path / "bad.ndjson"
    bad.write_text(json.dumps({"resourceType": "Patient", "id": "n3"}) + "\n"
                   + json.dumps({"resourceType": "Patient", "id": "n4", "gender": "robot"})
                   + "\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_bundles([bad], "R4", store=store)
    assert caught.value.row == 2 and "gender" in caught.value.message
    with pytest.raises(NotFound):
        store.read("Patient", "n3")


def test_commands(store_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    init = runner.invoke(cli, ["db", "init", "--database", store_url])
    assert init.exit_code == 0, init.output
    assert init.output.startswith("database ready: ")
    path = tmp_path / "b.json"
    path.write_bytes(BUNDLE)
    loaded = runner.invoke(cli, ["load", "bundle", str(path), "--database", store_url,
                                 "--no-progress"])
    assert loaded.exit_code == 0, loaded.output
    assert "Group: 1 created, 0 updated, 0 unchanged" in loaded.output
    assert "1 file(s) loaded: 2 created, 0 updated, 0 unchanged" in loaded.output
    again = runner.invoke(cli, ["load", "bundle", str(path)],
                          env={"FHIR_ADAPTER_DATABASE_URL": store_url})
    assert "0 created, 0 updated, 2 unchanged" in again.output


@pytest.mark.parametrize("database,words", [
    ("{tmp}/no/such/folder/x.db", "unable to open database file"),
    ("postgresql://postgres@127.0.0.1:1/nodb", "Connection refused"),  # nothing listens
])
def test_a_database_that_cannot_be_opened_is_one_clear_line(tmp_path: Path, database: str,
                                                            words: str) -> None:
    source = tmp_path / "b.json"
    source.write_bytes(BUNDLE)
    url = database.format(tmp=tmp_path)
    for args in (["load", "bundle", str(source)], ["db", "init"]):
        done = subprocess.run([sys.executable, "-m", "fhir_adapter.cli", *args,
                               "--database", url], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 1, done.stderr
        assert done.stderr.startswith("error: the database: "), done.stderr
        assert words in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


def test_seed_study_loads_in_both_versions(store: SqlStore) -> None:
    files = [("study", "NCT05003921.json", {}),
             ("enrollments", "NCT05003921.enrollments.csv", {"study": "NCT05003921"}),
             ("adverse-events", "NCT05003921.adverse-events.csv", {"study": "NCT05003921"})]
    if not all((EXAMPLES / name).is_file() for _, name, _ in files):
        pytest.skip("examples/ seed files not present")
    first = LoadSummary()
    for kind, name, options in files:
        done = load_files(kind, [EXAMPLES / name], store=store, **options)
        first.counts.update(done.counts)
    assert first.total("created") > 20 and first.total("unchanged") == 0
    for kind, name, options in files:
        again = load_files(kind, [EXAMPLES / name], store=store, **options)
        assert (again.total("created"), again.total("updated")) == (0, 0), kind
    study = store.search(SearchQuery("ResearchStudy", "R5", [("identifier", "NCT05003921")]))
    assert study.total == 1
    subjects = store.referencing("ResearchSubject", "R4", "study", study.matches)
    assert subjects and all(set(store.read("ResearchSubject", s.id).body) == {"R4", "R5"}
                            for s in subjects)
    events = store.search(SearchQuery("AdverseEvent", "R5", [("study", study.matches[0].id)]))
    assert events.total == first.counts["AdverseEvent"]["created"]


def test_open_store_default_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FHIR_ADAPTER_DATABASE_URL", raising=False)
    opened = open_store()
    opened.close()
    assert (tmp_path / "fhir-adapter.db").is_file()


AE_HEADER = "study_id,subject_id,event_id,verbatim_term,severity,serious,outcome,onset_date\n"
AE_ROW = "NCT05003921,AG01-{n:03d},E1,Nausea,{severity},N,recovered/resolved,2023-01-11\n"


def test_load_names_every_bad_row_and_keeps_what_was_stored(tmp_path: Path) -> None:
    """Through the CLI's mapping processes: each bad row with its file, row and field (as
    `map` lists them), the file's summary last, exit 2, and the store as it was."""
    database = tmp_path / "s.db"
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text(AE_HEADER + AE_ROW.format(n=1, severity="mild"))
    rows = [AE_ROW.format(n=n, severity="mild" if n % 2 else "extreme") for n in range(1, 50)]
    bad.write_text(AE_HEADER + "".join(rows))

    def load(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "fhir_adapter.cli", "load",
                               "adverse-events", str(path), "--database", str(database),
                               "--no-progress"], capture_output=True, text=True, timeout=120)

    assert load(good).returncode == 0
    done = load(bad)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert lines[0].startswith(f"error: {bad}, row 2, field severity: 'extreme' is not one of")
    assert lines[19].startswith(f"error: {bad}, row 40, field severity")
    assert lines[20:] == ["error: ... and 4 more",
                          f"error: {bad}: 24 invalid row(s): nothing written "
                          "(--skip-invalid maps the valid rows)"]
    store = open_store(str(database))
    try:
        assert store.search(SearchQuery("AdverseEvent", "R4")).total == 1
    finally:
        store.close()  # type: ignore[attr-defined]
