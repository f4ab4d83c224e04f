"""`manage.py simulate_devices`: drive the bound live devices against a running gateway.

Every vehicle gets one seeded route (all its devices follow it) and every device one TCP client
(see `gateway.simulator.runner`). Runs until SIGINT / SIGTERM or `--duration` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from django.core.management.base import BaseCommand, CommandError

from devices.models import Device
from gateway.management.commands.run_gateway import parse_ports
from gateway.simulator.episodes import plan
from gateway.simulator.runner import SimDevice, Simulator


def load_devices(limit: int | None = None) -> list[SimDevice]:
    """Live devices bound to a vehicle (active binding), all protocols, oldest first."""
    rows = (
        Device.objects.filter(bindings__bound_at__isnull=False, bindings__unbound_at__isnull=True)
        .values_list("identifier", "protocol", "bindings__vehicle_id")
        .order_by("pk")
        .distinct()
    )
    if limit is not None:
        rows = rows[:limit]
    return [SimDevice(identifier=i, protocol=p, vehicle_id=v) for i, p, v in rows]


class Command(BaseCommand):
    help = "Simulate the bound devices: one client per device sending locations to the gateway."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="gateway address (%(default)s)")
        parser.add_argument(
            "--port",
            action="append",
            default=[],
            metavar="PROTO=PORT",
            help="gateway port per protocol (defaults as run_gateway); repeatable",
        )
        parser.add_argument(
            "--interval", type=float, default=10.0, help="seconds between locations (%(default)s)"
        )
        parser.add_argument("--limit", type=int, default=None, help="simulate at most N devices")
        parser.add_argument(
            "--speedup", type=float, default=1.0, help="simulated seconds per real second"
        )
        parser.add_argument(
            "--duration", type=float, default=None, help="stop after S seconds (default: never)"
        )
        parser.add_argument(
            "--episodes",
            action="store_true",
            help="let a few cars play the scripted alarm episodes (gateway.simulator.episodes)",
        )

    def handle(self, *args, **options):
        if not logging.getLogger().handlers:
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        logging.getLogger("carloan.gateway.simulator").setLevel(logging.INFO)
        if options["interval"] <= 0 or options["speedup"] <= 0:
            raise CommandError("--interval and --speedup must be positive")
        if options["limit"] is not None and options["limit"] < 0:
            raise CommandError("--limit must not be negative")
        ports = parse_ports(options["port"])
        devices = [d for d in load_devices(options["limit"]) if d.protocol in ports]
        if not devices:
            self.stdout.write("no bound devices to simulate")
            return
        vehicles = len({d.vehicle_id for d in devices})
        self.stdout.write(f"simulating {len(devices)} devices on {vehicles} vehicles")
        simulator = Simulator(
            devices,
            host=options["host"],
            ports=ports,
            interval=options["interval"],
            speedup=options["speedup"],
            episodes=plan(devices) if options["episodes"] else None,
        )
        stats = asyncio.run(self._run(simulator, options["duration"]))
        self.stdout.write(
            f"stopped: {stats.frames_sent} frames sent, {stats.acks_received} acks received"
        )

    async def _run(self, simulator: Simulator, duration: float | None):
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, simulator.stop)
        return await simulator.run(duration)
