"""``jisr demo``: build the two-country world, run the narrated scenario, serve it."""

from __future__ import annotations

import threading
from pathlib import Path

import typer
from rich.console import Console

from jisr.core.logging import configure_logging
from jisr.core.settings import LogFormat, Settings
from jisr.demo import scenario


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    directory: Path = typer.Option(
        Path("var/demo"),
        "--dir",
        "-d",
        help="Where the MA and QA instances live (reused if there).",
    ),
    serve: bool = typer.Option(
        True, "--serve/--no-serve", help="Keep serving after the scenario (until Ctrl-C)."
    ),
    port: int = typer.Option(8000, help="Port of MA; QA listens on the next one."),
) -> None:
    """Create the MA and QA instances, run the end-to-end scenario and serve them."""
    console = Console(highlight=False, soft_wrap=True)
    # The narrated trace is the demo's output; the servers log warnings and errors only.
    configure_logging(Settings(log_level="WARNING", log_format=LogFormat.CONSOLE))
    console.print(f"[bold]Jisr demo[/] — world in {directory}")
    world = scenario.run(directory, console=console, port=port if serve else 0)
    console.print(f"\n[bold green]Scenario complete:[/] {world.step_number} steps.")
    if not serve:
        world.close()
        return
    console.print("Serving until Ctrl-C:")
    for code in world.instances:
        console.print(f"  {code}: {world.url(code)}")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        console.print("\nStopping.")
    finally:
        world.close()
