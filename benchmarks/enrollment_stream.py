"""Enrollment streaming: `fhir-adapter map enrollments` of a generated CSV in our enrollment
format, at 10% and 100% of the size (200,000 rows; 20,000 with --quick), each in a fresh child
process: the child's own peak RSS and rows/s. The baseline of each figure is the same figure
at 10% of the size, from the same run: memory must stay flat as the file grows tenfold.

The generator is seeded and writes the same file for the same size every time.
"""

from __future__ import annotations

import csv
import random
import tempfile
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

from . import child_env, cli_command, missing, not_available, result, run_measured, size_label

NAME = "enrollment-stream"
MODULES = ("fhir_adapter.cli", "fhir_adapter.sources.enrollment",
           "fhir_adapter.mapping.subject", "fhir_adapter.commands.enrollments")
STUDY = "NCT05003921"
COLUMNS = ["study", "subject_id", "site_id", "arm", "actual_arm", "consent_date",
           "enrollment_date", "status", "status_date", "end_date", "end_reason", "sex",
           "birth_year", "age", "race", "ethnicity", "country"]
# (status, weight): most subjects on study, some ended, a few screen failures.
STATUSES = [("enrolled", 20), ("on-intervention", 30), ("follow-up", 20), ("completed", 12),
            ("withdrawn", 5), ("discontinued", 5), ("screen-failure", 6), ("screening", 2)]
REASONS = ["ADVERSE EVENT", "LOST TO FOLLOW-UP", "PHYSICIAN DECISION", "Moved away"]
RACES = ["WHITE", "BLACK OR AFRICAN AMERICAN", "ASIAN", "NOT REPORTED"]


def enrollment_rows(size: int, seed: int = 3) -> Iterator[list[str]]:
    """Rows of the generated file, one list of cells per subject (a generator)."""
    rng = random.Random(seed)
    statuses, weights = zip(*STATUSES, strict=True)
    start = date(2022, 12, 1)
    for n in range(1, size + 1):
        status = rng.choices(statuses, weights)[0]
        consent = start + timedelta(days=rng.randrange(540))
        enrolled = consent + timedelta(days=rng.randrange(7, 29))
        ended = enrolled + timedelta(days=rng.randrange(30, 300))
        site = f"S{rng.randrange(1, 41):02d}"
        row = {"study": STUDY, "subject_id": f"{site}-{n:07d}", "site_id": site,
               "consent_date": consent.isoformat(), "status": status,
               "sex": rng.choice("MF"), "race": rng.choice(RACES), "country": "ATG",
               "ethnicity": "NOT HISPANIC OR LATINO"}
        if rng.random() < 0.9:
            row["birth_year"] = str(rng.randrange(1948, 1974))
        else:
            row["age"] = str(rng.randrange(50, 93))
        if status not in ("screening", "screen-failure"):
            row |= {"arm": "Treatment Group", "actual_arm": "Treatment Group",
                    "enrollment_date": enrolled.isoformat()}
        if status in ("completed", "withdrawn", "discontinued", "screen-failure"):
            row["end_date"] = (ended if status != "screen-failure" else enrolled).isoformat()
            if status == "discontinued":
                row["end_reason"] = rng.choice(REASONS)
        else:
            row["status_date"] = (consent if status == "screening" else enrolled).isoformat()
        yield [row.get(c, "") for c in COLUMNS]


def write_enrollments(path: Path, size: int, seed: int = 3) -> Path:
    """Write the generated enrollment CSV of `size` subjects to `path`."""
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(enrollment_rows(size, seed))
    return path


def run(quick: bool) -> list[dict]:
    """Peak RSS and rows/s of the map command at 10% and 100% of the size."""
    case = "map enrollments (CSV)"
    gone = missing(*MODULES)
    if gone:
        return [not_available(case, gone, "peak RSS"), not_available(case, gone, "rows/s")]
    full = 20_000 if quick else 200_000
    measured = {}
    with tempfile.TemporaryDirectory(prefix="fhir-adapter-enrollments-") as tmp:
        for size in (full // 10, full):
            source = write_enrollments(Path(tmp) / f"enrollments-{size}.csv", size)
            out = Path(tmp) / "out.ndjson"
            done = run_measured([*cli_command(), "map", "enrollments", str(source), "--ndjson",
                                 "-o", str(out)], env=child_env())
            if done.returncode != 0:
                raise RuntimeError(f"map enrollments failed: {done.stderr.strip()[-300:]}")
            with open(out, "rb") as fh:
                written = sum(1 for _ in fh)
            if written != 2 * size:
                raise RuntimeError(f"{size} rows gave {written} resources, not {2 * size}")
            measured[size] = (done.peak_rss_mib, size / done.seconds)
            out.unlink()
    small, large = measured[full // 10], measured[full]
    base = f"same at {size_label(full // 10)} rows"
    note = "child process, start-up included; 2 resources per row, each validated"
    return [
        result(f"{case} {size_label(full // 10)}", "peak RSS", small[0], note=note,
               benchmark=NAME, unit="MiB"),
        result(f"{case} {size_label(full)}", "peak RSS", large[0], baseline=base,
               baseline_value=small[0], target="ratio <= 1.25", note=note, benchmark=NAME,
               unit="MiB"),
        result(f"{case} {size_label(full // 10)}", "rows/s", small[1], note=note,
               benchmark=NAME, unit="rows/s"),
        result(f"{case} {size_label(full)}", "rows/s", large[1], baseline=base,
               baseline_value=small[1], target="ratio >= 0.8", note=note, benchmark=NAME,
               unit="rows/s"),
    ]
