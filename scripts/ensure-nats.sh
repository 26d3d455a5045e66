#!/usr/bin/env bash
# Makes sure a NATS server with JetStream answers where the tests look
# (PAYESH_TEST_NATS_URL, default nats://127.0.0.1:4222). On a machine where
# one is running this does nothing. Otherwise it starts an installed
# nats-server with JetStream on that port (its data in a temporary folder),
# or installs Debian's nats-server package first (which needs root).
set -euo pipefail

url=${PAYESH_TEST_NATS_URL:-nats://127.0.0.1:4222}
hostport=${url#nats://}
host=${hostport%%:*} port=${hostport##*:}

say() { echo "ensure-nats: $*" >&2; }
# NATS greets every connection with an INFO line.
ready() { timeout 2 bash -c "exec 3<>/dev/tcp/$host/$port && head -c 4 <&3" 2>/dev/null | grep -q INFO; }

if ready; then
  exit 0
fi
if [ -n "${PAYESH_TEST_NATS_URL:-}" ] && [ "$host" != 127.0.0.1 ] && [ "$host" != localhost ]; then
  say "NATS at $url does not answer, and it is not this machine's to start"
  exit 1
fi

bin=$(command -v nats-server || true)
[ -z "$bin" ] && [ -x /usr/sbin/nats-server ] && bin=/usr/sbin/nats-server
if [ -z "$bin" ]; then
  if [ "$(id -u)" != 0 ]; then
    say "nats-server is not running and not installed; run as root to install it, or set PAYESH_TEST_NATS_URL"
    exit 1
  fi
  say "installing Debian's nats-server package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq nats-server >/dev/null
  bin=$(command -v nats-server || echo /usr/sbin/nats-server)
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/payesh-nats.XXXXXX")
say "starting $bin with JetStream on $host:$port (data in $dir)"
nohup "$bin" -a "$host" -p "$port" -js -sd "$dir" >"$dir/nats-server.log" 2>&1 &
for _ in $(seq 1 30); do ready && break; sleep 0.5; done
ready || { say "nats-server did not come up; see $dir/nats-server.log"; exit 1; }
say "NATS ready on $host:$port"
