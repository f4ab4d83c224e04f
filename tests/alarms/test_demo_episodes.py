"""`make demo`'s "done when": the scripted cars raise every platform alarm kind (and the tamper /
power-cut device alarms) within minutes. No sockets: the simulator's own code (`Simulator` with
the episodes `plan` casts: routes, silences, the frames it would send) is stepped by hand, each
frame decoded by the gateway's codec and stored by `ingest_batch` with the engine, the scheduled
scan run once a minute, all on a fixed simulated clock, over the demo data `alarms.demo` builds."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
import time_machine

from accounts.models import Customer
from alarms import kinds
from alarms.demo import build_alarm_demo
from alarms.engine import Engine, scan
from alarms.models import Alarm, AlarmSetting
from devices.models import Device
from devices.services import device_create
from gateway.ingest import Inbound, ingest_batch
from gateway.management.commands.simulate_devices import load_devices
from gateway.protocols import gt06, h02, jt808
from gateway.simulator import episodes as ep
from gateway.simulator.runner import Simulator
from tests.factories import CustomerFactory, DeviceFactory, VehicleFactory
from vehicles.services import device_bind

T0 = dt.datetime(2026, 12, 7, 2, 0, tzinfo=dt.UTC)  # 10:00 in Xi'an
INTERVAL = 10  # seconds between two locations, as in `make demo`
MINUTES = 12
CODECS = {"gt06": gt06, "jt808": jt808, "h02": h02}


def build_fleet() -> dict[str, Customer]:
    """14 cars of two branches: GT06, JT/T 808 and H02 trackers, one car with a wired and a
    wireless one (the separation episode needs two)."""
    lender = CustomerFactory(name="演示租赁")
    branches = [CustomerFactory(name=f"网点{i}", parent=lender) for i in (1, 2)]
    for i in range(14):
        vehicle = VehicleFactory(customer=branches[i % 2])
        protocol = ("gt06", "jt808", "h02")[i % 3]
        identifier = {
            "gt06": DeviceFactory.build().identifier,
            "jt808": f"0139{i:08d}",
            "h02": f"42{i:08d}",
        }[protocol]
        device = device_create(
            customer=vehicle.customer, identifier=identifier, protocol=protocol, kind="wired"
        )
        device_bind(vehicle=vehicle, device=device)
        if i == 6:
            extra = device_create(
                customer=vehicle.customer,
                identifier=DeviceFactory.build().identifier,
                protocol="gt06",
                kind="wireless",
            )
            device_bind(vehicle=vehicle, device=extra)
    return {"lender": lender, "b1": branches[0], "b2": branches[1]}


@pytest.mark.django_db
def test_the_scripted_episodes_raise_every_platform_alarm_within_minutes():
    with time_machine.travel(T0, tick=False):
        build_fleet()
        customers = {c.name: c for c in Customer.objects.all()}
        made = build_alarm_demo(seed=7, customers=customers)
    devices = load_devices()
    cast = ep.plan(devices)
    assert made["scripted cars"] == len(ep.EPISODES) == len(cast)
    assert AlarmSetting.objects.filter(vehicle__isnull=False).count() == sum(
        len(e.settings) for e in ep.EPISODES
    )

    now = [T0]
    sim = Simulator(
        [d for d in devices if d.vehicle_id in cast],
        ports={"gt06": 1, "jt808": 2, "h02": 3},
        interval=INTERVAL,
        clock=lambda: now[0],
        episodes=cast,
    )
    engine = Engine()
    pks = dict(Device.objects.values_list("identifier", "pk"))
    serials = itertools.count(1).__next__
    first: dict[tuple[int, str], float] = {}
    for step in range(1, MINUTES * 60 // INTERVAL + 1):
        t = step * INTERVAL
        now[0] = T0 + dt.timedelta(seconds=t)
        for vehicle_id, route in sim.routes.items():
            sim.fixes[vehicle_id] = route.step(INTERVAL)
        items = []
        for device in sim.devices:
            if sim._silent(device):
                continue
            for frame in sim.tick_frames(device, serials):
                for message in CODECS[device.protocol].decode(frame):
                    items.append(Inbound(pks[device.identifier], message, now[0]))
        with time_machine.travel(now[0], tick=False):
            result = ingest_batch(items, now=now[0], engine=engine)
            assert not result.rejected, result.rejected  # no fix refused by the hygiene
            if t % 60 == 0:
                scan(engine, now=now[0])
        for alarm in Alarm.objects.values("vehicle_id", "kind"):
            first.setdefault((alarm["vehicle_id"], alarm["kind"]), t)

    raised = {kind for _vehicle, kind in first}
    assert raised >= kinds.PLATFORM_KINDS, sorted(kinds.PLATFORM_KINDS - raised)
    assert {"power_cut", "removal"} <= raised
    # Each episode shows its own alarms, on its own car, about when it says.
    for vehicle_id, episode in cast.items():
        mine = {kind: at for (v, kind), at in first.items() if v == vehicle_id}
        assert set(episode.kinds) <= set(mine), (episode.name, mine)
        soonest = min(mine[k] for k in episode.kinds)
        assert soonest <= episode.first_alarm_s + 60, (episode.name, soonest)
