"""``python -m tradenn`` runs the command line."""

from tradenn.cli import run

run()
