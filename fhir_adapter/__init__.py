"""FHIR R4/R5 interoperability adapter for clinical-trial data."""

__version__ = "0.1.0"
