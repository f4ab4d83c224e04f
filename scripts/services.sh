#!/usr/bin/env bash
# Make sure what `make test-postgis` needs is there and answering: PostGIS for PostgreSQL 15 and a
# Redis on 127.0.0.1:6379. Installs/starts only what is missing; fails loudly otherwise.
#
# The tests connect as the `postgres` superuser (trust auth on 127.0.0.1): pytest-django creates
# the test database and Django's postgis backend runs CREATE EXTENSION postgis in it.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

PGHOST=127.0.0.1
PGPORT=5432

apt_ensure postgresql-15-postgis-3

if ! pg_isready -q -h "$PGHOST" -p "$PGPORT"; then
    echo "==> PostgreSQL does not answer on $PGHOST:$PGPORT; starting cluster 15/main"
    pg_ctlcluster --skip-systemctl-redirect 15 main start
    for _ in $(seq 1 20); do
        pg_isready -q -h "$PGHOST" -p "$PGPORT" && break
        sleep 0.5
    done
    if ! pg_isready -h "$PGHOST" -p "$PGPORT"; then
        echo "services: PostgreSQL still does not answer on $PGHOST:$PGPORT" >&2
        exit 1
    fi
fi

if ! command -v redis-server >/dev/null; then
    apt_ensure redis-server
fi
if [[ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null || true)" != "PONG" ]]; then
    echo "==> Redis does not answer on 127.0.0.1:6379; starting it (no persistence)"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
    for _ in $(seq 1 20); do
        [[ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null || true)" == "PONG" ]] && break
        sleep 0.25
    done
    if [[ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null || true)" != "PONG" ]]; then
        echo "services: Redis still does not answer on 127.0.0.1:6379" >&2
        exit 1
    fi
fi
echo "==> PostgreSQL $PGHOST:$PGPORT and Redis 127.0.0.1:6379 answer"
