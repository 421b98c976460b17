"""Pure mapping functions: one source record in, FHIR resources (plain dicts) out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Mapped:
    """What one source record became, plus what could not be mapped (never dropped silently)."""

    resources: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
