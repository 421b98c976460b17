"""Which stored resources make up one study (`Store.iter_study`, the export's --study): the
ResearchStudy and what it references (followed by the caller: not every reference of a study
is a search parameter); every resource whose reference search parameters point at the study
(ResearchSubject.study, AdverseEvent.study, a sub-study's partOf), found in the reference
index; and what those reference: the subjects' Patients, the events' Medications, read off
their bytes as they stream by. Those pointing at the study may be millions and are streamed;
the rest are few and read by id."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from sqlalchemy import Select, and_, select, union

from ..fhirversion import FhirVersion
from .schema import index_tables
from .searchparams import RESOURCE_TYPES, search_params
from .values import split_reference

TARGET = "ResearchStudy"


@cache
def pointing_params(version: FhirVersion) -> tuple[tuple[str, str], ...]:
    """(resource type, parameter) of every reference parameter that may point at a study."""
    return tuple((rtype, code) for rtype in RESOURCE_TYPES
                 for code, param in search_params(version, rtype).items()
                 if param.type == "reference" and TARGET in param.targets)


def pointing_types(version: FhirVersion) -> set[str]:
    return {rtype for rtype, _ in pointing_params(version)}


def _pointing(ref: Any, version: FhirVersion, rtype: str, code: str, study_id: str) -> Any:
    # A seek on the (fhir_version, res_type, param, target_id, target_type) index.
    return and_(ref.c.fhir_version == version, ref.c.res_type == rtype, ref.c.param == code,
                ref.c.target_id == study_id, ref.c.target_type == TARGET)


def pointing_ids(version: FhirVersion, rtype: str, study_id: str) -> Select | None:
    """res_id of the `rtype` resources that point at the study (None: no such parameter)."""
    ref = index_tables["reference"]
    parts = [select(ref.c.res_id).where(_pointing(ref, version, rtype, code, study_id))
             for t, code in pointing_params(version) if t == rtype]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else union(*parts)  # type: ignore[return-value]


# A Reference's `reference` in stored (canonical, compact) bytes; an escaped value is no id.
_REFERENCE = re.compile(rb'"reference":"([^"\\]*)"')


def reference_texts(data: bytes) -> list[bytes]:
    """The `reference` values in a stored resource's bytes, found without parsing it (give
    the distinct ones to `targets`)."""
    return _REFERENCE.findall(data)


def targets(values: set[bytes]) -> set[tuple[str, str]]:
    """(type, id) of each relative or absolute `Type/id` among reference values."""
    found = set()
    for value in values:
        rtype, rid = split_reference(value.decode())
        if rtype and rid:
            found.add((rtype, rid))
    return found
