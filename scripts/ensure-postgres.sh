#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers at the URL the tests use
# (TEST_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test).
# On a machine where it is already running this does nothing. Otherwise it
# starts an installed Debian cluster, or installs Debian's postgresql package,
# opens loopback trust authentication for the test user and creates the test
# database. It needs root only for the install path.
set -euo pipefail

host=127.0.0.1 port=5432 db=test user=postgres

ready() { pg_isready -q -h "$host" -p "$port" 2>/dev/null; }
say() { echo "ensure-postgres: $*" >&2; }

if command -v pg_isready >/dev/null && ready; then
  exit 0
fi

if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    say "PostgreSQL is not running and not installed; run as root to install it, or set TEST_DATABASE_URL"
    exit 1
  fi
  say "installing Debian's postgresql package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq postgresql >/dev/null
fi

ver=$(ls /etc/postgresql | sort -V | tail -n1)
conf=/etc/postgresql/$ver/main
# Loopback trust for tests: the same setup the development machines have.
if ! grep -q '^host all all 127.0.0.1/32 trust' "$conf/pg_hba.conf"; then
  sed -i '1i host all all 127.0.0.1/32 trust' "$conf/pg_hba.conf"
fi
say "starting PostgreSQL $ver"
pg_ctlcluster --skip-systemctl-redirect "$ver" main start 2>/dev/null || pg_ctlcluster "$ver" main start || true
for _ in $(seq 1 30); do ready && break; sleep 1; done
ready || { say "PostgreSQL did not come up"; exit 1; }
psql -h "$host" -p "$port" -U "$user" -d postgres -tAc "select 1 from pg_database where datname='$db'" | grep -q 1 ||
  psql -h "$host" -p "$port" -U "$user" -d postgres -c "create database $db" >/dev/null
say "PostgreSQL $ver ready on $host:$port"
