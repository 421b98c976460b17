"""`fhir-adapter pull ctgov`: study records from the ClinicalTrials.gov API v2, written to a
file or mapped and loaded into the store (remote/ctgov.py)."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import click

from .store import database_option

_NCT = re.compile(r"NCT\d{8}", re.IGNORECASE)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@click.group("pull")
def pull_group() -> None:
    """Fetch records from a public registry."""


@pull_group.command("ctgov")
@click.argument("nct_ids", nargs=-1)
@click.option("--query", "term", help="Search term (the API's query.term), instead of NCT ids.")
@click.option("--status", "statuses", multiple=True,
              help="Only studies with this overall status, e.g. RECRUITING (repeatable).")
@click.option("--since", help="Only studies last updated on or after this date (YYYY-MM-DD).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the records here, as an API page {\"studies\": [...]} that "
                   "`map study` and `load study` read.")
@click.option("--load", "load", is_flag=True,
              help="Map each page and store it (one transaction per page).")
@database_option
@click.option("--page-size", default=1000, show_default=True, type=click.IntRange(1, 1000))
@click.option("--api", envvar="FHIR_ADAPTER_CTGOV_API", show_default=True,
              default="https://clinicaltrials.gov/api/v2",
              help="API base (or $FHIR_ADAPTER_CTGOV_API).")
@click.option("--rate", envvar="FHIR_ADAPTER_CTGOV_RATE", default=50.0, show_default=True,
              type=click.FloatRange(min=0.1), help="Requests a minute at most "
                                                   "(or $FHIR_ADAPTER_CTGOV_RATE).")
@click.option("--retries", default=8, show_default=True, type=click.IntRange(0, 50))
def pull_ctgov_command(nct_ids: tuple[str, ...], term: str | None, statuses: tuple[str, ...],
                       since: str | None, output: Path | None, load: bool,
                       database: str | None, page_size: int, api: str, rate: float,
                       retries: int) -> None:
    """Fetch studies (NCT_IDS..., or --query TERM) from the ClinicalTrials.gov API v2,
    every page, and write them (--output) or store them (--load)."""
    import requests

    from ..pipeline.remote.ctgov import RateLimiter, StudyQuery, nct_id, pages
    from ..pipeline.remote.http import RemoteError, RetryPolicy, session

    if bool(nct_ids) == bool(term):
        raise click.UsageError("give NCT ids or --query TERM (one of the two)")
    if bad := [i for i in nct_ids if not _NCT.fullmatch(i)]:
        raise click.BadParameter(f"{bad[0]!r} is not an NCT id (NCT and 8 digits)",
                                 param_hint="NCT_IDS")
    if since and not _DATE.fullmatch(since):
        raise click.BadParameter("a date YYYY-MM-DD", param_hint="--since")
    if bool(output) == bool(load):
        raise click.UsageError("give --output FILE or --load (one of the two)")
    query = StudyQuery(tuple(i.upper() for i in nct_ids), term,
                       tuple(s.upper() for s in statuses), since)
    http = session(RetryPolicy(retries=retries))
    fetched, pages_seen, total = 0, 0, None
    loaded = _Loaded(database) if load else None
    sink = _Output(output) if output else None
    try:
        for page in pages(http, query, api=api, page_size=page_size,
                          limiter=RateLimiter(rate)):
            pages_seen += 1
            total = page.total if total is None else total
            missing = [n for n, s in enumerate(page.studies) if nct_id(s) is None]
            if missing:
                raise click.ClickException(f"page {pages_seen}: study {missing[0] + 1} has "
                                           "no protocolSection.identificationModule.nctId")
            fetched += len(page.studies)
            if sink:
                sink.add(page.studies)
            if loaded:
                loaded.add(page.studies, pages_seen)
    except (RemoteError, requests.RequestException) as exc:
        if sink:
            sink.discard()
        done = f" ({loaded.summary} stored from {pages_seen} page(s))" if loaded else ""
        raise click.ClickException(f"pull stopped: {exc}{done}") from exc
    except BaseException:
        if sink:
            sink.discard()
        raise
    if sink:
        sink.finish()
    stated = f" of {total} the API counted" if total is not None else ""
    click.echo(f"{fetched} study record(s){stated} in {pages_seen} page(s)", err=True)
    if fetched != (total if total is not None else fetched):
        click.echo(f"warning: the API counted {total} studies but paged through {fetched}",
                   err=True)
    if sink:
        click.echo(f"written to {output}", err=True)
    if loaded:
        for line in loaded.summary.lines():
            click.echo(line)
        click.echo(f"{loaded.studies} stud(ies) mapped and stored: {loaded.summary}")


class _Output:
    """The records as one API page, written beside FILE and renamed when complete."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.partial = path.with_name(path.name + ".partial")
        self.out = self.partial.open("w", encoding="utf-8")
        self.out.write('{"studies": [')
        self.first = True

    def add(self, studies: list[dict[str, object]]) -> None:
        for study in studies:
            self.out.write(("\n" if self.first else ",\n") + json.dumps(study))
            self.first = False

    def finish(self) -> None:
        self.out.write("\n]}\n")
        self.out.close()
        os.replace(self.partial, self.path)

    def discard(self) -> None:
        self.out.close()
        self.partial.unlink(missing_ok=True)


class _Loaded:
    """Each page mapped and stored by the loader (the `load study` pipeline)."""

    def __init__(self, database: str | None) -> None:
        from ..pipeline.load import LoadSummary

        self.database = database
        self.summary = LoadSummary()
        self.studies = 0

    def add(self, studies: list[dict[str, object]], number: int) -> None:
        from ..pipeline.load import load_files

        with tempfile.TemporaryDirectory(prefix="fhir-adapter-pull-") as folder:
            page = Path(folder) / f"ctgov-page-{number}.json"
            page.write_text(json.dumps({"studies": studies}), encoding="utf-8")
            done = load_files("study", [page], database=self.database,
                              warn=lambda text: click.echo(f"warning: {text}", err=True))
        for rtype, counts in done.counts.items():
            for outcome, times in counts.items():
                self.summary.counts.setdefault(rtype, type(counts)())[outcome] += times
        self.summary.files += done.files
        self.summary.cohorts.update(done.cohorts)
        self.summary.populations.update(done.populations)
        self.studies += len(studies)
