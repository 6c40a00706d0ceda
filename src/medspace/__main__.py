"""`python -m medspace`: the `medspace` command."""

from medspace.cli import main

main()
