"""ClinicalTrials.gov study record (API v2 shape; legacy XML and SDTM trial designs are read into
the same shape) -> FHIR ResearchStudy and the resources it references, R4 4.0.1 or R5 5.0.0.

XV = cross-version extension http://hl7.org/fhir/5.0/StructureDefinition/extension-ResearchStudy.X
(hl7.fhir.uv.xver-r5.r4; complex ones have sub-extensions named after the R5 child elements).
CT = coding in https://clinicaltrials.gov/data-about-studies/study-data-structure#enum-<Enum>.
ConceptMaps (mappings/) are named in [brackets].

CT.gov v2 path                          R4                                R5
identification.nctId (+ nctIdAliases)   identifier{official, https://clinicaltrials.gov} (old)
  .orgStudyIdInfo.id/.type              identifier{system ids.STUDY_ID_SYSTEM, type CT,
                                          assigner -> Organization(identification.organization)}
  .secondaryIdInfos[].id/.type/.domain  identifier{type CT, value, assigner.display = domain}
  .orgStudyIdInfo/.secondaryIdInfos     relatedArtifact documentation (url = the link, e.g.
    [].link                               NIH RePORTER)
  .briefTitle (else officialTitle)      title                             title
  .officialTitle / .acronym             XV label{type, value}             label{type title-type
                                                                            official / acronym}
status.overallStatus                    status [ctgov-overall-status-to-r4] status = 'active';
  (UNKNOWN: lastKnownStatus)            + XV progressStatus (= R5)        progressStatus{state
                                                                            [..-to-r5-progress]}
                                                                            (UNKNOWN: actual=false)
  absent                                status 'in-review' + warning      no state + warning
  .startDateStruct/.completionDate..    period; XV progressStatus         period; progressStatus
                                                                            {overall-study, actual
                                                                            = type ACTUAL, period}
  .primaryCompletionDateStruct          XV progressStatus                 progressStatus{text
                                                                            'Primary completion'}
  .whyStopped                           reasonStopped.text                whyStopped.text
  .lastUpdatePostDateStruct             XV date                           date
  other registry dates, statusVerified  note                              note
  .delayedPosting, .expandedAccessInfo  category (text)                   classifier (text)
design.phases (PHASE1+PHASE2 ->         phase [ctgov-phase]               phase
  phase-1-phase-2)
designInfo.primaryPurpose               primaryPurposeType [ctgov-primary-purpose] (ECT, OTHER: CT)
studyType, allocation, interventionModel, category: CT + SEVCO             studyDesign: CT + SEVCO
  masking, whoMasked, observationalModel, [ctgov-study-type, -allocation, -intervention-model,
  timePerspective, bioSpec.retention,      -masking]; text "Design Allocation: Randomized"...
  patientRegistry, targetDuration,
  expandedAccessTypes
  *Description texts                    note                              note
enrollmentInfo.count (type ESTIMATED    XV recruitment{targetNumber /     recruitment.targetNumber
  -> target, ACTUAL -> actual)            actualNumber}                     / .actualNumber
description.briefSummary                description (+ XV descriptionSummary) descriptionSummary
  .detailedDescription                  description (after the summary)   description
conditions.conditions                   condition{text, MeSH coding when derivedSection
                                          .conditionBrowseModule.meshes has the same term}
  .keywords                             keyword{text}                     keyword{text}
armsInterventions.interventions         focus{text, MeSH}                 focus{concept, reference}
                                        -> EvidenceVariable per intervention (title, description,
                                          other names as note, type as useContext, like HL7's)
  .armGroups label/type/description     arm{name, type [ctgov-arm-type],  comparisonGroup{linkId
                                          description}                      = ids.arm_link_id,
  interventionNames/armGroupLabels      arm XV comparisonGroup.            name, type, description,
                                          intendedExposure                  intendedExposure}
outcomes.primary/secondary/other        objective{name, type primary /    outcomeMeasure{name,
  (measure, description, timeFrame)       secondary / exploratory} + XV     type, description +
                                          outcomeMeasure (with description) "Time frame: ..."}
eligibility (criteria, sex, min/maxAge, enrollment -> Group; criteria in  recruitment.eligibility
  healthyVolunteers, studyPopulation,     XV Group.description              -> Group; description
  samplingMethod)                       Group{type person, actual false,  membership definitional
                                          characteristic LOINC sex 46098-0 / age 30525-0 (UCUM
                                          range), 'Accepts healthy volunteers' boolean}
contactsLocations.locations             site -> Location{name, address (country ISO 3166-1
                                          alpha-2 [country-iso3166]), position}
                                        location = countries (urn:iso:std:iso:3166)  region
  locations[].status / .contacts        a ResearchStudy per site (partOf the study) with the site
                                          status (R4 status / R5 progressStatus) and its contacts
  .centralContacts                      contact (ContactDetail)           associatedParty{
                                                                            recruitment-contact,
                                                                            party -> Practitioner}
  .overallOfficials                     principalInvestigator (first PI)  associatedParty{role
                                          -> PractitionerRole; others XV    [ctgov-party-role],
                                          associatedParty                   party -> PractRole}
sponsorCollaborators.leadSponsor        sponsor -> Organization           associatedParty{lead-
                                                                            sponsor, classifier CT}
  .collaborators; identification        XV associatedParty{collaborator / sponsor}
    .organization (if not the lead)
  .responsibleParty                     classifier 'Responsible Party' on its party (investigator
                                          types: a PractitionerRole party if not an official)
oversightModule.*, hasResults           category (text)                   classifier (text, as
                                                                            HL7: "Has Results: ..")
references.references (citations),      relatedArtifact (citation /       relatedArtifact (
  .seeAlsoLinks, .availIpds;              documentation, url); the CT.gov   document.url); record
  documentSection.largeDocs; the record   record as derived-from            as 'transforms' (HL7)
ipdSharingStatementModule               note                              note

MeSH codings use the canonical url of THO's CodeSystem "MeSH", https://www.nlm.nih.gov/mesh
(urn:oid:2.16.840.1.113883.6.177 is that CodeSystem's OID identifier, not its url).

Not mapped (and why): derivedSection other than the MeSH terms (derived by CT.gov from the
protocol), eligibility.stdAges and design.nPtrsToThisExpAccNctId (derived), resultsSection
(results are not part of the protocol; reported), largeDocs uploadDate/size (reported).
Anything else a record carries that is not in HANDLED below is reported in Mapped.warnings,
never dropped silently.
"""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from ..fhirversion import normalise_version
from . import Mapped, study_r4, study_r5
from .study_common import Ctx, ordered
from .study_facts import OVERSIGHT, gather
from .study_parties import artifacts, ipd_note, parties, sites


def _paths(prefix: str, names: str) -> list[str]:
    return [f"{prefix}.{name}" for name in names.split()]


P = "protocolSection"
CONTACT = "name role phone phoneExt email"
# Source fields (list items share their list's path) that the mapping consumes; a path covers
# everything under it. Any other field of a record is reported in the warnings.
HANDLED = frozenset([
    *_paths(f"{P}.identificationModule", "nctId nctIdAliases briefTitle officialTitle acronym"
            " orgStudyIdInfo.id orgStudyIdInfo.type orgStudyIdInfo.link organization.fullName"
            " organization.class secondaryIdInfos.id secondaryIdInfos.type"
            " secondaryIdInfos.domain secondaryIdInfos.link"),
    *_paths(f"{P}.statusModule", "statusVerifiedDate overallStatus lastKnownStatus"
            " delayedPosting whyStopped expandedAccessInfo.hasExpandedAccess"
            " expandedAccessInfo.nctId expandedAccessInfo.statusForNctId startDateStruct"
            " primaryCompletionDateStruct completionDateStruct studyFirstSubmitDate"
            " studyFirstSubmitQcDate studyFirstPostDateStruct resultsFirstSubmitDate"
            " resultsFirstSubmitQcDate resultsFirstPostDateStruct dispFirstSubmitDate"
            " dispFirstSubmitQcDate dispFirstPostDateStruct lastUpdateSubmitDate"
            " lastUpdatePostDateStruct"),
    *_paths(f"{P}.sponsorCollaboratorsModule", "leadSponsor.name leadSponsor.class"
            " collaborators.name collaborators.class responsibleParty.type"
            " responsibleParty.investigatorFullName responsibleParty.investigatorTitle"
            " responsibleParty.investigatorAffiliation"),
    *_paths(f"{P}.oversightModule", " ".join(OVERSIGHT)),
    *_paths(f"{P}.descriptionModule", "briefSummary detailedDescription"),
    *_paths(f"{P}.conditionsModule", "conditions keywords"),
    *_paths(f"{P}.designModule", "studyType nPtrsToThisExpAccNctId expandedAccessTypes"
            " patientRegistry targetDuration phases designInfo.allocation"
            " designInfo.interventionModel designInfo.interventionModelDescription"
            " designInfo.primaryPurpose designInfo.observationalModel designInfo.timePerspective"
            " designInfo.maskingInfo.masking designInfo.maskingInfo.maskingDescription"
            " designInfo.maskingInfo.whoMasked bioSpec.retention bioSpec.description"
            " enrollmentInfo.count enrollmentInfo.type"),
    *_paths(f"{P}.armsInterventionsModule", "armGroups.label armGroups.type"
            " armGroups.description armGroups.interventionNames interventions.type"
            " interventions.name interventions.description interventions.armGroupLabels"
            " interventions.otherNames"),
    *(f"{P}.outcomesModule.{kind}.{name}" for kind in
      ("primaryOutcomes", "secondaryOutcomes", "otherOutcomes")
      for name in ("measure", "description", "timeFrame")),
    *_paths(f"{P}.eligibilityModule", "eligibilityCriteria healthyVolunteers sex minimumAge"
            " maximumAge stdAges studyPopulation samplingMethod"),
    *_paths(f"{P}.contactsLocationsModule.centralContacts", CONTACT),
    *_paths(f"{P}.contactsLocationsModule.overallOfficials", "name affiliation role"),
    *_paths(f"{P}.contactsLocationsModule.locations", "facility status city state zip country"
            " geoPoint.lat geoPoint.lon"),
    *_paths(f"{P}.contactsLocationsModule.locations.contacts", CONTACT),
    *_paths(f"{P}.referencesModule", "references.pmid references.type references.citation"
            " seeAlsoLinks.label seeAlsoLinks.url availIpds.id availIpds.type availIpds.url"
            " availIpds.comment"),
    *_paths(f"{P}.ipdSharingStatementModule",
            "ipdSharing description infoTypes timeFrame accessCriteria url"),
    *_paths("documentSection.largeDocumentModule.largeDocs",
            "label date filename typeAbbrev hasProtocol hasSap hasIcf"),
    "derivedSection", "hasResults"])
EXPECTED = ("statusModule", "sponsorCollaboratorsModule", "descriptionModule",
            "conditionsModule", "designModule", "armsInterventionsModule", "outcomesModule",
            "eligibilityModule", "contactsLocationsModule")


def map_study(study: dict[str, Any], version: str = "R4", source: str | None = None) -> Mapped:
    """One CT.gov-shaped study record -> its ResearchStudy (first) and every resource it
    references, in FHIR `version`; Mapped.warnings says what is missing or not mapped."""
    fhir_version = normalise_version(version)
    section = study.get("protocolSection") if isinstance(study, dict) else None
    ident = (section or {}).get("identificationModule") or {}
    key = ident.get("nctId") or (ident.get("orgStudyIdInfo") or {}).get("id")
    if not isinstance(section, dict) or not key:
        raise InputError(source or "study", "protocolSection.identificationModule.nctId missing")
    ctx = Ctx(study, fhir_version, key, source)
    for name in EXPECTED:
        if not isinstance(section.get(name), dict):
            ctx.warn(f"protocolSection.{name} missing")
    facts = gather(ctx)
    people = parties(ctx)
    places = sites(ctx)
    links = artifacts(ctx)
    note = ipd_note(ctx)
    if note:
        facts.notes.append(note)
    if fhir_version == "R4":
        main = study_r4.research_study(ctx, facts, people, places, links)
        extra = study_r4.site_studies(ctx, places, facts.r4_status)
    else:
        main = study_r5.research_study(ctx, facts, people, places, links)
        extra = study_r5.site_studies(ctx, places)
    left = unmapped(study)
    if left:
        ctx.warn("not mapped: " + ", ".join(left))
    resources = [main, *extra, *ctx.resources.values()]
    return Mapped([ordered(r, fhir_version) for r in resources], ctx.warnings)


def unmapped(study: dict[str, Any]) -> list[str]:
    """Paths of the record that carry data the mapping does not consume (the highest path
    under which nothing is consumed), in record order."""
    touched = {p[:i] for p in HANDLED for i in range(len(p) + 1) if i == len(p) or p[i] == "."}
    found: list[str] = []

    def walk(value: Any, path: str) -> None:
        if path in HANDLED or value in (None, "", [], {}):
            return
        if path and path not in touched:
            if path not in found:
                found.append(path)
            return
        if isinstance(value, dict):
            for key, child in value.items():
                walk(child, f"{path}.{key}" if path else key)
        elif isinstance(value, list):
            for item in value:
                walk(item, path)
        elif path not in found:
            found.append(path)

    walk(study, "")
    return found
