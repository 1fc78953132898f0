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
# The image registry (images.sh): one for every rig cluster on the machine, on loopback.
# shellcheck disable=SC2034  # used by the scripts that source this file
RIG_REGISTRY_PORT="${CTI_RIG_REGISTRY_PORT:-5050}"
mkdir -p "$RIG_CACHE" "$RIG_STATE" "$RIG_BIN"

log() { printf '[rig %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Prints the pid in pid file $1 while that process's command line holds $2. A killed run (or a
# reboot) leaves pid files whose pids may since belong to other processes, which must be neither
# taken for ours nor stopped.
pid_from() {
  local pid
  pid="$(cat "$1" 2>/dev/null)" && [[ -n $pid ]] || return 1
  tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$2" && echo "$pid"
}

# Runs a command holding the cache lock NAME ($RIG_CACHE/locks/NAME, flock), so two set-ups at
# once (the main job's and the tests') never build or fetch the same thing together; the second
# waits and says for whom. The holder's pid is kept in the lock file for that message. Locks are
# per component, so independent builds still run side by side.
with_lock() {
  local name="$1" file fd holder; shift
  file="$RIG_CACHE/locks/$name"
  mkdir -p "$RIG_CACHE/locks"
  # Opened for appending: truncating would erase the holder's pid before a waiter reads it.
  exec {fd}>>"$file"
  if ! flock -n "$fd"; then
    # Empty only in the moment between the holder's flock and its writing the pid.
    holder="$(cat "$file")"
    log "waiting for lock $name (held by pid ${holder:-unknown})"
    flock "$fd"
  fi
  echo "$$" >"$file"
  "$@"
  exec {fd}>&-
}

# Makes DEST (a file or a directory) unless it exists: under the cache lock named after it,
# checks again (the other set-up may have made it meanwhile), runs CMD... with BUILD_OUT set to
# a temporary path beside DEST, and renames that path to DEST, so DEST is never seen half made.
# Leftovers of an interrupted run are removed first.
build_once() {
  local dest="$1"; shift
  if [[ -e $dest ]]; then log "${dest##*/}: cached"; return; fi
  with_lock "${dest##*/}" _build_once "$dest" "$@"
}

_build_once() {
  local dest="$1" dir="${1%/*}" base="${1##*/}" start=$SECONDS; shift
  if [[ -e $dest ]]; then log "$base: cached (made by another set-up)"; return; fi
  log "$base: building"
  mkdir -p "$dir"
  rm -rf "$dir/.$base.tmp."*
  BUILD_OUT="$dir/.$base.tmp.$$" "$@"
  [[ -e "$dir/.$base.tmp.$$" ]] || die "$base: $1 made nothing"
  mv -T "$dir/.$base.tmp.$$" "$dest"
  log "$base: ready in $((SECONDS - start))s"
}

# Starts a long-running process detached from this shell (its own session, output appended to
# LOG) without the descriptors of any cache lock held here, which it would otherwise keep
# locked for as long as it runs. Its pid is left in SPAWNED_PID.
spawn() {
  local log="$1"; shift
  (
    for fd in /proc/"$BASHPID"/fd/*; do
      fd="${fd##*/}"; ((fd > 2)) && eval "exec $fd>&-"
    done
    exec setsid "$@" >>"$log" 2>&1 </dev/null
  ) &
  # shellcheck disable=SC2034  # read by the caller
  SPAWNED_PID=$!
}

# First Debian mirror of suite $1 in this machine's apt sources (deb822 or one-line format);
# CTI_RIG_DEBIAN_MIRROR overrides it.
debian_mirror() {
  local suite="$1" files=() f
  [[ -z ${CTI_RIG_DEBIAN_MIRROR:-} ]] || { echo "$CTI_RIG_DEBIAN_MIRROR"; return; }
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] && files+=("$f")
  done
  ((${#files[@]})) || die "no apt sources found; set CTI_RIG_DEBIAN_MIRROR"
  awk -v suite="$suite" '
    FILENAME ~ /\.sources$/ { next }
    $1 == "deb" { sub(/\[[^]]*\]/, ""); if ($3 == suite) { print $2; exit } }
  ' "${files[@]}" | grep . || awk -v suite="$suite" 'BEGIN { RS = "" } FILENAME ~ /\.sources$/ {
      deb = 0; ok = 0; uri = ""
      n = split($0, line, "\n")
      for (i = 1; i <= n; i++) {
        k = split(line[i], w, /[ \t]+/)
        if (w[1] == "Types:") for (j = 2; j <= k; j++) if (w[j] == "deb") deb = 1
        if (w[1] == "Suites:") for (j = 2; j <= k; j++) if (w[j] == suite) ok = 1
        if (w[1] == "URIs:") uri = w[2]
      }
      if (deb && ok && uri != "") { print uri; exit }
    }' "${files[@]}" | grep . || die "no $suite mirror in apt sources; set CTI_RIG_DEBIAN_MIRROR"
}

# Fetches one Maven Central artifact (group:artifact:version:packaging[:classifier]) into a
# Maven repository of the rig's own, $RIG_CACHE/m2, so a wiped ~/.m2 does not lose it; checks
# that $2, the path inside that repository, is there. --strict-checksums refuses a download
# that does not match Central's checksum.
maven_get() {
  command -v mvn >/dev/null || die "mvn not found (apt-get install maven)"
  log "downloading $1"
  # Maven 3.8 does not lock its local repository against a second mvn writing the same files.
  with_lock m2 mvn -B -q --strict-checksums -Dstyle.color=never -Dmaven.repo.local="$RIG_CACHE/m2" \
    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:get \
    -Dartifact="$1" -Dtransitive=false
  [[ -f "$RIG_CACHE/m2/$2" ]] || die "maven did not store $RIG_CACHE/m2/$2"
}
