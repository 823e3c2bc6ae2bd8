"""``jisr identity …``: the population register and the OpenID Connect clients."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Digital identity: the population register and OIDC clients.", no_args_is_help=True
)
