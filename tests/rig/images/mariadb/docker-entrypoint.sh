#!/usr/bin/env bash
# Initialises an empty data directory from MARIADB_ROOT_PASSWORD, MARIADB_DATABASE,
# MARIADB_USER and MARIADB_PASSWORD (each also as *_FILE, a path to read it from), creates the
# healthcheck user healthcheck.sh connects as, then runs mariadbd with the given arguments.
# Arguments starting with "-" are passed to mariadbd, as with the official image.
set -euo pipefail
[[ ${1:-} == -* ]] && set -- mariadbd "$@"
[[ $1 == mariadbd || $1 == mysqld ]] || exec "$@"

DATADIR=/var/lib/mysql
SOCKET=/run/mysqld/mysqld.sock

# VAR or VAR_FILE, not both.
file_env() {
  local var="$1" file="${1}_FILE"
  if [[ -n ${!var:-} && -n ${!file:-} ]]; then
    echo "error: both $var and $file are set" >&2; exit 1
  fi
  if [[ -n ${!file:-} ]]; then printf -v "$var" '%s' "$(<"${!file}")"; fi
  export "$var=${!var:-}"
}

sql_string() { local s="${1//\\/\\\\}"; printf "'%s'" "${s//\'/\\\'}"; }

initialise() {
  file_env MARIADB_ROOT_PASSWORD; file_env MARIADB_DATABASE; file_env MARIADB_USER; file_env MARIADB_PASSWORD
  [[ -n $MARIADB_ROOT_PASSWORD ]] || { echo "error: database is uninitialised and MARIADB_ROOT_PASSWORD is not set" >&2; exit 1; }
  echo "initialising $DATADIR"
  mariadb-install-db --datadir="$DATADIR" --auth-root-authentication-method=normal --skip-test-db \
    --skip-name-resolve >/dev/null
  "$@" --skip-networking --socket="$SOCKET" --datadir="$DATADIR" &
  local pid=$!
  for _ in $(seq 1 60); do mariadb-admin --socket="$SOCKET" -uroot ping >/dev/null 2>&1 && break; sleep 1; done
  local health_pw
  health_pw="$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
  {
    echo "SET @@SESSION.SQL_LOG_BIN=0;"
    echo "DELETE FROM mysql.global_priv WHERE user = '' OR host NOT IN ('localhost', '%');"
    echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $(sql_string "$MARIADB_ROOT_PASSWORD");"
    echo "CREATE USER 'root'@'%' IDENTIFIED BY $(sql_string "$MARIADB_ROOT_PASSWORD"); GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
    echo "CREATE USER 'healthcheck'@'localhost' IDENTIFIED BY '$health_pw'; GRANT USAGE ON *.* TO 'healthcheck'@'localhost';"
    if [[ -n $MARIADB_DATABASE ]]; then echo "CREATE DATABASE IF NOT EXISTS \`$MARIADB_DATABASE\`;"; fi
    if [[ -n $MARIADB_USER && -n $MARIADB_PASSWORD ]]; then
      echo "CREATE USER $(sql_string "$MARIADB_USER")@'%' IDENTIFIED BY $(sql_string "$MARIADB_PASSWORD");"
      [[ -z $MARIADB_DATABASE ]] || echo "GRANT ALL ON \`$MARIADB_DATABASE\`.* TO $(sql_string "$MARIADB_USER")@'%';"
    fi
    echo "FLUSH PRIVILEGES;"
  } | mariadb --socket="$SOCKET" -uroot
  printf '[mariadb-client]\nsocket=%s\nuser=healthcheck\npassword=%s\n' "$SOCKET" "$health_pw" >"$DATADIR/.my-healthcheck.cnf"
  chmod 0600 "$DATADIR/.my-healthcheck.cnf"
  mariadb-admin --socket="$SOCKET" -uroot --password="$MARIADB_ROOT_PASSWORD" shutdown
  wait "$pid"
  echo "initialised"
}

[[ -d $DATADIR/mysql ]] || initialise "$@"
exec "$@" --datadir="$DATADIR" --socket="$SOCKET"
