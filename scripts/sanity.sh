#!/usr/bin/env bash
# Runs `ansible-test sanity` on the collection in the ansible_collections/cti/misp_platform
# layout it requires, offline except for PyPI. Extra arguments go to ansible-test.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
export PATH="$REPO/.venv/bin:$PATH"

# ansible-test bootstraps pip in its venvs with a get-pip script from a host this machine cannot
# reach; it uses a cached copy when one exists. This stand-in installs pip from ensurepip and then
# runs pip install with the arguments ansible-test passes (ansible-test clears the environment,
# so the CA bundle is passed explicitly).
ca="${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}"
cache="$HOME/.ansible/test/cache"
mkdir -p "$cache"
pip_version="$(python3 - <<'PY'
import re, pathlib, ansible_test
req = pathlib.Path(ansible_test.__file__).parent / "_data" / "requirements" / "ansible-test.txt"
pins = {}
for path in req.parent.glob("*.txt"):
    for m in re.finditer(r"^pip==([\d.]+)", path.read_text(), re.M):
        pins[m.group(1)] = True
print(" ".join(pins) or "24.2")
PY
)"
for v in $pip_version 24.2 25.0.1 25.1.1; do
  cat > "$cache/get_pip_${v//./_}.py" <<PY
"""Stand-in for get-pip-$v.py (written by scripts/sanity.sh): ensurepip, then pip install."""
import ensurepip
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
ensurepip.bootstrap(upgrade=True)
subprocess.check_call([sys.executable, "-m", "pip", "install", "--cert", "$ca", *args])
PY
done

layout="$(mktemp -d)"
trap 'rm -rf "$layout"' EXIT
dest="$layout/ansible_collections/cti/misp_platform"
mkdir -p "$dest"
# Tracked and untracked-but-not-ignored files, as git sees the checkout.
(cd "$REPO" && git ls-files -z --cached --others --exclude-standard) |
  (cd "$REPO" && rsync -a --from0 --files-from=- ./ "$dest/")
# Helm chart templates of the test doubles are Go templates that yield YAML only once rendered
# (kubernetes.core lists such files in sanity ignore files, which ansible-lint's production
# profile refuses for yamllint): ansible-test does not see them.
rm -rf "$dest"/tests/doubles/charts/*/templates
# Dependencies whose doc fragments and module_utils the plugins use (validate-modules, import).
for dependency in kubernetes/core community/hashi_vault; do
  mkdir -p "$layout/ansible_collections/$dependency"
  cp -a "$REPO/.venv/lib/python3.11/site-packages/ansible_collections/$dependency/." "$layout/ansible_collections/$dependency/"
done
cd "$dest"
git init -q && git add -A >/dev/null
ansible-test sanity --venv --python 3.11 --requirements --color no "$@"
