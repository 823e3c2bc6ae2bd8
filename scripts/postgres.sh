#!/usr/bin/env bash
# Start a throw-away PostgreSQL server on loopback for tests and print its URL.
#   scripts/postgres.sh start   # installs Debian's postgresql if needed, starts on 127.0.0.1
#   scripts/postgres.sh stop
#   scripts/postgres.sh status  # exit 0 when it runs
# The cluster lives in $JISR_PG_DIR (default /tmp/jisr-pg); port $JISR_PG_PORT (default 54329).
set -euo pipefail
PGDIR=${JISR_PG_DIR:-/tmp/jisr-pg}
PORT=${JISR_PG_PORT:-54329}
URL="postgresql+psycopg://postgres@127.0.0.1:${PORT}/jisr_test"

find_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [[ -n $dir && -x $dir/pg_ctl ]] && echo "$dir"
}

as_pg() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case ${1:-start} in
  start)
    bin=$(find_bin || true)
    if [[ -z $bin ]]; then
      echo "Installing PostgreSQL (Debian package)…" >&2
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >&2
      apt-get install -y -qq postgresql >&2
      bin=$(find_bin)
    fi
    if [[ $(id -u) -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
      useradd --system --home-dir /var/lib/postgresql postgres
    fi
    if ! as_pg "$bin/pg_ctl" -D "$PGDIR" status >/dev/null 2>&1; then
      rm -rf "$PGDIR"
      mkdir -p "$PGDIR"
      [[ $(id -u) -eq 0 ]] && chown postgres "$PGDIR"
      as_pg "$bin/initdb" -D "$PGDIR" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >&2
      as_pg "$bin/pg_ctl" -D "$PGDIR" -l "$PGDIR/server.log" -w \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -k $PGDIR -c fsync=off -c max_connections=200" start >&2
    fi
    echo "$URL"
    ;;
  stop)
    bin=$(find_bin || true)
    [[ -n $bin ]] && as_pg "$bin/pg_ctl" -D "$PGDIR" -m fast stop >&2 || true
    ;;
  status)
    bin=$(find_bin || true)
    [[ -n $bin ]] && as_pg "$bin/pg_ctl" -D "$PGDIR" status >/dev/null 2>&1
    ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
