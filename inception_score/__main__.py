"""``python -m inception_score`` runs the command line."""

from .cli import main

main()
