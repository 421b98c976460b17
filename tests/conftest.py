"""Shared fixtures: where the public test data lives, golden-file updating, versions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FHIR_ADAPTER_SHARED", ROOT.parent / "shared"))
FIXTURES = SHARED / "fixtures"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true",
                     help="Rewrite tests/golden/**/*.expected.json from the current output.")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared (CT.gov and SDTM fixtures are read from there, never committed)."""
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
    """A file under ../shared/fixtures, or a skip naming what is missing."""
    path = FIXTURES.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"public fixture {path} not present (set FHIR_ADAPTER_SHARED)")
    return path
