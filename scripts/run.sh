#!/usr/bin/env bash
# Set up and start Mamori in web mode on http://127.0.0.1:8550 — the Ube sample region, offline.
# Flags pass through: scripts/run.sh --port 8600 --region 072028 --lang en
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh desktop
exec .venv/bin/python main.py "$@"
