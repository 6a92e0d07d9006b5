"""``python -m tradenn`` runs the command line."""

from tradenn.console import run

run()
