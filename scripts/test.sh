#!/usr/bin/env bash
# Set up everything the tests need on a fresh Debian machine, then run the whole suite:
#   system packages (Chromium for the browser tests, PostgreSQL for the platform tests),
#   .venv with the test extras, a throwaway PostgreSQL cluster, the static gates (scripts/gates.sh:
#   import contracts, ruff, mypy) and pytest.
# Extra arguments go to pytest: scripts/test.sh -k shelters
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
[[ -x /usr/bin/chromium ]] || need+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v npm >/dev/null 2>&1 || need+=(npm)
if (( ${#need[@]} )); then
  if [[ "$(id -u)" != 0 ]]; then
    echo "test.sh: please install: ${need[*]} (sudo apt-get install ${need[*]})" >&2
    exit 1
  fi
  echo "test.sh: installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

scripts/setup.sh test
scripts/gates.sh

if [[ -z "${MAMORI_TEST_PG_URL:-}" ]]; then
  MAMORI_TEST_PG_URL="$(scripts/pg-test-setup.sh)"
  export MAMORI_TEST_PG_URL
fi

exec .venv/bin/python -m pytest "$@"
