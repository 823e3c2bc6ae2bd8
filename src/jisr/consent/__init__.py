"""Consent [GovStack Consent]: policies, data agreements, consent records with their signed
revision chain, access decisions, the personal-data usage log and data-subject requests.

This building block is planned; see docs/architecture.md for its place in the map.
"""
