"""Map-provider coordinates and distances (carloan.geo). Pure: no database."""

from __future__ import annotations

import math

import pytest

from carloan import geo

# Published vectors, as (lat, lon).
# 1. wandergis/coordtransform README ("示例用法", result block): input (lng 116.404, lat 39.915):
#    gcj02tobd09 -> [116.41036949371029, 39.92133699351021]
#    wgs84togcj02 -> [116.41024449916938, 39.91640428150164]
#    gcj02towgs84 -> [116.39775550083061, 39.91359571849836]  (the one-step inverse)
#    bd09togcj02 -> [116.39762729119315, 39.90865673957631]  (the one-step inverse)
README_IN = (39.915, 116.404)
README_GCJ_TO_BD = (39.92133699351021, 116.41036949371029)
README_WGS_TO_GCJ = (39.91640428150164, 116.41024449916938)
README_ONE_STEP_GCJ_TO_WGS = (39.91359571849836, 116.39775550083061)
README_ONE_STEP_BD_TO_GCJ = (39.90865673957631, 116.39762729119315)
# 2. Alibaba Cloud "Address Purification" API reference, TransferCoord, sample response for
#    Text=120.026268,30.279164 SrcCoord=gcj02 (help.aliyun.com, addrpapi coordinate-system-
#    conversion): BD09 120.032768,30.285238; WGS84 120.021519,30.281543 (6 decimals).
ALIYUN_GCJ = (30.279164, 120.026268)
ALIYUN_BD = (30.285238, 120.032768)
ALIYUN_WGS = (30.281543, 120.021519)

CHINA_GRID = [(lat, lon) for lat in range(18, 54, 2) for lon in range(74, 135, 3)]
ABROAD = [(35.6762, 139.6503), (51.5074, -0.1278), (-33.8688, 151.2093), (40.7128, -74.006)]


def close(a, b, tol):
    return abs(a[0] - b[0]) <= tol and abs(a[1] - b[1]) <= tol


def test_forward_formulas_match_the_published_vectors():
    assert close(geo.wgs84_to_gcj02(*README_IN), README_WGS_TO_GCJ, 1e-12)
    assert close(geo.gcj02_to_bd09(*README_IN), README_GCJ_TO_BD, 1e-12)
    assert close(geo.gcj02_to_bd09(*ALIYUN_GCJ), ALIYUN_BD, 1e-6)  # their 6-decimal rounding


def test_inverses_are_exact_where_the_one_step_inverse_is_not():
    wgs = geo.gcj02_to_wgs84(*README_IN)
    assert close(wgs, README_ONE_STEP_GCJ_TO_WGS, 1e-5)  # the same point, to a metre
    assert close(geo.wgs84_to_gcj02(*wgs), README_IN, 1e-9)  # ours maps back exactly
    assert not close(geo.wgs84_to_gcj02(*README_ONE_STEP_GCJ_TO_WGS), README_IN, 1e-7)
    gcj = geo.bd09_to_gcj02(*README_IN)
    assert close(gcj, README_ONE_STEP_BD_TO_GCJ, 1e-5)
    assert close(geo.gcj02_to_bd09(*gcj), README_IN, 1e-9)
    assert not close(geo.gcj02_to_bd09(*README_ONE_STEP_BD_TO_GCJ), README_IN, 1e-7)


def test_aliyun_gcj02_to_wgs84_sample_within_two_metres():
    # Alibaba's service has its own implementation; the published sample agrees to ~1.5 m.
    wgs = geo.gcj02_to_wgs84(*ALIYUN_GCJ)
    assert geo.haversine_m(*wgs, *ALIYUN_WGS) < 2.0
    assert close(wgs, ALIYUN_WGS, 2e-5)


def test_round_trips_over_china_stay_below_a_micro_degree():
    for lat, lon in CHINA_GRID:
        lat, lon = lat + 0.123, lon + 0.456  # off the integer grid
        start = (lat, lon)
        assert close(geo.gcj02_to_wgs84(*geo.wgs84_to_gcj02(lat, lon)), start, 1e-6), start
        assert close(geo.bd09_to_gcj02(*geo.gcj02_to_bd09(lat, lon)), start, 1e-6), start
        assert close(geo.bd09_to_wgs84(*geo.wgs84_to_bd09(lat, lon)), start, 1e-6), start
        for provider in geo.PROVIDERS:
            there = geo.to_provider(lat, lon, provider)
            assert close(geo.from_provider(*there, provider), start, 1e-6), (start, provider)


def test_round_trip_error_is_far_below_the_target():
    worst = 0.0
    for lat, lon in CHINA_GRID:
        back = geo.bd09_to_wgs84(*geo.wgs84_to_bd09(lat + 0.3, lon + 0.7))
        worst = max(worst, abs(back[0] - (lat + 0.3)), abs(back[1] - (lon + 0.7)))
    assert worst < 1e-9


def test_markers_move_by_the_expected_amount_in_china():
    xian = (34.26, 108.94)
    amap = geo.to_provider(*xian, "amap")
    baidu = geo.to_provider(*xian, "baidu")
    # Unconverted, a WGS-84 marker would sit hundreds of metres off on AMap/Tencent and Baidu.
    assert 100 < geo.haversine_m(*xian, *amap) < 1000
    assert 500 < geo.haversine_m(*xian, *baidu) < 2000
    assert geo.to_provider(*xian, "tencent") == amap  # both GCJ-02
    assert geo.to_provider(*xian, "osm") == xian
    assert baidu == geo.wgs84_to_bd09(*xian)


@pytest.mark.parametrize(("lat", "lon"), ABROAD)
def test_points_outside_china_are_unchanged(lat, lon):
    assert geo.out_of_china(lat, lon)
    for fn in (
        geo.wgs84_to_gcj02,
        geo.gcj02_to_wgs84,
        geo.gcj02_to_bd09,
        geo.bd09_to_gcj02,
        geo.wgs84_to_bd09,
        geo.bd09_to_wgs84,
    ):
        assert fn(lat, lon) == (lat, lon)
    for provider in geo.PROVIDERS:
        assert geo.to_provider(lat, lon, provider) == (lat, lon)
        assert geo.from_provider(lat, lon, provider) == (lat, lon)


def test_out_of_china_rectangle_edges():
    assert not geo.out_of_china(34.26, 108.94)
    assert not geo.out_of_china(0.8293, 72.004)  # corners are inside
    assert not geo.out_of_china(55.8271, 137.8347)
    assert geo.out_of_china(0.8292, 100.0)
    assert geo.out_of_china(40.0, 137.8348)
    assert geo.out_of_china(40.0, 72.0039)
    assert geo.out_of_china(55.8272, 100.0)


def test_bad_input_is_refused_clearly():
    with pytest.raises(ValueError, match="unknown map provider 'google'; expected one of osm"):
        geo.to_provider(34.26, 108.94, "google")
    with pytest.raises(ValueError, match="unknown map provider"):
        geo.from_provider(34.26, 108.94, None)
    with pytest.raises(ValueError, match="not a position"):
        geo.wgs84_to_gcj02(91.0, 108.94)
    with pytest.raises(ValueError, match="not a position"):
        geo.to_provider(math.nan, 108.94, "baidu")


def test_provider_choices_for_settings_and_forms():
    assert [key for key, _label in geo.provider_choices()] == ["osm", "amap", "tencent", "baidu"]
    assert geo.DEFAULT_PROVIDER == "osm"
    assert str(dict(geo.provider_choices())["baidu"]) == "Baidu Maps"


def test_haversine():
    assert geo.haversine_m(34.26, 108.94, 34.26, 108.94) == 0.0
    one_degree = geo.EARTH_RADIUS_M * math.pi / 180  # 111,195 m on the mean sphere
    assert geo.haversine_m(0, 0, 1, 0) == pytest.approx(one_degree, rel=1e-12)
    assert geo.haversine_m(0, 0, 0, 1) == pytest.approx(one_degree, rel=1e-12)
    assert geo.haversine_m(60, 10, 60, 11) == pytest.approx(one_degree / 2, rel=1e-4)
    beijing, shanghai = (39.9042, 116.4074), (31.2304, 121.4737)
    d = geo.haversine_m(*beijing, *shanghai)
    assert d == pytest.approx(1_067_000, rel=0.01)  # the usual ~1,067 km great-circle figure
    assert d == geo.haversine_m(*shanghai, *beijing)
    assert geo.haversine_m(0, 0, 0, 180) == pytest.approx(math.pi * geo.EARTH_RADIUS_M)
