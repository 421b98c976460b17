"""`fhir-adapter map study` end to end, as a user runs it (a real process, so that the exit
code, stdout bytes and stderr lines are what a shell sees)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "NCT05003921.json"
MAIN = "import sys; from fhir_adapter.cli import main; main(sys.argv[1:])"


def run(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-c", MAIN, *map(str, args)], capture_output=True,
                          timeout=120, check=False)


def test_bundle_on_stdout() -> None:
    done = run("map", "study", EXAMPLE)
    assert done.returncode == 0, done.stderr
    bundle = json.loads(done.stdout)
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds[0] == "ResearchStudy"
    assert {"Organization", "Practitioner", "PractitionerRole", "Location", "Group"} <= set(kinds)
    assert all(e["fullUrl"] == f"urn:uuid:{e['resource']['id']}" for e in bundle["entry"])
    assert b"warning: " in done.stderr and b"descriptionModule missing" in done.stderr


def test_output_file_is_byte_identical_across_runs(tmp_path: Path) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    for path in (first, second):
        done = run("map", "study", EXAMPLE, "--fhir-version", "R5", "--output", path)
        assert done.returncode == 0, done.stderr
        assert done.stdout == b""
    assert first.read_bytes() == second.read_bytes()
    done = run("validate", first, "--fhir-version", "R5")
    assert done.returncode == 0, done.stdout + done.stderr


def test_ndjson_and_shared_resources_once(tmp_path: Path, fixtures_dir: Path) -> None:
    out = tmp_path / "all.ndjson"
    array = fixtures_dir / "ctgov" / "v2" / "trial-match-ai_ctg-studies.json"
    done = run("map", "study", EXAMPLE, array, EXAMPLE, "--ndjson", "-o", out)
    assert done.returncode == 0, done.stderr
    lines = out.read_bytes().splitlines()
    resources = [json.loads(line) for line in lines]
    keys = [(r["resourceType"], r["id"]) for r in resources]
    assert len(keys) == len(set(keys))  # the example given twice, sponsors shared: once each
    assert sum(r["resourceType"] == "ResearchStudy" and "partOf" not in r
               for r in resources) == 11
    assert f"{len(lines)} FHIR R4 resource(s) written".encode() in done.stderr


@pytest.mark.parametrize("content, message", [
    (b"this is not json", b"neither JSON nor XML"),
    (b'{"resourceType": "Patient", "id": "x"}', b"JSON is not a ClinicalTrials.gov study"),
    (b'{"protocolSection": {"identificationModule": {"briefTitle": "x"}}}',
     b"protocolSection.identificationModule.nctId missing"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, content: bytes,
                                          message: bytes) -> None:
    path = tmp_path / "input.json"
    path.write_bytes(content)
    out = tmp_path / "out.json"
    done = run("map", "study", path, "--output", out)
    assert done.returncode == 2
    assert done.stderr.count(b"\n") == 1 and b"Traceback" not in done.stderr
    assert done.stderr.startswith(b"error: " + str(path).encode()) and message in done.stderr
    assert not out.exists()  # nothing half-written
