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
# The tests get a cluster of their own, apart from the one scripts/site.sh converges (Longhorn,
# for one, is cluster-wide); the session fixture starts it and stops it at the end.
export CTI_RIG_STATE="${CTI_RIG_STATE:-${CTI_RIG_CACHE:-$HOME/.cache/cti-misp-rig}/state-test}"
export CTI_RIG_CLUSTER="${CTI_RIG_CLUSTER:-cti-misp-test}"
# Two workers, one group of tests at a time each, in the order tests/conftest.py gives.
pytest -p no:cacheprovider -n "${CTI_TEST_WORKERS:-2}" --dist loadgroup --no-loadscope-reorder "$@"
step "all checks passed in $((SECONDS - start))s"
