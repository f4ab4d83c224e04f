"""The batch writer: hygiene, bulk insert, device state once per batch, acks after commit."""

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from devices.models import Device
from devices.services import device_soft_delete
from gateway.hygiene import HygieneConfig
from gateway.ingest import Inbound, ingest_batch
from gateway.models import Position
from gateway.protocols import messages as m
from gateway.selectors import positions_for_track
from tests.factories import DeviceFactory, VehicleFactory
from vehicles.services import device_bind

NOW = dt.datetime(2026, 11, 22, 8, 0, tzinfo=dt.UTC)
BASE = (34.2610, 108.9423)

pytestmark = pytest.mark.usefixtures("frozen")


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def pos(seconds=0, dlat=0.0, *, valid=True, realtime=True, **kw):
    return m.Position(
        fix_time=NOW + dt.timedelta(seconds=seconds),
        lat=BASE[0] + dlat,
        lon=BASE[1],
        valid=valid,
        realtime=realtime,
        **kw,
    )


def gt06(*positions, serial=1, **kw):
    return m.Message(
        protocol="gt06", type=m.POSITION, device_id=None, serial=serial, positions=positions, **kw
    )


def item(device, message, token=None, received=0):
    return Inbound(
        device_id=device.pk,
        message=message,
        received_at=NOW + dt.timedelta(seconds=received),
        token=token,
    )


def test_positions_are_stored_with_their_fields(world):
    device, vehicle = world.devices["a1"], world.vehicles["a1"]
    cell = m.Cell(mcc=460, mnc=0, lac=0x2866, cid=0x0E2A)
    fix = pos(
        -5,
        speed_kmh=42.5,
        course=271,
        altitude_m=410.0,
        satellites=9,
        acc=True,
        fuel_cut=False,
        battery_pct=88,
        external_voltage=12.6,
        gsm_signal=75,
        odometer_km=1234.5,
        sleeping=False,
        alarms=(m.ALARM_VIBRATION,),
        cells=(cell,),
        extra={"alarm_word": 0x10, "raw": b"\x01\x02", "names": ("a", "b")},
    )
    result = ingest_batch([item(device, gt06(fix), token="t1")])
    assert (result.stored, result.acks, result.rejected) == (1, ["t1"], [])
    row = Position.objects.get()
    assert result.positions[0].pk == row.pk
    assert row.device_id == device.pk and row.vehicle_id == vehicle.pk
    assert row.fix_time == NOW - dt.timedelta(seconds=5)
    assert row.received_at == NOW
    assert (row.lat, row.lon) == pytest.approx(BASE)
    assert row.point.srid == 4326
    assert (row.speed_kmh, row.course, row.altitude_m, row.satellites) == (42.5, 271, 410.0, 9)
    assert (row.acc, row.fuel_cut, row.sleeping, row.realtime, row.valid) == (
        True,
        False,
        False,
        True,
        True,
    )
    assert (row.battery_pct, row.external_voltage, row.gsm_signal, row.odometer_km) == (
        88,
        12.6,
        75,
        1234.5,
    )
    assert row.alarms == ["vibration"] and row.flags == [] and row.source == "gps"
    assert row.extra["alarm_word"] == 0x10 and row.extra["raw"] == "0102"
    assert row.extra["cells"] == [
        {"mcc": 460, "mnc": 0, "lac": 0x2866, "cid": 0x0E2A, "rssi": None}
    ]


def test_device_state_follows_the_freshest_valid_realtime_fix(world):
    device = world.devices["a1"]
    jt808 = m.Message(
        protocol="jt808",
        type=m.POSITION,
        device_id=None,
        positions=(
            pos(-60, 0.001, speed_kmh=30, acc=True),
            pos(-30, 0.002, speed_kmh=50, acc=True),
        ),
    )
    later_invalid = gt06(pos(-10, 0.01, valid=False, speed_kmh=0))
    result = ingest_batch(
        [item(device, jt808, "a", received=-1), item(device, later_invalid, "b", received=0)]
    )
    assert result.stored == 3
    device.refresh_from_db()
    assert device.online and device.last_seen_at == NOW
    assert device.last_fix_at == NOW - dt.timedelta(seconds=30)  # the invalid one is newer
    assert device.last_position.y == pytest.approx(BASE[0] + 0.002)
    assert (device.last_speed_kmh, device.last_acc) == (50, True)
    assert Position.objects.get(fix_time=NOW - dt.timedelta(seconds=10)).flags == ["invalid_fix"]


def test_blind_area_fix_is_stored_but_never_moves_the_last_position_back(world):
    device = world.devices["a1"]
    ingest_batch([item(device, gt06(pos(-30, 0.002, speed_kmh=40, acc=True)), "now")])
    # An hour-old re-upload, far away, and an older "realtime" one: stored, drawn in the track.
    late = gt06(pos(-3600, 0.3, realtime=False), pos(-3500, 0.31, realtime=False))
    older = gt06(pos(-120, 0.05, speed_kmh=10))
    result = ingest_batch([item(device, late, "late"), item(device, older, "older")])
    assert result.stored == 3 and result.acks == ["late", "older"]
    device.refresh_from_db()
    assert device.last_fix_at == NOW - dt.timedelta(seconds=30)
    assert device.last_position.y == pytest.approx(BASE[0] + 0.002)
    track = positions_for_track(world.vehicles["a1"], NOW - dt.timedelta(hours=2), NOW)
    assert [p.fix_time for p in track] == sorted(p.fix_time for p in track)
    assert [p.realtime for p in track] == [False, False, True, True]


def test_duplicates_are_dropped_but_acked(world):
    device = world.devices["a1"]
    frame = gt06(pos(-30, 0.002), pos(-20, 0.003))
    first = ingest_batch([item(device, frame, "first")])
    assert first.stored == 2
    # The device missed the ack and resends; inside one batch the same fix twice is also one row.
    again = ingest_batch([item(device, frame, "again"), item(device, gt06(pos(-10)), "new")])
    assert again.stored == 1
    assert again.rejected == [("again", "duplicate"), ("again", "duplicate")]
    assert again.acks == ["again", "new"]
    twice = ingest_batch(
        [item(device, gt06(pos(0, 0.1)), "x"), item(device, gt06(pos(0, 0.1)), "y")]
    )
    assert twice.stored == 1 and twice.rejected == [("y", "duplicate")]
    assert Position.objects.count() == 4


def test_future_fix_is_rejected_with_a_reason_but_acked(world):
    device = world.devices["a1"]
    result = ingest_batch(
        [item(device, gt06(pos(11 * 60)), "future"), item(device, gt06(pos(5 * 60)), "soon")]
    )
    assert result.rejected == [("future", "future")]
    assert result.acks == ["future", "soon"]
    assert result.stored == 1
    # A configured wider tolerance keeps it.
    wide = HygieneConfig(future_tolerance=dt.timedelta(hours=1))
    assert ingest_batch([item(device, gt06(pos(11 * 60)), "f")], config=wide).stored == 1


def test_implied_speed_and_drift_are_flagged_and_drift_holds_the_parked_spot(world):
    device = world.devices["a1"]
    ingest_batch([item(device, gt06(pos(-120, acc=False, speed_kmh=0)))])
    # 20 m wander with ACC off: drift; the car stays at the parked spot.
    ingest_batch([item(device, gt06(pos(-90, 0.0002, acc=False, speed_kmh=0)))])
    device.refresh_from_db()
    assert device.last_position.y == pytest.approx(BASE[0])
    assert device.last_fix_at == NOW - dt.timedelta(seconds=90)
    # 11 km in 30 s.
    ingest_batch([item(device, gt06(pos(-60, 0.1, acc=True, speed_kmh=60)))])
    flags = list(Position.objects.order_by("fix_time").values_list("flags", flat=True))
    assert flags == [[], ["drift"], ["implied_speed"]]


def test_status_and_heartbeat_update_device_state(world):
    device = world.devices["a1"]
    status = m.Message(
        protocol="gt06",
        type=m.STATUS,
        device_id=None,
        acc=False,
        battery_pct=55,
        external_voltage=0.0,
        gsm_signal=40,
    )
    beat = m.Message(protocol="jt808", type=m.HEARTBEAT, device_id=None)
    result = ingest_batch([item(device, status, "s", received=-3), item(device, beat, "h")])
    assert (result.stored, result.acks) == (0, ["s", "h"])
    device.refresh_from_db()
    assert device.online and device.last_seen_at == NOW
    assert (device.last_acc, device.battery_pct, device.external_voltage, device.gsm_signal) == (
        False,
        55,
        0.0,
        40,
    )
    assert device.last_fix_at is None


def test_deleted_or_unknown_device_is_rejected(world):
    device = world.devices["a1"]
    device_soft_delete(device=device)
    result = ingest_batch(
        [
            item(device, gt06(pos()), "deleted"),
            Inbound(device_id=987654, message=gt06(pos()), received_at=NOW, token="ghost"),
        ]
    )
    assert result.rejected == [("deleted", "unknown_device"), ("ghost", "unknown_device")]
    assert result.stored == 0 and not Position.objects.exists()


def test_position_keeps_the_vehicle_of_the_binding_at_ingest(world):
    device = DeviceFactory(customer=world.customers["a1"])
    ingest_batch([item(device, gt06(pos(-60)))])
    vehicle = VehicleFactory(customer=world.customers["a1"])
    device_bind(vehicle=vehicle, device=device)
    ingest_batch([item(device, gt06(pos(-30, 0.01)))])
    assert list(Position.objects.order_by("fix_time").values_list("vehicle_id", flat=True)) == [
        None,
        vehicle.pk,
    ]


def _batch(devices, per_device, start):
    items = []
    for i in range(per_device):
        for n, device in enumerate(devices):
            fix = pos(start + i, 0.0001 * i + n * 0.01, speed_kmh=30, acc=True)
            items.append(item(device, gt06(fix), token=(device.pk, i)))
    return items


def test_query_count_does_not_grow_with_the_batch(world):
    devices = list(world.devices.values()) + list(world.stock.values())[:4]
    assert len(devices) == 10
    small, large = _batch(devices, 1, -600), _batch(devices, 20, -500)
    with CaptureQueriesContext(connection) as few:
        assert ingest_batch(small).stored == 10
    with CaptureQueriesContext(connection) as many:
        assert ingest_batch(large).stored == 200
    if connection.vendor == "postgresql":
        assert len(few) == len(many)
    else:
        # SQLite caps a statement at 999 parameters: Django cuts the bulk insert into chunks of
        # ~43 rows there. Everything else is the same handful of queries.
        def others(ctx):
            return [q for q in ctx.captured_queries if "INSERT" not in q["sql"]]

        assert len(others(few)) == len(others(many))
    assert len(few) <= 7
    assert Device.objects.filter(pk__in=[d.pk for d in devices], online=True).count() == 10


def test_fast_rows_carry_every_column(world):
    """`_position_row` skips Model.__init__: a new Position column must be added there too."""
    from gateway.ingest import _position_row

    row = _position_row(item(world.devices["a1"], gt06(pos())), pos(), None, ())
    columns = {f.attname for f in Position._meta.concrete_fields}
    assert set(row.__dict__) - {"_state"} == columns
    assert row.point.y == pytest.approx(BASE[0]) and row.point.srid == 4326
    assert row.device == world.devices["a1"] and row.vehicle is None
