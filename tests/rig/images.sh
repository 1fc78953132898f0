#!/usr/bin/env bash
# The rig's container images and the registry they are pulled from. No base image comes from
# any registry: Go programs go into `FROM scratch` images, Debian ones build on a minbase rootfs
# made here with debootstrap. Every image is pushed to an OCI registry (distribution v3) that
# listens on 127.0.0.1 only and is shared by every rig cluster on the machine; pods pull it by
# digest. $RIG_CACHE/images/images.json maps each name to {repository, tag, digest, hash}.
#   images.sh registry        start the registry unless it answers
#   images.sh registry-down   stop it
#   images.sh build           the registry and every image (a warm run rebuilds nothing)
#   images.sh list            print images.json
# shellcheck source=tests/rig/lib.sh
. "$(dirname "$0")/lib.sh"

REGISTRY="127.0.0.1:$RIG_REGISTRY_PORT"
REG_DIR="$RIG_CACHE/registry"
JSON="$RIG_CACHE/images/images.json"
BASE=localhost/cti-rig/debian-base:bookworm
SUITE=bookworm
# Images and what each copies into its build context: a binary built by build.sh, or nothing.
declare -A CONTEXT=(
  [pause]=/usr/bin/catatonit
  [coredns]="$RIG_BIN/coredns-$COREDNS_VERSION/coredns"
  [metrics-server]="$RIG_BIN/metrics-server-$METRICS_SERVER_VERSION/metrics-server"
  [kube-network-policies]="$RIG_BIN/kube-network-policies-$KNP_VERSION/kube-network-policies"
  [tools]=""
  [mariadb]=""
  [redis]=""
)
declare -A TAG=(
  [pause]=catatonit [coredns]="$COREDNS_VERSION" [metrics-server]="$METRICS_SERVER_VERSION"
  [kube-network-policies]="$KNP_VERSION" [tools]="$SUITE" [mariadb]="$SUITE" [redis]="$SUITE"
)

registry_up() { curl -fs -o /dev/null "http://$REGISTRY/v2/"; }

registry() {
  registry_up && return 0
  local bin="$RIG_BIN/registry-$REGISTRY_VERSION/registry"
  [[ -x $bin ]] || bash "$RIG_DIR/build.sh" registry
  mkdir -p "$REG_DIR/data"
  cat >"$REG_DIR/config.yml" <<EOF
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $REG_DIR/data}
  delete: {enabled: true}
http:
  addr: $REGISTRY
EOF
  log "starting the image registry on $REGISTRY"
  spawn "$REG_DIR/registry.log" "$bin" serve "$REG_DIR/config.yml"
  echo "$SPAWNED_PID" >"$REG_DIR/registry.pid"
  for _ in $(seq 1 30); do registry_up && return 0; sleep 0.5; done
  die "the registry did not answer on $REGISTRY; see $REG_DIR/registry.log"
}

registry_down() {
  if [[ -s $REG_DIR/registry.pid ]]; then kill "$(cat "$REG_DIR/registry.pid")" 2>/dev/null || true; fi
  rm -f "$REG_DIR/registry.pid"
  log "registry stopped"
}

# The Debian base: minbase rootfs with apt sources, imported once per package list.
base() {
  local hash tarball mirror tmp
  hash="$(printf '%s\n' "$SUITE" minbase ca-certificates | sha256sum | cut -c1-16)"
  [[ "$(podman image inspect --format '{{index .Labels "cti.rig.hash"}}' "$BASE" 2>/dev/null)" == "$hash" ]] && return 0
  tarball="$RIG_CACHE/images/base-$SUITE-$hash.tar"
  if [[ ! -s $tarball ]]; then
    mirror="$(debian_mirror "$SUITE")"
    log "debootstrap $SUITE minbase for the images from $mirror"
    tmp="$(mktemp -d "$RIG_CACHE/images/base.XXXXXX")"
    debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$tmp/root" "$mirror" >"$tmp/log" 2>&1 \
      || { tail -n 20 "$tmp/log" >&2; rm -rf "$tmp"; die "debootstrap failed"; }
    rm -rf "$tmp"/root/var/cache/apt/archives/*.deb "$tmp"/root/var/lib/apt/lists/*
    tar -C "$tmp/root" -c . >"$tmp/rootfs.tar"
    mv "$tmp/rootfs.tar" "$tarball"
    rm -rf "$tmp"
  fi
  podman import --quiet --change "LABEL cti.rig.hash=$hash" "$tarball" "$BASE" >/dev/null
  log "$BASE imported ($hash)"
}

# What an image is made of: its Containerfile folder, the binary it copies, and the base.
image_hash() {
  local name="$1" src="${CONTEXT[$1]}"
  {
    (cd "$RIG_DIR/images/$name" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
    [[ -z $src ]] || sha256sum "$src"
    [[ -n $src ]] || podman image inspect --format '{{.Id}}' "$BASE"
  } | sha256sum | cut -c1-16
}

recorded() { [[ -s $JSON ]] && jq -er --arg n "$1" --arg k "$2" '.[$n][$k]' "$JSON" 2>/dev/null; }

in_registry() {
  curl -fsS -o /dev/null -I -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REGISTRY/v2/cti-rig/$1/manifests/$2"
}

build_image() {
  local name="$1" src="${CONTEXT[$1]}" hash ref ctx digest start=$SECONDS
  [[ -z $src || -x $src ]] || die "$src missing (tests/rig/build.sh)"
  [[ -n $src ]] || base
  hash="$(image_hash "$name")"
  ref="$REGISTRY/cti-rig/$name:${TAG[$name]}"
  if [[ "$(recorded "$name" hash)" == "$hash" ]] && in_registry "$name" "$(recorded "$name" digest)"; then
    log "image $name: cached ($(recorded "$name" digest))"
    return 0
  fi
  ctx="$(mktemp -d "$RIG_CACHE/images/ctx.XXXXXX")"
  cp -r "$RIG_DIR/images/$name/." "$ctx/"
  [[ -z $src ]] || cp "$src" "$ctx/"
  podman build --quiet --network host --label "cti.rig.hash=$hash" -t "$ref" "$ctx" >/dev/null \
    || { rm -rf "$ctx"; die "building image $name failed"; }
  podman push --quiet --tls-verify=false --digestfile "$ctx/digest" "$ref"
  digest="$(cat "$ctx/digest")"
  rm -rf "$ctx"
  local tmp="$JSON.$$"
  { [[ -s $JSON ]] && cat "$JSON" || echo '{}'; } | jq --arg n "$name" --arg r "$REGISTRY/cti-rig/$name" \
    --arg t "${TAG[$name]}" --arg d "$digest" --arg h "$hash" \
    '.[$n] = {repository: $r, tag: $t, digest: $d, hash: $h}' >"$tmp"
  mv "$tmp" "$JSON"
  log "image $name: built and pushed in $((SECONDS - start))s ($digest)"
}

build() {
  mkdir -p "$RIG_CACHE/images"
  with_lock registry registry
  local name
  for name in "${!CONTEXT[@]}"; do with_lock images build_image "$name"; done
}

case "${1:-}" in
  registry) with_lock registry registry ;;
  registry-down) with_lock registry registry_down ;;
  build) build ;;
  list) cat "$JSON" ;;
  *) die "usage: $0 registry|registry-down|build|list" ;;
esac
