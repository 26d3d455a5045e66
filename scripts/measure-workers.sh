#!/usr/bin/env bash
# Measures how long the read models take to be built from nothing by
# payeshd --role projector: one process following the store, then N
# processes (default 1 and 3) sharing the work over NATS JetStream.
#
#   make build && scripts/measure-workers.sh [FACILITIES] [PROCESSES...]
#
# It seeds FACILITIES (default 5000) into a schema of its own of the
# PostgreSQL at TEST_DATABASE_URL and uses the NATS at PAYESH_TEST_NATS_URL
# (both as make test has them), a JetStream stream per run; the read models
# of each run go to a fresh schema. Everything it made is dropped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

facilities=${1:-5000}
shift || true
counts=("${@:-1 3}")
read -r -a counts <<<"${counts[*]}"
pg=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
nats=${PAYESH_TEST_NATS_URL:-nats://127.0.0.1:4222}
id=mw$$
sql() { PGOPTIONS="-c client_min_messages=warning" psql -q -X -v ON_ERROR_STOP=1 -d "${pg%%\?*}" -tAc "$1"; }
url() { echo "$pg&schema=$1"; }

cleanup() {
  for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
  sql "drop schema if exists ${id}_log cascade" 2>/dev/null || true
  for s in $(sql "select nspname from pg_namespace where nspname like '${id}_rm%'"); do sql "drop schema $s cascade"; done
}
trap cleanup EXIT

sql "create schema ${id}_log"
./bin/payesh seed --store "$(url ${id}_log)" --facilities "$facilities" >/dev/null 2>&1
head=$(sql "select max(position) from ${id}_log.events")
echo "log: $facilities facilities, $head events"

# run KEY LABEL PROCESSES [nats]
run() {
  local key=$1 label=$2 n=$3 withnats=${4:-} rm=${id}_rm_$1
  sql "create schema $rm"
  local args=(--role projector --store "$(url ${id}_log)" --readmodels "$(url $rm)" --addr 127.0.0.1:0)
  [ -n "$withnats" ] && args+=(--nats "$nats" --nats-stream "MW_${id}_$key" --nats-subjects "mw.$id.$key")
  local start pids=()
  start=$(date +%s.%N)
  for _ in $(seq 1 "$n"); do ./bin/payeshd "${args[@]}" >"${TMPDIR:-/tmp}/$rm.$n.log" 2>&1 & pids+=($!); done
  until [ "$(sql "select count(*) from $rm.projection_state where position >= $head" 2>/dev/null || echo 0)" = 5 ]; do sleep 0.1; done
  local secs
  secs=$(echo "$(date +%s.%N) - $start" | bc)
  kill "${pids[@]}"; wait "${pids[@]}" 2>/dev/null || true
  printf '%-28s %6.1f s  %7.0f events/s per read model\n' "$label" "$secs" "$(echo "$head / $secs" | bc -l)"
}

run store "1 process, store" 1
for n in "${counts[@]}"; do run "nats$n" "$n process(es), NATS" "$n" nats; done
