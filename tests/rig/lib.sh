# shellcheck shell=bash
# Shared settings for the rig scripts: versions, cache layout, logging.
set -euo pipefail
RIG_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/rig/versions.env
. "$RIG_DIR/versions.env"
# Builds and downloads live outside the work tree so a fresh clone reuses them.
RIG_CACHE="${CTI_RIG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cti-misp-rig}"
# Runtime state (pids, logs, kubeconfig) of the running rig.
RIG_STATE="${CTI_RIG_STATE:-$RIG_CACHE/state}"
RIG_BIN="$RIG_CACHE/bin"
mkdir -p "$RIG_CACHE" "$RIG_STATE" "$RIG_BIN"

log() { printf '[rig %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
