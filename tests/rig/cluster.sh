#!/usr/bin/env bash
# The rig's cluster: etcd, kube-apiserver, kube-controller-manager and kube-scheduler built
# from source (build.sh), kwok nodes that look like an RKE2 cluster (pods there are scheduled and
# marked Ready by kwok stages; no container runs), and a real node (node.sh) where pods that
# select and tolerate it run for real.
#   cluster.sh up       start (builds what is missing), wait for the API and the real node,
#                       print the kubeconfig path
#   cluster.sh status   exit 0 and print the kubeconfig path when the API answers
#   cluster.sh down     stop and leave no process behind
#   cluster.sh kubectl  run the rig's kubectl against the cluster
# shellcheck source=tests/rig/lib.sh
. "$(dirname "$0")/lib.sh"

NAME="${CTI_RIG_CLUSTER:-cti-misp}"
# shellcheck source=tests/rig/net.sh
. "$RIG_DIR/net.sh"
KUBECONFIG_PATH="$RIG_STATE/kubeconfig"
export KWOK_WORKDIR="$RIG_STATE/kwok"
KWOKCTL="$RIG_BIN/kwokctl-$KWOK_VERSION"
KUBECTL="$RIG_BIN/kubectl-$K8S_VERSION"
STAGES="$(go env GOMODCACHE 2>/dev/null || echo "$HOME/go/pkg/mod")/sigs.k8s.io/kwok@$KWOK_VERSION/kustomize/stage"

k() { "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

api_ready() {
  [[ -s "$KUBECONFIG_PATH" ]] && k get --raw /readyz >/dev/null 2>&1
}

write_config() {
  local cfg="$RIG_STATE/kwok.yaml" f
  {
    cat <<YAML
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  # Every component listens on loopback only.
  bindAddress: 127.0.0.1
  # Ports of the cluster's own (from its index): the free ports kwokctl would pick were taken
  # by another set-up's cluster created at the same time, or while a component was down.
  etcdPeerPort: $((RIG_PORT_BASE))
  etcdPort: $((RIG_PORT_BASE + 1))
  kubeApiserverPort: $((RIG_PORT_BASE + 2))
  kubeControllerManagerPort: $((RIG_PORT_BASE + 3))
  kubeSchedulerPort: $((RIG_PORT_BASE + 4))
  kwokControllerPort: $((RIG_PORT_BASE + 5))
  # Pods on the real node reach the API server through the kubernetes Service (net.sh).
  kubeApiserverCertSANs: [$RIG_API_SERVICE_IP, $RIG_NODE_IP]
componentsPatches:
  - name: kube-apiserver
    extraArgs:
      - {key: service-cluster-ip-range, value: $RIG_SERVICE_CIDR}
      # The kubernetes Service's endpoint: the real node's address, forwarded by node.sh.
      - {key: advertise-address, value: $RIG_NODE_IP}
      # The aggregation layer dials metrics-server's pod, not its Service address.
      - {key: enable-aggregator-routing, value: "true"}
      # kubectl logs/exec: the API server dials kubelet at its address (the node name resolves
      # nowhere) and authenticates to it.
      - {key: kubelet-preferred-address-types, value: InternalIP}
      - {key: kubelet-client-certificate, value: $KWOK_WORKDIR/clusters/$NAME/pki/admin.crt}
      - {key: kubelet-client-key, value: $KWOK_WORKDIR/clusters/$NAME/pki/admin.key}
  - name: kube-controller-manager
    extraArgs:
      - {key: service-cluster-ip-range, value: $RIG_SERVICE_CIDR}
  - name: kwok-controller
    extraArgs:
      - {key: node-ip, value: 127.0.0.1}
      # The real node belongs to its kubelet: kwok manages only nodes annotated as fake.
      - {key: manage-all-nodes, value: "false"}
      - {key: manage-nodes-with-annotation-selector, value: kwok.x-k8s.io/node=fake}
YAML
    # kwok v0.8.0 has no built-in stages: the fast set from its own module.
    for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
             pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
      [[ -f "$STAGES/$f" ]] || die "kwok stage $f missing under $STAGES (run tests/rig/build.sh)"
      printf -- '---\n'; cat "$STAGES/$f"
    done
  } > "$cfg"
  echo "$cfg"
}

# Nodes named and labelled like RKE2's: three servers (control-plane, etcd, master) and three
# agents, spread over three zones, node IP 127.0.0.1.
node_manifest() {
  local name="$1" role="$2" zone="$3"
  cat <<YAML
apiVersion: v1
kind: Node
metadata:
  name: $name
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
    rke2.io/hostname: $name
    rke2.io/internal-ip: 127.0.0.1
    rke2.io/node-args: '["$role"]'
  labels:
    beta.kubernetes.io/arch: amd64
    beta.kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    kubernetes.io/os: linux
    kubernetes.io/hostname: $name
    node.kubernetes.io/instance-type: rke2
    topology.kubernetes.io/zone: $zone
    type: kwok
YAML
  if [[ $role == server ]]; then
    cat <<'YAML'
    node-role.kubernetes.io/control-plane: "true"
    node-role.kubernetes.io/etcd: "true"
    node-role.kubernetes.io/master: "true"
YAML
  fi
  cat <<'YAML'
status:
  addresses:
    - address: 127.0.0.1
      type: InternalIP
  nodeInfo:
    kubeletVersion: RIG_KUBELET_VERSION
    operatingSystem: linux
    architecture: amd64
YAML
}

create_nodes() {
  local i zones=(zone-a zone-b zone-c)
  for i in 1 2 3; do
    node_manifest "rke2-server-$i" server "${zones[i-1]}"; echo ---
    node_manifest "rke2-agent-$i" agent "${zones[i-1]}"; echo ---
  done | sed "s/RIG_KUBELET_VERSION/${K8S_VERSION}+rke2r1/" | k apply -f - >/dev/null
  k wait --for=condition=Ready node --all --timeout=120s >/dev/null
}

install_crds() {
  local crds=("$RIG_DIR"/crds/*.yaml)
  [[ -e "${crds[0]}" ]] || return 0
  # --force-conflicts: helm-controller and Traefik's chart may have applied the real CRDs since.
  k apply --server-side --force-conflicts -f "$RIG_DIR/crds/" >/dev/null
  k wait --for=condition=Established crd --all --timeout=60s >/dev/null
}

# kwokctl takes a live process with the pid in a component's pid file for that component, and
# stops it on delete; after a killed run (or a reboot) the pid may be another process's. Pid
# files whose process does not name this cluster's directory (every component's binary is in
# it) are forgotten first.
forget_stale_pids() {
  local f
  for f in "$KWOK_WORKDIR/clusters/$NAME"/pids/*.pid; do
    [[ -e $f ]] || continue
    pid_from "$f" "$KWOK_WORKDIR/clusters/$NAME/" >/dev/null || rm -f "$f"
  done
}

# Starts whatever component of the existing cluster has stopped (kwokctl skips those that run),
# keeping etcd's data and so every object and its UID. Fails when there is no cluster made from
# the same configuration, or when its API does not come back.
restart() {
  local i
  [[ -f "$KWOK_WORKDIR/clusters/$NAME/kwok.yaml" ]] && cmp -s "$1" "$RIG_STATE/kwok.yaml.applied" || return 1
  "$KWOKCTL" start cluster --name "$NAME" >/dev/null 2>&1 || return 1
  for i in $(seq 1 60); do api_ready && return 0; sleep 1; done
  return 1
}

up() {
  local config
  config="$(write_config)"
  forget_stale_pids
  if restart "$config"; then
    install_crds
    bash "$RIG_DIR/node.sh" up
    echo "$KUBECONFIG_PATH"; return
  fi
  bash "$RIG_DIR/build.sh" >&2
  # A cluster of another configuration, or one that cannot start, is made anew.
  if [[ -d "$KWOK_WORKDIR/clusters/$NAME" ]]; then
    log "cluster $NAME cannot be restarted as it is: deleting it and creating it anew"
    bash "$RIG_DIR/node.sh" down
  fi
  "$KWOKCTL" delete cluster --name "$NAME" --kubeconfig "$KUBECONFIG_PATH" >/dev/null 2>&1 || true
  log "starting cluster $NAME (Kubernetes $K8S_VERSION, kwok $KWOK_VERSION)"
  "$KWOKCTL" create cluster --name "$NAME" --runtime binary \
    --kubeconfig "$KUBECONFIG_PATH" \
    --config "$config" \
    --etcd-binary "$RIG_BIN/etcd-$ETCD_VERSION" \
    --kube-apiserver-binary "$RIG_BIN/kube-apiserver-$K8S_VERSION" \
    --kube-controller-manager-binary "$RIG_BIN/kube-controller-manager-$K8S_VERSION" \
    --kube-scheduler-binary "$RIG_BIN/kube-scheduler-$K8S_VERSION" \
    --kwok-controller-binary "$RIG_BIN/kwok-$KWOK_VERSION" \
    --wait 3m >&2
  chmod 0600 "$KUBECONFIG_PATH"
  cp "$config" "$RIG_STATE/kwok.yaml.applied"
  local i
  for i in $(seq 1 60); do api_ready && break; sleep 1; done
  api_ready || die "kube-apiserver did not become ready; logs in $KWOK_WORKDIR/clusters/$NAME/logs"
  log "creating RKE2-like kwok nodes"
  create_nodes
  log "installing stand-in CRDs"
  install_crds
  bash "$RIG_DIR/node.sh" up
  log "cluster ready"
  echo "$KUBECONFIG_PATH"
}

down() {
  forget_stale_pids
  bash "$RIG_DIR/node.sh" down
  "$KWOKCTL" delete cluster --name "$NAME" --kubeconfig "$KUBECONFIG_PATH" >&2 || true
  # kwokctl stops what it started; make sure nothing of ours survives a half-started cluster.
  pkill -f -- "$KWOK_WORKDIR/clusters/$NAME/" 2>/dev/null || true
  rm -f "$KUBECONFIG_PATH" "$RIG_STATE/kwok.yaml.applied"
  log "cluster $NAME stopped"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status)
    if api_ready; then echo "$KUBECONFIG_PATH"; else log "cluster $NAME is down"; exit 1; fi ;;
  kubectl) shift; k "$@" ;;
  *) die "usage: $0 up|down|status|kubectl ARGS" ;;
esac
