"""Tabular sources (CSV, SAS XPORT) as a stream of rows with provenance."""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

# The text encoding of CSV input: UTF-8 (a BOM allowed) unless the user names another
# (`fhir-adapter --encoding latin-1 ...`, $ingest's charset).
ENCODING: ContextVar[str] = ContextVar("fhir_adapter_csv_encoding", default="utf-8-sig")
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


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

        try:
            return [c.upper() for c in xpt_columns(path)]
        except ValueError as exc:  # XptError: a broken or truncated XPORT file
            raise InputError(str(path), str(exc).removeprefix(f"{path}: ")) from exc
    _check_text(path)
    try:
        with open(path, newline="", encoding=ENCODING.get()) as fh:
            header = next(csv.reader(fh), [])
    except UnicodeDecodeError as exc:
        raise _decode_error(path, exc) from exc
    except csv.Error as exc:
        raise InputError(str(path), f"malformed CSV: {exc}") from exc
    return [h.strip() for h in header]


def _check_text(path: Path) -> None:
    """An InputError for a file that is binary (NUL bytes, not UTF-16/32) or has a BOM that
    the chosen encoding does not read."""
    with open(path, "rb") as fh:
        head = fh.read(8192)
    encoding = ENCODING.get()
    bom = next((name for mark, name in _BOMS if head.startswith(mark)), None)
    if bom and not encoding.lower().replace("_", "-").startswith(bom):
        named = encoding.removesuffix("-sig")
        raise InputError(str(path), f"the file is {bom.upper()} text (it starts with a "
                         f"{bom.upper()} byte-order mark), not {named}: pass --encoding {bom}")
    if b"\0" in head and not bom and "16" not in encoding and "32" not in encoding:
        raise InputError(str(path), f"binary data (a NUL byte at offset {head.index(0)}), "
                         "not CSV text: expected a CSV file or a SAS XPORT (.xpt) file")


def _decode_error(path: Path, exc: UnicodeDecodeError) -> InputError:
    """Where the first undecodable byte is (line and byte offset: the text reader decodes
    ahead in blocks, so its own position says little), and which option fixes it."""
    decoder = codecs.getincrementaldecoder(ENCODING.get())()
    line, offset, byte = 1, 0, exc.object[exc.start]
    with open(path, "rb") as fh:
        for raw in fh:
            try:
                decoder.decode(raw)
            except UnicodeDecodeError as found:
                offset += max(found.start, 0)
                byte = raw[found.start] if found.start < len(raw) else byte
                break
            line, offset = line + 1, offset + len(raw)
    return InputError(str(path), f"not {ENCODING.get().removesuffix('-sig')} text: byte "
                      f"0x{byte:02x} at offset {offset} ({exc.reason}); name the file's "
                      "encoding with --encoding (e.g. --encoding cp1252 or latin-1 for an "
                      "Excel export, --encoding utf-16 for Unicode text)", line - 1)


def read_rows(path: str | Path, upper_columns: bool = False) -> Iterator[Row]:
    """Stream rows of a CSV or XPT file; memory stays flat whatever the file size."""
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), "no such file")
    if is_xpt(path):
        yield from _xpt_rows(path)
        return
    _check_text(path)
    try:
        with open(path, newline="", encoding=ENCODING.get()) as fh:
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
        raise _decode_error(path, exc) from exc
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
