"""Talking to other servers over HTTP: push stored resources to another FHIR server
(push.py, with SMART Backend Services or bearer auth: auth.py) and pull study records from
the ClinicalTrials.gov API v2 (ctgov.py). Every call goes through one retrying session
(http.py)."""
