"""The FHIR server a push writes to: what it supports (its CapabilityStatement), what it
holds already (read back by `_id` search to compare before writing), and the writes
themselves (a transaction or batch Bundle of PUTs by id, or one PUT each)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from .http import RemoteError, describe

MIME = "application/fhir+json"
FHIR_VERSION = {"R4": "4.0", "R5": "5.0"}
# Elements a server sets on write: differences there are not differences of content.
SERVER_META = ("versionId", "lastUpdated", "source")


def comparable(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource without what the server sets on write (meta.versionId, lastUpdated)."""
    out = dict(resource)
    meta = {k: v for k, v in (out.pop("meta", None) or {}).items() if k not in SERVER_META}
    if meta:
        out["meta"] = meta
    return out


@dataclass
class Outcome:
    """A written entry: created | updated, or failed with a message."""

    outcome: str
    message: str = ""


class Target:
    """A FHIR server at `base`, spoken to in `version` through `http` (retrying, authed)."""

    def __init__(self, base: str, http: requests.Session, version: str) -> None:
        self.base = base.rstrip("/")
        self.http = http
        self.version = version
        self.headers = {"Accept": f"{MIME}; fhirVersion={FHIR_VERSION[version]}",
                        "Content-Type": f"{MIME}; fhirVersion={FHIR_VERSION[version]}"}
        self.mode = "single"

    def _get(self, url: str, **params: str) -> requests.Response:
        return self.http.get(url, params=params or None, headers=self.headers)

    def capabilities(self) -> dict[str, Any]:
        """The CapabilityStatement; sets `mode` to transaction, batch or single (PUT each)."""
        response = self._get(f"{self.base}/metadata")
        if response.status_code != 200:
            raise RemoteError(f"the target's CapabilityStatement: {describe(response)}",
                              response.status_code)
        statement = response.json()
        wanted = FHIR_VERSION[self.version]
        found = str(statement.get("fhirVersion", ""))
        if found and not found.startswith(wanted):
            raise RemoteError(f"{self.base} speaks FHIR {found}, not {self.version} "
                              f"(--fhir-version)")
        codes = {i.get("code") for rest in statement.get("rest") or []
                 for i in rest.get("interaction") or []}
        self.mode = ("transaction" if "transaction" in codes else
                     "batch" if "batch" in codes else "single")
        return statement

    def existing(self, rtype: str, ids: list[str]) -> dict[str, dict[str, Any]]:
        """id -> the target's current resource, for those of `ids` it has."""
        found: dict[str, dict[str, Any]] = {}
        response = self._get(f"{self.base}/{rtype}", _id=",".join(ids), _count=str(len(ids)))
        if response.status_code != 200:  # no _id search: read each
            for rid in ids:
                one = self._get(f"{self.base}/{rtype}/{quote(rid)}")
                if one.status_code == 200:
                    found[rid] = one.json()
                elif one.status_code not in (404, 410):
                    raise RemoteError(describe(one), one.status_code)
            return found
        wanted = set(ids)
        while True:
            bundle = response.json()
            for entry in bundle.get("entry") or []:
                resource = entry.get("resource") or {}
                if resource.get("resourceType") == rtype and resource.get("id") in wanted:
                    found[resource["id"]] = resource
            following = next((link["url"] for link in bundle.get("link") or []
                              if link.get("relation") == "next"), None)
            if following is None:
                return found
            response = self._get(following)
            if response.status_code != 200:
                raise RemoteError(describe(response), response.status_code)

    def search_one(self, rtype: str, **params: str) -> tuple[str | None, int]:
        """The id of the one `rtype` matching `params` (None if not exactly one), and how
        many matched."""
        response = self._get(f"{self.base}/{rtype}", _count="2", **params)
        if response.status_code != 200:
            raise RemoteError(describe(response), response.status_code)
        matches = [e["resource"]["id"] for e in response.json().get("entry") or []
                   if (e.get("search") or {}).get("mode", "match") == "match"
                   and (e.get("resource") or {}).get("resourceType") == rtype]
        return (matches[0] if len(matches) == 1 else None), len(matches)

    def write(self, resources: list[dict[str, Any]]) -> list[Outcome]:
        """PUT every resource by id, as one Bundle where the target takes one; an outcome
        each. A rejected transaction is tried again entry by entry, to name the culprits."""
        if self.mode == "single" or len(resources) == 1:
            return [self.put(r) for r in resources]
        bundle = {"resourceType": "Bundle", "type": self.mode, "entry": [
            {"fullUrl": f"{self.base}/{r['resourceType']}/{r['id']}", "resource": r,
             "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
            for r in resources]}
        response = self.http.post(self.base, data=json.dumps(bundle), headers=self.headers)
        if response.status_code != 200:
            if self.mode == "transaction" and 400 <= response.status_code < 500:
                return [self.put(r) for r in resources]
            raise RemoteError(describe(response), response.status_code)
        entries = response.json().get("entry") or []
        if len(entries) != len(resources):
            raise RemoteError(f"{self.mode} response has {len(entries)} entries for "
                              f"{len(resources)} sent")
        return [_outcome(e.get("response") or {}) for e in entries]

    def put(self, resource: dict[str, Any]) -> Outcome:
        """One PUT by id."""
        url = f"{self.base}/{resource['resourceType']}/{quote(resource['id'])}"
        response = self.http.put(url, data=json.dumps(resource),
                                 headers=self.headers | {"Prefer": "return=minimal"})
        if response.status_code in (200, 201):
            return Outcome("created" if response.status_code == 201 else "updated")
        return Outcome("failed", describe(response))


def _outcome(response: dict[str, Any]) -> Outcome:
    status = str(response.get("status", "")).split(" ", 1)[0]
    if status == "201":
        return Outcome("created")
    if status == "200":
        return Outcome("updated")
    issues = (response.get("outcome") or {}).get("issue") or []
    text = "; ".join(str(i.get("diagnostics") or i.get("code")) for i in issues[:3])
    return Outcome("failed", f"{response.get('status')}: {text}".rstrip(": "))
