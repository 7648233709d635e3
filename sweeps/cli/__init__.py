"""The ``mnist-sweep`` command line."""

from sweeps.cli.main import main

__all__ = ["main"]
