"""`fhir-adapter serve`: where --examples finds the seed files, loading them idempotently, and
the settings the app factory reads from FHIR_ADAPTER_* variables."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import click
import pytest

from fhir_adapter.commands.serve import EXAMPLES, find_examples, load_examples
from fhir_adapter.gateway import load_settings

CHECKOUT = Path(__file__).resolve().parents[1] / "examples"


def test_examples_found_in_the_checkout_then_the_working_directory(tmp_path, monkeypatch
                                                                   ) -> None:
    assert find_examples(None) == CHECKOUT
    given = tmp_path / "mine"
    given.mkdir()
    with pytest.raises(click.UsageError, match="--examples-dir"):
        find_examples(given)
    shutil.copy(CHECKOUT / EXAMPLES[0][1], given)
    assert find_examples(given) == given


def test_missing_examples_name_the_option(tmp_path, monkeypatch) -> None:
    import fhir_adapter.commands.serve as serve

    # As installed (site-packages has no examples/) and run outside a checkout.
    monkeypatch.setattr(serve, "__file__", str(tmp_path / "pkg" / "commands" / "serve.py"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(click.UsageError, match="--examples-dir PATH"):
        find_examples(None)
    (tmp_path / "examples").mkdir()
    shutil.copy(CHECKOUT / EXAMPLES[0][1], tmp_path / "examples")
    assert find_examples(None) == Path.cwd() / "examples"


def _counts(lines: list[str]) -> dict[str, tuple[int, ...]]:
    # "NCT05003921.json: 7 created, 0 updated, 0 unchanged" -> {"NCT05003921.json": (7, 0, 0)}
    out = {}
    for line in lines:
        name, _, rest = line.partition(": ")
        out[name] = tuple(int(n) for n in re.findall(r"(\d+) (?:created|updated|unchanged)",
                                                     rest))
    return out


def test_loading_the_examples_twice_changes_nothing(tmp_path) -> None:
    database = f"sqlite:///{tmp_path / 'fhir.db'}"
    first = _counts(load_examples(database, CHECKOUT))
    assert set(first) == {name for _, name in EXAMPLES if (CHECKOUT / name).exists()}
    assert all(created > 0 and updated == 0 for created, updated, _ in first.values())
    second = _counts(load_examples(database, CHECKOUT))
    assert second == {name: (0, 0, created) for name, (created, _, _) in first.items()}


def test_settings_from_environment_and_overrides(monkeypatch) -> None:
    monkeypatch.setenv("FHIR_ADAPTER_MAX_COUNT", "250")
    monkeypatch.setenv("FHIR_ADAPTER_PUBLIC_BASE_URL", "https://fhir.example.org/fhir")
    settings = load_settings({"DEFAULT_COUNT": 500})
    assert settings["MAX_COUNT"] == 250
    assert settings["DEFAULT_COUNT"] == 250  # never above the cap
    assert settings["PUBLIC_BASE_URL"] == "https://fhir.example.org/fhir"
    monkeypatch.setenv("FHIR_ADAPTER_MAX_CONTENT_LENGTH", "lots")
    with pytest.raises(ValueError, match="FHIR_ADAPTER_MAX_CONTENT_LENGTH"):
        load_settings()
