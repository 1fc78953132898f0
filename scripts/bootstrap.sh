#!/usr/bin/env bash
# Sets up everything the collection needs on a fresh Debian machine; safe to run again.
#   scripts/bootstrap.sh            controller toolchain (.venv) and collection path
#   scripts/bootstrap.sh --test     also the packages the test suite's real peers need
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
cd "$REPO"
step() { printf '\n==> %s\n' "$*" >&2; }

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

# Debian packages: podman hosts, MariaDB/Redis peers, debootstrap for the host image.
APT_BASE=(python3-venv git rsync openssl curl jq)
APT_TEST=(podman runc netavark aardvark-dns debootstrap uidmap slirp4netns fuse-overlayfs mariadb-server mariadb-client redis-server shellcheck maven lua5.4 rclone)
pkgs=("${APT_BASE[@]}")
[[ $want_test == 1 ]] && pkgs+=("${APT_TEST[@]}")
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

# cti.misp_platform resolves from this checkout (ansible.cfg puts .venv first in collections_path).
mkdir -p .venv/ansible_collections/cti
ln -sfn "$REPO" .venv/ansible_collections/cti/misp_platform

if [[ $want_test == 1 ]]; then
  bash tests/rig/setup.sh
fi
step "bootstrap done"
