#!/usr/bin/env bash
# Makes sure PostgreSQL (127.0.0.1:5432, trust auth, user postgres) and Redis (127.0.0.1:6379)
# run on this machine: installs them with apt-get when absent, starts them when stopped, and
# waits until both answer. Used by scripts/test.sh and .ci/run.
set -euo pipefail

log() { printf '== %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
apt_install() {
  if [ "$apt_updated" -eq 0 ]; then
    as_root apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

postgres_ready() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
redis_ready() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }

if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
  log "installing PostgreSQL"
  apt_install postgresql postgresql-client
fi
if ! command -v redis-server >/dev/null 2>&1; then
  log "installing Redis"
  apt_install redis-server
fi

if ! postgres_ready; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  hba="/etc/postgresql/$version/main/pg_hba.conf"
  # Tests connect as postgres over TCP without a password, as on the development machines.
  if ! grep -Eq '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$hba"; then
    log "allowing trust auth on 127.0.0.1 for tests"
    as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  log "starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
fi
if ! redis_ready; then
  log "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no
fi

for _ in $(seq 1 60); do
  if postgres_ready && redis_ready; then
    break
  fi
  sleep 1
done
postgres_ready || { log "PostgreSQL does not answer on 127.0.0.1:5432"; exit 1; }
redis_ready || { log "Redis does not answer on 127.0.0.1:6379"; exit 1; }

# Drop databases left behind by interrupted test runs.
psql -h 127.0.0.1 -U postgres -d postgres -Atqc \
  "SELECT datname FROM pg_database WHERE datname LIKE 'credit\_test\_%'" |
  while read -r leftover; do
    psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS \"$leftover\" WITH (FORCE)" >/dev/null
  done
# And the Redis keys of earlier test runs (every test key starts with test:).
redis-cli -h 127.0.0.1 -p 6379 --scan --pattern 'test:*' | xargs -r -n 500 redis-cli -h 127.0.0.1 -p 6379 del >/dev/null
log "PostgreSQL and Redis are up"
