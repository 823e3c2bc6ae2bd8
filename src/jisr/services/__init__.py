"""Online procedures [GovStack Registration, Workflow, Digital Registries]: the catalogue of
administrative procedures, e-forms, applications and their workflow, once-only evidence
retrieval through the exchange, simplification statistics.

First slice: the catalogue (``service``, ``schemas``, ``catalogue/``), ``jisr services`` and
the read API (``api``); see docs/services.md. Applications and evidence retrieval are planned.
"""
