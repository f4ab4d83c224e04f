"""`manage.py run_gateway [--host H] [--port PROTO=PORT ...]`: the device gateway process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from devices.protocols import PROTOCOLS
from gateway.server import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_PORTS,
    Gateway,
    GatewayConfig,
    config_from_settings,
)


def parse_ports(values: list[str], defaults: dict[str, int] | None = None) -> dict[str, int]:
    """`gt06=5023` pairs over the defaults (settings.GATEWAY_PORTS); `proto=0` lets the OS
    choose, `proto=off` drops one."""
    ports = dict(DEFAULT_PORTS if defaults is None else defaults)
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


def raise_open_files_limit() -> tuple[int, int]:
    """Raise the soft limit on open files to the hard limit: every device connection is a file
    descriptor, and 10,000 trackers need far more than the usual soft limit of 1,024. Returns
    (soft, hard) after the change; a limit the system refuses to raise stays as it was."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # An unlimited hard limit still cannot be set as the soft one (the kernel caps it at nr_open).
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return soft, hard


class Command(BaseCommand):
    help = "Run the TCP device gateway (GT06, JT/T 808, H02), one listener per protocol."

    def add_arguments(self, parser):
        parser.add_argument(
            "--host", default=None, help="address to bind (default: settings.GATEWAY_HOST)"
        )
        parser.add_argument(
            "--port",
            action="append",
            default=[],
            metavar="PROTO=PORT",
            help="listen port per protocol (defaults: settings.GATEWAY_PORTS, else "
            + ", ".join(f"{k}={v}" for k, v in DEFAULT_PORTS.items())
            + "); repeatable; PROTO=off disables one",
        )
        parser.add_argument(
            "--idle-timeout",
            type=float,
            default=None,
            help="seconds without data before a connection is closed (default: "
            f"settings.GATEWAY_IDLE_TIMEOUT, else {DEFAULT_IDLE_TIMEOUT:g})",
        )
        parser.add_argument(
            "--no-alarms",
            action="store_true",
            help="do not run the alarm engine inside the batches (measuring; the scans still "
            "run in the worker)",
        )

    def handle(self, *args, **options):
        if not logging.getLogger("carloan.gateway").handlers and not logging.getLogger().handlers:
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        logging.getLogger("carloan.gateway").setLevel(logging.INFO)
        soft, hard = raise_open_files_limit()
        logging.getLogger("carloan.gateway").info(
            "open files limit %s (hard %s): about that many connections fit",
            "unlimited" if soft == resource.RLIM_INFINITY else soft,
            "unlimited" if hard == resource.RLIM_INFINITY else hard,
        )
        config = config_from_settings(
            host=options["host"],
            ports=parse_ports(options["port"], settings.GATEWAY_PORTS),
            idle_timeout=options["idle_timeout"],
            alarms=False if options["no_alarms"] else None,
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
