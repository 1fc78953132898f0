#!/usr/bin/env bash
# Fetches S3Proxy (a real S3 API server; the rig runs it over its filesystem backend) from Maven
# Central into the rig cache as $RIG_CACHE/s3proxy/s3proxy-$S3PROXY_VERSION.jar; a version already
# there is kept.
# shellcheck source=tests/rig/lib.sh
. "$(dirname "$0")/lib.sh"

v="$S3PROXY_VERSION"
dest="$RIG_CACHE/s3proxy/s3proxy-$v.jar"
if [[ -f "$dest" ]]; then
  log "s3proxy $v: cached"
  exit 0
fi
# The jar-with-dependencies is the self-contained server.
rel="org/gaul/s3proxy/$v/s3proxy-$v-jar-with-dependencies.jar"
maven_get "org.gaul:s3proxy:$v:jar:jar-with-dependencies" "$rel"
jar="$RIG_CACHE/m2/$rel"

# Linked (copied across file systems) beside the destination and renamed, so an interrupted run
# leaves no half file under the final name.
mkdir -p "$RIG_CACHE/s3proxy"
tmp="$RIG_CACHE/s3proxy/.s3proxy-$v.jar.$$"
trap 'rm -f "$tmp"' EXIT
ln -f "$jar" "$tmp" 2>/dev/null || cp "$jar" "$tmp"
mv "$tmp" "$dest"
log "s3proxy $v: ready in $dest"
