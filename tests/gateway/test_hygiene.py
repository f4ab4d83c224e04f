"""Position hygiene (T5): pure decisions, no database."""

import datetime as dt

import pytest

from gateway import hygiene
from gateway.hygiene import HygieneConfig, LastFix, check, haversine_m
from gateway.protocols.messages import Position

NOW = dt.datetime(2026, 11, 22, 8, 0, tzinfo=dt.UTC)
XIAN = (34.2610, 108.9423)  # Bell Tower


def fix(seconds=0, lat=XIAN[0], lon=XIAN[1], **kw):
    return Position(
        fix_time=NOW + dt.timedelta(seconds=seconds), lat=lat, lon=lon, valid=True, **kw
    )


def last(seconds=-30, lat=XIAN[0], lon=XIAN[1], **kw):
    return LastFix(fix_time=NOW + dt.timedelta(seconds=seconds), lat=lat, lon=lon, **kw)


def test_haversine_known_distance():
    # One degree of latitude is ~111.2 km on the mean-radius sphere.
    assert haversine_m(34.0, 108.0, 35.0, 108.0) == pytest.approx(111_195, rel=1e-4)
    assert haversine_m(*XIAN, *XIAN) == 0


def test_clean_fix_is_kept_without_flags():
    verdict = check(fix(speed_kmh=40, acc=True, lat=XIAN[0] + 0.003), last(), NOW)
    assert verdict == hygiene.Verdict(keep=True, flags=())


def test_first_fix_of_a_device_is_kept():
    assert check(fix(), None, NOW).keep


def test_exact_duplicate_is_dropped():
    verdict = check(fix(-30), last(-30), NOW)
    assert (verdict.keep, verdict.reason) == (False, hygiene.REASON_DUPLICATE)
    # Same time, another place: not a duplicate.
    assert check(fix(-30, lat=XIAN[0] + 0.01), last(-30), NOW).keep


def test_future_fix_is_rejected_beyond_the_tolerance():
    assert check(fix(9 * 60), None, NOW).keep
    verdict = check(fix(11 * 60), None, NOW)
    assert (verdict.keep, verdict.reason) == (False, hygiene.REASON_FUTURE)
    assert check(
        fix(11 * 60), None, NOW, HygieneConfig(future_tolerance=dt.timedelta(hours=1))
    ).keep


def test_invalid_and_lbs_fixes_are_kept_and_flagged():
    invalid = Position(fix_time=NOW, lat=XIAN[0], lon=XIAN[1], valid=False)
    assert check(invalid, None, NOW) == hygiene.Verdict(keep=True, flags=("invalid_fix",))
    lbs = Position(fix_time=NOW, lat=XIAN[0], lon=XIAN[1], valid=True, source="lbs")
    assert check(lbs, None, NOW).flags == ("lbs",)


def test_implied_speed_over_the_limit_is_flagged():
    # ~11 km in 60 s = ~667 km/h
    jump = fix(30, lat=XIAN[0] + 0.1, speed_kmh=60, acc=True)
    assert check(jump, last(-30), NOW).flags == ("implied_speed",)
    # The same distance over an hour is a plausible drive.
    assert check(jump, last(-3600), NOW).flags == ()
    # A higher limit lets it through.
    assert check(jump, last(-30), NOW, HygieneConfig(max_implied_speed_kmh=1000)).flags == ()


def test_late_blind_area_fix_is_not_judged_against_a_newer_one():
    old_far = fix(-3600, lat=XIAN[0] + 0.5, realtime=False)
    assert check(old_far, last(-30), NOW).flags == ()


def test_drift_while_parked_is_flagged():
    # ~20 m away, ACC off, speed 0: GPS wander, the car did not move.
    wander = fix(0, lat=XIAN[0] + 0.0002, acc=False, speed_kmh=0)
    assert check(wander, last(), NOW).flags == ("drift",)
    # Same with ACC unknown but standing still.
    assert check(fix(0, lat=XIAN[0] + 0.0002, speed_kmh=1), last(), NOW).flags == ("drift",)
    # Moving with ACC on: a real (slow) move.
    assert check(fix(0, lat=XIAN[0] + 0.0002, acc=True, speed_kmh=12), last(), NOW).flags == ()
    # Parked but ~110 m away: outside the drift radius.
    assert check(fix(0, lat=XIAN[0] + 0.001, acc=False, speed_kmh=0), last(), NOW).flags == ()
    # A tighter radius turns the 20 m wander into a move.
    tight = HygieneConfig(drift_radius_m=10)
    assert check(wander, last(), NOW, tight).flags == ()
