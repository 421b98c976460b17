"""The benchmark harness: its generator is deterministic and realistic, and a smoke run of
`python -m benchmarks --quick` gives every benchmark at least one figure. No timing is
asserted: a benchmark is not a test (figures are read in benchmarks/RESULTS.md).

The smoke run starts gunicorn servers on loopback (marked e2e). Deselect it with
`-m "not e2e"`, `--deselect tests/test_benchmarks_smoke.py`, or FHIR_ADAPTER_SKIP_BENCHMARKS=1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is a top-level folder, not an installed package
    sys.path.insert(0, str(ROOT))
TIMEOUT = 900  # a hang guard, not a speed check: a busy 2-core machine takes minutes



def test_builtin_distributions_are_the_pilot_file(shared_dir: Path) -> None:
    from benchmarks.distributions import BUILTIN
    from benchmarks.generate import PILOT_AE, derive

    if not PILOT_AE.is_file():
        pytest.skip(f"{PILOT_AE} not present")
    # Same numbers with or without the pilot file: the generator gives the same rows either way.
    assert json.loads(json.dumps(derive(PILOT_AE))) == BUILTIN


def test_generated_ae_rows_are_deterministic_and_shaped_like_the_pilot(tmp_path: Path) -> None:
    import csv
    from collections import Counter

    from benchmarks.generate import COLUMNS, SEARCH_HITS, SEARCH_SUBJECT, write_ae_csv

    first, second = write_ae_csv(tmp_path / "a.csv", 3000), write_ae_csv(tmp_path / "b.csv", 3000)
    assert first.read_bytes() == second.read_bytes()
    with open(first, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3000 and list(rows[0]) == list(COLUMNS)
    assert sum(r["USUBJID"] == SEARCH_SUBJECT for r in rows) == SEARCH_HITS
    severity = Counter(r["AESEV"] for r in rows)
    assert set(severity) == {"MILD", "MODERATE"} and severity["MILD"] > severity["MODERATE"]
    keys = Counter((r["USUBJID"], r["AESEQ"]) for r in rows)
    assert max(keys.values()) == 1  # AESEQ is unique per subject, as SDTM requires
    for r in rows:
        assert r["AEENDTC"] == "" or r["AEENDTC"] >= r["AESTDTC"]
        assert r["AESTDY"] != "0.0"  # SDTM has no study day 0


@pytest.mark.e2e
@pytest.mark.skipif(os.environ.get("FHIR_ADAPTER_SKIP_BENCHMARKS") == "1",
                    reason="FHIR_ADAPTER_SKIP_BENCHMARKS=1")
def test_quick_run_gives_every_benchmark_a_figure(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    env = dict(os.environ, FHIR_ADAPTER_BENCH_OUT=str(tmp_path / "out"))
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks", "--quick", "--json", str(out)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.terminate()  # SIGTERM: the harness stops its servers before it exits
        try:
            stdout, stderr = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()  # its children get SIGTERM from the kernel (PR_SET_PDEATHSIG)
            stdout, stderr = proc.communicate()
        pytest.fail(f"the quick run took over {TIMEOUT} s: {stderr[-3000:]}")
    assert out.is_file(), stderr[-3000:]
    report = json.loads(out.read_text())
    from benchmarks.__main__ import MODULES

    assert len(report["benchmarks"]) == len(MODULES), sorted(report["benchmarks"])
    for name, bench in report["benchmarks"].items():
        figures = [row["value"] for row in bench["rows"]
                   if isinstance(row["value"], int | float) and not isinstance(row["value"], bool)]
        notes = [row.get("note") for row in bench["rows"] if row.get("value") is None]
        assert figures, f"{name} gave no figure: {notes}"
    assert "| benchmark | case |" in stdout  # the Markdown table was printed
    assert proc.returncode == 0, stderr[-3000:]
