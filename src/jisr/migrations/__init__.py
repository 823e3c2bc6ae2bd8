"""Alembic migrations for every node database (one chain; every block's tables)."""
