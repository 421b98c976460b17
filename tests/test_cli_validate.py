"""`fhir-adapter validate`: resources, Bundles and NDJSON; every issue with its location."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fhir_adapter", *args],
                          capture_output=True, text=True, timeout=120)


def test_valid_resource(fixtures_dir: Path) -> None:
    done = run("validate", str(fixtures_dir / "fhir/examples/r4/AdverseEvent-example.json"))
    assert done.returncode == 0, done.stderr
    assert "1 resource(s) valid FHIR R4" in done.stdout


def test_r5_resource_against_r4_lists_every_issue(fixtures_dir: Path) -> None:
    path = fixtures_dir / "fhir/examples/r5/ResearchSubject-example-crossover-placebo-to-drug.json"
    done = run("validate", "--fhir-version", "R4", str(path))
    assert done.returncode == 1
    assert "ResearchSubject.status" in done.stdout
    assert "Traceback" not in done.stderr
    assert done.stdout.count("\n") >= 3


def test_bundle_entries_located(tmp_path: Path) -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "ResearchStudy", "id": "a", "status": "active"}},
        {"resource": {"resourceType": "ResearchStudy", "id": "b", "status": "nope"}},
    ]}
    path = tmp_path / "b.json"
    path.write_text(json.dumps(bundle))
    done = run("validate", str(path))
    assert done.returncode == 1
    assert "Bundle.entry[1].resource.status" in done.stdout


def test_ndjson_lines_located(tmp_path: Path) -> None:
    path = tmp_path / "x.ndjson"
    path.write_text('{"resourceType": "ResearchStudy", "id": "a", "status": "active"}\n'
                    '{"resourceType": "ResearchStudy", "id": "b"}\n')
    done = run("validate", "--fhir-version", "R4", str(path))
    assert done.returncode == 1
    assert "line 2" in done.stdout and "status" in done.stdout
    ok = run("validate", "--fhir-version", "R5", str(path))
    assert "line 2" in ok.stdout  # R5 status is required too


def test_not_json(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text("this is { not json")
    done = run("validate", str(path))
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {path}, row 1")
    assert "Traceback" not in done.stderr
