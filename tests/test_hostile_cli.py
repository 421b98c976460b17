"""Issue 18's command-line repros: every input problem is one clear line (file, row or
offset, what is wrong; `--encoding` for encodings), a non-zero exit and no traceback; nothing
is exported from a database that is not there, and counts are what the file holds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DM_XPT = ROOT / "tests" / "fixtures" / "sdtm" / "cdiscpilot01-slice" / "dm.xpt"
HEADER = "subject_id,sex,birth_year\n"


def cli(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fhir_adapter", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


def refused(done: subprocess.CompletedProcess[str], *words: str) -> str:
    """The one error line, checked: non-zero exit, no traceback, every word in it."""
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith(("error:",
                                                                             "Error:"))]
    assert len(errors) == 1, done.stderr
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


@pytest.mark.parametrize(("name", "data", "words"), [
    ("latin1.csv", (HEADER + "S-1,F,1970\nS-\xe42,M,1980\n").encode("latin-1"),
     ["latin1.csv", "row 2", "byte 0xe4", "--encoding"]),
    ("excel.csv", (HEADER + "S-1,F,1970\n").encode("utf-16"),
     ["excel.csv", "UTF-16", "--encoding utf-16"]),
    ("binary.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 20, ["binary.csv", "binary"]),
])
def test_undecodable_csv_is_one_line_naming_the_option(tmp_path: Path, name: str, data: bytes,
                                                       words: list[str]) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    refused(cli("map", "enrollments", path, "--study", "NCT05003921"), *words)


def test_encoding_option_reads_the_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes((HEADER + "S-\xe41,F,1970\n").encode("latin-1"))
    done = cli("--encoding", "latin-1", "map", "enrollments", path, "--study", "NCT05003921")
    assert done.returncode == 0, done.stderr
    assert '"S-\u00e41"' in done.stdout  # the subject id, decoded as written
    refused(cli("--encoding", "klingon", "map", "enrollments", path), "klingon")


@pytest.mark.parametrize("cut", [100, 1000, 3000])
def test_broken_xpt_is_one_line(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "dm.xpt"
    path.write_bytes(DM_XPT.read_bytes()[:cut])
    refused(cli("map", "enrollments", path, "--study", "NCT05003921"), "dm.xpt", "truncated")


def test_export_needs_an_existing_database_and_real_types(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    refused(cli("export", tmp_path / "out", "--database", missing), "no database", "nope.db")
    assert not missing.exists()
    database = tmp_path / "fhir.db"
    assert cli("db", "init", "--database", database).returncode == 0
    refused(cli("export", tmp_path / "out", "--database", database, "--type", "Bogus"),
            "Bogus", "--type")


def test_empty_files_are_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"  \n")
    refused(cli("validate", empty), "empty.json", "empty")
    refused(cli("load", "bundle", empty, "--database", tmp_path / "fhir.db"), "empty.json",
            "empty")


def test_validate_counts_bundle_entries_and_hints_at_the_version(tmp_path: Path) -> None:
    study = ROOT / "examples" / "NCT05003921.json"
    r4, r5 = tmp_path / "r4.json", tmp_path / "r5.json"
    for version, out in (("R4", r4), ("R5", r5)):
        assert cli("map", "study", study, "--fhir-version", version, "--output",
                   out).returncode == 0
    done = cli("validate", r4)
    assert done.returncode == 0, done.stdout
    assert "8 resource(s)" in done.stdout  # the Bundle and its 7 entries, not "1"
    done = cli("validate", r5)
    assert done.returncode == 1
    assert "hint: the file is valid FHIR R5: pass --fhir-version R5" in done.stderr
    # Each unknown element once (the schema's words), not again in the model's.
    assert "Extra inputs are not permitted" not in done.stdout
    assert "were unexpected" in done.stdout or "was unexpected" in done.stdout
