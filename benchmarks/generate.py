"""Deterministic benchmark data: SDTM AE rows shaped like the CDISC pilot, and CT.gov studies
perturbed from the seed record. Seeded; the same (seed, size) always gives the same bytes.

    python -m benchmarks.generate ae 100000 -o ae-100k.csv
    python -m benchmarks.generate studies 1000 -o studies.json

AE distributions (terms with their MedDRA hierarchy, severity, seriousness and its criteria,
relatedness, outcome, action taken, events per subject, onset study day, duration, lag to the
recording date, partial onset dates) are derived from the pilot slice
`tests/fixtures/sdtm/cdiscpilot01-slice/ae.csv` when it is present, else taken from
`BUILTIN`, the same numbers derived once from that file (tests check they still agree).
Rows stream to the CSV: nothing is held in memory, so 1M rows cost what 10 rows cost.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import random
from bisect import bisect
from collections import Counter
from collections.abc import Iterator, Sequence
from itertools import accumulate
from pathlib import Path
from typing import Any

from .distributions import BUILTIN

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FHIR_ADAPTER_SHARED", ROOT / "tests"))
PILOT_AE = SHARED / "fixtures" / "sdtm" / "cdiscpilot01-slice" / "ae.csv"
SEED_STUDY = ROOT / "examples" / "NCT05003921.json"

STUDY_ID = "FHIRBENCH01"  # synthetic: never a real study's id
# The subject every search benchmark asks for: it has exactly SEARCH_HITS events at every size,
# so "AdverseEvent?subject=..." returns the same 20 resources out of 10k, 100k or 1M.
SEARCH_SUBJECT = f"{STUDY_ID}-001-0001"
SEARCH_HITS = 20
COLUMNS = ("STUDYID", "DOMAIN", "USUBJID", "AESEQ", "AESPID", "AETERM", "AELLT", "AELLTCD",
           "AEDECOD", "AEPTCD", "AEHLT", "AEHLTCD", "AEHLGT", "AEHLGTCD", "AEBODSYS", "AEBDSYCD",
           "AESOC", "AESOCCD", "AESEV", "AESER", "AEACN", "AEREL", "AEOUT", "AESCAN", "AESCONG",
           "AESDISAB", "AESDTH", "AESHOSP", "AESLIFE", "AESOD", "AEDTC", "AESTDTC", "AEENDTC",
           "AESTDY", "AEENDY")
TERM_COLUMNS = ("AETERM", "AELLT", "AEDECOD", "AEHLT", "AEHLGT", "AEBODSYS", "AESOC")
CRITERIA = ("AESCAN", "AESCONG", "AESDISAB", "AESDTH", "AESHOSP", "AESLIFE", "AESOD")


def _day(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def _num(text: str) -> int | None:
    return int(float(text)) if text.strip() else None


def _counts(values: Sequence[Any]) -> list[list[Any]]:
    """[[value, count], ...] sorted by value text: a stable, JSON-able frequency table."""
    return sorted(([v, n] for v, n in Counter(values).items()), key=lambda p: json.dumps(p[0]))


def derive(path: Path) -> dict[str, Any]:
    """The frequency tables of an SDTM AE CSV (the numbers `BUILTIN` holds for the pilot)."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    reference: list[int] = []  # first-dose day (day 1) per row, as a date ordinal
    onset_day, duration, lag, end_given = [], [], [], []
    for r in rows:
        start, end, recorded, study_day = (_day(r["AESTDTC"]), _day(r["AEENDTC"]),
                                           _day(r["AEDTC"]), _num(r["AESTDY"]))
        end_given.append([r["AEOUT"], end is not None])
        if start is None or study_day is None:
            continue
        onset_day.append(study_day)
        # SDTM has no day 0: day 1 is the reference date, day -1 the day before it.
        reference.append(start.toordinal() - (study_day - 1 if study_day > 0 else study_day))
        if end is not None:
            duration.append((end - start).days)
        if recorded is not None:
            lag.append((recorded - start).days)
    per_subject = Counter(r["USUBJID"] for r in rows)
    return {
        "rows": len(rows),
        "terms": _counts([tuple(r[c] for c in TERM_COLUMNS) for r in rows]),
        "severity": _counts([r["AESEV"] for r in rows]),
        "serious": _counts([r["AESER"] for r in rows]),
        "criteria_yes": {c: sum(r[c] == "Y" for r in rows) for c in CRITERIA},
        "action": _counts([r["AEACN"] for r in rows]),
        "relatedness": _counts([r["AEREL"] for r in rows]),
        "outcome": _counts([r["AEOUT"] for r in rows]),
        "end_given": _counts([tuple(p) for p in end_given]),
        "events_per_subject": _counts(list(per_subject.values())),
        "onset_study_day": _counts(onset_day),
        "duration_days": _counts(duration),
        "recording_lag_days": _counts(lag),
        "partial_onset": sum(_day(r["AESTDTC"]) is None for r in rows),
        "reference_span": [dt.date.fromordinal(min(reference)).isoformat(),
                           dt.date.fromordinal(max(reference)).isoformat()],
    }


def distributions() -> dict[str, Any]:
    """Derived from the pilot file when it is there, else the built-in copy of those numbers."""
    if PILOT_AE.is_file():
        return json.loads(json.dumps(derive(PILOT_AE)))  # tuples -> lists, as BUILTIN has them
    return BUILTIN


class _Pick:
    """Weighted choice from a [[value, count], ...] table, one rng.random() per draw."""

    def __init__(self, table: Sequence[Sequence[Any]]) -> None:
        self.values = [v for v, _ in table]
        self.cum = list(accumulate(n for _, n in table))

    def __call__(self, rng: random.Random) -> Any:
        return self.values[bisect(self.cum, rng.random() * self.cum[-1])]


def _flt(n: int) -> str:
    return f"{n}.0"  # the pilot CSVs write whole numbers as 63.0


def ae_rows(size: int, seed: int = 1) -> Iterator[list[str]]:
    """`size` SDTM AE rows (lists in COLUMNS order), streamed; deterministic per (size, seed)."""
    d = distributions()
    rng = random.Random(seed)
    term, sev, rel, out = (_Pick(d[k]) for k in ("terms", "severity", "relatedness", "outcome"))
    ser, act, per_subject = _Pick(d["serious"]), _Pick(d["action"]), _Pick(d["events_per_subject"])
    onset, duration, lag = (_Pick(d[k]) for k in ("onset_study_day", "duration_days",
                                                   "recording_lag_days"))
    end_rate = {}
    for (outcome, given), n in d["end_given"]:
        yes, total = end_rate.get(outcome, (0, 0))
        end_rate[outcome] = (yes + (n if given else 0), total + n)
    crit_rate = {c: n / d["rows"] for c, n in d["criteria_yes"].items()}
    partial_rate = d["partial_onset"] / d["rows"]
    first, last = (dt.date.fromisoformat(x).toordinal() for x in d["reference_span"])
    emitted, subject = 0, 0
    while emitted < size:
        subject += 1
        site = 700 + subject % 17 + 1  # pilot site numbers are 7xx
        usubjid = (SEARCH_SUBJECT if subject == 1
                   else f"{STUDY_ID}-{site:03d}-{subject:07d}")
        count = SEARCH_HITS if subject == 1 else per_subject(rng)
        reference = first + rng.randrange(last - first + 1)
        for seq in range(1, min(count, size - emitted) + 1):
            terms = term(rng)
            outcome = out(rng)
            serious = ser(rng)
            study_day = onset(rng) + rng.randint(-3, 3)
            study_day = study_day or 1  # there is no study day 0
            start = reference + (study_day - 1 if study_day > 0 else study_day)
            yes, total = end_rate.get(outcome, (0, 1))
            end = start + duration(rng) if rng.random() < yes / total else None
            end_day = None if end is None else end - reference + (1 if end >= reference else 0)
            recorded = start + lag(rng)
            if rng.random() < partial_rate:  # a year-only onset: no study day either
                start_text, study_text = dt.date.fromordinal(start).strftime("%Y"), ""
            else:
                start_text, study_text = dt.date.fromordinal(start).isoformat(), _flt(study_day)
            flags = {c: "Y" if serious == "Y" and rng.random() < crit_rate[c] else "N"
                     for c in CRITERIA}
            aeterm, llt, decod, hlt, hlgt, bodsys, soc = terms
            yield [STUDY_ID, "AE", usubjid, _flt(seq), f"E{seq:02d}", aeterm, llt, "", decod, "",
                   hlt, "", hlgt, "", bodsys, "", soc, "", sev(rng), serious, act(rng),
                   rel(rng), outcome, *(flags[c] for c in CRITERIA),
                   dt.date.fromordinal(recorded).isoformat(), start_text,
                   "" if end is None else dt.date.fromordinal(end).isoformat(), study_text,
                   "" if end_day is None else _flt(end_day)]
            emitted += 1


def write_ae_csv(path: Path, size: int, seed: int = 1) -> Path:
    """Write `size` generated AE rows to `path` (CSV with the pilot's header), streaming."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(ae_rows(size, seed))
    tmp.replace(path)  # a half-written file never looks finished
    return path


# CT.gov studies: the seed record with new ids, titles and sites.
_CONDITIONS = ("Amyotrophic Lateral Sclerosis", "Parkinson Disease", "Multiple Sclerosis",
               "Spinal Cord Injury", "Knee Osteoarthritis", "Alzheimer Disease", "Stroke")
_SITES = (("Massachusetts General Hospital", "Boston", "United States"),
          ("Hopital de la Pitie-Salpetriere", "Paris", "France"),
          ("Charite Universitaetsmedizin", "Berlin", "Germany"),
          ("Royal Melbourne Hospital", "Melbourne", "Australia"),
          ("Toronto Western Hospital", "Toronto", "Canada"),
          ("Hospital Universitario La Paz", "Madrid", "Spain"),
          ("Karolinska University Hospital", "Stockholm", "Sweden"),
          ("National Taiwan University Hospital", "Taipei", "Taiwan"),
          ("Medical Surgical Associates Center", "St. John's", "Antigua and Barbuda"),
          ("Hospital Israelita Albert Einstein", "Sao Paulo", "Brazil"),
          ("Seoul National University Hospital", "Seoul", "Korea, Republic of"),
          ("University of Tokyo Hospital", "Tokyo", "Japan"))


def studies(size: int, seed: int = 1) -> Iterator[dict[str, Any]]:
    """`size` CT.gov v2 study records: the seed study with a new NCT id, org study id,
    condition in the titles, and 1-12 sites drawn from a list; deterministic per seed."""
    base = json.loads(SEED_STUDY.read_text("utf-8"))
    rng = random.Random(seed)
    for n in range(size):
        study = json.loads(json.dumps(base))  # a deep copy
        ps = study["protocolSection"]
        ident = ps["identificationModule"]
        condition = _CONDITIONS[rng.randrange(len(_CONDITIONS))]
        ident["nctId"] = f"NCT9{n:07d}"
        ident["orgStudyIdInfo"] = {"id": f"BENCH-{seed}-{n:07d}"}
        ident["briefTitle"] = ident["briefTitle"].replace("ALS", condition) + f" ({n})"
        ident["officialTitle"] = ident["officialTitle"].replace(
            "Amyotrophic Lateral Sclerosis", condition)
        ps["conditionsModule"]["conditions"] = [condition]
        sites = rng.sample(_SITES, rng.randint(1, len(_SITES)))
        ps["contactsLocationsModule"]["locations"] = [
            {"facility": f, "city": c, "country": k} for f, c, k in sites]
        yield study


def write_studies(path: Path, size: int, seed: int = 1) -> Path:
    """Write `size` studies as one JSON array (the CT.gov download shape), streaming."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write("[")
        for n, study in enumerate(studies(size, seed)):
            fh.write(("\n" if n == 0 else ",\n") + json.dumps(study, ensure_ascii=False))
        fh.write("\n]\n")
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m benchmarks.generate ae|studies SIZE -o PATH [--seed N]`."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.generate")
    parser.add_argument("kind", choices=("ae", "studies"))
    parser.add_argument("size", type=int)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    (write_ae_csv if args.kind == "ae" else write_studies)(args.output, args.size, args.seed)


if __name__ == "__main__":
    main()
