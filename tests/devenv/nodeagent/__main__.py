"""python -m devenv.nodeagent: runs one node agent (see agent.py for its arguments)."""

import sys

from devenv.nodeagent.agent import main

if __name__ == "__main__":
    sys.exit(main())
