"""Schemathesis against the whole REST API (issue 6, item 7): every operation of the OpenAPI
schema, in-process through the WSGI app (no network), with generated requests; no answer may be a
5xx and answers must match the documented schema.

The caller is Lender A's administrator (every permission, sees Lender A and its two branches);
the field workers' `mobile/` operations are called as Branch A1's installer. Path ids are drawn
twice: at random (mostly 404) and from the small world's own objects, so the views do real work.
Deterministic: hypothesis derandomized with a fixed seed, no example database, no shrinking.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass, field

import pytest
import schemathesis
from django.contrib.auth.models import Permission
from django.core.signals import got_request_exception, request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.core.failures import Failure, FailureGroup

from accounts.models import Role
from tasks import services as task_services
from tests.conftest import perms

pytestmark = pytest.mark.django_db

SEED = 20261123
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "5"))
SCHEMA_PATH = "/api/v1/schema/"


def _checks():
    load_all_checks()
    # The status code and header checks are left out: drf-spectacular documents the answers of
    # a working call, not every 400 / 403 / 404 / 429 the permission and throttle layers give.
    return [
        CHECKS.get_one(name)
        for name in (
            "not_a_server_error",
            "content_type_conformance",
            "response_schema_conformance",
        )
    ]


@dataclass
class Report:
    server_errors: dict[str, list[str]] = field(default_factory=dict)
    nonconforming: dict[str, list[str]] = field(default_factory=dict)
    unsatisfiable: list[str] = field(default_factory=list)
    calls: int = 0


@pytest.fixture
def wsgi_app(settings):
    """The project's WSGI app, with Django's per-request connection closing switched off (as
    the test client does): the test's transaction must survive every call."""
    from carloan.wsgi import application

    settings.TASKS_MOBILE_THROTTLE_RATE = "100000/min"
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield application
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_world(world, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    admin_role = Role.objects.get(customer=world.customers["a"], name="Administrator")
    admin_role.permissions.set(Permission.objects.all())
    installer_role = Role.objects.get(name="Installer")
    installer_role.permissions.add(
        *perms(["tasks.work_workorder", "alarms.add_annotation", "alarms.view_annotation"])
    )
    admin, installer = world.users["a_admin"], world.users["a1_installer"]
    order = task_services.work_order_create(
        by=admin, kind="install", vehicle=world.vehicles["a1"], assignee=installer
    )
    task_services.work_order_accept(order=order, by=installer)
    return {
        "admin": Token.objects.get_or_create(user=admin)[0].key,
        "installer": Token.objects.get_or_create(user=installer)[0].key,
        "ids": {
            "tasks": order.pk,
            "mobile": order.pk,
            "vehicles": world.vehicles["a1"].pk,
            "devices": world.devices["a1"].pk,
            "customers": world.customers["a1"].pk,
        },
    }


def _known_id(path: str, ids: dict) -> int | None:
    for prefix, pk in ids.items():
        if path.startswith(f"/api/v1/{prefix}/"):
            return pk
    return None


def _exercise(operation, *, wsgi, token, path_parameters, mode, report, checks):
    @seed(SEED)
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
    def run(case):
        report.calls += 1
        errors: list[BaseException] = []

        def keep(sender, request=None, **kwargs):
            import sys

            errors.append(sys.exc_info()[1])

        got_request_exception.connect(keep)
        try:
            response = case.call(app=wsgi, headers={"Authorization": f"Token {token}"})
        finally:
            got_request_exception.disconnect(keep)
        label = f"{operation.label} [{mode.value}]"
        if response.status_code >= 500:
            where = "".join(traceback.format_exception(errors[0])[-3:]) if errors else ""
            report.server_errors.setdefault(label, []).append(
                f"{response.status_code} {case.as_curl_command()}\n{where}"
            )
            return
        if mode is GenerationMode.POSITIVE and 200 <= response.status_code < 300:
            try:
                case.validate_response(response, checks=checks)
            except (Failure, FailureGroup) as exc:
                failures = exc.exceptions if isinstance(exc, FailureGroup) else [exc]
                report.nonconforming.setdefault(label, []).append(
                    f"{response.status_code} {case.as_curl_command()}\n"
                    + "\n".join(f"{f.title}: {f.message[:600]}" for f in failures)
                )

    try:
        run()
    except Unsatisfiable:
        # Nothing invalid can be said to this operation (no parameters, no body): negative
        # generation finds no case. The positive run covered it.
        report.unsatisfiable.append(f"{operation.label} [{mode.value}]")


def test_no_operation_answers_5xx_and_answers_match_the_schema(fuzz_world, wsgi_app):
    schema = schemathesis.openapi.from_wsgi(SCHEMA_PATH, wsgi_app)
    checks = _checks()
    report = Report()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 80  # the whole API, not a part of it
    for operation in operations:
        token = fuzz_world["installer" if "/mobile/" in operation.path else "admin"]
        known = _known_id(operation.path, fuzz_world["ids"])
        variants = [None]
        if "{id}" in operation.path and known is not None:
            variants.append({"id": known})
        for path_parameters in variants:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                _exercise(
                    operation,
                    wsgi=wsgi_app,
                    token=token,
                    path_parameters=path_parameters,
                    mode=mode,
                    report=report,
                    checks=checks,
                )
    lines = [f"{report.calls} calls"]
    for title, found in (("5xx", report.server_errors), ("not as documented", report.nonconforming)):
        for label, cases in found.items():
            lines.append(f"--- {title}: {label} ({len(cases)})\n{cases[0]}")
    print("\n".join(lines))
    assert not report.server_errors and not report.nonconforming, "\n".join(lines)
