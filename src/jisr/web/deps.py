"""FastAPI dependencies shared by every block's routers.

``node_session``, ``node`` and ``request_language`` live in ``jisr.core.http`` (blocks may
not import ``jisr.web``) and are re-exported here.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from jisr.core.http import node, node_session, request_language, session_of
from jisr.core.instance import Instance
from jisr.core.settings import Settings


def get_instance(request: Request) -> Instance:
    instance: Instance = request.app.state.instance
    return instance


def get_settings(request: Request) -> Settings:
    return get_instance(request).settings


InstanceDep = Annotated[Instance, Depends(get_instance)]
SettingsDep = Annotated[Settings, Depends(get_settings)]

__all__: list[Any] = [
    "InstanceDep",
    "SettingsDep",
    "get_instance",
    "get_settings",
    "node",
    "node_session",
    "session_of",
    "request_language",
]
