"""`python -m faithcheck`."""

from faithcheck.cli.commands import entry

entry()
