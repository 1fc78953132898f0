#!/usr/bin/env bash
# The real MISP enrichment service, PyPI misp-modules $MISP_MODULES_VERSION (no extras: the
# modules whose imports are met load, the others are skipped, as upstream documents):
# - $RIG_CACHE/misp-modules/wheels-$MISP_MODULES_VERSION: the service and its dependencies as
#   wheels (binary only, so the rig's image installs them without a compiler or the network);
# - $RIG_CACHE/misp-modules/venv-$MISP_MODULES_VERSION: a venv of its own installed from them,
#   for the tests that start the service on loopback.
# Each is built once and kept, locked and published by rename (lib.sh build_once). Run the venv
# as `<venv>/bin/python -m misp_modules`: bin/python links to the interpreter and finds the venv
# wherever it is, while pip's generated scripts would name the temporary build path. Prints the
# venv's path.
# shellcheck source=tests/rig/lib.sh
. "$(dirname "$0")/lib.sh"

v="$MISP_MODULES_VERSION"
wheels="$RIG_CACHE/misp-modules/wheels-$v"

# Chosen for the oldest interpreter that installs them: Debian bookworm's python3 (the image's).
download_wheels() {
  python3 -m pip download --quiet --disable-pip-version-check --no-input --only-binary=:all: \
    --python-version 3.11.2 --dest "$BUILD_OUT" "misp-modules==$v"
}

make_venv() {
  python3 -m venv "$BUILD_OUT"
  "$BUILD_OUT/bin/python" -m pip install --quiet --disable-pip-version-check --no-input --no-index \
    --find-links "$wheels" "misp-modules==$v"
}

build_once "$wheels" download_wheels
build_once "$RIG_CACHE/misp-modules/venv-$v" make_venv
echo "$RIG_CACHE/misp-modules/venv-$v"
