"""One `requests` session for every remote call: retries with exponential backoff on 429, 5xx,
refused or dropped connections and read timeouts, honouring Retry-After (urllib3's Retry).

Every method is retried, POST included: a push only POSTs transaction/batch Bundles whose
entries are PUTs by id (and token requests, which mint a fresh token each time), so a replay
of a request whose answer was lost writes nothing twice."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts after the first, backoff base (seconds; doubled each time,
    capped at `backoff_max`), the longest Retry-After honoured, the per-request timeout."""

    retries: int = 8
    backoff: float = 0.5
    backoff_max: float = 60.0
    timeout: float = 60.0

    def retry(self) -> Retry:
        return Retry(total=self.retries, connect=self.retries, read=self.retries,
                     status=self.retries, other=self.retries, backoff_factor=self.backoff,
                     backoff_max=self.backoff_max, status_forcelist=RETRY_STATUSES,
                     allowed_methods=None,  # every method: see the module docstring
                     respect_retry_after_header=True, raise_on_status=False)


class TimeoutSession(requests.Session):
    """A Session whose requests carry the policy's timeout unless one is given."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def request(self, method, url, **kwargs):  # type: ignore[no-untyped-def,override]
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, **kwargs)


def session(policy: RetryPolicy | None = None, user_agent: str | None = None
            ) -> requests.Session:
    """A session that retries as `policy` says (the default RetryPolicy if None)."""
    from ... import __version__

    policy = policy or RetryPolicy()
    out = TimeoutSession(policy.timeout)
    adapter = HTTPAdapter(max_retries=policy.retry())
    out.mount("http://", adapter)
    out.mount("https://", adapter)
    out.headers["User-Agent"] = user_agent or f"fhir-adapter/{__version__}"
    return out


class RemoteError(Exception):
    """A remote server's answer that is not a success after every retry, in words."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def describe(response: requests.Response) -> str:
    """`METHOD URL -> status`, with the OperationOutcome's (or body's) first words."""
    text = response.text[:2000]
    try:
        data = response.json()
        issues = data.get("issue") if isinstance(data, dict) else None
        if issues:
            text = "; ".join(str(i.get("diagnostics") or i.get("details", {}).get("text")
                                 or i.get("code")) for i in issues[:3])
    except ValueError:
        pass
    req = response.request
    return f"{req.method} {req.url} -> {response.status_code}: {' '.join(text.split())[:500]}"


def json_object(response: requests.Response, refused: str, what: str) -> dict[str, Any]:
    """The JSON object a 200 answer carries; else RemoteError: `refused` with describe() for
    another status, `what` with the URL for a body that is no JSON object."""
    if response.status_code != 200:
        raise RemoteError(f"{refused}: {describe(response)}", response.status_code)
    try:
        data = response.json()
    except ValueError as exc:
        raise RemoteError(f"{what}: {response.url} did not answer JSON") from exc
    if not isinstance(data, dict):
        raise RemoteError(f"{what}: {response.url} did not answer a JSON object")
    return data
