"""Deterministic resource ids: the same source identifier always gives the same id, so
re-loading a file updates resources instead of duplicating them."""

from __future__ import annotations

import hashlib
import re
import uuid
from functools import lru_cache

# A fixed namespace for this project; changing it would re-key every stored resource.
NAMESPACE = uuid.UUID("6f1f3d9c-2f57-5a52-9a49-0c5ad0b1f4e1")

NCT_SYSTEM = "https://clinicaltrials.gov"


@lru_cache(maxsize=4096)  # subjects, studies and the study drug repeat row after row
def resource_id(resource_type: str, system: str, value: str) -> str:
    """uuid5 over type + system + value: stable, opaque, valid as a FHIR id."""
    return uuid5_text(f"{resource_type}|{system}|{value}")


_NAMESPACE_BYTES = NAMESPACE.bytes


def uuid5_text(name: str) -> str:
    """str(uuid.uuid5(NAMESPACE, name)) without building a UUID object (half the time)."""
    raw = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode("utf-8")).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50  # version 5
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return dashed(raw.hex())


def dashed(h: str) -> str:
    """32 hex digits as UUID text (8-4-4-4-12), as str(uuid.UUID(hex=h)) writes them."""
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# Sponsor study ids (SDTM STUDYID, CT.gov orgStudyIdInfo) are only unique per sponsor, but
# DM/AE rows do not name the sponsor: one project-wide system keeps their ids joinable.
STUDY_ID_SYSTEM = "urn:fhir-adapter:sponsor-study-id"

NCT_PATTERN = re.compile(r"NCT\d{8}")


@lru_cache(maxsize=256)
def study_key(study: str) -> tuple[str, str]:
    """The (system, value) that identifies a study across all mappings: an NCT id, or
    else a sponsor study id (SDTM STUDYID)."""
    study = study.strip()
    if not study:
        raise ValueError("a study needs an NCT id or a sponsor study id")
    if NCT_PATTERN.fullmatch(study.upper()):
        return NCT_SYSTEM, study.upper()
    return STUDY_ID_SYSTEM, study


@lru_cache(maxsize=256)
def study_resource_id(study: str) -> str:
    """Id of the ResearchStudy for a study known by NCT id or sponsor study id."""
    system, value = study_key(study)
    return resource_id("ResearchStudy", system, value)


def slug(text: str) -> str:
    """Lower-case, ASCII letters/digits joined by '-': stable linkIds from free-text names."""
    out, dash = [], False
    for ch in text.strip().lower():
        if ch.isascii() and ch.isalnum():
            out.append(ch)
            dash = False
        elif not dash and out:
            out.append("-")
            dash = True
    return "".join(out).strip("-") or "x"


def arm_link_id(arm_name: str) -> str:
    """R5 comparisonGroup.linkId of an arm: derived from its name, so enrollments that only
    know the arm name (CSV `arm`, SDTM ARM) resolve to the same comparisonGroup."""
    link = "arm-" + slug(arm_name)
    if len(link) <= 64:
        return link
    # A FHIR id holds at most 64 characters: keep a readable prefix, add a hash for uniqueness.
    digest = hashlib.sha1(arm_name.encode("utf-8")).hexdigest()[:12]
    return f"{link[:51].rstrip('-')}-{digest}"


@lru_cache(maxsize=256)
def subject_system(study: str) -> str:
    """Identifier system of subject ids within one study (they are unique per study only)."""
    system, value = study_key(study)
    return f"urn:fhir-adapter:subject:{slug(value)}"
