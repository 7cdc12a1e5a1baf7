"""`python -m lifeguard.cli`: the same as the `lifeguard` command."""

import sys

from lifeguard.cli import main

sys.exit(main())
