"""Golden-file comparison: output bytes against tests/golden/**/<case>.expected.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

GOLDEN = Path(__file__).resolve().parent / "golden"


def check_golden(path: Path, actual: Any, update: bool) -> None:
    """Compare `actual` with the stored file; with --update-golden, rewrite it instead."""
    data = orjson.dumps(actual, option=orjson.OPT_INDENT_2) + b"\n"
    if update or not path.exists():
        if not update:
            raise AssertionError(f"{path} missing: run pytest --update-golden and review it")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return
    expected = orjson.loads(path.read_bytes())
    assert orjson.loads(data) == expected, f"{path.name} differs (pytest --update-golden to accept)"
