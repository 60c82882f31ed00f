#!/usr/bin/env bash
# Start Debian's PostgreSQL on loopback for the Optuna RDB tests (installing it if needed) and print its URL.
# Needs root (apt-get, runuser). Used by .ci/run:  export TD3EXP_POSTGRES_URL=$(bash tests/postgres_setup.sh)
set -euo pipefail
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
pg_lsclusters -h | grep -q "^$version main" || pg_createcluster "$version" main >&2
pg_lsclusters -h | grep -q "^$version main .* online" || pg_ctlcluster "$version" main start >&2
port=$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $3}')
psql_postgres() { runuser -u postgres -- psql -p "$port" -qtAc "$1"; }
[ "$(psql_postgres "SELECT 1 FROM pg_roles WHERE rolname = 'td3exp'")" = 1 ] ||
  psql_postgres "CREATE ROLE td3exp LOGIN PASSWORD 'td3exp'" >&2
[ "$(psql_postgres "SELECT 1 FROM pg_database WHERE datname = 'td3exp'")" = 1 ] ||
  runuser -u postgres -- createdb -p "$port" -O td3exp td3exp >&2
echo "postgresql+psycopg2://td3exp:td3exp@127.0.0.1:$port/td3exp"  # psycopg2-binary is the pinned driver
