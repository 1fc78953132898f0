#!/usr/bin/env bash
# Fetches S3Proxy (a real S3 API server; the rig runs it over its filesystem backend) from Maven
# Central into the rig cache as $RIG_CACHE/s3proxy/s3proxy-$S3PROXY_VERSION.jar; a version already
# there is kept. Locked and published by rename (lib.sh build_once), so a second set-up at once
# waits for this one.
# shellcheck source=tests/rig/lib.sh
. "$(dirname "$0")/lib.sh"

v="$S3PROXY_VERSION"
# The jar-with-dependencies is the self-contained server.
rel="org/gaul/s3proxy/$v/s3proxy-$v-jar-with-dependencies.jar"

fetch_s3proxy() {
  maven_get "org.gaul:s3proxy:$v:jar:jar-with-dependencies" "$rel"
  # Linked, or copied across file systems; build_once renames it into place.
  ln -f "$RIG_CACHE/m2/$rel" "$BUILD_OUT" 2>/dev/null || cp "$RIG_CACHE/m2/$rel" "$BUILD_OUT"
}

build_once "$RIG_CACHE/s3proxy/s3proxy-$v.jar" fetch_s3proxy
