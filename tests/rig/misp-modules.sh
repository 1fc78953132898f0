#!/usr/bin/env bash
# Installs the real MISP enrichment service, PyPI misp-modules $MISP_MODULES_VERSION (no extras:
# the modules whose imports are met load, the others are skipped as in MISP's own image), into a
# venv of its own: $RIG_CACHE/misp-modules/venv-$MISP_MODULES_VERSION, built once and kept.
# Locked and published by rename (lib.sh build_once). Run it as `<venv>/bin/python -m
# misp_modules`: bin/python is a link to the system python and finds the venv wherever it is,
# while pip's generated scripts would name the temporary build path. Prints the venv's path.
# shellcheck source=tests/rig/lib.sh
. "$(dirname "$0")/lib.sh"

v="$MISP_MODULES_VERSION"

make_venv() {
  python3 -m venv "$BUILD_OUT"
  "$BUILD_OUT/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "misp-modules==$v"
}

build_once "$RIG_CACHE/misp-modules/venv-$v" make_venv
echo "$RIG_CACHE/misp-modules/venv-$v"
