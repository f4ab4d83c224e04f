"""Scripted demo episodes (`gateway.simulator.episodes`), pure: who plays what, how a scripted car
moves, when its devices go silent or send alarms. The alarms they raise through the real engine
are asserted in tests/alarms/test_demo_episodes.py."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from alarms import kinds
from gateway.simulator import episodes as ep
from gateway.simulator.routes import distance_m


@dataclass(frozen=True)
class Dev:
    identifier: str
    protocol: str
    vehicle_id: int


def fleet() -> list[Dev]:
    """Vehicles 1..14 with one device each (h02 on the first three), vehicle 5 with two."""
    out = []
    for v in range(1, 15):
        protocol = "h02" if v <= 3 else ("gt06" if v % 2 else "jt808")
        out.append(Dev(f"{v:010d}", protocol, v))
    out.append(Dev("9999999999", "h02", 5))
    return out


def test_every_platform_kind_is_scripted_by_some_episode():
    scripted = {k for e in ep.EPISODES for k in e.kinds}
    assert scripted >= kinds.PLATFORM_KINDS
    assert {"power_cut", "removal"} <= scripted
    assert scripted <= set(kinds.KINDS)
    assert len({e.name for e in ep.EPISODES}) == len(ep.EPISODES)


def test_plan_casts_each_episode_once_by_its_needs_and_is_stable():
    devices = fleet()
    cast = ep.plan(devices)
    assert sorted(e.name for e in cast.values()) == sorted(e.name for e in ep.EPISODES)
    by_name = {e.name: v for v, e in cast.items()}
    assert by_name["separation"] == 5  # the only car with two devices
    assert by_name["tamper"] > 3  # h02 cannot carry the alarm frames
    assert by_name["goes_offline"] != 5  # one tracker only: offline when it is silent
    assert by_name["second_pledge_visit"] == 1  # lowest id first
    assert ep.plan(list(reversed(devices))) == cast
    assert ep.plan(devices[:2]) == {1: ep.EPISODES[0], 2: ep.EPISODES[1]}
    assert ep.plan([]) == {}


@pytest.mark.parametrize("episode", ep.EPISODES, ids=lambda e: e.name)
def test_a_scripted_car_moves_like_a_car_and_loops(episode):
    route = ep.ScriptedRoute(episode)
    first = route.position()
    assert (first.lat, first.lon) == episode.start
    prev = first
    dt_s = 10.0
    steps = int(episode.period_s // dt_s) + 1
    for _ in range(2 * steps):
        fix = route.step(dt_s)
        # Never further than the reported speed allows (the gateway's hygiene would refuse it).
        assert distance_m(prev.lat, prev.lon, fix.lat, fix.lon) <= fix.speed_kmh / 3.6 * dt_s + 0.5
        assert fix.moving == (fix.speed_kmh > 0)
        assert fix.acc or not fix.moving
        prev = fix
    # After whole loops the car is back at its start.
    loops = ep.ScriptedRoute(episode)
    for _ in range(4):
        loops.step(episode.period_s / 2)
    here = loops.position()
    assert distance_m(here.lat, here.lon, *episode.start) < 1.0


def test_the_expressway_is_driven_over_the_limit_and_the_parked_car_never_moves():
    fast = ep.ScriptedRoute(next(e for e in ep.EPISODES if e.name == "expressway"))
    assert fast.step(10).speed_kmh == 130
    episode = next(e for e in ep.EPISODES if e.name == "parked_long")
    parked = ep.ScriptedRoute(episode)
    fixes = [parked.step(10) for _ in range(400)]
    assert {(f.lat, f.lon, f.speed_kmh, f.acc) for f in fixes} == {(*episode.start, 0.0, False)}


def test_the_province_episode_crosses_into_henan_and_back():
    from alarms.regions import province_at

    episode = next(e for e in ep.EPISODES if e.name == "province_leave")
    route = ep.ScriptedRoute(episode)
    seen = [province_at(*episode.start).code]
    for _ in range(int(episode.period_s // 10) + 1):
        fix = route.step(10)
        code = province_at(fix.lat, fix.lon).code
        if code != seen[-1]:
            seen.append(code)
    assert seen == ["61", "41", "61"]


def test_silence_and_device_alarms_follow_the_loop():
    offline = next(e for e in ep.EPISODES if e.name == "goes_offline")
    assert not offline.is_silent(0) and not offline.is_silent(119)
    assert offline.is_silent(120) and offline.is_silent(479)
    assert not offline.is_silent(offline.period_s + 10)
    tamper = next(e for e in ep.EPISODES if e.name == "tamper")
    assert tamper.alarms_between(0, 89) == []
    assert tamper.alarms_between(80, 90) == ["power_cut"]
    assert tamper.alarms_between(90, 100) == []
    assert tamper.alarms_between(0, 200) == ["power_cut", "removal"]
    period = tamper.period_s
    assert tamper.alarms_between(period + 85, period + 95) == ["power_cut"]


def test_the_cast_sends_each_alarm_once_from_the_lead_device_and_leaves_one_device_behind():
    devices = fleet()
    cast = ep.Cast(devices, ep.plan(devices))
    by_name = {e.name: v for v, e in cast.episodes.items()}
    tamper = [d for d in devices if d.vehicle_id == by_name["tamper"]]
    sent = [k for t in range(0, 200, 10) for d in tamper for k in cast.alarms(d, t)]
    assert sent == ["power_cut", "removal"]
    pair = [d for d in devices if d.vehicle_id == by_name["separation"]]
    route = cast.route(by_name["separation"])
    for _ in range(30):
        fix = route.step(10)
    lead, other = sorted(pair, key=lambda d: not cast.is_lead(d))
    assert cast.fix(lead, route, fix) == fix
    behind = cast.fix(other, route, fix)
    assert (behind.lat, behind.lon) == ep.EPISODES[4].start
    assert distance_m(fix.lat, fix.lon, behind.lat, behind.lon) > 1_500
    quiet = next(d for d in devices if d.vehicle_id == by_name["goes_offline"])
    assert not cast.silent(quiet, 60) and cast.silent(quiet, 200)
    unscripted = Dev("x", "gt06", 99)
    assert cast.alarms(unscripted, 100) == [] and not cast.silent(unscripted, 200)
