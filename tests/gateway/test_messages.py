"""The fast builders make exactly the objects the dataclass constructors make."""

import dataclasses
import datetime as dt

from gateway.protocols.messages import (
    Cell,
    Message,
    Position,
    new_cell,
    new_message,
    new_position,
)

WHEN = dt.datetime(2026, 11, 22, 4, 0, tzinfo=dt.UTC)


def test_builders_equal_constructors():
    kw = {"fix_time": WHEN, "lat": 34.26, "lon": 108.94, "valid": True, "speed_kmh": 42.0}
    built, made = new_position(**kw), Position(**kw)
    assert built == made and dataclasses.asdict(built) == dataclasses.asdict(made)
    assert dataclasses.replace(built) == built
    assert built.extra == {} and built.extra is not new_position(**kw).extra  # fresh factory
    msg = new_message(protocol="gt06", type="position", device_id=None, positions=(built,))
    assert msg == Message(protocol="gt06", type="position", device_id=None, positions=(made,))
    assert new_cell(mcc=460, mnc=0, lac=1, cid=2) == Cell(mcc=460, mnc=0, lac=1, cid=2)


def test_built_objects_stay_frozen():
    pos = new_position(fix_time=WHEN, lat=0.0, lon=0.0, valid=False)
    try:
        pos.lat = 1.0
    except dataclasses.FrozenInstanceError:
        pass
    else:  # pragma: no cover
        raise AssertionError("a built Position must stay immutable")
