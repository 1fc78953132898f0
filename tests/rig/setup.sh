#!/usr/bin/env bash
# Prepares every part of the rig that needs building or fetching; a warm run changes nothing.
. "$(dirname "$0")/lib.sh"
start=$SECONDS
log "1/3 Kubernetes control plane, etcd, kwok, Helm (Go module proxy)"
bash "$RIG_DIR/build.sh"
log "2/3 podman and the Debian systemd host image"
bash "$RIG_DIR/hosts.sh" setup
log "3/3 Keycloak distribution (Maven Central)"
bash "$RIG_DIR/fetch-keycloak.sh"
log "rig ready in $((SECONDS - start))s"
