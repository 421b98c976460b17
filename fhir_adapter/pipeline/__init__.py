"""The pipeline between the store and its users: what a load keeps in step (cohorts.py) and
what a Patient or Group export covers (compartment.py)."""
