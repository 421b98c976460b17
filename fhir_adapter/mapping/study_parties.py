"""People, organizations, sites and links of a CT.gov study: associated parties (sponsors,
collaborators, officials, contacts, the responsible party), sites with their recruitment
status and contacts, related artifacts and the IPD-sharing statement."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .study_common import PARTY_ROLE, Ctx, coding, concept, ctgov_coding, display, reference
from .study_refs import location, organization, party_role, practitioner, practitioner_role, telecom


@dataclass
class Party:
    """One associated party. `native` names the R4 element that can hold it (sponsor,
    principalInvestigator, contact); every other party goes into the cross-version
    associatedParty extension in R4."""

    name: str | None
    role: dict[str, str] | None
    role_text: str | None
    classifier: list[dict[str, Any]] = field(default_factory=list)
    party: dict[str, str] | None = None
    native: str | None = None
    contact: dict[str, Any] | None = None  # R4 ContactDetail (name + telecom)

    def role_concept(self) -> dict[str, Any]:
        return concept([self.role], None if self.role else self.role_text)


def _agency(agency_class: str | None) -> list[dict[str, Any]]:
    if not agency_class:
        return []
    known = ctgov_coding("AgencyClass", agency_class)
    return [concept([known]) if known else {"text": agency_class}]


def _person(ctx: Ctx, person: dict[str, Any], contact_role: str) -> Party:
    """An official or contact: in R5 (and for investigators in R4) a Practitioner(Role) party;
    a plain contact in R4 is a ContactDetail."""
    name, role = person.get("name"), person.get("role") or contact_role
    role_coding, role_text = party_role(role)
    if not role_coding and not role_text:  # CT.gov lists the person without a role
        role_text = "Overall Official"
    points = telecom(person)
    party = Party(name, role_coding, role_text)
    if role == "CONTACT":
        party.native = "contact"
        party.contact = {k: v for k, v in (("name", name), ("telecom", points)) if v}
        if ctx.version == "R5" and name:
            party.party = reference(practitioner(ctx, name, points), name)
    elif name:
        party.party = reference(practitioner_role(ctx, name, role, person.get("affiliation"),
                                                  points), name)
    return party


def parties(ctx: Ctx) -> list[Party]:
    """Lead sponsor, registering organization, collaborators, overall officials (with the
    responsible party marked) and central contacts, in that order."""
    module = ctx.module("sponsorCollaboratorsModule")
    ident = ctx.module("identificationModule")
    out: list[Party] = []
    lead = module.get("leadSponsor") or {}
    responsible = module.get("responsibleParty") or {}
    if lead.get("name"):
        party = Party(lead["name"], coding(PARTY_ROLE, "lead-sponsor", "Lead Sponsor"), None,
                      _agency(lead.get("class")),
                      organization(ctx, lead["name"], lead.get("class")), native="sponsor")
        if responsible.get("type") == "SPONSOR":
            party.classifier.append({"text": "Responsible Party"})
        out.append(party)
    org = ident.get("organization") or {}
    if org.get("fullName") and org["fullName"] != lead.get("name"):
        # HL7's CT.gov example lists the registering organization as 'sponsor'.
        out.append(Party(org["fullName"], coding(PARTY_ROLE, "sponsor", "Sponsor"), None,
                         _agency(org.get("class")), organization(ctx, org["fullName"])))
    for collab in module.get("collaborators") or []:
        if collab.get("name"):
            out.append(Party(collab["name"], coding(PARTY_ROLE, "collaborator", "Collaborator"),
                             None, _agency(collab.get("class")),
                             organization(ctx, collab["name"], collab.get("class"))))
    officials = []
    contacts = ctx.module("contactsLocationsModule")
    for official in contacts.get("overallOfficials") or []:
        party = _person(ctx, official, "")
        if official.get("role") == "PRINCIPAL_INVESTIGATOR" and not any(
                p.native == "pi" for p in officials):
            party.native = "pi"
        officials.append(party)
    name = responsible.get("investigatorFullName")
    if responsible.get("type") in ("PRINCIPAL_INVESTIGATOR", "SPONSOR_INVESTIGATOR") and name:
        same = [p for p in officials if (p.name or "").casefold() == name.casefold()]
        title = responsible.get("investigatorTitle")
        if same:
            same[0].classifier.append(
                {"text": "Responsible Party" + (f": {title}" if title else "")})
        else:
            role_coding, role_text = party_role(responsible["type"])
            role = practitioner_role(ctx, name, responsible["type"],
                                     responsible.get("investigatorAffiliation"),
                                     title=title)
            officials.append(Party(name, role_coding, role_text, [{"text": "Responsible Party"}],
                                   reference(role, name)))
    out.extend(officials)
    out.extend(_person(ctx, c, "CONTACT") for c in contacts.get("centralContacts") or [])
    return out


@dataclass
class Sites:
    """Site Locations, their countries (R4 location / R5 region) and the sites that carry a
    recruitment status or contacts of their own (mapped to a per-site ResearchStudy)."""

    locations: list[dict[str, str]] = field(default_factory=list)
    regions: list[dict[str, Any]] = field(default_factory=list)
    details: list[tuple[dict[str, Any], str | None, list[Party]]] = field(default_factory=list)


def sites(ctx: Ctx) -> Sites:
    """Every CT.gov location once (identical entries collapse into one Location)."""
    out = Sites()
    seen: set[str] = set()
    for site in ctx.module("contactsLocationsModule").get("locations") or []:
        resource, country = location(ctx, site)
        if resource["id"] in seen:
            continue
        seen.add(resource["id"])
        out.locations.append(reference(resource, resource.get("name")))
        if country and country not in out.regions:
            out.regions.append(country)
        people = [_person(ctx, c, "CONTACT") for c in site.get("contacts") or []]
        investigators = [p for p, c in zip(people, site.get("contacts") or [], strict=True)
                         if c.get("role") == "PRINCIPAL_INVESTIGATOR"]
        if investigators:
            investigators[0].native = "pi"
        if site.get("status") or people:
            out.details.append((resource, site.get("status"), people))
    return out


def artifacts(ctx: Ctx) -> list[dict[str, Any]]:
    """Related artifacts, version-neutral: the CT.gov record, citations, links, IPD
    documents and uploaded documents. `url` becomes R4 url / R5 document.url."""
    out: list[dict[str, Any]] = []
    nct = ctx.module("identificationModule").get("nctId")
    if nct:
        out.append({"type": "derived-from", "r5type": "transforms", "label": "ClinicalTrials.gov",
                    "display": f"ClinicalTrials.gov record {nct}",
                    "url": f"https://clinicaltrials.gov/study/{nct}",
                    "r5url": f"https://clinicaltrials.gov/api/v2/studies/{nct}"})
    ident = ctx.module("identificationModule")
    for info in [ident.get("orgStudyIdInfo") or {}, *(ident.get("secondaryIdInfos") or [])]:
        if info.get("link") and info.get("id"):  # e.g. the NIH RePORTER page of a grant number
            out.append({"type": "documentation", "label": info["id"],
                        "display": f"{display(info['type'])} {info['id']}" if info.get("type")
                        else info["id"], "url": info["link"]})
    refs = ctx.module("referencesModule")
    for ref in refs.get("references") or []:
        item: dict[str, Any] = {"type": "citation"}
        if ref.get("type"):
            item["label"] = display(ref["type"])
        if ref.get("citation"):
            item["citation"] = ref["citation"]
        if ref.get("pmid"):
            item["url"] = f"https://pubmed.ncbi.nlm.nih.gov/{ref['pmid']}/"
        out.append(item)
    for link in refs.get("seeAlsoLinks") or []:
        out.append({"type": "documentation", "display": link.get("label"), "url": link.get("url")})
    for ipd in refs.get("availIpds") or []:
        label = " ".join(p for p in (ipd.get("type"), f"(id {ipd['id']})" if ipd.get("id")
                                     else None) if p)
        out.append({"type": "documentation", "label": label or None,
                    "display": ipd.get("comment"), "url": ipd.get("url")})
    docs = ((ctx.study.get("documentSection") or {}).get("largeDocumentModule") or {})
    for doc in docs.get("largeDocs") or []:
        attachment = {k: v for k, v in (("title", doc.get("filename")),
                                        ("creation", doc.get("date"))) if v}
        out.append({"type": "documentation", "label": doc.get("label"),
                    "document": attachment or None})
    return [{k: v for k, v in item.items() if v} for item in out]


def ipd_note(ctx: Ctx) -> str | None:
    """The individual participant data (IPD) sharing statement as one note."""
    ipd = ctx.module("ipdSharingStatementModule")
    if not ipd:
        return None
    parts = [f"IPD sharing: {display(ipd['ipdSharing'])}." if ipd.get("ipdSharing") else None,
             ipd.get("description"),
             "Information types: " + ", ".join(display(t) for t in ipd["infoTypes"]) + "."
             if ipd.get("infoTypes") else None,
             f"Time frame: {ipd['timeFrame']}" if ipd.get("timeFrame") else None,
             f"Access criteria: {ipd['accessCriteria']}" if ipd.get("accessCriteria") else None,
             f"URL: {ipd['url']}" if ipd.get("url") else None]
    return "\n\n".join(p for p in parts if p) or None
