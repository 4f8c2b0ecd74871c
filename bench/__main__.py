"""Run one benchmark: ``python -m bench <name> [args...]``.

Imports ``bench.<name>`` and calls its ``main``: with the remaining arguments when it takes a
parameter, else with no arguments (``sys.argv`` then holds them, for argparse).
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
from pathlib import Path


def _names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if not m.name.startswith("_"))


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in _names():
        print(f"usage: python -m bench <name> [args...]; names: {', '.join(_names())}", file=sys.stderr)
        return 2
    name, args = argv[0], argv[1:]
    entry = importlib.import_module(f"bench.{name}").main
    sys.argv = [f"python -m bench {name}", *args]
    return int((entry(args) if inspect.signature(entry).parameters else entry()) or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
