#!/usr/bin/env bash
# Fetches the Keycloak server distribution from Maven Central into the rig cache and unpacks it
# to $RIG_CACHE/keycloak/keycloak-$KEYCLOAK_VERSION; a version already unpacked is kept.
# shellcheck source=tests/rig/lib.sh
. "$(dirname "$0")/lib.sh"

v="$KEYCLOAK_VERSION"
dest="$RIG_CACHE/keycloak/keycloak-$v"
if [[ -x "$dest/bin/kc.sh" ]]; then
  log "keycloak $v: cached"
  exit 0
fi
rel="org/keycloak/keycloak-quarkus-dist/$v/keycloak-quarkus-dist-$v.tar.gz"
maven_get "org.keycloak:keycloak-quarkus-dist:$v:tar.gz" "$rel"
tarball="$RIG_CACHE/m2/$rel"

# Unpack beside the destination and rename, so an interrupted run leaves no half tree behind.
mkdir -p "$RIG_CACHE/keycloak"
tmp="$(mktemp -d "$RIG_CACHE/keycloak/.unpack.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
tar -xzf "$tarball" -C "$tmp"
[[ -x "$tmp/keycloak-$v/bin/kc.sh" ]] || die "$tarball has no keycloak-$v/bin/kc.sh"
mv "$tmp/keycloak-$v" "$dest"
log "keycloak $v: ready in $dest"
