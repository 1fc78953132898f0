#!/usr/bin/env bash
# Fetches the Keycloak server distribution from Maven Central into the rig cache and unpacks it
# to $RIG_CACHE/keycloak/keycloak-$KEYCLOAK_VERSION; a version already unpacked is kept. Locked
# and published by rename (lib.sh build_once), so a second set-up at once waits for this one.
# shellcheck source=tests/rig/lib.sh
. "$(dirname "$0")/lib.sh"

v="$KEYCLOAK_VERSION"
rel="org/keycloak/keycloak-quarkus-dist/$v/keycloak-quarkus-dist-$v.tar.gz"

# Unpacks the tarball beside the destination; build_once renames the tree into place.
fetch_keycloak() {
  local tarball="$RIG_CACHE/m2/$rel" unpack="$BUILD_OUT.unpack"
  maven_get "org.keycloak:keycloak-quarkus-dist:$v:tar.gz" "$rel"
  mkdir -p "$unpack"
  tar -xzf "$tarball" -C "$unpack"
  [[ -x "$unpack/keycloak-$v/bin/kc.sh" ]] || die "$tarball has no keycloak-$v/bin/kc.sh"
  mv "$unpack/keycloak-$v" "$BUILD_OUT"
  rm -rf "$unpack"
}

build_once "$RIG_CACHE/keycloak/keycloak-$v" fetch_keycloak
