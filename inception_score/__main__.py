"""``python -m inception_score`` runs the command line."""

from .cli.main import main

main()
