"""sources/tabular.py: CSV rows as the reference reading gives them (blank lines skipped,
cells stripped, blank cells None), whatever the cells hold."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_adapter.sources.tabular import read_rows

CELLS = st.one_of(st.sampled_from(["", " ", "\t", " x ", "a,b", 'say "hi"', "Y", "2024-01-02",
                                   "\u00a0", "\u3000z"]),
                  st.text(alphabet=st.characters(blacklist_categories=("Cs",),
                                                 blacklist_characters="\r\n\x00"),
                          max_size=5))


def _reference(text: str, upper: bool) -> list[tuple[int, dict]]:
    """The reading before it was sped up."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    names = [h.strip().upper() if upper else h.strip() for h in header]
    out = []
    for number, record in enumerate(reader, start=1):
        if not any(cell.strip() for cell in record):
            continue
        out.append((number, {n: (v.strip() or None) for n, v in zip(names, record,
                                                                      strict=False)}))
    return out


@settings(max_examples=80, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(CELLS, min_size=0, max_size=3), max_size=6),
       upper=st.booleans())
def test_rows_read_as_the_reference_reads_them(tmp_path: Path, rows: list[list[str]],
                                               upper: bool) -> None:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(["a", " b ", "c"])
    writer.writerows(rows)
    text = buffer.getvalue()
    path = tmp_path / "rows.csv"
    path.write_text(text, encoding="utf-8", newline="")
    got = [(row.number, row.values) for row in read_rows(path, upper_columns=upper)]
    assert got == _reference(text, upper)
