#!/usr/bin/env bash
# The rig's container images and the registry they are pulled from. No base image comes from
# any registry: Go programs go into `FROM scratch` images, Debian ones build on a minbase rootfs
# made here with debootstrap. Every image is pushed to an OCI registry (distribution v3) that
# listens on 127.0.0.1 only and is shared by every rig cluster on the machine; pods pull it by
# digest. $RIG_CACHE/images/images.json maps each name to {repository, tag, digest, hash}.
#   images.sh registry        start the registry unless it answers
#   images.sh registry-down   stop it
#   images.sh build [NAME...] the registry and the images named, default all (a warm run
#                             rebuilds and pushes nothing)
#   images.sh list            print images.json
#   images.sh names           print the names of every image, one per line
# CTI_RIG_REGISTRY_PORT moves the registry off 5050.
# shellcheck source=tests/rig/lib.sh
. "$(dirname "$0")/lib.sh"

REGISTRY="127.0.0.1:$RIG_REGISTRY_PORT"
REGISTRY_DIR="$RIG_CACHE/registry"
IMAGES_DIR="$RIG_CACHE/images"
JSON="$IMAGES_DIR/images.json"
SUITE=bookworm
# The Debian base of each suite, tagged with its hash (base_hash) and passed to the
# Containerfiles as BASE.
BASE_REPO=localhost/cti-rig/debian-base
BASE_PACKAGES=(ca-certificates)
# Label holding an image's input hash: what a warm run compares.
LABEL=cti.rig.hash
# Every image, in build order; each is tests/rig/images/<name>.
NAMES=(pause coredns metrics-server kube-network-policies tools mariadb redis misp misp-v2 traefik klipper-helm
  misp-modules)
# The MISP stand-in needs trixie's PHP 8.4 (misp-docker's core image runs php-fpm8.4).
declare -A SUITE_OF=([misp]=trixie [misp-v2]=trixie)
# Folders copied into an image's build context beside its own (the PHP double of MISP).
# misp-modules: the wheels of the real service (tests/rig/misp-modules.sh makes them first).
declare -A EXTRA=([misp]="$RIG_DIR/../doubles/misp_php" [misp-v2]="$RIG_DIR/../doubles/misp_php"
  [misp-modules]="$RIG_CACHE/misp-modules/wheels-$MISP_MODULES_VERSION")
declare -A PREPARE=([misp-modules]="$RIG_DIR/misp-modules.sh")
# Variants: the same folder and repository as another image, built with VARIANT=<tag>, which
# changes only a label, so a second digest costs no package download (blue/green upgrades).
declare -A VARIANT_OF=([misp-v2]=misp)
# Images of a static Go program that build.sh makes (the build.sh target is the image name);
# the others build on the Debian base.
declare -A BINARY=(
  [coredns]="$RIG_BIN/coredns-$COREDNS_VERSION/coredns"
  [metrics-server]="$RIG_BIN/metrics-server-$METRICS_SERVER_VERSION/metrics-server"
  [kube-network-policies]="$RIG_BIN/kube-network-policies-$KNP_VERSION/kube-network-policies"
  [traefik]="$RIG_BIN/traefik-$TRAEFIK_VERSION/traefik"
  [klipper-helm]="$RIG_BIN/helm-$HELM_VERSION"
)
# Images of such a binary that also need the Debian base (a shell), with their build.sh target.
declare -A BINARY_ON_BASE=([klipper-helm]=helm)
declare -A TAG=(
  [pause]="$SUITE" [coredns]="$COREDNS_VERSION" [metrics-server]="$METRICS_SERVER_VERSION"
  [kube-network-policies]="$KNP_VERSION" [tools]="$SUITE" [mariadb]="$SUITE" [redis]="$SUITE"
  [misp]=v1 [misp-v2]=v2 [traefik]="v$TRAEFIK_VERSION" [klipper-helm]="$HELM_VERSION"
  [misp-modules]="$MISP_MODULES_VERSION"
)

# --- registry ------------------------------------------------------------------------------

registry_up() { curl -fs -o /dev/null --max-time 2 "http://$REGISTRY/v2/"; }

# The pid in the pid file when it is still this cache's registry (not a reused pid).
registry_pid() { pid_from "$REGISTRY_DIR/registry.pid" "serve $REGISTRY_DIR/config.yml"; }

registry() {
  if registry_up; then log "registry: answering on $REGISTRY"; return 0; fi
  local bin="$RIG_BIN/registry-$REGISTRY_VERSION/registry" pid
  [[ -x $bin ]] || bash "$RIG_DIR/build.sh" registry
  mkdir -p "$REGISTRY_DIR/data"
  cat >"$REGISTRY_DIR/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog: {disabled: true}
storage:
  filesystem: {rootdirectory: $REGISTRY_DIR/data}
  delete: {enabled: true}
http:
  addr: $REGISTRY
EOF
  log "registry: starting on $REGISTRY (log $REGISTRY_DIR/registry.log)"
  spawn "$REGISTRY_DIR/registry.log" "$bin" serve "$REGISTRY_DIR/config.yml"
  pid=$SPAWNED_PID
  echo "$pid" >"$REGISTRY_DIR/registry.pid"
  for _ in {1..40}; do
    registry_up && { log "registry: up (pid $pid)"; return 0; }
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  tail -n 5 "$REGISTRY_DIR/registry.log" >&2
  die "the registry did not answer on $REGISTRY; see $REGISTRY_DIR/registry.log"
}

registry_down() {
  local pid
  if ! pid="$(registry_pid)"; then
    rm -f "$REGISTRY_DIR/registry.pid"
    log "registry: not running from $REGISTRY_DIR"
    return 0
  fi
  kill "$pid"
  for _ in {1..40}; do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  # Once ours is gone its pid may be another process's: SIGKILL only what is still the registry.
  if registry_pid >/dev/null; then kill -9 "$pid"; fi
  rm -f "$REGISTRY_DIR/registry.pid"
  log "registry: stopped (pid $pid)"
}

# --- the Debian base -----------------------------------------------------------------------

base_rootfs() {
  local root="$1" mirror="$2"
  debootstrap --variant=minbase --include="$(IFS=,; echo "${BASE_PACKAGES[*]}")" "$SUITE" "$root" "$mirror"
  # The packages the images add leave out documentation, manuals and translations (a third of
  # their size); copyright files stay.
  printf '%s\n' 'path-exclude=/usr/share/doc/*' 'path-include=/usr/share/doc/*/copyright' \
    'path-exclude=/usr/share/man/*' 'path-exclude=/usr/share/info/*' \
    'path-exclude=/usr/share/locale/*' >"$root/etc/dpkg/dpkg.cfg.d/rig-nodoc"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
}

# Cache key of the base of suite $1: what goes into it, not the rest of this script.
base_hash() {
  { echo "$1"; printf '%s\n' "${BASE_PACKAGES[@]}"; declare -f base_rootfs; } | sha256sum | cut -c1-16
}

# Unmounts what a failed debootstrap may have left mounted inside DIR, then deletes DIR.
remove_tree() {
  local m
  awk -v d="$1/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf "$1"
}

# $BASE_REPO:<suite>-<base_hash> for suite $1, imported from a rootfs tarball cached under the
# same key; prints that reference.
base() {
  local suite="$1" hash ref tarball mirror tmp start=$SECONDS
  hash="$(base_hash "$suite")"
  ref="$BASE_REPO:$suite-$hash"
  if podman image exists "$ref"; then echo "$ref"; return 0; fi
  tarball="$IMAGES_DIR/base-$suite-$hash.tar"
  if [[ ! -s $tarball ]]; then
    # Sources may list only the host's suite; its mirror serves every suite.
    mirror="$(debian_mirror "$suite" 2>/dev/null || debian_mirror "$SUITE")"
    log "base: debootstrap $suite minbase from $mirror"
    tmp="$(mktemp -d "$IMAGES_DIR/base.XXXXXX")"
    # shellcheck disable=SC2064 # expand now: the trap removes this build's tree
    trap "remove_tree '$tmp'" EXIT
    SUITE="$suite" base_rootfs "$tmp/root" "$mirror" >"$tmp/debootstrap.log" 2>&1 ||
      { tail -n 20 "$tmp/debootstrap.log" >&2; die "debootstrap failed"; }
    tar -C "$tmp/root" -c . >"$tmp/rootfs.tar"
    mv "$tmp/rootfs.tar" "$tarball"
    remove_tree "$tmp"
    trap - EXIT
    # Older tarballs are never used again.
    find "$IMAGES_DIR" -maxdepth 1 -name "base-$suite-*.tar" ! -name "${tarball##*/}" -delete
  fi
  podman import --quiet --change "LABEL $LABEL=$hash" "$tarball" "$ref" >/dev/null
  # Bases of this suite with other hashes are never built on again (images made from them keep
  # their layers).
  podman images --format '{{.Repository}}:{{.Tag}}' --filter "reference=$BASE_REPO" |
    grep -F "$BASE_REPO:$suite-" | grep -vxF "$ref" |
    xargs -r podman untag >/dev/null 2>&1 || true
  log "base: $ref imported in $((SECONDS - start))s"
  echo "$ref"
}

# --- images --------------------------------------------------------------------------------

label_of() { podman image inspect --format "{{index .Labels \"$LABEL\"}}" "$1" 2>/dev/null || true; }

# The image NAME is a variant of (itself when none): its folder and repository.
folder() { echo "${VARIANT_OF[$1]:-$1}"; }

# What an image is made of: its folders (names, modes, contents), its variant, and its binary
# or the base.
image_hash() {
  local name="$1" bin="${BINARY[$1]:-}" dir
  (
    for dir in "$RIG_DIR/images/$(folder "$name")" ${EXTRA[$name]:+"${EXTRA[$name]}"}; do
      cd "$dir" || exit
      find . -type f -printf '%m %p\n' | LC_ALL=C sort
      find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    done
    [[ ! -v "VARIANT_OF[$name]" ]] || echo "variant ${TAG[$name]}"
    [[ -z $bin ]] || sha256sum <"$bin"
    if [[ -z $bin || -v "BINARY_ON_BASE[$name]" ]]; then echo "base $(base_hash "${SUITE_OF[$name]:-$SUITE}")"; fi
  ) | sha256sum | cut -c1-16
}

# The digest images.json records for NAME built from HASH and pushed to this registry.
recorded() {
  [[ -s $JSON ]] && jq -er --arg n "$1" --arg h "$2" --arg r "$REGISTRY/cti-rig/$(folder "$1")" \
    '.[$n] | select(.hash == $h and .repository == $r) | .digest' "$JSON" 2>/dev/null
}

in_registry() {
  curl -fs -o /dev/null -I --max-time 5 -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REGISTRY/v2/cti-rig/$1/manifests/$2"
}

record() {
  local tmp="$JSON.$$"
  { if [[ -s $JSON ]]; then cat "$JSON"; else echo '{}'; fi; } |
    jq --arg n "$1" --arg r "$REGISTRY/cti-rig/$(folder "$1")" --arg t "${TAG[$1]}" --arg d "$2" --arg h "$3" \
      '.[$n] = {repository: $r, tag: $t, digest: $d, hash: $h}' >"$tmp"
  mv "$tmp" "$JSON"
}

# Builds NAME unless podman holds it for its current hash, pushes it unless the registry holds
# it, and records its digest. Build and push output goes to $IMAGES_DIR/logs/NAME.log.
build_image() {
  local name="$1" bin="${BINARY[$1]:-}" base_ref="" hash ref digest old ctx what start
  local logf="$IMAGES_DIR/logs/$name.log" repo
  repo="$(folder "$name")"
  if [[ -n $bin ]]; then
    [[ -x $bin ]] || bash "$RIG_DIR/build.sh" "${BINARY_ON_BASE[$name]:-$name}"
  fi
  if [[ -z $bin || -v "BINARY_ON_BASE[$name]" ]]; then
    base_ref="$(base "${SUITE_OF[$name]:-$SUITE}")"
  fi
  [[ ! -v "PREPARE[$name]" ]] || bash "${PREPARE[$name]}" >/dev/null
  start=$SECONDS
  hash="$(image_hash "$name")"
  ref="localhost/cti-rig/$repo:${TAG[$name]}"
  if digest="$(recorded "$name" "$hash")" && in_registry "$repo" "$digest"; then
    log "image $name: cached ($digest)"
    return 0
  fi
  : >"$logf"
  if [[ "$(label_of "$ref")" == "$hash" ]]; then
    what="pushed (built before, missing from the registry)"
  else
    old="$(podman image inspect --format '{{.Id}}' "$ref" 2>/dev/null || true)"
    ctx="$(mktemp -d "$IMAGES_DIR/ctx.XXXXXX")"
    # shellcheck disable=SC2064 # expand now: the trap removes this build's context
    trap "rm -rf '$ctx'" EXIT
    cp -a "$RIG_DIR/images/$repo/." "$ctx/"
    [[ ! -v "EXTRA[$name]" ]] || cp -a "${EXTRA[$name]}" "$ctx/"
    # -p: the layer keeps the binary's time, so one binary always gives one digest.
    [[ -z $bin ]] || cp -p "$bin" "$ctx/"
    # --pull=never: the only base an image may name is the one imported here.
    podman build --pull=never --network host --build-arg "BASE=$base_ref" --label "$LABEL=$hash" \
      ${VARIANT_OF[$name]:+--build-arg "VARIANT=${TAG[$name]}"} \
      -t "$ref" "$ctx" >>"$logf" 2>&1 ||
      { tail -n 20 "$logf" >&2; die "image $name: build failed; see $logf"; }
    rm -rf "$ctx"
    trap - EXIT
    # The previous build of this name, now untagged, is never used again.
    if [[ -n $old && $old != "$(podman image inspect --format '{{.Id}}' "$ref")" ]]; then
      podman rmi "$old" >>"$logf" 2>&1 || true
    fi
    what="built and pushed"
  fi
  podman push --tls-verify=false --digestfile "$logf.digest" "$ref" \
    "docker://$REGISTRY/cti-rig/$repo:${TAG[$name]}" >>"$logf" 2>&1 ||
    { tail -n 20 "$logf" >&2; die "image $name: push to $REGISTRY failed; see $logf"; }
  digest="$(cat "$logf.digest")"
  rm -f "$logf.digest"
  record "$name" "$digest" "$hash"
  log "image $name: $what in $((SECONDS - start))s ($digest)"
}

# Builds the images named (default: all of them).
build() {
  local name names=("$@") start=$SECONDS
  ((${#names[@]})) || names=("${NAMES[@]}")
  for name in "${names[@]}"; do
    [[ -v "TAG[$name]" ]] || die "no image named '$name'; the images are: ${NAMES[*]}"
  done
  mkdir -p "$IMAGES_DIR/logs"
  with_lock registry registry
  for name in "${names[@]}"; do with_lock images build_image "$name"; done
  log "images ready in $((SECONDS - start))s: $JSON"
}

case "${1:-}" in
  registry) with_lock registry registry ;;
  registry-down) with_lock registry registry_down ;;
  build) build "${@:2}" ;;
  list) [[ -s $JSON ]] || die "$JSON missing: run $0 build"; cat "$JSON" ;;
  names) printf '%s\n' "${NAMES[@]}" ;;
  *) die "usage: $0 registry|registry-down|build [NAME...]|list|names" ;;
esac
