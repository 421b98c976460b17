"""Persistent FHIR store: SQLite (default) or PostgreSQL through SQLAlchemy Core.

`open_store(url)` gives a SqlStore implementing the Store protocol of base.py.
"""

from .base import FhirVersion, SearchQuery, SearchResult, Store, Stored, WriteResult
from .sql import SqlStore, open_store

__all__ = ["FhirVersion", "SearchQuery", "SearchResult", "SqlStore", "Store", "Stored",
           "WriteResult", "open_store"]
