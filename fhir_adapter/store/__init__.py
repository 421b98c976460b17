"""Persistent FHIR store: SQLite (default) or PostgreSQL through SQLAlchemy Core.

`open_store(url)` gives a SqlStore implementing the Store protocol of base.py.

SqlStore and open_store are imported on first use: the loader's mapping processes use the
store's representation code (bulk.py, indexing.py) and start before SQLAlchemy is imported.
"""

from typing import TYPE_CHECKING, Any

from .base import FhirVersion, SearchQuery, SearchResult, Store, Stored, WriteResult

if TYPE_CHECKING:
    from .sql import SqlStore, open_store

__all__ = ["FhirVersion", "SearchQuery", "SearchResult", "SqlStore", "Store", "Stored",
           "WriteResult", "open_store"]


def __getattr__(name: str) -> Any:
    if name in ("SqlStore", "open_store"):
        from . import sql

        return getattr(sql, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
