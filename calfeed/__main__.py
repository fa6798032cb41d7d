"""`python -m calfeed` runs the CLI."""

import sys

from calfeed.cli import main

sys.exit(main())
