#!/usr/bin/env bash
# Debian bookworm hosts that boot systemd under podman, for the podman-driver molecule scenarios.
#   tests/rig/hosts.sh setup    podman settings, base image (built once, cached as a rootfs tarball)
#   tests/rig/hosts.sh status   is podman set up, is the current image present
#   tests/rig/hosts.sh clean    removes the rig's containers and networks; keeps the cache
# shellcheck source=tests/rig/lib.sh
. "$(dirname "$0")/lib.sh"

IMAGE=localhost/cti-misp-rig-debian:bookworm
SUITE=bookworm
# Every rig container carries this label (scenarios add it with extra_opts); `clean` uses it.
RIG_LABEL=cti.misp.rig
# Scenario networks are named with this prefix so `clean` finds them.
NET_PREFIX=cti-rig-
CONF=/etc/containers/containers.conf
IMAGES="$RIG_CACHE/images"

# Everything the roles install on hosts is in the image, so tests never download a package.
PACKAGES=(
  systemd systemd-sysv dbus libpam-systemd
  python3 python3-apt sudo lsb-release ca-certificates curl tar gzip openssl
  iproute2 iptables iputils-ping kmod procps util-linux mount
  chrony open-iscsi nfs-common cryptsetup multipath-tools
)
# Units that cannot work in an unprivileged container: nobody logs in on the console (it
# would hold the tty of `podman run -t`), and mounting rpc_pipefs needs CAP_SYS_ADMIN.
MASKED_UNITS=(console-getty.service run-rpc_pipefs.mount)

usage() { sed -n '2,5s/^# \{0,1\}//p' "$0"; exit 2; }

# True when containers.conf has every key of ours with our value.
conf_current() {
  [[ -f $CONF ]] && python3 - "$RIG_DIR/containers.conf" "$CONF" <<'PY'
import sys, tomllib
want = tomllib.load(open(sys.argv[1], "rb"))
have = tomllib.load(open(sys.argv[2], "rb"))
sys.exit(any(have.get(s, {}).get(k) != v for s, kv in want.items() for k, v in kv.items()))
PY
}

# Sets our keys in containers.conf; other sections and keys stay as they are.
install_conf() {
  if conf_current; then log "$CONF: up to date"; return; fi
  [[ $EUID == 0 ]] || die "$CONF lacks the rig's settings and only root can write it"
  if [[ ! -f $CONF ]]; then
    install -D -m 0644 "$RIG_DIR/containers.conf" "$CONF"
    log "$CONF: installed"
    return
  fi
  python3 - "$RIG_DIR/containers.conf" "$CONF" <<'PY'
import re, sys, tomllib

src, dst = sys.argv[1], sys.argv[2]
want, section = {}, None
for line in open(src):
    if m := re.match(r"\s*\[(\w+)\]", line):
        section = m[1]
    elif m := re.match(r"\s*(\w+)\s*=", line):
        want.setdefault(section, {})[m[1]] = line.rstrip("\n")
out, section, skip = [], None, False
for line in open(dst).read().splitlines():
    if skip:  # the rest of a multi-line value we replaced
        skip = "]" not in line
        continue
    if m := re.match(r"\s*\[(\w+)\]", line):
        section = m[1]
        out.append(line)
        out.extend(want.get(section, {}).values())
        continue
    m = re.match(r"\s*(\w+)\s*=\s*(.*)", line)
    if m and m[1] in want.get(section, {}):
        skip = m[2].startswith("[") and "]" not in m[2]
        continue
    out.append(line)
seen = {re.match(r"\s*\[(\w+)\]", line)[1] for line in out if re.match(r"\s*\[(\w+)\]", line)}
for section in [s for s in want if s not in seen]:
    out += ["", f"[{section}]", *want[section].values()]
text = "\n".join(out).lstrip("\n") + "\n"
tomllib.loads(text)
open(dst, "w").write(text)
PY
  log "$CONF: rig settings written"
}

build_rootfs() {
  local root=$1 mirror=$2 include
  include="$(IFS=,; echo "${PACKAGES[*]}")"
  debootstrap --variant=minbase --include="$include" "$SUITE" "$root" "$mirror"
}

customize_rootfs() {
  local root=$1
  systemctl --root="$root" mask "${MASKED_UNITS[@]}"
  # Empty: systemd gives each container its own machine id at boot.
  : >"$root/etc/machine-id"
  rm -f "$root"/var/cache/apt/archives/*.deb
}

# Cache key: what goes into the image, not the rest of this script.
image_hash() {
  { echo "$SUITE"; printf '%s\n' "${PACKAGES[@]}" "${MASKED_UNITS[@]}"; declare -f build_rootfs customize_rootfs; } |
    sha256sum | cut -c1-16
}

image_label() { podman image inspect --format "{{index .Labels \"$RIG_LABEL.hash\"}}" "$IMAGE" 2>/dev/null || true; }

# Unmounts what a failed debootstrap may have left mounted before deleting its tree.
remove_tree() {
  local m
  awk -v d="$1/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf "$1"
}

build_tarball() {
  local tarball=$1 mirror tmp start=$SECONDS
  mirror="$(debian_mirror "$SUITE")"
  tmp="$(mktemp -d "$IMAGES/build.XXXXXX")"
  # shellcheck disable=SC2064 # expand now: the trap must remove this build's tree
  trap "remove_tree '$tmp'" EXIT
  log "debootstrap $SUITE from $mirror (cold: about 1.5 min)"
  build_rootfs "$tmp/root" "$mirror" >"$tmp/debootstrap.log" 2>&1 ||
    { tail -n 20 "$tmp/debootstrap.log" >&2; die "debootstrap failed"; }
  customize_rootfs "$tmp/root" >>"$tmp/debootstrap.log" 2>&1
  tar -C "$tmp/root" -c . >"$tmp/rootfs.tar"
  mv "$tmp/rootfs.tar" "$tarball"
  remove_tree "$tmp"
  trap - EXIT
  log "rootfs tarball built in $((SECONDS - start))s: $tarball"
}

# Boots a throwaway host the way the scenarios do and checks systemd reaches running.
boot_check() {
  local name="${NET_PREFIX}smoke-$$" state
  # shellcheck disable=SC2064 # expand now: the container name is fixed
  trap "podman rm -f -t 0 '$name' >/dev/null 2>&1" EXIT
  podman run -d --name "$name" --label "$RIG_LABEL=hosts" --systemd=always "$IMAGE" /sbin/init >/dev/null
  # Empty until systemd's bus is up; then --wait returns once start-up has finished.
  for _ in {1..60}; do
    state="$(podman exec "$name" timeout 60 systemctl is-system-running --wait 2>/dev/null || true)"
    [[ -n $state ]] && break
    sleep 1
  done
  [[ $state == running ]] ||
    die "systemd in $IMAGE is '$state': $(podman exec "$name" systemctl --failed --no-legend --plain | tr '\n' ' ')"
  podman rm -f -t 0 "$name" >/dev/null
  trap - EXIT
  log "$IMAGE boots systemd as PID 1 (state: $state)"
}

setup() {
  local tool
  for tool in podman runc debootstrap /usr/lib/podman/netavark /usr/lib/podman/aardvark-dns; do
    command -v "$tool" >/dev/null || die "$tool missing: needs the Debian packages podman runc netavark aardvark-dns debootstrap"
  done
  with_lock containers-conf install_conf
  local runtime
  runtime="$(podman info --format '{{.Host.OCIRuntime.Name}}')"
  [[ $runtime == runc ]] || die "podman uses $runtime, not runc; check $CONF"

  # One set-up at a time builds and imports the image; another waits and then finds it present.
  with_lock host-image ensure_image
  podman run --rm --label "$RIG_LABEL=hosts" "$IMAGE" true ||
    die "podman cannot run $IMAGE with $runtime"
  log "hosts ready: $IMAGE"
}

ensure_image() {
  local hash tarball
  mkdir -p "$IMAGES"
  hash="$(image_hash)"
  tarball="$IMAGES/debian-$SUITE-$hash.tar"
  if [[ $(image_label) == "$hash" ]]; then
    log "$IMAGE: present ($hash)"
  else
    if [[ -f $tarball ]]; then
      log "rootfs tarball cached: $tarball"
    else
      build_tarball "$tarball"
      # Older tarballs are a few hundred MB each and never used again.
      find "$IMAGES" -maxdepth 1 -name "debian-$SUITE-*.tar" ! -name "${tarball##*/}" -delete
    fi
    if podman image exists "$IMAGE"; then
      podman rmi "$IMAGE" >/dev/null || die "old $IMAGE is in use; run tests/rig/hosts.sh clean"
    fi
    podman import --quiet --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL SIGRTMIN+3' \
      --change "LABEL $RIG_LABEL.hash=$hash" "$tarball" "$IMAGE" >/dev/null
    log "$IMAGE: imported ($hash)"
    boot_check
  fi
}

status() {
  local ok=0 hash info version runtime network
  if info="$(podman info --format '{{.Version.Version}} {{.Host.OCIRuntime.Name}} {{.Host.NetworkBackend}}' 2>&1)"; then
    read -r version runtime network <<<"$info"
    log "podman $version, runtime $runtime, network $network"
  else
    log "podman: not working: $info"; ok=1
  fi
  if conf_current; then log "$CONF: rig settings present"; else log "$CONF: rig settings missing"; ok=1; fi
  hash="$(image_hash)"
  case "$(image_label)" in
    "$hash") log "$IMAGE: present ($hash)" ;;
    "") log "$IMAGE: missing"; ok=1 ;;
    *) log "$IMAGE: stale (want $hash)"; ok=1 ;;
  esac
  if [[ -f $IMAGES/debian-$SUITE-$hash.tar ]]; then log "rootfs tarball cached"; else log "rootfs tarball not cached"; fi
  log "rig containers: $(podman ps -aq --filter "label=$RIG_LABEL" 2>/dev/null | wc -l)"
  return "$ok"
}

clean() {
  local ids nets
  ids="$(podman ps -aq --filter "label=$RIG_LABEL")"
  # shellcheck disable=SC2086 # one id per word
  [[ -z $ids ]] || podman rm -f -t 0 $ids >/dev/null
  nets="$(podman network ls --format '{{.Name}}' | grep "^$NET_PREFIX" || true)"
  # shellcheck disable=SC2086 # one name per word
  [[ -z $nets ]] || podman network rm $nets >/dev/null
  log "removed $(wc -w <<<"$ids") containers and $(wc -w <<<"$nets") networks"
}

case "${1:-}" in
  setup) setup ;;
  status) status ;;
  clean) clean ;;
  *) usage ;;
esac
