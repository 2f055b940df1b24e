#!/usr/bin/env bash
# Install (if missing) and start PostgreSQL and Redis on 127.0.0.1 for the test suite.
# Idempotent: safe to run when the servers are already installed and running.
set -euo pipefail

PG_PORT="${DATAQUEUE_PG_PORT:-5432}"
REDIS_PORT="${DATAQUEUE_REDIS_PORT:-6379}"

need=()
command -v pg_ctlcluster >/dev/null 2>&1 || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# The dashboard's browser tests drive Debian's Chromium with Playwright (executable_path).
[ -x /usr/bin/chromium ] || need+=(chromium)
if ((${#need[@]})); then
  echo "installing: ${need[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi

# PostgreSQL: the Debian cluster, as its own postgres user, loopback only. Durability settings
# are relaxed because test databases are throwaway.
PG_VER=$(ls /usr/lib/postgresql | sort -V | tail -n1)
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -q "^$PG_VER main$"; then
  pg_createcluster "$PG_VER" main -p "$PG_PORT" >/dev/null
fi
CONF_DIR="/etc/postgresql/$PG_VER/main"
cat > "$CONF_DIR/conf.d/dataqueue-tests.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
max_connections = 400
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 256MB
CONF
if ! pg_lsclusters -h | awk -v v="$PG_VER" '$1==v && $2=="main" {print $4}' | grep -q online; then
  pg_ctlcluster "$PG_VER" main start
fi
for _ in $(seq 1 50); do
  pg_isready -h 127.0.0.1 -p "$PG_PORT" -q && break
  sleep 0.2
done
su postgres -c "psql -q -p $PG_PORT -c \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null

# Redis: no persistence, loopback only.
if ! redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
    --daemonize yes --logfile /tmp/dataqueue-redis.log
  for _ in $(seq 1 50); do
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
fi
echo "postgres: postgresql://postgres:postgres@127.0.0.1:$PG_PORT/postgres"
echo "redis:    redis://127.0.0.1:$REDIS_PORT/0"
