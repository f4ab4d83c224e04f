"""The scheduled absence / time scan: offline by work mode, parking overtime with no new fix,
claim-once per run, idempotent repeats, auto-close when the device is back."""

from __future__ import annotations

import datetime as dt

import time_machine
from django.core.management import call_command

from alarms.engine import Engine, scan
from alarms.models import Alarm, VehicleState
from devices.models import Device
from tests.factories import CustomerFactory, DeviceFactory, VehicleFactory
from vehicles.services import device_bind

T0 = dt.datetime(2026, 11, 22, 8, 0, tzinfo=dt.UTC)


def mounted(seen_minutes_ago: int, **device):
    customer = CustomerFactory()
    vehicle = VehicleFactory(customer=customer)
    dev = DeviceFactory(customer=customer, **device)
    device_bind(vehicle=vehicle, device=dev)
    Device.all_objects.filter(pk=dev.pk).update(
        last_seen_at=T0 - dt.timedelta(minutes=seen_minutes_ago), online=False
    )
    return vehicle, dev


def test_offline_by_work_mode_once_per_run_and_closed_when_back(db):
    late, late_dev = mounted(30)  # realtime: due after 10 min
    sleeper, _ = mounted(30, kind="wireless", work_mode="deep_sleep", work_params={"days": 1})
    first = scan(Engine(), now=T0)
    assert first.vehicles == 2
    assert list(Alarm.objects.values_list("vehicle_id", "kind")) == [(late.pk, "offline")]
    assert scan(Engine(), now=T0).vehicles == 0  # already claimed by this run
    scan(Engine(), now=T0 + dt.timedelta(minutes=1))
    alarm = Alarm.objects.get()
    assert alarm.occurrences == 2 and alarm.status == "open"  # a repeat, not a new alarm
    Device.all_objects.filter(pk=late_dev.pk).update(last_seen_at=T0 + dt.timedelta(minutes=2))
    scan(Engine(), now=T0 + dt.timedelta(minutes=3))
    alarm.refresh_from_db()
    assert alarm.status == "closed" and alarm.auto_closed
    assert not Alarm.objects.filter(vehicle=sleeper).exists()


def test_parked_with_no_new_fix_raises_parking_overtime(db):
    vehicle, _ = mounted(1)
    VehicleState.objects.create(
        vehicle=vehicle,
        state={"parking_overtime": {"since": (T0 - dt.timedelta(hours=25)).isoformat()}},
        updated_at=T0,
    )
    scan(Engine(), now=T0)
    assert list(Alarm.objects.values_list("kind", flat=True)) == ["parking_overtime"]


@time_machine.travel(T0, tick=False)
def test_scan_job_and_schedule_command(db, capsys):
    call_command("setup_schedules")
    call_command("setup_schedules")
    from django_q.models import Schedule

    assert Schedule.objects.filter(func="alarms.jobs.scan_alarms").count() == 1
    from alarms.jobs import scan_alarms

    mounted(60)
    assert scan_alarms()["raised"] == 1
