#!/usr/bin/env bash
# make demo: load the demo data, then run the back office, the device gateway (with the alarm
# engine), the worker (scheduled alarm scans) and the simulated trackers together. Ctrl-C stops
# everything this script started (and only that).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PY=.venv/bin/python
HOST="${DEMO_HOST:-127.0.0.1}"
PORT="${DEMO_PORT:-8000}"

"$PY" manage.py load_demo
"$PY" manage.py setup_schedules

pids=()
kill_tree() {  # SIGKILL a process and all its descendants (children first)
    local child
    for child in $(pgrep -P "$1" 2>/dev/null); do kill_tree "$child"; done
    kill -KILL "$1" 2>/dev/null || true
}
cleanup() {
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    # django-q2's qcluster can hang on a signal (django-q2 issues #66, #346): give everything ten
    # seconds, then kill what is left of ours (each pid and its children), nothing else.
    for _ in $(seq 1 20); do
        alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.5
    done
    for pid in "${pids[@]}"; do kill_tree "$pid"; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

"$PY" manage.py run_gateway --host 127.0.0.1 &
pids+=($!)
"$PY" manage.py qcluster &
pids+=($!)
sleep 2  # let the listeners open before the trackers dial in
"$PY" manage.py simulate_devices --host 127.0.0.1 --interval 10 --episodes &
pids+=($!)

echo
echo "Back office: http://${HOST}:${PORT}/admin/   (Ctrl-C stops the server, gateway, worker and trackers)"
echo "Gateway: GT06 127.0.0.1:5023, JT/T 808 :5015, H02 :5013 (simulated trackers connected)"
echo
.venv/bin/daphne -b "$HOST" -p "$PORT" carloan.asgi:application &
pids+=($!)
wait -n "${pids[@]}"
