"""Information mediator [GovStack Information Mediator]: members, subsystems, services, access
rights; the central registry and its signed global configuration; the gateway (security
server); the message log; later service metadata, pub/sub and federation between instances.

Modules: ``identifiers`` (X-Road identifiers), ``models``, ``service`` (the registry's
administration), ``globalconf`` (the signed global configuration), ``provisioning`` (creating a
gateway node), ``envelope`` (signed gateway messages), ``gateway`` (a gateway's runtime),
``client_proxy`` and ``server_proxy`` (its two listeners), ``proxy`` (what they share),
``server`` (running them), ``api`` (the registry's HTTP API), ``cli``.
Concepts and integration: ``docs/exchange.md``.
"""
