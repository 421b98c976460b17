"""Dashboard render time: the study page of a 1,000-subject, 10,000-AE study in headless
Chromium (Debian's, via Playwright), from navigation to the last chart drawn, against the
time the same page took to read its FHIR searches (every page of them) in the same load;
under `fhir-adapter serve` and (full run) gunicorn, 2 gthread workers.

The study is the seed CT.gov record with a new NCT id and two arms; subjects and events are
generated (seeded) in our enrollment and adverse-event CSV formats and loaded with the CLI
into a fresh SQLite store, served by `fhir-adapter serve`. Quick mode (the smoke run):
50 subjects, 500 AEs, one cold load.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import random
import shutil
import statistics
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import OUT, ROOT, child_env, cli_command, free_port, missing, not_available, result

NAME = "dashboard"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
NCT = "NCT99000001"  # synthetic: never a real study's id
ARMS = ("Treatment Group", "Placebo")
# (term, SOC) pairs of the kind the seed study's events have.
TERMS = (("Headache", "Nervous system disorders"), ("Dizziness", "Nervous system disorders"),
         ("Back pain", "Musculoskeletal and connective tissue disorders"),
         ("Muscle spasms", "Musculoskeletal and connective tissue disorders"),
         ("Nausea", "Gastrointestinal disorders"), ("Vomiting", "Gastrointestinal disorders"),
         ("Pyrexia", "General disorders and administration site conditions"),
         ("Fatigue", "General disorders and administration site conditions"),
         ("Post lumbar puncture syndrome", "Injury, poisoning and procedural complications"),
         ("Fall", "Injury, poisoning and procedural complications"),
         ("Respiratory failure", "Respiratory, thoracic and mediastinal disorders"),
         ("Meningitis aseptic", "Infections and infestations"),
         ("Rash", "Skin and subcutaneous tissue disorders"))
SEVERITY = ("mild", "moderate", "severe")


def _day(rng: random.Random, start: dt.date, days: int) -> dt.date:
    return start + dt.timedelta(days=rng.randrange(days))


def write_inputs(folder: Path, subjects: int, events: int, seed: int = 1) -> list[Path]:
    """The study JSON, enrollments CSV and AE CSV of the generated study."""
    rng = random.Random(seed)
    record = json.loads((ROOT / "examples" / "NCT05003921.json").read_text())
    proto = record["protocolSection"]
    proto["identificationModule"].update(nctId=NCT, orgStudyIdInfo={"id": "BENCH-DASH-01"})
    arm = proto["armsInterventionsModule"]
    arm["armGroups"].append({"label": "Placebo", "type": "PLACEBO_COMPARATOR",
                             "description": "saline", "interventionNames": []})
    study = folder / "study.json"
    study.write_text(json.dumps(record))
    enrolled: list[tuple[str, dt.date, dt.date | None]] = []
    with open(folder / "enrollments.csv", "w", newline="") as fh:
        with open(ROOT / "examples" / "NCT05003921.enrollments.csv", newline="") as src:
            out = csv.DictWriter(fh, next(csv.reader(src)))
        out.writeheader()
        for n in range(1, subjects + 1):
            consent = _day(rng, dt.date(2022, 1, 1), 900)
            subject, chosen = f"B{n:05d}", rng.choice(ARMS)
            status = rng.choices(("follow-up", "on-intervention", "completed", "discontinued",
                                  "screen-failure"), (30, 30, 20, 12, 8))[0]
            start = consent + dt.timedelta(days=14)
            end = start + dt.timedelta(days=rng.randrange(30, 400))
            row = {"study": NCT, "subject_id": subject, "site_id": "AG01", "arm": chosen,
                   "actual_arm": chosen, "consent_date": consent, "enrollment_date": start,
                   "status": status, "status_date": start + dt.timedelta(days=30), "end_date": "",
                   "end_reason": "", "sex": rng.choice("MF"), "birth_year": 1950 + n % 30,
                   "age": "", "race": "WHITE", "ethnicity": "NOT HISPANIC OR LATINO",
                   "country": "ATG"}
            if status == "screen-failure":
                row.update(arm="", actual_arm="", enrollment_date="", status_date="",
                           end_date=consent + dt.timedelta(days=10), end_reason="Not eligible")
            elif status in ("completed", "discontinued"):
                row.update(status_date=end, end_date=end,
                           end_reason="adverse event" if status == "discontinued" else "")
            out.writerow(row)
            if status != "screen-failure":
                enrolled.append((subject, start, row["end_date"] or None))
    with open(folder / "adverse-events.csv", "w", newline="") as fh:
        with open(ROOT / "examples" / "NCT05003921.adverse-events.csv", newline="") as src:
            columns = next(csv.reader(src))
        out = csv.DictWriter(fh, columns)
        out.writeheader()
        for n in range(events):
            subject, start, end = rng.choice(enrolled)
            term, soc = rng.choice(TERMS)
            grade = rng.choices((1, 2, 3, 4), (50, 30, 15, 5))[0]
            onset = _day(rng, start, max(1, ((end or start + dt.timedelta(days=300)) - start).days))
            serious = grade >= 3 and rng.random() < 0.5
            row = dict.fromkeys(columns, "")
            row.update(study_id=NCT, subject_id=subject, event_id=f"E{n}", verbatim_term=term,
                       meddra_pt_term=term, meddra_soc_term=soc, ctcae_grade=grade,
                       severity=SEVERITY[min(grade, 3) - 1], serious="Y" if serious else "N",
                       hospitalisation="Y" if serious else "", onset_date=onset,
                       end_date=onset + dt.timedelta(days=rng.randrange(1, 20)),
                       outcome="recovered/resolved", relatedness="possibly related",
                       action_taken="dose not changed", expected="Y",
                       recorded_date=onset + dt.timedelta(days=3), intervention="AlloRx")
            out.writerow(row)
    return [study, folder / "enrollments.csv", folder / "adverse-events.csv"]


def _load(database: str, files: list[Path]) -> None:
    """`fhir-adapter load` of each file, in this process (three process starts would cost
    the quick smoke run seconds it does not have)."""
    import contextlib
    import io

    from fhir_adapter.cli import main

    for kind, path in zip(("study", "enrollments", "adverse-events"), files, strict=True):
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            main(["load", kind, str(path), "--database", database, "--no-progress"])


@contextmanager
def _serving(database: str, log: Path) -> Iterator[str]:
    import requests

    port = free_port()
    root = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        proc = subprocess.Popen([*cli_command(), "serve", "--host", "127.0.0.1", "--port",
                                 str(port), "--database", database], stdout=out,
                                stderr=subprocess.STDOUT, env=child_env(),
                                stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("server did not start: " + log.read_text()[-500:])
                try:
                    requests.get(f"{root}/fhir/metadata", timeout=10)
                    break
                except requests.ConnectionError:
                    time.sleep(0.2)
            yield root
        finally:
            proc.terminate()
            proc.wait(timeout=15)


def _measure(root: str, rounds: int, warm_up: int) -> tuple[list[float], list[float]]:
    """(render ms, FHIR-read ms) of each timed page load (after `warm_up` untimed ones)."""
    import requests
    from playwright.sync_api import sync_playwright

    bundle = requests.get(f"{root}/fhir/ResearchStudy?identifier={NCT}", timeout=30).json()
    url = f"{root}/studies/{bundle['entry'][0]['resource']['id']}"
    renders, reads = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for i in range(rounds + warm_up):
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                page.goto(url)
                page.wait_for_selector("body[data-ready='1'], body[data-ready='error']",
                                       timeout=120_000)
                if page.get_attribute("body", "data-ready") != "1":
                    raise RuntimeError(page.inner_text("#status"))
                if i >= warm_up:  # the first loads warm the server's caches and the browser's
                    renders.append(float(page.get_attribute("body", "data-render-ms") or 0))
                    reads.append(float(page.get_attribute("body", "data-load-ms") or 0))
                page.close()
        finally:
            browser.close()
    return renders, reads


def run(quick: bool) -> list[dict]:
    """Render the study page `rounds` times; the median render time, target under 2 s."""
    subjects, events, rounds, warm_up = (50, 500, 1, 0) if quick else (1_000, 10_000, 5, 1)
    case = f"study page render, {subjects:,} subjects / {events:,} AEs (Chromium, serve)"
    if gone := missing("playwright.sync_api", "fhir_adapter.dashboard"):
        return [not_available(case, gone, "ms", "value <= 2000")]
    if not Path(CHROMIUM).exists():
        return [not_available(case, f"{CHROMIUM} (apt-get install chromium)", "ms",
                              "value <= 2000")]
    folder = OUT / "data" / f"dashboard-{subjects}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    database = f"sqlite:///{folder / 'store.sqlite'}"
    _load(database, write_inputs(folder, subjects, events))
    rows = []
    servers = [("serve", lambda: _serving(database, folder / "serve.log"))]
    if not quick:  # production: gunicorn workers answer the page's parallel requests together
        from .servers import GATEWAY_APP, Setup, gunicorn

        setup = Setup("gthread", 2)
        servers.append((setup.label, lambda: _gunicorn_root(
            gunicorn(GATEWAY_APP, setup, env={"FHIR_ADAPTER_DATABASE_URL": database}))))
    for label, start in servers:
        with start() as root:
            renders, reads = _measure(root, rounds, warm_up)
        render, read = statistics.median(renders), statistics.median(reads)
        rows.append(result(
            case.replace("serve", label), "ms", round(render),
            baseline="its FHIR reads alone (same loads)", baseline_value=round(read),
            target="value <= 2000",
            note=f"median of {rounds} load(s) after {warm_up} warm-up; renders "
                 f"{', '.join(f'{r:.0f}' for r in renders)} ms; load average "
                 f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"))
    shutil.rmtree(folder, ignore_errors=True)
    return rows


@contextmanager
def _gunicorn_root(server_context: Any) -> Iterator[str]:
    with server_context as server:
        yield server.base
