"""Re-vendor the HL7 CodeSystems (CC0) that the mappings write, from the official npm packages:
`npm pack hl7.fhir.r4.examples@4.0.1 hl7.fhir.r5.core@5.0.0 hl7.terminology.r4@7.0.1
hl7.terminology.r5@7.0.1`, unpack each into a folder named after its tarball, then
`python tools/vendor_codesystems.py FOLDER` writes fhir_adapter/data/codesystems/{r4,r5}.json.

Only code and display of each concept are kept (hierarchies flattened): enough to check that
a coding is a member with the code system's own display, which is what the HL7 validator does
offline. SEVCO is THO's ValueSet study-design (the SEVCO concepts THO lists for R4 use)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "fhir_adapter" / "data" / "codesystems"
THO = "http://terminology.hl7.org/CodeSystem/"
CORE = "http://hl7.org/fhir/"
# (package folder, code system urls) per FHIR version; THO before core where both have a url.
WANTED = {
    "r4": [("hl7.terminology.r4-7.0.1", [THO + n for n in (
        "adverse-event-seriousness", "adverse-event-severity", "research-study-phase",
        "research-study-prim-purp-type", "research-study-objective-type",
        "research-study-reason-stopped", "research-study-party-role", "research-study-status",
        "title-type", "research-subject-state", "research-subject-state-type",
        "research-subject-milestone", "state-change-reason")]),
           ("hl7.fhir.r4.examples-4.0.1", [THO + "adverse-event-outcome",
                                           CORE + "research-study-status",
                                           CORE + "research-subject-status",
                                           CORE + "administrative-gender"])],
    "r5": [("hl7.terminology.r5-7.0.1", [THO + n for n in (
        "adverse-event-seriousness", "adverse-event-severity", "research-study-phase",
        "research-study-prim-purp-type", "research-study-objective-type",
        "research-study-reason-stopped", "research-subject-state",
        "research-subject-state-type", "research-subject-milestone", "state-change-reason")]),
           ("hl7.fhir.r5.core-5.0.0", [CORE + n for n in (
               "research-study-party-role", "study-design", "research-study-arm-type",
               "title-type", "research-study-status", "research-study-phase",
               "research-study-prim-purp-type", "research-study-objective-type",
               "research-study-reason-stopped", "administrative-gender")])],
}


def _flat(concepts: list[dict[str, Any]]) -> list[dict[str, str]]:
    out = []
    for c in concepts:
        out.append({k: c[k] for k in ("code", "display") if k in c})
        out += _flat(c.get("concept", []))
    return out


def _trim(cs: dict[str, Any], concepts: list[dict[str, Any]]) -> dict[str, Any]:
    keep = ("resourceType", "id", "url", "version", "name", "title", "status", "publisher",
            "caseSensitive", "content")
    out = {k: cs[k] for k in keep if k in cs}
    out["concept"] = concepts
    return out


def _sevco(folder: Path) -> dict[str, Any]:
    vs = json.loads((folder / "hl7.terminology.r4-7.0.1/package/ValueSet-study-design.json")
                    .read_text())
    (include,) = vs["compose"]["include"]
    return {"resourceType": "CodeSystem", "id": "sevco", "url": include["system"],
            "version": include["version"], "name": "SEVCO",
            "title": "Scientific Evidence Code System (the concepts of THO ValueSet "
                     "study-design)", "status": "active", "caseSensitive": True,
            "content": "fragment",
            "concept": [{"code": c["code"], "display": c["display"]} for c in include["concept"]]}


def main(folder: Path) -> None:
    for version, sources in WANTED.items():
        entries = []
        for package, urls in sources:
            by_url = {}
            for path in sorted((folder / package / "package").glob("CodeSystem-*.json")):
                cs = json.loads(path.read_text())
                if cs.get("url") in urls:
                    by_url[cs["url"]] = _trim(cs, _flat(cs.get("concept", [])))
            missing = set(urls) - set(by_url)
            if missing:
                raise SystemExit(f"{package}: not found {sorted(missing)}")
            entries += [by_url[u] for u in urls]
        if version == "r4":
            entries.append(_sevco(folder))
        bundle = {"resourceType": "Bundle", "id": f"hl7-codesystems-{version}",
                  "type": "collection", "entry": [{"resource": cs} for cs in entries]}
        (OUT / f"{version}.json").write_text(json.dumps(bundle, indent=1, ensure_ascii=False)
                                             + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
