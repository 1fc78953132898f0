#!/usr/bin/env bash
# The checks of the official image's healthcheck.sh that roles/misp_database uses, as the
# healthcheck user the entrypoint created: --connect (the server accepts a connection) and
# --innodb_initialized (InnoDB is available). Exit 0 when every check given passes.
set -euo pipefail
cnf=(--defaults-extra-file=/var/lib/mysql/.my-healthcheck.cnf)
for check in "$@"; do
  case $check in
    --connect) mariadb "${cnf[@]}" -e 'SELECT 1' >/dev/null ;;
    --innodb_initialized)
      [[ "$(mariadb "${cnf[@]}" -sNe "SELECT 1 FROM information_schema.ENGINES WHERE engine = 'innodb' AND support IN ('YES', 'DEFAULT', 'ENABLED')")" == 1 ]] ;;
    *) echo "healthcheck.sh: unknown check $check" >&2; exit 2 ;;
  esac
done
