#!/usr/bin/env bash
# Create .venv and install Mamori with the given extras, e.g. `scripts/setup.sh test`
# (extras: desktop = run it on a computer, platform = the cityos server, test = all of it + tools).
# QR reading needs the zbar library (Debian: libzbar0); as root this installs it.
# Idempotent: re-running only installs what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
  "$PYTHON" -m venv .venv
fi
if ! ldconfig -p 2>/dev/null | grep -q 'libzbar\.so\.0'; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    echo "setup.sh: installing libzbar0 (QR reading)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libzbar0 >/dev/null \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libzbar0 >/dev/null; }
  else
    echo "setup.sh: QR reading needs libzbar0 (sudo apt-get install libzbar0)" >&2
  fi
fi
extras="${1:-}"
.venv/bin/python -m pip install --quiet --upgrade pip >/dev/null
.venv/bin/python -m pip install --quiet -e ".${extras:+[$extras]}"
# Compile the checkout's bytecode once, as pip does for installed packages: where
# PYTHONDONTWRITEBYTECODE is set (this project's CI machines) every start would otherwise
# compile all of it again, about 0.3 s of each app start.
.venv/bin/python -m compileall -q main.py webserver.py app views offline geo protocol cityos bench >/dev/null
