"""`python -m board_agent`: the board agent's command line."""

import sys

from .cli import main

raise SystemExit(main(sys.argv[1:]))
