"""Information mediator [GovStack Information Mediator]: members, subsystems, services, access
rights; the central registry and its signed global configuration; the gateway (security
server); the message log; service metadata; pub/sub; federation between instances.

This building block is planned; see docs/architecture.md for its place in the map.
"""
