"""Verifiable documents [GovStack Identity, Wallet, eSignature]: SD-JWT VC and W3C VC 2.0
issuance, OpenID4VCI / OpenID4VP, QR codes, verification, status lists (revocation) and signed
trust lists of issuers.

This building block is planned; see docs/architecture.md for its place in the map.
"""
