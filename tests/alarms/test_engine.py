"""The engine inside the ingest transaction and the alarm lifecycle: device alarms, position
rules, settings inheritance, de-duplication, auto-close, blind-area data, restart resume."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from alarms.engine import Engine
from alarms.models import Alarm, AlarmEvent, AlarmSetting, VehicleState
from alarms.rules.base import distance_m
from alarms.services import lifecycle
from carloan.errors import InvalidTransition
from gateway.ingest import Inbound, ingest_batch
from gateway.protocols import messages as m
from tests.factories import CustomerFactory, DeviceFactory, VehicleFactory
from vehicles.services import device_bind

T0 = dt.datetime(2026, 11, 22, 8, 0, tzinfo=dt.UTC)
XIAN = (34.2610, 108.9423)


@dataclass(frozen=True)
class Place:
    key: str
    name: str
    lat: float
    lon: float
    radius_m: float
    kind: str = "second_pledge"


class FakePlaces:
    """A tiny stand-in for alarms.spatial: circles checked by distance."""

    def __init__(self, risk=(), fences=()):
        self.risk, self.fences = list(risk), list(fences)

    def _at(self, places, lat, lon, margin=0.0):
        return [p for p in places if distance_m(lat, lon, p.lat, p.lon) <= p.radius_m + margin]

    def risk_points_at(self, lat, lon):
        return self._at(self.risk, lat, lon)

    def annotations_at(self, lat, lon, customer):
        return []

    def fences_at(self, vehicle_id, lat, lon):
        return self._at(self.fences, lat, lon)

    def within(self, key, lat, lon, margin_m=0.0):
        return any(p.key == key for p in self._at(self.risk + self.fences, lat, lon, margin_m))


@pytest.fixture
def car(db):
    customer = CustomerFactory()
    vehicle = VehicleFactory(customer=customer)
    device = DeviceFactory(customer=customer)
    device_bind(vehicle=vehicle, device=device)
    return vehicle, device


def pos(seconds=0, speed=30.0, lat=XIAN[0], lon=XIAN[1], realtime=True, alarms=()):
    return m.Position(
        fix_time=T0 + dt.timedelta(seconds=seconds),
        lat=lat,
        lon=lon,
        valid=True,
        speed_kmh=speed,
        acc=True,
        realtime=realtime,
        alarms=tuple(alarms),
    )


def feed(device, positions=(), engine=None, message_alarms=(), now=None):
    engine = engine or Engine(places=FakePlaces())
    msg = m.Message(
        protocol="gt06",
        type=m.POSITION if positions else m.STATUS,
        device_id=device.identifier,
        positions=tuple(positions),
        alarms=tuple(message_alarms),
    )
    item = Inbound(
        device.pk, msg, T0 + dt.timedelta(seconds=positions[-1].fix_time.second if positions else 0)
    )
    return ingest_batch([item], now=now or T0 + dt.timedelta(hours=1), engine=engine)


def test_device_alarm_is_raised_once_and_repeats_count(car):
    vehicle, device = car
    feed(device, [pos(0, alarms=[m.ALARM_POWER_CUT])])
    feed(device, [pos(30, alarms=[m.ALARM_POWER_CUT])])
    alarm = Alarm.objects.get()
    assert (alarm.kind, alarm.vehicle_id, alarm.customer_id) == (
        "power_cut",
        vehicle.pk,
        vehicle.customer_id,
    )
    assert alarm.target == f"device:{device.pk}"
    assert alarm.occurrences == 2 and alarm.level == 3
    assert alarm.point.y == pytest.approx(XIAN[0])
    assert list(alarm.events.values_list("action", flat=True)) == ["raised"]


def test_blind_area_data_never_raises_now_alarms(car):
    _vehicle, device = car
    feed(
        device,
        [pos(0, speed=150, realtime=False, alarms=[m.ALARM_SOS])],
        message_alarms=[m.ALARM_SOS],
    )
    feed(device, [pos(20, speed=150, realtime=False)])
    assert not Alarm.objects.exists()


def test_status_frame_alarm_codes_without_a_fix(car):
    _vehicle, device = car
    feed(device, message_alarms=[m.ALARM_REMOVAL, "vendor_thing"])
    assert list(Alarm.objects.values_list("kind", flat=True)) == ["removal"]


def test_overspeed_raises_then_auto_closes(car, settings):
    settings.ALARM_AUTO_CLOSE_AFTER_S = 0
    _vehicle, device = car
    engine = Engine(places=FakePlaces())
    feed(device, [pos(0, 130), pos(12, 140)], engine)
    alarm = Alarm.objects.get(kind="overspeed")
    assert alarm.status == "open" and alarm.started_at == T0
    feed(device, [pos(40, 60)], engine)
    alarm.refresh_from_db()
    assert alarm.status == "closed" and alarm.auto_closed
    assert AlarmEvent.objects.filter(alarm=alarm, action="auto_closed").exists()


def test_settings_inherit_from_the_customer_and_the_vehicle_overrides(car):
    vehicle, device = car
    parent = vehicle.customer.parent or vehicle.customer
    AlarmSetting.objects.create(kind="overspeed", customer=parent, enabled=False)
    engine = Engine(places=FakePlaces())
    feed(device, [pos(0, 130), pos(12, 130)], engine)
    assert not Alarm.objects.exists()
    AlarmSetting.objects.create(
        kind="overspeed", vehicle=vehicle, enabled=True, params={"limit_kmh": 100}
    )
    engine.settings.checked = 0  # the cache re-reads at most every few seconds
    feed(device, [pos(30, 110), pos(45, 110)], engine)
    assert Alarm.objects.get().details["limit_kmh"] == 100


def test_entering_a_second_pledge_spot_survives_a_restart(car):
    vehicle, device = car
    spot = Place("riskpoint:9", "某二押点", XIAN[0], XIAN[1], 300)
    places = FakePlaces(risk=[spot])
    feed(device, [pos(0, 20, lat=XIAN[0] + 0.01)], Engine(places=places))  # outside
    feed(device, [pos(60, 10)], Engine(places=places))
    assert list(Alarm.objects.values_list("kind", "target")) == [("area_enter", "riskpoint:9")]
    assert "riskpoint:9" in VehicleState.objects.get(vehicle=vehicle).state["_areas"]
    # A new engine (gateway restarted) resumes from VehicleState: still inside, no second enter.
    feed(device, [pos(120, 5)], Engine(places=places))
    assert Alarm.objects.filter(kind="area_enter").count() == 1
    feed(device, [pos(180, 30, lat=XIAN[0] + 0.01)], Engine(places=places))
    assert Alarm.objects.filter(kind="area_leave", target="riskpoint:9").count() == 1


def test_fixes_older_than_the_last_judged_one_are_ignored(car):
    _vehicle, device = car
    engine = Engine(places=FakePlaces())
    feed(device, [pos(100, 30)], engine)
    feed(device, [pos(10, 150), pos(20, 150)], engine)  # late frames, realtime flag or not
    assert not Alarm.objects.exists()


def test_lifecycle_transitions_and_notes(car, django_user_model):
    vehicle, _device = car
    user = django_user_model.objects.create(username="handler", customer=vehicle.customer)
    alarm = lifecycle.alarm_raise(
        vehicle_id=vehicle.pk, customer_id=vehicle.customer_id, kind="sos", at=T0
    )
    alarm = lifecycle.alarm_acknowledge(alarm=alarm, by=user, note="calling the borrower")
    assert (alarm.status, alarm.acknowledged_by_id) == ("acknowledged", user.pk)
    alarm = lifecycle.alarm_close(alarm=alarm, by=user, note="false alarm")
    assert alarm.note == "calling the borrower\nfalse alarm"
    with pytest.raises(InvalidTransition):
        lifecycle.alarm_acknowledge(alarm=alarm, by=user)
    assert list(alarm.events.values_list("action", flat=True)) == [
        "raised",
        "acknowledged",
        "closed",
    ]
    # Closed: the same condition raises a new alarm.
    again = lifecycle.alarm_raise(
        vehicle_id=vehicle.pk, customer_id=vehicle.customer_id, kind="sos", at=T0
    )
    assert again is not None and again.pk != alarm.pk


def test_a_flapping_vehicle_cannot_flood(car, settings):
    settings.ALARM_MAX_PER_HOUR = 3
    vehicle, _device = car
    raised = 0
    for i in range(10):
        at = T0 + dt.timedelta(minutes=i)
        alarm = lifecycle.alarm_raise(
            vehicle_id=vehicle.pk,
            customer_id=vehicle.customer_id,
            kind="area_enter",
            target="riskpoint:1",
            at=at,
            now=at,
        )
        if alarm:
            raised += 1
            lifecycle.alarm_close(alarm=alarm, by=None, now=at)
    assert raised == 3
    assert sum(Alarm.objects.values_list("occurrences", flat=True)) == 10


def test_auto_close_only_for_kinds_that_can_end(car):
    vehicle, _device = car
    lifecycle.alarm_raise(
        vehicle_id=vehicle.pk, customer_id=vehicle.customer_id, kind="area_enter", at=T0
    )
    assert (
        lifecycle.alarms_auto_close(
            vehicle_id=vehicle.pk, kind="area_enter", at=T0 + dt.timedelta(hours=1)
        )
        == 0
    )


# --- The states kept in memory (DESIGN.md: read once per vehicle, written back every batch) ---
def state_reads(queries) -> int:
    return sum(
        1 for q in queries if q["sql"].startswith("SELECT") and "alarms_vehiclestate" in q["sql"]
    )


def test_a_committed_batch_leaves_the_state_in_memory(car, django_capture_on_commit_callbacks):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    vehicle, device = car
    spot = Place("riskpoint:9", "某二押点", XIAN[0], XIAN[1], 300)
    engine = Engine(places=FakePlaces(risk=[spot]))
    with django_capture_on_commit_callbacks(execute=True):
        feed(device, [pos(0, 20, lat=XIAN[0] + 0.01)], engine)  # outside
    with (
        CaptureQueriesContext(connection) as queries,
        django_capture_on_commit_callbacks(execute=True),
    ):
        feed(device, [pos(60, 10)], engine)  # inside: enter
    assert state_reads(queries) == 0
    assert list(Alarm.objects.values_list("kind", flat=True)) == ["area_enter"]
    # What memory holds is what the database holds.
    assert "riskpoint:9" in VehicleState.objects.get(vehicle=vehicle).state["_areas"]


def test_a_rolled_back_batch_is_forgotten(car, django_capture_on_commit_callbacks):
    from django.db import transaction

    _vehicle, device = car
    spot = Place("riskpoint:9", "某二押点", XIAN[0], XIAN[1], 300)
    engine = Engine(places=FakePlaces(risk=[spot]))
    with django_capture_on_commit_callbacks(execute=True):
        feed(device, [pos(0, 10)], engine)  # inside: enter
    assert Alarm.objects.filter(kind="area_enter").count() == 1

    class Crash(Exception):
        pass

    # The car leaves, but the batch's transaction fails after the engine ran: nothing of it
    # is stored, the tracker is not acked and sends the fix again.
    with pytest.raises(Crash), transaction.atomic():
        feed(device, [pos(60, 30, lat=XIAN[0] + 0.01)], engine)
        raise Crash
    assert not Alarm.objects.filter(kind="area_leave").exists()

    with django_capture_on_commit_callbacks(execute=True):
        feed(device, [pos(60, 30, lat=XIAN[0] + 0.01)], engine)  # the resent fix
    assert Alarm.objects.filter(kind="area_leave", target="riskpoint:9").count() == 1


def test_a_repeat_counts_and_never_moves_last_seen_backwards(car):
    vehicle, _device = car
    raise_at = {"vehicle_id": vehicle.pk, "customer_id": vehicle.customer_id, "kind": "overspeed"}
    first = lifecycle.alarm_raise(**raise_at, at=T0 + dt.timedelta(seconds=10), now=T0)
    assert first is not None
    assert lifecycle.alarm_raise(**raise_at, at=T0 + dt.timedelta(seconds=5), now=T0) is None
    first.refresh_from_db()
    assert (first.occurrences, first.last_seen_at) == (2, T0 + dt.timedelta(seconds=10))
    assert lifecycle.alarm_raise(**raise_at, at=T0 + dt.timedelta(seconds=20), now=T0) is None
    first.refresh_from_db()
    assert (first.occurrences, first.last_seen_at) == (3, T0 + dt.timedelta(seconds=20))
    assert Alarm.objects.count() == 1
