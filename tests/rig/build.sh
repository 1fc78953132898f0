#!/usr/bin/env bash
# Builds the Kubernetes control plane, etcd, kwok/kwokctl and Helm 3 from the Go module proxy.
# Every binary lands in $RIG_CACHE/bin/<name>-<version>; one that exists is not rebuilt.
. "$(dirname "$0")/lib.sh"

export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
# Upstream build flags (hack/lib/golang.sh).
GO_BUILD=(go build -trimpath -tags "selinux,notest")
WORK="$RIG_CACHE/src"
mkdir -p "$WORK"

have() { [[ -x "$RIG_BIN/$1" ]]; }

build_kubernetes() {
  local v="$K8S_VERSION" minor mod dir
  local bins=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
  local missing=0 b
  for b in "${bins[@]}"; do have "$b-$v" || missing=1; done
  [[ $missing == 0 ]] && { log "kubernetes $v: cached"; return; }
  log "kubernetes $v: building ${bins[*]} (cold: about 6 min on 2 idle cores)"
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
  local ld="" key val
  for key in gitVersion gitMajor gitMinor gitTreeState buildDate gitCommit; do
    case $key in
      gitVersion) val="$v" ;; gitMajor) val=1 ;; gitMinor) val="$minor" ;;
      gitTreeState) val=clean ;; buildDate) val=1970-01-01T00:00:00Z ;; gitCommit) val=0000000000000000000000000000000000000000 ;;
    esac
    ld+=" -X k8s.io/client-go/pkg/version.$key=$val -X k8s.io/component-base/version.$key=$val"
  done
  (cd "$dir" && go mod download k8s.io/kubernetes && \
    "${GO_BUILD[@]}" -mod=mod -ldflags "-s -w$ld" -o "$dir/out/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
  for b in "${bins[@]}"; do mv "$dir/out/$b" "$RIG_BIN/$b-$v"; done
}

build_etcd() {
  local v="$ETCD_VERSION" dir
  have "etcd-$v" && { log "etcd $v: cached"; return; }
  log "etcd $v: building"
  dir="$WORK/etcd-$v"; mkdir -p "$dir"
  printf 'module cti.local/rig/etcd\ngo 1.25.0\nrequire go.etcd.io/etcd/server/v3 %s\n' "$v" > "$dir/go.mod"
  (cd "$dir" && go mod download go.etcd.io/etcd/server/v3 && \
    "${GO_BUILD[@]}" -mod=mod -ldflags "-s -w" -o "$RIG_BIN/etcd-$v" go.etcd.io/etcd/server/v3)
}

build_kwok() {
  local v="$KWOK_VERSION"
  have "kwok-$v" && have "kwokctl-$v" && { log "kwok $v: cached"; return; }
  log "kwok $v: building"
  local tmp="$WORK/kwok-$v"; mkdir -p "$tmp"
  GOBIN="$tmp" go install -trimpath -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$v" \
    "sigs.k8s.io/kwok/cmd/kwok@$v" "sigs.k8s.io/kwok/cmd/kwokctl@$v"
  mv "$tmp/kwok" "$RIG_BIN/kwok-$v"; mv "$tmp/kwokctl" "$RIG_BIN/kwokctl-$v"
}

build_helm() {
  local v="$HELM_VERSION"
  have "helm-$v" && { log "helm $v: cached"; return; }
  log "helm $v: building"
  local tmp="$WORK/helm-$v"; mkdir -p "$tmp"
  GOBIN="$tmp" go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$v -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
    "helm.sh/helm/v3/cmd/helm@$v"
  mv "$tmp/helm" "$RIG_BIN/helm-$v"
}

targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(etcd kwok helm kubernetes)
for t in "${targets[@]}"; do "build_$t"; done
log "binaries ready in $RIG_BIN"
