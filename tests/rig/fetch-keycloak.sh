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
command -v mvn >/dev/null || die "mvn not found (apt-get install maven)"

# A Maven repository of its own inside the rig cache, so the tarball is stored only once and a
# wiped ~/.m2 does not lose it.
repo="$RIG_CACHE/m2"
artifact="org.keycloak:keycloak-quarkus-dist:$v:tar.gz"
log "keycloak $v: downloading $artifact"
mvn -B -q -Dstyle.color=never -Dmaven.repo.local="$repo" \
  org.apache.maven.plugins:maven-dependency-plugin:3.8.1:get \
  -Dartifact="$artifact" -Dtransitive=false
tarball="$repo/org/keycloak/keycloak-quarkus-dist/$v/keycloak-quarkus-dist-$v.tar.gz"
[[ -f "$tarball" ]] || die "maven did not store $tarball"

# Unpack beside the destination and rename, so an interrupted run leaves no half tree behind.
mkdir -p "$RIG_CACHE/keycloak"
tmp="$(mktemp -d "$RIG_CACHE/keycloak/.unpack.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
tar -xzf "$tarball" -C "$tmp"
[[ -x "$tmp/keycloak-$v/bin/kc.sh" ]] || die "$tarball has no keycloak-$v/bin/kc.sh"
mv "$tmp/keycloak-$v" "$dest"
log "keycloak $v: ready in $dest"
