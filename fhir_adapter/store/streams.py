"""Export streams: every current resource, or a study's, streamed in batches straight from
the driver, so memory stays flat however many there are."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, and_, false, select

from .base import FhirVersion, Stored
from .schema import resource_bodies as body
from .schema import resources as res
from .scope import pointing_ids, pointing_types, reference_texts
from .scope import targets as scope_targets
from .units import Units, as_bytes, body_join, since_instant

# What ExportReads._streamed reads: (type, id, version, updated, fhir version, body) per row.
_EXPORT_COLUMNS = (res.c.res_type, res.c.res_id, res.c.version_id, res.c.last_updated,
                   body.c.fhir_version, body.c.body)



def _positional(compiled: Any) -> Any:
    """A compiled statement's parameters as its DB-API driver takes them."""
    params = compiled.construct_params()
    return tuple(params[n] for n in compiled.positiontup) if compiled.positional else params



class ExportReads(Units):
    """The export side of the store's reads (reading.Reader has it)."""

    def iter_all(self, resource_types: Sequence[str] | None = None,
                 version: FhirVersion | None = None, since: str | None = None
                 ) -> Iterator[Stored]:
        """Every current resource with all its representations (or only `version`'s),
        streamed in (type, id) order: memory stays flat however many there are. `since`:
        only those last updated then or later (a FHIR instant or date)."""
        query = (select(*_EXPORT_COLUMNS).select_from(body_join(version))
                 .where(res.c.deleted == false())
                 .order_by(res.c.res_type, res.c.res_id, body.c.fhir_version))
        if resource_types:
            query = query.where(res.c.res_type.in_(list(resource_types)))
        if since:
            query = query.where(res.c.last_updated >= since_instant(since))
        with self._unit() as conn:
            yield from self._streamed(conn, query)

    def iter_study(self, study_id: str, version: FhirVersion, own: set[tuple[str, str]],
                   resource_types: Sequence[str] | None = None, since: str | None = None
                   ) -> Iterator[Stored]:
        """The current resources of the study `study_id` in `version` (store/scope.py; `own`:
        the study and what its references reach): first those that point at the study,
        streamed from the reference index, then the others they or the study reference,
        read by id, type by type. `resource_types` and `since` (as iter_all) narrow what is
        yielded, not the scope: an event unchanged since still brings its changed Patient."""
        after = since_instant(since) if since else ""
        types = set(resource_types or ())

        def wanted(stored: Stored) -> bool:
            return (not types or stored.resource_type in types) and \
                stored.last_updated >= after

        with self._unit() as conn:
            values: set[bytes] = set()  # distinct reference values: memory stays flat
            for rtype in sorted(pointing_types(version)):
                pointing = pointing_ids(version, rtype, study_id).subquery()  # type: ignore[union-attr]
                query = (select(*_EXPORT_COLUMNS)
                         .select_from(pointing.join(body_join(version), and_(
                             res.c.res_type == rtype, res.c.res_id == pointing.c.res_id)))
                         .where(res.c.deleted == false()))
                for stored in self._streamed(conn, query):
                    values.update(reference_texts(stored.json(version)))
                    if wanted(stored):
                        yield stored
            named = own | {("ResearchStudy", study_id)} | scope_targets(values)
            for rtype in sorted({t for t, _ in named}):
                if types and rtype not in types:
                    continue
                ids = sorted(i for t, i in named if t == rtype)
                query = (select(*_EXPORT_COLUMNS).select_from(body_join(version))
                         .where(res.c.deleted == false(), res.c.res_type == rtype)
                         .order_by(res.c.res_id))
                pointing = pointing_ids(version, rtype, study_id)
                if pointing is not None:  # streamed above already
                    query = query.where(res.c.res_id.not_in(pointing))
                if after:
                    query = query.where(res.c.last_updated >= after)
                for first in range(0, len(ids), 500):
                    yield from self._streamed(
                        conn, query.where(res.c.res_id.in_(ids[first:first + 500])))

    @staticmethod
    def _streamed(conn: Connection, query: Any) -> Iterator[Stored]:
        """The Stored of rows (type, id, version, updated, fhir version, body) that come
        grouped by resource."""
        # Rows straight from the driver in batches: SQLAlchemy's per-row result processing
        # cost about as much as reading the rows (export: ~2x).
        compiled = query.compile(dialect=conn.dialect,
                                 compile_kwargs={"render_postcompile": True})
        raw = conn.connection.dbapi_connection
        # PostgreSQL: a server-side cursor, else psycopg would fetch every row first.
        cur = (raw.cursor(name="fhir_adapter_export") if conn.dialect.name == "postgresql"
               else raw.cursor())  # type: ignore[union-attr]
        try:
            cur.execute(str(compiled), _positional(compiled))
            current: Any = None
            bodies: dict[str, bytes] = {}
            while batch := cur.fetchmany(1000):
                for rtype, rid, version_id, updated, fhir_version, data in batch:
                    if current is not None and (rtype != current[0] or rid != current[1]):
                        yield Stored(*current, False, bodies)
                        bodies = {}
                    current = (rtype, rid, version_id, updated)
                    bodies[fhir_version] = as_bytes(data)
            if current is not None:
                yield Stored(*current, False, bodies)
        finally:
            cur.close()
