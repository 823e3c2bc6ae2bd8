"""Verifiable documents: SD-JWT VC issuance and verification, Token Status Lists.

Modules: ``doctypes`` (document types as data, Type Metadata), ``sdjwt`` (RFC 9901:
disclosures, presentations, key binding), ``verify`` (the one verifier, every check with its
reason), ``status_list`` (IETF Token Status List, the verifier's TTL cache), ``service``
(issuing, revoking, publishing on the portal node), ``api`` and ``cli``. See
``docs/credentials.md``.
"""
