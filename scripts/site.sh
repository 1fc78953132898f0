#!/usr/bin/env bash
# Sets up everything and runs site.yml against the embedded default inventory (inventories/local:
# the rig's simulated cluster and its real node, with an OpenBao dev server as Vault), then the
# healthcheck, which fails naming any unhealthy part. Safe to run again: the
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

step "OpenBao dev server (Vault API) on loopback"
fresh_vault=false
if ! bao_env="$(python -m tests.rig.peers.openbao env --state-dir "$STATE/openbao" 2>/dev/null)" \
  || ! curl -fsS "$(jq -r .VAULT_ADDR <<<"$bao_env")/v1/sys/health" >/dev/null 2>&1; then
  bao_env="$(python -m tests.rig.peers.openbao start --state-dir "$STATE/openbao")"
  fresh_vault=true
fi
VAULT_ADDR="$(jq -r .VAULT_ADDR <<<"$bao_env")"
VAULT_TOKEN="$(jq -r .VAULT_TOKEN <<<"$bao_env")"
export VAULT_ADDR VAULT_TOKEN

# The static volumes are host directories of the real node, where the MISP pods run: under this
# set-up's state directory (kept between runs, as the cluster is) and owned by the user each image
# runs as (MariaDB and Redis 999, MISP and the backup Job www-data 33), as a provisioner makes them.
volumes="$STATE/volumes"
# The dev server keeps its secrets in memory: a new one (after a reboot, say) generates new
# passwords, which the data of the previous volumes would refuse.
if [[ "$fresh_vault" == true ]]; then rm -rf "$volumes"; fi
install -d -o 999 -g 999 "$volumes/misp-db" "$volumes/misp-redis"
install -d -o 33 -g 33 "$volumes/misp-files" "$volumes/misp-backup"
sed "s|/tmp/cti-misp-local/|$volumes/|" tests/rig/static-volumes.yaml \
  | bash tests/rig/cluster.sh kubectl apply -f - >/dev/null

step "site.yml on inventories/local"
# Keycloak is optional here (set KEYCLOAK_URL and admin credentials to include it). The MISP layer
# runs on the real node, misp_config included (through the API server's port-forward).
ansible-playbook -i inventories/local site.yml "$@"

step "healthcheck (playbooks/healthcheck.yml)"
# Its report goes to stderr, so that stdout stays site.yml's output (and its PLAY RECAP).
exec ansible-playbook -i inventories/local playbooks/healthcheck.yml "$@" >&2
