#!/usr/bin/env bash
# healthcheck.sh of the rig's MariaDB image: the checks of the official image's script that
# roles/misp_database's probes run, as the healthcheck user the entrypoint made.
#   --connect             a login over TCP succeeds: the server is up and past its initialisation
#                         (which runs with networking off)
#   --innodb_initialized  InnoDB is available
# Exits 0 when every check given passes, else 1 naming the first that failed.
set -uo pipefail
cnf=(--defaults-extra-file=/var/lib/mysql/.my-healthcheck.cnf)
(($#)) || { echo "usage: healthcheck.sh --connect|--innodb_initialized..." >&2; exit 2; }
for check in "$@"; do
  case $check in
    --connect) mariadb "${cnf[@]}" --protocol=tcp --host=127.0.0.1 -e 'SELECT 1' >/dev/null ;;
    --innodb_initialized)
      [[ "$(mariadb "${cnf[@]}" -sNe "SELECT 1 FROM information_schema.ENGINES WHERE engine = 'innodb' AND support IN ('YES', 'DEFAULT', 'ENABLED')")" == 1 ]] ;;
    *) echo "healthcheck.sh: unknown check $check" >&2; exit 2 ;;
  esac || { echo "healthcheck.sh: $check failed" >&2; exit 1; }
done
