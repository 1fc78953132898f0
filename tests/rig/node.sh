#!/usr/bin/env bash
# A real node of the rig, beside the kwok nodes: kubelet, containerd (runc, CNI bridge) and
# kube-proxy running in the cluster's own network namespace (tests/rig/net.sh), and
# kube-network-policies, CoreDNS and metrics-server as pods on it (tests/rig/addons/). The node
# carries the label and the NoSchedule taint $RIG_REAL_NODE_KEY, so only pods that select and
# tolerate it run for real; every other pod stays on kwok.
#   node.sh up      start what is not running (a component that died is started again), wait
#                   until the node is Ready and its add-ons are available
#   node.sh status  exit 0 when every component runs and the node is Ready
#   node.sh down    stop everything and leave no process, mount or namespace behind
#   node.sh forward PORT    make the host's loopback-only service on PORT (a test's peer such as
#                   S3Proxy) reachable from the node's pods at $RIG_NODE_IP:PORT; prints that address
#   node.sh unforward PORT  stop that forwarder
# Needs the cluster (cluster.sh up) and the images (images.sh build).
# shellcheck source=tests/rig/lib.sh
. "$(dirname "$0")/lib.sh"
NAME="${CTI_RIG_CLUSTER:-cti-misp}"
# shellcheck source=tests/rig/net.sh
. "$RIG_DIR/net.sh"

NODE_NAME="rig-node-1"
NODE_DIR="$RIG_STATE/node"
KUBECONFIG_PATH="$RIG_STATE/kubeconfig"
PKI="$RIG_STATE/kwok/clusters/$NAME/pki"
KUBECTL="$RIG_BIN/kubectl-$K8S_VERSION"
CONTAINERD_DIR="$RIG_BIN/containerd-$CONTAINERD_VERSION"
CNI_BIN="$RIG_BIN/cni-plugins-$CNI_PLUGINS_VERSION"
# kubelet and runc put the node's pods under a cgroup of this cluster's own, so two rig
# clusters on one machine never share kubepods.
CGROUP_ROOT="/cti-rig-$NAME"
RUNC_ROOT="$NODE_DIR/runc"
COMPONENTS=(api-forward-host api-forward registry-forward-host registry-forward containerd kubelet kube-proxy)

k() { "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" "$@"; }
# Enters the namespace's network only: `ip netns exec` would also give the process a mount
# namespace of its own with a fresh /sys, hiding the cgroup mounts from kubelet and the pods'
# volume mounts from containerd.
IN_NS=(nsenter --net="/run/netns/$RIG_NETNS")
in_ns() { "${IN_NS[@]}" "$@"; }
# The pid of a running component: every component's command line names the node's directory.
pid_of() { pid_from "$NODE_DIR/run/$1.pid" "$NODE_DIR/"; }

# Starts one long-running component unless it runs; its output goes to log/<name>.log.
start() {
  local name="$1"; shift
  pid_of "$name" >/dev/null && return 0
  log "starting $name"
  spawn "$NODE_DIR/log/$name.log" "$@"
  echo "$SPAWNED_PID" >"$NODE_DIR/run/$name.pid"
}

wait_for() {
  local what="$1" seconds="$2" i; shift 2
  for ((i = 0; i < seconds; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  die "$what not ready after ${seconds}s; logs in $NODE_DIR/log"
}

api_port() { sed -n 's#.*server: https://127.0.0.1:\([0-9]*\).*#\1#p' "$KUBECONFIG_PATH" | head -n1; }

image() {
  local f="$RIG_CACHE/images/images.json"
  [[ -s $f ]] || die "$f missing: run tests/rig/images.sh build"
  jq -er --arg n "$1" '.[$n] | "\(.repository)@\(.digest)"' "$f" || die "image $1 is not in $f"
}

network() {
  ip netns list | grep -qx "$RIG_NETNS\( (id: [0-9]*)\)\?" || ip netns add "$RIG_NETNS"
  if ! ip link show "$RIG_VETH_HOST" >/dev/null 2>&1; then
    ip link add "$RIG_VETH_HOST" type veth peer name "$RIG_VETH_NODE" netns "$RIG_NETNS"
    ip addr add "$RIG_HOST_IP/30" dev "$RIG_VETH_HOST"
    ip link set "$RIG_VETH_HOST" up
    ip -n "$RIG_NETNS" addr add "$RIG_NODE_IP/30" dev "$RIG_VETH_NODE"
    ip -n "$RIG_NETNS" link set "$RIG_VETH_NODE" up
    ip -n "$RIG_NETNS" link set lo up
    # The host itself does not forward (ip_forward stays 0 there), so this default route only
    # gives kubelet and kube-proxy a node address; nothing leaves the namespace through it.
    ip -n "$RIG_NETNS" route add default via "$RIG_HOST_IP"
  fi
  # The API server's aggregation layer dials metrics-server's pod directly.
  ip route replace "$RIG_POD_CIDR" via "$RIG_NODE_IP" dev "$RIG_VETH_HOST"
  # Bridged pod traffic must pass netfilter for Services and NetworkPolicies (per namespace).
  in_ns sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
}

# The node's own client certificate (system:node:<name>), signed by the cluster's CA, so the
# Node authorizer treats kubelet as on RKE2; kube-proxy and the policy agent use the rig's admin
# credentials (rig plumbing, not the product).
credentials() {
  local d="$NODE_DIR/pki" server
  server="https://127.0.0.1:$(api_port)"
  if [[ ! -s $d/kubelet.crt ]] || ! cmp -s "$PKI/ca.crt" "$d/ca.crt"; then
    mkdir -p "$d"
    cp "$PKI/ca.crt" "$d/ca.crt"
    openssl req -new -newkey rsa:2048 -nodes -keyout "$d/kubelet.key" -out "$d/kubelet.csr" \
      -subj "/O=system:nodes/CN=system:node:$NODE_NAME" 2>/dev/null
    openssl x509 -req -in "$d/kubelet.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
      -days 365 -out "$d/kubelet.crt" 2>/dev/null
    chmod 0600 "$d"/*.key
  fi
  k config view --raw --minify >"$NODE_DIR/admin.kubeconfig"
  local kc=("$KUBECTL" --kubeconfig "$NODE_DIR/kubelet.kubeconfig" config)
  "${kc[@]}" set-cluster rig --server "$server" --certificate-authority "$d/ca.crt" --embed-certs >/dev/null
  "${kc[@]}" set-credentials node --client-certificate "$d/kubelet.crt" --client-key "$d/kubelet.key" \
    --embed-certs >/dev/null
  "${kc[@]}" set-context node --cluster rig --user node >/dev/null
  "${kc[@]}" use-context node >/dev/null
  chmod 0600 "$NODE_DIR"/*.kubeconfig
}

# The namespace reaches the host's loopback-only API server and registry through Unix sockets:
# the host end connects to loopback, the namespace end listens inside the namespace only.
forwarders() {
  local port; port="$(api_port)"
  start api-forward-host socat "UNIX-LISTEN:$NODE_DIR/run/api.sock,fork,unlink-early,mode=600" "TCP:127.0.0.1:$port"
  # 0.0.0.0 inside the namespace: its loopback for kubelet, the node address for the
  # `kubernetes` Service's endpoint (the API server advertises the node address).
  start api-forward "${IN_NS[@]}" socat "TCP-LISTEN:$port,fork,reuseaddr" "UNIX-CONNECT:$NODE_DIR/run/api.sock"
  start registry-forward-host socat "UNIX-LISTEN:$NODE_DIR/run/registry.sock,fork,unlink-early,mode=600" "TCP:127.0.0.1:$RIG_REGISTRY_PORT"
  start registry-forward "${IN_NS[@]}" socat "TCP-LISTEN:$RIG_REGISTRY_PORT,bind=127.0.0.1,fork,reuseaddr" "UNIX-CONNECT:$NODE_DIR/run/registry.sock"
}

containerd_config() {
  local c="$NODE_DIR/containerd"
  mkdir -p "$c/certs.d/127.0.0.1:$RIG_REGISTRY_PORT" "$NODE_DIR/cni/net.d" "$NODE_DIR/cni/ipam" "$RUNC_ROOT"
  cat >"$c/certs.d/127.0.0.1:$RIG_REGISTRY_PORT/hosts.toml" <<EOF
# The rig's registry speaks plain HTTP on loopback.
server = "http://127.0.0.1:$RIG_REGISTRY_PORT"
[host."http://127.0.0.1:$RIG_REGISTRY_PORT"]
  capabilities = ["pull", "resolve"]
EOF
  cat >"$NODE_DIR/cni/net.d/10-rig.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "rig-$NAME",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$NODE_DIR/cni/ipam",
              "ranges": [[{"subnet": "$RIG_POD_CIDR", "gateway": "$RIG_POD_GATEWAY"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  cat >"$c/config.toml" <<EOF
version = 3
root = "$c/root"
state = "$c/state"
[grpc]
  address = "$NODE_DIR/run/containerd.sock"
[ttrpc]
  address = "$NODE_DIR/run/containerd.sock.ttrpc"
[plugins.'io.containerd.internal.v1.opt']
  path = "$c/opt"
# NRI's socket is machine-wide; a second rig cluster's containerd would take it over.
[plugins.'io.containerd.nri.v1.nri']
  disable = true
[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "$(image pause)"
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = "$c/certs.d"
[plugins.'io.containerd.cri.v1.runtime']
  # The rig runs without CAP_SYS_RESOURCE, so the kernel refuses the negative oom_score_adj
  # kubelet asks for sandboxes and Guaranteed pods; clamp to containerd's own instead.
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        Root = "$RUNC_ROOT"
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["$CNI_BIN"]
    conf_dir = "$NODE_DIR/cni/net.d"
EOF
}

kubelet_config() {
  local ctrl
  # cgroup v1 here: kubelet needs the root to exist in every hierarchy, and cpuset children
  # need cpus and mems before a task may join.
  for ctrl in /sys/fs/cgroup/*/; do
    [[ $ctrl == */unified/ ]] && continue
    mkdir -p "$ctrl${CGROUP_ROOT#/}"
  done
  cat /sys/fs/cgroup/cpuset/cpuset.cpus >"/sys/fs/cgroup/cpuset$CGROUP_ROOT/cpuset.cpus"
  cat /sys/fs/cgroup/cpuset/cpuset.mems >"/sys/fs/cgroup/cpuset$CGROUP_ROOT/cpuset.mems"
  # Pods of dnsPolicy Default get this file; nothing outside the rig is resolvable.
  printf 'search cluster.local\nnameserver %s\n' "$RIG_DNS_IP" >"$NODE_DIR/resolv.conf"
  cat >"$NODE_DIR/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine has cgroup v1 and no systemd as PID 1 (docs/testing.md).
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: $CGROUP_ROOT
failSwapOn: false
containerRuntimeEndpoint: unix://$NODE_DIR/run/containerd.sock
# Each cluster's node keeps its pods' logs apart: a kubelet deletes the log folders under
# /var/log/pods of pods it does not know, those of another rig cluster's node included.
podLogsDir: $NODE_DIR/pod-logs
address: $RIG_NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $NODE_DIR/pki/ca.crt}
authorization: {mode: Webhook}
clusterDomain: cluster.local
clusterDNS: [$RIG_DNS_IP]
resolvConf: $NODE_DIR/resolv.conf
registerWithTaints:
  - {key: $RIG_REAL_NODE_KEY, value: "true", effect: NoSchedule}
# The work tree's disk is shared with everything else on the machine: evict only when it is
# really full, or a busy CI run would evict the pods under test.
evictionHard: {memory.available: 200Mi, nodefs.available: 2%, imagefs.available: 2%}
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
serializeImagePulls: false
maxPods: 60
EOF
}

up() {
  bash "$RIG_DIR/cluster.sh" status >/dev/null || die "cluster $NAME is not running (cluster.sh up)"
  mkdir -p "$NODE_DIR/run" "$NODE_DIR/log"
  bash "$RIG_DIR/images.sh" registry >&2
  network
  credentials
  forwarders
  containerd_config
  # A containerd that was killed leaves its socket behind, which would pass the wait below at
  # once and start kubelet before the new containerd listens.
  pid_of containerd >/dev/null || rm -f "$NODE_DIR/run/containerd.sock" "$NODE_DIR/run/containerd.sock.ttrpc"
  start containerd "${IN_NS[@]}" env PATH="$CONTAINERD_DIR:$PATH" \
    "$CONTAINERD_DIR/containerd" --config "$NODE_DIR/containerd/config.toml"
  wait_for containerd 60 test -S "$NODE_DIR/run/containerd.sock"
  kubelet_config
  start_kubelet
  start kube-proxy "${IN_NS[@]}" "$RIG_BIN/kube-proxy-$K8S_VERSION" \
    --kubeconfig "$NODE_DIR/admin.kubeconfig" --hostname-override "$NODE_NAME" \
    --proxy-mode iptables --cluster-cidr "$RIG_POD_CIDR" --conntrack-max-per-core 0 \
    --metrics-bind-address 127.0.0.1:10249 --healthz-bind-address 127.0.0.1:10256
  exec 3>&2
  wait_for "node $NODE_NAME" 180 node_ready
  exec 3>&-
  addons
  log "real node $NODE_NAME ready (namespace $RIG_NETNS, pods $RIG_POD_CIDR, Services $RIG_SERVICE_CIDR)"
}

# When this `up` started kubelet (epoch seconds): node_ready counts only a status it posted.
KUBELET_SINCE=0
start_kubelet() {
  pid_of kubelet >/dev/null && return 0
  KUBELET_SINCE="$(date +%s)"
  start kubelet "${IN_NS[@]}" "$RIG_BIN/kubelet-$K8S_VERSION" \
    --config "$NODE_DIR/kubelet.yaml" --kubeconfig "$NODE_DIR/kubelet.kubeconfig" \
    --root-dir "$NODE_DIR/kubelet" --cert-dir "$NODE_DIR/kubelet/pki" \
    --hostname-override "$NODE_NAME" --node-ip "$RIG_NODE_IP" \
    --node-labels "$RIG_REAL_NODE_KEY=true,topology.kubernetes.io/zone=zone-a"
}

# kubelet v1.35.4 can die as it starts ("fatal error: concurrent map iteration and map write" in
# the container manager's GetCapacity, racing its DRA plugin manager): one that exits while the
# node comes up is started again, as a service manager would. Messages go to fd 3 (stderr of
# up), since wait_for silences the check.
KUBELET_STARTS=1
node_ready() {
  if ! pid_of kubelet >/dev/null; then
    ((KUBELET_STARTS++ < 3)) || { log "kubelet keeps exiting; see $NODE_DIR/log/kubelet.log" 2>&3; exit 1; }
    log "kubelet exited (log: $NODE_DIR/log/kubelet.log); starting it again" 2>&3
    start_kubelet 2>&3
  fi
  k wait --for=condition=Ready "node/$NODE_NAME" --timeout=5s || return 1
  # The node keeps a killed kubelet's Ready for the controller manager's grace period (minutes).
  local beat
  beat="$(k get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].lastHeartbeatTime}')"
  (($(date -d "$beat" +%s) >= KUBELET_SINCE))
}

addons() {
  local f
  for f in "$RIG_DIR"/addons/*.yaml; do
    sed -e "s#@COREDNS_IMAGE@#$(image coredns)#" -e "s#@METRICS_SERVER_IMAGE@#$(image metrics-server)#" \
        -e "s#@KNP_IMAGE@#$(image kube-network-policies)#" \
        -e "s#@DNS_IP@#$RIG_DNS_IP#" -e "s#@REAL_NODE_KEY@#$RIG_REAL_NODE_KEY#" "$f"
    echo ---
  done | k apply --server-side --force-conflicts -f - >/dev/null
  k -n kube-system rollout status daemonset/kube-network-policies --timeout=300s >/dev/null
  k -n kube-system rollout status deployment/coredns --timeout=300s >/dev/null
  k -n kube-system rollout status deployment/metrics-server --timeout=300s >/dev/null
  k wait --for=condition=Available apiservice/v1beta1.metrics.k8s.io --timeout=300s >/dev/null
}

status() {
  local c
  for c in "${COMPONENTS[@]}"; do pid_of "$c" >/dev/null || { log "$c is not running"; return 1; }; done
  [[ "$(k get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]] \
    || { log "node $NODE_NAME is not Ready"; return 1; }
}

down() {
  local f id ns
  for f in kubelet kube-proxy; do stop_component "$f"; done
  # Containers first, while containerd's shims still know them; then containerd and its shims.
  if [[ -d $RUNC_ROOT/k8s.io ]]; then
    for id in $(runc --root "$RUNC_ROOT/k8s.io" list -q 2>/dev/null); do
      runc --root "$RUNC_ROOT/k8s.io" delete --force "$id" >/dev/null 2>&1 || true
    done
  fi
  stop_component containerd
  pkill -f -- "-address $NODE_DIR/run/containerd.sock" 2>/dev/null || true
  for f in "$NODE_DIR"/run/*.pid; do [[ -e $f ]] && stop_component "$(basename "$f" .pid)"; done
  # Pod network namespaces that CNI made for this cluster's pods (their addresses give them away).
  for ns in $(ip netns list 2>/dev/null | awk '/^cni-/ {print $1}'); do
    if ip -n "$ns" -4 -o addr show 2>/dev/null | grep -q " ${RIG_POD_CIDR%.0/24}\."; then
      ip netns delete "$ns" 2>/dev/null || true
    fi
  done
  # Volume and overlay mounts under the node's directories, deepest first.
  awk -v d="$NODE_DIR/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  ip netns delete "$RIG_NETNS" 2>/dev/null || true
  ip link delete "$RIG_VETH_HOST" 2>/dev/null || true
  for f in /sys/fs/cgroup/*/; do
    [[ -d $f${CGROUP_ROOT#/} ]] && find "$f${CGROUP_ROOT#/}" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  rm -rf "$NODE_DIR"
  log "real node $NODE_NAME stopped"
}

# A peer of a test listens on the host's loopback only; the node's pods reach it at the node's
# address through a Unix socket, as the API server and the registry (forwarders above).
forward() {
  local port="$1"
  if ! [[ $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then die "forward: not a port: '$port'"; fi
  pid_of api-forward >/dev/null || die "forward: real node $NODE_NAME is not up (node.sh up)"
  start "peer-$port-host" socat "UNIX-LISTEN:$NODE_DIR/run/peer-$port.sock,fork,unlink-early,mode=600" "TCP:127.0.0.1:$port"
  start "peer-$port" "${IN_NS[@]}" socat "TCP-LISTEN:$port,bind=$RIG_NODE_IP,fork,reuseaddr" "UNIX-CONNECT:$NODE_DIR/run/peer-$port.sock"
  wait_for "forwarder to 127.0.0.1:$port" 10 in_ns bash -c "exec 3<>/dev/tcp/$RIG_NODE_IP/$port"
  echo "$RIG_NODE_IP:$port"
}

unforward() {
  [[ ${1:-} =~ ^[0-9]+$ ]] || die "unforward: not a port: '${1:-}'"
  stop_component "peer-$1"
  stop_component "peer-$1-host"
}

stop_component() {
  local pid i
  pid="$(pid_of "$1")" || { rm -f "$NODE_DIR/run/$1.pid"; return 0; }
  kill "$pid" 2>/dev/null || true
  for ((i = 0; i < 20; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  # Once ours is gone its pid may be another process's: SIGKILL only what is still the component.
  if pid="$(pid_of "$1")"; then kill -9 "$pid" 2>/dev/null || true; fi
  rm -f "$NODE_DIR/run/$1.pid"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  forward) forward "${2:-}" ;;
  unforward) unforward "${2:-}" ;;
  *) die "usage: $0 up|down|status|forward PORT|unforward PORT" ;;
esac
