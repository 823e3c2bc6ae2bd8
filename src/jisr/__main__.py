"""``python -m jisr`` runs the ``jisr`` command."""

from jisr.cli import main

main()
