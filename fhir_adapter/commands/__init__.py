"""One module per CLI command family; `fhir_adapter.cli` registers them."""
