#!/usr/bin/env bash
# Builds a STAND-IN RKE2 airgap artifact set for tests: the files an RKE2 release publishes for
# an airgap install, laid out like the real ones, with the stand-in rke2.py as bin/rke2.
#
#   build-artifacts.sh <version> <output dir>
#
# Output: rke2.linux-amd64.tar.gz (bin/rke2, lib/systemd/system/rke2-{server,agent}.{service,env},
# share/rke2/rke2-cis-sysctl.conf: unpacked into /usr/local like install.sh does),
# rke2-images-core.linux-amd64.tar.zst and rke2-images-canal.linux-amd64.tar.zst (placeholders for
# the image tarballs) and sha256sum-amd64.txt in sha256sum format. The build is reproducible, so
# rebuilding the same version gives byte-identical files.
set -euo pipefail

[[ $# -eq 2 ]] || { echo "usage: $0 <version> <output dir>" >&2; exit 2; }
version=$1
out=$2
[[ $version =~ ^v[0-9]+\.[0-9]+\.[0-9]+\+rke2r[0-9]+$ ]] || { echo "not an RKE2 version: $version" >&2; exit 2; }

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT

mkdir -p "$out" "$stage/bundle/bin" "$stage/images"
cp -r "$here/bundle/." "$stage/bundle/"
# The hosts have python3 but no `python`.
sed -e "1s|.*|#!/usr/bin/python3|" -e "s/@RKE2_VERSION@/$version/" "$here/rke2.py" > "$stage/bundle/bin/rke2"
chmod 0755 "$stage/bundle/bin/rke2"

# Fixed owner, order and timestamps make the tarballs reproducible.
# pack <dir> <tarball> <compressor...>. Members are listed by name, not ".", so unpacking into
# /usr/local leaves its own mode alone.
pack() {
  local members
  mapfile -t members < <(ls -A "$1")
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --mode=u+rwX,go+rX,go-w \
    -C "$1" -c "${members[@]}" | "${@:3}" > "$2"
}
pack "$stage/bundle" "$out/rke2.linux-amd64.tar.gz" gzip -n
for set in core canal; do
  mkdir -p "$stage/images/$set"
  printf 'STAND-IN image set %s for rke2 %s; no real images inside.\n' "$set" "$version" > "$stage/images/$set/README"
  pack "$stage/images/$set" "$out/rke2-images-$set.linux-amd64.tar.zst" zstd -q
done
(cd "$out" && sha256sum rke2.linux-amd64.tar.gz rke2-images-*.linux-amd64.tar.zst > sha256sum-amd64.txt)
