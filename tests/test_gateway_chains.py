"""Issue 21's done-when for chaining, on a store of its own holding two real studies loaded by
the CLI (examples/NCT05003921 and the CT.gov fixture NCT05594173, each with enrolled
subjects): `ResearchSubject?study:ResearchStudy.identifier=NCT05003921` and
`Patient?_has:ResearchSubject:individual:study=ResearchStudy/<id>` (R5: `subject`) give
exactly that study's subjects and patients, on SQLite and PostgreSQL, R4 and R5, the fast
path and Flask alike."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import FIXTURES, ROOT
from flask import Flask
from store_backends import new_postgres_database

from fhir_adapter.cli import cli
from fhir_adapter.gateway import create_app
from fhir_adapter.ids import study_resource_id
from fhir_adapter.store.canonical import loads

STUDIES = ("NCT05003921", "NCT05594173")
SOURCES = {"NCT05003921": ROOT / "examples" / "NCT05003921.json",
           "NCT05594173": FIXTURES / "ctgov" / "v2" / "NCT05594173.json"}


def _enrollments(folder: Path, study: str, count: int) -> Path:
    """The example's enrollment rows, renumbered for `study` (the first `count`)."""
    with open(ROOT / "examples" / "NCT05003921.enrollments.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))[:count]
    path = folder / f"{study}.enrollments.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "study": study,
                             "subject_id": f"{study[-4:]}-{row['subject_id']}"})
    return path


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[tuple[Flask, dict[str, int]]]:
    """The app over a fresh store with both studies; (app, subjects per study)."""
    folder = tmp_path_factory.mktemp("chains")
    with (new_postgres_database() if request.param == "postgresql"
          else nullcontext(f"sqlite:///{folder / 'chains.db'}")) as url:
        runner = CliRunner()
        sizes = {"NCT05003921": 8, "NCT05594173": 5}
        for study, size in sizes.items():
            for args in (["study", str(SOURCES[study])],
                         ["enrollments", str(_enrollments(folder, study, size)),
                          "--study", study]):
                done = runner.invoke(cli, ["load", *args, "--database", url, "--no-progress"])
                assert done.exit_code == 0, done.output
        yield create_app({"DATABASE_URL": url}), sizes


def _ids(flask: Flask, path: str, minimal: bool = False) -> set[str]:
    """Ids of the matches, all pages; `minimal` sends a header the fast path leaves to Flask,
    so both paths are asked."""
    headers = {"Prefer": "return=minimal"} if minimal else {}
    answer = flask.test_client().get(path + "&_count=100", headers=headers)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    bundle = loads(answer.data)
    assert bundle["total"] == len(bundle.get("entry", []))
    return {e["resource"]["id"] for e in bundle.get("entry", [])}


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_a_study_s_subjects_and_patients(app: tuple[Flask, dict[str, int]],
                                         version: str) -> None:
    flask, sizes = app
    prefix = "/fhir/R5" if version == "R5" else "/fhir"
    individual = "subject" if version == "R5" else "individual"
    every_patient = _ids(flask, f"{prefix}/Patient?_id:missing=false")
    for study in STUDIES:
        sid = study_resource_id(study)
        for minimal in (False, True):
            subjects = _ids(flask, f"{prefix}/ResearchSubject?study:ResearchStudy.identifier="
                            f"{study}", minimal)
            assert subjects == _ids(flask, f"{prefix}/ResearchSubject?study=ResearchStudy/"
                                    f"{sid}", minimal)
            assert len(subjects) == sizes[study]
            assert _ids(flask, f"{prefix}/ResearchSubject?study.identifier={study}",
                        minimal) == subjects
            patients = _ids(flask, f"{prefix}/Patient?_has:ResearchSubject:{individual}:"
                            f"study=ResearchStudy/{sid}", minimal)
            assert len(patients) == sizes[study] and patients < every_patient
            # the patients the subjects name, read off the subjects themselves
            named = set()
            for rid in subjects:
                subject = loads(flask.test_client().get(
                    f"{prefix}/ResearchSubject/{rid}").data)
                named.add(subject[individual]["reference"].rsplit("/", 1)[-1])
            assert patients == named
            # two links, a chain ending in _has: the subjects whose patient is in the study
            assert _ids(flask, f"{prefix}/ResearchSubject?{individual}:Patient._has:"
                        f"ResearchSubject:{individual}:study.identifier={study}",
                        minimal) == subjects
