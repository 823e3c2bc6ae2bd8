"""FastAPI dependencies shared by every block's routers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from jisr.core.instance import Instance, Node
from jisr.core.settings import Settings


def get_instance(request: Request) -> Instance:
    instance: Instance = request.app.state.instance
    return instance


def get_settings(request: Request) -> Settings:
    return get_instance(request).settings


def node_session(node_name: str) -> Callable[..., Iterator[Session]]:
    """A dependency yielding a session of ``node_name``'s database: one transaction per
    request, committed when the handler returns, rolled back when it raises."""

    def dependency(request: Request) -> Iterator[Session]:
        node: Node = request.app.state.nodes[node_name]
        with node.session() as session:
            yield session

    return dependency


InstanceDep = Annotated[Instance, Depends(get_instance)]
SettingsDep = Annotated[Settings, Depends(get_settings)]

__all__: list[Any] = ["InstanceDep", "SettingsDep", "get_instance", "node_session"]
