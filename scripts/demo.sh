#!/usr/bin/env bash
# make demo: load the demo data, then run the back office, the device gateway and the simulated
# trackers together. Ctrl-C stops everything this script started (and only that).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PY=.venv/bin/python
HOST="${DEMO_HOST:-127.0.0.1}"
PORT="${DEMO_PORT:-8000}"

"$PY" manage.py load_demo

pids=()
cleanup() {
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

"$PY" manage.py run_gateway --host 127.0.0.1 &
pids+=($!)
sleep 2  # let the listeners open before the trackers dial in
"$PY" manage.py simulate_devices --host 127.0.0.1 --interval 10 &
pids+=($!)

echo
echo "Back office: http://${HOST}:${PORT}/admin/   (Ctrl-C stops the server, gateway and trackers)"
echo "Gateway: GT06 127.0.0.1:5023, JT/T 808 :5015, H02 :5013 (simulated trackers connected)"
echo
.venv/bin/daphne -b "$HOST" -p "$PORT" carloan.asgi:application &
pids+=($!)
wait -n "${pids[@]}"
