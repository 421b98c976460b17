"""Tabular sources (CSV, SAS XPORT) as a stream of rows with provenance."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError


@dataclass(frozen=True)
class Row:
    """One source row: its values (blank -> None, text stripped) and where it came from."""

    file: str
    number: int  # 1-based data row number (CSV: the header is row 0)
    values: dict[str, str | None]

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def error(self, field_name: str | None, message: str) -> InputError:
        """An InputError pointing at this row (and field)."""
        return InputError(self.file, message, self.number, field_name)


def is_xpt(path: Path) -> bool:
    """SAS XPORT files start with a fixed library header record."""
    with open(path, "rb") as fh:
        return fh.read(20) == b"HEADER RECORD*******"


def columns(path: str | Path) -> list[str]:
    """Column names of a CSV or XPT file, without reading its rows."""
    path = Path(path)
    if is_xpt(path):
        from .xpt import xpt_columns

        return [c.upper() for c in xpt_columns(path)]
    with open(path, newline="", encoding="utf-8-sig") as fh:
        header = next(csv.reader(fh), [])
    return [h.strip() for h in header]


def read_rows(path: str | Path, upper_columns: bool = False) -> Iterator[Row]:
    """Stream rows of a CSV or XPT file; memory stays flat whatever the file size."""
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), "no such file")
    if is_xpt(path):
        yield from _xpt_rows(path)
        return
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if not header:
                raise InputError(str(path), "empty file: expected a CSV header row")
            names = [h.strip().upper() if upper_columns else h.strip() for h in header]
            file = str(path)
            for number, record in enumerate(reader, start=1):
                if not "".join(record).strip():  # blank line, or only blank cells
                    continue
                if len(record) > len(names):
                    raise InputError(file, f"{len(record)} values for {len(names)} columns",
                                     number)
                values = {n: v or None for n, v in zip(names, map(str.strip, record), strict=False)}
                yield Row(file, number, values)
    except UnicodeDecodeError as exc:
        raise InputError(str(path), f"not UTF-8 text ({exc.reason})") from exc
    except csv.Error as exc:
        raise InputError(str(path), f"malformed CSV: {exc}") from exc


def _xpt_rows(path: Path) -> Iterator[Row]:
    from .xpt import XptError, read_xpt

    try:
        for number, record in read_xpt(path):
            yield Row(str(path), number, {k.upper(): _text(v) for k, v in record.items()})
    except XptError as exc:
        raise InputError(str(path), str(exc)) from exc


def _text(value: str | float | None) -> str | None:
    """XPT values as the text a CSV export would hold: 63.0 -> '63', '' -> None."""
    if value is None:
        return None
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    value = value.strip()
    return value or None
