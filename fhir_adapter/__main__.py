"""`python -m fhir_adapter` = the `fhir-adapter` command."""

from .cli import main

main()
