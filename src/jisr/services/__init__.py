"""Online procedures [GovStack Registration, Workflow, Digital Registries]: the catalogue of
administrative procedures, e-forms, applications and their workflow, once-only evidence
retrieval through the exchange, simplification statistics.

This building block is planned; see docs/architecture.md for its place in the map.
"""
