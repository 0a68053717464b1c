"""`python -m flowservice` runs the CLI."""

from flowservice.cli.app import main

main()
