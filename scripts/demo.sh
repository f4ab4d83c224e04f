#!/usr/bin/env bash
# make demo: load the demo data, then run the back office and live pages (daphne), the device
# gateway (with the alarm engine), the worker (scheduled alarm scans) and the simulated trackers
# together. Without a REDIS_URL (environment or .env) a private redis-server is started on a free
# 127.0.0.1 port with its data in a temp dir: the channel layer that carries the gateway's live
# positions and alarms to the browsers' WebSockets (the in-memory layer works inside one process
# only). Ctrl-C stops everything this script started (and only that: by pid).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PY=.venv/bin/python
HOST="${DEMO_HOST:-127.0.0.1}"
PORT="${DEMO_PORT:-8000}"

pids=()
redis_pid=""
redis_dir=""
descendants() {  # a process and all its descendants, children first
    local child
    for child in $(pgrep -P "$1" 2>/dev/null); do descendants "$child"; done
    echo "$1"
}
cleanup() {
    trap - EXIT INT TERM
    echo
    echo "==> stopping the demo"
    # Every process we started and their children, listed before anything stops: a parent that
    # exits first would leave its children to init, out of reach of `pgrep -P`.
    local tree=() pid
    for pid in "${pids[@]}"; do mapfile -t -O "${#tree[@]}" tree < <(descendants "$pid"); done
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    # django-q2's qcluster can hang on a signal (django-q2 issues #66, #346): give everything ten
    # seconds, then kill what is left of ours (by pid), nothing else.
    for _ in $(seq 1 20); do
        alive=0
        for pid in "${tree[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.5
    done
    for pid in "${tree[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    # Redis last: the others flush to it while they stop.
    if [[ -n "$redis_pid" ]]; then
        kill "$redis_pid" 2>/dev/null || true
        for _ in $(seq 1 20); do kill -0 "$redis_pid" 2>/dev/null || break; sleep 0.25; done
        kill -KILL "$redis_pid" 2>/dev/null || true
    fi
    wait 2>/dev/null || true
    if [[ -n "$redis_dir" ]]; then rm -rf "$redis_dir"; fi
}
trap cleanup EXIT INT TERM

# --- Redis: the one given, else a private one ---------------------------------------------------
if [[ -z "${REDIS_URL:-}" ]] && ! grep -qE '^[[:space:]]*REDIS_URL=[^[:space:]]' .env 2>/dev/null; then
    if ! command -v redis-server >/dev/null; then
        # shellcheck source=scripts/lib.sh
        source scripts/lib.sh
        apt_ensure redis-server
    fi
    redis_port="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    redis_dir="$(mktemp -d -t carloan-demo-redis.XXXXXX)"
    # setsid: a session of its own, so Ctrl-C (SIGINT to the terminal's process group) does not
    # reach it; redis-server would stop at once while the others still flush to it. cleanup()
    # stops it last, by pid (setsid execs in place: $! is redis-server's pid).
    setsid redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$redis_dir" --save "" \
        --appendonly no --daemonize no --loglevel warning --logfile "$redis_dir/redis.log" &
    redis_pid=$!
    for _ in $(seq 1 40); do
        [[ "$(redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null || true)" == "PONG" ]] && break
        sleep 0.25
    done
    if [[ "$(redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null || true)" != "PONG" ]]; then
        echo "demo: the private redis-server did not answer on 127.0.0.1:$redis_port" >&2
        cat "$redis_dir/redis.log" >&2 || true
        exit 1
    fi
    export REDIS_URL="redis://127.0.0.1:$redis_port/0"
    echo "==> private Redis on 127.0.0.1:$redis_port (pid $redis_pid, data in $redis_dir)"
fi

"$PY" manage.py load_demo
"$PY" manage.py setup_schedules

"$PY" manage.py run_gateway --host 127.0.0.1 &
pids+=($!)
"$PY" manage.py qcluster &
pids+=($!)
sleep 2  # let the listeners open before the trackers dial in
"$PY" manage.py simulate_devices --host 127.0.0.1 --interval 10 &
pids+=($!)

echo
echo "Live pages:  http://${HOST}:${PORT}/   (log in with one of the users printed above)"
echo "Back office: http://${HOST}:${PORT}/admin/"
echo "Gateway: GT06 127.0.0.1:5023, JT/T 808 :5015, H02 :5013 (simulated trackers connected)"
echo "Ctrl-C stops the server, gateway, worker, trackers${redis_pid:+ and the private Redis}."
echo
.venv/bin/daphne -b "$HOST" -p "$PORT" carloan.asgi:application &
pids+=($!)
wait -n "${pids[@]}"
