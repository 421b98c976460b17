"""Legacy ClinicalTrials.gov `<clinical_study>` XML (public.xsd era) -> the API v2 study shape.

One mapper (mapping/study.py) reads CT.gov v2 JSON; this reader turns a legacy XML record into
the same dict, so both formats meet the same code. Element -> v2 field:

  id_info nct_id / org_study_id / secondary_id / nct_alias, brief_title, official_title, acronym,
  source                           -> identificationModule (organization.fullName = source)
  overall_status, last_known_status, why_stopped, *_date, *_submitted(_qc), *_posted,
  verification_date, has_expanded_access -> statusModule (dates -> ISO "2015-03" / "2015-03-03",
                                      type Actual -> ACTUAL, Anticipated/Estimate -> ESTIMATED)
  sponsors, responsible_party      -> sponsorCollaboratorsModule
  oversight_info                   -> oversightModule
  brief_summary, detailed_description -> descriptionModule (text blocks re-flowed, see textblock)
  condition, keyword               -> conditionsModule
  study_type, phase, study_design_info (or the pre-2017 study_design string), target_duration,
  enrollment, biospec_*, expanded_access_info -> designModule
  arm_group, intervention          -> armsInterventionsModule (interventionNames "Drug: X" built
                                      from each intervention's arm_group_label)
  primary/secondary/other_outcome  -> outcomesModule
  eligibility                      -> eligibilityModule (stdAges computed from the age limits)
  overall_official, overall_contact(_backup), location -> contactsLocationsModule
  reference, results_reference, link, study_docs -> referencesModule
  patient_data                     -> ipdSharingStatementModule
  provided_document_section        -> documentSection.largeDocumentModule
  condition_browse / intervention_browse -> derivedSection browse modules (terms only: the XML
                                      carries no MeSH ids), required_header download_date ->
                                      miscInfoModule.versionHolder, removed_countries
  clinical_results                 -> not converted; hasResults says whether the XML had it.
Not carried (derivable from the above): location_countries, number_of_arms/groups, url.

Per-module builders live in ctgov_xml_modules.py, value conversions (enums, dates, ages, text
blocks) in ctgov_values.py. Inputs are untrusted: parsing uses expat directly and refuses any
DOCTYPE (so no entity can be declared or expanded); errors become InputError naming the line.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any
from xml.etree.ElementTree import Element, TreeBuilder
from xml.parsers import expat

from ..errors import InputError
from . import ctgov_values as v
from . import ctgov_xml_modules as m

NCT_ID = re.compile(r"NCT\d{8}")


def read_clinical_study_xml(path: Path) -> dict[str, Any]:
    """One legacy `<clinical_study>` XML file as a CT.gov API v2 study dict.

    Raises InputError for a file that is not well-formed XML, declares a DOCTYPE, has another
    root element or lacks a valid nct_id. Enum text outside the known values is kept as written.
    """
    root, lines = _parse(Path(path))
    if root.tag != "clinical_study":
        raise InputError(str(path), f"root element is <{root.tag}>, expected <clinical_study>",
                         lines.get(id(root)), root.tag)
    nct_id = m.text(root, "id_info/nct_id")
    if not nct_id or not NCT_ID.fullmatch(nct_id):
        where = root.find("id_info")
        line = lines.get(id(where if where is not None else root))
        found = f"{nct_id!r} is not an NCT number (NCT + 8 digits)" if nct_id else "missing"
        raise InputError(str(path), f"<id_info><nct_id> {found}", line, "id_info/nct_id")
    study: dict[str, Any] = {"protocolSection": _protocol(root)}
    documents = _large_docs(root)
    if documents:
        study["documentSection"] = {"largeDocumentModule": {"largeDocs": documents}}
    study["derivedSection"] = _derived(root)
    study["hasResults"] = root.find("clinical_results") is not None
    return _compact(study)


class _Refused(Exception):
    pass


def _parse(path: Path) -> tuple[Element, dict[int, int]]:
    """The element tree and each element's line (by id). A DOCTYPE is refused outright: CT.gov
    records never have one, and refusing it rules out entity expansion and external entities."""
    builder, lines = TreeBuilder(), {}
    parser = expat.ParserCreate()
    parser.buffer_text = True

    def start(tag: str, attrs: dict[str, str]) -> None:
        lines[id(builder.start(tag, attrs))] = parser.CurrentLineNumber

    def refuse(*_: Any) -> None:
        raise _Refused(parser.CurrentLineNumber)

    parser.StartElementHandler = start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.StartDoctypeDeclHandler = parser.EntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    try:
        with open(path, "rb") as fh:
            parser.ParseFile(fh)
    except OSError as exc:
        raise InputError(str(path), f"cannot read file: {exc.strerror or exc}") from exc
    except expat.ExpatError as exc:
        raise InputError(str(path), f"not well-formed XML: {expat.ErrorString(exc.code)}"
                         f" (column {exc.offset + 1})", exc.lineno) from exc
    except _Refused as exc:
        raise InputError(str(path), "DOCTYPE/ENTITY declarations are not accepted in CT.gov XML"
                         " (entity expansion is refused)", exc.args[0]) from None
    return builder.close(), lines


def _compact(value: Any) -> Any:
    """Drop None, "", [] and {} (v2 omits absent fields); keep False and 0."""
    if isinstance(value, dict):
        pairs = ((k, _compact(x)) for k, x in value.items())
        return {k: x for k, x in pairs if x not in (None, "", [], {})}
    if isinstance(value, list):
        return [x for x in map(_compact, value) if x not in (None, "", [], {})]
    return value


def _protocol(root: Element) -> dict[str, Any]:
    return {
        "identificationModule": {
            "nctId": m.text(root, "id_info/nct_id"),
            "nctIdAliases": m.texts(root, "id_info/nct_alias"),
            "orgStudyIdInfo": {"id": m.text(root, "id_info/org_study_id")},
            "secondaryIdInfos": [{"id": s} for s in m.texts(root, "id_info/secondary_id")],
            "organization": {"fullName": m.text(root, "source")},
            "briefTitle": m.text(root, "brief_title"),
            "officialTitle": m.text(root, "official_title"),
            "acronym": m.text(root, "acronym"),
        },
        "statusModule": m.status(root),
        "sponsorCollaboratorsModule": m.sponsors(root),
        "oversightModule": {key: v.yes_no(m.text(root, f"oversight_info/{tag}")) for key, tag in (
            ("oversightHasDmc", "has_dmc"), ("isFdaRegulatedDrug", "is_fda_regulated_drug"),
            ("isFdaRegulatedDevice", "is_fda_regulated_device"),
            ("isUnapprovedDevice", "is_unapproved_device"), ("isPpsd", "is_ppsd"),
            ("isUsExport", "is_us_export"))},
        "descriptionModule": {
            "briefSummary": m.block(root, "brief_summary/textblock"),
            "detailedDescription": m.block(root, "detailed_description/textblock"),
        },
        "conditionsModule": {"conditions": m.texts(root, "condition"),
                             "keywords": m.texts(root, "keyword")},
        "designModule": m.design(root),
        "armsInterventionsModule": m.arms_interventions(root),
        "outcomesModule": {key: [m.outcome(o) for o in root.findall(tag)] for key, tag in (
            ("primaryOutcomes", "primary_outcome"), ("secondaryOutcomes", "secondary_outcome"),
            ("otherOutcomes", "other_outcome"))},
        "eligibilityModule": m.eligibility(root),
        "contactsLocationsModule": {
            "centralContacts": [m.contact(c, "CONTACT") for tag in (
                "overall_contact", "overall_contact_backup") for c in root.findall(tag)],
            "overallOfficials": [m.official(o) for o in root.findall("overall_official")],
            "locations": [m.location(loc) for loc in root.findall("location")],
        },
        "referencesModule": _references(root),
        "ipdSharingStatementModule": {
            "ipdSharing": v.IPD_SHARING(m.text(root, "patient_data/sharing_ipd")),
            "description": m.text(root, "patient_data/ipd_description"),
            "infoTypes": [v.IPD_INFO_TYPE(t) for t in m.texts(root, "patient_data/ipd_info_type")],
            "timeFrame": m.text(root, "patient_data/ipd_time_frame"),
            "accessCriteria": m.text(root, "patient_data/ipd_access_criteria"),
            "url": m.text(root, "patient_data/ipd_url"),
        },
    }


def _references(root: Element) -> dict[str, Any]:
    # <reference> holds v2's BACKGROUND and DERIVED kinds alike, so it gets no type.
    refs = [(node, None) for node in root.findall("reference")]
    refs += [(node, "RESULT") for node in root.findall("results_reference")]
    return {
        "references": [{"pmid": m.text(n, "PMID"), "type": kind, "citation": m.text(n, "citation")}
                       for n, kind in refs],
        "seeAlsoLinks": [{"label": m.text(n, "description"), "url": m.text(n, "url")}
                         for n in root.findall("link")],
        "availIpds": [{"id": m.text(n, "doc_id"), "type": m.text(n, "doc_type"),
                       "url": m.text(n, "doc_url"), "comment": m.text(n, "doc_comment")}
                      for n in root.findall("study_docs/study_doc")],
    }


def _large_docs(root: Element) -> list[dict[str, Any]]:
    docs = []
    for node in root.findall("provided_document_section/provided_document"):
        url = m.text(node, "document_url")
        filename = PurePosixPath(url).name if url else None
        docs.append({
            # v2's typeAbbrev is the file name's stem without its sequence: Prot_SAP_000.pdf
            "typeAbbrev": re.sub(r"_\d+$", "", PurePosixPath(filename).stem) if filename else None,
            "hasProtocol": v.yes_no(m.text(node, "document_has_protocol")),
            "hasSap": v.yes_no(m.text(node, "document_has_sap")),
            "hasIcf": v.yes_no(m.text(node, "document_has_icf")),
            "label": m.text(node, "document_type"),
            "date": m.date(node, "document_date"),
            "filename": filename,
        })
    return docs


def _derived(root: Element) -> dict[str, Any]:
    header = m.text(root, "required_header/download_date") or ""
    processed = re.search(r"on (\w+ \d{1,2}, \d{4})", header)
    return {
        "miscInfoModule": {
            "versionHolder": v.iso_date(processed[1]) if processed else None,
            "removedCountries": m.texts(root, "removed_countries/country"),
        },
        "conditionBrowseModule": {
            "meshes": [{"term": t} for t in m.texts(root, "condition_browse/mesh_term")]},
        "interventionBrowseModule": {
            "meshes": [{"term": t} for t in m.texts(root, "intervention_browse/mesh_term")]},
    }
