"""``python -m firegrid``: the same command line as ``firegrid``."""

from firegrid.cli import entry

entry()
