"""`python -m cityos [--port N] [--db URL] [--data-dir DIR] [--region CODE]` — see docs/cityos.md."""
from __future__ import annotations

import sys

from cityos.server import serve
from cityos.settings import parse_args

if __name__ == "__main__":
    sys.exit(serve(parse_args()))
