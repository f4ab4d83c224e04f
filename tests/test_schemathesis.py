"""Schemathesis against the whole REST API (issue 6, item 7): every operation of the project's
OpenAPI schema (`/api/v1/schema/`, drf-spectacular), called in-process through the WSGI app (no
network) with generated requests. No answer may be a 5xx, and a 2xx answer to a valid request must
match the documented response (content type and JSON schema).

The callers: Lender A's administrator (every permission; sees Lender A and its two branches) for
the back-office operations, Branch A1's installer for the field workers' `mobile/` ones, which run
first (the administrator may deactivate branches, delete vehicles ...). Valid requests go to real
objects of the small world where it has one (Branch A2's, so that the administrator's writes do not
pull the installer's ground away); invalid requests ("negative" generation) go anywhere.

Deterministic: hypothesis derandomized with a fixed seed, no example database, no shrinking.
`SCHEMATHESIS_MAX_EXAMPLES` (default 4) sets the examples per operation and mode,
`SCHEMATHESIS_ONLY=<path fragment>` narrows the run, `SCHEMATHESIS_DEBUG=1` prints every answer.
"""

from __future__ import annotations

import os
import re
import sys
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
from vehicles.models import DeviceBinding

pytestmark = pytest.mark.django_db

SEED = 20261123
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "4"))
SCHEMA_PATH = "/api/v1/schema/"
CHECK_NAMES = ("not_a_server_error", "content_type_conformance", "response_schema_conformance")
# Left out: status_code_conformance and the header checks (drf-spectacular documents the answers
# of a working call, not every 400 / 401 / 403 / 404 / 429 of the permission and throttle
# layers), and positive_data_acceptance (a request valid by the schema may still break a
# business rule: a 400 or 409 is the right answer then).

# Answers known not to match their documentation, in apps whose owners were at work on them
# when this run was written: (operation, what the failure says). Printed, not failed on. Remove
# an entry once fixed; the run then guards it.
KNOWN_NONCONFORMING: list[tuple[str, str]] = []  # (operation, words of the message)


def _known(label: str, message: str) -> bool:
    return any(op in label and words in message for op, words in KNOWN_NONCONFORMING)


@dataclass
class Report:
    server_errors: dict[str, list[str]] = field(default_factory=dict)
    nonconforming: dict[str, list[str]] = field(default_factory=dict)
    statuses: dict[str, set[int]] = field(default_factory=dict)  # label -> {status // 100}
    no_negative: list[str] = field(default_factory=list)
    known: set[str] = field(default_factory=set)
    calls: int = 0

    def summary(self, operations: int) -> str:
        never_ok = sorted(label for label, codes in self.statuses.items() if 2 not in codes)
        lines = [
            f"{self.calls} calls on {operations} operations; {len(never_ok)} never answered 2xx"
            f" (most need ids or bodies that random data rarely hits): {', '.join(never_ok)}"
        ]
        if self.known:
            lines.append(f"known, not failed on: {', '.join(sorted(self.known))}")
        for title, found in (
            ("5xx", self.server_errors),
            ("not as documented", self.nonconforming),
        ):
            for label, cases in found.items():
                lines.append(f"--- {title}: {label} ({len(cases)} cases)\n{cases[0]}")
        return "\n".join(lines)


@pytest.fixture
def wsgi_app(settings):
    """The project's WSGI app, with Django's per-request connection closing switched off (as
    Django's test client does): the test's transaction must outlive every call."""
    from carloan.wsgi import application

    settings.TASKS_MOBILE_THROTTLE_RATE = "100000/min"  # hundreds of calls by one installer
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield application
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_world(world, settings, tmp_path):
    """Tokens of the two callers and, per path pattern, the id of a real object to call."""
    from alarms.services.places import annotation_create, geofence_create

    settings.MEDIA_ROOT = tmp_path
    Role.objects.get(customer=world.customers["a"], name="Administrator").permissions.set(
        Permission.objects.all()
    )
    Role.objects.get(name="Installer").permissions.add(
        *perms(["tasks.work_workorder", "alarms.add_annotation", "alarms.view_annotation"])
    )
    admin, installer = world.users["a_admin"], world.users["a1_installer"]

    def order(status: str, vehicle: str = "a1", **extra):
        worker = installer if vehicle == "a1" else None
        made = task_services.work_order_create(
            by=admin, kind="install", vehicle=world.vehicles[vehicle], assignee=worker, **extra
        )
        if status in ("accepted", "in_progress"):
            task_services.work_order_accept(order=made, by=installer)
        if status == "in_progress":
            task_services.work_order_start(order=made, by=installer)
        return made.pk

    in_progress = order("in_progress")
    a2 = world.customers["a2"]
    known = {
        r"/mobile/orders/\{id\}/(accept|decline)/$": order("assigned"),
        r"/mobile/orders/\{id\}/start/$": order("accepted"),
        r"/mobile/orders/\{id\}/": in_progress,
        r"/tasks/records/\{id\}/": task_services.work_order_note_add(
            order=task_services.work_order_create(
                by=admin, kind="install", vehicle=world.vehicles["a2"]
            ),
            by=admin,
            note="checked",
        ).pk,
        r"/tasks/\{id\}/": order("created", vehicle="a2", lat=34.26, lon=108.94),
        r"/vehicles/\{id\}/": world.vehicles["a2"].pk,
        r"/devices/\{id\}/": world.devices["a2"].pk,
        r"/customers/\{id\}/": a2.pk,
        r"/bindings/\{id\}/": DeviceBinding.objects.get(device=world.devices["a2"]).pk,
        r"/annotations/\{id\}/": annotation_create(
            customer=a2, name="Garage", lat=34.26, lon=108.94, by=admin
        ).pk,
        r"/geofences/\{id\}/": geofence_create(
            customer=a2,
            name="Depot",
            shape="circle",
            center=(34.26, 108.94),
            radius_m=500,
            by=admin,
        ).pk,
    }
    return {
        "admin": Token.objects.get_or_create(user=admin)[0].key,
        "installer": Token.objects.get_or_create(user=installer)[0].key,
        "known": known,
    }


def _known_id(path: str, known: dict[str, int]) -> dict | None:
    if "{id}" not in path:
        return None
    for pattern, pk in known.items():
        if re.search(pattern, path):
            return {"id": pk}
    return None


def _exercise(operation, *, wsgi, token, path_parameters, mode, report, checks) -> None:
    label = f"{operation.label} [{mode.value}]"

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
        raised: list[BaseException] = []

        def keep(sender, **kwargs):
            raised.append(sys.exc_info()[1])

        got_request_exception.connect(keep)
        try:
            response = case.call(app=wsgi, headers={"Authorization": f"Token {token}"})
        finally:
            got_request_exception.disconnect(keep)
        report.statuses.setdefault(operation.label, set()).add(response.status_code // 100)
        if os.environ.get("SCHEMATHESIS_DEBUG"):
            print(label, response.status_code, response.text[:200])
        if response.status_code >= 500:
            where = "".join(traceback.format_exception(raised[0])[-4:]) if raised else ""
            report.server_errors.setdefault(label, []).append(
                f"{response.status_code} {case.as_curl_command()}\n{where}"
            )
            return
        if mode is GenerationMode.POSITIVE and 200 <= response.status_code < 300:
            try:
                case.validate_response(response, checks=checks)
            except (Failure, FailureGroup) as exc:
                failures = exc.exceptions if isinstance(exc, FailureGroup) else [exc]
                text = "\n".join(f"{f.title}: {f.message[:600]}" for f in failures)
                if _known(label, text):
                    report.known.add(label)
                    return
                report.nonconforming.setdefault(label, []).append(
                    f"{response.status_code} {case.as_curl_command()}\n{text}"
                )

    try:
        run()
    except Unsatisfiable:
        # Nothing invalid can be sent to this operation (no parameters, no body): negative
        # generation finds no case. The positive run covered it.
        report.no_negative.append(label)


def test_no_operation_answers_5xx_and_answers_match_the_schema(fuzz_world, wsgi_app):
    schema = schemathesis.openapi.from_wsgi(SCHEMA_PATH, wsgi_app)
    load_all_checks()
    checks = [CHECKS.get_one(name) for name in CHECK_NAMES]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 80  # the whole API, not a part of it
    # The installer's operations first: the administrator's may deactivate their branch.
    operations.sort(key=lambda op: "/mobile/" not in op.path)
    only = os.environ.get("SCHEMATHESIS_ONLY", "")
    report = Report()
    for operation in operations:
        if only not in operation.path:
            continue
        token = fuzz_world["installer" if "/mobile/" in operation.path else "admin"]
        runs = [
            (GenerationMode.POSITIVE, _known_id(operation.path, fuzz_world["known"])),
            (GenerationMode.NEGATIVE, None),
        ]
        for mode, path_parameters in runs:
            _exercise(
                operation,
                wsgi=wsgi_app,
                token=token,
                path_parameters=path_parameters,
                mode=mode,
                report=report,
                checks=checks,
            )
    summary = report.summary(len(operations))
    print(summary)
    assert report.calls > len(operations)
    assert not report.server_errors and not report.nonconforming, summary


# What the runs found, pinned (the generated cases depend on the hypothesis version): ids no
# database column can hold were passed on to SQLite, which cannot bind them (a 500).
HUGE = "99999999999999999999999"


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/tasks/?vehicle=",
        "/api/v1/vehicles/?customer=",
        "/api/v1/bindings/?vehicle=",
        "/api/v1/devices/?customer=",
        "/api/v1/commands/?job=",
        "/api/v1/customers/?parent=",
        "/api/v1/alarms/?customer=",
        "/api/v1/alarm-settings/?vehicle=",
        "/api/v1/credit/applications/?dealer=",
    ],
)
@pytest.mark.parametrize("value", [HUGE, f"-{HUGE}", "1e30"])
def test_an_id_filter_refuses_what_no_id_can_be(fuzz_world, api, world, url, value):
    answer = api(world.users["a_admin"]).get(url + value)
    assert answer.status_code == 400
    assert url.rsplit("?", 1)[1].rstrip("=") in answer.json()


def test_a_fence_bound_to_an_impossible_vehicle_id_is_a_field_error(fuzz_world, api, world):
    fence = {"name": "Yard", "shape": "circle", "center": {"lat": 34.26, "lon": 108.94}}
    answer = api(world.users["a_admin"]).post(
        "/api/v1/geofences/", {**fence, "radius_m": 300, "vehicles": [int(HUGE)]}, format="json"
    )
    assert answer.status_code == 400
    assert "vehicles" in answer.json()
