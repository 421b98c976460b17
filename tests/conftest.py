"""Shared fixtures: where the public test data lives, golden-file updating, versions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The public CT.gov, CDISC SDTM and HL7 data the tests read: tests/fixtures (copies, origins in
# its README.md), or the folder holding another `fixtures/` named by FHIR_ADAPTER_SHARED.
SHARED = Path(os.environ.get("FHIR_ADAPTER_SHARED", ROOT / "tests"))
FIXTURES = SHARED / "fixtures"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true",
                     help="Rewrite tests/golden/**/*.expected.json from the current output.")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The folder holding `fixtures/` (tests/, unless FHIR_ADAPTER_SHARED says otherwise)."""
    if not FIXTURES.is_dir():
        pytest.skip(f"public fixtures not present at {FIXTURES} (set FHIR_ADAPTER_SHARED)")
    return SHARED


@pytest.fixture(scope="session")
def fixtures_dir(shared_dir: Path) -> Path:
    return shared_dir / "fixtures"


@pytest.fixture(scope="session")
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


def fixture_path(*parts: str) -> Path:
    """A file under the fixtures folder, or a skip naming what is missing."""
    path = FIXTURES.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"public fixture {path} not present (set FHIR_ADAPTER_SHARED)")
    return path
