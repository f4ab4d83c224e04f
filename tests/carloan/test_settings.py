"""carloan/settings.py as an operator meets it: production passes Django's deploy checks, and
configuration mistakes stop the process at start-up with a message that names the fix.

Each case runs manage.py in a subprocess: settings are read once per process, from the environment.
"""

from __future__ import annotations

import os
import re
import secrets
import string
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

SETTINGS_SOURCE = (REPO / "carloan" / "settings.py").read_text()
# Every variable settings.py reads: env.str("X"), env.db_url("X"), os.environ.get("X"), ...
SETTINGS_VARS = set(
    re.findall(
        r"""\b(?:env(?:\.\w+)?|os\.environ\.get|os\.getenv)\(\s*["']([A-Z][A-Z0-9_]*)["']""",
        SETTINGS_SOURCE,
    )
)


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    # Nothing inherited from the shell running the tests: make test-postgis exports DATABASE_URL
    # and REDIS_URL, a developer may export DEBUG.
    clean = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARS}
    clean.update(
        {
            "DJANGO_SETTINGS_MODULE": "carloan.settings",
            # The developer's .env must not leak into what is being checked.
            "CARLOAN_ENV_FILE": "/nonexistent",
            **env,
        }
    )
    return subprocess.run(  # noqa: S603 - fixed argv, our own manage.py
        [sys.executable, str(REPO / "manage.py"), *args],
        cwd=REPO,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def random_secret_key() -> str:
    alphabet = string.ascii_letters + string.digits + "!@#%^&*(-_=+)"
    return "".join(secrets.choice(alphabet) for _ in range(60))


@pytest.fixture
def production_env(tmp_path) -> dict[str, str]:
    return {
        "DEBUG": "false",
        "SECRET_KEY": random_secret_key(),
        "ALLOWED_HOSTS": "carloan.example.com",
        "DATABASE_URL": f"spatialite:///{tmp_path / 'deploy.sqlite3'}",
    }


def test_production_settings_pass_the_deploy_checks(production_env):
    result = manage("check", "--deploy", "--fail-level", "WARNING", **production_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_deploy_checks_catch_an_unsafe_override(production_env):
    """The check above can fail: turning off a hardening default is reported."""
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        **production_env,
        SESSION_COOKIE_SECURE="false",
    )
    assert result.returncode != 0
    assert "security.W012" in result.stdout + result.stderr


def test_settings_refuse_to_load_without_secret_key_when_debug_is_off(production_env):
    del production_env["SECRET_KEY"]
    result = manage("check", **production_env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY must be set" in result.stderr


@pytest.mark.parametrize(
    "url", ["sqlite:///x.sqlite3", "postgres://postgres@127.0.0.1:5432/carloan"]
)
def test_non_gis_database_url_is_refused(url):
    result = manage("check", DEBUG="true", DATABASE_URL=url)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "DATABASE_URL must be spatialite:// or postgis://" in result.stderr


def test_env_example_is_a_working_development_config():
    """A fresh checkout's .env (a copy of .env.example) starts in development mode with no
    secret set."""
    result = manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings as s; print(s.DEBUG, s.ALLOWED_HOSTS, s.TIME_ZONE)",
        CARLOAN_ENV_FILE=str(REPO / ".env.example"),
    )
    assert result.returncode == 0, result.stderr
    assert "True ['localhost', '127.0.0.1', '[::1]'] Asia/Shanghai" in result.stdout.splitlines()


def test_env_example_documents_every_variable_settings_read():
    # The pattern still finds what settings.py reads (it would pass vacuously otherwise).
    assert {"DEBUG", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "CARLOAN_ENV_FILE"} <= SETTINGS_VARS
    example = (REPO / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*(?:PRODUCTION:\s*)?([A-Z][A-Z0-9_]*)=", example, re.M))
    missing = SETTINGS_VARS - documented
    assert not missing, f"document these in .env.example, with a comment: {sorted(missing)}"
