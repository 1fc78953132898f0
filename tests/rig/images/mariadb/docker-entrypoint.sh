#!/usr/bin/env bash
# Entrypoint of the rig's MariaDB image, with the part of the official image's contract that
# roles/misp_database uses. An empty data directory is initialised once from
#   MARIADB_ROOT_PASSWORD   required; root may log in from anywhere, as with MARIADB_ROOT_HOST=%
#   MARIADB_DATABASE        created when set
#   MARIADB_USER, MARIADB_PASSWORD   a user with every privilege on MARIADB_DATABASE
# each also as VAR_FILE, a file to read the value from. It also makes the healthcheck user that
# healthcheck.sh logs in as (its password in $DATADIR/.my-healthcheck.cnf, as there). Arguments
# starting with "-" are mariadbd's; any other command runs as given.
set -euo pipefail
[[ ${1:-} != -* ]] || set -- mariadbd "$@"
[[ ${1:-} == mariadbd || ${1:-} == mysqld ]] || exec "$@"

DATADIR=/var/lib/mysql
SOCKET=/run/mysqld/mysqld.sock

log() { echo "docker-entrypoint.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# Sets and exports VAR from VAR or from the file VAR_FILE names, not both.
file_env() {
  local var="$1" file="$1_FILE"
  [[ -z ${!var:-} || -z ${!file:-} ]] || die "both $var and $file are set; set one"
  if [[ -n ${!file:-} ]]; then
    [[ -r ${!file} ]] || die "$file: cannot read ${!file}"
    printf -v "$var" '%s' "$(<"${!file}")"
  fi
  export "$var=${!var:-}"
}

sql_string() { local s="${1//\\/\\\\}"; printf "'%s'" "${s//\'/\\\'}"; }
# shellcheck disable=SC2016 # the backticks quote an SQL name
sql_name() { printf '`%s`' "${1//\`/\`\`}"; }

init_sql() {
  local health_pw="$1" host
  echo "SET @@SESSION.SQL_LOG_BIN=0;"
  # mariadb-install-db's other accounts (root@<hostname>, root@127.0.0.1, ...) go.
  echo "DELETE FROM mysql.global_priv WHERE NOT (user = 'root' AND host = 'localhost') AND user <> 'mariadb.sys';"
  echo "DELETE FROM mysql.proxies_priv WHERE NOT (user = 'root' AND host = 'localhost');"
  echo "FLUSH PRIVILEGES;"
  echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $(sql_string "$MARIADB_ROOT_PASSWORD");"
  echo "CREATE USER 'root'@'%' IDENTIFIED BY $(sql_string "$MARIADB_ROOT_PASSWORD");"
  echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
  # healthcheck.sh --connect logs in over TCP (127.0.0.1; ::1 too, as the official image allows).
  for host in 127.0.0.1 ::1 localhost; do
    echo "CREATE USER 'healthcheck'@'$host' IDENTIFIED BY '$health_pw';"
    echo "GRANT USAGE ON *.* TO 'healthcheck'@'$host';"
  done
  [[ -z $MARIADB_DATABASE ]] || echo "CREATE DATABASE IF NOT EXISTS $(sql_name "$MARIADB_DATABASE");"
  if [[ -n $MARIADB_USER ]]; then
    echo "CREATE USER $(sql_string "$MARIADB_USER")@'%' IDENTIFIED BY $(sql_string "$MARIADB_PASSWORD");"
    [[ -z $MARIADB_DATABASE ]] ||
      echo "GRANT ALL ON $(sql_name "$MARIADB_DATABASE").* TO $(sql_string "$MARIADB_USER")@'%';"
  fi
}

# Runs the server with networking off while it sets accounts up, so no client (and no
# healthcheck.sh --connect) reaches it before it is ready.
initialise() {
  local var pid health_pw
  for var in MARIADB_ROOT_PASSWORD MARIADB_DATABASE MARIADB_USER MARIADB_PASSWORD; do file_env "$var"; done
  [[ -n $MARIADB_ROOT_PASSWORD ]] ||
    die "$DATADIR is not initialised and MARIADB_ROOT_PASSWORD (or MARIADB_ROOT_PASSWORD_FILE) is not set"
  [[ $MARIADB_USER != root ]] || die "MARIADB_USER=root: MARIADB_USER is for a user besides root"
  [[ -z $MARIADB_USER || -n $MARIADB_PASSWORD ]] || die "MARIADB_USER=$MARIADB_USER is set without MARIADB_PASSWORD"
  [[ -n $MARIADB_USER || -z $MARIADB_PASSWORD ]] || die "MARIADB_PASSWORD is set without MARIADB_USER"
  log "initialising $DATADIR"
  mariadb-install-db --datadir="$DATADIR" --auth-root-authentication-method=normal --skip-test-db \
    --skip-name-resolve >/dev/null
  "$@" --skip-networking --socket="$SOCKET" --datadir="$DATADIR" &
  pid=$!
  for _ in {1..60}; do
    mariadb-admin --socket="$SOCKET" -uroot ping >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || die "the server stopped during initialisation (its log is above)"
    sleep 1
  done
  health_pw="$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
  init_sql "$health_pw" | mariadb --socket="$SOCKET" -uroot
  (umask 077 && printf '[mariadb-client]\nport=3306\nsocket=%s\nuser=healthcheck\npassword=%s\n' \
    "$SOCKET" "$health_pw" >"$DATADIR/.my-healthcheck.cnf")
  kill "$pid"
  wait "$pid" || die "the server did not stop cleanly after initialisation"
  log "initialised $DATADIR"
}

[[ -d $DATADIR/mysql ]] || initialise "$@"
exec "$@" --datadir="$DATADIR" --socket="$SOCKET"
