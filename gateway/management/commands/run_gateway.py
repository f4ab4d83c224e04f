"""`manage.py run_gateway [--host H] [--port PROTO=PORT ...]`: the device gateway process."""

from __future__ import annotations

import asyncio
import logging
import signal

from django.core.management.base import BaseCommand, CommandError

from devices.protocols import PROTOCOLS
from gateway.server import DEFAULT_IDLE_TIMEOUT, DEFAULT_PORTS, Gateway, GatewayConfig


def parse_ports(values: list[str]) -> dict[str, int]:
    """`gt06=5023` pairs over the defaults; `proto=0` lets the OS choose, `proto=off` drops one."""
    ports = dict(DEFAULT_PORTS)
    for value in values:
        name, sep, port = value.partition("=")
        name = name.strip().lower()
        if not sep or name not in PROTOCOLS:
            raise CommandError(
                f"--port expects PROTO=PORT with PROTO one of {', '.join(PROTOCOLS)}: {value!r}"
            )
        if port.strip().lower() == "off":
            ports.pop(name, None)
            continue
        try:
            number = int(port)
        except ValueError:
            raise CommandError(f"--port {value!r}: not a port number") from None
        if not 0 <= number <= 65535:
            raise CommandError(f"--port {value!r}: out of range")
        ports[name] = number
    if not ports:
        raise CommandError("no protocol left to listen for")
    return ports


class Command(BaseCommand):
    help = "Run the TCP device gateway (GT06, JT/T 808, H02), one listener per protocol."

    def add_arguments(self, parser):
        parser.add_argument(
            "--host", default="127.0.0.1", help="address to bind (default %(default)s)"
        )
        parser.add_argument(
            "--port",
            action="append",
            default=[],
            metavar="PROTO=PORT",
            help="listen port per protocol (defaults: "
            + ", ".join(f"{k}={v}" for k, v in DEFAULT_PORTS.items())
            + "); repeatable; PROTO=off disables one",
        )
        parser.add_argument(
            "--idle-timeout",
            type=float,
            default=DEFAULT_IDLE_TIMEOUT,
            help="seconds without data before a connection is closed (default %(default)s)",
        )

    def handle(self, *args, **options):
        if not logging.getLogger("carloan.gateway").handlers and not logging.getLogger().handlers:
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        logging.getLogger("carloan.gateway").setLevel(logging.INFO)
        config = GatewayConfig(
            host=options["host"],
            ports=parse_ports(options["port"]),
            idle_timeout=options["idle_timeout"],
        )
        asyncio.run(self._serve(config))
        self.stdout.write("gateway stopped")

    async def _serve(self, config: GatewayConfig) -> None:
        gateway = Gateway(config)
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        try:
            await gateway.start()
        except OSError as exc:
            await gateway.stop()
            raise CommandError(f"cannot listen: {exc}") from exc
        # Gateway.start() logged "<proto> listening on host:port" per listener.
        await stopping.wait()
        self.stdout.write("stopping: flushing the writer queue")
        await gateway.stop()
