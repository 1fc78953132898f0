#!/usr/bin/env bash
# Prepares every part of the rig that needs building or fetching; a warm run changes nothing.
. "$(dirname "$0")/lib.sh"
start=$SECONDS
log "1/5 Kubernetes control plane, etcd, kwok, Helm (Go module proxy)"
bash "$RIG_DIR/build.sh"
log "2/5 podman and the Debian systemd host image"
bash "$RIG_DIR/hosts.sh" setup
log "3/5 Keycloak distribution (Maven Central)"
bash "$RIG_DIR/fetch-keycloak.sh"
log "4/5 promtool (Go module proxy) for the alert rules"
bash "$RIG_DIR/build-promtool.sh" >/dev/null
log "5/5 S3Proxy (Maven Central) for the backup tests"
bash "$RIG_DIR/fetch-s3proxy.sh"
log "rig ready in $((SECONDS - start))s"
