"""Risk-control demo data (part of `manage.py load_demo`): risk points on the simulator's street
grid around Xi'an (the simulated cars drive through them), a few fences, home areas, armed cars
and a tighter speed limit for one lender, so that `make demo` raises alarms within minutes.

Risk points are shared by the whole server: the demo's carry the `DEMO_PREFIX` in their name so
`demo_reset` can remove exactly those.
"""

from __future__ import annotations

import datetime as dt
import math
import random

from django.contrib.gis.geos import Point, Polygon
from django.utils import timezone

from accounts.models import Customer
from alarms.models import AlarmSetting, Arming, Geofence, RiskPoint, UsualArea, VehicleState
from gateway.simulator.routes import CENTRE, Route
from vehicles.models import Vehicle

DEMO_PREFIX = "演示·"
BLOCK_M = 500.0  # the simulator's street grid
_M_PER_DEG_LAT = 111_320.0

_KINDS = [
    (RiskPoint.Kind.SECOND_PLEDGE, "二押点", 0.35),
    (RiskPoint.Kind.USED_CAR_MARKET, "二手车市场", 0.25),
    (RiskPoint.Kind.REPAIR_SHOP, "维修厂", 0.25),
    (RiskPoint.Kind.REGISTRATION_OFFICE, "车管所", 0.15),
]


def _grid_point(ix: int, iy: int) -> tuple[float, float]:
    m_per_deg_lon = _M_PER_DEG_LAT * math.cos(math.radians(CENTRE[0]))
    return CENTRE[0] + iy * BLOCK_M / _M_PER_DEG_LAT, CENTRE[1] + ix * BLOCK_M / m_per_deg_lon


def build_alarm_demo(*, seed: int, customers: dict[str, Customer], risk_points: int = 300) -> dict:
    """Create the demo's places and settings; returns counts."""
    rng = random.Random(seed)  # noqa: S311 - demo data, reproducible on purpose
    RiskPoint.objects.filter(name__startswith=DEMO_PREFIX).delete()
    cells = set()
    while len(cells) < risk_points:
        cells.add((rng.randint(-24, 24), rng.randint(-24, 24)))  # within ~12 km of the centre
    weights = [w for _k, _n, w in _KINDS]
    rows = []
    for n, (ix, iy) in enumerate(sorted(cells), start=1):
        kind, label, _w = rng.choices(_KINDS, weights)[0]
        lat, lon = _grid_point(ix, iy)
        rows.append(
            RiskPoint(
                name=f"{DEMO_PREFIX}{label}{n:03d}",
                kind=kind,
                point=Point(lon, lat, srid=4326),
                radius_m=150,
                address=f"西安市 网格 {ix},{iy}",
            )
        )
    RiskPoint.objects.bulk_create(rows)

    all_vehicles = list(
        Vehicle.objects.filter(customer__in=customers.values())
        .order_by("pk")
        .only("pk", "customer")
    )
    # The cars that play a scripted episode (`simulate_devices --episodes`) get their own data;
    # the random-route settings below leave them alone.
    cast = build_episode_demo(all_vehicles)
    vehicles = [v for v in all_vehicles if v.pk not in cast]
    now = timezone.now()
    # Each car's home (where the simulator parks it at night) is its usual area.
    UsualArea.objects.bulk_create(
        UsualArea(
            vehicle=v, name="家", point=Point(*reversed(Route(v.pk).home), srid=4326), radius_m=800
        )
        for v in vehicles
    )
    # A few armed cars (原地设防): they drive off during the day and raise "armed vehicle moved".
    armed = vehicles[::40]
    Arming.objects.bulk_create(
        Arming(vehicle=v, point=Point(*reversed(Route(v.pk).home), srid=4326), armed_at=now)
        for v in armed
    )
    # Fences per lender around districts the simulated cars cross.
    fences = 0
    for code, (dx, dy), name in (
        ("changan", (-6, -6), "曲江新区"),
        ("changan", (4, 2), "高新区"),
        ("xibu", (0, 0), "钟楼商圈"),
    ):
        customer = customers.get(code)
        if customer is None:
            continue
        lat0, lon0 = _grid_point(dx - 3, dy - 3)
        lat1, lon1 = _grid_point(dx + 3, dy + 3)
        fence = Geofence.objects.create(
            customer=customer,
            name=name,
            shape=Geofence.Shape.POLYGON,
            polygon=Polygon(
                ((lon0, lat0), (lon1, lat0), (lon1, lat1), (lon0, lat1), (lon0, lat0)), srid=4326
            ),
            alarm_enter=True,
            alarm_leave=True,
            alarm_parking=True,
            parking_minutes=120,
        )
        subtree = customer.get_descendants(include_self=True)
        fence.vehicles.set([v for v in vehicles if v.customer_id in {c.pk for c in subtree}][:30])
        fences += 1
    # One lender runs a stricter speed limit (the simulator drives up to 70 km/h).
    if "xibu" in customers:
        AlarmSetting.objects.update_or_create(
            kind="overspeed",
            customer=customers["xibu"],
            defaults={"params": {"limit_kmh": 60, "min_duration_s": 10}},
        )
    return {
        "risk points": len(rows),
        "fences": fences,
        "armed": len(armed),
        "scripted cars": len(cast),
    }


def build_episode_demo(vehicles: list[Vehicle]) -> dict[int, str]:
    """The data the scripted episodes need (`gateway.simulator.episodes`), for the cars
    `episodes.plan` casts from the devices `simulate_devices` will drive: the second-pledge spot,
    a circle fence with every alarm switched on, the armed spot, the usual area the away car left
    days ago, a fast-driving custom alarm, and per-vehicle settings that bring slow alarms
    (stay, parking, fatigue, offline) within minutes. Returns vehicle id -> episode name."""
    from alarms.rules.base import iso
    from alarms.services import places as svc
    from gateway.management.commands.simulate_devices import load_devices
    from gateway.simulator import episodes as ep

    by_pk = {v.pk: v for v in vehicles}
    cast = {
        vehicle_id: episode
        for vehicle_id, episode in ep.plan(load_devices()).items()
        if vehicle_id in by_pk
    }
    now = timezone.now()
    for vehicle_id, episode in cast.items():
        vehicle = by_pk[vehicle_id]
        for kind, params in episode.settings.items():
            svc.alarm_setting_upsert(kind=kind, vehicle=vehicle, params=dict(params))
        if episode.name == "second_pledge_visit":
            lat, lon = ep.SPOT
            RiskPoint.objects.create(
                name=f"{DEMO_PREFIX}二押点·剧本",
                kind=RiskPoint.Kind.SECOND_PLEDGE,
                point=Point(lon, lat, srid=4326),
                radius_m=ep.SPOT_RADIUS_M,
                address="西安市 演示剧本",
            )
        elif episode.name == "expressway":
            svc.custom_alarm_type_create(
                customer=vehicle.customer,
                name="高速行驶 ≥100 km/h",
                min_speed_kmh=100,
                duration_s=30,
            )
        elif episode.name == "fence_visit":
            svc.geofence_create(
                customer=vehicle.customer,
                name="演示围栏·停车场",
                shape=Geofence.Shape.CIRCLE,
                center=ep.FENCE_CENTRE,
                radius_m=ep.FENCE_RADIUS_M,
                vehicles=[vehicle],
                alarm_enter=True,
                alarm_leave=True,
                alarm_inside=True,
                alarm_parking=True,
                parking_minutes=3,
            )
        elif episode.name == "armed_leave":
            lat, lon = ep.ARMED_SPOT
            Arming.objects.create(
                vehicle=vehicle, point=Point(lon, lat, srid=4326), radius_m=200, armed_at=now
            )
        elif episode.name == "away_from_home":
            lat, lon = ep.USUAL_AREA
            UsualArea.objects.create(
                vehicle=vehicle, name="家", point=Point(lon, lat, srid=4326), radius_m=800
            )
            # History: the engine last saw the car at home days ago (the rule's own memory).
            last_inside = now - dt.timedelta(days=ep.AWAY_DAYS)
            VehicleState.objects.update_or_create(
                vehicle=vehicle,
                defaults={
                    "state": {"usual_area_absent": {"last_inside": iso(last_inside)}},
                    "updated_at": now,
                },
            )
    return {vehicle_id: episode.name for vehicle_id, episode in cast.items()}


def reset_alarm_demo() -> int:
    return RiskPoint.objects.filter(name__startswith=DEMO_PREFIX).delete()[0]
