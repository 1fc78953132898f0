#!/usr/bin/env bash
# Sets up everything and runs site.yml against the embedded default inventory (inventories/local:
# the rig's simulated cluster). Extra arguments go to ansible-playbook.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
cd "$REPO"
step() { printf '\n==> [%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

step "set-up (packages, .venv, Kubernetes binaries)"
bash scripts/bootstrap.sh
bash tests/rig/build.sh
step "local simulated cluster"
bash tests/rig/cluster.sh up >/dev/null
step "site.yml on inventories/local"
exec .venv/bin/ansible-playbook -i inventories/local site.yml "$@"
