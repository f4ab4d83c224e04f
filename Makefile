# carloan developer commands. `make help` lists them; `make demo` and `make test` are enough on a
# fresh Debian 12 machine (they run `make setup` first).

.DEFAULT_GOAL := help
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# pytest-xdist workers for `make test` / `make test-postgis`: auto = one per core; 0 = serial.
PYTEST_WORKERS ?= auto
# PostGIS + Redis for `make test-postgis` (trust auth as the postgres superuser on this machine).
POSTGIS_DATABASE_URL ?= postgis://postgres@127.0.0.1:5432/carloan
POSTGIS_REDIS_URL ?= redis://127.0.0.1:6379/0
DEMO_HOST ?= 127.0.0.1
DEMO_PORT ?= 8000

.PHONY: help setup demo serve test test-postgis test-browser lint migrate messages bench clean

help: ## List the targets
	@echo "Usage: make <target>"
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) \
		| awk 'BEGIN {FS = ":.*?## "} {printf "  %-14s %s\n", $$1, $$2}'

setup: ## Install what is missing (apt libs, .venv, requirements, .env, translations) and migrate
	@bash scripts/setup.sh

demo: setup ## Set up, load demo data (prints the logins), run pages :8000 + gateway + worker + trackers (+ private Redis)
	@DEMO_HOST=$(DEMO_HOST) DEMO_PORT=$(DEMO_PORT) bash scripts/demo.sh

serve: setup ## Serve the back office on :8000 without reloading demo data
	@echo "Back office: http://$(DEMO_HOST):$(DEMO_PORT)/admin/   (Ctrl-C stops the server)"
	$(VENV)/bin/daphne -b $(DEMO_HOST) -p $(DEMO_PORT) carloan.asgi:application

# pytest exits 5 when it collected nothing: a broken collection, never a pass; say so.
PYTEST = $(VENV)/bin/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS) || { rc=$$?; \
	if (( rc == 5 )); then echo "pytest collected no tests" >&2; fi; exit $$rc; }

test: setup ## Run the test suite on SpatiaLite (the default database)
	$(PYTEST)

test-postgis: setup ## Run the test suite on PostGIS + Redis (installs/starts them if needed)
	@bash scripts/services.sh
	DATABASE_URL=$(POSTGIS_DATABASE_URL) REDIS_URL=$(POSTGIS_REDIS_URL) $(PYTEST)

test-browser: setup ## Run only the browser test (headless Chromium); screenshots in var/screenshots/
	$(VENV)/bin/pytest tests/browser $(PYTEST_ARGS)

lint: ## Lint with ruff
	@bash scripts/setup.sh --no-migrate
	$(VENV)/bin/ruff check .

migrate: ## Apply database migrations
	@bash scripts/setup.sh --no-migrate
	$(PY) manage.py migrate --noinput

messages: ## Compile translations (locale/**/*.po -> .mo)
	@bash scripts/setup.sh --no-migrate
	@if [[ -n "$$(find . \( -path ./.venv -o -path ./.git -o -path ./var \) -prune -o -path '*/locale/*' -name '*.po' -print)" ]]; then \
		$(PY) manage.py compilemessages --ignore=.venv --ignore=var; \
	else \
		echo "No .po files yet (locale/ comes with the translations)."; \
	fi

bench: setup ## Run every bench/*.py and bench/credit/*.py benchmark with the venv's Python
	@$(PY) -c "import optbinning, sklearn" 2>/dev/null || { echo "installing requirements-bench.txt"; \
		$(PY) -m pip install --disable-pip-version-check --no-input -q -r requirements-bench.txt; }
	@shopt -s nullglob; scripts=(bench/*.py bench/credit/*.py); \
	if (( ! $${#scripts[@]} )); then echo "No benchmarks in bench/ yet."; exit 0; fi; \
	rc=0; for script in "$${scripts[@]}"; do \
		echo "==> $$script"; \
		PYTHONPATH=$(CURDIR) $(PY) "$$script" || rc=1; \
	done; exit $$rc

clean: ## Remove caches, compiled translations and test leftovers (keeps .venv, .env, var/*.sqlite3)
	find . -path ./.venv -prune -o -type d \( -name __pycache__ -o -name .pytest_cache -o -name .ruff_cache -o -name .hypothesis \) -print0 | xargs -0 -r rm -rf
	find . -path ./.venv -prune -o -path '*/locale/*' -name '*.mo' -print0 | xargs -0 -r rm -f
	rm -rf var/test-media* var/static
