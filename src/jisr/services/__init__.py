"""Online procedures [GovStack Registration, Workflow, Digital Registries]: the catalogue of
administrative procedures, e-forms, applications and their workflow, once-only evidence
retrieval through the exchange, simplification statistics.

The catalogue (``service``, ``schemas``, ``catalogue/``), ``jisr services`` and the read API
(``api``); once-only evidence (``evidence``); applications, officers' workflow and the
simplification figures (``applications``, ``models``) with the GovStack Registration API
(``registration_api``); see docs/services.md.
"""
