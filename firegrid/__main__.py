"""``python -m firegrid``: the same command line as ``firegrid``."""

import sys

from firegrid.cli import main

sys.exit(main())
