#!/usr/bin/env bash
# Builds promtool from the Go module proxy into $RIG_CACHE/bin/promtool-<version>; a binary that
# exists is not rebuilt. github.com/prometheus/prometheus has no replace directives in its go.mod,
# so a wrapper module that requires it builds cmd/promtool as is. Locked and published by rename
# like build.sh's builds (lib.sh build_once).
# shellcheck source=tests/rig/lib.sh
. "$(dirname "$0")/lib.sh"

# Module version v0.X.Y is Prometheus 3.X.Y.
PROMTOOL_VERSION="${PROMTOOL_VERSION:-v0.316.0}"
out="$RIG_BIN/promtool-$PROMTOOL_VERSION"

promtool_build() {
  local dir="$RIG_CACHE/src/promtool-$PROMTOOL_VERSION"
  log "promtool $PROMTOOL_VERSION: cold build takes several minutes on 2 cores"
  mkdir -p "$dir"
  printf 'module cti.local/rig/promtool\ngo 1.26.7\nrequire github.com/prometheus/prometheus %s\n' \
    "$PROMTOOL_VERSION" > "$dir/go.mod"
  # remove_all_sd leaves out the service-discovery plugins (upstream's own build tag): promtool's
  # rule checks need none of them, and one (nomad's API client) is not served by the proxy.
  (cd "$dir" && go mod download github.com/prometheus/prometheus && \
    CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -mod=mod -trimpath -tags remove_all_sd -ldflags "-s -w" \
      -o "$BUILD_OUT" github.com/prometheus/prometheus/cmd/promtool)
}

build_once "$out" promtool_build
# The last line is the binary's path, for callers that capture it.
echo "$out"
