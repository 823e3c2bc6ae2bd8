"""The web layer: the ASGI app factory, every block's routers, the portal pages.

Thin by rule: handlers parse input, call a block's service, render the result.
"""

from jisr.web.app import create_app

__all__ = ["create_app"]
