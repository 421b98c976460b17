"""A loopback stand-in for the ClinicalTrials.gov API v2 `/api/v2/studies`, serving pages
built from the public fixture records (../shared/fixtures/ctgov/v2) as the API does:
`pageSize`, an opaque `nextPageToken`, `countTotal`, `filter.ids`, `query.term`,
`filter.overallStatus` and `filter.advanced=AREA[LastUpdatePostDate]RANGE[from,MAX]`; and,
when asked, a 429 with Retry-After and a 503 on chosen requests."""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from loopback import StubHandler, stub

_RANGE = re.compile(r"AREA\[LastUpdatePostDate\]RANGE\[(\d{4}-\d{2}-\d{2}),MAX\]")


def fixture_studies(folder: Path) -> list[dict[str, Any]]:
    """Every v2 study record of the fixture folder (single files and arrays), by NCT id."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        for study in data if isinstance(data, list) else [data]:
            found[study["protocolSection"]["identificationModule"]["nctId"]] = study
    return [found[k] for k in sorted(found)]


def _status(study: dict[str, Any]) -> dict[str, Any]:
    return study["protocolSection"].get("statusModule") or {}


def matching(studies: list[dict[str, Any]], args: dict[str, str]) -> list[dict[str, Any]]:
    out = studies
    if "filter.ids" in args:
        wanted = set(re.split(r"[,|]", args["filter.ids"]))
        out = [s for s in out if s["protocolSection"]["identificationModule"]["nctId"] in wanted]
    if "query.term" in args:
        term = args["query.term"].lower()
        out = [s for s in out if term in json.dumps(s).lower()]
    if "filter.overallStatus" in args:
        statuses = set(re.split(r"[,|]", args["filter.overallStatus"]))
        out = [s for s in out if _status(s).get("overallStatus") in statuses]
    if "filter.advanced" in args:
        since = _RANGE.fullmatch(args["filter.advanced"])
        assert since, f"unexpected filter.advanced {args['filter.advanced']!r}"
        out = [s for s in out if (_status(s).get("lastUpdatePostDateStruct") or {})
               .get("date", "") >= since.group(1)]
    return out


class Replay:
    """The server's state: the corpus, request log and which request numbers fail how."""

    def __init__(self, studies: list[dict[str, Any]], faults: dict[int, int]) -> None:
        self.studies = studies
        self.faults = faults  # request number (from 1) -> status to answer instead
        self.requests: list[dict[str, str]] = []
        self.lock = threading.Lock()
        self.api = ""


def _handler(replay: Replay) -> type[BaseHTTPRequestHandler]:
    class Handler(StubHandler):
        _send = StubHandler.send

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            args = {k: v[0] for k, v in parse_qs(url.query).items()}
            with replay.lock:
                replay.requests.append(args)
                number = len(replay.requests)
            if number in replay.faults:
                status = replay.faults[number]
                return self._send(status, b'{"message":"try later"}',
                                  {"Content-Type": "application/json", "Retry-After": "1"})
            if url.path != "/api/v2/studies":
                return self._send(404, b"{}", {"Content-Type": "application/json"})
            found = matching(replay.studies, args)
            size = min(int(args.get("pageSize", 10)), 1000)
            start = int(base64.urlsafe_b64decode(args["pageToken"]).decode()) \
                if "pageToken" in args else 0
            page: dict[str, Any] = {"studies": found[start:start + size]}
            if start + size < len(found):
                page["nextPageToken"] = base64.urlsafe_b64encode(
                    str(start + size).encode()).decode()
            if args.get("countTotal") == "true" and "pageToken" not in args:
                page["totalCount"] = len(found)
            return self._send(200, json.dumps(page).encode(),
                              {"Content-Type": "application/json"})

    return Handler


@contextmanager
def replay_api(studies: list[dict[str, Any]], faults: dict[int, int] | None = None
               ) -> Iterator[Replay]:
    """The replayed API on a free loopback port; its base (…/api/v2) is replay.api."""
    state = Replay(studies, faults or {})
    with stub(_handler(state)) as root:
        state.api = f"{root}/api/v2"
        yield state
