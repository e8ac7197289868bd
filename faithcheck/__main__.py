"""`python -m faithcheck`."""

from faithcheck.cli import entry

entry()
