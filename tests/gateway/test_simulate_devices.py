"""`simulate_devices` end to end: the Simulator drives one bound device per protocol against a
real Gateway over 127.0.0.1 sockets; every device ends up with stored positions near Xi'an."""

from __future__ import annotations

import asyncio

import pytest
from django.core.management import call_command
from django.db import connections

from devices.models import Device
from devices.services import device_create
from gateway.management.commands.simulate_devices import load_devices
from gateway.models import Position
from gateway.server import Gateway, GatewayConfig
from gateway.simulator.routes import CENTRE, distance_m
from gateway.simulator.runner import Simulator
from tests.factories import CustomerFactory, DeviceFactory, VehicleFactory
from vehicles.services import device_bind

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 8.0


def bound(protocol: str, identifier: str | None = None, vehicle=None) -> Device:
    customer = vehicle.customer if vehicle is not None else CustomerFactory()
    if identifier is None:  # GT06: a Luhn-valid IMEI from the factory
        identifier = DeviceFactory.build().identifier
    device = device_create(
        customer=customer, identifier=identifier, protocol=protocol, kind="wired"
    )
    device_bind(vehicle=vehicle or VehicleFactory(customer=customer), device=device)
    return device


async def db(fn):
    def call():
        try:
            return fn()
        finally:
            connections.close_all()

    return await asyncio.to_thread(call)


def test_load_devices_only_bound_and_limited():
    gt06 = bound("gt06")
    bound("jt808", "013912345678", vehicle=gt06.bindings.get().vehicle)
    device_create(customer=CustomerFactory(), identifier="4210051415", protocol="h02", kind="wired")
    devices = load_devices()
    assert {d.protocol for d in devices} == {"gt06", "jt808"}
    assert len({d.vehicle_id for d in devices}) == 1
    assert len(load_devices(1)) == 1


def test_simulator_feeds_the_gateway():
    devices = [bound("gt06"), bound("jt808", "013912345678"), bound("h02", "4210051415")]
    sims = load_devices()
    assert len(sims) == 3

    async def main():
        gateway = Gateway(GatewayConfig(ports={"gt06": 0, "jt808": 0, "h02": 0}, batch_wait=0.02))
        await gateway.start()
        try:
            sim = Simulator(sims, "127.0.0.1", gateway.ports, interval=0.2, speedup=30)
            task = asyncio.create_task(sim.run())
            await asyncio.sleep(2.0)
            # Online while connected (the gateway marks them offline once they disconnect).
            live = await db(lambda: list(Device.objects.filter(pk__in=[d.pk for d in devices])))
            sim.stop()
            stats = await asyncio.wait_for(task, LIMIT)
            return live, stats
        finally:
            await asyncio.wait_for(gateway.stop(), LIMIT)

    live, stats = asyncio.run(asyncio.wait_for(main(), 3 * LIMIT))
    assert stats.frames_sent >= 3 * 5
    assert stats.acks_received >= 3  # GT06 login + JT808 auth at least
    assert stats.reconnects == 0  # no connection dropped
    for device in live:
        assert device.online, device.protocol
        assert device.last_position is not None
        lat, lon = device.last_position.y, device.last_position.x
        assert distance_m(lat, lon, *CENTRE) < 30_000, device.protocol
        assert Position.objects.filter(device=device).count() >= 2, device.protocol


def test_command_without_devices(capsys):
    call_command("simulate_devices", "--duration", "0.1")
    assert "no bound devices" in capsys.readouterr().out
