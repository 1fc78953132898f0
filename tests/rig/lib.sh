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

# Fetches one Maven Central artifact (group:artifact:version:packaging[:classifier]) into a
# Maven repository of the rig's own, $RIG_CACHE/m2, so a wiped ~/.m2 does not lose it; checks
# that $2, the path inside that repository, is there. --strict-checksums refuses a download
# that does not match Central's checksum.
maven_get() {
  command -v mvn >/dev/null || die "mvn not found (apt-get install maven)"
  log "downloading $1"
  mvn -B -q --strict-checksums -Dstyle.color=never -Dmaven.repo.local="$RIG_CACHE/m2" \
    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:get \
    -Dartifact="$1" -Dtransitive=false
  [[ -f "$RIG_CACHE/m2/$2" ]] || die "maven did not store $RIG_CACHE/m2/$2"
}
