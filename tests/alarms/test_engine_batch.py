"""Per-batch work of the engine: the places index answers the whole batch with one prefetch, and
the alarms a batch raises are handed to the notifications in one call after the commit (none
when the batch rolls back)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction

from alarms.engine import Engine, PositionInput
from alarms.models import Alarm
from tests.alarms.test_engine import T0, XIAN, FakePlaces, Place
from tests.factories import CustomerFactory, DeviceFactory, VehicleFactory
from vehicles.services import device_bind


class CountingPlaces(FakePlaces):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.prefetched: list[list[tuple[float, float]]] = []

    def prefetch(self, positions):
        self.prefetched.append(list(positions))


def make_cars(n):
    customer = CustomerFactory()
    out = []
    for _ in range(n):
        vehicle = VehicleFactory(customer=customer)
        device = DeviceFactory(customer=customer)
        device_bind(vehicle=vehicle, device=device)
        out.append((vehicle, device))
    return out


def fix(vehicle, device, seconds, lat, lon, *, realtime=True):
    return PositionInput(
        device_id=device.pk,
        vehicle_id=vehicle.pk,
        fix_time=T0 + dt.timedelta(seconds=seconds),
        lat=lat,
        lon=lon,
        valid=True,
        realtime=realtime,
        speed_kmh=30.0,
        acc=True,
    )


SPOT = Place("riskpoint:1", "二押点 1", XIAN[0], XIAN[1], 200)


@pytest.fixture
def notified(monkeypatch):
    calls: list[list[int]] = []
    import alarms.notify

    monkeypatch.setattr(alarms.notify, "alarm_notify", lambda ids: calls.append(sorted(ids)))
    return calls


@pytest.mark.django_db
def test_a_batch_is_prefetched_once_with_the_fixes_that_drive_rules():
    (v1, d1), (v2, d2) = make_cars(2)
    places = CountingPlaces(risk=[SPOT])
    batch = [
        fix(v1, d1, 0, 34.30, 108.90),
        fix(v2, d2, 0, 34.31, 108.91),
        fix(v1, d1, 10, 34.32, 108.92),
        fix(v2, d2, 5, 34.40, 108.99, realtime=False),  # blind area: judged by no rule
    ]
    with transaction.atomic():
        Engine(places=places).process(batch, now=T0)
    assert len(places.prefetched) == 1
    assert sorted(places.prefetched[0]) == [(34.30, 108.90), (34.31, 108.91), (34.32, 108.92)]


@pytest.mark.django_db(transaction=True)
def test_the_alarms_of_one_batch_are_notified_in_one_call_after_the_commit(notified):
    cars = make_cars(3)
    engine = Engine(places=FakePlaces(risk=[SPOT]))
    batch = [fix(v, d, i, *XIAN) for i, (v, d) in enumerate(cars)]  # all three enter the spot
    with transaction.atomic():
        result = engine.process(batch, now=T0)
        assert notified == []  # nothing before the commit
    assert len(result.raised) == 3
    assert notified == [sorted(result.raised)]
    assert set(Alarm.objects.values_list("kind", flat=True)) == {"area_enter"}


@pytest.mark.django_db(transaction=True)
def test_a_batch_that_rolls_back_notifies_nobody(notified):
    cars = make_cars(2)
    engine = Engine(places=FakePlaces(risk=[SPOT]))
    batch = [fix(v, d, i, *XIAN) for i, (v, d) in enumerate(cars)]
    with pytest.raises(RuntimeError), transaction.atomic():
        assert len(engine.process(batch, now=T0).raised) == 2
        raise RuntimeError("the ingest failed after the engine ran")
    assert notified == []
    assert not Alarm.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_repeat_in_the_next_batch_is_not_notified_again(notified):
    [(vehicle, device)] = make_cars(1)
    engine = Engine(places=FakePlaces(risk=[SPOT]))
    with transaction.atomic():
        engine.process([fix(vehicle, device, 0, *XIAN)], now=T0)
    with transaction.atomic():
        engine.process([fix(vehicle, device, 10, *XIAN)], now=T0)  # still inside: no new alarm
    assert len(notified) == 1 and len(notified[0]) == 1


@pytest.mark.django_db
def test_two_devices_of_one_car_reporting_the_same_second_are_both_judged():
    """Separation compares the car's devices: a fix of the second device stamped the same second
    as the first device's must not be dropped as "already judged"."""
    [(vehicle, wired)] = make_cars(1)
    wireless = DeviceFactory(customer=vehicle.customer)
    device_bind(vehicle=vehicle, device=wireless)
    engine = Engine(places=FakePlaces())
    far = (XIAN[0] + 0.02, XIAN[1])  # 2.2 km north
    with transaction.atomic():
        engine.process([fix(vehicle, wired, 0, *XIAN), fix(vehicle, wireless, 0, *far)], now=T0)
    assert list(Alarm.objects.values_list("kind", flat=True)) == ["separation"]
    # The same fix of the same device again (a resent frame) is not judged twice.
    with transaction.atomic():
        result = engine.process([fix(vehicle, wireless, 0, *far)], now=T0)
    assert result.fixes == 0
