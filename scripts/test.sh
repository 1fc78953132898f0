#!/usr/bin/env bash
# Sets up everything and runs every check: ruff, ansible-lint, ansible-test sanity, then unit,
# integration and molecule tests in one pytest run (its summary is the last line).
# Extra arguments go to pytest (e.g. -k longhorn).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
cd "$REPO"
step() { printf '\n==> [%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
start=$SECONDS

step "set-up (packages, .venv, rig)"
bash scripts/bootstrap.sh --test
export PATH="$REPO/.venv/bin:$PATH"

step "ruff"
ruff check .
ruff format --check .

step "ansible-lint (production profile)"
ansible-lint

step "ansible-test sanity"
bash scripts/sanity.sh

step "pytest: unit, integration, molecule"
# The cluster is shared by the whole session; the fixture stops it at the end if it started it.
pytest -p no:cacheprovider "$@"
step "all checks passed in $((SECONDS - start))s"
