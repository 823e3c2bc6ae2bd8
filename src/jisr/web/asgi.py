"""Entry point for ASGI servers running several worker processes::

    JISR_INSTANCE_DIR=/srv/jisr/MA JISR_ROLES=idp,portal uvicorn --factory jisr.web.asgi:app_factory

(``jisr serve --workers N`` does exactly this.)
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from jisr.core.instance import Instance
from jisr.web.app import create_app


def app_factory() -> FastAPI:
    directory = os.environ.get("JISR_INSTANCE_DIR", "var/instance")
    roles = [r for r in os.environ.get("JISR_ROLES", "").split(",") if r] or None
    return create_app(Instance.open(directory), roles=roles)
