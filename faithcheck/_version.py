"""The package version (its own module, so that nothing imports the package to read it)."""

__version__ = "0.1.0"
