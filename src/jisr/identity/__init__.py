"""Digital identity [GovStack Identity]: the population register (persons, identifiers, national
ID formats), authentication (password + one-time code) and the OpenID Connect provider.

This building block is planned; see docs/architecture.md for its place in the map.
"""
