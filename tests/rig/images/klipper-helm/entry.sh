#!/usr/bin/env bash
# Stand-in of klipper-helm's entry script, for helm-controller's Jobs on the rig. helm-controller
# passes `install [--namespace NS] [--create-namespace] [--version V] [--set K=V...]` or `delete`,
# the chart as NAME/CHART/REPO/VERSION or as inline content in /chart/$NAME.tgz.base64, the
# values files in /config (values-0-* from the HelmChart, then values-1-* from the
# HelmChartConfig; later files win), and the contract of its chart controller: act only when the
# release is still at EXPECTED_RELEASE_REVISION, and label the release it makes with CONFIG_HASH
# (helmcharts.helm.cattle.io/configHash), which is how helm-controller knows it is done.
set -euo pipefail

action="${1:?install or delete}"
shift
namespace="${TARGET_NAMESPACE:-${CHART_NAMESPACE:-default}}"
export HELM_DRIVER="${HELM_DRIVER:-secret}"

# The release's latest revision and status ("0 none" when there is none).
release() {
  local json
  json="$(helm status "$NAME" --namespace "$namespace" -o json 2>/dev/null)" || { echo "0 none"; return; }
  echo "$(sed -n 's/.*"version":\([0-9][0-9]*\).*/\1/p' <<<"$json") $(sed -n 's/.*"status":"\([a-z-]*\)".*/\1/p' <<<"$json")"
}

if [[ $action == delete ]]; then
  # A release that is already gone is deleted; one that stays is an error.
  if ! helm uninstall "$NAME" --namespace "$namespace" --wait && helm status "$NAME" --namespace "$namespace" >/dev/null 2>&1; then
    exit 1
  fi
  exit 0
fi
[[ $action == install ]] || { echo "klipper-helm stand-in: unknown action '$action' (install or delete)" >&2; exit 1; }

chart="${CHART:-}"
if [[ -f "/chart/$NAME.tgz.base64" ]]; then
  base64 -d "/chart/$NAME.tgz.base64" >"/tmp/$NAME.tgz"
  chart="/tmp/$NAME.tgz"
elif [[ -n ${REPO:-} ]]; then
  echo "klipper-helm stand-in: chart repositories are not reachable on the rig ($REPO); give spec.chartContent" >&2
  exit 1
fi
[[ -n $chart ]] || { echo "klipper-helm stand-in: neither CHART nor /chart/$NAME.tgz.base64 given" >&2; exit 1; }

read -r revision status <<<"$(release)"
revision="${revision:-0}"
if [[ -n ${EXPECTED_RELEASE_REVISION:-} && $revision != "$EXPECTED_RELEASE_REVISION" ]]; then
  echo "release $NAME is at revision $revision, not $EXPECTED_RELEASE_REVISION: another change came first, nothing done"
  exit 0
fi
# A release left failed or pending by an interrupted Job is removed first.
case "${status:-}" in
  failed | pending-install) helm uninstall "$NAME" --namespace "$namespace" --wait ;;
esac

values=()
if [[ -d /config ]]; then
  while IFS= read -r f; do values+=(--values "$f"); done < <(find /config/ -maxdepth 1 -name 'values-*.yaml' | LC_ALL=C sort)
fi
args=()
while (($#)); do
  case "$1" in
    --namespace) shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
labels=()
[[ -z ${CONFIG_HASH:-} ]] || labels=(--labels "helmcharts.helm.cattle.io/configHash=$CONFIG_HASH")
exec helm upgrade --install "$NAME" "$chart" --namespace "$namespace" "${labels[@]}" "${values[@]}" "${args[@]}"
