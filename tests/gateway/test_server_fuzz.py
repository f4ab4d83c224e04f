"""No input can crash the gateway or touch another connection: seeded random and mutated frames
over real sockets on 127.0.0.1, on every protocol, while an honest device keeps reporting.

The codecs' own property tests (hypothesis) cover `split_frames` / `decode`; this one covers what
the server adds on top: sessions, sub-packages, lenient retries, the writer thread."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random

import pytest

from gateway.models import Position
from gateway.simulator import frames as f
from tests.gateway.test_server import (
    H02_ID,
    IMEI,
    TERMINAL,
    FakeDevice,
    db,
    gt06_fix,
    gt06_login,
    make_device,
    now,
    run,
)

pytestmark = pytest.mark.django_db(transaction=True)

SEED = 20261122
BLOBS_PER_PROTOCOL = 60
# The fuzzed GT06 frames log in as another device: a login as IMEI would (rightly) replace the
# honest connection.
OTHER_IMEI = "864895030279978"


def valid_frames(t: dt.datetime) -> dict[str, list[bytes]]:
    fix = {"fix_time": t, "lat": 34.25, "lon": 108.95, "speed_kmh": 30.0, "course": 10}
    return {
        "gt06": [f.gt06_login(OTHER_IMEI, 1), gt06_fix(2, t), f.gt06_heartbeat(3, acc=True)],
        "jt808": [
            f.jt808_register(TERMINAL, 1),
            f.jt808_auth(TERMINAL, 2, "x"),
            f.jt808_location(TERMINAL, 3, valid=True, acc=True, **fix),
            *f.jt808_subpackages(0x0704, TERMINAL, 4, bytes(range(256)) * 3, part_size=200),
        ],
        "h02": [
            f.h02_v1(H02_ID, valid=True, **fix),
            f.h02_heartbeat(H02_ID),
        ],
    }


def mutate(rng: random.Random, frame: bytes) -> bytes:
    data = bytearray(frame)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        if op == 0 and data:  # flip a bit
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        elif op == 1 and data:  # truncate
            del data[rng.randrange(len(data)) :]
        elif op == 2:  # insert random bytes
            i = rng.randrange(len(data) + 1)
            data[i:i] = rng.randbytes(rng.randint(1, 16))
        elif op == 3 and data:  # duplicate a slice (sticky, repeated headers)
            i = rng.randrange(len(data))
            data[i:i] = data[i : i + rng.randint(1, 32)]
        else:  # overwrite a length-like byte with an extreme value
            if len(data) > 3:
                data[rng.randrange(2, min(len(data), 6))] = rng.choice((0x00, 0xFF, 0x7E, 0x7D))
    return bytes(data)


def blobs(rng: random.Random, protocol: str, frames: list[bytes]) -> list[bytes]:
    out = []
    for _ in range(BLOBS_PER_PROTOCOL):
        kind = rng.randrange(3)
        if kind == 0:
            out.append(rng.randbytes(rng.randint(1, 2048)))
        elif kind == 1:
            out.append(b"".join(mutate(rng, rng.choice(frames)) for _ in range(rng.randint(1, 5))))
        else:  # valid frames with garbage between them
            out.append(
                b"".join(rng.choice(frames) + rng.randbytes(rng.randint(0, 8)) for _ in range(3))
            )
    return out


async def hammer(gateway, protocol: str, payloads: list[bytes]) -> None:
    """Each payload on its own connection, a few at a time, written in random chunks."""
    rng = random.Random(f"{SEED}-{protocol}")

    async def one(payload: bytes) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", gateway.ports[protocol])
        except OSError:
            return
        try:
            i = 0
            while i < len(payload):
                n = rng.randint(1, 300)
                writer.write(payload[i : i + n])
                await writer.drain()
                i += n
            writer.write_eof()
            await asyncio.wait_for(reader.read(65536), 0.5)
        except (OSError, TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    for start in range(0, len(payloads), 10):
        await asyncio.gather(*(one(p) for p in payloads[start : start + 10]))


def test_random_and_mutated_input_never_crashes_a_session_or_disturbs_another(caplog):
    device = make_device(IMEI, "gt06")
    make_device(OTHER_IMEI, "gt06")
    make_device(TERMINAL, "jt808")
    make_device(H02_ID, "h02")
    rng = random.Random(SEED)
    t = now() - dt.timedelta(minutes=5)
    frames = valid_frames(t)
    payloads = {p: blobs(rng, p, frames[p]) for p in frames}
    caplog.set_level(logging.ERROR, logger="carloan.gateway")

    async def scenario(gateway):
        honest = await gt06_login(gateway)  # connected before the storm, kept through it
        await asyncio.gather(*(hammer(gateway, p, payloads[p]) for p in payloads))
        sent = []
        for serial in range(10, 13):
            fix_time = now() - dt.timedelta(seconds=20 - serial)
            await honest.send(gt06_fix(serial, fix_time, lat=34.30 + serial / 1000))
            ack = await honest.recv()
            sent.append(ack.acked_serial)
        # A fresh honest device after the storm is served too.
        fresh = await FakeDevice.connect(gateway, "h02")
        await fresh.send(
            f.h02_v1(
                H02_ID, fix_time=now(), lat=34.2, lon=108.9, speed_kmh=0.0, course=0, valid=True
            )
        )
        await fresh.recv()
        fresh.close()
        honest.close()
        stored = await db(lambda: Position.objects.filter(device=device, fix_time__gt=t).count())
        return sent, stored, len(gateway.connections)

    sent, stored, _left = run(scenario, idle_timeout=2.0)
    assert sent == [10, 11, 12]
    assert stored == 3  # the honest fixes, nothing of the fuzzed ones after t on this device
    crashes = [r for r in caplog.records if "crashed" in r.getMessage()]
    assert crashes == []
