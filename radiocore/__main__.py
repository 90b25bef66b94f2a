"""`python -m radiocore`: the `radiocore` command."""

import sys

from radiocore.cli import main

raise SystemExit(main(sys.argv[1:]))
