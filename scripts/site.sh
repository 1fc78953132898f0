#!/usr/bin/env bash
# Sets up everything and runs site.yml against the embedded default inventory (inventories/local:
# the rig's simulated cluster, with an OpenBao dev server as Vault). Safe to run again: the
# cluster and OpenBao keep running between runs, so secrets keep their values. Extra arguments
# go to ansible-playbook; `scripts/site.sh down` stops the OpenBao server and the cluster.
# CTI_RIG_STATE and CTI_RIG_CLUSTER choose another state directory and cluster (tests/rig/lib.sh).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
cd "$REPO"
step() { printf '\n==> [%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
STATE="${CTI_RIG_STATE:-$HOME/.cache/cti-misp-rig/state}/site"

if [[ "${1:-}" == down ]]; then
  step "stopping OpenBao and the local simulated cluster"
  .venv/bin/python -m tests.rig.peers.openbao stop --state-dir "$STATE/openbao"
  exec bash tests/rig/cluster.sh down
fi

step "set-up (packages, .venv, the local cluster's binaries and images)"
bash scripts/bootstrap.sh --rig
export PATH="$REPO/.venv/bin:$PATH"

step "local simulated cluster"
bash tests/rig/cluster.sh up >/dev/null
bash tests/rig/cluster.sh kubectl apply -f tests/rig/static-volumes.yaml >/dev/null

step "OpenBao dev server (Vault API) on loopback"
bao_env="$(python -m tests.rig.peers.openbao env --state-dir "$STATE/openbao" 2>/dev/null)" \
  && curl -fsS "$(jq -r .VAULT_ADDR <<<"$bao_env")/v1/sys/health" >/dev/null 2>&1 \
  || bao_env="$(python -m tests.rig.peers.openbao start --state-dir "$STATE/openbao")"
VAULT_ADDR="$(jq -r .VAULT_ADDR <<<"$bao_env")"
VAULT_TOKEN="$(jq -r .VAULT_TOKEN <<<"$bao_env")"
export VAULT_ADDR VAULT_TOKEN

step "site.yml on inventories/local"
# Keycloak is optional here (set KEYCLOAK_URL and admin credentials to include it); MISP's runtime
# settings need a running MISP, which kwok nodes do not run.
exec ansible-playbook -i inventories/local site.yml --skip-tags misp_config "$@"
