#!/usr/bin/env bash
# Sets up everything the collection needs on a fresh Debian machine; safe to run again.
#   scripts/bootstrap.sh            controller toolchain (.venv) and collection path
#   scripts/bootstrap.sh --rig      also the local cluster: its Go builds, podman, the real
#                                   node's packages and images (what scripts/site.sh needs)
#   scripts/bootstrap.sh --test     also every real peer of the test suite (tests/rig/setup.sh)
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
cd "$REPO"
step() { printf '\n==> %s\n' "$*" >&2; }

mode="${1:-}"
[[ -z $mode || $mode == --rig || $mode == --test ]] || { echo "usage: $0 [--rig|--test]" >&2; exit 2; }

# Debian packages. The rig: podman and debootstrap build the hosts and images; runc, socat,
# iptables, conntrack and catatonit (the pause image) serve the real node. The tests: MariaDB
# and Redis peers, Maven for Keycloak and S3Proxy, linters, PHP to load the rendered PHP files.
APT_BASE=(python3-venv git rsync openssl curl jq)
APT_RIG=(podman runc netavark aardvark-dns debootstrap uidmap slirp4netns fuse-overlayfs socat iptables conntrack catatonit)
APT_TEST=(mariadb-server mariadb-client redis-server shellcheck maven lua5.4 rclone php-cli)
pkgs=("${APT_BASE[@]}")
[[ -n $mode ]] && pkgs+=("${APT_RIG[@]}")
[[ $mode == --test ]] && pkgs+=("${APT_TEST[@]}")
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  step "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Python toolchain, reinstalled only when the pins change.
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
stamp=".venv/.pins-$(cat requirements.txt constraints.txt | sha256sum | cut -c1-16)"
if [[ ! -e "$stamp" ]]; then
  step "creating .venv with the pinned toolchain (about 2 min)"
  [[ -x .venv/bin/python ]] || "$PY" -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt -c constraints.txt
  rm -f .venv/.pins-*; touch "$stamp"
fi

# checkov (the policy scan of tests/integration/test_policy_scan.py) pins versions the toolchain's
# constraints cannot take (packaging<24): a venv of its own, locked by constraints-checkov.txt.
checkov_stamp=".venv/checkov/.pins-$(sha256sum constraints-checkov.txt | cut -c1-16)"
if [[ ! -e "$checkov_stamp" ]]; then
  step "installing checkov into .venv/checkov"
  [[ -x .venv/checkov/bin/python ]] || "$PY" -m venv .venv/checkov
  .venv/checkov/bin/pip install -q --disable-pip-version-check checkov -c constraints-checkov.txt
  rm -f .venv/checkov/.pins-*; touch "$checkov_stamp"
fi

# cti.misp_platform resolves from this checkout (ansible.cfg puts .venv first in collections_path).
mkdir -p .venv/ansible_collections/cti
ln -sfn "$REPO" .venv/ansible_collections/cti/misp_platform
# Byte-compiled as pip compiles what it installs: Ansible loads filter and lookup plugins anew in
# every task's forked worker, and with PYTHONDONTWRITEBYTECODE (set on this machine) it compiled
# their sources each time, about 250 files per MISP layer run. Only files changed since the last
# compile are compiled again; ansible-galaxy's build leaves __pycache__ out.
.venv/bin/python -m compileall -q plugins

case $mode in
  --test) bash tests/rig/setup.sh ;;
  --rig) bash tests/rig/build.sh && bash tests/rig/hosts.sh setup && bash tests/rig/images.sh build ;;
esac
step "bootstrap done"
