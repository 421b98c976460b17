"""The resources a ResearchStudy references, as standalone resources with deterministic ids:
Organization (sponsors, affiliations), Practitioner / PractitionerRole (officials, contacts),
Location (sites), Group (eligibility) and EvidenceVariable (interventions)."""

from __future__ import annotations

from typing import Any

from .. import ids
from .own_terms import USAGE_CONTEXT
from .study_common import (
    CONTACTPOINT_EXT,
    ISO3166,
    LOINC,
    MESH,
    ORG_SYSTEM,
    Ctx,
    age_quantity,
    coding,
    concept,
    ctgov_coding,
    display,
    ext,
    mapped_coding,
    reference,
    translate,
)


def organization(ctx: Ctx, name: str, agency_class: str | None = None) -> dict[str, str]:
    """Reference to the Organization of that name (one per name across all studies); its
    CT.gov agency class becomes Organization.type."""
    org = ctx.add({"resourceType": "Organization",
                   "id": ids.resource_id("Organization", ORG_SYSTEM, name), "name": name})
    if agency_class:
        kind = concept([ctgov_coding("AgencyClass", agency_class)])
        if not kind:
            kind = {"text": agency_class}
            ctx.warn(f"agency class {agency_class!r} is not a CT.gov AgencyClass: kept as text")
        types = org.setdefault("type", [])
        if kind not in types:
            types.append(kind)
    return reference(org, name)


def telecom(contact: dict[str, Any]) -> list[dict[str, Any]]:
    """CT.gov phone (+ extension number, or a country calling code put in phoneExt) and email
    as ContactPoints."""
    out: list[dict[str, Any]] = []
    if contact.get("phone"):
        point: dict[str, Any] = {"system": "phone", "value": contact["phone"]}
        extra = str(contact.get("phoneExt") or "").strip()
        if extra.startswith("+") and not contact["phone"].lstrip().startswith("+"):
            # CT.gov records put the country calling code here: it belongs before the number
            point["value"] = f"{extra} {contact['phone']}"
        elif extra:  # the extension number: contactpoint-extension's context is .value
            point["_value"] = {"extension": [ext(CONTACTPOINT_EXT, "String", extra)]}
        out.append(point)
    if contact.get("email"):
        out.append({"system": "email", "value": contact["email"]})
    return out


def practitioner(ctx: Ctx, name: str, points: list[dict[str, Any]] | None = None
                 ) -> dict[str, Any]:
    """The Practitioner of that name within this study (names are not unique across studies)."""
    person = ctx.add({"resourceType": "Practitioner", "id": ctx.rid("Practitioner", name),
                      "name": [{"text": name}]})
    for point in points or []:
        if point not in person.setdefault("telecom", []):
            person["telecom"].append(point)
    return person


def party_role(role: str | None) -> tuple[dict[str, str] | None, str | None]:
    """(research-study-party-role coding, text) of a CT.gov official/contact role."""
    if not role:
        return None, None
    return mapped_coding("ctgov-party-role", role), display(role)


def practitioner_role(ctx: Ctx, name: str, role: str | None, affiliation: str | None = None,
                      points: list[dict[str, Any]] | None = None,
                      title: str | None = None) -> dict[str, Any]:
    """A PractitionerRole: the person, the organization they are affiliated with and their
    role in this study (coded as an associatedParty role)."""
    person = practitioner(ctx, name, points)
    role_coding, role_text = party_role(role)
    resource: dict[str, Any] = {
        "resourceType": "PractitionerRole",
        "id": ctx.rid("PractitionerRole", f"{role}|{name}|{affiliation or ''}"),
        "practitioner": reference(person, name),
    }
    if affiliation:
        resource["organization"] = organization(ctx, affiliation)
    resource["code"] = [concept([role_coding], title or role_text)]
    return ctx.add(resource)


def location(ctx: Ctx, site: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(Location, country as an ISO 3166 CodeableConcept or None) for one CT.gov location."""
    parts = [site.get(k) or "" for k in ("facility", "city", "state", "zip", "country")]
    country = site.get("country")
    address: dict[str, Any] = {}
    city_line = " ".join(p for p in (site.get("state"), site.get("zip")) if p)
    text = ", ".join(p for p in (site.get("city"), city_line, country) if p)
    if text:
        address["text"] = text
    for src, dst in (("city", "city"), ("state", "state"), ("zip", "postalCode")):
        if site.get(src):
            address[dst] = site[src]
    jurisdiction = None
    if country:
        target = translate("country-iso3166", country)
        if target:
            address["country"] = target.code
            jurisdiction = concept([coding(ISO3166, target.code, target.display)], country)
        else:
            address["country"] = country
            jurisdiction = {"text": country}
            ctx.warn(f"country {country!r} has no ISO 3166-1 code: kept as text")
    resource: dict[str, Any] = {"resourceType": "Location",
                                "id": ctx.rid("Location", "site|" + "|".join(parts))}
    if site.get("facility"):
        resource["name"] = site["facility"]
    resource["address"] = address
    point = site.get("geoPoint") or {}
    if isinstance(point.get("lat"), int | float) and isinstance(point.get("lon"), int | float):
        resource["position"] = {"longitude": point["lon"], "latitude": point["lat"]}
    return ctx.add(resource), jurisdiction


LOINC_SEX = coding(LOINC, "46098-0", "Sex")
LOINC_AGE = coding(LOINC, "30525-0", "Age")
GENDER = "http://hl7.org/fhir/administrative-gender"


def eligibility_group(ctx: Ctx) -> dict[str, Any] | None:
    """The eligibility criteria as a definitional Group: criteria text (R5 description, R4
    the cross-version Group.description extension), sex, age range, healthy volunteers."""
    elig = ctx.module("eligibilityModule")
    if not elig:
        return None
    group: dict[str, Any] = {"resourceType": "Group", "id": ctx.rid("Group", "eligibility")}
    text = "\n\n".join(t for t in (
        elig.get("eligibilityCriteria"),
        f"Study population:\n\n{elig['studyPopulation']}" if elig.get("studyPopulation") else None,
        f"Sampling method: {display(elig['samplingMethod'])}"
        if elig.get("samplingMethod") else None) if t)
    if ctx.version == "R4":
        if text:
            group["extension"] = [ext("Group.description", "Markdown", text)]
        group.update({"type": "person", "actual": False})
    else:
        group.update({"type": "person", "membership": "definitional"})
        if text:
            group["description"] = text
    group["name"] = f"Eligibility criteria of {ctx.key}"
    chars = []
    sex = elig.get("sex")
    if sex:
        codings = [coding(GENDER, sex.lower(), sex.title())] if sex in ("FEMALE", "MALE") else []
        codings.append(ctgov_coding("Sex", sex))
        chars.append({"code": {"coding": [LOINC_SEX]},
                      "valueCodeableConcept": concept(codings, display(sex)), "exclude": False})
    age_range = {}
    for src, dst in (("minimumAge", "low"), ("maximumAge", "high")):
        if elig.get(src):
            quantity = age_quantity(str(elig[src]))
            if quantity:
                age_range[dst] = quantity
            else:
                ctx.warn(f"eligibilityModule.{src} {elig[src]!r} is not '<number> <unit>': "
                         "not mapped")
    if age_range:
        chars.append({"code": {"coding": [LOINC_AGE]}, "valueRange": age_range,
                      "exclude": False})
    if isinstance(elig.get("healthyVolunteers"), bool):
        chars.append({"code": {"text": "Accepts healthy volunteers"},
                      "valueBoolean": elig["healthyVolunteers"], "exclude": False})
    group["characteristic"] = chars
    return ctx.add(group)


INTERVENTION_TYPE_CONTEXT = coding(USAGE_CONTEXT, "interventionType",
                                   "Intervention Type for CT.gov")


def intervention(ctx: Ctx, item: dict[str, Any], mesh: dict[str, str]) -> dict[str, Any]:
    """One CT.gov intervention as an EvidenceVariable (as HL7's CT.gov example does, but
    standalone): title = name, description, other names, intervention type as useContext."""
    name = item.get("name")
    if not name:
        ctx.warn("an interventions entry has no name: titled '(unnamed intervention)'")
        name = "(unnamed intervention)"
    kind = item.get("type") or ""
    kind_concept = concept([ctgov_coding("InterventionType", kind)], kind or None)
    resource: dict[str, Any] = {
        "resourceType": "EvidenceVariable",
        "id": ctx.rid("EvidenceVariable", f"intervention|{kind}|{name}"),
        "title": name, "status": "active",
    }
    if item.get("description"):
        resource["description"] = item["description"]
    if item.get("otherNames"):
        resource["note"] = [{"text": "Other names: " + "; ".join(item["otherNames"])}]
    if kind:
        resource["useContext"] = [{"code": INTERVENTION_TYPE_CONTEXT,
                                   "valueCodeableConcept": kind_concept}]
    if ctx.version == "R4":  # R4 requires what defines the variable: exposure to the named item
        resource["characteristic"] = [{"definitionCodeableConcept": intervention_concept(
            name, mesh)}]
    return ctx.add(resource)


def intervention_concept(name: str, mesh: dict[str, str]) -> dict[str, Any]:
    """The intervention as a CodeableConcept: its name, with the MeSH code CT.gov derived for
    a term that matches it."""
    code = mesh.get(name.casefold())
    return concept([mesh_coding(code, name)] if code else [], name)


def mesh_coding(code: str, term: str) -> dict[str, str]:
    """A MeSH descriptor as a Coding."""
    return coding(MESH, code, term)
