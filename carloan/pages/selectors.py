"""Reads behind the monitoring pages: the live map's snapshot (one compact call for every visible
vehicle) and the dashboard's counts. Scoped by the same visibility selectors as everything else."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from django.db.models import Count, F, FloatField, Func, IntegerField, Q
from django.utils import timezone

from accounts.selectors import customers_visible_to
from alarms.models import Alarm
from devices.models import Device
from devices.selectors import devices_visible_to
from vehicles.models import DeviceBinding
from vehicles.selectors import vehicles_visible_to

MOVING_KMH = 5.0
STATES = ("moving", "parked", "sleeping", "offline", "alarm")
_SLEEP_MODES = frozenset({"alarm_clock", "deep_sleep", "vibration"})


def _y(column: str) -> Func:
    return Func(F(column), function="ST_Y", output_field=FloatField())


def _x(column: str) -> Func:
    return Func(F(column), function="ST_X", output_field=FloatField())


class Epoch(Func):
    """A datetime column as whole Unix seconds, computed by the database: converting 10,000
    datetimes in Python was a third of the snapshot's time (bench/pages.py)."""

    output_field = IntegerField()

    def as_sqlite(self, compiler, connection, **extra):
        # Django stores aware datetimes in SQLite as UTC text, which julianday() reads. Not
        # strftime('%s'): a literal % breaks DEBUG's query logging (`sql % params`).
        template = "CAST(ROUND((julianday(%(expressions)s) - 2440587.5) * 86400) AS INTEGER)"
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_postgresql(self, compiler, connection, **extra):
        template = "CAST(EXTRACT(EPOCH FROM %(expressions)s) AS BIGINT)"
        return self.as_sql(compiler, connection, template=template, **extra)


def vehicle_state(devices: list[dict], in_alarm: bool) -> str:
    """The colour of a vehicle on the map: alarm > moving > parked > sleeping > offline."""
    if in_alarm:
        return "alarm"
    online = [d for d in devices if d["online"]]
    if online:
        speed = max((d["speed"] or 0.0) for d in online)
        return "moving" if speed >= MOVING_KMH else "parked"
    if any(d["work_mode"] in _SLEEP_MODES for d in devices):
        return "sleeping"
    return "offline"


def live_snapshot(user) -> dict[str, Any]:
    """Every visible vehicle with a mounted device: position (freshest valid fix of its
    devices), state, speed, course, fix time, and its devices as `[id, identifier, online]`
    (the page matches live device_status items by id and searches by identifier). Two queries
    whatever the fleet size; rows are lists (not objects): 10,000 vehicles are ~1.4 MB of JSON,
    ~360 kB gzipped (bench/pages.py)."""
    # The visible vehicles as a subquery, never as a Python list of ids: compiling
    # `IN (10,000 parameters)` cost more than running the query (bench/pages.py).
    visible = vehicles_visible_to(user).values("pk")
    rows = (
        DeviceBinding.objects.filter(vehicle__in=visible, unbound_at__isnull=True)
        .values_list(
            "vehicle_id",
            "vehicle__plate",
            "vehicle__customer_id",
            "vehicle__borrower_name",
            "device_id",
            "device__identifier",
            "device__online",
            "device__work_mode",
            Epoch("device__last_fix_at"),
            "device__last_speed_kmh",
            "device__last_course",
            _y("device__last_position"),
            _x("device__last_position"),
        )
        .order_by()
    )
    per_vehicle: dict[int, list[tuple]] = {}
    for row in rows:
        per_vehicle.setdefault(row[0], []).append(row)
    alarmed = set(
        Alarm.objects.filter(vehicle__in=visible, status__in=Alarm.NOT_CLOSED)
        .order_by()
        .values_list("vehicle_id", flat=True)
        .distinct()
    )
    out = []
    for vehicle_id, devices in per_vehicle.items():
        first = devices[0]
        fixed = [d for d in devices if d[11] is not None and d[8] is not None]
        best = max(fixed, key=lambda d: d[8]) if fixed else None
        state = vehicle_state(
            [{"online": d[6], "speed": d[9], "work_mode": d[7]} for d in devices],
            vehicle_id in alarmed,
        )
        out.append(
            [
                vehicle_id,
                first[1],
                first[2],
                round(best[11], 6) if best else None,
                round(best[12], 6) if best else None,
                state,
                round(best[9] or 0.0, 1) if best else 0.0,
                best[10] if best else None,
                best[8] if best else None,
                [[d[4], d[5], int(bool(d[6]))] for d in devices],
                first[3],
            ]
        )
    return {
        "fields": [
            "id",
            "plate",
            "customer_id",
            "lat",
            "lon",
            "state",
            "speed",
            "course",
            "fix_time",
            "devices",
            "borrower",
        ],
        "vehicles": out,
        "generated_at": timezone.now().isoformat(),
    }


CUSTOMER_TREE_FIELDS = ["id", "parent", "name", "level", "vehicles", "online"]


def customer_tree(user) -> dict[str, Any]:
    """The live map's customer-tree sidebar: the customers the user may see, in tree order
    (MPTT preorder: a node's subtree is the run of following rows with a greater level), each with
    the vehicles of its whole subtree and how many of them are online (a mounted device online).

    Two queries whatever the tree or fleet size: the customers, and one aggregate of the visible
    vehicles by customer; subtree totals are rolled up here, children before parents. Vehicles
    shared one by one from outside the user's subtree have no node (the map still shows them).
    Rows are lists, like the snapshot's; `parent` is null for the user's own root(s)."""
    customers = list(
        customers_visible_to(user)
        .order_by("tree_id", "lft")
        .values_list("id", "parent_id", "name", "level")
    )
    counts = {
        row["customer_id"]: (row["n"], row["on"])
        for row in vehicles_visible_to(user)
        .order_by()
        .values("customer_id")
        .annotate(
            n=Count("id", distinct=True),
            # distinct: a vehicle with two online devices is one online vehicle.
            on=Count(
                "id",
                distinct=True,
                filter=Q(bindings__unbound_at__isnull=True, bindings__device__online=True),
            ),
        )
    }
    ids = {c[0] for c in customers}
    totals = {c[0]: list(counts.get(c[0], (0, 0))) for c in customers}
    # Reverse preorder visits every child before its parent: one pass rolls the counts up.
    for pk, parent, _name, _level in reversed(customers):
        if parent in ids:
            totals[parent][0] += totals[pk][0]
            totals[parent][1] += totals[pk][1]
    return {
        "fields": CUSTOMER_TREE_FIELDS,
        "customers": [
            [pk, parent if parent in ids else None, name, level, *totals[pk]]
            for pk, parent, name, level in customers
        ],
    }


def dashboard_counts(user, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """The home page: fleet by state, today's alarms by kind, open alarms by level, device
    inventory by status."""
    now = now or timezone.now()
    snapshot = live_snapshot(user)["vehicles"]
    states = Counter(row[5] for row in snapshot)
    start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    from alarms.alarm_selectors import alarms_visible_to

    alarms = alarms_visible_to(user)
    today = (
        alarms.filter(raised_at__gte=start).values("kind").annotate(n=Count("id")).order_by("-n")
    )
    open_by_level = (
        alarms.filter(status__in=Alarm.NOT_CLOSED).values("level").annotate(n=Count("id"))
    )
    inventory = devices_visible_to(user).values("status").annotate(n=Count("id")).order_by("status")
    labels = dict(Alarm._meta.get_field("kind").choices)
    status_labels = dict(Device.Status.choices)
    return {
        "vehicles": vehicles_visible_to(user).count(),
        "tracked": len(snapshot),
        "states": {s: states.get(s, 0) for s in STATES},
        "online": states.get("moving", 0) + states.get("parked", 0),
        "alarms_today": [{"kind": labels.get(r["kind"], r["kind"]), "n": r["n"]} for r in today],
        "open_by_level": {r["level"]: r["n"] for r in open_by_level},
        "inventory": [
            {"status": str(status_labels.get(r["status"], r["status"])), "n": r["n"]}
            for r in inventory
        ],
    }


# The panel's one-click commands (those without parameters); set_interval / set_mode need a
# form and stay in the back office.
PANEL_COMMANDS = ("locate_now", "fuel_cut", "fuel_restore", "reboot")


def panel_commands(user, protocol: str) -> list[dict[str, str]]:
    """The panel's command buttons for one device: the kinds its protocol can encode and the
    user holds the permissions for (the API checks again, with the fuel-cut safety rules)."""
    from devices import commands

    out = []
    for kind in PANEL_COMMANDS:
        spec = commands.KINDS[kind]
        if protocol in spec.encoders and user.has_perms(spec.permissions):
            out.append({"kind": kind, "label": str(spec.label)})
    return out


def vehicle_panel(user, pk: int) -> dict[str, Any] | None:
    """The map's vehicle panel: the vehicle, each device's state and the commands the user may
    send it, the vehicle's recent alarms."""
    vehicle = vehicles_visible_to(user).select_related("customer").filter(pk=pk).first()
    if vehicle is None:
        return None
    devices = (
        Device.objects.filter(bindings__vehicle=vehicle, bindings__unbound_at__isnull=True)
        .values(
            "pk",
            "identifier",
            "protocol",
            "kind",
            "online",
            "work_mode",
            "last_seen_at",
            "last_fix_at",
            "last_speed_kmh",
            "last_acc",
            "battery_pct",
            "external_voltage",
            "gsm_signal",
            lat=_y("last_position"),
            lon=_x("last_position"),
        )
        .order_by("kind", "identifier")
    )
    alarms = Alarm.objects.filter(vehicle=vehicle).order_by("-raised_at", "-id")[:10]
    risk_level = max((a.level for a in alarms if a.status != Alarm.Status.CLOSED), default=0)

    def iso(value):
        return timezone.localtime(value).isoformat() if value else None

    return {
        "id": vehicle.pk,
        "plate": vehicle.plate,
        "vin": vehicle.vin,
        "customer": vehicle.customer.name,
        "borrower": vehicle.borrower_name,
        "repayment_status": vehicle.get_repayment_status_display(),
        "risk_level": risk_level,
        "devices": [
            {
                **d,
                "last_seen_at": iso(d["last_seen_at"]),
                "last_fix_at": iso(d["last_fix_at"]),
                "commands": panel_commands(user, d["protocol"]),
            }
            for d in devices
        ],
        "alarms": [
            {
                "id": a.pk,
                "kind": a.get_kind_display(),
                "level": a.level,
                "status": a.get_status_display(),
                "raised_at": iso(a.raised_at),
                "target": a.target_name,
            }
            for a in alarms
        ],
    }
