"""Jisr (جسر, "bridge"): a sovereign digital-government platform.

The building blocks live in sub-packages; ``docs/architecture.md`` is the map.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
