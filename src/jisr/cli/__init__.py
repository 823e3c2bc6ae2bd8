"""The ``jisr`` command: one Typer app, one sub-command group per block.

Commands open sessions and call services; they never speak HTTP to their own instance.
An error the platform raises on purpose (``JisrError``) is printed as one plain sentence and
the command exits with status 1; usage errors exit with 2.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

import jisr
from jisr.core.errors import JisrError
from jisr.core.i18n import operator_language


def cli_language() -> str:
    """The operator's language from ``JISR_LANGUAGE`` or the locale; English by default."""
    return operator_language()


class JisrGroup(TyperGroup):
    """Turns a ``JisrError`` anywhere below into a plain sentence and exit status 1."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except JisrError as error:
            typer.echo(f"Error: {error.message(cli_language())}", err=True)
            raise typer.Exit(1) from error


app = typer.Typer(
    cls=JisrGroup,
    name="jisr",
    help="Jisr (جسر): a sovereign digital-government platform. "
    "Start with `jisr init --dir DIR`, then `jisr serve --dir DIR`; `jisr demo` shows it all.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"jisr {jisr.__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Jisr (جسر): a sovereign digital-government platform."""


def _register() -> None:
    from jisr.assistant import cli as assistant_cli
    from jisr.cli import core, demo, federation
    from jisr.credentials import cli as credentials_cli
    from jisr.exchange import cli as exchange_cli
    from jisr.identity import cli as identity_cli
    from jisr.services import cli as services_cli
    from jisr.services import registries_cli

    core.register(app)
    app.add_typer(identity_cli.app, name="identity")
    app.add_typer(exchange_cli.app, name="exchange")
    app.add_typer(credentials_cli.app, name="credentials")
    app.add_typer(services_cli.app, name="services")
    app.add_typer(registries_cli.app, name="registries")
    assistant_cli.register(app)
    federation.register(app)
    demo.register(app)


_register()


def main() -> None:
    app(prog_name="jisr")


__all__ = ["app", "main"]

if __name__ == "__main__":  # pragma: no cover
    main()
