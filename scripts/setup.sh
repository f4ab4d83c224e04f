#!/usr/bin/env bash
# Idempotent developer/CI setup: installs only what is missing, then migrates.
#
#   scripts/setup.sh               everything (what `make setup` runs)
#   scripts/setup.sh --no-migrate  system packages, venv, requirements, .env, translations only
#
# A second run with nothing to do takes a few seconds (figures in docs/SETUP.md): every step
# checks first and does nothing when its result is already there.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

MIGRATE=1
for arg in "$@"; do
    case "$arg" in
        --no-migrate) MIGRATE=0 ;;
        *) echo "setup: unknown option $arg" >&2; exit 2 ;;
    esac
done

PYTHON="${PYTHON:-python3}"
VENV=.venv
STAMP="$VENV/.requirements.sha256"

say() { printf '==> %s\n' "$*"; }

# --- System packages (Debian 12) --------------------------------------------------------------
# libgdal32 + libsqlite3-mod-spatialite: GeoDjango's C libraries (GDAL, GEOS, PROJ, SpatiaLite),
# loaded through ctypes, so no -dev packages and no pip `gdal`. libsqlite3-dev + gcc: pysqlite3
# is built from source (see requirements.txt). gettext: msgfmt for compilemessages.
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
apt_ensure libgdal32 libsqlite3-mod-spatialite libsqlite3-dev gettext gcc
# chromium + chromium-driver: the browser test (tests/browser/) and bench/pages.py's first paint;
# fonts-wqy-zenhei: Chinese glyphs in its screenshots. redis-server: `make demo`'s private Redis.
apt_ensure chromium chromium-driver fonts-wqy-zenhei redis-server

# --- Virtualenv -------------------------------------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]]; then
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
        echo "setup: $PYTHON is $("$PYTHON" -V 2>&1); carloan needs Python 3.11 (set PYTHON=...)" >&2
        exit 1
    fi
    say "creating $VENV with $("$PYTHON" -V 2>&1)"
    "$PYTHON" -m venv "$VENV"
fi

# --- Python requirements: only when requirements*.txt changed since the last install ---------
want="$(sha256sum requirements.txt requirements-dev.txt)"
have="$(cat "$STAMP" 2>/dev/null || true)"
if [[ "$want" != "$have" ]]; then
    say "installing requirements-dev.txt"
    "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q -r requirements-dev.txt
    printf '%s\n' "$want" > "$STAMP"
fi

# --- .env ---------------------------------------------------------------------------------------
if [[ ! -f .env ]]; then
    say "creating .env from .env.example (development settings, DEBUG=true)"
    cp .env.example .env
fi

# --- Translations: compile when a .po is newer than its .mo (or the .mo is missing) -----------
stale=0
while IFS= read -r -d '' po; do
    if [[ "$po" -nt "${po%.po}.mo" ]]; then
        stale=1
        break
    fi
done < <(find . \( -path ./.venv -o -path ./.git -o -path ./var -o -path ./node_modules \) -prune \
            -o -path '*/locale/*' -name '*.po' -print0)
if (( stale )); then
    say "compiling translations"
    "$VENV/bin/python" manage.py compilemessages --ignore=.venv --ignore=var
fi

# --- Database -----------------------------------------------------------------------------------
if (( MIGRATE )); then
    "$VENV/bin/python" manage.py migrate --noinput
fi
