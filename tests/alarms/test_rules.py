"""Each position and scan rule through scenarios, without a database (alarms.rules are pure)."""

from __future__ import annotations

import datetime as dt

import pytest

from alarms.rules import RULES, params_for
from alarms.rules import position as p
from alarms.rules.base import Area, Context, Fix, Membership, VehicleInfo, distance_m
from alarms.rules.scan import (
    DeviceSnapshot,
    OfflineParams,
    ScanContext,
    device_due,
    scan_offline,
    scan_parking,
    scan_separation_silence,
    scan_usual_area,
)

T0 = dt.datetime(2026, 11, 22, 8, 0, tzinfo=dt.UTC)
XIAN = (34.2610, 108.9423)
INFO = VehicleInfo(vehicle_id=1, customer_id=1, home_province="61")


def fix(seconds=0, speed=30.0, lat=XIAN[0], lon=XIAN[1], acc=True, device=1, source="gps"):
    return Fix(device, T0 + dt.timedelta(seconds=seconds), lat, lon, speed, acc, source)


def run(rule, fixes, params=None, vehicle=INFO, **ctx):
    """Feed fixes in order through one rule with its own state; the findings per fix."""
    state: dict = {}
    params = params or params_for(rule.kind)
    return [
        [
            (f.kind, f.active, f.target)
            for f in rule().evaluate(Context(vehicle, x, state, params, **ctx))
        ]
        for x in fixes
    ]


def test_overspeed_needs_the_duration_and_ends_with_hysteresis():
    fixes = [fix(0, 130), fix(5, 135), fix(10, 131), fix(20, 118), fix(30, 110)]
    assert run(p.Overspeed, fixes) == [
        [],
        [],
        [("overspeed", True, "")],  # over the limit for 10 s
        [],  # 118: under 120 but within the 5 km/h hysteresis
        [("overspeed", False, "")],
    ]


def test_overspeed_limit_is_a_parameter():
    out = run(p.Overspeed, [fix(0, 95), fix(15, 96)], params_for("overspeed", {"limit_kmh": 90}))
    assert out[-1] == [("overspeed", True, "")]


def test_province_leave_with_border_margin_and_return():
    provinces = {(34.0, 108.0): "61", (34.5, 112.0): "41"}

    def at(lat, lon):
        return provinces.get((lat, lon))

    fixes = [
        fix(0, lat=34.0, lon=108.0),
        fix(60, lat=34.5, lon=112.0),
        fix(120, lat=34.0, lon=108.0),
    ]
    out = run(p.ProvinceLeave, fixes, province_at=at, province_distance_m=lambda c, a, b: 50_000)
    assert out == [
        [],
        [("province_leave", True, "province:61")],
        [("province_leave", False, "province:61")],
    ]
    near = run(p.ProvinceLeave, fixes[:2], province_at=at, province_distance_m=lambda c, a, b: 800)
    assert near == [[], []]  # 800 m across the border: within the margin, no alarm


def test_province_home_setting_overrides_the_id_number():
    params = params_for("province_leave", {"home_province": "41"})
    out = run(p.ProvinceLeave, [fix(0)], params, province_at=lambda a, b: "41")
    assert out == [[]]


def test_separation_of_two_devices_and_lbs_accuracy():
    far = Fix(2, T0, XIAN[0] + 0.03, XIAN[1], 0.0, False, "gps")  # ~3.3 km north
    state: dict = {}
    params = params_for("separation")
    ctx = Context(INFO, fix(60, device=1), state, params, devices={2: far})
    assert [(f.kind, f.active) for f in p.Separation().evaluate(ctx)] == [("separation", True)]
    stale = Fix(2, T0 - dt.timedelta(hours=2), far.lat, far.lon)
    ctx = Context(INFO, fix(60), {}, params, devices={2: stale})
    assert p.Separation().evaluate(ctx) == []  # fixes 2 h apart are not compared
    lbs_close = Fix(2, T0, XIAN[0] + 0.02, XIAN[1], source="lbs")  # 2.2 km, but a cell fix
    ctx = Context(INFO, fix(60, source="lbs"), {}, params, devices={2: lbs_close})
    assert p.Separation().evaluate(ctx) == []  # within the two cell fixes' error
    back = Fix(2, T0, XIAN[0] + 0.001, XIAN[1])
    ctx = Context(INFO, fix(120), state, params, devices={2: back})
    assert [(f.kind, f.active) for f in p.Separation().evaluate(ctx)] == [("separation", False)]


def test_parking_overtime_tracks_the_stop_and_ends_on_driving():
    hours = 3600
    fixes = [
        fix(0, 0, acc=False),
        fix(23 * hours, 0, acc=False),
        fix(25 * hours, 0, acc=False),
        fix(26 * hours, 40),
    ]
    assert run(p.ParkingOvertime, fixes) == [
        [],
        [],
        [("parking_overtime", True, "")],
        [("parking_overtime", False, "")],
    ]


def test_fatigue_after_four_hours_reset_by_a_twenty_minute_rest():
    m = 60
    drive = [fix(i * 30 * m, 60) for i in range(9)]  # 0 .. 4 h driving
    assert run(p.Fatigue, drive)[-1] == [("fatigue", True, "")]
    with_rest = [fix(0, 60), fix(120 * m, 0), fix(145 * m, 60), fix(250 * m, 60)]
    assert all(out == [] for out in run(p.Fatigue, with_rest))  # rested 25 min after 2 h


def test_area_rules_follow_the_membership():
    spot = Area("riskpoint:7", "二押点 A", "second_pledge", T0)
    entered = Membership(entered=(spot,), inside=(spot,))
    staying = Membership(inside=(Area(spot.key, spot.name, spot.kind, T0),))
    left = Membership(left=(spot,))
    params = params_for("area_stay")
    later = fix(31 * 60)
    assert [
        f.kind
        for f in p.AreaEnter().evaluate(
            Context(INFO, fix(0), {}, params_for("area_enter"), areas=entered)
        )
    ] == ["area_enter"]
    stay = p.AreaStay().evaluate(Context(INFO, later, {}, params, areas=staying))
    assert [(f.kind, f.active, f.target) for f in stay] == [("area_stay", True, "riskpoint:7")]
    ended = p.AreaStay().evaluate(Context(INFO, later, {}, params, areas=left))
    assert [(f.kind, f.active) for f in ended] == [("area_stay", False)]
    only_markets = params_for("area_enter", {"risk_point_kinds": ["used_car_market"]})
    assert p.AreaEnter().evaluate(Context(INFO, fix(0), {}, only_markets, areas=entered)) == []


def test_armed_vehicle_moving_out_of_its_radius():
    armed = VehicleInfo(1, 1, arming=(XIAN[0], XIAN[1], 200))
    assert run(p.ArmedMove, [fix(0, 0)], vehicle=armed) == [[]]
    away = fix(60, 20, lat=XIAN[0] + 0.005)  # ~550 m
    assert run(p.ArmedMove, [away], vehicle=armed) == [[("armed_move", True, "")]]


def test_fence_flags_choose_the_alarms():
    fence = Area(
        "fence:3",
        "厂区",
        "",
        T0,
        {"enter": True, "leave": False, "inside": True, "parking": True, "parking_minutes": 10},
    )
    ctx = Context(INFO, fix(0), {}, None, fences=Membership(entered=(fence,), inside=(fence,)))
    assert [f.kind for f in p.FenceEnter().evaluate(ctx)] == ["fence_enter"]
    assert [f.kind for f in p.FenceInside().evaluate(ctx)] == ["fence_inside"]
    ctx = Context(INFO, fix(0), {}, None, fences=Membership(left=(fence,)))
    assert p.FenceLeave().evaluate(ctx) == []  # leave is switched off on this fence
    state: dict = {}
    parked = [
        Context(INFO, fix(s, 0), state, None, fences=Membership(inside=(fence,))) for s in (0, 660)
    ]
    assert [len(p.FenceParking().evaluate(c)) for c in parked] == [0, 1]


def test_custom_type_speed_time_window_and_duration():
    ct = {
        "id": 4,
        "name": "夜间高速",
        "min_speed_kmh": 100,
        "time_from": "22:00",
        "time_to": "06:00",
        "duration_s": 60,
        "area": "",
        "acc": None,
        "max_speed_kmh": None,
    }
    vehicle = VehicleInfo(1, 1, custom_types=(ct,))
    night = lambda t: dt.time(23, 30)  # noqa: E731
    fixes = [fix(0, 110), fix(30, 115), fix(70, 120), fix(80, 50)]
    assert run(p.Custom, fixes, vehicle=vehicle, local_time=night) == [
        [],
        [],
        [("custom", True, "custom:4")],
        [("custom", False, "custom:4")],
    ]
    day = lambda t: dt.time(12, 0)  # noqa: E731
    assert run(p.Custom, fixes, vehicle=vehicle, local_time=day)[2] == []


def device(kind="wired", mode="realtime", seen=T0, params=None, lat=XIAN[0], lon=XIAN[1]):
    return DeviceSnapshot(
        1 if kind == "wired" else 2, kind, mode, params or {}, seen, seen, lat, lon
    )


def scan_ctx(devices, now, state=None, vehicle=INFO):
    return ScanContext(vehicle, now, tuple(devices), state or {}, params_for)


def test_offline_is_overdue_for_the_work_mode():
    p_ = OfflineParams()
    assert device_due(device(), p_, lambda t: t) == T0 + dt.timedelta(minutes=10)
    clock = device("wireless", "alarm_clock", params={"times": ["08:00", "20:00"]})
    # Seen 08:00 UTC (16:00 local in the test's identity clock): next slot 20:00 + 30 min.
    assert device_due(clock, p_, lambda t: t) == T0.replace(hour=20, minute=30)
    sleep = device("wireless", "deep_sleep", params={"days": 3})
    assert device_due(sleep, p_, lambda t: t) == T0 + dt.timedelta(days=3, hours=2)
    both = [device(), clock]
    assert scan_offline(scan_ctx(both, T0 + dt.timedelta(hours=1)))[0].active is False  # clock OK
    assert scan_offline(scan_ctx(both, T0 + dt.timedelta(hours=13)))[0].active is True


def test_scans_read_the_state_the_position_rules_keep():
    state = {"parking_overtime": {"since": (T0 - dt.timedelta(hours=30)).isoformat()}}
    assert [f.kind for f in scan_parking(scan_ctx([], T0, state))] == ["parking_overtime"]
    usual = VehicleInfo(1, 1, usual_areas=((XIAN[0], XIAN[1], 500),))
    state = {"usual_area_absent": {"last_inside": (T0 - dt.timedelta(days=4)).isoformat()}}
    assert [f.kind for f in scan_usual_area(scan_ctx([], T0, state, usual))] == [
        "usual_area_absent"
    ]


def test_wired_device_silent_while_the_wireless_one_moves_away():
    wired = device(seen=T0 - dt.timedelta(hours=2))
    wireless = DeviceSnapshot(2, "wireless", "realtime", {}, T0, T0, XIAN[0] + 0.05, XIAN[1])
    found = scan_separation_silence(scan_ctx([wired, wireless], T0))
    assert [(f.kind, f.device_id) for f in found] == [("separation", 1)]


def test_params_validation_names_the_bad_key():
    with pytest.raises(ValueError, match="unknown parameter 'limit'"):
        params_for("overspeed", {"limit": 100})
    with pytest.raises(ValueError, match="limit_kmh: expected a number"):
        params_for("overspeed", {"limit_kmh": "fast"})
    assert set(RULES) >= {"overspeed", "offline", "power_cut", "custom"}


def test_distance_is_metres():
    assert distance_m(34.0, 108.0, 35.0, 108.0) == pytest.approx(111_195, rel=1e-3)
