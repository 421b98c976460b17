"""Readers that turn source files into plain records with provenance."""
