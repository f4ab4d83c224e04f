"""`manage.py import_risk_points` and alarms.imports: CSV in UTF-8 / BOM / GBK, GeoJSON, Chinese
kind labels and headers, every bad row named with nothing imported, --skip-errors, --replace."""

from __future__ import annotations

import codecs
import io
import json

import pytest
from django.core.management import CommandError, call_command

from alarms.imports import read_risk_point_file, risk_points_import
from alarms.models import RiskPoint
from alarms.services.places import risk_point_create
from carloan.errors import ApplicationError, ImportRowsError

GOOD_CSV = """name,kind,lat,lon,radius_m,address
西安车管所,车管所,34.2610,108.9423,300,未央区凤城八路
Pledge spot,second_pledge,34.30,108.95,150,
修理厂A,维修厂,34.25,108.90,,
Market,used-car market,34.20,108.80,1000,Xi'an
"""


def run(tmp_path, content: bytes | str, *args, name="points.csv"):
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    out, err = io.StringIO(), io.StringIO()
    call_command("import_risk_points", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def stored() -> dict[str, tuple]:
    return {
        p.name: (p.kind, round(p.point.y, 6), round(p.point.x, 6), p.radius_m, p.address)
        for p in RiskPoint.objects.all()
    }


def test_csv_with_codes_chinese_and_english_labels(db, tmp_path):
    out, err = run(tmp_path, GOOD_CSV)
    assert "4 risk points imported from 4 rows" in out
    assert stored() == {
        "西安车管所": ("registration_office", 34.261, 108.9423, 300, "未央区凤城八路"),
        "Pledge spot": ("second_pledge", 34.3, 108.95, 150, ""),
        "修理厂A": ("repair_shop", 34.25, 108.9, 200, ""),  # empty radius: 200 m
        "Market": ("used_car_market", 34.2, 108.8, 1000, "Xi'an"),
    }
    assert "[##############################]         4 / 4 rows" in err  # the progress bar


def test_gbk_file_with_chinese_headers(db, tmp_path):
    text = (
        "名称,类型,纬度,经度,半径,地址\n"
        "二押点一号,二押点,34.1,108.7,500,长安区\n"
        "自定义点,自定义,34.0,108.6,80,\n"
    )
    out, _err = run(tmp_path, text.encode("gbk"))
    assert stored() == {
        "二押点一号": ("second_pledge", 34.1, 108.7, 500, "长安区"),
        "自定义点": ("custom", 34.0, 108.6, 80, ""),
    }


def test_utf8_with_bom_and_semicolons(db, tmp_path):
    text = "name;kind;lat;lon;radius_m\n车管所北;车管所;34.5;108.9;200\n"
    run(tmp_path, codecs.BOM_UTF8 + text.encode())
    assert stored() == {"车管所北": ("registration_office", 34.5, 108.9, 200, "")}


def test_geojson_feature_collection(db, tmp_path):
    data = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [108.9423, 34.261]},
                "properties": {"name": "车管所", "kind": "车管所", "radius_m": 250},
            },
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [121.47, 31.23]},
                "properties": {"name": "Shanghai market", "kind": "used_car_market"},
            },
        ],
    }
    out, _err = run(tmp_path, json.dumps(data, ensure_ascii=False), name="points.geojson")
    assert "2 risk points imported" in out
    assert stored() == {
        "车管所": ("registration_office", 34.261, 108.9423, 250, ""),
        "Shanghai market": ("used_car_market", 31.23, 121.47, 200, ""),
    }


BAD_CSV = """name,kind,lat,lon,radius_m,address
ok one,车管所,34.26,108.94,300,
,车管所,34.26,108.94,300,
casino,赌场,34.26,108.94,300,
far,custom,95,108.94,300,
swapped,custom,108.94,34.26,300,
tiny,custom,34.26,108.94,5,
ok one,车管所,34.26,108.94,300,
text,custom,north,108.94,300,
"""


def test_bad_rows_are_all_named_and_nothing_is_imported(db, tmp_path):
    with pytest.raises(CommandError, match="7 rows have errors: nothing was imported"):
        run(tmp_path, BAD_CSV)
    assert not RiskPoint.objects.exists()
    with open(tmp_path / "points.csv", "rb") as f, pytest.raises(ImportRowsError) as exc:
        risk_points_import(rows=read_risk_point_file(f, "points.csv"))
    errors = dict(exc.value.errors)
    assert set(errors) == {3, 4, 5, 6, 7, 8, 9}
    assert "name is empty" in errors[3]
    assert "unknown kind '赌场'" in errors[4]
    assert "latitude 95 is outside -90..90" in errors[5]
    assert "are the columns swapped?" in errors[6]
    assert "radius 5 m is outside 10..50000 m" in errors[7]
    assert "already on row 2" in errors[8]
    assert "latitude 'north' is not a number" in errors[9]


def test_skip_errors_imports_the_good_rows_and_reports_the_bad(db, tmp_path):
    out, err = run(tmp_path, BAD_CSV, "--skip-errors")
    assert stored().keys() == {"ok one"}
    assert "1 risk points imported from 8 rows" in out and "7 rows skipped" in out
    assert "skipped: row 4: unknown kind '赌场'" in err


def test_the_china_box_is_rough_places_near_the_border_pass_silently(db, tmp_path):
    text = "name,kind,lat,lon\nAlmaty,custom,43.24,76.95\nHanoi,custom,21.03,105.85\n"
    out, err = run(tmp_path, text)
    assert stored().keys() == {"Almaty", "Hanoi"}
    assert "warning" not in err and "0 warnings" in out


def test_outside_china_is_a_warning_not_an_error(db, tmp_path):
    text = "name,kind,lat,lon\nSydney,custom,-33.87,151.21\n"
    out, err = run(tmp_path, text)
    assert "warning: row 2: latitude -33.87, longitude 151.21 is outside China" in err
    assert "1 warnings" in out and stored().keys() == {"Sydney"}


def test_rows_already_stored_are_refused_unless_replacing(db, tmp_path):
    old = risk_point_create(name="ok one", kind="registration_office", lat=34.26, lon=108.94)
    risk_point_create(name="gone", kind="custom", lat=30.0, lon=110.0)
    text = "name,kind,lat,lon\nok one,车管所,34.26,108.94\nnew,custom,34.0,108.0\n"
    with pytest.raises(CommandError):
        run(tmp_path, text)
    with pytest.raises(ImportRowsError) as exc:
        risk_points_import(rows=read_risk_point_file(io.BytesIO(text.encode()), "x.csv"))
    assert exc.value.errors == [
        (2, f"this risk point is already stored (#{old.pk}); import with replace to reload")
    ]
    out, _err = run(tmp_path, text, "--replace")
    assert "2 stored risk points were replaced" in out
    assert stored().keys() == {"ok one", "new"}


def test_file_level_problems_are_row_1(db, tmp_path):
    for content, message in (
        ("name,kind,lat\nx,custom,34\n", "Missing columns: lon"),
        ("x,custom,34.2,108.9\n", "the first row must be the header"),
        ("name,kind,lat,lon\n", "no data rows"),
        ('{"type": "Feature"}', "one FeatureCollection"),
    ):
        with pytest.raises(ImportRowsError) as exc:
            read_risk_point_file(io.BytesIO(content.encode()), "")
        assert exc.value.errors[0][0] == 1
        assert message in exc.value.errors[0][1]


def test_geojson_rows_that_are_not_points(db):
    data = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "geometry": {"type": "Polygon"}, "properties": {}}],
    }
    rows = read_risk_point_file(io.BytesIO(json.dumps(data).encode()), "x.geojson")
    with pytest.raises(ImportRowsError) as exc:
        risk_points_import(rows=rows)
    assert "the geometry must be a Point (got Polygon)" in exc.value.errors[0][1]


def test_only_platform_admins_import(world):
    rows = read_risk_point_file(io.BytesIO(GOOD_CSV.encode()), "x.csv")
    with pytest.raises(ApplicationError) as exc:
        risk_points_import(rows=rows, by=world.users["a_admin"])
    assert exc.value.code == "permission_denied"
    result = risk_points_import(rows=rows, by=world.users["platform_admin"])
    assert result.created == 4


def test_missing_file(db):
    with pytest.raises(CommandError, match="No such file"):
        call_command("import_risk_points", "/nonexistent/points.csv")
