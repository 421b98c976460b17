"""The index rows that the parameters of indexing.UNINDEXED would have: they are searched
in the resources table instead, and must find what such rows would. For the test oracles
that derive expected results from a resource's index rows."""

from __future__ import annotations

from typing import Any

from fhir_adapter.store.indexing import UNINDEXED
from fhir_adapter.store.values import date_range


def rows_as_if_indexed(resource: dict[str, Any], version: str) -> dict[str, list[dict]]:
    """table -> rows (as indexing.index_rows gives them) of `_id` and `_lastUpdated` for a
    stored resource (its meta.lastUpdated set by the store)."""
    assert UNINDEXED == {"_id", "_lastUpdated"}, "rows_as_if_indexed needs the new one"
    rtype, rid = resource["resourceType"], resource["id"]
    base = {"res_type": rtype, "res_id": rid, "fhir_version": version, "grp": 0}
    out: dict[str, list[dict]] = {
        "token": [{**base, "param": "_id", "system": None, "code": rid, "text": None}]}
    updated = (resource.get("meta") or {}).get("lastUpdated")
    if updated:
        low, high = date_range(updated)
        out["date"] = [{**base, "param": "_lastUpdated", "low": low, "high": high}]
    return out
