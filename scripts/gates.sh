#!/usr/bin/env bash
# Static gates, run by scripts/test.sh before the tests (so CI runs them): the layering contracts
# of pyproject.toml [tool.importlinter], ruff's rule set and mypy on the non-UI packages, each at
# zero findings. Needs the test extra (scripts/setup.sh test).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/lint-imports --no-cache
.venv/bin/ruff check --no-cache .
.venv/bin/mypy --no-incremental
