"""Province polygons (alarms.regions): lookups, borders, distances, ID prefixes, the data file.

Pure tests: no database. City coordinates are the usual city-centre figures (degrees WGS-84)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import shapely
from django.utils import translation

from alarms import regions
from alarms.regions import PROVINCES, Province, ProvinceIndex, UnknownProvince
from carloan.identifiers import ID_PROVINCE_CODES

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def index() -> ProvinceIndex:
    return regions.get_index()


@pytest.mark.parametrize(
    ("lat", "lon", "code"),
    [
        (34.26, 108.94, "61"),  # Xi'an
        (39.9042, 116.4074, "11"),  # Beijing
        (31.2304, 121.4737, "31"),  # Shanghai
        (43.8256, 87.6168, "65"),  # Urumqi
        (29.652, 91.1721, "54"),  # Lhasa
        (20.044, 110.1983, "46"),  # Haikou
        (29.563, 106.551, "50"),  # Chongqing
        (23.129, 113.264, "44"),  # Guangzhou
        (45.803, 126.535, "23"),  # Harbin
        (22.2783, 114.1747, "81"),  # Hong Kong, Wan Chai
        (22.1987, 113.5439, "82"),  # Macao peninsula
        (25.033, 121.5654, "71"),  # Taipei
        (24.45, 118.38, "71"),  # Kinmen (part of Natural Earth's Taiwan)
        (34.544, 110.246, "61"),  # Tongguan, Shaanxi side of the Shaanxi-Henan border
        (34.517, 110.894, "41"),  # Lingbao, Henan side
    ],
)
def test_cities_are_in_their_province(lat, lon, code):
    found = regions.province_at(lat, lon)
    assert found is not None and found.code == code
    assert found == PROVINCES[code]


@pytest.mark.parametrize(
    ("lat", "lon"),
    [
        (30.0, 125.0),  # East China Sea
        (18.0, 115.0),  # South China Sea
        (35.68, 139.69),  # Tokyo
        (47.92, 106.92),  # Ulaanbaatar
        (21.03, 105.85),  # Hanoi
        (37.57, 126.98),  # Seoul
        (0.0, 0.0),  # far outside the grid
    ],
)
def test_sea_and_abroad_are_none(lat, lon):
    assert regions.province_at(lat, lon) is None


def _across_border(index, a: str, b: str, fraction: float, offset_m: float):
    """Two points `offset_m` either side of the shared border of a and b, at `fraction` of it."""
    border = shapely.line_merge(
        shapely.intersection(index.geometry(a).boundary, index.geometry(b).boundary)
    )
    assert border.geom_type == "LineString" and border.length > 1.0  # ~200 km of shared border
    p = border.interpolate(fraction, normalized=True)
    q = border.interpolate(fraction + 0.002, normalized=True)
    # The border's normal in a local metric frame (metres east, metres north).
    cos = math.cos(math.radians(p.y))
    east, north = (q.x - p.x) * cos, q.y - p.y
    norm = math.hypot(east, north)
    n_lon = -north / norm / cos * offset_m / regions.M_PER_DEG_LAT
    n_lat = east / norm * offset_m / regions.M_PER_DEG_LAT
    return (p.y + n_lat, p.x + n_lon), (p.y - n_lat, p.x - n_lon)


@pytest.mark.parametrize("fraction", [0.2, 0.5, 0.8])
def test_both_sides_of_the_shaanxi_henan_border(index, fraction):
    one, other = _across_border(index, "61", "41", fraction, 3000.0)
    codes = {regions.province_at(*one).code, regions.province_at(*other).code}
    assert codes == {"61", "41"}
    henan_side = one if regions.province_at(*one).code == "41" else other
    # 3 km into Henan is ~3 km from Shaanxi (the hysteresis the alarm rule applies).
    assert regions.distance_to_province_m("61", *henan_side) == pytest.approx(3000, rel=0.03)
    assert regions.distance_to_province_m("41", *henan_side) == 0.0


def test_just_across_the_border_is_within_any_sensible_margin(index):
    one, other = _across_border(index, "61", "41", 0.5, 150.0)
    henan_side = one if regions.province_at(*one).code == "41" else other
    distance = regions.distance_to_province_m("61", *henan_side)
    assert 140 <= distance <= 160
    # The simplification moved no border by more than the recorded error, well under the
    # default 2 km margin of the province rule.
    assert index.simplify_error_m <= 500


def _brute_distance_m(index, code: str, lat: float, lon: float) -> float:
    """Great-circle distance to the border densified to ~100 m: the slow, obvious answer."""
    coords = shapely.get_coordinates(shapely.segmentize(index.geometry(code).boundary, 0.001))
    p1, p2 = math.radians(lat), np.radians(coords[:, 1])
    a = (
        np.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * np.cos(p2) * np.sin(np.radians(coords[:, 0] - lon) / 2) ** 2
    )
    return float((2 * regions.EARTH_RADIUS_M * np.arcsin(np.sqrt(a))).min())


def test_distance_to_province_agrees_with_brute_force(index):
    rng = np.random.default_rng(11)
    checked = 0
    while checked < 25:
        lat, lon = rng.uniform(30, 40), rng.uniform(104, 115)
        here = index.province_at(lat, lon)
        if here is not None and here.code == "61":
            continue
        fast = index.distance_to_province_m("61", lat, lon)
        slow = _brute_distance_m(index, "61", lat, lon)
        # Never below the true distance (it is the distance to a real border point); the
        # densified reference is at most ~50 m above the truth.
        assert slow - 60 <= fast <= slow * 1.02 + 1, (lat, lon, fast, slow)
        checked += 1


def test_distance_inside_is_zero_and_bad_input_is_refused():
    assert regions.distance_to_province_m("61", 34.26, 108.94) == 0.0
    # Xi'an to the Beijing municipality border (its south edge, ~39.4 N): ~830 km
    assert 800_000 < regions.distance_to_province_m("11", 34.26, 108.94) < 860_000
    with pytest.raises(UnknownProvince):
        regions.distance_to_province_m("99", 34.26, 108.94)
    with pytest.raises(ValueError, match="not a WGS-84 position"):
        regions.distance_to_province_m("61", 95.0, 108.94)
    with pytest.raises(ValueError, match="not a WGS-84 position"):
        regions.province_at(float("nan"), 108.94)


def test_batched_lookup_matches_single_lookups(index):
    rng = np.random.default_rng(5)
    lats = rng.uniform(index.y0 - 1, index.y1 + 1, 20_000)
    lons = rng.uniform(index.x0 - 1, index.x1 + 1, 20_000)
    batched = regions.provinces_at(lats, lons)
    single = [regions.province_at(a, b) for a, b in zip(lats, lons, strict=True)]
    assert batched == single
    assert sum(p is not None for p in batched) > 5_000  # a good part of the box is China
    # ... and both agree with the polygons themselves (no grid shortcut gives a wrong answer).
    hits = index.tree.query(shapely.points(lons, lats), predicate="intersects")
    exact = {int(i): set() for i in hits[0]}
    for i, k in zip(hits[0], hits[1], strict=True):
        exact[int(i)].add(index.provinces[k].code)
    for i, p in enumerate(single):
        assert (p.code in exact[i]) if p else (i not in exact)
    with pytest.raises(ValueError, match="latitudes but"):
        regions.provinces_at([34.0, 35.0], [108.0])
    with pytest.raises(ValueError, match="index 1"):
        regions.provinces_at([34.0, 91.0], [108.0, 108.0])


@pytest.mark.parametrize(
    ("number", "code"),
    [
        ("610113199001011234", "61"),
        ("11010519491231002X", "11"),
        ("810000", "81"),
        (" 650102", "65"),
        ("71", "71"),
    ],
)
def test_province_of_an_id_number(number, code):
    assert regions.province_for_id_number_prefix(number) == code


@pytest.mark.parametrize("number", ["991234", "6", "", "ab1234", "６１0113", None, 61])
def test_id_number_without_a_province_is_refused(number):
    with pytest.raises(UnknownProvince, match="province code"):
        regions.province_for_id_number_prefix(number)


def test_province_table_matches_the_id_number_validator():
    assert set(PROVINCES) == set(ID_PROVINCE_CODES)
    assert len(PROVINCES) == 34


def test_province_name_follows_the_language():
    shaanxi = regions.province("61")
    with translation.override("zh-hans"):
        assert shaanxi.name == "陕西省" and str(shaanxi) == "陕西省"
    with translation.override("en"):
        assert shaanxi.name == "Shaanxi"
    with pytest.raises(UnknownProvince, match="not a province code"):
        regions.province("62x")


def test_data_file_is_complete_small_and_a_clean_coverage():
    path = ROOT / "alarms" / "data" / "provinces.geojson"
    assert path.stat().st_size < 3_000_000
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["max_simplify_error_m"] <= 500
    features = {f["properties"]["code"]: f for f in data["features"]}
    assert set(features) == set(PROVINCES)
    for code, f in features.items():
        assert f["properties"]["name_zh"] == PROVINCES[code].name_zh
        assert f["properties"]["name_en"] == PROVINCES[code].name_en
    geoms = [shapely.from_geojson(json.dumps(f["geometry"])) for f in data["features"]]
    assert all(shapely.is_valid(geoms))
    assert shapely.coverage_is_valid(geoms)  # no overlaps: one answer per position
    assert (ROOT / "alarms" / "data" / "PROVENANCE.md").exists()


def test_index_refuses_unknown_or_duplicate_codes():
    square = shapely.box(108, 34, 109, 35)
    with pytest.raises(UnknownProvince):
        ProvinceIndex([("60", square)])
    with pytest.raises(ValueError, match="twice"):
        ProvinceIndex([("61", square), ("61", square)])
    small = ProvinceIndex([("61", square), ("41", shapely.box(109, 34, 110, 35))])
    assert small.province_at(34.5, 108.5).code == "61"
    assert small.province_at(34.5, 109.5).code == "41"
    assert small.province_at(34.5, 109.0).code == "41"  # on the shared edge: the lower code
    assert small.province_at(35.5, 108.5) is None
    with pytest.raises(UnknownProvince):
        small.distance_to_province_m("11", 34.5, 108.5)  # a real code without a polygon here


def test_loading_is_lazy_and_happens_once(monkeypatch, index):
    code = (
        "from alarms import regions\n"
        "assert regions._index is None, 'imported eagerly'\n"
        "assert regions.province_at(34.26, 108.94).code == '61'\n"
        "first = regions.get_index()\n"
        "assert regions.province_at(39.9, 116.4).code == '11'\n"
        "assert regions.get_index() is first\n"
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr

    # Many threads asking at once still build it once.
    loads = []

    def from_file(*args, **kwargs):
        loads.append(1)
        return index

    monkeypatch.setattr(regions, "_index", None)
    monkeypatch.setattr(ProvinceIndex, "from_file", staticmethod(from_file))
    barrier = threading.Barrier(8)
    answers = []

    def ask():
        barrier.wait()
        answers.append(regions.province_at(34.26, 108.94))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert loads == [1]
    assert answers == [Province("61", "陕西省", "Shaanxi")] * 8


def test_spatialite_loaded_first_gives_an_error_not_a_crash(tmp_path):
    """SpatiaLite exports another GEOS to the process; a shapely imported after it would
    segfault on prepared geometries. The module must refuse clearly (or work, once shapely is
    imported before the first connection), never take the process down."""
    code = (
        "import django\n"
        "django.setup()\n"
        "from django.db import connection\n"
        "connection.ensure_connection()\n"
        "from alarms import regions\n"
        "print(regions.province_at(34.26, 108.94).code)\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"spatialite:///{tmp_path / 'probe.sqlite3'}",
    }
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode in (0, 1), done.stderr  # not killed by a signal
    assert done.stdout.strip() == "61" or (
        "Import shapely before the first database connection" in done.stderr
    ), done.stderr
