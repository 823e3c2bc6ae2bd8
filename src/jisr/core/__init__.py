"""Shared infrastructure every building block stands on.

Settings, the database (engine, sessions, migrations), cryptography (keystore, JWS, the
instance certificate authority), errors rendered as RFC 9457 problem details, i18n (ar/fr/en),
the hash-chained audit log, the on-disk instance layout, logging and time. Nothing here
imports a building block.
"""
