#!/usr/bin/env bash
# Prepares every part of the rig that needs building or fetching; a warm run changes nothing.
# shellcheck source=tests/rig/lib.sh
. "$(dirname "$0")/lib.sh"
start=$SECONDS
log "1/6 Kubernetes, etcd, kwok, Helm, the real node's containerd, CNI, add-ons (Go module proxy)"
bash "$RIG_DIR/build.sh"
log "2/6 podman and the Debian systemd host image"
bash "$RIG_DIR/hosts.sh" setup
log "3/6 the real node's images, pushed to the loopback registry"
bash "$RIG_DIR/images.sh" build
log "4/6 Keycloak distribution (Maven Central)"
bash "$RIG_DIR/fetch-keycloak.sh"
log "5/6 promtool (Go module proxy) for the alert rules"
bash "$RIG_DIR/build-promtool.sh" >/dev/null
log "6/6 S3Proxy (Maven Central) for the backup tests"
bash "$RIG_DIR/fetch-s3proxy.sh"
log "rig ready in $((SECONDS - start))s"
