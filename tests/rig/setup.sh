#!/usr/bin/env bash
# Prepares every part of the rig that needs building or fetching; a warm run changes nothing.
. "$(dirname "$0")/lib.sh"
start=$SECONDS
log "1/4 Kubernetes control plane, etcd, kwok, Helm (Go module proxy)"
bash "$RIG_DIR/build.sh"
log "2/4 podman and the Debian systemd host image"
bash "$RIG_DIR/hosts.sh" setup
log "3/4 Keycloak distribution (Maven Central)"
bash "$RIG_DIR/fetch-keycloak.sh"
log "4/4 promtool (Go module proxy) for the alert rules"
bash "$RIG_DIR/build-promtool.sh" >/dev/null
log "rig ready in $((SECONDS - start))s"
