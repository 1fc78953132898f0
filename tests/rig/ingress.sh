#!/usr/bin/env bash
# RKE2's chart mechanism on the rig, for the ingress tests: helm-controller (the controller RKE2's
# server runs, built by build.sh) as a process against the cluster's API, its Jobs run by the
# klipper-helm stand-in image on the real node, and an RKE2-style HelmChart `rke2-traefik` in
# kube-system whose chartContent is the stand-in chart tests/doubles/charts/rke2-traefik packaged
# with Traefik's CRDs, its values setting the locally built Traefik image and the real node.
#   ingress.sh up     start helm-controller (unless running) and apply the HelmChart
#   ingress.sh down   delete the HelmChart (helm-controller uninstalls the release), stop it
# helm-controller's Jobs prefer control-plane nodes and select none: kwok nodes must be cordoned
# while it works, or kwok marks a Job's pod complete without running Helm (the tests do that).
# shellcheck source=tests/rig/lib.sh
. "$(dirname "$0")/lib.sh"

KUBECONFIG_PATH="$RIG_STATE/kubeconfig"
KUBECTL="$RIG_BIN/kubectl-$K8S_VERSION"
HELM="$RIG_BIN/helm-$HELM_VERSION"
HC_BIN="$RIG_BIN/helm-controller-$HELM_CONTROLLER_VERSION"
HC_DIR="$RIG_STATE/helm-controller"
IMAGES_JSON="$RIG_CACHE/images/images.json"
REAL_KEY=cti.misp-platform/real-node
k() { "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

image() { jq -er --arg n "$1" '.[$n] | .repository + "@" + .digest' "$IMAGES_JSON"; }

hc_pid() { pid_from "$HC_DIR/pid" "--kubeconfig $KUBECONFIG_PATH"; }

# The stand-in chart with Traefik's CRDs (build.sh fetches them) in crds/, as a base64 .tgz.
chart_content() {
  local tmp crds
  tmp="$(mktemp -d)"
  crds="$RIG_BIN/traefik-crds-$TRAEFIK_CRD_VERSION.yaml"
  cp -r "$RIG_DIR/../doubles/charts/rke2-traefik" "$tmp/chart"
  mkdir -p "$tmp/chart/crds"
  cp "$crds" "$tmp/chart/crds/traefik-crds.yaml"
  "$HELM" package "$tmp/chart" -d "$tmp" >/dev/null
  base64 -w0 "$tmp"/rke2-traefik-*.tgz
  rm -rf "$tmp"
}

helmchart() {
  local traefik content
  traefik="$(image traefik)"
  content="$(chart_content)"
  cat <<YAML
apiVersion: helm.cattle.io/v1
kind: HelmChart
metadata:
  name: rke2-traefik
  namespace: kube-system
spec:
  targetNamespace: kube-system
  chartContent: $content
  valuesContent: |-
    image:
      repository: ${traefik%@*}
      digest: ${traefik#*@}
    nodeSelector: {$REAL_KEY: "true"}
    tolerations:
      - {key: $REAL_KEY, operator: Exists, effect: NoSchedule}
YAML
}

# Starts helm-controller unless it runs; waits until its HelmChart controller has started (in the
# part of the log this start wrote). Fails when the process exits first, printing that part.
start_helm_controller() {
  local log="$HC_DIR/helm-controller.log" from
  hc_pid >/dev/null && return 0
  from=$(($(stat -c %s "$log" 2>/dev/null || echo 0) + 1))
  log "starting helm-controller $HELM_CONTROLLER_VERSION (log $log)"
  spawn "$log" "$HC_BIN" --kubeconfig "$KUBECONFIG_PATH" --namespace kube-system \
    --default-job-image "$(image klipper-helm)" \
    --job-tolerations "[{\"key\": \"$REAL_KEY\", \"operator\": \"Exists\", \"effect\": \"NoSchedule\"}]"
  echo "$SPAWNED_PID" >"$HC_DIR/pid"
  # helm-controller installs its own CRDs (over the rig's stand-in schemas) before it works.
  for _ in {1..60}; do
    tail -c "+$from" "$log" | grep -q "Starting helm.cattle.io/v1, Kind=HelmChart controller" && return 0
    hc_pid >/dev/null || { tail -c "+$from" "$log" | tail -n 20 >&2; return 1; }
    sleep 1
  done
  die "helm-controller did not start its HelmChart controller in 60 s; see $log"
}

up() {
  [[ -x $HC_BIN && -x "$RIG_BIN/traefik-$TRAEFIK_VERSION/traefik" && -f "$RIG_BIN/traefik-crds-$TRAEFIK_CRD_VERSION.yaml" ]] ||
    bash "$RIG_DIR/build.sh" helm-controller traefik helm
  bash "$RIG_DIR/images.sh" build traefik klipper-helm >&2
  mkdir -p "$HC_DIR"
  local attempt
  for attempt in 1 2 3; do
    start_helm_controller && break
    # Seen on a fresh machine, twice, each time while another test's cluster was being taken
    # down: a SIGTERM from outside within a second of the start (the sender is not known yet).
    ((attempt < 3)) || die "helm-controller exited during its start, three times"
    log "helm-controller exited during its start (attempt $attempt); starting it again"
  done
  helmchart | k apply --server-side --force-conflicts -f - >/dev/null
  log "HelmChart kube-system/rke2-traefik applied"
}

down() {
  local pid
  if pid="$(hc_pid)"; then
    k delete helmchart -n kube-system rke2-traefik --ignore-not-found --wait --timeout 120s >/dev/null || true
    kill "$pid"
    for _ in {1..20}; do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    rm -f "$HC_DIR/pid"
    log "helm-controller stopped"
  else
    # Without its controller the HelmChart's finalizer would never be removed.
    k patch helmchart -n kube-system rke2-traefik --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1 || true
    k delete helmchart -n kube-system rke2-traefik --ignore-not-found >/dev/null
  fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) die "usage: $0 up|down" ;;
esac
