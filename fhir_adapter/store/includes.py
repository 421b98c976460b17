"""_include and _revinclude: the current resources a search's matches point at, and those
pointing at them, from the reference index."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, false, select, tuple_

from ..errors import BadRequest
from .base import FhirVersion, Stored
from .schema import index_tables
from .schema import resource_bodies as body
from .schema import resources as res
from .searchparams import search_params
from .units import Units, as_bytes, body_join


class IncludeReads(Units):
    """The include side of the store's reads (reading.Reader has it)."""

    def _reference_param(self, version: FhirVersion, rtype: str, param: str) -> None:
        found = search_params(version, rtype).get(param)
        if found is None or found.type != "reference":
            raise BadRequest(f"{rtype}:{param} is not a reference search parameter ({version})")

    def references_from(self, sources: Sequence[Stored], version: FhirVersion, param: str,
                        target_type: str | None = None, limit: int = 1000) -> list[Stored]:
        """_include: the current resources that `param` of `sources` points at (optionally
        only of `target_type`), in `version`."""
        t = index_tables["reference"]
        targets: set[tuple[str, str]] = set()
        with self._unit() as conn:
            for rtype in sorted({s.resource_type for s in sources}):
                self._reference_param(version, rtype, param)
                ids = [s.id for s in sources if s.resource_type == rtype]
                query = select(t.c.target_type, t.c.target_id).where(
                    t.c.fhir_version == version, t.c.res_type == rtype, t.c.param == param,
                    t.c.res_id.in_(ids), t.c.target_id.is_not(None),
                    t.c.target_type.is_not(None))
                if target_type:
                    query = query.where(t.c.target_type == target_type)
                targets.update((r.target_type, r.target_id) for r in conn.execute(query))
            if not targets:
                return []
            return self._current(conn, version, tuple_(res.c.res_type, res.c.res_id).in_(
                sorted(targets)), limit)

    def referencing(self, resource_type: str, version: FhirVersion, param: str,
                    targets: Sequence[Stored], limit: int = 1000) -> list[Stored]:
        """_revinclude: current `resource_type` resources whose `param` points at `targets`."""
        self._reference_param(version, resource_type, param)
        if not targets:
            return []
        t = index_tables["reference"]
        sub = select(t.c.res_id).where(
            t.c.fhir_version == version, t.c.res_type == resource_type, t.c.param == param,
            tuple_(t.c.target_type, t.c.target_id).in_(
                sorted({(s.resource_type, s.id) for s in targets})))
        with self._unit() as conn:
            return self._current(conn, version, and_(res.c.res_type == resource_type,
                                                     res.c.res_id.in_(sub)), limit)

    def _current(self, conn: Connection, version: FhirVersion, cond: Any,
                 limit: int) -> list[Stored]:
        rows = conn.execute(
            select(res.c.res_type, res.c.res_id, res.c.version_id, res.c.last_updated,
                   body.c.body).select_from(body_join(version))
            .where(cond, res.c.deleted == false())
            .order_by(res.c.res_type, res.c.res_id).limit(limit)).all()
        return [Stored(r.res_type, r.res_id, r.version_id, r.last_updated, False,
                       {version: as_bytes(r.body)}) for r in rows]
