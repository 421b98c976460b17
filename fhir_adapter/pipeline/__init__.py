"""The pipeline: read -> map -> validate -> store, for `map`, `load` and the gateway's `$ingest`
alike (no click, no Flask).

- `study`, `enrollments`, `adverse_events`: a source file -> validated resources of one FHIR
  version, streamed (what `map` writes);
- `load`: both versions of each file, paired and stored in one transaction per file;
  `bundles`: FHIR Bundles / NDJSON stored as they are;
- `report`: the `Reporter` interface through which a run tells its caller warnings,
  data-quality findings (`fhir_adapter.findings`) and progress; `checks`: findings, or under
  `strict` errors;
- `cohorts`: after a load, each study's cohort Group (`mapping/cohort.py`) in step with its
  stored subjects; `populations`: each ResearchStudy's links to its SUPPDM analysis-population
  Groups (`mapping/population.py`), whichever is loaded first; `compartment`: what a Group or
  Patient `$export` covers.

Submodules are imported by name (nothing here), so the command line's start-up loads only
what a command uses.
"""
