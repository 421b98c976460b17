"""The ClinicalTrials.gov API v2 (`GET <api>/studies`), paged with `pageToken`, rate-limited.

The API allows about 50 requests a minute per client; the limiter spaces requests at least
60/rate seconds apart, and the session (http.py) backs off on 429 and 5xx as Retry-After
says. The API base is a setting (FHIR_ADAPTER_CTGOV_API), so tests replay real pages from a
loopback server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import requests

from .http import RemoteError, json_object

DEFAULT_API = "https://clinicaltrials.gov/api/v2"
DEFAULT_RATE = 50.0  # requests a minute
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class StudyQuery:
    """What to fetch: NCT ids, or a search term; statuses; last updated on or after `since`
    (a YYYY-MM-DD date)."""

    ids: tuple[str, ...] = ()
    term: str | None = None
    statuses: tuple[str, ...] = ()
    since: str | None = None

    def params(self) -> dict[str, str]:
        """The API's query parameters for this query (page size and token aside)."""
        out = {"format": "json"}
        if self.ids:
            out["filter.ids"] = ",".join(self.ids)
        if self.term:
            out["query.term"] = self.term
        if self.statuses:
            out["filter.overallStatus"] = ",".join(self.statuses)
        if self.since:
            out["filter.advanced"] = f"AREA[LastUpdatePostDate]RANGE[{self.since},MAX]"
        return out


class RateLimiter:
    """At most `per_minute` calls a minute, spaced evenly (thread-safe)."""

    def __init__(self, per_minute: float) -> None:
        self.interval = 60.0 / per_minute
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self.interval
        if delay > 0:
            time.sleep(delay)


@dataclass
class Page:
    """One page of studies, the API's total (first page only) and the next page's token."""

    studies: list[dict[str, Any]]
    total: int | None
    next_token: str | None


def pages(http: requests.Session, query: StudyQuery, *, api: str = DEFAULT_API,
          page_size: int = MAX_PAGE_SIZE, limiter: RateLimiter | None = None
          ) -> Iterator[Page]:
    """Every page of the query's studies, following nextPageToken to the end."""
    limiter = limiter or RateLimiter(DEFAULT_RATE)
    params = query.params() | {"pageSize": str(min(page_size, MAX_PAGE_SIZE)),
                               "countTotal": "true"}
    url = api.rstrip("/") + "/studies"
    seen: set[str] = set()
    while True:
        limiter.wait()
        response = http.get(url, params=params, headers={"Accept": "application/json"})
        data = json_object(response, "ClinicalTrials.gov", "ClinicalTrials.gov")
        studies = data.get("studies")
        if not isinstance(studies, list):
            raise RemoteError(f"ClinicalTrials.gov: {response.url} answered no studies list")
        token = data.get("nextPageToken") or None
        yield Page(studies, data.get("totalCount"), token)
        if token is None:
            return
        if token in seen:  # a server repeating a token would loop for ever
            raise RemoteError(f"ClinicalTrials.gov repeated page token {token!r}")
        seen.add(token)
        params = params | {"pageToken": token}
        params.pop("countTotal", None)


def nct_id(study: dict[str, Any]) -> str | None:
    """The NCT id of an API v2 study record."""
    ident = (study.get("protocolSection") or {}).get("identificationModule") or {}
    value = ident.get("nctId")
    return value if isinstance(value, str) else None
