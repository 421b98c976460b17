"""A non-editable install carries the ConceptMaps, the FHIR schemas and the package data."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_is_listed_in_setup_cfg() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    listed = set(cfg["options"]["packages"].split())
    found = {
        ".".join(p.relative_to(ROOT).parent.parts)
        for p in (ROOT / "fhir_adapter").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert found <= listed, f"add to setup.cfg [options] packages: {sorted(found - listed)}"


def test_wheel_contains_data(tmp_path: Path) -> None:
    # Build the wheel the way `pip install .` does (no network: the venv's setuptools).
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("fhir_adapter-*.whl"))
    import zipfile

    names = set(zipfile.ZipFile(wheel).namelist())
    maps = {p.name for p in (ROOT / "mappings").glob("*.json")}
    assert maps, "no ConceptMaps in mappings/"
    assert {f"fhir_adapter/mappings/{m}" for m in maps} <= names
    for data in ("r4.schema.json", "r5.schema.json"):
        assert f"fhir_adapter/data/schema/{data}" in names
    for schema in (ROOT / "fhir_adapter" / "data").glob("*.schema.json"):
        assert f"fhir_adapter/data/{schema.name}" in names
    assert any(n.endswith("entry_points.txt") for n in names)
    dashboard = ROOT / "fhir_adapter" / "dashboard"
    shipped = {f"fhir_adapter/dashboard/{p.relative_to(dashboard)}"
               for p in dashboard.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert shipped <= names, f"dashboard files missing from the wheel: {shipped - names}"
    assert "fhir_adapter/dashboard/static/vendor/vega-lite.min.js" in shipped

    # Installed (not the checkout): the ConceptMaps and schemas load from the package.
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); import fhir_adapter, json; "
             "from fhir_adapter import conceptmaps, validation; "
             "assert fhir_adapter.__file__.startswith(sys.argv[1]), fhir_adapter.__file__; "
             "print(len(conceptmaps.all_maps()), "
             "validation.validate({'resourceType': 'Group', 'type': 'person', "
             "'actual': False}, 'R4'))")
    done = subprocess.run([sys.executable, "-c", probe, str(site)], cwd=tmp_path,
                          capture_output=True, text=True, check=True)
    assert done.stdout.split()[0] == str(len(maps)) and done.stdout.strip().endswith("[]")
    # The installed dashboard serves its page and the vendored Vega builds (offline).
    probe = ("import sys, tempfile; sys.path.insert(0, sys.argv[1]); "
             "from fhir_adapter.gateway import create_app; "
             "c = create_app({'DATABASE_URL': 'sqlite:///' + tempfile.mkdtemp() + '/d.db'})"
             ".test_client(); "
             "print(*(c.get(p).status_code for p in ('/', '/dashboard/static/vendor/vega.min.js',"
             " '/dashboard/static/vendor/vega-embed.min.js', '/dashboard/static/study.js')))")
    done = subprocess.run([sys.executable, "-c", probe, str(site)], cwd=tmp_path,
                          capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["200"] * 4, done.stdout + done.stderr


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = [b.split("```", 1)[0].strip() for b in readme.split("```sh\n")[1:3]]
    install_and_run, test_command = blocks
    assert "pip install ." in install_and_run and "serve --examples" in install_and_run
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci, "the README's test command must be .ci/run's, verbatim"
