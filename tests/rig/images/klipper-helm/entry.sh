#!/bin/bash
# Stand-in of klipper-helm's entry script, for helm-controller's Jobs on the rig. helm-controller
# passes `install [--namespace NS] [--create-namespace] [--version V] [--set K=V...]` or `delete`,
# the chart as NAME/CHART/REPO/VERSION or as inline content in /chart/$NAME.tgz.base64, and the
# values files in /config (values-0-* from the HelmChart, then values-1-* from the
# HelmChartConfig; later files win, as with klipper-helm's sorted --values list).
set -euo pipefail

action="${1:?install or delete}"
shift
namespace="${TARGET_NAMESPACE:-${CHART_NAMESPACE:-default}}"
export HELM_DRIVER="${HELM_DRIVER:-secret}"

chart="${CHART:-}"
if [[ -f "/chart/$NAME.tgz.base64" ]]; then
  base64 -d "/chart/$NAME.tgz.base64" >"/tmp/$NAME.tgz"
  chart="/tmp/$NAME.tgz"
elif [[ -n ${REPO:-} ]]; then
  echo "klipper-helm stand-in: chart repositories are not reachable on the rig ($REPO); give spec.chartContent" >&2
  exit 1
fi
[[ -n $chart ]] || { echo "klipper-helm stand-in: neither CHART nor /chart/$NAME.tgz.base64 given" >&2; exit 1; }

values=()
if [[ -d /config ]]; then
  while IFS= read -r f; do values+=(--values "$f"); done < <(find /config/ -maxdepth 1 -name 'values-*.yaml' | LC_ALL=C sort)
fi

case "$action" in
  install)
    # A release left failed or pending by an interrupted Job is removed first, as klipper-helm does.
    status="$(helm status "$NAME" --namespace "$namespace" -o json 2>/dev/null | sed -n 's/.*"status":"\([a-z-]*\)".*/\1/p' | head -n 1 || true)"
    case "$status" in
      failed | pending-install) helm uninstall "$NAME" --namespace "$namespace" --wait ;;
    esac
    args=()
    while (($#)); do
      case "$1" in
        --namespace) shift 2 ;;
        *) args+=("$1"); shift ;;
      esac
    done
    exec helm upgrade --install "$NAME" "$chart" --namespace "$namespace" "${values[@]}" "${args[@]}"
    ;;
  delete)
    # A release that is already gone is deleted; one that stays is an error.
    if ! helm uninstall "$NAME" --namespace "$namespace" --wait && helm status "$NAME" --namespace "$namespace" >/dev/null 2>&1; then
      exit 1
    fi
    ;;
  *)
    echo "klipper-helm stand-in: unknown action '$action' (install or delete)" >&2
    exit 1
    ;;
esac
