"""The coded parts of an AdverseEvent: seriousness and its criteria, severity, CTCAE grade,
outcome, relatedness and actions, each looked up in its ConceptMap (mappings/sdtm-ae*.json)."""

from __future__ import annotations

from typing import Any

from ..conceptmaps import all_maps, lookup, translate
from ..fhirversion import FhirVersion
from ..records import CRITERIA, ICH_CRITERIA, AdverseEventRecord
from . import Mapped

BACKPORT = "http://hl7.org/fhir/uv/ae-research-backport-ig/StructureDefinition/"
AE_RESEARCH = "http://hl7.org/fhir/uv/ae-research-ig/StructureDefinition/"


class Codes:
    """The coded parts of one record in one version, through the sdtm-ae*.json ConceptMaps."""

    def __init__(self, record: AdverseEventRecord, version: FhirVersion, out: Mapped) -> None:
        self.record, self.version, self.out = record, version, out
        self.v = version.lower()

    def seriousness(self, serious: bool | None) -> dict | None:
        """seriousness: R4 Serious/Non-serious, R5 serious/non-serious."""
        if serious is None:
            return None
        return _concept(f"sdtm-aeser-seriousness-{self.v}", "Y" if serious else "N")

    def severity(self) -> dict | None:
        """The THO adverse-event-severity concept of AESEV (R4 element, R5 extension)."""
        return _concept("sdtm-aesev-severity", self.record.severity) \
            if self.record.severity else None

    def severity_extension(self) -> list[dict]:
        """R5: the ae-severity extension, since the element was removed."""
        cc = self.severity()
        return [{"url": AE_RESEARCH + "ae-severity", "valueCodeableConcept": cc}] if cc else []

    def grade(self, base: str) -> list[dict]:
        """The ae-grade extension (NCIt CTCAE grade) of `base` IG, only when graded."""
        if self.record.grade is None:
            return []
        cc = _concept("sdtm-aetoxgr-ctcae-grade", str(self.record.grade))
        return [{"url": base + "ae-grade", "valueCodeableConcept": cc}]

    def outcome(self, outcome: str | None) -> dict | None:
        """R4 adverse-event-outcome or R5 NCIt outcome of a CDISC AEOUT term."""
        return _concept(f"sdtm-aeout-outcome-{self.v}", outcome) if outcome else None

    def relatedness(self) -> dict | None:
        """NCIt relatedness, with the investigator's own term as text."""
        if not self.record.relatedness:
            return None
        cc = _concept("sdtm-aerel-relatedness", self.record.relatedness)
        return {**cc, "text": self.record.relatedness}

    def actions(self) -> list[dict]:
        """One concept per action taken with the study treatment."""
        return [_concept("sdtm-aeacn-action-taken", a) for a in self.record.actions]

    def criteria(self, base: str, serious: bool | None) -> list[dict]:
        """seriousness-criteria extensions, one per criterion the source assessed: for serious
        events (IG invariant aeClinRes-seriousness-1), and for any event with a criterion met:
        an event recorded not serious with a Y flag keeps its flags, as recorded (the source
        reported that contradiction as a finding and the event is tagged)."""
        given = self.record.criteria
        if not serious and not any(given.values()):
            return []
        if serious and not any(c in given for c in ICH_CRITERIA):
            self.out.warnings.append("serious event without any seriousness criterion given")
        out = []
        for flag in CRITERIA:
            if flag not in given:
                continue
            target = translate("sdtm-ae-seriousness-criteria", flag)[0]
            code = _cc(target) if target.code else {"text": target.display}
            out.append({"url": base + "seriousness-criteria", "extension": [
                {"url": "criterionCode", "valueCodeableConcept": code},
                {"url": "criterionPresent", "valueBoolean": given[flag]}]})
        return out


def _cc(target: Any) -> dict:
    return {"coding": [target.coding()]}


_CODINGS: dict[tuple[str, str], dict[str, str]] = {}  # (map, code) -> Coding, as of _FROM
_FROM: list[Any] = [None]  # the all_maps() the codings were looked up in


def _concept(map_id: str, code: str) -> dict:
    """_cc(lookup(map_id, code)), a new dict each time, looked up once per code (until the
    ConceptMaps are re-read: a site's FHIR_ADAPTER_MAPPINGS, in tests)."""
    maps = all_maps()
    if _FROM[0] is not maps or len(_CODINGS) > 4096:
        _CODINGS.clear()
        _FROM[0] = maps
    coding = _CODINGS.get((map_id, code))
    if coding is None:  # UnmappedCode is raised here each time, never remembered
        coding = _CODINGS[map_id, code] = lookup(map_id, code).coding()
    return {"coding": [dict(coding)]}
